/**
 * A VIP's counters derived from its backends' (bpf/lib/stats.h counts a flow's
 * packets in its backend's row only), on the kernel: an Xlb instance serving a
 * veth of this test, traffic through BPF_PROG_TEST_RUN. What an operator reads
 * (`xlb show`, metrics) must equal the sum over the VIP's backends, keep drops
 * and rejects per VIP, and never go down when a backend is removed (its final
 * counts folded into the VIP's row), across a restart too.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Xlb, type ShowReport } from '../src/xlb.js';
import type { Stats } from '../src/layout.js';
import { buildPacket, buildPacket6, TCP_FLAGS } from './helpers/packet.js';
import { vethInstance, type VethInstance } from './helpers/veth-instance.js';

/** The instance's veth and its pin root and state directory (beforeAll). */
let env: VethInstance;
let LINK = '';
const XDP_PASS = 2;
const XDP_DROP = 1;
const VIP = '10.0.51.1';
const VIP6 = 'fd00:51::1';
const EMPTY_VIP = '10.0.51.2';
const REJECT_VIP = '10.0.51.3';
const BACKENDS = ['10.51.0.1:8080', '10.51.0.2:8080', '10.51.0.3:8080'];
const BACKENDS6 = ['[fd00:51:1::1]:8080', '[fd00:51:1::2]:8080'];
/** Flow counters (what backends count; a VIP's drops and rejects are its own). */
const FLOW = ['packets', 'bytes', 'replyPackets', 'replyBytes', 'newConns'] as const;

function config(backends: string[], protocol = 'tcp'): object {
  return {
    load_balancers: [
      { name: 'web', protocol, vips: { [`${VIP}:80`]: backends.join(',') } },
      { name: 'web6', protocol: 'tcp', vips: { [`[${VIP6}]:80`]: BACKENDS6.join(',') } },
      { name: 'empty', protocol: 'tcp', vips: { [`${EMPTY_VIP}:80`]: '' } },
      { name: 'rej', protocol: 'tcp', vips: { [`${REJECT_VIP}:80`]: '' }, options: { reject: 'true' } },
    ],
    logical_switches: [{ name: 'sw', ports: [LINK], load_balancer: ['web', 'web6', 'empty', 'rej'] }],
  };
}

let x: Xlb;
let ifindex = 0;

function xdp(data: Buffer): { retval: number; out: Buffer } {
  const r = x.dataplane.native.progTestRun(x.dataplane.progs.xlb_xdp_ingress, { data, ifindex, repeat: 1 });
  return { retval: r.retval, out: r.data };
}
function tcEgress(data: Buffer): void {
  x.dataplane.native.progTestRun(x.dataplane.progs.xlb_tc_egress, { data, ifindex, repeat: 1 });
}
const vipOf = (s: ShowReport, addr: string): ShowReport['vips'][number] => s.vips.find((v) => v.vip.startsWith(`${addr}:`))!;

/** The sum of the backends' flow counters as `xlb show` reports them. */
function backendSum(v: ShowReport['vips'][number]): Record<(typeof FLOW)[number], bigint> {
  const out = Object.fromEntries(FLOW.map((f) => [f, 0n])) as Record<(typeof FLOW)[number], bigint>;
  for (const b of v.backends) for (const f of FLOW) out[f] += b.stats[f];
  return out;
}
const flowOf = (s: Stats): Record<(typeof FLOW)[number], bigint> =>
  Object.fromEntries(FLOW.map((f) => [f, s[f]])) as Record<(typeof FLOW)[number], bigint>;

/** `n` TCP flows to VIP from distinct ports (SYN, ACK, and one backend reply each); the bytes sent each way. */
function flows4(n: number, sportBase: number): { fwd: bigint; rev: bigint } {
  let fwd = 0n;
  let rev = 0n;
  for (let i = 0; i < n; i++) {
    const sport = sportBase + i;
    const syn = buildPacket({ src: '192.168.51.1', dst: VIP, proto: 'tcp', sport, dport: 80 });
    const r = xdp(syn);
    expect(r.retval).toBe(XDP_PASS);
    const backend = `${r.out[30]}.${r.out[31]}.${r.out[32]}.${r.out[33]}`; // the rewritten destination
    expect(BACKENDS.some((b) => b.startsWith(`${backend}:`))).toBe(true);
    const ack = buildPacket({ src: '192.168.51.1', dst: VIP, proto: 'tcp', sport, dport: 80, tcpFlags: TCP_FLAGS.ack });
    expect(xdp(ack).retval).toBe(XDP_PASS);
    const reply = buildPacket({ src: backend, dst: '192.168.51.1', proto: 'tcp', sport: 8080, dport: sport, tcpFlags: TCP_FLAGS.syn | TCP_FLAGS.ack });
    tcEgress(reply);
    fwd += BigInt(syn.length + ack.length);
    rev += BigInt(reply.length);
  }
  return { fwd, rev };
}

beforeAll(() => {
  env = vethInstance('xlbvp');
  ({ link: LINK, ifindex } = env);
  x = Xlb.open(env.instance);
  x.apply(config(BACKENDS));
});

afterAll(() => env?.remove(x));

describe("a VIP's counters are its backends'", () => {
  it('IPv4: the VIP counts what its backends count, and its own row holds no flow counts', () => {
    const n = 12;
    const { fwd, rev } = flows4(n, 30000);
    const v = vipOf(x.show(), VIP);
    expect(flowOf(v.stats)).toEqual({ packets: BigInt(2 * n), bytes: fwd, replyPackets: BigInt(n), replyBytes: rev, newConns: BigInt(n) });
    expect(flowOf(v.stats)).toEqual(backendSum(v));
    expect(v.backends.filter((b) => b.stats.newConns > 0n).length).toBeGreaterThan(1); // spread: a real sum
    // the data plane wrote no flow counter in the VIP's row
    expect(flowOf(x.dataplane.vipStats(v.id))).toEqual({ packets: 0n, bytes: 0n, replyPackets: 0n, replyBytes: 0n, newConns: 0n });
  });

  it('IPv6: the same', () => {
    const n = 6;
    for (let i = 0; i < n; i++) {
      expect(xdp(buildPacket6({ src: 'fd00:51:2::1', dst: VIP6, proto: 'tcp', sport: 31000 + i, dport: 80 })).retval).toBe(XDP_PASS);
      expect(xdp(buildPacket6({ src: 'fd00:51:2::1', dst: VIP6, proto: 'tcp', sport: 31000 + i, dport: 80, tcpFlags: TCP_FLAGS.ack })).retval).toBe(XDP_PASS);
    }
    const v = vipOf(x.show(), `[${VIP6}]`);
    expect(v.stats).toMatchObject({ packets: BigInt(2 * n), newConns: BigInt(n) });
    expect(flowOf(v.stats)).toEqual(backendSum(v));
    expect(x.dataplane.vipStats(v.id)).toMatchObject({ packets: 0n, newConns: 0n });
  });

  it('drops and rejects still count per VIP', () => {
    const n = 5;
    for (let i = 0; i < n; i++) {
      expect(xdp(buildPacket({ src: '192.168.51.2', dst: EMPTY_VIP, proto: 'tcp', sport: 32000 + i, dport: 80 })).retval).toBe(XDP_DROP);
      // a reject is answered by the tc companion program: XDP passes it up to tc
      expect(xdp(buildPacket({ src: '192.168.51.2', dst: REJECT_VIP, proto: 'tcp', sport: 32000 + i, dport: 80 })).retval).toBe(XDP_PASS);
    }
    const s = x.show();
    expect(vipOf(s, EMPTY_VIP).stats).toMatchObject({ drops: BigInt(n), rejects: 0n, packets: 0n });
    expect(vipOf(s, REJECT_VIP).stats).toMatchObject({ rejects: BigInt(n), drops: 0n, packets: 0n });
    expect(vipOf(s, VIP).stats).toMatchObject({ drops: 0n, rejects: 0n });
  });

  it("removing a backend keeps the VIP's totals: until its id is reclaimed, then folded into the VIP's row", () => {
    const before = vipOf(x.show(), VIP);
    const gone = before.backends.find((b) => b.stats.packets > 0n)!;
    expect(gone).toBeDefined();
    x.apply(config(BACKENDS.filter((b) => b !== gone.text)));
    // Still counted from its row while the removal waits for a grace period (or already folded).
    const mid = vipOf(x.show(), VIP);
    expect(mid.backends.map((b) => b.id)).not.toContain(gone.id);
    expect(flowOf(mid.stats)).toEqual(flowOf(before.stats));
    x.reclaim();
    const after = vipOf(x.show(), VIP);
    expect(flowOf(after.stats)).toEqual(flowOf(before.stats));
    // The removed backend's counts are now the VIP's own (its row), the rest its backends'.
    expect(flowOf(x.dataplane.vipStats(after.id))).toEqual(flowOf(gone.stats));
    const rest = backendSum(after);
    for (const f of FLOW) expect(rest[f] + gone.stats[f]).toBe(after.stats[f]);
    expect(after.stats.drops).toBe(before.stats.drops);

    // The freed id handed out again (a backend added back takes the lowest free id): zeroed, and the VIP
    // keeps what it had; more traffic only adds.
    x.apply(config(BACKENDS));
    const back = vipOf(x.show(), VIP);
    expect(back.backends.find((b) => b.text === gone.text)!.stats).toMatchObject({ packets: 0n, newConns: 0n });
    expect(flowOf(back.stats)).toEqual(flowOf(before.stats));
    const more = flows4(4, 33000);
    const grown = vipOf(x.show(), VIP);
    expect(grown.stats.packets).toBe(before.stats.packets + 8n);
    expect(grown.stats.bytes).toBe(before.stats.bytes + more.fwd);
    expect(grown.stats.newConns).toBe(before.stats.newConns + 4n);
  });

  it("a restart reads the same totals (the folded counts live in the pinned VIP row)", () => {
    const before = x.show();
    x.close();
    x = Xlb.open(env.instance);
    const after = x.show();
    for (const v of before.vips) expect(vipOf(after, v.vip.split(/:(?=\d+$)/)[0]!).stats).toEqual(v.stats);
  });

  it('after a restart (no previous compile: the kernel diffed in full, nothing deferred) a removal folds at once', () => {
    const before = vipOf(x.show(), VIP);
    const ownBefore = x.dataplane.vipStats(before.id);
    const gone = before.backends.find((b) => b.stats.packets > 0n)!;
    x.apply(config(BACKENDS.filter((b) => b !== gone.text)));
    const after = vipOf(x.show(), VIP);
    expect(after.backends.map((b) => b.id)).not.toContain(gone.id);
    expect(flowOf(after.stats)).toEqual(flowOf(before.stats));
    const own = x.dataplane.vipStats(after.id);
    for (const f of FLOW) expect(own[f] - ownBefore[f]).toBe(gone.stats[f]);
    x.reclaim(); // nothing left to fold: counted once
    expect(flowOf(vipOf(x.show(), VIP).stats)).toEqual(flowOf(before.stats));
  });

  it("a protocol change keeps the VIP's id, and a backend removed with it still folds into the VIP's totals", () => {
    x.apply(config(BACKENDS));
    flows4(3, 34000);
    const before = vipOf(x.show(), VIP);
    const gone = before.backends.find((b) => b.stats.packets > 0n)!;
    expect(gone).toBeDefined();
    // The same VIP key in the same load balancer, now UDP, one backend fewer: its name changes, its id stays.
    x.apply(config(BACKENDS.filter((b) => b !== gone.text), 'udp'));
    x.reclaim();
    const after = vipOf(x.show(), VIP);
    expect(after.id).toBe(before.id);
    expect(after.backends.map((b) => b.id)).not.toContain(gone.id);
    expect(flowOf(after.stats)).toEqual(flowOf(before.stats));
    x.apply(config(BACKENDS));
    x.reclaim();
    expect(flowOf(vipOf(x.show(), VIP).stats)).toEqual(flowOf(before.stats));
  });
});
