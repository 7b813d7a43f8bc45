/* SPDX-License-Identifier: MIT */
/*
 * select.h — VIP lookup and backend selection. The VIP is looked up by
 * (scope, address, port, protocol), then as an IP-only VIP (any protocol) when
 * the interface's scope has any.
 * The flow hash indexes the VIP's Maglev table; the table's slot 0 carries its
 * own size M, so a table swapped in mid-lookup is never read with a stale M.
 */
#ifndef XLB_SELECT_H
#define XLB_SELECT_H

#include "access.h"
#include "maps.h"
#include "hash.h"
#include "parse.h"

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

/* Picks the backend of a new flow; returns its id and entry, or NULL when the
 * VIP has no usable backend. */
XLB_INLINE struct xlb_backend4 *xlb_backend_pick(const struct xlb_pkt4 *p, __u32 vip_id,
						 __u32 *backend_id)
{
	__u32 hdr = XLB_MAGLEV_HDR_SLOT;
	__u32 *m, *bid, slot;
	void *table;

	table = xlb_lookup(&xlb_maglev, &vip_id);
	if (!table)
		return NULL;
	m = xlb_lookup(table, &hdr);
	if (!m || *m == 0)
		return NULL;
	slot = XLB_MAGLEV_FIRST_SLOT +
	       xlb_hash_tuple4(p->tuple.saddr, p->tuple.daddr, p->tuple.sport,
			       p->tuple.dport, p->tuple.proto) % *m;
	bid = xlb_lookup(table, &slot);
	if (!bid || *bid == XLB_BACKEND_NONE)
		return NULL;
	*backend_id = *bid;
	return xlb_lookup(&xlb_backends, bid);
}

#endif /* XLB_SELECT_H */
