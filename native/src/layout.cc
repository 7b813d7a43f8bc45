// Layout of bpf/xlb_shared.h as this compiler sees it (sizeof/offsetof), and its
// constants. A separate translation unit: for userspace xlb_shared.h typedefs
// __u8..__u64 itself, which conflicts with <linux/types.h> (__u64 is unsigned
// long long there), pulled in by the libbpf/linux headers the other files need.
#include <napi.h>

// xlb_shared.h uses C11 _Static_assert; make it the C++ keyword so the
// header's layout asserts are checked here too.
#ifndef _Static_assert
#define _Static_assert static_assert
#endif
#include "xlb_shared.h"

#include "common.h"

namespace xlb {

uint32_t LayoutVersion() { return XLB_LAYOUT_VERSION; }

void AddSharedConstants(Napi::Env env, Napi::Object c) {
#define C(name) c.Set(#name, Napi::Number::New(env, static_cast<double>(name)));
  // xlb_shared.h
  C(XLB_LAYOUT_VERSION) C(XLB_MAX_VIPS) C(XLB_MAX_BACKENDS) C(XLB_MAX_IFINDEX) C(XLB_CT_MAX)
  C(XLB_MAGLEV_DEFAULT_M) C(XLB_MAGLEV_HDR_SLOT) C(XLB_MAGLEV_FIRST_SLOT) C(XLB_BACKEND_NONE)
  C(XLB_MAGLEV_CLASSES) C(XLB_MAGLEV_WORD_CLASSES) C(XLB_MAGLEV_BYTE_CLASS) C(XLB_MAGLEV_BYTE_IDS)
  C(XLB_MAGLEV_BYTE_VALUE) C(XLB_MAGLEV_BYTE_SLOTS) C(XLB_MAGLEV_REC_SIZE) C(XLB_MAGLEV_CLASS0_WORDS) C(XLB_MAGLEV_CLASS_SHIFT) C(XLB_MAGLEV_TABLE_KEY)
  C(XLB_CT_REFRESH_NS) C(XLB_VIP_F_IP_ONLY) C(XLB_DIR_FWD) C(XLB_DIR_REV) C(XLB_IFACE_F_BALANCE) C(XLB_IFACE_F_IP_ONLY)
  C(XLB_CT_NONE) C(XLB_CT_SYN) C(XLB_CT_EST) C(XLB_CT_CLOSING)
  C(XLB_VIP_F_AFFINITY) C(XLB_BACKEND_F_DRAIN) C(XLB_AFFINITY_MAX) C(XLB_NS_PER_S)
  C(XLB_HASH_ETH_SRC) C(XLB_HASH_ETH_DST) C(XLB_HASH_IP_SRC) C(XLB_HASH_IP_DST) C(XLB_HASH_TP_SRC) C(XLB_HASH_TP_DST)
  C(XLB_G_PACKETS) C(XLB_G_NOT_IPV4) C(XLB_G_MALFORMED) C(XLB_G_FRAGMENT) C(XLB_G_CT_HIT)
  C(XLB_G_CT_RECREATE) C(XLB_G_NEW_FLOW) C(XLB_G_MIDSTREAM) C(XLB_G_NO_BACKEND) C(XLB_G_CT_FULL)
  C(XLB_G_NAT_ERROR) C(XLB_G_ICMP_RELATED) C(XLB_G_REJECT) C(XLB_G_REJECT_FAIL) C(XLB_G_NEIGH_REPLY) C(XLB_G_CT_PROMOTED)
  C(XLB_G_SNAT) C(XLB_G_SNAT_NO_PORT) C(XLB_G_HAIRPIN) C(XLB_G_SCTP_TOO_LONG) C(XLB_G_COUNT)
  C(XLB_VIP_F_REJECT) C(XLB_IFACE_F_NEIGH) C(XLB_NEIGH_MAX)
  C(XLB_VIP_F_SNAT_ADDR) C(XLB_VIP_F_SNAT_BACKEND) C(XLB_VIP_F_SNAT_CLIENT)
  C(XLB_SNAT_K_BACKEND) C(XLB_SNAT_K_CLIENT) C(XLB_CT_F_SNAT) C(XLB_CT_F_HAIRPIN) C(XLB_SNAT_RULES_MAX)
  C(XLB_G_IPV6) C(XLB_G_EXT_PASS) C(XLB_IPV6_WORDS) C(XLB_CT_NEW_WAYS) C(XLB_CT_NEW_MAX)
  C(XLB_G_CT_SKIP) C(XLB_CT_SEEN_FILTERS) C(XLB_CT_SEEN_BIT2_SHIFT) C(XLB_CT_SEEN_MULT) C(XLB_CT_SEEN_BIT3_SHIFT) C(XLB_CT_SEEN_BIT4_SHIFT) C(XLB_CT_PEND_PKT_SHIFT)
  C(XLB_G_ADDR_SKIP) C(XLB_ADDR_FILTER_WORDS) C(XLB_ADDR_FILTER_BITS_LOG2) C(XLB_ADDR_FILTER_MULT)
  C(XLB_G_CT_BUSY) C(XLB_CTN_OP_GET) C(XLB_CTN_OP_DELETE) C(XLB_CTN_OP_SET)
  C(XLB_FLOW_LOG_SLOTS) C(XLB_FLOW_LOG_ID_SHIFT) C(XLB_FLOW_LOG_F_REPLY) C(XLB_FLOW_LOG_F_NEW)
  C(XLB_FLOW_LOG_BYTES_MASK) C(XLB_FLOW_LOG_LOCK_TRIES) C(XLB_FLOW_LOG_BUSY)
#undef C
}

// ---- layout ---------------------------------------------------------------------------

Napi::Value Layout(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object res = Napi::Object::New(env);
  Napi::Object cur, offs;
#define XLB_STRUCT(s)                                   \
  cur = Napi::Object::New(env);                         \
  offs = Napi::Object::New(env);                        \
  cur.Set("size", Napi::Number::New(env, sizeof(struct s))); \
  cur.Set("offsets", offs);                             \
  res.Set(#s, cur);
#define XLB_FIELD(s, f) offs.Set(#f, Napi::Number::New(env, offsetof(struct s, f)));

  XLB_STRUCT(xlb_vip4_key)
  XLB_FIELD(xlb_vip4_key, addr)
  XLB_FIELD(xlb_vip4_key, port)
  XLB_FIELD(xlb_vip4_key, proto)
  XLB_FIELD(xlb_vip4_key, pad)
  XLB_FIELD(xlb_vip4_key, scope)

  XLB_STRUCT(xlb_vip_val)
  XLB_FIELD(xlb_vip_val, vip_id)
  XLB_FIELD(xlb_vip_val, flags)
  XLB_FIELD(xlb_vip_val, hash_fields)
  XLB_FIELD(xlb_vip_val, table_class)
  XLB_FIELD(xlb_vip_val, affinity_timeout_s)
  XLB_FIELD(xlb_vip_val, snat_addr)
  XLB_FIELD(xlb_vip_val, hairpin_addr)
  XLB_FIELD(xlb_vip_val, table_m)

  XLB_STRUCT(xlb_affinity4_key)
  XLB_FIELD(xlb_affinity4_key, client)
  XLB_FIELD(xlb_affinity4_key, vip_id)

  XLB_STRUCT(xlb_affinity4_val)
  XLB_FIELD(xlb_affinity4_val, backend_id)
  XLB_FIELD(xlb_affinity4_val, pad)
  XLB_FIELD(xlb_affinity4_val, last_seen_ns)

  XLB_STRUCT(xlb_backend4)
  XLB_FIELD(xlb_backend4, addr)
  XLB_FIELD(xlb_backend4, port)
  XLB_FIELD(xlb_backend4, flags)
  XLB_FIELD(xlb_backend4, pad)
  XLB_STRUCT(xlb_maglev_rec)
  XLB_FIELD(xlb_maglev_rec, id)
  XLB_FIELD(xlb_maglev_rec, be)

  XLB_STRUCT(xlb_ct4_key)
  XLB_FIELD(xlb_ct4_key, saddr)
  XLB_FIELD(xlb_ct4_key, daddr)
  XLB_FIELD(xlb_ct4_key, sport)
  XLB_FIELD(xlb_ct4_key, dport)
  XLB_FIELD(xlb_ct4_key, proto)
  XLB_FIELD(xlb_ct4_key, pad)

  XLB_STRUCT(xlb_ct_seen_word)
  XLB_FIELD(xlb_ct_seen_word, bits)
  XLB_STRUCT(xlb_ct_seen_ctl)
  XLB_FIELD(xlb_ct_seen_ctl, active)
  XLB_FIELD(xlb_ct_seen_ctl, rebuilds)
  XLB_STRUCT(xlb_clock)
  XLB_FIELD(xlb_clock, jiffies)
  XLB_FIELD(xlb_clock, ns)
  XLB_STRUCT(xlb_ct4_way)
  XLB_FIELD(xlb_ct4_way, key)
  XLB_FIELD(xlb_ct4_way, val)
  XLB_STRUCT(xlb_ct4_bucket)
  XLB_FIELD(xlb_ct4_bucket, ctl)
  XLB_FIELD(xlb_ct4_bucket, way)
  XLB_STRUCT(xlb_flow_log)
  XLB_FIELD(xlb_flow_log, head)
  XLB_FIELD(xlb_flow_log, tail)
  XLB_FIELD(xlb_flow_log, lock)
  XLB_FIELD(xlb_flow_log, pad)
  XLB_FIELD(xlb_flow_log, ent)
  XLB_STRUCT(xlb_ct4_new_edit)
  XLB_FIELD(xlb_ct4_new_edit, key)
  XLB_FIELD(xlb_ct4_new_edit, val)
  XLB_FIELD(xlb_ct4_new_edit, op)
  XLB_FIELD(xlb_ct4_new_edit, result)
  XLB_STRUCT(xlb_ct4_val)
  XLB_FIELD(xlb_ct4_val, nat_addr)
  XLB_FIELD(xlb_ct4_val, nat_port)
  XLB_FIELD(xlb_ct4_val, dir)
  XLB_FIELD(xlb_ct4_val, state)
  XLB_FIELD(xlb_ct4_val, vip_id)
  XLB_FIELD(xlb_ct4_val, backend_id)
  XLB_FIELD(xlb_ct4_val, last_seen_ns)
  XLB_FIELD(xlb_ct4_val, snat_addr)
  XLB_FIELD(xlb_ct4_val, snat_port)
  XLB_FIELD(xlb_ct4_val, flags)
  XLB_FIELD(xlb_ct4_val, pad)
  XLB_FIELD(xlb_ct4_val, pend)

  XLB_STRUCT(xlb_snat4_key)
  XLB_FIELD(xlb_snat4_key, prefixlen)
  XLB_FIELD(xlb_snat4_key, scope)
  XLB_FIELD(xlb_snat4_key, kind)
  XLB_FIELD(xlb_snat4_key, addr)

  XLB_STRUCT(xlb_snat4_val)
  XLB_FIELD(xlb_snat4_val, addr)

  XLB_STRUCT(xlb_iface)
  XLB_FIELD(xlb_iface, scope)
  XLB_FIELD(xlb_iface, flags)
  XLB_FIELD(xlb_iface, mac)
  XLB_FIELD(xlb_iface, pad)

  XLB_STRUCT(xlb_neigh4_key)
  XLB_FIELD(xlb_neigh4_key, addr)
  XLB_FIELD(xlb_neigh4_key, scope)

  XLB_STRUCT(xlb_neigh6_key)
  XLB_FIELD(xlb_neigh6_key, addr)
  XLB_FIELD(xlb_neigh6_key, scope)

  XLB_STRUCT(xlb_stats)
  XLB_FIELD(xlb_stats, packets)
  XLB_FIELD(xlb_stats, bytes)
  XLB_FIELD(xlb_stats, reply_packets)
  XLB_FIELD(xlb_stats, reply_bytes)
  XLB_FIELD(xlb_stats, new_conns)
  XLB_FIELD(xlb_stats, drops)
  XLB_FIELD(xlb_stats, rejects)

  XLB_STRUCT(xlb_vip6_key)
  XLB_FIELD(xlb_vip6_key, addr)
  XLB_FIELD(xlb_vip6_key, port)
  XLB_FIELD(xlb_vip6_key, proto)
  XLB_FIELD(xlb_vip6_key, pad)
  XLB_FIELD(xlb_vip6_key, scope)

  XLB_STRUCT(xlb_backend6)
  XLB_FIELD(xlb_backend6, addr)
  XLB_FIELD(xlb_backend6, port)
  XLB_FIELD(xlb_backend6, flags)
  XLB_FIELD(xlb_backend6, pad)

  XLB_STRUCT(xlb_ct6_key)
  XLB_FIELD(xlb_ct6_key, saddr)
  XLB_FIELD(xlb_ct6_key, daddr)
  XLB_FIELD(xlb_ct6_key, sport)
  XLB_FIELD(xlb_ct6_key, dport)
  XLB_FIELD(xlb_ct6_key, proto)
  XLB_FIELD(xlb_ct6_key, pad)

  XLB_STRUCT(xlb_ct6_val)
  XLB_FIELD(xlb_ct6_val, nat_addr)
  XLB_FIELD(xlb_ct6_val, nat_port)
  XLB_FIELD(xlb_ct6_val, dir)
  XLB_FIELD(xlb_ct6_val, state)
  XLB_FIELD(xlb_ct6_val, vip_id)
  XLB_FIELD(xlb_ct6_val, backend_id)
  XLB_FIELD(xlb_ct6_val, pad)
  XLB_FIELD(xlb_ct6_val, last_seen_ns)
  XLB_FIELD(xlb_ct6_val, pend)

  XLB_STRUCT(xlb_affinity6_key)
  XLB_FIELD(xlb_affinity6_key, client)
  XLB_FIELD(xlb_affinity6_key, vip_id)
#undef XLB_STRUCT
#undef XLB_FIELD
  return res;
}

}  // namespace xlb
