/**
 * Typed errors. Every public entry point rejects bad input with a `LineageQueryError` whose
 * `code` says what kind of input was wrong; the message names the table, column, value or
 * construct and what was expected.
 *
 * @example
 * ```ts
 * try { await run(db, q) } catch (e) {
 *   if (e instanceof LineageQueryError && e.code === 'decode') console.error(e.message)
 * }
 * ```
 */
export type ErrorCode =
  /** A table declaration is malformed (bad name, unsupported codec, unknown key column). */
  | 'schema'
  /** A query refers to a column that its table or record does not have. */
  | 'unknown-column'
  /** An operand or constant has the wrong type for its operator. */
  | 'type'
  /** The query is well-typed but cannot be compiled (and the message says why). */
  | 'compile'
  /** A row or value read from the database does not match its declared codec. */
  | 'decode'
  /** The Kysely instance uses a dialect this library does not support. */
  | 'dialect'
  /** A lineage request cannot be met (for example a tracked table without a key). */
  | 'lineage'
  /** A public function received an argument of the wrong kind. */
  | 'argument'
  /** An operation was stopped by its `AbortSignal` (`details.report` holds what was done, for `refresh`). */
  | 'aborted'
  /** The database stayed busy (locked by another connection, or deadlocked) longer than the store waits. */
  | 'busy'
  /** An OpenLineage event could not be written to its file or sent to its endpoint. */
  | 'openlineage'
  /** The database refused a statement for a reason the store cannot handle (the driver's error is the `cause`). */
  | 'database'

export class LineageQueryError extends Error {
  override readonly name = 'LineageQueryError'
  readonly code: ErrorCode
  /** Structured details (table, column, value, ...) for programs that handle the error. */
  readonly details: Readonly<Record<string, unknown>>

  constructor(code: ErrorCode, message: string, details: Record<string, unknown> = {}, options?: { cause?: unknown }) {
    super(message, options)
    this.code = code
    this.details = Object.freeze({ ...details })
  }
}

/** Render a value for an error message (strings quoted, long values cut). */
export function showValue(value: unknown): string {
  let s: string
  try {
    // NaN and ±Infinity are numbers JSON would print as null; a Date would print as its string.
    s =
      typeof value === 'string'
        ? JSON.stringify(value)
        : typeof value === 'bigint'
          ? `${value}n`
          : typeof value === 'number' && !Number.isFinite(value)
            ? String(value)
            : value instanceof Date
              ? `a Date (${Number.isNaN(value.getTime()) ? 'invalid' : value.toISOString()})`
              : JSON.stringify(value) ?? String(value)
  } catch {
    s = String(value)
  }
  return s.length > 80 ? `${s.slice(0, 77)}...` : s
}
