/**
 * A first fill by many workers, under kills (workers.test.ts's harness, fixtures/worker-harness.ts, varied): a
 * table of N_FILL rows filled at once by worker processes with a concurrency limit of 1 or 16
 * and batches of 20 or 400 (the read-ahead by queue, the fence over every key of a lease, the
 * end-of-fill span wait), killed with SIGKILL mid-fill while a raw client writes. Then, as in
 * workers.test.ts: quiescence within a bound (no wait that never ends), every row right,
 * nothing orphaned, no input computed twice at once.
 *
 * Many workers, one store: real OS processes watching one store (a SQLite file in WAL mode, a
 * PostgreSQL schema) while this process writes the root table as a raw client and kills random
 * workers with SIGKILL mid-batch (starting new ones). After the writes stop, the workers reach
 * quiescence; then every derived row equals its function of the current inputs, no derived row
 * is orphaned, and no input revision was computed twice at once (the calls log of every
 * process, with the kill time as the end of a killed call). Bounded to seconds for CI.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { sql } from 'kysely'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { createTable, insertRows } from '../../src/query/ddl.js'
import { openStore } from '../../src/derived/index.js'
import { claimDialects } from '../../src/derived/sql/claims.js'
import { declareWorkers, src } from './fixtures/worker-schema.js'
import { LEASE_MS, overlappingCalls, sleep, startWorker, target, type Target, type Worker } from './fixtures/worker-harness.js'

const N = 3000

for (const dialect of ['sqlite', 'postgres'] as const) {
  for (const opts of [{ concurrency: 1, batch: 20 }, { concurrency: 16, batch: 400 }]) {

  describe(`a first fill by many workers under kills, concurrency ${opts.concurrency}, batches of ${opts.batch} [${dialect}]`, () => {
    let dir: string
    let t: Target
    const workers: Worker[] = []
    beforeEach(async () => {
      dir = mkdtempSync(join(tmpdir(), 'lq-workers-'))
      t = await target(dialect, dir)
      await createTable(t.db, src)
      await insertRows(t.db, src, Array.from({ length: N }, (_, i) => ({ id: i + 1, v: 1 })))
    }, 120_000)
    afterEach(async () => {
      for (const w of workers.splice(0)) if (w.proc.exitCode === null && w.proc.signalCode === null) w.proc.kill('SIGKILL')
      await t.close()
      rmSync(dir, { recursive: true, force: true })
    })

    it('workers killed with SIGKILL mid-fill while a raw client writes: quiescence within a bound, every row right, nothing orphaned, no input computed twice at once', async () => {
      const log = join(dir, 'calls.log')
      writeFileSync(log, '')
      const store = await openStore(t.db, { leaseMs: LEASE_MS })
      await declareWorkers(store)
      await store.stale() // creates the derived tables before the workers start
      for (let i = 0; i < 3; i++) workers.push(startWorker(dialect, t, log, opts))
      await Promise.all(workers.map((w) => w.ready))
      const killed = new Map<number, number>()
      // Writes: updates (v only grows), inserts and deletes, as a raw client; a kill every ~700 ms.
      let next = N + 1
      const end = Date.now() + 3500
      let lastKill = Date.now()
      let writes = 0
      while (Date.now() < end) {
        const id = 1 + Math.floor(Math.random() * (next - 1))
        const r = Math.random()
        if (r < 0.7) await sql`UPDATE src SET v = v + 1 WHERE id = ${id}`.execute(t.db)
        else if (r < 0.85) await sql`INSERT INTO src (id, v) VALUES (${next++}, 1)`.execute(t.db)
        else await sql`DELETE FROM src WHERE id = ${id}`.execute(t.db)
        writes++
        if (Date.now() - lastKill > 400) {
          lastKill = Date.now()
          // A worker that is watching (a process still starting has nothing to lose), and never
          // the last one: the others must be able to take its rows over.
          const live = workers.filter((w) => w.isReady && w.proc.exitCode === null && w.proc.signalCode === null)
          const victim = live.length < 2 ? undefined : live[Math.floor(Math.random() * live.length)]
          if (victim !== undefined) {
            victim.proc.kill('SIGKILL')
            killed.set(victim.proc.pid!, Date.now())
            workers.push(startWorker(dialect, t, log, opts))
          }
        }
        await sleep(5)
      }
      // Quiescence: every derived row is its function of the current inputs, nothing else is
      // stored, and no claim is left (a killed worker's expire after LEASE_MS). Read from the
      // tables: this process's own store would see the workers' rows as another build's code
      // (vitest and tsx compile the function's text differently).
      const check = async (): Promise<string | undefined> => {
        const roots = (await sql<{ id: unknown; v: unknown }>`SELECT id, v FROM src ORDER BY id`.execute(t.db)).rows.map((r) => [String(r.id), Number(r.v)] as const)
        const as = new Map((await sql<{ lq_key: string; y: unknown }>`SELECT lq_key, y FROM a`.execute(t.db)).rows.map((r) => [r.lq_key, Number(r.y)]))
        const bs = new Map((await sql<{ lq_key: string; z: unknown }>`SELECT lq_key, z FROM b`.execute(t.db)).rows.map((r) => [r.lq_key, Number(r.z)]))
        // Live claims only: a killed worker's expired claim rows stay until their keys are claimed again.
        const claims = (await claimDialects[dialect].held(t.db)).length
        const wrong = roots.filter(([k, v]) => as.get(k) !== 2 * v || bs.get(k) !== 2 * v + 1).length
        const orphans = [...as.keys(), ...bs.keys()].filter((k) => !roots.some(([r]) => r === k)).length
        return wrong === 0 && orphans === 0 && claims === 0 ? undefined : `${wrong} rows not yet right, ${orphans} orphaned derived rows, ${claims} claims`
      }
      const deadline = Date.now() + 90_000
      for (let why = await check(); why !== undefined; why = await check()) {
        if (Date.now() > deadline) throw new Error(`no quiescence: ${why}; workers: ${JSON.stringify(workers.map((w) => w.out.slice(-400)))}`)
        await sleep(200)
      }
      // Stop the workers: those watching finish their batch and exit 0 (one still starting dies of the signal).
      const watching = workers.filter((w) => w.isReady && !killed.has(w.proc.pid!))
      for (const w of workers) if (w.proc.exitCode === null && w.proc.signalCode === null) w.proc.kill('SIGTERM')
      const codes = await Promise.all(watching.map((w) => w.exited))
      expect(codes).toEqual(watching.map(() => 0))
      expect(writes).toBeGreaterThan(10)
      expect(killed.size).toBeGreaterThan(0)
      expect(await check()).toBeUndefined()
      // The store's own metadata agrees: every row fresh for the workers' code.
      const meta = await sql<{ n: unknown }>`SELECT count(*) AS n FROM lq_meta_a WHERE lq_state NOT IN ('ok', 'deleted')`.execute(t.db)
      expect(Number(meta.rows[0]!.n)).toBe(0)
      // No input revision computed twice at once, across processes.
      expect(overlappingCalls(log, killed)).toEqual([])
    }, 400_000)
  })
}
}

// refresh() (not watch) waits for the rows other workers hold, and for the span a first fill
// jumped over (PostgreSQL): processes that each run one refresh at once, one killed mid-fill.
for (const dialect of ['sqlite', 'postgres'] as const) {
  describe(`a first fill by refresh() in many processes, one killed mid-fill [${dialect}]`, () => {
    let dir: string
    let t: Target
    const workers: Worker[] = []
    beforeEach(async () => {
      dir = mkdtempSync(join(tmpdir(), 'lq-workers-'))
      t = await target(dialect, dir)
      await createTable(t.db, src)
      await insertRows(t.db, src, Array.from({ length: N }, (_, i) => ({ id: i + 1, v: 1 })))
    }, 120_000)
    afterEach(async () => {
      for (const w of workers.splice(0)) if (w.proc.exitCode === null && w.proc.signalCode === null) w.proc.kill('SIGKILL')
      await t.close()
      rmSync(dir, { recursive: true, force: true })
    })

    it('the other refresh() calls end (no wait that never ends) with every row right, no claim left, no input computed twice at once', async () => {
      const log = join(dir, 'calls.log')
      writeFileSync(log, '')
      const store = await openStore(t.db, { leaseMs: LEASE_MS })
      await declareWorkers(store)
      await store.stale()
      for (let i = 0; i < 4; i++) workers.push(startWorker(dialect, t, log, { concurrency: 4, batch: 100 }, 'refresh-child.ts'))
      await Promise.all(workers.map((w) => w.ready))
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
