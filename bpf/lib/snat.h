/* SPDX-License-Identifier: MIT */
/*
 * snat.h — which source address a newly balanced flow gets, if any (OVN's
 * order): a backend calling its own VIP (hairpin) gets the VIP or the load
 * balancer's hairpin_snat_ip; otherwise a router's lb_force_snat_ip (an
 * address, or router_ip: the router port toward the backend); otherwise the
 * router's snat rule covering the client. No flag, no source NAT: the backend
 * sees the real client.
 */
#ifndef XLB_SNAT_H
#define XLB_SNAT_H

#include "access.h"
#include "maps.h"
#include "parse.h"

/* Bits of an xlb_snat4_key that precede addr: scope and kind match exactly. */
#define XLB_SNAT_KEY_FIXED_BITS 64
#define XLB_SNAT_KEY_FULL_BITS (XLB_SNAT_KEY_FIXED_BITS + 32)

/* Returns the source address for the new flow (0: none) and sets the
 * conntrack flags it implies. */
XLB_INLINE __u32 xlb_snat4_pick(const struct xlb_pkt4 *p, const struct xlb_vip_val *vip,
				const struct xlb_backend4 *be, __u32 scope, __u8 *ct_flags)
{
	struct xlb_snat4_key k = { .prefixlen = XLB_SNAT_KEY_FULL_BITS, .scope = scope };
	struct xlb_snat4_val *v;

	if (be->addr == p->tuple.saddr) {
		*ct_flags = XLB_CT_F_SNAT | XLB_CT_F_HAIRPIN;
		return vip->hairpin_addr ? vip->hairpin_addr : p->tuple.daddr;
	}
	if (!(vip->flags & (XLB_VIP_F_SNAT_ADDR | XLB_VIP_F_SNAT_BACKEND | XLB_VIP_F_SNAT_CLIENT)))
		return 0;
	if (vip->flags & XLB_VIP_F_SNAT_ADDR) {
		*ct_flags = XLB_CT_F_SNAT;
		return vip->snat_addr;
	}
	if (vip->flags & XLB_VIP_F_SNAT_BACKEND) {
		k.kind = XLB_SNAT_K_BACKEND;
		k.addr = be->addr;
	} else {
		k.kind = XLB_SNAT_K_CLIENT;
		k.addr = p->tuple.saddr;
	}
	v = xlb_lookup(&xlb_snat4, &k);
	if (!v || !v->addr)
		return 0;
	*ct_flags = XLB_CT_F_SNAT;
	return v->addr;
}

#endif /* XLB_SNAT_H */
