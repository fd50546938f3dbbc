/**
 * Q.let: a subexpression computed once. SQL text on both dialects (a scalar with a subquery is
 * one lateral FROM item however often it is used), and results against the oracle on both,
 * plain and under lineage.
 */
import { beforeAll, describe, expect, test } from 'vitest'
import { AST, compile, createTable, insertRows, lineage, LineageQueryError, Q, plainLineage, run as runLazy, type AnyQuery } from '../../src/index.js'
import { evaluate, evaluateLineage } from '../oracle/evaluate.js'
import { statementsOf } from '../support/count.js'
import { eachDialect } from '../support/db.js'
import { data, departments, employees, tasks, tasksOf } from './fixtures.js'
import { occurrences, sqlOf } from '../support/sql.js'

/** `run` with annotated elements copied to plain `{ data, lineage }` objects, so `toEqual` compares both fields (see docs/lineage.md, "Reading lineage"). */
const run: typeof runLazy = async (db, q) => plainLineage(await runLazy(db, q))


/** A correlated count used in the condition, the result and the order. */
const busy = Q.for(employees, (e) => Q.let(Q.count(tasksOf(e)), (n) => Q.where(Q.ge(n, 1), Q.yield({ name: e.name, tasks: n, twice: Q.add(n, n) })))).orderBy((r) => Q.desc(r.tasks))
/** An uncorrelated average (TPC-H style). */
const aboveAvg = Q.let(Q.avg(employees, (e) => e.salary), (avg) => Q.for(employees, (e) => Q.where(Q.gt(e.salary, avg), Q.yield({ n: e.name, avg }))))
/** A record value: one field shared, one a column (cheap: not shared). */
const rec = Q.for(departments, (d) =>
  Q.let({ top: Q.max(Q.for(employees, (e) => Q.where(Q.eq(e.dept, d.name), Q.yield(e.salary)))), name: d.name }, (r) =>
    Q.where(Q.isNotNull(r.top), Q.yield({ d: r.name, top: r.top, half: Q.div(r.top, 2) }))))
/** A query value: used as a generator source twice and as a nested collection. */
const pairsOf = Q.let(Q.for(employees, (e) => Q.where(Q.eq(e.dept, 'Sales'), Q.yield({ n: e.name, s: e.salary }))), (sales) =>
  Q.for(sales, (a) => Q.for(sales, (b) => Q.where(Q.lt(a.s, b.s), Q.yield({ a: a.n, b: b.n, all: Q.for(sales, (c) => Q.yield(c.n)) })))))
/** A correlated query value (it reads `e`): substituted at each use. */
const correlated = Q.for(employees, (e) => Q.let(tasksOf(e), (ts) => Q.yield({ n: e.name, count: Q.count(ts), first: Q.min(ts) })))
/** Lets inside a nested collection, nested lets, a let over a union body. */
const nested = Q.for(departments, (d) => Q.yield({
  d: d.name,
  emps: Q.for(employees, (e) => Q.where(Q.eq(e.dept, d.name), Q.let(Q.count(tasksOf(e)), (n) => Q.let(Q.exists(Q.for(tasks, (t) => Q.where(Q.and(Q.eq(t.employee, e.name), Q.like(t.task, 'a%')), Q.yield(t)))), (a) =>
    Q.union(Q.where(a, Q.yield({ n: e.name, k: n })), Q.where(Q.not(a), Q.yield({ n: Q.upper(e.name), k: Q.neg(n) }))))))),
}))
const all = [busy, aboveAvg, rec, pairsOf, correlated, nested] as AnyQuery[]

describe('Q.let: SQL', () => {
  test('a correlated scalar with a subquery is one lateral FROM item, used three times', () => {
    expect(sqlOf(busy, 'sqlite')).toBe(
      'select "e0"."name" as "name", "#s0"."value" as "tasks", ("#s0"."value" + "#s0"."value") as "twice" from "employees" as "e0", json_each(json_array((select count(*) as "v" from "tasks" as "t1" where ("t1"."employee" = "e0"."name")))) as "#s0" where ("#s0"."value" >= ?) order by "tasks" desc nulls last',
    )
    expect(sqlOf(busy, 'postgres')).toBe(
      'select "e0"."name" as "name", "#s0"."v" as "tasks", ("#s0"."v" + "#s0"."v") as "twice" from "employees" as "e0", lateral (select (select count(*) as "v" from "tasks" as "t1" where ("t1"."employee" = "e0"."name")) as "v" offset 0) as "#s0" where ("#s0"."v" >= cast(1 as bigint)) order by "tasks" desc nulls last',
    )
    for (const d of ['sqlite', 'postgres'] as const) expect(occurrences(sqlOf(busy, d), 'count(*)')).toBe(1)
  })

  test('an uncorrelated value is computed once for the whole query', () => {
    expect(sqlOf(aboveAvg, 'postgres')).toBe(
      'select "e1"."name" as "n", "#s0"."v" as "avg" from "employees" as "e1", lateral (select (select avg("e0"."salary") as "v" from "employees" as "e0") as "v" offset 0) as "#s0" where ("e1"."salary" > "#s0"."v")',
    )
    expect(occurrences(sqlOf(aboveAvg, 'sqlite'), 'avg(')).toBe(1)
  })

  test('record fields: the subquery shared, the column inlined; a query value fused where used', () => {
    for (const d of ['sqlite', 'postgres'] as const) {
      expect(occurrences(sqlOf(rec, d), 'max(')).toBe(1)
      expect(sqlOf(rec, d)).toContain('"d0"."name" as "d"')
      // a closed query value is a CTE read three times: two joins and a nested collection
      expect(sqlOf(pairsOf, d).startsWith('with "#q0" as (select "e0"."name" as "c0", "e0"."salary" as "c1" from "employees" as "e0" where')).toBe(true)
      expect(occurrences(sqlOf(pairsOf, d), '"employees" as')).toBe(1)
      expect(occurrences(sqlOf(pairsOf, d), 'from "#q0" as')).toBe(2)
      // a correlated one is substituted: each use is fused where it is used, and the two
      // aggregates over it are one scan (rule decorrelate-aggregate, one grouped table)
      expect(occurrences(sqlOf(correlated, d), '"tasks" as')).toBe(1)
      expect(sqlOf(correlated, d)).not.toContain('with ')
      // under lineage the value's elements carry annotations: substituted, not a CTE
      expect(sqlOf(lineage(pairsOf), d)).not.toContain('with ')
      // a let over a union: each arm computes it once for its rows
      expect(occurrences(sqlOf(nested, d), 'count(*)')).toBe(2)
      expect(occurrences(sqlOf(nested, d), 'exists')).toBe(2)
    }
  })

  test('a grouped query value is a CTE that is the GROUP BY itself (no derived table inside it)', () => {
    const perDept = Q.for(Q.groupBy(employees, (e) => e.dept), (g) => Q.yield({ dept: g.key, total: Q.sum(g.group, (e) => e.salary) }))
    const top = Q.let(perDept, (ds) => Q.for(ds, (d) => Q.where(Q.eq(d.total, Q.max(ds, (x) => x.total)), Q.yield(d.dept))))
    for (const d of ['sqlite', 'postgres'] as const) {
      expect(sqlOf(top, d).startsWith('with "#q0" as (select "e0"."dept" as "c0", sum("e0"."salary") as "c1" from "employees" as "e0" group by "e0"."dept")')).toBe(true)
    }
  })

  test('the body must be a query', () => {
    const err = (() => { try { compile(Q.let(1, (x) => x as never), 'sqlite') } catch (e) { return e } })()
    expect(err).toBeInstanceOf(LineageQueryError)
    expect((err as LineageQueryError).code).toBe('type')
    expect((err as LineageQueryError).message).toContain('Q.let: the body must return a query')
    expect(() => Q.let(1, 2 as never)).toThrow(LineageQueryError)
  })
})

eachDialect('Q.let', (get) => {
  beforeAll(async () => {
    for (const tb of [departments, employees, tasks]) await createTable(get().db, tb)
    await insertRows(get().db, departments, data.departments)
    await insertRows(get().db, employees, data.employees)
    await insertRows(get().db, tasks, data.tasks)
  })

  test('results are the oracle\'s, in one statement', async () => {
    for (const q of all) {
      const { statements, result } = await statementsOf(get().db, (db) => run(db, q))
      expect(statements).toBe(1)
      expect(sortDeep(result)).toEqual(sortDeep(evaluate(q[AST], data)))
    }
    expect(await run(get().db, busy)).toEqual([{ name: 'alan', tasks: 2, twice: 4 }, { name: 'cora', tasks: 1, twice: 2 }])
  })

  test('a shared value read inside Q.distinct or Q.groupBy is substituted there (FC_SEED=1178279912 FC_PATH=257: "no such column #s1.value")', async () => {
    const qs = [
      Q.for(employees, (e) => Q.let(Q.count(tasksOf(e)), (n) => Q.distinct(Q.yield(n)))),
      Q.for(departments, (d) => Q.let(Q.count(Q.for(employees, (e) => Q.where(Q.eq(e.dept, d.name), Q.yield(e)))), (n) =>
        Q.for(Q.groupBy(Q.for(tasks, (t) => Q.yield({ t: t.task, n })), (r) => r.n), (g) => Q.yield({ d: d.name, k: g.key, c: Q.count(g.group) })))),
      // an aggregate over a group's rows of the shared value (FC_SEED=664931828 FC_PATH=25: "no such column #s2.value")
      Q.let(Q.count(tasks), (n) => Q.for(Q.groupBy(employees, (e) => e.dept), (g) => Q.where(Q.ge(Q.min(Q.for(g.group, (x) => Q.yield(n))), 1), Q.yield({ d: g.key, m: Q.max(Q.for(g.group, (x) => Q.yield(n))) })))),
    ] as AnyQuery[]
    for (const q of qs) {
      expect(sortDeep(await run(get().db, q))).toEqual(sortDeep(evaluate(q[AST], data)))
      expect(sortDeep(await run(get().db, lineage(q)))).toEqual(sortDeep(evaluateLineage(q[AST], data)))
    }
  })

  test('a query value that reads an outer row only inside Q.distinct or Q.groupBy is correlated, not a CTE (FC_SEED=794343774 FC_PATH=84: "missing FROM-clause entry for table t0")', async () => {
    const qs = [
      Q.for(employees, (e) => Q.let(Q.distinct(Q.yield(e.id)), (ids) => Q.for(ids, (i) => Q.yield({ n: e.name, i })))),
      Q.for(employees, (e) => Q.yield({ n: e.name, xs: Q.let(Q.distinct(Q.yield(e.id)), () => Q.values([1, 2])) })),
      Q.for(departments, (d) => Q.let(Q.for(Q.groupBy(Q.for(employees, (e) => Q.where(Q.eq(e.dept, d.name), Q.yield(e))), (e) => e.boss), (g) => Q.yield({ b: g.key, c: Q.count(g.group) })), (bs) =>
        Q.for(bs, (b) => Q.yield({ d: d.name, b: b.b, c: b.c })))),
    ] as AnyQuery[]
    for (const q of qs) {
      expect(sqlOf(q, get().dialect)).not.toMatch(/^with /)
      expect(sortDeep(await run(get().db, q))).toEqual(sortDeep(evaluate(q[AST], data)))
      expect(sortDeep(await run(get().db, lineage(q)))).toEqual(sortDeep(evaluateLineage(q[AST], data)))
    }
  })

  test('a shared value used inside the body of a grouped generator is substituted there (FC_SEED=600227892 FC_PATH=452: "no such column #s0.value")', async () => {
    const qs = [
      Q.for(Q.groupBy(employees, (e) => e.dept), (g) => Q.let(Q.max(Q.for(tasks, (t) => Q.yield(t.id))), (x) => Q.for(g.group, (e) => Q.yield({ d: g.key, x, n: e.name })))),
      Q.for(Q.groupBy(employees, (e) => e.dept), (g) => Q.let(Q.count(tasks), (x) => Q.yield({ d: g.key, m: Q.max(Q.for(g.group, (e) => Q.yield(Q.add(e.salary, x)))) }))),
    ] as AnyQuery[]
    for (const q of qs) {
      expect(sortDeep(await run(get().db, q))).toEqual(sortDeep(evaluate(q[AST], data)))
      expect(sortDeep(await run(get().db, lineage(q)))).toEqual(sortDeep(evaluateLineage(q[AST], data)))
    }
  })

  test('a shared value a group source computes, read by the group\'s aggregates, is in scope or computed in place (FC_SEED=729739416 FC_PATH=19: "no such column #s1.value")', async () => {
    const qs = [
      // the let is the whole source of the group (a branch without generators)
      Q.for(Q.groupBy(Q.let(Q.count(Q.yield(0)), (x) => Q.yield(x)), () => ({})), (g) => Q.yield({ k: Q.for(g.group, (r) => Q.yield(r)) })),
      Q.for(Q.groupBy(Q.let(Q.count(tasks), (x) => Q.yield(x)), (x) => x), (g) => Q.yield({ k: g.key, s: Q.sum(Q.for(g.group, (r) => Q.yield(r))), n: Q.count(g.group) })),
      // the source is a table with a correlated shared value per row, grouped by a column
      Q.for(Q.groupBy(Q.for(employees, (e) => Q.let(Q.count(tasksOf(e)), (n) => Q.yield({ d: e.dept, n }))), (r) => r.d), (g) =>
        Q.yield({ d: g.key, total: Q.sum(Q.for(g.group, (r) => Q.yield(r.n))), ns: Q.for(g.group, (r) => Q.yield(r.n)) })),
    ] as AnyQuery[]
    for (const q of qs) {
      expect(sortDeep(await run(get().db, q))).toEqual(sortDeep(evaluate(q[AST], data)))
      expect(sortDeep(await run(get().db, lineage(q)))).toEqual(sortDeep(evaluateLineage(q[AST], data)))
    }
  })

  test('lineage: the let adds nothing; a query value used as a source brings its rows', async () => {
    for (const q of all) expect(sortDeep(await run(get().db, lineage(q)))).toEqual(sortDeep(evaluateLineage(q[AST], data)))
    const rows = await run(get().db, lineage(pairsOf))
    expect(rows.map((r) => r.lineage)).toEqual([[{ table: 'employees', key: 1 }, { table: 'employees', key: 2 }]])
  })
})

/** Arrays sorted by their JSON (results here are bags). */
function sortDeep(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sortDeep).sort((a, b) => (JSON.stringify(a) < JSON.stringify(b) ? -1 : 1))
  if (typeof v === 'object' && v !== null) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, sortDeep(x)]))
  return v
}
