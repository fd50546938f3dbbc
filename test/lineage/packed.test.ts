/**
 * Packed key columns (`LinLayout.packed`, hook `packKeys`): where the dialect finds it cheaper,
 * the top-level key columns of a lineage query, and a union's branch number, travel as one column
 * `#l`, parsed when the lineage is read: on SQLite a JSON array, from three columns on (two with
 * a branch number); on PostgreSQL, integer keys only, their texts joined by commas, from two
 * columns on. The SQL it compiles to per dialect, the cases that stay columns, and on both
 * dialects: the oracle's lineage, the lazy read equal to the eager decoder's result for the same
 * rows, and keys at the edges of the safe integer range.
 */
import * as t from 'io-ts'
import { CompiledQuery, type Kysely } from 'kysely'
import { describe, expect, test } from 'vitest'
import { AST, lineage, plainLineage, Q, run, table, type AnyQuery } from '../../src/index.js'
import { plan } from '../../src/query/compile.js'
import { decodeRows } from '../../src/query/decode.js'
import { hooksFor } from '../../src/query/dialect.js'
import * as S from '../../src/query/sql-nodes.js'
import { AnnotatedValue, intSlots } from '../../src/query/lineage-value.js'
import { LineageQueryError } from '../../src/errors.js'
import { evaluateLineage } from '../oracle/evaluate.js'
import { compareBags, show } from '../support/bags.js'
import { eachDialect } from '../support/db.js'
import { runIn } from '../support/run-in.js'
import { sqlByDialect } from '../support/sql.js'
import { createTable, insertRows } from '../../src/index.js'
import { data, departments, employees, tasks } from '../query/fixtures.js'

const bookings = table('bookings', { agency: t.string, day: t.Int, seats: t.Int }, { key: ['agency', 'day'] })
const flags = table('flags', { on: t.boolean, label: t.string }, { key: 'on' })
const weights = table('weights', { w: t.number, label: t.string }, { key: 'w' })
const labels = table('labels', { code: t.string, label: t.string }, { key: 'code' })
const bigs = table('bigs', { id: t.Int, label: t.string })
const rows = {
  ...data,
  bookings: [{ agency: 'Sales', day: 1, seats: 3 }, { agency: 'Sales', day: 2, seats: 5 }, { agency: 'Research', day: 1, seats: 1 }],
  flags: [{ on: true, label: 'alan' }, { on: false, label: 'cora' }],
  weights: [{ w: 0.1, label: 'alan' }, { w: 0.30000000000000004, label: 'bert' }],
  labels: [{ code: 'a,b', label: 'alan' }, { code: '1,,"2"]', label: 'cora' }, { code: '', label: 'bert' }],
  bigs: [{ id: Number.MAX_SAFE_INTEGER, label: 'alan' }, { id: -Number.MAX_SAFE_INTEGER, label: 'bert' }, { id: -7, label: 'cora' }, { id: 123456789012345, label: 'alan' }],
}
const all = [departments, employees, tasks, bookings, flags, weights, labels, bigs]

const twoTables = () => Q.for(departments, (d) => Q.for(employees, (e) => Q.where(Q.eq(d.name, e.dept), Q.yield({ d: d.name, e: e.name }))))
const threeTables = () =>
  Q.for(departments, (d) => Q.for(employees, (e) => Q.for(tasks, (x) => Q.where(Q.and(Q.eq(d.name, e.dept), Q.eq(x.employee, e.name)), Q.yield({ d: d.name, e: e.name, x: x.task })))))
/** Two keys per branch and the branch number: three columns. */
const union = () =>
  Q.union(twoTables(), Q.for(tasks, (x) => Q.for(employees, (e) => Q.where(Q.eq(x.employee, e.name), Q.yield({ d: x.task, e: e.name })))))

/** The queries of the tests below: every kind of packed lineage, and some that stay columns. */
const cases: Readonly<Record<string, () => AnyQuery>> = {
  'three tables': threeTables,
  'a self-join matching a row with itself (listed once)': () =>
    Q.for(employees, (a) => Q.for(employees, (b) => Q.for(employees, (c) => Q.where(Q.and(Q.eq(a.dept, b.dept), Q.eq(b.dept, c.dept)), Q.yield({ a: a.name, b: b.name, c: c.name }))))),
  'a union of two-table branches (the branch number inside the array)': union,
  'a union whose branches use different key slots (NULL slots)': () =>
    Q.union(threeTables(), Q.for(tasks, (x) => Q.yield({ d: x.task, e: x.employee, x: 't' })), Q.for(bookings, (b) => Q.for(tasks, (x) => Q.where(Q.eq(x.employee, b.agency), Q.yield({ d: b.agency, e: 'booked', x: x.task }))))),
  'a composite key and a string key': () => Q.for(bookings, (b) => Q.for(departments, (d) => Q.where(Q.eq(b.agency, d.name), Q.yield({ d: d.name, seats: b.seats })))),
  'a boolean key': () => Q.for(flags, (f) => Q.for(employees, (e) => Q.for(tasks, (x) => Q.where(Q.and(Q.eq(f.label, e.name), Q.eq(x.employee, e.name)), Q.yield({ f: f.on, e: e.name, x: x.task }))))),
  'a real key (stays columns)': () => Q.for(weights, (w) => Q.for(employees, (e) => Q.for(tasks, (x) => Q.where(Q.and(Q.eq(w.label, e.name), Q.eq(x.employee, e.name)), Q.yield({ w: w.w, e: e.name, x: x.task }))))),
  'nested collections under packed keys': () =>
    Q.for(departments, (d) => Q.for(employees, (e) => Q.for(employees, (f) => Q.where(Q.and(Q.eq(d.name, e.dept), Q.eq(e.dept, f.dept)), Q.yield({ e: e.name, f: f.name, ts: Q.for(tasks, (x) => Q.where(Q.eq(x.employee, e.name), Q.yield(x.task))) }))))),
  'an ordered and limited query': () => Q.limit(Q.orderBy(threeTables(), (r) => [Q.desc(r.x)]), 2),
  'two key columns (packed as text on PostgreSQL, columns on SQLite)': twoTables,
  'one key column (stays a column)': () => Q.for(employees, (e) => Q.yield(e.name)),
  'one key and a union\'s branch number': () => Q.union(Q.for(tasks, (x) => Q.yield(x.employee)), Q.for(employees, (e) => Q.yield(e.name))),
  'a union of one- and two-key branches (a NULL slot)': () => Q.union(twoTables(), Q.for(tasks, (x) => Q.yield({ d: x.task, e: x.employee }))),
  'string keys holding the separators and quotes (stay columns on PostgreSQL)': () =>
    Q.union(
      Q.for(labels, (l) => Q.for(employees, (e) => Q.where(Q.eq(l.label, e.name), Q.yield({ l: l.code, e: e.name })))),
      Q.for(labels, (l) => Q.for(tasks, (x) => Q.where(Q.eq(l.label, x.employee), Q.yield({ l: l.code, e: x.task })))),
    ),
  'integer keys at the ends of the safe range and negative ones': () =>
    Q.union(Q.for(bigs, (b) => Q.for(employees, (e) => Q.where(Q.eq(b.label, e.name), Q.yield(b.label)))), Q.for(bigs, (b) => Q.yield(b.label))),
}

describe('compile: packed key columns', () => {
  test('three key columns travel as one JSON array column on SQLite, as their texts joined by commas on PostgreSQL', () => {
    const s = sqlByDialect(lineage(threeTables()))
    expect(s.sqlite).toBe('select "d0"."name" as "data.d", "e1"."name" as "data.e", "t2"."task" as "data.x", json_array("d0"."id", "e1"."id", "t2"."id") as "#l" from "departments" as "d0", "employees" as "e1", "tasks" as "t2" where (("d0"."name" = "e1"."dept") and ("t2"."employee" = "e1"."name"))')
    expect(s.postgres).toBe(`select "d0"."name" as "data.d", "e1"."name" as "data.e", "t2"."task" as "data.x", concat("d0"."id", ',', "e1"."id", ',', "t2"."id") as "#l" from "departments" as "d0", "employees" as "e1", "tasks" as "t2" where (("d0"."name" = "e1"."dept") and ("t2"."employee" = "e1"."name"))`)
  })

  test('a union\'s branch number travels inside the packed column (no branch-number column)', () => {
    const s = sqlByDialect(lineage(union()))
    expect(s.sqlite).toContain('json_array("d0"."id", "e1"."id", 0) as "#l" from')
    expect(s.sqlite).toContain('json_array("t2"."id", "e3"."id", 1) as "#l" from')
    expect(s.sqlite).not.toContain('"#b"')
    expect(s.postgres).toContain(`concat("d0"."id", ',', "e1"."id", ',', 0) as "#l" from`)
    expect(s.postgres).toContain(`concat("t2"."id", ',', "e3"."id", ',', 1) as "#l" from`)
    expect(s.postgres).not.toContain('"#b"')
  })

  test('one key and a union\'s branch number travel as one column on both dialects', () => {
    const s = sqlByDialect(lineage(cases['one key and a union\'s branch number']!()))
    expect(s.sqlite).toBe('select "t0"."employee" as "data", json_array("t0"."id", 0) as "#l" from "tasks" as "t0" union all select "e1"."name" as "data", json_array("e1"."id", 1) as "#l" from "employees" as "e1"')
    expect(s.postgres).toBe(`select "t0"."employee" as "data", concat("t0"."id", ',', 0) as "#l" from "tasks" as "t0" union all select "e1"."name" as "data", concat("e1"."id", ',', 1) as "#l" from "employees" as "e1"`)
  })

  test('PostgreSQL packs integer keys only: string, composite-with-string and boolean keys stay columns', () => {
    const strings = sqlByDialect(lineage(cases['string keys holding the separators and quotes (stay columns on PostgreSQL)']!()))
    expect(strings.postgres).not.toContain('concat(')
    expect(strings.postgres).toContain('0 as "#b"')
    expect(strings.sqlite).toContain('json_array(')
    expect(sqlByDialect(lineage(cases['a composite key and a string key']!())).postgres).not.toContain('concat(')
    expect(sqlByDialect(lineage(cases['a boolean key']!())).postgres).not.toContain('concat(')
  })

  test('one or two key columns (one on PostgreSQL), a real key and a group\'s lineage stay columns', () => {
    expect(sqlByDialect(lineage(cases['one key column (stays a column)']!())).sqlite).toBe('select "e0"."name" as "data", "e0"."id" as "#l0" from "employees" as "e0"')
    expect(sqlByDialect(lineage(cases['one key column (stays a column)']!())).postgres).toBe('select "e0"."name" as "data", "e0"."id" as "#l0" from "employees" as "e0"')
    expect(sqlByDialect(lineage(twoTables())).sqlite).toContain('"d0"."id" as "#l0", "e1"."id" as "#l1" from')
    expect(sqlByDialect(lineage(twoTables())).postgres).toContain(`concat("d0"."id", ',', "e1"."id") as "#l" from`)
    expect(sqlByDialect(lineage(cases['a real key (stays columns)']!())).sqlite).toContain('"e1"."id" as "#l0", "t2"."id" as "#l1", "w0"."w" as "#l2"')
    expect(sqlByDialect(lineage(Q.distinct(threeTables()))).sqlite).not.toContain('as "#l" ')
  })
})

eachDialect('lineage: packed key columns', (get) => {
  for (const [name, q] of Object.entries(cases)) {
    test(`${name}: the oracle's lineage`, async () => {
      const [annotated] = await runIn(get(), all, rows, [lineage(q())])
      const actual = plainLineage(annotated!)
      const expected = evaluateLineage(q()[AST], rows) as unknown[]
      expect(compareBags(actual, expected), `actual: ${show(actual)}\nexpected: ${show(expected)}`).toEqual({ ok: true })
    })
  }

  test('reading packed lineage lazily gives exactly the eager result (same rows, every query above)', async () => {
    const tdb = get()
    class Rollback extends Error {}
    await tdb.db
      .transaction()
      .execute(async (trx: Kysely<any>) => {
        for (const tb of all) {
          await createTable(trx, tb)
          await insertRows(trx, tb, [...((rows as Record<string, readonly Record<string, unknown>[]>)[tb.name] ?? [])])
        }
        for (const [name, q] of Object.entries(cases)) {
          const p = plan(lineage(q()), tdb.dialect)
          const s = p.statements[0]!
          const got = (await trx.executeQuery<Record<string, unknown>>(CompiledQuery.raw(s.sql, [...s.parameters]))).rows
          const lazy = p.decode(got)
          const eager = decodeRows(p.layout, hooksFor(tdb.dialect), { lazy: false })(got)
          expect(lazy.every((x) => x instanceof AnnotatedValue), name).toBe(true)
          expect(plainLineage(lazy), name).toEqual(eager)
          expect(JSON.stringify(lazy), name).toBe(JSON.stringify(eager))
        }
        throw new Rollback()
      })
      .catch((e: unknown) => {
        if (!(e instanceof Rollback)) throw e
      })
  })
})

describe('intSlots: packed integer keys read without JSON.parse', () => {
  test('reads texts joined by commas (nothing for NULL) and JSON arrays of integers', () => {
    expect(intSlots('12,,-3,0', 4, false)).toEqual([12, null, -3, 0])
    expect(intSlots(',', 2, false)).toEqual([null, null])
    expect(intSlots('[12,null,-3,1]', 4, true)).toEqual([12, null, -3, 1])
    expect(Object.is(intSlots('-0,1', 2, false)![0], 0)).toBe(true)
  })

  test('a value of more than 15 digits stays its text, for the key\'s own exact reading', () => {
    expect(intSlots('9007199254740993,-9007199254740991,1', 3, false)).toEqual(['9007199254740993', '-9007199254740991', 1])
    expect(intSlots('999999999999999,1', 2, false)).toEqual([999999999999999, 1])
  })

  test('anything else is not read (the caller parses JSON or reports it)', () => {
    for (const [s, n, json] of [['1,2', 3, false], ['1,2,3', 2, false], ['1;2', 2, false], ['-,1', 2, false], ['1.5,2', 2, false], ['[1,2', 2, true], ['[1,nul]', 2, true], ['["1",2]', 2, true], ['[1, 2]', 2, true], ['1,2', 2, true]] as const) {
      expect(intSlots(s, n, json), s).toBeUndefined()
    }
  })
})

eachDialect('lineage: packed text of many key slots', (get) => {
  test('more key slots than a function call takes (PostgreSQL: 100 arguments) are joined in groups, every slot and NULL in place', async () => {
    const tdb = get()
    const h = hooksFor(tdb.dialect)
    const values = Array.from({ length: 130 }, (_, i) => (i % 7 === 3 ? null : i * 1000003 - 5))
    const parts = values.map((v) => (v === null ? h.typedNull('int') : S.literal(v)))
    const q = S.print(S.select({ from: [], selections: [{ expr: h.packedText(parts), alias: 'v' }], where: [] }), tdb.dialect)
    const row = (await tdb.db.executeQuery<{ v: string }>(q)).rows[0]!
    expect(intSlots(row.v, values.length, false)).toEqual(values)
  })
})

eachDialect('lineage: integer keys beyond 2^53', (get) => {
  test('a key beyond 2^53 in a key column, in a nested collection or in a group is a decode error when its lineage is read, not another row\'s key', async () => {
    const tdb = get()
    class Rollback extends Error {}
    await tdb.db
      .transaction()
      .execute(async (trx: Kysely<any>) => {
        await createTable(trx, bigs)
        await trx.executeQuery(CompiledQuery.raw(`insert into bigs (id, label) values (9007199254740993, 'huge'), (-7, 'small')`))
        const top = (await run(trx, lineage(Q.for(bigs, (b) => Q.yield(b.label))))) as unknown as AnnotatedValue[]
        expect(top.map((r) => r.data).sort()).toEqual(['huge', 'small'])
        expect(() => top.find((r) => r.data === 'huge')!.lineage).toThrow(LineageQueryError)
        expect(top.find((r) => r.data === 'small')!.lineage).toEqual([{ table: 'bigs', key: -7 }])
        const nested = (await run(trx, lineage(Q.yield({ xs: Q.for(bigs, (b) => Q.yield(b.label)) })))) as unknown as AnnotatedValue[]
        const xs = (nested[0]!.data as { xs: AnnotatedValue[] }).xs
        expect(() => xs.find((r) => r.data === 'huge')!.lineage).toThrow(LineageQueryError)
        expect(xs.find((r) => r.data === 'small')!.lineage).toEqual([{ table: 'bigs', key: -7 }])
        // A group's lineage names every row of the group: the big key there too.
        const groups = (await run(trx, lineage(Q.for(Q.groupBy(bigs, (b) => b.label), (g) => Q.yield({ label: g.key, n: Q.count(g.group) }))))) as unknown as AnnotatedValue[]
        expect(() => groups.find((r) => (r.data as { label: string }).label === 'huge')!.lineage).toThrow(LineageQueryError)
        expect(groups.find((r) => (r.data as { label: string }).label === 'small')!.lineage).toEqual([{ table: 'bigs', key: -7 }])
        throw new Rollback()
      })
      .catch((e: unknown) => {
        if (!(e instanceof Rollback)) throw e
      })
  })

  test('reading the lineage of a row whose packed key is beyond 2^53 is a decode error; its data, and the other rows, read exactly', async () => {
    const tdb = get()
    class Rollback extends Error {}
    const q = () => Q.union(Q.for(bigs, (b) => Q.yield(b.label)), Q.for(employees, (e) => Q.yield(e.name)))
    await tdb.db
      .transaction()
      .execute(async (trx: Kysely<any>) => {
        for (const tb of [bigs, employees]) {
          await createTable(trx, tb)
          await insertRows(trx, tb, [...((rows as Record<string, readonly Record<string, unknown>[]>)[tb.name] ?? [])])
        }
        await trx.executeQuery(CompiledQuery.raw(`insert into bigs (id, label) values (9007199254740993, 'huge')`))
        const p = plan(lineage(q()), tdb.dialect)
        expect(p.statements[0]!.sql).toContain('as "#l"')
        const s = p.statements[0]!
        const got = p.decode((await trx.executeQuery<Record<string, unknown>>(CompiledQuery.raw(s.sql, [...s.parameters]))).rows) as AnnotatedValue[]
        const huge = got.find((r) => r.data === 'huge')!
        expect(() => huge.lineage).toThrow(LineageQueryError)
        const keys = got.filter((r) => r !== huge).flatMap((r) => r.lineage.filter((e) => e.table === 'bigs').map((e) => e.key))
        expect(keys.sort((a, b) => (a as number) - (b as number))).toEqual([-Number.MAX_SAFE_INTEGER, -7, 123456789012345, Number.MAX_SAFE_INTEGER])
        throw new Rollback()
      })
      .catch((e: unknown) => {
        if (!(e instanceof Rollback)) throw e
      })
  })
})
