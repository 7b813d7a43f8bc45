/**
 * The incremental apply on the real kernel (private pin root, namespaces
 * xlb-in-*): a backend change rewrites that VIP's table in place — no other
 * table, no outer-map write, no other backend entry — and connections never
 * fail while a VIP's backends change many times in a row (tables rewritten
 * in place, removed backends deleted after a grace period).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rmSync } from 'node:fs';
import { Lab, labConfig, labNames, type VmName } from '../src/lab.js';
import { Xlb } from '../src/xlb.js';
import { encodeU32, decodeTable, maglevClass } from '../src/layout.js';
import { MAGLEV_MAPS, readTableValue } from '../src/dataplane.js';
import { TIMEOUT_S } from './helpers/e2e.js';
import { startChurnClient } from './helpers/daemon.js';

const PREFIX = 'xlb-in-';
const N = labNames(PREFIX);
const INSTANCE = { pinRoot: `/sys/fs/bpf/xlb-incr-${process.pid}`, stateDir: `/run/xlb-incr-${process.pid}` };
const ROUNDS = Number(process.env.XLB_TEST_INCR_CHURN ?? 300);
const MANY = 300;

let lab: Lab;
let x: Xlb;

/** The lab config plus MANY more VIPs (8 backends each, M = 97) on the same switch. */
function config(backends: VmName[], edit: (i: number, list: string[]) => string[] = (_, l) => l): object {
  const base = labConfig('tc', backends, N) as {
    load_balancers: object[];
    logical_switches: Array<{ load_balancer: string[] }>;
  };
  const vips: Record<string, string> = {};
  for (let i = 0; i < MANY; i++) {
    const list = Array.from({ length: 8 }, (_, j) => `10.61.${i & 255}.${j + 1}:80`);
    vips[`10.77.${i >> 8}.${i & 255}:80`] = edit(i, list).join(',');
  }
  base.load_balancers.push({ name: 'many', options: { xlb_maglev_size: '97' }, vips });
  base.logical_switches[0]!.load_balancer.push('many');
  return base;
}

/** Every VIP's inner map id and table, read from the kernel (not from any cache). */
function kernelTables(): Map<number, { innerId: number; table: number[] }> {
  const n = x.dataplane.native;
  const out = new Map<number, { innerId: number; table: number[] }>();
  for (const v of x.compiled!.vips) {
    const cls = maglevClass(v.table);
    const val = n.mapLookup(x.dataplane.maps[MAGLEV_MAPS[cls]!], encodeU32(v.id), 4)!;
    const innerId = val.readUInt32LE(0);
    const fd = n.mapGetFdById(innerId);
    try {
      out.set(v.id, { innerId, table: Array.from(decodeTable(readTableValue(n, fd, cls), cls)) });
    } finally {
      n.closeFd(fd);
    }
  }
  return out;
}

function kernelBackends(): Map<number, string> {
  const d = x.dataplane.native.mapDump(x.dataplane.maps.xlb_backends, 4, 8);
  const out = new Map<number, string>();
  for (let i = 0; i < d.count; i++) {
    const v = d.values.subarray(i * 8, i * 8 + 8);
    if (v.some((b) => b !== 0)) out.set(d.keys.readUInt32LE(i * 4), v.toString('hex'));
  }
  return out;
}

beforeAll(async () => {
  Xlb.reset(INSTANCE);
  lab = await Lab.create({ prefix: PREFIX, http: 'nginx' });
  x = Xlb.open(INSTANCE);
}, 120_000);

afterAll(async () => {
  x?.close();
  Xlb.reset(INSTANCE);
  rmSync(INSTANCE.stateDir, { recursive: true, force: true });
  await lab?.destroy();
});

describe('incremental apply on the kernel', () => {
  it(`one backend of one VIP among ${MANY + 3}: only that table is rewritten, in place, and one backend entry written`, async () => {
    x.apply(config(['vm1', 'vm2']));
    expect(await lab.curl(TIMEOUT_S)).toMatch(/^i am vm[12]$/);
    const tablesBefore = kernelTables();
    const backendsBefore = kernelBackends();
    const oldIds = x.compiled!.vips.find((v) => v.vip === '10.77.0.150:80')!.backends.map((b) => b.id);
    const r = x.apply(config(['vm1', 'vm2'], (i, l) => (i === 150 ? [...l.slice(1), '10.62.0.1:80'] : l)));
    const changed = x.compiled!.vips.find((v) => v.vip === '10.77.0.150:80')!;
    expect(r.summary.tables).toEqual({ swapped: 1, patched: 1, removed: 0 });
    expect(r.summary.backends).toEqual({ written: 1, removed: 1 });
    expect(r.summary.vips).toEqual({ written: 0, removed: 0 });
    const tablesAfter = kernelTables();
    expect([...tablesAfter.keys()].sort()).toEqual([...tablesBefore.keys()].sort());
    expect(tablesAfter.has(changed.id)).toBe(true);
    for (const [id, t] of tablesAfter) {
      const b = tablesBefore.get(id)!;
      expect(t.innerId, `VIP id ${id}: same inner map`).toBe(b.innerId);
      if (id === changed.id) {
        expect(t.table).not.toEqual(b.table);
        expect(t.table).toEqual(Array.from(changed.table));
      } else {
        expect(t.table, `VIP id ${id}: untouched`).toEqual(b.table);
      }
    }
    const added = changed.backends.find((b) => b.text === '10.62.0.1:80')!;
    const removedId = oldIds.find((id) => !changed.backends.some((b) => b.id === id))!;
    expect(tablesBefore.get(changed.id)!.table.slice(1)).toContain(removedId);
    const backendsMid = kernelBackends();
    // Written: the new one. The removed one is still there until the grace period has passed.
    expect([...backendsMid.keys()].filter((id) => backendsBefore.get(id) !== backendsMid.get(id))).toEqual([added.id]);
    expect(backendsMid.has(removedId)).toBe(true);
    expect(tablesAfter.get(changed.id)!.table.slice(1)).not.toContain(removedId);
    x.reclaim();
    const backendsAfter = kernelBackends();
    expect(backendsAfter.has(removedId)).toBe(false);
    expect(backendsAfter.size).toBe(backendsBefore.size);
    expect(await lab.curl(TIMEOUT_S)).toMatch(/^i am vm[12]$/);
  }, 60_000);

  it(`backends changed ${2 * ROUNDS} times under continuous connections, tables rewritten in place: zero failures`, async () => {
    const churn = await startChurnClient(N.vms.vm3.ns, N.vip, N.port, TIMEOUT_S);
    let summary;
    let patched = 0;
    let ms = 0;
    try {
      for (let i = 0; i < ROUNDS; i++) {
        for (const set of [i % 2 === 0 ? ['vm1'] : ['vm2'], ['vm1', 'vm2']] as VmName[][]) {
          const t0 = performance.now();
          const r = x.apply(config(set));
          ms += performance.now() - t0;
          patched += r.summary.tables.patched;
          expect(r.summary.tables.patched).toBe(r.summary.tables.swapped);
          // Let the churn client and the deferred removals run between applies.
          await new Promise((res) => setTimeout(res, 2));
        }
      }
    } finally {
      summary = await churn.stop();
    }
    console.log(`incremental churn: ${2 * ROUNDS} applies, mean ${(ms / (2 * ROUNDS)).toFixed(2)} ms; ${summary.ok} requests ok, ${summary.failed} failed`, summary.bodies);
    expect(patched).toBeGreaterThanOrEqual(2 * ROUNDS);
    expect(summary.errors).toEqual([]);
    expect(summary.failed).toBe(0);
    expect(summary.ok).toBeGreaterThan(ROUNDS / 4);
    expect(Object.keys(summary.bodies).sort()).toEqual(['i am vm1', 'i am vm2']);
  }, 600_000);
});
