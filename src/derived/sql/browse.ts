/**
 * The statements of the browse read models (src/derived/read/browse.ts, used by the explorer),
 * one named function each, as SQL text per dialect through the `StoreDialect` hooks. They count
 * and page a derived table's stored rows in the database, so a table of millions of rows is
 * never read whole:
 *
 * - `stateCounts`: for many derived tables at once, the stored rows per stored state, and how
 *   many of a given list of addresses per table are stored in each state: `UNION ALL` of two
 *   grouped counts per table (a scan, and index probes for the list), as few statements as the
 *   arm limit allows (SQLite compiles at most 500 arms per compound statement).
 * - `rootCounts`: the rows of many root tables, one statement.
 * - `storedPage`: one page of a derived table's rows in address order after (or before) a
 *   cursor, by keyset: the stored rows in one stored state (or all), leaving out a list of
 *   addresses, merged with a list of extra addresses; each part `ORDER BY ... LIMIT` on its own
 *   (the stored rows over an index range), then merged.
 *
 * Address lists travel as one JSON text parameter each (`StoreDialect.jsonTexts`).
 */
import type { Kysely } from 'kysely'
import { chunks } from '../engine.js'
import { metaTable, q, type StoreDialect } from './dialect.js'
import { LIVE_TEXT } from './reads.js'
import { exec, jsonBatch, KEY_CHUNK } from './text.js'

type Db = Kysely<any>

/** A string as an SQL literal (table names in result columns; they are checked names, quoted anyway). */
const lit = (s: string): string => `'${s.replace(/'/g, "''")}'`

/** Arms per compound statement: SQLite runs a compound of hundreds of arms much slower than several of tens (measured: 200 tables in 1 statement ~4x the time of 10 statements). */
const ARMS = 40

/** One grouped count of `stateCounts`: rows of `table` stored in state `state`; `probe` counts the rows among the given addresses. */
export interface StateCountRow {
  readonly table: string
  readonly state: string
  readonly n: number
  readonly probe: boolean
}

/**
 * Stored rows of each table per stored state (`probe: false`), and of each table's `addrs` the
 * stored ones per stored state (`probe: true`, one row per state and list chunk: sum them);
 * deleted rows left out.
 */
export async function stateCounts(db: Db, d: StoreDialect, tables: readonly { readonly table: string; readonly addrs: readonly string[] }[]): Promise<StateCountRow[]> {
  const arms: { text: (i: number) => string; param?: string; probe: boolean }[] = []
  for (const { table, addrs } of tables) {
    const M = q(metaTable(table))
    arms.push({ text: () => `SELECT ${lit(table)} AS t, lq_state AS st, count(*) AS n, 0 AS p FROM ${M} WHERE ${LIVE_TEXT} GROUP BY lq_state`, probe: false })
    for (const part of chunks([...new Set(addrs)], KEY_CHUNK)) {
      arms.push({ text: (i) => `SELECT ${lit(table)} AS t, lq_state AS st, count(*) AS n, 1 AS p FROM ${M} WHERE lq_key IN (${d.jsonTexts(d.ph(i))}) AND ${LIVE_TEXT} GROUP BY lq_state`, param: jsonBatch(part, d), probe: true })
    }
  }
  const out: StateCountRow[] = []
  for (const group of chunks(arms, ARMS)) {
    const params: string[] = []
    const text = group.map((a) => (a.param === undefined ? a.text(0) : (params.push(a.param), a.text(params.length)))).join('\nUNION ALL\n')
    for (const r of await exec<{ t: string; st: string; n: unknown; p: unknown }>(db, text, params)) out.push({ table: r.t, state: r.st, n: Number(r.n), probe: Number(r.p) === 1 })
  }
  return out
}

/** Rows of each root table (its own rows, as stored), by name. */
export async function rootCounts(db: Db, roots: readonly string[]): Promise<Map<string, number>> {
  const out = new Map<string, number>()
  for (const group of chunks(roots, ARMS)) {
    const text = group.map((r) => `SELECT ${lit(r)} AS t, count(*) AS n FROM ${q(r)}`).join('\nUNION ALL\n')
    for (const row of await exec<{ t: string; n: unknown }>(db, text, [])) out.set(row.t, Number(row.n))
  }
  return out
}

/** What `storedPage` reads: which stored rows, which addresses besides, from where, how many. */
export interface PageRequest {
  /** Stored rows in this stored state (`ok`, `failed`, ...); `'all'`: every live stored row; `'none'`: no stored row. */
  readonly stored: string
  /** Addresses whose stored row is left out (rows shown from `extra` or not at all). */
  readonly exclude: readonly string[]
  /** Addresses listed besides the stored rows (stored or not). */
  readonly extra: readonly string[]
  /** Rows after this address (`after`) or before it (`before`, read backwards); none: from the first. */
  readonly cursor?: { readonly after: string } | { readonly before: string }
  readonly limit: number
}

/**
 * One page of addresses in address order (the database's order of `lq_key` text) by keyset:
 * the selected stored rows with their stored state, and the `extra` addresses (`state` null),
 * at most `limit`, after or before the cursor. Read backwards (`before`), still returned in
 * address order.
 */
export async function storedPage(db: Db, d: StoreDialect, table: string, r: PageRequest): Promise<{ key: string; state: string | null }[]> {
  const M = q(metaTable(table))
  const back = r.cursor !== undefined && 'before' in r.cursor
  const from = r.cursor === undefined ? undefined : 'after' in r.cursor ? r.cursor.after : r.cursor.before
  const cmp = back ? '<' : '>'
  const dir = back ? 'DESC' : 'ASC'
  const params: unknown[] = []
  const p = (v: unknown): string => (params.push(v), d.ph(params.length))
  const arms: string[] = []
  if (r.stored !== 'none') {
    const where = [LIVE_TEXT]
    if (r.stored !== 'all') where.push(`lq_state = ${p(r.stored)}`)
    if (from !== undefined) where.push(`lq_key ${cmp} ${p(from)}`)
    if (r.exclude.length > 0) where.push(`lq_key NOT IN (${d.jsonTexts(p(jsonBatch([...new Set(r.exclude)], d)))})`)
    arms.push(`SELECT lq_key AS k, lq_state AS st FROM ${M} WHERE ${where.join(' AND ')} ORDER BY k ${dir} LIMIT ${p(r.limit)}`)
  }
  if (r.extra.length > 0) {
    // The extra addresses as rows ([address] arrays, so one JSON text parameter however many).
    const k = d.jsonField(0, 'text')
    arms.push(`SELECT ${k} AS k, NULL AS st FROM ${d.jsonRows(p(jsonBatch([...new Set(r.extra)].map((a) => [a]), d)))}${from === undefined ? '' : ` WHERE ${k} ${cmp} ${p(from)}`} ORDER BY k ${dir} LIMIT ${p(r.limit)}`)
  }
  if (arms.length === 0) return []
  // Each arm ordered and limited on its own (an index range on lq_key for the stored rows), so
  // neither database sorts a whole table: PostgreSQL planned an outer ORDER BY ... LIMIT alone
  // over the union as a sort of every row after the cursor. (Parameters in text order: SQLite's
  // placeholders are positional.)
  const text = `${arms.map((a, i) => `SELECT k, st FROM (${a}) AS a${i}`).join('\nUNION ALL\n')}\nORDER BY 1 ${dir} LIMIT ${p(r.limit)}`
  const rows = await exec<{ k: string; st: string | null }>(db, text, params)
  const out = rows.map((x) => ({ key: x.k, state: x.st }))
  return back ? out.reverse() : out
}
