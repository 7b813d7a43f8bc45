/**
 * The IPv4 new-flow tier of conntrack (bpf/lib/ctnew.h) as the control plane
 * sees it: xlb_ct4_new is an array of buckets, each holding up to
 * XLB.CT_NEW_WAYS entries (a conntrack key and value) under a lock bit of its control word;
 * a key lives in bucket xlb_hash_tuple4(key) % buckets. Pure functions here;
 * Dataplane does the map I/O.
 */
import { LAYOUT, XLB } from './layout.js';
import { fmix32, mixBlock } from './maglev.js';

/** XLB_HASH_SEED of bpf/lib/hash.h. */
const HASH_SEED = 0x9e3779b9;
const KEY_BYTES = 16; /* the length xlb_hash_tuple4 finalizes with */

/** xlb_hash_tuple4 (bpf/lib/hash.h) of an encoded xlb_ct4_key: fields as the
 *  program loads them (network-order bytes read as little-endian words). */
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

/** The bucket a key lives in, of `buckets`. */
export function ct4Bucket(key: Uint8Array, buckets: number): number {
  return ct4KeyHash(key) % buckets;
}

/** Buckets for a new-flow tier of `entries` entries (at least one). */
export function ct4NewBuckets(entries: number): number {
  return Math.max(1, Math.ceil(entries / XLB.CT_NEW_WAYS));
}

export interface BucketEntry {
  way: number;
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
      way: w,
      key: Buffer.from(bucket.subarray(at + WAY.offsets.key, at + WAY.offsets.key + KS)),
      val: Buffer.from(bucket.subarray(at + WAY.offsets.val, at + WAY.offsets.val + VS)),
    });
  }
  return out;
}
