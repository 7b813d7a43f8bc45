/**
 * The new-flow tier's bucket lock (bpf/lib/ctnew.h) across CPUs, on the real
 * kernel: two processes, each pinned to its own CPU, insert source-NATed new
 * flows into a tier of ONE bucket at once (every insert contends), and read
 * each flow's two entries back under the lock: every field that ties a value
 * to its key must match (source NAT keeps the client's port, so both entries
 * of a flow name it). Afterwards no bucket is left locked and the tier works.
 * What this guards is liveness under contention (no lock left held, no
 * operation wedged, every flow counted) and consistent entries. It does not
 * prove mutual exclusion itself: with the compare-and-swap removed (the lock
 * always "taken") this test passed too, the writers' stores being too short to
 * interleave visibly here. Exclusion rests on the atomic instructions.
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Dataplane } from '../src/dataplane.js';
import { compile } from '../src/compile.js';
import { validateConfig } from '../src/config.js';
import { applyCompiled } from '../src/writer.js';
import { encodeCt4Key, LAYOUT, XLB } from '../src/layout.js';
import { parseIPv4 } from '../src/addr.js';
import { buildPacket, TCP_FLAGS } from './helpers/packet.js';
import { closeAndUnpin } from './helpers/bpf.js';

const PIN_ROOT = `/sys/fs/bpf/xlb-ct-lock-${process.pid}`;
const WORKER = join(import.meta.dirname, 'helpers', 'ct-lock-worker.mjs');
const VIP = '10.0.0.1';
const SNAT = '10.9.9.9';
const PER_WRITER = Number(process.env.XLB_TEST_CT_LOCK_FLOWS ?? 20_000);
const run = promisify(execFile);

let dp: Dataplane;

beforeAll(() => {
  Dataplane.removePins(PIN_ROOT);
  // One bucket: both writers always want the same lock.
  dp = Dataplane.open({ pinRoot: PIN_ROOT, mapSizes: { conntrackNew: XLB.CT_NEW_WAYS } });
  const c = compile(
    validateConfig({
      load_balancers: [{ name: 'web', protocol: 'tcp', vips: { [`${VIP}:80`]: '10.1.0.1:8080,10.1.0.2:8080' } }],
      logical_routers: [
        {
          name: 'r1',
          ports: [{ name: 'r1-lo', interface: 'lo', mac: '00:00:00:00:ff:01', networks: ['10.1.0.254/24'] }],
          load_balancer: ['web'],
          options: { lb_force_snat_ip: SNAT },
        },
      ],
    }),
  );
  applyCompiled(dp.store(), c, new Map([['lo', 1]]));
});

afterAll(() => closeAndUnpin(dp, PIN_ROOT));

interface WorkerResult {
  sent: number;
  fwdSeen: number;
  revSeen: number;
  torn: unknown[];
}

async function writer(cpu: number, client: string, port: number): Promise<WorkerResult> {
  const { stdout } = await run('taskset', ['-c', String(cpu), process.execPath, WORKER, PIN_ROOT, client, VIP, SNAT, String(port), String(PER_WRITER)], {
    timeout: 240_000,
  });
  return JSON.parse(stdout) as WorkerResult;
}

describe('the new-flow tier bucket lock', () => {
  it(`two CPUs inserting ${PER_WRITER} flows each into one bucket: consistent entries, no lock left held`, async () => {
    expect(dp.native.mapInfo(dp.maps.xlb_ct4_new).maxEntries).toBe(1);
    const g0 = dp.globalCounters();
    const [a, b] = await Promise.all([writer(0, '192.168.50.1', 10_000), writer(1, '192.168.60.1', 40_000)]);
    for (const w of [a, b]) {
      expect(w.sent).toBe(PER_WRITER);
      expect(w.torn).toEqual([]);
      // Entries were there to check (the other writer evicts some between insert and read).
      expect(w.fwdSeen + w.revSeen).toBeGreaterThan(PER_WRITER / 2);
    }
    const g1 = dp.globalCounters();
    expect(g1.new_flow - g0.new_flow).toBe(BigInt(2 * PER_WRITER));
    // Not left locked: the control word's lock bit is clear, and a new flow is recorded.
    const bucket = dp.native.mapLookup(dp.maps.xlb_ct4_new, Buffer.alloc(4), LAYOUT.xlb_ct4_bucket.size)!;
    expect(bucket.readBigUInt64LE(LAYOUT.xlb_ct4_bucket.offsets.ctl) >> 63n).toBe(0n);
    dp.native.progTestRun(dp.progs.xlb_xdp_ingress, {
      data: buildPacket({ src: '192.168.70.1', dst: VIP, proto: 'tcp', sport: 5555, dport: 80, tcpFlags: TCP_FLAGS.syn }),
      ifindex: 1,
      repeat: 1,
    });
    expect(dp.ct4NewLookup(encodeCt4Key({ saddr: parseIPv4('192.168.70.1'), daddr: parseIPv4(VIP), sport: 5555, dport: 80, proto: 6 }))).not.toBeNull();
    console.log(`ct lock: ${a.fwdSeen + a.revSeen} + ${b.fwdSeen + b.revSeen} entries checked, ct_busy ${g1.ct_busy - g0.ct_busy}`);
  }, 300_000);
});
