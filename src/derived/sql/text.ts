/**
 * Statements written as SQL text with bound parameters, executed through Kysely without its
 * query builder. The engine's hot statements (metadata upserts, data writes, key lookups) have
 * a text fixed per table and dialect, built once and cached, and take their rows or keys as one
 * JSON text parameter (`StoreDialect.jsonRows` / `jsonTexts`): no Kysely compilation per
 * statement, no SQL text growing with the batch, and on SQLite a small statement to prepare
 * (Kysely's SQLite driver prepares every statement it runs).
 */
import { CompiledQuery, type Kysely } from 'kysely'

/** Run one statement given as text and parameters; its rows. */
export async function exec<R = Record<string, unknown>>(db: Kysely<any>, text: string, params: readonly unknown[]): Promise<R[]> {
  const r = await db.executeQuery<R>(CompiledQuery.raw(text, params as unknown[]))
  return r.rows as R[]
}

/** Run one statement given as text and parameters that returns no rows; the number of rows it inserted, updated or deleted. */
export async function execCount(db: Kysely<any>, text: string, params: readonly unknown[]): Promise<number> {
  const r = await db.executeQuery(CompiledQuery.raw(text, params as unknown[]))
  return Number(r.numAffectedRows ?? 0)
}

/** Keys per JSON key-list statement. */
export const KEY_CHUNK = 10_000

// A lone surrogate in a JavaScript string: JSON.stringify writes it as a \uD8xx-\uDFxx escape.
// SQLite's JSON functions decode it to the bytes better-sqlite3 writes for a bound string, but
// PostgreSQL's JSON parser rejects it, where a bound string becomes U+FFFD (node-postgres
// encodes it so): JSON batches for PostgreSQL do the same replacement.
const SURROGATE_ESCAPE = /\\u[dD][89a-fA-F]/
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g

/**
 * The longest JSON text of a batch, in characters: V8's string limit (about 2^29) unless a
 * test lowers it. Past it, `jsonBatch` throws the `RangeError` V8 throws, and `writeResults`
 * splits the batch.
 */
export const jsonLimits = { maxChars: Infinity }

/** The JSON text of a batch (an array of rows or of keys), for a `jsonRows`/`jsonTexts` parameter. */
export function jsonBatch(value: unknown, d: { readonly replaceLoneSurrogates: boolean }): string {
  const text = JSON.stringify(value)
  if (text.length > jsonLimits.maxChars) throw new RangeError(`Invalid string length (a JSON batch of ${text.length} characters; the limit is ${jsonLimits.maxChars})`)
  if (!d.replaceLoneSurrogates || !SURROGATE_ESCAPE.test(text)) return text
  return JSON.stringify(value, (_k, v: unknown) => (typeof v === 'string' ? v.replace(LONE_SURROGATE, '\ufffd') : v))
}
