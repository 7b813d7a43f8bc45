/**
 * The API state persisted as a snapshot and a journal: a PUT of one VIP
 * appends one line naming that VIP (the snapshot is not rewritten), a daemon
 * killed after N journaled writes restarts serving the last one (keys in the
 * same order), a torn last line is ignored, a graceful stop folds the journal
 * into the snapshot, and a PUT that fails validation changes neither the
 * served state, the kernel (no apply) nor the files. A real daemon (child
 * process), its own pin root and state dir.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { appendFileSync, existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { Xlb } from '../src/xlb.js';
import { API_JOURNAL_FILE, API_STATE_FILE } from '../src/sources/api.js';
import { XlbApiError, XlbClient } from '../src/daemon/client.js';
import { DaemonProc } from './helpers/daemon.js';

const I = { pinRoot: `/sys/fs/bpf/xlb-xap-${process.pid}`, stateDir: `/run/xlb-xap-${process.pid}` };
const socket = join(I.stateDir, 'xap.sock');
const snapshotPath = join(I.stateDir, API_STATE_FILE);
const journalPath = join(I.stateDir, API_JOURNAL_FILE);
let daemon: DaemonProc | null = null;

const vip = (i: number): string => `10.77.${i >> 8}.${i & 255}:80`;
const list = (i: number, shift = 0): string => Array.from({ length: 4 }, (_, j) => `10.78.${i & 255}.${j + 1 + shift}:8080`).join(',');
const client = (): XlbClient => new XlbClient({ socketPath: socket });
const start = async (): Promise<DaemonProc> => (daemon = await DaemonProc.start(I, ['--api-socket', socket, '--ct-gc-interval', '0']));
const journalLines = (): string[] => (existsSync(journalPath) ? readFileSync(journalPath, 'utf8').split('\n').filter((l) => l !== '') : []);
async function vipsOf(name: string): Promise<Record<string, string>> {
  const lbs = await client().loadBalancers();
  return (lbs.find((l) => l.name === name)?.vips ?? {}) as Record<string, string>;
}

beforeAll(() => {
  Xlb.reset(I);
  rmSync(I.stateDir, { recursive: true, force: true });
});

afterAll(async () => {
  await daemon?.stop('SIGKILL');
  Xlb.reset(I);
  rmSync(I.stateDir, { recursive: true, force: true });
});

describe('API state journal', () => {
  const expected: Record<string, string> = {};

  it('journals one line per PUT of a VIP, naming that VIP only; the snapshot stays as it was', async () => {
    await start();
    const base: Record<string, string> = {};
    for (let i = 0; i < 200; i++) base[vip(i)] = list(i);
    await client().request('PUT', '/v1/load-balancers/big', { protocol: 'tcp', vips: base });
    Object.assign(expected, base);
    expect(existsSync(snapshotPath)).toBe(true);
    const snapshot = readFileSync(snapshotPath, 'utf8');
    const before = journalLines().length;
    // Changed lists, new VIPs (appended), one removed, one removed and set again (moved to the end).
    for (let p = 0; p < 12; p++) {
      const i = p < 8 ? p * 17 : 200 + p;
      await client().setVip('big', vip(i), list(i, 1));
      expected[vip(i)] = list(i, 1);
    }
    await client().deleteVip('big', vip(5));
    delete expected[vip(5)];
    await client().deleteVip('big', vip(17));
    delete expected[vip(17)];
    await client().setVip('big', vip(17), list(17, 2));
    expected[vip(17)] = list(17, 2);
    await client().request('PUT', '/v1/load-balancers/small', { protocol: 'udp', vips: { '10.79.0.1:53': '10.80.0.1:53' } });
    const lines = journalLines();
    expect(lines.length - before).toBe(16);
    // A PUT of one VIP of 200: a line of that VIP's list, not the load balancer.
    const one = JSON.parse(lines[before]!) as { changes: { load_balancers: Array<{ name: string; set: Record<string, string> }> } };
    expect(one.changes.load_balancers).toEqual([{ name: 'big', lb: { name: 'big', protocol: 'tcp' }, set: { [vip(0)]: list(0, 1) }, unset: [] }]);
    expect(lines[before]!.length).toBeLessThan(300);
    expect(readFileSync(snapshotPath, 'utf8')).toBe(snapshot);
    expect(JSON.stringify(await vipsOf('big'))).toBe(JSON.stringify(expected));
  });

  it('a daemon killed after the journaled PUTs restarts serving the last one (same keys, same order)', async () => {
    expect(await daemon!.stop('SIGKILL')).toBe(null);
    await start();
    expect(JSON.stringify(await vipsOf('big'))).toBe(JSON.stringify(expected));
    expect(await vipsOf('small')).toEqual({ '10.79.0.1:53': '10.80.0.1:53' });
  });

  it('a torn last line (a crash while appending) is ignored and cut off; writes go on', async () => {
    await daemon!.stop('SIGKILL');
    appendFileSync(journalPath, '{"seq":99999,"changes":{"load_balancers":[{"name":"big","del"');
    await start();
    expect(JSON.stringify(await vipsOf('big'))).toBe(JSON.stringify(expected));
    await client().setVip('big', vip(3), list(3, 3));
    expected[vip(3)] = list(3, 3);
    await daemon!.stop('SIGKILL');
    await start();
    expect(JSON.stringify(await vipsOf('big'))).toBe(JSON.stringify(expected));
  });

  it('a PUT that fails validation changes neither the served state, the kernel nor the files', async () => {
    const snapshot = readFileSync(snapshotPath, 'utf8');
    const journal = readFileSync(journalPath, 'utf8');
    const applies = (await client().stats()).daemon.applies;
    const err = await client()
      .setVip('big', vip(4), '10.78.0.1:8080,not-an-ip:80')
      .then(() => null, (e: unknown) => e);
    expect(err).toBeInstanceOf(XlbApiError);
    expect((err as XlbApiError).field).toBe('backends');
    expect((err as XlbApiError).message).toContain('not-an-ip');
    expect((await client().stats()).daemon.applies).toBe(applies);
    expect(readFileSync(snapshotPath, 'utf8')).toBe(snapshot);
    expect(readFileSync(journalPath, 'utf8')).toBe(journal);
    expect(JSON.stringify(await vipsOf('big'))).toBe(JSON.stringify(expected));
  });

  it('a graceful stop folds the journal into the snapshot, which restarts the same', async () => {
    expect(await daemon!.stop('SIGTERM')).toBe(0);
    expect(journalLines()).toEqual([]);
    const snap = JSON.parse(readFileSync(snapshotPath, 'utf8')) as { fragment: { load_balancers: Array<{ name: string; vips: Record<string, string> }> } };
    expect(JSON.stringify(snap.fragment.load_balancers.find((l) => l.name === 'big')!.vips)).toBe(JSON.stringify(expected));
    await start();
    expect(JSON.stringify(await vipsOf('big'))).toBe(JSON.stringify(expected));
    await client().setVip('big', vip(9), list(9, 4));
    expected[vip(9)] = list(9, 4);
    expect(journalLines().length).toBe(1);
    await daemon!.stop('SIGKILL');
    await start();
    expect(JSON.stringify(await vipsOf('big'))).toBe(JSON.stringify(expected));
  });
});
