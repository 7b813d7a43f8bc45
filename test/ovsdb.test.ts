import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeDatum, decodeRow } from '../src/ovsdb/datum.js';
import { JsonFramingError, JsonStreamSplitter } from '../src/ovsdb/framing.js';
import { OvsdbRemoteError, parseRemote, parseRemoteList } from '../src/ovsdb/remote.js';
import { OvsdbClient, OvsdbError, type OvsdbChangeInfo } from '../src/ovsdb/client.js';
import { NB_SCHEMA, TestOvsdbServer, nbctl } from './helpers/ovsdb-server.js';

/** Resolves when `pred` holds (checked on every 'change' and every 10 ms), or rejects after `ms`. */
async function waitFor(pred: () => boolean, ms: number, what: string): Promise<number> {
  const t0 = Date.now();
  while (!pred()) {
    if (Date.now() - t0 > ms) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
  return Date.now() - t0;
}

describe('JsonStreamSplitter', () => {
  it('splits merged messages and joins split ones, byte by byte', () => {
    const msgs = [{ id: 1, result: ['a}b', 'c{d', 'e"f\\'] }, { method: 'update', params: ['x', { T: { u: { new: { s: '[]{}\\"' } } } }], id: null }, [1, [2, { a: '}' }]]];
    const text = msgs.map((m) => JSON.stringify(m)).join(' \n');
    const whole = new JsonStreamSplitter().push(text);
    expect(whole).toEqual(msgs);
    const sp = new JsonStreamSplitter();
    const got: unknown[] = [];
    for (const ch of Buffer.from(text)) got.push(...sp.push(Buffer.from([ch])));
    expect(got).toEqual(msgs);
    expect(sp.pending).toBe(false);
  });

  it('joins multi-byte UTF-8 split across chunks', () => {
    const buf = Buffer.from(JSON.stringify({ s: 'é€😀 }' }));
    const sp = new JsonStreamSplitter();
    const out = [...sp.push(buf.subarray(0, 8)), ...sp.push(buf.subarray(8, 9)), ...sp.push(buf.subarray(9))];
    expect(out).toEqual([{ s: 'é€😀 }' }]);
  });

  it('refuses bad framing, invalid JSON and oversized messages', () => {
    expect(() => new JsonStreamSplitter().push('42')).toThrow(JsonFramingError);
    expect(() => new JsonStreamSplitter().push('{"a":]')).toThrow(/invalid JSON message/);
    const sp = new JsonStreamSplitter(10);
    expect(() => sp.push('{"a":"0123456789')).toThrow(/larger than 10/);
    expect(sp.push('{}')).toEqual([{}]);
  });
});

describe('OVSDB values and remotes', () => {
  it('decodes atoms, sets, maps and uuids, shaped by the column type', () => {
    expect(decodeDatum(['uuid', 'u1'])).toBe('u1');
    expect(decodeDatum(['named-uuid', 'row1'])).toBe('row1');
    expect(decodeDatum(['set', [1, 2]])).toEqual([1, 2]);
    expect(decodeDatum(['map', [['k', 'v'], [1, ['uuid', 'u']]]])).toEqual({ k: 'v', 1: 'u' });
    const setOfUuid = { key: { type: 'uuid' }, min: 0, max: 'unlimited' as const };
    expect(decodeDatum(['uuid', 'u1'], setOfUuid)).toEqual(['u1']);
    expect(decodeDatum(['set', []], setOfUuid)).toEqual([]);
    expect(decodeDatum(['set', []], { key: 'string', min: 0, max: 1 })).toBeNull();
    expect(decodeDatum('tcp', { key: 'string', min: 0, max: 1 })).toBe('tcp');
    expect(decodeDatum(['map', []], { key: 'string', value: 'string', min: 0, max: 'unlimited' })).toEqual({});
    expect(decodeRow({ name: 'x', n: 3 }, { name: { type: 'string' } })).toEqual({ name: 'x', n: 3 });
    expect(() => decodeDatum({ bad: 1 })).toThrow(/not an OVSDB atom/);
  });

  it('parses remotes and lists', () => {
    expect(parseRemote('unix:/run/ovn/ovnnb_db.sock')).toEqual({ kind: 'unix', path: '/run/ovn/ovnnb_db.sock', text: 'unix:/run/ovn/ovnnb_db.sock' });
    expect(parseRemote('tcp:10.0.0.1:6641')).toMatchObject({ kind: 'tcp', host: '10.0.0.1', port: 6641 });
    expect(parseRemote('tcp:[::1]:6641')).toMatchObject({ kind: 'tcp', host: '::1', port: 6641 });
    expect(parseRemoteList('tcp:a:1, tcp:b:2,unix:/x').map((r) => r.text)).toEqual(['tcp:a:1', 'tcp:b:2', 'unix:/x']);
    expect(() => parseRemote('tcp:10.0.0.1')).toThrow(OvsdbRemoteError);
    expect(() => parseRemote('tcp:h:99999')).toThrow(/1\.\.65535/);
    expect(() => parseRemote('ssl:h:1')).toThrow(/not supported/);
    expect(() => parseRemoteList('unix:/a,,unix:/b')).toThrow(/empty entry/);
  });
});

describe('OvsdbClient against a real ovsdb-server', () => {
  const nb = new TestOvsdbServer('nb', NB_SCHEMA);
  const clients: OvsdbClient[] = [];
  const fast = { backoffInitialMs: 50, backoffMaxMs: 400, connectTimeoutMs: 1000, requestTimeoutMs: 3000 };
  const client = (remote: string, extra: Partial<ConstructorParameters<typeof OvsdbClient>[0]> = {}): OvsdbClient => {
    const c = new OvsdbClient({ remote, database: 'OVN_Northbound', ...fast, ...extra });
    c.on('error', () => undefined);
    clients.push(c);
    return c;
  };
  const lbNames = (c: OvsdbClient): string[] => [...c.table('Load_Balancer').values()].map((r) => String(r.name)).sort();

  beforeAll(async () => {
    await nb.start();
  });
  afterAll(async () => {
    for (const c of clients) await c.stop();
    await nb.destroy();
  });

  it('list_dbs, get_schema and transact over tcp', async () => {
    const c = client(nb.tcpRemote);
    c.start();
    await c.ready(3000);
    expect(await c.listDbs()).toContain('OVN_Northbound');
    const schema = await c.getSchema();
    expect(schema.tables.Load_Balancer?.columns.vips).toBeDefined();
    const res = await c.transact([{ op: 'insert', table: 'Load_Balancer', row: { name: 'tx1', vips: ['map', [['10.0.0.1:80', '10.0.1.1:80']]] } }]);
    expect(res[0]).toMatchObject({ uuid: ['uuid', expect.any(String)] });
    await expect(c.transact([{ op: 'insert', table: 'No_Such_Table', row: {} }])).rejects.toThrow(/OVSDB transact on tcp:127\.0\.0\.1:\d+: .*No_Such_Table|unknown table/);
    await c.transact([{ op: 'delete', table: 'Load_Balancer', where: [['name', '==', 'tx1']] }]);
  });

  it('monitors: initial contents, insert, modify, delete', async () => {
    await nbctl(nb, 'lb-add', 'lbm', '172.16.255.62:8000', '172.16.255.130:8000', 'tcp');
    const c = client(nb.unixRemote, { monitor: { Load_Balancer: ['name', 'vips', 'protocol'], Logical_Switch: null } });
    const changes: OvsdbChangeInfo[] = [];
    c.on('change', (info) => changes.push(info));
    c.start();
    await c.ready(3000);
    expect(lbNames(c)).toEqual(['lbm']);
    expect(changes[0]).toEqual({ tables: ['Load_Balancer', 'Logical_Switch'], resync: true });
    const row = [...c.table('Load_Balancer').values()][0];
    expect(row).toMatchObject({ name: 'lbm', protocol: 'tcp', vips: { '172.16.255.62:8000': '172.16.255.130:8000' } });
    expect(row?.options).toBeUndefined(); // not monitored

    await nbctl(nb, 'ls-add', 'sw1');
    await waitFor(() => c.table('Logical_Switch').size === 1, 2000, 'switch insert');
    const sw = [...c.table('Logical_Switch').values()][0];
    expect(sw?.ports).toEqual([]); // a set column is always an array
    expect(sw?.copp).toBeNull(); // an optional scalar

    await nbctl(nb, 'lb-add', 'lbm', '172.16.255.63:80', '172.16.255.140:80', 'tcp');
    await waitFor(() => Object.keys((([...c.table('Load_Balancer').values()][0]?.vips ?? {}) as object)).length === 2, 2000, 'vip modify');
    expect([...c.table('Load_Balancer').values()][0]?.name).toBe('lbm');

    await nbctl(nb, 'lb-del', 'lbm');
    await nbctl(nb, 'ls-del', 'sw1');
    await waitFor(() => c.table('Load_Balancer').size === 0 && c.table('Logical_Switch').size === 0, 2000, 'deletes');
    expect(changes.some((ch) => !ch.resync && ch.tables.includes('Load_Balancer'))).toBe(true);
  });

  it('refuses a monitor of an unknown table with an error naming remote and operation', async () => {
    const c = client(nb.unixRemote, { monitor: { No_Such: null } });
    const errors: OvsdbError[] = [];
    c.on('error', (e) => errors.push(e));
    c.start();
    await waitFor(() => errors.length > 0, 2000, 'monitor error');
    expect(errors[0]?.message).toBe(`OVSDB monitor on ${nb.unixRemote}: table No_Such is not in the OVN_Northbound schema`);
    await c.stop();
  });

  it('tries a comma-separated list in turn when the first member is dead', async () => {
    const dead = `unix:${nb.dir}/nobody-here.sock`;
    const c = client(`${dead},${nb.tcpRemote}`, { monitor: { Load_Balancer: ['name'] } });
    c.start();
    await c.ready(3000);
    expect(c.remote).toBe(nb.tcpRemote);
    await c.stop();
    expect(c.connected).toBe(false);
    const none = client(`${dead},unix:${nb.dir}/nor-here.sock`);
    none.start();
    await expect(none.ready(300)).rejects.toThrow(/OVSDB connect on unix:.*nobody-here.sock,unix:.*nor-here.sock: no session within 300 ms \(last failure: unix:/);
    await none.stop();
  });

  it('reconnects after a server restart with a full resync', async () => {
    await nbctl(nb, 'lb-add', 'before', '10.1.0.1:80', '10.2.0.1:80', 'tcp');
    const c = client(nb.unixRemote, { monitor: { Load_Balancer: ['name'] } });
    const events: string[] = [];
    c.on('connected', (i) => events.push(`connected resync=${i.resync}`));
    c.on('disconnected', () => events.push('disconnected'));
    c.start();
    await c.ready(3000);
    expect(lbNames(c)).toEqual(['before']);
    await nb.stop();
    await waitFor(() => !c.connected, 2000, 'disconnect');
    expect(lbNames(c)).toEqual(['before']); // the replica is kept while disconnected
    // Changed while we were away: only a full resync can notice the delete.
    await nb.start();
    await nbctl(nb, 'lb-del', 'before');
    await nbctl(nb, 'lb-add', 'during', '10.1.0.2:80', '10.2.0.2:80', 'tcp');
    await waitFor(() => c.connected && lbNames(c).join() === 'during', 3000, 'resync');
    await nbctl(nb, 'lb-add', 'after', '10.1.0.3:80', '10.2.0.3:80', 'tcp');
    await waitFor(() => lbNames(c).join() === 'after,during', 2000, 'update after resync');
    expect(events).toEqual(['connected resync=false', 'disconnected', 'connected resync=true']);
    await nbctl(nb, 'lb-del', 'during');
    await nbctl(nb, 'lb-del', 'after');
  });

  it('answers server echoes and detects a stopped server with its own echo', async () => {
    const c = client(nb.unixRemote, { monitor: { Load_Balancer: ['name'] }, echoIntervalMs: 200, echoTimeoutMs: 300 });
    const gone: string[] = [];
    c.on('disconnected', (i) => gone.push(i.reason));
    c.start();
    await c.ready(3000);
    await c.request('echo', ['ping']).then((r) => expect(r).toEqual(['ping']));
    nb.pause();
    try {
      const took = await waitFor(() => gone.length > 0, 2000, 'echo timeout');
      expect(gone[0]).toBe('no echo reply within 300 ms');
      expect(took).toBeLessThanOrEqual(200 + 300 + 300);
    } finally {
      nb.resume();
    }
    await waitFor(() => c.connected, 3000, 'reconnect after SIGCONT');
  });
});
