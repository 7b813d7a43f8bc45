/**
 * IPv4 conntrack in both tiers, for tests: the established tier xlb_ct4 (a
 * hash) and the new-flow tier xlb_ct4_new (buckets, src/ctnew.ts).
 */
import type { Dataplane } from '../../src/dataplane.js';
import { monotonicNs } from '../../src/conntrack.js';
import { LAYOUT } from '../../src/layout.js';

const KS = LAYOUT.xlb_ct4_key.size;
const VS = LAYOUT.xlb_ct4_val.size;

/** The entry of key in either tier (the established one first), or null. */
export function ct4Get(dp: Dataplane, key: Uint8Array): Buffer | null {
  return dp.native.mapLookup(dp.maps.xlb_ct4, key, VS) ?? dp.ct4NewLookup(key);
}

export function ct4Has(dp: Dataplane, key: Uint8Array): boolean {
  return ct4Get(dp, key) !== null;
}

/** Whether key is in the new-flow tier. */
export function ct4InNew(dp: Dataplane, key: Uint8Array): boolean {
  return dp.ct4NewLookup(key) !== null;
}

export function ct4Delete(dp: Dataplane, key: Uint8Array): void {
  dp.native.mapDelete(dp.maps.xlb_ct4, key);
  dp.ct4NewDelete(key);
}

/** Empties both tiers. */
export function ct4Clear(dp: Dataplane): void {
  const d = dp.native.mapDump(dp.maps.xlb_ct4, KS, VS);
  for (let i = 0; i < d.count; i++) dp.native.mapDelete(dp.maps.xlb_ct4, d.keys.subarray(i * KS, (i + 1) * KS));
  for (const e of dp.ct4New()) dp.ct4NewDelete(e.key);
}

/** Rewrites the value of key in the new-flow tier (the bucket under its lock). */
export function ct4NewSet(dp: Dataplane, key: Uint8Array, val: Uint8Array): void {
  if (!dp.ct4NewUpdate(key, val)) throw new Error('ct4NewSet: key not in the new-flow tier');
}

/**
 * A conntrack stamp (CLOCK_MONOTONIC ns, as the data plane writes) of an entry
 * idle for `seconds`, and the garbage-collection timeout (s) it is idle beyond:
 * `seconds` and `timeoutS` as asked on a machine up for longer; on one booted
 * more recently (the clock starts at boot: an hour ago would be before it) the
 * entry is idle since boot and the timeout is half of that, so that the test
 * still sees an idle entry removed and a fresh one kept.
 */
export function idleStamp(seconds: number, timeoutS: number, now: bigint = monotonicNs()): { stampNs: bigint; timeoutS: number } {
  const want = BigInt(seconds) * 1_000_000_000n;
  if (now > want) return { stampNs: now - want, timeoutS };
  return { stampNs: 1n, timeoutS: Math.min(timeoutS, Number(now) / 2e9) };
}
