/* SPDX-License-Identifier: MIT */
/*
 * icmp6.h — ICMPv6 errors that belong to a balanced connection (destination
 * unreachable incl. port unreachable, packet too big, time exceeded,
 * parameter problem) are translated as icmp.h does for IPv4:
 *
 *   backend -> client, about the client's request (inner: client -> backend):
 *     inner destination := VIP:port; outer source := VIP if the backend sent it
 *   client -> VIP, about a reply (inner: VIP -> client):
 *     inner source := backend:port; outer destination := backend
 *
 * The ICMPv6 checksum covers a pseudo-header (RFC 4443 2.3): an outer address
 * change enters it like an L4 checksum, the inner changes (addresses, port, the
 * quoted L4 checksum) as words of the message. Every change is compensated in
 * the ICMPv6 checksum, so the sum over the packet is unchanged (IPv6 has no
 * header checksum) and direct writes serve both hooks. The quoted packet must
 * carry TCP or UDP right after its fixed header (no inner extension headers).
 */
#ifndef XLB_ICMP6_H
#define XLB_ICMP6_H

#include "access.h"
#include "csum6.h"
#include "maps.h"
#include "parse6.h"

#define XLB_ICMP6_HDR_LEN 8 /* type, code, checksum, 4 bytes of MTU/pointer/unused */

XLB_INLINE int xlb_icmp6_is_error(__u8 type)
{
	return type == XLB_ICMP6_DEST_UNREACH || type == XLB_ICMP6_PKT_TOOBIG ||
	       type == XLB_ICMP6_TIME_EXCEED || type == XLB_ICMP6_PARAMPROB;
}

/* Translates an ICMPv6 error of a tracked flow in place. Returns 1 when the
 * packet was one (translated), 0 when it is not, -1 when it could not be read. */
XLB_INLINE int xlb_icmp6_related(void *data, void *data_end, const struct xlb_pkt6 *p)
{
	struct ipv6hdr *ip6 = data + sizeof(struct ethhdr);
	__u32 old_addr[XLB_IPV6_WORDS];
	const __u32 *new_addr;
	struct xlb_ct6_key k = {};
	struct xlb_ct6_val *ct;
	struct ipv6hdr *in;
	__u16 *in_ports, *l4csum, *csump;
	__u16 old_port, new_port, c, d;
	__u32 *in_addr, *out_addr;
	__u32 off = p->l4_off;
	void *icmp;
	int rev;

	if ((void *)(ip6 + 1) > data_end || off > XLB_IPV6_MAX_L4_OFF)
		return -1;
	icmp = data + off;
	in = icmp + XLB_ICMP6_HDR_LEN;
	if ((void *)(in + 1) > data_end)
		return 0;
	if (in->nexthdr != IPPROTO_TCP && in->nexthdr != IPPROTO_UDP)
		return 0;
	in_ports = (void *)(in + 1);
	if ((void *)(in_ports + 2) > data_end)
		return 0;

	/* The inner packet, reversed, is how the flow's other direction arrives. */
	xlb_addr6_copy(k.saddr, in->daddr.in6_u.u6_addr32);
	xlb_addr6_copy(k.daddr, in->saddr.in6_u.u6_addr32);
	k.sport = in_ports[1];
	k.dport = in_ports[0];
	k.proto = in->nexthdr;
	ct = xlb_lookup(&xlb_ct6, &k);
	if (!ct)
		ct = xlb_lookup(&xlb_ct6_new, &k);
	if (!ct)
		return 0;
	rev = ct->dir == XLB_DIR_REV;

	in_addr = rev ? in->daddr.in6_u.u6_addr32 : in->saddr.in6_u.u6_addr32;
	xlb_addr6_copy(old_addr, in_addr);
	new_addr = ct->nat_addr;
	old_port = rev ? in_ports[1] : in_ports[0];
	new_port = ct->nat_port ? ct->nat_port : old_port;

	csump = icmp + XLB_ICMP6_CSUM_OFF;
	if ((void *)(csump + 1) > data_end)
		return -1;
	c = *csump;
	d = xlb_csum_diff16(old_addr, new_addr);
	xlb_addr6_copy(in_addr, new_addr);
	c = xlb_csum_apply_diff(c, d);
	if (new_port != old_port) {
		if (rev)
			in_ports[1] = new_port;
		else
			in_ports[0] = new_port;
		c = xlb_csum_replace2(c, old_port, new_port);
	}
	/* The quoted L4 checksum, when the quoted bytes include it. */
	l4csum = (void *)in_ports + (in->nexthdr == IPPROTO_TCP ? XLB_TCP_CSUM_OFF : XLB_UDP_CSUM_OFF);
	if ((void *)(l4csum + 1) <= data_end && !(in->nexthdr == IPPROTO_UDP && *l4csum == 0)) {
		__u16 old_l4 = *l4csum;
		__u16 l4 = xlb_csum_apply_diff(old_l4, d);

		if (new_port != old_port)
			l4 = xlb_csum_replace2(l4, old_port, new_port);
		*l4csum = l4;
		c = xlb_csum_replace2(c, old_l4, l4);
	}

	/* The outer header: the error's sender or addressee is the one the
	 * client (or backend) must see; its change enters the pseudo-header. */
	out_addr = rev ? ip6->saddr.in6_u.u6_addr32 : ip6->daddr.in6_u.u6_addr32;
	if (xlb_addr6_eq(out_addr, old_addr)) {
		xlb_addr6_copy(out_addr, new_addr);
		c = xlb_csum_apply_diff(c, d);
	}
	*csump = c;
	return 1;
}

#endif /* XLB_ICMP6_H */
