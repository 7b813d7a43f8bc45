/**
 * The IPv4 address filter (bpf/lib/addrfilter.h, src/addrfilter.ts), on the
 * kernel: an Xlb instance serving a veth of this test, packets through
 * BPF_PROG_TEST_RUN. A packet whose two addresses both miss the filter is
 * passed untouched with no other lookup (counted addr_skip); the control
 * plane's hash is the data plane's; an apply marks its addresses before it
 * writes anything; Xlb.gc rebuilds the filter from the configuration and the
 * live flows, keeping a removed backend's address while a flow to it lives.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Xlb } from '../src/xlb.js';
import type { Dataplane } from '../src/dataplane.js';
import { MemoryStore } from '../src/store.js';
import { applyCompiled } from '../src/writer.js';
import { compile } from '../src/compile.js';
import { validateConfig } from '../src/config.js';
import { addrKey4, addrKey6, configAddrs, keyBit, mayHoldKey } from '../src/addrfilter.js';
import { formatIPv4, formatIPv6, parseIPv4, parseIPv6 } from '../src/addr.js';
import { buildPacket, buildPacket6, TCP_FLAGS } from './helpers/packet.js';
import { vethInstance, type VethInstance } from './helpers/veth-instance.js';

const XDP_PASS = 2;
/** Whether the filter may hold an IPv4 address (host order). */
const mayHold = (words: Uint32Array, addr: number): boolean => mayHoldKey(words, addrKey4(addr));
const VIP = '10.0.61.1';
const CLIENT = '192.168.61.7';
const BACKENDS = ['10.61.0.1:8080', '10.61.0.2:8080', '10.61.0.3:8080'];

/** The instance's veth (beforeAll). */
let LINK = '';

const VIP6 = 'fd00:61::1';
const CLIENT6 = 'fd00:61:9::7';
const BACKENDS6 = ['[fd00:61:1::1]:8080', '[fd00:61:1::2]:8080'];

function config(backends: string[]): object {
  return {
    load_balancers: [
      { name: 'web', protocol: 'tcp', vips: { [`${VIP}:80`]: backends.join(',') } },
      { name: 'web6', protocol: 'tcp', vips: { [`[${VIP6}]:80`]: BACKENDS6.join(',') } },
    ],
    logical_switches: [{ name: 'sw', ports: [LINK], load_balancer: ['web', 'web6'] }],
  };
}

let env: VethInstance;
let x: Xlb;
let ifindex = 0;

function xdp(data: Buffer): { retval: number; out: Buffer } {
  const r = x.dataplane.native.progTestRun(x.dataplane.progs.xlb_xdp_ingress, { data, ifindex, repeat: 1 });
  return { retval: r.retval, out: r.data };
}
function tcEgress(data: Buffer): Buffer {
  return x.dataplane.native.progTestRun(x.dataplane.progs.xlb_tc_egress, { data, ifindex, repeat: 1 }).data;
}
const counters = (): ReturnType<Dataplane['globalCounters']> => x.dataplane.globalCounters();
const srcOf = (f: Buffer): string => `${f[26]}.${f[27]}.${f[28]}.${f[29]}`;
const dstOf = (f: Buffer): string => `${f[30]}.${f[31]}.${f[32]}.${f[33]}`;

/** A flow from CLIENT:sport through the VIP, confirmed by its backend's ACK; returns the backend. */
function openFlow(sport: number): string {
  const r = xdp(buildPacket({ src: CLIENT, dst: VIP, proto: 'tcp', sport, dport: 80 }));
  expect(r.retval).toBe(XDP_PASS);
  const backend = dstOf(r.out);
  tcEgress(buildPacket({ src: backend, dst: CLIENT, proto: 'tcp', sport: 8080, dport: sport, tcpFlags: TCP_FLAGS.ack }));
  return backend;
}

beforeAll(() => {
  env = vethInstance('xlbaf');
  ({ link: LINK, ifindex } = env);
  x = Xlb.open(env.instance);
  x.apply(config(BACKENDS));
});

afterAll(() => env?.remove(x));

describe('the IPv4 address filter', () => {
  it('passes a packet between two addresses no VIP, backend or flow has, untouched and with no lookup', () => {
    const pkt = buildPacket({ src: '172.30.1.1', dst: '172.30.2.2', proto: 'tcp', sport: 5000, dport: 80, tcpFlags: TCP_FLAGS.ack });
    const words = x.dataplane.addrFilter();
    expect(mayHold(words, parseIPv4('172.30.1.1')) || mayHold(words, parseIPv4('172.30.2.2'))).toBe(false);
    const before = counters();
    const r = xdp(pkt);
    const after = counters();
    expect(r.retval).toBe(XDP_PASS);
    expect(r.out.equals(pkt)).toBe(true);
    expect(after.addr_skip - before.addr_skip).toBe(1n);
    expect(after.ct_hit - before.ct_hit).toBe(0n);
    expect(after.ct_skip - before.ct_skip).toBe(0n);
  });

  it('lets the VIP, its backends and their replies through to the balancer', () => {
    const before = counters();
    const backend = openFlow(41000);
    expect(BACKENDS.some((b) => b.startsWith(`${backend}:`))).toBe(true);
    // the reply (backend -> client: the client is in no filter) is un-NATed
    const reply = tcEgress(buildPacket({ src: backend, dst: CLIENT, proto: 'tcp', sport: 8080, dport: 41000, tcpFlags: TCP_FLAGS.ack }));
    expect(srcOf(reply)).toBe(VIP);
    const after = counters();
    expect(after.addr_skip - before.addr_skip).toBe(0n);
    expect(after.new_flow - before.new_flow).toBe(1n);
    expect(mayHold(x.dataplane.addrFilter(), parseIPv4(CLIENT))).toBe(false); // (not a false positive)
  });

  it("the control plane's hash is the data plane's: the kernel skips exactly the pairs the filter words say it may", () => {
    const words = x.dataplane.addrFilter();
    // Random addresses: about half get their own bit marked, so both outcomes occur.
    let seed = 12345;
    const rnd = (): number => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0);
    const marked: number[] = [];
    const pairs: Array<[number, number]> = [];
    for (let i = 0; i < 200; i++) {
      const a = (0xac100000 + (rnd() & 0xfffff)) >>> 0; // 172.16.0.0/12
      const b = (0xac100000 + (rnd() & 0xfffff)) >>> 0;
      if (i % 4 === 0) marked.push(a);
      pairs.push([a, b]);
    }
    x.dataplane.addrFilterMark(marked.map(addrKey4));
    const now = x.dataplane.addrFilter();
    for (const a of marked) expect(mayHold(now, a)).toBe(true);
    let skipped = 0;
    for (const [a, b] of pairs) {
      const expectSkip = !mayHold(now, a) && !mayHold(now, b);
      const before = counters().addr_skip;
      xdp(buildPacket({ src: formatIPv4(a), dst: formatIPv4(b), proto: 'udp', sport: 5000, dport: 53 }));
      expect(counters().addr_skip - before, `${formatIPv4(a)} -> ${formatIPv4(b)}`).toBe(expectSkip ? 1n : 0n);
      if (expectSkip) skipped++;
    }
    expect(skipped).toBeGreaterThan(20);
    expect(skipped).toBeLessThan(200 - 20);
    // marking never clears: every word is a superset of before
    for (let i = 0; i < words.length; i++) expect((now[i]! & words[i]!) >>> 0).toBe(words[i]);
  });

  it("gc keeps a removed backend's address while a flow to it lives, and drops it after", () => {
    // Clear the marks of the test above first: a rebuild holds the configuration's and the flows' addresses only.
    x.gc({ tcpEstablished: 3600, tcpSyn: 3600, tcpClosing: 3600, udp: 3600, sctp: 3600, other: 3600 });
    const cfg = new Set([...configAddrs(compile(validateConfig(config(BACKENDS))))]); // (address keys)
    const backend = openFlow(42000);
    const b = parseIPv4(backend);
    // The test is only meaningful when no other address shares the backend's bit.
    const bitOf = (key: number): string => JSON.stringify(keyBit(key));
    for (const k of [...cfg].filter((k) => k !== addrKey4(b))) expect(bitOf(k)).not.toBe(bitOf(addrKey4(b)));
    expect(bitOf(addrKey4(parseIPv4(CLIENT)))).not.toBe(bitOf(addrKey4(b)));

    x.apply(config(BACKENDS.filter((t) => !t.startsWith(`${backend}:`))));
    x.reclaim();
    x.gc({ tcpEstablished: 3600 });
    expect(mayHold(x.dataplane.addrFilter(), b)).toBe(true);
    // the flow's reply is still un-NATed
    const reply = tcEgress(buildPacket({ src: backend, dst: CLIENT, proto: 'tcp', sport: 8080, dport: 42000, tcpFlags: TCP_FLAGS.ack }));
    expect(srcOf(reply)).toBe(VIP);

    // Every flow idle past a zero timeout: gone. Their addresses stay one collection more (a flow
    // that sends while it is removed may outlive its removal), then the backend's bit goes.
    const idle = { tcpEstablished: 0, tcpSyn: 0, tcpClosing: 0, udp: 0, sctp: 0, other: 0 };
    expect(x.gc(idle).removed).toBeGreaterThan(0);
    expect(mayHold(x.dataplane.addrFilter(), b)).toBe(true);
    expect(x.gc(idle).removed).toBe(0);
    const words = x.dataplane.addrFilter();
    expect(mayHold(words, b)).toBe(false);
    expect(mayHold(words, parseIPv4(VIP))).toBe(true);
    const before = counters().addr_skip;
    tcEgress(buildPacket({ src: backend, dst: CLIENT, proto: 'tcp', sport: 8080, dport: 42000, tcpFlags: TCP_FLAGS.ack }));
    expect(counters().addr_skip - before).toBe(1n);
    x.apply(config(BACKENDS));
  });
});

describe('the address filter, IPv6 (an address folded to one key)', () => {
  const src6 = (f: Buffer): string => formatIPv6(f.subarray(14 + 8, 14 + 24));
  const dst6 = (f: Buffer): string => formatIPv6(f.subarray(14 + 24, 14 + 40));

  it('passes a packet between two unknown addresses untouched, balances the VIP and un-NATs its reply', () => {
    const other = buildPacket6({ src: 'fd00:99::1', dst: 'fd00:99::2', proto: 'udp', sport: 5000, dport: 53 });
    const words = x.dataplane.addrFilter();
    expect(mayHoldKey(words, addrKey6(parseIPv6('fd00:99::1'))) || mayHoldKey(words, addrKey6(parseIPv6('fd00:99::2')))).toBe(false);
    let before = counters();
    const r = xdp(other);
    expect(r.retval).toBe(XDP_PASS);
    expect(r.out.equals(other)).toBe(true);
    expect(counters().addr_skip - before.addr_skip).toBe(1n);

    before = counters();
    const syn = xdp(buildPacket6({ src: CLIENT6, dst: VIP6, proto: 'tcp', sport: 44000, dport: 80 }));
    const backend = dst6(syn.out);
    expect(BACKENDS6.some((b) => b.startsWith(`[${backend}]`))).toBe(true);
    const reply = tcEgress(buildPacket6({ src: backend, dst: CLIENT6, proto: 'tcp', sport: 8080, dport: 44000, tcpFlags: TCP_FLAGS.syn | TCP_FLAGS.ack }));
    expect(src6(reply)).toBe(VIP6);
    const after = counters();
    expect(after.addr_skip - before.addr_skip).toBe(0n);
    expect(after.new_flow - before.new_flow).toBe(1n);
  });

  it("gc keeps a removed IPv6 backend's address while a flow to it lives, and drops it after", () => {
    const idle = { tcpEstablished: 0, tcpSyn: 0, tcpClosing: 0, udp: 0, sctp: 0, other: 0 };
    x.gc(idle);
    x.gc(idle); // (nothing left of the tests before)
    const syn = xdp(buildPacket6({ src: CLIENT6, dst: VIP6, proto: 'tcp', sport: 45000, dport: 80 }));
    const backend = dst6(syn.out);
    const key = addrKey6(parseIPv6(backend));
    // meaningful only when no other address of the configuration shares the backend's bit
    const bitOf = (k: number): string => JSON.stringify(keyBit(k));
    for (const k of configAddrs(compile(validateConfig(config(BACKENDS))))) if (k !== key) expect(bitOf(k)).not.toBe(bitOf(key));
    // confirmed by the backend (established tier), then the backend leaves the configuration
    tcEgress(buildPacket6({ src: backend, dst: CLIENT6, proto: 'tcp', sport: 8080, dport: 45000, tcpFlags: TCP_FLAGS.ack }));
    const left = BACKENDS6.filter((b) => !b.startsWith(`[${backend}]`));
    const cfg = config(BACKENDS) as { load_balancers: Array<{ name: string; vips: Record<string, string> }> };
    cfg.load_balancers[1]!.vips[`[${VIP6}]:80`] = left.join(',');
    x.apply(cfg);
    x.reclaim();
    x.gc({ tcpEstablished: 3600 });
    expect(mayHoldKey(x.dataplane.addrFilter(), key)).toBe(true);
    const reply = tcEgress(buildPacket6({ src: backend, dst: CLIENT6, proto: 'tcp', sport: 8080, dport: 45000, tcpFlags: TCP_FLAGS.ack }));
    expect(src6(reply)).toBe(VIP6);
    expect(x.gc(idle).removed).toBeGreaterThan(0);
    expect(mayHoldKey(x.dataplane.addrFilter(), key)).toBe(true); // one collection more
    x.gc(idle);
    expect(mayHoldKey(x.dataplane.addrFilter(), key)).toBe(false);
    expect(mayHoldKey(x.dataplane.addrFilter(), addrKey6(parseIPv6(VIP6)))).toBe(true);
    x.apply(config(BACKENDS));
  });

  it("the control plane's IPv6 key and hash are the data plane's", () => {
    let seed = 777;
    const rnd = (): number => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0);
    const addr = (): Buffer => {
      const b = parseIPv6('fd00:77::');
      for (let i = 8; i < 16; i += 4) b.writeUInt32BE(rnd(), i);
      return b;
    };
    const pairs = Array.from({ length: 120 }, () => [addr(), addr()] as const);
    x.dataplane.addrFilterMark(pairs.filter((_, i) => i % 4 === 0).map(([a]) => addrKey6(a)));
    const words = x.dataplane.addrFilter();
    let skipped = 0;
    for (const [a, b] of pairs) {
      const expectSkip = !mayHoldKey(words, addrKey6(a)) && !mayHoldKey(words, addrKey6(b));
      const before = counters().addr_skip;
      xdp(buildPacket6({ src: formatIPv6(a), dst: formatIPv6(b), proto: 'udp', sport: 5000, dport: 53 }));
      expect(counters().addr_skip - before, `${formatIPv6(a)} -> ${formatIPv6(b)}`).toBe(expectSkip ? 1n : 0n);
      if (expectSkip) skipped++;
    }
    expect(skipped).toBeGreaterThan(10);
    expect(skipped).toBeLessThan(110);
  });
});

describe('a second writer of the same instance', () => {
  it("its VIPs keep their bits through this process's next collection (its configuration is not this one's)", () => {
    const other = Xlb.open(env.instance); // as `xlb apply FILE` from another process would
    const VIP2 = '10.0.62.1';
    const cfg2 = config(BACKENDS) as { load_balancers: Array<{ vips: Record<string, string> }> };
    cfg2.load_balancers[0]!.vips[`${VIP2}:80`] = '10.62.0.1:8080';
    try {
      other.apply(cfg2);
      // (meaningful only when the new addresses share no bit with this process's configuration)
      const mine = new Set([...configAddrs(compile(validateConfig(config(BACKENDS))))].map((k) => JSON.stringify(keyBit(k))));
      for (const a of ['10.0.62.1', '10.62.0.1']) expect(mine.has(JSON.stringify(keyBit(addrKey4(parseIPv4(a))))), a).toBe(false);
      x.gc();
      const words = x.dataplane.addrFilter();
      expect(mayHold(words, parseIPv4(VIP2))).toBe(true);
      expect(mayHold(words, parseIPv4('10.62.0.1'))).toBe(true);
      const before = counters();
      const r = xdp(buildPacket({ src: CLIENT, dst: VIP2, proto: 'tcp', sport: 43000, dport: 80 }));
      expect(dstOf(r.out)).toBe('10.62.0.1');
      expect(counters().new_flow - before.new_flow).toBe(1n);
    } finally {
      other.close();
    }
    // This process's configuration again (the kernel read back: VIP2 removed); once the flow to
    // VIP2 is collected too, its addresses leave the filter.
    x.apply(config(BACKENDS));
    const idle = { tcpEstablished: 0, tcpSyn: 0, tcpClosing: 0, udp: 0, sctp: 0, other: 0 };
    x.gc(idle);
    x.gc(idle);
    const words = x.dataplane.addrFilter();
    expect(mayHold(words, parseIPv4(VIP2))).toBe(false);
    expect(mayHold(words, parseIPv4('10.62.0.1'))).toBe(false);
    expect(mayHold(words, parseIPv4(VIP))).toBe(true);
  });
});

describe('the writer marks addresses before it writes', () => {
  it('from empty: every address of the configuration, before the first write', () => {
    const store = new MemoryStore();
    const c = compile(validateConfig(config(BACKENDS)));
    applyCompiled(store, c, new Map([[LINK, 7]]));
    expect(store.addrMarks[0]!.afterWrites).toBe(0);
    expect(store.writes).toBeGreaterThan(0);
    for (const a of [VIP, ...BACKENDS.map((t) => t.split(':')[0]!)]) expect(store.addrKeys.has(addrKey4(parseIPv4(a))), a).toBe(true);
  });

  it("a change: the new backend's address, before that apply's first write", () => {
    const store = new MemoryStore();
    const desired1 = validateConfig(config(BACKENDS));
    const c1 = compile(desired1);
    applyCompiled(store, c1, new Map([[LINK, 7]]));
    const writes = store.writes;
    const c2 = compile(validateConfig(config([...BACKENDS, '10.61.0.9:8080'])), c1.ids, undefined, c1);
    applyCompiled(store, c2, new Map([[LINK, 7]]), c1.ids, { prev: c1 });
    const last = store.addrMarks[store.addrMarks.length - 1]!;
    expect(store.writes).toBeGreaterThan(writes);
    expect(last.afterWrites).toBe(writes);
    expect(last.added).toEqual([addrKey4(parseIPv4('10.61.0.9'))]);
  });
});
