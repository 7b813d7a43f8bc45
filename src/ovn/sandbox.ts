/**
 * A private OVN sandbox on this host: OVS with its userspace (netdev)
 * datapath, ovsdb-servers for the OVS, NB and SB databases, ovn-northd and
 * ovn-controller, each started by hand (there is no openvswitch kernel module
 * and no systemd), all in a private run directory and, optionally, inside a
 * network namespace so that the "VM" veth host ends stay out of the root
 * namespace. Teardown kills exactly the pids it started.
 *
 * Facts this relies on (see OVN-LAB-NOTES): the userspace datapath reads veths
 * through AF_PACKET, so TCP needs `ethtool -K <veth> tx off` on both ends;
 * ovs-vswitchd 3.1's userspace conntrack can abort under connection churn, so
 * `vswitchdAlive()` / `restartVswitchd()` let callers detect and report it.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sleepSync } from '../sleep.js';

export interface SandboxOptions {
  /** network namespace the daemons (and the VMs' host ends) run in; created if missing, removed on teardown */
  netns?: string;
  /** parent of the private run directory (default: the OS temp dir) */
  baseDir?: string;
  /** chassis name (default "chassis1") */
  systemId?: string;
  /** how long to wait for a daemon's socket or pidfile, ms (default 20 s) */
  startTimeoutMs?: number;
}

export interface PlugOptions {
  /** the VM's namespace (created) */
  ns: string;
  /** host end name (≤ 15 characters) */
  hostIf: string;
  /** logical switch port name (external_ids:iface-id) */
  lsp: string;
  mac: string;
  /** address with prefix length, e.g. 172.16.255.194/26 */
  cidr: string;
  gateway?: string;
}

type Daemon = 'ovsdb-ovs' | 'ovsdb-nb' | 'ovsdb-sb' | 'ovs-vswitchd' | 'ovn-northd' | 'ovn-controller';

export class OvnSandbox {
  readonly dir: string;
  readonly netns: string | null;
  readonly env: NodeJS.ProcessEnv;
  readonly ovsSock: string;
  readonly nbSock: string;
  readonly sbSock: string;
  /** pids this sandbox started, by daemon */
  readonly pids = new Map<Daemon, number>();
  /** namespaces of plugged VMs (removed on teardown) */
  readonly vmNamespaces: string[] = [];
  private readonly ownNetns: boolean;
  private readonly timeoutMs: number;
  private readonly systemId: string;

  private constructor(opts: SandboxOptions) {
    this.dir = mkdtempSync(join(opts.baseDir ?? tmpdir(), 'xlb-ovn-'));
    this.netns = opts.netns ?? null;
    this.timeoutMs = opts.startTimeoutMs ?? 20_000;
    this.systemId = opts.systemId ?? 'chassis1';
    this.ovsSock = join(this.dir, 'db.sock');
    this.nbSock = join(this.dir, 'ovnnb_db.sock');
    this.sbSock = join(this.dir, 'ovnsb_db.sock');
    this.env = {
      ...process.env,
      OVS_RUNDIR: this.dir,
      OVS_LOGDIR: this.dir,
      OVS_DBDIR: this.dir,
      OVS_SYSCONFDIR: this.dir,
      OVN_RUNDIR: this.dir,
      OVN_LOGDIR: this.dir,
      OVN_DBDIR: this.dir,
      OVN_NB_DB: `unix:${this.nbSock}`,
      OVN_SB_DB: `unix:${this.sbSock}`,
      DB_SOCK: this.ovsSock,
    };
    this.ownNetns = false;
    if (this.netns) {
      const exists = spawnSync('ip', ['netns', 'exec', this.netns, 'true']).status === 0;
      if (!exists) {
        execFileSync('ip', ['netns', 'add', this.netns]);
        execFileSync('ip', ['-n', this.netns, 'link', 'set', 'lo', 'up']);
        this.ownNetns = true;
      }
    }
  }

  /** Starts everything and creates br-int; on failure, what was started is torn down. */
  static start(opts: SandboxOptions = {}): OvnSandbox {
    const s = new OvnSandbox(opts);
    try {
      s.bringUp();
    } catch (e) {
      s.teardown();
      throw e;
    }
    return s;
  }

  /** Runs a command with the sandbox's environment (inside its netns if it has one). */
  run(cmd: string, args: string[], timeoutMs = 60_000): string {
    const full = this.netns ? ['ip', ['netns', 'exec', this.netns, cmd, ...args]] as const : ([cmd, args] as const);
    return execFileSync(full[0], [...full[1]], { env: this.env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: timeoutMs });
  }

  vsctl(...args: string[]): string {
    return this.run('ovs-vsctl', [`--db=unix:${this.ovsSock}`, '--timeout=30', ...args]);
  }

  nbctl(...args: string[]): string {
    return this.run('ovn-nbctl', [`--db=unix:${this.nbSock}`, '--timeout=60', ...args]);
  }

  sbctl(...args: string[]): string {
    return this.run('ovn-sbctl', [`--db=unix:${this.sbSock}`, '--timeout=60', ...args]);
  }

  appctl(target: string, ...args: string[]): string {
    return this.run('ovs-appctl', ['-t', target, ...args]);
  }

  /** Waits until ovn-controller has programmed everything the NB database says. */
  syncHv(timeoutS = 60): void {
    this.nbctl(`--timeout=${timeoutS}`, '--wait=hv', 'sync');
  }

  private daemon(name: Daemon, cmd: string, args: string[]): void {
    const pidfile = join(this.dir, `${name}.pid`);
    rmSync(pidfile, { force: true });
    this.run(cmd, [...args, `--pidfile=${pidfile}`, '--detach', `--log-file=${join(this.dir, `${name}.log`)}`]);
    const until = Date.now() + this.timeoutMs;
    while (!existsSync(pidfile)) {
      if (Date.now() > until) throw new Error(`${name} did not write ${pidfile} within ${this.timeoutMs} ms; see ${join(this.dir, `${name}.log`)}`);
      sleepSync(50);
    }
    this.pids.set(name, Number(readFileSync(pidfile, 'utf8').trim()));
  }

  private bringUp(): void {
    const db = (n: string, schema: string, sock: string, name: Daemon): void => {
      const file = join(this.dir, `${n}.db`);
      this.run('ovsdb-tool', ['create', file, schema]);
      this.daemon(name, 'ovsdb-server', [file, `--remote=punix:${sock}`, `--unixctl=${join(this.dir, `${name}.ctl`)}`]);
    };
    db('conf', '/usr/share/openvswitch/vswitch.ovsschema', this.ovsSock, 'ovsdb-ovs');
    db('ovnnb', '/usr/share/ovn/ovn-nb.ovsschema', this.nbSock, 'ovsdb-nb');
    db('ovnsb', '/usr/share/ovn/ovn-sb.ovsschema', this.sbSock, 'ovsdb-sb');
    this.vsctl('--no-wait', 'init');
    this.vsctl(
      '--no-wait',
      'set',
      'Open_vSwitch',
      '.',
      `external_ids:system-id=${this.systemId}`,
      `external_ids:ovn-remote=unix:${this.sbSock}`,
      'external_ids:ovn-encap-type=geneve',
      'external_ids:ovn-encap-ip=127.0.0.1',
      'external_ids:ovn-bridge-datapath-type=netdev',
    );
    this.startVswitchd();
    this.vsctl('--may-exist', 'add-br', 'br-int', '--', 'set', 'Bridge', 'br-int', 'datapath_type=netdev', 'fail-mode=secure');
    this.daemon('ovn-northd', 'ovn-northd', [
      `--ovnnb-db=unix:${this.nbSock}`,
      `--ovnsb-db=unix:${this.sbSock}`,
      `--unixctl=${join(this.dir, 'ovn-northd.ctl')}`,
    ]);
    this.daemon('ovn-controller', 'ovn-controller', [`unix:${this.ovsSock}`]);
    // The chassis registers itself in the SB database once ovn-controller is up.
    this.syncHv();
  }

  private startVswitchd(): void {
    this.daemon('ovs-vswitchd', 'ovs-vswitchd', [`unix:${this.ovsSock}`, `--unixctl=${join(this.dir, 'ovs-vswitchd.ctl')}`]);
  }

  /** The pid of ovs-vswitchd this sandbox started (null when not running). */
  vswitchdPid(): number | null {
    return this.pids.get('ovs-vswitchd') ?? null;
  }

  /** True while the ovs-vswitchd this sandbox started is alive (not a zombie). */
  vswitchdAlive(): boolean {
    const pid = this.vswitchdPid();
    if (pid === null) return false;
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      return !/\) [ZX] /.test(stat);
    } catch {
      return false;
    }
  }

  /** Why ovs-vswitchd died, from its log (the last assertion or "terminating" line). */
  vswitchdDeath(): string {
    try {
      const log = readFileSync(join(this.dir, 'ovs-vswitchd.log'), 'utf8').split('\n');
      const hit = [...log].reverse().find((l) => /assertion|terminat|signal|EMER|ERR/.test(l));
      return hit ?? 'no reason in the log';
    } catch {
      return 'no log';
    }
  }

  /** Starts ovs-vswitchd again after a crash (ports come back from the database) and waits for the flows. */
  restartVswitchd(): void {
    const pid = this.vswitchdPid();
    if (pid !== null && this.vswitchdAlive()) process.kill(pid, 'SIGKILL');
    this.pids.delete('ovs-vswitchd');
    this.startVswitchd();
    this.syncHv();
  }

  /** ovs-vswitchd's on-CPU time so far (all threads), ns, from schedstat. */
  vswitchdCpuNs(): number {
    const pid = this.vswitchdPid();
    if (pid === null) return 0;
    let total = 0;
    try {
      for (const t of execFileSync('ls', [`/proc/${pid}/task`], { encoding: 'utf8' }).split(/\s+/).filter(Boolean)) {
        try {
          total += Number(readFileSync(`/proc/${pid}/task/${t}/schedstat`, 'utf8').split(' ')[0]);
        } catch {
          /* thread gone */
        }
      }
    } catch {
      /* process gone */
    }
    return total;
  }

  /**
   * Plugs a namespace "VM" into br-int: a veth whose host end (in the sandbox's
   * netns) is an OVS port with external_ids:iface-id=<lsp>, tx checksum
   * offload off on both ends, the VM end named eth0 with the MAC and address
   * given and a default route.
   */
  plugVm(p: PlugOptions): void {
    execFileSync('ip', ['netns', 'add', p.ns]);
    this.vmNamespaces.push(p.ns);
    execFileSync('ip', ['-n', p.ns, 'link', 'set', 'lo', 'up']);
    const here = this.netns ? ['-n', this.netns] : [];
    execFileSync('ip', [...here, 'link', 'add', p.hostIf, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', p.ns]);
    execFileSync('ip', ['-n', p.ns, 'link', 'set', 'eth0', 'address', p.mac]);
    execFileSync('ip', ['-n', p.ns, 'addr', 'add', p.cidr, 'dev', 'eth0']);
    execFileSync('ip', ['-n', p.ns, 'link', 'set', 'eth0', 'up']);
    execFileSync('ip', [...here, 'link', 'set', p.hostIf, 'up']);
    this.run('ethtool', ['-K', p.hostIf, 'tx', 'off']);
    execFileSync('ip', ['netns', 'exec', p.ns, 'ethtool', '-K', 'eth0', 'tx', 'off'], { stdio: 'ignore' });
    if (p.gateway) execFileSync('ip', ['-n', p.ns, 'route', 'add', 'default', 'via', p.gateway]);
    this.vsctl('--may-exist', 'add-port', 'br-int', p.hostIf, '--', 'set', 'Interface', p.hostIf, `external_ids:iface-id=${p.lsp}`);
  }

  /** Packets received by OVS on the given host ends (their rx counters). */
  rxPackets(hostIfs: readonly string[]): number {
    let n = 0;
    for (const i of hostIfs) {
      try {
        n += Number(this.run('cat', [`/sys/class/net/${i}/statistics/rx_packets`]).trim());
      } catch {
        /* gone */
      }
    }
    return n;
  }

  /** Kills exactly the daemons this sandbox started, removes its VMs, netns and run directory. */
  teardown(): void {
    const order: Daemon[] = ['ovn-controller', 'ovn-northd', 'ovs-vswitchd', 'ovsdb-sb', 'ovsdb-nb', 'ovsdb-ovs'];
    for (const d of order) {
      const pid = this.pids.get(d);
      if (pid === undefined) continue;
      try {
        process.kill(pid, 'SIGTERM');
      } catch {
        /* gone */
      }
    }
    const until = Date.now() + 3000;
    for (const d of order) {
      const pid = this.pids.get(d);
      if (pid === undefined) continue;
      while (Date.now() < until && existsSync(`/proc/${pid}`)) sleepSync(20);
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* gone */
      }
      this.pids.delete(d);
    }
    for (const ns of this.vmNamespaces.splice(0)) spawnSync('ip', ['netns', 'del', ns]);
    if (this.netns && this.ownNetns) spawnSync('ip', ['netns', 'del', this.netns]);
    rmSync(this.dir, { recursive: true, force: true });
  }
}

