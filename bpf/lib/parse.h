/* SPDX-License-Identifier: MIT */
/*
 * parse.h — Ethernet/IPv4/TCP/UDP/SCTP parsing with a bounds-checked cursor. Each
 * step checks the bound right before it reads, so the verifier accepts it by
 * construction. Uses no helper: only packet pointers.
 */
#ifndef XLB_PARSE_H
#define XLB_PARSE_H

#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/in.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <bpf/bpf_endian.h>
#include "access.h"
#include "../xlb_shared.h"

#define XLB_IPV4_MIN_IHL 5              /* 20-byte header, in 32-bit words */
#define XLB_IP_FRAG_MASK 0x3fff         /* MF flag and fragment offset */
#define XLB_TCP_CSUM_OFF 16             /* offsetof(struct tcphdr, check) */
#define XLB_UDP_CSUM_OFF 6              /* offsetof(struct udphdr, check) */
#define XLB_L4_SPORT_OFF 0              /* ports lead both TCP and UDP headers */
#define XLB_L4_DPORT_OFF 2
#define XLB_SCTP_HDR_LEN 12             /* SCTP common header: ports, verification tag, checksum */
#define XLB_SCTP_CSUM_OFF 8             /* its CRC32c (sctp.h) */
#define XLB_IP_CSUM_OFF 10              /* offsetof(struct iphdr, check) */
#define XLB_IP_SADDR_OFF 12             /* offsetof(struct iphdr, saddr) */
#define XLB_IP_DADDR_OFF 16             /* offsetof(struct iphdr, daddr) */
/* Longest header chain xlb must see linear: Ethernet + IPv4 with options + TCP. */
#define XLB_MAX_HDR_LEN (sizeof(struct ethhdr) + 60 + sizeof(struct tcphdr))

enum xlb_parse_result {
	XLB_PARSE_OK = 0,
	XLB_PARSE_NOT_IPV4,  /* not for us: pass */
	XLB_PARSE_MALFORMED, /* truncated or inconsistent: pass, counted */
	XLB_PARSE_FRAGMENT,  /* an IP fragment: pass, counted */
};

/* What the logic needs of one IPv4 packet. Offsets are from the frame start. */
struct xlb_pkt4 {
	struct xlb_ct4_key tuple; /* the packet's own 5-tuple (ports 0 if none) */
	__u32 l3_off;             /* IPv4 header */
	__u32 l4_off;             /* TCP/UDP/SCTP header (0 when the protocol has no ports) */
	__u32 len;                /* frame length, for byte counters */
	__u16 l4_len;             /* IPv4 payload length (pseudo-header length) */
	__u8 csum_off;            /* L4 ones'-complement checksum offset in the L4 header, 0 if none (SCTP: none) */
	__u8 tcp_flags;           /* TCP flag byte (0 for others) */
	const struct ethhdr *eth; /* the frame's Ethernet header (selection_fields eth_*), valid until a rewrite */
};

#define XLB_TCP_FLAG_FIN 0x01
#define XLB_TCP_FLAG_SYN 0x02
#define XLB_TCP_FLAG_RST 0x04
#define XLB_TCP_FLAG_ACK 0x10
#define XLB_TCP_FLAGS_OFF 13 /* byte offset of the flag byte in the TCP header */

struct xlb_cursor {
	void *pos;
	void *end;
};

XLB_INLINE int xlb_parse_eth(struct xlb_cursor *c, __u16 *proto, struct xlb_pkt4 *p)
{
	struct ethhdr *eth = c->pos;

	if ((void *)(eth + 1) > c->end)
		return -1;
	*proto = eth->h_proto;
	p->eth = eth;
	c->pos = eth + 1;
	return 0;
}

/* Parses Ethernet/IPv4 and the first L4 header; fills p. frame_len is the
 * whole frame's length: on tc the payload may lie beyond data_end (non-linear
 * skb), so only the headers are required in [data, data_end). */
XLB_INLINE enum xlb_parse_result xlb_parse4(void *data, void *data_end, __u32 frame_len,
					   struct xlb_pkt4 *p)
{
	struct xlb_cursor c = { .pos = data, .end = data_end };
	struct iphdr *ip;
	__u16 proto;
	__u32 ihl_len;
	__u16 tot_len;

	if (xlb_parse_eth(&c, &proto, p) < 0)
		return XLB_PARSE_MALFORMED;
	if (proto != bpf_htons(ETH_P_IP))
		return XLB_PARSE_NOT_IPV4;

	ip = c.pos;
	if ((void *)(ip + 1) > c.end)
		return XLB_PARSE_MALFORMED;
	if (ip->version != 4 || ip->ihl < XLB_IPV4_MIN_IHL)
		return XLB_PARSE_MALFORMED;
	ihl_len = ip->ihl * 4;
	tot_len = bpf_ntohs(ip->tot_len);
	p->l3_off = (__u32)((void *)ip - data);
	if (tot_len < ihl_len || p->l3_off + tot_len > frame_len)
		return XLB_PARSE_MALFORMED;
	p->len = frame_len;
	p->l4_len = tot_len - ihl_len;
	p->tuple.saddr = ip->saddr;
	p->tuple.daddr = ip->daddr;
	p->tuple.proto = ip->protocol;
	p->tuple.pad[0] = p->tuple.pad[1] = p->tuple.pad[2] = 0;
	p->tuple.sport = 0;
	p->tuple.dport = 0;
	p->l4_off = 0;
	p->csum_off = 0;
	p->tcp_flags = 0;

	if (ip->frag_off & bpf_htons(XLB_IP_FRAG_MASK))
		return XLB_PARSE_FRAGMENT;

	c.pos = (void *)ip + ihl_len;
	if (ip->protocol == IPPROTO_TCP) {
		struct tcphdr *th = c.pos;

		if ((void *)(th + 1) > c.end)
			return XLB_PARSE_MALFORMED;
		p->tuple.sport = th->source;
		p->tuple.dport = th->dest;
		p->csum_off = XLB_TCP_CSUM_OFF;
		p->tcp_flags = ((__u8 *)th)[XLB_TCP_FLAGS_OFF];
		p->l4_off = (__u32)((void *)th - data);
	} else if (ip->protocol == IPPROTO_UDP) {
		struct udphdr *uh = c.pos;

		if ((void *)(uh + 1) > c.end)
			return XLB_PARSE_MALFORMED;
		p->tuple.sport = uh->source;
		p->tuple.dport = uh->dest;
		p->csum_off = XLB_UDP_CSUM_OFF;
		p->l4_off = (__u32)((void *)uh - data);
	} else if (ip->protocol == IPPROTO_SCTP) {
		__u16 *ports = c.pos; /* source and destination lead the common header */

		if (c.pos + XLB_SCTP_HDR_LEN > c.end || p->l4_len < XLB_SCTP_HDR_LEN)
			return XLB_PARSE_MALFORMED;
		p->tuple.sport = ports[0];
		p->tuple.dport = ports[1];
		p->l4_off = (__u32)((void *)ports - data);
	}
	return XLB_PARSE_OK;
}

#endif /* XLB_PARSE_H */
