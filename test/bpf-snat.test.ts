/**
 * Source NAT in the data plane through BPF_PROG_TEST_RUN: a router with
 * lb_force_snat_ip rewrites both ends of a new flow, keys the reverse entry by
 * backend -> SNAT address/port, un-NATs replies to the client, picks another
 * source port when two clients share one, and drops (counted) when no port is
 * free. Hairpin: a backend calling its own VIP is source-NATed to the VIP (or
 * hairpin_snat_ip) and bounced back out its interface (TC_ACT_REDIRECT).
 * Checksums are verified from scratch.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { Dataplane } from '../src/dataplane.js';
import { compile } from '../src/compile.js';
import { validateConfig } from '../src/config.js';
import { applyCompiled } from '../src/writer.js';
import { encodeCt4Key, encodeCt4Val, LAYOUT, XLB } from '../src/layout.js';
import { parseIPv4 } from '../src/addr.js';
import { gcConntrack } from '../src/conntrack.js';
import { buildIcmpError, buildPacket, ETH_HLEN, onesSum, parsePacket, TCP_FLAGS, type PacketSpec } from './helpers/packet.js';
import { closeAndUnpin } from './helpers/bpf.js';
import { ct4Clear, ct4Has, ct4NewSet } from './helpers/ct.js';

const PIN_ROOT = `/sys/fs/bpf/xlb-gw-bpf-${process.pid}`;
const IFINDEX = 1;
const XDP_PASS = 2;
const XDP_DROP = 1;
const TC_ACT_OK = 0;
const TC_ACT_SHOT = 2;
const TC_ACT_REDIRECT = 7;
const SNAT = '10.9.9.9';
const HAIRPIN = '10.0.0.99';

function config(routerOptions: Record<string, string>): object {
  return {
    load_balancers: [
      { name: 'web', protocol: 'tcp', vips: { '10.0.0.1:80': '10.1.0.1:8080' } },
      { name: 'dns', protocol: 'udp', vips: { '10.0.0.1:53': '10.1.0.1:5353' }, options: { hairpin_snat_ip: HAIRPIN } },
    ],
    logical_routers: [
      {
        name: 'r1',
        ports: [{ name: 'r1-lo', interface: 'lo', mac: '00:00:00:00:ff:01', networks: ['10.1.0.254/24'] }],
        load_balancer: ['web', 'dns'],
        options: routerOptions,
      },
    ],
  };
}

let dp: Dataplane;

function run(hook: 'tc' | 'xdp', spec: PacketSpec): { verdict: 'pass' | 'drop' | 'redirect'; out: Buffer } {
  const prog = hook === 'tc' ? dp.progs.xlb_tc_ingress : dp.progs.xlb_xdp_ingress;
  const r = dp.native.progTestRun(prog, { data: buildPacket(spec), ifindex: IFINDEX, repeat: 1 });
  const pass = hook === 'xdp' ? XDP_PASS : TC_ACT_OK;
  const drop = hook === 'xdp' ? XDP_DROP : TC_ACT_SHOT;
  if (r.retval === pass) return { verdict: 'pass', out: r.data };
  if (r.retval === drop) return { verdict: 'drop', out: r.data };
  if (hook === 'tc' && r.retval === TC_ACT_REDIRECT) return { verdict: 'redirect', out: r.data };
  throw new Error(`unexpected verdict ${r.retval}`);
}

/** Both conntrack tiers: established flows and the new-flow tier. */
function clearConntrack(): void {
  ct4Clear(dp);
}

function counter(name: 'snat' | 'snat_no_port' | 'hairpin'): bigint {
  return dp.globalCounters()[name];
}

function apply(routerOptions: Record<string, string>): void {
  applyCompiled(dp.store(), compile(validateConfig(config(routerOptions))), new Map([['lo', IFINDEX]]));
}

beforeAll(() => {
  dp = Dataplane.open({ pinRoot: PIN_ROOT, mapSizes: { conntrack: 1 << 18 } });
  apply({ lb_force_snat_ip: SNAT });
});

afterAll(() => closeAndUnpin(dp, PIN_ROOT));

beforeEach(() => clearConntrack());

describe.each(['tc', 'xdp'] as const)('source NAT on the %s hook', (hook) => {
  // BPF_PROG_TEST_RUN's skb is never CHECKSUM_PARTIAL: the partial seed is an XDP-only case here
  // (the end-to-end tests cover partial checksums on tc).
  it.each(hook === 'xdp' ? (['full', 'partial'] as const) : (['full'] as const))('rewrites source and destination of a new flow, and un-NATs the reply (%s checksum)', (csum) => {
    const syn: PacketSpec = { src: '192.168.1.1', dst: '10.0.0.1', proto: 'tcp', sport: 40000, dport: 80, tcpFlags: TCP_FLAGS.syn, csum };
    const fwd = run(hook, syn);
    expect(fwd.verdict).toBe('pass');
    const f = parsePacket(fwd.out);
    expect([f.src, f.sport, f.dst, f.dport]).toEqual([SNAT, 40000, '10.1.0.1', 8080]);
    expect(f.ipCsumOk).toBe(true);
    if (csum === 'full') expect(f.l4CsumOk).toBe(true);
    else expect(f.l4Csum).toBe(f.pseudoSeed);

    const reply = run(hook, { src: '10.1.0.1', dst: SNAT, proto: 'tcp', sport: 8080, dport: 40000, tcpFlags: TCP_FLAGS.syn | TCP_FLAGS.ack, csum });
    expect(reply.verdict).toBe('pass');
    const r = parsePacket(reply.out);
    expect([r.src, r.sport, r.dst, r.dport]).toEqual(['10.0.0.1', 80, '192.168.1.1', 40000]);
    expect(r.ipCsumOk).toBe(true);
    if (csum === 'full') expect(r.l4CsumOk).toBe(true);
    else expect(r.l4Csum).toBe(r.pseudoSeed);

    // Established packets of the flow keep the same translation.
    const ack = parsePacket(run(hook, { ...syn, tcpFlags: TCP_FLAGS.ack }).out);
    expect([ack.src, ack.sport, ack.dst, ack.dport]).toEqual([SNAT, 40000, '10.1.0.1', 8080]);
  });

  it('gives a second client with the same source port another port, and both replies reach their client', () => {
    const before = counter('snat');
    const a = parsePacket(run(hook, { src: '192.168.1.1', dst: '10.0.0.1', proto: 'tcp', sport: 40000, dport: 80, tcpFlags: TCP_FLAGS.syn }).out);
    const b = parsePacket(run(hook, { src: '192.168.1.2', dst: '10.0.0.1', proto: 'tcp', sport: 40000, dport: 80, tcpFlags: TCP_FLAGS.syn }).out);
    expect(a.src).toBe(SNAT);
    expect(b.src).toBe(SNAT);
    expect(a.sport).toBe(40000);
    expect(b.sport).not.toBe(40000);
    expect(b.sport).toBeGreaterThanOrEqual(1024);
    expect(b.l4CsumOk).toBe(true);
    expect(counter('snat') - before).toBe(2n);
    for (const [out, client] of [
      [a, '192.168.1.1'],
      [b, '192.168.1.2'],
    ] as const) {
      const r = parsePacket(run(hook, { src: '10.1.0.1', dst: SNAT, proto: 'tcp', sport: 8080, dport: out.sport, tcpFlags: TCP_FLAGS.ack }).out);
      expect([r.src, r.sport, r.dst, r.dport]).toEqual(['10.0.0.1', 80, client, 40000]);
      expect(r.l4CsumOk).toBe(true);
    }
  });

  it('drops a new flow (counted) when every source port of the SNAT address toward that backend is taken', () => {
    // Occupy every port in [1024, 65535] and the client's own port with established flows
    // (the new-flow tier's claims are exercised by the test above).
    const ks = LAYOUT.xlb_ct4_key.size;
    const vs = LAYOUT.xlb_ct4_val.size;
    const ports = [40001, ...Array.from({ length: 65535 - 1024 + 1 }, (_, i) => 1024 + i)];
    const keys = Buffer.alloc(ports.length * ks);
    const vals = Buffer.alloc(ports.length * vs);
    ports.forEach((p, i) => {
      encodeCt4Key({ saddr: parseIPv4('10.1.0.1'), daddr: parseIPv4(SNAT), sport: 8080, dport: p, proto: 6 }).copy(keys, i * ks);
      encodeCt4Val({ natAddr: parseIPv4('10.0.0.1'), natPort: 80, dir: XLB.DIR_REV, state: XLB.CT_EST, vipId: 1, backendId: 1, lastSeenNs: 0n }).copy(vals, i * vs);
    });
    dp.native.mapUpdateBatch(dp.maps.xlb_ct4, keys, vals, ports.length);
    expect(dp.ct4SeenRebuild()).toBe(new Set(ports).size); // written from user space: the key filter learns them (ctseen.h)
    const before = counter('snat_no_port');
    const r = run(hook, { src: '192.168.1.3', dst: '10.0.0.1', proto: 'tcp', sport: 40001, dport: 80, tcpFlags: TCP_FLAGS.syn });
    expect(r.verdict).toBe('drop');
    expect(counter('snat_no_port') - before).toBe(1n);
    // No forward entry was left behind for the refused flow.
    const fk = encodeCt4Key({ saddr: parseIPv4('192.168.1.3'), daddr: parseIPv4('10.0.0.1'), sport: 40001, dport: 80, proto: 6 });
    expect(ct4Has(dp, fk)).toBe(false);
  });
});

describe('hairpin: a backend calling its own VIP', () => {
  it('tc: source NAT to the VIP, MACs swapped, redirected back out its interface; the reply too', () => {
    const before = counter('hairpin');
    const spec: PacketSpec = { src: '10.1.0.1', dst: '10.0.0.1', proto: 'tcp', sport: 33333, dport: 80, tcpFlags: TCP_FLAGS.syn };
    const inFrame = buildPacket(spec);
    const r = run('tc', spec);
    expect(r.verdict).toBe('redirect');
    const p = parsePacket(r.out);
    expect([p.src, p.sport, p.dst, p.dport]).toEqual(['10.0.0.1', 33333, '10.1.0.1', 8080]);
    expect(p.l4CsumOk).toBe(true);
    expect(r.out.subarray(0, 6)).toEqual(inFrame.subarray(6, 12));
    expect(r.out.subarray(6, 12)).toEqual(inFrame.subarray(0, 6));
    const reply = run('tc', { src: '10.1.0.1', dst: '10.0.0.1', proto: 'tcp', sport: 8080, dport: 33333, tcpFlags: TCP_FLAGS.syn | TCP_FLAGS.ack });
    expect(reply.verdict).toBe('redirect');
    const q = parsePacket(reply.out);
    expect([q.src, q.sport, q.dst, q.dport]).toEqual(['10.0.0.1', 80, '10.1.0.1', 33333]);
    expect(q.l4CsumOk).toBe(true);
    expect(counter('hairpin') - before).toBe(2n);
  });

  it('xdp: the same rewrite, passed on with the bounce mark for tc in the XDP metadata', () => {
    const spec: PacketSpec = { src: '10.1.0.1', dst: '10.0.0.1', proto: 'tcp', sport: 33334, dport: 80, tcpFlags: TCP_FLAGS.syn };
    const inFrame = buildPacket(spec);
    const r = run('xdp', spec);
    expect(r.verdict).toBe('pass');
    // The output starts at data_meta: the tag (bounce.h: magic "xlb!", action XLB_DEFER_BOUNCE), then the frame.
    expect(r.out.readUInt32LE(0)).toBe(0x786c6221);
    expect(r.out.readUInt32LE(4)).toBe(1);
    const frame = r.out.subarray(8);
    expect(frame.subarray(0, 6)).toEqual(inFrame.subarray(6, 12));
    const p = parsePacket(frame);
    expect([p.src, p.sport, p.dst, p.dport]).toEqual(['10.0.0.1', 33334, '10.1.0.1', 8080]);
    expect(p.l4CsumOk).toBe(true);
  });

  it('hairpin_snat_ip replaces the VIP as source', () => {
    const r = run('tc', { src: '10.1.0.1', dst: '10.0.0.1', proto: 'udp', sport: 5000, dport: 53 });
    expect(r.verdict).toBe('redirect');
    const p = parsePacket(r.out);
    expect([p.src, p.sport, p.dst, p.dport]).toEqual([HAIRPIN, 5000, '10.1.0.1', 5353]);
    expect(p.l4CsumOk).toBe(true);
  });
});

/** An ICMP destination unreachable (port) from src to dst quoting `quoted` (IPv4, no Ethernet). */
const portUnreachable = (src: string, dst: string, quoted: Buffer): Buffer => buildIcmpError(src, dst, 3, 3, quoted);

describe('ICMP errors of source-NATed flows', () => {
  it("a backend's port unreachable reaches the client from the VIP, quoting the client's own request", () => {
    const req = run('tc', { src: '192.168.1.1', dst: '10.0.0.1', proto: 'udp', sport: 5000, dport: 53 });
    const fwd = parsePacket(req.out);
    expect([fwd.src, fwd.dst]).toEqual([SNAT, '10.1.0.1']);
    const out = dp.native.progTestRun(dp.progs.xlb_tc_ingress, { data: portUnreachable('10.1.0.1', SNAT, req.out.subarray(ETH_HLEN)), ifindex: IFINDEX }).data;
    const outer = parsePacket(out);
    expect([outer.src, outer.dst, outer.ipCsumOk]).toEqual(['10.0.0.1', '192.168.1.1', true]);
    expect(onesSum(outer.l4)).toBe(0xffff); // the ICMP checksum
    const inner = parsePacket(Buffer.concat([req.out.subarray(0, ETH_HLEN), outer.l4.subarray(8)]));
    expect([inner.src, inner.sport, inner.dst, inner.dport]).toEqual(['192.168.1.1', 5000, '10.0.0.1', 53]);
    expect(inner.ipCsumOk).toBe(true);
    expect(inner.l4CsumOk).toBe(true);
  });
});

describe('conntrack upkeep of source-NATed flows', () => {
  it('the garbage collector pairs both directions (reverse keyed by the SNAT port) and removes them together', () => {
    run('tc', { src: '192.168.1.1', dst: '10.0.0.1', proto: 'tcp', sport: 40000, dport: 80, tcpFlags: TCP_FLAGS.syn });
    run('tc', { src: '192.168.1.2', dst: '10.0.0.1', proto: 'tcp', sport: 40000, dport: 80, tcpFlags: TCP_FLAGS.syn });
    // New flows sit in the new-flow tier until their backend answers.
    const entries = dp.ct4New();
    expect(entries.length).toBe(4);
    // Age the forward entries only: a flow is idle from the later of its two directions, so
    // nothing may go while the reverse entries (found through otherKey) are fresh.
    for (const e of entries) {
      if (e.val[LAYOUT.xlb_ct4_val.offsets.dir] !== XLB.DIR_FWD) continue;
      e.val.writeBigUInt64LE(0n, LAYOUT.xlb_ct4_val.offsets.last_seen_ns);
      ct4NewSet(dp, e.key, e.val);
    }
    expect(gcConntrack(dp, { tcpSyn: 60, tcpEstablished: 60, tcpClosing: 60, udp: 60, sctp: 60, other: 60 })).toEqual({ scanned: 4, removed: 0 });
    // Far in the future both directions are idle: each pair goes together.
    expect(gcConntrack(dp, undefined, BigInt(Number.MAX_SAFE_INTEGER) * 1000n)).toEqual({ scanned: 4, removed: 4 });
  });
});

describe('router_ip and NAT rules', () => {
  it('lb_force_snat_ip=router_ip: the router port address toward the backend', () => {
    apply({ lb_force_snat_ip: 'router_ip' });
    const p = parsePacket(run('tc', { src: '192.168.1.1', dst: '10.0.0.1', proto: 'tcp', sport: 40000, dport: 80, tcpFlags: TCP_FLAGS.syn }).out);
    expect([p.src, p.dst]).toEqual(['10.1.0.254', '10.1.0.1']);
    apply({ lb_force_snat_ip: SNAT });
  });
});
