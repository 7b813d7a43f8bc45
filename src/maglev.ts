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

/** One MurmurHash3 mixing round of a 32-bit block (also bpf/lib/hash.h's xlb_murmur_mix). */
export function mixBlock(h: number, k: number): number {
  k = Math.imul(k, 0xcc9e2d51);
  k = (k << 15) | (k >>> 17);
  k = Math.imul(k, 0x1b873593);
  h ^= k;
  h = (h << 13) | (h >>> 19);
  return (Math.imul(h, 5) + 0xe6546b64) | 0;
}

/** MurmurHash3 32-bit finalizer (avalanche). */
export function fmix32(h: number): number {
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

/** Weighted turns: backend t earns its weight each round and takes a slot
 *  whenever its credit reaches the largest weight. */
function takesTurn(credit: Float64Array, weight: ArrayLike<number>, t: number, maxWeight: number): boolean {
  const earned = credit[t]! + weight[t]!;
  if (earned < maxWeight) {
    credit[t] = earned;
    return false;
  }
  credit[t] = earned - maxWeight;
  return true;
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

/** Up to this M the end game's products `(x − c) · inv` (< M²) are exact in a double (< 2^52); above it there is none. */
const END_GAME_MAX_M = 1 << 26;

/**
 * The end game starts when this many slots are left free. Near the end a
 * backend's next free preferred slot is many probes away (M / free on
 * average: over half of all probes fall in the last 1% of the fill); instead
 * its distance to each remaining free slot is computed directly, one
 * multiplication per free slot. Both find the same slot; measured here,
 * √M / 2 is about where one stops paying for the other (~5% of a table).
 */
function endGameSlots(m: number): number {
  return m <= END_GAME_MAX_M ? Math.min(m, Math.round(Math.sqrt(m) / 2)) : 0;
}

/** Next slot of a permutation: `(c + step) % m` for c, step < m. */
function advance(c: number, step: number, m: number): number {
  const next = c + step;
  return next >= m ? next - m : next;
}

/** The inverse of `a` modulo the prime `m` (extended Euclid; 0 < a < m). */
function inverseMod(a: number, m: number): number {
  let r0 = m;
  let r1 = a;
  let t0 = 0;
  let t1 = 1;
  while (r1 !== 0) {
    const q = Math.floor(r0 / r1);
    const r = r0 - q * r1;
    r0 = r1;
    r1 = r;
    const t = t0 - q * t1;
    t0 = t1;
    t1 = t;
  }
  return t0 < 0 ? t0 + m : t0;
}

/** Scratch space reused by every fill of this thread (no allocation per table beyond the result). */
const scratch = {
  taken: new Uint8Array(0),
  pos: new Int32Array(0),
  skip: new Int32Array(0),
  inv: new Int32Array(0),
  free: new Int32Array(0),
  steps: new Int32Array(0),
};

/** murmur3() of a string's UTF-8 bytes, without encoding it when it is ASCII (backend names are). */
function murmur3Text(s: string, seed: number): number {
  const len = s.length;
  for (let i = 0; i < len; i++) if (s.charCodeAt(i) > 0x7f) return murmur3(utf8.encode(s), seed);
  let h = seed | 0;
  const blocks = len & ~3;
  for (let i = 0; i < blocks; i += 4) {
    h = mixBlock(h, s.charCodeAt(i) | (s.charCodeAt(i + 1) << 8) | (s.charCodeAt(i + 2) << 16) | (s.charCodeAt(i + 3) << 24));
  }
  let k = 0;
  switch (len & 3) {
    case 3:
      k ^= s.charCodeAt(blocks + 2) << 16;
    // falls through
    case 2:
      k ^= s.charCodeAt(blocks + 1) << 8;
    // falls through
    case 1:
      k ^= s.charCodeAt(blocks);
      k = Math.imul(k, 0xcc9e2d51);
      k = (k << 15) | (k >>> 17);
      k = Math.imul(k, 0x1b873593);
      h ^= k;
  }
  return fmix32(h ^ len);
}

/**
 * Fills a Maglev table of size m into `out[first .. first + m)`: a slot gets
 * `value[t]` of the backend (turn t) that claims it. `order` lists the
 * backends (indexes into `names`) in turn order; `weight` (optional, by turn)
 * weights the turns as described at maglevTable — without it, or with equal
 * weights, every backend takes every turn. There must be a backend.
 *
 * Probing: `taken` is a byte per slot (16 KiB at M = 16381: it stays in the
 * L1 cache). In the equal-weight loop (probeEqual, M ≤ SMALL_M) the
 * wrap-around `c ≥ m ? c − m : c` is computed without a branch (whether a
 * step wraps is unpredictable): m − 1 − c is negative exactly when c ≥ m,
 * and its sign widened by `>> 31` is then all ones, so `m & that` is m, else
 * 0. The last endGameSlots(m) slots are claimed through nearestFree().
 */
function fillMaglev(
  out: Int32Array,
  first: number,
  names: readonly string[],
  order: ArrayLike<number>,
  value: Int32Array,
  m: number,
  weight?: ArrayLike<number>,
): void {
  const n = order.length;
  if (scratch.pos.length < n) {
    const size = Math.max(n, 2 * scratch.pos.length);
    scratch.pos = new Int32Array(size);
    scratch.skip = new Int32Array(size);
    scratch.inv = new Int32Array(size);
    scratch.steps = new Int32Array(4 * size);
  }
  if (scratch.taken.length < m) scratch.taken = new Uint8Array(m);
  const { pos, skip, taken } = scratch;
  for (let t = 0; t < n; t++) {
    const name = names[order[t]!]!;
    pos[t] = murmur3Text(name, OFFSET_SEED) % m;
    skip[t] = (murmur3Text(name, SKIP_SEED) % (m - 1)) + 1;
  }
  taken.fill(0, 0, m);
  const endAt = m - endGameSlots(m);
  let maxWeight = 0;
  let equal = true;
  if (weight) {
    for (let t = 0; t < n; t++) maxWeight = Math.max(maxWeight, weight[t]!);
    for (let t = 0; t < n; t++) if (weight[t] !== maxWeight) equal = false;
  }
  let filled = 0;
  let t = 0;
  if (equal && m <= SMALL_M) {
    stepMultiples(skip, n, m, scratch.steps);
    t = probeEqual(out, first, value, m, n, endAt, taken, pos, scratch.steps);
    filled = endAt;
  } else {
    // Weighted (or M > SMALL_M): every backend keeps a credit (see maglevTable).
    const credit = equal ? null : new Float64Array(n);
    for (; filled < endAt; t = t + 1 === n ? 0 : t + 1) {
      if (credit && !takesTurn(credit, weight!, t, maxWeight)) continue;
      const step = skip[t]!;
      let c = pos[t]!;
      while (taken[c] !== 0) c = advance(c, step, m);
      taken[c] = 1;
      out[first + c] = value[t]!;
      filled++;
      pos[t] = advance(c, step, m);
    }
    if (filled < m) endGame(out, first, value, m, n, t, credit, maxWeight, weight, filled);
    return;
  }
  if (filled < m) endGame(out, first, value, m, n, t, null, 0, undefined, filled);
}

/**
 * fillMaglev's loop for equal weights, up to `endAt` slots filled; returns
 * the next turn. A claim looks at four candidates of the backend's
 * permutation at once (c, c + s, c + 2s, c + 3s, each computed from c with
 * the multiples of s kept in `steps`, so the four loads do not wait for one
 * another) and picks the first free one by arithmetic: `f − 1` is all ones
 * exactly when a slot is free (f = 0), and masks that candidate in, from the
 * last to the first. This saves the mispredicted branch a "free or not" test
 * costs while the table is partly filled; only when all four are taken does
 * it move on by 4s. `steps` holds s, 2s, 3s and 4s (mod m) per backend.
 */
function probeEqual(
  out: Int32Array,
  first: number,
  value: Int32Array,
  m: number,
  n: number,
  endAt: number,
  taken: Uint8Array,
  pos: Int32Array,
  steps: Int32Array,
): number {
  let t = 0;
  for (let filled = 0; filled < endAt; t = t + 1 === n ? 0 : t + 1) {
    const at = t << 2;
    const s1 = steps[at]!;
    const s2 = steps[at + 1]!;
    const s3 = steps[at + 2]!;
    const s4 = steps[at + 3]!;
    let c0 = pos[t]!;
    let c: number;
    for (;;) {
      let c1 = c0 + s1;
      c1 -= m & ((m - 1 - c1) >> 31);
      let c2 = c0 + s2;
      c2 -= m & ((m - 1 - c2) >> 31);
      let c3 = c0 + s3;
      c3 -= m & ((m - 1 - c3) >> 31);
      const f0 = taken[c0]!;
      const f1 = taken[c1]!;
      const f2 = taken[c2]!;
      const f3 = taken[c3]!;
      if ((f0 & f1 & f2 & f3) === 0) {
        c = c3 ^ ((c3 ^ c2) & (f2 - 1));
        c ^= (c ^ c1) & (f1 - 1);
        c ^= (c ^ c0) & (f0 - 1);
        break;
      }
      c0 += s4;
      c0 -= m & ((m - 1 - c0) >> 31);
    }
    taken[c] = 1;
    out[first + c] = value[t]!;
    filled++;
    c += s1;
    pos[t] = c - (m & ((m - 1 - c) >> 31));
  }
  return t;
}

/** `steps[4t .. 4t + 3]` = s, 2s, 3s, 4s mod m for each backend t's step s (probeEqual). */
function stepMultiples(skip: Int32Array, n: number, m: number, steps: Int32Array): void {
  for (let t = 0; t < n; t++) {
    const s = skip[t]!;
    let x = s;
    for (let k = 0; k < 4; k++) {
      steps[(t << 2) + k] = x;
      x = advance(x, s, m);
    }
  }
}

/** Lists the free slots of `taken[0 .. m)` into `free` (in slot order); returns how many. Four slots are
 *  read as one word (0x01010101 when all are taken, as nearly all are by the end game). */
function listFree(taken: Uint8Array, m: number, free: Int32Array): number {
  const words = new Uint32Array(taken.buffer, taken.byteOffset, m >> 2);
  const full = 0x01010101;
  let k = 0;
  for (let w = 0; w < words.length; w++) {
    if (words[w] === full) continue;
    for (let x = w << 2, end = x + 4; x < end; x++) if (taken[x] === 0) free[k++] = x;
  }
  for (let x = words.length << 2; x < m; x++) if (taken[x] === 0) free[k++] = x;
  return k;
}

/**
 * The end game of fillMaglev from turn `t` on (with the credits the weighted
 * loop left): every free slot is listed once, and each turn's backend claims
 * the one nearestFree() finds.
 */
function endGame(
  out: Int32Array,
  first: number,
  value: Int32Array,
  m: number,
  n: number,
  t: number,
  credit: Float64Array | null,
  maxWeight: number,
  weight: ArrayLike<number> | undefined,
  filled: number,
): void {
  const { taken, pos, skip, inv } = scratch;
  if (scratch.free.length < m - filled) scratch.free = new Int32Array(m - filled);
  const free = scratch.free;
  let count = listFree(taken, m, free);
  if (count !== m - filled) throw new Error(`Maglev end game: ${count} free slots, expected ${m - filled}`);
  for (let b = 0; b < n; b++) inv[b] = inverseMod(skip[b]!, m);
  for (; count > 0; t = t + 1 === n ? 0 : t + 1) {
    if (credit && !takesTurn(credit, weight!, t, maxWeight)) continue;
    const i = nearestFree(free, count, pos[t]!, inv[t]!, m);
    const c = free[i]!;
    free[i] = free[--count]!;
    out[first + c] = value[t]!;
    pos[t] = advance(c, skip[t]!, m);
  }
}

/**
 * Index in `free[0..count)` of the slot a backend at `from` (step s with
 * inverse `inv` mod m) reaches first: the fewest steps `(x − from) · inv mod
 * m`. Every slot before it on the backend's permutation is taken (it is not
 * free), so this is the slot probing finds. The products are < m² ≤ 2^52,
 * exact in a double; the remainder comes from a rounded quotient, corrected
 * by one m either way.
 */
function nearestFree(free: Int32Array, count: number, from: number, inv: number, m: number): number {
  const r = 1 / m;
  let best = 0;
  let bestSteps = m;
  for (let i = 0; i < count; i++) {
    let d = free[i]! - from;
    if (d < 0) d += m;
    const p = d * inv;
    let steps = p - Math.floor(p * r) * m;
    if (steps < 0) steps += m;
    else if (steps >= m) steps -= m;
    if (steps < bestSteps) {
      bestSteps = steps;
      best = i;
    }
  }
  return best;
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
  const table = new Int32Array(m).fill(-1);
  maglevFill(table, 0, backendNames, m, weights, null);
  return table;
}

/**
 * maglevTable() written into `out[first .. first + m)`, each slot holding
 * `values[i]` of the backend i that owns it (its index when `values` is
 * null). Slots are left as they are when no backend has a weight. Allocates
 * nothing per call beyond a few small arrays (the fill's scratch space is
 * kept per thread): what the table builders of compile use.
 */
export function maglevFill(
  out: Int32Array,
  first: number,
  backendNames: readonly string[],
  m: number,
  weights: readonly number[] | undefined,
  values: ArrayLike<number> | null,
): void {
  const w = validateInputs(backendNames, m, weights);
  if (first < 0 || first + m > out.length) throw new RangeError(`Maglev table of ${m} slots does not fit at ${first} in ${out.length}`);
  const order = turnOrder(backendNames, w);
  if (order.length === 0) return;
  const value = new Int32Array(order.length);
  for (let t = 0; t < order.length; t++) value[t] = values ? values[order[t]!]! : order[t]!;
  const weight = order.map((i) => w[i]!);
  fillMaglev(out, first, backendNames, order, value, m, weight.every((x) => x === weight[0]) ? undefined : weight);
}
