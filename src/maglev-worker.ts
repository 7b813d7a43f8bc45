/** The worker of maglev-pool.ts: takes table jobs from the shared counter. */
import { parentPort } from 'node:worker_threads';
import { work, type PackedJobs } from './maglev-pool.js';

parentPort?.on('message', (m: { jobs: PackedJobs; outs: Uint32Array[]; next: Int32Array; state: Int32Array }) => {
  work(m.jobs, m.outs, m.next, m.state);
});
