/* SPDX-License-Identifier: MIT */
/*
 * addrfilter.h — which packets can be load-balancer traffic at all. Every
 * packet xlb rewrites has, on one side, an address the control plane knows: a
 * VIP as destination (client -> VIP), a backend as source (backend -> client,
 * or backend -> source NAT address), or the VIP or backend of a flow still in
 * conntrack after it left the configuration. xlb_addr_filter
 * holds one bit per address hash of all of them, IPv4 and IPv6 alike (an
 * IPv6 address is folded to one word first); a packet whose source and
 * destination both find their bit clear is passed at once, with no conntrack
 * or VIP lookup (a set bit only means "look": a false positive costs what the
 * filter saves).
 *
 * Only the control plane writes the filter (src/addrfilter.ts): it sets the
 * bits of a configuration's addresses before it writes the entries that use
 * them, and clears bits only when it rebuilds the filter from the
 * configuration and the live conntrack entries (after its garbage
 * collection). Before the first configuration the filter is empty and every
 * IP packet passes, as it would with no VIP.
 */
#ifndef XLB_ADDRFILTER_H
#define XLB_ADDRFILTER_H

#include "access.h"
#include "maps.h"

/* The filter word of an address key (an IPv4 address as loaded from the
 * packet, or xlb_addr6_key of an IPv6 one) and its bit. */
XLB_INLINE __u32 xlb_addr_word(__u32 key, __u64 *bit)
{
	__u32 h = (key * XLB_ADDR_FILTER_MULT) >> (32 - XLB_ADDR_FILTER_BITS_LOG2);

	*bit = 1ULL << (h % XLB_ADDR_FILTER_WORD_BITS);
	return h / XLB_ADDR_FILTER_WORD_BITS;
}

/* 0 when no configured address nor live flow has key's bit, else 1. */
XLB_INLINE int xlb_addr_maybe(__u32 key)
{
	__u64 bit;
	__u32 i = xlb_addr_word(key, &bit);
	__u64 *w = xlb_lookup(&xlb_addr_filter, &i);

	return !w || (*w & bit) != 0;
}

/* An IPv6 address's key: its four network-order words, as loaded, xor-ed. */
XLB_INLINE __u32 xlb_addr6_key(const __u32 *a)
{
	return a[0] ^ a[1] ^ a[2] ^ a[3];
}

XLB_INLINE int xlb_addr6_maybe(const __u32 *a)
{
	return xlb_addr_maybe(xlb_addr6_key(a));
}

#endif /* XLB_ADDRFILTER_H */
