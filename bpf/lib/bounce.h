/* SPDX-License-Identifier: MIT */
/*
 * bounce.h — sending a packet back out the interface it came in on.
 *
 * A Linux bridge never forwards a frame out the port it arrived on, and XDP_TX
 * from a veth host end is lost unless the peer runs XDP, so every packet xlb
 * sends back toward a VIF (RST, ICMP, ARP replies, hairpin) leaves by tc
 * redirect to the ingress interface's egress. On the tc hook that is one
 * bpf_redirect. The XDP hook cannot do it: it tags the frame in its metadata
 * area (bpf_xdp_adjust_meta) and passes it; xlb_tc_reply, the tc ingress
 * companion the control plane attaches wherever XDP is used, reads the tag and
 * finishes the job. A frame without the tag reads as XLB_DEFER_NONE.
 */
#ifndef XLB_BOUNCE_H
#define XLB_BOUNCE_H

#include <linux/pkt_cls.h>
#include "access.h"

/* What the XDP hook asks of the tc companion. */
enum xlb_defer {
	XLB_DEFER_NONE = 0,   /* no tag: nothing asked */
	XLB_DEFER_BOUNCE = 1, /* the frame is ready: send it back out as it is */
	XLB_DEFER_REJECT = 2, /* answer the frame with a TCP RST / ICMP port unreachable */
};

#define XLB_META_MAGIC 0x786c6221 /* "xlb!": the tag is ours, not leftover bytes */

/* The tag in front of the frame (the metadata area is 4-byte aligned). */
struct xlb_meta {
	__u32 magic;  /* XLB_META_MAGIC */
	__u32 action; /* enum xlb_defer */
};

/* XDP: tags the frame for the tc companion; 0, or -1 when the driver has no
 * metadata area (the caller then drops: nothing can be sent back). */
XLB_INLINE int xlb_xdp_defer(struct xdp_md *ctx, enum xlb_defer action)
{
	struct xlb_meta *m;
	void *data;

	if (bpf_xdp_adjust_meta(ctx, -(int)sizeof(struct xlb_meta)))
		return -1;
	data = (void *)(long)ctx->data;
	m = (void *)(long)ctx->data_meta;
	if ((void *)(m + 1) > data)
		return -1;
	m->magic = XLB_META_MAGIC;
	m->action = action;
	return 0;
}

/* tc: what the XDP hook asked for this frame (XLB_DEFER_NONE without a tag). */
XLB_INLINE enum xlb_defer xlb_tc_deferred(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	struct xlb_meta *m = (void *)(long)skb->data_meta;

	if ((void *)(m + 1) > data || m->magic != XLB_META_MAGIC)
		return XLB_DEFER_NONE;
	return m->action;
}

/* tc: sends the (already rewritten) frame back out the interface it arrived
 * on. Returns the tc action. */
XLB_INLINE int xlb_tc_bounce(struct __sk_buff *skb)
{
	return bpf_redirect(skb->ifindex, 0);
}

#endif /* XLB_BOUNCE_H */
