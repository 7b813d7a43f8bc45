// AF_PACKET sockets for the health checker: raw Ethernet frames sent from and
// read on one interface (a backend's VIF), in any network namespace. Thin like
// the rest of the addon: no parsing, no filtering (done in TS).
//
//   packetOpen(netns, ifname)            -> { fd, ifindex, mac }
//   packetSend(fd, frame)                -> bytes sent
//   packetRecv(fd, timeoutMs, maxFrames) -> Promise<Buffer[]> (empty on timeout)
//   packetClose(fd)
//
// The socket is created inside `netns` (a socket stays in the namespace it was
// created in), bound to the interface for ETH_P_ALL, non-blocking, and ignores
// its own outgoing frames (PACKET_IGNORE_OUTGOING). packetRecv polls on a
// libuv worker thread, so it never blocks the event loop; the caller must not
// close the fd while a packetRecv on it is pending.
#include "common.h"

#include <arpa/inet.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cstring>
#include <vector>

#ifndef PACKET_IGNORE_OUTGOING
#define PACKET_IGNORE_OUTGOING 23
#endif

namespace xlb {

namespace {

constexpr size_t kMaxFrame = 65536;
constexpr uint32_t kMaxFrames = 1024;

std::string FdStr(int fd) { return "fd " + std::to_string(fd); }

int64_t NowMs() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

class RecvWorker : public Napi::AsyncWorker {
 public:
  RecvWorker(Napi::Env env, int fd, uint32_t timeout_ms, uint32_t max_frames)
      : Napi::AsyncWorker(env), deferred_(Napi::Promise::Deferred::New(env)), fd_(fd),
        timeout_ms_(timeout_ms), max_frames_(max_frames) {}

  Napi::Promise Promise() { return deferred_.Promise(); }

  void Execute() override {
    int64_t deadline = NowMs() + timeout_ms_;
    std::vector<uint8_t> buf(kMaxFrame);
    for (;;) {
      // Drain what is queued without waiting.
      while (frames_.size() < max_frames_) {
        ssize_t n = recv(fd_, buf.data(), buf.size(), MSG_DONTWAIT | MSG_TRUNC);
        if (n < 0) {
          if (errno == EAGAIN || errno == EWOULDBLOCK) break;
          if (errno == EINTR) continue;
          err_ = errno;
          op_ = "recv";
          return;
        }
        size_t len = static_cast<size_t>(n) < buf.size() ? static_cast<size_t>(n) : buf.size();
        frames_.emplace_back(buf.begin(), buf.begin() + len);
      }
      if (!frames_.empty()) return;
      int64_t left = deadline - NowMs();
      if (left <= 0) return;
      struct pollfd p = {fd_, POLLIN, 0};
      int r = poll(&p, 1, static_cast<int>(left));
      if (r < 0) {
        if (errno == EINTR) continue;
        err_ = errno;
        op_ = "poll";
        return;
      }
      if (r == 0) return;
      if (p.revents & (POLLERR | POLLNVAL)) {
        err_ = (p.revents & POLLNVAL) ? EBADF : EIO;
        op_ = "poll";
        return;
      }
    }
  }

  void OnOK() override {
    Napi::Env env = Env();
    if (err_) {
      deferred_.Reject(MakeErrnoError(env, op_, op_ + "(AF_PACKET " + FdStr(fd_) + ")", err_).Value());
      return;
    }
    Napi::Array out = Napi::Array::New(env, frames_.size());
    for (size_t i = 0; i < frames_.size(); i++) {
      out.Set(static_cast<uint32_t>(i), Napi::Buffer<uint8_t>::Copy(env, frames_[i].data(), frames_[i].size()));
    }
    deferred_.Resolve(out);
  }

  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

 private:
  Napi::Promise::Deferred deferred_;
  int fd_;
  uint32_t timeout_ms_;
  uint32_t max_frames_;
  std::vector<std::vector<uint8_t>> frames_;
  int err_ = 0;
  std::string op_;
};

}  // namespace

static Napi::Value PacketOpen(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto ns = ArgNetns(info, 0);
  std::string name = ArgString(info, 1, "ifname");
  if (name.empty() || name.size() >= IF_NAMESIZE) ThrowType(env, "ifname must be 1..15 characters");
  std::string what = "AF_PACKET socket on " + name + (ns ? ", netns " + *ns : "");
  int fd = -1;
  unsigned idx = 0;
  int err = 0;
  std::string op;
  uint8_t mac[6] = {0};
  {
    NetnsGuard g(env, ns);
    idx = if_nametoindex(name.c_str());
    if (idx == 0) {
      err = errno ? errno : ENODEV;
      op = "if_nametoindex";
    } else {
      fd = socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, htons(ETH_P_ALL));
      if (fd < 0) {
        err = errno;
        op = "socket";
      }
    }
    if (fd >= 0) {
      struct ifreq ifr;
      memset(&ifr, 0, sizeof(ifr));
      strncpy(ifr.ifr_name, name.c_str(), IF_NAMESIZE - 1);
      if (ioctl(fd, SIOCGIFHWADDR, &ifr) == 0) memcpy(mac, ifr.ifr_hwaddr.sa_data, 6);
    }
  }
  if (err) ThrowErrno(env, op, op + "(" + what + ")", err);
  int one = 1;
  // Best effort: kernels before 4.20 lack it, and TS ignores frames it sent anyway.
  setsockopt(fd, SOL_PACKET, PACKET_IGNORE_OUTGOING, &one, sizeof(one));
  struct sockaddr_ll sll;
  memset(&sll, 0, sizeof(sll));
  sll.sll_family = AF_PACKET;
  sll.sll_protocol = htons(ETH_P_ALL);
  sll.sll_ifindex = static_cast<int>(idx);
  if (bind(fd, reinterpret_cast<struct sockaddr*>(&sll), sizeof(sll)) < 0) {
    int e = errno;
    close(fd);
    ThrowErrno(env, "bind", "bind(" + what + ")", e);
  }
  Napi::Object o = Napi::Object::New(env);
  o.Set("fd", Napi::Number::New(env, fd));
  o.Set("ifindex", Napi::Number::New(env, idx));
  o.Set("mac", Napi::Buffer<uint8_t>::Copy(env, mac, 6));
  return o;
}

static Napi::Value PacketSend(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = ArgFd(info, 0, "fd");
  Napi::Uint8Array frame = ArgBytes(info, 1, "frame");
  if (frame.ByteLength() < 14) ThrowType(env, "frame must hold at least an Ethernet header (14 bytes)");
  ssize_t n;
  do {
    n = send(fd, frame.Data(), frame.ByteLength(), 0);
  } while (n < 0 && errno == EINTR);
  if (n < 0) ThrowErrno(env, "send", "send(AF_PACKET " + FdStr(fd) + ", " + std::to_string(frame.ByteLength()) + " bytes)", errno);
  return Napi::Number::New(env, static_cast<double>(n));
}

static Napi::Value PacketRecv(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = ArgFd(info, 0, "fd");
  uint32_t timeout = ArgU32(info, 1, "timeoutMs");
  if (timeout > 600000) ThrowType(env, "timeoutMs must be at most 600000");
  uint32_t max = ArgOptU32(info, 2, "maxFrames").value_or(64);
  if (max == 0 || max > kMaxFrames) ThrowType(env, "maxFrames must be in 1..1024");
  auto* w = new RecvWorker(env, fd, timeout, max);
  Napi::Promise p = w->Promise();
  w->Queue();
  return p;
}

static Napi::Value PacketClose(const Napi::CallbackInfo& info) {
  int fd = ArgFd(info, 0, "fd");
  if (close(fd) < 0) ThrowErrno(info.Env(), "close", "close(AF_PACKET " + FdStr(fd) + ")", errno);
  return info.Env().Undefined();
}

void InitPacket(Napi::Env env, Napi::Object exports) {
  exports.Set("packetOpen", Napi::Function::New(env, PacketOpen, "packetOpen"));
  exports.Set("packetSend", Napi::Function::New(env, PacketSend, "packetSend"));
  exports.Set("packetRecv", Napi::Function::New(env, PacketRecv, "packetRecv"));
  exports.Set("packetClose", Napi::Function::New(env, PacketClose, "packetClose"));
}

}  // namespace xlb
