// Tests of the incremental apply (no root): compile() reusing an earlier
// compile's VIPs, and the writer diffing against the compile the store holds.
// Counted with the MemoryStore: what is written, and only that.
import { describe, it, expect } from 'vitest';
import { compile, EMPTY_IDS, backendKey, type Compiled } from '../src/compile.js';
import { validateConfig, type DesiredState } from '../src/config.js';
import { ApplyError } from '../src/errors.js';
import { MemoryStore, type MapName } from '../src/store.js';
import { plainCompiled, storeSnapshot } from './helpers/compiled.js';
import { applyCompiled, type ApplySummary, type Deferred } from '../src/writer.js';
import { XLB } from '../src/layout.js';

const IFINDEX = new Map([
  ['eth1', 11],
  ['eth2', 12],
]);
const MAPS: MapName[] = ['xlb_vip4', 'xlb_backends', 'xlb_ifaces', 'xlb_vip6', 'xlb_backends6'];
const M = '97';

/** n VIPs of one LB (10.20.x.y:80), each with `per` backends; `edit` may change any VIP's list. */
function config(n: number, per: number, edit: (i: number, list: string[]) => string[] = (_, l) => l, extra: object[] = []): DesiredState {
  const vips: Record<string, string> = {};
  for (let i = 0; i < n; i++) {
    const list = Array.from({ length: per }, (_, j) => `10.1.${i & 255}.${j + 1}:8080`);
    vips[`10.20.${i >> 8}.${i & 255}:80`] = edit(i, list).join(',');
  }
  return validateConfig({
    load_balancers: [{ name: 'big', options: { xlb_maglev_size: M }, vips }, ...extra],
    logical_switches: [{ name: 's1', ports: ['eth1', 'eth2'], load_balancer: ['big', ...extra.map((x) => (x as { name: string }).name)] }],
  });
}

const snapshot = (store: MemoryStore): Record<string, unknown> => storeSnapshot(store, MAPS);

const plain = plainCompiled;

/** Xlb.apply's use of compile and the writer, reduced to a store. */
class Incremental {
  readonly store = new MemoryStore();
  last: Compiled | null = null;
  pending: Deferred[] = [];
  reserved = new Set<number>();

  apply(d: DesiredState, down?: ReadonlySet<string>): { c: Compiled; s: ApplySummary } {
    const c = compile(d, this.last?.ids ?? EMPTY_IDS, down, this.last, { reservedBackendIds: this.reserved });
    const s = applyCompiled(this.store, c, IFINDEX, this.last?.ids ?? EMPTY_IDS, {
      prev: this.last ?? undefined,
      prevIfindexes: (this.last?.ifaces ?? []).map((i) => IFINDEX.get(i.interface)!),
      onDeferred: (x) => {
        this.pending.push(x);
        for (const id of x.backendIds) this.reserved.add(id);
      },
    });
    this.last = c;
    return { c, s };
  }
  reclaim(): void {
    for (const d of this.pending) {
      d.run();
      for (const id of d.backendIds) this.reserved.delete(id);
    }
    this.pending = [];
  }
}

describe('compile: reuse of an earlier compile', () => {
  const a = config(50, 8);
  const c1 = compile(a);

  it('hands back the very same VIP and entry objects when nothing changed', () => {
    const c2 = compile(config(50, 8), c1.ids, undefined, c1);
    expect(c2.vips).toHaveLength(50);
    c2.vips.forEach((v, i) => expect(v).toBe(c1.vips[i]));
    c2.entries.forEach((e, i) => expect(e).toBe(c1.entries[i]));
    expect(c2.ids).toEqual(c1.ids);
  });

  it('recomputes only the changed VIP, and the result equals a compile from scratch', () => {
    const b = config(50, 8, (i, l) => (i === 17 ? [...l.slice(1), '10.9.9.9:8080'] : l));
    const inc = compile(b, c1.ids, undefined, c1);
    const changed = inc.vips.filter((v, i) => v !== c1.vips[i]);
    expect(changed.map((v) => v.vip)).toEqual(['10.20.0.17:80']);
    expect(plain(inc)).toEqual(plain(compile(b, c1.ids)));
  });

  it('does not reuse a compile whose ids are not the ones given (falls back, same result)', () => {
    const b = config(50, 8, (i, l) => (i === 3 ? l.slice(2) : l));
    const other = { ...c1.ids };
    const inc = compile(b, other, undefined, c1);
    expect(inc.vips.every((v, i) => v !== c1.vips[i])).toBe(true);
    expect(plain(inc)).toEqual(plain(compile(b, c1.ids)));
  });

  it('equals a compile from scratch over a random sequence of changes (VIPs, backends, LBs, down sets, weights)', () => {
    let seed = 12345;
    const rnd = (n: number): number => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) % n);
    let inc: Compiled | null = null;
    let ids = EMPTY_IDS;
    for (let step = 0; step < 60; step++) {
      const n = 5 + rnd(20);
      const drop = rnd(8);
      const withMail = rnd(2) === 0;
      const weighted = rnd(4) === 0;
      const d = validateConfig({
        load_balancers: [
          {
            name: 'big',
            options: { xlb_maglev_size: M, ...(weighted ? { xlb_weights: `10.1.0.${drop === 0 ? 51 : 1}:8080=3` } : {}) },
            vips: Object.fromEntries(
              Array.from({ length: n }, (_, i) => [
                `10.20.0.${i}:80`,
                Array.from({ length: 1 + ((i + step) % 5) }, (_, j) => `10.1.${i === 0 ? 0 : i}.${j + 1 + (j === drop ? 50 : 0)}:8080`).join(','),
              ]),
            ),
          },
          ...(withMail
            ? [{ name: 'mail', options: { xlb_maglev_size: M }, vips: { '10.30.0.1:25': '10.3.0.1:25,10.3.0.2:25', '[2001:db8::1]:25': step % 2 ? '[2001:db8::10]:25' : '[2001:db8::10]:25,[2001:db8::11]:25' } }]
            : []),
        ],
        logical_switches: [
          { name: 's1', ports: ['eth1'], load_balancer: withMail ? ['big', 'mail'] : ['big'] },
          ...(rnd(2) ? [{ name: 's2', ports: ['eth2'], load_balancer: ['big'] }] : []),
        ],
      });
      const down = new Set<string>();
      if (rnd(3) === 0) down.add(backendKey('big 10.20.0.1:80/tcp', '10.1.1.1:8080'));
      const next = compile(d, ids, down, inc);
      expect(plain(next)).toEqual(plain(compile(d, ids, down)));
      inc = next;
      ids = next.ids;
    }
  });

  it('does not hand out reserved backend ids', () => {
    const b = config(50, 8, (i, l) => (i === 0 ? [...l, '10.9.9.9:8080', '10.9.9.8:8080'] : l));
    const low = Math.max(...Object.values(c1.ids.backends)) + 1;
    const inc = compile(b, c1.ids, undefined, c1, { reservedBackendIds: new Set([low, low + 1]) });
    const fresh = inc.vips[0]!.backends.slice(-2).map((x) => x.id);
    expect(fresh).toEqual([low + 2, low + 3]);
  });
});

describe('incremental apply: only what changed is written', () => {
  it('one backend of one VIP among 200: one table rewritten in place, one backend written, one removed after a grace period', () => {
    const x = new Incremental();
    x.apply(config(200, 16));
    x.store.tableWrites.length = 0;
    x.store.writes = 0;
    const { c, s } = x.apply(config(200, 16, (i, l) => (i === 123 ? [...l.slice(1), '10.9.9.9:8080'] : l)));
    const vip = c.vips.find((v) => v.vip === '10.20.0.123:80')!;
    expect(x.store.tableWrites).toEqual([vip.id]);
    expect(s.tables).toEqual({ swapped: 1, patched: 1, removed: 0 });
    expect(s.backends).toEqual({ written: 1, removed: 1 });
    expect(s.vips).toEqual({ written: 0, removed: 0 });
    // One backend write and one table patch; the removal waits.
    expect(x.store.writes).toBe(2);
    expect(x.store.patchedSlots).toBeGreaterThan(0);
    expect(x.store.patchedSlots).toBeLessThan(Number(M) / 4);
    expect(x.pending).toHaveLength(1);
    const gone = x.pending[0]!.backendIds[0]!;
    expect(x.store.maps.xlb_backends.has(Buffer.alloc(4, 0).fill(0).toString('hex'))).toBe(false);
    expect(x.store.dump('xlb_backends').size).toBe(200 * 16 + 1); // still there
    expect(x.store.graces).toBe(0);
    // Nothing in any table names it any more.
    expect(x.store.tableIds().length).toBeGreaterThan(0);
    for (const id of x.store.tableIds()) expect(Array.from(x.store.readTable(id)!).slice(1)).not.toContain(gone);
    x.reclaim();
    expect(x.store.graces).toBe(1);
    expect(x.store.dump('xlb_backends').size).toBe(200 * 16);
    // The store now equals a from-scratch apply of the same compile.
    const fresh = new MemoryStore();
    applyCompiled(fresh, c, IFINDEX);
    expect(snapshot(x.store)).toEqual(snapshot(fresh));
  });

  it('applying the same state again writes nothing and reads nothing back', () => {
    const x = new Incremental();
    x.apply(config(100, 4));
    x.store.writes = 0;
    const { s } = x.apply(config(100, 4));
    expect(s.writes).toBe(0);
    expect(x.store.writes).toBe(0);
  });

  it('without a taker for deferred removals, the writer waits for the grace period itself', () => {
    const store = new MemoryStore();
    const a = compile(config(10, 4));
    applyCompiled(store, a, IFINDEX);
    const b = compile(config(10, 4, (i, l) => (i === 2 ? l.slice(1) : l)), a.ids, undefined, a);
    const s = applyCompiled(store, b, IFINDEX, a.ids, { prev: a });
    expect(s.tables.patched).toBe(1);
    expect(store.graces).toBe(1);
    const fresh = new MemoryStore();
    applyCompiled(fresh, b, IFINDEX);
    expect(snapshot(store)).toEqual(snapshot(fresh));
  });

  it('a freed backend id is not reused while its removal waits, and is after it', () => {
    const x = new Incremental();
    x.apply(config(5, 4));
    x.apply(config(5, 4, (i, l) => (i === 0 ? l.slice(1) : l)));
    const waiting = x.pending[0]!.backendIds[0]!;
    const { c } = x.apply(config(5, 4, (i, l) => (i === 0 ? l.slice(1) : i === 1 ? [...l, '10.9.9.9:8080'] : l)));
    const all = c.vips.flatMap((v) => v.backends.map((b) => b.id));
    expect(all).not.toContain(waiting);
    x.reclaim();
    const { c: c2 } = x.apply(config(5, 4, (i, l) => (i === 0 ? l.slice(1) : i === 1 ? [...l, '10.9.9.9:8080', '10.9.9.8:8080'] : l)));
    expect(c2.vips.flatMap((v) => v.backends.map((b) => b.id))).toContain(waiting);
  });

  it('adds, removes and changes of every kind give the store of a from-scratch apply', () => {
    const x = new Incremental();
    x.apply(config(30, 4, undefined, [{ name: 'mail', options: { xlb_maglev_size: M }, vips: { '10.30.0.1:25': '10.3.0.1:25', '[2001:db8::1]:25': '[2001:db8::10]:25' } }]));
    // 10 VIPs fewer, mail removed, one VIP emptied, a new LB with another M (and an IPv6 VIP).
    const b = validateConfig({
      load_balancers: [
        {
          name: 'big',
          options: { xlb_maglev_size: M },
          vips: { ...Object.fromEntries(Object.entries(config(20, 4).load_balancers[0]!.vips)), '10.20.0.5:80': '' },
        },
        { name: 'big2', options: { xlb_maglev_size: '101' }, vips: { '10.20.0.6:81': '10.1.6.1:8080', '[2001:db8::2]:80': '[2001:db8::20]:80' } },
      ],
      logical_switches: [{ name: 's1', ports: ['eth2'], load_balancer: ['big', 'big2'] }],
    });
    const { c, s } = x.apply(b);
    x.reclaim();
    expect(s.tables.removed).toBe(12); // 10 VIPs of big, both of mail
    const fresh = new MemoryStore();
    applyCompiled(fresh, c, IFINDEX);
    expect(snapshot(x.store)).toEqual(snapshot(fresh));
  });

  it('rolls back to exactly the previous state when any write of an incremental apply fails', () => {
    const a = config(40, 4, undefined, [{ name: 'mail', options: { xlb_maglev_size: M }, vips: { '10.30.0.1:25': '10.3.0.1:25' } }]);
    const b = config(45, 4, (i, l) => (i % 7 === 0 ? [...l.slice(1), `10.9.9.${i}:8080`] : l));
    const probe = new Incremental();
    probe.apply(a);
    probe.store.writes = 0;
    probe.apply(b);
    const total = probe.store.writes;
    expect(total).toBeGreaterThan(5);
    for (let n = 1; n <= total; n++) {
      const x = new Incremental();
      x.apply(a);
      const before = snapshot(x.store);
      const prev = x.last!;
      x.store.writes = 0;
      x.store.failAt = n;
      let err: unknown;
      try {
        x.apply(b);
      } catch (e) {
        err = e;
      }
      expect(err, `write ${n}`).toBeInstanceOf(ApplyError);
      expect((err as ApplyError).vip).toBeTruthy();
      expect(x.last).toBe(prev);
      x.store.failAt = 0;
      expect(snapshot(x.store), `write ${n}`).toEqual(before);
      expect(x.pending).toHaveLength(0);
    }
  });
});

describe('Maglev tables on two threads', () => {
  it('builds exactly the tables one thread builds, weighted or not', async () => {
    const { buildTables, fillTable, PARALLEL_MIN, BATCH } = await import('../src/maglev-pool.js');
    const { maglevTable } = await import('../src/maglev.js');
    // Several batches handed to the worker while jobs are still added, and a last partial one.
    const jobs = Array.from({ length: PARALLEL_MIN + 2 * BATCH + 5 }, (_, i) => ({
      ids: Array.from({ length: 1 + (i % 9) }, (_, j) => 100 * i + j + 1),
      names: Array.from({ length: 1 + (i % 9) }, (_, j) => `10.${i}.0.${j + 1}:80`),
      weights: i % 4 === 0 ? Array.from({ length: 1 + (i % 9) }, (_, j) => 1 + j) : undefined,
      m: i % 2 ? 97 : 251,
    }));
    jobs.push({ ids: [], names: [], weights: undefined, m: 97 });
    const two = buildTables(jobs);
    const one = jobs.map((j) => {
      // Into memory that held something else: every slot is written.
      const t = new Uint32Array(j.m + 1).fill(0xdead);
      fillTable(j, t);
      return Array.from(t);
    });
    expect(two.map((t) => Array.from(t))).toEqual(one);
    // And they are maglevTable()'s tables with indexes turned into ids.
    jobs.forEach((j, i) => {
      if (j.ids.length === 0) return;
      const idx = maglevTable(j.names, j.m, j.weights);
      expect(one[i], `job ${i}`).toEqual([j.m, ...Array.from(idx, (k) => j.ids[k]!)]);
    });
    expect(one[one.length - 1]!.slice(1).every((x) => x === XLB.BACKEND_NONE)).toBe(true);
  });
});
