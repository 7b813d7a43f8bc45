// Map operations: create, element ops, dump (batch with fallback), batch update/delete.
#include "common.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/bpf.h>

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <vector>

namespace xlb {

namespace {

constexpr int kENOTSUPP = 524;  // kernel-internal; what the kernel returns for "no batch ops"

bool BatchUnsupported(int err) {
  if (err < 0) err = -err;
  return err == EINVAL || err == kENOTSUPP || err == EOPNOTSUPP;
}

std::string FdStr(int fd) { return "(fd " + std::to_string(fd) + ")"; }

Napi::Buffer<uint8_t> CopyBuffer(Napi::Env env, const uint8_t* p, size_t n) {
  return Napi::Buffer<uint8_t>::Copy(env, p, n);
}

// What the kernel will read/write for one element of the map behind fd. Checked
// before every element op so a wrong size cannot overrun a buffer (one extra
// syscall); a failure here is reported as a failure of `op` itself.
struct MapShape {
  uint32_t type, key_size, value_size, max_entries;
  bool ok;
};

bool IsPercpu(uint32_t type) {
  return type == BPF_MAP_TYPE_PERCPU_HASH || type == BPF_MAP_TYPE_PERCPU_ARRAY ||
         type == BPF_MAP_TYPE_LRU_PERCPU_HASH || type == BPF_MAP_TYPE_PERCPU_CGROUP_STORAGE;
}

// If fd is not a BPF object at all (EBADF/EBADFD/EINVAL from the info call),
// the returned shape is "unknown" (ok = false): the op itself then runs and
// fails with the kernel's own errno for it (e.g. EBADF for a closed fd).
MapShape GetShape(Napi::Env env, int fd, const char* op) {
  struct bpf_map_info mi;
  memset(&mi, 0, sizeof(mi));
  __u32 len = sizeof(mi);
  int err = bpf_obj_get_info_by_fd(fd, &mi, &len);
  if (err) {
    if (-err == EBADF || -err == EBADFD || -err == EINVAL) return MapShape{0, 0, 0, 0, false};
    ThrowErrno(env, op, std::string(op) + FdStr(fd), err);
  }
  MapShape s{mi.type, mi.key_size, mi.value_size, mi.max_entries, true};
  if (IsPercpu(mi.type)) {
    int n = libbpf_num_possible_cpus();
    if (n < 0) ThrowErrno(env, "libbpf_num_possible_cpus", "libbpf_num_possible_cpus()", n);
    s.value_size = ((mi.value_size + 7) / 8) * 8 * static_cast<uint32_t>(n);
  }
  return s;
}

void CheckSize(Napi::Env env, const MapShape& sh, const char* op, const char* what, size_t got, uint32_t want) {
  if (sh.ok && got != want)
    ThrowType(env, std::string(op) + ": " + what + " is " + std::to_string(got) + " bytes, the map wants " +
                       std::to_string(want) + (std::string(what).find("value") != std::string::npos
                                                   ? " (per-CPU maps: roundup(value_size, 8) * numPossibleCpus())"
                                                   : ""));
}

// Validates that buf holds `count` equally sized records; returns the record size.
size_t RecordSize(Napi::Env env, const Napi::Uint8Array& buf, uint32_t count, const char* what) {
  if (count == 0) return 0;
  if (buf.ByteLength() % count != 0 || buf.ByteLength() == 0)
    ThrowType(env, std::string(what) + ".length (" + std::to_string(buf.ByteLength()) +
                       ") must be a non-zero multiple of count (" + std::to_string(count) + ")");
  return buf.ByteLength() / count;
}

}  // namespace

static Napi::Value MapCreate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsObject()) ThrowType(env, "mapCreate(opts): opts must be an object");
  Napi::Object o = info[0].As<Napi::Object>();
  auto type = PropOptU32(env, o, "type");
  auto key_size = PropOptU32(env, o, "keySize");
  auto value_size = PropOptU32(env, o, "valueSize");
  auto max_entries = PropOptU32(env, o, "maxEntries");
  if (!type || !key_size || !value_size || !max_entries)
    ThrowType(env, "mapCreate(opts): type, keySize, valueSize and maxEntries are required");
  auto flags = PropOptU32(env, o, "flags");
  auto name = PropOptString(env, o, "name");
  auto inner = PropOptI64(env, o, "innerMapFd");

  LIBBPF_OPTS(bpf_map_create_opts, co);
  co.map_flags = flags.value_or(0);
  if (inner) co.inner_map_fd = static_cast<__u32>(*inner);
  int fd = bpf_map_create(static_cast<enum bpf_map_type>(*type), name ? name->c_str() : nullptr, *key_size,
                          *value_size, *max_entries, &co);
  if (fd < 0)
    ThrowErrno(env, "bpf_map_create",
               "bpf_map_create(type " + std::to_string(*type) + ", " + (name ? *name : std::string("<unnamed>")) +
                   ", key " + std::to_string(*key_size) + ", value " + std::to_string(*value_size) + ", max " +
                   std::to_string(*max_entries) + ")",
               fd);
  return Napi::Number::New(env, fd);
}

static Napi::Value MapLookup(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = ArgFd(info, 0, "fd");
  Napi::Uint8Array key = ArgBytes(info, 1, "key");
  uint32_t value_size = ArgU32(info, 2, "valueSize");
  uint64_t flags = ArgOptU32(info, 3, "flags").value_or(0);
  MapShape sh = GetShape(env, fd, "bpf_map_lookup_elem");
  CheckSize(env, sh, "mapLookup", "key", key.ByteLength(), sh.key_size);
  CheckSize(env, sh, "mapLookup", "valueSize", value_size, sh.value_size);
  std::vector<uint8_t> value(value_size ? value_size : 1);
  int err = bpf_map_lookup_elem_flags(fd, key.Data(), value.data(), flags);
  if (err) {
    if (-err == ENOENT) return env.Null();
    ThrowErrno(env, "bpf_map_lookup_elem", "bpf_map_lookup_elem" + FdStr(fd), err);
  }
  return CopyBuffer(env, value.data(), value_size);
}

static Napi::Value MapUpdate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = ArgFd(info, 0, "fd");
  Napi::Uint8Array key = ArgBytes(info, 1, "key");
  Napi::Uint8Array value = ArgBytes(info, 2, "value");
  uint64_t flags = ArgOptU32(info, 3, "flags").value_or(0);
  MapShape sh = GetShape(env, fd, "bpf_map_update_elem");
  CheckSize(env, sh, "mapUpdate", "key", key.ByteLength(), sh.key_size);
  CheckSize(env, sh, "mapUpdate", "value", value.ByteLength(), sh.value_size);
  int err = bpf_map_update_elem(fd, key.Data(), value.Data(), flags);
  if (err) ThrowErrno(env, "bpf_map_update_elem", "bpf_map_update_elem" + FdStr(fd), err);
  return env.Undefined();
}

static Napi::Value MapDelete(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = ArgFd(info, 0, "fd");
  Napi::Uint8Array key = ArgBytes(info, 1, "key");
  MapShape sh = GetShape(env, fd, "bpf_map_delete_elem");
  CheckSize(env, sh, "mapDelete", "key", key.ByteLength(), sh.key_size);
  int err = bpf_map_delete_elem(fd, key.Data());
  if (err) {
    if (-err == ENOENT) return Napi::Boolean::New(env, false);
    ThrowErrno(env, "bpf_map_delete_elem", "bpf_map_delete_elem" + FdStr(fd), err);
  }
  return Napi::Boolean::New(env, true);
}

static Napi::Value MapDump(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = ArgFd(info, 0, "fd");
  uint32_t key_size = ArgU32(info, 1, "keySize");
  uint32_t value_size = ArgU32(info, 2, "valueSize");
  MapShape sh = GetShape(env, fd, "bpf_map_lookup_batch");
  CheckSize(env, sh, "mapDump", "keySize", key_size, sh.key_size);
  CheckSize(env, sh, "mapDump", "valueSize", value_size, sh.value_size);
  if (key_size == 0) ThrowType(env, "mapDump: maps without keys cannot be dumped");
  uint32_t max_entries = sh.max_entries;

  std::vector<uint8_t> keys, values;
  size_t count = 0;

  // 1) batch lookup
  bool use_fallback = false;
  {
    uint32_t chunk = max_entries < 4096 ? (max_entries ? max_entries : 1) : 4096;
    // The batch token is opaque (u32 bucket for hashes, a key for arrays).
    size_t tok_size = key_size > 8 ? key_size : 8;
    std::vector<uint8_t> in_tok(tok_size), out_tok(tok_size);
    bool first = true;
    LIBBPF_OPTS(bpf_map_batch_opts, bo);
    for (;;) {
      keys.resize((count + chunk) * key_size);
      values.resize((count + chunk) * value_size);
      __u32 n = chunk;
      int err = bpf_map_lookup_batch(fd, first ? nullptr : in_tok.data(), out_tok.data(),
                                     keys.data() + count * key_size, values.data() + count * value_size, &n, &bo);
      if (err && -err != ENOENT) {
        if (first && n == 0 && BatchUnsupported(err)) {
          use_fallback = true;
          break;
        }
        if (-err == ENOSPC && n == 0) {  // a hash bucket larger than chunk: retry bigger
          chunk *= 2;
          continue;
        }
        ThrowErrno(env, "bpf_map_lookup_batch", "bpf_map_lookup_batch" + FdStr(fd), err);
      }
      count += n;
      if (err) break;  // ENOENT: done
      first = false;
      in_tok.swap(out_tok);
    }
  }

  // 2) get_next_key + lookup
  if (use_fallback) {
    count = 0;
    keys.assign(key_size, 0);
    values.clear();
    std::vector<uint8_t> cur(key_size), next(key_size), val(value_size ? value_size : 1);
    bool have = false;
    for (;;) {
      int err = bpf_map_get_next_key(fd, have ? cur.data() : nullptr, next.data());
      if (err) {
        if (-err == ENOENT) break;
        ThrowErrno(env, "bpf_map_get_next_key", "bpf_map_get_next_key" + FdStr(fd), err);
      }
      have = true;
      cur.swap(next);
      err = bpf_map_lookup_elem(fd, cur.data(), val.data());
      if (err) {
        if (-err == ENOENT) continue;  // deleted meanwhile
        ThrowErrno(env, "bpf_map_lookup_elem", "bpf_map_lookup_elem" + FdStr(fd), err);
      }
      keys.resize((count + 1) * key_size);
      memcpy(keys.data() + count * key_size, cur.data(), key_size);
      values.insert(values.end(), val.begin(), val.begin() + value_size);
      count++;
    }
  }

  Napi::Object res = Napi::Object::New(env);
  res.Set("keys", CopyBuffer(env, keys.data(), count * key_size));
  res.Set("values", CopyBuffer(env, values.data(), count * value_size));
  res.Set("count", Napi::Number::New(env, static_cast<double>(count)));
  return res;
}


// ---- mmap-able arrays (BPF_F_MMAPABLE): the whole value area at once --------
// An array's elements are round_up(value_size, 8) bytes apart; the caller
// passes/receives exactly that layout.

// An array map's value area as mmap shows it: every value padded to 8 bytes.
static size_t ValueArea(const MapShape& sh) {
  return static_cast<size_t>((sh.value_size + 7) / 8) * 8 * sh.max_entries;
}

struct Mapping {
  void* p;
  size_t len;
  size_t skip;  // bytes from p to the requested offset
};

// The shape of map fd, thrown as EBADF when fd is not a map.
static MapShape KnownShape(Napi::Env env, int fd, const char* op) {
  MapShape sh = GetShape(env, fd, op);
  if (!sh.ok) ThrowErrno(env, op, std::string(op) + FdStr(fd), EBADF);
  return sh;
}

// Maps [offset, offset + want) of the value area of map fd (shape sh).
static Mapping MapAreaOf(Napi::Env env, int fd, const MapShape& sh, const char* op, size_t want, int prot,
                         uint64_t offset = 0) {
  if (sh.type != BPF_MAP_TYPE_ARRAY)
    ThrowType(env, std::string(op) + ": only array maps (created with BPF_F_MMAPABLE) can be mapped");
  size_t area = ValueArea(sh);
  if (offset > area || want > area - offset)
    ThrowType(env, std::string(op) + ": " + std::to_string(want) + " bytes at offset " + std::to_string(offset) +
                       " do not fit the map's " + std::to_string(area) + "-byte value area");
  // Only the pages holding [offset, offset + want): the kernel maps every page of the range at once.
  size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  size_t first = (offset / page) * page;
  size_t end = ((offset + want + page - 1) / page) * page;
  size_t len = std::max(end - first, page);
  void* p = mmap(nullptr, len, prot, MAP_SHARED, fd, static_cast<off_t>(first));
  if (p == MAP_FAILED) ThrowErrno(env, "mmap", std::string("mmap") + FdStr(fd) + " for " + op, errno);
  return Mapping{p, len, offset - first};
}

static Mapping MapArea(Napi::Env env, int fd, const char* op, size_t want, int prot, uint64_t offset = 0) {
  return MapAreaOf(env, fd, KnownShape(env, fd, op), op, want, prot, offset);
}

static Napi::Value MapMmapWrite(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = ArgFd(info, 0, "fd");
  Napi::Uint8Array data = ArgBytes(info, 1, "data");
  Mapping m = MapArea(env, fd, "mapMmapWrite", data.ByteLength(), PROT_READ | PROT_WRITE);
  memcpy(m.p, data.Data(), data.ByteLength());
  munmap(m.p, m.len);
  return env.Undefined();
}

// The u32 word indexes of `words`, each checked to address a `width`-byte word
// inside the value area.
static std::vector<uint32_t> WordIndexes(Napi::Env env, Napi::Uint8Array words, size_t width, size_t area,
                                         const char* op) {
  std::vector<uint32_t> idx(words.ByteLength() / 4);
  memcpy(idx.data(), words.Data(), idx.size() * 4);
  for (uint32_t w : idx)
    if ((static_cast<size_t>(w) + 1) * width > area)
      ThrowType(env, std::string(op) + ": word " + std::to_string(w) + " is beyond the map's " + std::to_string(area) +
                         "-byte value area");
  return idx;
}

// The in-place word writers: for each u32 index i of `words` (arg 1), f(the
// i-th T-wide word of map fd's value area, the i-th T of arg 2), in order,
// with the whole area mapped read-write. badLengths is the error for args
// that are not u32 indexes and as many T values.
template <typename T, typename F>
static Napi::Value EachWord(const Napi::CallbackInfo& info, const char* op, const char* valuesName,
                           const char* badLengths, F f) {
  Napi::Env env = info.Env();
  int fd = ArgFd(info, 0, "fd");
  Napi::Uint8Array words = ArgBytes(info, 1, "words");
  Napi::Uint8Array values = ArgBytes(info, 2, valuesName);
  if (words.ByteLength() % 4 != 0 || values.ByteLength() != words.ByteLength() / 4 * sizeof(T)) ThrowType(env, badLengths);
  MapShape sh = KnownShape(env, fd, op);
  size_t area = ValueArea(sh);
  std::vector<uint32_t> idx = WordIndexes(env, words, sizeof(T), area, op);
  Mapping m = MapAreaOf(env, fd, sh, op, area, PROT_READ | PROT_WRITE);
  for (size_t i = 0; i < idx.size(); i++) {
    T value;
    memcpy(&value, values.Data() + i * sizeof(T), sizeof(T));
    f(reinterpret_cast<T*>(static_cast<char*>(m.p)) + idx[i], value);
  }
  munmap(m.p, m.len);
  return env.Undefined();
}

// Writes single 32-bit words in place: the word at byte 4 * words[i] of the
// value area becomes values[i], in order, each with one aligned 32-bit store,
// so a BPF program reading that word concurrently sees the old or the new
// value, never a mix of their bytes.
static Napi::Value MapMmapWriteWords(const Napi::CallbackInfo& info) {
  return EachWord<uint32_t>(info, "mapMmapWriteWords", "values",
                            "mapMmapWriteWords: words and values must be u32 arrays of the same length",
                            [](uint32_t* w, uint32_t value) { __atomic_store_n(w, value, __ATOMIC_RELEASE); });
}

// Adds to single 64-bit words in place: the u64 at byte 8 * words[i] of the
// value area grows by deltas[i] (wrapping), in order, each written with one
// aligned 64-bit store, so a reader sees the old or the new value, never a mix
// of their bytes. For words only this process writes (no BPF program does):
// the load and the store are not one atomic step.
static Napi::Value MapMmapAddQwords(const Napi::CallbackInfo& info) {
  return EachWord<uint64_t>(
      info, "mapMmapAddQwords", "deltas", "mapMmapAddQwords: words must be u32 indexes and deltas as many u64 values",
      [](uint64_t* q, uint64_t delta) { __atomic_store_n(q, __atomic_load_n(q, __ATOMIC_RELAXED) + delta, __ATOMIC_RELEASE); });
}

// Creates an mmap-able array of one element of valueSize bytes and writes
// `data` at the start of that element through mmap (the rest stays zero):
// the map is complete before anyone can see it. One call, four syscalls
// (create, mmap, munmap, info). Returns { fd, id }.
static Napi::Value MapCreateFilled(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint32_t value_size = ArgU32(info, 0, "valueSize");
  Napi::Uint8Array data = ArgBytes(info, 1, "data");
  std::string name = info.Length() > 2 && info[2].IsString() ? info[2].As<Napi::String>().Utf8Value() : "";
  if (data.ByteLength() > value_size)
    ThrowType(env, "mapCreateFilled: " + std::to_string(data.ByteLength()) + " bytes do not fit a " +
                       std::to_string(value_size) + "-byte value");
  LIBBPF_OPTS(bpf_map_create_opts, co);
  co.map_flags = BPF_F_MMAPABLE;
  int fd = bpf_map_create(BPF_MAP_TYPE_ARRAY, name.empty() ? nullptr : name.c_str(), 4, value_size, 1, &co);
  if (fd < 0)
    ThrowErrno(env, "bpf_map_create",
               "bpf_map_create(array, " + (name.empty() ? std::string("<unnamed>") : name) + ", value " +
                   std::to_string(value_size) + ", max 1, mmapable)",
               fd);
  long page = sysconf(_SC_PAGESIZE);
  size_t len = ((static_cast<size_t>(value_size) + 7) / 8 * 8 + page - 1) / page * page;
  void* p = mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) {
    int e = errno;
    close(fd);
    ThrowErrno(env, "mmap", "mmap(fd " + std::to_string(fd) + ") for mapCreateFilled", e);
  }
  memcpy(p, data.Data(), data.ByteLength());
  munmap(p, len);
  struct bpf_map_info mi;
  memset(&mi, 0, sizeof(mi));
  __u32 il = sizeof(mi);
  int err = bpf_obj_get_info_by_fd(fd, &mi, &il);
  if (err) {
    close(fd);
    ThrowErrno(env, "bpf_obj_get_info_by_fd", "bpf_obj_get_info_by_fd(fd " + std::to_string(fd) + ")", err);
  }
  Napi::Object res = Napi::Object::New(env);
  res.Set("fd", Napi::Number::New(env, fd));
  res.Set("id", Napi::Number::New(env, mi.id));
  return res;
}

static Napi::Value MapMmapRead(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = ArgFd(info, 0, "fd");
  uint32_t length = ArgU32(info, 1, "length");
  uint64_t offset = 0;
  if (!info[2].IsUndefined() && !info[2].IsNull()) {
    double d = info[2].IsNumber() ? info[2].As<Napi::Number>().DoubleValue() : -1;
    if (d < 0 || d > 9007199254740991.0 || d != static_cast<double>(static_cast<uint64_t>(d)))
      ThrowType(env, "offset must be a non-negative integer");
    offset = static_cast<uint64_t>(d);
  }
  Mapping m = MapArea(env, fd, "mapMmapRead", length, PROT_READ, offset);
  Napi::Buffer<uint8_t> out = CopyBuffer(env, static_cast<const uint8_t*>(m.p) + m.skip, length);
  munmap(m.p, m.len);
  return out;
}

static Napi::Value MapUpdateBatch(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = ArgFd(info, 0, "fd");
  Napi::Uint8Array keys = ArgBytes(info, 1, "keys");
  Napi::Uint8Array values = ArgBytes(info, 2, "values");
  uint32_t count = ArgU32(info, 3, "count");
  uint64_t flags = ArgOptU32(info, 4, "flags").value_or(0);
  size_t ks = RecordSize(env, keys, count, "keys");
  size_t vs = RecordSize(env, values, count, "values");
  if (count == 0) return Napi::Number::New(env, 0);
  MapShape sh = GetShape(env, fd, "bpf_map_update_batch");
  CheckSize(env, sh, "mapUpdateBatch", "key", ks, sh.key_size);
  CheckSize(env, sh, "mapUpdateBatch", "value", vs, sh.value_size);

  LIBBPF_OPTS(bpf_map_batch_opts, bo);
  bo.elem_flags = flags;
  __u32 n = count;
  int err = bpf_map_update_batch(fd, keys.Data(), values.Data(), &n, &bo);
  if (!err) return Napi::Number::New(env, n);
  if (!(n == 0 && BatchUnsupported(err)))
    ThrowErrno(env, "bpf_map_update_batch",
               "bpf_map_update_batch" + FdStr(fd) + " (" + std::to_string(n) + "/" + std::to_string(count) + " done)",
               err);
  for (uint32_t i = 0; i < count; i++) {
    err = bpf_map_update_elem(fd, keys.Data() + i * ks, values.Data() + i * vs, flags);
    if (err)
      ThrowErrno(env, "bpf_map_update_elem",
                 "bpf_map_update_elem" + FdStr(fd) + " (element " + std::to_string(i) + "/" + std::to_string(count) +
                     ", batch fallback)",
                 err);
  }
  return Napi::Number::New(env, count);
}

static Napi::Value MapDeleteBatch(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = ArgFd(info, 0, "fd");
  Napi::Uint8Array keys = ArgBytes(info, 1, "keys");
  uint32_t count = ArgU32(info, 2, "count");
  size_t ks = RecordSize(env, keys, count, "keys");
  if (count == 0) return Napi::Number::New(env, 0);
  MapShape sh = GetShape(env, fd, "bpf_map_delete_batch");
  CheckSize(env, sh, "mapDeleteBatch", "key", ks, sh.key_size);

  LIBBPF_OPTS(bpf_map_batch_opts, bo);
  __u32 n = count;
  int err = bpf_map_delete_batch(fd, keys.Data(), &n, &bo);
  if (!err) return Napi::Number::New(env, n);
  if (!(n == 0 && BatchUnsupported(err)))
    ThrowErrno(env, "bpf_map_delete_batch",
               "bpf_map_delete_batch" + FdStr(fd) + " (" + std::to_string(n) + "/" + std::to_string(count) + " done)",
               err);
  for (uint32_t i = 0; i < count; i++) {
    err = bpf_map_delete_elem(fd, keys.Data() + i * ks);
    if (err)
      ThrowErrno(env, "bpf_map_delete_elem",
                 "bpf_map_delete_elem" + FdStr(fd) + " (element " + std::to_string(i) + "/" + std::to_string(count) +
                     ", batch fallback)",
                 err);
  }
  return Napi::Number::New(env, count);
}

void InitMaps(Napi::Env env, Napi::Object exports) {
  auto fn = [&](const char* name, Napi::Function::Callback cb) {
    exports.Set(name, Napi::Function::New(env, cb, name));
  };
  fn("mapCreate", MapCreate);
  fn("mapLookup", MapLookup);
  fn("mapUpdate", MapUpdate);
  fn("mapDelete", MapDelete);
  fn("mapDump", MapDump);
  fn("mapUpdateBatch", MapUpdateBatch);
  fn("mapDeleteBatch", MapDeleteBatch);
  fn("mapMmapWrite", MapMmapWrite);
  fn("mapMmapRead", MapMmapRead);
  fn("mapMmapWriteWords", MapMmapWriteWords);
  fn("mapMmapAddQwords", MapMmapAddQwords);
  fn("mapCreateFilled", MapCreateFilled);
}

}  // namespace xlb
