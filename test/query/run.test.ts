import * as t from 'io-ts'
import { sql } from 'kysely'
import { beforeAll, expect, test } from 'vitest'
import { createTable, insertRows, LineageQueryError, Q, run, table } from '../../src/index.js'
import { eachDialect } from '../support/db.js'
import { departments, data, employees, tasks, tasksOf } from './fixtures.js'

const sorted = <T>(xs: T[]) => [...xs].sort((a, b) => (JSON.stringify(a) < JSON.stringify(b) ? -1 : 1))

eachDialect('run', (get) => {
  beforeAll(async () => {
    const { db } = get()
    for (const tb of [departments, employees, tasks]) await createTable(db, tb)
    await insertRows(db, departments, data.departments)
    await insertRows(db, employees, data.employees)
    await insertRows(db, tasks, data.tasks)
  })

  test('booleans come back as booleans, nullable columns as null', async () => {
    const rows = await run(get().db, Q.for(employees, (e) => Q.yield({ n: e.name, b: e.boss, k: e.nick, c: Q.gt(e.salary, 1000) })))
    expect(sorted(rows)).toEqual([
      { n: 'alan', b: true, k: 'al', c: false },
      { n: 'bert', b: false, k: null, c: true },
      { n: 'cora', b: false, k: 'o\'hara "c"', c: true },
    ])
  })

  test('nested collections come back as arrays, empty ones as []', async () => {
    const q = Q.for(departments, (d) => Q.yield({ d: d.name, emps: Q.for(employees, (e) => Q.where(Q.eq(e.dept, d.name), Q.yield({ n: e.name, boss: e.boss, tasks: tasksOf(e) }))) }))
    const rows = (await run(get().db, q)).map((r) => ({ ...r, emps: sorted(r.emps.map((e) => ({ ...e, tasks: e.tasks.sort() }))) }))
    expect(sorted(rows)).toEqual([
      { d: 'Empty', emps: [] },
      { d: 'Research', emps: [{ n: 'cora', boss: false, tasks: ['call'] }] },
      { d: 'Sales', emps: [{ n: 'alan', boss: true, tasks: ['abstract', 'buy'] }, { n: 'bert', boss: false, tasks: [] }] },
    ])
  })

  test('aggregates as values, three-valued logic in conditions', async () => {
    const [row] = await run(get().db, Q.yield({ n: Q.count(employees), s: Q.sum(employees, (e) => e.salary), mx: Q.max(tasks, (t) => t.task), none: Q.min(Q.values<number>([]), (x) => x) }))
    expect(row).toEqual({ n: 3, s: 2060700, mx: 'call', none: null })
    // nick is null for bert: `nick <> 'al'` is null, so bert is in neither result
    const ne = await run(get().db, Q.for(employees, (e) => Q.where(Q.ne(e.nick, 'al'), Q.yield(e.name))))
    const notNe = await run(get().db, Q.for(employees, (e) => Q.where(Q.not(Q.ne(e.nick, 'al')), Q.yield(e.name))))
    expect([ne, notNe]).toEqual([['cora'], ['alan']])
  })

  test('ordering and limits', async () => {
    const q = Q.for(employees, (e) => Q.yield({ n: e.name, k: e.nick })).orderBy((r) => r.k).limit(2, 0)
    expect(await run(get().db, q)).toEqual([{ n: 'bert', k: null }, { n: 'alan', k: 'al' }])
  })

  test('a row that does not match its codec is an error naming table, column and value', async () => {
    const { db } = get()
    const strict = table('employees', { id: t.Int, dept: t.keyof({ Sales: null }), name: t.string, salary: t.Int, nick: t.union([t.string, t.null]), boss: t.boolean })
    const err = await run(db, Q.for(strict, (e) => Q.yield(e.dept))).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(LineageQueryError)
    expect((err as LineageQueryError).code).toBe('decode')
    expect((err as LineageQueryError).message).toContain('column `dept` of table `employees`: value "Research" does not match codec')
  })

  test('a non-integer in a t.Int column is an error, not a silent cast', async () => {
    const { db } = get()
    await sql`create table odd (id integer primary key, v double precision)`.execute(db)
    await sql`insert into odd (id, v) values (1, 1.5)`.execute(db)
    const odd = table('odd', { id: t.Int, v: t.Int })
    const err = await run(db, Q.for(odd, (o) => Q.yield(o.v))).catch((e: unknown) => e)
    expect((err as LineageQueryError).code).toBe('decode')
    expect((err as LineageQueryError).message).toContain('column `v` of table `odd`: value 1.5')
  })
})
