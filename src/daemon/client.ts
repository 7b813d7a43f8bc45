/**
 * A typed client of the daemon's local API (over its unix socket, or the
 * loopback TCP listener with a bearer token). Methods mirror the routes; a
 * non-2xx answer throws XlbApiError (HTTP status + the API's error), and no
 * daemon at the socket throws DaemonNotRunningError.
 */
import { request } from 'node:http';
import { defaultApiSocket, readDaemonInfo } from './discovery.js';
// Types only: erased at run time, so the client stays light to load.
import type { ShowReport } from '../xlb.js';
import type { Stats } from '../layout.js';
import type { BackendHealth } from '../health/checker.js';

/** The API's error body. */
export interface ApiErrorInfo {
  code: string;
  field: string | null;
  message: string;
}

/** A non-2xx answer of the API. */
export class XlbApiError extends Error {
  readonly status: number;
  readonly code: string;
  readonly field: string | null;
  constructor(status: number, info: ApiErrorInfo) {
    super(info.message);
    this.name = 'XlbApiError';
    this.status = status;
    this.code = info.code;
    this.field = info.field;
  }
}

/** No daemon answers at the API socket. */
export class DaemonNotRunningError extends Error {
  readonly socketPath: string;
  constructor(socketPath: string, cause?: unknown) {
    super(`no xlb daemon is running (no API socket at ${socketPath}); start one with \`xlb daemon\``, { cause });
    this.name = 'DaemonNotRunningError';
    this.socketPath = socketPath;
  }
}

export type Protocol = 'tcp' | 'udp' | 'sctp';

/** A load balancer in the config shape (as written). */
export interface LoadBalancerInput {
  name?: string;
  protocol?: Protocol;
  vips?: Record<string, string>;
  options?: Record<string, string | number | boolean>;
  selection_fields?: string[];
}

/** A logical switch in the config shape (as written). */
export interface LogicalSwitchInput {
  name?: string;
  ports?: Array<string | { interface: string; hook?: 'auto' | 'tc' | 'xdp' | 'xdp-generic' }>;
  load_balancer?: string[];
}

export type SourceName = 'api' | 'file' | 'ovn';

/** A load balancer being served (normalized), with its source. */
export interface LoadBalancerView {
  name: string;
  protocol: Protocol;
  vips: Record<string, string>;
  options: Record<string, string>;
  selection_fields: string[];
  source: SourceName;
}

/** A logical switch being served (normalized), with its source. */
export interface LogicalSwitchView {
  name: string;
  ports: Array<{ interface: string; netns: string | null; ifname: string; hook: string }>;
  load_balancer: string[];
  source: SourceName;
}

export interface StateResponse {
  desired: {
    load_balancers: Array<Omit<LoadBalancerView, 'source'>>;
    logical_switches: Array<Omit<LogicalSwitchView, 'source'>>;
    logical_routers: Array<Record<string, unknown>>;
  };
  sources: Record<'load_balancers' | 'logical_switches' | 'logical_routers', Record<string, SourceName>>;
  precedence: SourceName[];
}

export interface WriteResult {
  ok: true;
  apply: { writes: number; unchanged: boolean; durationMs: number };
}

/** A library value as it travels in JSON: bigint counters become numbers. */
export type Jsonified<T> = T extends bigint
  ? number
  : T extends ReadonlyArray<infer U>
    ? Jsonified<U>[]
    : T extends object
      ? { [K in keyof T]: Jsonified<T[K]> }
      : T;

/** Kernel counters as numbers. */
export type StatsNumbers = Jsonified<Stats>;

export interface ApplyRecordView {
  at: string;
  source: string;
  writes: number;
  unchanged: boolean;
  durationMs: number;
  detached: string[];
}

/** GET /v1/stats: `xlb show --json` (the library's ShowReport, in JSON) plus the daemon's own figures. */
export type StatsResponse = Jsonified<ShowReport> & {
  loaded: true;
  daemon: {
    pid: number;
    startedAt: string;
    applies: number;
    applyErrors: number;
    startupApply: ApplyRecordView | null;
    lastApply: ApplyRecordView | null;
    config: { path: string; lastError: { field: string; message: string } | null } | null;
    conntrackGc: { runs: number; removed: number };
  };
  /** Health-checked backends (empty without health checks). */
  health: BackendHealth[];
};

export interface XlbClientOptions {
  /** Unix socket of the API. Default: the one in STATE_DIR/daemon.json, else STATE_DIR/api.sock. */
  socketPath?: string;
  /** State dir of the daemon to find (default /run/xlb). */
  stateDir?: string;
  /** Use the TCP listener instead (`HOST:PORT`); needs token. */
  tcp?: string;
  token?: string;
  /** Per-request timeout (default 30 s). */
  timeoutMs?: number;
}

const enc = encodeURIComponent;

export class XlbClient {
  readonly socketPath: string | null;
  private readonly tcp: { host: string; port: number } | null;
  private readonly token: string | undefined;
  private readonly timeoutMs: number;

  constructor(opts: XlbClientOptions = {}) {
    this.token = opts.token;
    this.timeoutMs = opts.timeoutMs ?? 30_000;
    if (opts.tcp !== undefined) {
      const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d+)$/.exec(opts.tcp);
      if (!m) throw new Error(`tcp: must be HOST:PORT (got "${opts.tcp}")`);
      this.tcp = { host: m[1] ?? m[2], port: Number(m[3]) };
      this.socketPath = null;
    } else {
      this.tcp = null;
      this.socketPath = opts.socketPath ?? readDaemonInfo(opts.stateDir)?.apiSocket ?? defaultApiSocket(opts.stateDir);
    }
  }

  /** One request; resolves with the parsed JSON (or text) of a 2xx answer. */
  async request<T>(method: string, path: string, body?: unknown): Promise<T> {
    const r = await this.raw(method, path, body);
    if (r.status < 200 || r.status > 299) {
      let info: ApiErrorInfo = { code: 'XLB_HTTP', field: null, message: `HTTP ${r.status}: ${r.body.slice(0, 200)}` };
      try {
        const parsed = JSON.parse(r.body) as { error?: ApiErrorInfo };
        if (parsed.error) info = parsed.error;
      } catch {
        /* not JSON */
      }
      throw new XlbApiError(r.status, info);
    }
    return (r.contentType.includes('json') ? JSON.parse(r.body) : r.body) as T;
  }

  /** One request, any status: status, content type and body text. */
  raw(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<{ status: number; contentType: string; body: string }> {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const h: Record<string, string> = { ...headers };
    if (payload !== undefined) {
      h['content-type'] = 'application/json';
      h['content-length'] = String(Buffer.byteLength(payload));
    }
    if (this.token !== undefined && h.authorization === undefined) h.authorization = `Bearer ${this.token}`;
    const where = this.tcp ? { host: this.tcp.host, port: this.tcp.port } : { socketPath: this.socketPath! };
    return new Promise((resolve, reject) => {
      const req = request({ ...where, method, path, headers: h, timeout: this.timeoutMs }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (d: Buffer) => chunks.push(d));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, contentType: String(res.headers['content-type'] ?? ''), body: Buffer.concat(chunks).toString('utf8') }),
        );
        res.on('error', reject);
      });
      req.on('timeout', () => req.destroy(new Error(`${method} ${path}: no answer within ${this.timeoutMs} ms`)));
      req.on('error', (e: NodeJS.ErrnoException) => {
        if (!this.tcp && (e.code === 'ENOENT' || e.code === 'ECONNREFUSED' || e.code === 'ENOTSOCK')) reject(new DaemonNotRunningError(this.socketPath!, e));
        else reject(e);
      });
      if (payload !== undefined) req.write(payload);
      req.end();
    });
  }

  health(): Promise<{ status: string }> {
    return this.request('GET', '/healthz');
  }
  openapi(): Promise<Record<string, unknown>> {
    return this.request('GET', '/openapi.json');
  }
  metrics(): Promise<string> {
    return this.request('GET', '/metrics');
  }
  state(): Promise<StateResponse> {
    return this.request('GET', '/v1/state');
  }
  stats(): Promise<StatsResponse> {
    return this.request('GET', '/v1/stats');
  }
  async loadBalancers(): Promise<LoadBalancerView[]> {
    return (await this.request<{ load_balancers: LoadBalancerView[] }>('GET', '/v1/load-balancers')).load_balancers;
  }
  loadBalancer(name: string): Promise<LoadBalancerView> {
    return this.request('GET', `/v1/load-balancers/${enc(name)}`);
  }
  putLoadBalancer(name: string, lb: LoadBalancerInput): Promise<WriteResult> {
    return this.request('PUT', `/v1/load-balancers/${enc(name)}`, lb);
  }
  deleteLoadBalancer(name: string): Promise<WriteResult> {
    return this.request('DELETE', `/v1/load-balancers/${enc(name)}`);
  }
  /** Sets a VIP's backends ("ip:port,ip:port"), creating the load balancer (with `protocol`) if needed. */
  setVip(lb: string, vip: string, backends: string, protocol?: Protocol): Promise<WriteResult> {
    return this.request('PUT', `/v1/load-balancers/${enc(lb)}/vips/${enc(vip)}`, protocol === undefined ? { backends } : { backends, protocol });
  }
  deleteVip(lb: string, vip: string): Promise<WriteResult> {
    return this.request('DELETE', `/v1/load-balancers/${enc(lb)}/vips/${enc(vip)}`);
  }
  async logicalSwitches(): Promise<LogicalSwitchView[]> {
    return (await this.request<{ logical_switches: LogicalSwitchView[] }>('GET', '/v1/logical-switches')).logical_switches;
  }
  logicalSwitch(name: string): Promise<LogicalSwitchView> {
    return this.request('GET', `/v1/logical-switches/${enc(name)}`);
  }
  putLogicalSwitch(name: string, ls: LogicalSwitchInput): Promise<WriteResult> {
    return this.request('PUT', `/v1/logical-switches/${enc(name)}`, ls);
  }
  deleteLogicalSwitch(name: string): Promise<WriteResult> {
    return this.request('DELETE', `/v1/logical-switches/${enc(name)}`);
  }
  /** Attaches a load balancer to an existing switch. */
  attach(sw: string, lb: string): Promise<WriteResult> {
    return this.request('POST', `/v1/logical-switches/${enc(sw)}/load-balancers/${enc(lb)}`);
  }
  /** Detaches one load balancer from a switch, or all of them when lb is omitted. */
  detach(sw: string, lb?: string): Promise<WriteResult> {
    return this.request('DELETE', lb === undefined ? `/v1/logical-switches/${enc(sw)}/load-balancers` : `/v1/logical-switches/${enc(sw)}/load-balancers/${enc(lb)}`);
  }
}
