/* SPDX-License-Identifier: MIT */
/*
 * ctnew.h — the IPv4 new-flow tier of conntrack as a set-associative table:
 * an array of buckets of XLB_CT_NEW_WAYS entries, each bucket under its own
 * bpf_spin_lock. A key lives in the bucket its hash picks; an insert into a
 * full bucket replaces the entry seen longest ago (least recently used within
 * the bucket). Every operation is one array lookup and a short locked scan:
 * no allocation, no shared LRU list to rotate, so a new flow costs two
 * cache-resident writes where a kernel LRU hash insert costs ≈ 300 ns.
 * Values are copied out under the lock (never a pointer into a bucket another
 * CPU may be rewriting). Two keys of a flow may share a bucket: no operation
 * holds more than one lock.
 */
#ifndef XLB_CTNEW_H
#define XLB_CTNEW_H

#include <linux/errno.h>
#include "access.h"
#include "maps.h"
#include "hash.h"
#include "ctstate.h"

#define XLB_CTN_NONE (-1)

/* The map's own bucket count (max_entries, set by the control plane before
 * load), read through BTF so the index always fits the array. */
struct bpf_map___xlb {
	__u32 max_entries;
} __attribute__((preserve_access_index));

/* The bucket of a key whose hash (xlb_ct4_key_hash) is hash. */
XLB_INLINE struct xlb_ct4_bucket *xlb_ctn4_bucket_of(__u32 hash)
{
	__u32 n = ((struct bpf_map___xlb *)&xlb_ct4_new)->max_entries;
	__u32 i;

	if (!n)
		return NULL;
	i = hash % n;
	return xlb_lookup(&xlb_ct4_new, &i);
}

XLB_INLINE struct xlb_ct4_bucket *xlb_ctn4_bucket(const struct xlb_ct4_key *k)
{
	return xlb_ctn4_bucket_of(xlb_ct4_key_hash(k));
}

/* Starts loading the bucket of hash (its first line: lock, used mask, the
 * first way) for an access a little later. The lock itself cannot be read. */
XLB_INLINE void xlb_ctn4_prefetch(__u32 hash)
{
	struct xlb_ct4_bucket *b = xlb_ctn4_bucket_of(hash);

	if (b)
		xlb_touch(&b->used);
}

XLB_INLINE int xlb_ct4_key_eq(const struct xlb_ct4_key *a, const struct xlb_ct4_key *b)
{
	const __u64 *x = (const __u64 *)a, *y = (const __u64 *)b;

	return x[0] == y[0] && x[1] == y[1];
}

/* The way holding k, or XLB_CTN_NONE. Call with the bucket locked, or
 * without it only to learn that k is absent. */
XLB_INLINE int xlb_ctn4_find(const struct xlb_ct4_bucket *b, const struct xlb_ct4_key *k)
{
	int i;

#pragma unroll
	for (i = 0; i < XLB_CT_NEW_WAYS; i++)
		if ((b->used & (1u << i)) && xlb_ct4_key_eq(&b->way[i].key, k))
			return i;
	return XLB_CTN_NONE;
}

/* The way a new key takes: a free one, else the one seen longest ago. Call
 * with the bucket locked. */
XLB_INLINE int xlb_ctn4_victim(const struct xlb_ct4_bucket *b)
{
	int i, v = 0;

#pragma unroll
	for (i = 0; i < XLB_CT_NEW_WAYS; i++) {
		if (!(b->used & (1u << i)))
			return i;
		if (b->way[i].val.last_seen_ns < b->way[v].val.last_seen_ns)
			v = i;
	}
	return v;
}

/* Writes k -> v into way i of b (locked). */
XLB_INLINE void xlb_ctn4_store(struct xlb_ct4_bucket *b, int i, const struct xlb_ct4_key *k,
			       const struct xlb_ct4_val *v)
{
	if (i < 0 || i >= XLB_CT_NEW_WAYS)
		return;
	b->way[i].key = *k;
	b->way[i].val = *v;
	b->used |= 1u << i;
}

/* Records k (whose hash is hash) -> v. With noexist, an existing k is left
 * alone and -EEXIST returned. Returns 0, -EEXIST or -ENOENT (no bucket). Out
 * of line: the balancing path that calls it is deepest in the 512-byte stack
 * budget. */
XLB_NOINLINE int xlb_ctn4_put(const struct xlb_ct4_key *k, __u32 hash, const struct xlb_ct4_val *v, int noexist)
{
	struct xlb_ct4_bucket *b = xlb_ctn4_bucket_of(hash);
	int i, err = 0;

	if (!b)
		return -ENOENT;
	bpf_spin_lock(&b->lock);
	i = xlb_ctn4_find(b, k);
	if (i != XLB_CTN_NONE && noexist)
		err = -EEXIST;
	else
		xlb_ctn4_store(b, i != XLB_CTN_NONE ? i : xlb_ctn4_victim(b), k, v);
	bpf_spin_unlock(&b->lock);
	return err;
}

/* A packet of flow k (whose hash is hash): refreshes the entry's clock and
 * TCP state and copies the entry to out. Returns 1 when k is present, else 0. */
XLB_INLINE int xlb_ctn4_touch(const struct xlb_ct4_key *k, __u32 hash, __u8 tcp_flags, struct xlb_ct4_val *out)
{
	struct xlb_ct4_bucket *b = xlb_ctn4_bucket_of(hash);
	struct xlb_ct4_val *v;
	__u64 now;
	int i;

	/* Most calls are misses (every new flow, traffic that is not balanced):
	 * they are answered without the lock. A miss racing with the insert of
	 * the same key on another CPU is a miss either way. */
	if (!b || xlb_ctn4_find(b, k) == XLB_CTN_NONE)
		return 0;
	now = xlb_now_ns(); /* (no helper call under the lock) */
	bpf_spin_lock(&b->lock);
	i = xlb_ctn4_find(b, k);
	if (i >= 0 && i < XLB_CT_NEW_WAYS) {
		v = &b->way[i].val;
		v->last_seen_ns = now;
		if (k->proto == IPPROTO_TCP)
			v->state = xlb_ct_next_state(v->state, v->dir, tcp_flags);
		*out = *v;
	}
	bpf_spin_unlock(&b->lock);
	return i != XLB_CTN_NONE;
}

/* Copies k's entry to out without touching it. Returns 1 when present. */
XLB_INLINE int xlb_ctn4_get(const struct xlb_ct4_key *k, struct xlb_ct4_val *out)
{
	struct xlb_ct4_bucket *b = xlb_ctn4_bucket(k);
	int i;

	if (!b || xlb_ctn4_find(b, k) == XLB_CTN_NONE)
		return 0;
	bpf_spin_lock(&b->lock);
	i = xlb_ctn4_find(b, k);
	if (i >= 0 && i < XLB_CT_NEW_WAYS)
		*out = b->way[i].val;
	bpf_spin_unlock(&b->lock);
	return i != XLB_CTN_NONE;
}

/* Keeps the other direction ok -> ov in step: its state follows ov's, and a
 * missing entry (replaced in its bucket) is recreated. Returns 1 when it was
 * recreated. */
XLB_INLINE int xlb_ctn4_sync(const struct xlb_ct4_key *ok, __u32 ohash, const struct xlb_ct4_val *ov)
{
	struct xlb_ct4_bucket *b = xlb_ctn4_bucket_of(ohash);
	int i;

	if (!b)
		return 0;
	bpf_spin_lock(&b->lock);
	i = xlb_ctn4_find(b, ok);
	if (i >= 0 && i < XLB_CT_NEW_WAYS)
		b->way[i].val.state = ov->state;
	else
		xlb_ctn4_store(b, xlb_ctn4_victim(b), ok, ov);
	bpf_spin_unlock(&b->lock);
	return i == XLB_CTN_NONE;
}

/* Removes k (a flow moved to the established tier). */
XLB_INLINE void xlb_ctn4_delete(const struct xlb_ct4_key *k, __u32 hash)
{
	struct xlb_ct4_bucket *b = xlb_ctn4_bucket_of(hash);
	int i;

	if (!b)
		return;
	bpf_spin_lock(&b->lock);
	i = xlb_ctn4_find(b, k);
	if (i >= 0 && i < XLB_CT_NEW_WAYS)
		b->used &= ~(1u << i);
	bpf_spin_unlock(&b->lock);
}

#endif /* XLB_CTNEW_H */
