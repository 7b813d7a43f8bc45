/**
 * OVN Northbound change → kernel: real OVN in a namespace, `xlb daemon
 * --ovn-nb` following it, and for each sample one `ovn-nbctl lb-add` of a new
 * VIP to a load balancer already on the switch. The time runs from the moment
 * ovn-nbctl returns (the NB transaction is committed) until the VIP is in the
 * kernel's xlb_vip4 map (polled every 0.25 ms in this process). Samples come
 * in rounds, each into a load balancer of its own that is removed (and gone
 * from the kernel) before the next round: every round starts from the same
 * NB contents.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { OvnSandbox } from '../src/ovn/sandbox.js';
import { loadNative } from '../src/native.js';
import { packageRoot } from '../src/paths.js';
import { parseIPv4 } from '../src/addr.js';
import { LAYOUT } from '../src/layout.js';
import { Xlb } from '../src/xlb.js';
import { PREFIX } from './common.js';
import { onCleanup } from './cleanup.js';

const INSTANCE = { pinRoot: '/sys/fs/bpf/xlb-bench-nbk', stateDir: '/run/xlb-bench-nbk' };

function spinUntil(pred: () => boolean, timeoutMs: number): boolean {
  const cell = new Int32Array(new SharedArrayBuffer(4));
  const end = performance.now() + timeoutMs;
  while (performance.now() < end) {
    if (pred()) return true;
    Atomics.wait(cell, 0, 0, 0.25);
  }
  return false;
}

/** Latencies in ms of `n` NB changes reaching the kernel, in each of `rounds` rounds. */
export async function nbToKernelLatencies(n: number, rounds = 1): Promise<number[][]> {
  const native = loadNative();
  Xlb.reset(INSTANCE);
  const sb = OvnSandbox.start({ netns: `${PREFIX}nbk` });
  const dir = mkdtempSync(join(tmpdir(), 'xlb-bench-nbk-'));
  let daemon: ReturnType<typeof spawn> | null = null;
  const cleanup = (): void => {
    daemon?.kill('SIGKILL');
    Xlb.reset(INSTANCE);
    rmSync(INSTANCE.stateDir, { recursive: true, force: true });
    sb.teardown();
    rmSync(dir, { recursive: true, force: true });
  };
  const unregister = onCleanup(cleanup);
  try {
    sb.nbctl('ls-add', 'inside');
    sb.nbctl('lsp-add', 'inside', 'inside-vm3', '--', 'lsp-set-addresses', 'inside-vm3', '0a:00:00:00:00:03 172.16.255.194');
    sb.plugVm({ ns: `${PREFIX}nbk-vm3`, hostIf: `${PREFIX}nbk3`, lsp: 'inside-vm3', mac: '0a:00:00:00:00:03', cidr: '172.16.255.194/26' });
    sb.nbctl('lb-add', 'lb1', '172.16.255.62:80', '172.16.255.130:80', 'tcp');
    sb.nbctl('ls-lb-add', 'inside', 'lb1');
    daemon = spawn(
      process.execPath,
      [
        join(packageRoot(), 'dist', 'src', 'cli.js'),
        '--pin-root', INSTANCE.pinRoot,
        '--state-dir', INSTANCE.stateDir,
        'daemon',
        '--ovn-nb', `unix:${sb.nbSock}`,
        '--ovs-db', `unix:${sb.ovsSock}`,
        '--ovs-netns', `${PREFIX}nbk`,
        '--api-socket', join(dir, 'api.sock'),
        '--log-level', 'warn',
      ],
      { stdio: ['ignore', 'ignore', 'inherit'] },
    );
    const vip4 = join(INSTANCE.pinRoot, 'xlb_vip4');
    let fd = -1;
    const has = (addr: number): boolean => {
      if (fd < 0) {
        try {
          fd = native.objGet(vip4);
        } catch {
          return false;
        }
      }
      const d = native.mapDump(fd, LAYOUT.xlb_vip4_key.size, LAYOUT.xlb_vip_val.size);
      for (let i = 0; i < d.count; i++) if (d.keys.readUInt32BE(i * LAYOUT.xlb_vip4_key.size) === addr) return true;
      return false;
    };
    if (!spinUntil(() => has(parseIPv4('172.16.255.62')), 30_000)) throw new Error('the daemon did not serve lb1 within 30 s');
    if (n > 254) throw new Error(`at most 254 samples per round (got ${n}): a round's VIPs are 10.(200 + round).0.1 – .255`);
    const out: number[][] = [];
    for (let r = 0; r < rounds; r++) {
      // lb1 stays; round r's VIPs are 10.(200 + r).x.y in load balancer lb-r.
      const lb = `lb-r${r}`;
      const vipOf = (i: number): string => `10.${200 + r}.${(i >> 8) & 0xff}.${(i & 0xff) + 1}`;
      const first = vipOf(0);
      sb.nbctl('lb-add', lb, `${first}:80`, '172.16.255.130:80', 'tcp');
      sb.nbctl('ls-lb-add', 'inside', lb);
      if (!spinUntil(() => has(parseIPv4(first)), 5_000)) throw new Error(`${first} did not reach the kernel within 5 s`);
      const lat: number[] = [];
      for (let i = 1; i <= n; i++) {
        const vip = vipOf(i);
        sb.nbctl('lb-add', lb, `${vip}:80`, '172.16.255.130:80', 'tcp');
        const t0 = performance.now();
        if (!spinUntil(() => has(parseIPv4(vip)), 5_000)) throw new Error(`${vip} did not reach the kernel within 5 s`);
        lat.push(performance.now() - t0);
      }
      out.push(lat);
      sb.nbctl('ls-lb-del', 'inside', lb);
      sb.nbctl('lb-del', lb);
      if (!spinUntil(() => !has(parseIPv4(first)), 10_000)) throw new Error(`${lb}'s VIPs were still in the kernel 10 s after its removal`);
    }
    if (fd >= 0) native.closeFd(fd);
    return out;
  } finally {
    unregister();
    cleanup();
  }
}
