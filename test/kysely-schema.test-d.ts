import * as t from 'io-ts'
import type { Insertable, Kysely, Selectable } from 'kysely'
import { describe, expectTypeOf, test } from 'vitest'
import { defineSchema, openStore, run, Q, table, type KyselySchema } from '../src/index.js'

const departments = table('departments', { id: t.Int, name: t.string })
const employees = table('employees', { id: t.Int, dept: t.string, name: t.string, salary: t.number, nick: t.union([t.string, t.null]), boss: t.boolean })
const schema = defineSchema(departments, employees)

/** Kysely's Insertable is an intersection; flatten it to compare. */
type Flat<T> = { [K in keyof T]: T[K] }

type Lite = KyselySchema<[typeof departments, typeof employees]>
type Pg = KyselySchema<typeof schema, 'postgres'>

describe('KyselySchema', () => {
  test('one Kysely table per declaration, by table name', () => {
    expectTypeOf<keyof Lite>().toEqualTypeOf<'departments' | 'employees'>()
    expectTypeOf<keyof Pg>().toEqualTypeOf<'departments' | 'employees'>()
  })

  test('SQLite: selected and inserted values as better-sqlite3 has them (booleans are 0/1)', () => {
    expectTypeOf<Selectable<Lite['employees']>>().toEqualTypeOf<{ id: number; dept: string; name: string; salary: number; nick: string | null; boss: number }>()
    expectTypeOf<Flat<Insertable<Lite['employees']>>>().toEqualTypeOf<{ id: number; dept: string; name: string; salary: number; nick?: string | null | undefined; boss: number }>()
  })

  test('PostgreSQL: t.Int is bigint (pg selects it as a string), booleans are booleans', () => {
    expectTypeOf<Selectable<Pg['employees']>>().toEqualTypeOf<{ id: string; dept: string; name: string; salary: number; nick: string | null; boss: boolean }>()
    expectTypeOf<Flat<Insertable<Pg['employees']>>>().toEqualTypeOf<{ id: number | bigint | string; dept: string; name: string; salary: number; nick?: string | null | undefined; boss: boolean }>()
  })

  test('typed writes are checked against the declaration, and the same instance runs DSL queries', async () => {
    const db = {} as Kysely<Lite>
    db.insertInto('employees').values({ id: 1, dept: 'Sales', name: 'alan', salary: 700, boss: 0 })
    // @ts-expect-error a column the declaration does not have
    db.insertInto('employees').values({ id: 1, dept: 'Sales', name: 'alan', salary: 700, boss: 0, age: 3 })
    // @ts-expect-error a string where the declaration says t.Int
    db.insertInto('departments').values({ id: 'one', name: 'Sales' })
    // @ts-expect-error a table that is not declared
    db.insertInto('tasks').values({ id: 1 })
    expectTypeOf(await run(db, Q.for(employees, (e) => Q.yield(e.name)))).toEqualTypeOf<string[]>()
    await openStore(db)
  })

  test('derived tables: row types (numbers are number | string on PostgreSQL), lq_key is a string', async () => {
    const store = await openStore({} as Kysely<any>)
    const upper = store.derive({ name: 'upper', from: departments, output: { n: t.string, len: t.number }, fn: (d) => ({ n: d.name.toUpperCase(), len: d.name.length }) })
    type S = KyselySchema<[typeof upper]>
    expectTypeOf<Selectable<S['upper']>>().toEqualTypeOf<{ n: string; len: number; lq_key: string }>()
    type P = KyselySchema<[typeof upper], 'postgres'>
    expectTypeOf<Selectable<P['upper']>>().toEqualTypeOf<{ n: string; len: number | string; lq_key: string }>()
  })
})
