/* SPDX-License-Identifier: MIT */
/*
 * hook.h — what differs between the XDP and the tc hook: how the packet is
 * reached, how it is rewritten, and the verdict codes. The pipeline passes the
 * hook as a compile-time constant, so each program keeps only its own branch.
 */
#ifndef XLB_HOOK_H
#define XLB_HOOK_H

#include <linux/pkt_cls.h>
#include "access.h"
#include "nat.h"
#include "sctp.h"

enum xlb_hook { XLB_HOOK_XDP = 1, XLB_HOOK_TC = 2 };
enum xlb_verdict {
	XLB_V_PASS = 0,
	XLB_V_DROP = 1,
	XLB_V_REJECT = 2, /* answer it (reject.h): tc builds the answer, XDP defers to tc */
	XLB_V_NOT_IP = 3, /* not IPv4: passes (tc ingress first looks for ARP, neigh.h) */
	XLB_V_BOUNCE = 4, /* rewritten, with Ethernet addresses swapped: send back out the interface it came in by (hairpin, bounce.h) */
	XLB_V_NEIGH = 5,  /* an IPv6 neighbour solicitation: passes (tc ingress answers one for a VIP, neigh.h) */
	XLB_V_UNTRACKED = 6, /* in neither conntrack tier (lb.h: balanced on ingress, else passes) */
};

/* tc: addresses and ports are written directly (cheaper than
 * bpf_skb_store_bytes, same effect on skb->csum); the checksum fields go
 * through the skb helpers, which keep skb->csum and the CHECKSUM_PARTIAL seed
 * right (BPF_F_PSEUDO_HDR for addresses; the ports of a partial packet leave
 * the seed alone, which the helper does by itself). */
XLB_INLINE int xlb_nat4_skb(struct __sk_buff *skb, const struct xlb_pkt4 *p,
			    const struct xlb_nat4 *n)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct iphdr *ip = data + sizeof(struct ethhdr);
	__u32 old_addr = n->dst ? p->tuple.daddr : p->tuple.saddr;
	__u16 old_port = n->dst ? p->tuple.dport : p->tuple.sport;
	__u64 mz = p->tuple.proto == IPPROTO_UDP ? BPF_F_MARK_MANGLED_0 : 0;

	if ((void *)(ip + 1) > data_end)
		return -1;
	if (n->dst)
		ip->daddr = n->new_addr;
	else
		ip->saddr = n->new_addr;
	if (p->csum_off) {
		__u32 csum_at = p->l4_off + p->csum_off;
		int port_changed = n->new_port && n->new_port != old_port;

		if (port_changed) {
			__u16 *portp = (void *)ip + ip->ihl * 4 +
				       (n->dst ? XLB_L4_DPORT_OFF : XLB_L4_SPORT_OFF);

			if ((void *)(portp + 1) > data_end)
				return -1;
			*portp = n->new_port;
		}
		if (bpf_l4_csum_replace(skb, csum_at, old_addr, n->new_addr,
					BPF_F_PSEUDO_HDR | mz | sizeof(__u32)))
			return -1;
		if (port_changed && bpf_l4_csum_replace(skb, csum_at, old_port, n->new_port,
							mz | sizeof(__u16)))
			return -1;
	} else if (p->tuple.proto == IPPROTO_SCTP) {
		int r = xlb_sctp_ports_skb(skb, p->l4_off, p->l4_len, XLB_SCTP_PORT_AT(p->l4_off, n->dst),
					   XLB_SCTP_PORTS(old_port, n->new_port));

		if (r)
			return r;
	}
	return bpf_l3_csum_replace(skb, p->l3_off + XLB_IP_CSUM_OFF, old_addr, n->new_addr,
				   sizeof(__u32));
}

XLB_INLINE int xlb_hook_rewrite(void *ctx, enum xlb_hook hook, const struct xlb_pkt4 *p,
				const struct xlb_nat4 *n)
{
	if (hook == XLB_HOOK_XDP) {
		struct xdp_md *xdp = ctx;
		int r = xlb_nat4_direct((void *)(long)xdp->data, (void *)(long)xdp->data_end, p, n);

		if (r == XLB_NAT_SCTP_PORTS)
			return xlb_sctp_ports_xdp(xdp, p->l4_off, p->l4_len, XLB_SCTP_PORT_AT(p->l4_off, n->dst),
						  XLB_SCTP_PORTS(n->dst ? p->tuple.dport : p->tuple.sport, n->new_port));
		return r;
	}
	return xlb_nat4_skb(ctx, p, n);
}

/* The second half of a two-sided rewrite (destination and source NAT): n is
 * applied to a packet already rewritten by first, so the old values come from
 * first where it changed them. */
XLB_INLINE int xlb_hook_rewrite_second(void *ctx, enum xlb_hook hook, const struct xlb_pkt4 *p,
				       const struct xlb_nat4 *first, const struct xlb_nat4 *n)
{
	struct xlb_pkt4 q = *p;

	if (first->dst) {
		q.tuple.daddr = first->new_addr;
		if (first->new_port)
			q.tuple.dport = first->new_port;
	} else {
		q.tuple.saddr = first->new_addr;
		if (first->new_port)
			q.tuple.sport = first->new_port;
	}
	return xlb_hook_rewrite(ctx, hook, &q, n);
}

/* Swaps the frame's Ethernet addresses (a frame sent back to its sender). */
XLB_INLINE int xlb_eth_swap(void *data, void *data_end)
{
	struct ethhdr *eth = data;
	__u8 tmp[ETH_ALEN];

	if ((void *)(eth + 1) > data_end)
		return -1;
	__builtin_memcpy(tmp, eth->h_source, ETH_ALEN);
	__builtin_memcpy(eth->h_source, eth->h_dest, ETH_ALEN);
	__builtin_memcpy(eth->h_dest, tmp, ETH_ALEN);
	return 0;
}

XLB_INLINE int xlb_hook_verdict(enum xlb_hook hook, enum xlb_verdict v)
{
	if (hook == XLB_HOOK_XDP)
		return v == XLB_V_DROP ? XDP_DROP : XDP_PASS;
	return v == XLB_V_DROP ? TC_ACT_SHOT : TC_ACT_OK; /* REJECT / NOT_IP: see xlb.bpf.c */
}

#endif /* XLB_HOOK_H */
