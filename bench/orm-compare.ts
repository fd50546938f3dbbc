/**
 * The comparison users will make for nested results (issue 12): `run(db, q)` of this library
 * against what they would write with the libraries they already have, on the organisation data
 * (benchmarks.md section 1), on SQLite and PostgreSQL:
 * - Kysely with `jsonArrayFrom` (kysely/helpers/sqlite or /postgres; on SQLite with
 *   `ParseJSONResultsPlugin`, as Kysely's docs say, so nested arrays arrive parsed);
 * - Drizzle's relational queries (`db.query.X.findMany({ with: ... })`, drizzle-orm, on
 *   better-sqlite3 and node-postgres), relations declared on the same join columns.
 * Also `run(db, lineage(q))` (lineage not read), for scale. Ratios are to `run(db, q)`, measured
 * side by side in one run (interleaved rounds, `harness.compare`), on the built package; on SQLite
 * in CPU time of the process (everything runs in it; robust to a loaded machine), on PostgreSQL in
 * wall time.
 *
 * Queries (the nested ones of the workload that both libraries express directly):
 *   Q3  employees, each with its tasks          { e: name, b: [task] }
 *   Q4  departments, each with its employees    { dpt: name, emps: [name] }
 *   AQ6 departments, each with its outliers     { department: name, outliers: [{ name, salary }] }
 * Each library returns the shape it naturally returns (Drizzle: objects per nested row, e.g.
 * `{ name, tasks: [{ task }] }`); row and element counts are checked equal.
 *
 *   npx tsx bench/orm-compare.ts
 * Environment: ORM_N=64,256  ORM_DIALECTS=sqlite,postgres  ORM_ROUNDS=7  ORM_SAMPLE_MS=40
 */
import { loadavg } from 'node:os'
import { relations } from 'drizzle-orm'
import { drizzle as drizzleSqlite } from 'drizzle-orm/better-sqlite3'
import { drizzle as drizzlePg } from 'drizzle-orm/node-postgres'
import * as pgCore from 'drizzle-orm/pg-core'
import * as sqliteCore from 'drizzle-orm/sqlite-core'
import { ParseJSONResultsPlugin, type Kysely } from 'kysely'
import { jsonArrayFrom as pgArray } from 'kysely/helpers/postgres'
import { jsonArrayFrom as sqliteArray } from 'kysely/helpers/sqlite'
import { compare, fmtMs, fmtRatio, geomean, nowMs, runIfMain, selfCpuClock, table } from './harness.js'
import { dropPgSchema, envDialects, envList, envNum, openPostgres, openSqlite, type Handle } from './lineage-common.js'
import { lineage, libraryLocation, run, type AnyQuery, type Dialect } from './lib.js'
import { generate, loadPostgres, loadSqlite, type OrgData } from './org/data.js'
import { queries } from './org/queries.js'
import { ddl } from './org/schema.js'

// ---------------------------------------------------------------- Drizzle schemas (same tables, same join columns)

function sqliteSchema() {
  const { sqliteTable, integer, text } = sqliteCore
  const departments = sqliteTable('departments', { id: integer('id').primaryKey(), name: text('name').notNull() })
  const employees = sqliteTable('employees', { id: integer('id').primaryKey(), dept: text('dept').notNull(), name: text('name').notNull(), salary: integer('salary').notNull() })
  const tasks = sqliteTable('tasks', { id: integer('id').primaryKey(), employee: text('employee').notNull(), task: text('task').notNull() })
  return withRelations(departments, employees, tasks)
}

function pgSchema() {
  const { pgTable, integer, text } = pgCore
  const departments = pgTable('departments', { id: integer('id').primaryKey(), name: text('name').notNull() })
  const employees = pgTable('employees', { id: integer('id').primaryKey(), dept: text('dept').notNull(), name: text('name').notNull(), salary: integer('salary').notNull() })
  const tasks = pgTable('tasks', { id: integer('id').primaryKey(), employee: text('employee').notNull(), task: text('task').notNull() })
  return withRelations(departments, employees, tasks)
}

function withRelations<D extends { name: any }, E extends { name: any; dept: any }, T extends { employee: any }>(departments: D, employees: E, tasks: T) {
  const d = departments as any
  const e = employees as any
  const t = tasks as any
  return {
    departments,
    employees,
    tasks,
    departmentsRelations: relations(d, ({ many }) => ({ employees: many(e) })),
    employeesRelations: relations(e, ({ many, one }) => ({ tasks: many(t), department: one(d, { fields: [e.dept], references: [d.name] }) })),
    tasksRelations: relations(t, ({ one }) => ({ employee: one(e, { fields: [t.employee], references: [e.name] }) })),
  }
}

type Competitor = (n: string) => (() => Promise<unknown[]>) | undefined

/** Kysely with jsonArrayFrom. */
function kyselyOf(db: Kysely<any>, dialect: Dialect): Competitor {
  const k = dialect === 'sqlite' ? db.withPlugin(new ParseJSONResultsPlugin()) : db
  const arr = dialect === 'sqlite' ? sqliteArray : pgArray
  return (name) => {
    switch (name) {
      case 'Q3':
        return () => k.selectFrom('employees as e').select((eb) => ['e.name as e', arr(eb.selectFrom('tasks as t').select('t.task').whereRef('t.employee', '=', 'e.name')).as('b')]).execute()
      case 'Q4':
        return () => k.selectFrom('departments as d').select((eb) => ['d.name as dpt', arr(eb.selectFrom('employees as e').select('e.name').whereRef('e.dept', '=', 'd.name')).as('emps')]).execute()
      case 'AQ6':
        return () =>
          k
            .selectFrom('departments as d')
            .select((eb) => [
              'd.name as department',
              arr(eb.selectFrom('employees as e').select(['e.name', 'e.salary']).whereRef('e.dept', '=', 'd.name').where((w) => w.or([w('e.salary', '>', 1000000), w('e.salary', '<', 1000)]))).as('outliers'),
            ])
            .execute()
      default:
        return undefined
    }
  }
}

/** Drizzle relational queries. */
function drizzleOf(h: Handle): Competitor {
  const db: any = h.dialect === 'sqlite' ? drizzleSqlite(h.raw, { schema: sqliteSchema() }) : drizzlePg(h.pool, { schema: pgSchema() })
  return (name) => {
    switch (name) {
      case 'Q3':
        return async () => await db.query.employees.findMany({ columns: { name: true }, with: { tasks: { columns: { task: true } } } })
      case 'Q4':
        return async () => await db.query.departments.findMany({ columns: { name: true }, with: { employees: { columns: { name: true } } } })
      case 'AQ6':
        return async () =>
          await db.query.departments.findMany({
            columns: { name: true },
            with: { employees: { columns: { name: true, salary: true }, where: (e: any, { or, gt, lt }: any) => or(gt(e.salary, 1000000), lt(e.salary, 1000)) } },
          })
      default:
        return undefined
    }
  }
}

/** Rows and nested elements of a result (the same counts whatever the shape). */
function counts(rows: readonly unknown[]): string {
  let nested = 0
  for (const r of rows) {
    // An annotated row (run(lineage(q))): its data.
    const d = typeof r === 'object' && r !== null && 'lineage' in r && 'data' in r ? (r as { data: unknown }).data : r
    for (const v of Object.values(d as object)) if (Array.isArray(v)) nested += v.length
  }
  return `${rows.length}/${nested}`
}

async function open(dialect: Dialect, data: OrgData): Promise<Handle> {
  const loaded = { ...data, contacts: [] }
  if (dialect === 'sqlite') {
    return openSqlite((raw) => {
      for (const s of ddl('sqlite')) raw.exec(s)
      loadSqlite(raw, loaded)
    })
  }
  return openPostgres('lq_bench_orm', async (client) => {
    for (const s of ddl('postgres')) await client.query(s)
    await loadPostgres(client, loaded)
  })
}

export async function main(): Promise<void> {
  const ns = envList('ORM_N', '64,256').map(Number)
  const dialects = envDialects('ORM_DIALECTS')
  const rounds = envNum('ORM_ROUNDS', 7)
  const sampleMs = envNum('ORM_SAMPLE_MS', 40)
  const names = ['Q3', 'Q4', 'AQ6']
  console.log(`run(q) against Kysely (jsonArrayFrom) and Drizzle (relational queries) on nested results; library: ${libraryLocation}; load average ${loadavg().map((x) => x.toFixed(2)).join(' ')}`)
  console.log('times (SQLite: CPU time of this process; PostgreSQL: wall time): medians over interleaved rounds; ratios: median of per-round ratios to run(q) (above 1: slower than run)\n')
  const summary: string[] = []
  for (const n of ns) {
    const data = generate(n)
    for (const dialect of dialects) {
      const t0 = nowMs()
      const h = await open(dialect, data)
      const rows: string[][] = []
      const ratios = { kysely: [] as number[], drizzle: [] as number[], lineage: [] as number[] }
      try {
        const ky = kyselyOf(h.db, dialect)
        const dz = drizzleOf(h)
        for (const name of names) {
          const q: AnyQuery = queries.find((x) => x.name === name)!.build()
          const lq = lineage(q)
          const variants = [
            { name: 'run(q)', fn: () => run(h.db, q) as Promise<unknown[]> },
            { name: 'run(lineage(q))', fn: () => run(h.db, lq) as Promise<unknown[]> },
            { name: 'kysely', fn: ky(name)! },
            { name: 'drizzle', fn: dz(name)! },
          ]
          const shapes = await Promise.all(variants.map(async (v) => counts(await v.fn())))
          // SQLite (and both libraries' work on it) runs in this process: CPU time, robust to load; PostgreSQL: wall time.
          const measure = dialect === 'sqlite' && process.env['ORM_MEASURE'] !== 'wall' ? 'cpu' : 'wall'
          const c = await compare(variants, { rounds, sampleMs, warmup: true, cpu: measure === 'cpu' ? selfCpuClock() : undefined })
          const ms = (i: number) => (measure === 'cpu' ? c.variants[i]!.cpuMedian : c.variants[i]!.median)
          ratios.lineage.push(c.ratio(1, 0, measure))
          ratios.kysely.push(c.ratio(2, 0, measure))
          ratios.drizzle.push(c.ratio(3, 0, measure))
          rows.push([
            name,
            shapes.every((x) => x === shapes[0]) ? shapes[0]! : `DIFFER ${shapes.join(' ')}`,
            fmtMs(ms(0)),
            `${fmtMs(ms(1))} (${fmtRatio(c.ratio(1, 0, measure))})`,
            `${fmtMs(ms(2))} (${fmtRatio(c.ratio(2, 0, measure))})`,
            `${fmtMs(ms(3))} (${fmtRatio(c.ratio(3, 0, measure))})`,
          ])
        }
      } finally {
        await h.close()
        if (dialect === 'postgres') await dropPgSchema('lq_bench_orm')
      }
      console.log(`== ${dialect} N=${n} (${((nowMs() - t0) / 1000).toFixed(1)}s)`)
      console.log(table(['query', 'rows/nested', 'run(q)', 'run(lineage(q))', 'Kysely jsonArrayFrom', 'Drizzle findMany'], rows))
      const line = `${dialect} N=${n}: Kysely ${fmtRatio(geomean(ratios.kysely))} of run(q) (geomean; ${ratios.kysely.map(fmtRatio).join(', ')}), Drizzle ${fmtRatio(geomean(ratios.drizzle))} (${ratios.drizzle.map(fmtRatio).join(', ')}), run(lineage(q)) ${fmtRatio(geomean(ratios.lineage))}`
      console.log(line + '\n')
      summary.push(line)
    }
  }
  console.log('SUMMARY (ratio to run(q); above 1x: slower than run)')
  for (const s of summary) console.log(`  ${s}`)
  console.log(`load average at the end ${loadavg().map((x) => x.toFixed(2)).join(' ')}`)
}

runIfMain(import.meta.url, main)
