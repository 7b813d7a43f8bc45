// The work of a small change among many VIPs, counted (no timing, no root):
// changing one backend of one VIP parses one VIP, walks one load balancer,
// compiles one VIP, builds the VIP-map entries of that load balancer only,
// builds one Maglev table and diffs two VIP objects (the
// new one and the one it replaces), however many other VIPs and load
// balancers there are. Each counter would grow with the state size if a
// per-VIP or per-load-balancer walk crept back into that path.
import { describe, it, expect } from 'vitest';
import { compile, compileCounters, EMPTY_IDS, type Compiled } from '../src/compile.js';
import { ConfigError, validateConfig, validateCounters } from '../src/config.js';
import { tableCounters } from '../src/maglev-pool.js';
import { MemoryStore } from '../src/store.js';
import { applyCompiled, diffCounters } from '../src/writer.js';

const LBS = 40;
const VIPS_PER_LB = 25;
const BACKENDS = 8;
const IFINDEX = new Map([
  ['eth0', 2],
  ['eth1', 3],
]);

const backends = (lb: number, v: number, shift = 0): string =>
  Array.from({ length: BACKENDS }, (_, j) => `10.${100 + lb}.${v}.${j + 1 + shift}:8080`).join(',');

/** LBS load balancers of VIPS_PER_LB VIPs: half on one switch, half on another (two per switch at least, so overlap checks apply). */
function config(vips: Array<Record<string, string>>): object {
  const lbs = vips.map((v, i) => ({ name: `lb${i}`, protocol: 'tcp', options: { xlb_maglev_size: '131' }, vips: v }));
  return {
    load_balancers: lbs,
    logical_switches: [
      { name: 'a', ports: ['eth0'], load_balancer: lbs.slice(0, LBS / 2).map((l) => l.name) },
      { name: 'b', ports: ['eth1'], load_balancer: lbs.slice(LBS / 2).map((l) => l.name) },
    ],
  };
}

const snap = (): Record<string, number> => ({
  parsed: validateCounters.vipsParsed,
  overlap: validateCounters.overlapChecked,
  lbsWalked: compileCounters.lbsWalked,
  compiled: compileCounters.vipsCompiled,
  entries: compileCounters.entriesBuilt,
  tables: tableCounters.built,
  diffed: diffCounters.vipsWalked,
});
const delta = (a: Record<string, number>, b: Record<string, number>): Record<string, number> =>
  Object.fromEntries(Object.keys(a).map((k) => [k, b[k]! - a[k]!]));

describe('control-plane work of a small change', () => {
  it(`one backend of one VIP among ${LBS * VIPS_PER_LB} VIPs in ${LBS} load balancers: counters stay at 1`, () => {
    // Inputs the caller keeps (as a control plane does): unchanged load balancers are the same objects.
    const vips = Array.from({ length: LBS }, (_, l) =>
      Object.fromEntries(Array.from({ length: VIPS_PER_LB }, (_, v) => [`10.${l}.0.${v + 1}:80`, backends(l, v)])),
    );
    const store = new MemoryStore();
    const step = (raw: object, last: Compiled | null): { c: Compiled; s: ReturnType<typeof applyCompiled> } => {
      const c = compile(validateConfig(raw), last?.ids ?? EMPTY_IDS, undefined, last);
      const s = applyCompiled(store, c, IFINDEX, last?.ids ?? EMPTY_IDS, last ? { prev: last } : {});
      return { c, s };
    };
    const first = step(config(vips), null);
    expect(first.c.vips.length).toBe(LBS * VIPS_PER_LB);
    // The same input again: nothing parsed, walked, compiled, built or written.
    let before = snap();
    const again = step(config(vips), first.c);
    expect(delta(before, snap())).toEqual({ parsed: 0, overlap: 0, lbsWalked: 0, compiled: 0, entries: 0, tables: 0, diffed: 0 });
    expect(again.s.writes).toBe(0);

    // One backend of one VIP of one load balancer (a new object for that load balancer only).
    const changed = [...vips];
    changed[17] = { ...vips[17], '10.17.0.9:80': backends(17, 8, 1) };
    before = snap();
    const one = step(config(changed), again.c);
    // parsed: that VIP; overlap: the VIPs of that load balancer are checked again against the others of its switch.
    expect(delta(before, snap())).toEqual({
      parsed: 1,
      overlap: VIPS_PER_LB,
      lbsWalked: 1,
      compiled: 1,
      // VIP-map entries: those of the changed load balancer only (the others' are taken as they are).
      entries: VIPS_PER_LB,
      tables: 1,
      diffed: 2,
    });
    expect(one.s.tables).toEqual({ swapped: 1, patched: 1, removed: 0 });
    expect(one.s.backends).toEqual({ written: 1, removed: 1 });

    // The result is the one a compile from scratch (with the same ids) gives.
    const scratch = compile(validateConfig(config(changed)), one.c.ids);
    expect(scratch.vips.map((v) => [v.id, v.name, Array.from(v.table)])).toEqual(one.c.vips.map((v) => [v.id, v.name, Array.from(v.table)]));
    expect(scratch.entries).toEqual(one.c.entries);
  });

  it('an overlap that a changed load balancer brings on its switch is still found (checked again only for it)', () => {
    const vips = Array.from({ length: 4 }, (_, l) => ({ [`10.${l}.0.1:80`]: backends(l, 0) }));
    const cfg = (v: Array<Record<string, string>>): object => ({
      load_balancers: v.map((x, i) => ({ name: `ov${i}`, vips: x })),
      logical_switches: [{ name: 'ov', ports: ['eth0'], load_balancer: ['ov0', 'ov1', 'ov2', 'ov3'] }],
    });
    validateConfig(cfg(vips));
    // ov1 now also serves ov3's VIP (with other backends): the full check's error, naming both.
    const clash = [...vips];
    clash[1] = { ...vips[1], '10.3.0.1:80': backends(9, 9) };
    expect(() => validateConfig(cfg(clash))).toThrow(ConfigError);
    expect(() => validateConfig(cfg(clash))).toThrow('load balancers "ov1" and "ov3" both define VIP 10.3.0.1:80/tcp on logical switch "ov"');
    // A change without a clash passes, and counts only the changed load balancer's VIPs.
    const fine = [...vips];
    fine[1] = { ...vips[1], '10.1.0.2:80': backends(1, 1) };
    validateConfig(cfg(vips));
    const before = validateCounters.overlapChecked;
    validateConfig(cfg(fine));
    expect(validateCounters.overlapChecked - before).toBe(2);
    // Moving a VIP from one load balancer to another in one change is no clash.
    const moved = [...fine];
    moved[0] = {};
    moved[2] = { ...vips[2], '10.0.0.1:80': backends(0, 0) };
    expect(() => validateConfig(cfg(moved))).not.toThrow();
  });
});
