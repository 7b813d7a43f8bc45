/* SPDX-License-Identifier: MIT */
/*
 * lb.h — the pipeline shared by every entry point:
 *   parse -> ICMP error of a tracked flow? translate -> address filter
 *   (neither address known: pass, addrfilter.h) -> conntrack (either
 *   direction: apply the recorded NAT, never re-balance) -> [ingress only]
 *   VIP -> Maglev -> conntrack insert -> DNAT. (An IPv4 SYN arriving looks its
 *   VIP up before conntrack, to start loading its Maglev slot: select.h.)
 * IPv6 takes the same steps in lb6.h: the entry points call it (a BPF
 * subprogram, in tail position) for what this pipeline finds is not IPv4.
 * Anything that is not load-balancer traffic passes untouched.
 *
 * A TCP packet without SYN of an unknown flow to a VIP (an LRU eviction of both
 * entries, a restart with lost state, a flow from before xlb) is re-balanced by
 * the consistent hash: while the pool is unchanged it reaches the same backend.
 */
#ifndef XLB_LB_H
#define XLB_LB_H

#include "access.h"
#include "maps.h"
#include "parse.h"
#include "conntrack.h"
#include "select.h"
#include "stats.h"
#include "snat.h"
#include "hook.h"
#include "icmp.h"
#include "addrfilter.h"

enum xlb_stage { XLB_STAGE_INGRESS = 1, XLB_STAGE_EGRESS = 2 };

/* Counts a rewrite's failure; 1 when the packet must be dropped. */
XLB_INLINE int xlb_nat_dropped(int err)
{
	if (!err)
		return 0;
	xlb_count(XLB_G_NAT_ERROR);
	return err == XLB_NAT_DROP;
}

/* A VIP with no backend for this flow: rejected when it asks so, else dropped. */
XLB_INLINE enum xlb_verdict xlb_no_backend(const struct xlb_vip_val *vip)
{
	struct xlb_stats *s = xlb_vip_stats_of(vip->vip_id);

	if (vip->flags & XLB_VIP_F_REJECT) { /* answered by reject.h / reject6.h */
		if (s)
			s->rejects += 1;
		return XLB_V_REJECT;
	}
	if (s)
		s->drops += 1;
	xlb_count(XLB_G_NO_BACKEND);
	return XLB_V_DROP;
}

/* Counts a new flow, and one picked up mid-stream (TCP without SYN). */
XLB_INLINE void xlb_count_new_flow(__u8 proto, __u8 tcp_flags)
{
	if (proto == IPPROTO_TCP && !(tcp_flags & XLB_TCP_FLAG_SYN))
		xlb_count(XLB_G_MIDSTREAM);
	xlb_count(XLB_G_NEW_FLOW);
}

/* The source half of a source-NATed flow's rewrite (snat_addr/port of sn), and
 * where it goes next. Out of line (one BPF subprogram per hook): its stack is
 * not added to the main frame, which the IPv6 subprograms share a 512-byte
 * budget with; flows without source NAT never call it. */
XLB_INLINE enum xlb_verdict xlb_apply_snat4(void *ctx, enum xlb_hook hook, enum xlb_stage stage,
					    const struct xlb_pkt4 *p, const struct xlb_nat4 *first,
					    const struct xlb_ct4_val *sn)
{
	struct xlb_nat4 n = { .new_addr = sn->snat_addr, .new_port = sn->snat_port, .dst = !first->dst };

	if (xlb_hook_rewrite_second(ctx, hook, p, first, &n))
		xlb_count(XLB_G_NAT_ERROR);
	if ((sn->flags & XLB_CT_F_HAIRPIN) && stage == XLB_STAGE_INGRESS) {
		xlb_count(XLB_G_HAIRPIN);
		return XLB_V_BOUNCE;
	}
	return XLB_V_PASS;
}

XLB_NOINLINE enum xlb_verdict xlb_apply_snat4_tc(struct __sk_buff *skb, enum xlb_stage stage,
						 const struct xlb_pkt4 *p, const struct xlb_nat4 *first,
						 const struct xlb_ct4_val *sn)
{
	return xlb_apply_snat4(skb, XLB_HOOK_TC, stage, p, first, sn);
}

XLB_NOINLINE enum xlb_verdict xlb_apply_snat4_xdp(struct xdp_md *xdp, enum xlb_stage stage,
						  const struct xlb_pkt4 *p, const struct xlb_nat4 *first,
						  const struct xlb_ct4_val *sn)
{
	return xlb_apply_snat4(xdp, XLB_HOOK_XDP, stage, p, first, sn);
}

XLB_INLINE enum xlb_verdict xlb_snat4_call(void *ctx, enum xlb_hook hook, enum xlb_stage stage,
					   const struct xlb_pkt4 *p, const struct xlb_nat4 *first,
					   const struct xlb_ct4_val *sn)
{
	if (hook == XLB_HOOK_XDP)
		return xlb_apply_snat4_xdp(ctx, stage, p, first, sn);
	return xlb_apply_snat4_tc(ctx, stage, p, first, sn);
}

/* Rewrites a tracked flow's packet as its entry says (counted by the tier's
 * hit: xlb_ct4_hit, xlb_ct4_hit_new). */
XLB_INLINE enum xlb_verdict xlb_apply_ct4(void *ctx, enum xlb_hook hook, enum xlb_stage stage,
					  const struct xlb_pkt4 *p, const struct xlb_ct4_val *ct)
{
	int reply = ct->dir == XLB_DIR_REV;
	struct xlb_nat4 n = {
		.new_addr = ct->nat_addr,
		.new_port = ct->nat_port,
		.dst = !reply,
	};
	int err;

	err = xlb_hook_rewrite(ctx, hook, p, &n);
	if (xlb_nat_dropped(err))
		return XLB_V_DROP;
	if (ct->flags & XLB_CT_F_SNAT)
		return xlb_snat4_call(ctx, hook, stage, p, &n, ct);
	return XLB_V_PASS;
}

/* A new flow's two hashes in one subprogram argument (a BPF subprogram takes
 * five): its 5-tuple's hash in the high word, its new-flow home (hf) in the
 * low word. */
XLB_INLINE __u64 xlb_hashes_pack(__u32 hash, __u32 hf)
{
	return (__u64)hash << 32 | hf;
}

XLB_INLINE __u32 xlb_hashes_tuple(__u64 hashes)
{
	return hashes >> 32;
}

XLB_INLINE __u32 xlb_hashes_home(__u64 hashes)
{
	return (__u32)hashes;
}

/* hashes: xlb_hashes_pack(tuple hash, hf); vip: the packet's VIP when the
 * caller has found it (a SYN's, xlb_backend_prefetch4), else NULL: looked up
 * here. */
XLB_INLINE enum xlb_verdict xlb_balance4(void *ctx, enum xlb_hook hook, const struct xlb_pkt4 *p,
					 __u32 ifindex, __u64 hashes, struct xlb_vip_val *vip)
{
	__u32 hash = xlb_hashes_tuple(hashes), hf = xlb_hashes_home(hashes);
	struct xlb_ct4_val fwd = {};
	struct xlb_backend4 *be;
	struct xlb_iface *ifc;
	__u32 backend_id = 0;

	ifc = xlb_lookup(&xlb_ifaces, &ifindex);
	if (!ifc || !(ifc->flags & XLB_IFACE_F_BALANCE))
		return XLB_V_PASS;
	if (!vip)
		vip = xlb_vip4_find(p, ifc);
	if (!vip)
		return XLB_V_PASS;

	be = xlb_backend_pick(p, vip, hash, &backend_id);
	if (!be)
		return xlb_no_backend(vip);
	xlb_count_new_flow(p->tuple.proto, p->tcp_flags);

	fwd.nat_addr = be->addr;
	fwd.nat_port = (vip->flags & XLB_VIP_F_IP_ONLY) ? 0 : be->port;
	fwd.vip_id = vip->vip_id;
	fwd.backend_id = backend_id;
	fwd.snat_addr = xlb_snat4_pick(p, vip, be, ifc->scope, &fwd.flags);
	if (fwd.snat_addr) {
		/* Without both entries the reply could not be un-NATed: drop. */
		int err = xlb_ct4_create_snat(p, hf, &fwd);

		if (err) {
			xlb_count(err == -EEXIST ? XLB_G_SNAT_NO_PORT : XLB_G_CT_FULL);
			return XLB_V_DROP;
		}
		xlb_count(XLB_G_SNAT);
	} else if (xlb_ct4_create(p, hf, &fwd)) {
		xlb_count(XLB_G_CT_FULL);
	}

	xlb_flow_stats(backend_id, p->len, 0, 1);

	struct xlb_nat4 n = { .new_addr = fwd.nat_addr, .new_port = fwd.nat_port, .dst = 1 };

	if (xlb_nat_dropped(xlb_hook_rewrite(ctx, hook, p, &n)))
		return XLB_V_DROP;
	if (fwd.flags & XLB_CT_F_SNAT)
		return xlb_snat4_call(ctx, hook, XLB_STAGE_INGRESS, p, &n, &fwd);
	return XLB_V_PASS;
}

/* New flows out of line (one BPF subprogram per hook): the balancing path's
 * stack (conntrack entries, source NAT) stays out of the frames above it. */
XLB_NOINLINE enum xlb_verdict xlb_balance4_tc(struct __sk_buff *skb, const struct xlb_pkt4 *p, __u32 ifindex,
						__u64 hashes, struct xlb_vip_val *vip)
{
	return xlb_balance4(skb, XLB_HOOK_TC, p, ifindex, hashes, vip);
}

XLB_NOINLINE enum xlb_verdict xlb_balance4_xdp(struct xdp_md *xdp, const struct xlb_pkt4 *p, __u32 ifindex,
						 __u64 hashes, struct xlb_vip_val *vip)
{
	return xlb_balance4(xdp, XLB_HOOK_XDP, p, ifindex, hashes, vip);
}

/* A packet the established tier does not know: a flow of the new-flow tier
 * (ctnew.h; home: the bucket xlb_ctn4_locate saw its key in) is rewritten as
 * recorded; XLB_V_UNTRACKED when it is not there. When its bucket stayed
 * locked the packet is dropped (counted ct_busy): taken for a new flow's, a
 * live flow's packet would be balanced again, a reply would pass un-NATed. */
XLB_INLINE enum xlb_verdict xlb_new_tier4(void *ctx, enum xlb_hook hook, enum xlb_stage stage,
					  const struct xlb_pkt4 *p, __u32 hash, __u32 home)
{
	struct xlb_ct4_val ct;
	int hit = xlb_ct4_hit_new(p, hash, home, &ct);

	if (hit < 0)
		return XLB_V_DROP;
	if (!hit)
		return XLB_V_UNTRACKED;
	xlb_count(XLB_G_CT_HIT);
	return xlb_apply_ct4(ctx, hook, stage, p, &ct);
}

/* Out of line (one BPF subprogram per hook and stage): the new-flow tier's
 * stack (copies of its entries) stays out of the main frame, whose 512-byte
 * budget the IPv6 subprograms share; established flows never call it. */
XLB_NOINLINE enum xlb_verdict xlb_new_tier4_tc_in(struct __sk_buff *skb, const struct xlb_pkt4 *p, __u32 hash, __u32 home)
{
	return xlb_new_tier4(skb, XLB_HOOK_TC, XLB_STAGE_INGRESS, p, hash, home);
}

XLB_NOINLINE enum xlb_verdict xlb_new_tier4_tc_eg(struct __sk_buff *skb, const struct xlb_pkt4 *p, __u32 hash, __u32 home)
{
	return xlb_new_tier4(skb, XLB_HOOK_TC, XLB_STAGE_EGRESS, p, hash, home);
}

XLB_NOINLINE enum xlb_verdict xlb_new_tier4_xdp(struct xdp_md *xdp, const struct xlb_pkt4 *p, __u32 hash, __u32 home)
{
	return xlb_new_tier4(xdp, XLB_HOOK_XDP, XLB_STAGE_INGRESS, p, hash, home);
}

XLB_INLINE enum xlb_verdict xlb_new_tier4_call(void *ctx, enum xlb_hook hook, enum xlb_stage stage,
					       const struct xlb_pkt4 *p, __u32 hash, __u32 home)
{
	if (hook == XLB_HOOK_XDP)
		return xlb_new_tier4_xdp(ctx, p, hash, home);
	if (stage == XLB_STAGE_INGRESS)
		return xlb_new_tier4_tc_in(ctx, p, hash, home);
	return xlb_new_tier4_tc_eg(ctx, p, hash, home);
}

/* The whole pipeline for one frame. len is the frame's full length. */
XLB_INLINE enum xlb_verdict xlb_process4(void *ctx, enum xlb_hook hook, enum xlb_stage stage,
					 void *data, void *data_end, __u32 len, __u32 ifindex)
{
	struct xlb_vip_val *vip = NULL;
	struct xlb_pkt4 p;
	struct xlb_ct4_val *ct;
	enum xlb_verdict v;
	__u32 hash = 0, hf = 0, home = 0;

	xlb_count(XLB_G_PACKETS);
	switch (xlb_parse4(data, data_end, len, &p)) {
	case XLB_PARSE_OK:
		break;
	case XLB_PARSE_NOT_IPV4:
		return XLB_V_NOT_IP; /* IPv6 or not IP: the entry point decides (lb6.h) */
	case XLB_PARSE_FRAGMENT:
		xlb_count(XLB_G_FRAGMENT);
		return XLB_V_PASS;
	default:
		xlb_count(XLB_G_MALFORMED);
		return XLB_V_PASS;
	}

	/* An ICMP error about a tracked flow is translated, never balanced. */
	if (p.tuple.proto == IPPROTO_ICMP && xlb_icmp4_related(data, data_end) == 1) {
		xlb_count(XLB_G_ICMP_RELATED);
		return XLB_V_PASS;
	}

	/* Neither address is one balanced traffic uses: not ours (addrfilter.h;
	 * an IPv4 address, network order as loaded, is its own key). */
	if (!xlb_addr_maybe(p.tuple.daddr) && !xlb_addr_maybe(p.tuple.saddr)) {
		xlb_count(XLB_G_ADDR_SKIP);
		return XLB_V_PASS;
	}

	/* A new flow's SYN skips the established tier when its filter allows.
	 * The key's hash, computed once past the established tier, serves the
	 * filter and Maglev; the home of its source side (hf, computed once:
	 * the index of the new-flow tier bucket its flow's entries live in,
	 * ctnew.h) is prefetched, read and written by that index. A SYN
	 * arriving looks its VIP up first and, for a VIP of the default hash
	 * without affinity, has its Maglev slot on the way before these
	 * (select.h): with many VIPs the slot is a miss, which then overlaps the
	 * bucket's and the filter's instead of following them. */
	if (xlb_ct4_opens(&p)) {
		hash = xlb_ct4_key_hash(&p.tuple);
		hf = xlb_ctn4_home(&p.tuple, XLB_DIR_FWD);
		if (stage == XLB_STAGE_INGRESS)
			vip = xlb_backend_prefetch4(&p, ifindex, hash);
		/* That bucket is read next: on its way while the filter is. */
		xlb_ctn4_prefetch(hf);
		if (!xlb_ct4_seen_maybe_h(hash)) {
			xlb_count(XLB_G_CT_SKIP);
			goto untracked;
		}
		ct = xlb_ct4_hit(&p);
	} else {
		ct = xlb_ct4_hit(&p);
		if (!ct) {
			hash = xlb_ct4_key_hash(&p.tuple);
			hf = xlb_ctn4_home(&p.tuple, XLB_DIR_FWD);
		}
	}
	if (ct) {
		xlb_count(XLB_G_CT_HIT);
		return xlb_apply_ct4(ctx, hook, stage, &p, ct);
	}
untracked:
	/* The new-flow tier's miss is answered here, its hit out of line. */
	if (xlb_ctn4_locate(&p.tuple, hf, xlb_ctn4_home(&p.tuple, XLB_DIR_REV), &home)) {
		v = xlb_new_tier4_call(ctx, hook, stage, &p, hash, home);
		if (v != XLB_V_UNTRACKED)
			return v;
	}
	if (stage != XLB_STAGE_INGRESS)
		return XLB_V_PASS;
	/* A SYN arriving had its VIP looked up (none: not balanced, as
	 * xlb_balance4 would find). */
	if (!vip && xlb_ct4_opens(&p))
		return XLB_V_PASS;
	if (hook == XLB_HOOK_XDP)
		return xlb_balance4_xdp(ctx, &p, ifindex, xlb_hashes_pack(hash, hf), vip);
	return xlb_balance4_tc(ctx, &p, ifindex, xlb_hashes_pack(hash, hf), vip);
}

#endif /* XLB_LB_H */
