/* SPDX-License-Identifier: MIT */
/*
 * nat6.h — IPv6 address/port rewriting, on both hooks. There is no IP header
 * checksum: the address change enters the L4 checksum through the pseudo-
 * header (TCP, UDP and ICMPv6 alike), the port change as a plain word.
 *
 * CHECKSUM_PARTIAL as in nat.h: XDP recognises the seed by value (the field
 * equals the pseudo-header sum of the packet as it arrived) and moves only the
 * address into it; tc lets bpf_l4_csum_replace decide from the skb. The tc
 * variant passes BPF_F_IPV6 so that the helper leaves skb->csum alone for a
 * CHECKSUM_COMPLETE packet: the address and the L4 checksum change by
 * opposite amounts, the packet's sum is unchanged.
 */
#ifndef XLB_NAT6_H
#define XLB_NAT6_H

#include <linux/pkt_cls.h>
#include "access.h"
#include "csum6.h"
#include "parse6.h"
#include "hook.h"

/* What a rewrite does: the destination (forward) or the source (reverse). */
struct xlb_nat6 {
	__u32 new_addr[XLB_IPV6_WORDS]; /* network order */
	__u16 new_port;                 /* network order; 0 keeps the port */
	__u8 dst;                       /* 1: rewrite destination, 0: rewrite source */
	__u8 pad;
};

/* The packet's L4 header, bounds-checked for its checksum and ports. */
XLB_INLINE void *xlb_l4_6(void *data, void *data_end, const struct xlb_pkt6 *p)
{
	__u32 off = p->l4_off;
	void *l4;

	if (off > XLB_IPV6_MAX_L4_OFF)
		return (void *)0;
	l4 = data + off;
	/* Both ports and every checksum field lie in the first 8 bytes, except TCP's. */
	if (l4 + (p->tuple.proto == IPPROTO_TCP ? sizeof(struct tcphdr) : sizeof(struct udphdr)) > data_end)
		return (void *)0;
	return l4;
}

/* Rewrites an IPv6 packet in place (XDP). Returns 0, or -1 if it does not fit. */
XLB_INLINE int xlb_nat6_direct(void *data, void *data_end, const struct xlb_pkt6 *p,
			       const struct xlb_nat6 *n)
{
	struct ipv6hdr *ip6 = data + sizeof(struct ethhdr);
	/* The packet's addresses are the parsed tuple's (read once, on the stack). */
	const __u32 *old_addr = n->dst ? p->tuple.daddr : p->tuple.saddr;
	__u16 *portp, *csump, check, old_port = 0, seed;
	void *l4;

	if ((void *)(ip6 + 1) > data_end)
		return -1;
	seed = xlb_pseudo_seed6(p->tuple.saddr, p->tuple.daddr, p->tuple.proto, p->l4_len);
	xlb_addr6_copy(n->dst ? ip6->daddr.in6_u.u6_addr32 : ip6->saddr.in6_u.u6_addr32, n->new_addr);

	if (!p->csum_off)
		return 0;
	l4 = xlb_l4_6(data, data_end, p);
	if (!l4)
		return -1;
	csump = l4 + (p->tuple.proto == IPPROTO_TCP ? XLB_TCP_CSUM_OFF :
		      p->tuple.proto == IPPROTO_UDP ? XLB_UDP_CSUM_OFF : XLB_ICMP6_CSUM_OFF);
	portp = l4 + (n->dst ? XLB_L4_DPORT_OFF : XLB_L4_SPORT_OFF);
	if ((void *)(csump + 1) > data_end || (void *)(portp + 1) > data_end)
		return -1;
	if (p->has_ports) {
		old_port = *portp;
		if (n->new_port)
			*portp = n->new_port;
	}
	check = *csump;
	if (p->tuple.proto == IPPROTO_UDP && check == 0)
		return 0; /* not valid on IPv6, but what came stays as it came */
	if (check == seed) {
		check = xlb_csum_seed_replace16(check, old_addr, n->new_addr);
	} else {
		check = xlb_csum_replace16(check, old_addr, n->new_addr);
		if (p->has_ports && n->new_port)
			check = xlb_csum_replace2(check, old_port, n->new_port);
		if (p->tuple.proto == IPPROTO_UDP && check == 0)
			check = XLB_UDP_CSUM_MANGLED_0;
	}
	*csump = check;
	return 0;
}

/* tc: addresses and ports written directly, the checksum through the skb
 * helper (which knows ip_summed): the address as a pseudo-header diff, the
 * port as a plain word (a partial packet's seed has no ports: the helper
 * leaves it alone). */
XLB_INLINE int xlb_nat6_skb(struct __sk_buff *skb, const struct xlb_pkt6 *p,
			    const struct xlb_nat6 *n)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ipv6hdr *ip6 = data + sizeof(struct ethhdr);
	__u64 mz = p->tuple.proto == IPPROTO_UDP ? BPF_F_MARK_MANGLED_0 : 0;
	/* The packet's address as parsed (the tuple, on the stack). */
	const __u32 *old_addr = n->dst ? p->tuple.daddr : p->tuple.saddr;
	__u16 old_port = 0, csum_at_l4;
	int port_changed = 0;
	__s64 diff;

	if ((void *)(ip6 + 1) > data_end)
		return -1;
	xlb_addr6_copy(n->dst ? ip6->daddr.in6_u.u6_addr32 : ip6->saddr.in6_u.u6_addr32, n->new_addr);
	if (!p->csum_off)
		return 0;
	if (p->has_ports && n->new_port) {
		void *l4 = xlb_l4_6(data, data_end, p);
		__u16 *portp;

		if (!l4)
			return -1;
		portp = l4 + (n->dst ? XLB_L4_DPORT_OFF : XLB_L4_SPORT_OFF);
		if ((void *)(portp + 1) > data_end)
			return -1;
		old_port = *portp;
		if (old_port != n->new_port) {
			*portp = n->new_port;
			port_changed = 1;
		}
	}
	csum_at_l4 = p->csum_off;
	diff = bpf_csum_diff((__be32 *)old_addr, sizeof(n->new_addr), (__be32 *)n->new_addr,
			     sizeof(n->new_addr), 0);
	if (diff < 0)
		return -1;
	if (bpf_l4_csum_replace(skb, p->l4_off + csum_at_l4, 0, diff,
				BPF_F_PSEUDO_HDR | BPF_F_IPV6 | mz))
		return -1;
	if (port_changed && bpf_l4_csum_replace(skb, p->l4_off + csum_at_l4, old_port, n->new_port,
						mz | sizeof(__u16)))
		return -1;
	return 0;
}

XLB_INLINE int xlb_hook_rewrite6(void *ctx, enum xlb_hook hook, const struct xlb_pkt6 *p,
				 const struct xlb_nat6 *n)
{
	if (hook == XLB_HOOK_XDP) {
		struct xdp_md *xdp = ctx;

		return xlb_nat6_direct((void *)(long)xdp->data, (void *)(long)xdp->data_end, p, n);
	}
	return xlb_nat6_skb(ctx, p, n);
}

#endif /* XLB_NAT6_H */
