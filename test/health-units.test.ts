// Pure parts of the health checks: frame building/parsing with checksums,
// the ip_port_mappings / health_check config, the checker's option rules.
import { describe, expect, it } from 'vitest';
import { parseIPv4 } from '../src/addr.js';
import { compile } from '../src/compile.js';
import { validateConfig } from '../src/config.js';
import {
  arpFrame,
  BROADCAST_MAC,
  inetChecksum,
  parseFrame,
  parseMac,
  TCP_SYN,
  tcpFrame,
  udpFrame,
} from '../src/health/frames.js';
import { HealthChecker, healthOptions, healthTargets, parseIpPortMapping, validateLbHealth, OVN_HEALTH_DEFAULTS } from '../src/health/index.js';

const a = { ethSrc: parseMac('0a:58:78:6c:62:01'), ethDst: parseMac('02:00:00:00:00:02'), src: parseIPv4('172.16.255.140'), dst: parseIPv4('172.16.255.130') };

/** Sum over the pseudo-header and L4 segment: 0 (folded 0xffff → ~ = 0) when the checksum is right. */
function l4Verifies(f: Buffer): boolean {
  const ihl = (f[14] & 15) * 4;
  const total = f.readUInt16BE(16);
  const l4 = f.subarray(14 + ihl, 14 + total);
  const pseudo = Buffer.alloc(12);
  f.copy(pseudo, 0, 26, 34);
  pseudo[9] = f[23];
  pseudo.writeUInt16BE(l4.length, 10);
  return inetChecksum(Buffer.concat([pseudo, l4])) === 0;
}

describe('frames', () => {
  it('TCP SYN: valid IP and TCP checksums, parsed back', () => {
    const f = tcpFrame(a, { sport: 50000, dport: 8000, seq: 0xdeadbeef, ack: 0, flags: TCP_SYN });
    expect(f.length).toBe(60);
    expect(inetChecksum(f.subarray(14, 34))).toBe(0);
    expect(l4Verifies(f)).toBe(true);
    expect(parseFrame(f)).toMatchObject({ kind: 'tcp', src: a.src, dst: a.dst, sport: 50000, dport: 8000, seq: 0xdeadbeef, flags: TCP_SYN });
  });

  it('UDP: valid checksum (odd payload), parsed back', () => {
    const f = udpFrame(a, { sport: 50001, dport: 8053, payload: Buffer.from('abc') });
    expect(l4Verifies(f)).toBe(true);
    const p = parseFrame(f);
    expect(p).toMatchObject({ kind: 'udp', sport: 50001, dport: 8053 });
    expect(p?.kind === 'udp' && p.payload.toString()).toBe('abc');
  });

  it('ARP request parsed back; ICMP port unreachable quotes are read', () => {
    const arp = arpFrame({ op: 1, ethDst: BROADCAST_MAC, senderMac: a.ethSrc, senderIp: a.src, targetMac: Buffer.alloc(6), targetIp: a.dst });
    expect(arp.length).toBe(60);
    expect(parseFrame(arp)).toMatchObject({ kind: 'arp', op: 1, senderIp: a.src, targetIp: a.dst });
    const udp = udpFrame(a, { sport: 50001, dport: 8053, payload: Buffer.from('x') });
    const quoted = udp.subarray(14, 14 + 28);
    const icmp = Buffer.alloc(8 + quoted.length);
    icmp[0] = 3;
    icmp[1] = 3;
    quoted.copy(icmp, 8);
    const ip = Buffer.alloc(20);
    ip[0] = 0x45;
    ip.writeUInt16BE(20 + icmp.length, 2);
    ip[9] = 1;
    ip.writeUInt32BE(a.dst, 12);
    ip.writeUInt32BE(a.src, 16);
    const eth = Buffer.alloc(14);
    eth.writeUInt16BE(0x0800, 12);
    expect(parseFrame(Buffer.concat([eth, ip, icmp]))).toMatchObject({
      kind: 'icmp', type: 3, code: 3, quote: { src: a.src, dst: a.dst, proto: 17, sport: 50001, dport: 8053 },
    });
  });

  it('malformed frames are ignored', () => {
    expect(parseFrame(Buffer.alloc(10))).toBeNull();
    expect(parseFrame(Buffer.alloc(60))).toBeNull();
    expect(() => parseMac('0a:58:78:6c:62')).toThrow(/is not a MAC address/);
  });
});

describe('config', () => {
  it('OVN defaults and option rules', () => {
    expect(healthOptions()).toEqual({ interval: 5, timeout: 20, success_count: 3, failure_count: 3 });
    expect(OVN_HEALTH_DEFAULTS.timeout).toBe(20);
    expect(healthOptions({ interval: 0.5 }).interval).toBe(0.5);
    expect(() => healthOptions({ failure_count: 0 })).toThrow('failure_count: must be a positive integer (got 0)');
    expect(() => healthOptions({ timeout: -1 })).toThrow(/timeout/);
  });

  it('ip_port_mappings entries: NETNS/IFNAME:SOURCE_IP', () => {
    expect(parseIpPortMapping('xlb-hv/xlb-vm1-h:172.16.255.140', 'f')).toEqual({ interface: 'xlb-hv/xlb-vm1-h', ip: '172.16.255.140' });
    expect(parseIpPortMapping('eth1:10.0.0.9', 'f')).toEqual({ interface: 'eth1', ip: '10.0.0.9' });
    expect(() => parseIpPortMapping('xlb-vm1-h', 'f')).toThrow('f: must be "IFNAME:SOURCE_IP" or "NETNS/IFNAME:SOURCE_IP" (got "xlb-vm1-h")');
    expect(() => parseIpPortMapping('eth1:10.0.0.300', 'f')).toThrow(/not a valid IPv4 address/);
  });

  it('validateLbHealth + healthTargets from compiled VIPs', () => {
    const lb = {
      name: 'lb1',
      protocol: 'tcp',
      vips: { '172.16.255.62:8000': '172.16.255.130:8000,172.16.255.131:8000' },
    };
    const desired = validateConfig({ load_balancers: [lb], logical_switches: [{ name: 's', ports: ['eth9'], load_balancer: ['lb1'] }] });
    const h = validateLbHealth(
      {
        ...lb,
        ip_port_mappings: { '172.16.255.130': 'hv/vm1-h:172.16.255.140', '172.16.255.131': 'hv/vm2-h:172.16.255.140' },
        health_check: [{ vip: '172.16.255.62:8000', options: { interval: '0.5', failure_count: '2' } }],
      },
      0,
    );
    expect(h.health_check[0].options).toEqual({ interval: 0.5, timeout: 20, success_count: 3, failure_count: 2 });
    const t = healthTargets(compile(desired), { lb1: h });
    expect(t).toEqual([
      { vip: 'lb1 172.16.255.62:8000/tcp', backend: '172.16.255.130:8000', protocol: 'tcp', probe: { type: 'tcp' }, options: h.health_check[0].options, source: { interface: 'hv/vm1-h', ip: '172.16.255.140' } },
      { vip: 'lb1 172.16.255.62:8000/tcp', backend: '172.16.255.131:8000', protocol: 'tcp', probe: { type: 'tcp' }, options: h.health_check[0].options, source: { interface: 'hv/vm2-h', ip: '172.16.255.140' } },
    ]);
    expect(() => validateLbHealth({ health_check: [{ vip: 'x', options: { retries: 1 } }] }, 2)).toThrow('load_balancers[2].health_check[0].options.retries: unknown option (got 1)');
    expect(() => validateLbHealth({ health_check: [{ vip: 'x', probe: { type: 'icmp' } }] }, 0)).toThrow(/probe.type: must be tcp, udp or http/);
    const noMap = validateLbHealth({ health_check: [{ vip: '172.16.255.62:8000' }] }, 0);
    expect(() => healthTargets(compile(desired), { lb1: noMap })).toThrow(/backend 172.16.255.130:8000 of 172.16.255.62:8000 has no entry/);
    const http = validateLbHealth({ health_check: [{ vip: '172.16.255.62:8000', probe: { type: 'http', path: '/h', expect_status: '204' } }] }, 0);
    expect(healthTargets(compile(desired), { lb1: http })[0]).toMatchObject({ probe: { type: 'http', path: '/h', expect_status: 204 } });
  });

  it('the checker refuses a raw probe without a source and duplicate targets', () => {
    expect(() => new HealthChecker([{ vip: 'v', backend: '10.0.0.1:80', protocol: 'tcp' }])).toThrow(/needs a source/);
    const t = { vip: 'v', backend: '10.0.0.1:80', protocol: 'tcp' as const, probe: { type: 'http' as const } };
    expect(() => new HealthChecker([t, t])).toThrow(/listed twice/);
  });
});
