// IPv6 in compile + writer, against the in-memory MapStore: IPv6 VIPs and
// backends land in xlb_vip6 / xlb_backends6 with ids shared with IPv4, an apply
// twice is a no-op, an id that changes family leaves nothing in the other map,
// and a failed write rolls back the IPv6 maps too.
import { describe, it, expect } from 'vitest';
import { compile, EMPTY_IDS, type Ids } from '../src/compile.js';
import { validateConfig } from '../src/config.js';
import { ApplyError } from '../src/errors.js';
import { decodeBackend6, decodeU32, decodeVip6Key, decodeVipVal } from '../src/layout.js';
import { formatIPv6 } from '../src/addr.js';
import { MemoryStore, type MapName } from '../src/store.js';
import { applyCompiled } from '../src/writer.js';

const IFINDEX = new Map([['eth1', 11]]);
const MAPS: MapName[] = ['xlb_vip4', 'xlb_backends', 'xlb_ifaces', 'xlb_vip6', 'xlb_backends6'];
const SMALL = { xlb_maglev_size: '97' };

function state(vips: Record<string, string>, protocol = 'tcp'): unknown {
  return {
    load_balancers: [{ name: 'lb', protocol, vips, options: SMALL }],
    logical_switches: [{ name: 'sw', ports: ['eth1'], load_balancer: ['lb'] }],
  };
}

function snapshot(store: MemoryStore): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const m of MAPS) out[m] = [...store.dump(m)].map(([k, v]) => [k, v.toString('hex')]).sort();
  out.tables = store.tableIds().sort((a, b) => a - b).map((id) => [id, Array.from(store.readTable(id)!)]);
  return out;
}

class Harness {
  readonly store = new MemoryStore();
  ids: Ids = EMPTY_IDS;
  apply(input: unknown) {
    const c = compile(validateConfig(input), this.ids);
    const s = applyCompiled(this.store, c, IFINDEX, this.ids);
    this.ids = c.ids;
    return { c, s };
  }
}

describe('IPv6 through compile and the writer', () => {
  it('writes IPv6 VIPs and backends to their own maps, with ids shared with IPv4', () => {
    const h = new Harness();
    const { c } = h.apply(state({ '[fd00::1]:80': '[fd00:1::1]:8080,[fd00:1::2]:8080', '10.0.0.1:80': '10.0.1.1:80' }));
    const v6 = c.vips.find((v) => v.vip === '[fd00::1]:80')!;
    const v4 = c.vips.find((v) => v.vip === '10.0.0.1:80')!;
    expect(v6.addr6?.toString('hex')).toBe('fd000000000000000000000000000001');
    expect(v6.backends.map((b) => b.text)).toEqual(['[fd00:1::1]:8080', '[fd00:1::2]:8080']);

    const vips6 = [...h.store.dump('xlb_vip6')];
    expect(vips6).toHaveLength(1);
    const key = decodeVip6Key(Buffer.from(vips6[0][0], 'hex'));
    expect([formatIPv6(key.addr), key.port, key.proto]).toEqual(['fd00::1', 80, 6]);
    expect(decodeVipVal(vips6[0][1]).vipId).toBe(v6.id);
    expect(h.store.dump('xlb_vip4').size).toBe(1);

    const be6 = new Map([...h.store.dump('xlb_backends6')].map(([k, v]) => [decodeU32(Buffer.from(k, 'hex')), decodeBackend6(v)]));
    expect([...be6.keys()].sort()).toEqual(v6.backends.map((b) => b.id).sort());
    expect(formatIPv6(be6.get(v6.backends[0].id)!.addr)).toBe('fd00:1::1');
    expect(be6.get(v6.backends[0].id)!.port).toBe(8080);
    const be4 = [...h.store.dump('xlb_backends').keys()].map((k) => decodeU32(Buffer.from(k, 'hex')));
    expect(be4).toEqual(v4.backends.map((b) => b.id));
    for (const id of be4) expect(be6.has(id)).toBe(false);
    expect(h.store.readTable(v6.id)?.[0]).toBe(97);
  });

  it('an apply twice is a no-op', () => {
    const h = new Harness();
    const input = state({ '[fd00::1]:80': '[fd00:1::1]:8080', 'fd00::2': 'fd00:1::9' });
    h.apply(input);
    const before = snapshot(h.store);
    const { s } = h.apply(input);
    expect(s.writes).toBe(0);
    expect(snapshot(h.store)).toEqual(before);
  });

  it('an id that changes family leaves nothing in the other family\'s map', () => {
    const h = new Harness();
    h.apply(state({ '10.0.0.1:80': '10.0.1.1:80' }));
    h.apply(state({ '[fd00::1]:80': '[fd00:1::1]:80' }));
    expect(h.store.dump('xlb_vip4').size).toBe(0);
    expect(h.store.dump('xlb_backends').size).toBe(0);
    expect(h.store.dump('xlb_vip6').size).toBe(1);
    expect(h.store.dump('xlb_backends6').size).toBe(1);
    h.apply(state({}));
    for (const m of ['xlb_vip6', 'xlb_backends6'] as const) expect(h.store.dump(m).size).toBe(0);
  });

  it('a failed write rolls the IPv6 maps back too', () => {
    const h = new Harness();
    h.apply(state({ '[fd00::1]:80': '[fd00:1::1]:8080' }));
    const before = snapshot(h.store);
    h.store.failAt = h.store.writes + 3;
    expect(() => h.apply(state({ '[fd00::1]:80': '[fd00:1::2]:8080', '[fd00::5]:80': '[fd00:1::3]:8080' }))).toThrow(ApplyError);
    expect(snapshot(h.store)).toEqual(before);
  });
});
