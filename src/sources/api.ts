/**
 * The API source: the load balancers, switches and routers written through the
 * daemon's local HTTP API. It is the highest-precedence source (api > file >
 * ovn): an object it holds hides the object of the same name in the config
 * file and in OVN. Its fragment is persisted in the state directory
 * (`api-state.json`) so that a daemon restart serves the same objects.
 *
 * The daemon validates every candidate fragment (merged with the other
 * sources) and applies it before calling commit(): what is committed has been
 * served.
 */
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { emptyFragment, type Source, type StateFragment } from './types.js';

export const API_STATE_FILE = 'api-state.json';
const API_STATE_VERSION = 1;

export interface ApiSourceOptions {
  /** Directory of the persisted fragment (the xlb state dir). */
  stateDir: string;
}

/** A deep copy through JSON (fragments are plain JSON data). */
export function cloneFragment(f: StateFragment): StateFragment {
  return JSON.parse(JSON.stringify(f)) as StateFragment;
}

/**
 * A copy of the fragment's tables (arrays), sharing their objects: the API's
 * objects are frozen and replaced, never changed in place (copy-on-write), so
 * an unchanged load balancer keeps its identity — validation and compile then
 * skip it, and a changed one's unchanged VIP values are the same strings.
 */
export function copyFragment(f: StateFragment): StateFragment {
  return { load_balancers: [...f.load_balancers], logical_switches: [...f.logical_switches], logical_routers: [...f.logical_routers] };
}

/** Freezes a JSON value and what it holds (objects already frozen are taken as frozen through; a `vips` map holds strings only: not walked). */
export function freezeDeep<T>(v: T, key = ''): T {
  if (typeof v !== 'object' || v === null || Object.isFrozen(v)) return v;
  Object.freeze(v);
  if (key === 'vips' && !Array.isArray(v)) return v;
  for (const [k, x] of Object.entries(v)) freezeDeep(x, k);
  return v;
}

export class ApiSource implements Source {
  readonly name = 'api' as const;
  readonly path: string;
  private fragment: StateFragment = emptyFragment();
  private readonly listeners: Array<() => void> = [];

  constructor(opts: ApiSourceOptions) {
    this.path = join(opts.stateDir, API_STATE_FILE);
  }

  /** The committed fragment: its tables copied, its objects (frozen) shared. */
  current(): StateFragment {
    return copyFragment(this.fragment);
  }

  onChange(cb: () => void): void {
    this.listeners.push(cb);
  }

  /** Loads the persisted fragment, if any. */
  async start(): Promise<void> {
    if (!existsSync(this.path)) return;
    let parsed: { version?: number; fragment?: Partial<StateFragment> };
    try {
      parsed = JSON.parse(readFileSync(this.path, 'utf8')) as typeof parsed;
    } catch (e) {
      throw new Error(`API state ${this.path} is not valid JSON (${(e as Error).message}); move it away to start without it`, { cause: e });
    }
    if (parsed.version !== API_STATE_VERSION || typeof parsed.fragment !== 'object' || parsed.fragment === null) {
      throw new Error(`API state ${this.path} has an unknown layout (version ${String(parsed.version)}); move it away to start without it`);
    }
    const f = parsed.fragment;
    this.fragment = freezeDeep({
      load_balancers: Array.isArray(f.load_balancers) ? f.load_balancers : [],
      logical_switches: Array.isArray(f.logical_switches) ? f.logical_switches : [],
      logical_routers: Array.isArray(f.logical_routers) ? f.logical_routers : [],
    });
  }

  async stop(): Promise<void> {
    /* nothing held open */
  }

  /** Replaces the fragment (already validated and served), persists it and notifies. Its objects are frozen (kept as they are, not copied). */
  commit(next: StateFragment): void {
    this.fragment = freezeDeep(copyFragment(next));
    mkdirSync(join(this.path, '..'), { recursive: true, mode: 0o700 });
    const tmp = `${this.path}.tmp`;
    writeFileSync(tmp, JSON.stringify({ version: API_STATE_VERSION, fragment: this.fragment }, null, 2), { mode: 0o600 });
    renameSync(tmp, this.path);
    for (const cb of this.listeners) cb();
  }
}
