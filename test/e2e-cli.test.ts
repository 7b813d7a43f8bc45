/**
 * The CLI as a user drives it, against the seed lab with real traffic:
 * apply (idempotent, in place, named errors with nothing applied), show,
 * reset, and `xlb lab`'s exit code.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Lab, LAB } from '../src/lab.js';
import { Xlb } from '../src/xlb.js';
import { loadNative } from '../src/native.js';
import { TC_HANDLE, TC_PRIORITY } from '../src/dataplane.js';
import { cli, nsNode, run, ROOT, sleep, TIMEOUT_S } from './helpers/e2e.js';

const instance = { pinRoot: '/sys/fs/bpf/xlb-cli-test', stateDir: '/run/xlb-cli-test' };
const port = `${LAB.hv}/${LAB.vms.vm3.hostIf}`;
const vipKey = `${LAB.vip}:${LAB.port}`;
const both = `${LAB.vms.vm1.ip}:${LAB.port},${LAB.vms.vm2.ip}:${LAB.port}`;

const yaml = (backends: string, extra = ''): string => `# the issue's example, with the port inside the lab's host namespace
load_balancers:
  - name: lb1
    protocol: tcp
    vips: { "${vipKey}": "${backends}", "${LAB.vip}:${LAB.tcpEchoVipPort}": "${LAB.vms.vm1.ip}:${LAB.tcpEchoPort},${LAB.vms.vm2.ip}:${LAB.tcpEchoPort}" }
logical_switches:
  - { name: inside, ports: [${port}], load_balancer: [lb1] }
${extra}`;

let lab: Lab;
let dir: string;

function tcFilters(): Array<number | null> {
  const n = loadNative();
  const ifindex = n.ifNameToIndex(LAB.hv, LAB.vms.vm3.hostIf);
  return (['ingress', 'egress'] as const).map((d) => {
    try {
      return n.tcQuery(LAB.hv, ifindex, d, TC_HANDLE, TC_PRIORITY);
    } catch {
      return null;
    }
  });
}

beforeAll(async () => {
  Xlb.reset(instance);
  lab = await Lab.create();
  dir = mkdtempSync(join(tmpdir(), 'xlb-cli-'));
});

afterAll(async () => {
  Xlb.reset(instance);
  await lab?.destroy();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('xlb CLI', () => {
  it('show says plainly when nothing is loaded, and loads nothing', async () => {
    const r = await cli(instance, 'show');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('nothing is served');
    expect(existsSync(instance.pinRoot)).toBe(false);
  });

  it('apply serves the config; the VIP answers with both backends', async () => {
    const file = join(dir, 'lb.yaml');
    writeFileSync(file, yaml(both));
    const r = await cli(instance, 'apply', file);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`${port}: tc`);
    expect(r.stdout).toMatch(/applied: 2 VIP entries written/);
    const seen = new Set<string | null>();
    for (let i = 0; i < 20; i++) seen.add(await lab.curl(TIMEOUT_S));
    expect([...seen].sort()).toEqual(['i am vm1', 'i am vm2']);
  });

  it('apply of the same file again is a no-op: no write, programs not replaced, connections untouched', async () => {
    const before = tcFilters();
    expect(before.every((id) => typeof id === 'number' && id > 0)).toBe(true);
    const client = nsNode(LAB.vms.vm3.ns, 'tcp-client.mjs', [LAB.vip, String(LAB.tcpEchoVipPort), '15', '100'], 30);
    await sleep(300);
    const r = await cli(instance, 'apply', join(dir, 'lb.yaml'));
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('unchanged');
    expect(tcFilters()).toEqual(before);
    const c = await client;
    expect(c.code).toBe(0);
    expect(new Set(c.stdout.trim().split('\n').slice(1).map((l) => l.split(' line')[0])).size).toBe(1);
  });

  it('show --json reports VIPs, backends, counters, interfaces and conntrack usage', async () => {
    const r = await cli(instance, 'show', '--json');
    expect(r.code).toBe(0);
    const s = JSON.parse(r.stdout);
    expect(s.loaded).toBe(true);
    expect(s.ifaces).toHaveLength(1);
    expect(s.ifaces[0]).toMatchObject({ interface: port, hook: 'tc', owner: 'switch inside' });
    const vip = s.vips.find((v: { vip: string }) => v.vip === vipKey);
    expect(vip.backends.map((b: { text: string }) => b.text)).toEqual(both.split(','));
    expect(vip.stats.newConns).toBeGreaterThanOrEqual(20);
    expect(vip.stats.packets).toBeGreaterThan(vip.stats.newConns);
    expect(vip.backends.reduce((a: number, b: { stats: { newConns: number } }) => a + b.stats.newConns, 0)).toBe(vip.stats.newConns);
    expect(s.conntrack.entries).toBeGreaterThan(0);
    expect(s.conntrack.max).toBe(262144);
    const text = await cli(instance, 'show');
    expect(text.stdout).toContain(`${vipKey}/tcp (lb lb1`);
    expect(text.stdout).toContain(`→ ${LAB.vms.vm1.ip}:${LAB.port}`);
  });

  it('a bad config is refused with the field and value named, and nothing changes', async () => {
    const before = (await cli(instance, 'show', '--json')).stdout;
    const cases: Array<[string, RegExp]> = [
      [yaml(`${LAB.vms.vm1.ip}:${LAB.port},172.16.255.300:${LAB.port}`), /load_balancers\[0\]\.vips\["172\.16\.255\.62:8000"\].*172\.16\.255\.300/],
      [yaml(both, 'colour: blue\n'), /colour/],
      [yaml(`${LAB.vms.vm1.ip}:70000`), /70000/],
    ];
    for (const [text, re] of cases) {
      const file = join(dir, 'bad.yaml');
      writeFileSync(file, text);
      const r = await cli(instance, 'apply', file);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/^xlb: /);
      expect(r.stderr).toMatch(re);
    }
    const missing = await cli(instance, 'apply', join(dir, 'nope.yaml'));
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('nope.yaml');
    const after = JSON.parse((await cli(instance, 'show', '--json')).stdout);
    const prev = JSON.parse(before);
    expect(after.vips.map((v: { backends: unknown }) => v.backends)).toEqual(
      prev.vips.map((v: { backends: Array<{ text: string }> }) => v.backends.map((b) => ({ ...b, stats: expect.anything() }))),
    );
  });

  it('a missing interface is refused before anything is written', async () => {
    const file = join(dir, 'noif.yaml');
    writeFileSync(file, yaml(`${LAB.vms.vm1.ip}:${LAB.port}`).replace(port, `${LAB.hv}/xlb-nosuch`));
    const r = await cli(instance, 'apply', file);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('xlb-nosuch');
    // Still both backends: the one-backend pool in that file was not applied.
    const seen = new Set<string | null>();
    for (let i = 0; i < 20; i++) seen.add(await lab.curl(TIMEOUT_S));
    expect([...seen].sort()).toEqual(['i am vm1', 'i am vm2']);
  });

  it('a changed file updates in place: one Maglev table swapped', async () => {
    const file = join(dir, 'lb.yaml');
    writeFileSync(file, yaml(`${LAB.vms.vm1.ip}:${LAB.port}`));
    const r = await cli(instance, 'apply', file);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('1 Maglev tables swapped');
    for (let i = 0; i < 6; i++) expect(await lab.curl(TIMEOUT_S)).toBe('i am vm1');
  });

  it('reset detaches everything and removes the pins; the VIP stops answering', async () => {
    const r = await cli(instance, 'reset');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`detached: ${port}`);
    expect(existsSync(instance.pinRoot)).toBe(false);
    expect(tcFilters()).toEqual([null, null]);
    expect(await lab.curl(TIMEOUT_S)).toBeNull();
  });
});

describe('xlb lab', () => {
  it('exits 0 when every request succeeded and both backends answered', async () => {
    await lab.destroy();
    const r = await run(process.execPath, [join(ROOT, 'dist', 'src', 'cli.js'), 'lab', '--requests', '20'], 120);
    expect(r.stdout).toContain('OK: every request succeeded and both backends answered');
    expect(r.stdout).toMatch(/i am vm1: \d+/);
    expect(r.stdout).toMatch(/i am vm2: \d+/);
    expect(r.code).toBe(0);
  });

  it('exits non-zero when a backend never answered (one request cannot reach two backends)', async () => {
    const r = await run(process.execPath, [join(ROOT, 'dist', 'src', 'cli.js'), 'lab', '--requests', '1'], 120);
    expect(r.stdout).toContain('FAIL');
    expect(r.code).toBe(1);
    lab = await Lab.create(); // for afterAll's teardown symmetry
  });
});
