/**
 * Claim rows that vanish while their batch computes (what a PostgreSQL server crash can lose of
 * the lease statements, which commit asynchronously; simulated by deleting them): the batch's
 * write is refused by the fence, and the rows are left behind, not passed by the watermark:
 * the same refresh computes them again, since nobody else holds them.
 */
import * as t from 'io-ts'
import { sql } from 'kysely'
import { expect, it } from 'vitest'
import { createTable, insertRows } from '../../src/query/ddl.js'
import { table } from '../../src/query/dsl.js'
import { openStore } from '../../src/derived/index.js'
import { eachDialect } from '../support/db.js'

eachDialect('claim rows lost while their batch computes', (get) => {
  it('rows whose claim rows were lost while they computed are stored by the same refresh', async () => {
    const { db } = get()
    const src = table('lostsrc', { id: t.Int, v: t.Int })
    await createTable(db, src)
    await insertRows(db, src, [{ id: 1, v: 1 }, { id: 2, v: 2 }])
    const store = await openStore(db)
    await store.track(src)
    let lose = true
    const out = store.derive({
      name: 'lostout',
      from: src,
      output: { y: t.Int },
      version: 'l1',
      fn: async (r) => {
        if (lose) {
          lose = false
          await sql`DELETE FROM lq_claim`.execute(db)
        }
        return { y: r.v * 10 }
      },
    })
    const r = await store.refresh()
    // The first batch was refused (its lease gone), then computed again.
    expect(r.tables['lostout']).toMatchObject({ computed: 2, superseded: 2 })
    const rows = (await sql<{ k: string; y: unknown }>`SELECT lq_key AS k, y FROM lostout ORDER BY lq_key`.execute(db)).rows
    expect(rows.map((x) => [x.k, Number(x.y)])).toEqual([
      ['1', 10],
      ['2', 20],
    ])
    expect(await store.status(out, 1)).toMatchObject({ state: 'fresh' })
    expect((await store.refresh()).tables['lostout']).toMatchObject({ computed: 0 })
  }, 60_000)

  it('a refresh waiting on another call of its store whose batch lost its claim rows returns with those rows fresh', async () => {
    const { db } = get()
    const src = table('lostsrc2', { id: t.Int, v: t.Int })
    await createTable(db, src)
    await insertRows(db, src, [{ id: 1, v: 1 }])
    const store = await openStore(db)
    await store.track(src)
    let lose = true
    let started!: () => void
    const computing = new Promise<void>((r) => (started = r))
    const out = store.derive({
      name: 'lostout2',
      from: src,
      output: { y: t.Int },
      version: 'l1',
      fn: async (r) => {
        if (lose) {
          lose = false
          started()
          await new Promise((res) => setTimeout(res, 300))
          await sql`DELETE FROM lq_claim`.execute(db)
        }
        await new Promise((res) => setTimeout(res, 200))
        return { y: r.v * 10 }
      },
    })
    // get computes row 1; the refresh finds it in flight in this process and waits on it.
    const got = store.get(out, 1)
    await computing
    const refreshed = store.refresh()
    // When the refresh returns, the row is fresh, whoever computed it.
    await refreshed
    expect(await store.status(out, 1)).toMatchObject({ state: 'fresh' })
    expect((await sql<{ y: unknown }>`SELECT y FROM lostout2`.execute(db)).rows.map((x) => Number(x.y))).toEqual([10])
    await got
  }, 60_000)
})
