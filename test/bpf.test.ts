/**
 * The data plane through BPF_PROG_TEST_RUN: crafted packet in, packet out.
 * Maps are filled by the real compile + writer into a private pin root; the
 * programs are not attached anywhere (the ctx's ifindex 1 is only a key in
 * xlb_ifaces). Checksums are verified by recomputing them from scratch.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { Dataplane } from '../src/dataplane.js';
import { compile } from '../src/compile.js';
import { validateConfig } from '../src/config.js';
import { decodeCt4Val, encodeCt4Key, encodeCt4Val, LAYOUT } from '../src/layout.js';
import { parseIPv4 } from '../src/addr.js';
import { buildPacket, parsePacket, TCP_FLAGS, type PacketSpec } from './helpers/packet.js';
import { closeAndUnpin, loadOnLo } from './helpers/bpf.js';
import { ct4Clear, ct4Delete, ct4Has } from './helpers/ct.js';

const PIN_ROOT = `/sys/fs/bpf/xlb-test-bpf-${process.pid}`;
const IFINDEX = 1; // lo: exists in every netns; used only as a key here
const XDP_PASS = 2;
const XDP_DROP = 1;
const TC_ACT_OK = 0;
const TC_ACT_SHOT = 2;

const BACKENDS = ['10.1.0.1', '10.1.0.2', '10.1.0.3'];
const config = {
  load_balancers: [
    {
      name: 'web',
      protocol: 'tcp',
      vips: { '10.0.0.1:80': BACKENDS.map((b) => `${b}:8080`).join(',') },
    },
    { name: 'dns', protocol: 'udp', vips: { '10.0.0.1:53': '10.1.0.1:5353,10.1.0.2:5353' } },
    { name: 'iponly', vips: { '10.0.0.2': '10.1.0.9' } },
    { name: 'empty', protocol: 'tcp', vips: { '10.0.0.3:80': '' } },
  ],
  logical_switches: [{ name: 'sw', ports: ['lo'], load_balancer: ['web', 'dns', 'iponly', 'empty'] }],
};

let dp: Dataplane;

type Hook = 'tc' | 'xdp' | 'egress';

function run(hook: Hook, spec: PacketSpec | Buffer): { verdict: 'pass' | 'drop'; out: Buffer } {
  const prog = hook === 'tc' ? dp.progs.xlb_tc_ingress : hook === 'xdp' ? dp.progs.xlb_xdp_ingress : dp.progs.xlb_tc_egress;
  const data = Buffer.isBuffer(spec) ? spec : buildPacket(spec);
  const r = dp.native.progTestRun(prog, { data, ifindex: IFINDEX, repeat: 1 });
  const pass = hook === 'xdp' ? XDP_PASS : TC_ACT_OK;
  const drop = hook === 'xdp' ? XDP_DROP : TC_ACT_SHOT;
  if (r.retval !== pass && r.retval !== drop) throw new Error(`unexpected verdict ${r.retval}`);
  return { verdict: r.retval === pass ? 'pass' : 'drop', out: r.data };
}

/** Both conntrack tiers: the main table and the new-flow tier. */
function clearConntrack(): void {
  ct4Clear(dp);
}

function ctDelete(k: Buffer): void {
  ct4Delete(dp, k);
}

function ctKey(src: string, dst: string, sport: number, dport: number, proto: number): Buffer {
  return encodeCt4Key({ saddr: parseIPv4(src), daddr: parseIPv4(dst), sport, dport, proto });
}

function ctHas(k: Buffer): boolean {
  return ct4Has(dp, k);
}

beforeAll(() => {
  dp = loadOnLo(PIN_ROOT, config, IFINDEX);
});

afterAll(() => closeAndUnpin(dp, PIN_ROOT));

beforeEach(() => clearConntrack());

describe.each(['tc', 'xdp'] as const)('ingress on the %s hook', (hook) => {
  it('DNATs a TCP SYN to a backend with both checksums right', () => {
    const { verdict, out } = run(hook, { src: '192.168.1.10', dst: '10.0.0.1', proto: 'tcp', sport: 40000, dport: 80 });
    expect(verdict).toBe('pass');
    const p = parsePacket(out);
    expect(BACKENDS).toContain(p.dst);
    expect(p.dport).toBe(8080);
    expect(p.src).toBe('192.168.1.10');
    expect(p.sport).toBe(40000);
    expect(p.ipCsumOk).toBe(true);
    expect(p.l4CsumOk).toBe(true);
  });

  it('keeps every packet of a flow on its backend, and spreads flows over all backends', () => {
    const seen = new Set<string>();
    for (let port = 30000; port < 30060; port++) {
      const first = parsePacket(run(hook, { src: '192.168.1.10', dst: '10.0.0.1', proto: 'tcp', sport: port, dport: 80 }).out);
      const next = parsePacket(
        run(hook, { src: '192.168.1.10', dst: '10.0.0.1', proto: 'tcp', sport: port, dport: 80, tcpFlags: TCP_FLAGS.ack }).out,
      );
      expect(next.dst).toBe(first.dst);
      seen.add(first.dst);
    }
    expect([...seen].sort()).toEqual([...BACKENDS].sort());
  });

  it('records both directions in conntrack with addresses, not indexes', () => {
    const p = parsePacket(run(hook, { src: '192.168.1.11', dst: '10.0.0.1', proto: 'tcp', sport: 41000, dport: 80 }).out);
    expect(ctHas(ctKey('192.168.1.11', '10.0.0.1', 41000, 80, 6))).toBe(true);
    expect(ctHas(ctKey(p.dst, '192.168.1.11', 8080, 41000, 6))).toBe(true);
  });

  it('DNATs UDP and keeps a zero UDP checksum zero', () => {
    const full = parsePacket(run(hook, { src: '192.168.1.10', dst: '10.0.0.1', proto: 'udp', sport: 5000, dport: 53 }).out);
    expect(['10.1.0.1', '10.1.0.2']).toContain(full.dst);
    expect(full.dport).toBe(5353);
    expect(full.l4CsumOk).toBe(true);
    expect(full.l4Csum).not.toBe(0);
    const none = parsePacket(
      run(hook, { src: '192.168.1.10', dst: '10.0.0.1', proto: 'udp', sport: 5001, dport: 53, csum: 'none' }).out,
    );
    expect(none.dport).toBe(5353);
    expect(none.l4Csum).toBe(0);
    expect(none.ipCsumOk).toBe(true);
  });

  it('serves an IP-only VIP for every protocol, keeping the ports', () => {
    const icmp = parsePacket(run(hook, { src: '192.168.1.10', dst: '10.0.0.2', proto: 'icmp' }).out);
    expect(icmp.dst).toBe('10.1.0.9');
    expect(icmp.ipCsumOk).toBe(true);
    expect(icmp.l4CsumOk).toBe(true);
    const tcp = parsePacket(run(hook, { src: '192.168.1.10', dst: '10.0.0.2', proto: 'tcp', sport: 1234, dport: 4321 }).out);
    expect(tcp.dst).toBe('10.1.0.9');
    expect(tcp.dport).toBe(4321);
    expect(tcp.l4CsumOk).toBe(true);
  });

  it('passes traffic that is not for a VIP untouched', () => {
    const cases: Buffer[] = [
      buildPacket({ src: '192.168.1.10', dst: '10.0.0.9', proto: 'tcp', dport: 80 }), // no such VIP
      buildPacket({ src: '192.168.1.10', dst: '10.0.0.1', proto: 'tcp', dport: 81 }), // VIP address, other port
      buildPacket({ src: '192.168.1.10', dst: '10.0.0.1', proto: 'udp', dport: 80 }), // other protocol
    ];
    const arp = Buffer.alloc(42);
    arp.writeUInt16BE(0x0806, 12);
    const v6 = Buffer.alloc(74);
    v6.writeUInt16BE(0x86dd, 12);
    v6[14] = 0x60;
    cases.push(arp, v6);
    for (const pkt of cases) {
      const { verdict, out } = run(hook, pkt);
      expect(verdict).toBe('pass');
      expect(out.equals(pkt)).toBe(true);
    }
  });

  it('passes malformed and truncated packets untouched', () => {
    const good = buildPacket({ src: '192.168.1.10', dst: '10.0.0.1', proto: 'tcp', dport: 80 });
    const badIhl = Buffer.from(good);
    badIhl[14] = 0x44; // ihl 4 < 5
    const badLen = Buffer.from(good);
    badLen.writeUInt16BE(1400, 16); // tot_len beyond the frame
    const badVersion = Buffer.from(good);
    badVersion[14] = 0x65;
    // tc's test run itself refuses (EINVAL) frames with no complete IPv4 header
    const cases = [...(hook === 'xdp' ? [good.subarray(0, 14), good.subarray(0, 30)] : []), good.subarray(0, 14 + 20 + 10), badIhl, badLen, badVersion];
    const before = dp.globalCounters().malformed;
    for (const pkt of cases) {
      const { verdict, out } = run(hook, pkt);
      expect(verdict).toBe('pass');
      expect(out.equals(pkt)).toBe(true);
    }
    expect(dp.globalCounters().malformed - before).toBeGreaterThanOrEqual(BigInt(cases.length - 1));
  });

  it('passes IP fragments untouched', () => {
    const frag = buildPacket({ src: '192.168.1.10', dst: '10.0.0.1', proto: 'tcp', dport: 80, fragOff: 0x2000 });
    const { verdict, out } = run(hook, frag);
    expect(verdict).toBe('pass');
    expect(out.equals(frag)).toBe(true);
  });

  it('parses IPv4 options', () => {
    const opts = Buffer.from([1, 1, 1, 0]); // NOP NOP NOP EOL
    const p = parsePacket(
      run(hook, { src: '192.168.1.10', dst: '10.0.0.1', proto: 'tcp', sport: 42000, dport: 80, ipOptions: opts }).out,
    );
    expect(BACKENDS).toContain(p.dst);
    expect(p.ipCsumOk).toBe(true);
    expect(p.l4CsumOk).toBe(true);
  });

  it('drops packets to a VIP without backends and counts them', () => {
    const before = dp.globalCounters().no_backend;
    const { verdict } = run(hook, { src: '192.168.1.10', dst: '10.0.0.3', proto: 'tcp', dport: 80 });
    expect(verdict).toBe('drop');
    expect(dp.globalCounters().no_backend - before).toBe(1n);
  });

  it('re-balances a mid-stream TCP packet of an unknown flow to the backend the hash picks', () => {
    const syn = parsePacket(run(hook, { src: '192.168.1.20', dst: '10.0.0.1', proto: 'tcp', sport: 43000, dport: 80 }).out);
    clearConntrack();
    const before = dp.globalCounters().midstream;
    const ack = parsePacket(
      run(hook, { src: '192.168.1.20', dst: '10.0.0.1', proto: 'tcp', sport: 43000, dport: 80, tcpFlags: TCP_FLAGS.ack }).out,
    );
    expect(ack.dst).toBe(syn.dst);
    expect(dp.globalCounters().midstream - before).toBe(1n);
    expect(ctHas(ctKey('192.168.1.20', '10.0.0.1', 43000, 80, 6))).toBe(true);
  });
});

describe('both hooks agree', () => {
  it('a flow picks the same backend on tc and XDP (one hash)', () => {
    for (let port = 20000; port < 20040; port++) {
      const spec: PacketSpec = { src: '192.168.2.1', dst: '10.0.0.1', proto: 'tcp', sport: port, dport: 80 };
      const a = parsePacket(run('tc', spec).out);
      clearConntrack();
      const b = parsePacket(run('xdp', spec).out);
      clearConntrack();
      expect(b.dst).toBe(a.dst);
    }
  });
});

describe('XDP and CHECKSUM_PARTIAL', () => {
  it('updates only the pseudo-header seed of a partial packet (ports are summed later)', () => {
    const { out } = run('xdp', { src: '192.168.1.10', dst: '10.0.0.1', proto: 'tcp', sport: 44000, dport: 80, csum: 'partial' });
    const p = parsePacket(out);
    expect(BACKENDS).toContain(p.dst);
    expect(p.dport).toBe(8080);
    expect(p.l4Csum).toBe(p.pseudoSeed);
    expect(p.ipCsumOk).toBe(true);
  });

  it('updates a partial UDP seed the same way', () => {
    const { out } = run('xdp', { src: '192.168.1.10', dst: '10.0.0.1', proto: 'udp', sport: 44001, dport: 53, csum: 'partial' });
    const p = parsePacket(out);
    expect(p.l4Csum).toBe(p.pseudoSeed);
  });
});

describe('reverse NAT on tc egress', () => {
  it('rewrites a reply back to the VIP, checksums right, exactly once', () => {
    const fwd = parsePacket(run('tc', { src: '192.168.1.30', dst: '10.0.0.1', proto: 'tcp', sport: 45000, dport: 80 }).out);
    const reply = buildPacket({
      src: fwd.dst,
      dst: '192.168.1.30',
      proto: 'tcp',
      sport: 8080,
      dport: 45000,
      tcpFlags: TCP_FLAGS.syn | TCP_FLAGS.ack,
    });
    const out = parsePacket(run('egress', reply).out);
    expect(out.src).toBe('10.0.0.1');
    expect(out.sport).toBe(80);
    expect(out.dst).toBe('192.168.1.30');
    expect(out.ipCsumOk).toBe(true);
    expect(out.l4CsumOk).toBe(true);
    // The rewritten reply is no conntrack key: a second pass changes nothing.
    const once = run('egress', reply).out;
    expect(run('egress', once).out.equals(once)).toBe(true);
  });

  it('un-NATs a reply seen on ingress instead of balancing it', () => {
    const fwd = parsePacket(run('xdp', { src: '192.168.1.31', dst: '10.0.0.1', proto: 'udp', sport: 46000, dport: 53 }).out);
    const reply = buildPacket({ src: fwd.dst, dst: '192.168.1.31', proto: 'udp', sport: 5353, dport: 46000 });
    const out = parsePacket(run('xdp', reply).out);
    expect(out.src).toBe('10.0.0.1');
    expect(out.sport).toBe(53);
    expect(out.l4CsumOk).toBe(true);
  });

  it('passes egress traffic that is no reply untouched', () => {
    const pkt = buildPacket({ src: '10.1.0.1', dst: '192.168.1.99', proto: 'tcp', sport: 8080, dport: 1 });
    const { out } = run('egress', pkt);
    expect(out.equals(pkt)).toBe(true);
  });

  it('never balances on egress', () => {
    const pkt = buildPacket({ src: '192.168.1.10', dst: '10.0.0.1', proto: 'tcp', sport: 47000, dport: 80 });
    expect(run('egress', pkt).out.equals(pkt)).toBe(true);
  });
});

describe('conntrack repair after a one-sided LRU eviction', () => {
  it('a forward hit recreates a missing reverse entry', () => {
    const fwd = parsePacket(run('tc', { src: '192.168.1.40', dst: '10.0.0.1', proto: 'tcp', sport: 48000, dport: 80 }).out);
    const rev = ctKey(fwd.dst, '192.168.1.40', 8080, 48000, 6);
    ctDelete(rev);
    expect(ctHas(rev)).toBe(false);
    const before = dp.globalCounters().ct_recreate;
    run('tc', { src: '192.168.1.40', dst: '10.0.0.1', proto: 'tcp', sport: 48000, dport: 80, tcpFlags: TCP_FLAGS.ack });
    expect(ctHas(rev)).toBe(true);
    expect(dp.globalCounters().ct_recreate - before).toBe(1n);
    const reply = buildPacket({ src: fwd.dst, dst: '192.168.1.40', proto: 'tcp', sport: 8080, dport: 48000 });
    expect(parsePacket(run('egress', reply).out).src).toBe('10.0.0.1');
  });

  it('a reverse hit recreates a missing forward entry (same backend even after a pool change)', () => {
    const fwd = parsePacket(run('tc', { src: '192.168.1.41', dst: '10.0.0.1', proto: 'tcp', sport: 48001, dport: 80 }).out);
    const fk = ctKey('192.168.1.41', '10.0.0.1', 48001, 80, 6);
    ctDelete(fk);
    const reply = buildPacket({ src: fwd.dst, dst: '192.168.1.41', proto: 'tcp', sport: 8080, dport: 48001 });
    run('egress', reply);
    expect(ctHas(fk)).toBe(true);
    const next = parsePacket(
      run('tc', { src: '192.168.1.41', dst: '10.0.0.1', proto: 'tcp', sport: 48001, dport: 80, tcpFlags: TCP_FLAGS.ack }).out,
    );
    expect(next.dst).toBe(fwd.dst);
    expect(next.dport).toBe(8080);
  });
});

/** An established flow (its backend answered, so both entries are in xlb_ct4); returns its backend. */
function establish(client: string, sport: number): string {
  const fwd = parsePacket(run('tc', { src: client, dst: '10.0.0.1', proto: 'tcp', sport, dport: 80, tcpFlags: TCP_FLAGS.syn }).out);
  run('egress', { src: fwd.dst, dst: client, proto: 'tcp', sport: 8080, dport: sport, tcpFlags: TCP_FLAGS.ack });
  expect(dp.native.mapLookup(dp.maps.xlb_ct4, ctKey(client, '10.0.0.1', sport, 80, 6), LAYOUT.xlb_ct4_val.size)).not.toBeNull();
  return fwd.dst;
}

/** Moves an established entry's timestamp back by more than the refresh period (XLB_CT_REFRESH_NS, 1 s). */
function age(k: Buffer): void {
  const v = decodeCt4Val(dp.native.mapLookup(dp.maps.xlb_ct4, k, LAYOUT.xlb_ct4_val.size)!);
  dp.native.mapUpdate(dp.maps.xlb_ct4, k, encodeCt4Val({ ...v, lastSeenNs: v.lastSeenNs > 2_000_000_000n ? v.lastSeenNs - 2_000_000_000n : 0n }));
}

describe('conntrack repair in the established tier (checked on refresh and state change only)', () => {
  it('a hit within the refresh period does not look at the other direction; the next refresh recreates it', () => {
    const be = establish('192.168.1.42', 48002);
    const fk = ctKey('192.168.1.42', '10.0.0.1', 48002, 80, 6);
    const rev = ctKey(be, '192.168.1.42', 8080, 48002, 6);
    ctDelete(rev);
    const ack = { src: '192.168.1.42', dst: '10.0.0.1', proto: 'tcp', sport: 48002, dport: 80, tcpFlags: TCP_FLAGS.ack } as const;
    run('tc', ack);
    expect(ctHas(rev)).toBe(false);
    age(fk);
    const before = dp.globalCounters().ct_recreate;
    expect(parsePacket(run('xdp', ack).out).dst).toBe(be);
    expect(ctHas(rev)).toBe(true);
    expect(dp.globalCounters().ct_recreate - before).toBe(1n);
    const reply = buildPacket({ src: be, dst: '192.168.1.42', proto: 'tcp', sport: 8080, dport: 48002, tcpFlags: TCP_FLAGS.ack });
    expect(parsePacket(run('egress', reply).out).src).toBe('10.0.0.1');
  });

  it('a state change (FIN) recreates the other direction at once, with the new state', () => {
    const be = establish('192.168.1.43', 48003);
    const rev = ctKey(be, '192.168.1.43', 8080, 48003, 6);
    ctDelete(rev);
    run('tc', { src: '192.168.1.43', dst: '10.0.0.1', proto: 'tcp', sport: 48003, dport: 80, tcpFlags: TCP_FLAGS.fin | TCP_FLAGS.ack });
    const v = dp.native.mapLookup(dp.maps.xlb_ct4, rev, LAYOUT.xlb_ct4_val.size);
    expect(v).not.toBeNull();
    const fv = decodeCt4Val(dp.native.mapLookup(dp.maps.xlb_ct4, ctKey('192.168.1.43', '10.0.0.1', 48003, 80, 6), LAYOUT.xlb_ct4_val.size)!);
    expect(decodeCt4Val(v!).state).toBe(fv.state);
  });

  it('an aged reverse hit recreates a missing forward entry with the same backend', () => {
    const be = establish('192.168.1.44', 48004);
    const fk = ctKey('192.168.1.44', '10.0.0.1', 48004, 80, 6);
    const rev = ctKey(be, '192.168.1.44', 8080, 48004, 6);
    ctDelete(fk);
    age(rev);
    run('egress', { src: be, dst: '192.168.1.44', proto: 'tcp', sport: 8080, dport: 48004, tcpFlags: TCP_FLAGS.ack });
    const next = parsePacket(run('tc', { src: '192.168.1.44', dst: '10.0.0.1', proto: 'tcp', sport: 48004, dport: 80, tcpFlags: TCP_FLAGS.ack }).out);
    expect(next.dst).toBe(be);
    expect(next.dport).toBe(8080);
  });
});

describe('counters', () => {
  it('counts packets, bytes and new connections per VIP and per backend', () => {
    const c = compile(validateConfig(config));
    const web = c.vips.find((v) => v.lb === 'web')!;
    const totals = () => dp.vipTotals([{ id: web.id, backendIds: web.backends.map((b) => b.id) }]).get(web.id)!; // its row + its backends'
    const before = totals();
    const pkt = buildPacket({ src: '192.168.1.50', dst: '10.0.0.1', proto: 'tcp', sport: 49000, dport: 80 });
    const out = parsePacket(run('tc', pkt).out);
    run('tc', buildPacket({ src: '192.168.1.50', dst: '10.0.0.1', proto: 'tcp', sport: 49000, dport: 80, tcpFlags: TCP_FLAGS.ack }));
    const after = totals();
    expect(after.packets - before.packets).toBe(2n);
    expect(after.newConns - before.newConns).toBe(1n);
    expect(after.bytes - before.bytes).toBe(BigInt(pkt.length * 2));
    const be = web.backends.find((b) => b.text === `${out.dst}:8080`)!;
    expect(dp.backendStats(be.id).newConns).toBeGreaterThanOrEqual(1n);
  });
});
