import { describe, it, expect } from 'vitest';
import {
  DEFAULT_MAGLEV_SIZE,
  EMPTY_STATE,
  lbVips,
  parseConfigText,
  validateConfig,
  type DesiredState,
} from '../src/config.js';
import { ConfigError, ERROR_CODES } from '../src/errors.js';
import { formatIPv4, formatIPv6, isIPv6Literal, parseHostPort, parseIPv4, parseIPv6 } from '../src/addr.js';

const EXAMPLE = `
load_balancers:
  - name: lb1
    protocol: tcp
    vips: { "172.16.255.62:8000": "172.16.255.130:8000,172.16.255.131:8000" }
logical_switches:
  - { name: inside, ports: [xlb-vm3-h], load_balancer: [lb1] }
`;

/** A minimal valid raw config with one LB whose fields can be overridden. */
function withLb(lb: Record<string, unknown>, extra: Record<string, unknown> = {}): unknown {
  return { load_balancers: [{ name: 'lb1', vips: {}, ...lb }], ...extra };
}

/** Runs `fn`, expects a ConfigError and returns it. */
function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return err as ConfigError;
  }
  throw new Error('expected a ConfigError, got success');
}

/** Expects a ConfigError with this field whose message mentions every fragment. */
function expectConfigError(fn: () => unknown, field: string, ...fragments: string[]): ConfigError {
  const err = configError(fn);
  expect(err.field).toBe(field);
  expect(err.code).toBe('XLB_CONFIG');
  expect(err.message.startsWith(`${field}: `)).toBe(true);
  for (const f of fragments) expect(err.message).toContain(f);
  return err;
}

describe('parseConfigText', () => {
  it('validates and normalizes the example', () => {
    const state = parseConfigText(EXAMPLE, 'example.yaml');
    const expected: DesiredState = {
      load_balancers: [
        {
          name: 'lb1',
          protocol: 'tcp',
          vips: { '172.16.255.62:8000': '172.16.255.130:8000,172.16.255.131:8000' },
          options: {},
          selection_fields: [],
        },
      ],
      logical_switches: [
        {
          name: 'inside',
          ports: [{ interface: 'xlb-vm3-h', netns: null, ifname: 'xlb-vm3-h', hook: 'auto' }],
          load_balancer: ['lb1'],
        },
      ],
      logical_routers: [],
    };
    expect(state).toEqual(expected);
    expect(validateConfig(state)).toEqual(state);
  });

  it('parses the example VIP', () => {
    const [lb] = parseConfigText(EXAMPLE, 'example.yaml').load_balancers;
    expect(lb && lbVips(lb)).toEqual([
      {
        lb: 'lb1',
        key: '172.16.255.62:8000',
        family: 4,
        addr: '172.16.255.62',
        port: 8000,
        protocol: 'tcp',
        backends: [
          { addr: '172.16.255.130', port: 8000, weight: 1 },
          { addr: '172.16.255.131', port: 8000, weight: 1 },
        ],
        maglevSize: DEFAULT_MAGLEV_SIZE,
      },
    ]);
  });

  it('accepts JSON', () => {
    const json = JSON.stringify({
      load_balancers: [{ name: 'lb1', vips: { '10.0.0.1:80': '10.0.1.1:80' } }],
    });
    expect(parseConfigText(json, 'x.json').load_balancers[0]?.vips).toEqual({ '10.0.0.1:80': '10.0.1.1:80' });
  });

  it('treats an empty document as the empty state', () => {
    expect(parseConfigText('', 'empty.yaml')).toEqual(EMPTY_STATE);
    expect(parseConfigText('# nothing yet\n', 'empty.yaml')).toEqual(EMPTY_STATE);
  });

  it('reports YAML syntax errors with source, line and the offending line', () => {
    const err = expectConfigError(
      () => parseConfigText('load_balancers:\n  - name: lb1\n    vips: [1, 2\nlogical_switches: []\n', 'xlb.yaml'),
      'xlb.yaml',
      'line 4, column 1',
      'invalid YAML',
    );
    expect(err.value).toBe('logical_switches: []');
  });

  it('rejects duplicate mapping keys (e.g. a VIP listed twice)', () => {
    const text = 'load_balancers:\n  - name: lb1\n    vips:\n      "10.0.0.1:80": ""\n      "10.0.0.1:80": ""\n';
    expectConfigError(() => parseConfigText(text, 'dup.yaml'), 'dup.yaml', 'line 5', 'unique');
  });

  it('normalizes YAML booleans and numbers in options', () => {
    const text = `
load_balancers:
  - name: lb1
    options: { reject: true, skip_snat: false, affinity_timeout: 30, xlb_maglev_size: 65537 }
    vips: { "10.0.0.1:80": "10.0.1.1:80" }
logical_routers:
  - name: r1
    options: { mcast_relay: false, xlb_anything: 5 }
`;
    const state = parseConfigText(text, 'opts.yaml');
    expect(state.load_balancers[0]?.options).toEqual({
      reject: 'true',
      skip_snat: 'false',
      affinity_timeout: '30',
      xlb_maglev_size: '65537',
    });
    expect(state.logical_routers[0]?.options).toEqual({ mcast_relay: 'false', xlb_anything: '5' });
    const lb = state.load_balancers[0];
    expect(lb && lbVips(lb)[0]?.maglevSize).toBe(65537);
  });
});

describe('validateConfig: normal forms', () => {
  it('accepts an empty backend list and tolerates whitespace', () => {
    const state = validateConfig(withLb({ vips: { '10.0.0.1:80': '', '10.0.0.2:80': ' 10.0.1.1:80 , 10.0.1.2:80 ' } }));
    expect(state.load_balancers[0]?.vips).toEqual({ '10.0.0.1:80': '', '10.0.0.2:80': '10.0.1.1:80,10.0.1.2:80' });
    const lb = state.load_balancers[0];
    expect(lb && lbVips(lb)[0]?.backends).toEqual([]);
  });

  it('parses an IP-only VIP with protocol null and port 0', () => {
    const state = validateConfig(withLb({ protocol: 'udp', vips: { '10.0.0.1': '10.0.1.1,10.0.1.2' } }));
    const lb = state.load_balancers[0];
    expect(lb && lbVips(lb)).toEqual([
      {
        lb: 'lb1',
        key: '10.0.0.1',
        family: 4,
        addr: '10.0.0.1',
        port: 0,
        protocol: null,
        backends: [
          { addr: '10.0.1.1', port: 0, weight: 1 },
          { addr: '10.0.1.2', port: 0, weight: 1 },
        ],
        maglevSize: DEFAULT_MAGLEV_SIZE,
      },
    ]);
  });

  it('fills defaults and is idempotent on a full config', () => {
    const raw = {
      load_balancers: [
        { name: 'lb1', vips: { '10.0.0.1:80': '10.0.1.1:80' }, selection_fields: ['ip_src', 'ip_dst'] },
        { name: 'lb2', protocol: 'udp', vips: { '10.0.0.1:80': '10.0.1.1:80' } },
      ],
      logical_switches: [
        { name: 'sw', ports: ['eth1', 'ns1/veth0', { interface: 'eth2', hook: 'xdp' }], load_balancer: ['lb1', 'lb2'] },
      ],
      logical_routers: [
        {
          name: 'r1',
          ports: [{ name: 'rp1', interface: 'ns2/eth0', mac: '0A:00:00:00:00:01', networks: ['172.16.255.1/24'] }],
          load_balancer: ['lb1'],
          nat: [{ type: 'snat', external_ip: '172.16.255.1', logical_ip: '10.0.0.0/24' }],
        },
      ],
    };
    const state = validateConfig(raw);
    expect(state.load_balancers[1]).toEqual({
      name: 'lb2',
      protocol: 'udp',
      vips: { '10.0.0.1:80': '10.0.1.1:80' },
      options: {},
      selection_fields: [],
    });
    expect(state.logical_switches[0]?.ports).toEqual([
      { interface: 'eth1', netns: null, ifname: 'eth1', hook: 'auto' },
      { interface: 'ns1/veth0', netns: 'ns1', ifname: 'veth0', hook: 'auto' },
      { interface: 'eth2', netns: null, ifname: 'eth2', hook: 'xdp' },
    ]);
    expect(state.logical_routers[0]?.ports[0]).toEqual({
      name: 'rp1',
      interface: 'ns2/eth0',
      netns: 'ns2',
      ifname: 'eth0',
      hook: 'auto',
      mac: '0a:00:00:00:00:01',
      networks: ['172.16.255.1/24'],
    });
    expect(state.logical_routers[0]?.options).toEqual({});
    expect(validateConfig(state)).toEqual(state);
    expect(validateConfig(JSON.parse(JSON.stringify(state)))).toEqual(state);
  });

  it('does not reject the same address on different ports or protocols across LBs', () => {
    const raw = {
      load_balancers: [
        { name: 'a', vips: { '10.0.0.1:80': '', '10.0.0.1': '' } },
        { name: 'b', vips: { '10.0.0.1:81': '' } },
        { name: 'c', protocol: 'udp', vips: { '10.0.0.1:80': '' } },
      ],
      logical_switches: [{ name: 'sw', load_balancer: ['a', 'b', 'c'] }],
    };
    expect(validateConfig(raw).logical_switches[0]?.load_balancer).toEqual(['a', 'b', 'c']);
  });
});

describe('validateConfig: errors name the field and the bad value', () => {
  it('bad backend address', () => {
    const vips = { '172.16.255.62:8000': '172.16.255.62:8000,172.16.255.300:8000' };
    const err = expectConfigError(
      () => validateConfig(withLb({ vips })),
      'load_balancers[0].vips["172.16.255.62:8000"]',
      'backend "172.16.255.300:8000" is not a valid IPv4 address',
      '(got "172.16.255.62:8000,172.16.255.300:8000")',
    );
    expect(err.value).toBe('172.16.255.62:8000,172.16.255.300:8000');
  });

  it('bad VIP address', () => {
    expectConfigError(
      () => validateConfig(withLb({ vips: { '10.0.0.01:80': '' } })),
      'load_balancers[0].vips["10.0.0.01:80"]',
      'VIP "10.0.0.01:80" is not a valid IPv4 address',
    );
  });

  it('out-of-range port', () => {
    expectConfigError(
      () => validateConfig(withLb({ vips: { '10.0.0.1:80': '10.0.1.1:65536' } })),
      'load_balancers[0].vips["10.0.0.1:80"]',
      'backend "10.0.1.1:65536" has an invalid port "65536"',
      '1..65535',
    );
    expectConfigError(
      () => validateConfig(withLb({ vips: { '10.0.0.1:0': '' } })),
      'load_balancers[0].vips["10.0.0.1:0"]',
      'VIP "10.0.0.1:0" has an invalid port "0"',
    );
  });

  it('duplicate VIP across LBs on one switch', () => {
    const raw = {
      load_balancers: [
        { name: 'lb1', vips: { '10.0.0.1:80': '10.0.1.1:80' } },
        { name: 'lb2', vips: { '10.0.0.1:80': '10.0.1.2:80' } },
      ],
      logical_switches: [{ name: 'inside', load_balancer: ['lb1', 'lb2'] }],
    };
    const err = expectConfigError(
      () => validateConfig(raw),
      'logical_switches[0].load_balancer[1]',
      'load balancers "lb1" and "lb2" both define VIP 10.0.0.1:80/tcp on logical switch "inside"',
    );
    expect(err.value).toBe('lb2');
  });

  it('duplicate IP-only VIP across LBs on one router', () => {
    const raw = {
      load_balancers: [
        { name: 'lb1', vips: { '10.0.0.1': '' } },
        { name: 'lb2', protocol: 'udp', vips: { '10.0.0.1': '' } },
      ],
      logical_routers: [{ name: 'r1', load_balancer: ['lb1', 'lb2'] }],
    };
    expectConfigError(
      () => validateConfig(raw),
      'logical_routers[0].load_balancer[1]',
      '"lb1" and "lb2"',
      '10.0.0.1 (IP-only)',
      'logical router "r1"',
    );
  });

  it('unknown top-level key', () => {
    const err = expectConfigError(() => validateConfig({ load_balancer: [] }), 'load_balancer', 'unknown key');
    expect(err.message).toContain('load_balancers, logical_switches, logical_routers');
  });

  it('non-object document', () => {
    expectConfigError(() => validateConfig([1]), '$', 'must be an object', '(got [1])');
  });

  it('unknown LB key', () => {
    expectConfigError(() => validateConfig(withLb({ vip: {} })), 'load_balancers[0].vip', 'unknown key', 'vips');
  });

  it('unknown option key', () => {
    const err = expectConfigError(
      () => validateConfig(withLb({ options: { hairpin_snat: '1.2.3.4' } })),
      'load_balancers[0].options.hairpin_snat',
      'unknown option "hairpin_snat"',
      'hairpin_snat_ip',
    );
    expect(err.value).toBe('1.2.3.4');
    expectConfigError(
      () => validateConfig({ logical_routers: [{ name: 'r', options: { bogus: 'x' } }] }),
      'logical_routers[0].options.bogus',
      'unknown option "bogus"',
    );
  });

  it('bad option value', () => {
    const err = expectConfigError(
      () => validateConfig(withLb({ options: { skip_snat: 'yes' } })),
      'load_balancers[0].options.skip_snat',
      'must be "true" or "false"',
      '(got "yes")',
    );
    expect(err.value).toBe('yes');
    expectConfigError(
      () => validateConfig(withLb({ options: { affinity_timeout: 70000 } })),
      'load_balancers[0].options.affinity_timeout',
      '0..65535',
      '(got 70000)',
    );
    expectConfigError(
      () => validateConfig(withLb({ options: { reject: ['true'] } })),
      'load_balancers[0].options.reject',
      'must be a string',
    );
  });

  it('bad xlb_maglev_size', () => {
    expectConfigError(
      () => validateConfig(withLb({ options: { xlb_maglev_size: 65536 } })),
      'load_balancers[0].options.xlb_maglev_size',
      'must be a prime between 3 and 1000003',
      '(got 65536)',
    );
    expectConfigError(
      () => validateConfig(withLb({ options: { xlb_maglev_size: '1000033' } })),
      'load_balancers[0].options.xlb_maglev_size',
      'prime',
      '"1000033"',
    );
  });

  it('mixed address families', () => {
    expectConfigError(
      () => validateConfig(withLb({ vips: { '10.0.0.1:80': '[fd00::1]:80' } })),
      'load_balancers[0].vips["10.0.0.1:80"]',
      'mixed address families',
      'VIP "10.0.0.1:80" is IPv4 but backend "[fd00::1]:80" is IPv6',
    );
    expectConfigError(
      () => validateConfig(withLb({ vips: { '[fd00::1]:80': '10.0.0.2:80' } })),
      'load_balancers[0].vips["[fd00::1]:80"]',
      'mixed address families',
    );
  });

  it('IPv6 VIPs and backends in OVN syntax', () => {
    const d = validateConfig(
      withLb({ vips: { '[fd00::1]:80': '[fd00:1::1]:8080, [fd00:1::2]:8080', 'fd00::2': 'fd00:1::9', '10.0.0.1:80': '10.0.1.1:80' } }),
    );
    expect(d.load_balancers[0].vips['[fd00::1]:80']).toBe('[fd00:1::1]:8080,[fd00:1::2]:8080');
    const vips = lbVips(d.load_balancers[0]);
    expect(vips.map((v) => [v.family, v.addr, v.port, v.protocol])).toEqual([
      [6, 'fd00::1', 80, 'tcp'],
      [6, 'fd00::2', 0, null],
      [4, '10.0.0.1', 80, 'tcp'],
    ]);
    expect(vips[0].backends).toEqual([
      { addr: 'fd00:1::1', port: 8080, weight: 1 },
      { addr: 'fd00:1::2', port: 8080, weight: 1 },
    ]);
  });

  it('IPv4/IPv6 mixing in one IP-only VIP, and IPv6 shape errors', () => {
    expectConfigError(
      () => validateConfig(withLb({ vips: { 'fd00::1': '10.0.0.2' } })),
      'load_balancers[0].vips["fd00::1"]',
      'mixed address families: VIP "fd00::1" is IPv6 but backend "10.0.0.2" is IPv4',
      '"10.0.0.2"',
    );
    expectConfigError(
      () => validateConfig(withLb({ vips: { '10.0.0.1': 'fd00::2' } })),
      'load_balancers[0].vips["10.0.0.1"]',
      'VIP "10.0.0.1" is IPv4 but backend "fd00::2" is IPv6',
    );
    expectConfigError(
      () => validateConfig(withLb({ vips: { '[fd00::1]:80': 'fd00::2' } })),
      'load_balancers[0].vips["[fd00::1]:80"]',
      'backend "fd00::2" has no port but VIP "[fd00::1]:80" has one',
    );
    expectConfigError(
      () => validateConfig(withLb({ vips: { '[fd00::1]:80': '[fd00::g]:80' } })),
      'load_balancers[0].vips["[fd00::1]:80"]',
      'backend "[fd00::g]:80" is not a valid IPv6 address',
    );
    expectConfigError(
      () => validateConfig(withLb({ vips: { '[fd00::1]:80': '[fd00::2]:80,[fd00:0::2]:80' } })),
      'load_balancers[0].vips["[fd00::1]:80"]',
      'duplicate backend "[fd00:0::2]:80"',
    );
    expectConfigError(
      () => validateConfig(withLb({ vips: { '[fd00::1]:80': '[fd00::2]:80', '[fd00:0:0::1]:80': '[fd00::3]:80' } })),
      'load_balancers[0].vips["[fd00:0:0::1]:80"]',
      'VIP "[fd00:0:0::1]:80" is the same as VIP "[fd00::1]:80"',
    );
  });

  it('IPv6 where xlb does not support it yet', () => {
    expectConfigError(
      () => validateConfig({ logical_routers: [{ name: 'r', nat: [{ type: 'snat', external_ip: 'fd00::1', logical_ip: '10.0.0.0/8' }] }] }),
      'logical_routers[0].nat[0].external_ip',
      'IPv6 is not supported yet',
    );
  });

  it('port on the VIP but not the backend, and vice versa', () => {
    expectConfigError(
      () => validateConfig(withLb({ vips: { '10.0.0.1:80': '10.0.1.1' } })),
      'load_balancers[0].vips["10.0.0.1:80"]',
      'backend "10.0.1.1" has no port',
    );
    expectConfigError(
      () => validateConfig(withLb({ vips: { '10.0.0.1': '10.0.1.1:80' } })),
      'load_balancers[0].vips["10.0.0.1"]',
      'backend "10.0.1.1:80" has a port but VIP "10.0.0.1" is IP-only',
    );
  });

  it('duplicate backend and stray commas', () => {
    expectConfigError(
      () => validateConfig(withLb({ vips: { '10.0.0.1:80': '10.0.1.1:80, 10.0.1.1:80' } })),
      'load_balancers[0].vips["10.0.0.1:80"]',
      'duplicate backend "10.0.1.1:80"',
    );
    expectConfigError(
      () => validateConfig(withLb({ vips: { '10.0.0.1:80': '10.0.1.1:80,' } })),
      'load_balancers[0].vips["10.0.0.1:80"]',
      'empty entry',
    );
  });

  it('unknown LB in a switch', () => {
    const err = expectConfigError(
      () => validateConfig(withLb({}, { logical_switches: [{ name: 'sw', load_balancer: ['lb1', 'nope'] }] })),
      'logical_switches[0].load_balancer[1]',
      'unknown load balancer "nope"',
    );
    expect(err.value).toBe('nope');
  });

  it('duplicate interface across a switch and a router', () => {
    const raw = {
      logical_switches: [{ name: 'sw', ports: ['ns1/eth0'] }],
      logical_routers: [
        { name: 'r', ports: [{ name: 'rp', interface: 'ns1/eth0', mac: '02:00:00:00:00:01', networks: ['10.0.0.1/24'] }] },
      ],
    };
    const err = expectConfigError(
      () => validateConfig(raw),
      'logical_routers[0].ports[0].interface',
      'interface "ns1/eth0" is already used by logical_switches[0].ports[0]',
    );
    expect(err.value).toBe('ns1/eth0');
    // The same name in different namespaces is a different interface.
    expect(() => validateConfig({ logical_switches: [{ name: 'sw', ports: ['eth0', 'ns1/eth0'] }] })).not.toThrow();
  });

  it('bad interface names, hooks, MACs, networks and NAT rules', () => {
    expectConfigError(
      () => validateConfig({ logical_switches: [{ name: 'sw', ports: ['a-very-long-interface'] }] }),
      'logical_switches[0].ports[0]',
      '1..15 bytes',
      '"a-very-long-interface"',
    );
    expectConfigError(
      () => validateConfig({ logical_switches: [{ name: 'sw', ports: [{ interface: 'eth0', hook: 'xdp-native' }] }] }),
      'logical_switches[0].ports[0].hook',
      'must be one of "auto", "tc", "xdp"',
    );
    const port = { name: 'rp', interface: 'eth0', mac: '02:00:00:00:00', networks: ['10.0.0.1/24'] };
    expectConfigError(
      () => validateConfig({ logical_routers: [{ name: 'r', ports: [port] }] }),
      'logical_routers[0].ports[0].mac',
      'MAC address',
    );
    expectConfigError(
      () => validateConfig({ logical_routers: [{ name: 'r', ports: [{ ...port, mac: '02:00:00:00:00:01', networks: ['10.0.0.1/33'] }] }] }),
      'logical_routers[0].ports[0].networks[0]',
      'invalid prefix length "33"',
    );
    expectConfigError(
      () => validateConfig({ logical_routers: [{ name: 'r', nat: [{ type: 'dnat', external_ip: '1.2.3.4', logical_ip: '10.0.0.0/24' }] }] }),
      'logical_routers[0].nat[0].logical_ip',
      'single IPv4 address',
    );
  });

  it('bad names, duplicates and wrong types', () => {
    expectConfigError(() => validateConfig(withLb({ name: 'lb 1' })), 'load_balancers[0].name', '[A-Za-z0-9_.:-]+', '"lb 1"');
    expectConfigError(() => validateConfig(withLb({ name: undefined })), 'load_balancers[0].name', 'is required');
    expectConfigError(
      () => validateConfig({ load_balancers: [{ name: 'x' }, { name: 'x' }] }),
      'load_balancers[1].name',
      'duplicate load balancer name "x"',
    );
    expectConfigError(() => validateConfig(withLb({ protocol: 'sctp' })), 'load_balancers[0].protocol', '"tcp", "udp"', '"sctp"');
    expectConfigError(
      () => validateConfig(withLb({ selection_fields: ['ip_src', 'tp_port'] })),
      'load_balancers[0].selection_fields[1]',
      'tp_src',
      '"tp_port"',
    );
    expectConfigError(() => validateConfig(withLb({ vips: ['10.0.0.1:80'] })), 'load_balancers[0].vips', 'must be an object');
  });
});

describe('validateConfig: lb_force_snat_ip', () => {
  const router = (options: Record<string, unknown>): object => ({
    logical_routers: [{ name: 'edge1', ports: [], options }],
  });
  it('accepts router_ip and one IPv4 address', () => {
    expect(validateConfig(router({ lb_force_snat_ip: 'router_ip' })).logical_routers[0]!.options.lb_force_snat_ip).toBe('router_ip');
    expect(validateConfig(router({ lb_force_snat_ip: '10.127.0.129' })).logical_routers[0]!.options.lb_force_snat_ip).toBe('10.127.0.129');
  });
  it('refuses anything else, naming the field and value', () => {
    expectConfigError(
      () => validateConfig(router({ lb_force_snat_ip: 'router-ip' })),
      'logical_routers[0].options.lb_force_snat_ip',
      'must be "router_ip" or an IPv4 address',
      '(got "router-ip")',
    );
    expectConfigError(
      () => validateConfig(router({ lb_force_snat_ip: 'fd00::1' })),
      'logical_routers[0].options.lb_force_snat_ip',
      'IPv6 is not supported yet',
    );
    expectConfigError(
      () => validateConfig(router({ lb_force_snat_ip: '10.0.0.1 fd00::1' })),
      'logical_routers[0].options.lb_force_snat_ip',
      'give only the IPv4 address "10.0.0.1"',
    );
  });
});

describe('addr helpers', () => {
  it('parses and formats IPv4 strictly', () => {
    expect(parseIPv4('172.16.255.62')).toBe(0xac10ff3e);
    expect(formatIPv4(0xac10ff3e)).toBe('172.16.255.62');
    for (const bad of ['1.2.3', '1.2.3.4.5', '01.2.3.4', '1.2.3.256', '1.2.3.-1', ' 1.2.3.4', '1.2.3.4 ', '']) {
      expect(() => parseIPv4(bad)).toThrow(/not a valid IPv4/);
    }
  });

  it('parses IPv6 into bytes and formats it canonically (RFC 5952)', () => {
    expect(parseIPv6('fd00::1').toString('hex')).toBe('fd000000000000000000000000000001');
    expect(parseIPv6('::ffff:1.2.3.4').toString('hex')).toBe('00000000000000000000ffff01020304');
    expect(parseIPv6('1:2:3:4:5:6:7:8').toString('hex')).toBe('00010002000300040005000600070008');
    expect(formatIPv6(parseIPv6('FD00:0:0:0::0001'))).toBe('fd00::1');
    expect(formatIPv6(parseIPv6('1:0:0:2:0:0:0:3'))).toBe('1:0:0:2::3');
    expect(formatIPv6(parseIPv6('1:0:2:3:4:5:6:7'))).toBe('1:0:2:3:4:5:6:7');
    expect(formatIPv6(parseIPv6('::'))).toBe('::');
    expect(() => parseIPv6('fd00::g')).toThrow(/not a valid IPv6/);
  });

  it('recognizes IPv6 literals', () => {
    for (const ok of ['::', '::1', 'fd00::1', '1:2:3:4:5:6:7:8', '::ffff:1.2.3.4', '1:2:3:4:5:6:7::']) expect(isIPv6Literal(ok)).toBe(true);
    for (const bad of ['1.2.3.4', '1:2', ':::', '1::2::3', 'fd00::g', '1:2:3:4:5:6:7:8:9']) expect(isIPv6Literal(bad)).toBe(false);
  });

  it('parses OVN host[:port] forms', () => {
    expect(parseHostPort('10.0.0.1:80')).toEqual({ family: 4, addr: '10.0.0.1', port: 80 });
    expect(parseHostPort('10.0.0.1')).toEqual({ family: 4, addr: '10.0.0.1', port: 0 });
    expect(parseHostPort('[fd00::1]:443')).toEqual({ family: 6, addr: 'fd00::1', port: 443 });
    expect(parseHostPort('fd00::1')).toEqual({ family: 6, addr: 'fd00::1', port: 0 });
    for (const bad of ['10.0.0.1:', '10.0.0.1:080', '10.0.0.1:65536', '[fd00::1]', '[fd00::1:80', 'host:80']) {
      expect(() => parseHostPort(bad)).toThrow(RangeError);
    }
  });
});

describe('ERROR_CODES', () => {
  it('documents the config error code', () => {
    expect(ERROR_CODES).toHaveProperty(new ConfigError('f', 'p', 1).code);
  });
});
