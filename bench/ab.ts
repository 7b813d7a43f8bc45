/**
 * In-process A/B of the XDP in-place hot path between two builds of xlb (each a
 * package tree with its own dist/ and build/): both trees' data planes are
 * loaded at once (their own pin roots), their XDP programs take turns on the
 * hotpath veth, pair by pair, so that a noisy machine's drift hits both alike.
 * For a change to the data plane, measured against the commit before it:
 *
 *   git worktree add /tmp/xlb-base HEAD~1 && ln -s "$PWD/node_modules" /tmp/xlb-base/ && (cd /tmp/xlb-base && npm run build)
 *   node dist/bench/ab.js --pairs 50 /tmp/xlb-base .
 *
 * Prints per tree the medians (and first quartiles) of the established and new
 * flow (ns per packet, the no-op's included) and the median of the pairwise
 * ratios B/A. Not part of `npm run bench`.
 *
 * With --vips N (> 1) each tree serves the scale stage's N VIPs of 64 backends
 * (scaleConfig) and only the new flow is measured, as scale-probe's `--path
 * new` sends it: new flows to random VIPs (up to 4,096 frames, a fresh source
 * each), the same frames for both trees.
 */
import { resolve } from 'node:path';
import { Command } from 'commander';
import { loadNative } from '../src/native.js';
import { packageRoot } from '../src/paths.js';
import { parseIPv4 } from '../src/addr.js';
import { buildInPlace, destroyInPlace, establish, frameValue, hotpathConfig, sendLive, NS_RX, NS_TX, IF_RX, IF_TX } from './hotpath.js';
import { macOf, median, percentile, sh, tcpFrame } from './common.js';
import { loadCycle, newFlowFrames } from './scale.js';

const CLIENT = parseIPv4('192.168.0.1');
const VIP = parseIPv4('10.0.0.1');

interface Tree {
  name: string;
  dp: any;
  Dataplane: any;
  pin: string;
  est: number[];
  fresh: number[];
}

async function openTree(dir: string, i: number, rxIdx: number, vips: number): Promise<Tree> {
  const mod = (p: string): Promise<any> => import(resolve(dir, 'dist', p));
  const { Dataplane } = await mod('src/dataplane.js');
  const { compile } = await mod('src/compile.js');
  const { validateConfig } = await mod('src/config.js');
  const { applyCompiled } = await mod('src/writer.js');
  const pin = `/sys/fs/bpf/xlb-b-ab${i}`;
  Dataplane.removePins(pin);
  const port = `${NS_RX}/${IF_RX}`;
  const ifindexes = new Map([['lo', 1], [port, rxIdx]]);
  if (vips > 1) {
    const { scaleConfig } = await mod('bench/scale.js');
    const dp = Dataplane.open({ pinRoot: pin, mapSizes: { vips: 16384, backends: vips * 64 + 1024, conntrack: 1 << 21 } });
    applyCompiled(dp.store(), compile(validateConfig(scaleConfig(vips, -1, 1, vips, port))), ifindexes);
    return { name: dir, dp, Dataplane, pin, est: [], fresh: [] };
  }
  const dp = Dataplane.open({ pinRoot: pin, mapSizes: { conntrack: 1 << 22 } });
  applyCompiled(dp.store(), compile(validateConfig(hotpathConfig([port]))), ifindexes);
  establish(dp.native, dp, 40000); // the established flow, confirmed into the established tier
  return { name: dir, dp, Dataplane, pin, est: [], fresh: [] };
}

async function main(): Promise<void> {
  const o = new Command()
    .option('--pairs <n>', 'rounds (each tree measured once per round)', '50')
    .option('--frames <n>', 'live frames per measurement', '20000')
    .option('--vips <n>', 'VIPs of 64 backends each (> 1: the new flow only, to random VIPs)', '1')
    .argument('<trees...>', 'package trees (two to compare)')
    .parse(process.argv);
  const pairs = Number(o.opts().pairs);
  const frames = Number(o.opts().frames);
  const vips = Number(o.opts().vips);
  if (!Number.isInteger(vips) || vips < 1 || vips > 16384) throw new Error(`--vips: ${o.opts().vips} is not a whole number from 1 to 16384`);
  const dirs = o.args.map((d) => resolve(d));
  const native = loadNative();
  destroyInPlace();
  const trees: Tree[] = [];
  let stats: number | null = null;
  const floor = native.openObject(resolve(packageRoot(), 'build', 'bpf', 'bench.bpf.o'), {});
  try {
    buildInPlace();
    const rxIdx = native.ifNameToIndex(NS_RX, IF_RX);
    const txIdx = native.ifNameToIndex(NS_TX, IF_TX);
    const prog = (n: string): number => floor.programs.find((p) => p.name === n)!.fd;
    const tmpl = floor.maps.find((m) => m.name === 'bench_tmpl')!.fd;
    for (const [i, d] of dirs.entries()) trees.push(await openTree(d, i, rxIdx, vips));
    stats = native.enableStats();
    const mac = { src: macOf(NS_TX, IF_TX), dst: macOf(NS_RX, IF_RX) };
    const est = tcpFrame(CLIENT, VIP, 40000, 80, 0x10, mac);
    const fresh = tcpFrame(CLIENT, VIP, 1024, 80, 0x02, mac);
    // --vips N: the scale stage's new flows, cycled by bench_xdp_tx_cycle (a fresh source per frame).
    const spread = vips > 1 ? newFlowFrames(vips, mac) : [];
    if (vips > 1) {
      sh('ip', ['-n', NS_RX, 'route', 'add', 'blackhole', '10.0.0.0/8']);
      const mapFd = (name: string): number => floor.maps.find((m) => m.name === name)!.fd;
      loadCycle(native, mapFd('bench_cycle'), mapFd('bench_cycle_ctl'), spread, true);
    }
    // A tree's run counts only when every frame its program saw took the path measured
    // (as the hotpath stage's): else it is NaN, and the pair it belongs to is left out.
    const measure = (xdp: number, sender: number, frame: Buffer, path?: { dp: any; counter: 'ct_hit' | 'new_flow' }): number => {
      native.xdpAttach(NS_RX, rxIdx, xdp, 'native');
      try {
        native.mapUpdate(tmpl, Buffer.alloc(4), frameValue(frame));
        const g0: bigint | undefined = path?.dp.globalCounters()[path.counter];
        const { cnt, ns } = sendLive(native, txIdx, sender, frame, frames, xdp);
        if (path && !(cnt > 0 && Number(path.dp.globalCounters()[path.counter] - g0!) >= cnt)) return NaN;
        return ns / cnt;
      } finally {
        native.xdpDetach(NS_RX, rxIdx, 'native');
      }
    };
    const noop: number[] = [];
    for (let r = 0; r < pairs; r++) {
      noop.push(measure(prog('bench_xdp_noop'), prog('bench_xdp_tx'), est));
      for (const t of trees) {
        if (vips > 1) {
          t.fresh.push(measure(t.dp.progs.xlb_xdp_ingress, prog('bench_xdp_tx_cycle'), spread[0]!, { dp: t.dp, counter: 'new_flow' }));
          continue;
        }
        t.est.push(measure(t.dp.progs.xlb_xdp_ingress, prog('bench_xdp_tx'), est, { dp: t.dp, counter: 'ct_hit' }));
        t.fresh.push(measure(t.dp.progs.xlb_xdp_ingress, prog('bench_xdp_tx_seq'), fresh, { dp: t.dp, counter: 'new_flow' }));
      }
    }
    const f = (x: number | undefined): string => (x === undefined || Number.isNaN(x) ? 'n/a' : x.toFixed(1));
    console.log(`no-op: median ${f(median(noop))} ns`);
    const ok = (xs: number[]): number[] => xs.filter(Number.isFinite);
    for (const t of trees) {
      const lost = t.est.length - ok(t.est).length + t.fresh.length - ok(t.fresh).length;
      console.log(
        `${t.name}: established ${f(median(ok(t.est)))} (p25 ${f(percentile(ok(t.est), 25))}) ns, new flow ${f(median(ok(t.fresh)))} (p25 ${f(percentile(ok(t.fresh), 25))}) ns; ${lost} run(s) off the path, left out`,
      );
    }
    if (trees.length === 2) {
      const [a, b] = trees as [Tree, Tree];
      const ratio = (xs: number[], ys: number[]): string => (xs.length ? median(ok(ys.map((y, i) => y / xs[i]!))).toFixed(3) : 'n/a');
      console.log(`B/A, median of ${pairs} pairs: established ${ratio(a.est, b.est)}, new flow ${ratio(a.fresh, b.fresh)}`);
    }
  } finally {
    if (stats !== null) native.closeFd(stats);
    for (const t of trees) {
      t.dp.close();
      t.Dataplane.removePins(t.pin);
    }
    native.closeObject(floor.handle);
    destroyInPlace();
  }
}

main().catch((e: unknown) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
});
