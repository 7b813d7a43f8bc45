/**
 * The established tier's key filter (bpf/lib/ctseen.h) through
 * BPF_PROG_TEST_RUN (private pin root): a new flow's SYN skips the
 * established tier only when that tier surely does not hold its key; a SYN
 * of a reused 5-tuple still finds its old entry; the rebuild drops the keys
 * of removed entries and keeps those of live ones, and flips the copy in use.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { Dataplane } from '../src/dataplane.js';
import { compile } from '../src/compile.js';
import { validateConfig } from '../src/config.js';
import { applyCompiled } from '../src/writer.js';
import { decodeCt4Val, encodeCt4Key, encodeCt4Val, LAYOUT, XLB } from '../src/layout.js';
import { parseIPv4 } from '../src/addr.js';
import { buildPacket, parsePacket, TCP_FLAGS } from './helpers/packet.js';
import { closeAndUnpin } from './helpers/bpf.js';
import { ct4Clear } from './helpers/ct.js';

const PIN_ROOT = `/sys/fs/bpf/xlb-seen-${process.pid}`;
const IFINDEX = 1;
const VIP = '10.0.0.1';
const BACKENDS = ['10.1.0.1', '10.1.0.2'];
/** An address no backend has: a SYN sent there was steered by an established entry. */
const SENTINEL = '10.9.9.9';
const VS = LAYOUT.xlb_ct4_val.size;

let dp: Dataplane;

function run(prog: number, data: Buffer): Buffer {
  return dp.native.progTestRun(prog, { data, ifindex: IFINDEX, repeat: 1 }).data;
}
const ingress = (src: string, sport: number, flags: number): ReturnType<typeof parsePacket> =>
  parsePacket(run(dp.progs.xlb_xdp_ingress, buildPacket({ src, dst: VIP, proto: 'tcp', sport, dport: 80, tcpFlags: flags })));
const reply = (backend: string, client: string, sport: number, flags: number): void => {
  run(dp.progs.xlb_tc_egress, buildPacket({ src: backend, dst: client, proto: 'tcp', sport: 8080, dport: sport, tcpFlags: flags }));
};

/** A full TCP connection, confirmed into the established tier; returns its backend. */
function connect(client: string, sport: number): string {
  const promoted = dp.globalCounters().ct_promoted;
  const syn = ingress(client, sport, TCP_FLAGS.syn);
  reply(syn.dst, client, sport, TCP_FLAGS.syn | TCP_FLAGS.ack);
  ingress(client, sport, TCP_FLAGS.ack);
  reply(syn.dst, client, sport, TCP_FLAGS.ack | TCP_FLAGS.psh);
  expect(dp.globalCounters().ct_promoted - promoted).toBe(1n);
  return syn.dst;
}

const fwdKey = (client: string, sport: number): Buffer =>
  encodeCt4Key({ saddr: parseIPv4(client), daddr: parseIPv4(VIP), sport, dport: 80, proto: 6 });

/** Points the flow's established forward entry at SENTINEL (its key stays). */
function steerToSentinel(client: string, sport: number): void {
  const k = fwdKey(client, sport);
  const v = dp.native.mapLookup(dp.maps.xlb_ct4, k, VS);
  expect(v, 'the forward entry is in the established tier').not.toBeNull();
  dp.native.mapUpdate(dp.maps.xlb_ct4, k, encodeCt4Val({ ...decodeCt4Val(v!), natAddr: parseIPv4(SENTINEL) }));
}

/** Sends a SYN; returns where it went and whether it skipped the established tier. */
function syn(client: string, sport: number): { dst: string; skipped: boolean } {
  const before = dp.globalCounters();
  const p = ingress(client, sport, TCP_FLAGS.syn);
  const after = dp.globalCounters();
  return { dst: p.dst, skipped: after.ct_skip - before.ct_skip === 1n };
}

beforeAll(() => {
  Dataplane.removePins(PIN_ROOT);
  dp = Dataplane.open({ pinRoot: PIN_ROOT, mapSizes: { conntrack: 4096, conntrackNew: 1024 } });
  const c = compile(
    validateConfig({
      load_balancers: [{ name: 'web', protocol: 'tcp', vips: { [`${VIP}:80`]: BACKENDS.map((b) => `${b}:8080`).join(',') } }],
      logical_switches: [{ name: 'sw', ports: ['lo'], load_balancer: ['web'] }],
    }),
  );
  applyCompiled(dp.store(), c, new Map([['lo', IFINDEX]]));
});

afterAll(() => closeAndUnpin(dp, PIN_ROOT));

beforeEach(() => {
  ct4Clear(dp);
  dp.ct4SeenRebuild();
  dp.ct4SeenRebuild(); // both copies now hold no key
});

describe('the established tier key filter', () => {
  it('a new flow SYN skips the established tier and is balanced and tracked as before', () => {
    const s = syn('192.168.5.1', 1111);
    expect(s.skipped).toBe(true);
    expect(BACKENDS).toContain(s.dst);
    expect(dp.ct4NewLookup(fwdKey('192.168.5.1', 1111))).not.toBeNull();
  });

  it('packets other than a SYN without ACK never skip it', () => {
    connect('192.168.5.2', 2222);
    const before = dp.globalCounters().ct_skip;
    ingress('192.168.5.2', 2222, TCP_FLAGS.ack);
    ingress('192.168.5.2', 2223, TCP_FLAGS.ack); // an unknown flow mid-stream
    ingress('192.168.5.2', 2224, TCP_FLAGS.syn | TCP_FLAGS.ack);
    expect(dp.globalCounters().ct_skip).toBe(before);
  });

  it('a SYN of a reused 5-tuple finds the established entry the data plane wrote', () => {
    connect('192.168.5.3', 3333);
    steerToSentinel('192.168.5.3', 3333);
    const s = syn('192.168.5.3', 3333);
    expect(s).toEqual({ dst: SENTINEL, skipped: false });
  });

  it('a rebuild keeps the keys of live entries in both copies', () => {
    connect('192.168.5.4', 4444);
    steerToSentinel('192.168.5.4', 4444);
    const c0 = dp.ct4Seen();
    expect(dp.ct4SeenRebuild()).toBe(2); // both directions of the one flow
    expect(dp.ct4SeenRebuild()).toBe(2);
    const c1 = dp.ct4Seen();
    expect(c1.rebuilds - c0.rebuilds).toBe(2);
    expect(c1.active).toBe(c0.active); // flipped twice
    expect(syn('192.168.5.4', 4444)).toEqual({ dst: SENTINEL, skipped: false });
  });

  it('a key whose entry is gone costs the lookup until a rebuild drops it', () => {
    connect('192.168.5.5', 5555);
    ct4Clear(dp); // (the garbage collector or an LRU eviction: the bit stays)
    const stale = syn('192.168.5.5', 5555);
    expect(stale.skipped).toBe(false);
    expect(BACKENDS).toContain(stale.dst); // looked, missed, balanced
    ct4Clear(dp);
    const active = dp.ct4Seen().active;
    expect(dp.ct4SeenRebuild()).toBe(0);
    expect(dp.ct4Seen().active).toBe((active + 1) % XLB.CT_SEEN_FILTERS);
    expect(syn('192.168.5.5', 5555).skipped).toBe(true);
  });

  it('an entry written from user space is seen by SYNs once a rebuild marks it', () => {
    const k = fwdKey('192.168.5.6', 6666);
    const v = encodeCt4Val({
      natAddr: parseIPv4(SENTINEL),
      natPort: 8080,
      dir: XLB.DIR_FWD,
      state: XLB.CT_EST,
      vipId: 1,
      backendId: 1,
      lastSeenNs: 0n,
      snatAddr: 0,
      snatPort: 0,
      flags: 0,
    });
    dp.native.mapUpdate(dp.maps.xlb_ct4, k, v);
    // The data plane's marking does not see this write: the contract is a rebuild after it.
    expect(syn('192.168.5.6', 6666).skipped).toBe(true);
    ct4Clear(dp);
    dp.native.mapUpdate(dp.maps.xlb_ct4, k, v);
    expect(dp.ct4SeenRebuild()).toBe(1);
    expect(syn('192.168.5.6', 6666)).toEqual({ dst: SENTINEL, skipped: false });
  });
});

describe('established-tier filter: false positives with a full table', () => {
  const BIG_PIN = `/sys/fs/bpf/xlb-seen-big-${process.pid}`;
  const KEYS = 400_000;
  const PROBES = 4000;
  let big: Dataplane;

  beforeAll(() => {
    Dataplane.removePins(BIG_PIN);
    big = Dataplane.open({ pinRoot: BIG_PIN, mapSizes: { conntrack: 1 << 19, conntrackNew: 1024 } });
    applyCompiled(
      big.store(),
      compile(
        validateConfig({
          load_balancers: [{ name: 'web', protocol: 'tcp', vips: { [`${VIP}:80`]: BACKENDS.map((b) => `${b}:8080`).join(',') } }],
          logical_switches: [{ name: 'sw', ports: ['lo'], load_balancer: ['web'] }],
        }),
      ),
      new Map([['lo', IFINDEX]]),
    );
  });

  afterAll(() => closeAndUnpin(big, BIG_PIN));

  it('with 400,000 keys held, fewer than 2 % of new flows’ SYNs are sent to look (four bits per key in 8 Mi bits; one bit in 4 Mi bits sent 8.6 %)', () => {
    const ks = LAYOUT.xlb_ct4_key.size;
    const keys = Buffer.alloc(KEYS * ks);
    for (let i = 0; i < KEYS; i++) {
      // 100.64.0.0/10 clients, 256 ports each: none of them sends a probe below.
      keys.writeUInt32BE((0x64400000 + (i >>> 8)) >>> 0, i * ks);
      keys.writeUInt32BE(parseIPv4(VIP), i * ks + 4);
      keys.writeUInt16BE(1024 + (i & 0xff), i * ks + 8);
      keys.writeUInt16BE(80, i * ks + 10);
      keys[i * ks + 12] = 6;
    }
    big.native.mapUpdateBatch(big.maps.xlb_ct4, keys, Buffer.alloc(KEYS * VS), KEYS, 0);
    expect(big.ct4SeenRebuild()).toBe(KEYS);
    const before = big.globalCounters();
    for (let i = 0; i < PROBES; i++) {
      const data = buildPacket({ src: `172.20.${i >> 8}.${i & 255}`, dst: VIP, proto: 'tcp', sport: 30000 + i, dport: 80, tcpFlags: TCP_FLAGS.syn });
      big.native.progTestRun(big.progs.xlb_xdp_ingress, { data, ifindex: IFINDEX, repeat: 1 });
    }
    const after = big.globalCounters();
    expect(after.new_flow - before.new_flow).toBe(BigInt(PROBES)); // every probe a new flow
    const looked = PROBES - Number(after.ct_skip - before.ct_skip);
    expect(looked / PROBES).toBeLessThan(0.02);
    expect(looked).toBeGreaterThan(0); // the filter is that full: some do look
  });
});
