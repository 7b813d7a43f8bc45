/**
 * OVN Northbound change → kernel: real OVN in a namespace, `xlb daemon
 * --ovn-nb` following it, and for each sample one `ovn-nbctl lb-add` of a new
 * VIP to a load balancer already on the switch. The time runs from the moment
 * ovn-nbctl returns (the NB transaction is committed) until the VIP is in the
 * kernel's xlb_vip4 map (polled every 0.25 ms in this process).
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

/** Latencies in ms of `n` NB changes reaching the kernel. */
export async function nbToKernelLatencies(n: number): Promise<number[]> {
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
    const out: number[] = [];
    for (let i = 0; i < n; i++) {
      const vip = `10.200.${i >> 8}.${(i & 0xff) + 1}`;
      sb.nbctl('lb-add', 'lb1', `${vip}:80`, '172.16.255.130:80', 'tcp');
      const t0 = performance.now();
      if (!spinUntil(() => has(parseIPv4(vip)), 5_000)) throw new Error(`${vip} did not reach the kernel within 5 s`);
      out.push(performance.now() - t0);
    }
    if (fd >= 0) native.closeFd(fd);
    return out;
  } finally {
    unregister();
    cleanup();
  }
}
