/**
 * The IPv4 new-flow tier of conntrack (bpf/lib/ctnew.h) as the control plane
 * sees it: xlb_ct4_new is an array of buckets, each holding up to
 * XLB.CT_NEW_WAYS entries (a conntrack key and value) under a lock bit of its control word;
 * an entry lives in the bucket of its flow's client side: xlb_hash_side4 of the key's
 * (source address, source port, protocol) for a forward entry, of (destination address,
 * destination port, protocol) for a reverse one (ct4Home), modulo the bucket count. Pure
 * functions here; Dataplane does the map I/O.
 */
import { LAYOUT, XLB } from './layout.js';
import { fmix32, mixBlock } from './maglev.js';

/** XLB_HASH_SEED of bpf/lib/hash.h. */
const HASH_SEED = 0x9e3779b9;
const KEY_BYTES = 16; /* the length xlb_hash_tuple4 finalizes with */
const SIDE_BYTES = 8; /* the length xlb_hash_side4 finalizes with */

/** xlb_hash_tuple4 (bpf/lib/hash.h) of an encoded xlb_ct4_key: fields as the
 *  program loads them (network-order bytes read as little-endian words). The
 *  established tier filter's hash (ctseen.h), not a bucket's (ct4Bucket). */
export function ct4KeyHash(key: Uint8Array): number {
  const dv = new DataView(key.buffer, key.byteOffset, key.byteLength);
  const o = LAYOUT.xlb_ct4_key.offsets;
  let h = HASH_SEED | 0;
  h = mixBlock(h, dv.getUint32(o.saddr, true));
  h = mixBlock(h, dv.getUint32(o.daddr, true));
  h = mixBlock(h, (dv.getUint16(o.sport, true) << 16) | dv.getUint16(o.dport, true));
  h = mixBlock(h, key[o.proto]!);
  return fmix32(h ^ KEY_BYTES);
}

/** xlb_hash_side4 (bpf/lib/hash.h): one side of a flow, as the program loads it
 *  (the address's network-order bytes read as a little-endian word, the port likewise). */
export function sideHash(addrLE: number, portLE: number, proto: number): number {
  let h = HASH_SEED | 0;
  h = mixBlock(h, addrLE);
  h = mixBlock(h, ((portLE << 16) | proto) >>> 0);
  return fmix32(h ^ SIDE_BYTES);
}

/** The side hash of the bucket an entry of `key` (an encoded xlb_ct4_key) with direction
 *  `dir` (XLB.DIR_FWD / XLB.DIR_REV) lives in: xlb_ctn4_home. */
export function ct4Home(key: Uint8Array, dir: number): number {
  const dv = new DataView(key.buffer, key.byteOffset, key.byteLength);
  const o = LAYOUT.xlb_ct4_key.offsets;
  return dir === XLB.DIR_REV
    ? sideHash(dv.getUint32(o.daddr, true), dv.getUint16(o.dport, true), key[o.proto]!)
    : sideHash(dv.getUint32(o.saddr, true), dv.getUint16(o.sport, true), key[o.proto]!);
}

/** The bucket, of `buckets`, an entry of `key` with direction `dir` lives in. */
export function ct4Bucket(key: Uint8Array, dir: number, buckets: number): number {
  return ct4Home(key, dir) % buckets;
}

/** Buckets for a new-flow tier of `entries` entries (at least one). */
export function ct4NewBuckets(entries: number): number {
  return Math.max(1, Math.ceil(entries / XLB.CT_NEW_WAYS));
}

export interface BucketEntry {
  key: Buffer;
  val: Buffer;
}

const WAY = LAYOUT.xlb_ct4_way;
const BUCKET = LAYOUT.xlb_ct4_bucket;
const KS = LAYOUT.xlb_ct4_key.size;
const VS = LAYOUT.xlb_ct4_val.size;

function wayAt(bucket: Uint8Array, way: number): number {
  return BUCKET.offsets.way + way * WAY.size;
}

/** The entries a bucket holds (copies). */
export function bucketEntries(bucket: Uint8Array): BucketEntry[] {
  // ctl's low bits are the ways in use; its top bit (a writer's lock) is ignored here.
  const used = new DataView(bucket.buffer, bucket.byteOffset, bucket.byteLength).getUint32(BUCKET.offsets.ctl, true) & ((1 << XLB.CT_NEW_WAYS) - 1);
  const out: BucketEntry[] = [];
  for (let w = 0; w < XLB.CT_NEW_WAYS; w++) {
    if (!(used & (1 << w))) continue;
    const at = wayAt(bucket, w);
    out.push({
      key: Buffer.from(bucket.subarray(at + WAY.offsets.key, at + WAY.offsets.key + KS)),
      val: Buffer.from(bucket.subarray(at + WAY.offsets.val, at + WAY.offsets.val + VS)),
    });
  }
  return out;
}
