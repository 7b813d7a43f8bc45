/**
 * Counters of reused ids on the kernel: on maps this process created, the
 * counters of ids it never wrote are known to be zero (no reset written), and
 * an id that served something before starts from zero when it is handed out
 * again (BPF_PROG_TEST_RUN counts the traffic).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Dataplane } from '../src/dataplane.js';
import { compile, type Compiled } from '../src/compile.js';
import { validateConfig } from '../src/config.js';
import { applyCompiled } from '../src/writer.js';
import { buildPacket, parsePacket } from './helpers/packet.js';
import { closeAndUnpin } from './helpers/bpf.js';

const PIN_ROOT = `/sys/fs/bpf/xlb-xtb-st-${process.pid}`;
const IFINDEX = 1;
let dp: Dataplane;

function config(vips: Record<string, string>): object {
  return {
    load_balancers: [{ name: 'lb', vips }],
    logical_switches: [{ name: 'sw', ports: ['lo'], load_balancer: ['lb'] }],
  };
}

function send(dst: string, n: number): void {
  for (let i = 0; i < n; i++) {
    const r = dp.native.progTestRun(dp.progs.xlb_xdp_ingress, {
      data: buildPacket({ proto: 'tcp', src: `192.168.7.${i + 1}`, dst, sport: 31000 + i, dport: 80 }),
      ifindex: IFINDEX,
    });
    expect(parsePacket(r.data).dst).not.toBe(dst);
  }
}

beforeAll(() => {
  Dataplane.removePins(PIN_ROOT);
  dp = Dataplane.open({ pinRoot: PIN_ROOT });
});

afterAll(() => closeAndUnpin(dp, PIN_ROOT));

describe('counters of new ids', () => {
  let c: Compiled;
  const apply = (vips: Record<string, string>): Compiled => {
    const prevIds = c?.ids;
    c = compile(validateConfig(config(vips)), prevIds);
    applyCompiled(dp.store(), c, new Map([['lo', IFINDEX]]), prevIds);
    return c;
  };
  const idOf = (name: string): number => c.vips.find((v) => v.name.includes(name))!.id;

  it('maps this process created: the highest ids written are tracked', () => {
    expect(dp.fresh).toBe(true);
    expect(dp.idsWritten).toEqual({ vip: 0, backend: 0 });
    apply({ '10.0.7.1:80': '10.7.0.1:8080', '10.0.7.2:80': '10.7.0.2:8080,10.7.0.3:8080' });
    expect(dp.idsWritten!.vip).toBe(Math.max(...c.vips.map((v) => v.id)));
    expect(dp.idsWritten!.backend).toBe(Math.max(...c.vips.flatMap((v) => v.backends.map((b) => b.id))));
  });

  it('an id handed out again starts from zero counters', () => {
    send('10.0.7.1', 3);
    const old = idOf('10.0.7.1');
    const oldBackend = c.vips.find((v) => v.id === old)!.backends[0]!.id;
    expect(dp.vipTotals([{ id: old, backendIds: [oldBackend] }]).get(old)!.newConns).toBe(3n);
    expect(dp.backendStats(oldBackend).newConns).toBe(3n);
    // The VIP's own row holds counts too (as Xlb folds a leaving backend's into it).
    dp.foldBackendStats([{ vipId: old, backendIds: [oldBackend] }]);
    expect(dp.vipStats(old).newConns).toBe(3n);
    // Removed (its ids are not reused in the same compile), then a new VIP takes the lowest free ids.
    apply({ '10.0.7.2:80': '10.7.0.2:8080,10.7.0.3:8080' });
    apply({ '10.0.7.2:80': '10.7.0.2:8080,10.7.0.3:8080', '10.0.7.9:80': '10.7.0.9:8080' });
    const reused = idOf('10.0.7.9');
    expect(reused).toBe(old);
    expect(c.vips.find((v) => v.id === reused)!.backends[0]!.id).toBe(oldBackend);
    expect(dp.vipStats(reused)).toMatchObject({ packets: 0n, newConns: 0n });
    expect(dp.backendStats(oldBackend)).toMatchObject({ packets: 0n, newConns: 0n });
    send('10.0.7.9', 2);
    expect(dp.vipTotals([{ id: reused, backendIds: [oldBackend] }]).get(reused)!.newConns).toBe(2n);
  });

  it('a last holder’s packets still in the flow log reach its row before its counts move to its VIP, and before its id is zeroed for the next holder', () => {
    const base = { '10.0.7.2:80': '10.7.0.2:8080,10.7.0.3:8080', '10.0.7.9:80': '10.7.0.9:8080' };
    apply({ ...base, '10.0.7.20:80': '10.7.0.20:8080' });
    const vip = idOf('10.0.7.20');
    const backend = c.vips.find((v) => v.id === vip)!.backends[0]!.id;
    // New flows count through this CPU's ring (bpf/lib/stats.h): folded by foldBackendStats first.
    send('10.0.7.20', 2);
    dp.foldBackendStats([{ vipId: vip, backendIds: [backend] }]);
    expect(dp.vipStats(vip).newConns).toBe(2n);
    // Four more in the ring when the VIP goes and a new one takes its ids: the reset of the ids
    // folds them first (into the old holder's row it then zeroes), so the new holder starts at zero.
    send('10.0.7.20', 4);
    apply(base);
    apply({ ...base, '10.0.7.21:80': '10.7.0.21:8080' });
    expect(idOf('10.0.7.21')).toBe(vip);
    expect(c.vips.find((v) => v.id === vip)!.backends[0]!.id).toBe(backend);
    expect(dp.backendStats(backend)).toMatchObject({ packets: 0n, newConns: 0n });
    send('10.0.7.21', 1);
    expect(dp.backendStats(backend)).toMatchObject({ packets: 1n, newConns: 1n });
  });

  it('maps adopted from pins: nothing is assumed about their counters', () => {
    const again = Dataplane.open({ pinRoot: PIN_ROOT });
    try {
      expect(again.fresh).toBe(false);
      expect(again.idsWritten).toBeNull();
    } finally {
      again.close();
    }
  });
});
