/**
 * Many workers, one store, with a join: the kills-under-writes test of workers.test.ts over a
 * comprehension as well, `c` = the pairs of `src` and `grp` with `grp.id = src.v` (a pair leaves
 * the join when its `src` row's v grows, or its `grp` row is deleted), while the raw client
 * writes both roots and random workers are killed with SIGKILL. Join rows computed from inputs
 * that changed before they were stored (rows stored late), deleted pairs and taken-over leases
 * all meet here. Then quiescence, every row of `a`, `b` and `c` right, no join row orphaned, no
 * input of `a` computed twice at once. The second case stops workers (SIGSTOP) for twice the
 * lease and resumes them, as well as killing others: a stopped worker must hold the others up
 * for no longer than its lease, and what it stores once resumed must not undo their work.
 */
import { describe, it } from 'vitest'
import { killsUnderWrites, workerSuite } from './fixtures/worker-harness.js'

for (const dialect of ['sqlite', 'postgres'] as const) {
  describe(`many workers, one store, with a join [${dialect}]`, () => {
    const suite = workerSuite(dialect, 120, true)
    it('workers killed with SIGKILL mid-batch while a raw client writes both roots of a join: quiescence, every join row right, none orphaned', async () => {
      await killsUnderWrites(dialect, suite, { n: 120, killEveryMs: 700, quiescenceMs: 180_000, join: true })
    }, 400_000)
    it('workers stopped (SIGSTOP) past their lease and resumed, or killed, while a raw client writes both roots of a join: quiescence, every row right, none orphaned, no input computed twice while its lease held', async () => {
      await killsUnderWrites(dialect, suite, { n: 120, killEveryMs: 600, quiescenceMs: 180_000, join: true, pauses: true })
    }, 400_000)
  })
}
