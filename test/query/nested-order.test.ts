/**
 * orderBy and limit inside nested collections (top-N per group), and under aggregates and
 * exists: the element order survives JSON aggregation on both dialects, and the results are the
 * oracle's (element order included).
 */
import * as t from 'io-ts'
import { beforeAll, describe, expect, test } from 'vitest'
import { AST, compile, createTable, insertRows, lineage, LineageQueryError, Q, plainLineage, run as runLazy, table, type AnyQuery } from '../../src/index.js'
import { evaluate, evaluateLineage } from '../oracle/evaluate.js'
import { statementsOf } from '../support/count.js'
import { eachDialect } from '../support/db.js'
import { data, departments, employees, tasks } from './fixtures.js'
import { sqlOf } from '../support/sql.js'

/** `run` with annotated elements copied to plain `{ data, lineage }` objects, so `toEqual` compares both fields (see docs/lineage.md, "Reading lineage"). */
const run: typeof runLazy = async (db, q) => plainLineage(await runLazy(db, q))

const inDept = (d: { name: any }) => Q.for(employees, (e) => Q.where(Q.eq(e.dept, d.name), Q.yield({ n: e.name, s: e.salary })))

/** Top 1 earner per department. */
const topN = Q.for(departments, (d) => Q.yield({ d: d.name, top: inDept(d).orderBy((r) => Q.desc(r.s)).limit(1) }))
/** Every department's employees by name (no limit: aggregated in place). */
const byName = Q.for(departments, (d) => Q.yield({ d: d.name, names: Q.for(employees, (e) => Q.where(Q.eq(e.dept, d.name), Q.yield(e.name))).orderBy((n) => Q.desc(n)) }))
/** Offsets, a union inside, a mapped ordered query. */
const unionTop = Q.yield({
  all: Q.union(Q.for(employees, (e) => Q.yield(e.name)), Q.for(tasks, (x) => Q.yield(x.task)), Q.values(['zed'])).orderBy((n) => n).limit(3, 1),
  mapped: Q.for(Q.for(employees, (e) => Q.yield(e)).orderBy((e) => e.salary), (e) => Q.yield(Q.concat(e.name, '!'))),
})
/** Aggregates and exists over a limited query. */
const aggTop = Q.for(departments, (d) => Q.yield({
  d: d.name,
  best: Q.sum(inDept(d).orderBy((r) => Q.desc(r.s)).limit(1), (r) => r.s),
  second: Q.count(inDept(d).orderBy((r) => r.s).limit(5, 1)),
  hasSecond: Q.exists(inDept(d).orderBy((r) => r.s).limit(1, 1)),
}))
/** Nested twice: departments, their top employee, that employee's first task. */
const deep = Q.for(departments, (d) => Q.yield({
  d: d.name,
  top: Q.for(inDept(d).orderBy((r) => Q.desc(r.s)).limit(1), (r) => Q.yield({ n: r.n, first: Q.for(tasks, (x) => Q.where(Q.eq(x.employee, r.n), Q.yield(x.task))).orderBy((x) => x).limit(1) })),
}))
const all = [topN, byName, unionTop, aggTop, deep] as AnyQuery[]

describe('nested order and limit: SQL', () => {
  test('top-N per group: an ordered, limited derived table under an ordered JSON aggregate', () => {
    expect(sqlOf(topN, 'sqlite')).toBe(
      'select "d0"."name" as "d", (select json_group_array(json_array("u"."c0", "u"."c1") order by "u"."o0" desc nulls last) as "v" from (select "e1"."name" as "c0", "e1"."salary" as "c1", "e1"."salary" as "o0" from "employees" as "e1" where ("e1"."dept" = "d0"."name") order by "o0" desc nulls last limit 1) as "u") as "top" from "departments" as "d0"',
    )
    expect(sqlOf(topN, 'postgres')).toBe(
      'select "d0"."name" as "d", (select coalesce(json_agg(json_build_array("u"."c0", "u"."c1") order by "u"."o0" desc nulls last), json_build_array()) as "v" from (select "e1"."name" as "c0", "e1"."salary" as "c1", "e1"."salary" as "o0" from "employees" as "e1" where ("e1"."dept" = "d0"."name") order by "o0" desc nulls last limit $1) as "u") as "top" from "departments" as "d0"',
    )
  })

  test('ordered without a limit: the aggregate orders in place (code-point collation on PostgreSQL)', () => {
    expect(sqlOf(byName, 'sqlite')).toBe(
      'select "d0"."name" as "d", (select json_group_array("e1"."name" order by "e1"."name" desc nulls last) as "v" from "employees" as "e1" where ("e1"."dept" = "d0"."name")) as "names" from "departments" as "d0"',
    )
    expect(sqlOf(byName, 'postgres')).toBe(
      'select "d0"."name" as "d", (select coalesce(json_agg("e1"."name" order by "e1"."name" collate "C" desc nulls last), json_build_array()) as "v" from "employees" as "e1" where ("e1"."dept" = "d0"."name")) as "names" from "departments" as "d0"',
    )
  })

  test('an aggregate over a limited query aggregates the kept rows', () => {
    expect(sqlOf(aggTop, 'sqlite')).toContain('(select sum("u"."v") as "v" from (select "e1"."salary" as "v", "e1"."salary" as "o0" from "employees" as "e1" where ("e1"."dept" = "d0"."name") order by "o0" desc nulls last limit 1) as "u")')
  })
})

eachDialect('nested order and limit', (get) => {
  beforeAll(async () => {
    for (const tb of [departments, employees, tasks]) await createTable(get().db, tb)
    await insertRows(get().db, departments, data.departments)
    await insertRows(get().db, employees, data.employees)
    await insertRows(get().db, tasks, data.tasks)
  })

  test('results, element order included, are the oracle\'s; one statement each', async () => {
    for (const q of all) {
      const { statements, result } = await statementsOf(get().db, (db) => run(db, q))
      expect(statements).toBe(1)
      expect(result).toEqual(evaluate(q[AST], data))
    }
    expect(await run(get().db, topN)).toEqual([
      { d: 'Sales', top: [{ n: 'bert', s: 2000000 }] },
      { d: 'Research', top: [{ n: 'cora', s: 60000 }] },
      { d: 'Empty', top: [] },
    ])
  })

  test('under lineage(q) the nested elements keep their order and their rows', async () => {
    for (const q of all) expect(await run(get().db, lineage(q))).toEqual(evaluateLineage(q[AST], data))
  })

  test('at the top level too: an order of an order, a mapped ordered query, a limit under a where', async () => {
    const byDept = Q.for(employees, (e) => Q.yield({ d: e.dept, n: e.name })).orderBy((r) => Q.desc(r.n))
    const qs = [
      byDept.orderBy((r) => r.d), // by dept, ties by name descending
      Q.for(byDept, (r) => Q.yield(Q.concat(r.n, '@', r.d))),
      Q.where(Q.exists(tasks), byDept.limit(2, 1)),
    ] as AnyQuery[]
    for (const q of qs) expect(await run(get().db, q)).toEqual(evaluate(q[AST], data))
    expect(await run(get().db, qs[0]!)).toEqual([{ d: 'Research', n: 'cora' }, { d: 'Sales', n: 'bert' }, { d: 'Sales', n: 'alan' }])
  })

  test('many elements: the order survives JSON aggregation', async () => {
    const big = table('big', { id: t.Int, g: t.Int, v: t.string })
    const rows = Array.from({ length: 300 }, (_, i) => ({ id: i, g: i % 3, v: `v${(i * 7919) % 1000}` }))
    await createTable(get().db, big)
    await insertRows(get().db, big, rows)
    const q = Q.for(Q.values([0, 1, 2]), (g) => Q.yield({ g, vs: Q.for(big, (b) => Q.where(Q.eq(b.g, g), Q.yield(b.v))).orderBy((v) => v), top: Q.for(big, (b) => Q.where(Q.eq(b.g, g), Q.yield(b.id))).orderBy((x) => Q.desc(x)).limit(50, 10) }))
    expect(await run(get().db, q)).toEqual(evaluate(q[AST], { big: rows }))
  })
})

describe('nested order and limit: what stays an error', () => {
  const err = (f: () => unknown) => {
    try {
      f()
    } catch (e) {
      expect(e).toBeInstanceOf(LineageQueryError)
      return e as LineageQueryError
    }
    throw new Error('expected an error')
  }
  test('a limited query as a generator source that filters, or as a union part', () => {
    const limited = Q.for(employees, (e) => Q.yield(e)).orderBy((e) => e.salary).limit(2)
    expect(err(() => compile(Q.for(limited, (e) => Q.where(Q.gt(e.salary, 1), Q.yield(e.name))), 'sqlite')).message).toContain('the source of Q.for')
    expect(err(() => compile(Q.yield({ u: Q.union(limited, limited) }), 'sqlite')).message).toContain('a part of Q.union')
    expect(err(() => compile(limited.orderBy((e) => e.name), 'postgres')).message).toContain('Q.orderBy over an already limited query is not supported')
  })
})
