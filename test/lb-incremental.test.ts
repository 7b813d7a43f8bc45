// Load-balancer-level changes among many load balancers (no root): the
// incremental path — validateConfig handing back the same object for an
// unchanged load balancer, compile skipping it and reusing the previous
// compile's `vips` and `entries` arrays, the writer diffing by identity —
// gives exactly what a full validation and compile give, and the store a
// from-scratch apply gives. Bad input is refused with its field and value and
// leaves nothing behind (neither in the store nor in the caches).
import { describe, it, expect } from 'vitest';
import { compile, EMPTY_IDS, type Compiled } from '../src/compile.js';
import { validateConfig, withVip, type DesiredState } from '../src/config.js';
import { ConfigError } from '../src/errors.js';
import { MemoryStore, type MapName } from '../src/store.js';
import { plainCompiled, storeSnapshot } from './helpers/compiled.js';
import { applyCompiled, type Deferred } from '../src/writer.js';
import { desiredDelta, idsOf, loadState, StateFile } from '../src/state-file.js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const IFINDEX = new Map([
  ['xlbcp-s1', 21],
  ['xlbcp-s2', 22],
  ['xlbcp-r1', 23],
]);
const MAPS: MapName[] = ['xlb_vip4', 'xlb_vip6', 'xlb_backends', 'xlb_backends6', 'xlb_ifaces', 'xlb_snat4', 'xlb_neigh4'];
const LBS = 30;
const VIPS = 8;

const list = (l: number, v: number, shift = 0): string => Array.from({ length: 4 }, (_, j) => `10.${100 + l}.${v}.${j + 1 + shift}:8080`).join(',');
/** Load balancer l's VIPs, frozen (kept by the caller, as the daemon's API source keeps them). */
const vipsOf = (l: number): Readonly<Record<string, string>> =>
  Object.freeze(Object.fromEntries(Array.from({ length: VIPS }, (_, v) => [`10.${l}.0.${v + 1}:80`, list(l, v)])));

type Lb = { name: string; protocol?: string; vips: Readonly<Record<string, string>>; options?: Record<string, string> };
/** The raw input: LBs on two switches (even/odd) and the first five on a router too; new wrapper objects each time. */
function raw(lbs: Lb[], sw: { s1?: string[]; s2?: string[]; r1?: string[] } = {}): object {
  const names = lbs.map((l) => l.name);
  return {
    load_balancers: lbs.map((l) => ({ ...l })),
    logical_switches: [
      { name: 's1', ports: ['xlbcp-s1'], load_balancer: sw.s1 ?? names.filter((_, i) => i % 2 === 0) },
      { name: 's2', ports: ['xlbcp-s2'], load_balancer: sw.s2 ?? names.filter((_, i) => i % 2 === 1) },
    ],
    logical_routers: [
      {
        name: 'r1',
        ports: [{ name: 'r1-p', interface: 'xlbcp-r1', mac: '02:00:00:00:00:01', networks: ['10.0.0.1/8'] }],
        load_balancer: sw.r1 ?? names.slice(0, 5),
        nat: [{ type: 'snat', external_ip: '192.0.2.1', logical_ip: '10.1.0.0/16' }],
      },
    ],
  };
}

const snapshot = (store: MemoryStore): Record<string, unknown> => storeSnapshot(store, MAPS);

const plain = plainCompiled;

/** Xlb.apply's path reduced to a store: validate, compile reusing the last compile, write against it. */
class Incremental {
  readonly store = new MemoryStore();
  last: Compiled | null = null;
  desired: DesiredState | null = null;
  pending: Deferred[] = [];
  reserved = new Set<number>();
  apply(input: object): Compiled {
    const d = validateConfig(input);
    const c = compile(d, this.last?.ids ?? EMPTY_IDS, undefined, this.last, { reservedBackendIds: this.reserved });
    applyCompiled(this.store, c, IFINDEX, this.last?.ids ?? EMPTY_IDS, {
      prev: this.last ?? undefined,
      prevIfindexes: (this.last?.ifaces ?? []).map((i) => IFINDEX.get(i.interface)!),
      onDeferred: (x) => {
        this.pending.push(x);
        for (const id of x.backendIds) this.reserved.add(id);
      },
    });
    for (const x of this.pending) {
      x.run();
      for (const id of x.backendIds) this.reserved.delete(id);
    }
    this.pending = [];
    this.desired = d;
    return (this.last = c);
  }
}

/** The incremental result equals a full validation (of a deep copy: no cache can answer) and a full compile with the same ids; the store equals a from-scratch apply. */
function expectSameAsFull(x: Incremental, input: object): void {
  const c = x.last!;
  const full = compile(validateConfig(JSON.parse(JSON.stringify(input))), c.ids);
  expect(plain(c)).toEqual(plain(full));
  const fresh = new MemoryStore();
  applyCompiled(fresh, full, IFINDEX);
  expect(snapshot(x.store)).toEqual(snapshot(fresh));
}

/** Small tables (M = 97) keep the full compiles of every step quick. */
const M = { xlb_maglev_size: '97' };
const initial = (): Lb[] => Array.from({ length: LBS }, (_, l) => ({ name: `lb${l}`, vips: vipsOf(l), options: { ...M } }));

describe('load-balancer-level changes among many load balancers', () => {
  it('one VIP of one load balancer: the other load balancers are the same objects, and so are the compile arrays where nothing changed', () => {
    const lbs = initial();
    const x = new Incremental();
    x.apply(raw(lbs));
    const d0 = x.desired!;
    const c0 = x.last!;
    // The same input again: every load balancer the same (frozen) object, the compile's arrays the previous ones.
    x.apply(raw(lbs));
    x.desired!.load_balancers.forEach((lb, i) => expect(lb).toBe(d0.load_balancers[i]));
    expect(Object.isFrozen(x.desired!.load_balancers[0])).toBe(true);
    expect(Object.isFrozen(x.desired!.load_balancers[0]!.options)).toBe(true);
    expect(x.last!.vips).toBe(c0.vips);
    expect(x.last!.entries).toBe(c0.entries);
    // One backend list of lb17 (withVip, as PUT /v1/load-balancers/lb17/vips/KEY builds it).
    lbs[17] = { ...lbs[17]!, vips: withVip(lbs[17]!.vips, '10.17.0.3:80', list(17, 2, 1)) };
    const c1 = x.apply(raw(lbs));
    x.desired!.load_balancers.forEach((lb, i) => (i === 17 ? expect(lb).not.toBe(d0.load_balancers[i]) : expect(lb).toBe(d0.load_balancers[i])));
    // The entries are the same (a VIP-map entry does not name backends): the very array; one VIP differs.
    expect(x.last!.entries).toBe(c0.entries);
    expect(x.last!.vips).not.toBe(c0.vips);
    expect(x.last!.vips.filter((v, i) => v !== c0.vips[i]).map((v) => v.name)).toEqual(['lb17 10.17.0.3:80/tcp']);
    expectSameAsFull(x, raw(lbs));
  });

  it('adding, removing, reordering, moving load balancers and changing their options or protocol: each step equals a full compile', () => {
    let lbs = initial();
    const x = new Incremental();
    x.apply(raw(lbs));
    // The bookkeeping's journal follows along: each step's delta, replayed on the snapshot, gives the step's desired state.
    const dir = mkdtempSync(join(tmpdir(), 'xlbcp-journal-'));
    const journal = new StateFile(dir);
    journal.snapshot({ version: 2, pinRoot: '/xlbcp', ids: idsOf({}, []), desired: x.desired!, vips: [], ifaces: [] });
    const steps: Array<[string, () => object]> = [
      ['one VIP of lb4 (on the router)', () => ((lbs[4] = { ...lbs[4]!, vips: withVip(lbs[4]!.vips, '10.4.0.1:80', list(4, 0, 2)) }), raw(lbs))],
      ['a VIP added to lb9', () => ((lbs[9] = { ...lbs[9]!, vips: withVip(lbs[9]!.vips, '10.9.0.99:80', list(9, 99)) }), raw(lbs))],
      ['a load balancer added', () => ((lbs = [...lbs, { name: 'lbnew', vips: vipsOf(77), options: { ...M } }]), raw(lbs))],
      ['a load balancer removed', () => ((lbs = lbs.filter((l) => l.name !== 'lb12')), raw(lbs))],
      ['options of lb3 set', () => ((lbs[3] = { ...lbs[3]!, options: { ...M, affinity_timeout: '30', hairpin_snat_ip: '10.0.0.9' } }), raw(lbs))],
      [
        'options of lb3 changed in place (the same options object)',
        () => {
          lbs[3]!.options!.affinity_timeout = '60';
          return raw(lbs);
        },
      ],
      ['skip_snat on lb1 (router scope)', () => ((lbs[1] = { ...lbs[1]!, options: { ...M, skip_snat: 'true' } }), raw(lbs))],
      ['protocol of lb5 to udp', () => ((lbs[5] = { ...lbs[5]!, protocol: 'udp' }), raw(lbs))],
      ['the load balancers reordered', () => ((lbs = [...lbs.slice(10), ...lbs.slice(0, 10)]), raw(lbs))],
      ['lb20 moved from one switch to the other', () => {
        const names = lbs.map((l) => l.name);
        return raw(lbs, { s1: names.filter((n, i) => i % 2 === 0 && n !== 'lb20'), s2: [...names.filter((n, i) => i % 2 === 1 && n !== 'lb20'), 'lb20'] });
      }],
      ['the router serves other load balancers', () => raw(lbs, { r1: ['lb6', 'lb7', 'lbnew'] })],
      ['a load balancer left unattached', () => raw(lbs, { s1: lbs.map((l) => l.name).filter((n, i) => i % 2 === 0 && n !== 'lb0') })],
      ['back to every load balancer attached', () => raw(lbs)],
    ];
    try {
      for (const [what, make] of steps) {
        const input = make();
        const was = x.desired!;
        x.apply(input);
        try {
          expectSameAsFull(x, input);
          const rest = { vipsSet: [], vipsDel: [], scopes: {}, ifaces: [], warnings: [] };
          expect(journal.append({ seq: journal.nextSeq(), ...desiredDelta(was, x.desired!), ...rest })).toBe(true);
          expect(JSON.parse(JSON.stringify(loadState(dir, '/xlbcp')!.desired))).toEqual(JSON.parse(JSON.stringify(x.desired)));
        } catch (e) {
          throw new Error(`${what}: ${(e as Error).message}`);
        }
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('bad input with load balancers validated before: refused naming the field and value, nothing applied, the next apply still right', () => {
    const lbs = initial();
    const x = new Incremental();
    x.apply(raw(lbs));
    const before = snapshot(x.store);
    const last = x.last;
    const refused = (input: object, field: string, text: string): void => {
      let err: unknown;
      try {
        x.apply(input);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as ConfigError).field).toBe(field);
      expect((err as Error).message).toContain(text);
      expect(x.last).toBe(last);
      expect(snapshot(x.store)).toEqual(before);
    };
    // A bad option value on a load balancer otherwise as before.
    const badOpt = lbs.map((l, i) => (i === 3 ? { ...l, options: { ...M, affinity_timeout: 'soon' } } : l));
    refused(raw(badOpt), 'load_balancers[3].options.affinity_timeout', 'soon');
    // An unknown key on one.
    const unknown = raw(lbs) as { load_balancers: Array<Record<string, unknown>> };
    unknown.load_balancers[8]!.colour = 'blue';
    refused(unknown, 'load_balancers[8].colour', 'unknown key');
    // The same load balancer twice (the copy is as validated before).
    refused(raw([...lbs, lbs[2]!]), `load_balancers[${LBS}].name`, 'duplicate load balancer name "lb2"');
    // A VIP of lb0 added to lb2 (both on switch s1): the overlap, naming both.
    const clash = [...lbs];
    clash[2] = { ...lbs[2]!, vips: withVip(lbs[2]!.vips, '10.0.0.1:80', list(0, 0)) };
    refused(raw(clash), 'logical_switches[0].load_balancer[1]', 'load balancers "lb0" and "lb2" both define VIP 10.0.0.1:80/tcp');
    // A bad backend list in one VIP of one load balancer.
    const badVip = [...lbs];
    badVip[11] = { ...lbs[11]!, vips: withVip(lbs[11]!.vips, '10.11.0.2:80', '10.0.0.1:80,10.0.0.999:80') };
    refused(raw(badVip), 'load_balancers[11].vips["10.11.0.2:80"]', '10.0.0.999:80');
    // The state before again: nothing to write; a good change after it: equal to a full compile.
    x.store.writes = 0;
    x.apply(raw(lbs));
    expect(x.store.writes).toBe(0);
    const good = [...lbs];
    good[2] = { ...lbs[2]!, vips: withVip(lbs[2]!.vips, '10.2.0.4:80', list(2, 3, 1)) };
    good[3] = { ...lbs[3]!, options: { ...M, affinity_timeout: '5' } };
    x.apply(raw(good));
    expectSameAsFull(x, raw(good));
  });
});
