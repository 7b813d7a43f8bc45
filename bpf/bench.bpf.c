/* SPDX-License-Identifier: MIT */
/*
 * bench.bpf.c — the floor programs the benchmarks measure xlb against: a no-op
 * on each hook and an XDP MAC swap that bounces the frame (XDP_TX).
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "Dual MIT/GPL";

SEC("xdp")
int bench_xdp_noop(struct xdp_md *ctx)
{
	return XDP_PASS;
}

SEC("tc")
int bench_tc_noop(struct __sk_buff *skb)
{
	return TC_ACT_OK;
}

SEC("xdp")
int bench_xdp_macswap(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	unsigned char tmp[ETH_ALEN];

	if ((void *)(eth + 1) > data_end)
		return XDP_DROP;
	__builtin_memcpy(tmp, eth->h_source, ETH_ALEN);
	__builtin_memcpy(eth->h_source, eth->h_dest, ETH_ALEN);
	__builtin_memcpy(eth->h_dest, tmp, ETH_ALEN);
	return XDP_TX;
}

/*
 * Senders for the "in place" method: run through BPF_PROG_TEST_RUN with
 * BPF_F_TEST_XDP_LIVE_FRAMES on the sender's veth end, XDP_TX pushes each
 * frame to the peer, where the program under test runs in native XDP.
 *
 * Live-frame pages are reused as they are: whatever the receiver rewrote in
 * place (xlb's NAT, forwarding's TTL and MACs) would be sent again. So every
 * sender first copies the frame back from bench_tmpl (key 0), which the
 * benchmark fills with the frame of each run.
 */
#define BENCH_FRAME_LEN 64 /* bench/common.ts tcpFrame() without payload growth */

struct bench_frame {
	__u32 len; /* BENCH_FRAME_LEN when set, 0: send the page as it is */
	__u8 data[BENCH_FRAME_LEN];
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct bench_frame);
} bench_tmpl SEC(".maps");

static __always_inline int bench_restore(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u32 zero = 0;
	struct bench_frame *t = bpf_map_lookup_elem(&bench_tmpl, &zero);

	if (!t || t->len != BENCH_FRAME_LEN)
		return 0;
	if (data + BENCH_FRAME_LEN > data_end)
		return -1;
	__builtin_memcpy(data, t->data, BENCH_FRAME_LEN);
	return 0;
}

SEC("xdp")
int bench_xdp_tx(struct xdp_md *ctx)
{
	if (bench_restore(ctx))
		return XDP_DROP;
	return XDP_TX;
}

static __always_inline void bench_ip_csum(__u8 *p)
{
	__u16 *w = (__u16 *)(p + 14);
	__u32 sum = 0;
	int i;

	p[24] = 0;
	p[25] = 0;
#pragma unroll
	for (i = 0; i < 10; i++)
		sum += w[i];
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	*(__u16 *)(p + 24) = ~sum & 0xffff;
}

/* As bench_xdp_tx for frames the receiver forwards: forwarding rewrites the
 * frame in place (TTL, MACs) and live-frame pages are reused as they are, so
 * the TTL is put back on every send (the receiver's neighbour entry carries the
 * receiver's own MAC, so the rewritten MACs stay valid). */
SEC("xdp")
int bench_xdp_tx_fwd(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u8 *p;

	if (bench_restore(ctx))
		return XDP_DROP;
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	p = data;
	if ((void *)(p + 14 + 20) > data_end)
		return XDP_DROP;
	p[22] = 64;
	bench_ip_csum(p);
	return XDP_TX;
}

__u64 bench_seq;

/* Frame n's own IPv4 source and TCP source port (10.128.0.0/9 + n / 60000,
 * port 1024 + n % 60000): distinct 5-tuples, new flows. The frame holds its
 * Ethernet, IPv4 and the TCP ports (checked by the caller). */
static __always_inline void bench_fresh_source(__u8 *p, __u64 n)
{
	__u32 src = 0x0a800000 + (__u32)(n / 60000);
	__u16 sport = 1024 + (__u16)(n % 60000);

	p[26] = src >> 24; p[27] = src >> 16; p[28] = src >> 8; p[29] = src;
	p[34] = sport >> 8; p[35] = sport;
	bench_ip_csum(p);
}

/* As bench_xdp_tx, but every frame gets a fresh IPv4 source and TCP source
 * port (distinct 5-tuples: new flows), the IPv4 header checksum recomputed. */
SEC("xdp")
int bench_xdp_tx_seq(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u8 *p;
	__u64 n = __sync_fetch_and_add(&bench_seq, 1);

	if (bench_restore(ctx))
		return XDP_DROP;
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	p = data;
	if ((void *)(p + 14 + 20 + 4) > data_end)
		return XDP_DROP;
	bench_fresh_source(p, n);
	return XDP_TX;
}

/*
 * A sender cycling over a set of frames (the scale stage's in-place method:
 * flows spread over many VIPs): frame n of a run is bench_cycle[n % len],
 * copied over the live-frame page; with fresh set, its IPv4 source and TCP
 * source port are then made unique as bench_xdp_tx_seq makes them (new flows
 * to the set's destinations). bench_cycle_ctl (key 0) holds len and fresh.
 */
#define BENCH_CYCLE_MAX 4096

struct bench_cycle_ctl {
	__u32 len;   /* frames in use, 1..BENCH_CYCLE_MAX (0: drop every frame) */
	__u32 fresh; /* 1: a fresh source per frame */
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, BENCH_CYCLE_MAX);
	__type(key, __u32);
	__type(value, struct bench_frame);
} bench_cycle SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct bench_cycle_ctl);
} bench_cycle_ctl SEC(".maps");

SEC("xdp")
int bench_xdp_tx_cycle(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u64 n = __sync_fetch_and_add(&bench_seq, 1);
	__u32 zero = 0, i;
	struct bench_cycle_ctl *c = bpf_map_lookup_elem(&bench_cycle_ctl, &zero);
	struct bench_frame *t;
	__u8 *p = data;

	if (!c || !c->len || c->len > BENCH_CYCLE_MAX)
		return XDP_DROP;
	i = (__u32)(n % c->len);
	t = bpf_map_lookup_elem(&bench_cycle, &i);
	if (!t || t->len != BENCH_FRAME_LEN || data + BENCH_FRAME_LEN > data_end)
		return XDP_DROP;
	__builtin_memcpy(data, t->data, BENCH_FRAME_LEN);
	if (c->fresh)
		bench_fresh_source(p, n);
	return XDP_TX;
}
