/**
 * Sources of desired state for the daemon: a config file, the local API, and
 * OVN's Northbound database. Each holds a fragment in the config-file shape;
 * the daemon merges them (mergeFragments) and validates the result once.
 */

/** A desired-state fragment in the raw config shape (validated after merging). */
export interface StateFragment {
  load_balancers: Array<Record<string, unknown>>;
  logical_switches: Array<Record<string, unknown>>;
  logical_routers: Array<Record<string, unknown>>;
}

export type SourceName = 'api' | 'file' | 'ovn';

/** Highest precedence first: an object named in a higher source hides the same name below. */
export const SOURCE_PRECEDENCE: readonly SourceName[] = ['api', 'file', 'ovn'];

export interface Source {
  readonly name: SourceName;
  /** The source's current fragment. */
  current(): StateFragment;
  /** Registers a callback run whenever current() changes. */
  onChange(cb: () => void): void;
  start(): Promise<void>;
  stop(): Promise<void>;
}

export const emptyFragment = (): StateFragment => ({ load_balancers: [], logical_switches: [], logical_routers: [] });

/**
 * Merges fragments by precedence (SOURCE_PRECEDENCE): within each table, an
 * object (by `name`) from a higher source replaces the same name from a lower
 * one. Objects without a string name are kept as they are (validation will
 * name them).
 */
export function mergeFragments(fragments: Partial<Record<SourceName, StateFragment>>): StateFragment {
  const out = emptyFragment();
  for (const table of ['load_balancers', 'logical_switches', 'logical_routers'] as const) {
    const seen = new Set<string>();
    for (const src of SOURCE_PRECEDENCE) {
      for (const obj of fragments[src]?.[table] ?? []) {
        const name = typeof obj.name === 'string' ? obj.name : null;
        if (name !== null) {
          if (seen.has(name)) continue;
          seen.add(name);
        }
        out[table].push(obj);
      }
    }
  }
  return out;
}
