/** Shared pieces of the daemon/API tests: a daemon child process, waits, a churn client. */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { ROOT } from './e2e.js';

/** The private instance of these tests (pins and state apart from every other test). */
export const D2 = { pinRoot: '/sys/fs/bpf/xlb-d2', stateDir: '/run/xlb-d2' };
export const D2_PREFIX = 'xlb-d2-';

/** How long to wait for the daemon to start/stop/apply, in seconds (XLB_TEST_DAEMON_TIMEOUT_S, default 20). */
export const DAEMON_TIMEOUT_S = Number(process.env.XLB_TEST_DAEMON_TIMEOUT_S ?? 20);

export type LogLine = Record<string, unknown> & { level: number; msg: string };

/** `xlb daemon` as a child process (the built CLI), with its JSON logs parsed. */
export class DaemonProc {
  readonly child: ChildProcess;
  readonly logs: LogLine[] = [];
  stderr = '';
  private waiters: Array<() => void> = [];
  readonly exited: Promise<number | null>;

  private constructor(child: ChildProcess) {
    this.child = child;
    let buf = '';
    child.stderr!.on('data', (d: Buffer) => {
      const s = d.toString();
      this.stderr += s;
      buf += s;
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        try {
          this.logs.push(JSON.parse(line) as LogLine);
        } catch {
          /* not a log line */
        }
      }
      for (const w of this.waiters) w();
    });
    child.stdout!.resume();
    this.exited = new Promise((resolve) => child.on('exit', (code) => {
      for (const w of this.waiters) w();
      resolve(code);
    }));
  }

  /** Starts `xlb --pin-root … --state-dir … daemon ARGS…` and waits for "xlb daemon ready". */
  static async start(instance: { pinRoot: string; stateDir: string }, args: string[]): Promise<DaemonProc> {
    const child = spawn(process.execPath, [join(ROOT, 'dist', 'src', 'cli.js'), '--pin-root', instance.pinRoot, '--state-dir', instance.stateDir, 'daemon', ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const d = new DaemonProc(child);
    try {
      await d.waitForLog((l) => l.msg === 'xlb daemon ready', DAEMON_TIMEOUT_S);
    } catch (e) {
      child.kill('SIGKILL');
      throw new Error(`daemon did not start: ${(e as Error).message}\n${d.stderr}`);
    }
    return d;
  }

  /** Resolves with the first log line (from `from` on) matching pred. */
  waitForLog(pred: (l: LogLine) => boolean, timeoutS = DAEMON_TIMEOUT_S, from = 0): Promise<LogLine> {
    return new Promise((resolve, reject) => {
      const check = (): boolean => {
        const hit = this.logs.slice(from).find(pred);
        if (hit) {
          done();
          resolve(hit);
          return true;
        }
        if (this.child.exitCode !== null || this.child.signalCode !== null) {
          done();
          reject(new Error(`daemon exited (${this.child.exitCode ?? this.child.signalCode}) before the expected log line`));
          return true;
        }
        return false;
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`no matching daemon log line within ${timeoutS} s`));
      }, timeoutS * 1000);
      const w = (): void => void check();
      const done = (): void => {
        clearTimeout(timer);
        this.waiters = this.waiters.filter((x) => x !== w);
      };
      this.waiters.push(w);
      check();
    });
  }

  /** Sends a signal and waits for the exit code. */
  async stop(signal: NodeJS.Signals = 'SIGTERM', timeoutS = DAEMON_TIMEOUT_S): Promise<number | null> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return this.child.exitCode;
    this.child.kill(signal);
    const timer = setTimeout(() => this.child.kill('SIGKILL'), timeoutS * 1000);
    const code = await this.exited;
    clearTimeout(timer);
    return code;
  }
}

/** Polls fn until it returns something other than null/false/undefined. */
export async function waitFor<T>(fn: () => Promise<T | null | false | undefined>, timeoutS: number, what: string, everyMs = 100): Promise<T> {
  const end = Date.now() + timeoutS * 1000;
  for (;;) {
    const v = await fn();
    if (v !== null && v !== false && v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out after ${timeoutS} s waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/**
 * A continuous HTTP client (run with node inside a namespace): one new
 * connection per request, back to back, until SIGTERM; then prints a JSON
 * summary {ok, failed, slow, errors, bodies}. Args: HOST PORT TIMEOUT_MS SLOW_MS PAUSE_MS
 * (the pause between requests keeps the 2-core test machine responsive).
 */
export const CHURN_CLIENT = `
const http = require('node:http');
const [host, port, timeoutMs, slowMs, pauseMs] = process.argv.slice(1);
let ok = 0, failed = 0, slow = 0, stop = false;
const errors = [], bodies = {};
process.on('SIGTERM', () => { stop = true; });
function one() {
  return new Promise((resolve) => {
    const t0 = Date.now();
    const req = http.get({ host, port: Number(port), path: '/', agent: false, timeout: Number(timeoutMs) }, (res) => {
      let b = '';
      res.on('data', (d) => (b += d));
      res.on('end', () => {
        if (res.statusCode === 200) { ok++; bodies[b.trim()] = (bodies[b.trim()] || 0) + 1; }
        else { failed++; if (errors.length < 10) errors.push('status ' + res.statusCode); }
        if (Date.now() - t0 > Number(slowMs)) slow++;
        resolve();
      });
      res.on('error', (e) => { failed++; if (errors.length < 10) errors.push(e.message); resolve(); });
    });
    req.on('timeout', () => req.destroy(new Error('timeout after ' + timeoutMs + ' ms')));
    req.on('error', (e) => { failed++; if (errors.length < 10) errors.push(e.message); resolve(); });
  });
}
(async () => {
  console.log('started');
  while (!stop) {
    await one();
    if (Number(pauseMs) > 0) await new Promise((r) => setTimeout(r, Number(pauseMs)));
  }
  console.log(JSON.stringify({ ok, failed, slow, errors, bodies }));
  process.exit(0);
})();
`;

export interface ChurnSummary {
  ok: number;
  failed: number;
  slow: number;
  errors: string[];
  bodies: Record<string, number>;
}

/** Starts CHURN_CLIENT in a namespace; stop() ends it and returns its summary. */
export async function startChurnClient(ns: string, host: string, port: number, timeoutS: number, pauseMs = Number(process.env.XLB_TEST_CHURN_PAUSE_MS ?? 5)): Promise<{ stop: () => Promise<ChurnSummary> }> {
  const child = spawn('ip', ['netns', 'exec', ns, process.execPath, '-e', CHURN_CLIENT, host, String(port), String(timeoutS * 1000), '900', String(pauseMs)], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  await waitFor(async () => out.includes('started'), DAEMON_TIMEOUT_S, 'the churn client to start');
  return {
    stop: async () => {
      const exited = new Promise<void>((r) => child.on('exit', () => r()));
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), (timeoutS + 5) * 1000);
      await exited;
      clearTimeout(t);
      const last = out.trim().split('\n').pop() ?? '';
      try {
        return JSON.parse(last) as ChurnSummary;
      } catch {
        throw new Error(`churn client printed no summary: ${out} ${err}`);
      }
    },
  };
}
