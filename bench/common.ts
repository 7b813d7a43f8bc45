/**
 * Pieces every benchmark stage shares: figures (median/min/max of runs),
 * shell helpers, frames, the `xlb-b-` namespace prefix and its cleanup, and
 * progress bars on stderr.
 */
import { removeNamespace } from '../src/lab.js';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { cpus as cpus_ } from 'node:os';
import cliProgress from 'cli-progress';

/** Every namespace and link the benchmark creates carries this prefix. */
export const PREFIX = 'xlb-b-';

/** One measured quantity of one configuration: every run kept, median/min/max derived. */
export interface Figure {
  stage: 'hotpath' | 'e2e' | 'scale';
  /** what is compared within a table, e.g. "xdp in place" or "new TCP connections/s" */
  group: string;
  /** the configuration or path measured, e.g. "xlb established flow" or "OVN LB" */
  config: string;
  unit: string;
  median: number | null;
  min: number | null;
  max: number | null;
  /** values of the counted runs */
  values: number[];
  /** runs not counted (e.g. ovs-vswitchd crashed during the run) */
  lost?: number;
  note?: string;
}

/** A ratio computed from figures of the same run. */
export interface Ratio {
  stage: Figure['stage'];
  what: string;
  value: number | null;
  target?: string;
  note?: string;
}

export interface StageResult {
  figures: Figure[];
  ratios: Ratio[];
  notes: string[];
}

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

export function percentile(xs: readonly number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  const i = Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1));
  return s[i];
}

export function round(x: number, digits = 1): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

export function figure(
  stage: Figure['stage'],
  group: string,
  config: string,
  unit: string,
  values: number[],
  extra: { lost?: number; note?: string } = {},
): Figure {
  const v = values.filter((x) => Number.isFinite(x));
  return {
    stage,
    group,
    config,
    unit,
    median: v.length ? round(median(v), 2) : null,
    min: v.length ? round(Math.min(...v), 2) : null,
    max: v.length ? round(Math.max(...v), 2) : null,
    values: v.map((x) => round(x, 3)),
    ...(extra.lost ? { lost: extra.lost } : {}),
    ...(extra.note ? { note: extra.note } : {}),
  };
}

export function sh(cmd: string, args: string[], timeoutMs = 60_000): string {
  return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: timeoutMs });
}

/** Like sh(), but failures are ignored (cleanup). */
export function shQuiet(cmd: string, args: string[]): void {
  try {
    sh(cmd, args, 20_000);
  } catch {
    /* not there */
  }
}

export function nsSh(ns: string, cmd: string, args: string[], timeoutMs = 60_000): string {
  return sh('ip', ['netns', 'exec', ns, cmd, ...args], timeoutMs);
}

/** Clock ticks per second of /proc/stat's times (USER_HZ), as the C library reports it. */
let userHz: number | null = null;
function clockTicks(): number {
  if (userHz === null) {
    const v = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());
    if (!Number.isInteger(v) || v <= 0) throw new Error(`getconf CLK_TCK gave ${JSON.stringify(v)}`);
    userHz = v;
  }
  return userHz;
}

/** Busy CPU time of the whole machine so far (ns): /proc/stat, every state but idle and iowait. */
export function busyNs(): number {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  const [user, nice, system, , , irq, softirq, steal] = f;
  return ((user + nice + system + irq + softirq + (steal ?? 0)) * 1e9) / clockTicks();
}

/** settle()'s bounds: at most this many seconds, until all CPUs together are busy less than this share for 1 s. */
export const SETTLE_MAX_S = 30;
export const SETTLE_IDLE_SHARE = 0.1;

/** Waits until the machine was nearly idle (all CPUs together busy less than
 *  idleShare of the time) for one second, at most maxS seconds: what a stage
 *  leaves to the kernel (network namespaces and OVS torn down, maps freed after
 *  RCU) is done before the next one measures. Returns the seconds waited and
 *  whether the machine did settle (false: maxS ran out). */
export async function settle(maxS = SETTLE_MAX_S, idleShare = SETTLE_IDLE_SHARE): Promise<{ waitedS: number; idle: boolean }> {
  const cpus = cpus_().length;
  const t0 = Date.now();
  let idle = false;
  while (!idle && Date.now() - t0 < maxS * 1000) {
    const b0 = busyNs();
    await sleep(1000);
    idle = (busyNs() - b0) / 1e9 / cpus < idleShare;
  }
  return { waitedS: round((Date.now() - t0) / 1000, 1), idle };
}

/** One turn of the event loop. The stages' measuring loops are synchronous (spawnSync, BPF test runs):
 *  a signal (Ctrl-C, SIGTERM) is handled, and its cleanup run, only when they yield, so they call this
 *  between measurements. */
export function yieldToLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/**
 * Removes every namespace named `xlb-b-…` (killing what runs inside first) and
 * every `xlb-b-…` link left in the root namespace: leftovers of a crashed run.
 * Only objects with our prefix are touched.
 */
export function cleanupLeftovers(prefix = PREFIX): void {
  let names: string[] = [];
  try {
    names = sh('ip', ['netns', 'list'])
      .split('\n')
      .map((l) => l.split(' ')[0])
      .filter((n) => n.startsWith(prefix));
  } catch {
    /* no netns support */
  }
  for (const ns of names) removeNamespace(ns);
  try {
    const links = JSON.parse(sh('ip', ['-j', 'link', 'show'])) as Array<{ ifname: string }>;
    for (const l of links) if (l.ifname.startsWith(prefix)) shQuiet('ip', ['link', 'del', l.ifname]);
  } catch {
    /* ignore */
  }
}

/** An Ethernet/IPv4/TCP frame (64 bytes + payload) with a valid IPv4 header checksum. */
export function tcpFrame(
  src: number,
  dst: number,
  sport: number,
  dport: number,
  flags: number,
  mac: { src?: Buffer; dst?: Buffer } = {},
): Buffer {
  const f = Buffer.alloc(14 + 20 + 20 + 10);
  if (mac.dst) mac.dst.copy(f, 0);
  if (mac.src) mac.src.copy(f, 6);
  f.writeUInt16BE(0x0800, 12);
  const ip = 14;
  f[ip] = 0x45;
  f.writeUInt16BE(50, ip + 2);
  f.writeUInt16BE(0x4000, ip + 6);
  f[ip + 8] = 64;
  f[ip + 9] = 6;
  f.writeUInt32BE(src >>> 0, ip + 12);
  f.writeUInt32BE(dst >>> 0, ip + 16);
  let s = 0;
  for (let i = 0; i < 20; i += 2) s += f.readUInt16BE(ip + i);
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  f.writeUInt16BE(~s & 0xffff, ip + 10);
  const t = ip + 20;
  f.writeUInt16BE(sport, t);
  f.writeUInt16BE(dport, t + 2);
  f[t + 12] = 5 << 4;
  f[t + 13] = flags;
  f.writeUInt16BE(64240, t + 14);
  // The TCP checksum value does not matter for the cost; xlb updates it incrementally.
  return f;
}

export function macOf(ns: string | null, ifname: string): Buffer {
  const args = [...(ns ? ['-n', ns] : []), '-j', 'link', 'show', 'dev', ifname];
  const out = JSON.parse(sh('ip', args)) as Array<{ address: string }>;
  return Buffer.from(out[0].address.replace(/:/g, ''), 'hex');
}

/** Progress bars on stderr (rendered only on a terminal). */
export class Progress {
  private readonly multi: cliProgress.MultiBar | null;
  constructor() {
    this.multi = !process.stderr.isTTY ? null : new cliProgress.MultiBar(
      {
        stream: process.stderr,
        format: ' {stage} [{bar}] {value}/{total} {what}',
        hideCursor: true,
        clearOnComplete: false,
        autopadding: true,
      },
      cliProgress.Presets.shades_classic,
    );
  }
  bar(stage: string, total: number): { tick: (what: string) => void; done: () => void } {
    if (!this.multi) return { tick: () => undefined, done: () => undefined };
    const b = this.multi.create(total, 0, { stage: stage.padEnd(7), what: '' });
    return {
      tick: (what: string) => b.increment(1, { what }),
      done: () => b.update(total, { what: 'done' }),
    };
  }
  log(line: string): void {
    this.multi?.log(`${line}\n`);
  }
  stop(): void {
    this.multi?.stop();
  }
}
