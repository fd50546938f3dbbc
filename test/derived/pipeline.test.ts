/**
 * A refresh's batches as a pipeline (`runBatches` in refresh.ts), on SQLite and PostgreSQL:
 * with a concurrency limit, the next batch's calls start while the previous batch's last calls
 * still run (the limit's slots stay busy across batch boundaries); every row is stored once and
 * no claim is left behind.
 */
import * as t from 'io-ts'
import { sql } from 'kysely'
import { expect, it } from 'vitest'
import { createTable, insertRows } from '../../src/query/ddl.js'
import { table } from '../../src/query/dsl.js'
import { openStore } from '../../src/derived/index.js'
import { eachDialect } from '../support/db.js'

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
let n = 0

eachDialect('refresh pipeline', (get) => {
  it("with a concurrency limit, the next batch's calls start before the previous batch's last call ends", async () => {
    const { db } = get()
    const src = table(`pl${++n}`, { id: t.Int, v: t.Int })
    await createTable(db, src)
    await insertRows(db, src, Array.from({ length: 24 }, (_, i) => ({ id: i + 1, v: i })))
    const store = await openStore(db)
    await store.track(src)
    const spans = new Map<number, { start: number; end: number }>()
    let calls = 0
    store.derive({
      name: `${src.name}_out`,
      from: src,
      output: { y: t.Int },
      fn: async (r, ctx) => {
        calls++
        const start = performance.now()
        // The last call of each batch of 6 is the slow one: the batch's other slots are free meanwhile.
        await sleep((r.id as number) % 6 === 0 ? 150 : 5)
        spans.set(ctx.key as number, { start, end: performance.now() })
        return { y: r.v * 2 }
      },
    })
    const rep = await store.refresh({ concurrency: 4, batchSize: 6 })
    expect(rep.totals.computed).toBe(24)
    expect(calls).toBe(24)
    // Batch 1 is keys 1-6 (key order); batch 2's first call starts while key 6 still runs.
    const lastOfFirst = spans.get(6)!
    const firstOfSecond = Math.min(...[7, 8, 9, 10, 11, 12].map((k) => spans.get(k)!.start))
    expect(firstOfSecond).toBeLessThan(lastOfFirst.end)
    const rows = await sql<{ n: unknown }>`SELECT count(*) AS n FROM ${sql.id(`${src.name}_out`)}`.execute(db)
    expect(Number(rows.rows[0]!.n)).toBe(24)
    expect(Number((await sql<{ n: unknown }>`SELECT (SELECT count(*) FROM lq_claim) + (SELECT count(*) FROM lq_claim_range) AS n`.execute(db)).rows[0]!.n)).toBe(0)
    expect(await store.stale()).toEqual([])
  }, 120_000)
})
