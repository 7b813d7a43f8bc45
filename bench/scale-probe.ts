/**
 * One case of the scale stage's in-place measurement, alone and for as long as
 * asked: for profiling (`perf record -e cpu-clock -a` while it runs) and for
 * comparing builds (run each tree's copy in turn: `node <tree>/dist/bench/scale-probe.js`).
 * Not part of `npm run bench`.
 *
 *   node dist/bench/scale-probe.js --vips 10000 --path est --seconds 10
 *
 * --path est: the case's 1,000 confirmed flows spread over the VIPs (as the stage's);
 *        new: new flows to random VIPs (up to 4,096 frames, a fresh source each);
 *        one: new flows to the first VIP only;
 *        ct1m: new flows to the first VIP with 1,000,000 made-up entries in the established tier.
 * Prints the median of its 100,000-frame runs (ns per packet, Δrun_time_ns/Δrun_cnt) and the
 * global counters. Own pin root and the hotpath stage's netns; removes both.
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
import { fillConntrack, scaleConfig } from './scale.js';
import { buildInPlace, destroyInPlace, frameValue, sendLive, NS_RX, NS_TX, IF_RX, IF_TX } from './hotpath.js';
import { macOf, median, sh, tcpFrame } from './common.js';

const PIN_ROOT = '/sys/fs/bpf/xlb-b-probe';
const PATHS = ['est', 'new', 'one', 'ct1m'] as const;
type Path = (typeof PATHS)[number];
const FRAMES_PER_RUN = 100_000;
const CYCLE_MAX = 4096; // bench.bpf.c BENCH_CYCLE_MAX
const vipAddr = (i: number): string => `10.200.${i >> 8}.${i & 255}`;

function main(): void {
  const o = new Command()
    .option('--vips <n>', 'VIPs of 64 backends each', '1')
    .option('--path <p>', PATHS.join('|'), 'new')
    .option('--seconds <s>', 'how long to send (bounded: at most 600)', '10')
    .parse(process.argv)
    .opts();
  const nVips = Number(o.vips);
  const path = o.path as Path;
  const seconds = Math.min(Number(o.seconds), 600);
  if (!Number.isInteger(nVips) || nVips < 1 || nVips > 16384) throw new Error(`--vips: ${o.vips} is not a whole number from 1 to 16384`);
  if (!PATHS.includes(path)) throw new Error(`--path: ${o.path} is not one of ${PATHS.join(', ')}`);
  if (!(seconds > 0)) throw new Error(`--seconds: ${o.seconds} is not a positive number`);

  const native = loadNative();
  Dataplane.removePins(PIN_ROOT);
  const dp = Dataplane.open({ pinRoot: PIN_ROOT, mapSizes: { vips: 16384, backends: nVips * 64 + 1024, conntrack: 1 << 21 } });
  const floor = native.openObject(join(packageRoot(), 'build', 'bpf', 'bench.bpf.o'), {});
  let stats: number | null = null;
  try {
    applyCompiled(dp.store(), compile(validateConfig(scaleConfig(nVips))), new Map([['lo', 1]]));
    if (path === 'ct1m') fillConntrack(native, dp, 1_000_000, 1);
    destroyInPlace();
    buildInPlace();
    sh('ip', ['-n', NS_RX, 'route', 'add', 'blackhole', '10.0.0.0/8']);
    const rx = native.ifNameToIndex(NS_RX, IF_RX);
    const tx = native.ifNameToIndex(NS_TX, IF_TX);
    // The receiving veth serves what the config's port (lo) serves.
    const iface = native.mapLookup(dp.maps.xlb_ifaces, encodeU32(1), LAYOUT.xlb_iface.size)!;
    native.mapUpdate(dp.maps.xlb_ifaces, encodeU32(rx), iface);
    const fd = (kind: 'programs' | 'maps', name: string): number => floor[kind].find((x) => x.name === name)!.fd;
    const mac = { src: macOf(NS_TX, IF_TX), dst: macOf(NS_RX, IF_RX) };
    let set: Buffer[];
    if (path === 'est') {
      set = [];
      for (let k = 0; k < 1000; k++) {
        const vip = parseIPv4(vipAddr((k * 7919) % nVips));
        const client = parseIPv4('192.168.0.0') + k;
        const syn = native.progTestRun(dp.progs.xlb_xdp_ingress, { data: tcpFrame(client, vip, 40000, 80, 0x02), ifindex: 1, repeat: 1 }).data;
        native.progTestRun(dp.progs.xlb_tc_egress, { data: tcpFrame(syn.readUInt32BE(30), client, syn.readUInt16BE(36), 40000, 0x10), ifindex: 1, repeat: 1 });
        set.push(tcpFrame(client, vip, 40000, 80, 0x10, mac));
      }
    } else {
      const spread = path === 'new' ? nVips : 1;
      set = Array.from({ length: Math.min(CYCLE_MAX, spread * 4) }, (_, i) =>
        tcpFrame(parseIPv4('10.128.0.0'), parseIPv4(vipAddr(Math.floor(Math.random() * spread))), 1024 + i, 80, 0x02, mac),
      );
    }
    for (let i = 0; i < set.length; i++) native.mapUpdate(fd('maps', 'bench_cycle'), encodeU32(i), frameValue(set[i]!));
    const ctl = Buffer.alloc(8);
    ctl.writeUInt32LE(set.length, 0);
    ctl.writeUInt32LE(path === 'est' ? 0 : 1, 4); // 1: a fresh source per frame
    native.mapUpdate(fd('maps', 'bench_cycle_ctl'), encodeU32(0), ctl);
    stats = native.enableStats();
    native.xdpAttach(NS_RX, rx, dp.progs.xlb_xdp_ingress, 'native');
    const out: number[] = [];
    const end = Date.now() + seconds * 1000;
    try {
      while (Date.now() < end) {
        const { cnt, ns } = sendLive(native, tx, fd('programs', 'bench_xdp_tx_cycle'), set[0]!, FRAMES_PER_RUN, dp.progs.xlb_xdp_ingress);
        if (cnt > 0) out.push(ns / cnt);
      }
    } finally {
      native.xdpDetach(NS_RX, rx, 'native');
    }
    console.log(`${nVips} VIPs, path ${path}: median ${median(out).toFixed(1)} ns per packet over ${out.length} runs of ${FRAMES_PER_RUN} frames`);
    const g = dp.globalCounters();
    console.log(Object.entries(g).filter(([, v]) => v !== 0n).map(([k, v]) => `${k} ${v}`).join(', '));
  } finally {
    if (stats !== null) native.closeFd(stats);
    native.closeObject(floor.handle);
    destroyInPlace();
    dp.close();
    Dataplane.removePins(PIN_ROOT);
  }
}

main();
