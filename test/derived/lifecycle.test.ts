/**
 * The life of a store beyond one program run, on SQLite and PostgreSQL: roots dropped or
 * recreated under it, full refreshes, code versions (codecs, params), what `affected` answers,
 * derived tables no program declares any more, tombstone collection.
 */
import * as t from 'io-ts'
import { sql, type Kysely } from 'kysely'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { LineageQueryError } from '../../src/errors.js'
import { createTable, insertRows } from '../../src/query/ddl.js'
import { Q, table } from '../../src/query/dsl.js'
import { openStore } from '../../src/derived/index.js'
import { dialectNames, open, type TestDb } from '../support/db.js'
import { holdable } from './support/holdable.js'
import { expectError } from '../support/errors.js'

const src = table('src', { id: t.Int, text: t.string })

async function createSrc(db: Kysely<any>, rows: { id: number; text: string }[]): Promise<void> {
  await createTable(db, src)
  if (rows.length > 0) await insertRows(db, src, rows)
}



const count = async (db: Kysely<any>, text: string) => Number((await sql.raw<{ n: unknown }>(text).execute(db)).rows[0]!.n)

const dataOfCol = async (db: Kysely<any>, name: string, col: string) =>
  Object.fromEntries((await sql<Record<string, unknown>>`SELECT * FROM ${sql.id(name)} ORDER BY lq_key`.execute(db)).rows.map((r) => [r['lq_key'], typeof r[col] === 'number' ? r[col] === 1 : r[col]]))

const dataOf = async (db: Kysely<any>, name: string) =>
  Object.fromEntries((await sql<Record<string, unknown>>`SELECT * FROM ${sql.id(name)} ORDER BY lq_key`.execute(db)).rows.map((r) => [r['lq_key'], r['s']]))

for (const dialect of dialectNames) {
  describe(`store lifecycle [${dialect}]`, () => {
    let tdb: TestDb
    beforeEach(async () => {
      tdb = await open(dialect)
    })
    afterEach(async () => {
      await tdb.close()
    })

    const upper = (store: Awaited<ReturnType<typeof openStore>>) => store.derive({ name: 'out', from: src, output: { s: t.string }, fn: (r) => ({ s: r.text.toUpperCase() }) })

    it('a root dropped and recreated with new rows at old keys: its derived rows become stale and refresh recomputes them', async () => {
      const db = tdb.db
      await createSrc(db, [{ id: 1, text: 'a' }, { id: 2, text: 'b' }, { id: 4, text: 'd' }])
      const store = await openStore(db)
      await store.track(src)
      const out = upper(store)
      await store.refresh()
      expect(await dataOf(db, 'out')).toEqual({ '1': 'A', '2': 'B', '4': 'D' })
      await sql`DROP TABLE src`.execute(db)
      await createSrc(db, [{ id: 1, text: 'zz' }, { id: 2, text: 'b' }, { id: 3, text: 'c' }])
      // Before: row 1 stayed fresh with the old value, 3 was never seen, 4 never deleted.
      const stale = await store.stale(out)
      expect(stale.map((s) => `${String(s.key)}:${s.state}`).sort()).toEqual(['1:stale', '2:stale', '3:missing', '4:stale'])
      const r = await store.refresh()
      expect(r.tables['out']).toMatchObject({ computed: 2, unchanged: 1, deleted: 1 })
      expect(await dataOf(db, 'out')).toEqual({ '1': 'ZZ', '2': 'B', '3': 'C' })
      expect((await store.status(out, 1)).state).toBe('fresh')
      // The recreated table's triggers are in place: later writes are seen.
      await sql`UPDATE src SET text = 'y' WHERE id = 2`.execute(db)
      await store.refresh()
      expect(await dataOf(db, 'out')).toEqual({ '1': 'ZZ', '2': 'Y', '3': 'C' })
    })

    it('a root recreated while the program is down is noticed by track at the next start', async () => {
      const db = tdb.db
      await createSrc(db, [{ id: 1, text: 'a' }])
      const s1 = await openStore(db)
      await s1.track(src)
      upper(s1)
      await s1.refresh()
      await sql`DROP TABLE src`.execute(db)
      await createSrc(db, [{ id: 1, text: 'q' }])
      const s2 = await openStore(db)
      await s2.track(src)
      const out = upper(s2)
      expect((await s2.status(out, 1)).state).toBe('stale')
      await s2.refresh()
      expect(await dataOf(db, 'out')).toEqual({ '1': 'Q' })
    })

    it('a dropped root: refresh, get and stale fail with a schema error naming the table, not a raw "no such table"', async () => {
      const db = tdb.db
      await createSrc(db, [{ id: 1, text: 'a' }])
      const store = await openStore(db)
      await store.track(src)
      const out = upper(store)
      await store.refresh()
      await insertRows(db, src, [{ id: 2, text: 'b' }]) // a pending change
      await sql`DROP TABLE src`.execute(db)
      const e = await expectError(store.refresh(), 'schema', '`src`', 'does not exist')
      expect(e.details).toMatchObject({ table: 'src' })
      await expectError(store.get(out, 1), 'schema', '`src`')
      await expectError(store.stale(), 'schema', '`src`')
      await expectError(store.track(src), 'schema', '`src`')
      // The derived rows are kept as they were.
      expect(await dataOf(db, 'out')).toEqual({ '1': 'A' })
    })

    it('refresh({ full: true }) runs the function again for every row, fresh or not', async () => {
      const db = tdb.db
      await createSrc(db, [{ id: 1, text: 'a' }, { id: 2, text: 'b' }, { id: 3, text: 'c' }])
      const store = await openStore(db)
      await store.track(src)
      let calls = 0
      const out = store.derive({ name: 'out', from: src, output: { s: t.string }, fn: (r) => (calls++, { s: r.text.toUpperCase() }) })
      const next = store.derive({ name: 'next', from: out, output: { s: t.string }, fn: (r) => (calls++, { s: r.s + '!' }) })
      await store.refresh()
      expect(calls).toBe(6)
      calls = 0
      expect((await store.refresh()).totals.computed).toBe(0)
      expect(calls).toBe(0)
      // Before: a full refresh re-checked every row and computed none.
      const r = await store.refresh({ full: true })
      expect(calls).toBe(6)
      expect(r.totals).toMatchObject({ computed: 0, unchanged: 6 })
      expect((await store.status(next, 2)).state).toBe('fresh')
    })

    it('undeclared() lists derived tables no declaration of this program names, and drop(name) removes one', async () => {
      const db = tdb.db
      await createSrc(db, [{ id: 1, text: 'a' }])
      const a = await openStore(db)
      await a.track(src)
      const out = upper(a)
      a.derive({ name: 'old', from: Q.for(out, (o) => Q.yield({ s: o.s })), output: { n: t.Int }, fn: (r) => ({ n: r.s.length }) })
      await a.refresh()
      expect(await a.undeclared()).toEqual([])
      // The next version of the program renamed `old`.
      const b = await openStore(db)
      await b.track(src)
      upper(b)
      expect(await b.undeclared()).toEqual(['old'])
      await expectError(b.drop('out'), 'argument', 'declared by this program')
      await expectError(b.drop('src'), 'argument', 'root')
      await expectError(b.drop('nope'), 'argument', 'not a derived table', 'old')
      await b.drop('old')
      expect(await b.undeclared()).toEqual([])
      expect(await count(db, `SELECT count(*) AS n FROM lq_edge WHERE dst_table = 'old'`)).toBe(0)
      await expectError(sql`SELECT * FROM old`.execute(db).then(() => { throw new LineageQueryError('schema', 'table old still exists') }), 'schema', 'still exists').catch(() => undefined)
      const left = dialect === 'sqlite' ? await count(db, `SELECT count(*) AS n FROM sqlite_master WHERE name IN ('old', 'lq_meta_old')`) : await count(db, `SELECT count(*) AS n FROM pg_class WHERE relname IN ('old', 'lq_meta_old') AND relnamespace = current_schema()::regnamespace`)
      expect(left).toBe(0)
      expect((await b.refresh()).totals.computed).toBe(0)
    })

    it('collect() removes tombstones every derived table has seen, and keeps newer ones', async () => {
      const db = tdb.db
      await createSrc(db, [{ id: 1, text: 'a' }, { id: 2, text: 'b' }, { id: 3, text: 'c' }])
      const store = await openStore(db)
      await store.track(src)
      const out = upper(store)
      await store.refresh()
      const before = await store.clock()
      await sql`DELETE FROM src WHERE id IN (1, 2)`.execute(db)
      await store.refresh()
      await store.refresh() // the watermark passes the derived tombstones too
      expect(await store.collect({ olderThan: before })).toEqual({ revisions: 0, tombstones: 0, claims: 0 })
      expect(await store.collect({ olderThan: await store.clock() })).toEqual({ revisions: 2, tombstones: 2, claims: 0 })
      expect(await count(db, `SELECT count(*) AS n FROM lq_rev_src`)).toBe(1)
      expect(await count(db, `SELECT count(*) AS n FROM lq_meta_out`)).toBe(1)
      // A deletion no refresh has seen yet is kept.
      await sql`DELETE FROM src WHERE id = 3`.execute(db)
      expect(await store.collect({ olderThan: await store.clock() })).toEqual({ revisions: 0, tombstones: 0, claims: 0 })
      await store.refresh()
      expect(await dataOf(db, 'out')).toEqual({})
      // Keys come back as new rows.
      await insertRows(db, src, [{ id: 1, text: 'again' }])
      await store.refresh()
      expect(await dataOf(db, 'out')).toEqual({ '1': 'AGAIN' })
      expect((await store.status(out, 1)).state).toBe('fresh')
      await expectError(store.collect({ olderThan: -1 }), 'argument', 'olderThan')
    })

    it('a late result for a deleted root row is still refused after collect() removed its tombstones', async () => {
      const db = tdb.db
      await createSrc(db, [{ id: 1, text: 'a' }, { id: 2, text: 'b' }])
      const store = await openStore(db)
      await store.track(src)
      const gate = holdable()
      const out = store.derive({ name: 'out', from: src, output: { s: t.string }, fn: async (r) => (await gate.pass(), { s: r.text.toUpperCase() }) })
      await store.refresh()
      await sql`UPDATE src SET text = 'changed' WHERE id = 1`.execute(db)
      gate.hold()
      const pending = store.get(out, 1)
      await gate.held
      await sql`DELETE FROM src WHERE id = 1`.execute(db)
      await store.refresh()
      await store.refresh()
      expect(await store.collect({ olderThan: await store.clock() })).toEqual({ revisions: 1, tombstones: 1, claims: 0 })
      gate.release()
      expect((await pending).state).toBe('missing')
      expect(await dataOf(db, 'out')).toEqual({ '2': 'B' })
      expect(await count(db, `SELECT count(*) AS n FROM lq_meta_out WHERE lq_key = '1'`)).toBe(0)
      expect(await store.stale()).toEqual([])
    })

    it('a late comprehension result for a row that left the comprehension is still refused after its tombstone is collected', async () => {
      const db = tdb.db
      await createSrc(db, [{ id: 1, text: 'a' }, { id: 2, text: 'b' }])
      const store = await openStore(db)
      await store.track(src)
      const gate = holdable()
      const kept = store.derive({
        name: 'kept',
        from: Q.for(src, (r) => Q.where(Q.ne(r.text, 'gone'), Q.yield({ text: r.text }))),
        output: { s: t.string },
        fn: async (r) => (await gate.pass(), { s: r.text.toUpperCase() }),
      })
      await store.refresh()
      await sql`UPDATE src SET text = 'changed' WHERE id = 1`.execute(db)
      gate.hold()
      const pending = store.get(kept, 1)
      await gate.held
      // Row 1 leaves the comprehension (no input deleted): a tombstone, then collected.
      await sql`UPDATE src SET text = 'gone' WHERE id = 1`.execute(db)
      expect((await store.refresh()).tables['kept']!.deleted).toBe(1)
      await store.refresh()
      expect(await store.collect({ olderThan: await store.clock() })).toEqual({ revisions: 0, tombstones: 1, claims: 0 })
      gate.release()
      await pending
      // The result evaluated before the tombstone was written is refused by the collected floor.
      expect(await dataOf(db, 'kept')).toEqual({ '2': 'B' })
      expect(await count(db, `SELECT count(*) AS n FROM lq_meta_kept WHERE lq_key = '1'`)).toBe(0)
      expect(await store.stale()).toEqual([])
      // A new evaluation of the row is stored as usual.
      await sql`UPDATE src SET text = 'back' WHERE id = 1`.execute(db)
      await store.refresh()
      expect(await dataOf(db, 'kept')).toEqual({ '1': 'BACK', '2': 'B' })
    })

    it('a narrower output codec with the same SQL type (t.string -> t.keyof) is a code change: rows become stale and are recomputed', async () => {
      const db = tdb.db
      await createSrc(db, [{ id: 1, text: 'a' }, { id: 2, text: 'b' }])
      const fn = (r: { text: string }) => ({ s: r.text.toUpperCase() })
      const a = await openStore(db)
      await a.track(src)
      a.derive({ name: 'out', from: src, output: { s: t.string }, fn })
      await a.refresh()
      const b = await openStore(db)
      await b.track(src)
      const out = b.derive({ name: 'out', from: src, output: { s: t.keyof({ A: null, B: null }) }, fn: fn as (r: { text: string }) => { s: 'A' | 'B' } })
      expect(b.codeVersion(out)).not.toBe(a.codeVersion('out'))
      // Before: the same version, the rows stayed fresh (and reads decoded them with the narrower codec).
      expect(await b.status(out, 1)).toMatchObject({ state: 'stale', causes: [{ kind: 'code-changed' }] })
      expect((await b.refresh()).tables['out']).toMatchObject({ unchanged: 2 })
      expect(await b.stale()).toEqual([])
    })

    it('params are part of the code version and reach the function as ctx.params', async () => {
      const db = tdb.db
      await createSrc(db, [{ id: 1, text: 'a' }, { id: 2, text: 'bbb' }])
      const declare = async (threshold: number) => {
        const store = await openStore(db)
        await store.track(src)
        const long = store.derive({ name: 'long', from: src, output: { long: t.boolean }, params: { threshold }, fn: (r, ctx) => ({ long: r.text.length > (ctx.params as { threshold: number }).threshold }) })
        return { store, long }
      }
      const a = await declare(1)
      await a.store.refresh()
      expect(await dataOfCol(db, 'long', 'long')).toEqual({ '1': false, '2': true })
      const same = await declare(1)
      expect(same.store.codeVersion(same.long)).toBe(a.store.codeVersion(a.long))
      expect(await same.store.stale()).toEqual([])
      const b = await declare(5)
      expect(b.store.codeVersion(b.long)).not.toBe(a.store.codeVersion(a.long))
      expect(await b.store.status(b.long, 2)).toMatchObject({ state: 'stale', causes: [{ kind: 'code-changed' }] })
      await b.store.refresh()
      expect(await dataOfCol(db, 'long', 'long')).toEqual({ '1': false, '2': false })
      const c = await openStore(db)
      await c.track(src)
      expect(() => c.derive({ name: 'bad', from: src, output: { n: t.Int }, params: { at: new Date(0) }, fn: () => ({ n: 1 }) })).toThrow(/params\.at is Date/)
    })

    it('affected(root, key) right after an INSERT lists the rows it feeds, computed or not, as stale() does; aggregate reads included', async () => {
      const db = tdb.db
      await createSrc(db, [{ id: 1, text: 'a' }, { id: 2, text: 'bb' }])
      const grp = table('grp', { g: t.Int, name: t.string }, { key: 'g' })
      await createTable(db, grp)
      await insertRows(db, grp, [{ g: 1, name: 'one' }, { g: 2, name: 'two' }])
      const store = await openStore(db)
      await store.track(src)
      await store.track(grp)
      const out = upper(store)
      const next = store.derive({ name: 'next', from: out, output: { n: t.Int }, fn: (r) => ({ n: r.s.length }) })
      const pick = store.derive({ name: 'pick', from: Q.for(src, (r) => Q.where(Q.ne(r.text, 'x'), Q.yield({ text: r.text }))), output: { s: t.string }, fn: (r) => ({ s: r.text }) })
      // Reads src only inside an aggregate: every row depends on every src row.
      const sizes = store.derive({
        name: 'sizes',
        from: Q.for(grp, (g) => Q.yield({ name: g.name, n: Q.count(Q.for(src, (r) => Q.where(Q.eq(r.id, g.g), Q.yield(r.id)))) })),
        output: { n: t.Int },
        fn: (r) => ({ n: r.n }),
      })
      await store.refresh()
      const names = (rows: readonly { table: string; key: unknown }[]) => rows.map((r) => `${r.table}:${JSON.stringify(r.key)}`).sort()
      // Before: [] for a new row, and the aggregate reader never appeared.
      expect(names(await store.affected(src, 1))).toEqual(['next:1', 'out:1', 'pick:1', 'sizes:[{"table":"grp","key":1}]', 'sizes:[{"table":"grp","key":2}]'])
      await insertRows(db, src, [{ id: 3, text: 'ccc' }])
      const affected = names(await store.affected(src, 3))
      expect(affected).toEqual(['next:3', 'out:3', 'pick:3', 'sizes:[{"table":"grp","key":1}]', 'sizes:[{"table":"grp","key":2}]'])
      // Every row stale() lists because of the insert is among them.
      const stale = names(await store.stale())
      expect(stale.filter((k) => !affected.includes(k))).toEqual([])
      expect(stale).toEqual(expect.arrayContaining(['out:3', 'next:3', 'pick:3']))
      expect((await store.status(out, 3)).state).toBe('missing')
      expect((await store.status(pick, 3)).state).toBe('missing')
      void next
      void sizes
      await store.refresh()
      expect(names(await store.affected(src, 3))).toEqual(affected)
      // A key with no row feeds nothing.
      expect(await store.affected(src, 99)).toEqual(expect.not.arrayContaining([expect.objectContaining({ table: 'out' })]))
    })

    it('affected(root, key) reads its first hop (the root row, its one-table and comprehension readers, their edges and watermarks) in one statement', async () => {
      let statements = 0
      const db = tdb.db.withPlugin({
        transformQuery: (a) => a.node,
        transformResult: async (a) => {
          statements++
          return a.result
        },
      })
      await createSrc(db, [{ id: 1, text: 'a' }, { id: 2, text: 'bb' }])
      const store = await openStore(db)
      await store.track(src)
      store.derive({ name: 'out', from: src, output: { s: t.string }, fn: (r) => ({ s: r.text.toUpperCase() }) })
      store.derive({ name: 'pick', from: Q.for(src, (r) => Q.where(Q.ne(r.text, 'x'), Q.yield({ text: r.text }))), output: { s: t.string }, fn: (r) => ({ s: r.text }) })
      await store.refresh()
      statements = 0
      const rows = await store.affected(src, 2)
      expect(rows.map((r) => `${r.table}:${JSON.stringify(r.key)}`).sort()).toEqual(['out:2', 'pick:2'])
      expect(statements).toBe(1)
      // A row written since the last refresh: the comprehension is evaluated for it as well.
      await insertRows(db, src, [{ id: 3, text: 'ccc' }])
      expect((await store.affected(src, 3)).map((r) => `${r.table}:${JSON.stringify(r.key)}`).sort()).toEqual(['out:3', 'pick:3'])
    })

    it('the deleted-input look-up probes the revision table by key whatever its statistics say (EXPLAIN)', async () => {
      const db = tdb.db
      await createSrc(db, [])
      await sql.raw(dialect === 'sqlite' ? `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 20000) INSERT INTO src (id, text) SELECT i, 't' FROM n` : `INSERT INTO src (id, text) SELECT i, 't' FROM generate_series(1, 20000) AS i`).execute(db)
      const store = await openStore(db)
      await store.track(src) // 20000 revision rows, then ANALYZE (PostgreSQL): statistics with no deletions
      await sql`DELETE FROM src WHERE id > 5000`.execute(db) // 15000 tombstones the statistics do not know
      const { deletedInputsSql } = await import('../../src/derived/sql/writes.js')
      const { storeDialects } = await import('../../src/derived/sql/index.js')
      const d = storeDialects[dialect]
      const text = deletedInputsSql(d, 'src')
      const keys = JSON.stringify(Array.from({ length: 500 }, (_, i) => String(4000 + i * 7)))
      const plan = (await db.executeQuery<Record<string, unknown>>({ sql: `${dialect === 'sqlite' ? 'EXPLAIN QUERY PLAN' : 'EXPLAIN'} ${text}`, parameters: [keys], query: undefined as never, queryId: undefined as never }))
        .rows.map((r) => String(r['detail'] ?? r['QUERY PLAN']))
        .join('\n')
      // Every access to the revision table is a key probe; it is never scanned or joined.
      expect(plan).not.toMatch(/Seq Scan on lq_rev_src|SCAN v\b|Nested Loop|Hash|\$deleted|\$rev/)
      for (const line of plan.split('\n')) if (/lq_rev_src|\bv\b/.test(line) && /Scan|SEARCH|SCAN/.test(line)) expect(line).toMatch(/lq_rev_src_pkey|PRIMARY KEY/)
      if (dialect === 'sqlite') expect(plan).toMatch(/SEARCH v USING PRIMARY KEY \(lq_key=\?\)/)
      else expect(plan).toMatch(/Index (Only )?Scan using lq_rev_src_pkey on lq_rev_src v/)
      const rows = await db.executeQuery<{ lq_key: string; drev: unknown; present: unknown }>({ sql: text, parameters: [JSON.stringify(['1', '6000', '999999'])], query: undefined as never, queryId: undefined as never })
      const byKey = Object.fromEntries(rows.rows.map((r) => [r.lq_key, [r.drev === null ? null : 'deleted', Number(r.present)]]))
      expect(byKey).toEqual({ '1': [null, 1], '6000': ['deleted', 1], '999999': [null, 0] })
    })
  })
}

describe('code versions (pure)', () => {
  it('output codecs whose SQL type says it all leave the version as before; narrower ones change it', async () => {
    const { codeVersion, codecShape } = await import('../../src/derived/version.js')
    const fn = (r: { x: number }) => ({ s: String(r.x) })
    const base = codeVersion({ table: 'x', fn })
    expect(codeVersion({ table: 'x', fn, output: { s: t.string, n: t.Int, r: t.number, b: t.boolean, m: t.union([t.string, t.null]) } })).toBe(base)
    expect(codeVersion({ table: 'x', fn, output: { s: t.keyof({ a: null }) } })).not.toBe(base)
    expect(codeVersion({ table: 'x', fn, output: { s: t.keyof({ a: null }) } })).not.toBe(codeVersion({ table: 'x', fn, output: { s: t.keyof({ a: null, b: null }) } }))
    expect(codeVersion({ table: 'x', fn, output: { s: t.literal('a') } })).not.toBe(base)
    expect(codecShape(t.union([t.null, t.keyof({ b: null, a: null })])).shape).toBe('keyof["a","b"]|null')
    expect(codeVersion({ table: 'x', fn, params: { a: 1, b: [2] } })).toBe(codeVersion({ table: 'x', fn, params: { b: [2], a: 1 } }))
    expect(codeVersion({ table: 'x', fn, params: { a: 1 } })).not.toBe(base)
  })
})
