/**
 * Conntrack upkeep from the control plane. The data plane records each flow's
 * TCP state and last-seen time (coarse monotonic clock) in both directions;
 * here the garbage collector applies idle timeouts per state, and ct_flush
 * removes the flows of backends that left a pool.
 */
import { Ct4NewBusyError, type Dataplane } from './dataplane.js';
import { decodeCt4Key, decodeCt4Val, encodeCt4Key, LAYOUT, XLB, type Ct4Key, type Ct4Val } from './layout.js';
import { decodeCt6Key, decodeCt6Val, encodeCt6Key, type Ct6Key, type Ct6Val } from './layout.js';

/** Idle timeouts, in seconds. */
export interface ConntrackTimeouts {
  /** TCP: client SYN seen, not answered. */
  tcpSyn: number;
  /** TCP: answered. */
  tcpEstablished: number;
  /** TCP: FIN or RST seen. */
  tcpClosing: number;
  udp: number;
  /** SCTP (associations keep alive with heartbeats, 30 s apart by default). */
  sctp: number;
  /** Every other protocol (IP-only VIPs). */
  other: number;
}

/** Defaults close to OVS userspace conntrack's. */
export const DEFAULT_CT_TIMEOUTS: ConntrackTimeouts = {
  tcpSyn: 30,
  tcpEstablished: 86_400,
  tcpClosing: 30,
  udp: 60,
  sctp: 210, // Linux's nf_conntrack_sctp_timeout_established
  other: 30,
};

const PROTO_TCP = 6;
const PROTO_UDP = 17;
const PROTO_SCTP = 132;

/** The other direction's key, exactly as bpf/lib/conntrack.h derives it. */
export function otherKey(k: Ct4Key, v: Ct4Val): Ct4Key {
  const snat = ((v.flags ?? 0) & XLB.CT_F_SNAT) !== 0;
  if (v.dir === XLB.DIR_FWD) {
    const o = { saddr: v.natAddr, daddr: k.saddr, sport: v.natPort || k.dport, dport: k.sport, proto: k.proto };
    if (snat) {
      o.daddr = v.snatAddr ?? 0;
      o.dport = v.snatPort || k.sport;
    }
    return o;
  }
  const o = { saddr: k.daddr, daddr: v.natAddr, sport: k.dport, dport: v.natPort || k.sport, proto: k.proto };
  if (snat) {
    o.saddr = v.snatAddr ?? 0;
    o.sport = v.snatPort || k.dport;
  }
  return o;
}

export function timeoutFor(proto: number, state: number, t: ConntrackTimeouts): number {
  if (proto === PROTO_TCP) {
    if (state === XLB.CT_SYN) return t.tcpSyn;
    if (state === XLB.CT_CLOSING) return t.tcpClosing;
    return t.tcpEstablished;
  }
  return proto === PROTO_UDP ? t.udp : proto === PROTO_SCTP ? t.sctp : t.other;
}

/** The clock the data plane stamps entries with (CLOCK_MONOTONIC, coarse). */
export function monotonicNs(): bigint {
  return process.hrtime.bigint();
}

interface Entry {
  key: Buffer;
  k: Ct4Key;
  v: Ct4Val;
  /** Whether it is in the established tier xlb_ct4 (else in the new-flow tier xlb_ct4_new). */
  confirmed: boolean;
}

/** Both tiers' entries. A flow is in one tier (both directions together), so keys do not repeat
 *  but for a moment while the data plane moves one, or after a move whose new-tier delete found its
 *  bucket locked (that copy stays until its bucket replaces it); the main table's wins. */
function dump(dp: Dataplane): Map<string, Entry> {
  const ks = LAYOUT.xlb_ct4_key.size;
  const vs = LAYOUT.xlb_ct4_val.size;
  const out = new Map<string, Entry>();
  for (const e of dp.ct4New()) {
    out.set(e.key.toString('hex'), { key: e.key, k: decodeCt4Key(e.key), v: decodeCt4Val(e.val), confirmed: false });
  }
  const d = dp.native.mapDump(dp.maps.xlb_ct4, ks, vs);
  for (let i = 0; i < d.count; i++) {
    const key = Buffer.from(d.keys.subarray(i * ks, (i + 1) * ks));
    out.set(key.toString('hex'), { key, k: decodeCt4Key(key), v: decodeCt4Val(d.values.subarray(i * vs, (i + 1) * vs)), confirmed: true });
  }
  return out;
}

function deleteKeys(dp: Dataplane, entries: Entry[]): number {
  let n = 0;
  // An established entry may hold its flow's last counts (bpf/lib/stats.h): to the rows first.
  if (entries.some((e) => e.confirmed)) dp.ctFold(4);
  for (const e of entries) {
    if (e.confirmed) {
      if (dp.native.mapDelete(dp.maps.xlb_ct4, e.key)) n++;
      continue;
    }
    try {
      if (dp.ct4NewDelete(e.key)) n++;
    } catch (err) {
      // Its bucket stayed locked through every run: the next collection tries again.
      if (!(err instanceof Ct4NewBusyError)) throw err;
    }
  }
  return n;
}

export interface GcResult {
  /** Entries looked at (both directions count). */
  scanned: number;
  /** Entries removed. */
  removed: number;
}

/**
 * The hex keys of the entries of flows idle for longer than their state's
 * timeout (both directions; idle time from the later of the two). Shared by
 * the IPv4 and IPv6 tables.
 */
function idleFlows<E extends { k: { proto: number }; v: { state: number; lastSeenNs: bigint } }>(
  all: ReadonlyMap<string, E>,
  otherHexOf: (e: E) => string,
  timeouts: ConntrackTimeouts,
  now: bigint,
  /** Called with every entry, in the same pass. */
  each?: (e: E) => void,
): Set<string> {
  const doomed = new Set<string>();
  for (const [hex, e] of all) {
    each?.(e);
    if (doomed.has(hex)) continue;
    const otherHex = otherHexOf(e);
    const other = all.get(otherHex);
    const last = other && other.v.lastSeenNs > e.v.lastSeenNs ? other.v.lastSeenNs : e.v.lastSeenNs;
    const limit = BigInt(Math.round(timeoutFor(e.k.proto, e.v.state, timeouts) * 1e9));
    if (now - last > limit) {
      doomed.add(hex);
      if (other) doomed.add(otherHex);
    }
  }
  return doomed;
}

/**
 * Removes flows idle for longer than their state's timeout. A flow's idle time
 * is measured from the later of its two directions; both go together.
 */
export function gcConntrack(
  dp: Dataplane,
  timeouts: ConntrackTimeouts = DEFAULT_CT_TIMEOUTS,
  now = monotonicNs(),
  /** Called with each entry the scan read (either tier), those it then removes too: a flow that
   *  sends again while it is removed (a packet repairing the other direction, a promotion) may
   *  outlive its removal. */
  scanned?: (k: Ct4Key, v: Ct4Val) => void,
): GcResult {
  const all = dump(dp);
  const doomed = idleFlows(all, (e) => encodeCt4Key(otherKey(e.k, e.v)).toString('hex'), timeouts, now, scanned && ((e) => scanned(e.k, e.v)));
  const removed = deleteKeys(
    dp,
    [...doomed].map((h) => all.get(h)!),
  );
  return { scanned: all.size, removed };
}

/** Removes every flow (both directions) whose entry matches. Returns the count removed. */
export function flushConntrack(dp: Dataplane, match: (v: Ct4Val) => boolean): number {
  const doomed: Entry[] = [];
  for (const e of dump(dp).values()) if (match(e.v)) doomed.push(e);
  return deleteKeys(dp, doomed);
}

// ---------------------------------------------------------------------------
// IPv6 (xlb_ct6): the same rules over 16-byte addresses.

/** The other direction's key of an IPv6 entry, exactly as bpf/lib/conntrack6.h derives it. */
export function otherKey6(k: Ct6Key, v: Ct6Val): Ct6Key {
  if (v.dir === XLB.DIR_FWD) {
    return { saddr: v.natAddr, daddr: k.saddr, sport: v.natPort || k.dport, dport: k.sport, proto: k.proto };
  }
  return { saddr: k.daddr, daddr: v.natAddr, sport: k.dport, dport: v.natPort || k.sport, proto: k.proto };
}

interface Entry6 {
  key: Buffer;
  k: Ct6Key;
  v: Ct6Val;
  /** Whether the established tier (xlb_ct6) holds the key (deleteKeys6 tries both tiers). */
  confirmed: boolean;
}

function dump6(dp: Dataplane): Map<string, Entry6> {
  const ct = dp.conntrack6();
  const out = new Map<string, Entry6>();
  ct.keys.forEach((k, i) => {
    const key = Buffer.from(k);
    const hex = key.toString('hex');
    const confirmed = ct.confirmed[i]! || (out.get(hex)?.confirmed ?? false);
    out.set(hex, { key, k: decodeCt6Key(key), v: decodeCt6Val(ct.values[i]), confirmed });
  });
  return out;
}

function deleteKeys6(dp: Dataplane, entries: Entry6[]): number {
  let n = 0;
  // An established entry may hold its flow's last counts (bpf/lib/stats.h): to the rows first.
  if (entries.some((e) => e.confirmed)) dp.ctFold(6);
  // (A flow is in one of the two tiers.)
  for (const { key } of entries) if (dp.native.mapDelete(dp.maps.xlb_ct6, key) || dp.native.mapDelete(dp.maps.xlb_ct6_new, key)) n++;
  return n;
}

/** gcConntrack for the IPv6 table. */
export function gcConntrack6(
  dp: Dataplane,
  timeouts: ConntrackTimeouts = DEFAULT_CT_TIMEOUTS,
  now = monotonicNs(),
  /** As gcConntrack's. */
  scanned?: (k: Ct6Key, v: Ct6Val) => void,
): GcResult {
  const all = dump6(dp);
  const doomed = idleFlows(all, (e) => encodeCt6Key(otherKey6(e.k, e.v)).toString('hex'), timeouts, now, scanned && ((e) => scanned(e.k, e.v)));
  return { scanned: all.size, removed: deleteKeys6(dp, [...doomed].map((h) => all.get(h)!)) };
}

/** flushConntrack for the IPv6 table (the match sees vipId and backendId). */
export function flushConntrack6(dp: Dataplane, match: (v: { vipId: number; backendId: number }) => boolean): number {
  const doomed: Entry6[] = [];
  for (const e of dump6(dp).values()) if (match(e.v)) doomed.push(e);
  return deleteKeys6(dp, doomed);
}
