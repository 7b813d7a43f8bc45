/**
 * Maglev consistent-hashing lookup table (Eisenbud et al., "Maglev: A Fast and
 * Reliable Software Network Load Balancer", NSDI 2016, section 3.4).
 *
 * Each backend gets a permutation of the M slots, `p_j = (offset + j·skip) % M`
 * with `offset = h1(name) % M` and `skip = h2(name) % (M − 1) + 1`; backends then
 * take turns claiming their next free preferred slot until the table is full.
 * M must be prime so that every permutation visits every slot.
 *
 * The table depends only on the set of (name, weight) pairs: turn order is the
 * code-unit order of the names, and hashes are MurmurHash3 x86_32 over UTF-8.
 */

/** Seed of h1 (offset hash). Changing it changes every table: don't. */
const OFFSET_SEED = 0x4d41474c; // "MAGL"
/** Seed of h2 (skip hash). Changing it changes every table: don't. */
const SKIP_SEED = 0x45563136; // "EV16"

const utf8 = new TextEncoder();

/** One MurmurHash3 mixing round of a 32-bit block. */
function mixBlock(h: number, k: number): number {
  k = Math.imul(k, 0xcc9e2d51);
  k = (k << 15) | (k >>> 17);
  k = Math.imul(k, 0x1b873593);
  h ^= k;
  h = (h << 13) | (h >>> 19);
  return (Math.imul(h, 5) + 0xe6546b64) | 0;
}

/** MurmurHash3 32-bit finalizer (avalanche). */
function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** MurmurHash3 x86_32 of `bytes` with `seed`; returns an unsigned 32-bit integer. */
export function murmur3(bytes: Uint8Array, seed: number): number {
  let h = seed | 0;
  const len = bytes.length;
  const blocks = len & ~3;
  for (let i = 0; i < blocks; i += 4) {
    const k = bytes[i]! | (bytes[i + 1]! << 8) | (bytes[i + 2]! << 16) | (bytes[i + 3]! << 24);
    h = mixBlock(h, k);
  }
  let k = 0;
  switch (len & 3) {
    case 3:
      k ^= bytes[blocks + 2]! << 16;
    // falls through
    case 2:
      k ^= bytes[blocks + 1]! << 8;
    // falls through
    case 1:
      k ^= bytes[blocks]!;
      k = Math.imul(k, 0xcc9e2d51);
      k = (k << 15) | (k >>> 17);
      k = Math.imul(k, 0x1b873593);
      h ^= k;
  }
  return fmix32(h ^ len);
}

/** True if `n` is a prime integer (deterministic trial division). */
export function isPrime(n: number): boolean {
  if (!Number.isSafeInteger(n) || n < 2) return false;
  if (n % 2 === 0) return n === 2;
  if (n % 3 === 0) return n === 3;
  for (let d = 5; d * d <= n; d += 6) {
    if (n % d === 0 || n % (d + 2) === 0) return false;
  }
  return true;
}

/** Largest table size accepted; keeps `pos + skip` far below 2^53 and the table allocatable. */
export const MAX_MAGLEV_SIZE = 0x7fffffff;

/** Largest weight accepted; keeps the credit arithmetic exact. */
export const MAX_MAGLEV_WEIGHT = 0xffffffff;

/** Checks `m`, unique names and weights; returns the effective weights (default 1). */
function validateInputs(names: readonly string[], m: number, weights?: readonly number[]): number[] {
  if (!isPrime(m) || m > MAX_MAGLEV_SIZE) {
    throw new RangeError(`Maglev table size must be a prime ≤ ${MAX_MAGLEV_SIZE} (got ${m})`);
  }
  if (new Set(names).size !== names.length) {
    const dup = names.find((name, i) => names.indexOf(name) !== i);
    throw new RangeError(`Maglev backend names must be unique (duplicate ${JSON.stringify(dup)})`);
  }
  if (weights === undefined) return names.map(() => 1);
  if (weights.length !== names.length) {
    throw new RangeError(`Maglev weights length ${weights.length} does not match ${names.length} backends`);
  }
  for (const w of weights) {
    if (!Number.isInteger(w) || w < 0 || w > MAX_MAGLEV_WEIGHT) {
      throw new RangeError(`Maglev weights must be integers in 0..${MAX_MAGLEV_WEIGHT} (got ${w})`);
    }
  }
  return [...weights];
}

/** Original indexes of the backends with a non-zero weight, in name (code-unit) order. */
function turnOrder(names: readonly string[], weights: readonly number[]): number[] {
  const order: number[] = [];
  names.forEach((_, i) => {
    if ((weights[i] ?? 0) > 0) order.push(i);
  });
  return order.sort((a, b) => {
    const na = names[a] ?? '';
    const nb = names[b] ?? '';
    return na < nb ? -1 : na > nb ? 1 : 0;
  });
}

/** Up to this M, `c + step` (< 2M) fits a signed 32-bit integer. */
const SMALL_M = 0x3fffffff;

/** Next slot of a permutation: `(c + step) % m` for c, step < m. */
function advance(c: number, step: number, m: number): number {
  const next = c + step;
  return next >= m ? next - m : next;
}

/**
 * The equal-weight fill for M ≤ SMALL_M: every backend in turn claims its next
 * free preferred slot. The same steps as the loop in maglevTable; only the
 * wrap-around `c ≥ m ? c − m : c` is computed without a branch (whether a
 * step wraps is unpredictable): m − 1 − c is negative exactly when c ≥ m, and
 * its sign widened by `>> 31` is then all ones, so `m & that` is m, else 0.
 */
function fillEqual(table: Int32Array, pos: Uint32Array, skip: Uint32Array, idx: Int32Array, m: number): Int32Array {
  const n = idx.length;
  let filled = 0;
  for (;;) {
    for (let t = 0; t < n; t++) {
      const step = skip[t]!;
      let c = pos[t]!;
      while (table[c] !== -1) {
        c += step;
        c -= m & ((m - 1 - c) >> 31);
      }
      table[c] = idx[t]!;
      c += step;
      pos[t] = c - (m & ((m - 1 - c) >> 31));
      if (++filled === m) return table;
    }
  }
}

/**
 * Builds the Maglev lookup table of size `m` for `backendNames`.
 *
 * Weighting: every backend keeps an integer credit; each round it adds its
 * weight and takes one turn (claims one slot) whenever its credit reaches the
 * largest weight W, paying W back. Hence the heaviest backends take a turn every
 * round and a backend of weight w takes w/W of the rounds, so shares are
 * proportional to weights, interleaved smoothly, for any weight magnitude.
 * With all weights equal this is exactly the paper's unweighted algorithm.
 *
 * @param backendNames unique backend identities (e.g. `"10.0.0.1:80"`)
 * @param m table size; must be prime
 * @param weights integer weight per backend, 0..2^32−1 (default 1; 0 = no slots)
 * @returns table of length m holding indexes into `backendNames` (−1 everywhere
 *   if there is no backend with a non-zero weight)
 */
export function maglevTable(backendNames: readonly string[], m: number, weights?: readonly number[]): Int32Array {
  const w = validateInputs(backendNames, m, weights);
  const table = new Int32Array(m).fill(-1);
  const order = turnOrder(backendNames, w);
  const n = order.length;
  if (n === 0) return table;

  // Positions and skips are < m ≤ 2^31 − 1, so `c + skip` stays below 2^32 and
  // a conditional subtraction replaces `% m` (c + skip < 2m).
  const pos = new Uint32Array(n);
  const skip = new Uint32Array(n);
  const weight = new Float64Array(n);
  const credit = new Float64Array(n);
  let maxWeight = 0;
  for (let t = 0; t < n; t++) {
    const i = order[t]!;
    const bytes = utf8.encode(backendNames[i]!);
    pos[t] = murmur3(bytes, OFFSET_SEED) % m;
    skip[t] = (murmur3(bytes, SKIP_SEED) % (m - 1)) + 1;
    weight[t] = w[i]!;
    maxWeight = Math.max(maxWeight, w[i]!);
  }

  let filled = 0;
  if (weight.every((x) => x === maxWeight)) {
    // Equal weights: every backend takes a turn every round (no credit to keep).
    const idx = Int32Array.from(order);
    if (m <= SMALL_M) return fillEqual(table, pos, skip, idx, m);
    for (;;) {
      for (let t = 0; t < n; t++) {
        const step = skip[t]!;
        let c = pos[t]!;
        while (table[c] !== -1) {
          c += step;
          if (c >= m) c -= m;
        }
        table[c] = idx[t]!;
        c += step;
        pos[t] = c >= m ? c - m : c;
        if (++filled === m) return table;
      }
    }
  }
  for (;;) {
    for (let t = 0; t < n; t++) {
      const earned = credit[t]! + weight[t]!;
      if (earned < maxWeight) {
        credit[t] = earned;
        continue;
      }
      credit[t] = earned - maxWeight;
      const step = skip[t]!;
      let c = pos[t]!;
      while (table[c]! >= 0) c = advance(c, step, m);
      table[c] = order[t]!;
      pos[t] = advance(c, step, m);
      if (++filled === m) return table;
    }
  }
}
