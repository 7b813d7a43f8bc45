/* SPDX-License-Identifier: MIT */
/*
 * conntrack.h — connection tracking decisions. One shared LRU hash holds both
 * directions of every balanced flow, keyed by the packet's own 5-tuple:
 *   forward  client->VIP     => rewrite destination to the backend
 *   reverse  backend->client => rewrite source back to the VIP
 * Entries hold addresses and ports (never an index that can be reused). LRU can
 * evict one direction alone: a hit on the other recreates it.
 *
 * Two tiers, so that a flood of new flows cannot evict established ones: a new
 * flow is recorded in xlb_ct4_new (a smaller set-associative table, ctnew.h)
 * and moves to xlb_ct4 once its backend has answered with something other than
 * a SYN-ACK, RST or FIN (any answer for other protocols): see xlb_ct_confirms
 * (ctstate.h). xlb_ct4 is looked up first, so an established flow costs what it
 * did with one table; entries of xlb_ct4 are evicted only to make room for
 * confirmed flows (two entries each).
 */
#ifndef XLB_CONNTRACK_H
#define XLB_CONNTRACK_H

#include <linux/errno.h>
#include "access.h"
#include "maps.h"
#include "parse.h"
#include "ctstate.h"
#include "ctnew.h"
#include "ctseen.h"
#include "stats.h"

/* The reverse entry implied by a forward one, or the forward one by a reverse.
 * A source-NATed flow (XLB_CT_F_SNAT) is keyed in reverse by backend -> SNAT
 * address/port, and its reverse entry restores the client as destination. */
XLB_INLINE void xlb_ct4_other(const struct xlb_ct4_key *k, const struct xlb_ct4_val *v,
			      struct xlb_ct4_key *ok, struct xlb_ct4_val *ov)
{
	ok->proto = k->proto;
	ok->pad[0] = ok->pad[1] = ok->pad[2] = 0;
	ov->dir = v->dir == XLB_DIR_FWD ? XLB_DIR_REV : XLB_DIR_FWD;
	ov->state = v->state;
	ov->vip_id = v->vip_id;
	ov->backend_id = v->backend_id;
	ov->last_seen_ns = v->last_seen_ns;
	ov->flags = v->flags;
	ov->pad = 0;
	ov->pend = 0;
	ov->snat_addr = 0;
	ov->snat_port = 0;
	if (v->dir == XLB_DIR_FWD) {
		/* k = client->VIP, v = backend; other: backend->client, nat back to VIP */
		ok->saddr = v->nat_addr;
		ok->daddr = k->saddr;
		ok->sport = v->nat_port ? v->nat_port : k->dport;
		ok->dport = k->sport;
		ov->nat_addr = k->daddr;
		ov->nat_port = v->nat_port ? k->dport : 0;
		if (v->flags & XLB_CT_F_SNAT) { /* other: backend->SNAT, restores the client */
			ok->daddr = v->snat_addr;
			ok->dport = v->snat_port ? v->snat_port : k->sport;
			ov->snat_addr = k->saddr;
			ov->snat_port = v->snat_port ? k->sport : 0;
		}
	} else {
		/* k = backend->client, v = VIP; other: client->VIP, nat to backend */
		ok->saddr = k->daddr;
		ok->daddr = v->nat_addr;
		ok->sport = k->dport;
		ok->dport = v->nat_port ? v->nat_port : k->sport;
		ov->nat_addr = k->saddr;
		ov->nat_port = v->nat_port ? k->sport : 0;
		if (v->flags & XLB_CT_F_SNAT) { /* k = backend->SNAT, v->snat = the client */
			ok->saddr = v->snat_addr;
			ok->sport = v->snat_port ? v->snat_port : k->dport;
			ov->snat_addr = k->daddr;
			ov->snat_port = v->snat_port ? k->dport : 0;
		}
	}
}

/* A hit in the new-flow tier (ctnew.h) of the packet's key (hash: its
 * 5-tuple's, for the established tier's filter; home: the bucket
 * xlb_ctn4_locate saw it in): counts the packet for its backend (the flow
 * log, stats.h), follows
 * the TCP state like xlb_ct4_hit, copies
 * the entry to v, and moves the flow (both directions) to xlb_ct4 when this
 * packet confirms it. Returns 1 on a hit, 0 on a miss, -EBUSY when the bucket
 * holding the key stayed locked (the packet must not be taken for a new
 * flow's). */
XLB_INLINE int xlb_ct4_hit_new(const struct xlb_pkt4 *p, __u32 hash, __u32 home, struct xlb_ct4_val *v)
{
	const struct xlb_ct4_key *k = &p->tuple;
	struct xlb_ct4_key ok;
	struct xlb_ct4_val ov;
	__u32 ohome;
	int hit = xlb_ctn4_touch(k, home, p->tcp_flags, v);

	if (hit <= 0)
		return hit;
	/* (counted through the flow log, not in the entry: it is a copy) */
	xlb_flow_stats(v->backend_id, p->len, v->dir == XLB_DIR_REV, 0);
	xlb_ct4_other(k, v, &ok, &ov);
	/* Without source NAT both keys have the flow's client side: one home. */
	ohome = (v->flags & XLB_CT_F_SNAT) ? xlb_ctn4_home(&ok, ov.dir) : home;
	if (!xlb_ct_confirms(v->dir, k->proto, p->tcp_flags)) {
		if (xlb_ctn4_sync(&ok, ohome, &ov))
			xlb_count(XLB_G_CT_RECREATE);
		return 1;
	}
	if (xlb_ct4_put_est(&ok, xlb_ct4_key_hash(&ok), &ov, BPF_ANY) || xlb_ct4_put_est(k, hash, v, BPF_ANY))
		return 1;
	xlb_ctn4_delete(k, home);
	xlb_ctn4_delete(&ok, ohome);
	xlb_count(XLB_G_CT_PROMOTED);
	return 1;
}

/* Looks the packet up in the established tier; on a hit counts the packet
 * (in the entry, or with the entry's pending counts in its backend's row when
 * the entry is refreshed: stats.h), refreshes the timestamp (at most once per
 * XLB_CT_REFRESH_NS) and follows the TCP state.
 * The other direction is looked at only when this entry's state changes (the
 * state is kept equal in both) or its timestamp is refreshed: a missing one
 * (an LRU eviction of one direction alone) is recreated then, so within
 * XLB_CT_REFRESH_NS of the eviction while the flow sends. Every other hit is
 * one lookup. A direction that carries packets keeps its own entry recent; the
 * control plane ages a flow by the later timestamp of the two (conntrack.ts).
 * Returns the entry or NULL. */
XLB_INLINE struct xlb_ct4_val *xlb_ct4_hit(const struct xlb_pkt4 *p)
{
	const struct xlb_ct4_key *k = &p->tuple;
	struct xlb_ct4_val *v = xlb_lookup(&xlb_ct4, k);
	struct xlb_ct4_val *o;
	struct xlb_ct4_key ok;
	struct xlb_ct4_val ov;

	if (!v)
		return NULL; /* the new-flow tier is looked at out of line (lb.h) */
	if (!xlb_ct_refresh(&v->state, &v->last_seen_ns, k->proto, v->dir, p->tcp_flags)) {
		xlb_ct_count(&v->pend, p->len);
		return v;
	}
	xlb_ct_count_fold(&v->pend, v->backend_id, v->dir == XLB_DIR_REV, p->len);
	xlb_ct4_other(k, v, &ok, &ov);
	o = xlb_lookup(&xlb_ct4, &ok);
	if (!o) {
		xlb_ct4_put_est(&ok, xlb_ct4_key_hash(&ok), &ov, BPF_NOEXIST);
		xlb_count(XLB_G_CT_RECREATE);
	} else if (o->state != v->state) {
		o->state = v->state;
	}
	return v;
}

/* Fills the forward entry's direction, TCP state and clock for a new flow. */
XLB_INLINE void xlb_ct4_init_fwd(const struct xlb_pkt4 *p, struct xlb_ct4_val *fwd)
{
	fwd->dir = XLB_DIR_FWD;
	fwd->state = xlb_ct_new_state(p->tuple.proto, p->tcp_flags);
	fwd->last_seen_ns = xlb_now_ns();
}

/* Records a newly balanced flow in both directions, in the new-flow tier:
 * without source NAT both keys have the client side (its address and port)
 * and share the home bucket hf (xlb_ctn4_home), prefetched when the packet's
 * miss was checked: one locked write. Returns 0 or a negative errno. */
XLB_INLINE int xlb_ct4_create(const struct xlb_pkt4 *p, __u32 hf, struct xlb_ct4_val *fwd)
{
	struct xlb_ct4_key rk;
	struct xlb_ct4_val rv;

	xlb_ct4_init_fwd(p, fwd);
	xlb_ct4_other(&p->tuple, fwd, &rk, &rv);
	return xlb_ctn4_put_pair(&p->tuple, fwd, &rk, &rv, hf);
}

/* Records a newly balanced, source-NATed flow (fwd->snat_addr set), in the
 * new-flow tier. Many clients may share one SNAT address: the source port is
 * the client's own if the reverse key (backend -> SNAT:port) is free in both
 * tiers, else one of XLB_SNAT_TRIES-1 random ports. The claim is an insert
 * with BPF_NOEXIST (atomic among new flows; an established flow's key is found
 * by lookup first, which the filter of ctseen.h spares for a key the
 * established tier surely does not hold), so two flows never share a reverse key. Returns 0, -EEXIST
 * when no port was free, or a negative errno. */
XLB_INLINE int xlb_ct4_create_snat(const struct xlb_pkt4 *p, __u32 hf, struct xlb_ct4_val *fwd)
{
	const struct xlb_ct4_key *k = &p->tuple;
	struct xlb_ct4_key rk;
	struct xlb_ct4_val rv;
	int err = -EEXIST;
	__u32 i, rhash, rhome = 0;

	xlb_ct4_init_fwd(p, fwd);
	fwd->flags |= XLB_CT_F_SNAT;
	for (i = 0; i < XLB_SNAT_TRIES; i++) {
		if (i == 0)
			fwd->snat_port = k->sport;
		else if (!k->sport)
			break; /* no ports to choose from */
		else
			fwd->snat_port = bpf_htons(XLB_SNAT_PORT_MIN +
						   xlb_random() % (XLB_SNAT_PORT_MAX - XLB_SNAT_PORT_MIN + 1));
		xlb_ct4_other(k, fwd, &rk, &rv);
		rhash = xlb_ct4_key_hash(&rk);
		if (xlb_ct4_seen_maybe_h(rhash) && xlb_lookup(&xlb_ct4, &rk)) {
			err = -EEXIST;
			continue;
		}
		rhome = xlb_ctn4_home(&rk, XLB_DIR_REV);
		err = xlb_ctn4_put(&rk, rhome, &rv, 1);
		if (err != -EEXIST)
			break;
	}
	if (err)
		return err;
	err = xlb_ctn4_put(k, hf, fwd, 0);
	if (err) /* no half flow holding its source port: the claim goes (best effort) */
		xlb_ctn4_delete(&rk, rhome);
	return err;
}

#endif /* XLB_CONNTRACK_H */
