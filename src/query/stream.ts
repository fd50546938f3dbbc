/**
 * Streaming: the one statement of a query executed through Kysely's streaming API, its rows
 * decoded chunk by chunk, so a large result is never held whole. On SQLite Kysely's driver
 * steps better-sqlite3's `iterate()`; on PostgreSQL it reads a server-side cursor (`pg-cursor`,
 * given to `PostgresDialect` as `cursor`) `chunkSize` rows at a time. Each row decodes on its
 * own (nested collections arrive as one JSON value per row), so flat queries, `lineage(q)`
 * and nested collections stream alike.
 */
import { CompiledQuery, SelectQueryNode, type Kysely } from 'kysely'
import { LineageQueryError, showValue } from '../errors.js'
import { plan, type Plan } from './compile.js'
import { dialectOf } from './dialect-of.js'
import type { Plain, Query } from './dsl.js'

export interface StreamOptions {
  /** Rows fetched per round trip from a PostgreSQL cursor (default 1000). SQLite steps one row at a time. */
  readonly chunkSize?: number
}

/**
 * Run a query and iterate over its decoded rows as they are read: constant memory, whatever
 * the result's size. The same rows, in the same order, as `run(db, query)`.
 *
 * - PostgreSQL: the Kysely instance needs a cursor class, `new PostgresDialect({ pool, cursor:
 *   Cursor })` with `import Cursor from 'pg-cursor'`; otherwise the first `next()` rejects with
 *   a `dialect` error saying so. The cursor holds one pooled connection until the loop ends.
 * - SQLite: Kysely's SQLite driver has one connection, held until the loop ends: a query on
 *   the same Kysely instance inside the loop waits for it forever. Collect what you need, or
 *   use a second instance (another connection to the file).
 * - Leaving the loop early (`break`, `return`, an exception) closes the cursor or statement.
 *
 * Bad arguments throw at the call; database errors reject the first `next()` they reach.
 *
 * @example
 * ```ts
 * for await (const row of stream(db, lineage(Q.for(employees, (e) => Q.yield(e.name))))) {
 *   console.log(row.data, row.lineage)
 * }
 * ```
 */
export function stream<T>(db: Kysely<any>, query: Query<T, any>, options: StreamOptions = {}): AsyncIterableIterator<Plain<T>> {
  if (typeof options !== 'object' || options === null) throw new LineageQueryError('argument', `stream: options must be an object, got ${showValue(options)}`)
  const chunkSize = options.chunkSize ?? 1000
  if (!Number.isSafeInteger(chunkSize) || chunkSize <= 0) {
    throw new LineageQueryError('argument', `stream: options.chunkSize must be a positive integer, got ${showValue(chunkSize)}`, { chunkSize })
  }
  const p = plan(query, dialectOf(db))
  return rows(db, p, chunkSize) as AsyncIterableIterator<Plain<T>>
}

async function* rows(db: Kysely<any>, p: Plan, chunkSize: number): AsyncIterableIterator<unknown> {
  for (const s of p.statements) {
    // Kysely's SQLite driver streams only statements whose node is a select (it checks the
    // node, not the text); the compiled statement is one select.
    const compiled: CompiledQuery<Record<string, unknown>> = { ...(CompiledQuery.raw(s.sql, [...s.parameters]) as CompiledQuery<Record<string, unknown>>), query: SelectQueryNode.create() }
    let chunks: AsyncIterableIterator<{ rows: Record<string, unknown>[] }>
    try {
      chunks = db.getExecutor().stream(compiled, chunkSize)
    } catch (e) {
      throw translate(e)
    }
    try {
      while (true) {
        let next: IteratorResult<{ rows: Record<string, unknown>[] }>
        try {
          next = await chunks.next()
        } catch (e) {
          throw translate(e)
        }
        if (next.done === true) break
        yield* p.decode(next.value.rows)
      }
    } finally {
      // Also when the caller leaves the loop early or decoding fails: closes the cursor
      // (PostgreSQL) or resets the statement (SQLite) and releases the connection.
      await chunks.return?.()
    }
  }
}

function translate(e: unknown): unknown {
  if (e instanceof Error && e.message.includes("'cursor' is not present in your postgres dialect config")) {
    return new LineageQueryError(
      'dialect',
      "stream on PostgreSQL needs a cursor class in the Kysely dialect: new PostgresDialect({ pool, cursor: Cursor }) with `import Cursor from 'pg-cursor'` (npm install pg-cursor)",
      {},
      { cause: e },
    )
  }
  return e
}
