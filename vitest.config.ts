import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Type tests (`expectTypeOf`, `// @ts-expect-error`) are checked by tsc, not run.
    typecheck: {
      enabled: true,
      include: ['test/**/*.test-d.ts'],
      tsconfig: './tsconfig.json',
    },
    environment: 'node',
    // Prints which PostgreSQL the tests use (server and version, or PGlite).
    globalSetup: ['./test/support/postgres-global-setup.ts'],
    pool: 'forks',
    // The CI machine has 2 cores; PostgreSQL itself needs some CPU too.
    maxWorkers: 2,
    // Database round-trips and property tests are slow next to unit tests; PGlite takes a few
    // seconds to start.
    testTimeout: 60_000,
    hookTimeout: 60_000,
    teardownTimeout: 20_000,
  },
})
