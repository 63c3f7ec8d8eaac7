import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // Tests that start real mail servers and network namespaces must not
    // fight over ports and namespaces: run files one at a time.
    fileParallelism: false,
    pool: 'forks',
  },
});
