/**
 * Stage "scale": does xlb's per-packet cost stay flat with many VIPs and a
 * full conntrack table, and what does the control plane cost at that size.
 *
 * Data plane (method "cold": BPF_PROG_TEST_RUN repeat=1 on the XDP program,
 * median of the kernel-reported durations): established flow (cycling over
 * 1,000 established flows spread over the VIPs) and new flow (distinct
 * 5-tuples to random VIPs), at 1, 100 and 10,000 VIPs of 64 backends each,
 * and at 1 VIP with 1M live conntrack entries; ratios against 1 VIP with an
 * empty table from the same run (target ≤ 1.15×). Runs are interleaved.
 *
 * Control plane (the default table size M = 16381): time to apply 10,000
 * VIPs from empty (compile + writes), to change one backend of one VIP, and
 * the BPF map memory (memlock of every map, Maglev inner maps included) at
 * each size, and the OVN NB → kernel latency through the daemon (nb-latency.ts).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Dataplane, MAGLEV_MAPS } from '../src/dataplane.js';
import { compile } from '../src/compile.js';
import { validateConfig, withVip } from '../src/config.js';
import { applyCompiled } from '../src/writer.js';
import { Xlb, type ApplyReport } from '../src/xlb.js';
import { loadNative, type XlbNative } from '../src/native.js';
import { packageRoot } from '../src/paths.js';
import { parseIPv4 } from '../src/addr.js';
import { LAYOUT, XLB, encodeU32, maglevClassBytes } from '../src/layout.js';
import { figure, macOf, median, sh, shQuiet, percentile, round, tcpFrame, yieldToLoop, type Figure, type Progress, type Ratio, type StageResult } from './common.js';
import { nbToKernelLatencies } from './nb-latency.js';
import { IF_RX, IF_TX, NS_RX, NS_TX, buildInPlace, destroyInPlace, frameValue, sendLive } from './hotpath.js';
import { onCleanup } from './cleanup.js';

const PIN_ROOT = '/sys/fs/bpf/xlb-b-scale';
/** The control-plane instance's bookkeeping, and the veth (root namespace, no traffic) its switch port is. */
const STATE_DIR = '/run/xlb-b-scale';
const PORT = 'xlb-b-sa';
const PORT_PEER = 'xlb-b-sb';
const BACKENDS_PER_VIP = 64;

/** Cache line size assumed by memoryReadNs (x86-64). */
const LINE_BYTES = 64;

/**
 * This machine's cost of one dependent read of a random cache line in a
 * buffer of `bytes` (user space; 4 KiB pages, as BPF maps have, unless transparent huge pages are "always"): the lines
 * form one random cycle and each read's address is the previous read's value,
 * so no two reads overlap. Median of `runs` passes of `steps` reads. What a
 * per-packet path pays for each dependent read of data no cache holds (the
 * floor under the many-VIP figures).
 */
export function memoryReadNs(bytes: number, steps: number, runs: number): number[] {
  const stride = LINE_BYTES / 4;
  const lines = Math.floor(bytes / LINE_BYTES);
  const next = new Int32Array(lines * stride);
  const order = new Int32Array(lines);
  for (let i = 0; i < lines; i++) order[i] = i;
  for (let i = lines - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    const t = order[i]!;
    order[i] = order[j]!;
    order[j] = t;
  }
  for (let k = 0; k < lines; k++) next[order[k]! * stride] = order[(k + 1) % lines]! * stride;
  const out: number[] = [];
  let at = 0;
  for (let r = 0; r < runs; r++) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < steps; i++) at = next[at]!;
    out.push(Number(process.hrtime.bigint() - t0) / steps);
  }
  if (at < 0) throw new Error('unreachable'); // keeps the chase from being optimised away
  return out;
}

export interface ScaleOptions {
  quick: boolean;
  smoke: boolean;
  progress: Progress;
}

export const vipAddr = (i: number): string => `10.200.${i >> 8}.${i & 255}`;
/** VIP i's own pool of backends (10.X.Y.1-64, distinct per VIP); `shift` replaces the first by the next one up. */
const backendList = (i: number, shift = 0): string =>
  Array.from({ length: BACKENDS_PER_VIP }, (_, j) => `10.${1 + (i >> 8)}.${i & 255}.${j + 1 + shift}:8080`).join(',');

/** The VIP → backends maps of nVips VIPs in load balancers of perLb VIPs, built once per shape (a control plane keeps its objects). */
const baseVips = new Map<string, Array<Record<string, string>>>();

/** nVips VIPs in one load balancer, or (perLb) in load balancers of perLb VIPs each (OVN's one per service). */
export function scaleConfig(nVips: number, changedVip = -1, shift = 1, perLb = nVips, port = 'lo'): object {
  let base = baseVips.get(`${nVips}/${perLb}`);
  if (!base) {
    base = Array.from({ length: Math.ceil(nVips / perLb) }, () => ({}) as Record<string, string>);
    for (let i = 0; i < nVips; i++) base[Math.floor(i / perLb)]![`${vipAddr(i)}:80`] = backendList(i);
    // Frozen, as the daemon's API source keeps its objects (copy-on-write, never changed in place).
    for (const v of base) Object.freeze(v);
    baseVips.set(`${nVips}/${perLb}`, base);
  }
  const vips = [...base];
  const at = Math.floor(changedVip / perLb);
  // As PUT /v1/load-balancers/{name}/vips/{vip} builds it: a frozen shallow copy with that VIP's list replaced (withVip).
  if (changedVip >= 0) vips[at] = withVip(base[at]!, `${vipAddr(changedVip)}:80`, backendList(changedVip, shift));
  const names = vips.map((_, i) => (perLb === nVips ? 'scale' : `scale${i}`));
  return {
    load_balancers: vips.map((v, i) => ({ name: names[i], protocol: 'tcp', vips: v })),
    logical_switches: [{ name: 'sw', ports: [port], load_balancer: names }],
  };
}

/** VIPs per load balancer of the second shape of the control-plane measurement. */
const PER_LB = 100;
/** Backend changes applied (and put back) before the timed ones of each shape, not timed: the first changes
 *  after an apply from empty run Maglev's fill on this thread for the first time (tables from empty are
 *  built mostly by the worker), meet the collection of that apply's garbage, and run the write path
 *  before V8 has optimised it (its kernel-write part fell from ≈1.5 to ≈0.6 ms over the first 15 of 40
 *  changes in one process, 10,000 VIPs in load balancers of 100). The timed ones are the steady state. */
const WARMUP_CHANGES = 10;
/** Timed backend changes of each shape (a different VIP each, then put back): enough that a collection
 *  pausing one or two of them moves the median no more than it should. */
const TIMED_CHANGES = 11;

/** memlock of one fd, from fdinfo (bytes). */
function memlock(fd: number): number {
  try {
    const m = /memlock:\s+(\d+)/.exec(readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

/** The pages a kmalloc of `bytes` (over 8 KiB) takes: a power-of-two number of them. */
function kmallocPages(bytes: number): number {
  return 4096 * 2 ** Math.ceil(Math.log2(Math.ceil(bytes / 4096)));
}

/** BPF map memory of the data plane: every map plus every Maglev inner map. */
function mapMemory(dp: Dataplane): number {
  const n = dp.native;
  let total = 0;
  for (const fd of Object.values(dp.maps)) total += memlock(fd);
  const seen = new Set<number>(); // (removed VIPs' slots share their class's placeholder)
  for (const outer of MAGLEV_MAPS) {
    const d = n.mapDump(dp.maps[outer], 4, 4);
    for (let i = 0; i < d.count; i++) {
      const id = d.values.readUInt32LE(i * 4);
      if (seen.has(id)) continue;
      seen.add(id);
      const fd = n.mapGetFdById(id);
      try {
        // A byte-class table is a plain array of 22 KiB + its header, kmalloc'ed: whole pages of a power-of-two
        // order (32 KiB), more than memlock says.
        total += outer === MAGLEV_MAPS[XLB.MAGLEV_BYTE_CLASS] ? kmallocPages(memlock(fd)) : memlock(fd);
      } finally {
        n.closeFd(fd);
      }
    }
  }
  return total;
}

/** The established flows a case cycles over: up to 1,000 flows spread over `spread` VIPs, each
 *  opened (its SYN balanced by the XDP program) and confirmed by its backend's answer (an ACK
 *  on tc egress), as every real established flow is: it then lives in the established tier
 *  (xlb_ct4), where a packet of an established flow is looked up first, not in the new-flow
 *  tier. Made once per case, each case with clients of its own from `firstClient` on (a second
 *  SYN of the same 5-tuple would find its old entry). */
export function establishFlows(native: XlbNative, dp: Dataplane, samples: number, spread: number, ifindex: number, firstClient: number): Buffer[] {
  const flows: Buffer[] = [];
  const nFlows = Math.min(1000, samples);
  const promoted = dp.globalCounters().ct_promoted;
  for (let k = 0; k < nFlows; k++) {
    const vip = parseIPv4(vipAddr((k * 7919) % spread));
    const client = firstClient + k;
    const syn = native.progTestRun(dp.progs.xlb_xdp_ingress, { data: tcpFrame(client, vip, 40000, 80, 0x02), ifindex, repeat: 1 }).data;
    const backend = syn.readUInt32BE(14 + 16);
    const backendPort = syn.readUInt16BE(14 + 20 + 2);
    native.progTestRun(dp.progs.xlb_tc_egress, { data: tcpFrame(backend, client, backendPort, 40000, 0x10), ifindex, repeat: 1 });
    flows.push(tcpFrame(client, vip, 40000, 80, 0x10));
  }
  const confirmed = dp.globalCounters().ct_promoted - promoted;
  if (confirmed !== BigInt(nFlows)) throw new Error(`scale: ${confirmed} of ${nFlows} flows were confirmed into the established conntrack tier`);
  return flows;
}

/** Cold per-packet medians (ns) of the XDP program: established flows (`flows`, establishFlows)
 *  and new flows over `spread` VIPs. */
function perPacket(
  native: XlbNative,
  dp: Dataplane,
  flows: readonly Buffer[],
  samples: number,
  seed: { port: number },
  spread: number,
  ifindex = 1,
): { est: number; neu: number } {
  const run = (data: Buffer): number => native.progTestRun(dp.progs.xlb_xdp_ingress, { data, ifindex, repeat: 1 }).duration;
  // Each path on a stream of its own, as the in-place method sends them: a new flow to a random
  // one of many VIPs between two packets of established flows would evict what they read.
  const est: number[] = [];
  for (let i = 0; i < samples; i++) est.push(run(flows[i % flows.length]));
  const neu: number[] = [];
  for (let i = 0; i < samples; i++) {
    const p = seed.port++;
    const vip = parseIPv4(vipAddr(Math.floor(Math.random() * spread)));
    neu.push(run(tcpFrame(parseIPv4('172.20.0.0') + (p >>> 16), vip, (p & 0xffff) || 1, 80, 0x02)));
  }
  return { est: median(est), neu: median(neu) };
}

/** Fills conntrack with n entries of made-up flows (100.64.0.0/10 clients); returns the
 *  milliseconds each of `rebuilds` rebuilds of the established tier's key filter then took
 *  (the same full table each time). */
export function fillConntrack(native: XlbNative, dp: Dataplane, n: number, rebuilds: number): number[] {
  const ks = LAYOUT.xlb_ct4_key.size;
  const vs = LAYOUT.xlb_ct4_val.size;
  const chunk = 65536;
  for (let done = 0; done < n; done += chunk) {
    const c = Math.min(chunk, n - done);
    const keys = Buffer.alloc(c * ks);
    const vals = Buffer.alloc(c * vs);
    for (let i = 0; i < c; i++) {
      const x = done + i;
      keys.writeUInt32BE((0x64400000 + (x >>> 8)) >>> 0, i * ks); // src
      keys.writeUInt32BE(parseIPv4(vipAddr(0)) >>> 0, i * ks + 4); // dst
      keys.writeUInt16BE(1024 + (x & 0xff), i * ks + 8);
      keys.writeUInt16BE(80, i * ks + 10);
      keys[i * ks + 12] = 6;
    }
    native.mapUpdateBatch(dp.maps.xlb_ct4, keys, vals, c, 0);
  }
  // Written from user space: the filter of the established tier's keys learns them by a rebuild.
  const ms: number[] = [];
  for (let r = 0; r < rebuilds; r++) {
    const t0 = performance.now();
    const marked = dp.ct4SeenRebuild();
    ms.push(performance.now() - t0);
    if (marked !== n) throw new Error(`conntrack filter rebuild marked ${marked} keys of ${n}`);
  }
  return ms;
}

/** bench.bpf.c BENCH_CYCLE_MAX: frames bench_xdp_tx_cycle cycles over. */
export const CYCLE_MAX = 4096;

/** New-flow SYNs to random ones of `spread` VIPs (4 a VIP, at most CYCLE_MAX), a source port each. */
export function newFlowFrames(spread: number, mac: { src?: Buffer; dst?: Buffer } = {}): Buffer[] {
  return Array.from({ length: Math.min(CYCLE_MAX, Math.max(spread, 1) * 4) }, (_, i) =>
    tcpFrame(parseIPv4('10.128.0.0'), parseIPv4(vipAddr(spread <= 1 ? 0 : Math.floor(Math.random() * spread))), 1024 + i, 80, 0x02, mac),
  );
}

/** Loads the frames bench_xdp_tx_cycle sends (bench.bpf.c's bench_cycle and bench_cycle_ctl, by fd);
 *  `fresh`: a fresh source per frame (new flows). */
export function loadCycle(native: XlbNative, cycleFd: number, ctlFd: number, set: readonly Buffer[], fresh: boolean): void {
  const n = Math.min(set.length, CYCLE_MAX);
  for (let i = 0; i < n; i++) native.mapUpdate(cycleFd, encodeU32(i), frameValue(set[i]!));
  const c = Buffer.alloc(8);
  c.writeUInt32LE(n, 0);
  c.writeUInt32LE(fresh ? 1 : 0, 4);
  native.mapUpdate(ctlFd, encodeU32(0), c);
}

/** One case of the in-place per-packet measurement. */
interface InPlaceCase {
  name: string;
  dp: Dataplane;
  /** the ifindex whose xlb_ifaces entry (VIPs served there) the receiving veth gets */
  ifindex: number;
  /** established flows' frames (establishFlows) */
  flows: readonly Buffer[];
  /** VIPs new flows go to: 0 .. spread - 1 */
  spread: number;
}

/**
 * The per-packet cost in place (as the hotpath stage's in-place method): each
 * case's XDP program attached in native mode to the receiving end of a veth
 * in NS_RX, fed live frames from NS_TX by bench_xdp_tx_cycle, which cycles
 * over the case's frames: its established flows, or (a fresh source per
 * frame) new flows to up to CYCLE_MAX random VIPs. Cost = Δrun_time_ns /
 * Δrun_cnt with run-time stats on; every frame must count ct_hit (established)
 * or new_flow (new), else the run is not used. Cases and paths interleaved run
 * by run. The receiving veth serves what the case's own port serves: its
 * xlb_ifaces entry is copied to the veth's ifindex.
 */
function inPlacePerPacket(
  native: XlbNative,
  cases: readonly InPlaceCase[],
  frames: number,
  runs: number,
  tick: (what: string) => void,
): { est: number[][]; neu: number[][]; lost: number[][] } {
  const floor = native.openObject(join(packageRoot(), 'build', 'bpf', 'bench.bpf.o'), {});
  const fdOf = (kind: 'programs' | 'maps', name: string): number => {
    const x = (floor[kind] as Array<{ name: string; fd: number }>).find((m) => m.name === name);
    if (!x) throw new Error(`bench.bpf.o has no ${name}: run \`npm run build:bpf\``);
    return x.fd;
  };
  const rxIdx = (): number => native.ifNameToIndex(NS_RX, IF_RX);
  const ifaceSize = LAYOUT.xlb_iface.size;
  let statsFd: number | null = null;
  const copied: Array<{ dp: Dataplane; key: Buffer }> = [];
  try {
    destroyInPlace();
    buildInPlace();
    // Balanced frames leave for their backends (10.1.0.0 – 10.40.255.255): dropped in NS_RX.
    sh('ip', ['-n', NS_RX, 'route', 'add', 'blackhole', '10.0.0.0/8']);
    const rx = rxIdx();
    const txIdx = native.ifNameToIndex(NS_TX, IF_TX);
    const mac = { src: macOf(NS_TX, IF_TX), dst: macOf(NS_RX, IF_RX) };
    const withMacs = (f: Buffer): Buffer => {
      const g = Buffer.from(f);
      mac.dst.copy(g, 0);
      mac.src.copy(g, 6);
      return g;
    };
    for (const c of cases) {
      const key = encodeU32(rx);
      const v = native.mapLookup(c.dp.maps.xlb_ifaces, encodeU32(c.ifindex), ifaceSize);
      if (!v) throw new Error(`scale in place: ${c.name} serves nothing on ifindex ${c.ifindex}`);
      if (!copied.some((x) => x.dp === c.dp)) {
        // (an array: an ifindex no port has reads as zeros)
        const had = native.mapLookup(c.dp.maps.xlb_ifaces, key, ifaceSize);
        if (had && had.some((b) => b !== 0)) throw new Error(`scale in place: ifindex ${rx} is already a port of ${c.name}'s data plane`);
        native.mapUpdate(c.dp.maps.xlb_ifaces, key, v);
        copied.push({ dp: c.dp, key });
      }
    }
    const sender = fdOf('programs', 'bench_xdp_tx_cycle');
    const cycle = fdOf('maps', 'bench_cycle');
    const ctl = fdOf('maps', 'bench_cycle_ctl');
    const load = (set: readonly Buffer[], fresh: boolean): void => loadCycle(native, cycle, ctl, set, fresh);
    const estSets = cases.map((c) => c.flows.map(withMacs));
    const newSets = cases.map((c) => newFlowFrames(c.spread).map(withMacs));
    statsFd = native.enableStats();
    const est = cases.map(() => [] as number[]);
    const neu = cases.map(() => [] as number[]);
    const lost = cases.map(() => [0, 0]);
    for (let r = 0; r < runs; r++) {
      cases.forEach((c, i) => {
        native.xdpAttach(NS_RX, rx, c.dp.progs.xlb_xdp_ingress, 'native');
        try {
          for (const [path, set, out, counter, fresh] of [
            ['est', estSets[i]!, est[i]!, 'ct_hit', false],
            ['new', newSets[i]!, neu[i]!, 'new_flow', true],
          ] as const) {
            load(set, fresh);
            const g0 = c.dp.globalCounters()[counter];
            const { cnt, ns } = sendLive(native, txIdx, sender, set[0]!, frames, c.dp.progs.xlb_xdp_ingress);
            const onPath = Number(c.dp.globalCounters()[counter] - g0);
            // A run counts only when every frame the program saw took the path measured.
            if (cnt > 0 && onPath >= cnt) out.push(ns / cnt);
            else lost[i]![path === 'est' ? 0 : 1]! += 1;
          }
        } finally {
          native.xdpDetach(NS_RX, rx, 'native');
        }
        tick(`in place: ${c.name}`);
      });
    }
    return { est, neu, lost };
  } finally {
    if (statsFd !== null) native.closeFd(statsFd);
    for (const x of copied) {
      try {
        native.mapUpdate(x.dp.maps.xlb_ifaces, x.key, Buffer.alloc(ifaceSize));
      } catch {
        // the data plane may be closed already
      }
    }
    native.closeObject(floor.handle);
    destroyInPlace();
  }
}

export async function runScale(opts: ScaleOptions): Promise<StageResult> {
  const native = loadNative();
  const bigVips = opts.smoke ? 200 : opts.quick ? 1000 : 10_000;
  const ctEntries = opts.smoke ? 20_000 : opts.quick ? 200_000 : 1_000_000;
  const samples = opts.smoke ? 100 : opts.quick ? 500 : 3000;
  /** frames per in-place run (as the hotpath stage's) */
  const frames = opts.smoke ? 2_000 : opts.quick ? 20_000 : 300_000;
  const runs = opts.smoke ? 1 : opts.quick ? 2 : 5;
  /** timed backend changes of each shape */
  const nChanges = Math.max(TIMED_CHANGES, runs);
  const sizes = [1, 100, bigVips];
  const bar = opts.progress.bar('scale', 5 + runs * (2 * sizes.length + 6));
  const notes: string[] = [];
  const figs: Figure[] = [];
  const ratios: Ratio[] = [];
  const ifindex = new Map([['lo', 1]]);
  const seed = { port: 1024 };

  // The control plane is measured as users drive it: Xlb.apply (validate → compile → diff →
  // write → attach → save the bookkeeping), on a veth in the root namespace that carries no traffic.
  const open = (): Xlb => {
    Xlb.reset({ pinRoot: PIN_ROOT, stateDir: STATE_DIR });
    return Xlb.open({
      pinRoot: PIN_ROOT,
      stateDir: STATE_DIR,
      mapSizes: { vips: 16384, backends: bigVips * BACKENDS_PER_VIP + 1024, conntrack: 1 << 21 },
    });
  };
  let x: Xlb | null = null;
  const unregister = onCleanup(() => {
    x?.close();
    Xlb.reset({ pinRoot: PIN_ROOT, stateDir: STATE_DIR });
    shQuiet('ip', ['link', 'del', PORT]);
    shQuiet('rm', ['-rf', STATE_DIR]);
  });
  try {
    shQuiet('ip', ['link', 'del', PORT]);
    sh('ip', ['link', 'add', PORT, 'type', 'veth', 'peer', 'name', PORT_PEER]);
    sh('ip', ['link', 'set', PORT, 'up']);
    const portIndex = native.ifNameToIndex(null, PORT);
    // ---- control plane: apply bigVips from empty, change one backend, memory per size ----
    x = open();
    let dp = x.dataplane;
    const mem: Record<number, number> = {};
    // One Xlb.apply; a backend removal it deferred past a grace period (Xlb runs it
    // on a timer or at the next apply) is run and timed apart.
    const applyTimed = (
      nVips: number,
      changed = -1,
      shift = 1,
      perLb = nVips,
    ): { validateMs: number; compileMs: number; writeMs: number; saveMs: number; totalMs: number; writes: number; patched: number; reclaimMs: number } => {
      const raw = scaleConfig(nVips, changed, shift, perLb, PORT);
      const r: ApplyReport = x!.apply(raw);
      const r0 = process.hrtime.bigint();
      const reclaimed = x!.reclaim();
      const reclaimMs = reclaimed > 0 ? Number(process.hrtime.bigint() - r0) / 1e6 : NaN;
      const d = r.durationsMs;
      return {
        validateMs: d.validate,
        compileMs: d.compile,
        writeMs: d.write + d.attach,
        saveMs: d.save,
        totalMs: d.total,
        writes: r.summary.writes,
        patched: r.summary.tables.patched,
        reclaimMs,
      };
    };
    for (const n of sizes.slice(0, -1)) {
      applyTimed(n);
      mem[n] = mapMemory(dp);
    }
    x.close();
    // Apply from empty, runs times, each on fresh maps, interleaved: the VIPs in load balancers
    // of PER_LB (one per service, as OVN has them), then in one load balancer. The last run of
    // each stays for the backend changes: in load balancers of PER_LB a change arrives in one of
    // PER_LB VIPs and the others are skipped as a whole.
    const bigPerLbRuns: Array<ReturnType<typeof applyTimed>> = [];
    const bigRuns: Array<ReturnType<typeof applyTimed>> = [];
    const changesPerLb: Array<ReturnType<typeof applyTimed>> = [];
    let empty = 0;
    for (let r = 0; r < runs; r++) {
      x = open();
      bigPerLbRuns.push(applyTimed(bigVips, -1, 1, PER_LB));
      if (r === runs - 1) {
        for (let w = 0; w < WARMUP_CHANGES; w++) {
          applyTimed(bigVips, w + 1, 1, PER_LB);
          applyTimed(bigVips, -1, 1, PER_LB);
        }
        for (let c = 0; c < nChanges; c++) {
          const vip = Math.floor(((c + 0.5) * bigVips) / nChanges);
          changesPerLb.push(applyTimed(bigVips, vip, 1, PER_LB));
          applyTimed(bigVips, -1, 1, PER_LB);
        }
      }
      x.close();
      bar.tick(`${bigVips} VIPs in load balancers of ${PER_LB}, run ${r + 1}`);
      await yieldToLoop(); // a signal is handled here (bench/common.ts)
      x = open();
      dp = x.dataplane;
      empty = mapMemory(dp);
      bigRuns.push(applyTimed(bigVips));
      bar.tick(`apply ${bigVips} VIPs from empty, run ${r + 1}`);
      await yieldToLoop(); // a signal is handled here (bench/common.ts)
      if (r < runs - 1) x.close();
    }
    const big = bigRuns[bigRuns.length - 1]!;
    const bigPerLb = bigPerLbRuns[bigPerLbRuns.length - 1]!;
    mem[bigVips] = mapMemory(dp);
    for (let w = 0; w < WARMUP_CHANGES; w++) {
      applyTimed(bigVips, w + 1, 1);
      applyTimed(bigVips);
    }
    // One backend of one VIP changed, nChanges times (a different VIP each time, then put back).
    const changes: Array<ReturnType<typeof applyTimed>> = [];
    for (let r = 0; r < nChanges; r++) {
      const vip = Math.floor(((r + 0.5) * bigVips) / nChanges);
      changes.push(applyTimed(bigVips, vip, 1));
      applyTimed(bigVips);
    }
    bar.tick('change one backend');
    await yieldToLoop(); // a signal is handled here (bench/common.ts)
    const cm = (f: (x: (typeof changes)[number]) => number): number[] => changes.map(f);
    const change = changes[0]!;
    const bm = (f: (x: (typeof bigRuns)[number]) => number): number[] => bigRuns.map(f);
    const bigTotal = median(bm((x) => x.totalMs));
    figs.push(figure('scale', 'control plane', `apply ${bigVips} VIPs from empty: total`, 'ms', bm((x) => x.totalMs), { note: `${big.writes} map writes; target ≤ 5000 ms at 10,000 VIPs` }));
    figs.push(figure('scale', 'control plane', `apply ${bigVips} VIPs from empty: validate`, 'ms', bm((x) => x.validateMs)));
    figs.push(figure('scale', 'control plane', `apply ${bigVips} VIPs from empty: compile (Maglev tables on 2 threads)`, 'ms', bm((x) => x.compileMs)));
    figs.push(figure('scale', 'control plane', `apply ${bigVips} VIPs from empty: kernel writes + attach`, 'ms', bm((x) => x.writeMs)));
    figs.push(figure('scale', 'control plane', `apply ${bigVips} VIPs from empty: saving the bookkeeping (snapshot)`, 'ms', bm((x) => x.saveMs)));
    figs.push(
      figure('scale', 'control plane', `change one backend of one VIP (of ${bigVips}): total`, 'ms', cm((x) => x.totalMs), {
        note: `${change.writes} map writes (${change.patched} table rewritten in place); target ≤ 5 ms, only that VIP's table rewritten`,
      }),
    );
    figs.push(figure('scale', 'control plane', `change one backend of one VIP (of ${bigVips}): validate`, 'ms', cm((x) => x.validateMs)));
    figs.push(figure('scale', 'control plane', `change one backend of one VIP (of ${bigVips}): compile`, 'ms', cm((x) => x.compileMs)));
    figs.push(figure('scale', 'control plane', `change one backend of one VIP (of ${bigVips}): diff + kernel writes + attach`, 'ms', cm((x) => x.writeMs)));
    figs.push(figure('scale', 'control plane', `change one backend of one VIP (of ${bigVips}): saving the bookkeeping (journal)`, 'ms', cm((x) => x.saveMs)));
    const nLbs = Math.ceil(bigVips / PER_LB);
    const perLbTotal = changesPerLb.map((x) => x.totalMs);
    const pm = (f: (x: (typeof bigPerLbRuns)[number]) => number): number => round(median(bigPerLbRuns.map(f)), 0);
    figs.push(
      figure('scale', 'control plane', `apply ${bigVips} VIPs in ${nLbs} load balancers from empty: total`, 'ms', bigPerLbRuns.map((x) => x.totalMs), {
        note: `medians: validate ${pm((x) => x.validateMs)} ms, compile ${pm((x) => x.compileMs)} ms, kernel writes + attach ${pm((x) => x.writeMs)} ms, saving the bookkeeping ${pm((x) => x.saveMs)} ms`,
      }),
    );
    figs.push(
      figure('scale', 'control plane', `change one backend of one VIP (of ${bigVips}, in ${nLbs} load balancers of ${PER_LB}): total`, 'ms', perLbTotal, {
        note: `${changesPerLb[0]!.writes} map writes (${changesPerLb[0]!.patched} table rewritten in place); target ≤ 5 ms`,
      }),
    );
    figs.push(figure('scale', 'control plane', `change one backend of one VIP (of ${bigVips}, in ${nLbs} load balancers of ${PER_LB}): validate`, 'ms', changesPerLb.map((x) => x.validateMs)));
    figs.push(figure('scale', 'control plane', `change one backend of one VIP (of ${bigVips}, in ${nLbs} load balancers of ${PER_LB}): compile`, 'ms', changesPerLb.map((x) => x.compileMs)));
    figs.push(figure('scale', 'control plane', `change one backend of one VIP (of ${bigVips}, in ${nLbs} load balancers of ${PER_LB}): diff + kernel writes + attach`, 'ms', changesPerLb.map((x) => x.writeMs)));
    figs.push(figure('scale', 'control plane', `change one backend of one VIP (of ${bigVips}, in ${nLbs} load balancers of ${PER_LB}): saving the bookkeeping (journal)`, 'ms', changesPerLb.map((x) => x.saveMs)));
    figs.push(
      figure('scale', 'control plane', 'removed backend deleted after a grace period (deferred, off the apply path)', 'ms', cm((x) => x.reclaimMs), {
        note: 'one RCU wait (an outer map-in-map write) and the delete',
      }),
    );
    const nbPerRound = opts.smoke ? 5 : opts.quick ? 30 : 200;
    const nb = await nbToKernelLatencies(nbPerRound, runs);
    const nbNote = `per run: ${nbPerRound} ovn-nbctl lb-add into a fresh load balancer, each timed from its commit to the VIP in the kernel (xlb daemon --ovn-nb), and that run's percentile`;
    const nbP99 = nb.map((xs) => percentile(xs, 99));
    figs.push(figure('scale', 'control plane', 'OVN NB change → kernel, p50', 'ms', nb.map((xs) => percentile(xs, 50)), { note: nbNote }));
    figs.push(figure('scale', 'control plane', 'OVN NB change → kernel, p99', 'ms', nbP99, { note: `${nbNote}; target p99 ≤ 100 ms` }));
    bar.tick('NB → kernel');
    figs.push(figure('scale', 'BPF map memory', 'empty (maps as sized for this stage)', 'MiB', [empty / 2 ** 20]));
    for (const n of sizes) figs.push(figure('scale', 'BPF map memory', `${n} VIPs × ${BACKENDS_PER_VIP} backends, M = 16381`, 'MiB', [mem[n] / 2 ** 20]));
    figs.push(figure('scale', 'BPF map memory', `conntrack map alone (${1 << 21} entries, preallocated)`, 'MiB', [memlock(dp.maps.xlb_ct4) / 2 ** 20]));
    bar.tick('memory');
    await yieldToLoop(); // a signal is handled here (bench/common.ts)

    // ---- data plane: per-packet cost at each size, and 1 VIP + a full conntrack table ----
    // Two data planes side by side: A steps through 1 → 100 → bigVips... would re-apply each
    // run, so instead: dp (bigVips applied), small (1 VIP, then 100 VIPs), ct (1 VIP + entries).
    const bigDp = dp;
    let rebuildMs: number[] = [];
    const mk = (n: number, ct = 0): Dataplane => {
      const pin = `${PIN_ROOT}-${n}-${ct}`;
      Dataplane.removePins(pin);
      const d = Dataplane.open({ pinRoot: pin, mapSizes: { vips: 16384, backends: n * BACKENDS_PER_VIP + 1024, conntrack: 1 << 21 } });
      applyCompiled(d.store(), compile(validateConfig(scaleConfig(n))), ifindex);
      if (ct) rebuildMs = fillConntrack(native, d, ct, runs);
      return d;
    };
    const one = mk(1);
    const hundred = mk(100);
    const full = mk(1, ctEntries);
    const extra = [one, hundred, full];
    onCleanup(() => {
      for (const d of extra) {
        d.close();
        Dataplane.removePins(d.pinRoot);
      }
    });
    bar.tick(`conntrack filled (${ctEntries})`);
    await yieldToLoop(); // a signal is handled here (bench/common.ts)
    figs.push(
      figure('scale', 'control plane', `rebuild the established tier's key filter (${ctEntries} entries)`, 'ms', rebuildMs, {
        note: 'xlb_ct4_seen_rebuild (bpf/lib/ctseen.h), run after each garbage collection',
      }),
    );
    // The last case separates the program from the memory it touches: the
    // same 10,000-VIP maps, every flow to one VIP (one table, one set of counters).
    // (the big data plane is Xlb's: its VIPs are served on PORT)
    const cases: Array<{ name: string; dp: Dataplane; n: number; spread?: number; ifindex?: number }> = [
      { name: '1 VIP, empty conntrack', dp: one, n: 1 },
      { name: '100 VIPs', dp: hundred, n: 100 },
      { name: `${bigVips} VIPs`, dp: bigDp, n: bigVips, ifindex: portIndex },
      { name: `1 VIP, ${ctEntries} live conntrack entries`, dp: full, n: 1 },
      { name: `${bigVips} VIPs, every flow to one of them`, dp: bigDp, n: bigVips, spread: 1, ifindex: portIndex },
    ];
    const est = cases.map(() => [] as number[]);
    const neu = cases.map(() => [] as number[]);
    const flows = cases.map((c, i) => establishFlows(native, c.dp, samples, c.spread ?? c.n, c.ifindex ?? 1, parseIPv4('192.168.0.0') + 1 + i * 4096));
    for (let r = 0; r < runs; r++) {
      await yieldToLoop(); // a signal is handled here (bench/common.ts)
      cases.forEach((c, i) => {
        const p = perPacket(native, c.dp, flows[i]!, samples, seed, c.spread ?? c.n, c.ifindex);
        est[i].push(p.est);
        neu[i].push(p.neu);
        bar.tick(c.name);
      });
    }
    cases.forEach((c, i) => {
      figs.push(figure('scale', 'xdp cold: established flow', c.name, 'ns', est[i], { note: `median of ${samples} test runs per run` }));
    });
    cases.forEach((c, i) => {
      figs.push(figure('scale', 'xdp cold: new flow', c.name, 'ns', neu[i], { note: `median of ${samples} test runs per run` }));
    });
    const live = inPlacePerPacket(
      native,
      cases.map((c, i) => ({ name: c.name, dp: c.dp, ifindex: c.ifindex ?? 1, flows: flows[i]!, spread: c.spread ?? c.n })),
      frames,
      runs,
      bar.tick,
    );
    const liveNote = (path: string): string => `Δrun_time_ns/Δrun_cnt; ${frames} frames per run, every one counted ${path} (runs where not: lost)`;
    cases.forEach((c, i) => {
      figs.push(figure('scale', 'xdp in place: established flow', c.name, 'ns', live.est[i]!, { note: liveNote('ct_hit'), lost: live.lost[i]![0] }));
    });
    cases.forEach((c, i) => {
      figs.push(figure('scale', 'xdp in place: new flow', c.name, 'ns', live.neu[i]!, { note: liveNote('new_flow'), lost: live.lost[i]![1] }));
    });
    // The floor under the many-VIP figures: what one dependent read of a line no cache holds
    // costs here, in as much memory as the big data plane's Maglev tables, and in one table (cached).
    // (a table of M = 16381 and 64 backends is of the byte class: 22 KiB, a byte per slot)
    const tableBytes = maglevClassBytes(XLB.MAGLEV_BYTE_CLASS);
    const readSteps = opts.smoke ? 20_000 : opts.quick ? 200_000 : 1_000_000;
    const readRuns = Math.max(runs, 3);
    const tableRead = memoryReadNs(bigVips * tableBytes, readSteps, readRuns);
    const oneRead = memoryReadNs(tableBytes, readSteps, readRuns);
    bar.tick('memory reads');
    const mib = (bytes: number): number => round(bytes / 2 ** 20, 0);
    // (the buffers are plain memory: 4 KiB pages unless transparent huge pages are "always")
    const thp = /\[(\w+)\]/.exec(readFileSync('/sys/kernel/mm/transparent_hugepage/enabled', 'utf8'))?.[1] ?? 'unknown';
    const readNote = `${readSteps} reads per run, each address the previous read's value; transparent huge pages: ${thp}`;
    figs.push(
      figure('scale', 'memory floor (user space)', `one dependent read of a random line in ${mib(bigVips * tableBytes)} MiB (the ${bigVips} VIPs' Maglev tables)`, 'ns', tableRead, { note: readNote }),
      figure('scale', 'memory floor (user space)', `one dependent read of a random line in ${round(tableBytes / 1024, 0)} KiB (one VIP's table)`, 'ns', oneRead, { note: readNote }),
    );
    const m = (xs: number[]): number => median(xs);
    // A new flow to a random one of bigVips VIPs reads its VIP's Maglev slot, then the record at
    // the slot's position in the same table (its backend: lib/maglev.h; the SYN's prefetch loads
    // the records with the slot; its counter row is not on the path: the flow log,
    // bpf/lib/stats.h): at least one dependent read of a line no cache holds on top of what the
    // 1-VIP path does (there it hits the cache, as the one-table read does).
    const missNs = m(tableRead) - m(oneRead);
    ratios.push({
      stage: 'scale',
      what: `new flow, ${bigVips} VIPs: estimated floor (1 VIP/empty + a table slot's dependent read) ÷ 1 VIP/empty`,
      value: round((m(neu[0]) + missNs) / m(neu[0]), 3),
      note: 'an estimate from user-space reads: the least a design reading per-VIP tables of M = 16381 one-byte slots can reach here',
    });
    cases.slice(1).forEach((c, i) => {
      ratios.push({ stage: 'scale', what: `cold: established flow: ${c.name} ÷ 1 VIP/empty`, value: round(m(est[i + 1]) / m(est[0]), 3), target: '≤ 1.15' });
      ratios.push({ stage: 'scale', what: `cold: new flow: ${c.name} ÷ 1 VIP/empty`, value: round(m(neu[i + 1]) / m(neu[0]), 3), target: '≤ 1.15' });
    });
    const liveRatio = (xs: number[][], i: number): number | null => (xs[i]!.length && xs[0]!.length ? round(m(xs[i]!) / m(xs[0]!), 3) : null);
    cases.slice(1).forEach((c, i) => {
      ratios.push({ stage: 'scale', what: `in place: established flow: ${c.name} ÷ 1 VIP/empty`, value: liveRatio(live.est, i + 1), target: '≤ 1.15' });
      ratios.push({ stage: 'scale', what: `in place: new flow: ${c.name} ÷ 1 VIP/empty`, value: liveRatio(live.neu, i + 1), target: '≤ 1.15' });
    });
    ratios.push({ stage: 'scale', what: `apply ${bigVips} VIPs from empty (ms, median)`, value: round(bigTotal, 1), target: '≤ 5000 at 10,000 VIPs' });
    ratios.push({ stage: 'scale', what: 'change one backend of one VIP (ms, median)', value: round(median(cm((x) => x.totalMs)), 2), target: '≤ 5' });
    ratios.push({ stage: 'scale', what: `change one backend of one VIP, load balancers of ${PER_LB} VIPs (ms, median)`, value: round(median(perLbTotal), 2), target: '≤ 5' });
    ratios.push({ stage: 'scale', what: 'OVN NB change → kernel p99 (ms, median of the runs)', value: round(median(nbP99), 1), target: '≤ 100' });
    notes.push(
      `per-packet: method cold (BPF_PROG_TEST_RUN repeat=1, XDP program), ${samples} packets per case per run, ${runs} run(s) interleaved; each path on a stream of its own: established flows (each confirmed by its backend's answer, so in the established tier) cycle over up to 1,000 flows spread over the VIPs, then new flows go to random VIPs`,
      `per-packet in place: each case's XDP program native on a veth in netns ${NS_RX} (its port's VIPs served there), fed live frames (BPF_F_TEST_XDP_LIVE_FRAMES, XDP_TX) from ${NS_TX} by bench_xdp_tx_cycle: the case's established flows in turn, or new flows (a fresh source per frame) to up to ${CYCLE_MAX} random VIPs of the case; ${frames} frames per run, cases and paths interleaved; cost = Δrun_time_ns/Δrun_cnt with run-time stats on (bpf_enable_stats)`,
      `VIPs have ${BACKENDS_PER_VIP} backends each and the default Maglev size M = 16381; conntrack entries are made-up flows written with bpf_map_update_batch (the LRU table holds ${1 << 21})`,
      `control plane: Xlb.apply as users call it (validate → compile reusing unchanged VIPs → diff against the compile the kernel holds → write → attach → save the bookkeeping: a snapshot from empty, a journal line per change), the switch port a veth in the root namespace carrying no traffic; each VIP has its own pool of ${BACKENDS_PER_VIP} backends; the VIPs in one load balancer and (on fresh maps) in load balancers of ${PER_LB} on one switch; apply from empty ${runs} time(s) each way on fresh maps, interleaved, a backend change ${nChanges} (each on another VIP, put back in between; ${WARMUP_CHANGES} changes before them not timed)`,
      "memory: memlock reported in /proc/self/fdinfo for every map and every Maglev inner map; a byte-class table (kmalloc'ed) at the pages it takes: 32 KiB",
    );
    if (bigVips !== 10_000) notes.push(`this pass uses ${bigVips} VIPs in place of 10,000 (--quick/--smoke)`);
    bar.done();
    return { figures: figs, ratios, notes };
  } finally {
    unregister();
    x?.close();
    Xlb.reset({ pinRoot: PIN_ROOT, stateDir: STATE_DIR });
    shQuiet('ip', ['link', 'del', PORT]);
    shQuiet('rm', ['-rf', STATE_DIR]);
    for (const n of [1, 100]) Dataplane.removePins(`${PIN_ROOT}-${n}-0`);
    Dataplane.removePins(`${PIN_ROOT}-1-${ctEntries}`);
  }
}
