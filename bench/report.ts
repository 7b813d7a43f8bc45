/**
 * The report: JSON (everything), Markdown (one table per group, ratios,
 * notes) and an SVG chart made with vega-lite (one panel per group, bars =
 * medians, rules = min..max).
 */
import { spawnSync } from 'node:child_process';
import { cpus, release, totalmem, hostname } from 'node:os';
import { readFileSync } from 'node:fs';
import * as vega from 'vega';
import * as vegaLite from 'vega-lite';
import type { Figure, Ratio, StageResult } from './common.js';

export interface Meta {
  date: string;
  command: string;
  quick: boolean;
  stages: string[];
  machine: { hostname: string; cpu: string; cpus: number; memGiB: number; kernel: string; os: string };
  versions: Record<string, string>;
  sysctl: Record<string, string>;
}

export interface Report {
  meta: Meta;
  stages: Partial<Record<'hotpath' | 'e2e' | 'scale', StageResult & { seconds: number; error?: string }>>;
}

function firstLine(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 10_000 });
  if (r.error) return 'not available';
  const t = `${r.stdout ?? ''}${r.stderr ?? ''}`.split('\n').find((l) => l.trim());
  return t?.trim() ?? 'unknown';
}

export function collectMeta(command: string, quick: boolean, stages: string[]): Meta {
  let os = 'unknown';
  try {
    os = /PRETTY_NAME="([^"]+)"/.exec(readFileSync('/etc/os-release', 'utf8'))?.[1] ?? os;
  } catch {
    /* keep */
  }
  let xlbVersion = 'unknown';
  try {
    xlbVersion = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
  } catch {
    /* keep */
  }
  const sysctl = (k: string): string => {
    try {
      return readFileSync(`/proc/sys/${k.replace(/\./g, '/')}`, 'utf8').trim();
    } catch {
      return 'n/a';
    }
  };
  return {
    date: new Date().toISOString(),
    command,
    quick,
    stages,
    machine: {
      hostname: hostname(),
      cpu: cpus()[0]?.model ?? 'unknown',
      cpus: cpus().length,
      memGiB: Math.round(totalmem() / 2 ** 30),
      kernel: release(),
      os,
    },
    versions: {
      xlb: xlbVersion,
      node: process.version,
      clang: firstLine('clang', ['--version']),
      libbpf: firstLine('dpkg-query', ['-W', '-f=${Version}', 'libbpf-dev']),
      'ovs-vswitchd': firstLine('ovs-vswitchd', ['--version']),
      'ovn-northd': firstLine('ovn-northd', ['--version']),
      nft: firstLine('nft', ['--version']),
      iperf3: firstLine('iperf3', ['--version']),
      wrk: firstLine('wrk', ['--version']),
      nginx: firstLine('nginx', ['-v']),
    },
    sysctl: { 'kernel.bpf_stats_enabled': sysctl('kernel.bpf_stats_enabled') },
  };
}

const fmt = (x: number | null | undefined): string => (x === null || x === undefined ? 'n/a' : String(x));

export function markdown(r: Report): string {
  const m = r.meta;
  const lines: string[] = [];
  lines.push(`# xlb benchmark${m.quick ? ' (quick pass)' : ''}`);
  lines.push('');
  lines.push(`\`${m.command}\` — ${m.date}`);
  lines.push('');
  lines.push(
    `Machine: ${m.machine.cpus} × ${m.machine.cpu}, ${m.machine.memGiB} GiB, ${m.machine.os}, kernel ${m.machine.kernel}. ` +
      `Versions: ${Object.entries(m.versions)
        .map(([k, v]) => `${k} ${v}`)
        .join('; ')}.`,
  );
  for (const [name, st] of Object.entries(r.stages)) {
    if (!st) continue;
    lines.push('');
    lines.push(`## ${name} (${st.seconds} s)`);
    if (st.error) {
      lines.push('');
      lines.push(`**stage failed:** ${st.error}`);
    }
    const groups = [...new Set(st.figures.map((f) => f.group))];
    for (const g of groups) {
      const figs = st.figures.filter((f) => f.group === g);
      lines.push('');
      lines.push(`### ${g}`);
      lines.push('');
      lines.push('| configuration | median | min | max | unit | runs | lost | note |');
      lines.push('|---|---:|---:|---:|---|---:|---:|---|');
      for (const f of figs) {
        lines.push(`| ${f.config} | ${fmt(f.median)} | ${fmt(f.min)} | ${fmt(f.max)} | ${f.unit} | ${f.values.length} | ${f.lost ?? 0} | ${f.note ?? ''} |`);
      }
    }
    if (st.ratios.length) {
      lines.push('');
      lines.push('### ratios (from this run)');
      lines.push('');
      lines.push('| what | value | target | note |');
      lines.push('|---|---:|---|---|');
      for (const x of st.ratios) lines.push(`| ${x.what} | ${fmt(x.value)} | ${x.target ?? ''} | ${x.note ?? ''} |`);
    }
    if (st.notes.length) {
      lines.push('');
      for (const n of st.notes) lines.push(`- ${n}`);
    }
  }
  lines.push('');
  return lines.join('\n');
}

/** One chart: a panel per (stage, group), horizontal bars of medians with min–max rules. */
export async function chart(r: Report): Promise<string> {
  const rows: Array<Figure & { panel: string; lo: number; hi: number }> = [];
  for (const st of Object.values(r.stages)) {
    for (const f of st?.figures ?? []) {
      if (f.median === null) continue;
      rows.push({ ...f, panel: `${f.stage}: ${f.group} (${f.unit})`, lo: f.min ?? f.median, hi: f.max ?? f.median });
    }
  }
  const spec: vegaLite.TopLevelSpec = {
    $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
    title: `xlb benchmark — ${r.meta.machine.cpus} × ${r.meta.machine.cpu}, kernel ${r.meta.machine.kernel}${r.meta.quick ? ' (quick)' : ''}`,
    data: { values: rows as unknown as Record<string, unknown>[] },
    facet: { row: { field: 'panel', type: 'nominal', header: { labelAngle: 0, labelAlign: 'left', labelLimit: 400, title: null } } },
    resolve: { scale: { x: 'independent', y: 'independent' } },
    spec: {
      width: 420,
      layer: [
        {
          mark: { type: 'bar', tooltip: true },
          encoding: {
            y: { field: 'config', type: 'nominal', sort: null, title: null, axis: { labelLimit: 260 } },
            x: { field: 'median', type: 'quantitative', title: 'median (bars), min–max (rules)' },
            color: { field: 'stage', type: 'nominal', legend: null },
          },
        },
        {
          mark: { type: 'rule', color: 'black' },
          encoding: {
            y: { field: 'config', type: 'nominal', sort: null },
            x: { field: 'lo', type: 'quantitative' },
            x2: { field: 'hi' },
          },
        },
        {
          mark: { type: 'text', align: 'left', dx: 4, fontSize: 9 },
          encoding: {
            y: { field: 'config', type: 'nominal', sort: null },
            x: { field: 'hi', type: 'quantitative' },
            text: { field: 'median', type: 'quantitative' },
          },
        },
      ],
    },
  };
  const quiet = vega.logger(vega.None);
  const view = new vega.View(vega.parse(vegaLite.compile(spec, { logger: quiet }).spec), { renderer: 'none', logger: quiet });
  return view.toSVG();
}

export type { Ratio };
