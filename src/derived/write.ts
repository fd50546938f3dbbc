/**
 * Storing results and removing orphaned rows. Every write of a batch happens in one
 * transaction, and a result replaces a stored row only if it was computed from inputs no older
 * than the stored row's (the monotonic-write rule):
 *
 * ```sql
 * INSERT INTO lq_meta_X (lq_key, ..., lq_max_input_rev, lq_inputs, ...)
 * SELECT ... FROM json_each(:rows)          -- PostgreSQL: jsonb_array_elements(:rows::jsonb)
 * ON CONFLICT (lq_key) DO UPDATE SET ...,
 *   lq_changed_rev = CASE WHEN lq_meta_X.lq_hash IS NOT DISTINCT FROM excluded.lq_hash
 *                          AND lq_meta_X.lq_state = excluded.lq_state
 *                         THEN lq_meta_X.lq_changed_rev ELSE excluded.lq_changed_rev END   -- backdating
 * WHERE lq_meta_X.lq_max_input_rev <= excluded.lq_max_input_rev      -- one input
 *    -- or, several inputs: no input recorded in the stored row is newer than in the new one
 *    -- comprehensions: AND (not a tombstone OR excluded.lq_eval_rev >= its lq_changed_rev)
 *    --   and, with input hashes, AND excluded.lq_eval_rev >= lq_meta_X.lq_eval_rev
 * RETURNING lq_key, lq_changed_rev
 * ```
 *
 * Rows the `WHERE` refuses come back in no `RETURNING` row; their data is not touched. The
 * data table gets the values of the winners whose value changed (ok rows) and loses the rows
 * of failed/blocked winners. Before the upsert, in the same transaction, results computed from
 * an input deleted since are refused (`deadResults`, counted as superseded); on PostgreSQL the
 * same check runs again after the commit, in its own transaction, and deletes what it finds
 * among the rows this write stored.
 *
 * The statements' texts are fixed per derived table (see `sqltext.ts`): a batch's rows are one
 * JSON parameter. Data rows are written from the already checked function results (see
 * `checkOutput` in `store.ts`), without going through `insertRows` again, except on SQLite for
 * tables with real columns (bound parameters, see `StoreDialect.exactJsonReals`).
 */
import { createHash, hash as oneShotHash } from 'node:crypto'
import type { Kysely } from 'kysely'
import { insertRows } from '../query/ddl.js'
import { metaTable, q, revTable, type JsonFieldType, type StoreDialect } from './dialect.js'
import { retryBusy } from './busy.js'
import { BUSY_WAIT_MS, chunks, readersOf, type Derivation, type Engine, type Task } from './engine.js'
import { inputsText } from './keys.js'
import { exec, jsonBatch, KEY_CHUNK } from './sqltext.js'
import { LIVE_TEXT, readsFor } from './staleness.js'
import { emptyTableReport, type TableReport } from './types.js'

/** The outcome of one task. */
export type Outcome =
  | { readonly state: 'ok'; readonly row: Record<string, unknown> }
  | { readonly state: 'failed'; readonly message: string; readonly stack: string | undefined; readonly timeoutMs?: number }
  | { readonly state: 'blocked'; readonly table: string; readonly key: string }

export interface Result {
  readonly task: Task
  readonly outcome: Outcome
}

/** SHA-1 hex of a string: Node's one-shot `crypto.hash` where there is one (Node >= 20.12), else a Hash object. */
const sha1: (s: string) => string =
  typeof oneShotHash === 'function' ? (s) => oneShotHash('sha1', s, 'hex') : (s) => createHash('sha1').update(s).digest('hex')

/** The value hash compared for backdating: SHA-1 of the output columns' JSON, or of the error. */
export function hashOf(o: Outcome, columns: readonly string[]): string {
  if (o.state === 'ok') return sha1(JSON.stringify(columns.map((c) => o.row[c] ?? null)))
  if (o.state === 'failed') return sha1(`failed\u0000${o.message}`)
  return sha1(`blocked\u0000${o.table}\u0000${o.key}`)
}

function errorText(o: Outcome): string | null {
  if (o.state === 'failed') return JSON.stringify(o.timeoutMs === undefined ? { message: o.message, stack: o.stack ?? null } : { message: o.message, stack: null, timeoutMs: o.timeoutMs })
  if (o.state === 'blocked') return JSON.stringify({ table: o.table, key: o.key })
  return null
}

/** Rows per write statement (each statement's rows travel as one JSON parameter). */
const WRITE_CHUNK = 5000

/** The statements that store results of one derivation, built once per derivation and dialect. */
interface Writer {
  /** Output columns (without lq_key), in declaration order. */
  readonly columns: readonly string[]
  /**
   * Metadata upsert with the monotonic-write guard: $1 code version, $2/$3 revision, $4 JSON
   * rows; RETURNING the winners and their lq_changed_rev.
   */
  readonly upsertMeta: string
  /** Data upsert from JSON rows [...columns, lq_key] ($1); undefined when reals must be bound one by one (SQLite). */
  readonly upsertData: string | undefined
  /** Delete data rows: $1 JSON list of keys. */
  readonly deleteData: string
  /** The whole batch in one statement (PostgreSQL, not for comprehension derivations): see `StoreDialect.batchWrite`. */
  readonly batch: string | undefined
}

const writers = new WeakMap<Derivation, Writer>()

const fieldType = (kind: string): JsonFieldType => (kind === 'int' ? 'int' : kind === 'real' ? 'real' : kind === 'boolean' ? 'boolean' : 'text')

function writerFor(d: StoreDialect, x: Derivation): Writer {
  const hit = writers.get(x)
  if (hit !== undefined) return hit
  const M = q(metaTable(x.name))
  const X = q(x.name)
  const multi = x.source.kind === 'query' || x.source.kind === 'zip'
  const guard = multi ? d.notOlder(`${M}.lq_inputs`, 'excluded.lq_inputs') : `${M}.lq_max_input_rev <= excluded.lq_max_input_rev`
  // Comprehensions: a result evaluated before a tombstone was written never replaces it (the row
  // left the comprehension, or lost an input, meanwhile); with input hashes (tables read outside
  // the generators, which the recorded inputs do not order), a result never replaces one from a
  // later evaluation.
  const evalGuard =
    x.source.kind !== 'query'
      ? ''
      : ` AND (${M}.lq_state <> 'deleted' OR excluded.lq_eval_rev >= ${M}.lq_changed_rev)` +
        (readsFor(x).opaque.size > 0 ? ` AND (${M}.lq_eval_rev IS NULL OR excluded.lq_eval_rev >= ${M}.lq_eval_rev)` : '')
  const f = (i: number, t: JsonFieldType) => d.jsonField(i, t)
  const rev = (i: number) => `CAST(${d.ph(i)} AS ${d.revType})`
  const upsertMeta = `INSERT INTO ${M} (lq_key, lq_lineage, lq_inputs, lq_max_input_rev, lq_code_version, lq_state, lq_error, lq_hash, lq_input_hash, lq_eval_rev, lq_computed_rev, lq_changed_rev${d.xidSql === undefined ? '' : ', lq_xid'})
SELECT ${f(0, 'text')}, ${f(1, 'text')}, ${f(2, 'text')}, ${f(3, 'int')}, ${d.ph(1)}, ${f(4, 'text')}, ${f(5, 'text')}, ${f(6, 'text')}, ${f(7, 'text')}, ${f(8, 'int')}, ${rev(2)}, ${rev(3)}${d.xidSql === undefined ? '' : `, ${d.xidSql}`}
FROM ${d.jsonRows(d.ph(4))} WHERE ${x.source.kind === 'query' ? collectedFloor(d, x.name, f(0, 'text'), f(8, 'int')) : 'true'}
ON CONFLICT (lq_key) DO UPDATE SET
  lq_lineage = excluded.lq_lineage, lq_inputs = excluded.lq_inputs, lq_max_input_rev = excluded.lq_max_input_rev,
  lq_code_version = excluded.lq_code_version, lq_state = excluded.lq_state, lq_error = excluded.lq_error,
  lq_changed_rev = CASE WHEN ${M}.lq_hash IS NOT DISTINCT FROM excluded.lq_hash AND ${M}.lq_state = excluded.lq_state THEN ${M}.lq_changed_rev ELSE excluded.lq_changed_rev END,
  lq_hash = excluded.lq_hash, lq_input_hash = excluded.lq_input_hash, lq_eval_rev = excluded.lq_eval_rev, lq_computed_rev = excluded.lq_computed_rev${d.xidSql === undefined ? '' : ', lq_xid = excluded.lq_xid'}
WHERE ${guard}${evalGuard}
RETURNING lq_key, lq_changed_rev`
  const outCols = x.def.columns.filter((c) => c.name !== 'lq_key')
  const exact = d.exactJsonReals || !outCols.some((c) => c.type.kind === 'real')
  const dataCols = [...outCols.map((c) => c.name), 'lq_key']
  const upsertData = exact
    ? `INSERT INTO ${X} (${dataCols.map(q).join(', ')})
SELECT ${[...outCols.map((c, i) => f(i, fieldType(c.type.kind))), f(outCols.length, 'text')].join(', ')}
FROM ${d.jsonRows(d.ph(1))} WHERE true
ON CONFLICT (lq_key) DO ${outCols.length === 0 ? 'NOTHING' : `UPDATE SET ${outCols.map((c) => `${q(c.name)} = excluded.${q(c.name)}`).join(', ')}`}`
    : undefined
  const batch =
    x.source.kind === 'query' || !exact ? undefined : d.batchWrite({ meta: metaTable(x.name), data: x.name, guard, columns: outCols.map((c) => ({ name: c.name, type: fieldType(c.type.kind) })) })
  const w: Writer = { columns: outCols.map((c) => c.name), upsertMeta, upsertData, deleteData: `DELETE FROM ${X} WHERE lq_key IN (${d.jsonTexts(d.ph(1))})`, batch }
  writers.set(x, w)
  return w
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

const byAddr = (a: Result, b: Result): number => (a.task.addr < b.task.addr ? -1 : a.task.addr > b.task.addr ? 1 : 0)

/**
 * Store a batch of results in one transaction: the metadata upsert with the monotonic-write
 * guard decides the winners (its RETURNING rows; the rows it refuses are not touched, data
 * included); winners whose value changed get their data rows written (ok) or removed (failed,
 * blocked).
 */
/**
 * A fencing check run in the write transaction: the addresses (of those given) whose lease
 * another worker now holds; their results are refused (counted as superseded).
 */
export type Fence = (trx: Kysely<any>, keys: readonly string[]) => Promise<ReadonlySet<string>>

export async function writeResults(engine: Engine, x: Derivation, results: readonly Result[], report: TableReport, fence?: Fence): Promise<void> {
  try {
    await writeResultsOnce(engine, x, results, report, fence)
  } catch (e) {
    // A batch whose JSON text is longer than JavaScript can build (V8: "Invalid string length")
    // was not written (its transaction rolled back): store it in halves; a single result that
    // is too large by itself is stored as failed, so it is not retried forever.
    if (!(e instanceof RangeError) || results.length === 0) throw e
    if (results.length > 1) {
      const half = results.length >> 1
      await writeResults(engine, x, results.slice(0, half), report, fence)
      await writeResults(engine, x, results.slice(half), report, fence)
      return
    }
    const message = `derived table \`${x.name}\`: the result is too large to store: its JSON text is longer than the longest string JavaScript can build (${e.message})`
    await writeResultsOnce(engine, x, [{ task: results[0]!.task, outcome: { state: 'failed', message, stack: undefined } }], report, fence)
  }
}

async function writeResultsOnce(engine: Engine, x: Derivation, results: readonly Result[], report: TableReport, fence: Fence | undefined): Promise<void> {
  if (results.length === 0) return
  const { db, d } = engine
  const w = writerFor(d, x)
  // Key order: the rows land in the indexes on lq_key in order (cheaper on SQLite's B-trees).
  const sorted = [...results].sort(byAddr)
  let written: readonly Result[] = []
  let revs: number[] = []
  // Counted per attempt and added once committed (a busy database makes the transaction run again).
  let counts = emptyTableReport()
  await retryBusy(d, `refresh of \`${x.name}\` (storing ${sorted.length} results)`, engine.busyMs ?? BUSY_WAIT_MS, () => db.transaction().execute(async (trx) => {
    counts = emptyTableReport()
    const report = counts
    // SQLite: take the write lock first, so the reads below see the newest data and a busy
    // database is waited for (see StoreDialect.beginWrite).
    await d.beginWrite(trx)
    // Results computed from an input row that has since been deleted are refused (superseded):
    // the deletion may already have been processed, and the row would otherwise come back.
    const dead = await deadResults(engine, trx, sorted)
    report.superseded += dead.size
    let live = dead.size === 0 ? sorted : sorted.filter((r) => !dead.has(r))
    if (fence !== undefined && live.length > 0) {
      const lost = await fence(trx, live.map((r) => r.task.addr))
      if (lost.size > 0) {
        report.superseded += live.filter((r) => lost.has(r.task.addr)).length
        live = live.filter((r) => !lost.has(r.task.addr))
      }
    }
    written = live
    if (live.length === 0) return
    // Rows written under a code version other than the one the table's last refresh applied:
    // forget the applied version, so the next scan looks for rows of other code versions.
    await exec(trx, `UPDATE lq_derived SET applied_code_version = NULL WHERE name = ${d.ph(1)} AND applied_code_version <> ${d.ph(2)}`, [x.name, x.codeVersion])
    revs = w.batch !== undefined ? await writeBatch(trx, d, x, w, w.batch, live, report) : await writeInTransaction(trx, d, x, w, live, report)
  }))
  for (const k of Object.keys(counts) as (keyof TableReport)[]) report[k] += counts[k]
  // PostgreSQL (READ COMMITTED, many writers): a deletion that committed after the check above
  // but before this commit was not seen by it, and a refresh that processed the deletion may
  // not have seen the rows just written. Checked again now: a deletion committed before this
  // check is seen here, and one committed after it is processed by a scan that sees these rows.
  // (SQLite: one writer at a time, the check above ran in the writing transaction.)
  if (d.name === 'postgres' && written.length > 0) {
    const dead = await deadResults(engine, db, written)
    // Only rows these writes stored: another caller may have stored a newer row meanwhile.
    if (dead.size > 0) await deleteRows(engine, x, [...dead].map((r) => r.task.addr), { [x.name]: report }, revs)
  }
}

/**
 * The results computed from an input row that has since been deleted: a root input whose
 * revision row is marked deleted at a revision newer than the one recorded, or a derived
 * input whose metadata row is gone or a tombstone. A root whose last deletion (one probe of a
 * partial index) is older than every revision recorded for it needs no per-key look-up.
 */
async function deadResults(engine: Engine, db: Kysely<any>, sorted: readonly Result[]): Promise<Set<Result>> {
  const { d } = engine
  const byTable = new Map<string, Set<string>>()
  for (const r of sorted) {
    for (const [t, k] of r.task.inputs) {
      let s = byTable.get(t)
      if (s === undefined) byTable.set(t, (s = new Set()))
      s.add(k)
    }
  }
  // table -> key -> revision at which it was deleted (Infinity: a derived row that is gone)
  const gone = new Map<string, Map<string, number>>()
  for (const [t, keySet] of byTable) {
    const keys = [...keySet]
    const g = new Map<string, number>()
    if (engine.roots.has(t)) {
      let oldest = Infinity
      for (const r of sorted) for (const [tt, , rev] of r.task.inputs) if (tt === t && rev < oldest) oldest = rev
      // The last deletion: the newest tombstone, or the newest one `collect` removed.
      const row = (await exec<{ m: unknown; c: unknown }>(db, `SELECT (SELECT max(rev) FROM ${q(revTable(t))} WHERE deleted = 1) AS m, (SELECT value FROM lq_store_meta WHERE name = ${d.ph(1)}) AS c`, [collectedName(t)]))[0]
      const collected = row?.c === null || row?.c === undefined ? 0 : Number(row.c)
      const last = Math.max(row?.m === null || row?.m === undefined ? 0 : Number(row.m), collected)
      if (last <= oldest) continue
      for (const part of chunks(keys, KEY_CHUNK)) {
        for (const r of await exec<{ lq_key: string; drev: unknown; present: unknown }>(db, deletedInputsSql(d, t), [jsonBatch(part, d)])) {
          if (r.drev !== null && r.drev !== undefined) g.set(r.lq_key, Number(r.drev))
          // No revision row at all: deleted, and its tombstone collected (at a revision up to `collected`).
          else if (Number(r.present) === 0 && collected > 0) g.set(r.lq_key, collected)
        }
      }
    } else if (engine.derivations.has(t)) {
      const present = new Set<string>()
      for (const part of chunks(keys, KEY_CHUNK)) {
        const rows = await exec<{ lq_key: string }>(db, `SELECT lq_key FROM ${q(metaTable(t))} WHERE lq_key IN (${d.jsonTexts(d.ph(1))}) AND ${LIVE_TEXT}`, [jsonBatch(part, d)])
        for (const row of rows) present.add(row.lq_key)
      }
      for (const k of keys) if (!present.has(k)) g.set(k, Infinity)
    }
    if (g.size > 0) gone.set(t, g)
  }
  const dead = new Set<Result>()
  if (gone.size === 0) return dead
  for (const r of sorted) {
    if (r.task.inputs.some(([t, k, rev]) => {
      const at = gone.get(t)?.get(k)
      return at !== undefined && at > rev
    })) dead.add(r)
  }
  return dead
}

/** Store results in the caller's transaction (SQLite, and comprehension derivations); returns the revision written at. */
async function writeInTransaction(trx: Kysely<any>, d: StoreDialect, x: Derivation, w: Writer, sorted: readonly Result[], report: TableReport): Promise<number[]> {
  {
    const rev = await d.nextRev(trx)
    const won = new Map<string, boolean>() // addr -> value changed
    for (const part of chunks(sorted, WRITE_CHUNK)) {
      const rows = part.map((r) => metaRow(x, r, w.columns))
      const out = await exec<{ lq_key: string; lq_changed_rev: unknown }>(trx, w.upsertMeta, [x.codeVersion, rev, rev, jsonBatch(rows, d)])
      for (const row of out) won.set(row.lq_key, Number(row.lq_changed_rev) === rev)
    }
    const changed = sorted.filter((r) => won.get(r.task.addr) === true)
    const ok = changed.filter((r) => r.outcome.state === 'ok')
    const gone = changed.filter((r) => r.outcome.state !== 'ok').map((r) => r.task.addr)
    for (const part of chunks(gone, KEY_CHUNK)) await exec(trx, w.deleteData, [jsonBatch(part, d)])
    if (w.upsertData !== undefined) {
      for (const part of chunks(ok, WRITE_CHUNK)) {
        await exec(trx, w.upsertData, [jsonBatch(part.map((r) => dataRow(r, w.columns)), d)])
      }
    } else if (ok.length > 0) {
      // SQLite with real columns: bound parameters (exact), through insertRows.
      for (const part of chunks(ok.map((r) => r.task.addr), KEY_CHUNK)) await exec(trx, w.deleteData, [jsonBatch(part, d)])
      await insertRows(trx, x.def, ok.map((r) => ({ ...(r.outcome as { row: Record<string, unknown> }).row, lq_key: r.task.addr })))
    }
    if (x.source.kind === 'query') await writeEdges(trx, d, x, sorted.filter((r) => won.has(r.task.addr)).map((r) => r.task))
    for (const r of sorted) {
      const c = won.get(r.task.addr)
      if (c === undefined) report.superseded++
      else if (r.outcome.state === 'failed') report.failed++
      else if (r.outcome.state === 'blocked') report.blocked++
      else if (c) report.computed++
      else report.unchanged++
    }
    return [rev]
  }
}

/**
 * The `lq_inputs` text stored for a task: the `[table, key, revision]` triples of a derivation
 * over several inputs (comprehension, `joinOnRoot`); empty for a derivation over one table,
 * whose one input is the row at the same address, at revision `lq_max_input_rev`.
 */
export const recordedInputs = (x: Derivation, task: Task): string => (x.source.kind === 'root' || x.source.kind === 'derived' ? '' : inputsText(task.inputs))

/**
 * A metadata row. `lq_lineage` is left empty: a row's root lineage is its address
 * (`lineageOfAddress`), so it is not stored twice.
 */
const metaRow = (x: Derivation, r: Result, columns: readonly string[]): unknown[] => {
  const o = r.outcome
  return [r.task.addr, '', recordedInputs(x, r.task), r.task.maxRev, o.state, errorText(o), hashOf(o, columns), r.task.inputHash ?? null, r.task.evalRev ?? null]
}

const dataRow = (r: Result, columns: readonly string[]): unknown[] => {
  const row = (r.outcome as { row: Record<string, unknown> }).row
  return [...columns.map((c) => row[c] ?? null), r.task.addr]
}

/** `writeResults` through the dialect's one-statement batch write, a part of at most WRITE_CHUNK results at a time. */
async function writeBatch(db: Kysely<any>, d: StoreDialect, x: Derivation, w: Writer, text: string, sorted: readonly Result[], report: TableReport): Promise<number[]> {
  const revs: number[] = []
  for (const part of chunks(sorted, WRITE_CHUNK)) {
    const meta = part.map((r) => metaRow(x, r, w.columns))
    const data = part.flatMap((r) => (r.outcome.state === 'ok' ? [dataRow(r, w.columns)] : []))
    const out = (await exec<{ counts: unknown; lost: unknown; rev: unknown }>(db, text, [x.codeVersion, jsonBatch(meta, d), jsonBatch(data, d)]))[0]!
    revs.push(Number(out.rev))
    const json = (v: unknown): unknown => (typeof v === 'string' ? JSON.parse(v) : v)
    const counts = (json(out.counts) ?? []) as [string, boolean, number | string][]
    const lost = (json(out.lost) ?? []) as string[]
    for (const [state, changed, n] of counts) {
      const k = Number(n)
      if (state === 'failed') report.failed += k
      else if (state === 'blocked') report.blocked += k
      else if (changed) report.computed += k
      else report.unchanged += k
    }
    report.superseded += lost.length
  }
  return revs
}

async function writeEdges(trx: Kysely<any>, d: StoreDialect, x: Derivation, tasks: readonly Task[]): Promise<void> {
  const del = `DELETE FROM lq_edge WHERE dst_table = ${d.ph(1)} AND dst_key IN (${d.jsonTexts(d.ph(2))})`
  for (const part of chunks(tasks.map((t) => t.addr), KEY_CHUNK)) await exec(trx, del, [x.name, jsonBatch(part, d)])
  const ins = `INSERT INTO lq_edge (src_table, src_key, dst_table, dst_key)
SELECT ${d.jsonField(0, 'text')}, ${d.jsonField(1, 'text')}, ${d.ph(1)}, ${d.jsonField(2, 'text')} FROM ${d.jsonRows(d.ph(2))} WHERE true
ON CONFLICT DO NOTHING`
  const rows = tasks.flatMap((t) => t.edges.map(([table, key]) => [table, key, t.addr]))
  for (const part of chunks(rows, WRITE_CHUNK)) await exec(trx, ins, [x.name, jsonBatch(part, d)])
}

/**
 * Delete rows of `x` and, transitively, every derived row of this store they feed, in one
 * transaction. Counts the rows deleted per table in `report`. A deleted row's data row goes;
 * its metadata row stays as a tombstone (state `deleted`, a new `lq_changed_rev`), so derived
 * tables that read it but are not declared in this store (another program's) see the deletion
 * at their next refresh.
 *
 * `writtenAt`: delete the rows of `x` only if they are still the ones stored by the writes of
 * those revisions (`lq_computed_rev`), and cascade only from those (the re-check after a
 * write, which must not delete a newer row another caller stored meanwhile).
 */
export async function deleteRows(engine: Engine, x: Derivation, addrs: readonly string[], report: Record<string, TableReport>, writtenAt?: readonly number[]): Promise<void> {
  if (addrs.length === 0) return
  const { d } = engine
  // Counted per attempt and added once committed (a busy database makes the transaction run again).
  let counts: Record<string, number> = {}
  await retryBusy(d, `deleting ${addrs.length} rows of \`${x.name}\``, engine.busyMs ?? BUSY_WAIT_MS, () => engine.db.transaction().execute(async (trx) => {
    counts = {}
    const rev = await d.nextRev(trx)
    const queue: [Derivation, string[], readonly number[] | undefined][] = [[x, [...addrs], writtenAt]]
    while (queue.length > 0) {
      const [t, requested, only] = queue.shift()!
      const onlyText = only === undefined ? '' : ` AND lq_computed_rev IN (${only.map((r) => String(Math.trunc(r))).join(', ')})`
      const keys: string[] = only === undefined ? requested : []
      let n = 0
      for (const part of chunks(requested, KEY_CHUNK)) {
        const tomb = `UPDATE ${q(metaTable(t.name))} SET lq_state = 'deleted', lq_error = NULL, lq_hash = NULL, lq_changed_rev = ${d.ph(1)}, lq_computed_rev = ${d.ph(2)}${d.xidSql === undefined ? '' : `, lq_xid = ${d.xidSql}`} WHERE lq_key IN (${d.jsonTexts(d.ph(3))}) AND ${LIVE_TEXT}${onlyText} RETURNING lq_key`
        const gone = (await exec<{ lq_key: string }>(trx, tomb, [rev, rev, jsonBatch(part, d)])).map((r) => r.lq_key)
        n += gone.length
        if (only !== undefined) keys.push(...gone)
        const list = jsonBatch(only === undefined ? part : gone, d)
        await exec(trx, `DELETE FROM ${q(t.name)} WHERE lq_key IN (${d.jsonTexts(d.ph(1))})`, [list])
        await exec(trx, `DELETE FROM lq_edge WHERE dst_table = ${d.ph(1)} AND dst_key IN (${d.jsonTexts(d.ph(2))})`, [t.name, list])
      }
      if (keys.length === 0) continue
      counts[t.name] = (counts[t.name] ?? 0) + n
      for (const y of readersOf(engine, t.name)) {
        if (y.source.kind !== 'query') queue.push([y, keys, undefined])
        else {
          const next: string[] = []
          for (const part of chunks(keys, KEY_CHUNK)) {
            const r = await exec<{ dst_key: string }>(trx, `SELECT dst_key FROM lq_edge WHERE src_table = ${d.ph(1)} AND src_key IN (${d.jsonTexts(d.ph(2))}) AND dst_table = ${d.ph(3)}`, [t.name, jsonBatch(part, d), y.name])
            next.push(...r.map((row) => row.dst_key))
          }
          if (next.length > 0) queue.push([y, [...new Set(next)], undefined])
        }
      }
    }
  }))
  for (const [name, n] of Object.entries(counts)) {
    const rep = report[name]
    if (rep !== undefined) rep.deleted += n
  }
}

export type { StoreDialect }
