// The work of a small change among many VIPs, counted (no timing, no root):
// changing one backend of one VIP parses one VIP, walks one load balancer,
// compiles one VIP, builds the VIP-map entry of that VIP only,
// builds one Maglev table and diffs two VIP objects (the
// new one and the one it replaces), however many other VIPs and load
// balancers there are. Each counter would grow with the state size if a
// per-VIP or per-load-balancer walk crept back into that path.
import { describe, it, expect } from 'vitest';
import { compile, compileCounters, EMPTY_IDS, type Compiled } from '../src/compile.js';
import { validateConfig, validateCounters, withVip } from '../src/config.js';
import { ConfigError } from '../src/errors.js';
import { tableCounters } from '../src/maglev-pool.js';
import { MemoryStore } from '../src/store.js';
import { applyCompiled, diffCounters } from '../src/writer.js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ApiSource } from '../src/sources/api.js';
import { mergeFragments, type StateFragment } from '../src/sources/types.js';
import { matchRoute, type ApiBackend, type Mutate, type MutationResult } from '../src/daemon/api.js';

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
    // parsed: that VIP; overlap: none (its VIP keys are the same: only a backend list changed, no VIP to check against the others of its switch).
    expect(delta(before, snap())).toEqual({
      parsed: 1,
      overlap: 0,
      lbsWalked: 1,
      compiled: 1,
      // VIP-map entries: the changed VIP's only (the others' are taken as they are).
      entries: 1,
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

  it('one backend of one VIP inside one load balancer of many VIPs: one VIP validated, compiled, built; same result as a full compile', () => {
    const N = 2000;
    const lbCfg = (vips: Record<string, string>): object => ({
      load_balancers: [{ name: 'big', protocol: 'tcp', options: { xlb_maglev_size: '131' }, vips }],
      logical_switches: [{ name: 'a', ports: ['eth0'], load_balancer: ['big'] }],
    });
    const base: Record<string, string> = {};
    for (let v = 0; v < N; v++) base[`10.9.${v >> 8}.${v & 255}:80`] = backends(v >> 8, v & 255);
    const store = new MemoryStore();
    let last: Compiled | null = null;
    const step = (raw: object): Compiled => {
      const c = compile(validateConfig(raw), last?.ids ?? EMPTY_IDS, undefined, last);
      applyCompiled(store, c, IFINDEX, last?.ids ?? EMPTY_IDS, last ? { prev: last } : {});
      return (last = c);
    };
    const fresh = (raw: object, c: Compiled): void => {
      // The result is the one a compile from scratch (with the same ids) gives.
      const scratch = compile(validateConfig(JSON.parse(JSON.stringify(raw))), c.ids);
      expect(scratch.vips.map((v) => [v.id, v.name, v.backends.map((b) => [b.id, b.text]), Array.from(v.table)])).toEqual(
        c.vips.map((v) => [v.id, v.name, v.backends.map((b) => [b.id, b.text]), Array.from(v.table)]),
      );
      expect(scratch.entries).toEqual(c.entries);
    };
    step(lbCfg(base));
    // A new `vips` object with one VIP's backend list changed (what PUT /v1/load-balancers/big/vips/KEY builds).
    const key = `10.9.3.7:80`;
    const changed = { ...base, [key]: backends(3, 7, 1) };
    let before = snap();
    const one = step(lbCfg(changed));
    expect(delta(before, snap())).toEqual({ parsed: 1, overlap: 0, lbsWalked: 1, compiled: 1, entries: 1, tables: 1, diffed: 2 });
    fresh(lbCfg(changed), one);
    // Put back (the earlier object again): one VIP compiled, one entry and one table built.
    before = snap();
    const back = step(lbCfg(base));
    expect(delta(before, snap())).toMatchObject({ compiled: 1, entries: 1, tables: 1, diffed: 2 });
    fresh(lbCfg(base), back);
    // Frozen inputs (the daemon's API source keeps them so): the same frozen object again reads nothing.
    const frozen = Object.freeze({ ...base, [key]: backends(3, 7, 2) });
    step(lbCfg(frozen));
    before = snap();
    step(lbCfg(frozen));
    expect(delta(before, snap())).toEqual({ parsed: 0, overlap: 0, lbsWalked: 0, compiled: 0, entries: 0, tables: 0, diffed: 0 });
    // withVip (what PUT .../vips/{vip} builds) on that frozen object: not one key of the copy read.
    const edited = withVip(frozen, '10.9.4.4:80', backends(4, 4, 1));
    before = snap();
    let keysRead = validateCounters.keysRead;
    const viaEdit = step(lbCfg(edited));
    expect(validateCounters.keysRead - keysRead).toBe(0);
    expect(delta(before, snap())).toEqual({ parsed: 1, overlap: 0, lbsWalked: 1, compiled: 1, entries: 1, tables: 1, diffed: 2 });
    fresh(lbCfg(edited), viaEdit);
    // A bad list through withVip: the same error (field and value), nothing kept; the next edit still right.
    const badEdit = withVip(edited, '10.9.4.5:80', '10.0.0.1:80,10.0.0.1:80');
    expect(() => validateConfig(lbCfg(badEdit))).toThrow('load_balancers[0].vips["10.9.4.5:80"]: duplicate backend "10.0.0.1:80"');
    const edited2 = withVip(edited, '10.9.4.5:80', backends(4, 5, 2));
    keysRead = validateCounters.keysRead;
    const viaEdit2 = step(lbCfg(edited2));
    expect(validateCounters.keysRead - keysRead).toBe(0);
    fresh(lbCfg(edited2), viaEdit2);
    // A change in place (same object, a value replaced) is seen: the input is compared, not trusted.
    const mutable = { ...base };
    step(lbCfg(mutable));
    mutable['10.9.1.1:80'] = backends(1, 1, 3);
    before = snap();
    const inPlace = step(lbCfg(mutable));
    expect(delta(before, snap())).toMatchObject({ parsed: 1, compiled: 1, entries: 1, tables: 1 });
    fresh(lbCfg(mutable), inPlace);
    // A bad backend in the big load balancer: its field and value named, nothing of it kept.
    const bad = { ...mutable, '10.9.2.2:80': '10.0.0.1:80,10.0.0.300:80' };
    expect(() => validateConfig(lbCfg(bad))).toThrow(ConfigError);
    expect(() => validateConfig(lbCfg(bad))).toThrow('load_balancers[0].vips["10.9.2.2:80"]');
    expect(() => validateConfig(lbCfg(bad))).toThrow('10.0.0.300:80');
    // The next good change after the error is still one VIP's work, and right.
    const after = { ...mutable, '10.9.2.2:80': backends(2, 2, 1) };
    before = snap();
    const good = step(lbCfg(after));
    expect(delta(before, snap())).toMatchObject({ parsed: 1, compiled: 1, entries: 1, tables: 1 });
    fresh(lbCfg(after), good);
  });

  it("the API's PUT of one VIP: its candidate shares every unchanged object, and validating it reads one VIP", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'xlb-xc2-api-'));
    try {
      // The daemon's write path without the kernel: the real route and ApiSource; mutate validates
      // the merged candidate (as Daemon.mutate does before Xlb.apply) and commits it.
      const api = new ApiSource({ stateDir: dir });
      await api.start();
      let validated: ReturnType<typeof validateConfig> | null = null;
      const backend: ApiBackend = {
        state: () => {
          throw new Error('not used');
        },
        stats: () => ({}),
        metrics: async () => ({ contentType: 'text/plain', body: '' }),
        mutate: async (_t, fn: Mutate): Promise<MutationResult> => {
          const candidate: StateFragment = fn(api.current(), mergeFragments({ api: api.current() }));
          validated = validateConfig(mergeFragments({ api: candidate }));
          api.commit(candidate);
          return { apply: { writes: 0, unchanged: false, durationMs: 0 } };
        },
      };
      const vips: Record<string, string> = {};
      for (let v = 0; v < 500; v++) vips[`10.8.${v >> 8}.${v & 255}:80`] = backends(v >> 8, v & 255);
      api.commit({
        load_balancers: [
          { name: 'big', protocol: 'tcp', vips },
          { name: 'other', protocol: 'tcp', vips: { '10.7.0.1:80': backends(7, 1) } },
        ],
        logical_switches: [{ name: 'a', ports: ['eth0'], load_balancer: ['big', 'other'] }],
        logical_routers: [],
      });
      validateConfig(mergeFragments({ api: api.current() }));
      const put = async (key: string, list: string): Promise<void> => {
        const m = matchRoute('PUT', `/v1/load-balancers/big/vips/${encodeURIComponent(key)}`);
        await m.route!.handler(backend, { params: m.params, body: async () => ({ backends: list }) });
      };
      const before = api.current();
      const counted = snap();
      await put('10.8.1.2:80', backends(1, 2, 1));
      const after = api.current();
      // Only the load balancer written is a new object; its other VIPs are the same strings.
      expect(after.load_balancers[1]).toBe(before.load_balancers[1]);
      expect(after.logical_switches[0]).toBe(before.logical_switches[0]);
      const was = before.load_balancers[0]!.vips as Record<string, string>;
      const now = after.load_balancers[0]!.vips as Record<string, string>;
      expect(now).not.toBe(was);
      expect(Object.keys(now).filter((k) => now[k] !== was[k])).toEqual(['10.8.1.2:80']);
      expect(Object.isFrozen(now)).toBe(true);
      expect(delta(counted, snap())).toMatchObject({ parsed: 1 });
      expect(validated!.load_balancers[0]!.vips['10.8.1.2:80']).toBe(backends(1, 2, 1));
      // Validating what is committed again reads nothing (the frozen objects are the ones validated).
      const again = snap();
      validateConfig(mergeFragments({ api: api.current() }));
      expect(delta(again, snap())).toMatchObject({ parsed: 0, overlap: 0 });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
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
