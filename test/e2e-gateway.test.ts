/**
 * A gateway router's load balancer end to end, with real HTTP to nginx
 * backends whose access log says which client address they saw.
 *
 * The lab's xlb-hv is router edge1: its ports are the two bridges (the router's
 * addresses 172.16.255.193 on "inside" and 172.16.255.129 on "dmz"). vm3 is a
 * client outside the backends' network; the VIP lives on edge1's ports only.
 * OVN's semantics: the backend sees the real client unless the router's
 * lb_force_snat_ip (an address, or router_ip) or a snat NAT rule covering the
 * client applies; skip_snat on the load balancer exempts it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Lab, labNames, type VmName } from '../src/lab.js';
import { Xlb } from '../src/xlb.js';
import { cli, TIMEOUT_S } from './helpers/e2e.js';
import { closeLab } from './helpers/lab.js';

const LAB = labNames('xlb-gw-');
const INSTANCE = { pinRoot: `/sys/fs/bpf/xlb-gw-${process.pid}`, stateDir: `/run/xlb-gw-${process.pid}` };
const VIP = `${LAB.vip}:${LAB.port}`;
const BACKENDS = `${LAB.vms.vm1.ip}:${LAB.port},${LAB.vms.vm2.ip}:${LAB.port}`;
/** Requests per case: enough that both backends are hit (each logs what it saw). */
const REQUESTS = Number(process.env.XLB_TEST_GW_REQUESTS ?? 12);

function config(routerOptions: Record<string, string>, lbOptions: Record<string, string> = {}, nat: object[] = []): object {
  return {
    load_balancers: [{ name: 'lb1', protocol: 'tcp', vips: { [VIP]: BACKENDS }, options: lbOptions }],
    logical_routers: [
      {
        name: 'edge1',
        ports: [
          { name: 'edge1-inside', interface: `${LAB.hv}/xlb-inside`, hook: 'tc', mac: '00:00:00:00:ff:01', networks: [`${LAB.insideGw}/26`] },
          { name: 'edge1-dmz', interface: `${LAB.hv}/xlb-dmz`, hook: 'tc', mac: '00:00:00:00:ff:02', networks: [`${LAB.dmzGw}/26`] },
        ],
        load_balancer: ['lb1'],
        options: routerOptions,
        nat,
      },
    ],
  };
}

let lab: Lab;
let x: Xlb;

beforeAll(async () => {
  Xlb.reset(INSTANCE);
  lab = await Lab.create({ http: 'nginx', prefix: LAB.prefix });
  x = Xlb.open(INSTANCE);
}, 60_000);

afterAll(() => closeLab(x, INSTANCE, lab));

/** Curls the VIP from vm3 REQUESTS times; returns the answers and the client addresses the backends logged meanwhile. */
async function requests(): Promise<{ answers: Set<string | null>; seen: Set<string> }> {
  const vms: VmName[] = ['vm1', 'vm2'];
  const before = new Map(vms.map((vm) => [vm, lab.accessLogClients(vm).length]));
  const answers = new Set<string | null>();
  for (let i = 0; i < REQUESTS; i++) answers.add(await lab.curl(TIMEOUT_S));
  const seen = new Set<string>();
  for (const vm of vms) for (const c of lab.accessLogClients(vm).slice(before.get(vm))) seen.add(c);
  if (process.env.XLB_TEST_DEBUG) console.log({ answers, seen });
  return { answers, seen };
}

describe('gateway router edge1 (tc on its ports)', () => {
  it('default: the VIP answers vm3 from both backends, which see the real client', async () => {
    x.apply(config({}));
    const r = await requests();
    expect([...r.answers].sort()).toEqual(['i am vm1', 'i am vm2']);
    expect([...r.seen]).toEqual([LAB.vms.vm3.ip]);
  });

  it('lb_force_snat_ip=<address>: the backends see that address, replies come back through the router', async () => {
    x.apply(config({ lb_force_snat_ip: '10.127.0.129' }));
    const r = await requests();
    expect([...r.answers].sort()).toEqual(['i am vm1', 'i am vm2']);
    expect([...r.seen]).toEqual(['10.127.0.129']);
    const ct = x.conntrack().filter((e) => e.dir === 'forward' && e.snat);
    expect(ct.length).toBeGreaterThan(0);
    expect(ct.every((e) => e.snat!.startsWith('10.127.0.129:'))).toBe(true);
    expect(x.show().counters.snat).toBeGreaterThanOrEqual(BigInt(REQUESTS));
    const show = await cli(INSTANCE, 'show');
    expect(show.stdout).toContain('source NAT on router edge1: 10.127.0.129 (lb_force_snat_ip)');
  });

  it('lb_force_snat_ip=router_ip: the backends see the address of the router port toward them', async () => {
    x.apply(config({ lb_force_snat_ip: 'router_ip' }));
    const r = await requests();
    expect([...r.answers].sort()).toEqual(['i am vm1', 'i am vm2']);
    expect([...r.seen]).toEqual([LAB.dmzGw]);
  });

  it('skip_snat=true on the load balancer exempts it from lb_force_snat_ip', async () => {
    x.apply(config({ lb_force_snat_ip: 'router_ip' }, { skip_snat: 'true' }));
    const r = await requests();
    expect([...r.answers].sort()).toEqual(['i am vm1', 'i am vm2']);
    expect([...r.seen]).toEqual([LAB.vms.vm3.ip]);
    expect((await cli(INSTANCE, 'show')).stdout).toContain('source NAT on router edge1: none (skip_snat)');
  });

  it("a snat NAT rule covering the client applies to balanced traffic (the seed's log: vm3 arrives from edge1's address)", async () => {
    x.apply(config({}, {}, [{ type: 'snat', logical_ip: '172.16.255.128/25', external_ip: '10.127.0.130' }]));
    const r = await requests();
    expect([...r.answers].sort()).toEqual(['i am vm1', 'i am vm2']);
    expect([...r.seen]).toEqual(['10.127.0.130']);
  });

  it('a snat rule that does not cover the client leaves it alone; the longest prefix wins', async () => {
    x.apply(config({}, {}, [{ type: 'snat', logical_ip: '172.16.255.128/26', external_ip: '10.127.0.130' }]));
    let r = await requests();
    expect([...r.seen]).toEqual([LAB.vms.vm3.ip]);
    x.apply(
      config({}, {}, [
        { type: 'snat', logical_ip: '172.16.255.0/24', external_ip: '10.127.0.131' },
        { type: 'snat', logical_ip: '172.16.255.192/26', external_ip: '10.127.0.132' },
      ]),
    );
    r = await requests();
    expect([...r.answers].sort()).toEqual(['i am vm1', 'i am vm2']);
    expect([...r.seen]).toEqual(['10.127.0.132']);
  });

  it('back to the default: new connections carry the real client again', async () => {
    x.apply(config({}));
    const r = await requests();
    expect([...r.seen]).toEqual([LAB.vms.vm3.ip]);
    expect(x.show().vips[0]!.snat).toEqual(['router edge1: none']);
  });
});
