/**
 * The seeded generator of the organisation data (benchmarks.md section 1) and loaders for
 * better-sqlite3 and node-postgres.
 *
 * For N departments: department names `Sales|Research|Quality|Product` plus a counter; 100 N
 * employees, each in a random department, named `alan|bert|cora|drew|edna|fred` plus a
 * counter (so names are unique), salary from {700, 900, 20000, 50000, 60000, 100000, 2000000};
 * 1 to 3 distinct tasks per employee from {abstract, buy, call, dissemble, enthuse}; 10
 * contacts per employee, each with a random department, a random name and a random `client`.
 */
import type BetterSqlite3 from 'better-sqlite3'
import type pg from 'pg'

export interface Department { readonly id: number; readonly name: string }
export interface Employee { readonly id: number; readonly dept: string; readonly name: string; readonly salary: number }
export interface Task { readonly id: number; readonly employee: string; readonly task: string }
export interface Contact { readonly id: number; readonly dept: string; readonly name: string; readonly client: boolean }

export interface OrgData {
  readonly departments: readonly Department[]
  readonly employees: readonly Employee[]
  readonly tasks: readonly Task[]
  readonly contacts: readonly Contact[]
}

/** mulberry32: a small, fast, seeded PRNG returning floats in [0, 1). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let x = a
    x = Math.imul(x ^ (x >>> 15), x | 1)
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61)
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296
  }
}

const DEPT_PREFIXES = ['Sales', 'Research', 'Quality', 'Product'] as const
const NAMES = ['alan', 'bert', 'cora', 'drew', 'edna', 'fred'] as const
const SALARIES = [700, 900, 20000, 50000, 60000, 100000, 2000000] as const
const TASKS = ['abstract', 'buy', 'call', 'dissemble', 'enthuse'] as const

/** Generate the data for `n` departments, deterministically from `seed`. */
export function generate(n: number, seed = 42): OrgData {
  const rnd = mulberry32(seed)
  const int = (k: number): number => Math.floor(rnd() * k)
  const pick = <A>(xs: readonly A[]): A => xs[int(xs.length)] as A

  const departments: Department[] = []
  for (let i = 0; i < n; i++) departments.push({ id: i + 1, name: `${pick(DEPT_PREFIXES)}${i}` })

  const employees: Employee[] = []
  const tasks: Task[] = []
  const contacts: Contact[] = []
  for (let i = 0; i < 100 * n; i++) {
    const e: Employee = { id: i + 1, dept: pick(departments).name, name: `${pick(NAMES)}${i}`, salary: pick(SALARIES) }
    employees.push(e)
    const pool = [...TASKS]
    const k = 1 + int(3)
    for (let j = 0; j < k; j++) {
      const [task] = pool.splice(int(pool.length), 1)
      tasks.push({ id: tasks.length + 1, employee: e.name, task: task as string })
    }
    for (let j = 0; j < 10; j++) {
      contacts.push({ id: contacts.length + 1, dept: pick(departments).name, name: `${pick(NAMES)}${contacts.length}`, client: rnd() < 0.5 })
    }
  }
  return { departments, employees, tasks, contacts }
}

type Row = readonly unknown[]

function rowsOf(data: OrgData, boolAsInt: boolean): Record<'departments' | 'employees' | 'tasks' | 'contacts', { cols: string[]; rows: Row[] }> {
  return {
    departments: { cols: ['id', 'name'], rows: data.departments.map((d) => [d.id, d.name]) },
    employees: { cols: ['id', 'dept', 'name', 'salary'], rows: data.employees.map((e) => [e.id, e.dept, e.name, e.salary]) },
    tasks: { cols: ['id', 'employee', 'task'], rows: data.tasks.map((t) => [t.id, t.employee, t.task]) },
    contacts: { cols: ['id', 'dept', 'name', 'client'], rows: data.contacts.map((c) => [c.id, c.dept, c.name, boolAsInt ? (c.client ? 1 : 0) : c.client]) },
  }
}

/** Load into better-sqlite3 in one transaction, with one prepared insert per table. */
export function loadSqlite(db: BetterSqlite3.Database, data: OrgData): void {
  const tables = rowsOf(data, true)
  db.transaction(() => {
    for (const [name, { cols, rows }] of Object.entries(tables)) {
      const stmt = db.prepare(`insert into ${name} (${cols.join(', ')}) values (${cols.map(() => '?').join(', ')})`)
      for (const r of rows) stmt.run(...r)
    }
  })()
  db.exec('analyze')
}

/** Load into PostgreSQL in one transaction, with multi-row inserts of up to `chunk` rows. */
export async function loadPostgres(client: pg.ClientBase, data: OrgData, chunk = 2000): Promise<void> {
  const tables = rowsOf(data, false)
  await client.query('begin')
  try {
    for (const [name, { cols, rows }] of Object.entries(tables)) {
      for (let i = 0; i < rows.length; i += chunk) {
        const part = rows.slice(i, i + chunk)
        const params: unknown[] = []
        const tuples = part.map((r) => `(${r.map((v) => `$${params.push(v)}`).join(', ')})`)
        await client.query(`insert into ${name} (${cols.join(', ')}) values ${tuples.join(', ')}`, params)
      }
    }
    await client.query('commit')
  } catch (e) {
    await client.query('rollback')
    throw e
  }
  await client.query('analyze')
}
