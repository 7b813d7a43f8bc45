/**
 * Desired-state model of xlb, mirroring the OVN Northbound tables it borrows
 * from (Load_Balancer, Logical_Switch, Logical_Router, NAT) with OVN's names,
 * plus parsing (YAML or JSON) and strict, pure, all-or-nothing validation.
 *
 * Every problem is reported as a {@link ConfigError} naming the first bad
 * field by path (e.g. `load_balancers[0].vips["172.16.255.62:8000"]`) and the
 * offending value. A validated state is fully normalized (defaults filled in),
 * and validating a normalized state again yields an equal state.
 */
import { parseDocument } from 'yaml';
import {
  AddrParseError,
  isIPv4,
  isIPv6Literal,
  parseHostPort,
  parseIPv4Cidr,
  parseIPv6Cidr,
  canonicalAddr,
  type HostPort,
} from './addr.js';
import { ConfigError } from './errors.js';
import { HealthConfigError, validateLbHealth, type LbHealthCheck } from './health/config.js';
import { isPrime } from './maglev.js';

/** Transport protocol of a load balancer. */
export type Protocol = 'tcp' | 'udp' | 'sctp';
/** Ingress hook on an interface: `auto` picks tc for kernel-served virtual interfaces (veth, tap) and native XDP for physical NICs; `xdp` tries native and falls back to generic; `xdp-generic` forces skb-mode XDP. */
export type Hook = 'auto' | 'tc' | 'xdp' | 'xdp-generic';

/** An OVN Load_Balancer row. */
export interface LoadBalancer {
  name: string;
  protocol: Protocol;
  /** VIP (`IP:PORT` or IP-only `IP`) → comma-separated backends (normalized: no spaces). */
  vips: Record<string, string>;
  options: Record<string, string>;
  /** Hash fields; empty means the default 5-tuple. */
  selection_fields: string[];
  /** OVN ip_port_mappings: backend IP → "NETNS/IFNAME:SOURCE_IP" (where health probes leave from). */
  ip_port_mappings?: Record<string, string>;
  /** OVN Load_Balancer_Health_Check rows of this load balancer. */
  health_check?: LbHealthCheck[];
}

/** A normalized logical switch port: an interface, optionally inside a named netns. */
export interface SwitchPort {
  /** `IFNAME` or `NETNS/IFNAME`. */
  interface: string;
  netns: string | null;
  ifname: string;
  hook: Hook;
  /** OVN Logical_Switch_Port addresses ("MAC IP…"), when known: xlb uses them to warn about
   *  load balancers only their own backends can reach. */
  addresses?: string[];
}

/** An OVN Logical_Switch row (ports are host interfaces). */
export interface LogicalSwitch {
  name: string;
  ports: SwitchPort[];
  /** Names of attached load balancers. */
  load_balancer: string[];
}

/** An OVN Logical_Router_Port bound to a host interface. */
export interface RouterPort {
  name: string;
  interface: string;
  netns: string | null;
  ifname: string;
  hook: Hook;
  /** Lower-case `aa:bb:cc:dd:ee:ff`. */
  mac: string;
  /** `A.B.C.D/N` or `X:X::X/N` router addresses. */
  networks: string[];
}

/** An OVN NAT row. */
export interface NatRule {
  type: 'snat' | 'dnat' | 'dnat_and_snat';
  external_ip: string;
  logical_ip: string;
}

/** An OVN Logical_Router row. */
export interface LogicalRouter {
  name: string;
  ports: RouterPort[];
  load_balancer: string[];
  options: Record<string, string>;
  nat: NatRule[];
}

/** The whole desired state. */
export interface DesiredState {
  load_balancers: LoadBalancer[];
  logical_switches: LogicalSwitch[];
  logical_routers: LogicalRouter[];
}

/** A backend of a VIP; `port` is 0 for IP-only VIPs. */
export interface Backend {
  addr: string;
  port: number;
  /** Maglev weight from the `xlb_weights` option (default 1; 0 = drain). */
  weight: number;
}

/** A parsed VIP of a validated load balancer. */
export interface Vip {
  /** Owning load balancer name. */
  lb: string;
  /** The VIP key as written in `vips`. */
  key: string;
  family: 4 | 6;
  addr: string;
  /** 0 for an IP-only VIP. */
  port: number;
  /** null = IP-only VIP, matches every IP protocol. */
  protocol: Protocol | null;
  backends: Backend[];
  /** Maglev table size M (prime). */
  maglevSize: number;
}

/** Default Maglev table size M (prime; matches XLB_MAGLEV_DEFAULT_M in bpf/xlb_shared.h). */
export const DEFAULT_MAGLEV_SIZE = 16381;
/** Smallest accepted `xlb_maglev_size`. */
export const MIN_MAGLEV_SIZE = 3;
/** Largest accepted `xlb_maglev_size`. */
export const MAX_MAGLEV_SIZE = 1_000_003;

/** Returns a frozen empty array typed as a mutable one (writes throw at runtime). */
function frozenEmpty<T>(): T[] {
  return Object.freeze<T[]>([]) as T[];
}

/** The empty desired state (deeply frozen). */
export const EMPTY_STATE: DesiredState = Object.freeze({
  load_balancers: frozenEmpty<LoadBalancer>(),
  logical_switches: frozenEmpty<LogicalSwitch>(),
  logical_routers: frozenEmpty<LogicalRouter>(),
});

// ---------------------------------------------------------------------------
// Vocabulary

const TOP_LEVEL_KEYS = ['load_balancers', 'logical_switches', 'logical_routers'] as const;
const LB_KEYS = ['name', 'protocol', 'vips', 'options', 'selection_fields', 'ip_port_mappings', 'health_check'] as const;
const SWITCH_KEYS = ['name', 'ports', 'load_balancer'] as const;
const SWITCH_PORT_KEYS = ['interface', 'netns', 'ifname', 'hook', 'addresses'] as const;
const ROUTER_KEYS = ['name', 'ports', 'load_balancer', 'options', 'nat'] as const;
const ROUTER_PORT_KEYS = ['name', 'interface', 'netns', 'ifname', 'hook', 'mac', 'networks'] as const;
const NAT_KEYS = ['type', 'external_ip', 'logical_ip'] as const;

const PROTOCOLS: readonly Protocol[] = ['tcp', 'udp', 'sctp'];
const HOOKS: readonly Hook[] = ['auto', 'tc', 'xdp', 'xdp-generic'];
const NAT_TYPES: readonly NatRule['type'][] = ['snat', 'dnat', 'dnat_and_snat'];
/** OVN Load_Balancer selection_fields values. */
const SELECTION_FIELDS = ['eth_src', 'eth_dst', 'ip_src', 'ip_dst', 'tp_src', 'tp_dst'] as const;
/** OVN Logical_Router options xlb accepts (plus any `xlb_*` key). */
const ROUTER_OPTION_KEYS = [
  'lb_force_snat_ip',
  'chassis',
  'dynamic_neigh_routers',
  'always_learn_from_arp_request',
  'snat-ct-zone',
  'mcast_relay',
  'dnat_force_snat_ip',
] as const;

const NAME_RE = /^[A-Za-z0-9_.:-]+$/;
const NETNS_RE = /^[A-Za-z0-9_.-]+$/;
const MAC_RE = /^[0-9a-fA-F]{2}(?::[0-9a-fA-F]{2}){5}$/;
const DECIMAL_RE = /^(?:0|[1-9][0-9]*)$/;
/** Linux IFNAMSIZ − 1. */
const MAX_IFNAME_BYTES = 15;
const IPV6_UNSUPPORTED = 'IPv6 is not supported yet';

// ---------------------------------------------------------------------------
// Generic field helpers

/** A JSON-ish object value. */
type Obj = Record<string, unknown>;

/** `base.key`, or `base["key"]` when the key is not identifier-like; `key` alone at the root. */
function keyPath(base: string, key: string): string {
  if (/^[A-Za-z_][A-Za-z0-9_]*$/.test(key)) return base === '' ? key : `${base}.${key}`;
  return `${base}[${JSON.stringify(key)}]`;
}

/** `base[i]`. */
function indexPath(base: string, i: number): string {
  return `${base}[${i}]`;
}

/** Quotes a list for messages: `"a", "b"`. */
function quoteList(items: readonly string[]): string {
  return items.map((s) => JSON.stringify(s)).join(', ');
}

/** True for plain objects (not arrays, not class instances). */
function isObj(v: unknown): v is Obj {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false;
  const proto: unknown = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

/** Requires a plain object. */
function expectObj(v: unknown, field: string, what: string): Obj {
  if (!isObj(v)) throw new ConfigError(field, `must be ${what}`, v);
  return v;
}

/** Optional object field: missing or null means empty. */
function optionalObj(v: unknown, field: string, what: string): Obj {
  return v === undefined || v === null ? {} : expectObj(v, field, what);
}

/** Optional array field: missing or null means empty. */
function optionalArray(v: unknown, field: string, what: string): unknown[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) throw new ConfigError(field, `must be ${what}`, v);
  return v;
}

/** Rejects keys of `obj` not in `allowed`. */
function checkKeys(obj: Obj, field: string, allowed: readonly string[], what: string): void {
  for (const key of Object.keys(obj)) {
    if (!allowed.includes(key)) {
      throw new ConfigError(keyPath(field, key), `unknown key in ${what} (allowed: ${allowed.join(', ')})`, obj[key]);
    }
  }
}

/** Requires a string. */
function expectString(v: unknown, field: string): string {
  if (v === undefined) throw new ConfigError(field, 'is required', v);
  if (typeof v !== 'string') throw new ConfigError(field, 'must be a string', v);
  return v;
}

/** Requires a string from `choices`; `fallback` applies when the field is missing. */
function expectChoice<T extends string>(v: unknown, field: string, choices: readonly T[], fallback?: T): T {
  if (v === undefined && fallback !== undefined) return fallback;
  const found = choices.find((c) => c === v);
  if (found === undefined) throw new ConfigError(field, `must be one of ${quoteList(choices)}`, v);
  return found;
}

/** Requires a unique name matching {@link NAME_RE}; records it in `seen`. */
function expectName(v: unknown, field: string, what: string, seen: Set<string>): string {
  const name = expectString(v, field);
  if (!NAME_RE.test(name)) {
    throw new ConfigError(field, `${what} name must be non-empty and match [A-Za-z0-9_.:-]+`, v);
  }
  if (seen.has(name)) throw new ConfigError(field, `duplicate ${what} name "${name}"`, v);
  seen.add(name);
  return name;
}

/**
 * Normalizes an NB string value: strings as-is, YAML booleans and finite
 * numbers converted (`true` → "true", `30` → "30").
 */
function toNbString(v: unknown, field: string): string {
  if (typeof v === 'string') return v;
  if (typeof v === 'boolean') return String(v);
  if (typeof v === 'number' && Number.isFinite(v)) return String(v);
  throw new ConfigError(field, 'must be a string (booleans and numbers are converted)', v);
}

// ---------------------------------------------------------------------------
// Options

/** Checks an option value; returns a problem phrase or null when valid. */
type OptionCheck = (value: string) => string | null;

const anyString: OptionCheck = () => null;

const boolString: OptionCheck = (v) => (v === 'true' || v === 'false' ? null : 'must be "true" or "false"');

/** Decimal integer in lo..hi. */
function intInRange(lo: number, hi: number): OptionCheck {
  return (v) => {
    const n = DECIMAL_RE.test(v) ? Number(v) : NaN;
    return n >= lo && n <= hi ? null : `must be an integer in ${lo}..${hi}`;
  };
}

/** One of the given strings. */
function oneOf(...choices: string[]): OptionCheck {
  return (v) => (choices.includes(v) ? null : `must be one of ${quoteList(choices)}`);
}

/** Space-separated IP addresses (OVN's hairpin_snat_ip). */
const ipList: OptionCheck = (v) => {
  const ips = v.split(' ').filter((s) => s !== '');
  const ok = ips.length > 0 && ips.every((ip) => isIPv4(ip) || isIPv6Literal(ip));
  return ok ? null : 'must be one or more space-separated IP addresses';
};

/** OVN's lb_force_snat_ip: `router_ip` or an IPv4 address (xlb's source NAT is IPv4 only). */
const forceSnatIp: OptionCheck = (v) => {
  if (v === 'router_ip' || isIPv4(v)) return null;
  const ips = v.split(' ').filter((x) => x !== '');
  if (ips.length > 0 && ips.every((x) => isIPv4(x) || isIPv6Literal(x))) {
    const v4 = ips.filter(isIPv4);
    if (v4.length === 1 && ips.length > 1) return `IPv6 source NAT is not supported yet: give only the IPv4 address "${v4[0]}"`;
    return v4.length ? 'must be one IPv4 address (not several)' : IPV6_UNSUPPORTED;
  }
  return 'must be "router_ip" or an IPv4 address';
};

/** A prime Maglev table size in range. */
const maglevSize: OptionCheck = (v) => {
  const n = DECIMAL_RE.test(v) ? Number(v) : NaN;
  if (n >= MIN_MAGLEV_SIZE && n <= MAX_MAGLEV_SIZE && isPrime(n)) return null;
  return `must be a prime between ${MIN_MAGLEV_SIZE} and ${MAX_MAGLEV_SIZE} (e.g. ${DEFAULT_MAGLEV_SIZE})`;
};

/** Largest backend weight in `xlb_weights`. */
export const MAX_BACKEND_WEIGHT = 65535;

/**
 * xlb's backend weights: `"BACKEND=WEIGHT,…"` where BACKEND is written as in
 * the VIPs (`ip:port`, or `ip` for IP-only VIPs) and WEIGHT an integer
 * 0..65535 (default 1; 0 drains: no new connections, established ones stay).
 */
const weightList: OptionCheck = (v) => {
  const items = v.split(',').map((x) => x.trim());
  for (const item of items) {
    const m = /^([^=\s]+)=(0|[1-9][0-9]*)$/.exec(item);
    if (!m || Number(m[2]) > MAX_BACKEND_WEIGHT) {
      return `must be a comma-separated list of BACKEND=WEIGHT with WEIGHT in 0..${MAX_BACKEND_WEIGHT} (bad item ${JSON.stringify(item)})`;
    }
  }
  return null;
};

/** The `xlb_weights` option of a validated load balancer, by backend text. */
export function lbWeights(lb: LoadBalancer): Map<string, number> {
  const out = new Map<string, number>();
  const text = lb.options.xlb_weights;
  if (!text) return out;
  for (const item of text.split(',')) {
    const [backend, weight] = item.trim().split('=');
    out.set(backend, Number(weight));
  }
  return out;
}

/**
 * Health checks of one load balancer (OVN's ip_port_mappings and
 * Load_Balancer_Health_Check): the checked VIP must be one of its VIPs with a
 * port, and every backend of it needs an ip_port_mappings entry unless the
 * probe is HTTP (TCP/UDP probes leave from the backend's VIF).
 */
function validateHealth(raw: Record<string, unknown>, field: string, lb: LoadBalancer): void {
  if (raw.ip_port_mappings === undefined && raw.health_check === undefined) return;
  let h;
  try {
    h = validateLbHealth(raw, 0);
  } catch (e) {
    if (e instanceof HealthConfigError) {
      const sub = e.field.replace(/^load_balancers\[0\]/, '');
      throw new ConfigError(`${field}${sub}`, e.message.slice(e.field.length + 2).replace(/ \(got .*\)$/s, ''), e.value);
    }
    throw e;
  }
  h.health_check.forEach((hc, i) => {
    const at = `${field}.health_check[${i}].vip`;
    const list = lb.vips[hc.vip];
    if (list === undefined) throw new ConfigError(at, `is not a VIP of load balancer ${JSON.stringify(lb.name)}`, hc.vip);
    if (!/:\d+$/.test(hc.vip)) throw new ConfigError(at, 'health checks need a VIP with a port', hc.vip);
    if (hc.vip.startsWith('[')) throw new ConfigError(at, 'health checks of IPv6 VIPs are not supported yet', hc.vip);
    if (hc.probe?.type === 'http') return;
    for (const b of splitBackends(list)) {
      const ip = b.trim().slice(0, b.trim().lastIndexOf(':'));
      if (!h.ip_port_mappings[ip]) {
        throw new ConfigError(
          `${field}.ip_port_mappings`,
          `backend ${JSON.stringify(b.trim())} of health-checked VIP ${JSON.stringify(hc.vip)} needs an entry "NETNS/IFNAME:SOURCE_IP" (its probes leave from its VIF)`,
          raw.ip_port_mappings ?? null,
        );
      }
    }
  });
  lb.ip_port_mappings = Object.fromEntries(Object.entries(h.ip_port_mappings).map(([ip, src]) => [ip, `${src.interface}:${src.ip}`]));
  lb.health_check = h.health_check;
}

/** OVN Load_Balancer options (plus xlb's) and their value checks. */
const LB_OPTIONS: ReadonlyMap<string, OptionCheck> = new Map([
  ['reject', boolString],
  ['hairpin_snat_ip', ipList],
  ['skip_snat', boolString],
  ['force_snat', boolString],
  ['affinity_timeout', intInRange(0, 65535)],
  ['neighbor_responder', oneOf('reachable', 'all', 'none')],
  ['ct_flush', boolString],
  ['add_route', boolString],
  ['event', boolString],
  ['template', boolString],
  ['address-family', oneOf('ipv4', 'ipv6')],
  ['xlb_maglev_size', maglevSize],
  ['xlb_weights', weightList],
]);

/** Checks for Logical_Router options (values unchecked; `xlb_*` keys allowed). */
function routerOptionCheck(key: string): OptionCheck | undefined {
  if (key === 'lb_force_snat_ip') return forceSnatIp;
  const known: readonly string[] = ROUTER_OPTION_KEYS;
  return known.includes(key) || key.startsWith('xlb_') ? anyString : undefined;
}

/** Validates and normalizes an options map against `lookup` (undefined = unknown key). */
function validateOptions(
  v: unknown,
  field: string,
  lookup: (key: string) => OptionCheck | undefined,
  allowedText: string,
): Record<string, string> {
  const raw = optionalObj(v, field, 'an object of option strings');
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(raw)) {
    const keyField = keyPath(field, key);
    const check = lookup(key);
    if (check === undefined) throw new ConfigError(keyField, `unknown option "${key}" (allowed: ${allowedText})`, value);
    const text = toNbString(value, keyField);
    const problem = check(text);
    if (problem !== null) throw new ConfigError(keyField, problem, value);
    out[key] = text;
  }
  return out;
}

// ---------------------------------------------------------------------------
// Load balancers

/** Splits a backend list; "" (or only spaces) is the empty list. */
function splitBackends(list: string): string[] {
  return list.trim() === '' ? [] : list.split(',').map((s) => s.trim());
}

/** Parses one VIP or backend, turning address errors into ConfigErrors. */
function parseEndpoint(text: string, role: 'VIP' | 'backend', field: string, value: unknown): HostPort {
  try {
    return parseHostPort(text);
  } catch (err) {
    if (err instanceof AddrParseError) throw new ConfigError(field, `${role} "${text}" ${err.reason}`, value);
    throw err;
  }
}

/** Checks families and port presence of a VIP against its backends. */
function checkVipShape(key: string, vip: HostPort, backends: readonly HostPort[], items: readonly string[], field: string, value: string): void {
  const familyName = (f: 4 | 6): string => `IPv${f}`;
  backends.forEach((b, i) => {
    if (b.family !== vip.family) {
      throw new ConfigError(
        field,
        `mixed address families: VIP "${key}" is ${familyName(vip.family)} but backend "${items[i]}" is ${familyName(b.family)}`,
        value,
      );
    }
  });
  backends.forEach((b, i) => {
    if (vip.port !== 0 && b.port === 0) {
      throw new ConfigError(field, `backend "${items[i]}" has no port but VIP "${key}" has one`, value);
    }
    if (vip.port === 0 && b.port !== 0) {
      throw new ConfigError(field, `backend "${items[i]}" has a port but VIP "${key}" is IP-only (its backends must be IP-only too)`, value);
    }
  });
}

/** Rejects a backend listed twice in one VIP. */
function checkDuplicateBackends(backends: readonly HostPort[], items: readonly string[], field: string, value: string): void {
  const seen = new Set<string>();
  backends.forEach((b, i) => {
    const id = `${canonicalAddr(b.family, b.addr)}|${b.port}`;
    if (seen.has(id)) throw new ConfigError(field, `duplicate backend "${items[i]}"`, value);
    seen.add(id);
  });
}

/** Validates one `vips` entry; returns the normalized backend list. */
function validateVip(key: string, value: unknown, field: string): string {
  if (typeof value !== 'string') {
    throw new ConfigError(field, 'must be a comma-separated backend list string (e.g. "10.0.0.1:80,10.0.0.2:80")', value);
  }
  const vip = parseEndpoint(key, 'VIP', field, key);
  const items = splitBackends(value);
  const backends = items.map((item) => {
    if (item === '') throw new ConfigError(field, 'backend list has an empty entry (stray comma?)', value);
    return parseEndpoint(item, 'backend', field, value);
  });
  checkVipShape(key, vip, backends, items, field, value);
  checkDuplicateBackends(backends, items, field, value);
  return items.join(',');
}

/**
 * VIPs validated before, by key: validation is a pure function of (key,
 * backend list), so an unchanged VIP of a big config is not parsed again
 * (a re-apply costs what changed). Bounded: cleared when it grows past
 * VIP_CACHE_MAX entries.
 */
const vipCache = new Map<string, { value: string; normalized: string; vip: HostPort; ident?: Partial<Record<Protocol, string>> }>();
const VIP_CACHE_MAX = 1 << 18;

/** vipIdentity() of a validated `vips` key of a load balancer with `protocol` (cached). */
function vipKeyIdentity(key: string, protocol: Protocol): string {
  const hit = vipCache.get(key);
  const known = hit?.ident?.[protocol];
  if (known !== undefined) return known;
  const vip = hit?.vip ?? parseHostPort(key);
  const id = vipIdentity({ family: vip.family, addr: vip.addr, port: vip.port, protocol: vip.port === 0 ? null : protocol });
  if (hit) (hit.ident ??= {})[protocol] = id;
  return id;
}

/**
 * The validated `vips` of each load balancer as its keys and normalized
 * lists, in order (compile walks these arrays instead of the object). Keys
 * of a validated `vips` object returned by validateConfig.
 */
export interface VipList {
  keys: readonly string[];
  lists: readonly string[];
  /** Set when these are `from`'s keys (the same array) with only the lists at `changed` (indexes) other: what changed, without a walk. */
  from?: VipList | undefined;
  changed?: readonly number[] | undefined;
}
const vipLists = new WeakMap<object, VipList>();

/** The keys and lists of a validated `vips` object, in order (an object not from validateConfig is read as it is). */
export function vipList(vips: Record<string, string>): VipList {
  const known = vipLists.get(vips);
  if (known) return known;
  const keys = Object.keys(vips);
  return { keys, lists: keys.map((k) => vips[k]!) };
}

/**
 * The last `vips` validated per load balancer name (input values and result):
 * an unchanged load balancer gets the same validated object back without
 * building a new one, and a changed one is compared key by key against it.
 * Bounded like vipCache.
 */
type LastVips = { input: object; keys: string[]; raws: unknown[]; list: VipList; out: Record<string, string>; v6: boolean };
const lastVips = new Map<string, LastVips>();
const LAST_VIPS_MAX = 1 << 12;
/** The lastVips record of each validated `vips` object. */
const lastVipsOf = new WeakMap<object, LastVips>();

/** Counters of validation work (tests check that a small change costs little). */
export const validateCounters = { vipsParsed: 0, overlapChecked: 0, keysRead: 0 };

/** `vips` objects made by withVip: the frozen object each was copied from and the key set. */
const vipEdits = new WeakMap<object, { from: object; key: string }>();

/**
 * A frozen copy of `vips` with `key` set to `list` — what an API write of one
 * VIP builds. When `vips` is frozen too (an earlier one of these, or any
 * frozen input) and `key` was there already, validateConfig looks at that VIP
 * only instead of reading every key of the copy.
 */
export function withVip<T>(vips: Readonly<Record<string, T>>, key: string, list: T): Readonly<Record<string, T>> {
  const out = Object.freeze({ ...vips, [key]: list });
  if (Object.isFrozen(vips) && Object.prototype.hasOwnProperty.call(vips, key)) vipEdits.set(out, { from: vips, key });
  return out;
}

/** Key → index of a `keys` array of a VipList (built once per array: derived lists share it). */
const keyIndexes = new WeakMap<readonly string[], Map<string, number>>();
function keyIndex(keys: readonly string[]): Map<string, number> {
  let m = keyIndexes.get(keys);
  if (!m) keyIndexes.set(keys, (m = new Map(keys.map((k, i) => [k, i]))));
  return m;
}

/** Validates the one VIP withVip changed in `prev`'s input; null when the walk is needed (a new key, a list to normalize). */
function validateEdit(raw: Obj, edit: { from: object; key: string }, prev: LastVips, field: string, lbName: string): Record<string, string> | null {
  const k = keyIndex(prev.keys).get(edit.key);
  if (k === undefined) return null;
  const value = raw[edit.key];
  let entry = vipCache.get(edit.key);
  if (entry === undefined || entry.value !== value) {
    validateCounters.vipsParsed++;
    const joined = validateVip(edit.key, value, keyPath(field, edit.key));
    if (joined !== value) return null;
    if (vipCache.size >= VIP_CACHE_MAX) vipCache.clear();
    entry = { value: value as string, normalized: value as string, vip: parseHostPort(edit.key) };
    vipCache.set(edit.key, entry);
  }
  if (entry.normalized !== value) return null;
  // The same key at the same place: no other VIP changed, no new IPv6 spelling.
  const lists = prev.list.lists.slice();
  lists[k] = value as string;
  const raws = prev.raws.slice();
  raws[k] = value;
  const list: VipList = { keys: prev.keys, lists, from: prev.list, changed: [k] };
  prev.list.from = prev.list.changed = undefined;
  const out = raw as Record<string, string>;
  vipLists.set(out, list);
  const rec: LastVips = { input: raw, keys: prev.keys, raws, list, out, v6: prev.v6 };
  if (lastVips.size >= LAST_VIPS_MAX) lastVips.clear();
  lastVips.set(lbName, rec);
  lastVipsOf.set(out, rec);
  return out;
}

/** Validates `vips` (of load balancer `lbName`, for the memo above). */
function validateVips(v: unknown, field: string, lbName = ''): Record<string, string> {
  const raw = optionalObj(v, field, 'an object mapping "IP:PORT" (or "IP") to a backend list');
  // A `vips` object validateConfig returned (frozen) is valid as it is: validation is a pure function of it.
  // It is this load balancer's last one from now on (the next change is compared with it).
  if (vipLists.has(raw)) {
    const rec = lastVipsOf.get(raw);
    if (rec && lastVips.get(lbName) !== rec) lastVips.set(lbName, rec);
    return raw as Record<string, string>;
  }
  const prev = lastVips.get(lbName);
  // The same frozen input as last time (a control plane that keeps its objects): nothing to read again.
  if (prev !== undefined && prev.input === raw && Object.isFrozen(raw)) return prev.out;
  // One VIP set by withVip on a validated `vips` object: that VIP only.
  const edit = vipEdits.get(raw);
  const base = edit && lastVipsOf.get(edit.from);
  if (edit !== undefined && base !== undefined) {
    const out = validateEdit(raw, edit, base, field, lbName);
    if (out !== null) return out;
  }
  // IPv6 has many spellings of one address: one VIP, one key (IPv4 is parsed strictly: one spelling).
  const seen6 = new Map<string, string>();
  const keys = Object.keys(raw);
  const raws: unknown[] = new Array(keys.length);
  const lists: string[] = new Array(keys.length);
  let same = prev !== undefined && prev.keys.length === keys.length;
  let sameKeys = same;
  /** Indexes whose value differs from the last validation (while the keys are the same). */
  const changed: number[] = [];
  /** Whether every value is already its normalized list (a frozen input can then be the result). */
  let normal = true;
  validateCounters.keysRead += keys.length;
  for (let k = 0; k < keys.length; k++) {
    const key = keys[k]!;
    const value = raw[key];
    raws[k] = value;
    if (prev !== undefined && prev.keys[k] === key) {
      if (prev.raws[k] === value) {
        // Unchanged since the last validation of this load balancer (IPv6 keys are re-checked for spellings below).
        lists[k] = prev.list.lists[k]!;
        if (lists[k] !== value) normal = false;
        // IPv4 (at most one ':'): nothing left to check (a load balancer without IPv6 VIPs last time has no IPv6 key here).
        if (!prev.v6 || key.indexOf(':') === key.lastIndexOf(':')) continue;
      } else {
        same = false;
        changed.push(k);
      }
    } else {
      same = false;
      sameKeys = false;
    }
    let entry = vipCache.get(key);
    if (entry === undefined || entry.value !== value) {
      validateCounters.vipsParsed++;
      const joined = validateVip(key, value, keyPath(field, key));
      // The input itself when already normalized: later checks compare it by reference, not 10³ characters.
      const normalized = joined === value ? value : joined;
      if (vipCache.size >= VIP_CACHE_MAX) vipCache.clear();
      entry = { value: value as string, normalized, vip: parseHostPort(key) };
      vipCache.set(key, entry);
    }
    if (entry.vip.family === 6) {
      const id = `${canonicalAddr(6, entry.vip.addr)}|${entry.vip.port}`;
      const other = seen6.get(id);
      if (other !== undefined) throw new ConfigError(keyPath(field, key), `VIP "${key}" is the same as VIP "${other}"`, key);
      seen6.set(id, key);
    }
    lists[k] = entry.normalized;
    if (lists[k] !== value) normal = false;
  }
  if (same && prev) return prev.out;
  let out: Record<string, string>;
  if (normal && Object.isFrozen(raw) && !vipLists.has(raw)) {
    // A frozen input of normalized lists cannot change under us: it is the result (no copy of 10⁴ keys).
    out = raw as Record<string, string>;
  } else {
    // A prototype-less object: inserting 10⁴ keys into it is several times faster.
    out = Object.create(null) as Record<string, string>;
    for (let k = 0; k < keys.length; k++) out[keys[k]!] = lists[k]!;
    // Frozen: compile may take an unchanged object as unchanged VIPs.
    Object.freeze(out);
  }
  const list: VipList = sameKeys && prev ? { keys: prev.keys, lists, from: prev.list, changed } : { keys, lists };
  // One step back only (no chain of every earlier list kept alive).
  if (prev) prev.list.from = prev.list.changed = undefined;
  vipLists.set(out, list);
  if (lastVips.size >= LAST_VIPS_MAX) lastVips.clear();
  const rec = { input: raw, keys: list.keys as string[], raws, list, out, v6: seen6.size > 0 };
  lastVips.set(lbName, rec);
  lastVipsOf.set(out, rec);
  return out;
}

/** Validates `selection_fields`. */
function validateSelectionFields(v: unknown, field: string): string[] {
  const allowed: readonly string[] = SELECTION_FIELDS;
  const seen = new Set<string>();
  return optionalArray(v, field, 'an array of field names').map((item, i) => {
    const itemField = indexPath(field, i);
    if (typeof item !== 'string' || !allowed.includes(item)) {
      throw new ConfigError(itemField, `must be one of ${quoteList(allowed)}`, item);
    }
    if (seen.has(item)) throw new ConfigError(itemField, `duplicate selection field "${item}"`, item);
    seen.add(item);
    return item;
  });
}

/** A load balancer's input besides `vips`, copied: [key, value] pairs in order, a value a primitive or a list of pairs (an object or array of primitives). */
type FlatCopy = Array<[string, unknown]>;

/** The copy of `raw` (but `vips`) sameFlat compares against; null when a value is nested deeper (not copied: always validated). */
function flatCopy(raw: Obj): FlatCopy | null {
  const out: FlatCopy = [];
  for (const key of Object.keys(raw)) {
    if (key === 'vips') continue;
    const value = raw[key];
    if (typeof value !== 'object' || value === null) {
      out.push([key, value]);
      continue;
    }
    if (!Array.isArray(value) && !isObj(value)) return null;
    const inner: Array<[string, unknown]> = [];
    for (const k of Object.keys(value)) {
      const x = (value as Obj)[k];
      if (typeof x === 'object' && x !== null) return null;
      inner.push([k, x]);
    }
    out.push([key, { array: Array.isArray(value), inner }]);
  }
  return out;
}

/** Whether `raw` (but `vips`) holds what `copy` was copied from: the same keys in the same order, the same values. */
function sameFlat(raw: Obj, copy: FlatCopy): boolean {
  let at = 0;
  for (const key of Object.keys(raw)) {
    if (key === 'vips') continue;
    const c = copy[at++];
    if (c === undefined || c[0] !== key) return false;
    const value = raw[key];
    if (typeof value !== 'object' || value === null) {
      if (value !== c[1]) return false;
      continue;
    }
    const was = c[1] as { array: boolean; inner: Array<[string, unknown]> } | null;
    if (typeof was !== 'object' || was === null || was.array !== Array.isArray(value) || (!was.array && !isObj(value))) return false;
    const keys = Object.keys(value);
    if (keys.length !== was.inner.length) return false;
    for (let i = 0; i < keys.length; i++) {
      const [k, x] = was.inner[i]!;
      if (keys[i] !== k || (value as Obj)[k] !== x) return false;
    }
  }
  return at === copy.length;
}

/**
 * The last load balancer validated per name and a copy of its input (but
 * `vips`): an input equal to that copy whose `vips` validate to the same
 * object gets that same (frozen) load balancer back, which compile and the
 * journal take as unchanged at a glance. Bounded like lastVips.
 */
const lastLbs = new Map<string, { rest: FlatCopy; lb: LoadBalancer }>();
/** Load balancers validateConfig handed out frozen (options and lists too): compile may take one it saw before as unchanged. */
const validatedLbs = new WeakSet<object>();

/** Whether `lb` is a frozen load balancer validateConfig returned (it cannot have changed since). */
export function isValidatedLb(lb: LoadBalancer): boolean {
  return validatedLbs.has(lb);
}

/** Validates one load balancer. */
function validateLoadBalancer(v: unknown, field: string, names: Set<string>): LoadBalancer {
  const raw = expectObj(v, field, 'a load balancer object');
  // The same input as this load balancer's last one (besides `vips`, compared by value) whose `vips`
  // validate to the same object: the same load balancer, as the same object (no other field read again).
  const last = typeof raw.name === 'string' ? lastLbs.get(raw.name) : undefined;
  let vips: Record<string, string> | undefined;
  if (last !== undefined && sameFlat(raw, last.rest)) {
    // (the name is the one validated last time: only a duplicate is left to find)
    if (names.has(last.lb.name)) expectName(raw.name, keyPath(field, 'name'), 'load balancer', names);
    names.add(last.lb.name);
    vips = validateVips(raw.vips, `${field}.vips`, last.lb.name);
    if (vips === last.lb.vips) return last.lb;
    names.delete(last.lb.name); // (checked again below)
  }
  checkKeys(raw, field, LB_KEYS, 'a load balancer');
  const allowedOptions = [...LB_OPTIONS.keys()].join(', ');
  const lb: LoadBalancer = {
    name: expectName(raw.name, keyPath(field, 'name'), 'load balancer', names),
    protocol: expectChoice(raw.protocol, keyPath(field, 'protocol'), PROTOCOLS, 'tcp'),
    vips: vips ?? validateVips(raw.vips, keyPath(field, 'vips'), typeof raw.name === 'string' ? raw.name : ''),
    options: validateOptions(raw.options, keyPath(field, 'options'), (k) => LB_OPTIONS.get(k), allowedOptions),
    selection_fields: validateSelectionFields(raw.selection_fields, keyPath(field, 'selection_fields')),
  };
  if (lb.protocol === 'sctp') {
    // The SCTP port+CRC step does not fit the IPv6 pipeline's stack yet: IPv6
    // SCTP is served by IP-only VIPs (ports kept, CRC untouched).
    for (const key of Object.keys(lb.vips)) {
      if (key.startsWith('[')) {
        throw new ConfigError(keyPath(keyPath(field, 'vips'), key), 'SCTP VIPs with a port are IPv4 only for now (an IP-only IPv6 VIP serves SCTP)', key);
      }
    }
  }
  validateHealth(raw, field, lb);
  // Every weighted backend must be a backend of this load balancer.
  const weights = lbWeights(lb);
  const known = weights.size === 0 ? new Set<string>() : new Set(Object.values(lb.vips).flatMap((list) => splitBackends(list).map((b) => b.trim())));
  for (const backend of weights.keys()) {
    if (!known.has(backend)) {
      throw new ConfigError(
        keyPath(keyPath(field, 'options'), 'xlb_weights'),
        `backend ${JSON.stringify(backend)} is not a backend of any VIP of load balancer ${JSON.stringify(lb.name)}`,
        lb.options.xlb_weights,
      );
    }
  }
  const rest = flatCopy(raw);
  if (rest !== null) {
    // Frozen, options and lists too: handed out again as it is while its input is unchanged.
    Object.freeze(lb.options);
    Object.freeze(lb.selection_fields);
    if (lb.ip_port_mappings) Object.freeze(lb.ip_port_mappings);
    Object.freeze(lb);
    validatedLbs.add(lb);
    if (lastLbs.size >= LAST_VIPS_MAX) lastLbs.clear();
    lastLbs.set(lb.name, { rest, lb });
  }
  return lb;
}

// ---------------------------------------------------------------------------
// Interfaces (switch and router ports)

/** An interface reference: where it lives and how to hook it. */
interface IfaceRef {
  interface: string;
  netns: string | null;
  ifname: string;
  hook: Hook;
}

/** Why `name` is not a valid Linux interface name, or null. */
function ifnameProblem(name: string): string | null {
  if (name === '' || new TextEncoder().encode(name).length > MAX_IFNAME_BYTES) {
    return `interface name must be 1..${MAX_IFNAME_BYTES} bytes`;
  }
  if (/[/:\s]/.test(name) || name === '.' || name === '..') {
    return 'interface name must not contain "/", ":" or whitespace (nor be "." or "..")';
  }
  return null;
}

/** Parses `IFNAME` or `NETNS/IFNAME`. */
function parseInterfaceSpec(spec: string, field: string, value: unknown): { netns: string | null; ifname: string } {
  const parts = spec.split('/');
  if (parts.length > 2) throw new ConfigError(field, 'interface must be "IFNAME" or "NETNS/IFNAME"', value);
  const ifname = parts[parts.length - 1] ?? '';
  const netns = parts.length === 2 ? (parts[0] ?? '') : null;
  if (netns !== null && (!NETNS_RE.test(netns) || netns === '.' || netns === '..')) {
    throw new ConfigError(field, `network namespace name "${netns}" must match [A-Za-z0-9_.-]+`, value);
  }
  const problem = ifnameProblem(ifname);
  if (problem !== null) throw new ConfigError(field, `${problem}: "${ifname}"`, value);
  return { netns, ifname };
}

/** Checks optional explicit `netns`/`ifname` fields agree with `interface`. */
function checkIfaceEcho(raw: Obj, field: string, parsed: { netns: string | null; ifname: string }): void {
  if (raw.netns !== undefined && raw.netns !== parsed.netns) {
    throw new ConfigError(keyPath(field, 'netns'), `must match the namespace in interface (${JSON.stringify(parsed.netns)})`, raw.netns);
  }
  if (raw.ifname !== undefined && raw.ifname !== parsed.ifname) {
    throw new ConfigError(keyPath(field, 'ifname'), `must match the name in interface (${JSON.stringify(parsed.ifname)})`, raw.ifname);
  }
}

/** Validates the interface part of a port object (`interface`, `netns`, `ifname`, `hook`). */
function validateIfaceFields(raw: Obj, field: string): IfaceRef {
  const ifaceField = keyPath(field, 'interface');
  const spec = expectString(raw.interface, ifaceField);
  const parsed = parseInterfaceSpec(spec, ifaceField, raw.interface);
  checkIfaceEcho(raw, field, parsed);
  return {
    interface: parsed.netns === null ? parsed.ifname : `${parsed.netns}/${parsed.ifname}`,
    netns: parsed.netns,
    ifname: parsed.ifname,
    hook: expectChoice(raw.hook, keyPath(field, 'hook'), HOOKS, 'auto'),
  };
}

/** Tracks interfaces across all switches and routers to reject double use. */
class InterfaceRegistry {
  private readonly used = new Map<string, string>();

  /** Records `ref` used at `field`; throws if already used elsewhere. */
  claim(ref: IfaceRef, field: string, value: unknown): void {
    const id = `${ref.netns ?? ''}/${ref.ifname}`;
    const previous = this.used.get(id);
    if (previous !== undefined) {
      throw new ConfigError(field, `interface "${ref.interface}" is already used by ${previous}`, value);
    }
    this.used.set(id, field);
  }
}

// ---------------------------------------------------------------------------
// Switches, routers and their load balancer references

/** Validates one switch port (string or object form). */
function validateSwitchPort(v: unknown, field: string): SwitchPort {
  if (typeof v === 'string') {
    const { netns, ifname } = parseInterfaceSpec(v, field, v);
    return { interface: v, netns, ifname, hook: 'auto' };
  }
  const raw = expectObj(v, field, 'an interface name ("IFNAME" or "NETNS/IFNAME") or an object { interface, hook }');
  checkKeys(raw, field, SWITCH_PORT_KEYS, 'a switch port');
  const port: SwitchPort = validateIfaceFields(raw, field);
  if (raw.addresses !== undefined) port.addresses = validateLspAddresses(raw.addresses, keyPath(field, 'addresses'));
  return port;
}

/** OVN's Logical_Switch_Port addresses: each "MAC IP…", or "router", "unknown", "dynamic". */
function validateLspAddresses(v: unknown, field: string): string[] {
  return optionalArray(v, field, 'an array of "MAC IP…" strings').map((item, i) => {
    const at = indexPath(field, i);
    const text = expectString(item, at);
    const tokens = text.split(' ').filter((t) => t !== '');
    const ok =
      tokens.length > 0 &&
      tokens.every((t) => MAC_RE.test(t) || isIPv4(t) || isIPv6Literal(t) || ['router', 'unknown', 'dynamic'].includes(t));
    if (!ok) throw new ConfigError(at, 'must be "MAC IP…" (OVN Logical_Switch_Port addresses), "router", "unknown" or "dynamic"', item);
    return tokens.join(' ');
  });
}

/** A unique identity of a VIP for overlap checks on one switch/router. */
function vipIdentity(vip: Pick<Vip, 'family' | 'addr' | 'port' | 'protocol'>): string {
  const addr = canonicalAddr(vip.family, vip.addr);
  if (vip.protocol === null) return `${addr} (IP-only)`;
  return vip.family === 6 ? `[${addr}]:${vip.port}/${vip.protocol}` : `${addr}:${vip.port}/${vip.protocol}`;
}

/**
 * Validates a `load_balancer` reference list: names must exist, be listed
 * once, and their VIPs must not overlap on the same switch/router.
 */
function validateLbRefs(v: unknown, field: string, lbs: ReadonlyMap<string, LoadBalancer>, owner: string): string[] {
  const names: string[] = [];
  const items = optionalArray(v, field, 'an array of load balancer names');
  const listed = new Set<string>();
  items.forEach((item, i) => {
    // (the field's path is built only for an error)
    const name = typeof item === 'string' ? item : expectString(item, indexPath(field, i));
    const lb = lbs.get(name);
    if (lb === undefined) throw new ConfigError(indexPath(field, i), `unknown load balancer "${name}"`, item);
    if (listed.has(name)) throw new ConfigError(indexPath(field, i), `load balancer "${name}" is listed twice`, item);
    listed.add(name);
    names.push(name);
  });
  // VIPs of one load balancer never overlap (checked in validateVips): with one, nothing to compare.
  if (names.length < 2) return names;
  const objs = names.map((n) => lbs.get(n)!);
  const identities = (lb: { vips: Record<string, string>; protocol: Protocol }): string[] =>
    vipList(lb.vips).keys.map((key) => vipKeyIdentity(key, lb.protocol));
  // The same load balancers as at the last check of this list: only those
  // whose (frozen) validated VIPs are other objects now are checked again,
  // against the VIP → load balancer index of that check.
  const last = lastOverlapCheck.get(owner);
  if (last && last.lbs.length === objs.length && last.lbs.every((x, i) => x.name === names[i] && x.protocol === objs[i]!.protocol)) {
    const changed: number[] = [];
    for (let i = 0; i < objs.length; i++) {
      const was = last.lbs[i]!;
      if (was.vips === objs[i]!.vips) continue;
      // The same keys (only backend lists changed): the same VIP identities, nothing to check again.
      if (vipList(was.vips).keys === vipList(objs[i]!.vips).keys) was.vips = objs[i]!.vips;
      else changed.push(i);
    }
    if (changed.length === 0) return names;
    for (const i of changed) for (const id of identities(last.lbs[i]!)) if (last.owners.get(id) === names[i]) last.owners.delete(id);
    let clash = false;
    for (const i of changed) {
      for (const id of identities(objs[i]!)) {
        validateCounters.overlapChecked++;
        if (last.owners.has(id)) clash = true;
        last.owners.set(id, names[i]!);
      }
    }
    if (!clash) {
      for (const i of changed) last.lbs[i] = { name: names[i]!, vips: objs[i]!.vips, protocol: objs[i]!.protocol };
      return names;
    }
    // The index no longer matches any check: the full check below names the clash.
    lastOverlapCheck.delete(owner);
  }
  const vipOwners = new Map<string, string>();
  objs.forEach((lb, i) => {
    const name = names[i]!;
    for (const id of identities(lb)) {
      const other = vipOwners.get(id);
      if (other !== undefined) {
        throw new ConfigError(indexPath(field, i), `load balancers "${other}" and "${name}" both define VIP ${id} on ${owner}`, items[i]);
      }
      validateCounters.overlapChecked++;
      vipOwners.set(id, name);
    }
  });
  if (lastOverlapCheck.size >= LAST_VIPS_MAX) lastOverlapCheck.clear();
  lastOverlapCheck.set(owner, { lbs: objs.map((lb, i) => ({ name: names[i]!, vips: lb.vips, protocol: lb.protocol })), owners: vipOwners });
  return names;
}

/**
 * Per switch/router: the load balancers (their validated VIPs) whose overlap
 * check passed last, and the VIP identity → load balancer index it built.
 */
const lastOverlapCheck = new Map<
  string,
  { lbs: Array<{ name: string; vips: Record<string, string>; protocol: Protocol }>; owners: Map<string, string> }
>();

/** Validates one logical switch. */
function validateSwitch(v: unknown, field: string, ctx: Context): LogicalSwitch {
  const raw = expectObj(v, field, 'a logical switch object');
  checkKeys(raw, field, SWITCH_KEYS, 'a logical switch');
  const name = expectName(raw.name, keyPath(field, 'name'), 'logical switch', ctx.switchNames);
  const portsField = keyPath(field, 'ports');
  const ports = optionalArray(raw.ports, portsField, 'an array of ports').map((item, i) => {
    const port = validateSwitchPort(item, indexPath(portsField, i));
    ctx.interfaces.claim(port, indexPath(portsField, i), item);
    return port;
  });
  const lbField = keyPath(field, 'load_balancer');
  return { name, ports, load_balancer: validateLbRefs(raw.load_balancer, lbField, ctx.lbs, `logical switch "${name}"`) };
}

/** Validates a router port's `networks`. */
function validateNetworks(v: unknown, field: string): string[] {
  const nets = optionalArray(v, field, 'an array of "A.B.C.D/N" or "X:X::X/N" networks');
  if (nets.length === 0) throw new ConfigError(field, 'must list at least one "A.B.C.D/N" or "X:X::X/N" network', v);
  const seen = new Set<string>();
  return nets.map((item, i) => {
    const itemField = indexPath(field, i);
    const text = expectString(item, itemField);
    try {
      if (text.includes(':')) parseIPv6Cidr(text);
      else parseIPv4Cidr(text);
    } catch (err) {
      if (err instanceof AddrParseError) throw new ConfigError(itemField, `network "${text}" ${err.reason}`, item);
      throw err;
    }
    if (seen.has(text)) throw new ConfigError(itemField, `duplicate network "${text}"`, item);
    seen.add(text);
    return text;
  });
}

/** Validates one router port. */
function validateRouterPort(v: unknown, field: string, ctx: Context): RouterPort {
  const raw = expectObj(v, field, 'a router port object { name, interface, mac, networks, hook? }');
  checkKeys(raw, field, ROUTER_PORT_KEYS, 'a router port');
  const name = expectName(raw.name, keyPath(field, 'name'), 'router port', ctx.routerPortNames);
  const iface = validateIfaceFields(raw, field);
  ctx.interfaces.claim(iface, keyPath(field, 'interface'), raw.interface);
  const macField = keyPath(field, 'mac');
  const mac = expectString(raw.mac, macField);
  if (!MAC_RE.test(mac)) throw new ConfigError(macField, 'must be a MAC address "aa:bb:cc:dd:ee:ff"', raw.mac);
  return { name, ...iface, mac: mac.toLowerCase(), networks: validateNetworks(raw.networks, keyPath(field, 'networks')) };
}

/** Requires an IPv4 address (IPv6 gets the "not supported yet" error). */
function expectIPv4(v: unknown, field: string, allowPrefix: boolean): string {
  const text = expectString(v, field);
  const addr = allowPrefix && text.includes('/') ? text.slice(0, text.indexOf('/')) : text;
  if (isIPv6Literal(addr)) throw new ConfigError(field, IPV6_UNSUPPORTED, v);
  if (allowPrefix && text.includes('/')) {
    try {
      parseIPv4Cidr(text);
    } catch (err) {
      if (err instanceof AddrParseError) throw new ConfigError(field, `"${text}" ${err.reason}`, v);
      throw err;
    }
  } else if (text.includes('/')) {
    throw new ConfigError(field, `must be a single IPv4 address here, not a network`, v);
  } else if (!isIPv4(text)) {
    throw new ConfigError(field, `"${text}" is not a valid IPv4 address${allowPrefix ? ' or network' : ''}`, v);
  }
  return text;
}

/** Validates one NAT rule. */
function validateNat(v: unknown, field: string): NatRule {
  const raw = expectObj(v, field, 'a NAT object { type, external_ip, logical_ip }');
  checkKeys(raw, field, NAT_KEYS, 'a NAT rule');
  const type = expectChoice(raw.type, keyPath(field, 'type'), NAT_TYPES);
  const external_ip = expectIPv4(raw.external_ip, keyPath(field, 'external_ip'), false);
  // OVN: only snat may translate a whole logical network.
  const logical_ip = expectIPv4(raw.logical_ip, keyPath(field, 'logical_ip'), type === 'snat');
  return { type, external_ip, logical_ip };
}

/** Validates one logical router. */
function validateRouter(v: unknown, field: string, ctx: Context): LogicalRouter {
  const raw = expectObj(v, field, 'a logical router object');
  checkKeys(raw, field, ROUTER_KEYS, 'a logical router');
  const name = expectName(raw.name, keyPath(field, 'name'), 'logical router', ctx.routerNames);
  const portsField = keyPath(field, 'ports');
  const ports = optionalArray(raw.ports, portsField, 'an array of router ports').map((item, i) =>
    validateRouterPort(item, indexPath(portsField, i), ctx),
  );
  const lbField = keyPath(field, 'load_balancer');
  const load_balancer = validateLbRefs(raw.load_balancer, lbField, ctx.lbs, `logical router "${name}"`);
  const allowedOptions = `${ROUTER_OPTION_KEYS.join(', ')}, xlb_*`;
  const options = validateOptions(raw.options, keyPath(field, 'options'), routerOptionCheck, allowedOptions);
  const natField = keyPath(field, 'nat');
  const nat = optionalArray(raw.nat, natField, 'an array of NAT rules').map((item, i) => validateNat(item, indexPath(natField, i)));
  return { name, ports, load_balancer, options, nat };
}

/** Cross-section state threaded through validation. */
interface Context {
  lbs: ReadonlyMap<string, LoadBalancer>;
  switchNames: Set<string>;
  routerNames: Set<string>;
  routerPortNames: Set<string>;
  interfaces: InterfaceRegistry;
}

// ---------------------------------------------------------------------------
// Public API

/** Field name used for problems with the document as a whole. */
const ROOT_FIELD = '$';

/**
 * Validates a raw (parsed YAML/JSON) configuration and returns the fully
 * normalized desired state. Pure and all-or-nothing.
 * @throws ConfigError naming the first bad field and its value
 */
export function validateConfig(raw: unknown): DesiredState {
  const top = expectObj(raw, ROOT_FIELD, `an object with keys ${TOP_LEVEL_KEYS.join(', ')}`);
  checkKeys(top, '', TOP_LEVEL_KEYS, 'the top level');
  const lbNames = new Set<string>();
  const load_balancers = optionalArray(top.load_balancers, 'load_balancers', 'an array of load balancers').map((item, i) =>
    validateLoadBalancer(item, indexPath('load_balancers', i), lbNames),
  );
  const ctx: Context = {
    lbs: new Map(load_balancers.map((lb) => [lb.name, lb])),
    switchNames: new Set(),
    routerNames: new Set(),
    routerPortNames: new Set(),
    interfaces: new InterfaceRegistry(),
  };
  const logical_switches = optionalArray(top.logical_switches, 'logical_switches', 'an array of logical switches').map(
    (item, i) => validateSwitch(item, indexPath('logical_switches', i), ctx),
  );
  const logical_routers = optionalArray(top.logical_routers, 'logical_routers', 'an array of logical routers').map(
    (item, i) => validateRouter(item, indexPath('logical_routers', i), ctx),
  );
  return { load_balancers, logical_switches, logical_routers };
}

/** Removes the yaml library's " at line L, column C:" suffix and code frame. */
function yamlProblem(message: string): string {
  const firstLine = message.split('\n')[0] ?? message;
  return firstLine.replace(/ at line \d+, column \d+:?$/, '');
}

/**
 * Parses configuration text (YAML, or JSON since YAML accepts it) and validates it.
 * An empty document is the empty state. Duplicate mapping keys are errors.
 * @param source where the text came from (file name), used as `field` of syntax errors
 * @throws ConfigError for syntax errors (`field` = source, message with line and
 *   column, value = the offending line) and for every validation error
 */
export function parseConfigText(text: string, source: string): DesiredState {
  const doc = parseDocument(text, { uniqueKeys: true, prettyErrors: true });
  const error = doc.errors[0];
  if (error !== undefined) {
    const pos = error.linePos?.[0];
    const where = pos === undefined ? '' : `line ${pos.line}, column ${pos.col}: `;
    const lineText = pos === undefined ? text : (text.split(/\r?\n/)[pos.line - 1] ?? '');
    throw new ConfigError(source, `${where}invalid YAML/JSON: ${yamlProblem(error.message)}`, lineText);
  }
  let raw: unknown;
  try {
    raw = doc.toJS();
  } catch (err) {
    throw new ConfigError(source, `invalid YAML: ${err instanceof Error ? err.message : String(err)}`, text.slice(0, 80));
  }
  return validateConfig(raw ?? {});
}

/** The Maglev table size configured for a (validated) load balancer. */
export function lbMaglevSize(lb: LoadBalancer): number {
  const text = lb.options.xlb_maglev_size;
  return text === undefined ? DEFAULT_MAGLEV_SIZE : Number(text);
}

/**
 * Parses the VIPs of a validated load balancer, in `vips` order.
 * IP-only VIPs get protocol null and port 0 (and so do their backends).
 * @throws AddrParseError if `lb` was not validated and holds a bad address
 */
export function lbVips(lb: LoadBalancer): Vip[] {
  const parse = lbVipParser(lb);
  return Object.entries(lb.vips).map(([key, list]) => parse(key, list));
}

/**
 * lbVips() one VIP at a time: parses VIP `key` with its backend `list` as
 * lbVips(lb) would (the load balancer's options read once), so a caller can
 * parse each VIP as it gets to it.
 */
export function lbVipParser(lb: LoadBalancer): (key: string, list: string) => Vip {
  const maglevSize = lbMaglevSize(lb);
  const weights = lbWeights(lb);
  return (key, list) => {
    const v = vipOf<Backend>(lb, key, maglevSize);
    v.backends = splitBackends(list).map((item) => {
      const b = parseHostPort(item);
      return { addr: b.addr, port: b.port, weight: weights.get(item.trim()) ?? 1 };
    });
    return v;
  };
}

/**
 * VIP `key` of `lb` (parsed; the key is read before its backends, so a bad key
 * is what an error names first), with no backends yet: what lbVipParser fills
 * with Backends and compile with its own compiled form of them.
 */
export function vipOf<B>(lb: LoadBalancer, key: string, maglevSize: number): Omit<Vip, 'backends'> & { backends: B[] } {
  const vip = parseHostPort(key);
  return {
    lb: lb.name,
    key,
    family: vip.family,
    addr: vip.addr,
    port: vip.port,
    protocol: vip.port === 0 ? null : lb.protocol,
    backends: [],
    maglevSize,
  };
}
