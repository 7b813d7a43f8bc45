/**
 * OvnSource: mirrors OVN's Northbound database (plus this host's
 * Open_vSwitch database, for port bindings) into a desired-state fragment in
 * xlb's config shape.
 *
 * Mapping:
 * - Load_Balancer → load_balancers[] {name, protocol (empty → tcp), vips,
 *   options, selection_fields}.
 * - Logical_Switch → logical_switches[] {name, ports, load_balancer}: ports
 *   are this host's interfaces whose Interface external_ids:iface-id names one
 *   of the switch's ports, with the port's addresses when they hold an IPv4
 *   address (ports bound elsewhere are left out; a switch with
 *   no local port still appears with ports: []); load_balancer is the union of
 *   the switch's load_balancer and its Load_Balancer_Groups' members, by name.
 * - Logical_Router → logical_routers[] {name, ports, load_balancer, options,
 *   nat}. A router port gets a host interface only when the router is a
 *   gateway router (options:chassis) bound to this chassis and the port's
 *   peer switch has a localnet port: its network_name → Open_vSwitch
 *   external_ids:ovn-bridge-mappings → bridge → the bridge's one physical
 *   port (not patch, internal or a tunnel). Other router ports are left out,
 *   and the reason is logged.
 *
 * Policy — skip and warn, never sanitize, never fail the whole state: one bad
 * NB row must not stop xlb from serving everything else. Every object is
 * checked with xlb's own validator (validateConfig) before it enters the
 * fragment; an object it refuses is LEFT OUT with a warning that names it and
 * quotes the validator's error. In particular:
 * - a load balancer with an invalid VIP or backend (e.g. "10.0.0.300:80") is
 *   skipped, and so are references to it from switches and routers;
 * - protocol sctp → the load balancer is skipped (xlb has no SCTP yet);
 * - an option key or value xlb does not accept is dropped (the rest of the
 *   object is kept), as are NAT rules and router ports xlb refuses, and IPv6
 *   router networks (IPv6 VIPs and backends pass through as OVN writes them,
 *   "[V6]:PORT" or "V6"; a VIP mixing IPv4 and IPv6 skips its load balancer);
 * - names xlb refuses, and names shared by several rows of one table
 *   (OVN does not force them unique), skip the objects;
 * - a switch or router the validator still refuses (e.g. two of its load
 *   balancers define the same VIP) is skipped.
 * Each distinct warning is logged once while it holds (again if it comes back).
 */
import { validateConfig } from '../config.js';
import { ConfigError } from '../errors.js';
import { OvsdbClient, type MonitorSpec, type OvsdbClientOptions, type OvsdbError } from '../ovsdb/client.js';
import { val, type OvsdbRow } from '../ovsdb/datum.js';
import { emptyFragment, type Source, type SourceName, type StateFragment } from './types.js';

/** The logger OvnSource needs (a pino logger fits). */
export interface OvnLogger {
  debug(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

/** Client settings passed to both OVSDB clients (timeouts in ms). */
export type OvnClientTuning = Pick<
  OvsdbClientOptions,
  'connectTimeoutMs' | 'requestTimeoutMs' | 'echoIntervalMs' | 'echoTimeoutMs' | 'backoffInitialMs' | 'backoffMaxMs'
>;

export interface OvnSourceOptions {
  /** OVN Northbound remote(s): `unix:PATH`, `tcp:HOST:PORT`, comma-separated list. */
  nbRemote: string;
  /** This host's Open_vSwitch database (default unix:/var/run/openvswitch/db.sock). */
  ovsRemote?: string;
  /** This host's chassis name (default: Open_vSwitch external_ids:system-id). */
  chassis?: string;
  /** Quiet time that turns a burst of updates into one change (default 20 ms). */
  debounceMs?: number;
  /** How long start() waits for both databases (default 10000 ms). */
  startTimeoutMs?: number;
  /** OVSDB client timeouts/backoff. */
  ovsdb?: OvnClientTuning;
  logger?: OvnLogger;
  /** The network namespace this host's OVS interfaces live in (a lab or test
   *  host in a namespace): interfaces are then written NETNS/IFNAME. */
  interfaceNetns?: string;
}

export const DEFAULT_OVS_REMOTE = 'unix:/var/run/openvswitch/db.sock';

/** NB tables and columns mirrored. */
export const NB_MONITOR: MonitorSpec = {
  Load_Balancer: ['name', 'vips', 'protocol', 'options', 'selection_fields', 'health_check', 'ip_port_mappings'],
  Load_Balancer_Group: ['name', 'load_balancer'],
  Load_Balancer_Health_Check: ['vip', 'options'],
  Logical_Switch: ['name', 'ports', 'load_balancer', 'load_balancer_group'],
  Logical_Switch_Port: ['name', 'type', 'options', 'addresses'],
  Logical_Router: ['name', 'ports', 'load_balancer', 'load_balancer_group', 'options', 'nat'],
  Logical_Router_Port: ['name', 'mac', 'networks', 'peer', 'options'],
  NAT: ['type', 'external_ip', 'logical_ip', 'logical_port'],
};

/** Open_vSwitch tables and columns mirrored. */
export const OVS_MONITOR: MonitorSpec = {
  Open_vSwitch: ['external_ids'],
  Bridge: ['name', 'ports', 'datapath_type'],
  Port: ['name', 'interfaces'],
  Interface: ['name', 'type', 'external_ids'],
};

/** Interface types that are never a router port's physical NIC. */
const NON_PHYSICAL_TYPES = new Set(['patch', 'internal', 'geneve', 'vxlan', 'gre', 'stt', 'erspan', 'ip6erspan', 'ip6gre', 'lisp', 'gtpu', 'bareudp', 'srv6', 'tap']);

const silentLogger: OvnLogger = { debug() {}, info() {}, warn() {}, error() {} };

type Level = 'info' | 'warn';
interface Note {
  level: Level;
  msg: string;
  fields: Record<string, unknown>;
}

/** Null when `raw` passes validateConfig, else the validator's message. */
function refusal(raw: Record<string, unknown>): string | null {
  try {
    validateConfig(raw);
    return null;
  } catch (err) {
    if (err instanceof ConfigError) return err.message;
    throw err;
  }
}

const byName = (a: OvsdbRow, b: OvsdbRow): number => {
  const an = val.str(a.name);
  const bn = val.str(b.name);
  return an < bn ? -1 : an > bn ? 1 : val.str(a._uuid) < val.str(b._uuid) ? -1 : 1;
};

/** Rows whose name is unique in their table (duplicates are noted and dropped). */
function uniqueByName(rows: Iterable<OvsdbRow>, what: string, note: (n: Note) => void): OvsdbRow[] {
  const count = new Map<string, number>();
  const list = [...rows].sort(byName);
  for (const r of list) count.set(val.str(r.name), (count.get(val.str(r.name)) ?? 0) + 1);
  return list.filter((r) => {
    const name = val.str(r.name);
    const n = count.get(name) ?? 0;
    if (n > 1) note({ level: 'warn', msg: `${what} "${name}" skipped: ${n} ${what} rows share this name in NB`, fields: { [what.replace(/ /g, '_')]: name } });
    return n === 1;
  });
}

export class OvnSource implements Source {
  readonly name: SourceName = 'ovn';
  private readonly opts: OvnSourceOptions;
  private readonly log: OvnLogger;
  private readonly debounceMs: number;
  private nb: OvsdbClient | null = null;
  private ovs: OvsdbClient | null = null;
  private fragment: StateFragment = emptyFragment();
  private fragmentJson = JSON.stringify(emptyFragment());
  private readonly listeners: Array<() => void> = [];
  private timer: NodeJS.Timeout | null = null;
  private notes = new Map<string, Note>();
  private lastClientError = new Map<string, string>();

  constructor(opts: OvnSourceOptions) {
    this.opts = opts;
    this.log = opts.logger ?? silentLogger;
    this.debounceMs = opts.debounceMs ?? 20;
  }

  current(): StateFragment {
    return this.fragment;
  }

  onChange(cb: () => void): void {
    this.listeners.push(cb);
  }

  /** True once both databases have been mirrored. */
  get ready(): boolean {
    return this.nb?.synced === true && this.ovs?.synced === true;
  }

  /** The warnings and notes of the last rebuild (what was skipped and why). */
  warnings(): string[] {
    return [...this.notes.values()].filter((n) => n.level === 'warn').map((n) => n.msg);
  }

  /** The NB and OVS clients (for diagnostics), once started. */
  get clients(): { nb: OvsdbClient | null; ovs: OvsdbClient | null } {
    return { nb: this.nb, ovs: this.ovs };
  }

  /**
   * Connects to both databases and resolves once both are mirrored. The
   * clients keep reconnecting afterwards (and after a rejection, until stop()).
   * @throws OvsdbError naming the remote(s) when a database is not reachable within startTimeoutMs
   */
  async start(): Promise<void> {
    if (this.nb !== null) return;
    const tuning = this.opts.ovsdb ?? {};
    this.nb = this.client({ ...tuning, remote: this.opts.nbRemote, database: 'OVN_Northbound', monitor: NB_MONITOR }, 'nb');
    this.ovs = this.client({ ...tuning, remote: this.opts.ovsRemote ?? DEFAULT_OVS_REMOTE, database: 'Open_vSwitch', monitor: OVS_MONITOR }, 'ovs');
    this.nb.start();
    this.ovs.start();
    const timeout = this.opts.startTimeoutMs ?? 10_000;
    await Promise.all([this.nb.ready(timeout), this.ovs.ready(timeout)]);
    this.rebuild();
  }

  async stop(): Promise<void> {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    await Promise.all([this.nb?.stop(), this.ovs?.stop()]);
  }

  private client(opts: OvsdbClientOptions, db: 'nb' | 'ovs'): OvsdbClient {
    const c = new OvsdbClient(opts);
    c.on('connected', (i) => {
      this.lastClientError.delete(db);
      this.log.info({ db, remote: i.remote, resync: i.resync }, `connected to ${opts.database} at ${i.remote}`);
    });
    c.on('disconnected', (i) => this.log.warn({ db, remote: i.remote, reason: i.reason }, `lost ${opts.database} at ${i.remote}: ${i.reason}; reconnecting`));
    c.on('error', (e: OvsdbError) => {
      // Repeated identical failures (a server down for a while) are logged once.
      if (this.lastClientError.get(db) === e.message) return;
      this.lastClientError.set(db, e.message);
      this.log.warn({ db, remote: e.remote, op: e.op }, e.message);
    });
    c.on('change', () => this.schedule());
    return c;
  }

  private schedule(): void {
    if (this.timer !== null) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.rebuild();
    }, this.debounceMs);
  }

  /** Recomputes the fragment; notifies listeners when it changed. */
  private rebuild(): void {
    if (!this.ready || this.nb === null || this.ovs === null) return;
    const notes = new Map<string, Note>();
    const note = (n: Note): void => {
      notes.set(n.msg, n);
    };
    const fragment = buildFragment(this.nb, this.ovs, this.opts.chassis ?? null, note, this.opts.interfaceNetns ?? null);
    for (const [key, n] of notes) {
      if (!this.notes.has(key)) this.log[n.level](n.fields, n.msg);
    }
    this.notes = notes;
    const problem = refusal(fragment as unknown as Record<string, unknown>);
    if (problem !== null) this.log.error({}, `OVN fragment refused by xlb's validator (a bug in the OVN mapping): ${problem}`);
    const json = JSON.stringify(fragment);
    if (json === this.fragmentJson) return;
    this.fragment = fragment;
    this.fragmentJson = json;
    for (const cb of this.listeners) cb();
  }
}

/** Builds the fragment from the two replicas (pure apart from `note`). */
function buildFragment(
  nb: OvsdbClient,
  ovs: OvsdbClient,
  chassisOpt: string | null,
  note: (n: Note) => void,
  netns: string | null = null,
): StateFragment {
  const out = emptyFragment();

  // --- this host: interfaces by iface-id, bridges, chassis
  const ifacesByLsp = new Map<string, string[]>();
  for (const iface of ovs.table('Interface').values()) {
    const id = val.map(iface.external_ids)['iface-id'];
    if (id === undefined) continue;
    const list = ifacesByLsp.get(id) ?? [];
    list.push(netns ? `${netns}/${val.str(iface.name)}` : val.str(iface.name));
    ifacesByLsp.set(id, list.sort());
  }
  // --- load balancers
  const lbByUuid = new Map<string, Record<string, unknown>>();
  for (const row of uniqueByName(nb.table('Load_Balancer').values(), 'load balancer', note)) {
    const name = val.str(row.name);
    const protocol = val.optStr(row.protocol) ?? 'tcp';
    if (protocol === 'sctp') {
      note({ level: 'warn', msg: `load balancer "${name}" skipped: protocol sctp is not supported by xlb yet`, fields: { load_balancer: name } });
      continue;
    }
    const options: Record<string, string> = {};
    for (const [k, v] of Object.entries(val.map(row.options))) {
      const problem = refusal({ load_balancers: [{ name: 'probe', options: { [k]: v } }] });
      if (problem === null) options[k] = v;
      else note({ level: 'warn', msg: `load balancer "${name}": option ${k}=${JSON.stringify(v)} ignored: ${problem}`, fields: { load_balancer: name, option: k } });
    }
    const lb: Record<string, unknown> = { name, protocol, vips: val.map(row.vips), options, selection_fields: val.strs(row.selection_fields).sort() };
    const health = healthOf(row, name);
    if (health) Object.assign(lb, health);
    const problem = refusal({ load_balancers: [lb] });
    if (problem !== null) {
      note({ level: 'warn', msg: `load balancer "${name}" skipped: ${problem}`, fields: { load_balancer: name } });
      continue;
    }
    lbByUuid.set(val.str(row._uuid), lb);
    out.load_balancers.push(lb);
  }

  /**
   * OVN's health checks of one load balancer: Load_Balancer_Health_Check rows
   * and ip_port_mappings (backend IP -> "LSP:SOURCE_IP", the LSP mapped to its
   * local interface). A check whose backends are not all bound on this host
   * cannot be probed from here: it is left out (logged); the VIP is served.
   */
  function healthOf(row: OvsdbRow, lbName: string): { ip_port_mappings: Record<string, string>; health_check: unknown[] } | null {
    const hcRows = val.strs(row.health_check).map((u) => nb.table('Load_Balancer_Health_Check').get(u)).filter((r) => r !== undefined);
    if (hcRows.length === 0) return null;
    const mappings: Record<string, string> = {};
    for (const [ip, v] of Object.entries(val.map(row.ip_port_mappings))) {
      const sep = v.indexOf(':');
      const lsp = v.slice(0, sep);
      const src = v.slice(sep + 1).split(':')[0];
      const iface = ifacesByLsp.get(lsp)?.[0];
      if (iface) mappings[ip] = `${iface}:${src}`;
    }
    const vips = val.map(row.vips);
    const checks: unknown[] = [];
    for (const hc of hcRows) {
      const vip = val.str(hc.vip);
      const backends = (vips[vip] ?? '').split(',').map((b) => b.trim()).filter(Boolean);
      const unbound = backends.filter((b) => !mappings[b.slice(0, b.lastIndexOf(':'))]);
      if (unbound.length) {
        note({ level: 'info', msg: `load balancer "${lbName}": health check of ${vip} not run here: backends ${unbound.join(', ')} have no local ip_port_mappings port`, fields: { load_balancer: lbName, vip } });
        continue;
      }
      const options: Record<string, number> = {};
      for (const [k, v] of Object.entries(val.map(hc.options))) {
        if (['interval', 'timeout', 'success_count', 'failure_count'].includes(k) && Number.isFinite(Number(v))) options[k] = Number(v);
      }
      checks.push({ vip, options });
    }
    return checks.length ? { ip_port_mappings: mappings, health_check: checks } : null;
  }
  const groups = nb.table('Load_Balancer_Group');
  /** LBs of a switch/router: direct + through groups, by name (skipped ones dropped). */
  const lbRefs = (row: OvsdbRow): Array<Record<string, unknown>> => {
    const uuids = [...val.strs(row.load_balancer)];
    for (const g of val.strs(row.load_balancer_group)) uuids.push(...val.strs(groups.get(g)?.load_balancer));
    const found = new Map<string, Record<string, unknown>>();
    for (const u of uuids) {
      const lb = lbByUuid.get(u);
      if (lb !== undefined) found.set(String(lb.name), lb);
    }
    return [...found.values()].sort((a, b) => (String(a.name) < String(b.name) ? -1 : 1));
  };

  /* Interfaces on a bridge of OVS's userspace datapath (datapath_type netdev)
   * are read through AF_PACKET before tc runs: only XDP sees their packets
   * first, so their switch ports ask for the XDP hook. */
  const netdevIfaces = new Set<string>();
  {
    const ifaceRows = ovs.table('Interface');
    const portTable = ovs.table('Port');
    for (const b of ovs.table('Bridge').values()) {
      if (val.optStr(b.datapath_type) !== 'netdev') continue;
      for (const pu of val.strs(b.ports)) {
        for (const iu of val.strs(portTable.get(pu)?.interfaces)) {
          const row = ifaceRows.get(iu);
          if (row) netdevIfaces.add(netns ? `${netns}/${val.str(row.name)}` : val.str(row.name));
        }
      }
    }
  }
  const ovsRoot = [...ovs.table('Open_vSwitch').values()][0];
  const ovsIds = val.map(ovsRoot?.external_ids);
  const chassis = chassisOpt ?? ovsIds['system-id'] ?? null;
  const bridgeMappings = new Map<string, string>();
  for (const item of (ovsIds['ovn-bridge-mappings'] ?? '').split(',')) {
    const [physnet, bridge] = item.trim().split(':');
    if (physnet && bridge) bridgeMappings.set(physnet, bridge);
  }
  const claimed = new Set<string>();

  // --- switches
  const lsps = nb.table('Logical_Switch_Port');
  const switches = uniqueByName(nb.table('Logical_Switch').values(), 'logical switch', note);
  for (const row of switches) {
    const name = val.str(row.name);
    const ports: Array<string | { interface: string; hook?: 'xdp'; addresses?: string[] }> = [];
    for (const lspUuid of val.strs(row.ports)) {
      const lsp = lsps.get(lspUuid);
      if (lsp === undefined) continue;
      // The port's addresses ("MAC IP…") let xlb warn about load balancers only their backends reach.
      const addresses = val
        .strs(lsp.addresses)
        .map((a) => a.trim().split(/\s+/).join(' '))
        .filter((a) => a.split(' ').some((t) => /^\d+\.\d+\.\d+\.\d+$/.test(t)))
        .sort();
      for (const iface of ifacesByLsp.get(val.str(lsp.name)) ?? []) {
        if (claimed.has(iface)) {
          note({ level: 'warn', msg: `logical switch "${name}": interface "${iface}" left out: it is already used by another switch or router`, fields: { logical_switch: name, interface: iface } });
        } else if (netdevIfaces.has(iface) || addresses.length > 0) {
          ports.push({ interface: iface, ...(netdevIfaces.has(iface) ? { hook: 'xdp' as const } : {}), ...(addresses.length ? { addresses } : {}) });
        } else ports.push(iface);
      }
    }
    const portName = (p: string | { interface: string }): string => (typeof p === 'string' ? p : p.interface);
    ports.sort((a, b) => (portName(a) < portName(b) ? -1 : 1));
    const lbs = lbRefs(row);
    const ls = { name, ports, load_balancer: lbs.map((lb) => String(lb.name)) };
    const problem = refusal({ load_balancers: lbs, logical_switches: [ls] });
    if (problem !== null) {
      note({ level: 'warn', msg: `logical switch "${name}" skipped: ${problem}`, fields: { logical_switch: name } });
      continue;
    }
    for (const p of ports) claimed.add(portName(p));
    out.logical_switches.push(ls);
  }

  // --- routers
  const switchOfLsp = new Map<string, OvsdbRow>();
  for (const ls of nb.table('Logical_Switch').values()) for (const p of val.strs(ls.ports)) switchOfLsp.set(p, ls);
  const routerLspByLrp = new Map<string, string>();
  for (const [uuid, lsp] of lsps) {
    if (val.str(lsp.type) === 'router') {
      const rp = val.map(lsp.options)['router-port'];
      if (rp !== undefined) routerLspByLrp.set(rp, uuid);
    }
  }
  const bridges = new Map<string, OvsdbRow>();
  for (const b of ovs.table('Bridge').values()) bridges.set(val.str(b.name), b);
  const portRows = ovs.table('Port');
  const ifaceRows = ovs.table('Interface');

  /** The host interface of a gateway router port, or why there is none. */
  const physicalPort = (lrpName: string): { iface: string } | { why: string; level: Level } => {
    const lspUuid = routerLspByLrp.get(lrpName);
    const ls = lspUuid === undefined ? undefined : switchOfLsp.get(lspUuid);
    if (ls === undefined) return { why: 'no logical switch port of type router peers with it', level: 'info' };
    const localnet = val.strs(ls.ports).map((u) => lsps.get(u)).find((p) => p !== undefined && val.str(p.type) === 'localnet');
    if (localnet === undefined) return { why: `its switch "${val.str(ls.name)}" has no localnet port`, level: 'info' };
    const physnet = val.map(localnet.options).network_name;
    if (physnet === undefined) return { why: `localnet port "${val.str(localnet.name)}" has no options:network_name`, level: 'warn' };
    const bridgeName = bridgeMappings.get(physnet);
    if (bridgeName === undefined) return { why: `physical network "${physnet}" is not in this host's ovn-bridge-mappings`, level: 'warn' };
    const bridge = bridges.get(bridgeName);
    if (bridge === undefined) return { why: `bridge "${bridgeName}" (for physical network "${physnet}") does not exist on this host`, level: 'warn' };
    const candidates: string[] = [];
    for (const pu of val.strs(bridge.ports)) {
      const port = portRows.get(pu);
      if (port === undefined) continue;
      const ifs = val.strs(port.interfaces).map((iu) => ifaceRows.get(iu)).filter((i) => i !== undefined);
      if (ifs.some((i) => NON_PHYSICAL_TYPES.has(val.str(i.type)))) continue;
      if (ifs.length !== 1) return { why: `bridge "${bridgeName}" port "${val.str(port.name)}" is a bond (not supported yet)`, level: 'warn' };
      candidates.push(val.str(ifs[0]?.name));
    }
    if (candidates.length !== 1) {
      const what = candidates.length === 0 ? 'has no physical port' : `has several physical ports (${candidates.sort().join(', ')})`;
      return { why: `bridge "${bridgeName}" (for physical network "${physnet}") ${what}`, level: 'warn' };
    }
    return { iface: netns ? `${netns}/${candidates[0] as string}` : (candidates[0] as string) };
  };

  const lrps = nb.table('Logical_Router_Port');
  const nats = nb.table('NAT');
  for (const row of uniqueByName(nb.table('Logical_Router').values(), 'logical router', note)) {
    const name = val.str(row.name);
    const rawOptions = val.map(row.options);
    const options: Record<string, string> = {};
    for (const [k, v] of Object.entries(rawOptions)) {
      const problem = refusal({ logical_routers: [{ name: 'probe', options: { [k]: v } }] });
      if (problem === null) options[k] = v;
      else if (k === 'lb_force_snat_ip') note({ level: 'warn', msg: `logical router "${name}": option ${k}="${v}" ignored: ${problem}`, fields: { logical_router: name, option: k } });
      else note({ level: 'info', msg: `logical router "${name}": option ${k} not mirrored (xlb does not use it)`, fields: { logical_router: name, option: k } });
    }
    const gwChassis = rawOptions.chassis;
    const ports: Array<Record<string, unknown>> = [];
    const portsClaimed: string[] = [];
    for (const lrpUuid of val.strs(row.ports)) {
      const lrp = lrps.get(lrpUuid);
      if (lrp === undefined) continue;
      const lrpName = val.str(lrp.name);
      const leftOut = (why: string, level: Level): void =>
        note({ level, msg: `logical router "${name}" port "${lrpName}" left out: ${why}`, fields: { logical_router: name, port: lrpName } });
      if (gwChassis === undefined) {
        leftOut('not a gateway router (no options:chassis); only gateway router ports are served', 'info');
        continue;
      }
      if (gwChassis !== chassis) {
        leftOut(`the gateway router is bound to chassis "${gwChassis}", this host is ${chassis === null ? 'unnamed (no system-id)' : `"${chassis}"`}`, 'info');
        continue;
      }
      const phys = physicalPort(lrpName);
      if ('why' in phys) {
        leftOut(phys.why, phys.level);
        continue;
      }
      if (claimed.has(phys.iface) || portsClaimed.includes(phys.iface)) {
        leftOut(`interface "${phys.iface}" is already used by another switch or router`, 'warn');
        continue;
      }
      const all = val.strs(lrp.networks);
      const networks = all.filter((n) => !n.includes(':'));
      if (networks.length < all.length) note({ level: 'info', msg: `logical router "${name}" port "${lrpName}": IPv6 networks not mirrored (IPv4 only for now)`, fields: { logical_router: name, port: lrpName } });
      const port = { name: lrpName, interface: phys.iface, mac: val.str(lrp.mac), networks };
      const problem = refusal({ logical_routers: [{ name: 'probe', ports: [port] }] });
      if (problem !== null) {
        leftOut(problem, 'warn');
        continue;
      }
      ports.push(port);
      portsClaimed.push(phys.iface);
    }
    ports.sort((a, b) => (String(a.name) < String(b.name) ? -1 : 1));
    const nat: Array<Record<string, unknown>> = [];
    for (const natUuid of val.strs(row.nat)) {
      const n = nats.get(natUuid);
      if (n === undefined) continue;
      const rule = { type: val.str(n.type), external_ip: val.str(n.external_ip), logical_ip: val.str(n.logical_ip) };
      const problem = refusal({ logical_routers: [{ name: 'probe', nat: [rule] }] });
      if (problem !== null) {
        note({ level: 'warn', msg: `logical router "${name}": NAT ${rule.type} ${rule.external_ip} ${rule.logical_ip} left out: ${problem}`, fields: { logical_router: name } });
        continue;
      }
      nat.push(rule);
    }
    nat.sort((a, b) => (JSON.stringify(a) < JSON.stringify(b) ? -1 : 1));
    const lbs = lbRefs(row);
    const lr = { name, ports, load_balancer: lbs.map((lb) => String(lb.name)), options, nat };
    const problem = refusal({ load_balancers: lbs, logical_routers: [lr] });
    if (problem !== null) {
      note({ level: 'warn', msg: `logical router "${name}" skipped: ${problem}`, fields: { logical_router: name } });
      continue;
    }
    for (const p of portsClaimed) claimed.add(p);
    out.logical_routers.push(lr);
  }
  return out;
}
