/* SPDX-License-Identifier: MIT */
/*
 * access.h — the thin map/clock access layer under the packet logic. The logic
 * headers (parse, csum, hash, conntrack, select, nat) call only these names, so
 * a userspace data plane can compile the same logic against its own versions.
 */
#ifndef XLB_ACCESS_H
#define XLB_ACCESS_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#define xlb_lookup(map, key) bpf_map_lookup_elem((map), (key))
#define xlb_update(map, key, val, flags) bpf_map_update_elem((map), (key), (val), (flags))
#define xlb_delete(map, key) bpf_map_delete_elem((map), (key))
#define xlb_random() bpf_get_prandom_u32()
#define xlb_cpu() bpf_get_smp_processor_id() /* inlined by the verifier (x86-64, arm64) */
/* Reads a byte of *p and drops it: its cache line is on the way while the
 * program goes on (BPF has no prefetch), for memory needed a little later. */
#define xlb_touch(p)                                             \
	do {                                                     \
		const volatile __u8 *_t = (const volatile __u8 *)(p); \
		if (_t) {                                        \
			__u8 _v = *_t;                           \
			asm volatile("" : : "r"(_v));            \
		}                                                \
	} while (0)

#ifndef __always_inline
#define __always_inline inline __attribute__((always_inline))
#endif
#define XLB_INLINE static __always_inline
/* A BPF subprogram: its own stack frame (for paths off the established-flow one). */
#define XLB_NOINLINE static __attribute__((noinline))

#endif /* XLB_ACCESS_H */
