/**
 * Keys: every root row is derived or reported (keys JavaScript cannot carry become failed rows
 * naming table and key), integers are never returned rounded, and every key the library hands
 * out is accepted back by get/status/affected (or refused with an error naming the expected
 * form). SQLite and PostgreSQL.
 */
import * as t from 'io-ts'
import { sql } from 'kysely'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { LineageQueryError } from '../../src/errors.js'
import { createTable, insertRows } from '../../src/query/ddl.js'
import { Q, table } from '../../src/query/dsl.js'
import { run } from '../../src/query/run.js'
import { lineage } from '../../src/lineage/index.js'
import { openStore } from '../../src/derived/index.js'
import { dialectNames, open, type TestDb } from '../support/db.js'

const src = table('src', { id: t.Int, text: t.string })
const named = table('named', { name: t.string, v: t.Int }, { key: 'name' })
const BIG = '9007199254740993' // 2^53 + 1: JSON.parse and better-sqlite3 round it to 2^53

async function rejection(p: Promise<unknown> | (() => unknown)): Promise<LineageQueryError> {
  try {
    await (typeof p === 'function' ? p() : p)
  } catch (e) {
    expect(e).toBeInstanceOf(LineageQueryError)
    return e as LineageQueryError
  }
  throw new Error('expected a LineageQueryError')
}

for (const dialect of dialectNames) {
  describe(`keys [${dialect}]`, () => {
    let tdb: TestDb
    beforeEach(async () => {
      tdb = await open(dialect)
    })
    afterEach(async () => {
      await tdb.close()
    })

    /** `src` with 1200 rows (enough for a first fill that reads the input table in bulk) and one keyed BIG, tracked; `out` derived from it (s = text upper-cased). */
    async function bigKeyStore() {
      await createTable(tdb.db, src)
      await insertRows(tdb.db, src, Array.from({ length: 1200 }, (_, i) => ({ id: i + 1, text: `r${i}` })))
      await sql`INSERT INTO src (id, text) VALUES (${sql.raw(BIG)}, 'big')`.execute(tdb.db)
      const store = await openStore(tdb.db)
      await store.track(src)
      const out = store.derive({ name: 'out', from: src, output: { s: t.string }, fn: (r) => ({ s: r.text.toUpperCase() }) })
      return { store, out }
    }

    it('run() refuses an integer beyond 2^53 with a decode error naming table and column, instead of returning it rounded', async () => {
      await createTable(tdb.db, src)
      await sql`INSERT INTO src (id, text) VALUES (${sql.raw(BIG)}, 'big')`.execute(tdb.db)
      const e = await rejection(run(tdb.db, Q.for(src, (r) => Q.yield(r))))
      expect(e.code).toBe('decode')
      expect(e.message).toContain('column `id` of table `src`')
      expect(e.message).toContain('safe integer range')
    })

    it('a root row whose integer key is beyond 2^53 is stored as failed naming table and key; every other row is derived', async () => {
      const { store, out } = await bigKeyStore()
      const down = store.derive({ name: 'down', from: out, output: { n: t.Int }, fn: (r) => ({ n: r.s.length }) })
      const report = await store.refresh()
      expect(report.tables['out']).toMatchObject({ computed: 1200, failed: 1 })
      expect(report.tables['down']).toMatchObject({ computed: 1200, blocked: 1 })
      expect(await store.stale()).toEqual([])
      const s = await store.status(out, BIG)
      expect(s.state).toBe('failed')
      expect(s.key).toBe(BIG) // handed out as its decimal text, never rounded
      expect(s.causes[0]).toMatchObject({ kind: 'error', table: 'out', key: BIG, message: expect.stringContaining(`root table \`src\` has a row with key ${BIG}`) })
      expect((await store.status(down, BIG)).state).toBe('blocked')
      expect((await store.get(out, BIG)).state).toBe('failed')
      expect(JSON.parse(JSON.stringify(s))).toEqual(s)
      // Written later (an incremental refresh), the same.
      await sql`INSERT INTO src (id, text) VALUES (${sql.raw('-9007199254740995')}, 'small')`.execute(tdb.db)
      expect((await store.refresh()).tables['out']).toMatchObject({ computed: 0, failed: 1 })
      expect((await store.status(out, '-9007199254740995')).state).toBe('failed')
      expect(await store.stale()).toEqual([])
    })

    it('a refresh that reads the root in bulk while another worker has stored only the failed row keyed beyond 2^53 derives every other row, instead of failing to decode that row', async () => {
      const { store, out } = await bigKeyStore()
      expect((await store.refresh()).tables['out']).toMatchObject({ computed: 1200, failed: 1 })
      // The state a worker starting beside another one's first fill finds: the big key's failed
      // row stored, the others not yet, no watermark. Its scan covers the whole root and most
      // rows are missing, so it reads the root in bulk.
      await sql`DELETE FROM ${sql.table('lq_meta_out')} WHERE lq_key <> ${BIG}`.execute(tdb.db)
      await sql`DELETE FROM ${sql.table('out')}`.execute(tdb.db)
      await sql`UPDATE lq_derived SET wm_rev = 0, wm_xmin = NULL WHERE name = 'out'`.execute(tdb.db)
      expect((await store.refresh()).tables['out']).toMatchObject({ computed: 1200 })
      expect(await store.get(out, 7)).toMatchObject({ state: 'fresh', value: { s: 'R6' } })
      expect((await store.status(out, BIG)).state).toBe('failed')
      expect(await store.stale()).toEqual([])
    })

    it('a root row with a lone-surrogate string key is derived or stored as failed, never skipped', async () => {
      await createTable(tdb.db, named)
      await insertRows(tdb.db, named, [{ name: 'ok', v: 1 }])
      await sql`INSERT INTO named (name, v) VALUES (${'a\ud800b'}, 2)`.execute(tdb.db)
      const store = await openStore(tdb.db)
      await store.track(named)
      store.derive({ name: 'out', from: named, output: { w: t.Int }, fn: (r) => ({ w: r.v * 10 }) })
      const report = await store.refresh()
      // SQLite keeps the surrogate's bytes, which read back as U+FFFD: reported as failed.
      // PostgreSQL stores U+FFFD (the driver replaces it): an ordinary key, derived.
      expect(report.tables['out']!.computed + report.tables['out']!.failed).toBe(2)
      expect(report.tables['out']).toMatchObject(dialect === 'sqlite' ? { computed: 1, failed: 1 } : { computed: 2, failed: 0 })
      expect(await store.stale()).toEqual([])
      expect((await store.refresh()).totals).toMatchObject({ computed: 0, failed: 0 })
    })

    it('every key the library hands out for a derived row is accepted back by get, status and affected', async () => {
      await createTable(tdb.db, src)
      await insertRows(tdb.db, src, [{ id: 1, text: 'a' }, { id: 7, text: 'b' }])
      const store = await openStore(tdb.db)
      await store.track(src)
      const out = store.derive({ name: 'out', from: src, output: { s: t.string }, fn: (r) => ({ s: r.text }) })
      await store.refresh()
      const fromRun = (await run(tdb.db, Q.for(out, (r) => Q.yield(r.lq_key)))).sort()
      expect(fromRun).toEqual(['1', '7'])
      const fromLineage = (await run(tdb.db, lineage(Q.for(out, (r) => Q.yield(r.s)), { composed: false }))).flatMap((r) => r.lineage.map((e) => e.key))
      const fromAffected = (await store.affected(src, 7)).map((r) => r.key)
      expect(fromAffected).toEqual([7])
      const fromStatus = (await store.status(out, 1)).key
      for (const k of [...fromRun, ...fromLineage, ...fromAffected, fromStatus, 1n]) {
        expect((await store.get(out, k)).state).toBe('fresh')
        expect((await store.status(out, k)).state).toBe('fresh')
        expect((await store.affected(src, k)).length).toBe(1)
      }
      // The canonical form is the root key: status and affected hand it back as given.
      expect((await store.status(out, '7')).key).toBe(7)
    })

    it('string root keys: the key itself is accepted; its lq_key JSON text is refused with an error naming both forms', async () => {
      await createTable(tdb.db, named)
      await insertRows(tdb.db, named, [{ name: 'abc', v: 1 }, { name: '"q"', v: 2 }])
      const store = await openStore(tdb.db)
      await store.track(named)
      const out = store.derive({ name: 'out', from: named, output: { w: t.Int }, fn: (r) => ({ w: r.v }) })
      await store.refresh()
      const lqKeys = (await run(tdb.db, Q.for(out, (r) => Q.yield(r.lq_key)))).sort()
      expect(lqKeys).toEqual(['"\\"q\\""', '"abc"'])
      expect((await store.get(out, 'abc')).state).toBe('fresh')
      const e = await rejection(store.get(out, '"abc"'))
      expect(e.code).toBe('argument')
      expect(e.message).toContain("pass the key itself (\"abc\")")
      // A key that really has quotes: by its lineage.
      expect((await store.get(out, [{ table: 'named', key: '"q"' }])).state).toBe('fresh')
      expect((await store.affected(named, 'abc')).map((r) => r.key)).toEqual(['abc'])
    })

    it('a key of the wrong type is an argument error naming the expected form, not a silent missing/no-input', async () => {
      await createTable(tdb.db, src)
      await insertRows(tdb.db, src, [{ id: 1, text: 'a' }])
      const store = await openStore(tdb.db)
      await store.track(src)
      const out = store.derive({ name: 'out', from: src, output: { s: t.string }, fn: (r) => ({ s: r.text }) })
      for (const bad of ['x', 1.5, true, null, { id: 1 }, [1, 2]]) {
        const e = await rejection(store.get(out, bad))
        expect(e.code).toBe('argument')
        expect(e.message).toContain('the key of root table `src` is an integer')
        expect((await rejection(store.status(out, bad))).code).toBe('argument')
        expect((await rejection(store.affected(src, bad))).code).toBe('argument')
      }
      const e = await rejection(store.get(out, [{ table: 'nope', key: 1 }]))
      expect(e.message).toContain('not a root of `out`')
    })
  })
}
