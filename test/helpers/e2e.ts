/** Shared pieces of the end-to-end tests (real traffic between namespaces). */
import { spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Every timeout the end-to-end tests depend on, in seconds, overridable. */
export const TIMEOUT_S = Number(process.env.XLB_TEST_TIMEOUT_S ?? 2);

const here = dirname(fileURLToPath(import.meta.url));
export const ROOT = join(here, '..', '..');

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a helper script (test/helpers/NAME) with node inside a namespace. */
export function nsNode(ns: string, script: string, args: string[], timeoutS = 60): Promise<RunResult> {
  return run('ip', ['netns', 'exec', ns, process.execPath, join(here, script), ...args], timeoutS);
}

export function run(cmd: string, args: string[], timeoutS = 60): Promise<RunResult> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutS * 1000);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** The xlb CLI as a user runs it (built JS), against a given instance. */
export function cli(instance: { pinRoot: string; stateDir: string }, ...args: string[]): Promise<RunResult> {
  return run(process.execPath, [
    join(ROOT, 'dist', 'src', 'cli.js'),
    '--pin-root',
    instance.pinRoot,
    '--state-dir',
    instance.stateDir,
    ...args,
  ]);
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** One TCP connection attempt (tcp-client.mjs) from namespace `ns` to vip:port: how it ended and after how many ms. */
export async function connectOnce(
  ns: string,
  vip: string,
  port: number,
  timeoutMs: number,
): Promise<{ outcome: 'refused' | 'timeout' | 'other'; ms: number; text: string }> {
  const r = await nsNode(ns, 'tcp-client.mjs', [vip, String(port), '1', '10', String(timeoutMs)], timeoutMs / 1000 + 30);
  const ms = Number(/\((\d+) ms\)/.exec(r.stderr)?.[1] ?? NaN);
  const outcome = r.code === 3 && r.stderr.includes('ECONNREFUSED') ? 'refused' : r.code === 2 ? 'timeout' : 'other';
  return { outcome, ms, text: `${r.code} ${r.stdout} ${r.stderr}` };
}
