/**
 * SCTP through BPF_PROG_TEST_RUN: DNAT of a VIP with a port (the port and the
 * CRC32c rewritten), an IP-only VIP (addresses only: the CRC, which covers no
 * address, stays), and the reply rewritten back to the VIP, on both hooks. The
 * CRC is checked by a bit-by-bit CRC32c in TS (test/helpers/packet.ts).
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { Dataplane } from '../src/dataplane.js';
import { LAYOUT } from '../src/layout.js';
import { buildPacket, buildPacket6, crc32c, ETH_HLEN, parsePacket, parsePacket6, PROTO } from './helpers/packet.js';
import { closeAndUnpin, loadOnLo } from './helpers/bpf.js';

const PIN_ROOT = `/sys/fs/bpf/xlb-rj-sctp-${process.pid}`;
const IFINDEX = 1;
const XDP_PASS = 2;
const XDP_DROP = 1;
const TC_ACT_OK = 0;
const BACKENDS = ['10.1.0.1', '10.1.0.2'];

const config = {
  load_balancers: [
    { name: 'diameter', protocol: 'sctp', vips: { '10.0.0.1:3868': BACKENDS.map((b) => `${b}:3869`).join(',') } },
    { name: 'same-port', protocol: 'sctp', vips: { '10.0.0.1:2905': '10.1.0.3:2905' } },
    { name: 'iponly', vips: { '10.0.0.2': '10.1.0.9' } },
    { name: 'iponly6', vips: { 'fd00::2': 'fd00:1::9' } },
  ],
  logical_switches: [{ name: 'sw', ports: ['lo'], load_balancer: ['diameter', 'same-port', 'iponly', 'iponly6'] }],
};

let dp: Dataplane;

function run(prog: 'tc' | 'xdp' | 'egress', frame: Buffer): { pass: boolean; out: Buffer } {
  const fd = prog === 'tc' ? dp.progs.xlb_tc_ingress : prog === 'xdp' ? dp.progs.xlb_xdp_ingress : dp.progs.xlb_tc_egress;
  const r = dp.native.progTestRun(fd, { data: frame, ifindex: IFINDEX, repeat: 1 });
  const pass = prog === 'xdp' ? XDP_PASS : TC_ACT_OK;
  if (prog === 'xdp' && r.retval !== XDP_PASS && r.retval !== XDP_DROP) throw new Error(`verdict ${r.retval}`);
  return { pass: r.retval === pass, out: Buffer.from(r.data) };
}

function clearConntrack(): void {
  const d = dp.native.mapDump(dp.maps.xlb_ct4, LAYOUT.xlb_ct4_key.size, LAYOUT.xlb_ct4_val.size);
  for (let i = 0; i < d.count; i++) dp.native.mapDelete(dp.maps.xlb_ct4, d.keys.subarray(i * 16, (i + 1) * 16));
}

beforeAll(() => {
  dp = loadOnLo(PIN_ROOT, config, IFINDEX);
});

afterAll(() => closeAndUnpin(dp, PIN_ROOT));

beforeEach(() => clearConntrack());

it('the TS CRC32c is the standard one (RFC 3720 check value)', () => {
  expect(crc32c(Buffer.from('123456789'))).toBe(0xe3069283);
});

/** Payload sizes around the 64-byte steps of the CRC walk, and a full frame. */
const SIZES = [0, 1, 3, 35, 36, 37, 100, 500, 1400, 2900];

describe.each(['tc', 'xdp'] as const)('SCTP on the %s hook', (hook) => {
  it.each(SIZES)('DNATs to a backend port with a valid CRC32c (%i payload bytes)', (size) => {
    const payload = Buffer.alloc(size, size & 0xff);
    for (let i = 0; i < size; i++) payload[i] = (i * 7 + size) & 0xff;
    const req = buildPacket({ src: '192.168.1.10', dst: '10.0.0.1', proto: 'sctp', sport: 40000 + size, dport: 3868, payload });
    const before = parsePacket(req);
    expect(before.l4CsumOk).toBe(true);
    const { pass, out } = run(hook, req);
    expect(pass).toBe(true);
    const p = parsePacket(out);
    expect(p.proto).toBe(PROTO.sctp);
    expect(BACKENDS).toContain(p.dst);
    expect(p.dport).toBe(3869);
    expect(p.sport).toBe(40000 + size);
    expect(p.ipCsumOk).toBe(true);
    expect(p.l4CsumOk).toBe(true);
    expect(p.l4Csum).not.toBe(before.l4Csum);
    // Only the destination port and the CRC changed in the SCTP packet.
    expect(p.l4.subarray(12)).toEqual(before.l4.subarray(12));
    expect(p.l4.subarray(4, 8)).toEqual(before.l4.subarray(4, 8));
  });

  it('keeps the CRC when the port does not change (same-port VIP, IP-only VIP)', () => {
    for (const [dst, dport, backend] of [
      ['10.0.0.1', 2905, '10.1.0.3'],
      ['10.0.0.2', 3868, '10.1.0.9'],
    ] as const) {
      const req = buildPacket({ src: '192.168.1.11', dst, proto: 'sctp', sport: 41000, dport, payload: Buffer.from('answer') });
      const { pass, out } = run(hook, req);
      expect(pass).toBe(true);
      const p = parsePacket(out);
      expect(p.dst).toBe(backend);
      expect(p.dport).toBe(dport);
      expect(p.l4CsumOk).toBe(true);
      expect(p.l4).toEqual(parsePacket(req).l4);
    }
  });

  it('rewrites the reply back to the VIP and its port, CRC valid', () => {
    const fwd = parsePacket(run(hook, buildPacket({ src: '192.168.1.12', dst: '10.0.0.1', proto: 'sctp', sport: 42000, dport: 3868 })).out);
    const reply = buildPacket({ src: fwd.dst, dst: '192.168.1.12', proto: 'sctp', sport: 3869, dport: 42000, payload: Buffer.from('reply!!') });
    // Replies are un-NATed on tc egress; an XDP port sees them on ingress.
    const { pass, out } = run(hook === 'tc' ? 'egress' : 'xdp', reply);
    expect(pass).toBe(true);
    const p = parsePacket(out);
    expect(p.src).toBe('10.0.0.1');
    expect(p.sport).toBe(3868);
    expect(p.dport).toBe(42000);
    expect(p.ipCsumOk).toBe(true);
    expect(p.l4CsumOk).toBe(true);
  });

  it('passes SCTP that is no VIP traffic, and a truncated SCTP header, untouched', () => {
    const other = buildPacket({ src: '192.168.1.13', dst: '10.0.0.77', proto: 'sctp', dport: 3868 });
    expect(run(hook, other)).toEqual({ pass: true, out: other });
    const short = buildPacket({ src: '192.168.1.13', dst: '10.0.0.1', proto: 'sctp', dport: 3868 }).subarray(0, ETH_HLEN + 20 + 8);
    short.writeUInt16BE(28, ETH_HLEN + 2);
    const before = dp.globalCounters().malformed;
    expect(run(hook, Buffer.from(short)).pass).toBe(true);
    expect(dp.globalCounters().malformed - before).toBe(1n);
  });

  it('IPv6: an IP-only VIP serves SCTP (addresses rewritten both ways, CRC untouched and valid)', () => {
    const req = buildPacket6({ src: 'fd00:9::11', dst: 'fd00::2', proto: 'sctp', sport: 44000, dport: 9, payload: Buffer.alloc(300, 7) });
    expect(parsePacket6(req).l4CsumOk).toBe(true);
    const p = parsePacket6(run(hook, req).out);
    expect(p.dst).toBe('fd00:1::9');
    expect(p.l4).toEqual(parsePacket6(req).l4);
    expect(p.l4CsumOk).toBe(true);
    const reply = buildPacket6({ src: 'fd00:1::9', dst: 'fd00:9::11', proto: 'sctp', sport: 9, dport: 44000 });
    const back = parsePacket6(run(hook === 'tc' ? 'egress' : 'xdp', reply).out);
    expect(back.src).toBe('fd00::2');
    expect(back.l4CsumOk).toBe(true);
  });
});
