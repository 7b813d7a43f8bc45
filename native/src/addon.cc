// xlb native addon: module init, errors, argument helpers, netns guard,
// BPF objects (open/load/close), object info, ids, pins, layout, constants.
#include "common.h"

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <linux/if_link.h>
#include <linux/magic.h>
#include <linux/pkt_cls.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <vector>

// From bpf_helpers.h (BPF side only): values of __uint(pinning, ...).
#ifndef LIBBPF_PIN_NONE
#define LIBBPF_PIN_NONE 0
#define LIBBPF_PIN_BY_NAME 1
#endif

namespace xlb {

// ---- errors ---------------------------------------------------------------

namespace {
struct InstanceData {
  Napi::FunctionReference error_class;  // set by init(ErrorClass)
};

InstanceData* GetData(Napi::Env env) {
  auto* d = env.GetInstanceData<InstanceData>();
  if (!d) {
    d = new InstanceData();
    env.SetInstanceData<InstanceData>(d);
  }
  return d;
}
}  // namespace

std::string ErrnoName(int err) {
  if (err < 0) err = -err;
  switch (err) {
    case 512: return "ERESTARTSYS";
    case 514: return "ERESTARTNOHAND";
    case 515: return "ENOIOCTLCMD";
    case 516: return "ERESTART_RESTARTBLOCK";
    case 517: return "EPROBE_DEFER";
    case 518: return "EOPENSTALE";
    case 521: return "EBADHANDLE";
    case 523: return "EBADCOOKIE";
    case 524: return "ENOTSUPP";
    case 525: return "ETOOSMALL";
    case 526: return "ESERVERFAULT";
    case 527: return "EBADTYPE";
    case 528: return "EJUKEBOX";
    case 529: return "EIOCBQUEUED";
    case LIBBPF_ERRNO__LIBELF: return "LIBBPF_ERRNO__LIBELF";
    case LIBBPF_ERRNO__FORMAT: return "LIBBPF_ERRNO__FORMAT";
    case LIBBPF_ERRNO__KVERSION: return "LIBBPF_ERRNO__KVERSION";
    case LIBBPF_ERRNO__ENDIAN: return "LIBBPF_ERRNO__ENDIAN";
    case LIBBPF_ERRNO__INTERNAL: return "LIBBPF_ERRNO__INTERNAL";
    case LIBBPF_ERRNO__RELOC: return "LIBBPF_ERRNO__RELOC";
    case LIBBPF_ERRNO__LOAD: return "LIBBPF_ERRNO__LOAD";
    case LIBBPF_ERRNO__VERIFY: return "LIBBPF_ERRNO__VERIFY";
    case LIBBPF_ERRNO__PROG2BIG: return "LIBBPF_ERRNO__PROG2BIG";
    case LIBBPF_ERRNO__KVER: return "LIBBPF_ERRNO__KVER";
    case LIBBPF_ERRNO__PROGTYPE: return "LIBBPF_ERRNO__PROGTYPE";
    case LIBBPF_ERRNO__WRNGPID: return "LIBBPF_ERRNO__WRNGPID";
    case LIBBPF_ERRNO__INVSEQ: return "LIBBPF_ERRNO__INVSEQ";
    case LIBBPF_ERRNO__NLPARSE: return "LIBBPF_ERRNO__NLPARSE";
    default: break;
  }
  const char* n = strerrorname_np(err);
  if (n) return n;
  return "E" + std::to_string(err);
}

std::string ErrnoText(int err) {
  if (err < 0) err = -err;
  if (err == 524) return "Operation not supported";
  char buf[256];
  if (libbpf_strerror(err, buf, sizeof(buf)) == 0) return buf;
  return strerror(err);
}

Napi::Error MakeErrnoError(Napi::Env env, const std::string& op, const std::string& what, int err,
                           const std::string& extra) {
  if (err < 0) err = -err;
  std::string msg = what + " failed: " + ErrnoName(err) + " (" + ErrnoText(err) + ")";
  if (!extra.empty()) msg += "\n" + extra;
  Napi::Object obj;
  InstanceData* d = GetData(env);
  if (!d->error_class.IsEmpty()) {
    obj = d->error_class.New({Napi::String::New(env, msg)});
  } else {
    obj = Napi::Error::New(env, msg).Value();
  }
  obj.Set("code", Napi::String::New(env, ErrnoName(err)));
  obj.Set("errno", Napi::Number::New(env, err));
  obj.Set("op", Napi::String::New(env, op));
  return Napi::Error(env, obj);
}

void ThrowErrno(Napi::Env env, const std::string& op, const std::string& what, int err,
                const std::string& extra) {
  throw MakeErrnoError(env, op, what, err, extra);
}

void ThrowType(Napi::Env env, const std::string& msg) { throw Napi::TypeError::New(env, msg); }

// ---- argument helpers -------------------------------------------------------

static bool IsNullish(const Napi::Value& v) { return v.IsUndefined() || v.IsNull(); }

static std::optional<uint32_t> ToU32(Napi::Env env, const Napi::Value& v, const std::string& name,
                                     bool optional) {
  if (IsNullish(v)) {
    if (optional) return std::nullopt;
    ThrowType(env, name + " must be a non-negative integer");
  }
  if (!v.IsNumber()) ThrowType(env, name + " must be a non-negative integer");
  double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= 0 && d <= 4294967295.0) || d != static_cast<double>(static_cast<uint64_t>(d)))
    ThrowType(env, name + " must be an integer in [0, 2^32)");
  return static_cast<uint32_t>(d);
}

int ArgFd(const Napi::CallbackInfo& info, size_t i, const char* name) {
  Napi::Value v = info[i];
  if (!v.IsNumber()) ThrowType(info.Env(), std::string(name) + " must be a file descriptor (integer)");
  double d = v.As<Napi::Number>().DoubleValue();
  if (d != static_cast<double>(static_cast<int64_t>(d)) || d < -1 || d > 2147483647.0)
    ThrowType(info.Env(), std::string(name) + " must be a file descriptor (integer)");
  return static_cast<int>(d);
}

uint32_t ArgU32(const Napi::CallbackInfo& info, size_t i, const char* name) {
  return *ToU32(info.Env(), info[i], name, false);
}

std::optional<uint32_t> ArgOptU32(const Napi::CallbackInfo& info, size_t i, const char* name) {
  return ToU32(info.Env(), info[i], name, true);
}

std::string ArgString(const Napi::CallbackInfo& info, size_t i, const char* name) {
  if (!info[i].IsString()) ThrowType(info.Env(), std::string(name) + " must be a string");
  std::string s = info[i].As<Napi::String>().Utf8Value();
  if (s.find('\0') != std::string::npos) ThrowType(info.Env(), std::string(name) + " must not contain NUL");
  return s;
}

std::optional<std::string> ArgOptString(const Napi::CallbackInfo& info, size_t i, const char* name) {
  if (IsNullish(info[i])) return std::nullopt;
  return ArgString(info, i, name);
}

bool ArgBool(const Napi::CallbackInfo& info, size_t i, const char* name) {
  if (IsNullish(info[i])) return false;
  if (!info[i].IsBoolean()) ThrowType(info.Env(), std::string(name) + " must be a boolean");
  return info[i].As<Napi::Boolean>().Value();
}

Napi::Uint8Array ArgBytes(const Napi::CallbackInfo& info, size_t i, const char* name) {
  if (!info[i].IsTypedArray() ||
      info[i].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array)
    ThrowType(info.Env(), std::string(name) + " must be a Buffer or Uint8Array");
  return info[i].As<Napi::Uint8Array>();
}

Napi::Object ArgOptObject(const Napi::CallbackInfo& info, size_t i, const char* name) {
  if (IsNullish(info[i])) return Napi::Object::New(info.Env());
  if (!info[i].IsObject()) ThrowType(info.Env(), std::string(name) + " must be an object");
  return info[i].As<Napi::Object>();
}

std::optional<uint32_t> PropOptU32(Napi::Env env, const Napi::Object& o, const char* name) {
  return ToU32(env, o.Get(name), std::string("options.") + name, true);
}

std::optional<int64_t> PropOptI64(Napi::Env env, const Napi::Object& o, const char* name) {
  Napi::Value v = o.Get(name);
  if (IsNullish(v)) return std::nullopt;
  if (!v.IsNumber()) ThrowType(env, std::string("options.") + name + " must be an integer");
  double d = v.As<Napi::Number>().DoubleValue();
  if (d != static_cast<double>(static_cast<int64_t>(d)))
    ThrowType(env, std::string("options.") + name + " must be an integer");
  return static_cast<int64_t>(d);
}

std::optional<std::string> PropOptString(Napi::Env env, const Napi::Object& o, const char* name) {
  Napi::Value v = o.Get(name);
  if (IsNullish(v)) return std::nullopt;
  if (!v.IsString()) ThrowType(env, std::string("options.") + name + " must be a string");
  return v.As<Napi::String>().Utf8Value();
}

// ---- netns guard --------------------------------------------------------------

std::optional<std::string> ArgNetns(const Napi::CallbackInfo& info, size_t i) {
  if (IsNullish(info[i])) return std::nullopt;
  if (!info[i].IsString()) ThrowType(info.Env(), "netns must be a string (name under /var/run/netns) or null");
  std::string s = info[i].As<Napi::String>().Utf8Value();
  if (s.empty() || s.find('\0') != std::string::npos || (s[0] != '/' && s.find('/') != std::string::npos) ||
      s == "." || s == "..")
    ThrowType(info.Env(), "netns must be a namespace name (no '/') or an absolute path");
  return s;
}

NetnsGuard::NetnsGuard(Napi::Env env, const std::optional<std::string>& netns) {
  if (!netns) return;
  std::string path = (*netns)[0] == '/' ? *netns : "/var/run/netns/" + *netns;
  int target = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (target < 0) ThrowErrno(env, "netns", "open(" + path + ")", errno);
  orig_fd_ = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
  if (orig_fd_ < 0) {
    int e = errno;
    close(target);
    ThrowErrno(env, "netns", "open(/proc/thread-self/ns/net)", e);
  }
  if (setns(target, CLONE_NEWNET) < 0) {
    int e = errno;
    close(target);
    close(orig_fd_);
    orig_fd_ = -1;
    ThrowErrno(env, "setns", "setns(" + path + ", CLONE_NEWNET)", e);
  }
  close(target);
}

NetnsGuard::~NetnsGuard() {
  if (orig_fd_ < 0) return;
  if (setns(orig_fd_, CLONE_NEWNET) < 0) {
    // Continuing in the wrong namespace would silently misconfigure the host.
    fprintf(stderr, "xlb native: FATAL: cannot restore network namespace: %s\n", strerror(errno));
    abort();
  }
  close(orig_fd_);
}

// ---- libbpf log ---------------------------------------------------------------

namespace {
std::mutex g_log_mu;
std::string g_log;   // every libbpf message (debug included), capped
std::string g_warn;  // warnings only (includes the verifier log on load failure)
constexpr size_t kLogCap = 1 << 20;

void AppendCapped(std::string& s, const char* p) {
  s += p;
  if (s.size() > kLogCap) s.erase(0, s.size() - kLogCap);
}

int LibbpfPrint(enum libbpf_print_level level, const char* fmt, va_list ap) {
  char buf[4096];
  vsnprintf(buf, sizeof(buf), fmt, ap);
  std::lock_guard<std::mutex> lk(g_log_mu);
  static const char* names[] = {"warn: ", "info: ", "debug: "};
  AppendCapped(g_log, names[level <= LIBBPF_DEBUG ? level : LIBBPF_DEBUG]);
  AppendCapped(g_log, buf);
  if (level == LIBBPF_WARN) AppendCapped(g_warn, buf);
  return 0;
}

void ClearLog() {
  std::lock_guard<std::mutex> lk(g_log_mu);
  g_log.clear();
  g_warn.clear();
}

std::string WarnTail(size_t n) {
  std::lock_guard<std::mutex> lk(g_log_mu);
  if (g_warn.size() <= n) return g_warn;
  return "..." + g_warn.substr(g_warn.size() - n);
}
}  // namespace

static Napi::Value LibbpfLog(const Napi::CallbackInfo& info) {
  bool clear = ArgBool(info, 0, "clear");
  std::lock_guard<std::mutex> lk(g_log_mu);
  Napi::String s = Napi::String::New(info.Env(), g_log);
  if (clear) {
    g_log.clear();
    g_warn.clear();
  }
  return s;
}

// ---- bpffs ---------------------------------------------------------------------

static int MkdirP(const std::string& path) {
  std::string cur;
  size_t pos = 0;
  while (pos <= path.size()) {
    size_t next = path.find('/', pos);
    if (next == std::string::npos) next = path.size();
    cur = path.substr(0, next);
    if (!cur.empty() && mkdir(cur.c_str(), 0700) < 0 && errno != EEXIST) return -errno;
    pos = next + 1;
  }
  return 0;
}

// Mount bpffs at `dir` unless it already is one. Returns true if mounted now.
static bool EnsureBpffsAt(Napi::Env env, const std::string& dir) {
  struct statfs st;
  if (statfs(dir.c_str(), &st) == 0 && static_cast<unsigned long>(st.f_type) == BPF_FS_MAGIC) return false;
  int err = MkdirP(dir);
  if (err) ThrowErrno(env, "mkdir", "mkdir(" + dir + ")", err);
  if (mount("bpf", dir.c_str(), "bpf", 0, "mode=0700") < 0)
    ThrowErrno(env, "mount", "mount(bpf, " + dir + ")", errno);
  return true;
}

static Napi::Value EnsureBpffs(const Napi::CallbackInfo& info) {
  std::string dir = ArgOptString(info, 0, "path").value_or("/sys/fs/bpf");
  return Napi::Boolean::New(info.Env(), EnsureBpffsAt(info.Env(), dir));
}

// ---- BPF objects -----------------------------------------------------------------

namespace {
std::vector<bpf_object*> g_objects;  // handle = index; closed slots are nullptr
}

static uint32_t ProgIdOf(int fd) {
  if (fd < 0) return 0;
  struct bpf_prog_info pi;
  memset(&pi, 0, sizeof(pi));
  __u32 len = sizeof(pi);
  if (bpf_obj_get_info_by_fd(fd, &pi, &len) != 0) return 0;
  return pi.id;
}

static uint32_t MapIdOf(int fd) {
  if (fd < 0) return 0;
  struct bpf_map_info mi;
  memset(&mi, 0, sizeof(mi));
  __u32 len = sizeof(mi);
  if (bpf_obj_get_info_by_fd(fd, &mi, &len) != 0) return 0;
  return mi.id;
}

// Sets the initial value of `const volatile __u32 name` (a global in the
// object's .rodata section, frozen at load); "" or why it cannot.
static std::string SetRodataU32(bpf_object* obj, const std::string& name, uint32_t v) {
  bpf_map* rodata = nullptr;
  bpf_map* m;
  bpf_object__for_each_map(m, obj) {
    const char* n = bpf_map__name(m);
    size_t len = strlen(n);
    if (bpf_map__is_internal(m) && len >= 7 && strcmp(n + len - 7, ".rodata") == 0) rodata = m;
  }
  struct btf* btf = bpf_object__btf(obj);
  if (!rodata || !btf) return "the object has no .rodata section (or no BTF)";
  int sec = btf__find_by_name_kind(btf, ".rodata", BTF_KIND_DATASEC);
  if (sec < 0) return "no .rodata in the object's BTF";
  const struct btf_type* t = btf__type_by_id(btf, sec);
  const struct btf_var_secinfo* vs = btf_var_secinfos(t);
  for (int i = 0; i < btf_vlen(t); i++, vs++) {
    const struct btf_type* var = btf__type_by_id(btf, vs->type);
    if (name != btf__name_by_offset(btf, var->name_off)) continue;
    if (vs->size != sizeof(uint32_t)) return "not a 32-bit variable (" + std::to_string(vs->size) + " bytes)";
    size_t size = 0;
    const void* cur = bpf_map__initial_value(rodata, &size);
    if (!cur || vs->offset + sizeof(uint32_t) > size) return "the section's initial value is not there";
    std::vector<char> data(static_cast<const char*>(cur), static_cast<const char*>(cur) + size);
    memcpy(data.data() + vs->offset, &v, sizeof(v));
    int err = bpf_map__set_initial_value(rodata, data.data(), size);
    if (err) return "bpf_map__set_initial_value: " + std::string(strerror(-err));
    return "";
  }
  return "no such variable";
}

// options[key]: an optional object of name -> u32 (maxEntries, rodata), as pairs.
static std::vector<std::pair<std::string, uint32_t>> PropU32Record(Napi::Env env, Napi::Object opts,
                                                                   const std::string& key) {
  std::vector<std::pair<std::string, uint32_t>> out;
  Napi::Value v = opts.Get(key);
  if (IsNullish(v)) return out;
  if (!v.IsObject()) ThrowType(env, "options." + key + " must be an object");
  Napi::Object o = v.As<Napi::Object>();
  Napi::Array names = o.GetPropertyNames();
  for (uint32_t i = 0; i < names.Length(); i++) {
    std::string n = names.Get(i).ToString().Utf8Value();
    out.emplace_back(n, *ToU32(env, o.Get(n), "options." + key + "." + n, false));
  }
  return out;
}

static Napi::Value OpenObject(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path = ArgString(info, 0, "path");
  Napi::Object opts = ArgOptObject(info, 1, "opts");
  std::optional<std::string> pin_root = PropOptString(env, opts, "pinRoot");
  auto max_entries = PropU32Record(env, opts, "maxEntries");
  auto rodata = PropU32Record(env, opts, "rodata");

  if (pin_root) {
    EnsureBpffsAt(env, "/sys/fs/bpf");
    int err = MkdirP(*pin_root);
    if (err) ThrowErrno(env, "mkdir", "mkdir(" + *pin_root + ")", err);
  }

  ClearLog();
  LIBBPF_OPTS(bpf_object_open_opts, oo);
  if (pin_root) oo.pin_root_path = pin_root->c_str();
  bpf_object* obj = bpf_object__open_file(path.c_str(), &oo);
  if (!obj) {
    int e = errno;
    ThrowErrno(env, "bpf_object__open_file", "bpf_object__open_file(" + path + ")", e, WarnTail(4000));
  }

  for (auto& [name, n] : max_entries) {
    bpf_map* m = bpf_object__find_map_by_name(obj, name.c_str());
    if (!m) {
      bpf_object__close(obj);
      ThrowErrno(env, "bpf_map__set_max_entries", "bpf_map__set_max_entries(" + name + "): no such map in " + path +
                 ";", ENOENT);
    }
    int err = bpf_map__set_max_entries(m, n);
    if (err) {
      bpf_object__close(obj);
      ThrowErrno(env, "bpf_map__set_max_entries", "bpf_map__set_max_entries(" + name + ", " + std::to_string(n) + ")",
                 err);
    }
  }

  for (auto& [name, v] : rodata) {
    std::string why = SetRodataU32(obj, name, v);
    if (!why.empty()) {
      bpf_object__close(obj);
      ThrowErrno(env, "rodata", "rodata " + name + " in " + path + ": " + why, ENOENT);
    }
  }

  int err = bpf_object__load(obj);
  if (err) {
    std::string tail = WarnTail(6000);
    bpf_object__close(obj);
    ThrowErrno(env, "bpf_object__load", "bpf_object__load(" + path + ")", err,
               tail.empty() ? "" : "libbpf log (tail):\n" + tail);
  }

  g_objects.push_back(obj);
  uint32_t handle = static_cast<uint32_t>(g_objects.size() - 1);

  Napi::Object res = Napi::Object::New(env);
  res.Set("handle", Napi::Number::New(env, handle));
  Napi::Array maps = Napi::Array::New(env);
  uint32_t mi = 0;
  bpf_map* m;
  bpf_object__for_each_map(m, obj) {
    Napi::Object o = Napi::Object::New(env);
    int fd = bpf_map__fd(m);
    o.Set("name", Napi::String::New(env, bpf_map__name(m)));
    o.Set("fd", Napi::Number::New(env, fd));
    o.Set("id", Napi::Number::New(env, MapIdOf(fd)));
    o.Set("type", Napi::Number::New(env, bpf_map__type(m)));
    o.Set("keySize", Napi::Number::New(env, bpf_map__key_size(m)));
    o.Set("valueSize", Napi::Number::New(env, bpf_map__value_size(m)));
    o.Set("maxEntries", Napi::Number::New(env, bpf_map__max_entries(m)));
    o.Set("flags", Napi::Number::New(env, bpf_map__map_flags(m)));
    const char* pin = bpf_map__pin_path(m);
    o.Set("pinPath", pin ? Napi::Value(Napi::String::New(env, pin)) : env.Null());
    maps.Set(mi++, o);
  }
  res.Set("maps", maps);
  Napi::Array progs = Napi::Array::New(env);
  uint32_t pi = 0;
  bpf_program* p;
  bpf_object__for_each_program(p, obj) {
    Napi::Object o = Napi::Object::New(env);
    int fd = bpf_program__fd(p);
    o.Set("name", Napi::String::New(env, bpf_program__name(p)));
    o.Set("fd", Napi::Number::New(env, fd));
    o.Set("id", Napi::Number::New(env, ProgIdOf(fd)));
    o.Set("type", Napi::Number::New(env, bpf_program__type(p)));
    o.Set("sectionName", Napi::String::New(env, bpf_program__section_name(p)));
    progs.Set(pi++, o);
  }
  res.Set("programs", progs);
  return res;
}

static Napi::Value CloseObject(const Napi::CallbackInfo& info) {
  uint32_t h = ArgU32(info, 0, "handle");
  if (h >= g_objects.size() || !g_objects[h])
    ThrowErrno(info.Env(), "bpf_object__close", "bpf_object__close(handle " + std::to_string(h) + ")", EBADF);
  bpf_object__close(g_objects[h]);
  g_objects[h] = nullptr;
  return info.Env().Undefined();
}

// ---- info, ids, fds, pins ------------------------------------------------------------

Napi::Object MapInfoObject(Napi::Env env, int fd) {
  struct bpf_map_info mi;
  memset(&mi, 0, sizeof(mi));
  __u32 len = sizeof(mi);
  int err = bpf_obj_get_info_by_fd(fd, &mi, &len);
  if (err) ThrowErrno(env, "bpf_obj_get_info_by_fd", "bpf_obj_get_info_by_fd(fd " + std::to_string(fd) + ")", err);
  Napi::Object o = Napi::Object::New(env);
  o.Set("name", Napi::String::New(env, mi.name));
  o.Set("fd", Napi::Number::New(env, fd));
  o.Set("id", Napi::Number::New(env, mi.id));
  o.Set("type", Napi::Number::New(env, mi.type));
  o.Set("keySize", Napi::Number::New(env, mi.key_size));
  o.Set("valueSize", Napi::Number::New(env, mi.value_size));
  o.Set("maxEntries", Napi::Number::New(env, mi.max_entries));
  o.Set("flags", Napi::Number::New(env, mi.map_flags));
  return o;
}

static Napi::Value MapInfo(const Napi::CallbackInfo& info) {
  return MapInfoObject(info.Env(), ArgFd(info, 0, "fd"));
}

static Napi::Value ProgInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = ArgFd(info, 0, "fd");
  struct bpf_prog_info pi;
  memset(&pi, 0, sizeof(pi));
  __u32 len = sizeof(pi);
  int err = bpf_obj_get_info_by_fd(fd, &pi, &len);
  if (err) ThrowErrno(env, "bpf_obj_get_info_by_fd", "bpf_obj_get_info_by_fd(fd " + std::to_string(fd) + ")", err);
  Napi::Object o = Napi::Object::New(env);
  o.Set("id", Napi::Number::New(env, pi.id));
  o.Set("type", Napi::Number::New(env, pi.type));
  o.Set("name", Napi::String::New(env, pi.name));
  o.Set("runTimeNs", Napi::BigInt::New(env, static_cast<uint64_t>(pi.run_time_ns)));
  o.Set("runCnt", Napi::Number::New(env, static_cast<double>(pi.run_cnt)));
  return o;
}

static Napi::Value MapGetFdById(const Napi::CallbackInfo& info) {
  uint32_t id = ArgU32(info, 0, "id");
  int fd = bpf_map_get_fd_by_id(id);
  if (fd < 0) ThrowErrno(info.Env(), "bpf_map_get_fd_by_id", "bpf_map_get_fd_by_id(" + std::to_string(id) + ")", fd);
  return Napi::Number::New(info.Env(), fd);
}

static Napi::Value ProgGetFdById(const Napi::CallbackInfo& info) {
  uint32_t id = ArgU32(info, 0, "id");
  int fd = bpf_prog_get_fd_by_id(id);
  if (fd < 0) ThrowErrno(info.Env(), "bpf_prog_get_fd_by_id", "bpf_prog_get_fd_by_id(" + std::to_string(id) + ")", fd);
  return Napi::Number::New(info.Env(), fd);
}

static Napi::Value CloseFd(const Napi::CallbackInfo& info) {
  int fd = ArgFd(info, 0, "fd");
  if (close(fd) < 0) ThrowErrno(info.Env(), "close", "close(fd " + std::to_string(fd) + ")", errno);
  return info.Env().Undefined();
}

static Napi::Value ObjPin(const Napi::CallbackInfo& info) {
  int fd = ArgFd(info, 0, "fd");
  std::string path = ArgString(info, 1, "path");
  int err = bpf_obj_pin(fd, path.c_str());
  if (err) ThrowErrno(info.Env(), "bpf_obj_pin", "bpf_obj_pin(fd " + std::to_string(fd) + ", " + path + ")", err);
  return info.Env().Undefined();
}

static Napi::Value ObjGet(const Napi::CallbackInfo& info) {
  std::string path = ArgString(info, 0, "path");
  int fd = bpf_obj_get(path.c_str());
  if (fd < 0) ThrowErrno(info.Env(), "bpf_obj_get", "bpf_obj_get(" + path + ")", fd);
  return Napi::Number::New(info.Env(), fd);
}

static Napi::Value UnlinkPin(const Napi::CallbackInfo& info) {
  std::string path = ArgString(info, 0, "path");
  if (unlink(path.c_str()) < 0) ThrowErrno(info.Env(), "unlink", "unlink(" + path + ")", errno);
  return info.Env().Undefined();
}

static Napi::Value NumPossibleCpus(const Napi::CallbackInfo& info) {
  int n = libbpf_num_possible_cpus();
  if (n < 0) ThrowErrno(info.Env(), "libbpf_num_possible_cpus", "libbpf_num_possible_cpus()", n);
  return Napi::Number::New(info.Env(), n);
}

static Napi::Value EnableStats(const Napi::CallbackInfo& info) {
  int fd = bpf_enable_stats(BPF_STATS_RUN_TIME);
  if (fd < 0) ThrowErrno(info.Env(), "bpf_enable_stats", "bpf_enable_stats(BPF_STATS_RUN_TIME)", fd);
  return Napi::Number::New(info.Env(), fd);
}

static Napi::Value ErrnoNameJs(const Napi::CallbackInfo& info) {
  if (!info[0].IsNumber()) ThrowType(info.Env(), "errno must be a number");
  return Napi::String::New(info.Env(), ErrnoName(info[0].As<Napi::Number>().Int32Value()));
}

static Napi::Value Init(const Napi::CallbackInfo& info) {
  if (!info[0].IsFunction()) ThrowType(info.Env(), "init(ErrorClass): ErrorClass must be a constructor");
  GetData(info.Env())->error_class = Napi::Persistent(info[0].As<Napi::Function>());
  return info.Env().Undefined();
}

// ---- constants ------------------------------------------------------------------------

static Napi::Object Constants(Napi::Env env) {
  Napi::Object c = Napi::Object::New(env);
#define C(name) c.Set(#name, Napi::Number::New(env, static_cast<double>(name)));
  // map types
  C(BPF_MAP_TYPE_UNSPEC) C(BPF_MAP_TYPE_HASH) C(BPF_MAP_TYPE_ARRAY) C(BPF_MAP_TYPE_PROG_ARRAY)
  C(BPF_MAP_TYPE_PERF_EVENT_ARRAY) C(BPF_MAP_TYPE_PERCPU_HASH) C(BPF_MAP_TYPE_PERCPU_ARRAY)
  C(BPF_MAP_TYPE_STACK_TRACE) C(BPF_MAP_TYPE_CGROUP_ARRAY) C(BPF_MAP_TYPE_LRU_HASH)
  C(BPF_MAP_TYPE_LRU_PERCPU_HASH) C(BPF_MAP_TYPE_LPM_TRIE) C(BPF_MAP_TYPE_ARRAY_OF_MAPS)
  C(BPF_MAP_TYPE_HASH_OF_MAPS) C(BPF_MAP_TYPE_DEVMAP) C(BPF_MAP_TYPE_SOCKMAP) C(BPF_MAP_TYPE_CPUMAP)
  C(BPF_MAP_TYPE_XSKMAP) C(BPF_MAP_TYPE_SOCKHASH) C(BPF_MAP_TYPE_REUSEPORT_SOCKARRAY)
  C(BPF_MAP_TYPE_QUEUE) C(BPF_MAP_TYPE_STACK) C(BPF_MAP_TYPE_SK_STORAGE) C(BPF_MAP_TYPE_DEVMAP_HASH)
  C(BPF_MAP_TYPE_STRUCT_OPS) C(BPF_MAP_TYPE_RINGBUF) C(BPF_MAP_TYPE_INODE_STORAGE)
  C(BPF_MAP_TYPE_TASK_STORAGE) C(BPF_MAP_TYPE_BLOOM_FILTER) C(BPF_MAP_TYPE_USER_RINGBUF)
  // program types
  C(BPF_PROG_TYPE_UNSPEC) C(BPF_PROG_TYPE_SOCKET_FILTER) C(BPF_PROG_TYPE_SCHED_CLS)
  C(BPF_PROG_TYPE_SCHED_ACT) C(BPF_PROG_TYPE_XDP) C(BPF_PROG_TYPE_TRACING) C(BPF_PROG_TYPE_EXT)
  // map flags
  C(BPF_F_NO_PREALLOC) C(BPF_F_NO_COMMON_LRU) C(BPF_F_NUMA_NODE) C(BPF_F_RDONLY) C(BPF_F_WRONLY)
  C(BPF_F_RDONLY_PROG) C(BPF_F_WRONLY_PROG) C(BPF_F_ZERO_SEED) C(BPF_F_MMAPABLE) C(BPF_F_INNER_MAP)
  // element update flags
  C(BPF_ANY) C(BPF_NOEXIST) C(BPF_EXIST) C(BPF_F_LOCK)
  // test run
  C(BPF_F_TEST_RUN_ON_CPU) C(BPF_F_TEST_XDP_LIVE_FRAMES)
  // XDP actions and attach flags
  C(XDP_ABORTED) C(XDP_DROP) C(XDP_PASS) C(XDP_TX) C(XDP_REDIRECT)
  C(XDP_FLAGS_UPDATE_IF_NOEXIST) C(XDP_FLAGS_SKB_MODE) C(XDP_FLAGS_DRV_MODE) C(XDP_FLAGS_HW_MODE)
  C(XDP_FLAGS_REPLACE)
  // tc actions
  C(TC_ACT_UNSPEC) C(TC_ACT_OK) C(TC_ACT_RECLASSIFY) C(TC_ACT_SHOT) C(TC_ACT_PIPE) C(TC_ACT_STOLEN)
  C(TC_ACT_QUEUED) C(TC_ACT_REPEAT) C(TC_ACT_REDIRECT)
  // misc
  C(BPF_FS_MAGIC) C(LIBBPF_PIN_BY_NAME) C(LIBBPF_PIN_NONE)
#undef C
  AddSharedConstants(env, c);
  return c;
}

// ---- module -----------------------------------------------------------------------------

void InitPacket(Napi::Env env, Napi::Object exports);  // packet.cc (AF_PACKET, health checks)

static Napi::Object InitModule(Napi::Env env, Napi::Object exports) {
  static std::once_flag once;
  std::call_once(once, [] { libbpf_set_print(LibbpfPrint); });
  GetData(env);

  auto fn = [&](const char* name, Napi::Function::Callback cb) {
    exports.Set(name, Napi::Function::New(env, cb, name));
  };
  fn("init", Init);
  fn("openObject", OpenObject);
  fn("closeObject", CloseObject);
  fn("mapInfo", MapInfo);
  fn("progInfo", ProgInfo);
  fn("mapGetFdById", MapGetFdById);
  fn("progGetFdById", ProgGetFdById);
  fn("closeFd", CloseFd);
  fn("objPin", ObjPin);
  fn("objGet", ObjGet);
  fn("unlinkPin", UnlinkPin);
  fn("numPossibleCpus", NumPossibleCpus);
  fn("enableStats", EnableStats);
  fn("ensureBpffs", EnsureBpffs);
  fn("libbpfLog", LibbpfLog);
  fn("errnoName", ErrnoNameJs);
  fn("layout", Layout);
  exports.Set("layoutVersion", Napi::Number::New(env, LayoutVersion()));
  exports.Set("constants", Constants(env));
  InitMaps(env, exports);
  InitNet(env, exports);
  InitPacket(env, exports);
  return exports;
}

}  // namespace xlb

static Napi::Object ModuleInit(Napi::Env env, Napi::Object exports) { return xlb::InitModule(env, exports); }

NODE_API_MODULE(xlb, ModuleInit)
