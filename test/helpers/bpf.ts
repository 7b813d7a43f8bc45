/** Shared setup of the BPF program tests (BPF_PROG_TEST_RUN against a pinned dataplane). */
import { Dataplane } from '../../src/dataplane.js';
import { compile } from '../../src/compile.js';
import { validateConfig } from '../../src/config.js';
import { applyCompiled } from '../../src/writer.js';

/** Loads (or adopts) the dataplane pinned at `pinRoot` and applies `config` to `lo` as `ifindex`. */
export function loadOnLo(pinRoot: string, config: unknown, ifindex: number): Dataplane {
  const dp = Dataplane.open({ pinRoot });
  applyCompiled(dp.store(), compile(validateConfig(config)), new Map([['lo', ifindex]]));
  return dp;
}

/** Closes `dp` (if it was opened) and removes its pins. */
export function closeAndUnpin(dp: Dataplane | undefined, pinRoot: string): void {
  dp?.close();
  Dataplane.removePins(pinRoot);
}
