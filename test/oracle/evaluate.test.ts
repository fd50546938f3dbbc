import * as t from 'io-ts'
import { describe, expect, it } from 'vitest'
import type * as ast from '../../src/query/ast.js'
import { AST, Q, table } from '../../src/query/dsl.js'
import { evaluate, evaluateLineage, OracleError, scalarCompare, type Annotated, type AValue, type Database, type Value } from './evaluate.js'

const emp = table('emp', { id: t.Int, name: t.string, dept: t.union([t.string, t.null]), salary: t.union([t.number, t.null]) })
const dept = table('dept', { name: t.string, floor: t.Int }, { key: 'name' })
const task = table('task', { employee: t.string, task: t.string }, { key: ['employee', 'task'] })
const audit = table('audit', { id: t.Int, note: t.string }, { lineage: false })
const keyless = table('keyless', { a: t.string })

const db: Database = {
  emp: [
    { id: 1, name: 'ann', dept: 'eng', salary: 100 },
    { id: 2, name: 'bob', dept: 'eng', salary: null },
    { id: 3, name: 'cy', dept: null, salary: 50.5 },
  ],
  dept: [
    { name: 'eng', floor: 2 },
    { name: 'ops', floor: 1 },
  ],
  task: [
    { employee: 'ann', task: 'build' },
    { employee: 'ann', task: 'test' },
    { employee: 'bob', task: 'build' },
  ],
  audit: [
    { id: 1, note: 'x' },
    { id: 2, note: 'y' },
  ],
  keyless: [{ a: 'k' }],
}

const run = (q: { readonly [AST]: ast.Expr }, d: Database = db): Value[] => evaluate(q[AST], d)
const lin = (q: { readonly [AST]: ast.Expr }, d: Database = db): Annotated[] => evaluateLineage(q[AST], d)
/** The value of one scalar expression. */
const val = (x: unknown): Value => {
  const r = run(Q.yield(x as never))
  expect(r).toHaveLength(1)
  return r[0] as Value
}
function strip(v: AValue): Value {
  if (Array.isArray(v)) return (v as readonly Annotated[]).map((a) => strip(a.data))
  if (typeof v === 'object' && v !== null) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, strip(x as AValue)]))
  return v as Value
}
const stripAll = (xs: readonly Annotated[]): Value[] => xs.map((x) => strip(x.data))

describe('comprehensions', () => {
  it('table rows are records with every declared column, in declared order', () => {
    const rows = run(emp)
    expect(rows).toEqual(db.emp)
    expect(Object.keys(rows[0] as object)).toEqual(['id', 'name', 'dept', 'salary'])
    // extra properties in the database row are not columns
    expect(run(dept, { ...db, dept: [{ floor: 3, name: 'x', extra: 1 }] })).toEqual([{ name: 'x', floor: 3 }])
  })

  it('for / where / yield / union / values', () => {
    const q = Q.for(emp, (e) => Q.where(Q.eq(e.dept, 'eng'), Q.yield({ n: e.name })))
    expect(run(q)).toEqual([{ n: 'ann' }, { n: 'bob' }])
    expect(run(Q.union(q, Q.values([{ n: 'z' }]), q))).toEqual([{ n: 'ann' }, { n: 'bob' }, { n: 'z' }, { n: 'ann' }, { n: 'bob' }])
    expect(run(Q.yield({}))).toEqual([{}])
    expect(run(Q.where(false, Q.yield(1)))).toEqual([])
  })

  it('where drops null conditions', () => {
    // cy's dept is null: eq(null, 'eng') is null, and not(null) is null
    expect(run(Q.for(emp, (e) => Q.where(Q.not(Q.eq(e.dept, 'eng')), Q.yield(e.name))))).toEqual([])
  })

  it('nested collections evaluate to arrays and can be iterated', () => {
    const nested = Q.for(emp, (e) =>
      Q.yield({ name: e.name, tasks: Q.for(task, (k) => Q.where(Q.eq(k.employee, e.name), Q.yield(k.task))) }),
    )
    expect(run(nested)).toEqual([
      { name: 'ann', tasks: ['build', 'test'] },
      { name: 'bob', tasks: ['build'] },
      { name: 'cy', tasks: [] },
    ])
    const flat = Q.for(nested, (r) => Q.for(r.tasks, (k) => Q.yield(Q.concat(r.name, ':', k))))
    expect(run(flat)).toEqual(['ann:build', 'ann:test', 'bob:build'])
  })

  it('runtime errors', () => {
    expect(() => run(Q.for(emp, (e) => Q.yield((e as unknown as { nope: unknown }).nope)))).toThrow(/unknown field `nope`/)
    const v: ast.Var = { id: -1, hint: 'ghost' }
    expect(() => evaluate({ kind: 'yield', value: { kind: 'var', v } }, db)).toThrow(OracleError)
    expect(() => val(Q.add(1 as number, 'x' as unknown as number))).toThrow(OracleError)
    expect(() => val(Q.lt(1 as never, 'a' as never))).toThrow(OracleError)
    expect(() => run(emp, { ...db, emp: [{ id: 1.5, name: 'a', dept: null, salary: null }] })).toThrow(/not a int/)
    expect(() => run(emp, { ...db, emp: [{ id: 1, name: 'a', dept: null }] })).toThrow(/missing value/)
    expect(() => run(emp, {})).toThrow(/no table/)
  })
})

describe('scalars', () => {
  it('Kleene and / or / not', () => {
    const N = null as boolean | null
    expect(val(Q.and(true, N))).toBe(null)
    expect(val(Q.and(false, N))).toBe(false)
    expect(val(Q.or(true, N))).toBe(true)
    expect(val(Q.or(false, N))).toBe(null)
    expect(val(Q.and())).toBe(true)
    expect(val(Q.or())).toBe(false)
    expect(val(Q.not(N))).toBe(null)
    expect(val(Q.and(true, true, false))).toBe(false)
  })

  it('comparisons: nulls, numbers, booleans, code points', () => {
    expect(val(Q.eq(1, null as number | null))).toBe(null)
    expect(val(Q.eq(2, 2.0))).toBe(true)
    expect(val(Q.lt(1, 1.5))).toBe(true)
    expect(val(Q.lt(false, true))).toBe(true)
    // UTF-16 code units would put the surrogate pair (0xD83D...) before U+FFFF
    expect('\uFFFF' < '😀').toBe(false)
    expect(val(Q.lt('\uFFFF', '😀'))).toBe(true)
    expect(scalarCompare('\uFFFF', '😀')).toBe(-1)
    expect(scalarCompare('😀', '\uFFFF')).toBe(1)
    expect(scalarCompare('ab', 'abc')).toBe(-1)
    expect(scalarCompare('B', 'a')).toBe(-1)
    expect(scalarCompare('', '')).toBe(0)
    expect(() => scalarCompare(1, '1')).toThrow(OracleError)
  })

  it('arithmetic', () => {
    expect(val(Q.add(1, null as number | null))).toBe(null)
    expect(val(Q.div(7, 2))).toBe(3.5)
    expect(val(Q.div(7, 0))).toBe(null)
    expect(val(Q.mod(-7, 3))).toBe(-1)
    expect(val(Q.mod(7, -3))).toBe(1)
    expect(val(Q.mod(7, 0))).toBe(null)
    expect(Object.is(val(Q.mod(-4, 2)), 0)).toBe(true)
    expect(Object.is(val(Q.neg(0)), 0)).toBe(true)
    expect(val(Q.abs(-2.5))).toBe(2.5)
    expect(() => val(Q.mod(7.5, 2))).toThrow(OracleError)
  })

  it('strings', () => {
    expect(val(Q.concat('a', 'b', 'c'))).toBe('abc')
    expect(val(Q.concat('a', null as string | null))).toBe(null)
    expect(val(Q.upper('straße é z'))).toBe('STRAßE é Z')
    expect(val(Q.lower('ÀBC'))).toBe('Àbc')
    expect(val(Q.length('a😀b'))).toBe(3)
  })

  it('like: %, _, escapes, code points, case', () => {
    expect(val(Q.like('50%', '50\\%'))).toBe(true)
    expect(val(Q.like('500', '50\\%'))).toBe(false)
    expect(val(Q.like('500', '50%'))).toBe(true)
    expect(val(Q.like('a_c', 'a\\_c'))).toBe(true)
    expect(val(Q.like('abc', 'a\\_c'))).toBe(false)
    expect(val(Q.like('a\\b', 'a\\\\b'))).toBe(true)
    expect(val(Q.like('😀', '_'))).toBe(true)
    expect(val(Q.like('x😀y', 'x_y'))).toBe(true)
    expect(val(Q.like('ABC', 'abc'))).toBe(false)
    expect(val(Q.like('abc', 'b'))).toBe(false)
    expect(val(Q.like('abc', '%b%'))).toBe(true)
    expect(val(Q.like('', '%'))).toBe(true)
    expect(val(Q.like('', '_'))).toBe(false)
    expect(val(Q.like('a\nb', 'a_b'))).toBe(true)
    expect(val(Q.like(null as string | null, '%'))).toBe(null)
    // A pattern ending in a lone escape: NULL (the compiler rejects such constant patterns).
    expect(val(Q.like('a', Q.concat('a\\')))).toBe(null)
  })

  it('in with nulls', () => {
    const N = null as number | null
    expect(val(Q.in(1, []))).toBe(false)
    expect(val(Q.in(N, []))).toBe(false)
    expect(val(Q.in(N, [1]))).toBe(null)
    expect(val(Q.in(1, [N, 1]))).toBe(true)
    expect(val(Q.in(2, [N, 1]))).toBe(null)
    expect(val(Q.in(2, [1, 3]))).toBe(false)
  })

  it('isNull, isNotNull, coalesce', () => {
    expect(val(Q.isNull(null))).toBe(true)
    expect(val(Q.isNotNull(null))).toBe(false)
    expect(val(Q.isNull(0))).toBe(false)
    expect(val(Q.coalesce(null, 2))).toBe(2)
    expect(val(Q.coalesce(null, null))).toBe(null)
  })
})

describe('exists and aggregates', () => {
  const none = Q.for(emp, (e) => Q.where(false, Q.yield(e.salary)))
  it('aggregates on an empty query', () => {
    expect(val(Q.count(none))).toBe(0)
    expect(val(Q.sum(none))).toBe(null)
    expect(val(Q.avg(none))).toBe(null)
    expect(val(Q.min(none))).toBe(null)
    expect(val(Q.max(none))).toBe(null)
  })
  it('aggregates skip nulls (count does not)', () => {
    const sal = Q.for(emp, (e) => Q.yield(e.salary))
    expect(val(Q.count(sal))).toBe(3)
    expect(val(Q.sum(sal))).toBe(150.5)
    expect(val(Q.avg(sal))).toBe(75.25)
    expect(val(Q.min(sal))).toBe(50.5)
    expect(val(Q.max(emp, (e) => e.name))).toBe('cy')
    expect(val(Q.count(emp))).toBe(3)
    expect(val(Q.sum(Q.values([null as number | null])))).toBe(null)
    expect(val(Q.min(Q.values(['\uFFFF', '😀'])))).toBe('\uFFFF')
  })
  it('exists / empty', () => {
    expect(val(Q.exists(none))).toBe(false)
    expect(val(Q.empty(none))).toBe(true)
    expect(val(Q.exists(emp))).toBe(true)
  })
})

describe('order and limit', () => {
  it('asc: nulls first; desc: nulls last; stable', () => {
    const q = Q.for(emp, (e) => Q.yield({ n: e.name, s: e.salary, d: e.dept }))
    expect(run(Q.orderBy(q, (r) => r.s)).map((r) => (r as { n: string }).n)).toEqual(['bob', 'cy', 'ann'])
    expect(run(Q.orderBy(q, (r) => Q.desc(r.s))).map((r) => (r as { n: string }).n)).toEqual(['ann', 'cy', 'bob'])
    // ties keep their input order
    expect(run(Q.orderBy(q, (r) => Q.desc(r.d))).map((r) => (r as { n: string }).n)).toEqual(['ann', 'bob', 'cy'])
    expect(run(Q.orderBy(q, (r) => [Q.asc(r.d), Q.desc(r.n)])).map((r) => (r as { n: string }).n)).toEqual(['cy', 'bob', 'ann'])
  })
  it('limit and offset', () => {
    const q = Q.orderBy(Q.values([3, 1, 2, 5, 4]), (x) => x)
    expect(run(Q.limit(q, 2, 1))).toEqual([2, 3])
    expect(run(Q.limit(q, 10, 4))).toEqual([5])
    expect(run(Q.limit(q, 0))).toEqual([])
    expect(evaluate({ kind: 'limit', query: q[AST], limit: undefined, offset: 3 }, db)).toEqual([4, 5])
  })
})

describe('lineage nodes in plain evaluation', () => {
  it('linEmpty / linRow / linAppend', () => {
    const v: ast.Var = { id: -10, hint: 'e' }
    const w: ast.Var = { id: -11, hint: 'k' }
    const q: ast.Expr = {
      kind: 'for', v, source: emp[AST],
      body: {
        kind: 'for', v: w, source: task[AST],
        body: {
          kind: 'where',
          cond: { kind: 'op', op: 'eq', args: [{ kind: 'field', target: { kind: 'var', v }, name: 'name' }, { kind: 'field', target: { kind: 'var', v: w }, name: 'employee' }] },
          body: {
            kind: 'yield',
            value: {
              kind: 'record',
              fields: [['lin', { kind: 'linAppend', parts: [{ kind: 'linRow', table: emp.def, row: { kind: 'var', v } }, { kind: 'linEmpty' }, { kind: 'linRow', table: task.def, row: { kind: 'var', v: w } }] }]],
            },
          },
        },
      },
    }
    expect(evaluate(q, db)).toEqual([
      { lin: [{ table: 'emp', key: 1 }, { table: 'task', key: ['ann', 'build'] }] },
      { lin: [{ table: 'emp', key: 1 }, { table: 'task', key: ['ann', 'test'] }] },
      { lin: [{ table: 'emp', key: 2 }, { table: 'task', key: ['bob', 'build'] }] },
    ])
  })
})

describe('lineage', () => {
  it('a table: each row carries its key', () => {
    expect(lin(dept)).toEqual([
      { data: { name: 'eng', floor: 2 }, lineage: [{ table: 'dept', key: 'eng' }] },
      { data: { name: 'ops', floor: 1 }, lineage: [{ table: 'dept', key: 'ops' }] },
    ])
  })

  it('a join: generators in order, outer to inner; where adds nothing', () => {
    const q = Q.for(emp, (e) => Q.for(dept, (d) => Q.where(Q.eq(e.dept, d.name), Q.yield({ e: e.name, f: d.floor }))))
    expect(lin(q)).toEqual([
      { data: { e: 'ann', f: 2 }, lineage: [{ table: 'emp', key: 1 }, { table: 'dept', key: 'eng' }] },
      { data: { e: 'bob', f: 2 }, lineage: [{ table: 'emp', key: 2 }, { table: 'dept', key: 'eng' }] },
    ])
  })

  it('self-join matching the same row twice: the entry appears once, at its first position', () => {
    const q = Q.for(emp, (a) => Q.for(dept, (d) => Q.for(emp, (b) => Q.where(Q.and(Q.eq(a.id, 1), Q.eq(d.name, 'eng'), Q.eq(a.dept, b.dept)), Q.yield([a.id, b.id] as const)))))
    const r = lin(q)
    expect(r.map((x) => x.lineage)).toEqual([
      [{ table: 'emp', key: 1 }, { table: 'dept', key: 'eng' }],
      [{ table: 'emp', key: 1 }, { table: 'dept', key: 'eng' }, { table: 'emp', key: 2 }],
    ])
  })

  it('composite keys are arrays in declared key order; dedup compares them deeply', () => {
    const q = Q.for(task, (k1) => Q.for(task, (k2) => Q.where(Q.and(Q.eq(k1.employee, k2.employee), Q.eq(k1.task, k2.task), Q.eq(k1.employee, 'bob')), Q.yield(k1.task))))
    expect(lin(q)).toEqual([{ data: 'build', lineage: [{ table: 'task', key: ['bob', 'build'] }] }])
  })

  it('untracked tables contribute nothing; tracked keyless tables are an error', () => {
    const q = Q.for(audit, (a) => Q.for(emp, (e) => Q.where(Q.eq(a.id, e.id), Q.yield(a.note))))
    expect(lin(q)).toEqual([
      { data: 'x', lineage: [{ table: 'emp', key: 1 }] },
      { data: 'y', lineage: [{ table: 'emp', key: 2 }] },
    ])
    expect(() => lin(Q.for(keyless, (k) => Q.yield(k.a)))).toThrow(OracleError)
    // even when no row would be produced
    expect(() => lin(Q.where(false, keyless))).toThrow(OracleError)
    // but fine in plain evaluation, and inside exists/agg (plain semantics)
    expect(run(Q.for(keyless, (k) => Q.yield(k.a)))).toEqual(['k'])
    expect(lin(Q.yield(Q.count(keyless)))).toEqual([{ data: 1, lineage: [] }])
  })

  it('exists and aggregates add nothing', () => {
    const q = Q.for(emp, (e) => Q.where(Q.exists(Q.for(task, (k) => Q.where(Q.eq(k.employee, e.name), Q.yield(k)))), Q.yield({ n: e.name, c: Q.count(Q.for(task, (k) => Q.where(Q.eq(k.employee, e.name), Q.yield(k)))) })))
    expect(lin(q)).toEqual([
      { data: { n: 'ann', c: 2 }, lineage: [{ table: 'emp', key: 1 }] },
      { data: { n: 'bob', c: 1 }, lineage: [{ table: 'emp', key: 2 }] },
    ])
  })

  it('union: each part keeps its own lineage; yield / values carry none', () => {
    const q = Q.union(Q.for(task, (k) => Q.yield(k.employee)), Q.for(emp, (e) => Q.where(Q.eq(e.id, 1), Q.yield(e.name))), Q.values(['ann']), Q.yield('ann'))
    expect(lin(q)).toEqual([
      { data: 'ann', lineage: [{ table: 'task', key: ['ann', 'build'] }] },
      { data: 'ann', lineage: [{ table: 'task', key: ['ann', 'test'] }] },
      { data: 'bob', lineage: [{ table: 'task', key: ['bob', 'build'] }] },
      { data: 'ann', lineage: [{ table: 'emp', key: 1 }] },
      { data: 'ann', lineage: [] },
      { data: 'ann', lineage: [] },
    ])
  })

  it('nested collections: inner elements carry their own lineage; for over them takes it along', () => {
    const nested = Q.for(emp, (e) =>
      Q.where(Q.eq(e.dept, 'eng'), Q.yield({ name: e.name, tasks: Q.for(task, (k) => Q.where(Q.eq(k.employee, e.name), Q.yield(k.task))) })),
    )
    expect(lin(nested)).toEqual([
      {
        data: { name: 'ann', tasks: [{ data: 'build', lineage: [{ table: 'task', key: ['ann', 'build'] }] }, { data: 'test', lineage: [{ table: 'task', key: ['ann', 'test'] }] }] },
        lineage: [{ table: 'emp', key: 1 }],
      },
      { data: { name: 'bob', tasks: [{ data: 'build', lineage: [{ table: 'task', key: ['bob', 'build'] }] }] }, lineage: [{ table: 'emp', key: 2 }] },
    ])
    const flat = Q.for(nested, (r) => Q.for(r.tasks, (k) => Q.where(Q.ne(k, 'test'), Q.yield({ n: r.name, k, c: Q.count(r.tasks) }))))
    expect(lin(flat)).toEqual([
      { data: { n: 'ann', k: 'build', c: 2 }, lineage: [{ table: 'emp', key: 1 }, { table: 'task', key: ['ann', 'build'] }] },
      { data: { n: 'bob', k: 'build', c: 1 }, lineage: [{ table: 'emp', key: 2 }, { table: 'task', key: ['bob', 'build'] }] },
    ])
    // a yielded row variable keeps nested data as annotated data
    const again = Q.for(nested, (r) => Q.yield(r))
    expect(lin(again)).toEqual(lin(nested))
  })

  it('for over a literal collection: elements carry no lineage', () => {
    const q = Q.for(Q.values([1, 2]), (x) => Q.for(emp, (e) => Q.where(Q.eq(e.id, x), Q.yield(e.name))))
    expect(lin(q)).toEqual([
      { data: 'ann', lineage: [{ table: 'emp', key: 1 }] },
      { data: 'bob', lineage: [{ table: 'emp', key: 2 }] },
    ])
  })

  it('order / limit apply to annotated elements by their data', () => {
    const q = Q.limit(Q.orderBy(Q.for(emp, (e) => Q.yield({ n: e.name, s: e.salary })), (r) => Q.desc(r.s)), 2)
    expect(lin(q)).toEqual([
      { data: { n: 'ann', s: 100 }, lineage: [{ table: 'emp', key: 1 }] },
      { data: { n: 'cy', s: 50.5 }, lineage: [{ table: 'emp', key: 3 }] },
    ])
  })

  it('stripping the annotations gives exactly the plain bag', () => {
    const queries = [
      Q.for(emp, (e) => Q.yield({ name: e.name, tasks: Q.for(task, (k) => Q.where(Q.eq(k.employee, e.name), Q.yield({ t: k.task, sub: Q.values([1, 2]) }))) })),
      Q.for(emp, (a) => Q.for(emp, (b) => Q.yield([a.id, b.id] as const))),
      Q.union(Q.for(audit, (a) => Q.yield(a.note)), Q.for(dept, (d) => Q.yield(d.name))),
    ]
    for (const q of queries) expect(stripAll(lin(q))).toEqual(run(q))
  })
})

describe('oracle: grouping and distinct (SQL semantics)', () => {
  it('NULL keys form one group; the group holds the rows with that key', () => {
    expect(run(Q.for(Q.groupBy(emp, (e) => e.dept), (g) => Q.yield({ d: g.key, ids: Q.for(g.group, (e) => Q.yield(e.id)) })))).toEqual([
      { d: 'eng', ids: [1, 2] },
      { d: null, ids: [3] },
    ])
  })
  it('record keys compare by every field; no rows give no group, even with an empty key', () => {
    expect(run(Q.for(Q.groupBy(task, (t) => ({ e: t.employee })), (g) => Q.yield({ e: g.key.e, n: Q.count(g.group) })))).toEqual([{ e: 'ann', n: 2 }, { e: 'bob', n: 1 }])
    expect(run(Q.groupBy(Q.for(emp, (e) => Q.where(false, Q.yield(e))), () => ({})))).toEqual([])
  })
  it('distinct keeps each element once; count of distinct scalars does not count NULL', () => {
    expect(run(Q.distinct(Q.for(emp, (e) => Q.yield(e.dept))))).toEqual(['eng', null])
    expect(val(Q.count(Q.distinct(Q.for(emp, (e) => Q.yield(e.dept)))))).toBe(1)
    expect(val(Q.count(Q.distinct(Q.for(emp, (e) => Q.yield({ d: e.dept })))))).toBe(2)
  })
  it("a group's lineage is every entry of its rows, by table then key; a distinct row's the union of the merged rows'", () => {
    expect(lin(Q.for(Q.groupBy(task, (t) => t.task), (g) => Q.yield(g.key)))).toEqual([
      { data: 'build', lineage: [{ table: 'task', key: ['ann', 'build'] }, { table: 'task', key: ['bob', 'build'] }] },
      { data: 'test', lineage: [{ table: 'task', key: ['ann', 'test'] }] },
    ])
    expect(lin(Q.distinct(Q.for(emp, (e) => Q.yield(e.dept))))).toEqual([
      { data: 'eng', lineage: [{ table: 'emp', key: 1 }, { table: 'emp', key: 2 }] },
      { data: null, lineage: [{ table: 'emp', key: 3 }] },
    ])
  })
  it('a key holding a collection is an error', () => {
    expect(() => run(Q.groupBy(emp, (e) => ({ ts: Q.for(task, (t) => Q.where(Q.eq(t.employee, e.name), Q.yield(t.task))) })))).toThrow(OracleError)
  })
})
