// Tests of compile(): desired state → map contents, with ids kept stable
// across applies. Pure; no root needed.
import { describe, it, expect } from 'vitest';
import { compile, EMPTY_IDS, type Compiled, type CompiledVip, type Ids } from '../src/compile.js';
import { DEFAULT_MAGLEV_SIZE, validateConfig, type DesiredState } from '../src/config.js';
import { AddrParseError, parseHostPort, parseIPv4 } from '../src/addr.js';

/** A configuration whose load balancers' VIP maps a test edits (a clone of one of the literals below). */
type EditableConfig = {
  load_balancers: Array<{ name: string; vips: Record<string, string> } & Record<string, unknown>>;
  logical_switches: Array<{ name: string; ports: string[]; load_balancer: string[] }>;
};
import { IPPROTO, XLB } from '../src/layout.js';

const VIP = '172.16.255.62:8000';
const B1 = '172.16.255.130:8000';
const B2 = '172.16.255.131:8000';

/** The lab-like example: lb1 (one VIP, two backends) on switch "inside" with one port. */
function lab(extra: { vips?: Record<string, string>; options?: Record<string, string> } = {}): DesiredState {
  return validateConfig({
    load_balancers: [
      { name: 'lb1', protocol: 'tcp', vips: extra.vips ?? { [VIP]: `${B1},${B2}` }, options: extra.options ?? {} },
    ],
    logical_switches: [{ name: 'inside', ports: ['xlb-vm3-h'], load_balancer: ['lb1'] }],
  });
}

/** n distinct backends "10.0.X.Y:80". */
function backends(n: number, base = 1): string[] {
  return Array.from({ length: n }, (_, i) => `10.0.${(base + i) >> 8}.${(base + i) & 255}:80`);
}

function vipByName(c: Compiled, name: string): CompiledVip {
  const v = c.vips.find((x) => x.name === name);
  if (!v) throw new Error(`no VIP ${name} in ${c.vips.map((x) => x.name).join(', ')}`);
  return v;
}

/** Slots per backend id (slots 1..M). */
function slotCounts(table: Uint32Array): Map<number, number> {
  const out = new Map<number, number>();
  for (let i = XLB.MAGLEV_FIRST_SLOT; i < table.length; i++) out.set(table[i]!, (out.get(table[i]!) ?? 0) + 1);
  return out;
}

/** Number of slots (1..M) whose backend *text* differs between two VIPs' tables. */
function changedSlots(a: CompiledVip, b: CompiledVip): number {
  const textA = new Map(a.backends.map((x) => [x.id, x.text]));
  const textB = new Map(b.backends.map((x) => [x.id, x.text]));
  expect(a.table.length).toBe(b.table.length);
  let n = 0;
  for (let i = XLB.MAGLEV_FIRST_SLOT; i < a.table.length; i++) {
    if (textA.get(a.table[i]!) !== textB.get(b.table[i]!)) n++;
  }
  return n;
}

describe('compile: the lab example', () => {
  const c = compile(lab());

  it('produces one VIP with its two backends and one interface', () => {
    expect(c.vips).toHaveLength(1);
    const v = c.vips[0]!;
    expect(v.name).toBe(`lb1 ${VIP}/tcp`);
    expect(v.lb).toBe('lb1');
    expect(v.vip).toBe(VIP);
    expect(v.addr).toBe(parseIPv4('172.16.255.62'));
    expect(v.port).toBe(8000);
    expect(v.proto).toBe(IPPROTO.tcp);
    expect(v.flags).toBe(0);
    expect(v.backends.map((b) => b.text)).toEqual([B1, B2]);
    expect(v.backends.map((b) => b.addr)).toEqual([parseIPv4('172.16.255.130'), parseIPv4('172.16.255.131')]);
    expect(v.backends.map((b) => b.port)).toEqual([8000, 8000]);
    expect(new Set(v.backends.map((b) => b.id)).size).toBe(2);
    for (const b of v.backends) expect(b.id).not.toBe(XLB.BACKEND_NONE);

    expect(c.ifaces).toEqual([
      {
        interface: 'xlb-vm3-h',
        netns: null,
        ifname: 'xlb-vm3-h',
        hook: 'auto',
        scope: c.ids.scopes['switch inside'],
        flags: XLB.IFACE_F_BALANCE,
        owner: 'switch inside',
      },
    ]);
    expect(c.entries).toEqual([
      { addr: v.addr, port: 8000, proto: 6, scope: c.ids.scopes['switch inside'], vipId: v.id, flags: 0, hashFields: 0, affinityTimeoutS: 0, snatAddr: 0, hairpinAddr: 0 },
    ]);
    expect(c.ids.vips).toEqual({ [v.name]: v.id });
    expect(Object.keys(c.ids.backends).sort()).toEqual([`${v.name} ${B1}`, `${v.name} ${B2}`]);
  });

  it('has a table of M+1 slots, slot 0 = M, every slot a backend of that VIP', () => {
    const v = c.vips[0]!;
    expect(DEFAULT_MAGLEV_SIZE).toBe(16381);
    expect(v.table).toBeInstanceOf(Uint32Array);
    expect(v.table.length).toBe(DEFAULT_MAGLEV_SIZE + 1);
    expect(v.table[XLB.MAGLEV_HDR_SLOT]).toBe(DEFAULT_MAGLEV_SIZE);
    const ids = new Set(v.backends.map((b) => b.id));
    for (let i = XLB.MAGLEV_FIRST_SLOT; i < v.table.length; i++) {
      if (!ids.has(v.table[i]!)) throw new Error(`slot ${i} holds ${v.table[i]}, not a backend id of ${v.name}`);
    }
  });

  it('gives each backend its fair share within 1%', () => {
    const v = c.vips[0]!;
    const counts = slotCounts(v.table);
    const fair = DEFAULT_MAGLEV_SIZE / v.backends.length;
    expect([...counts.keys()].sort()).toEqual(v.backends.map((b) => b.id).sort());
    for (const b of v.backends) expect(Math.abs(counts.get(b.id)! - fair)).toBeLessThanOrEqual(0.01 * fair);
  });

  it('is fair for many backends too', () => {
    const list = backends(7);
    const v = compile(lab({ vips: { [VIP]: list.join(',') } })).vips[0]!;
    const counts = slotCounts(v.table);
    const fair = DEFAULT_MAGLEV_SIZE / 7;
    expect(counts.size).toBe(7);
    for (const n of counts.values()) expect(Math.abs(n - fair)).toBeLessThanOrEqual(0.01 * fair);
  });

  it('is pure: the same input gives deep-equal output and the input is untouched', () => {
    const d = lab();
    const before = structuredClone(d);
    const prev: Ids = structuredClone(c.ids);
    const a = compile(d, prev);
    const b = compile(d, prev);
    expect(a).toEqual(b);
    expect(a).toEqual(c);
    expect(a.vips[0]!.table).not.toBe(b.vips[0]!.table);
    expect(d).toEqual(before);
    expect(prev).toEqual(c.ids);
    expect(compile(d)).toEqual(compile(d, EMPTY_IDS));
    expect(EMPTY_IDS).toEqual({ scopes: {}, vips: {}, backends: {} });
  });
});

describe('compile: scopes and attachment', () => {
  it('gives an LB attached to two switches one VIP entry per scope, sharing one VIP id and table', () => {
    const d = validateConfig({
      load_balancers: [{ name: 'lb1', vips: { [VIP]: `${B1},${B2}` } }],
      logical_switches: [
        { name: 'a', ports: ['veth-a'], load_balancer: ['lb1'] },
        { name: 'b', ports: ['ns1/veth-b', 'veth-c'], load_balancer: ['lb1'] },
      ],
    });
    const c = compile(d);
    expect(c.vips).toHaveLength(1);
    const v = c.vips[0]!;
    const sa = c.ids.scopes['switch a']!;
    const sb = c.ids.scopes['switch b']!;
    expect(sa).toBeGreaterThan(0);
    expect(sb).toBeGreaterThan(0);
    expect(sa).not.toBe(sb);
    expect(c.entries).toHaveLength(2);
    expect(c.entries.map((e) => e.scope).sort()).toEqual([sa, sb].sort());
    for (const e of c.entries) {
      expect(e.vipId).toBe(v.id);
      expect(e.addr).toBe(v.addr);
      expect(e.port).toBe(8000);
      expect(e.proto).toBe(6);
    }
    expect(c.ifaces.map((i) => [i.interface, i.netns, i.ifname, i.scope])).toEqual([
      ['veth-a', null, 'veth-a', sa],
      ['ns1/veth-b', 'ns1', 'veth-b', sb],
      ['veth-c', null, 'veth-c', sb],
    ]);
  });

  it('serves a router attachment like a switch one', () => {
    const d = validateConfig({
      load_balancers: [{ name: 'lb1', vips: { [VIP]: B1 } }],
      logical_routers: [
        {
          name: 'r1',
          ports: [{ name: 'rp1', interface: 'veth-r', mac: '02:00:00:00:00:01', networks: ['10.0.0.1/24'] }],
          load_balancer: ['lb1'],
        },
      ],
    });
    const c = compile(d);
    expect(c.vips).toHaveLength(1);
    expect(c.ifaces).toHaveLength(1);
    expect(c.ifaces[0]!.owner).toBe('router r1');
    expect(c.entries).toEqual([
      { addr: c.vips[0]!.addr, port: 8000, proto: 6, scope: c.ids.scopes['router r1'], vipId: c.vips[0]!.id, flags: 0, hashFields: 0, affinityTimeoutS: 0, snatAddr: 0, hairpinAddr: 0 },
    ]);
  });

  it('neighbor_responder: a router answers ARP for reachable VIPs by default, all, or none; switches never', () => {
    const d = validateConfig({
      load_balancers: [
        { name: 'near', vips: { '10.0.0.50:80': B1, '10.5.0.1:80': B1 } },
        { name: 'all', vips: { '10.6.0.1:80': B1 }, options: { neighbor_responder: 'all' } },
        { name: 'none', vips: { '10.0.1.60:80': B1 }, options: { neighbor_responder: 'none' } },
        { name: 'sw', vips: { '10.0.0.70:80': B1 }, options: { neighbor_responder: 'all' } },
      ],
      logical_switches: [{ name: 's1', ports: ['veth-s'], load_balancer: ['sw'] }],
      logical_routers: [
        {
          name: 'r1',
          ports: [
            { name: 'rp1', interface: 'veth-r', mac: '02:00:00:00:00:01', networks: ['10.0.0.1/24'] },
            { name: 'rp2', interface: 'veth-q', mac: '02:00:00:00:00:02', networks: ['10.0.1.1/24'] },
          ],
          load_balancer: ['near', 'all', 'none'],
        },
      ],
    });
    const c = compile(d);
    const r1 = c.ids.scopes['router r1'];
    // reachable: inside one of the router's networks (any port); all: every VIP; none: none.
    expect(c.neigh.map((n) => [n.addr, n.scope, n.owner]).sort()).toEqual(
      [
        [parseIPv4('10.0.0.50'), r1, 'router r1'],
        [parseIPv4('10.6.0.1'), r1, 'router r1'],
      ].sort(),
    );
    const port = (n: string) => c.ifaces.find((i) => i.interface === n)!;
    expect(port('veth-r').flags).toBe(XLB.IFACE_F_BALANCE | XLB.IFACE_F_NEIGH);
    expect(port('veth-r').mac).toBe('02:00:00:00:00:01');
    expect(port('veth-q').mac).toBe('02:00:00:00:00:02');
    expect(port('veth-s').flags).toBe(XLB.IFACE_F_BALANCE);
    expect(port('veth-s').mac).toBeUndefined();
  });

  it('neighbor_responder for IPv6 VIPs: reachable within the router\'s IPv6 networks, all, none', () => {
    const d = validateConfig({
      load_balancers: [
        { name: 'near6', vips: { '[fd00:1::50]:80': '[fd00:9::1]:80', '[fd00:5::1]:80': '[fd00:9::1]:80' } },
        { name: 'all6', vips: { '[fd00:6::1]:80': '[fd00:9::1]:80' }, options: { neighbor_responder: 'all' } },
        { name: 'none6', vips: { '[fd00:1::60]:80': '[fd00:9::1]:80' }, options: { neighbor_responder: 'none' } },
      ],
      logical_routers: [
        {
          name: 'r6',
          ports: [{ name: 'rp', interface: 'veth-r', mac: '02:00:00:00:00:01', networks: ['10.0.0.1/24', 'fd00:1::1/64'] }],
          load_balancer: ['near6', 'all6', 'none6'],
        },
      ],
    });
    const c = compile(d);
    expect(c.neigh.map((n) => [n.addr, n.addr6?.toString('hex')]).sort()).toEqual(
      [
        [0, 'fd000001000000000000000000000050'],
        [0, 'fd000006000000000000000000000001'],
      ].sort(),
    );
    expect(c.ifaces[0]!.flags & XLB.IFACE_F_NEIGH).toBe(XLB.IFACE_F_NEIGH);
  });

  it('reject=true sets VIP_F_REJECT on every VIP of the load balancer', () => {
    const c = compile(lab({ vips: { [VIP]: '', '172.16.255.63:80': B1 }, options: { reject: 'true' } }));
    expect(c.vips.map((v) => v.flags & XLB.VIP_F_REJECT)).toEqual([XLB.VIP_F_REJECT, XLB.VIP_F_REJECT]);
    expect(c.entries.every((e) => e.flags & XLB.VIP_F_REJECT)).toBe(true);
    expect(compile(lab()).vips[0]!.flags & XLB.VIP_F_REJECT).toBe(0);
  });

  it('produces nothing for a load balancer attached nowhere', () => {
    const d = validateConfig({
      load_balancers: [
        { name: 'lb1', vips: { [VIP]: `${B1},${B2}` } },
        { name: 'lonely', vips: { '10.9.9.9:80': '10.0.0.1:80' } },
      ],
      logical_switches: [{ name: 'inside', ports: ['xlb-vm3-h'], load_balancer: ['lb1'] }],
    });
    const c = compile(d);
    expect(c.vips.map((v) => v.lb)).toEqual(['lb1']);
    expect(Object.keys(c.ids.vips).some((k) => k.startsWith('lonely '))).toBe(false);
    expect(Object.keys(c.ids.backends).some((k) => k.startsWith('lonely '))).toBe(false);
    expect(c.entries.every((e) => e.vipId === c.vips[0]!.id)).toBe(true);

    const none = compile(validateConfig({ load_balancers: [{ name: 'lonely', vips: { [VIP]: B1 } }] }));
    expect(none).toEqual({ ids: { scopes: {}, vips: {}, backends: {} }, ifaces: [], vips: [], entries: [], neigh: [], snat: [], warnings: [] });
  });

  it('produces no VIP entries (and no tables) for an LB whose only switch has no ports', () => {
    const d = validateConfig({
      load_balancers: [{ name: 'lb1', vips: { [VIP]: B1 } }],
      logical_switches: [{ name: 'empty', ports: [], load_balancer: ['lb1'] }],
    });
    const c = compile(d);
    expect(c.ifaces).toEqual([]);
    expect(c.entries).toEqual([]);
    expect(c.vips).toEqual([]);
  });
});

describe('compile: VIP shapes and options', () => {
  it('compiles an IP-only VIP with proto 0, port 0 and VIP_F_IP_ONLY', () => {
    const d = validateConfig({
      load_balancers: [{ name: 'lb1', protocol: 'udp', vips: { '172.16.255.62': '10.0.0.1,10.0.0.2' } }],
      logical_switches: [{ name: 's', ports: ['eth9'], load_balancer: ['lb1'] }],
    });
    const c = compile(d);
    const v = c.vips[0]!;
    expect(v.name).toBe('lb1 172.16.255.62/ip');
    expect(v.proto).toBe(0);
    expect(v.port).toBe(0);
    expect(v.flags).toBe(XLB.VIP_F_IP_ONLY);
    expect(v.backends.map((b) => [b.text, b.port])).toEqual([
      ['10.0.0.1', 0],
      ['10.0.0.2', 0],
    ]);
    expect(c.entries).toEqual([
      { addr: parseIPv4('172.16.255.62'), port: 0, proto: 0, scope: c.ids.scopes['switch s'], vipId: v.id, flags: XLB.VIP_F_IP_ONLY, hashFields: 0, affinityTimeoutS: 0, snatAddr: 0, hairpinAddr: 0 },
    ]);
  });

  it('uses the LB protocol for ported VIPs (udp = 17)', () => {
    const d = validateConfig({
      load_balancers: [{ name: 'u', protocol: 'udp', vips: { '10.1.1.1:53': '10.0.0.1:53' } }],
      logical_switches: [{ name: 's', ports: ['eth9'], load_balancer: ['u'] }],
    });
    const v = compile(d).vips[0]!;
    expect(v.proto).toBe(IPPROTO.udp);
    expect(v.proto).toBe(17);
    expect(v.name).toBe('u 10.1.1.1:53/udp');
    expect(v.flags).toBe(0);
  });

  it('gives a VIP without backends a table of XLB_BACKEND_NONE with slot 0 = M', () => {
    const c = compile(lab({ vips: { [VIP]: '' } }));
    const v = c.vips[0]!;
    expect(v.backends).toEqual([]);
    expect(v.table.length).toBe(DEFAULT_MAGLEV_SIZE + 1);
    expect(v.table[0]).toBe(DEFAULT_MAGLEV_SIZE);
    expect(v.table.subarray(1).every((x) => x === XLB.BACKEND_NONE)).toBe(true);
    expect(XLB.BACKEND_NONE).toBe(0);
    // Still served: the data plane must see the VIP to drop/reject for it.
    expect(c.entries).toHaveLength(1);
    expect(c.ids.backends).toEqual({});
  });

  it('sizes the table by the xlb_maglev_size option', () => {
    const c = compile(lab({ options: { xlb_maglev_size: '251' } }));
    const v = c.vips[0]!;
    expect(v.table.length).toBe(252);
    expect(v.table[0]).toBe(251);
    const counts = slotCounts(v.table);
    expect([...counts.keys()].sort()).toEqual(v.backends.map((b) => b.id).sort());
    expect([...counts.values()].reduce((a, b) => a + b, 0)).toBe(251);

    const tiny = compile(lab({ options: { xlb_maglev_size: '3' }, vips: { [VIP]: '' } })).vips[0]!;
    expect(Array.from(tiny.table)).toEqual([3, 0, 0, 0]);
  });
});

describe('compile: reading backends', () => {
  // compile reads "A.B.C.D:PORT" backends in one pass of its own (ipv4PortOf); every other text
  // through parseHostPort. Both must read a backend as parseHostPort does, and refuse what it refuses.
  it('reads edge-case IPv4 backends as parseHostPort does, with the text as listed', () => {
    const texts = ['0.0.0.0:1', '255.255.255.255:65535', '1.2.3.4:9', '10.0.0.1:10000', '192.168.100.200:8080', '9.99.199.249:65534'];
    const c = compile(lab({ vips: { [VIP]: texts.join(',') } }));
    expect(c.vips[0]!.backends.map((b) => [b.text, b.addr, b.port])).toEqual(
      texts.map((t) => [t, parseIPv4(parseHostPort(t).addr), parseHostPort(t).port]),
    );
  });

  it('refuses a backend parseHostPort refuses, when handed an unvalidated state', () => {
    const bad = ['10.0.0.01:80', '10.0.0.1:080', '10.0.0.1:0', '10.0.0.1:65536', '10.0.0.256:80', '10.0.0:80', '10.0.0.1.2:80', '10.0.0.1:8a', '10.0.0.1:', 'x.0.0.1:80', '10.0.0.1:1000000'];
    const d = lab();
    for (const b of bad) {
      expect(() => parseHostPort(b), b).toThrow(AddrParseError);
      const raw = { ...d, load_balancers: [{ ...d.load_balancers[0]!, vips: { [VIP]: `${B1},${b}` } }] };
      expect(() => compile(raw), b).toThrow(AddrParseError);
    }
  });

  it('reads spaces around list items, weights and IPv6 or IP-only backends as before', () => {
    const c = compile(
      validateConfig({
        load_balancers: [
          { name: 'a', protocol: 'tcp', vips: { [VIP]: ` ${B1} , ${B2}` }, options: { xlb_weights: `${B2}=3` } },
          { name: 'b', protocol: 'tcp', vips: { '[fd00::1]:80': '[fd00::a]:8080,[fd00::b]:8080', '10.9.9.9': '10.8.0.1,10.8.0.2' } },
        ],
        logical_switches: [{ name: 'sw', ports: ['lo'], load_balancer: ['a', 'b'] }],
      }),
    );
    expect(c.vips.map((v) => v.backends.map((b) => [b.text, b.addr, b.port, b.weight, b.addr6?.toString('hex') ?? null]))).toEqual([
      [
        [B1, parseIPv4('172.16.255.130'), 8000, 1, null],
        [B2, parseIPv4('172.16.255.131'), 8000, 3, null],
      ],
      [
        ['[fd00::a]:8080', 0, 8080, 1, 'fd00000000000000000000000000000a'],
        ['[fd00::b]:8080', 0, 8080, 1, 'fd00000000000000000000000000000b'],
      ],
      [
        ['10.8.0.1', parseIPv4('10.8.0.1'), 0, 1, null],
        ['10.8.0.2', parseIPv4('10.8.0.2'), 0, 1, null],
      ],
    ]);
  });
});

describe('compile: id stability', () => {
  const many = backends(5);
  const two = {
    load_balancers: [
      { name: 'web', vips: { '10.10.0.1:80': many.join(','), '10.10.0.1:443': `${many[0]},${many[1]}` } },
      { name: 'dns', protocol: 'udp', vips: { '10.10.0.2:53': '10.0.1.1:53,10.0.1.2:53' } },
    ],
    logical_switches: [
      { name: 's1', ports: ['eth1'], load_balancer: ['web'] },
      { name: 's2', ports: ['eth2'], load_balancer: ['web', 'dns'] },
    ],
  };

  it('keeps every id when recompiling with the previous ids', () => {
    const first = compile(validateConfig(two));
    const again = compile(validateConfig(two), first.ids);
    expect(again.ids).toEqual(first.ids);
    expect(again).toEqual(first);
  });

  it('keeps ids given by an earlier apply even when they are not the lowest free ones', () => {
    const prev: Ids = {
      scopes: { 'switch s1': 7, 'switch s2': 3 },
      vips: { 'web 10.10.0.1:80/tcp': 9, 'dns 10.10.0.2:53/udp': 4 },
      backends: { [`web 10.10.0.1:80/tcp ${many[2]}`]: 40 },
    };
    const c = compile(validateConfig(two), prev);
    expect(c.ids.scopes).toEqual({ 'switch s1': 7, 'switch s2': 3 });
    expect(c.ids.vips['web 10.10.0.1:80/tcp']).toBe(9);
    expect(c.ids.vips['dns 10.10.0.2:53/udp']).toBe(4);
    expect(c.ids.backends[`web 10.10.0.1:80/tcp ${many[2]}`]).toBe(40);
    // New identities get the lowest ids not taken.
    expect(c.ids.vips['web 10.10.0.1:443/tcp']).toBe(1);
    expect(vipByName(c, 'web 10.10.0.1:80/tcp').id).toBe(9);
    const table = vipByName(c, 'web 10.10.0.1:80/tcp').table;
    expect(table.includes(40)).toBe(true);
    // All ids of a kind are distinct.
    for (const kind of ['scopes', 'vips', 'backends'] as const) {
      const ids = Object.values(c.ids[kind]);
      expect(new Set(ids).size).toBe(ids.length);
      expect(ids.every((id) => Number.isInteger(id) && id >= 1)).toBe(true);
    }
  });

  it('removing one backend keeps the others ids and moves few slots', () => {
    const before = compile(validateConfig(two));
    const fewer = structuredClone(two);
    fewer.load_balancers[0]!.vips['10.10.0.1:80'] = many.filter((_, i) => i !== 2).join(',');
    const after = compile(validateConfig(fewer), before.ids);

    const name = 'web 10.10.0.1:80/tcp';
    const a = vipByName(before, name);
    const b = vipByName(after, name);
    expect(b.id).toBe(a.id);
    const removedKey = `${name} ${many[2]}`;
    expect(after.ids.backends[removedKey]).toBeUndefined();
    for (const [k, id] of Object.entries(before.ids.backends)) {
      if (k !== removedKey) expect(after.ids.backends[k]).toBe(id);
    }
    expect(after.ids.vips).toEqual(before.ids.vips);
    expect(after.ids.scopes).toEqual(before.ids.scopes);

    const removedId = before.ids.backends[removedKey]!;
    const removedSlots = slotCounts(a.table).get(removedId)!;
    expect(removedSlots).toBeGreaterThan(0);
    expect(b.table.includes(removedId)).toBe(false);
    const changed = changedSlots(a, b);
    expect(changed).toBeGreaterThanOrEqual(removedSlots);
    expect(changed).toBeLessThanOrEqual(removedSlots + 0.01 * DEFAULT_MAGLEV_SIZE);
    // Other VIPs are untouched.
    for (const other of ['web 10.10.0.1:443/tcp', 'dns 10.10.0.2:53/udp']) {
      expect(vipByName(after, other)).toEqual(vipByName(before, other));
    }
  });

  it('adding a VIP, a backend or an LB does not change existing ids', () => {
    const before = compile(validateConfig(two));
    const more = structuredClone(two) as unknown as EditableConfig;
    // New VIP listed first, so a non-stable allocator would hand it id 1.
    more.load_balancers[0]!.vips = { '10.10.0.1:8080': '10.0.2.1:8080', ...(two.load_balancers[0]!.vips as unknown as Record<string, string>) };
    more.load_balancers[1]!.vips['10.10.0.2:53'] = '10.0.0.99:53,10.0.1.1:53,10.0.1.2:53';
    more.load_balancers.unshift({ name: 'aaa', vips: { '10.20.0.1:80': '10.0.3.1:80' } });
    more.logical_switches.unshift({ name: 's0', ports: ['eth0'], load_balancer: ['aaa'] });
    const after = compile(validateConfig(more), before.ids);

    for (const kind of ['scopes', 'vips', 'backends'] as const) {
      for (const [k, id] of Object.entries(before.ids[kind])) expect(after.ids[kind][k], `${kind} ${k}`).toBe(id);
      const all = Object.values(after.ids[kind]);
      expect(new Set(all).size).toBe(all.length);
    }
    expect(Object.keys(after.ids.vips)).toHaveLength(Object.keys(before.ids.vips).length + 2);
    // Unchanged VIPs compile identically.
    expect(vipByName(after, 'web 10.10.0.1:80/tcp')).toEqual(vipByName(before, 'web 10.10.0.1:80/tcp'));
  });

  it('reuses ids freed by a removal only in a later apply, and never changes a kept id', () => {
    const before = compile(validateConfig(two));
    const swapped = structuredClone(two) as unknown as EditableConfig;
    // Remove the 443 VIP and the whole dns LB; add a brand-new VIP.
    swapped.load_balancers[0]!.vips = { '10.10.0.1:80': two.load_balancers[0]!.vips['10.10.0.1:80']!, '10.10.0.3:25': '10.0.5.1:25' };
    swapped.load_balancers.pop();
    swapped.logical_switches[1]!.load_balancer = ['web'];
    const after = compile(validateConfig(swapped), before.ids);

    const kept = 'web 10.10.0.1:80/tcp';
    expect(after.ids.vips[kept]).toBe(before.ids.vips[kept]);
    const keptBackends = Object.entries(before.ids.backends).filter(([k]) => k.startsWith(`${kept} `));
    expect(keptBackends.length).toBeGreaterThan(0);
    for (const [k, id] of keptBackends) expect(after.ids.backends[k]).toBe(id);
    expect(after.ids.vips['web 10.10.0.1:443/tcp']).toBeUndefined();
    expect(after.ids.vips['dns 10.10.0.2:53/udp']).toBeUndefined();
    // The new VIP's id is neither a kept one nor one freed in this same apply
    // (the freed VIP's entry is still in the kernel until the removals run).
    const fresh = after.ids.vips['web 10.10.0.3:25/tcp']!;
    expect(fresh).not.toBe(after.ids.vips[kept]);
    const freed = [before.ids.vips['web 10.10.0.1:443/tcp'], before.ids.vips['dns 10.10.0.2:53/udp']];
    expect(freed).not.toContain(fresh);
    // A later apply may hand a freed id out again.
    const later = structuredClone(swapped);
    later.load_balancers[0]!.vips = { ...later.load_balancers[0]!.vips, '10.10.0.4:25': '10.0.5.2:25' };
    const third = compile(validateConfig(later), after.ids);
    expect(freed).toContain(third.ids.vips['web 10.10.0.4:25/tcp']);
    expect(third.ids.vips['web 10.10.0.3:25/tcp']).toBe(fresh);
    expect(new Set(Object.values(after.ids.backends)).size).toBe(Object.keys(after.ids.backends).length);
    expect(after.ids.scopes).toEqual(before.ids.scopes);
  });
});
