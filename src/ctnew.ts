/**
 * The IPv4 new-flow tier of conntrack (bpf/lib/ctnew.h) as the control plane
 * sees it: xlb_ct4_new is an array of buckets, each holding up to
 * XLB.CT_NEW_WAYS entries (a conntrack key and value) under a bpf_spin_lock;
 * a key lives in bucket xlb_hash_tuple4(key) % buckets. Pure functions here;
 * Dataplane does the map I/O.
 */
import { LAYOUT, XLB } from './layout.js';

const HASH_SEED = 0x9e3779b9;
const C1 = 0xcc9e2d51;
const C2 = 0x1b873593;
const KEY_BYTES = 16; /* the length xlb_hash_tuple4 finalizes with */

function rotl(x: number, r: number): number {
  return ((x << r) | (x >>> (32 - r))) >>> 0;
}

function mix(h: number, k: number): number {
  k = Math.imul(k, C1);
  k = rotl(k, 15);
  k = Math.imul(k, C2);
  h = (h ^ k) >>> 0;
  h = rotl(h, 13);
  return (Math.imul(h, 5) + 0xe6546b64) >>> 0;
}

function finalize(h: number, len: number): number {
  h = (h ^ len) >>> 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** xlb_hash_tuple4 (bpf/lib/hash.h) of an encoded xlb_ct4_key: fields as the
 *  program loads them (network-order bytes read as little-endian words). */
export function ct4KeyHash(key: Uint8Array): number {
  const dv = new DataView(key.buffer, key.byteOffset, key.byteLength);
  const o = LAYOUT.xlb_ct4_key.offsets;
  let h = HASH_SEED;
  h = mix(h, dv.getUint32(o.saddr, true));
  h = mix(h, dv.getUint32(o.daddr, true));
  h = mix(h, ((dv.getUint16(o.sport, true) << 16) | dv.getUint16(o.dport, true)) >>> 0);
  h = mix(h, key[o.proto]!);
  return finalize(h, KEY_BYTES);
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
  const used = new DataView(bucket.buffer, bucket.byteOffset, bucket.byteLength).getUint32(BUCKET.offsets.used, true);
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

/** Clears key's way in a bucket (in place); false when the bucket does not hold key. */
export function bucketRemove(bucket: Buffer, key: Uint8Array): boolean {
  const e = bucketEntries(bucket).find((x) => x.key.equals(key));
  if (!e) return false;
  const used = bucket.readUInt32LE(BUCKET.offsets.used);
  bucket.writeUInt32LE((used & ~(1 << e.way)) >>> 0, BUCKET.offsets.used);
  return true;
}
