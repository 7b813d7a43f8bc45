/**
 * The file source: a config file (YAML or JSON, the `xlb apply` shape),
 * watched for changes. Editors usually write a new file and rename it over the
 * old one, so the directory is watched (not the file's inode) and events are
 * debounced. An edit that does not parse or validate on its own is rejected
 * with the named error (field and value) logged; the last good fragment stays
 * current, so the daemon keeps serving the last good state.
 */
import { watch, readFileSync, type FSWatcher } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';
import type { Logger } from 'pino';
import { parseConfigText } from '../config.js';
import { ConfigError } from '../errors.js';
import { emptyFragment, type Source, type StateFragment } from './types.js';

export interface FileSourceOptions {
  path: string;
  /** Quiet time after the last change event before the file is read again (default 150 ms). */
  debounceMs?: number;
  logger?: Logger;
}

/** The problem of a rejected edit, as logged and kept in lastError. */
export interface FileRejection {
  field: string;
  message: string;
  value?: unknown;
}

export class FileSource implements Source {
  readonly name = 'file' as const;
  readonly path: string;
  private readonly debounceMs: number;
  private readonly log: Logger | undefined;
  private fragment: StateFragment = emptyFragment();
  private lastText: string | null = null;
  private watcher: FSWatcher | null = null;
  private timer: NodeJS.Timeout | null = null;
  private readonly listeners: Array<() => void> = [];
  /** The last rejected edit (null once a good edit is read). */
  lastError: FileRejection | null = null;

  constructor(opts: FileSourceOptions) {
    this.path = resolve(opts.path);
    this.debounceMs = opts.debounceMs ?? 150;
    this.log = opts.logger;
  }

  current(): StateFragment {
    return JSON.parse(JSON.stringify(this.fragment)) as StateFragment;
  }

  onChange(cb: () => void): void {
    this.listeners.push(cb);
  }

  /**
   * Reads the file (a bad file at start is an error: there is no last good
   * state to keep) and starts watching its directory.
   * @throws ConfigError naming the field, or the read error
   */
  async start(): Promise<void> {
    const text = readFileSync(this.path, 'utf8');
    this.fragment = toFragment(parseConfigText(text, this.path));
    this.lastText = text;
    const base = basename(this.path);
    this.watcher = watch(dirname(this.path), { persistent: false }, (_event, filename) => {
      if (filename !== null && filename !== base) return;
      this.schedule();
    });
    this.watcher.on('error', (e) => this.log?.error({ err: e, file: this.path }, 'config watch failed'));
  }

  async stop(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.watcher?.close();
    this.watcher = null;
  }

  /** Reads the file again now (also what SIGHUP does). */
  reload(): void {
    let text: string;
    try {
      text = readFileSync(this.path, 'utf8');
    } catch (e) {
      const err = e as NodeJS.ErrnoException;
      // A rename in progress, or the file removed: keep serving what we have.
      this.log?.warn({ file: this.path, code: err.code }, 'config file unreadable; the last good state stays');
      return;
    }
    if (text === this.lastText) return;
    this.lastText = text;
    try {
      this.fragment = toFragment(parseConfigText(text, this.path));
    } catch (e) {
      if (!(e instanceof ConfigError)) throw e;
      this.lastError = { field: e.field, message: e.message, value: e.value };
      this.log?.error(
        { source: 'file', file: this.path, code: e.code, field: e.field, value: e.value, error: e.message },
        `config rejected: ${e.message}; the last good state stays`,
      );
      return;
    }
    this.lastError = null;
    this.log?.info({ source: 'file', file: this.path }, 'config file changed');
    for (const cb of this.listeners) cb();
  }

  private schedule(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = null;
      this.reload();
    }, this.debounceMs);
  }
}

/** A validated state as a fragment (normalized objects validate again unchanged). */
function toFragment(d: object): StateFragment {
  return JSON.parse(JSON.stringify(d)) as StateFragment;
}
