/**
 * One case of the scale stage's in-place measurement, alone and for as long as
 * asked: for profiling (`perf record -e cpu-clock -a` while it runs) and for
 * comparing builds (run each tree's copy in turn: `node <tree>/dist/bench/scale-probe.js`).
 * Not part of `npm run bench`.
 *
 *   node dist/bench/scale-probe.js --vips 10000 --path est --seconds 10
 *
 * --maglev-size M gives every load balancer xlb_maglev_size M (its tables' size class follows).
 *
 * --path est: the case's 1,000 confirmed flows spread over the VIPs (as the stage's);
 *        new: new flows to random VIPs (up to 4,096 frames, a fresh source each);
 *        one: new flows to the first VIP only;
 *        ct1m: new flows to the first VIP with 1,000,000 made-up entries in the established tier.
 * Prints the median of its 100,000-frame runs (ns per packet, Δrun_time_ns/Δrun_cnt) and the
 * global counters. Own pin root and the hotpath stage's netns (refused while they exist: a bench is
 * running); removes both, also on Ctrl-C / SIGTERM.
 */
import { join } from 'node:path';
import { Command } from 'commander';
import { Dataplane } from '../src/dataplane.js';
import { compile } from '../src/compile.js';
import { validateConfig } from '../src/config.js';
import { applyCompiled } from '../src/writer.js';
import { loadNative } from '../src/native.js';
import { packageRoot } from '../src/paths.js';
import { parseIPv4 } from '../src/addr.js';
import { LAYOUT, encodeU32 } from '../src/layout.js';
import { establishFlows, fillConntrack, loadCycle, newFlowFrames, scaleConfig } from './scale.js';
import { buildInPlace, destroyInPlace, sendLive, NS_RX, NS_TX, IF_RX, IF_TX } from './hotpath.js';
import { macOf, median, sh, yieldToLoop } from './common.js';
import { onCleanup, runCleanups } from './cleanup.js';

const PIN_ROOT = '/sys/fs/bpf/xlb-b-probe';
const PATHS = ['est', 'new', 'one', 'ct1m'] as const;
type Path = (typeof PATHS)[number];
const FRAMES_PER_RUN = 100_000;

async function main(): Promise<void> {
  const o = new Command()
    .option('--vips <n>', 'VIPs of 64 backends each', '1')
    .option('--path <p>', PATHS.join('|'), 'new')
    .option('--seconds <s>', 'how long to send (bounded: at most 600)', '10')
    .option('--maglev-size <m>', "every load balancer's xlb_maglev_size (default: the default M)")
    .parse(process.argv)
    .opts();
  const nVips = Number(o.vips);
  const path = o.path as Path;
  const seconds = Math.min(Number(o.seconds), 600);
  if (!Number.isInteger(nVips) || nVips < 1 || nVips > 16384) throw new Error(`--vips: ${o.vips} is not a whole number from 1 to 16384`);
  if (!PATHS.includes(path)) throw new Error(`--path: ${o.path} is not one of ${PATHS.join(', ')}`);
  if (!(seconds > 0)) throw new Error(`--seconds: ${o.seconds} is not a positive number`);
  const netns = sh('ip', ['netns', 'list']);
  for (const ns of [NS_RX, NS_TX]) {
    if (new RegExp(`^${ns}\\b`, 'm').test(netns)) throw new Error(`netns ${ns} exists: a bench (or another probe) is running; run this alone`);
  }

  const native = loadNative();
  let dp: Dataplane | null = null;
  let floor: ReturnType<typeof native.openObject> | null = null;
  let stats: number | null = null;
  const cleanup = (): void => {
    if (stats !== null) native.closeFd(stats);
    stats = null;
    if (floor) native.closeObject(floor.handle);
    floor = null;
    destroyInPlace(); // (the XDP program leaves with the veth)
    dp?.close();
    dp = null;
    Dataplane.removePins(PIN_ROOT);
  };
  const unregister = onCleanup(cleanup);
  const onSignal = (sig: NodeJS.Signals): void => {
    runCleanups();
    process.exit(sig === 'SIGINT' ? 130 : 143);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    Dataplane.removePins(PIN_ROOT);
    const d = (dp = Dataplane.open({ pinRoot: PIN_ROOT, mapSizes: { vips: 16384, backends: nVips * 64 + 1024, conntrack: 1 << 21 } }));
    const f = (floor = native.openObject(join(packageRoot(), 'build', 'bpf', 'bench.bpf.o'), {}));
    const fd = (kind: 'programs' | 'maps', name: string): number => {
      const x = (f[kind] as Array<{ name: string; fd: number }>).find((m) => m.name === name);
      if (!x) throw new Error(`bench.bpf.o has no ${name}: run \`npm run build:bpf\``);
      return x.fd;
    };
    const config = scaleConfig(nVips) as { load_balancers: { options?: Record<string, string> }[] };
    if (o.maglevSize !== undefined) for (const lb of config.load_balancers) lb.options = { xlb_maglev_size: String(o.maglevSize) };
    applyCompiled(d.store(), compile(validateConfig(config)), new Map([['lo', 1]]));
    if (path === 'ct1m') fillConntrack(native, d, 1_000_000, 1);
    buildInPlace();
    sh('ip', ['-n', NS_RX, 'route', 'add', 'blackhole', '10.0.0.0/8']);
    const rx = native.ifNameToIndex(NS_RX, IF_RX);
    const tx = native.ifNameToIndex(NS_TX, IF_TX);
    // The receiving veth serves what the config's port (lo) serves.
    const iface = native.mapLookup(d.maps.xlb_ifaces, encodeU32(1), LAYOUT.xlb_iface.size);
    if (!iface) throw new Error('the configuration serves nothing on lo');
    native.mapUpdate(d.maps.xlb_ifaces, encodeU32(rx), iface);
    const mac = { src: macOf(NS_TX, IF_TX), dst: macOf(NS_RX, IF_RX) };
    let set: Buffer[];
    if (path === 'est') {
      // The stage's 1,000 flows spread over the VIPs, each confirmed by its backend's answer.
      set = establishFlows(native, d, 1000, nVips, 1, parseIPv4('192.168.0.0')).map((f) => {
        const g = Buffer.from(f);
        mac.dst.copy(g, 0);
        mac.src.copy(g, 6);
        return g;
      });
    } else {
      set = newFlowFrames(path === 'new' ? nVips : 1, mac);
    }
    const sender = fd('programs', 'bench_xdp_tx_cycle');
    loadCycle(native, fd('maps', 'bench_cycle'), fd('maps', 'bench_cycle_ctl'), set, path !== 'est');
    const counter = path === 'est' ? 'ct_hit' : 'new_flow';
    stats = native.enableStats();
    native.xdpAttach(NS_RX, rx, d.progs.xlb_xdp_ingress, 'native');
    const out: number[] = [];
    let lost = 0;
    const end = Date.now() + seconds * 1000;
    while (Date.now() < end) {
      const g0 = d.globalCounters()[counter];
      const { cnt, ns } = sendLive(native, tx, sender, set[0]!, FRAMES_PER_RUN, d.progs.xlb_xdp_ingress);
      // A run counts only when every frame the program saw took the path measured (as scale.ts's).
      if (cnt > 0 && Number(d.globalCounters()[counter] - g0) >= cnt) out.push(ns / cnt);
      else lost++;
      await yieldToLoop(); // (a signal is handled between runs)
    }
    native.xdpDetach(NS_RX, rx, 'native');
    if (out.length === 0) throw new Error(`no run counted: in all ${lost} some frame did not take the ${counter} path`);
    console.log(`${nVips} VIPs, path ${path}: median ${median(out).toFixed(1)} ns per packet over ${out.length} runs of ${FRAMES_PER_RUN} frames (${lost} not counted: off the ${counter} path)`);
    const g = d.globalCounters();
    console.log(Object.entries(g).filter(([, v]) => v !== 0n).map(([k, v]) => `${k} ${v}`).join(', '));
  } finally {
    unregister();
    cleanup();
  }
}

main().catch((e: unknown) => {
  console.error(e instanceof Error ? e.message : e);
  process.exitCode = 1;
});
