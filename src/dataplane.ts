/**
 * The data plane as the control plane sees it: the BPF object (loaded once,
 * then re-adopted from its pins), the kernel MapStore, and attaching the
 * programs to interfaces. Mechanism only; what to attach where is decided by
 * the caller.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { constants as osConstants } from 'node:os';
import { loadNative, type XlbNative } from './native.js';
import { packageRoot } from './paths.js';
import { LayoutError } from './errors.js';
import {
  decodeTable,
  encodeByteTableInto,
  byteRecAt,
  byteRecord,
  maglevBytePositions,
  maglevClass,
  maglevClassBytes,
  MAGLEV_BYTE_SLOTS_AT,
  XLB,
  LAYOUT,
  LAYOUT_VERSION,
  GLOBAL_COUNTERS,
  decodeU64Percpu,
  sumStatsRows,
  zeroStats,
  encodeU32,
  type GlobalCounter,
  type Stats,
} from './layout.js';
import { hex, type MapName, type MapStore } from './store.js';
import { ADDR_FILTER_U32_WORDS, markAddrs } from './addrfilter.js';
import { bucketEntries, ct4NewBuckets, type BucketEntry } from './ctnew.js';
import type { Hook } from './config.js';
import { sleepSync } from './sleep.js';

export const DEFAULT_PIN_ROOT = '/sys/fs/bpf/xlb';

/** tc filter identity of xlb's programs (handle, priority) on every interface. */
export const TC_HANDLE = 0x1;
export const TC_PRIORITY = 0x7862; /* "xb" */

/** Where a byte-class table is encoded before its inner map is created and filled from it (one copy). */
const byteScratch = Buffer.alloc(XLB.MAGLEV_BYTE_VALUE);

/**
 * A new inner map of Maglev size class `cls` holding `data` at the start of its one value (the rest
 * zero): a word class's filled through mmap (BPF_F_MMAPABLE), the byte class's with one update (a plain
 * array, kmalloc'ed: bpf/lib/maps.h).
 */
export function createTable(n: XlbNative, cls: number, data: Uint8Array, name: string): { fd: number; id: number } {
  if (cls !== XLB.MAGLEV_BYTE_CLASS) return n.mapCreateFilled(maglevClassBytes(cls), data, name);
  const fd = n.mapCreate({ type: n.constants.BPF_MAP_TYPE_ARRAY, keySize: 4, valueSize: XLB.MAGLEV_BYTE_VALUE, maxEntries: 1, name });
  try {
    let value = data;
    if (data.byteLength !== XLB.MAGLEV_BYTE_VALUE) (value = new Uint8Array(XLB.MAGLEV_BYTE_VALUE)).set(data);
    n.mapUpdate(fd, encodeU32(XLB.MAGLEV_TABLE_KEY), Buffer.from(value.buffer, value.byteOffset, value.byteLength), 0);
    return { fd, id: n.mapInfo(fd).id };
  } catch (e) {
    n.closeFd(fd);
    throw e;
  }
}

/** The value of an inner Maglev map of size class `cls` (a word class's read through mmap). */
export function readTableValue(n: XlbNative, fd: number, cls: number): Buffer {
  if (cls !== XLB.MAGLEV_BYTE_CLASS) return n.mapMmapRead(fd, maglevClassBytes(cls));
  const v = n.mapLookup(fd, encodeU32(XLB.MAGLEV_TABLE_KEY), XLB.MAGLEV_BYTE_VALUE);
  if (!v) throw new Error(`Maglev table (map fd ${fd}) has no value`);
  return v;
}

/** The outer Maglev maps, by size class (xlb_shared.h: XLB_MAGLEV_CLASSES). */
export const MAGLEV_MAPS = ['xlb_maglev_c0', 'xlb_maglev_c1', 'xlb_maglev_c2', 'xlb_maglev_c3', 'xlb_maglev_c4', 'xlb_maglev_c5', 'xlb_maglev_c6'] as const;
if (MAGLEV_MAPS.length !== XLB.MAGLEV_CLASSES) throw new Error('MAGLEV_MAPS must list every Maglev size class');

export const MAP_NAMES = [
  'xlb_vip4',
  ...MAGLEV_MAPS,
  'xlb_backends',
  'xlb_ct4',
  'xlb_ct4_new',
  'xlb_ct4_seen',
  'xlb_ct4_seen_ctl',
  'xlb_addr_filter',
  'xlb_affinity4',
  'xlb_ifaces',
  'xlb_neigh4',
  'xlb_snat4',
  'xlb_neigh6',
  'xlb_vip_stats',
  'xlb_backend_stats',
  'xlb_global',
  'xlb_flow_log',
  'xlb_vip6',
  'xlb_backends6',
  'xlb_ct6',
  'xlb_ct6_new',
  'xlb_affinity6',
] as const;
export type KernelMapName = (typeof MAP_NAMES)[number];

/** An edit of the IPv4 new-flow tier whose bucket stayed locked through every run (Dataplane.ct4NewDelete etc.). */
export class Ct4NewBusyError extends Error {}

/** The flow log's fold found a ring another kept locked through every run (Dataplane.flowLogFold). */
export class FlowLogBusyError extends Error {}

/** Runs of xlb_flow_log_fold while a ring stays locked (1 ms apart: a holder may be another
 *  process's fold, preempted) before giving up. */
const FLOW_LOG_FOLD_RUNS = 50;

/** Runs of xlb_ct4_new_edit while its bucket is locked before giving up. */
const CT4_NEW_EDIT_RUNS = 8;
const EBUSY = osConstants.errno.EBUSY;

export const PROG_NAMES = ['xlb_tc_ingress', 'xlb_tc_egress', 'xlb_xdp_ingress', 'xlb_tc_reply', 'xlb_ct4_seen_rebuild', 'xlb_ct4_new_edit', 'xlb_ct4_fold', 'xlb_ct6_fold', 'xlb_flow_log_fold'] as const;
export type ProgName = (typeof PROG_NAMES)[number];

/** Capacities that may be set before the object is first loaded. */
export interface MapSizes {
  conntrack?: number;
  /** The new-flow tier of conntrack (flows no backend has answered yet). */
  conntrackNew?: number;
  vips?: number;
  backends?: number;
}

export interface DataplaneOptions {
  pinRoot?: string;
  /** Path of xlb.bpf.o; default build/bpf/xlb.bpf.o in the package. */
  objectPath?: string;
  mapSizes?: MapSizes;
}

export function defaultObjectPath(): string {
  return join(packageRoot(), 'build', 'bpf', 'xlb.bpf.o');
}

/** The kinds of counters, and the .rodata variable holding each one's row length (bpf/lib/maps.h). */
export type StatsKind = 'vip' | 'backend';
const STATS_IDS: Record<StatsKind, string> = { vip: 'xlb_vip_stats_ids', backend: 'xlb_backend_stats_ids' };

const PROG_PIN_PREFIX = 'prog_';
/* bpffs holds only BPF objects (and refuses names with a dot): what xlb must
 * know about its pins lives in a one-entry array map pinned as xlb_meta:
 * the layout version of the maps (u32) and the SHA-256 of the object whose
 * programs are pinned (32 bytes). */
const META_PIN = 'xlb_meta';
const META_SIZE = 4 + 32;
/** Slot of each outer Maglev map that holds its class's placeholder table (VIP ids start at 1);
 *  synchronize() rewrites it in xlb_maglev_c0. */
const SYNC_SLOT = 0;
/** Entries per batch syscall. */
const BATCH = 65536;

/** The loaded (or re-adopted) BPF object: map and program fds. */
export class Dataplane {
  readonly native: XlbNative;
  readonly pinRoot: string;
  readonly maps: Record<KernelMapName, number>;
  readonly progs: Record<ProgName, number>;
  /** True when this open loaded the object; false when it re-adopted the pins. */
  readonly loaded: boolean;
  /** True when this open created the maps (none was pinned): they are known to be empty. */
  readonly fresh: boolean;
  /** On maps this open created (else null): the highest VIP id (in a VIP entry) and backend id
   *  (in a backend entry) written through this process's stores. The data plane counts only ids
   *  it finds there, so the counters of higher ids are known to be zero (KernelStore.resetStats). */
  readonly idsWritten: { vip: number; backend: number } | null;
  /** xlb_backends as the kernel holds it (8 bytes per id), for the copies in byte-class tables' records:
   *  read at the first such table, then kept by this process's stores' writes; null until read, after
   *  a write that failed, and from each apply that diffs against the kernel (Xlb.apply): read again then. */
  backendEntries: Buffer | null = null;
  /** Maglev tables this process wrote, by "class/VIP id", with the inner map's id (see KernelStore.readTable). */
  readonly tableCache = new Map<string, { innerId: number; table: Uint32Array }>();
  /** Inner map id of each size class's placeholder (an empty table, M = 0, in slot SYNC_SLOT of
   *  the outer map): a removed VIP's slot points at it, and a slot holding it reads as absent. */
  readonly placeholderIds: Array<number | undefined> = [];
  /** Writes to the outer Maglev maps through this process's stores: each waits for one RCU grace
   *  period (a batch once, not per slot). batches: batch updates; single: one-slot updates/deletes. */
  readonly outerWrites = { batches: 0, single: 0 };
  private readonly fds: number[] = [];
  private readonly handle: number | null;
  /** statsRows, by kind (max_entries never changes). */
  private readonly rows = new Map<StatsKind, { fd: number; ids: number; cpus: number }>();

  private constructor(
    native: XlbNative,
    pinRoot: string,
    maps: Record<KernelMapName, number>,
    progs: Record<ProgName, number>,
    loaded: boolean,
    fresh: boolean,
    handle: number | null,
    fds: number[],
  ) {
    this.native = native;
    this.pinRoot = pinRoot;
    this.maps = maps;
    this.progs = progs;
    this.loaded = loaded;
    this.fresh = fresh;
    this.handle = handle;
    this.fds = fds;
    this.idsWritten = fresh ? { vip: 0, backend: 0 } : null;
  }

  /**
   * Re-adopts the pinned maps and programs when they come from the same object
   * file; otherwise loads the object (maps pinned by name are reused by libbpf)
   * and pins the new programs.
   */
  static open(opts: DataplaneOptions = {}): Dataplane {
    const native = loadNative();
    const pinRoot = opts.pinRoot ?? DEFAULT_PIN_ROOT;
    const objectPath = opts.objectPath ?? defaultObjectPath();
    if (!existsSync(objectPath)) {
      throw new Error(`BPF object ${objectPath} is missing: run \`npm run build\` first`);
    }
    native.ensureBpffs();
    const digest = createHash('sha256').update(readFileSync(objectPath)).digest('hex');
    const metaPin = join(pinRoot, META_PIN);
    const meta = existsSync(metaPin) ? readMeta(native, metaPin) : null;
    if (existsSync(join(pinRoot, 'xlb_vip4')) && meta?.layoutVersion !== LAYOUT_VERSION) {
      throw new LayoutError(pinRoot, meta?.layoutVersion ?? null);
    }
    const pinsOk =
      meta !== null &&
      PROG_NAMES.every((p) => existsSync(join(pinRoot, PROG_PIN_PREFIX + p))) &&
      MAP_NAMES.every((m) => existsSync(join(pinRoot, m)));
    if (pinsOk && meta.digest === digest) {
      const fds: number[] = [];
      const get = (p: string): number => {
        const fd = native.objGet(join(pinRoot, p));
        fds.push(fd);
        return fd;
      };
      const maps = Object.fromEntries(MAP_NAMES.map((m) => [m, get(m)])) as Record<KernelMapName, number>;
      const progs = Object.fromEntries(PROG_NAMES.map((p) => [p, get(PROG_PIN_PREFIX + p)])) as Record<
        ProgName,
        number
      >;
      return new Dataplane(native, pinRoot, maps, progs, false, false, null, fds);
    }

    const fresh = !MAP_NAMES.some((m) => existsSync(join(pinRoot, m)));
    const maxEntries: Record<string, number> = {};
    if (opts.mapSizes?.conntrack) maxEntries.xlb_ct4 = maxEntries.xlb_ct6 = opts.mapSizes.conntrack;
    if (opts.mapSizes?.conntrackNew) {
      maxEntries.xlb_ct4_new = ct4NewBuckets(opts.mapSizes.conntrackNew);
      maxEntries.xlb_ct6_new = opts.mapSizes.conntrackNew;
    }
    if (opts.mapSizes?.vips) {
      maxEntries.xlb_vip4 = opts.mapSizes.vips;
      maxEntries.xlb_vip6 = opts.mapSizes.vips;
      for (const m of MAGLEV_MAPS) maxEntries[m] = opts.mapSizes.vips;
    }
    if (opts.mapSizes?.backends) {
      maxEntries.xlb_backends = opts.mapSizes.backends;
      maxEntries.xlb_backends6 = opts.mapSizes.backends;
    }
    // The counters: a row of ids per possible CPU (bpf/lib/stats.h), the row length in .rodata.
    const cpus = native.numPossibleCpus();
    const vipIds = opts.mapSizes?.vips ?? native.constants.XLB_MAX_VIPS;
    const backendIds = opts.mapSizes?.backends ?? native.constants.XLB_MAX_BACKENDS;
    maxEntries.xlb_vip_stats = vipIds * cpus;
    maxEntries.xlb_backend_stats = backendIds * cpus;
    maxEntries.xlb_flow_log = cpus; // one ring per CPU (bpf/lib/stats.h)
    const rodata = { [STATS_IDS.vip]: vipIds, [STATS_IDS.backend]: backendIds };
    const obj = native.openObject(objectPath, { pinRoot, maxEntries, rodata });
    const maps = {} as Record<KernelMapName, number>;
    for (const m of MAP_NAMES) {
      const info = obj.maps.find((x) => x.name === m);
      if (!info) throw new Error(`BPF object ${objectPath} has no map ${m}`);
      maps[m] = info.fd;
    }
    const progs = {} as Record<ProgName, number>;
    for (const p of PROG_NAMES) {
      const info = obj.programs.find((x) => x.name === p);
      if (!info) throw new Error(`BPF object ${objectPath} has no program ${p}`);
      progs[p] = info.fd;
      const pin = join(pinRoot, PROG_PIN_PREFIX + p);
      if (existsSync(pin)) native.unlinkPin(pin);
      native.objPin(info.fd, pin);
    }
    writeMeta(native, metaPin, digest);
    return new Dataplane(native, pinRoot, maps, progs, true, fresh, obj.handle, []);
  }

  close(): void {
    for (const fd of this.fds) this.native.closeFd(fd);
    this.fds.length = 0;
    if (this.handle !== null) this.native.closeObject(this.handle);
  }

  store(): KernelStore {
    return new KernelStore(this);
  }

  /** Per-CPU value size of a per-CPU map with the given value size. */
  percpuSize(valueSize: number): number {
    return Math.ceil(valueSize / 8) * 8 * this.native.numPossibleCpus();
  }

  vipStats(vipId: number): Stats {
    return this.statsOf('vip', [vipId]).get(vipId)!;
  }

  backendStats(backendId: number): Stats {
    return this.statsOf('backend', [backendId]).get(backendId)!;
  }

  /** The counter map of a kind and its row length (ids per CPU): max_entries = possible CPUs × ids. */
  statsRows(kind: StatsKind): { fd: number; ids: number; cpus: number } {
    let r = this.rows.get(kind);
    if (!r) {
      const fd = kind === 'vip' ? this.maps.xlb_vip_stats : this.maps.xlb_backend_stats;
      const cpus = this.native.numPossibleCpus();
      r = { fd, ids: this.native.mapInfo(fd).maxEntries / cpus, cpus };
      this.rows.set(kind, r);
    }
    return r;
  }

  /** Counters of many ids of a kind, each CPU's row summed: the span of ids each row holds is read
   *  through mmap once per CPU. An id never counted (or past the rows) reads as zero. Backend rows
   *  are read after the flow log's and the established tiers' counts are folded into them (ctFold, a
   *  walk of every conntrack bucket of both families) unless `fold` is false; a ring of the flow log
   *  held through every wait is left for the next read (flowLogFoldBestEffort): `xlb show`, the API
   *  and the metrics never fail on it. */
  statsOf(kind: StatsKind, idList: readonly number[], opts: { fold?: boolean } = {}): Map<number, Stats> {
    if (kind === 'backend' && idList.length && opts.fold !== false) {
      this.flowLogFoldBestEffort();
      this.ctFold();
    }
    const out = new Map<number, Stats>();
    const { fd, ids, cpus } = this.statsRows(kind);
    const inRows = idList.filter((id) => id < ids);
    for (const id of idList) if (id >= ids) out.set(id, zeroStats());
    if (inRows.length === 0) return out;
    const lo = inRows.reduce((a, b) => Math.min(a, b));
    const span = inRows.reduce((a, b) => Math.max(a, b)) - lo + 1;
    const size = LAYOUT.xlb_stats.size;
    const rows = Array.from({ length: cpus }, (_, c) => this.native.mapMmapRead(fd, span * size, (c * ids + lo) * size));
    const sums = sumStatsRows(rows, inRows.map((id) => id - lo));
    inRows.forEach((id, i) => out.set(id, sums[i]!));
    return out;
  }

  /**
   * VIPs' totals: flows count in their backend's row only (bpf/lib/stats.h), so a VIP's packets, bytes
   * and new connections are its own row (drops and rejects, and the counts folded in from backends it
   * no longer has: foldBackendStats) plus the rows of `backendIds` (its backends, and those removed but
   * not yet reclaimed). Each backend id must be given for one VIP only. `be`: those backends' rows
   * when the caller has read them already (statsOf('backend', …)).
   */
  vipTotals(
    vips: ReadonlyArray<{ id: number; backendIds: readonly number[] }>,
    be: ReadonlyMap<number, Stats> = this.statsOf('backend', vips.flatMap((v) => v.backendIds)),
  ): Map<number, Stats> {
    const own = this.statsOf('vip', vips.map((v) => v.id));
    const out = new Map<number, Stats>();
    for (const v of vips) {
      const t = { ...own.get(v.id)! };
      for (const id of v.backendIds) addFlowStats(t, be.get(id)!);
      out.set(v.id, t);
    }
    return out;
  }

  /**
   * Before backend ids leave their VIP for good (reclaimed, then free to be handed out and zeroed):
   * adds each one's final packets..new_conns to its VIP's row, so the VIP's totals (vipTotals) stay
   * where they were and survive restarts (the map is pinned). The VIP's row of CPU 0 takes them, in
   * fields the data plane never writes there, with 8-byte stores through mmap (BPF counts drops and
   * rejects in the same rows meanwhile). Returns the counts folded, by VIP id.
   */
  foldBackendStats(moves: ReadonlyArray<{ vipId: number; backendIds: readonly number[] }>): Map<number, Stats> {
    // The rows with the flow log folded in (a reused id's row must not get them later), without the
    // established tier's fold (ctFold): an apply must not walk every conntrack bucket (61 ms at 2M
    // entries a family). Counts still in entries reach the rows later.
    this.flowLogFoldBestEffort();
    const be = this.statsOf('backend', moves.flatMap((m) => m.backendIds), { fold: false });
    const { fd, ids } = this.statsRows('vip');
    const o = LAYOUT.xlb_stats.offsets;
    const fields = ['packets', 'bytes', 'replyPackets', 'replyBytes', 'newConns'] as const;
    const at = [o.packets, o.bytes, o.reply_packets, o.reply_bytes, o.new_conns];
    const out = new Map<number, Stats>();
    const words: number[] = [];
    const deltas: bigint[] = [];
    for (const m of moves) {
      if (m.vipId >= ids) continue; // never counted
      const t = out.get(m.vipId) ?? zeroStats();
      for (const id of m.backendIds) addFlowStats(t, be.get(id)!);
      out.set(m.vipId, t);
    }
    for (const [vipId, t] of out) {
      fields.forEach((f, i) => {
        if (t[f] === 0n) return;
        words.push((vipId * LAYOUT.xlb_stats.size + at[i]!) / 8); // CPU 0's row: elements 0..ids-1
        deltas.push(t[f]);
      });
    }
    if (words.length) {
      this.native.mapMmapAddQwords(fd, new Uint8Array(new Uint32Array(words).buffer), new Uint8Array(new BigUint64Array(deltas).buffer));
    }
    return out;
  }

  globalCounters(): Record<GlobalCounter, bigint> {
    const n = this.native.numPossibleCpus();
    const out = {} as Record<GlobalCounter, bigint>;
    GLOBAL_COUNTERS.forEach((name, i) => {
      const v = this.native.mapLookup(this.maps.xlb_global, encodeU32(i), this.percpuSize(8));
      out[name] = v ? decodeU64Percpu(v, n) : 0n;
    });
    return out;
  }

  /** All conntrack entries (both directions), raw: the main table's, then the
   *  new-flow tier's (`confirmed[i]` says which). */
  conntrack(): { keys: Buffer[]; values: Buffer[]; confirmed: boolean[] } {
    const keys: Buffer[] = [];
    const values: Buffer[] = [];
    const confirmed: boolean[] = [];
    const d = this.native.mapDump(this.maps.xlb_ct4, LAYOUT.xlb_ct4_key.size, LAYOUT.xlb_ct4_val.size);
    for (let i = 0; i < d.count; i++) {
      keys.push(d.keys.subarray(i * LAYOUT.xlb_ct4_key.size, (i + 1) * LAYOUT.xlb_ct4_key.size));
      values.push(d.values.subarray(i * LAYOUT.xlb_ct4_val.size, (i + 1) * LAYOUT.xlb_ct4_val.size));
      confirmed.push(true);
    }
    for (const e of this.ct4New()) {
      keys.push(e.key);
      values.push(e.val);
      confirmed.push(false);
    }
    return { keys, values, confirmed };
  }

  /** The IPv4 new-flow tier's entries (bpf/lib/ctnew.h: buckets of XLB.CT_NEW_WAYS). */
  ct4New(): BucketEntry[] {
    const d = this.native.mapDump(this.maps.xlb_ct4_new, 4, LAYOUT.xlb_ct4_bucket.size);
    const out: BucketEntry[] = [];
    for (let i = 0; i < d.count; i++) {
      out.push(...bucketEntries(d.values.subarray(i * LAYOUT.xlb_ct4_bucket.size, (i + 1) * LAYOUT.xlb_ct4_bucket.size)));
    }
    return out;
  }

  /** Moves the counts the established tiers' entries hold (bpf/lib/stats.h: a packet of an
   *  established flow counts in its entry, which reaches its backend's row when the entry is
   *  refreshed) to the backend rows: both families by default (statsOf('backend') runs it, after flowLogFold), or
   *  one (conntrack.ts, before it removes entries of that family: a walk of the other's table would
   *  be wasted). Returns the number of entries that had counts. */
  ctFold(family?: 4 | 6): number {
    return (family === 6 ? 0 : this.runSyscall(this.progs.xlb_ct4_fold)) + (family === 4 ? 0 : this.runSyscall(this.progs.xlb_ct6_fold));
  }

  /** Moves what every CPU's ring of the flow log holds (bpf/lib/stats.h: packets of new flows and of
   *  the new-flow tier, counted in batches) to the backend rows: a walk of possible CPUs × 256
   *  entries at most. statsOf('backend') runs it (then ctFold); so do foldBackendStats and the reset
   *  of reused ids, which must not walk the conntrack tables. A ring another holds is waited for;
   *  one held through every run throws FlowLogBusyError. Returns the number of entries folded. */
  flowLogFold(): number {
    let folded = 0;
    for (let run = 1; ; run++) {
      const r = this.runSyscall(this.progs.xlb_flow_log_fold) >>> 0;
      folded += r % XLB.FLOW_LOG_BUSY;
      // A ring another holds (its CPU folding it, or another process's fold) is waited for: its
      // adds must be in the rows before the caller reads, moves or zeroes them.
      if (r < XLB.FLOW_LOG_BUSY) return folded;
      if (run === FLOW_LOG_FOLD_RUNS) throw new FlowLogBusyError(`xlb_flow_log_fold: a ring stayed locked through ${run} runs, 1 ms apart`);
      sleepSync(1);
    }
  }

  /** flowLogFold for what counters must not fail (an apply; a read of the counters): a ring that
   *  stayed locked through every run leaves its entries for a later fold (an apply's leaving
   *  backend may then miss its VIP's totals, a reused id's reach its new holder's row; a read
   *  shows counts without them, behind by at most that ring's 256 entries). */
  flowLogFoldBestEffort(): number {
    try {
      return this.flowLogFold();
    } catch (e) {
      if (e instanceof FlowLogBusyError) return 0;
      throw e;
    }
  }

  private runSyscall(prog: number): number {
    return this.native.progTestRun(prog, { data: new Uint8Array(0) }).retval;
  }

  /** Rebuilds the filter of the keys the IPv4 established tier may hold
   *  (bpf/lib/ctseen.h) from that tier's entries: keys gone since (LRU
   *  evictions, garbage collection) stop costing new flows their lookup. Call
   *  it after removing entries, and after writing entries to xlb_ct4 from
   *  user space (which the data plane's marking does not see). Returns the
   *  number of keys marked. */
  ct4SeenRebuild(): number {
    return this.native.progTestRun(this.progs.xlb_ct4_seen_rebuild, { data: new Uint8Array(0) }).retval;
  }

  /** The address filter (bpf/lib/addrfilter.h, src/addrfilter.ts) as it is
   *  in the kernel: ADDR_FILTER_U32_WORDS 32-bit words. */
  addrFilter(): Uint32Array {
    const b = this.native.mapMmapRead(this.maps.xlb_addr_filter, ADDR_FILTER_U32_WORDS * 4);
    // A copy already (the addon's): viewed in place when aligned.
    return b.byteOffset % 4 === 0
      ? new Uint32Array(b.buffer, b.byteOffset, ADDR_FILTER_U32_WORDS)
      : new Uint32Array(b.buffer.slice(b.byteOffset, b.byteOffset + ADDR_FILTER_U32_WORDS * 4));
  }

  /** Writes the u32 words `changed` of `words` to the address filter, each with one 32-bit store. */
  private writeAddrFilter(words: Uint32Array, changed: readonly number[]): void {
    if (changed.length === 0) return;
    const idx = Uint32Array.from(changed);
    const val = Uint32Array.from(changed, (i) => words[i]!);
    this.native.mapMmapWriteWords(this.maps.xlb_addr_filter, Buffer.from(idx.buffer), Buffer.from(val.buffer));
  }

  /** Sets the address filter's bits of address `keys` (addrKey4 / addrKey6); bits are never
   *  cleared here. Returns the number of 32-bit words written. */
  addrFilterMark(keys: Iterable<number>): number {
    const all = [...keys];
    if (all.length === 0) return 0; // (no read of the filter for nothing to mark)
    const words = this.addrFilter();
    const changed = markAddrs(words, all);
    this.writeAddrFilter(words, changed);
    return changed.length;
  }

  /** Rewrites the address filter to hold exactly the bits of address `keys` (clearing the rest). Safe only
   *  when `keys` covers every address of the configuration in the kernel and of every flow
   *  in conntrack (Xlb.gc); each changed 32-bit word is written once, with all its bits, in
   *  word order. Returns the words written. */
  addrFilterRebuild(keys: Iterable<number>): number {
    const now = this.addrFilter();
    const want = new Uint32Array(ADDR_FILTER_U32_WORDS);
    markAddrs(want, keys);
    const changed: number[] = [];
    for (let i = 0; i < want.length; i++) if (want[i] !== now[i]) changed.push(i);
    this.writeAddrFilter(want, changed);
    return changed.length;
  }

  /** The filter's state: the copy in use and the rebuilds since load. */
  ct4Seen(): { active: number; rebuilds: number } {
    const v = this.native.mapLookup(this.maps.xlb_ct4_seen_ctl, encodeU32(0), LAYOUT.xlb_ct_seen_ctl.size);
    if (!v) throw new Error('xlb_ct4_seen_ctl has no entry 0');
    return { active: v.readUInt32LE(LAYOUT.xlb_ct_seen_ctl.offsets.active), rebuilds: v.readUInt32LE(LAYOUT.xlb_ct_seen_ctl.offsets.rebuilds) };
  }

  /** How many entries the IPv4 new-flow tier holds at most. */
  ct4NewCapacity(): number {
    return this.native.mapInfo(this.maps.xlb_ct4_new).maxEntries * XLB.CT_NEW_WAYS;
  }

  /** One IPv4 new-flow tier entry's value, or null (copied under its bucket's lock). */
  ct4NewLookup(key: Uint8Array): Buffer | null {
    const e = this.ct4NewEdit(XLB.CTN_OP_GET, key);
    return e.found ? e.val : null;
  }

  /** Removes one IPv4 new-flow tier entry; false when absent. One locked
   *  operation in the kernel (xlb_ct4_new_edit), as the data plane's own. */
  ct4NewDelete(key: Uint8Array): boolean {
    return this.ct4NewEdit(XLB.CTN_OP_DELETE, key).found;
  }

  /** Sets the value of one IPv4 new-flow tier entry (as ct4NewDelete); false when absent. */
  ct4NewUpdate(key: Uint8Array, val: Uint8Array): boolean {
    return this.ct4NewEdit(XLB.CTN_OP_SET, key, val).found;
  }

  /** Runs xlb_ct4_new_edit (bpf/xlb.bpf.c) for one key, again while its bucket was
   *  locked (the data plane holds a lock for nanoseconds), CT4_NEW_EDIT_RUNS runs at most. */
  private ct4NewEdit(op: number, key: Uint8Array, val?: Uint8Array): { found: boolean; val: Buffer } {
    const L = LAYOUT.xlb_ct4_new_edit;
    if (key.length !== LAYOUT.xlb_ct4_key.size) throw new Error(`xlb_ct4_new_edit: key must be ${LAYOUT.xlb_ct4_key.size} bytes, not ${key.length}`);
    const ctx = Buffer.alloc(L.size);
    ctx.set(key, L.offsets.key);
    if (val) ctx.set(val.subarray(0, LAYOUT.xlb_ct4_val.size), L.offsets.val);
    ctx.writeUInt32LE(op, L.offsets.op);
    let result = -EBUSY;
    for (let run = 0; run < CT4_NEW_EDIT_RUNS && result === -EBUSY; run++) {
      this.native.progTestRun(this.progs.xlb_ct4_new_edit, { data: new Uint8Array(0), ctx });
      result = ctx.readInt32LE(L.offsets.result);
    }
    const what = `xlb_ct4_new_edit (op ${op}, key ${Buffer.from(key).toString('hex')})`;
    if (result === -EBUSY) throw new Ct4NewBusyError(`${what}: its bucket stayed locked through ${CT4_NEW_EDIT_RUNS} runs`);
    if (result < 0) throw new Error(`${what}: errno ${-result}`);
    // (ctx is this call's own: its value part is returned without a copy)
    return { found: result === 1, val: ctx.subarray(L.offsets.val, L.offsets.val + LAYOUT.xlb_ct4_val.size) };
  }

  /** All IPv6 conntrack entries (both directions, both tiers as in conntrack()), raw. */
  conntrack6(): { keys: Buffer[]; values: Buffer[]; confirmed: boolean[] } {
    const ks = LAYOUT.xlb_ct6_key.size;
    const vs = LAYOUT.xlb_ct6_val.size;
    const keys: Buffer[] = [];
    const values: Buffer[] = [];
    const confirmed: boolean[] = [];
    for (const map of [this.maps.xlb_ct6, this.maps.xlb_ct6_new]) {
      const d = this.native.mapDump(map, ks, vs);
      for (let i = 0; i < d.count; i++) {
        keys.push(d.keys.subarray(i * ks, (i + 1) * ks));
        values.push(d.values.subarray(i * vs, (i + 1) * vs));
        confirmed.push(map === this.maps.xlb_ct6);
      }
    }
    return { keys, values, confirmed };
  }

  /** Removes every pin under the pin root (programs stay alive while attached). */
  static removePins(pinRoot: string = DEFAULT_PIN_ROOT): void {
    if (!existsSync(pinRoot)) return;
    for (const f of readdirSync(pinRoot)) rmSync(join(pinRoot, f), { force: true });
    rmSync(pinRoot, { recursive: true, force: true });
  }
}

function readMeta(native: XlbNative, path: string): { layoutVersion: number; digest: string } | null {
  try {
    const fd = native.objGet(path);
    try {
      const v = native.mapLookup(fd, encodeU32(0), META_SIZE);
      return v ? { layoutVersion: v.readUInt32LE(0), digest: v.subarray(4).toString('hex') } : null;
    } finally {
      native.closeFd(fd);
    }
  } catch {
    return null;
  }
}

function writeMeta(native: XlbNative, path: string, digest: string): void {
  if (existsSync(path)) native.unlinkPin(path);
  const fd = native.mapCreate({
    type: native.constants.BPF_MAP_TYPE_ARRAY,
    keySize: 4,
    valueSize: META_SIZE,
    maxEntries: 1,
    name: 'xlb_meta',
  });
  try {
    const v = Buffer.alloc(META_SIZE);
    v.writeUInt32LE(LAYOUT_VERSION, 0);
    Buffer.from(digest, 'hex').copy(v, 4);
    native.mapUpdate(fd, encodeU32(0), v);
    native.objPin(fd, path);
  } finally {
    native.closeFd(fd);
  }
}

/** MapStore over the real kernel maps. */
export class KernelStore implements MapStore {
  constructor(private readonly dp: Dataplane) {}

  private spec(map: MapName): { fd: number; keySize: number; valueSize: number; isArray: boolean } {
    switch (map) {
      case 'xlb_vip4':
        return { fd: this.dp.maps.xlb_vip4, keySize: LAYOUT.xlb_vip4_key.size, valueSize: LAYOUT.xlb_vip_val.size, isArray: false };
      case 'xlb_backends':
        return { fd: this.dp.maps.xlb_backends, keySize: 4, valueSize: 8, isArray: true };
      case 'xlb_ifaces':
        return { fd: this.dp.maps.xlb_ifaces, keySize: 4, valueSize: LAYOUT.xlb_iface.size, isArray: true };
      case 'xlb_neigh4':
        return { fd: this.dp.maps.xlb_neigh4, keySize: LAYOUT.xlb_neigh4_key.size, valueSize: 4, isArray: false };
      case 'xlb_neigh6':
        return { fd: this.dp.maps.xlb_neigh6, keySize: LAYOUT.xlb_neigh6_key.size, valueSize: 4, isArray: false };
      case 'xlb_vip6':
        return { fd: this.dp.maps.xlb_vip6, keySize: LAYOUT.xlb_vip6_key.size, valueSize: LAYOUT.xlb_vip_val.size, isArray: false };
      case 'xlb_backends6':
        return { fd: this.dp.maps.xlb_backends6, keySize: 4, valueSize: LAYOUT.xlb_backend6.size, isArray: true };
      case 'xlb_snat4':
        return { fd: this.dp.maps.xlb_snat4, keySize: LAYOUT.xlb_snat4_key.size, valueSize: LAYOUT.xlb_snat4_val.size, isArray: false };
    }
  }

  markAddrKeys(keys: Iterable<number>): void {
    this.dp.addrFilterMark(keys);
  }

  dump(map: MapName, keys?: readonly Buffer[]): Map<string, Buffer> {
    const s = this.spec(map);
    const out = new Map<string, Buffer>();
    const isZero = (b: Buffer, off: number): boolean => {
      for (let j = 0; j < s.valueSize; j++) if (b[off + j] !== 0) return false;
      return true;
    };
    // Per-key reads cost a syscall each: past a sixteenth of the map, one
    // batch read of everything is cheaper.
    if (keys && keys.length * 16 < this.dp.native.mapInfo(s.fd).maxEntries) {
      for (const k of keys) {
        const v = this.dp.native.mapLookup(s.fd, k, s.valueSize);
        if (v && !(s.isArray && isZero(v, 0))) out.set(hex(k), v);
      }
      return out;
    }
    const d = this.dp.native.mapDump(s.fd, s.keySize, s.valueSize);
    for (let i = 0; i < d.count; i++) {
      if (s.isArray && isZero(d.values, i * s.valueSize)) continue;
      const k = d.keys.subarray(i * s.keySize, (i + 1) * s.keySize);
      out.set(hex(k), Buffer.from(d.values.subarray(i * s.valueSize, (i + 1) * s.valueSize)));
    }
    return out;
  }

  update(map: MapName, key: Buffer, value: Buffer): void {
    this.noteWrites(map, key, value, 1);
    this.keepingEntries(map, key, value, 1, () => this.dp.native.mapUpdate(this.spec(map).fd, key, value, 0));
  }

  delete(map: MapName, key: Buffer): void {
    const s = this.spec(map);
    if (s.isArray) {
      const zero = Buffer.alloc(s.valueSize);
      this.keepingEntries(map, key, zero, 1, () => this.dp.native.mapUpdate(s.fd, key, zero, 0));
    } else this.dp.native.mapDelete(s.fd, key);
  }

  /**
   * Runs a write of `count` xlb_backends entries (keys and values packed) and copies them into
   * Dataplane.backendEntries once it succeeded; a failed write (perhaps partly done) drops that copy, to
   * be read again. Other maps: just the write.
   */
  private keepingEntries(map: MapName, keys: Buffer, values: Buffer, count: number, write: () => void): void {
    if (map !== 'xlb_backends' || !this.dp.backendEntries) return write();
    try {
      write();
    } catch (e) {
      this.dp.backendEntries = null;
      throw e;
    }
    const e = this.dp.backendEntries;
    const size = LAYOUT.xlb_backend4.size;
    for (let i = 0; i < count; i++) {
      const at = keys.readUInt32LE(i * 4) * size;
      if (at + size <= e.length) values.copy(e, at, i * size, (i + 1) * size);
    }
  }

  /** Dataplane.backendEntries, read from the kernel when this process has no copy yet. */
  private entries(): Buffer {
    let e = this.dp.backendEntries;
    if (e) return e;
    const n = this.dp.native;
    const fd = this.dp.maps.xlb_backends;
    const size = LAYOUT.xlb_backend4.size;
    e = Buffer.alloc(n.mapInfo(fd).maxEntries * size);
    const d = n.mapDump(fd, 4, size);
    const inOrder = d.count > 0 && d.keys.readUInt32LE(0) === 0 && d.keys.readUInt32LE((d.count - 1) * 4) === d.count - 1;
    if (inOrder) d.values.copy(e, 0, 0, Math.min(d.count * size, e.length));
    else for (let i = 0; i < d.count; i++) d.values.copy(e, d.keys.readUInt32LE(i * 4) * size, i * size, (i + 1) * size);
    return (this.dp.backendEntries = e);
  }

  private outer(cls: number): number {
    return this.dp.maps[MAGLEV_MAPS[cls]!];
  }

  tableIds(): number[] {
    return [...this.tableClasses().keys()];
  }

  tableClasses(): Map<number, number[]> {
    // Each outer map lists only its filled slots (one batch read, not a scan).
    // Slot 0 (no VIP has id 0) holds the class's placeholder; a slot holding
    // the placeholder is a removed VIP's: absent.
    const out = new Map<number, number[]>();
    MAGLEV_MAPS.forEach((_, cls) => {
      const d = this.dp.native.mapDump(this.outer(cls), 4, 4);
      let ph: number | undefined;
      for (let i = 0; i < d.count; i++) if (d.keys.readUInt32LE(i * 4) === SYNC_SLOT) ph = d.values.readUInt32LE(i * 4);
      this.dp.placeholderIds[cls] = ph;
      for (let i = 0; i < d.count; i++) {
        const id = d.keys.readUInt32LE(i * 4);
        if (id === SYNC_SLOT || d.values.readUInt32LE(i * 4) === ph) continue;
        const l = out.get(id);
        if (l) l.push(cls);
        else out.set(id, [cls]);
      }
    });
    return out;
  }

  /** The inner map id of size class `cls`'s placeholder (read from slot 0 once), or undefined when there is none yet. */
  private placeholderId(cls: number): number | undefined {
    if (!(cls in this.dp.placeholderIds)) {
      const v = this.dp.native.mapLookup(this.outer(cls), encodeU32(SYNC_SLOT), 4);
      this.dp.placeholderIds[cls] = v ? v.readUInt32LE(0) : undefined;
    }
    return this.dp.placeholderIds[cls];
  }

  /** An fd of class `cls`'s placeholder (the caller closes it); `fresh` when it was just created
   *  and still has to be written to slot 0. */
  private placeholder(cls: number): { fd: number; id: number; fresh: boolean } {
    const n = this.dp.native;
    const id = this.placeholderId(cls);
    if (id !== undefined) {
      try {
        return { fd: n.mapGetFdById(id), id, fresh: false };
      } catch {
        // (slot 0 changed under us: make a new one)
      }
    }
    return { ...createTable(n, cls, new Uint8Array(0), `xlb_mg_none${cls}`), fresh: true };
  }

  /**
   * A VIP's table as the kernel holds it. Inner maps are written only by
   * swapTables and patchTable, which keep the remembered copy current, so when
   * the outer slot still holds the inner map this process wrote, that copy is
   * the kernel's content and no read is needed.
   */
  readTable(vipId: number, cls?: number): Uint32Array | null {
    const n = this.dp.native;
    for (let k = cls ?? 0; k < (cls === undefined ? MAGLEV_MAPS.length : cls + 1); k++) {
      const v = n.mapLookup(this.outer(k), encodeU32(vipId), 4);
      if (!v) continue;
      const innerId = v.readUInt32LE(0);
      if (innerId === this.placeholderId(k)) continue; // a removed VIP's slot
      const known = this.dp.tableCache.get(`${k}/${vipId}`);
      if (known && known.innerId === innerId) return known.table; // kept current by patchTable
      const fd = n.mapGetFdById(innerId);
      try {
        const t = decodeTable(readTableValue(n, fd, k), k);
        this.dp.tableCache.set(`${k}/${vipId}`, { innerId, table: t });
        return t;
      } finally {
        n.closeFd(fd);
      }
    }
    return null;
  }

  swapTables(tables: ReadonlyArray<{ vipId: number; table: Uint32Array }>): void {
    const n = this.dp.native;
    const byClass = new Map<number, Array<{ vipId: number; table: Uint32Array }>>();
    for (const t of tables) {
      const k = maglevClass(t.table);
      const l = byClass.get(k);
      if (l) l.push(t);
      else byClass.set(k, [t]);
    }
    for (const [k, list] of byClass) {
      const made: Array<{ fd: number; id: number }> = [];
      try {
        // Each inner map is created and filled (one copy, through mmap) in one
        // call, complete before it is swapped in; all of a class in one batch.
        for (const { vipId, table } of list) {
          // (encodeByteTableInto zeroes the scratch past what it writes: the whole value goes)
          const data =
            k === XLB.MAGLEV_BYTE_CLASS
              ? (encodeByteTableInto(table, byteScratch, undefined, this.entries()), byteScratch)
              : new Uint8Array(table.buffer, table.byteOffset, table.byteLength);
          made.push(createTable(n, k, data, `xlb_mg_${vipId}`));
        }
        const keys = Buffer.alloc(list.length * 4);
        const values = Buffer.alloc(list.length * 4);
        list.forEach((t, i) => {
          keys.writeUInt32LE(t.vipId, i * 4);
          values.writeUInt32LE(made[i]!.fd, i * 4);
        });
        n.mapUpdateBatch(this.outer(k), keys, values, list.length, 0);
        this.dp.outerWrites.batches++;
        list.forEach(({ vipId, table }, i) => this.dp.tableCache.set(`${k}/${vipId}`, { innerId: made[i]!.id, table }));
      } finally {
        for (const m of made) n.closeFd(m.fd);
      }
    }
  }

  patchTable(vipId: number, to: Uint32Array, from: Uint32Array): void {
    const n = this.dp.native;
    const k = maglevClass(to);
    const v = n.mapLookup(this.outer(k), encodeU32(vipId), 4);
    if (!v) throw new Error(`VIP id ${vipId} has no Maglev table to patch`);
    const innerId = v.readUInt32LE(0);
    if (innerId === this.placeholderId(k)) throw new Error(`VIP id ${vipId} has no Maglev table to patch`);
    const fd = n.mapGetFdById(innerId);
    try {
      if (k === XLB.MAGLEV_BYTE_CLASS) {
        if (!this.patchByteTable(fd, vipId, to, from)) return; // (replaced: swapTables keeps the cache)
      } else {
        const m = n.mapMmapRead(fd, 4).readUInt32LE(XLB.MAGLEV_HDR_SLOT * 4);
        if (m !== to.length - 1) throw new Error(`VIP id ${vipId}: its table has ${m} slots, not ${to.length - 1}`);
        const words: number[] = [];
        for (let i = 0; i < to.length; i++) if (to[i] !== from[i]) words.push(i);
        if (words.length > 0) {
          const idx = Uint32Array.from(words);
          const val = Uint32Array.from(words, (i) => to[i]!);
          n.mapMmapWriteWords(fd, Buffer.from(idx.buffer), Buffer.from(val.buffer));
        }
      }
    } finally {
      n.closeFd(fd);
    }
    this.dp.tableCache.set(`${k}/${vipId}`, { innerId, table: to });
  }

  /**
   * A byte-class table rewritten in place, in two writes of the whole value (the map is not mmap-able;
   * an element update copies over the value packets are reading): first the records of the positions new
   * backends take — positions no slot of the table names, so no packet reads them — then the slots (a
   * byte each: a packet reads its old or new position). Positions keep their backends
   * (maglevBytePositions), so a slot's byte changes only when its backend does; a position no slot names
   * any more keeps its old record: a packet that read a slot's old byte may still read it (the writer
   * removes that backend only after a grace period). When fewer positions are unnamed than new ids need (a
   * pool near 256 backends), or a named position's record would change (its copy of the entry differs
   * from xlb_backends'), the table is replaced instead (swapTables: a fresh inner map, swapped in at
   * once). Returns false then.
   */
  private patchByteTable(fd: number, vipId: number, to: Uint32Array, from: Uint32Array): boolean {
    const n = this.dp.native;
    const held = readTableValue(n, fd, XLB.MAGLEV_BYTE_CLASS);
    const m = held.readUInt32LE(XLB.MAGLEV_HDR_SLOT * 4);
    if (m !== to.length - 1) throw new Error(`VIP id ${vipId}: its table has ${m} slots, not ${to.length - 1}`);
    const keep = new Uint32Array(XLB.MAGLEV_BYTE_IDS);
    for (let p = 0; p < keep.length; p++) keep[p] = held.readUInt32LE(byteRecAt(p));
    const named = new Uint8Array(XLB.MAGLEV_BYTE_IDS);
    for (let i = 0; i < m; i++) named[held[MAGLEV_BYTE_SLOTS_AT + i]!] = 1;
    const placed = maglevBytePositions(to, keep, named);
    const replace = (): boolean => {
      this.swapTables([{ vipId, table: to }]);
      return false;
    };
    if (!placed) return replace();
    const entries = this.entries();
    let added = false;
    for (let p = 0; p < XLB.MAGLEV_BYTE_IDS; p++) {
      if (!placed.assigned[p]) continue; // (a position not placed keeps its record)
      const rec = byteRecord(placed.ids[p]!, entries);
      const at = byteRecAt(p);
      if (rec.equals(held.subarray(at, at + rec.length))) continue;
      if (named[p]) return replace();
      rec.copy(held, at);
      added = true;
    }
    const key = encodeU32(XLB.MAGLEV_TABLE_KEY);
    if (added) n.mapUpdate(fd, key, held, 0);
    let same = true;
    for (let i = 1; same && i < to.length; i++) same = to[i] === from[i];
    if (!same) {
      for (let i = 1; i < to.length; i++) held[MAGLEV_BYTE_SLOTS_AT + i - 1] = placed.positionOf(to[i]!);
      n.mapUpdate(fd, key, held, 0);
    }
    return true;
  }

  synchronize(): void {
    // An outer map-in-map write returns only after an RCU grace period
    // (maybe_wait_bpf_programs): slot 0 of the smallest class, which no VIP
    // uses, is rewritten with that class's placeholder.
    const n = this.dp.native;
    const ph = this.placeholder(0);
    try {
      n.mapUpdate(this.outer(0), encodeU32(SYNC_SLOT), encodeU32(ph.fd), 0);
      this.dp.outerWrites.single++;
      this.dp.placeholderIds[0] = ph.id;
    } finally {
      n.closeFd(ph.fd);
    }
  }

  deleteTable(vipId: number, cls?: number): void {
    const held = cls === undefined ? (this.tableClasses().get(vipId) ?? []) : [cls];
    this.deleteTables(held.map((k) => ({ vipId, cls: k })));
  }

  /**
   * Removes tables by pointing their slots at the class's placeholder (an
   * empty table, M = 0: no backend), one batch update per size class and so
   * one RCU grace period, however many: an array of maps has no batch delete,
   * and a delete waits for a grace period each. The old tables are freed once
   * no program can hold them. A new placeholder goes into slot 0 in the same
   * batch; a slot holding it reads as absent (tableClasses, readTable).
   */
  deleteTables(tables: ReadonlyArray<{ vipId: number; cls: number }>): void {
    const n = this.dp.native;
    const byClass = new Map<number, number[]>();
    for (const { vipId, cls } of tables) {
      const l = byClass.get(cls);
      if (l) l.push(vipId);
      else byClass.set(cls, [vipId]);
    }
    for (const [k, ids] of byClass) {
      const ph = this.placeholder(k);
      try {
        const slots = ph.fresh ? [SYNC_SLOT, ...ids] : ids;
        for (let at = 0; at < slots.length; at += BATCH) {
          const chunk = slots.slice(at, at + BATCH);
          const keys = Buffer.alloc(chunk.length * 4);
          const values = Buffer.alloc(chunk.length * 4);
          chunk.forEach((id, i) => {
            keys.writeUInt32LE(id, i * 4);
            values.writeUInt32LE(ph.fd, i * 4);
          });
          n.mapUpdateBatch(this.outer(k), keys, values, chunk.length, 0);
          this.dp.outerWrites.batches++;
          if (ph.fresh && at === 0) this.dp.placeholderIds[k] = ph.id;
        }
      } finally {
        n.closeFd(ph.fd);
      }
      for (const id of ids) this.dp.tableCache.delete(`${k}/${id}`);
    }
  }

  resetStats(kind: 'vip' | 'backend', all: readonly number[]): void {
    // Ids above the highest this process wrote to maps it created were never
    // counted by the data plane: their counters are still zero.
    const w = this.dp.idsWritten;
    const ids = w ? all.filter((id) => id <= w[kind]) : all;
    // Counts of the ids' last holders still in the flow log go to their rows first, then are zeroed
    // with them (else a later fold would add them to the new holder's).
    if (kind === 'backend' && ids.length) this.dp.flowLogFoldBestEffort();
    const rows = this.dp.statsRows(kind);
    const slots = ids.filter((id) => id < rows.ids).flatMap((id) => Array.from({ length: rows.cpus }, (_, c) => c * rows.ids + id));
    const size = LAYOUT.xlb_stats.size;
    for (let at = 0; at < slots.length; at += BATCH) {
      const chunk = slots.slice(at, at + BATCH);
      const keys = Buffer.concat(chunk.map((slot) => encodeU32(slot)));
      this.dp.native.mapUpdateBatch(rows.fd, keys, Buffer.alloc(size * chunk.length), chunk.length, 0);
    }
  }

  updateMany(map: MapName, keys: Buffer, values: Buffer, count: number): void {
    const s = this.spec(map);
    this.noteWrites(map, keys, values, count);
    this.keepingEntries(map, keys, values, count, () => {
      for (let at = 0; at < count; at += BATCH) {
        const n = Math.min(BATCH, count - at);
        this.dp.native.mapUpdateBatch(
          s.fd,
          keys.subarray(at * s.keySize, (at + n) * s.keySize),
          values.subarray(at * s.valueSize, (at + n) * s.valueSize),
          n,
          0,
        );
      }
    });
  }

  /** Keeps Dataplane.idsWritten: the highest backend id and VIP id this process wrote. */
  private noteWrites(map: MapName, keys: Buffer, values: Buffer, count: number): void {
    const w = this.dp.idsWritten;
    if (!w) return;
    const ks = keys.length / count;
    const vs = values.length / count;
    if (map === 'xlb_backends' || map === 'xlb_backends6') {
      for (let i = 0; i < count; i++) w.backend = Math.max(w.backend, keys.readUInt32LE(i * ks));
    } else if (map === 'xlb_vip4' || map === 'xlb_vip6') {
      for (let i = 0; i < count; i++) w.vip = Math.max(w.vip, values.readUInt32LE(i * vs + LAYOUT.xlb_vip_val.offsets.vip_id));
    }
  }
}

/** Where an interface is: NETNS/IFNAME or IFNAME. */
export interface IfaceRef {
  interface: string;
  netns: string | null;
  ifname: string;
}

/** The hook an interface gets, and why. */
export interface HookChoice {
  hook: 'tc' | 'xdp';
  /** Force generic (skb-mode) XDP. */
  generic?: boolean;
  reason: string;
}

/** What auto picks for an interface, and why. */
export function chooseHook(ref: IfaceRef, hook: Hook): HookChoice {
  if (hook === 'xdp-generic') return { hook: 'xdp', generic: true, reason: 'set in the config (generic XDP)' };
  if (hook !== 'auto') return { hook, reason: 'set in the config' };
  const args = [...(ref.netns ? ['-n', ref.netns] : []), '-d', '-j', 'link', 'show', 'dev', ref.ifname];
  let kind: string | undefined;
  try {
    const out = JSON.parse(execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })) as Array<{
      linkinfo?: { info_kind?: string };
    }>;
    kind = out[0]?.linkinfo?.info_kind;
  } catch {
    return { hook: 'tc', reason: 'link kind unknown: tc is the safe default' };
  }
  if (kind === undefined) return { hook: 'xdp', reason: 'physical NIC: native XDP' };
  return {
    hook: 'tc',
    reason: `${kind} interface served by the kernel: tc (native XDP on it would turn off the peer's TSO)`,
  };
}

/** What is attached to one interface. */
export interface Attachment extends IfaceRef {
  ifindex: number;
  hook: 'tc' | 'xdp';
  reason: string;
  /** For the XDP hook: native, or generic when the driver refused native. */
  xdpMode: 'native' | 'generic' | null;
}

function isErrno(e: unknown, ...codes: string[]): boolean {
  return typeof e === 'object' && e !== null && codes.includes((e as { code?: string }).code ?? '');
}

/**
 * Attaches (or replaces in place) xlb's programs on one interface: tc egress
 * always (replies are rewritten there), and ingress on the chosen hook; with
 * XDP, tc ingress gets the companion xlb_tc_reply.
 */
export function attach(dp: Dataplane, ref: IfaceRef, choice: HookChoice): Attachment {
  const n = dp.native;
  const ifindex = n.ifNameToIndex(ref.netns, ref.ifname);
  n.tcHookCreate(ref.netns, ifindex);
  n.tcAttach(ref.netns, ifindex, 'egress', dp.progs.xlb_tc_egress, TC_HANDLE, TC_PRIORITY, true);
  let xdpMode: 'native' | 'generic' | null = null;
  if (choice.hook === 'tc') {
    n.tcAttach(ref.netns, ifindex, 'ingress', dp.progs.xlb_tc_ingress, TC_HANDLE, TC_PRIORITY, true);
    detachXdpIfOurs(dp, ref.netns, ifindex);
  } else {
    const q = n.xdpQuery(ref.netns, ifindex);
    const modes: Array<'native' | 'generic'> = choice.generic || q.mode === 'generic' ? ['generic'] : ['native', 'generic'];
    let lastErr: unknown;
    for (const mode of modes) {
      let oldFd: number | undefined;
      try {
        const cur = mode === 'native' ? q.driverProgId : q.skbProgId;
        if (cur) oldFd = n.progGetFdById(cur);
        n.xdpAttach(ref.netns, ifindex, dp.progs.xlb_xdp_ingress, mode, oldFd);
        xdpMode = mode;
        break;
      } catch (e) {
        lastErr = e;
        if (!isErrno(e, 'EOPNOTSUPP', 'EINVAL', 'ENOTSUP')) throw e;
      } finally {
        if (oldFd !== undefined) n.closeFd(oldFd);
      }
    }
    if (!xdpMode) throw lastErr;
    // What XDP cannot send back toward the VIF (RST, ICMP, ARP replies, hairpin) leaves
    // by tc redirect: the tc ingress companion does it (bpf/lib/bounce.h).
    n.tcAttach(ref.netns, ifindex, 'ingress', dp.progs.xlb_tc_reply, TC_HANDLE, TC_PRIORITY, true);
  }
  const reason = xdpMode === 'generic' && !choice.generic ? `${choice.reason}; native XDP refused, generic XDP in use` : choice.reason;
  return { ...ref, ifindex, hook: choice.hook, reason, xdpMode };
}

function detachXdpIfOurs(dp: Dataplane, netns: string | null, ifindex: number): void {
  const n = dp.native;
  const q = n.xdpQuery(netns, ifindex);
  if (!q.progId) return;
  const ours = n.progInfo(dp.progs.xlb_xdp_ingress).name;
  let name = '';
  try {
    const fd = n.progGetFdById(q.progId);
    try {
      name = n.progInfo(fd).name;
    } finally {
      n.closeFd(fd);
    }
  } catch {
    return;
  }
  if (name !== ours) return;
  if (q.driverProgId) n.xdpDetach(netns, ifindex, 'native');
  if (q.skbProgId) n.xdpDetach(netns, ifindex, 'generic');
}

/** Removes xlb's programs from an interface. Missing interfaces/netns are not errors. */
export function detach(a: IfaceRef & { hook: 'tc' | 'xdp'; xdpMode?: string | null }): void {
  const n = loadNative();
  let ifindex: number;
  try {
    ifindex = n.ifNameToIndex(a.netns, a.ifname);
  } catch (e) {
    if (isErrno(e, 'ENODEV', 'ENOENT')) return;
    throw e;
  }
  for (const dir of ['ingress', 'egress'] as const) {
    try {
      n.tcDetach(a.netns, ifindex, dir, TC_HANDLE, TC_PRIORITY);
    } catch (e) {
      if (!isErrno(e, 'ENOENT', 'EINVAL')) throw e;
    }
  }
  if (a.hook === 'xdp') {
    const q = n.xdpQuery(a.netns, ifindex);
    if (q.driverProgId) n.xdpDetach(a.netns, ifindex, 'native');
    if (q.skbProgId) n.xdpDetach(a.netns, ifindex, 'generic');
  }
}

/** Adds a backend's flow counters (packets..new_conns: what the data plane counts per backend) to t, wrapping as the counters do. */
function addFlowStats(t: Stats, b: Stats): void {
  const wrap = (x: bigint): bigint => BigInt.asUintN(64, x);
  t.packets = wrap(t.packets + b.packets);
  t.bytes = wrap(t.bytes + b.bytes);
  t.replyPackets = wrap(t.replyPackets + b.replyPackets);
  t.replyBytes = wrap(t.replyBytes + b.replyBytes);
  t.newConns = wrap(t.newConns + b.newConns);
}
