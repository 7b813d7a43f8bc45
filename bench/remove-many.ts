/**
 * How long removing many VIPs takes: applies `total` VIPs (two backends each,
 * M = 1021) on `lo` of a private pin root, then removes `removed` of them in
 * one apply (the incremental path Xlb.apply takes) and prints the time of
 * that apply and the outer Maglev map writes it made (each waits for one RCU
 * grace period). Usage: node dist/bench/remove-many.js [total] [removed]
 */
import { Dataplane } from '../src/dataplane.js';
import { compile, emptyCompiled, type Compiled } from '../src/compile.js';
import { validateConfig } from '../src/config.js';
import { applyCompiled } from '../src/writer.js';

const total = Number(process.argv[2] ?? 10000);
const removed = Number(process.argv[3] ?? 1000);
const pinRoot = `/sys/fs/bpf/xlb-xrm-bench-${process.pid}`;
const M = 1021;

function lb(name: string, from: number, to: number): object {
  const vips: Record<string, string> = {};
  for (let i = from; i < to; i++) vips[`10.${100 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}:80`] = `10.50.${i & 255}.1:8080,10.50.${i & 255}.2:8080`;
  return { name, vips, options: { xlb_maglev_size: String(M) } };
}

function config(withRemoved: boolean): object {
  const lbs = [lb('kept', 0, total - removed), ...(withRemoved ? [lb('removed', total - removed, total)] : [])];
  return { load_balancers: lbs, logical_switches: [{ name: 'sw', ports: ['lo'], load_balancer: lbs.map((l) => (l as { name: string }).name) }] };
}

Dataplane.removePins(pinRoot);
const dp = Dataplane.open({ pinRoot });
try {
  const ifindex = new Map([['lo', 1]]);
  let last: Compiled = emptyCompiled();
  const apply = (withRemoved: boolean): number => {
    const c = compile(validateConfig(config(withRemoved)), last.ids, undefined, last);
    const t0 = performance.now();
    applyCompiled(dp.store(), c, ifindex, last.ids, { prev: last, prevIfindexes: [1] });
    last = c;
    return performance.now() - t0;
  };
  const addMs = apply(true);
  const ow = (dp as { outerWrites?: { batches: number; single: number } }).outerWrites;
  const before = ow ? { ...ow } : null;
  const removeMs = apply(false);
  console.log(
    JSON.stringify({
      total,
      removed,
      addWritesMs: Math.round(addMs),
      removeWritesMs: Math.round(removeMs),
      outerWrites: ow && before ? { batches: ow.batches - before.batches, single: ow.single - before.single } : 'not counted',
    }),
  );
} finally {
  dp.close();
  Dataplane.removePins(pinRoot);
}
