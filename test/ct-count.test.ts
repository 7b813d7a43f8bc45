/**
 * Counting across CPUs, on the real kernel. Established flows count in their
 * conntrack entry (bpf/lib/stats.h): one process pinned to one CPU sends packets of an
 * established flow through the XDP program (each adds to the entry's pending
 * counts) while another, pinned to the other CPU, runs the control plane's
 * fold (Dataplane.ctFold: takes the counts and adds them to the backend's row)
 * as fast as it can. Every packet must be counted exactly once: a plain add
 * in the data path, or a fold that read and then cleared the word in two
 * steps, would lose counts or count some twice. New flows count through
 * their CPU's ring of the flow log: one process sends new flows on one CPU
 * (the ring fills and its CPU folds it, over and over) while another folds
 * every ring from the other CPU (Dataplane.flowLogFold); a fold that moved the
 * tail before clearing the slots, or a ring written without its head, would
 * lose or double some.
 */
import { execFile } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Dataplane } from '../src/dataplane.js';
import { compile, type Compiled } from '../src/compile.js';
import { validateConfig } from '../src/config.js';
import { applyCompiled } from '../src/writer.js';
import { encodeCt4Key, encodeCt4Val, XLB, type Stats } from '../src/layout.js';
import { parseIPv4 } from '../src/addr.js';
import { monotonicNs } from '../src/conntrack.js';
import { tcpFrame } from '../bench/common.js';
import { closeAndUnpin } from './helpers/bpf.js';

const PIN_ROOT = `/sys/fs/bpf/xlb-ct-count-${process.pid}`;
const WORKER = join(import.meta.dirname, 'helpers', 'ct-count-worker.mjs');
const VIP = '10.0.0.1';
const CLIENT = '192.168.70.1';
const SPORT = 33000;
const PACKETS = Number(process.env.XLB_TEST_CT_COUNT_PACKETS ?? 100_000);
const run = promisify(execFile);

let dp: Dataplane;
let c: Compiled;

beforeAll(() => {
  Dataplane.removePins(PIN_ROOT);
  // A small established tier: a fold is one short walk.
  dp = Dataplane.open({ pinRoot: PIN_ROOT, mapSizes: { conntrack: 1024 } });
  c = compile(
    validateConfig({
      load_balancers: [{ name: 'web', protocol: 'tcp', vips: { [`${VIP}:80`]: '10.1.0.1:8080' } }],
      logical_switches: [{ name: 'sw', ports: ['lo'], load_balancer: ['web'] }],
    }),
  );
  applyCompiled(dp.store(), c, new Map([['lo', 1]]));
});

afterAll(() => closeAndUnpin(dp, PIN_ROOT));

async function worker(cpu: number, args: string[]): Promise<{ runs: number; folded: number; rewritten: number }> {
  const { stdout } = await run('taskset', ['-c', String(cpu), process.execPath, WORKER, PIN_ROOT, ...args], { timeout: 120_000 });
  return JSON.parse(stdout) as { runs: number; folded: number; rewritten: number };
}

/** A sender (its worker arguments) on CPU 0 against a folder (mode fold or foldlog) on CPU 1, for up
 *  to 3 s: every packet sent and rewritten, the two overlapping (the folder found counts to take many
 *  times). Returns the backend's counters before and after. */
async function race(sendArgs: string[], foldMode: string, backendId: number): Promise<{ before: Stats; after: Stats }> {
  const before = dp.backendStats(backendId);
  const [send, fold] = await Promise.all([worker(0, sendArgs), worker(1, [foldMode, '10000000', '', '', '', '3'])]);
  expect(send.runs).toBe(PACKETS);
  expect(send.rewritten).toBe(PACKETS);
  expect(fold.folded).toBeGreaterThan(100);
  return { before, after: dp.backendStats(backendId) };
}

describe('established flows’ counts under a concurrent fold', () => {
  it(`${PACKETS} packets on one CPU, folds on another: each counted once`, async () => {
    expect(availableParallelism()).toBeGreaterThanOrEqual(2);
    const vip = c.vips[0]!;
    const backendId = vip.backends[0]!.id;
    const key = encodeCt4Key({ saddr: parseIPv4(CLIENT), daddr: parseIPv4(VIP), sport: SPORT, dport: 80, proto: 6 });
    // Seen a little before now (the data plane's clock is the start of the current jiffy).
    const val = encodeCt4Val({
      natAddr: parseIPv4('10.1.0.1'),
      natPort: 8080,
      dir: XLB.DIR_FWD,
      state: XLB.CT_EST,
      vipId: vip.id,
      backendId,
      lastSeenNs: monotonicNs() - 50_000_000n,
    });
    dp.native.mapUpdate(dp.maps.xlb_ct4, key, val, 0);
    const { before, after } = await race(['send', String(PACKETS), CLIENT, VIP, String(SPORT)], 'fold', backendId);
    expect(after.packets - before.packets).toBe(BigInt(PACKETS));
    // the frame the sender sends, as the data plane counts it (its length)
    expect(after.bytes - before.bytes).toBe(BigInt(PACKETS * tcpFrame(0, 0, 0, 0, 0).length));
  });

  it(`${PACKETS} new flows on one CPU, the flow log folded on another: each counted once`, async () => {
    const vip = c.vips[0]!;
    const backendId = vip.backends[0]!.id;
    const { before, after } = await race(['sendnew', String(PACKETS), '192.168.80.1', VIP], 'foldlog', backendId);
    expect(after.newConns - before.newConns).toBe(BigInt(PACKETS));
    expect(after.packets - before.packets).toBe(BigInt(PACKETS));
    expect(after.bytes - before.bytes).toBe(BigInt(PACKETS * tcpFrame(0, 0, 0, 0, 0).length));
  });
});
