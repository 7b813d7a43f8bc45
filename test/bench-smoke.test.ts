/**
 * The benchmark's smoke run: tiny counts (`--smoke`), every stage must produce
 * numbers. Never a timed assertion: the figures themselves are not checked,
 * only that each expected figure exists and has a value.
 */
import { expect, it } from 'vitest';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run, ROOT } from './helpers/e2e.js';

interface Fig {
  stage: string;
  group: string;
  config: string;
  median: number | null;
  values: number[];
  lost?: number;
}
interface Stage {
  figures: Fig[];
  ratios: Array<{ what: string; value: number | null }>;
  error?: string;
}
interface Report {
  meta: { machine: { kernel: string }; versions: Record<string, string> };
  stages: Record<string, Stage>;
}

async function smoke(stage: string, dir: string): Promise<Report> {
  const out = join(dir, stage);
  const r = await run(process.execPath, [join(ROOT, 'dist', 'bench', 'run.js'), '--smoke', '--only', stage, '--out', out], 150);
  expect(r.stdout + r.stderr).not.toMatch(/FAILED/);
  expect(r.code).toBe(0);
  for (const ext of ['json', 'md', 'svg']) expect(existsSync(`${out}.${ext}`)).toBe(true);
  expect(readFileSync(`${out}.svg`, 'utf8')).toMatch(/^<svg/);
  const rep = JSON.parse(readFileSync(`${out}.json`, 'utf8')) as Report;
  expect(rep.meta.machine.kernel).toBeTruthy();
  expect(rep.stages[stage]?.error).toBeUndefined();
  return rep;
}

const has = (st: Stage, group: string, config: string): void => {
  const f = st.figures.find((x) => x.group === group && x.config.startsWith(config));
  expect(f, `${group} / ${config}`).toBeDefined();
  expect(f!.median, `${group} / ${config}`).not.toBeNull();
  expect(Number.isFinite(f!.median)).toBe(true);
};

it('hotpath: cold and in-place figures for every path and hook, floors included', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'xlb-bench-'));
  try {
    const st = (await smoke('hotpath', dir)).stages.hotpath;
    for (const hook of ['xdp', 'tc']) {
      for (const path of ['established flow', 'new flow', 'not LB traffic']) {
        has(st, `${hook} cold`, `xlb ${path}`);
        has(st, `${hook} in place`, `xlb ${path}`);
      }
    }
    has(st, 'tc egress cold', 'xlb reply');
    has(st, 'tc egress in place', 'xlb reply');
    has(st, 'xdp in place', 'no-op');
    has(st, 'xdp in place', 'MAC swap');
    has(st, 'tc in place', 'no-op');
    has(st, 'tc egress in place', 'no-op');
    expect(st.ratios.some((r) => /Katran/.test(r.what) && r.value !== null)).toBe(true);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}, 200_000);

it('e2e: every configuration (kernel, no-op XDP, xlb tc/XDP, nftables, OVN LB, OVN + xlb) produces numbers', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'xlb-bench-'));
  try {
    const st = (await smoke('e2e', dir)).stages.e2e;
    for (const c of ['plain kernel', 'no-op XDP', 'xlb (tc)', 'xlb (XDP)', 'nftables DNAT', 'OVN LB', 'OVN + xlb']) {
      // A run lost to an ovs-vswitchd crash is allowed (reported, not counted); otherwise numbers are required.
      const f = st.figures.filter((x) => x.config.startsWith(c));
      expect(f.length, c).toBeGreaterThan(0);
      if (f.some((x) => x.lost)) continue;
      has(st, 'new TCP connections/s (wrk -c8, Connection: close)', c);
      has(st, 'bulk TCP (iperf3, one stream, one-backend VIP)', c);
      has(st, 'request latency p99 (wrk)', c);
      has(st, 'host CPU per packet through the client port (bulk run, all CPUs, iperf3 included)', c);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}, 200_000);

it('scale: per-packet cost per size, control plane times incl. OVN NB → kernel, memory', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'xlb-bench-'));
  try {
    const st = (await smoke('scale', dir)).stages.scale;
    for (const c of ['1 VIP, empty', '100 VIPs', '1 VIP, ']) {
      has(st, 'xdp cold: established flow', c);
      has(st, 'xdp cold: new flow', c);
      has(st, 'xdp in place: established flow', c);
      has(st, 'xdp in place: new flow', c);
    }
    has(st, 'control plane', 'apply ');
    has(st, 'control plane', 'change one backend');
    has(st, 'BPF map memory', '1 VIPs');
    has(st, 'control plane', 'OVN NB change → kernel, p50');
    has(st, 'control plane', 'OVN NB change → kernel, p99');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}, 200_000);
