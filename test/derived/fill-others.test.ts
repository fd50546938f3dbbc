/**
 * A first fill over a root with one integer key skips the look at a claimed page's stored rows
 * while the metadata index shows no row written since the fill began but by the fill itself
 * (`FillWrites`, `unstoredOf` in scan/fill.ts; SQLite, whose revisions come in commit order).
 * These tests pin that a row another writer stored meanwhile is still found, on both dialects:
 * - another store (another worker) computes a row of a later page while the fill runs: the
 *   fill does not compute it again;
 * - with no other writer, every row is computed once, the fill's own writes not mistaken for
 *   another's;
 * - the metadata look (`metaChangedIn`) is one bounded range of the revision index per span
 *   (SQLite's plan), so a span between two of the fill's own writes does not walk the fill's
 *   later rows (a fill whose clock other writers advanced slowed down with the cube of its
 *   pages), and it finds exactly the rows inside its spans.
 * Real worker processes: fill-others-processes.test.ts.
 */
import * as t from 'io-ts'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { createTable, insertRows } from '../../src/query/ddl.js'
import { table } from '../../src/query/dsl.js'
import { openStore } from '../../src/derived/index.js'
import { FillWrites } from '../../src/derived/scan/fill.js'
import { metaChangedIn, metaChangedInSql } from '../../src/derived/sql/reads.js'
import { storeDialects } from '../../src/derived/sql/index.js'
import { metaTable } from '../../src/derived/sql/dialect.js'
import { dialectNames, open, type TestDb } from '../support/db.js'

describe('FillWrites.spans', () => {
  it('lists the revision spans after `since` that are none of the fill\'s own writes', () => {
    const f = new FillWrites(10)
    expect(f.spans()).toEqual([[10, null]])
    f.record([11])
    expect(f.spans()).toEqual([[11, null]])
    f.record([14, 12])
    expect(f.spans()).toEqual([[12, 14], [14, null]])
    // A revision at or below `since` is not the fill's (it was read before): ignored.
    f.record([9, 10])
    expect(f.spans()).toEqual([[12, 14], [14, null]])
  })
})

for (const dialect of dialectNames) {
  describe(`first fill and rows stored by another writer meanwhile [${dialect}]`, () => {
    let tdb: TestDb
    beforeEach(async () => {
      tdb = await open(dialect)
    })
    afterEach(async () => {
      await tdb.close()
    })

    const src = table('src', { id: t.Int, v: t.Int })
    const setup = async () => {
      await createTable(tdb.db, src)
      await insertRows(tdb.db, src, Array.from({ length: 12 }, (_, i) => ({ id: i + 1, v: i })))
    }

    it('a row of a later page another worker stored while the fill ran is not computed again by the fill', async () => {
      await setup()
      const calls: number[] = []
      let gate: Promise<unknown> = Promise.resolve()
      // One function (one code version) for both workers.
      const fn = async (r: { id: number; v: number }): Promise<{ n: number }> => {
        calls.push(r.id)
        // The fill's first row waits for the other worker's row: the fill reads its third page after that row was stored.
        if (r.id === 1) await gate
        return { n: r.v * 2 }
      }
      const a = await openStore(tdb.db)
      await a.track(src)
      a.derive({ name: 'out', from: src, output: { n: t.Int }, fn })
      const b = await openStore(tdb.db)
      await b.track(src)
      const outB = b.derive({ name: 'out', from: src, output: { n: t.Int }, fn })
      expect(a.codeVersion('out')).toBe(b.codeVersion('out'))
      let started = false
      // Batches of 4: pages 1-4, 5-8, 9-12. Once the fill has begun (its clock read, the table
      // found empty), the other worker computes and stores row 10.
      const report = await a.refresh({
        batchSize: 4,
        onProgress: (p) => {
          if (started || p.phase !== 'scan') return
          started = true
          gate = b.get(outB, 10)
        },
      })
      expect(started).toBe(true)
      const g = await gate
      expect(g).toMatchObject({ state: 'fresh', value: { n: 18 } })
      // Row 10 by the other worker only; every other row by the fill, once.
      expect(calls.sort((x, y) => x - y)).toEqual(Array.from({ length: 12 }, (_, i) => i + 1))
      expect(report.tables['out']).toMatchObject({ computed: 11 })
      expect(await a.stale()).toEqual([])
      const rows = (await tdb.db.selectFrom('out').select(['lq_key', 'n']).orderBy('lq_key').execute()).map((r) => [Number(r.lq_key), Number(r.n)]).sort((x, y) => x[0]! - y[0]!)
      expect(rows).toEqual(Array.from({ length: 12 }, (_, i) => [i + 1, i * 2]))
    })

    it('the look for rows written since a fill began is one bounded range of the revision index per span, and finds exactly the rows inside the spans', async () => {
      await setup()
      const a = await openStore(tdb.db)
      await a.track(src)
      a.derive({ name: 'out', from: src, output: { n: t.Int }, fn: (r) => ({ n: r.v * 2 }) })
      await a.refresh({ batchSize: 4 })
      const d = storeDialects[dialect]
      const revs = [...new Set((await tdb.db.selectFrom(metaTable('out')).select('lq_changed_rev').execute()).map((r) => Number(r.lq_changed_rev)))].sort((x, y) => x - y)
      expect(revs.length).toBe(3)
      const [r1, r2, r3] = revs as [number, number, number]
      const changed = (spans: [number, number | null][]) => metaChangedIn(tdb.db, d, 'out', spans)
      expect(await changed([])).toBe(false)
      expect(await changed([[r1, r2]])).toBe(false) // open at both ends
      expect(await changed([[r3, null]])).toBe(false)
      expect(await changed([[0, r1], [r1, r2], [r3, null]])).toBe(false)
      expect(await changed([[r1, r3]])).toBe(true)
      expect(await changed([[r1, r2], [r2, null]])).toBe(true)
      expect(await changed([[r1 - 1, r1 + 1]])).toBe(true)
      if (dialect === 'sqlite') {
        const plan = (await tdb.db.executeQuery<Record<string, unknown>>({ sql: `EXPLAIN QUERY PLAN ${metaChangedInSql(d, 'out')}`, parameters: ['[]'], query: undefined as never, queryId: undefined as never })).rows.map((r) => String(r['detail'])).join('\n')
        // Both bounds seek the index (an `IS NULL OR` upper bound left it open above).
        expect(plan).toMatch(/SEARCH m EXISTS USING COVERING INDEX \S+ \(lq_changed_rev>\? AND lq_changed_rev<\?\)/)
      }
    })

    it('a first fill alone computes every row once, over many pages', async () => {
      await setup()
      const calls = new Map<number, number>()
      const a = await openStore(tdb.db)
      await a.track(src)
      a.derive({ name: 'out', from: src, output: { n: t.Int }, fn: (r) => (calls.set(r.id, (calls.get(r.id) ?? 0) + 1), { n: r.v * 2 }) })
      expect((await a.refresh({ batchSize: 2 })).tables['out']).toMatchObject({ computed: 12 })
      expect([...calls.values()].every((n) => n === 1) && calls.size === 12).toBe(true)
      expect(await a.stale()).toEqual([])
    })
  })
}
