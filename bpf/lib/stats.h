/* SPDX-License-Identifier: MIT */
/*
 * stats.h — the per-VIP and per-backend counters (maps.h: xlb_vip_stats,
 * xlb_backend_stats; flows count per backend, VIPs only what no backend got): a row of ids per CPU in one plain array, so a counter's
 * address is one inlined computation (this CPU's row, then the id) and one
 * load, the data path adding into rows plainly: no other CPU writes this row
 * (the control plane's folds, on this CPU in process context, add atomically).
 * Packets of the established tier count in their conntrack entry first, the
 * others (new flows, the new-flow tier) in this CPU's ring of the flow log
 * first (below).
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

/* One packet of `len` bytes, as added to pend. */
XLB_INLINE __u64 xlb_pend_one(__u32 len)
{
	return (1ull << XLB_CT_PEND_PKT_SHIFT) | len;
}

/* Adds `pend`'s packets and bytes to s (reply: to the reply counters).
 * atomic (a constant at each call): each add one atomic instruction, for the
 * control plane's fold in process context, where the data path may interrupt
 * this CPU between a load and a store of the row; the data path adds plainly. */
XLB_INLINE void xlb_stats_add_pend(struct xlb_stats *s, __u64 pend, int reply, int atomic)
{
	__u64 packets = pend >> XLB_CT_PEND_PKT_SHIFT, bytes = pend & XLB_CT_PEND_BYTES_MASK;
	__u64 *p, *b;

	if (!s)
		return;
	p = reply ? &s->reply_packets : &s->packets;
	b = reply ? &s->reply_bytes : &s->bytes;
	if (atomic) {
		__sync_fetch_and_add(p, packets);
		__sync_fetch_and_add(b, bytes);
	} else {
		*p += packets;
		*b += bytes;
	}
}

/* ---- packets of the new-flow tier: counted through the flow log ----
 *
 * A flow's packets count in its backend's row only. A backend id belongs to
 * exactly one VIP, so the control plane derives a VIP's packets, bytes and
 * new connections from its backends' rows (src/dataplane.ts vipTotals); the
 * VIP's own row holds what has no backend (drops, rejects: xlb_no_backend)
 * and, in its packets..new_conns fields, the final counts of backends it no
 * longer has, written by the control plane alone.
 *
 * With 10^4 VIPs x 64 backends a backend's row is a cache miss, which the
 * conntrack insert's compare-and-swap (a full barrier) then waits for: a new
 * flow's first packet, and each packet of the new-flow tier (the handshake),
 * would pay one. So these packets go to this CPU's ring in xlb_flow_log
 * instead (an entry and the head stored, on lines in cache) and reach the
 * rows in batches: when a ring is full its CPU folds it at once (the rows'
 * misses of up to XLB_FLOW_LOG_SLOTS independent adds overlap), and the
 * control plane folds every ring (xlb_flow_log_fold) before it reads the
 * rows, zeroes a reused id's or moves a removed backend's. A ring that is
 * full and being folded by another, or a CPU without a ring, counts straight
 * into the row. Established flows count in their conntrack entry (below). */

/* Adds the packet of log entry e (atomic: as for xlb_stats_add_pend) to this
 * CPU's row of its backend. */
XLB_INLINE void xlb_flow_log_count(__u64 e, int atomic)
{
	struct xlb_stats *s = xlb_backend_stats_of((__u32)(e >> XLB_FLOW_LOG_ID_SHIFT));

	if (!s)
		return;
	xlb_stats_add_pend(s, xlb_pend_one(e & XLB_FLOW_LOG_BYTES_MASK), !!(e & XLB_FLOW_LOG_F_REPLY), atomic);
	if (!(e & XLB_FLOW_LOG_F_NEW))
		return;
	if (atomic)
		__sync_fetch_and_add(&s->new_conns, 1);
	else
		s->new_conns += 1;
}

/* Folds ring l's entries into this CPU's rows (atomic: the control plane's
 * fold; plain: the data plane's, into its own rows), l's lock held, and
 * releases it; returns how many. The slots are zeroed before the tail moves
 * past them (an exchange: a full barrier), so the ring's CPU never writes a
 * slot a fold has still to clear; an entry whose store this CPU does not see
 * yet (0) ends the fold: the next takes it. */
XLB_INLINE __u32 xlb_flow_log_take(struct xlb_flow_log *l, int atomic)
{
	__u64 t, h, *slot, e;
	__u32 i, n = 0;

	t = *(volatile __u64 *)&l->tail;
	h = *(volatile __u64 *)&l->head;
	/* The rows' lines first, loads alone: their misses overlap (as many as
	 * the core keeps in flight), where the adds below would queue stores
	 * behind each one. */
	for (i = 0; i < XLB_FLOW_LOG_SLOTS && t + i < h; i++) {
		struct xlb_stats *s;

		e = *(volatile __u64 *)&l->ent[(t + i) & (XLB_FLOW_LOG_SLOTS - 1)];
		s = xlb_backend_stats_of((__u32)(e >> XLB_FLOW_LOG_ID_SHIFT));
		if (s) {
			xlb_touch(&s->packets);
			xlb_touch(&s->new_conns);
		}
	}
	for (i = 0; i < XLB_FLOW_LOG_SLOTS && t + i < h; i++) {
		slot = &l->ent[(t + i) & (XLB_FLOW_LOG_SLOTS - 1)];
		e = *(volatile __u64 *)slot;
		if (!e)
			break;
		xlb_flow_log_count(e, atomic);
		*slot = 0;
		n++;
	}
	__sync_lock_test_and_set(&l->tail, t + n);
	__sync_lock_test_and_set(&l->lock, 0); /* (the exchange is a full barrier as the JITs emit it) */
	return n;
}

/* One attempt at ring l's lock: 1 when taken. */
XLB_INLINE int xlb_flow_log_try_lock(struct xlb_flow_log *l)
{
	return !*(volatile __u64 *)&l->lock && __sync_val_compare_and_swap(&l->lock, 0, 1) == 0;
}

/* The data plane's fold of CPU cpu's full ring (cpu: the CPU running it);
 * returns the entries folded, 0 when another holds the lock (the packet then
 * counts in the row; the next tries again). A global function: verified
 * once, not at each of xlb_flow_stats's callers. */
__attribute__((noinline)) int xlb_flow_log_drain(__u32 cpu)
{
	struct xlb_flow_log *l = xlb_lookup(&xlb_flow_log, &cpu);

	if (!l || !xlb_flow_log_try_lock(l))
		return 0;
	return xlb_flow_log_take(l, 0);
}

/* Counts a packet of a flow for its backend (a new flow's first packet:
 * new_conn; a packet of the new-flow tier; reply: a backend's): into this
 * CPU's ring, which a packet finding it full folds first, or straight into
 * the row when it stays full (another is folding it). */
XLB_INLINE void xlb_flow_stats(__u32 backend_id, __u32 len, int reply, int new_conn)
{
	__u32 cpu = xlb_cpu();
	struct xlb_flow_log *l = xlb_lookup(&xlb_flow_log, &cpu);
	__u64 e = (__u64)backend_id << XLB_FLOW_LOG_ID_SHIFT | (reply ? XLB_FLOW_LOG_F_REPLY : 0) |
		  (new_conn ? XLB_FLOW_LOG_F_NEW : 0) | (len & XLB_FLOW_LOG_BYTES_MASK);
	__u64 h, used, *slot;

	if (l && e) {
		h = l->head;
		used = h - *(volatile __u64 *)&l->tail;
		if (used >= XLB_FLOW_LOG_SLOTS) { /* full: fold it first (the tail moves) */
			xlb_flow_log_drain(cpu);
			used = h - *(volatile __u64 *)&l->tail;
		}
		slot = &l->ent[h & (XLB_FLOW_LOG_SLOTS - 1)];
		if (used < XLB_FLOW_LOG_SLOTS && !*slot) {
			*slot = e;
			*(volatile __u64 *)&l->head = h + 1;
			return;
		}
	}
	xlb_stats_add(xlb_backend_stats_of(backend_id), len, reply, new_conn);
}

/* ---- established flows: counted in their conntrack entry ----
 *
 * With 10^4 VIPs an established flow's backend row is evicted from the cache
 * between two of its packets (the packets of other flows pass in between),
 * so a packet of the established tier counts in its own entry instead (whose
 * cache line the lookup has just loaded): one atomic add to pend
 * (XLB_CT_PEND_*; atomic because the control plane's fold takes the word from
 * another CPU). The counts move to this CPU's row of the backend when the
 * entry's clock is refreshed (xlb_ct4_hit, xlb_ct6_hit: at most once per
 * XLB_CT_REFRESH_NS of a sending flow), and when the control plane runs
 * xlb_ct4_fold / xlb_ct6_fold (xlb.bpf.c) before it reads the rows or removes
 * a family's entries. What
 * an LRU eviction takes with an entry (its flow's last second at most) is not
 * counted, nor what a promotion racing on two CPUs overwrites (BPF_ANY). The
 * data path's plain adds into the row assume it is not preempted by the fold
 * on its CPU (softirq context; not PREEMPT_RT). */

/* A packet of an established entry (its pend word) that is not refreshed:
 * counted in it. */
XLB_INLINE void xlb_ct_count(__u64 *pend, __u32 len)
{
	__sync_fetch_and_add(pend, xlb_pend_one(len));
}

/* A packet of an established entry being refreshed: the entry's pending
 * counts and this packet go to this CPU's row of its backend (data path). */
XLB_INLINE void xlb_ct_count_fold(__u64 *pend, __u32 backend_id, int reply, __u32 len)
{
	__u64 n = __sync_lock_test_and_set(pend, 0);

	xlb_stats_add_pend(xlb_backend_stats_of(backend_id), n + xlb_pend_one(len), reply, 0);
}

/* ---- the control plane's fold (xlb_ct4_fold, xlb_ct6_fold in xlb.bpf.c) ---- */

/* One entry's pending counts to this CPU's row of its backend; returns 1 when
 * it had some. Read first: an entry without counts is not written. */
XLB_INLINE __u32 xlb_ct_fold_one(__u64 *pend, __u32 backend_id, int reply)
{
	__u64 n;

	if (!*(volatile __u64 *)pend)
		return 0;
	n = __sync_lock_test_and_set(pend, 0);
	xlb_stats_add_pend(xlb_backend_stats_of(backend_id), n, reply, 1);
	return 1;
}

static long xlb_ct4_fold_cb(void *map, const struct xlb_ct4_key *k, struct xlb_ct4_val *v, void *ctx)
{
	*(__u32 *)ctx += xlb_ct_fold_one(&v->pend, v->backend_id, v->dir == XLB_DIR_REV);
	return 0;
}

static long xlb_ct6_fold_cb(void *map, const struct xlb_ct6_key *k, struct xlb_ct6_val *v, void *ctx)
{
	*(__u32 *)ctx += xlb_ct_fold_one(&v->pend, v->backend_id, v->dir == XLB_DIR_REV);
	return 0;
}

/* The control plane's fold of every CPU's ring (xlb_flow_log_fold, xlb.bpf.c)
 * into this CPU's rows; returns the entries folded. */
static long xlb_flow_log_fold_cb(__u64 i, void *ctx)
{
	__u32 cpu = (__u32)i, k;
	struct xlb_flow_log *l = xlb_lookup(&xlb_flow_log, &cpu);

	if (!l)
		return 1;
	/* A ring another holds is being folded into rows this fold's caller is
	 * about to read, move or zero: wait for it (its adds are visible to
	 * whoever takes the lock next), and report it if it stays held. */
	for (k = 0; k < XLB_FLOW_LOG_LOCK_TRIES; k++) {
		if (xlb_flow_log_try_lock(l)) {
			*(__u32 *)ctx += xlb_flow_log_take(l, 1);
			return 0;
		}
	}
	*(__u32 *)ctx |= XLB_FLOW_LOG_BUSY;
	return 0;
}

/* Returns the entries folded, with XLB_FLOW_LOG_BUSY when a ring stayed
 * locked through XLB_FLOW_LOG_LOCK_TRIES attempts (the caller runs it again). */
XLB_INLINE int xlb_flow_log_fold_run(void)
{
	struct bpf_map___xlb *m = (void *)&xlb_flow_log;
	__u32 folded = 0;

	/* (opaque, as in ctnew.h: the field read at an offset of the map's pointer) */
	asm volatile("" : "+r"(m));
	bpf_loop(m->max_entries, xlb_flow_log_fold_cb, &folded, 0);
	return folded;
}

/* Moves every IPv4 established entry's pending counts to this CPU's rows.
 * Returns the number of entries that had some. */
XLB_INLINE int xlb_ct4_fold_run(void)
{
	__u32 folded = 0;

	bpf_for_each_map_elem(&xlb_ct4, xlb_ct4_fold_cb, &folded, 0);
	return folded;
}

/* The same for the IPv6 established tier. */
XLB_INLINE int xlb_ct6_fold_run(void)
{
	__u32 folded = 0;

	bpf_for_each_map_elem(&xlb_ct6, xlb_ct6_fold_cb, &folded, 0);
	return folded;
}

#endif /* XLB_STATS_H */
