/** xlb_weights: validation, and what compile makes of weights and drains. */
import { describe, expect, it } from 'vitest';
import { compile } from '../src/compile.js';
import { validateConfig } from '../src/config.js';
import { ConfigError } from '../src/errors.js';
import { XLB } from '../src/layout.js';

const lb = (options: Record<string, unknown>): object => ({
  load_balancers: [{ name: 'w', vips: { '10.0.0.1:80': '10.1.0.1:80,10.1.0.2:80' }, options }],
  logical_switches: [{ name: 's', ports: ['xlb-t0'], load_balancer: ['w'] }],
});

function shares(table: Uint32Array): Map<number, number> {
  const m = new Map<number, number>();
  for (let i = 1; i < table.length; i++) m.set(table[i], (m.get(table[i]) ?? 0) + 1);
  return m;
}

describe('xlb_weights', () => {
  it('weights shape the Maglev shares', () => {
    const c = compile(validateConfig(lb({ xlb_weights: '10.1.0.1:80=3,10.1.0.2:80=1' })));
    const v = c.vips[0];
    const s = shares(v.table);
    const m = v.table.length - 1;
    expect(s.get(v.backends[0].id)! / m).toBeCloseTo(0.75, 2);
    expect(s.get(v.backends[1].id)! / m).toBeCloseTo(0.25, 2);
  });

  it('weight 0 drains: no slots, the entry stays with the drain flag, the id is kept', () => {
    const before = compile(validateConfig(lb({})));
    const c = compile(validateConfig(lb({ xlb_weights: '10.1.0.1:80=0' })), before.ids);
    const [drained, kept] = c.vips[0].backends;
    expect(drained.id).toBe(before.vips[0].backends[0].id);
    expect(drained.flags).toBe(XLB.BACKEND_F_DRAIN);
    expect(kept.flags).toBe(0);
    expect(shares(c.vips[0].table)).toEqual(new Map([[kept.id, c.vips[0].table.length - 1]]));
  });

  it('refuses bad syntax and unknown backends, naming the option and the value', () => {
    const bad: Array<[string, RegExp]> = [
      ['10.1.0.1:80=x', /BACKEND=WEIGHT/],
      ['10.1.0.1:80=70000', /0\.\.65535/],
      ['10.1.0.9:80=2', /"10\.1\.0\.9:80" is not a backend/],
    ];
    for (const [value, re] of bad) {
      let err: unknown;
      try {
        validateConfig(lb({ xlb_weights: value }));
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as ConfigError).field).toBe('load_balancers[0].options.xlb_weights');
      expect((err as ConfigError).message).toMatch(re);
      expect((err as ConfigError).message).toContain(value);
    }
  });

  it('selection_fields and affinity_timeout reach the VIP entry', () => {
    const c = compile(
      validateConfig({
        load_balancers: [
          { name: 'w', vips: { '10.0.0.1:80': '10.1.0.1:80' }, selection_fields: ['ip_src', 'tp_dst'], options: { affinity_timeout: 30 } },
        ],
        logical_switches: [{ name: 's', ports: ['xlb-t0'], load_balancer: ['w'] }],
      }),
    );
    expect(c.entries[0]).toMatchObject({ hashFields: (1 << 2) | (1 << 5), affinityTimeoutS: 30, flags: XLB.VIP_F_AFFINITY });
  });
});
