/**
 * The IPv6 data plane through BPF_PROG_TEST_RUN: crafted IPv6 frames in,
 * frames out, on the tc and XDP hooks. Maps are filled by the real compile +
 * writer; checksums (with the IPv6 pseudo-header) are recomputed from scratch
 * in TypeScript, never incrementally.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { Dataplane } from '../src/dataplane.js';
import { compile } from '../src/compile.js';
import { validateConfig } from '../src/config.js';
import { decodeCt6Val, encodeCt6Key, encodeCt6Val, LAYOUT } from '../src/layout.js';
import { parseIPv6 } from '../src/addr.js';
import {
  buildIcmp6Error,
  buildIp6,
  buildPacket,
  buildPacket6,
  ETH_HLEN,
  parsePacket,
  parsePacket6,
  PROTO6,
  TCP_FLAGS,
  type Packet6Spec,
} from './helpers/packet.js';
import { closeAndUnpin, loadOnLo } from './helpers/bpf.js';

const PIN_ROOT = `/sys/fs/bpf/xlb-v6-bpf-${process.pid}`;
const IFINDEX = 1; // lo: used only as a key in xlb_ifaces
const XDP_PASS = 2;
const XDP_DROP = 1;
const TC_ACT_OK = 0;
const TC_ACT_SHOT = 2;

const CLIENT = 'fd00:c::10';
const VIP = 'fd00::1';
const BACKENDS = ['fd00:1::1', 'fd00:1::2', 'fd00:1::3'];
const config = {
  load_balancers: [
    { name: 'web6', protocol: 'tcp', vips: { [`[${VIP}]:80`]: BACKENDS.map((b) => `[${b}]:8080`).join(',') } },
    { name: 'dns6', protocol: 'udp', vips: { [`[${VIP}]:53`]: '[fd00:1::1]:5353,[fd00:1::2]:5353' } },
    { name: 'iponly6', vips: { 'fd00::2': 'fd00:1::9' } },
    { name: 'empty6', protocol: 'tcp', vips: { '[fd00::3]:80': '' } },
    {
      name: 'bysrc6',
      protocol: 'tcp',
      vips: { '[fd00::4]:80': BACKENDS.map((b) => `[${b}]:80`).join(',') },
      selection_fields: ['ip_src'],
    },
    {
      name: 'sticky6',
      protocol: 'tcp',
      vips: { '[fd00::5]:80': BACKENDS.map((b) => `[${b}]:80`).join(',') },
      options: { affinity_timeout: '60' },
    },
    { name: 'web4', protocol: 'tcp', vips: { '10.0.0.1:80': '10.1.0.1:8080,10.1.0.2:8080' } },
  ],
  logical_switches: [
    { name: 'sw', ports: ['lo'], load_balancer: ['web6', 'dns6', 'iponly6', 'empty6', 'bysrc6', 'sticky6', 'web4'] },
  ],
};

let dp: Dataplane;

type Hook = 'tc' | 'xdp' | 'egress';

function run(hook: Hook, spec: Packet6Spec | Buffer): { verdict: 'pass' | 'drop'; out: Buffer } {
  const prog = hook === 'tc' ? dp.progs.xlb_tc_ingress : hook === 'xdp' ? dp.progs.xlb_xdp_ingress : dp.progs.xlb_tc_egress;
  const data = Buffer.isBuffer(spec) ? spec : buildPacket6(spec);
  const r = dp.native.progTestRun(prog, { data, ifindex: IFINDEX, repeat: 1 });
  const pass = hook === 'xdp' ? XDP_PASS : TC_ACT_OK;
  const drop = hook === 'xdp' ? XDP_DROP : TC_ACT_SHOT;
  if (r.retval !== pass && r.retval !== drop) throw new Error(`unexpected verdict ${r.retval}`);
  return { verdict: r.retval === pass ? 'pass' : 'drop', out: r.data };
}

/** Both IPv6 conntrack tiers: the main table and the new-flow tier. */
const ctMaps = (): number[] => [dp.maps.xlb_ct6, dp.maps.xlb_ct6_new];

function clearConntrack(): void {
  const ks = LAYOUT.xlb_ct6_key.size;
  for (const map of ctMaps()) {
    const d = dp.native.mapDump(map, ks, LAYOUT.xlb_ct6_val.size);
    for (let i = 0; i < d.count; i++) dp.native.mapDelete(map, d.keys.subarray(i * ks, (i + 1) * ks));
  }
}

function ctKey(src: string, dst: string, sport: number, dport: number, proto: number): Buffer {
  return encodeCt6Key({ saddr: parseIPv6(src), daddr: parseIPv6(dst), sport, dport, proto });
}

function ctHas(k: Buffer): boolean {
  return ctMaps().some((map) => dp.native.mapLookup(map, k, LAYOUT.xlb_ct6_val.size) !== null);
}

/** The quoted packet of an ICMPv6 error frame, parsed (as a frame of its own). */
function quoted(icmpFrame: Buffer): ReturnType<typeof parsePacket6> {
  const p = parsePacket6(icmpFrame);
  const eth = Buffer.alloc(ETH_HLEN);
  eth.writeUInt16BE(0x86dd, 12);
  return parsePacket6(Buffer.concat([eth, p.l4.subarray(8)]));
}

beforeAll(() => {
  dp = loadOnLo(PIN_ROOT, config, IFINDEX);
});

afterAll(() => closeAndUnpin(dp, PIN_ROOT));

beforeEach(() => clearConntrack());

describe.each(['tc', 'xdp'] as const)('IPv6 ingress on the %s hook', (hook) => {
  it('DNATs a TCP SYN to a backend, the checksum right with the new pseudo-header', () => {
    const { verdict, out } = run(hook, { src: CLIENT, dst: VIP, proto: 'tcp', sport: 40000, dport: 80 });
    expect(verdict).toBe('pass');
    const p = parsePacket6(out);
    expect(BACKENDS).toContain(p.dst);
    expect(p.dport).toBe(8080);
    expect(p.src).toBe(CLIENT);
    expect(p.sport).toBe(40000);
    expect(p.l4CsumOk).toBe(true);
  });

  it('keeps every packet of a flow on its backend, and spreads flows over all backends', () => {
    const seen = new Set<string>();
    for (let port = 30000; port < 30060; port++) {
      const first = parsePacket6(run(hook, { src: CLIENT, dst: VIP, proto: 'tcp', sport: port, dport: 80 }).out);
      const next = parsePacket6(run(hook, { src: CLIENT, dst: VIP, proto: 'tcp', sport: port, dport: 80, tcpFlags: TCP_FLAGS.ack }).out);
      expect(next.dst).toBe(first.dst);
      seen.add(first.dst);
    }
    expect([...seen].sort()).toEqual([...BACKENDS].sort());
  });

  it('records both directions in the IPv6 conntrack table', () => {
    const p = parsePacket6(run(hook, { src: CLIENT, dst: VIP, proto: 'tcp', sport: 41000, dport: 80 }).out);
    expect(ctHas(ctKey(CLIENT, VIP, 41000, 80, PROTO6.tcp))).toBe(true);
    expect(ctHas(ctKey(p.dst, CLIENT, 8080, 41000, PROTO6.tcp))).toBe(true);
  });

  it('DNATs UDP with a port rewrite', () => {
    const p = parsePacket6(run(hook, { src: CLIENT, dst: VIP, proto: 'udp', sport: 5000, dport: 53 }).out);
    expect(['fd00:1::1', 'fd00:1::2']).toContain(p.dst);
    expect(p.dport).toBe(5353);
    expect(p.l4Csum).not.toBe(0);
    expect(p.l4CsumOk).toBe(true);
  });

  it('serves an IP-only VIP: ICMPv6 echo (its checksum has a pseudo-header) and TCP keeping the ports', () => {
    const echo = parsePacket6(run(hook, { src: CLIENT, dst: 'fd00::2', proto: 'icmp6' }).out);
    expect(echo.dst).toBe('fd00:1::9');
    expect(echo.proto).toBe(PROTO6.icmp6);
    expect(echo.l4CsumOk).toBe(true);
    const tcp = parsePacket6(run(hook, { src: CLIENT, dst: 'fd00::2', proto: 'tcp', sport: 1234, dport: 4321 }).out);
    expect(tcp.dst).toBe('fd00:1::9');
    expect(tcp.dport).toBe(4321);
    expect(tcp.l4CsumOk).toBe(true);
  });

  it('passes neighbour discovery to a VIP address untouched', () => {
    for (const type of [133, 134, 135, 136, 137]) {
      const nd = buildPacket6({ src: CLIENT, dst: 'fd00::2', proto: 'icmp6', icmpType: type, icmpRest: 0 });
      const { verdict, out } = run(hook, nd);
      expect(verdict).toBe('pass');
      expect(out.equals(nd)).toBe(true);
    }
  });

  it('follows hop-by-hop, destination options, routing (no segments left) and an atomic fragment header', () => {
    const spec: Packet6Spec = {
      src: CLIENT,
      dst: VIP,
      proto: 'tcp',
      sport: 42000,
      dport: 80,
      ext: [{ type: 'hop', len: 16 }, { type: 'dst' }, { type: 'routing', len: 24 }, { type: 'frag' }],
    };
    const pkt = buildPacket6(spec);
    const p = parsePacket6(run(hook, pkt).out);
    expect(BACKENDS).toContain(p.dst);
    expect(p.dport).toBe(8080);
    expect(p.l4CsumOk).toBe(true);
    expect(p.ext.equals(parsePacket6(pkt).ext)).toBe(true);
    expect(p.ext.length).toBe(56);
  });

  it('passes fragments untouched and counts them (the IPv4 policy)', () => {
    const before = dp.globalCounters().fragment;
    const cases = [
      buildPacket6({ src: CLIENT, dst: VIP, proto: 'tcp', sport: 42001, dport: 80, ext: [{ type: 'frag', more: true }] }),
      buildPacket6({ src: CLIENT, dst: VIP, proto: 'tcp', sport: 42001, dport: 80, ext: [{ type: 'frag', offset: 185 }] }),
      buildPacket6({ src: CLIENT, dst: VIP, proto: 'udp', sport: 42001, dport: 53, ext: [{ type: 'hop' }, { type: 'frag', offset: 1, more: true }] }),
    ];
    for (const pkt of cases) {
      const { verdict, out } = run(hook, pkt);
      expect(verdict).toBe('pass');
      expect(out.equals(pkt)).toBe(true);
    }
    expect(dp.globalCounters().fragment - before).toBe(BigInt(cases.length));
  });

  it('passes a routing header with segments left, and a chain longer than it follows', () => {
    const before = dp.globalCounters().ext_pass;
    const routed = buildPacket6({ src: CLIENT, dst: VIP, proto: 'tcp', dport: 80, ext: [{ type: 'routing', len: 24, segLeft: 1 }] });
    const long = buildPacket6({ src: CLIENT, dst: VIP, proto: 'tcp', dport: 80, ext: Array.from({ length: 7 }, () => ({ type: 'dst' as const })) });
    for (const pkt of [routed, long]) {
      const { verdict, out } = run(hook, pkt);
      expect(verdict).toBe('pass');
      expect(out.equals(pkt)).toBe(true);
    }
    expect(dp.globalCounters().ext_pass - before).toBe(2n);
  });

  it('passes malformed IPv6 untouched', () => {
    const good = buildPacket6({ src: CLIENT, dst: VIP, proto: 'tcp', dport: 80 });
    const badLen = Buffer.from(good);
    badLen.writeUInt16BE(1400, ETH_HLEN + 4); // payload length beyond the frame
    const badVersion = Buffer.from(good);
    badVersion[ETH_HLEN] = 0x40;
    const extTooLong = buildPacket6({ src: CLIENT, dst: VIP, proto: 'tcp', dport: 80, ext: [{ type: 'hop' }] });
    extTooLong[ETH_HLEN + 40 + 1] = 200; // hop-by-hop header runs past the frame
    for (const pkt of [badLen, badVersion, extTooLong, good.subarray(0, ETH_HLEN + 40 + 10)]) {
      const { verdict, out } = run(hook, pkt);
      expect(verdict).toBe('pass');
      expect(out.equals(pkt)).toBe(true);
    }
  });

  it('drops packets to a VIP without backends and counts them', () => {
    const before = dp.globalCounters().no_backend;
    expect(run(hook, { src: CLIENT, dst: 'fd00::3', proto: 'tcp', dport: 80 }).verdict).toBe('drop');
    expect(dp.globalCounters().no_backend - before).toBe(1n);
  });

  it('selection_fields ip_src: every connection of one client lands on one backend', () => {
    const perClient = new Map<string, Set<string>>();
    for (let c = 1; c <= 12; c++) {
      const src = `fd00:c::${c.toString(16)}`;
      const set = new Set<string>();
      for (let port = 50000; port < 50008; port++) {
        set.add(parsePacket6(run(hook, { src, dst: 'fd00::4', proto: 'tcp', sport: port, dport: 80 }).out).dst);
      }
      perClient.set(src, set);
    }
    for (const set of perClient.values()) expect(set.size).toBe(1);
    expect(new Set([...perClient.values()].map((s) => [...s][0])).size).toBeGreaterThan(1);
  });

  it('affinity_timeout: a client\'s new connections follow its first one', () => {
    const first = parsePacket6(run(hook, { src: 'fd00:c::77', dst: 'fd00::5', proto: 'tcp', sport: 51000, dport: 80 }).out).dst;
    for (let port = 51001; port < 51020; port++) {
      expect(parsePacket6(run(hook, { src: 'fd00:c::77', dst: 'fd00::5', proto: 'tcp', sport: port, dport: 80 }).out).dst).toBe(first);
    }
  });

  it('leaves IPv4 balancing as it was beside IPv6 VIPs', () => {
    const p = parsePacket(run(hook, buildPacket({ src: '192.168.1.10', dst: '10.0.0.1', proto: 'tcp', sport: 40000, dport: 80 })).out);
    expect(['10.1.0.1', '10.1.0.2']).toContain(p.dst);
    expect(p.ipCsumOk && p.l4CsumOk).toBe(true);
  });
});

describe('IPv6: both hooks agree', () => {
  it('a flow picks the same backend on tc and XDP (one hash)', () => {
    for (let port = 20000; port < 20030; port++) {
      const spec: Packet6Spec = { src: 'fd00:c::2', dst: VIP, proto: 'tcp', sport: port, dport: 80 };
      const a = parsePacket6(run('tc', spec).out);
      clearConntrack();
      const b = parsePacket6(run('xdp', spec).out);
      clearConntrack();
      expect(b.dst).toBe(a.dst);
    }
  });
});

describe('IPv6: XDP and CHECKSUM_PARTIAL', () => {
  it('updates only the pseudo-header seed of a partial TCP packet (ports are summed later)', () => {
    const p = parsePacket6(run('xdp', { src: CLIENT, dst: VIP, proto: 'tcp', sport: 44000, dport: 80, csum: 'partial' }).out);
    expect(BACKENDS).toContain(p.dst);
    expect(p.dport).toBe(8080);
    expect(p.l4Csum).toBe(p.pseudoSeed);
  });

  it('and of a partial UDP packet', () => {
    const p = parsePacket6(run('xdp', { src: CLIENT, dst: VIP, proto: 'udp', sport: 44001, dport: 53, csum: 'partial' }).out);
    expect(p.dport).toBe(5353);
    expect(p.l4Csum).toBe(p.pseudoSeed);
  });
});

describe('IPv6: reverse NAT', () => {
  it('rewrites a reply on tc egress back to the VIP, checksum right, exactly once', () => {
    const fwd = parsePacket6(run('tc', { src: CLIENT, dst: VIP, proto: 'tcp', sport: 45000, dport: 80 }).out);
    const reply = buildPacket6({ src: fwd.dst, dst: CLIENT, proto: 'tcp', sport: 8080, dport: 45000, tcpFlags: TCP_FLAGS.syn | TCP_FLAGS.ack });
    const out = run('egress', reply).out;
    const p = parsePacket6(out);
    expect(p.src).toBe(VIP);
    expect(p.sport).toBe(80);
    expect(p.dst).toBe(CLIENT);
    expect(p.l4CsumOk).toBe(true);
    expect(run('egress', out).out.equals(out)).toBe(true);
  });

  it('rewrites an ICMPv6 echo reply from the backend back to the IP-only VIP', () => {
    run('xdp', { src: CLIENT, dst: 'fd00::2', proto: 'icmp6' });
    const reply = buildPacket6({ src: 'fd00:1::9', dst: CLIENT, proto: 'icmp6', icmpType: 129 });
    const p = parsePacket6(run('egress', reply).out);
    expect(p.src).toBe('fd00::2');
    expect(p.l4CsumOk).toBe(true);
  });

  it('a reverse hit recreates a missing forward entry', () => {
    const fwd = parsePacket6(run('tc', { src: CLIENT, dst: VIP, proto: 'udp', sport: 48001, dport: 53 }).out);
    const fk = ctKey(CLIENT, VIP, 48001, 53, PROTO6.udp);
    for (const map of ctMaps()) dp.native.mapDelete(map, fk);
    run('egress', buildPacket6({ src: fwd.dst, dst: CLIENT, proto: 'udp', sport: 5353, dport: 48001 }));
    expect(ctHas(fk)).toBe(true);
  });
});

describe('IPv6: conntrack repair in the established tier (checked on refresh and state change only)', () => {
  it('a hit within the refresh period does not look at the other direction; the next refresh recreates it', () => {
    const sport = 47100;
    const syn = parsePacket6(run('tc', { src: CLIENT, dst: VIP, proto: 'tcp', sport, dport: 80 }).out);
    run('egress', buildPacket6({ src: syn.dst, dst: CLIENT, proto: 'tcp', sport: 8080, dport: sport, tcpFlags: TCP_FLAGS.ack }));
    const fk = ctKey(CLIENT, VIP, sport, 80, PROTO6.tcp);
    const rev = ctKey(syn.dst, CLIENT, 8080, sport, PROTO6.tcp);
    expect(dp.native.mapLookup(dp.maps.xlb_ct6, fk, LAYOUT.xlb_ct6_val.size)).not.toBeNull(); // confirmed
    dp.native.mapDelete(dp.maps.xlb_ct6, rev);
    const ack = { src: CLIENT, dst: VIP, proto: 'tcp', sport, dport: 80, tcpFlags: TCP_FLAGS.ack } as const;
    run('tc', ack);
    expect(ctHas(rev)).toBe(false);
    // Past the refresh period (XLB_CT_REFRESH_NS, 1 s): the hit looks at the other direction again.
    const v = decodeCt6Val(dp.native.mapLookup(dp.maps.xlb_ct6, fk, LAYOUT.xlb_ct6_val.size)!);
    dp.native.mapUpdate(dp.maps.xlb_ct6, fk, encodeCt6Val({ ...v, lastSeenNs: v.lastSeenNs > 2_000_000_000n ? v.lastSeenNs - 2_000_000_000n : 0n }));
    const before = dp.globalCounters().ct_recreate;
    expect(parsePacket6(run('xdp', ack).out).dst).toBe(syn.dst);
    expect(ctHas(rev)).toBe(true);
    expect(dp.globalCounters().ct_recreate - before).toBe(1n);
    const reply = buildPacket6({ src: syn.dst, dst: CLIENT, proto: 'tcp', sport: 8080, dport: sport, tcpFlags: TCP_FLAGS.ack });
    expect(parsePacket6(run('egress', reply).out).src).toBe(VIP);
  });
});

describe('IPv6: conntrack tiers', () => {
  it('a new flow waits in xlb_ct6_new and moves to xlb_ct6 once its backend answers with more than a SYN-ACK', () => {
    clearConntrack();
    const fk = ctKey(CLIENT, VIP, 47000, 80, PROTO6.tcp);
    const syn = parsePacket6(run('xdp', { src: CLIENT, dst: VIP, proto: 'tcp', sport: 47000, dport: 80 }).out);
    const inMain = (): boolean => dp.native.mapLookup(dp.maps.xlb_ct6, fk, LAYOUT.xlb_ct6_val.size) !== null;
    const inNew = (): boolean => dp.native.mapLookup(dp.maps.xlb_ct6_new, fk, LAYOUT.xlb_ct6_val.size) !== null;
    expect([inMain(), inNew()]).toEqual([false, true]);
    run('egress', buildPacket6({ src: syn.dst, dst: CLIENT, proto: 'tcp', sport: 8080, dport: 47000, tcpFlags: TCP_FLAGS.syn | TCP_FLAGS.ack }));
    expect([inMain(), inNew()]).toEqual([false, true]);
    run('egress', buildPacket6({ src: syn.dst, dst: CLIENT, proto: 'tcp', sport: 8080, dport: 47000, tcpFlags: TCP_FLAGS.ack }));
    expect([inMain(), inNew()]).toEqual([true, false]);
    // A flood of SYNs fills only the new-flow tier.
    for (let i = 0; i < 3000; i++) run('xdp', { src: `2001:db8:77::${(i + 1).toString(16)}`, dst: VIP, proto: 'tcp', sport: 1000, dport: 80 });
    expect(inMain()).toBe(true);
    expect(parsePacket6(run('xdp', { src: CLIENT, dst: VIP, proto: 'tcp', sport: 47000, dport: 80, tcpFlags: TCP_FLAGS.ack }).out).dst).toBe(syn.dst);
  });
});

describe('IPv6: ICMPv6 errors of balanced flows', () => {
  const DEST_UNREACH = 1;
  const PORT_UNREACH = 4;
  const PKT_TOOBIG = 2;

  it.each(['egress', 'xdp'] as const)('a backend\'s port unreachable reaches the client from the VIP, quoting the VIP\'s port (%s)', (hook) => {
    const fwd = parsePacket6(run('tc', { src: CLIENT, dst: VIP, proto: 'udp', sport: 46000, dport: 53 }).out);
    // What the backend got, quoted back as the backend's kernel does.
    const inner = buildIp6({ src: CLIENT, dst: fwd.dst, proto: 'udp', sport: 46000, dport: 5353 });
    const err = buildIcmp6Error(fwd.dst, CLIENT, DEST_UNREACH, PORT_UNREACH, 0, inner);
    const before = dp.globalCounters().icmp_related;
    const out = run(hook, err).out;
    const p = parsePacket6(out);
    expect(p.src).toBe(VIP);
    expect(p.dst).toBe(CLIENT);
    expect(p.l4CsumOk).toBe(true); // ICMPv6 checksum incl. the new pseudo-header
    const q = quoted(out);
    expect(q.src).toBe(CLIENT);
    expect(q.dst).toBe(VIP);
    expect(q.sport).toBe(46000);
    expect(q.dport).toBe(53);
    expect(q.l4CsumOk).toBe(true); // the quoted UDP checksum, as the client sent it
    expect(dp.globalCounters().icmp_related - before).toBe(1n);
  });

  it('a router\'s packet too big keeps its sender and quotes the VIP (PMTU discovery)', () => {
    const fwd = parsePacket6(run('tc', { src: CLIENT, dst: VIP, proto: 'tcp', sport: 46001, dport: 80 }).out);
    const inner = buildIp6({ src: CLIENT, dst: fwd.dst, proto: 'tcp', sport: 46001, dport: 8080, payload: Buffer.alloc(64, 7) });
    const err = buildIcmp6Error('fd00:9::1', CLIENT, PKT_TOOBIG, 0, 1280, inner);
    const out = run('egress', err).out;
    const p = parsePacket6(out);
    expect(p.src).toBe('fd00:9::1');
    expect(p.l4.readUInt32BE(4)).toBe(1280); // the MTU is untouched
    expect(p.l4CsumOk).toBe(true);
    const q = quoted(out);
    expect(q.dst).toBe(VIP);
    expect(q.dport).toBe(80);
    expect(q.l4CsumOk).toBe(true);
  });

  it('a client\'s error about a reply goes to the backend, quoting the backend', () => {
    const fwd = parsePacket6(run('tc', { src: CLIENT, dst: VIP, proto: 'udp', sport: 46002, dport: 53 }).out);
    const inner = buildIp6({ src: VIP, dst: CLIENT, proto: 'udp', sport: 53, dport: 46002 });
    const err = buildIcmp6Error(CLIENT, VIP, DEST_UNREACH, PORT_UNREACH, 0, inner);
    const p = parsePacket6(run('tc', err).out);
    expect(p.dst).toBe(fwd.dst);
    expect(p.l4CsumOk).toBe(true);
    const q = quoted(run('tc', err).out);
    expect(q.src).toBe(fwd.dst);
    expect(q.sport).toBe(5353);
    expect(q.l4CsumOk).toBe(true);
  });

  it('an error about no tracked flow passes untouched', () => {
    const inner = buildIp6({ src: CLIENT, dst: 'fd00:1::1', proto: 'udp', sport: 46999, dport: 5353 });
    const err = buildIcmp6Error('fd00:1::1', CLIENT, DEST_UNREACH, PORT_UNREACH, 0, inner);
    expect(run('egress', err).out.equals(err)).toBe(true);
  });
});

describe('IPv6 counters', () => {
  it('counts packets, bytes and new connections per VIP and per backend (ids shared with IPv4)', () => {
    const c = compile(validateConfig(config));
    const web = c.vips.find((v) => v.lb === 'web6')!;
    const web4 = c.vips.find((v) => v.lb === 'web4')!;
    // One VIP id space and one backend id space for both families.
    const vipIds = c.vips.map((v) => v.id);
    const backendIds = c.vips.flatMap((v) => v.backends.map((b) => b.id));
    expect(new Set(vipIds).size).toBe(vipIds.length);
    expect(new Set(backendIds).size).toBe(backendIds.length);
    expect(web4.id).not.toBe(web.id);
    const totals = () => dp.vipTotals([{ id: web.id, backendIds: web.backends.map((b) => b.id) }]).get(web.id)!; // its row + its backends'
    const before = totals();
    const pkt = buildPacket6({ src: CLIENT, dst: VIP, proto: 'tcp', sport: 49000, dport: 80 });
    const out = parsePacket6(run('tc', pkt).out);
    run('tc', buildPacket6({ src: CLIENT, dst: VIP, proto: 'tcp', sport: 49000, dport: 80, tcpFlags: TCP_FLAGS.ack }));
    const after = totals();
    expect(after.packets - before.packets).toBe(2n);
    expect(after.newConns - before.newConns).toBe(1n);
    expect(after.bytes - before.bytes).toBe(BigInt(pkt.length * 2));
    const be = web.backends.find((b) => b.text === `[${out.dst}]:8080`)!;
    expect(dp.backendStats(be.id).newConns).toBeGreaterThanOrEqual(1n);
  });
});
