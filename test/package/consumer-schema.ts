// Type-checked (not run) in the consumer project of check-package.sh: a strict NodeNext user's
// code against the packed lineage-query and the user's own kysely. Excluded from the repo's
// tsconfig (it imports 'lineage-query' by name).
import Database from 'better-sqlite3'
import * as t from 'io-ts'
import { Kysely, SqliteDialect } from 'kysely'
import { createTables, defineSchema, lineage, openStore, Q, run, stream, table, type KyselySchema } from 'lineage-query'

const departments = table('departments', { id: t.Int, name: t.string })
const employees = table('employees', { id: t.Int, dept: t.string, name: t.string, salary: t.Int })
const org = defineSchema(departments, employees)

export async function main(): Promise<void> {
  const db = new Kysely<KyselySchema<typeof org>>({ dialect: new SqliteDialect({ database: new Database(':memory:') }) })
  await createTables(db, org)
  await db.insertInto('employees').values({ id: 1, dept: 'Sales', name: 'alan', salary: 700 }).execute()
  // @ts-expect-error salary is declared t.Int
  await db.insertInto('employees').values({ id: 2, dept: 'Sales', name: 'bert', salary: 'lots' }).execute()
  const names: string[] = await run(db, Q.for(employees, (e) => Q.yield(e.name)))
  for await (const row of stream(db, lineage(Q.for(employees, (e) => Q.yield(e.name))))) {
    const data: string = row.data
    const first: { table: 'employees'; key: number } | undefined = row.lineage[0]
    void data, first
  }
  const store = await openStore(db)
  await store.track(employees)
  void names
}
