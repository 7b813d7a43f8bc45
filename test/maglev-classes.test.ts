/**
 * Maglev tables of every size class in the kernel (BPF_PROG_TEST_RUN): each
 * table is the single value of its own inner map under the outer map of its
 * size class (4 bytes per slot in a word class, a byte per slot in the byte
 * class); the VIP entry names the class. Tables of each class balance; a table
 * whose size or backend count changes class moves (the VIP entries name the
 * new class, the old table goes), on the incremental path and on the full diff
 * against the kernel; a table changed in place keeps its backends' positions.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { Dataplane, MAGLEV_MAPS, readTableValue } from '../src/dataplane.js';
import { MAGLEV_BYTE_SLOTS_AT } from '../src/layout.js';
import { compile, emptyCompiled, EMPTY_IDS, type Compiled } from '../src/compile.js';
import { validateConfig } from '../src/config.js';
import { applyCompiled } from '../src/writer.js';
import { decodeTable, decodeVipVal, encodeU32, encodeVip4Key, encodeVipVal, maglevClass, maglevClassBytes, byteRecAt, decodeBackend4, encodeBackend4, IPPROTO, LAYOUT, XLB } from '../src/layout.js';
import { parseIPv4 } from '../src/addr.js';
import { buildPacket, parsePacket } from './helpers/packet.js';
import { closeAndUnpin } from './helpers/bpf.js';
import { ct4Clear } from './helpers/ct.js';

const PIN_ROOT = `/sys/fs/bpf/xlb-xtb-cls-${process.pid}`;
const IFINDEX = 1;
/** One prime M per size class (class 5 holds the largest M the config accepts); VIP 2 has 2 backends
 *  (the byte class), VIP 3 as many as the byte class cannot hold (word class 2). */
const SIZES = [1021, 4093, 16381, 16381, 65521, 262139, 1000003];
const CLASSES = [0, 1, XLB.MAGLEV_BYTE_CLASS, 2, 3, 4, 5];
const MANY = XLB.MAGLEV_BYTE_IDS + 1;
const vip = (i: number): string => `10.0.9.${i + 1}`;
const backends = (i: number): string[] =>
  Array.from({ length: i === 3 ? MANY : 2 }, (_, j) => `10.${9 + Math.floor(j / 250)}.${i}.${(j % 250) + 1}`);

let dp: Dataplane;

function config(sizes: number[], over: Record<number, string[]> = {}): object {
  return {
    load_balancers: sizes.map((m, i) => ({
      name: `lb${i}`,
      vips: { [`${vip(i)}:80`]: (over[i] ?? backends(i)).map((b) => `${b}:8080`).join(',') },
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
    const cls = maglevClass(v.table);
    expect(held.get(v.id), `VIP ${vip(i)} M ${m}`).toEqual([cls]);
    expect(entryTable(i), `VIP ${vip(i)} entry`).toEqual({ cls, m });
    expect(Array.from(dp.store().readTable(v.id, cls)!)).toEqual(Array.from(v.table));
    const seen = destinations(i, 48, base);
    expect(seen.has('drop'), `VIP ${vip(i)} M ${m}: ${[...seen]}`).toBe(false);
    const all = backends(i);
    if (all.length === 2) expect([...seen.keys()].sort(), `VIP ${vip(i)} M ${m}`).toEqual(all.sort());
    else {
      expect(seen.size, `VIP ${vip(i)} M ${m}`).toBeGreaterThan(24);
      for (const d of seen.keys()) expect(all, `VIP ${vip(i)} M ${m}`).toContain(d);
    }
  });
}

function clearConntrack(): void {
  ct4Clear(dp);
}

/** VIP vipId's inner map in the outer map of class cls, as the kernel holds it: its id and value. */
function innerValue(cls: number, vipId: number): { innerId: number; value: Buffer } {
  const n = dp.native;
  const innerId = n.mapLookup(dp.maps[MAGLEV_MAPS[cls]!], encodeU32(vipId), 4)!.readUInt32LE(0);
  const fd = n.mapGetFdById(innerId);
  try {
    return { innerId, value: readTableValue(n, fd, cls) };
  } finally {
    n.closeFd(fd);
  }
}

/** The ids of a byte-class value's records, by position. */
const recordIds = (value: Buffer): number[] => Array.from({ length: XLB.MAGLEV_BYTE_IDS }, (_, p) => value.readUInt32LE(byteRecAt(p)));

/** A table of M slots cycling over `ids` (every slot XLB_BACKEND_NONE when there are none). */
function cycleTable(m: number, ids: number[]): Uint32Array {
  const t = new Uint32Array(m + 1);
  t[0] = m;
  for (let i = 1; i <= m; i++) t[i] = ids.length ? ids[(i - 1) % ids.length]! : XLB.BACKEND_NONE;
  return t;
}

beforeAll(() => {
  Dataplane.removePins(PIN_ROOT);
  dp = Dataplane.open({ pinRoot: PIN_ROOT });
});

afterAll(() => closeAndUnpin(dp, PIN_ROOT));

describe('Maglev size classes', () => {
  let last: Compiled | null = null;
  const ifindex = new Map([['lo', IFINDEX]]);
  const applyInc = (sizes: number[], over: Record<number, string[]> = {}): Compiled => {
    const c = compile(validateConfig(config(sizes, over)), last?.ids ?? EMPTY_IDS, undefined, last);
    applyCompiled(dp.store(), c, ifindex, last?.ids ?? EMPTY_IDS, { prev: last ?? emptyCompiled(), prevIfindexes: [IFINDEX] });
    last = c;
    return c;
  };

  it('a table of each class balances new flows over its backends', () => {
    const c = applyInc(SIZES);
    expect(SIZES.map((_, i) => maglevClass(c.vips.find((x) => x.name.includes(vip(i)))!.table))).toEqual(CLASSES);
    expectBalanced(c, SIZES, 0);
  });

  it('the copy of M in the VIP entry only hints: a stale or missing one picks the same backends', () => {
    const flows = (i: number): string[] =>
      Array.from({ length: 32 }, (_, f) => {
        const data = buildPacket({ proto: 'tcp', src: `192.168.9.${f + 1}`, dst: vip(i), sport: 40000 + f, dport: 80 });
        return parsePacket(dp.native.progTestRun(dp.progs.xlb_xdp_ingress, { data, ifindex: IFINDEX }).data).dst;
      });
    for (const i of [0, 2, 3, 6]) {
      const right = dp.native.mapLookup(dp.maps.xlb_vip4, vipKey(i), LAYOUT.xlb_vip_val.size)!;
      clearConntrack();
      const want = flows(i);
      expect(new Set(want).size, `VIP ${vip(i)}`).toBeGreaterThanOrEqual(2);
      // (a hint past the class's slots too: the index it gives fails the bound check)
      for (const hint of [0, 7, SIZES[i]! - 2, maglevClassBytes(CLASSES[i]!) + 5]) {
        dp.native.mapUpdate(dp.maps.xlb_vip4, vipKey(i), encodeVipVal({ ...decodeVipVal(right), tableM: hint }));
        clearConntrack();
        expect(flows(i), `VIP ${vip(i)} hint ${hint}`).toEqual(want);
      }
      dp.native.mapUpdate(dp.maps.xlb_vip4, vipKey(i), right);
      clearConntrack();
    }
  });

  it('holds one element of the class size (a word class 4 bytes per slot in an mmap-able array, the byte class 1 in a plain one)', () => {
    const n = dp.native;
    MAGLEV_MAPS.forEach((outer, cls) => {
      const d = n.mapDump(dp.maps[outer], 4, 4);
      expect(d.count, outer).toBe(1);
      const fd = n.mapGetFdById(d.values.readUInt32LE(0));
      try {
        const info = n.mapInfo(fd);
        expect(info.maxEntries).toBe(1);
        expect(info.flags & n.constants.BPF_F_MMAPABLE, outer).toBe(cls === XLB.MAGLEV_BYTE_CLASS ? 0 : n.constants.BPF_F_MMAPABLE);
        expect(info.valueSize).toBe(maglevClassBytes(cls));
        // memlock: the value rounded to pages, plus one page for the map's header.
        const memlock = Number(/memlock:\s+(\d+)/.exec(readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'))![1]);
        expect(memlock).toBeLessThanOrEqual(maglevClassBytes(cls) + 2 * 4096);
      } finally {
        n.closeFd(fd);
      }
    });
  });

  it("a byte-class table's records copy each backend's xlb_backends entry; new flows take the copy, or the entry when the copy is empty", () => {
    const n = dp.native;
    const c = last!;
    const v = c.vips.find((x) => x.name.includes(vip(2)))!;
    expect(maglevClass(v.table)).toBe(XLB.MAGLEV_BYTE_CLASS);
    const { innerId, value: original } = innerValue(XLB.MAGLEV_BYTE_CLASS, v.id);
    const fd = n.mapGetFdById(innerId);
    const key = encodeU32(XLB.MAGLEV_TABLE_KEY);
    try {
      // Each named position's record: the id, then its entry as xlb_backends holds it, flags 0.
      const named = new Set(Array.from(original.subarray(MAGLEV_BYTE_SLOTS_AT, MAGLEV_BYTE_SLOTS_AT + v.table[0]!)));
      expect(named.size).toBe(2);
      for (const p of named) {
        const at = byteRecAt(p);
        const id = original.readUInt32LE(at);
        const entry = n.mapLookup(dp.maps.xlb_backends, encodeU32(id), LAYOUT.xlb_backend4.size)!;
        expect(decodeBackend4(entry).addr).not.toBe(0);
        expect(original.subarray(at + LAYOUT.xlb_maglev_rec.offsets.be, at + XLB.MAGLEV_REC_SIZE).toString('hex')).toBe(
          Buffer.concat([entry.subarray(0, LAYOUT.xlb_backend4.offsets.flags), Buffer.alloc(2)]).toString('hex'),
        );
      }
      // The data plane reads the copy: another address in one record's copy takes that backend's flows.
      const [first] = [...named];
      const at = byteRecAt(first!) + LAYOUT.xlb_maglev_rec.offsets.be;
      const firstAddr = decodeBackend4(original.subarray(at, at + LAYOUT.xlb_backend4.size)).addr;
      const firstText = backends(2).find((b) => parseIPv4(b) === firstAddr)!;
      const other = Buffer.from(original);
      other.writeUInt32BE(parseIPv4('10.77.0.1'), at + LAYOUT.xlb_backend4.offsets.addr);
      n.mapUpdate(fd, key, other, 0);
      clearConntrack();
      const moved = destinations(2, 48, 8000);
      expect([...moved.keys()].sort()).toEqual(['10.77.0.1', backends(2).find((b) => b !== firstText)!].sort());
      // A copy of address 0 (none made): the pick reads xlb_backends.
      other.writeUInt32BE(0, at + LAYOUT.xlb_backend4.offsets.addr);
      n.mapUpdate(fd, key, other, 0);
      clearConntrack();
      expect([...destinations(2, 48, 8000).keys()].sort()).toEqual([...backends(2)].sort());
    } finally {
      n.mapUpdate(fd, key, original, 0);
      n.closeFd(fd);
      clearConntrack();
    }
  });

  it('a table changed in place keeps its inner map; a byte-class one keeps the positions of the backends it keeps', () => {
    /** What the kernel holds for VIP i (read through the inner map, not the store's copy). */
    const held = (c: Compiled, i: number): { innerId: number; table: number[]; ids: number[] } => {
      const v = c.vips.find((x) => x.name.includes(vip(i)))!;
      const cls = maglevClass(v.table);
      const { innerId, value } = innerValue(cls, v.id);
      return { innerId, table: Array.from(decodeTable(value, cls)), ids: cls === XLB.MAGLEV_BYTE_CLASS ? recordIds(value) : [] };
    };
    const idOf = (c: Compiled, i: number, addr: string): number =>
      c.vips.find((x) => x.name.includes(vip(i)))!.backends.find((b) => b.text.startsWith(`${addr}:`))!.id;
    const c0 = applyInc(SIZES);
    const before = [0, 2].map((i) => held(c0, i));
    // VIP 0 (class 0) and VIP 2 (the byte class): the second backend replaced by another.
    const swapped = { 0: [backends(0)[0]!, '10.9.0.7'], 2: [backends(2)[0]!, '10.9.2.7'] };
    const c1 = applyInc(SIZES, swapped);
    [0, 2].forEach((i, j) => {
      const after = held(c1, i);
      const want = c1.vips.find((x) => x.name.includes(vip(i)))!;
      expect(after.innerId, `VIP ${vip(i)}: rewritten in place`).toBe(before[j]!.innerId);
      expect(after.table, `VIP ${vip(i)}`).toEqual(Array.from(want.table));
      expect(new Set(after.table.slice(1))).toEqual(new Set([idOf(c1, i, backends(i)[0]!), idOf(c1, i, `10.9.${i}.7`)]));
      const seen = destinations(i, 48, 4000 + i * 100);
      expect([...seen.keys()].sort(), `VIP ${vip(i)}`).toEqual([backends(i)[0]!, `10.9.${i}.7`].sort());
    });
    // The kept backend's position did not move; the new one took an empty position.
    const kept = idOf(c1, 2, backends(2)[0]!);
    expect(idOf(c0, 2, backends(2)[0]!)).toBe(kept);
    const after2 = held(c1, 2);
    expect(after2.ids.indexOf(kept)).toBe(before[1]!.ids.indexOf(kept));
    expect(after2.ids.indexOf(idOf(c1, 2, '10.9.2.7'))).toBe(2);
    // Back as it was: in place again.
    const c2 = applyInc(SIZES);
    expect(held(c2, 2).table).toEqual(Array.from(c2.vips.find((x) => x.name.includes(vip(2)))!.table));
    expect(held(c2, 2).innerId).toBe(before[1]!.innerId);
    expectBalanced(c2, SIZES, 5000);
  });

  it('a byte-class table rewritten in place puts new backends only at positions no slot names; else it is replaced', () => {
    const VIP_ID = 4000; // (a table only: no VIP entry names it)
    const table = (ids: number[]): Uint32Array => cycleTable(16381, ids);
    const kernel = (): { innerId: number; table: number[]; ids: number[] } => {
      const { innerId, value } = innerValue(XLB.MAGLEV_BYTE_CLASS, VIP_ID);
      return { innerId, table: Array.from(decodeTable(value, XLB.MAGLEV_BYTE_CLASS)), ids: recordIds(value) };
    };
    const range = (from: number, count: number): number[] => Array.from({ length: count }, (_, i) => from + i);
    const store = dp.store();
    // 200 backends: a new one takes an empty position, the one it replaces keeps its id where it was.
    const t200 = table(range(1000, 200));
    expect(maglevClass(t200)).toBe(XLB.MAGLEV_BYTE_CLASS);
    store.swapTables([{ vipId: VIP_ID, table: t200 }]);
    const before = kernel();
    const t200b = table([...range(1000, 199), 5000]); // 1199 out, 5000 in
    store.patchTable(VIP_ID, t200b, t200);
    const after = kernel();
    expect(after.innerId).toBe(before.innerId);
    expect(after.table).toEqual(Array.from(t200b));
    expect(after.ids.indexOf(5000)).toBe(200); // the first empty position
    expect(after.ids[before.ids.indexOf(1199)]).toBe(1199); // no slot names it; it keeps its id
    // The writer's undo (the same call, from and to swapped): in place, 1199 back at its old position
    // (its id is still there, so it is kept), 5000's position left with its id, named by no slot.
    store.patchTable(VIP_ID, t200, t200b);
    const undone = kernel();
    expect(undone.innerId).toBe(before.innerId);
    expect(undone.table).toEqual(Array.from(t200));
    expect(undone.ids.indexOf(1199)).toBe(before.ids.indexOf(1199));
    expect(undone.ids[200]).toBe(5000);
    store.patchTable(VIP_ID, t200b, t200); // (as it was before the undo, for what follows)
    // 256 backends: no position is both free and unnamed, so a replaced backend means a new table.
    const t256 = table(range(2000, 256));
    store.swapTables([{ vipId: VIP_ID, table: t256 }]);
    const full = kernel();
    const t256b = table([...range(2000, 255), 6000]);
    store.patchTable(VIP_ID, t256b, t256);
    const replaced = kernel();
    expect(replaced.innerId).not.toBe(full.innerId);
    expect(replaced.table).toEqual(Array.from(t256b));
    // Every backend gone (an all-XLB_BACKEND_NONE table) with every position taken: no slot keeps an old backend.
    const empty = table([]);
    expect(maglevClass(empty)).toBe(XLB.MAGLEV_BYTE_CLASS);
    store.patchTable(VIP_ID, empty, t256b);
    expect(kernel().table).toEqual(Array.from(empty));
    // All positions held, one stale (its backend left, no slot names it): an empty table goes in place,
    // XLB_BACKEND_NONE at the stale position, whose old id is overwritten with 0.
    store.swapTables([{ vipId: VIP_ID, table: t256 }]);
    const t255 = table(range(2000, 255));
    const held256 = kernel().innerId;
    store.patchTable(VIP_ID, t255, t256);
    expect(kernel().innerId).toBe(held256);
    expect(kernel().table).toEqual(Array.from(t255));
    store.patchTable(VIP_ID, empty, t255);
    expect(kernel().innerId).toBe(held256);
    expect(kernel().table).toEqual(Array.from(empty));
    // And the same with free positions left: in place, position of XLB_BACKEND_NONE holds 0.
    store.swapTables([{ vipId: VIP_ID, table: t200 }]);
    const inPlace = kernel().innerId;
    store.patchTable(VIP_ID, empty, t200);
    expect(kernel().innerId).toBe(inPlace);
    expect(kernel().table).toEqual(Array.from(empty));
    store.deleteTable(VIP_ID, XLB.MAGLEV_BYTE_CLASS);
  });

  it("a byte-class table rewritten in place rewrites a record whose copy is stale only where no slot names it; else it is replaced", () => {
    const VIP_ID = 4001; // (a table only: no VIP entry names it)
    const table = (ids: number[]): Uint32Array => cycleTable(16381, ids);
    /** The kernel's inner map id and the address in id's record (its position found by id). */
    const kernel = (id: number): { innerId: number; addr: number } => {
      const { innerId, value } = innerValue(XLB.MAGLEV_BYTE_CLASS, VIP_ID);
      const p = recordIds(value).indexOf(id);
      expect(p, `id ${id} has a record`).toBeGreaterThanOrEqual(0);
      return { innerId, addr: value.readUInt32BE(byteRecAt(p) + LAYOUT.xlb_maglev_rec.offsets.be + LAYOUT.xlb_backend4.offsets.addr) };
    };
    const store = dp.store();
    const ID = 7001;
    const setEntry = (addr: string): void => store.update('xlb_backends', encodeU32(ID), encodeBackend4({ addr: parseIPv4(addr), port: 80 }));
    const ids = [7000, ID, 7002];
    const t = table(ids);
    const without = table([7000, 7002]);
    setEntry('10.50.0.1');
    store.swapTables([{ vipId: VIP_ID, table: t }]);
    const first = kernel(ID);
    expect(first.addr).toBe(parseIPv4('10.50.0.1'));
    try {
      // ID leaves (its position named by no slot), its entry changes (an id reused), it comes back:
      // its record is rewritten in place, before any slot names it again.
      store.patchTable(VIP_ID, without, t);
      setEntry('10.50.0.2');
      store.patchTable(VIP_ID, t, without);
      expect(kernel(ID)).toEqual({ innerId: first.innerId, addr: parseIPv4('10.50.0.2') });
      // Its entry changes while slots name it: a record a packet may be reading is never rewritten;
      // the next change of the table replaces it, with the new copy.
      setEntry('10.50.0.3');
      const t2 = table([...ids, 7003]);
      store.patchTable(VIP_ID, t2, t);
      const replaced = kernel(ID);
      expect(replaced.innerId).not.toBe(first.innerId);
      expect(replaced.addr).toBe(parseIPv4('10.50.0.3'));
    } finally {
      store.delete('xlb_backends', encodeU32(ID));
      store.deleteTable(VIP_ID, XLB.MAGLEV_BYTE_CLASS);
    }
  });

  it('a pool crossing 256 backends with the same M moves between the byte class and a word class', () => {
    const down = { 3: backends(3).slice(0, XLB.MAGLEV_BYTE_IDS) }; // 257 → 256 backends
    const c1 = applyInc(SIZES, down);
    const v1 = c1.vips.find((x) => x.name.includes(vip(3)))!;
    expect(maglevClass(v1.table)).toBe(XLB.MAGLEV_BYTE_CLASS);
    expect(dp.store().tableClasses().get(v1.id)).toEqual([XLB.MAGLEV_BYTE_CLASS]);
    expect(entryTable(3)).toEqual({ cls: XLB.MAGLEV_BYTE_CLASS, m: SIZES[3]! });
    const seen = destinations(3, 48, 6000);
    expect(seen.has('drop')).toBe(false);
    for (const d of seen.keys()) expect(down[3]).toContain(d);
    const c2 = applyInc(SIZES); // back to 257: word class 2
    const v2 = c2.vips.find((x) => x.name.includes(vip(3)))!;
    expect(dp.store().tableClasses().get(v2.id)).toEqual([2]);
    expectBalanced(c2, SIZES, 7000);
  });

  it('a table that changes class moves: entries name the new class, the old table goes (incremental path)', () => {
    const shuffled = [...SIZES.slice(2), ...SIZES.slice(0, 2)]; // every VIP changes class
    expectBalanced(applyInc(shuffled), shuffled, 1000);
    expectBalanced(applyInc(SIZES), SIZES, 2000);
  });

  it('the full diff against the kernel moves a table too, and removes a table left in another class', () => {
    const c0 = compile(validateConfig(config(SIZES)));
    // Leave a stale table of VIP 0 in class 3, as a cut-short move would.
    const v0 = c0.vips.find((x) => x.name.includes(vip(0)))!;
    const stale = new Uint32Array(SIZES[4]! + 1).fill(v0.backends[0]!.id);
    stale[XLB.MAGLEV_HDR_SLOT] = SIZES[4]!;
    dp.store().swapTables([{ vipId: v0.id, table: stale }]);
    expect(dp.store().tableClasses().get(v0.id)).toEqual([0, 3]);
    const swapped = [SIZES[2]!, ...SIZES.slice(1, 2), SIZES[0]!, ...SIZES.slice(3)];
    const c = compile(validateConfig(config(swapped)), c0.ids);
    const s = applyCompiled(dp.store(), c, ifindex, c0.ids);
    expect(s.tables.removed).toBeGreaterThanOrEqual(3); // VIP 0's old and stale tables, VIP 2's old one
    expectBalanced(c, swapped, 3000);
    // Nothing left to do.
    expect(applyCompiled(dp.store(), c, ifindex, c.ids).writes).toBe(0);
    // (The removed table's slot holds class 3's placeholder, which reads as no table.)
    expect(dp.store().readTable(v0.id, 3)).toBeNull();
    expect(dp.store().tableClasses().get(v0.id)).toEqual([maglevClass(c.vips.find((x) => x.id === v0.id)!.table)]);
  });
});
