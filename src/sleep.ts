/** Blocks this thread for `ms` milliseconds (a short wait in synchronous code: a retry's pause, a poll). */
export function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}
