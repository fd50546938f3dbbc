/**
 * Which of the supported dialects a Kysely instance talks to, read from its adapter. Kept apart
 * from the DDL helpers so the runner can import it alone.
 */
import { PostgresAdapter, SqliteAdapter, type Kysely } from 'kysely'
import { LineageQueryError, showValue } from '../errors.js'
import type { Dialect } from './dialect.js'

/**
 * The dialect of `db`: `'sqlite'` for Kysely's `SqliteAdapter`, `'postgres'` for its
 * `PostgresAdapter` (or subclasses of either). Any other adapter is a `dialect` error.
 *
 * @example
 * ```ts
 * const db = new Kysely<any>({ dialect: new SqliteDialect({ database: new Database(':memory:') }) })
 * dialectOf(db) // 'sqlite'
 * ```
 */
export function dialectOf(db: Kysely<any>): Dialect {
  const getExecutor = (db as { getExecutor?: unknown } | null | undefined)?.getExecutor
  if (typeof getExecutor !== 'function') {
    throw new LineageQueryError('argument', `expected a Kysely instance, got ${showValue(db)}`)
  }
  const adapter: unknown = db.getExecutor().adapter
  if (adapter instanceof SqliteAdapter) return 'sqlite'
  if (adapter instanceof PostgresAdapter) return 'postgres'
  // A second copy of Kysely (another version in node_modules, a bundle) has its own adapter
  // classes, so `instanceof` fails; recognise those (and their subclasses) by class name.
  for (let proto: unknown = adapter === null || adapter === undefined ? null : Object.getPrototypeOf(adapter); proto !== null && proto !== Object.prototype; proto = Object.getPrototypeOf(proto)) {
    const name = (proto as { constructor?: { name?: unknown } }).constructor?.name
    if (name === 'SqliteAdapter') return 'sqlite'
    if (name === 'PostgresAdapter') return 'postgres'
  }
  const cls = adapterName(adapter)
  throw new LineageQueryError(
    'dialect',
    `unsupported Kysely dialect: the adapter is ${cls}; lineage-query supports only SQLite (SqliteAdapter) and PostgreSQL (PostgresAdapter)`,
    { adapter: cls },
  )
}

function adapterName(adapter: unknown): string {
  if (adapter === null || typeof adapter !== 'object') return showValue(adapter)
  const name = (adapter as { constructor?: { name?: unknown } }).constructor?.name
  return typeof name === 'string' && name !== '' ? name : 'an anonymous adapter class'
}
