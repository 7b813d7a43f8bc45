/* SPDX-License-Identifier: MIT */
/*
 * stats.h — the per-VIP and per-backend counters (maps.h: xlb_vip_stats,
 * xlb_backend_stats; flows count per backend, VIPs only what no backend got): a row of ids per CPU in one plain array, so a counter's
 * address is one inlined computation (this CPU's row, then the id) and one
 * load, with no atomics: no other CPU writes this row.
 */
#ifndef XLB_STATS_H
#define XLB_STATS_H

#include "access.h"
#include "maps.h"

/* CPU `cpu`'s counters of `id` in `map`, whose rows are `ids` long; NULL for
 * an id past the row (it would be another CPU's). */
XLB_INLINE struct xlb_stats *xlb_stats_at(void *map, __u32 ids, __u32 cpu, __u32 id)
{
	__u32 i;

	if (id >= ids)
		return NULL;
	i = cpu * ids + id;
	return xlb_lookup(map, &i);
}

/* This CPU's counters of a VIP / a backend. */
#define xlb_vip_stats_of(id) xlb_stats_at(&xlb_vip_stats, xlb_vip_stats_ids, xlb_cpu(), (id))
#define xlb_backend_stats_of(id) xlb_stats_at(&xlb_backend_stats, xlb_backend_stats_ids, xlb_cpu(), (id))

XLB_INLINE void xlb_stats_add(struct xlb_stats *s, __u32 len, int reply, int new_conn)
{
	if (!s)
		return;
	if (reply) {
		s->reply_packets += 1;
		s->reply_bytes += len;
	} else {
		s->packets += 1;
		s->bytes += len;
	}
	s->new_conns += new_conn;
}

/* Counts a packet of an established or new flow in its backend's row only:
 * one row touched per packet (with 10^4 VIPs x 64 backends each row access is
 * a cache and TLB miss). A backend id belongs to exactly one VIP, so the
 * control plane derives a VIP's packets, bytes and new connections from its
 * backends' rows (src/dataplane.ts vipTotals); the VIP's own row holds what
 * has no backend (drops, rejects: xlb_no_backend) and, in its
 * packets..new_conns fields, the final counts of backends it no longer has,
 * written by the control plane alone. */
XLB_INLINE void xlb_flow_stats(__u32 backend_id, __u32 len, int reply, int new_conn)
{
	xlb_stats_add(xlb_backend_stats_of(backend_id), len, reply, new_conn);
}

#endif /* XLB_STATS_H */
