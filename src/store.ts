/**
 * All map I/O of the control plane goes through MapStore. The kernel
 * implementation lives in dataplane.ts; MemoryStore here lets the reconciler be
 * tested without root, with fault injection (fail the n-th write).
 */
import { maglevClass, XLB } from './layout.js';

/** Hash maps and plain arrays the writer reconciles (not the Maglev tables). */
export type MapName = 'xlb_vip4' | 'xlb_backends' | 'xlb_ifaces' | 'xlb_neigh4' | 'xlb_neigh6' | 'xlb_vip6' | 'xlb_backends6' | 'xlb_snat4';

export interface MapStore {
  /** Every entry of a hash map, or every non-zero slot of an array map (xlb_backends[6], xlb_ifaces), by hex key.
   *  With `keys`, only those entries (the ones present / non-zero). */
  dump(map: MapName, keys?: readonly Buffer[]): Map<string, Buffer>;
  update(map: MapName, key: Buffer, value: Buffer): void;
  /** Many updates of one map in one write (a batch), e.g. thousands of backend slots:
   *  `count` keys and values, each packed back to back. */
  updateMany(map: MapName, keys: Buffer, values: Buffer, count: number): void;
  /** Deletes a hash entry, or zeroes an array slot. */
  delete(map: MapName, key: Buffer): void;
  /** Ids of VIPs that have a Maglev table (in any size class). */
  tableIds(): number[];
  /** The size classes (maglevClass) each VIP holds a table in: one, but two
   *  while a table moves to another class (or after such a move was cut short). */
  tableClasses(): Map<number, number[]>;
  /** A VIP's table in size class `cls`, or (no class given) in the first class that holds one. */
  readTable(vipId: number, cls?: number): Uint32Array | null;
  /** Builds a new inner map for each table and swaps them all in, one write
   *  per size class (each VIP's slot in the outer map of its table's class
   *  switches atomically to its complete new table). */
  swapTables(tables: ReadonlyArray<{ vipId: number; table: Uint32Array }>): void;
  /** Rewrites, in place, the slots of a VIP's table (same M) that differ
   *  between `from` (what it holds) and `to`, each slot in one atomic store.
   *  No outer-map write, hence no wait for running programs: the caller makes
   *  sure every id a slot may hold at any moment is valid (see writer.ts). */
  patchTable(vipId: number, to: Uint32Array, from: Uint32Array): void;
  /** Returns once every BPF program that may have read a map before the call
   *  has finished (an RCU grace period, as an outer-map write waits for). */
  synchronize(): void;
  /** Removes a VIP's table of size class `cls`, or (no class given) of every class. */
  deleteTable(vipId: number, cls?: number): void;
  /** Removes many tables (each of the given size class) at once: in the kernel one outer-map
   *  write per size class, hence one RCU grace period, not one per table. */
  deleteTables(tables: ReadonlyArray<{ vipId: number; cls: number }>): void;
  /** Zeroes the per-CPU counters of VIP or backend ids (ids are reused). */
  resetStats(kind: 'vip' | 'backend', ids: readonly number[]): void;
  /** Sets the address filter's bits of address `keys` (src/addrfilter.ts), never clearing one:
   *  before the entries that use those addresses are written. */
  markAddrKeys(keys: Iterable<number>): void;
}

export const hex = (b: Buffer): string => b.toString('hex');

/** Array maps: every slot exists, an all-zero slot is an absent entry. */
export const isArrayMap = (map: MapName): boolean => map === 'xlb_backends' || map === 'xlb_ifaces' || map === 'xlb_backends6';

/** Thrown by MemoryStore when fault injection fires. */
export class InjectedFault extends Error {
  readonly code = 'EINJECTED';
}

const tableKey = (vipId: number, cls: number): string => `${cls}/${vipId}`;

/** An in-memory MapStore. `failAt` makes the n-th write (1-based) throw. */
export class MemoryStore implements MapStore {
  readonly maps: Record<MapName, Map<string, Buffer>> = {
    xlb_vip4: new Map(),
    xlb_backends: new Map(),
    xlb_ifaces: new Map(),
    xlb_neigh4: new Map(),
    xlb_neigh6: new Map(),
    xlb_vip6: new Map(),
    xlb_backends6: new Map(),
    xlb_snat4: new Map(),
  };
  /** Maglev tables by "class/vipId" (tableKey). */
  readonly tables = new Map<string, Uint32Array>();
  readonly statsResets: string[] = [];
  /** VIP ids whose table was written (swapped in or patched), in order. */
  readonly tableWrites: number[] = [];
  /** Slots rewritten by patchTable, in all. */
  patchedSlots = 0;
  /** Grace periods waited for (synchronize). */
  graces = 0;
  writes = 0;
  failAt = 0;
  /** Address keys in the address filter (markAddrKeys: only ever added). */
  readonly addrKeys = new Set<number>();
  /** For each markAddrKeys call: the writes done before it, and the keys it added. */
  readonly addrMarks: Array<{ afterWrites: number; added: number[] }> = [];

  private write(): void {
    this.writes++;
    if (this.failAt && this.writes === this.failAt) throw new InjectedFault(`injected fault at write ${this.writes}`);
  }

  dump(map: MapName, keys?: readonly Buffer[]): Map<string, Buffer> {
    const only = keys ? new Set(keys.map(hex)) : null;
    return new Map([...this.maps[map]].filter(([k]) => !only || only.has(k)).map(([k, v]) => [k, Buffer.from(v)]));
  }
  update(map: MapName, key: Buffer, value: Buffer): void {
    this.write();
    // Array maps (backends, interfaces): an all-zero slot is an absent entry.
    if (isArrayMap(map) && value.every((x) => x === 0)) this.maps[map].delete(hex(key));
    else this.maps[map].set(hex(key), Buffer.from(value));
  }
  updateMany(map: MapName, keys: Buffer, values: Buffer, count: number): void {
    this.write();
    const ks = keys.length / count;
    const vs = values.length / count;
    for (let i = 0; i < count; i++) {
      const key = keys.subarray(i * ks, (i + 1) * ks);
      const value = values.subarray(i * vs, (i + 1) * vs);
      if (isArrayMap(map) && value.every((x) => x === 0)) this.maps[map].delete(hex(key));
      else this.maps[map].set(hex(key), Buffer.from(value));
    }
  }
  delete(map: MapName, key: Buffer): void {
    this.write();
    this.maps[map].delete(hex(key));
  }
  tableIds(): number[] {
    return [...this.tableClasses().keys()];
  }
  tableClasses(): Map<number, number[]> {
    const out = new Map<number, number[]>();
    for (const k of this.tables.keys()) {
      const [cls, id] = k.split('/').map(Number) as [number, number];
      out.set(id, [...(out.get(id) ?? []), cls].sort((x, y) => x - y));
    }
    return out;
  }
  readTable(vipId: number, cls?: number): Uint32Array | null {
    const classes = cls === undefined ? (this.tableClasses().get(vipId) ?? []) : [cls];
    const t = classes.length ? this.tables.get(tableKey(vipId, classes[0]!)) : undefined;
    return t ? t.slice() : null;
  }
  swapTables(tables: ReadonlyArray<{ vipId: number; table: Uint32Array }>): void {
    this.write();
    for (const { vipId, table } of tables) {
      this.tables.set(tableKey(vipId, maglevClass(table)), table.slice());
      this.tableWrites.push(vipId);
    }
  }
  patchTable(vipId: number, to: Uint32Array, from: Uint32Array): void {
    this.write();
    const t = this.tables.get(tableKey(vipId, maglevClass(to)));
    if (!t || t.length !== to.length || from.length !== to.length) throw new Error(`patchTable: VIP id ${vipId} has no table of ${to.length} slots`);
    for (let i = 0; i < to.length; i++) {
      if (t[i] !== from[i]) throw new Error(`patchTable: VIP id ${vipId} slot ${i} holds ${t[i]}, not ${from[i]}`);
      if (from[i] !== to[i]) {
        t[i] = to[i];
        this.patchedSlots++;
      }
    }
    this.tableWrites.push(vipId);
  }
  synchronize(): void {
    this.graces++;
  }
  deleteTable(vipId: number, cls?: number): void {
    this.write();
    for (let k = 0; k < XLB.MAGLEV_CLASSES; k++) if (cls === undefined || cls === k) this.tables.delete(tableKey(vipId, k));
  }
  deleteTables(tables: ReadonlyArray<{ vipId: number; cls: number }>): void {
    this.write();
    for (const { vipId, cls } of tables) this.tables.delete(tableKey(vipId, cls));
  }
  resetStats(kind: 'vip' | 'backend', ids: readonly number[]): void {
    for (const id of ids) this.statsResets.push(`${kind}:${id}`);
  }
  markAddrKeys(keys: Iterable<number>): void {
    const added: number[] = [];
    for (const k of keys) {
      if (!this.addrKeys.has(k)) {
        this.addrKeys.add(k);
        added.push(k);
      }
    }
    this.addrMarks.push({ afterWrites: this.writes, added });
  }
}
