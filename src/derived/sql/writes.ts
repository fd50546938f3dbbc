/**
 * The engine's write statements, as text built from the dialect's hooks: storing results
 * (`writerTexts`), lineage edges, deletes (tombstones and their cascade), watermarks, dropping
 * an undeclared table and collecting tombstones. Fixed per derived table and dialect; a batch's
 * rows or keys travel as one JSON text parameter.
 */
import { CompiledQuery, sql, type Kysely } from 'kysely'
import type { ScalarKind } from '../../query/schema.js'
import { metaTable, q, revTable, type JsonFieldType, type StoreDialect, type Watermark } from './dialect.js'
import { LIVE_TEXT } from './reads.js'
import { exec } from './text.js'
import { assertNever } from '../engine.js'

type Db = Kysely<any>

/** What the result writer of a derived table depends on. */
export interface WriterSpec {
  readonly name: string
  /** Several inputs (comprehension, `joinOnRoot`): the guard compares the recorded inputs. */
  readonly multiInput: boolean
  /** A comprehension derivation: evaluation-clock guards, edges, the collected-tombstone floor. */
  readonly comprehension: boolean
  /** Input hashes are stored (a comprehension reading tables outside its generators). */
  readonly hashed: boolean
  /** Output columns (without lq_key), in declaration order. */
  readonly columns: readonly { readonly name: string; readonly kind: ScalarKind }[]
}

/** The statements that store results of one derivation. */
export interface WriterTexts {
  /**
   * Metadata upsert with the monotonic-write guard: $1 code version, $2/$3 revision, $4 JSON
   * rows; RETURNING the winners and their lq_changed_rev.
   */
  readonly upsertMeta: string
  /**
   * The same rows as `upsertMeta`, same parameters, inserted only where no row is stored at
   * their address (`ON CONFLICT DO NOTHING`), without `RETURNING`: a batch of rows that were
   * missing when found (a first fill) is stored by it when the count of rows it inserted is the
   * batch's (each a winner whose value changed); otherwise `upsertMeta` runs over the same rows
   * and judges them (the rows just inserted are its own winners, unchanged by it).
   */
  readonly insertMeta: string
  /** Data upsert from JSON rows [...columns, lq_key] ($1); undefined when values must be bound one by one (SQLite reals). */
  readonly upsertData: string | undefined
  /** Delete data rows: $1 JSON list of keys. */
  readonly deleteData: string
  /** The whole batch in one statement (PostgreSQL, not for comprehension derivations): see `StoreDialect.batchWrite`. */
  readonly batch: string | undefined
  /**
   * Derivations over one table (no recorded inputs, no evaluation revision, no input hash):
   * `insertMeta`, `upsertMeta` and `batch` for a part whose results are all `ok`, whose JSON metadata rows carry
   * only `[lq_key, lq_max_input_rev, lq_hash]` (`okMetaRow`); the other columns are constants
   * of the statement. Same parameters and results as the full forms. `freshBatch`: `batch` for
   * such a part whose rows were all missing when found (`BatchWriteSpec.fresh`).
   */
  readonly ok: { readonly insertMeta: string; readonly upsertMeta: string; readonly batch: string | undefined; readonly freshBatch: string | undefined } | undefined
}

/**
 * The savepoint a `BatchWriteSpec.fresh` statement runs in, and its rollback when the statement
 * failed with a unique violation (the transaction goes on, and the upsert stores the batch).
 */
export const FRESH_SAVEPOINT = 'SAVEPOINT lq_fresh'
export const FRESH_ROLLBACK = 'ROLLBACK TO SAVEPOINT lq_fresh'

/** The fields of a metadata JSON row: every column (`metaRow` in write.ts), or those of an ok row of a one-table derivation (`okMetaRow`). */
type MetaForm = 'full' | 'ok'

/** How a column of `kind` is read from a JSON batch; undefined when JSON text cannot carry it exactly on this dialect. */
function fieldType(d: StoreDialect, kind: ScalarKind): JsonFieldType | undefined {
  switch (kind) {
    case 'real':
      return d.exactJsonReals ? 'real' : undefined
    case 'string':
    case 'null':
      return 'text'
    case 'int':
    case 'boolean':
    case 'decimal':
    case 'date':
    case 'timestamp':
    case 'json':
      return kind
    default:
      return assertNever(kind, 'column kind')
  }
}

export function writerTexts(d: StoreDialect, x: WriterSpec): WriterTexts {
  const M = q(metaTable(x.name))
  const X = q(x.name)
  const guard = x.multiInput ? d.notOlder(`${M}.lq_inputs`, 'excluded.lq_inputs') : `${M}.lq_max_input_rev <= excluded.lq_max_input_rev`
  // Comprehensions: a result evaluated before a tombstone was written never replaces it (the row
  // left the comprehension, or lost an input, meanwhile); with input hashes (tables read outside
  // the generators, which the recorded inputs do not order), a result never replaces one from a
  // later evaluation.
  const evalGuard = !x.comprehension
    ? ''
    : ` AND (${M}.lq_state <> 'deleted' OR excluded.lq_eval_rev >= ${M}.lq_changed_rev)` + (x.hashed ? ` AND (${M}.lq_eval_rev IS NULL OR excluded.lq_eval_rev >= ${M}.lq_eval_rev)` : '')
  const f = (i: number, t: JsonFieldType) => d.jsonField(i, t)
  const rev = (i: number) => `CAST(${d.ph(i)} AS ${d.revType})`
  // Per column, its value in the row form's JSON rows, or a constant.
  const values = (form: MetaForm): string =>
    form === 'full'
      ? `${f(0, 'text')}, ${f(1, 'text')}, ${f(2, 'text')}, ${f(3, 'int')}, ${d.ph(1)}, ${f(4, 'text')}, ${f(5, 'text')}, ${f(6, 'text')}, ${f(7, 'text')}, ${f(8, 'int')}`
      : `${f(0, 'text')}, '', '', ${f(1, 'int')}, ${d.ph(1)}, 'ok', NULL, ${f(2, 'text')}, NULL, NULL`
  const insertOf = (form: MetaForm) => `INSERT INTO ${M} (lq_key, lq_lineage, lq_inputs, lq_max_input_rev, lq_code_version, lq_state, lq_error, lq_hash, lq_input_hash, lq_eval_rev, lq_computed_rev, lq_changed_rev${d.xidSql === undefined ? '' : ', lq_xid'})
SELECT ${values(form)}, ${rev(2)}, ${rev(3)}${d.xidSql === undefined ? '' : `, ${d.xidSql}`}
FROM ${d.jsonRows(d.ph(4))} WHERE ${x.comprehension ? collectedFloor(d, x.name, f(0, 'text'), f(8, 'int')) : 'true'}`
  const upsertOf = (form: MetaForm) => `${insertOf(form)}
ON CONFLICT (lq_key) DO UPDATE SET
  lq_lineage = excluded.lq_lineage, lq_inputs = excluded.lq_inputs, lq_max_input_rev = excluded.lq_max_input_rev,
  lq_code_version = excluded.lq_code_version, lq_state = excluded.lq_state, lq_error = excluded.lq_error,
  lq_changed_rev = CASE WHEN ${M}.lq_hash IS NOT DISTINCT FROM excluded.lq_hash AND ${M}.lq_state = excluded.lq_state THEN ${M}.lq_changed_rev ELSE excluded.lq_changed_rev END,
  lq_hash = excluded.lq_hash, lq_input_hash = excluded.lq_input_hash, lq_eval_rev = excluded.lq_eval_rev, lq_computed_rev = excluded.lq_computed_rev${d.xidSql === undefined ? '' : ', lq_xid = excluded.lq_xid'}
WHERE ${guard}${evalGuard}
RETURNING lq_key, lq_changed_rev`
  const insertOnly = (form: MetaForm) => `${insertOf(form)}
ON CONFLICT (lq_key) DO NOTHING`
  const types = x.columns.map((c) => fieldType(d, c.kind))
  const exact = types.every((t) => t !== undefined)
  const upsertData = exact
    ? `INSERT INTO ${X} (${[...x.columns.map((c) => c.name), 'lq_key'].map(q).join(', ')})
SELECT ${[...types.map((t, i) => f(i, t!)), f(x.columns.length, 'text')].join(', ')}
FROM ${d.jsonRows(d.ph(1))} WHERE true
ON CONFLICT (lq_key) DO ${x.columns.length === 0 ? 'NOTHING' : `UPDATE SET ${x.columns.map((c) => `${q(c.name)} = excluded.${q(c.name)}`).join(', ')}`}`
    : undefined
  const batchOf = (okRows: boolean, fresh = false) =>
    x.comprehension || !exact ? undefined : d.batchWrite({ meta: metaTable(x.name), data: x.name, guard, columns: x.columns.map((c, i) => ({ name: c.name, type: types[i]! })), okRows, fresh })
  const batch = batchOf(false)
  const ok = x.multiInput || x.comprehension ? undefined : { insertMeta: insertOnly('ok'), upsertMeta: upsertOf('ok'), batch: batchOf(true), freshBatch: batchOf(true, true) }
  return { upsertMeta: upsertOf('full'), insertMeta: insertOnly('full'), upsertData, deleteData: `DELETE FROM ${X} WHERE lq_key IN (${d.jsonTexts(d.ph(1))})`, batch, ok }
}

/** The `lq_store_meta` row holding the highest revision of the tombstones `collect` removed from a table. */
export const collectedName = (table: string): string => `collected_rev:${table}`

/**
 * Comprehension derivations: a result for an address with no metadata row at all is refused
 * when it was evaluated (`lq_eval_rev`) before the highest revision of the tombstones
 * `store.collect` removed from the table: it may be a late result for a row whose tombstone,
 * which the eval-clock guard compared it with, was collected. (Results for addresses with a
 * stored row, live or tombstone, are judged by the guards of the upsert.)
 */
function collectedFloor(d: StoreDialect, table: string, key: string, evalRev: string): string {
  const name = `'${collectedName(table).replace(/'/g, "''")}'`
  return `(COALESCE(${evalRev}, 0) >= COALESCE((SELECT CAST(value AS ${d.revType}) FROM lq_store_meta WHERE name = ${name}), 0) OR EXISTS (SELECT 1 FROM ${q(metaTable(table))} AS o WHERE o.lq_key = ${key}))`
}

/**
 * The deleted-input look-up of one root, as SQL text over a JSON list of keys (parameter 1):
 * per listed key, the revision at which it was deleted (null when live) and whether it has a
 * revision row at all. Each key is a primary-key probe in a scalar subquery, which no planner
 * turns into a join, and whose only condition is the key (`deleted` is tested in the select
 * list, so the partial index of deletions cannot be chosen): the plan is the same whatever the
 * statistics say. Before, PostgreSQL planned `deleted = 1 AND lq_key IN (list)` as a nested
 * loop over every deleted row (found through the partial index) when its statistics predated
 * the deletions: 181 s for 500 keys over 5*10^5 tombstones, against 2.6 ms now.
 */
export function deletedInputsSql(d: StoreDialect, root: string): string {
  const V = q(revTable(root))
  return `WITH k(k) AS (${d.jsonTexts(d.ph(1))}) SELECT k.k AS lq_key, (SELECT CASE WHEN v.deleted = 1 THEN v.rev END FROM ${V} AS v WHERE v.lq_key = k.k) AS drev, (SELECT count(*) FROM ${V} AS v WHERE v.lq_key = k.k) AS present FROM k`
}

/** A root's last deletion: its newest tombstone's revision (one probe of the partial index) and the newest one `collect` removed. */
export async function lastDeletion(db: Db, d: StoreDialect, root: string): Promise<{ tombstone: number; collected: number }> {
  const row = (await exec<{ m: unknown; c: unknown }>(db, `SELECT (SELECT max(rev) FROM ${q(revTable(root))} WHERE deleted = 1) AS m, (SELECT value FROM lq_store_meta WHERE name = ${d.ph(1)}) AS c`, [collectedName(root)]))[0]
  const n = (v: unknown) => (v === null || v === undefined ? 0 : Number(v))
  return { tombstone: n(row?.m), collected: n(row?.c) }
}

/**
 * Move a derived table's watermark to `clock`. The applied code version becomes `codeVersion`
 * unless another caller wrote rows under another code version since `applied` was read (it
 * cleared or changed the applied version): then it stays cleared.
 */
export async function writeWatermark(db: Db, name: string, clock: Watermark, applied: string | null, codeVersion: string): Promise<void> {
  await sql`UPDATE lq_derived SET wm_rev = ${clock.rev}, wm_xmin = ${clock.xmin}, applied_code_version = CASE WHEN COALESCE(applied_code_version, '') = ${applied ?? ''} THEN ${codeVersion} ELSE NULL END WHERE name = ${name}`.execute(db)
}

// ---------------------------------------------------------------- edges and deletes

/** Delete the edges into rows of `dst`: $1 dst table, $2 JSON list of keys. */
export const deleteEdgesSql = (d: StoreDialect): string => `DELETE FROM lq_edge WHERE dst_table = ${d.ph(1)} AND dst_key IN (${d.jsonTexts(d.ph(2))})`

/** Insert edges: $1 dst table, $2 JSON rows [src table, src key, dst key]. */
export const insertEdgesSql = (d: StoreDialect): string => `INSERT INTO lq_edge (src_table, src_key, dst_table, dst_key)
SELECT ${d.jsonField(0, 'text')}, ${d.jsonField(1, 'text')}, ${d.ph(1)}, ${d.jsonField(2, 'text')} FROM ${d.jsonRows(d.ph(2))} WHERE true
ON CONFLICT DO NOTHING`

/**
 * Mark live rows of `table` deleted (tombstones): $1 changed rev, $2 computed rev, $3 JSON list
 * of keys; `onlyWrittenAt`: only rows still as stored by the writes of those revisions.
 * RETURNING the keys marked.
 */
export function tombstoneSql(d: StoreDialect, table: string, onlyWrittenAt: readonly number[] | undefined): string {
  const only = onlyWrittenAt === undefined ? '' : ` AND lq_computed_rev IN (${onlyWrittenAt.map((r) => String(Math.trunc(r))).join(', ')})`
  return `UPDATE ${q(metaTable(table))} SET lq_state = 'deleted', lq_error = NULL, lq_hash = NULL, lq_changed_rev = ${d.ph(1)}, lq_computed_rev = ${d.ph(2)}${d.xidSql === undefined ? '' : `, lq_xid = ${d.xidSql}`} WHERE lq_key IN (${d.jsonTexts(d.ph(3))}) AND ${LIVE_TEXT}${only} RETURNING lq_key`
}

/** Delete data rows of `table`: $1 JSON list of keys. */
export const deleteDataSql = (d: StoreDialect, table: string): string => `DELETE FROM ${q(table)} WHERE lq_key IN (${d.jsonTexts(d.ph(1))})`

// ---------------------------------------------------------------- maintenance

/** Remove an undeclared derived table: its data and metadata tables, edges, `lq_derived` and collection rows. */
export async function dropDerived(trx: Db, name: string): Promise<void> {
  await sql.raw(`DROP TABLE IF EXISTS ${q(name)}`).execute(trx)
  await sql.raw(`DROP TABLE IF EXISTS ${q(metaTable(name))}`).execute(trx)
  await sql`DELETE FROM lq_edge WHERE dst_table = ${name}`.execute(trx)
  await sql`DELETE FROM lq_derived WHERE name = ${name}`.execute(trx)
  await sql`DELETE FROM lq_store_meta WHERE name = ${collectedName(name)}`.execute(trx)
}

/** Which tombstones a collection sweep removes: root revision rows, or derived metadata rows. */
export type SweepTarget = { readonly kind: 'revisions'; readonly root: string } | { readonly kind: 'tombstones'; readonly derived: string }

/**
 * One collection sweep, in the caller's write transaction: the tombstones of `target` written at
 * or before `horizon` and committed in every watermark snapshot are deleted, after the highest
 * revision among them is recorded (`collectedName`). Returns how many were removed.
 */
export async function sweepTombstones(trx: Db, d: StoreDialect, target: SweepTarget, horizon: number, snapshots: readonly string[]): Promise<number> {
  const [table, cond, revCol, xidCol, owner] =
    target.kind === 'revisions' ? [revTable(target.root), 'deleted = 1', 'rev', 'xid', target.root] : [metaTable(target.derived), `lq_state = 'deleted'`, 'lq_changed_rev', 'lq_xid', target.derived]
  const committed = snapshots.flatMap((sn, i) => {
    const c = d.committedIn(xidCol, d.ph(i + 2), sn)
    return c === undefined ? [] : [` AND ${c}`]
  })
  const params = [horizon, ...(committed.length === 0 ? [] : snapshots)]
  const where = `${cond} AND ${revCol} <= ${d.ph(1)}${committed.join('')}`
  const m = (await exec<{ m: unknown }>(trx, `SELECT max(${revCol}) AS m FROM ${q(table)} WHERE ${where}`, params))[0]?.m
  if (m === null || m === undefined) return 0
  const prev = (await exec<{ value: string }>(trx, `SELECT value FROM lq_store_meta WHERE name = ${d.ph(1)}`, [collectedName(owner)]))[0]?.value
  const top = Math.max(Number(m), prev === undefined ? 0 : Number(prev))
  await exec(trx, `INSERT INTO lq_store_meta (name, value) VALUES (${d.ph(1)}, ${d.ph(2)}) ON CONFLICT (name) DO UPDATE SET value = excluded.value`, [collectedName(owner), String(top)])
  return Number((await trx.executeQuery(CompiledQuery.raw(`DELETE FROM ${q(table)} WHERE ${where}`, params))).numAffectedRows ?? 0)
}
