#!/usr/bin/env node
/**
 * The `xlb` command line: a thin user of the library API (src/xlb.ts).
 */
import { Command, InvalidArgumentError, Option } from 'commander';
import { Xlb, type ShowReport } from './xlb.js';
import { DEFAULT_PIN_ROOT } from './dataplane.js';
import { DEFAULT_STATE_DIR } from './xlb.js';
import { runLab } from './lab-run.js';
import type { Hook } from './config.js';
import { registerDaemonVerbs } from './daemon/cli-verbs.js';

interface GlobalOpts {
  pinRoot: string;
  stateDir: string;
}

function positiveInt(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError(`must be a positive integer (got "${v}")`);
  return n;
}

const fmtBig = (n: bigint): string => n.toLocaleString('en-US');

/** Renders `xlb show` for a person. */
export function renderShow(r: ShowReport): string {
  const lines: string[] = [];
  lines.push(`pins: ${r.pinRoot}`);
  lines.push(`conntrack: ${r.conntrack.entries} of ${r.conntrack.max} entries (${r.conntrack.unconfirmed} of ${r.conntrack.unconfirmedMax} in the new-flow tier)`);
  if (r.conntrack.ipv6) lines.push(`conntrack IPv6: ${r.conntrack.ipv6.entries} of ${r.conntrack.ipv6.max} entries`);
  lines.push('');
  lines.push('interfaces:');
  if (r.ifaces.length === 0) lines.push('  (none)');
  for (const i of r.ifaces) {
    const mode = i.hook === 'xdp' ? `xdp/${i.xdpMode}` : 'tc';
    const companion = i.hook === 'xdp' ? ' (+ tc ingress for replies sent back)' : '';
    lines.push(`  ${i.interface} (ifindex ${i.ifindex}, ${i.owner}): ${mode} ingress${companion} + tc egress — ${i.reason}`);
  }
  lines.push('');
  lines.push('VIPs:');
  if (r.vips.length === 0) lines.push('  (none)');
  for (const v of r.vips) {
    const s = v.stats;
    const sel = v.selectionFields?.length ? `, hash ${v.selectionFields.join('+')}` : '';
    const aff = v.affinityTimeoutS ? `, affinity ${v.affinityTimeoutS}s` : '';
    const rej = v.reject ? ', reject' : '';
    const arp = v.arpOn?.length ? `, ARP answered on ${v.arpOn.join(', ')}` : '';
    lines.push(
      `  ${v.vip}/${v.protocol} (lb ${v.lb}, M=${v.maglevSize}${sel}${aff}${rej}${arp}, on ${v.servedBy.join(', ') || 'nothing'}): ` +
        `${fmtBig(s.packets)} pkts ${fmtBig(s.bytes)} bytes in, ${fmtBig(s.replyPackets)} pkts out, ` +
        `${fmtBig(s.newConns)} conns, ${fmtBig(s.drops)} drops${v.reject ? `, ${fmtBig(s.rejects)} rejected` : ''}`,
    );
    for (const sn of v.snat ?? []) lines.push(`    source NAT on ${sn}`);
    if (v.hairpinSource) lines.push(`    hairpin: a backend calling its own VIP sees ${v.hairpinSource}`);
    if (v.backends.length === 0) lines.push('    (no backends)');
    for (const b of v.backends) {
      const w = b.drained ? ' (draining)' : b.weight !== undefined && b.weight !== 1 ? ` (weight ${b.weight})` : '';
      lines.push(`    → ${b.text}${w}: ${fmtBig(b.stats.packets)} pkts, ${fmtBig(b.stats.newConns)} conns`);
    }
  }
  if (r.warnings?.length) {
    lines.push('');
    lines.push('warnings:');
    for (const w of r.warnings) lines.push(`  ${w}`);
  }
  return lines.join('\n');
}

function jsonReplacer(_k: string, v: unknown): unknown {
  return typeof v === 'bigint' ? Number(v) : v;
}

export function buildCli(): Command {
  const program = new Command();
  program
    .name('xlb')
    .description('An L4 load balancer for OVS/OVN hosts: OVN load balancers served by eBPF in the host kernel')
    .option('--pin-root <dir>', 'bpffs directory of the maps and programs', DEFAULT_PIN_ROOT)
    .option('--state-dir <dir>', 'directory of xlb bookkeeping', DEFAULT_STATE_DIR)
    .showHelpAfterError();

  const g = (): GlobalOpts => program.opts<GlobalOpts>();

  program
    .command('apply')
    .description('serve the load balancers of a config file (YAML or JSON); idempotent, updates in place')
    .argument('<file>', 'config file')
    .action((file: string) => {
      const x = Xlb.open({ pinRoot: g().pinRoot, stateDir: g().stateDir });
      try {
        const r = x.applyFile(file);
        for (const i of r.ifaces) {
          console.log(`${i.interface}: ${i.hook === 'xdp' ? `xdp (${i.xdpMode})` : 'tc'} — ${i.reason}`);
        }
        for (const d of r.detached) console.log(`${d}: detached`);
        for (const w of r.warnings) console.log(`warning: ${w}`);
        const s = r.summary;
        console.log(
          r.unchanged
            ? 'unchanged: the kernel already serves this config'
            : `applied: ${s.vips.written} VIP entries written, ${s.vips.removed} removed; ` +
                `${s.tables.swapped} Maglev tables swapped${s.tables.patched ? ` (${s.tables.patched} rewritten in place)` : ''}, ${s.tables.removed} removed; ` +
                `${s.backends.written} backends written, ${s.backends.removed} removed`,
        );
      } finally {
        x.close();
      }
    });

  program
    .command('show')
    .description('VIPs, backends, attached interfaces, conntrack usage and counters')
    .option('--json', 'machine-readable output')
    .action((opts: { json?: boolean }) => {
      if (!Xlb.isLoaded(g().pinRoot)) {
        // Showing must not load anything: say plainly that nothing is there.
        console.log(opts.json ? JSON.stringify({ pinRoot: g().pinRoot, loaded: false, ifaces: [], vips: [] }) : `nothing is served: no xlb pins under ${g().pinRoot}`);
        return;
      }
      const x = Xlb.open({ pinRoot: g().pinRoot, stateDir: g().stateDir });
      try {
        const r = x.show();
        console.log(opts.json ? JSON.stringify({ ...r, loaded: true }, jsonReplacer, 2) : renderShow(r));
      } finally {
        x.close();
      }
    });

  program
    .command('reset')
    .description('detach xlb from every interface and remove its pins and bookkeeping')
    .action(() => {
      const r = Xlb.reset({ pinRoot: g().pinRoot, stateDir: g().stateDir });
      console.log(r.detached.length ? `detached: ${r.detached.join(', ')}` : 'nothing was attached');
      console.log(`removed ${g().pinRoot}`);
    });

  program
    .command('lab')
    .description('build the seed topology in network namespaces, serve its VIP, curl it from vm3, tear down')
    .option('--requests <n>', 'number of curls from vm3', positiveInt, 20)
    .addOption(new Option('--hook <hook>', 'ingress hook on vm3\'s interface').choices(['auto', 'tc', 'xdp', 'xdp-generic']).default('auto'))
    .option('--keep', 'leave the lab running (remove it with `xlb lab --down`)')
    .option('--down', 'only remove a lab left running')
    .action(async (opts: { requests: number; hook: Hook; keep?: boolean; down?: boolean }) => {
      process.exitCode = await runLab(opts);
    });

  // The daemon and the verbs of its API (src/daemon/cli-verbs.ts).
  registerDaemonVerbs(program, g);

  return program;
}

async function main(): Promise<void> {
  try {
    await buildCli().parseAsync(process.argv);
  } catch (e) {
    const err = e as Error & { code?: string };
    console.error(`xlb: ${err.message}`);
    process.exitCode = 1;
  }
}

void main();
