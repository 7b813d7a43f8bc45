/**
 * The seed lab in network namespaces: the classic OVN load-balancer topology
 * on a plain Linux host. All names carry the `xlb-` prefix.
 *
 *   xlb-vm3 (client, 172.16.255.194) ── xlb-vm3-h ─ bridge xlb-inside (.193)
 *                                                    │  xlb-hv: routes between
 *   xlb-vm1 (172.16.255.130) ── xlb-vm1-h ─┐         │
 *   xlb-vm2 (172.16.255.131) ── xlb-vm2-h ─┴ bridge xlb-dmz (.129)
 *
 * xlb-hv plays the OVS host and the router between the two switches. The VIP
 * 172.16.255.62:8000 belongs to nobody: only xlb on xlb-vm3-h makes it answer.
 * The host ends of the veths have tx checksum offload off, so a partial
 * checksum is finished in software there: a wrong checksum seed after NAT
 * breaks the connection instead of passing unnoticed.
 */
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { promisify } from 'node:util';
import { join } from 'node:path';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { packageRoot } from './paths.js';
import type { Hook } from './config.js';

/** Names and addresses of one lab. Namespace names carry the prefix, so labs with
 * different prefixes can run side by side; interface names live inside them. */
export function labNames(prefix = 'xlb-') {
  return {
    prefix,
    hv: `${prefix}hv`,
    vip: '172.16.255.62',
    port: 8000,
    udpPort: 8053,
    tcpEchoPort: 8001,
    /* VIP ports of the UDP and TCP-echo services differ from the backends' so
     * that port rewriting (and its checksum) is exercised end to end. */
    udpVipPort: 9053,
    tcpEchoVipPort: 9001,
    insideGw: '172.16.255.193',
    dmzGw: '172.16.255.129',
    /* IPv6 (only with LabOptions.ipv6): a VIP with ports, an IP-only VIP, and
     * one /64 per bridge, mirroring the IPv4 plan. */
    vip6: 'fd00:ff:ff::62',
    vip6IpOnly: 'fd00:ff:ff::63',
    insideGw6: 'fd00:ff:1::193',
    dmzGw6: 'fd00:ff:2::129',
    vms: {
      vm1: { ns: `${prefix}vm1`, ip: '172.16.255.130', ip6: 'fd00:ff:2::130', hostIf: 'xlb-vm1-h', bridge: 'xlb-dmz' },
      vm2: { ns: `${prefix}vm2`, ip: '172.16.255.131', ip6: 'fd00:ff:2::131', hostIf: 'xlb-vm2-h', bridge: 'xlb-dmz' },
      vm3: { ns: `${prefix}vm3`, ip: '172.16.255.194', ip6: 'fd00:ff:1::194', hostIf: 'xlb-vm3-h', bridge: 'xlb-inside' },
    },
  } as const;
}
export type LabNames = ReturnType<typeof labNames>;

/** The default lab (namespaces xlb-hv, xlb-vm1, xlb-vm2, xlb-vm3). */
export const LAB = labNames();

export type VmName = keyof typeof LAB.vms;
export const BACKENDS: VmName[] = ['vm1', 'vm2'];

/** Pins and bookkeeping of the lab's own xlb instance (apart from a real one). */
export const LAB_INSTANCE = { pinRoot: '/sys/fs/bpf/xlb-lab', stateDir: '/run/xlb-lab' };

export interface LabOptions {
  /** The backends' HTTP server on port 8000: the Node lab backend (default) or
   *  nginx (deep listen backlog, for load). */
  http?: 'node' | 'nginx';
  /** Prefix of the namespace names (default "xlb-"). */
  prefix?: string;
  /** Turn tx checksum offload off inside the VMs too (full checksums from the senders). */
  vmTxOff?: boolean;
  /** Also give every namespace IPv6 addresses (added `nodad`), routes and forwarding, and
   *  make the backends listen on IPv6 too. Off by default: the default lab is IPv4 only. */
  ipv6?: boolean;
}

const execFileAsync = promisify(execFile);

function sh(cmd: string, args: string[]): string {
  return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

function ip(...args: string[]): void {
  sh('ip', args);
}

/** Runs a command inside a namespace and returns its stdout. */
export function nsExec(ns: string, cmd: string, args: string[], timeoutMs = 30_000): string {
  return execFileSync('ip', ['netns', 'exec', ns, cmd, ...args], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
    timeout: timeoutMs,
  });
}

/** The desired state the lab applies: lb1 on the client's switch. */
export function labConfig(hook: Hook = 'auto', backends: VmName[] = BACKENDS, LAB: LabNames = labNames()): object {
  const list = (port: number): string => backends.map((b) => `${LAB.vms[b].ip}:${port}`).join(',');
  return {
    load_balancers: [
      {
        name: 'lb1',
        protocol: 'tcp',
        vips: {
          [`${LAB.vip}:${LAB.port}`]: list(LAB.port),
          [`${LAB.vip}:${LAB.tcpEchoVipPort}`]: list(LAB.tcpEchoPort),
        },
      },
      { name: 'lb1-udp', protocol: 'udp', vips: { [`${LAB.vip}:${LAB.udpVipPort}`]: list(LAB.udpPort) } },
    ],
    logical_switches: [
      {
        name: 'inside',
        ports: [{ interface: `${LAB.hv}/${LAB.vms.vm3.hostIf}`, hook }],
        load_balancer: ['lb1', 'lb1-udp'],
      },
    ],
  };
}

/**
 * Deletes a network namespace, first killing what runs inside it (processes
 * left there, e.g. backends of `xlb lab --keep`, would outlive it). Missing
 * namespaces are fine.
 */
export function removeNamespace(ns: string): void {
  try {
    for (const pid of sh('ip', ['netns', 'pids', ns]).split(/\s+/).filter(Boolean)) {
      try {
        process.kill(Number(pid), 'SIGKILL');
      } catch {
        /* already gone */
      }
    }
  } catch {
    /* no such namespace */
  }
  try {
    ip('netns', 'del', ns);
  } catch {
    /* not there */
  }
}

export class Lab {
  private readonly servers = new Map<VmName, ChildProcess>();
  private readonly nginx = new Map<VmName, { child: ChildProcess; dir: string }>();
  /** This lab's names and addresses. */
  readonly names: LabNames;
  readonly http: 'node' | 'nginx';
  /** The lab has IPv6 addresses (LabOptions.ipv6). */
  readonly ipv6: boolean;

  private constructor(names: LabNames, http: 'node' | 'nginx', ipv6 = false) {
    this.names = names;
    this.http = http;
    this.ipv6 = ipv6;
  }

  /** Builds the topology (removing leftovers of an earlier run first) and starts the backends. */
  static async create(opts: LabOptions = {}): Promise<Lab> {
    const names = labNames(opts.prefix);
    Lab.destroyTopology(names);
    const lab = new Lab(names, opts.http ?? 'node', opts.ipv6 ?? false);
    try {
      lab.build(opts);
      for (const vm of BACKENDS) await lab.startBackend(vm);
    } catch (e) {
      await lab.destroy();
      throw e;
    }
    return lab;
  }

  private build(opts: LabOptions): void {
    const LAB = this.names;
    ip('netns', 'add', LAB.hv);
    if (opts.ipv6) Lab.noDad(LAB.hv);
    const hv = (...a: string[]): void => ip('-n', LAB.hv, ...a);
    hv('link', 'set', 'lo', 'up');
    sh('ip', ['netns', 'exec', LAB.hv, 'sysctl', '-qw', 'net.ipv4.ip_forward=1']);
    // xlb-hv plays a gateway router too: with lb_force_snat_ip=router_ip a
    // balanced packet arrives carrying one of hv's own addresses as source.
    sh('ip', ['netns', 'exec', LAB.hv, 'sysctl', '-qw', 'net.ipv4.conf.all.accept_local=1', 'net.ipv4.conf.all.rp_filter=0', 'net.ipv4.conf.default.rp_filter=0']);
    for (const [br, gw] of [
      ['xlb-inside', LAB.insideGw],
      ['xlb-dmz', LAB.dmzGw],
    ] as const) {
      hv('link', 'add', br, 'type', 'bridge');
      hv('addr', 'add', `${gw}/26`, 'dev', br);
      hv('link', 'set', br, 'up');
    }
    for (const [name, vm] of Object.entries(LAB.vms)) {
      ip('netns', 'add', vm.ns);
      if (opts.ipv6) Lab.noDad(vm.ns);
      ip('-n', vm.ns, 'link', 'set', 'lo', 'up');
      ip('link', 'add', vm.hostIf, 'netns', LAB.hv, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', vm.ns);
      hv('link', 'set', vm.hostIf, 'master', vm.bridge);
      hv('link', 'set', vm.hostIf, 'up');
      sh('ip', ['netns', 'exec', LAB.hv, 'ethtool', '-K', vm.hostIf, 'tx', 'off']);
      ip('-n', vm.ns, 'addr', 'add', `${vm.ip}/26`, 'dev', 'eth0');
      ip('-n', vm.ns, 'link', 'set', 'eth0', 'up');
      ip('-n', vm.ns, 'route', 'add', 'default', 'via', name === 'vm3' ? LAB.insideGw : LAB.dmzGw);
      if (opts.vmTxOff) sh('ip', ['netns', 'exec', vm.ns, 'ethtool', '-K', 'eth0', 'tx', 'off']);
    }
    if (opts.ipv6) this.buildIPv6();
  }

  /** No duplicate address detection in a namespace, link-local addresses included (set before
   *  its interfaces exist): a router whose link-local is still tentative cannot send neighbour
   *  solicitations, and the first forwarded packet would wait a second for it. */
  private static noDad(ns: string): void {
    sh('ip', ['netns', 'exec', ns, 'sysctl', '-qw', 'net.ipv6.conf.all.accept_dad=0', 'net.ipv6.conf.default.accept_dad=0']);
  }

  /** IPv6 on top of the IPv4 topology: addresses without DAD, routes, forwarding in xlb-hv. */
  private buildIPv6(): void {
    const LAB = this.names;
    sh('ip', ['netns', 'exec', LAB.hv, 'sysctl', '-qw', 'net.ipv6.conf.all.forwarding=1']);
    for (const [br, gw] of [
      ['xlb-inside', LAB.insideGw6],
      ['xlb-dmz', LAB.dmzGw6],
    ] as const) {
      ip('-n', LAB.hv, '-6', 'addr', 'add', `${gw}/64`, 'dev', br, 'nodad');
    }
    for (const [name, vm] of Object.entries(LAB.vms)) {
      ip('-n', vm.ns, '-6', 'addr', 'add', `${vm.ip6}/64`, 'dev', 'eth0', 'nodad');
      ip('-n', vm.ns, '-6', 'route', 'add', 'default', 'via', name === 'vm3' ? LAB.insideGw6 : LAB.dmzGw6);
      // Every error a test provokes must be sent (no per-peer ICMPv6 rate limit).
      sh('ip', ['netns', 'exec', vm.ns, 'sysctl', '-qw', 'net.ipv6.icmp.ratelimit=0']);
    }
  }

  /** Starts (or restarts) a backend's servers: HTTP on 8000, TCP line echo on 8001, UDP on 8053. */
  async startBackend(vm: VmName): Promise<void> {
    const LAB = this.names;
    this.stopBackend(vm);
    if (this.http === 'nginx') await this.startNginx(vm);
    const script = join(packageRoot(), 'dist', 'src', 'lab-backend.js');
    const httpPort = this.http === 'nginx' ? 0 : LAB.port;
    const child = spawn(
      'ip',
      [
        'netns',
        'exec',
        LAB.vms[vm].ns,
        process.execPath,
        script,
        `i am ${vm}`,
        String(httpPort),
        String(LAB.tcpEchoPort),
        String(LAB.udpPort),
        ...(this.ipv6 ? ['v6'] : []),
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    this.servers.set(vm, child);
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`backend ${vm} did not start within 10 s`)), 10_000);
      child.stdout!.once('data', () => {
        clearTimeout(timer);
        resolve();
      });
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`backend ${vm} exited with ${code}`));
      });
    });
  }

  stopBackend(vm: VmName): void {
    const c = this.servers.get(vm);
    if (c && c.exitCode === null) c.kill('SIGKILL');
    this.servers.delete(vm);
    const n = this.nginx.get(vm);
    if (n) {
      if (n.child.exitCode === null) n.child.kill('SIGKILL');
      rmSync(n.dir, { recursive: true, force: true });
      this.nginx.delete(vm);
    }
  }

  /** nginx in the VM, one process (no master), answering "i am VM" on the HTTP port. */
  private async startNginx(vm: VmName): Promise<void> {
    const LAB = this.names;
    const dir = mkdtempSync(join(tmpdir(), `xlb-nginx-${vm}-`));
    const conf = `
pid ${dir}/nginx.pid;
error_log ${dir}/error.log;
daemon off;
master_process off;
worker_processes 1;
events { worker_connections 8192; }
http {
  access_log ${dir}/access.log;
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  keepalive_requests 100000;
  server {
    listen ${LAB.port} backlog=4096;
    location / { default_type text/plain; return 200 "i am ${vm}\n"; }
  }
}
`;
    writeFileSync(join(dir, 'nginx.conf'), conf);
    const child = spawn('ip', ['netns', 'exec', LAB.vms[vm].ns, 'nginx', '-c', join(dir, 'nginx.conf'), '-p', dir], {
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    this.nginx.set(vm, { child, dir });
    for (let i = 0; i < 100; i++) {
      try {
        const { stdout } = await execFileAsync('ip', ['netns', 'exec', LAB.vms[vm].ns, 'curl', '-s', '--max-time', '1', `http://127.0.0.1:${LAB.port}/`], {
          encoding: 'utf8',
        });
        if (stdout.trim() === `i am ${vm}`) return;
      } catch {
        /* not yet */
      }
      if (child.exitCode !== null) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`nginx for ${vm} did not start (see ${dir}/error.log)`);
  }

  /** Client addresses the backend's nginx logged (nginx backends only). */
  accessLogClients(vm: VmName): string[] {
    const n = this.nginx.get(vm);
    if (!n) return [];
    try {
      return readFileSync(join(n.dir, 'access.log'), 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((l) => l.split(' ')[0]);
    } catch {
      return [];
    }
  }

  /** One HTTP GET of the VIP from vm3 (or `from`): the body, or null when it failed. */
  async curl(timeoutS = 2, target = `${this.names.vip}:${this.names.port}`, from: VmName = 'vm3'): Promise<string | null> {
    try {
      const { stdout } = await execFileAsync(
        'ip',
        ['netns', 'exec', this.names.vms[from].ns, 'curl', '-s', '--max-time', String(timeoutS), `http://${target}/`],
        { timeout: (timeoutS + 5) * 1000, encoding: 'utf8' },
      );
      return stdout.trim();
    } catch {
      return null;
    }
  }

  /** Lets this process exit while the backends keep running (`xlb lab --keep`). */
  release(): void {
    for (const c of this.servers.values()) {
      c.stdout?.destroy();
      c.unref();
    }
    this.servers.clear();
  }

  async destroy(): Promise<void> {
    for (const vm of [...this.servers.keys()]) this.stopBackend(vm);
    Lab.destroyTopology(this.names);
  }

  /** Removes every namespace the lab creates (idempotent). */
  static destroyTopology(LAB: LabNames = labNames()): void {
    for (const ns of [LAB.hv, ...Object.values(LAB.vms).map((v) => v.ns)]) removeNamespace(ns);
  }
}
