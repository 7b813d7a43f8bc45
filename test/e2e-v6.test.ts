/**
 * IPv6 end to end, with real traffic between network namespaces: the seed lab
 * (own prefix xlb-v6-) with IPv6 addresses, xlb on vm3's port. TCP (curl and a
 * long-lived Node client) to [VIP]:port reaching both backends, TCP with
 * extension headers on every segment (a Python client), PMTU discovery through
 * the VIP (packet too big translated), UDP with port
 * rewriting, ICMPv6 echo to an IP-only VIP answered by a backend, and a
 * backend's port unreachable reaching a connected UDP socket as ECONNREFUSED.
 * Run on the tc and the XDP hook, with partial checksums from the VMs (finished
 * in software at the `tx off` host end, after xlb's NAT) and with full ones.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Lab, labNames, nsExec } from '../src/lab.js';
import { Xlb } from '../src/xlb.js';
import type { Hook } from '../src/config.js';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { cli, nsNode, ROOT, run, TIMEOUT_S } from './helpers/e2e.js';

const PREFIX = 'xlb-v6-';
const LAB = labNames(PREFIX);
const INSTANCE = { pinRoot: `/sys/fs/bpf/xlb-v6-${process.pid}`, stateDir: `/run/xlb-v6-${process.pid}` };
/** A UDP VIP port whose backend port has no listener (the backend answers port unreachable). */
const DEAD_VIP_PORT = 9099;
const DEAD_PORT = 8099;

function config6(hook: Hook): object {
  const [vm1, vm2] = [LAB.vms.vm1.ip6, LAB.vms.vm2.ip6];
  const both = (port: number): string => `[${vm1}]:${port},[${vm2}]:${port}`;
  return {
    load_balancers: [
      {
        name: 'lb6',
        protocol: 'tcp',
        vips: { [`[${LAB.vip6}]:${LAB.port}`]: both(LAB.port), [`[${LAB.vip6}]:${LAB.tcpEchoVipPort}`]: both(LAB.tcpEchoPort) },
      },
      {
        name: 'lb6-udp',
        protocol: 'udp',
        vips: { [`[${LAB.vip6}]:${LAB.udpVipPort}`]: both(LAB.udpPort), [`[${LAB.vip6}]:${DEAD_VIP_PORT}`]: `[${vm1}]:${DEAD_PORT}` },
      },
      { name: 'lb6-ip', vips: { [LAB.vip6IpOnly]: `${vm1},${vm2}` } },
    ],
    logical_switches: [
      { name: 'inside', ports: [{ interface: `${LAB.hv}/${LAB.vms.vm3.hostIf}`, hook }], load_balancer: ['lb6', 'lb6-udp', 'lb6-ip'] },
    ],
  };
}

const variants = [
  { hook: 'tc', vmTxOff: false, name: 'tc, partial checksums from the VMs' },
  { hook: 'tc', vmTxOff: true, name: 'tc, full checksums from the VMs' },
  { hook: 'xdp', vmTxOff: false, name: 'XDP, partial checksums from the VMs' },
  { hook: 'xdp', vmTxOff: true, name: 'XDP, full checksums from the VMs' },
] as const;

describe.each(variants)('IPv6 through xlb on vm3\'s port ($name)', ({ hook, vmTxOff }) => {
  let lab: Lab;
  let x: Xlb;

  beforeAll(async () => {
    Xlb.reset(INSTANCE);
    lab = await Lab.create({ prefix: PREFIX, ipv6: true, vmTxOff });
    x = Xlb.open(INSTANCE);
    const r = x.apply(config6(hook));
    expect(r.ifaces).toHaveLength(1);
    expect(r.ifaces[0].hook).toBe(hook);
  });

  afterAll(async () => {
    x?.close();
    Xlb.reset(INSTANCE);
    rmSync(INSTANCE.stateDir, { recursive: true, force: true });
    await lab?.destroy();
  });

  it('curl to [VIP]:port gets both backends over 16 requests, none failing', async () => {
    const seen = new Map<string, number>();
    const failures: string[] = [];
    for (let i = 0; i < 16; i++) {
      const url = `http://[${LAB.vip6}]:${LAB.port}/`;
      const r = await run('ip', ['netns', 'exec', LAB.vms.vm3.ns, 'curl', '-sS', '--max-time', String(TIMEOUT_S), url], TIMEOUT_S + 5);
      if (r.code !== 0) failures.push(`request ${i}: ${r.stderr.trim()}`);
      else seen.set(r.stdout.trim(), (seen.get(r.stdout.trim()) ?? 0) + 1);
    }
    expect(failures).toEqual([]);
    expect([...seen.keys()].sort()).toEqual(['i am vm1', 'i am vm2']);
    const vip = x.show().vips.find((v) => v.vip === `[${LAB.vip6}]:${LAB.port}`)!;
    expect(vip.stats.newConns).toBeGreaterThanOrEqual(16n);
    expect(vip.stats.replyPackets).toBeGreaterThan(0n);
    expect(vip.backends.every((b) => b.stats.newConns > 0n)).toBe(true);
  });

  it('a long-lived TCP connection (Node client) to [VIP]:port through a port rewrite', async () => {
    const r = await nsNode(LAB.vms.vm3.ns, 'tcp-client.mjs', [LAB.vip6, String(LAB.tcpEchoVipPort), '10', '50'], 30);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines[0]).toBe('connected');
    const backend = lines[1].slice(0, 8);
    expect(['i am vm1', 'i am vm2']).toContain(backend);
    for (const [i, l] of lines.slice(1).entries()) expect(l).toBe(`${backend} line ${i}`);
  });

  it('TCP whose every segment carries hop-by-hop and destination options headers reaches both backends', async () => {
    const script = join(ROOT, 'test', 'helpers', 'ext6-client.py');
    const before = x.show().counters;
    const r = await run('ip', ['netns', 'exec', LAB.vms.vm3.ns, 'python3', script, LAB.vip6, String(LAB.port), '12', String(TIMEOUT_S)], 60);
    expect(r.stderr).toBe('');
    const lines = r.stdout.trim().split('\n');
    expect(lines).toHaveLength(12);
    for (const l of lines) expect(l).toMatch(/^i am vm[12]$/);
    expect(new Set(lines)).toEqual(new Set(['i am vm1', 'i am vm2']));
    const after = x.show().counters;
    expect(after.new_flow - before.new_flow).toBeGreaterThanOrEqual(12n);
    expect(after.ext_pass).toBe(before.ext_pass);
  });

  it('UDP: answers come from [VIP]:port (rewritten back) and both backends serve', async () => {
    const r = await nsNode(LAB.vms.vm3.ns, 'udp-client.mjs', [LAB.vip6, String(LAB.udpVipPort), '16', String(TIMEOUT_S * 1000)]);
    expect(r.code).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines).toHaveLength(16);
    for (const l of lines) expect(l).toMatch(new RegExp(`^i am vm[12] ping \\d+ from ${LAB.vip6}:${LAB.udpVipPort}$`));
    expect(new Set(lines.map((l) => l.slice(0, 8)))).toEqual(new Set(['i am vm1', 'i am vm2']));
  });

  it('ICMPv6 echo to the IP-only VIP is answered (by a backend, from the VIP)', () => {
    const out = nsExec(LAB.vms.vm3.ns, 'ping', ['-6', '-n', '-c', '3', '-i', '0.2', '-W', String(TIMEOUT_S), LAB.vip6IpOnly], (TIMEOUT_S + 10) * 1000);
    expect(out).toMatch(/3 packets transmitted, 3 received/);
    expect(out).toContain(`from ${LAB.vip6IpOnly}`);
    const vip = x.show().vips.find((v) => v.vip === LAB.vip6IpOnly)!;
    expect(vip.stats.packets).toBeGreaterThanOrEqual(3n);
    expect(vip.stats.replyPackets).toBeGreaterThanOrEqual(3n);
  });

  it('a backend\'s port unreachable makes the connected UDP socket fail with ECONNREFUSED', async () => {
    const before = x.show().counters.icmp_related;
    const r = await nsNode(LAB.vms.vm3.ns, 'udp-client.mjs', [LAB.vip6, String(DEAD_VIP_PORT), '2', String(TIMEOUT_S * 1000)]);
    expect(r.code).toBe(0);
    expect(r.stdout.trim().split('\n')).toEqual(['error ECONNREFUSED', 'error ECONNREFUSED']);
    expect(x.show().counters.icmp_related - before).toBeGreaterThanOrEqual(2n);
  });

  it('PMTU discovery through the VIP: the router\'s packet too big reaches the client quoting the VIP', async () => {
    // The backends' link gets a smaller MTU: the client's full-size segments to the VIP need the
    // router's ICMPv6 packet too big (which quotes the backend) translated to be acted on.
    const code = [
      'import socket, sys',
      's = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=float(sys.argv[3]))',
      "s.sendall(b'x' * 20000 + b'\\n')",
      "data = b''",
      "while not data.endswith(b'\\n'):",
      '    chunk = s.recv(65536)',
      '    if not chunk: break',
      '    data += chunk',
      'print(len(data), data[:8].decode())',
    ].join('\n');
    const before = x.show().counters.icmp_related;
    nsExec(LAB.hv, 'ip', ['link', 'set', 'xlb-dmz', 'mtu', '1280']);
    try {
      const r = await run('ip', ['netns', 'exec', LAB.vms.vm3.ns, 'python3', '-c', code, LAB.vip6, String(LAB.tcpEchoVipPort), String(TIMEOUT_S * 3)], 30);
      expect(r.stderr).toBe('');
      expect(r.stdout.trim()).toMatch(/^20010 i am vm[12]$/);
    } finally {
      nsExec(LAB.hv, 'ip', ['link', 'set', 'xlb-dmz', 'mtu', '1500']);
    }
    expect(x.show().counters.icmp_related - before).toBeGreaterThanOrEqual(1n);
  });

  it('xlb conntrack shows the IPv6 flows in [address]:port form', () => {
    const flows = x.conntrack().filter((e) => e.dst === `[${LAB.vip6}]:${LAB.port}`);
    expect(flows.length).toBeGreaterThan(0);
    expect(flows[0].src.startsWith(`[${LAB.vms.vm3.ip6}]:`)).toBe(true);
    expect(x.show().conntrack.ipv6.entries).toBeGreaterThan(0);
  });

  it('xlb show renders the IPv6 VIPs, their backends and the IPv6 conntrack table', async () => {
    const r = await cli(INSTANCE, 'show');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const text = r.stdout;
    expect(text).toContain(`[${LAB.vip6}]:${LAB.port}/tcp (lb lb6`);
    expect(text).toContain(`→ [${LAB.vms.vm1.ip6}]:${LAB.port}:`);
    expect(text).toContain(`${LAB.vip6IpOnly}/`);
    expect(text).toMatch(/conntrack IPv6: [1-9]\d* of \d+ entries/);
  });
});
