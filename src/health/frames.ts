/**
 * Ethernet frames for the health probes: built and parsed in TS (the addon only
 * moves bytes). Ethernet II, ARP (IPv4 over Ethernet), IPv4 without options on
 * send, TCP / UDP / ICMP. Every checksum is computed in full: a frame written
 * to an AF_PACKET socket gets no offload help.
 */

export const ETH_P_IP = 0x0800;
export const ETH_P_ARP = 0x0806;
export const IPPROTO_ICMP = 1;
export const IPPROTO_TCP = 6;
export const IPPROTO_UDP = 17;

export const TCP_FIN = 0x01;
export const TCP_SYN = 0x02;
export const TCP_RST = 0x04;
export const TCP_PSH = 0x08;
export const TCP_ACK = 0x10;

export const BROADCAST_MAC = Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);

/** "aa:bb:cc:dd:ee:ff" → 6 bytes. Throws a RangeError naming the text. */
export function parseMac(s: string): Buffer {
  const parts = s.split(':');
  if (parts.length !== 6 || !parts.every((p) => /^[0-9a-fA-F]{2}$/.test(p))) {
    throw new RangeError(`${JSON.stringify(s)} is not a MAC address (aa:bb:cc:dd:ee:ff)`);
  }
  return Buffer.from(parts.map((p) => parseInt(p, 16)));
}

export function formatMac(b: Uint8Array): string {
  return [...b.subarray(0, 6)].map((x) => x.toString(16).padStart(2, '0')).join(':');
}

/** One's-complement sum of 16-bit words (not folded), continuing from `sum`. */
function sum16(b: Uint8Array, sum = 0): number {
  let i = 0;
  for (; i + 1 < b.length; i += 2) sum += (b[i] << 8) | b[i + 1];
  if (i < b.length) sum += b[i] << 8;
  return sum;
}

function fold(sum: number): number {
  while (sum > 0xffff) sum = (sum & 0xffff) + Math.floor(sum / 0x10000);
  return ~sum & 0xffff;
}

/** The Internet checksum (RFC 1071) of `b`. */
export function inetChecksum(b: Uint8Array): number {
  return fold(sum16(b));
}

function pseudoSum(src: number, dst: number, proto: number, len: number): number {
  return (src >>> 16) + (src & 0xffff) + (dst >>> 16) + (dst & 0xffff) + proto + len;
}

function ethHeader(dst: Uint8Array, src: Uint8Array, type: number): Buffer {
  const h = Buffer.alloc(14);
  h.set(dst.subarray(0, 6), 0);
  h.set(src.subarray(0, 6), 6);
  h.writeUInt16BE(type, 12);
  return h;
}

/** ARP request (op 1) or reply (op 2), IPv4 over Ethernet, in an Ethernet frame. */
export function arpFrame(opts: {
  op: 1 | 2;
  ethDst: Uint8Array;
  senderMac: Uint8Array;
  senderIp: number;
  targetMac: Uint8Array;
  targetIp: number;
}): Buffer {
  const a = Buffer.alloc(28);
  a.writeUInt16BE(1, 0); // Ethernet
  a.writeUInt16BE(ETH_P_IP, 2);
  a[4] = 6;
  a[5] = 4;
  a.writeUInt16BE(opts.op, 6);
  a.set(opts.senderMac.subarray(0, 6), 8);
  a.writeUInt32BE(opts.senderIp >>> 0, 14);
  a.set(opts.targetMac.subarray(0, 6), 18);
  a.writeUInt32BE(opts.targetIp >>> 0, 24);
  // Pad to the 60-byte Ethernet minimum.
  return Buffer.concat([ethHeader(opts.ethDst, opts.senderMac, ETH_P_ARP), a, Buffer.alloc(18)]);
}

export interface Ipv4Addrs {
  ethSrc: Uint8Array;
  ethDst: Uint8Array;
  src: number;
  dst: number;
}

function ipv4Frame(a: Ipv4Addrs, proto: number, l4: Buffer): Buffer {
  const ip = Buffer.alloc(20);
  ip[0] = 0x45;
  ip.writeUInt16BE(20 + l4.length, 2);
  ip.writeUInt16BE(Math.floor(Math.random() * 0x10000), 4);
  ip.writeUInt16BE(0x4000, 6); // DF
  ip[8] = 64;
  ip[9] = proto;
  ip.writeUInt32BE(a.src >>> 0, 12);
  ip.writeUInt32BE(a.dst >>> 0, 16);
  ip.writeUInt16BE(inetChecksum(ip), 10);
  const frame = Buffer.concat([ethHeader(a.ethDst, a.ethSrc, ETH_P_IP), ip, l4]);
  return frame.length >= 60 ? frame : Buffer.concat([frame, Buffer.alloc(60 - frame.length)]);
}

/** A TCP segment (with an MSS option on SYN) in IPv4 in Ethernet. */
export function tcpFrame(
  a: Ipv4Addrs,
  t: { sport: number; dport: number; seq: number; ack: number; flags: number; window?: number },
): Buffer {
  const syn = (t.flags & TCP_SYN) !== 0;
  const hlen = syn ? 24 : 20;
  const tcp = Buffer.alloc(hlen);
  tcp.writeUInt16BE(t.sport, 0);
  tcp.writeUInt16BE(t.dport, 2);
  tcp.writeUInt32BE(t.seq >>> 0, 4);
  tcp.writeUInt32BE(t.ack >>> 0, 8);
  tcp[12] = (hlen / 4) << 4;
  tcp[13] = t.flags;
  tcp.writeUInt16BE(t.window ?? (t.flags & TCP_RST ? 0 : 64240), 14);
  if (syn) {
    tcp[20] = 2; // MSS
    tcp[21] = 4;
    tcp.writeUInt16BE(1460, 22);
  }
  tcp.writeUInt16BE(fold(sum16(tcp, pseudoSum(a.src, a.dst, IPPROTO_TCP, hlen))), 16);
  return ipv4Frame(a, IPPROTO_TCP, tcp);
}

/** A UDP datagram in IPv4 in Ethernet. */
export function udpFrame(a: Ipv4Addrs, u: { sport: number; dport: number; payload: Uint8Array }): Buffer {
  const udp = Buffer.alloc(8 + u.payload.length);
  udp.writeUInt16BE(u.sport, 0);
  udp.writeUInt16BE(u.dport, 2);
  udp.writeUInt16BE(udp.length, 4);
  udp.set(u.payload, 8);
  let c = fold(sum16(udp, pseudoSum(a.src, a.dst, IPPROTO_UDP, udp.length)));
  if (c === 0) c = 0xffff;
  udp.writeUInt16BE(c, 6);
  return ipv4Frame(a, IPPROTO_UDP, udp);
}

export interface ArpPacket {
  kind: 'arp';
  op: number;
  senderMac: Buffer;
  senderIp: number;
  targetMac: Buffer;
  targetIp: number;
}

interface IpBase {
  ethSrc: Buffer;
  ethDst: Buffer;
  src: number;
  dst: number;
}

export interface TcpPacket extends IpBase {
  kind: 'tcp';
  sport: number;
  dport: number;
  seq: number;
  ack: number;
  flags: number;
}

export interface UdpPacket extends IpBase {
  kind: 'udp';
  sport: number;
  dport: number;
  payload: Buffer;
}

/** An ICMP error, with the header of the datagram it is about (the "quote"). */
export interface IcmpPacket extends IpBase {
  kind: 'icmp';
  type: number;
  code: number;
  /** The quoted datagram's addresses, protocol and first two ports (when quoted). */
  quote: { src: number; dst: number; proto: number; sport: number; dport: number } | null;
}

export type Packet = ArpPacket | TcpPacket | UdpPacket | IcmpPacket;

/** Parses what the probes care about; anything else (or malformed) → null. */
export function parseFrame(f: Buffer): Packet | null {
  if (f.length < 14) return null;
  const ethDst = f.subarray(0, 6);
  const ethSrc = f.subarray(6, 12);
  const type = f.readUInt16BE(12);
  if (type === ETH_P_ARP) {
    if (f.length < 42 || f.readUInt16BE(14) !== 1 || f.readUInt16BE(16) !== ETH_P_IP || f[18] !== 6 || f[19] !== 4) return null;
    return {
      kind: 'arp',
      op: f.readUInt16BE(20),
      senderMac: f.subarray(22, 28),
      senderIp: f.readUInt32BE(28),
      targetMac: f.subarray(32, 38),
      targetIp: f.readUInt32BE(38),
    };
  }
  if (type !== ETH_P_IP || f.length < 34) return null;
  const ihl = (f[14] & 0x0f) * 4;
  if (f[14] >> 4 !== 4 || ihl < 20) return null;
  const total = f.readUInt16BE(16);
  if ((f.readUInt16BE(20) & 0x1fff) !== 0) return null; // not the first fragment
  const end = Math.min(f.length, 14 + total);
  const l4 = 14 + ihl;
  const base: IpBase = { ethSrc, ethDst, src: f.readUInt32BE(26), dst: f.readUInt32BE(30) };
  const proto = f[23];
  if (proto === IPPROTO_TCP) {
    if (end < l4 + 20) return null;
    return {
      ...base,
      kind: 'tcp',
      sport: f.readUInt16BE(l4),
      dport: f.readUInt16BE(l4 + 2),
      seq: f.readUInt32BE(l4 + 4),
      ack: f.readUInt32BE(l4 + 8),
      flags: f[l4 + 13],
    };
  }
  if (proto === IPPROTO_UDP) {
    if (end < l4 + 8) return null;
    return { ...base, kind: 'udp', sport: f.readUInt16BE(l4), dport: f.readUInt16BE(l4 + 2), payload: f.subarray(l4 + 8, end) };
  }
  if (proto === IPPROTO_ICMP) {
    if (end < l4 + 8) return null;
    const type = f[l4];
    const code = f[l4 + 1];
    let quote: IcmpPacket['quote'] = null;
    const q = l4 + 8;
    if ((type === 3 || type === 11 || type === 12) && end >= q + 20 && f[q] >> 4 === 4) {
      const qihl = (f[q] & 0x0f) * 4;
      const qp = q + qihl;
      quote = {
        src: f.readUInt32BE(q + 12),
        dst: f.readUInt32BE(q + 16),
        proto: f[q + 9],
        sport: end >= qp + 4 ? f.readUInt16BE(qp) : 0,
        dport: end >= qp + 4 ? f.readUInt16BE(qp + 2) : 0,
      };
    }
    return { ...base, kind: 'icmp', type, code, quote };
  }
  return null;
}

/** A random ephemeral source port (49152..65535) for one probe. */
export function randomPort(): number {
  return 49152 + Math.floor(Math.random() * 16384);
}

export function randomU32(): number {
  return Math.floor(Math.random() * 0x100000000) >>> 0;
}
