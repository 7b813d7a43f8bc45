/**
 * CLI verbs of the daemon and its API, in OVN's words (ovn-nbctl):
 * `xlb daemon`, `xlb lb-add/lb-del/lb-list`, `xlb ls-add/ls-del/ls-list`,
 * `xlb ls-lb-add/ls-lb-del`, `xlb top`. The API verbs find the running daemon
 * through STATE_DIR/daemon.json (or --api-socket) and say plainly when none runs.
 */
import type { ConntrackTimeouts } from '../conntrack.js';
import { Command, InvalidArgumentError, Option } from 'commander';
import type { Level } from 'pino';
import { XlbClient, XlbApiError, type LoadBalancerView, type StatsResponse, type Protocol } from './client.js';
import { DEFAULT_OVS_DB } from './discovery.js';

interface GlobalOpts {
  pinRoot: string;
  stateDir: string;
}

interface ApiOpts {
  apiSocket?: string;
}

function positiveInt(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError(`must be a positive integer (got "${v}")`);
  return n;
}

function positiveNumber(v: string): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError(`must be a positive number (got "${v}")`);
  return n;
}

/** Runs an API call; API errors become plain `xlb: message` errors. */
async function call<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    if (e instanceof XlbApiError) throw new Error(e.message, { cause: e });
    throw e;
  }
}

function table(rows: string[][]): string {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]))).join('  ').trimEnd()).join('\n');
}

/** `xlb lb-list` for a person: one line per VIP, like ovn-nbctl lb-list. */
export function renderLbList(lbs: LoadBalancerView[]): string {
  if (lbs.length === 0) return '(no load balancers)';
  const rows = [['LB', 'PROTO', 'VIP', 'IPs', 'SOURCE']];
  for (const lb of lbs) {
    const vips = Object.entries(lb.vips);
    if (vips.length === 0) rows.push([lb.name, lb.protocol, '', '', lb.source]);
    vips.forEach(([vip, ips], i) => rows.push([i === 0 ? lb.name : '', i === 0 ? lb.protocol : '', vip, ips || '(none)', i === 0 ? lb.source : '']));
  }
  return table(rows);
}

const fmtRate = (n: number): string => (n >= 1e6 ? `${(n / 1e6).toFixed(1)}M` : n >= 1e3 ? `${(n / 1e3).toFixed(1)}k` : n.toFixed(n < 10 ? 1 : 0));

/** One frame of `xlb top`: per-VIP rates between two stats samples. */
export function renderTop(prev: StatsResponse | null, cur: StatsResponse, seconds: number): string {
  const before = new Map(prev?.vips.map((v) => [v.id, v.stats]) ?? []);
  const rows = [['VIP', 'LB', 'PKTS/S IN', 'PKTS/S OUT', 'CONNS/S', 'DROPS/S', 'CONNS', 'BACKENDS']];
  for (const v of cur.vips) {
    const p = before.get(v.id);
    const rate = (k: 'packets' | 'replyPackets' | 'newConns' | 'drops'): string => (p ? fmtRate(Math.max(0, v.stats[k] - p[k]) / seconds) : '-');
    rows.push([`${v.vip}/${v.protocol}`, v.lb, rate('packets'), rate('replyPackets'), rate('newConns'), rate('drops'), String(v.stats.newConns), String(v.backends.length)]);
  }
  const head = `xlb top — ${new Date().toLocaleTimeString()}  conntrack ${cur.conntrack.entries}/${cur.conntrack.max}  applies ${cur.daemon.applies} (errors ${cur.daemon.applyErrors})`;
  return `${head}\n\n${cur.vips.length === 0 ? '(no VIPs)' : table(rows)}`;
}

export function registerDaemonVerbs(program: Command, g: () => GlobalOpts): void {
  const client = (o: ApiOpts): XlbClient => new XlbClient({ socketPath: o.apiSocket, stateDir: g().stateDir });
  const apiOpt = (): Option => new Option('--api-socket <path>', 'API socket of the daemon (default: found through STATE_DIR/daemon.json)');

  program
    .command('daemon')
    .configureHelp({ showGlobalOptions: true })
    .description('run the xlb daemon: serve the merged state of a config file, the local API and OVN, and keep it served')
    .option('--config <file>', 'config file (YAML or JSON, the `xlb apply` shape), watched: an edit is applied, a bad edit is logged and ignored')
    .option('--ovn-nb <remote>', 'mirror OVN Northbound load balancers: unix:PATH, tcp:HOST:PORT, or a comma-separated list of cluster members')
    .option('--ovs-db <remote>', 'local Open_vSwitch database (maps logical ports to interfaces through external_ids:iface-id)', DEFAULT_OVS_DB)
    .option('--api-socket <path>', 'unix socket of the local HTTP API, mode 0600 (default STATE_DIR/api.sock, i.e. /run/xlb/api.sock)')
    .option('--api-tcp <host:port>', 'also serve the API on a loopback TCP port (127.0.0.0/8, ::1; port 0 picks one); requires --api-token-file')
    .option('--api-token-file <file>', 'file holding the bearer token the TCP listener requires (at least 16 characters)')
    .option('--ovs-netns <netns>', "with --ovn-nb: the network namespace the OVS host's interfaces live in (labs; interfaces become NETNS/IFNAME)")
    .option('--ct-gc-interval <seconds>', 'seconds between conntrack garbage collections (0: off)', parseSeconds, 10)
    .option(
      '--ct-timeouts <list>',
      'conntrack idle timeouts in seconds, e.g. tcp_syn=30,tcp_established=86400,tcp_closing=30,udp=60,sctp=210,other=30',
      parseCtTimeouts,
    )
    .addOption(new Option('--log-level <level>', 'log level of the JSON logs on stderr').choices(['trace', 'debug', 'info', 'warn', 'error', 'fatal']).default('info'))
    .addHelpText(
      'after',
      `
Sources are merged by object name with precedence  api > file > ovn : a load balancer,
switch or router written through the API hides the one of the same name in the config
file, which hides OVN's. Every change is merged, validated and applied before it is
accepted; a bad change is logged (JSON on stderr) and the last good state stays served.
The API writes are kept in STATE_DIR/api-state.json across restarts.

The daemon writes STATE_DIR/daemon.json so that \`xlb lb-add\`, \`xlb lb-list\`, ... find it.
SIGTERM/SIGINT stop it without detaching anything (the data plane keeps serving; the next
start re-adopts the pinned maps and programs and rewrites nothing unchanged); SIGHUP re-reads
the config file. Global options --pin-root and --state-dir select the instance.`,
    )
    .action(
      async (o: {
        config?: string;
        ovnNb?: string;
        ovsDb: string;
        apiSocket?: string;
        apiTcp?: string;
        apiTokenFile?: string;
        ovsNetns?: string;
        ctGcInterval: number;
        ctTimeouts?: Partial<ConntrackTimeouts>;
        logLevel: Level;
      }) => {
        const { runDaemon } = await import('./daemon.js');
        if (o.apiTcp !== undefined && o.apiTokenFile === undefined) throw new Error('--api-tcp requires --api-token-file FILE');
        await runDaemon({
          pinRoot: g().pinRoot,
          stateDir: g().stateDir,
          config: o.config,
          ovnNb: o.ovnNb,
          ovsDb: o.ovsDb,
          apiSocket: o.apiSocket,
          apiTcp: o.apiTcp,
          apiTokenFile: o.apiTokenFile,
          ovsNetns: o.ovsNetns,
          ctGcIntervalS: o.ctGcInterval,
          ctTimeouts: o.ctTimeouts,
          logLevel: o.logLevel,
        });
        // Nothing should keep the process alive after a stop; make sure of it.
        setTimeout(() => process.exit(process.exitCode ?? 0), 2000).unref();
      },
    );

  program
    .command('gc')
    .description('remove idle conntrack entries now (the daemon does it every --ct-gc-interval seconds)')
    .option('--ct-timeouts <list>', 'idle timeouts in seconds, e.g. tcp_established=3600,udp=30', parseCtTimeouts)
    .action(async (o: { ctTimeouts?: Partial<ConntrackTimeouts> }) => {
      const { Xlb } = await import('../xlb.js');
      if (!Xlb.isLoaded(g().pinRoot)) {
        console.log(`nothing to collect: no xlb pins under ${g().pinRoot}`);
        return;
      }
      const x = Xlb.open({ pinRoot: g().pinRoot, stateDir: g().stateDir });
      try {
        const r = x.gc(o.ctTimeouts ?? {});
        console.log(`conntrack: ${r.scanned} entries scanned, ${r.removed} idle entries removed`);
      } finally {
        x.close();
      }
    });

  program
    .command('lb-add')
    .description('add VIP to load balancer LB with BACKENDS ("ip:port,ip:port"), creating LB (like ovn-nbctl lb-add)')
    .argument('<lb>', 'load balancer name')
    .argument('<vip>', 'VIP: IP:PORT, or IP for an IP-only VIP')
    .argument('<backends>', 'comma-separated backends, e.g. 172.16.255.130:8000,172.16.255.131:8000')
    .argument('[proto]', 'tcp (default), udp or sctp')
    .addOption(apiOpt())
    .action(async (lb: string, vip: string, backends: string, proto: string | undefined, o: ApiOpts) => {
      if (proto !== undefined && proto !== 'tcp' && proto !== 'udp' && proto !== 'sctp') throw new Error(`PROTO must be tcp, udp or sctp (got "${proto}")`);
      const r = await call(() => client(o).setVip(lb, vip, backends, proto as Protocol | undefined));
      console.log(`${lb}: ${vip} → ${backends || '(no backends)'} (${r.apply.unchanged ? 'unchanged' : `${r.apply.writes} map writes`})`);
    });

  program
    .command('lb-del')
    .description('delete load balancer LB, or only its VIP (like ovn-nbctl lb-del)')
    .argument('<lb>', 'load balancer name')
    .argument('[vip]', 'VIP to remove')
    .addOption(apiOpt())
    .action(async (lb: string, vip: string | undefined, o: ApiOpts) => {
      const c = client(o);
      await call(() => (vip === undefined ? c.deleteLoadBalancer(lb) : c.deleteVip(lb, vip)));
      console.log(vip === undefined ? `${lb}: deleted` : `${lb}: ${vip} deleted`);
    });

  program
    .command('lb-list')
    .description('list the load balancers being served (every source), one VIP a line')
    .argument('[lb]', 'only this load balancer')
    .option('--json', 'machine-readable output')
    .addOption(apiOpt())
    .action(async (lb: string | undefined, o: ApiOpts & { json?: boolean }) => {
      let lbs = await call(() => client(o).loadBalancers());
      if (lb !== undefined) lbs = lbs.filter((x) => x.name === lb);
      console.log(o.json ? JSON.stringify(lbs, null, 2) : renderLbList(lbs));
    });

  program
    .command('ls-add')
    .description('create logical switch SWITCH with host interfaces PORT... (IFNAME or NETNS/IFNAME)')
    .argument('<switch>', 'logical switch name')
    .argument('[ports...]', 'host interfaces of the switch')
    .option('--may-exist', 'replace the ports of an existing switch instead of failing')
    .addOption(apiOpt())
    .action(async (sw: string, ports: string[], o: ApiOpts & { mayExist?: boolean }) => {
      const c = client(o);
      const existing = (await call(() => c.logicalSwitches())).find((x) => x.name === sw);
      if (existing && !o.mayExist) throw new Error(`logical switch "${sw}" already exists (from ${existing.source}); use --may-exist to replace its ports`);
      await call(() => c.putLogicalSwitch(sw, { ports, load_balancer: existing?.load_balancer ?? [] }));
      console.log(`${sw}: ${ports.length ? ports.join(', ') : '(no ports)'}`);
    });

  program
    .command('ls-del')
    .description('delete logical switch SWITCH (one written through the API)')
    .argument('<switch>', 'logical switch name')
    .addOption(apiOpt())
    .action(async (sw: string, o: ApiOpts) => {
      await call(() => client(o).deleteLogicalSwitch(sw));
      console.log(`${sw}: deleted`);
    });

  program
    .command('ls-list')
    .description('list the logical switches being served (every source)')
    .option('--json', 'machine-readable output')
    .addOption(apiOpt())
    .action(async (o: ApiOpts & { json?: boolean }) => {
      const list = await call(() => client(o).logicalSwitches());
      if (o.json) return console.log(JSON.stringify(list, null, 2));
      if (list.length === 0) return console.log('(no logical switches)');
      console.log(
        table([
          ['SWITCH', 'PORTS', 'LOAD BALANCERS', 'SOURCE'],
          ...list.map((s) => [s.name, s.ports.map((p) => p.interface).join(',') || '-', s.load_balancer.join(',') || '-', s.source]),
        ]),
      );
    });

  program
    .command('ls-lb-add')
    .description('attach load balancer LB to the existing logical switch SWITCH (like ovn-nbctl ls-lb-add)')
    .argument('<switch>', 'logical switch name')
    .argument('<lb>', 'load balancer name')
    .addOption(apiOpt())
    .action(async (sw: string, lb: string, o: ApiOpts) => {
      await call(() => client(o).attach(sw, lb));
      console.log(`${sw}: ${lb} attached`);
    });

  program
    .command('ls-lb-del')
    .description('detach load balancer LB from SWITCH, or every load balancer when LB is omitted (like ovn-nbctl ls-lb-del)')
    .argument('<switch>', 'logical switch name')
    .argument('[lb]', 'load balancer name')
    .addOption(apiOpt())
    .action(async (sw: string, lb: string | undefined, o: ApiOpts) => {
      await call(() => client(o).detach(sw, lb));
      console.log(lb === undefined ? `${sw}: every load balancer detached` : `${sw}: ${lb} detached`);
    });

  program
    .command('top')
    .description('live per-VIP packet and connection rates from the daemon, redrawn every interval')
    .option('--interval <seconds>', 'seconds between frames', positiveNumber, 1)
    .option('--count <n>', 'stop after N frames', positiveInt)
    .addOption(apiOpt())
    .action(async (o: ApiOpts & { interval: number; count?: number }) => {
      const c = client(o);
      let prev: StatsResponse | null = null;
      let t0 = performance.now();
      const tty = process.stdout.isTTY === true;
      for (let frame = 0; o.count === undefined || frame < o.count; frame++) {
        if (frame > 0) await new Promise((r) => setTimeout(r, o.interval * 1000));
        const cur = await call(() => c.stats());
        const now = performance.now();
        const out = renderTop(prev, cur, (now - t0) / 1000 || o.interval);
        process.stdout.write(tty ? `\x1b[H\x1b[2J${out}\n` : `${out}\n\n`);
        prev = cur;
        t0 = now;
      }
    });
}

function parseSeconds(v: string): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new InvalidArgumentError(`must be a number of seconds ≥ 0 (got "${v}")`);
  return n;
}

const CT_TIMEOUT_KEYS: Record<string, keyof ConntrackTimeouts> = {
  tcp_syn: 'tcpSyn',
  tcp_established: 'tcpEstablished',
  tcp_closing: 'tcpClosing',
  udp: 'udp',
  sctp: 'sctp',
  other: 'other',
};

function parseCtTimeouts(v: string): Partial<ConntrackTimeouts> {
  const out: Partial<ConntrackTimeouts> = {};
  for (const item of v.split(',')) {
    const [k, s] = item.split('=');
    const key = CT_TIMEOUT_KEYS[k?.trim() ?? ''];
    const n = Number(s);
    if (!key) throw new InvalidArgumentError(`unknown timeout "${k}" (known: ${Object.keys(CT_TIMEOUT_KEYS).join(', ')})`);
    if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError(`${k} must be a positive number of seconds (got "${s}")`);
    out[key] = n;
  }
  return out;
}
