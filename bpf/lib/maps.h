/* SPDX-License-Identifier: MIT */
/*
 * maps.h — every map of the data plane. Keys and values come from xlb_shared.h;
 * capacities are defaults the control plane may override before load. Maps are
 * pinned by name under the pin root the loader chooses (/sys/fs/bpf/xlb).
 */
#ifndef XLB_MAPS_H
#define XLB_MAPS_H

#include "access.h"
#include "../xlb_shared.h"

/* VIPs: (scope, address, port, protocol) -> vip id. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, XLB_MAX_VIPS);
	__type(key, struct xlb_vip4_key);
	__type(value, struct xlb_vip_val);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} xlb_vip4 SEC(".maps");

/* vip id -> Maglev table, one outer map per size class (xlb_shared.h). Each
 * inner map is an array of one element, the whole table, created and filled
 * by the control plane before it is swapped in; a table of the same size is
 * rewritten in place. A word class's tables are filled through mmap in one
 * copy (BPF_F_MMAPABLE). The byte class's are not mmap-able: an mmap-able
 * array is vmalloc'ed in 4 KiB pages, a plain one of 22 KiB is kmalloc'ed in
 * the kernel's direct map (huge pages), so a new flow to a random one of
 * 10,000 VIPs takes no TLB miss on its table (0.86x the new flow's time
 * there); they are written with bpf_map_update_elem. Every inner map of a
 * class has the template's shape (max_entries 1, no BPF_F_INNER_MAP), so the
 * verifier inlines the inner lookup: no call, no read of the inner map's
 * header. */
#define XLB_MAGLEV_OUTER(k) XLB_MAGLEV_OUTER_F(k, BPF_F_MMAPABLE)
#define XLB_MAGLEV_OUTER_F(k, flags)                                  \
	struct xlb_maglev_inner##k {                                  \
		__uint(type, BPF_MAP_TYPE_ARRAY);                     \
		__uint(map_flags, flags);                             \
		__uint(max_entries, 1);                               \
		__uint(key_size, sizeof(__u32));                      \
		__uint(value_size, sizeof(struct xlb_maglev_table##k)); \
	};                                                            \
	struct {                                                      \
		__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);             \
		__uint(max_entries, XLB_MAX_VIPS);                    \
		__type(key, __u32);                                   \
		__uint(pinning, LIBBPF_PIN_BY_NAME);                  \
		__array(values, struct xlb_maglev_inner##k);          \
	} xlb_maglev_c##k SEC(".maps")
XLB_MAGLEV_OUTER(0);
XLB_MAGLEV_OUTER(1);
XLB_MAGLEV_OUTER(2);
XLB_MAGLEV_OUTER(3);
XLB_MAGLEV_OUTER(4);
XLB_MAGLEV_OUTER(5);
XLB_MAGLEV_OUTER_F(6, 0); /* XLB_MAGLEV_BYTE_CLASS: not mmap-able (above) */
_Static_assert(XLB_MAGLEV_BYTE_CLASS == 6, "xlb_maglev_c6 is the byte class");

/* backend id -> backend address and port. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, XLB_MAX_BACKENDS);
	__type(key, __u32);
	__type(value, struct xlb_backend4);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} xlb_backends SEC(".maps");

/* Conntrack, both directions, shared by all CPUs (replies run elsewhere). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, XLB_CT_MAX);
	__type(key, struct xlb_ct4_key);
	__type(value, struct xlb_ct4_val);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} xlb_ct4 SEC(".maps");

/* Conntrack's new-flow tier: flows a backend has not answered yet (same keys
 * and values as xlb_ct4), in buckets of XLB_CT_NEW_WAYS (lib/ctnew.h). A flood
 * of new flows replaces only entries here. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, XLB_CT_NEW_MAX / XLB_CT_NEW_WAYS);
	__type(key, __u32);
	__type(value, struct xlb_ct4_bucket);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} xlb_ct4_new SEC(".maps");

/* Filters of the keys xlb_ct4 may hold (lib/ctseen.h): word i of both copies. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, XLB_CT_SEEN_WORDS);
	__type(key, __u32);
	__type(value, struct xlb_ct_seen_word);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} xlb_ct4_seen SEC(".maps");

/* A filter of the IPv4 addresses that balanced traffic has on one side
 * (lib/addrfilter.h): a bit per address hash, set by the control plane. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, XLB_ADDR_FILTER_WORDS);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} xlb_addr_filter SEC(".maps");

/* Which copy of xlb_ct4_seen answers (one entry). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct xlb_ct_seen_ctl);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} xlb_ct4_seen_ctl SEC(".maps");

/* (client, VIP) -> backend of the client's last new connection (affinity_timeout). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, XLB_AFFINITY_MAX);
	__type(key, struct xlb_affinity4_key);
	__type(value, struct xlb_affinity4_val);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} xlb_affinity4 SEC(".maps");

/* IPv6: VIPs, backends, conntrack and affinity with 16-byte addresses. The
 * Maglev tables, counters and ifaces are shared with IPv4 (one id space). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, XLB_MAX_VIPS);
	__type(key, struct xlb_vip6_key);
	__type(value, struct xlb_vip_val);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} xlb_vip6 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, XLB_MAX_BACKENDS);
	__type(key, __u32);
	__type(value, struct xlb_backend6);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} xlb_backends6 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, XLB_CT_MAX);
	__type(key, struct xlb_ct6_key);
	__type(value, struct xlb_ct6_val);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} xlb_ct6 SEC(".maps");

/* IPv6 conntrack's new-flow tier (as xlb_ct4_new). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, XLB_CT_NEW_MAX);
	__type(key, struct xlb_ct6_key);
	__type(value, struct xlb_ct6_val);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} xlb_ct6_new SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, XLB_AFFINITY_MAX);
	__type(key, struct xlb_affinity6_key);
	__type(value, struct xlb_affinity4_val);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} xlb_affinity6 SEC(".maps");
/* (scope, kind, address/prefix) -> source address of a source-NATed new flow:
 * a router's port address toward a backend (lb_force_snat_ip=router_ip) or
 * the external_ip of the NAT rule covering a client. */
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, XLB_SNAT_RULES_MAX);
	__type(key, struct xlb_snat4_key);
	__type(value, struct xlb_snat4_val);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} xlb_snat4 SEC(".maps");

/* ifindex -> attachment scope of the interface (an array: one inlined load). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, XLB_MAX_IFINDEX);
	__type(key, __u32);
	__type(value, struct xlb_iface);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} xlb_ifaces SEC(".maps");

/* (VIP address, router scope) -> 0: addresses a router answers ARP for
 * (neighbor_responder), on its ports (xlb_iface with XLB_IFACE_F_NEIGH). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, XLB_NEIGH_MAX);
	__type(key, struct xlb_neigh4_key);
	__type(value, __u32);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} xlb_neigh4 SEC(".maps");

/* The same for IPv6 VIPs: addresses a router answers neighbour solicitations for. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, XLB_NEIGH_MAX);
	__type(key, struct xlb_neigh6_key);
	__type(value, __u32);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} xlb_neigh6 SEC(".maps");

/* Counters per VIP and per backend: one plain array per kind, a row of ids per
 * CPU ([cpu][id], element cpu * ids + id: lib/stats.h). Each CPU writes only
 * its own row, so no atomics in the data path; the control plane sums the rows. A per-CPU
 * array's lookup is two dependent loads (its pointer array, then the CPU's
 * copy), each a cache and TLB miss when ids are many; this one is a single
 * load. The control plane sets max_entries (possible CPUs x ids) and the row
 * length (xlb_*_stats_ids) before load (the defaults hold one CPU's row), and
 * reads the rows through mmap (BPF_F_MMAPABLE): a span of ids per CPU at once. */
const volatile __u32 xlb_vip_stats_ids = XLB_MAX_VIPS;
const volatile __u32 xlb_backend_stats_ids = XLB_MAX_BACKENDS;

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, XLB_MAX_VIPS);
	__type(key, __u32);
	__type(value, struct xlb_stats);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} xlb_vip_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, XLB_MAX_BACKENDS);
	__type(key, __u32);
	__type(value, struct xlb_stats);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} xlb_backend_stats SEC(".maps");

/* A map's own max_entries (set by the control plane before load: the new-flow
 * tier's buckets, the flow log's rings), read through BTF. */
struct bpf_map___xlb {
	__u32 max_entries;
} __attribute__((preserve_access_index));

/* The flow counts' log: one ring per possible CPU (element cpu; lib/stats.h),
 * whose entries reach xlb_backend_stats in batches. Plain array, not per-CPU:
 * the control plane's fold, on one CPU, takes every CPU's ring. The control
 * plane sets max_entries (possible CPUs) before load; a CPU without a ring
 * counts straight into its row. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct xlb_flow_log);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} xlb_flow_log SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, XLB_G_COUNT);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} xlb_global SEC(".maps");

/* The clock, per CPU: see xlb_now_ns. Not pinned: nothing outside reads it. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct xlb_clock);
} xlb_clock SEC(".maps");

/* The coarse monotonic clock (CLOCK_MONOTONIC at the last tick), which every
 * conntrack and affinity timestamp uses. bpf_ktime_get_coarse_ns costs ≈16 ns
 * a call on a 2-vCPU VM (measured: established flow 66 → 50 ns without it),
 * bpf_jiffies64 ≈3.5 ns; the coarse clock moves at ticks, as jiffies do, so
 * it is read once per jiffy per CPU and reused. */
XLB_INLINE __u64 xlb_now_ns(void)
{
	__u32 zero = 0;
	struct xlb_clock *c = xlb_lookup(&xlb_clock, &zero);
	__u64 j = bpf_jiffies64();

	if (!c)
		return bpf_ktime_get_coarse_ns();
	if (c->jiffies != j) {
		c->ns = bpf_ktime_get_coarse_ns();
		c->jiffies = j;
	}
	return c->ns;
}

XLB_INLINE void xlb_count(__u32 which)
{

	__u64 *c = xlb_lookup(&xlb_global, &which);

	if (c)
		*c += 1;
}

#endif /* XLB_MAPS_H */
