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
import { sql } from 'kysely'
import { expect, it } from 'vitest'
import { eachDialect } from '../support/db.js'
import { holdable } from './support/holdable.js'
import { joinWorkers } from './support/join-workers.js'

eachDialect('late join rows', (get) => {
  it('a join row stored late, from inputs another worker processed the change of, by a refresh that then stops is not left orphaned', async () => {
    const { db } = get()
    const gate0 = holdable()
    const gate1 = holdable()
    const { d, e, name, A, B } = await joinWorkers(db, 'o', (who, key) => (who === 'A' ? (key === 0 ? gate0.pass() : key === 1 ? gate1.pass() : undefined) : undefined))
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
