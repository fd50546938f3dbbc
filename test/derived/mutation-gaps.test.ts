/**
 * Behaviours no test pinned before (each survived a deliberate bug, issue 10 item 13), on
 * SQLite and PostgreSQL where they touch a database.
 */
import Database from 'better-sqlite3'
import * as t from 'io-ts'
import { Kysely, SqliteDialect, sql } from 'kysely'
import pg from 'pg'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { createTable, insertRows } from '../../src/query/ddl.js'
import { Q, table } from '../../src/query/dsl.js'
import { buildGraph, openStore } from '../../src/derived/index.js'
import { addressFromUserChecked, inputsText, normaliseLineage, rootKeyText, type KeyKind, type KeyShapes } from '../../src/derived/keys.js'
import { thrown } from '../support/errors.js'
import { dialectNames, open, pgUrl, type TestDb } from '../support/db.js'

const src = table('src', { id: t.Int, text: t.string })

describe('buildGraph', () => {
  it('orders tables inputs first when given readers before their inputs', () => {
    const g = buildGraph({ roots: ['r'], derived: [{ name: 'c', reads: ['b', 'r'] }, { name: 'b', reads: ['a'] }, { name: 'a', reads: ['r'] }] })
    expect(g.order).toEqual(['r', 'a', 'b', 'c'])
    const g2 = buildGraph({ roots: ['r', 's'], derived: [{ name: 'z', reads: ['y', 'x'] }, { name: 'y', reads: ['s'] }, { name: 'x', reads: ['r', 'y'] }] })
    const at = (n: string) => g2.order.indexOf(n)
    expect(at('y')).toBeLessThan(at('x'))
    expect(at('x')).toBeLessThan(at('z'))
    expect(at('s')).toBeLessThan(at('y'))
  })
})

describe('key texts (no database)', () => {
  const BIG = '9007199254740993' // 2^53 + 1
  const text = (key: unknown, kinds: readonly KeyKind[]) => rootKeyText(key, kinds, 'r', 'store.get')

  it('entries whose keys have one text are one entry: the first given is kept', () => {
    const [e] = normaliseLineage([{ table: 'r', key: 0 }, { table: 'r', key: -0 }])
    expect(Object.is(e!.key, 0)).toBe(true)
    const [f] = normaliseLineage([{ table: 'r', key: -0 }, { table: 'r', key: 0 }])
    expect(Object.is(f!.key, -0)).toBe(true)
  })

  it('recorded inputs sort by table first whatever the order given: ("a", "z") before ("ab", "1")', () => {
    const want = '[["a","z",1],["ab","1",2]]'
    expect(inputsText([['a', 'z', 1], ['ab', '1', 2]])).toBe(want)
    expect(inputsText([['ab', '1', 2], ['a', 'z', 1]])).toBe(want)
  })

  it('a string key that starts and ends with a quote but is no JSON string is the string itself', () => {
    expect(text('"a" "b"', ['string'])).toBe(JSON.stringify('"a" "b"'))
    expect(text('"a"b"', ['string'])).toBe(JSON.stringify('"a"b"'))
  })

  it('the decimal text of an integer beyond 2^53 is refused for a boolean column, alone or in a composite key', () => {
    expect(thrown(() => text(BIG, ['boolean'])).message).toBe(`store.get: the key of root table \`r\` is a boolean (true); got "${BIG}"`)
    expect(thrown(() => text([BIG, 1], ['boolean', 'int'])).message).toMatch(/is an array of 2 values \(boolean, int\)/)
    expect(thrown(() => text(`[${BIG},1]`, ['boolean', 'int'])).message).toMatch(/is an array of 2 values \(boolean, int\)/)
    // In an integer column it is the integer.
    expect(text([true, BIG], ['boolean', 'int'])).toBe(`[true,${BIG}]`)
  })

  it('a multi-root row is not addressed by a list holding its lq_key text', () => {
    const shapes: KeyShapes = { table: 'd', roots: ['r', 's'], kinds: (root) => (root === 'r' ? ['int'] : root === 's' ? ['string'] : undefined), what: 'store.status' }
    expect(addressFromUserChecked('[["r",1],["s","x"]]', false, shapes)).toBe('[["r",1],["s","x"]]')
    const e = thrown(() => addressFromUserChecked(['[["r",1],["s","x"]]'], false, shapes))
    expect(e.code).toBe('argument')
    expect(e.message).toMatch(/^store\.status: rows of `d` are addressed by their root lineage/)
  })
})

for (const dialect of dialectNames) {
  describe(`derived paths no test pinned [${dialect}]`, () => {
    let tdb: TestDb
    beforeEach(async () => {
      tdb = await open(dialect)
    })
    afterEach(async () => {
      await tdb.close()
    })

    const pipeline = async (db: Kysely<any>) => {
      await createTable(db, src)
      await insertRows(db, src, [{ id: 1, text: 'a' }, { id: 2, text: 'b' }])
      const store = await openStore(db)
      await store.track(src)
      const up = store.derive({ name: 'up', from: src, output: { s: t.string }, fn: (r) => ({ s: r.text.toUpperCase() }) })
      const cq = store.derive({ name: 'cq', from: Q.for(up, (u) => Q.yield({ s: u.s })), output: { s: t.string }, fn: (r) => ({ s: `${r.s}!` }) })
      await store.refresh()
      return { store, up, cq }
    }

    it('status of a comprehension row whose derived input was recomputed by get: stale, cause upstream-changed', async () => {
      const db = tdb.db
      const { store, up, cq } = await pipeline(db)
      const before = (await sql<{ r: unknown }>`SELECT lq_changed_rev AS r FROM lq_meta_up WHERE lq_key = '1'`.execute(db)).rows[0]!.r
      await sql`UPDATE src SET text = 'z' WHERE id = 1`.execute(db)
      expect(await store.get(up, 1)).toMatchObject({ state: 'fresh', value: { s: 'Z' } })
      const after = (await sql<{ r: unknown }>`SELECT lq_changed_rev AS r FROM lq_meta_up WHERE lq_key = '1'`.execute(db)).rows[0]!.r
      expect(await store.status(cq, 1)).toEqual({
        table: 'cq',
        key: 1,
        state: 'stale',
        causes: [{ kind: 'upstream-changed', table: 'up', key: 1, oldRevision: Number(before), newRevision: Number(after) }],
      })
      expect((await store.status(cq, 2)).state).toBe('fresh')
    })

    it('an on-demand deletion of a derived row deletes, in its transaction, the comprehension rows it fed', async () => {
      const db = tdb.db
      const { store, up, cq } = await pipeline(db)
      await sql`DELETE FROM src WHERE id = 1`.execute(db)
      // get finds row 1 of `up` orphaned and deletes it, and with it row 1 of `cq` (no refresh).
      expect((await store.get(up, 1)).state).toBe('missing')
      const metas = (await sql<{ t: string; state: string; rev: unknown }>`SELECT 'up' AS t, lq_state AS state, lq_changed_rev AS rev FROM lq_meta_up WHERE lq_key = '1' UNION ALL SELECT 'cq', lq_state, lq_changed_rev FROM lq_meta_cq WHERE lq_key = '1'`.execute(db)).rows
      expect(metas.map((m) => [m.t, m.state]).sort()).toEqual([['cq', 'deleted'], ['up', 'deleted']])
      // One revision: both tombstones were written by one transaction.
      expect(new Set(metas.map((m) => Number(m.rev))).size).toBe(1)
      expect((await sql<{ lq_key: string }>`SELECT lq_key FROM cq`.execute(db)).rows.map((r) => r.lq_key)).toEqual(['2'])
      expect((await sql<{ n: unknown }>`SELECT count(*) AS n FROM lq_edge WHERE dst_table = 'cq' AND dst_key = '1'`.execute(db)).rows[0]!.n).toEqual(dialect === 'sqlite' ? 0 : '0')
      expect((await store.status(cq, 1)).state).toBe('missing')
      expect((await store.refresh()).totals.deleted).toBe(0)
    })
  })
}

/**
 * A root write committed between a refresh's clock read and its comprehension evaluation: the
 * revision recorded is clamped to the clock, so the row looks stale next time (never fresh with
 * a revision the refresh's watermark did not cover).
 */
describe('the revision clamp', () => {
  for (const dialect of dialectNames) {
    it(`a row written between the clock read and the evaluation looks stale next time [${dialect}]`, async () => {
      let db: Kysely<any>
      let writeBetween: () => Promise<void>
      let cleanup: () => Promise<void>
      let armed = false
      const hook = {
        transformQuery: (a: { node: any }) => a.node,
        transformResult: async (a: { result: { rows: Record<string, unknown>[] } }) => {
          const row = a.result.rows[0]
          // The refresh's clock read: { rev } (SQLite) or { rev, snapshot } (PostgreSQL).
          if (armed && row !== undefined && Object.keys(row).join() === (dialect === 'sqlite' ? 'rev' : 'rev,snapshot')) {
            armed = false
            await writeBetween()
          }
          return a.result
        },
      }
      let tdb: TestDb | undefined
      if (dialect === 'sqlite') {
        const database = new Database(':memory:')
        db = new Kysely<any>({ dialect: new SqliteDialect({ database }), plugins: [hook as any] })
        // better-sqlite3 is synchronous: the write runs at once, outside Kysely's connection queue.
        writeBetween = async () => void database.prepare(`UPDATE src SET text = 'between' WHERE id = 2`).run()
        cleanup = () => db.destroy()
      } else {
        tdb = await open('postgres')
        db = tdb.db.withPlugin(hook as any)
        const schema = (await sql<{ s: string }>`SELECT current_schema() AS s`.execute(db)).rows[0]!.s
        const other = new pg.Client({ connectionString: pgUrl, options: `-c search_path=${schema}` })
        await other.connect()
        writeBetween = async () => void (await other.query(`UPDATE src SET text = 'between' WHERE id = 2`))
        cleanup = async () => {
          await other.end()
          await tdb!.close()
        }
      }
      try {
        await createTable(db, src)
        await insertRows(db, src, [{ id: 1, text: 'a' }, { id: 2, text: 'b' }])
        const store = await openStore(db)
        await store.track(src)
        const pick = store.derive({ name: 'pick', from: Q.for(src, (r) => Q.yield({ text: r.text })), output: { s: t.string }, fn: (r) => ({ s: r.text }) })
        await store.refresh()
        await sql`UPDATE src SET text = 'c' WHERE id = 1`.execute(db)
        const clockBefore = await store.clock()
        armed = true
        await store.refresh()
        expect(armed).toBe(false) // the write ran between the clock read and the evaluation
        const written = await store.revision(src, 2)
        // The value computed is the new one, but recorded at the clock value: stale next time.
        expect((await sql<{ s: string }>`SELECT s FROM pick WHERE lq_key = '2'`.execute(db)).rows[0]!.s).toBe('between')
        expect(await store.status(pick, 2)).toMatchObject({ state: 'stale', causes: [{ kind: 'input-changed', table: 'src', key: 2, oldRevision: clockBefore, newRevision: written }] })
        expect((await store.refresh()).tables['pick']).toMatchObject({ computed: 0, unchanged: 1 })
        expect((await store.status(pick, 2)).state).toBe('fresh')
      } finally {
        await cleanup()
      }
    })
  }
})
