/**
 * A first fill over a root with one integer key skips the look at a claimed page's stored rows
 * while the metadata index shows no row written since the fill began but by the fill itself
 * (`FillWrites`, `unstoredOf` in scan/fill.ts; SQLite, whose revisions come in commit order).
 * These tests pin that a row another writer stored meanwhile is still found, on both dialects:
 * - another store (another worker) computes a row of a later page while the fill runs: the
 *   fill does not compute it again;
 * - with no other writer, every row is computed once, the fill's own writes not mistaken for
 *   another's.
 */
import * as t from 'io-ts'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { createTable, insertRows } from '../../src/query/ddl.js'
import { table } from '../../src/query/dsl.js'
import { openStore } from '../../src/derived/index.js'
import { FillWrites } from '../../src/derived/scan/fill.js'
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
