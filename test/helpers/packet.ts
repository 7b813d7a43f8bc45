/**
 * Crafting and checking Ethernet/IPv4/TCP/UDP/ICMP frames for BPF tests.
 * Checksums are computed from scratch here, never incrementally, so a test
 * that compares against them catches a wrong incremental update.
 */
import { parseIPv4, formatIPv4 } from '../../src/addr.js';

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
