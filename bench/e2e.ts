/**
 * Stage "e2e": the seed topology (client vm3 on "inside", backends vm1/vm2 on
 * "dmz", a router between) built five ways, all built once, measured
 * interleaved (run 1: A B C D E, run 2: A B C D E, ...), torn down at the end:
 *
 *   plain kernel   kernel bridges + routing, no LB: vm3 → vm1 directly
 *   no-op XDP      the same with a no-op native XDP program on vm3's host end
 *                  (native XDP on a veth turns off the peer's TSO: this separates
 *                  that effect from xlb's own cost)
 *   xlb (tc)       the same, xlb on vm3's interface (tc, as auto picks for a veth)
 *   xlb (XDP)      the same, xlb on native XDP
 *   nftables DNAT  the same, an nftables DNAT LB in the router (numgen, kube-proxy style)
 *   OVN LB         real OVN (OVS userspace datapath, northd, controller), lb-add + ls-lb-add inside
 *   OVN + xlb      the same OVN topology without OVN's LB, xlb on vm3's OVS port (native XDP:
 *                  OVS's userspace datapath reads veths through AF_PACKET)
 *
 * Figures: new TCP connections/s (wrk, Connection: close, bounded duration),
 * request latency p50/p99 (same wrk run), bulk TCP Gbit/s (iperf3, one
 * stream, to a one-backend VIP), host CPU per packet during the bulk run (all
 * CPUs' busy time from /proc/stat ÷ packets through the client's port; it
 * includes iperf3's own work, alike for every configuration), and for OVN
 * ovs-vswitchd's CPU time per packet received on the topology's ports. A run during
 * which ovs-vswitchd died is not counted: it is reported as lost and
 * ovs-vswitchd is restarted.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Lab, labNames } from '../src/lab.js';
import { Xlb } from '../src/xlb.js';
import { OvnSandbox } from '../src/ovn/sandbox.js';
import { loadNative } from '../src/native.js';
import { packageRoot } from '../src/paths.js';
import { PREFIX, busyNs, figure, nsSh, round, sh, yieldToLoop, type Figure, type Progress, type Ratio, type StageResult } from './common.js';
import { onCleanup } from './cleanup.js';

export interface E2eOptions {
  quick: boolean;
  smoke: boolean;
  progress: Progress;
}

const VIP = '172.16.255.62';
const HTTP = 8000;
const IPERF = 5201;
const IPS = { vm1: '172.16.255.130', vm2: '172.16.255.131', vm3: '172.16.255.194' };
const CONFIGS = ['plain kernel', 'no-op XDP', 'xlb (tc)', 'xlb (XDP)', 'nftables DNAT', 'OVN LB', 'OVN + xlb (XDP)'] as const;
type Config = (typeof CONFIGS)[number];

interface Target {
  config: Config;
  clientNs: string;
  http: string;
  iperf: string;
  /** OVS ports of this topology (for CPU per packet) */
  ovsPorts?: string[];
  /** The client's port on the host: namespace and interface (packets for CPU per packet). */
  port: { ns: string; ifname: string };
}

/** Packets through an interface (rx + tx) so far. */
function portPackets(p: { ns: string; ifname: string }): number {
  const read = (k: string): number => Number(nsSh(p.ns, 'cat', [`/sys/class/net/${p.ifname}/statistics/${k}_packets`]).trim());
  return read('rx') + read('tx');
}

function xlbConfig(iface: string, hook: 'tc' | 'xdp'): object {
  return {
    load_balancers: [
      {
        name: 'lb1',
        protocol: 'tcp',
        vips: {
          [`${VIP}:${HTTP}`]: `${IPS.vm1}:${HTTP},${IPS.vm2}:${HTTP}`,
          [`${VIP}:${IPERF}`]: `${IPS.vm1}:${IPERF}`,
        },
      },
    ],
    logical_switches: [{ name: 'inside', ports: [{ interface: iface, hook }], load_balancer: ['lb1'] }],
  };
}

/** Servers: nginx (HTTP) in every backend, iperf3 -s in vm1. Each child's pid is kept. */
class Servers {
  private readonly children: ChildProcess[] = [];
  private readonly dir = mkdtempSync(join(tmpdir(), 'xlb-b-srv-'));

  nginx(ns: string, greeting: string): void {
    const d = join(this.dir, ns);
    sh('mkdir', ['-p', d]);
    const conf = join(d, 'nginx.conf');
    writeFileSync(
      conf,
      `worker_processes 1;\npid ${d}/nginx.pid;\nerror_log ${d}/error.log;\nevents { worker_connections 4096; }\n` +
        `http { access_log off; client_body_temp_path ${d}; proxy_temp_path ${d}; fastcgi_temp_path ${d}; uwsgi_temp_path ${d}; scgi_temp_path ${d};\n` +
        `  server { listen ${HTTP} reuseport backlog=4096; location / { return 200 "${greeting}\\n"; } } }\n`,
    );
    this.children.push(spawn('ip', ['netns', 'exec', ns, 'nginx', '-c', conf, '-g', 'daemon off;'], { stdio: 'ignore' }));
  }

  iperf(ns: string): void {
    this.children.push(spawn('ip', ['netns', 'exec', ns, 'iperf3', '-s', '-p', String(IPERF)], { stdio: 'ignore' }));
  }

  /** SIGTERM (nginx's master then stops its worker), SIGKILL after 2 s; waits so nothing is left as a zombie. */
  async stop(): Promise<void> {
    const live = this.children.splice(0).filter((c) => c.exitCode === null && c.signalCode === null && c.pid !== undefined);
    await Promise.all(
      live.map(
        (c) =>
          new Promise<void>((resolve) => {
            const t = setTimeout(() => {
              try {
                process.kill(c.pid!, 'SIGKILL');
              } catch {
                /* gone */
              }
            }, 2000);
            c.once('exit', () => {
              clearTimeout(t);
              resolve();
            });
            try {
              process.kill(c.pid!, 'SIGTERM');
            } catch {
              clearTimeout(t);
              resolve();
            }
          }),
      ),
    );
    rmSync(this.dir, { recursive: true, force: true });
  }

  /** Last resort (signal handler, which cannot wait): SIGTERM what is still running (nginx's master
   *  then stops its workers itself, where a SIGKILLed master leaves them running) and remove the
   *  servers' directory. */
  killNow(): void {
    for (const c of this.children.splice(0)) {
      try {
        if (c.pid !== undefined && c.exitCode === null) process.kill(c.pid, 'SIGTERM');
      } catch {
        /* gone */
      }
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}

function curlOk(ns: string, url: string): boolean {
  for (let i = 0; i < 5; i++) {
    const r = spawnSync('ip', ['netns', 'exec', ns, 'curl', '-s', '--max-time', '2', url], { encoding: 'utf8' });
    if (r.status === 0 && /i am/.test(r.stdout)) return true;
    spawnSync('sleep', ['0.5']);
  }
  return false;
}

function toMs(v: string): number {
  const m = /^([\d.]+)(us|ms|s)$/.exec(v.trim());
  if (!m) return NaN;
  const x = Number(m[1]);
  return m[2] === 'us' ? x / 1000 : m[2] === 's' ? x * 1000 : x;
}

interface WrkResult {
  rps: number;
  p50: number;
  p99: number;
  errors: string | null;
}

function wrk(ns: string, url: string, seconds: number): WrkResult | null {
  const r = spawnSync(
    'ip',
    ['netns', 'exec', ns, 'wrk', '-t1', '-c8', `-d${seconds}s`, '--timeout', '2s', '--latency', '-H', 'Connection: close', url],
    { encoding: 'utf8', timeout: (seconds + 20) * 1000 },
  );
  const out = r.stdout ?? '';
  const rps = /Requests\/sec:\s+([\d.]+)/.exec(out);
  const p50 = /\s50%\s+(\S+)/.exec(out);
  const p99 = /\s99%\s+(\S+)/.exec(out);
  if (!rps || !p50 || !p99) return null;
  const err = /Socket errors:[^\n]*/.exec(out)?.[0] ?? null;
  const non2xx = /Non-2xx or 3xx responses:\s*(\d+)/.exec(out)?.[0] ?? null;
  return { rps: Number(rps[1]), p50: toMs(p50[1]), p99: toMs(p99[1]), errors: [err, non2xx].filter(Boolean).join('; ') || null };
}

function iperf(ns: string, host: string, seconds: number): number | null {
  const r = spawnSync('ip', ['netns', 'exec', ns, 'iperf3', '-c', host, '-p', String(IPERF), '-t', String(seconds), '-J'], {
    encoding: 'utf8',
    timeout: (seconds + 20) * 1000,
  });
  try {
    const j = JSON.parse(r.stdout) as { end?: { sum_received?: { bits_per_second?: number } } };
    const bps = j.end?.sum_received?.bits_per_second;
    return typeof bps === 'number' && bps > 0 ? bps / 1e9 : null;
  } catch {
    return null;
  }
}

/** The OVN topology: inside-T (vm3), dmz-T (vm1, vm2), router r-T. */
function ovnTopology(s: OvnSandbox, t: 'a' | 'b'): { ns: Record<'vm1' | 'vm2' | 'vm3', string>; ports: string[] } {
  const ns = { vm1: `${PREFIX}o${t}1`, vm2: `${PREFIX}o${t}2`, vm3: `${PREFIX}o${t}3` };
  const mac = (n: number): string => `0a:00:00:0${t === 'a' ? 'a' : 'b'}:00:0${n}`;
  const rmac = (n: number): string => `00:00:00:0${t === 'a' ? 'a' : 'b'}:ff:0${n}`;
  s.nbctl('ls-add', `inside-${t}`, '--', 'ls-add', `dmz-${t}`, '--', 'lr-add', `r-${t}`);
  s.nbctl('lrp-add', `r-${t}`, `r-${t}-inside`, rmac(1), '172.16.255.193/26');
  s.nbctl('lrp-add', `r-${t}`, `r-${t}-dmz`, rmac(2), '172.16.255.129/26');
  for (const [sw, rp] of [
    [`inside-${t}`, `r-${t}-inside`],
    [`dmz-${t}`, `r-${t}-dmz`],
  ] as const) {
    s.nbctl('lsp-add', sw, `${sw}-r`, '--', 'lsp-set-type', `${sw}-r`, 'router', '--', 'lsp-set-addresses', `${sw}-r`, 'router', '--', 'lsp-set-options', `${sw}-r`, `router-port=${rp}`);
  }
  const ports: string[] = [];
  for (const [vm, n, sw, gw] of [
    ['vm1', 1, `dmz-${t}`, '172.16.255.129'],
    ['vm2', 2, `dmz-${t}`, '172.16.255.129'],
    ['vm3', 3, `inside-${t}`, '172.16.255.193'],
  ] as const) {
    const lsp = `${vm}-${t}`;
    s.nbctl('lsp-add', sw, lsp, '--', 'lsp-set-addresses', lsp, `${mac(n)} ${IPS[vm]}`);
    const hostIf = `${ns[vm]}h`;
    s.plugVm({ ns: ns[vm], hostIf, lsp, mac: mac(n), cidr: `${IPS[vm]}/26`, gateway: gw });
    ports.push(hostIf);
  }
  return { ns, ports };
}

export async function runE2e(opts: E2eOptions): Promise<StageResult> {
  const runs = opts.smoke ? 1 : opts.quick ? 2 : 5;
  const secs = opts.smoke ? 1 : opts.quick ? 2 : 5;
  const bar = opts.progress.bar('e2e', 2 + runs * CONFIGS.length);
  const notes: string[] = [];
  const labs: Lab[] = [];
  const xlbs: Array<{ x: Xlb; inst: { pinRoot: string; stateDir: string } }> = [];
  const servers = new Servers();
  let sandbox: OvnSandbox | null = null;
  const cleanup = (): void => {
    servers.killNow();
    for (const { x, inst } of xlbs.splice(0)) {
      try {
        x.close();
      } catch {
        /* closed */
      }
      Xlb.reset(inst);
      rmSync(inst.stateDir, { recursive: true, force: true });
    }
    for (const l of labs.splice(0)) Lab.destroyTopology(l.names);
    sandbox?.teardown();
    sandbox = null;
    spawnSync('ip', ['netns', 'del', `${PREFIX}ovs`]);
  };
  const unregister = onCleanup(cleanup);
  const finish = async (): Promise<void> => {
    await servers.stop();
    cleanup();
  };
  try {
    // ---- build everything once ----
    const targets: Target[] = [];
    const kernelLab = async (tag: string): Promise<Lab> => {
      const names = labNames(`${PREFIX}${tag}-`);
      Lab.destroyTopology(names);
      const lab = await Lab.create({ prefix: names.prefix, vmTxOff: false });
      labs.push(lab);
      lab.stopBackend('vm1');
      lab.stopBackend('vm2');
      servers.nginx(names.vms.vm1.ns, 'i am vm1');
      servers.nginx(names.vms.vm2.ns, 'i am vm2');
      servers.iperf(names.vms.vm1.ns);
      return lab;
    };
    const hostPort = (l: Lab): { ns: string; ifname: string } => ({ ns: l.names.hv, ifname: l.names.vms.vm3.hostIf });
    const plain = await kernelLab('p');
    targets.push({ config: 'plain kernel', clientNs: plain.names.vms.vm3.ns, http: `http://${IPS.vm1}:${HTTP}/`, iperf: IPS.vm1, port: hostPort(plain) });

    const noop = await kernelLab('z');
    {
      const native = loadNative();
      const obj = native.openObject(join(packageRoot(), 'build', 'bpf', 'bench.bpf.o'), {});
      const fd = obj.programs.find((p) => p.name === 'bench_xdp_noop')!.fd;
      const ifindex = native.ifNameToIndex(noop.names.hv, noop.names.vms.vm3.hostIf);
      native.xdpAttach(noop.names.hv, ifindex, fd, 'native'); // stays until the namespace goes
      native.closeObject(obj.handle);
    }
    targets.push({ config: 'no-op XDP', clientNs: noop.names.vms.vm3.ns, http: `http://${IPS.vm1}:${HTTP}/`, iperf: IPS.vm1, port: hostPort(noop) });

    // xlb on a lab of its own, attached at `hook`.
    const withXlbAt = async (lab: string, suffix: string, hook: 'tc' | 'xdp', config: 'xlb (tc)' | 'xlb (XDP)'): Promise<void> => {
      const l = await kernelLab(lab);
      const inst = { pinRoot: `/sys/fs/bpf/xlb-b-e2e-${suffix}`, stateDir: `/run/xlb-b-e2e-${suffix}` };
      Xlb.reset(inst);
      const x = Xlb.open(inst);
      xlbs.push({ x, inst });
      x.apply(xlbConfig(`${l.names.hv}/${l.names.vms.vm3.hostIf}`, hook));
      targets.push({ config, clientNs: l.names.vms.vm3.ns, http: `http://${VIP}:${HTTP}/`, iperf: VIP, port: hostPort(l) });
    };
    await withXlbAt('x', 'k', 'tc', 'xlb (tc)');
    await withXlbAt('d', 'd', 'xdp', 'xlb (XDP)');

    const nft = await kernelLab('n');
    {
      const rules =
        'table ip xlbbench {\n chain pre {\n  type nat hook prerouting priority dstnat; policy accept;\n' +
        `  ip daddr ${VIP} tcp dport ${HTTP} dnat to numgen random mod 2 map { 0 : ${IPS.vm1}, 1 : ${IPS.vm2} }\n` +
        `  ip daddr ${VIP} tcp dport ${IPERF} dnat to ${IPS.vm1}\n }\n}\n`;
      const f = join(tmpdir(), `xlb-b-nft-${process.pid}.nft`);
      writeFileSync(f, rules);
      try {
        nsSh(nft.names.hv, 'nft', ['-f', f]);
      } finally {
        rmSync(f, { force: true });
      }
    }
    targets.push({ config: 'nftables DNAT', clientNs: nft.names.vms.vm3.ns, http: `http://${VIP}:${HTTP}/`, iperf: VIP, port: hostPort(nft) });
    bar.tick('kernel topologies');

    const t0 = Date.now();
    sandbox = OvnSandbox.start({ netns: `${PREFIX}ovs` });
    const sb = sandbox;
    const a = ovnTopology(sb, 'a');
    sb.nbctl('lb-add', 'lb1', `${VIP}:${HTTP}`, `${IPS.vm1}:${HTTP},${IPS.vm2}:${HTTP}`, 'tcp');
    sb.nbctl('lb-add', 'lb1', `${VIP}:${IPERF}`, `${IPS.vm1}:${IPERF}`, 'tcp');
    sb.nbctl('ls-lb-add', 'inside-a', 'lb1');
    const b = ovnTopology(sb, 'b');
    sb.syncHv();
    for (const t of [a, b]) {
      servers.nginx(t.ns.vm1, 'i am vm1');
      servers.nginx(t.ns.vm2, 'i am vm2');
      servers.iperf(t.ns.vm1);
    }
    {
      const inst = { pinRoot: '/sys/fs/bpf/xlb-b-e2e-o', stateDir: '/run/xlb-b-e2e-o' };
      Xlb.reset(inst);
      const x = Xlb.open(inst);
      xlbs.push({ x, inst });
      x.apply(xlbConfig(`${PREFIX}ovs/${b.ns.vm3}h`, 'xdp'));
    }
    targets.push({ config: 'OVN LB', clientNs: a.ns.vm3, http: `http://${VIP}:${HTTP}/`, iperf: VIP, ovsPorts: a.ports, port: { ns: `${PREFIX}ovs`, ifname: `${a.ns.vm3}h` } });
    targets.push({ config: 'OVN + xlb (XDP)', clientNs: b.ns.vm3, http: `http://${VIP}:${HTTP}/`, iperf: VIP, ovsPorts: b.ports, port: { ns: `${PREFIX}ovs`, ifname: `${b.ns.vm3}h` } });
    notes.push(`OVN sandbox (ovsdb ×3, ovs-vswitchd netdev, northd, controller) up and both topologies synced in ${round((Date.now() - t0) / 1000, 1)} s`);
    bar.tick('OVN sandbox');

    // ---- reachability: a configuration that does not answer is reported, not measured ----
    await new Promise((r) => setTimeout(r, 500));
    const ok = new Map<Config, boolean>();
    for (const t of targets) {
      const good = curlOk(t.clientNs, t.http);
      ok.set(t.config, good);
      if (!good) notes.push(`${t.config}: ${t.http} did not answer from the client; not measured`);
    }

    // ---- measure, interleaved ----
    const vals = new Map<string, number[]>();
    const lost = new Map<Config, number>();
    const errs = new Map<Config, string[]>();
    const push = (c: Config, metric: string, v: number | null): void => {
      if (v === null || !Number.isFinite(v)) return;
      const k = `${c}\u0000${metric}`;
      vals.set(k, [...(vals.get(k) ?? []), v]);
    };
    for (let r = 0; r < runs; r++) {
      for (const t of targets) {
        await yieldToLoop(); // a signal is handled here, not after the whole loop
        if (!ok.get(t.config)) {
          bar.tick(`${t.config} (skipped)`);
          continue;
        }
        if (t.ovsPorts && sb.vswitchdAlive()) sb.run('ovs-appctl', ['-t', join(sb.dir, 'ovs-vswitchd.ctl'), 'dpctl/flush-conntrack']);
        const w = wrk(t.clientNs, t.http, secs);
        const cpu0 = t.ovsPorts ? sb.vswitchdCpuNs() : 0;
        const rx0 = t.ovsPorts ? sb.rxPackets(t.ovsPorts) : 0;
        const busy0 = busyNs();
        const pk0 = portPackets(t.port);
        const g = iperf(t.clientNs, t.iperf, secs);
        const busy1 = busyNs();
        const pk1 = portPackets(t.port);
        const cpu1 = t.ovsPorts ? sb.vswitchdCpuNs() : 0;
        const rx1 = t.ovsPorts ? sb.rxPackets(t.ovsPorts) : 0;
        if (t.ovsPorts && !sb.vswitchdAlive()) {
          lost.set(t.config, (lost.get(t.config) ?? 0) + 1);
          notes.push(`run ${r + 1}, ${t.config}: ovs-vswitchd died (${sb.vswitchdDeath()}); run not counted, ovs-vswitchd restarted`);
          sb.restartVswitchd();
          bar.tick(`${t.config} (lost)`);
          continue;
        }
        if (w) {
          push(t.config, 'cps', w.rps);
          push(t.config, 'p50', w.p50);
          push(t.config, 'p99', w.p99);
          if (w.errors) errs.set(t.config, [...(errs.get(t.config) ?? []), `run ${r + 1}: ${w.errors}`]);
        }
        push(t.config, 'gbps', g);
        if (t.ovsPorts && rx1 > rx0) push(t.config, 'cpu', (cpu1 - cpu0) / (rx1 - rx0) / 1000);
        if (pk1 > pk0) push(t.config, 'hostcpu', (busy1 - busy0) / (pk1 - pk0) / 1000);
        bar.tick(t.config);
      }
    }
    const figs: Figure[] = [];
    const get = (c: Config, m: string): number[] => vals.get(`${c}\u0000${m}`) ?? [];
    const metrics: Array<[string, string, string]> = [
      ['cps', 'new TCP connections/s (wrk -c8, Connection: close)', 'conn/s'],
      ['gbps', 'bulk TCP (iperf3, one stream, one-backend VIP)', 'Gbit/s'],
      ['p50', 'request latency p50 (wrk)', 'ms'],
      ['p99', 'request latency p99 (wrk)', 'ms'],
      ['hostcpu', 'host CPU per packet through the client port (bulk run, all CPUs, iperf3 included)', 'µs'],
      ['cpu', 'ovs-vswitchd CPU per packet received (bulk run)', 'µs'],
    ];
    for (const [m, group, unit] of metrics) {
      for (const c of CONFIGS) {
        if (m === 'cpu' && !c.startsWith('OVN')) continue;
        const e = m === 'cps' ? errs.get(c) : undefined;
        figs.push(figure('e2e', group, c, unit, get(c, m), { lost: lost.get(c), note: e?.join(', ') }));
      }
    }
    const ratios: Ratio[] = [];
    const med = (c: Config, m: string): number | null => figs.find((f) => f.config === c && f.unit === (m === 'cps' ? 'conn/s' : 'Gbit/s'))?.median ?? null;
    for (const m of ['cps', 'gbps'] as const) {
      const base = med('plain kernel', m);
      for (const c of CONFIGS.slice(1)) {
        const v = med(c, m);
        ratios.push({ stage: 'e2e', what: `${m === 'cps' ? 'connections/s' : 'bulk Gbit/s'}: ${c} ÷ plain kernel`, value: v !== null && base ? round(v / base, 3) : null });
      }
      const nx = med('no-op XDP', m);
      const xx = med('xlb (XDP)', m);
      ratios.push({ stage: 'e2e', what: `${m === 'cps' ? 'connections/s' : 'bulk Gbit/s'}: xlb (XDP) ÷ no-op XDP`, value: nx && xx !== null ? round(xx / nx, 3) : null });
      const o = med('OVN LB', m);
      const ox = med('OVN + xlb (XDP)', m);
      ratios.push({ stage: 'e2e', what: `${m === 'cps' ? 'connections/s' : 'bulk Gbit/s'}: OVN + xlb ÷ OVN LB`, value: o && ox !== null ? round(ox / o, 3) : null });
    }
    notes.push(
      `${runs} run(s) per configuration, interleaved; wrk ${secs} s (1 thread, 8 connections, Connection: close: every request is a new connection), iperf3 ${secs} s, one stream`,
      'backends: nginx (1 worker) in vm1/vm2, iperf3 -s in vm1; kernel topologies: veth host ends with tx checksum offload off; OVN: tx off on both ends (AF_PACKET)',
      'host CPU per packet: busy time of all CPUs (/proc/stat) during the iperf3 run ÷ packets through the client\'s port (rx + tx); ovs-vswitchd CPU per packet: schedstat of all its threads ÷ packets OVS received on the topology\'s ports',
      'no-op XDP vs plain kernel: the cost of native XDP on the veth (the peer loses TSO); xlb (XDP) vs no-op XDP: xlb\'s own cost on that hook',
      'reference (issue 5, this kind of machine): OVN LB ≈ 0.6 Gbit/s and ≈ 13 µs vswitchd CPU per packet; nftables DNAT and plain kernel ≈ 11.5 Gbit/s',
    );
    bar.done();
    return { figures: figs, ratios, notes };
  } finally {
    await finish();
    unregister();
  }
}
