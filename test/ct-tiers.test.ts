/**
 * Conntrack's two tiers through BPF_PROG_TEST_RUN (private pin root, small
 * tables), counting entries, not rates: a flood of new flows that no backend
 * confirms evicts no established flow; confirmed flows evict at most two main
 * entries each (the documented bound); new connections keep working.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { Dataplane } from '../src/dataplane.js';
import { compile } from '../src/compile.js';
import { validateConfig } from '../src/config.js';
import { applyCompiled } from '../src/writer.js';
import { encodeCt4Key, encodeU32, LAYOUT, XLB } from '../src/layout.js';
import { bucketEntries, ct4Bucket } from '../src/ctnew.js';
import { parseIPv4 } from '../src/addr.js';
import { buildPacket, parsePacket, TCP_FLAGS } from './helpers/packet.js';
import { closeAndUnpin } from './helpers/bpf.js';
import { ct4Clear } from './helpers/ct.js';
import { sleepSync as sleepMs } from '../src/sleep.js';

const PIN_ROOT = `/sys/fs/bpf/xlb-incr-ct-${process.pid}`;
const IFINDEX = 1;
const MAIN = 8192;
const NEW = 1024;
/** Established flows the main table holds before each flood (two entries each). */
const ESTABLISHED = 1500;
const FLOOD = Number(process.env.XLB_TEST_CT_FLOOD ?? 20_000);
const VIP = '10.0.0.1';
const BACKENDS = ['10.1.0.1', '10.1.0.2'];

let dp: Dataplane;

/** bpf_ktime_get_coarse_ns moves once a jiffy (at most 10 ms at HZ=100). */
const CLOCK_TICK_MS = 10;

function run(prog: number, data: Buffer): Buffer {
  return dp.native.progTestRun(prog, { data, ifindex: IFINDEX, repeat: 1 }).data;
}
const ingress = (src: string, sport: number, flags: number, proto: 'tcp' | 'udp' = 'tcp'): ReturnType<typeof parsePacket> =>
  parsePacket(run(dp.progs.xlb_xdp_ingress, buildPacket({ src, dst: VIP, proto, sport, dport: 80, tcpFlags: flags })));
const reply = (backend: string, client: string, sport: number, flags: number, proto: 'tcp' | 'udp' = 'tcp'): void => {
  run(dp.progs.xlb_tc_egress, buildPacket({ src: backend, dst: client, proto, sport: 8080, dport: sport, tcpFlags: flags }));
};

/** A full TCP connection: SYN, SYN-ACK, ACK, then the backend's first data: confirmed. */
function connect(client: string, sport: number): string {
  const syn = ingress(client, sport, TCP_FLAGS.syn);
  reply(syn.dst, client, sport, TCP_FLAGS.syn | TCP_FLAGS.ack);
  ingress(client, sport, TCP_FLAGS.ack);
  reply(syn.dst, client, sport, TCP_FLAGS.ack | TCP_FLAGS.psh);
  return syn.dst;
}

/** The keys of the established tier's entries. */
function mainKeys(): Set<string> {
  const d = dp.native.mapDump(dp.maps.xlb_ct4, LAYOUT.xlb_ct4_key.size, LAYOUT.xlb_ct4_val.size);
  const out = new Set<string>();
  for (let i = 0; i < d.count; i++) out.add(d.keys.subarray(i * 16, (i + 1) * 16).toString('hex'));
  return out;
}

/** The keys of the new-flow tier's entries. */
function newKeys(): Set<string> {
  return new Set(dp.ct4New().map((e) => e.key.toString('hex')));
}

function clear(): void {
  ct4Clear(dp);
}

/** ESTABLISHED confirmed flows from 100.64.x.y; returns the keys of their entries (both directions). */
function fillEstablished(): Set<string> {
  const out = new Set<string>();
  for (let i = 0; i < ESTABLISHED; i++) {
    const client = `100.64.${i >> 8}.${i & 255}`;
    const backend = connect(client, 40000);
    out.add(encodeCt4Key({ saddr: parseIPv4(client), daddr: parseIPv4(VIP), sport: 40000, dport: 80, proto: 6 }).toString('hex'));
    out.add(encodeCt4Key({ saddr: parseIPv4(backend), daddr: parseIPv4(client), sport: 8080, dport: 40000, proto: 6 }).toString('hex'));
  }
  return out;
}

const surviving = (est: Set<string>): number => {
  const main = mainKeys();
  let n = 0;
  for (const k of est) if (main.has(k)) n++;
  return n;
};

beforeAll(() => {
  Dataplane.removePins(PIN_ROOT);
  dp = Dataplane.open({ pinRoot: PIN_ROOT, mapSizes: { conntrack: MAIN, conntrackNew: NEW } });
  const c = compile(
    validateConfig({
      load_balancers: [
        { name: 'web', protocol: 'tcp', vips: { [`${VIP}:80`]: BACKENDS.map((b) => `${b}:8080`).join(',') } },
        { name: 'dns', protocol: 'udp', vips: { [`${VIP}:80`]: BACKENDS.map((b) => `${b}:8080`).join(',') } },
      ],
      logical_switches: [{ name: 'sw', ports: ['lo'], load_balancer: ['web', 'dns'] }],
    }),
  );
  applyCompiled(dp.store(), c, new Map([['lo', IFINDEX]]));
});

afterAll(() => closeAndUnpin(dp, PIN_ROOT));

beforeEach(() => clear());

describe('conntrack tiers', () => {
  it('a new flow waits in the new-flow tier until its backend answers with more than a SYN-ACK', () => {
    const k = encodeCt4Key({ saddr: parseIPv4('192.168.7.1'), daddr: parseIPv4(VIP), sport: 1234, dport: 80, proto: 6 }).toString('hex');
    const syn = ingress('192.168.7.1', 1234, TCP_FLAGS.syn);
    expect(newKeys().has(k)).toBe(true);
    expect(mainKeys().size).toBe(0);
    reply(syn.dst, '192.168.7.1', 1234, TCP_FLAGS.syn | TCP_FLAGS.ack);
    ingress('192.168.7.1', 1234, TCP_FLAGS.ack);
    expect(mainKeys().size).toBe(0);
    const promoted = dp.globalCounters().ct_promoted;
    reply(syn.dst, '192.168.7.1', 1234, TCP_FLAGS.ack);
    expect(dp.globalCounters().ct_promoted - promoted).toBe(1n);
    expect(mainKeys().has(k)).toBe(true);
    expect(mainKeys().size).toBe(2);
    expect(newKeys().size).toBe(0);
    // The flow keeps its backend, now from the main table.
    expect(ingress('192.168.7.1', 1234, TCP_FLAGS.ack).dst).toBe(syn.dst);
  });

  it("a flow's two entries share the bucket of its client side (the one src/ctnew.ts computes); a full bucket gives way to the entries seen longest ago (here also the first written: this does not tell LRU from FIFO)", () => {
    const buckets = dp.native.mapInfo(dp.maps.xlb_ct4_new).maxEntries;
    expect(buckets * XLB.CT_NEW_WAYS).toBe(NEW);
    const client = '192.168.9.1';
    const fwd = (sport: number): Buffer => encodeCt4Key({ saddr: parseIPv4(client), daddr: parseIPv4(VIP), sport, dport: 80, proto: 6 });
    const rev = (backend: string, sport: number): Buffer =>
      encodeCt4Key({ saddr: parseIPv4(backend), daddr: parseIPv4(client), sport: 8080, dport: sport, proto: 6 });
    const bucketKeys = (index: number): Set<string> => {
      const b = dp.native.mapLookup(dp.maps.xlb_ct4_new, encodeU32(index), LAYOUT.xlb_ct4_bucket.size)!;
      return new Set(bucketEntries(b).map((e) => e.key.toString('hex')));
    };
    const target = ct4Bucket(fwd(1024), XLB.DIR_FWD, buckets);
    const ports: number[] = [];
    for (let sport = 1024; ports.length < 3 && sport < 65536; sport++) if (ct4Bucket(fwd(sport), XLB.DIR_FWD, buckets) === target) ports.push(sport);
    expect(ports.length).toBe(3);
    const tick = (): void => sleepMs(2 * CLOCK_TICK_MS); // the coarse clock moves in ticks
    const [a, b, c] = ports as [number, number, number];
    const backendOf: Record<number, string> = {};
    for (const sport of [a, b]) {
      backendOf[sport] = ingress(client, sport, TCP_FLAGS.syn).dst;
      tick();
    }
    // Both entries of each flow, in the bucket src/ctnew.ts computes for either key.
    for (const sport of [a, b]) expect(ct4Bucket(rev(backendOf[sport]!, sport), XLB.DIR_REV, buckets)).toBe(target);
    expect(bucketKeys(target)).toEqual(new Set([a, b].flatMap((p) => [fwd(p), rev(backendOf[p]!, p)].map((k) => k.toString('hex')))));
    // Full: c's two entries replace the two seen longest ago, a's.
    backendOf[c] = ingress(client, c, TCP_FLAGS.syn).dst;
    expect(bucketKeys(target)).toEqual(new Set([b, c].flatMap((p) => [fwd(p), rev(backendOf[p]!, p)].map((k) => k.toString('hex')))));
    // A reply finds its entry there (un-NATed to the VIP).
    const out = parsePacket(
      dp.native.progTestRun(dp.progs.xlb_tc_egress, {
        data: buildPacket({ src: backendOf[b]!, dst: client, proto: 'tcp', sport: 8080, dport: b, tcpFlags: TCP_FLAGS.syn | TCP_FLAGS.ack }),
        ifindex: IFINDEX,
        repeat: 1,
      }).data,
    );
    expect(out.src).toBe(VIP);
    expect(out.sport).toBe(80);
    // The control plane removes one entry from the shared bucket; the others stay.
    expect(dp.ct4NewDelete(fwd(c))).toBe(true);
    expect(dp.ct4NewDelete(fwd(c))).toBe(false);
    expect(bucketKeys(target)).toEqual(new Set([fwd(b), rev(backendOf[b]!, b), rev(backendOf[c]!, c)].map((k) => k.toString('hex'))));
  });

  it('a bucket another writer keeps locked: a new flow is balanced untracked, a tracked one is dropped (not balanced again), the control plane says so (ct_busy); released, all works', () => {
    const buckets = dp.native.mapInfo(dp.maps.xlb_ct4_new).maxEntries;
    const client = '192.168.9.2';
    const fwd = (sport: number): Buffer => encodeCt4Key({ saddr: parseIPv4(client), daddr: parseIPv4(VIP), sport, dport: 80, proto: 6 });
    const target = ct4Bucket(fwd(2000), XLB.DIR_FWD, buckets);
    let other = 2001;
    while (ct4Bucket(fwd(other), XLB.DIR_FWD, buckets) !== target) other++;
    const index = encodeU32(target);
    const CTL = LAYOUT.xlb_ct4_bucket.offsets.ctl;
    const setLockBit = (on: boolean): void => {
      const b = dp.native.mapLookup(dp.maps.xlb_ct4_new, index, LAYOUT.xlb_ct4_bucket.size);
      if (!b) throw new Error('no bucket');
      b.writeBigUInt64LE(on ? b.readBigUInt64LE(CTL) | (1n << 63n) : b.readBigUInt64LE(CTL) & ~(1n << 63n), CTL);
      dp.native.mapUpdate(dp.maps.xlb_ct4_new, index, b);
    };
    const tracked = ingress(client, 2000, TCP_FLAGS.syn).dst;
    expect(dp.ct4NewLookup(fwd(2000))).not.toBeNull();
    const XDP_DROP = 1;
    const g0 = dp.globalCounters();
    let untracked = '';
    setLockBit(true);
    try {
      // A new flow: balanced all the same (by the consistent hash), not recorded.
      const syn = ingress(client, other, TCP_FLAGS.syn);
      expect(BACKENDS).toContain(syn.dst);
      untracked = syn.dst;
      const g1 = dp.globalCounters();
      expect(g1.ct_busy - g0.ct_busy).toBe(1n);
      expect(g1.ct_full - g0.ct_full).toBe(1n);
      expect(newKeys().has(fwd(other).toString('hex'))).toBe(false);
      // The tracked flow's next packet: dropped, not taken for a new flow.
      const r = dp.native.progTestRun(dp.progs.xlb_xdp_ingress, {
        data: buildPacket({ src: client, dst: VIP, proto: 'tcp', sport: 2000, dport: 80, tcpFlags: TCP_FLAGS.ack }),
        ifindex: IFINDEX,
        repeat: 1,
      });
      expect(r.retval).toBe(XDP_DROP);
      expect(dp.globalCounters().ct_busy - g1.ct_busy).toBe(1n);
      expect(dp.globalCounters().new_flow - g1.new_flow).toBe(0n);
      expect(() => dp.ct4NewLookup(fwd(2000))).toThrow(/xlb_ct4_new_edit \(op 1, key [0-9a-f]{32}\): its bucket stayed locked through 8 runs/);
    } finally {
      setLockBit(false);
    }
    const g2 = dp.globalCounters();
    expect(ingress(client, 2000, TCP_FLAGS.ack).dst).toBe(tracked);
    const syn = ingress(client, other, TCP_FLAGS.syn);
    expect(dp.ct4NewLookup(fwd(other))).not.toBeNull();
    // The same backend as while untracked: the retransmitted SYN does not move.
    expect(syn.dst).toBe(untracked);
    expect(dp.globalCounters().ct_busy - g2.ct_busy).toBe(0n);
  });

  it('a UDP flow is confirmed by any reply; a RST from the backend confirms nothing', () => {
    const u = ingress('192.168.7.2', 5000, 0, 'udp');
    reply(u.dst, '192.168.7.2', 5000, 0, 'udp');
    expect(mainKeys().size).toBe(2);
    const t = ingress('192.168.7.3', 5001, TCP_FLAGS.syn);
    reply(t.dst, '192.168.7.3', 5001, TCP_FLAGS.rst | TCP_FLAGS.ack);
    expect(mainKeys().size).toBe(2);
    expect(newKeys().size).toBe(2);
  });

  it(`a flood of ${FLOOD} new flows (SYNs, SYN-ACKed by the backends) evicts no established flow, and new connections still work`, () => {
    const est = fillEstablished();
    expect(surviving(est)).toBe(2 * ESTABLISHED);
    const busy = dp.globalCounters().ct_busy;
    for (let i = 0; i < FLOOD; i++) {
      const client = `172.30.${(i >> 8) & 255}.${i & 255}`;
      const sport = 1024 + (i >> 16);
      const syn = ingress(client, sport, TCP_FLAGS.syn);
      // The backend answers a spoofed SYN too: its SYN-ACK does not confirm the flow.
      if (i % 2 === 0) reply(syn.dst, client, sport, TCP_FLAGS.syn | TCP_FLAGS.ack);
    }
    expect(surviving(est)).toBe(2 * ESTABLISHED);
    expect(newKeys().size).toBeLessThanOrEqual(NEW);
    // Every bucket lock taken was released: no operation found one held.
    expect(dp.globalCounters().ct_busy - busy).toBe(0n);
    // Established flows keep their backends.
    for (let i = 0; i < ESTABLISHED; i += 97) {
      const client = `100.64.${i >> 8}.${i & 255}`;
      const k = encodeCt4Key({ saddr: parseIPv4(client), daddr: parseIPv4(VIP), sport: 40000, dport: 80, proto: 6 });
      const v = dp.native.mapLookup(dp.maps.xlb_ct4, k, LAYOUT.xlb_ct4_val.size)!;
      expect(ingress(client, 40000, TCP_FLAGS.ack).dst).toBe(
        [...v.subarray(0, 4)].join('.'),
      );
    }
    // A new connection is balanced, confirmed and kept.
    const backend = connect('192.168.8.1', 2000);
    expect(BACKENDS).toContain(backend);
    expect(mainKeys().has(encodeCt4Key({ saddr: parseIPv4('192.168.8.1'), daddr: parseIPv4(VIP), sport: 2000, dport: 80, proto: 6 }).toString('hex'))).toBe(true);
  }, 120_000);

  it('confirmed new flows evict at most two main entries each (the documented bound)', () => {
    const est = fillEstablished();
    const free = MAIN - 2 * ESTABLISHED;
    // More confirmed flows than the main table has room for.
    const confirmed = Math.ceil(free / 2) + 1000;
    const before = dp.globalCounters().ct_promoted;
    for (let i = 0; i < confirmed; i++) connect(`172.31.${i >> 8}.${i & 255}`, 3000);
    const promoted = Number(dp.globalCounters().ct_promoted - before);
    expect(promoted).toBe(confirmed);
    const evicted = 2 * ESTABLISHED - surviving(est);
    expect(evicted).toBeGreaterThan(0); // the table did overflow
    expect(evicted).toBeLessThanOrEqual(2 * promoted);
  }, 120_000);
});
