/**
 * Delta evaluation of comprehension derivations (src/derived/delta.ts): where a comprehension
 * reads its tables, its restriction to a few rows, and that finding and refreshing the rows of a
 * two-root join reads rows in proportion to the rows changed, not to the tables' sizes.
 */
import * as t from 'io-ts'
import { sql, type Kysely, type KyselyPlugin } from 'kysely'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { AST, createTable, openStore, Q, run, table } from '../../src/index.js'
import { Query } from '../../src/query/dsl.js'
import { readsOf, restrict } from '../../src/derived/delta.js'
import { dialectNames, open, type TestDb } from '../support/db.js'

const d = table('d', { id: t.Int, v: t.Int })
const e = table('e', { id: t.Int, w: t.Int, grp: t.Int })
const pair = table('pair', { a: t.Int, b: t.string, n: t.Int }, { key: ['a', 'b'] })

describe('readsOf / restrict', () => {
  const join = Q.for(d, (x) => Q.for(e, (y) => Q.where(Q.eq(x.id, y.id), Q.yield({ v: x.v, w: y.w }))))
  it('counts generator sites and names tables read elsewhere', () => {
    expect(readsOf(join[AST])).toEqual({ sites: new Map([['d', 1], ['e', 1]]), opaque: new Set(), limited: false })
    const self = Q.for(d, (x) => Q.for(d, (y) => Q.where(Q.lt(x.id, y.id), Q.yield(x.v))))
    expect(readsOf(self[AST]).sites).toEqual(new Map([['d', 2]]))
    const pred = Q.for(d, (x) => Q.where(Q.exists(Q.for(e, (y) => Q.where(Q.eq(y.id, x.id), Q.yield(y.w)))), Q.yield({ v: x.v, n: Q.count(Q.for(pair, (p) => Q.yield(p.n))) })))
    expect(readsOf(pred[AST])).toEqual({ sites: new Map([['d', 1]]), opaque: new Set(['e', 'pair']), limited: false })
    const nested = Q.for(d, (x) => Q.yield({ v: x.v, es: Q.for(e, (y) => Q.where(Q.eq(y.id, x.id), Q.yield(y.w))) }))
    expect(readsOf(nested[AST]).opaque).toEqual(new Set(['e']))
    expect(readsOf(Q.union(join, Q.for(e, (y) => Q.yield({ v: y.w, w: y.grp })))[AST]).sites).toEqual(new Map([['d', 1], ['e', 2]]))
    expect(readsOf(Q.limit(Q.orderBy(Q.for(d, (x) => Q.yield(x.v)), (v) => [v]), 3)[AST]).limited).toBe(true)
  })

  it('restricts one generator site to key tuples, leaving the others and every other read alone', async () => {
    const self = Q.for(d, (x) => Q.for(d, (y) => Q.where(Q.lt(x.id, y.id), Q.yield({ a: x.id, b: y.id }))))
    const second = new Query<{ a: number; b: number }>(restrict(self[AST], (tbl, site) => (tbl.name === 'd' && site === 1 ? [[3]] : undefined)))
    const tdb = await open('sqlite')
    try {
      await createTable(tdb.db, d)
      await sql`INSERT INTO d (id, v) VALUES (1, 0), (2, 0), (3, 0), (4, 0)`.execute(tdb.db)
      expect(await run(tdb.db, second)).toEqual([{ a: 1, b: 3 }, { a: 2, b: 3 }])
      await createTable(tdb.db, pair)
      await sql`INSERT INTO pair (a, b, n) VALUES (1, 'x', 10), (1, 'y', 11), (2, 'x', 12)`.execute(tdb.db)
      const all = Q.for(pair, (p) => Q.yield(p.n))
      expect(await run(tdb.db, new Query<number>(restrict(all[AST], () => [[1, 'y'], [2, 'x']])))).toEqual([11, 12])
      expect(await run(tdb.db, new Query<number>(restrict(all[AST], () => [])))).toEqual([])
    } finally {
      await tdb.close()
    }
  })
})

/** A plugin counting the rows every statement returns. */
function rowCounter(): { plugin: KyselyPlugin; rows: () => number; reset: () => void } {
  let n = 0
  return {
    plugin: {
      transformQuery: (a) => a.node,
      transformResult: async (a) => {
        n += a.result.rows.length
        return a.result
      },
    },
    rows: () => n,
    reset: () => (n = 0),
  }
}

const N = 2000

for (const dialect of dialectNames) {
  describe(`delta evaluation [${dialect}]`, () => {
    let tdb: TestDb
    let db: Kysely<any>
    const counter = rowCounter()
    beforeEach(async () => {
      tdb = await open(dialect)
      db = tdb.db.withPlugin(counter.plugin)
      await createTable(db, d)
      await createTable(db, e)
      await sql.raw(`INSERT INTO d (id, v) SELECT i, i % 10 FROM (${dialect === 'sqlite' ? `WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < ${N}) SELECT i FROM s` : `SELECT generate_series(1, ${N}) AS i`}) AS g`).execute(db)
      await sql`INSERT INTO e (id, w, grp) SELECT id, v * 2, id % 7 FROM d`.execute(db)
    })
    afterEach(async () => {
      await tdb.close()
    })

    const declare = async () => {
      const store = await openStore(db)
      await store.track(d)
      await store.track(e)
      const joined = store.derive({
        name: 'joined',
        from: Q.for(d, (x) => Q.for(e, (y) => Q.where(Q.and(Q.eq(x.id, y.id), Q.lt(x.v, 8)), Q.yield({ v: x.v, w: y.w })))),
        output: { s: t.Int },
        fn: (r) => ({ s: r.v + r.w }),
      })
      return { store, joined }
    }
    const addr = (id: number) => [{ table: 'd', key: id }, { table: 'e', key: id }]

    it('stale() and refresh() after a few root writes read rows in proportion to the writes, not the tables', async () => {
      const { store, joined } = await declare()
      expect((await store.refresh()).totals.computed).toBe(N * 0.8)
      await sql`UPDATE d SET v = 5 WHERE id = 10`.execute(db) // 0 -> 5: still joined, value changes
      await sql`UPDATE d SET v = 9 WHERE id = 21`.execute(db) // 1 -> 9: leaves the join (v < 8 fails)
      await sql`UPDATE d SET v = 3 WHERE id = 38`.execute(db) // 8 -> 3: enters the join
      await sql`UPDATE e SET w = 100 WHERE id = 42`.execute(db)
      await sql`DELETE FROM e WHERE id = 53`.execute(db)
      counter.reset()
      const stale = await store.stale()
      const read = counter.rows()
      const byKey = new Map(stale.map((s) => [JSON.stringify(s.key), s]))
      expect(byKey.size).toBe(5)
      expect(byKey.get(JSON.stringify(addr(10)))).toMatchObject({ state: 'stale', causes: [{ kind: 'input-changed', table: 'd', key: 10 }] })
      expect(byKey.get(JSON.stringify(addr(38)))).toMatchObject({ state: 'missing' })
      expect(byKey.get(JSON.stringify(addr(42)))).toMatchObject({ state: 'stale', causes: [{ kind: 'input-changed', table: 'e', key: 42 }] })
      expect(byKey.get(JSON.stringify(addr(53)))).toMatchObject({ state: 'stale', causes: [{ kind: 'input-deleted', table: 'e', key: 53 }] })
      expect(byKey.get(JSON.stringify(addr(21)))).toMatchObject({ state: 'stale' })
      expect(read).toBeLessThan(100)
      counter.reset()
      const r = await store.refresh()
      expect(counter.rows()).toBeLessThan(100)
      expect(r.tables['joined']).toMatchObject({ computed: 3, deleted: 2 })
      expect(await store.stale()).toEqual([])
      expect(await run(db, Q.for(joined, (j) => Q.where(Q.in(j.lq_key, [10, 21, 38, 42, 53].map((i) => JSON.stringify([['d', i], ['e', i]]))), Q.yield({ k: j.lq_key, s: j.s }))))).toEqual(
        expect.arrayContaining([
          { k: JSON.stringify([['d', 10], ['e', 10]]), s: 5 },
          { k: JSON.stringify([['d', 38], ['e', 38]]), s: 19 },
          { k: JSON.stringify([['d', 42], ['e', 42]]), s: 102 },
        ]),
      )
      expect((await store.refresh({ full: true })).totals).toMatchObject({ computed: 0, deleted: 0 })
    })

    it('get() of one row of a two-root join reads that row, not the join', async () => {
      const { store, joined } = await declare()
      counter.reset()
      const r = await store.get(joined, addr(7))
      expect(r).toMatchObject({ state: 'fresh', value: { s: 7 + 14 } })
      expect(counter.rows()).toBeLessThan(20)
      counter.reset()
      expect(await store.status(joined, addr(11))).toMatchObject({ state: 'missing', causes: [{ kind: 'missing' }] })
      expect(await store.status(joined, addr(8))).toMatchObject({ state: 'missing', causes: [{ kind: 'no-input' }] })
      expect(counter.rows()).toBeLessThan(20)
    })

    it('a change to a table read only by a predicate re-evaluates the whole comprehension, correctly', async () => {
      const store = await openStore(db)
      await store.track(d)
      await store.track(e)
      store.derive({
        name: 'flagged',
        from: Q.for(d, (x) => Q.where(Q.exists(Q.for(e, (y) => Q.where(Q.and(Q.eq(y.id, x.id), Q.eq(y.grp, 0)), Q.yield(y.w)))), Q.yield({ v: x.v }))),
        output: { v: t.Int },
        fn: (r) => ({ v: r.v }),
      })
      expect((await store.refresh()).totals.computed).toBe(Math.floor(N / 7))
      await sql`UPDATE e SET grp = 0 WHERE id = 8`.execute(db)
      await sql`UPDATE e SET grp = 1 WHERE id = 14`.execute(db)
      expect((await store.refresh()).tables['flagged']).toMatchObject({ computed: 1, deleted: 1 })
      expect(await store.stale()).toEqual([])
    })
  })
}
