/* SPDX-License-Identifier: MIT */
/*
 * lb6.h — the IPv6 pipeline, the same steps as lb.h's IPv4 one:
 *   parse (extension chain) -> ICMPv6 error of a tracked flow? translate ->
 *   address filter (neither address known: pass, addrfilter.h) ->
 *   conntrack (either direction) -> [ingress only] VIP -> Maglev -> DNAT.
 * ICMPv6 other than echo and errors (neighbour discovery, MLD, router
 * advertisements) passes untouched, even to a VIP address. The entry points
 * (xlb.bpf.c) call it for frames lb.h found not IPv4: the IPv4 path does not
 * pay for it.
 */
#ifndef XLB_LB6_H
#define XLB_LB6_H

#include "access.h"
#include "maps.h"
#include "parse6.h"
#include "conntrack6.h"
#include "select6.h"
#include "nat6.h"
#include "icmp6.h"
#include "addrfilter.h"
#include "lb.h" /* the family-independent stats, verdict and counting helpers */
#include "bounce.h"

XLB_INLINE enum xlb_verdict xlb_apply_ct6(void *ctx, enum xlb_hook hook, const struct xlb_pkt6 *p,
					  const struct xlb_ct6_val *ct)
{
	int reply = ct->dir == XLB_DIR_REV;
	struct xlb_nat6 n = { .new_port = ct->nat_port, .dst = !reply };
	int err;

	xlb_addr6_copy(n.new_addr, ct->nat_addr);
	err = xlb_hook_rewrite6(ctx, hook, p, &n);
	return xlb_nat_dropped(err) ? XLB_V_DROP : XLB_V_PASS;
}

XLB_INLINE enum xlb_verdict xlb_balance6(void *ctx, enum xlb_hook hook, const struct xlb_pkt6 *p,
					 __u32 ifindex)
{
	struct xlb_ct6_val fwd = {};
	struct xlb_backend6 *be;
	struct xlb_vip_val *vip;
	struct xlb_iface *ifc;
	__u32 backend_id = 0;
	int err;

	ifc = xlb_lookup(&xlb_ifaces, &ifindex);
	if (!ifc || !(ifc->flags & XLB_IFACE_F_BALANCE))
		return XLB_V_PASS;
	vip = xlb_vip6_find(p, ifc);
	if (!vip)
		return XLB_V_PASS;

	be = xlb_backend6_pick(p, vip, &backend_id);
	if (!be || xlb_addr6_is_zero(be->addr))
		return xlb_no_backend(vip);
	xlb_count_new_flow(p->tuple.proto, p->tcp_flags);

	xlb_addr6_copy(fwd.nat_addr, be->addr);
	fwd.nat_port = (vip->flags & XLB_VIP_F_IP_ONLY) ? 0 : be->port;
	fwd.vip_id = vip->vip_id;
	fwd.backend_id = backend_id;
	if (xlb_ct6_create(p, &fwd))
		xlb_count(XLB_G_CT_FULL);

	xlb_flow_stats(backend_id, p->len, 0, 1);

	{
		/* Scoped: its stack slot may be shared with conntrack's temporaries. */
		struct xlb_nat6 n = { .new_port = fwd.nat_port, .dst = 1 };

		xlb_addr6_copy(n.new_addr, fwd.nat_addr);
		err = xlb_hook_rewrite6(ctx, hook, p, &n);
		if (xlb_nat_dropped(err))
			return XLB_V_DROP;
	}
	return XLB_V_PASS;
}

/* Parses; on tc, an extension chain longer than the linear area is pulled in
 * once and parsed again. */
XLB_INLINE int xlb_parse6_ctx(void *ctx, enum xlb_hook hook, void **data, void **data_end,
			      __u32 len, struct xlb_pkt6 *p)
{
	int r = xlb_parse6(*data, *data_end, len, p);

	if (r != XLB_PARSE6_TRUNCATED)
		return r;
	if (hook != XLB_HOOK_TC || len <= (__u32)(*data_end - *data))
		return XLB_PARSE_MALFORMED;
	{
		struct __sk_buff *skb = ctx;

		if (bpf_skb_pull_data(skb, len < XLB_IPV6_PULL_LEN ? len : XLB_IPV6_PULL_LEN))
			return XLB_PARSE_MALFORMED;
		*data = (void *)(long)skb->data;
		*data_end = (void *)(long)skb->data_end;
	}
	r = xlb_parse6(*data, *data_end, len, p);
	return r == XLB_PARSE6_TRUNCATED ? XLB_PARSE_MALFORMED : r;
}

/* The IPv6 pipeline for one frame that is not IPv4. */
XLB_INLINE enum xlb_verdict xlb_process6(void *ctx, enum xlb_hook hook, int ingress,
					 void *data, void *data_end, __u32 len, __u32 ifindex)
{
	struct xlb_pkt6 p;
	struct xlb_ct6_val *ct;

	switch (xlb_parse6_ctx(ctx, hook, &data, &data_end, len, &p)) {
	case XLB_PARSE_OK:
		break;
	case XLB_PARSE_NOT_IPV4:
		xlb_count(XLB_G_NOT_IPV4);
		return XLB_V_NOT_IP;
	case XLB_PARSE_FRAGMENT:
		xlb_count(XLB_G_IPV6);
		xlb_count(XLB_G_FRAGMENT);
		return XLB_V_PASS;
	case XLB_PARSE6_EXT_PASS:
		xlb_count(XLB_G_IPV6);
		xlb_count(XLB_G_EXT_PASS);
		return XLB_V_PASS;
	default:
		xlb_count(XLB_G_MALFORMED);
		return XLB_V_PASS;
	}
	xlb_count(XLB_G_IPV6);

	if (p.tuple.proto == IPPROTO_ICMPV6) {
		/* An error about a tracked flow is translated, never balanced. */
		if (xlb_icmp6_is_error(p.icmp_type)) {
			if (xlb_icmp6_related(data, data_end, &p) == 1)
				xlb_count(XLB_G_ICMP_RELATED);
			return XLB_V_PASS;
		}
		if (p.icmp_type != XLB_ICMP6_ECHO_REQUEST && p.icmp_type != XLB_ICMP6_ECHO_REPLY)
			/* neighbour discovery and the like; tc ingress answers a
			 * solicitation for a router's VIP (neigh.h) */
			return ingress && p.icmp_type == XLB_ICMP6_ND_NS ? XLB_V_NEIGH : XLB_V_PASS;
	}

	/* Neither address is one balanced traffic uses: not ours (addrfilter.h). */
	if (!xlb_addr6_maybe(p.tuple.daddr) && !xlb_addr6_maybe(p.tuple.saddr)) {
		xlb_count(XLB_G_ADDR_SKIP);
		return XLB_V_PASS;
	}

	ct = xlb_ct6_hit(&p);
	if (ct) {
		xlb_count(XLB_G_CT_HIT);
		return xlb_apply_ct6(ctx, hook, &p, ct);
	}
	if (!ingress)
		return XLB_V_PASS;
	return xlb_balance6(ctx, hook, &p, ifindex);
}

/* The IPv6 pipeline as BPF subprograms, called by the entry points in tail
 * position for frames the IPv4 pipeline found not IPv4, so the IPv4 code is
 * compiled as if IPv6 did not exist (no value lives across the call).
 * Stack budget: the entry point's frame (≈192 bytes) plus this one must stay
 * within 512; the other-direction conntrack entries live in xlb_ct6_scratch
 * for that reason. Returns the XDP action. */
static __attribute__((noinline)) int xlb_process6_xdp(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	enum xlb_verdict v;

	v = xlb_process6(ctx, XLB_HOOK_XDP, 1, data, data_end, (__u32)(data_end - data),
			 ctx->ingress_ifindex);
	if (v == XLB_V_REJECT) { /* the tc companion answers (reject6.h) */
		if (xlb_xdp_defer(ctx, XLB_DEFER_REJECT)) {
			xlb_count(XLB_G_REJECT_FAIL);
			return XDP_DROP;
		}
		return XDP_PASS;
	}
	return xlb_hook_verdict(XLB_HOOK_XDP, v);
}

/* The same for tc, inlined into xlb.bpf.c's xlb_tc_ipv6 subprogram, which
 * returns the verdict: XLB_V_REJECT is answered by the entry point after it. */
static __always_inline int xlb_process6_tc(struct __sk_buff *skb, int ingress)
{
	return xlb_process6(skb, XLB_HOOK_TC, ingress, (void *)(long)skb->data,
			    (void *)(long)skb->data_end, skb->len, skb->ifindex);
}

#endif /* XLB_LB6_H */
