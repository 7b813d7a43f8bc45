/**
 * A small RFC 7047 (OVSDB) JSON-RPC client: list_dbs, get_schema, transact,
 * and `monitor` into an in-memory replica that survives reconnects.
 *
 * - Remotes: `unix:PATH`, `tcp:HOST:PORT`, or a comma-separated list of them.
 *   Members are tried in list order, starting with the first; after a session
 *   ends the next member is tried first (as ovn-nbctl/ovsdb-cs do). Every
 *   member failing in a row counts as one round; after each failed round the
 *   client waits a backoff delay (initial → ×2 per round → max) before the
 *   next one. A session that gets as far as a synced monitor resets the backoff.
 * - A session: connect (with a timeout) → get_schema (the database must
 *   exist) → monitor (when tables are given). The monitor's initial contents
 *   REPLACE the replica (a full resync on every reconnect), then 'connected'
 *   and a 'change' with `resync: true` are emitted. `update` notifications are
 *   applied in place and emit 'change' with the tables they touched.
 * - Keepalive: the server's echo requests are answered; the client sends its
 *   own echo every `echoIntervalMs` and drops the session (→ reconnect) when
 *   no reply comes within `echoTimeoutMs`.
 * - Values are decoded with the schema (see datum.ts): uuids → strings,
 *   sets → arrays, maps → records, optional scalars → value or null.
 *
 * 'error' events are only emitted while someone listens (so an unobserved
 * client never throws from an event); every OvsdbError names the remote and
 * the operation that failed.
 */
import { EventEmitter } from 'node:events';
import type net from 'node:net';
import { decodeRow, type OvsdbRow, type OvsdbSchema } from './datum.js';
import { JsonStreamSplitter } from './framing.js';
import { connectRemote, parseRemoteList, type OvsdbRemote } from './remote.js';

/** An OVSDB operation that failed; `remote` is null when no session existed. */
export class OvsdbError extends Error {
  constructor(
    readonly remote: string | null,
    readonly op: string,
    reason: string,
    /** The server's `error` / `details`, when it sent one. */
    readonly detail?: unknown,
  ) {
    super(`OVSDB ${op}${remote === null ? '' : ` on ${remote}`}: ${reason}`);
    this.name = 'OvsdbError';
  }
}

/** Tables to monitor: table → columns (null: every column of the schema). */
export type MonitorSpec = Record<string, readonly string[] | null>;

export interface OvsdbClientOptions {
  /** `unix:PATH`, `tcp:HOST:PORT`, or a comma-separated list of them. */
  remote: string;
  /** Database name, e.g. `OVN_Northbound` or `Open_vSwitch`. */
  database: string;
  /** Tables/columns to mirror; none: no monitor (requests only). */
  monitor?: MonitorSpec;
  /** Connect timeout per attempt (default 5000 ms). */
  connectTimeoutMs?: number;
  /** Timeout of list_dbs/get_schema/monitor/transact (default 30000 ms). */
  requestTimeoutMs?: number;
  /** Interval of the client's echo keepalive; 0 disables it (default 5000 ms). */
  echoIntervalMs?: number;
  /** How long an echo may go unanswered before the session is dropped (default 10000 ms). */
  echoTimeoutMs?: number;
  /** Delay after the first failed round of remotes (default 100 ms). */
  backoffInitialMs?: number;
  /** Largest delay between rounds (default 8000 ms). */
  backoffMaxMs?: number;
}

export interface OvsdbConnectedInfo {
  remote: string;
  /** True when this is not the first session (the replica was resynced). */
  resync: boolean;
}

export interface OvsdbDisconnectedInfo {
  remote: string;
  reason: string;
}

export interface OvsdbChangeInfo {
  /** Tables whose rows changed (all monitored tables on a resync). */
  tables: string[];
  /** True for a full resync (initial contents replaced the replica). */
  resync: boolean;
}

/** The client's events. */
export interface OvsdbClientEvents {
  connected: [info: OvsdbConnectedInfo];
  disconnected: [info: OvsdbDisconnectedInfo];
  change: [info: OvsdbChangeInfo];
  error: [err: OvsdbError];
}

interface Pending {
  method: string;
  resolve: (v: unknown) => void;
  reject: (e: OvsdbError) => void;
  timer: NodeJS.Timeout;
}

/** One socket's lifetime. */
interface Session {
  socket: net.Socket;
  remote: OvsdbRemote;
  splitter: JsonStreamSplitter;
  /** get_schema + monitor done. */
  established: boolean;
  /** Why we closed it (set before destroy). */
  closeReason: string | null;
  monitorId: string;
  echoTimer: NodeJS.Timeout | null;
  echoPending: boolean;
  /** Updates that arrived before the monitor reply was processed. */
  early: unknown[];
}

type JsonObj = Record<string, unknown>;

const isObj = (v: unknown): v is JsonObj => typeof v === 'object' && v !== null && !Array.isArray(v);

function errText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

export class OvsdbClient extends EventEmitter<OvsdbClientEvents> {
  readonly database: string;
  readonly remotes: readonly OvsdbRemote[];
  private readonly monitorSpec: MonitorSpec | null;
  private readonly connectTimeoutMs: number;
  private readonly requestTimeoutMs: number;
  private readonly echoIntervalMs: number;
  private readonly echoTimeoutMs: number;
  private readonly backoffInitialMs: number;
  private readonly backoffMaxMs: number;

  private session: Session | null = null;
  private readonly pending = new Map<number | string, Pending>();
  private nextId = 1;
  private monitorSeq = 0;
  private started = false;
  private stopped = false;
  private remoteIndex = 0;
  private failuresInRow = 0;
  private backoffMs: number;
  private retryTimer: NodeJS.Timeout | null = null;
  private sessions = 0;
  private lastFailure: string | null = null;
  private schemaValue: OvsdbSchema | null = null;
  private replica = new Map<string, Map<string, OvsdbRow>>();
  private syncedOnce = false;
  private closedWaiters: Array<() => void> = [];

  /** @throws OvsdbRemoteError for an unusable remote string */
  constructor(opts: OvsdbClientOptions) {
    super();
    this.database = opts.database;
    this.remotes = parseRemoteList(opts.remote);
    this.monitorSpec = opts.monitor ?? null;
    this.connectTimeoutMs = opts.connectTimeoutMs ?? 5000;
    this.requestTimeoutMs = opts.requestTimeoutMs ?? 30_000;
    this.echoIntervalMs = opts.echoIntervalMs ?? 5000;
    this.echoTimeoutMs = opts.echoTimeoutMs ?? 10_000;
    this.backoffInitialMs = opts.backoffInitialMs ?? 100;
    this.backoffMaxMs = opts.backoffMaxMs ?? 8000;
    this.backoffMs = this.backoffInitialMs;
  }

  /** The remote of the established session, or null. */
  get remote(): string | null {
    return this.session?.established === true ? this.session.remote.text : null;
  }

  /** True while a session is established. */
  get connected(): boolean {
    return this.session?.established === true;
  }

  /** True once the replica holds a full copy (it is kept across disconnects). */
  get synced(): boolean {
    return this.syncedOnce;
  }

  /** The last failure (connect or session), for messages. */
  get lastError(): string | null {
    return this.lastFailure;
  }

  /** The schema of the current (or last) session. */
  get schema(): OvsdbSchema | null {
    return this.schemaValue;
  }

  /** The mirrored rows of a monitored table, by uuid (empty if unknown). */
  table(name: string): ReadonlyMap<string, OvsdbRow> {
    return this.replica.get(name) ?? new Map();
  }

  /** Starts connecting (and reconnecting until stop()). */
  start(): void {
    if (this.started) return;
    this.started = true;
    this.attempt();
  }

  /**
   * Resolves once a session is established (the replica is synced when
   * monitoring). @throws OvsdbError after `timeoutMs`, naming the remotes and the last failure
   */
  ready(timeoutMs = 10_000): Promise<void> {
    if (this.connected) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const onConnected = (): void => {
        clearTimeout(timer);
        resolve();
      };
      const timer = setTimeout(() => {
        this.off('connected', onConnected);
        const names = this.remotes.map((r) => r.text).join(',');
        reject(new OvsdbError(names, 'connect', `no session within ${timeoutMs} ms${this.lastFailure === null ? '' : ` (last failure: ${this.lastFailure})`}`));
      }, timeoutMs);
      this.once('connected', onConnected);
    });
  }

  /** Closes the session and stops reconnecting. The replica is kept. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.retryTimer !== null) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    const s = this.session;
    if (s === null) return;
    const closed = new Promise<void>((resolve) => this.closedWaiters.push(resolve));
    s.closeReason = 'client stopped';
    s.socket.destroy();
    await closed;
  }

  /**
   * Sends a JSON-RPC request on the current session.
   * @throws OvsdbError when not connected, on a server error, or after the timeout
   */
  request(method: string, params: unknown[], timeoutMs: number = this.requestTimeoutMs): Promise<unknown> {
    const s = this.session;
    if (s === null || s.socket.destroyed || s.socket.connecting) {
      const where = s?.remote.text ?? this.remotes.map((r) => r.text).join(',');
      return Promise.reject(new OvsdbError(where, method, 'not connected'));
    }
    return this.send(s, method, params, timeoutMs);
  }

  /** RFC 7047 list_dbs. */
  async listDbs(): Promise<string[]> {
    const result = await this.request('list_dbs', []);
    if (!Array.isArray(result) || !result.every((x) => typeof x === 'string')) {
      throw new OvsdbError(this.remote, 'list_dbs', `unexpected result ${JSON.stringify(result)}`);
    }
    return result;
  }

  /** RFC 7047 get_schema (default: this client's database). */
  async getSchema(db: string = this.database): Promise<OvsdbSchema> {
    const result = await this.request('get_schema', [db]);
    return this.checkSchema(result, this.session?.remote.text ?? null);
  }

  /**
   * RFC 7047 transact on this client's database. Operations are raw OVSDB
   * JSON (`{op: 'insert', table, row}`…); results are returned raw.
   * @throws OvsdbError naming the first failed operation (index, op, table) and the server's error
   */
  async transact(ops: readonly JsonObj[]): Promise<unknown[]> {
    const remote = this.session?.remote.text ?? null;
    const result = await this.request('transact', [this.database, ...ops]);
    if (!Array.isArray(result)) throw new OvsdbError(remote, 'transact', `unexpected result ${JSON.stringify(result)}`);
    result.forEach((r, i) => {
      if (isObj(r) && typeof r.error === 'string') {
        const op = ops[i];
        const what = op === undefined ? `commit (result ${i})` : `operation ${i} (${String(op.op)}${op.table === undefined ? '' : ` ${String(op.table)}`})`;
        throw new OvsdbError(remote, 'transact', `${what} failed: ${r.error}${typeof r.details === 'string' ? `: ${r.details}` : ''}`, r);
      }
    });
    return result;
  }

  // ---------------------------------------------------------------------------
  // Sessions

  private emitError(err: OvsdbError): void {
    if (this.listenerCount('error') > 0) this.emit('error', err);
  }

  private attempt(): void {
    if (this.stopped) return;
    const remote = this.remotes[this.remoteIndex % this.remotes.length] as OvsdbRemote;
    const socket = connectRemote(remote);
    socket.setNoDelay?.(true);
    const s: Session = {
      socket,
      remote,
      splitter: new JsonStreamSplitter(),
      established: false,
      closeReason: null,
      monitorId: `xlb-${++this.monitorSeq}`,
      echoTimer: null,
      echoPending: false,
      early: [],
    };
    this.session = s;
    const connectTimer = setTimeout(() => this.drop(s, `connect timed out after ${this.connectTimeoutMs} ms`), this.connectTimeoutMs);
    socket.once('connect', () => {
      clearTimeout(connectTimer);
      void this.setUp(s);
    });
    socket.on('data', (chunk: Buffer) => this.onData(s, chunk));
    socket.on('error', (err) => {
      if (s.closeReason === null) s.closeReason = errText(err);
    });
    socket.on('close', () => {
      clearTimeout(connectTimer);
      this.onClose(s);
    });
  }

  /** Closes a session with a reason (kept for the 'disconnected' event). */
  private drop(s: Session, reason: string): void {
    if (s.closeReason === null) s.closeReason = reason;
    s.socket.destroy();
  }

  private async setUp(s: Session): Promise<void> {
    try {
      const schema = this.checkSchema(await this.send(s, 'get_schema', [this.database], this.requestTimeoutMs), s.remote.text);
      let initial: unknown = null;
      let request: JsonObj | null = null;
      if (this.monitorSpec !== null) {
        request = this.monitorRequest(schema, s.remote.text);
        initial = await this.send(s, 'monitor', [this.database, s.monitorId, request], this.requestTimeoutMs);
      }
      if (this.session !== s || s.socket.destroyed) return;
      this.schemaValue = schema;
      if (request !== null) {
        const replica = new Map<string, Map<string, OvsdbRow>>();
        for (const table of Object.keys(request)) replica.set(table, new Map());
        this.applyUpdates(replica, initial, s.remote.text);
        for (const u of s.early) this.applyUpdates(replica, u, s.remote.text);
        s.early = [];
        this.replica = replica;
      }
      s.established = true;
      const resync = this.sessions > 0;
      this.sessions++;
      this.syncedOnce = true;
      this.failuresInRow = 0;
      this.backoffMs = this.backoffInitialMs;
      this.lastFailure = null;
      this.startEcho(s);
      this.emit('connected', { remote: s.remote.text, resync });
      if (request !== null) this.emit('change', { tables: Object.keys(request), resync: true });
    } catch (err) {
      if (s.socket.destroyed) return; // already reported by onClose
      const e = err instanceof OvsdbError ? err : new OvsdbError(s.remote.text, 'monitor', errText(err));
      this.emitError(e);
      this.drop(s, e.message);
    }
  }

  private checkSchema(result: unknown, remote: string | null): OvsdbSchema {
    if (!isObj(result) || typeof result.name !== 'string' || !isObj(result.tables)) {
      throw new OvsdbError(remote, 'get_schema', `unexpected schema ${JSON.stringify(result).slice(0, 200)}`);
    }
    return result as unknown as OvsdbSchema;
  }

  /** The monitor request for the spec; unknown tables/columns are refused. */
  private monitorRequest(schema: OvsdbSchema, remote: string): JsonObj {
    const req: JsonObj = {};
    for (const [table, columns] of Object.entries(this.monitorSpec ?? {})) {
      const t = schema.tables[table];
      if (t === undefined) throw new OvsdbError(remote, 'monitor', `table ${table} is not in the ${schema.name} schema`);
      const cols = columns ?? Object.keys(t.columns);
      for (const c of cols) {
        if (t.columns[c] === undefined) throw new OvsdbError(remote, 'monitor', `column ${table}.${c} is not in the ${schema.name} schema`);
      }
      req[table] = { columns: [...cols], select: { initial: true, insert: true, delete: true, modify: true } };
    }
    return req;
  }

  private onClose(s: Session): void {
    if (s.echoTimer !== null) clearInterval(s.echoTimer);
    s.echoTimer = null;
    const reason = s.closeReason ?? 'connection closed by the server';
    for (const [id, p] of this.pending) {
      clearTimeout(p.timer);
      this.pending.delete(id);
      p.reject(new OvsdbError(s.remote.text, p.method, `connection lost: ${reason}`));
    }
    if (this.session === s) this.session = null;
    const wasEstablished = s.established;
    s.established = false;
    if (wasEstablished) {
      this.emit('disconnected', { remote: s.remote.text, reason });
    } else if (!this.stopped) {
      this.lastFailure = `${s.remote.text}: ${reason}`;
      this.emitError(new OvsdbError(s.remote.text, 'connect', reason));
    }
    const waiters = this.closedWaiters;
    this.closedWaiters = [];
    for (const w of waiters) w();
    if (this.stopped) return;
    // Next member first; a full round of failures waits the backoff.
    this.remoteIndex = (this.remoteIndex + 1) % this.remotes.length;
    let delay = 0;
    if (!wasEstablished) {
      this.failuresInRow++;
      if (this.failuresInRow % this.remotes.length === 0) {
        delay = this.backoffMs;
        this.backoffMs = Math.min(this.backoffMs * 2, this.backoffMaxMs);
      }
    } else {
      this.failuresInRow = 0;
    }
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      this.attempt();
    }, delay);
  }

  private startEcho(s: Session): void {
    if (this.echoIntervalMs <= 0) return;
    s.echoTimer = setInterval(() => {
      if (s.echoPending || s.socket.destroyed) return;
      s.echoPending = true;
      this.send(s, 'echo', ['xlb-keepalive'], this.echoTimeoutMs).then(
        () => {
          s.echoPending = false;
        },
        (err: unknown) => {
          s.echoPending = false;
          if (err instanceof OvsdbError && err.detail === 'timeout') {
            this.emitError(err);
            this.drop(s, `no echo reply within ${this.echoTimeoutMs} ms`);
          }
        },
      );
    }, this.echoIntervalMs);
    s.echoTimer.unref?.();
  }

  private send(s: Session, method: string, params: unknown[], timeoutMs: number): Promise<unknown> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new OvsdbError(s.remote.text, method, `no reply within ${timeoutMs} ms`, 'timeout'));
        // A session that cannot even answer its setup is dead.
        if (!s.established) this.drop(s, `${method} timed out after ${timeoutMs} ms`);
      }, timeoutMs);
      this.pending.set(id, { method, resolve, reject, timer });
      s.socket.write(JSON.stringify({ method, params, id }));
    });
  }

  private onData(s: Session, chunk: Buffer): void {
    let messages: unknown[];
    try {
      messages = s.splitter.push(chunk);
    } catch (err) {
      const e = new OvsdbError(s.remote.text, 'read', `protocol error: ${errText(err)}`);
      this.emitError(e);
      this.drop(s, e.message);
      return;
    }
    for (const msg of messages) {
      if (s.socket.destroyed) return;
      try {
        this.onMessage(s, msg);
      } catch (err) {
        const e = err instanceof OvsdbError ? err : new OvsdbError(s.remote.text, 'update', errText(err));
        this.emitError(e);
        this.drop(s, e.message);
        return;
      }
    }
  }

  private onMessage(s: Session, msg: unknown): void {
    if (!isObj(msg)) throw new OvsdbError(s.remote.text, 'read', `unexpected message ${JSON.stringify(msg).slice(0, 200)}`);
    if (typeof msg.method === 'string') {
      const params = Array.isArray(msg.params) ? msg.params : [];
      if (msg.id !== null && msg.id !== undefined) {
        // A request from the server.
        if (msg.method === 'echo') s.socket.write(JSON.stringify({ result: params, error: null, id: msg.id }));
        else s.socket.write(JSON.stringify({ result: null, error: `unknown method ${msg.method}`, id: msg.id }));
        return;
      }
      if (msg.method === 'update' && params[0] === s.monitorId) {
        if (!s.established) {
          s.early.push(params[1]);
          return;
        }
        const tables = this.applyUpdates(this.replica, params[1], s.remote.text);
        if (tables.length > 0) this.emit('change', { tables, resync: false });
      }
      return;
    }
    const id = msg.id;
    if (typeof id !== 'number' && typeof id !== 'string') return;
    const p = this.pending.get(id);
    if (p === undefined) return;
    this.pending.delete(id);
    clearTimeout(p.timer);
    if (msg.error !== null && msg.error !== undefined) {
      const e = msg.error;
      const text = typeof e === 'string' ? e : isObj(e) && typeof e.error === 'string' ? e.error : JSON.stringify(e);
      const details = isObj(e) && typeof e.details === 'string' ? `: ${e.details}` : '';
      p.reject(new OvsdbError(s.remote.text, p.method, `server error: ${text}${details}`, e));
    } else {
      p.resolve(msg.result);
    }
  }

  /** Applies RFC 7047 `<table-updates>`; returns the tables touched. */
  private applyUpdates(replica: Map<string, Map<string, OvsdbRow>>, updates: unknown, remote: string): string[] {
    if (!isObj(updates)) throw new OvsdbError(remote, 'update', `table-updates must be an object, got ${JSON.stringify(updates)}`);
    const touched: string[] = [];
    for (const [table, rows] of Object.entries(updates)) {
      if (!isObj(rows)) throw new OvsdbError(remote, 'update', `table-update of ${table} must be an object`);
      let t = replica.get(table);
      if (t === undefined) {
        t = new Map();
        replica.set(table, t);
      }
      const columns = this.schemaValue?.tables[table]?.columns;
      for (const [uuid, update] of Object.entries(rows)) {
        if (!isObj(update)) throw new OvsdbError(remote, 'update', `row-update ${table} ${uuid} must be an object`);
        const next = update.new;
        if (next === undefined || next === null) {
          t.delete(uuid);
          continue;
        }
        const decoded = decodeRow(next, columns);
        const prev = update.old !== undefined ? t.get(uuid) : undefined;
        t.set(uuid, { ...(prev ?? {}), ...decoded, _uuid: uuid });
      }
      touched.push(table);
    }
    return touched;
  }
}
