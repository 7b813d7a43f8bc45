/* SPDX-License-Identifier: MIT */
/*
 * maglev.h — reading a VIP's Maglev table: the backend id in slot hash % M of
 * the table in the outer map of the VIP's size class (xlb_shared.h). M is read
 * from the table itself, so a table swapped in mid-lookup is never indexed with
 * a stale size; each slot is read once (the control plane rewrites a slot in
 * place with one 32-bit store). The VIP entry's copy of M (table_m) lets the
 * slot's load start with the load of the table's M, not after it: two cache
 * misses in parallel instead of one after the other; when the two differ (a
 * table swapped since the entry was written), the slot of the table's M is
 * read again. A byte-class table's slot names a position in its recs[]: the
 * id and (IPv4) a copy of the backend's entry are read from there, so that
 * the backend's own entry in xlb_backends (a 4 KiB-page vmalloc'ed array, a
 * miss of its own once backends are many) is not read after the slot. The
 * prefetch touches the records of positions 0-63, which a VIP's new flows
 * share.
 */
#ifndef XLB_MAGLEV_H
#define XLB_MAGLEV_H

#include "access.h"
#include "maps.h"

/* hash % m, opaque to the compiler: the bound check after it is what the
 * verifier needs (it knows nothing of a remainder), so it must not be folded
 * away from what the compiler knows of m. */
XLB_INLINE __u32 xlb_maglev_index(__u32 hash, __u32 m)
{
	__u32 idx = hash % m;

	asm volatile("" : "+r"(idx));
	return idx;
}

/* The slots a word class-k table holds (its words after M): the bound every
 * slot index is checked against, the verifier's proof. */
#define XLB_MAGLEV_CLASS_SLOTS(k) (XLB_MAGLEV_CLASS_WORDS(k) - XLB_MAGLEV_FIRST_SLOT)

/* The slot hint names (the VIP entry's copy of M; 0 when it has none). */
XLB_INLINE __u32 xlb_maglev_hint_index(__u32 hash, __u32 hint)
{
	return xlb_maglev_index(hash, hint ? hint : 1);
}

/* VIP vip_id's table in the outer map of class k (its one inner map's one
 * value), or NULL. The verifier inlines an inner lookup only where one inner
 * map template reaches its call, so each class's lookups must stay calls of
 * their own (were the compiler to merge them, the program would still load,
 * slower): test/bpf-inline.test.ts checks that no array lookup is left a
 * call. */
#define XLB_MAGLEV_TABLE_OF(k, vip_id)                                         \
	({                                                                     \
		__u32 _key = XLB_MAGLEV_TABLE_KEY;                             \
		void *_inner = xlb_lookup(&xlb_maglev_c##k, &(vip_id));        \
		(struct xlb_maglev_table##k *)(_inner ?                        \
			xlb_lookup(_inner, &_key) : NULL);                     \
	})

/* A byte-class record's id; *copy points to its copy of the backend's entry. */
XLB_INLINE __u32 xlb_maglev_rec_id(struct xlb_maglev_rec *r, struct xlb_backend4 **copy)
{
	*copy = &r->be;
	return *(volatile __u32 *)&r->id;
}

/* The backend id in slot idx of a table: a word class's slot holds it, a
 * byte class's slot names its position in recs[] (any byte is a position of
 * recs[]: no bound check needed; *copy then points to the record's copy of
 * the backend's entry). Each read once (volatile). */
#define XLB_MAGLEV_WORD_AT(t, idx, copy) (*(volatile __u32 *)&(t)->slots[idx])
#define XLB_MAGLEV_BYTE_AT(t, idx, copy) xlb_maglev_rec_id(&(t)->recs[*(volatile __u8 *)&(t)->slots[idx]], copy)

/* Every size class: its number, the bound every slot index is checked
 * against (the verifier's proof) and its kind (WORD or BYTE: which
 * XLB_MAGLEV_*_AT reads a slot, which XLB_MAGLEV_*_MORE the prefetch adds). */
#define XLB_MAGLEV_CLASS_LIST(X)                                               \
	X(0, XLB_MAGLEV_CLASS_SLOTS(0), WORD)                                  \
	X(1, XLB_MAGLEV_CLASS_SLOTS(1), WORD)                                  \
	X(2, XLB_MAGLEV_CLASS_SLOTS(2), WORD)                                  \
	X(3, XLB_MAGLEV_CLASS_SLOTS(3), WORD)                                  \
	X(4, XLB_MAGLEV_CLASS_SLOTS(4), WORD)                                  \
	X(5, XLB_MAGLEV_CLASS_SLOTS(5), WORD)                                  \
	X(6, XLB_MAGLEV_BYTE_SLOTS, BYTE)

/* Class k's pick. */
#define XLB_MAGLEV_CASE(k, nslots, kind)                                         \
	case k: {                                                              \
		struct xlb_maglev_table##k *t = XLB_MAGLEV_TABLE_OF(k, vip_id); \
                                                                               \
		if (!t)                                                        \
			return XLB_BACKEND_NONE;                               \
		m = *(volatile __u32 *)&t->m;                                  \
		id = XLB_BACKEND_NONE;                                         \
		idx = xlb_maglev_hint_index(hash, hint);                       \
		if (idx < (nslots))                                            \
			id = XLB_MAGLEV_##kind##_AT(t, idx, copy);             \
		if (m == 0)                                                    \
			return XLB_BACKEND_NONE;                               \
		if (m == hint)                                                 \
			return id;                                             \
		idx = xlb_maglev_index(hash, m);                               \
		if (idx >= (nslots))                                           \
			return XLB_BACKEND_NONE;                               \
		return XLB_MAGLEV_##kind##_AT(t, idx, copy);                   \
	}

/* The backend id Maglev gives `hash` in VIP vip_id's table of size class
 * `table_class` (whose M was `hint` when the VIP entry was written);
 * XLB_BACKEND_NONE when the VIP has no table or no backend. With an id, *copy
 * is the byte class's copy of that backend's IPv4 entry (its address 0 when
 * it holds none), or NULL for a word class; without, *copy means nothing. */
XLB_INLINE __u32 xlb_maglev_pick(__u32 vip_id, __u8 table_class, __u32 hint, __u32 hash,
				 struct xlb_backend4 **copy)
{
	__u32 m, idx, id;

	*copy = NULL;

	switch (table_class) {
	XLB_MAGLEV_CLASS_LIST(XLB_MAGLEV_CASE)
	}
	return XLB_BACKEND_NONE;
}

/* Prefetching (select.h, xlb_backend_prefetch4): the table's M and the slot
 * `hint` gives, touched, for a pick a little later. */
/* What a pick reads after the slot, touched too: nothing for a word class;
 * for the byte class the records of positions 0 to XLB_MAGLEV_PREFETCH_RECS
 * - 1 (every line from M's to the last record's: a byte every line's length
 * apart, then the last; the kernel places the value at no particular offset
 * in its line). */
#define XLB_CACHE_LINE 64
#define XLB_MAGLEV_PREFETCH_RECS 64
#define XLB_MAGLEV_PREFETCH_END (offsetof(struct xlb_maglev_table6, recs[XLB_MAGLEV_PREFETCH_RECS]) - 1)
#define XLB_MAGLEV_WORD_MORE(t)
#define XLB_MAGLEV_BYTE_MORE(t)                                                \
	do {                                                                   \
		const __u8 *_b = (const __u8 *)(t);                            \
		_Pragma("unroll") for (__u32 _o = XLB_CACHE_LINE;              \
				       _o < XLB_MAGLEV_PREFETCH_END;           \
				       _o += XLB_CACHE_LINE)                   \
			xlb_touch(_b + _o);                                    \
		xlb_touch(_b + XLB_MAGLEV_PREFETCH_END);                       \
	} while (0)

#define XLB_MAGLEV_TOUCH_CASE(k, nslots, kind)                                 \
	case k: {                                                              \
		struct xlb_maglev_table##k *t = XLB_MAGLEV_TABLE_OF(k, vip_id); \
                                                                               \
		if (!t)                                                        \
			return;                                                \
		xlb_touch(&t->m);                                              \
		if (idx < (nslots))                                            \
			xlb_touch(&t->slots[idx]);                             \
		XLB_MAGLEV_##kind##_MORE(t);                                   \
		return;                                                        \
	}

/* Starts loading the two words xlb_maglev_pick(vip_id, table_class, hint,
 * hash) reads first (the table's M and the slot of hint): both are cache
 * misses once the VIPs' tables outgrow the cache (100 VIPs of M = 16381:
 * 2 MiB of byte-class tables), and the pick's own loads wait for them. */
XLB_INLINE void xlb_maglev_prefetch(__u32 vip_id, __u8 table_class, __u32 hint, __u32 hash)
{
	__u32 idx = xlb_maglev_hint_index(hash, hint);

	switch (table_class) {
	XLB_MAGLEV_CLASS_LIST(XLB_MAGLEV_TOUCH_CASE)
	}
}

#endif /* XLB_MAGLEV_H */
