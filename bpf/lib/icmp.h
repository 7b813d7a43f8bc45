/* SPDX-License-Identifier: MIT */
/*
 * icmp.h — ICMP errors that belong to a balanced connection (destination
 * unreachable, incl. port unreachable and fragmentation needed; time exceeded;
 * parameter problem) are translated like conntrack's "related" packets, so the
 * client sees the VIP and its socket (and PMTU discovery) gets the error:
 *
 *   backend -> client, about the client's request (inner: client -> backend):
 *     inner destination := VIP:port; outer source := VIP if the backend sent it
 *   client -> VIP, about a reply (inner: VIP -> client):
 *     inner source := backend:port; outer destination := backend
 *
 * The inner packet's reversed 5-tuple is a conntrack key of the flow. Every
 * changed word is compensated in its checksum and in the ICMP checksum, so the
 * sum over the whole packet is unchanged (skb->csum stays valid): direct writes
 * serve both hooks. Uses only packet pointers and the access layer.
 */
#ifndef XLB_ICMP_H
#define XLB_ICMP_H

#include "access.h"
#include "csum.h"
#include "maps.h"
#include "parse.h"
#include "ctnew.h"

#define XLB_ICMP_DEST_UNREACH 3  /* incl. port unreachable, fragmentation needed */
#define XLB_ICMP_TIME_EXCEEDED 11
#define XLB_ICMP_PARAMETERPROB 12

/* The ICMP header (linux/icmp.h drags userspace headers into BPF builds). */
struct xlb_icmphdr {
	__u8 type;
	__u8 code;
	__u16 checksum;
	__u32 rest; /* id/sequence, MTU, pointer: untouched */
};

#define XLB_ICMP_HDR_LEN sizeof(struct xlb_icmphdr)

XLB_INLINE int xlb_icmp_is_error(__u8 type)
{
	return type == XLB_ICMP_DEST_UNREACH || type == XLB_ICMP_TIME_EXCEEDED || type == XLB_ICMP_PARAMETERPROB;
}

/* Rewrites one end of the quoted packet (its source when src, else its
 * destination) to new_addr/new_port (0 keeps the port), compensating the
 * quoted IP and L4 checksums and the ICMP checksum *c. */
XLB_INLINE void xlb_icmp4_quote_nat(struct iphdr *in, __u16 *in_ports, void *data_end, int src,
				    __u32 new_addr, __u16 new_port, __u16 *c)
{
	__u32 old_addr = src ? in->saddr : in->daddr;
	__u16 old_port = src ? in_ports[0] : in_ports[1];
	__u16 old_ipsum = in->check;
	__u16 *l4csum;

	if (!new_port)
		new_port = old_port;
	in->check = xlb_csum_replace4(in->check, old_addr, new_addr);
	if (src)
		in->saddr = new_addr;
	else
		in->daddr = new_addr;
	*c = xlb_csum_replace4(*c, old_addr, new_addr);
	*c = xlb_csum_replace2(*c, old_ipsum, in->check);
	if (new_port != old_port) {
		if (src)
			in_ports[0] = new_port;
		else
			in_ports[1] = new_port;
		*c = xlb_csum_replace2(*c, old_port, new_port);
	}
	/* The inner L4 checksum, when the quoted bytes include it. */
	l4csum = (void *)in_ports + (in->protocol == IPPROTO_TCP ? XLB_TCP_CSUM_OFF : XLB_UDP_CSUM_OFF);
	if ((void *)(l4csum + 1) <= data_end && !(in->protocol == IPPROTO_UDP && *l4csum == 0)) {
		__u16 old_l4 = *l4csum;
		__u16 l4 = xlb_csum_replace4(old_l4, old_addr, new_addr);

		if (new_port != old_port)
			l4 = xlb_csum_replace2(l4, old_port, new_port);
		*l4csum = l4;
		*c = xlb_csum_replace2(*c, old_l4, l4);
	}
}

/* Rewrites the outer source (src) or destination of the error. */
XLB_INLINE void xlb_icmp4_outer_nat(struct iphdr *ip, int src, __u32 new_addr)
{
	ip->check = xlb_csum_replace4(ip->check, src ? ip->saddr : ip->daddr, new_addr);
	if (src)
		ip->saddr = new_addr;
	else
		ip->daddr = new_addr;
}

/* Translates an ICMP error of a tracked flow in place. Returns 1 when the
 * packet was one (translated), 0 when it is not (the caller goes on), -1 when
 * it could not be read. A source-NATed flow's error gets both ends back: the
 * client's address and port in the quote, the client (or the SNAT address) as
 * the outer destination (source). A BPF subprogram: ICMP errors are rare, and
 * its stack stays out of the main frame. */
XLB_NOINLINE int xlb_icmp4_related(void *data, void *data_end)
{
	struct iphdr *ip = data + sizeof(struct ethhdr);
	struct xlb_icmphdr *icmp;
	struct iphdr *in;
	__u16 *in_ports;
	struct xlb_ct4_key k = {};
	struct xlb_ct4_val *ct, copy;
	__u32 in_saddr, in_daddr;
	__u16 c;
	int rev;

	if ((void *)(ip + 1) > data_end)
		return -1;
	icmp = (void *)ip + ip->ihl * 4;
	if ((void *)icmp + XLB_ICMP_HDR_LEN > data_end)
		return -1;
	if (!xlb_icmp_is_error(icmp->type))
		return 0;
	in = (void *)icmp + XLB_ICMP_HDR_LEN;
	if ((void *)(in + 1) > data_end || in->ihl != XLB_IPV4_MIN_IHL)
		return 0;
	if (in->protocol != IPPROTO_TCP && in->protocol != IPPROTO_UDP)
		return 0;
	in_ports = (void *)(in + 1);
	if ((void *)(in_ports + 2) > data_end)
		return 0;

	/* The inner packet, reversed, is how the flow's other direction arrives. */
	k.saddr = in->daddr;
	k.daddr = in->saddr;
	k.sport = in_ports[1];
	k.dport = in_ports[0];
	k.proto = in->protocol;
	ct = xlb_lookup(&xlb_ct4, &k);
	if (!ct && xlb_ctn4_get(&k, &copy))
		ct = &copy;
	if (!ct)
		return 0;
	rev = ct->dir == XLB_DIR_REV;
	in_saddr = in->saddr;
	in_daddr = in->daddr;

	/* rev: inner is client (or SNAT) -> backend: its destination becomes the VIP.
	 * fwd: inner is VIP -> client: its source becomes the backend. */
	c = icmp->checksum;
	xlb_icmp4_quote_nat(in, in_ports, data_end, !rev, ct->nat_addr, ct->nat_port, &c);
	/* rev: the SNAT source becomes the client; fwd: the client becomes the SNAT address. */
	if (ct->flags & XLB_CT_F_SNAT)
		xlb_icmp4_quote_nat(in, in_ports, data_end, rev, ct->snat_addr, ct->snat_port, &c);
	icmp->checksum = c;

	/* The outer header: the error's sender or addressee is the one the
	 * client (or backend) must see. */
	if (rev && ip->saddr == in_daddr)
		xlb_icmp4_outer_nat(ip, 1, ct->nat_addr);
	else if (!rev && ip->daddr == in_saddr)
		xlb_icmp4_outer_nat(ip, 0, ct->nat_addr);
	if (ct->flags & XLB_CT_F_SNAT) {
		if (rev && ip->daddr == in_saddr)
			xlb_icmp4_outer_nat(ip, 0, ct->snat_addr);
		else if (!rev && ip->saddr == in_daddr)
			xlb_icmp4_outer_nat(ip, 1, ct->snat_addr);
	}
	return 1;
}

#endif /* XLB_ICMP_H */
