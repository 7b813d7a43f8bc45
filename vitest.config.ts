import { defineConfig } from 'vitest/config';

// End-to-end and BPF tests share one pin root, global sysctls and network
// namespaces: files run one at a time, in a forked process each.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    pool: 'forks',
    fileParallelism: false,
    testTimeout: 60_000,
    hookTimeout: 120_000,
  },
});
