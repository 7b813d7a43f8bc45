/* SPDX-License-Identifier: MIT */
/*
 * csum6.h — ones'-complement arithmetic over IPv6 addresses (four words). IPv6
 * has no header checksum: an address change enters only the L4 (and ICMPv6)
 * checksum, through the pseudo-header.
 */
#ifndef XLB_CSUM6_H
#define XLB_CSUM6_H

#include "csum.h"
#include "../xlb_shared.h"

/* Adds ~old and new of a 16-byte address to a running sum. */
XLB_INLINE __u32 xlb_csum_add_diff16(__u32 sum, const __u32 *old, const __u32 *new)
{
#pragma unroll
	for (int i = 0; i < XLB_IPV6_WORDS; i++) {
		sum = xlb_csum_add32(sum, ~old[i]);
		sum = xlb_csum_add32(sum, new[i]);
	}
	return sum;
}

/* The folded sum of ~old + new over a 16-byte field: computed once, it updates
 * every checksum the change enters (fewer live registers than recomputing). */
XLB_INLINE __u16 xlb_csum_diff16(const __u32 *old, const __u32 *new)
{
	return xlb_csum_fold(xlb_csum_add_diff16(0, old, new));
}

/* A stored (complemented) checksum after a change whose xlb_csum_diff16 is d. */
XLB_INLINE __u16 xlb_csum_apply_diff(__u16 check, __u16 d)
{
	return (__u16)~xlb_csum_fold((__u32)(__u16)~check + d);
}

/* A stored (complemented) checksum after a 16-byte field changed. */
XLB_INLINE __u16 xlb_csum_replace16(__u16 check, const __u32 *old, const __u32 *new)
{
	return (__u16)~xlb_csum_fold(xlb_csum_add_diff16((__u16)~check, old, new));
}

/* A CHECKSUM_PARTIAL seed (uncomplemented pseudo-header sum) after an address change. */
XLB_INLINE __u16 xlb_csum_seed_replace16(__u16 seed, const __u32 *old, const __u32 *new)
{
	return xlb_csum_fold(xlb_csum_add_diff16(seed, old, new));
}

/* The uncomplemented IPv6 pseudo-header sum (RFC 8200 8.1) a CHECKSUM_PARTIAL
 * packet carries in its L4 checksum field. proto and len are host order. */
XLB_INLINE __u16 xlb_pseudo_seed6(const __u32 *saddr, const __u32 *daddr, __u8 proto, __u16 len)
{
	__u32 sum = 0;

#pragma unroll
	for (int i = 0; i < XLB_IPV6_WORDS; i++) {
		sum = xlb_csum_add32(sum, saddr[i]);
		sum = xlb_csum_add32(sum, daddr[i]);
	}
	sum += bpf_htons((__u16)proto);
	sum += bpf_htons(len);
	return xlb_csum_fold(sum);
}

#endif /* XLB_CSUM6_H */
