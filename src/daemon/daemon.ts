/**
 * `xlb daemon`: serves the merged desired state of its sources and keeps it
 * served as they change.
 *
 * Sources and precedence (highest first; SOURCE_PRECEDENCE in sources/types.ts):
 *   api  > file > ovn
 * Objects are merged per table by name: a load balancer, switch or router
 * written through the local API hides the one of the same name in the config
 * file, which hides OVN's. Each change of a source is merged with the last
 * accepted fragments of the others, validated (validateConfig) and applied
 * (Xlb.apply); only then is it accepted. A change that does not validate or
 * apply is logged with its error and the previous state stays served.
 *
 * Changes are applied one at a time (a promise queue). Shutdown (SIGTERM,
 * SIGINT) closes the API and the sources and leaves the data plane attached:
 * programs and maps are pinned, and the next start re-adopts them (an apply of
 * an unchanged state writes nothing).
 */
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createConnection, isIPv4, isIPv6, type AddressInfo } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import type { Server } from 'node:http';
import pino from 'pino';
import type { Logger, Level } from 'pino';
import { validateConfig, type DesiredState } from '../config.js';
import { ApplyError, ConfigError } from '../errors.js';
import { DEFAULT_PIN_ROOT, type MapSizes } from '../dataplane.js';
import { DEFAULT_STATE_DIR, Xlb, type ApplyReport } from '../xlb.js';
import { ApiSource } from '../sources/api.js';
import { FileSource } from '../sources/file.js';
import { mergeFragments, SOURCE_PRECEDENCE, type Source, type SourceName, type StateFragment } from '../sources/types.js';
import {
  ApiError,
  configErrorToApi,
  createApiServer,
  type ApiBackend,
  type MutationResult,
  type Mutate,
  type Origins,
  type StateView,
  type Table,
  type Target,
} from './api.js';
import { DaemonMetrics } from './metrics.js';
import { HealthChecker, healthTargets, parseIpPortMapping, type HealthChange, type LbHealth } from '../health/index.js';
import type { ConntrackTimeouts } from '../conntrack.js';
import { DAEMON_FILE, DEFAULT_OVS_DB, defaultApiSocket, readDaemonInfo, type DaemonInfo } from './discovery.js';

export { DAEMON_FILE, defaultApiSocket, readDaemonInfo, type DaemonInfo };

export { DEFAULT_OVS_DB };
export interface DaemonOptions {
  pinRoot?: string;
  stateDir?: string;
  /** Config file (watched). */
  config?: string;
  /** OVN Northbound remote(s): `unix:PATH`, `tcp:HOST:PORT`, comma-separated cluster members. */
  ovnNb?: string;
  /** Local Open_vSwitch database (default unix:/var/run/openvswitch/db.sock). */
  ovsDb?: string;
  /** Unix socket of the API (default STATE_DIR/api.sock, i.e. /run/xlb/api.sock); mode 0600. */
  apiSocket?: string;
  /** Loopback `HOST:PORT` of an extra TCP listener (port 0: any free port); needs apiTokenFile. */
  apiTcp?: string;
  /** File holding the bearer token of the TCP listener. */
  apiTokenFile?: string;
  logger?: Logger;
  logLevel?: Level;
  /** Debounce of config-file events (default 150 ms). */
  debounceMs?: number;
  /** With --ovn-nb: the network namespace the OVS host's interfaces live in (ports become NETNS/IFNAME). */
  ovsNetns?: string;
  /** Seconds between conntrack garbage collections (default 10; 0 = off). */
  ctGcIntervalS?: number;
  /** Conntrack idle timeouts in seconds (defaults in conntrack.ts). */
  ctTimeouts?: Partial<ConntrackTimeouts>;
  /** BPF map sizes when the daemon loads the data plane (programmatic use: benches of 10⁴ VIPs × 64 backends). */
  mapSizes?: MapSizes;
}

export interface ApplyRecord {
  at: string;
  source: SourceName | 'startup';
  writes: number;
  unchanged: boolean;
  durationMs: number;
  summary: ApplyReport['summary'];
  detached: string[];
}

/** A JSON logger to stderr (pino). */
export function createLogger(level: Level = 'info'): Logger {
  return pino({ level, base: { name: 'xlb', pid: process.pid } }, pino.destination({ dest: 2, sync: true }));
}

/** Parses `HOST:PORT` and requires a loopback host. */
export function parseLoopback(spec: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d+)$/.exec(spec);
  if (!m) throw new Error(`--api-tcp: must be HOST:PORT on loopback, e.g. 127.0.0.1:9470 (got "${spec}")`);
  const host = m[1] ?? m[2];
  const port = Number(m[3]);
  const loop = host === 'localhost' || (isIPv4(host) && host.startsWith('127.')) || (isIPv6(host) && (host === '::1' || host === '0:0:0:0:0:0:0:1'));
  if (!loop) throw new Error(`--api-tcp: only a loopback address is allowed (127.0.0.0/8, ::1, localhost) (got "${host}")`);
  if (port > 65535) throw new Error(`--api-tcp: port must be 0..65535 (got ${port})`);
  return { host, port };
}

function socketAnswers(path: string): Promise<boolean> {
  return new Promise((resolveP) => {
    const s = createConnection(path);
    s.once('connect', () => {
      s.destroy();
      resolveP(true);
    });
    s.once('error', () => resolveP(false));
  });
}

function listen(server: Server, arg: string | { host: string; port: number }): Promise<void> {
  return new Promise((resolveP, reject) => {
    server.once('error', reject);
    const done = (): void => {
      server.off('error', reject);
      resolveP();
    };
    if (typeof arg === 'string') server.listen(arg, done);
    else server.listen(arg.port, arg.host, done);
  });
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolveP) => {
    server.close(() => resolveP());
    server.closeAllConnections();
  });
}

function origins(fragments: Partial<Record<SourceName, StateFragment>>): Origins {
  const out: Origins = { load_balancers: {}, logical_switches: {}, logical_routers: {} };
  for (const table of Object.keys(out) as Table[]) {
    for (const src of SOURCE_PRECEDENCE) {
      for (const o of fragments[src]?.[table] ?? []) {
        if (typeof o.name === 'string' && !(o.name in out[table])) out[table][o.name] = src;
      }
    }
  }
  return out;
}

/** Names a merged-state field by object names for logs: `load_balancers["lb1"].vips[...]`. */
function namedField(e: ConfigError, merged: StateFragment): string {
  return configErrorToApi(e, merged, { table: 'load_balancers', name: '\0' }).field ?? e.field;
}

export class Daemon implements ApiBackend {
  readonly log: Logger;
  readonly xlb: Xlb;
  readonly info: DaemonInfo;
  readonly metricsRegistry: DaemonMetrics;
  private readonly sources: Source[];
  private readonly apiSource: ApiSource;
  private readonly fileSource: FileSource | null;
  private accepted: Partial<Record<SourceName, StateFragment>> = {};
  private desired: DesiredState;
  private origins: Origins = { load_balancers: {}, logical_switches: {}, logical_routers: {} };
  private queue: Promise<unknown> = Promise.resolve();
  private servers: Server[] = [];
  private applies = 0;
  private applyErrors = 0;
  private lastApply: ApplyRecord | null = null;
  private startupApply: ApplyRecord | null = null;
  private stopped = false;
  private health: HealthChecker | null = null;
  /** Backends the health checks found down (backendKey() keys). */
  private down: Set<string> = new Set();
  private gcTimer: NodeJS.Timeout | null = null;
  private gcRuns = 0;
  private gcRemoved = 0;
  private readonly ctTimeouts: Partial<ConntrackTimeouts>;

  private constructor(
    log: Logger,
    xlb: Xlb,
    info: DaemonInfo,
    sources: { api: ApiSource; file: FileSource | null; others: Source[] },
    ctTimeouts: Partial<ConntrackTimeouts> = {},
  ) {
    this.ctTimeouts = ctTimeouts;
    this.log = log;
    this.xlb = xlb;
    this.info = info;
    this.apiSource = sources.api;
    this.fileSource = sources.file;
    this.sources = [sources.api, ...(sources.file ? [sources.file] : []), ...sources.others];
    this.desired = xlb.desired;
    this.metricsRegistry = new DaemonMetrics();
  }

  /** Opens the data plane, starts the sources, applies the merged state, opens the API. */
  static async start(opts: DaemonOptions = {}): Promise<Daemon> {
    const log = opts.logger ?? createLogger(opts.logLevel);
    const stateDir = resolve(opts.stateDir ?? DEFAULT_STATE_DIR);
    const pinRoot = opts.pinRoot ?? DEFAULT_PIN_ROOT;
    const apiSocket = resolve(opts.apiSocket ?? defaultApiSocket(stateDir));

    let tcp: { host: string; port: number } | null = null;
    let token: string | undefined;
    if (opts.apiTcp !== undefined) {
      tcp = parseLoopback(opts.apiTcp);
      if (opts.apiTokenFile === undefined) throw new Error('--api-tcp requires --api-token-file FILE (the bearer token)');
      token = readFileSync(opts.apiTokenFile, 'utf8').trim();
      if (token.length < 16) throw new Error(`--api-token-file: the token in ${opts.apiTokenFile} must be at least 16 characters`);
    }
    if (existsSync(apiSocket)) {
      if (await socketAnswers(apiSocket)) throw new Error(`another xlb daemon is serving the API socket ${apiSocket}`);
      rmSync(apiSocket, { force: true });
    }
    mkdirSync(stateDir, { recursive: true, mode: 0o700 });
    mkdirSync(dirname(apiSocket), { recursive: true, mode: 0o700 });

    const readopt = Xlb.isLoaded(pinRoot);
    const xlb = Xlb.open({ pinRoot, stateDir, ...(opts.mapSizes ? { mapSizes: opts.mapSizes } : {}) });
    log.info({ pinRoot, stateDir, readopt }, readopt ? 'data plane re-adopted from pins' : 'data plane loaded');

    const api = new ApiSource({ stateDir });
    const file = opts.config !== undefined ? new FileSource({ path: opts.config, debounceMs: opts.debounceMs, logger: log }) : null;
    const others: Source[] = [];
    if (opts.ovnNb !== undefined) others.push(await loadOvnSource(opts.ovnNb, opts.ovsDb ?? DEFAULT_OVS_DB, log, opts.ovsNetns));

    const info: DaemonInfo = { pid: process.pid, apiSocket, apiTcp: null, pinRoot, stateDir, startedAt: new Date().toISOString() };
    const d = new Daemon(log, xlb, info, { api, file, others }, opts.ctTimeouts);
    try {
      for (const s of d.sources) await s.start();
      d.startupApply = d.applyInitial();
      for (const s of d.sources) {
        if (s.name !== 'api') s.onChange(() => void d.enqueue(() => d.reconcile(s)));
      }
      await d.openApi(apiSocket, tcp, token);
      d.writeInfo();
      d.startGc(opts.ctGcIntervalS ?? 10);
    } catch (e) {
      await d.teardown();
      throw e;
    }
    log.info({ apiSocket, apiTcp: d.info.apiTcp, config: file?.path ?? null, ovnNb: opts.ovnNb ?? null }, 'xlb daemon ready');
    return d;
  }

  /** Re-reads the config file now (SIGHUP). */
  reloadConfig(): void {
    this.fileSource?.reload();
  }

  /** Stops the API and the sources; the data plane keeps serving. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.log.info('stopping; the data plane keeps serving (pins stay, nothing is detached)');
    await this.teardown();
    this.log.info('stopped');
  }

  private async teardown(): Promise<void> {
    this.stopped = true;
    if (this.gcTimer) clearInterval(this.gcTimer);
    await this.health?.stop();
    await Promise.all(this.servers.map(closeServer));
    this.servers = [];
    for (const s of this.sources) {
      try {
        await s.stop();
      } catch (e) {
        this.log.warn({ err: e, source: s.name }, 'source did not stop cleanly');
      }
    }
    await this.queue.catch(() => undefined);
    const mine = readDaemonInfo(this.info.stateDir);
    if (mine?.pid === process.pid) rmSync(join(this.info.stateDir, DAEMON_FILE), { force: true });
    rmSync(this.info.apiSocket, { force: true });
    this.xlb.close();
  }

  private async openApi(socket: string, tcp: { host: string; port: number } | null, token: string | undefined): Promise<void> {
    const onRequest = (r: { method: string; path: string; status: number; ms: number; error?: unknown }): void => {
      const level = r.status >= 500 ? 'error' : r.status >= 400 ? 'warn' : 'debug';
      this.log[level]({ method: r.method, path: r.path, status: r.status, ms: Math.round(r.ms * 10) / 10, error: r.error }, 'api request');
    };
    const onInternalError = (e: unknown): void => this.log.error({ err: e }, 'api internal error');
    const unix = createApiServer(this, { onRequest, onInternalError });
    const old = process.umask(0o177);
    try {
      await listen(unix, socket);
    } finally {
      process.umask(old);
    }
    chmodSync(socket, 0o600);
    this.servers.push(unix);
    if (tcp) {
      const t = createApiServer(this, { token, onRequest, onInternalError });
      await listen(t, tcp);
      this.servers.push(t);
      const a = t.address() as AddressInfo;
      this.info.apiTcp = a.family === 'IPv6' ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}`;
    }
  }

  private writeInfo(): void {
    const path = join(this.info.stateDir, DAEMON_FILE);
    writeFileSync(`${path}.tmp`, JSON.stringify(this.info, null, 2), { mode: 0o600 });
    renameSync(`${path}.tmp`, path);
  }

  private enqueue<T>(fn: () => T | Promise<T>): Promise<T> {
    const p = this.queue.then(fn);
    this.queue = p.catch(() => undefined);
    return p;
  }

  /** Validates and applies merged fragments; records metrics and logs. Throws ConfigError / ApplyError. */
  private applyFragments(source: SourceName | 'startup', fragments: Partial<Record<SourceName, StateFragment>>): ApplyRecord {
    const merged = mergeFragments(fragments);
    const t0 = performance.now();
    const src = source;
    let desired: DesiredState;
    let report: ApplyReport;
    try {
      desired = validateConfig(merged);
    } catch (e) {
      this.applyErrors++;
      this.metricsRegistry.applyErrors.inc({ source: src, kind: 'config' });
      throw e;
    }
    try {
      report = this.xlb.apply(desired, { down: this.down });
    } catch (e) {
      this.applyErrors++;
      this.metricsRegistry.applyErrors.inc({ source: src, kind: 'apply' });
      throw e;
    }
    const durationMs = performance.now() - t0;
    this.applies++;
    this.metricsRegistry.applies.inc({ source: src });
    this.metricsRegistry.applyLatency.observe({ source: src }, durationMs / 1000);
    this.desired = desired;
    this.origins = origins(fragments);
    this.syncHealth(desired);
    const rec: ApplyRecord = {
      at: new Date().toISOString(),
      source,
      writes: report.summary.writes,
      unchanged: report.unchanged,
      durationMs: Math.round(durationMs * 100) / 100,
      summary: report.summary,
      detached: report.detached,
    };
    this.lastApply = rec;
    this.log.info(
      { source, writes: rec.writes, unchanged: rec.unchanged, durationMs: rec.durationMs, summary: rec.summary, detached: rec.detached },
      rec.unchanged ? 'applied: unchanged, nothing written' : `applied: ${rec.writes} map writes`,
    );
    for (const w of report.warnings) this.log.warn({ source }, w);
    return rec;
  }

  private applyInitial(): ApplyRecord {
    const fragments: Partial<Record<SourceName, StateFragment>> = {};
    for (const s of this.sources) fragments[s.name] = s.current();
    try {
      const rec = this.applyFragments('startup', fragments);
      this.accepted = fragments;
      return rec;
    } catch (e) {
      if (e instanceof ConfigError) {
        const field = namedField(e, mergeFragments(fragments));
        throw new ConfigError(field, `the merged state of the sources is invalid: ${e.problem}`, e.value);
      }
      throw e;
    }
  }

  /** A file/OVN change: accepted only when the merged state validates and applies. */
  private reconcile(s: Source): void {
    if (this.stopped) return;
    const candidate = s.current();
    const fragments = { ...this.accepted, [s.name]: candidate };
    try {
      this.applyFragments(s.name, fragments);
      this.accepted[s.name] = candidate;
    } catch (e) {
      if (e instanceof ConfigError) {
        const field = namedField(e, mergeFragments(fragments));
        this.log.error(
          { source: s.name, code: e.code, field, value: e.value, error: `${field}: ${e.problem}` },
          `change from ${s.name} rejected: ${field}: ${e.problem}; the last good state stays`,
        );
      } else {
        const err = e as Error;
        this.log.error(
          { source: s.name, code: e instanceof ApplyError ? e.code : undefined, error: err.message, err },
          `apply of the change from ${s.name} failed: ${err.message}; the previous state stays served`,
        );
      }
    }
  }

  // ---- health checks and conntrack upkeep

  /** Points the health checker at the health-checked backends of what is now served. */
  private syncHealth(desired: DesiredState): void {
    const compiled = this.xlb.compiled;
    if (!compiled) return;
    const lbHealth: Record<string, LbHealth> = {};
    for (const lb of desired.load_balancers) {
      if (!lb.health_check?.length) continue;
      lbHealth[lb.name] = {
        health_check: lb.health_check,
        ip_port_mappings: Object.fromEntries(
          Object.entries(lb.ip_port_mappings ?? {}).map(([ip, m]) => [ip, parseIpPortMapping(m, `ip_port_mappings[${ip}]`)]),
        ),
      };
    }
    let targets;
    try {
      targets = healthTargets(compiled, lbHealth);
    } catch (e) {
      this.log.error({ error: (e as Error).message }, `health checks not updated: ${(e as Error).message}`);
      return;
    }
    if (!this.health) {
      if (targets.length === 0) return;
      this.health = new HealthChecker(targets);
      this.health.on('change', (ev: HealthChange) => {
        this.down = ev.down;
        for (const c of ev.changed) this.log.warn({ backend: c.key, state: c.state, reason: c.reason }, `backend ${c.key} is ${c.state} (${c.reason})`);
        void this.enqueue(() => this.applyHealth());
      });
      this.health.start();
      return;
    }
    this.health.setTargets(targets);
  }

  /** Re-applies the served state with the current down set (a health change). */
  private applyHealth(): void {
    if (this.stopped) return;
    const t0 = performance.now();
    try {
      const r = this.xlb.apply(this.desired, { down: this.down });
      this.metricsRegistry.applies.inc({ source: 'health' });
      this.metricsRegistry.applyLatency.observe({ source: 'health' }, (performance.now() - t0) / 1000);
      this.log.info({ down: [...this.down], writes: r.summary.writes }, 'applied a health change');
    } catch (e) {
      this.applyErrors++;
      this.metricsRegistry.applyErrors.inc({ source: 'health', kind: 'apply' });
      this.log.error({ error: (e as Error).message }, `apply of a health change failed: ${(e as Error).message}`);
    }
  }

  private startGc(intervalS: number): void {
    if (!(intervalS > 0)) return;
    this.gcTimer = setInterval(() => {
      void this.enqueue(() => {
        if (this.stopped) return;
        const r = this.xlb.gc(this.ctTimeouts);
        this.gcRuns++;
        this.gcRemoved += r.removed;
        if (r.removed) this.log.debug({ scanned: r.scanned, removed: r.removed }, 'conntrack garbage collected');
      });
    }, intervalS * 1000);
    this.gcTimer.unref();
  }

  // ---- ApiBackend

  state(): StateView {
    return {
      desired: JSON.parse(JSON.stringify(this.desired)) as StateView['desired'],
      sources: JSON.parse(JSON.stringify(this.origins)) as Origins,
      precedence: [...SOURCE_PRECEDENCE],
    };
  }

  stats(): object {
    const show = this.xlb.show();
    return {
      ...show,
      loaded: true,
      daemon: {
        pid: process.pid,
        startedAt: this.info.startedAt,
        applies: this.applies,
        applyErrors: this.applyErrors,
        startupApply: this.startupApply,
        lastApply: this.lastApply,
        config: this.fileSource ? { path: this.fileSource.path, lastError: this.fileSource.lastError } : null,
        conntrackGc: { runs: this.gcRuns, removed: this.gcRemoved },
      },
      health: this.health?.status() ?? [],
    };
  }

  async metrics(): Promise<{ contentType: string; body: string }> {
    this.metricsRegistry.refresh(this.xlb.show());
    this.metricsRegistry.refreshDaemon(this.health?.status() ?? [], this.gcRemoved);
    return { contentType: this.metricsRegistry.registry.contentType, body: await this.metricsRegistry.registry.metrics() };
  }

  mutate(target: Target, fn: Mutate): Promise<MutationResult> {
    return this.enqueue(() => {
      if (this.stopped) throw new ApiError(503, 'XLB_INTERNAL', null, 'the daemon is stopping');
      const api = this.apiSource.current();
      const candidate = fn(api, mergeFragments(this.accepted));
      const fragments = { ...this.accepted, api: candidate };
      let rec: ApplyRecord;
      try {
        rec = this.applyFragments('api', fragments);
      } catch (e) {
        if (e instanceof ConfigError) throw configErrorToApi(e, mergeFragments(fragments), target);
        if (e instanceof ApplyError) {
          this.log.error({ source: 'api', code: e.code, error: e.message }, `apply failed: ${e.message}; the previous state stays served`);
          throw new ApiError(500, 'XLB_APPLY', null, e.message);
        }
        throw e;
      }
      this.accepted.api = candidate;
      this.apiSource.commit(candidate);
      return { apply: { writes: rec.writes, unchanged: rec.unchanged, durationMs: rec.durationMs } };
    });
  }
}

/** The OVN Northbound source, loaded only when --ovn-nb is given. */
async function loadOvnSource(nbRemote: string, ovsRemote: string, logger: Logger, interfaceNetns?: string): Promise<Source> {
  const spec = '../sources/ovn.js';
  let mod: { OvnSource?: new (o: { nbRemote: string; ovsRemote?: string; logger?: Logger; interfaceNetns?: string }) => Source };
  try {
    mod = (await import(spec)) as typeof mod;
  } catch (e) {
    throw new Error(`--ovn-nb: the OVN Northbound source is not available in this build (${(e as Error).message})`, { cause: e });
  }
  if (typeof mod.OvnSource !== 'function') throw new Error('--ovn-nb: the OVN Northbound source is not available in this build');
  return new mod.OvnSource({ nbRemote, ovsRemote, logger, ...(interfaceNetns ? { interfaceNetns } : {}) });
}

/** Runs the daemon until SIGTERM/SIGINT (SIGHUP re-reads the config file). */
export async function runDaemon(opts: DaemonOptions): Promise<void> {
  const d = await Daemon.start(opts);
  const onHup = (): void => d.reloadConfig();
  process.on('SIGHUP', onHup);
  const sig = await new Promise<NodeJS.Signals>((res) => {
    process.once('SIGTERM', () => res('SIGTERM'));
    process.once('SIGINT', () => res('SIGINT'));
  });
  process.off('SIGHUP', onHup);
  d.log.info({ signal: sig }, 'signal received');
  await d.stop();
}


