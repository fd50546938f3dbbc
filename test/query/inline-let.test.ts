/**
 * Rule `inline-scalar-let` (src/query/inline-let.ts): an uncorrelated `Q.let` scalar that a
 * top-level branch uses once is written where it is used, as an uncorrelated scalar subquery,
 * so a condition on a group and the value is HAVING (TPC-H Q11's shape). Everything else keeps
 * the one lateral FROM item.
 */
import { beforeAll, describe, expect, test } from 'vitest'
import { lineage, Q, run, type AnyQuery } from '../../src/index.js'
import { eachDialect } from '../support/db.js'
import { occurrences, sqlByDialect } from '../support/sql.js'
import { departments, employees, expectOracle, loadFixtures, tasks, tasksOf } from './fixtures.js'

/** TPC-H Q11's shape: the groups whose total is over a share of the grand total. */
const share = Q.let(Q.sum(employees, (e) => e.salary), (total) =>
  Q.for(Q.groupBy(employees, (e) => e.dept), (g) => Q.where(
    Q.gt(Q.sum(g.group, (e) => e.salary), Q.mul(total, 0.1)),
    Q.yield({ dept: g.key, total: Q.sum(g.group, (e) => e.salary) }))))
/** Used once in a plain branch's condition. */
const above = Q.let(Q.avg(employees, (e) => e.salary), (avg) => Q.for(employees, (e) => Q.where(Q.gt(e.salary, avg), Q.yield({ n: e.name }))))
/** Used once in a field. */
const field = Q.let(Q.count(tasks), (n) => Q.for(departments, (d) => Q.yield({ d: d.name, n })))
/** Never used: dropped. */
const unused = Q.let(Q.max(tasks, (t) => t.id), () => Q.for(departments, (d) => Q.yield(d.name)))
/** A let over a union: each branch uses it once. */
const union = Q.let(Q.count(tasks), (n) => Q.union(
  Q.for(employees, (e) => Q.where(Q.lt(e.id, n), Q.yield(e.name))),
  Q.for(departments, (d) => Q.where(Q.ge(d.id, n), Q.yield(d.name)))))

// must not fire
/** Used twice (condition and field): one lateral item. */
const twice = Q.let(Q.avg(employees, (e) => e.salary), (avg) => Q.for(employees, (e) => Q.where(Q.gt(e.salary, avg), Q.yield({ n: e.name, avg }))))
/** Correlated: one lateral item per row. */
const correlated = Q.for(employees, (e) => Q.let(Q.count(tasksOf(e)), (n) => Q.where(Q.ge(n, 1), Q.yield({ name: e.name }))))
/** Used inside a nested collection (a subquery per row). */
const nestedUse = Q.let(Q.count(tasks), (n) => Q.for(departments, (d) => Q.yield({ d: d.name, es: Q.for(employees, (e) => Q.where(Q.and(Q.eq(e.dept, d.name), Q.lt(e.id, n)), Q.yield(e.name))) })))
/** Used by another let's value. */
const chained = Q.let(Q.count(tasks), (n) => Q.for(employees, (e) => Q.let(Q.count(Q.for(tasks, (t) => Q.where(Q.and(Q.eq(t.employee, e.name), Q.lt(t.id, n)), Q.yield(t)))), (m) => Q.yield({ e: e.name, m }))))
/** Used once in the condition and once in the order. */
const ordered = Q.let(Q.avg(employees, (e) => e.salary), (avg) =>
  Q.for(employees, (e) => Q.where(Q.gt(e.salary, avg), Q.yield({ n: e.name, s: e.salary }))).orderBy((r) => Q.sub(r.s, avg)))

const fires = [share, above, field, unused, union] as AnyQuery[]
const stays = [twice, correlated, nestedUse, chained] as AnyQuery[]

describe('rule inline-scalar-let: SQL', () => {
  test('a condition on a group and an uncorrelated total used once is HAVING with a scalar subquery', () => {
    const s = sqlByDialect(share)
    expect(s.sqlite).toBe(
      'select "e1"."dept" as "dept", sum("e1"."salary") as "total" from "employees" as "e1" group by "e1"."dept" having (sum("e1"."salary") > ((select sum("e0"."salary") as "v" from "employees" as "e0") * ?))',
    )
    expect(s.postgres).toBe(
      'select "e1"."dept" as "dept", sum("e1"."salary") as "total" from "employees" as "e1" group by "e1"."dept" having (sum("e1"."salary") > ((select sum("e0"."salary") as "v" from "employees" as "e0") * cast(0.1 as double precision)))',
    )
  })

  test('a value used once is a scalar subquery where it is used; an unused one is dropped', () => {
    for (const d of ['sqlite', 'postgres'] as const) {
      expect(sqlByDialect(above)[d]).toMatch(/^select "e1"\."name" as "n" from "employees" as "e1" where \("e1"\."salary" > \(select avg\("e0"\."salary"\) as "v" from "employees" as "e0"\)\)$/)
      expect(sqlByDialect(field)[d]).toContain('(select count(*) as "v" from "tasks" as "t0") as "n"')
      expect(sqlByDialect(unused)[d]).not.toContain('max(')
      // each branch of the union uses it once: one subquery per branch, as the lateral items were
      expect(occurrences(sqlByDialect(union)[d], 'count(*)')).toBe(2)
      for (const q of fires) {
        expect(sqlByDialect(q)[d]).not.toContain('json_each')
        expect(sqlByDialect(q)[d]).not.toContain('lateral')
      }
    }
  })

  test('a value used twice, correlated, used inside a subquery or by another let stays one lateral item', () => {
    for (const q of [...stays, ordered]) {
      const s = sqlByDialect(q)
      expect(s.sqlite).toContain('json_each(json_array(')
      expect(s.postgres).toContain('lateral (select')
    }
    for (const d of ['sqlite', 'postgres'] as const) expect(occurrences(sqlByDialect(twice)[d], 'avg(')).toBe(1)
  })

  test('under lineage(q) the rule applies alike', () => {
    for (const d of ['sqlite', 'postgres'] as const) {
      expect(sqlByDialect(lineage(share))[d]).not.toMatch(/json_each\(json_array|lateral/)
      expect(occurrences(sqlByDialect(lineage(share))[d], 'sum(')).toBe(3)
    }
  })
})

eachDialect('rule inline-scalar-let', (get) => {
  beforeAll(() => loadFixtures(get().db))

  test('results are the oracle\'s, in one statement, plain and under lineage', async () => {
    for (const q of [...fires, ...stays, ordered]) {
      await expectOracle(get().db, q)
    }
    expect(await run(get().db, share)).toEqual([{ dept: 'Sales', total: 2000700 }])
  })
})
