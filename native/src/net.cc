// Interface-related calls (each takes a netns first), XDP, tc, prog test runs.
#include "common.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/bpf.h>
#include <linux/if_link.h>
#include <net/if.h>

#include <cstring>
#include <vector>

namespace xlb {

namespace {

std::string IfStr(uint32_t ifindex) { return "ifindex " + std::to_string(ifindex); }

std::string NsStr(const std::optional<std::string>& ns) { return ns ? ", netns " + *ns : ""; }

__u32 XdpModeFlag(Napi::Env env, const std::string& mode) {
  if (mode == "native") return XDP_FLAGS_DRV_MODE;
  if (mode == "generic") return XDP_FLAGS_SKB_MODE;
  ThrowType(env, "mode must be 'native' or 'generic'");
}

enum bpf_tc_attach_point TcDir(Napi::Env env, const std::string& dir) {
  if (dir == "ingress") return BPF_TC_INGRESS;
  if (dir == "egress") return BPF_TC_EGRESS;
  ThrowType(env, "dir must be 'ingress' or 'egress'");
}

}  // namespace

static Napi::Value IfNameToIndex(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto ns = ArgNetns(info, 0);
  std::string name = ArgString(info, 1, "ifname");
  if (name.empty() || name.size() >= IF_NAMESIZE) ThrowType(env, "ifname must be 1..15 characters");
  unsigned idx;
  int err = 0;
  {
    NetnsGuard g(env, ns);
    errno = 0;
    idx = if_nametoindex(name.c_str());
    if (idx == 0) err = errno ? errno : ENODEV;
  }
  if (idx == 0) ThrowErrno(env, "if_nametoindex", "if_nametoindex(" + name + NsStr(ns) + ")", err);
  return Napi::Number::New(env, idx);
}

static Napi::Value XdpAttach(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto ns = ArgNetns(info, 0);
  uint32_t ifindex = ArgU32(info, 1, "ifindex");
  int prog_fd = ArgFd(info, 2, "progFd");
  std::string mode = ArgString(info, 3, "mode");
  __u32 flags = XdpModeFlag(env, mode);
  std::optional<uint32_t> replace = ArgOptU32(info, 4, "replaceFd");
  LIBBPF_OPTS(bpf_xdp_attach_opts, ao);
  if (replace) {
    flags |= XDP_FLAGS_REPLACE;
    ao.old_prog_fd = static_cast<int>(*replace);
  }
  int err;
  {
    NetnsGuard g(env, ns);
    err = bpf_xdp_attach(static_cast<int>(ifindex), prog_fd, flags, &ao);
  }
  if (err)
    ThrowErrno(env, "bpf_xdp_attach",
               "bpf_xdp_attach(" + IfStr(ifindex) + NsStr(ns) + ", prog fd " + std::to_string(prog_fd) + ", " + mode +
                   (replace ? ", replace fd " + std::to_string(*replace) : "") + ")",
               err);
  return env.Undefined();
}

static Napi::Value XdpDetach(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto ns = ArgNetns(info, 0);
  uint32_t ifindex = ArgU32(info, 1, "ifindex");
  std::string mode = ArgString(info, 2, "mode");
  __u32 flags = XdpModeFlag(env, mode);
  int err;
  {
    NetnsGuard g(env, ns);
    err = bpf_xdp_detach(static_cast<int>(ifindex), flags, nullptr);
  }
  if (err) ThrowErrno(env, "bpf_xdp_detach", "bpf_xdp_detach(" + IfStr(ifindex) + NsStr(ns) + ", " + mode + ")", err);
  return env.Undefined();
}

static Napi::Value XdpQuery(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto ns = ArgNetns(info, 0);
  uint32_t ifindex = ArgU32(info, 1, "ifindex");
  LIBBPF_OPTS(bpf_xdp_query_opts, qo);
  int err;
  {
    NetnsGuard g(env, ns);
    err = bpf_xdp_query(static_cast<int>(ifindex), 0, &qo);
  }
  if (err) ThrowErrno(env, "bpf_xdp_query", "bpf_xdp_query(" + IfStr(ifindex) + NsStr(ns) + ")", err);
  const char* mode = "none";
  switch (qo.attach_mode) {
    case XDP_ATTACHED_DRV: mode = "native"; break;
    case XDP_ATTACHED_SKB: mode = "generic"; break;
    case XDP_ATTACHED_HW: mode = "offload"; break;
    case XDP_ATTACHED_MULTI: mode = "multi"; break;
    default: break;
  }
  Napi::Object o = Napi::Object::New(env);
  o.Set("progId", Napi::Number::New(env, qo.prog_id));
  o.Set("mode", Napi::String::New(env, mode));
  o.Set("driverProgId", Napi::Number::New(env, qo.drv_prog_id));
  o.Set("skbProgId", Napi::Number::New(env, qo.skb_prog_id));
  o.Set("hwProgId", Napi::Number::New(env, qo.hw_prog_id));
  return o;
}

// ---- tc (clsact + direct-action cls_bpf via libbpf) --------------------------------

static Napi::Value TcHookCreate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto ns = ArgNetns(info, 0);
  uint32_t ifindex = ArgU32(info, 1, "ifindex");
  LIBBPF_OPTS(bpf_tc_hook, hook);
  hook.ifindex = static_cast<int>(ifindex);
  hook.attach_point = static_cast<enum bpf_tc_attach_point>(BPF_TC_INGRESS | BPF_TC_EGRESS);
  int err;
  {
    NetnsGuard g(env, ns);
    err = bpf_tc_hook_create(&hook);
  }
  if (err == -EEXIST) return Napi::Boolean::New(env, false);
  if (err) ThrowErrno(env, "bpf_tc_hook_create", "bpf_tc_hook_create(" + IfStr(ifindex) + NsStr(ns) + ", clsact)", err);
  return Napi::Boolean::New(env, true);
}

static Napi::Value TcHookDestroy(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto ns = ArgNetns(info, 0);
  uint32_t ifindex = ArgU32(info, 1, "ifindex");
  LIBBPF_OPTS(bpf_tc_hook, hook);
  hook.ifindex = static_cast<int>(ifindex);
  hook.attach_point = static_cast<enum bpf_tc_attach_point>(BPF_TC_INGRESS | BPF_TC_EGRESS);
  int err;
  {
    NetnsGuard g(env, ns);
    err = bpf_tc_hook_destroy(&hook);
  }
  if (err)
    ThrowErrno(env, "bpf_tc_hook_destroy", "bpf_tc_hook_destroy(" + IfStr(ifindex) + NsStr(ns) + ", clsact)", err);
  return env.Undefined();
}

static Napi::Value TcAttach(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto ns = ArgNetns(info, 0);
  uint32_t ifindex = ArgU32(info, 1, "ifindex");
  std::string dir = ArgString(info, 2, "dir");
  int prog_fd = ArgFd(info, 3, "progFd");
  uint32_t handle = ArgU32(info, 4, "handle");
  uint32_t priority = ArgU32(info, 5, "priority");
  bool replace = ArgBool(info, 6, "replace");
  LIBBPF_OPTS(bpf_tc_hook, hook);
  hook.ifindex = static_cast<int>(ifindex);
  hook.attach_point = TcDir(env, dir);
  LIBBPF_OPTS(bpf_tc_opts, to);
  to.prog_fd = prog_fd;
  to.handle = handle;
  to.priority = priority;
  to.flags = replace ? BPF_TC_F_REPLACE : 0;
  int err;
  {
    NetnsGuard g(env, ns);
    err = bpf_tc_attach(&hook, &to);
  }
  if (err)
    ThrowErrno(env, "bpf_tc_attach",
               "bpf_tc_attach(" + IfStr(ifindex) + NsStr(ns) + ", " + dir + ", prog fd " + std::to_string(prog_fd) +
                   ", handle " + std::to_string(handle) + ", priority " + std::to_string(priority) +
                   (replace ? ", replace" : "") + ")",
               err);
  Napi::Object o = Napi::Object::New(env);
  o.Set("progId", Napi::Number::New(env, to.prog_id));
  o.Set("handle", Napi::Number::New(env, to.handle));
  o.Set("priority", Napi::Number::New(env, to.priority));
  return o;
}

static Napi::Value TcDetach(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto ns = ArgNetns(info, 0);
  uint32_t ifindex = ArgU32(info, 1, "ifindex");
  std::string dir = ArgString(info, 2, "dir");
  uint32_t handle = ArgU32(info, 3, "handle");
  uint32_t priority = ArgU32(info, 4, "priority");
  LIBBPF_OPTS(bpf_tc_hook, hook);
  hook.ifindex = static_cast<int>(ifindex);
  hook.attach_point = TcDir(env, dir);
  LIBBPF_OPTS(bpf_tc_opts, to);
  to.handle = handle;
  to.priority = priority;
  int err;
  {
    NetnsGuard g(env, ns);
    err = bpf_tc_detach(&hook, &to);
  }
  if (err)
    ThrowErrno(env, "bpf_tc_detach",
               "bpf_tc_detach(" + IfStr(ifindex) + NsStr(ns) + ", " + dir + ", handle " + std::to_string(handle) +
                   ", priority " + std::to_string(priority) + ")",
               err);
  return env.Undefined();
}

static Napi::Value TcQuery(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto ns = ArgNetns(info, 0);
  uint32_t ifindex = ArgU32(info, 1, "ifindex");
  std::string dir = ArgString(info, 2, "dir");
  uint32_t handle = ArgU32(info, 3, "handle");
  uint32_t priority = ArgU32(info, 4, "priority");
  LIBBPF_OPTS(bpf_tc_hook, hook);
  hook.ifindex = static_cast<int>(ifindex);
  hook.attach_point = TcDir(env, dir);
  LIBBPF_OPTS(bpf_tc_opts, to);
  to.handle = handle;
  to.priority = priority;
  int err;
  {
    NetnsGuard g(env, ns);
    err = bpf_tc_query(&hook, &to);
  }
  if (err == -ENOENT) return env.Null();
  if (err)
    ThrowErrno(env, "bpf_tc_query",
               "bpf_tc_query(" + IfStr(ifindex) + NsStr(ns) + ", " + dir + ", handle " + std::to_string(handle) +
                   ", priority " + std::to_string(priority) + ")",
               err);
  return Napi::Number::New(env, to.prog_id);
}

// ---- BPF_PROG_TEST_RUN ----------------------------------------------------------------

static Napi::Value ProgTestRun(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = ArgFd(info, 0, "progFd");
  if (!info[1].IsObject()) ThrowType(env, "progTestRun(progFd, opts): opts must be an object");
  Napi::Object o = info[1].As<Napi::Object>();
  Napi::Value dv = o.Get("data");
  if (!dv.IsTypedArray() || dv.As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array)
    ThrowType(env, "options.data must be a Buffer or Uint8Array");
  Napi::Uint8Array data = dv.As<Napi::Uint8Array>();
  auto repeat = PropOptU32(env, o, "repeat");
  auto ifindex = PropOptU32(env, o, "ifindex");
  auto size_out = PropOptU32(env, o, "dataSizeOut");
  auto flags = PropOptU32(env, o, "flags");
  auto batch = PropOptU32(env, o, "batchSize");
  std::optional<std::string> ns;
  {
    Napi::Value nv = o.Get("netns");
    if (!nv.IsUndefined() && !nv.IsNull()) {
      if (!nv.IsString()) ThrowType(env, "options.netns must be a string or null");
      ns = nv.As<Napi::String>().Utf8Value();
      if (ns->empty() || ((*ns)[0] != '/' && ns->find('/') != std::string::npos))
        ThrowType(env, "options.netns must be a namespace name (no '/') or an absolute path");
    }
  }
  bool live = flags && (*flags & BPF_F_TEST_XDP_LIVE_FRAMES);
  Napi::Value cv = o.Get("ctx");
  std::optional<Napi::Uint8Array> ctx_buf;
  if (!cv.IsUndefined()) {
    if (!cv.IsTypedArray() || cv.As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array)
      ThrowType(env, "options.ctx must be a Buffer or Uint8Array");
    if (ifindex) ThrowType(env, "options.ctx and options.ifindex are exclusive (ifindex builds the ctx)");
    ctx_buf = cv.As<Napi::Uint8Array>();
  }

  // ctx: options.ctx as given, else built from options.ifindex per program type.
  struct xdp_md xctx;
  struct __sk_buff sctx;
  memset(&xctx, 0, sizeof(xctx));
  memset(&sctx, 0, sizeof(sctx));
  const void* ctx = nullptr;
  size_t ctx_size = 0;
  if (ctx_buf) {
    // BPF_PROG_TYPE_SYSCALL: the kernel writes the context back into this buffer.
    ctx = ctx_buf->Data();
    ctx_size = ctx_buf->ByteLength();
  } else if (ifindex) {
    struct bpf_prog_info pi;
    memset(&pi, 0, sizeof(pi));
    __u32 len = sizeof(pi);
    int err = bpf_obj_get_info_by_fd(fd, &pi, &len);
    if (err) ThrowErrno(env, "bpf_prog_test_run_opts", "bpf_prog_test_run_opts(fd " + std::to_string(fd) + ")", err);
    if (pi.type == BPF_PROG_TYPE_XDP) {
      xctx.ingress_ifindex = *ifindex;
      xctx.data_end = static_cast<__u32>(data.ByteLength());  // the kernel requires data_end == data size
      ctx = &xctx;
      ctx_size = sizeof(xctx);
    } else if (pi.type == BPF_PROG_TYPE_SCHED_CLS || pi.type == BPF_PROG_TYPE_SCHED_ACT) {
      sctx.ifindex = *ifindex;
      ctx = &sctx;
      ctx_size = sizeof(sctx);
    } else {
      ThrowType(env, "options.ifindex is only supported for XDP and SCHED_CLS/SCHED_ACT programs (type " +
                         std::to_string(pi.type) + ")");
    }
  }

  // Empty data: a program that takes no packet (BPF_PROG_TYPE_SYSCALL): no data in or out.
  bool no_data = data.ByteLength() == 0;
  uint32_t out_cap = live || no_data ? 0 : size_out.value_or(static_cast<uint32_t>(data.ByteLength()) + 256);
  std::vector<uint8_t> out(out_cap ? out_cap : 1);
  LIBBPF_OPTS(bpf_test_run_opts, to);
  to.data_in = no_data ? nullptr : data.Data();
  to.data_size_in = static_cast<__u32>(data.ByteLength());
  if (out_cap) {
    to.data_out = out.data();
    to.data_size_out = out_cap;
  }
  to.ctx_in = ctx;
  to.ctx_size_in = static_cast<__u32>(ctx_size);
  to.repeat = static_cast<int>(repeat.value_or(0));
  to.flags = flags.value_or(0);
  to.batch_size = batch.value_or(0);
  int err;
  {
    NetnsGuard g(env, ns);
    err = bpf_prog_test_run_opts(fd, &to);
  }
  if (err)
    ThrowErrno(env, "bpf_prog_test_run_opts", "bpf_prog_test_run_opts(fd " + std::to_string(fd) + NsStr(ns) + ")",
               err);
  Napi::Object r = Napi::Object::New(env);
  r.Set("retval", Napi::Number::New(env, to.retval));
  size_t n = out_cap ? (to.data_size_out < out_cap ? to.data_size_out : out_cap) : 0;
  r.Set("data", Napi::Buffer<uint8_t>::Copy(env, out.data(), n));
  r.Set("duration", Napi::Number::New(env, to.duration));
  return r;
}

void InitNet(Napi::Env env, Napi::Object exports) {
  auto fn = [&](const char* name, Napi::Function::Callback cb) {
    exports.Set(name, Napi::Function::New(env, cb, name));
  };
  fn("ifNameToIndex", IfNameToIndex);
  fn("xdpAttach", XdpAttach);
  fn("xdpDetach", XdpDetach);
  fn("xdpQuery", XdpQuery);
  fn("tcHookCreate", TcHookCreate);
  fn("tcHookDestroy", TcHookDestroy);
  fn("tcAttach", TcAttach);
  fn("tcDetach", TcDetach);
  fn("tcQuery", TcQuery);
  fn("progTestRun", ProgTestRun);
}

}  // namespace xlb
