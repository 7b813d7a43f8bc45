// Every error class of src/errors.ts carries a documented, unique code.
import { describe, it, expect } from 'vitest';
import * as errors from '../src/errors.js';
import { ApplyError, ConfigError, LayoutError, ERROR_CODES, XlbError, describeValue } from '../src/errors.js';

/** Plausible constructor arguments per exported XlbError subclass. */
const SAMPLES: Record<string, () => XlbError> = {
  ConfigError: () => new ConfigError('load_balancers[0].protocol', 'must be one of "tcp", "udp"', 'sctp'),
  LayoutError: () => new LayoutError('/sys/fs/bpf/xlb', 0),
  ApplyError: () => new ApplyError('bpf_map_update_elem failed', { vip: 'lb1 172.16.255.62:8000/tcp', cause: new Error('E2BIG') }),
};

/** Exported classes that extend XlbError (not XlbError itself). */
const subclasses = (Object.entries(errors) as Array<[string, unknown]>).filter(
  (e): e is [string, new (...args: never[]) => XlbError] =>
    typeof e[1] === 'function' && e[1] !== XlbError && (e[1] as { prototype: unknown }).prototype instanceof XlbError,
);

describe('error codes', () => {
  it('finds the error classes', () => {
    expect(subclasses.map(([n]) => n).sort()).toEqual(expect.arrayContaining(['ApplyError', 'ConfigError']));
  });

  it.each(subclasses.map(([n]) => n))('%s has a sample and a documented code', (name) => {
    const make = SAMPLES[name];
    expect(make, `add a sample instance of ${name} to SAMPLES in test/errors.test.ts`).toBeDefined();
    const err = make!();
    expect(err).toBeInstanceOf(errors[name as keyof typeof errors] as unknown as typeof XlbError);
    expect(err).toBeInstanceOf(XlbError);
    expect(err).toBeInstanceOf(Error);
    expect(err.name).toBe(name);
    expect(typeof err.code).toBe('string');
    expect(err.code in ERROR_CODES, `${name}.code ${err.code} is not in ERROR_CODES`).toBe(true);
    expect(err.code).toMatch(/^XLB_[A-Z_]+$/);
  });

  it('gives each class its own code', () => {
    const codes = subclasses.map(([n]) => SAMPLES[n]!().code);
    expect(new Set(codes).size).toBe(codes.length);
  });

  it('documents each code once, with a non-trivial description', () => {
    const keys = Object.keys(ERROR_CODES);
    expect(new Set(keys).size).toBe(keys.length);
    for (const [code, doc] of Object.entries(ERROR_CODES)) {
      expect(code).toMatch(/^XLB_[A-Z_]+$/);
      expect(doc.length, code).toBeGreaterThan(20);
    }
  });
});

describe('error messages', () => {
  it('ConfigError reads "<field>: <problem> (got <value>)" and keeps its parts', () => {
    const e = new ConfigError('load_balancers[0].protocol', 'must be one of "tcp", "udp"', 'sctp');
    expect(e.message).toBe('load_balancers[0].protocol: must be one of "tcp", "udp" (got "sctp")');
    expect(e.field).toBe('load_balancers[0].protocol');
    expect(e.problem).toBe('must be one of "tcp", "udp"');
    expect(e.value).toBe('sctp');
    expect(e.code).toBe('XLB_CONFIG');
    expect(new ConfigError('x', 'is required', undefined).message).toBe('x: is required (got nothing)');
  });

  it('ApplyError prefixes the VIP and keeps the cause', () => {
    const cause = new Error('ENOSPC');
    const e = new ApplyError('map full', { vip: 'lb1 10.0.0.1:80/tcp', cause });
    expect(e.message).toBe('lb1 10.0.0.1:80/tcp: map full');
    expect(e.vip).toBe('lb1 10.0.0.1:80/tcp');
    expect(e.cause).toBe(cause);
    expect(e.code).toBe('XLB_APPLY');
    const bare = new ApplyError('no VIP');
    expect(bare.message).toBe('no VIP');
    expect(bare.vip).toBeUndefined();
  });

  it('describeValue never throws and truncates', () => {
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    expect(describeValue(cyclic)).toBe('[object Object]');
    expect(describeValue(10n)).toBe('10');
    expect(describeValue(undefined)).toBe('nothing');
    expect(describeValue('x'.repeat(500))).toBe(`"${'x'.repeat(199)}…`);
  });
});
