/** defineSchema / createTables / KyselySchema at run time, on both dialects (types: kysely-schema.test-d.ts). */
import * as t from 'io-ts'
import type { Kysely } from 'kysely'
import { describe, expect, it } from 'vitest'
import { createTables, defineSchema, Q, run, table, type KyselySchema } from '../src/index.js'
import { eachDialect } from './support/db.js'

const departments = table('departments', { id: t.Int, name: t.string })
const employees = table('employees', { id: t.Int, dept: t.string, name: t.string, nick: t.union([t.string, t.null]), boss: t.boolean })
const schema = defineSchema(departments, employees)

describe('defineSchema', () => {
  it('keeps the tables in order and rejects a name declared twice', () => {
    expect(schema.tables.map((x) => x.name)).toEqual(['departments', 'employees'])
    expect(() => defineSchema(departments, table('departments', { id: t.Int }))).toThrow('defineSchema: table `departments` is declared twice')
    expect(() => defineSchema({ name: 'x' } as never)).toThrow('defineSchema: argument 0 is not a table declaration (table(...)), got {"name":"x"}')
  })
})

eachDialect('KyselySchema: typed Kysely writes and DSL reads on the same declarations', (get) => {
  it('creates the tables, inserts through Kysely<DB> and queries them with the DSL', async () => {
    const { db: any, dialect } = get()
    await createTables(any, schema)
    if (dialect === 'sqlite') {
      const db = any as Kysely<KyselySchema<typeof schema, 'sqlite'>>
      await db.insertInto('departments').values({ id: 1, name: 'Sales' }).execute()
      await db.insertInto('employees').values({ id: 1, dept: 'Sales', name: 'alan', boss: 1 }).execute() // nick omitted: NULL
      const rows = await db.selectFrom('employees').selectAll().execute()
      expect(rows).toEqual([{ id: 1, dept: 'Sales', name: 'alan', nick: null, boss: 1 }])
    } else {
      const db = any as Kysely<KyselySchema<typeof schema, 'postgres'>>
      await db.insertInto('departments').values({ id: 1, name: 'Sales' }).execute()
      await db.insertInto('employees').values({ id: 1, dept: 'Sales', name: 'alan', boss: true }).execute()
      const rows = await db.selectFrom('employees').selectAll().execute()
      // bigint comes back as a string (pg without a type parser), as the type says; PGlite gives a number.
      expect(rows.map((r) => ({ ...r, id: String(r.id) }))).toEqual([{ id: '1', dept: 'Sales', name: 'alan', nick: null, boss: true }])
    }
    const q = Q.for(departments, (d) => Q.yield({ d: d.name, staff: Q.for(employees, (e) => Q.where(Q.eq(e.dept, d.name), Q.yield({ n: e.name, boss: e.boss, nick: e.nick }))) }))
    expect(await run(any, q)).toEqual([{ d: 'Sales', staff: [{ n: 'alan', boss: true, nick: null }] }])
  })
})
