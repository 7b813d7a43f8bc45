/**
 * reject=true for an IPv6 VIP end to end, on both ingress hooks, in the IPv6
 * lab (own prefix xlb-r6-, xlb on vm3's port): a VIP without backends answers
 * a TCP SYN with a RST and UDP with ICMPv6 port unreachable, sent back out
 * vm3's port by tc redirect (on XDP through the tc companion), so vm3's
 * sockets get "connection refused" at once; without reject the SYN is dropped
 * (timeout). Both with partial checksums from vm3 and with full ones.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Lab, labNames, nsExec } from '../src/lab.js';
import { Xlb } from '../src/xlb.js';
import { connectOnce as connectVip, nsNode, TIMEOUT_S } from './helpers/e2e.js';
import { closeLab } from './helpers/lab.js';

const PREFIX = 'xlb-r6-';
const L = labNames(PREFIX);
const INSTANCE = { pinRoot: `/sys/fs/bpf/xlb-r6-${process.pid}`, stateDir: `/run/xlb-r6-${process.pid}` };
const VIP = L.vip6;
/** A refusal must answer the first SYN: before its first retransmission (1 s). */
const REFUSED_WITHIN_MS = Math.min(1000, TIMEOUT_S * 1000);

function config(hook: 'tc' | 'xdp'): object {
  const [vm1, vm2] = [L.vms.vm1.ip6, L.vms.vm2.ip6];
  return {
    load_balancers: [
      { name: 'live6', protocol: 'tcp', vips: { [`[${VIP}]:${L.port}`]: `[${vm1}]:${L.port},[${vm2}]:${L.port}` } },
      { name: 'rej6', protocol: 'tcp', vips: { [`[${VIP}]:7000`]: '' }, options: { reject: true } },
      { name: 'drop6', protocol: 'tcp', vips: { [`[${VIP}]:7003`]: '' } },
      { name: 'rej6-udp', protocol: 'udp', vips: { [`[${VIP}]:7053`]: '' }, options: { reject: true } },
    ],
    logical_switches: [
      { name: 'inside', ports: [{ interface: `${L.hv}/${L.vms.vm3.hostIf}`, hook }], load_balancer: ['live6', 'rej6', 'drop6', 'rej6-udp'] },
    ],
  };
}

let lab: Lab;
let x: Xlb;

beforeAll(async () => {
  Xlb.reset(INSTANCE);
  lab = await Lab.create({ prefix: PREFIX, ipv6: true });
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
])('IPv6 reject on the $hook hook (vm3 full checksums: $vmTxOff)', ({ hook, vmTxOff }) => {
  beforeAll(() => {
    nsExec(L.vms.vm3.ns, 'ethtool', ['-K', 'eth0', 'tx', vmTxOff ? 'off' : 'on']);
    const r = x.apply(config(hook));
    expect(r.ifaces[0].hook).toBe(hook);
  });

  it('TCP to a v6 VIP without backends: connection refused at once', async () => {
    const before = x.show().counters.reject;
    const r = await connectOnce(7000, TIMEOUT_S * 1000 * 2);
    expect(r.outcome, r.text).toBe('refused');
    expect(r.ms).toBeLessThan(REFUSED_WITHIN_MS);
    expect(x.show().counters.reject - before).toBeGreaterThanOrEqual(1n);
  });

  it('UDP to a v6 VIP without backends: ICMPv6 port unreachable, the connected socket gets ECONNREFUSED', async () => {
    const r = await nsNode(L.vms.vm3.ns, 'udp-client.mjs', [VIP, '7053', '3', String(TIMEOUT_S * 1000)], TIMEOUT_S * 3 + 30);
    expect(r.stdout.trim().split('\n')).toEqual(['error ECONNREFUSED', 'error ECONNREFUSED', 'error ECONNREFUSED']);
  });

  it('without reject the SYN is dropped: the client times out', async () => {
    const r = await connectOnce(7003, TIMEOUT_S * 1000);
    expect(r.outcome, r.text).toBe('timeout');
  });

  it('per-VIP counters: rejects on the rejecting VIPs, drops without reject', () => {
    const show = x.show();
    const vip = (v: string) => show.vips.find((s) => s.vip === v)!;
    expect(vip(`[${VIP}]:7000`).reject).toBe(true);
    expect(vip(`[${VIP}]:7000`).stats.rejects).toBeGreaterThanOrEqual(1n);
    expect(vip(`[${VIP}]:7053`).stats.rejects).toBeGreaterThanOrEqual(3n);
    expect(vip(`[${VIP}]:7003`).stats.drops).toBeGreaterThanOrEqual(1n);
    expect(vip(`[${VIP}]:7003`).stats.rejects).toBe(0n);
  });
});
