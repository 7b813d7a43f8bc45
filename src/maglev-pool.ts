/**
 * Maglev tables of many VIPs built on two threads: this one and one worker
 * (worker_threads), sharing the jobs through an atomic counter. Synchronous
 * for the caller (compile() stays a plain function): this thread takes jobs
 * too and then waits (Atomics.wait) for the ones the worker took. Tables are
 * a pure function of their inputs, so a job the worker does not finish in
 * time is simply computed here as well (same bytes) — a missing or stuck
 * worker only costs the parallelism.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { maglevFill } from './maglev.js';
import { packageRoot } from './paths.js';
import { XLB } from './layout.js';

/** One table to build: backends (ids, names, weights) and M. */
export interface TableJob {
  ids: readonly number[];
  names: readonly string[];
  weights?: readonly number[];
  m: number;
}

/** Below this many tables, one thread (starting the worker would cost more). */
export const PARALLEL_MIN = 32;
/** How long to wait for a job the worker took before computing it here. */
const WORKER_WAIT_MS = 5000;

/** Job states in the shared state array. */
const UNCLAIMED = 0;
const CLAIMED = 1;
const DONE = 2;

/** Fills `out` (slot 0 = M, slots 1..M = backend ids) for one job, in place. */
export function fillTable(job: TableJob, out: Uint32Array): void {
  out[XLB.MAGLEV_HDR_SLOT] = job.m;
  // With a backend every slot is claimed; without, all are BACKEND_NONE.
  if (job.ids.length === 0) {
    out.fill(XLB.BACKEND_NONE, XLB.MAGLEV_FIRST_SLOT);
    return;
  }
  // Ids (< 2^31) written through a signed view of the same memory.
  const view = new Int32Array(out.buffer, out.byteOffset, out.length);
  const w = job.weights;
  // Equal weights build exactly the unweighted table.
  maglevFill(view, XLB.MAGLEV_FIRST_SLOT, job.names, job.m, w && w.some((x) => x !== w[0]) ? w : undefined, job.ids);
}

/** The jobs in a form that crosses to the worker cheaply: one string per job, numbers in shared memory. */
export interface PackedJobs {
  /** Backend names of each job, joined by "\n". */
  names: string[];
  /** Job i's ids and weights are at [start[i], start[i + 1]). */
  start: Int32Array;
  ids: Uint32Array;
  /** null when every job has equal weights. */
  weights: Float64Array | null;
  m: Int32Array;
}

function pack(jobs: readonly TableJob[]): PackedJobs {
  const start = new Int32Array(new SharedArrayBuffer(4 * (jobs.length + 1)));
  for (let i = 0; i < jobs.length; i++) start[i + 1] = start[i]! + jobs[i]!.ids.length;
  const total = start[jobs.length]!;
  const ids = new Uint32Array(new SharedArrayBuffer(4 * Math.max(1, total)));
  const weighted = jobs.some((j) => j.weights && j.weights.some((x) => x !== j.weights![0]));
  const weights = weighted ? new Float64Array(new SharedArrayBuffer(8 * Math.max(1, total))) : null;
  const m = new Int32Array(new SharedArrayBuffer(4 * Math.max(1, jobs.length)));
  jobs.forEach((j, i) => {
    ids.set(j.ids, start[i]!);
    if (weights) weights.set(j.weights ?? j.ids.map(() => 1), start[i]!);
    m[i] = j.m;
  });
  return { names: jobs.map((j) => j.names.join('\n')), start, ids, weights, m };
}

function unpack(p: PackedJobs, i: number): TableJob {
  const a = p.start[i]!;
  const b = p.start[i + 1]!;
  return {
    ids: Array.from(p.ids.subarray(a, b)),
    names: a === b ? [] : p.names[i]!.split('\n'),
    weights: p.weights ? Array.from(p.weights.subarray(a, b)) : undefined,
    m: p.m[i]!,
  };
}

/**
 * Claims and builds jobs until none is left (both threads run this). `jobs` is
 * the packed form (the worker) or the jobs themselves (this thread, which has
 * them: no unpacking).
 */
export function work(jobs: PackedJobs | readonly TableJob[], outs: readonly Uint32Array[], next: Int32Array, state: Int32Array): void {
  const at = Array.isArray(jobs) ? (i: number): TableJob => (jobs as readonly TableJob[])[i]! : (i: number): TableJob => unpack(jobs as PackedJobs, i);
  for (;;) {
    const i = Atomics.add(next, 0, 1);
    if (i >= outs.length) return;
    if (Atomics.compareExchange(state, i, UNCLAIMED, CLAIMED) !== UNCLAIMED) continue;
    fillTable(at(i), outs[i]!);
    Atomics.store(state, i, DONE);
    Atomics.notify(state, i);
  }
}

let worker: Worker | null | undefined;

/** The worker (started on first use), or null where its script is missing (e.g. no build). */
function getWorker(): Worker | null {
  if (worker !== undefined) return worker;
  const script = join(packageRoot(), 'dist', 'src', 'maglev-worker.js');
  if (!existsSync(script)) return (worker = null);
  try {
    const w = new Worker(script);
    w.unref();
    w.on('error', () => {
      worker = null;
    });
    worker = w;
  } catch {
    worker = null;
  }
  return worker;
}

/** Shared memory is allocated for this many bytes of tables at once (one allocation, not one per table). */
const SHARED_CHUNK_BYTES = 4 << 20;

/**
 * Outputs for the jobs in shared memory both threads write: consecutive
 * tables share a buffer of up to SHARED_CHUNK_BYTES (allocating a
 * SharedArrayBuffer per table cost more than a fast fill). A table keeps its
 * chunk alive while it is in use.
 */
function sharedTables(jobs: readonly TableJob[]): Uint32Array[] {
  const outs: Uint32Array[] = [];
  for (let i = 0; i < jobs.length; ) {
    let words = 0;
    let j = i;
    while (j < jobs.length && (j === i || (words + jobs[j]!.m + 1) * 4 <= SHARED_CHUNK_BYTES)) words += jobs[j++]!.m + 1;
    const buf = new SharedArrayBuffer(words * 4);
    for (let at = 0; i < j; i++) {
      outs.push(new Uint32Array(buf, at * 4, jobs[i]!.m + 1));
      at += jobs[i]!.m + 1;
    }
  }
  return outs;
}

/** Tables built so far (tests check that a small change builds few). */
export const tableCounters = { built: 0 };

/** Tables handed to the worker at once while jobs keep coming (about 25 ms of its work at M = 16381). */
export const BATCH = 64;

/** Jobs posted to the worker together, with their outputs and claim state in shared memory. */
interface Batch {
  jobs: readonly TableJob[];
  packed: PackedJobs;
  outs: Uint32Array[];
  next: Int32Array;
  state: Int32Array;
}

/**
 * Builds tables as they are asked for: once PARALLEL_MIN jobs are waiting,
 * they go to the worker in batches of BATCH right away, so it builds tables
 * while the caller is still compiling the next VIPs; finish() builds the
 * rest here, together with the worker, and returns every table in the order
 * of add(). Fewer than PARALLEL_MIN jobs in all are built here, in finish().
 */
export class TableBuilder {
  private readonly waiting: TableJob[] = [];
  private readonly batches: Batch[] = [];
  private count = 0;

  /** Queues a job; its table is finish()'s result at the index returned. */
  add(job: TableJob): number {
    this.waiting.push(job);
    if (this.batches.length > 0 ? this.waiting.length >= BATCH : this.waiting.length >= PARALLEL_MIN) this.post();
    return this.count++;
  }

  private post(): void {
    const jobs = this.waiting.splice(0);
    const b: Batch = {
      jobs,
      packed: pack(jobs),
      outs: sharedTables(jobs),
      next: new Int32Array(new SharedArrayBuffer(4)),
      state: new Int32Array(new SharedArrayBuffer(4 * jobs.length)),
    };
    this.batches.push(b);
    getWorker()?.postMessage({ jobs: b.packed, outs: b.outs, next: b.next, state: b.state });
  }

  /** Every table, in the order of add(). */
  finish(): Uint32Array[] {
    tableCounters.built += this.count;
    if (this.batches.length === 0) {
      return this.waiting.splice(0).map((j) => {
        const out = new Uint32Array(j.m + 1);
        fillTable(j, out);
        return out;
      });
    }
    if (this.waiting.length > 0) this.post();
    const outs: Uint32Array[] = [];
    for (const b of this.batches) {
      work(b.jobs, b.outs, b.next, b.state);
      for (let i = 0; i < b.jobs.length; i++) {
        if (Atomics.load(b.state, i) === DONE) continue;
        if (Atomics.wait(b.state, i, CLAIMED, WORKER_WAIT_MS) === 'timed-out' && Atomics.load(b.state, i) !== DONE) {
          fillTable(b.jobs[i]!, b.outs[i]!);
        }
      }
      for (const o of b.outs) outs.push(o);
    }
    this.batches.length = 0;
    return outs;
  }
}

/** Builds every table; on two threads when there are many. */
export function buildTables(jobs: readonly TableJob[]): Uint32Array[] {
  const b = new TableBuilder();
  for (const j of jobs) b.add(j);
  return b.finish();
}
