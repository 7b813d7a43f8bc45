/**
 * Removing many VIPs at once, in the kernel (BPF_PROG_TEST_RUN): their Maglev
 * tables go with one outer-map batch write per size class (one RCU grace
 * period each, counted by Dataplane.outerWrites), not one delete per VIP. The
 * slots then hold the class's placeholder (an empty table, M = 0), which the
 * data plane treats as no table (never a backend) and the control plane reads
 * as absent, on the incremental path and on the full diff of a process that
 * re-adopts the pins. Removed VIPs stop being balanced, kept ones keep
 * balancing, a removed VIP comes back, and the old inner maps are freed.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { Dataplane, MAGLEV_MAPS } from '../src/dataplane.js';
import { compile, emptyCompiled, EMPTY_IDS, type Compiled } from '../src/compile.js';
import { validateConfig } from '../src/config.js';
import { applyCompiled } from '../src/writer.js';
import { decodeVipVal, encodeU32, encodeVip4Key, maglevClass, IPPROTO, LAYOUT } from '../src/layout.js';
import { parseIPv4 } from '../src/addr.js';
import { buildPacket, parsePacket } from './helpers/packet.js';
import { closeAndUnpin } from './helpers/bpf.js';
import { ct4Clear } from './helpers/ct.js';
import { TIMEOUT_S } from './helpers/e2e.js';

const PIN_ROOT = `/sys/fs/bpf/xlb-xrm-${process.pid}`;
const IFINDEX = 1;
/** Removed VIPs: GONE0 of size class 0, GONE1 of class 1 (300 in all); KEEP stay. */
const GONE0 = 250;
const GONE1 = 50;
const KEEP = 20;
const M0 = 1021;
const M1 = 4093;

const addr = (lb: number, i: number): string => `10.${80 + lb}.${i >> 8}.${i & 255}`;
const backends = (lb: number, i: number): string[] => [`10.9${lb}.${i & 255}.1`, `10.9${lb}.${i & 255}.2`];

function lbOf(lb: number, name: string, n: number, m: number): object {
  const vips: Record<string, string> = {};
  for (let i = 0; i < n; i++) vips[`${addr(lb, i)}:80`] = backends(lb, i).map((b) => `${b}:8080`).join(',');
  return { name, vips, options: { xlb_maglev_size: String(m) } };
}

function config(withGone: boolean): object {
  const lbs = [lbOf(0, 'keep', KEEP, M0), ...(withGone ? [lbOf(1, 'gone0', GONE0, M0), lbOf(2, 'gone1', GONE1, M1)] : [])];
  return { load_balancers: lbs, logical_switches: [{ name: 'sw', ports: ['lo'], load_balancer: lbs.map((l) => (l as { name: string }).name) }] };
}

let dp: Dataplane;
const ifindex = new Map([['lo', IFINDEX]]);
const vipKey = (a: string): Buffer => encodeVip4Key({ addr: parseIPv4(a), port: 80, proto: IPPROTO.tcp, scope: 1 });

/** Where 24 new TCP flows to `a` go: backend addresses, or 'none' when the packet is not rewritten. */
function destinations(a: string, base: number): Set<string> {
  ct4Clear(dp);
  const seen = new Set<string>();
  for (let f = 0; f < 24; f++) {
    const data = buildPacket({ proto: 'tcp', src: `192.168.${(base + f) >> 8 & 255}.${(base + f) & 255}`, dst: a, sport: 20000 + f, dport: 80 });
    const p = parsePacket(dp.native.progTestRun(dp.progs.xlb_xdp_ingress, { data, ifindex: IFINDEX }).data);
    seen.add(p.dst === a ? 'none' : p.dst);
  }
  return seen;
}

function expectBalanced(lb: number, i: number, base: number): void {
  expect([...destinations(addr(lb, i), base)].sort(), addr(lb, i)).toEqual(backends(lb, i).sort());
}

function expectNotBalanced(lb: number, i: number, base: number): void {
  expect([...destinations(addr(lb, i), base)], addr(lb, i)).toEqual(['none']);
}

/** The inner map id in VIP id's slot of size class cls (null: empty slot). */
function slot(cls: number, vipId: number): number | null {
  const v = dp.native.mapLookup(dp.maps[MAGLEV_MAPS[cls]!], encodeU32(vipId), 4);
  return v ? v.readUInt32LE(0) : null;
}

/** memlock of the map with this id, or null once it is freed. */
function memlockOf(id: number): number | null {
  let fd: number;
  try {
    fd = dp.native.mapGetFdById(id);
  } catch {
    return null;
  }
  try {
    return Number(/memlock:\s+(\d+)/.exec(readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'))![1]);
  } finally {
    dp.native.closeFd(fd);
  }
}

beforeAll(() => {
  Dataplane.removePins(PIN_ROOT);
  dp = Dataplane.open({ pinRoot: PIN_ROOT });
});

afterAll(() => closeAndUnpin(dp, PIN_ROOT));

describe('removing many VIPs', () => {
  let last: Compiled = emptyCompiled();
  const applyInc = (withGone: boolean): ReturnType<typeof applyCompiled> => {
    const c = compile(validateConfig(config(withGone)), last.ids ?? EMPTY_IDS, undefined, last);
    const s = applyCompiled(dp.store(), c, ifindex, last.ids ?? EMPTY_IDS, { prev: last, prevIfindexes: [IFINDEX] });
    last = c;
    return s;
  };
  const goneVips = (c: Compiled) => c.vips.filter((v) => v.name.includes('gone'));
  let removed: Array<{ id: number; cls: number; inner: number; memlock: number }> = [];
  /** The VIP entry of the first removed VIP, as the writer wrote it. */
  let entry0: Buffer | null = null;

  it('costs one batch write per size class, whatever the number of VIPs', () => {
    applyInc(true);
    expect(goneVips(last)).toHaveLength(GONE0 + GONE1);
    for (const i of [0, GONE0 - 1]) expectBalanced(1, i, 0);
    expectBalanced(2, GONE1 - 1, 0);
    removed = goneVips(last).map((v) => {
      const cls = maglevClass(v.table);
      const inner = slot(cls, v.id)!;
      return { id: v.id, cls, inner, memlock: memlockOf(inner)! };
    });
    expect(new Set(removed.map((r) => r.cls))).toEqual(new Set([0, 1]));
    expect(removed.every((r) => r.memlock > 0)).toBe(true);
    entry0 = dp.native.mapLookup(dp.maps.xlb_vip4, vipKey(addr(1, 0)), LAYOUT.xlb_vip_val.size);
    expect(entry0).not.toBeNull();
    const before = { ...dp.outerWrites };
    const t0 = performance.now();
    const s = applyInc(false);
    const ms = performance.now() - t0;
    expect(s.tables.removed).toBe(GONE0 + GONE1);
    expect(s.vips.removed).toBe(GONE0 + GONE1);
    // One batch per size class (classes 0 and 1); no one-slot write or delete.
    expect(dp.outerWrites.batches - before.batches).toBe(2);
    expect(dp.outerWrites.single - before.single).toBe(0);
    console.log(`removed ${GONE0 + GONE1} VIPs in ${ms.toFixed(0)} ms (${dp.outerWrites.batches - before.batches} outer-map batches)`);
  });

  it('removed VIPs stop being balanced, kept ones keep balancing', () => {
    for (const i of [0, 1, GONE0 - 1]) expectNotBalanced(1, i, 100);
    for (const i of [0, GONE1 - 1]) expectNotBalanced(2, i, 100);
    for (let i = 0; i < KEEP; i++) expectBalanced(0, i, 200);
  });

  it('a placeholder slot is no table: the data plane never picks a backend from it', () => {
    // Put back the first removed VIP's entry by hand: it names a slot that holds the placeholder.
    const r = removed.find((x) => x.id === decodeVipVal(entry0!).vipId)!;
    expect(slot(r.cls, r.id)).not.toBeNull();
    expect(slot(r.cls, r.id)).not.toBe(r.inner);
    const key = vipKey(addr(1, 0));
    const value = entry0!;
    dp.native.mapUpdate(dp.maps.xlb_vip4, key, value, 0);
    try {
      expect([...destinations(addr(1, 0), 300)]).toEqual(['none']);
    } finally {
      dp.native.mapDelete(dp.maps.xlb_vip4, key);
    }
  });

  it('the control plane reads a placeholder slot as absent, also after re-adopting the pins', () => {
    const held = dp.store().tableClasses();
    for (const r of removed) {
      expect(held.has(r.id), `VIP id ${r.id}`).toBe(false);
      expect(dp.store().readTable(r.id)).toBeNull();
    }
    expect(held.size).toBe(KEEP);
    // A restarted daemon: the full diff against the kernel finds nothing to do.
    const again = Dataplane.open({ pinRoot: PIN_ROOT });
    try {
      expect(again.loaded).toBe(false);
      expect(again.store().tableClasses().size).toBe(KEEP);
      const s = applyCompiled(again.store(), last, ifindex, last.ids);
      expect(s.writes).toBe(0);
      expect(s.tables.removed).toBe(0);
    } finally {
      again.close();
    }
  });

  it('frees the removed tables', async () => {
    const deadline = Date.now() + TIMEOUT_S * 1000;
    let left = removed.filter((r) => memlockOf(r.inner) !== null);
    while (left.length > 0 && Date.now() < deadline) {
      await new Promise((res) => setTimeout(res, 50));
      left = left.filter((r) => memlockOf(r.inner) !== null);
    }
    expect(left.map((r) => r.inner)).toEqual([]);
    // The placeholders (one per class) are all that the removed slots hold.
    expect(new Set(removed.map((r) => slot(r.cls, r.id))).size).toBe(2);
  });

  it('a removed VIP comes back, and the full diff removes many in one batch per class too', () => {
    applyInc(true);
    for (const i of [0, GONE0 - 1]) expectBalanced(1, i, 400);
    expectBalanced(2, 0, 400);
    expect(dp.store().tableClasses().size).toBe(KEEP + GONE0 + GONE1);
    for (let i = 0; i < KEEP; i += 7) expectBalanced(0, i, 500);
    // Remove them again, this time diffing against the kernel (no previous compile).
    const c = compile(validateConfig(config(false)), last.ids);
    const before = { ...dp.outerWrites };
    const s = applyCompiled(dp.store(), c, ifindex, last.ids);
    last = c;
    expect(s.tables.removed).toBe(GONE0 + GONE1);
    expect(dp.outerWrites.batches - before.batches).toBe(2);
    expect(dp.outerWrites.single - before.single).toBe(0);
    expectNotBalanced(1, 3, 600);
    expectBalanced(0, 3, 600);
    expect(dp.store().tableClasses().size).toBe(KEEP);
  });
});
