/**
 * The writer: diffs compiled map contents against what the store (the kernel)
 * holds and applies only the difference, in an order that never exposes a
 * half-built VIP to a packet:
 *   backends → Maglev tables (each swapped in one step) → VIP entries → interfaces,
 * then removals in reverse: interfaces → VIP entries → tables → backends.
 * Every write records its inverse; a failed write undoes all earlier ones, and
 * the error names the VIP (or interface) being written.
 *
 * Two ways to find the difference: against what the store holds (read back,
 * the default), or — given `prev`, the compile the store was last brought to —
 * against that compile, by object identity: compile() hands back the very
 * same CompiledVip and entry objects for unchanged VIPs, so only changed VIPs
 * are looked at and the cost follows the change, not the size of the state.
 * A changed table of the same size is then rewritten in place (only the slots
 * that differ, see MapStore.patchTable) instead of being swapped in, which
 * would wait for an RCU grace period. Slot by slot the order stays safe: new
 * backends are written before any slot names them, and a removed backend's
 * entry is deleted only after a grace period that follows the last rewrite
 * (a program that read an old slot just before the rewrite has finished by
 * then); until then its id is not handed out again (see Xlb.apply).
 */
import { configAddrs } from './addrfilter.js';
import { vipChanges, type Compiled, type CompiledBackend, type CompiledVip, type CompiledVipEntry } from './compile.js';
import { ApplyError } from './errors.js';
import {
  decodeU32,
  decodeVip4Key,
  decodeVipVal,
  encodeBackend4,
  decodeNeigh4Key,
  decodeNeigh6Key,
  encodeNeigh6Key,
  encodeBackend6,
  encodeIface,
  encodeNeigh4Key,
  encodeSnat4Key,
  encodeSnat4Val,
  encodeU32,
  encodeVip4Key,
  encodeVip6Key,
  encodeVipVal,
  decodeVip6Key,
  maglevClass,
  XLB,
  encodeBackend4Into,
  encodeBackend6Into,
  LAYOUT,
} from './layout.js';
import { formatIPv4, formatIPv6 } from './addr.js';
import { hex, isArrayMap, type MapName, type MapStore } from './store.js';

/** What an apply changed, for reports and tests ("apply twice is a no-op"). */
export interface ApplySummary {
  backends: { written: number; removed: number };
  /** swapped: new inner maps swapped in; patched: rewritten in place (included in swapped). */
  tables: { swapped: number; patched: number; removed: number };
  vips: { written: number; removed: number };
  ifaces: { written: number; removed: number };
  /** Addresses routers answer ARP for (neighbor_responder). */
  neigh: { written: number; removed: number };
  /** Total map writes (0 when nothing changed). */
  writes: number;
}

/** Counters of diff work (tests check that a small change costs little). */
export const diffCounters = { vipsWalked: 0 };

/** From this many changed backend slots on, they are written in one batch. */
const BATCH_MIN = 64;

export interface ApplyOptions {
  /** Read every slot of the array maps (the default; once per process is
   *  enough to find what an earlier, interrupted run left). false: only the
   *  slots in use now or at the previous apply (prevIds, prevIfindexes). */
  fullScan?: boolean;
  /** ifindexes the previous apply served (their xlb_ifaces slots are read). */
  prevIfindexes?: number[];
  /** The compile the store holds (the last apply's, complete): diff against it, without reading the store. */
  prev?: Compiled;
  /** Takes backend removals that must wait for a grace period (after an in-place table rewrite)
   *  to run them later (Deferred.run). Without it the writer waits for the grace period itself. */
  onDeferred?: (d: Deferred) => void;
}

/** Backend entries to delete once no program can still hold an old table slot naming them. */
export interface Deferred {
  backendIds: number[];
  /** Waits for a grace period, then deletes the entries. */
  run: () => void;
}

interface Op {
  what: string;
  /** Backend ids an op removes (for deferred removals). */
  ids?: number[];
  run: () => void;
  undo: () => void;
}

/** A Maglev table to remove (after the VIP entries that name it are gone), with what it held (for undo). */
interface TableRemoval {
  vipId: number;
  cls: number;
  what: string;
  old: Uint32Array | null;
}

/**
 * All table removals in one op: one outer-map write per size class (one RCU
 * grace period each, however many VIPs go; see MapStore.deleteTables). It
 * runs after the VIP entries are removed, so no new packet reaches the slots;
 * a program that read a slot before still holds the old table, freed only
 * after it has finished. Should the write fail part way, the old tables are
 * put back before the error goes up (nothing half-removed); undone likewise.
 */
function tableRemovalOps(store: MapStore, list: TableRemoval[]): Op[] {
  if (list.length === 0) return [];
  const restore = (): void => {
    const back = list.filter((t) => t.old !== null).map((t) => ({ vipId: t.vipId, table: t.old! }));
    if (back.length) store.swapTables(back);
  };
  return [
    {
      what: `Maglev table removal${list.length > 1 ? 's' : ''} of ${list.map((t) => t.what).join(', ')}`,
      run: () => {
        try {
          store.deleteTables(list.map(({ vipId, cls }) => ({ vipId, cls })));
        } catch (err) {
          try {
            restore();
          } catch {
            // (the error reported is the removal's; the old tables stay where the write left them)
          }
          throw err;
        }
      },
      undo: restore,
    },
  ];
}

function tablesEqual(a: Uint32Array | null, b: Uint32Array): boolean {
  if (a === b) return true; // the same (never mutated) table
  if (!a || a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * Ops writing `list` to `map`, each undone by restoring the old value (or
 * deleting a new key). Many backend slots (a large apply, `batchable`): one
 * batch write, undone by another.
 */
function pushWrites(
  adds: Op[],
  store: MapStore,
  map: MapName,
  list: Array<{ key: Buffer; value: Buffer; old: Buffer | undefined; what: string }>,
  batchable: boolean,
): void {
  if (batchable && list.length >= BATCH_MIN) {
    const zero = Buffer.alloc(list[0]!.value.length);
    const keys = Buffer.concat(list.map((w) => w.key));
    adds.push({
      what: `${list.length} backends (${list[0]!.what}, …)`,
      run: () => store.updateMany(map, keys, Buffer.concat(list.map((w) => w.value)), list.length),
      undo: () => store.updateMany(map, keys, Buffer.concat(list.map((w) => w.old ?? zero)), list.length),
    });
    return;
  }
  for (const w of list) {
    adds.push({
      what: w.what,
      run: () => store.update(map, w.key, w.value),
      undo: () => (w.old ? store.update(map, w.key, w.old) : store.delete(map, w.key)),
    });
  }
}

/** Plans and applies the difference. `ifindex` maps each compiled interface to its index. */
export function applyCompiled(
  store: MapStore,
  c: Compiled,
  ifindex: ReadonlyMap<string, number>,
  prevIds: { vips: Record<string, number>; backends: Record<string, number> } = { vips: {}, backends: {} },
  opts: ApplyOptions = {},
): ApplySummary {
  const summary: ApplySummary = {
    backends: { written: 0, removed: 0 },
    tables: { swapped: 0, patched: 0, removed: 0 },
    vips: { written: 0, removed: 0 },
    ifaces: { written: 0, removed: 0 },
    neigh: { written: 0, removed: 0 },
    writes: 0,
  };
  const adds: Op[] = [];
  const removes: Op[] = [];

  // Names of what the store holds now (ids of the previous apply), so that a
  // failed removal still names the VIP it belonged to.
  // (Built when first needed: a big state has ~10⁶ backend ids.)
  let vipNames: Map<number, string> | null = null;
  let backendNames: Map<number, string> | null = null;
  const prevVipName = (id: number): string | undefined =>
    (vipNames ??= new Map(Object.entries(prevIds.vips).map(([name, i]) => [i, name]))).get(id);
  const prevBackendName = (id: number): string | undefined =>
    (backendNames ??= new Map(Object.entries(prevIds.backends).map(([key, i]) => [i, key]))).get(id);
  const removedWhat = (map: MapName, key: Buffer, old: Buffer): string => {
    if (map === 'xlb_vip4' || map === 'xlb_vip6') {
      const id = decodeVipVal(old).vipId;
      const scope = map === 'xlb_vip4' ? decodeVip4Key(key).scope : decodeVip6Key(key).scope;
      return `VIP ${prevVipName(id) ?? `id ${id}`} (scope ${scope}): removal`;
    }
    if (map === 'xlb_backends' || map === 'xlb_backends6') {
      // Backend keys are "<VIP name> <backend text>" (see compile.ts).
      const k = prevBackendName(decodeU32(key));
      if (k !== undefined) {
        const sp = k.lastIndexOf(' ');
        return `VIP ${k.slice(0, sp)}: backend ${k.slice(sp + 1)} removal`;
      }
      return `backend id ${decodeU32(key)} removal`;
    }
    if (map === 'xlb_neigh4') {
      const k = decodeNeigh4Key(key);
      return `ARP responder for ${formatIPv4(k.addr)} (scope ${k.scope}): removal`;
    }
    if (map === 'xlb_neigh6') {
      const k = decodeNeigh6Key(key);
      return `ND responder for ${formatIPv6(k.addr)} (scope ${k.scope}): removal`;
    }
    if (map === 'xlb_snat4') return `source NAT entry ${hex(key)}: removal`;
    return `interface ifindex ${decodeU32(key)}: removal`;
  };

  const upserts = (
    map: MapName,
    want: Map<string, { key: Buffer; value: Buffer; what: string }>,
    counter: { written: number; removed: number },
    alsoKeys: Buffer[] = [],
  ): void => {
    // Array maps are large and sparse: unless a full scan is asked for, read
    // only the slots this apply or the previous one uses.
    const have = (opts.prev ? false : (opts.fullScan ?? true)) || !isArrayMap(map) ? store.dump(map) : store.dump(map, [...[...want.values()].map((w) => w.key), ...alsoKeys]);
    const changed: Array<{ key: Buffer; value: Buffer; old: Buffer | undefined; what: string }> = [];
    for (const [k, w] of want) {
      const old = have.get(k);
      if (old && old.equals(w.value)) continue;
      counter.written++;
      changed.push({ key: w.key, value: w.value, old, what: w.what });
    }
    pushWrites(adds, store, map, changed, map === 'xlb_backends' || map === 'xlb_backends6');
    for (const [k, old] of have) {
      if (want.has(k)) continue;
      counter.removed++;
      const key = Buffer.from(k, 'hex');
      removes.push({
        what: removedWhat(map, key, old),
        run: () => store.delete(map, key),
        undo: () => store.update(map, key, old),
      });
    }
  };

  // 0. source NAT entries: few, always diffed against the map; written before
  // the VIP entries whose new flows read them, removed after them.
  const wantSnat = new Map<string, { key: Buffer; value: Buffer; what: string }>();
  for (const e of c.snat) {
    const key = encodeSnat4Key(e);
    wantSnat.set(hex(key), {
      key,
      value: encodeSnat4Val(e.snat),
      what: `source NAT (scope ${e.scope}) ${formatIPv4(e.addr)}/${e.prefixLen} -> ${formatIPv4(e.snat)}`,
    });
  }
  const rs = removes.length;
  upserts('xlb_snat4', wantSnat, { written: 0, removed: 0 });
  const snatRemoves = removes.splice(rs);

  let backendRemoves: Op[] = [];
  let vipRemoves: Op[] = [];
  const tableRemoves: TableRemoval[] = [];
  // Fresh ids start with zeroed counters (an id may have served something else,
  // even in the previous apply: ids freed by a removal are reused at once).
  let newVipIds: number[];
  let newBackendIds: number[];
  let patched = false;
  if (opts.prev) {
    const d = planFromPrev(store, c, opts.prev, summary);
    adds.push(...d.adds);
    backendRemoves = d.backendRemoves;
    vipRemoves = d.vipRemoves;
    tableRemoves.push(...d.tableRemoves);
    newVipIds = d.newVipIds;
    newBackendIds = d.newBackendIds;
    patched = summary.tables.patched > 0;
  } else {
    // 1. backends
    const wantBackends = new Map<string, { key: Buffer; value: Buffer; what: string }>();
    const wantBackends6 = new Map<string, { key: Buffer; value: Buffer; what: string }>();
    for (const v of c.vips) {
      for (const b of v.backends) {
        const key = encodeU32(b.id);
        if (b.addr6) {
          const value = encodeBackend6({ addr: b.addr6, port: b.port, flags: b.flags });
          wantBackends6.set(hex(key), { key, value, what: `VIP ${v.name}: backend ${b.text}` });
        } else {
          wantBackends.set(hex(key), { key, value: encodeBackend4(b), what: `VIP ${v.name}: backend ${b.text}` });
        }
      }
    }
    const removesBefore = removes.length;
    upserts(
      'xlb_backends',
      wantBackends,
      summary.backends,
      Object.values(prevIds.backends).map((id) => encodeU32(id)),
    );
    // IPv6 backends share the id space: an id is in at most one of the two maps.
    upserts(
      'xlb_backends6',
      wantBackends6,
      summary.backends,
      Object.values(prevIds.backends).map((id) => encodeU32(id)),
    );
    backendRemoves = removes.splice(removesBefore);

    // 2. Maglev tables: every changed table is built fresh and all are swapped
    // into the outer map of their size class in one batch per class (each slot
    // switches atomically; the kernel waits for running programs once per
    // outer-map write, not per VIP). A table left in another class (its size
    // class changed) is removed after the VIP entries name the new class.
    const wantTables = new Set<number>();
    const held = store.tableClasses();
    const swaps: Array<{ vipId: number; table: Uint32Array; old: Uint32Array | null; name: string }> = [];
    for (const v of c.vips) {
      wantTables.add(v.id);
      const cls = maglevClass(v.table);
      const classes = held.get(v.id) ?? [];
      const old = classes.includes(cls) ? store.readTable(v.id, cls) : null;
      for (const k of classes) {
        if (k === cls) continue;
        const stale = store.readTable(v.id, k);
        summary.tables.removed++;
        tableRemoves.push({ vipId: v.id, cls: k, what: `VIP ${v.name} (size class ${k})`, old: stale });
      }
      if (tablesEqual(old, v.table)) continue;
      summary.tables.swapped++;
      swaps.push({ vipId: v.id, table: v.table, old, name: v.name });
    }
    if (swaps.length > 0) {
      adds.push({
        what: `Maglev table${swaps.length > 1 ? 's' : ''} of ${swaps.map((x) => `VIP ${x.name}`).join(', ')}`,
        run: () => store.swapTables(swaps.map(({ vipId, table }) => ({ vipId, table }))),
        undo: () => {
          const back = swaps.filter((x) => x.old !== null).map((x) => ({ vipId: x.vipId, table: x.old! }));
          if (back.length) store.swapTables(back);
          for (const x of swaps) if (x.old === null) store.deleteTable(x.vipId, maglevClass(x.table));
        },
      });
    }

    for (const [id, classes] of held) {
      if (wantTables.has(id)) continue;
      for (const k of classes) {
        const old = store.readTable(id, k);
        summary.tables.removed++;
        tableRemoves.push({ vipId: id, cls: k, what: `VIP ${prevVipName(id) ?? `id ${id}`}`, old });
      }
    }

    // 3. VIP entries (each names its table's size class)
    const vipName = new Map(c.vips.map((v) => [v.id, v.name]));
    const vipTable = new Map(c.vips.map((v) => [v.id, v.table]));
    const wantVips = new Map<string, { key: Buffer; value: Buffer; what: string }>();
    const wantVips6 = new Map<string, { key: Buffer; value: Buffer; what: string }>();
    for (const e of c.entries) {
      const key = e.addr6 ? encodeVip6Key({ addr: e.addr6, port: e.port, proto: e.proto, scope: e.scope }) : encodeVip4Key(e);
      (e.addr6 ? wantVips6 : wantVips).set(hex(key), {
        key,
        value: encodeVipVal({
          vipId: e.vipId,
          flags: e.flags,
          hashFields: e.hashFields,
          affinityTimeoutS: e.affinityTimeoutS,
          snatAddr: e.snatAddr,
          hairpinAddr: e.hairpinAddr,
          ...tableRef(vipTable.get(e.vipId)),
        }),
        what: `VIP ${vipName.get(e.vipId)} (scope ${e.scope})`,
      });
    }
    const r0 = removes.length;
    upserts('xlb_vip4', wantVips, summary.vips);
    upserts('xlb_vip6', wantVips6, summary.vips);
    vipRemoves = removes.splice(r0);

    newVipIds = c.vips.filter((v) => prevIds.vips[v.name] !== v.id).map((v) => v.id);
    // (from empty every backend is new: no key of 640,000 built to find that out)
    newBackendIds = isEmpty(prevIds.backends)
      ? c.vips.flatMap((v) => v.backends.map((b) => b.id))
      : c.vips.flatMap((v) => v.backends.filter((b) => prevIds.backends[`${v.name} ${b.text}`] !== b.id).map((b) => b.id));
  }

  // 4. interfaces
  const wantIfaces = new Map<string, { key: Buffer; value: Buffer; what: string }>();
  for (const i of c.ifaces) {
    const idx = ifindex.get(i.interface);
    if (idx === undefined) throw new ApplyError(`interface ${i.interface}: no ifindex resolved`);
    const key = encodeU32(idx);
    wantIfaces.set(hex(key), { key, value: encodeIface(i), what: `interface ${i.interface}` });
  }
  const r1 = removes.length;
  upserts(
    'xlb_ifaces',
    wantIfaces,
    summary.ifaces,
    [
      ...(opts.prevIfindexes ?? []),
      ...(opts.prev?.ifaces ?? []).flatMap((i) => (ifindex.has(i.interface) ? [ifindex.get(i.interface)!] : [])),
    ].map((i) => encodeU32(i)),
  );
  const ifaceRemoves = removes.splice(r1);

  // 5. ARP / neighbour-solicitation responder addresses (after the VIPs they
  // answer for, removed first)
  const wantNeigh = new Map<string, { key: Buffer; value: Buffer; what: string }>();
  const wantNeigh6 = new Map<string, { key: Buffer; value: Buffer; what: string }>();
  for (const n of c.neigh) {
    if (n.addr6) {
      const key = encodeNeigh6Key({ addr: n.addr6, scope: n.scope });
      wantNeigh6.set(hex(key), { key, value: encodeU32(0), what: `ND responder for ${formatIPv6(n.addr6)} (${n.owner})` });
    } else {
      const key = encodeNeigh4Key(n);
      wantNeigh.set(hex(key), { key, value: encodeU32(0), what: `ARP responder for ${formatIPv4(n.addr)} (${n.owner})` });
    }
  }
  const r2 = removes.length;
  upserts('xlb_neigh4', wantNeigh, summary.neigh);
  upserts('xlb_neigh6', wantNeigh6, summary.neigh);
  const neighRemoves = removes.splice(r2);


  // After an in-place table rewrite, a program may still hold a slot it read
  // just before: removed backends wait for a grace period (deferred to the
  // caller when it takes them, else waited for here).
  let deferred: Op[] = [];
  if (patched && backendRemoves.length > 0) {
    if (opts.onDeferred) {
      deferred = backendRemoves;
      backendRemoves = [];
    } else {
      backendRemoves.unshift({ what: 'grace period before backend removals', run: () => store.synchronize(), undo: () => {} });
    }
  }
  // The address filter (addrfilter.ts) learns the addresses before any entry uses them: of the
  // VIPs this compile replaced when it derives from the previous one, else of every VIP.
  const changed = opts.prev ? vipChanges(c, opts.prev) : null;
  store.markAddrKeys(configAddrs(c, changed ? changed.fresh : c.vips));
  const plan = [...adds, ...neighRemoves, ...ifaceRemoves, ...vipRemoves, ...snatRemoves, ...tableRemovalOps(store, tableRemoves), ...backendRemoves];
  const done: Op[] = [];
  try {
    if (newVipIds.length) store.resetStats('vip', newVipIds);
    if (newBackendIds.length) store.resetStats('backend', newBackendIds);
    for (const op of plan) {
      op.run();
      done.push(op);
    }
  } catch (err) {
    const undoErrors: string[] = [];
    for (const op of done.reverse()) {
      try {
        op.undo();
      } catch (e) {
        undoErrors.push(`${op.what}: ${(e as Error).message}`);
      }
    }
    const failed = plan[done.length];
    const msg = `${(err as Error).message}; rolled back ${done.length} earlier write(s)`;
    throw new ApplyError(undoErrors.length ? `${msg}; rollback also failed: ${undoErrors.join('; ')}` : msg, {
      vip: failed?.what,
      cause: err,
    });
  }
  summary.writes = plan.length;
  if (deferred.length > 0 && opts.onDeferred) {
    const ops = deferred;
    opts.onDeferred({
      backendIds: ops.flatMap((o) => o.ids ?? []),
      run: () => {
        store.synchronize();
        for (const op of ops) op.run();
      },
    });
  }
  return summary;
}

type Entry = { key: Buffer; value: Buffer; what: string };

/** Whether an object has no key (without listing them). */
function isEmpty(o: object): boolean {
  for (const _ in o) return false;
  return true;
}

/** What a VIP entry says of its VIP's Maglev table: its size class and M. */
function tableRef(table: Uint32Array | undefined): { tableClass: number; tableM: number } {
  return table ? { tableClass: maglevClass(table), tableM: table[XLB.MAGLEV_HDR_SLOT]! } : { tableClass: 0, tableM: 0 };
}

/**
 * The difference between `prev` (what the store holds) and `c`, found by
 * identity: VIPs and entries that are the same objects are unchanged.
 */
function planFromPrev(
  store: MapStore,
  c: Compiled,
  prev: Compiled,
  summary: ApplySummary,
): { adds: Op[]; backendRemoves: Op[]; vipRemoves: Op[]; tableRemoves: TableRemoval[]; newVipIds: number[]; newBackendIds: number[] } {
  const adds: Op[] = [];
  const backendRemoves: Op[] = [];
  const vipRemoves: Op[] = [];
  const tableRemoves: TableRemoval[] = [];
  const newVipIds: number[] = [];
  const newBackendIds: number[] = [];

  // Changed VIPs, paired by name (unchanged ones are the same object, mostly at the same index).
  // (compile() knows them when it derived c from prev: then no walk over every VIP.)
  const known = vipChanges(c, prev);
  const fresh: CompiledVip[] = known ? [...known.fresh] : [];
  const stale = new Map<string, CompiledVip>();
  if (known) {
    diffCounters.vipsWalked += known.fresh.length + known.stale.length;
    for (const o of known.stale) stale.set(o.name, o);
  } else {
    for (let i = 0; i < Math.max(c.vips.length, prev.vips.length); i++) {
      diffCounters.vipsWalked++;
      const v = c.vips[i];
      const o = prev.vips[i];
      if (v === o) continue;
      if (v) fresh.push(v);
      if (o) stale.set(o.name, o);
    }
  }
  // A VIP whose name changed but not its id (its load balancer's protocol changed: compile keeps
  // the VIP's id and backend ids) is the old one changed: paired by id, else the old one's removal
  // would delete the backends and table just written under the same ids.
  let staleById: Map<number, CompiledVip> | null = null;
  let freshNames: Set<string> | null = null;
  const pairs: Array<[CompiledVip | null, CompiledVip]> = [];
  for (const v of fresh) {
    let o = stale.get(v.name) ?? null;
    if (o === null && stale.size > 0) {
      staleById ??= new Map([...stale.values()].map((x) => [x.id, x]));
      const same = staleById.get(v.id);
      if (same !== undefined && stale.get(same.name) === same && !(freshNames ??= new Set(fresh.map((f) => f.name))).has(same.name)) o = same;
      if (o) stale.delete(o.name);
    }
    stale.delete(v.name);
    if (o === v) continue;
    if (o && o.id !== v.id) {
      // (A kept name keeps its id; should it not, the old one is removed and the new one added.)
      stale.set(`${o.name}\0old`, o);
      o = null;
    }
    pairs.push([o, v]);
  }
  const gone = [...stale.values()];

  // 1. backends
  // IPv6 backends go to xlb_backends6 (one id space: an id is in one of the two maps).
  const mapOf = (b: CompiledBackend): MapName => (b.addr6 ? 'xlb_backends6' : 'xlb_backends');
  const encode = (b: CompiledBackend): Buffer => (b.addr6 ? encodeBackend6({ addr: b.addr6, port: b.port, flags: b.flags }) : encodeBackend4(b));
  // Kept VIP by VIP: a VIP's backends written (`at`: their indexes, null = all of them) and their
  // old values (null: none has one). A large apply writes ~10⁶ backends of 10⁴ new VIPs, packed
  // straight from the compiled objects into one batch: nothing is made per backend, and a new VIP's
  // backends are read once, when packed.
  type BackendWrites = { v: CompiledVip; at: number[] | null; olds: Array<Buffer | undefined> | null };
  type BackendMap = 'xlb_backends' | 'xlb_backends6';
  const writes: Record<BackendMap, BackendWrites[]> = { xlb_backends: [], xlb_backends6: [] };
  const countOf = (w: BackendWrites): number => (w.at ? w.at.length : w.v.backends.length);
  /** Each backend a list writes, in order, with its old value (undefined: none). */
  const eachBackend = (list: readonly BackendWrites[], f: (b: CompiledBackend, old: Buffer | undefined, w: BackendWrites) => void): void => {
    for (const w of list) for (let k = 0; k < countOf(w); k++) f(w.v.backends[w.at ? w.at[k]! : k]!, w.olds?.[k], w);
  };
  const removeBackend = (o: CompiledVip, b: CompiledBackend): void => {
    summary.backends.removed++;
    const key = encodeU32(b.id);
    const old = encode(b);
    const map = mapOf(b);
    backendRemoves.push({
      what: `VIP ${o.name}: backend ${b.text} removal`,
      ids: [b.id],
      run: () => store.delete(map, key),
      undo: () => store.update(map, key, old),
    });
  };
  /** A new VIP's backends (every one, of the VIP's family as compile makes them) go to this map;
   *  they are not looked at before they are packed (10⁶ objects scattered in memory). */
  const mapOfNew = (w: BackendWrites, b: CompiledBackend, map: BackendMap): void => {
    if (mapOf(b) !== map) throw new Error(`VIP ${w.v.name}: backend ${b.text} is not of the VIP's address family`);
    newBackendIds.push(b.id);
  };
  for (const [o, v] of pairs) {
    const bs = v.backends;
    if (!o) {
      // A new VIP: every backend written, none with an old value (their ids are new: see mapOfNew).
      newVipIds.push(v.id);
      summary.backends.written += bs.length;
      if (bs.length > 0) writes[v.addr6 ? 'xlb_backends6' : 'xlb_backends'].push({ v, at: null, olds: null });
      continue;
    }
    const before = new Map(o.backends.map((b) => [b.id, b]));
    const mine: Partial<Record<BackendMap, { v: CompiledVip; at: number[]; olds: Array<Buffer | undefined> }>> = {};
    for (let i = 0; i < bs.length; i++) {
      const b = bs[i]!;
      const ob = before.get(b.id);
      before.delete(b.id);
      let old: Buffer | undefined;
      if (ob && mapOf(ob) === mapOf(b)) {
        old = encode(ob);
        if (old.equals(encode(b))) continue;
      }
      if (!ob) newBackendIds.push(b.id);
      summary.backends.written++;
      const w = (mine[mapOf(b) as BackendMap] ??= { v, at: [], olds: [] });
      w.at.push(i);
      w.olds.push(old);
    }
    for (const map of ['xlb_backends', 'xlb_backends6'] as const) if (mine[map]) writes[map].push(mine[map]);
    for (const ob of before.values()) removeBackend(o, ob);
  }
  for (const o of gone) for (const b of o.backends) removeBackend(o, b);
  for (const map of ['xlb_backends', 'xlb_backends6'] as const) {
    const list = writes[map];
    let count = 0;
    for (const w of list) count += countOf(w);
    if (count < BATCH_MIN) {
      const entries: Array<{ key: Buffer; value: Buffer; old: Buffer | undefined; what: string }> = [];
      eachBackend(list, (b, old, w) => {
        if (!w.at) mapOfNew(w, b, map);
        entries.push({ key: encodeU32(b.id), value: encode(b), old, what: `VIP ${w.v.name}: backend ${b.text}` });
      });
      pushWrites(adds, store, map, entries, true);
      continue;
    }
    // One batch: keys and values packed as the kernel takes them, undone by the old values (or zeros).
    const vs = map === 'xlb_backends' ? LAYOUT.xlb_backend4.size : LAYOUT.xlb_backend6.size;
    const keys = Buffer.alloc(count * 4);
    // (a host-order view: xlb runs on little-endian hosts only, see layout.ts; Buffer.alloc is unpooled, offset 0)
    const ids = new Uint32Array(keys.buffer, keys.byteOffset, count);
    let n = 0;
    eachBackend(list, (b, _old, w) => {
      if (!w.at) mapOfNew(w, b, map);
      ids[n++] = b.id;
    });
    const values = (olds: boolean): Buffer => {
      const out = Buffer.alloc(count * vs);
      let i = 0;
      eachBackend(list, (b, old) => {
        if (olds) old?.copy(out, i * vs);
        else if (b.addr6) encodeBackend6Into(out, i * vs, { addr: b.addr6, port: b.port, flags: b.flags });
        else encodeBackend4Into(out, i * vs, b);
        i++;
      });
      return out;
    };
    const first = list[0]!.v.backends[list[0]!.at ? list[0]!.at[0]! : 0]!;
    adds.push({
      what: `${count} backends (VIP ${list[0]!.v.name}: backend ${first.text}, …)`,
      run: () => store.updateMany(map, keys, values(false), count),
      undo: () => store.updateMany(map, keys, values(true), count),
    });
  }

  // 2. tables: same size and class → rewritten in place; else a new inner map swapped in.
  // A table of another size: its VIP entries are rewritten to carry the new M
  // (and class, below); one whose size class changes goes into the outer map
  // of its new class, and the old class's table is removed after the entries.
  const swaps: Array<{ vipId: number; table: Uint32Array; name: string }> = [];
  const moved = new Set<number>();
  const resized = new Set<number>();
  for (const [o, v] of pairs) {
    if (o && tablesEqual(o.table, v.table)) continue;
    summary.tables.swapped++;
    if (o && o.table.length === v.table.length && maglevClass(o.table) === maglevClass(v.table)) {
      summary.tables.patched++;
      adds.push({
        what: `Maglev table of VIP ${v.name}`,
        run: () => store.patchTable(v.id, v.table, o.table),
        undo: () => store.patchTable(v.id, o.table, v.table),
      });
    } else {
      swaps.push({ vipId: v.id, table: v.table, name: v.name });
      if (o) resized.add(v.id);
      const from = o ? maglevClass(o.table) : -1;
      if (o && from !== maglevClass(v.table)) {
        moved.add(v.id);
        summary.tables.removed++;
        tableRemoves.push({ vipId: o.id, cls: from, what: `VIP ${v.name} (size class ${from})`, old: o.table });
      }
    }
  }
  if (swaps.length > 0) {
    const olds = new Map(pairs.filter(([o]) => o !== null).map(([o]) => [o!.id, o!.table]));
    adds.push({
      what: `Maglev table${swaps.length > 1 ? 's' : ''} of ${swaps.map((x) => `VIP ${x.name}`).join(', ')}`,
      run: () => store.swapTables(swaps.map(({ vipId, table }) => ({ vipId, table }))),
      undo: () => {
        // A table that moved class: its old one is still in place; the new one goes.
        const back = swaps.filter((x) => olds.has(x.vipId) && !moved.has(x.vipId)).map((x) => ({ vipId: x.vipId, table: olds.get(x.vipId)! }));
        if (back.length) store.swapTables(back);
        for (const x of swaps) if (!olds.has(x.vipId) || moved.has(x.vipId)) store.deleteTable(x.vipId, maglevClass(x.table));
      },
    });
  }
  for (const o of gone) {
    summary.tables.removed++;
    tableRemoves.push({ vipId: o.id, cls: maglevClass(o.table), what: `VIP ${o.name}`, old: o.table });
  }

  // 3. VIP entries: those that are not the same objects, diffed by key
  // (and those of a VIP whose table moved to another size class).
  let same = c.entries.length === prev.entries.length && resized.size === 0;
  // (compile hands back the previous array itself when every entry is the same)
  for (let i = 0; same && c.entries !== prev.entries && i < c.entries.length; i++) same = c.entries[i] === prev.entries[i];
  if (!same) {
    const nowSet = new Set(c.entries);
    const beforeSet = new Set(prev.entries);
    let names: Map<number, string> | null = null;
    const nameOf = (id: number): string =>
      (names ??= new Map([...prev.vips, ...c.vips].map((v) => [v.id, v.name]))).get(id) ?? `id ${id}`;
    let before: Map<number, Uint32Array> | null = null;
    const tableOf = (e: CompiledVipEntry, now: boolean): Uint32Array | undefined => {
      if (now) return vipById(e.vipId).table;
      return (before ??= new Map(prev.vips.map((v) => [v.id, v.table]))).get(e.vipId);
    };
    let byId: Map<number, CompiledVip> | null = null;
    const vipById = (id: number): CompiledVip => (byId ??= new Map(c.vips.map((v) => [v.id, v]))).get(id)!;
    const encodeEntry = (e: CompiledVipEntry, now: boolean): { key: Buffer; value: Buffer; map: MapName } => ({
      key: e.addr6 ? encodeVip6Key({ addr: e.addr6, port: e.port, proto: e.proto, scope: e.scope }) : encodeVip4Key(e),
      value: encodeVipVal({
        vipId: e.vipId,
        flags: e.flags,
        hashFields: e.hashFields,
        affinityTimeoutS: e.affinityTimeoutS,
        snatAddr: e.snatAddr,
        hairpinAddr: e.hairpinAddr,
        ...tableRef(tableOf(e, now)),
      }),
      map: e.addr6 ? 'xlb_vip6' : 'xlb_vip4',
    });
    type VipEntry = Entry & { map: MapName };
    const want = new Map<string, VipEntry>();
    for (const e of c.entries) {
      if (beforeSet.has(e) && !resized.has(e.vipId)) continue;
      const x = encodeEntry(e, true);
      want.set(`${x.map} ${hex(x.key)}`, { ...x, what: `VIP ${nameOf(e.vipId)} (scope ${e.scope})` });
    }
    const have = new Map<string, VipEntry>();
    for (const e of prev.entries) {
      if (nowSet.has(e) && !resized.has(e.vipId)) continue;
      const x = encodeEntry(e, false);
      have.set(`${x.map} ${hex(x.key)}`, { ...x, what: `VIP ${nameOf(e.vipId)} (scope ${e.scope}): removal` });
    }
    for (const [k, w] of want) {
      const old = have.get(k);
      if (old && old.value.equals(w.value)) continue;
      summary.vips.written++;
      adds.push({
        what: w.what,
        run: () => store.update(w.map, w.key, w.value),
        undo: () => (old ? store.update(w.map, w.key, old.value) : store.delete(w.map, w.key)),
      });
    }
    for (const [k, old] of have) {
      if (want.has(k)) continue;
      summary.vips.removed++;
      vipRemoves.push({
        what: old.what,
        run: () => store.delete(old.map, old.key),
        undo: () => store.update(old.map, old.key, old.value),
      });
    }
  }
  return { adds, backendRemoves, vipRemoves, tableRemoves, newVipIds, newBackendIds };
}
