/**
 * The stored form of VIP records (state-file.ts, version 3): backends as
 * parallel arrays instead of one object each. Packing and unpacking give the
 * record back (weights and drained backends included); a state directory
 * written by the previous version (2: whole records, in the snapshot and in
 * journal lines) still loads to the same state, and an xlb opened on it keeps
 * every id (an apply of the same config writes nothing) and saves version 3.
 * Kernel part: a private pin root, state dir and a veth in namespace
 * xlb-ap-<pid> (prefix xlb-ap).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { validateConfig } from '../src/config.js';
import {
  idsOf,
  JOURNAL_FILE,
  listsOf,
  loadState,
  packVipRecord,
  StateFile,
  STATE_FILE,
  STATE_VERSION,
  unpackVipRecord,
  type State,
  type StoredVipRecord,
} from '../src/state-file.js';
import { Xlb, type VipRecord } from '../src/xlb.js';

const record = (name: string, backends: VipRecord['backends']): VipRecord => ({
  id: 7,
  name,
  lb: 'lb',
  vip: '10.0.0.1:80',
  protocol: 'tcp',
  maglevSize: 97,
  selectionFields: ['ip_src'],
  affinityTimeoutS: 0,
  reject: false,
  arpOn: ['router r'],
  backends,
});

describe('stored VIP records (no kernel)', () => {
  it('pack/unpack gives the record back; defaults are left out of the stored form', () => {
    const plain = record('lb 10.0.0.1:80/tcp', [
      { id: 3, text: '10.1.0.1:80', weight: 1, drained: false },
      { id: 9, text: '10.1.0.2:80', weight: 1, drained: false },
    ]);
    const p = packVipRecord(plain);
    expect(p).toEqual({ ...record('lb 10.0.0.1:80/tcp', []), backends: undefined, backendIds: [3, 9], backendTexts: '10.1.0.1:80,10.1.0.2:80' });
    expect('backends' in p).toBe(false);
    expect('backendWeights' in p || 'backendsDrained' in p).toBe(false);
    expect(unpackVipRecord(JSON.parse(JSON.stringify(p)) as StoredVipRecord)).toEqual(plain);

    const mixed = record('lb [fd00::1]:80/tcp', [
      { id: 4, text: '[fd00::a]:80', weight: 3, drained: false },
      { id: 5, text: '[fd00::b]:80', weight: 0, drained: true },
      { id: 6, text: '[fd00::c]:80', weight: 1, drained: true },
    ]);
    const q = packVipRecord(mixed);
    expect(q.backendWeights).toEqual([3, 0, 1]);
    expect(q.backendsDrained).toEqual([1, 2]);
    expect(unpackVipRecord(JSON.parse(JSON.stringify(q)) as StoredVipRecord)).toEqual(mixed);

    const empty = record('lb 10.0.0.2:80/tcp', []);
    expect(unpackVipRecord(JSON.parse(JSON.stringify(packVipRecord(empty))) as StoredVipRecord)).toEqual(empty);
    // An old (whole) record is read as it is; a stored one whose arrays disagree is refused.
    expect(unpackVipRecord(plain)).toBe(plain);
    expect(() => unpackVipRecord({ ...p, backendIds: [3] })).toThrow(/1 backend ids but 2 texts/);
  });

  it('the snapshot and the journal store records packed; a version 2 directory (whole records) loads the same', () => {
    const dir = mkdtempSync(join(tmpdir(), 'xlb-ap-state-'));
    try {
      const desired = validateConfig({ load_balancers: [{ name: 'lb', protocol: 'tcp', vips: { '10.0.0.1:80': '10.1.0.1:80,10.1.0.2:80' } }] });
      const a = record('lb 10.0.0.1:80/tcp', [
        { id: 3, text: '10.1.0.1:80', weight: 1, drained: false },
        { id: 9, text: '10.1.0.2:80', weight: 2, drained: true },
      ]);
      const b = { ...record('lb 10.0.0.9:80/tcp', [{ id: 11, text: '10.1.0.3:80', weight: 1, drained: false }]), id: 8 };
      const state: State = { version: STATE_VERSION, pinRoot: '/p', ids: idsOf({ 'switch sw': 1 }, [a]), desired, vips: [a], ifaces: [] };
      const f = new StateFile(dir);
      f.snapshot(state);
      const rest = { lbs: [], scopes: { 'switch sw': 1 }, ifaces: [], warnings: [] };
      expect(f.append({ seq: f.nextSeq(), vipsSet: [b], vipsDel: [], ...rest })).toBe(true);
      const snap = JSON.parse(readFileSync(join(dir, STATE_FILE), 'utf8')) as { version: number; vips: Array<Record<string, unknown>>; desired: Record<string, unknown> };
      expect(snap.version).toBe(3);
      // Its texts are its list in the snapshot's desired state: not stored twice.
      expect(snap.vips[0]).toMatchObject({ backendIds: [3, 9], backendWeights: [1, 2], backendsDrained: [1] });
      expect(snap.vips[0]!.backends).toBeUndefined();
      expect(snap.vips[0]!.backendTexts).toBeUndefined();
      const line = JSON.parse(readFileSync(join(dir, JOURNAL_FILE), 'utf8')) as { vipsSet: Array<Record<string, unknown>> };
      expect(line.vipsSet[0]).toMatchObject({ backendIds: [11], backendTexts: '10.1.0.3:80' });

      const read = loadState(dir, '/p')!;
      expect(read.vips).toEqual([a, b]);
      expect(read.ids.backends).toEqual({ 'lb 10.0.0.1:80/tcp 10.1.0.1:80': 3, 'lb 10.0.0.1:80/tcp 10.1.0.2:80': 9, 'lb 10.0.0.9:80/tcp 10.1.0.3:80': 11 });

      // The same state as version 2 wrote it: whole records in the snapshot and in the journal line.
      // A record whose texts are not its VIP's list keeps them (here: a VIP the desired state lacks).
      const c = { ...record('lb 10.0.0.3:80/tcp', [{ id: 12, text: '10.1.0.4:80', weight: 1, drained: false }]), vip: '10.0.0.3:80', id: 9 };
      f.snapshot({ ...state, vips: [a, c] });
      const snap2 = JSON.parse(readFileSync(join(dir, STATE_FILE), 'utf8')) as { vips: Array<Record<string, unknown>> };
      expect(snap2.vips.map((r) => r.backendTexts)).toEqual([undefined, '10.1.0.4:80']);
      expect(loadState(dir, '/p')!.vips).toEqual([a, c]);
      // Without its list, a record stored without texts is refused (not read as backendless).
      writeFileSync(join(dir, STATE_FILE), JSON.stringify({ ...snap, desired: { ...snap.desired, load_balancers: [] } }));
      expect(() => loadState(dir, '/p')).toThrow(/no backend texts/);

      writeFileSync(join(dir, STATE_FILE), JSON.stringify({ ...snap, version: 2, vips: [a] }));
      writeFileSync(join(dir, JOURNAL_FILE), `${JSON.stringify({ ...line, vipsSet: [b] })}\n`);
      const old = loadState(dir, '/p')!;
      expect(old.version).toBe(STATE_VERSION);
      expect(old.vips).toEqual([a, b]);
      expect(old.ids).toEqual(read.ids);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('snapshot writing (no kernel)', () => {
  it('writes a state of more than one write chunk byte for byte, characters outside the BMP included', () => {
    const dir = mkdtempSync(join(tmpdir(), 'xlb-ap-chunk-'));
    try {
      // One of the two prefixes puts a surrogate pair across the 2^20-character chunk boundary.
      for (const prefix of ['', 'x']) {
        const warnings = [`${prefix}${'\u{1F600}é'.repeat(400_000)}`];
        const s: State = { version: STATE_VERSION, pinRoot: '/p', ids: idsOf({}, []), desired: validateConfig({}), vips: [], ifaces: [], warnings };
        new StateFile(dir).snapshot(s);
        expect(readFileSync(join(dir, STATE_FILE), 'utf8')).toBe(JSON.stringify({ ...s, ids: { scopes: {} }, vips: [], seq: 0 }));
        expect(loadState(dir, '/p')!.warnings).toEqual(warnings);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

const NS = `xlb-ap-${process.pid}`;
const INSTANCE = { pinRoot: `/sys/fs/bpf/xlb-ap-${process.pid}`, stateDir: `/run/xlb-ap-${process.pid}` };

describe('a version 2 state directory under a running data plane (kernel)', () => {
  const list = (i: number, shift = 0): string => Array.from({ length: 4 }, (_, j) => `10.77.${i}.${j + 1 + shift}:80`).join(',');
  const vips: Record<string, string> = {};
  for (let i = 0; i < 20; i++) vips[`10.78.0.${i + 1}:80`] = list(i);
  const cfg = (v: Record<string, string>): object => ({
    load_balancers: [{ name: 'big', protocol: 'tcp', options: { xlb_maglev_size: '97', xlb_weights: '10.77.3.2:80=3,10.77.6.4:80=0' }, vips: v }],
    logical_switches: [{ name: 'sw', ports: [`${NS}/xlb-apa`], load_balancer: ['big'] }],
  });
  let x: Xlb | null = null;

  beforeAll(() => {
    execFileSync('ip', ['netns', 'add', NS]);
    execFileSync('ip', ['-n', NS, 'link', 'add', 'xlb-apa', 'type', 'veth', 'peer', 'name', 'xlb-apb']);
    execFileSync('ip', ['-n', NS, 'link', 'set', 'xlb-apa', 'up']);
  });
  afterAll(() => {
    try {
      x?.dataplane.close();
    } finally {
      Xlb.reset(INSTANCE);
      rmSync(INSTANCE.stateDir, { recursive: true, force: true });
      execFileSync('ip', ['netns', 'del', NS]);
    }
  });

  it('loads, keeps every id (the same config writes nothing) and saves version 3', () => {
    const first = Xlb.open(INSTANCE);
    first.apply(cfg(vips));
    const changed = { ...vips, '10.78.0.5:80': list(4, 1) };
    first.apply(cfg(changed)); // a journal line
    const records = first.show().vips.map(({ stats: _s, servedBy: _b, snat: _n, hairpinSource: _h, ...r }) => ({
      ...r,
      backends: r.backends.map(({ stats: _bs, ...b }) => b),
    }));
    expect(records.find((r) => r.vip === '10.78.0.4:80')!.backends.map((b) => b.weight)).toEqual([1, 3, 1, 1]);
    expect(records.find((r) => r.vip === '10.78.0.7:80')!.backends.map((b) => [b.weight, b.drained])).toEqual([
      [1, false],
      [1, false],
      [1, false],
      [0, true],
    ]);
    // The snapshot of the first apply (records packed from the compiled VIPs) reads back as they show.
    const byName0 = <T extends { name: string }>(a: T[]): T[] => [...a].sort((p, q) => (p.name < q.name ? -1 : 1));
    const { vips: _v, ...snap0 } = loadState(INSTANCE.stateDir, INSTANCE.pinRoot)!;
    expect(snap0.version).toBe(STATE_VERSION);
    expect(byName0(loadState(INSTANCE.stateDir, INSTANCE.pinRoot)!.vips)).toEqual(byName0(records));
    const ids = { vips: { ...first.compiled!.ids.vips }, backends: { ...first.compiled!.ids.backends } };
    // The process dies (no close: the journal stays; the removed backend's deferred delete done);
    // its files rewritten as version 2 wrote them.
    first.reclaim();
    first.dataplane.close();
    const snapPath = join(INSTANCE.stateDir, STATE_FILE);
    const journalPath = join(INSTANCE.stateDir, JOURNAL_FILE);
    const snap = JSON.parse(readFileSync(snapPath, 'utf8')) as Pick<State, 'desired'> & { vips: StoredVipRecord[] };
    expect(snap.vips.every((r) => r.backendTexts === undefined)).toBe(true);
    const lists = listsOf(snap.desired);
    writeFileSync(snapPath, JSON.stringify({ ...snap, version: 2, vips: snap.vips.map((r) => unpackVipRecord(r, lists)) }));
    const lines = readFileSync(journalPath, 'utf8').trim().split('\n');
    expect(lines).toHaveLength(1);
    const line = JSON.parse(lines[0]!) as { vipsSet: StoredVipRecord[] };
    expect(line.vipsSet.every((r) => typeof r.backendTexts === 'string')).toBe(true);
    writeFileSync(journalPath, `${JSON.stringify({ ...line, vipsSet: line.vipsSet.map((r) => unpackVipRecord(r)) })}\n`);
    expect(readFileSync(snapPath, 'utf8')).toContain('"backends":[{"id":');

    const byName = <T extends { name: string }>(a: T[]): T[] => [...a].sort((p, q) => (p.name < q.name ? -1 : 1));
    const read = loadState(INSTANCE.stateDir, INSTANCE.pinRoot)!;
    expect(byName(read.vips)).toEqual(byName(records));

    x = Xlb.open(INSTANCE);
    const r = x.apply(cfg(changed));
    expect(r.summary.writes).toBe(0);
    expect({ ...x.compiled!.ids.vips }).toEqual(ids.vips);
    expect({ ...x.compiled!.ids.backends }).toEqual(ids.backends);
    // That apply saved a version 3 snapshot: packed records, read back the same.
    const now = JSON.parse(readFileSync(snapPath, 'utf8')) as { version: number; vips: Array<Record<string, unknown>> };
    expect(now.version).toBe(3);
    expect(now.vips.every((v) => v.backends === undefined && Array.isArray(v.backendIds))).toBe(true);
    expect(byName(loadState(INSTANCE.stateDir, INSTANCE.pinRoot)!.vips)).toEqual(byName(records));
  });
});
