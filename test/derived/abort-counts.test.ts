/**
 * An interrupted refresh counts exactly the rows it stored: the signal fires from inside a
 * function call at a chosen row (no timers), then the report's counts are compared with the
 * rows actually in the derived table and with what `stale()` still lists, on SQLite and
 * PostgreSQL. Covers `store.refresh` (batches), `store.get` (one row) and the CLI's
 * `refresh --table` loop (`refreshOne`, row by row with `get`).
 */
import * as t from 'io-ts'
import { sql } from 'kysely'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { refreshOne } from '../../src/cli/refresh-table.js'
import { LineageQueryError } from '../../src/errors.js'
import { createTable, insertRows } from '../../src/query/ddl.js'
import { table } from '../../src/query/dsl.js'
import { openStore, type RefreshReport } from '../../src/derived/index.js'
import { dialectNames, open, type TestDb } from '../support/db.js'
import { rejection } from '../support/errors.js'

const src = table('src', { id: t.Int, x: t.Int })
const N = 12

async function setup(db: TestDb['db']): Promise<void> {
  await createTable(db, src)
  await insertRows(db, src, Array.from({ length: N }, (_, i) => ({ id: i + 1, x: i + 1 })))
}

const rowsIn = async (db: TestDb['db'], name: string): Promise<number> => Number((await sql<{ n: unknown }>`SELECT count(*) AS n FROM ${sql.table(name)}`.execute(db)).rows[0]!.n)

for (const dialect of dialectNames) {
  describe(`interrupted refresh counts [${dialect}]`, () => {
    let tdb: TestDb
    beforeEach(async () => {
      tdb = await open(dialect)
      await setup(tdb.db)
    })
    afterEach(async () => {
      await tdb.close()
    })

    it('a get whose signal fires after its function returned stores the row and returns it (not aborted)', async () => {
      const store = await openStore(tdb.db)
      await store.track(src)
      const ac = new AbortController()
      const out = store.derive({
        name: 'out',
        from: src,
        output: { y: t.Int },
        fn: (r) => {
          if (r.id === 3) ac.abort(new Error('stop'))
          return { y: r.x * 2 }
        },
      })
      const g = await store.get(out, 3, { signal: ac.signal })
      expect(g).toMatchObject({ state: 'fresh', value: { y: 6 } })
      expect(await rowsIn(tdb.db, 'out')).toBe(1)
      // A get whose signal fired before it stored anything is aborted and stores nothing.
      const e = await rejection(store.get(out, 4, { signal: ac.signal }))
      expect(e.code).toBe('aborted')
      expect(await rowsIn(tdb.db, 'out')).toBe(1)
    })

    it('refresh --table (row by row with get), interrupted from inside a call, counts exactly the rows it stored', async () => {
      for (const at of [1, 5, N]) {
        const store = await openStore(tdb.db)
        await store.track(src)
        const ac = new AbortController()
        let calls = 0
        store.derive({
          name: `by_row_${at}`,
          from: src,
          output: { y: t.Int },
          fn: (r) => {
            if (++calls === at) ac.abort(new Error('SIGINT'))
            return { y: r.x }
          },
        })
        const before = (await store.stale(`by_row_${at}`)).length
        expect(before).toBe(N)
        const report = await refreshOne(store, `by_row_${at}`, ac.signal, () => undefined)
        const stored = await rowsIn(tdb.db, `by_row_${at}`)
        expect(report.totals.computed).toBe(stored)
        expect(stored).toBe(at)
        expect((await store.stale(`by_row_${at}`)).length).toBe(before - stored)
      }
    })

    it('refresh interrupted from inside a call (synchronous or async functions) reports exactly the rows it stored', async () => {
      for (const [mode, batchSize] of [['sync', 4], ['async', 4], ['sync', 100], ['async', 100]] as const) {
        const name = `all_${mode}_${batchSize}`
        const store = await openStore(tdb.db, { batchSize })
        await store.track(src)
        const ac = new AbortController()
        let calls = 0
        store.derive({
          name,
          from: src,
          output: { y: t.Int },
          fn: mode === 'sync'
            ? (r) => {
                if (++calls === 6) ac.abort(new Error('SIGINT'))
                return { y: r.x }
              }
            : async (r) => {
                if (++calls === 6) ac.abort(new Error('SIGINT'))
                await Promise.resolve()
                return { y: r.x }
              },
        })
        // Rejected with the partial report, or (the signal fired in the last batch, every row
        // stored) resolved with the whole report.
        const report = await store.refresh({ signal: ac.signal }).catch((e: unknown) => {
          expect(e).toBeInstanceOf(LineageQueryError)
          expect((e as LineageQueryError).code).toBe('aborted')
          return (e as LineageQueryError).details['report'] as RefreshReport
        })
        const stored = await rowsIn(tdb.db, name)
        expect(report.tables[name]!.computed).toBe(stored)
        expect(report.totals.computed).toBe(stored)
        expect((await store.stale(name)).length).toBe(N - stored)
      }
    })
  })
}
