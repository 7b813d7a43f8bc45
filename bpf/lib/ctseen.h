/* SPDX-License-Identifier: MIT */
/*
 * ctseen.h — a filter of the keys the IPv4 established tier (xlb_ct4) may
 * hold, so that the first packet of a new TCP flow (a SYN without ACK) skips
 * that tier's lookup. In a table of millions of entries the lookup is a cache
 * and TLB miss even when it finds nothing (≈ 100–200 ns of a new flow's
 * ≈ 520 ns, measured in place; a lookup that a false positive sends into a
 * table of 10^6 entries costs ≈ 600 ns); a copy of the filter is 1 MiB (both
 * share each cache line).
 *
 * Four bits per key hash (xlb_hash_tuple4), all in one 64-bit word: a blocked
 * Bloom filter, still one load per question. With 10^6 keys one bit per key
 * in the former 4 Mi bits answered "look" for 21 % of new keys (11 % at
 * 5 x 10^5); two bits in 8 Mi bits answered it for 4.9 %, four bits (the
 * third and fourth from a multiplicative hash of the key's hash) for 3.05 %
 * (simulated with random hashes and counted in place with 10^6 entries:
 * ct_skip). The data plane sets a
 * key's bits in both copies before and after it writes the key to xlb_ct4 and
 * never clears one: a clear bit means the tier does not hold the key (no false
 * negatives), all its bits set only mean "look" (a false positive costs the
 * lookup it saves).
 * Entries leave xlb_ct4 (LRU eviction, the garbage collector) without
 * clearing their bits, so the control plane rebuilds the filter from the
 * table (xlb_ct4_seen_rebuild, a program it runs): the rebuild clears the copy
 * not in use, marks in it every key the table holds, then makes it the copy
 * in use. A key written meanwhile is either in the table when the rebuild's
 * scan starts (the scan marks it) or marked by its writer after the clearing;
 * the copy in use stays a superset of the table throughout.
 *
 * Other packets look the established tier up first as before: for them a hit
 * is the common case. A SYN of a reused 5-tuple whose old flow is still in
 * the table finds its bits set and its old entry, as without the filter.
 */
#ifndef XLB_CTSEEN_H
#define XLB_CTSEEN_H

#include "access.h"
#include "maps.h"
#include "hash.h"
#include "parse.h"

/* Which copy of the filter answers lookups (a rebuild fills the other). */
#define XLB_CT_SEEN_COPY(i) ((i) & (XLB_CT_SEEN_FILTERS - 1))

/* The filter word of a key whose hash (xlb_ct4_key_hash) is h, and its four
 * bits in that word (some may coincide). */
XLB_INLINE struct xlb_ct_seen_word *xlb_ct4_seen_word_of(__u32 h, __u64 *bit)
{
	__u32 i = (h / XLB_CT_SEEN_WORD_BITS) & (XLB_CT_SEEN_WORDS - 1);
	__u32 g = h * XLB_CT_SEEN_MULT;

	*bit = (1ULL << (h % XLB_CT_SEEN_WORD_BITS)) | (1ULL << (h >> XLB_CT_SEEN_BIT2_SHIFT)) |
	       (1ULL << (g >> XLB_CT_SEEN_BIT3_SHIFT)) |
	       (1ULL << ((g >> XLB_CT_SEEN_BIT4_SHIFT) % XLB_CT_SEEN_WORD_BITS));
	return xlb_lookup(&xlb_ct4_seen, &i);
}

/* Sets the bits `bit` in copy c of w (an atomic OR: other CPUs set bits of the same word). */
XLB_INLINE void xlb_ct4_seen_set(struct xlb_ct_seen_word *w, __u32 c, __u64 bit)
{
	__u64 *x = &w->bits[XLB_CT_SEEN_COPY(c)];

	if ((*x & bit) != bit)
		__sync_fetch_and_or(x, bit);
}

XLB_INLINE void xlb_ct4_seen_set_all(struct xlb_ct_seen_word *w, __u64 bit)
{
	__u32 c;

	if (!w)
		return;
#pragma unroll
	for (c = 0; c < XLB_CT_SEEN_FILTERS; c++)
		xlb_ct4_seen_set(w, c, bit);
}

/* Writes k (whose hash is h) -> v into the established tier
 * (bpf_map_update_elem's result), marked in both copies of the filter before
 * the write (no lookup misses it while it is written) and after (a rebuild
 * that cleared the bit meanwhile does not lose it). */
XLB_INLINE long xlb_ct4_put_est(const struct xlb_ct4_key *k, __u32 h, const struct xlb_ct4_val *v, __u64 flags)
{
	__u64 bit;
	struct xlb_ct_seen_word *w = xlb_ct4_seen_word_of(h, &bit);
	long err;

	xlb_ct4_seen_set_all(w, bit);
	err = xlb_update(&xlb_ct4, k, v, flags);
	xlb_ct4_seen_set_all(w, bit);
	return err;
}

/* 0 when the established tier surely does not hold the key whose hash is h, else 1. */
XLB_INLINE int xlb_ct4_seen_maybe_h(__u32 h)
{
	__u32 zero = 0;
	struct xlb_ct_seen_ctl *c = xlb_lookup(&xlb_ct4_seen_ctl, &zero);
	struct xlb_ct_seen_word *w;
	__u64 bit;

	if (!c)
		return 1;
	w = xlb_ct4_seen_word_of(h, &bit);
	if (!w)
		return 1;
	return (w->bits[XLB_CT_SEEN_COPY(c->active)] & bit) == bit;
}

/* Whether the packet is a TCP SYN without ACK: the first packet of a flow,
 * which may skip the established tier (xlb_ct4_seen_maybe_h). */
XLB_INLINE int xlb_ct4_opens(const struct xlb_pkt4 *p)
{
	return p->tuple.proto == IPPROTO_TCP &&
	       (p->tcp_flags & (XLB_TCP_FLAG_SYN | XLB_TCP_FLAG_ACK)) == XLB_TCP_FLAG_SYN;
}

/* ---- the rebuild (xlb_ct4_seen_rebuild in xlb.bpf.c) ---- */

struct xlb_ct_seen_rebuild {
	__u32 copy;   /* the copy being rebuilt */
	__u32 marked; /* keys marked */
};

static long xlb_ct4_seen_clear_cb(__u32 i, void *ctx)
{
	const struct xlb_ct_seen_rebuild *r = ctx;
	struct xlb_ct_seen_word *w = xlb_lookup(&xlb_ct4_seen, &i);

	if (w)
		w->bits[XLB_CT_SEEN_COPY(r->copy)] = 0;
	return 0;
}

static long xlb_ct4_seen_mark_cb(void *map, const struct xlb_ct4_key *k, void *v, void *ctx)
{
	struct xlb_ct_seen_rebuild *r = ctx;
	struct xlb_ct_seen_word *w;
	__u64 bit;

	w = xlb_ct4_seen_word_of(xlb_ct4_key_hash(k), &bit);
	if (w) {
		xlb_ct4_seen_set(w, r->copy, bit);
		r->marked++;
	}
	return 0;
}

/* Rebuilds the copy not in use from xlb_ct4 and puts it in use. Returns the
 * number of keys marked, or -1 without the control entry. */
XLB_INLINE int xlb_ct4_seen_rebuild_run(void)
{
	__u32 zero = 0;
	struct xlb_ct_seen_ctl *c = xlb_lookup(&xlb_ct4_seen_ctl, &zero);
	struct xlb_ct_seen_rebuild r = {};

	if (!c)
		return -1;
	r.copy = XLB_CT_SEEN_COPY(c->active + 1);
	bpf_loop(XLB_CT_SEEN_WORDS, xlb_ct4_seen_clear_cb, &r, 0);
	bpf_for_each_map_elem(&xlb_ct4, xlb_ct4_seen_mark_cb, &r, 0);
	c->active = r.copy;
	c->rebuilds++;
	return r.marked;
}

#endif /* XLB_CTSEEN_H */
