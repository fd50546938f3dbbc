/**
 * Provenance composes through derived tables, and a comprehension over a derived table still
 * tracks the derived rows it read (the engine asks for uncomposed lineage).
 */
import * as t from 'io-ts'
import { sql } from 'kysely'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { createTable, insertRows, joinOnRoot, lineage, openStore, plainLineage, Q, run as runLazy, table, type SourceRow } from '../../src/index.js'
import { dialectNames, open, type TestDb } from '../support/db.js'

/** `run` with annotated elements copied to plain `{ data, lineage }` objects, so `toEqual` compares both fields (see docs/lineage.md, "Reading lineage"). */
const run: typeof runLazy = async (db, q) => plainLineage(await runLazy(db, q))

const nums = table('nums', { id: t.Int, x: t.Int })

for (const dialect of dialectNames) {
  describe(`derived composition [${dialect}]`, () => {
    let tdb: TestDb
    beforeEach(async () => {
      tdb = await open(dialect)
      await createTable(tdb.db, nums)
      await insertRows(tdb.db, nums, [{ id: 1, x: 1 }, { id: 2, x: 2 }])
    })
    afterEach(async () => {
      await tdb.close()
    })

    const declare = async (factor: number) => {
      const store = await openStore(tdb.db)
      await store.track(nums)
      const a = store.derive({ name: 'a', from: nums, output: { n: t.Int }, fn: (r) => ({ n: r.x * factor }), version: String(factor) })
      const b = store.derive({ name: 'b', from: Q.for(a, (x) => Q.yield({ n: x.n })), output: { m: t.Int }, fn: (r) => ({ m: r.n + 1 }) })
      return { store, a, b }
    }

    it('a comprehension over a derived table goes stale when that table is recomputed with new code', async () => {
      const first = await declare(10)
      await first.store.refresh()
      expect((await run(tdb.db, Q.for(first.b, (r) => Q.yield(r.m)))).sort()).toEqual([11, 21])
      // a new process with a's code changed
      const second = await declare(100)
      await second.store.refresh()
      expect((await run(tdb.db, Q.for(second.b, (r) => Q.yield(r.m)))).sort()).toEqual([101, 201])
      expect(await second.store.stale()).toEqual([])
    })

    it('a comprehension over a derived table follows root changes through it', async () => {
      const { store, b } = await declare(10)
      await store.refresh()
      await sql`UPDATE nums SET x = 5 WHERE id = 2`.execute(tdb.db)
      await store.refresh()
      expect((await run(tdb.db, Q.for(b, (r) => Q.yield(r.m)))).sort()).toEqual([11, 51])
    })

    it('lineage(q) over derived tables names root rows; { composed: false } names the derived rows', async () => {
      const { store, a, b } = await declare(10)
      await store.refresh()
      const q = Q.for(b, (r) => Q.for(a, (x) => Q.where(Q.eq(x.lq_key, r.lq_key), Q.yield(r.m))))
      const rows = await run(tdb.db, lineage(q))
      expect(rows.sort((p, r) => p.data - r.data)).toEqual([
        { data: 11, lineage: [{ table: 'nums', key: 1 }] },
        { data: 21, lineage: [{ table: 'nums', key: 2 }] },
      ])
      const direct = await run(tdb.db, lineage(Q.for(a, (x) => Q.yield(x.n)), { composed: false }))
      expect(direct.sort((p, r) => p.data - r.data)).toEqual([
        { data: 10, lineage: [{ table: 'a', key: '1' }] },
        { data: 20, lineage: [{ table: 'a', key: '2' }] },
      ])
    })

    it('a joinOnRoot row over rows of several root entries (a self-join) gets each root row as an entry of ctx.lineage', async () => {
      await insertRows(tdb.db, nums, [{ id: 3, x: 3 }])
      const store = await openStore(tdb.db)
      await store.track(nums)
      const seen: { table: string; key: unknown; lineage: readonly SourceRow[] }[] = []
      const note = (table: string, key: unknown, l: readonly SourceRow[]) => seen.push({ table, key, lineage: l })
      // One root (nums), two entries per row: a self-join's rows, a table derived from them, and their zip.
      const pairs = store.derive({ name: 'pairs', from: Q.for(nums, (x) => Q.for(nums, (y) => Q.where(Q.lt(x.id, y.id), Q.yield({ s: Q.add(x.x, y.x) })))), output: { s: t.Int }, fn: (r) => ({ s: r.s }) })
      const twice = store.derive({ name: 'twice', from: pairs, output: { n: t.Int }, fn: (r, ctx) => (note('twice', ctx.key, ctx.lineage), { n: r.s * 2 }) })
      store.derive({ name: 'both', from: joinOnRoot({ p: pairs, w: twice }), output: { n: t.Int }, fn: ({ p, w }, ctx) => (note('both', ctx.key, ctx.lineage), { n: p.s + w.n }) })
      await store.refresh()
      const pair = (a: number, b: number) => [{ table: 'nums', key: a }, { table: 'nums', key: b }]
      const want = (table: string) => [pair(1, 2), pair(1, 3), pair(2, 3)].map((l) => ({ table, key: l, lineage: l }))
      const byKey = (a: { key: unknown }, b: { key: unknown }) => (JSON.stringify(a.key) < JSON.stringify(b.key) ? -1 : 1)
      expect(seen.filter((c) => c.table === 'twice').sort(byKey)).toEqual(want('twice'))
      expect(seen.filter((c) => c.table === 'both').sort(byKey)).toEqual(want('both'))
    })
  })
}
