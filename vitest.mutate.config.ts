/**
 * The tests `npm run mutate` (StrykerJS, stryker.config.mjs) runs against each mutant: the tests
 * that pin the mutated modules (src/lineage, the pure phases of src/derived), on SQLite only
 * (that code is the same for both dialects), with the property tests at a pinned seed and fewer
 * runs, so that one mutant costs seconds, not minutes. Files without a database run first, so a
 * mutant they kill stops there (Stryker stops at the first failing test). Not used by `npm test`
 * or CI.
 */
import { defineConfig } from 'vitest/config'
import { BaseSequencer, type TestSpecification } from 'vitest/node'

/** Later files are slower: a database, then random queries. */
const SLOW = [/test\/derived\/(delta|keys|mutation-gaps)\.test\.ts$/, /property\.test\.ts$/]
const rank = (s: TestSpecification): number => SLOW.reduce((r, re, i) => (re.test(s.moduleId) ? i + 1 : r), 0)

class FastFirst extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    return [...files].sort((a, b) => rank(a) - rank(b) || (a.moduleId < b.moduleId ? -1 : a.moduleId > b.moduleId ? 1 : 0))
  }
}

export default defineConfig({
  test: {
    include: ['test/lineage/**/*.test.ts', 'test/derived/{graph,keys,key-text,delta,version,causes,mutation-gaps}.test.ts'],
    environment: 'node',
    env: { LQ_DIALECTS: 'sqlite', FC_SEED: '20261206', LQ_RUNS: '20' },
    sequence: { sequencer: FastFirst },
    // Stryker switches mutants at run time (static mutants are ignored, see stryker.config.mjs),
    // so modules need not be loaded again for every mutant.
    isolate: false,
    testTimeout: 120_000,
    hookTimeout: 60_000,
  },
})
