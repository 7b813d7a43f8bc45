// Shared helpers of the xlb native addon: argument checking, errno -> JS Error,
// network-namespace guard. The addon is deliberately thin: no policy here.
#pragma once

#include <napi.h>

#include <cerrno>
#include <cstdint>
#include <optional>
#include <string>

namespace xlb {

// ---- errors ---------------------------------------------------------------

// Symbolic name of an errno value ("ENOENT"), including the kernel-internal
// ones libbpf passes through (ENOTSUPP = 524) and libbpf's own (4000+).
std::string ErrnoName(int err);
// Human text for an errno value (strerror / libbpf_strerror).
std::string ErrnoText(int err);

// Build (not throw) the JS error for a failed operation:
//   "<what> failed: ENOENT (No such file or directory)"
// with .code, .errno, .op set. Uses the class handed to init() if any.
Napi::Error MakeErrnoError(Napi::Env env, const std::string& op, const std::string& what, int err,
                           const std::string& extra = "");

// Throw it. `err` may be negative (libbpf style); the sign is ignored.
[[noreturn]] void ThrowErrno(Napi::Env env, const std::string& op, const std::string& what, int err,
                             const std::string& extra = "");

[[noreturn]] void ThrowType(Napi::Env env, const std::string& msg);

// ---- argument helpers (throw TypeError) -----------------------------------

int ArgFd(const Napi::CallbackInfo& info, size_t i, const char* name);
uint32_t ArgU32(const Napi::CallbackInfo& info, size_t i, const char* name);
std::optional<uint32_t> ArgOptU32(const Napi::CallbackInfo& info, size_t i, const char* name);
std::string ArgString(const Napi::CallbackInfo& info, size_t i, const char* name);
std::optional<std::string> ArgOptString(const Napi::CallbackInfo& info, size_t i, const char* name);
bool ArgBool(const Napi::CallbackInfo& info, size_t i, const char* name);
Napi::Uint8Array ArgBytes(const Napi::CallbackInfo& info, size_t i, const char* name);
Napi::Object ArgOptObject(const Napi::CallbackInfo& info, size_t i, const char* name);

// Optional u32 property of an options object (undefined/null -> nullopt).
std::optional<uint32_t> PropOptU32(Napi::Env env, const Napi::Object& o, const char* name);
std::optional<int64_t> PropOptI64(Napi::Env env, const Napi::Object& o, const char* name);
std::optional<std::string> PropOptString(Napi::Env env, const Napi::Object& o, const char* name);

// ---- network namespaces -----------------------------------------------------

// Enters /var/run/netns/NAME (or an absolute path) for the current thread and
// restores the previous netns on destruction (also when an exception unwinds).
// nullopt = stay in the current netns.
class NetnsGuard {
 public:
  NetnsGuard(Napi::Env env, const std::optional<std::string>& netns);
  ~NetnsGuard();
  NetnsGuard(const NetnsGuard&) = delete;
  NetnsGuard& operator=(const NetnsGuard&) = delete;

 private:
  int orig_fd_ = -1;
};

// netns argument: string or null/undefined.
std::optional<std::string> ArgNetns(const Napi::CallbackInfo& info, size_t i);

// ---- module parts -----------------------------------------------------------

void InitMaps(Napi::Env env, Napi::Object exports);
void InitNet(Napi::Env env, Napi::Object exports);

// layout.cc (bpf/xlb_shared.h)
Napi::Value Layout(const Napi::CallbackInfo& info);
void AddSharedConstants(Napi::Env env, Napi::Object c);
uint32_t LayoutVersion();

// Object with map info read from the kernel (bpf_obj_get_info_by_fd).
Napi::Object MapInfoObject(Napi::Env env, int fd);

}  // namespace xlb
