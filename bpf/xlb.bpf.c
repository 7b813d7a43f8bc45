/* SPDX-License-Identifier: MIT */
/*
 * xlb.bpf.c — entry points only: tc ingress, tc egress and XDP ingress, each a
 * thin wrapper around the shared pipeline in lib/lb.h.
 */
#include "lib/lb.h"

char LICENSE[] SEC("license") = "Dual MIT/GPL";

/* tc may hand us a frame whose headers are not all in the linear area. */
static __always_inline void xlb_tc_linearize(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	__u32 want = XLB_MAX_HDR_LEN;

	if (data + want <= data_end || skb->len <= (__u32)(data_end - data))
		return;
	if (want > skb->len)
		want = skb->len;
	bpf_skb_pull_data(skb, want);
}

static __always_inline int xlb_tc_run(struct __sk_buff *skb, enum xlb_stage stage)
{
	enum xlb_verdict v;

	xlb_tc_linearize(skb);
	v = xlb_process4(skb, XLB_HOOK_TC, stage, (void *)(long)skb->data,
			 (void *)(long)skb->data_end, skb->len, skb->ifindex);
	if (v == XLB_V_BOUNCE)
		return xlb_tc_bounce(skb);
	return xlb_hook_verdict(XLB_HOOK_TC, v);
}

SEC("tc")
int xlb_tc_ingress(struct __sk_buff *skb)
{
	return xlb_tc_run(skb, XLB_STAGE_INGRESS);
}

SEC("tc")
int xlb_tc_egress(struct __sk_buff *skb)
{
	return xlb_tc_run(skb, XLB_STAGE_EGRESS);
}

/* tc ingress on an interface whose ingress hook is XDP: only finishes what XDP
 * marked (frames to send back out this interface). */
SEC("tc")
int xlb_tc_handoff(struct __sk_buff *skb)
{
	return xlb_tc_handoff_run(skb);
}

SEC("xdp")
int xlb_xdp_ingress(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	enum xlb_verdict v;

	v = xlb_process4(ctx, XLB_HOOK_XDP, XLB_STAGE_INGRESS, data, data_end,
			 (__u32)(data_end - data), ctx->ingress_ifindex);
	if (v == XLB_V_BOUNCE)
		return xlb_xdp_bounce(ctx);
	return xlb_hook_verdict(XLB_HOOK_XDP, v);
}
