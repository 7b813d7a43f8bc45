/**
 * The benchmark's smoke run: tiny counts, every stage must produce numbers.
 * Never a timed assertion: the figures themselves are not checked.
 */
import { expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run, ROOT } from './helpers/e2e.js';

it('npm run bench -- --quick produces a figure for every path and hook', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'xlb-bench-'));
  try {
    const out = join(dir, 'hotpath.json');
    const r = await run(process.execPath, [join(ROOT, 'dist', 'bench', 'run.js'), '--quick', '--json', out], 300);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('| hook | path |');
    const res = JSON.parse(readFileSync(out, 'utf8')) as {
      meta: { method: string };
      rows: Array<{ hook: string; path: string; medianNs: number; noopMedianNs: number }>;
    };
    expect(res.meta.method).toMatch(/BPF_PROG_TEST_RUN/);
    const keys = res.rows.map((x) => `${x.hook}/${x.path}`);
    for (const hook of ['xdp', 'tc']) {
      for (const path of ['established flow', 'new flow', 'not LB traffic']) expect(keys).toContain(`${hook}/${path}`);
    }
    expect(keys).toContain('tc egress/reply (reverse NAT)');
    for (const row of res.rows) {
      expect(row.medianNs).toBeGreaterThan(0);
      expect(row.noopMedianNs).toBeGreaterThan(0);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
