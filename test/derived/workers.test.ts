/**
 * Many workers, one store: real OS processes watching one store (a SQLite file in WAL mode, a
 * PostgreSQL schema) while this process writes the root table as a raw client and kills random
 * workers with SIGKILL mid-batch (starting new ones). After the writes stop, the workers reach
 * quiescence; then every derived row equals its function of the current inputs, no derived row
 * is orphaned, and no input revision was computed twice at once (the calls log of every
 * process, with the kill time as the end of a killed call). Bounded to seconds for CI.
 */
import { describe, it } from 'vitest'
import { killsUnderWrites, workerSuite } from './fixtures/worker-harness.js'

for (const dialect of ['sqlite', 'postgres'] as const) {
  describe(`many workers, one store [${dialect}]`, () => {
    const suite = workerSuite(dialect, 200)
    it('workers killed with SIGKILL mid-batch while a raw client writes: quiescence, every row right, nothing orphaned, no input computed twice at once', async () => {
      await killsUnderWrites(dialect, suite, { n: 200, killEveryMs: 700, quiescenceMs: 180_000 })
    }, 400_000)
  })
}
