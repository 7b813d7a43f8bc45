/**
 * The API source: the load balancers, switches and routers written through the
 * daemon's local HTTP API. It is the highest-precedence source (api > file >
 * ovn): an object it holds hides the object of the same name in the config
 * file and in OVN. Its fragment is persisted in the state directory so that a
 * daemon restart serves the same objects: a snapshot (`api-state.json`) and a
 * journal (`api-state.journal`) of what each commit changed since, one JSON
 * line per commit — a PUT of one VIP of 10⁴ appends that VIP's list, not the
 * whole fragment. The journal is folded into a new snapshot past
 * API_JOURNAL_MAX_BYTES and on stop(). Lines carry a sequence number and the
 * snapshot the number of the last line folded into it (lines left by a crash
 * between the two are skipped); a torn last line (a crash while appending)
 * is ignored. Writes are fsynced; a snapshot is written aside and renamed.
 *
 * The daemon validates every candidate fragment (merged with the other
 * sources) and applies it before calling commit(): what is committed has been
 * served.
 */
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, truncateSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { withVip } from '../config.js';
import { emptyFragment, type Source, type StateFragment } from './types.js';

export const API_STATE_FILE = 'api-state.json';
export const API_JOURNAL_FILE = 'api-state.journal';
const API_STATE_VERSION = 1;
/** The journal is folded into a snapshot past this size. */
export const API_JOURNAL_MAX_BYTES = 8 << 20;

type Table = keyof StateFragment;
const TABLES: readonly Table[] = ['load_balancers', 'logical_switches', 'logical_routers'];
type Obj = Record<string, unknown>;

/** One object of a journal line: set whole (obj), removed (del), or a load balancer whose `vips` changed by a few keys (lb: the rest; set/unset: those keys). */
type ObjDelta = { name: string; obj?: Obj; del?: true; lb?: Obj; set?: Record<string, unknown>; unset?: string[] };
/** A journal line: what one commit changed, per table (order: the table's names when replay would not give it). */
interface JournalLine {
  seq: number;
  changes: Partial<Record<Table, ObjDelta[]>>;
  order?: Partial<Record<Table, string[]>>;
}

/** `vips` objects built by vipsWith/vipsWithout: the object each was made from and the key set or removed. */
const vipsEdits = new WeakMap<object, { from: object; key: string; removed: boolean }>();

/** A frozen `vips` with `key` set to `list` (withVip: validation reads that VIP only), known to the journal as one key set. */
export function vipsWith(vips: Readonly<Record<string, unknown>>, key: string, list: unknown): Readonly<Record<string, unknown>> {
  const out = withVip<unknown>(vips, key, list);
  vipsEdits.set(out, { from: vips, key, removed: false });
  return out;
}

/** A frozen `vips` without `key`, known to the journal as one key removed. */
export function vipsWithout(vips: Readonly<Record<string, unknown>>, key: string): Readonly<Record<string, unknown>> {
  const out = { ...vips };
  delete out[key];
  Object.freeze(out);
  vipsEdits.set(out, { from: vips, key, removed: true });
  return out;
}

/** The `vips` keys set and removed from `a` to `b` when `b` was built from `a` by vipsWith/vipsWithout steps; null otherwise. */
function vipsSteps(a: unknown, b: unknown): { set: Record<string, unknown>; unset: string[] } | null {
  const chain: Array<{ key: string; removed: boolean; value: unknown }> = [];
  let at = b;
  while (at !== a) {
    const e = typeof at === 'object' && at !== null ? vipsEdits.get(at) : undefined;
    if (!e || chain.length > 64) return null;
    chain.push({ key: e.key, removed: e.removed, value: e.removed ? undefined : (at as Obj)[e.key] });
    at = e.from;
  }
  const set: Record<string, unknown> = {};
  const unset: string[] = [];
  for (const c of chain.reverse()) {
    if (c.removed) {
      delete set[c.key];
      unset.push(c.key);
    } else set[c.key] = c.value;
  }
  return { set, unset };
}

/** What changed from `a` to `b` (tables of frozen objects replaced, never changed in place): the objects that are not the same. */
function fragmentDelta(a: StateFragment, b: StateFragment, seq: number): JournalLine {
  const line: JournalLine = { seq, changes: {} };
  for (const t of TABLES) {
    const old = new Map((a[t] as Obj[]).map((o) => [String(o.name), o]));
    const out: ObjDelta[] = [];
    for (const o of b[t] as Obj[]) {
      const name = String(o.name);
      const was = old.get(name);
      old.delete(name);
      if (was === o) continue;
      const steps = t === 'load_balancers' && was !== undefined ? vipsSteps(was.vips, o.vips) : null;
      if (steps) {
        const { vips: _v, ...lb } = o;
        out.push({ name, lb, set: steps.set, unset: steps.unset });
      } else out.push({ name, obj: o });
    }
    for (const name of old.keys()) out.push({ name, del: true });
    if (out.length > 0) line.changes[t] = out;
    // The order replay gives: the old names less the removed, the new ones appended.
    const now = (b[t] as Obj[]).map((o) => String(o.name));
    const had = new Set((a[t] as Obj[]).map((o) => String(o.name)));
    const replayed = [...(a[t] as Obj[]).map((o) => String(o.name)).filter((n) => !old.has(n)), ...now.filter((n) => !had.has(n))];
    if (replayed.length !== now.length || replayed.some((n, i) => n !== now[i])) (line.order ??= {})[t] = now;
  }
  return line;
}

/** Applies a journal line to a fragment read from disk (plain JSON, changed in place). */
function replay(f: StateFragment, line: JournalLine): void {
  for (const t of TABLES) {
    const list = f[t] as Obj[];
    const byName = new Map(list.map((o, i) => [String(o.name), i]));
    for (const d of line.changes[t] ?? []) {
      const i = byName.get(d.name);
      if (d.del) {
        if (i !== undefined) list[i] = undefined as unknown as Obj;
        byName.delete(d.name);
        continue;
      }
      let obj: Obj;
      if (d.obj) obj = d.obj;
      else {
        const vips: Obj = { ...((i !== undefined ? (list[i]!.vips as Obj | undefined) : undefined) ?? {}) };
        // Removed first: a key removed and set again is at the end, as in the object replayed.
        for (const k of d.unset ?? []) delete vips[k];
        for (const [k, v] of Object.entries(d.set ?? {})) vips[k] = v;
        obj = { ...d.lb, vips };
      }
      if (i !== undefined) list[i] = obj;
      else byName.set(d.name, list.push(obj) - 1);
    }
    let next = list.filter((o) => o !== undefined);
    const order = line.order?.[t];
    if (order) {
      const m = new Map(next.map((o) => [String(o.name), o]));
      next = order.map((n) => m.get(n)).filter((o): o is Obj => o !== undefined);
    }
    (f as Record<Table, Obj[]>)[t] = next;
  }
}

/** Writes `data` to `path` and fsyncs it (append or truncate). */
function writeSynced(path: string, data: string, append: boolean): void {
  const fd = openSync(path, append ? 'a' : 'w', 0o600);
  try {
    writeSync(fd, data);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

export interface ApiSourceOptions {
  /** Directory of the persisted fragment (the xlb state dir). */
  stateDir: string;
}

/** A deep copy through JSON (fragments are plain JSON data). */
export function cloneFragment(f: StateFragment): StateFragment {
  return JSON.parse(JSON.stringify(f)) as StateFragment;
}

/**
 * A copy of the fragment's tables (arrays), sharing their objects: the API's
 * objects are frozen and replaced, never changed in place (copy-on-write), so
 * an unchanged load balancer keeps its identity — validation and compile then
 * skip it, and a changed one's unchanged VIP values are the same strings.
 */
export function copyFragment(f: StateFragment): StateFragment {
  return { load_balancers: [...f.load_balancers], logical_switches: [...f.logical_switches], logical_routers: [...f.logical_routers] };
}

/** Freezes a JSON value and what it holds (objects already frozen are taken as frozen through; a `vips` map holds strings only: not walked). */
export function freezeDeep<T>(v: T, key = ''): T {
  if (typeof v !== 'object' || v === null || Object.isFrozen(v)) return v;
  Object.freeze(v);
  if (key === 'vips' && !Array.isArray(v)) return v;
  for (const [k, x] of Object.entries(v)) freezeDeep(x, k);
  return v;
}

export class ApiSource implements Source {
  readonly name = 'api' as const;
  readonly path: string;
  readonly journalPath: string;
  private fragment: StateFragment = emptyFragment();
  private readonly listeners: Array<() => void> = [];
  /** Sequence number of the last line written (or folded into the snapshot). */
  private seq = 0;
  /** Bytes in the journal; null: no snapshot on disk yet (the next commit writes one). */
  private journalBytes: number | null = null;

  constructor(opts: ApiSourceOptions) {
    this.path = join(opts.stateDir, API_STATE_FILE);
    this.journalPath = join(opts.stateDir, API_JOURNAL_FILE);
  }

  /** The committed fragment: its tables copied, its objects (frozen) shared. */
  current(): StateFragment {
    return copyFragment(this.fragment);
  }

  onChange(cb: () => void): void {
    this.listeners.push(cb);
  }

  /** Loads the persisted fragment (snapshot and journal), if any. */
  async start(): Promise<void> {
    if (!existsSync(this.path)) return;
    let parsed: { version?: number; seq?: number; fragment?: Partial<StateFragment> };
    try {
      parsed = JSON.parse(readFileSync(this.path, 'utf8')) as typeof parsed;
    } catch (e) {
      throw new Error(`API state ${this.path} is not valid JSON (${(e as Error).message}); move it away to start without it`, { cause: e });
    }
    if (parsed.version !== API_STATE_VERSION || typeof parsed.fragment !== 'object' || parsed.fragment === null) {
      throw new Error(`API state ${this.path} has an unknown layout (version ${String(parsed.version)}); move it away to start without it`);
    }
    const f = parsed.fragment;
    const fragment: StateFragment = {
      load_balancers: Array.isArray(f.load_balancers) ? f.load_balancers : [],
      logical_switches: Array.isArray(f.logical_switches) ? f.logical_switches : [],
      logical_routers: Array.isArray(f.logical_routers) ? f.logical_routers : [],
    };
    this.seq = typeof parsed.seq === 'number' ? parsed.seq : 0;
    this.journalBytes = 0;
    if (existsSync(this.journalPath)) {
      const buf = readFileSync(this.journalPath);
      let good = 0;
      for (const raw of buf.toString('utf8').split('\n')) {
        if (raw === '') break;
        let line: JournalLine;
        try {
          line = JSON.parse(raw) as JournalLine;
        } catch {
          break; // a torn last line: that commit did not complete (it was not answered)
        }
        good += Buffer.byteLength(raw) + 1;
        if (good > buf.length) break; // no newline after it: torn too
        if (typeof line.seq !== 'number' || line.seq <= this.seq) continue; // folded into the snapshot already
        replay(fragment, line);
        this.seq = line.seq;
      }
      good = Math.min(good, buf.length);
      // A torn tail is cut off, so that the next line starts on a line of its own.
      if (good < buf.length) truncateSync(this.journalPath, good);
      this.journalBytes = good;
    }
    this.fragment = freezeDeep(fragment);
  }

  /** Folds the journal into the snapshot. */
  async stop(): Promise<void> {
    if (this.journalBytes !== null && this.journalBytes > 0) this.snapshot();
  }

  /** Writes the fragment as the snapshot (aside, fsynced, renamed) and empties the journal. */
  private snapshot(): void {
    mkdirSync(join(this.path, '..'), { recursive: true, mode: 0o700 });
    const tmp = `${this.path}.tmp`;
    writeSynced(tmp, JSON.stringify({ version: API_STATE_VERSION, seq: this.seq, fragment: this.fragment }), false);
    renameSync(tmp, this.path);
    rmSync(this.journalPath, { force: true });
    this.journalBytes = 0;
  }

  /**
   * Replaces the fragment (already validated and served), persists what
   * changed and notifies. Its objects are frozen (kept as they are, not
   * copied).
   */
  commit(next: StateFragment): void {
    const prev = this.fragment;
    this.fragment = freezeDeep(copyFragment(next));
    const line = fragmentDelta(prev, this.fragment, this.seq + 1);
    const text = `${JSON.stringify(line)}\n`;
    const bytes = Buffer.byteLength(text);
    const empty = Object.keys(line.changes).length === 0 && line.order === undefined;
    if (!empty || this.journalBytes === null) this.seq = line.seq;
    if (this.journalBytes === null || this.journalBytes + bytes > API_JOURNAL_MAX_BYTES) this.snapshot();
    else if (!empty) {
      writeSynced(this.journalPath, text, true);
      this.journalBytes += bytes;
    }
    for (const cb of this.listeners) cb();
  }
}
