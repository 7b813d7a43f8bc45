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
import { maglevTable } from './maglev.js';
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

/** Fills `out` (slot 0 = M, slots 1..M = backend ids) for one job. */
export function fillTable(job: TableJob, out: Uint32Array): void {
  out[XLB.MAGLEV_HDR_SLOT] = job.m;
  if (job.ids.length === 0) {
    out.fill(XLB.BACKEND_NONE, XLB.MAGLEV_FIRST_SLOT);
    return;
  }
  const w = job.weights;
  // Equal weights build exactly the unweighted table.
  const idx = w && w.some((x) => x !== w[0]) ? maglevTable(job.names, job.m, w) : maglevTable(job.names, job.m);
  for (let i = 0; i < job.m; i++) {
    const j = idx[i]!;
    out[XLB.MAGLEV_FIRST_SLOT + i] = j < 0 ? XLB.BACKEND_NONE : job.ids[j]!;
  }
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

/** Claims and builds jobs until none is left (both threads run this). */
export function work(jobs: PackedJobs, outs: readonly Uint32Array[], next: Int32Array, state: Int32Array): void {
  for (;;) {
    const i = Atomics.add(next, 0, 1);
    if (i >= outs.length) return;
    if (Atomics.compareExchange(state, i, UNCLAIMED, CLAIMED) !== UNCLAIMED) continue;
    fillTable(unpack(jobs, i), outs[i]!);
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

/** Tables built so far (tests check that a small change builds few). */
export const tableCounters = { built: 0 };

/** Builds every table; on two threads when there are many. */
export function buildTables(jobs: readonly TableJob[]): Uint32Array[] {
  tableCounters.built += jobs.length;
  if (jobs.length < PARALLEL_MIN) {
    return jobs.map((j) => {
      const out = new Uint32Array(j.m + 1);
      fillTable(j, out);
      return out;
    });
  }
  const outs = jobs.map((j) => new Uint32Array(new SharedArrayBuffer((j.m + 1) * 4)));
  const next = new Int32Array(new SharedArrayBuffer(4));
  const state = new Int32Array(new SharedArrayBuffer(4 * jobs.length));
  const packed = pack(jobs);
  getWorker()?.postMessage({ jobs: packed, outs, next, state });
  work(packed, outs, next, state);
  for (let i = 0; i < jobs.length; i++) {
    if (Atomics.load(state, i) === DONE) continue;
    if (Atomics.wait(state, i, CLAIMED, WORKER_WAIT_MS) === 'timed-out' && Atomics.load(state, i) !== DONE) {
      fillTable(jobs[i]!, outs[i]!);
    }
  }
  return outs;
}
