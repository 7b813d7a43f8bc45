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
 * read again. A byte-class table's slot names a position in its ids[]: the
 * id is read from there (ids[] spans 17 lines; the prefetch touches the first
 * four, positions 0-62, which a VIP's new flows share).
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

#define XLB_MAGLEV_CASE(k)                                                     \
	case k: {                                                              \
		struct xlb_maglev_table##k *t = XLB_MAGLEV_TABLE_OF(k, vip_id); \
                                                                               \
		if (!t)                                                        \
			return XLB_BACKEND_NONE;                               \
		m = *(volatile __u32 *)&t->m;                                  \
		id = XLB_BACKEND_NONE;                                         \
		idx = xlb_maglev_hint_index(hash, hint);                       \
		if (idx < XLB_MAGLEV_CLASS_SLOTS(k))                           \
			id = *(volatile __u32 *)&t->slots[idx];                \
		if (m == 0)                                                    \
			return XLB_BACKEND_NONE;                               \
		if (m == hint)                                                 \
			return id;                                             \
		idx = xlb_maglev_index(hash, m);                               \
		if (idx >= XLB_MAGLEV_CLASS_SLOTS(k))                          \
			return XLB_BACKEND_NONE;                               \
		return *(volatile __u32 *)&t->slots[idx];                      \
	}

/* The byte class: the slot's byte names the backend's position in ids[]
 * (any byte is a position of ids[]: no bound check needed). */
#define XLB_MAGLEV_BYTE_CASE(k)                                                \
	case k: {                                                              \
		struct xlb_maglev_table##k *t = XLB_MAGLEV_TABLE_OF(k, vip_id); \
		__u8 pos;                                                      \
                                                                               \
		if (!t)                                                        \
			return XLB_BACKEND_NONE;                               \
		m = *(volatile __u32 *)&t->m;                                  \
		id = XLB_BACKEND_NONE;                                         \
		idx = xlb_maglev_hint_index(hash, hint);                       \
		if (idx < XLB_MAGLEV_BYTE_SLOTS) {                             \
			pos = *(volatile __u8 *)&t->slots[idx];                \
			id = *(volatile __u32 *)&t->ids[pos];                  \
		}                                                              \
		if (m == 0)                                                    \
			return XLB_BACKEND_NONE;                               \
		if (m == hint)                                                 \
			return id;                                             \
		idx = xlb_maglev_index(hash, m);                               \
		if (idx >= XLB_MAGLEV_BYTE_SLOTS)                              \
			return XLB_BACKEND_NONE;                               \
		pos = *(volatile __u8 *)&t->slots[idx];                        \
		return *(volatile __u32 *)&t->ids[pos];                        \
	}

/* The backend id Maglev gives `hash` in VIP vip_id's table of size class
 * `table_class` (whose M was `hint` when the VIP entry was written);
 * XLB_BACKEND_NONE when the VIP has no table or no backend. */
XLB_INLINE __u32 xlb_maglev_pick(__u32 vip_id, __u8 table_class, __u32 hint, __u32 hash)
{
	__u32 m, idx, id;

	switch (table_class) {
	XLB_MAGLEV_CASE(0)
	XLB_MAGLEV_CASE(1)
	XLB_MAGLEV_CASE(2)
	XLB_MAGLEV_CASE(3)
	XLB_MAGLEV_CASE(4)
	XLB_MAGLEV_CASE(5)
	XLB_MAGLEV_BYTE_CASE(6)
	}
	return XLB_BACKEND_NONE;
}

/* Prefetching (select.h, xlb_backend_prefetch4): the table's M and the slot
 * `hint` gives, touched, for a pick a little later. */
#define XLB_MAGLEV_TOUCH_CASE(k, nslots)                                       \
	case k: {                                                              \
		struct xlb_maglev_table##k *t = XLB_MAGLEV_TABLE_OF(k, vip_id); \
                                                                               \
		if (!t)                                                        \
			return;                                                \
		xlb_touch(&t->m);                                              \
		if (idx < (nslots))                                            \
			xlb_touch(&t->slots[idx]);                             \
		return;                                                        \
	}

/* Starts loading the two words xlb_maglev_pick(vip_id, table_class, hint,
 * hash) reads first (the table's M and the slot of hint): both are cache
 * misses once the VIPs' tables outgrow the cache (100 VIPs of M = 16381:
 * 6.4 MiB), and the pick's own loads wait for them. */
XLB_INLINE void xlb_maglev_prefetch(__u32 vip_id, __u8 table_class, __u32 hint, __u32 hash)
{
	__u32 idx = xlb_maglev_hint_index(hash, hint);

	switch (table_class) {
	XLB_MAGLEV_TOUCH_CASE(0, XLB_MAGLEV_CLASS_SLOTS(0))
	XLB_MAGLEV_TOUCH_CASE(1, XLB_MAGLEV_CLASS_SLOTS(1))
	XLB_MAGLEV_TOUCH_CASE(2, XLB_MAGLEV_CLASS_SLOTS(2))
	XLB_MAGLEV_TOUCH_CASE(3, XLB_MAGLEV_CLASS_SLOTS(3))
	XLB_MAGLEV_TOUCH_CASE(4, XLB_MAGLEV_CLASS_SLOTS(4))
	XLB_MAGLEV_TOUCH_CASE(5, XLB_MAGLEV_CLASS_SLOTS(5))
	case XLB_MAGLEV_BYTE_CLASS: {
		struct xlb_maglev_table6 *t = XLB_MAGLEV_TABLE_OF(6, vip_id);

		if (!t)
			return;
		xlb_touch(&t->m);
		if (idx < XLB_MAGLEV_BYTE_SLOTS)
			xlb_touch(&t->slots[idx]);
		xlb_touch(&t->ids[16]);
		xlb_touch(&t->ids[32]);
		xlb_touch(&t->ids[48]);
		return;
	}
	}
}

#endif /* XLB_MAGLEV_H */
