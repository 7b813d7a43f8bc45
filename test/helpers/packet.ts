/**
 * Crafting and checking Ethernet/IPv4/IPv6/TCP/UDP/ICMP/ICMPv6 frames for BPF tests.
 * Checksums are computed from scratch here, never incrementally, so a test
 * that compares against them catches a wrong incremental update.
 */
import { parseIPv4, formatIPv4, parseIPv6, formatIPv6 } from '../../src/addr.js';

export const ETH_HLEN = 14;
export const PROTO = { icmp: 1, tcp: 6, udp: 17, sctp: 132 } as const;
export const TCP_FLAGS = { fin: 0x01, syn: 0x02, rst: 0x04, psh: 0x08, ack: 0x10 } as const;

export interface PacketSpec {
  src: string;
  dst: string;
  proto: 'tcp' | 'udp' | 'icmp' | 'sctp';
  sport?: number;
  dport?: number;
  tcpFlags?: number;
  payload?: Buffer;
  /** 'full' (default), 'partial' (pseudo-header seed as a local stack with offload writes) or 'none' (UDP 0). */
  csum?: 'full' | 'partial' | 'none';
  ipOptions?: Buffer;
  fragOff?: number;
}

/** CRC32c (Castagnoli, reflected 0x82f63b78), bit by bit: independent of the data plane's table. */
export function crc32c(buf: Buffer): number {
  let crc = 0xffffffff;
  for (const byte of buf) {
    crc ^= byte;
    for (let k = 0; k < 8; k++) crc = crc & 1 ? (crc >>> 1) ^ 0x82f63b78 : crc >>> 1;
  }
  return (crc ^ 0xffffffff) >>> 0;
}

/** SCTP's checksum of an SCTP packet (common header + chunks): CRC32c with the field as zero. */
export function sctpChecksum(sctp: Buffer): number {
  const z = Buffer.from(sctp);
  z.writeUInt32LE(0, 8);
  return crc32c(z);
}

/** An SCTP packet: common header (ports, verification tag, CRC32c stored little-endian as Linux
 *  does) and one DATA chunk carrying `payload` (padded to 4 bytes). */
export function buildSctp(sport: number, dport: number, payload: Buffer, vtag = 0x01020304): Buffer {
  const chunkLen = 16 + payload.length;
  const l4 = Buffer.alloc(12 + chunkLen + ((4 - (chunkLen % 4)) % 4));
  l4.writeUInt16BE(sport, 0);
  l4.writeUInt16BE(dport, 2);
  l4.writeUInt32BE(vtag, 4);
  l4[12] = 0; // DATA
  l4[13] = 0x03; // B|E: a whole message
  l4.writeUInt16BE(chunkLen, 14);
  l4.writeUInt32BE(1, 16); // TSN
  l4.writeUInt16BE(0, 20); // stream
  l4.writeUInt16BE(0, 22); // stream sequence
  l4.writeUInt32BE(46, 24); // PPID (Diameter)
  payload.copy(l4, 28);
  l4.writeUInt32LE(sctpChecksum(l4), 8);
  return l4;
}

/** Ones'-complement sum of a buffer, folded to 16 bits. */
export function onesSum(buf: Buffer, init = 0): number {
  let sum = init;
  for (let i = 0; i + 1 < buf.length; i += 2) sum += buf.readUInt16BE(i);
  if (buf.length % 2) sum += buf[buf.length - 1] << 8;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return sum;
}

export function checksum(buf: Buffer, init = 0): number {
  return ~onesSum(buf, init) & 0xffff;
}

function pseudoSum(src: Buffer, dst: Buffer, proto: number, len: number): number {
  const ph = Buffer.alloc(12);
  src.copy(ph, 0);
  dst.copy(ph, 4);
  ph[9] = proto;
  ph.writeUInt16BE(len, 10);
  return onesSum(ph);
}

export function buildPacket(s: PacketSpec): Buffer {
  const payload = s.payload ?? Buffer.from('hello xlb');
  const proto = PROTO[s.proto];
  let l4: Buffer;
  if (s.proto === 'tcp') {
    l4 = Buffer.alloc(20 + payload.length);
    l4.writeUInt16BE(s.sport ?? 40000, 0);
    l4.writeUInt16BE(s.dport ?? 80, 2);
    l4.writeUInt32BE(1000, 4);
    l4.writeUInt32BE(0, 8);
    l4[12] = 5 << 4;
    l4[13] = s.tcpFlags ?? TCP_FLAGS.syn;
    l4.writeUInt16BE(64240, 14);
    payload.copy(l4, 20);
  } else if (s.proto === 'sctp') {
    l4 = buildSctp(s.sport ?? 40000, s.dport ?? 3868, payload);
  } else if (s.proto === 'udp') {
    l4 = Buffer.alloc(8 + payload.length);
    l4.writeUInt16BE(s.sport ?? 40000, 0);
    l4.writeUInt16BE(s.dport ?? 53, 2);
    l4.writeUInt16BE(l4.length, 4);
    payload.copy(l4, 8);
  } else {
    l4 = Buffer.alloc(8 + payload.length);
    l4[0] = 8; // echo request
    l4.writeUInt16BE(0x1234, 4);
    l4.writeUInt16BE(1, 6);
    payload.copy(l4, 8);
    l4.writeUInt16BE(checksum(l4), 2);
  }
  const opts = s.ipOptions ?? Buffer.alloc(0);
  const ihl = 20 + opts.length;
  const ip = Buffer.alloc(ihl);
  ip[0] = 0x40 | (ihl / 4);
  ip.writeUInt16BE(ihl + l4.length, 2);
  ip.writeUInt16BE(0x1c46, 4);
  ip.writeUInt16BE(s.fragOff ?? 0x4000, 6); // DF
  ip[8] = 64;
  ip[9] = proto;
  const src = Buffer.alloc(4);
  src.writeUInt32BE(parseIPv4(s.src));
  const dst = Buffer.alloc(4);
  dst.writeUInt32BE(parseIPv4(s.dst));
  src.copy(ip, 12);
  dst.copy(ip, 16);
  opts.copy(ip, 20);
  ip.writeUInt16BE(checksum(ip), 10);

  if (s.proto === 'tcp' || s.proto === 'udp') {
    const at = s.proto === 'tcp' ? 16 : 6;
    const mode = s.csum ?? 'full';
    if (mode === 'full') {
      let c = checksum(l4, pseudoSum(src, dst, proto, l4.length));
      if (s.proto === 'udp' && c === 0) c = 0xffff;
      l4.writeUInt16BE(c, at);
    } else if (mode === 'partial') {
      l4.writeUInt16BE(pseudoSum(src, dst, proto, l4.length), at);
    }
  }
  const eth = Buffer.alloc(ETH_HLEN);
  Buffer.from([0x02, 0, 0, 0, 0, 1]).copy(eth, 0);
  Buffer.from([0x02, 0, 0, 0, 0, 2]).copy(eth, 6);
  eth.writeUInt16BE(0x0800, 12);
  return Buffer.concat([eth, ip, l4]);
}

export interface Parsed {
  src: string;
  dst: string;
  proto: number;
  sport: number;
  dport: number;
  ipCsumOk: boolean;
  /** For TCP/UDP: the L4 checksum verifies from scratch (UDP 0 counts as ok); SCTP: the CRC32c. */
  l4CsumOk: boolean;
  l4Csum: number;
  /** The pseudo-header seed of the packet as it now is (for partial packets). */
  pseudoSeed: number;
  l4: Buffer;
}

export function parsePacket(f: Buffer): Parsed {
  const ip = f.subarray(ETH_HLEN);
  const ihl = (ip[0] & 0xf) * 4;
  const tot = ip.readUInt16BE(2);
  const l4 = ip.subarray(ihl, tot);
  const proto = ip[9];
  const src = ip.subarray(12, 16);
  const dst = ip.subarray(16, 20);
  const ipCsumOk = onesSum(ip.subarray(0, ihl)) === 0xffff;
  let l4CsumOk = true;
  let l4Csum = 0;
  let sport = 0;
  let dport = 0;
  if (proto === PROTO.tcp || proto === PROTO.udp) {
    sport = l4.readUInt16BE(0);
    dport = l4.readUInt16BE(2);
    l4Csum = l4.readUInt16BE(proto === PROTO.tcp ? 16 : 6);
    l4CsumOk = proto === PROTO.udp && l4Csum === 0 ? true : onesSum(l4, pseudoSum(src, dst, proto, l4.length)) === 0xffff;
  } else if (proto === PROTO.icmp) {
    l4CsumOk = onesSum(l4) === 0xffff;
  } else if (proto === PROTO.sctp) {
    sport = l4.readUInt16BE(0);
    dport = l4.readUInt16BE(2);
    l4Csum = l4.readUInt32LE(8);
    l4CsumOk = l4Csum === sctpChecksum(l4);
  }
  return {
    src: formatIPv4(src.readUInt32BE(0)),
    dst: formatIPv4(dst.readUInt32BE(0)),
    proto,
    sport,
    dport,
    ipCsumOk,
    l4CsumOk,
    l4Csum,
    pseudoSeed: pseudoSum(src, dst, proto, l4.length),
    l4,
  };
}

// ---------------------------------------------------------------------------
// IPv6 (RFC 8200): frames with extension headers, ICMPv6 (RFC 4443). The
// checksums cover the IPv6 pseudo-header (addresses, 32-bit upper-layer length,
// next header) and are computed from scratch here.


export const PROTO6 = { hop: 0, tcp: 6, udp: 17, routing: 43, frag: 44, icmp6: 58, none: 59, dst: 60 } as const;

/** One extension header; `len` is the total length in bytes (multiple of 8, default 8). */
export type Ext6 =
  | { type: 'hop' | 'dst'; len?: number }
  | { type: 'routing'; len?: number; segLeft?: number }
  | { type: 'frag'; offset?: number; more?: boolean };

export interface Packet6Spec {
  src: string;
  dst: string;
  proto: 'tcp' | 'udp' | 'icmp6' | 'sctp';
  sport?: number;
  dport?: number;
  tcpFlags?: number;
  payload?: Buffer;
  /** As in PacketSpec ('partial': the pseudo-header seed only). */
  csum?: 'full' | 'partial' | 'none';
  /** ICMPv6 type (default 128, echo request), code and the 4 bytes after the checksum. */
  icmpType?: number;
  icmpCode?: number;
  icmpRest?: number;
  ext?: Ext6[];
}

/** The uncomplemented IPv6 pseudo-header sum. */
export function pseudoSum6(src: Buffer, dst: Buffer, proto: number, len: number): number {
  const ph = Buffer.alloc(40);
  src.copy(ph, 0);
  dst.copy(ph, 16);
  ph.writeUInt32BE(len, 32);
  ph[39] = proto;
  return onesSum(ph);
}

function extBytes(e: Ext6, next: number): Buffer {
  if (e.type === 'frag') {
    const b = Buffer.alloc(8);
    b[0] = next;
    b.writeUInt16BE(((e.offset ?? 0) << 3) | (e.more ? 1 : 0), 2);
    b.writeUInt32BE(0xabcdef, 4);
    return b;
  }
  const len = e.len ?? 8;
  const b = Buffer.alloc(len);
  b[0] = next;
  b[1] = len / 8 - 1;
  if (e.type === 'routing') {
    b[2] = 4; // segment routing header type; the data plane reads only segments left
    b[3] = e.segLeft ?? 0;
  } else {
    b[2] = 1; // PadN option covering the rest
    b[3] = len - 4;
  }
  return b;
}

const EXT_PROTO = { hop: PROTO6.hop, dst: PROTO6.dst, routing: PROTO6.routing, frag: PROTO6.frag } as const;

/** The L4 part (TCP, UDP or ICMPv6) of a v6 packet, checksum filled in as asked. */
function l4Bytes6(s: Packet6Spec, src: Buffer, dst: Buffer): { l4: Buffer; proto: number } {
  const payload = s.payload ?? Buffer.from('hello xlb6');
  let l4: Buffer;
  let at: number;
  let proto: number;
  if (s.proto === 'tcp') {
    proto = PROTO6.tcp;
    l4 = Buffer.alloc(20 + payload.length);
    l4.writeUInt16BE(s.sport ?? 40000, 0);
    l4.writeUInt16BE(s.dport ?? 80, 2);
    l4.writeUInt32BE(1000, 4);
    l4[12] = 5 << 4;
    l4[13] = s.tcpFlags ?? TCP_FLAGS.syn;
    l4.writeUInt16BE(64240, 14);
    payload.copy(l4, 20);
    at = 16;
  } else if (s.proto === 'udp') {
    proto = PROTO6.udp;
    l4 = Buffer.alloc(8 + payload.length);
    l4.writeUInt16BE(s.sport ?? 40000, 0);
    l4.writeUInt16BE(s.dport ?? 53, 2);
    l4.writeUInt16BE(l4.length, 4);
    payload.copy(l4, 8);
    at = 6;
  } else if (s.proto === 'sctp') {
    // No pseudo-header: SCTP's CRC32c covers only the SCTP packet.
    return { l4: buildSctp(s.sport ?? 40000, s.dport ?? 3868, payload), proto: PROTO.sctp };
  } else {
    proto = PROTO6.icmp6;
    l4 = Buffer.alloc(8 + payload.length);
    l4[0] = s.icmpType ?? 128;
    l4[1] = s.icmpCode ?? 0;
    l4.writeUInt32BE(s.icmpRest ?? 0x12340001, 4);
    payload.copy(l4, 8);
    at = 2;
  }
  const mode = s.csum ?? 'full';
  if (mode === 'full') {
    let c = checksum(l4, pseudoSum6(src, dst, proto, l4.length));
    if (proto === PROTO6.udp && c === 0) c = 0xffff;
    l4.writeUInt16BE(c, at);
  } else if (mode === 'partial') {
    l4.writeUInt16BE(pseudoSum6(src, dst, proto, l4.length), at);
  }
  return { l4, proto };
}

/** An IPv6 packet without the Ethernet header (also what an ICMPv6 error quotes). */
export function buildIp6(s: Packet6Spec): Buffer {
  const src = parseIPv6(s.src);
  const dst = parseIPv6(s.dst);
  const { l4, proto } = l4Bytes6(s, src, dst);
  const exts = s.ext ?? [];
  const parts: Buffer[] = [];
  let next = proto;
  for (let i = exts.length - 1; i >= 0; i--) {
    parts.unshift(extBytes(exts[i], next));
    next = EXT_PROTO[exts[i].type];
  }
  const payload = Buffer.concat([...parts, l4]);
  const ip = Buffer.alloc(40);
  ip.writeUInt32BE(0x60000000, 0);
  ip.writeUInt16BE(payload.length, 4);
  ip[6] = next;
  ip[7] = 64;
  src.copy(ip, 8);
  dst.copy(ip, 24);
  return Buffer.concat([ip, payload]);
}

function eth6(): Buffer {
  const eth = Buffer.alloc(ETH_HLEN);
  Buffer.from([0x02, 0, 0, 0, 0, 1]).copy(eth, 0);
  Buffer.from([0x02, 0, 0, 0, 0, 2]).copy(eth, 6);
  eth.writeUInt16BE(0x86dd, 12);
  return eth;
}

export function buildPacket6(s: Packet6Spec): Buffer {
  return Buffer.concat([eth6(), buildIp6(s)]);
}

/** An ICMP error (type/code, 4-byte rest) from `src` to `dst` quoting `quoted` (an IPv4 packet without Ethernet). */
export function buildIcmpError(src: string, dst: string, type: number, code: number, quoted: Buffer, rest = 0): Buffer {
  const icmp = Buffer.alloc(8 + quoted.length);
  icmp[0] = type;
  icmp[1] = code;
  icmp.writeUInt32BE(rest, 4);
  quoted.copy(icmp, 8);
  icmp.writeUInt16BE(checksum(icmp), 2);
  const ip = Buffer.alloc(20);
  ip[0] = 0x45;
  ip.writeUInt16BE(20 + icmp.length, 2);
  ip[8] = 64;
  ip[9] = 1;
  ip.writeUInt32BE(parseIPv4(src), 12);
  ip.writeUInt32BE(parseIPv4(dst), 16);
  ip.writeUInt16BE(checksum(ip), 10);
  const eth = Buffer.alloc(ETH_HLEN);
  eth.writeUInt16BE(0x0800, 12);
  return Buffer.concat([eth, ip, icmp]);
}

/** An ICMPv6 error (type/code, 4-byte rest) from `src` to `dst` quoting `quoted` (an IPv6 packet). */
export function buildIcmp6Error(src: string, dst: string, type: number, code: number, rest: number, quoted: Buffer): Buffer {
  return buildPacket6({ src, dst, proto: 'icmp6', icmpType: type, icmpCode: code, icmpRest: rest, payload: quoted });
}

export interface Parsed6 {
  src: string;
  dst: string;
  /** Upper-layer protocol after the extension headers. */
  proto: number;
  sport: number;
  dport: number;
  /** The L4 (or ICMPv6) checksum verifies from scratch with the pseudo-header (UDP 0 counts as ok); SCTP: the CRC32c. */
  l4CsumOk: boolean;
  l4Csum: number;
  pseudoSeed: number;
  l4: Buffer;
  /** The extension headers, as bytes (unchanged by NAT). */
  ext: Buffer;
}

export function parsePacket6(f: Buffer): Parsed6 {
  const ip = f.subarray(ETH_HLEN);
  const plen = ip.readUInt16BE(4);
  const src = ip.subarray(8, 24);
  const dst = ip.subarray(24, 40);
  let nh = ip[6];
  let off = 40;
  while (nh === PROTO6.hop || nh === PROTO6.dst || nh === PROTO6.routing || nh === PROTO6.frag) {
    const len = nh === PROTO6.frag ? 8 : (ip[off + 1] + 1) * 8;
    nh = ip[off];
    off += len;
  }
  const l4 = ip.subarray(off, 40 + plen);
  let sport = 0;
  let dport = 0;
  let at = 2;
  if (nh === PROTO6.tcp || nh === PROTO6.udp || nh === PROTO.sctp) {
    sport = l4.readUInt16BE(0);
    dport = l4.readUInt16BE(2);
    at = nh === PROTO6.tcp ? 16 : 6;
  }
  const seed = pseudoSum6(src, dst, nh, l4.length);
  if (nh === PROTO.sctp) {
    const crc = l4.readUInt32LE(8);
    return { src: formatIPv6(src), dst: formatIPv6(dst), proto: nh, sport, dport, l4CsumOk: crc === sctpChecksum(l4), l4Csum: crc, pseudoSeed: seed, l4, ext: Buffer.from(ip.subarray(40, off)) };
  }
  const l4Csum = l4.readUInt16BE(at);
  return {
    src: formatIPv6(src),
    dst: formatIPv6(dst),
    proto: nh,
    sport,
    dport,
    l4CsumOk: nh === PROTO6.udp && l4Csum === 0 ? true : onesSum(l4, seed) === 0xffff,
    l4Csum,
    pseudoSeed: seed,
    l4,
    ext: Buffer.from(ip.subarray(40, off)),
  };
}
