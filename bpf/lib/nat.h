/* SPDX-License-Identifier: MIT */
/*
 * nat.h — address/port rewriting with incremental checksums, written directly
 * into the packet (the XDP way; also what a userspace data plane would do).
 *
 * CHECKSUM_PARTIAL: a packet from a local socket with offload carries only the
 * uncomplemented pseudo-header sum in its L4 checksum field; the device (or the
 * kernel's software fallback) folds in the rest later. XDP cannot see the skb's
 * ip_summed, so the seed is recognised by value: the field equals the pseudo-
 * header sum of the packet as it arrived. Then only the address change enters
 * the seed (the ports are summed later with the payload). A full checksum that
 * happens to equal the seed (1 in 65536) is taken for a seed; see README.
 */
#ifndef XLB_NAT_H
#define XLB_NAT_H

#include "access.h"
#include "csum.h"
#include "parse.h"

#define XLB_UDP_CSUM_MANGLED_0 0xffff /* a computed 0 is sent as 0xffff (RFC 768) */

/* Rewrite results besides 0 (done) and -1 (does not fit / helper failed). */
#define XLB_NAT_SCTP_PORTS 1 /* addresses done; the SCTP port and CRC remain (sctp.h: helpers) */
#define XLB_NAT_DROP (-2)    /* cannot be rewritten correctly: drop the packet */

/* What a rewrite does: the destination (forward) or the source (reverse). */
struct xlb_nat4 {
	__u32 new_addr; /* network order */
	__u16 new_port; /* network order; 0 keeps the port */
	__u8 dst;       /* 1: rewrite destination, 0: rewrite source */
	__u8 pad;
};

/* Rewrites an IPv4 packet in place. Returns 0, -1 if it does not fit, or
 * XLB_NAT_SCTP_PORTS when an SCTP port and CRC are left to sctp.h. */
XLB_INLINE int xlb_nat4_direct(void *data, void *data_end, const struct xlb_pkt4 *p,
			       const struct xlb_nat4 *n)
{
	struct iphdr *ip = data + sizeof(struct ethhdr);
	__u32 old_addr, saddr, daddr, delta;
	__u16 *portp, *csump, check, old_port;
	void *l4;

	if ((void *)(ip + 1) > data_end)
		return -1;
	saddr = ip->saddr;
	daddr = ip->daddr;
	old_addr = n->dst ? daddr : saddr;
	/* The address change as one ones'-complement addend, for every checksum below. */
	delta = xlb_csum_add32(xlb_csum_add32(0, ~old_addr), n->new_addr);
	ip->check = xlb_csum_apply(ip->check, delta);
	if (n->dst)
		ip->daddr = n->new_addr;
	else
		ip->saddr = n->new_addr;

	if (!p->csum_off)
		return p->tuple.proto == IPPROTO_SCTP ? XLB_NAT_SCTP_PORTS : 0;
	l4 = (void *)ip + ip->ihl * 4;
	if (l4 + sizeof(struct tcphdr) > data_end &&
	    (p->tuple.proto != IPPROTO_UDP || l4 + sizeof(struct udphdr) > data_end))
		return -1;
	portp = l4 + (n->dst ? XLB_L4_DPORT_OFF : XLB_L4_SPORT_OFF);
	csump = l4 + (p->tuple.proto == IPPROTO_TCP ? XLB_TCP_CSUM_OFF : XLB_UDP_CSUM_OFF);
	if ((void *)(csump + 1) > data_end || (void *)(portp + 1) > data_end)
		return -1;
	old_port = *portp;
	if (n->new_port)
		*portp = n->new_port;

	check = *csump;
	if (p->tuple.proto == IPPROTO_UDP && check == 0)
		return 0; /* UDP without checksum stays without */
	if (check == xlb_pseudo_seed4(saddr, daddr, p->tuple.proto, p->l4_len)) {
		check = xlb_csum_fold(check + delta); /* a seed: uncomplemented */
	} else {
		if (n->new_port)
			delta += (__u16)~old_port + n->new_port;
		check = xlb_csum_apply(check, delta);
		if (p->tuple.proto == IPPROTO_UDP && check == 0)
			check = XLB_UDP_CSUM_MANGLED_0;
	}
	*csump = check;
	return 0;
}

#endif /* XLB_NAT_H */
