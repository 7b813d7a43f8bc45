/** Cleanups run on exit, Ctrl-C or SIGTERM (each stage registers what it started). */
const cleanups = new Set<() => void>();

export function onCleanup(fn: () => void): () => void {
  cleanups.add(fn);
  return () => cleanups.delete(fn);
}

export function runCleanups(): void {
  for (const fn of [...cleanups].reverse()) {
    cleanups.delete(fn);
    try {
      fn();
    } catch {
      /* best effort */
    }
  }
}
