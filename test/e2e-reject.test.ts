/**
 * reject=true end to end, on both ingress hooks: a VIP without a usable
 * backend (none, all drained by weight 0, all down by health) answers a TCP
 * SYN with a RST and UDP with ICMP port unreachable, sent back out vm3's port
 * by tc redirect (on XDP through the tc companion), so vm3's sockets get
 * "connection refused" at once; without reject the SYN is dropped (timeout).
 * Both with partial checksums from vm3 and with full ones.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Lab, labNames, nsExec } from '../src/lab.js';
import { Xlb } from '../src/xlb.js';
import { backendKey } from '../src/compile.js';
import { cli, connectOnce as connectVip, nsNode, TIMEOUT_S } from './helpers/e2e.js';
import { closeLab } from './helpers/lab.js';

// The pid keeps concurrent runs of this file (other worktrees run it too) apart.
const L = labNames(`xlb-rj-${process.pid}-`);
const INSTANCE = { pinRoot: `/sys/fs/bpf/xlb-rj-${process.pid}`, stateDir: `/run/xlb-rj-${process.pid}` };
const VIP = L.vip;
const ECHO = (vm: 'vm1' | 'vm2'): string => `${L.vms[vm].ip}:${L.tcpEchoPort}`;
/** A refusal must answer the first SYN: before its first retransmission (1 s). */
const REFUSED_WITHIN_MS = Math.min(1000, TIMEOUT_S * 1000);

function config(hook: 'tc' | 'xdp'): object {
  return {
    load_balancers: [
      { name: 'live', protocol: 'tcp', vips: { [`${VIP}:${L.port}`]: `${L.vms.vm1.ip}:${L.port},${L.vms.vm2.ip}:${L.port}` } },
      {
        name: 'rej',
        protocol: 'tcp',
        vips: { [`${VIP}:7000`]: '', [`${VIP}:7001`]: `${ECHO('vm1')},${ECHO('vm2')}` },
        options: { reject: true, xlb_weights: `${ECHO('vm1')}=0,${ECHO('vm2')}=0` },
      },
      { name: 'hc', protocol: 'tcp', vips: { [`${VIP}:7002`]: ECHO('vm1') }, options: { reject: true } },
      { name: 'drop', protocol: 'tcp', vips: { [`${VIP}:7003`]: '' } },
      { name: 'rej-udp', protocol: 'udp', vips: { [`${VIP}:7053`]: '' }, options: { reject: true } },
    ],
    logical_switches: [{ name: 'inside', ports: [{ interface: `${L.hv}/${L.vms.vm3.hostIf}`, hook }], load_balancer: ['live', 'rej', 'hc', 'drop', 'rej-udp'] }],
  };
}
/** The health checker's verdict: hc's only backend is down. */
const DOWN = new Set([backendKey(`hc ${VIP}:7002/tcp`, ECHO('vm1'))]);

let lab: Lab;
let x: Xlb;

beforeAll(async () => {
  Xlb.reset(INSTANCE);
  lab = await Lab.create({ prefix: L.prefix });
  x = Xlb.open(INSTANCE);
});

afterAll(() => closeLab(x, INSTANCE, lab));

/** One connection attempt from vm3: how it ended and after how many ms. */
const connectOnce = (port: number, timeoutMs: number) => connectVip(L.vms.vm3.ns, VIP, port, timeoutMs);

describe.each([
  { hook: 'tc' as const, vmTxOff: false },
  { hook: 'xdp' as const, vmTxOff: false },
  { hook: 'tc' as const, vmTxOff: true },
  { hook: 'xdp' as const, vmTxOff: true },
])('reject on the $hook hook (vm3 full checksums: $vmTxOff)', ({ hook, vmTxOff }) => {
  beforeAll(() => {
    nsExec(L.vms.vm3.ns, 'ethtool', ['-K', 'eth0', 'tx', vmTxOff ? 'off' : 'on']);
    const r = x.apply(config(hook), { down: DOWN });
    expect(r.ifaces[0].hook).toBe(hook);
  });

  it.each([
    [7000, 'no backends'],
    [7001, 'every backend drained (weight 0)'],
    [7002, 'every backend down (health)'],
  ])('TCP to a VIP with %s (%s): connection refused at once', async (port) => {
    const r = await connectOnce(port, TIMEOUT_S * 1000 * 2);
    expect(r.outcome, r.text).toBe('refused');
    expect(r.ms).toBeLessThan(REFUSED_WITHIN_MS);
  });

  it('UDP to a VIP without backends: ICMP port unreachable, the socket gets ECONNREFUSED', async () => {
    const r = await nsNode(L.vms.vm3.ns, 'udp-client.mjs', [VIP, '7053', '3', String(TIMEOUT_S * 1000)], TIMEOUT_S * 3 + 30);
    expect(r.stdout.trim().split('\n')).toEqual(['error ECONNREFUSED', 'error ECONNREFUSED', 'error ECONNREFUSED']);
  });

  it('without reject the SYN is dropped: the client times out', async () => {
    const r = await connectOnce(7003, TIMEOUT_S * 1000);
    expect(r.outcome, r.text).toBe('timeout');
  });

  it('a VIP with backends beside them still serves', async () => {
    expect(await lab.curl(TIMEOUT_S)).toMatch(/^i am vm[12]$/);
  });

  it('counts: per-VIP rejects and drops, the global counters, and `xlb show`', async () => {
    const show = x.show();
    const vip = (v: string) => show.vips.find((x) => x.vip === v)!;
    expect(vip(`${VIP}:7000`).reject).toBe(true);
    expect(vip(`${VIP}:7000`).stats.rejects).toBeGreaterThanOrEqual(1n);
    expect(vip(`${VIP}:7053`).stats.rejects).toBeGreaterThanOrEqual(3n);
    expect(vip(`${VIP}:7003`).reject).toBe(false);
    expect(vip(`${VIP}:7003`).stats.drops).toBeGreaterThanOrEqual(1n);
    expect(vip(`${VIP}:7003`).stats.rejects).toBe(0n);
    expect(show.counters.reject).toBeGreaterThanOrEqual(6n);
    const text = (await cli(INSTANCE, 'show')).stdout;
    expect(text).toMatch(new RegExp(`${VIP}:7000/tcp \\(lb rej, M=\\d+, reject, on switch inside\\).* rejected`));
    if (hook === 'xdp') expect(text).toContain('(+ tc ingress for replies sent back)');
  });
});
