/* SPDX-License-Identifier: MIT */
/*
 * ctstate.h — conntrack's TCP state machine and the rule that confirms a new
 * flow (moves it from the new-flow tier to the established one), shared by
 * both families and both tiers.
 */
#ifndef XLB_CTSTATE_H
#define XLB_CTSTATE_H

#include "access.h"
#include "maps.h"
#include "parse.h"

/* The TCP state after a packet of direction dir with flags in state cur. */
XLB_INLINE __u8 xlb_ct_next_state(__u8 cur, __u8 dir, __u8 tcp_flags)
{
	if (tcp_flags & (XLB_TCP_FLAG_FIN | XLB_TCP_FLAG_RST))
		return XLB_CT_CLOSING;
	if (tcp_flags & XLB_TCP_FLAG_SYN) {
		if (dir == XLB_DIR_FWD && !(tcp_flags & XLB_TCP_FLAG_ACK))
			return cur == XLB_CT_EST ? XLB_CT_EST : XLB_CT_SYN; /* (re)open */
		return XLB_CT_EST; /* SYN-ACK from the backend */
	}
	if (cur == XLB_CT_SYN && (tcp_flags & XLB_TCP_FLAG_ACK) && dir == XLB_DIR_REV)
		return XLB_CT_EST;
	return cur;
}

/* Whether a packet hitting a new-flow entry confirms its flow: the backend
 * answered (a reverse packet), and for TCP not only with its SYN-ACK (which a
 * spoofed SYN gets too), a RST or a FIN. */
XLB_INLINE int xlb_ct_confirms(__u8 dir, __u8 proto, __u8 tcp_flags)
{
	if (dir != XLB_DIR_REV)
		return 0;
	return proto != IPPROTO_TCP ||
	       !(tcp_flags & (XLB_TCP_FLAG_SYN | XLB_TCP_FLAG_RST | XLB_TCP_FLAG_FIN));
}

/* A new flow's TCP state (both families): a mid-stream packet starts established. */
XLB_INLINE __u8 xlb_ct_new_state(__u8 proto, __u8 tcp_flags)
{
	if (proto != IPPROTO_TCP)
		return XLB_CT_NONE;
	return (tcp_flags & XLB_TCP_FLAG_SYN) && !(tcp_flags & XLB_TCP_FLAG_ACK) ?
		       XLB_CT_SYN : xlb_ct_next_state(XLB_CT_EST, XLB_DIR_FWD, tcp_flags);
}

/* A hit in the established tier (both families): follows the TCP state, and
 * the clock at most once per XLB_CT_REFRESH_NS (to keep the cache line clean).
 * Returns 1 when the entry changed (state or refresh): only then does the
 * caller look at the flow's other direction. */
XLB_INLINE int xlb_ct_refresh(__u8 *state, __u64 *last_seen_ns, __u8 proto, __u8 dir, __u8 tcp_flags)
{
	__u8 next = *state;
	__u64 now;

	if (proto == IPPROTO_TCP)
		next = xlb_ct_next_state(next, dir, tcp_flags);
	now = xlb_now_ns();
	if (now - *last_seen_ns <= XLB_CT_REFRESH_NS && next == *state)
		return 0;
	*last_seen_ns = now;
	*state = next;
	return 1;
}

#endif /* XLB_CTSTATE_H */
