/**
 * compile(desired state) → map contents. Pure: no I/O, no clock, so the whole
 * policy of what the kernel should hold is unit-testable without root.
 *
 * Identity rules (kept stable across applies so that conntrack, counters and
 * Maglev tables survive unrelated changes):
 * - a scope per logical switch / router (the set of VIPs its ports serve);
 * - a VIP id per (load balancer, VIP, protocol): shared by every switch the
 *   load balancer is attached to, and the index of its Maglev table and counters;
 * - a backend id per (VIP id, backend address:port).
 */
import type { DesiredState, Hook, LoadBalancer, LogicalRouter, LogicalSwitch, Vip } from './config.js';
import { isValidatedLb, lbMaglevSize, lbWeights, vipOf } from './config.js';
import { isIPv4, parseHostPort, parseIPv4, parseIPv4Cidr, parseIPv6, parseIPv6Cidr, tryParseIPv4Port } from './addr.js';
import { TableBuilder } from './maglev-pool.js';
// (its own line: other changes touch the imports above)
import { vipList, type VipList } from './config.js';
import { HASH_FIELDS, IPPROTO, XLB, noteMaglevIds, type Snat4Entry } from './layout.js';

/** Ids handed out by earlier applies; compile keeps them where it can. */
export interface Ids {
  scopes: Record<string, number>;
  vips: Record<string, number>;
  backends: Record<string, number>;
}

export const EMPTY_IDS: Ids = { scopes: {}, vips: {}, backends: {} };

/** One interface xlb serves. */
export interface CompiledIface {
  /** As written in the config: IFNAME or NETNS/IFNAME. */
  interface: string;
  netns: string | null;
  ifname: string;
  hook: Hook;
  scope: number;
  flags: number;
  /** "switch NAME" or "router NAME". */
  owner: string;
  /** A router port's MAC (neighbor_responder answers with it). */
  mac?: string;
}

/** An address a router answers ARP (IPv4) or neighbour solicitations (IPv6, addr6) for on its
 *  ports (OVN's neighbor_responder). */
export interface CompiledNeigh {
  /** IPv4 address (0 for IPv6). */
  addr: number;
  /** IPv6 address, 16 bytes. */
  addr6?: Buffer;
  scope: number;
  /** "router NAME". */
  owner: string;
}

export interface CompiledBackend {
  id: number;
  addr: number;
  port: number;
  /** "A.B.C.D:PORT" or "A.B.C.D" as in the config ("[V6]:PORT" or "V6" for IPv6). */
  text: string;
  /** IPv6 backends: the address (16 bytes; `addr` is then 0). Goes to xlb_backends6. */
  addr6?: Buffer;
  /** Set when a health check reported the backend down: it keeps its id and its entry in the
   *  backends map (established connections on it are untouched) but has no slot in the table. */
  down?: true;
  /** Maglev weight (xlb_weights; default 1). 0 drains: no slot, established flows continue. */
  weight: number;
  /** BACKEND_F_DRAIN when down or weight 0 (affinity then stops sending new flows to it). */
  flags: number;
}

/** One VIP of one load balancer, with its Maglev table. */
export interface CompiledVip {
  id: number;
  /** Stable identity, e.g. "lb1 172.16.255.62:8000/tcp". */
  name: string;
  lb: string;
  /** The VIP as written in OVN syntax. */
  vip: string;
  addr: number;
  /** IPv6 VIPs: the address (16 bytes; `addr` is then 0). */
  addr6?: Buffer;
  port: number;
  /** IPPROTO number; 0 for an IP-only VIP. */
  proto: number;
  flags: number;
  /** HASH_FIELDS bits from selection_fields (0 = the 5-tuple). */
  hashFields: number;
  /** affinity_timeout in seconds (0 = none). */
  affinityTimeoutS: number;
  backends: CompiledBackend[];
  /** Slot 0 = M, slots 1..M = backend ids (all XLB_BACKEND_NONE when empty). Never mutated. */
  table: Uint32Array;
  /** What the table is built from (ids, names, weights, M): equal keys, equal tables. */
  tableKey: string;
}

/** One entry of the VIP map: a VIP as served in one scope. */
export interface CompiledVipEntry {
  addr: number;
  /** IPv6 VIPs: the address (16 bytes; `addr` is then 0). Goes to xlb_vip6. */
  addr6?: Buffer;
  port: number;
  proto: number;
  scope: number;
  vipId: number;
  flags: number;
  hashFields: number;
  affinityTimeoutS: number;
  /** With VIP_F_SNAT_ADDR: the source address (0 otherwise). */
  snatAddr: number;
  /** Hairpin source address (hairpin_snat_ip); 0 = the VIP. */
  hairpinAddr: number;
}

export interface Compiled {
  ids: Ids;
  ifaces: CompiledIface[];
  vips: CompiledVip[];
  entries: CompiledVipEntry[];
  /** ARP-answered VIP addresses per router scope. */
  neigh: CompiledNeigh[];
  /** xlb_snat4: router_ip addresses per backend, NAT rules per client network. */
  snat: Snat4Entry[];
  /** What an operator should know about this state (nothing is refused for it). */
  warnings: string[];
}

function vipName(lb: string, v: Omit<Vip, 'backends'>): string {
  return `${lb} ${v.key}/${v.protocol ?? 'ip'}`;
}

function backendText(v: Omit<Vip, 'backends'>, b: { addr: string; port: number }): string {
  if (!v.port) return b.addr;
  return v.family === 6 ? `[${b.addr}]:${b.port}` : `${b.addr}:${b.port}`;
}

/** A VIP as compile reads it: config.lbVipParser's Vip with each backend already its CompiledBackend
 *  (id and flags still 0: compileVip sets them). */
type ParsedVip = Omit<Vip, 'backends'> & { backends: CompiledBackend[] };

/**
 * config.lbVipParser(lb) for compile: the same VIPs, each backend parsed once
 * straight into its CompiledBackend, its text the backend as listed (which is
 * what backendText() formats back from a parsed one). IPv4 backends with a
 * port are read by tryParseIPv4Port; any other through parseHostPort, as before.
 */
function vipParser(lb: LoadBalancer): (key: string, list: string) => ParsedVip {
  const maglevSize = lbMaglevSize(lb);
  const weights = lbWeights(lb);
  return (key, list) => {
    const v: ParsedVip = vipOf<CompiledBackend>(lb, key, maglevSize);
    if (list.trim() === '') return v;
    const items = list.split(',');
    const fast = v.family === 4 && v.port !== 0;
    const backends = v.backends;
    for (let i = 0; i < items.length; i++) {
      const item = items[i]!.trim();
      const weight = weights.size === 0 ? 1 : (weights.get(item) ?? 1);
      const ap = fast ? tryParseIPv4Port(item) : -1;
      if (ap >= 0) {
        backends.push({ id: 0, addr: Math.floor(ap / 65536), port: ap % 65536, text: item, weight, flags: 0 });
        continue;
      }
      const b = parseHostPort(item);
      const cb: CompiledBackend = { id: 0, addr: v.family === 6 ? 0 : parseIPv4(b.addr), port: b.port, text: backendText(v, b), weight, flags: 0 };
      if (v.family === 6) cb.addr6 = parseIPv6(b.addr);
      backends.push(cb);
    }
    return v;
  };
}

/**
 * The identity of one backend of one VIP: `"<VIP name> <backend>"`, e.g.
 * `"lb1 172.16.255.62:8000/tcp 172.16.255.130:8000"`. The keys of Ids.backends
 * and of the `down` set compile() takes.
 */
export function backendKey(vipName: string, backend: string): string {
  return `${vipName} ${backend}`;
}

type Attachment = {
  owner: string;
  lbs: string[];
  ports: CompiledIface[];
  /** A router's IPv4 networks (every port's), for neighbor_responder=reachable; null for a switch. */
  networks: Array<{ addr: number; prefix: number }> | null;
  /** Its IPv6 networks. */
  networks6: Array<{ addr: Buffer; prefix: number }>;
  /** The router itself (source NAT), or the switch (attachment warnings). */
  router?: LogicalRouter;
  sw?: LogicalSwitch;
};

/** One switch or router as a scope: its load balancers and its ports. */
function attachment(
  owner: string,
  lbs: string[],
  ports: ReadonlyArray<Omit<CompiledIface, 'scope' | 'flags' | 'owner'> & { networks?: string[] }>,
  router: LogicalRouter | null,
  sw?: LogicalSwitch,
): Attachment {
  return {
    owner,
    lbs,
    router: router ?? undefined,
    sw,
    ports: ports.map((p) => ({
      interface: p.interface,
      netns: p.netns,
      ifname: p.ifname,
      hook: p.hook,
      scope: 0,
      flags: XLB.IFACE_F_BALANCE,
      owner,
      ...(p.mac ? { mac: p.mac } : {}),
    })),
    networks: router ? ports.flatMap((p) => (p.networks ?? []).filter((n) => !n.includes(':')).map((n) => parseIPv4Cidr(n))) : null,
    networks6: router ? ports.flatMap((p) => (p.networks ?? []).filter((n) => n.includes(':')).map((n) => parseIPv6Cidr(n))) : [],
  };
}

/** Load balancers attached somewhere, in config order, with their scopes. */
function attachments(d: DesiredState): Attachment[] {
  return [
    ...d.logical_switches.map((ls) => attachment(`switch ${ls.name}`, ls.load_balancer, ls.ports, null, ls)),
    ...d.logical_routers.map((lr) => attachment(`router ${lr.name}`, lr.load_balancer, lr.ports, lr)),
  ];
}


/**
 * Ids in use, as a growable bitmap (one byte per id) in chunks of CHUNK ids
 * shared between copies until one of them writes to it: an incremental
 * compile derives its set from the previous one by copying the chunk list
 * (10⁶ backend ids: ~250 chunks), and a change copies the chunks it touches.
 */
class IdSet {
  constructor(
    private chunks: Uint8Array[] = [],
    /** No id below this is free. */
    public low = 1,
    /** Ids in use per block of BLOCK ids: full blocks are skipped when looking for a free id. */
    private blocks: Uint16Array = new Uint16Array(0),
    /** Whether chunks[i] is this set's own (else shared: copied before a write). */
    private own: Uint8Array = new Uint8Array(chunks.length),
  ) {}
  static of(ids: Iterable<number>): IdSet {
    const s = new IdSet();
    for (const id of ids) s.add(id);
    return s;
  }
  clone(): IdSet {
    // Both now share every chunk: neither writes to one without copying it first.
    this.own.fill(0);
    return new IdSet(this.chunks.slice(), this.low, this.blocks.slice());
  }
  has(id: number): boolean {
    const c = this.chunks[id >> CHUNK_SHIFT];
    return c !== undefined && c[id & (CHUNK - 1)] === 1;
  }
  /** Whether every id of the block holding `id` is in use. */
  blockFull(id: number): boolean {
    return (id >> BLOCK_SHIFT) < this.blocks.length && this.blocks[id >> BLOCK_SHIFT] === BLOCK;
  }
  /** The chunk holding `id`, this set's own (copied or grown as needed). */
  private writable(id: number): Uint8Array {
    const i = id >> CHUNK_SHIFT;
    if (i >= this.chunks.length) {
      while (this.chunks.length <= i) this.chunks.push(new Uint8Array(CHUNK));
      const own = new Uint8Array(this.chunks.length);
      own.set(this.own);
      own.fill(1, this.own.length);
      this.own = own;
      const blocks = new Uint16Array(this.chunks.length * (CHUNK / BLOCK));
      blocks.set(this.blocks);
      this.blocks = blocks;
    }
    if (this.own[i] === 0) {
      this.chunks[i] = this.chunks[i]!.slice();
      this.own[i] = 1;
    }
    return this.chunks[i]!;
  }
  add(id: number): void {
    if (this.has(id)) return;
    this.writable(id)[id & (CHUNK - 1)] = 1;
    this.blocks[id >> BLOCK_SHIFT]!++;
  }
  remove(id: number): void {
    if (this.has(id)) {
      this.writable(id)[id & (CHUNK - 1)] = 0;
      this.blocks[id >> BLOCK_SHIFT]!--;
    }
    if (id < this.low) this.low = Math.max(1, id);
  }
}
/** Ids per chunk of IdSet's bitmap. */
const CHUNK_SHIFT = 12;
const CHUNK = 1 << CHUNK_SHIFT;
/** Ids per block of IdSet's count of ids in use. */
const BLOCK_SHIFT = 8;
const BLOCK = 1 << BLOCK_SHIFT;

/**
 * Hands out the lowest id ≥ 1 that is neither in use by the previous compile
 * (`used`, which already holds every kept id) nor reserved. An id freed in
 * this compile is not handed out again in the same compile: its old VIP entry
 * is removed only after the new tables are in, so reusing it at once would
 * send the old VIP's new flows to the new owner for a moment.
 */
class Allocator {
  private next: number;
  constructor(
    /** Previous ids plus the ones allocated here (freed ones are removed by the caller afterwards). */
    readonly used: IdSet,
    private readonly reserved: ReadonlySet<number>,
  ) {
    this.next = used.low;
  }
  /** Lowest reserved id skipped (free again once no longer reserved). */
  private skipped = Infinity;
  take(): number {
    for (;;) {
      // A block with every id in use has none to hand out (reserved ids are not in use).
      if ((this.next & (BLOCK - 1)) === 0 && this.used.blockFull(this.next)) {
        this.next += BLOCK;
        continue;
      }
      if (!this.used.has(this.next) && !this.reserved.has(this.next)) break;
      if (!this.used.has(this.next)) this.skipped = Math.min(this.skipped, this.next);
      this.next++;
    }
    const id = this.next;
    this.used.add(id);
    return id;
  }
  /** Lowest id that may be free once the caller has removed the freed ids. */
  get low(): number {
    return Math.min(this.next, this.skipped);
  }
}

/** The (small) scope ids: kept by owner name, new ones lowest-free. */
function scopeIds(owners: readonly string[], prev: Record<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  const alloc = new Allocator(IdSet.of(Object.values(prev)), new Set());
  for (const o of owners) if (prev[o] !== undefined) out[o] = prev[o];
  for (const o of owners) if (out[o] === undefined) out[o] = alloc.take();
  return out;
}

/**
 * Everything compile reads from a load balancer besides its `vips`: a VIP is
 * recompiled when its backend list, its down backends or this signature
 * changes. A field compile() starts to read must be added here.
 */
function lbSignature(lb: LoadBalancer): string {
  const o = lb.options;
  return `${lb.protocol}|${o.xlb_maglev_size ?? ''}|${o.affinity_timeout ?? ''}|${o.xlb_weights ?? ''}|${o.reject ?? ''}|${lb.selection_fields.join(',')}`;
}

/** What one VIP was compiled from, and the result (reused while the inputs are equal). */
interface VipMemo {
  /** Its key in the load balancer's `vips`. */
  key: string;
  lbSig: string;
  /** The VIP's backend list as validated. */
  list: string;
  /** Its down backends, sorted and joined. */
  downSig: string;
  cv: CompiledVip;
  /** Its VIP-map entries, one per scope, reused as objects while unchanged. */
  entries: CompiledVipEntry[];
}

/** The VIPs of one load balancer: in `vips` order, and their index there by key. */
interface LbMemo {
  /** The load balancer compiled (the same object next time: unchanged, when validateConfig's). */
  lb: LoadBalancer;
  byKey: Map<string, number>;
  order: VipMemo[];
  /** The compiled VIPs of `order`, in the same order. */
  cvs: readonly CompiledVip[];
  /** What it was compiled from: the validated `vips` object and its keys, the signature, the down backends. */
  vips: Record<string, string>;
  keys: readonly string[];
  lbSig: string;
  downSig: string;
  /** Its VipList (config.vipList), to recognise the next one derived from it. */
  list: VipList;
  /** Set when this memo is `from` with only the VIPs at `changed` (indexes) looked at again. */
  from?: LbMemo | undefined;
  changed?: readonly number[] | undefined;
}

/** The entries of one load balancer in one scope, and what they were built from. */
interface InScope {
  lbm: LbMemo;
  snFlags: number;
  snAddr: number;
  hairpin: number;
  entries: CompiledVipEntry[];
  ipOnly: boolean;
}

/** Kept with each Compiled (not enumerable): what the next compile may reuse. */
interface Memo {
  /** load balancer name → its VIPs. */
  byLb: Map<string, LbMemo>;
  vipIds: IdSet;
  backendIds: IdSet;
  /** The compile this one was derived from (its `reuse`), and the VIPs that differ from it. */
  base: Compiled | null;
  /** "<scope> <load balancer>" → its VIP-map entries in that scope and what they were built from. */
  inScope: Map<string, InScope>;
  fresh: CompiledVip[];
  stale: CompiledVip[];
  /** The served load balancers' compiled VIPs in order (joined, they are the compile's `vips`). */
  parts: ReadonlyArray<readonly CompiledVip[]>;
  /** The (scope, load balancer) records in the order their entries were joined into the compile's `entries`. */
  segments: readonly InScope[];
}

/** Counters of compile work (tests check that a small change costs little). */
export const compileCounters = { lbsWalked: 0, vipsCompiled: 0, entriesBuilt: 0 };

/**
 * The VIPs of `c` that are not in `prev` (fresh) and those of `prev` not in
 * `c` (stale), by identity — known without a walk when `c` was compiled
 * reusing `prev`; null otherwise.
 */
export function vipChanges(c: Compiled, prev: Compiled): { fresh: readonly CompiledVip[]; stale: readonly CompiledVip[] } | null {
  const m = (c as WithMemo)[MEMO];
  return m && m.base === prev ? { fresh: m.fresh, stale: m.stale } : null;
}

const MEMO = Symbol('xlb.compile.memo');
type WithMemo = Compiled & { [MEMO]?: Memo };

/** The memo of `c`, when `c` is the compile its ids came from. */
function memoOf(c: Compiled | null, prev: Ids): Memo | null {
  const m = (c as WithMemo | null)?.[MEMO];
  return m && c!.ids === prev ? m : null;
}

/** Ids derived from the compiled VIPs, built only when read (a big state has ~10⁶ backend keys). */
function derivedIds(scopes: Record<string, number>, vips: readonly CompiledVip[]): Ids {
  let vipIds: Record<string, number> | undefined;
  let backendIds: Record<string, number> | undefined;
  return {
    scopes,
    get vips(): Record<string, number> {
      if (!vipIds) {
        vipIds = {};
        for (const v of vips) vipIds[v.name] = v.id;
      }
      return vipIds;
    },
    get backends(): Record<string, number> {
      if (!backendIds) {
        backendIds = {};
        for (const v of vips) for (const b of v.backends) backendIds[backendKey(v.name, b.text)] = b.id;
      }
      return backendIds;
    },
  };
}

/** Whether the IPv6 addr lies in one of the networks (OVN's lrouter_port_ipv6_reachable). */
function reachable6(addr: Buffer, networks: ReadonlyArray<{ addr: Buffer; prefix: number }>): boolean {
  return networks.some((n) => {
    for (let bit = 0; bit < n.prefix; bit += 8) {
      const bits = Math.min(8, n.prefix - bit);
      const mask = (0xff << (8 - bits)) & 0xff;
      if ((addr[bit / 8]! & mask) !== (n.addr[bit / 8]! & mask)) return false;
    }
    return true;
  });
}

/** Whether addr lies in one of the networks (OVN's lrouter_port_ipv4_reachable over every port). */
function reachable(addr: number, networks: ReadonlyArray<{ addr: number; prefix: number }>): boolean {
  return networks.some((n) => {
    const mask = n.prefix === 0 ? 0 : (~0 << (32 - n.prefix)) >>> 0;
    return ((addr & mask) >>> 0) === ((n.addr & mask) >>> 0);
  });
}

/** What empty maps hold: the `prev` of a first apply to maps just created. */
export function emptyCompiled(): Compiled {
  return { ids: EMPTY_IDS, ifaces: [], vips: [], entries: [], neigh: [], snat: [], warnings: [] };
}

const NONE_DOWN: ReadonlySet<string> = new Set<string>();
/** Placeholder until the table is built (never returned). */
const EMPTY_TABLE = new Uint32Array(0);
const NONE_RESERVED: ReadonlySet<number> = new Set<number>();

/** Options of compile() beyond the desired state. */
export interface CompileOptions {
  /** Backend ids not to hand out (still referenced by the kernel until a grace period ends). */
  reservedBackendIds?: ReadonlySet<number>;
}

/** hairpinAddr() of load balancers validateConfig froze (their options cannot change). */
const hairpins = new WeakMap<LoadBalancer, number>();

/** hairpin_snat_ip's IPv4 address as a uint32 (0: none, the VIP is used). */
function hairpinAddr(lb: LoadBalancer): number {
  const known = hairpins.get(lb);
  if (known !== undefined) return known;
  const v4 = (lb.options.hairpin_snat_ip ?? '').split(' ').find((x) => isIPv4(x));
  const addr = v4 ? parseIPv4(v4) : 0;
  if (isValidatedLb(lb)) hairpins.set(lb, addr);
  return addr;
}

/**
 * OVN applies a switch's load balancers to traffic entering from the switch's
 * own ports. When every port of the switch is a backend of a load balancer,
 * only its backends can reach it (the seed's lesson: lb1 on "dmz" does not
 * serve vm3 on "inside"). A port's addresses come from its `addresses` (OVN
 * Logical_Switch_Port) or from a load balancer's ip_port_mappings; a switch
 * with a port of unknown address gets no warning.
 */
function onlyBackendsWarnings(
  sw: LogicalSwitch,
  lbs: readonly LoadBalancer[],
  mapped: ReadonlyMap<string, string[]>,
  backendAddrs: (lb: LoadBalancer) => ReadonlySet<string>,
): string[] {
  const byIface = new Map<string, Set<string>>();
  for (const p of sw.ports) {
    byIface.set(p.interface, new Set([...(p.addresses ?? []).flatMap((a) => a.split(' ').filter(isIPv4)), ...(mapped.get(p.interface) ?? [])]));
  }
  if (sw.ports.length === 0 || [...byIface.values()].some((s) => s.size === 0)) return [];
  const out: string[] = [];
  for (const lb of lbs) {
    const backends = backendAddrs(lb);
    if (backends.size === 0) continue;
    if (![...byIface.values()].every((addrs) => [...addrs].some((a) => backends.has(a)))) continue;
    out.push(
      `switch ${sw.name}: load balancer ${lb.name} can be reached only by its own backends (every port of the switch — ` +
        `${sw.ports.map((p) => p.interface).join(', ')} — is one of them): OVN applies a switch's load balancers to traffic ` +
        `entering from the switch's own ports; attach it to the clients' switch or to a router`,
    );
  }
  return out;
}

/** A compiled backend's address as written in the config (its text without the port). */
function backendAddrText(cv: CompiledVip, b: CompiledBackend): string {
  if (!cv.port) return b.text;
  return cv.addr6 !== undefined ? b.text.slice(1, b.text.lastIndexOf(']')) : b.text.slice(0, b.text.lastIndexOf(':'));
}

/** The router port whose network holds addr (OVN's connected route), else null. */
function portToward(lr: LogicalRouter, addr: number): { name: string; ip: number } | null {
  for (const p of lr.ports) {
    for (const n of p.networks) {
      if (n.includes(':')) continue; // IPv6 networks (neighbor_responder) play no part in IPv4 source NAT
      const c = parseIPv4Cidr(n);
      const mask = c.prefix === 0 ? 0 : (0xffffffff << (32 - c.prefix)) >>> 0;
      if (((addr & mask) >>> 0) === ((c.addr & mask) >>> 0)) return { name: p.name, ip: parseIPv4(n.slice(0, n.indexOf('/'))) };
    }
  }
  return null;
}

/** What source a router gives a load balancer's balanced flows, for people (`xlb show`). */
export function describeRouterSnat(lr: LogicalRouter, lb: LoadBalancer): string {
  if (lb.options.skip_snat === 'true') {
    return lr.options.lb_force_snat_ip !== undefined || lr.nat.some((n) => n.type !== 'dnat') ? 'none (skip_snat)' : 'none';
  }
  const force = lr.options.lb_force_snat_ip;
  if (force === 'router_ip') return 'the router port toward the backend (lb_force_snat_ip=router_ip)';
  if (force !== undefined) return `${force} (lb_force_snat_ip)`;
  const rules = lr.nat.filter((n) => n.type !== 'dnat');
  if (rules.length) return `by NAT rule: ${rules.map((n) => `${n.logical_ip} -> ${n.external_ip}`).join(', ')}; others keep the client`;
  return 'none';
}

/**
 * Source NAT of a router's load balancers, as OVN applies it: skip_snat on the
 * load balancer exempts it; else lb_force_snat_ip (an address, or router_ip:
 * the router port toward the backend); else the router's snat rules (source
 * network → external_ip) by the client's address. VIP flags and the source.
 */
function routerSnat(lr: LogicalRouter, lb: LoadBalancer): { flags: number; addr: number } {
  if (lb.options.skip_snat === 'true') return { flags: 0, addr: 0 };
  const force = lr.options.lb_force_snat_ip;
  if (force === 'router_ip') return { flags: XLB.VIP_F_SNAT_BACKEND, addr: 0 };
  if (force !== undefined) return { flags: XLB.VIP_F_SNAT_ADDR, addr: parseIPv4(force) };
  if (lr.nat.some((n) => n.type !== 'dnat')) return { flags: XLB.VIP_F_SNAT_CLIENT, addr: 0 };
  return { flags: 0, addr: 0 };
}

/** Counted here: the VIP-map entry of one VIP in one scope, `vm`'s own kept as the same object while its content is unchanged. */
function scopeEntry(vm: VipMemo, scope: number, sn: { flags: number; addr: number }, hairpin: number): CompiledVipEntry {
  compileCounters.entriesBuilt++;
  const v = vm.cv;
  // Source NAT and hairpin are IPv4 only: IPv6 VIPs carry neither.
  const v4 = v.addr6 === undefined;
  const flags = v.flags | (v4 ? sn.flags : 0);
  const snatAddr = v4 ? sn.addr : 0;
  const hairpinAt = v4 ? hairpin : 0;
  let at = -1;
  for (let j = 0; j < vm.entries.length; j++) if (vm.entries[j]!.scope === scope) at = j;
  let e: CompiledVipEntry | undefined = at >= 0 ? vm.entries[at] : undefined;
  // A kept entry is reused as the same object unless the scope's source NAT changed
  // (router options and NAT rules are not part of the load balancer's memo).
  if (!e || e.flags !== flags || e.snatAddr !== snatAddr || e.hairpinAddr !== hairpinAt) {
    e = {
      ...(v.addr6 ? { addr6: v.addr6 } : {}),
      addr: v.addr,
      port: v.port,
      proto: v.proto,
      scope,
      vipId: v.id,
      flags,
      hashFields: v.hashFields,
      affinityTimeoutS: v.affinityTimeoutS,
      snatAddr,
      hairpinAddr: hairpinAt,
    };
    if (at >= 0) vm.entries[at] = e;
    else vm.entries.push(e);
  }
  return e;
}

/**
 * The compile's `vips`: its parts joined. When the parts are the memo's (in
 * the same order) but for some VIPs of some of them, the previous compile's
 * array copied with those VIPs put in (no walk over every part), or that very
 * array when nothing differs.
 */
function joinVips(
  parts: ReadonlyArray<readonly CompiledVip[]>,
  patches: ReadonlyMap<number, { base: readonly CompiledVip[]; changed: readonly number[] }>,
  memo: Memo | null,
  reuse: Compiled | null,
): CompiledVip[] {
  if (memo && reuse && memo.parts.length === parts.length) {
    let same = true;
    for (let i = 0; same && i < parts.length; i++) {
      const was = memo.parts[i]!;
      if (parts[i] === was) continue;
      const p = patches.get(i);
      same = p !== undefined && p.base === was && parts[i]!.length === was.length;
    }
    if (same) {
      if (patches.size === 0) return reuse.vips;
      const out = reuse.vips.slice();
      let at = 0;
      for (let i = 0; i < parts.length; i++) {
        const p = patches.get(i);
        if (p) for (const k of p.changed) out[at + k] = parts[i]![k]!;
        at += parts[i]!.length;
      }
      return out;
    }
  }
  return parts.length === 1 ? parts[0]!.slice() : ([] as CompiledVip[]).concat(...parts);
}

/**
 * Compiles a validated desired state into the contents of every map. `prev`
 * are the ids of the previous apply (kept for unchanged identities).
 *
 * `down` (optional) holds backend keys (backendKey(): "<VIP name> <backend>")
 * that health checks found down. Such a backend keeps its id and its backends
 * map entry — connections already on it stay pinned by conntrack, and it gets
 * the same id back when it recovers — but is left out of its VIP's Maglev
 * table. The table is built from the names of the backends that are up, so it
 * is exactly the table those backends would have without the others (Maglev's
 * minimal disruption: the slots of healthy backends barely move), and a
 * recovered backend restores the original table bit for bit. When every
 * backend of a VIP is down the table is empty and new flows are dropped.
 *
 * `reuse` (optional) is an earlier result. When its ids are `prev` (the
 * previous apply's own compile), every VIP whose inputs are unchanged is taken
 * from it as it is — the same CompiledVip object, ids, table and VIP-map
 * entries — so the work is proportional to what changed; the writer then
 * recognises unchanged VIPs by identity. Otherwise only its tables are reused
 * where their inputs are equal. The result is the same either way.
 */
export function compile(
  desired: DesiredState,
  prev: Ids = EMPTY_IDS,
  down: ReadonlySet<string> = NONE_DOWN,
  reuse: Compiled | null = null,
  opts: CompileOptions = {},
): Compiled {
  const memo = memoOf(reuse, prev);
  // Tables of an earlier compile whose inputs are unchanged are taken as they
  // are (Maglev population is the costly part of compiling many VIPs).
  let earlier: Map<string, Uint32Array> | null = null;
  const earlierTable = (key: string, was: CompiledVip | null): Uint32Array | undefined => {
    if (was?.tableKey === key) return was.table;
    // (With a memo, a VIP's earlier table is its own: no index of every table is built.)
    if (!reuse || memo) return undefined;
    if (!earlier) {
      earlier = new Map();
      for (const v of reuse.vips) earlier.set(v.tableKey, v.table);
    }
    return earlier.get(key);
  };
  const att = attachments(desired);
  const lbByName = new Map<string, LoadBalancer>(desired.load_balancers.map((lb) => [lb.name, lb]));

  // Only load balancers attached to at least one switch/router with ports are served.
  const served: LoadBalancer[] = [];
  const seen = new Set<string>();
  for (const a of att) {
    if (a.ports.length === 0) continue;
    for (const name of a.lbs) {
      const lb = lbByName.get(name);
      if (lb && !seen.has(name)) {
        seen.add(name);
        served.push(lb);
      }
    }
  }

  // Down backends grouped by VIP name (the key is "<VIP name> <backend>").
  const downByVip = new Map<string, string[]>();
  for (const key of down) {
    const sp = key.lastIndexOf(' ');
    const name = key.slice(0, sp);
    const list = downByVip.get(name);
    if (list) list.push(key.slice(sp + 1));
    else downByVip.set(name, [key.slice(sp + 1)]);
  }
  const downSigOf = (name: string): string => (downByVip.size === 0 ? '' : (downByVip.get(name)?.sort().join(',') ?? ''));
  // And by load balancer (a VIP name is "<LB> <key>/<proto>", the key has no space).
  const downByLb = new Map<string, string[]>();
  for (const key of down) {
    const name = key.slice(0, key.lastIndexOf(' '));
    const lbName = name.slice(0, name.lastIndexOf(' '));
    const list = downByLb.get(lbName);
    if (list) list.push(key);
    else downByLb.set(lbName, [key]);
  }
  const lbDownSig = (lbName: string): string => (downByLb.size === 0 ? '' : (downByLb.get(lbName)?.sort().join('\n') ?? ''));

  const reserved = opts.reservedBackendIds ?? NONE_RESERVED;
  // The previous apply's ids, where no memo carries them (none to look up when there are none).
  const prevIds: Ids | null = memo === null && Object.keys(prev.vips).length > 0 ? prev : null;
  const vipAlloc = new Allocator(memo ? memo.vipIds.clone() : IdSet.of(Object.values(prev.vips)), NONE_RESERVED);
  const backendAlloc = new Allocator(memo ? memo.backendIds.clone() : IdSet.of(Object.values(prev.backends)), reserved);
  /** Ids the previous compile used that this one does not (freed once allocation is over). */
  const freedVips: number[] = [];
  const freedBackends: number[] = [];

  /** Each served load balancer's compiled VIPs (its memo's array): joined once at the end, by reference. */
  const vipParts: Array<readonly CompiledVip[]> = [];
  /** Parts that are a memo part with only the VIPs at `changed` (indexes) other, by their index in vipParts. */
  const partPatches = new Map<number, { base: readonly CompiledVip[]; changed: readonly number[] }>();
  /** VIPs whose table is to be built (on two threads when many, starting while the others compile). */
  const pending: Array<{ cv: CompiledVip; at: number }> = [];
  const tables = new TableBuilder();
  const byLb = new Map<string, LbMemo>();
  /** VIPs that differ from the memo's compile: new ones, and the ones they replace or that are gone. */
  const fresh: CompiledVip[] = [];
  const stale: CompiledVip[] = [];
  for (const lb of served) {
    const old = memo?.byLb.get(lb.name);
    // The very load balancer compiled last time (validateConfig hands back the same frozen object
    // for an unchanged one) with the same down backends: nothing of it to look at, not even its options.
    if (old !== undefined && old.lb === lb && isValidatedLb(lb) && old.downSig === lbDownSig(lb.name)) {
      vipParts.push(old.cvs);
      byLb.set(lb.name, old);
      continue;
    }
    const lbSig = lbSignature(lb);
    const downSig = lbDownSig(lb.name);
    if (old && old.vips === lb.vips && Object.isFrozen(lb.vips) && old.lbSig === lbSig && old.downSig === downSig) {
      // The same validated VIPs (validateConfig hands back the same object
      // for an unchanged load balancer): nothing of it to look at.
      vipParts.push(old.cvs);
      // (an equal load balancer, another object: the memo stands for it from now on)
      old.lb = lb;
      byLb.set(lb.name, old);
      continue;
    }
    compileCounters.lbsWalked++;
    const order: VipMemo[] = [];
    const cvs: CompiledVip[] = [];
    const list = vipList(lb.vips);
    const { keys, lists } = list;
    // Key → index: the previous one while the keys are the same (validateConfig keeps their array).
    const byKey = old && old.keys === keys ? old.byKey : new Map<string, number>();
    const newIndex = byKey.size === 0 && keys.length > 0;
    const parsed: { parse: ((key: string, list: string) => ParsedVip) | null } = { parse: null };
    // Every VIP of `old` has its signature and down backends (a VIP is kept only while they are unchanged).
    const oldOrder = old && old.lbSig === lbSig && old.downSig === downSig ? old.order : null;
    if (oldOrder && old && list.from === old.list && list.changed) {
      // Validation saw these VIPs as old's with only some backend lists changed (same keys, same
      // order): the others are old's memos as they are, and only the changed ones are looked at.
      const derived = oldOrder.slice();
      for (const k of list.changed) derived[k] = place(lb, lbSig, old, parsed, keys[k]!, lists[k]!, oldOrder[k]);
      // (an array of the VIPs copied, not a walk over 10⁴ memos scattered in memory)
      const cvs = old.cvs.slice();
      for (const k of list.changed) cvs[k] = derived[k]!.cv;
      partPatches.set(vipParts.length, { base: old.cvs, changed: list.changed });
      vipParts.push(cvs);
      // (the memo it derives from is needed no more: no chain of earlier memos kept alive)
      old.from = old.changed = undefined;
      byLb.set(lb.name, { lb, byKey: old.byKey, order: derived, cvs, vips: lb.vips, keys, lbSig, downSig, list, from: old, changed: list.changed });
      continue;
    }
    // The same keys as old's: the indexes of the VIPs that are not old's (as validation would tell).
    const walked: number[] | null = oldOrder && old && old.keys === keys ? [] : null;
    for (let k = 0; k < keys.length; k++) {
      const key = keys[k]!;
      const list = lists[k]!;
      if (newIndex) byKey.set(key, k);
      // Mostly at the same place as before.
      let was = oldOrder?.[k];
      if (was !== undefined && was.key === key && was.list === list) {
        order.push(was);
        cvs.push(was.cv);
        continue;
      }
      if (old && was?.key !== key) {
        const i = old.byKey.get(key);
        was = i === undefined ? undefined : old.order[i];
      }
      const vm = place(lb, lbSig, old, parsed, key, list, was);
      if (walked && vm !== oldOrder![k]) walked.push(k);
      order.push(vm);
      cvs.push(vm.cv);
    }
    // VIPs of the previous compile that are gone free their ids.
    if (old && old.keys !== keys) {
      for (const was of old.order) {
        if (byKey.has(was.key)) continue;
        stale.push(was.cv);
        freedVips.push(was.cv.id);
        for (const b of was.cv.backends) freedBackends.push(b.id);
      }
    }
    if (walked && old) {
      old.from = old.changed = undefined;
      partPatches.set(vipParts.length, { base: old.cvs, changed: walked });
    }
    vipParts.push(cvs);
    byLb.set(lb.name, { lb, byKey, order, cvs, vips: lb.vips, keys, lbSig, downSig, list, ...(walked && old ? { from: old, changed: walked } : {}) });
  }
  /** The memo of VIP `key` (its validated backend `list`) of load balancer `lb`: `was` kept, or compiled. */
  function place(
    lb: LoadBalancer,
    lbSig: string,
    old: LbMemo | undefined,
    parsed: { parse: ((key: string, list: string) => ParsedVip) | null },
    key: string,
    list: string,
    was: VipMemo | undefined,
  ): VipMemo {
    if (was && was.list === list && was.lbSig === lbSig && was.downSig === downSigOf(was.cv.name)) return was;
    compileCounters.vipsCompiled++;
    // Recompiled: parse this VIP only, as it is reached (a load balancer new here is not parsed
    // all at once first: its first tables go to the other thread without waiting for that).
    const v = (parsed.parse ??= vipParser(lb))(key, list);
    const name = vipName(lb.name, v);
    const cv = compileVip(lb, v, name, was?.cv ?? null, prevIds, vipAlloc, backendAlloc, down, earlierTable, pending, tables);
    fresh.push(cv);
    if (was) {
      stale.push(was.cv);
      const still = new Set(cv.backends.map((b) => b.id));
      for (const b of was.cv.backends) if (!still.has(b.id)) freedBackends.push(b.id);
      if (was.cv.id !== cv.id) freedVips.push(was.cv.id);
    }
    // Its VIP-map entries stay the same objects when their content is unchanged.
    const entries = (was?.entries ?? []).filter(
      (e) =>
        e.vipId === cv.id &&
        e.addr === cv.addr &&
        (e.addr6 === undefined ? cv.addr6 === undefined : cv.addr6 !== undefined && e.addr6.equals(cv.addr6)) &&
        e.port === cv.port &&
        e.proto === cv.proto &&
        e.flags === cv.flags &&
        e.hashFields === cv.hashFields &&
        e.affinityTimeoutS === cv.affinityTimeoutS,
    );
    return { key, lbSig, list, downSig: downSigOf(name), cv, entries };
  }
  const vips = joinVips(vipParts, partPatches, memo, reuse);
  const built = tables.finish();
  for (const p of pending) {
    p.cv.table = built[p.at]!;
    noteMaglevIds(p.cv.table, p.cv.backends.length); // (its slots hold ids of these backends only)
  }
  // So do those of load balancers no longer served.
  if (memo) {
    for (const [lbName, old] of memo.byLb) {
      if (byLb.has(lbName)) continue;
      for (const was of old.order) {
        stale.push(was.cv);
        freedVips.push(was.cv.id);
        for (const b of was.cv.backends) freedBackends.push(b.id);
      }
    }
  }

  const scopes = scopeIds(
    att.map((a) => a.owner),
    prev.scopes,
  );
  const ifaces: CompiledIface[] = [];
  /** Each (scope, load balancer)'s entries in order, and its record: joined at the end (see joinEntries). */
  const segments: InScope[] = [];
  /** Whether every segment has the memo's entries, in the memo's order (so far). */
  let sameEntries = memo !== null;
  const neigh: CompiledNeigh[] = [];
  const snat: Snat4Entry[] = [];
  const warnings: string[] = [];
  const inScopeOut = new Map<string, InScope>();
  // Interfaces whose addresses ip_port_mappings tell (backend IP -> "NETNS/IFNAME:SOURCE").
  const mappedIps = new Map<string, string[]>();
  for (const lb of desired.load_balancers) {
    if (lb.ip_port_mappings === undefined) continue;
    for (const [ip, where] of Object.entries(lb.ip_port_mappings)) {
      const iface = where.slice(0, where.lastIndexOf(':'));
      mappedIps.set(iface, [...(mappedIps.get(iface) ?? []), ip]);
    }
  }
  // Backend addresses per load balancer, from the compiled VIPs (for onlyBackendsWarnings; built when first asked).
  let backendAddrsByLb: Map<string, Set<string>> | null = null;
  const backendAddrs = (lb: LoadBalancer): ReadonlySet<string> => {
    if (!backendAddrsByLb) {
      backendAddrsByLb = new Map();
      for (const cv of vips) {
        let set = backendAddrsByLb.get(cv.lb);
        if (!set) backendAddrsByLb.set(cv.lb, (set = new Set()));
        for (const b of cv.backends) set.add(backendAddrText(cv, b));
      }
    }
    return backendAddrsByLb.get(lb.name) ?? new Set();
  };
  for (const a of att) {
    const scope = scopes[a.owner]!;
    // Only ports of switches/routers with load balancers are served (attached to).
    if (a.ports.length === 0 || a.lbs.length === 0) continue;
    let ipOnly = false;
    const snatKeys = new Set<string>();
    const addSnat = (e: Snat4Entry): void => {
      const k = `${e.kind} ${e.addr}/${e.prefixLen}`;
      if (snatKeys.has(k)) return;
      snatKeys.add(k);
      snat.push(e);
    };
    for (const lbName of a.lbs) {
      const lb = lbByName.get(lbName);
      const sn = a.router && lb ? routerSnat(a.router, lb) : { flags: 0, addr: 0 };
      const hairpin = lb ? hairpinAddr(lb) : 0;
      // A load balancer whose VIPs are the previous compile's (the same memo) in a scope whose
      // source NAT is unchanged has the same entries there: taken as they are, VIP by VIP unseen.
      const lbm = byLb.get(lbName);
      const inScope = `${scope} ${lbName}`;
      const kept = memo?.inScope.get(inScope);
      const sameNat = kept !== undefined && kept.snFlags === sn.flags && kept.snAddr === sn.addr && kept.hairpin === hairpin && !(sn.flags & XLB.VIP_F_SNAT_BACKEND && a.router);
      const at = segments.length;
      if (kept && sameNat && lbm !== undefined && lbm.from === kept.lbm && lbm.changed) {
        // The load balancer changed in some VIPs only (see above): its entries here are the kept
        // ones with those VIPs' entries built again (one entry per VIP, in the same order).
        const mine = kept.entries.slice();
        let same = sameEntries && memo!.segments[at] === kept;
        for (const k of lbm.changed) {
          mine[k] = scopeEntry(lbm.order[k]!, scope, sn, hairpin);
          if (mine[k] !== kept.entries[k]) same = false;
        }
        sameEntries = same;
        if (kept.ipOnly) ipOnly = true;
        const rec = { lbm, snFlags: sn.flags, snAddr: sn.addr, hairpin, entries: same ? kept.entries : mine, ipOnly: kept.ipOnly };
        inScopeOut.set(inScope, rec);
        segments.push(rec);
      } else if (
        kept &&
        lbm === kept.lbm &&
        kept.snFlags === sn.flags &&
        kept.snAddr === sn.addr &&
        kept.hairpin === hairpin &&
        !(sn.flags & XLB.VIP_F_SNAT_BACKEND && a.router)
      ) {
        if (sameEntries && memo!.segments[at] !== kept) sameEntries = false;
        if (kept.ipOnly) ipOnly = true;
        inScopeOut.set(inScope, kept);
        segments.push(kept);
      } else {
        sameEntries = false;
        const mine: CompiledVipEntry[] = [];
        let lbIpOnly = false;
        for (const vm of lbm?.order ?? []) {
          const v = vm.cv;
          const v4 = v.addr6 === undefined;
          mine.push(scopeEntry(vm, scope, sn, hairpin));
          if (v.flags & XLB.VIP_F_IP_ONLY) ipOnly = lbIpOnly = true;
          if (v4 && sn.flags & XLB.VIP_F_SNAT_BACKEND && a.router) {
            // The fallback: the first port with an IPv4 network (networks may be IPv6 too).
            const first = a.router.ports.find((rp) => rp.networks.some((n) => !n.includes(':')));
            const net4 = first?.networks.find((n) => !n.includes(':'));
            for (const b of v.backends) {
              const port = portToward(a.router, b.addr) ?? null;
              if (!port && first) {
                warnings.push(
                  `router ${a.router.name}: backend ${b.text} of ${v.name} is in none of its ports' networks; lb_force_snat_ip=router_ip uses port ${first.name}'s address`,
                );
              }
              const ip = port ? port.ip : net4 ? parseIPv4(net4.slice(0, net4.indexOf('/'))) : null;
              if (ip !== null) addSnat({ scope, kind: XLB.SNAT_K_BACKEND, addr: b.addr, prefixLen: 32, snat: ip });
              else warnings.push(`router ${a.router.name}: no IPv4 network on any port; lb_force_snat_ip=router_ip has no address for backend ${b.text}`);
            }
          }
        }
        if (lbm) {
          const rec = { lbm, snFlags: sn.flags, snAddr: sn.addr, hairpin, entries: mine, ipOnly: lbIpOnly };
          inScopeOut.set(inScope, rec);
          segments.push(rec);
        }
      }
      if (sn.flags & XLB.VIP_F_SNAT_CLIENT && a.router) {
        for (const n of a.router.nat) {
          if (n.type === 'dnat') continue;
          const c = n.logical_ip.includes('/') ? parseIPv4Cidr(n.logical_ip) : { addr: parseIPv4(n.logical_ip), prefix: 32 };
          const mask = c.prefix === 0 ? 0 : (0xffffffff << (32 - c.prefix)) >>> 0;
          addSnat({ scope, kind: XLB.SNAT_K_CLIENT, addr: (c.addr & mask) >>> 0, prefixLen: c.prefix, snat: parseIPv4(n.external_ip) });
        }
      }
    }
    if (a.sw) {
      const mine = a.lbs.map((n) => lbByName.get(n)).filter((l): l is LoadBalancer => l !== undefined);
      warnings.push(...onlyBackendsWarnings(a.sw, mine, mappedIps, backendAddrs));
    }
    // OVN's neighbor_responder (default reachable): a router answers ARP on its
    // ports for its load balancers' VIPs (all), or for those inside one of its
    // networks (reachable), or for none.
    const answered = new Set<number>();
    const answered6 = new Map<string, Buffer>();
    if (a.networks) {
      for (const lbName of a.lbs) {
        const mode = lbByName.get(lbName)?.options.neighbor_responder ?? 'reachable';
        if (mode === 'none') continue;
        for (const { cv: v } of byLb.get(lbName)?.order ?? []) {
          if (v.addr6) {
            if (mode === 'all' || reachable6(v.addr6, a.networks6)) answered6.set(v.addr6.toString('hex'), v.addr6);
          } else if (mode === 'all' || reachable(v.addr, a.networks)) answered.add(v.addr);
        }
      }
      for (const addr of answered) neigh.push({ addr, scope, owner: a.owner });
      for (const addr6 of answered6.values()) neigh.push({ addr: 0, addr6, scope, owner: a.owner });
    }
    // The data plane tries the IP-only lookup only where the scope has such VIPs.
    const flags =
      (ipOnly ? XLB.IFACE_F_BALANCE | XLB.IFACE_F_IP_ONLY : XLB.IFACE_F_BALANCE) | (answered.size || answered6.size ? XLB.IFACE_F_NEIGH : 0);
    for (const p of a.ports) ifaces.push({ ...p, scope, flags });
  }

  // The ids this compile uses: the previous set with the new ones, less the freed ones.
  let vipIds: IdSet;
  let backendIds: IdSet;
  if (memo) {
    vipIds = vipAlloc.used;
    backendIds = backendAlloc.used;
    vipIds.low = vipAlloc.low;
    backendIds.low = backendAlloc.low;
    for (const id of freedVips) vipIds.remove(id);
    for (const id of freedBackends) backendIds.remove(id);
  } else {
    vipIds = IdSet.of(vips.map((v) => v.id));
    // (added VIP by VIP: no array of every backend id, 10⁶ at 10⁴ VIPs, is made first)
    backendIds = new IdSet();
    for (const v of vips) for (let i = 0; i < v.backends.length; i++) backendIds.add(v.backends[i]!.id);
  }

  // Every segment the memo's, in its order: the previous compile's very array (the writer sees it unchanged at a glance).
  let entries: CompiledVipEntry[];
  if (sameEntries && reuse && segments.length === memo!.segments.length) entries = reuse.entries;
  else {
    entries = [];
    for (const seg of segments) for (let k = 0; k < seg.entries.length; k++) entries.push(seg.entries[k]!);
  }
  const out: WithMemo = { ids: derivedIds(scopes, vips), ifaces, vips, entries, neigh, snat, warnings };
  const memoOut: Memo = { byLb, vipIds, backendIds, base: memo ? reuse : null, fresh, stale, inScope: inScopeOut, parts: vipParts, segments };
  Object.defineProperty(out, MEMO, { value: memoOut, enumerable: false });
  return out;
}

/**
 * Compiles one VIP. Ids come from `was` (the same VIP in the previous compile)
 * or from `prevIds` (the previous apply's ids, when no compile is at hand),
 * else are allocated.
 */
function compileVip(
  lb: LoadBalancer,
  v: ParsedVip,
  name: string,
  was: CompiledVip | null,
  prevIds: Ids | null,
  vipAlloc: Allocator,
  backendAlloc: Allocator,
  down: ReadonlySet<string>,
  earlierTable: (key: string, was: CompiledVip | null) => Uint32Array | undefined,
  pending: Array<{ cv: CompiledVip; at: number }>,
  tables: TableBuilder,
): CompiledVip {
  const wasBackend = was ? new Map(was.backends.map((b) => [b.text, b.id])) : null;
  const id = was?.id ?? prevIds?.vips[name] ?? vipAlloc.take();
  // (the parser's objects: their ids and flags are set here)
  const backends = v.backends;
  // Backend keys are looked up only where there is something to find (10⁶ strings at 10⁴ VIPs).
  const prevBackends = prevIds ? prevIds.backends : null;
  const keyed = down.size > 0 || prevBackends !== null;
  // Kept backends keep their ids; ids are handed out after all kept ones are known.
  for (let i = 0; i < backends.length; i++) {
    const b = backends[i]!;
    const key = keyed ? backendKey(name, b.text) : '';
    b.id = wasBackend?.get(b.text) ?? (prevBackends ? prevBackends[key] : undefined) ?? 0;
    const isDown = keyed && down.has(key);
    if (isDown) b.down = true;
    b.flags = isDown || b.weight === 0 ? XLB.BACKEND_F_DRAIN : 0;
  }
  for (let i = 0; i < backends.length; i++) if (!backends[i]!.id) backends[i]!.id = backendAlloc.take();
  const up = backends.filter((b) => !b.down && b.weight > 0);
  const affinity = Number(lb.options.affinity_timeout ?? '0');
  const reject = lb.options.reject === 'true' ? XLB.VIP_F_REJECT : 0;
  // "M|id/weight/text|…" (a backend text has no "|"): equal keys, equal tables.
  const parts = new Array<string>(up.length + 1);
  parts[0] = String(v.maglevSize);
  for (let i = 0; i < up.length; i++) parts[i + 1] = `${up[i]!.id}/${up[i]!.weight}/${up[i]!.text}`;
  const tableKey = parts.join('|');
  const cv: CompiledVip = {
    id,
    name,
    lb: lb.name,
    vip: v.key,
    addr: v.family === 6 ? 0 : parseIPv4(v.addr),
    port: v.port,
    proto: v.protocol ? IPPROTO[v.protocol] : 0,
    flags: (v.protocol ? 0 : XLB.VIP_F_IP_ONLY) | (affinity > 0 ? XLB.VIP_F_AFFINITY : 0) | reject,
    hashFields: lb.selection_fields.reduce((m, f) => m | HASH_FIELDS[f as keyof typeof HASH_FIELDS], 0),
    affinityTimeoutS: affinity,
    backends,
    tableKey,
    table: EMPTY_TABLE,
  };
  const earlier = earlierTable(tableKey, was);
  if (earlier) cv.table = earlier;
  else pending.push({ cv, at: tables.add({ ids: up.map((b) => b.id), names: up.map((b) => b.text), weights: up.map((b) => b.weight), m: v.maglevSize }) });
  if (v.family === 6) cv.addr6 = parseIPv6(v.addr);
  return cv;
}
