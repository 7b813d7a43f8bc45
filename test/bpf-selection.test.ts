/**
 * Selection and affinity in the data plane (BPF_PROG_TEST_RUN): OVN's
 * selection_fields, affinity_timeout, and xlb's backend weights (0 = drain).
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { Dataplane } from '../src/dataplane.js';
import { compile, type Compiled } from '../src/compile.js';
import { validateConfig } from '../src/config.js';
import { applyCompiled } from '../src/writer.js';
import { LAYOUT } from '../src/layout.js';
import { buildPacket, parsePacket, TCP_FLAGS, type PacketSpec } from './helpers/packet.js';
import { closeAndUnpin } from './helpers/bpf.js';
import { ct4Clear } from './helpers/ct.js';

const PIN_ROOT = `/sys/fs/bpf/xlb-test-sel-${process.pid}`;
const IFINDEX = 1;
const B = ['10.1.0.1', '10.1.0.2', '10.1.0.3', '10.1.0.4'];
const pool = (port: number): string => B.map((b) => `${b}:${port}`).join(',');

let dp: Dataplane;
let compiled: Compiled;

function configWith(weights: string | null, affinity: number): object {
  return {
    load_balancers: [
      { name: 'by-client', vips: { '10.0.0.1:80': pool(8080) }, selection_fields: ['ip_src'] },
      { name: 'by-dst-port', vips: { '10.0.0.1:81': pool(8081) }, selection_fields: ['ip_dst', 'tp_dst'] },
      { name: 'by-mac', vips: { '10.0.0.1:82': pool(8082) }, selection_fields: ['eth_src'] },
      { name: 'sticky', vips: { '10.0.0.2:80': pool(8080) }, options: { affinity_timeout: affinity } },
      {
        name: 'weighted',
        vips: { '10.0.0.3:80': pool(8080) },
        options: weights === null ? {} : { xlb_weights: weights },
      },
    ],
    logical_switches: [{ name: 'sw', ports: ['lo'], load_balancer: ['by-client', 'by-dst-port', 'by-mac', 'sticky', 'weighted'] }],
  };
}

function apply(weights: string | null, affinity = 1): void {
  compiled = compile(validateConfig(configWith(weights, affinity)), compiled?.ids);
  applyCompiled(dp.store(), compiled, new Map([['lo', IFINDEX]]), compiled.ids);
}

function send(spec: Omit<PacketSpec, 'proto'>): ReturnType<typeof parsePacket> {
  const r = dp.native.progTestRun(dp.progs.xlb_xdp_ingress, { data: buildPacket({ proto: 'tcp', ...spec }), ifindex: IFINDEX });
  return parsePacket(r.data);
}

function clearAffinity(): void {
  const ks = LAYOUT.xlb_affinity4_key.size;
  const d = dp.native.mapDump(dp.maps.xlb_affinity4, ks, LAYOUT.xlb_affinity4_val.size);
  for (let i = 0; i < d.count; i++) dp.native.mapDelete(dp.maps.xlb_affinity4, d.keys.subarray(i * ks, (i + 1) * ks));
}

beforeAll(() => {
  dp = Dataplane.open({ pinRoot: PIN_ROOT });
  apply(null);
});

afterAll(() => closeAndUnpin(dp, PIN_ROOT));

beforeEach(() => {
  ct4Clear(dp);
  clearAffinity();
});

describe('selection_fields', () => {
  it('ip_src: every connection from one client lands on one backend; clients spread', () => {
    const perClient = new Map<string, Set<string>>();
    for (let c = 1; c <= 24; c++) {
      const src = `192.168.3.${c}`;
      const seen = new Set<string>();
      for (let port = 30000; port < 30010; port++) seen.add(send({ src, dst: '10.0.0.1', sport: port, dport: 80 }).dst);
      perClient.set(src, seen);
    }
    for (const seen of perClient.values()) expect(seen.size).toBe(1);
    const all = new Set([...perClient.values()].flatMap((s) => [...s]));
    expect(all.size).toBeGreaterThan(1);
  });

  it('ip_dst + tp_dst: the same VIP and port always pick the same backend, whoever asks', () => {
    const seen = new Set<string>();
    for (let c = 1; c <= 20; c++) seen.add(send({ src: `192.168.4.${c}`, dst: '10.0.0.1', sport: 40000 + c, dport: 81 }).dst);
    expect(seen.size).toBe(1);
  });

  it('eth_src: every flow from one MAC lands on one backend, whatever its addresses', () => {
    const seen = new Set<string>();
    for (let c = 1; c <= 20; c++) seen.add(send({ src: `192.168.11.${c}`, dst: '10.0.0.1', sport: 45000 + c, dport: 82 }).dst);
    expect(seen.size).toBe(1);
  });

  it('the default (5-tuple) spreads one client over the backends', () => {
    const seen = new Set<string>();
    for (let port = 31000; port < 31040; port++) seen.add(send({ src: '192.168.3.1', dst: '10.0.0.3', sport: port, dport: 80 }).dst);
    expect(seen.size).toBe(B.length);
  });
});

describe('affinity_timeout', () => {
  it('new connections of a client follow its first one while they keep coming', () => {
    const first = send({ src: '192.168.5.1', dst: '10.0.0.2', sport: 32000, dport: 80 }).dst;
    for (let port = 32001; port < 32030; port++) {
      expect(send({ src: '192.168.5.1', dst: '10.0.0.2', sport: port, dport: 80 }).dst).toBe(first);
    }
    // Another client is not bound by it.
    const others = new Set<string>();
    for (let c = 2; c < 40; c++) others.add(send({ src: `192.168.5.${c}`, dst: '10.0.0.2', sport: 32000, dport: 80 }).dst);
    expect(others.size).toBeGreaterThan(1);
  });

  it('expires: a client returning after the timeout is re-balanced, not pinned', async () => {
    const picks = new Set<string>();
    for (let round = 0; round < 6; round++) {
      picks.add(send({ src: '192.168.6.1', dst: '10.0.0.2', sport: 34000 + round * 7, dport: 80 }).dst);
      await new Promise((r) => setTimeout(r, 1100));
    }
    // Six independent hash picks over four backends: all equal has probability (1/4)^5.
    expect(picks.size).toBeGreaterThan(1);
  });
});

describe('weights and drain', () => {
  it('weights shape the shares of new connections', () => {
    apply(`${B[0]}:8080=3,${B[1]}:8080=1,${B[2]}:8080=1,${B[3]}:8080=1`);
    const counts = new Map<string, number>();
    for (let i = 0; i < 600; i++) {
      const d = send({ src: `192.168.${7 + (i >> 8)}.${i & 0xff}`, dst: '10.0.0.3', sport: 35000 + i, dport: 80 }).dst;
      counts.set(d, (counts.get(d) ?? 0) + 1);
    }
    const heavy = counts.get(B[0]) ?? 0;
    // Expected 300 of 600 (3/6); the others 100 each.
    expect(heavy).toBeGreaterThan(240);
    expect(heavy).toBeLessThan(360);
    for (const b of B.slice(1)) expect(counts.get(b) ?? 0).toBeGreaterThan(50);
  });

  it('weight 0 drains: no new connections, established ones continue', () => {
    apply(null);
    const flows: Array<{ sport: number; dst: string }> = [];
    for (let i = 0; i < 40; i++) flows.push({ sport: 36000 + i, dst: send({ src: '192.168.9.1', dst: '10.0.0.3', sport: 36000 + i, dport: 80 }).dst });
    const onB0 = flows.filter((f) => f.dst === B[0]);
    expect(onB0.length).toBeGreaterThan(0);
    apply(`${B[0]}:8080=0`);
    for (const f of onB0) {
      expect(send({ src: '192.168.9.1', dst: '10.0.0.3', sport: f.sport, dport: 80, tcpFlags: TCP_FLAGS.ack }).dst).toBe(B[0]);
    }
    for (let i = 0; i < 100; i++) {
      expect(send({ src: '192.168.10.1', dst: '10.0.0.3', sport: 37000 + i, dport: 80 }).dst).not.toBe(B[0]);
    }
    apply(null);
  });
});
