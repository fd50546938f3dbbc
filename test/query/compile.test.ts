import { describe, expect, test } from 'vitest'
import { compile, LineageQueryError, Q, type AnyQuery } from '../../src/index.js'
import { departments, employees, tasks, tasksOf } from './fixtures.js'

const sqlOf = (q: AnyQuery, d: 'sqlite' | 'postgres' = 'sqlite') => {
  const c = compile(q, d)
  expect(c.statements).toHaveLength(1)
  return c.statements[0]!
}

describe('compile: SQL text per dialect', () => {
  test('a filter: parameters bound on SQLite, small constants literals on PostgreSQL (cast as parameters are), identifiers quoted', () => {
    const q = Q.for(employees, (e) => Q.where(Q.gt(e.salary, 1000), Q.yield({ n: e.name })))
    expect(sqlOf(q, 'sqlite')).toEqual({ sql: 'select "e0"."name" as "n" from "employees" as "e0" where ("e0"."salary" > ?)', parameters: [1000] })
    expect(sqlOf(q, 'postgres')).toEqual({ sql: 'select "e0"."name" as "n" from "employees" as "e0" where ("e0"."salary" > cast(1000 as bigint))', parameters: [] })
  })

  test('PostgreSQL binds the constants a literal could not carry as plainly: quotes, backslashes, non-ASCII, long text, -0, unsafe integers', () => {
    const pg = (x: string | number) => sqlOf(Q.for(employees, (e) => Q.where(Q.eq(e.name, x as string), Q.yield({ n: e.name }))), 'postgres')
    expect(pg('Brand#12 AIR REG %x_')).toEqual({ sql: 'select "e0"."name" as "n" from "employees" as "e0" where ("e0"."name" = cast(\'Brand#12 AIR REG %x_\' as text))', parameters: [] })
    for (const s of ["o'hara", 'a\\b', 'caf\u00e9', 'x'.repeat(65), 'tab\there']) {
      expect(pg(s).parameters).toEqual([s])
      expect(pg(s).sql).toContain('cast($1 as text)')
    }
    const num = (x: number) => sqlOf(Q.for(employees, (e) => Q.where(Q.eq(e.salary, x), Q.yield({ n: e.name }))), 'postgres')
    expect(num(-5).sql).toContain('cast(-5 as bigint)')
    expect(num(2.5).sql).toContain('cast(2.5 as double precision)')
    expect(num(-0).parameters).toEqual([-0])
    expect(num(2 ** 60).parameters).toEqual([2 ** 60])
  })

  test('and/or are explicit and parenthesised: and(a, or(b, c)) never becomes a and b or c', () => {
    const q = Q.for(employees, (e) => Q.where(Q.and(Q.eq(e.dept, 'x'), Q.or(Q.gt(e.salary, 1), Q.lt(e.salary, 0))), Q.yield(e.id)))
    expect(sqlOf(q).sql).toContain('where (("e0"."dept" = ?) and (("e0"."salary" > ?) or ("e0"."salary" < ?)))')
  })

  test('a string value is a parameter, never spliced into the SQL', () => {
    const evil = "x'; drop table employees; --"
    const s = sqlOf(Q.for(employees, (e) => Q.where(Q.eq(e.name, evil), Q.yield(e.id))))
    expect(s.sql).not.toContain('drop table')
    expect(s.parameters).toEqual([evil])
  })

  test('a join written with helper functions and a run-time built predicate is one flat statement', () => {
    const conds = [(e: any) => Q.gt(e.salary, 10), (e: any) => Q.ne(e.name, 'bob')]
    const pred = (e: any) => Q.and(...conds.map((c) => c(e)))
    const inDept = (d: any) => Q.for(employees, (e) => Q.where(Q.and(Q.eq(e.dept, d.name), pred(e)), Q.yield(e)))
    const q = Q.for(departments, (d) => Q.for(inDept(d), (e) => Q.yield({ d: d.name, e: e.name })))
    expect(sqlOf(q).sql).toBe(
      'select "d0"."name" as "d", "e1"."name" as "e" from "departments" as "d0", "employees" as "e1" where (("e1"."dept" = "d0"."name") and (("e1"."salary" > ?) and ("e1"."name" <> ?)))',
    )
  })

  test('for over a union distributes into a union of flat branches', () => {
    const names = Q.union(Q.for(employees, (e) => Q.yield({ n: e.name })), Q.for(tasks, (t) => Q.yield({ n: t.employee })))
    const q = Q.for(names, (x) => Q.where(Q.ne(x.n, ''), Q.yield(x.n)))
    expect(sqlOf(q).sql).toBe(
      'select "e0"."name" as "value" from "employees" as "e0" where ("e0"."name" <> ?) union all select "t1"."employee" as "value" from "tasks" as "t1" where ("t1"."employee" <> ?)',
    )
  })

  test('for over nested intermediate data flattens to a join', () => {
    const depts = Q.for(departments, (d) => Q.yield({ name: d.name, emps: Q.for(employees, (e) => Q.where(Q.eq(d.name, e.dept), Q.yield(e))) }))
    const q = Q.for(depts, (d) => Q.for(d.emps, (o) => Q.where(Q.gt(o.salary, 5), Q.yield({ d: d.name, o: o.name }))))
    expect(sqlOf(q).sql).toBe(
      'select "d0"."name" as "d", "e2"."name" as "o" from "departments" as "d0", "employees" as "e2" where (("d0"."name" = "e2"."dept") and ("e2"."salary" > ?))',
    )
  })

  test('exists inside a condition stays in the one statement', () => {
    const q = Q.for(employees, (e) => Q.where(Q.exists(tasksOf(e)), Q.yield(e.name)))
    expect(sqlOf(q).sql).toBe('select "e0"."name" as "value" from "employees" as "e0" where (exists (select 1 as "one" from "tasks" as "t1" where ("t1"."employee" = "e0"."name") limit 1))')
    expect(sqlOf(q, 'postgres').sql).toBe('select "e0"."name" as "value" from "employees" as "e0" where (exists (select 1 as "one" from "tasks" as "t1" where ("t1"."employee" = "e0"."name")))')
  })

  test('a nested result is one statement with JSON aggregation, on both dialects', () => {
    const q = Q.for(employees, (e) => Q.yield({ b: tasksOf(e), e: e.name }))
    expect(sqlOf(q, 'sqlite').sql).toBe(
      'select (select json_group_array("t1"."task") as "v" from "tasks" as "t1" where ("t1"."employee" = "e0"."name")) as "b", "e0"."name" as "e" from "employees" as "e0"',
    )
    expect(sqlOf(q, 'postgres').sql).toBe(
      'select (select coalesce(json_agg("t1"."task"), json_build_array()) as "v" from "tasks" as "t1" where ("t1"."employee" = "e0"."name")) as "b", "e0"."name" as "e" from "employees" as "e0"',
    )
  })

  test('no generator: yield alone, where over constants, and yield {} all compile', () => {
    expect(sqlOf(Q.yield(1)).sql).toBe('select ? as "value"')
    expect(sqlOf(Q.where(Q.eq(1, 1), Q.yield('a'))).sql).toBe('select ? as "value" where (? = ?)')
    expect(sqlOf(Q.yield({})).sql).toBe('select 1 as "#"')
    expect(sqlOf(Q.where(false, Q.yield(1))).sql).toBe('select 1 as "#" where (1 = 0)')
  })

  test('ordering: NULLs first ascending, last descending; code-point collation on PostgreSQL', () => {
    const q = Q.for(employees, (e) => Q.yield({ n: e.name, s: e.salary })).orderBy((r) => [Q.desc(r.s), r.n]).limit(10, 5)
    expect(sqlOf(q, 'sqlite').sql).toBe('select "e0"."name" as "n", "e0"."salary" as "s" from "employees" as "e0" order by "e0"."salary" desc nulls last, "e0"."name" asc nulls first limit 10 offset 5')
    expect(sqlOf(q, 'postgres').sql).toBe(
      'select "e0"."name" as "n", "e0"."salary" as "s" from "employees" as "e0" order by "e0"."salary" desc nulls last, "e0"."name" collate "C" asc nulls first limit $1 offset $2',
    )
  })

  test('compiling the same query object twice hits the cache', () => {
    const q = Q.for(employees, (e) => Q.yield(e.name))
    expect(compile(q, 'sqlite').statements[0]).toBe(compile(q, 'sqlite').statements[0])
  })
})

describe('compile: errors say what and why', () => {
  const err = (f: () => unknown) => {
    try {
      f()
    } catch (e) {
      expect(e).toBeInstanceOf(LineageQueryError)
      return e as LineageQueryError
    }
    throw new Error('expected an error')
  }

  test('unknown column names the table and lists its columns', () => {
    const e = err(() => compile(Q.for(employees, (e: any) => Q.yield(e.salry)), 'sqlite'))
    expect(e.code).toBe('unknown-column')
    expect(e.message).toBe('table `employees` has no column `salry`; columns: id, dept, name, salary, nick, boss')
  })

  test('a value of the wrong type', () => {
    const e = err(() => compile(Q.for(employees, (e) => Q.where(Q.eq(e.name as any, 5), Q.yield(e))), 'sqlite'))
    expect(e.code).toBe('type')
    expect(e.message).toContain('Q.eq: cannot compare values of different types (operand types: string, int)')
  })

  test('a limit on a generator source that is filtered cannot be compiled, and the message says why', () => {
    const inner = Q.for(employees, (e) => Q.yield(e.name)).orderBy((n) => n).limit(2)
    const e = err(() => compile(Q.for(inner, (n) => Q.where(Q.ne(n, 'x'), Q.yield(n))), 'postgres'))
    expect(e.code).toBe('compile')
    expect(e.message).toContain('Q.limit can only be applied to the outermost query, a nested collection')
    expect(e.message).toContain('the source of Q.for')
  })

  test('union branches of different shapes', () => {
    const e = err(() => compile(Q.union(Q.for(employees, (e) => Q.yield(e.name)), Q.for(employees, (e) => Q.yield(e.salary)) as any), 'sqlite'))
    expect(e.code).toBe('type')
    expect(e.message).toContain('union branches disagree')
  })

  test('mod needs integers; like needs a string pattern; an unknown dialect is rejected', () => {
    expect(err(() => compile(Q.yield(Q.mod(1.5, 2)), 'sqlite')).message).toContain('integer operands')
    expect(err(() => compile(Q.for(employees, (e) => Q.where(Q.like(e.name, e.salary as any), Q.yield(e))), 'sqlite')).message).toContain('strings')
    expect(err(() => compile(Q.yield(1), 'mysql' as any)).code).toBe('dialect')
    expect(err(() => Q.yield(Number.NaN)).code).toBe('argument')
    expect(err(() => Q.for(undefined as any, (x) => Q.yield(x))).code).toBe('argument')
  })
})
