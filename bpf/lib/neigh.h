/* SPDX-License-Identifier: MIT */
/*
 * neigh.h — OVN's neighbor_responder for router-attached load balancers: an
 * ARP request (IPv4) or a neighbour solicitation (IPv6) for a VIP the router
 * answers for (xlb_neigh4 / xlb_neigh6: the control plane applies all /
 * reachable / none), arriving on one of the router's ports, is answered with
 * that port's MAC, so an on-link VIP works with no host owning it. The request
 * is turned into the reply in place and sent back out the interface it came in
 * on (tc; on the XDP hook the frame passes to the tc companion, which does the
 * same). Never answered: gratuitous ARP, duplicate address detection (a
 * solicitation from ::), a solicitation behind extension headers or without
 * hop limit 255 (RFC 4861).
 */
#ifndef XLB_NEIGH_H
#define XLB_NEIGH_H

#include <linux/if_ether.h>
#include <linux/ipv6.h>
#include <linux/in6.h>
#include <linux/pkt_cls.h>
#include "access.h"
#include "bounce.h"
#include "csum.h"
#include "maps.h"

#define XLB_ARP_HRD_ETHER 1
#define XLB_ARP_OP_REQUEST 1
#define XLB_ARP_OP_REPLY 2
#define XLB_ARP_PLEN_IPV4 4
#define XLB_ND_NS 135               /* neighbour solicitation */
#define XLB_ND_NA 136               /* neighbour advertisement */
#define XLB_ND_HOP_LIMIT 255        /* RFC 4861: ND packets never cross a router */
#define XLB_ND_NA_FLAGS 0xe0000000  /* router, solicited, override */
#define XLB_ND_OPT_TLLA 2           /* target link-layer address option */
#define XLB_ND_OPT_LEN_8 1          /* option length, in units of 8 bytes */
#define XLB_IPV6_ADDR_LEN 16

/* An Ethernet/IPv4 ARP packet (linux/if_arp.h leaves the addresses out). */
struct xlb_arp4 {
	__u16 htype;
	__u16 ptype;
	__u8 hlen;
	__u8 plen;
	__u16 op;
	__u8 sha[ETH_ALEN];
	__u32 spa;
	__u8 tha[ETH_ALEN];
	__u32 tpa;
} __attribute__((packed));

/* Answers an ARP request for one of the router's VIPs; any other frame passes.
 * Returns the tc action. */
XLB_INLINE int xlb_tc_arp(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct xlb_arp4 *arp = (void *)(eth + 1);
	struct xlb_neigh4_key k;
	struct xlb_iface *ifc;
	__u32 ifindex = skb->ifindex;
	__u32 spa, tpa;

	if ((void *)(arp + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_ARP))
		return TC_ACT_OK;
	if (arp->htype != bpf_htons(XLB_ARP_HRD_ETHER) || arp->ptype != bpf_htons(ETH_P_IP) ||
	    arp->hlen != ETH_ALEN || arp->plen != XLB_ARP_PLEN_IPV4 ||
	    arp->op != bpf_htons(XLB_ARP_OP_REQUEST))
		return TC_ACT_OK;
	ifc = xlb_lookup(&xlb_ifaces, &ifindex);
	if (!ifc || !(ifc->flags & XLB_IFACE_F_NEIGH))
		return TC_ACT_OK;
	spa = arp->spa;
	tpa = arp->tpa;
	if (spa == tpa)
		return TC_ACT_OK;
	k.addr = tpa;
	k.scope = ifc->scope;
	if (!xlb_lookup(&xlb_neigh4, &k))
		return TC_ACT_OK;

	__builtin_memcpy(eth->h_dest, eth->h_source, ETH_ALEN);
	__builtin_memcpy(eth->h_source, ifc->mac, ETH_ALEN);
	arp->op = bpf_htons(XLB_ARP_OP_REPLY);
	__builtin_memcpy(arp->tha, arp->sha, ETH_ALEN);
	arp->tpa = spa;
	__builtin_memcpy(arp->sha, ifc->mac, ETH_ALEN);
	arp->spa = tpa;
	xlb_count(XLB_G_NEIGH_REPLY);
	return xlb_tc_bounce(skb);
}

/* A neighbour solicitation / advertisement without options (RFC 4861 4.3/4.4). */
struct xlb_nd_msg {
	__u8 type;
	__u8 code;
	__u16 csum;
	__u32 flags; /* NA: R, S, O; NS: reserved */
	__u32 target[4];
};

/* The target link-layer address option an advertisement carries. */
struct xlb_nd_opt_lla {
	__u8 type;
	__u8 len; /* in units of 8 bytes */
	__u8 mac[ETH_ALEN];
};

#define XLB_NA_ND_LEN (sizeof(struct xlb_nd_msg) + sizeof(struct xlb_nd_opt_lla))
#define XLB_NA_FRAME_LEN (sizeof(struct ethhdr) + sizeof(struct ipv6hdr) + XLB_NA_ND_LEN)

/* Answers a neighbour solicitation for one of the router's IPv6 VIPs with an
 * advertisement (from the VIP, target link-layer address: the router port's
 * MAC); any other frame passes. Returns the tc action. */
XLB_INLINE int xlb_tc_ns(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct ipv6hdr *ip6 = (void *)(eth + 1);
	struct xlb_nd_msg *nd = (void *)(ip6 + 1);
	struct xlb_neigh6_key k = {};
	struct xlb_nd_opt_lla *opt;
	__u8 src_mac[ETH_ALEN];
	__u32 src[4], sum;
	struct xlb_iface *ifc;
	__u32 ifindex = skb->ifindex;

	if ((void *)(nd + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IPV6))
		return TC_ACT_OK;
	if (ip6->nexthdr != IPPROTO_ICMPV6 || ip6->hop_limit != XLB_ND_HOP_LIMIT ||
	    nd->type != XLB_ND_NS || nd->code != 0 || bpf_ntohs(ip6->payload_len) < sizeof(*nd))
		return TC_ACT_OK;
	ifc = xlb_lookup(&xlb_ifaces, &ifindex);
	if (!ifc || !(ifc->flags & XLB_IFACE_F_NEIGH))
		return TC_ACT_OK;
	__builtin_memcpy(src, ip6->saddr.in6_u.u6_addr32, sizeof(src));
	if (!(src[0] | src[1] | src[2] | src[3]))
		return TC_ACT_OK; /* duplicate address detection */
	__builtin_memcpy(k.addr, nd->target, sizeof(k.addr));
	k.scope = ifc->scope;
	if (!xlb_lookup(&xlb_neigh6, &k))
		return TC_ACT_OK;
	__builtin_memcpy(src_mac, eth->h_source, ETH_ALEN);

	if (skb->len != XLB_NA_FRAME_LEN && bpf_skb_change_tail(skb, XLB_NA_FRAME_LEN, 0))
		return TC_ACT_OK;
	if (bpf_skb_pull_data(skb, XLB_NA_FRAME_LEN))
		return TC_ACT_OK;
	data = (void *)(long)skb->data;
	data_end = (void *)(long)skb->data_end;
	eth = data;
	ip6 = (void *)(eth + 1);
	nd = (void *)(ip6 + 1);
	opt = (void *)(nd + 1);
	if ((void *)(opt + 1) > data_end)
		return TC_ACT_OK;
	__builtin_memcpy(eth->h_dest, src_mac, ETH_ALEN);
	__builtin_memcpy(eth->h_source, ifc->mac, ETH_ALEN);
	*(__u32 *)ip6 = bpf_htonl(0x60000000); /* version 6, no traffic class or flow label */
	ip6->payload_len = bpf_htons(XLB_NA_ND_LEN);
	ip6->nexthdr = IPPROTO_ICMPV6;
	ip6->hop_limit = XLB_ND_HOP_LIMIT;
	__builtin_memcpy(ip6->saddr.in6_u.u6_addr32, k.addr, XLB_IPV6_ADDR_LEN);
	__builtin_memcpy(ip6->daddr.in6_u.u6_addr32, src, XLB_IPV6_ADDR_LEN);
	nd->type = XLB_ND_NA;
	nd->code = 0;
	nd->csum = 0;
	nd->flags = bpf_htonl(XLB_ND_NA_FLAGS);
	__builtin_memcpy(nd->target, k.addr, XLB_IPV6_ADDR_LEN);
	opt->type = XLB_ND_OPT_TLLA;
	opt->len = XLB_ND_OPT_LEN_8;
	__builtin_memcpy(opt->mac, ifc->mac, ETH_ALEN);
	/* ICMPv6's checksum, complete (ND is never checksum-offloaded): the
	 * pseudo-header (addresses, length, next header) and the message. */
	sum = xlb_sum_words(&ip6->saddr, 2 * XLB_IPV6_ADDR_LEN) + bpf_htons(XLB_NA_ND_LEN) +
	      bpf_htons(IPPROTO_ICMPV6) + xlb_sum_words(nd, XLB_NA_ND_LEN);
	nd->csum = ~xlb_csum_fold(sum);
	xlb_count(XLB_G_NEIGH_REPLY);
	return xlb_tc_bounce(skb);
}

/* ARP or a neighbour solicitation: answered when it is for a VIP. */
XLB_INLINE int xlb_tc_neigh(struct __sk_buff *skb)
{
	if (skb->protocol == bpf_htons(ETH_P_ARP))
		return xlb_tc_arp(skb);
	if (skb->protocol == bpf_htons(ETH_P_IPV6))
		return xlb_tc_ns(skb);
	return TC_ACT_OK;
}

#endif /* XLB_NEIGH_H */
