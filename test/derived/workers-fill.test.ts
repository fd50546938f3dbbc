/**
 * A first fill by many workers, under kills (the harness of workers.test.ts, `killsUnderWrites`, varied): a
 * table of N rows filled at once by worker processes with a concurrency limit of 1 or 16
 * and batches of 20 or 400 (the read-ahead by queue, the fence over every key of a lease, the
 * end-of-fill span wait), killed with SIGKILL mid-fill while a raw client writes. Then, as in
 * workers.test.ts: quiescence within a bound (no wait that never ends), every row right,
 * nothing orphaned, no input computed twice at once.
 */
import { readFileSync } from 'node:fs'
import { sql } from 'kysely'
import { describe, expect, it } from 'vitest'
import { claimDialects } from '../../src/derived/sql/claims.js'
import { killsUnderWrites, overlappingCalls, sleep, startWorkers, workerSuite } from './fixtures/worker-harness.js'

const N = 3000

for (const dialect of ['sqlite', 'postgres'] as const) {
  for (const opts of [{ concurrency: 1, batch: 20 }, { concurrency: 16, batch: 400 }]) {
    describe(`a first fill by many workers under kills, concurrency ${opts.concurrency}, batches of ${opts.batch} [${dialect}]`, () => {
      const suite = workerSuite(dialect, N)
      it('workers killed with SIGKILL mid-fill while a raw client writes: quiescence within a bound, every row right, nothing orphaned, no input computed twice at once', async () => {
        await killsUnderWrites(dialect, suite, { n: N, killEveryMs: 400, quiescenceMs: 90_000, opts })
      }, 400_000)
    })
  }
}

// refresh() (not watch) waits for the rows other workers hold, and for the span a first fill
// jumped over (PostgreSQL): processes that each run one refresh at once, one killed mid-fill.
for (const dialect of ['sqlite', 'postgres'] as const) {
  describe(`a first fill by refresh() in many processes, one killed mid-fill [${dialect}]`, () => {
    const suite = workerSuite(dialect, N)

    it('the other refresh() calls end (no wait that never ends) with every row right, no claim left, no input computed twice at once', async () => {
      const { t, workers } = suite
      const { log } = await startWorkers(dialect, suite, 4, { concurrency: 4, batch: 100 }, 'refresh-child.ts')
      // Kill one once calls have started (mid-fill).
      for (const t0 = Date.now(); readFileSync(log, 'utf8').split('\n').length < 400 && Date.now() - t0 < 30_000; ) await sleep(20)
      const victim = workers[1]!
      victim.proc.kill('SIGKILL')
      const killed = new Map([[victim.proc.pid!, Date.now()]])
      const others = workers.filter((w) => w !== victim)
      const codes = await Promise.race([Promise.all(others.map((w) => w.exited)), sleep(90_000).then(() => 'timeout' as const)])
      expect(codes, JSON.stringify(others.map((w) => w.out.slice(-400)))).toEqual(others.map(() => 0))
      const roots = (await sql<{ id: unknown; v: unknown }>`SELECT id, v FROM src ORDER BY id`.execute(t.db)).rows.map((r) => [String(r.id), Number(r.v)] as const)
      const as = new Map((await sql<{ lq_key: string; y: unknown }>`SELECT lq_key, y FROM a`.execute(t.db)).rows.map((r) => [r.lq_key, Number(r.y)]))
      const bs = new Map((await sql<{ lq_key: string; z: unknown }>`SELECT lq_key, z FROM b`.execute(t.db)).rows.map((r) => [r.lq_key, Number(r.z)]))
      expect(roots.filter(([k, v]) => as.get(k) !== 2 * v || bs.get(k) !== 2 * v + 1).length).toBe(0)
      expect((await claimDialects[dialect].held(t.db)).filter((c) => c.owner.includes(`:${victim.proc.pid}:`) === false).length).toBe(0)
      expect(overlappingCalls(log, killed)).toEqual([])
    }, 200_000)
  })
}
