// Tests of the native addon (native/, loaded by src/native.ts). Run as root,
// after `npm run build:native`. Uses a netns xlb-nt-<pid> with a veth pair and
// a second pair veth2/veth3, and pins under /sys/fs/bpf/xlb-native-test-<pid>; both are removed afterwards.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadNative, XlbNativeError, type OpenedObject, type XlbNative } from '../src/native.js';

const here = dirname(fileURLToPath(import.meta.url));
const NS = `xlb-nt-${process.pid}`;
const PIN_DIR = `/sys/fs/bpf/xlb-native-test-${process.pid}`;

let n: XlbNative;
let C: XlbNative['constants'];
let tmp: string;
let noopObj: string;
let badObj: string;
let obj: OpenedObject;
let xdpFd: number;
let tcFd: number;
const openFds: number[] = [];

function sh(cmd: string, ...args: string[]): string {
  return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

function u32(v: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(v);
  return b;
}

function u64(v: bigint): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(v);
  return b;
}

function track(fd: number): number {
  openFds.push(fd);
  return fd;
}

/** Run fn, expect a native error with the given code; return it. */
function expectNativeError(fn: () => unknown, code: string): XlbNativeError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(XlbNativeError);
    const err = e as XlbNativeError;
    expect(err.code).toBe(code);
    expect(typeof err.errno).toBe('number');
    expect(typeof err.op).toBe('string');
    return err;
  }
  throw new Error(`expected a native ${code} error`);
}

beforeAll(() => {
  n = loadNative();
  C = n.constants;
  tmp = mkdtempSync(join(tmpdir(), 'xlb-native-test-'));
  noopObj = join(tmp, 'noop.bpf.o');
  sh('clang', '-O2', '-g', '-target', 'bpf', '-I/usr/include/x86_64-linux-gnu', '-c',
    join(here, 'fixtures', 'noop.bpf.c'), '-o', noopObj);
  // A program the verifier rejects (packet read without a bounds check).
  const badSrc = join(tmp, 'bad.bpf.c');
  writeFileSync(badSrc, `#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
SEC("xdp") int bad_xdp(struct xdp_md *ctx) { return *(int *)(long)ctx->data; }
char LICENSE[] SEC("license") = "GPL";
`);
  badObj = join(tmp, 'bad.bpf.o');
  sh('clang', '-O2', '-g', '-target', 'bpf', '-I/usr/include/x86_64-linux-gnu', '-c', badSrc, '-o', badObj);

  n.ensureBpffs();
  mkdirSync(PIN_DIR, { recursive: true });

  sh('ip', 'netns', 'add', NS);
  sh('ip', '-n', NS, 'link', 'set', 'lo', 'up');
  sh('ip', '-n', NS, 'link', 'add', 'veth0', 'type', 'veth', 'peer', 'name', 'veth1');
  sh('ip', '-n', NS, 'link', 'set', 'veth0', 'up');
  sh('ip', '-n', NS, 'link', 'set', 'veth1', 'up');
  sh('ip', '-n', NS, 'link', 'add', 'veth2', 'type', 'veth', 'peer', 'name', 'veth3');
  sh('ip', '-n', NS, 'link', 'set', 'veth2', 'up');

  obj = n.openObject(noopObj, { pinRoot: PIN_DIR, maxEntries: { noop_counts: 8 } });
  xdpFd = obj.programs.find((p) => p.name === 'noop_xdp')!.fd;
  tcFd = obj.programs.find((p) => p.name === 'noop_tc')!.fd;
});

afterAll(() => {
  for (const fd of openFds) {
    try {
      n.closeFd(fd);
    } catch {
      // already closed by the test
    }
  }
  if (obj) n.closeObject(obj.handle);
  try {
    sh('ip', 'netns', 'del', NS);
  } catch {
    // not created
  }
  rmSync(PIN_DIR, { recursive: true, force: true });
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

describe('layout and constants', () => {
  it('matches the static asserts of bpf/xlb_shared.h', () => {
    const l = n.layout();
    expect(l.xlb_vip4_key.size).toBe(12);
    expect(l.xlb_vip4_key.offsets.scope).toBe(8);
    expect(l.xlb_vip_val.size).toBe(24);
    expect(l.xlb_vip_val.offsets.table_m).toBe(20);
    expect(l.xlb_vip_val.offsets.hairpin_addr).toBe(16);
    expect(l.xlb_backend4.size).toBe(8);
    expect(l.xlb_ct4_key.size).toBe(16);
    expect(l.xlb_ct4_key.offsets.proto).toBe(12);
    expect(l.xlb_ct4_val.size).toBe(40);
    expect(l.xlb_ct4_val.offsets.pend).toBe(32);
    expect(l.xlb_ct4_val.offsets.snat_addr).toBe(24);
    expect(l.xlb_ct4_val.offsets.flags).toBe(30);
    expect(l.xlb_snat4_key.size).toBe(16);
    expect(l.xlb_snat4_val.size).toBe(4);
    expect(l.xlb_ct4_val.offsets.vip_id).toBe(8);
    expect(l.xlb_ct4_val.offsets.last_seen_ns).toBe(16);
    expect(l.xlb_iface.size).toBe(16);
    expect(l.xlb_neigh4_key.size).toBe(8);
    expect(l.xlb_stats.size).toBe(56);
    expect(Object.keys(l.xlb_stats.offsets)).toEqual([
      'packets', 'bytes', 'reply_packets', 'reply_bytes', 'new_conns', 'drops', 'rejects',
    ]);
    expect(n.layoutVersion).toBe(C.XLB_LAYOUT_VERSION);
  });

  it('exports constants', () => {
    expect(C.BPF_MAP_TYPE_HASH).toBe(1);
    expect(C.BPF_MAP_TYPE_ARRAY).toBe(2);
    expect(C.BPF_MAP_TYPE_ARRAY_OF_MAPS).toBe(12);
    expect(C.XDP_PASS).toBe(2);
    expect(C.TC_ACT_OK).toBe(0);
    expect(C.TC_ACT_SHOT).toBe(2);
    expect(C.BPF_F_TEST_XDP_LIVE_FRAMES).toBe(2);
    expect(C.BPF_NOEXIST).toBe(1);
    expect(n.numPossibleCpus()).toBeGreaterThan(0);
    expect(n.errnoName(2)).toBe('ENOENT');
    expect(n.errnoName(524)).toBe('ENOTSUPP');
  });
});

describe('maps', () => {
  it('HASH: update / lookup / delete / dump', () => {
    const fd = track(n.mapCreate({ type: C.BPF_MAP_TYPE_HASH, keySize: 4, valueSize: 8, maxEntries: 64, name: 'xlb_t_hash' }));
    const info = n.mapInfo(fd);
    expect(info).toMatchObject({ name: 'xlb_t_hash', fd, type: C.BPF_MAP_TYPE_HASH, keySize: 4, valueSize: 8, maxEntries: 64, flags: 0 });
    expect(info.id).toBeGreaterThan(0);

    expect(n.mapLookup(fd, u32(1), 8)).toBeNull();
    n.mapUpdate(fd, u32(1), u64(100n));
    n.mapUpdate(fd, u32(2), u64(200n), C.BPF_NOEXIST);
    expect(n.mapLookup(fd, u32(1), 8)!.readBigUInt64LE()).toBe(100n);
    const e = expectNativeError(() => n.mapUpdate(fd, u32(2), u64(1n), C.BPF_NOEXIST), 'EEXIST');
    expect(e.op).toBe('bpf_map_update_elem');
    expect(e.message).toBe(`bpf_map_update_elem(fd ${fd}) failed: EEXIST (File exists)`);
    expectNativeError(() => n.mapUpdate(fd, u32(3), u64(1n), C.BPF_EXIST), 'ENOENT');

    const d = n.mapDump(fd, 4, 8);
    expect(d.count).toBe(2);
    expect(d.keys.length).toBe(8);
    expect(d.values.length).toBe(16);
    const got = new Map<number, bigint>();
    for (let i = 0; i < d.count; i++) got.set(d.keys.readUInt32LE(i * 4), d.values.readBigUInt64LE(i * 8));
    expect(got).toEqual(new Map([[1, 100n], [2, 200n]]));

    expect(n.mapDelete(fd, u32(1))).toBe(true);
    expect(n.mapDelete(fd, u32(1))).toBe(false);
    expect(n.mapDump(fd, 4, 8).count).toBe(1);
  });

  it('HASH: batch update / dump / batch delete (more entries than one batch chunk)', () => {
    const N = 5000;
    const fd = track(n.mapCreate({ type: C.BPF_MAP_TYPE_HASH, keySize: 4, valueSize: 8, maxEntries: 8192 }));
    const keys = Buffer.alloc(N * 4);
    const values = Buffer.alloc(N * 8);
    for (let i = 0; i < N; i++) {
      keys.writeUInt32LE(i + 1, i * 4);
      values.writeBigUInt64LE(BigInt(i) * 3n, i * 8);
    }
    expect(n.mapUpdateBatch(fd, keys, values, N)).toBe(N);
    const d = n.mapDump(fd, 4, 8);
    expect(d.count).toBe(N);
    for (let i = 0; i < d.count; i++) {
      const k = d.keys.readUInt32LE(i * 4);
      expect(d.values.readBigUInt64LE(i * 8)).toBe(BigInt(k - 1) * 3n);
    }
    expect(n.mapDeleteBatch(fd, keys.subarray(0, 100 * 4), 100)).toBe(100);
    expect(n.mapDump(fd, 4, 8).count).toBe(N - 100);
    expect(n.mapLookup(fd, u32(1), 8)).toBeNull();
    expect(n.mapLookup(fd, u32(101), 8)!.readBigUInt64LE()).toBe(300n);
  });

  it('ARRAY: batch update and dump', () => {
    const fd = track(n.mapCreate({ type: C.BPF_MAP_TYPE_ARRAY, keySize: 4, valueSize: 8, maxEntries: 16 }));
    const keys = Buffer.concat([u32(3), u32(7)]);
    const values = Buffer.concat([u64(33n), u64(77n)]);
    expect(n.mapUpdateBatch(fd, keys, values, 2)).toBe(2);
    expect(n.mapLookup(fd, u32(7), 8)!.readBigUInt64LE()).toBe(77n);
    const d = n.mapDump(fd, 4, 8);
    expect(d.count).toBe(16);
    for (let i = 0; i < 16; i++) {
      expect(d.keys.readUInt32LE(i * 4)).toBe(i);
      expect(d.values.readBigUInt64LE(i * 8)).toBe(i === 3 ? 33n : i === 7 ? 77n : 0n);
    }
    expectNativeError(() => n.mapUpdate(fd, u32(16), u64(1n)), 'E2BIG');
  });

  it('ARRAY (mmap-able): mapMmapRead from an offset maps only the pages it reads', () => {
    const N = 3000; // 24,000 bytes: six pages
    const fd = track(n.mapCreate({ type: C.BPF_MAP_TYPE_ARRAY, keySize: 4, valueSize: 8, maxEntries: N, flags: C.BPF_F_MMAPABLE }));
    for (const k of [0, 511, 512, 1500, N - 1]) n.mapUpdate(fd, u32(k), u64(BigInt(k) + 1n));
    const all = n.mapMmapRead(fd, N * 8);
    expect(all.readBigUInt64LE(1500 * 8)).toBe(1501n);
    // across a page boundary (element 511 ends page 0), in the middle, and the very end
    expect(n.mapMmapRead(fd, 16, 511 * 8)).toEqual(Buffer.concat([u64(512n), u64(513n)]));
    expect(n.mapMmapRead(fd, 8, 1500 * 8).readBigUInt64LE()).toBe(1501n);
    expect(n.mapMmapRead(fd, 8, (N - 1) * 8).readBigUInt64LE()).toBe(BigInt(N));
    expect(n.mapMmapRead(fd, 0, N * 8).length).toBe(0);
    expect(() => n.mapMmapRead(fd, 16, (N - 1) * 8)).toThrow(/do not fit/);
    expect(() => n.mapMmapRead(fd, 8, -8)).toThrow(/offset/);
  });

  it('ARRAY (mmap-able): mapMmapWriteWords and mapMmapAddQwords write single words in place, in order, and check their bounds', () => {
    const N = 600; // 4,800 bytes: two pages
    const fd = track(n.mapCreate({ type: C.BPF_MAP_TYPE_ARRAY, keySize: 4, valueSize: 8, maxEntries: N, flags: C.BPF_F_MMAPABLE }));
    const u32s = (...xs: number[]): Buffer => Buffer.from(Uint32Array.from(xs).buffer);
    const u64s = (...xs: bigint[]): Buffer => Buffer.from(BigUint64Array.from(xs).buffer);
    n.mapUpdate(fd, u32(599), u64(1n));
    // u32 words: both halves of element 3, one word on the second page, and a repeated index (the last wins)
    n.mapMmapWriteWords(fd, u32s(6, 7, 1100, 6), u32s(0x11111111, 0x22222222, 0xdeadbeef, 0x33333333));
    expect(n.mapLookup(fd, u32(3), 8)!.readBigUInt64LE()).toBe(0x2222222233333333n);
    expect(n.mapMmapRead(fd, 4, 1100 * 4).readUInt32LE()).toBe(0xdeadbeef);
    // u64 adds: wrapping, repeated (both count), the last element
    n.mapMmapAddQwords(fd, u32s(10, 599, 10), u64s(5n, 2n ** 64n - 1n, 7n));
    expect(n.mapLookup(fd, u32(10), 8)!.readBigUInt64LE()).toBe(12n);
    expect(n.mapLookup(fd, u32(599), 8)!.readBigUInt64LE()).toBe(0n);
    expect(n.mapLookup(fd, u32(3), 8)!.readBigUInt64LE()).toBe(0x2222222233333333n); // untouched
    // past the value area: nothing written at all (checked before the first store)
    expect(() => n.mapMmapWriteWords(fd, u32s(0, 2 * N), u32s(9, 9))).toThrow(/beyond/);
    expect(() => n.mapMmapAddQwords(fd, u32s(10, N), u64s(1n, 1n))).toThrow(/beyond/);
    expect(n.mapMmapRead(fd, 4, 0).readUInt32LE()).toBe(0);
    expect(n.mapLookup(fd, u32(10), 8)!.readBigUInt64LE()).toBe(12n);
    // lengths that do not pair up
    expect(() => n.mapMmapWriteWords(fd, u32s(1, 2), u32s(1))).toThrow(TypeError);
    expect(() => n.mapMmapAddQwords(fd, u32s(1), u32s(1))).toThrow(TypeError);
  });

  it('PERCPU_ARRAY: values are roundup(value_size, 8) * possible CPUs', () => {
    const cpus = n.numPossibleCpus();
    const fd = track(n.mapCreate({ type: C.BPF_MAP_TYPE_PERCPU_ARRAY, keySize: 4, valueSize: 4, maxEntries: 2 }));
    const v = Buffer.alloc(8 * cpus);
    for (let c = 0; c < cpus; c++) v.writeUInt32LE(c + 10, c * 8);
    n.mapUpdate(fd, u32(1), v);
    expect(n.mapLookup(fd, u32(1), 8 * cpus)).toEqual(v);
    const d = n.mapDump(fd, 4, 8 * cpus);
    expect(d.count).toBe(2);
    expect(d.values.subarray(8 * cpus)).toEqual(v);
    expect(() => n.mapLookup(fd, u32(1), 4)).toThrow(TypeError);
  });

  it('ARRAY_OF_MAPS: inner maps of different sizes swapped in', () => {
    const inner1 = track(n.mapCreate({ type: C.BPF_MAP_TYPE_ARRAY, keySize: 4, valueSize: 4, maxEntries: 8, flags: C.BPF_F_INNER_MAP }));
    const inner2 = track(n.mapCreate({ type: C.BPF_MAP_TYPE_ARRAY, keySize: 4, valueSize: 4, maxEntries: 32, flags: C.BPF_F_INNER_MAP }));
    n.mapUpdate(inner2, u32(31), u32(4242));
    const outer = track(n.mapCreate({ type: C.BPF_MAP_TYPE_ARRAY_OF_MAPS, keySize: 4, valueSize: 4, maxEntries: 4, innerMapFd: inner1 }));

    n.mapUpdate(outer, u32(0), u32(inner1));
    expect(n.mapLookup(outer, u32(0), 4)!.readUInt32LE()).toBe(n.mapInfo(inner1).id);
    n.mapUpdate(outer, u32(0), u32(inner2));
    const id2 = n.mapLookup(outer, u32(0), 4)!.readUInt32LE();
    expect(id2).toBe(n.mapInfo(inner2).id);
    expect(n.mapLookup(outer, u32(1), 4)).toBeNull();

    const fd2 = track(n.mapGetFdById(id2));
    expect(n.mapInfo(fd2)).toMatchObject({ id: id2, maxEntries: 32, flags: C.BPF_F_INNER_MAP });
    expect(n.mapLookup(fd2, u32(31), 4)!.readUInt32LE()).toBe(4242);

    const d = n.mapDump(outer, 4, 4);
    expect(d.count).toBe(1);
    expect(d.keys.readUInt32LE(0)).toBe(0);
    expect(d.values.readUInt32LE(0)).toBe(id2);
    expect(n.mapDelete(outer, u32(0))).toBe(true);
    expect(n.mapDump(outer, 4, 4).count).toBe(0);
  });
});

describe('errors', () => {
  it('lookup on a closed fd: EBADF', () => {
    const fd = n.mapCreate({ type: C.BPF_MAP_TYPE_HASH, keySize: 4, valueSize: 4, maxEntries: 1 });
    n.closeFd(fd);
    const e = expectNativeError(() => n.mapLookup(fd, u32(0), 4), 'EBADF');
    expect(e.errno).toBe(9);
    expect(e.op).toBe('bpf_map_lookup_elem');
    expect(e.message).toBe(`bpf_map_lookup_elem(fd ${fd}) failed: EBADF (Bad file descriptor)`);
    expectNativeError(() => n.closeFd(fd), 'EBADF');
  });

  it('missing interface: ENODEV naming the interface', () => {
    const e = expectNativeError(() => n.ifNameToIndex(null, 'xlbnope0'), 'ENODEV');
    expect(e.message).toContain('xlbnope0');
    expect(e.op).toBe('if_nametoindex');
  });

  it('missing pin: ENOENT', () => {
    const e = expectNativeError(() => n.objGet(`${PIN_DIR}/does-not-exist`), 'ENOENT');
    expect(e.op).toBe('bpf_obj_get');
  });

  it('missing netns: ENOENT', () => {
    const e = expectNativeError(() => n.ifNameToIndex(`${NS}-missing`, 'lo'), 'ENOENT');
    expect(e.message).toContain(`/var/run/netns/${NS}-missing`);
  });

  it('bad arguments: TypeError', () => {
    expect(() => n.mapLookup('x' as unknown as number, u32(0), 4)).toThrow(TypeError);
    expect(() => n.mapUpdate(0, 'k' as unknown as Buffer, u32(0))).toThrow(TypeError);
    expect(() => n.mapCreate({ type: 1 } as never)).toThrow(TypeError);
    expect(() => n.xdpAttach(null, 1, 0, 'bogus' as never)).toThrow(TypeError);
    expect(() => n.ifNameToIndex('a/b', 'lo')).toThrow(TypeError);
    expect(() => n.mapUpdateBatch(0, Buffer.alloc(5), Buffer.alloc(8), 2)).toThrow(TypeError);
  });
});

describe('pins', () => {
  it('objPin / objGet / unlinkPin', () => {
    const fd = track(n.mapCreate({ type: C.BPF_MAP_TYPE_ARRAY, keySize: 4, valueSize: 4, maxEntries: 2 }));
    const path = `${PIN_DIR}/pinned_map`;
    n.objPin(fd, path);
    expectNativeError(() => n.objPin(fd, path), 'EEXIST');
    const fd2 = track(n.objGet(path));
    expect(n.mapInfo(fd2).id).toBe(n.mapInfo(fd).id);
    n.unlinkPin(path);
    expectNativeError(() => n.unlinkPin(path), 'ENOENT');
  });
});

describe('objects', () => {
  it('openObject: maps (resized, pinned by name) and programs', () => {
    const m = obj.maps.find((x) => x.name === 'noop_counts')!;
    expect(m).toMatchObject({ type: C.BPF_MAP_TYPE_ARRAY, keySize: 4, valueSize: 8, maxEntries: 8, pinPath: `${PIN_DIR}/noop_counts` });
    expect(m.id).toBeGreaterThan(0);
    expect(n.mapInfo(track(n.objGet(`${PIN_DIR}/noop_counts`))).id).toBe(m.id);
    const x = obj.programs.find((p) => p.name === 'noop_xdp')!;
    const t = obj.programs.find((p) => p.name === 'noop_tc')!;
    expect(x).toMatchObject({ type: C.BPF_PROG_TYPE_XDP, sectionName: 'xdp' });
    expect(t).toMatchObject({ type: C.BPF_PROG_TYPE_SCHED_CLS, sectionName: 'tc' });
    const pi = n.progInfo(x.fd);
    expect(pi.id).toBe(x.id);
    expect(pi.type).toBe(C.BPF_PROG_TYPE_XDP);
    expect(pi.name).toBe('noop_xdp');
    expect(typeof pi.runTimeNs).toBe('bigint');
    expect(typeof pi.runCnt).toBe('number');
    const pfd = track(n.progGetFdById(x.id));
    expect(n.progInfo(pfd).id).toBe(x.id);
  });

  it('openObject again reuses the pinned map', () => {
    const again = n.openObject(noopObj, { pinRoot: PIN_DIR, maxEntries: { noop_counts: 8 } });
    try {
      expect(again.maps.find((x) => x.name === 'noop_counts')!.id).toBe(obj.maps.find((x) => x.name === 'noop_counts')!.id);
    } finally {
      n.closeObject(again.handle);
    }
    expectNativeError(() => n.closeObject(again.handle), 'EBADF');
  });

  it('openObject rodata: a const volatile global set before load', () => {
    // Its own pin root (the fixture's map is pinned by name: without one, libbpf pins it in /sys/fs/bpf).
    const pinRoot = `${PIN_DIR}/rodata`;
    mkdirSync(pinRoot, { recursive: true });
    const o = n.openObject(noopObj, { pinRoot, rodata: { noop_tc_slot: 3 } });
    try {
      const tc = o.programs.find((p) => p.name === 'noop_tc')!.fd;
      const counts = o.maps.find((x) => x.name === 'noop_counts')!.fd;
      expect(n.progTestRun(tc, { data: Buffer.alloc(64) }).retval).toBe(C.TC_ACT_OK);
      expect(n.mapLookup(counts, u32(3), 8)!.readBigUInt64LE()).toBeGreaterThanOrEqual(1n);
      expect(n.mapLookup(counts, u32(1), 8)!.readBigUInt64LE()).toBe(0n);
    } finally {
      n.closeObject(o.handle);
    }
    const e = expectNativeError(() => n.openObject(noopObj, { pinRoot, rodata: { nope: 1 } }), 'ENOENT');
    expect(e.message).toContain('nope');
    expect(() => n.openObject(noopObj, { pinRoot, rodata: { noop_tc_slot: -1 } })).toThrow(/rodata\.noop_tc_slot/);
  });

  it('openObject errors: unknown map in maxEntries, verifier rejection with log', () => {
    const e1 = expectNativeError(() => n.openObject(noopObj, { maxEntries: { nope: 1 } }), 'ENOENT');
    expect(e1.message).toContain('nope');
    expectNativeError(() => n.openObject(join(tmp, 'missing.o'), {}), 'ENOENT');
    let err: XlbNativeError | undefined;
    try {
      n.openObject(badObj, {});
    } catch (e) {
      err = e as XlbNativeError;
    }
    expect(err).toBeInstanceOf(XlbNativeError);
    expect(err!.op).toBe('bpf_object__load');
    expect(err!.message).toMatch(/^bpf_object__load\(.*bad\.bpf\.o\) failed: /);
    expect(err!.message).toMatch(/invalid access to packet|R\d+ /);
  });

  it('progTestRun: XDP_PASS with output equal to input; tc TC_ACT_OK', () => {
    const pkt = Buffer.alloc(64);
    for (let i = 0; i < pkt.length; i++) pkt[i] = i;
    const r = n.progTestRun(xdpFd, { data: pkt, repeat: 10 });
    expect(r.retval).toBe(C.XDP_PASS);
    expect(r.data).toEqual(pkt);
    expect(typeof r.duration).toBe('number');

    const ifindex = n.ifNameToIndex(NS, 'veth0');
    const r2 = n.progTestRun(xdpFd, { data: pkt, ifindex, netns: NS });
    expect(r2.retval).toBe(C.XDP_PASS);
    expect(r2.data).toEqual(pkt);

    const r3 = n.progTestRun(tcFd, { data: pkt, ifindex, netns: NS });
    expect(r3.retval).toBe(C.TC_ACT_OK);
    expect(r3.data).toEqual(pkt);

    // A ctx is given as is, or built from ifindex: never both; a Uint8Array only.
    expect(() => n.progTestRun(xdpFd, { data: pkt, ifindex, netns: NS, ctx: new Uint8Array(24) })).toThrow(
      'options.ctx and options.ifindex are exclusive (ifindex builds the ctx)',
    );
    expect(() => n.progTestRun(xdpFd, { data: pkt, ctx: [1, 2] as unknown as Uint8Array })).toThrow('options.ctx must be a Buffer or Uint8Array');

    // The programs count their runs in noop_counts (per-run increments).
    const counts = obj.maps.find((x) => x.name === 'noop_counts')!.fd;
    expect(n.mapLookup(counts, u32(0), 8)!.readBigUInt64LE()).toBeGreaterThanOrEqual(11n);
    expect(n.mapLookup(counts, u32(1), 8)!.readBigUInt64LE()).toBeGreaterThanOrEqual(1n);
  });
});

describe('interfaces in a netns', () => {
  it('ifNameToIndex in the netns (and not outside)', () => {
    expect(n.ifNameToIndex(NS, 'veth0')).toBeGreaterThan(0);
    expect(n.ifNameToIndex(NS, 'lo')).toBe(1);
    expectNativeError(() => n.ifNameToIndex(null, 'veth1-not-here'), 'ENODEV');
  });

  it('XDP native and generic attach / replace / query / detach', () => {
    const ifindex = n.ifNameToIndex(NS, 'veth0');
    const progId = obj.programs.find((p) => p.name === 'noop_xdp')!.id;
    expect(n.xdpQuery(NS, ifindex)).toMatchObject({ progId: 0, mode: 'none' });

    n.xdpAttach(NS, ifindex, xdpFd, 'native');
    expect(n.xdpQuery(NS, ifindex)).toMatchObject({ progId, mode: 'native', driverProgId: progId, skbProgId: 0 });
    n.xdpAttach(NS, ifindex, xdpFd, 'native', xdpFd); // atomic replace, expecting the same program
    n.xdpAttach(NS, ifindex, xdpFd, 'native'); // plain overwrite
    expect(n.xdpQuery(NS, ifindex).progId).toBe(progId);
    n.xdpDetach(NS, ifindex, 'native');
    expect(n.xdpQuery(NS, ifindex).mode).toBe('none');

    // Replace when nothing is attached fails (the kernel's answer, passed through).
    expect(() => n.xdpAttach(NS, ifindex, xdpFd, 'native', xdpFd)).toThrow(XlbNativeError);

    const other = n.ifNameToIndex(NS, 'veth2');
    n.xdpAttach(NS, other, xdpFd, 'generic');
    expect(n.xdpQuery(NS, other)).toMatchObject({ progId, mode: 'generic', skbProgId: progId, driverProgId: 0 });
    n.xdpDetach(NS, other, 'generic');
    expect(n.xdpQuery(NS, other).mode).toBe('none');
  });

  it('tc hook / attach / replace / query / detach', () => {
    const ifindex = n.ifNameToIndex(NS, 'veth1');
    const progId = obj.programs.find((p) => p.name === 'noop_tc')!.id;
    expect(n.tcHookCreate(NS, ifindex)).toBe(true);
    expect(n.tcHookCreate(NS, ifindex)).toBe(false);
    // With no filter at all there is no chain 0 yet: the kernel answers EINVAL
    // ("Cannot find specified filter chain"), passed through as is.
    expectNativeError(() => n.tcQuery(NS, ifindex, 'ingress', 1, 1), 'EINVAL');

    expect(n.tcAttach(NS, ifindex, 'ingress', tcFd, 1, 1, false)).toEqual({ progId, handle: 1, priority: 1 });
    expectNativeError(() => n.tcAttach(NS, ifindex, 'ingress', tcFd, 1, 1, false), 'EEXIST');
    expect(n.tcAttach(NS, ifindex, 'ingress', tcFd, 1, 1, true).progId).toBe(progId);
    expect(n.tcAttach(NS, ifindex, 'egress', tcFd, 2, 5, false).progId).toBe(progId);
    expect(n.tcQuery(NS, ifindex, 'ingress', 1, 1)).toBe(progId);
    expect(n.tcQuery(NS, ifindex, 'egress', 2, 5)).toBe(progId);
    // The chain exists, the filter does not: ENOENT -> null.
    expect(n.tcQuery(NS, ifindex, 'ingress', 2, 1)).toBeNull();
    expect(n.tcQuery(NS, ifindex, 'egress', 2, 6)).toBeNull();

    n.tcDetach(NS, ifindex, 'ingress', 1, 1);
    expect(() => n.tcQuery(NS, ifindex, 'ingress', 1, 1)).toThrow(XlbNativeError); // chain gone again (EINVAL)
    expect(() => n.tcDetach(NS, ifindex, 'ingress', 1, 1)).toThrow(XlbNativeError);
    n.tcDetach(NS, ifindex, 'egress', 2, 5);
    n.tcHookDestroy(NS, ifindex);
    expect(n.tcHookCreate(NS, ifindex)).toBe(true);
    n.tcHookDestroy(NS, ifindex);
  });

  it('the calling thread is back in its own netns afterwards', () => {
    const before = sh('readlink', '/proc/self/ns/net').trim();
    n.ifNameToIndex(NS, 'lo');
    expect(() => n.ifNameToIndex(NS, 'nope0')).toThrow(XlbNativeError);
    // The addon ran on this (main) thread; compare its netns with the process's.
    expect(sh('readlink', `/proc/${process.pid}/task/${process.pid}/ns/net`).trim()).toBe(before);
    expectNativeError(() => n.ifNameToIndex(null, 'veth0'), 'ENODEV');
  });
});
