/**
 * ICMP errors of balanced flows are translated (BPF_PROG_TEST_RUN, then end to
 * end): a backend's "port unreachable" reaches the client from the VIP about
 * the VIP's port; a router's "fragmentation needed" keeps its sender but
 * quotes the VIP; a client's error about a reply goes to the backend. Every
 * checksum (outer IP, ICMP, quoted IP, quoted UDP) is recomputed from scratch.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { Dataplane } from '../src/dataplane.js';
import { compile } from '../src/compile.js';
import { validateConfig } from '../src/config.js';
import { applyCompiled } from '../src/writer.js';
import { flushConntrack } from '../src/conntrack.js';
import { Lab, LAB_INSTANCE, labConfig, LAB } from '../src/lab.js';
import { Xlb } from '../src/xlb.js';
import { buildIcmpError, buildPacket, onesSum, parsePacket, ETH_HLEN } from './helpers/packet.js';
import { run, TIMEOUT_S } from './helpers/e2e.js';

const PIN_ROOT = `/sys/fs/bpf/xlb-test-icmp-${process.pid}`;
const IFINDEX = 1;
let dp: Dataplane;

/** An ICMP error (type/code) from src to dst quoting `quoted` (an IPv4 packet without Ethernet). */
const icmpError = buildIcmpError;

interface Seen {
  outerSrc: string;
  outerDst: string;
  outerCsumOk: boolean;
  icmpCsumOk: boolean;
  inner: ReturnType<typeof parsePacket>;
}

function read(frame: Buffer): Seen {
  const outer = parsePacket(frame);
  const icmp = outer.l4;
  const quotedIp = icmp.subarray(8);
  const inner = parsePacket(Buffer.concat([Buffer.alloc(ETH_HLEN, 0).fill(0, 0, 12), quotedIp]).fill(0x08, 12, 13));
  return { outerSrc: outer.src, outerDst: outer.dst, outerCsumOk: outer.ipCsumOk, icmpCsumOk: onesSum(icmp) === 0xffff, inner };
}

function runProg(prog: 'xlb_tc_ingress' | 'xlb_tc_egress', frame: Buffer): Buffer {
  return dp.native.progTestRun(dp.progs[prog], { data: frame, ifindex: IFINDEX }).data;
}

/** The client's UDP request DNATed by xlb (the quoted packet the backend's error carries). */
function balancedRequest(sport: number): { backend: string; quoted: Buffer } {
  const out = runProg('xlb_tc_ingress', buildPacket({ src: '192.168.1.10', dst: '10.0.0.1', proto: 'udp', sport, dport: 53 }));
  return { backend: parsePacket(out).dst, quoted: out.subarray(ETH_HLEN) };
}

beforeAll(() => {
  dp = Dataplane.open({ pinRoot: PIN_ROOT });
  const c = compile(
    validateConfig({
      load_balancers: [{ name: 'dns', protocol: 'udp', vips: { '10.0.0.1:53': '10.1.0.1:5353,10.1.0.2:5353' } }],
      logical_switches: [{ name: 'sw', ports: ['lo'], load_balancer: ['dns'] }],
    }),
  );
  applyCompiled(dp.store(), c, new Map([['lo', IFINDEX]]));
});

afterAll(() => {
  dp?.close();
  Dataplane.removePins(PIN_ROOT);
});

beforeEach(() => {
  flushConntrack(dp, () => true);
});

describe('ICMP errors of balanced flows', () => {
  it("a backend's port unreachable reaches the client from the VIP, quoting the VIP's port", () => {
    const { backend, quoted } = balancedRequest(40000);
    const err = icmpError(backend, '192.168.1.10', 3, 3, quoted);
    const before = dp.globalCounters().icmp_related;
    const s = read(runProg('xlb_tc_egress', err));
    expect(s.outerSrc).toBe('10.0.0.1');
    expect(s.outerDst).toBe('192.168.1.10');
    expect(s.inner.src).toBe('192.168.1.10');
    expect(s.inner.dst).toBe('10.0.0.1');
    expect(s.inner.sport).toBe(40000);
    expect(s.inner.dport).toBe(53);
    expect(s.outerCsumOk).toBe(true);
    expect(s.icmpCsumOk).toBe(true);
    expect(s.inner.ipCsumOk).toBe(true);
    expect(s.inner.l4CsumOk).toBe(true);
    expect(dp.globalCounters().icmp_related - before).toBe(1n);
  });

  it("a router's fragmentation needed keeps its sender and MTU but quotes the VIP (PMTU discovery)", () => {
    const { quoted } = balancedRequest(40001);
    const err = icmpError('10.1.0.254', '192.168.1.10', 3, 4, quoted, 1400);
    const out = runProg('xlb_tc_egress', err);
    const s = read(out);
    expect(s.outerSrc).toBe('10.1.0.254');
    expect(s.inner.dst).toBe('10.0.0.1');
    expect(s.inner.dport).toBe(53);
    expect(out.readUInt32BE(ETH_HLEN + 20 + 4)).toBe(1400);
    expect(s.outerCsumOk && s.icmpCsumOk && s.inner.ipCsumOk && s.inner.l4CsumOk).toBe(true);
  });

  it("a client's error about a reply goes to the backend, quoting the backend", () => {
    const { backend } = balancedRequest(40002);
    // The reply as the client saw it: VIP:53 -> client:40002.
    const reply = buildPacket({ src: '10.0.0.1', dst: '192.168.1.10', proto: 'udp', sport: 53, dport: 40002 }).subarray(ETH_HLEN);
    const s = read(runProg('xlb_tc_ingress', icmpError('192.168.1.10', '10.0.0.1', 3, 3, reply)));
    expect(s.outerDst).toBe(backend);
    expect(s.inner.src).toBe(backend);
    expect(s.inner.sport).toBe(5353);
    expect(s.outerCsumOk && s.icmpCsumOk && s.inner.ipCsumOk && s.inner.l4CsumOk).toBe(true);
  });

  it('an ICMP error about an unknown flow passes untouched', () => {
    const stranger = buildPacket({ src: '192.168.1.99', dst: '10.9.9.9', proto: 'udp', sport: 1, dport: 2 }).subarray(ETH_HLEN);
    const err = icmpError('10.9.9.9', '192.168.1.99', 3, 3, stranger);
    expect(runProg('xlb_tc_egress', err).equals(err)).toBe(true);
  });
});

describe('end to end', () => {
  let lab: Lab;
  let x: Xlb;
  beforeAll(async () => {
    Xlb.reset(LAB_INSTANCE);
    lab = await Lab.create();
    x = Xlb.open(LAB_INSTANCE);
    x.apply(labConfig('tc'));
  });
  afterAll(async () => {
    x?.close();
    Xlb.reset(LAB_INSTANCE);
    await lab?.destroy();
  });

  it('a connected UDP socket to the VIP learns "connection refused" when the backend has no listener', async () => {
    lab.stopBackend('vm1');
    lab.stopBackend('vm2');
    const py = [
      'import socket, sys',
      's = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)',
      `s.settimeout(${TIMEOUT_S})`,
      `s.connect(("${LAB.vip}", ${LAB.udpVipPort}))`,
      's.send(b"ping")',
      'try:',
      '    s.recv(100); print("answer")',
      'except ConnectionRefusedError: print("refused")',
      'except socket.timeout: print("timeout")',
    ].join('\n');
    const r = await run('ip', ['netns', 'exec', LAB.vms.vm3.ns, 'python3', '-c', py], 30);
    expect(r.stdout.trim()).toBe('refused');
  });
});
