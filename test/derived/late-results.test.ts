/**
 * Late results, deletes reaching every reader, concurrent callers and table names: regression
 * tests of the derived-data engine on SQLite and PostgreSQL, each named for the behaviour it pins.
 */
import * as t from 'io-ts'
import { sql, type Kysely } from 'kysely'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { createTable, insertRows } from '../../src/query/ddl.js'
import { Q, table } from '../../src/query/dsl.js'
import { openStore } from '../../src/derived/index.js'
import pg from 'pg'
import { dialectNames, open, pgUrl, type TestDb } from '../support/db.js'
import { holdable } from './support/holdable.js'


/** The root most tests use. */
const src = table('src', { id: t.Int, text: t.string })

/** Create `src` with `rows` (by default rows 1 'a' and 2 'b'). */
async function createSrc(db: Kysely<any>, rows: { id: number; text: string }[] = [{ id: 1, text: 'a' }, { id: 2, text: 'b' }]): Promise<void> {
  await createTable(db, src)
  if (rows.length > 0) await insertRows(db, src, rows)
}

/**
 * `db` with hooks that interleave another connection's work into a statement sequence: each
 * hook runs once, right after the first statement whose first result row passes its test.
 */
function hooked(base: Kysely<any>) {
  const hooks: { test: (row: Record<string, unknown>) => boolean; run: () => Promise<void> }[] = []
  const db = base.withPlugin({
    transformQuery: (a) => a.node,
    transformResult: async (a) => {
      const row = a.result.rows[0] as Record<string, unknown> | undefined
      const i = row === undefined ? -1 : hooks.findIndex((h) => h.test(row))
      if (i >= 0) await hooks.splice(i, 1)[0]!.run()
      return a.result
    },
  })
  return { db, on: (test: (row: Record<string, unknown>) => boolean, run: () => Promise<void>) => void hooks.push({ test, run }), pending: () => hooks.length }
}

/**
 * PostgreSQL server: root `src` (rows 1, 2), programs `a` (on a hooked connection) and `b`
 * declaring `out` = the row's text, both refreshed, then row 3 inserted; and another connection.
 */
async function lateWriteSetup(tdb: TestDb) {
  const h = hooked(tdb.db)
  await createSrc(tdb.db)
  const declare = async (on: Kysely<any>) => {
    const store = await openStore(on)
    await store.track(src)
    return { store, out: store.derive({ name: 'out', from: src, output: { s: t.string }, fn: (s) => ({ s: s.text }) }) }
  }
  const a = await declare(h.db)
  await a.store.refresh()
  const b = await declare(tdb.db) // another program; its tables checked now, not while a's write is open
  await b.store.refresh()
  await insertRows(tdb.db, src, [{ id: 3, text: 'c' }])
  const schema = (await sql<{ s: string }>`SELECT current_schema() AS s`.execute(tdb.db)).rows[0]!.s
  const other = new pg.Client({ connectionString: pgUrl, options: `-c search_path=${schema}` })
  await other.connect()
  return { h, a, b, other }
}


const rowsOf = async (db: Kysely<any>, name: string) =>
  (await sql<Record<string, unknown>>`SELECT * FROM ${sql.id(name)} ORDER BY lq_key`.execute(db)).rows

for (const dialect of dialectNames) {
  describe(`late results, deletes and concurrent callers [${dialect}]`, () => {
    let tdb: TestDb
    beforeEach(async () => {
      tdb = await open(dialect)
    })
    afterEach(async () => {
      await tdb.close()
    })

    for (const which of ['out', 'out2'] as const) {
      it(`a computation of ${which} that finishes after its root row was deleted does not bring the derived row back`, async () => {
        const db = tdb.db
        await createSrc(db)
        const store = await openStore(db)
        await store.track(src)
        const gates = { out: holdable(), out2: holdable() }
        const out = store.derive({ name: 'out', from: src, output: { up: t.string }, fn: async (s) => (await gates.out.pass(), { up: s.text.toUpperCase() }) })
        const out2 = store.derive({ name: 'out2', from: out, output: { n: t.number }, fn: async (o) => (await gates.out2.pass(), { n: o.up.length }) })
        await store.refresh()
        await sql`UPDATE src SET text = 'changed' WHERE id = 1`.execute(db)
        if (which === 'out2') await store.get(out, 1) // out row 1 fresh, out2 row 1 stale
        gates[which].hold()
        const pending = which === 'out' ? store.get(out, 1) : store.get(out2, 1)
        await gates[which].held
        await sql`DELETE FROM src WHERE id = 1`.execute(db)
        const r1 = await store.refresh()
        expect(r1.tables[which]!.deleted).toBe(1)
        gates[which].release()
        expect((await pending).state).toBe('missing')
        const r2 = await store.refresh()
        expect(r2.tables[which]!.computed).toBe(0)
        for (const name of ['out', 'out2']) expect((await rowsOf(db, name)).map((r) => r['lq_key'])).toEqual(['2'])
        expect((await store.status(which === 'out' ? out : out2, 1)).state).toBe('missing')
        expect(await store.stale()).toEqual([])
        expect(await store.affected(src, 1)).toEqual([])
      })
    }

    it('a root delete reaches derived tables that the refreshing store does not declare', async () => {
      const db = tdb.db
      await createSrc(db, [{ id: 1, text: 'a' }, { id: 2, text: 'bb' }])
      // Program A declares the whole pipeline; program B only its first table.
      const declareA = async () => {
        const store = await openStore(db)
        await store.track(src)
        const up = store.derive({ name: 'up', from: src, output: { s: t.string }, fn: (s) => ({ s: s.text.toUpperCase() }) })
        const len = store.derive({ name: 'len', from: up, output: { n: t.Int }, fn: (u) => ({ n: u.s.length }) })
        const pairs = store.derive({ name: 'pairs', from: Q.for(up, (u) => Q.where(Q.ne(u.s, ''), Q.yield({ s: u.s }))), output: { st: t.string }, fn: (r) => ({ st: r.s + '!' }) })
        return { store, up, len, pairs }
      }
      const a = await declareA()
      expect((await a.store.refresh()).totals.computed).toBe(6)
      const b = await openStore(db)
      await b.track(src)
      b.derive({ name: 'up', from: src, output: { s: t.string }, fn: (s) => ({ s: s.text.toUpperCase() }) })
      await sql`DELETE FROM src WHERE id = 1`.execute(db)
      expect((await b.refresh()).tables['up']!.deleted).toBe(1)
      // A's next refresh finds the deletion of up's row although B processed it.
      const again = await declareA()
      expect(await again.store.stale()).toEqual(expect.arrayContaining([expect.objectContaining({ table: 'len', key: 1 })]))
      const r = await again.store.refresh()
      expect(r.tables['len']!.deleted).toBe(1)
      expect(r.tables['pairs']!.deleted).toBe(1)
      expect((await rowsOf(db, 'len')).map((x) => x['lq_key'])).toEqual(['2'])
      expect((await rowsOf(db, 'pairs')).length).toBe(1)
      expect(await again.store.stale()).toEqual([])
      expect((await again.store.status(again.len, 1)).state).toBe('missing')
      // The row comes back when its root row does.
      await insertRows(db, src, [{ id: 1, text: 'ccc' }])
      expect((await again.store.refresh()).totals.computed).toBe(3)
      expect(await again.store.get(again.len, 1)).toMatchObject({ state: 'fresh', value: { n: 3 } })
    })

    it('a root delete committing while a result for that row is being written does not leave the result behind', async () => {
      // PostgreSQL server only: another connection deletes the root row and another store
      // refreshes while the write transaction of a get() is open (after its deleted-input check,
      // before its commit). SQLite has one writer at a time, so the interleaving cannot happen.
      if (tdb.label !== 'postgres (server)') return
      const { h, a, b, other } = await lateWriteSetup(tdb)
      const db = tdb.db
      try {
        h.on((row) => 'counts' in row, async () => {
          await other.query('DELETE FROM src WHERE id = 3')
          expect((await b.store.refresh()).tables['out']!.deleted).toBe(0) // the new row is not committed yet
        })
        await a.store.get(a.out, 3)
        expect(h.pending()).toBe(0) // the hook ran
      } finally {
        await other.end()
      }
      expect((await rowsOf(db, 'out')).map((r) => r['lq_key'])).toEqual(['1', '2'])
      await a.store.refresh()
      expect((await rowsOf(db, 'out')).map((r) => r['lq_key'])).toEqual(['1', '2'])
      expect(await a.store.stale()).toEqual([])
    })

    // Tombstones, the re-check after commit, input hashes.
    it('a late result does not bring back a comprehension row that left the comprehension meanwhile', async () => {
      const db = tdb.db
      const src = table('src', { id: t.Int, flag: t.boolean, text: t.string })
      await createTable(db, src)
      await insertRows(db, src, [{ id: 1, flag: true, text: 'a' }, { id: 2, flag: true, text: 'b' }])
      const g = holdable()
      const declare = async () => {
        const store = await openStore(db)
        await store.track(src)
        const out = store.derive({ name: 'out', from: Q.for(src, (s) => Q.where(s.flag, Q.yield({ id: s.id, text: s.text }))), output: { up: t.string }, fn: async (r) => (await g.pass(), { up: r.text.toUpperCase() }) })
        return { store, out }
      }
      const a = await declare()
      const b = await declare()
      await a.store.refresh()
      await sql`UPDATE src SET text = 'aa' WHERE id = 1`.execute(db)
      g.hold()
      const pending = a.store.get(a.out, 1)
      await g.held
      await sql`UPDATE src SET flag = false WHERE id = 1`.execute(db)
      expect((await b.store.refresh()).tables['out']!.deleted).toBe(1)
      g.release()
      expect((await pending).state).toBe('missing')
      await b.store.refresh()
      expect((await rowsOf(db, 'out')).map((r) => r['lq_key'])).toEqual(['2'])
      expect(await b.store.stale()).toEqual([])
    })

    const counting = async (db: Kysely<any>) => {
      const tags = table('tags', { tid: t.Int, sid: t.Int }, { key: 'tid' })
      await createSrc(db)
      await createTable(db, tags)
      await insertRows(db, tags, [{ tid: 10, sid: 1 }])
      return { src, tags, from: Q.for(src, (s) => Q.yield({ id: s.id, n: Q.count(Q.for(tags, (x) => Q.where(Q.eq(x.sid, s.id), Q.yield(x.tid)))) })) }
    }
    const counts = async (db: Kysely<any>) => (await rowsOf(db, 'counted')).map((r) => Number(r['n']))

    it('a refresh overlapping a get still recomputes rows whose input value changed', async () => {
      const db = tdb.db
      const { src, tags, from } = await counting(db)
      const aux = table('aux', { id: t.Int, text: t.string })
      await createTable(db, aux)
      await insertRows(db, aux, [{ id: 2, text: 'x' }])
      const store = await openStore(db)
      for (const r of [src, tags, aux]) await store.track(r)
      const g = holdable()
      const up = store.derive({ name: 'up', from: aux, output: { s: t.string }, fn: async (s) => (await g.pass(), { s: s.text }) })
      store.derive({ name: 'counted', from, output: { n: t.Int }, fn: (r) => ({ n: r.n }) })
      await store.refresh()
      await insertRows(db, tags, [{ tid: 11, sid: 1 }, { tid: 12, sid: 2 }])
      await sql`UPDATE aux SET text = 'yy' WHERE id = 2`.execute(db)
      g.hold()
      const pending = store.get(up, 2) // overlaps the refresh, so the refresh is not alone
      await g.held
      const r = store.refresh()
      await new Promise((res) => setTimeout(res, 100))
      g.release()
      expect((await r).tables['counted']!.computed).toBe(2)
      await pending
      expect(await counts(db)).toEqual([2, 1])
      expect(await store.stale()).toEqual([])
    })

    it('status sees input-value changes, and a late result does not replace one from a later evaluation', async () => {
      const db = tdb.db
      const { src, tags, from } = await counting(db)
      const g = holdable()
      const declare = async () => {
        const store = await openStore(db)
        await store.track(src)
        await store.track(tags)
        const counted = store.derive({ name: 'counted', from, output: { n: t.Int }, fn: async (r) => (await g.pass(), { n: r.n }) })
        return { store, counted }
      }
      const a = await declare()
      const b = await declare()
      await a.store.refresh()
      await insertRows(db, tags, [{ tid: 11, sid: 1 }])
      expect(await a.store.status(a.counted, [{ table: 'src', key: 1 }])).toMatchObject({ state: 'stale', causes: [{ kind: 'input-value-changed', reads: ['tags'] }] })
      g.hold()
      const pending = a.store.get(a.counted, [{ table: 'src', key: 1 }]) // evaluates with 2 tags
      await g.held
      await insertRows(db, tags, [{ tid: 12, sid: 1 }])
      // b finds row 1 claimed by a (leases): a's lease is made to run out, as if its heartbeats had
      // stopped, until b took the row over and stored 3.
      let bDone = false
      const rb = b.store.refresh().finally(() => (bDone = true))
      while (!bDone) {
        await sql`UPDATE lq_claim SET expires = 0 WHERE owner = ${a.store.owner}`.execute(db)
        await new Promise((r) => setTimeout(r, 10))
      }
      await rb // stores 3
      g.release()
      await pending // its 2 is refused
      await b.store.refresh()
      expect(await counts(db)).toEqual([3, 0])
      expect(await b.store.stale()).toEqual([])
    })

    it('the re-check after a write does not delete a newer row another program stored meanwhile', async () => {
      // PostgreSQL server only (two connections interleaved inside a write, as in the late-delete test above).
      if (tdb.label !== 'postgres (server)') return
      const { h, a, b, other } = await lateWriteSetup(tdb)
      try {
        h.on((row) => 'counts' in row, async () => {
          await other.query('DELETE FROM src WHERE id = 3') // commits before a's write commits
          h.on((row) => Object.keys(row).join() === 'lq_key,drev,present', async () => {
            // Between the re-check's read of deletions and its delete: the row comes back and b stores
            // it (b takes row 3 over once a's lease has run out, as if a's heartbeats had stopped).
            await other.query(`INSERT INTO src (id, text) VALUES (3, 'back')`)
            await other.query('UPDATE lq_claim SET expires = 0 WHERE owner = $1', [a.store.owner])
            expect((await b.store.refresh()).tables['out']!.computed).toBe(1)
          })
        })
        await a.store.get(a.out, 3)
        expect(h.pending()).toBe(0) // both hooks ran
      } finally {
        await other.end()
      }
      const rows = async () => (await rowsOf(tdb.db, 'out')).map((r) => `${r['lq_key']}=${r['s']}`)
      expect(await rows()).toEqual(['1=a', '2=b', '3=back'])
      await b.store.refresh()
      expect(await rows()).toEqual(['1=a', '2=b', '3=back'])
      expect(await b.store.stale()).toEqual([])
    })

    it('TRUNCATE of a tracked root (PostgreSQL; a whole-table DELETE on SQLite) deletes the derived rows', async () => {
      const db = tdb.db
      await createSrc(db)
      const store = await openStore(db)
      await store.track(src)
      await store.track(src) // idempotent: the triggers are replaced, not doubled
      const out = store.derive({ name: 'out', from: src, output: { s: t.string }, fn: (s) => ({ s: s.text }) })
      await store.refresh()
      const before = await store.revision(src, 1)
      if (dialect === 'postgres') await sql`TRUNCATE src`.execute(db)
      else await sql`DELETE FROM src`.execute(db)
      expect(await store.revision(src, 1)).toBeUndefined()
      expect((await store.status(out, 1)).causes).toEqual([{ kind: 'input-deleted', table: 'src', key: 1, oldRevision: before }])
      const r = await store.refresh()
      expect(r.tables['out']!.deleted).toBe(2)
      expect(await rowsOf(db, 'out')).toEqual([])
      expect(await store.stale()).toEqual([])
      await insertRows(db, src, [{ id: 1, text: 'c' }])
      await store.refresh()
      expect(await rowsOf(db, 'out')).toEqual([{ s: 'c', lq_key: '1' }])
    })

    it('derived tables foo and foo_changed, and roots x and x_rev, do not clash', async () => {
      const db = tdb.db
      const x = table('x', { id: t.Int })
      const xRev = table('x_rev', { id: t.Int })
      for (const r of [src, x, xRev]) await createTable(db, r)
      await insertRows(db, src, [{ id: 1, text: 'a' }])
      await insertRows(db, xRev, [{ id: 7 }])
      const store = await openStore(db)
      for (const r of [src, x, xRev]) await store.track(r)
      expect(await store.revision(xRev, 7)).toBeTypeOf('number')
      const foo = store.derive({ name: 'foo', from: src, output: { s: t.string }, fn: (s) => ({ s: 'foo' + s.text }) })
      const fooChanged = store.derive({ name: 'foo_changed', from: src, output: { s: t.string }, fn: (s) => ({ s: 'fc' + s.text }) })
      await store.refresh()
      expect(await store.get(foo, 1)).toMatchObject({ state: 'fresh', value: { s: 'fooa' } })
      expect(await store.get(fooChanged, 1)).toMatchObject({ state: 'fresh', value: { s: 'fca' } })
    })

    it('names too long for PostgreSQL, or differing only in case on SQLite are rejected', async () => {
      const db = tdb.db
      await createSrc(db, [])
      const store = await openStore(db)
      await store.track(src)
      const decl = (name: string) => ({ name, from: src, output: { s: t.string }, fn: (s: { text: string }) => ({ s: s.text }) })
      const long = 'a'.repeat(48)
      if (dialect === 'postgres') {
        expect(() => store.derive(decl(long))).toThrow(/longer than 47 bytes/)
        store.derive(decl('a'.repeat(47)))
        store.derive(decl('Out'))
        store.derive(decl('out')) // PostgreSQL's quoted names are case-sensitive
        expect(() => store.derive(decl('out_pkey'))).toThrow(/_pkey/)
      } else {
        store.derive(decl(long))
        store.derive(decl('Out'))
        expect(() => store.derive(decl('out'))).toThrow(/case-insensitively/)
        expect(() => store.derive(decl('SRC'))).toThrow(/case-insensitively/)
      }
      try {
        store.derive(decl(dialect === 'postgres' ? 'b'.repeat(60) : 'OUT'))
        expect.unreachable()
      } catch (e) {
        expect(e).toMatchObject({ name: 'LineageQueryError', code: 'schema' })
      }
    })

    it('a shared computation whose write failed is run again by the caller that waited for it, before the watermark advances', async () => {
      const db = tdb.db
      await createSrc(db, [{ id: 1, text: 'a' }])
      const store = await openStore(db)
      await store.track(src)
      const g = holdable()
      g.hold() // the first call is held
      let calls = 0
      const out = store.derive({
        name: 'out',
        from: src,
        output: { up: t.string },
        fn: async (s) => {
          calls++
          if (calls === 1) await g.pass()
          else await sql`UPDATE boom_ctl SET n = 0`.execute(db) // the retry's write succeeds
          return { up: s.text.toUpperCase() }
        },
      })
      await store.status(out, 1) // creates the tables
      // The first write to lq_meta_out fails.
      await sql`CREATE TABLE boom_ctl (n integer NOT NULL)`.execute(db)
      await sql`INSERT INTO boom_ctl VALUES (1)`.execute(db)
      if (dialect === 'sqlite') {
        await sql.raw(`CREATE TRIGGER boom BEFORE INSERT ON lq_meta_out WHEN (SELECT n FROM boom_ctl) = 1 BEGIN SELECT RAISE(ABORT, 'boom'); END`).execute(db)
      } else {
        await sql.raw(`CREATE FUNCTION boom() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN IF (SELECT n FROM boom_ctl) = 1 THEN RAISE EXCEPTION 'boom'; END IF; RETURN NEW; END $$`).execute(db)
        await sql.raw(`CREATE TRIGGER boom BEFORE INSERT ON lq_meta_out FOR EACH ROW EXECUTE FUNCTION boom()`).execute(db)
      }
      const first = store.get(out, 1)
      await g.held
      const refreshing = store.refresh() // waits for the get's task on row 1
      await new Promise((r) => setTimeout(r, 200))
      g.release()
      const [a, b] = await Promise.allSettled([first, refreshing])
      expect(a).toMatchObject({ status: 'rejected', reason: { message: expect.stringMatching(/boom/) } })
      expect(b.status).toBe('fulfilled')
      const r = (b as PromiseFulfilledResult<Awaited<typeof refreshing>>).value
      expect(r.tables['out']!.computed).toBe(1)
      expect(calls).toBe(2)
      expect(await store.status(out, 1)).toMatchObject({ state: 'fresh' })
      expect(await rowsOf(db, 'out')).toEqual([{ up: 'A', lq_key: '1' }])
    })

    it('rows computed under another code version are recomputed after switching back', async () => {
      const db = tdb.db
      await createSrc(db)
      const openAt = async (version: string) => {
        const store = await openStore(db)
        await store.track(src)
        const out = store.derive({ name: 'out', from: src, output: { s: t.string }, version, fn: (s) => ({ s: `${s.text}@v${version}` }) })
        return { store, out }
      }
      const a = await openAt('1')
      await a.store.refresh()
      const b = await openAt('2')
      expect(await b.store.get(b.out, 1)).toMatchObject({ state: 'fresh', value: { s: 'a@v2' } })
      const c = await openAt('1')
      expect((await c.store.status(c.out, 1)).state).toBe('stale')
      const r = await c.store.refresh()
      expect(r.tables['out']!.computed).toBe(1)
      expect(await rowsOf(db, 'out')).toEqual([{ s: 'a@v1', lq_key: '1' }, { s: 'b@v1', lq_key: '2' }])
      expect(await c.store.stale()).toEqual([])
      expect((await c.store.refresh()).tables['out']!.computed).toBe(0)
    })

    it('a root write committing between a comprehension query and its revision read is not recorded as seen', async () => {
      // On PostgreSQL (server) another connection commits right after the comprehension query
      // returns; on SQLite (one connection per database here) the same sequence runs without the
      // interleaving.
      const h = hooked(tdb.db)
      const db = h.db
      const d = table('d', { id: t.Int, v: t.Int })
      const e = table('e', { id: t.Int, v: t.Int })
      await createTable(db, d)
      await createTable(db, e)
      await insertRows(db, d, [{ id: 1, v: 1 }, { id: 2, v: 2 }])
      await insertRows(db, e, [{ id: 1, v: 10 }, { id: 2, v: 20 }])
      const store = await openStore(db)
      await store.track(d)
      await store.track(e)
      const two = store.derive({ name: 'two', from: Q.for(d, (x) => Q.for(e, (y) => Q.where(Q.eq(x.id, y.id), Q.yield({ dv: x.v, ev: y.v })))), output: { n: t.Int }, fn: (r) => ({ n: r.dv + r.ev }) })
      await store.refresh()
      let other: pg.Client | undefined
      if (tdb.label === 'postgres (server)') {
        const schema = (await sql<{ s: string }>`SELECT current_schema() AS s`.execute(db)).rows[0]!.s
        other = new pg.Client({ connectionString: pgUrl, options: `-c search_path=${schema}` })
        await other.connect()
        await other.query('BEGIN')
        await other.query('UPDATE d SET v = 100 WHERE id = 1') // its revision is taken now, committed later
        const c = other
        h.on((row) => 'data.dv' in row, async () => {
          await c.query('COMMIT')
        })
      }
      try {
        await sql`UPDATE d SET v = 3 WHERE id = 2`.execute(db)
        await store.refresh()
        if (other === undefined) await sql`UPDATE d SET v = 100 WHERE id = 1`.execute(db)
        else expect(h.pending()).toBe(0) // the hook ran
        const key = [{ table: 'd', key: 1 }, { table: 'e', key: 1 }]
        expect(await store.get(two, key)).toMatchObject({ state: 'fresh', value: { n: 110 } })
        await store.refresh()
        expect(await store.get(two, key)).toMatchObject({ state: 'fresh', value: { n: 110 } })
        expect(await store.get(two, [{ table: 'd', key: 2 }, { table: 'e', key: 2 }])).toMatchObject({ state: 'fresh', value: { n: 23 } })
        expect(await store.stale()).toEqual([])
      } finally {
        await other?.end()
      }
    })
  })
}
