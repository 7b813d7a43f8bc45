/**
 * SCTP VIPs end to end. This kernel has no SCTP stack, so the traffic is raw:
 * vm3 sends SCTP frames through an AF_PACKET socket on its eth0 (routed by the
 * host like any IP packet), raw receivers on the backends' eth0 check what
 * arrives — the backend address and port, the client's address, the payload,
 * and the CRC32c, recomputed here in TS — and the backend's raw reply must
 * reach vm3 from the VIP and its port with a valid CRC. On both hooks, for a
 * VIP with a port (rewritten: CRC recomputed) and an IP-only VIP (ports kept:
 * CRC unchanged). On tc also at the size limit: a 16,000-byte SCTP packet is
 * served, one over XLB_SCTP_CRC_MAX_LEN (16 KiB) is dropped and counted.
 */
import { rmSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { Lab, labNames, nsExec } from '../src/lab.js';
import { Xlb } from '../src/xlb.js';
import { loadNative, type PacketSocket } from '../src/native.js';
import { buildPacket, buildPacket6, ETH_HLEN, parsePacket, parsePacket6, PROTO } from './helpers/packet.js';
import { cli, TIMEOUT_S } from './helpers/e2e.js';

// The pid keeps concurrent runs of this file (other worktrees run it too) apart.
const L = labNames(`xlb-rj-s${process.pid}-`);
const INSTANCE = { pinRoot: `/sys/fs/bpf/xlb-rj-s-${process.pid}`, stateDir: `/run/xlb-rj-s-${process.pid}` };
const VIP = L.vip;
const IP_ONLY = '172.16.255.63';
const VIP_PORT = 3868;
const BACKEND_PORT = 3869;
const BIG_MTU = 20000;
const n = loadNative();

let lab: Lab;
let x: Xlb;
const sock: Partial<Record<'vm1' | 'vm2' | 'vm3', PacketSocket>> = {};
let insideMac: Buffer;
let dmzMac: Buffer;

function bridgeMac(br: string): Buffer {
  const j = JSON.parse(execFileSync('ip', ['-n', L.hv, '-j', 'link', 'show', br], { encoding: 'utf8' })) as Array<{ address: string }>;
  return Buffer.from(j[0].address.replace(/:/g, ''), 'hex');
}

function config(hook: 'tc' | 'xdp'): object {
  return {
    load_balancers: [
      { name: 'diameter', protocol: 'sctp', vips: { [`${VIP}:${VIP_PORT}`]: `${L.vms.vm1.ip}:${BACKEND_PORT}` } },
      { name: 'any', vips: { [IP_ONLY]: L.vms.vm2.ip } },
      { name: 'any6', vips: { [L.vip6IpOnly]: L.vms.vm1.ip6 } },
    ],
    logical_switches: [
      { name: 'inside', ports: [{ interface: `${L.hv}/${L.vms.vm3.hostIf}`, hook }], load_balancer: ['diameter', 'any', 'any6'] },
    ],
  };
}

/** An SCTP frame from `from` (its eth0 MAC) to the router MAC `gw`. */
function frame(from: 'vm1' | 'vm2' | 'vm3', gw: Buffer, dst: string, sport: number, dport: number, payload: Buffer): Buffer {
  const f = buildPacket({ src: L.vms[from].ip, dst, proto: 'sctp', sport, dport, payload });
  gw.copy(f, 0);
  sock[from]!.mac.copy(f, 6);
  return f;
}

/** The first SCTP frame `vm` receives within the timeout that matches. */
async function receive(vm: 'vm1' | 'vm2' | 'vm3', match: (p: ReturnType<typeof parsePacket>) => boolean): Promise<ReturnType<typeof parsePacket> | null> {
  const deadline = Date.now() + TIMEOUT_S * 1000;
  while (Date.now() < deadline) {
    for (const f of await n.packetRecv(sock[vm]!.fd, Math.max(1, deadline - Date.now()))) {
      if (f.length < ETH_HLEN + 20 || f.readUInt16BE(12) !== 0x0800 || f[ETH_HLEN + 9] !== PROTO.sctp) continue;
      const p = parsePacket(f);
      if (match(p)) return p;
    }
  }
  return null;
}

/** The first IPv6 SCTP frame `vm` receives within the timeout that matches. */
async function receive6(vm: 'vm1' | 'vm3', match: (p: ReturnType<typeof parsePacket6>) => boolean): Promise<ReturnType<typeof parsePacket6> | null> {
  const deadline = Date.now() + TIMEOUT_S * 1000;
  while (Date.now() < deadline) {
    for (const f of await n.packetRecv(sock[vm]!.fd, Math.max(1, deadline - Date.now()))) {
      if (f.length < ETH_HLEN + 40 || f.readUInt16BE(12) !== 0x86dd || f[ETH_HLEN + 6] !== PROTO.sctp) continue;
      const p = parsePacket6(f);
      if (match(p)) return p;
    }
  }
  return null;
}

function payloadOf(sctpPayloadLen: number, seed: number): Buffer {
  const b = Buffer.alloc(sctpPayloadLen);
  for (let i = 0; i < b.length; i++) b[i] = (i * 31 + seed) & 0xff;
  return b;
}

beforeAll(async () => {
  Xlb.reset(INSTANCE);
  lab = await Lab.create({ prefix: L.prefix, ipv6: true });
  x = Xlb.open(INSTANCE);
  for (const vm of ['vm1', 'vm2', 'vm3'] as const) sock[vm] = n.packetOpen(L.vms[vm].ns, 'eth0');
  insideMac = bridgeMac('xlb-inside');
  dmzMac = bridgeMac('xlb-dmz');
});

afterAll(async () => {
  for (const s of Object.values(sock)) if (s) n.packetClose(s.fd);
  x?.close();
  Xlb.reset(INSTANCE);
  rmSync(INSTANCE.stateDir, { recursive: true, force: true });
  await lab?.destroy();
});

/** One request from vm3 and, when it arrives, the backend's reply back to vm3. */
async function roundTrip(dst: string, dport: number, backend: 'vm1' | 'vm2', backendPort: number, size: number, sport: number) {
  const payload = payloadOf(size, sport);
  n.packetSend(sock.vm3!.fd, frame('vm3', insideMac, dst, sport, dport, payload));
  const got = await receive(backend, (p) => p.sport === sport);
  if (!got) return { got: null, reply: null, payload };
  n.packetSend(sock[backend]!.fd, frame(backend, dmzMac, L.vms.vm3.ip, backendPort, sport, payloadOf(size, sport + 1)));
  const reply = await receive('vm3', (p) => p.dport === sport);
  return { got, reply, payload };
}

describe.each(['tc', 'xdp'] as const)('SCTP through xlb on the %s hook', (hook) => {
  beforeAll(() => {
    x.apply(config(hook));
  });

  it.each([[8], [333], [1400]])('a VIP with a port: the backend gets its port with a valid CRC, the reply comes from the VIP (%i bytes)', async (size) => {
    const sport = 50000 + size + (hook === 'xdp' ? 5000 : 0);
    const { got, reply, payload } = await roundTrip(VIP, VIP_PORT, 'vm1', BACKEND_PORT, size, sport);
    expect(got, 'request reached vm1').not.toBeNull();
    expect(got!.src).toBe(L.vms.vm3.ip); // the client's own address
    expect(got!.dst).toBe(L.vms.vm1.ip);
    expect(got!.dport).toBe(BACKEND_PORT);
    expect(got!.l4CsumOk, 'CRC32c at the backend').toBe(true);
    expect(got!.ipCsumOk).toBe(true);
    expect(got!.l4.subarray(28, 28 + size)).toEqual(payload);
    expect(reply, 'reply reached vm3').not.toBeNull();
    expect(reply!.src).toBe(VIP);
    expect(reply!.sport).toBe(VIP_PORT);
    expect(reply!.l4CsumOk, 'CRC32c at the client').toBe(true);
  });

  it('an IP-only VIP matches SCTP: ports kept, CRC untouched and valid, the reply from the VIP', async () => {
    const sport = hook === 'tc' ? 51001 : 51002;
    const { got, reply } = await roundTrip(IP_ONLY, 7777, 'vm2', 7777, 200, sport);
    expect(got).not.toBeNull();
    expect(got!.dst).toBe(L.vms.vm2.ip);
    expect(got!.dport).toBe(7777);
    expect(got!.l4CsumOk).toBe(true);
    expect(reply).not.toBeNull();
    expect(reply!.src).toBe(IP_ONLY);
    expect(reply!.l4CsumOk).toBe(true);
  });

  it('IPv6 through an IP-only VIP: the backend gets the packet with its CRC valid, the reply comes from the VIP', async () => {
    const sport = hook === 'tc' ? 53001 : 53002;
    const payload = payloadOf(900, sport);
    const req = buildPacket6({ src: L.vms.vm3.ip6, dst: L.vip6IpOnly, proto: 'sctp', sport, dport: VIP_PORT, payload });
    insideMac.copy(req, 0);
    sock.vm3!.mac.copy(req, 6);
    n.packetSend(sock.vm3!.fd, req);
    const got = await receive6('vm1', (p) => p.sport === sport);
    expect(got, 'request reached vm1').not.toBeNull();
    expect(got!.src).toBe(L.vms.vm3.ip6);
    expect(got!.dst).toBe(L.vms.vm1.ip6);
    expect(got!.dport).toBe(VIP_PORT);
    expect(got!.l4CsumOk).toBe(true);
    expect(got!.l4.subarray(28, 28 + payload.length)).toEqual(payload);
    const reply = buildPacket6({ src: L.vms.vm1.ip6, dst: L.vms.vm3.ip6, proto: 'sctp', sport: VIP_PORT, dport: sport, payload });
    dmzMac.copy(reply, 0);
    sock.vm1!.mac.copy(reply, 6);
    n.packetSend(sock.vm1!.fd, reply);
    const back = await receive6('vm3', (p) => p.dport === sport);
    expect(back, 'reply reached vm3').not.toBeNull();
    expect(back!.src).toBe(L.vip6IpOnly);
    expect(back!.sport).toBe(VIP_PORT);
    expect(back!.l4CsumOk).toBe(true);
  });

  it('`xlb show` lists the SCTP VIP with its traffic', async () => {
    const v = x.show().vips.find((v) => v.vip === `${VIP}:${VIP_PORT}`)!;
    expect(v.protocol).toBe('sctp');
    expect(v.stats.newConns).toBeGreaterThanOrEqual(3n);
    expect(v.stats.replyPackets).toBeGreaterThanOrEqual(3n);
    expect((await cli(INSTANCE, 'show')).stdout).toContain(`${VIP}:${VIP_PORT}/sctp (lb diameter`);
  });
});

describe('SCTP at the CRC length limit (tc; jumbo MTU on the whole path)', () => {
  beforeAll(() => {
    // tc first: native XDP on a veth caps its peer's MTU at a page.
    x.apply(config('tc'));
    for (const [ns, dev] of [
      [L.vms.vm3.ns, 'eth0'],
      [L.hv, L.vms.vm3.hostIf],
      [L.hv, 'xlb-inside'],
      [L.vms.vm1.ns, 'eth0'],
      [L.hv, L.vms.vm1.hostIf],
      [L.hv, 'xlb-dmz'],
    ]) nsExec(ns, 'ip', ['link', 'set', 'dev', dev, 'mtu', String(BIG_MTU)]);
  });

  it('a 16,000-byte SCTP packet is rewritten with a valid CRC', async () => {
    // SCTP length = 12 (common header) + 16 (DATA chunk header) + payload.
    const { got, reply } = await roundTrip(VIP, VIP_PORT, 'vm1', BACKEND_PORT, 16000 - 28, 52000);
    expect(got).not.toBeNull();
    expect(got!.l4.length).toBe(16000);
    expect(got!.dport).toBe(BACKEND_PORT);
    expect(got!.l4CsumOk).toBe(true);
    expect(reply).not.toBeNull();
    expect(reply!.l4CsumOk).toBe(true);
  });

  it('one longer than 16 KiB whose port must change is dropped and counted, not sent with a stale CRC', async () => {
    const before = x.show().counters.sctp_too_long;
    const { got } = await roundTrip(VIP, VIP_PORT, 'vm1', BACKEND_PORT, 17000, 52001);
    expect(got).toBeNull();
    expect(x.show().counters.sctp_too_long - before).toBe(1n);
  });
});
