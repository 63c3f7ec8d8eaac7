import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Hang guards, not time budgets: a test that runs a dozen cold CLI
    // processes in a row took over 60 s on a machine loaded to 14x its
    // cores. Timing belongs in benchmarks; here only a hang may fail.
    testTimeout: 180_000,
    hookTimeout: 240_000,
    // Tests that start real mail servers and network namespaces must not
    // fight over ports and namespaces: run files one at a time.
    fileParallelism: false,
    pool: 'forks',
  },
});
