/* SPDX-License-Identifier: MIT */
/*
 * select6.h — VIP lookup and backend selection for IPv6, as select.h does for
 * IPv4: (scope, address, port, protocol) then the IP-only VIP; the flow hash
 * indexes the VIP's Maglev table (maglev.h; shared with IPv4: one id space), and
 * the backend id indexes xlb_backends6.
 */
#ifndef XLB_SELECT6_H
#define XLB_SELECT6_H

#include "access.h"
#include "maps.h"
#include "hash.h"
#include "parse6.h"
#include "maglev.h"
#include "stats.h"

XLB_INLINE struct xlb_vip_val *xlb_vip6_find(const struct xlb_pkt6 *p, const struct xlb_iface *ifc)
{
	struct xlb_vip6_key vk = {
		.port = p->tuple.dport,
		.proto = p->tuple.proto,
		.scope = ifc->scope,
	};
	struct xlb_vip_val *vip;

	xlb_addr6_copy(vk.addr, p->tuple.daddr);
	vip = xlb_lookup(&xlb_vip6, &vk);
	if (vip || !(ifc->flags & XLB_IFACE_F_IP_ONLY))
		return vip;
	vk.port = 0;
	vk.proto = 0;
	return xlb_lookup(&xlb_vip6, &vk);
}

XLB_INLINE __u32 xlb_flow_hash6(const struct xlb_pkt6 *p, __u8 fields)
{
	if (!fields)
		return xlb_hash_tuple6(p->tuple.saddr, p->tuple.daddr, p->tuple.sport,
				       p->tuple.dport, p->tuple.proto);
	return xlb_hash_fields6(p->tuple.saddr, p->tuple.daddr, p->tuple.sport, p->tuple.dport,
				p->eth->h_source, p->eth->h_dest, fields);
}

XLB_INLINE int xlb_backend6_usable(const struct xlb_backend6 *be)
{
	return be && !xlb_addr6_is_zero(be->addr) && !(be->flags & XLB_BACKEND_F_DRAIN);
}

/* Picks the backend of a new IPv6 flow (see xlb_backend_pick). */
XLB_INLINE struct xlb_backend6 *xlb_backend6_pick(const struct xlb_pkt6 *p,
						  const struct xlb_vip_val *vip, __u32 *backend_id)
{
	struct xlb_affinity6_key ak = { .vip_id = vip->vip_id };
	struct xlb_backend4 *copy;
	struct xlb_backend6 *be;
	__u64 now = 0;
	__u32 id;

	xlb_addr6_copy(ak.client, p->tuple.saddr);
	if (vip->flags & XLB_VIP_F_AFFINITY) {
		struct xlb_affinity4_val *av = xlb_lookup(&xlb_affinity6, &ak);

		now = xlb_now_ns();
		if (av && now - av->last_seen_ns < (__u64)vip->affinity_timeout_s * XLB_NS_PER_S) {
			__u32 aid = av->backend_id;

			be = xlb_lookup(&xlb_backends6, &aid);
			if (xlb_backend6_usable(be)) {
				av->last_seen_ns = now;
				*backend_id = aid;
				return be;
			}
		}
	}
	id = xlb_maglev_pick(vip->vip_id, vip->table_class, vip->table_m, xlb_flow_hash6(p, vip->hash_fields),
			     &copy); /* (an IPv4 entry's copy: not this backend's) */
	if (id == XLB_BACKEND_NONE)
		return NULL;
	*backend_id = id;
	be = xlb_lookup(&xlb_backends6, &id);
	if (be && (vip->flags & XLB_VIP_F_AFFINITY)) {
		struct xlb_affinity4_val av = { .backend_id = *backend_id, .last_seen_ns = now };

		xlb_update(&xlb_affinity6, &ak, &av, BPF_ANY);
	}
	return be;
}

#endif /* XLB_SELECT6_H */
