/**
 * Stage "hotpath": per-packet cost of xlb's paths next to floor programs on
 * the same hook, by two methods.
 *
 * "cold": BPF_PROG_TEST_RUN with repeat = 1, once per packet, over many
 * packets; median of the kernel-reported durations, xlb and the no-op
 * interleaved on the same packets. (repeat > 1 would re-run the program on its
 * own rewritten output.) Includes each test run's fixed cost.
 *
 * "in place": the program attached to the receiving end of a veth pair in a
 * namespace (XDP native mode, or tc), fed from the other namespace by
 * BPF_PROG_TEST_RUN with BPF_F_TEST_XDP_LIVE_FRAMES of a one-line XDP_TX
 * program on the sender's end (bench.bpf.c), so each frame is really received
 * by the veth's NAPI loop. The cost is the kernel's own accounting with
 * run-time stats on (bpf_enable_stats, i.e. kernel.bpf_stats_enabled):
 * Δrun_time_ns / Δrun_cnt of the program under test.
 *
 * Paths: established flow, new flow (distinct 5-tuples: the sender rewrites the
 * source of every frame), non-LB traffic, the reply (reverse NAT) on tc egress;
 * floors: a no-op XDP program and a MAC-swap XDP_TX program, and a tc no-op,
 * all in the same run, configurations interleaved run by run.
 */
import { join } from 'node:path';
import { readFileSync } from 'node:fs';
import { Dataplane } from '../src/dataplane.js';
import { compile } from '../src/compile.js';
import { validateConfig } from '../src/config.js';
import { applyCompiled } from '../src/writer.js';
import { loadNative, type XlbNative } from '../src/native.js';
import { packageRoot } from '../src/paths.js';
import { parseIPv4 } from '../src/addr.js';
import { PREFIX, figure, macOf, median, round, sh, shQuiet, nsSh, tcpFrame, type Figure, type Progress, type Ratio, type StageResult } from './common.js';

const PIN_ROOT = '/sys/fs/bpf/xlb-b-hotpath';
/** bench.bpf.c BENCH_FRAME_LEN: the frames' length (tcpFrame), restored by the senders */
export const TMPL_FRAME_LEN = 64;
export const NS_TX = `${PREFIX}tx`;
export const NS_RX = `${PREFIX}rx`;
export const IF_TX = `${PREFIX}s`;
export const IF_RX = `${PREFIX}r`;
const IF_DUMMY = `${PREFIX}d`;
const IF_SINK = `${PREFIX}k`;

/** Reference figures from issue 5 (2 vCPU VM, method in place, medians; Katran is not built here). */
export const REFERENCE = {
  noopNs: 26.0,
  macswapNs: 28.7,
  katranEstablishedNs: 131.9,
  katranNewFlowNs: 784,
} as const;

export interface HotpathOptions {
  quick: boolean;
  progress: Progress;
}

const CLIENT = parseIPv4('192.168.0.1');
const VIP = parseIPv4('10.0.0.1');
const NOT_LB = parseIPv4('10.0.0.9');

export function hotpathConfig(extraPorts: string[] = []): object {
  const backends = Array.from({ length: 16 }, (_, i) => `10.1.0.${i + 1}:8080`).join(',');
  return {
    load_balancers: [{ name: 'bench', protocol: 'tcp', vips: { '10.0.0.1:80': backends } }],
    logical_switches: [{ name: 'sw', ports: ['lo', ...extraPorts], load_balancer: ['bench'] }],
  };
}

function progFd(obj: { programs: Array<{ name: string; fd: number }> }, name: string): number {
  const p = obj.programs.find((x) => x.name === name);
  if (!p) throw new Error(`bench.bpf.o has no program ${name}: run \`npm run build:bpf\``);
  return p.fd;
}

/** The cold method's established flow's client port (the in-place method's is 40000). */
const COLD_SPORT = 39000;

/** A flow from CLIENT:sport to the VIP confirmed by its backend's answer (an ACK
 *  on tc egress), as every real established flow is: it then lives in the
 *  established tier (xlb_ct4), not in the new-flow tier (conntrack.h). Returns
 *  the backend's address. */
export function establish(native: XlbNative, dp: Dataplane, sport: number): number {
  const before = dp.globalCounters().ct_promoted;
  const out = native.progTestRun(dp.progs.xlb_tc_ingress, { data: tcpFrame(CLIENT, VIP, sport, 80, 0x02), ifindex: 1, repeat: 1 }).data;
  const backend = out.readUInt32BE(14 + 16);
  native.progTestRun(dp.progs.xlb_tc_egress, { data: tcpFrame(backend, CLIENT, 8080, sport, 0x10), ifindex: 1, repeat: 1 });
  if (dp.globalCounters().ct_promoted - before !== 1n) throw new Error(`hotpath: the flow from port ${sport} was not confirmed into the established conntrack tier`);
  return backend;
}

/** The cold method. Cold: BPF_PROG_TEST_RUN repeat=1, packet by packet (xlb and the no-op
 *  alternating), `runs` runs of n packets; each run gives its median, a figure
 *  the median of those with their min and max. */
function cold(
  native: XlbNative,
  dp: Dataplane,
  prog: (n: string) => number,
  n: number,
  runs: number,
  tick: (w: string) => void,
): Figure[] {
  const run = (fd: number, data: Buffer): number => native.progTestRun(fd, { data, ifindex: 1, repeat: 1 }).duration;
  const out: Figure[] = [];
  const note = `median of ${n} test runs per run`;
  const hooks = [
    { hook: 'xdp', xlb: dp.progs.xlb_xdp_ingress, noop: prog('bench_xdp_noop') },
    { hook: 'tc', xlb: dp.progs.xlb_tc_ingress, noop: prog('bench_tc_noop') },
  ];
  let port = 1024;
  // The established flow: confirmed into the established tier, as the in-place one (its own port).
  establish(native, dp, COLD_SPORT);
  for (const h of hooks) {
    const paths: Record<string, { xlb: number[]; noop: number[] }> = {
      'established flow': { xlb: [], noop: [] },
      'new flow': { xlb: [], noop: [] },
      'not LB traffic': { xlb: [], noop: [] },
    };
    const est = tcpFrame(CLIENT, VIP, COLD_SPORT, 80, 0x10);
    const other = tcpFrame(CLIENT, NOT_LB, 40000, 80, 0x10);
    for (let r = 0; r < runs; r++) {
      const one: Record<string, { xlb: number[]; noop: number[] }> = Object.fromEntries(Object.keys(paths).map((k) => [k, { xlb: [], noop: [] }]));
      for (let i = 0; i < n; i++) {
        one['established flow']!.xlb.push(run(h.xlb, est));
        one['established flow']!.noop.push(run(h.noop, est));
        const fresh = tcpFrame(CLIENT + 1 + (port >>> 16), VIP, port & 0xffff || 1, 80, 0x02);
        port++;
        one['new flow']!.xlb.push(run(h.xlb, fresh));
        one['new flow']!.noop.push(run(h.noop, fresh));
        one['not LB traffic']!.xlb.push(run(h.xlb, other));
        one['not LB traffic']!.noop.push(run(h.noop, other));
      }
      for (const [path, s] of Object.entries(one)) {
        paths[path]!.xlb.push(median(s.xlb));
        paths[path]!.noop.push(median(s.noop));
      }
    }
    for (const [path, s] of Object.entries(paths)) {
      out.push(figure('hotpath', `${h.hook} cold`, `xlb ${path}`, 'ns', s.xlb, { note }));
      out.push(figure('hotpath', `${h.hook} cold`, `no-op (${path} packets)`, 'ns', s.noop, { note }));
    }
    tick(`cold ${h.hook}`);
  }
  {
    const reply = tcpFrame(establish(native, dp, 41000), CLIENT, 8080, 41000, 0x10);
    const x: number[] = [];
    const f: number[] = [];
    for (let r = 0; r < runs; r++) {
      const rx: number[] = [];
      const rf: number[] = [];
      for (let i = 0; i < n; i++) {
        rx.push(run(dp.progs.xlb_tc_egress, reply));
        rf.push(run(prog('bench_tc_noop'), reply));
      }
      x.push(median(rx));
      f.push(median(rf));
    }
    out.push(figure('hotpath', 'tc egress cold', 'xlb reply (reverse NAT)', 'ns', x, { note }));
    out.push(figure('hotpath', 'tc egress cold', 'no-op (reply packets)', 'ns', f, { note }));
    tick('cold tc egress');
  }
  return out;
}

/** Builds tx ── veth ── rx (+ a dummy the replies are routed to). */
export function buildInPlace(): void {
  sh('ip', ['netns', 'add', NS_TX]);
  sh('ip', ['netns', 'add', NS_RX]);
  // No IPv6 on the links: no router or neighbour solicitations reach the programs measured.
  for (const ns of [NS_TX, NS_RX]) nsSh(ns, 'sysctl', ['-qw', 'net.ipv6.conf.all.disable_ipv6=1', 'net.ipv6.conf.default.disable_ipv6=1']);
  sh('ip', ['link', 'add', IF_TX, 'netns', NS_TX, 'type', 'veth', 'peer', 'name', IF_RX, 'netns', NS_RX]);
  const rx = (...a: string[]): string => sh('ip', ['-n', NS_RX, ...a]);
  sh('ip', ['-n', NS_TX, 'link', 'set', 'lo', 'up']);
  sh('ip', ['-n', NS_TX, 'link', 'set', IF_TX, 'up']);
  rx('link', 'set', 'lo', 'up');
  rx('link', 'set', IF_RX, 'up');
  rx('addr', 'add', '10.255.0.1/24', 'dev', IF_RX);
  // The replies' way out: a second veth whose peer sits in the sender's namespace
  // (which does not forward, so they die there).
  sh('ip', ['link', 'add', IF_DUMMY, 'netns', NS_RX, 'type', 'veth', 'peer', 'name', IF_SINK, 'netns', NS_TX]);
  sh('ip', ['-n', NS_TX, 'addr', 'add', '10.254.0.2/24', 'dev', IF_SINK]);
  sh('ip', ['-n', NS_TX, 'link', 'set', IF_SINK, 'up']);
  rx('addr', 'add', '10.254.0.1/24', 'dev', IF_DUMMY);
  rx('link', 'set', IF_DUMMY, 'up');
  rx('neigh', 'replace', '10.254.0.2', 'lladdr', macOf(NS_RX, IF_RX).toString('hex').replace(/(..)(?!$)/g, '$1:'), 'dev', IF_DUMMY, 'nud', 'permanent');
  nsSh(NS_RX, 'sysctl', ['-qw', 'net.ipv4.ip_forward=1', 'net.ipv4.conf.all.rp_filter=0', `net.ipv4.conf.${IF_RX}.rp_filter=0`]);
  // Replies go out of the dummy (tc egress there); balanced traffic is dropped quietly.
  rx('route', 'add', '192.168.0.0/16', 'via', '10.254.0.2', 'dev', IF_DUMMY);
  rx('route', 'add', '10.128.0.0/9', 'via', '10.254.0.2', 'dev', IF_DUMMY);
  rx('route', 'add', 'blackhole', '10.0.0.0/16');
  rx('route', 'add', 'blackhole', '10.1.0.0/16');
}

export function destroyInPlace(): void {
  shQuiet('ip', ['netns', 'del', NS_TX]);
  shQuiet('ip', ['netns', 'del', NS_RX]);
}

/** A value of bench.bpf.c's frame maps (bench_tmpl, bench_cycle): the length the senders restore,
 *  then the frame's first TMPL_FRAME_LEN bytes. */
export function frameValue(frame: Buffer): Buffer {
  const v = Buffer.alloc(4 + TMPL_FRAME_LEN);
  v.writeUInt32LE(TMPL_FRAME_LEN, 0);
  frame.copy(v, 4, 0, TMPL_FRAME_LEN);
  return v;
}

/** Sends `frames` live frames out of NS_TX's veth (ifindex txIdx) with the XDP program `sender` (its
 *  first frame `first`); returns what the program `measured` ran meanwhile (run-time stats on). */
export function sendLive(native: XlbNative, txIdx: number, sender: number, first: Buffer, frames: number, measured: number): { cnt: number; ns: number } {
  const before = native.progInfo(measured);
  native.progTestRun(sender, { data: first, ifindex: txIdx, netns: NS_TX, repeat: frames, flags: native.constants.BPF_F_TEST_XDP_LIVE_FRAMES });
  const after = native.progInfo(measured);
  return { cnt: after.runCnt - before.runCnt, ns: Number(after.runTimeNs - before.runTimeNs) };
}

interface InPlaceConfig {
  group: string;
  config: string;
  /** the XDP program on the receiver (native mode) */
  xdp: number;
  /** tc program, where, and whose stats are read */
  tc?: { fd: number; where: 'ingress' | 'egress' };
  sender: number;
  frame: Buffer;
  /** the global counter every frame of this configuration must bump (checked, in the note) */
  path?: 'ct_hit' | 'new_flow';
}

function inPlace(
  native: XlbNative,
  dp: Dataplane,
  prog: (n: string) => number,
  tmplFd: number,
  frames: number,
  runs: number,
  tick: (w: string) => void,
): Figure[] {
  const rxIdx = native.ifNameToIndex(NS_RX, IF_RX);
  const txIdx = native.ifNameToIndex(NS_TX, IF_TX);
  const dIdx = native.ifNameToIndex(NS_RX, IF_DUMMY);
  const mac = { src: macOf(NS_TX, IF_TX), dst: macOf(NS_RX, IF_RX) };
  const est = tcpFrame(CLIENT, VIP, 40000, 80, 0x10, mac);
  const newFlow = tcpFrame(CLIENT, VIP, 1024, 80, 0x02, mac); // the sender rewrites the source
  const other = tcpFrame(CLIENT, NOT_LB, 40000, 80, 0x10, mac);
  // The established flow and the reply's flow, both confirmed (established tier):
  // the new-flow runs flood the new-flow tier, which would replace them there.
  establish(native, dp, 40000);
  const reply = tcpFrame(establish(native, dp, 42000), CLIENT, 8080, 42000, 0x10, mac);

  const tx = prog('bench_xdp_tx');
  const txFwd = prog('bench_xdp_tx_fwd');
  const txSeq = prog('bench_xdp_tx_seq');
  const xdpNoop = prog('bench_xdp_noop');
  const tcNoop = prog('bench_tc_noop');
  const configs: InPlaceConfig[] = [
    { group: 'xdp in place', config: 'no-op (XDP_PASS)', xdp: xdpNoop, sender: tx, frame: est },
    { group: 'xdp in place', config: 'MAC swap (XDP_TX)', xdp: prog('bench_xdp_macswap'), sender: tx, frame: est },
    { group: 'xdp in place', config: 'xlb established flow', xdp: dp.progs.xlb_xdp_ingress, sender: tx, frame: est, path: 'ct_hit' },
    { group: 'xdp in place', config: 'xlb new flow', xdp: dp.progs.xlb_xdp_ingress, sender: txSeq, frame: newFlow, path: 'new_flow' },
    { group: 'xdp in place', config: 'xlb not LB traffic', xdp: dp.progs.xlb_xdp_ingress, sender: tx, frame: other },
    { group: 'tc in place', config: 'no-op (TC_ACT_OK)', xdp: xdpNoop, tc: { fd: tcNoop, where: 'ingress' }, sender: tx, frame: est },
    { group: 'tc in place', config: 'xlb established flow', xdp: xdpNoop, tc: { fd: dp.progs.xlb_tc_ingress, where: 'ingress' }, sender: tx, frame: est, path: 'ct_hit' },
    { group: 'tc in place', config: 'xlb new flow', xdp: xdpNoop, tc: { fd: dp.progs.xlb_tc_ingress, where: 'ingress' }, sender: txSeq, frame: newFlow, path: 'new_flow' },
    { group: 'tc in place', config: 'xlb not LB traffic', xdp: xdpNoop, tc: { fd: dp.progs.xlb_tc_ingress, where: 'ingress' }, sender: tx, frame: other },
    { group: 'tc egress in place', config: 'no-op (TC_ACT_OK)', xdp: xdpNoop, tc: { fd: tcNoop, where: 'egress' }, sender: txFwd, frame: reply },
    { group: 'tc egress in place', config: 'xlb reply (reverse NAT)', xdp: xdpNoop, tc: { fd: dp.progs.xlb_tc_egress, where: 'egress' }, sender: txFwd, frame: reply, path: 'ct_hit' },
  ];
  const values = configs.map(() => [] as number[]);
  const received = configs.map(() => [] as number[]);
  const onPath = configs.map(() => [] as number[]);
  native.tcHookCreate(NS_RX, rxIdx);
  native.tcHookCreate(NS_RX, dIdx);
  for (let r = 0; r < runs; r++) {
    configs.forEach((c, i) => {
      native.xdpAttach(NS_RX, rxIdx, c.xdp, 'native');
      if (c.tc) native.tcAttach(NS_RX, c.tc.where === 'ingress' ? rxIdx : dIdx, c.tc.where, c.tc.fd, 1, 1, true);
      try {
        const measured = c.tc ? c.tc.fd : c.xdp;
        // The senders copy this frame over every reused live-frame page (bench.bpf.c).
        native.mapUpdate(tmplFd, Buffer.alloc(4), frameValue(c.frame));
        const gBefore = c.path ? dp.globalCounters()[c.path] : 0n;
        const { cnt, ns } = sendLive(native, txIdx, c.sender, c.frame, frames, measured);
        if (cnt > 0) values[i].push(ns / cnt);
        received[i].push(cnt);
        if (c.path) onPath[i].push(cnt > 0 ? Number(dp.globalCounters()[c.path] - gBefore) / cnt : 0);
      } finally {
        if (c.tc) native.tcDetach(NS_RX, c.tc.where === 'ingress' ? rxIdx : dIdx, c.tc.where, 1, 1);
        native.xdpDetach(NS_RX, rxIdx, 'native');
      }
      tick(`in place ${c.group}: ${c.config}`);
    });
  }
  return configs.map((c, i) =>
    figure('hotpath', c.group, c.config, 'ns', values[i], {
      note:
        `Δrun_time_ns/Δrun_cnt; ${frames} frames sent per run, ${round(median(received[i]), 0)} seen by the program (median)` +
        (c.path ? `; ${round(100 * Math.min(...onPath[i]), 1)}% of them counted ${c.path} (lowest run)` : ''),
    }),
  );
}

function get(figs: Figure[], group: string, config: string): number | null {
  return figs.find((f) => f.group === group && f.config === config)?.median ?? null;
}

/** Cost above the floor and the targets as ratios, all from this run. */
function ratios(figs: Figure[]): Ratio[] {
  const out: Ratio[] = [];
  const above = (g: string, c: string, floor: string): number | null => {
    const x = get(figs, g, c);
    const f = get(figs, g, floor);
    return x === null || f === null ? null : round(x - f, 1);
  };
  const katranEst = REFERENCE.katranEstablishedNs - REFERENCE.noopNs;
  const katranNew = REFERENCE.katranNewFlowNs - REFERENCE.noopNs;
  const noop = 'no-op (XDP_PASS)';
  const estX = above('xdp in place', 'xlb established flow', noop);
  const newX = above('xdp in place', 'xlb new flow', noop);
  out.push({ stage: 'hotpath', what: 'xdp in place: established flow above no-op (ns)', value: estX });
  out.push({ stage: 'hotpath', what: 'xdp in place: new flow above no-op (ns)', value: newX });
  out.push({ stage: 'hotpath', what: 'xdp in place: not LB traffic above no-op (ns)', value: above('xdp in place', 'xlb not LB traffic', noop) });
  out.push({ stage: 'hotpath', what: 'xdp in place: MAC swap above no-op (ns)', value: above('xdp in place', 'MAC swap (XDP_TX)', noop) });
  out.push({
    stage: 'hotpath',
    what: `xdp established flow above floor ÷ Katran's (${round(katranEst, 1)} ns)`,
    value: estX === null ? null : round(estX / katranEst, 3),
    target: '≤ 0.5',
  });
  out.push({
    stage: 'hotpath',
    what: `xdp new flow above floor ÷ Katran's (${round(katranNew, 1)} ns)`,
    value: newX === null ? null : round(newX / katranNew, 3),
    target: '≤ 0.4',
  });
  const tcNoop = 'no-op (TC_ACT_OK)';
  const estT = above('tc in place', 'xlb established flow', tcNoop);
  const newT = above('tc in place', 'xlb new flow', tcNoop);
  out.push({ stage: 'hotpath', what: 'tc in place: established flow above tc no-op (ns)', value: estT });
  out.push({ stage: 'hotpath', what: 'tc in place: new flow above tc no-op (ns)', value: newT });
  out.push({ stage: 'hotpath', what: 'tc in place: not LB traffic above tc no-op (ns)', value: above('tc in place', 'xlb not LB traffic', tcNoop) });
  out.push({ stage: 'hotpath', what: 'tc egress in place: reply above tc no-op (ns)', value: above('tc egress in place', 'xlb reply (reverse NAT)', tcNoop) });
  out.push({
    stage: 'hotpath',
    what: `tc established flow above floor ÷ Katran's XDP (${round(katranEst, 1)} ns)`,
    value: estT === null ? null : round(estT / katranEst, 3),
    note: 'different hook from the reference: for orientation only',
  });
  out.push({
    stage: 'hotpath',
    what: `tc new flow above floor ÷ Katran's XDP (${round(katranNew, 1)} ns)`,
    value: newT === null ? null : round(newT / katranNew, 3),
    note: 'different hook from the reference: for orientation only',
  });
  out.push({
    stage: 'hotpath',
    what: `this machine's XDP no-op ÷ the reference machine's (${REFERENCE.noopNs} ns)`,
    value: get(figs, 'xdp in place', noop) === null ? null : round(get(figs, 'xdp in place', noop)! / REFERENCE.noopNs, 3),
    note: 'how this machine compares with the one the reference figures come from',
  });
  return out;
}

export async function runHotpath(opts: HotpathOptions): Promise<StageResult> {
  const native = loadNative();
  const coldN = opts.quick ? 200 : 2000;
  const frames = opts.quick ? 20_000 : 300_000;
  const runs = opts.quick ? 2 : 5;
  const bar = opts.progress.bar('hotpath', 3 + runs * 11);
  const notes: string[] = [];
  const sysctlBefore = readFileSync('/proc/sys/kernel/bpf_stats_enabled', 'utf8').trim();

  Dataplane.removePins(PIN_ROOT);
  destroyInPlace();
  const dp = Dataplane.open({ pinRoot: PIN_ROOT, mapSizes: { conntrack: 1 << 22 } });
  const floor = native.openObject(join(packageRoot(), 'build', 'bpf', 'bench.bpf.o'), {});
  const prog = (name: string): number => progFd(floor, name);
  let statsFd: number | null = null;
  try {
    buildInPlace();
    const rxIdx = native.ifNameToIndex(NS_RX, IF_RX);
    const desired = validateConfig(hotpathConfig([`${NS_RX}/${IF_RX}`]));
    applyCompiled(dp.store(), compile(desired), new Map([['lo', 1], [`${NS_RX}/${IF_RX}`, rxIdx]]));

    const figs = cold(native, dp, prog, coldN, runs, bar.tick);
    statsFd = native.enableStats();
    const tmpl = floor.maps.find((m) => m.name === 'bench_tmpl');
    if (!tmpl) throw new Error('bench.bpf.o has no map bench_tmpl: run `npm run build:bpf`');
    figs.push(...inPlace(native, dp, prog, tmpl.fd, frames, runs, bar.tick));
    notes.push(
      `cold: BPF_PROG_TEST_RUN repeat=1, ${runs} runs of ${coldN} packets (xlb and the no-op alternating); each run's median of the kernel-reported durations (includes each test run's fixed cost), the figure their median, min and max`,
      `in place: native XDP / tc on a veth in netns ${NS_RX}, fed by live frames (BPF_F_TEST_XDP_LIVE_FRAMES, XDP_TX) from ${NS_TX}; ` +
        `${frames} frames per run, ${runs} runs interleaved; cost = Δrun_time_ns/Δrun_cnt with run-time stats on (bpf_enable_stats; kernel.bpf_stats_enabled was ${sysctlBefore} and is left unchanged)`,
      'tc figures: an XDP no-op stays attached on the veth so that it receives in NAPI; tc egress: replies forwarded out of a second veth (sender bench_xdp_tx_fwd restores the TTL)',
      `reference (issue 5, 2 vCPU VM, in place): no-op ${REFERENCE.noopNs} ns, MAC swap ${REFERENCE.macswapNs} ns, Katran established ${REFERENCE.katranEstablishedNs} ns, new flow ${REFERENCE.katranNewFlowNs} ns (not built here)`,
    );
    bar.done();
    return { figures: figs, ratios: ratios(figs), notes };
  } finally {
    if (statsFd !== null) native.closeFd(statsFd);
    native.closeObject(floor.handle);
    dp.close();
    Dataplane.removePins(PIN_ROOT);
    destroyInPlace();
    const after = readFileSync('/proc/sys/kernel/bpf_stats_enabled', 'utf8').trim();
    if (after !== sysctlBefore) shQuiet('sysctl', ['-qw', `kernel.bpf_stats_enabled=${sysctlBefore}`]);
  }
}
