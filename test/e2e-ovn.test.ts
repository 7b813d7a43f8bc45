/**
 * Real OVN on this host (OVS userspace datapath, ovn-northd, ovn-controller, in
 * the namespace xlb-o-hv), the seed topology, the load balancer configured
 * with ovn-nbctl exactly as an OVN user would — and `xlb daemon --ovn-nb`
 * serving it: xlb's own counters move, curl from vm3 gets both backends, and
 * an lb-add / lb-del reaches the kernel within 2 s.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { OvnSandbox } from '../src/ovn/sandbox.js';
import { Xlb } from '../src/xlb.js';
import { XlbClient } from '../src/daemon/client.js';
import { ROOT, run, sleep, TIMEOUT_S } from './helpers/e2e.js';
import { DaemonProc, DAEMON_TIMEOUT_S, waitFor } from './helpers/daemon.js';

const P = 'xlb-o-';
const HV = `${P}hv`;
const VIP = '172.16.255.62';
const PORT = 8000;
const IPS = { vm1: '172.16.255.130', vm2: '172.16.255.131', vm3: '172.16.255.194' } as const;
const instance = { pinRoot: '/sys/fs/bpf/xlb-ovn', stateDir: '/run/xlb-ovn' };
/** Upper bound for an NB change to reach the kernel (the issue: tests assert 2 s). */
const NB_TO_KERNEL_S = Number(process.env.XLB_TEST_NB_BOUND_S ?? 2);

let sb: OvnSandbox | null = null;
let daemon: DaemonProc | null = null;
let dir: string;
const backends: ChildProcess[] = [];

function mac(n: number): string {
  return `0a:00:00:00:00:${n.toString(16).padStart(2, '0')}`;
}

async function curl(): Promise<string | null> {
  const r = await run('ip', ['netns', 'exec', `${P}vm3`, 'curl', '-s', '--max-time', String(TIMEOUT_S), `http://${VIP}:${PORT}/`], TIMEOUT_S + 5);
  return r.code === 0 ? r.stdout.trim() : null;
}

beforeAll(async () => {
  Xlb.reset(instance);
  sb = OvnSandbox.start({ netns: HV });
  // The seed topology: vm1, vm2 on "dmz", vm3 on "inside", router tenant1 between.
  sb.nbctl('ls-add', 'inside', '--', 'ls-add', 'dmz', '--', 'lr-add', 'tenant1');
  sb.nbctl('lrp-add', 'tenant1', 'tenant1-inside', '02:ac:10:ff:01:93', '172.16.255.193/26');
  sb.nbctl('lrp-add', 'tenant1', 'tenant1-dmz', '02:ac:10:ff:01:29', '172.16.255.129/26');
  for (const [sw, rp] of [
    ['inside', 'tenant1-inside'],
    ['dmz', 'tenant1-dmz'],
  ] as const) {
    sb.nbctl('lsp-add', sw, `${sw}-tenant1`, '--', 'lsp-set-type', `${sw}-tenant1`, 'router', '--', 'lsp-set-addresses', `${sw}-tenant1`, 'router', '--', 'lsp-set-options', `${sw}-tenant1`, `router-port=${rp}`);
  }
  const vms = [
    ['vm1', 'dmz', 1, '172.16.255.129'],
    ['vm2', 'dmz', 2, '172.16.255.129'],
    ['vm3', 'inside', 3, '172.16.255.193'],
  ] as const;
  for (const [vm, sw, n, gw] of vms) {
    const lsp = `${sw}-${vm}`;
    sb.nbctl('lsp-add', sw, lsp, '--', 'lsp-set-addresses', lsp, `${mac(n)} ${IPS[vm]}`);
    sb.plugVm({ ns: `${P}${vm}`, hostIf: `${P}${vm}-h`, lsp, mac: mac(n), cidr: `${IPS[vm]}/26`, gateway: gw });
  }
  for (const vm of ['vm1', 'vm2'] as const) {
    const child = spawn('ip', ['netns', 'exec', `${P}${vm}`, process.execPath, join(ROOT, 'dist', 'src', 'lab-backend.js'), `i am ${vm}`, String(PORT), '8001', '8053'], {
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    backends.push(child);
    await new Promise<void>((resolve) => child.stdout!.once('data', () => resolve()));
  }
  sb.syncHv();
  dir = mkdtempSync(join(tmpdir(), 'xlb-ovn-'));
  daemon = await DaemonProc.start(instance, [
    '--ovn-nb', `unix:${sb.nbSock}`,
    '--ovs-db', `unix:${sb.ovsSock}`,
    '--ovs-netns', HV,
    '--api-socket', join(dir, 'api.sock'),
  ]);
}, 240_000);

afterAll(async () => {
  await daemon?.stop();
  for (const b of backends) b.kill('SIGKILL');
  Xlb.reset(instance);
  sb?.teardown();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('xlb daemon mirroring real OVN', () => {
  it('ovn-nbctl lb-add + ls-lb-add reach the kernel within the bound; vm3 gets both backends through xlb', async () => {
    const client = new XlbClient({ socketPath: join(dir, 'api.sock') });
    const t0 = performance.now();
    sb!.nbctl('lb-add', 'lb1', `${VIP}:${PORT}`, `${IPS.vm1}:${PORT},${IPS.vm2}:${PORT}`, 'tcp');
    sb!.nbctl('ls-lb-add', 'inside', 'lb1');
    const stats = await waitFor(
      async () => {
        const s = (await client.stats()) as unknown as { vips: Array<{ vip: string; servedBy: string[] }>; ifaces: Array<{ interface: string; hook: string }> };
        return s.vips.some((v) => v.vip === `${VIP}:${PORT}` && v.servedBy.includes('switch inside')) && s.ifaces.length > 0 ? s : null;
      },
      DAEMON_TIMEOUT_S,
      'the VIP in the kernel',
      10,
    );
    const latencyS = (performance.now() - t0) / 1000;
    console.log(`ovn-nbctl lb-add + ls-lb-add → kernel: ${(latencyS * 1000).toFixed(0)} ms (two ovn-nbctl runs included)`);
    expect(latencyS).toBeLessThanOrEqual(NB_TO_KERNEL_S);
    // vm3's port is on OVS's userspace datapath: xlb serves it on XDP.
    expect(stats.ifaces).toEqual([expect.objectContaining({ interface: `${HV}/${P}vm3-h`, hook: 'xdp' })]);
    sb!.syncHv();

    const seen = new Map<string, number>();
    for (let i = 0; i < 20; i++) {
      const body = (await curl()) ?? 'FAILED';
      seen.set(body, (seen.get(body) ?? 0) + 1);
    }
    expect(seen.get('FAILED')).toBeUndefined();
    expect([...seen.keys()].sort()).toEqual(['i am vm1', 'i am vm2']);
    const after = (await client.stats()) as unknown as { vips: Array<{ vip: string; stats: { newConns: number; packets: number } }> };
    const vip = after.vips.find((v) => v.vip === `${VIP}:${PORT}`)!;
    // xlb balanced every one of them (before OVS saw the packets).
    expect(vip.stats.newConns).toBeGreaterThanOrEqual(20);
    expect(sb!.vswitchdAlive()).toBe(true);
  });

  it('ovn-nbctl lb-del reaches the kernel within the bound', async () => {
    const client = new XlbClient({ socketPath: join(dir, 'api.sock') });
    const t0 = performance.now();
    sb!.nbctl('lb-del', 'lb1');
    await waitFor(
      async () => {
        const s = (await client.stats()) as unknown as { vips: unknown[] };
        return s.vips.length === 0 ? true : null;
      },
      DAEMON_TIMEOUT_S,
      'the VIP gone',
      10,
    );
    expect((performance.now() - t0) / 1000).toBeLessThanOrEqual(NB_TO_KERNEL_S);
    await sleep(200);
  });
});
