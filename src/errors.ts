/**
 * Error types of the xlb control plane.
 *
 * Every error xlb raises on purpose is an {@link XlbError} carrying a stable,
 * machine-readable `code`. Codes never change meaning once released; each one
 * is documented in {@link ERROR_CODES}.
 */

import { LAYOUT_VERSION } from './layout.js';

/**
 * Documentation of every stable error code, keyed by code.
 * A test checks that each error class's code appears here.
 */
export const ERROR_CODES = {
  XLB_CONFIG:
    'The desired-state configuration is invalid (bad YAML/JSON syntax, unknown key, ' +
    'bad address, port, option or reference). `field` names the offending path and ' +
    '`value` holds the offending value. Nothing was applied.',
  XLB_APPLY:
    'Applying a validated desired state to the data plane failed. `vip` names the VIP ' +
    'being programmed when known; `cause` holds the underlying error.',
  XLB_LAYOUT:
    'The maps pinned under the pin root were written by an xlb with another map layout (or ' +
    'carry no layout version). xlb refuses to reuse them rather than misread them; `pinRoot`, ' +
    '`found` and `expected` say which. `xlb reset` removes them (established connections through ' +
    'xlb are then lost).',
} as const satisfies Record<string, string>;

/** A documented error code (a key of {@link ERROR_CODES}). */
export type XlbErrorCode = keyof typeof ERROR_CODES;

/** Base class of all errors raised deliberately by xlb; `code` is stable. */
export class XlbError extends Error {
  /** Stable machine-readable error code, documented in {@link ERROR_CODES}. */
  readonly code: string;

  /**
   * @param code stable error code
   * @param message human-readable message
   * @param options standard error options (e.g. `cause`)
   */
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

/** Longest rendering of an offending value kept in a {@link ConfigError} message. */
const MAX_VALUE_CHARS = 200;

/**
 * Renders a value as JSON for an error message, never throwing (cycles,
 * BigInt, undefined and functions are handled) and truncating long output.
 */
export function describeValue(value: unknown): string {
  let text: string;
  try {
    text = value === undefined ? 'nothing' : (JSON.stringify(value) ?? String(value));
  } catch {
    text = String(value);
  }
  return text.length > MAX_VALUE_CHARS ? `${text.slice(0, MAX_VALUE_CHARS)}…` : text;
}

/**
 * Invalid configuration. The message reads `<field>: <problem> (got <JSON value>)`,
 * e.g. `load_balancers[0].protocol: must be one of "tcp", "udp" (got "sctp")`.
 */
export class ConfigError extends XlbError {
  /** Path of the offending field, e.g. `load_balancers[0].vips["172.16.255.62:8000"]`. */
  readonly field: string;
  /** What is wrong with the field, without the field name or value. */
  readonly problem: string;
  /** The offending value as found in the input. */
  readonly value: unknown;

  /**
   * @param field path of the offending field (or the config source for syntax errors)
   * @param problem what is wrong, e.g. `must be a string`
   * @param value the offending value
   */
  constructor(field: string, problem: string, value: unknown) {
    super('XLB_CONFIG', `${field}: ${problem} (got ${describeValue(value)})`);
    this.field = field;
    this.problem = problem;
    this.value = value;
  }
}

/** Applying the desired state to the data plane failed; `cause` holds the reason. */
export class ApplyError extends XlbError {
  /** The VIP (`IP:PORT` or `IP`) being programmed when the failure happened, if known. */
  readonly vip?: string;

  /**
   * @param message what failed
   * @param options `vip` being applied (optional) and the underlying `cause`
   */
  constructor(message: string, options: { vip?: string; cause?: unknown } = {}) {
    super('XLB_APPLY', options.vip === undefined ? message : `${options.vip}: ${message}`, {
      cause: options.cause,
    });
    if (options.vip !== undefined) this.vip = options.vip;
  }
}

/** Pinned maps of another layout version: refused, never misread. */
export class LayoutError extends XlbError {
  readonly pinRoot: string;
  /** The version found in the pins (null: none recorded). */
  readonly found: number | null;
  readonly expected: number;

  /**
   * @param pinRoot where the pins are
   * @param found the layout version recorded there, or null
   * @param expected the version this xlb writes (defaults to the current one)
   */
  constructor(pinRoot: string, found: number | null, expected = LAYOUT_VERSION) {
    super(
      'XLB_LAYOUT',
      `maps pinned under ${pinRoot} have layout version ${found ?? 'unknown'}, this xlb uses version ${expected}: ` +
        'refusing to reuse them; `xlb reset` removes them (connections through xlb are dropped)',
    );
    this.pinRoot = pinRoot;
    this.found = found;
    this.expected = expected;
  }
}
