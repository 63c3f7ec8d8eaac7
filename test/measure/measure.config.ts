// Measurements, not tests: not part of `npm test`. See hostile-rss.gen.ts.
import { defineConfig } from 'vitest/config';

export default defineConfig({ test: { include: ['test/measure/*.gen.ts'], testTimeout: 900_000, hookTimeout: 120_000 } });
