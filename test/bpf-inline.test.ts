// The data plane's array lookups are inlined by the verifier: a lookup left a call costs a helper
// call and its return (mispredicted on this kernel's Safe-RET mitigation) on the packet path.
// Maglev's per-class inner lookups are inlined only while each class keeps call sites of its own
// (bpf/lib/maglev.h, XLB_MAGLEV_TABLE_OF): were the compiler to merge them, every program would
// still load, slower. This loads the data plane (pinned under /sys/fs/bpf/xlb-t-inline-<pid>,
// removed afterwards), dumps each program as the kernel runs it (`bpftool prog dump xlated`) and
// finds no array lookup left a call. Run as root.
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Dataplane } from '../src/dataplane.js';
import { closeAndUnpin, loadOnLo } from './helpers/bpf.js';

const PIN_ROOT = `/sys/fs/bpf/xlb-t-inline-${process.pid}`;
const VIP = '10.0.0.1';
/** What a lookup left a call shows as: an array, per-CPU array or array-of-maps lookup the verifier
 *  did not inline, or the generic helper, kept where different maps reach one call. */
const ARRAY_LOOKUP_CALL = /call (?:(?:percpu_)?array_(?:of_)?map_lookup_elem|bpf_map_lookup_elem)\b/g;

let dp: Dataplane | undefined;

/** Program `name` as the kernel runs it (after the verifier's rewrites). */
function xlated(name: string): string {
  return execFileSync('bpftool', ['prog', 'dump', 'xlated', 'pinned', join(PIN_ROOT, `prog_${name}`)], {
    encoding: 'utf8',
    maxBuffer: 64 << 20,
  });
}

beforeAll(() => {
  Dataplane.removePins(PIN_ROOT);
  dp = loadOnLo(
    PIN_ROOT,
    {
      load_balancers: [{ name: 'lb', protocol: 'tcp', vips: { [`${VIP}:80`]: '10.1.0.1:8080,10.1.0.2:8080' } }],
      logical_switches: [{ name: 'sw', ports: ['lo'], load_balancer: ['lb'] }],
    },
    1,
  );
});

afterAll(() => closeAndUnpin(dp, PIN_ROOT));

describe('verifier inlining', () => {
  it('no program calls an array lookup, nor the generic lookup: the Maglev tables, counters and conntrack buckets are read inline', () => {
    const names = Object.keys(dp!.progs);
    expect(names.length).toBeGreaterThanOrEqual(7);
    for (const name of names) {
      const text = xlated(name);
      expect(text.length, name).toBeGreaterThan(0);
      expect(text.match(ARRAY_LOOKUP_CALL) ?? [], name).toEqual([]);
    }
  });

  it('the dump names the calls that remain (the VIP hash lookup), so a left array lookup would show; the Maglev maps are read there', () => {
    const text = xlated('xlb_xdp_ingress');
    expect(text).toMatch(/call __htab_map_lookup_elem\b/);
    // The tables' outer maps are referenced by the program (the first test is not true of a
    // program that never reads them): the default M's class (2) among them.
    const outer = dp!.native.mapInfo(dp!.maps.xlb_maglev_c2).id;
    expect(text).toContain(`map[id:${outer}]`);
  });
});
