/* SPDX-License-Identifier: MIT */
/*
 * csum.h — ones'-complement checksum arithmetic (RFC 1071/1624), pure C. The
 * sums are taken over the fields' bytes as stored (network order) read as host
 * words, which ones'-complement addition tolerates.
 */
#ifndef XLB_CSUM_H
#define XLB_CSUM_H

#include <bpf/bpf_endian.h>
#include "access.h"

XLB_INLINE __u32 xlb_csum_add32(__u32 sum, __u32 v)
{
	return sum + (v & 0xffff) + (v >> 16);
}

XLB_INLINE __u16 xlb_csum_fold(__u32 sum)
{
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (__u16)sum;
}

/* Uncomplemented ones'-complement sum of n bytes (n even, constant: unrolled). */
XLB_INLINE __u32 xlb_sum_words(const void *p, __u32 n)
{
	const __u16 *w = p;
	__u32 sum = 0;

#pragma unroll
	for (__u32 i = 0; i < n / 2; i++)
		sum += w[i];
	return sum;
}

/* A stored (complemented) checksum plus an uncomplemented addend (a sum of
 * ~old and new words, RFC 1624 eqn. 3). */
XLB_INLINE __u16 xlb_csum_apply(__u16 check, __u32 delta)
{
	return (__u16)~xlb_csum_fold((__u16)~check + delta);
}

/* A stored (complemented) checksum after a 32-bit field changed from old to new. */
XLB_INLINE __u16 xlb_csum_replace4(__u16 check, __u32 old, __u32 new)
{
	__u32 sum = (__u16)~check;

	sum = xlb_csum_add32(sum, ~old);
	sum = xlb_csum_add32(sum, new);
	return (__u16)~xlb_csum_fold(sum);
}

XLB_INLINE __u16 xlb_csum_replace2(__u16 check, __u16 old, __u16 new)
{
	__u32 sum = (__u16)~check;

	sum += (__u16)~old;
	sum += new;
	return (__u16)~xlb_csum_fold(sum);
}

/* A CHECKSUM_PARTIAL seed (uncomplemented pseudo-header sum) after an address change. */
XLB_INLINE __u16 xlb_csum_seed_replace4(__u16 seed, __u32 old, __u32 new)
{
	__u32 sum = seed;

	sum = xlb_csum_add32(sum, ~old);
	sum = xlb_csum_add32(sum, new);
	return xlb_csum_fold(sum);
}

/* The uncomplemented IPv4 pseudo-header sum a CHECKSUM_PARTIAL packet carries
 * in its L4 checksum field. proto and len are host-order values. */
XLB_INLINE __u16 xlb_pseudo_seed4(__u32 saddr, __u32 daddr, __u8 proto, __u16 len)
{
	__u32 sum = 0;

	sum = xlb_csum_add32(sum, saddr);
	sum = xlb_csum_add32(sum, daddr);
	sum += bpf_htons((__u16)proto);
	sum += bpf_htons(len);
	return xlb_csum_fold(sum);
}

#endif /* XLB_CSUM_H */
