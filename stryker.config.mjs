// @ts-check
/**
 * Mutation testing (`npm run mutate`): StrykerJS changes the code of src/lineage and of the pure
 * phases of src/derived one small edit at a time (a `<` for a `<=`, a branch removed, a string
 * emptied) and runs the tests that cover each edit (vitest.mutate.config.ts); a mutant the tests
 * do not notice "survives" and points at behaviour no test pins. Run on demand, not in CI: a
 * full run takes tens of minutes on a loaded 2-core machine; later runs are incremental (only
 * mutants whose code or covering tests changed are run again). Reports: reports/mutation/.
 *
 * Narrow it with `npm run mutate -- --mutate src/derived/keys.ts`.
 *
 * @type {import('@stryker-mutator/api/core').PartialStrykerOptions}
 */
export default {
  testRunner: 'vitest',
  plugins: ['@stryker-mutator/vitest-runner'],
  vitest: { configFile: 'vitest.mutate.config.ts', related: false },
  mutate: [
    'src/lineage/**/*.ts',
    'src/derived/graph.ts',
    'src/derived/keys.ts',
    'src/derived/version.ts',
    'src/derived/delta.ts',
    'src/derived/causes.ts',
  ],
  // Each mutant runs only the tests that reached its code in the first (dry) run.
  coverageAnalysis: 'perTest',
  // A static mutant (a module-level value: a regex literal, an options object) reaches every
  // test through the module's loading, so it would rerun the whole selection: too slow here.
  // They are listed as ignored in the report.
  ignoreStatic: true,
  // The machine is shared; two workers at most.
  concurrency: 2,
  incremental: true,
  incrementalFile: 'reports/mutation/stryker-incremental.json',
  timeoutMS: 5_000,
  timeoutFactor: 1.5,
  dryRunTimeoutMinutes: 15,
  reporters: ['clear-text', 'progress', 'html', 'json'],
  htmlReporter: { fileName: 'reports/mutation/index.html' },
  jsonReporter: { fileName: 'reports/mutation/mutation.json' },
  clearTextReporter: { allowColor: false, logTests: false, maxTestsToLog: 0 },
  thresholds: { high: 90, low: 80, break: null },
  // Copied into the sandbox: what the tests need, not the benchmarks, docs or build output.
  ignorePatterns: ['dist', 'bench', 'docs', 'examples', 'reports', '.ci', '.scratch', '.snippets', 'test/package', 'test/cli', 'test/bench'],
  tempDirName: '.stryker-tmp',
  cleanTempDir: true,
}
