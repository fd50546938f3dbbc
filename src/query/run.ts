/**
 * Running: compile for the Kysely instance's dialect, execute the one statement through
 * Kysely (so any Kysely instance on SQLite or PostgreSQL works, including one shared with
 * another engine or inside its transaction), and decode the rows.
 */
import { CompiledQuery, type Kysely } from 'kysely'
import { plan } from './compile.js'
import { dialectOf } from './dialect-of.js'
import type { Plain, Query } from './dsl.js'

/**
 * Run a query on a Kysely instance (SQLite or PostgreSQL) and decode its rows through the
 * declared codecs.
 *
 * @example
 * ```ts
 * const rows = await run(db, Q.for(employees, (e) => Q.yield({ n: e.name, s: e.salary })))
 * // rows: { n: string; s: number }[]
 * ```
 */
export async function run<T>(db: Kysely<any>, query: Query<T, any>): Promise<Plain<T>[]> {
  const p = plan(query, dialectOf(db))
  let rows: readonly Record<string, unknown>[] = []
  for (const s of p.statements) {
    const result = await db.executeQuery<Record<string, unknown>>(CompiledQuery.raw(s.sql, [...s.parameters]))
    rows = rows.length === 0 ? result.rows : rows.concat(result.rows)
  }
  return p.decode(rows) as Plain<T>[]
}
