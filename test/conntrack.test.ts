/**
 * Conntrack lifecycle against the real kernel (BPF_PROG_TEST_RUN): TCP state
 * in both directions, the garbage collector's per-state timeouts, LRU at
 * capacity, and OVN's ct_flush on backend removal.
 */
import { rmSync } from 'node:fs';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { Dataplane } from '../src/dataplane.js';
import { compile, type Compiled } from '../src/compile.js';
import { validateConfig } from '../src/config.js';
import { applyCompiled } from '../src/writer.js';
import { LAYOUT, XLB, decodeCt4Val, encodeCt4Key, encodeCt4Val, encodeU32 } from '../src/layout.js';
import { ct4KeyHash } from '../src/ctnew.js';
import { parseIPv4 } from '../src/addr.js';
import { gcConntrack, flushConntrack, monotonicNs, DEFAULT_CT_TIMEOUTS } from '../src/conntrack.js';
import { sleepSync } from '../src/sleep.js';
import { Xlb } from '../src/xlb.js';
import { buildPacket, parsePacket, TCP_FLAGS, type PacketSpec } from './helpers/packet.js';
import { closeAndUnpin } from './helpers/bpf.js';
import { ct4Get, idleStamp } from './helpers/ct.js';

const PIN_ROOT = `/sys/fs/bpf/xlb-test-ct-${process.pid}`;
const IFINDEX = 1;
const cfg = {
  load_balancers: [
    { name: 'web', vips: { '10.0.0.1:80': '10.1.0.1:8080,10.1.0.2:8080' } },
    { name: 'dns', protocol: 'udp', vips: { '10.0.0.1:53': '10.1.0.1:5353' } },
  ],
  logical_switches: [{ name: 'sw', ports: ['lo'], load_balancer: ['web', 'dns'] }],
};

let dp: Dataplane;
let compiled: Compiled;

const tc = (prog: 'xlb_tc_ingress' | 'xlb_tc_egress', spec: PacketSpec): ReturnType<typeof parsePacket> =>
  parsePacket(dp.native.progTestRun(dp.progs[prog], { data: buildPacket(spec), ifindex: IFINDEX }).data);

function entry(src: string, dst: string, sport: number, dport: number, proto = 6): ReturnType<typeof decodeCt4Val> | null {
  const k = encodeCt4Key({ saddr: parseIPv4(src), daddr: parseIPv4(dst), sport, dport, proto });
  // Either tier: the main table, or the new-flow tier until the backend confirms the flow.
  const v = ct4Get(dp, k);
  return v ? decodeCt4Val(v) : null;
}

function count(): number {
  return dp.conntrack().keys.length;
}

beforeAll(() => {
  dp = Dataplane.open({ pinRoot: PIN_ROOT });
  compiled = compile(validateConfig(cfg));
  applyCompiled(dp.store(), compiled, new Map([['lo', IFINDEX]]));
});

afterAll(() => closeAndUnpin(dp, PIN_ROOT));

beforeEach(() => {
  flushConntrack(dp, () => true);
});

describe('TCP state', () => {
  it('follows SYN → SYN-ACK → established → FIN → closing in both directions', () => {
    const c = { src: '192.168.1.10', dst: '10.0.0.1', proto: 'tcp' as const, sport: 40000, dport: 80 };
    const be = tc('xlb_tc_ingress', c).dst;
    expect(entry('192.168.1.10', '10.0.0.1', 40000, 80)!.state).toBe(XLB.CT_SYN);
    expect(entry(be, '192.168.1.10', 8080, 40000)!.state).toBe(XLB.CT_SYN);
    tc('xlb_tc_egress', { src: be, dst: '192.168.1.10', proto: 'tcp', sport: 8080, dport: 40000, tcpFlags: TCP_FLAGS.syn | TCP_FLAGS.ack });
    expect(entry('192.168.1.10', '10.0.0.1', 40000, 80)!.state).toBe(XLB.CT_EST);
    expect(entry(be, '192.168.1.10', 8080, 40000)!.state).toBe(XLB.CT_EST);
    tc('xlb_tc_ingress', { ...c, tcpFlags: TCP_FLAGS.ack });
    expect(entry('192.168.1.10', '10.0.0.1', 40000, 80)!.state).toBe(XLB.CT_EST);
    tc('xlb_tc_ingress', { ...c, tcpFlags: TCP_FLAGS.fin | TCP_FLAGS.ack });
    expect(entry('192.168.1.10', '10.0.0.1', 40000, 80)!.state).toBe(XLB.CT_CLOSING);
    expect(entry(be, '192.168.1.10', 8080, 40000)!.state).toBe(XLB.CT_CLOSING);
  });

  it('an RST from the backend closes the flow', () => {
    const be = tc('xlb_tc_ingress', { src: '192.168.1.11', dst: '10.0.0.1', proto: 'tcp', sport: 40001, dport: 80 }).dst;
    tc('xlb_tc_egress', { src: be, dst: '192.168.1.11', proto: 'tcp', sport: 8080, dport: 40001, tcpFlags: TCP_FLAGS.rst });
    expect(entry('192.168.1.11', '10.0.0.1', 40001, 80)!.state).toBe(XLB.CT_CLOSING);
  });

  it('UDP flows carry no TCP state', () => {
    tc('xlb_tc_ingress', { src: '192.168.1.12', dst: '10.0.0.1', proto: 'udp', sport: 5000, dport: 53 });
    expect(entry('192.168.1.12', '10.0.0.1', 5000, 53, 17)!.state).toBe(XLB.CT_NONE);
  });
});

describe('clock', () => {
  /** The coarse clock moves at ticks (at most 10 ms apart at HZ=100); the program caches it per jiffy. */
  const TICK_NS = 10_000_000n;

  it('stamps entries with CLOCK_MONOTONIC as of the last tick, and the per-CPU cache moves on', () => {
    const stamps: bigint[] = [];
    for (let i = 0; i < 3; i++) {
      const before = monotonicNs();
      tc('xlb_tc_ingress', { src: '192.168.5.1', dst: '10.0.0.1', proto: 'udp', sport: 43000 + i, dport: 53 });
      const after = monotonicNs();
      const v = entry('192.168.5.1', '10.0.0.1', 43000 + i, 53, 17)!;
      expect(v.lastSeenNs).toBeLessThanOrEqual(after);
      expect(v.lastSeenNs).toBeGreaterThanOrEqual(before - 2n * TICK_NS);
      stamps.push(v.lastSeenNs);
      sleepSync(50);
    }
    // 50 ms apart: each later stamp is later (the cached value was re-read).
    expect(stamps[1]! - stamps[0]!).toBeGreaterThanOrEqual(50_000_000n - 2n * TICK_NS);
    expect(stamps[2]! - stamps[1]!).toBeGreaterThanOrEqual(50_000_000n - 2n * TICK_NS);
  });
});

describe('garbage collector', () => {
  it('removes flows idle past their state timeout, both directions together, and keeps the rest', () => {
    // A closing TCP flow, an established one, a UDP one.
    const closing = { src: '192.168.2.1', dst: '10.0.0.1', proto: 'tcp' as const, sport: 41000, dport: 80 };
    tc('xlb_tc_ingress', closing);
    tc('xlb_tc_ingress', { ...closing, tcpFlags: TCP_FLAGS.fin | TCP_FLAGS.ack });
    const est = { src: '192.168.2.2', dst: '10.0.0.1', proto: 'tcp' as const, sport: 41001, dport: 80, tcpFlags: TCP_FLAGS.ack };
    tc('xlb_tc_ingress', est);
    tc('xlb_tc_ingress', { src: '192.168.2.3', dst: '10.0.0.1', proto: 'udp', sport: 41002, dport: 53 });
    expect(count()).toBe(6);
    // 5 s into the future: closing (1 s) and UDP (2 s) are idle past their timeouts.
    const later = monotonicNs() + 5_000_000_000n;
    const r = gcConntrack(dp, { ...DEFAULT_CT_TIMEOUTS, tcpClosing: 1, udp: 2, tcpEstablished: 60 }, later);
    expect(r.scanned).toBe(6);
    expect(r.removed).toBe(4);
    expect(entry('192.168.2.1', '10.0.0.1', 41000, 80)).toBeNull();
    expect(entry('192.168.2.3', '10.0.0.1', 41002, 53, 17)).toBeNull();
    expect(entry('192.168.2.2', '10.0.0.1', 41001, 80)).not.toBeNull();
    // Nothing is idle yet at the present time with the defaults.
    expect(gcConntrack(dp).removed).toBe(0);
  });
});

describe('LRU at capacity', () => {
  it('a full table evicts and new connections keep being balanced', () => {
    const pin = `${PIN_ROOT}-small`;
    const small = Dataplane.open({ pinRoot: pin, mapSizes: { conntrack: 512, conntrackNew: 512 } });
    try {
      applyCompiled(small.store(), compile(validateConfig(cfg)), new Map([['lo', IFINDEX]]));
      let balanced = 0;
      for (let i = 0; i < 3000; i++) {
        const out = parsePacket(
          small.native.progTestRun(small.progs.xlb_xdp_ingress, {
            data: buildPacket({ src: `192.168.${3 + (i >> 8)}.${i & 0xff}`, dst: '10.0.0.1', proto: 'tcp', sport: 42000, dport: 80 }),
            ifindex: IFINDEX,
          }).data,
        );
        if (out.dst.startsWith('10.1.0.') && out.l4CsumOk) balanced++;
      }
      expect(balanced).toBe(3000);
      // Unanswered SYNs: all in the new-flow tier.
      const n = small.ct4New().length;
      expect(n).toBeLessThanOrEqual(512);
      expect(n).toBeGreaterThan(0);
    } finally {
      small.close();
      Dataplane.removePins(pin);
    }
  });
});

describe('ct_flush', () => {
  const instance = { pinRoot: `${PIN_ROOT}-x`, stateDir: `/run/xlb-test-ct-${process.pid}` };

  function lbConf(backends: string, flush: boolean): object {
    return {
      load_balancers: [{ name: 'web', vips: { '10.0.0.1:80': backends }, options: flush ? { ct_flush: true } : {} }],
      logical_switches: [{ name: 'sw', ports: [`${NS}/xlb-c0`], load_balancer: ['web'] }],
    };
  }
  const NS = `xlb-ctt-${process.pid}`;

  beforeAll(() => {
    execFileSync('ip', ['netns', 'add', NS]);
    execFileSync('ip', ['-n', NS, 'link', 'add', 'xlb-c0', 'type', 'veth', 'peer', 'name', 'xlb-c1']);
  });
  afterAll(() => {
    execFileSync('ip', ['netns', 'del', NS]);
  });

  it('removes the connections of a removed backend only when ct_flush=true', () => {
    const x = Xlb.open(instance);
    try {
      for (const flush of [false, true]) {
        x.apply(lbConf('10.1.0.1:8080,10.1.0.2:8080', flush));
        const vip = x.show().vips[0];
        const removed = vip.backends.find((b) => b.text === '10.1.0.2:8080')!.id;
        const kept = vip.backends.find((b) => b.text === '10.1.0.1:8080')!.id;
        // Write flows as the data plane records them.
        for (const [bid, addr] of [
          [removed, '10.1.0.2'],
          [kept, '10.1.0.1'],
        ] as const) {
          const k = encodeCt4Key({ saddr: parseIPv4('192.168.9.1'), daddr: parseIPv4('10.0.0.1'), sport: 1000 + bid, dport: 80, proto: 6 });
          const v = Buffer.alloc(LAYOUT.xlb_ct4_val.size);
          v.writeUInt32BE(parseIPv4(addr), 0);
          v.writeUInt16BE(8080, 4);
          v[6] = XLB.DIR_FWD;
          v.writeUInt32LE(vip.id, 8);
          v.writeUInt32LE(bid, 12);
          x.dataplane.native.mapUpdate(x.dataplane.maps.xlb_ct4, k, v);
        }
        const r = x.apply(lbConf('10.1.0.1:8080', flush));
        const left = x.conntrack().map((e) => e.nat);
        if (flush) {
          expect(r.flushed).toBe(1);
          expect(left).toEqual(['10.1.0.1:8080']);
        } else {
          expect(r.flushed).toBe(0);
          expect(left.sort()).toEqual(['10.1.0.1:8080', '10.1.0.2:8080']);
        }
        flushConntrack(x.dataplane, () => true);
      }
    } finally {
      x.close();
      Xlb.reset(instance);
      rmSync(instance.stateDir, { recursive: true, force: true });
    }
  });

  it('a flushed backend’s last counts, still in its flows’ entries, reach its VIP’s totals', () => {
    const x = Xlb.open(instance);
    try {
      x.apply(lbConf('10.1.0.1:8080,10.1.0.2:8080', true));
      const vip = x.show().vips[0];
      const removed = vip.backends.find((b) => b.text === '10.1.0.2:8080')!.id;
      const before = vip.stats;
      // An established flow whose last 3 packets (300 bytes) the data plane counted in its entry.
      const k = encodeCt4Key({ saddr: parseIPv4('192.168.9.3'), daddr: parseIPv4('10.0.0.1'), sport: 3456, dport: 80, proto: 6 });
      const pend = (3n << BigInt(XLB.CT_PEND_PKT_SHIFT)) | 300n;
      const v = encodeCt4Val({ natAddr: parseIPv4('10.1.0.2'), natPort: 8080, dir: XLB.DIR_FWD, state: XLB.CT_EST, vipId: vip.id, backendId: removed, lastSeenNs: monotonicNs(), pend });
      x.dataplane.native.mapUpdate(x.dataplane.maps.xlb_ct4, k, v);
      // A new table size as well: the table is swapped, not rewritten in place, so the removed
      // backend's entry goes at once (no grace period) and its counts move to the VIP in this apply.
      const conf = lbConf('10.1.0.1:8080', true) as { load_balancers: Array<{ options: Record<string, unknown> }> };
      conf.load_balancers[0]!.options.xlb_maglev_size = 1021;
      const r = x.apply(conf);
      expect(r.flushed).toBe(1);
      expect(x.show().vips[0].id).toBe(vip.id);
      const after = x.show().vips[0].stats;
      expect(after.packets - before.packets).toBe(3n);
      expect(after.bytes - before.bytes).toBe(300n);
    } finally {
      x.close();
      Xlb.reset(instance);
      rmSync(instance.stateDir, { recursive: true, force: true });
    }
  });

  it('a garbage collection rebuilds the filter of the established keys from what it left', () => {
    const x = Xlb.open(instance);
    try {
      x.apply(lbConf('10.1.0.1:8080', false));
      const dp = x.dataplane;
      const k = encodeCt4Key({ saddr: parseIPv4('192.168.9.2'), daddr: parseIPv4('10.0.0.1'), sport: 4321, dport: 80, proto: 6 });
      const v = Buffer.alloc(LAYOUT.xlb_ct4_val.size);
      v[6] = XLB.DIR_FWD;
      v[7] = XLB.CT_EST;
      v.writeBigUInt64LE(monotonicNs(), LAYOUT.xlb_ct4_val.offsets.last_seen_ns);
      dp.native.mapUpdate(dp.maps.xlb_ct4, k, v);
      // A second flow, idle for an hour (since boot on a machine up for less): the collection below removes it.
      const old = encodeCt4Key({ saddr: parseIPv4('192.168.9.2'), daddr: parseIPv4('10.0.0.1'), sport: 4322, dport: 80, proto: 6 });
      const ov = Buffer.from(v);
      const idle = idleStamp(3600, 60);
      ov.writeBigUInt64LE(idle.stampNs, LAYOUT.xlb_ct4_val.offsets.last_seen_ns);
      dp.native.mapUpdate(dp.maps.xlb_ct4, old, ov);
      // Each key's bit in the copy of the filter in use (bpf/lib/ctseen.h).
      const words = dp.native.mapInfo(dp.maps.xlb_ct4_seen).maxEntries;
      // (four bits in one word: a blocked Bloom filter)
      const at = (key: Buffer): { i: number; bits: bigint } => {
        const h = ct4KeyHash(key);
        const g = Math.imul(h, XLB.CT_SEEN_MULT) >>> 0;
        const bits = [h & 63, h >>> XLB.CT_SEEN_BIT2_SHIFT, g >>> XLB.CT_SEEN_BIT3_SHIFT, (g >>> XLB.CT_SEEN_BIT4_SHIFT) & 63];
        return { i: (h >>> 6) & (words - 1), bits: bits.reduce((m, b) => m | (1n << BigInt(b)), 0n) };
      };
      const seen = (key: Buffer): boolean => {
        const { i, bits } = at(key);
        const w = dp.native.mapLookup(dp.maps.xlb_ct4_seen, encodeU32(i), LAYOUT.xlb_ct_seen_word.size)!;
        return (w.readBigUInt64LE((dp.ct4Seen().active & (XLB.CT_SEEN_FILTERS - 1)) * 8) & bits) === bits;
      };
      // (else the test could not tell them apart: once k's bits are set, old's must not all be)
      const a = at(old);
      const b = at(k);
      expect(a.i !== b.i || (a.bits & b.bits) !== a.bits).toBe(true);
      expect(dp.ct4SeenRebuild()).toBe(2); // entries written from user space: learnt by a rebuild
      expect(seen(k) && seen(old)).toBe(true);
      const before = dp.ct4Seen();
      expect(x.gc({ tcpEstablished: idle.timeoutS }).removed).toBe(1); // the idle flow goes, the fresh one stays
      const after = dp.ct4Seen();
      expect(after.rebuilds).toBe(before.rebuilds + 1);
      expect(after.active).not.toBe(before.active);
      expect(seen(k)).toBe(true);
      expect(seen(old)).toBe(false); // the removed key left the filter
      expect(dp.ct4SeenRebuild()).toBe(1); // what the GC kept is what the filter holds
    } finally {
      x.close();
      Xlb.reset(instance);
      rmSync(instance.stateDir, { recursive: true, force: true });
    }
  });
});
