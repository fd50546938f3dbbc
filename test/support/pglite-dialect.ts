/**
 * A minimal Kysely dialect over a PGlite instance (PostgreSQL compiled to WASM, in process), so
 * the PostgreSQL tests run on a machine without a PostgreSQL server.
 *
 * PGlite has a single connection, so the driver hands it out to one Kysely "connection" at a
 * time: `acquireConnection` takes a mutex that `releaseConnection` gives back, which serialises
 * transactions (`begin` ... `commit` run on the connection Kysely holds for the transaction).
 * As with Kysely's SQLite driver, running a query on `db` (not on `trx`) inside
 * `db.transaction().execute(...)` would wait forever.
 *
 * What PGlite 0.5 returns, by column type (checked; node-postgres differs where noted):
 * - `int8`/`bigint`: a JavaScript `number` when the value is a safe integer, a `bigint` beyond
 *   2^53 (node-postgres: always a decimal string). `int2`/`int4`: number.
 * - `numeric`: a decimal string, e.g. `'1.5'` (same as node-postgres). `float4`/`float8`: number.
 * - `boolean`: `true`/`false` (same as node-postgres).
 * - `json`/`jsonb`: already parsed (objects, arrays, numbers), like node-postgres; numbers
 *   inside JSON (e.g. `json_agg` of a bigint column) are plain `number`s from `JSON.parse`.
 * - `text`: string; SQL NULL: `null`.
 * Parameters: numbers, strings, booleans, `null` and `bigint` bind as expected.
 * The decoder's `fromDb` hook (src/query/dialect.ts) accepts numbers, bigints and numeric
 * strings for `int`/`real`, so both drivers decode the same.
 */
import type { PGlite } from '@electric-sql/pglite'
import {
  CompiledQuery,
  PostgresAdapter,
  PostgresIntrospector,
  PostgresQueryCompiler,
  type DatabaseConnection,
  type DatabaseIntrospector,
  type Dialect,
  type DialectAdapter,
  type Driver,
  type Kysely,
  type QueryCompiler,
  type QueryResult,
  type TransactionSettings,
} from 'kysely'

export interface PgliteDialectConfig {
  /** The PGlite instance, or a function creating it (called once, on first use). */
  readonly pglite: PGlite | (() => Promise<PGlite>)
  /** Close the PGlite instance when the Kysely instance is destroyed (default `true`). */
  readonly closeOnDestroy?: boolean
}

export class PgliteDialect implements Dialect {
  readonly #config: PgliteDialectConfig
  constructor(config: PgliteDialectConfig) {
    this.#config = config
  }
  createAdapter(): DialectAdapter {
    return new PostgresAdapter()
  }
  createDriver(): Driver {
    return new PgliteDriver(this.#config)
  }
  createQueryCompiler(): QueryCompiler {
    return new PostgresQueryCompiler()
  }
  createIntrospector(db: Kysely<any>): DatabaseIntrospector {
    return new PostgresIntrospector(db)
  }
}

/** A FIFO lock: `lock()` resolves when every earlier holder has called `unlock()`. */
class Mutex {
  #tail: Promise<void> = Promise.resolve()
  #release: (() => void) | undefined

  async lock(): Promise<void> {
    const previous = this.#tail
    let release!: () => void
    this.#tail = new Promise<void>((resolve) => {
      release = resolve
    })
    await previous
    this.#release = release
  }

  unlock(): void {
    const release = this.#release
    this.#release = undefined
    release?.()
  }
}

class PgliteDriver implements Driver {
  readonly #config: PgliteDialectConfig
  readonly #mutex = new Mutex()
  #pglite: PGlite | undefined
  #connection: PgliteConnection | undefined

  constructor(config: PgliteDialectConfig) {
    this.#config = config
  }

  async init(): Promise<void> {
    const p = this.#config.pglite
    this.#pglite = typeof p === 'function' ? await p() : p
    await this.#pglite.waitReady
    this.#connection = new PgliteConnection(this.#pglite)
  }

  async acquireConnection(): Promise<DatabaseConnection> {
    await this.#mutex.lock()
    if (this.#connection === undefined) {
      this.#mutex.unlock()
      throw new Error('PgliteDialect: the driver is not initialised or was destroyed')
    }
    return this.#connection
  }

  async beginTransaction(connection: DatabaseConnection, settings: TransactionSettings): Promise<void> {
    let text = 'begin'
    if (settings.isolationLevel !== undefined || settings.accessMode !== undefined) {
      text = 'start transaction'
      if (settings.isolationLevel !== undefined) text += ` isolation level ${settings.isolationLevel}`
      if (settings.accessMode !== undefined) text += ` ${settings.accessMode}`
    }
    await connection.executeQuery(CompiledQuery.raw(text))
  }

  async commitTransaction(connection: DatabaseConnection): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw('commit'))
  }

  async rollbackTransaction(connection: DatabaseConnection): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw('rollback'))
  }

  async savepoint(connection: DatabaseConnection, name: string): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw(`savepoint ${quoteIdent(name)}`))
  }

  async rollbackToSavepoint(connection: DatabaseConnection, name: string): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw(`rollback to savepoint ${quoteIdent(name)}`))
  }

  async releaseSavepoint(connection: DatabaseConnection, name: string): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw(`release savepoint ${quoteIdent(name)}`))
  }

  async releaseConnection(): Promise<void> {
    this.#mutex.unlock()
  }

  async destroy(): Promise<void> {
    const pglite = this.#pglite
    this.#pglite = undefined
    this.#connection = undefined
    if (pglite !== undefined && this.#config.closeOnDestroy !== false && !pglite.closed) await pglite.close()
  }
}

const quoteIdent = (name: string): string => `"${name.replace(/"/g, '""')}"`

class PgliteConnection implements DatabaseConnection {
  readonly #pglite: PGlite
  constructor(pglite: PGlite) {
    this.#pglite = pglite
  }

  async executeQuery<R>(compiled: CompiledQuery): Promise<QueryResult<R>> {
    const result = await this.#pglite.query<R>(compiled.sql, [...compiled.parameters])
    const command = (result as { command?: string }).command
    const affected = result.affectedRows
    return {
      rows: result.rows ?? [],
      ...(affected !== undefined && (command === 'INSERT' || command === 'UPDATE' || command === 'DELETE' || command === 'MERGE')
        ? { numAffectedRows: BigInt(affected) }
        : {}),
    }
  }

  async *streamQuery<R>(compiled: CompiledQuery, chunkSize = 100): AsyncIterableIterator<QueryResult<R>> {
    // PGlite has no cursors here: run the query, then hand the rows out in chunks.
    if (!Number.isInteger(chunkSize) || chunkSize <= 0) throw new Error('chunkSize must be a positive integer')
    const { rows } = await this.executeQuery<R>(compiled)
    for (let i = 0; i < rows.length; i += chunkSize) yield { rows: rows.slice(i, i + chunkSize) }
  }
}
