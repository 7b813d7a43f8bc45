/* SPDX-License-Identifier: MIT */
/*
 * reject.h — OVN's reject=true: a packet to a VIP without a usable backend is
 * answered at once, so the client sees "connection refused" instead of a hang:
 *   TCP (not RST)        -> RST (RFC 793 for a closed port)
 *   anything else        -> ICMP port unreachable, quoting the IP header and
 *                           the first 8 bytes of its payload (RFC 792)
 * Never answered (dropped, counted XLB_G_REJECT_FAIL): a TCP RST, an ICMP
 * message other than echo request (no error about an error, RFC 1122), a
 * non-unicast source, IP options.
 *
 * tc only: the answer is built in place of the packet (bpf_skb_change_tail to
 * its length) and sent back out the interface it came in on (bounce.h). The
 * XDP hook defers to the tc companion, which calls this on the untouched frame.
 *
 * Checksums whatever the skb's ip_summed (which BPF cannot read): the RST's
 * checksum field is zeroed, then bpf_l4_csum_replace adds the pseudo-header sum
 * with BPF_F_PSEUDO_HDR (a CHECKSUM_PARTIAL packet gets exactly the seed its
 * csum_start/csum_offset finish) and the header sum without it (ignored for
 * CHECKSUM_PARTIAL, added for a complete checksum). The ICMP checksum has no
 * pseudo-header and is written complete; a CHECKSUM_PARTIAL UDP packet's
 * csum_offset then points at the unused next-hop MTU field of the port
 * unreachable, which a software finish sets to 0xffff (the sum stays valid).
 */
#ifndef XLB_REJECT_H
#define XLB_REJECT_H

#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/tcp.h>
#include <linux/pkt_cls.h>
#include "access.h"
#include "bounce.h"
#include "csum.h"
#include "icmp.h"
#include "maps.h"
#include "parse.h"

#define XLB_REPLY_TTL 64
#define XLB_IP_DF 0x4000                 /* don't fragment */
#define XLB_IPV4_HDR_LEN 20              /* without options */
#define XLB_TCP_HDR_LEN 20               /* without options */
#define XLB_ICMP_ECHO_REQUEST 8
#define XLB_ICMP_PORT_UNREACH 3          /* code of XLB_ICMP_DEST_UNREACH */
#define XLB_ICMP_QUOTE_L4 8              /* payload bytes quoted after the IP header */
#define XLB_ICMP_QUOTE_LEN (XLB_IPV4_HDR_LEN + XLB_ICMP_QUOTE_L4)
#define XLB_RST_LEN (sizeof(struct ethhdr) + XLB_IPV4_HDR_LEN + XLB_TCP_HDR_LEN)
#define XLB_UNREACH_LEN (sizeof(struct ethhdr) + XLB_IPV4_HDR_LEN + XLB_ICMP_HDR_LEN + XLB_ICMP_QUOTE_LEN)
#define XLB_L3_OFF sizeof(struct ethhdr)
#define XLB_L4_OFF (XLB_L3_OFF + XLB_IPV4_HDR_LEN)

/* What the answer needs of the packet, saved before it is overwritten. */
struct xlb_reject_in {
	__u8 src_mac[ETH_ALEN];
	__u8 dst_mac[ETH_ALEN];
	__u32 saddr;
	__u32 daddr;
	__u16 sport;
	__u16 dport;
	__u32 seq;   /* host order */
	__u32 ack;   /* host order */
	__u32 seglen; /* sequence space the segment takes (payload, SYN, FIN) */
	__u8 flags;
	__u8 pad[3];
	__u8 quote[XLB_ICMP_QUOTE_LEN] __attribute__((aligned(4)));
};

XLB_INLINE int xlb_unicast4(__u32 addr)
{
	__u8 first = bpf_ntohl(addr) >> 24;

	return addr != 0 && first < 224; /* not 0.0.0.0, multicast, class E, broadcast */
}

XLB_INLINE void xlb_reply_l2l3(void *data, const struct xlb_reject_in *in, __u8 proto, __u16 tot_len)
{
	struct ethhdr *eth = data;
	struct iphdr *ip = data + XLB_L3_OFF;

	__builtin_memcpy(eth->h_dest, in->src_mac, ETH_ALEN);
	__builtin_memcpy(eth->h_source, in->dst_mac, ETH_ALEN);
	eth->h_proto = bpf_htons(ETH_P_IP);
	ip->version = 4;
	ip->ihl = XLB_IPV4_MIN_IHL;
	ip->tos = 0;
	ip->tot_len = bpf_htons(tot_len);
	ip->id = 0;
	ip->frag_off = bpf_htons(XLB_IP_DF);
	ip->ttl = XLB_REPLY_TTL;
	ip->protocol = proto;
	ip->check = 0;
	ip->saddr = in->daddr; /* from the VIP */
	ip->daddr = in->saddr;
	ip->check = ~xlb_csum_fold(xlb_sum_words(ip, XLB_IPV4_HDR_LEN));
}

/* Resizes the frame to len and makes it linear. 0, or -1. */
XLB_INLINE int xlb_reply_resize(struct __sk_buff *skb, __u32 len)
{
	if (skb->len != len && bpf_skb_change_tail(skb, len, 0))
		return -1;
	return bpf_skb_pull_data(skb, len) ? -1 : 0;
}

/* Resizes the frame to len, makes it linear and returns its start, or NULL
 * when it could not or is shorter than len. */
XLB_INLINE void *xlb_reply_frame(struct __sk_buff *skb, __u32 len)
{
	void *data, *data_end;

	if (xlb_reply_resize(skb, len))
		return NULL;
	data = (void *)(long)skb->data;
	data_end = (void *)(long)skb->data_end;
	if (data + len > data_end)
		return NULL;
	return data;
}

/* Fills the RST answering a segment (sport/dport as it arrived; seq, ack,
 * seglen host order): seq from its ACK, else ACK of its sequence space. Both
 * families. Returns the header's uncomplemented sum. */
XLB_INLINE __u32 xlb_reply_rst_fill(struct tcphdr *th, __u16 sport, __u16 dport, __u8 flags,
				    __u32 seq, __u32 ack, __u32 seglen)
{
	__builtin_memset(th, 0, XLB_TCP_HDR_LEN);
	th->source = dport;
	th->dest = sport;
	th->doff = XLB_TCP_HDR_LEN / 4;
	th->rst = 1;
	if (flags & XLB_TCP_FLAG_ACK) {
		th->seq = bpf_htonl(ack);
	} else {
		th->ack_seq = bpf_htonl(seq + seglen);
		th->ack = 1;
	}
	return xlb_sum_words(th, XLB_TCP_HDR_LEN);
}

/* Writes the L4 checksum at csum_at (zeroed) from the pseudo-header seed and
 * the header sum. 0, or -1. */
XLB_INLINE int xlb_reply_l4_csum(struct __sk_buff *skb, __u32 csum_at, __u32 pseudo, __u32 hdr)
{
	if (bpf_l4_csum_replace(skb, csum_at, 0, pseudo, BPF_F_PSEUDO_HDR | sizeof(__u32)))
		return -1;
	return bpf_l4_csum_replace(skb, csum_at, 0, hdr, sizeof(__u32)) ? -1 : 0;
}

/* The sequence fields of the RST answering segment th (l4_len bytes of TCP),
 * host order. -1 for a RST (never answered) or a malformed data offset. */
XLB_INLINE int xlb_reject_tcp_seq(const struct tcphdr *th, __u32 l4_len, __u32 *seq, __u32 *ack,
				  __u32 *seglen)
{
	if (th->rst || th->doff * 4 > l4_len)
		return -1;
	*seq = bpf_ntohl(th->seq);
	*ack = bpf_ntohl(th->ack_seq);
	*seglen = l4_len - th->doff * 4 + th->syn + th->fin;
	return 0;
}

/* Sends the built answer back (err 0), or drops the packet; counts either. */
XLB_INLINE int xlb_reject_done(struct __sk_buff *skb, int err)
{
	if (err) {
		xlb_count(XLB_G_REJECT_FAIL);
		return TC_ACT_SHOT;
	}
	xlb_count(XLB_G_REJECT);
	return xlb_tc_bounce(skb);
}

XLB_INLINE int xlb_reply_rst(struct __sk_buff *skb, const struct xlb_reject_in *in)
{
	void *data = xlb_reply_frame(skb, XLB_RST_LEN);
	__u32 hdr;

	if (!data)
		return -1;
	xlb_reply_l2l3(data, in, IPPROTO_TCP, XLB_IPV4_HDR_LEN + XLB_TCP_HDR_LEN);
	hdr = xlb_reply_rst_fill(data + XLB_L4_OFF, in->sport, in->dport, in->flags,
				 in->seq, in->ack, in->seglen);
	return xlb_reply_l4_csum(skb, XLB_L4_OFF + XLB_TCP_CSUM_OFF,
				 xlb_pseudo_seed4(in->daddr, in->saddr, IPPROTO_TCP, XLB_TCP_HDR_LEN), hdr);
}

XLB_INLINE int xlb_reply_unreach(struct __sk_buff *skb, const struct xlb_reject_in *in)
{
	void *data = xlb_reply_frame(skb, XLB_UNREACH_LEN);
	struct xlb_icmphdr *icmp;
	__u8 *quote;
	__u32 sum;

	if (!data)
		return -1;
	xlb_reply_l2l3(data, in, IPPROTO_ICMP, XLB_IPV4_HDR_LEN + XLB_ICMP_HDR_LEN + XLB_ICMP_QUOTE_LEN);
	icmp = data + XLB_L4_OFF;
	icmp->type = XLB_ICMP_DEST_UNREACH;
	icmp->code = XLB_ICMP_PORT_UNREACH;
	icmp->checksum = 0;
	icmp->rest = 0;
	quote = (void *)(icmp + 1);
	__builtin_memcpy(quote, in->quote, XLB_ICMP_QUOTE_LEN);
	sum = xlb_sum_words(in->quote, XLB_ICMP_QUOTE_LEN) + icmp->type + (icmp->code << 8);
	icmp->checksum = ~xlb_csum_fold(sum);
	return 0;
}

/* Answers the frame (rejected by the pipeline) in place and sends it back out
 * the interface it came in on. Returns the tc action. */
static __attribute__((noinline)) int xlb_tc_reject(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct xlb_reject_in in = {};
	struct xlb_pkt4 p;
	struct iphdr *ip;
	int rst = 0, err;
	__u32 quote_len;

	if (xlb_parse4(data, data_end, skb->len, &p) != XLB_PARSE_OK)
		goto fail;
	ip = data + p.l3_off;
	if ((void *)(ip + 1) > data_end || ip->ihl != XLB_IPV4_MIN_IHL || p.l3_off != XLB_L3_OFF)
		goto fail;
	if (!xlb_unicast4(p.tuple.saddr))
		goto fail;
	__builtin_memcpy(in.src_mac, p.eth->h_source, ETH_ALEN);
	__builtin_memcpy(in.dst_mac, p.eth->h_dest, ETH_ALEN);
	in.saddr = p.tuple.saddr;
	in.daddr = p.tuple.daddr;
	in.sport = p.tuple.sport;
	in.dport = p.tuple.dport;

	if (p.tuple.proto == IPPROTO_TCP) {
		struct tcphdr *th = data + XLB_L4_OFF;

		if ((void *)(th + 1) > data_end ||
		    xlb_reject_tcp_seq(th, p.l4_len, &in.seq, &in.ack, &in.seglen))
			goto fail;
		in.flags = p.tcp_flags;
		rst = 1;
	} else if (p.tuple.proto == IPPROTO_ICMP) {
		struct xlb_icmphdr *icmp = data + XLB_L4_OFF;

		if ((void *)(icmp + 1) > data_end || icmp->type != XLB_ICMP_ECHO_REQUEST)
			goto fail;
	}
	if (!rst) {
		/* The IP header and up to 8 payload bytes (zero-padded when shorter). */
		quote_len = XLB_IPV4_HDR_LEN + (p.l4_len < XLB_ICMP_QUOTE_L4 ? p.l4_len : XLB_ICMP_QUOTE_L4);
		if (quote_len > XLB_ICMP_QUOTE_LEN || quote_len < XLB_IPV4_HDR_LEN)
			goto fail;
		if (bpf_skb_load_bytes(skb, XLB_L3_OFF, in.quote, quote_len))
			goto fail;
	}
	err = rst ? xlb_reply_rst(skb, &in) : xlb_reply_unreach(skb, &in);
	return xlb_reject_done(skb, err);
fail:
	return xlb_reject_done(skb, -1);
}

#endif /* XLB_REJECT_H */
