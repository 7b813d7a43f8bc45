/**
 * The IPv4 address filter (bpf/lib/addrfilter.h): one bit per address hash of
 * every address balanced traffic can have on one side (VIPs, backends, source
 * NAT addresses, and those of flows still in conntrack). A packet whose two
 * addresses both find their bit clear is passed by the data plane with no
 * other lookup. Only the control plane writes the filter: it sets the bits of
 * a configuration's addresses before writing the entries that use them
 * (writer.ts) and clears bits only in a rebuild from the configuration and
 * the live conntrack entries (Xlb.gc).
 *
 * The map is XLB.ADDR_FILTER_WORDS 64-bit words, seen here as twice as many
 * 32-bit words (little-endian: u32 word 2i holds bits 0..31 of word i), each
 * written with one aligned 32-bit store, so a program reading a word while it
 * changes sees each bit old or new.
 */
import { XLB } from './layout.js';
import type { Compiled } from './compile.js';
import type { Ct4Key, Ct4Val } from './layout.js';

/** 32-bit words of the filter. */
export const ADDR_FILTER_U32_WORDS = XLB.ADDR_FILTER_WORDS * 2;

/** The u32 word and the bit in it of an IPv4 address (host order, as parseIPv4 gives it). The data
 *  plane hashes the address as it loads it from the packet: network-order bytes in a little-endian
 *  word, i.e. byte-swapped. */
export function addr4Bit(addr: number): { word: number; bit: number } {
  const wire = (((addr & 0xff) << 24) | ((addr & 0xff00) << 8) | ((addr >>> 8) & 0xff00) | (addr >>> 24)) >>> 0;
  const h = Math.imul(wire, XLB.ADDR_FILTER_MULT) >>> (32 - XLB.ADDR_FILTER_BITS_LOG2);
  return { word: h >>> 5, bit: h & 31 };
}

/** Sets the bits of `addrs` in `words` (ADDR_FILTER_U32_WORDS long); returns the u32 words that changed. */
export function markAddrs(words: Uint32Array, addrs: Iterable<number>): number[] {
  const changed = new Set<number>();
  for (const a of addrs) {
    if (!a) continue;
    const { word, bit } = addr4Bit(a);
    const after = (words[word]! | (1 << bit)) >>> 0;
    if (after !== words[word]) {
      words[word] = after;
      changed.add(word);
    }
  }
  return [...changed];
}

/** Whether the filter `words` may hold `addr` (what the data plane asks). */
export function mayHold(words: Uint32Array, addr: number): boolean {
  const { word, bit } = addr4Bit(addr);
  return ((words[word]! >>> bit) & 1) === 1;
}

/** Every IPv4 address of a compile's configuration that balanced traffic has on one side: VIPs,
 *  backends, VIP source-NAT and hairpin addresses, and the addresses of source NAT rules. VIPs and
 *  backends only of the VIPs in `vips` (default: all of them). (A source-NATed reply also has its
 *  backend as source, so the NAT addresses are belt and braces.) */
export function* configAddrs(c: Compiled, vips: readonly Compiled['vips'][number][] = c.vips): Generator<number> {
  const ids = vips === c.vips ? null : new Set(vips.map((v) => v.id));
  for (const v of vips) {
    if (!v.addr6) yield v.addr;
    for (const b of v.backends) if (!b.addr6) yield b.addr;
  }
  for (const e of c.entries) {
    if (e.addr6) continue;
    if (!ids || ids.has(e.vipId)) yield e.addr;
    // (every entry's: a router's lb_force_snat_ip changes these without replacing its VIPs)
    if (e.snatAddr) yield e.snatAddr;
    if (e.hairpinAddr) yield e.hairpinAddr;
  }
  for (const s of c.snat) if (s.snat) yield s.snat;
}

/** The addresses of a conntrack entry that are not its client's: a forward entry (client → VIP)
 *  its VIP, its backend and its source NAT address; a reverse one (backend → client, or backend →
 *  source NAT address) its backend, its VIP and that source NAT address. What the filter must
 *  hold while the entry lives (a packet of the flow has one of them on one side). */
export function flowAddrs(k: Ct4Key, v: Ct4Val, out: number[]): void {
  const snat = ((v.flags ?? 0) & XLB.CT_F_SNAT) !== 0;
  if (v.dir === XLB.DIR_FWD) {
    out.push(k.daddr, v.natAddr);
    if (snat && v.snatAddr) out.push(v.snatAddr);
  } else {
    out.push(k.saddr, v.natAddr);
    if (snat) out.push(k.daddr);
  }
}
