/** Helpers of the health-check tests: waiting for checker events, a curl loop through the VIP. */
import type { Lab } from '../../src/lab.js';
import type { HealthChange, HealthChecker } from '../../src/health/index.js';

/** Resolves with the first 'change' satisfying `pred`, or rejects after timeoutS. */
export function waitForChange(hc: HealthChecker, pred: (c: HealthChange) => boolean, timeoutS: number): Promise<HealthChange & { at: number }> {
  return new Promise((resolve, reject) => {
    const onChange = (c: HealthChange): void => {
      if (!pred(c)) return;
      clearTimeout(timer);
      hc.off('change', onChange);
      resolve({ ...c, at: Date.now() });
    };
    const timer = setTimeout(() => {
      hc.off('change', onChange);
      reject(new Error(`no matching health change within ${timeoutS} s; status: ${JSON.stringify(hc.status())}`));
    }, timeoutS * 1000);
    hc.on('change', onChange);
  });
}

export interface CurlSample {
  start: number;
  end: number;
  body: string | null;
}

/** Curls the VIP from vm3 every `everyMs` (sequentially, never overlapping) until stopped. */
export function curlLoop(lab: Lab, everyMs = 100, timeoutS = 1): { samples: CurlSample[]; stop: () => Promise<void> } {
  const samples: CurlSample[] = [];
  let running = true;
  const done = (async () => {
    while (running) {
      const start = Date.now();
      const body = await lab.curl(timeoutS);
      samples.push({ start, end: Date.now(), body });
      const wait = everyMs - (Date.now() - start);
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    }
  })();
  return {
    samples,
    stop: async () => {
      running = false;
      await done;
    },
  };
}
