/**
 * The lineage rewrite (src/lineage/rewrite.ts) on both dialects and on the AST: what it refuses, the
 * input form the derived-data engine uses (`inputLineage`: top-level entries, nested
 * collections plain), and the walk it exports (`conditionQueries`).
 */
import * as t from 'io-ts'
import { beforeAll, describe, expect, test } from 'vitest'
import { AST, compile, createTable, insertRows, lineage, plainLineage, Q, run as runLazy, table } from '../../src/index.js'
import { inputLineage } from '../../src/lineage/index.js'
import { conditionQueries, rewriteQuery } from '../../src/lineage/rewrite.js'
import type * as ast from '../../src/query/ast.js'
import { Query } from '../../src/query/dsl.js'
import { eachDialect } from '../support/db.js'
import { thrown } from '../support/errors.js'

const emp = table('emp', { id: t.Int, dept: t.string, pay: t.Int })
const dept = table('dept', { name: t.string, floor: t.Int }, { key: 'name' })
const keyless = table('keyless', { name: t.string })
const derivedRows = table('derived_rows', { lq_key: t.string, n: t.Int }, { key: 'lq_key', storedLineage: { column: 'lq_key', table: 'emp' } })

/** `run` with annotated elements copied to plain `{ data, lineage }` objects, so `toEqual` compares both fields. */
const run: typeof runLazy = async (db, q) => plainLineage(await runLazy(db, q))


describe('the rewrite on the AST', () => {
  test('a scalar is not a query: the rewrite refuses it, naming its kind', () => {
    const one: ast.Expr = { kind: 'const', value: 1 }
    const q = Q.for(emp, (e) => Q.yield(e.id))[AST]
    const scalars: ast.Expr[] = [
      { kind: 'record', fields: [['a', one]] }, one, { kind: 'op', op: 'add', args: [] }, { kind: 'exists', query: q, negated: false }, { kind: 'agg', fn: 'count', query: q },
      { kind: 'linEmpty' }, { kind: 'linRow', table: (emp[AST] as ast.TableExpr).table, row: one }, { kind: 'linAppend', parts: [] }, { kind: 'linWitness', query: q }, { kind: 'linGroup', group: q },
    ]
    for (const e of scalars) {
      const err = thrown(() => rewriteQuery(e))
      expect(err.code).toBe('compile')
      expect(err.message).toBe(`lineage: expected a query, got a ${e.kind} expression`)
    }
  })

  test('a tracked table without a key is a lineage error naming it and the two ways out', () => {
    const err = thrown(() => lineage(Q.for(keyless, (k) => Q.yield(k.name))))
    expect(err.code).toBe('lineage')
    expect(err.message).toBe("table `keyless` has no key, so its rows cannot be named in lineage; declare one with table(name, columns, { key: 'col' }) or opt out with { lineage: false }")
    expect(err.details).toEqual({ table: 'keyless' })
    // Inside a condition or an aggregate nothing is named, so no key is needed.
    expect(() => lineage(Q.for(emp, (e) => Q.where(Q.exists(Q.for(keyless, (k) => Q.where(Q.eq(k.name, e.dept), Q.yield(k.name)))), Q.yield({ id: e.id, n: Q.count(Q.for(keyless, (k) => Q.yield(k.name))) }))))).not.toThrow()
  })

  test('a collection where a scalar is expected: lineage(q), with or without why-provenance, gives the plain query\'s type error', () => {
    const ids = Q.for(emp, (e) => Q.yield(e.id))
    // One query of each kind, in a condition.
    const queries = [emp, ids, Q.where(true, Q.yield(1)), Q.yield(1), Q.union(Q.yield(1), Q.yield(2)), Q.values([1]), ids.orderBy((x) => x), ids.limit(1), Q.let(Q.yield(1), (x) => x), Q.groupBy(emp, (e) => e.dept), Q.distinct(ids)]
    expect(new Set(queries.map((c) => c[AST].kind))).toEqual(new Set(['table', 'for', 'where', 'yield', 'union', 'values', 'order', 'limit', 'let', 'group', 'distinct']))
    for (const c of queries) {
      const q = Q.for(emp, (e) => Q.where(c as never, Q.yield(e.id)))
      for (const query of [q, lineage(q), lineage(q, { why: true })]) {
        const err = thrown(() => compile(query, 'sqlite'))
        expect([err.code, err.message]).toEqual(['type', 'the condition of Q.where must be a scalar expression, got a collection'])
      }
    }
  })

  test('conditionQueries refuses an annotation: the rewrite puts annotations in yields, never in a condition', () => {
    const err = thrown(() => conditionQueries(Q.and(Q.eq(1, 1), { [AST]: { kind: 'linEmpty' } } as never)[AST]))
    expect([err.code, err.message]).toEqual(['compile', 'lineage: internal: a linEmpty annotation in a condition'])
  })

  test('conditionQueries lists the query of each exists and aggregate in a condition, outermost first, through operators only', () => {
    const inner = Q.for(dept, (d) => Q.yield(d.floor))
    const other = Q.for(emp, (e) => Q.yield(e.pay))
    const cond = Q.and(Q.exists(inner), Q.or(Q.gt(Q.sum(other), 1), Q.not(Q.empty(inner))))[AST]
    expect(conditionQueries(cond)).toEqual([inner[AST], other[AST], inner[AST]])
    expect(conditionQueries(Q.eq(1, 1)[AST])).toEqual([])
    expect(conditionQueries(inner[AST])).toEqual([])
  })
})

eachDialect('the rewrite, run', (get) => {
  beforeAll(async () => {
    const { db } = get()
    for (const tb of [emp, dept, derivedRows]) await createTable(db, tb)
    await insertRows(db, emp, [{ id: 1, dept: 'a', pay: 10 }, { id: 2, dept: 'a', pay: 20 }, { id: 3, dept: 'b', pay: 30 }])
    await insertRows(db, dept, [{ name: 'a', floor: 1 }, { name: 'b', floor: 2 }])
    await insertRows(db, derivedRows, [{ lq_key: '1', n: 5 }])
  })

  test('inputLineage: top-level rows carry their direct entries (derived rows by their own key), nested collections are plain data', async () => {
    const q = Q.for(dept, (d) => Q.where(Q.eq(d.name, 'a'), Q.yield({ d: d.name, pays: Q.for(emp, (e) => Q.where(Q.eq(e.dept, d.name), Q.yield(e.pay))) })))
    expect(await run(get().db, inputLineage(q))).toEqual([{ data: { d: 'a', pays: [10, 20] }, lineage: [{ table: 'dept', key: 'a' }] }])
    const stored = Q.for(derivedRows, (r) => Q.yield(r.n))
    expect(await run(get().db, inputLineage(stored))).toEqual([{ data: 5, lineage: [{ table: 'derived_rows', key: '1' }] }])
    expect(await run(get().db, lineage(stored))).toEqual([{ data: 5, lineage: [{ table: 'emp', key: 1 }] }])
  })

  test('inputLineage of a grouped query: each group names every row of it, its group plain', async () => {
    const q = Q.for(Q.groupBy(emp, (e) => e.dept), (g) => Q.yield({ dept: g.key, pays: Q.for(g.group, (e) => Q.yield(e.pay)) }))
    const rows = (await run(get().db, inputLineage(q))) as { data: { dept: string; pays: number[] }; lineage: { table: string; key: unknown }[] }[]
    const byDept = Object.fromEntries(rows.map((r) => [r.data.dept, { pays: [...r.data.pays].sort(), keys: r.lineage.map((l) => l.key).sort() }]))
    expect(byDept).toEqual({ a: { pays: [10, 20], keys: [1, 2] }, b: { pays: [30], keys: [3] } })
    const nested = Q.for(dept, (d) => Q.where(Q.eq(d.name, 'a'), Q.yield({ d: d.name, groups: Q.for(Q.groupBy(emp, (e) => e.dept), (g) => Q.where(Q.eq(g.key, d.name), Q.yield({ k: g.key, n: Q.count(g.group) }))) })))
    expect(await run(get().db, inputLineage(nested))).toEqual([{ data: { d: 'a', groups: [{ k: 'a', n: 2 }] }, lineage: [{ table: 'dept', key: 'a' }] }])
  })

  test('a for over a nested collection of a let takes its elements\' entries along; plain in the input form', async () => {
    const q = Q.for(dept, (d) => Q.where(Q.eq(d.name, 'a'), Q.let(Q.for(emp, (e) => Q.where(Q.eq(e.dept, d.name), Q.yield(e))), (es) => Q.for(es, (e) => Q.yield({ d: d.name, id: e.id })))))
    const rows = await run(get().db, lineage(q))
    expect(rows).toEqual([
      { data: { d: 'a', id: 1 }, lineage: [{ table: 'dept', key: 'a' }, { table: 'emp', key: 1 }] },
      { data: { d: 'a', id: 2 }, lineage: [{ table: 'dept', key: 'a' }, { table: 'emp', key: 2 }] },
    ])
  })

  test('count(distinct x) in a value counts distinct non-null values; other aggregates read the data', async () => {
    const q = Q.for(dept, (d) => Q.where(Q.eq(d.name, 'a'), Q.yield({ floors: Q.count(Q.distinct(Q.for(emp, (e) => Q.yield(e.dept)))), total: Q.sum(Q.for(emp, (e) => Q.yield(e.pay))), n: Q.count(Q.for(emp, (e) => Q.yield(e.id))) })))
    expect(await run(get().db, lineage(q))).toEqual([{ data: { floors: 2, total: 60, n: 3 }, lineage: [{ table: 'dept', key: 'a' }] }])
  })

  // Annotating an annotated query again: the inner annotations are data now, kept as they were
  // whatever the outer options; only the outer `lineage` is built with the outer options.
  const sortRows = <R>(rows: R[]): R[] => [...rows].sort((a, b) => (JSON.stringify(a) < JSON.stringify(b) ? -1 : 1))

  test('an annotated query annotated again keeps its inner entries (none for a literal; a derived row\'s composed), whatever the outer options', async () => {
    expect(await run(get().db, lineage(lineage(Q.values([7]))))).toEqual([{ data: { data: 7, lineage: [] }, lineage: [] }])
    const stored = Q.for(derivedRows, (r) => Q.yield(r.n))
    const inner = { data: 5, lineage: [{ table: 'emp', key: 1 }] }
    expect(await run(get().db, lineage(lineage(stored)))).toEqual([{ data: inner, lineage: [{ table: 'emp', key: 1 }] }])
    expect(await run(get().db, lineage(lineage(stored), { composed: false }))).toEqual([{ data: inner, lineage: [{ table: 'derived_rows', key: '1' }] }])
    expect(await run(get().db, inputLineage(lineage(stored)))).toEqual([{ data: inner, lineage: [{ table: 'derived_rows', key: '1' }] }])
  })

  test('an annotated query annotated again keeps the why-provenance witnesses of its rows and groups', async () => {
    const floors = (e: { dept: unknown }) => Q.for(dept, (x) => Q.where(Q.eq(x.name, e.dept as string), Q.yield(x.floor)))
    const depts = Q.distinct(Q.for(emp, (e) => Q.where(Q.exists(floors(e)), Q.yield(e.dept))))
    const inner = [
      { data: 'a', lineage: [{ table: 'dept', key: 'a' }, { table: 'emp', key: 1 }, { table: 'emp', key: 2 }] },
      { data: 'b', lineage: [{ table: 'dept', key: 'b' }, { table: 'emp', key: 3 }] },
    ]
    expect(sortRows(await run(get().db, lineage(depts, { why: true })))).toEqual(inner)
    expect(sortRows(await run(get().db, lineage(lineage(depts, { why: true }))))).toEqual([
      { data: inner[0], lineage: [{ table: 'emp', key: 1 }, { table: 'emp', key: 2 }] },
      { data: inner[1], lineage: [{ table: 'emp', key: 3 }] },
    ])
    const pays = Q.for(emp, (e) => Q.where(Q.exists(Q.for(derivedRows, (r) => Q.where(Q.eq(r.n, 5), Q.yield(r.n)))), Q.where(Q.eq(e.id, 2), Q.yield(e.pay))))
    const why = [{ data: 20, lineage: [{ table: 'emp', key: 2 }, { table: 'emp', key: 1 }] }]
    expect(await run(get().db, lineage(pays, { why: true }))).toEqual(why)
    expect(await run(get().db, lineage(lineage(pays, { why: true }), { composed: false }))).toEqual([{ data: why[0], lineage: [{ table: 'emp', key: 2 }] }])
  })

  test('an annotated group annotated again keeps the group\'s inner entries, whatever the outer options', async () => {
    const groups = Q.for(Q.groupBy(derivedRows, (r) => r.n), (g) => Q.yield(g.key))
    const inner = { data: 5, lineage: [{ table: 'emp', key: 1 }] }
    expect(await run(get().db, lineage(lineage(groups)))).toEqual([{ data: inner, lineage: [{ table: 'emp', key: 1 }] }])
    expect(await run(get().db, lineage(lineage(groups), { composed: false }))).toEqual([{ data: inner, lineage: [{ table: 'derived_rows', key: '1' }] }])
    expect(await run(get().db, inputLineage(lineage(groups)))).toEqual([{ data: inner, lineage: [{ table: 'derived_rows', key: '1' }] }])
  })

  test('a constant or column condition under why-provenance names no witness', async () => {
    const q = Q.for(emp, (e) => Q.where(true, Q.where(Q.eq(e.id, 3), Q.yield(e.pay))))
    expect(await run(get().db, lineage(q, { why: true }))).toEqual([{ data: 30, lineage: [{ table: 'emp', key: 3 }] }])
  })

  test('a Query built from a rewritten AST runs as the annotated query', async () => {
    const q = Q.for(emp, (e) => Q.where(Q.eq(e.id, 3), Q.yield(e.pay)))
    expect(await run(get().db, new Query(rewriteQuery(q[AST])))).toEqual([{ data: 30, lineage: [{ table: 'emp', key: 3 }] }])
  })
})
