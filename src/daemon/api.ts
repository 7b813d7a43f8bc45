/**
 * The daemon's local HTTP API (JSON over a unix socket, optionally a loopback
 * TCP port with a bearer token). Routes are listed once in ROUTES; the OpenAPI
 * document (openapi.ts) describes the same set, and a test checks both ways.
 *
 * Every write builds a candidate API fragment, merges it with the other
 * sources and validates the result before anything is accepted: a bad request
 * gets 400 with {error: {code, field, message}} naming the field, and changes
 * nothing. Field names are relative to the request (`vips["1.2.3.4:80"]`,
 * `backends`, `ports[0]`, a path parameter such as `name` or `vip`), or the
 * merged path with object names (`logical_switches["inside"].load_balancer[0]`)
 * when the problem is in another object.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { timingSafeEqual } from 'node:crypto';
import { isIPv6Literal, parseHostPort } from '../addr.js';
import { describeValue, type ConfigError } from '../errors.js';
import { copyFragment, vipsWith, vipsWithout } from '../sources/api.js';
import type { SourceName, StateFragment } from '../sources/types.js';
import { OPENAPI } from './openapi.js';

/** The error body of every non-2xx answer. */
export interface ApiErrorBody {
  error: { code: string; field: string | null; message: string };
}

/** An error answered to the client: HTTP status, stable code, offending field. */
export class ApiError extends Error {
  readonly status: number;
  readonly code: string;
  readonly field: string | null;
  constructor(status: number, code: string, field: string | null, message: string) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.field = field;
  }
  toBody(): ApiErrorBody {
    return { error: { code: this.code, field: this.field, message: this.message } };
  }
}

/** API error codes (stable). */
export const API_ERROR_CODES = {
  XLB_CONFIG: 'The request (merged with the other sources) is not a valid desired state; `field` names the problem. Nothing changed.',
  XLB_BAD_REQUEST: 'The request itself is malformed (not JSON, wrong type, bad path parameter). Nothing changed.',
  XLB_NOT_FOUND: 'The named object does not exist.',
  XLB_CONFLICT: 'The object comes from another source (the config file or OVN) and cannot be changed through the API this way.',
  XLB_APPLY: 'The data plane refused the new state (e.g. a missing interface); the previous state is still served. Nothing changed.',
  XLB_NO_ROUTE: 'No such route.',
  XLB_METHOD: 'The route exists but not with this method (see the Allow header).',
  XLB_UNAUTHORIZED: 'The TCP listener needs `Authorization: Bearer TOKEN`.',
  XLB_TOO_LARGE: 'The request body is larger than 1 MiB.',
  XLB_INTERNAL: 'An unexpected error; see the daemon log.',
} as const;

export type Table = 'load_balancers' | 'logical_switches' | 'logical_routers';

/** Where each merged object came from, per table and name. */
export type Origins = Record<Table, Record<string, SourceName>>;

/** GET /v1/state. */
export interface StateView {
  /** The merged, validated desired state being served. */
  desired: { load_balancers: Array<Record<string, unknown>>; logical_switches: Array<Record<string, unknown>>; logical_routers: Array<Record<string, unknown>> };
  /** Which source each object of `desired` came from. */
  sources: Origins;
  /** Precedence, highest first. */
  precedence: SourceName[];
}

/** The result of an accepted write. */
export interface MutationResult {
  apply: { writes: number; unchanged: boolean; durationMs: number };
}

/** The object a write targets, for naming fields relative to the request. */
export interface Target {
  table: Table;
  name: string;
  /** Maps a path inside the target object (e.g. `vips["k"]`) to a request field; default: the path itself. */
  field?: (inner: string) => string;
}

/** A write: the candidate API fragment from the current API fragment and the merged (served) fragment. */
export type Mutate = (api: StateFragment, merged: StateFragment) => StateFragment;

/** What the API needs from the daemon. */
export interface ApiBackend {
  state(): StateView;
  stats(): object;
  metrics(): Promise<{ contentType: string; body: string }>;
  /** Runs a write in the daemon's apply queue; throws ApiError (400/404/409/500). */
  mutate(target: Target, fn: Mutate): Promise<MutationResult>;
}

/**
 * Renames a merged-state ConfigError field for the client (see the module
 * comment) and returns the ApiError to answer.
 */
export function configErrorToApi(e: ConfigError, merged: StateFragment, target: Target): ApiError {
  const m = /^(load_balancers|logical_switches|logical_routers)\[(\d+)\](.*)$/.exec(e.field);
  let field = e.field;
  if (m) {
    const table = m[1] as Table;
    const obj = merged[table][Number(m[2])];
    const name = typeof obj?.name === 'string' ? obj.name : null;
    const rest = m[3];
    if (name !== null && table === target.table && name === target.name) {
      const inner = rest.replace(/^\./, '');
      field = inner === '' ? 'body' : (target.field?.(inner) ?? inner);
    } else if (name !== null) {
      field = `${table}[${JSON.stringify(name)}]${rest}`;
    }
  }
  return new ApiError(400, 'XLB_CONFIG', field, `${field}: ${e.problem} (got ${describeValue(e.value)})`);
}

// ---------------------------------------------------------------------------
// Routing

interface Ctx {
  params: Record<string, string>;
  body: () => Promise<unknown>;
}
interface Reply {
  status?: number;
  json?: unknown;
  text?: { contentType: string; body: string };
}
export interface Route {
  method: 'GET' | 'PUT' | 'POST' | 'DELETE';
  /** OpenAPI path template, e.g. /v1/load-balancers/{name}. */
  path: string;
  handler: (b: ApiBackend, c: Ctx) => Promise<Reply>;
}

const TABLE_WORDS: Record<Table, string> = {
  load_balancers: 'load balancer',
  logical_switches: 'logical switch',
  logical_routers: 'logical router',
};

function byName(list: Array<Record<string, unknown>>, name: string): Record<string, unknown> | undefined {
  return list.find((o) => o.name === name);
}

function withoutName(list: Array<Record<string, unknown>>, name: string): Array<Record<string, unknown>> {
  return list.filter((o) => o.name !== name);
}

function upsert(list: Array<Record<string, unknown>>, obj: Record<string, unknown>): Array<Record<string, unknown>> {
  const i = list.findIndex((o) => o.name === obj.name);
  if (i < 0) return [...list, obj];
  const out = [...list];
  out[i] = obj;
  return out;
}

function expectBodyObject(v: unknown): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) {
    throw new ApiError(400, 'XLB_BAD_REQUEST', 'body', `body: must be a JSON object (got ${describeValue(v)})`);
  }
  return v as Record<string, unknown>;
}

/** Body `name`, when given, must equal the path's. */
function nameFromPath(body: Record<string, unknown>, name: string): Record<string, unknown> {
  if (body.name !== undefined && body.name !== name) {
    throw new ApiError(400, 'XLB_BAD_REQUEST', 'name', `name: must equal the name in the path ("${name}") (got ${describeValue(body.name)})`);
  }
  return { ...body, name };
}

function checkBodyKeys(body: Record<string, unknown>, allowed: readonly string[]): void {
  for (const k of Object.keys(body)) {
    if (!allowed.includes(k)) {
      throw new ApiError(400, 'XLB_CONFIG', k, `${k}: unknown key (allowed: ${allowed.join(', ')}) (got ${describeValue(body[k])})`);
    }
  }
}

function checkVipParam(vip: string): void {
  let problem: string | null = null;
  if (isIPv6Literal(vip.replace(/^\[|\](:\d+)?$/g, ''))) problem = 'IPv6 is not supported yet';
  else {
    try {
      parseHostPort(vip);
    } catch (e) {
      problem = `is not a valid "IP" or "IP:PORT" VIP (${(e as Error).message})`;
    }
  }
  if (problem !== null) throw new ApiError(400, 'XLB_CONFIG', 'vip', `vip: ${problem} (got ${JSON.stringify(vip)})`);
}

/** The object of the API fragment, or a copy of the merged one (copy-on-write: the API then holds it). */
function takeOver(api: StateFragment, merged: StateFragment, table: Table, name: string): Record<string, unknown> | undefined {
  const own = byName(api[table], name);
  // The API's own objects are frozen and replaced, never changed: a shallow copy (the same `vips` values).
  if (own) return { ...own };
  const other = byName(merged[table], name);
  return other ? (JSON.parse(JSON.stringify(other)) as Record<string, unknown>) : undefined;
}

function removeLbRefs(list: Array<Record<string, unknown>>, lb: string): Array<Record<string, unknown>> {
  return list.map((o) => (Array.isArray(o.load_balancer) ? { ...o, load_balancer: o.load_balancer.filter((x) => x !== lb) } : o));
}

const ok = (r: MutationResult, status = 200): Reply => ({ status, json: { ok: true, ...r } });

function listTable(b: ApiBackend, table: Table): Array<Record<string, unknown>> {
  const s = b.state();
  return s.desired[table].map((o) => ({ ...o, source: s.sources[table][String(o.name)] }));
}

function getOne(b: ApiBackend, table: Table, name: string): Reply {
  const o = listTable(b, table).find((x) => x.name === name);
  if (!o) throw new ApiError(404, 'XLB_NOT_FOUND', 'name', `${TABLE_WORDS[table]} "${name}" does not exist`);
  return { json: o };
}

/** Deletes an API-owned object (404 if unknown, 409 if another source owns it). */
function deleteObject(b: ApiBackend, table: Table, name: string): Promise<MutationResult> {
  return b.mutate({ table, name }, (api, merged) => {
    if (!byName(api[table], name)) {
      if (byName(merged[table], name)) {
        const src = b.state().sources[table][name];
        throw new ApiError(409, 'XLB_CONFLICT', 'name', `${TABLE_WORDS[table]} "${name}" comes from the ${src === 'ovn' ? 'OVN Northbound database' : 'config file'}; change it there`);
      }
      throw new ApiError(404, 'XLB_NOT_FOUND', 'name', `${TABLE_WORDS[table]} "${name}" does not exist`);
    }
    const next = copyFragment(api);
    next[table] = withoutName(next[table], name);
    if (table === 'load_balancers') {
      // Like OVN's weak references: switches and routers of the API drop it too.
      next.logical_switches = removeLbRefs(next.logical_switches, name);
      next.logical_routers = removeLbRefs(next.logical_routers, name);
    }
    return next;
  });
}

function putObject(b: ApiBackend, table: Table, name: string, raw: unknown, allowed: readonly string[]): Promise<MutationResult> {
  const body = nameFromPath(expectBodyObject(raw), name);
  checkBodyKeys(body, allowed);
  return b.mutate({ table, name }, (api) => {
    const next = copyFragment(api);
    next[table] = upsert(next[table], body);
    return next;
  });
}

function switchMustExist(api: StateFragment, merged: StateFragment, name: string, status = 400): Record<string, unknown> {
  const sw = takeOver(api, merged, 'logical_switches', name);
  if (!sw) {
    throw new ApiError(status, status === 404 ? 'XLB_NOT_FOUND' : 'XLB_CONFIG', 'name', `logical switch "${name}" does not exist (create it first: PUT /v1/logical-switches/${name}, or \`xlb ls-add ${name} PORT...\`)`);
  }
  return sw;
}

export const ROUTES: readonly Route[] = [
  { method: 'GET', path: '/healthz', handler: async () => ({ json: { status: 'ok' } }) },
  { method: 'GET', path: '/openapi.json', handler: async () => ({ json: OPENAPI }) },
  { method: 'GET', path: '/metrics', handler: async (b) => ({ text: await b.metrics() }) },
  { method: 'GET', path: '/v1/state', handler: async (b) => ({ json: b.state() }) },
  { method: 'GET', path: '/v1/stats', handler: async (b) => ({ json: b.stats() }) },
  { method: 'GET', path: '/v1/load-balancers', handler: async (b) => ({ json: { load_balancers: listTable(b, 'load_balancers') } }) },
  { method: 'GET', path: '/v1/load-balancers/{name}', handler: async (b, c) => getOne(b, 'load_balancers', c.params.name) },
  {
    method: 'PUT',
    path: '/v1/load-balancers/{name}',
    handler: async (b, c) => ok(await putObject(b, 'load_balancers', c.params.name, await c.body(), ['name', 'protocol', 'vips', 'options', 'selection_fields'])),
  },
  { method: 'DELETE', path: '/v1/load-balancers/{name}', handler: async (b, c) => ok(await deleteObject(b, 'load_balancers', c.params.name)) },
  {
    method: 'PUT',
    path: '/v1/load-balancers/{name}/vips/{vip}',
    handler: async (b, c) => {
      const { name, vip } = c.params;
      checkVipParam(vip);
      const body = expectBodyObject(await c.body());
      checkBodyKeys(body, ['backends', 'protocol']);
      if (typeof body.backends !== 'string') {
        throw new ApiError(400, 'XLB_CONFIG', 'backends', `backends: must be a comma-separated backend list string (e.g. "10.0.0.1:80,10.0.0.2:80") (got ${describeValue(body.backends)})`);
      }
      const backends = body.backends;
      const protocol = body.protocol;
      if (protocol !== undefined && protocol !== 'tcp' && protocol !== 'udp' && protocol !== 'sctp') {
        throw new ApiError(400, 'XLB_CONFIG', 'protocol', `protocol: must be one of "tcp", "udp", "sctp" (got ${describeValue(protocol)})`);
      }
      const vipField = `vips[${JSON.stringify(vip)}]`;
      const target: Target = { table: 'load_balancers', name, field: (inner) => (inner.startsWith(vipField) ? 'backends' : inner) };
      return ok(
        await b.mutate(target, (api, merged) => {
          const lb = takeOver(api, merged, 'load_balancers', name) ?? { name, protocol: protocol ?? 'tcp', vips: {} };
          const have = typeof lb.protocol === 'string' ? lb.protocol : 'tcp';
          if (protocol !== undefined && have !== protocol) {
            throw new ApiError(400, 'XLB_CONFIG', 'protocol', `protocol: load balancer "${name}" is ${have}, not ${protocol} (got "${protocol}")`);
          }
          const vips = typeof lb.vips === 'object' && lb.vips !== null ? (lb.vips as Record<string, unknown>) : {};
          const next = copyFragment(api);
          // Frozen, and known to validation as the API's last `vips` with one VIP set (withVip): it looks at that VIP only;
          // the API state's journal records that VIP only.
          next.load_balancers = upsert(next.load_balancers, { ...lb, vips: vipsWith(vips, vip, backends) });
          return next;
        }),
      );
    },
  },
  {
    method: 'DELETE',
    path: '/v1/load-balancers/{name}/vips/{vip}',
    handler: async (b, c) => {
      const { name, vip } = c.params;
      return ok(
        await b.mutate({ table: 'load_balancers', name }, (api, merged) => {
          const lb = takeOver(api, merged, 'load_balancers', name);
          if (!lb) throw new ApiError(404, 'XLB_NOT_FOUND', 'name', `load balancer "${name}" does not exist`);
          const vips = (lb.vips as Record<string, unknown> | undefined) ?? {};
          if (!Object.prototype.hasOwnProperty.call(vips, vip)) throw new ApiError(404, 'XLB_NOT_FOUND', 'vip', `load balancer "${name}" has no VIP "${vip}"`);
          const next = copyFragment(api);
          next.load_balancers = upsert(next.load_balancers, { ...lb, vips: vipsWithout(vips, vip) });
          return next;
        }),
      );
    },
  },
  { method: 'GET', path: '/v1/logical-switches', handler: async (b) => ({ json: { logical_switches: listTable(b, 'logical_switches') } }) },
  { method: 'GET', path: '/v1/logical-switches/{name}', handler: async (b, c) => getOne(b, 'logical_switches', c.params.name) },
  {
    method: 'PUT',
    path: '/v1/logical-switches/{name}',
    handler: async (b, c) => ok(await putObject(b, 'logical_switches', c.params.name, await c.body(), ['name', 'ports', 'load_balancer'])),
  },
  { method: 'DELETE', path: '/v1/logical-switches/{name}', handler: async (b, c) => ok(await deleteObject(b, 'logical_switches', c.params.name)) },
  {
    method: 'POST',
    path: '/v1/logical-switches/{name}/load-balancers/{lb}',
    handler: async (b, c) => {
      const { name, lb } = c.params;
      return ok(
        await b.mutate({ table: 'logical_switches', name }, (api, merged) => {
          const sw = switchMustExist(api, merged, name);
          if (!byName(merged.load_balancers, lb) && !byName(api.load_balancers, lb)) {
            throw new ApiError(400, 'XLB_CONFIG', 'lb', `load balancer "${lb}" does not exist`);
          }
          const list = Array.isArray(sw.load_balancer) ? (sw.load_balancer as unknown[]) : [];
          const next = copyFragment(api);
          next.logical_switches = upsert(next.logical_switches, { ...sw, load_balancer: list.includes(lb) ? list : [...list, lb] });
          return next;
        }),
      );
    },
  },
  {
    method: 'DELETE',
    path: '/v1/logical-switches/{name}/load-balancers/{lb}',
    handler: async (b, c) => {
      const { name, lb } = c.params;
      return ok(
        await b.mutate({ table: 'logical_switches', name }, (api, merged) => {
          const sw = switchMustExist(api, merged, name, 404);
          const list = Array.isArray(sw.load_balancer) ? (sw.load_balancer as unknown[]) : [];
          if (!list.includes(lb)) throw new ApiError(404, 'XLB_NOT_FOUND', 'lb', `load balancer "${lb}" is not attached to logical switch "${name}"`);
          const next = copyFragment(api);
          next.logical_switches = upsert(next.logical_switches, { ...sw, load_balancer: list.filter((x) => x !== lb) });
          return next;
        }),
      );
    },
  },
  {
    method: 'DELETE',
    path: '/v1/logical-switches/{name}/load-balancers',
    handler: async (b, c) => {
      const { name } = c.params;
      return ok(
        await b.mutate({ table: 'logical_switches', name }, (api, merged) => {
          const sw = switchMustExist(api, merged, name, 404);
          const next = copyFragment(api);
          next.logical_switches = upsert(next.logical_switches, { ...sw, load_balancer: [] });
          return next;
        }),
      );
    },
  },
];

interface Match {
  route?: Route;
  params: Record<string, string>;
  allowed: string[];
}

function segments(path: string): string[] {
  return path.split('/').filter((s) => s !== '');
}

/** Finds the route of a method and URL path (params decoded). */
export function matchRoute(method: string, urlPath: string): Match {
  const parts = segments(urlPath);
  const allowed: string[] = [];
  let found: Match | null = null;
  for (const r of ROUTES) {
    const tpl = segments(r.path);
    if (tpl.length !== parts.length) continue;
    const params: Record<string, string> = {};
    let okay = true;
    for (let i = 0; i < tpl.length && okay; i++) {
      const t = tpl[i];
      if (t.startsWith('{') && t.endsWith('}')) {
        let v: string;
        try {
          v = decodeURIComponent(parts[i]);
        } catch {
          okay = false;
          break;
        }
        params[t.slice(1, -1)] = v;
      } else if (t !== parts[i]) okay = false;
    }
    if (!okay) continue;
    allowed.push(r.method);
    if (r.method === method && !found) found = { route: r, params, allowed };
  }
  return found ? { ...found, allowed } : { params: {}, allowed };
}

const MAX_BODY = 1 << 20;

function readBody(req: IncomingMessage): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (d: Buffer) => {
      size += d.length;
      if (size > MAX_BODY) {
        reject(new ApiError(413, 'XLB_TOO_LARGE', 'body', 'body: larger than 1 MiB'));
        req.destroy();
        return;
      }
      chunks.push(d);
    });
    req.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      if (text.trim() === '') return resolve(undefined);
      try {
        resolve(JSON.parse(text));
      } catch (e) {
        reject(new ApiError(400, 'XLB_BAD_REQUEST', 'body', `body: not valid JSON (${(e as Error).message})`));
      }
    });
    req.on('error', reject);
  });
}

/** JSON with bigints as numbers. */
export function toJson(v: unknown): string {
  return JSON.stringify(v, (_k, x: unknown) => (typeof x === 'bigint' ? Number(x) : x));
}

function send(res: ServerResponse, status: number, body: string, contentType: string, extra: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': contentType, 'content-length': Buffer.byteLength(body), ...extra });
  res.end(body);
}

function sendError(res: ServerResponse, e: ApiError, extra: Record<string, string> = {}): void {
  send(res, e.status, toJson(e.toBody()), 'application/json', extra);
}

export interface ApiServerOptions {
  /** Required bearer token (the TCP listener); none on the unix socket. */
  token?: string;
  /** Called for each request after it is answered (for logs). */
  onRequest?: (info: { method: string; path: string; status: number; ms: number; error?: ApiErrorBody['error'] }) => void;
  /** Called with unexpected errors (answered 500). */
  onInternalError?: (e: unknown) => void;
}

function tokenOk(header: string | undefined, token: string): boolean {
  const m = /^Bearer\s+(.+)$/i.exec(header ?? '');
  if (!m) return false;
  const a = Buffer.from(m[1].trim());
  const b = Buffer.from(token);
  return a.length === b.length && timingSafeEqual(a, b);
}

/** An http.Server answering the API (not listening yet). */
export function createApiServer(backend: ApiBackend, opts: ApiServerOptions = {}): Server {
  return createServer((req, res) => {
    const t0 = performance.now();
    const method = req.method ?? 'GET';
    const path = new URL(req.url ?? '/', 'http://xlb').pathname;
    let status = 200;
    let errBody: ApiErrorBody['error'] | undefined;
    const finish = (): void => opts.onRequest?.({ method, path, status, ms: performance.now() - t0, error: errBody });
    const fail = (e: ApiError, extra: Record<string, string> = {}): void => {
      status = e.status;
      errBody = e.toBody().error;
      sendError(res, e, extra);
      finish();
    };
    if (opts.token !== undefined && !tokenOk(req.headers.authorization, opts.token)) {
      req.resume();
      return fail(new ApiError(401, 'XLB_UNAUTHORIZED', 'authorization', 'authorization: a valid "Bearer TOKEN" header is required on the TCP listener'), {
        'www-authenticate': 'Bearer',
      });
    }
    const m = matchRoute(method, path);
    if (!m.route) {
      req.resume();
      if (m.allowed.length > 0) {
        return fail(new ApiError(405, 'XLB_METHOD', null, `${method} is not allowed on ${path} (allowed: ${m.allowed.join(', ')})`), { allow: m.allowed.join(', ') });
      }
      return fail(new ApiError(404, 'XLB_NO_ROUTE', null, `no route ${method} ${path} (see GET /openapi.json)`));
    }
    const route = m.route;
    let bodyRead: Promise<unknown> | null = null;
    const ctx: Ctx = { params: m.params, body: () => (bodyRead ??= readBody(req)) };
    route
      .handler(backend, ctx)
      .then((r) => {
        if (!bodyRead) req.resume();
        status = r.status ?? 200;
        if (r.text) send(res, status, r.text.body, r.text.contentType);
        else send(res, status, toJson(r.json ?? {}), 'application/json');
        finish();
      })
      .catch((e: unknown) => {
        if (!bodyRead) req.resume();
        if (e instanceof ApiError) return fail(e);
        opts.onInternalError?.(e);
        fail(new ApiError(500, 'XLB_INTERNAL', null, `internal error: ${(e as Error)?.message ?? String(e)}`));
      });
  });
}
