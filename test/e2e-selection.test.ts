/**
 * Selection end to end in the seed lab (tc hook): OVN's selection_fields and
 * affinity_timeout, and xlb's drain (weight 0), with real connections.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Lab, LAB, LAB_INSTANCE } from '../src/lab.js';
import { Xlb } from '../src/xlb.js';
import { nsNode, run, sleep, TIMEOUT_S } from './helpers/e2e.js';

const vm1 = `${LAB.vms.vm1.ip}:${LAB.port}`;
const vm2 = `${LAB.vms.vm2.ip}:${LAB.port}`;
const echo = (vm: 'vm1' | 'vm2'): string => `${LAB.vms[vm].ip}:${LAB.tcpEchoPort}`;

function config(lb: Record<string, unknown>): object {
  return {
    load_balancers: [
      {
        name: 'lb1',
        vips: { [`${LAB.vip}:${LAB.port}`]: `${vm1},${vm2}`, [`${LAB.vip}:${LAB.tcpEchoVipPort}`]: `${echo('vm1')},${echo('vm2')}` },
        ...lb,
      },
    ],
    logical_switches: [{ name: 'inside', ports: [{ interface: `${LAB.hv}/${LAB.vms.vm3.hostIf}`, hook: 'tc' }], load_balancer: ['lb1'] }],
  };
}

let lab: Lab;
let x: Xlb;

beforeAll(async () => {
  Xlb.reset(LAB_INSTANCE);
  lab = await Lab.create();
  x = Xlb.open(LAB_INSTANCE);
});

afterAll(async () => {
  x?.close();
  Xlb.reset(LAB_INSTANCE);
  await lab?.destroy();
});

async function curls(n: number): Promise<Set<string | null>> {
  const seen = new Set<string | null>();
  for (let i = 0; i < n; i++) seen.add(await lab.curl(TIMEOUT_S));
  return seen;
}

describe('selection in the lab', () => {
  it('without options, vm3 reaches both backends', async () => {
    x.apply(config({}));
    expect([...(await curls(20))].sort()).toEqual(['i am vm1', 'i am vm2']);
  });

  it('selection_fields [ip_src]: every connection from vm3 lands on one backend', async () => {
    x.apply(config({ selection_fields: ['ip_src'] }));
    const seen = await curls(15);
    expect(seen.size).toBe(1);
    expect([...seen][0]).toMatch(/^i am vm[12]$/);
    const show = x.show().vips.find((v) => v.vip === `${LAB.vip}:${LAB.port}`)!;
    expect(show.selectionFields).toEqual(['ip_src']);
  });

  it('affinity_timeout: new connections follow the first one', async () => {
    x.apply(config({ options: { affinity_timeout: 30 } }));
    const seen = await curls(15);
    expect(seen.size).toBe(1);
  });

  it('weight 0 drains a backend: its long-lived connection continues, new ones go elsewhere', async () => {
    x.apply(config({}));
    // Open long-lived connections until one sits on vm1 (the hash decides; a few tries suffice).
    const client = nsNode(LAB.vms.vm3.ns, 'tcp-client.mjs', [LAB.vip, String(LAB.tcpEchoVipPort), '25', '120'], 30);
    await sleep(500);
    const drainTarget = x
      .conntrack()
      .find((e) => e.dir === 'forward' && e.dst === `${LAB.vip}:${LAB.tcpEchoVipPort}`)!.nat;
    const drainedVm = drainTarget.startsWith(LAB.vms.vm1.ip) ? 'vm1' : 'vm2';
    x.apply(config({ options: { xlb_weights: `${echo(drainedVm)}=0,${drainedVm === 'vm1' ? vm1 : vm2}=0` } }));
    const seen = await curls(10);
    expect([...seen]).toEqual([`i am ${drainedVm === 'vm1' ? 'vm2' : 'vm1'}`]);
    const r = await client;
    expect(r.code).toBe(0);
    const answers = r.stdout.trim().split('\n').slice(1);
    expect(answers).toHaveLength(25);
    for (const a of answers) expect(a.startsWith(`i am ${drainedVm} `)).toBe(true);
    const view = x.show().vips.find((v) => v.vip === `${LAB.vip}:${LAB.port}`)!;
    expect(view.backends.find((b) => b.text === (drainedVm === 'vm1' ? vm1 : vm2))!.drained).toBe(true);
  });
});

describe('IP-only VIPs in the lab', () => {
  it('ICMP echo to an IP-only VIP is answered by its backend, from the VIP; TCP keeps its port', async () => {
    const ipOnly = '172.16.255.63';
    x.apply({
      load_balancers: [{ name: 'ip', vips: { [ipOnly]: LAB.vms.vm1.ip } }],
      logical_switches: [{ name: 'inside', ports: [{ interface: `${LAB.hv}/${LAB.vms.vm3.hostIf}`, hook: 'tc' }], load_balancer: ['ip'] }],
    });
    const ping = await run('ip', ['netns', 'exec', LAB.vms.vm3.ns, 'ping', '-n', '-c', '3', '-i', '0.2', '-W', String(TIMEOUT_S), ipOnly], 30);
    expect(ping.code).toBe(0);
    expect(ping.stdout).toMatch(new RegExp(`3 packets transmitted, 3 received`));
    expect(ping.stdout).toContain(`from ${ipOnly}`);
    expect(await lab.curl(TIMEOUT_S, `${ipOnly}:${LAB.port}`)).toBe('i am vm1');
    const vip = x.show().vips.find((v) => v.vip === ipOnly)!;
    expect(vip.protocol).toBe('ip');
    expect(vip.stats.newConns).toBeGreaterThanOrEqual(2n);
  });
});
