/**
 * Rule "order by output column" (src/query/lower.ts, `orderByOutputColumn`): ordering by a
 * yielded field orders by its result column, so a correlated subquery in that field appears (and
 * runs) once. SQL text on both dialects, and the results against the oracle on both.
 */
import { beforeAll, describe, expect, test } from 'vitest'
import { AST, createTable, insertRows, lineage, Q, plainLineage, run as runLazy, type AnyQuery } from '../../src/index.js'
import { evaluate, evaluateLineage } from '../oracle/evaluate.js'
import { eachDialect } from '../support/db.js'
import { data, departments, employees, tasks, tasksOf } from './fixtures.js'
import { occurrences, sqlOf } from '../support/sql.js'

/** `run` with annotated elements copied to plain `{ data, lineage }` objects, so `toEqual` compares both fields (see docs/lineage.md, "Reading lineage"). */
const run: typeof runLazy = async (db, q) => plainLineage(await runLazy(db, q))


// Each branch filters its rows (`salary > 0`, `name <> ''`), so its aggregates stay correlated
// subqueries (rule `decorrelate-aggregate` leaves the aggregates of a filtered branch alone).
const byCount = Q.for(employees, (e) => Q.where(Q.gt(e.salary, 0), Q.yield({ n: e.name, c: Q.count(tasksOf(e)) }))).orderBy((r) => [Q.desc(r.c), r.n])
const byMax = Q.for(employees, (e) => Q.where(Q.gt(e.salary, 0), Q.yield({ n: e.name, m: Q.max(tasksOf(e)) }))).orderBy((r) => r.m)
const byExpr = Q.for(employees, (e) => Q.where(Q.gt(e.salary, 0), Q.yield({ n: e.name, s: Q.add(e.salary, Q.count(tasksOf(e))) }))).orderBy((r) => Q.desc(r.s)).limit(2)
const unionByCount = Q.union(
  Q.for(employees, (e) => Q.where(Q.gt(e.salary, 0), Q.yield({ n: e.name, c: Q.count(tasksOf(e)) }))),
  Q.for(departments, (d) => Q.where(Q.ne(d.name, ''), Q.yield({ n: d.name, c: Q.count(Q.for(employees, (e) => Q.where(Q.eq(e.dept, d.name), Q.yield(e)))) }))),
).orderBy((r) => [r.c, r.n])
/** A string-valued computed key over a union: the collation travels in each arm's column. */
const unionByMax = Q.union(
  Q.for(employees, (e) => Q.where(Q.gt(e.salary, 0), Q.yield({ m: Q.max(tasksOf(e)) }))),
  Q.for(departments, (d) => Q.yield({ m: Q.upper(d.name) })),
).orderBy((r) => Q.desc(r.m))
const notAField = Q.for(employees, (e) => Q.yield({ n: e.name })).orderBy((r) => Q.length(r.n))

describe('order by output column: SQL text', () => {
  test('a subquery yielded and ordered by appears once; the order names its column', () => {
    expect(sqlOf(byCount, 'sqlite')).toBe(
      'select "e0"."name" as "n", (select count(*) as "v" from "tasks" as "t1" where ("t1"."employee" = "e0"."name")) as "c" from "employees" as "e0" where ("e0"."salary" > ?) order by "c" desc nulls last, "e0"."name" asc nulls first',
    )
    expect(sqlOf(byCount, 'postgres')).toBe(
      'select "e0"."name" as "n", (select count(*) as "v" from "tasks" as "t1" where ("t1"."employee" = "e0"."name")) as "c" from "employees" as "e0" where ("e0"."salary" > cast(0 as bigint)) order by "c" desc nulls last, "e0"."name" collate "C" asc nulls first',
    )
  })

  test('a string-valued subquery key carries the code-point collation in its column on PostgreSQL', () => {
    const pg = sqlOf(byMax, 'postgres')
    expect(occurrences(pg, 'max(')).toBe(1)
    expect(pg).toContain('"t1"."employee" = "e0"."name")) collate "C") as "m"')
    expect(pg).toMatch(/order by "m" asc nulls first$/)
    expect(occurrences(sqlOf(byMax, 'sqlite'), 'max(')).toBe(1)
  })

  test('an operator over a subquery, under a limit, and a union: each subquery once', () => {
    for (const d of ['sqlite', 'postgres'] as const) {
      expect(occurrences(sqlOf(byExpr, d), 'count(*)')).toBe(1)
      expect(sqlOf(byExpr, d)).toContain('order by "s" desc nulls last limit')
      const u = sqlOf(unionByCount, d)
      expect(occurrences(u, 'count(*)')).toBe(2)
      expect(u).not.toContain('#o0')
      expect(u).toContain('order by "c" asc nulls first, "#o1"')
    }
  })

  test('a union ordered by a computed string field: each arm collates its column on PostgreSQL', () => {
    const pg = sqlOf(unionByMax, 'postgres')
    expect(occurrences(pg, 'collate "C") as "m"')).toBe(2)
    expect(pg).toMatch(/order by "m" desc nulls last$/)
  })

  test('a key that is not a yielded field is still computed in ORDER BY', () => {
    expect(sqlOf(notAField, 'sqlite')).toContain('order by length("e0"."name") asc')
  })
})

eachDialect('order by output column: results', (get) => {
  beforeAll(async () => {
    for (const tb of [departments, employees, tasks]) await createTable(get().db, tb)
    await insertRows(get().db, departments, data.departments)
    await insertRows(get().db, employees, data.employees)
    await insertRows(get().db, tasks, data.tasks)
  })

  test('results and their order are the oracle\'s', async () => {
    for (const q of [byCount, byMax, byExpr, unionByCount, unionByMax, notAField] as AnyQuery[]) {
      expect(await run(get().db, q)).toEqual(evaluate(q[AST], data))
    }
  })

  test('and under lineage(q)', async () => {
    for (const q of [byCount, byMax, unionByCount] as AnyQuery[]) {
      expect(occurrences(sqlOf(lineage(q), get().dialect), 'count(*)')).toBe(occurrences(sqlOf(q, get().dialect), 'count(*)'))
      expect(await run(get().db, lineage(q))).toEqual(evaluateLineage(q[AST], data))
    }
  })
})
