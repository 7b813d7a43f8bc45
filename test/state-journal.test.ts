/**
 * xlb's bookkeeping on disk: a snapshot plus a journal of what each apply
 * changed (src/state-file.ts). A small change appends a small line, not the
 * whole state; the state read back (snapshot + journal, as after a crash) is
 * the state the process holds; stale lines (a crash between a snapshot and
 * the journal's removal) and a torn last line are skipped; close folds the
 * journal into a snapshot. Kernel part: a private pin root, state dir and a
 * veth in namespace xcp-<pid> (prefix xcp).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { appendFileSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { validateConfig } from '../src/config.js';
import { desiredDelta, idsOf, JOURNAL_FILE, loadState, StateFile, STATE_FILE, type State } from '../src/state-file.js';
import { Xlb } from '../src/xlb.js';

const lbs = (vips: Array<Record<string, string>>, extra: object = {}): object => ({
  load_balancers: vips.map((v, i) => ({ name: `lb${i}`, protocol: 'tcp', vips: v, ...extra })),
  logical_switches: [{ name: 'sw', ports: ['eth0'], load_balancer: vips.map((_, i) => `lb${i}`) }],
});
const list = (i: number, shift = 0): string => Array.from({ length: 4 }, (_, j) => `10.9.${i}.${j + 1 + shift}:80`).join(',');

describe('state file (no kernel)', () => {
  it('desiredDelta names only what changed, and replaying it gives the new desired state', () => {
    const v = Array.from({ length: 3 }, (_, l) => Object.fromEntries(Array.from({ length: 50 }, (_, k) => [`10.${l}.0.${k + 1}:80`, list(k)])));
    const a = validateConfig(lbs(v));
    const changed = [...v];
    changed[1] = { ...v[1], '10.1.0.7:80': list(7, 1) };
    delete (changed[1] as Record<string, string>)['10.1.0.9:80'];
    changed[2] = { ...v[2], '10.2.9.9:80': list(1) };
    const b = validateConfig(lbs(changed));
    const d = desiredDelta(a, b);
    expect(d.lbs.map((x) => [x.name, x.vips])).toEqual([
      ['lb1', { '10.1.0.7:80': list(7, 1), '10.1.0.9:80': null }],
      ['lb2', { '10.2.9.9:80': list(1) }],
    ]);
    expect(d.lbOrder).toBeUndefined();
    expect(d.logical_switches).toBeUndefined();
    // An option changes: the load balancer is listed with its options and no VIP; a removed one is null.
    const c = validateConfig({ ...lbs(changed.slice(0, 2), { options: { reject: 'true' } }), logical_switches: [] });
    const d2 = desiredDelta(b, c);
    expect(d2.lbs.map((x) => [x.name, x.lb?.options, x.vips])).toEqual([
      ['lb0', { reject: 'true' }, {}],
      ['lb1', { reject: 'true' }, {}],
      ['lb2', undefined, undefined],
    ]);
    expect(d2.logical_switches).toEqual([]);

    // Replayed on the snapshot of `a`: `b`, then `c`.
    const dir = mkdtempSync(join(tmpdir(), 'xcp-state-'));
    try {
      const base: State = { version: 2, pinRoot: '/p', ids: idsOf({}, []), desired: a, vips: [], ifaces: [] };
      const f = new StateFile(dir);
      f.snapshot(base);
      const rest = { vipsSet: [], vipsDel: [], scopes: { 'switch sw': 1 }, ifaces: [], warnings: [] };
      expect(f.append({ seq: f.nextSeq(), ...d, ...rest })).toBe(true);
      expect(JSON.parse(JSON.stringify(loadState(dir, '/p')!.desired))).toEqual(JSON.parse(JSON.stringify(b)));
      expect(f.append({ seq: f.nextSeq(), ...d2, ...rest })).toBe(true);
      expect(JSON.parse(JSON.stringify(loadState(dir, '/p')!.desired))).toEqual(JSON.parse(JSON.stringify(c)));
      // A torn last line is ignored.
      appendFileSync(join(dir, JOURNAL_FILE), '{"seq": 3, "lbs": [');
      expect(JSON.parse(JSON.stringify(loadState(dir, '/p')!.desired))).toEqual(JSON.parse(JSON.stringify(c)));
      // Lines already in the snapshot (a crash before the journal was removed) are skipped.
      const journal = readFileSync(join(dir, JOURNAL_FILE), 'utf8');
      f.snapshot({ ...base, desired: c });
      writeFileSync(join(dir, JOURNAL_FILE), journal);
      expect(JSON.parse(JSON.stringify(loadState(dir, '/p')!.desired))).toEqual(JSON.parse(JSON.stringify(c)));
      // Another pin root's state is not read.
      expect(loadState(dir, '/q')).toBeNull();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

const NS = `xcp-${process.pid}`;
const INSTANCE = { pinRoot: `/sys/fs/bpf/xlb-xcp-${process.pid}`, stateDir: `/run/xlb-xcp-${process.pid}` };
const VIPS = 500;

describe('state journal of Xlb.apply (kernel)', () => {
  let x: Xlb | null = null;
  const base: Record<string, string> = {};
  for (let i = 0; i < VIPS; i++) base[`10.88.${i >> 8}.${i & 255}:80`] = list(i & 255);
  const cfg = (vips: Record<string, string>): object => ({
    load_balancers: [{ name: 'big', protocol: 'tcp', options: { xlb_maglev_size: '97' }, vips }],
    logical_switches: [{ name: 'sw', ports: [`${NS}/xcpa`], load_balancer: ['big'] }],
  });

  beforeAll(() => {
    execFileSync('ip', ['netns', 'add', NS]);
    execFileSync('ip', ['-n', NS, 'link', 'add', 'xcpa', 'type', 'veth', 'peer', 'name', 'xcpb']);
    execFileSync('ip', ['-n', NS, 'link', 'set', 'xcpa', 'up']);
  });
  afterAll(() => {
    try {
      x?.close();
    } finally {
      Xlb.reset(INSTANCE);
      rmSync(INSTANCE.stateDir, { recursive: true, force: true });
      execFileSync('ip', ['netns', 'del', NS]);
    }
  });

  it('a backend change appends a small line; the state read back is the state served; close folds it', () => {
    x = Xlb.open(INSTANCE);
    x.apply(cfg(base));
    const snapPath = join(INSTANCE.stateDir, STATE_FILE);
    const journalPath = join(INSTANCE.stateDir, JOURNAL_FILE);
    const snapBytes = statSync(snapPath).size;
    expect(existsSync(journalPath)).toBe(false);

    const changed = { ...base, '10.88.1.7:80': list(7, 1) };
    x.apply(cfg(changed));
    // One line: that VIP's record and its new backend list, not the other VIPs.
    const lines = readFileSync(journalPath, 'utf8').trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]!.length).toBeLessThan(snapBytes / 50);
    const d = JSON.parse(lines[0]!) as { vipsSet: Array<{ name: string }>; lbs: Array<{ vips: Record<string, string> }> };
    expect(d.vipsSet.map((r) => r.name)).toEqual(['big 10.88.1.7:80/tcp']);
    expect(d.lbs[0]!.vips).toEqual({ '10.88.1.7:80': list(7, 1) });
    // A VIP removed, one added.
    const next = { ...changed, '10.88.9.9:80': list(3) };
    delete (next as Record<string, string>)['10.88.0.3:80'];
    x.apply(cfg(next));
    expect(readFileSync(journalPath, 'utf8').trim().split('\n')).toHaveLength(2);

    // As a process that died now would find it (snapshot + journal): the same desired state and VIP records.
    const read = loadState(INSTANCE.stateDir, INSTANCE.pinRoot)!;
    const served = x.show().vips.map(({ stats: _s, servedBy: _b, snat: _n, hairpinSource: _h, ...r }) => ({
      ...r,
      backends: r.backends.map(({ stats: _bs, ...b }) => b),
    }));
    const byName = (a: Array<{ name: string }>): Array<{ name: string }> => [...a].sort((p, q) => (p.name < q.name ? -1 : 1));
    expect(byName(read.vips)).toEqual(byName(served));
    expect(JSON.parse(JSON.stringify(read.desired))).toEqual(JSON.parse(JSON.stringify(x.desired)));
    expect(read.ids.vips).toEqual({ ...x.compiled!.ids.vips });
    expect(read.ids.backends).toEqual({ ...x.compiled!.ids.backends });

    // A second process on the same pins and state keeps every id (nothing to rewrite).
    const again = Xlb.open(INSTANCE);
    try {
      const r = again.apply(cfg(next));
      expect(r.summary.writes).toBe(0);
    } finally {
      again.dataplane.close();
    }

    x.close();
    x = null;
    expect(existsSync(journalPath)).toBe(false);
    expect(byName(loadState(INSTANCE.stateDir, INSTANCE.pinRoot)!.vips)).toEqual(byName(served));
  });
});
