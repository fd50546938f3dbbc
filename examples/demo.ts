/**
 * `npm run demo`: builds a small organisation database in embedded SQLite (a file in a
 * folder of the system's temp folder, removed at the end), then prints queries, the SQL they compile to, and their results,
 * plain and with lineage; then runs the derived-data walk-through of `pipeline.ts` (the toy
 * language: programs -> parse -> compile -> run) on a fresh SQLite database.
 */
import Database from 'better-sqlite3'
import * as t from 'io-ts'
import { Kysely, SqliteDialect } from 'kysely'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { compile, createTable, insertRows, lineage, Q, run, table, type AnyQuery, type Expr } from '../src/index.js'
import * as pipeline from './pipeline.js'
import * as tours from './tours.js'

const departments = table('departments', { id: t.Int, name: t.string })
const employees = table('employees', { id: t.Int, dept: t.string, name: t.string, salary: t.Int })
const tasks = table('tasks', { id: t.Int, employee: t.string, task: t.string })

const tasksOf = (e: { name: Expr<string> }) => Q.for(tasks, (t) => Q.where(Q.eq(t.employee, e.name), Q.yield(t.task)))

const queries: [string, AnyQuery][] = [
  ['well-paid employees', Q.for(employees, (e) => Q.where(Q.gt(e.salary, 50000), Q.yield({ name: e.name, salary: e.salary })))],
  ['departments with their employees and tasks (nested, still one statement)',
    Q.for(departments, (d) => Q.yield({ dept: d.name, staff: Q.for(employees, (e) => Q.where(Q.eq(e.dept, d.name), Q.yield({ name: e.name, tasks: tasksOf(e) }))) }))],
  ['salary outliers per department, over nested intermediate data (AQ6)',
    Q.for(Q.for(departments, (d) => Q.yield({ name: d.name, emps: Q.for(employees, (e) => Q.where(Q.eq(d.name, e.dept), Q.yield({ name: e.name, salary: e.salary }))) })),
      (d) => Q.yield({ department: d.name, outliers: Q.for(d.emps, (o) => Q.where(Q.or(Q.gt(o.salary, 1000000), Q.lt(o.salary, 1000)), Q.yield(o))) }))],
  ['people who do "abstract" or earn over 50000 (a bag union), ordered',
    Q.union(Q.for(tasks, (t) => Q.where(Q.eq(t.task, 'abstract'), Q.yield(t.employee))), Q.for(employees, (e) => Q.where(Q.gt(e.salary, 50000), Q.yield(e.name)))).orderBy((n) => n)],
  ['head count and payroll per department (aggregates as values)',
    Q.for(departments, (d) => {
      const staff = Q.for(employees, (e) => Q.where(Q.eq(e.dept, d.name), Q.yield(e)))
      return Q.yield({ dept: d.name, people: Q.count(staff), payroll: Q.sum(staff, (e) => e.salary) })
    })],
]

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'lineage-query-demo-'))
  try {
    await demo(dir)
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

async function demo(dir: string): Promise<void> {
  const file = join(dir, 'demo.db')
  const db = new Kysely<any>({ dialect: new SqliteDialect({ database: new Database(file) }) })
  for (const tb of [departments, employees, tasks]) await createTable(db, tb)
  await insertRows(db, departments, [{ id: 1, name: 'Sales' }, { id: 2, name: 'Research' }, { id: 3, name: 'Quality' }])
  await insertRows(db, employees, [
    { id: 1, dept: 'Sales', name: 'alan', salary: 700 },
    { id: 2, dept: 'Sales', name: 'bert', salary: 2000000 },
    { id: 3, dept: 'Research', name: 'cora', salary: 60000 },
    { id: 4, dept: 'Research', name: 'drew', salary: 20000 },
  ])
  await insertRows(db, tasks, [
    { id: 1, employee: 'alan', task: 'abstract' }, { id: 2, employee: 'alan', task: 'buy' },
    { id: 3, employee: 'cora', task: 'call' }, { id: 4, employee: 'drew', task: 'abstract' },
  ])
  console.log(`sample database: ${file} (removed at the end)\n`)
  for (const [title, q] of queries) {
    console.log(`== ${title}`)
    console.log(`sql: ${compile(q, 'sqlite').statements[0]!.sql}`)
    for (const row of await run(db, q)) console.log(`  ${JSON.stringify(row)}`)
    console.log('')
  }
  console.log('== the same nested query with lineage: every row and every inner element names its source rows')
  const [, nested] = queries[1]!
  console.log(`sql: ${compile(lineage(nested), 'sqlite').statements[0]!.sql}`)
  for (const row of await run(db, lineage(nested))) console.log(`  ${JSON.stringify(row)}`)
  console.log('')
  console.log('== the tours example of the lineage notes')
  await tours.loadTours(db)
  await tours.main(db)
  await db.destroy()
  console.log('')
  console.log('== derived data: the toy language of the design notes, programs -> parse -> compile -> run (examples/pipeline.ts)')
  const file2 = join(dir, 'pipeline.db')
  console.log(`fresh database: ${file2}`)
  const db2 = new Kysely<any>({ dialect: new SqliteDialect({ database: new Database(file2) }) })
  await pipeline.main(db2)
  await db2.destroy()
}

await main()
