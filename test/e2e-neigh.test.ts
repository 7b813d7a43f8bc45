/**
 * neighbor_responder end to end, on both ingress hooks: a router port on vm3's
 * interface (MAC: the host bridge's, where the router lives), a VIP on vm3's
 * own subnet that no host owns. xlb answers vm3's ARP for it with the router
 * port's MAC (sent back out vm3's port by tc redirect), so vm3 resolves the VIP
 * and connects to it; `none`, or `reachable` with the VIP outside every router
 * network, leaves the ARP unanswered.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { Lab, labNames, nsExec } from '../src/lab.js';
import { Xlb } from '../src/xlb.js';
import { cli, TIMEOUT_S } from './helpers/e2e.js';
import { closeLab } from './helpers/lab.js';

// The pid keeps concurrent runs of this file (other worktrees run it too) apart.
const L = labNames(`xlb-rj-n${process.pid}-`);
const INSTANCE = { pinRoot: `/sys/fs/bpf/xlb-rj-n-${process.pid}`, stateDir: `/run/xlb-rj-n-${process.pid}` };
/** On vm3's subnet (172.16.255.192/26), owned by nobody. */
const ONLINK = '172.16.255.200';
const PORT = 80;

let lab: Lab;
let x: Xlb;
let routerMac: string;

function config(hook: 'tc' | 'xdp', mode: string, networks = [`${L.insideGw}/26`]): object {
  const backends = `${L.vms.vm1.ip}:${L.port},${L.vms.vm2.ip}:${L.port}`;
  return {
    load_balancers: [{ name: 'onlink', protocol: 'tcp', vips: { [`${ONLINK}:${PORT}`]: backends }, options: { neighbor_responder: mode } }],
    logical_routers: [
      {
        name: 'edge',
        ports: [{ name: 'lrp-inside', interface: `${L.hv}/${L.vms.vm3.hostIf}`, hook, mac: routerMac, networks }],
        load_balancer: ['onlink'],
      },
    ],
  };
}

/** On vm3's IPv6 subnet (fd00:ff:1::/64), owned by nobody. */
const ONLINK6 = 'fd00:ff:1::200';

function config6(hook: 'tc' | 'xdp', mode: string): object {
  const backends = `[${L.vms.vm1.ip6}]:${L.port},[${L.vms.vm2.ip6}]:${L.port}`;
  return {
    load_balancers: [{ name: 'onlink6', protocol: 'tcp', vips: { [`[${ONLINK6}]:${PORT}`]: backends }, options: { neighbor_responder: mode } }],
    logical_routers: [
      {
        name: 'edge',
        ports: [{ name: 'lrp-inside', interface: `${L.hv}/${L.vms.vm3.hostIf}`, hook, mac: routerMac, networks: [`${L.insideGw}/26`, `${L.insideGw6}/64`] }],
        load_balancer: ['onlink6'],
      },
    ],
  };
}

function vm3Neigh6(): string | null {
  const out = nsExec(L.vms.vm3.ns, 'ip', ['-6', 'neigh', 'show', ONLINK6, 'dev', 'eth0']);
  return /lladdr ([0-9a-f:]{17})/.exec(out)?.[1] ?? null;
}

/** vm3's neighbour entry for the VIP: its MAC, or null when unresolved. */
function vm3Neigh(): string | null {
  const out = nsExec(L.vms.vm3.ns, 'ip', ['neigh', 'show', ONLINK, 'dev', 'eth0']);
  return /lladdr ([0-9a-f:]{17})/.exec(out)?.[1] ?? null;
}

function flushNeigh(): void {
  nsExec(L.vms.vm3.ns, 'ip', ['neigh', 'flush', 'to', ONLINK, 'dev', 'eth0']);
}

beforeAll(async () => {
  Xlb.reset(INSTANCE);
  lab = await Lab.create({ prefix: L.prefix, ipv6: true });
  x = Xlb.open(INSTANCE);
  const link = JSON.parse(execFileSync('ip', ['-n', L.hv, '-j', 'link', 'show', 'xlb-inside'], { encoding: 'utf8' })) as Array<{ address: string }>;
  routerMac = link[0].address;
});

afterAll(() => closeLab(x, INSTANCE, lab));

describe.each(['tc', 'xdp'] as const)('neighbor_responder on the %s hook', (hook) => {
  it('reachable (the default): vm3 resolves the on-link VIP to the router port MAC and connects', async () => {
    x.apply(config(hook, 'reachable'));
    flushNeigh();
    const before = x.show().counters.neigh_reply;
    const seen = new Set<string | null>();
    for (let i = 0; i < 6; i++) seen.add(await lab.curl(TIMEOUT_S, `${ONLINK}:${PORT}`));
    expect([...seen].every((s) => s === 'i am vm1' || s === 'i am vm2'), [...seen].join(',')).toBe(true);
    expect(vm3Neigh()).toBe(routerMac);
    expect(x.show().counters.neigh_reply - before).toBeGreaterThanOrEqual(1n);
    const show = (await cli(INSTANCE, 'show')).stdout;
    expect(show).toContain(`${ONLINK}:${PORT}/tcp (lb onlink, M=16381, ARP answered on router edge, on router edge)`);
  });

  it('none: the ARP goes unanswered, the VIP is unreachable', async () => {
    x.apply(config(hook, 'none'));
    flushNeigh();
    const before = x.show().counters.neigh_reply;
    expect(await lab.curl(TIMEOUT_S, `${ONLINK}:${PORT}`)).toBeNull();
    expect(vm3Neigh()).toBeNull();
    expect(x.show().counters.neigh_reply - before).toBe(0n);
  });

  it('IPv6: vm3 resolves the on-link VIP by neighbour solicitation to the router port MAC and connects; none: unresolved', async () => {
    x.apply(config6(hook, 'reachable'));
    nsExec(L.vms.vm3.ns, 'ip', ['-6', 'neigh', 'flush', 'to', ONLINK6, 'dev', 'eth0']);
    const seen = new Set<string | null>();
    for (let i = 0; i < 4; i++) seen.add(await lab.curl(TIMEOUT_S, `[${ONLINK6}]:${PORT}`));
    expect([...seen].every((s) => s === 'i am vm1' || s === 'i am vm2'), [...seen].join(',')).toBe(true);
    expect(vm3Neigh6()).toBe(routerMac);
    expect((await cli(INSTANCE, 'show')).stdout).toContain(`[${ONLINK6}]:${PORT}/tcp (lb onlink6, M=16381, ND answered on router edge`);
    x.apply(config6(hook, 'none'));
    nsExec(L.vms.vm3.ns, 'ip', ['-6', 'neigh', 'flush', 'to', ONLINK6, 'dev', 'eth0']);
    expect(await lab.curl(TIMEOUT_S, `[${ONLINK6}]:${PORT}`)).toBeNull();
    expect(vm3Neigh6()).toBeNull();
  });

  it('reachable with the VIP outside every router network: unanswered; all: answered', async () => {
    x.apply(config(hook, 'reachable', ['10.99.0.1/24']));
    flushNeigh();
    expect(await lab.curl(TIMEOUT_S, `${ONLINK}:${PORT}`)).toBeNull();
    expect(vm3Neigh()).toBeNull();
    x.apply(config(hook, 'all', ['10.99.0.1/24']));
    flushNeigh();
    expect(await lab.curl(TIMEOUT_S, `${ONLINK}:${PORT}`)).toMatch(/^i am vm[12]$/);
    expect(vm3Neigh()).toBe(routerMac);
  });
});
