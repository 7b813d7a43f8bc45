/**
 * The per-VIP and per-backend counters on the kernel (bpf/lib/stats.h): one
 * plain array per kind, a row of ids per possible CPU. BPF_PROG_TEST_RUN runs
 * the program on the calling thread's CPU, so the test pins itself to each CPU
 * in turn (sched_setaffinity through taskset), sends a different number of
 * packets on each, and checks every CPU's row and the control plane's sums.
 * Flows count in their backend's row only; a VIP's totals are its row (drops,
 * rejects) plus its backends' rows (Dataplane.vipTotals).
 */
import { execFileSync } from 'node:child_process';
import { readlinkSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Dataplane, FlowLogBusyError, type StatsKind } from '../src/dataplane.js';
import { compile, type Compiled } from '../src/compile.js';
import { validateConfig } from '../src/config.js';
import { applyCompiled } from '../src/writer.js';
import { ctPending, decodeCt4Val, decodeCt6Val, decodeStatsPercpu, encodeCt4Key, encodeCt4Val, encodeCt6Key, encodeCt6Val, encodeU32, LAYOUT, XLB, type Ct4Key, type Ct4Val, type Stats } from '../src/layout.js';
import { DEFAULT_CT_TIMEOUTS, gcConntrack, gcConntrack6, monotonicNs } from '../src/conntrack.js';
import { parseIPv4, parseIPv6 } from '../src/addr.js';
import { buildPacket, buildPacket6, parsePacket, TCP_FLAGS } from './helpers/packet.js';
import { closeAndUnpin } from './helpers/bpf.js';
import { idleStamp } from './helpers/ct.js';

const PIN_ROOT = `/sys/fs/bpf/xlb-fl-stats-${process.pid}`;
const IFINDEX = 1; // lo: only a key in xlb_ifaces here
const XDP_PASS = 2;
const XDP_DROP = 1;
/** Row lengths smaller than the defaults: the rows follow the map sizes. */
const SIZES = { vips: 48, backends: 200 };
const VIP = '10.0.9.1';
const EMPTY_VIP = '10.0.9.2';
const REJECT_VIP = '10.0.9.3';
const VIP6 = 'fd00:9::1';
const config = {
  load_balancers: [
    { name: 'web', protocol: 'tcp', vips: { [`${VIP}:80`]: '10.9.0.1:8080,10.9.0.2:8080,10.9.0.3:8080' } },
    { name: 'empty', protocol: 'tcp', vips: { [`${EMPTY_VIP}:80`]: '' } },
    { name: 'rej', protocol: 'tcp', vips: { [`${REJECT_VIP}:80`]: '' }, options: { reject: 'true' } },
    { name: 'web6', protocol: 'tcp', vips: { [`[${VIP6}]:80`]: '[fd00:9:1::1]:8080,[fd00:9:1::2]:8080' } },
  ],
  logical_switches: [{ name: 'sw', ports: ['lo'], load_balancer: ['web', 'empty', 'rej', 'web6'] }],
};

let dp: Dataplane;
let c: Compiled;
/** The CPUs this test can run on (each gets its own row). */
const cpus = Array.from({ length: availableParallelism() }, (_, i) => i);
const tid = readlinkSync('/proc/thread-self').split('/').pop()!;
let mask = '';

/** Runs fn with this thread pinned to `cpu` (the program runs where its caller does). */
function onCpu<T>(cpu: number, fn: () => T): T {
  execFileSync('taskset', ['-p', '-c', String(cpu), tid], { stdio: 'ignore' });
  try {
    return fn();
  } finally {
    execFileSync('taskset', ['-p', mask, tid], { stdio: 'ignore' });
  }
}

function xdp(data: Buffer): number {
  return dp.native.progTestRun(dp.progs.xlb_xdp_ingress, { data, ifindex: IFINDEX, repeat: 1 }).retval;
}

/** CPU `cpu`'s counters of `id` (its own row), read from the map as the kernel holds them. */
function row(kind: StatsKind, cpu: number, id: number): Stats {
  const r = dp.statsRows(kind);
  const v = dp.native.mapLookup(r.fd, encodeU32(cpu * r.ids + id), LAYOUT.xlb_stats.size);
  if (!v) throw new Error(`no element ${cpu * r.ids + id} in the ${kind} counters`);
  return decodeStatsPercpu(v, 1);
}

const vipOf = (addr: string): Compiled['vips'][number] => c.vips.find((v) => v.vip.startsWith(`${addr}:`))!;

/** CPU `cpu`'s ring of the flow log (bpf/lib/stats.h), as the kernel holds it. */
function ring(cpu: number): { head: bigint; tail: bigint; lock: bigint; ent: bigint[] } {
  const v = dp.native.mapLookup(dp.maps.xlb_flow_log, encodeU32(cpu), LAYOUT.xlb_flow_log.size);
  if (!v) throw new Error(`no ring for CPU ${cpu}`);
  const o = LAYOUT.xlb_flow_log.offsets;
  const ent = Array.from({ length: XLB.FLOW_LOG_SLOTS }, (_, i) => v.readBigUInt64LE(o.ent + 8 * i));
  return { head: v.readBigUInt64LE(o.head), tail: v.readBigUInt64LE(o.tail), lock: v.readBigUInt64LE(o.lock), ent };
}

/** Writes the lock word of CPU `cpu`'s ring (the rest as it is). */
function setLock(cpu: number, lock: bigint): void {
  const v = dp.native.mapLookup(dp.maps.xlb_flow_log, encodeU32(cpu), LAYOUT.xlb_flow_log.size)!;
  v.writeBigUInt64LE(lock, LAYOUT.xlb_flow_log.offsets.lock);
  dp.native.mapUpdate(dp.maps.xlb_flow_log, encodeU32(cpu), v);
}

beforeAll(() => {
  mask = execFileSync('taskset', ['-p', tid], { encoding: 'utf8' }).trim().split(' ').pop()!;
  Dataplane.removePins(PIN_ROOT);
  dp = Dataplane.open({ pinRoot: PIN_ROOT, mapSizes: SIZES });
  c = compile(validateConfig(config));
  applyCompiled(dp.store(), c, new Map([['lo', IFINDEX]]));
});

afterAll(() => closeAndUnpin(dp, PIN_ROOT));

describe('counters: a row per CPU', () => {
  it('each kind is a plain array of possible CPUs × ids, the rows as long as the id space', () => {
    const n = dp.native.numPossibleCpus();
    expect(n).toBeGreaterThanOrEqual(cpus.length);
    for (const [kind, ids] of [['vip', SIZES.vips], ['backend', SIZES.backends]] as const) {
      const r = dp.statsRows(kind);
      expect(r).toMatchObject({ ids, cpus: n });
      const info = dp.native.mapInfo(r.fd);
      expect(info.type).toBe(dp.native.constants.BPF_MAP_TYPE_ARRAY);
      expect(info.maxEntries).toBe(n * ids);
      expect(info.valueSize).toBe(LAYOUT.xlb_stats.size);
    }
  });

  it('each CPU logs its flows’ packets in its own ring of the flow log; the control plane folds every ring and sums the rows', () => {
    const web = vipOf(VIP);
    const backendIds = web.backends.map((b) => b.id);
    const rows0 = cpus.map((cpu) => backendIds.map((id) => row('backend', cpu, id)));
    const heads0 = cpus.map((cpu) => ring(cpu).head);
    let bytes = 0;
    let flows = 0;
    for (const cpu of cpus) {
      // cpu + 1 new flows on this CPU, each followed by one packet of the new-flow tier
      onCpu(cpu, () => {
        for (let i = 0; i <= cpu; i++) {
          const sport = 20000 + 100 * cpu + i;
          const syn = buildPacket({ src: '192.168.9.1', dst: VIP, proto: 'tcp', sport, dport: 80 });
          const ack = buildPacket({ src: '192.168.9.1', dst: VIP, proto: 'tcp', sport, dport: 80, tcpFlags: TCP_FLAGS.ack });
          expect(xdp(syn)).toBe(XDP_PASS);
          expect(xdp(ack)).toBe(XDP_PASS);
          bytes += syn.length + ack.length;
          flows++;
        }
      });
    }
    for (const cpu of cpus) {
      // in this CPU's ring, not yet in any row; the VIP's row is not touched by its flows
      expect(ring(cpu).head - heads0[cpu]!).toBe(BigInt(2 * (cpu + 1)));
      expect(row('vip', cpu, web.id)).toMatchObject({ newConns: 0n, packets: 0n, bytes: 0n });
      expect(backendIds.map((id) => row('backend', cpu, id))).toEqual(rows0[cpu]);
    }
    const sum = dp.vipTotals([{ id: web.id, backendIds }]).get(web.id)!;
    expect(sum).toMatchObject({ newConns: BigInt(flows), packets: BigInt(2 * flows), bytes: BigInt(bytes), drops: 0n });
    // Every ring folded (into the folding CPU's rows), its slots free again.
    for (const cpu of cpus) {
      const r = ring(cpu);
      expect(r.tail).toBe(r.head);
      expect(r.lock).toBe(0n);
      expect(r.ent.every((e) => e === 0n)).toBe(true);
    }
    const beSum = backendIds.map((id) => dp.backendStats(id));
    expect(beSum.reduce((s, x) => s + x.newConns, 0n)).toBe(BigInt(flows));
    expect(beSum.reduce((s, x) => s + x.bytes, 0n)).toBe(BigInt(bytes));
  });

  it('a full ring is folded at once by its CPU into its own rows; while another holds its lock, packets count straight into the rows and the control plane’s fold waits, then gives up', () => {
    const web = vipOf(VIP);
    const backendIds = web.backends.map((b) => b.id);
    const cpu = cpus[cpus.length - 1]!;
    const total = (): bigint => backendIds.reduce((s, id) => s + dp.backendStats(id).newConns, 0n);
    const total0 = total(); // (folds every ring first)
    const newConns = (): bigint => backendIds.reduce((s, id) => s + row('backend', cpu, id).newConns, 0n);
    const syn = (i: number): number => xdp(buildPacket({ src: '192.168.9.7', dst: VIP, proto: 'tcp', sport: 40000 + i, dport: 80 }));
    const held = (): bigint => ring(cpu).head - ring(cpu).tail;
    onCpu(cpu, () => {
      const n0 = newConns();
      // Full: all in the ring, nothing in the rows yet.
      for (let i = 0; i < XLB.FLOW_LOG_SLOTS; i++) expect(syn(i)).toBe(XDP_PASS);
      expect(held()).toBe(BigInt(XLB.FLOW_LOG_SLOTS));
      expect(newConns()).toBe(n0);
      // The next packet finds it full: the whole ring goes to this CPU's rows, the packet to the ring.
      expect(syn(XLB.FLOW_LOG_SLOTS)).toBe(XDP_PASS);
      expect(held()).toBe(1n);
      expect(newConns() - n0).toBe(BigInt(XLB.FLOW_LOG_SLOTS));
      // Another holds the lock (a fold in progress): the ring fills, and the packets it has no room
      // for count straight into the row, none lost.
      setLock(cpu, 1n);
      try {
        for (let i = 0; i < XLB.FLOW_LOG_SLOTS + 5; i++) expect(syn(1000 + i)).toBe(XDP_PASS);
        expect(held()).toBe(BigInt(XLB.FLOW_LOG_SLOTS));
        expect(newConns() - n0).toBe(BigInt(XLB.FLOW_LOG_SLOTS + 6));
        // The control plane's fold waits for a held ring (its rows are about to be read, moved or
        // zeroed), run after run, then says so.
        expect(() => dp.flowLogFold()).toThrow(FlowLogBusyError);
        expect(held()).toBe(BigInt(XLB.FLOW_LOG_SLOTS));
        // A read of the counters does not fail on it: it shows the rows without the held ring.
        expect(total() - total0).toBe(BigInt(XLB.FLOW_LOG_SLOTS + 6));
        expect(held()).toBe(BigInt(XLB.FLOW_LOG_SLOTS));
      } finally {
        setLock(cpu, 0n);
      }
      expect(dp.flowLogFold()).toBe(XLB.FLOW_LOG_SLOTS);
      expect(held()).toBe(0n);
    });
    expect(total() - total0).toBe(BigInt(2 * XLB.FLOW_LOG_SLOTS + 6));
  });

  it('IPv6 flows count in the same rows (one id space), through the same rings', () => {
    const web6 = vipOf(`[${VIP6}]`);
    const heads0 = cpus.map((cpu) => ring(cpu).head);
    let flows = 0;
    for (const cpu of cpus) {
      onCpu(cpu, () => {
        for (let i = 0; i <= cpu; i++) {
          const sport = 23000 + 100 * cpu + i;
          expect(xdp(buildPacket6({ src: 'fd00:9:2::1', dst: VIP6, proto: 'tcp', sport, dport: 80 }))).toBe(XDP_PASS);
          expect(xdp(buildPacket6({ src: 'fd00:9:2::1', dst: VIP6, proto: 'tcp', sport, dport: 80, tcpFlags: TCP_FLAGS.ack }))).toBe(XDP_PASS);
          flows++;
        }
      });
    }
    for (const cpu of cpus) {
      expect(row('vip', cpu, web6.id)).toMatchObject({ newConns: 0n, packets: 0n });
      expect(ring(cpu).head - heads0[cpu]!).toBe(BigInt(2 * (cpu + 1)));
    }
    expect(dp.vipTotals([{ id: web6.id, backendIds: web6.backends.map((b) => b.id) }]).get(web6.id)).toMatchObject({
      newConns: BigInt(flows),
      packets: BigInt(2 * flows),
    });
  });

  it('a VIP without backends counts its drops and rejects per CPU', () => {
    const empty = vipOf(EMPTY_VIP);
    const rej = vipOf(REJECT_VIP);
    for (const cpu of cpus) {
      onCpu(cpu, () => {
        for (let i = 0; i <= cpu; i++) {
          expect(xdp(buildPacket({ src: '192.168.9.2', dst: EMPTY_VIP, proto: 'tcp', sport: 21000 + i, dport: 80 }))).toBe(XDP_DROP);
          // a reject is answered by the tc companion program: XDP passes it up to tc
          expect(xdp(buildPacket({ src: '192.168.9.2', dst: REJECT_VIP, proto: 'tcp', sport: 21000 + i, dport: 80 }))).toBe(XDP_PASS);
        }
      });
    }
    const total = BigInt(cpus.reduce((s, cpu) => s + cpu + 1, 0));
    for (const cpu of cpus) {
      expect(row('vip', cpu, empty.id).drops).toBe(BigInt(cpu + 1));
      expect(row('vip', cpu, rej.id).rejects).toBe(BigInt(cpu + 1));
    }
    expect(dp.vipStats(empty.id).drops).toBe(total);
    expect(dp.vipStats(rej.id).rejects).toBe(total);
  });

  it('an id past the row is not counted (its element is another CPU’s)', () => {
    const ids = dp.statsRows('vip').ids;
    const bids = dp.statsRows('backend').ids;
    // A conntrack entry naming ids one past each row: element cpu*ids + ids is CPU cpu+1's id 0.
    const key = encodeCt4Key({ saddr: parseIPv4('192.168.9.3'), daddr: parseIPv4(VIP), sport: 22000, dport: 80, proto: 6 });
    const val = encodeCt4Val({
      natAddr: parseIPv4('10.9.0.1'),
      natPort: 8080,
      dir: XLB.DIR_FWD,
      state: XLB.CT_EST,
      vipId: ids,
      backendId: bids,
      lastSeenNs: 0n,
    });
    dp.native.mapUpdate(dp.maps.xlb_ct4, key, val, 0);
    // Every counter of every id in range, in every CPU's row (summed): none may move.
    const all = (kind: StatsKind, n: number): Map<number, Stats> => dp.statsOf(kind, Array.from({ length: n }, (_, i) => i));
    const before = { vip: all('vip', ids), backend: all('backend', bids) };
    for (const cpu of cpus) {
      onCpu(cpu, () => {
        const out = parsePacket(dp.native.progTestRun(dp.progs.xlb_xdp_ingress, {
          data: buildPacket({ src: '192.168.9.3', dst: VIP, proto: 'tcp', sport: 22000, dport: 80, tcpFlags: TCP_FLAGS.ack }),
          ifindex: IFINDEX,
        }).data);
        expect(out.dst).toBe('10.9.0.1'); // rewritten as the entry says
      });
    }
    for (const cpu of cpus) {
      expect(row('vip', cpu, XLB.BACKEND_NONE)).toMatchObject({ packets: 0n, bytes: 0n });
      expect(row('backend', cpu, XLB.BACKEND_NONE)).toMatchObject({ packets: 0n, bytes: 0n });
    }
    expect(all('vip', ids)).toEqual(before.vip);
    expect(all('backend', bids)).toEqual(before.backend);
    dp.native.mapDelete(dp.maps.xlb_ct4, key);
  });

  it('a reset zeroes an id in every CPU’s row', () => {
    const web = vipOf(VIP);
    expect(web.backends.reduce((n, b) => n + dp.backendStats(b.id).packets, 0n)).toBeGreaterThan(0n);
    dp.store().resetStats('vip', [web.id]);
    dp.store().resetStats('backend', web.backends.map((b) => b.id));
    for (const cpu of cpus) {
      expect(row('vip', cpu, web.id)).toMatchObject({ packets: 0n, newConns: 0n, bytes: 0n });
      for (const b of web.backends) expect(row('backend', cpu, b.id)).toMatchObject({ packets: 0n, newConns: 0n });
    }
    // the other VIPs' rows are untouched
    expect(dp.vipStats(vipOf(EMPTY_VIP).id).drops).toBeGreaterThan(0n);
  });
});

describe('established flows count in their conntrack entry (bpf/lib/stats.h)', () => {
  const CLIENT = '192.168.9.5';
  type Flow = Pick<Stats, 'packets' | 'bytes' | 'replyPackets' | 'replyBytes'>;
  /** A backend's counters summed over every CPU's row as the kernel holds them (no fold first). */
  const rows = (id: number): Flow => {
    const t = { packets: 0n, bytes: 0n, replyPackets: 0n, replyBytes: 0n };
    for (const cpu of cpus) {
      const r = row('backend', cpu, id);
      t.packets += r.packets;
      t.bytes += r.bytes;
      t.replyPackets += r.replyPackets;
      t.replyBytes += r.replyBytes;
    }
    return t;
  };
  const flowOf = (s: Stats): Flow => ({ packets: s.packets, bytes: s.bytes, replyPackets: s.replyPackets, replyBytes: s.replyBytes });
  const entry = (k: Ct4Key): Ct4Val => decodeCt4Val(dp.native.mapLookup(dp.maps.xlb_ct4, encodeCt4Key(k), LAYOUT.xlb_ct4_val.size)!);
  const put = (k: Ct4Key, v: Ct4Val): void => dp.native.mapUpdate(dp.maps.xlb_ct4, encodeCt4Key(k), encodeCt4Val(v), 0);
  /** An established flow of CLIENT:sport to the VIP's first backend, both entries written by hand. */
  function established(sport: number): { fwd: Ct4Key; rev: Ct4Key; backendId: number } {
    const web = vipOf(VIP);
    const b = web.backends[0]!;
    const [addr, port] = [parseIPv4('10.9.0.1'), 8080];
    // Seen a little before now: the data plane's clock is the start of the current jiffy.
    const common = { state: XLB.CT_EST, vipId: web.id, backendId: b.id, lastSeenNs: monotonicNs() - 50_000_000n };
    const fwd = { saddr: parseIPv4(CLIENT), daddr: parseIPv4(VIP), sport, dport: 80, proto: 6 };
    const rev = { saddr: addr, daddr: parseIPv4(CLIENT), sport: port, dport: sport, proto: 6 };
    put(fwd, { ...common, natAddr: addr, natPort: port, dir: XLB.DIR_FWD });
    put(rev, { ...common, natAddr: parseIPv4(VIP), natPort: 80, dir: XLB.DIR_REV });
    return { fwd, rev, backendId: b.id };
  }
  const ack = (sport: number, len = 0): Buffer =>
    buildPacket({ src: CLIENT, dst: VIP, proto: 'tcp', sport, dport: 80, tcpFlags: TCP_FLAGS.ack, payload: Buffer.alloc(len) });
  const reply = (sport: number): Buffer =>
    buildPacket({ src: '10.9.0.1', dst: CLIENT, proto: 'tcp', sport: 8080, dport: sport, tcpFlags: TCP_FLAGS.ack });

  it('a packet waits in its entry; the control plane’s read folds it into the row once', () => {
    const f = established(26000);
    const before = rows(f.backendId);
    const sizes = [0, 100, 200, 300, 400].map((n) => ack(26000, n));
    for (const p of sizes) expect(parsePacket(dp.native.progTestRun(dp.progs.xlb_xdp_ingress, { data: p, ifindex: IFINDEX }).data).dst).toBe('10.9.0.1');
    const bytes = BigInt(sizes.reduce((n, p) => n + p.length, 0));
    const r = reply(26000);
    expect(parsePacket(dp.native.progTestRun(dp.progs.xlb_xdp_ingress, { data: r, ifindex: IFINDEX }).data).src).toBe(VIP);
    // Not in any row yet: in the entries, each in its direction's.
    expect(rows(f.backendId)).toEqual(before);
    expect(ctPending(entry(f.fwd).pend!)).toEqual({ packets: 5n, bytes });
    expect(ctPending(entry(f.rev).pend!)).toEqual({ packets: 1n, bytes: BigInt(r.length) });
    // The read (statsOf) folds first: exact, and the entries are emptied.
    const want = { packets: before.packets + 5n, bytes: before.bytes + bytes, replyPackets: before.replyPackets + 1n, replyBytes: before.replyBytes + BigInt(r.length) };
    expect(flowOf(dp.backendStats(f.backendId))).toEqual(want);
    expect(rows(f.backendId)).toEqual(want);
    expect(entry(f.fwd).pend).toBe(0n);
    expect(entry(f.rev).pend).toBe(0n);
    // Nothing counted twice: a second read finds nothing to fold.
    expect(dp.ctFold()).toBe(0);
    expect(flowOf(dp.backendStats(f.backendId))).toEqual(want);
  });

  it('IPv6: a packet waits in its established entry until the read folds it', () => {
    const web6 = vipOf(`[${VIP6}]`);
    const b = web6.backends[0]!;
    const backendAddr = parseIPv6('fd00:9:1::1');
    const key = encodeCt6Key({ saddr: parseIPv6('fd00:9:2::5'), daddr: parseIPv6(VIP6), sport: 26100, dport: 80, proto: 6 });
    const val = { natAddr: backendAddr, natPort: 8080, dir: XLB.DIR_FWD, state: XLB.CT_EST, vipId: web6.id, backendId: b.id, lastSeenNs: monotonicNs() - 50_000_000n };
    dp.native.mapUpdate(dp.maps.xlb_ct6, key, encodeCt6Val(val), 0);
    const before = rows(b.id);
    const p = buildPacket6({ src: 'fd00:9:2::5', dst: VIP6, proto: 'tcp', sport: 26100, dport: 80, tcpFlags: TCP_FLAGS.ack });
    for (let i = 0; i < 4; i++) expect(xdp(p)).toBe(XDP_PASS);
    expect(rows(b.id)).toEqual(before);
    const pend = () => decodeCt6Val(dp.native.mapLookup(dp.maps.xlb_ct6, key, LAYOUT.xlb_ct6_val.size)!).pend!;
    expect(ctPending(pend())).toEqual({ packets: 4n, bytes: 4n * BigInt(p.length) });
    expect(dp.backendStats(b.id).packets - before.packets).toBe(4n);
    expect(pend()).toBe(0n);
    dp.native.mapDelete(dp.maps.xlb_ct6, key);
  });

  it('IPv6: garbage collection folds an idle established flow’s last counts before it removes the flow', () => {
    const web6 = vipOf(`[${VIP6}]`);
    const b = web6.backends[0]!;
    const key = encodeCt6Key({ saddr: parseIPv6('fd00:9:2::6'), daddr: parseIPv6(VIP6), sport: 26101, dport: 80, proto: 6 });
    const val = { natAddr: parseIPv6('fd00:9:1::1'), natPort: 8080, dir: XLB.DIR_FWD, state: XLB.CT_EST, vipId: web6.id, backendId: b.id };
    // Counts waiting in the entry, which has been idle for longer than an established flow's timeout.
    const pend = (2n << BigInt(XLB.CT_PEND_PKT_SHIFT)) | 500n;
    const idle = idleStamp(60, 30);
    dp.native.mapUpdate(dp.maps.xlb_ct6, key, encodeCt6Val({ ...val, lastSeenNs: idle.stampNs, pend }), 0);
    const before = rows(b.id);
    const gc = gcConntrack6(dp, { ...DEFAULT_CT_TIMEOUTS, tcpEstablished: idle.timeoutS });
    expect(gc.removed).toBeGreaterThanOrEqual(1);
    expect(dp.native.mapLookup(dp.maps.xlb_ct6, key, LAYOUT.xlb_ct6_val.size)).toBeNull();
    expect(rows(b.id).packets - before.packets).toBe(2n);
    expect(rows(b.id).bytes - before.bytes).toBe(500n);
  });

  it('a refresh of the entry’s clock moves its counts and the packet to this CPU’s row', () => {
    const f = established(26001);
    for (let i = 0; i < 3; i++) xdp(ack(26001));
    const before = rows(f.backendId);
    const v = entry(f.fwd);
    expect(ctPending(v.pend!).packets).toBe(3n);
    put(f.fwd, { ...v, lastSeenNs: v.lastSeenNs - 2_000_000_000n }); // older than the refresh period, counts kept
    const p = ack(26001);
    xdp(p);
    const after = rows(f.backendId);
    expect(after.packets - before.packets).toBe(4n);
    expect(after.bytes - before.bytes).toBe(4n * BigInt(p.length));
    expect(entry(f.fwd).pend).toBe(0n);
    expect(entry(f.fwd).lastSeenNs).toBeGreaterThan(v.lastSeenNs);
  });

  it('garbage collection folds an idle flow’s last counts before it removes the flow', () => {
    const f = established(26002);
    for (let i = 0; i < 2; i++) xdp(ack(26002));
    const before = rows(f.backendId);
    // idle for longer than an established flow's timeout (counts kept)
    const idle = idleStamp(60, 30);
    for (const k of [f.fwd, f.rev]) put(k, { ...entry(k), lastSeenNs: idle.stampNs });
    const gc = gcConntrack(dp, { ...DEFAULT_CT_TIMEOUTS, tcpEstablished: idle.timeoutS });
    expect(gc.removed).toBeGreaterThanOrEqual(2);
    expect(dp.native.mapLookup(dp.maps.xlb_ct4, encodeCt4Key(f.fwd), LAYOUT.xlb_ct4_val.size)).toBeNull();
    expect(rows(f.backendId).packets - before.packets).toBe(2n);
  });
});
