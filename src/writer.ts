/**
 * The writer: diffs compiled map contents against what the store (the kernel)
 * holds and applies only the difference, in an order that never exposes a
 * half-built VIP to a packet:
 *   backends → Maglev tables (each swapped in one step) → VIP entries → interfaces,
 * then removals in reverse: interfaces → VIP entries → tables → backends.
 * Every write records its inverse; a failed write undoes all earlier ones, and
 * the error names the VIP (or interface) being written.
 */
import type { Compiled } from './compile.js';
import { ApplyError } from './errors.js';
import {
  decodeU32,
  decodeVip4Key,
  decodeVipVal,
  encodeBackend4,
  decodeNeigh4Key,
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
} from './layout.js';
import { formatIPv4 } from './addr.js';
import { hex, isArrayMap, type MapName, type MapStore } from './store.js';

/** What an apply changed, for reports and tests ("apply twice is a no-op"). */
export interface ApplySummary {
  backends: { written: number; removed: number };
  tables: { swapped: number; removed: number };
  vips: { written: number; removed: number };
  ifaces: { written: number; removed: number };
  /** Addresses routers answer ARP for (neighbor_responder). */
  neigh: { written: number; removed: number };
  /** Total map writes (0 when nothing changed). */
  writes: number;
}

/** From this many changed backend slots on, they are written in one batch. */
const BATCH_MIN = 64;

export interface ApplyOptions {
  /** Read every slot of the array maps (the default; once per process is
   *  enough to find what an earlier, interrupted run left). false: only the
   *  slots in use now or at the previous apply (prevIds, prevIfindexes). */
  fullScan?: boolean;
  /** ifindexes the previous apply served (their xlb_ifaces slots are read). */
  prevIfindexes?: number[];
}

interface Op {
  what: string;
  run: () => void;
  undo: () => void;
}

function tablesEqual(a: Uint32Array | null, b: Uint32Array): boolean {
  if (a === b) return true; // the same (never mutated) table
  if (!a || a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
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
    tables: { swapped: 0, removed: 0 },
    vips: { written: 0, removed: 0 },
    ifaces: { written: 0, removed: 0 },
    neigh: { written: 0, removed: 0 },
    writes: 0,
  };
  const adds: Op[] = [];
  const removes: Op[] = [];

  // Names of what the store holds now (ids of the previous apply), so that a
  // failed removal still names the VIP it belonged to.
  const prevVipName = new Map(Object.entries(prevIds.vips).map(([name, id]) => [id, name]));
  const prevBackendName = new Map(Object.entries(prevIds.backends).map(([key, id]) => [id, key]));
  const removedWhat = (map: MapName, key: Buffer, old: Buffer): string => {
    if (map === 'xlb_vip4' || map === 'xlb_vip6') {
      const id = decodeVipVal(old).vipId;
      const scope = map === 'xlb_vip4' ? decodeVip4Key(key).scope : decodeVip6Key(key).scope;
      return `VIP ${prevVipName.get(id) ?? `id ${id}`} (scope ${scope}): removal`;
    }
    if (map === 'xlb_backends' || map === 'xlb_backends6') {
      // Backend keys are "<VIP name> <backend text>" (see compile.ts).
      const k = prevBackendName.get(decodeU32(key));
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
    const have = (opts.fullScan ?? true) || !isArrayMap(map) ? store.dump(map) : store.dump(map, [...[...want.values()].map((w) => w.key), ...alsoKeys]);
    const changed: Array<{ key: Buffer; value: Buffer; old: Buffer | undefined; what: string }> = [];
    for (const [k, w] of want) {
      const old = have.get(k);
      if (old && old.equals(w.value)) continue;
      counter.written++;
      changed.push({ key: w.key, value: w.value, old, what: w.what });
    }
    if ((map === 'xlb_backends' || map === 'xlb_backends6') && changed.length >= BATCH_MIN) {
      // Many backend slots (a large apply): one batch write, undone by another.
      const zero = Buffer.alloc(changed[0].value.length);
      adds.push({
        what: `${changed.length} backends (${changed[0].what}, …)`,
        run: () => store.updateMany(map, changed),
        undo: () => store.updateMany(map, changed.map((c) => ({ key: c.key, value: c.old ?? zero }))),
      });
    } else {
      for (const c of changed) {
        adds.push({
          what: c.what,
          run: () => store.update(map, c.key, c.value),
          undo: () => (c.old ? store.update(map, c.key, c.old) : store.delete(map, c.key)),
        });
      }
    }
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
  const backendRemoves = removes.splice(removesBefore);

  // 2. Maglev tables: every changed table is built fresh and all are swapped
  // into the outer map in one batch (each slot switches atomically; the
  // kernel waits for running programs once per outer-map write, not per VIP).
  const wantTables = new Set<number>();
  const swaps: Array<{ vipId: number; table: Uint32Array; old: Uint32Array | null; name: string }> = [];
  for (const v of c.vips) {
    wantTables.add(v.id);
    const old = store.readTable(v.id);
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
        for (const x of swaps) if (x.old === null) store.deleteTable(x.vipId);
      },
    });
  }
  const tableRemoves: Op[] = [];
  for (const id of store.tableIds()) {
    if (wantTables.has(id)) continue;
    const old = store.readTable(id);
    summary.tables.removed++;
    tableRemoves.push({
      what: `VIP ${prevVipName.get(id) ?? `id ${id}`}: Maglev table removal`,
      run: () => store.deleteTable(id),
      undo: () => {
        if (old) store.swapTables([{ vipId: id, table: old }]);
      },
    });
  }

  // 3a. source NAT entries (read by new flows of the VIP entries below)
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

  // 3. VIP entries
  const vipName = new Map(c.vips.map((v) => [v.id, v.name]));
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
      }),
      what: `VIP ${vipName.get(e.vipId)} (scope ${e.scope})`,
    });
  }
  const r0 = removes.length;
  upserts('xlb_vip4', wantVips, summary.vips);
  upserts('xlb_vip6', wantVips6, summary.vips);
  const vipRemoves = removes.splice(r0);

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
    (opts.prevIfindexes ?? []).map((i) => encodeU32(i)),
  );
  const ifaceRemoves = removes.splice(r1);

  // 5. ARP responder addresses (after the VIPs they answer for, removed first)
  const wantNeigh = new Map<string, { key: Buffer; value: Buffer; what: string }>();
  for (const n of c.neigh) {
    const key = encodeNeigh4Key(n);
    wantNeigh.set(hex(key), { key, value: encodeU32(0), what: `ARP responder for ${formatIPv4(n.addr)} (${n.owner})` });
  }
  const r2 = removes.length;
  upserts('xlb_neigh4', wantNeigh, summary.neigh);
  const neighRemoves = removes.splice(r2);

  // Fresh ids start with zeroed counters (an id may have served something else,
  // even in the previous apply: ids freed by a removal are reused at once).
  const newVipIds = c.vips.filter((v) => prevIds.vips[v.name] !== v.id).map((v) => v.id);
  const newBackendIds = c.vips.flatMap((v) =>
    v.backends.filter((b) => prevIds.backends[`${v.name} ${b.text}`] !== b.id).map((b) => b.id),
  );

  const plan = [...adds, ...neighRemoves, ...ifaceRemoves, ...vipRemoves, ...snatRemoves, ...tableRemoves, ...backendRemoves];
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
  return summary;
}
