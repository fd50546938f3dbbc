/**
 * The watermark row's locks (PostgreSQL): a write of a comprehension's results reads the
 * watermark (`lateResults` in write.ts), and the same transaction then updates that row when the
 * table's applied code version is another one (now inside its COMMIT, `watermarkAtCommit`). While that read was FOR
 * SHARE, held to the commit (1c49782, since taken out: see `moveWatermark` in refresh.ts), two
 * writers holding the share lock that both updated the row waited for each other: a deadlock,
 * which the server broke after `deadlock_timeout` by failing one (retried). Found in review of
 * 1c49782; kept so that no lock on that row brings it back.
 */
import * as t from 'io-ts'
import { Kysely, PostgresDialect, sql } from 'kysely'
import pg from 'pg'
import { expect, it } from 'vitest'
import { createTable, insertRows } from '../../src/query/ddl.js'
import { Q, table } from '../../src/query/dsl.js'
import { openStore } from '../../src/derived/index.js'
import { eachDialect, pgUrl } from '../support/db.js'
import { holdable } from './support/holdable.js'

let n = 0

eachDialect('watermark row locks', (get) => {
  it('PostgreSQL: two workers storing results after a code change do not deadlock on the watermark row', async (ctx) => {
    const tdb = get()
    if (tdb.label !== 'postgres (server)') return ctx.skip() // two transactions at once need the server
    const { db } = tdb
    const schema = (await sql<{ s: string }>`SELECT current_schema() AS s`.execute(db)).rows[0]!.s
    // Each worker on its own pool, with the errors of its statements recorded.
    const errors: string[] = []
    const workerDb = () =>
      new Kysely<any>({
        dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString: pgUrl, max: 4, options: `-c search_path=${schema}` }) }),
        log: (e) => {
          if (e.level === 'error') errors.push(String((e.error as { code?: string }).code ?? e.error))
        },
      })
    const k = ++n
    const d = table(`wld${k}`, { id: t.Int, v: t.Int })
    const e = table(`wle${k}`, { id: t.Int, v: t.Int })
    await createTable(db, d)
    await createTable(db, e)
    await insertRows(db, d, [{ id: 0, v: 1 }, { id: 1, v: 2 }, { id: 2, v: 3 }])
    await insertRows(db, e, [{ id: 0, v: 10 }, { id: 1, v: 20 }, { id: 2, v: 30 }])
    const name = `wlj${k}`
    const gates = { A: holdable(), B: holdable() }
    const declare = async (w: Kysely<any>, who: 'A' | 'B') => {
      const s = await openStore(w, { leaseMs: 3_600_000 })
      await s.track(d)
      await s.track(e)
      s.derive({
        name,
        from: Q.for(d, (x) => Q.for(e, (y) => Q.where(Q.eq(x.id, y.id), Q.yield({ dv: x.v, ev: y.v })))),
        output: { n: t.Int },
        version: 'j1',
        fn: async (r) => {
          await gates[who].pass()
          return { n: r.dv + r.ev }
        },
      })
      return s
    }
    const wa = workerDb()
    const wb = workerDb()
    try {
      const A = await declare(wa, 'A')
      const B = await declare(wb, 'B')
      await A.refresh()
      // A code change as the table's last refresh saw it: the next writes forget the applied version.
      await sql`UPDATE lq_derived SET applied_code_version = 'j0' WHERE name = ${name}`.execute(db)
      await sql`UPDATE ${sql.id(d.name)} SET v = v + 100`.execute(db)
      gates.A.hold()
      gates.B.hold()
      const ra = A.refresh({ batchSize: 1 })
      await gates.A.held
      // A holds its first batch and has claimed the next one; B claims the last row.
      await new Promise((res) => setTimeout(res, 200))
      const rb = B.refresh({ batchSize: 1 })
      await gates.B.held
      // Both writes wait at their fence (a test transaction holds their claim rows), after their
      // read of the watermark; then both go on to update the watermark row.
      const waiting = async () => Number((await sql<{ n: unknown }>`SELECT count(*) AS n FROM pg_locks WHERE NOT granted`.execute(db)).rows[0]!.n)
      let unlock!: () => void
      let locked!: () => void
      const isLocked = new Promise<void>((r) => (locked = r))
      const released = new Promise<void>((r) => (unlock = r))
      const holder = db.transaction().execute(async (trx) => {
        await sql`SELECT 1 FROM lq_claim WHERE owner IN (${A.owner}, ${B.owner}) FOR UPDATE`.execute(trx)
        locked()
        await released
      })
      await isLocked
      gates.A.release()
      gates.B.release()
      for (let i = 0; i < 300 && (await waiting()) < 2; i++) await new Promise((res) => setTimeout(res, 10))
      unlock()
      await holder
      await Promise.all([ra, rb])
      expect(errors).toEqual([])
      const got = (await sql<{ n: unknown }>`SELECT n FROM ${sql.id(name)} ORDER BY n`.execute(db)).rows.map((x) => Number(x.n))
      expect(got).toEqual([111, 122, 133])
      expect(await A.stale()).toEqual([])
    } finally {
      await wa.destroy()
      await wb.destroy()
    }
  }, 60_000)
})
