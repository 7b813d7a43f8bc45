/* SPDX-License-Identifier: MIT */
/*
 * addrfilter.h — which IPv4 packets can be load-balancer traffic at all. Every
 * packet xlb rewrites has, on one side, an address the control plane knows: a
 * VIP or a SNAT address as destination (client -> VIP, backend -> SNAT), a
 * backend as source (backend -> client), or an address of a flow still in
 * conntrack after its VIP or backend left the configuration. xlb_addr4_filter
 * holds one bit per address hash of all of them; a packet whose source and
 * destination both find their bit clear is passed at once, with no conntrack
 * or VIP lookup (a set bit only means "look": a false positive costs what the
 * filter saves).
 *
 * Only the control plane writes the filter (src/addrfilter.ts): it sets the
 * bits of a configuration's addresses before it writes the entries that use
 * them, and clears bits only when it rebuilds the filter from the
 * configuration and the live conntrack entries (after its garbage
 * collection). Before the first configuration the filter is empty and every
 * IPv4 packet passes, as it would with no VIP.
 */
#ifndef XLB_ADDRFILTER_H
#define XLB_ADDRFILTER_H

#include "access.h"
#include "maps.h"

/* The filter word of addr (network order, as in the packet) and its bit. */
XLB_INLINE __u32 xlb_addr4_word(__u32 addr, __u64 *bit)
{
	__u32 h = (addr * XLB_ADDR_FILTER_MULT) >> (32 - XLB_ADDR_FILTER_BITS_LOG2);

	*bit = 1ULL << (h % XLB_ADDR_FILTER_WORD_BITS);
	return h / XLB_ADDR_FILTER_WORD_BITS;
}

/* 0 when no configured address nor live flow has addr's bit, else 1. */
XLB_INLINE int xlb_addr4_maybe(__u32 addr)
{
	__u64 bit;
	__u32 i = xlb_addr4_word(addr, &bit);
	__u64 *w = xlb_lookup(&xlb_addr4_filter, &i);

	return !w || (*w & bit) != 0;
}

#endif /* XLB_ADDRFILTER_H */
