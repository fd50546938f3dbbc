/**
 * Memory limits of a refresh, on SQLite and PostgreSQL: a first fill reads its input a page at a
 * time (no statement returns more rows than a batch), and a batch whose JSON is longer than
 * JavaScript can build is split, not retried forever.
 */
import * as t from 'io-ts'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { createTable, insertRows } from '../../src/query/ddl.js'
import { table } from '../../src/query/dsl.js'
import { openStore } from '../../src/derived/index.js'
import { jsonLimits } from '../../src/derived/sql/text.js'
import { dialectNames, open, type TestDb } from '../support/db.js'

const src = table('src', { id: t.Int, x: t.Int })

for (const dialect of dialectNames) {
  describe(`refresh limits [${dialect}]`, () => {
    let tdb: TestDb
    beforeEach(async () => {
      tdb = await open(dialect)
    })
    afterEach(async () => {
      jsonLimits.maxChars = Infinity
      await tdb.close()
    })

    it('a first fill reads its input a page at a time: no statement returns more rows than a batch', async () => {
      await createTable(tdb.db, src)
      await insertRows(tdb.db, src, Array.from({ length: 2500 }, (_, i) => ({ id: i + 1, x: i })))
      let largest = 0
      let watching = false
      const db = tdb.db.withPlugin({
        transformQuery: (a) => a.node,
        transformResult: async (a) => {
          if (watching) largest = Math.max(largest, a.result.rows.length)
          return a.result
        },
      })
      const store = await openStore(db)
      await store.track(src)
      const a = store.derive({ name: 'a', from: src, output: { y: t.Int }, fn: (r) => ({ y: r.x + 1 }) })
      store.derive({ name: 'b', from: a, output: { z: t.Int }, fn: (r) => ({ z: r.y * 2 }) })
      watching = true
      const report = await store.refresh({ batchSize: 200 })
      watching = false
      expect(report.tables['a']!.computed).toBe(2500)
      expect(report.tables['b']!.computed).toBe(2500)
      expect(largest).toBeLessThanOrEqual(200)
      expect(await store.stale()).toEqual([])
    })

    it('a batch whose JSON passes the string limit is split and stored; a result too large alone is stored as failed, not retried forever', async () => {
      await createTable(tdb.db, src)
      await insertRows(tdb.db, src, Array.from({ length: 20 }, (_, i) => ({ id: i + 1, x: i })))
      const store = await openStore(tdb.db)
      await store.track(src)
      const out = store.derive({ name: 'out', from: src, output: { s: t.string }, fn: (r) => ({ s: (r.id === 7 ? 'y' : 'x').repeat(r.id === 7 ? 5000 : 200) }) })
      jsonLimits.maxChars = 3000
      const report = await store.refresh()
      expect(report.tables['out']).toMatchObject({ computed: 19, failed: 1 })
      const s = await store.status(out, 7)
      expect(s.state).toBe('failed')
      expect(s.causes[0]).toMatchObject({ kind: 'error', message: expect.stringContaining('too large to store') })
      expect((await store.get(out, 3)).state).toBe('fresh')
      expect((await store.refresh()).totals).toMatchObject({ computed: 0, failed: 0 })
    })
  })
}
