/** The README's configuration example is valid config (docs that run). */
import { expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseConfigText } from '../src/config.js';
import { ROOT } from './helpers/e2e.js';

it('the YAML example in the README validates', () => {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const blocks = [...readme.matchAll(/```yaml\n([\s\S]*?)```/g)].map((m) => m[1]);
  expect(blocks.length).toBeGreaterThan(0);
  for (const b of blocks) {
    const d = parseConfigText(b, 'README.md');
    expect(d.load_balancers.length).toBeGreaterThan(0);
  }
});
