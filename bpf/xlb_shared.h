/* SPDX-License-Identifier: MIT */
/*
 * xlb_shared.h — the layout of every BPF map key and value, shared by the BPF
 * C programs and the native addon (and mirrored by src/layout.ts, which a test
 * checks against the offsets the addon reports from this very header).
 *
 * Rules: fixed-width fields only, explicit padding, no bitfields, addresses and
 * ports in network byte order (as they sit in the packet), everything else in
 * host order. A change here is a layout change: bump XLB_LAYOUT_VERSION.
 */
#ifndef XLB_SHARED_H
#define XLB_SHARED_H

#include <linux/types.h>
#include <linux/bpf.h>
#ifndef __BPF__
#include <stddef.h> /* offsetof, for the static asserts */
#endif

/* Bumped whenever a struct below changes size or meaning. */
#define XLB_LAYOUT_VERSION 29

/* Default map capacities; the control plane may resize them before load. */
#define XLB_MAX_VIPS 16384        /* xlb_vip4 entries and xlb_maglev_c* slots */
#define XLB_MAX_BACKENDS 65536    /* xlb_backends slots (id 0 is reserved) */
#define XLB_MAX_IFINDEX 65536     /* xlb_ifaces slots: interfaces with a lower ifindex */
#define XLB_CT_MAX 262144         /* conntrack entries (both directions count) */
#define XLB_CT_NEW_MAX 32768      /* unconfirmed flows' entries (new-flow tier, see lib/conntrack.h) */
#define XLB_CT_NEW_WAYS 4         /* entries per bucket of the IPv4 new-flow tier (lib/ctnew.h) */
#define XLB_CT_SEEN_WORDS_LOG2 17 /* xlb_ct4_seen: 2^17 words of 64 bits, 8 Mi bits per filter (lib/ctseen.h) */
#define XLB_CT_SEEN_WORDS (1u << XLB_CT_SEEN_WORDS_LOG2)
#define XLB_CT_SEEN_WORD_BITS 64
#define XLB_CT_SEEN_BIT2_SHIFT 26 /* a key's second bit: hash bits 26..31 (its word: bits 6 up, its first bit: 0..5) */
#define XLB_CT_SEEN_MULT 0x9e3779b1u /* its third and fourth bits: from g = hash * this (odd: 2^32 / the golden ratio) */
#define XLB_CT_SEEN_BIT3_SHIFT 26 /* third bit: g's bits 26..31 */
#define XLB_CT_SEEN_BIT4_SHIFT 20 /* fourth bit: g's bits 20..25 */
#define XLB_CT_SEEN_FILTERS 2     /* two copies: one answers while the other is rebuilt */
#define XLB_ADDR_FILTER_WORDS_LOG2 12 /* xlb_addr_filter: 2^12 words of 64 bits, 256 Ki bits (lib/addrfilter.h) */
#define XLB_ADDR_FILTER_WORDS (1u << XLB_ADDR_FILTER_WORDS_LOG2)
#define XLB_ADDR_FILTER_WORD_BITS 64
#define XLB_ADDR_FILTER_BITS_LOG2 (XLB_ADDR_FILTER_WORDS_LOG2 + 6) /* 6: log2 of the word's 64 bits */
#define XLB_ADDR_FILTER_MULT 0x9e3779b1u /* Fibonacci hashing: 2^32 / the golden ratio, odd */
#define XLB_AFFINITY_MAX 65536    /* client affinity entries */
#define XLB_SNAT_RULES_MAX 4096   /* xlb_snat4 entries (router ports, NAT rules) */
#define XLB_NEIGH_MAX 16384       /* xlb_neigh4 (and xlb_neigh6) entries: (router, VIP address) pairs */
#define XLB_MAGLEV_DEFAULT_M 16381 /* default Maglev table size (prime) */

/* A Maglev table of a word class is one __u32 array: word 0 holds the table
 * size M, words 1..M backend ids. The size travels with the table, so a swap
 * is self-consistent. Each table is the single value of its own inner array
 * map, under the outer map of its size class: word class k (0..5) takes
 * tables of up to XLB_MAGLEV_CLASS_WORDS(k) words (4 KiB << 2k of value),
 * the words past M + 1 are zero. The byte class (XLB_MAGLEV_BYTE_CLASS, 6)
 * takes a table of at most XLB_MAGLEV_BYTE_IDS distinct backends and
 * XLB_MAGLEV_BYTE_SLOTS slots in a third of the space: M, a record per
 * position (recs[]: the backend's id and, for an IPv4 backend, a copy of its
 * xlb_backends entry), then one byte per slot naming its backend's position
 * (22 KiB for the default M instead of 64 KiB; 32 KiB of kernel memory). The control plane uses it
 * where it is the smaller (M > 4,095). The class of a VIP's table travels in
 * xlb_vip_val.table_class. */
#define XLB_MAGLEV_HDR_SLOT 0
#define XLB_MAGLEV_FIRST_SLOT 1
#define XLB_MAGLEV_CLASSES 7          /* xlb_maglev_c0 .. xlb_maglev_c6 */
#define XLB_MAGLEV_WORD_CLASSES 6     /* c0 .. c5 hold __u32 slots */
#define XLB_MAGLEV_CLASS0_WORDS 1024  /* class 0: M <= 1023 (4 KiB) */
#define XLB_MAGLEV_CLASS_SHIFT 2      /* each word class holds 4x the words of the one before */
#define XLB_MAGLEV_CLASS_WORDS(k) (XLB_MAGLEV_CLASS0_WORDS << (XLB_MAGLEV_CLASS_SHIFT * (k)))
#define XLB_MAGLEV_TABLE_KEY 0        /* the one element of an inner map */
#define XLB_MAGLEV_BYTE_CLASS 6
#define XLB_MAGLEV_BYTE_IDS 256       /* a slot's byte names one of 256 positions */
#define XLB_MAGLEV_BYTE_VALUE 22528   /* with the array's header, one kmalloc block of 32 KiB (lib/maps.h) */
#define XLB_MAGLEV_REC_SIZE 12        /* struct xlb_maglev_rec */
#define XLB_MAGLEV_BYTE_SLOTS (XLB_MAGLEV_BYTE_VALUE - 4 - XLB_MAGLEV_REC_SIZE * XLB_MAGLEV_BYTE_IDS)

/* The value of a word class-k inner map: M, then the slots. */
#define XLB_MAGLEV_TABLE(k)                                   \
	struct xlb_maglev_table##k {                          \
		__u32 m;                                      \
		__u32 slots[XLB_MAGLEV_CLASS_WORDS(k) - 1];   \
	}
XLB_MAGLEV_TABLE(0);
XLB_MAGLEV_TABLE(1);
XLB_MAGLEV_TABLE(2);
XLB_MAGLEV_TABLE(3);
XLB_MAGLEV_TABLE(4);
XLB_MAGLEV_TABLE(5);

/* Backend id 0 means "no backend" (an empty table drops or rejects). */
#define XLB_BACKEND_NONE 0

#define XLB_NS_PER_S 1000000000ULL

/* Conntrack timestamps are refreshed at most this often per entry (ns). */
#define XLB_CT_REFRESH_NS 1000000000ULL

/* xlb_ct4_val.pend: an established flow's packets since its counts last
 * reached its backend's row (at a refresh, or the control plane's fold), in
 * one word so that one atomic add counts a packet: packets above bit 36,
 * bytes below (2^36 bytes, 2^28 packets: neither wraps within the
 * XLB_CT_REFRESH_NS between two folds of a sending flow). */
#define XLB_CT_PEND_PKT_SHIFT 36
#define XLB_CT_PEND_BYTES_MASK ((1ull << XLB_CT_PEND_PKT_SHIFT) - 1)

/* xlb_vip_val.flags */
#define XLB_VIP_F_IP_ONLY (1u << 0)  /* VIP without a port: backends keep the port */
#define XLB_VIP_F_AFFINITY (1u << 1) /* client affinity (affinity_timeout_s) */
#define XLB_VIP_F_REJECT (1u << 2)   /* no usable backend: answer (TCP RST, ICMP port unreachable), not drop */
/* Source NAT of balanced flows (a router's lb_force_snat_ip / NAT rules); at
 * most one of these is set. Hairpin SNAT needs no flag (see hairpin_addr). */
#define XLB_VIP_F_SNAT_ADDR (1u << 3)    /* source := snat_addr */
#define XLB_VIP_F_SNAT_BACKEND (1u << 4) /* source := xlb_snat4[scope, BACKEND, backend] (router_ip) */
#define XLB_VIP_F_SNAT_CLIENT (1u << 5)  /* source := xlb_snat4[scope, CLIENT, client] if any (snat rules) */

/* xlb_snat4_key.kind: what the looked-up address is. */
#define XLB_SNAT_K_BACKEND 1 /* the backend: value = the router port address toward it */
#define XLB_SNAT_K_CLIENT 2  /* the client: value = the external_ip of its snat rule */

/* Source ports a source-NATed flow may get: the client's own port first, then
 * up to XLB_SNAT_TRIES - 1 random ports in [MIN, MAX]; the first whose reverse
 * entry does not exist yet wins (inserted with BPF_NOEXIST: collision-safe). */
#define XLB_SNAT_PORT_MIN 1024
#define XLB_SNAT_PORT_MAX 65535
#define XLB_SNAT_TRIES 8

/* xlb_vip_val.hash_fields: what the Maglev hash covers (OVN selection_fields).
 * 0 means the default 5-tuple (addresses, ports and protocol). */
#define XLB_HASH_ETH_SRC (1u << 0)
#define XLB_HASH_ETH_DST (1u << 1)
#define XLB_HASH_IP_SRC (1u << 2)
#define XLB_HASH_IP_DST (1u << 3)
#define XLB_HASH_TP_SRC (1u << 4)
#define XLB_HASH_TP_DST (1u << 5)

/* xlb_ct4_val.dir */
#define XLB_DIR_FWD 1 /* client -> VIP: rewrite destination to the backend */
#define XLB_DIR_REV 2 /* backend -> client: rewrite source back to the VIP */

/* xlb_ct4_val.flags */
#define XLB_CT_F_SNAT (1u << 0)    /* the source is translated too (snat_addr/snat_port) */
#define XLB_CT_F_HAIRPIN (1u << 1) /* client == backend: sent back out the interface it came in by */

/* xlb_ct4_val.state: TCP connection state, kept in both directions. The data
 * plane only records it; the control plane's garbage collector applies the
 * per-state idle timeouts. */
#define XLB_CT_NONE 0    /* not TCP */
#define XLB_CT_SYN 1     /* client SYN seen, no answer yet */
#define XLB_CT_EST 2     /* answered: established */
#define XLB_CT_CLOSING 3 /* FIN or RST seen */

/* xlb_iface.flags */
#define XLB_IFACE_F_BALANCE (1u << 0) /* balance new flows arriving here */
#define XLB_IFACE_F_IP_ONLY (1u << 1) /* the scope has IP-only VIPs: try them too */
#define XLB_IFACE_F_NEIGH (1u << 2)   /* a router port: answer ARP / NS for its router's xlb_neigh4/6 addresses with mac */

/* Indexes of xlb_global (per-CPU array of __u64 counters). */
enum xlb_global_counter {
	XLB_G_PACKETS = 0,     /* packets seen by any xlb program */
	XLB_G_NOT_IPV4,        /* passed: neither IPv4 nor IPv6 */
	XLB_G_MALFORMED,       /* passed: truncated or malformed header */
	XLB_G_FRAGMENT,        /* passed: IP fragment (not balanced) */
	XLB_G_CT_HIT,          /* conntrack hit (either direction) */
	XLB_G_CT_RECREATE,     /* the other direction was missing and recreated */
	XLB_G_NEW_FLOW,        /* new flow balanced */
	XLB_G_MIDSTREAM,       /* new flow that was a TCP non-SYN (re-balanced) */
	XLB_G_NO_BACKEND,      /* dropped: VIP without a usable backend */
	XLB_G_CT_FULL,         /* conntrack insert failed */
	XLB_G_NAT_ERROR,       /* rewrite failed (helper error) */
	XLB_G_ICMP_RELATED,    /* ICMP error of a tracked flow translated */
	XLB_G_REJECT,          /* reject=true: TCP RST or ICMP port unreachable sent back */
	XLB_G_REJECT_FAIL,     /* reject=true but no answer allowed or possible: dropped */
	XLB_G_NEIGH_REPLY,     /* ARP request / neighbour solicitation for a VIP answered with the router port's MAC */
	XLB_G_IPV6,            /* IPv6 packets seen (also counted in PACKETS) */
	XLB_G_EXT_PASS,        /* passed: IPv6 extension chain not followed (too long, routing header with segments left) */
	XLB_G_CT_PROMOTED,     /* flow confirmed by its backend: moved from the new-flow tier */
	XLB_G_SNAT,            /* new flow source-NATed (force_snat, NAT rule or hairpin) */
	XLB_G_SNAT_NO_PORT,    /* dropped: no free source port after XLB_SNAT_TRIES */
	XLB_G_HAIRPIN,         /* packet sent back out the interface it came in by */
	XLB_G_SCTP_TOO_LONG,   /* dropped: SCTP packet too long to recompute its CRC (sctp.h) */
	XLB_G_CT_SKIP,         /* TCP SYN whose flow the established tier cannot hold: lookup skipped (ctseen.h) */
	XLB_G_ADDR_SKIP,       /* passed: IP whose addresses no VIP, backend or flow uses (addrfilter.h) */
	XLB_G_CT_BUSY,         /* a new-flow tier bucket stayed locked by another writer: operation not done (ctnew.h) */
	XLB_G_COUNT,
};

/* Key of xlb_vip4 (hash): one VIP in one attachment scope. */
struct xlb_vip4_key {
	__u32 addr;  /* VIP address, network order */
	__u16 port;  /* VIP port, network order; 0 for an IP-only VIP */
	__u8 proto;  /* IPPROTO_TCP/UDP/SCTP; 0 for an IP-only VIP */
	__u8 pad;    /* zero */
	__u32 scope; /* attachment scope (xlb_iface.scope) */
};

/* Value of xlb_vip4. */
struct xlb_vip_val {
	__u32 vip_id;             /* index into xlb_maglev_c* and xlb_vip_stats */
	__u16 flags;              /* XLB_VIP_F_* */
	__u8 hash_fields;         /* XLB_HASH_*; 0 = 5-tuple */
	__u8 table_class;         /* size class of the VIP's Maglev table (xlb_maglev_c<table_class>) */
	__u32 affinity_timeout_s; /* with XLB_VIP_F_AFFINITY: idle timeout, seconds */
	__u32 snat_addr;          /* with XLB_VIP_F_SNAT_ADDR: source address, network order */
	__u32 hairpin_addr;       /* hairpin source address (network order); 0 = the VIP */
	__u32 table_m;            /* M of the VIP's Maglev table as written: lets the slot read start
				   * before the table's own M arrives (which still decides, lib/maglev.h) */
};

/* Key of xlb_affinity4 (LRU hash): one client of one VIP. */
struct xlb_affinity4_key {
	__u32 client; /* client address, network order */
	__u32 vip_id;
};

/* Value of xlb_affinity4. */
struct xlb_affinity4_val {
	__u32 backend_id;   /* the backend the client's last new connection got */
	__u32 pad;          /* zero */
	__u64 last_seen_ns; /* coarse clock of that connection */
};

/* Value of xlb_backends (array indexed by backend id). */
struct xlb_backend4 {
	__u32 addr;  /* backend address, network order */
	__u16 port;  /* backend port, network order; 0 keeps the destination port */
	__u8 flags;  /* XLB_BACKEND_F_* */
	__u8 pad;    /* zero */
};

/* xlb_backend4.flags */
#define XLB_BACKEND_F_DRAIN (1u << 0) /* no new flows (weight 0 or health down); established continue */

/* A byte-class table's record of one position: the backend's id and, for an
 * IPv4 backend, a copy of its xlb_backends entry with flags 0 (a slot never
 * names a drained backend), so that a new flow reads its backend in the table
 * it already reads (lib/maglev.h). The copy's address is 0 for an IPv6
 * backend (xlb_backends6 holds it) and where the control plane had no entry
 * to copy: the pick then reads xlb_backends. A position's record changes only
 * while no slot names it. */
struct xlb_maglev_rec {
	__u32 id;
	struct xlb_backend4 be;
};

/* The value of a byte-class inner map: M, the records by position (zero for
 * a position no backend ever took), then a position per slot. */
struct xlb_maglev_table6 {
	__u32 m;
	struct xlb_maglev_rec recs[XLB_MAGLEV_BYTE_IDS];
	__u8 slots[XLB_MAGLEV_BYTE_SLOTS];
};

/* Key of xlb_ct4 (LRU hash): the packet's own 5-tuple, as it arrives. A
 * forward entry is keyed by client->VIP, a reverse entry by backend->client. */
struct xlb_ct4_key {
	__u32 saddr; /* network order */
	__u32 daddr; /* network order */
	__u16 sport; /* network order; 0 for protocols without ports */
	__u16 dport; /* network order; 0 for protocols without ports */
	__u8 proto;  /* IPPROTO_* */
	__u8 pad[3]; /* zero */
};

/* Value of xlb_ct4. */
struct xlb_ct4_val {
	__u32 nat_addr;     /* FWD: backend address; REV: VIP address */
	__u16 nat_port;     /* FWD: backend port; REV: VIP port (0 for IP-only) */
	__u8 dir;           /* XLB_DIR_FWD or XLB_DIR_REV */
	__u8 state;         /* XLB_CT_* */
	__u32 vip_id;       /* for counters */
	__u32 backend_id;   /* for counters */
	__u64 last_seen_ns; /* coarse monotonic clock */
	__u32 snat_addr;    /* with XLB_CT_F_SNAT: FWD: new source address; REV: the client (new destination) */
	__u16 snat_port;    /* with XLB_CT_F_SNAT: FWD: new source port; REV: the client's port (0 keeps) */
	__u8 flags;         /* XLB_CT_F_* */
	__u8 pad;           /* zero */
	__u64 pend;         /* established tier: packets and bytes not yet in the backend's counter row
			     * (XLB_CT_PEND_*, lib/stats.h); zero in the new-flow tier */
};

/* Value of xlb_ct4_seen (an array, lib/ctseen.h): one 64-bit word of each of
 * the two filters of keys the established tier may hold; the two share a
 * cache line, so marking a key in both touches one. */
struct xlb_ct_seen_word {
	__u64 bits[XLB_CT_SEEN_FILTERS];
};

/* Value of xlb_ct4_seen_ctl (one entry): which filter answers lookups. */
struct xlb_ct_seen_ctl {
	__u32 active;   /* index into xlb_ct_seen_word.bits */
	__u32 rebuilds; /* rebuilds done since load */
};

/* Value of xlb_clock (per CPU, one entry, lib/maps.h): the coarse monotonic
 * clock as read at the start of the current jiffy. */
struct xlb_clock {
	__u64 jiffies; /* bpf_jiffies64() when ns was read */
	__u64 ns;      /* bpf_ktime_get_coarse_ns() then */
};

/* One entry of the IPv4 new-flow tier: a conntrack key and its value. */
struct xlb_ct4_way {
	struct xlb_ct4_key key;
	struct xlb_ct4_val val;
};

/* Value of xlb_ct4_new (an array of buckets, lib/ctnew.h): XLB_CT_NEW_WAYS
 * entries under one lock, both in ctl: bit i marks way[i] as holding an
 * entry (XLB_CTN_USED_MASK), XLB_CTN_LOCKED is set while a writer edits the
 * bucket (taken and released with atomic instructions, never a helper). */
struct xlb_ct4_bucket {
	__u64 ctl;
	struct xlb_ct4_way way[XLB_CT_NEW_WAYS];
};

#define XLB_CTN_USED_MASK ((1ull << XLB_CT_NEW_WAYS) - 1)
#define XLB_CTN_LOCKED (1ull << 63)

/* The context of xlb_ct4_new_edit (a syscall program the control plane runs):
 * one operation on one key of the new-flow tier, under its bucket's lock. */
enum xlb_ctn_op {
	XLB_CTN_OP_GET = 1,    /* copy key's value to val */
	XLB_CTN_OP_DELETE = 2, /* remove key */
	XLB_CTN_OP_SET = 3,    /* replace key's value with val (key must be present) */
};

struct xlb_ct4_new_edit {
	struct xlb_ct4_key key;
	struct xlb_ct4_val val;
	__u32 op;     /* XLB_CTN_OP_* */
	__s32 result; /* out: 1 found (and done), 0 absent, -EBUSY the bucket stayed locked, -EINVAL bad op */
};

/* Key of xlb_snat4 (LPM trie): which source address a new flow of a scope gets. */
struct xlb_snat4_key {
	__u32 prefixlen; /* 64 + prefix length of addr */
	__u32 scope;     /* attachment scope */
	__u32 kind;      /* XLB_SNAT_K_* */
	__u32 addr;      /* network order */
};

/* Value of xlb_snat4. */
struct xlb_snat4_val {
	__u32 addr; /* the source address, network order */
};

/* Value of xlb_ifaces (array indexed by ifindex; all zero = not served). */
struct xlb_iface {
	__u32 scope;  /* which VIP set applies to traffic entering here */
	__u32 flags;  /* XLB_IFACE_F_* */
	__u8 mac[6];  /* with XLB_IFACE_F_NEIGH: the router port's MAC */
	__u8 pad[2];  /* zero */
};

/* Key of xlb_neigh4 (hash): an address the router of `scope` answers ARP for
 * (OVN's neighbor_responder); the value is a __u32, zero (reserved). */
struct xlb_neigh4_key {
	__u32 addr;  /* VIP address, network order */
	__u32 scope; /* the router's scope (xlb_iface.scope of its ports) */
};

/* Key of xlb_neigh6 (hash): the same for IPv6 (neighbour solicitations). */
struct xlb_neigh6_key {
	__u32 addr[4]; /* VIP address, network order */
	__u32 scope;   /* the router's scope */
};

/* Value of xlb_vip_stats and xlb_backend_stats: plain arrays holding a row of
 * ids per CPU (element cpu * ids + id, lib/stats.h), summed by the control plane.
 * Flows count in their backend's row only. In a VIP's row the data plane writes
 * drops and rejects; packets..new_conns there belong to the control plane (the
 * final counts of backends the VIP no longer has, 8-byte stores through mmap):
 * a VIP's totals are its row plus its backends' rows. */
struct xlb_stats {
	__u64 packets;       /* client->VIP packets rewritten */
	__u64 bytes;         /* their bytes (L2 frame length) */
	__u64 reply_packets; /* backend->client packets rewritten */
	__u64 reply_bytes;   /* their bytes */
	__u64 new_conns;     /* flows balanced */
	__u64 drops;         /* packets dropped: no usable backend */
	__u64 rejects;       /* packets answered by reject=true (RST / ICMP unreachable) */
};

/* Value of xlb_flow_log (an array, one element per possible CPU, lib/stats.h):
 * a ring of packets to count in their backend's row, folded in batches. Its
 * CPU's data plane adds (plain stores: entry, then head); whoever holds lock
 * folds: that data plane when the ring is full, or the control plane's
 * xlb_flow_log_fold. An entry is XLB_FLOW_LOG_ID_SHIFT-shifted backend id (never 0), the
 * XLB_FLOW_LOG_F_* flags and the packet's length; a free slot is 0. */
#define XLB_FLOW_LOG_SLOTS 256 /* entries a CPU's ring holds (a power of two) */
#define XLB_FLOW_LOG_ID_SHIFT 32
#define XLB_FLOW_LOG_F_REPLY (1u << 31)  /* a reply packet (reply_packets, reply_bytes) */
#define XLB_FLOW_LOG_F_NEW (1u << 30)    /* a new flow's first packet (new_conns too) */
#define XLB_FLOW_LOG_BYTES_MASK ((1u << 30) - 1)
#define XLB_FLOW_LOG_HDR_WORDS 8         /* head, tail, lock and padding: the entries start a line */
#define XLB_FLOW_LOG_LOCK_TRIES 64       /* the control plane's fold: attempts at a held ring's lock per run */
#define XLB_FLOW_LOG_BUSY (1u << 31)     /* xlb_flow_log_fold's result: a ring stayed locked (run it again) */
struct xlb_flow_log {
	__u64 head; /* entries ever added */
	__u64 tail; /* entries ever folded */
	__u64 lock; /* 1 while one folds */
	__u64 pad[XLB_FLOW_LOG_HDR_WORDS - 3]; /* zero */
	__u64 ent[XLB_FLOW_LOG_SLOTS]; /* entry i at ent[i % XLB_FLOW_LOG_SLOTS] */
};

/* IPv6: the same maps as IPv4 with 16-byte addresses (four network-order words).
 * VIP ids, backend ids, Maglev tables and counters are shared with IPv4: one id
 * space, so a backend id indexes either xlb_backends or xlb_backends6. */
#define XLB_IPV6_WORDS 4

/* Key of xlb_vip6 (hash). */
struct xlb_vip6_key {
	__u32 addr[XLB_IPV6_WORDS]; /* VIP address, network order */
	__u16 port;                 /* network order; 0 for an IP-only VIP */
	__u8 proto;                 /* IPPROTO_TCP/UDP; 0 for an IP-only VIP */
	__u8 pad;                   /* zero */
	__u32 scope;                /* attachment scope (xlb_iface.scope) */
};
/* Value of xlb_vip6: struct xlb_vip_val. */

/* Value of xlb_backends6 (array indexed by backend id, like xlb_backends). */
struct xlb_backend6 {
	__u32 addr[XLB_IPV6_WORDS]; /* backend address, network order; all zero = no backend */
	__u16 port;                 /* network order; 0 keeps the destination port */
	__u8 flags;                 /* XLB_BACKEND_F_* */
	__u8 pad;                   /* zero */
};

/* Key of xlb_ct6 (LRU hash): the packet's own 5-tuple, as it arrives. */
struct xlb_ct6_key {
	__u32 saddr[XLB_IPV6_WORDS]; /* network order */
	__u32 daddr[XLB_IPV6_WORDS]; /* network order */
	__u16 sport;                 /* network order; 0 for protocols without ports */
	__u16 dport;                 /* network order; 0 for protocols without ports */
	__u8 proto;                  /* IPPROTO_* (after the extension headers) */
	__u8 pad[3];                 /* zero */
};

/* Value of xlb_ct6 (fields as in xlb_ct4_val). */
struct xlb_ct6_val {
	__u32 nat_addr[XLB_IPV6_WORDS]; /* FWD: backend address; REV: VIP address */
	__u16 nat_port;                 /* FWD: backend port; REV: VIP port (0 for IP-only) */
	__u8 dir;                       /* XLB_DIR_FWD or XLB_DIR_REV */
	__u8 state;                     /* XLB_CT_* */
	__u32 vip_id;                   /* for counters */
	__u32 backend_id;               /* for counters */
	__u32 pad;                      /* zero */
	__u64 last_seen_ns;             /* coarse monotonic clock */
	__u64 pend;                     /* as xlb_ct4_val.pend (established tier only) */
};

/* Key of xlb_affinity6 (LRU hash); the value is struct xlb_affinity4_val. */
struct xlb_affinity6_key {
	__u32 client[XLB_IPV6_WORDS]; /* client address, network order */
	__u32 vip_id;
};

#ifndef __BPF__
_Static_assert(sizeof(struct xlb_vip6_key) == 24, "xlb_vip6_key size");
_Static_assert(offsetof(struct xlb_vip6_key, scope) == 20, "xlb_vip6_key.scope");
_Static_assert(sizeof(struct xlb_backend6) == 20, "xlb_backend6 size");
_Static_assert(sizeof(struct xlb_ct6_key) == 40, "xlb_ct6_key size");
_Static_assert(offsetof(struct xlb_ct6_key, proto) == 36, "xlb_ct6_key.proto");
_Static_assert(sizeof(struct xlb_ct6_val) == 48, "xlb_ct6_val size");
_Static_assert(offsetof(struct xlb_ct6_val, pend) == 40, "xlb_ct6_val.pend");
_Static_assert(offsetof(struct xlb_ct6_val, last_seen_ns) == 32, "xlb_ct6_val.last_seen_ns");
_Static_assert(sizeof(struct xlb_affinity6_key) == 20, "xlb_affinity6_key size");
#endif

#ifndef __BPF__
/* The addon and the TS layout test rely on these exact layouts. */
_Static_assert(sizeof(struct xlb_vip4_key) == 12, "xlb_vip4_key size");
_Static_assert(offsetof(struct xlb_vip4_key, scope) == 8, "xlb_vip4_key.scope");
_Static_assert(sizeof(struct xlb_vip_val) == 24, "xlb_vip_val size");
_Static_assert(offsetof(struct xlb_vip_val, table_m) == 20, "xlb_vip_val.table_m");
_Static_assert(offsetof(struct xlb_vip_val, hairpin_addr) == 16, "xlb_vip_val.hairpin_addr");
_Static_assert(offsetof(struct xlb_vip_val, affinity_timeout_s) == 8, "xlb_vip_val.affinity_timeout_s");
_Static_assert(sizeof(struct xlb_affinity4_key) == 8, "xlb_affinity4_key size");
_Static_assert(sizeof(struct xlb_affinity4_val) == 16, "xlb_affinity4_val size");
_Static_assert(sizeof(struct xlb_backend4) == 8, "xlb_backend4 size");
_Static_assert(sizeof(struct xlb_ct4_key) == 16, "xlb_ct4_key size");
_Static_assert(offsetof(struct xlb_ct4_key, proto) == 12, "xlb_ct4_key.proto");
_Static_assert(sizeof(struct xlb_ct4_val) == 40, "xlb_ct4_val size");
_Static_assert(offsetof(struct xlb_ct4_val, pend) == 32, "xlb_ct4_val.pend");
_Static_assert(sizeof(struct xlb_ct4_way) == 56, "xlb_ct4_way size");
_Static_assert(sizeof(struct xlb_clock) == 16, "xlb_clock size");
_Static_assert(sizeof(struct xlb_ct_seen_word) == 8 * XLB_CT_SEEN_FILTERS, "xlb_ct_seen_word size");
/* A key's second filter bit comes from hash bits its word index does not use, and from 6 of them (0..63). */
_Static_assert(XLB_CT_SEEN_BIT2_SHIFT >= 6 + XLB_CT_SEEN_WORDS_LOG2 && 32 - XLB_CT_SEEN_BIT2_SHIFT == 6, "xlb_ct_seen bit 2");
_Static_assert(32 - XLB_CT_SEEN_BIT3_SHIFT == 6 && XLB_CT_SEEN_BIT4_SHIFT + 6 == XLB_CT_SEEN_BIT3_SHIFT, "xlb_ct_seen bits 3 and 4: two 6-bit fields of g");
_Static_assert(sizeof(struct xlb_ct_seen_ctl) == 8, "xlb_ct_seen_ctl size");
_Static_assert(sizeof(struct xlb_ct4_bucket) == 8 + 56 * XLB_CT_NEW_WAYS, "xlb_ct4_bucket size");
_Static_assert(sizeof(struct xlb_ct4_new_edit) == 16 + 40 + 8, "xlb_ct4_new_edit size");
_Static_assert(offsetof(struct xlb_ct4_bucket, way) == 8, "xlb_ct4_bucket.way");
_Static_assert(offsetof(struct xlb_ct4_val, snat_addr) == 24, "xlb_ct4_val.snat_addr");
_Static_assert(offsetof(struct xlb_ct4_val, flags) == 30, "xlb_ct4_val.flags");
_Static_assert(sizeof(struct xlb_snat4_key) == 16, "xlb_snat4_key size");
_Static_assert(sizeof(struct xlb_snat4_val) == 4, "xlb_snat4_val size");
_Static_assert(offsetof(struct xlb_ct4_val, vip_id) == 8, "xlb_ct4_val.vip_id");
_Static_assert(offsetof(struct xlb_ct4_val, last_seen_ns) == 16, "xlb_ct4_val.last_seen_ns");
_Static_assert(sizeof(struct xlb_iface) == 16, "xlb_iface size");
_Static_assert(offsetof(struct xlb_iface, mac) == 8, "xlb_iface.mac");
_Static_assert(sizeof(struct xlb_neigh4_key) == 8, "xlb_neigh4_key size");
_Static_assert(sizeof(struct xlb_neigh6_key) == 20, "xlb_neigh6_key size");
_Static_assert(offsetof(struct xlb_neigh6_key, scope) == 16, "xlb_neigh6_key.scope");
_Static_assert(sizeof(struct xlb_stats) == 56, "xlb_stats size");
_Static_assert(offsetof(struct xlb_vip_val, table_class) == 7, "xlb_vip_val.table_class");
_Static_assert(sizeof(struct xlb_maglev_table0) == 4 * XLB_MAGLEV_CLASS_WORDS(0), "xlb_maglev_table0 size");
_Static_assert(sizeof(struct xlb_maglev_table2) == 4 * XLB_MAGLEV_CLASS_WORDS(2), "xlb_maglev_table2 size");
_Static_assert(sizeof(struct xlb_maglev_table5) == 4 * XLB_MAGLEV_CLASS_WORDS(5), "xlb_maglev_table5 size");
_Static_assert(XLB_MAGLEV_CLASS_WORDS(2) > XLB_MAGLEV_DEFAULT_M, "the default M fits class 2 (64 KiB)");
_Static_assert(sizeof(struct xlb_maglev_table6) == XLB_MAGLEV_BYTE_VALUE, "xlb_maglev_table6 size");
_Static_assert(XLB_MAGLEV_BYTE_SLOTS >= XLB_MAGLEV_DEFAULT_M, "the default M fits the byte class");
_Static_assert(XLB_MAGLEV_BYTE_IDS == 1 << (8 * sizeof(__u8)), "a slot's byte names any position of recs[]");
_Static_assert(sizeof(struct xlb_maglev_rec) == XLB_MAGLEV_REC_SIZE, "xlb_maglev_rec size");
_Static_assert(XLB_MAGLEV_BYTE_VALUE % 8 == 0, "the byte class's value is its array element, unpadded");
#endif

#endif /* XLB_SHARED_H */
