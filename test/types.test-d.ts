import * as t from 'io-ts'
import type { Kysely } from 'kysely'
import { describe, expectTypeOf, test } from 'vitest'
import { lineage, Q, run, table, type ElemOf, type Expr, type KeyOf, type LineageEntry, type Query } from '../src/index.js'

const departments = table('departments', { id: t.Int, name: t.string })
const employees = table('employees', { id: t.Int, dept: t.string, name: t.string, salary: t.number, nick: t.union([t.string, t.null]) })
const pairs = table('pairs', { a: t.string, b: t.Int, v: t.boolean }, { key: ['a', 'b'] })
const notes = table('notes', { id: t.Int, text: t.string }, { lineage: false })
declare const db: Kysely<any>

describe('query types', () => {
  test('a yielded record is the element type, and run resolves to it', async () => {
    const q = Q.for(employees, (e) => Q.yield({ n: e.name, s: e.salary }))
    expectTypeOf(q).toExtend<Query<{ n: string; s: number }>>()
    expectTypeOf<ElemOf<typeof q>>().toEqualTypeOf<{ n: string; s: number }>()
    expectTypeOf(await run(db, q)).toEqualTypeOf<{ n: string; s: number }[]>()
  })

  test('a nested query field becomes an array of its element type', async () => {
    const q = Q.for(departments, (d) =>
      Q.yield({ dpt: d.name, emps: Q.for(employees, (e) => Q.where(Q.eq(d.name, e.dept), Q.yield({ name: e.name, nick: e.nick }))) }),
    )
    expectTypeOf(await run(db, q)).toEqualTypeOf<{ dpt: string; emps: { name: string; nick: string | null }[] }[]>()
  })

  test('nullable columns, scalars, constants and {} ', async () => {
    expectTypeOf(await run(db, Q.for(employees, (e) => Q.yield(e.nick)))).toEqualTypeOf<(string | null)[]>()
    expectTypeOf(await run(db, Q.yield({ a: 1, b: 'x', c: true, d: null }))).toEqualTypeOf<{ a: number; b: string; c: boolean; d: null }[]>()
    expectTypeOf(await run(db, Q.yield({}))).toEqualTypeOf<{}[]>()
    expectTypeOf(await run(db, Q.values(['buy', 'sell']))).toEqualTypeOf<string[]>()
  })

  test('operators are typed, with null propagation', () => {
    Q.for(employees, (e) => {
      expectTypeOf(Q.eq(e.name, 'x')).toEqualTypeOf<Expr<boolean>>()
      expectTypeOf(Q.eq(e.nick, 'x')).toEqualTypeOf<Expr<boolean | null>>()
      expectTypeOf(Q.add(e.salary, 1)).toEqualTypeOf<Expr<number>>()
      expectTypeOf(Q.count(employees)).toEqualTypeOf<Expr<number>>()
      expectTypeOf(Q.sum(employees, (x) => x.salary)).toEqualTypeOf<Expr<number | null>>()
      expectTypeOf(Q.coalesce(e.nick, e.name)).toEqualTypeOf<Expr<string>>()
      return Q.yield(e)
    })
  })

  test('a misspelt column, or comparing different types, does not compile', () => {
    // @ts-expect-error salry is not a column of employees
    Q.for(employees, (e) => Q.yield(e.salry))
    // @ts-expect-error a string compared with a number
    Q.for(employees, (e) => Q.where(Q.eq(e.name, 5), Q.yield(e)))
    // @ts-expect-error Q.where needs a condition
    Q.for(employees, (e) => Q.where(e.name, Q.yield(e)))
  })

  test('a for over a nested collection field sees its element type', async () => {
    const depts = Q.for(departments, (d) => Q.yield({ name: d.name, employees: Q.for(employees, (e) => Q.where(Q.eq(d.name, e.dept), Q.yield({ n: e.name, s: e.salary }))) }))
    const q = Q.for(depts, (d) => Q.for(d.employees, (o) => Q.yield({ d: d.name, o: o.n, s: o.s })))
    expectTypeOf(await run(db, q)).toEqualTypeOf<{ d: string; o: string; s: number }[]>()
  })
})

describe('lineage types', () => {
  test('entries are typed from the declared keys', async () => {
    const q = Q.for(employees, (e) => Q.for(pairs, (p) => Q.yield({ n: e.name, v: p.v })))
    const rows = await run(db, lineage(q))
    expectTypeOf(rows).toEqualTypeOf<{ data: { n: string; v: boolean }; lineage: ({ table: 'employees'; key: number } | { table: 'pairs'; key: [string, number] })[] }[]>()
  })

  test('untracked tables add no entry type; nested elements are annotated', async () => {
    const q = Q.for(notes, (n) => Q.yield({ t: n.text, emps: Q.for(employees, (e) => Q.yield(e.name)) }))
    const rows = await run(db, lineage(q))
    expectTypeOf(rows).toEqualTypeOf<{ data: { t: string; emps: { data: string; lineage: { table: 'employees'; key: number }[] }[] }; lineage: never[] }[]>()
  })
})

describe('Q.let types', () => {
  test('v has the view type of the value: an expression, a record of them, a query', () => {
    Q.let(Q.count(employees), (n) => {
      expectTypeOf(n).toEqualTypeOf<Expr<number>>()
      return Q.yield(n)
    })
    Q.let({ a: Q.max(employees, (e) => e.name), b: 1 }, (r) => {
      expectTypeOf(r.a).toEqualTypeOf<Expr<string | null>>()
      expectTypeOf(r.b).toEqualTypeOf<Expr<number>>()
      return Q.yield(r.a)
    })
    const q = Q.let(Q.for(employees, (e) => Q.yield({ n: e.name })), (es) => Q.for(es, (e) => Q.yield(e.n)))
    expectTypeOf<ElemOf<typeof q>>().toEqualTypeOf<string>()
    const l = lineage(q)
    expectTypeOf<ElemOf<typeof l>['lineage'][number]>().toEqualTypeOf<{ readonly table: 'employees'; readonly key: number }>()
  })
})

describe('grouping types', () => {
  test('g.key has the key type (scalar or record), g.group is a query of the source row type', async () => {
    Q.for(Q.groupBy(employees, (e) => e.dept), (g) => {
      expectTypeOf(g.key).toEqualTypeOf<Expr<string>>()
      expectTypeOf(g.group).toExtend<Query<any, any>>()
      expectTypeOf<ElemOf<typeof g.group>>().toEqualTypeOf<{ id: number; dept: string; name: string; salary: number; nick: string | null }>()
      expectTypeOf<KeyOf<typeof g.group>>().toEqualTypeOf<LineageEntry<'employees', number>>()
      return Q.yield(g.key)
    })
    Q.for(Q.groupBy(employees, (e) => ({ d: e.dept, n: e.nick })), (g) => {
      expectTypeOf(g.key.d).toEqualTypeOf<Expr<string>>()
      expectTypeOf(g.key.n).toEqualTypeOf<Expr<string | null>>()
      return Q.yield(g.key)
    })
    const q = Q.for(Q.groupBy(employees, (e) => ({ d: e.dept, n: e.nick })), (g) =>
      Q.where(Q.gt(Q.count(g.group), 1), Q.yield({ dept: g.key.d, total: Q.sum(g.group, (e) => e.salary), names: Q.for(g.group, (e) => Q.yield(e.name)) })),
    )
    expectTypeOf(await run(db, q)).toEqualTypeOf<{ dept: string; total: number | null; names: string[] }[]>()
  })

  test('a grouped query yielded as is: { key, group } with the group as an array of rows', async () => {
    const rows = await run(db, Q.groupBy(departments, (d) => d.name))
    expectTypeOf(rows).toEqualTypeOf<{ key: string; group: { id: number; name: string }[] }[]>()
  })

  test('distinct keeps the element type; count of distinct is a number', async () => {
    const q = Q.distinct(Q.for(employees, (e) => Q.yield({ d: e.dept, n: e.nick })))
    expectTypeOf(await run(db, q)).toEqualTypeOf<{ d: string; n: string | null }[]>()
    expectTypeOf(Q.count(Q.distinct(Q.for(employees, (e) => Q.yield(e.nick))))).toEqualTypeOf<Expr<number>>()
  })

  test('the lineage of a grouped row has the entry type of the grouped table', async () => {
    const rows = await run(db, lineage(Q.for(Q.groupBy(employees, (e) => e.dept), (g) => Q.yield({ d: g.key, n: Q.count(g.group) }))))
    expectTypeOf(rows).toEqualTypeOf<{ data: { d: string; n: number }; lineage: { table: 'employees'; key: number }[] }[]>()
  })
})
