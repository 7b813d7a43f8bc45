/**
 * The daemon's local API and the CLI verbs that use it, end to end: a real
 * daemon (child process), the lab with real traffic, a private instance.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Lab } from '../src/lab.js';
import { Xlb } from '../src/xlb.js';
import { ROUTES } from '../src/daemon/api.js';
import { OPENAPI } from '../src/daemon/openapi.js';
import { XlbApiError, XlbClient } from '../src/daemon/client.js';
import { cli, TIMEOUT_S } from './helpers/e2e.js';
import { D2, D2_PREFIX, DaemonProc, DAEMON_TIMEOUT_S, waitFor } from './helpers/daemon.js';

let lab: Lab;
let dir: string;
let daemon: DaemonProc | null = null;
let socket: string;
let tokenFile: string;
const TOKEN = 'test-token-0123456789abcdef';

const names = () => lab.names;
const vipKey = (): string => `${names().vip}:${names().port}`;
const both = (): string => `${names().vms.vm1.ip}:${names().port},${names().vms.vm2.ip}:${names().port}`;
const port = (): string => `${names().hv}/${names().vms.vm3.hostIf}`;

async function startDaemon(): Promise<DaemonProc> {
  daemon = await DaemonProc.start(D2, ['--api-socket', socket, '--api-tcp', '127.0.0.1:0', '--api-token-file', tokenFile, '--log-level', 'debug']);
  return daemon;
}

const client = (): XlbClient => new XlbClient({ socketPath: socket });

async function seen(n: number): Promise<string[]> {
  const s = new Set<string>();
  for (let i = 0; i < n; i++) s.add((await lab.curl(TIMEOUT_S)) ?? 'FAILED');
  return [...s].sort();
}

beforeAll(async () => {
  Xlb.reset(D2);
  rmSync(D2.stateDir, { recursive: true, force: true });
  lab = await Lab.create({ prefix: D2_PREFIX });
  dir = mkdtempSync(join(tmpdir(), 'xlb-api-'));
  socket = join(dir, 'api.sock');
  tokenFile = join(dir, 'token');
  writeFileSync(tokenFile, `${TOKEN}\n`, { mode: 0o600 });
});

afterAll(async () => {
  await daemon?.stop('SIGTERM');
  Xlb.reset(D2);
  rmSync(D2.stateDir, { recursive: true, force: true });
  await lab?.destroy();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('xlb API and CLI verbs', () => {
  it('without a daemon, every API verb says so plainly and exits 1', async () => {
    const none = { pinRoot: D2.pinRoot, stateDir: join(dir, 'no-daemon') };
    for (const args of [['lb-add', 'lb1', vipKey(), both()], ['lb-list'], ['ls-lb-add', 'inside', 'lb1']]) {
      const r = await cli(none, ...args);
      expect(r.code, args.join(' ')).toBe(1);
      expect(r.stderr).toContain(`xlb: no xlb daemon is running (no API socket at ${join(none.stateDir, 'api.sock')}); start one with \`xlb daemon\``);
    }
  });

  it('starts: socket 0600, daemon.json lets the CLI find it without flags', async () => {
    await startDaemon();
    expect(statSync(socket).mode & 0o777).toBe(0o600);
    const info = JSON.parse(readFileSync(join(D2.stateDir, 'daemon.json'), 'utf8')) as { apiSocket: string; apiTcp: string };
    expect(info.apiSocket).toBe(socket);
    expect(info.apiTcp).toMatch(/^127\.0\.0\.1:\d+$/);
    const r = await cli(D2, 'lb-list');
    expect(r.stderr).toBe('');
    expect(r.stdout.trim()).toBe('(no load balancers)');
  });

  it('lb-add + ls-add + ls-lb-add serve the VIP: curl from vm3 gets both backends', async () => {
    for (const args of [['lb-add', 'lb1', vipKey(), both()], ['ls-add', 'inside', port()], ['ls-lb-add', 'inside', 'lb1']]) {
      const r = await cli(D2, ...args);
      expect(r.stderr, args.join(' ')).toBe('');
      expect(r.code).toBe(0);
    }
    expect(await seen(20)).toEqual(['i am vm1', 'i am vm2']);
    const list = await cli(D2, 'lb-list', '--json');
    const lbs = JSON.parse(list.stdout) as Array<{ name: string; vips: Record<string, string>; source: string }>;
    expect(lbs).toEqual([expect.objectContaining({ name: 'lb1', source: 'api', vips: { [vipKey()]: both() } })]);
    expect((await cli(D2, 'lb-list')).stdout).toMatch(/lb1\s+tcp\s+172\.16\.255\.62:8000\s+172\.16\.255\.130:8000,172\.16\.255\.131:8000\s+api/);
  });

  it('a bad request returns 400 naming the field and changes nothing', async () => {
    const c = client();
    const before = await c.state();
    const cases: Array<[() => Promise<unknown>, string, RegExp]> = [
      [() => c.setVip('lb1', vipKey(), `${names().vms.vm1.ip}:8000,172.16.255.300:8000`), 'backends', /172\.16\.255\.300/],
      [() => c.setVip('lb1', '172.16.255.999:80', both()), 'vip', /172\.16\.255\.999/],
      [() => c.attach('nosuch', 'lb1'), 'name', /logical switch "nosuch" does not exist/],
      [() => c.attach('inside', 'nolb'), 'lb', /load balancer "nolb" does not exist/],
      [() => c.request('PUT', '/v1/load-balancers/lb2', { vips: {}, bogus: 1 }), 'bogus', /unknown key/],
      [() => c.putLogicalSwitch('other', { ports: ['bad/name/x'], load_balancer: [] }), 'ports[0]', /interface/],
      [() => c.putLogicalSwitch('other', { ports: [], load_balancer: ['nolb'] }), 'load_balancer[0]', /unknown load balancer "nolb"/],
      [() => c.request('PUT', '/v1/load-balancers/lb3', { protocol: 'icmp' }), 'protocol', /tcp/],
    ];
    for (const [fn, field, msg] of cases) {
      const e = await fn().then(
        () => null,
        (x: unknown) => x,
      );
      expect(e, field).toBeInstanceOf(XlbApiError);
      const err = e as XlbApiError;
      expect(err.status, err.message).toBe(400);
      expect(err.field).toBe(field);
      expect(err.message).toMatch(msg);
    }
    const raw = await c.raw('PUT', '/v1/load-balancers/lb1', undefined, {});
    expect(raw.status).toBe(400);
    expect(JSON.parse(raw.body)).toEqual({ error: { code: 'XLB_BAD_REQUEST', field: 'body', message: expect.any(String) } });
    // The CLI prints the named error and exits 1.
    const r = await cli(D2, 'ls-lb-add', 'nosuch', 'lb1');
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('xlb: logical switch "nosuch" does not exist');
    expect(await c.state()).toEqual(before);
    expect(await seen(20)).toEqual(['i am vm1', 'i am vm2']);
  });

  it('unknown route 404, wrong method 405 with Allow', async () => {
    const c = client();
    const a = await c.raw('GET', '/v1/nothing');
    expect(a.status).toBe(404);
    expect((JSON.parse(a.body) as { error: { code: string } }).error.code).toBe('XLB_NO_ROUTE');
    const b = await c.raw('PATCH', '/v1/load-balancers/lb1');
    expect(b.status).toBe(405);
    expect((JSON.parse(b.body) as { error: { code: string } }).error.code).toBe('XLB_METHOD');
  });

  it('the OpenAPI document lists exactly the routes served', async () => {
    const doc = (await client().openapi()) as typeof OPENAPI;
    expect(doc.openapi).toBe('3.1.0');
    const documented = new Set<string>();
    for (const [path, item] of Object.entries(doc.paths)) {
      for (const m of Object.keys(item)) if (['get', 'put', 'post', 'delete', 'patch'].includes(m)) documented.add(`${m.toUpperCase()} ${path}`);
    }
    const served = new Set(ROUTES.map((r) => `${r.method} ${r.path}`));
    expect(documented.size).toBeGreaterThan(0);
    expect([...documented].sort()).toEqual([...served].sort());
    // And the server answers each documented operation (no 404 "no route", no 405).
    const c = client();
    for (const op of documented) {
      const [method, path] = op.split(' ');
      const url = path.replace('{name}', 'zz-none').replace('{vip}', encodeURIComponent('10.9.9.9:1')).replace('{lb}', 'zz-none');
      const body = method === 'PUT' ? (path.endsWith('{vip}') ? { backends: '' } : {}) : undefined;
      // Writes aimed at unknown objects fail with 404/400, never XLB_NO_ROUTE / XLB_METHOD; undo any that succeed.
      const r = await c.raw(method, url, body);
      if (r.status >= 400) expect(['XLB_NO_ROUTE', 'XLB_METHOD']).not.toContain((JSON.parse(r.body) as { error: { code: string } }).error.code);
    }
    await c.raw('DELETE', '/v1/load-balancers/zz-none');
    await c.raw('DELETE', '/v1/logical-switches/zz-none');
    expect((await c.loadBalancers()).map((l) => l.name)).toEqual(['lb1']);
  });

  it('/metrics has per-VIP and per-backend counters that moved, conntrack, apply latency', async () => {
    await seen(4);
    const text = await client().metrics();
    const value = (re: RegExp): number => Number(re.exec(text)?.[1] ?? NaN);
    const l = `lb="lb1",vip="${vipKey()}",protocol="tcp"`;
    expect(value(new RegExp(`xlb_vip_packets_total\\{${l}\\} (\\d+)`))).toBeGreaterThan(0);
    expect(value(new RegExp(`xlb_vip_new_connections_total\\{${l}\\} (\\d+)`))).toBeGreaterThan(0);
    expect(value(new RegExp(`xlb_backend_new_connections_total\\{${l},backend="${names().vms.vm1.ip}:8000"\\} (\\d+)`))).toBeGreaterThan(0);
    expect(value(/xlb_conntrack_capacity (\d+)/)).toBeGreaterThan(0);
    expect(value(/xlb_conntrack_entries (\d+)/)).toBeGreaterThan(0);
    expect(value(/xlb_apply_total\{source="api"\} (\d+)/)).toBeGreaterThanOrEqual(3);
    expect(value(/xlb_apply_errors_total\{source="api",kind="config"\} (\d+)/)).toBeGreaterThan(0);
    expect(text).toMatch(/xlb_apply_duration_seconds_bucket\{le="0.1",source="api"\} \d+/);
    const stats = await client().stats();
    const v = stats.vips.find((x) => x.vip === vipKey())!;
    expect(typeof v.stats.packets).toBe('number');
    expect(v.stats.newConns).toBeGreaterThan(0);
  });

  it('the TCP listener wants the bearer token', async () => {
    const info = JSON.parse(readFileSync(join(D2.stateDir, 'daemon.json'), 'utf8')) as { apiTcp: string };
    const none = await new XlbClient({ tcp: info.apiTcp }).raw('GET', '/v1/state');
    expect(none.status).toBe(401);
    const wrong = await new XlbClient({ tcp: info.apiTcp, token: 'wrong-token-0123456789' }).raw('GET', '/v1/state');
    expect(wrong.status).toBe(401);
    expect((JSON.parse(wrong.body) as { error: { field: string } }).error.field).toBe('authorization');
    const right = await new XlbClient({ tcp: info.apiTcp, token: TOKEN }).loadBalancers();
    expect(right.map((l) => l.name)).toEqual(['lb1']);
  });

  it('xlb top shows the VIP and its rates', async () => {
    const r = await cli(D2, 'top', '--count', '2', '--interval', '0.3');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`${vipKey()}/tcp`);
    expect(r.stdout).toContain('CONNS/S');
  });

  it('API objects survive a daemon restart, which rewrites nothing', async () => {
    expect(await daemon!.stop('SIGTERM')).toBe(0);
    expect(existsSync(socket)).toBe(false);
    expect(await seen(20)).toEqual(['i am vm1', 'i am vm2']);
    await startDaemon();
    const stats = await client().stats();
    expect(stats.daemon.startupApply?.writes).toBe(0);
    expect((await client().loadBalancers()).map((l) => l.name)).toEqual(['lb1']);
  });

  it('lb-del VIP, then lb-del LB: the VIP stops answering', async () => {
    const r = await cli(D2, 'lb-add', 'lb1', `${names().vip}:${names().tcpEchoVipPort}`, `${names().vms.vm1.ip}:${names().tcpEchoPort}`);
    expect(r.code).toBe(0);
    expect((await cli(D2, 'lb-del', 'lb1', `${names().vip}:${names().tcpEchoVipPort}`)).code).toBe(0);
    expect(Object.keys((await client().loadBalancer('lb1')).vips)).toEqual([vipKey()]);
    const d = await cli(D2, 'lb-del', 'lb1');
    expect(d.stderr).toBe('');
    await waitFor(async () => (await lab.curl(1)) === null, DAEMON_TIMEOUT_S, 'the VIP to stop answering');
    expect((await client().logicalSwitch('inside')).load_balancer).toEqual([]);
    expect((await cli(D2, 'lb-list')).stdout.trim()).toBe('(no load balancers)');
  });
});
