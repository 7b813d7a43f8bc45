/**
 * Crafting and checking Ethernet/IPv4/IPv6/TCP/UDP/ICMP/ICMPv6 frames for BPF tests.
 * Checksums are computed from scratch here, never incrementally, so a test
 * that compares against them catches a wrong incremental update.
 */
import { parseIPv4, formatIPv4, parseIPv6, formatIPv6 } from '../../src/addr.js';

export const ETH_HLEN = 14;
export const PROTO = { icmp: 1, tcp: 6, udp: 17 } as const;
export const TCP_FLAGS = { fin: 0x01, syn: 0x02, rst: 0x04, psh: 0x08, ack: 0x10 } as const;

export interface PacketSpec {
  src: string;
  dst: string;
  proto: 'tcp' | 'udp' | 'icmp';
  sport?: number;
  dport?: number;
  tcpFlags?: number;
  payload?: Buffer;
  /** 'full' (default), 'partial' (pseudo-header seed as a local stack with offload writes) or 'none' (UDP 0). */
  csum?: 'full' | 'partial' | 'none';
  ipOptions?: Buffer;
  fragOff?: number;
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

  if (s.proto !== 'icmp') {
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
  /** For TCP/UDP: the L4 checksum verifies from scratch (UDP 0 counts as ok). */
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
  proto: 'tcp' | 'udp' | 'icmp6';
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
  /** The L4 (or ICMPv6) checksum verifies from scratch with the pseudo-header (UDP 0 counts as ok). */
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
  if (nh === PROTO6.tcp || nh === PROTO6.udp) {
    sport = l4.readUInt16BE(0);
    dport = l4.readUInt16BE(2);
    at = nh === PROTO6.tcp ? 16 : 6;
  }
  const l4Csum = l4.readUInt16BE(at);
  const seed = pseudoSum6(src, dst, nh, l4.length);
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
