import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { validateConfig } from '../src/config.js';
import { compile } from '../src/compile.js';
import { XLB } from '../src/layout.js';
import { OvsdbClient } from '../src/ovsdb/client.js';
import { OvnSource, type OvnLogger } from '../src/sources/ovn.js';
import type { StateFragment } from '../src/sources/types.js';
import { NB_SCHEMA, TestOvsdbServer, VSWITCH_SCHEMA, nbctl, vsctl } from './helpers/ovsdb-server.js';

const tuning = { backoffInitialMs: 50, backoffMaxMs: 400, connectTimeoutMs: 1000, requestTimeoutMs: 3000, echoIntervalMs: 1000, echoTimeoutMs: 2000 };

describe('OvnSource against real NB and Open_vSwitch databases', () => {
  const nb = new TestOvsdbServer('nb', NB_SCHEMA);
  const ovs = new TestOvsdbServer('ovs', VSWITCH_SCHEMA);
  const warnings: string[] = [];
  const logger: OvnLogger = {
    debug() {},
    info() {},
    warn: (_o, msg) => warnings.push(msg),
    error: (_o, msg) => warnings.push(`ERROR ${msg}`),
  };
  let source: OvnSource;
  let changes = 0;
  let lastChangeAt = 0;

  const frag = (): StateFragment => source.current();
  const lb = (name: string): Record<string, unknown> | undefined => frag().load_balancers.find((l) => l.name === name);
  const ls = (name: string): Record<string, unknown> | undefined => frag().logical_switches.find((l) => l.name === name);
  const lr = (name: string): Record<string, unknown> | undefined => frag().logical_routers.find((l) => l.name === name);
  /** Waits for `pred` on the fragment; returns ms from `t0` to the change that made it true. */
  async function until(pred: () => boolean, what: string, t0 = Date.now(), ms = 2000): Promise<number> {
    while (!pred()) {
      if (Date.now() - t0 > ms) throw new Error(`timed out after ${ms} ms waiting for ${what}; fragment: ${JSON.stringify(frag())}`);
      await new Promise((r) => setTimeout(r, 5));
    }
    return lastChangeAt - t0;
  }

  beforeAll(async () => {
    await Promise.all([nb.start(), ovs.start()]);
    await vsctl(ovs, 'init');
    await vsctl(ovs, 'set', 'Open_vSwitch', '.', 'external_ids:system-id=chassis1', 'external_ids:ovn-bridge-mappings=physnet1:br-ex,physnet2:br-none');
    await vsctl(ovs, 'add-br', 'br-int', '--', 'add-br', 'br-ex', '--', 'add-port', 'br-ex', 'eth-ext');
    source = new OvnSource({ nbRemote: nb.unixRemote, ovsRemote: ovs.tcpRemote, debounceMs: 20, startTimeoutMs: 3000, ovsdb: tuning, logger });
    source.onChange(() => {
      changes++;
      lastChangeAt = Date.now();
    });
    await source.start();
  });
  afterAll(async () => {
    await source?.stop();
    await Promise.all([nb.destroy(), ovs.destroy()]);
  });

  it('starts with the empty state', () => {
    expect(frag()).toEqual({ load_balancers: [], logical_switches: [], logical_routers: [] });
  });

  it('mirrors lb-add / ls-add / ls-lb-add / lsp-add + a bound interface, fast', async () => {
    await nbctl(nb, 'lb-add', 'lb1', '172.16.255.62:8000', '172.16.255.130:8000,172.16.255.131:8000', 'tcp');
    await until(() => lb('lb1') !== undefined, 'lb1');
    await nbctl(nb, 'ls-add', 'inside');
    await until(() => ls('inside') !== undefined, 'switch inside');
    expect(ls('inside')).toEqual({ name: 'inside', ports: [], load_balancer: [] }); // no local port yet
    await nbctl(nb, 'lsp-add', 'inside', 'vm3');
    await vsctl(ovs, 'add-port', 'br-int', 'xlb-vm3-h', '--', 'set', 'Interface', 'xlb-vm3-h', 'external_ids:iface-id=vm3', 'type=internal');
    await until(() => (ls('inside')?.ports as string[]).length === 1, 'port binding');
    const t0 = Date.now();
    await nbctl(nb, 'ls-lb-add', 'inside', 'lb1');
    const latency = await until(() => (ls('inside')?.load_balancer as string[]).includes('lb1'), 'ls-lb-add', t0);
    console.log(`NB → fragment latency (ovn-nbctl ls-lb-add incl. process start → onChange): ${latency} ms`);
    expect(latency).toBeLessThanOrEqual(2000);
    expect(frag()).toEqual({
      load_balancers: [{ name: 'lb1', protocol: 'tcp', vips: { '172.16.255.62:8000': '172.16.255.130:8000,172.16.255.131:8000' }, options: {}, selection_fields: [] }],
      logical_switches: [{ name: 'inside', ports: ['xlb-vm3-h'], load_balancer: ['lb1'] }],
      logical_routers: [],
    });
    expect(() => validateConfig(frag())).not.toThrow();
  });

  it('asks for the XDP hook on interfaces of a userspace (netdev) bridge, which AF_PACKET reads before tc', async () => {
    await vsctl(ovs, 'set', 'Bridge', 'br-int', 'datapath_type=netdev');
    await until(() => typeof (ls('inside')?.ports as unknown[])[0] === 'object', 'netdev port');
    expect(ls('inside')?.ports).toEqual([{ interface: 'xlb-vm3-h', hook: 'xdp' }]);
    expect(validateConfig(frag()).logical_switches[0].ports[0].hook).toBe('xdp');
    await vsctl(ovs, 'set', 'Bridge', 'br-int', 'datapath_type=system');
    await until(() => (ls('inside')?.ports as unknown[])[0] === 'xlb-vm3-h', 'system port');
  });

  it('turns a burst of NB updates into one change', async () => {
    const c = new OvsdbClient({ remote: nb.unixRemote, database: 'OVN_Northbound', ...tuning });
    c.start();
    await c.ready(2000);
    const before = changes;
    await Promise.all(
      [1, 2, 3, 4, 5].map((i) => c.transact([{ op: 'insert', table: 'Load_Balancer', row: { name: `burst${i}`, protocol: 'udp', vips: ['map', [[`10.9.0.${i}:53`, `10.9.1.${i}:53`]]] } }])),
    );
    await until(() => lb('burst5') !== undefined && lb('burst1') !== undefined, 'burst');
    await new Promise((r) => setTimeout(r, 60));
    expect(changes - before).toBe(1);
    await c.transact([{ op: 'delete', table: 'Load_Balancer', where: [['protocol', '==', 'udp']] }]);
    await c.stop();
    await until(() => lb('burst1') === undefined, 'burst cleanup');
  });

  it('follows Load_Balancer_Group attached to a switch', async () => {
    await nbctl(nb, 'lb-add', 'lb2', '172.16.255.70:80', '172.16.255.140:80', 'tcp');
    const g = (await nbctl(nb, 'create', 'Load_Balancer_Group', 'name=g1')).trim();
    const lb2 = (await nbctl(nb, '--bare', '--columns=_uuid', 'find', 'Load_Balancer', 'name=lb2')).trim();
    await nbctl(nb, 'add', 'Load_Balancer_Group', g, 'load_balancer', lb2);
    await nbctl(nb, 'add', 'Logical_Switch', 'inside', 'load_balancer_group', g);
    await until(() => (ls('inside')?.load_balancer as string[]).join() === 'lb1,lb2', 'group member');
    expect(() => validateConfig(frag())).not.toThrow();
    await nbctl(nb, 'remove', 'Logical_Switch', 'inside', 'load_balancer_group', g);
    await until(() => (ls('inside')?.load_balancer as string[]).join() === 'lb1', 'group detached');
  });

  it('skips an sctp load balancer and one with an invalid backend, with warnings naming them', async () => {
    await nbctl(nb, 'lb-add', 'lbs', '172.16.255.80:80', '172.16.255.150:80', 'sctp');
    // ovn-nbctl lb-add refuses a bad address: write the row directly.
    await nbctl(nb, 'create', 'Load_Balancer', 'name=bad', 'protocol=tcp', 'vips:"172.16.255.90:80"="172.16.255.300:80"');
    await nbctl(nb, 'ls-lb-add', 'inside', 'bad');
    await nbctl(nb, 'set', 'Load_Balancer', 'lb1', 'options:hairpin_snat_ip=not-an-ip', 'options:ovn_future_knob=1', 'options:reject=true');
    await until(() => (lb('lb1')?.options as Record<string, string>).reject === 'true', 'lb1 options');
    expect(lb('lbs')).toBeUndefined();
    expect(lb('bad')).toBeUndefined();
    expect(ls('inside')?.load_balancer).toEqual(['lb1']);
    expect(lb('lb1')?.options).toEqual({ reject: 'true' });
    expect(warnings).toContain('load balancer "lbs" skipped: protocol sctp is not supported by xlb yet');
    expect(warnings.find((w) => w.startsWith('load balancer "bad" skipped: ') && w.includes('172.16.255.300'))).toBeDefined();
    expect(warnings.find((w) => w.startsWith('load balancer "lb1": option ovn_future_knob="1" ignored: ') && w.includes('unknown option'))).toBeDefined();
    expect(warnings.find((w) => w.startsWith('load balancer "lb1": option hairpin_snat_ip="not-an-ip" ignored'))).toBeDefined();
    expect(source.warnings().length).toBeGreaterThanOrEqual(4);
    expect(() => validateConfig(frag())).not.toThrow();
    const n = warnings.length;
    await nbctl(nb, 'lb-add', 'lb1', '172.16.255.62:8001', '172.16.255.130:8001', 'tcp'); // another rebuild
    await until(() => Object.keys(lb('lb1')?.vips as object).length === 2, 'rebuild');
    expect(warnings.length).toBe(n); // each warning is logged once
    await nbctl(nb, 'lb-del', 'lbs', '--', 'lb-del', 'bad', '--', 'remove', 'Load_Balancer', 'lb1', 'options', 'hairpin_snat_ip', 'ovn_future_knob');
  });

  it('passes IPv6 VIPs through as OVN writes them, and skips a load balancer mixing v4 and v6', async () => {
    await nbctl(nb, 'lb-add', 'lb6', '[fd00::1]:80', '[fd00:1::1]:8080,[fd00:1::2]:8080', 'tcp');
    await nbctl(nb, 'lb-add', 'lb6', 'fd00::2', 'fd00:1::9');
    await nbctl(nb, 'create', 'Load_Balancer', 'name=mixed6', 'protocol=tcp', 'vips:"[fd00::3]:80"="10.0.0.1:80"');
    await nbctl(nb, 'ls-lb-add', 'inside', 'lb6');
    await until(
      () => Object.keys((lb('lb6')?.vips as object | undefined) ?? {}).length === 2 && (ls('inside')?.load_balancer as string[]).includes('lb6'),
      'lb6 on inside',
    );
    expect(lb('lb6')?.vips).toEqual({ '[fd00::1]:80': '[fd00:1::1]:8080,[fd00:1::2]:8080', 'fd00::2': 'fd00:1::9' });
    await until(() => warnings.some((w) => w.startsWith('load balancer "mixed6" skipped: ')), 'mixed6 warning');
    expect(lb('mixed6')).toBeUndefined();
    expect(warnings.find((w) => w.startsWith('load balancer "mixed6" skipped: ') && w.includes('mixed address families'))).toBeDefined();
    expect(() => validateConfig(frag())).not.toThrow();
    await nbctl(nb, 'ls-lb-del', 'inside', 'lb6', '--', 'lb-del', 'lb6', '--', 'lb-del', 'mixed6');
    await until(() => lb('lb6') === undefined, 'lb6 removed');
  });

  it('skips objects whose names xlb refuses, never sanitizing them', async () => {
    await nbctl(nb, 'ls-add', 'sw with space');
    await nbctl(nb, 'ls-add', 'ok-sw');
    await until(() => ls('ok-sw') !== undefined, 'ok-sw');
    expect(frag().logical_switches.map((s) => s.name)).toEqual(['inside', 'ok-sw']);
    expect(warnings.find((w) => w.startsWith('logical switch "sw with space" skipped: '))).toBeDefined();
    await nbctl(nb, 'ls-del', 'sw with space', '--', 'ls-del', 'ok-sw');
  });

  it('maps a gateway router port through localnet → bridge mappings → physical port, with NAT', async () => {
    await nbctl(nb, 'lr-add', 'edge1', '--', 'set', 'Logical_Router', 'edge1', 'options:chassis=chassis1', 'options:always_learn_from_arp_request=false', 'options:ovn_knob=x');
    await nbctl(nb, 'lrp-add', 'edge1', 'lr-ext', '00:00:00:00:FF:01', '172.16.254.1/24', 'fd00::1/64');
    await nbctl(nb, 'lrp-add', 'edge1', 'lr-int', '00:00:00:00:ff:02', '10.0.0.1/24');
    await nbctl(nb, 'ls-add', 'ext');
    await nbctl(nb, 'lsp-add', 'ext', 'ext-lr', '--', 'lsp-set-type', 'ext-lr', 'router', '--', 'lsp-set-addresses', 'ext-lr', 'router', '--', 'lsp-set-options', 'ext-lr', 'router-port=lr-ext');
    await nbctl(nb, 'lsp-add', 'ext', 'ln-ext', '--', 'lsp-set-type', 'ln-ext', 'localnet', '--', 'lsp-set-addresses', 'ln-ext', 'unknown', '--', 'lsp-set-options', 'ln-ext', 'network_name=physnet1');
    await nbctl(nb, 'lr-nat-add', 'edge1', 'snat', '172.16.254.1', '10.0.0.0/24');
    await nbctl(nb, 'lr-lb-add', 'edge1', 'lb1');
    // A second gateway router whose physical network has no bridge here.
    await nbctl(nb, 'lr-add', 'edge2', '--', 'set', 'Logical_Router', 'edge2', 'options:chassis=chassis1');
    await nbctl(nb, 'lrp-add', 'edge2', 'lr2-ext', '00:00:00:00:ff:03', '172.16.253.1/24');
    await nbctl(nb, 'ls-add', 'ext2');
    await nbctl(nb, 'lsp-add', 'ext2', 'ext2-lr', '--', 'lsp-set-type', 'ext2-lr', 'router', '--', 'lsp-set-options', 'ext2-lr', 'router-port=lr2-ext');
    await nbctl(nb, 'lsp-add', 'ext2', 'ln-ext2', '--', 'lsp-set-type', 'ln-ext2', 'localnet', '--', 'lsp-set-options', 'ln-ext2', 'network_name=physnet2');
    await until(() => (lr('edge1')?.load_balancer as string[] | undefined)?.length === 1 && lr('edge2') !== undefined && source.warnings().some((w) => w.startsWith('logical router "edge2" port "lr2-ext"')), 'routers');
    expect(lr('edge1')).toEqual({
      name: 'edge1',
      ports: [{ name: 'lr-ext', interface: 'eth-ext', mac: '00:00:00:00:FF:01', networks: ['172.16.254.1/24'] }],
      load_balancer: ['lb1'],
      options: { chassis: 'chassis1', always_learn_from_arp_request: 'false' },
      nat: [{ type: 'snat', external_ip: '172.16.254.1', logical_ip: '10.0.0.0/24' }],
    });
    expect(lr('edge2')?.ports).toEqual([]);
    expect(warnings).toContain('logical router "edge2" port "lr2-ext" left out: bridge "br-none" (for physical network "physnet2") does not exist on this host');
    expect(ls('ext')).toEqual({ name: 'ext', ports: [], load_balancer: [] });
    expect(() => validateConfig(frag())).not.toThrow();
    // Bound to another chassis: its ports leave.
    await nbctl(nb, 'set', 'Logical_Router', 'edge1', 'options:chassis=chassis2');
    await until(() => (lr('edge1')?.ports as unknown[]).length === 0, 'rebind');
  });

  it('mirrors what source NAT needs: lb_force_snat_ip, skip_snat / hairpin_snat_ip, NAT rows, port addresses', async () => {
    await nbctl(nb, 'set', 'Logical_Router', 'edge1', 'options:chassis=chassis1', 'options:lb_force_snat_ip=router_ip');
    await nbctl(nb, 'set', 'Load_Balancer', 'lb1', 'options:skip_snat=true', 'options:hairpin_snat_ip="172.16.255.100 fd00::100"');
    await nbctl(nb, 'lr-nat-add', 'edge1', 'dnat_and_snat', '172.16.254.10', '10.0.0.10');
    await nbctl(nb, 'lsp-set-addresses', 'vm3', '00:00:00:00:00:03 172.16.255.194');
    await until(
      () => (lr('edge1')?.nat as unknown[]).length === 2 && (lb('lb1')?.options as Record<string, string>).skip_snat === 'true' && typeof (ls('inside')?.ports as unknown[])[0] === 'object',
      'source NAT columns',
    );
    expect(lr('edge1')?.options).toEqual({ chassis: 'chassis1', always_learn_from_arp_request: 'false', lb_force_snat_ip: 'router_ip' });
    expect(lr('edge1')?.nat).toEqual([
      { type: 'dnat_and_snat', external_ip: '172.16.254.10', logical_ip: '10.0.0.10' },
      { type: 'snat', external_ip: '172.16.254.1', logical_ip: '10.0.0.0/24' },
    ]);
    expect(lb('lb1')?.options).toEqual({ reject: 'true', skip_snat: 'true', hairpin_snat_ip: '172.16.255.100 fd00::100' });
    expect(ls('inside')?.ports).toEqual([{ interface: 'xlb-vm3-h', addresses: ['00:00:00:00:00:03 172.16.255.194'] }]);

    // Into the data plane's terms: skip_snat exempts lb1 on edge1; hairpin uses the IPv4 of hairpin_snat_ip.
    let c = compile(validateConfig(frag()));
    const onEdge = (): typeof c.entries => c.entries.filter((e) => e.scope === c.ids.scopes['router edge1']);
    expect(onEdge().length).toBeGreaterThan(0);
    expect(onEdge().every((e) => (e.flags & (XLB.VIP_F_SNAT_ADDR | XLB.VIP_F_SNAT_BACKEND | XLB.VIP_F_SNAT_CLIENT)) === 0)).toBe(true);
    expect(c.entries.every((e) => e.hairpinAddr === 0xac10ff64)).toBe(true);

    // Without skip_snat: router_ip per backend (no port network holds them here: the first port's address, with a warning).
    await nbctl(nb, 'remove', 'Load_Balancer', 'lb1', 'options', 'skip_snat');
    await until(() => (lb('lb1')?.options as Record<string, string>).skip_snat === undefined, 'skip_snat removed');
    c = compile(validateConfig(frag()));
    expect(onEdge().every((e) => e.flags & XLB.VIP_F_SNAT_BACKEND)).toBe(true);
    expect(c.snat.every((e) => e.kind === XLB.SNAT_K_BACKEND && e.snat === 0xac10fe01)).toBe(true);
    expect(c.warnings.some((w) => w.startsWith('router edge1: backend 172.16.255.130:8000'))).toBe(true);

    // An IPv6 lb_force_snat_ip is not mirrored, with a warning naming it.
    await nbctl(nb, 'set', 'Logical_Router', 'edge1', 'options:lb_force_snat_ip=fd00::1');
    await until(() => (lr('edge1')?.options as Record<string, string>).lb_force_snat_ip === undefined, 'v6 force snat dropped');
    expect(warnings.find((w) => w.startsWith('logical router "edge1": option lb_force_snat_ip="fd00::1" ignored: ') && w.includes('IPv6'))).toBeDefined();
    await nbctl(nb, 'remove', 'Logical_Router', 'edge1', 'options', 'lb_force_snat_ip', '--', 'remove', 'Load_Balancer', 'lb1', 'options', 'hairpin_snat_ip');
  });

  it('lb-del removes the load balancer and its references', async () => {
    await nbctl(nb, 'lb-del', 'lb1');
    await until(() => lb('lb1') === undefined, 'lb-del');
    expect(ls('inside')?.load_balancer).toEqual([]);
    expect(lr('edge1')?.load_balancer).toEqual([]);
    expect(() => validateConfig(frag())).not.toThrow();
  });

  it('survives an NB restart: full resync, then further updates', async () => {
    await nb.stop();
    await nb.start();
    await nbctl(nb, 'lb-add', 'lb3', '172.16.255.99:80', '172.16.255.199:80', 'udp');
    await until(() => lb('lb3') !== undefined, 'lb3 after restart', Date.now(), 4000);
    expect(source.clients.nb?.connected).toBe(true);
    expect(warnings.some((w) => w.startsWith('lost OVN_Northbound at unix:'))).toBe(true);
    expect(warnings.filter((w) => w.startsWith('ERROR'))).toEqual([]);
  });
});
