/**
 * Starts real ovsdb-server processes for tests: a DB file created with
 * ovsdb-tool in a private temp dir, served on a unix socket and a loopback
 * TCP port (read from the server's log). Not detached: the child is killed
 * by stop(); pause()/resume() send SIGSTOP/SIGCONT.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export const NB_SCHEMA = '/usr/share/ovn/ovn-nb.ovsschema';
export const VSWITCH_SCHEMA = '/usr/share/openvswitch/vswitch.ovsschema';

export class TestOvsdbServer {
  readonly dir: string;
  readonly db: string;
  readonly sock: string;
  readonly log: string;
  private child: ChildProcess | null = null;
  private paused = false;
  port = 0;

  constructor(readonly name: string, readonly schema: string) {
    this.dir = mkdtempSync(join(tmpdir(), `xlb-ovsdb-${name}-`));
    this.db = join(this.dir, `${name}.db`);
    this.sock = join(this.dir, `${name}.sock`);
    this.log = join(this.dir, `${name}.log`);
  }

  get unixRemote(): string {
    return `unix:${this.sock}`;
  }

  get tcpRemote(): string {
    return `tcp:127.0.0.1:${this.port}`;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** Creates the DB (first time only) and starts the server; resolves when both remotes listen. */
  async start(): Promise<void> {
    if (!existsSync(this.db)) await run('ovsdb-tool', ['create', this.db, this.schema]);
    const logStart = existsSync(this.log) ? readFileSync(this.log, 'utf8').length : 0;
    const child = spawn(
      'ovsdb-server',
      [this.db, `--remote=punix:${this.sock}`, '--remote=ptcp:0:127.0.0.1', `--unixctl=${join(this.dir, `${this.name}.ctl`)}`, `--log-file=${this.log}`, '--no-chdir'],
      { stdio: 'ignore' },
    );
    this.child = child;
    const deadline = Date.now() + 5000;
    for (;;) {
      if (child.exitCode !== null) throw new Error(`ovsdb-server ${this.name} exited with ${child.exitCode}`);
      const log = existsSync(this.log) ? readFileSync(this.log, 'utf8').slice(logStart) : '';
      const m = /listening on port (\d+)/.exec(log);
      if (m !== null && existsSync(this.sock)) {
        this.port = Number(m[1]);
        return;
      }
      if (Date.now() > deadline) throw new Error(`ovsdb-server ${this.name} did not start (log: ${log})`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /** Kills the server (SIGKILL unless told otherwise) and waits for it to exit. */
  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    const child = this.child;
    this.child = null;
    if (child === null || child.exitCode !== null || child.signalCode !== null) return;
    if (this.paused) {
      child.kill('SIGCONT');
      this.paused = false;
    }
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    child.kill(signal);
    await exited;
  }

  pause(): void {
    this.child?.kill('SIGSTOP');
    this.paused = true;
  }

  resume(): void {
    this.child?.kill('SIGCONT');
    this.paused = false;
  }

  /** Stops the server and removes its directory. */
  async destroy(): Promise<void> {
    await this.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Runs ovn-nbctl against a server. */
export async function nbctl(server: TestOvsdbServer, ...args: string[]): Promise<string> {
  const { stdout } = await run('ovn-nbctl', [`--db=${server.unixRemote}`, ...args]);
  return stdout;
}

/** Runs ovs-vsctl (--no-wait: there is no ovs-vswitchd) against a server. */
export async function vsctl(server: TestOvsdbServer, ...args: string[]): Promise<string> {
  const { stdout } = await run('ovs-vsctl', [`--db=${server.unixRemote}`, '--no-wait', ...args]);
  return stdout;
}
