// src/layout.ts against bpf/xlb_shared.h: sizes and offsets as compiled into
// the native addon (needs `npm run build:native`), round trips, and bytes.
import { describe, it, expect } from 'vitest';
import {
  LAYOUT,
  LAYOUT_VERSION,
  GLOBAL_COUNTERS,
  XLB,
  IPPROTO,
  decodeBackend4,
  decodeCt4Key,
  ctPending,
  decodeCt4Val,
  decodeCt6Val,
  encodeCt6Val,
  type Ct6Val,
  decodeIface,
  decodeNeigh4Key,
  encodeNeigh4Key,
  decodeNeigh6Key,
  encodeNeigh6Key,
  decodeStatsPercpu,
  sumStatsRows,
  decodeU32,
  decodeU64Percpu,
  decodeVip4Key,
  decodeVipVal,
  encodeBackend4,
  encodeBackend4Into,
  encodeCt4Key,
  encodeCt4Val,
  encodeIface,
  encodeSnat4Key,
  encodeSnat4Val,
  encodeTable,
  decodeTable,
  maglevClass,
  maglevClassWords,
  maglevClassBytes,
  maglevWordClass,
  maglevBytePositions,
  encodeByteTable,
  byteRecAt,
  byteRecord,
  MAGLEV_BYTE_SLOTS_AT,
  encodeU32,
  encodeVip4Key,
  encodeVipVal,
  zeroStats,
  type Ct4Val,
} from '../src/layout.js';
import { loadNative, type SharedStructName } from '../src/native.js';
import { parseIPv4, parseIPv6 } from '../src/addr.js';
import { DEFAULT_MAGLEV_SIZE, MAX_MAGLEV_SIZE } from '../src/config.js';

const native = loadNative();
const C = native.layout();
const STRUCTS = Object.keys(LAYOUT) as SharedStructName[];

describe('LAYOUT matches bpf/xlb_shared.h (as compiled into the addon)', () => {
  it('describes exactly the structs the addon reports', () => {
    expect(STRUCTS.length).toBeGreaterThan(0);
    expect([...STRUCTS].sort()).toEqual(Object.keys(C).sort());
  });

  it.each(STRUCTS)('%s: size and every field offset', (name) => {
    const ts = LAYOUT[name];
    const c = C[name];
    expect(c, `addon reports no ${name}`).toBeDefined();
    expect(ts.size).toBe(c.size);
    // Same field names, same offsets.
    expect(Object.keys(ts.offsets).sort()).toEqual(Object.keys(c.offsets).sort());
    for (const [field, off] of Object.entries(ts.offsets)) expect(off, `${name}.${field}`).toBe(c.offsets[field]);
  });

  it('has the layout version of the header', () => {
    expect(native.layoutVersion).toBe(LAYOUT_VERSION);
    expect(native.constants.XLB_LAYOUT_VERSION).toBe(LAYOUT_VERSION);
  });

  it('mirrors the #defines the control plane uses', () => {
    const k = native.constants;
    const pairs: Array<[string, number]> = [
      ['XLB_MAGLEV_HDR_SLOT', XLB.MAGLEV_HDR_SLOT],
      ['XLB_MAGLEV_FIRST_SLOT', XLB.MAGLEV_FIRST_SLOT],
      ['XLB_MAGLEV_CLASSES', XLB.MAGLEV_CLASSES],
      ['XLB_MAGLEV_WORD_CLASSES', XLB.MAGLEV_WORD_CLASSES],
      ['XLB_MAGLEV_BYTE_CLASS', XLB.MAGLEV_BYTE_CLASS],
      ['XLB_MAGLEV_BYTE_IDS', XLB.MAGLEV_BYTE_IDS],
      ['XLB_MAGLEV_BYTE_VALUE', XLB.MAGLEV_BYTE_VALUE],
      ['XLB_MAGLEV_BYTE_SLOTS', XLB.MAGLEV_BYTE_SLOTS],
      ['XLB_MAGLEV_REC_SIZE', XLB.MAGLEV_REC_SIZE],
      ['XLB_MAGLEV_CLASS0_WORDS', XLB.MAGLEV_CLASS0_WORDS],
      ['XLB_MAGLEV_CLASS_SHIFT', XLB.MAGLEV_CLASS_SHIFT],
      ['XLB_MAGLEV_TABLE_KEY', XLB.MAGLEV_TABLE_KEY],
      ['XLB_BACKEND_NONE', XLB.BACKEND_NONE],
      ['XLB_VIP_F_IP_ONLY', XLB.VIP_F_IP_ONLY],
      ['XLB_DIR_FWD', XLB.DIR_FWD],
      ['XLB_DIR_REV', XLB.DIR_REV],
      ['XLB_IFACE_F_BALANCE', XLB.IFACE_F_BALANCE],
      ['XLB_IFACE_F_IP_ONLY', XLB.IFACE_F_IP_ONLY],
      ['XLB_IFACE_F_NEIGH', XLB.IFACE_F_NEIGH],
      ['XLB_VIP_F_REJECT', XLB.VIP_F_REJECT],
      ['XLB_CT_NEW_WAYS', XLB.CT_NEW_WAYS],
      ['XLB_CT_SEEN_FILTERS', XLB.CT_SEEN_FILTERS],
      ['XLB_CT_SEEN_BIT2_SHIFT', XLB.CT_SEEN_BIT2_SHIFT],
      ['XLB_CT_SEEN_MULT', XLB.CT_SEEN_MULT],
      ['XLB_CT_SEEN_BIT3_SHIFT', XLB.CT_SEEN_BIT3_SHIFT],
      ['XLB_CT_SEEN_BIT4_SHIFT', XLB.CT_SEEN_BIT4_SHIFT],
      ['XLB_CT_PEND_PKT_SHIFT', XLB.CT_PEND_PKT_SHIFT],
      ['XLB_ADDR_FILTER_WORDS', XLB.ADDR_FILTER_WORDS],
      ['XLB_ADDR_FILTER_BITS_LOG2', XLB.ADDR_FILTER_BITS_LOG2],
      ['XLB_ADDR_FILTER_MULT', XLB.ADDR_FILTER_MULT],
      ['XLB_CTN_OP_GET', XLB.CTN_OP_GET],
      ['XLB_CTN_OP_DELETE', XLB.CTN_OP_DELETE],
      ['XLB_CTN_OP_SET', XLB.CTN_OP_SET],
      ['XLB_G_ADDR_SKIP', GLOBAL_COUNTERS.indexOf('addr_skip')],
      ['XLB_VIP_F_SNAT_ADDR', XLB.VIP_F_SNAT_ADDR],
      ['XLB_VIP_F_SNAT_BACKEND', XLB.VIP_F_SNAT_BACKEND],
      ['XLB_VIP_F_SNAT_CLIENT', XLB.VIP_F_SNAT_CLIENT],
      ['XLB_SNAT_K_BACKEND', XLB.SNAT_K_BACKEND],
      ['XLB_SNAT_K_CLIENT', XLB.SNAT_K_CLIENT],
      ['XLB_CT_F_SNAT', XLB.CT_F_SNAT],
      ['XLB_CT_F_HAIRPIN', XLB.CT_F_HAIRPIN],
      ['XLB_FLOW_LOG_SLOTS', XLB.FLOW_LOG_SLOTS],
      ['XLB_FLOW_LOG_ID_SHIFT', XLB.FLOW_LOG_ID_SHIFT],
      ['XLB_FLOW_LOG_F_REPLY', XLB.FLOW_LOG_F_REPLY],
      ['XLB_FLOW_LOG_F_NEW', XLB.FLOW_LOG_F_NEW],
      ['XLB_FLOW_LOG_BYTES_MASK', XLB.FLOW_LOG_BYTES_MASK],
      ['XLB_FLOW_LOG_LOCK_TRIES', XLB.FLOW_LOG_LOCK_TRIES],
      ['XLB_FLOW_LOG_BUSY', XLB.FLOW_LOG_BUSY],
      ['XLB_MAGLEV_DEFAULT_M', DEFAULT_MAGLEV_SIZE],
      ['XLB_G_COUNT', GLOBAL_COUNTERS.length],
    ];
    for (const [n, v] of pairs) expect(k[n], n).toBe(v);
  });

  it('lists the global counters in enum xlb_global_counter order', () => {
    GLOBAL_COUNTERS.forEach((name, i) => expect(native.constants[`XLB_G_${name.toUpperCase()}`], name).toBe(i));
  });
});

describe('round trips', () => {
  it('xlb_vip4_key', () => {
    const k = { addr: parseIPv4('255.254.253.252'), port: 65535, proto: 17, scope: 0xfffffffe };
    const b = encodeVip4Key(k);
    expect(b.length).toBe(LAYOUT.xlb_vip4_key.size);
    expect(decodeVip4Key(b)).toEqual(k);
    expect(b[LAYOUT.xlb_vip4_key.offsets.pad]).toBe(0);
    const ipOnly = { addr: parseIPv4('10.0.0.1'), port: 0, proto: 0, scope: 1 };
    expect(decodeVip4Key(encodeVip4Key(ipOnly))).toEqual(ipOnly);
  });

  it('xlb_vip_val', () => {
    const v = {
      vipId: 16383,
      flags: XLB.VIP_F_IP_ONLY | XLB.VIP_F_AFFINITY | XLB.VIP_F_SNAT_ADDR,
      hashFields: 0b100100,
      affinityTimeoutS: 65535,
      snatAddr: parseIPv4('10.127.0.129'),
      hairpinAddr: parseIPv4('172.16.255.99'),
      tableClass: 5,
      tableM: 1_000_003,
    };
    const b = encodeVipVal(v);
    expect(b.length).toBe(LAYOUT.xlb_vip_val.size);
    expect(decodeVipVal(b)).toEqual(v);
  });

  it('xlb_backend4', () => {
    const v = { addr: parseIPv4('172.16.255.130'), port: 8000, flags: XLB.BACKEND_F_DRAIN };
    const b = encodeBackend4(v);
    expect(b.length).toBe(LAYOUT.xlb_backend4.size);
    expect(decodeBackend4(b)).toEqual(v);
    expect(b.toString('hex')).toBe('ac10ff82' + '1f40' + '01' + '00');
  });

  it('xlb_ct4_key', () => {
    const k = { saddr: parseIPv4('192.168.1.2'), daddr: parseIPv4('172.16.255.62'), sport: 54321, dport: 8000, proto: 6 };
    const b = encodeCt4Key(k);
    expect(b.length).toBe(LAYOUT.xlb_ct4_key.size);
    expect(decodeCt4Key(b)).toEqual(k);
    expect(b.toString('hex')).toBe('c0a80102' + 'ac10ff3e' + 'd431' + '1f40' + '06' + '000000');
  });

  it('xlb_ct4_val', () => {
    const v: Ct4Val = {
      natAddr: parseIPv4('172.16.255.131'),
      natPort: 8000,
      dir: XLB.DIR_REV,
      state: XLB.CT_EST,
      vipId: 3,
      backendId: 0x01020304,
      lastSeenNs: 0x0102030405060708n,
      snatAddr: parseIPv4('172.16.255.194'),
      snatPort: 40000,
      flags: XLB.CT_F_SNAT | XLB.CT_F_HAIRPIN,
      pend: (5n << BigInt(XLB.CT_PEND_PKT_SHIFT)) | 7000n,
    };
    const b = encodeCt4Val(v);
    expect(b.length).toBe(LAYOUT.xlb_ct4_val.size);
    expect(decodeCt4Val(b)).toEqual(v);
    const o = LAYOUT.xlb_ct4_val.offsets;
    expect(b.readUInt32LE(o.backend_id)).toBe(0x01020304);
    expect(b.readBigUInt64LE(o.last_seen_ns)).toBe(0x0102030405060708n);
    expect(b[o.dir]).toBe(2);
    expect(b.readUInt32BE(o.snat_addr)).toBe(parseIPv4('172.16.255.194'));
    expect(b.readUInt16BE(o.snat_port)).toBe(40000);
    expect(b[o.flags]).toBe(3);
    expect(ctPending(b.readBigUInt64LE(o.pend))).toEqual({ packets: 5n, bytes: 7000n });
    // Without pend an entry has no pending counts.
    expect(decodeCt4Val(encodeCt4Val({ ...v, pend: undefined })).pend).toBe(0n);
    // The largest u64 survives.
    const max = { ...v, lastSeenNs: 0xffffffffffffffffn };
    expect(decodeCt4Val(encodeCt4Val(max)).lastSeenNs).toBe(0xffffffffffffffffn);
  });

  it('xlb_ct6_val, with its pending counts', () => {
    const v: Ct6Val = {
      natAddr: parseIPv6('fd00:9:1::1'),
      natPort: 8080,
      dir: XLB.DIR_FWD,
      state: XLB.CT_EST,
      vipId: 7,
      backendId: 0x0a0b0c0d,
      lastSeenNs: 0x1112131415161718n,
      pend: (9n << BigInt(XLB.CT_PEND_PKT_SHIFT)) | 12345n,
    };
    const b = encodeCt6Val(v);
    expect(b.length).toBe(LAYOUT.xlb_ct6_val.size);
    expect(decodeCt6Val(b)).toEqual(v);
    expect(ctPending(b.readBigUInt64LE(LAYOUT.xlb_ct6_val.offsets.pend))).toEqual({ packets: 9n, bytes: 12345n });
    expect(decodeCt6Val(encodeCt6Val({ ...v, pend: undefined })).pend).toBe(0n);
  });

  it('xlb_iface', () => {
    const v = { scope: 7, flags: XLB.IFACE_F_BALANCE };
    const b = encodeIface(v);
    expect(b.length).toBe(LAYOUT.xlb_iface.size);
    expect(decodeIface(b)).toEqual(v);
    expect(b.toString('hex')).toBe('07000000' + '01000000' + '000000000000' + '0000');
    const port = { scope: 3, flags: XLB.IFACE_F_BALANCE | XLB.IFACE_F_NEIGH, mac: '0a:00:00:00:ff:01' };
    const pb = encodeIface(port);
    expect(decodeIface(pb)).toEqual(port);
    expect(pb.toString('hex')).toBe('03000000' + '05000000' + '0a000000ff01' + '0000');
  });

  it('xlb_neigh6_key', () => {
    const k = { addr: Buffer.from('fd00ff01000000000000000000000200', 'hex'), scope: 3 };
    const b = encodeNeigh6Key(k);
    expect(b.length).toBe(LAYOUT.xlb_neigh6_key.size);
    expect(decodeNeigh6Key(b)).toEqual(k);
    expect(b.toString('hex')).toBe('fd00ff01000000000000000000000200' + '03000000');
  });

  it('xlb_neigh4_key', () => {
    const k = { addr: parseIPv4('172.16.255.200'), scope: 2 };
    const b = encodeNeigh4Key(k);
    expect(b.length).toBe(LAYOUT.xlb_neigh4_key.size);
    expect(decodeNeigh4Key(b)).toEqual(k);
    expect(b.toString('hex')).toBe('ac10ffc8' + '02000000');
  });

  it('xlb_stats (one CPU)', () => {
    const b = Buffer.alloc(LAYOUT.xlb_stats.size);
    const o = LAYOUT.xlb_stats.offsets;
    b.writeBigUInt64LE(1n, o.packets);
    b.writeBigUInt64LE(2n, o.bytes);
    b.writeBigUInt64LE(3n, o.reply_packets);
    b.writeBigUInt64LE(4n, o.reply_bytes);
    b.writeBigUInt64LE(5n, o.new_conns);
    b.writeBigUInt64LE(6n, o.drops);
    b.writeBigUInt64LE(7n, o.rejects);
    expect(decodeStatsPercpu(b, 1)).toEqual({ packets: 1n, bytes: 2n, replyPackets: 3n, replyBytes: 4n, newConns: 5n, drops: 6n, rejects: 7n });
    expect(decodeStatsPercpu(Buffer.alloc(LAYOUT.xlb_stats.size), 1)).toEqual(zeroStats());
  });

  it('u32 keys and Maglev tables', () => {
    expect(encodeU32(0xdeadbeef).toString('hex')).toBe('efbeadde');
    expect(decodeU32(encodeU32(0xffffffff))).toBe(0xffffffff);
    expect(decodeU32(Buffer.from('0000000005000000', 'hex'), 4)).toBe(5);
    const t = Uint32Array.from([5, 1, 2, 1, 2, 0x01020304]);
    // The value of a class-0 inner map: the words as they are, zero-padded to the class size.
    const b = encodeTable(t);
    expect(b.length).toBe(XLB.MAGLEV_CLASS0_WORDS * 4);
    expect(b.subarray(0, 24).toString('hex')).toBe(['05000000', '01000000', '02000000', '01000000', '02000000', '04030201'].join(''));
    expect(b.subarray(24).every((x) => x === 0)).toBe(true);
    expect(Array.from(decodeTable(b, 0))).toEqual(Array.from(t));
    // A view into a larger array encodes only its own slots.
    const sub = new Uint32Array([9, 9, 3, 1, 1, 1, 9]).subarray(2, 6);
    expect(encodeTable(sub).subarray(0, 20).toString('hex')).toBe('03000000' + '01000000'.repeat(3) + '00000000');
  });

  it('Maglev size classes: the smallest word class that holds M + 1 words', () => {
    expect(maglevClassWords(0)).toBe(1024);
    expect(maglevClassWords(XLB.MAGLEV_WORD_CLASSES - 1)).toBe(1024 * 4 ** (XLB.MAGLEV_WORD_CLASSES - 1));
    expect(maglevWordClass(4)).toBe(0);
    expect(maglevWordClass(1024)).toBe(0); // M = 1023
    expect(maglevWordClass(1025)).toBe(1);
    expect(maglevWordClass(DEFAULT_MAGLEV_SIZE + 1)).toBe(2);
    expect(maglevWordClass(65537 + 1)).toBe(4);
    expect(maglevWordClass(MAX_MAGLEV_SIZE + 1)).toBe(XLB.MAGLEV_WORD_CLASSES - 1);
    expect(() => maglevWordClass(maglevClassWords(XLB.MAGLEV_WORD_CLASSES - 1) + 1)).toThrow(/largest size class/);
    expect(maglevClassBytes(2)).toBe(65536);
    expect(maglevClassBytes(XLB.MAGLEV_BYTE_CLASS)).toBe(22528);
  });

  /** A table of M slots over `n` backends (ids 100 .. 100 + n − 1, slot i → id 100 + i % n). */
  const table = (m: number, n: number, first = 100): Uint32Array => {
    const t = new Uint32Array(m + 1);
    t[0] = m;
    for (let i = 1; i <= m; i++) t[i] = first + ((i - 1) % n);
    return t;
  };

  it('the byte class takes a table of at most 256 backends where it is the smaller', () => {
    expect(maglevClass(table(DEFAULT_MAGLEV_SIZE, 64))).toBe(XLB.MAGLEV_BYTE_CLASS); // 22 KiB, not 64
    expect(maglevClass(table(DEFAULT_MAGLEV_SIZE, 256))).toBe(XLB.MAGLEV_BYTE_CLASS);
    expect(maglevClass(table(DEFAULT_MAGLEV_SIZE, 257))).toBe(2);
    expect(maglevClass(table(4093, 64))).toBe(1); // 16 KiB as words: smaller than the byte class
    expect(maglevClass(table(1021, 2))).toBe(0);
    expect(maglevClass(table(XLB.MAGLEV_BYTE_SLOTS, 3))).toBe(XLB.MAGLEV_BYTE_CLASS);
    expect(maglevClass(table(XLB.MAGLEV_BYTE_SLOTS + 1, 3))).toBe(3); // more slots than the byte class holds
    const empty = new Uint32Array(DEFAULT_MAGLEV_SIZE + 1);
    empty[0] = DEFAULT_MAGLEV_SIZE;
    expect(maglevClass(empty)).toBe(XLB.MAGLEV_BYTE_CLASS); // every slot XLB_BACKEND_NONE: one id
  });

  it('a byte-class table: M, the ids by position, a position per slot; decodes back', () => {
    const t = table(7, 3);
    const b = encodeByteTable(t);
    expect(b.length).toBe(XLB.MAGLEV_BYTE_VALUE);
    expect(b.readUInt32LE(0)).toBe(7);
    expect([0, 1, 2, 3].map((p) => b.readUInt32LE(byteRecAt(p)))).toEqual([100, 101, 102, 0]);
    expect(Array.from(b.subarray(MAGLEV_BYTE_SLOTS_AT, MAGLEV_BYTE_SLOTS_AT + 9))).toEqual([0, 1, 2, 0, 1, 2, 0, 0, 0]);
    expect(Array.from(decodeTable(b, XLB.MAGLEV_BYTE_CLASS))).toEqual(Array.from(t));
    const big = table(DEFAULT_MAGLEV_SIZE, 256, 5000);
    expect(Array.from(decodeTable(encodeTable(big), XLB.MAGLEV_BYTE_CLASS))).toEqual(Array.from(big));
    // Ids past what the encoder's scratch held so far (it grows, and the pass starts again).
    const far = table(DEFAULT_MAGLEV_SIZE, 64, 3_000_123);
    expect(maglevClass(far)).toBe(XLB.MAGLEV_BYTE_CLASS);
    expect(Array.from(decodeTable(encodeTable(far), XLB.MAGLEV_BYTE_CLASS))).toEqual(Array.from(far));
    const farther = table(DEFAULT_MAGLEV_SIZE, 257, 9_000_000);
    expect(maglevClass(farther)).toBe(2);
    const farthest = table(DEFAULT_MAGLEV_SIZE, 3, 5_000_000); // (encoded before it is classed)
    expect(Array.from(decodeTable(encodeByteTable(farthest), XLB.MAGLEV_BYTE_CLASS))).toEqual(Array.from(farthest));
  });

  it("a byte-class table's records copy the IPv4 entries they are given (flags 0); none past the entries' end", () => {
    const entries = Buffer.alloc(102 * LAYOUT.xlb_backend4.size); // ids 0..101
    encodeBackend4Into(entries, 100 * LAYOUT.xlb_backend4.size, { addr: parseIPv4('10.1.2.3'), port: 8080, flags: XLB.BACKEND_F_DRAIN });
    encodeBackend4Into(entries, 101 * LAYOUT.xlb_backend4.size, { addr: parseIPv4('10.1.2.4'), port: 0 });
    const b = encodeByteTable(table(7, 3), undefined, entries); // ids 100, 101, 102 at positions 0, 1, 2
    const rec = (p: number): string => b.subarray(byteRecAt(p), byteRecAt(p) + XLB.MAGLEV_REC_SIZE).toString('hex');
    expect(rec(0)).toBe('64000000' + '0a010203' + '1f90' + '0000');
    expect(rec(1)).toBe('65000000' + '0a010204' + '0000' + '0000');
    expect(rec(2)).toBe('66000000' + '00'.repeat(8)); // (past the entries: no copy)
    expect(rec(3)).toBe('00'.repeat(XLB.MAGLEV_REC_SIZE));
    expect(byteRecord(100, entries).toString('hex')).toBe(rec(0));
    expect(byteRecord(100).toString('hex')).toBe('64000000' + '00'.repeat(8));
    expect(byteRecAt(1) - byteRecAt(0)).toBe(LAYOUT.xlb_maglev_rec.size);
  });

  it('byte-class positions: kept ids keep theirs, new ids take empty positions first, then freed ones', () => {
    const keep = new Uint32Array(XLB.MAGLEV_BYTE_IDS);
    keep.set([100, 101, 102, 0, 104]);
    // 101 gone, 105 and 106 new: 105 takes the empty position 3, 106 the next empty one (5), not 101's.
    const t = Uint32Array.from([6, 100, 102, 104, 105, 106, 100]);
    const { ids, positionOf } = maglevBytePositions(t, keep)!;
    expect([100, 102, 104, 105, 106].map(positionOf)).toEqual([0, 2, 4, 3, 5]);
    expect(Array.from(ids.subarray(0, 7))).toEqual([100, 0, 102, 105, 104, 106, 0]);
    // With every position taken (256 ids), a new one takes a freed position.
    const full = Uint32Array.from({ length: XLB.MAGLEV_BYTE_IDS }, (_, p) => 1000 + p);
    const t2 = Uint32Array.from([3, 1000, 1002, 7]);
    expect(maglevBytePositions(t2, full)!.positionOf(7)).toBe(1);
    // With the positions the table's slots name: a new id takes only one no slot names, or none is placed.
    const named = new Uint8Array(XLB.MAGLEV_BYTE_IDS);
    named[1] = 1; // 101's old slots still name position 1
    const r = maglevBytePositions(t, keep, named)!;
    expect([105, 106].map(r.positionOf)).toEqual([3, 5]);
    const allNamed = new Uint8Array(XLB.MAGLEV_BYTE_IDS).fill(1);
    expect(maglevBytePositions(t2, full, allNamed)).toBeNull();
    // An empty table places XLB_BACKEND_NONE, at a position marked assigned (so its 0 is written).
    const none = Uint32Array.from([3, 0, 0, 0]);
    const e = maglevBytePositions(none, keep, named)!;
    expect(e.ids[e.positionOf(0)]).toBe(0);
    expect(e.assigned[e.positionOf(0)]).toBe(1);
    expect(e.positionOf(0)).toBe(3);
    expect(() => maglevBytePositions(table(300, 257))).toThrow(/at most 256 backends, not 257/);
  });
});

describe('byte-level encoding', () => {
  it('encodes the lab VIP key in network order with a host-order scope', () => {
    const b = encodeVip4Key({ addr: parseIPv4('172.16.255.62'), port: 8000, proto: IPPROTO.tcp, scope: 3 });
    expect([...b].map((x) => x.toString(16).padStart(2, '0')).join(' ')).toBe('ac 10 ff 3e 1f 40 06 00 03 00 00 00');
  });

  it('encodes a VIP value in host order', () => {
    expect(encodeVipVal({ vipId: 0x0102, flags: 1, hashFields: 4, affinityTimeoutS: 30 }).toString('hex')).toBe(
      '02010000' + '0100' + '04' + '00' + '1e000000' + '00000000' + '00000000' + '00000000',
    );
    expect(encodeVipVal({ vipId: 1, flags: 0, hashFields: 0, affinityTimeoutS: 0, tableClass: 2, tableM: 16381 }).toString('hex')).toBe(
      '01000000' + '0000' + '00' + '02' + '00000000' + '00000000' + '00000000' + 'fd3f0000',
    );
    // Source addresses are in network order, like every address.
    expect(
      encodeVipVal({ vipId: 1, flags: 4, hashFields: 0, affinityTimeoutS: 0, snatAddr: parseIPv4('10.127.0.129'), hairpinAddr: 1 })
        .subarray(12, 20)
        .toString('hex'),
    ).toBe('0a7f0081' + '00000001');
  });

  it('encodes a source NAT key as an LPM prefix after scope and kind', () => {
    expect(
      encodeSnat4Key({ scope: 3, kind: XLB.SNAT_K_CLIENT, addr: parseIPv4('172.16.255.128'), prefixLen: 25 }).toString('hex'),
    ).toBe('59000000' + '03000000' + '02000000' + 'ac10ff80');
    expect(encodeSnat4Val(parseIPv4('10.127.0.129')).toString('hex')).toBe('0a7f0081');
  });

  it('sums the elements of rows of stats (one row per CPU), wrapping at 2^64', () => {
    const size = LAYOUT.xlb_stats.size;
    const o = LAYOUT.xlb_stats.offsets;
    const row = (vals: Array<Partial<Record<keyof typeof o, bigint>>>, shift = 0): Buffer => {
      const b = Buffer.alloc(shift + size * vals.length);
      vals.forEach((v, i) => {
        for (const [k, n] of Object.entries(v)) b.writeBigUInt64LE(n, shift + i * size + o[k as keyof typeof o]);
      });
      return b.subarray(shift); // an unaligned view when shift is not a multiple of 8
    };
    const cpu0 = row([{ packets: 1n, bytes: 60n }, { drops: 3n }, { new_conns: 2n, reply_bytes: 2n ** 64n - 1n }]);
    const cpu1 = row([{ packets: 4n, bytes: 100n }, { rejects: 1n }, { new_conns: 5n, reply_bytes: 3n }], 3);
    const [a, c] = sumStatsRows([cpu0, cpu1], [0, 2]);
    expect(a).toEqual({ ...zeroStats(), packets: 5n, bytes: 160n });
    expect(c).toEqual({ ...zeroStats(), newConns: 7n, replyBytes: 2n });
    expect(sumStatsRows([cpu0, cpu1], [1])).toEqual([{ ...zeroStats(), drops: 3n, rejects: 1n }]);
  });

  it('sums per-CPU stats slots', () => {
    const ncpus = 4;
    const size = LAYOUT.xlb_stats.size;
    const o = LAYOUT.xlb_stats.offsets;
    const b = Buffer.alloc(size * ncpus);
    for (let c = 0; c < ncpus; c++) {
      const base = c * size;
      b.writeBigUInt64LE(BigInt(c + 1), base + o.packets); // 1+2+3+4 = 10
      b.writeBigUInt64LE(BigInt(100 * (c + 1)), base + o.bytes); // 1000
      b.writeBigUInt64LE(BigInt(c), base + o.reply_packets); // 0+1+2+3 = 6
      b.writeBigUInt64LE(7n, base + o.reply_bytes); // 28
      b.writeBigUInt64LE(c === 2 ? 5n : 0n, base + o.new_conns); // 5
      b.writeBigUInt64LE(c === 3 ? 0xffffffffn : 0n, base + o.drops);
      b.writeBigUInt64LE(c === 1 ? 2n : 0n, base + o.rejects);
    }
    expect(decodeStatsPercpu(b, ncpus)).toEqual({
      packets: 10n,
      bytes: 1000n,
      replyPackets: 6n,
      replyBytes: 28n,
      newConns: 5n,
      drops: 0xffffffffn,
      rejects: 2n,
    });
    // Only the first ncpus slots count.
    expect(decodeStatsPercpu(b, 2)).toEqual({ packets: 3n, bytes: 300n, replyPackets: 1n, replyBytes: 14n, newConns: 0n, drops: 0n, rejects: 2n });
    // Sums past 2^64 / ncpus stay exact (bigint).
    const big = Buffer.alloc(size * 2);
    big.writeBigUInt64LE(0xffffffffffffffffn, o.packets);
    big.writeBigUInt64LE(0xffffffffffffffffn, size + o.packets);
    expect(decodeStatsPercpu(big, 2).packets).toBe(2n * 0xffffffffffffffffn);
  });

  it('sums per-CPU u64 counters', () => {
    const b = Buffer.alloc(8 * 3);
    b.writeBigUInt64LE(1n, 0);
    b.writeBigUInt64LE(2n, 8);
    b.writeBigUInt64LE(40n, 16);
    expect(decodeU64Percpu(b, 3)).toBe(43n);
    expect(decodeU64Percpu(b, 2)).toBe(3n);
  });
});
