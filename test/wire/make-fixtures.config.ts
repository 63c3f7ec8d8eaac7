// `npm run fixtures`: regenerates fixtures/ (not part of `npm test`).
import { defineConfig } from 'vitest/config';

export default defineConfig({ test: { include: ['test/wire/make-fixtures.gen.ts'], testTimeout: 120_000 } });
