/**
 * Driver errors (better-sqlite3's `SqliteError`, node-postgres' `DatabaseError`) turned into
 * `LineageQueryError`s that say which store operation and table met them. The driver's error
 * stays reachable as `cause` (and its code as `details.driverCode`). Errors that are not the
 * database's (a user's `onProgress` throwing, a `LineageQueryError`) pass through unchanged.
 *
 * - a missing column (SQLite "no such column", PostgreSQL 42703) or table ("no such table",
 *   42P01): `schema`, saying that a table the store reads no longer fits its declaration;
 * - busy or deadlocked (SQLITE_BUSY*, SQLITE_LOCKED*, 40P01, 40001, 55P03) where no retry applies:
 *   `busy`;
 * - the connection lost (`connectionLost`): `database`, saying so;
 * - anything else from the database: `database`.
 */
import { LineageQueryError } from '../errors.js'
import { errorCode } from './sql/dialect.js'

/** Whether `e` comes from the database driver. */
export function isDriverError(e: unknown): boolean {
  if (!(e instanceof Error) || e instanceof LineageQueryError) return false
  const code = errorCode(e)
  return e.name === 'SqliteError' || code.startsWith('SQLITE_') || (e.constructor?.name === 'DatabaseError' && /^[0-9A-Z]{5}$/.test(code)) || connectionLost(e)
}

/**
 * Whether `e` says the connection to the database is gone: the server ended it (57P01-57P03,
 * a failover, `pg_terminate_backend`), the network failed (ECONNRESET, ECONNREFUSED, EPIPE,
 * ETIMEDOUT), or node-postgres reports a client that lost its connection with an `Error` of no
 * code ("Connection terminated unexpectedly", "Client has encountered a connection error and is
 * not queryable", "Client was closed and is not queryable"). A statement on a new connection may
 * work: `store.watch` retries such waves.
 */
export function connectionLost(e: unknown): boolean {
  if (!(e instanceof Error)) return false
  if (e instanceof LineageQueryError) return e.cause !== undefined && connectionLost(e.cause)
  const code = errorCode(e)
  return /^(57P0[1-3]|ECONNRESET|ECONNREFUSED|EPIPE|ETIMEDOUT)$/.test(code) || (code === '' && /^(Connection terminated|Client has encountered a connection error|Client was closed)/.test(e.message))
}

/** `e` as a `LineageQueryError` naming `where` (an operation and table), if it is a driver error; else `e`. */
export function fromDriver(e: unknown, where: string): unknown {
  if (!isDriverError(e)) return e
  const err = e as Error
  const code = errorCode(e)
  const details = { operation: where, driverCode: code }
  // The statement's alias (`s0.text`) means nothing to the user: the column's name alone.
  const column = (/no such column: (\S+)/.exec(err.message)?.[1] ?? (code === '42703' ? /column "?([^"\s]+)"? does not exist/.exec(err.message)?.[1] : undefined))?.split('.').pop()
  if (column !== undefined) {
    return new LineageQueryError('schema', `${where}: the database has no column \`${column}\` that a declaration names (was it dropped or renamed?); restore it, or change the table's declaration to the table as it is (${err.message})`, { ...details, column }, { cause: e })
  }
  const table = /no such table: (\S+)/.exec(err.message)?.[1] ?? (code === '42P01' ? /relation "?([^"\s]+)"? does not exist/.exec(err.message)?.[1] : undefined)
  if (table !== undefined) {
    return new LineageQueryError('schema', `${where}: the database has no table \`${table}\` (was it dropped or renamed?); create it again, or stop declaring it (${err.message})`, { ...details, table }, { cause: e })
  }
  if (connectionLost(e)) {
    return new LineageQueryError('database', `${where}: the connection to the database was lost (${code || err.message}${code ? `: ${err.message}` : ''}); what the statement's transaction wrote was rolled back. Retry once the database is reachable`, { ...details, driverCode: code || 'connection-lost' }, { cause: e })
  }
  if (/^SQLITE_(BUSY|LOCKED)/.test(code) || ['40P01', '40001', '55P03'].includes(code)) {
    return new LineageQueryError('busy', `${where}: the database is busy (${code}: ${err.message}); another connection holds a lock it needs. Retry later`, details, { cause: e })
  }
  return new LineageQueryError('database', `${where}: the database refused a statement (${code || err.name}: ${err.message})`, details, { cause: e })
}

/**
 * Wrap the given async methods of `proto` so that driver errors they throw become
 * `LineageQueryError`s naming the method and (`tableOf` its arguments) the table.
 */
export function reportDriverErrors<T extends object>(proto: T, methods: readonly (keyof T & string)[], tableOf: (args: readonly unknown[]) => string | undefined): void {
  for (const method of methods) {
    const body = proto[method] as (this: T, ...args: unknown[]) => Promise<unknown>
    Object.defineProperty(proto, method, {
      configurable: true,
      writable: true,
      value: async function (this: T, ...args: unknown[]): Promise<unknown> {
        try {
          return await body.apply(this, args)
        } catch (e) {
          const table = tableOf(args)
          throw fromDriver(e, `store.${method}${table === undefined ? '' : `(\`${table}\`)`}`)
        }
      },
    })
  }
}
