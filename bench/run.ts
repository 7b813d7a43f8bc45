/**
 * `npm run bench`: how much xlb costs per packet and per connection, next to
 * floor programs, plain kernel routing, nftables DNAT and OVN's own load
 * balancer, and how that grows with VIPs and connections.
 *
 *   npm run bench                      every stage, full counts
 *   npm run bench -- --quick           a short pass
 *   npm run bench -- --only hotpath    one stage (hotpath | e2e | scale; comma-separated for several)
 *
 * Stages: hotpath.ts (per-packet cost: "cold" and "in place"), e2e.ts (the
 * seed topology built five ways, OVN included), scale.ts (VIPs, conntrack,
 * control plane). Output: <out>.json, <out>.md, <out>.svg (default
 * bench/results/latest, or bench/results/quick with --quick); the Markdown is
 * printed on stdout, progress bars go to stderr.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { Command } from 'commander';
import { packageRoot } from '../src/paths.js';
import { cleanupLeftovers, Progress, round, settle, SETTLE_IDLE_SHARE, SETTLE_MAX_S, type StageResult } from './common.js';
import { collectMeta, markdown, chart, type Report } from './report.js';
import { runHotpath } from './hotpath.js';
import { runE2e } from './e2e.js';
import { runScale } from './scale.js';
import { runCleanups } from './cleanup.js';

const STAGES = ['hotpath', 'e2e', 'scale'] as const;
type Stage = (typeof STAGES)[number];

interface Opts {
  quick?: boolean;
  only?: string;
  out?: string;
  json?: string;
  smoke?: boolean;
}

async function write(report: Report, out: string, json: string | undefined): Promise<string> {
  const md = markdown(report);
  const jsonPath = json ?? `${out}.json`;
  mkdirSync(dirname(jsonPath), { recursive: true });
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(jsonPath, `${JSON.stringify(report, null, 2)}\n`);
  writeFileSync(`${out}.md`, md);
  writeFileSync(`${out}.svg`, await chart(report));
  return md;
}

async function main(): Promise<number> {
  const program = new Command()
    .name('bench')
    .description("xlb's benchmark suite")
    .option('--quick', 'a short pass (fewer packets, runs and seconds)')
    .option('--smoke', 'the smallest pass that still produces every figure (CI)')
    .option('--only <stages>', `only these stages (${STAGES.join(', ')}; comma-separated)`)
    .option('--out <prefix>', 'write <prefix>.json, .md and .svg')
    .option('--json <file>', 'write the JSON report here (overrides --out for the JSON)')
    .parse(process.argv);
  const o = program.opts<Opts>();
  const quick = Boolean(o.quick || o.smoke);
  const stages: Stage[] = o.only
    ? o.only.split(',').map((s) => {
        const t = s.trim();
        if (!(STAGES as readonly string[]).includes(t)) throw new Error(`--only: unknown stage "${t}" (use ${STAGES.join(', ')})`);
        return t as Stage;
      })
    : [...STAGES];
  if (process.getuid && process.getuid() !== 0) throw new Error('the benchmark needs root (BPF, network namespaces)');
  const out = o.out ?? join(packageRoot(), 'bench', 'results', quick ? 'quick' : 'latest');
  const command = `npm run bench${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}`;

  const onSignal = (sig: NodeJS.Signals): void => {
    runCleanups();
    cleanupLeftovers();
    process.exit(sig === 'SIGINT' ? 130 : 143);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  cleanupLeftovers();
  const progress = new Progress();
  const report: Report = { meta: collectMeta(command, quick, stages), stages: {} };
  let failed = false;
  try {
    for (const s of stages) {
      let res: StageResult;
      let error: string | undefined;
      // The kernel's share of the stage before (namespaces and OVS torn down, maps freed) is done first.
      const settled = o.smoke ? null : await settle();
      const t0 = Date.now(); // (the stage's own time: settling is not part of it)
      try {
        if (s === 'hotpath') res = await runHotpath({ quick, progress });
        else if (s === 'e2e') res = await runE2e({ quick, smoke: Boolean(o.smoke), progress });
        else res = await runScale({ quick, smoke: Boolean(o.smoke), progress });
      } catch (e) {
        failed = true;
        error = (e as Error).stack ?? String(e);
        res = { figures: [], ratios: [], notes: [] };
      }
      if (settled) {
        const bound = `all CPUs together < ${SETTLE_IDLE_SHARE * 100} % busy for 1 s`;
        res.notes.push(
          settled.idle
            ? `started after the machine settled (${bound}; waited ${settled.waitedS} s, at most ${SETTLE_MAX_S})`
            : `started without the machine settling (${bound}) within ${SETTLE_MAX_S} s`,
        );
      }
      report.stages[s] = { ...res, seconds: round((Date.now() - t0) / 1000, 1), ...(error ? { error } : {}) };
      // Written after every stage, so that a later stage's failure keeps the earlier figures.
      await write(report, out, o.json);
    }
  } finally {
    progress.stop();
    runCleanups();
    cleanupLeftovers();
  }

  const md = await write(report, out, o.json);
  console.log(md);
  console.log(`results: ${o.json ?? `${out}.json`}, ${out}.md, ${out}.svg`);
  for (const [s, st] of Object.entries(report.stages)) {
    if (st?.error) console.log(`stage ${s} FAILED: ${st.error.split('\n')[0]}`);
  }
  return failed ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    console.error(`bench: ${(e as Error).message}`);
    runCleanups();
    process.exit(1);
  },
);
