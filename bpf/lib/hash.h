/* SPDX-License-Identifier: MIT */
/*
 * hash.h — the flow hash that indexes a Maglev table (and the side hash,
 * xlb_hash_side4, whose bucket homes a new-flow tier entry). Both hooks (tc and XDP)
 * and both directions of the control plane's tests use this one function, so a
 * flow picks the same backend whichever hook saw it.
 */
#ifndef XLB_HASH_H
#define XLB_HASH_H

#include "access.h"
#include "../xlb_shared.h"

#define XLB_HASH_SEED 0x9e3779b9u /* golden-ratio constant */
#define XLB_MURMUR_C1 0xcc9e2d51u
#define XLB_MURMUR_C2 0x1b873593u

XLB_INLINE __u32 xlb_rotl32(__u32 x, __u32 r)
{
	return (x << r) | (x >> (32 - r));
}

/* One MurmurHash3 x86_32 block. */
XLB_INLINE __u32 xlb_murmur_mix(__u32 h, __u32 k)
{
	k *= XLB_MURMUR_C1;
	k = xlb_rotl32(k, 15);
	k *= XLB_MURMUR_C2;
	h ^= k;
	h = xlb_rotl32(h, 13);
	return h * 5 + 0xe6546b64u;
}

XLB_INLINE __u32 xlb_murmur_final(__u32 h, __u32 len)
{
	h ^= len;
	h ^= h >> 16;
	h *= 0x85ebca6bu;
	h ^= h >> 13;
	h *= 0xc2b2ae35u;
	h ^= h >> 16;
	return h;
}

/* Hash of a flow's 5-tuple as the client sent it (addresses/ports in network order). */
XLB_INLINE __u32 xlb_hash_tuple4(__u32 saddr, __u32 daddr, __u16 sport, __u16 dport, __u8 proto)
{
	__u32 h = XLB_HASH_SEED;

	h = xlb_murmur_mix(h, saddr);
	h = xlb_murmur_mix(h, daddr);
	h = xlb_murmur_mix(h, ((__u32)sport << 16) | dport);
	h = xlb_murmur_mix(h, proto);
	return xlb_murmur_final(h, 16);
}

/* The hash of a conntrack key (its 5-tuple): the established tier filter's
 * bit and Maglev's default flow hash (the new-flow tier's buckets come from
 * xlb_hash_side4). */
XLB_INLINE __u32 xlb_ct4_key_hash(const struct xlb_ct4_key *k)
{
	return xlb_hash_tuple4(k->saddr, k->daddr, k->sport, k->dport, k->proto);
}

/* Hash of one side of a flow (an address, a port, the protocol): the IPv4
 * new-flow tier keeps a flow's entries in the bucket of its client side
 * (ctnew.h). */
XLB_INLINE __u32 xlb_hash_side4(__u32 addr, __u16 port, __u8 proto)
{
	__u32 h = XLB_HASH_SEED;

	h = xlb_murmur_mix(h, addr);
	h = xlb_murmur_mix(h, ((__u32)port << 16) | proto);
	return xlb_murmur_final(h, 8);
}

/* The first 4 and last 2 bytes of a MAC address as hash words. */
XLB_INLINE __u32 xlb_mac_hi(const __u8 *m)
{
	return ((__u32)m[0] << 24) | ((__u32)m[1] << 16) | ((__u32)m[2] << 8) | m[3];
}

XLB_INLINE __u32 xlb_mac_lo(const __u8 *m)
{
	return ((__u32)m[4] << 8) | m[5];
}

/* The selection_fields both families share: the MACs first, ports and the
 * finish last (the addresses go in between). */
XLB_INLINE __u32 xlb_hash_macs(__u32 h, const __u8 *eth_src, const __u8 *eth_dst, __u8 fields)
{
	if (fields & XLB_HASH_ETH_SRC) {
		h = xlb_murmur_mix(h, xlb_mac_hi(eth_src));
		h = xlb_murmur_mix(h, xlb_mac_lo(eth_src));
	}
	if (fields & XLB_HASH_ETH_DST) {
		h = xlb_murmur_mix(h, xlb_mac_hi(eth_dst));
		h = xlb_murmur_mix(h, xlb_mac_lo(eth_dst));
	}
	return h;
}

XLB_INLINE __u32 xlb_hash_ports(__u32 h, __u16 sport, __u16 dport, __u8 fields)
{
	if (fields & XLB_HASH_TP_SRC)
		h = xlb_murmur_mix(h, sport);
	if (fields & XLB_HASH_TP_DST)
		h = xlb_murmur_mix(h, dport);
	return xlb_murmur_final(h, fields);
}

/* Hash of the fields OVN's selection_fields names (XLB_HASH_* bits). */
XLB_INLINE __u32 xlb_hash_fields4(__u32 saddr, __u32 daddr, __u16 sport, __u16 dport,
				  const __u8 *eth_src, const __u8 *eth_dst, __u8 fields)
{
	__u32 h = XLB_HASH_SEED;

	h = xlb_hash_macs(h, eth_src, eth_dst, fields);
	if (fields & XLB_HASH_IP_SRC)
		h = xlb_murmur_mix(h, saddr);
	if (fields & XLB_HASH_IP_DST)
		h = xlb_murmur_mix(h, daddr);
	return xlb_hash_ports(h, sport, dport, fields);
}

/* An IPv6 address (four network-order words) into the hash. */
XLB_INLINE __u32 xlb_murmur_mix6(__u32 h, const __u32 *a)
{
	h = xlb_murmur_mix(h, a[0]);
	h = xlb_murmur_mix(h, a[1]);
	h = xlb_murmur_mix(h, a[2]);
	return xlb_murmur_mix(h, a[3]);
}

/* Hash of an IPv6 flow's 5-tuple as the client sent it. */
XLB_INLINE __u32 xlb_hash_tuple6(const __u32 *saddr, const __u32 *daddr, __u16 sport, __u16 dport,
				 __u8 proto)
{
	__u32 h = XLB_HASH_SEED;

	h = xlb_murmur_mix6(h, saddr);
	h = xlb_murmur_mix6(h, daddr);
	h = xlb_murmur_mix(h, ((__u32)sport << 16) | dport);
	h = xlb_murmur_mix(h, proto);
	return xlb_murmur_final(h, 40);
}

/* Hash of the selection_fields of an IPv6 flow (XLB_HASH_* bits). */
XLB_INLINE __u32 xlb_hash_fields6(const __u32 *saddr, const __u32 *daddr, __u16 sport, __u16 dport,
				  const __u8 *eth_src, const __u8 *eth_dst, __u8 fields)
{
	__u32 h = XLB_HASH_SEED;

	h = xlb_hash_macs(h, eth_src, eth_dst, fields);
	if (fields & XLB_HASH_IP_SRC)
		h = xlb_murmur_mix6(h, saddr);
	if (fields & XLB_HASH_IP_DST)
		h = xlb_murmur_mix6(h, daddr);
	return xlb_hash_ports(h, sport, dport, fields);
}

#endif /* XLB_HASH_H */
