// compile() with a set of backends health checks found down: they leave the
// Maglev table but keep their ids and backend entries. Pure; no root needed.
import { describe, expect, it } from 'vitest';
import { backendKey, compile, EMPTY_IDS, type CompiledVip } from '../src/compile.js';
import { validateConfig, type DesiredState } from '../src/config.js';
import { XLB } from '../src/layout.js';
import { MemoryStore } from '../src/store.js';
import { applyCompiled } from '../src/writer.js';

const VIP = '172.16.255.62:8000';
const NAME = `lb1 ${VIP}/tcp`;
const B = ['172.16.255.130:8000', '172.16.255.131:8000', '172.16.255.132:8000', '172.16.255.133:8000'];

function desired(m = 65537): DesiredState {
  return validateConfig({
    load_balancers: [{ name: 'lb1', protocol: 'tcp', vips: { [VIP]: B.join(','), '172.16.255.63:80': B[0] }, options: { xlb_maglev_size: m } }],
    logical_switches: [{ name: 'inside', ports: ['xlb-vm3-h'], load_balancer: ['lb1'] }],
  });
}

const vip = (vips: CompiledVip[], name = NAME): CompiledVip => vips.find((v) => v.name === name)!;
const slots = (t: Uint32Array): Uint32Array => t.subarray(XLB.MAGLEV_FIRST_SLOT);

describe('compile with backends down', () => {
  const d = desired();
  const base = compile(d);
  const idOf = (text: string): number => vip(base.vips).backends.find((b) => b.text === text)!.id;

  it('backendKey matches the backend ids compile hands out', () => {
    expect(base.ids.backends[backendKey(NAME, B[0])]).toBe(idOf(B[0]));
  });

  it('leaves a down backend out of the table; the others keep their ids and entries', () => {
    const c = compile(d, base.ids, new Set([backendKey(NAME, B[0])]));
    const v = vip(c.vips);
    expect(c.ids).toEqual(base.ids);
    expect(v.backends.map((b) => [b.id, b.text])).toEqual(vip(base.vips).backends.map((b) => [b.id, b.text]));
    expect(v.backends.find((b) => b.text === B[0])!.down).toBe(true);
    expect(v.backends.filter((b) => b.down)).toHaveLength(1);
    const inTable = new Set(slots(v.table));
    expect(inTable.has(idOf(B[0]))).toBe(false);
    expect([...inTable].sort()).toEqual([idOf(B[1]), idOf(B[2]), idOf(B[3])].sort());
    expect(v.table[XLB.MAGLEV_HDR_SLOT]).toBe(65537);
    // Slots of the healthy backends barely move: each keeps nearly all of its slots.
    const before = slots(vip(base.vips).table);
    const after = slots(v.table);
    let moved = 0;
    for (let i = 0; i < before.length; i++) if (before[i] !== idOf(B[0]) && before[i] !== after[i]) moved++;
    expect(moved / before.length).toBeLessThan(0.02);
    // Other VIPs with the same backend address are not affected (keys are per VIP).
    expect(vip(c.vips, 'lb1 172.16.255.63:80/tcp').table).toEqual(vip(base.vips, 'lb1 172.16.255.63:80/tcp').table);
  });

  it('every backend down: an empty table (drops), entries kept', () => {
    const c = compile(d, base.ids, new Set(B.map((b) => backendKey(NAME, b))));
    const v = vip(c.vips);
    expect(slots(v.table).every((x) => x === XLB.BACKEND_NONE)).toBe(true);
    expect(v.backends).toHaveLength(4);
    expect(c.ids).toEqual(base.ids);
  });

  it('recovery restores the exact original table and ids', () => {
    const down = compile(d, base.ids, new Set([backendKey(NAME, B[1]), backendKey(NAME, B[3])]));
    const back = compile(d, down.ids, new Set());
    expect(back.ids).toEqual(base.ids);
    expect(vip(back.vips).table).toEqual(vip(base.vips).table);
    expect(vip(back.vips).backends.some((b) => b.down)).toBe(false);
  });

  it('the table of the up subset is the table of a config without the down backends (same ids)', () => {
    const without = compile(
      validateConfig({
        load_balancers: [{ name: 'lb1', protocol: 'tcp', vips: { [VIP]: [B[0], B[2], B[3]].join(','), '172.16.255.63:80': B[0] }, options: { xlb_maglev_size: 65537 } }],
        logical_switches: [{ name: 'inside', ports: ['xlb-vm3-h'], load_balancer: ['lb1'] }],
      }),
      base.ids,
    );
    const c = compile(d, base.ids, new Set([backendKey(NAME, B[1])]));
    expect(vip(c.vips).table).toEqual(vip(without.vips).table);
  });

  it('through the writer: the table is swapped, backend entries stay (at most their flags change)', () => {
    const store = new MemoryStore();
    const ifx = new Map([['xlb-vm3-h', 7]]);
    applyCompiled(store, base, ifx);
    const entries = store.dump('xlb_backends').size;
    const s1 = applyCompiled(store, compile(d, base.ids, new Set([backendKey(NAME, B[0])])), ifx, base.ids);
    expect(s1.tables.swapped).toBe(1);
    expect(s1.backends.removed).toBe(0);
    expect(s1.backends.written).toBeLessThanOrEqual(1); // the down backend's entry may be re-flagged, never removed
    expect(s1.vips).toEqual({ written: 0, removed: 0 });
    expect(store.dump('xlb_backends').size).toBe(entries);
    const s2 = applyCompiled(store, compile(d, base.ids), ifx, base.ids);
    expect(s2.tables.swapped).toBe(1);
    expect(s2.backends.removed).toBe(0);
    expect(store.readTable(vip(base.vips).id)).toEqual(vip(base.vips).table);
    expect(applyCompiled(store, compile(d, base.ids), ifx, base.ids).writes).toBe(0);
  });
});
