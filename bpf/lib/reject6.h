/* SPDX-License-Identifier: MIT */
/*
 * reject6.h — OVN's reject=true for IPv6 VIPs, as reject.h does for IPv4:
 *   TCP (not RST)        -> RST
 *   anything else        -> ICMPv6 destination unreachable, code 4 (port
 *                           unreachable), quoting as much of the packet as
 *                           fits in the minimum MTU (RFC 4443 3.1, 2.4(c))
 * Never answered (dropped, counted XLB_G_REJECT_FAIL): a TCP RST, an ICMPv6
 * message other than echo request (RFC 4443 2.4(e)), a multicast or
 * unspecified source.
 *
 * tc only (the XDP hook defers to the tc companion). The answer is built in
 * place: the RST like IPv4's (direct writes, checksum through
 * bpf_l4_csum_replace: pseudo-header with BPF_F_PSEUDO_HDR, header without,
 * right for CHECKSUM_PARTIAL and complete sums). The ICMPv6 message grows the
 * frame (bpf_skb_change_tail) and moves the packet back by the new headers,
 * chunk by chunk from the end, summing each chunk (bpf_csum_diff); every write
 * goes through bpf_skb_store_bytes with BPF_F_RECOMPUTE_CSUM, so the skb->csum
 * of a CHECKSUM_COMPLETE frame stays right. The ICMPv6 checksum (pseudo-header
 * included) is written complete.
 *
 * A CHECKSUM_PARTIAL UDP datagram (recognised, as BPF cannot read ip_summed, by
 * its checksum field holding its pseudo-header seed) keeps csum_start on the
 * same bytes, now the ICMPv6 header, and csum_offset 6: a software finish
 * (e.g. a `tx off` device) writes the folded sum from csum_start into the
 * unused field's second word. That sum is the complement of the reply's
 * pseudo-header sum, so the finish writes the pseudo-header sum: that word is
 * set to it beforehand (and counted in the checksum), the finish changes
 * nothing. Receivers ignore the unused field (RFC 4443 3.1); other packets get
 * it zero. A datagram with extension headers has csum_start inside the quote
 * (rare; its answer may then fail the checksum after a software finish).
 *
 * A BPF subprogram of its own: the IPv6 pipeline's frame is close to its stack
 * budget, so the entry points call this after it returned, never from it.
 */
#ifndef XLB_REJECT6_H
#define XLB_REJECT6_H

#include <linux/if_ether.h>
#include <linux/ipv6.h>
#include <linux/tcp.h>
#include <linux/pkt_cls.h>
#include "access.h"
#include "bounce.h"
#include "csum6.h"
#include "icmp6.h"
#include "maps.h"
#include "parse6.h"
#include "reject.h"

#define XLB_IPV6_HDR_LEN 40              /* fixed header */
#define XLB_IPV6_MIN_MTU 1280            /* RFC 8200 5 */
#define XLB_ICMP6_PORT_UNREACH 4         /* code of XLB_ICMP6_DEST_UNREACH */
#define XLB_MCAST6_PREFIX 0xff           /* first byte of a multicast address */
/* Bytes of the packet the unreachable quotes at most (from its IPv6 header). */
#define XLB_ICMP6_QUOTE_MAX (XLB_IPV6_MIN_MTU - XLB_IPV6_HDR_LEN - XLB_ICMP6_HDR_LEN)
#define XLB_REPLY6_HDRS (sizeof(struct ethhdr) + XLB_IPV6_HDR_LEN + XLB_ICMP6_HDR_LEN)
#define XLB_REPLY6_GROW (XLB_IPV6_HDR_LEN + XLB_ICMP6_HDR_LEN) /* quote moves back by this */
#define XLB_L4_OFF6 (XLB_L3_OFF + XLB_IPV6_HDR_LEN)
#define XLB_RST6_LEN (XLB_L4_OFF6 + XLB_TCP_HDR_LEN)
#define XLB_ICMP6_UNUSED_LO 1            /* second 16-bit word of the unused field */
#define XLB_QUOTE6_CHUNK 64              /* bytes moved and summed per step (a power of 2) */
#define XLB_QUOTE6_CHUNKS ((XLB_ICMP6_QUOTE_MAX + XLB_QUOTE6_CHUNK - 1) / XLB_QUOTE6_CHUNK)

/* What the answer needs of the packet, saved before it is overwritten. */
struct xlb_reject6_in {
	__u8 src_mac[ETH_ALEN];
	__u8 dst_mac[ETH_ALEN];
	__u32 saddr[XLB_IPV6_WORDS];
	__u32 daddr[XLB_IPV6_WORDS];
	__u16 sport;
	__u16 dport;
	__u32 seq;    /* host order */
	__u32 ack;    /* host order */
	__u32 seglen; /* sequence space the segment takes (payload, SYN, FIN) */
	__u8 flags;
	__u8 partial; /* UDP whose checksum field holds its pseudo-header seed (below) */
	__u8 pad[2];
};

/* The new headers of the unreachable, built on the stack; the lead pad puts
 * the IPv6 header on a 4-byte boundary (the stack must be accessed aligned). */
struct xlb_reply6_hdrs {
	__u8 lead[2];
	struct ethhdr eth;
	struct ipv6hdr ip6;
	struct xlb_icmphdr icmp; /* type, code, checksum, 4 unused bytes */
};
_Static_assert(sizeof(struct xlb_reply6_hdrs) == 2 + XLB_REPLY6_HDRS, "no padding in the reply headers");

XLB_INLINE void xlb_reply6_l2l3(struct ethhdr *eth, struct ipv6hdr *ip6,
				const struct xlb_reject6_in *in, __u8 proto, __u16 payload_len)
{
	__builtin_memcpy(eth->h_dest, in->src_mac, ETH_ALEN);
	__builtin_memcpy(eth->h_source, in->dst_mac, ETH_ALEN);
	eth->h_proto = bpf_htons(ETH_P_IPV6);
	__builtin_memset(ip6, 0, XLB_IPV6_HDR_LEN);
	ip6->version = XLB_IPV6_VERSION;
	ip6->payload_len = bpf_htons(payload_len);
	ip6->nexthdr = proto;
	ip6->hop_limit = XLB_REPLY_TTL;
	xlb_addr6_copy(ip6->saddr.in6_u.u6_addr32, in->daddr); /* from the VIP */
	xlb_addr6_copy(ip6->daddr.in6_u.u6_addr32, in->saddr);
}

XLB_INLINE int xlb_reply6_rst(struct __sk_buff *skb, const struct xlb_reject6_in *in)
{
	void *data = xlb_reply_frame(skb, XLB_RST6_LEN);
	__u32 hdr;

	if (!data)
		return -1;
	xlb_reply6_l2l3(data, data + XLB_L3_OFF, in, IPPROTO_TCP, XLB_TCP_HDR_LEN);
	hdr = xlb_reply_rst_fill(data + XLB_L4_OFF6, in->sport, in->dport, in->flags,
				 in->seq, in->ack, in->seglen);
	return xlb_reply_l4_csum(skb, XLB_L4_OFF6 + XLB_TCP_CSUM_OFF,
				 xlb_pseudo_seed6(in->daddr, in->saddr, IPPROTO_TCP, XLB_TCP_HDR_LEN), hdr);
}

/* Moves the first quote_len bytes of the IPv6 packet back by the new headers
 * (from the end: the regions overlap) and returns their uncomplemented sum
 * (zero-padded to even length), or -1. */
XLB_INLINE __s64 xlb_reply6_move_quote(struct __sk_buff *skb, __u32 quote_len)
{
	__u8 buf[XLB_QUOTE6_CHUNK];
	__s64 sum = 0;

	for (int i = XLB_QUOTE6_CHUNKS - 1; i >= 0; i--) {
		__u32 off = i * XLB_QUOTE6_CHUNK;
		__u32 n;

		if (off >= quote_len)
			continue;
		n = quote_len - off;
		if (n > XLB_QUOTE6_CHUNK)
			n = XLB_QUOTE6_CHUNK;
		if (n < XLB_QUOTE6_CHUNK)
			__builtin_memset(buf, 0, sizeof(buf));
		n = ((n - 1) & (XLB_QUOTE6_CHUNK - 1)) + 1; /* n is 1..64 already: the verifier sees it */
		if (bpf_skb_load_bytes(skb, XLB_L3_OFF + off, buf, n))
			return -1;
		if (bpf_skb_store_bytes(skb, XLB_L3_OFF + XLB_REPLY6_GROW + off, buf, n,
					BPF_F_RECOMPUTE_CSUM))
			return -1;
		sum = bpf_csum_diff(0, 0, (void *)buf, XLB_QUOTE6_CHUNK, (__u32)sum);
		if (sum < 0)
			return -1;
	}
	return sum;
}

XLB_INLINE int xlb_reply6_unreach(struct __sk_buff *skb, const struct xlb_reject6_in *in)
{
	struct xlb_reply6_hdrs h = {};
	__u32 quote_len = skb->len - XLB_L3_OFF;
	__u32 sum;
	__u16 seed;
	__s64 qsum;

	if (quote_len > XLB_ICMP6_QUOTE_MAX)
		quote_len = XLB_ICMP6_QUOTE_MAX;
	if (skb->len != XLB_REPLY6_HDRS + quote_len &&
	    bpf_skb_change_tail(skb, XLB_REPLY6_HDRS + quote_len, 0))
		return -1;
	qsum = xlb_reply6_move_quote(skb, quote_len);
	if (qsum < 0)
		return -1;
	xlb_reply6_l2l3(&h.eth, &h.ip6, in, IPPROTO_ICMPV6, XLB_ICMP6_HDR_LEN + quote_len);
	h.icmp.type = XLB_ICMP6_DEST_UNREACH;
	h.icmp.code = XLB_ICMP6_PORT_UNREACH;
	seed = xlb_pseudo_seed6(in->daddr, in->saddr, IPPROTO_ICMPV6, XLB_ICMP6_HDR_LEN + quote_len);
	if (in->partial) /* a software finish at csum_offset then writes what is there */
		((__u16 *)&h.icmp.rest)[XLB_ICMP6_UNUSED_LO] = seed;
	sum = xlb_csum_add32((__u32)qsum, h.icmp.type + (h.icmp.code << 8));
	sum = xlb_csum_add32(sum, h.icmp.rest);
	sum = xlb_csum_add32(sum, seed);
	h.icmp.checksum = ~xlb_csum_fold(sum);
	return bpf_skb_store_bytes(skb, 0, &h.eth, XLB_REPLY6_HDRS, BPF_F_RECOMPUTE_CSUM) ? -1 : 0;
}

XLB_INLINE int xlb_unicast6(const __u32 *addr)
{
	return (bpf_ntohl(addr[0]) >> 24) != XLB_MCAST6_PREFIX && !xlb_addr6_is_zero(addr);
}

/* Answers the IPv6 frame (rejected by the pipeline) in place and sends it back
 * out the interface it came in on. Returns the tc action. */
static __attribute__((noinline)) int xlb_tc_reject6(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct xlb_reject6_in in = {};
	struct xlb_pkt6 p;
	int rst = 0, err;

	if (xlb_parse6(data, data_end, skb->len, &p) != XLB_PARSE_OK || p.l3_off != XLB_L3_OFF)
		goto fail;
	if (!xlb_unicast6(p.tuple.saddr) || p.l4_off > XLB_IPV6_MAX_L4_OFF)
		goto fail;
	__builtin_memcpy(in.src_mac, p.eth->h_source, ETH_ALEN);
	__builtin_memcpy(in.dst_mac, p.eth->h_dest, ETH_ALEN);
	xlb_addr6_copy(in.saddr, p.tuple.saddr);
	xlb_addr6_copy(in.daddr, p.tuple.daddr);
	in.sport = p.tuple.sport;
	in.dport = p.tuple.dport;

	if (p.tuple.proto == IPPROTO_TCP) {
		struct tcphdr th;

		if (bpf_skb_load_bytes(skb, p.l4_off, &th, sizeof(th)) ||
		    xlb_reject_tcp_seq(&th, p.l4_len, &in.seq, &in.ack, &in.seglen))
			goto fail;
		in.flags = p.tcp_flags;
		rst = 1;
	} else if (p.tuple.proto == IPPROTO_ICMPV6 && p.icmp_type != XLB_ICMP6_ECHO_REQUEST) {
		goto fail;
	} else if (p.tuple.proto == IPPROTO_UDP && p.l4_off == XLB_L4_OFF6) {
		__u16 check;

		if (bpf_skb_load_bytes(skb, XLB_L4_OFF6 + XLB_UDP_CSUM_OFF, &check, sizeof(check)))
			goto fail;
		in.partial = check == xlb_pseudo_seed6(in.saddr, in.daddr, IPPROTO_UDP, p.l4_len);
	}
	err = rst ? xlb_reply6_rst(skb, &in) : xlb_reply6_unreach(skb, &in);
	return xlb_reject_done(skb, err);
fail:
	return xlb_reject_done(skb, -1);
}

#endif /* XLB_REJECT6_H */
