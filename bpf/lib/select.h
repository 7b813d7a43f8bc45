/* SPDX-License-Identifier: MIT */
/*
 * select.h — VIP lookup and backend selection. The VIP is looked up by
 * (scope, address, port, protocol), then as an IP-only VIP (any protocol) when
 * the interface's scope has any.
 * The flow hash indexes the VIP's Maglev table (maglev.h).
 */
#ifndef XLB_SELECT_H
#define XLB_SELECT_H

#include "access.h"
#include "maps.h"
#include "hash.h"
#include "parse.h"
#include "maglev.h"
#include "stats.h"

XLB_INLINE struct xlb_vip_val *xlb_vip4_find(const struct xlb_pkt4 *p, const struct xlb_iface *ifc)
{
	__u32 scope = ifc->scope;
	struct xlb_vip4_key vk = {
		.addr = p->tuple.daddr,
		.port = p->tuple.dport,
		.proto = p->tuple.proto,
		.scope = scope,
	};
	struct xlb_vip_val *vip = xlb_lookup(&xlb_vip4, &vk);

	if (vip || !(ifc->flags & XLB_IFACE_F_IP_ONLY))
		return vip;
	vk.port = 0;
	vk.proto = 0;
	return xlb_lookup(&xlb_vip4, &vk);
}

/* The hash a VIP's selection_fields ask for: by default the 5-tuple's,
 * tuple_hash (xlb_ct4_key_hash of the packet's tuple, computed by the caller). */
XLB_INLINE __u32 xlb_flow_hash4(const struct xlb_pkt4 *p, __u8 fields, __u32 tuple_hash)
{
	if (!fields)
		return tuple_hash;
	return xlb_hash_fields4(p->tuple.saddr, p->tuple.daddr, p->tuple.sport, p->tuple.dport,
				p->eth->h_source, p->eth->h_dest, fields);
}

/* For a new flow's SYN arriving (ingress): looks its VIP up and starts loading
 * the Maglev words its balancing will read (xlb_maglev_prefetch), before the
 * program reads its conntrack buckets, so that these misses overlap instead
 * of following one another. Returns the VIP (NULL: none, or the interface
 * does not balance), which xlb_balance4 then takes instead of looking it up
 * again. The slot is prefetched only for the 5-tuple hash (the default,
 * tuple_hash): a VIP's selection_fields would cost a second hash here; and
 * not with affinity, whose returning clients take their backend without
 * reading the table. */
XLB_INLINE struct xlb_vip_val *xlb_backend_prefetch4(const struct xlb_pkt4 *p, __u32 ifindex,
						     __u32 tuple_hash)
{
	struct xlb_iface *ifc = xlb_lookup(&xlb_ifaces, &ifindex);
	struct xlb_vip_val *vip;

	if (!ifc || !(ifc->flags & XLB_IFACE_F_BALANCE))
		return NULL;
	vip = xlb_vip4_find(p, ifc);
	if (vip && !vip->hash_fields && !(vip->flags & XLB_VIP_F_AFFINITY))
		xlb_maglev_prefetch(vip->vip_id, vip->table_class, vip->table_m, tuple_hash);
	return vip;
}

/* The client's remembered backend, if affinity holds and it still takes new flows. */
XLB_INLINE struct xlb_backend4 *xlb_affinity4_get(const struct xlb_affinity4_key *ak,
						  const struct xlb_vip_val *vip, __u64 now,
						  __u32 *backend_id)
{
	struct xlb_affinity4_val *av = xlb_lookup(&xlb_affinity4, ak);
	struct xlb_backend4 *be;
	__u32 bid;

	if (!av || now - av->last_seen_ns >= (__u64)vip->affinity_timeout_s * XLB_NS_PER_S)
		return NULL;
	bid = av->backend_id;
	be = xlb_lookup(&xlb_backends, &bid);
	if (!be || !be->addr || (be->flags & XLB_BACKEND_F_DRAIN))
		return NULL;
	av->last_seen_ns = now;
	*backend_id = bid;
	return be;
}

/* Picks the backend of a new flow (tuple_hash: its 5-tuple's xlb_ct4_key_hash);
 * returns its id and entry (or the table's copy of it), or NULL when the
 * VIP has no usable backend. With affinity, a client's new flows follow its
 * last one until affinity_timeout_s passes without a new flow. */
XLB_INLINE struct xlb_backend4 *xlb_backend_pick(const struct xlb_pkt4 *p,
						 const struct xlb_vip_val *vip, __u32 tuple_hash,
						 __u32 *backend_id)
{
	struct xlb_affinity4_key ak = { .client = p->tuple.saddr, .vip_id = vip->vip_id };
	struct xlb_backend4 *be, *copy;
	__u64 now = 0;
	__u32 id;

	if (vip->flags & XLB_VIP_F_AFFINITY) {
		now = xlb_now_ns();
		be = xlb_affinity4_get(&ak, vip, now, backend_id);
		if (be)
			return be;
	}
	id = xlb_maglev_pick(vip->vip_id, vip->table_class, vip->table_m,
			     xlb_flow_hash4(p, vip->hash_fields, tuple_hash), &copy);
	if (id == XLB_BACKEND_NONE)
		return NULL;
	*backend_id = id;
	/* The byte class's copy of the entry, in the table just read; else
	 * (a word class, or a copy the control plane could not make) the entry. */
	be = copy && copy->addr ? copy : xlb_lookup(&xlb_backends, &id);
	if (be && (vip->flags & XLB_VIP_F_AFFINITY)) {
		struct xlb_affinity4_val av = { .backend_id = *backend_id, .last_seen_ns = now };

		xlb_update(&xlb_affinity4, &ak, &av, BPF_ANY);
	}
	return be;
}

#endif /* XLB_SELECT_H */
