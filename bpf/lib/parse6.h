/* SPDX-License-Identifier: MIT */
/*
 * parse6.h — IPv6 parsing with the same bounds-checked cursor as parse.h. The
 * extension header chain (hop-by-hop, routing, destination options, fragment,
 * authentication) is followed by a loop capped at XLB_IPV6_MAX_EXT headers;
 * every header is bounds-checked right before it is read.
 *
 * Policy, as for IPv4 (parse.h): a fragment (offset != 0 or more fragments) is
 * passed untouched and counted, never balanced; an atomic fragment (offset 0,
 * no more fragments, RFC 6946) is a whole packet and is parsed through. A
 * routing header with segments left is passed too: its destination is not the
 * final one, and the L4 checksum covers the final one.
 */
#ifndef XLB_PARSE6_H
#define XLB_PARSE6_H

#include <linux/ipv6.h>
#include <linux/in6.h>
#include "parse.h"

#define XLB_IPV6_VERSION 6
#define XLB_IPV6_MAX_EXT 6           /* extension headers followed before giving up */
#define XLB_IPV6_EXT_UNIT 8          /* hdrlen unit of hop-by-hop, routing, dst options */
#define XLB_IPV6_AH_UNIT 4           /* hdrlen unit of the authentication header */
#define XLB_IPV6_AH_EXTRA 2          /* AH length is (hdrlen + 2) units */
#define XLB_IPV6_FRAG_HLEN 8         /* fixed length of the fragment header */
#define XLB_IPV6_FRAG_MASK 0xfff9    /* fragment offset and M flag (host order) */
#define XLB_IPV6_RT_SEGLEFT_OFF 3    /* segments left byte of a routing header */
#define XLB_ICMP6_CSUM_OFF 2         /* offsetof(struct icmp6hdr, icmp6_cksum) */
/* Farthest L4 header offset the rewrite accepts (bounds the verifier's view). */
#define XLB_IPV6_MAX_L4_OFF 4096
/* Linear bytes tc pulls when an extension chain runs past the linear area. */
#define XLB_IPV6_PULL_LEN 512

/* ICMPv6 types xlb looks at (RFC 4443); everything else (neighbour discovery,
 * MLD, router advertisements) passes untouched. */
#define XLB_ICMP6_DEST_UNREACH 1
#define XLB_ICMP6_PKT_TOOBIG 2
#define XLB_ICMP6_TIME_EXCEED 3
#define XLB_ICMP6_PARAMPROB 4
#define XLB_ICMP6_ECHO_REQUEST 128
#define XLB_ICMP6_ECHO_REPLY 129
#define XLB_ICMP6_ND_NS 135 /* neighbour solicitation (neigh.h answers those for VIPs) */

/* Parse results beyond enum xlb_parse_result. */
#define XLB_PARSE6_EXT_PASS 16  /* extension chain not followed: pass, counted */
#define XLB_PARSE6_TRUNCATED 17 /* headers run past the linear area (tc may pull) */

/* What the logic needs of one IPv6 packet. Offsets are from the frame start. */
struct xlb_pkt6 {
	struct xlb_ct6_key tuple; /* the packet's own 5-tuple (ports 0 if none) */
	__u32 l3_off;             /* IPv6 header */
	__u32 l4_off;             /* upper-layer header (0 when there is none we read) */
	__u32 len;                /* frame length, for byte counters */
	__u16 l4_len;             /* upper-layer length (pseudo-header length) */
	__u8 csum_off;            /* L4 checksum offset in the L4 header, 0 if none */
	__u8 tcp_flags;           /* TCP flag byte (0 for others) */
	__u8 icmp_type;           /* ICMPv6 type (0 for others) */
	__u8 has_ports;           /* 1 for TCP/UDP */
	const struct ethhdr *eth; /* for selection_fields eth_*, valid until a rewrite */
};

/* Minimal view of an extension header's first bytes. */
struct xlb_ipv6_ext {
	__u8 nexthdr;
	__u8 hdrlen;
};

XLB_INLINE int xlb_ipv6_is_ext(__u8 nh)
{
	return nh == IPPROTO_HOPOPTS || nh == IPPROTO_ROUTING || nh == IPPROTO_DSTOPTS ||
	       nh == IPPROTO_FRAGMENT || nh == IPPROTO_AH;
}

XLB_INLINE void xlb_addr6_copy(__u32 *dst, const __u32 *src)
{
	dst[0] = src[0];
	dst[1] = src[1];
	dst[2] = src[2];
	dst[3] = src[3];
}

XLB_INLINE int xlb_addr6_eq(const __u32 *a, const __u32 *b)
{
	return a[0] == b[0] && a[1] == b[1] && a[2] == b[2] && a[3] == b[3];
}

XLB_INLINE int xlb_addr6_is_zero(const __u32 *a)
{
	return !(a[0] | a[1] | a[2] | a[3]);
}

/* Parses Ethernet/IPv6, the extension chain and the first upper-layer header.
 * Returns an xlb_parse_result or XLB_PARSE6_*. */
XLB_INLINE int xlb_parse6(void *data, void *data_end, __u32 frame_len, struct xlb_pkt6 *p)
{
	struct xlb_cursor c = { .pos = data, .end = data_end };
	struct ipv6hdr *ip6;
	__u16 proto, payload_len;
	__u32 ext_len;
	__u8 nh;
	int i;

	struct ethhdr *eth = c.pos;

	if ((void *)(eth + 1) > c.end)
		return XLB_PARSE_MALFORMED;
	proto = eth->h_proto;
	if (proto != bpf_htons(ETH_P_IPV6))
		return XLB_PARSE_NOT_IPV4;
	p->eth = eth;
	ip6 = (void *)(eth + 1);
	if ((void *)(ip6 + 1) > c.end)
		return XLB_PARSE_MALFORMED;
	if (ip6->version != XLB_IPV6_VERSION)
		return XLB_PARSE_MALFORMED;
	payload_len = bpf_ntohs(ip6->payload_len);
	p->l3_off = (__u32)((void *)ip6 - data);
	if (p->l3_off + sizeof(*ip6) + payload_len > frame_len)
		return XLB_PARSE_MALFORMED;
	p->len = frame_len;
	xlb_addr6_copy(p->tuple.saddr, ip6->saddr.in6_u.u6_addr32);
	xlb_addr6_copy(p->tuple.daddr, ip6->daddr.in6_u.u6_addr32);
	p->tuple.sport = 0;
	p->tuple.dport = 0;
	p->tuple.pad[0] = p->tuple.pad[1] = p->tuple.pad[2] = 0;
	p->l4_off = 0;
	p->l4_len = 0;
	p->csum_off = 0;
	p->tcp_flags = 0;
	p->icmp_type = 0;
	p->has_ports = 0;

	nh = ip6->nexthdr;
	c.pos = ip6 + 1;
#pragma unroll
	for (i = 0; i < XLB_IPV6_MAX_EXT; i++) {
		struct xlb_ipv6_ext *h = c.pos;
		__u32 hlen;

		if (!xlb_ipv6_is_ext(nh))
			break;
		if ((void *)(h + 1) > c.end)
			return XLB_PARSE6_TRUNCATED;
		if (nh == IPPROTO_FRAGMENT) {
			__u16 *fo = (void *)h + sizeof(*h);

			if ((void *)(fo + 1) > c.end)
				return XLB_PARSE6_TRUNCATED;
			if (*fo & bpf_htons(XLB_IPV6_FRAG_MASK))
				return XLB_PARSE_FRAGMENT;
			hlen = XLB_IPV6_FRAG_HLEN;
		} else if (nh == IPPROTO_AH) {
			hlen = ((__u32)h->hdrlen + XLB_IPV6_AH_EXTRA) * XLB_IPV6_AH_UNIT;
		} else {
			if (nh == IPPROTO_ROUTING) {
				__u8 *segleft = (void *)h + XLB_IPV6_RT_SEGLEFT_OFF;

				if ((void *)(segleft + 1) > c.end)
					return XLB_PARSE6_TRUNCATED;
				if (*segleft)
					return XLB_PARSE6_EXT_PASS;
			}
			hlen = ((__u32)h->hdrlen + 1) * XLB_IPV6_EXT_UNIT;
		}
		nh = h->nexthdr;
		c.pos = (void *)h + hlen;
	}
	if (xlb_ipv6_is_ext(nh))
		return XLB_PARSE6_EXT_PASS;

	ext_len = (__u32)(c.pos - (void *)(ip6 + 1));
	if (ext_len > payload_len)
		return XLB_PARSE_MALFORMED;
	p->l4_len = payload_len - ext_len;
	p->tuple.proto = nh;

	if (nh == IPPROTO_TCP) {
		struct tcphdr *th = c.pos;

		if ((void *)(th + 1) > c.end)
			return XLB_PARSE6_TRUNCATED;
		p->tuple.sport = th->source;
		p->tuple.dport = th->dest;
		p->csum_off = XLB_TCP_CSUM_OFF;
		p->tcp_flags = ((__u8 *)th)[XLB_TCP_FLAGS_OFF];
		p->has_ports = 1;
	} else if (nh == IPPROTO_UDP) {
		struct udphdr *uh = c.pos;

		if ((void *)(uh + 1) > c.end)
			return XLB_PARSE6_TRUNCATED;
		p->tuple.sport = uh->source;
		p->tuple.dport = uh->dest;
		p->csum_off = XLB_UDP_CSUM_OFF;
		p->has_ports = 1;
	} else if (nh == IPPROTO_ICMPV6) {
		__u8 *type = c.pos;

		if ((void *)(type + XLB_ICMP6_CSUM_OFF + sizeof(__u16)) > c.end)
			return XLB_PARSE6_TRUNCATED;
		p->icmp_type = *type;
		p->csum_off = XLB_ICMP6_CSUM_OFF;
	} else if (nh == IPPROTO_SCTP) {
		__u16 *ports = c.pos; /* source and destination lead the common header (sctp.h) */

		if (c.pos + XLB_SCTP_HDR_LEN > c.end)
			return XLB_PARSE6_TRUNCATED;
		if (p->l4_len < XLB_SCTP_HDR_LEN)
			return XLB_PARSE_MALFORMED;
		p->tuple.sport = ports[0];
		p->tuple.dport = ports[1];
		p->has_ports = 1;
	} else {
		return XLB_PARSE_OK;
	}
	p->l4_off = (__u32)(c.pos - data);
	if (p->l4_off > XLB_IPV6_MAX_L4_OFF)
		return XLB_PARSE6_EXT_PASS;
	return XLB_PARSE_OK;
}

#endif /* XLB_PARSE6_H */
