/**
 * Comparing what the control plane wrote, for the incremental-compile tests:
 * a MemoryStore's maps and tables, and a compile, as plain data.
 */
import type { Compiled } from '../../src/compile.js';
import type { MapName, MemoryStore } from '../../src/store.js';

/** The given maps of the store, as sorted hex pairs, and every table. */
export function storeSnapshot(store: MemoryStore, maps: MapName[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const m of maps) out[m] = [...store.dump(m)].map(([k, v]) => [k, v.toString('hex')]).sort();
  out.tables = store
    .tableIds()
    .sort((a, b) => a - b)
    .map((id) => [id, Array.from(store.readTable(id)!)]);
  return out;
}

/** A compile as plain data (ids materialized). */
export function plainCompiled(c: Compiled): unknown {
  return JSON.parse(JSON.stringify({ ...c, vips: c.vips.map((v) => ({ ...v, table: Array.from(v.table) })) }));
}
