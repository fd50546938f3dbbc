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
})
