// Tests of the writer (applyCompiled) against the in-memory MapStore: diffing,
// idempotence, scoped changes and all-or-nothing rollback under fault injection.
import { describe, it, expect } from 'vitest';
import { compile, emptyCompiled, EMPTY_IDS, type Compiled, type Ids } from '../src/compile.js';
import { validateConfig } from '../src/config.js';
import { ApplyError, ERROR_CODES } from '../src/errors.js';
import { decodeBackend4, decodeIface, decodeU32, decodeVip4Key, decodeVipVal, encodeU32, maglevClass } from '../src/layout.js';
import { MemoryStore, type MapName } from '../src/store.js';
import { applyCompiled } from '../src/writer.js';
import { parseIPv4 } from '../src/addr.js';

const IFINDEX = new Map([
  ['eth1', 11],
  ['eth2', 12],
  ['eth3', 13],
  ['eth4', 14],
  ['ns1/eth5', 15],
]);
const MAPS: MapName[] = ['xlb_vip4', 'xlb_backends', 'xlb_ifaces', 'xlb_neigh4', 'xlb_neigh6'];
/** Small tables keep the deep comparisons cheap; the writer does not care about M. */
const SMALL = { xlb_maglev_size: '97' };

/** Everything a store holds, in a deterministic, deep-comparable form. */
function snapshot(store: MemoryStore): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const m of MAPS) {
    out[m] = [...store.dump(m)].map(([k, v]) => [k, v.toString('hex')]).sort();
  }
  out.tables = store
    .tableIds()
    .sort((a, b) => a - b)
    .map((id) => [id, Array.from(store.readTable(id)!)]);
  return out;
}

/** An xlb instance reduced to its store and ids, as Xlb.apply drives the writer. */
class Harness {
  readonly store = new MemoryStore();
  ids: Ids = EMPTY_IDS;
  compiled: Compiled | null = null;

  compile(raw: unknown): Compiled {
    return compile(validateConfig(raw), this.ids);
  }
  apply(raw: unknown): ReturnType<typeof applyCompiled> {
    const c = this.compile(raw);
    const summary = applyCompiled(this.store, c, IFINDEX, this.ids);
    this.ids = c.ids;
    this.compiled = c;
    return summary;
  }
}

/** State A: two LBs on two switches. */
const A = {
  load_balancers: [
    {
      name: 'web',
      options: SMALL,
      vips: {
        '10.10.0.1:80': '10.0.0.1:80,10.0.0.2:80,10.0.0.3:80',
        '10.10.0.1:443': '10.0.0.1:443,10.0.0.2:443',
      },
    },
    { name: 'dns', protocol: 'udp', options: SMALL, vips: { '10.10.0.2:53': '10.0.1.1:53,10.0.1.2:53' } },
  ],
  logical_switches: [
    { name: 's1', ports: ['eth1', 'eth2'], load_balancer: ['web'] },
    { name: 's2', ports: ['eth3'], load_balancer: ['web', 'dns'] },
  ],
};

/** State B: a changed VIP, a removed VIP, a removed LB, a new LB, ports moved. */
const B = {
  load_balancers: [
    {
      name: 'web',
      options: SMALL,
      // :80 loses 10.0.0.3 and gains 10.0.0.9; :443 is gone.
      vips: { '10.10.0.1:80': '10.0.0.1:80,10.0.0.2:80,10.0.0.9:80' },
    },
    // A new LB with an IP-only VIP. 2 VIPs and 4 backends in B against 3 and 7
    // in A: some ids are reused, the rest removed.
    { name: 'mail', options: SMALL, vips: { '10.10.0.4': '10.0.3.1' } },
  ],
  logical_switches: [
    { name: 's1', ports: ['eth1'], load_balancer: ['web'] },
    { name: 's3', ports: ['eth4', 'ns1/eth5'], load_balancer: ['mail', 'web'] },
  ],
};

describe('applyCompiled: basic reconciliation', () => {
  it('writes everything on the first apply and reports counts', () => {
    const h = new Harness();
    const s = h.apply(A);
    const c = h.compiled!;
    const nBackends = c.vips.reduce((n, v) => n + v.backends.length, 0);
    expect(nBackends).toBe(7);
    expect(s).toEqual({
      backends: { written: 7, removed: 0 },
      tables: { swapped: 3, patched: 0, removed: 0 },
      // web's 2 VIPs in s1 and s2, dns's VIP in s2.
      vips: { written: 5, removed: 0 },
      ifaces: { written: 3, removed: 0 },
      neigh: { written: 0, removed: 0 },
      writes: 7 + 1 + 5 + 3, // the 3 tables are swapped in one batch
    });
    expect(h.store.writes).toBe(s.writes);

    // The store holds exactly the compiled contents.
    expect(h.store.tableIds().sort()).toEqual(c.vips.map((v) => v.id).sort());
    for (const v of c.vips) {
      expect(Array.from(h.store.readTable(v.id)!)).toEqual(Array.from(v.table));
      for (const b of v.backends) {
        const raw = h.store.maps.xlb_backends.get(encodeU32(b.id).toString('hex'));
        expect(raw && decodeBackend4(raw)).toEqual({ addr: b.addr, port: b.port, flags: 0 });
      }
    }
    const vips = [...h.store.dump('xlb_vip4')].map(([k, v]) => ({ ...decodeVip4Key(Buffer.from(k, 'hex')), ...decodeVipVal(v) }));
    expect(vips.sort((a, b) => a.scope - b.scope || a.vipId - b.vipId)).toEqual(
      c.entries.map((e) => ({ addr: e.addr, port: e.port, proto: e.proto, scope: e.scope, vipId: e.vipId, flags: e.flags, hashFields: e.hashFields, affinityTimeoutS: e.affinityTimeoutS, snatAddr: e.snatAddr, hairpinAddr: e.hairpinAddr, tableClass: maglevClass(c.vips.find((v) => v.id === e.vipId)!.table), tableM: c.vips.find((v) => v.id === e.vipId)!.table[0] }))
        .sort((a, b) => a.scope - b.scope || a.vipId - b.vipId),
    );
    const ifaces = [...h.store.dump('xlb_ifaces')].map(([k, v]) => [decodeU32(Buffer.from(k, 'hex')), decodeIface(v)]);
    expect(ifaces.sort()).toEqual([
      [11, { scope: h.ids.scopes['switch s1'], flags: 1 }],
      [12, { scope: h.ids.scopes['switch s1'], flags: 1 }],
      [13, { scope: h.ids.scopes['switch s2'], flags: 1 }],
    ]);
    // Fresh ids get their counters zeroed.
    expect([...h.store.statsResets].sort()).toEqual(
      [...c.vips.map((v) => `vip:${v.id}`), ...c.vips.flatMap((v) => v.backends.map((b) => `backend:${b.id}`))].sort(),
    );
  });

  it('performs no write when the same state is applied again', () => {
    const h = new Harness();
    h.apply(A);
    const before = snapshot(h.store);
    const writes = h.store.writes;
    const resets = h.store.statsResets.length;
    const s = h.apply(A);
    expect(s).toEqual({
      backends: { written: 0, removed: 0 },
      tables: { swapped: 0, patched: 0, removed: 0 },
      vips: { written: 0, removed: 0 },
      ifaces: { written: 0, removed: 0 },
      neigh: { written: 0, removed: 0 },
      writes: 0,
    });
    expect(h.store.writes).toBe(writes);
    expect(h.store.statsResets.length).toBe(resets);
    expect(snapshot(h.store)).toEqual(before);
  });

  it('changing one backend of one VIP swaps only that VIP table', () => {
    const h = new Harness();
    h.apply(A);
    const before = snapshot(h.store);
    const vipsBefore = h.store.dump('xlb_vip4');
    const idsBefore = structuredClone(h.ids);
    const changed = structuredClone(A);
    changed.load_balancers[0]!.vips['10.10.0.1:80'] = '10.0.0.1:80,10.0.0.2:80,10.0.0.7:80';
    const s = h.apply(changed);

    expect(s.tables).toEqual({ swapped: 1, patched: 0, removed: 0 });
    expect(s.vips).toEqual({ written: 0, removed: 0 });
    expect(s.ifaces).toEqual({ written: 0, removed: 0 });
    expect(s.backends.written).toBe(1);
    expect(s.writes).toBe(s.backends.written + s.backends.removed + 1);
    expect(h.ids.vips).toEqual(idsBefore.vips);

    const target = idsBefore.vips['web 10.10.0.1:80/tcp']!;
    const after = snapshot(h.store);
    const tablesBefore = new Map(before.tables as Array<[number, number[]]>);
    const tablesAfter = new Map(after.tables as Array<[number, number[]]>);
    expect([...tablesAfter.keys()]).toEqual([...tablesBefore.keys()]);
    expect(tablesAfter.has(target)).toBe(true);
    for (const [id, t] of tablesAfter) {
      if (id === target) expect(t).not.toEqual(tablesBefore.get(id));
      else expect(t, `table of VIP id ${id}`).toEqual(tablesBefore.get(id));
    }
    expect(h.store.dump('xlb_vip4')).toEqual(vipsBefore);
    expect(after.xlb_ifaces).toEqual(before.xlb_ifaces);
    // The new backend is in the table; the old one is in no table any more.
    const newId = h.ids.backends['web 10.10.0.1:80/tcp 10.0.0.7:80']!;
    const table = h.store.readTable(target)!;
    expect(table.includes(newId)).toBe(true);
    const raw = h.store.maps.xlb_backends.get(encodeU32(newId).toString('hex'))!;
    expect(decodeBackend4(raw)).toEqual({ addr: parseIPv4('10.0.0.7'), port: 80, flags: 0 });
  });

  it('removing an LB removes its VIP entries, table and backends', () => {
    const h = new Harness();
    h.apply(A);
    const dnsId = h.ids.vips['dns 10.10.0.2:53/udp']!;
    const dnsBackends = Object.entries(h.ids.backends)
      .filter(([k]) => k.startsWith('dns '))
      .map(([, id]) => id);
    expect(dnsBackends).toHaveLength(2);
    const without = structuredClone(A);
    without.load_balancers.pop();
    without.logical_switches[1]!.load_balancer = ['web'];
    const s = h.apply(without);

    expect(s.tables).toEqual({ swapped: 0, patched: 0, removed: 1 });
    expect(s.vips).toEqual({ written: 0, removed: 1 });
    expect(s.backends).toEqual({ written: 0, removed: 2 });
    expect(s.ifaces).toEqual({ written: 0, removed: 0 });
    expect(s.writes).toBe(4);
    expect(h.store.readTable(dnsId)).toBeNull();
    expect(h.store.tableIds()).not.toContain(dnsId);
    for (const id of dnsBackends) expect(h.store.maps.xlb_backends.has(encodeU32(id).toString('hex'))).toBe(false);
    for (const [, v] of h.store.dump('xlb_vip4')) expect(decodeVipVal(v).vipId).not.toBe(dnsId);
    // What is left is exactly what a fresh apply of the smaller state writes.
    const fresh = new Harness();
    fresh.ids = h.ids;
    fresh.apply(without);
    expect(snapshot(h.store)).toEqual(snapshot(fresh.store));
  });

  it('removing everything empties the store', () => {
    const h = new Harness();
    h.apply(A);
    const s = h.apply({});
    expect(s.tables.removed).toBe(3);
    expect(s.writes).toBe(18 - 2); // the 3 tables go in one write (MapStore.deleteTables)
    expect(s.backends.removed + s.tables.removed + s.vips.removed + s.ifaces.removed).toBe(18);
    expect(snapshot(h.store)).toEqual({ xlb_vip4: [], xlb_backends: [], xlb_ifaces: [], xlb_neigh4: [], xlb_neigh6: [], tables: [] });
  });

  it('refuses an interface without an ifindex before writing anything', () => {
    const h = new Harness();
    const c = h.compile({
      load_balancers: [{ name: 'x', vips: { '10.9.9.9:80': '10.0.0.1:80' } }],
      logical_switches: [{ name: 's', ports: ['nope0'], load_balancer: ['x'] }],
    });
    expect(() => applyCompiled(h.store, c, IFINDEX)).toThrow(ApplyError);
    expect(() => applyCompiled(h.store, c, IFINDEX)).toThrow(/nope0/);
    expect(h.store.writes).toBe(0);
  });

  it('zeroes the counters of an id that now serves something else', () => {
    const h = new Harness();
    h.apply(A);
    const freedVip = h.ids.vips['web 10.10.0.1:443/tcp']!;
    const next = structuredClone(A) as unknown as { load_balancers: Array<{ vips: Record<string, string> }> };
    // Drop :443, then add :8443 in a later apply: the new VIP gets the freed id.
    next.load_balancers[0]!.vips = { '10.10.0.1:80': A.load_balancers[0]!.vips['10.10.0.1:80']! };
    h.apply(next);
    next.load_balancers[0]!.vips = { ...next.load_balancers[0]!.vips, '10.10.0.1:8443': '10.0.0.5:8443' };
    h.store.statsResets.length = 0;
    h.apply(next);
    const reused = h.ids.vips['web 10.10.0.1:8443/tcp']!;
    expect(reused).toBe(freedVip);
    const newBackend = h.ids.backends['web 10.10.0.1:8443/tcp 10.0.0.5:8443']!;
    expect(h.store.statsResets).toContain(`vip:${reused}`);
    expect(h.store.statsResets).toContain(`backend:${newBackend}`);
    // Kept identities keep their counters.
    expect(h.store.statsResets).not.toContain(`vip:${h.ids.vips['web 10.10.0.1:80/tcp']}`);
    expect(h.store.statsResets).toHaveLength(2);
  });
});

describe('applyCompiled: rollback under fault injection', () => {
  /** A store holding state A, with its write counter reset. */
  function storeWithA(): Harness {
    const h = new Harness();
    h.apply(A);
    h.store.writes = 0;
    return h;
  }

  const probe = storeWithA();
  const compiledB = probe.compile(B);
  const summaryB = applyCompiled(probe.store, compiledB, IFINDEX, probe.ids);
  const afterB = snapshot(probe.store);
  const totalWrites = probe.store.writes;

  /** Every VIP name and interface in A or B: one of them must be named by a failure. */
  const names = [
    ...new Set([...compile(validateConfig(A)).vips.map((v) => v.name), ...compiledB.vips.map((v) => v.name)]),
  ];

  it('is a non-trivial change: additions, changes and removals of every kind', () => {
    expect(summaryB.writes).toBe(totalWrites);
    expect(totalWrites).toBeGreaterThan(15);
    expect(summaryB.backends.written).toBeGreaterThan(0);
    expect(summaryB.backends.removed).toBeGreaterThan(0);
    expect(summaryB.tables.swapped).toBeGreaterThan(1);
    expect(summaryB.tables.removed).toBeGreaterThan(0);
    expect(summaryB.vips.written).toBeGreaterThan(0);
    expect(summaryB.vips.removed).toBeGreaterThan(0);
    expect(summaryB.ifaces.written).toBeGreaterThan(0);
    expect(summaryB.ifaces.removed).toBeGreaterThan(0);
    // The changed VIP kept its id, so its table was swapped in place.
    expect(compiledB.ids.vips['web 10.10.0.1:80/tcp']).toBe(probe.ids.vips['web 10.10.0.1:80/tcp']);
  });

  it('rolls back to exactly A when any write fails, naming what was being written', () => {
    const whats = new Set<string>();
    for (let n = 1; n <= totalWrites; n++) {
      const h = storeWithA();
      const before = snapshot(h.store);
      const c = h.compile(B);
      h.store.failAt = n;
      let err: unknown;
      try {
        applyCompiled(h.store, c, IFINDEX, h.ids);
      } catch (e) {
        err = e;
      }
      expect(err, `write ${n} of ${totalWrites} should fail`).toBeInstanceOf(ApplyError);
      const ae = err as ApplyError;
      expect(ae.code).toBe('XLB_APPLY');
      expect(ae.code in ERROR_CODES).toBe(true);
      expect(ae.message).toContain(`injected fault at write ${n}`);
      expect(ae.message).toContain(`rolled back ${n - 1} earlier write(s)`);
      expect(ae.message).not.toContain('rollback also failed');
      expect((ae.cause as Error).message).toBe(`injected fault at write ${n}`);
      expect(ae.vip, `write ${n}`).toBeTypeOf('string');
      // Writes name the interface; removals only know its ifindex.
      const named =
        names.some((name) => ae.message.includes(`VIP ${name}`)) ||
        /\binterface (eth\d|ns1\/eth5|ifindex 1[1-5])\b/.test(ae.message);
      expect(named, `write ${n}: "${ae.message}" names no VIP or interface`).toBe(true);
      whats.add(ae.vip!);

      expect(snapshot(h.store), `store after failing write ${n}`).toEqual(before);

      // Retrying without the fault converges to the same state as a clean apply.
      h.store.failAt = 0;
      applyCompiled(h.store, c, IFINDEX, h.ids);
      expect(snapshot(h.store), `store after retry of write ${n}`).toEqual(afterB);
    }
    // Every write is a separate, named step.
    expect(whats.size).toBe(totalWrites);
  });

  it('a clean apply of B equals B applied to an empty store', () => {
    const fresh = new Harness();
    fresh.ids = compiledB.ids;
    applyCompiled(fresh.store, compiledB, IFINDEX, compiledB.ids);
    expect(afterB).toEqual(snapshot(fresh.store));
  });
});

describe('applyCompiled from the previous compile: backends written as one batch', () => {
  // 100 backends of one VIP (≥ BATCH_MIN): the writer packs them into one batch write, and its
  // undo writes back each backend's old value (a changed one) or zeros (a new one).
  const backends = Array.from({ length: 100 }, (_, i) => `10.5.${i >> 8}.${i + 1}:80`);
  const cfg = (weights: string | null, extra: string[] = []): unknown => ({
    load_balancers: [
      { name: 'big', options: { ...SMALL, ...(weights ? { xlb_weights: weights } : {}) }, vips: { '10.10.9.1:80': [...backends, ...extra].join(',') } },
    ],
    logical_switches: [{ name: 's1', ports: ['eth1'], load_balancer: ['big'] }],
  });
  // B drains every backend of A (each one's value changes: BACKEND_F_DRAIN) and adds 70 new ones.
  const extra = Array.from({ length: 70 }, (_, i) => `10.6.0.${i + 1}:80`);
  const drainAll = backends.map((b) => `${b}=0`).join(',');

  it('writes them, and a fault after the batch puts every old value back (the new ones gone)', () => {
    const store = new MemoryStore();
    const a = compile(validateConfig(cfg(null)));
    applyCompiled(store, a, IFINDEX, EMPTY_IDS, { prev: emptyCompiled() });
    const before = snapshot(store);
    const b = compile(validateConfig(cfg(drainAll, extra)), a.ids, undefined, a);
    store.writes = 0;
    const batches: Array<[string, number]> = [];
    const updateMany = store.updateMany.bind(store);
    store.updateMany = (map, keys, values, count) => {
      batches.push([map, count]);
      updateMany(map, keys, values, count);
    };
    const s = applyCompiled(store, b, IFINDEX, a.ids, { prev: a });
    store.updateMany = updateMany;
    expect(s.backends.written).toBe(170);
    expect(batches.filter(([map]) => map === 'xlb_backends')).toEqual([['xlb_backends', 170]]); // one batch
    const drained = [...store.dump('xlb_backends')].filter(([, v]) => decodeBackend4(v).flags !== 0);
    expect(drained).toHaveLength(100);
    const after = snapshot(store);
    const writes = store.writes;
    expect(writes).toBeGreaterThan(1);

    for (let n = 2; n <= writes; n++) {
      const again = new MemoryStore();
      applyCompiled(again, a, IFINDEX, EMPTY_IDS, { prev: emptyCompiled() });
      again.writes = 0;
      again.failAt = n;
      expect(() => applyCompiled(again, b, IFINDEX, a.ids, { prev: a })).toThrow(ApplyError);
      expect(snapshot(again), `fault at write ${n}`).toEqual(before);
      again.failAt = 0;
      applyCompiled(again, b, IFINDEX, a.ids, { prev: a });
      expect(snapshot(again)).toEqual(after);
    }
  });
});
