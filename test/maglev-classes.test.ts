/**
 * Maglev tables of every size class in the kernel (BPF_PROG_TEST_RUN): each
 * table is the single value of its own inner map (4 bytes per slot) under the
 * outer map of its size class; the VIP entry names the class. Tables of each
 * class balance; a table whose size changes class moves (the VIP entries name
 * the new class, the old table goes), on the incremental path and on the
 * full diff against the kernel; the kernel holds 4 bytes per slot.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { Dataplane, MAGLEV_MAPS } from '../src/dataplane.js';
import { compile, emptyCompiled, EMPTY_IDS, type Compiled } from '../src/compile.js';
import { validateConfig } from '../src/config.js';
import { applyCompiled } from '../src/writer.js';
import { decodeVipVal, encodeVip4Key, encodeVipVal, encodeU32, maglevClass, maglevClassWords, IPPROTO, LAYOUT, XLB } from '../src/layout.js';
import { parseIPv4 } from '../src/addr.js';
import { buildPacket, parsePacket } from './helpers/packet.js';
import { closeAndUnpin } from './helpers/bpf.js';
import { ct4Clear } from './helpers/ct.js';

const PIN_ROOT = `/sys/fs/bpf/xlb-xtb-cls-${process.pid}`;
const IFINDEX = 1;
/** One prime M per size class (class 5 holds the largest M the config accepts). */
const SIZES = [1021, 4093, 16381, 65521, 262139, 1000003];
const vip = (i: number): string => `10.0.9.${i + 1}`;
const backends = (i: number): string[] => [`10.9.${i}.1`, `10.9.${i}.2`];

let dp: Dataplane;

function config(sizes: number[]): object {
  return {
    load_balancers: sizes.map((m, i) => ({
      name: `lb${i}`,
      vips: { [`${vip(i)}:80`]: backends(i).map((b) => `${b}:8080`).join(',') },
      options: { xlb_maglev_size: String(m) },
    })),
    logical_switches: [{ name: 'sw', ports: ['lo'], load_balancer: sizes.map((_, i) => `lb${i}`) }],
  };
}

/** Where `flows` new TCP flows to VIP i go (destination addresses; 'drop' when not rewritten). */
function destinations(i: number, flows: number, base: number): Map<string, number> {
  const seen = new Map<string, number>();
  for (let f = 0; f < flows; f++) {
    const data = buildPacket({ proto: 'tcp', src: `192.168.${(base + f) >> 8 & 255}.${(base + f) & 255}`, dst: vip(i), sport: 20000 + f, dport: 80 });
    const r = dp.native.progTestRun(dp.progs.xlb_xdp_ingress, { data, ifindex: IFINDEX });
    const p = parsePacket(r.data);
    const to = p.dst === vip(i) ? 'drop' : p.dst;
    seen.set(to, (seen.get(to) ?? 0) + 1);
  }
  return seen;
}

const vipKey = (i: number): Buffer => encodeVip4Key({ addr: parseIPv4(vip(i)), port: 80, proto: IPPROTO.tcp, scope: 1 });

/** The size class and M the kernel's VIP entry of VIP i names. */
function entryTable(i: number): { cls: number; m: number } {
  const v = dp.native.mapLookup(dp.maps.xlb_vip4, vipKey(i), LAYOUT.xlb_vip_val.size);
  if (!v) throw new Error(`no VIP entry for ${vip(i)}`);
  return { cls: decodeVipVal(v).tableClass!, m: decodeVipVal(v).tableM! };
}

function expectBalanced(c: Compiled, sizes: number[], base: number): void {
  const held = dp.store().tableClasses();
  sizes.forEach((m, i) => {
    const v = c.vips.find((x) => x.name.includes(vip(i)))!;
    const cls = maglevClass(m + 1);
    expect(held.get(v.id), `VIP ${vip(i)} M ${m}`).toEqual([cls]);
    expect(entryTable(i), `VIP ${vip(i)} entry`).toEqual({ cls, m });
    expect(Array.from(dp.store().readTable(v.id, cls)!)).toEqual(Array.from(v.table));
    const seen = destinations(i, 48, base);
    expect(seen.has('drop'), `VIP ${vip(i)} M ${m}: ${[...seen]}`).toBe(false);
    expect([...seen.keys()].sort(), `VIP ${vip(i)} M ${m}`).toEqual(backends(i).sort());
  });
}

function clearConntrack(): void {
  ct4Clear(dp);
}

beforeAll(() => {
  Dataplane.removePins(PIN_ROOT);
  dp = Dataplane.open({ pinRoot: PIN_ROOT });
});

afterAll(() => closeAndUnpin(dp, PIN_ROOT));

describe('Maglev size classes', () => {
  let last: Compiled | null = null;
  const ifindex = new Map([['lo', IFINDEX]]);
  const applyInc = (sizes: number[]): Compiled => {
    const c = compile(validateConfig(config(sizes)), last?.ids ?? EMPTY_IDS, undefined, last);
    applyCompiled(dp.store(), c, ifindex, last?.ids ?? EMPTY_IDS, { prev: last ?? emptyCompiled(), prevIfindexes: [IFINDEX] });
    last = c;
    return c;
  };

  it('a table of each class balances new flows over its backends', () => {
    expect(SIZES.map((m) => maglevClass(m + 1))).toEqual([0, 1, 2, 3, 4, 5]);
    expectBalanced(applyInc(SIZES), SIZES, 0);
  });

  it('the copy of M in the VIP entry only hints: a stale or missing one picks the same backends', () => {
    const flows = (i: number): string[] =>
      Array.from({ length: 32 }, (_, f) => {
        const data = buildPacket({ proto: 'tcp', src: `192.168.9.${f + 1}`, dst: vip(i), sport: 40000 + f, dport: 80 });
        return parsePacket(dp.native.progTestRun(dp.progs.xlb_xdp_ingress, { data, ifindex: IFINDEX }).data).dst;
      });
    for (const i of [0, 2, 5]) {
      const right = dp.native.mapLookup(dp.maps.xlb_vip4, vipKey(i), LAYOUT.xlb_vip_val.size)!;
      clearConntrack();
      const want = flows(i);
      expect(new Set(want).size, `VIP ${vip(i)}`).toBe(2);
      for (const hint of [0, 7, SIZES[i]! - 2, maglevClassWords(i) + 5]) {
        dp.native.mapUpdate(dp.maps.xlb_vip4, vipKey(i), encodeVipVal({ ...decodeVipVal(right), tableM: hint }));
        clearConntrack();
        expect(flows(i), `VIP ${vip(i)} hint ${hint}`).toEqual(want);
      }
      dp.native.mapUpdate(dp.maps.xlb_vip4, vipKey(i), right);
      clearConntrack();
    }
  });

  it('holds 4 bytes per slot: one element of the class size, in an mmap-able array', () => {
    const n = dp.native;
    MAGLEV_MAPS.forEach((outer, cls) => {
      const d = n.mapDump(dp.maps[outer], 4, 4);
      expect(d.count, outer).toBe(1);
      const fd = n.mapGetFdById(d.values.readUInt32LE(0));
      try {
        const info = n.mapInfo(fd);
        expect(info.maxEntries).toBe(1);
        expect(info.valueSize).toBe(maglevClassWords(cls) * 4);
        // memlock: the value rounded to pages, plus one page for the map's header.
        const memlock = Number(/memlock:\s+(\d+)/.exec(readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'))![1]);
        expect(memlock).toBeLessThanOrEqual(maglevClassWords(cls) * 4 + 2 * 4096);
      } finally {
        n.closeFd(fd);
      }
    });
  });

  it('a table that changes class moves: entries name the new class, the old table goes (incremental path)', () => {
    const shuffled = [...SIZES.slice(1), SIZES[0]!]; // every VIP changes class
    expectBalanced(applyInc(shuffled), shuffled, 1000);
    expectBalanced(applyInc(SIZES), SIZES, 2000);
  });

  it('the full diff against the kernel moves a table too, and removes a table left in another class', () => {
    const c0 = compile(validateConfig(config(SIZES)));
    // Leave a stale table of VIP 0 in class 3, as a cut-short move would.
    const v0 = c0.vips.find((x) => x.name.includes(vip(0)))!;
    const stale = new Uint32Array(SIZES[3]! + 1).fill(v0.backends[0]!.id);
    stale[XLB.MAGLEV_HDR_SLOT] = SIZES[3]!;
    dp.store().swapTables([{ vipId: v0.id, table: stale }]);
    expect(dp.store().tableClasses().get(v0.id)).toEqual([0, 3]);
    const swapped = [SIZES[2]!, ...SIZES.slice(1, 2), SIZES[0]!, ...SIZES.slice(3)];
    const c = compile(validateConfig(config(swapped)), c0.ids);
    const s = applyCompiled(dp.store(), c, ifindex, c0.ids);
    expect(s.tables.removed).toBeGreaterThanOrEqual(3); // VIP 0's old and stale tables, VIP 2's old one
    expectBalanced(c, swapped, 3000);
    // Nothing left to do.
    expect(applyCompiled(dp.store(), c, ifindex, c.ids).writes).toBe(0);
    expect(dp.native.mapLookup(dp.maps.xlb_maglev_c3, encodeU32(v0.id), 4)).toBeNull();
  });
});
