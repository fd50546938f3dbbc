/**
 * A correlated `Q.let` query value used twice is computed once per outer row: its aggregates
 * share one scan, by rule `decorrelate-aggregate` (src/query/decorrelate.ts: aggregates over
 * the same rows and correlation equalities are columns of one left-joined grouped table) and,
 * for the rest, rule `one-scan-correlated-aggregates` (src/query/share-correlated.ts: one
 * lateral item, `lateral (...)` on PostgreSQL, `json_each(...)` on SQLite).
 */
import { beforeAll, describe, expect, test } from 'vitest'
import { lineage, Q, run, type AnyQuery, type ExprLike } from '../../src/index.js'
import { compareBags } from '../support/bags.js'
import { eachDialect } from '../support/db.js'
import { occurrences, sqlByDialect } from '../support/sql.js'
import { departments, employees, expectOracle, loadFixtures, tasks, tasksOf } from './fixtures.js'

/** Tasks with a smaller id than the employee's: correlated by an inequality. */
const before = (e: { id: ExprLike<number> }) => Q.for(tasks, (t) => Q.where(Q.lt(t.id, e.id), Q.yield(t.task)))

/** Correlated by an equality: two aggregates over the value. */
const byEq = Q.for(employees, (e) => Q.let(tasksOf(e), (ts) => Q.yield({ n: e.name, count: Q.count(ts), first: Q.min(ts) })))
/** The value in the condition and in a field. */
const byEqWhere = Q.for(employees, (e) => Q.let(tasksOf(e), (ts) => Q.where(Q.gt(Q.count(ts), 0), Q.yield({ n: e.name, last: Q.max(ts) }))))
/** Correlated by an inequality: two aggregates, one in the condition, one in a field and the order. */
const byLt = Q.for(employees, (e) => Q.let(before(e), (ts) => Q.where(Q.ge(Q.count(ts), 1), Q.yield({ n: e.name, first: Q.min(ts), k: Q.count(ts) })))).orderBy((r) => r.first)
/** By an inequality, with a real aggregate (avg): on SQLite left as two subqueries (a JSON text round trip would round it). */
const byLtAvg = Q.for(departments, (d) => Q.let(Q.for(employees, (e) => Q.where(Q.gt(e.id, d.id), Q.yield(e.salary))), (ss) => Q.yield({ d: d.name, n: Q.count(ss), avg: Q.avg(ss) })))

const all = [byEq, byEqWhere, byLt, byLtAvg] as AnyQuery[]

describe('a correlated Q.let query value used twice: SQL', () => {
  test('correlated by equalities: one left-joined grouped table computes both aggregates', () => {
    const s = sqlByDialect(byEq)
    expect(s.sqlite).toBe(
      'select "e0"."name" as "n", coalesce("#d0"."a0", ?) as "count", "#d0"."a1" as "first" from "employees" as "e0" left join (select "t2"."employee" as "k0", count(*) as "a0", min("t2"."task") as "a1" from "tasks" as "t2" group by 1) as "#d0" on ("#d0"."k0" = "e0"."name")',
    )
    expect(s.postgres).toBe(
      'select "e0"."name" as "n", coalesce("#d0"."a0", cast(0 as bigint)) as "count", "#d0"."a1" as "first" from "employees" as "e0" left join (select "t2"."employee" as "k0", count(*) as "a0", min(("t2"."task" collate "C")) as "a1" from "tasks" as "t2" group by 1) as "#d0" on ("#d0"."k0" = "e0"."name")',
    )
    for (const d of ['sqlite', 'postgres'] as const) expect(occurrences(sqlByDialect(byEqWhere)[d], '"tasks" as')).toBe(1)
  })

  test('correlated otherwise: one lateral item computes both aggregates per row', () => {
    const s = sqlByDialect(byLt)
    expect(s.postgres).toBe(
      'select "e0"."name" as "n", "#c0"."a0" as "first", "#c0"."a1" as "k" from "employees" as "e0", lateral (select min(("t3"."task" collate "C")) as "a0", count(*) as "a1" from "tasks" as "t3" where ("t3"."id" < "e0"."id")) as "#c0" where ("#c0"."a1" >= cast(1 as bigint)) order by "#c0"."a0" collate "C" asc nulls first',
    )
    expect(s.sqlite).toBe(
      'select "e0"."name" as "n", json_extract("#c0"."value", \'$.a0\') as "first", json_extract("#c0"."value", \'$.a1\') as "k" from "employees" as "e0", json_each((select json_group_array(json_object(\'a0\', "r"."a0", \'a1\', "r"."a1")) as "v" from (select min("t3"."task") as "a0", count(*) as "a1" from "tasks" as "t3" where ("t3"."id" < "e0"."id")) as "r")) as "#c0" where (json_extract("#c0"."value", \'$.a1\') >= ?) order by json_extract("#c0"."value", \'$.a0\') asc nulls first',
    )
  })

  test('a real aggregate is in the lateral item on PostgreSQL only (SQLite\'s JSON text would round it)', () => {
    const s = sqlByDialect(byLtAvg)
    expect(occurrences(s.postgres, '"employees" as')).toBe(1)
    expect(s.postgres).toContain('lateral (select count(*) as "a0", avg(')
    expect(occurrences(s.sqlite, '"employees" as')).toBe(2)
  })

  test('under lineage(q) the value is still scanned once', () => {
    for (const d of ['sqlite', 'postgres'] as const) {
      expect(occurrences(sqlByDialect(lineage(byEq))[d], '"tasks" as')).toBe(1)
      expect(occurrences(sqlByDialect(lineage(byLt))[d], '"tasks" as')).toBe(1)
    }
  })
})

eachDialect('a correlated Q.let query value used twice', (get) => {
  beforeAll(() => loadFixtures(get().db))

  test('results are the oracle\'s, in one statement, plain and under lineage', async () => {
    for (const q of all) {
      await expectOracle(get().db, q)
    }
    expect(compareBags(await run(get().db, byLt), [{ n: 'cora', first: 'abstract', k: 2 }, { n: 'bert', first: 'abstract', k: 1 }])).toEqual({ ok: true })
  })
})
