/**
 * What xlb sends back out the interface a packet came in on, through
 * BPF_PROG_TEST_RUN: reject=true's TCP RST and ICMP port unreachable, and the
 * neighbor_responder's ARP reply. On tc the answer is the program's output
 * with TC_ACT_REDIRECT; on XDP the frame passes tagged (metadata) for the tc
 * companion, which is run here on the untagged frame for ARP. Checksums are
 * recomputed from scratch in TS.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Dataplane } from '../src/dataplane.js';
import { compile } from '../src/compile.js';
import { validateConfig } from '../src/config.js';
import { parseIPv4 } from '../src/addr.js';
import { buildPacket, buildPacket6, ETH_HLEN, onesSum, parsePacket, parsePacket6, TCP_FLAGS, type PacketSpec } from './helpers/packet.js';
import { parseIPv6 } from '../src/addr.js';
import { closeAndUnpin, loadOnLo } from './helpers/bpf.js';

const PIN_ROOT = `/sys/fs/bpf/xlb-rj-bpf-${process.pid}`;
const IFINDEX = 1; // lo: only a key in xlb_ifaces here
const ROUTER_MAC = '0a:00:00:00:ff:01';
const TC_ACT_OK = 0;
const TC_ACT_SHOT = 2;
const TC_ACT_REDIRECT = 7;
const XDP_PASS = 2;
const XDP_DROP = 1;
const META_MAGIC = 0x786c6221;
const DEFER_REJECT = 2;

const config = {
  load_balancers: [
    { name: 'rej', protocol: 'tcp', vips: { '10.0.0.3:80': '' }, options: { reject: true } },
    { name: 'rej-udp', protocol: 'udp', vips: { '10.0.0.3:53': '' }, options: { reject: 'true' } },
    { name: 'rej-ip', vips: { '10.0.0.4': '' }, options: { reject: true } },
    { name: 'drop', protocol: 'tcp', vips: { '10.0.0.5:80': '' } },
    { name: 'far', protocol: 'tcp', vips: { '10.9.0.1:80': '10.1.0.1:80' } },
    { name: 'far-all', protocol: 'tcp', vips: { '10.9.0.2:80': '10.1.0.1:80' }, options: { neighbor_responder: 'all' } },
    { name: 'near-none', protocol: 'tcp', vips: { '10.0.0.6:80': '10.1.0.1:80' }, options: { neighbor_responder: 'none' } },
    { name: 'v6', protocol: 'tcp', vips: { '[fd00:a::3]:80': '[fd00:b::1]:80', '[fd00:c::1]:80': '[fd00:b::1]:80' } },
  ],
  logical_routers: [
    {
      name: 'r1',
      ports: [{ name: 'lrp1', interface: 'lo', mac: ROUTER_MAC, networks: ['10.0.0.254/24', 'fd00:a::fe/64'] }],
      load_balancer: ['rej', 'rej-udp', 'rej-ip', 'drop', 'far', 'far-all', 'near-none', 'v6'],
    },
  ],
};

let dp: Dataplane;

function runProg(prog: number, data: Buffer): { retval: number; out: Buffer } {
  const r = dp.native.progTestRun(prog, { data, ifindex: IFINDEX, repeat: 1 });
  return { retval: r.retval, out: Buffer.from(r.data) };
}

const mac = (s: string): Buffer => Buffer.from(s.replace(/:/g, ''), 'hex');

beforeAll(() => {
  dp = loadOnLo(PIN_ROOT, config, IFINDEX);
});

afterAll(() => closeAndUnpin(dp, PIN_ROOT));

/** Checks the L2/L3 of an answer to `req` and returns its parsed form. */
function checkAnswer(req: Buffer, out: Buffer, proto: number): ReturnType<typeof parsePacket> {
  expect(out.subarray(0, 6)).toEqual(req.subarray(6, 12)); // to the sender's MAC
  expect(out.subarray(6, 12)).toEqual(req.subarray(0, 6)); // from the MAC it was sent to
  expect(out.readUInt16BE(12)).toBe(0x0800);
  const p = parsePacket(out);
  const q = parsePacket(req);
  expect(p.proto).toBe(proto);
  expect(p.src).toBe(q.dst);
  expect(p.dst).toBe(q.src);
  expect(p.ipCsumOk).toBe(true);
  expect(p.l4CsumOk).toBe(true);
  expect(out.readUInt16BE(ETH_HLEN + 2)).toBe(out.length - ETH_HLEN); // IP total length
  return p;
}

describe('reject=true on the tc hook: the answer, sent back by redirect', () => {
  it.each(['full', 'partial'] as const)('answers a TCP SYN (%s checksum) with RST|ACK acknowledging it', (csum) => {
    const before = dp.globalCounters().reject;
    const req = buildPacket({ src: '192.168.1.10', dst: '10.0.0.3', proto: 'tcp', sport: 40001, dport: 80, csum });
    const { retval, out } = runProg(dp.progs.xlb_tc_ingress, req);
    expect(retval).toBe(TC_ACT_REDIRECT);
    expect(out.length).toBe(ETH_HLEN + 20 + 20);
    const p = checkAnswer(req, out, 6);
    expect(p.sport).toBe(80);
    expect(p.dport).toBe(40001);
    expect(p.l4[13]).toBe(TCP_FLAGS.rst | TCP_FLAGS.ack);
    expect(p.l4.readUInt32BE(4)).toBe(0); // seq
    // buildPacket's SYN has seq 1000 and a 9-byte payload: SYN + payload acknowledged.
    expect(p.l4.readUInt32BE(8)).toBe(1000 + 1 + 'hello xlb'.length);
    expect(dp.globalCounters().reject - before).toBe(1n);
  });

  it('answers a segment with ACK by a bare RST whose seq is that ACK', () => {
    const req = buildPacket({ src: '192.168.1.11', dst: '10.0.0.3', proto: 'tcp', sport: 40002, dport: 80, tcpFlags: TCP_FLAGS.ack });
    const tcp = req.subarray(ETH_HLEN + 20);
    tcp.writeUInt32BE(0xdeadbeef, 8);
    tcp.writeUInt16BE(0, 16);
    const ph = Buffer.concat([req.subarray(ETH_HLEN + 12, ETH_HLEN + 20), Buffer.from([0, 6]), Buffer.from([0, tcp.length])]);
    tcp.writeUInt16BE(~onesSum(tcp, onesSum(ph)) & 0xffff, 16);
    const { retval, out } = runProg(dp.progs.xlb_tc_ingress, req);
    expect(retval).toBe(TC_ACT_REDIRECT);
    const p = checkAnswer(req, out, 6);
    expect(p.l4[13]).toBe(TCP_FLAGS.rst);
    expect(p.l4.readUInt32BE(4)).toBe(0xdeadbeef);
  });

  it('never answers a RST (dropped, counted)', () => {
    const before = dp.globalCounters();
    const req = buildPacket({ src: '192.168.1.12', dst: '10.0.0.3', proto: 'tcp', dport: 80, tcpFlags: TCP_FLAGS.rst });
    expect(runProg(dp.progs.xlb_tc_ingress, req).retval).toBe(TC_ACT_SHOT);
    const after = dp.globalCounters();
    expect(after.reject_fail - before.reject_fail).toBe(1n);
    expect(after.reject - before.reject).toBe(0n);
  });

  it.each(['full', 'partial'] as const)('answers UDP (%s checksum) with ICMP port unreachable quoting the datagram', (csum) => {
    const req = buildPacket({ src: '192.168.1.13', dst: '10.0.0.3', proto: 'udp', sport: 40003, dport: 53, csum });
    const { retval, out } = runProg(dp.progs.xlb_tc_ingress, req);
    expect(retval).toBe(TC_ACT_REDIRECT);
    expect(out.length).toBe(ETH_HLEN + 20 + 8 + 20 + 8);
    const p = checkAnswer(req, out, 1);
    expect(p.l4[0]).toBe(3); // destination unreachable
    expect(p.l4[1]).toBe(3); // port unreachable
    expect(p.l4.readUInt32BE(4)).toBe(0);
    // The original IP header and the UDP header, byte for byte.
    expect(p.l4.subarray(8)).toEqual(req.subarray(ETH_HLEN, ETH_HLEN + 28));
  });

  it('answers a short datagram too (the reply grows the frame)', () => {
    const req = buildPacket({ src: '192.168.1.14', dst: '10.0.0.3', proto: 'udp', sport: 40004, dport: 53, payload: Buffer.alloc(0) });
    expect(req.length).toBe(ETH_HLEN + 28);
    const { retval, out } = runProg(dp.progs.xlb_tc_ingress, req);
    expect(retval).toBe(TC_ACT_REDIRECT);
    const p = checkAnswer(req, out, 1);
    expect(p.l4.subarray(8)).toEqual(req.subarray(ETH_HLEN));
  });

  it('answers an ICMP echo to a rejecting IP-only VIP, never an ICMP error', () => {
    const echo = buildPacket({ src: '192.168.1.15', dst: '10.0.0.4', proto: 'icmp' });
    const r = runProg(dp.progs.xlb_tc_ingress, echo);
    expect(r.retval).toBe(TC_ACT_REDIRECT);
    const p = checkAnswer(echo, r.out, 1);
    expect(p.l4[0]).toBe(3);
    const err = Buffer.from(echo);
    err[ETH_HLEN + 20] = 3; // an ICMP error of its own
    expect(runProg(dp.progs.xlb_tc_ingress, err).retval).toBe(TC_ACT_SHOT);
  });

  it('counts rejections per VIP; without reject the packet is dropped as before', () => {
    const vipRej = dp.vipStats(compile(validateConfig(config)).vips.find((v) => v.vip === '10.0.0.3:80')!.id).rejects;
    const dropId = compile(validateConfig(config)).vips.find((v) => v.vip === '10.0.0.5:80')!.id;
    const drops = dp.vipStats(dropId).drops;
    const spec: PacketSpec = { src: '192.168.1.16', dst: '10.0.0.5', proto: 'tcp', dport: 80 };
    expect(runProg(dp.progs.xlb_tc_ingress, buildPacket(spec)).retval).toBe(TC_ACT_SHOT);
    expect(dp.vipStats(dropId).drops - drops).toBe(1n);
    expect(dp.vipStats(dropId).rejects).toBe(0n);
    expect(vipRej).toBe(4n); // two SYNs, the ACK and the RST above (the RST decided, not answered)
  });
});

describe('reject=true on the XDP hook: deferred to the tc companion', () => {
  it('passes the untouched frame with a reject tag in its metadata', () => {
    const req = buildPacket({ src: '192.168.1.20', dst: '10.0.0.3', proto: 'tcp', dport: 80 });
    const { retval, out } = runProg(dp.progs.xlb_xdp_ingress, req);
    expect(retval).toBe(XDP_PASS);
    // BPF_PROG_TEST_RUN returns the frame from data_meta on.
    expect(out.length).toBe(req.length + 8);
    expect(out.readUInt32LE(0)).toBe(META_MAGIC);
    expect(out.readUInt32LE(4)).toBe(DEFER_REJECT);
    expect(out.subarray(8)).toEqual(req);
  });

  it('drops without reject, and leaves other traffic untagged', () => {
    expect(runProg(dp.progs.xlb_xdp_ingress, buildPacket({ src: '192.168.1.21', dst: '10.0.0.5', proto: 'tcp', dport: 80 })).retval).toBe(XDP_DROP);
    const other = buildPacket({ src: '192.168.1.21', dst: '10.0.0.77', proto: 'tcp', dport: 80 });
    const r = runProg(dp.progs.xlb_xdp_ingress, other);
    expect(r.retval).toBe(XDP_PASS);
    expect(r.out).toEqual(other);
  });

  it('the companion passes an untagged frame untouched', () => {
    const other = buildPacket({ src: '192.168.1.22', dst: '10.0.0.3', proto: 'tcp', dport: 80 });
    const r = runProg(dp.progs.xlb_tc_reply, other);
    expect(r.retval).toBe(TC_ACT_OK);
    expect(r.out).toEqual(other);
  });
});

/** An ARP request from 10.0.0.1 (02:00:00:00:00:02) for `target`. */
function arpRequest(target: string, sender = '10.0.0.1'): Buffer {
  const f = Buffer.alloc(42);
  mac('ff:ff:ff:ff:ff:ff').copy(f, 0);
  mac('02:00:00:00:00:02').copy(f, 6);
  f.writeUInt16BE(0x0806, 12);
  f.writeUInt16BE(1, 14); // Ethernet
  f.writeUInt16BE(0x0800, 16); // IPv4
  f[18] = 6;
  f[19] = 4;
  f.writeUInt16BE(1, 20); // request
  mac('02:00:00:00:00:02').copy(f, 22);
  f.writeUInt32BE(parseIPv4(sender), 28);
  f.writeUInt32BE(parseIPv4(target), 38);
  return f;
}

describe('neighbor_responder: ARP for a VIP answered with the router port MAC', () => {
  it.each(['xlb_tc_ingress', 'xlb_tc_reply'] as const)('%s turns a request into the reply and redirects it', (prog) => {
    const before = dp.globalCounters().neigh_reply;
    const req = arpRequest('10.0.0.3');
    const { retval, out } = runProg(dp.progs[prog], req);
    expect(retval).toBe(TC_ACT_REDIRECT);
    expect(out.length).toBe(42);
    expect(out.subarray(0, 6)).toEqual(mac('02:00:00:00:00:02'));
    expect(out.subarray(6, 12)).toEqual(mac(ROUTER_MAC));
    expect(out.readUInt16BE(20)).toBe(2); // reply
    expect(out.subarray(22, 28)).toEqual(mac(ROUTER_MAC)); // sender: the router port
    expect(out.readUInt32BE(28)).toBe(parseIPv4('10.0.0.3'));
    expect(out.subarray(32, 38)).toEqual(mac('02:00:00:00:00:02'));
    expect(out.readUInt32BE(38)).toBe(parseIPv4('10.0.0.1'));
    expect(dp.globalCounters().neigh_reply - before).toBe(1n);
  });

  it('reachable (default): a VIP outside every router network is not answered; all: it is', () => {
    expect(runProg(dp.progs.xlb_tc_ingress, arpRequest('10.9.0.1')).retval).toBe(TC_ACT_OK);
    expect(runProg(dp.progs.xlb_tc_ingress, arpRequest('10.9.0.2')).retval).toBe(TC_ACT_REDIRECT);
  });

  it('none: not answered; nor an address that is no VIP, nor gratuitous ARP', () => {
    for (const req of [arpRequest('10.0.0.6'), arpRequest('10.0.0.99'), arpRequest('10.0.0.3', '10.0.0.3')]) {
      const r = runProg(dp.progs.xlb_tc_ingress, req);
      expect(r.retval).toBe(TC_ACT_OK);
      expect(r.out).toEqual(req);
    }
  });

  it('XDP passes ARP untouched (the tc companion answers it)', () => {
    const req = arpRequest('10.0.0.3');
    const r = runProg(dp.progs.xlb_xdp_ingress, req);
    expect(r.retval).toBe(XDP_PASS);
    expect(r.out).toEqual(req);
  });
});

/** A neighbour solicitation from fd00:a::1 (02:00:00:00:00:02) for `target`, with its
 *  source link-layer address option; `src` '::' makes it duplicate address detection. */
function nsRequest(target: string, src = 'fd00:a::1'): Buffer {
  const body = Buffer.concat([parseIPv6(target), Buffer.from([1, 1, 2, 0, 0, 0, 0, 2])]);
  const f = buildPacket6({ src, dst: 'ff02::1:ff00:3', proto: 'icmp6', icmpType: 135, icmpCode: 0, icmpRest: 0, payload: body });
  f[ETH_HLEN + 7] = 255; // hop limit (not in the checksum)
  return f;
}

describe('neighbor_responder: a neighbour solicitation for an IPv6 VIP answered with the router port MAC', () => {
  it.each(['xlb_tc_ingress', 'xlb_tc_reply'] as const)('%s turns it into the advertisement and redirects it', (prog) => {
    const before = dp.globalCounters().neigh_reply;
    const req = nsRequest('fd00:a::3');
    expect(parsePacket6(req).l4CsumOk).toBe(true);
    const { retval, out } = runProg(dp.progs[prog], req);
    expect(retval).toBe(TC_ACT_REDIRECT);
    expect(out.length).toBe(ETH_HLEN + 40 + 32);
    expect(out.subarray(0, 6)).toEqual(mac('02:00:00:00:00:02'));
    expect(out.subarray(6, 12)).toEqual(mac(ROUTER_MAC));
    expect(out[ETH_HLEN + 7]).toBe(255);
    const p = parsePacket6(out);
    expect(p.src).toBe('fd00:a::3');
    expect(p.dst).toBe('fd00:a::1');
    expect(p.proto).toBe(58);
    expect(p.l4CsumOk).toBe(true);
    expect(p.l4[0]).toBe(136); // advertisement
    expect(p.l4[4]).toBe(0xe0); // router, solicited, override
    expect(p.l4.subarray(8, 24)).toEqual(parseIPv6('fd00:a::3'));
    expect(p.l4.subarray(24, 32)).toEqual(Buffer.concat([Buffer.from([2, 1]), mac(ROUTER_MAC)])); // target link-layer address
    expect(dp.globalCounters().neigh_reply - before).toBe(1n);
  });

  it('not answered: a VIP outside the router networks (reachable), an address that is no VIP, DAD, a hop limit below 255', () => {
    const low = nsRequest('fd00:a::3');
    low[ETH_HLEN + 7] = 64;
    for (const req of [nsRequest('fd00:c::1'), nsRequest('fd00:a::99'), nsRequest('fd00:a::3', '::'), low]) {
      const r = runProg(dp.progs.xlb_tc_ingress, req);
      expect(r.retval).toBe(TC_ACT_OK);
      expect(r.out).toEqual(req);
    }
  });

  it('XDP passes the solicitation untouched (the tc companion answers it)', () => {
    const req = nsRequest('fd00:a::3');
    const r = runProg(dp.progs.xlb_xdp_ingress, req);
    expect(r.retval).toBe(XDP_PASS);
    expect(r.out).toEqual(req);
  });
});

