/**
 * xlb's bookkeeping on disk (in the state directory): a snapshot
 * (`state.json`) and a journal (`state.journal`) of what each apply changed
 * since, one JSON line per apply. An apply that changes one VIP among 10⁴
 * appends that VIP's record and its load balancer's changed `vips` entries
 * (a few KiB) instead of rewriting every VIP (tens of MB); the journal is
 * folded into a new snapshot when it grows past JOURNAL_MAX_BYTES, when an
 * apply has no delta to give (the first of a process), and on close.
 *
 * Each line carries a sequence number and the snapshot the number of the
 * last line folded into it, so lines left behind by a crash between writing
 * a snapshot and truncating the journal are skipped; a torn last line (a
 * crash while appending) is ignored.
 */
import { appendFileSync, closeSync, existsSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, statSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { backendKey, type CompiledBackend, type Ids } from './compile.js';
import { vipList, type DesiredState, type LoadBalancer } from './config.js';
import type { ServedIface, VipRecord } from './xlb.js';

export const STATE_FILE = 'state.json';
export const JOURNAL_FILE = 'state.journal';
/** Snapshots since the journal: ids are derived from the VIP records (version 1 stored them).
 *  Version 3 stores each record's backends as parallel arrays (StoredVipRecord); 2 and 1 are still read. */
export const STATE_VERSION = 3;
/** Characters of the snapshot written per call. */
const WRITE_CHUNK = 1 << 20;
/** The journal is folded into a snapshot past this size. */
export const JOURNAL_MAX_BYTES = 8 << 20;

/** What xlb remembers between runs. */
export interface State {
  version: number;
  pinRoot: string;
  ids: Ids;
  desired: DesiredState;
  vips: VipRecord[];
  ifaces: ServedIface[];
  /** The last apply's warnings (absent in state files of older versions). */
  warnings?: string[];
  /** Sequence number of the last journal line folded into this snapshot. */
  seq?: number;
}

/** What one apply changed. */
export interface StateDelta {
  seq: number;
  /** Load balancers added or changed (lb: everything but `vips`; vips: keys set, or null when removed), or removed (lb null). */
  lbs: Array<{ name: string; lb: Omit<LoadBalancer, 'vips'> | null; vips?: Record<string, string | null> }>;
  /** The load balancers' order, when it is not the old order with the new ones appended. */
  lbOrder?: string[];
  logical_switches?: DesiredState['logical_switches'];
  logical_routers?: DesiredState['logical_routers'];
  /** VIP records set (by name) and removed. */
  vipsSet: VipRecord[];
  vipsDel: string[];
  scopes: Record<string, number>;
  ifaces: ServedIface[];
  warnings: string[];
}

/**
 * A VIP record as stored (version 3): its backends not as one object each
 * (640k objects, ~40 MB of JSON at 10⁴ VIPs × 64 backends) but as their ids,
 * their texts joined by "," (a backend text has no comma: lists are split on
 * it) and, only when some backend differs from the default, the weights and
 * the indexes of the drained ones. Read back as the VipRecord it came from.
 */
export interface StoredVipRecord extends Omit<VipRecord, 'backends'> {
  backendIds: number[];
  /** Absent in a snapshot when it is the VIP's backend list in the snapshot's own desired state
   *  (as compile takes the backends, in the common case: the list is then stored once). */
  backendTexts?: string;
  /** Every backend's weight, when one is not 1. */
  backendWeights?: number[];
  /** Indexes of the drained backends, when there are any. */
  backendsDrained?: number[];
}

/**
 * Records whose backends are still those of their compiled VIP (xlb.ts makes a record's
 * `backends` when first read): packed straight from the compiled backends, the same values
 * (a backend is drained when its flags are set).
 */
export const recordBackends = new WeakMap<VipRecord, readonly CompiledBackend[]>();

/** A load balancer's validated backend list of VIP `vip` in a desired state (undefined: none). */
export type ListOf = (lb: string, vip: string) => string | undefined;

export function listsOf(d: DesiredState): ListOf {
  const byName = new Map<string, Record<string, string>>();
  for (const lb of d.load_balancers) byName.set(lb.name, lb.vips);
  return (lb, vip) => {
    const vips = byName.get(lb);
    return vips !== undefined && Object.prototype.hasOwnProperty.call(vips, vip) ? vips[vip] : undefined;
  };
}

/** The stored form of a record (see StoredVipRecord); with `listOf` (a snapshot), texts that are
 *  the VIP's list there are left out. */
export function packVipRecord(r: VipRecord, listOf?: ListOf): StoredVipRecord {
  const compiled = recordBackends.get(r);
  const backends: ReadonlyArray<{ id: number; text: string; weight: number }> = compiled ?? r.backends;
  const n = backends.length;
  const ids = new Array<number>(n);
  const texts = new Array<string>(n);
  let weighted = false;
  let drained: number[] | undefined;
  for (let i = 0; i < n; i++) {
    const b = backends[i]!;
    ids[i] = b.id;
    texts[i] = b.text;
    if (b.weight !== 1) weighted = true;
    if (compiled ? compiled[i]!.flags !== 0 : r.backends[i]!.drained) (drained ??= []).push(i);
  }
  // Every other field as it is, in its order (a copy by key: faster than a rest pattern here).
  const out = {} as Record<string, unknown>;
  for (const k in r) if (k !== 'backends') out[k] = r[k as keyof VipRecord];
  out.backendIds = ids;
  const joined = texts.join(',');
  if (listOf === undefined || listOf(r.lb, r.vip) !== joined) out.backendTexts = joined;
  if (weighted) out.backendWeights = Array.from(backends, (b) => b.weight);
  if (drained) out.backendsDrained = drained;
  return out as unknown as StoredVipRecord;
}

/** A record as read from disk: the stored form (version 3) unpacked, an older one as it is.
 *  `listOf`: the snapshot's desired state, for texts left out. */
export function unpackVipRecord(r: StoredVipRecord | VipRecord, listOf?: ListOf): VipRecord {
  if (!('backendIds' in r)) return r;
  const { backendIds: ids, backendTexts, backendWeights: weights, backendsDrained, ...rest } = r;
  const joined = backendTexts ?? listOf?.(r.lb, r.vip);
  if (joined === undefined) throw new Error(`state record of ${r.name}: no backend texts, and no backend list of ${r.vip} in load balancer ${r.lb}`);
  const texts = ids.length === 0 ? [] : joined.split(',');
  if (texts.length !== ids.length) throw new Error(`state record of ${r.name}: ${ids.length} backend ids but ${texts.length} texts`);
  const drained = new Set(backendsDrained ?? []);
  return { ...rest, backends: ids.map((id, i) => ({ id, text: texts[i]!, weight: weights?.[i] ?? 1, drained: drained.has(i) })) };
}

/** Ids derived from the VIP records (what compile's ids hold). */
export function idsOf(scopes: Record<string, number>, records: readonly VipRecord[]): Ids {
  const vips: Record<string, number> = {};
  const backends: Record<string, number> = {};
  for (const r of records) {
    vips[r.name] = r.id;
    for (const b of r.backends) backends[backendKey(r.name, b.text)] = b.id;
  }
  return { scopes, vips, backends };
}

/** Structural equality of JSON-like values (validated config fragments). */
function same(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a)) return Array.isArray(b) && a.length === b.length && a.every((x, i) => same(x, b[i]));
  if (Array.isArray(b)) return false;
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  return ka.length === kb.length && ka.every((k, i) => k === kb[i] && same((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]));
}

function withoutVips(lb: LoadBalancer): Omit<LoadBalancer, 'vips'> {
  const { vips: _vips, ...rest } = lb;
  return rest;
}

/** The `vips` entries of `b` that differ from `a` (null: removed). Unchanged keys are mostly at the same place. */
function vipsDelta(a: Record<string, string>, b: Record<string, string>): Record<string, string | null> {
  const out: Record<string, string | null> = {};
  const la = vipList(a);
  const lb = vipList(b);
  // `b` is `a` with some lists changed (validation knows which): those only.
  if (lb.from === la && lb.changed) {
    for (const k of lb.changed) if (la.lists[k] !== lb.lists[k]) out[lb.keys[k]!] = lb.lists[k]!;
    return out;
  }
  let byKey: Map<string, number> | null = null;
  for (let k = 0; k < lb.keys.length; k++) {
    const key = lb.keys[k]!;
    let at = la.keys[k] === key ? k : -1;
    if (at < 0) {
      byKey ??= new Map(la.keys.map((x, i) => [x, i]));
      at = byKey.get(key) ?? -1;
    }
    if (at < 0 || la.lists[at] !== lb.lists[k]) out[key] = lb.lists[k]!;
  }
  if (la.keys !== lb.keys && (la.keys.length !== lb.keys.length || byKey !== null)) {
    const now = new Set(lb.keys);
    for (const key of la.keys) if (!now.has(key)) out[key] = null;
  }
  return out;
}

/** The desired-state part of a delta from `a` to `b` (both validated). */
export function desiredDelta(a: DesiredState, b: DesiredState): Pick<StateDelta, 'lbs' | 'lbOrder' | 'logical_switches' | 'logical_routers'> {
  const rest = {
    ...(same(a.logical_switches, b.logical_switches) ? {} : { logical_switches: b.logical_switches }),
    ...(same(a.logical_routers, b.logical_routers) ? {} : { logical_routers: b.logical_routers }),
  };
  // The same load balancers by name at the same places (a change inside some of them): compared
  // place by place, no index of names built (none added, removed or moved: the order stands).
  const al = a.load_balancers;
  const bl = b.load_balancers;
  if (al.length === bl.length && al.every((l, i) => l.name === bl[i]!.name)) {
    const lbs: StateDelta['lbs'] = [];
    for (let i = 0; i < bl.length; i++) {
      const o = al[i]!;
      const lb = bl[i]!;
      if (o === lb || (o.vips === lb.vips && same(withoutVips(o), withoutVips(lb)))) continue;
      lbs.push({ name: lb.name, lb: withoutVips(lb), vips: vipsDelta(o.vips, lb.vips) });
    }
    return { lbs, ...rest };
  }
  const old = new Map(a.load_balancers.map((l) => [l.name, l]));
  const lbs: StateDelta['lbs'] = [];
  for (const lb of b.load_balancers) {
    const o = old.get(lb.name);
    old.delete(lb.name);
    // (validateConfig hands back the same object for an unchanged load balancer)
    if (o === lb || (o && o.vips === lb.vips && same(withoutVips(o), withoutVips(lb)))) continue;
    lbs.push({ name: lb.name, lb: withoutVips(lb), vips: o ? vipsDelta(o.vips, lb.vips) : { ...lb.vips } });
  }
  for (const name of old.keys()) lbs.push({ name, lb: null });
  // The order replay gives: the old one less the removed, the new ones appended.
  const gone = new Set(old.keys());
  const had = new Set(a.load_balancers.map((l) => l.name));
  const replayed = [...a.load_balancers.map((l) => l.name).filter((n) => !gone.has(n)), ...b.load_balancers.map((l) => l.name).filter((n) => !had.has(n))];
  const order = b.load_balancers.map((l) => l.name);
  return { lbs, ...(replayed.every((n, i) => n === order[i]) ? {} : { lbOrder: order }), ...rest };
}

/** Applies a journal line to a state read from disk (its desired state is plain JSON, not validated objects). */
function replay(s: State, d: StateDelta): void {
  const lbs = new Map(s.desired.load_balancers.map((l) => [l.name, l]));
  for (const c of d.lbs) {
    if (c.lb === null) {
      lbs.delete(c.name);
      continue;
    }
    const vips: Record<string, string> = { ...(lbs.get(c.name)?.vips ?? {}) };
    for (const [k, v] of Object.entries(c.vips ?? {})) {
      if (v === null) delete vips[k];
      else vips[k] = v;
    }
    lbs.set(c.name, { ...c.lb, vips } as LoadBalancer);
  }
  const order = d.lbOrder ?? [...lbs.keys()];
  s.desired = {
    load_balancers: order.map((n) => lbs.get(n)!).filter((l) => l !== undefined),
    logical_switches: d.logical_switches ?? s.desired.logical_switches,
    logical_routers: d.logical_routers ?? s.desired.logical_routers,
  };
  const records = new Map(s.vips.map((r) => [r.name, r]));
  for (const name of d.vipsDel) records.delete(name);
  for (const r of d.vipsSet) records.set(r.name, unpackVipRecord(r));
  s.vips = [...records.values()];
  s.ids = { scopes: d.scopes, vips: {}, backends: {} };
  s.ifaces = d.ifaces;
  s.warnings = d.warnings;
  s.seq = d.seq;
}

/** Reads the snapshot and the journal lines after it; null when there is no state (or of another pin root). */
export function loadState(dir: string, pinRoot: string): State | null {
  const path = join(dir, STATE_FILE);
  if (!existsSync(path)) return null;
  const s = JSON.parse(readFileSync(path, 'utf8')) as State;
  if ((s.version !== 1 && s.version !== 2 && s.version !== STATE_VERSION) || s.pinRoot !== pinRoot) return null;
  const listOf = listsOf(s.desired);
  s.vips = (s.vips as Array<StoredVipRecord | VipRecord>).map((r) => unpackVipRecord(r, listOf));
  const jpath = join(dir, JOURNAL_FILE);
  let replayed = false;
  // (version 1 had no journal; a version 2 journal holds whole records, read as they are)
  if (s.version !== 1 && existsSync(jpath)) {
    for (const line of readFileSync(jpath, 'utf8').split('\n')) {
      if (line === '') continue;
      let d: StateDelta;
      try {
        d = JSON.parse(line) as StateDelta;
      } catch {
        break; // a torn last line: that apply did not complete
      }
      if (d.seq <= (s.seq ?? 0)) continue;
      replay(s, d);
      replayed = true;
    }
  }
  if (s.version !== 1 || replayed) s.ids = idsOf(s.ids.scopes, s.vips);
  s.version = STATE_VERSION;
  return s;
}

/** Writes snapshots and journal lines of one state directory. */
export class StateFile {
  private journalBytes = 0;
  private seq: number;
  /** The snapshot's and the journal's identity (inode, size, mtime) as this object last wrote or found them. */
  private stamp: string;

  constructor(
    readonly dir: string,
    seq = 0,
  ) {
    this.seq = seq;
    this.stamp = this.currentStamp();
  }

  private currentStamp(): string {
    const of = (f: string): string => {
      try {
        const s = statSync(join(this.dir, f), { bigint: true });
        return `${s.ino}:${s.size}:${s.mtimeNs}`;
      } catch {
        return '-';
      }
    };
    return `${of(STATE_FILE)}|${of(JOURNAL_FILE)}`;
  }

  /** Whether another process wrote this state directory since this object last wrote it (or
   *  was made): then the kernel may hold what that process applied. */
  changedElsewhere(): boolean {
    return this.currentStamp() !== this.stamp;
  }

  /** The next line's sequence number. */
  nextSeq(): number {
    return this.seq + 1;
  }

  /** Replaces the snapshot with `s` (ids are left out: they are derived on load; records stored packed) and empties the journal. */
  snapshot(s: State): void {
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    const path = join(this.dir, STATE_FILE);
    const listOf = listsOf(s.desired);
    const out = { ...s, version: STATE_VERSION, ids: { scopes: s.ids.scopes }, vips: s.vips.map((r) => packVipRecord(r, listOf)), seq: this.seq };
    // Encoded and written a chunk at a time: writeFileSync would first copy all of it (tens of MB
    // at 10⁴ VIPs) into one new Buffer (in a 10k-VIP apply's profile that copy alone took 60-165 ms).
    const text = JSON.stringify(out);
    const fd = openSync(`${path}.tmp`, 'w', 0o600);
    try {
      for (let at = 0; at < text.length; ) {
        let end = Math.min(text.length, at + WRITE_CHUNK);
        // (never between the two halves of a surrogate pair)
        if (end < text.length && (text.charCodeAt(end - 1) & 0xfc00) === 0xd800) end--;
        const buf = Buffer.from(text.slice(at, end), 'utf8');
        for (let off = 0; off < buf.length; ) off += writeSync(fd, buf, off);
        at = end;
      }
    } finally {
      closeSync(fd);
    }
    renameSync(`${path}.tmp`, path);
    rmSync(join(this.dir, JOURNAL_FILE), { force: true });
    this.journalBytes = 0;
    this.stamp = this.currentStamp();
  }

  /** Appends a delta; false (nothing written) when the journal is full and a snapshot is due instead. */
  append(d: StateDelta): boolean {
    // (texts kept: a line's records are read before later lines change the desired state)
    const line = `${JSON.stringify({ ...d, vipsSet: d.vipsSet.map((r) => packVipRecord(r)) })}\n`;
    if (this.journalBytes + line.length > JOURNAL_MAX_BYTES) return false;
    appendFileSync(join(this.dir, JOURNAL_FILE), line, { mode: 0o600 });
    this.journalBytes += line.length;
    this.seq = d.seq;
    this.stamp = this.currentStamp();
    return true;
  }

  /** Whether journal lines wait to be folded into a snapshot. */
  get dirty(): boolean {
    return this.journalBytes > 0;
  }
}
