/**
 * The address filter (bpf/lib/addrfilter.h): one bit per address hash of
 * every address balanced traffic can have on one side (VIPs, backends, source
 * NAT addresses, and those of flows still in conntrack), IPv4 and IPv6 alike.
 * A packet whose two addresses both find their bit clear is passed by the
 * data plane with no other lookup. Only the control plane writes the filter:
 * it sets the bits of a configuration's addresses before writing the entries
 * that use them (writer.ts) and clears bits only in a rebuild from the
 * configuration and the live conntrack entries (Xlb.gc).
 *
 * An address is hashed by its key: an IPv4 address as the data plane loads it
 * from the packet (network-order bytes in a little-endian word, i.e. the host
 * order value byte-swapped), an IPv6 address as its four such words xor-ed.
 *
 * The map is XLB.ADDR_FILTER_WORDS 64-bit words, seen here as twice as many
 * 32-bit words (little-endian: u32 word 2i holds bits 0..31 of word i), each
 * written with one aligned 32-bit store, so a program reading a word while it
 * changes sees each bit old or new.
 */
import { XLB } from './layout.js';
import type { Compiled } from './compile.js';
import type { Ct4Key, Ct4Val, Ct6Key, Ct6Val } from './layout.js';

/** 32-bit words of the filter. */
export const ADDR_FILTER_U32_WORDS = XLB.ADDR_FILTER_WORDS * 2;

/** The key of an IPv4 address (host order, as parseIPv4 gives it). */
export function addrKey4(addr: number): number {
  return (((addr & 0xff) << 24) | ((addr & 0xff00) << 8) | ((addr >>> 8) & 0xff00) | (addr >>> 24)) >>> 0;
}

/** The key of an IPv6 address (16 bytes, network order). */
export function addrKey6(a: Uint8Array): number {
  const dv = new DataView(a.buffer, a.byteOffset, 16);
  return (dv.getUint32(0, true) ^ dv.getUint32(4, true) ^ dv.getUint32(8, true) ^ dv.getUint32(12, true)) >>> 0;
}

/** The u32 word and the bit in it of an address key. */
export function keyBit(key: number): { word: number; bit: number } {
  const h = Math.imul(key, XLB.ADDR_FILTER_MULT) >>> (32 - XLB.ADDR_FILTER_BITS_LOG2);
  return { word: h >>> 5, bit: h & 31 };
}

/** Sets the bits of address `keys` in `words` (ADDR_FILTER_U32_WORDS long); returns the u32 words that changed. */
export function markAddrs(words: Uint32Array, keys: Iterable<number>): number[] {
  const changed = new Set<number>();
  for (const k of keys) {
    const { word, bit } = keyBit(k);
    const after = (words[word]! | (1 << bit)) >>> 0;
    if (after !== words[word]) {
      words[word] = after;
      changed.add(word);
    }
  }
  return [...changed];
}

/** Whether the filter `words` may hold the address with key `key` (what the data plane asks). */
export function mayHoldKey(words: Uint32Array, key: number): boolean {
  const { word, bit } = keyBit(key);
  return ((words[word]! >>> bit) & 1) === 1;
}

/** The keys of the addresses of a compile's configuration that balanced traffic has on one side:
 *  the VIPs in `vips` (default: all of the compile's; a VIP's entries in every scope have its
 *  address) and their backends. Source NAT and hairpin addresses need no bit: a packet to one is
 *  a reply from a backend, which has the backend as source. */
export function* configAddrs(c: Compiled, vips: ReadonlyArray<Compiled['vips'][number]> = c.vips): Generator<number> {
  for (const v of vips) {
    yield v.addr6 ? addrKey6(v.addr6) : addrKey4(v.addr);
    for (const b of v.backends) yield b.addr6 ? addrKey6(b.addr6) : addrKey4(b.addr);
  }
}

/** The keys of an IPv4 conntrack entry's VIP and backend: a forward entry (client → VIP) is keyed
 *  by its VIP and leads to its backend, a reverse one (backend → client, or backend → source NAT
 *  address) is keyed by its backend and leads back to its VIP. What the filter must hold while
 *  the entry lives: every packet of the flow has one of them on one side. */
export function flowAddrs(k: Ct4Key, v: Ct4Val, out: number[]): void {
  out.push(addrKey4(v.dir === XLB.DIR_FWD ? k.daddr : k.saddr), addrKey4(v.natAddr));
}

/** flowAddrs for an IPv6 entry. */
export function flowAddrs6(k: Ct6Key, v: Ct6Val, out: number[]): void {
  out.push(addrKey6(v.dir === XLB.DIR_FWD ? k.daddr : k.saddr), addrKey6(v.natAddr));
}
