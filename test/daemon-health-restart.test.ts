/**
 * The daemon end to end (real kernel, the lab with prefix xlb-dh-):
 * - health checks run by the daemon: the seed experiment — stop vm1's server
 *   while vm3 curls the VIP in a loop: failures only within
 *   (failure_count + 1) × interval + timeout + 1 s of the stop, none after;
 *   restart vm1 and it receives traffic again;
 * - restart safety: `kill -9` the daemon during a long TCP conversation through
 *   the VIP, start it again: the conversation completes without a reset and
 *   nothing that did not change is rebuilt (same maps, programs, filters; the
 *   startup apply writes nothing).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { BACKENDS, Lab, labConfig, labNames } from '../src/lab.js';
import { Xlb } from '../src/xlb.js';
import { loadNative } from '../src/native.js';
import { Dataplane, TC_HANDLE, TC_PRIORITY } from '../src/dataplane.js';
import { XlbClient } from '../src/daemon/client.js';
import { nsNode, sleep, TIMEOUT_S } from './helpers/e2e.js';
import { DaemonProc, DAEMON_TIMEOUT_S, waitFor } from './helpers/daemon.js';

const N = labNames('xlb-dh-');
const instance = { pinRoot: '/sys/fs/bpf/xlb-dh', stateDir: '/run/xlb-dh' };
/** Health-check timing of the test (seconds), overridable. */
const HC = {
  interval: Number(process.env.XLB_TEST_HC_INTERVAL_S ?? 0.5),
  timeout: Number(process.env.XLB_TEST_HC_TIMEOUT_S ?? 0.5),
  success_count: 2,
  failure_count: 2,
};
const PROBE_SOURCE = '172.16.255.140'; // free address on dmz, as OVN's svc_monitor source

let lab: Lab;
let dir: string;
let file: string;
let daemon: DaemonProc | null = null;

function configWithHealth(): string {
  const c = labConfig('tc', BACKENDS, N) as { load_balancers: Array<Record<string, unknown>> };
  const lb1 = c.load_balancers[0];
  lb1.ip_port_mappings = {
    [N.vms.vm1.ip]: `${N.hv}/${N.vms.vm1.hostIf}:${PROBE_SOURCE}`,
    [N.vms.vm2.ip]: `${N.hv}/${N.vms.vm2.hostIf}:${PROBE_SOURCE}`,
  };
  lb1.health_check = [{ vip: `${N.vip}:${N.port}`, options: HC }];
  return stringify(c);
}

/** GET /metrics over the API socket. */
function fetchMetrics(socketPath: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ socketPath, path: '/metrics', method: 'GET' }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve(body));
    });
    req.on('error', reject);
    req.end();
  });
}

async function startDaemon(): Promise<DaemonProc> {
  return DaemonProc.start(instance, ['--config', file, '--api-socket', join(dir, 'api.sock'), '--ct-gc-interval', '1']);
}

beforeAll(async () => {
  Xlb.reset(instance);
  lab = await Lab.create({ prefix: 'xlb-dh-' });
  dir = mkdtempSync(join(tmpdir(), 'xlb-dh-'));
  file = join(dir, 'xlb.yaml');
  writeFileSync(file, configWithHealth());
  daemon = await startDaemon();
});

afterAll(async () => {
  await daemon?.stop('SIGKILL');
  Xlb.reset(instance);
  rmSync(instance.stateDir, { recursive: true, force: true }); // (a killed daemon leaves daemon.json)
  await lab?.destroy();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('health checks run by the daemon', () => {
  it('the seed experiment: vm1 stopped → failures only within the bound, none after; restarted → traffic again', async () => {
    const client = new XlbClient({ socketPath: join(dir, 'api.sock') });
    // Both backends healthy and answering first.
    await waitFor(async () => {
      const s = new Set<string | null>();
      for (let i = 0; i < 12; i++) s.add(await lab.curl(TIMEOUT_S));
      return s.has('i am vm1') && s.has('i am vm2') && !s.has(null);
    }, DAEMON_TIMEOUT_S, 'both backends answering');

    const bound = (HC.failure_count + 1) * HC.interval + HC.timeout + 1;
    const results: Array<{ t: number; body: string | null }> = [];
    const t0 = performance.now();
    lab.stopBackend('vm1');
    while ((performance.now() - t0) / 1000 < bound + 4) {
      const t = (performance.now() - t0) / 1000;
      results.push({ t, body: await lab.curl(1) });
      await sleep(100);
    }
    const failures = results.filter((r) => r.body === null);
    for (const f of failures) expect(f.t).toBeLessThanOrEqual(bound);
    const after = results.filter((r) => r.t > bound);
    expect(after.length).toBeGreaterThan(10);
    for (const r of after) expect(r.body).toBe('i am vm2');
    const stats = (await client.stats()) as unknown as { health: Array<{ key: string; state: string }> };
    expect(stats.health.find((h) => h.key.endsWith(`${N.vms.vm1.ip}:${N.port}`))?.state).toBe('down');
    const metrics = await (await fetchMetrics(join(dir, 'api.sock')));
    expect(metrics).toMatch(new RegExp(`xlb_backend_up\\{[^}]*backend="${N.vms.vm1.ip.replace(/\./g, '\\.')}:${N.port}"[^}]*\\} 0`));
    expect(metrics).toMatch(new RegExp(`xlb_backend_up\\{[^}]*backend="${N.vms.vm2.ip.replace(/\./g, '\\.')}:${N.port}"[^}]*\\} 1`));

    await lab.startBackend('vm1');
    await waitFor(async () => ((await lab.curl(TIMEOUT_S)) === 'i am vm1' ? true : null), DAEMON_TIMEOUT_S, 'vm1 serving again');
    const back = (await client.stats()) as unknown as { health: Array<{ key: string; state: string }> };
    expect(back.health.every((h) => h.state === 'up')).toBe(true);
  });
});

describe('restart safety', () => {
  it('kill -9 during a long TCP conversation: it completes, and nothing unchanged is rebuilt', async () => {
    const n = loadNative();
    const ifindex = n.ifNameToIndex(N.hv, N.vms.vm3.hostIf);
    const filters = (): Array<number | null> =>
      (['ingress', 'egress'] as const).map((d) => n.tcQuery(N.hv, ifindex, d, TC_HANDLE, TC_PRIORITY));
    const ids = (): { maps: number[]; progs: number[] } => {
      const dp = Dataplane.open({ pinRoot: instance.pinRoot });
      try {
        return {
          maps: Object.values(dp.maps).map((fd) => dp.native.mapInfo(fd).id),
          progs: Object.values(dp.progs).map((fd) => dp.native.progInfo(fd).id),
        };
      } finally {
        dp.close();
      }
    };
    const before = { filters: filters(), ids: ids() };

    const conversation = nsNode(N.vms.vm3.ns, 'tcp-client.mjs', [N.vip, String(N.tcpEchoVipPort), '50', '100'], 60);
    await sleep(1000);
    await daemon!.stop('SIGKILL');
    await sleep(500);
    daemon = await startDaemon();
    const startup = await daemon.waitForLog((l) => typeof l.msg === 'string' && l.msg.startsWith('applied'), DAEMON_TIMEOUT_S);
    expect(startup.source).toBe('startup');
    expect(startup.writes).toBe(0);
    expect(daemon.logs.find((l) => l.msg === 'data plane re-adopted from pins')).toBeDefined();

    const r = await conversation;
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const answers = r.stdout.trim().split('\n').slice(1);
    expect(answers).toHaveLength(50);
    expect(new Set(answers.map((a) => a.split(' line')[0])).size).toBe(1);

    expect(filters()).toEqual(before.filters);
    expect(ids()).toEqual(before.ids);
  });
});
