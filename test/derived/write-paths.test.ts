/**
 * The engine's fast paths, each against a plain reference, on SQLite and PostgreSQL:
 * - results travel to the database as JSON batches (one parameter per statement): every value
 *   must come back as insertRows stores it (strings of every kind, reals exactly, the integer
 *   limits, booleans, NULLs);
 * - a batch mixing changed, backdated, failed and superseded results: the report and the data;
 * - key lookups compiled once per table with placeholder keys: single, composite, string and
 *   boolean keys, parts of every size;
 * - a first fill that reads whole input tables (root and derived inputs, tombstones, failures),
 *   and a first fill that resumes after part of it was computed.
 */
import * as t from 'io-ts'
import { sql, type Kysely } from 'kysely'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { createTable, insertRows } from '../../src/query/ddl.js'
import { Q, table } from '../../src/query/dsl.js'
import { run } from '../../src/query/run.js'
import { openStore } from '../../src/derived/index.js'
import { DateString, decimal, Json, Timestamp } from '../../src/query/codecs.js'
import { dialectNames, open, type TestDb } from '../support/db.js'

function gate(): { wait: () => Promise<void>; open: () => void } {
  let open!: () => void
  const p = new Promise<void>((r) => (open = r))
  return { wait: () => p, open }
}

const tick = () => new Promise((r) => setTimeout(r, 5))

const rowsOf = async (db: Kysely<any>, name: string) =>
  (await sql<Record<string, unknown>>`SELECT * FROM ${sql.id(name)} ORDER BY lq_key`.execute(db)).rows

for (const dialect of dialectNames) {
  describe(`derived-data write paths [${dialect}]`, () => {
    let tdb: TestDb
    beforeEach(async () => {
      tdb = await open(dialect)
    })
    afterEach(async () => {
      await tdb.close()
    })

    it('decimal, date, timestamp and JSON output columns are stored as insertRows stores them, and read back equal, by every write path', async () => {
      const { db } = tdb
      const n = 7
      const src = table('src', { id: t.Int })
      await createTable(db, src)
      await insertRows(db, src, Array.from({ length: n }, (_, i) => ({ id: i })))
      const out = { d: decimal(15, 2), nd: t.union([decimal(12, 3), t.null]), day: DateString, at: Timestamp, doc: Json, whole: decimal(10, 0), r: t.number }
      const decimals = ['0.00', '12.50', '-3.07', '9999999999999.99', '-0.01', '1.10', '42.00']
      // (Decimal codecs type their values as `${number}` strings.)
      const value = (i: number): any => ({
        d: decimals[i % decimals.length]!,
        nd: i % 3 === 0 ? null : `${i}.${String(i * 7).padStart(3, '0').slice(-3)}`,
        day: `20${String(10 + i).padStart(2, '0')}-0${1 + (i % 9)}-1${i % 10}`,
        at: new Date(Date.UTC(2020, i % 12, 1 + i, i, 2 * i, 3, 4 * i)),
        doc: { k: i, list: [i, 'x', null, { b: i % 2 === 0 }], s: 'é"\\' },
        whole: String(-i * 1000),
        r: i / 4,
      })
      const ref = table('ref', { ...out, lq_key: t.string }, { key: 'lq_key' })
      await createTable(db, ref)
      await insertRows(db, ref, Array.from({ length: n }, (_, i) => ({ ...value(i), lq_key: String(i) })))
      const { r: _r, ...exact } = out
      const store = await openStore(db)
      await store.track(src)
      // Over one table (PostgreSQL: the one-statement batch write), without reals (SQLite: JSON
      // data rows too), and over a comprehension (metadata, data and edges by separate statements).
      const one = store.derive({ name: 'one', from: src, output: out, fn: (r) => value(r.id) })
      const noReal = store.derive({ name: 'noreal', from: src, output: exact, fn: (r) => {
        const { r: _a, ...rest } = value(r.id)
        return rest
      } })
      const viaQuery = store.derive({ name: 'viaq', from: Q.for(src, (r) => Q.yield({ id: r.id })), output: exact, fn: (r) => {
        const { r: _a, ...rest } = value(r.id)
        return rest
      } })
      expect((await store.refresh({ batchSize: 3 })).totals).toMatchObject({ computed: 3 * n, failed: 0 })
      const want = await rowsOf(db, 'ref')
      expect(await rowsOf(db, 'one')).toEqual(want)
      const noR = want.map(({ r: _a, ...rest }) => rest)
      expect(await rowsOf(db, 'noreal')).toEqual(noR)
      const byId = (rows: Record<string, unknown>[]) => rows.map(({ lq_key: _k, ...rest }) => rest).sort((a, b) => JSON.stringify(a) < JSON.stringify(b) ? -1 : 1)
      expect(byId(await rowsOf(db, 'viaq'))).toEqual(byId(noR))
      // Decoded through the codecs: the values the function returned.
      for (const tbl of [one, noReal, viaQuery]) {
        const got = await run(db, Q.for(tbl, (v) => Q.yield({ d: v.d, nd: v.nd, day: v.day, at: v.at, doc: v.doc, whole: v.whole })))
        const expected = Array.from({ length: n }, (_, i) => {
          const { r: _a, ...rest } = value(i)
          return rest
        })
        const byDay = (a: { day: string }, b: { day: string }) => (a.day < b.day ? -1 : 1)
        // (JSON values compare as values: a JSON column keeps no key order.)
        expect([...got].sort(byDay)).toEqual(expected.sort(byDay))
      }
      const g = await store.get(one, 1)
      expect(g).toMatchObject({ state: 'fresh', value: { d: '12.50', day: value(1).day, whole: '-1000' } })
      expect(await store.stale()).toEqual([])
    })

    it('every value comes back as insertRows stores it (strings, reals, integer limits, booleans, NULLs)', async () => {
      const { db } = tdb
      const strings = ['plain', '', 'quote " backslash \\ slash /', 'tab\tnewline\n\r', 'émoji 😀 \u2028\u2029', 'lone \ud800 surrogate', 'lone \udfff low', '\\ud800 as text', '\u007f\u0001']
      const reals = [0.1, 1 / 3, 5.961602748151136e-143, 2.151882746232253e245, -1.969119788174961e-163, 6.444594517494217e-208, 1.7976931348623157e308, 5e-324, 123456789.125, -2.5, 3]
      const ints = [0, 1, -1, Number.MAX_SAFE_INTEGER, Number.MIN_SAFE_INTEGER, 2 ** 31, -(2 ** 31) - 1]
      const n = Math.max(strings.length, reals.length, ints.length)
      const src = table('src', { id: t.Int })
      await createTable(db, src)
      await insertRows(db, src, Array.from({ length: n }, (_, i) => ({ id: i })))
      const out = { s: t.string, r: t.number, i: t.Int, b: t.boolean, ns: t.union([t.string, t.null]), nr: t.union([t.number, t.null]) }
      const value = (i: number) => ({
        s: strings[i % strings.length]!,
        r: reals[i % reals.length]!,
        i: ints[i % ints.length]!,
        b: i % 2 === 0,
        ns: i % 3 === 0 ? null : `n${i}`,
        nr: i % 3 === 1 ? null : reals[(i + 1) % reals.length]!,
      })
      // The reference: the same rows through insertRows (bound parameters).
      const ref = table('ref', { ...out, lq_key: t.string }, { key: 'lq_key' })
      await createTable(db, ref)
      await insertRows(db, ref, Array.from({ length: n }, (_, i) => ({ ...value(i), lq_key: String(i) })))
      const store = await openStore(db)
      await store.track(src)
      const vals = store.derive({ name: 'vals', from: src, output: out, fn: (r) => value(r.id) })
      // A table without reals: on SQLite it takes the JSON path for its data rows too.
      const { r: _r, nr: _nr, ...noReals } = out
      const strs = store.derive({ name: 'strs', from: src, output: noReals, fn: (r) => {
        const { r: _a, nr: _b, ...rest } = value(r.id)
        return rest
      } })
      // batchSize 2: a first fill reading the whole input; then the same through key lookups.
      expect((await store.refresh({ batchSize: 2 })).totals.computed).toBe(2 * n)
      const want = await rowsOf(db, 'ref')
      expect(await rowsOf(db, 'vals')).toEqual(want)
      expect(await rowsOf(db, 'strs')).toEqual(want.map(({ r: _a, nr: _b, ...rest }) => rest))
      // Decoded through the codecs, the reals are exact.
      const got = await run(db, Q.orderBy(Q.for(vals, (v) => Q.yield({ k: v.lq_key, r: v.r })), (v) => v.k))
      expect(got.map((g) => g.r).sort((a, b) => a - b)).toEqual([...Array.from({ length: n }, (_, i) => value(i).r)].sort((a, b) => a - b))
      // Recomputed after a change, by key (not a first fill): the same values.
      await sql`UPDATE src SET id = id WHERE id >= 0`.execute(db)
      const r = await store.refresh()
      expect(r.tables['vals']).toMatchObject({ computed: 0, unchanged: n })
      expect(await rowsOf(db, 'vals')).toEqual(want)
      // What get() returns is what a query over the reference returns (a lone surrogate read back
      // as the driver decodes it: U+FFFD on PostgreSQL, the bytes' U+FFFDs on SQLite).
      const [refS] = await run(db, Q.for(ref, (x) => Q.where(Q.eq(x.lq_key, '5'), Q.yield(x.s))))
      expect(refS).not.toBe(value(5).s)
      expect(await store.get(strs, 5)).toMatchObject({ state: 'fresh', value: { s: refS } })
    })

    it('one batch with changed, backdated, failed and superseded results: report and data', async () => {
      const { db } = tdb
      const src = table('src', { id: t.Int, v: t.Int })
      await createTable(db, src)
      await insertRows(db, src, [{ id: 1, v: 1 }, { id: 2, v: 2 }, { id: 3, v: 3 }, { id: 4, v: 4 }, { id: 5, v: 5 }])
      const store = await openStore(db)
      await store.track(src)
      const held = gate()
      const started = gate()
      let hold = false
      const out = store.derive({
        name: 'out',
        from: src,
        output: { n: t.Int },
        fn: async (r) => {
          if (r.v === 13) throw new Error('thirteen')
          if (hold && r.id === 4 && r.v === 40) {
            started.open()
            await held.wait()
          }
          return { n: Math.abs(r.v) * 2 }
        },
      })
      expect((await store.refresh()).totals).toMatchObject({ computed: 5 })
      await sql`UPDATE src SET v = 10 WHERE id = 1`.execute(db) // changed value
      await sql`UPDATE src SET v = -2 WHERE id = 2`.execute(db) // same value: backdated
      await sql`UPDATE src SET v = 13 WHERE id = 3`.execute(db) // fails: its data row goes
      await sql`UPDATE src SET v = 40 WHERE id = 4`.execute(db) // superseded below
      hold = true
      const refreshing = store.refresh({ batchSize: 10 })
      await started.wait()
      await sql`UPDATE src SET v = 41 WHERE id = 4`.execute(db)
      expect(await store.get(out, 4)).toMatchObject({ state: 'fresh', value: { n: 82 } })
      held.open()
      const r = await refreshing
      expect(r.tables['out']).toEqual({ computed: 1, unchanged: 1, failed: 1, blocked: 0, deleted: 0, superseded: 1 })
      expect((await rowsOf(db, 'out')).map((x) => [x['lq_key'], Number(x['n'])])).toEqual([['1', 20], ['2', 4], ['4', 82], ['5', 10]])
      expect((await store.status(out, 3)).state).toBe('failed')
      expect((await store.status(out, 4)).state).toBe('fresh')
      // The failure fixed: the data row is back.
      await sql`UPDATE src SET v = 6 WHERE id = 3`.execute(db)
      expect((await store.refresh()).tables['out']).toMatchObject({ computed: 1 })
      expect((await rowsOf(db, 'out')).map((x) => [x['lq_key'], Number(x['n'])])).toEqual([['1', 20], ['2', 4], ['3', 12], ['4', 82], ['5', 10]])
      expect(await store.stale()).toEqual([])
    })

    it('key lookups: single, composite, string and boolean keys, parts of every size', async () => {
      const { db } = tdb
      const single = table('single', { id: t.Int, v: t.Int })
      const pair = table('pair', { a: t.Int, b: t.string, i: t.Int, v: t.Int }, { key: ['a', 'b'] })
      const named = table('named', { name: t.string, i: t.Int, v: t.Int }, { key: 'name' })
      const flag = table('flag', { on: t.boolean, v: t.Int }, { key: 'on' })
      for (const x of [single, pair, named, flag]) await createTable(db, x)
      const N = 700
      const name = (i: number) => `n"${i}\\é${i % 7 === 0 ? '😀' : ''}`
      await insertRows(db, single, Array.from({ length: N }, (_, i) => ({ id: i, v: i })))
      await insertRows(db, pair, Array.from({ length: N }, (_, i) => ({ a: i % 10, b: `b${i}`, i, v: i })))
      await insertRows(db, named, Array.from({ length: N }, (_, i) => ({ name: name(i), i, v: i })))
      await insertRows(db, flag, [{ on: true, v: 1 }, { on: false, v: 2 }])
      const store = await openStore(db)
      const plus = (r: { v: number }) => ({ n: r.v + 1 })
      const outs = [single, pair, named, flag]
      for (const x of outs) await store.track(x)
      for (const x of outs) store.derive({ name: `${x.name}_plus`, from: x, output: { n: t.Int }, fn: plus })
      await store.refresh()
      const check = async () => {
        for (const x of outs) {
          const src = (await sql<{ v: unknown }>`SELECT v FROM ${sql.id(x.name)} ORDER BY v`.execute(db)).rows.map((r) => Number(r.v) + 1)
          const got = (await sql<{ n: unknown }>`SELECT n FROM ${sql.id(`${x.name}_plus`)} ORDER BY n`.execute(db)).rows.map((r) => Number(r.n))
          expect(got).toEqual(src)
        }
        expect(await store.stale()).toEqual([])
      }
      await check()
      // Parts of 1, 9 (padded to a full list), 501 (two parts) changed rows: recomputed by key.
      for (const k of [1, 9, 501]) {
        await sql`UPDATE single SET v = v + 1000 WHERE id < ${k}`.execute(db)
        await sql`UPDATE pair SET v = v + 1000 WHERE i < ${k}`.execute(db)
        await sql`UPDATE named SET v = v + 1000 WHERE i < ${k}`.execute(db)
        await sql`UPDATE flag SET v = v + 1000`.execute(db)
        const r = await store.refresh()
        expect(r.tables['single_plus']).toMatchObject({ computed: k })
        expect(r.tables['pair_plus']).toMatchObject({ computed: k })
        expect(r.tables['named_plus']).toMatchObject({ computed: k })
        expect(r.tables['flag_plus']).toMatchObject({ computed: 2 })
        await check()
      }
      expect(await store.get('pair_plus', [3, 'b13'])).toMatchObject({ state: 'fresh', value: { n: 1014 } })
      expect(await store.get('named_plus', name(14))).toMatchObject({ state: 'fresh', value: { n: 1015 } })
      expect(await store.get('flag_plus', false)).toMatchObject({ state: 'fresh', value: { n: 3003 } })
    })

    it('a first fill reading whole input tables gives what key lookups give: tombstones, chains, failures', async () => {
      const { db } = tdb
      const src = table('src', { id: t.Int, v: t.Int })
      await createTable(db, src)
      await insertRows(db, src, Array.from({ length: 60 }, (_, i) => ({ id: i, v: i })))
      const declare = (store: Awaited<ReturnType<typeof openStore>>, suffix: string) => {
        const a = store.derive({ name: `a${suffix}`, from: src, output: { n: t.Int }, fn: (r) => {
          if (r.v % 7 === 3) throw new Error(`bad ${r.v}`)
          return { n: r.v * 2 }
        } })
        const b = store.derive({ name: `b${suffix}`, from: a, output: { m: t.Int }, fn: (r) => ({ m: r.n + 1 }) })
        return { a, b }
      }
      const store = await openStore(db)
      await store.track(src)
      await sql`DELETE FROM src WHERE id >= 50`.execute(db) // tombstones in the revision table
      await sql`UPDATE src SET v = v + 100 WHERE id < 5`.execute(db)
      const bulk = declare(store, '1')
      const r = await store.refresh({ batchSize: 4 }) // 50 rows: more than two batches, read whole
      expect(r.tables['a1']).toMatchObject({ computed: 43, failed: 7 })
      expect(r.tables['b1']).toMatchObject({ computed: 43, blocked: 7 })
      // The same rows demanded one by one (key lookups) in another pair of tables.
      const byKey = declare(store, '2')
      for (let id = 0; id < 60; id++) await store.get(byKey.b, id)
      for (const [x, y] of [['a1', 'a2'], ['b1', 'b2']] as const) {
        const strip = (rows: Record<string, unknown>[]) => rows.map((row) => JSON.stringify(Object.values(row).map(String)))
        expect(strip(await rowsOf(db, x))).toEqual(strip(await rowsOf(db, y)))
        const states = async (name: string) => (await sql<{ lq_key: string; lq_state: string; lq_lineage: string; lq_inputs: string }>`SELECT lq_key, lq_state, lq_lineage, lq_inputs FROM ${sql.id(`lq_meta_${name}`)} ORDER BY lq_key`.execute(db)).rows.map((m) => [m.lq_key, m.lq_state, m.lq_lineage, m.lq_inputs.replace(/,\d+\]\]$/, ']]').replace(/"a[12]"/, '"a"')])
        expect(await states(x)).toEqual(await states(y))
      }
      expect(await store.get(bulk.b, 10)).toEqual({ state: 'blocked', causes: [{ kind: 'upstream-failed', table: 'a1', key: 10 }] })
      expect(await store.get(bulk.b, 2)).toMatchObject({ state: 'fresh', value: { m: 205 }, lineage: [{ table: 'src', key: 2 }] })
      expect(await store.stale()).toEqual([])
    })

    it('a first fill that was partly done (rows demanded before the first refresh) computes each row once', async () => {
      const { db } = tdb
      const src = table('src', { id: t.Int, v: t.Int })
      await createTable(db, src)
      await insertRows(db, src, Array.from({ length: 30 }, (_, i) => ({ id: i, v: i })))
      const store = await openStore(db)
      await store.track(src)
      let calls = 0
      const out = store.derive({ name: 'out', from: src, output: { n: t.Int }, fn: (r) => (calls++, { n: r.v + 1 }) })
      for (const id of [0, 7, 29]) await store.get(out, id)
      expect(calls).toBe(3)
      const r = await store.refresh({ batchSize: 2 })
      expect(r.tables['out']).toMatchObject({ computed: 27, unchanged: 0 })
      expect(calls).toBe(30)
      expect((await rowsOf(db, 'out')).length).toBe(30)
      expect(await store.stale()).toEqual([])
    })

    it('a first fill whose batch meets a row stored meanwhile at one of its addresses stores the others and leaves that one to the monotonic guard', async () => {
      const { db } = tdb
      const src = table('src', { id: t.Int, v: t.Int })
      await createTable(db, src)
      await insertRows(db, src, [{ id: 1, v: 1 }, { id: 2, v: 2 }, { id: 3, v: 3 }])
      const store = await openStore(db)
      await store.track(src)
      const held = gate()
      const started = gate()
      const out = store.derive({
        name: 'out',
        from: src,
        output: { n: t.Int },
        fn: async (r) => {
          if (r.id === 2) {
            started.open()
            await held.wait()
          }
          return { n: r.v * 10 }
        },
      })
      await store.status(out, 1) // creates the tables
      const refreshing = store.refresh()
      await started.wait()
      // Another writer (no lease) stores row 2 from a newer input revision while the batch computes.
      const newer = 1_000_000
      await sql`INSERT INTO ${sql.id('lq_meta_out')} (lq_key, lq_lineage, lq_inputs, lq_max_input_rev, lq_code_version, lq_state, lq_error, lq_hash, lq_computed_rev, lq_changed_rev) VALUES ('2', '', '', ${newer}, ${store.codeVersion(out)}, 'ok', NULL, 'elsewhere', ${newer}, ${newer})`.execute(db)
      await sql`INSERT INTO ${sql.id('out')} (n, lq_key) VALUES (-2, '2')`.execute(db)
      held.open()
      const r = await refreshing
      expect(r.tables['out']).toEqual({ computed: 2, unchanged: 0, failed: 0, blocked: 0, deleted: 0, superseded: 1 })
      expect((await rowsOf(db, 'out')).map((x) => [x['lq_key'], Number(x['n'])])).toEqual([['1', 10], ['2', -2], ['3', 30]])
      const meta = (await sql<{ lq_key: string; lq_max_input_rev: unknown; lq_hash: string }>`SELECT lq_key, lq_max_input_rev, lq_hash FROM ${sql.id('lq_meta_out')} ORDER BY lq_key`.execute(db)).rows
      expect(meta.map((m) => [m.lq_key, Number(m.lq_max_input_rev) === newer, m.lq_hash === 'elsewhere'])).toEqual([['1', false, false], ['2', true, true], ['3', false, false]])
    })

    it('a first fill whose batch meets a data row with no metadata row at one of its addresses stores every row of the batch', async () => {
      const { db } = tdb
      const src = table('src', { id: t.Int, v: t.Int })
      await createTable(db, src)
      await insertRows(db, src, [{ id: 1, v: 1 }, { id: 2, v: 2 }, { id: 3, v: 3 }])
      const store = await openStore(db)
      await store.track(src)
      const out = store.derive({ name: 'out', from: src, output: { n: t.Int }, fn: (r) => ({ n: r.v * 10 }) })
      await store.status(out, 1) // creates the tables
      // A data row left without its metadata row: the batch's plain inserts (PostgreSQL) meet it
      // in the data table only, and the upsert stores the batch.
      await sql`INSERT INTO ${sql.id('out')} (n, lq_key) VALUES (-2, '2')`.execute(db)
      const r = await store.refresh()
      expect(r.tables['out']).toEqual({ computed: 3, unchanged: 0, failed: 0, blocked: 0, deleted: 0, superseded: 0 })
      expect((await rowsOf(db, 'out')).map((x) => [x['lq_key'], Number(x['n'])])).toEqual([['1', 10], ['2', 20], ['3', 30]])
      expect(await store.stale()).toEqual([])
    })

    it('concurrent refreshes of one first fill compute each row once and agree', async () => {
      const { db } = tdb
      const src = table('src', { id: t.Int, v: t.Int })
      await createTable(db, src)
      await insertRows(db, src, Array.from({ length: 40 }, (_, i) => ({ id: i, v: i })))
      const store = await openStore(db)
      await store.track(src)
      let calls = 0
      store.derive({ name: 'out', from: src, output: { n: t.Int }, fn: async (r) => {
        calls++
        await tick()
        return { n: r.v + 1 }
      } })
      const [a, b] = await Promise.all([store.refresh({ batchSize: 8 }), store.refresh({ batchSize: 8 })])
      expect(calls).toBe(40)
      expect(a.totals.computed + b.totals.computed).toBe(40)
      expect((await rowsOf(db, 'out')).map((x) => Number(x['n'])).sort((p, q) => p - q)).toEqual(Array.from({ length: 40 }, (_, i) => i + 1))
      expect(await store.stale()).toEqual([])
    })
  })
}
