/** Shared teardown of the end-to-end tests that run their own xlb instance in a lab. */
import { rmSync } from 'node:fs';
import { Xlb } from '../../src/xlb.js';

/** Closes `x`, detaches and unpins the instance, removes its state directory and destroys the lab. */
export async function closeLab(
  x: Xlb | undefined,
  instance: { pinRoot: string; stateDir: string },
  lab: { destroy(): Promise<void> } | undefined,
): Promise<void> {
  x?.close();
  Xlb.reset(instance);
  rmSync(instance.stateDir, { recursive: true, force: true });
  await lab?.destroy();
}
