/**
 * PUT /v1/load-balancers/{name}/vips/{vip} at 10,000 VIPs × 64 backends
 * (M = 16381), measured from request to response on a real daemon (child
 * process, unix socket). The response is sent after the apply has written the
 * kernel maps and the API state is persisted (Daemon.mutate runs
 * applyFragments, then ApiSource.commit, then answers). The daemon runs in
 * this process (the CLI has no option for backend-map sizes of 640,000).
 *
 * The 10,000 VIPs are seeded as the daemon's persisted API state (a PUT body
 * is limited to 1 MiB), on a veth of the root namespace without traffic.
 *
 *   node dist/bench/api-put.js [PUTS]
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { XlbClient } from '../src/daemon/client.js';
import { Daemon } from '../src/daemon/daemon.js';
import { Xlb } from '../src/xlb.js';
import { sh, shQuiet } from './common.js';

const tag = `xap-${process.pid}`;
const PIN_ROOT = `/sys/fs/bpf/xlb-${tag}`;
const STATE_DIR = `/run/xlb-${tag}`;
const PORT = `xap${process.pid % 100000}a`;
const PEER = `xap${process.pid % 100000}b`;
const N_VIPS = 10_000;
const BACKENDS = 64;
const PUTS = Number(process.argv[2] ?? 20);

const vipAddr = (i: number): string => `10.200.${i >> 8}.${i & 255}`;
const backendList = (i: number, shift = 0): string =>
  Array.from({ length: BACKENDS }, (_, j) => `10.${1 + (i >> 8)}.${i & 255}.${j + 1 + shift}:8080`).join(',');

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) >> 1]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}

async function main(): Promise<void> {
  const vips: Record<string, string> = {};
  for (let i = 0; i < N_VIPS; i++) vips[`${vipAddr(i)}:80`] = backendList(i);
  mkdirSync(STATE_DIR, { recursive: true, mode: 0o700 });
  writeFileSync(
    join(STATE_DIR, 'api-state.json'),
    JSON.stringify({ version: 1, fragment: { load_balancers: [{ name: 'scale', protocol: 'tcp', vips }], logical_switches: [{ name: 'sw', ports: [PORT], load_balancer: ['scale'] }], logical_routers: [] } }),
  );
  sh('ip', ['link', 'add', PORT, 'type', 'veth', 'peer', 'name', PEER]);
  sh('ip', ['link', 'set', PORT, 'up']);
  sh('ip', ['link', 'set', PEER, 'up']);
  const socket = join(STATE_DIR, 'bench-api.sock');
  let daemon: Daemon | null = null;
  try {
    const t0 = performance.now();
    daemon = await Daemon.start({
      pinRoot: PIN_ROOT,
      stateDir: STATE_DIR,
      apiSocket: socket,
      logLevel: 'warn',
      ctGcIntervalS: 0,
      mapSizes: { vips: 16384, backends: N_VIPS * BACKENDS + 1024, conntrack: 1 << 16 },
    });
    console.log(`daemon ready with ${N_VIPS} VIPs × ${BACKENDS} backends in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    const client = new XlbClient({ socketPath: socket });
    const ms: number[] = [];
    const applyMs: number[] = [];
    for (let p = 0; p < PUTS; p++) {
      const i = (p * 997) % N_VIPS;
      const t = performance.now();
      const r = (await client.setVip('scale', `${vipAddr(i)}:80`, backendList(i, 1 + (p % 2)))) as { apply: { durationMs: number; writes: number } };
      ms.push(performance.now() - t);
      applyMs.push(r.apply.durationMs);
    }
    console.log(`PUT one VIP's backends at ${N_VIPS} VIPs: median ${median(ms).toFixed(2)} ms (min ${Math.min(...ms).toFixed(2)}, max ${Math.max(...ms).toFixed(2)}) over ${PUTS}; the daemon's apply ${median(applyMs).toFixed(2)} ms median`);
  } finally {
    await daemon?.stop();
    Xlb.reset({ pinRoot: PIN_ROOT, stateDir: STATE_DIR });
    shQuiet('ip', ['link', 'del', PORT]);
    rmSync(STATE_DIR, { recursive: true, force: true });
    rmSync(PIN_ROOT, { recursive: true, force: true });
  }
}

await main();
