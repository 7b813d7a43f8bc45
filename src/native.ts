// Loader and typings for the xlb native addon (native/, built with
// `npm run build:native` into build/native/). The addon is deliberately thin:
// it checks arguments, calls libbpf or the syscall, and turns errno into an
// error. All policy (ENOENT is fine here, retry there, ...) lives in TS.
//
// Errors: a failed call throws an XlbNativeError (see below) whose message says
// what was attempted, e.g.
//   "bpf_map_update_elem(fd 12) failed: ENOENT (No such file or directory)"
// with .code ('ENOENT'), .errno (2) and .op ('bpf_map_update_elem').
// Bad arguments throw a plain TypeError.
//
// All calls are synchronous. Interface-related calls take `netns` first:
// null = the current network namespace; a name = /var/run/netns/NAME (an
// absolute path such as /proc/PID/ns/net is accepted too). The addon enters it
// for the duration of the call on the calling thread only and always restores.

import { createRequire } from 'node:module';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Properties every native failure carries. */
export interface NativeError {
  /** errno name: 'ENOENT', 'EPERM', 'ENOTSUPP' (524), 'LIBBPF_ERRNO__VERIFY', ... */
  code: string;
  /** positive errno value */
  errno: number;
  /** operation that failed: 'bpf_map_update_elem', 'bpf_xdp_attach', 'setns', ... */
  op: string;
}

/** The class native failures arrive as (handed to the addon via init()). */
export class XlbNativeError extends Error implements NativeError {
  declare code: string;
  declare errno: number;
  declare op: string;
  constructor(message: string) {
    super(message);
    this.name = 'XlbNativeError';
  }
}

/** True if `e` is an error raised by the addon for a failed call. */
export function isNativeError(e: unknown): e is XlbNativeError {
  return (
    e instanceof Error &&
    typeof (e as Partial<NativeError>).code === 'string' &&
    typeof (e as Partial<NativeError>).errno === 'number' &&
    typeof (e as Partial<NativeError>).op === 'string'
  );
}

export interface MapInfo {
  name: string;
  fd: number;
  id: number;
  /** BPF_MAP_TYPE_* */
  type: number;
  keySize: number;
  /** as declared; per-CPU maps transfer roundup(valueSize, 8) * numPossibleCpus() bytes */
  valueSize: number;
  maxEntries: number;
  /** BPF_F_* map flags */
  flags: number;
}

export interface ObjectMapInfo extends MapInfo {
  /** pin path libbpf used (maps declared with LIBBPF_PIN_BY_NAME under pinRoot), else null */
  pinPath: string | null;
}

export interface ProgInfo {
  name: string;
  fd: number;
  id: number;
  /** BPF_PROG_TYPE_* */
  type: number;
  /** ELF section, e.g. 'xdp', 'tc' */
  sectionName: string;
}

export interface ProgRuntimeInfo {
  id: number;
  type: number;
  name: string;
  /** cumulative run time; only counts while stats are enabled (enableStats() or sysctl kernel.bpf_stats_enabled) */
  runTimeNs: bigint;
  runCnt: number;
}

export interface OpenObjectOptions {
  /** pin_root_path: maps declared with LIBBPF_PIN_BY_NAME are pinned/reused under it.
   *  Created if missing; bpffs is mounted at /sys/fs/bpf first if it is not. */
  pinRoot?: string;
  /** bpf_map__set_max_entries(name, n) before load; an unknown name throws ENOENT */
  maxEntries?: Record<string, number>;
  /** initial values of `const volatile __u32` globals (.rodata, frozen at load); an unknown name throws ENOENT */
  rodata?: Record<string, number>;
}

export interface OpenedObject {
  /** index into the addon's object table, for closeObject() */
  handle: number;
  maps: ObjectMapInfo[];
  programs: ProgInfo[];
}

export interface MapCreateOptions {
  type: number;
  keySize: number;
  valueSize: number;
  maxEntries: number;
  flags?: number;
  /** at most 15 characters (kernel limit) */
  name?: string;
  /** template inner map for ARRAY_OF_MAPS / HASH_OF_MAPS */
  innerMapFd?: number;
}

export interface MapDump {
  /** count * keySize bytes */
  keys: Buffer;
  /** count * valueSize bytes */
  values: Buffer;
  count: number;
}

export type XdpMode = 'native' | 'generic';

export interface XdpQueryResult {
  /** the single attached program's id (0 if none or several) */
  progId: number;
  mode: 'none' | 'native' | 'generic' | 'offload' | 'multi';
  driverProgId: number;
  skbProgId: number;
  hwProgId: number;
}

export type TcDirection = 'ingress' | 'egress';

export interface TcAttachResult {
  progId: number;
  /** as used by the kernel (chosen by it when 0 was passed) */
  handle: number;
  priority: number;
}

export interface ProgTestRunOptions {
  /** the packet; empty for a program that takes none (BPF_PROG_TYPE_SYSCALL: run once, no repeat) */
  data: Buffer | Uint8Array;
  repeat?: number;
  /** builds the ctx: xdp_md.ingress_ifindex for XDP, __sk_buff.ifindex for SCHED_CLS/ACT */
  ifindex?: number;
  /** the ctx as given (not with ifindex); BPF_PROG_TYPE_SYSCALL: the kernel writes it back into this buffer */
  ctx?: Uint8Array;
  /** netns the ifindex refers to (default: current) */
  netns?: string | null;
  /** capacity of the output buffer (default data.length + 256); ignored with BPF_F_TEST_XDP_LIVE_FRAMES */
  dataSizeOut?: number;
  /** e.g. constants.BPF_F_TEST_XDP_LIVE_FRAMES */
  flags?: number;
  /** live-frames batch size */
  batchSize?: number;
}

export interface ProgTestRunResult {
  retval: number;
  /** output packet (empty with BPF_F_TEST_XDP_LIVE_FRAMES) */
  data: Buffer;
  /** average ns per repetition */
  duration: number;
}

export interface StructLayout {
  size: number;
  offsets: Record<string, number>;
}

/** Struct names of bpf/xlb_shared.h reported by layout(). */
export type SharedStructName =
  | 'xlb_ct_seen_word'
  | 'xlb_ct_seen_ctl'
  | 'xlb_vip4_key'
  | 'xlb_vip_val'
  | 'xlb_backend4'
  | 'xlb_maglev_rec'
  | 'xlb_ct4_key'
  | 'xlb_ct4_val'
  | 'xlb_snat4_key'
  | 'xlb_snat4_val'
  | 'xlb_iface'
  | 'xlb_neigh4_key'
  | 'xlb_neigh6_key'
  | 'xlb_stats'
  | 'xlb_vip6_key'
  | 'xlb_backend6'
  | 'xlb_ct6_key'
  | 'xlb_ct6_val'
  | 'xlb_affinity6_key';

/** Numeric constants from linux/bpf.h, if_link.h, pkt_cls.h, libbpf and xlb_shared.h. */
export interface NativeConstants {
  [name: string]: number;
  BPF_MAP_TYPE_HASH: number;
  BPF_MAP_TYPE_ARRAY: number;
  BPF_MAP_TYPE_PERCPU_HASH: number;
  BPF_MAP_TYPE_PERCPU_ARRAY: number;
  BPF_MAP_TYPE_LRU_HASH: number;
  BPF_MAP_TYPE_LRU_PERCPU_HASH: number;
  BPF_MAP_TYPE_ARRAY_OF_MAPS: number;
  BPF_MAP_TYPE_HASH_OF_MAPS: number;
  BPF_PROG_TYPE_XDP: number;
  BPF_PROG_TYPE_SCHED_CLS: number;
  BPF_PROG_TYPE_SCHED_ACT: number;
  BPF_F_NO_PREALLOC: number;
  BPF_F_INNER_MAP: number;
  BPF_ANY: number;
  BPF_NOEXIST: number;
  BPF_EXIST: number;
  BPF_F_TEST_XDP_LIVE_FRAMES: number;
  XDP_ABORTED: number;
  XDP_DROP: number;
  XDP_PASS: number;
  XDP_TX: number;
  XDP_REDIRECT: number;
  TC_ACT_OK: number;
  TC_ACT_SHOT: number;
  BPF_FS_MAGIC: number;
  LIBBPF_PIN_BY_NAME: number;
  XLB_LAYOUT_VERSION: number;
}

/** An AF_PACKET socket opened by packetOpen(). */
export interface PacketSocket {
  fd: number;
  ifindex: number;
  /** The interface's own MAC address (6 bytes; zeros when it has none). */
  mac: Buffer;
}

export interface XlbNative {
  /** Hand the error class to the addon (loadNative() does this with XlbNativeError). */
  init(ErrorClass: new (message: string) => Error): void;

  // ---- objects ----
  /** bpf_object__open_file + set_max_entries + bpf_object__load. On a failed load the
   *  message ends with the tail of libbpf's warnings (the verifier log). */
  openObject(path: string, opts?: OpenObjectOptions): OpenedObject;
  /** bpf_object__close: closes the object's map/prog fds (pins and attachments stay). */
  closeObject(handle: number): void;

  // ---- info, ids, fds, pins ----
  mapInfo(fd: number): MapInfo;
  progInfo(fd: number): ProgRuntimeInfo;
  mapGetFdById(id: number): number;
  progGetFdById(id: number): number;
  closeFd(fd: number): void;
  objPin(fd: number, path: string): void;
  objGet(path: string): number;
  /** unlink(2); ENOENT is thrown like any other error */
  unlinkPin(path: string): void;
  /** mount bpffs at path (default /sys/fs/bpf) unless it already is one; true if mounted now */
  ensureBpffs(path?: string): boolean;
  /** bpf_enable_stats(BPF_STATS_RUN_TIME): run-time stats are on while the returned fd is open */
  enableStats(): number;
  numPossibleCpus(): number;

  // ---- maps ----
  /** bpf_map_create; returns the fd */
  mapCreate(opts: MapCreateOptions): number;
  /** key.length must equal the map's key size and valueSize its value size
   *  (per-CPU: roundup(value_size, 8) * numPossibleCpus()), else TypeError.
   *  Map-in-map outer maps: the value is the inner map id (u32). */
  /** flags: BPF_F_LOCK copies a value holding a bpf_spin_lock under that lock. */
  mapLookup(fd: number, key: Uint8Array, valueSize: number, flags?: number): Buffer | null;
  /** Map-in-map outer maps: the value is the inner map fd (u32). */
  mapUpdate(fd: number, key: Uint8Array, value: Uint8Array, flags?: number): void;
  /** false on ENOENT */
  mapDelete(fd: number, key: Uint8Array): boolean;
  /** bpf_map_lookup_batch, or get_next_key + lookup where batching is unsupported */
  mapDump(fd: number, keySize: number, valueSize: number): MapDump;
  /** bpf_map_update_batch (loop of updates where unsupported); returns the number updated */
  mapUpdateBatch(fd: number, keys: Uint8Array, values: Uint8Array, count: number, flags?: number): number;
  /** Writes `data` at the start of an mmap-able array's value area (elements are round_up(value_size, 8) bytes apart). */
  mapMmapWrite(fd: number, data: Uint8Array): void;
  /** Reads `length` bytes of an mmap-able array's value area from byte `offset` (default 0); only the pages
   *  holding them are mapped. */
  mapMmapRead(fd: number, length: number, offset?: number): Buffer;
  /** Sets the u32 at byte 4 * words[i] of an mmap-able array's value area to values[i] (u32, little-endian),
   *  in order, each with one aligned 32-bit store (a concurrent reader sees the old or the new value, never a mix). */
  mapMmapWriteWords(fd: number, words: Uint8Array, values: Uint8Array): void;
  /** Adds deltas[i] (u64, little-endian, wrapping) to the u64 at byte 8 * words[i] of an mmap-able array's
   *  value area, each with one aligned 64-bit store; for words no BPF program writes (not an atomic add). */
  mapMmapAddQwords(fd: number, words: Uint8Array, deltas: Uint8Array): void;
  /** Creates an mmap-able array of one valueSize-byte element (BPF_F_MMAPABLE) and writes `data` at its
   *  start through mmap (the rest is zero); the caller closes fd. */
  mapCreateFilled(valueSize: number, data: Uint8Array, name?: string): { fd: number; id: number };
  /** bpf_map_delete_batch (loop of deletes where unsupported); returns the number deleted */
  mapDeleteBatch(fd: number, keys: Uint8Array, count: number): number;

  // ---- interfaces ----
  /** throws ENODEV (message names the interface) when absent */
  ifNameToIndex(netns: string | null, ifname: string): number;
  /** bpf_xdp_attach; replaceFd adds XDP_FLAGS_REPLACE (fails with EEXIST if another prog is attached) */
  xdpAttach(netns: string | null, ifindex: number, progFd: number, mode: XdpMode, replaceFd?: number): void;
  xdpDetach(netns: string | null, ifindex: number, mode: XdpMode): void;
  xdpQuery(netns: string | null, ifindex: number): XdpQueryResult;
  /** creates the clsact qdisc; false if it already existed */
  tcHookCreate(netns: string | null, ifindex: number): boolean;
  /** removes the clsact qdisc (and every filter on it) */
  tcHookDestroy(netns: string | null, ifindex: number): void;
  tcAttach(
    netns: string | null,
    ifindex: number,
    dir: TcDirection,
    progFd: number,
    handle: number,
    priority: number,
    replace: boolean,
  ): TcAttachResult;
  tcDetach(netns: string | null, ifindex: number, dir: TcDirection, handle: number, priority: number): void;
  /** prog id, or null when no such filter (ENOENT) */
  tcQuery(netns: string | null, ifindex: number, dir: TcDirection, handle: number, priority: number): number | null;

  // ---- raw frames (AF_PACKET; the health checker's probes) ----
  /** socket(AF_PACKET, SOCK_RAW, ETH_P_ALL) created in `netns`, bound to `ifname`, non-blocking,
   *  not seeing its own outgoing frames (PACKET_IGNORE_OUTGOING). ENODEV when the interface is absent. */
  packetOpen(netns: string | null, ifname: string): PacketSocket;
  /** Sends one complete Ethernet frame out of the bound interface; returns the bytes sent. */
  packetSend(fd: number, frame: Uint8Array): number;
  /** Waits up to timeoutMs (on a worker thread: the event loop is not blocked) for frames received
   *  on the interface and resolves with those queued (at most maxFrames, default 64; [] on timeout).
   *  Do not close the fd while a packetRecv on it is pending. Asynchronous, unlike the other calls. */
  packetRecv(fd: number, timeoutMs: number, maxFrames?: number): Promise<Buffer[]>;
  /** close(2) of a packet socket. */
  packetClose(fd: number): void;

  // ---- test runs ----
  progTestRun(progFd: number, opts: ProgTestRunOptions): ProgTestRunResult;

  // ---- misc ----
  /** sizeof/offsetof of every struct/field of bpf/xlb_shared.h, as the C compiler sees them */
  layout(): Record<SharedStructName, StructLayout>;
  /** XLB_LAYOUT_VERSION the addon was built with */
  layoutVersion: number;
  constants: NativeConstants;
  errnoName(errno: number): string;
  /** everything libbpf printed (all levels) since the last openObject()/clear */
  libbpfLog(clear?: boolean): string;
}

function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const pj = join(dir, 'package.json');
    if (existsSync(pj)) {
      try {
        if ((JSON.parse(readFileSync(pj, 'utf8')) as { name?: string }).name === 'xlb') return dir;
      } catch {
        // unreadable package.json: keep walking up
      }
    }
    const parent = dirname(dir);
    if (parent === dir) throw new Error(`xlb native: no package.json named "xlb" above ${fileURLToPath(import.meta.url)}`);
    dir = parent;
  }
}

let cached: XlbNative | undefined;

/** Load the addon (once). Throws an Error listing every path tried. */
export function loadNative(): XlbNative {
  if (cached) return cached;
  const require = createRequire(import.meta.url);
  const root = packageRoot();
  const tried: string[] = [];
  const candidates: string[] = [];
  if (process.env.XLB_NATIVE_PATH) candidates.push(process.env.XLB_NATIVE_PATH);
  for (const dir of [join(root, 'build', 'native', 'Release'), join(root, 'build', 'native')]) {
    let files: string[] = [];
    try {
      files = readdirSync(dir)
        .filter((f) => f.endsWith('.node'))
        .sort((a, b) => (a === 'xlb.node' ? -1 : b === 'xlb.node' ? 1 : a.localeCompare(b)));
    } catch {
      // missing directory
    }
    if (files.length === 0) tried.push(`${join(dir, '*.node')} (none found)`);
    for (const f of files) candidates.push(join(dir, f));
  }
  for (const p of candidates) {
    try {
      const mod = require(p) as XlbNative;
      mod.init(XlbNativeError);
      cached = mod;
      return mod;
    } catch (e) {
      tried.push(`${p} (${(e as Error).message.split('\n')[0]})`);
    }
  }
  throw new Error(
    `xlb native addon not found or not loadable; tried:\n  ${tried.join('\n  ')}\n` +
      `Build it with \`npm run build:native\` (cmake-js, needs libbpf-dev, libelf-dev, zlib1g-dev).`,
  );
}
