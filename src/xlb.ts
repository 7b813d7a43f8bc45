/**
 * The public library API: apply a desired state, show what is served, reset.
 * The CLI is a thin user of this class.
 */
import { existsSync, readdirSync, readFileSync, rmdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { compile, describeRouterSnat, EMPTY_IDS, emptyCompiled, vipChanges, type Compiled, type CompiledNeigh, type CompiledVip } from './compile.js';
import { parseConfigText, validateConfig, type DesiredState } from './config.js';
import {
  attach,
  chooseHook,
  Dataplane,
  DEFAULT_PIN_ROOT,
  detach,
  type Attachment,
  type DataplaneOptions,
  type HookChoice,
} from './dataplane.js';
import { ApplyError } from './errors.js';
import { formatIPv4, formatIPv6 } from './addr.js';
import { decodeCt4Key, decodeCt4Val, HASH_FIELDS, XLB, type GlobalCounter, type Stats } from './layout.js';
import { decodeCt6Key, decodeCt6Val } from './layout.js';
import { applyCompiled, type ApplySummary, type Deferred } from './writer.js';
import { configAddrs, flowAddrs, flowAddrs6 } from './addrfilter.js';
import { DEFAULT_CT_TIMEOUTS, flushConntrack, gcConntrack, type ConntrackTimeouts, type GcResult } from './conntrack.js';
import { flushConntrack6, gcConntrack6 } from './conntrack.js';
import { desiredDelta, JOURNAL_FILE, loadState, recordBackends, StateFile, STATE_FILE, STATE_VERSION, type State } from './state-file.js';

export const DEFAULT_STATE_DIR = '/run/xlb';

export interface XlbOptions extends DataplaneOptions {
  /** Where xlb keeps its bookkeeping (names, ids, attachments); default /run/xlb. */
  stateDir?: string;
}

/** An attached interface, with the switch/router it belongs to. */
export interface ServedIface extends Attachment {
  owner: string;
  scope: number;
}

/** A VIP as remembered between runs (names and ids, no tables). */
export interface VipRecord {
  id: number;
  name: string;
  lb: string;
  vip: string;
  protocol: string;
  maglevSize: number;
  /** OVN selection_fields the hash covers (empty: the 5-tuple). */
  selectionFields: string[];
  /** affinity_timeout in seconds (0: none). */
  affinityTimeoutS: number;
  /** reject=true: with no usable backend, TCP gets a RST and the rest ICMP port unreachable (else dropped). */
  reject: boolean;
  /** Routers that answer ARP / neighbour solicitations for this VIP on their ports (neighbor_responder). */
  arpOn: string[];
  backends: Array<{ id: number; text: string; weight: number; drained: boolean }>;
}


export interface ApplyReport {
  /** What an operator should know about the applied state (see README, "Attachment"). */
  warnings: string[];
  summary: ApplySummary;
  /** Interfaces served after the apply, with the hook picked for each and why. */
  ifaces: ServedIface[];
  /** Interfaces xlb no longer serves. */
  detached: string[];
  /** Conntrack entries removed by ct_flush. */
  flushed: number;
  /** True when nothing in the kernel had to change. */
  unchanged: boolean;
  /** Where the apply's time went (ms): validation, compile (Maglev tables included), resolving
   *  interfaces and writing the maps, attaching/detaching, saving the bookkeeping; and in all. */
  durationsMs: { validate: number; compile: number; write: number; attach: number; save: number; total: number };
}

export interface VipView extends VipRecord {
  stats: Stats;
  backends: Array<{ id: number; text: string; weight: number; drained: boolean; stats: Stats }>;
  /** Switches/routers whose ports serve this VIP. */
  servedBy: string[];
  /** Source NAT per router serving it ("router R: …"; switches never source-NAT but hairpin). */
  snat: string[];
  /** The source a backend calling this VIP itself sees (hairpin): the VIP or hairpin_snat_ip. */
  hairpinSource: string;
}

export interface ShowReport {
  pinRoot: string;
  ifaces: ServedIface[];
  vips: VipView[];
  /** IPv4 conntrack: every entry (both directions, both tiers) against the main table's (xlb_ct4)
   *  capacity; `unconfirmed`: those of flows no backend has answered yet (the new-flow tier
   *  xlb_ct4_new, its own capacity). `ipv6` is the IPv6 table (xlb_ct6), sized alike. */
  conntrack: { entries: number; max: number; unconfirmed: number; unconfirmedMax: number; ipv6: { entries: number; max: number } };
  counters: Record<GlobalCounter, bigint>;
  /** Warnings of the last apply. */
  warnings: string[];
}

export interface ConntrackEntry {
  src: string;
  dst: string;
  proto: number;
  dir: 'forward' | 'reverse';
  /** TCP state ('none' for other protocols). */
  state: 'none' | 'syn' | 'established' | 'closing';
  nat: string;
  /** Source-NATed flows: forward, the new source; reverse, the client restored as destination. */
  snat?: string;
  hairpin?: true;
  vipId: number;
  backendId: number;
}

function emptyState(pinRoot: string): State {
  return {
    version: STATE_VERSION,
    pinRoot,
    ids: EMPTY_IDS,
    desired: { load_balancers: [], logical_switches: [], logical_routers: [] },
    vips: [],
    ifaces: [],
  };
}

/** The record of one compiled VIP of `c`. */
function vipRecord(v: CompiledVip, c: Compiled): VipRecord {
  const r: VipRecord = {
    id: v.id,
    name: v.name,
    lb: v.lb,
    vip: v.vip,
    protocol: v.proto === 6 ? 'tcp' : v.proto === 17 ? 'udp' : v.proto === 132 ? 'sctp' : 'ip',
    maglevSize: v.table.length - 1,
    selectionFields: Object.entries(HASH_FIELDS)
      .filter(([, bit]) => v.hashFields & bit)
      .map(([name]) => name),
    affinityTimeoutS: v.affinityTimeoutS,
    reject: (v.flags & XLB.VIP_F_REJECT) !== 0,
    // (no neighbour answers in `c`: nothing to look for)
    arpOn:
      c.neigh.length === 0
        ? []
        : [
            ...new Set(
              c.neigh
                .filter((n) => (v.addr6 ? n.addr6?.equals(v.addr6) : !n.addr6 && n.addr === v.addr))
                .filter((n) => c.entries.some((e) => e.scope === n.scope && e.vipId === v.id))
                .map((n) => n.owner),
            ),
          ],
    backends: [],
  };
  // The backends are made when first read (`xlb show`, ct_flush): an apply from empty would make
  // 10⁶ of them only to write them into the snapshot, which packs them from the compiled VIP.
  let made: VipRecord['backends'] | null = null;
  Object.defineProperty(r, 'backends', {
    enumerable: true,
    configurable: true,
    get: () => (made ??= v.backends.map((b) => ({ id: b.id, text: b.text, weight: b.weight, drained: b.flags !== 0 }))),
    set: (x: VipRecord['backends']) => {
      made = x;
      recordBackends.delete(r);
    },
  });
  recordBackends.set(r, v.backends);
  return r;
}

/** Whether two compiles answer the same neighbour solicitations (records' arpOn depend on nothing else beyond the VIP). */
function sameNeigh(a: readonly CompiledNeigh[], b: readonly CompiledNeigh[]): boolean {
  return (
    a.length === b.length &&
    a.every((n, i) => {
      const m = b[i]!;
      return n.addr === m.addr && n.scope === m.scope && n.owner === m.owner && (n.addr6 ? m.addr6 !== undefined && n.addr6.equals(m.addr6) : m.addr6 === undefined);
    })
  );
}

/** An xlb instance: one pin root and one state directory. */
export class Xlb {
  readonly dataplane: Dataplane;
  readonly stateDir: string;
  private state: State;
  private lastCompiled: Compiled | null = null;
  /** The compile the kernel holds (the last apply's, when it completed): the next apply diffs against it. */
  private inKernel: Compiled | null = null;
  /** Whether an apply of this instance has read the array maps in full yet. */
  private scanned = false;
  /** Backend removals waiting for a grace period (after in-place table rewrites). */
  private pending: Deferred[] = [];
  /** Their ids: not handed out again until the entries are gone. */
  private readonly reserved = new Set<number>();
  /** Of those, the ones whose VIP stays (by backend id): they count in that VIP's totals until reclaim()
   *  folds their final counts into its row (Dataplane.foldBackendStats). */
  private readonly retiring = new Map<number, { vipId: number; vipName: string }>();
  private reclaimTimer: NodeJS.Timeout | null = null;
  /** The state directory's snapshot and journal. */
  private readonly file: StateFile;
  /** Slots of xlb_ifaces (fixed when the map was created; asked once). */
  private ifaceSlots: number | undefined;
  /** Position of each VIP record in state.vips, by name. */
  private recordAt = new Map<string, number>();
  /** Hook choices of the last apply, by interface (the link kind is asked of `ip` once per interface and ifindex). */
  private hookChoices = new Map<string, { ifindex: number; hook: string; choice: HookChoice }>();

  private constructor(dp: Dataplane, stateDir: string, state: State) {
    this.dataplane = dp;
    this.stateDir = stateDir;
    this.state = state;
    this.file = new StateFile(stateDir, state.seq ?? 0);
    state.vips.forEach((r, i) => this.recordAt.set(r.name, i));
  }

  /** True when a data plane is pinned under pinRoot (nothing is loaded to find out). */
  static isLoaded(pinRoot: string = DEFAULT_PIN_ROOT): boolean {
    return existsSync(join(pinRoot, 'xlb_vip4'));
  }

  /** Loads the data plane (or re-adopts the pinned one) and the bookkeeping. */
  static open(opts: XlbOptions = {}): Xlb {
    const stateDir = opts.stateDir ?? DEFAULT_STATE_DIR;
    const pinRoot = opts.pinRoot ?? DEFAULT_PIN_ROOT;
    const dp = Dataplane.open({ ...opts, pinRoot });
    const x = new Xlb(dp, stateDir, loadState(stateDir, pinRoot) ?? emptyState(pinRoot));
    // Maps this open created are empty: the first apply need not read them back.
    if (dp.fresh) x.inKernel = emptyCompiled();
    return x;
  }

  close(): void {
    this.reclaim();
    // The journal folded into one snapshot for the next process.
    if (this.file.dirty) this.file.snapshot(this.state);
    this.dataplane.close();
  }

  /**
   * Runs the backend removals an apply deferred: waits for a grace period
   * (one RCU wait for all), then deletes the entries. Called soon after such
   * an apply (a zero-delay timer), at the start of the next apply and on close.
   */
  reclaim(): number {
    if (this.reclaimTimer) clearTimeout(this.reclaimTimer);
    this.reclaimTimer = null;
    const todo = this.pending;
    this.pending = [];
    for (const d of todo) {
      try {
        d.run();
        // Their counts go to their VIP before the ids can be handed out (and zeroed) again.
        const moves: Array<{ vipId: number; backendIds: number[] }> = [];
        for (const id of d.backendIds) {
          const r = this.retiring.get(id);
          this.retiring.delete(id);
          const at = r && this.recordAt.get(r.vipName);
          if (r && at !== undefined && this.state.vips[at]?.id === r.vipId) moves.push({ vipId: r.vipId, backendIds: [id] });
        }
        if (moves.length) this.dataplane.foldBackendStats(moves);
        for (const id of d.backendIds) this.reserved.delete(id);
      } catch {
        // Left in the map (no table names them): the next apply diffs
        // against the kernel itself and removes them; their ids stay reserved.
        this.inKernel = null;
      }
    }
    return todo.length;
  }

  private defer(d: Deferred): void {
    this.pending.push(d);
    for (const id of d.backendIds) this.reserved.add(id);
    if (!this.reclaimTimer) {
      this.reclaimTimer = setTimeout(() => this.reclaim(), 0);
      this.reclaimTimer.unref();
    }
  }

  /** What the last apply of this instance compiled (null before the first). */
  get compiled(): Compiled | null {
    return this.lastCompiled;
  }

  /** The desired state last applied. */
  get desired(): DesiredState {
    return this.state.desired;
  }

  /** Validates and applies a config file (YAML or JSON). */
  applyFile(path: string): ApplyReport {
    return this.apply(parseConfigText(readFileSync(path, 'utf8'), path));
  }

  /**
   * Makes the kernel serve `input` (validated first; nothing is written when
   * it is invalid). Idempotent; changes are applied in place without touching
   * established connections. A failed write rolls the whole apply back.
   * `down` holds backends health checks found down (backendKey() keys): they
   * keep their conntrack and ids but get no new flows.
   */
  apply(input: unknown, opts: { down?: ReadonlySet<string> } = {}): ApplyReport {
    const t0 = performance.now();
    const desired = validateConfig(input);
    const t1 = performance.now();
    this.reclaim();
    const t1r = performance.now();
    const compiled = compile(desired, this.state.ids, opts.down, this.lastCompiled, { reservedBackendIds: this.reserved });
    const t2 = performance.now();
    const dp = this.dataplane;

    // Resolve every interface before writing anything.
    const ifindex = new Map<string, number>();
    const byIndex = new Map<number, string>();
    const choices = new Map<string, HookChoice>();
    const maxIfindex = (this.ifaceSlots ??= dp.native.mapInfo(dp.maps.xlb_ifaces).maxEntries);
    for (const i of compiled.ifaces) {
      let idx: number;
      try {
        idx = dp.native.ifNameToIndex(i.netns, i.ifname);
      } catch (e) {
        throw new ApplyError(`interface ${i.interface} (${i.owner}): ${(e as Error).message}`, { cause: e });
      }
      if (idx >= maxIfindex) {
        throw new ApplyError(`interface ${i.interface} (${i.owner}): ifindex ${idx} is beyond xlb_ifaces (${maxIfindex} slots)`);
      }
      const other = byIndex.get(idx);
      if (other !== undefined) {
        throw new ApplyError(
          `interfaces ${other} and ${i.interface} share ifindex ${idx} (in different network namespaces); xlb keys interfaces by ifindex`,
        );
      }
      byIndex.set(idx, i.interface);
      ifindex.set(i.interface, idx);
      const known = this.hookChoices.get(i.interface);
      choices.set(i.interface, known && known.ifindex === idx && known.hook === i.hook ? known.choice : chooseHook(i, i.hook));
    }

    const prev = this.inKernel;
    // Diffed against the kernel itself (first apply, a failure, or another process's write seen by
    // gc): the copies byte-class tables take of backend entries are read from it again too.
    if (!prev) dp.backendEntries = null;
    const pendingBefore = this.pending.length;
    const leaving = this.leavingBackends(compiled);
    // Until this apply completes, the kernel is only known to hold what it held.
    this.inKernel = null;
    const summary = applyCompiled(dp.store(), compiled, ifindex, this.state.ids, {
      fullScan: !this.scanned,
      prevIfindexes: this.state.ifaces.map((i) => i.ifindex),
      prev: prev ?? undefined,
      onDeferred: (d) => this.defer(d),
    });
    this.scanned = true;
    const t3 = performance.now();

    const served: ServedIface[] = [];
    try {
      for (const i of compiled.ifaces) {
        const a = attach(dp, i, choices.get(i.interface)!);
        served.push({ ...a, owner: i.owner, scope: i.scope });
      }
    } catch (e) {
      // Put the maps back as they were and take our programs off new interfaces.
      // The backends this apply meant to remove are needed again: drop their deferred removal.
      for (const d of this.pending.splice(pendingBefore)) for (const id of d.backendIds) this.reserved.delete(id);
      const before = new Set(this.state.ifaces.map((x) => x.interface));
      for (const a of served) if (!before.has(a.interface)) detach(a);
      const prev = compile(this.state.desired, this.state.ids);
      const prevIndex = new Map(this.state.ifaces.map((x) => [x.interface, x.ifindex]));
      try {
        applyCompiled(dp.store(), { ...prev, ifaces: prev.ifaces.filter((x) => prevIndex.has(x.interface)) }, prevIndex, compiled.ids);
      } catch {
        /* reported below */
      }
      throw new ApplyError(`attaching to ${compiled.ifaces[served.length]?.interface}: ${(e as Error).message}; rolled back`, {
        cause: e,
      });
    }

    // Flows of removed backends go first (ct_flush): the removal folds their last counts, still in
    // their conntrack entries, into the backends' rows, which the VIP takes next.
    const flushed = this.flushRemovedBackends(desired, compiled);

    // Backends that left a VIP that stays: their counts move to the VIP's row now, or at reclaim()
    // when their removal waits for a grace period (they count in the VIP's totals until then).
    const deferredIds = new Set(this.pending.slice(pendingBefore).flatMap((d) => d.backendIds));
    const foldNow: Array<{ vipId: number; backendIds: number[] }> = [];
    for (const l of leaving) {
      if (deferredIds.has(l.backendId)) this.retiring.set(l.backendId, { vipId: l.vipId, vipName: l.vipName });
      else foldNow.push({ vipId: l.vipId, backendIds: [l.backendId] });
    }
    if (foldNow.length) dp.foldBackendStats(foldNow);

    const keep = new Set(served.map((s) => s.interface));
    const detached: string[] = [];
    for (const old of this.state.ifaces) {
      if (keep.has(old.interface)) continue;
      detach(old);
      detached.push(old.interface);
    }

    const t4 = performance.now();
    this.hookChoices = new Map(compiled.ifaces.map((i) => [i.interface, { ifindex: ifindex.get(i.interface)!, hook: i.hook, choice: choices.get(i.interface)! }]));
    this.remember(desired, compiled, served);
    this.lastCompiled = compiled;
    this.inKernel = compiled;
    const t5 = performance.now();
    return {
      warnings: compiled.warnings,
      summary,
      ifaces: served,
      detached,
      flushed,
      unchanged: summary.writes === 0 && detached.length === 0,
      durationsMs: { validate: t1 - t0, compile: t2 - t1r, write: t3 - t2, attach: t4 - t3, save: t5 - t4, total: t5 - t0 },
    };
  }

  /**
   * Backend ids the kernel holds that `compiled` takes away from a VIP it keeps (the same id: a
   * VIP keeps its id when its name changes with its load balancer's protocol, and compile never
   * hands an id it freed to another VIP in the same compile): their counters are the last part
   * of that VIP's totals not yet in its row. Only the VIPs the compile replaced are looked at
   * when it derives from the last one.
   */
  private leavingBackends(compiled: Compiled): Array<{ vipId: number; vipName: string; backendId: number }> {
    const changes = this.lastCompiled ? vipChanges(compiled, this.lastCompiled) : null;
    const before: ReadonlyArray<{ id: number; name: string; backends: ReadonlyArray<{ id: number }> }> = changes ? changes.stale : this.state.vips;
    if (before.length === 0) return [];
    const after = new Map((changes ? changes.fresh : compiled.vips).map((v) => [v.id, v]));
    const out: Array<{ vipId: number; vipName: string; backendId: number }> = [];
    for (const v of before) {
      const now = after.get(v.id);
      if (!now) continue; // the VIP itself went (or took another id): nothing to keep
      const kept = new Set(now.backends.map((b) => b.id));
      for (const b of v.backends) if (!kept.has(b.id)) out.push({ vipId: v.id, vipName: now.name, backendId: b.id });
    }
    return out;
  }

  /**
   * OVN's ct_flush: for load balancers with `ct_flush=true`, the connections
   * of backends that left the pool (or whose VIP went away) are removed from
   * conntrack. Without it (OVN's default) they continue until they close.
   */
  private flushRemovedBackends(desired: DesiredState, compiled: Compiled): number {
    const flushOf = (lb: string): boolean =>
      (desired.load_balancers.find((l) => l.name === lb) ?? this.state.desired.load_balancers.find((l) => l.name === lb))
        ?.options.ct_flush === 'true';
    // No load balancer flushes (OVN's default): nothing to look at.
    const flushing = (d: DesiredState): boolean => d.load_balancers.some((l) => l.options.ct_flush === 'true');
    // (compiled from the last compile: only the VIPs it replaced or removed can have lost backends)
    const changes = this.lastCompiled ? vipChanges(compiled, this.lastCompiled) : null;
    if (changes ? !changes.stale.some((v) => flushOf(v.lb)) : !flushing(desired) && !flushing(this.state.desired)) return 0;
    const now = new Set(compiled.vips.flatMap((v) => v.backends.map((b) => `${v.id}/${b.id}`)));
    const gone = new Set<string>();
    for (const v of this.state.vips) {
      if (!flushOf(v.lb)) continue;
      for (const b of v.backends) if (!now.has(`${v.id}/${b.id}`)) gone.add(`${v.id}/${b.id}`);
    }
    if (gone.size === 0) return 0;
    const match = (e: { vipId: number; backendId: number }): boolean => gone.has(`${e.vipId}/${e.backendId}`);
    return flushConntrack(this.dataplane, match) + flushConntrack6(this.dataplane, match);
  }

  /** Removes idle conntrack entries (see conntrack.ts for the timeouts), then
   *  rebuilds the established tier's key filter (Dataplane.ct4SeenRebuild) and
   *  the address filter (addrfilter.ts): the addresses of the configuration
   *  the kernel holds and of the flows left, so that addresses no longer used
   *  stop costing packets their lookups. The address filter is rebuilt only
   *  when that configuration is known, no backend removal waits for a grace
   *  period (a program may still send a new flow to such a backend) and no
   *  other process wrote this instance's state since this one did (it may
   *  have applied a configuration of its own: the next apply then reads the
   *  kernel back); else its bits stay, as they always may. */
  gc(timeouts: Partial<ConntrackTimeouts> = {}): GcResult {
    const t = { ...DEFAULT_CT_TIMEOUTS, ...timeouts };
    if (this.inKernel && this.file.changedElsewhere()) this.inKernel = null;
    const config = this.pending.length === 0 ? this.inKernel : null;
    // Every program that read the configuration before this point has finished: a flow it
    // created is in conntrack when the scan below reads it.
    if (config) this.dataplane.store().synchronize();
    const flows: number[] = [];
    const r4 = gcConntrack(this.dataplane, t, undefined, config ? (k, v) => flowAddrs(k, v, flows) : undefined);
    const r6 = gcConntrack6(this.dataplane, t, undefined, config ? (k, v) => flowAddrs6(k, v, flows) : undefined);
    this.dataplane.ct4SeenRebuild(); // the removed flows' keys leave the filter
    if (config) this.dataplane.addrFilterRebuild([...configAddrs(config), ...flows]);
    return { ...r4, scanned: r4.scanned + r6.scanned, removed: r4.removed + r6.removed };
  }

  /** What is served, with counters read from the kernel. */
  show(): ShowReport {
    const dp = this.dataplane;
    const servedBy = new Map<string, string[]>();
    for (const ls of this.state.desired.logical_switches) {
      for (const lb of ls.load_balancer) servedBy.set(lb, [...(servedBy.get(lb) ?? []), `switch ${ls.name}`]);
    }
    for (const lr of this.state.desired.logical_routers) {
      for (const lb of lr.load_balancer) servedBy.set(lb, [...(servedBy.get(lb) ?? []), `router ${lr.name}`]);
    }
    const lbs = new Map(this.state.desired.load_balancers.map((l) => [l.name, l]));
    // A VIP's totals: its row and its backends' rows, those removed but not yet reclaimed included.
    const retiringOf = new Map<number, number[]>();
    for (const [id, r] of this.retiring) retiringOf.set(r.vipId, [...(retiringOf.get(r.vipId) ?? []), id]);
    const retiringIds = (v: VipRecord): number[] =>
      (retiringOf.get(v.id) ?? []).filter((id) => this.retiring.get(id)!.vipName === v.name);
    const totalsOf = this.state.vips.map((v) => ({ id: v.id, backendIds: [...v.backends.map((b) => b.id), ...retiringIds(v)] }));
    // Every backend row read once: for the VIPs' totals and for each backend's own figures.
    const backendStats = dp.statsOf('backend', totalsOf.flatMap((v) => v.backendIds));
    const vipStats = dp.vipTotals(totalsOf, backendStats);
    const vips = this.state.vips.map((v) => {
      const lb = lbs.get(v.lb);
      const hairpin = lb?.options.hairpin_snat_ip?.split(' ').find((x) => x.includes('.'));
      const v6 = v.vip.startsWith('[') || (v.vip.match(/:/g)?.length ?? 0) > 1; // source NAT is IPv4 only
      return {
        ...v,
        stats: vipStats.get(v.id)!,
        backends: v.backends.map((b) => ({ ...b, stats: backendStats.get(b.id)! })),
        servedBy: servedBy.get(v.lb) ?? [],
        snat: lb
          ? this.state.desired.logical_routers
              .filter((lr) => lr.load_balancer.includes(v.lb))
              .map((lr) => `router ${lr.name}: ${v6 ? 'none (IPv6)' : describeRouterSnat(lr, lb)}`)
          : [],
        hairpinSource: v6 ? 'no answer (no hairpin for IPv6 yet)' : hairpin ? `${hairpin} (hairpin_snat_ip)` : 'the VIP',
      };
    });
    const ct = dp.conntrack();
    return {
      pinRoot: dp.pinRoot,
      ifaces: this.state.ifaces,
      vips,
      conntrack: {
        entries: ct.keys.length,
        max: dp.native.mapInfo(dp.maps.xlb_ct4).maxEntries,
        unconfirmed: ct.confirmed.filter((c) => !c).length,
        unconfirmedMax: dp.ct4NewCapacity(),
        ipv6: { entries: dp.conntrack6().keys.length, max: dp.native.mapInfo(dp.maps.xlb_ct6).maxEntries },
      },
      counters: dp.globalCounters(),
      warnings: this.state.warnings ?? [],
    };
  }

  /** Every conntrack entry, decoded. */
  conntrack(): ConntrackEntry[] {
    const ct = this.dataplane.conntrack();
    const v4: ConntrackEntry[] = ct.keys.map((k, i) => {
      const key = decodeCt4Key(k);
      const val = decodeCt4Val(ct.values[i]);
      const port = (p: number): string => (p ? `:${p}` : '');
      return {
        src: `${formatIPv4(key.saddr)}${port(key.sport)}`,
        dst: `${formatIPv4(key.daddr)}${port(key.dport)}`,
        proto: key.proto,
        dir: val.dir === 1 ? 'forward' : 'reverse',
        state: (['none', 'syn', 'established', 'closing'] as const)[val.state] ?? 'none',
        nat: `${formatIPv4(val.natAddr)}${port(val.natPort)}`,
        ...((val.flags ?? 0) & XLB.CT_F_SNAT ? { snat: `${formatIPv4(val.snatAddr ?? 0)}${port(val.snatPort ?? 0)}` } : {}),
        ...((val.flags ?? 0) & XLB.CT_F_HAIRPIN ? { hairpin: true as const } : {}),
        vipId: val.vipId,
        backendId: val.backendId,
      };
    });
    const ct6 = this.dataplane.conntrack6();
    const at6 = (a: Buffer, p: number): string => (p ? `[${formatIPv6(a)}]:${p}` : formatIPv6(a));
    return v4.concat(
      ct6.keys.map((k, i) => {
        const key = decodeCt6Key(k);
        const val = decodeCt6Val(ct6.values[i]);
        return {
          src: at6(key.saddr, key.sport),
          dst: at6(key.daddr, key.dport),
          proto: key.proto,
          dir: val.dir === 1 ? 'forward' : 'reverse',
          state: (['none', 'syn', 'established', 'closing'] as const)[val.state] ?? 'none',
          nat: at6(val.natAddr, val.natPort),
          vipId: val.vipId,
          backendId: val.backendId,
        };
      }),
    );
  }

  /**
   * Updates the bookkeeping to `compiled` and saves it: only the records of
   * the VIPs that changed are rebuilt, and what changed is appended to the
   * journal (state-file.ts); a new snapshot is written when there is no
   * delta (no previous compile of this process, or the neighbour answers
   * changed, which every record shows) or the journal is full.
   */
  private remember(desired: DesiredState, compiled: Compiled, served: ServedIface[]): void {
    const changes = this.lastCompiled ? vipChanges(compiled, this.lastCompiled) : null;
    const incremental = changes !== null && sameNeigh(compiled.neigh, this.lastCompiled!.neigh);
    const prevDesired = this.state.desired;
    let set: VipRecord[] = [];
    const del: string[] = [];
    let vips: VipRecord[];
    if (incremental) {
      vips = this.state.vips;
      set = changes.fresh.map((v) => vipRecord(v, compiled));
      const fresh = new Set(set.map((r) => r.name));
      for (const v of changes.stale) if (!fresh.has(v.name) && this.recordAt.has(v.name)) del.push(v.name);
      if (del.length > 0) {
        const gone = new Set(del);
        vips = vips.filter((r) => !gone.has(r.name));
        this.recordAt = new Map(vips.map((r, i) => [r.name, i]));
      }
      for (const r of set) {
        const at = this.recordAt.get(r.name);
        if (at !== undefined) vips[at] = r;
        else this.recordAt.set(r.name, vips.push(r) - 1);
      }
    } else {
      vips = compiled.vips.map((v) => vipRecord(v, compiled));
      this.recordAt = new Map(vips.map((r, i) => [r.name, i]));
    }
    this.state = { version: STATE_VERSION, pinRoot: this.dataplane.pinRoot, ids: compiled.ids, desired, vips, ifaces: served, warnings: compiled.warnings };
    const appended =
      incremental &&
      this.file.append({
        seq: this.file.nextSeq(),
        ...desiredDelta(prevDesired, desired),
        vipsSet: set,
        vipsDel: del,
        scopes: compiled.ids.scopes,
        ifaces: served,
        warnings: compiled.warnings,
      });
    if (!appended) this.file.snapshot(this.state);
  }

  /**
   * Detaches xlb from every interface it serves and removes its pins and
   * bookkeeping. Works without loading anything (and when nothing is there).
   */
  static reset(opts: { pinRoot?: string; stateDir?: string } = {}): { detached: string[] } {
    const stateDir = opts.stateDir ?? DEFAULT_STATE_DIR;
    const pinRoot = opts.pinRoot ?? DEFAULT_PIN_ROOT;
    const path = join(stateDir, STATE_FILE);
    const detached: string[] = [];
    if (existsSync(path)) {
      // The snapshot with the journal after it: the interfaces of the last apply.
      const snap = JSON.parse(readFileSync(path, 'utf8')) as State;
      const s = loadState(stateDir, snap.pinRoot) ?? snap;
      for (const i of s.ifaces ?? []) {
        detach(i);
        detached.push(i.interface);
      }
      rmSync(path, { force: true });
    }
    rmSync(join(stateDir, JOURNAL_FILE), { force: true });
    Dataplane.removePins(pinRoot);
    // The state directory goes too when nothing else (a daemon's files) is left in it.
    if (existsSync(stateDir) && readdirSync(stateDir).length === 0) rmdirSync(stateDir);
    return { detached };
  }
}
