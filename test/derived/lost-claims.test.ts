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
import type { Kysely } from 'kysely'

/**
 * A store over root `<name>src` (rows `id` with `v = id`) and derived `<name>out` (`y = v * 10`)
 * whose first call runs `lose` (which deletes the claim rows) before it returns; every call then
 * waits `eachMs`.
 */
async function losingStore(db: Kysely<any>, name: string, ids: readonly number[], lose: () => Promise<void>, eachMs = 0) {
  const src = table(`${name}src`, { id: t.Int, v: t.Int })
  await createTable(db, src)
  await insertRows(db, src, ids.map((id) => ({ id, v: id })))
  const store = await openStore(db)
  await store.track(src)
  let first = true
  const out = store.derive({
    name: `${name}out`,
    from: src,
    output: { y: t.Int },
    version: 'l1',
    fn: async (r) => {
      if (first) {
        first = false
        await lose()
      }
      if (eachMs > 0) await new Promise((res) => setTimeout(res, eachMs))
      return { y: r.v * 10 }
    },
  })
  return { store, out }
}

eachDialect('claim rows lost while their batch computes', (get) => {
  it('rows whose claim rows were lost while they computed are stored by the same refresh', async () => {
    const { db } = get()
    const { store, out } = await losingStore(db, 'lost', [1, 2], async () => {
      await sql`DELETE FROM lq_claim`.execute(db)
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
    let started!: () => void
    const computing = new Promise<void>((r) => (started = r))
    // The first call (row 1, by get) signals, waits, then loses the claim rows; every call takes 200 ms more.
    const { store, out } = await losingStore(db, 'lost2', [1], async () => {
      started()
      await new Promise((res) => setTimeout(res, 300))
      await sql`DELETE FROM lq_claim`.execute(db)
    }, 200)
    // get computes row 1; the refresh finds it in flight in this process and waits on it.
    const got = store.get(out, 1)
    await computing
    const refreshed = store.refresh()
    // When the refresh returns, the row is fresh, whoever computed it.
    await refreshed
    expect(await store.status(out, 1)).toMatchObject({ state: 'fresh' })
    expect((await sql<{ y: unknown }>`SELECT y FROM lost2out`.execute(db)).rows.map((x) => Number(x.y))).toEqual([10])
    await got
  }, 60_000)
})
