/**
 * HealthChecker: probes backends on a timer and keeps OVN's per-backend state
 * machine (Load_Balancer_Health_Check / ovn-controller's service monitors):
 *
 * - every backend starts **up** (as in OVN, where a backend is used until its
 *   service monitor reports it offline), so starting the checker never takes
 *   traffic away from a healthy pool;
 * - up → down after `failure_count` consecutive failed probes;
 * - down → up after `success_count` consecutive successful probes;
 * - a probe starts `interval` seconds after the previous one of the same
 *   backend ended (OVN: next probe = answer or timeout + interval) and waits
 *   at most `timeout` seconds. The first probes run at start().
 *
 * Worst-case detection of a backend that starts refusing (RST / ICMP, answered
 * at once): failure_count × interval after the previous successful probe; of one
 * that goes silent: failure_count × (interval + timeout).
 *
 * At most `concurrency` probes run at once; overdue probes start as slots free.
 * Each change of the set of down backends emits 'change' with that set (the
 * keys are compile's backendKey(vip, backend), ready for compile(..., down)).
 */
import { EventEmitter } from 'node:events';
import { parseIPv4 } from '../addr.js';
import { backendKey } from '../compile.js';
import { loadNative, type XlbNative } from '../native.js';
import { parseMac } from './frames.js';
import { ProbePort } from './port.js';
import { httpProbe, tcpSynProbe, udpProbe } from './probes.js';
import {
  OVN_HEALTH_DEFAULTS,
  type BackendState,
  type HealthCheckOptions,
  type HealthTarget,
  type ProbeConfig,
  type ProbeResult,
} from './types.js';

/** Source MAC of TCP/UDP probes unless configured (locally administered; "xlb" in the middle),
 *  the counterpart of OVN's NB_Global options:svc_monitor_mac. */
export const DEFAULT_PROBE_MAC = '0a:58:78:6c:62:01';

export interface HealthCheckerOptions {
  /** Most probes in flight at once (default 16). */
  concurrency?: number;
  /** Source MAC of raw probes (default DEFAULT_PROBE_MAC). */
  sourceMac?: string;
  /** Seconds a resolved backend MAC is trusted (default 60). */
  arpTtl?: number;
  /** The addon (default loadNative()); only needed for tcp/udp probes. */
  native?: XlbNative;
}

export interface BackendHealth {
  key: string;
  vip: string;
  backend: string;
  probe: ProbeConfig['type'];
  state: BackendState;
  /** Consecutive successes / failures so far. */
  successes: number;
  failures: number;
  last: ProbeResult | null;
  /** ms since the epoch of the last probe's end (null before the first). */
  lastAt: number | null;
}

export interface HealthChange {
  /** Every backend key currently down. */
  down: Set<string>;
  /** The backends whose state changed in this event. */
  changed: Array<{ key: string; state: BackendState; reason: string }>;
}

export interface ProbeEvent {
  key: string;
  result: ProbeResult;
  state: BackendState;
}

interface Entry {
  target: HealthTarget;
  probe: ProbeConfig;
  opts: HealthCheckOptions;
  health: BackendHealth;
  nextAt: number;
  running: boolean;
  removed: boolean;
}

/** Validates and completes one target's options (throws RangeError naming the field). */
export function healthOptions(o: Partial<HealthCheckOptions> = {}): HealthCheckOptions {
  const r = { ...OVN_HEALTH_DEFAULTS, ...Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) };
  for (const k of ['interval', 'timeout'] as const) {
    if (!(typeof r[k] === 'number' && Number.isFinite(r[k]) && r[k] > 0)) throw new RangeError(`${k}: must be a positive number of seconds (got ${String(r[k])})`);
  }
  for (const k of ['success_count', 'failure_count'] as const) {
    if (!(Number.isInteger(r[k]) && r[k] >= 1)) throw new RangeError(`${k}: must be a positive integer (got ${String(r[k])})`);
  }
  return r;
}

export declare interface HealthChecker {
  on(event: 'change', listener: (c: HealthChange) => void): this;
  on(event: 'probe', listener: (p: ProbeEvent) => void): this;
}

export class HealthChecker extends EventEmitter {
  private readonly entries = new Map<string, Entry>();
  private readonly ports = new Map<string, ProbePort>();
  private readonly concurrency: number;
  private readonly sourceMac: Buffer;
  private readonly arpTtl: number | undefined;
  private nativeMod: XlbNative | undefined;
  private running = 0;
  private timer: NodeJS.Timeout | null = null;
  private started = false;
  private readonly inflight = new Set<Promise<void>>();

  constructor(targets: readonly HealthTarget[] = [], opts: HealthCheckerOptions = {}) {
    super();
    this.concurrency = Math.max(1, opts.concurrency ?? 16);
    this.sourceMac = parseMac(opts.sourceMac ?? DEFAULT_PROBE_MAC);
    this.arpTtl = opts.arpTtl;
    this.nativeMod = opts.native;
    this.setTargets(targets);
  }

  /**
   * Replaces the watched targets. Backends already watched (same key and same
   * probe) keep their state and counters; new ones start up; removed ones are
   * forgotten (a 'change' is emitted if one of them was down).
   */
  setTargets(targets: readonly HealthTarget[]): void {
    const keep = new Set<string>();
    const removedDown: string[] = [];
    for (const t of targets) {
      const key = backendKey(t.vip, t.backend);
      if (keep.has(key)) throw new RangeError(`health target ${key} listed twice`);
      keep.add(key);
      const probe: ProbeConfig = t.probe ?? { type: t.protocol };
      const opts = healthOptions(t.options);
      if (probe.type !== 'http') {
        if (!t.source) throw new RangeError(`health target ${key}: a ${probe.type} probe needs a source (ip_port_mappings)`);
        parseIPv4(t.source.ip);
      }
      const sep = t.backend.lastIndexOf(':');
      if (sep < 0) throw new RangeError(`health target ${key}: backend must be "A.B.C.D:PORT"`);
      parseIPv4(t.backend.slice(0, sep));
      const old = this.entries.get(key);
      if (old && JSON.stringify(old.probe) === JSON.stringify(probe) && JSON.stringify(old.target.source) === JSON.stringify(t.source)) {
        old.target = t;
        old.opts = opts;
        continue;
      }
      if (old) old.removed = true;
      this.entries.set(key, {
        target: t,
        probe,
        opts,
        health: { key, vip: t.vip, backend: t.backend, probe: probe.type, state: old?.health.state ?? 'up', successes: 0, failures: 0, last: null, lastAt: null },
        nextAt: Date.now(),
        running: false,
        removed: false,
      });
    }
    for (const [key, e] of this.entries) {
      if (keep.has(key)) continue;
      e.removed = true;
      this.entries.delete(key);
      if (e.health.state === 'down') removedDown.push(key);
    }
    if (removedDown.length > 0) {
      this.emit('change', { down: this.down(), changed: removedDown.map((key) => ({ key, state: 'up' as const, reason: 'no longer checked' })) });
    }
    if (this.started) this.schedule();
  }

  /** Starts probing (the first probes at once). */
  start(): void {
    this.started = true;
    this.schedule();
  }

  /** Stops probing; resolves when in-flight probes ended and the sockets are closed. */
  async stop(): Promise<void> {
    this.started = false;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    await Promise.all([...this.ports.values()].map((p) => p.close()));
    await Promise.allSettled([...this.inflight]);
    this.ports.clear();
  }

  /** Backend keys currently down. */
  down(): Set<string> {
    return new Set([...this.entries.values()].filter((e) => e.health.state === 'down').map((e) => e.health.key));
  }

  /** Every watched backend with its state and last result. */
  status(): BackendHealth[] {
    return [...this.entries.values()].map((e) => ({ ...e.health }));
  }

  private native(): XlbNative {
    this.nativeMod ??= loadNative();
    return this.nativeMod;
  }

  private port(iface: string): ProbePort {
    let p = this.ports.get(iface);
    if (!p) {
      p = new ProbePort(this.native(), iface, { arpTtl: this.arpTtl });
      this.ports.set(iface, p);
    }
    return p;
  }

  private schedule(): void {
    if (!this.started) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    const now = Date.now();
    const due = [...this.entries.values()].filter((e) => !e.running).sort((a, b) => a.nextAt - b.nextAt);
    for (const e of due) {
      if (e.nextAt > now || this.running >= this.concurrency) break;
      this.launch(e);
    }
    const next = [...this.entries.values()].filter((e) => !e.running).reduce((m, e) => Math.min(m, e.nextAt), Infinity);
    if (next !== Infinity && this.running < this.concurrency) {
      this.timer = setTimeout(() => this.schedule(), Math.max(0, next - Date.now()));
    }
  }

  private launch(e: Entry): void {
    e.running = true;
    this.running++;
    const p = this.probe(e)
      .catch((err: unknown): ProbeResult => ({ ok: false, reason: `probe failed: ${(err as Error).message}`, ms: 0 }))
      .then((r) => this.record(e, r))
      .finally(() => {
        e.running = false;
        this.running--;
        this.inflight.delete(p);
        this.schedule();
      });
    this.inflight.add(p);
  }

  private probe(e: Entry): Promise<ProbeResult> {
    const t = e.target;
    const timeoutMs = e.opts.timeout * 1000;
    if (e.probe.type === 'http') return httpProbe(t.backend, e.probe, timeoutMs);
    const src = t.source!;
    const port = this.port(src.interface);
    const srcIp = parseIPv4(src.ip);
    port.addSource(srcIp, this.sourceMac);
    const sep = t.backend.lastIndexOf(':');
    const raw = { port, srcIp, srcMac: this.sourceMac, dstIp: parseIPv4(t.backend.slice(0, sep)), dport: Number(t.backend.slice(sep + 1)), timeoutMs };
    return e.probe.type === 'tcp' ? tcpSynProbe(raw) : udpProbe(raw, e.probe);
  }

  private record(e: Entry, r: ProbeResult): void {
    const h = e.health;
    e.nextAt = Date.now() + e.opts.interval * 1000;
    if (e.removed || !this.started) return;
    h.last = r;
    h.lastAt = Date.now();
    let changed = false;
    if (r.ok) {
      h.successes++;
      h.failures = 0;
      if (h.state === 'down' && h.successes >= e.opts.success_count) {
        h.state = 'up';
        changed = true;
      }
    } else {
      h.failures++;
      h.successes = 0;
      if (h.state === 'up' && h.failures >= e.opts.failure_count) {
        h.state = 'down';
        changed = true;
      }
    }
    this.emit('probe', { key: h.key, result: r, state: h.state });
    if (changed) this.emit('change', { down: this.down(), changed: [{ key: h.key, state: h.state, reason: r.reason }] });
  }
}
