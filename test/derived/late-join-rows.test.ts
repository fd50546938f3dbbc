/**
 * A join row computed from inputs that changed before it was stored (a late row: the pair no
 * longer joins), stored by a pass that does not end (its refresh stopped, as if killed, or a
 * watch wave that left rows behind) after another worker's refresh processed the change and
 * moved the table's watermark past it: no later scan looks at the change again, so the late row
 * stays, orphaned. (The pass over rows left behind moves the watermark back to its first clock,
 * lost-claims.test.ts, but only a pass that ends moves it.) Failed at a8e8af0 and after, up to
 * the fix: the write of a comprehension's batch reads the watermark and, when it is past the
 * batch's evaluation clock, refuses results whose recorded inputs changed since (`lateResults`
 * in write.ts).
 */
import * as t from 'io-ts'
import { sql } from 'kysely'
import { expect, it } from 'vitest'
import { createTable, insertRows } from '../../src/query/ddl.js'
import { Q, table } from '../../src/query/dsl.js'
import { openStore } from '../../src/derived/index.js'
import { eachDialect } from '../support/db.js'
import { holdable } from './support/holdable.js'

let n = 0

eachDialect('late join rows', (get) => {
  it('a join row stored late, from inputs another worker processed the change of, by a refresh that then stops is not left orphaned', async () => {
    const { db } = get()
    const k = ++n
    const d = table(`od${k}`, { id: t.Int, v: t.Int })
    const e = table(`oe${k}`, { id: t.Int, v: t.Int })
    await createTable(db, d)
    await createTable(db, e)
    await insertRows(db, d, [{ id: 0, v: 13 }, { id: 1, v: 7 }])
    await insertRows(db, e, [{ id: 0, v: 10 }])
    const name = `oj${k}`
    const gate0 = holdable()
    const gate1 = holdable()
    const declare = async (held: boolean) => {
      const s = await openStore(db, { leaseMs: 3_600_000 })
      await s.track(d)
      await s.track(e)
      s.derive({
        name,
        from: Q.for(d, (x) => Q.for(e, (y) => Q.where(Q.le(Q.abs(Q.sub(x.v, y.v)), 3), Q.yield({ dv: x.v, ev: y.v })))),
        output: { n: t.Int },
        version: 'j1',
        fn: async (r, ctx) => {
          if (held && ctx.lineage.some((l) => l.table === d.name && l.key === 0)) await gate0.pass()
          if (held && ctx.lineage.some((l) => l.table === d.name && l.key === 1)) await gate1.pass()
          return { n: r.dv + r.ev }
        },
      })
      return s
    }
    const A = await declare(true)
    const B = await declare(false)
    gate0.hold()
    gate1.hold()
    const ac = new AbortController()
    const ra = A.refresh({ batchSize: 1, signal: ac.signal })
    ra.catch(() => undefined)
    await gate0.held
    // Its next batch, (d 1, e 0), is claimed meanwhile.
    await new Promise((res) => setTimeout(res, 200))
    // A claimed both pairs (one batch each); (d 0, e 0) no longer joins, A's leases run out, and B
    // takes (d 1, e 0) over and ends, its watermark past the change.
    await sql`UPDATE ${sql.id(d.name)} SET v = 0 WHERE id = 0`.execute(db)
    await sql`UPDATE lq_claim SET expires = 0 WHERE owner = ${A.owner}`.execute(db)
    await B.refresh()
    gate0.release()
    await gate1.held
    // A stored its late (d 0, e 0) row; it stops now (as if killed) before its pass ends.
    ac.abort()
    await ra.catch(() => undefined)
    await B.refresh()
    const got = (await sql<{ k: string; n: unknown }>`SELECT lq_key AS k, n FROM ${sql.id(name)} ORDER BY lq_key`.execute(db)).rows.map((x) => [x.k, Number(x.n)])
    expect(got).toEqual([[JSON.stringify([[d.name, 1], [e.name, 0]]), 17]])
  }, 60_000)
})
