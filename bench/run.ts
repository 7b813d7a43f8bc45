/**
 * `npm run bench`: per-packet cost of xlb's hot paths next to a no-op program
 * on the same hook.
 *
 * Method "cold": BPF_PROG_TEST_RUN with repeat = 1, once per packet, over many
 * packets; the figure is the median of the kernel-reported durations. (With
 * repeat > 1 the kernel re-runs the program on its own rewritten output, which
 * would measure the pass-through path instead.) The no-op program runs the
 * same packets in the same loop, interleaved, so the difference is xlb's cost.
 *
 * Paths: established flow (conntrack hit + DNAT), new flow (distinct 5-tuples:
 * conntrack miss → VIP → Maglev → two conntrack inserts → DNAT), non-LB
 * traffic passing through, and the reply (reverse NAT) on tc egress.
 *
 * Flags: --quick (fewer packets), --json FILE (write the results there too).
 */
import { writeFileSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { cpus, release } from 'node:os';
import { Dataplane } from '../src/dataplane.js';
import { compile } from '../src/compile.js';
import { validateConfig } from '../src/config.js';
import { applyCompiled } from '../src/writer.js';
import { loadNative } from '../src/native.js';
import { packageRoot } from '../src/paths.js';
import { parseIPv4 } from '../src/addr.js';

const PIN_ROOT = '/sys/fs/bpf/xlb-bench';
const IFINDEX = 1; // lo: a key in xlb_ifaces only; nothing is attached

interface Row {
  hook: string;
  path: string;
  medianNs: number;
  noopMedianNs: number;
  aboveNoopNs: number;
  samples: number;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** An Ethernet/IPv4/TCP frame with a full checksum (64 bytes on the wire plus payload). */
function tcpFrame(src: number, dst: number, sport: number, dport: number, flags: number): Buffer {
  const f = Buffer.alloc(14 + 20 + 20 + 10);
  f.writeUInt16BE(0x0800, 12);
  const ip = 14;
  f[ip] = 0x45;
  f.writeUInt16BE(50, ip + 2);
  f.writeUInt16BE(0x4000, ip + 6);
  f[ip + 8] = 64;
  f[ip + 9] = 6;
  f.writeUInt32BE(src, ip + 12);
  f.writeUInt32BE(dst, ip + 16);
  let s = 0;
  for (let i = 0; i < 20; i += 2) s += f.readUInt16BE(ip + i);
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  f.writeUInt16BE(~s & 0xffff, ip + 10);
  const t = ip + 20;
  f.writeUInt16BE(sport, t);
  f.writeUInt16BE(dport, t + 2);
  f[t + 12] = 5 << 4;
  f[t + 13] = flags;
  f.writeUInt16BE(64240, t + 14);
  // The checksum value does not matter for the cost; xlb updates it incrementally.
  return f;
}

function main(): void {
  const quick = process.argv.includes('--quick');
  const jsonIdx = process.argv.indexOf('--json');
  const jsonOut = jsonIdx >= 0 ? process.argv[jsonIdx + 1] : join(packageRoot(), 'bench', 'results', 'hotpath.json');
  const n = quick ? 200 : 5000;
  const native = loadNative();

  Dataplane.removePins(PIN_ROOT);
  const dp = Dataplane.open({ pinRoot: PIN_ROOT });
  const floor = native.openObject(join(packageRoot(), 'build', 'bpf', 'bench.bpf.o'), {});
  const prog = (name: string): number => floor.programs.find((p) => p.name === name)!.fd;
  try {
    const backends = Array.from({ length: 16 }, (_, i) => `10.1.0.${i + 1}:8080`).join(',');
    const desired = validateConfig({
      load_balancers: [{ name: 'bench', protocol: 'tcp', vips: { '10.0.0.1:80': backends } }],
      logical_switches: [{ name: 'sw', ports: ['lo'], load_balancer: ['bench'] }],
    });
    applyCompiled(dp.store(), compile(desired), new Map([['lo', IFINDEX]]));

    const client = parseIPv4('192.168.0.1');
    const vip = parseIPv4('10.0.0.1');
    const run = (fd: number, data: Buffer): number => native.progTestRun(fd, { data, ifindex: IFINDEX, repeat: 1 }).duration;

    const hooks = [
      { hook: 'xdp', xlb: dp.progs.xlb_xdp_ingress, noop: prog('bench_xdp_noop') },
      { hook: 'tc', xlb: dp.progs.xlb_tc_ingress, noop: prog('bench_tc_noop') },
    ];
    const rows: Row[] = [];
    let port = 1024;
    for (const h of hooks) {
      const paths: Record<string, { xlb: number[]; noop: number[] }> = {
        'established flow': { xlb: [], noop: [] },
        'new flow': { xlb: [], noop: [] },
        'not LB traffic': { xlb: [], noop: [] },
      };
      const established = tcpFrame(client, vip, 40000, 80, 0x02);
      run(h.xlb, established); // creates the conntrack entries
      const est = tcpFrame(client, vip, 40000, 80, 0x10);
      const other = tcpFrame(client, parseIPv4('10.0.0.9'), 40000, 80, 0x10);
      for (let i = 0; i < n; i++) {
        // Interleave xlb and no-op on the same packets.
        paths['established flow'].xlb.push(run(h.xlb, est));
        paths['established flow'].noop.push(run(h.noop, est));
        const fresh = tcpFrame(client + (port >>> 16), vip, port & 0xffff || 1, 80, 0x02);
        port++;
        paths['new flow'].xlb.push(run(h.xlb, fresh));
        paths['new flow'].noop.push(run(h.noop, fresh));
        paths['not LB traffic'].xlb.push(run(h.xlb, other));
        paths['not LB traffic'].noop.push(run(h.noop, other));
      }
      for (const [path, s] of Object.entries(paths)) {
        const m = median(s.xlb);
        const f = median(s.noop);
        rows.push({ hook: h.hook, path, medianNs: m, noopMedianNs: f, aboveNoopNs: m - f, samples: n });
      }
    }
    // Reply path: tc egress, conntrack reverse hit + SNAT back to the VIP.
    {
      const syn = tcpFrame(client, vip, 41000, 80, 0x02);
      const out = native.progTestRun(dp.progs.xlb_tc_ingress, { data: syn, ifindex: IFINDEX, repeat: 1 }).data;
      const backend = out.readUInt32BE(14 + 16);
      const reply = tcpFrame(backend, client, 8080, 41000, 0x12);
      const x: number[] = [];
      const f: number[] = [];
      for (let i = 0; i < n; i++) {
        x.push(run(dp.progs.xlb_tc_egress, reply));
        f.push(run(prog('bench_tc_noop'), reply));
      }
      rows.push({ hook: 'tc egress', path: 'reply (reverse NAT)', medianNs: median(x), noopMedianNs: median(f), aboveNoopNs: median(x) - median(f), samples: n });
    }

    const meta = {
      date: new Date().toISOString(),
      kernel: release(),
      cpu: cpus()[0]?.model ?? 'unknown',
      cpus: cpus().length,
      node: process.version,
      method: 'cold: BPF_PROG_TEST_RUN, repeat=1 per packet, median of kernel-reported durations; no-op on the same hook interleaved',
      samplesPerFigure: n,
    };
    console.log(`xlb hot path — ${meta.method}`);
    console.log(`kernel ${meta.kernel}, ${meta.cpus} × ${meta.cpu}, ${n} samples per figure\n`);
    console.log('| hook | path | xlb median (ns) | no-op median (ns) | xlb above no-op (ns) |');
    console.log('|---|---|---:|---:|---:|');
    for (const r of rows) {
      console.log(`| ${r.hook} | ${r.path} | ${r.medianNs} | ${r.noopMedianNs} | ${r.aboveNoopNs} |`);
    }
    mkdirSync(dirname(jsonOut), { recursive: true });
    writeFileSync(jsonOut, JSON.stringify({ meta, rows }, null, 2));
    console.log(`\nresults: ${jsonOut}`);
  } finally {
    native.closeObject(floor.handle);
    dp.close();
    Dataplane.removePins(PIN_ROOT);
  }
}

main();
