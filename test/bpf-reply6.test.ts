/**
 * reject=true for IPv6 VIPs through BPF_PROG_TEST_RUN: a TCP segment to a v6
 * VIP without a usable backend is answered with a RST, anything else with an
 * ICMPv6 port unreachable quoting the packet up to the minimum MTU (RFC 4443).
 * On tc the answer is the program's output with TC_ACT_REDIRECT; on XDP the
 * untouched frame passes tagged for the tc companion (answered end to end in
 * e2e-reject6). Checksums are recomputed from scratch in TS.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Dataplane } from '../src/dataplane.js';
import { compile } from '../src/compile.js';
import { validateConfig } from '../src/config.js';
import { buildPacket6, ETH_HLEN, PROTO6, parsePacket6, pseudoSum6, onesSum, TCP_FLAGS, checksum } from './helpers/packet.js';
import { parseIPv6 } from '../src/addr.js';
import { closeAndUnpin, loadOnLo } from './helpers/bpf.js';

const PIN_ROOT = `/sys/fs/bpf/xlb-r6-bpf-${process.pid}`;
const IFINDEX = 1; // lo: only a key in xlb_ifaces here
const TC_ACT_SHOT = 2;
const TC_ACT_REDIRECT = 7;
const XDP_PASS = 2;
const XDP_DROP = 1;
const META_MAGIC = 0x786c6221;
const DEFER_REJECT = 2;
const IP6_HLEN = 40;
const ICMP6_HLEN = 8;
/** RFC 4443 2.4(c): the error fits in the minimum IPv6 MTU. */
const MIN_MTU = 1280;
const CLIENT = 'fd00:9::10';

const config = {
  load_balancers: [
    { name: 'rej6', protocol: 'tcp', vips: { '[fd00::3]:80': '' }, options: { reject: true } },
    { name: 'rej6-udp', protocol: 'udp', vips: { '[fd00::3]:53': '' }, options: { reject: 'true' } },
    { name: 'rej6-ip', vips: { 'fd00::4': '' }, options: { reject: true } },
    { name: 'drop6', protocol: 'tcp', vips: { '[fd00::5]:80': '' } },
  ],
  logical_switches: [{ name: 'sw', ports: ['lo'], load_balancer: ['rej6', 'rej6-udp', 'rej6-ip', 'drop6'] }],
};

let dp: Dataplane;

function runProg(prog: number, data: Buffer): { retval: number; out: Buffer } {
  const r = dp.native.progTestRun(prog, { data, ifindex: IFINDEX, repeat: 1 });
  return { retval: r.retval, out: Buffer.from(r.data) };
}

beforeAll(() => {
  dp = loadOnLo(PIN_ROOT, config, IFINDEX);
});

afterAll(() => closeAndUnpin(dp, PIN_ROOT));

/** Checks the L2/L3 of an answer to `req`, its checksum from scratch, and returns it parsed. */
function checkAnswer(req: Buffer, out: Buffer, proto: number): ReturnType<typeof parsePacket6> {
  expect(out.subarray(0, 6)).toEqual(req.subarray(6, 12)); // to the sender's MAC
  expect(out.subarray(6, 12)).toEqual(req.subarray(0, 6)); // from the MAC it was sent to
  expect(out.readUInt16BE(12)).toBe(0x86dd);
  expect(out[ETH_HLEN] >> 4).toBe(6);
  expect(out.readUInt16BE(ETH_HLEN + 4)).toBe(out.length - ETH_HLEN - IP6_HLEN); // payload length
  const p = parsePacket6(out);
  const q = parsePacket6(req);
  expect(p.proto).toBe(proto);
  expect(p.src).toBe(q.dst);
  expect(p.dst).toBe(q.src);
  // From scratch: pseudo-header (RFC 8200 8.1) + the whole upper-layer message.
  const l4 = out.subarray(ETH_HLEN + IP6_HLEN);
  const seed = pseudoSum6(out.subarray(ETH_HLEN + 8, ETH_HLEN + 24), out.subarray(ETH_HLEN + 24, ETH_HLEN + 40), proto, l4.length);
  expect(onesSum(l4, seed)).toBe(0xffff);
  expect(p.l4CsumOk).toBe(true);
  return p;
}

describe('reject=true for an IPv6 VIP on the tc hook: the answer, sent back by redirect', () => {
  it.each(['full', 'partial'] as const)('answers a TCP SYN (%s checksum) with RST|ACK acknowledging it', (csum) => {
    const before = dp.globalCounters().reject;
    const req = buildPacket6({ src: CLIENT, dst: 'fd00::3', proto: 'tcp', sport: 40001, dport: 80, csum });
    const { retval, out } = runProg(dp.progs.xlb_tc_ingress, req);
    expect(retval).toBe(TC_ACT_REDIRECT);
    expect(out.length).toBe(ETH_HLEN + IP6_HLEN + 20);
    const p = checkAnswer(req, out, PROTO6.tcp);
    expect(p.sport).toBe(80);
    expect(p.dport).toBe(40001);
    expect(p.l4[13]).toBe(TCP_FLAGS.rst | TCP_FLAGS.ack);
    expect(p.l4.readUInt32BE(4)).toBe(0);
    // buildPacket6's SYN has seq 1000 and a 10-byte payload: SYN + payload acknowledged.
    expect(p.l4.readUInt32BE(8)).toBe(1000 + 1 + 'hello xlb6'.length);
    expect(dp.globalCounters().reject - before).toBe(1n);
  });

  it('answers a segment with ACK by a bare RST whose seq is that ACK', () => {
    const req = buildPacket6({ src: CLIENT, dst: 'fd00::3', proto: 'tcp', sport: 40002, dport: 80, tcpFlags: TCP_FLAGS.ack });
    const tcp = req.subarray(ETH_HLEN + IP6_HLEN);
    tcp.writeUInt32BE(0xdeadbeef, 8);
    tcp.writeUInt16BE(0, 16);
    tcp.writeUInt16BE(checksum(tcp, pseudoSum6(parseIPv6(CLIENT), parseIPv6('fd00::3'), PROTO6.tcp, tcp.length)), 16);
    expect(parsePacket6(req).l4CsumOk).toBe(true);
    const { retval, out } = runProg(dp.progs.xlb_tc_ingress, req);
    expect(retval).toBe(TC_ACT_REDIRECT);
    const p = checkAnswer(req, out, PROTO6.tcp);
    expect(p.l4[13]).toBe(TCP_FLAGS.rst);
    expect(p.l4.readUInt32BE(4)).toBe(0xdeadbeef);
  });

  it('never answers a RST, nor a multicast source (dropped, counted)', () => {
    const before = dp.globalCounters();
    for (const req of [
      buildPacket6({ src: CLIENT, dst: 'fd00::3', proto: 'tcp', dport: 80, tcpFlags: TCP_FLAGS.rst }),
      buildPacket6({ src: 'ff02::1', dst: 'fd00::3', proto: 'udp', dport: 53 }),
    ]) {
      expect(runProg(dp.progs.xlb_tc_ingress, req).retval).toBe(TC_ACT_SHOT);
    }
    const after = dp.globalCounters();
    expect(after.reject_fail - before.reject_fail).toBe(2n);
    expect(after.reject - before.reject).toBe(0n);
  });

  it.each(['full', 'partial'] as const)('answers UDP (%s checksum) with ICMPv6 port unreachable quoting the whole packet', (csum) => {
    const req = buildPacket6({ src: CLIENT, dst: 'fd00::3', proto: 'udp', sport: 40003, dport: 53, csum });
    const { retval, out } = runProg(dp.progs.xlb_tc_ingress, req);
    expect(retval).toBe(TC_ACT_REDIRECT);
    expect(out.length).toBe(req.length + IP6_HLEN + ICMP6_HLEN);
    const p = checkAnswer(req, out, PROTO6.icmp6);
    expect(p.l4[0]).toBe(1); // destination unreachable
    expect(p.l4[1]).toBe(4); // port unreachable
    expect(p.l4.subarray(8)).toEqual(req.subarray(ETH_HLEN)); // the invoking packet, byte for byte
    expect(p.l4.readUInt16BE(4)).toBe(0); // unused
    if (csum === 'full') {
      expect(p.l4.readUInt16BE(6)).toBe(0);
    } else {
      // A CHECKSUM_PARTIAL datagram: csum_start is the ICMPv6 header now, csum_offset 6. What a
      // software finish (skb_checksum_help) writes there is already there: the sum stays valid.
      const msg = Buffer.from(p.l4);
      expect(msg.readUInt16BE(6)).not.toBe(0);
      const finished = ~onesSum(msg) & 0xffff;
      expect(finished === msg.readUInt16BE(6) || finished + msg.readUInt16BE(6) === 0xffff).toBe(true);
      msg.writeUInt16BE(finished, 6);
      const src = out.subarray(ETH_HLEN + 8, ETH_HLEN + 24);
      const dst = out.subarray(ETH_HLEN + 24, ETH_HLEN + 40);
      expect(onesSum(msg, pseudoSum6(src, dst, PROTO6.icmp6, msg.length))).toBe(0xffff);
    }
  });

  it.each([1, 63, 64, 65, 500, 1183, 1184, 1185, 1400])('quotes a %i-byte UDP payload up to the minimum MTU', (n) => {
    const payload = Buffer.alloc(n);
    for (let i = 0; i < n; i++) payload[i] = (i * 7 + 3) & 0xff;
    const req = buildPacket6({ src: CLIENT, dst: 'fd00::3', proto: 'udp', sport: 40004, dport: 53, payload });
    const { retval, out } = runProg(dp.progs.xlb_tc_ingress, req);
    expect(retval).toBe(TC_ACT_REDIRECT);
    const ip6len = req.length - ETH_HLEN;
    const quoted = Math.min(ip6len, MIN_MTU - IP6_HLEN - ICMP6_HLEN);
    expect(out.length).toBe(ETH_HLEN + IP6_HLEN + ICMP6_HLEN + quoted);
    expect(out.length - ETH_HLEN).toBeLessThanOrEqual(MIN_MTU);
    const p = checkAnswer(req, out, PROTO6.icmp6);
    expect(p.l4.subarray(8)).toEqual(req.subarray(ETH_HLEN, ETH_HLEN + quoted));
  });

  it('answers an ICMPv6 echo to a rejecting IP-only VIP, never an ICMPv6 error', () => {
    const echo = buildPacket6({ src: CLIENT, dst: 'fd00::4', proto: 'icmp6' });
    const r = runProg(dp.progs.xlb_tc_ingress, echo);
    expect(r.retval).toBe(TC_ACT_REDIRECT);
    const p = checkAnswer(echo, r.out, PROTO6.icmp6);
    expect(p.l4[0]).toBe(1);
    expect(p.l4.subarray(8)).toEqual(echo.subarray(ETH_HLEN));
    const reply = buildPacket6({ src: CLIENT, dst: 'fd00::4', proto: 'icmp6', icmpType: 129 }); // echo reply
    expect(runProg(dp.progs.xlb_tc_ingress, reply).retval).toBe(TC_ACT_SHOT);
  });

  it('counts rejections per VIP; without reject the packet is dropped as before', () => {
    const c = compile(validateConfig(config));
    const rejId = c.vips.find((v) => v.vip === '[fd00::3]:80')!.id;
    const dropId = c.vips.find((v) => v.vip === '[fd00::5]:80')!.id;
    const drops = dp.vipStats(dropId).drops;
    const req = buildPacket6({ src: CLIENT, dst: 'fd00::5', proto: 'tcp', dport: 80 });
    expect(runProg(dp.progs.xlb_tc_ingress, req).retval).toBe(TC_ACT_SHOT);
    expect(dp.vipStats(dropId).drops - drops).toBe(1n);
    expect(dp.vipStats(dropId).rejects).toBe(0n);
    expect(dp.vipStats(rejId).rejects).toBe(4n); // two SYNs, the ACK and the RST (decided, not answered)
  });
});

describe('reject=true for an IPv6 VIP on the XDP hook: deferred to the tc companion', () => {
  it.each(['tcp', 'udp'] as const)('passes the untouched %s frame with a reject tag in its metadata', (proto) => {
    const req = buildPacket6({ src: CLIENT, dst: 'fd00::3', proto, dport: proto === 'tcp' ? 80 : 53 });
    const { retval, out } = runProg(dp.progs.xlb_xdp_ingress, req);
    expect(retval).toBe(XDP_PASS);
    expect(out.length).toBe(req.length + 8); // BPF_PROG_TEST_RUN returns the frame from data_meta on
    expect(out.readUInt32LE(0)).toBe(META_MAGIC);
    expect(out.readUInt32LE(4)).toBe(DEFER_REJECT);
    expect(out.subarray(8)).toEqual(req);
  });

  it('drops without reject', () => {
    const req = buildPacket6({ src: CLIENT, dst: 'fd00::5', proto: 'tcp', dport: 80 });
    expect(runProg(dp.progs.xlb_xdp_ingress, req).retval).toBe(XDP_DROP);
  });
});
