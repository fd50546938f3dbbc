/**
 * Fixed lineage tests: the worked examples of the seed notes (agencies / externalTours), the
 * four explicit choices (predicate-only tables, duplicates, untracked tables, composite keys),
 * and the statement-count guarantee (statements counted where the driver runs them).
 */
import * as t from 'io-ts'
import { beforeAll, describe, expect, test } from 'vitest'
import { createTable, type AnyQuery, groupBySource, insertRows, lineage, LineageQueryError, Q, plainLineage, run as runLazy, sourceRows, table } from '../../src/index.js'
import { statementsOf } from '../support/count.js'
import { eachDialect } from '../support/db.js'

/** `run` with annotated elements copied to plain `{ data, lineage }` objects, so `toEqual` compares both fields (see docs/lineage.md, "Reading lineage"). */
const run: typeof runLazy = async (db, q) => plainLineage(await runLazy(db, q))

const agencies = table('agencies', { id: t.Int, name: t.string, based_in: t.string, phone: t.string })
const externalTours = table('externalTours', { id: t.Int, name: t.string, destination: t.string, type: t.string, price: t.Int })
const notes = table('notes', { id: t.Int, agency: t.string, text: t.string }, { lineage: false })
const bookings = table('bookings', { agency: t.string, day: t.Int, seats: t.Int }, { key: ['agency', 'day'] })
const keyless = table('keyless', { name: t.string })
// Tables of derived rows: their lineage is stored in a column (as the derived-data engine does)
const summaries = table('summaries', { lq_key: t.string, text: t.string }, { key: 'lq_key', storedLineage: { column: 'lq_key', table: 'agencies' } })
const matches = table('matches', { lq_key: t.string, score: t.Int }, { key: 'lq_key', storedLineage: { column: 'lq_key' } })

const data = {
  agencies: [
    { id: 1, name: 'EdinTours', based_in: 'Edinburgh', phone: '412 1200' },
    { id: 2, name: 'Burns', based_in: 'Glasgow', phone: '607 3000' },
  ],
  externalTours: [
    { id: 1, name: 'EdinTours', destination: 'Edinburgh', type: 'bus', price: 20 },
    { id: 2, name: 'EdinTours', destination: 'Loch Ness', type: 'bus', price: 50 },
    { id: 3, name: 'EdinTours', destination: 'Loch Ness', type: 'boat', price: 200 },
    { id: 4, name: 'EdinTours', destination: 'Firth of Forth', type: 'boat', price: 50 },
    { id: 5, name: 'Burns', destination: 'Islay', type: 'boat', price: 100 },
    { id: 6, name: 'Burns', destination: 'Mallaig', type: 'train', price: 40 },
  ],
  notes: [{ id: 1, agency: 'Burns', text: 'family run' }],
  bookings: [{ agency: 'Burns', day: 1, seats: 3 }, { agency: 'Burns', day: 2, seats: 5 }],
  keyless: [{ name: 'Burns' }],
  summaries: [{ lq_key: '1', text: 'Edinburgh tours' }, { lq_key: '2', text: 'Glasgow tours' }],
  matches: [{ lq_key: '[["agencies",2],["externalTours",5]]', score: 9 }],
}

const q1 = Q.for(agencies, (a) => Q.yield(a.name))
const q2 = Q.for(agencies, (a) =>
  Q.for(externalTours, (et) => Q.where(Q.and(Q.eq(a.name, et.name), Q.eq(et.type, 'boat')), Q.yield({ name: et.name, phone: a.phone }))),
)
const byJson = <T>(xs: T[]) => [...xs].sort((a, b) => (JSON.stringify(a) < JSON.stringify(b) ? -1 : 1))

eachDialect('lineage', (get) => {
  beforeAll(async () => {
    const { db } = get()
    for (const tb of [agencies, externalTours, notes, bookings, keyless, summaries, matches]) await createTable(db, tb)
    await insertRows(db, summaries, data.summaries)
    await insertRows(db, matches, data.matches)
    await insertRows(db, agencies, data.agencies)
    await insertRows(db, externalTours, data.externalTours)
    await insertRows(db, notes, data.notes)
    await insertRows(db, bookings, data.bookings)
    await insertRows(db, keyless, data.keyless)
  })

  test('lineage(q) executes one statement, like q (counted at the driver)', async () => {
    const qs: AnyQuery[] = [q1, q2, Q.for(agencies, (a) => Q.yield({ a: a.name, ts: Q.for(externalTours, (e) => Q.where(Q.eq(e.name, a.name), Q.yield(e.destination))) }))]
    for (const q of qs) {
      for (const x of [q, lineage(q)]) expect((await statementsOf(get().db, (db) => run(db, x))).statements).toBe(1)
    }
  })

  test('seed example q1: each agency name carries its agencies row', async () => {
    expect(byJson(await run(get().db, lineage(q1)))).toEqual([
      { data: 'Burns', lineage: [{ table: 'agencies', key: 2 }] },
      { data: 'EdinTours', lineage: [{ table: 'agencies', key: 1 }] },
    ])
  })

  test('seed example q2: boat tours carry the agency row then the tour row (generator order)', async () => {
    expect(byJson(await run(get().db, lineage(q2)))).toEqual([
      { data: { name: 'Burns', phone: '607 3000' }, lineage: [{ table: 'agencies', key: 2 }, { table: 'externalTours', key: 5 }] },
      { data: { name: 'EdinTours', phone: '412 1200' }, lineage: [{ table: 'agencies', key: 1 }, { table: 'externalTours', key: 3 }] },
      { data: { name: 'EdinTours', phone: '412 1200' }, lineage: [{ table: 'agencies', key: 1 }, { table: 'externalTours', key: 4 }] },
    ])
  })

  test('composite keys are arrays of the key columns in declared order', async () => {
    const rows = await run(get().db, lineage(Q.for(bookings, (b) => Q.yield(b.seats))))
    expect(byJson(rows)).toEqual([
      { data: 3, lineage: [{ table: 'bookings', key: ['Burns', 1] }] },
      { data: 5, lineage: [{ table: 'bookings', key: ['Burns', 2] }] },
    ])
  })

  test('an untracked table adds nothing and mixes with tracked ones', async () => {
    const q = Q.for(agencies, (a) => Q.for(notes, (n) => Q.where(Q.eq(n.agency, a.name), Q.yield({ a: a.name, note: n.text }))))
    expect(await run(get().db, lineage(q))).toEqual([{ data: { a: 'Burns', note: 'family run' }, lineage: [{ table: 'agencies', key: 2 }] }])
  })

  test('a self-join matching the same row twice lists that row once', async () => {
    const q = Q.for(agencies, (a) => Q.for(agencies, (b) => Q.where(Q.eq(a.based_in, b.based_in), Q.yield({ a: a.id, b: b.id }))))
    expect(byJson(await run(get().db, lineage(q)))).toEqual([
      { data: { a: 1, b: 1 }, lineage: [{ table: 'agencies', key: 1 }] },
      { data: { a: 2, b: 2 }, lineage: [{ table: 'agencies', key: 2 }] },
    ])
  })

  test('tables used only in exists, or in an aggregate value, add nothing (even keyless ones)', async () => {
    const q = Q.for(agencies, (a) =>
      Q.where(
        Q.exists(Q.for(keyless, (k) => Q.where(Q.eq(k.name, a.name), Q.yield(k)))),
        Q.yield({ a: a.name, tours: Q.count(Q.for(externalTours, (e) => Q.where(Q.eq(e.name, a.name), Q.yield(e)))) }),
      ),
    )
    expect(await run(get().db, lineage(q))).toEqual([{ data: { a: 'Burns', tours: 2 }, lineage: [{ table: 'agencies', key: 2 }] }])
  })

  test('union branches keep their own lineage; equal data rows stay separate; constants carry []', async () => {
    const q = Q.union(
      Q.for(agencies, (a) => Q.where(Q.eq(a.id, 2), Q.yield(a.name))),
      Q.for(externalTours, (e) => Q.where(Q.eq(e.id, 5), Q.yield(e.name))),
      Q.values(['Burns']),
    )
    expect(byJson(await run(get().db, lineage(q)))).toEqual([
      { data: 'Burns', lineage: [] },
      { data: 'Burns', lineage: [{ table: 'agencies', key: 2 }] },
      { data: 'Burns', lineage: [{ table: 'externalTours', key: 5 }] },
    ])
  })

  test('nested collections annotate each inner element; a for over nested data takes it along', async () => {
    const nested = Q.for(agencies, (a) => Q.yield({ a: a.name, boats: Q.for(externalTours, (e) => Q.where(Q.and(Q.eq(e.name, a.name), Q.eq(e.type, 'boat')), Q.yield(e.destination))) }))
    const rows = byJson(await run(get().db, lineage(nested)))
    expect(rows[0]).toEqual({ data: { a: 'Burns', boats: [{ data: 'Islay', lineage: [{ table: 'externalTours', key: 5 }] }] }, lineage: [{ table: 'agencies', key: 2 }] })
    const flat = Q.for(nested, (n) => Q.for(n.boats, (b) => Q.yield({ a: n.a, b })))
    expect(byJson(await run(get().db, lineage(flat)))).toContainEqual({ data: { a: 'Burns', b: 'Islay' }, lineage: [{ table: 'agencies', key: 2 }, { table: 'externalTours', key: 5 }] })
  })

  test('ordering and limits apply to the data', async () => {
    const q = Q.for(externalTours, (e) => Q.yield({ d: e.destination, p: e.price })).orderBy((r) => [Q.desc(r.p), r.d]).limit(2)
    expect(await run(get().db, lineage(q))).toEqual([
      { data: { d: 'Loch Ness', p: 200 }, lineage: [{ table: 'externalTours', key: 3 }] },
      { data: { d: 'Islay', p: 100 }, lineage: [{ table: 'externalTours', key: 5 }] },
    ])
  })

  test('helpers: distinct source rows and grouping by source row', async () => {
    const rows = await run(get().db, lineage(q2))
    expect(byJson(sourceRows(rows))).toEqual(byJson([
      { table: 'agencies', key: 1 }, { table: 'agencies', key: 2 },
      { table: 'externalTours', key: 3 }, { table: 'externalTours', key: 4 }, { table: 'externalTours', key: 5 },
    ]))
    const groups = groupBySource(rows)
    expect(groups.find((g) => g.source.table === 'agencies' && g.source.key === 1)?.rows).toHaveLength(2)
  })

  test('sourceRows includes the entries of nested elements; { nested: false } only the top-level ones', async () => {
    const q = Q.for(agencies, (a) => Q.where(Q.eq(a.id, 2), Q.yield({ a: a.name, boats: Q.for(externalTours, (e) => Q.where(Q.and(Q.eq(e.name, a.name), Q.eq(e.type, 'boat')), Q.yield(e.destination))) })))
    const rows = await run(get().db, lineage(q))
    expect(sourceRows(rows)).toEqual([{ table: 'agencies', key: 2 }, { table: 'externalTours', key: 5 }])
    expect(sourceRows(rows, { nested: true })).toEqual([{ table: 'agencies', key: 2 }, { table: 'externalTours', key: 5 }])
    expect(sourceRows(rows, { nested: false })).toEqual([{ table: 'agencies', key: 2 }])
    // two levels of nesting
    const deep = Q.for(agencies, (a) => Q.where(Q.eq(a.id, 2), Q.yield({ a: a.name, x: Q.for(externalTours, (e) => Q.where(Q.eq(e.id, 6), Q.yield({ e: e.id, b: Q.for(bookings, (b) => Q.where(Q.eq(b.day, 2), Q.yield(b.seats))) }))) })))
    expect(sourceRows(await run(get().db, lineage(deep)))).toEqual([{ table: 'agencies', key: 2 }, { table: 'externalTours', key: 6 }, { table: 'bookings', key: ['Burns', 2] }])
  })

  test('equal keys in two different tables are two source rows and two groups', async () => {
    // agencies 1 and externalTours 1 share the key 1
    const q = Q.for(agencies, (a) => Q.for(externalTours, (e) => Q.where(Q.and(Q.eq(a.id, 1), Q.eq(e.id, 1)), Q.yield({ a: a.name, e: e.destination }))))
    const rows = await run(get().db, lineage(q))
    expect(rows).toEqual([{ data: { a: 'EdinTours', e: 'Edinburgh' }, lineage: [{ table: 'agencies', key: 1 }, { table: 'externalTours', key: 1 }] }])
    expect(sourceRows(rows)).toEqual([{ table: 'agencies', key: 1 }, { table: 'externalTours', key: 1 }])
    const groups = groupBySource(rows)
    expect(groups.map((g) => [g.source, g.rows.length])).toEqual([[{ table: 'agencies', key: 1 }, 1], [{ table: 'externalTours', key: 1 }, 1]])
    // and a key equal as JSON text but of another type ('1' vs 1) is another row too
    expect(sourceRows([{ data: 0, lineage: [{ table: 'x', key: 1 }, { table: 'x', key: '1' }, { table: 'y', key: 1 }] }])).toHaveLength(3)
  })

  test('a table with stored lineage reports the rows it was derived from, so provenance composes', async () => {
    const q = Q.for(summaries, (s) => Q.for(externalTours, (e) => Q.where(Q.and(Q.eq(e.id, 1), Q.eq(s.lq_key, '1')), Q.yield({ s: s.text, e: e.destination }))))
    expect(await run(get().db, lineage(q))).toEqual([
      { data: { s: 'Edinburgh tours', e: 'Edinburgh' }, lineage: [{ table: 'agencies', key: 1 }, { table: 'externalTours', key: 1 }] },
    ])
    // a list of entries; duplicates with other generators' entries are removed
    const q2 = Q.for(agencies, (a) => Q.for(matches, (m) => Q.where(Q.eq(a.id, 2), Q.yield({ a: a.name, score: m.score }))))
    expect(await run(get().db, lineage(q2))).toEqual([
      { data: { a: 'Burns', score: 9 }, lineage: [{ table: 'agencies', key: 2 }, { table: 'externalTours', key: 5 }] },
    ])
  })

  test('{ composed: false } names derived rows by their own key inside nested collections too', async () => {
    const q = Q.for(agencies, (a) => Q.where(Q.eq(a.id, 1), Q.yield({ a: a.name, s: Q.for(summaries, (s) => Q.where(Q.eq(s.lq_key, '1'), Q.yield(s.text))) })))
    expect(await run(get().db, lineage(q, { composed: false }))).toEqual([
      { data: { a: 'EdinTours', s: [{ data: 'Edinburgh tours', lineage: [{ table: 'summaries', key: '1' }] }] }, lineage: [{ table: 'agencies', key: 1 }] },
    ])
    // composed (the default): the nested element names the row it was derived from
    expect(await run(get().db, lineage(q))).toEqual([
      { data: { a: 'EdinTours', s: [{ data: 'Edinburgh tours', lineage: [{ table: 'agencies', key: 1 }] }] }, lineage: [{ table: 'agencies', key: 1 }] },
    ])
  })

  test('lineage options: an unknown option or a non-boolean value is an argument error', () => {
    for (const bad of [{ compose: false }, { composed: 'no' }]) {
      const err = (() => { try { lineage(q1, bad as never) } catch (e) { return e } })()
      expect(err).toBeInstanceOf(LineageQueryError)
      expect((err as LineageQueryError).code).toBe('argument')
    }
  })

  describe('why-provenance: lineage(q, { why: true })', () => {
    const boatsOf = (a: { name: any }) => Q.for(externalTours, (e) => Q.where(Q.and(Q.eq(e.name, a.name), Q.eq(e.type, 'boat')), Q.yield(e)))
    const withBoats = Q.for(agencies, (a) => Q.where(Q.exists(boatsOf(a)), Q.yield(a.name)))
    const sortL = (rows: { data: unknown; lineage: { table: string; key: unknown }[] }[]) =>
      byJson(rows.map((r) => ({ data: r.data, lineage: [r.lineage[0], ...byJson(r.lineage.slice(1))] })))

    test('exists: the rows that satisfied it are added after the generator\'s', async () => {
      expect(byJson(await run(get().db, lineage(withBoats)))).toEqual([
        { data: 'Burns', lineage: [{ table: 'agencies', key: 2 }] },
        { data: 'EdinTours', lineage: [{ table: 'agencies', key: 1 }] },
      ])
      expect(sortL(await run(get().db, lineage(withBoats, { why: true })))).toEqual([
        { data: 'Burns', lineage: [{ table: 'agencies', key: 2 }, { table: 'externalTours', key: 5 }] },
        { data: 'EdinTours', lineage: [{ table: 'agencies', key: 1 }, { table: 'externalTours', key: 3 }, { table: 'externalTours', key: 4 }] },
      ])
    })

    test('an aggregate in a condition: the rows it aggregated; Q.empty that holds: none', async () => {
      const pricey = Q.for(agencies, (a) => Q.where(Q.gt(Q.sum(Q.for(externalTours, (e) => Q.where(Q.eq(e.name, a.name), Q.yield(e))), (e) => e.price), 300), Q.yield(a.name)))
      expect(sortL(await run(get().db, lineage(pricey, { why: true })))).toEqual([
        { data: 'EdinTours', lineage: [{ table: 'agencies', key: 1 }, ...[1, 2, 3, 4].map((key) => ({ table: 'externalTours', key }))] },
      ])
      const noTrain = Q.for(agencies, (a) => Q.where(Q.empty(Q.for(externalTours, (e) => Q.where(Q.and(Q.eq(e.name, a.name), Q.eq(e.type, 'train')), Q.yield(e)))), Q.yield(a.name)))
      expect(await run(get().db, lineage(noTrain, { why: true }))).toEqual([{ data: 'EdinTours', lineage: [{ table: 'agencies', key: 1 }] }])
    })

    test('an aggregate used as a value still adds nothing; nested elements get their own witnesses', async () => {
      const q = Q.for(agencies, (a) => Q.where(Q.eq(a.id, 2), Q.yield({
        n: Q.count(Q.for(externalTours, (e) => Q.where(Q.eq(e.name, a.name), Q.yield(e)))),
        booked: Q.for(bookings, (b) => Q.where(Q.exists(Q.for(externalTours, (e) => Q.where(Q.and(Q.eq(e.name, b.agency), Q.eq(e.price, 40)), Q.yield(e)))), Q.yield(b.day))),
      })))
      const rows = await run(get().db, lineage(q, { why: true }))
      expect(rows.map((r) => ({ ...r, data: { ...r.data, booked: byJson(r.data.booked) } }))).toEqual([{
        data: { n: 2, booked: [1, 2].map((day) => ({ data: day, lineage: [{ table: 'bookings', key: ['Burns', day] }, { table: 'externalTours', key: 6 }] })) },
        lineage: [{ table: 'agencies', key: 2 }],
      }])
      expect(rows).toEqual(JSON.parse(JSON.stringify(rows)))
    })

    test('the same statement count, and the oracle agrees', async () => {
      for (const q of [withBoats, q2] as AnyQuery[]) {
        expect((await statementsOf(get().db, (db) => run(db, lineage(q, { why: true })))).statements).toBe(1)
      }
    })

    test('a table read in a condition needs a key with why (it is named), not without', () => {
      const q = Q.for(agencies, (a) => Q.where(Q.exists(Q.for(keyless, (k) => Q.where(Q.eq(k.name, a.name), Q.yield(k)))), Q.yield(a.name)))
      expect(() => lineage(q)).not.toThrow()
      const err = (() => { try { lineage(q, { why: true }) } catch (e) { return e } })()
      expect((err as LineageQueryError).code).toBe('lineage')
    })
  })

  test('a tracked table without a key is a lineage error that says how to fix it', async () => {
    const err = (() => { try { lineage(Q.for(keyless, (k) => Q.yield(k.name))) } catch (e) { return e } })()
    expect(err).toBeInstanceOf(LineageQueryError)
    expect((err as LineageQueryError).code).toBe('lineage')
    expect((err as LineageQueryError).message).toContain('declare one with table(name, columns, { key')
  })
})
