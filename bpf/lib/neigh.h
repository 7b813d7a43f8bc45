/* SPDX-License-Identifier: MIT */
/*
 * neigh.h — OVN's neighbor_responder for router-attached load balancers: an
 * ARP request for a VIP the router answers for (xlb_neigh4: the control plane
 * applies all / reachable / none), arriving on one of the router's ports, is
 * answered with that port's MAC, so an on-link VIP works with no host owning
 * it. The request is turned into the reply in place and sent back out the
 * interface it came in on (tc; on the XDP hook the frame passes to the tc
 * companion, which does the same). Gratuitous ARP is never answered.
 */
#ifndef XLB_NEIGH_H
#define XLB_NEIGH_H

#include <linux/if_ether.h>
#include <linux/pkt_cls.h>
#include "access.h"
#include "bounce.h"
#include "maps.h"

#define XLB_ARP_HRD_ETHER 1
#define XLB_ARP_OP_REQUEST 1
#define XLB_ARP_OP_REPLY 2
#define XLB_ARP_PLEN_IPV4 4

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
XLB_INLINE int xlb_tc_neigh(struct __sk_buff *skb)
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

#endif /* XLB_NEIGH_H */
