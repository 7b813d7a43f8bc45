/* SPDX-License-Identifier: MIT */
/*
 * xlb.bpf.c — entry points only: tc ingress, tc egress and XDP ingress, each a
 * thin wrapper around the shared pipeline in lib/lb.h; and xlb_tc_reply, the
 * tc ingress companion of the XDP hook (what XDP cannot send back, bounce.h;
 * neighbour answers, neigh.h); and xlb_ct4_seen_rebuild, which the control
 * plane runs to rebuild conntrack's filter (ctseen.h).
 */
#include "lib/lb.h"
#include "lib/lb6.h"
#include "lib/bounce.h"
#include "lib/neigh.h"
#include "lib/reject.h"
#include "lib/reject6.h"

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

/* tc, an IPv6 frame (lb6.h): a subprogram called in tail position, so the
 * IPv4 path keeps its code. Returns the verdict: a reject is answered by
 * xlb_tc_reject6 after it returned (their stack frames do not add up), and so
 * is a neighbour solicitation that may be for a router's VIP (neigh.h). */
static __attribute__((noinline)) int xlb_tc_ipv6(struct __sk_buff *skb, int ingress)
{
	return xlb_process6_tc(skb, ingress);
}

static __always_inline int xlb_tc_run6(struct __sk_buff *skb, int ingress)
{
	int v = xlb_tc_ipv6(skb, ingress);

	if (v == XLB_V_REJECT)
		return xlb_tc_reject6(skb);
	if (v == XLB_V_NEIGH)
		return xlb_tc_ns(skb);
	return xlb_hook_verdict(XLB_HOOK_TC, v);
}

static __always_inline int xlb_tc_run(struct __sk_buff *skb, enum xlb_stage stage)
{
	enum xlb_verdict v;

	xlb_tc_linearize(skb);
	v = xlb_process4(skb, XLB_HOOK_TC, stage, (void *)(long)skb->data,
			 (void *)(long)skb->data_end, skb->len, skb->ifindex);
	if (v == XLB_V_REJECT)
		return xlb_tc_reject(skb);
	if (v == XLB_V_NOT_IP && skb->protocol == bpf_htons(ETH_P_IPV6))
		return xlb_tc_run6(skb, stage == XLB_STAGE_INGRESS);
	if (v == XLB_V_NOT_IP && stage == XLB_STAGE_INGRESS)
		return xlb_tc_neigh(skb);
	if (v == XLB_V_BOUNCE) /* hairpin: back to the sender */
		return xlb_eth_swap((void *)(long)skb->data, (void *)(long)skb->data_end) ? TC_ACT_SHOT
											    : xlb_tc_bounce(skb);
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

SEC("xdp")
int xlb_xdp_ingress(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	enum xlb_verdict v;

	v = xlb_process4(ctx, XLB_HOOK_XDP, XLB_STAGE_INGRESS, data, data_end,
			 (__u32)(data_end - data), ctx->ingress_ifindex);
	if (v == XLB_V_REJECT) {
		if (xlb_xdp_defer(ctx, XLB_DEFER_REJECT)) {
			xlb_count(XLB_G_REJECT_FAIL);
			return XDP_DROP;
		}
		return XDP_PASS;
	}
	if (v == XLB_V_BOUNCE) { /* hairpin: back to the sender, by the tc companion */
		if (xlb_eth_swap((void *)(long)ctx->data, (void *)(long)ctx->data_end) ||
		    xlb_xdp_defer(ctx, XLB_DEFER_BOUNCE))
			return XDP_DROP;
		return XDP_PASS;
	}
	if (v == XLB_V_NOT_IP)
		return xlb_process6_xdp(ctx);
	return xlb_hook_verdict(XLB_HOOK_XDP, v);
}

/* tc ingress where the XDP hook serves: finishes what XDP deferred (bounce.h)
 * and answers ARP and neighbour solicitations for VIPs (neigh.h); every other
 * frame passes untouched. */
SEC("tc")
int xlb_tc_reply(struct __sk_buff *skb)
{
	switch (xlb_tc_deferred(skb)) {
	case XLB_DEFER_REJECT:
		xlb_tc_linearize(skb);
		if (skb->protocol == bpf_htons(ETH_P_IPV6))
			return xlb_tc_reject6(skb);
		return xlb_tc_reject(skb);
	case XLB_DEFER_BOUNCE:
		return xlb_tc_bounce(skb);
	default:
		break;
	}
	if (skb->protocol == bpf_htons(ETH_P_ARP)) {
		xlb_tc_linearize(skb);
		return xlb_tc_neigh(skb);
	}
	if (skb->protocol == bpf_htons(ETH_P_IPV6))
		return xlb_tc_neigh(skb); /* a solicitation is small and linear: no pull for the rest */
	return TC_ACT_OK;
}

/* Rebuilds the filter of the established tier's keys (ctseen.h); the control
 * plane runs it (BPF_PROG_TEST_RUN) after its garbage collection. Returns the
 * number of keys marked. */
SEC("syscall")
int xlb_ct4_seen_rebuild(void *ctx)
{
	return xlb_ct4_seen_rebuild_run();
}

/* Move the counts one family's established entries hold (stats.h) to this
 * CPU's backend rows; the control plane runs both (BPF_PROG_TEST_RUN) before
 * it reads the rows, and a family's before it removes entries of that family.
 * Return the number of entries that had counts. */
SEC("syscall")
int xlb_ct4_fold(void *ctx)
{
	return xlb_ct4_fold_run();
}

SEC("syscall")
int xlb_ct6_fold(void *ctx)
{
	return xlb_ct6_fold_run();
}

/* Move what every CPU's ring of the flow log holds (stats.h) to this CPU's
 * backend rows; the control plane runs it before it reads, zeroes or moves
 * rows. Returns the number of entries folded. */
SEC("syscall")
int xlb_flow_log_fold(void *ctx)
{
	return xlb_flow_log_fold_run();
}

/* One operation of the control plane on one key of the IPv4 new-flow tier
 * (ctnew.h), under the bucket's lock as the data plane takes it; run through
 * BPF_PROG_TEST_RUN with the context in and out. */
SEC("syscall")
int xlb_ct4_new_edit(struct xlb_ct4_new_edit *e)
{
	struct xlb_ct4_key k = e->key;
	struct xlb_ct4_val v = e->val;
	__u32 op = e->op;

	if (op != XLB_CTN_OP_GET && op != XLB_CTN_OP_DELETE && op != XLB_CTN_OP_SET) {
		e->result = -EINVAL;
		return 0;
	}
	e->result = xlb_ctn4_edit(&k, op, &v);
	if (op == XLB_CTN_OP_GET && e->result == 1) {
		/* Stored at constant offsets from the context itself (the verifier
		 * refuses an access through a moved context pointer). */
		asm volatile("" : "+r"(e));
		e->val = v;
	}
	return 0;
}
