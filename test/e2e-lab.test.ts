/**
 * End to end, with real traffic between network namespaces (the seed lab):
 * curl through the VIP, a long-lived TCP connection across pool changes, UDP,
 * both hooks, and detaching. The host ends of the veths have tx checksum
 * offload off, so partial checksums are finished in software after xlb's NAT
 * and a wrong seed breaks the connection; the "full checksum" variant also
 * turns offload off inside the VMs, so xlb rewrites complete checksums.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BACKENDS, Lab, LAB, LAB_INSTANCE, labConfig, type VmName } from '../src/lab.js';
import { Xlb } from '../src/xlb.js';
import { loadNative } from '../src/native.js';
import { TC_HANDLE, TC_PRIORITY } from '../src/dataplane.js';
import { nsNode, sleep, TIMEOUT_S } from './helpers/e2e.js';

const variants = [
  { hook: 'tc', vmTxOff: false, name: 'tc, partial checksums from the VMs' },
  { hook: 'tc', vmTxOff: true, name: 'tc, full checksums from the VMs' },
  { hook: 'xdp', vmTxOff: false, name: 'XDP, partial checksums from the VMs' },
  { hook: 'xdp', vmTxOff: true, name: 'XDP, full checksums from the VMs' },
] as const;

async function curlMany(lab: Lab, n: number): Promise<Map<string, number>> {
  const seen = new Map<string, number>();
  for (let i = 0; i < n; i++) {
    const body = (await lab.curl(TIMEOUT_S)) ?? 'FAILED';
    seen.set(body, (seen.get(body) ?? 0) + 1);
  }
  return seen;
}

describe.each(variants)('the seed lab with xlb on vm3\'s port ($name)', ({ hook, vmTxOff }) => {
  let lab: Lab;
  let x: Xlb;

  beforeAll(async () => {
    Xlb.reset(LAB_INSTANCE);
    lab = await Lab.create({ vmTxOff });
    x = Xlb.open(LAB_INSTANCE);
    const r = x.apply(labConfig(hook));
    expect(r.ifaces).toHaveLength(1);
    expect(r.ifaces[0].hook).toBe(hook);
  });

  afterAll(async () => {
    x?.close();
    Xlb.reset(LAB_INSTANCE);
    await lab?.destroy();
  });

  it('curl from vm3 to the VIP gets both backends over 20 requests, none failing', async () => {
    const seen = await curlMany(lab, 20);
    expect(seen.get('FAILED')).toBeUndefined();
    expect([...seen.keys()].sort()).toEqual(['i am vm1', 'i am vm2']);
    const vip = x.show().vips.find((v) => v.vip === `${LAB.vip}:${LAB.port}`)!;
    expect(vip.stats.newConns).toBeGreaterThanOrEqual(20n);
    expect(vip.stats.replyPackets).toBeGreaterThan(0n);
  });

  it('UDP through the VIP: answers come from the VIP address and both backends serve', async () => {
    const r = await nsNode(LAB.vms.vm3.ns, 'udp-client.mjs', [LAB.vip, String(LAB.udpVipPort), '20', String(TIMEOUT_S * 1000)]);
    expect(r.code).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines).toHaveLength(20);
    for (const l of lines) expect(l).toMatch(new RegExp(`^i am vm[12] ping \\d+ from ${LAB.vip.replace(/\./g, '\\.')}:${LAB.udpVipPort}$`));
    expect(new Set(lines.map((l) => l.slice(0, 8)))).toEqual(new Set(['i am vm1', 'i am vm2']));
  });

  it('one UDP flow of 30 exchanges is counted exactly: its established packets wait in its conntrack entries until the read', async () => {
    const key = `${LAB.vip}:${LAB.udpVipPort}`;
    const before = x.show().vips.find((v) => v.vip === key)!.stats;
    const r = await nsNode(LAB.vms.vm3.ns, 'udp-flow.mjs', [LAB.vip, String(LAB.udpVipPort), '30', String(TIMEOUT_S * 1000)]);
    expect(r.code).toBe(0);
    const flow = JSON.parse(r.stdout) as { sent: number; answered: number; from: string[] };
    expect(flow).toEqual({ sent: 30, answered: 30, from: [key] });
    // The first datagram is a new flow, the first answer confirms it: every later packet of
    // either direction counts in its entry (bpf/lib/stats.h), and show() folds them in.
    const after = x.show().vips.find((v) => v.vip === key)!.stats;
    expect(after.newConns - before.newConns).toBe(1n);
    expect(after.packets - before.packets).toBe(30n);
    expect(after.replyPackets - before.replyPackets).toBe(30n);
    expect(after.bytes - before.bytes).toBeGreaterThanOrEqual(30n * 42n); // Ethernet + IPv4 + UDP headers each
  });

  it('a long-lived TCP connection keeps its backend while the pool changes', async () => {
    const client = nsNode(LAB.vms.vm3.ns, 'tcp-client.mjs', [LAB.vip, String(LAB.tcpEchoVipPort), '30', '100'], 30);
    await sleep(400);
    // Change the pool under the running connection: shrink to each backend, then restore.
    const pools: VmName[][] = [['vm1'], ['vm2'], BACKENDS, ['vm2'], BACKENDS];
    for (const pool of pools) {
      x.apply(labConfig(hook, pool));
      await sleep(300);
    }
    const r = await client;
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const answers = r.stdout.trim().split('\n').slice(1);
    expect(answers).toHaveLength(30);
    const who = new Set(answers.map((a) => a.split(' line')[0]));
    expect(who.size).toBe(1);
    // New connections follow the pool as it is now.
    x.apply(labConfig(hook, ['vm2']));
    const seen = await curlMany(lab, 5);
    expect([...seen.keys()]).toEqual(['i am vm2']);
    x.apply(labConfig(hook));
  });

  it('detaching restores untouched pass-through', async () => {
    const n = loadNative();
    const r = x.apply({ load_balancers: [], logical_switches: [] });
    expect(r.detached).toEqual([`${LAB.hv}/${LAB.vms.vm3.hostIf}`]);
    const ifindex = n.ifNameToIndex(LAB.hv, LAB.vms.vm3.hostIf);
    for (const dir of ['ingress', 'egress'] as const) {
      let id: number | null = null;
      try {
        id = n.tcQuery(LAB.hv, ifindex, dir, TC_HANDLE, TC_PRIORITY);
      } catch {
        id = null; // EINVAL: no filter chain left at all
      }
      expect(id).toBeNull();
    }
    expect(n.xdpQuery(LAB.hv, ifindex).progId).toBe(0);
    // The VIP is nobody's address any more; the backends are reachable directly.
    expect(await lab.curl(TIMEOUT_S)).toBeNull();
    expect(await lab.curl(TIMEOUT_S, `${LAB.vms.vm1.ip}:${LAB.port}`)).toBe('i am vm1');
    const udp = await nsNode(LAB.vms.vm3.ns, 'udp-client.mjs', [LAB.vms.vm2.ip, String(LAB.udpPort), '2', String(TIMEOUT_S * 1000)]);
    expect(udp.stdout).toContain(`i am vm2 ping 0 from ${LAB.vms.vm2.ip}:${LAB.udpPort}`);
    // And serving again works.
    x.apply(labConfig(hook));
    expect(await lab.curl(TIMEOUT_S)).toMatch(/^i am vm[12]$/);
  });
});
