/**
 * The tests `npm run mutate` (StrykerJS, stryker.config.mjs) runs against each mutant: the tests
 * that pin the mutated modules (src/lineage, the pure phases of src/derived), on SQLite only
 * (that code is the same for both dialects), with the property tests at a pinned seed and fewer
 * runs, so that one mutant costs seconds, not minutes. Not used by `npm test` or CI.
 */
import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    include: ['test/lineage/**/*.test.ts', 'test/derived/{graph,keys,key-text,delta,version,causes,mutation-gaps}.test.ts'],
    environment: 'node',
    env: { LQ_DIALECTS: 'sqlite', FC_SEED: '20261206', LQ_RUNS: '20' },
    testTimeout: 120_000,
    hookTimeout: 60_000,
  },
})
