/**
 * PostgreSQL connections of watching workers cut by the server (pg_terminate_backend: a
 * failover, a restarted pooler, an administrator) while a raw client writes: the workers go on
 * (their watch retries, their LISTEN connection comes back) and reach quiescence with every row
 * right; none exits.
 */
import { sql } from 'kysely'
import { describe, expect, it } from 'vitest'
import { notQuiescent, sleep, startWorkers, workerSuite } from './fixtures/worker-harness.js'

describe('worker connections cut by the server [postgres]', () => {
  const suite = workerSuite('postgres', 100)
  it('watching workers whose connections are terminated mid-run go on and reach quiescence, every row right', async () => {
    const { t, workers } = suite
    await startWorkers('postgres', suite, 2)
    const schema = (await sql<{ s: string }>`SELECT current_schema() AS s`.execute(t.db)).rows[0]!.s
    let cuts = 0
    for (let round = 0; round < 6; round++) {
      for (let i = 0; i < 20; i++) await sql`UPDATE src SET v = v + 1 WHERE id = ${1 + ((round * 20 + i) % 100)}`.execute(t.db)
      await sleep(150)
      const r = await sql<{ n: unknown }>`SELECT count(pg_terminate_backend(pid)) AS n FROM pg_stat_activity WHERE application_name = ${`lq-worker ${schema}`}`.execute(t.db)
      cuts += Number(r.rows[0]!.n)
    }
    expect(cuts).toBeGreaterThan(0)
    const deadline = Date.now() + 60_000
    for (let why = await notQuiescent('postgres', t); why !== undefined; why = await notQuiescent('postgres', t)) {
      if (Date.now() > deadline) throw new Error(`no quiescence: ${why}; workers: ${JSON.stringify(workers.map((w) => w.out.slice(0, 1500)))}`)
      await sleep(200)
    }
    // Still watching: a new write is computed too.
    await sql`UPDATE src SET v = v + 1 WHERE id = 1`.execute(t.db)
    const later = Date.now() + 30_000
    for (let why = await notQuiescent('postgres', t); why !== undefined; why = await notQuiescent('postgres', t)) {
      if (Date.now() > later) throw new Error(`a write after the cuts was not computed: ${why}; workers: ${JSON.stringify(workers.map((w) => w.out.slice(0, 1500)))}`)
      await sleep(200)
    }
    // None exited (a watcher that gave up on an error would have).
    const exited = workers.filter((w) => w.proc.exitCode !== null)
    if (exited.length > 0) throw new Error(`a worker exited: ${JSON.stringify(exited.map((w) => w.out.slice(-6000)))}`)
  }, 120_000)
})
