/**
 * Encoders and decoders for every BPF map key and value, mirroring
 * bpf/xlb_shared.h byte for byte. test/layout.test.ts checks the sizes and
 * offsets here against the ones the addon compiles from that header.
 *
 * Addresses and ports are network order in the maps (as in the packet);
 * everything else is host order (little-endian on every machine xlb runs on).
 */
import { endianness } from 'node:os';

if (endianness() !== 'LE') throw new Error('xlb supports little-endian hosts only');

/** The layout version this build writes; pinned maps of another version are refused. */
export const LAYOUT_VERSION = 29;

export const IPPROTO = { tcp: 6, udp: 17, sctp: 132 } as const;

/** Mirrors the #defines of xlb_shared.h that the control plane needs. */
export const XLB = {
  MAGLEV_HDR_SLOT: 0,
  MAGLEV_FIRST_SLOT: 1,
  MAGLEV_CLASSES: 7,
  MAGLEV_WORD_CLASSES: 6,
  MAGLEV_BYTE_CLASS: 6,
  MAGLEV_BYTE_IDS: 256,
  MAGLEV_BYTE_VALUE: 22528,
  MAGLEV_REC_SIZE: 12,
  MAGLEV_BYTE_SLOTS: 22528 - 4 - 12 * 256,
  MAGLEV_CLASS0_WORDS: 1024,
  MAGLEV_CLASS_SHIFT: 2,
  MAGLEV_TABLE_KEY: 0,
  BACKEND_NONE: 0,
  VIP_F_IP_ONLY: 1,
  VIP_F_AFFINITY: 2,
  VIP_F_REJECT: 4,
  BACKEND_F_DRAIN: 1,
  NS_PER_S: 1_000_000_000,
  CT_NONE: 0,
  CT_SYN: 1,
  CT_EST: 2,
  CT_CLOSING: 3,
  DIR_FWD: 1,
  DIR_REV: 2,
  IFACE_F_BALANCE: 1,
  IFACE_F_IP_ONLY: 2,
  IFACE_F_NEIGH: 4,
  VIP_F_SNAT_ADDR: 8,
  VIP_F_SNAT_BACKEND: 16,
  VIP_F_SNAT_CLIENT: 32,
  SNAT_K_BACKEND: 1,
  SNAT_K_CLIENT: 2,
  CT_F_SNAT: 1,
  CT_F_HAIRPIN: 2,
  CT_NEW_WAYS: 4,
  CT_SEEN_FILTERS: 2,
  CT_SEEN_BIT2_SHIFT: 26,
  CT_SEEN_MULT: 0x9e3779b1,
  CT_SEEN_BIT3_SHIFT: 26,
  CT_SEEN_BIT4_SHIFT: 20,
  CT_PEND_PKT_SHIFT: 36,
  FLOW_LOG_SLOTS: 256,
  FLOW_LOG_ID_SHIFT: 32,
  FLOW_LOG_F_REPLY: 2 ** 31,
  FLOW_LOG_F_NEW: 2 ** 30,
  FLOW_LOG_BYTES_MASK: 2 ** 30 - 1,
  FLOW_LOG_LOCK_TRIES: 64,
  FLOW_LOG_BUSY: 2 ** 31,
  ADDR_FILTER_WORDS: 4096,
  ADDR_FILTER_BITS_LOG2: 18,
  ADDR_FILTER_MULT: 0x9e3779b1,
  CTN_OP_GET: 1,
  CTN_OP_DELETE: 2,
  CTN_OP_SET: 3,
} as const;

/** xlb_vip_val.hash_fields bits, by OVN selection_fields name. */
export const HASH_FIELDS = {
  eth_src: 1 << 0,
  eth_dst: 1 << 1,
  ip_src: 1 << 2,
  ip_dst: 1 << 3,
  tp_src: 1 << 4,
  tp_dst: 1 << 5,
} as const;

/** Names of the per-CPU global counters, in enum xlb_global_counter order. */
export const GLOBAL_COUNTERS = [
  'packets',
  'not_ipv4',
  'malformed',
  'fragment',
  'ct_hit',
  'ct_recreate',
  'new_flow',
  'midstream',
  'no_backend',
  'ct_full',
  'nat_error',
  'icmp_related',
  'reject',
  'reject_fail',
  'neigh_reply',
  'ipv6',
  'ext_pass',
  'ct_promoted',
  'snat',
  'snat_no_port',
  'hairpin',
  'sctp_too_long',
  'ct_skip',
  'addr_skip',
  'ct_busy',
] as const;
export type GlobalCounter = (typeof GLOBAL_COUNTERS)[number];

/** Sizes and field offsets; must equal the C structs (checked by a test). */
export const LAYOUT = {
  xlb_vip4_key: { size: 12, offsets: { addr: 0, port: 4, proto: 6, pad: 7, scope: 8 } },
  xlb_vip_val: {
    size: 24,
    offsets: { vip_id: 0, flags: 4, hash_fields: 6, table_class: 7, affinity_timeout_s: 8, snat_addr: 12, hairpin_addr: 16, table_m: 20 },
  },
  xlb_affinity4_key: { size: 8, offsets: { client: 0, vip_id: 4 } },
  xlb_affinity4_val: { size: 16, offsets: { backend_id: 0, pad: 4, last_seen_ns: 8 } },
  xlb_backend4: { size: 8, offsets: { addr: 0, port: 4, flags: 6, pad: 7 } },
  xlb_maglev_rec: { size: 12, offsets: { id: 0, be: 4 } },
  xlb_ct4_key: { size: 16, offsets: { saddr: 0, daddr: 4, sport: 8, dport: 10, proto: 12, pad: 13 } },
  xlb_ct4_val: {
    size: 40,
    offsets: {
      nat_addr: 0,
      nat_port: 4,
      dir: 6,
      state: 7,
      vip_id: 8,
      backend_id: 12,
      last_seen_ns: 16,
      snat_addr: 24,
      snat_port: 28,
      flags: 30,
      pad: 31,
      pend: 32,
    },
  },
  xlb_ct4_way: { size: 56, offsets: { key: 0, val: 16 } },
  xlb_clock: { size: 16, offsets: { jiffies: 0, ns: 8 } },
  xlb_ct_seen_word: { size: 16, offsets: { bits: 0 } },
  xlb_ct_seen_ctl: { size: 8, offsets: { active: 0, rebuilds: 4 } },
  xlb_ct4_bucket: { size: 8 + 56 * 4, offsets: { ctl: 0, way: 8 } },
  xlb_flow_log: { size: 8 * (8 + 256), offsets: { head: 0, tail: 8, lock: 16, pad: 24, ent: 64 } },
  xlb_ct4_new_edit: { size: 64, offsets: { key: 0, val: 16, op: 56, result: 60 } },
  xlb_iface: { size: 16, offsets: { scope: 0, flags: 4, mac: 8, pad: 14 } },
  xlb_neigh4_key: { size: 8, offsets: { addr: 0, scope: 4 } },
  xlb_snat4_key: { size: 16, offsets: { prefixlen: 0, scope: 4, kind: 8, addr: 12 } },
  xlb_snat4_val: { size: 4, offsets: { addr: 0 } },
  xlb_neigh6_key: { size: 20, offsets: { addr: 0, scope: 16 } },
  xlb_stats: {
    size: 56,
    offsets: { packets: 0, bytes: 8, reply_packets: 16, reply_bytes: 24, new_conns: 32, drops: 40, rejects: 48 },
  },
  xlb_vip6_key: { size: 24, offsets: { addr: 0, port: 16, proto: 18, pad: 19, scope: 20 } },
  xlb_backend6: { size: 20, offsets: { addr: 0, port: 16, flags: 18, pad: 19 } },
  xlb_ct6_key: { size: 40, offsets: { saddr: 0, daddr: 16, sport: 32, dport: 34, proto: 36, pad: 37 } },
  xlb_ct6_val: {
    size: 48,
    offsets: { nat_addr: 0, nat_port: 16, dir: 18, state: 19, vip_id: 20, backend_id: 24, pad: 28, last_seen_ns: 32, pend: 40 },
  },
  xlb_affinity6_key: { size: 20, offsets: { client: 0, vip_id: 16 } },
} as const;

export interface Vip4Key {
  /** IPv4 address as a host-order uint32 (written in network order). */
  addr: number;
  /** 0 for an IP-only VIP. */
  port: number;
  /** 0 for an IP-only VIP. */
  proto: number;
  scope: number;
}
export interface VipVal {
  vipId: number;
  flags: number;
  /** HASH_FIELDS bits; 0 = the 5-tuple. */
  hashFields: number;
  /** Seconds; meaningful with VIP_F_AFFINITY. */
  affinityTimeoutS: number;
  /** With VIP_F_SNAT_ADDR: the source address (host-order uint32; default 0). */
  snatAddr?: number;
  /** Hairpin source address (0 or absent: the VIP). */
  hairpinAddr?: number;
  /** Size class of the VIP's Maglev table (maglevClass; absent: 0). */
  tableClass?: number;
  /** M of the VIP's Maglev table (absent: 0, no hint: the table's own M is read first). */
  tableM?: number;
}
/** One xlb_snat4 entry: in scope, addresses of `kind` within addr/prefixLen get source `snat`. */
export interface Snat4Entry {
  scope: number;
  kind: number;
  addr: number;
  prefixLen: number;
  snat: number;
}
export interface Backend4 {
  addr: number;
  port: number;
  /** BACKEND_F_* (default 0). */
  flags?: number;
}
export interface Affinity4Key {
  client: number;
  vipId: number;
}
export interface Affinity4Val {
  backendId: number;
  lastSeenNs: bigint;
}
export interface Ct4Key {
  saddr: number;
  daddr: number;
  sport: number;
  dport: number;
  proto: number;
}
export interface Ct4Val {
  natAddr: number;
  natPort: number;
  dir: number;
  /** CT_STATE (TCP state; NONE for other protocols). */
  state: number;
  vipId: number;
  backendId: number;
  lastSeenNs: bigint;
  /** With CT_F_SNAT: FWD the new source, REV the client restored as destination (default 0). */
  snatAddr?: number;
  snatPort?: number;
  /** CT_F_* (default 0). */
  flags?: number;
  /** Established tier: packets and bytes not yet in the backend's counter row, packed as the
   *  data plane adds them (CT_PEND_PKT_SHIFT; default 0: ctPending unpacks it). */
  pend?: bigint;
}
export interface Iface {
  scope: number;
  flags: number;
  /** With IFACE_F_NEIGH: the router port's MAC, "aa:bb:cc:dd:ee:ff" (default all zero). */
  mac?: string;
}
export interface Neigh4Key {
  /** IPv4 address as a host-order uint32 (written in network order). */
  addr: number;
  scope: number;
}
export interface Stats {
  packets: bigint;
  bytes: bigint;
  replyPackets: bigint;
  replyBytes: bigint;
  newConns: bigint;
  drops: bigint;
  /** Packets answered because of reject=true (RST / ICMP port unreachable). */
  rejects: bigint;
}

const L = LAYOUT;

export function encodeVip4Key(k: Vip4Key): Buffer {
  const b = Buffer.alloc(L.xlb_vip4_key.size);
  b.writeUInt32BE(k.addr >>> 0, L.xlb_vip4_key.offsets.addr);
  b.writeUInt16BE(k.port, L.xlb_vip4_key.offsets.port);
  b.writeUInt8(k.proto, L.xlb_vip4_key.offsets.proto);
  b.writeUInt32LE(k.scope >>> 0, L.xlb_vip4_key.offsets.scope);
  return b;
}
export function decodeVip4Key(b: Buffer): Vip4Key {
  return {
    addr: b.readUInt32BE(L.xlb_vip4_key.offsets.addr),
    port: b.readUInt16BE(L.xlb_vip4_key.offsets.port),
    proto: b.readUInt8(L.xlb_vip4_key.offsets.proto),
    scope: b.readUInt32LE(L.xlb_vip4_key.offsets.scope),
  };
}

export function encodeVipVal(v: VipVal): Buffer {
  const b = Buffer.alloc(L.xlb_vip_val.size);
  const o = L.xlb_vip_val.offsets;
  b.writeUInt32LE(v.vipId >>> 0, o.vip_id);
  b.writeUInt16LE(v.flags, o.flags);
  b.writeUInt8(v.hashFields, o.hash_fields);
  b.writeUInt8(v.tableClass ?? 0, o.table_class);
  b.writeUInt32LE((v.tableM ?? 0) >>> 0, o.table_m);
  b.writeUInt32LE(v.affinityTimeoutS >>> 0, o.affinity_timeout_s);
  b.writeUInt32BE((v.snatAddr ?? 0) >>> 0, o.snat_addr);
  b.writeUInt32BE((v.hairpinAddr ?? 0) >>> 0, o.hairpin_addr);
  return b;
}
export function decodeVipVal(b: Buffer): VipVal {
  const o = L.xlb_vip_val.offsets;
  return {
    vipId: b.readUInt32LE(o.vip_id),
    flags: b.readUInt16LE(o.flags),
    hashFields: b.readUInt8(o.hash_fields),
    affinityTimeoutS: b.readUInt32LE(o.affinity_timeout_s),
    snatAddr: b.readUInt32BE(o.snat_addr),
    hairpinAddr: b.readUInt32BE(o.hairpin_addr),
    tableClass: b.readUInt8(o.table_class),
    tableM: b.readUInt32LE(o.table_m),
  };
}

/** Bits of an xlb_snat4 key before the address (scope and kind match exactly). */
export const SNAT_KEY_FIXED_BITS = 64;

export function encodeSnat4Key(e: Pick<Snat4Entry, 'scope' | 'kind' | 'addr' | 'prefixLen'>): Buffer {
  const b = Buffer.alloc(L.xlb_snat4_key.size);
  const o = L.xlb_snat4_key.offsets;
  b.writeUInt32LE(SNAT_KEY_FIXED_BITS + e.prefixLen, o.prefixlen);
  b.writeUInt32LE(e.scope >>> 0, o.scope);
  b.writeUInt32LE(e.kind >>> 0, o.kind);
  b.writeUInt32BE(e.addr >>> 0, o.addr);
  return b;
}
export function encodeSnat4Val(snat: number): Buffer {
  const b = Buffer.alloc(L.xlb_snat4_val.size);
  b.writeUInt32BE(snat >>> 0, L.xlb_snat4_val.offsets.addr);
  return b;
}

export function encodeAffinity4Key(k: Affinity4Key): Buffer {
  const b = Buffer.alloc(L.xlb_affinity4_key.size);
  b.writeUInt32BE(k.client >>> 0, L.xlb_affinity4_key.offsets.client);
  b.writeUInt32LE(k.vipId >>> 0, L.xlb_affinity4_key.offsets.vip_id);
  return b;
}
export function decodeAffinity4Val(b: Buffer): Affinity4Val {
  return {
    backendId: b.readUInt32LE(L.xlb_affinity4_val.offsets.backend_id),
    lastSeenNs: b.readBigUInt64LE(L.xlb_affinity4_val.offsets.last_seen_ns),
  };
}

export function encodeBackend4(v: Backend4): Buffer {
  const b = Buffer.alloc(L.xlb_backend4.size);
  encodeBackend4Into(b, 0, v);
  return b;
}
/** encodeBackend4 into `b` at `off` (for values packed back to back). */
export function encodeBackend4Into(b: Buffer, off: number, v: Backend4): void {
  b.writeUInt32BE(v.addr >>> 0, off + L.xlb_backend4.offsets.addr);
  b.writeUInt16BE(v.port, off + L.xlb_backend4.offsets.port);
  b.writeUInt8(v.flags ?? 0, off + L.xlb_backend4.offsets.flags);
}
export function decodeBackend4(b: Buffer): Backend4 {
  return {
    addr: b.readUInt32BE(L.xlb_backend4.offsets.addr),
    port: b.readUInt16BE(L.xlb_backend4.offsets.port),
    flags: b.readUInt8(L.xlb_backend4.offsets.flags),
  };
}

export function encodeCt4Key(k: Ct4Key): Buffer {
  const b = Buffer.alloc(L.xlb_ct4_key.size);
  const o = L.xlb_ct4_key.offsets;
  b.writeUInt32BE(k.saddr >>> 0, o.saddr);
  b.writeUInt32BE(k.daddr >>> 0, o.daddr);
  b.writeUInt16BE(k.sport, o.sport);
  b.writeUInt16BE(k.dport, o.dport);
  b.writeUInt8(k.proto, o.proto);
  return b;
}
export function decodeCt4Key(b: Buffer): Ct4Key {
  const o = L.xlb_ct4_key.offsets;
  return {
    saddr: b.readUInt32BE(o.saddr),
    daddr: b.readUInt32BE(o.daddr),
    sport: b.readUInt16BE(o.sport),
    dport: b.readUInt16BE(o.dport),
    proto: b.readUInt8(o.proto),
  };
}

/** The fields the IPv4 and IPv6 conntrack values share (after nat_addr), at either's offsets. */
type CtValOffsets = Record<'nat_port' | 'dir' | 'state' | 'vip_id' | 'backend_id' | 'last_seen_ns' | 'pend', number>;
type CtValCommon = Pick<Ct4Val, 'natPort' | 'dir' | 'state' | 'vipId' | 'backendId' | 'lastSeenNs' | 'pend'>;
function writeCtVal(b: Buffer, o: CtValOffsets, v: CtValCommon): void {
  b.writeUInt16BE(v.natPort, o.nat_port);
  b.writeUInt8(v.dir, o.dir);
  b.writeUInt8(v.state, o.state);
  b.writeUInt32LE(v.vipId >>> 0, o.vip_id);
  b.writeUInt32LE(v.backendId >>> 0, o.backend_id);
  b.writeBigUInt64LE(v.lastSeenNs, o.last_seen_ns);
  b.writeBigUInt64LE(v.pend ?? 0n, o.pend);
}
function readCtVal(b: Buffer, o: CtValOffsets): CtValCommon {
  return {
    natPort: b.readUInt16BE(o.nat_port),
    dir: b.readUInt8(o.dir),
    state: b.readUInt8(o.state),
    vipId: b.readUInt32LE(o.vip_id),
    backendId: b.readUInt32LE(o.backend_id),
    lastSeenNs: b.readBigUInt64LE(o.last_seen_ns),
    pend: b.readBigUInt64LE(o.pend),
  };
}

export function encodeCt4Val(v: Ct4Val): Buffer {
  const b = Buffer.alloc(L.xlb_ct4_val.size);
  const o = L.xlb_ct4_val.offsets;
  b.writeUInt32BE(v.natAddr >>> 0, o.nat_addr);
  writeCtVal(b, o, v);
  b.writeUInt32BE((v.snatAddr ?? 0) >>> 0, o.snat_addr);
  b.writeUInt16BE(v.snatPort ?? 0, o.snat_port);
  b.writeUInt8(v.flags ?? 0, o.flags);
  return b;
}
export function decodeCt4Val(b: Buffer): Ct4Val {
  const o = L.xlb_ct4_val.offsets;
  return {
    natAddr: b.readUInt32BE(o.nat_addr),
    ...readCtVal(b, o),
    snatAddr: b.readUInt32BE(o.snat_addr),
    snatPort: b.readUInt16BE(o.snat_port),
    flags: b.readUInt8(o.flags),
  };
}

/** An entry's pending counts (Ct4Val.pend) as packets and bytes. */
export function ctPending(pend: bigint): { packets: bigint; bytes: bigint } {
  const shift = BigInt(XLB.CT_PEND_PKT_SHIFT);
  return { packets: pend >> shift, bytes: pend & ((1n << shift) - 1n) };
}

const MAC_LEN = 6;

export function encodeIface(v: Iface): Buffer {
  const b = Buffer.alloc(L.xlb_iface.size);
  b.writeUInt32LE(v.scope >>> 0, L.xlb_iface.offsets.scope);
  b.writeUInt32LE(v.flags >>> 0, L.xlb_iface.offsets.flags);
  if (v.mac) Buffer.from(v.mac.replace(/:/g, ''), 'hex').copy(b, L.xlb_iface.offsets.mac, 0, MAC_LEN);
  return b;
}
export function decodeIface(b: Buffer): Iface {
  const mac = b.subarray(L.xlb_iface.offsets.mac, L.xlb_iface.offsets.mac + MAC_LEN);
  const out: Iface = { scope: b.readUInt32LE(L.xlb_iface.offsets.scope), flags: b.readUInt32LE(L.xlb_iface.offsets.flags) };
  if (mac.some((x) => x !== 0)) out.mac = [...mac].map((x) => x.toString(16).padStart(2, '0')).join(':');
  return out;
}

export interface Neigh6Key {
  /** 16 bytes, network order. */
  addr: Buffer;
  scope: number;
}
export function encodeNeigh6Key(k: Neigh6Key): Buffer {
  const b = Buffer.alloc(L.xlb_neigh6_key.size);
  k.addr.copy(b, L.xlb_neigh6_key.offsets.addr, 0, 16);
  b.writeUInt32LE(k.scope >>> 0, L.xlb_neigh6_key.offsets.scope);
  return b;
}
export function decodeNeigh6Key(b: Buffer): Neigh6Key {
  return { addr: Buffer.from(b.subarray(0, 16)), scope: b.readUInt32LE(L.xlb_neigh6_key.offsets.scope) };
}

export function encodeNeigh4Key(k: Neigh4Key): Buffer {
  const b = Buffer.alloc(L.xlb_neigh4_key.size);
  b.writeUInt32BE(k.addr >>> 0, L.xlb_neigh4_key.offsets.addr);
  b.writeUInt32LE(k.scope >>> 0, L.xlb_neigh4_key.offsets.scope);
  return b;
}
export function decodeNeigh4Key(b: Buffer): Neigh4Key {
  return { addr: b.readUInt32BE(L.xlb_neigh4_key.offsets.addr), scope: b.readUInt32LE(L.xlb_neigh4_key.offsets.scope) };
}

export function encodeU32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n >>> 0);
  return b;
}
export function decodeU32(b: Buffer, off = 0): number {
  return b.readUInt32LE(off);
}

export function zeroStats(): Stats {
  return { packets: 0n, bytes: 0n, replyPackets: 0n, replyBytes: 0n, newConns: 0n, drops: 0n, rejects: 0n };
}

/** Sums ncpus xlb_stats values laid back to back (one per CPU: a per-CPU value, or one id's element of each CPU's row). */
export function decodeStatsPercpu(b: Buffer, ncpus: number): Stats {
  const o = L.xlb_stats.offsets;
  const s = zeroStats();
  for (let c = 0; c < ncpus; c++) {
    const base = c * L.xlb_stats.size;
    s.packets += b.readBigUInt64LE(base + o.packets);
    s.bytes += b.readBigUInt64LE(base + o.bytes);
    s.replyPackets += b.readBigUInt64LE(base + o.reply_packets);
    s.replyBytes += b.readBigUInt64LE(base + o.reply_bytes);
    s.newConns += b.readBigUInt64LE(base + o.new_conns);
    s.drops += b.readBigUInt64LE(base + o.drops);
    s.rejects += b.readBigUInt64LE(base + o.rejects);
  }
  return s;
}

/** Sums, for each element index in `at`, that xlb_stats element of every row (a row: xlb_stats values
 *  back to back, one CPU's span of ids). Wrapping u64 sums, as the counters themselves wrap. */
export function sumStatsRows(rows: readonly Buffer[], at: readonly number[]): Stats[] {
  const w = L.xlb_stats.size / 8;
  const acc = new BigUint64Array(at.length * w);
  for (const r of rows) {
    const b = r.byteOffset % 8 === 0 ? r : Buffer.from(r);
    const v = new BigUint64Array(b.buffer, b.byteOffset, Math.floor(b.length / 8));
    for (let i = 0; i < at.length; i++) {
      const from = at[i]! * w;
      const to = i * w;
      for (let k = 0; k < w; k++) acc[to + k] = acc[to + k]! + v[from + k]!;
    }
  }
  const o = L.xlb_stats.offsets;
  return at.map((_, i) => {
    const base = i * w;
    return {
      packets: acc[base + o.packets / 8]!,
      bytes: acc[base + o.bytes / 8]!,
      replyPackets: acc[base + o.reply_packets / 8]!,
      replyBytes: acc[base + o.reply_bytes / 8]!,
      newConns: acc[base + o.new_conns / 8]!,
      drops: acc[base + o.drops / 8]!,
      rejects: acc[base + o.rejects / 8]!,
    };
  });
}

/** Sums a per-CPU __u64 counter. */
export function decodeU64Percpu(b: Buffer, ncpus: number): bigint {
  let sum = 0n;
  for (let c = 0; c < ncpus; c++) sum += b.readBigUInt64LE(c * 8);
  return sum;
}

/** Words (u32) a Maglev table of word class k (0 .. MAGLEV_WORD_CLASSES − 1) holds: M + 1 of them at most. */
export function maglevClassWords(k: number): number {
  return XLB.MAGLEV_CLASS0_WORDS << (XLB.MAGLEV_CLASS_SHIFT * k);
}

/** Bytes of the inner map's value of size class k (a word class or the byte class). */
export function maglevClassBytes(k: number): number {
  return k === XLB.MAGLEV_BYTE_CLASS ? XLB.MAGLEV_BYTE_VALUE : maglevClassWords(k) * 4;
}

/** The word class of a Maglev table of `words` words (M + 1): the smallest that holds it. */
export function maglevWordClass(words: number): number {
  for (let k = 0; k < XLB.MAGLEV_WORD_CLASSES; k++) if (words <= maglevClassWords(k)) return k;
  throw new RangeError(`a Maglev table of ${words - 1} slots is larger than the largest size class (${maglevClassWords(XLB.MAGLEV_WORD_CLASSES - 1) - 1})`);
}

/** Scratch by backend id, for counting and placing a table's ids without clearing: `seen[id]` (and
 *  `placed[id]`) equal to the pass's stamp mark an id met (placed); positionAt[id] is its position. */
let seen = new Uint32Array(1 << 16);
let placed = new Uint32Array(1 << 16);
let positionAt = new Uint8Array(1 << 16);
let stampNow = 0;
/** A fresh stamp, with the scratch arrays covering ids up to maxId. */
function nextStamp(maxId: number): number {
  if (maxId >= seen.length) {
    const n = Math.max(maxId + 1, seen.length * 2);
    seen = new Uint32Array(n);
    placed = new Uint32Array(n);
    positionAt = new Uint8Array(n);
  }
  if (++stampNow === 0x1_0000_0000) {
    seen.fill(0);
    placed.fill(0);
    stampNow = 1;
  }
  return stampNow;
}
/** The largest id of a table's slots. */
function maxSlotId(table: Uint32Array): number {
  let max = 0;
  for (let i = 1; i < table.length; i++) {
    const id = table[i]!;
    if (id > max) max = id;
  }
  return max;
}
const classOf = new WeakMap<Uint32Array, number>();

/** Distinct ids of a table's slots, counted up to limit + 1; -1 when an id is past the scratch's end
 *  (given maxId, the scratch first grows to hold it). */
function countIds(table: Uint32Array, limit: number, maxId = 0): number {
  const stamp = nextStamp(maxId);
  const marks = seen;
  let distinct = 0;
  for (let i = 1; i < table.length; i++) {
    const id = table[i]!;
    if (id >= marks.length) return -1;
    if (marks[id] !== stamp) {
      marks[id] = stamp;
      if (++distinct > limit) break;
    }
  }
  return distinct;
}

/** The byte class where a table of at most `maxIds` distinct ids fits it and is the smaller, else the word class. */
function classFor(table: Uint32Array, maxIds: number): number {
  const word = maglevWordClass(table.length);
  const fits = maxIds <= XLB.MAGLEV_BYTE_IDS && table.length - 1 <= XLB.MAGLEV_BYTE_SLOTS;
  return fits && maglevClassBytes(word) > XLB.MAGLEV_BYTE_VALUE ? XLB.MAGLEV_BYTE_CLASS : word;
}

/**
 * Records what compile knows of a table it built: its slots hold at most `maxIds` distinct ids (the VIP's
 * backends; one, XLB_BACKEND_NONE, when it has none). When that is few enough for the byte class,
 * maglevClass answers without reading the table (10,000 tables of 64 KiB are 655 MB to read).
 */
export function noteMaglevIds(table: Uint32Array, maxIds: number): void {
  if (Math.max(maxIds, 1) <= XLB.MAGLEV_BYTE_IDS && !classOf.has(table)) classOf.set(table, classFor(table, maxIds));
}

/**
 * The size class of a Maglev table (word 0 = M, then M backend ids): the byte class where it holds the
 * table (at most MAGLEV_BYTE_IDS distinct ids, M ≤ MAGLEV_BYTE_SLOTS) in less memory than the table's
 * word class, else that word class. Tables are never mutated (compile.ts), so the answer is kept per table.
 */
export function maglevClass(table: Uint32Array): number {
  const known = classOf.get(table);
  if (known !== undefined) return known;
  const word = maglevWordClass(table.length);
  let cls = word;
  if (classFor(table, 0) !== word) {
    // One pass (the 10,000 tables of an apply are 655 MB, read from memory), again only when an id is
    // past the scratch's end (which then grows).
    let distinct = countIds(table, XLB.MAGLEV_BYTE_IDS);
    if (distinct < 0) distinct = countIds(table, XLB.MAGLEV_BYTE_IDS, maxSlotId(table));
    if (distinct <= XLB.MAGLEV_BYTE_IDS) cls = XLB.MAGLEV_BYTE_CLASS;
  }
  classOf.set(table, cls);
  return cls;
}

/** Byte offset of a byte-class table's records (recs[]) and of its slots (xlb_maglev_table6). */
export const MAGLEV_BYTE_RECS_AT = 4;
export const MAGLEV_BYTE_SLOTS_AT = MAGLEV_BYTE_RECS_AT + XLB.MAGLEV_REC_SIZE * XLB.MAGLEV_BYTE_IDS;
/** Byte offset of position p's record (its id; the copy of the backend's entry follows). */
export const byteRecAt = (p: number): number => MAGLEV_BYTE_RECS_AT + XLB.MAGLEV_REC_SIZE * p;

/**
 * The IPv4 backends' entries a byte-class table's records copy: xlb_backends as the kernel holds it
 * (LAYOUT.xlb_backend4, 8 bytes per id, from id 0). An id past its end, or of an IPv6 backend (held in
 * xlb_backends6), gets a copy of zeros: the data plane then reads xlb_backends (xlb_shared.h,
 * struct xlb_maglev_rec).
 */
export type BackendEntries = Buffer;

const REC_WORDS = XLB.MAGLEV_REC_SIZE / 4;
/** A Uint32Array view of `b`, which must be 4-byte aligned (Buffer.alloc'ed buffers are). */
function wordsOf(b: Buffer): Uint32Array {
  if (b.byteOffset % 4 !== 0) throw new RangeError('a byte-class table is encoded into a 4-byte-aligned buffer');
  return new Uint32Array(b.buffer, b.byteOffset, b.length >>> 2);
}

/**
 * Writes position p's record for `id` into a byte-class value viewed as words: the id, then (IPv4) its
 * entry as `entries` holds it with flags 0 (a slot never names a drained backend: the data plane reads
 * only the address and port).
 */
function writeRecord(words: Uint32Array, p: number, id: number, entries: Uint32Array | undefined): void {
  const w = (MAGLEV_BYTE_RECS_AT >>> 2) + REC_WORDS * p;
  words[w] = id;
  const e = 2 * id;
  const has = entries !== undefined && e + 1 < entries.length;
  words[w + 1] = has ? entries[e]! : 0; // address, network order as held
  words[w + 2] = has ? entries[e + 1]! & 0xffff : 0; // port, network order; flags and pad zero
}

/** maglevBytePositions' answer. */
export interface BytePositions {
  ids: Uint32Array;
  assigned: Uint8Array;
  positionOf: (id: number) => number;
}

/**
 * A byte-class table's positions: the id at each (`ids`, MAGLEV_BYTE_IDS of them, 0 where unused), which
 * positions this call placed an id at (`assigned`: XLB_BACKEND_NONE too, for an empty table), and the
 * position of each id (`positionOf`, valid until the next call). An id in `keep` (the ids a table's
 * records hold now) keeps its
 * position; a new id takes a position no kept id holds, one empty in `keep` first. With `named` (the
 * positions the table's current slots name), a new id takes only a position no slot names, so writing it
 * changes nothing a packet can read; null when there are not enough such positions (the table is then
 * replaced, not rewritten). Typed arrays indexed by id, no Map: 10,000 tables of 16,381 slots are
 * encoded in an apply.
 */
export function maglevBytePositions(table: Uint32Array, keep?: Uint32Array, named?: Uint8Array): BytePositions | null {
  const maxId = maxSlotId(table);
  const stamp = nextStamp(maxId);
  const marks = seen;
  const done = placed;
  const at = positionAt;
  const limit = XLB.MAGLEV_BYTE_IDS;
  const want: number[] = [];
  for (let i = 1; i < table.length; i++) {
    const id = table[i]!;
    if (marks[id] === stamp) continue;
    marks[id] = stamp;
    want.push(id);
  }
  if (want.length > limit) throw new RangeError(`a byte-class Maglev table holds at most ${limit} backends, not ${want.length}`);
  const ids = new Uint32Array(limit);
  const assigned = new Uint8Array(limit);
  if (keep) {
    for (let p = 0; p < Math.min(keep.length, limit); p++) {
      const id = keep[p]!;
      if (id === XLB.BACKEND_NONE || id > maxId || marks[id] !== stamp || done[id] === stamp) continue;
      done[id] = stamp;
      at[id] = p;
      ids[p] = id;
      assigned[p] = 1;
    }
  }
  const held = (p: number): boolean => keep !== undefined && p < keep.length && keep[p] !== XLB.BACKEND_NONE;
  const order: number[] = [];
  for (let p = 0; p < limit; p++) if (!assigned[p] && !named?.[p] && !held(p)) order.push(p);
  for (let p = 0; p < limit; p++) if (!assigned[p] && !named?.[p] && held(p)) order.push(p);
  let next = 0;
  for (const id of want) {
    if (done[id] === stamp) continue;
    if (next === order.length) return null; // (only with `named`: every free position is still read)
    const p = order[next++]!;
    done[id] = stamp;
    at[id] = p;
    ids[p] = id;
    assigned[p] = 1;
  }
  return { ids, assigned, positionOf: (id) => at[id]! };
}

/** A byte-class table's value: M, a record per position and a position per slot (positions as
 *  maglevBytePositions gives them; the records' copies from `entries`). */
export function encodeByteTable(table: Uint32Array, keep?: Uint32Array, entries?: BackendEntries): Buffer {
  const b = Buffer.alloc(XLB.MAGLEV_BYTE_VALUE);
  encodeByteTableInto(table, b, keep && (maglevBytePositions(table, keep) ?? undefined), entries);
  return b;
}

/**
 * The record position p of a byte-class table gets for `id` (12 bytes: xlb_maglev_rec), copying its
 * entry from `entries`.
 */
export function byteRecord(id: number, entries?: BackendEntries): Buffer {
  const b = Buffer.alloc(MAGLEV_BYTE_RECS_AT + XLB.MAGLEV_REC_SIZE);
  writeRecord(wordsOf(b), 0, id, entries && wordsOf(entries));
  return b.subarray(MAGLEV_BYTE_RECS_AT);
}

/**
 * encodeByteTable into `out` (4-byte aligned; zeroed past what it writes: M, the records and M slot bytes,
 * which it returns the length of). With `placed` (maglevBytePositions' answer for this table, its last
 * call), ids and slots take those positions; without, ids take positions in order of first appearance, in
 * one pass over the slots. Each record copies its backend's entry from `entries` (zeros without).
 */
export function encodeByteTableInto(table: Uint32Array, out: Buffer, placed?: BytePositions, entries?: BackendEntries): number {
  const m = table.length - 1;
  const len = MAGLEV_BYTE_SLOTS_AT + m;
  if (m > XLB.MAGLEV_BYTE_SLOTS || out.length < len) throw new RangeError(`a byte-class Maglev table of ${m} slots does not fit (at most ${XLB.MAGLEV_BYTE_SLOTS})`);
  const words = wordsOf(out);
  const slots = new Uint8Array(out.buffer, out.byteOffset + MAGLEV_BYTE_SLOTS_AT - 1, table.length);
  out.writeUInt32LE(table[XLB.MAGLEV_HDR_SLOT]!, 0);
  let ids: Uint32Array;
  if (placed) {
    ids = placed.ids;
    const { positionOf } = placed;
    for (let i = 1; i < table.length; i++) slots[i] = positionOf(table[i]!);
  } else {
    ids = freshIds;
    ids.fill(0);
    for (;;) {
      const past = encodeFresh(table, ids, slots);
      if (past < 0) break;
      nextStamp(past); // (`seen` grows to hold id `past`; the pass starts again)
    }
  }
  const e = entries && wordsOf(entries);
  for (let p = 0; p < XLB.MAGLEV_BYTE_IDS; p++) writeRecord(words, p, ids[p]!, e);
  out.fill(0, len);
  return len;
}
/** encodeByteTableInto's ids by position, without `placed`. */
const freshIds = new Uint32Array(XLB.MAGLEV_BYTE_IDS);

/**
 * encodeByteTableInto's pass without `keep`: ids take positions in order of first appearance. Returns -1,
 * or an id past the end of `seen` (nothing is valid then). The slots are read through a signed view (ids
 * are < 2^31): V8 keeps them small integers, a third faster than through the unsigned one.
 */
function encodeFresh(table: Uint32Array, ids: Uint32Array, slots: Uint8Array): number {
  const t = new Int32Array(table.buffer, table.byteOffset, table.length);
  const stamp = nextStamp(0);
  const marks = seen;
  const at = positionAt;
  const limit = XLB.MAGLEV_BYTE_IDS;
  let count = 0;
  for (let i = 1; i < t.length; i++) {
    const id = t[i]!;
    if (id >= marks.length) return id;
    if (marks[id] !== stamp) {
      if (count === limit) throw new RangeError(`a byte-class Maglev table holds at most ${limit} backends, not more`);
      marks[id] = stamp;
      at[id] = count;
      ids[count++] = id;
    }
    slots[i] = at[id]!;
  }
  return -1;
}

/** A Maglev table (word 0 = M, then M backend ids) as the value of its class's inner map: zero-padded. */
export function encodeTable(table: Uint32Array): Buffer {
  const cls = maglevClass(table);
  if (cls === XLB.MAGLEV_BYTE_CLASS) return encodeByteTable(table);
  const b = Buffer.alloc(maglevClassBytes(cls));
  Buffer.from(table.buffer, table.byteOffset, table.byteLength).copy(b);
  return b;
}

/** The inverse of encodeTable for a value of size class `cls`: M + 1 words (M, then the backend ids). */
export function decodeTable(value: Buffer, cls: number): Uint32Array {
  const m = value.readUInt32LE(XLB.MAGLEV_HDR_SLOT * 4);
  if (cls === XLB.MAGLEV_BYTE_CLASS) {
    const words = Math.min(m, XLB.MAGLEV_BYTE_SLOTS, value.length - MAGLEV_BYTE_SLOTS_AT) + 1;
    const t = new Uint32Array(Math.max(words, 1));
    t[0] = m;
    for (let i = 1; i < words; i++) t[i] = value.readUInt32LE(byteRecAt(value[MAGLEV_BYTE_SLOTS_AT + i - 1]!));
    return t;
  }
  const words = Math.min(m + 1, value.length >>> 2);
  const t = new Uint32Array(words);
  for (let i = 0; i < words; i++) t[i] = value.readUInt32LE(i * 4);
  return t;
}

// ---------------------------------------------------------------------------
// IPv6: addresses are 16-byte Buffers (network order), as in the packet.

export interface Vip6Key {
  addr: Buffer;
  port: number;
  proto: number;
  scope: number;
}
export interface Backend6 {
  addr: Buffer;
  port: number;
  flags?: number;
}
export interface Ct6Key {
  saddr: Buffer;
  daddr: Buffer;
  sport: number;
  dport: number;
  proto: number;
}
export interface Ct6Val {
  natAddr: Buffer;
  natPort: number;
  dir: number;
  state: number;
  vipId: number;
  backendId: number;
  lastSeenNs: bigint;
  /** As Ct4Val.pend (default 0). */
  pend?: bigint;
}

/** A copy of the 16-byte IPv6 address at `off`. */
function readAddr6(b: Buffer, off: number): Buffer {
  return Buffer.from(b.subarray(off, off + 16));
}

function addr6(a: Buffer): Buffer {
  if (a.length !== 16) throw new RangeError(`an IPv6 address has 16 bytes, not ${a.length}`);
  return a;
}

export function encodeVip6Key(k: Vip6Key): Buffer {
  const o = L.xlb_vip6_key.offsets;
  const b = Buffer.alloc(L.xlb_vip6_key.size);
  addr6(k.addr).copy(b, o.addr);
  b.writeUInt16BE(k.port, o.port);
  b.writeUInt8(k.proto, o.proto);
  b.writeUInt32LE(k.scope >>> 0, o.scope);
  return b;
}
export function decodeVip6Key(b: Buffer): Vip6Key {
  const o = L.xlb_vip6_key.offsets;
  return {
    addr: readAddr6(b, o.addr),
    port: b.readUInt16BE(o.port),
    proto: b.readUInt8(o.proto),
    scope: b.readUInt32LE(o.scope),
  };
}

export function encodeBackend6(v: Backend6): Buffer {
  const b = Buffer.alloc(L.xlb_backend6.size);
  encodeBackend6Into(b, 0, v);
  return b;
}
/** encodeBackend6 into `b` at `off` (for values packed back to back). */
export function encodeBackend6Into(b: Buffer, off: number, v: Backend6): void {
  const o = L.xlb_backend6.offsets;
  addr6(v.addr).copy(b, off + o.addr);
  b.writeUInt16BE(v.port, off + o.port);
  b.writeUInt8(v.flags ?? 0, off + o.flags);
}
export function decodeBackend6(b: Buffer): Backend6 {
  const o = L.xlb_backend6.offsets;
  return { addr: readAddr6(b, o.addr), port: b.readUInt16BE(o.port), flags: b.readUInt8(o.flags) };
}

export function encodeCt6Key(k: Ct6Key): Buffer {
  const o = L.xlb_ct6_key.offsets;
  const b = Buffer.alloc(L.xlb_ct6_key.size);
  addr6(k.saddr).copy(b, o.saddr);
  addr6(k.daddr).copy(b, o.daddr);
  b.writeUInt16BE(k.sport, o.sport);
  b.writeUInt16BE(k.dport, o.dport);
  b.writeUInt8(k.proto, o.proto);
  return b;
}
export function decodeCt6Key(b: Buffer): Ct6Key {
  const o = L.xlb_ct6_key.offsets;
  return {
    saddr: readAddr6(b, o.saddr),
    daddr: readAddr6(b, o.daddr),
    sport: b.readUInt16BE(o.sport),
    dport: b.readUInt16BE(o.dport),
    proto: b.readUInt8(o.proto),
  };
}

export function encodeCt6Val(v: Ct6Val): Buffer {
  const o = L.xlb_ct6_val.offsets;
  const b = Buffer.alloc(L.xlb_ct6_val.size);
  addr6(v.natAddr).copy(b, o.nat_addr);
  writeCtVal(b, o, v);
  return b;
}
export function decodeCt6Val(b: Buffer): Ct6Val {
  const o = L.xlb_ct6_val.offsets;
  return {
    natAddr: readAddr6(b, o.nat_addr),
    ...readCtVal(b, o),
  };
}

export function encodeAffinity6Key(k: { client: Buffer; vipId: number }): Buffer {
  const o = L.xlb_affinity6_key.offsets;
  const b = Buffer.alloc(L.xlb_affinity6_key.size);
  addr6(k.client).copy(b, o.client);
  b.writeUInt32LE(k.vipId >>> 0, o.vip_id);
  return b;
}
