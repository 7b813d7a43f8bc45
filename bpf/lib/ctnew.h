/* SPDX-License-Identifier: MIT */
/*
 * ctnew.h — the IPv4 new-flow tier of conntrack as a set-associative table:
 * an array of buckets of XLB_CT_NEW_WAYS entries, each bucket under its own
 * lock. An entry lives in the bucket of its flow's client side: the hash of
 * (source address, source port, protocol) of a forward key, of (destination
 * address, destination port, protocol) of a reverse one (xlb_ctn4_home). A
 * flow's two entries thus share a bucket (one lock, one cache miss per new
 * flow), unless source NAT gives its reverse key another client side. A
 * packet's key is looked for in both buckets it may live in (the forward
 * one's, the reverse one's; the second is the same few buckets for every
 * flow of a VIP or a backend, so it stays in cache). An insert into a full
 * bucket replaces the entries seen longest ago (least recently used within
 * the bucket). Every operation is array lookups and a short locked scan: no
 * allocation, no shared LRU list to rotate, where a kernel LRU hash insert
 * costs ≈ 300 ns.
 *
 * The lock is a bit of the bucket's control word (XLB_CTN_LOCKED beside the
 * ways-in-use bits), taken with one compare-and-swap and released with one
 * exchange that also publishes the ways in use: a pair costs ≈ 2 ns where
 * bpf_spin_lock / bpf_spin_unlock (two helper calls, interrupts saved and
 * restored) cost ≈ 45 ns on a 2-vCPU VM. A writer that finds the bucket
 * locked tries XLB_CTN_LOCK_TRIES more times, then gives up (counted
 * XLB_G_CT_BUSY): nothing ever waits unbounded, and a holder never calls a
 * helper. The control plane edits buckets through xlb_ct4_new_edit (a syscall
 * program, the same lock). Values are copied out under the lock (never a
 * pointer into a bucket another CPU may be rewriting). No operation holds
 * more than one lock.
 */
#ifndef XLB_CTNEW_H
#define XLB_CTNEW_H

#include <linux/errno.h>
#include "access.h"
#include "maps.h"
#include "hash.h"
#include "ctstate.h"

#define XLB_CTN_NONE (-1)
#define XLB_CTN_LOCK_TRIES 256 /* more attempts at a locked bucket's lock before giving up */

/* The home of an entry of key k and direction dir: the index of the bucket
 * it lives in, its flow's client side's hash (xlb_hash_side4) modulo the
 * bucket count. Computed once per key (the modulo is a division); every
 * other operation takes the index. */
XLB_INLINE __u32 xlb_ctn4_home(const struct xlb_ct4_key *k, __u8 dir)
{
	struct bpf_map___xlb *m = (void *)&xlb_ct4_new;
	__u32 h = dir == XLB_DIR_REV ? xlb_hash_side4(k->daddr, k->dport, k->proto)
				     : xlb_hash_side4(k->saddr, k->sport, k->proto);

	__u32 n;

	/* (opaque, so that the field is read at an offset of the map's pointer,
	 * never from the pointer moved by it: the verifier allows only the first) */
	asm volatile("" : "+r"(m));
	n = m->max_entries;
	return n ? h % n : 0;
}

/* The bucket of home (xlb_ctn4_home); NULL past the array. */
XLB_INLINE struct xlb_ct4_bucket *xlb_ctn4_bucket(__u32 home)
{
	return xlb_lookup(&xlb_ct4_new, &home);
}

/* Starts loading the bucket of home (its first line: control word and the
 * first way) for an access a little later. */
XLB_INLINE void xlb_ctn4_prefetch(__u32 home)
{
	struct xlb_ct4_bucket *b = xlb_ctn4_bucket(home);

	if (b)
		xlb_touch(&b->ctl);
}

/* The bucket's ways in use as last published (no lock needed to read them). */
XLB_INLINE __u32 xlb_ctn4_used(const struct xlb_ct4_bucket *b)
{
	return *(const volatile __u64 *)&b->ctl & XLB_CTN_USED_MASK;
}

/* One attempt at b's lock: 1 when taken. */
XLB_INLINE int xlb_ctn4_try_lock(struct xlb_ct4_bucket *b)
{
	__u64 c = *(volatile __u64 *)&b->ctl;

	return !(c & XLB_CTN_LOCKED) && __sync_val_compare_and_swap(&b->ctl, c, c | XLB_CTN_LOCKED) == c;
}

/* The attempts after a first one failed, through bpf_loop (a helper call:
 * only contention pays for it; the verifier checks its callback once, where
 * an open loop would be walked at every call site). Out of line. Returns 1
 * with the lock held, else 0 (counted). */
struct xlb_ctn4_wait {
	struct xlb_ct4_bucket *b;
	int taken;
};

static long xlb_ctn4_wait_try(__u64 i, void *ctx)
{
	struct xlb_ctn4_wait *w = ctx;

	w->taken = xlb_ctn4_try_lock(w->b);
	return w->taken; /* 1 stops the loop */
}

XLB_NOINLINE int xlb_ctn4_lock_wait(struct xlb_ct4_bucket *b)
{
	struct xlb_ctn4_wait w = { .b = b, .taken = 0 };

	bpf_loop(XLB_CTN_LOCK_TRIES, xlb_ctn4_wait_try, &w, 0);
	if (w.taken)
		return 1;
	xlb_count(XLB_G_CT_BUSY);
	return 0;
}

/* Takes b's lock; 0 when another writer kept it (the caller gives up). */
XLB_INLINE int xlb_ctn4_lock(struct xlb_ct4_bucket *b)
{
	return xlb_ctn4_try_lock(b) || xlb_ctn4_lock_wait(b);
}

/* Locks the bucket of home and returns it, its ways in use in *used; NULL
 * with *err -ENOENT (no such bucket) or -EBUSY (it stayed locked). */
XLB_INLINE struct xlb_ct4_bucket *xlb_ctn4_open(__u32 home, __u32 *used, int *err)
{
	struct xlb_ct4_bucket *b = xlb_ctn4_bucket(home);

	if (!b) {
		*err = -ENOENT;
		return NULL;
	}
	if (!xlb_ctn4_lock(b)) {
		*err = -EBUSY;
		return NULL;
	}
	*used = xlb_ctn4_used(b);
	return b;
}

/* Releases b's lock, publishing used as its ways in use. The exchange is a
 * full barrier: what was written under the lock is visible before. */
XLB_INLINE void xlb_ctn4_unlock(struct xlb_ct4_bucket *b, __u32 used)
{
	__sync_lock_test_and_set(&b->ctl, (__u64)(used & XLB_CTN_USED_MASK));
}

XLB_INLINE int xlb_ct4_key_eq(const struct xlb_ct4_key *a, const struct xlb_ct4_key *b)
{
	const __u64 *x = (const __u64 *)a, *y = (const __u64 *)b;

	return x[0] == y[0] && x[1] == y[1];
}

/* The way of b holding k among the ways used, or XLB_CTN_NONE. Call with the
 * bucket locked; without it a hit only says where to lock and look again
 * (xlb_ctn4_locate). */
XLB_INLINE int xlb_ctn4_find(const struct xlb_ct4_bucket *b, __u32 used, const struct xlb_ct4_key *k)
{
	int i;

#pragma unroll
	for (i = 0; i < XLB_CT_NEW_WAYS; i++)
		if ((used & (1u << i)) && xlb_ct4_key_eq(&b->way[i].key, k))
			return i;
	return XLB_CTN_NONE;
}

/* The way a new key takes: a free one, else the one seen longest ago; never
 * way skip (the one a pair's first entry took; -1: none). Call with the
 * bucket locked. */
XLB_INLINE int xlb_ctn4_victim(const struct xlb_ct4_bucket *b, __u32 used, int skip)
{
	int i, v = skip == 0 ? 1 : 0;

#pragma unroll
	for (i = 0; i < XLB_CT_NEW_WAYS; i++) {
		if (i == skip)
			continue;
		if (!(used & (1u << i)))
			return i;
		if (b->way[i].val.last_seen_ns < b->way[v].val.last_seen_ns)
			v = i;
	}
	return v;
}

/* Whether k is in the bucket of home, looked at without the lock. */
XLB_INLINE int xlb_ctn4_seen_in(const struct xlb_ct4_key *k, __u32 home)
{
	struct xlb_ct4_bucket *b = xlb_ctn4_bucket(home);

	return b && xlb_ctn4_find(b, xlb_ctn4_used(b), k) != XLB_CTN_NONE;
}

/* Looks for k without the lock in both buckets it may live in: hf (its home
 * as a forward key), hr (as a reverse one). 0 means the tier does not hold k
 * (a racing insert of k on another CPU is a miss either way); 1 that a locked
 * look is worth its cost, in the bucket of *home. */
XLB_INLINE int xlb_ctn4_locate(const struct xlb_ct4_key *k, __u32 hf, __u32 hr, __u32 *home)
{
	if (xlb_ctn4_seen_in(k, hf)) {
		*home = hf;
		return 1;
	}
	if (xlb_ctn4_seen_in(k, hr)) {
		*home = hr;
		return 1;
	}
	return 0;
}

/* Writes k -> v into way i of b (locked); returns the ways used after. */
XLB_INLINE __u32 xlb_ctn4_store(struct xlb_ct4_bucket *b, __u32 used, int i, const struct xlb_ct4_key *k,
				const struct xlb_ct4_val *v)
{
	if (i < 0 || i >= XLB_CT_NEW_WAYS)
		return used;
	b->way[i].key = *k;
	b->way[i].val = *v;
	return used | (1u << i);
}

/* Records k -> v in the bucket of home (k's). With noexist, an existing k is
 * left alone and -EEXIST returned. Returns 0, -EEXIST, -ENOENT (no bucket) or
 * -EBUSY (the bucket stayed locked). Out of line: the balancing path that
 * calls it is deepest in the 512-byte stack budget. */
XLB_NOINLINE int xlb_ctn4_put(const struct xlb_ct4_key *k, __u32 home, const struct xlb_ct4_val *v, int noexist)
{
	__u32 used = 0;
	int i, err = 0;
	struct xlb_ct4_bucket *b = xlb_ctn4_open(home, &used, &err);

	if (!b)
		return err;
	i = xlb_ctn4_find(b, used, k);
	if (i != XLB_CTN_NONE && noexist)
		err = -EEXIST;
	else
		used = xlb_ctn4_store(b, used, i != XLB_CTN_NONE ? i : xlb_ctn4_victim(b, used, -1), k, v);
	xlb_ctn4_unlock(b, used);
	return err;
}

/* Records both entries of a flow whose two keys share the bucket of home
 * (every flow without source NAT): one lock, two ways. Returns 0, -ENOENT or
 * -EBUSY. Out of line, as xlb_ctn4_put. */
XLB_NOINLINE int xlb_ctn4_put_pair(const struct xlb_ct4_key *k, const struct xlb_ct4_val *v,
				   const struct xlb_ct4_key *rk, const struct xlb_ct4_val *rv, __u32 home)
{
	__u32 used = 0;
	int i, j, err = 0;
	struct xlb_ct4_bucket *b = xlb_ctn4_open(home, &used, &err);

	if (!b)
		return err;
	i = xlb_ctn4_find(b, used, k);
	if (i == XLB_CTN_NONE)
		i = xlb_ctn4_victim(b, used, -1);
	used = xlb_ctn4_store(b, used, i, k, v);
	j = xlb_ctn4_find(b, used, rk);
	if (j == XLB_CTN_NONE || j == i)
		j = xlb_ctn4_victim(b, used, i);
	used = xlb_ctn4_store(b, used, j, rk, rv);
	xlb_ctn4_unlock(b, used);
	return 0;
}

/* A packet of flow k, which xlb_ctn4_locate saw in the bucket of home:
 * refreshes the entry's clock and TCP state and copies the entry to
 * out. Returns 1 when k is present, 0 when not (gone since), -EBUSY when its
 * bucket stayed locked. */
XLB_INLINE int xlb_ctn4_touch(const struct xlb_ct4_key *k, __u32 home, __u8 tcp_flags, struct xlb_ct4_val *out)
{
	__u64 now = xlb_now_ns(); /* (no helper call under the lock) */
	struct xlb_ct4_val *v;
	__u32 used = 0;
	int i, err = 0;
	struct xlb_ct4_bucket *b = xlb_ctn4_open(home, &used, &err);

	if (!b)
		return err == -EBUSY ? err : 0;
	i = xlb_ctn4_find(b, used, k);
	if (i >= 0 && i < XLB_CT_NEW_WAYS) {
		v = &b->way[i].val;
		v->last_seen_ns = now;
		if (k->proto == IPPROTO_TCP)
			v->state = xlb_ct_next_state(v->state, v->dir, tcp_flags);
		*out = *v;
	}
	xlb_ctn4_unlock(b, used);
	return i != XLB_CTN_NONE;
}

/* One locked operation on k's entry: copies it to val (GET), removes it
 * (DELETE) or replaces its value with val (SET). Returns 1 when k was
 * present, 0 when not, or -EBUSY. */
XLB_INLINE int xlb_ctn4_edit(const struct xlb_ct4_key *k, __u32 op, struct xlb_ct4_val *val)
{
	struct xlb_ct4_bucket *b;
	__u32 home, used = 0;
	int i, err = 0;

	if (!xlb_ctn4_locate(k, xlb_ctn4_home(k, XLB_DIR_FWD), xlb_ctn4_home(k, XLB_DIR_REV), &home))
		return 0;
	b = xlb_ctn4_open(home, &used, &err);
	if (!b)
		return err == -EBUSY ? err : 0;
	i = xlb_ctn4_find(b, used, k);
	if (i >= 0 && i < XLB_CT_NEW_WAYS) {
		if (op == XLB_CTN_OP_GET)
			*val = b->way[i].val;
		else if (op == XLB_CTN_OP_SET)
			b->way[i].val = *val;
		else if (op == XLB_CTN_OP_DELETE)
			used &= ~(1u << i);
	}
	xlb_ctn4_unlock(b, used);
	return i != XLB_CTN_NONE;
}

/* Copies k's entry to out without touching it. Returns 1 when present. */
XLB_INLINE int xlb_ctn4_get(const struct xlb_ct4_key *k, struct xlb_ct4_val *out)
{
	return xlb_ctn4_edit(k, XLB_CTN_OP_GET, out) == 1;
}

/* Keeps the other direction ok -> ov in step (ohome: ok's home, xlb_ctn4_home):
 * its state follows ov's, and a missing entry (replaced in its bucket) is
 * recreated. Returns 1 when it was recreated. */
XLB_INLINE int xlb_ctn4_sync(const struct xlb_ct4_key *ok, __u32 ohome, const struct xlb_ct4_val *ov)
{
	__u32 used = 0;
	int i, err = 0;
	struct xlb_ct4_bucket *b = xlb_ctn4_open(ohome, &used, &err);

	if (!b)
		return 0;
	i = xlb_ctn4_find(b, used, ok);
	if (i >= 0 && i < XLB_CT_NEW_WAYS)
		b->way[i].val.state = ov->state;
	else
		used = xlb_ctn4_store(b, used, xlb_ctn4_victim(b, used, -1), ok, ov);
	xlb_ctn4_unlock(b, used);
	return i == XLB_CTN_NONE;
}

/* Removes k (a flow moved to the established tier; home: its home). */
XLB_INLINE void xlb_ctn4_delete(const struct xlb_ct4_key *k, __u32 home)
{
	__u32 used = 0;
	int i, err = 0;
	struct xlb_ct4_bucket *b = xlb_ctn4_open(home, &used, &err);

	if (!b)
		return;
	i = xlb_ctn4_find(b, used, k);
	if (i >= 0 && i < XLB_CT_NEW_WAYS)
		used &= ~(1u << i);
	xlb_ctn4_unlock(b, used);
}

#endif /* XLB_CTNEW_H */
