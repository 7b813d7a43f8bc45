/* SPDX-License-Identifier: MIT */
/*
 * conntrack6.h — connection tracking of IPv6 flows in xlb_ct6: the same rules
 * as conntrack.h (both directions keyed by the packet's own 5-tuple, an entry
 * evicted alone is recreated from the other, TCP state followed in both).
 */
#ifndef XLB_CONNTRACK6_H
#define XLB_CONNTRACK6_H

#include "access.h"
#include "maps.h"
#include "parse6.h"
#include "conntrack.h"

/* Scratch space for the other direction's entry (88 bytes): the IPv6 pipeline
 * runs as a subprogram below the IPv4 entry point, and the two stack frames
 * share the 512-byte limit. Per CPU, used within one packet's run (programs
 * do not migrate mid-run). BPF-only: never pinned, never read by the control
 * plane. */
struct xlb_ct6_scratch {
	struct xlb_ct6_key key;
	struct xlb_ct6_val val;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct xlb_ct6_scratch);
} xlb_ct6_scratch SEC(".maps");

/* The reverse entry implied by a forward one, or the forward one by a reverse. */
XLB_INLINE void xlb_ct6_other(const struct xlb_ct6_key *k, const struct xlb_ct6_val *v,
			      struct xlb_ct6_key *ok, struct xlb_ct6_val *ov)
{
	ok->proto = k->proto;
	ok->pad[0] = ok->pad[1] = ok->pad[2] = 0;
	ov->dir = v->dir == XLB_DIR_FWD ? XLB_DIR_REV : XLB_DIR_FWD;
	ov->state = v->state;
	ov->vip_id = v->vip_id;
	ov->backend_id = v->backend_id;
	ov->pad = 0;
	ov->last_seen_ns = v->last_seen_ns;
	ov->pend = 0;
	if (v->dir == XLB_DIR_FWD) {
		/* k = client->VIP, v = backend; other: backend->client, nat back to VIP */
		xlb_addr6_copy(ok->saddr, v->nat_addr);
		xlb_addr6_copy(ok->daddr, k->saddr);
		ok->sport = v->nat_port ? v->nat_port : k->dport;
		ok->dport = k->sport;
		xlb_addr6_copy(ov->nat_addr, k->daddr);
		ov->nat_port = v->nat_port ? k->dport : 0;
	} else {
		/* k = backend->client, v = VIP; other: client->VIP, nat to backend */
		xlb_addr6_copy(ok->saddr, k->daddr);
		xlb_addr6_copy(ok->daddr, v->nat_addr);
		ok->sport = k->dport;
		ok->dport = v->nat_port ? v->nat_port : k->sport;
		xlb_addr6_copy(ov->nat_addr, k->saddr);
		ov->nat_port = v->nat_port ? k->sport : 0;
	}
}

/* As xlb_ct4_hit_new: a hit in the new-flow tier (xlb_ct6_new), moved to
 * xlb_ct6 when this packet confirms the flow. */
XLB_INLINE struct xlb_ct6_val *xlb_ct6_hit_new(const struct xlb_pkt6 *p)
{
	const struct xlb_ct6_key *k = &p->tuple;
	struct xlb_ct6_val *v = xlb_lookup(&xlb_ct6_new, k);
	struct xlb_ct6_scratch *r;
	struct xlb_ct6_val *m, *o;
	__u32 zero = 0;

	if (!v)
		return NULL;
	r = xlb_lookup(&xlb_ct6_scratch, &zero);
	if (!r)
		return v;
	v->last_seen_ns = xlb_now_ns();
	if (k->proto == IPPROTO_TCP)
		v->state = xlb_ct_next_state(v->state, v->dir, p->tcp_flags);
	xlb_ct6_other(k, v, &r->key, &r->val);
	if (!xlb_ct_confirms(v->dir, k->proto, p->tcp_flags)) {
		o = xlb_lookup(&xlb_ct6_new, &r->key);
		if (!o) {
			xlb_update(&xlb_ct6_new, &r->key, &r->val, BPF_NOEXIST);
			xlb_count(XLB_G_CT_RECREATE);
		} else if (o->state != v->state) {
			o->state = v->state;
		}
		return v;
	}
	/* (The value is copied from the new-tier entry itself: no stack copy.) */
	if (xlb_update(&xlb_ct6, &r->key, &r->val, BPF_ANY) || xlb_update(&xlb_ct6, k, v, BPF_ANY))
		return v;
	m = xlb_lookup(&xlb_ct6, k);
	if (!m)
		return v;
	xlb_delete(&xlb_ct6_new, k);
	xlb_delete(&xlb_ct6_new, &r->key);
	xlb_count(XLB_G_CT_PROMOTED);
	return m;
}

/* Looks the packet up and counts it (see xlb_ct4_hit: in the entry, or in its
 * backend's row with the entry's pending counts when the entry is refreshed;
 * a new-tier hit through the flow log; the other direction is looked at only on a state
 * change or a timestamp refresh). Returns the entry or NULL. */
XLB_INLINE struct xlb_ct6_val *xlb_ct6_hit(const struct xlb_pkt6 *p)
{
	const struct xlb_ct6_key *k = &p->tuple;
	struct xlb_ct6_val *v = xlb_lookup(&xlb_ct6, k);
	struct xlb_ct6_scratch *r;
	struct xlb_ct6_val *o;
	__u32 zero = 0;

	if (!v) {
		v = xlb_ct6_hit_new(p);
		if (v)
			xlb_flow_stats(v->backend_id, p->len, v->dir == XLB_DIR_REV, 0);
		return v;
	}
	if (!xlb_ct_refresh(&v->state, &v->last_seen_ns, k->proto, v->dir, p->tcp_flags)) {
		xlb_ct_count(&v->pend, p->len);
		return v;
	}
	xlb_ct_count_fold(&v->pend, v->backend_id, v->dir == XLB_DIR_REV, p->len);
	r = xlb_lookup(&xlb_ct6_scratch, &zero);
	if (!r)
		return v;
	xlb_ct6_other(k, v, &r->key, &r->val);
	o = xlb_lookup(&xlb_ct6, &r->key);
	if (!o) {
		r->val.last_seen_ns = v->last_seen_ns;
		xlb_update(&xlb_ct6, &r->key, &r->val, BPF_NOEXIST);
		xlb_count(XLB_G_CT_RECREATE);
	} else if (o->state != v->state) {
		o->state = v->state;
	}
	return v;
}

/* Records a newly balanced flow in both directions, in the new-flow tier.
 * Returns 0 or a negative errno. */
XLB_INLINE int xlb_ct6_create(const struct xlb_pkt6 *p, struct xlb_ct6_val *fwd)
{
	const struct xlb_ct6_key *k = &p->tuple;
	__u32 zero = 0;
	struct xlb_ct6_scratch *r = xlb_lookup(&xlb_ct6_scratch, &zero);
	int err;

	if (!r)
		return -1;

	fwd->dir = XLB_DIR_FWD;
	fwd->state = xlb_ct_new_state(k->proto, p->tcp_flags);
	fwd->pad = 0;
	fwd->last_seen_ns = xlb_now_ns();
	xlb_ct6_other(k, fwd, &r->key, &r->val);
	err = xlb_update(&xlb_ct6_new, &r->key, &r->val, BPF_ANY);
	if (err)
		return err;
	return xlb_update(&xlb_ct6_new, k, fwd, BPF_ANY);
}

#endif /* XLB_CONNTRACK6_H */
