/**
 * The engine's read statements, one named function each, over the store's tables: revision
 * rows (`lq_rev_R`), metadata rows (`lq_meta_X`), lineage edges (`lq_edge`) and watermarks
 * (`lq_derived`). Each returns plain rows; the engine's phases give them meaning. Key lists
 * travel as one JSON text parameter (`jsonTexts`), so a statement's text does not grow with
 * its list.
 */
import { sql, type Kysely } from 'kysely'
import { chunks } from '../engine.js'
import type { TableDef } from '../../query/schema.js'
import { keyExpr, metaTable, q, revTable, type StoreDialect, type Watermark } from './dialect.js'
import { claimDialects, heldBySql, liveOthersSql, othersParams } from './claims.js'
import { exec, jsonBatch, KEY_CHUNK } from './text.js'

type Db = Kysely<any>

/**
 * A metadata row that is not a tombstone. Deleting a derived row leaves its metadata row with
 * state `deleted` and a new `lq_changed_rev`, so that readers of the table, declared in this
 * store or not, find the deletion by the same watermark scan as any other change.
 */
export const LIVE_TEXT = `lq_state <> 'deleted'`

const num = (v: unknown): number => Number(v)

/**
 * The table holding the revisions of an input table's rows: a root's revision table, or a
 * derived table's metadata (a derived row's revision is its `lq_changed_rev`).
 */
export interface RevisionSource {
  readonly name: string
  readonly isRoot: boolean
  readonly table: string
  readonly rev: string
  /** SQL over the alias `s`: 1 when the row is deleted (a root tombstone, or a derived row's `deleted` state), else 0. */
  readonly deleted: string
  readonly xid: string
}

export function revisionSource(name: string, isRoot: boolean): RevisionSource {
  if (isRoot) return { name, isRoot, table: revTable(name), rev: 'rev', deleted: 's.deleted', xid: 'xid' }
  return { name, isRoot, table: metaTable(name), rev: 'lq_changed_rev', deleted: `CASE WHEN s.lq_state = 'deleted' THEN 1 ELSE 0 END`, xid: 'lq_xid' }
}

// ---------------------------------------------------------------- metadata and revisions

/** A stored metadata row, as read. */
export interface MetaRow {
  readonly lq_key: string
  readonly lq_lineage: string
  readonly lq_inputs: string
  readonly lq_max_input_rev: number
  readonly lq_code_version: string
  readonly lq_state: string
  readonly lq_error: string | null
  readonly lq_changed_rev: number
  /** Query derivations reading tables outside their generators: SHA-1 of the input value. */
  readonly lq_input_hash: string | null
}

const META_COLS = 'lq_key, lq_lineage, lq_inputs, lq_max_input_rev, lq_code_version, lq_state, lq_error, lq_changed_rev, lq_input_hash'

/** Live metadata rows of derived table `table` (all, or by address), by address. */
export async function metaRows(db: Db, d: StoreDialect, table: string, keys: readonly string[] | 'all'): Promise<Map<string, MetaRow>> {
  const out = new Map<string, MetaRow>()
  const take = (rows: readonly Record<string, unknown>[]) => {
    for (const r of rows) {
      out.set(r['lq_key'] as string, {
        lq_key: r['lq_key'] as string,
        lq_lineage: r['lq_lineage'] as string,
        lq_inputs: r['lq_inputs'] as string,
        lq_max_input_rev: num(r['lq_max_input_rev']),
        lq_code_version: r['lq_code_version'] as string,
        lq_state: r['lq_state'] as string,
        lq_error: (r['lq_error'] as string | null) ?? null,
        lq_changed_rev: num(r['lq_changed_rev']),
        lq_input_hash: (r['lq_input_hash'] as string | null) ?? null,
      })
    }
  }
  const M = q(metaTable(table))
  if (keys === 'all') take(await exec(db, `SELECT ${META_COLS} FROM ${M} WHERE ${LIVE_TEXT}`, []))
  else if (keys.length === 1) take(await exec(db, `SELECT ${META_COLS} FROM ${M} WHERE lq_key = ${d.ph(1)} AND ${LIVE_TEXT}`, [keys[0]]))
  else if (keys.length > 1) {
    const text = `SELECT ${META_COLS} FROM ${M} WHERE lq_key IN (${d.jsonTexts(d.ph(1))}) AND ${LIVE_TEXT}`
    for (const part of chunks([...new Set(keys)], KEY_CHUNK)) take(await exec(db, text, [jsonBatch(part, d)]))
  }
  return out
}

/** Addresses among `keys` with a live metadata row in `table` (one statement per chunk; `= $1` for one key). */
export async function liveMetaKeys(db: Db, d: StoreDialect, table: string, keys: readonly string[]): Promise<Set<string>> {
  const out = new Set<string>()
  const M = q(metaTable(table))
  if (keys.length === 1) {
    for (const r of await exec<{ lq_key: string }>(db, `SELECT lq_key FROM ${M} WHERE lq_key = ${d.ph(1)} AND ${LIVE_TEXT}`, [keys[0]])) out.add(r.lq_key)
    return out
  }
  const text = `SELECT lq_key FROM ${M} WHERE lq_key IN (${d.jsonTexts(d.ph(1))}) AND ${LIVE_TEXT}`
  for (const part of chunks(keys, KEY_CHUNK)) for (const r of await exec<{ lq_key: string }>(db, text, [jsonBatch(part, d)])) out.add(r.lq_key)
  return out
}

/** Whether derived table `table` has any metadata row (live or not). */
export async function anyStored(db: Db, table: string): Promise<boolean> {
  return (await exec(db, `SELECT 1 AS one FROM ${q(metaTable(table))} LIMIT 1`, [])).length > 0
}

/**
 * Whether derived table `table` has a metadata row (live or not) whose `lq_changed_rev` lies in
 * one of `spans` (`[after, before)` open at both ends; `before` null: no upper bound): one seek
 * of the `lq_changed_rev` index per span, not a look at each row (`metaChangedInSql`).
 */
export async function metaChangedIn(db: Db, d: StoreDialect, table: string, spans: readonly (readonly [number, number | null])[]): Promise<boolean> {
  if (spans.length === 0) return false
  return (await exec(db, metaChangedInSql(d, table), [jsonBatch(spans.map(([after, before]) => [after, before ?? NO_UPPER_REV]), d)])).length > 0
}

/** The upper bound of a span with none: above every revision a store hands out. */
const NO_UPPER_REV = Number.MAX_SAFE_INTEGER

/**
 * The statement of `metaChangedIn` (one JSON parameter: the spans, each with both bounds). Both
 * bounds are plain comparisons of the indexed column, so each span is one range of the index: an
 * upper bound written `(before IS NULL OR rev < before)` bounded nothing (SQLite), and a span
 * between two of a fill's own writes walked every index entry above it (the fill's later rows)
 * when nobody else wrote there, on every page: a fill whose clock other writers advanced (root
 * writes, writes of other tables) slowed down with the cube of its pages.
 */
export function metaChangedInSql(d: StoreDialect, table: string): string {
  const lo = d.jsonField(0, 'int')
  const hi = d.jsonField(1, 'int')
  return `SELECT 1 AS n FROM ${d.jsonRows(d.ph(1))} WHERE EXISTS (SELECT 1 FROM ${q(metaTable(table))} AS m WHERE m.lq_changed_rev > ${lo} AND m.lq_changed_rev < ${hi}) LIMIT 1`
}

/** Current revisions of live root rows, by key text. */
export async function rootRevs(db: Db, d: StoreDialect, root: string, keys: readonly string[]): Promise<Map<string, number>> {
  const out = new Map<string, number>()
  const text = `SELECT lq_key, rev FROM ${q(revTable(root))} WHERE deleted = 0 AND lq_key IN (${d.jsonTexts(d.ph(1))})`
  for (const part of chunks([...new Set(keys)], KEY_CHUNK)) {
    for (const row of await exec<{ lq_key: string; rev: unknown }>(db, text, [jsonBatch(part, d)])) out.set(row.lq_key, num(row.rev))
  }
  return out
}

/** The column of `pageWithRevs` rows holding the row's live revision (null: none). Root column names never start with `__`. */
export const PAGE_REV = '__rev'
/** The column of `freePageWithRevs` rows that is 1 on a row of the page (null on the one row of a page with no free row). */
export const PAGE_ROW = '__row'
/** Columns of every `freePageWithRevs` row: rows of the window read, its last key, and the keys in it other workers held (JSON array). */
export const PAGE_SCANNED = '__scanned'
export const PAGE_LAST = '__last'
export const PAGE_HELD = '__held'

/** A first-fill page statement (`pageWithRevs`, `freePageWithRevs`) and how to order its parameters. */
export interface PageStatement {
  readonly sql: string
  /** The parameters: the rows query's, then this worker's name and the code version (null: skip no stored row). */
  params(page: readonly unknown[], owner: string, codeVersion: string | null): unknown[]
}

/** The column of page rows saying whether another worker held a live claim on the derived table when the page was read. */
export const PAGE_OTHERS = '__others'

/** Whether another worker than the parameter named `owner` holds a live claim (a row or a range) on derived table `tbl` (parameters, each twice: `othersParams`). */
const othersText = (d: StoreDialect, tbl: string, owner: string): string => liveOthersSql(claimDialects[d.name].nowSql, tbl, owner)

/**
 * A first-fill page of a root with one key column, with each row's live revision, as one
 * statement (one snapshot, no key list): `page` is the compiled page query (its columns named
 * as the root's, `pageParams` parameters, in key order, limited), each row joined to its
 * revision row by the key text the triggers write (`keyExpr`); a row with no live revision row
 * (deleted meanwhile) has `PAGE_REV` null. In the page's key order. `PAGE_OTHERS` says whether
 * another worker held a live claim on derived table `derived` then: the next page is read by
 * `freePageWithRevs`, which skips their rows (a worker alone pays nothing for that).
 */
export function pageWithRevs(d: StoreDialect, root: TableDef, derived: string, page: string, pageParams: number): PageStatement {
  const col = q(root.key![0]!)
  const numbered = d.numberedPlaceholders
  const owner = d.ph(pageParams + 1)
  const tbl = d.ph(pageParams + 2)
  return {
    sql: `SELECT p.*, v.rev AS ${q(PAGE_REV)}, ${othersText(d, tbl, owner)} AS ${q(PAGE_OTHERS)} FROM (${page}) AS p LEFT JOIN ${q(revTable(root.name))} AS v ON v.lq_key = ${keyExpr(root, 'p', d.keyJson)} AND v.deleted = 0 ORDER BY p.${col}`,
    // In text order: the claim look-up (table, owner), then the page's.
    params: (pp, o) => (numbered ? [...pp, o, derived] : [...othersParams(derived, o), ...pp]),
  }
}

/**
 * A first-fill page of a root with one key column for derived table `derived` while other
 * workers fill it too (`pageWithRevs` said so), as one statement (one snapshot, no key list). `rows` is the compiled query of the root's rows from a
 * lower key bound (its columns named as the root's, `rowsParams` parameters); the statement
 * looks at the first `window` of them in key order (the window: a bound on its work whatever
 * the plan; an index range, in the index's order). Each row is joined to its
 * live revision row by the key text the triggers write (`keyExpr`; `PAGE_REV` null: deleted
 * meanwhile) and probed (by primary key) for a live claim of another worker and for a stored
 * row computed from that revision with code version `codeVersion`. The page is the first
 * `limit` rows of the window in key order that are neither (free): N workers filling one table
 * at once each get rows the others have not taken, instead of reading every page and failing
 * to claim it. Every row (and the one row of an empty page, `PAGE_ROW` null) also says how many
 * rows the window read (`PAGE_SCANNED`), its last key (`PAGE_LAST`) and the keys in it another
 * worker held (`PAGE_HELD`, a JSON array), so the caller knows where the next page starts and
 * which rows it left to others.
 */
export function freePageWithRevs(d: StoreDialect, root: TableDef, derived: string, rows: string, rowsParams: number, window: number, limit: number): PageStatement {
  const col = q(root.key![0]!)
  const now = claimDialects[d.name].nowSql
  // Numbered placeholders name the appended parameters; positional ones (`?`) take them in text order.
  const numbered = d.numberedPlaceholders
  const owner = d.ph(rowsParams + 1)
  const cv = d.ph(rowsParams + 2)
  const tbl = d.ph(rowsParams + 3)
  // Every look-up is a scalar subquery, per row of the window, by primary key: joins let
  // PostgreSQL hash the whole revision table, or (NOT EXISTS) the whole metadata table, for
  // every page while the tables' statistics are young. The claim and stored-row probes run only
  // while another worker holds a live claim on the table (one uncorrelated look per statement):
  // a worker alone pays nothing for them, and a row another worker stored after it let every
  // claim go is found stored after the claim instead (`notStored`).
  const p = keyExpr(root, 'p', d.keyJson)
  const w = keyExpr(root, 'w', d.keyJson)
  const others = othersText(d, tbl, owner)
  const heldBy = `CASE WHEN ${others} THEN ${heldBySql(now, tbl, owner, w, `w.${col}`)} END`
  const done = `CASE WHEN ${others} THEN (SELECT 1 FROM ${q(metaTable(derived))} AS m WHERE m.lq_key = ${w} AND m.lq_code_version = ${cv} AND m.lq_max_input_rev = w.${q(PAGE_REV)}) END`
  const rev = `(SELECT v.rev FROM ${q(revTable(root.name))} AS v WHERE v.lq_key = ${p} AND v.deleted = 0)`
  const page = `SELECT p.*, ${rev} AS ${q(PAGE_REV)} FROM (SELECT * FROM (${rows}) AS r ORDER BY r.${col} LIMIT ${Math.trunc(window)}) AS p`
  const win = `SELECT w.*, 1 AS ${q(PAGE_ROW)}, ${heldBy} AS __claimed, ${done} AS __stored FROM (${page}) AS w`
  const free = `SELECT * FROM win WHERE __claimed IS NULL AND __stored IS NULL ORDER BY ${col} LIMIT ${Math.trunc(limit)}`
  const summary = `SELECT count(*) AS ${q(PAGE_SCANNED)}, max(${col}) AS ${q(PAGE_LAST)}, (SELECT ${d.jsonAgg}(${col}) FROM win WHERE __claimed IS NOT NULL) AS ${q(PAGE_HELD)}, ${others} AS ${q(PAGE_OTHERS)} FROM win`
  return {
    sql: `WITH win AS MATERIALIZED (${win}), free AS (${free}) SELECT f.*, s.* FROM (${summary}) AS s LEFT JOIN free AS f ON 1 = 1 ORDER BY f.${col}`,
    // In text order: the claim probe (the look at other workers, then the row's claim and
    // range), the stored-row probe (the look at other workers, code version), the window's, then
    // the look at other workers.
    params: (rp, o, c) => (numbered ? [...rp, o, c, derived] : [...othersParams(derived, o), derived, o, derived, o, ...othersParams(derived, o), c, ...rp, ...othersParams(derived, o)]),
  }
}

/**
 * Key texts of the live rows of root `root` (one integer key column) with keys from `lo`
 * (undefined: the first) to `hi` whose row of derived table `derived` is not stored from their current revision with code
 * version `codeVersion`: what is left of a key range a first fill jumped over (other workers
 * took it). Each look-up is a primary-key probe in a scalar subquery (see `freePageWithRevs`).
 */
export async function unstoredInRange(db: Db, d: StoreDialect, root: TableDef, derived: string, lo: number | undefined, hi: number, codeVersion: string): Promise<string[]> {
  const col = q(root.key![0]!)
  const k = keyExpr(root, 'r', d.keyJson)
  const text = `SELECT s.k FROM (SELECT ${k} AS k, (SELECT v.rev FROM ${q(revTable(root.name))} AS v WHERE v.lq_key = ${k} AND v.deleted = 0) AS rev FROM ${q(root.name)} AS r WHERE ${lo === undefined ? '' : `r.${col} >= ${d.ph(1)} AND `}r.${col} <= ${d.ph(lo === undefined ? 1 : 2)}) AS s WHERE s.rev IS NOT NULL AND (SELECT 1 FROM ${q(metaTable(derived))} AS m WHERE m.lq_key = s.k AND m.lq_code_version = ${d.ph(lo === undefined ? 2 : 3)} AND m.lq_max_input_rev = s.rev) IS NULL ORDER BY s.k`
  return (await exec<{ k: string }>(db, text, lo === undefined ? [hi, codeVersion] : [lo, hi, codeVersion])).map((r) => r.k)
}

/**
 * Which of `keys` (addresses of root `root`'s rows) have a live revision but no row of
 * `derived` stored from it with code version `codeVersion`: `unstoredInRange` over a list of
 * keys (a first fill's span, narrowed to the keys found unstored before the wait for other
 * workers). Driven by the key list (primary-key probes), not by the root's rows.
 */
export async function unstoredAmong(db: Db, d: StoreDialect, root: TableDef, derived: string, keys: readonly string[], codeVersion: string): Promise<string[]> {
  if (keys.length === 0) return []
  const text = `SELECT v.lq_key AS k FROM ${q(revTable(root.name))} AS v WHERE v.lq_key IN (${d.jsonTexts(d.ph(1))}) AND v.deleted = 0 AND NOT EXISTS (SELECT 1 FROM ${q(metaTable(derived))} AS m WHERE m.lq_key = v.lq_key AND m.lq_code_version = ${d.ph(2)} AND m.lq_max_input_rev = v.rev)`
  const out: string[] = []
  for (const part of chunks(keys, KEY_CHUNK)) for (const r of await exec<{ k: string }>(db, text, [jsonBatch(part, d), codeVersion])) out.push(r.k)
  return out
}

/** What every row of a `freePageWithRevs` result says about its window: rows read, the last key, the keys other workers held, whether others held claims. */
export function pageWindow(row: Record<string, unknown> | undefined): { scanned: number; last: unknown; held: unknown[]; others: boolean } {
  if (row === undefined) return { scanned: 0, last: null, held: [], others: false }
  return { scanned: num(row[PAGE_SCANNED]), last: row[PAGE_LAST], held: (json(row[PAGE_HELD]) ?? []) as unknown[], others: truthy(row[PAGE_OTHERS]) }
}

/** A boolean column: PostgreSQL's true, SQLite's 1. */
export const truthy = (v: unknown): boolean => v === true || v === 1 || v === '1' || v === 't'

/** Whether root `root` has a revision row (live or a tombstone) of key text `key`. */
export async function revisionRowExists(db: Db, d: StoreDialect, root: string, key: string): Promise<boolean> {
  return (await exec(db, `SELECT 1 AS one FROM ${q(revTable(root))} WHERE lq_key = ${d.ph(1)}`, [key])).length > 0
}

/** The revision row of a root key: its revision and whether it is a tombstone. */
export async function revisionRow(db: Db, d: StoreDialect, root: string, key: string): Promise<{ rev: number; deleted: boolean } | undefined> {
  const row = (await exec<{ rev: unknown; deleted: unknown }>(db, `SELECT rev, deleted FROM ${q(revTable(root))} WHERE lq_key = ${d.ph(1)}`, [key]))[0]
  return row === undefined ? undefined : { rev: num(row.rev), deleted: num(row.deleted) === 1 }
}

// ---------------------------------------------------------------- changes since a watermark

/** Rows of `s` written since `wm` (index ranges on the revision columns): key and whether deleted. */
export async function changedRows(db: Db, d: StoreDialect, s: RevisionSource, wm: Watermark): Promise<{ k: string; deleted: boolean }[]> {
  const rows = (await sql<{ k: string; deleted: unknown }>`SELECT s.lq_key AS k, ${sql.raw(s.deleted)} AS deleted FROM ${sql.id(s.table)} AS s WHERE ${d.since('s', s.rev, s.xid, wm)}`.execute(db)).rows
  return rows.map((r) => ({ k: r.k, deleted: num(r.deleted) === 1 }))
}

/**
 * Live rows of comprehension derivation `table` stored since `clock` (not seen by a scan at it)
 * from an evaluation before it (`lq_eval_rev`): another worker's batch evaluated earlier and
 * stored after that scan. Their addresses and recorded inputs.
 */
export async function storedSinceFromBefore(db: Db, d: StoreDialect, table: string, clock: Watermark): Promise<{ lq_key: string; lq_inputs: string }[]> {
  const s = revisionSource(table, false)
  return (await sql<{ lq_key: string; lq_inputs: string }>`SELECT s.lq_key, s.lq_inputs FROM ${sql.id(s.table)} AS s WHERE ${d.since('s', s.rev, s.xid, clock)} AND s.lq_eval_rev < ${clock.rev} AND ${sql.raw(LIVE_TEXT)}`.execute(db)).rows
}

/** Keys of `s` written since `wm`, or, without a watermark, every key. */
export async function sourceKeys(db: Db, d: StoreDialect, s: RevisionSource, wm: Watermark | undefined): Promise<string[]> {
  const where = wm === undefined ? sql`` : sql`WHERE ${d.since('s', s.rev, s.xid, wm)}`
  return (await sql<{ lq_key: string }>`SELECT s.lq_key FROM ${sql.id(s.table)} AS s ${where}`.execute(db)).rows.map((r) => r.lq_key)
}

/** Addresses of live metadata rows of `table`, all of them or (`otherThan`) those computed with another code version. */
export async function metaKeys(db: Db, table: string, otherThan?: string): Promise<string[]> {
  const where = otherThan === undefined ? sql`WHERE ${sql.raw(LIVE_TEXT)}` : sql`WHERE lq_code_version <> ${otherThan} AND ${sql.raw(LIVE_TEXT)}`
  return (await sql<{ lq_key: string }>`SELECT lq_key FROM ${sql.id(metaTable(table))} ${where}`.execute(db)).rows.map((r) => r.lq_key)
}

// ---------------------------------------------------------------- one-table scans

/** A scan row of a one-table derivation: the input's revision row (`k`...) beside the stored metadata row (`mk`...). */
export interface PairRow {
  readonly k: string | null
  readonly rev: number
  readonly deleted: boolean
  readonly mk: string | null
  readonly mrev: number
  readonly mcv: string | null
}

/** Which pairs a one-table scan reads. */
export type PairFilter =
  | { readonly mode: 'since'; readonly wm: Watermark; readonly otherThan: string | undefined }
  | { readonly mode: 'keys'; readonly keys: readonly string[] }
  | { readonly mode: 'all' }

/**
 * The input's revision rows joined with derived table `table`'s live metadata rows:
 *
 * ```sql
 * SELECT s.lq_key, s.rev, s.deleted, m.lq_key, m.lq_max_input_rev, m.lq_code_version
 * FROM lq_rev_R AS s LEFT JOIN lq_meta_X AS m ON m.lq_key = s.lq_key AND m.lq_state <> 'deleted'
 * WHERE s.rev > :watermark              -- PostgreSQL: OR s.xid >= :xmax OR s.xid = ANY(:xip)
 * ```
 *
 * plus, with `otherThan`, the stored rows of another code version; with `keys`, those keys;
 * with `all`, every row of both (stored rows with no input row too).
 */
export async function scanPairs(db: Db, d: StoreDialect, s: RevisionSource, table: string, f: PairFilter): Promise<PairRow[]> {
  const out: PairRow[] = []
  const add = (rows: readonly Record<string, unknown>[]) => {
    for (const r of rows) out.push({ k: (r['k'] as string | null) ?? null, rev: num(r['rev']), deleted: num(r['deleted']) === 1, mk: (r['mk'] as string | null) ?? null, mrev: num(r['mrev']), mcv: (r['mcv'] as string | null) ?? null })
  }
  const LIVE = sql.raw(LIVE_TEXT)
  const cols = sql`s.lq_key AS k, s.${sql.id(s.rev)} AS rev, ${sql.raw(s.deleted)} AS deleted, m.lq_key AS mk, m.lq_max_input_rev AS mrev, m.lq_code_version AS mcv`
  const fromSrc = sql`FROM ${sql.id(s.table)} AS s LEFT JOIN ${sql.id(metaTable(table))} AS m ON m.lq_key = s.lq_key AND m.${LIVE}`
  const fromMeta = sql`FROM ${sql.id(metaTable(table))} AS m LEFT JOIN ${sql.id(s.table)} AS s ON s.lq_key = m.lq_key`
  // (Not ORDER BY here: SQLite would then walk the key index instead of the revision range.)
  if (f.mode === 'since') {
    add((await sql<Record<string, unknown>>`SELECT ${cols} ${fromSrc} WHERE ${d.since('s', s.rev, s.xid, f.wm)}`.execute(db)).rows)
    if (f.otherThan !== undefined) add((await sql<Record<string, unknown>>`SELECT ${cols} ${fromMeta} WHERE m.lq_code_version <> ${f.otherThan} AND m.${LIVE}`.execute(db)).rows)
  } else if (f.mode === 'keys') {
    // A few keys (get, status): bound parameters.
    for (const part of chunks(f.keys, 500)) {
      add((await sql<Record<string, unknown>>`SELECT ${cols} ${fromSrc} WHERE s.lq_key IN (${sql.join(part)})`.execute(db)).rows)
      add((await sql<Record<string, unknown>>`SELECT ${cols} ${fromMeta} WHERE m.lq_key IN (${sql.join(part)}) AND s.lq_key IS NULL AND m.${LIVE}`.execute(db)).rows)
    }
  } else {
    add((await sql<Record<string, unknown>>`SELECT ${cols} ${fromSrc} ORDER BY s.lq_key`.execute(db)).rows)
    add((await sql<Record<string, unknown>>`SELECT ${cols} ${fromMeta} WHERE s.lq_key IS NULL AND m.${LIVE}`.execute(db)).rows)
  }
  return out
}

/** Live rows of `s` in key order: key and revision. */
export async function liveSourceRows(db: Db, s: RevisionSource): Promise<{ k: string; rev: number }[]> {
  const rows = await exec<{ k: string; rev: unknown }>(db, `SELECT s.lq_key AS k, s.${q(s.rev)} AS rev FROM ${q(s.table)} AS s WHERE ${s.deleted} = 0 ORDER BY s.lq_key`, [])
  return rows.map((r) => ({ k: r.k, rev: num(r.rev) }))
}

/** How many live rows `s` has. */
export async function countLive(db: Db, s: RevisionSource): Promise<number> {
  return num((await exec<{ n: unknown }>(db, `SELECT count(*) AS n FROM ${q(s.table)} AS s WHERE ${s.deleted} = 0`, []))[0]?.n)
}

/** Up to `limit` live rows of `s` after `cursor` (undefined: from the start), in key order, with their cursors (`keyCursor`). */
export async function sourcePage(db: Db, d: StoreDialect, s: RevisionSource, cursor: unknown, limit: number): Promise<{ k: string; rev: number; c: unknown }[]> {
  const after = cursor === undefined ? '' : ` AND ${d.afterCursor('s', d.ph(1))}`
  const text = `SELECT s.lq_key AS k, s.${q(s.rev)} AS rev, ${d.keyCursor('s')} AS c FROM ${q(s.table)} AS s WHERE ${s.deleted} = 0${after} ORDER BY s.lq_key LIMIT ${Math.trunc(limit)}`
  const rows = await exec<{ k: string; rev: unknown; c: unknown }>(db, text, cursor === undefined ? [] : [cursor])
  return rows.map((r) => ({ k: r.k, rev: num(r.rev), c: r.c }))
}

/** Live rows of a root's revision table whose key text may be an integer beyond the safe range (16 digits or more). */
export async function longKeyRows(db: Db, s: RevisionSource): Promise<{ k: string; rev: number }[]> {
  const rows = await exec<{ k: string; rev: unknown }>(db, `SELECT s.lq_key AS k, s.rev AS rev FROM ${q(s.table)} AS s WHERE s.deleted = 0 AND length(s.lq_key) >= 16`, [])
  return rows.map((r) => ({ k: r.k, rev: num(r.rev) }))
}

// ---------------------------------------------------------------- lineage edges

/**
 * The lineage edges from rows `srcKeys` of table `src` to rows of derived table `dst`
 * (`lq_edge`, by its primary key): the one copy of the edge fan-out, used by scans, `stale`,
 * `affected` and deletes. One key is a plain equality (cheapest to plan).
 */
export async function edgeTargets(db: Db, d: StoreDialect, src: string, srcKeys: readonly string[], dst: string): Promise<{ src_key: string; dst_key: string }[]> {
  if (srcKeys.length === 0) return []
  if (srcKeys.length === 1) return exec(db, `SELECT src_key, dst_key FROM lq_edge WHERE src_table = ${d.ph(1)} AND src_key = ${d.ph(2)} AND dst_table = ${d.ph(3)}`, [src, srcKeys[0], dst])
  const text = `SELECT src_key, dst_key FROM lq_edge WHERE src_table = ${d.ph(1)} AND src_key IN (${d.jsonTexts(d.ph(2))}) AND dst_table = ${d.ph(3)}`
  const out: { src_key: string; dst_key: string }[] = []
  for (const part of chunks(srcKeys, KEY_CHUNK)) out.push(...(await exec<{ src_key: string; dst_key: string }>(db, text, [src, jsonBatch(part, d), dst])))
  return out
}

// ---------------------------------------------------------------- watermarks and the derived-table list

/** A derived table's watermark and the code version its last complete refresh applied. */
export async function readWatermark(db: Db, name: string): Promise<{ wm: Watermark; applied: string | null }> {
  const row = (await sql<{ wm_rev: unknown; wm_xmin: string | null; applied_code_version: string | null }>`SELECT wm_rev, wm_xmin, applied_code_version FROM lq_derived WHERE name = ${name}`.execute(db)).rows[0]
  return { wm: { rev: Number(row?.wm_rev ?? 0), xmin: row?.wm_xmin ?? null }, applied: row?.applied_code_version ?? null }
}

/** Every derived table's watermark. */
export async function allWatermarks(db: Db): Promise<Watermark[]> {
  const rows = (await sql<{ wm_rev: unknown; wm_xmin: string | null }>`SELECT wm_rev, wm_xmin FROM lq_derived`.execute(db)).rows
  return rows.map((w) => ({ rev: Number(w.wm_rev), xmin: w.wm_xmin }))
}

/** Names of the derived tables in the store (declared by any program), sorted. */
export async function derivedNames(db: Db): Promise<string[]> {
  return (await sql<{ name: string }>`SELECT name FROM lq_derived ORDER BY name`.execute(db)).rows.map((r) => r.name)
}

// ---------------------------------------------------------------- affected: the first hop

/** What one statement reads about a root row and the derived tables that read its root directly. */
export interface RootFanOut {
  /** Whether the root row is live (has a revision row not marked deleted). */
  readonly live: boolean
  /** Its revision row's revision and (PostgreSQL) transaction id, when it has one. */
  readonly rev: number | undefined
  readonly xid: string | null
  /** Readers over the root itself (not comprehensions) holding a live row at the root key. */
  readonly stored: ReadonlySet<string>
  /** Comprehension readers: the addresses the lineage edges from the root row reach, by reader. */
  readonly edges: ReadonlyMap<string, readonly string[]>
  /** Comprehension readers: their watermarks. */
  readonly watermarks: ReadonlyMap<string, Watermark>
}

const json = (v: unknown): unknown => (typeof v === 'string' ? JSON.parse(v) : v)

/**
 * The first hop of `affected(root, key)` in one statement (one round trip): the root row's
 * revision row, for each reader over the root the primary-key probe of its metadata at the
 * key, and for the comprehension readers the lineage edges from the row (an index range of
 * `lq_edge`'s primary key) and their watermarks.
 */
export async function rootFanOut(db: Db, d: StoreDialect, root: string, key: string, readers: readonly { readonly name: string; readonly query: boolean }[]): Promise<RootFanOut> {
  const params: unknown[] = []
  const p = (v: unknown): string => {
    params.push(v)
    return d.ph(params.length)
  }
  const queries = readers.filter((r) => r.query).map((r) => r.name)
  const cols = [`(SELECT ${d.jsonArray}(v.rev, v.deleted, ${d.xidText('v.xid')}) FROM ${q(revTable(root))} AS v WHERE v.lq_key = ${p(key)}) AS root`]
  for (const [i, r] of readers.entries()) if (!r.query) cols.push(`(SELECT 1 FROM ${q(metaTable(r.name))} AS m WHERE m.lq_key = ${p(key)} AND m.${LIVE_TEXT}) AS s${i}`)
  if (queries.length > 0) {
    cols.push(`(SELECT ${d.jsonAgg}(${d.jsonArray}(e.dst_table, e.dst_key)) FROM lq_edge AS e WHERE e.src_table = ${p(root)} AND e.src_key = ${p(key)} AND e.dst_table IN (${d.jsonTexts(p(JSON.stringify(queries)))})) AS edges`)
    cols.push(`(SELECT ${d.jsonAgg}(${d.jsonArray}(w.name, w.wm_rev, w.wm_xmin)) FROM lq_derived AS w WHERE w.name IN (${d.jsonTexts(p(JSON.stringify(queries)))})) AS wms`)
  }
  const row = (await exec<Record<string, unknown>>(db, `SELECT ${cols.join(', ')}`, params))[0] ?? {}
  const r = json(row['root']) as [unknown, unknown, string | null] | null | undefined
  const stored = new Set<string>()
  for (const [i, reader] of readers.entries()) if (!reader.query && row[`s${i}`] !== null && row[`s${i}`] !== undefined) stored.add(reader.name)
  const edges = new Map<string, string[]>()
  for (const [t, k] of (json(row['edges']) ?? []) as [string, string][]) (edges.get(t) ?? edges.set(t, []).get(t)!).push(k)
  const watermarks = new Map<string, Watermark>()
  for (const [n, rev, xmin] of (json(row['wms']) ?? []) as [string, unknown, string | null][]) watermarks.set(n, { rev: Number(rev), xmin })
  return { live: r !== null && r !== undefined && Number(r[1]) === 0, rev: r === null || r === undefined ? undefined : Number(r[0]), xid: r?.[2] ?? null, stored, edges, watermarks }
}
