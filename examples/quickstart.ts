/** The README example. Run: npx tsx examples/quickstart.ts */
import Database from 'better-sqlite3'
import * as t from 'io-ts'
import { Kysely, SqliteDialect } from 'kysely'
import { createTable, insertRows, lineage, Q, run, table } from '../src/index.js'

const departments = table('departments', { id: t.Int, name: t.string })
const employees = table('employees', { id: t.Int, dept: t.string, name: t.string, salary: t.Int })

const db = new Kysely<any>({ dialect: new SqliteDialect({ database: new Database(':memory:') }) })
await createTable(db, departments)
await createTable(db, employees)
await insertRows(db, departments, [{ id: 1, name: 'Sales' }, { id: 2, name: 'Research' }])
await insertRows(db, employees, [
  { id: 1, dept: 'Sales', name: 'alan', salary: 700 },
  { id: 2, dept: 'Research', name: 'cora', salary: 60000 },
])

// departments with their well-paid staff: a nested result, one SQL statement
const q = Q.for(departments, (d) =>
  Q.yield({
    dept: d.name,
    staff: Q.for(employees, (e) => Q.where(Q.and(Q.eq(e.dept, d.name), Q.gt(e.salary, 1000)), Q.yield(e.name))),
  }))

for (const row of await run(db, q)) console.log(JSON.stringify(row))            // rows: { dept: string; staff: string[] }[]
for (const row of await run(db, lineage(q))) console.log(JSON.stringify(row)) // where every row and inner element came from
