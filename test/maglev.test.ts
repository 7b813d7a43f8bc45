import { describe, it, expect } from 'vitest';
import { isPrime, maglevTable, murmur3 } from '../src/maglev.js';

const M = 65537;
const SIZES = [1, 2, 3, 7, 16, 64] as const;

/** Backend names like the control plane uses ("IP:PORT"). */
function names(n: number, base = 0): string[] {
  return Array.from({ length: n }, (_, i) => `10.1.${(base + i) >> 8}.${(base + i) & 255}:8080`);
}

/** Slot count per backend index. */
function counts(table: Int32Array, n: number): number[] {
  const out = new Array<number>(n).fill(0);
  for (const idx of table) out[idx] = (out[idx] ?? 0) + 1;
  return out;
}

/** The table as backend names per slot. */
function byName(table: Int32Array, backendNames: readonly string[]): string[] {
  return Array.from(table, (idx) => (idx < 0 ? '' : (backendNames[idx] ?? '?')));
}

/** True if two tables are identical (cheaper than a deep toEqual on 65537 entries). */
function sameTable(a: Int32Array, b: Int32Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/** Number of slots whose backend name differs between two tables. */
function moved(a: readonly string[], b: readonly string[]): number {
  let n = 0;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) n++;
  return n;
}

describe('isPrime', () => {
  it('classifies small and typical table sizes', () => {
    expect([2, 3, 5, 13, 16381, 65537, 1_000_003].every(isPrime)).toBe(true);
    expect([0, 1, 4, 9, 15, 16383, 65536, 1_000_001, -7, 2.5, NaN].some(isPrime)).toBe(false);
  });
});

describe('murmur3', () => {
  it('matches the published MurmurHash3 x86_32 test vectors', () => {
    const enc = new TextEncoder();
    expect(murmur3(enc.encode(''), 0)).toBe(0);
    expect(murmur3(enc.encode(''), 1)).toBe(0x514e28b7);
    expect(murmur3(enc.encode('hello'), 0)).toBe(0x248bfa47);
    expect(murmur3(enc.encode('Hello, world!'), 1234)).toBe(0xfaf6cdb3);
    expect(murmur3(enc.encode('The quick brown fox jumps over the lazy dog'), 0x9747b28c)).toBe(0x2fa826cd);
  });
});

describe('maglevTable', () => {
  it.each(SIZES)('gives each of %i backends a fair share within 1 percent', (n) => {
    const table = maglevTable(names(n), M);
    expect(table.length).toBe(M);
    const fair = M / n;
    for (const c of counts(table, n)) expect(Math.abs(c - fair)).toBeLessThanOrEqual(0.01 * fair);
  });

  it.each(SIZES.filter((n) => n > 1))('removing one of %i backends moves little beyond its own slots', (n) => {
    const all = names(n);
    const before = byName(maglevTable(all, M), all);
    for (const victim of [0, n - 1, n >> 1]) {
      const rest = all.filter((_, i) => i !== victim);
      const after = byName(maglevTable(rest, M), rest);
      const own = before.filter((name) => name === all[victim]).length;
      expect(moved(before, after)).toBeLessThanOrEqual(own + 0.01 * M);
    }
  });

  it.each(SIZES)('adding a backend to %i moves little beyond the newcomer slots', (n) => {
    const all = names(n);
    const grown = [...all, names(1, 1000)[0] ?? ''];
    const before = byName(maglevTable(all, M), all);
    const after = byName(maglevTable(grown, M), grown);
    const newcomer = after.filter((name) => name === grown[n]).length;
    expect(moved(before, after)).toBeLessThanOrEqual(newcomer + 0.01 * M);
  });

  it('is deterministic and independent of input order (up to index mapping)', () => {
    const a = names(16);
    const shuffled = [...a].reverse();
    expect(sameTable(maglevTable(a, M), maglevTable(a, M))).toBe(true);
    expect(moved(byName(maglevTable(a, M), a), byName(maglevTable(shuffled, M), shuffled))).toBe(0);
  });

  it('matches a reference table (guards against accidental algorithm or hash changes)', () => {
    // Computed once with this implementation (MurmurHash3 x86_32, seeds
    // 0x4d41474c / 0x45563136, name-ordered turns) and cross-checked against an
    // independent Python transcription of the paper's populate loop. Changing it changes which
    // backend every existing flow hashes to: only update deliberately.
    const backends = ['10.0.0.1:80', '10.0.0.2:80', '10.0.0.3:80'];
    expect(Array.from(maglevTable(backends, 13))).toEqual(REFERENCE_M13);
  });

  it('shares slots proportionally to weights within 1%', () => {
    const n = names(4);
    const weights = [1, 2, 3, 4];
    const c = counts(maglevTable(n, M, weights), 4);
    weights.forEach((w, i) => {
      const fair = (M * w) / 10;
      expect(Math.abs((c[i] ?? 0) - fair)).toBeLessThanOrEqual(0.01 * fair);
    });
  });

  it('gives no slots to a weight-0 backend and keeps the others fair', () => {
    const c = counts(maglevTable(names(3), M, [1, 0, 1]), 3);
    expect(c[1]).toBe(0);
    expect(Math.abs((c[0] ?? 0) - M / 2)).toBeLessThanOrEqual(0.01 * (M / 2));
  });

  it('equal weights reproduce the unweighted table', () => {
    expect(sameTable(maglevTable(names(5), M, [7, 7, 7, 7, 7]), maglevTable(names(5), M))).toBe(true);
  });

  it('returns all -1 without backends or when all weights are 0', () => {
    expect(maglevTable([], 13).every((x) => x === -1)).toBe(true);
    expect(maglevTable(['a', 'b'], 13, [0, 0]).every((x) => x === -1)).toBe(true);
  });

  it('rejects bad inputs', () => {
    expect(() => maglevTable(['a'], 16384)).toThrow(/prime/);
    expect(() => maglevTable(['a'], 1)).toThrow(/prime/);
    expect(() => maglevTable(['a', 'a'], 13)).toThrow(/unique/);
    expect(() => maglevTable(['a', 'b'], 13, [1])).toThrow(/length/);
    expect(() => maglevTable(['a'], 13, [-1])).toThrow(/weights/);
    expect(() => maglevTable(['a'], 13, [1.5])).toThrow(/weights/);
  });

  it('is fast enough for the data plane table sizes', () => {
    const n = names(64);
    maglevTable(n, 16381); // warm up the JIT
    const t0 = performance.now();
    maglevTable(n, 16381);
    const t1 = performance.now();
    maglevTable(n, 65537);
    const t2 = performance.now();
    // Generous bounds (typically ~0.6 ms and ~2.5 ms) to stay robust on loaded CI.
    expect(t1 - t0).toBeLessThan(5);
    expect(t2 - t1).toBeLessThan(30);
  });
});

const REFERENCE_M13 = [1, 2, 0, 0, 1, 2, 0, 0, 1, 2, 1, 0, 2];

/**
 * The populate loop as the paper writes it (one probe at a time, `%` per
 * step, credits for weights as maglevTable documents), against which the
 * fast fill (byte map, branch-free wrap, end game by modular inverse) is
 * checked slot for slot.
 */
function referenceTable(backendNames: readonly string[], m: number, weights?: readonly number[]): Int32Array {
  const enc = new TextEncoder();
  const w = weights ?? backendNames.map(() => 1);
  const order = backendNames
    .map((_, i) => i)
    .filter((i) => w[i]! > 0)
    .sort((a, b) => (backendNames[a]! < backendNames[b]! ? -1 : backendNames[a]! > backendNames[b]! ? 1 : 0));
  const table = new Int32Array(m).fill(-1);
  if (order.length === 0) return table;
  const offset = order.map((i) => murmur3(enc.encode(backendNames[i]!), 0x4d41474c) % m);
  const skip = order.map((i) => (murmur3(enc.encode(backendNames[i]!), 0x45563136) % (m - 1)) + 1);
  const next = order.map(() => 0);
  const credit = order.map(() => 0);
  const max = Math.max(...order.map((i) => w[i]!));
  let filled = 0;
  for (;;) {
    for (let t = 0; t < order.length; t++) {
      credit[t]! += w[order[t]!]!;
      if (credit[t]! < max) continue;
      credit[t]! -= max;
      let c = (offset[t]! + next[t]! * skip[t]!) % m;
      while (table[c] !== -1) {
        next[t]!++;
        c = (offset[t]! + next[t]! * skip[t]!) % m;
      }
      table[c] = order[t]!;
      next[t]!++;
      if (++filled === m) return table;
    }
  }
}

describe('maglevTable against the paper’s populate loop', () => {
  // 16381 is the default size; 65537 and 1000003 take the end game with products above 2^31;
  // small primes make the end game most of the fill (3 and 7: fewer slots than, or not a
  // multiple of, the four the end game's free-slot scan reads at once).
  const cases: Array<[number, number]> = [
    [3, 2],
    [7, 3],
    [13, 3],
    [17, 16],
    [251, 7],
    [4099, 64],
    [16381, 1],
    [16381, 64],
    [16381, 200],
    [65537, 33],
  ];
  it.each(cases)('M = %i, %i backends: the same table, equal and random weights', (m, n) => {
    for (let seed = 0; seed < 3; seed++) {
      const backends = names(n, 97 * seed);
      expect(sameTable(maglevTable(backends, m), referenceTable(backends, m))).toBe(true);
      const weights = backends.map((_, i) => ((i * 7919 + seed * 31) % 5) + (i % 3 === 0 ? 0 : 1));
      expect(sameTable(maglevTable(backends, m, weights), referenceTable(backends, m, weights))).toBe(true);
    }
  });
  it('M = 1000003 (the largest size the config accepts), 10 backends', () => {
    const backends = names(10, 5);
    expect(sameTable(maglevTable(backends, 1_000_003), referenceTable(backends, 1_000_003))).toBe(true);
  });
  it('a small table right after a large one (scratch space longer than M, its tail left from before)', () => {
    const big = names(40, 11);
    expect(sameTable(maglevTable(big, 65537), referenceTable(big, 65537))).toBe(true);
    for (const m of [251, 13, 7]) {
      const backends = names(5, m);
      expect(sameTable(maglevTable(backends, m), referenceTable(backends, m))).toBe(true);
    }
  });
  it('non-ASCII names hash their UTF-8 bytes', () => {
    const backends = ['bäckend-1', 'bäckend-2', '后端-3'];
    expect(sameTable(maglevTable(backends, 251), referenceTable(backends, 251))).toBe(true);
  });
});
