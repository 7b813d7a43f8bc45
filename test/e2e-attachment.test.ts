/**
 * Switch attachment and hairpin end to end (the seed's lessons), with nginx
 * backends whose access log says which client address they saw.
 *
 * OVN applies a switch's load balancers to traffic entering from the switch's
 * own ports: lb1 on "inside" serves vm3; moved to "dmz" it no longer serves vm3
 * but serves dmz's own VIFs — including a backend calling its own VIP
 * (hairpin: source NAT to the VIP or hairpin_snat_ip, and the frame goes back
 * out the port it came in by, which a Linux bridge would never do).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Lab, labNames, type VmName } from '../src/lab.js';
import { Xlb } from '../src/xlb.js';
import { cli, TIMEOUT_S } from './helpers/e2e.js';
import { closeLab } from './helpers/lab.js';

const LAB = labNames('xlb-gw-sw-');
const INSTANCE = { pinRoot: `/sys/fs/bpf/xlb-gw-sw-${process.pid}`, stateDir: `/run/xlb-gw-sw-${process.pid}` };
const VIP = `${LAB.vip}:${LAB.port}`;
const be = (vm: VmName): string => `${LAB.vms[vm].ip}:${LAB.port}`;
/** Connections per check; with two backends and 5-tuple hashing, both answer (all-same odds 2^-15). */
const TRIES = Number(process.env.XLB_TEST_GW_REQUESTS ?? 16);

type Hook = 'tc' | 'xdp';
const port = (vm: VmName, hook: Hook = 'tc'): object => ({
  interface: `${LAB.hv}/${LAB.vms[vm].hostIf}`,
  hook,
  addresses: [`00:00:00:00:00:0${vm.slice(2)} ${LAB.vms[vm].ip}`],
});

function config(on: 'inside' | 'dmz', backends: VmName[], opts: { hook?: Hook; lbOptions?: Record<string, string> } = {}): object {
  return {
    load_balancers: [{ name: 'lb1', protocol: 'tcp', vips: { [VIP]: backends.map(be).join(',') }, options: opts.lbOptions ?? {} }],
    logical_switches: [
      { name: 'inside', ports: [port('vm3')], load_balancer: on === 'inside' ? ['lb1'] : [] },
      { name: 'dmz', ports: [port('vm1', opts.hook), port('vm2', opts.hook)], load_balancer: on === 'dmz' ? ['lb1'] : [] },
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

async function curls(from: VmName, n = TRIES): Promise<Set<string | null>> {
  const seen = new Set<string | null>();
  for (let i = 0; i < n; i++) seen.add(await lab.curl(TIMEOUT_S, VIP, from));
  return seen;
}

/** Client addresses vm's nginx logged while fn ran. */
async function logged(vm: VmName, fn: () => Promise<unknown>): Promise<Set<string>> {
  const before = lab.accessLogClients(vm).length;
  await fn();
  return new Set(lab.accessLogClients(vm).slice(before));
}

describe('switch attachment (the seed)', () => {
  it('lb1 on "inside" serves vm3 from both backends, without a warning', async () => {
    const r = x.apply(config('inside', ['vm1', 'vm2']));
    expect(r.warnings).toEqual([]);
    expect([...(await curls('vm3'))].sort()).toEqual(['i am vm1', 'i am vm2']);
  });

  it('moved to "dmz" it no longer serves vm3, and xlb warns that only its own backends reach it', async () => {
    const r = x.apply(config('dmz', ['vm1', 'vm2']));
    expect(r.warnings).toHaveLength(1);
    expect(r.warnings[0]).toContain('switch dmz: load balancer lb1 can be reached only by its own backends');
    expect([...(await curls('vm3', 3))]).toEqual([null]);
    const show = await cli(INSTANCE, 'show');
    expect(show.stdout).toContain('warnings:');
    expect(show.stdout).toContain('switch dmz: load balancer lb1 can be reached only by its own backends');
  });

  it("on \"dmz\" it serves dmz's own VIFs: vm1 reaches both backends, itself included (hairpin)", async () => {
    x.apply(config('dmz', ['vm1', 'vm2']));
    expect([...(await curls('vm1'))].sort()).toEqual(['i am vm1', 'i am vm2']);
    expect(x.show().counters.hairpin).toBeGreaterThan(0n);
  });
});

describe.each(['tc', 'xdp'] as const)('hairpin on the %s hook', (hook) => {
  it('vm1, the only backend, calls its VIP and gets its own page; it sees the VIP as the client', async () => {
    x.apply(config('dmz', ['vm1'], { hook }));
    const attached = x.show().ifaces.find((i) => i.ifname === LAB.vms.vm1.hostIf)!;
    expect(attached.hook).toBe(hook);
    let answers = new Set<string | null>();
    const seen = await logged('vm1', async () => (answers = await curls('vm1', 4)));
    expect([...answers]).toEqual(['i am vm1']);
    expect([...seen]).toEqual([LAB.vip]);
  });

  it('with hairpin_snat_ip the access log shows that address', async () => {
    x.apply(config('dmz', ['vm1'], { hook, lbOptions: { hairpin_snat_ip: '172.16.255.100' } }));
    let answers = new Set<string | null>();
    const seen = await logged('vm1', async () => (answers = await curls('vm1', 4)));
    expect([...answers]).toEqual(['i am vm1']);
    expect([...seen]).toEqual(['172.16.255.100']);
    expect((await cli(INSTANCE, 'show')).stdout).toContain('hairpin: a backend calling its own VIP sees 172.16.255.100 (hairpin_snat_ip)');
  });
});
