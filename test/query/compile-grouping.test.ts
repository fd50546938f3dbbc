/**
 * The SQL each grouping rewrite rule (src/query/normalise.ts) compiles to, per dialect: the
 * statement a person would write (GROUP BY, HAVING, FILTER or CASE inside aggregates,
 * COUNT(DISTINCT), SELECT DISTINCT, JSON aggregation in the same GROUP BY).
 */
import { describe, expect, test } from 'vitest'
import { AST, lineage, Q, type AnyQuery } from '../../src/index.js'
import { normalise } from '../../src/query/normalise.js'
import { employees, tasks } from './fixtures.js'
import { sqlByDialect } from '../support/sql.js'

const sql = sqlByDialect

const byDept = Q.groupBy(employees, (e) => e.dept)

describe('compile: grouping rules', () => {
  test("for-group: a branch over one grouped generator is the GROUP BY itself", () => {
    expect(sql(Q.for(byDept, (g) => Q.yield({ dept: g.key, n: Q.count(g.group) })))).toEqual({
      sqlite: "select \"e0\".\"dept\" as \"dept\", count(*) as \"n\" from \"employees\" as \"e0\" group by \"e0\".\"dept\"",
      postgres: "select \"e0\".\"dept\" as \"dept\", count(*) as \"n\" from \"employees\" as \"e0\" group by \"e0\".\"dept\"",
    })
  })

  test('same-aggregate: an aggregate written twice (in HAVING and in the yield) is computed once', () => {
    const q = Q.for(byDept, (g) => Q.where(Q.gt(Q.sum(g.group, (e) => e.salary), 10), Q.yield({ dept: g.key, total: Q.sum(g.group, (e) => e.salary), top: Q.max(g.group, (e) => e.salary) })))
    const aggsOf = (x: AnyQuery) => normalise(x[AST]).query.branches[0]!.gens[0]!.group!.aggs.map((a) => a.fn)
    expect(aggsOf(q)).toEqual(['sum', 'max'])
    // the inline GROUP BY names it where it is used (the database computes it once)
    expect(sql(q).sqlite).toBe('select "e0"."dept" as "dept", sum("e0"."salary") as "total", max("e0"."salary") as "top" from "employees" as "e0" group by "e0"."dept" having (sum("e0"."salary") > ?)')
    // different filters are different aggregates
    const f = Q.for(byDept, (g) => Q.yield({ a: Q.sum(g.group, (e) => e.salary), b: Q.sum(Q.for(g.group, (e) => Q.where(Q.gt(e.salary, 5), Q.yield(e.salary)))) }))
    expect(aggsOf(f)).toEqual(['sum', 'sum'])
  })

  test("agg-of-group: a condition on an aggregate of the group is HAVING", () => {
    expect(sql(Q.for(byDept, (g) => Q.where(Q.gt(Q.count(g.group), 1), Q.yield({ dept: g.key, top: Q.max(g.group, (e) => e.salary) }))))).toEqual({
      sqlite: "select \"e0\".\"dept\" as \"dept\", max(\"e0\".\"salary\") as \"top\" from \"employees\" as \"e0\" group by \"e0\".\"dept\" having (count(*) > ?)",
      postgres: "select \"e0\".\"dept\" as \"dept\", max(\"e0\".\"salary\") as \"top\" from \"employees\" as \"e0\" group by \"e0\".\"dept\" having (count(*) > cast(1 as bigint))",
    })
  })

  test("agg-of-group: filtered aggregates are FILTER (WHERE ...) on PostgreSQL, CASE inside the aggregate on SQLite", () => {
    expect(sql(Q.for(byDept, (g) => Q.yield({ dept: g.key, bosses: Q.count(Q.for(g.group, (e) => Q.where(e.boss, Q.yield(e)))), paid: Q.sum(Q.for(g.group, (e) => Q.where(Q.not(e.boss), Q.yield(e.salary)))) })))).toEqual({
      sqlite: "select \"e0\".\"dept\" as \"dept\", count(case when (\"e0\".\"boss\") then 1 end) as \"bosses\", sum(case when (not \"e0\".\"boss\") then \"e0\".\"salary\" end) as \"paid\" from \"employees\" as \"e0\" group by \"e0\".\"dept\"",
      postgres: "select \"e0\".\"dept\" as \"dept\", count(*) filter(where (\"e0\".\"boss\")) as \"bosses\", sum(\"e0\".\"salary\") filter(where (not \"e0\".\"boss\")) as \"paid\" from \"employees\" as \"e0\" group by \"e0\".\"dept\"",
    })
  })

  test("coll-of-group: a group yielded as a nested collection is a JSON aggregate in the same GROUP BY", () => {
    expect(sql(Q.for(byDept, (g) => Q.yield({ dept: g.key, names: Q.for(g.group, (e) => Q.yield(e.name)) })))).toEqual({
      sqlite: "select \"e0\".\"dept\" as \"dept\", json_group_array(\"e0\".\"name\") as \"names\" from \"employees\" as \"e0\" group by \"e0\".\"dept\"",
      postgres: "select \"e0\".\"dept\" as \"dept\", coalesce(json_agg(\"e0\".\"name\"), json_build_array()) as \"names\" from \"employees\" as \"e0\" group by \"e0\".\"dept\"",
    })
  })

  test("for-group: a grouped query joined with a table is a derived table in FROM (group by output position)", () => {
    expect(sql(Q.for(byDept, (g) => Q.for(tasks, (t) => Q.where(Q.eq(t.employee, g.key), Q.yield({ task: t.task, n: Q.count(g.group) })))))).toEqual({
      sqlite: "select \"t2\".\"task\" as \"task\", \"g1\".\"a0\" as \"n\" from (select \"e0\".\"dept\" as \"k0\", count(*) as \"a0\" from \"employees\" as \"e0\" group by 1) as \"g1\", \"tasks\" as \"t2\" where (\"t2\".\"employee\" = \"g1\".\"k0\")",
      postgres: "select \"t2\".\"task\" as \"task\", \"g1\".\"a0\" as \"n\" from (select \"e0\".\"dept\" as \"k0\", count(*) as \"a0\" from \"employees\" as \"e0\" group by 1) as \"g1\", \"tasks\" as \"t2\" where (\"t2\".\"employee\" = \"g1\".\"k0\")",
    })
  })

  test("for-group: a group joined inside an aggregate correlates by null-safe equality (IS / IS NOT DISTINCT FROM)", () => {
    expect(sql(Q.for(byDept, (g) => Q.yield({ dept: g.key, tasks: Q.count(Q.for(g.group, (e) => Q.for(tasks, (t) => Q.where(Q.eq(t.employee, e.name), Q.yield(t))))) })))).toEqual({
      sqlite: "select \"g1\".\"k0\" as \"dept\", (select count(*) as \"v\" from \"employees\" as \"e2\", \"tasks\" as \"t3\" where ((\"e2\".\"dept\" is \"g1\".\"k0\") and (\"t3\".\"employee\" = \"e2\".\"name\"))) as \"tasks\" from (select \"e0\".\"dept\" as \"k0\" from \"employees\" as \"e0\" group by 1) as \"g1\"",
      postgres: "select \"g1\".\"k0\" as \"dept\", (select count(*) as \"v\" from \"employees\" as \"e2\", \"tasks\" as \"t3\" where ((\"e2\".\"dept\" is not distinct from \"g1\".\"k0\") and (\"t3\".\"employee\" = \"e2\".\"name\"))) as \"tasks\" from (select \"e0\".\"dept\" as \"k0\" from \"employees\" as \"e0\" group by 1) as \"g1\"",
    })
  })

  test("count-distinct: count(distinct(query of scalars)) is COUNT(DISTINCT x)", () => {
    expect(sql(Q.yield(Q.count(Q.distinct(Q.for(employees, (e) => Q.yield(e.nick))))))).toEqual({
      sqlite: "select (select count(distinct \"e0\".\"nick\") as \"v\" from \"employees\" as \"e0\") as \"value\"",
      postgres: "select (select count(distinct \"e0\".\"nick\") as \"v\" from \"employees\" as \"e0\") as \"value\"",
    })
  })

  test("count-distinct: inside a group, COUNT(DISTINCT x) in the same GROUP BY", () => {
    expect(sql(Q.for(byDept, (g) => Q.yield({ dept: g.key, nicks: Q.count(Q.distinct(Q.for(g.group, (e) => Q.yield(e.nick)))) })))).toEqual({
      sqlite: "select \"e0\".\"dept\" as \"dept\", count(distinct \"e0\".\"nick\") as \"nicks\" from \"employees\" as \"e0\" group by \"e0\".\"dept\"",
      postgres: "select \"e0\".\"dept\" as \"dept\", count(distinct \"e0\".\"nick\") as \"nicks\" from \"employees\" as \"e0\" group by \"e0\".\"dept\"",
    })
  })

  test("count-distinct: of records, a count over the DISTINCT subquery", () => {
    expect(sql(Q.yield(Q.count(Q.distinct(Q.for(employees, (e) => Q.yield({ d: e.dept, n: e.nick }))))))).toEqual({
      sqlite: "select (select count(*) as \"v\" from (select \"e1\".\"dept\" as \"k0\", \"e1\".\"nick\" as \"k1\" from \"employees\" as \"e1\" group by 1, 2) as \"g2\") as \"value\"",
      postgres: "select (select count(*) as \"v\" from (select \"e1\".\"dept\" as \"k0\", \"e1\".\"nick\" as \"k1\" from \"employees\" as \"e1\" group by 1, 2) as \"g2\") as \"value\"",
    })
  })

  test("distinct: SELECT DISTINCT", () => {
    expect(sql(Q.distinct(Q.for(employees, (e) => Q.yield({ d: e.dept, b: e.boss }))))).toEqual({
      sqlite: "select distinct \"e0\".\"dept\" as \"d\", \"e0\".\"boss\" as \"b\" from \"employees\" as \"e0\"",
      postgres: "select distinct \"e0\".\"dept\" as \"d\", \"e0\".\"boss\" as \"b\" from \"employees\" as \"e0\"",
    })
  })

  test("for-group over a union: the union is a derived table, grouped once", () => {
    expect(sql(Q.for(Q.groupBy(Q.union(Q.for(employees, (e) => Q.yield(e.name)), Q.for(tasks, (t) => Q.yield(t.employee))), (n) => n), (g) => Q.yield({ name: g.key, n: Q.count(g.group), long: Q.count(Q.for(g.group, (n) => Q.where(Q.gt(Q.length(n), 3), Q.yield(n)))) })))).toEqual({
      sqlite: "select \"g2u\".\"k0\" as \"name\", count(*) as \"n\", count(\"g2u\".\"f1\") as \"long\" from (select \"e0\".\"name\" as \"k0\", case when (length(\"e0\".\"name\") > ?) then 1 end as \"f1\" from \"employees\" as \"e0\" union all select \"t1\".\"employee\" as \"k0\", case when (length(\"t1\".\"employee\") > ?) then 1 end as \"f1\" from \"tasks\" as \"t1\") as \"g2u\" group by \"g2u\".\"k0\"",
      postgres: "select \"g2u\".\"k0\" as \"name\", count(*) as \"n\", count(\"g2u\".\"f1\") as \"long\" from (select \"e0\".\"name\" as \"k0\", case when (length(\"e0\".\"name\") > cast(3 as bigint)) then 1 end as \"f1\" from \"employees\" as \"e0\" union all select \"t1\".\"employee\" as \"k0\", case when (length(\"t1\".\"employee\") > cast(3 as bigint)) then 1 end as \"f1\" from \"tasks\" as \"t1\") as \"g2u\" group by \"g2u\".\"k0\"",
    })
  })

  test("lineage-of-group: one JSON array of the group's keys in the same GROUP BY", () => {
    expect(sql(lineage(Q.for(byDept, (g) => Q.yield({ dept: g.key, n: Q.count(g.group) }))))).toEqual({
      sqlite: "select \"e0\".\"dept\" as \"data.dept\", count(*) as \"data.n\", json_group_array(json_array(0, \"e0\".\"id\")) as \"#l0\" from \"employees\" as \"e0\" group by \"e0\".\"dept\"",
      postgres: "select \"e0\".\"dept\" as \"data.dept\", count(*) as \"data.n\", cast(json_agg(json_build_array(0, \"e0\".\"id\")) as text) as \"#l0\" from \"employees\" as \"e0\" group by \"e0\".\"dept\"",
    })
  })

  test("lineage-of-group: a distinct row's lineage groups by the row", () => {
    expect(sql(lineage(Q.distinct(Q.for(employees, (e) => Q.yield(e.dept)))))).toEqual({
      sqlite: "select \"e0\".\"dept\" as \"data\", json_group_array(json_array(0, \"e0\".\"id\")) as \"#l0\" from \"employees\" as \"e0\" group by \"e0\".\"dept\"",
      postgres: "select \"e0\".\"dept\" as \"data\", cast(json_agg(json_build_array(0, \"e0\".\"id\")) as text) as \"#l0\" from \"employees\" as \"e0\" group by \"e0\".\"dept\"",
    })
  })
})
