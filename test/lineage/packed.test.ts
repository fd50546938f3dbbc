/**
 * Packed key columns (`LinLayout.packed`, hook `packedKeysFrom`): where the dialect finds it
 * cheaper (SQLite: from three columns on), the top-level key columns of a lineage query, and a
 * union's branch number, travel as one JSON array column `#l`, parsed when the lineage is read.
 * The SQL it compiles to per dialect (PostgreSQL keeps one column per key slot), the cases that
 * stay columns, and on both dialects: the oracle's lineage, and the lazy read equal to the eager
 * decoder's result for the same rows.
 */
import * as t from 'io-ts'
import { CompiledQuery, type Kysely } from 'kysely'
import { describe, expect, test } from 'vitest'
import { AST, lineage, plainLineage, Q, table, type AnyQuery } from '../../src/index.js'
import { plan } from '../../src/query/compile.js'
import { decodeRows } from '../../src/query/decode.js'
import { hooksFor } from '../../src/query/dialect.js'
import { AnnotatedValue } from '../../src/query/lineage-value.js'
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
const rows = {
  ...data,
  bookings: [{ agency: 'Sales', day: 1, seats: 3 }, { agency: 'Sales', day: 2, seats: 5 }, { agency: 'Research', day: 1, seats: 1 }],
  flags: [{ on: true, label: 'alan' }, { on: false, label: 'cora' }],
  weights: [{ w: 0.1, label: 'alan' }, { w: 0.30000000000000004, label: 'bert' }],
}
const all = [departments, employees, tasks, bookings, flags, weights]

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
  'two key columns (stay columns)': twoTables,
  'one key column (stays a column)': () => Q.for(employees, (e) => Q.yield(e.name)),
}

describe('compile: packed key columns', () => {
  test('three key columns travel as one JSON array column on SQLite, as one column per key slot on PostgreSQL', () => {
    const s = sqlByDialect(lineage(threeTables()))
    expect(s.sqlite).toBe('select "d0"."name" as "data.d", "e1"."name" as "data.e", "t2"."task" as "data.x", json_array("d0"."id", "e1"."id", "t2"."id") as "#l" from "departments" as "d0", "employees" as "e1", "tasks" as "t2" where (("d0"."name" = "e1"."dept") and ("t2"."employee" = "e1"."name"))')
    expect(s.postgres).toBe('select "d0"."name" as "data.d", "e1"."name" as "data.e", "t2"."task" as "data.x", "d0"."id" as "#l0", "e1"."id" as "#l1", "t2"."id" as "#l2" from "departments" as "d0", "employees" as "e1", "tasks" as "t2" where (("d0"."name" = "e1"."dept") and ("t2"."employee" = "e1"."name"))')
  })

  test('a union\'s branch number travels inside the packed array (no branch-number column) on SQLite', () => {
    const s = sqlByDialect(lineage(union()))
    expect(s.sqlite).toContain('json_array("d0"."id", "e1"."id", 0) as "#l" from')
    expect(s.sqlite).toContain('json_array("t2"."id", "e3"."id", 1) as "#l" from')
    expect(s.sqlite).not.toContain('"#b"')
    expect(s.postgres).toContain('"d0"."id" as "#l0", "e1"."id" as "#l1", 0 as "#b" from')
  })

  test('one or two key columns, a real key and a group\'s lineage stay columns', () => {
    expect(sqlByDialect(lineage(cases['one key column (stays a column)']!())).sqlite).toBe('select "e0"."name" as "data", "e0"."id" as "#l0" from "employees" as "e0"')
    expect(sqlByDialect(lineage(twoTables())).sqlite).toContain('"d0"."id" as "#l0", "e1"."id" as "#l1" from')
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
