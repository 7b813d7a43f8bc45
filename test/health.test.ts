/**
 * Health checks with real traffic in a private lab (prefix xlb-hc-): raw TCP SYN
 * and UDP probes sent from the backends' VIFs with a source address of their
 * subnet (ip_port_mappings), the checker's state machine, and the seed
 * experiment: stop vm1's web server while vm3 curls the VIP in a loop.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BACKENDS, Lab, labConfig, labNames } from '../src/lab.js';
import { Xlb } from '../src/xlb.js';
import { loadNative } from '../src/native.js';
import { backendKey, compile } from '../src/compile.js';
import { applyCompiled } from '../src/writer.js';
import { parseIPv4 } from '../src/addr.js';
import { HealthChecker, httpProbe, parseMac, ProbePort, tcpSynProbe, udpProbe, DEFAULT_PROBE_MAC, type HealthTarget } from '../src/health/index.js';
import { curlLoop, waitForChange } from './helpers/health.js';

const N = labNames('xlb-hc-');
const INSTANCE = { pinRoot: '/sys/fs/bpf/xlb-hc', stateDir: '/run/xlb-hc' };
const SRC = '172.16.255.140';
const VIP_NAME = `lb1 ${N.vip}:${N.port}/tcp`;
const OPTS = { interval: 0.5, timeout: 0.5, success_count: 2, failure_count: 2 };
const BOUND_S = (OPTS.failure_count + 1) * OPTS.interval + OPTS.timeout + 1;
const vif = (vm: 'vm1' | 'vm2'): string => `${N.hv}/${N.vms[vm].hostIf}`;

const log = (...a: unknown[]): void => console.log('[health]', ...a);

describe('HTTP probe (host stack)', () => {
  let server: Server;
  let port = 0;
  beforeAll(async () => {
    server = createServer((req, res) => {
      if (req.url === '/slow') return; // never answers
      res.writeHead(req.url === '/ok' ? 200 : 503).end();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as AddressInfo).port;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  it('expected status = up; other status, refused, timeout = down', async () => {
    expect(await httpProbe(`127.0.0.1:${port}`, { type: 'http', path: '/ok' }, 1000)).toMatchObject({ ok: true, reason: 'HTTP 200' });
    expect(await httpProbe(`127.0.0.1:${port}`, { type: 'http', path: '/x', expect_status: 503 }, 1000)).toMatchObject({ ok: true });
    expect(await httpProbe(`127.0.0.1:${port}`, { type: 'http', path: '/x' }, 1000)).toMatchObject({ ok: false, reason: 'HTTP 503 (expected 200)' });
    const slow = await httpProbe(`127.0.0.1:${port}`, { type: 'http', path: '/slow' }, 300);
    expect(slow).toMatchObject({ ok: false, reason: 'no HTTP answer within 0.3 s' });
    expect(slow.ms).toBeLessThan(1000);
    expect(await httpProbe('127.0.0.1:1', { type: 'http' }, 1000)).toMatchObject({ ok: false, reason: 'HTTP: ECONNREFUSED' });
  });

  it('drives the checker without raw sockets', async () => {
    const hc = new HealthChecker([
      { vip: 'v', backend: `127.0.0.1:${port}`, protocol: 'tcp', probe: { type: 'http', path: '/x' }, options: { interval: 0.05, timeout: 0.5, failure_count: 2 } },
    ]);
    const down = waitForChange(hc, (c) => c.down.size === 1, 5);
    hc.start();
    const c = await down;
    await hc.stop();
    expect([...c.down]).toEqual([`v 127.0.0.1:${port}`]);
    expect(c.changed[0]).toMatchObject({ state: 'down', reason: 'HTTP 503 (expected 200)' });
  });
});

describe('health checks in the lab (xlb-hc-)', () => {
  let lab: Lab;

  beforeAll(async () => {
    Xlb.reset(INSTANCE);
    lab = await Lab.create({ prefix: N.prefix });
  });

  afterAll(async () => {
    Xlb.reset(INSTANCE);
    await lab?.destroy();
  });

  it('raw TCP SYN and UDP probes from the VIF: SYN-ACK / answer when serving, RST / ICMP port unreachable when stopped', async () => {
    const port = new ProbePort(loadNative(), vif('vm1'));
    const mac = parseMac(DEFAULT_PROBE_MAC);
    port.addSource(parseIPv4(SRC), mac);
    const t = (dport: number) => ({ port, srcIp: parseIPv4(SRC), srcMac: mac, dstIp: parseIPv4(N.vms.vm1.ip), dport, timeoutMs: 1000 });
    try {
      const up = await tcpSynProbe(t(N.port));
      log('tcp up:', up);
      expect(up).toMatchObject({ ok: true, reason: 'SYN-ACK' });
      expect(await udpProbe(t(N.udpPort), { type: 'udp' })).toMatchObject({ ok: true, reason: 'UDP answer' });
      // A port nobody listens on.
      expect(await tcpSynProbe(t(9))).toMatchObject({ ok: false, reason: 'RST' });

      lab.stopBackend('vm1');
      await new Promise((r) => setTimeout(r, 200));
      const rst = await tcpSynProbe(t(N.port));
      log('tcp stopped:', rst);
      expect(rst).toMatchObject({ ok: false, reason: 'RST' });
      const icmp = await udpProbe(t(N.udpPort), { type: 'udp' });
      log('udp stopped:', icmp);
      expect(icmp).toMatchObject({ ok: false, reason: 'ICMP port unreachable' });

      await lab.startBackend('vm1');
      expect(await tcpSynProbe(t(N.port))).toMatchObject({ ok: true, reason: 'SYN-ACK' });
      // Nobody at this address: no ARP answer within the timeout.
      const ghost = await tcpSynProbe({ ...t(N.port), dstIp: parseIPv4('172.16.255.150'), timeoutMs: 300 });
      expect(ghost).toMatchObject({ ok: false, reason: 'no ARP answer for 172.16.255.150 within 0.3 s' });
    } finally {
      await port.close();
    }
  });

  it('the checker: vm1 up → down after failure_count RSTs → up after success_count SYN-ACKs', async () => {
    const targets: HealthTarget[] = (['vm1', 'vm2'] as const).map((vm) => ({
      vip: VIP_NAME,
      backend: `${N.vms[vm].ip}:${N.port}`,
      protocol: 'tcp',
      options: OPTS,
      source: { interface: vif(vm), ip: SRC },
    }));
    const hc = new HealthChecker(targets);
    const probes: Array<{ at: number; key: string; ok: boolean; reason: string }> = [];
    hc.on('probe', (p) => probes.push({ at: Date.now(), key: p.key, ok: p.result.ok, reason: p.result.reason }));
    hc.start();
    try {
      await new Promise((r) => setTimeout(r, 1500));
      expect(hc.down().size).toBe(0);
      expect(probes.filter((p) => p.ok).length).toBeGreaterThanOrEqual(4);
      expect(probes.every((p) => p.ok)).toBe(true);

      const vm1 = backendKey(VIP_NAME, `${N.vms.vm1.ip}:${N.port}`);
      const down = waitForChange(hc, (c) => c.down.has(vm1), 10);
      const t0 = Date.now();
      lab.stopBackend('vm1');
      const d = await down;
      log(`vm1 down after ${d.at - t0} ms (${d.changed[0].reason})`);
      expect([...d.down]).toEqual([vm1]);
      expect(d.changed[0]).toMatchObject({ key: vm1, state: 'down', reason: 'RST' });
      expect(d.at - t0).toBeLessThanOrEqual(OPTS.failure_count * OPTS.interval * 1000 + 500);
      const fails = probes.filter((p) => p.key === vm1 && p.at >= t0 && !p.ok);
      expect(fails.length).toBe(OPTS.failure_count);

      const up = waitForChange(hc, (c) => c.down.size === 0, 10);
      const t1 = Date.now();
      await lab.startBackend('vm1');
      const u = await up;
      log(`vm1 up after ${u.at - t1} ms`);
      expect(u.changed[0]).toMatchObject({ key: vm1, state: 'up', reason: 'SYN-ACK' });
      expect(hc.status().find((s) => s.key === vm1)).toMatchObject({ state: 'up', successes: OPTS.success_count });
    } finally {
      await hc.stop();
    }
  });

  it('the seed experiment: stop vm1 while vm3 curls the VIP; failures only within the bound, none after; vm1 back after restart', async () => {
    const x = Xlb.open(INSTANCE);
    x.apply(labConfig('tc', BACKENDS, N));
    const native = x.dataplane.native;
    const desired = x.desired;
    const ids = compile(desired).ids; // the ids x.apply handed out from an empty state
    const ifindex = new Map([[`${N.hv}/${N.vms.vm3.hostIf}`, native.ifNameToIndex(N.hv, N.vms.vm3.hostIf)]]);
    const targets: HealthTarget[] = (['vm1', 'vm2'] as const).map((vm) => ({
      vip: VIP_NAME,
      backend: `${N.vms[vm].ip}:${N.port}`,
      protocol: 'tcp',
      options: OPTS,
      source: { interface: vif(vm), ip: SRC },
    }));
    const hc = new HealthChecker(targets);
    const applies: Array<{ at: number; down: string[]; ms: number }> = [];
    hc.on('change', (c) => {
      const t = Date.now();
      applyCompiled(x.dataplane.store(), compile(desired, ids, c.down), ifindex, ids);
      applies.push({ at: t, down: [...c.down], ms: Date.now() - t });
    });
    hc.start();
    const loop = curlLoop(lab, 100, 1);
    try {
      await new Promise((r) => setTimeout(r, 2000));
      const tStop = Date.now();
      lab.stopBackend('vm1');
      await new Promise((r) => setTimeout(r, (BOUND_S + 3) * 1000));
      const tRestart = Date.now();
      await lab.startBackend('vm1');
      // Until vm1 answers again (or 10 s).
      while (Date.now() - tRestart < 10_000 && !loop.samples.some((s) => s.start > tRestart && s.body === 'i am vm1')) {
        await new Promise((r) => setTimeout(r, 200));
      }
      await new Promise((r) => setTimeout(r, 1000));
      await loop.stop();

      const s = loop.samples;
      const before = s.filter((x) => x.end < tStop);
      const failures = s.filter((x) => x.body === null);
      const after = s.filter((x) => x.start > tStop + BOUND_S * 1000 && x.end < tRestart);
      const back = s.filter((x) => x.start > tRestart);
      const downAt = applies.find((a) => a.down.length === 1)?.at;
      const upAt = applies.find((a) => a.down.length === 0 && a.at > tRestart)?.at;
      log(
        `curls: ${s.length}; before stop ${before.length} (${before.filter((x) => x.body === 'i am vm1').length} vm1); ` +
          `failures ${failures.length} at +${failures.map((f) => f.start - tStop).join(', +')} ms after the stop; ` +
          `vm1 out of the table ${downAt === undefined ? '?' : downAt - tStop} ms after the stop (bound ${BOUND_S * 1000} ms); ` +
          `after the bound ${after.length} curls, all ok: ${after.every((x) => x.body === 'i am vm2')}; ` +
          `vm1 back in the table ${upAt === undefined ? '?' : upAt - tRestart} ms after the restart; after restart ${back.length} curls, ` +
          `${back.filter((x) => x.body === 'i am vm1').length} by vm1, ${back.filter((x) => x.body === null).length} failed; applies ${JSON.stringify(applies.map((a) => ({ t: a.at - tStop, down: a.down.length, ms: a.ms })))}`,
      );
      expect(before.length).toBeGreaterThan(5);
      expect(before.every((x) => x.body !== null)).toBe(true);
      expect(new Set(before.map((x) => x.body))).toEqual(new Set(['i am vm1', 'i am vm2']));
      for (const f of failures) {
        expect(f.end).toBeGreaterThanOrEqual(tStop);
        expect(f.start).toBeLessThanOrEqual(tStop + BOUND_S * 1000);
      }
      expect(after.length).toBeGreaterThan(5);
      expect(after.every((x) => x.body === 'i am vm2')).toBe(true);
      expect(back.some((x) => x.body === 'i am vm1')).toBe(true);
      expect(back.every((x) => x.body !== null)).toBe(true);
    } finally {
      await loop.stop();
      await hc.stop();
      x.close();
    }
  });
});
