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
 * The statements' texts are fixed per derived table (see `sql/writes.ts`): a batch's rows are one
 * JSON parameter. Data rows are written from the already checked function results (see
 * `checkOutput` in `compute.ts`), without going through `insertRows` again, except on SQLite for
 * tables with real columns (bound parameters, see `StoreDialect.exactJsonReals`).
 */
import { createHash, hash as oneShotHash } from 'node:crypto'
import type { Kysely } from 'kysely'
import { insertRows } from '../query/ddl.js'
import { hooksFor } from '../query/dialect.js'
import { LineageQueryError } from '../errors.js'
import { retryBusy } from './busy.js'
import { deleteRows } from './delete.js'
import { assertNever, BUSY_WAIT_MS, chunks, type Derivation, type Engine, type Outcome, type Result, type Task } from './engine.js'
import { readsFor } from './evaluate.js'
import { inputsText, parseInputs } from './keys.js'
import { currentRevisionsOf } from './revisions.js'
import { errorCode, type StoreDialect, type Watermark } from './sql/dialect.js'
import { liveMetaKeys, readWatermark, storedSinceFromBefore } from './sql/reads.js'
import { exec, execCount, jsonBatch, KEY_CHUNK } from './sql/text.js'
import { deletedInputsSql, deleteEdgesSql, FRESH_ROLLBACK, FRESH_SAVEPOINT, insertEdgesSql, lastDeletion, writerTexts, type WriterSpec, type WriterTexts } from './sql/writes.js'
import { emptyTableReport, type TableReport } from './types.js'

/** SHA-1 hex of a string: Node's one-shot `crypto.hash` where there is one (Node >= 20.12), else a Hash object. */
const sha1: (s: string) => string =
  typeof oneShotHash === 'function' ? (s) => oneShotHash('sha1', s, 'hex') : (s) => createHash('sha1').update(s).digest('hex')

/**
 * Values whose JSON text is at most this long are stored as that text in `lq_hash` (no SHA-1):
 * as short as the hex digest, compared exactly, and never equal to a digest (it starts with
 * `[`, which no hex digest does).
 */
export const HASH_TEXT_MAX = 40

/**
 * The value hash compared for backdating (only ever compared for equality): for an ok row, the
 * JSON text of the list of its output columns' values when it is at most `HASH_TEXT_MAX`
 * characters long, else its SHA-1; for a failed or blocked row, the SHA-1 of its error.
 */
export function hashOf(o: Outcome, columns: readonly string[]): string {
  if (o.state === 'ok') {
    // The JSON text of the list of the columns' values (one element: no list built).
    const text = columns.length === 1 ? `[${JSON.stringify(o.row[columns[0]!] ?? null)}]` : JSON.stringify(columns.map((c) => o.row[c] ?? null))
    return text.length <= HASH_TEXT_MAX ? text : sha1(text)
  }
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

/** The statements that store results of one derivation, built once per derivation. */
interface Writer extends WriterTexts {
  /** Output columns (without lq_key), in declaration order. */
  readonly columns: readonly string[]
  /** Per column: its value as it travels in a JSON batch (`columnToDb`, a BigInt as a number). */
  readonly toJson: readonly ((v: unknown) => unknown)[]
}

const writers = new WeakMap<Derivation, Writer>()

function writerFor(d: StoreDialect, x: Derivation): Writer {
  const hit = writers.get(x)
  if (hit !== undefined) return hit
  const columns = x.def.columns.filter((c) => c.name !== 'lq_key').map((c) => ({ name: c.name, kind: c.type.kind }))
  const spec: WriterSpec = { name: x.name, ...shapeOf(x), columns }
  const hooks = hooksFor(d.name)
  const toJson = x.def.columns.filter((c) => c.name !== 'lq_key').map((c) => (v: unknown) => {
    const out = hooks.columnToDb(c.type.kind, v, c.type.scale)
    // SQLite decimals: a count of units, a safe integer (checked by columnToDb).
    return typeof out === 'bigint' ? Number(out) : out
  })
  const w: Writer = { ...writerTexts(d, spec), columns: columns.map((c) => c.name), toJson }
  writers.set(x, w)
  return w
}

/** What a writer's statements depend on in a derivation's source. */
type Shape = Pick<WriterSpec, 'multiInput' | 'comprehension' | 'hashed'>

const ONE_INPUT: Shape = Object.freeze({ multiInput: false, comprehension: false, hashed: false })
const ZIP: Shape = Object.freeze({ multiInput: true, comprehension: false, hashed: false })

/**
 * Per source kind: whether its rows record several inputs (`lq_inputs`), whether it is a
 * comprehension (edges, tombstones, evaluation revisions) and whether it hashes the inputs it
 * reads opaquely. A new source kind breaks the build here.
 */
export function shapeOf(x: Derivation): Shape {
  const source = x.source
  switch (source.kind) {
    case 'root':
    case 'derived':
      return ONE_INPUT
    case 'zip':
      return ZIP
    case 'query': {
      let s = queryShapes.get(x)
      if (s === undefined) queryShapes.set(x, (s = Object.freeze({ multiInput: true, comprehension: true, hashed: readsFor(x).opaque.size > 0 })))
      return s
    }
    default:
      return assertNever(source, 'source kind')
  }
}

/** `shapeOf` a comprehension, once per derivation (`recordedInputs` asks per row). */
const queryShapes = new WeakMap<Derivation, Shape>()

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

/** Told the revisions a write committed at (after its commit; none when it stored nothing). */
export type Written = (revs: readonly number[]) => void

export async function writeResults(engine: Engine, x: Derivation, results: readonly Result[], report: TableReport, fence?: Fence, onWritten?: Written): Promise<void> {
  try {
    await writeResultsOnce(engine, x, results, report, fence, onWritten)
  } catch (e) {
    // A batch whose JSON text is longer than JavaScript can build (V8: "Invalid string length")
    // was not written (its transaction rolled back): store it in halves; a single result that
    // is too large by itself is stored as failed, so it is not retried forever.
    if (!(e instanceof RangeError) || results.length === 0) throw e
    if (results.length > 1) {
      const half = results.length >> 1
      await writeResults(engine, x, results.slice(0, half), report, fence, onWritten)
      await writeResults(engine, x, results.slice(half), report, fence, onWritten)
      return
    }
    const message = `derived table \`${x.name}\`: the result is too large to store: its JSON text is longer than the longest string JavaScript can build (${e.message})`
    await writeResultsOnce(engine, x, [{ task: results[0]!.task, outcome: { state: 'failed', message, stack: undefined } }], report, fence, onWritten)
  }
}

async function writeResultsOnce(engine: Engine, x: Derivation, results: readonly Result[], report: TableReport, fence: Fence | undefined, onWritten?: Written): Promise<void> {
  if (results.length === 0) return
  const { db, d } = engine
  const w = writerFor(d, x)
  // Key order: the rows land in the indexes on lq_key in order (cheaper on SQLite's B-trees).
  const sorted = [...results].sort(byAddr)
  let written: readonly Result[] = []
  let revs: number[] = []
  // Counted per attempt and added once committed (a busy database makes the transaction run again).
  let counts = emptyTableReport()
  const what = `refresh of \`${x.name}\` (storing ${sorted.length} results)`
  const store = () => retryBusy(d, what, engine.busyMs ?? BUSY_WAIT_MS, () => db.transaction().execute(async (trx) => {
    counts = emptyTableReport()
    // What this attempt wrote (a busy retry runs it again: an earlier attempt's rolled back).
    written = []
    revs = []
    const report = counts
    // SQLite: take the write lock first, so the reads below see the newest data and a busy
    // database is waited for (see StoreDialect.beginWrite).
    await d.beginWrite(trx)
    // Results computed from an input row that has since been deleted are refused (superseded):
    // the deletion may already have been processed, and the row would otherwise come back.
    const dead = await deadResults(engine, trx, sorted)
    report.superseded += dead.size
    let live = dead.size === 0 ? sorted : sorted.filter((r) => !dead.has(r))
    // A comprehension's results computed from inputs that changed since, once another refresh
    // moved the table's watermark past their evaluation: refused likewise (see `lateResults`).
    let read: Watermark | undefined
    if (shapeOf(x).comprehension && live.length > 0) {
      const { late, wm } = await lateResults(engine, trx, x, live)
      read = wm
      report.superseded += late.size
      if (late.size > 0) live = live.filter((r) => !late.has(r))
    }
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
    // forget the applied version, so the next scan looks for rows of other code versions; and
    // the watermark read by `lateResults` must not have moved since (else the commit fails,
    // and this transaction runs again: see `lateResults`). PostgreSQL: both inside the COMMIT.
    await d.watermarkAtCommit(trx, x.name, read, x.codeVersion)
    revs = w.batch !== undefined ? await writeBatch(trx, d, x, w, w.batch, live, report) : await writeInTransaction(trx, d, x, w, live, report)
  }))
  // A commit refused because the watermark moved after this transaction read it (PostgreSQL,
  // `watermarkAtCommit`): it runs again, and reads the moved watermark.
  for (let attempt = 1; ; attempt++) {
    try {
      await store()
      break
    } catch (e) {
      if (!d.watermarkMoved(e)) throw e
      if (attempt >= MOVED_RETRIES) {
        throw new LineageQueryError('busy', `${what}: the table's watermark moved during each of ${attempt} attempts to store them (other workers' refreshes keep moving it); retry later`, { operation: what, attempts: attempt, waitedMs: 0, driverCode: errorCode(e) }, { cause: e })
      }
    }
  }
  for (const k of Object.keys(counts) as (keyof TableReport)[]) report[k] += counts[k]
  if (revs.length > 0) onWritten?.(revs)
  // PostgreSQL (READ COMMITTED, many writers): a deletion that committed after the check above
  // but before this commit was not seen by it, and a refresh that processed the deletion may
  // not have seen the rows just written. Checked again now: a deletion committed before this
  // check is seen here, and one committed after it is processed by a scan that sees these rows.
  // (SQLite: one writer at a time, the check above ran in the writing transaction.)
  if (d.recheckAfterWrite && written.length > 0) {
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
  // Per input table: the oldest revision recorded for it in the batch (a root's rows need no
  // per-key look-up when its last deletion is older), then the keys of the tables that do.
  const oldest = new Map<string, number>()
  for (const r of sorted) {
    for (const [t, , rev] of r.task.inputs) {
      const o = oldest.get(t)
      if (o === undefined || rev < o) oldest.set(t, rev)
    }
  }
  // table -> key -> revision at which it was deleted (Infinity: a derived row that is gone)
  const gone = new Map<string, Map<string, number>>()
  for (const [t, old] of oldest) {
    const isRoot = engine.roots.has(t)
    if (!isRoot && !engine.derivations.has(t)) continue
    let collected = 0
    if (isRoot) {
      // The last deletion: the newest tombstone, or the newest one `collect` removed.
      const last = await lastDeletion(db, d, t)
      if (Math.max(last.tombstone, last.collected) <= old) continue
      collected = last.collected
    }
    const keySet = new Set<string>()
    for (const r of sorted) for (const [tt, k] of r.task.inputs) if (tt === t) keySet.add(k)
    const keys = [...keySet]
    const g = new Map<string, number>()
    if (isRoot) {
      for (const part of chunks(keys, KEY_CHUNK)) {
        for (const r of await exec<{ lq_key: string; drev: unknown; present: unknown }>(db, deletedInputsSql(d, t), [jsonBatch(part, d)])) {
          if (r.drev !== null && r.drev !== undefined) g.set(r.lq_key, Number(r.drev))
          // No revision row at all: deleted, and its tombstone collected (at a revision up to `collected`).
          else if (Number(r.present) === 0 && collected > 0) g.set(r.lq_key, collected)
        }
      }
    } else {
      const present = await liveMetaKeys(db, d, t, keys)
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

/**
 * A comprehension's results stored late: computed from inputs of which one changed (or was
 * deleted) since, while another refresh moved the table's watermark past the clock read before
 * their evaluation (`Task.evalRev`). That refresh evaluated the comprehension after the change
 * and may not have seen these rows (not stored yet): a join row whose pair no longer joins is in
 * no later evaluation and no later scan (the watermark has passed the change), so stored now it
 * would stay for good. Refused instead (the refresh that moved the watermark computed the row
 * as it is now, or left it behind while this batch held it). One read of the watermark when it
 * has not passed the batch's evaluation; else the current revisions of the late results' inputs.
 * Returns the refused results and the watermark read (none when no result has an evaluation clock).
 *
 * The other side is a refresh's move of the watermark, which looks for rows stored late first
 * (`lateStored`): one of the two must see the other. On SQLite the write lock orders this read
 * and the move. On PostgreSQL the move can come between this read and the commit: the write
 * then has its COMMIT check that the watermark is still the one read (`watermarkAtCommit`,
 * no lock held across a round trip) and runs again when it moved, and the move locks the
 * watermark row before its last look (`moveWatermarkUnlessStored`): a write whose commit-time
 * check came first has committed before that look, one whose check came after reads the moved
 * watermark (see `pgLateCheckDDL` in sql/postgres.ts).
 */
async function lateResults(engine: Engine, db: Kysely<any>, x: Derivation, sorted: readonly Result[]): Promise<{ late: Set<Result>; wm?: Watermark }> {
  const late = new Set<Result>()
  const evalOf = (r: Result): number => r.task.evalRev ?? Infinity
  const first = Math.min(...sorted.map(evalOf))
  if (first === Infinity) return { late }
  const { wm } = await readWatermark(db, x.name)
  if (wm.rev <= first) return { late, wm }
  const candidates = sorted.filter((r) => evalOf(r) < wm.rev)
  const wanted = new Map<string, Set<string>>()
  for (const r of candidates) for (const [t, k] of r.task.inputs) (wanted.get(t) ?? wanted.set(t, new Set()).get(t)!).add(k)
  // table -> key -> current revision (absent: deleted or gone)
  const { revs } = await currentRevisionsOf(engine, wanted, db)
  for (const r of candidates) if (r.task.inputs.some(([t, k, rev]) => revs.get(t)!.get(k) !== rev)) late.add(r)
  return { late, wm }
}

/**
 * The other side of `lateResults`: rows of comprehension derivation `x` stored late with respect
 * to a refresh about to move the watermark to `clock`, which it scanned at. Stored since its
 * scan (it did not see them) from an evaluation before `clock`, with a recorded input that has
 * changed (or is gone) at a revision up to `clock`: a change that refresh processed without these
 * rows, which no scan since `clock` looks at again (a join row whose pair no longer joins would
 * stay for good). Their addresses; the refresh looks at them by key before its watermark moves.
 * `db`: where to read (SQLite: the watermark move's write transaction, see `moveWatermark`;
 * PostgreSQL: autocommit statements, then the move checks that no rows stored since by writes
 * this look did not see, `moveWatermarkUnlessStored`).
 */
export async function lateStored(engine: Engine, x: Derivation, clock: Watermark, db: Kysely<any>): Promise<string[]> {
  const rows = await storedSinceFromBefore(db, engine.d, x.name, clock)
  if (rows.length === 0) return []
  const inputs = rows.map((r) => parseInputs(r.lq_inputs))
  const wanted = new Map<string, Set<string>>()
  for (const ins of inputs) for (const [t, k] of ins) (wanted.get(t) ?? wanted.set(t, new Set()).get(t)!).add(k)
  // table -> key -> current revision (absent: deleted or gone)
  const { revs } = await currentRevisionsOf(engine, wanted, db)
  return rows.filter((_, i) => inputs[i]!.some(([t, k, rev]) => {
    const now = revs.get(t)!.get(k)
    return now !== rev && (now === undefined || now <= clock.rev)
  })).map((r) => r.lq_key)
}

/** Attempts of a write whose commit found the watermark moved since its read (`watermarkAtCommit`), each running it again. */
const MOVED_RETRIES = 20

const wasMissing = (r: Result): boolean => r.task.missing === true

/** Store results in the caller's transaction (SQLite, and comprehension derivations); returns the revision written at. */
async function writeInTransaction(trx: Kysely<any>, d: StoreDialect, x: Derivation, w: Writer, sorted: readonly Result[], report: TableReport): Promise<number[]> {
  {
    const rev = await d.nextRev(trx)
    // Per result: stored with its value changed (true), stored unchanged (false), or refused by the guard (undefined).
    const won = new Array<boolean | undefined>(sorted.length)
    let at = 0
    for (const part of chunks(sorted, WRITE_CHUNK)) {
      // A part of ok results of a one-table derivation travels as narrow rows (`WriterTexts.ok`).
      const ok = w.ok !== undefined && part.every(isOk)
      const texts = ok ? w.ok! : w
      const params = [x.codeVersion, rev, rev, jsonBatch(part.map(ok ? (r) => okMetaRow(r, w.columns) : (r) => metaRow(x, r, w.columns)), d)]
      // Rows missing when found (a first fill): a plain insert stores them all, unless some
      // address got a row meanwhile; then the upsert judges the part (see `insertMeta`).
      if (part.every(wasMissing) && (await execCount(trx, texts.insertMeta, params)) === part.length) won.fill(true, at, at + part.length)
      else {
        const byAddr = new Map<string, boolean>()
        for (const row of await exec<{ lq_key: string; lq_changed_rev: unknown }>(trx, texts.upsertMeta, params)) byAddr.set(row.lq_key, Number(row.lq_changed_rev) === rev)
        for (let i = 0; i < part.length; i++) won[at + i] = byAddr.get(part[i]!.task.addr)
      }
      at += part.length
    }
    const changed = sorted.filter((_, i) => won[i] === true)
    const ok = changed.filter((r) => r.outcome.state === 'ok')
    const gone = changed.filter((r) => r.outcome.state !== 'ok').map((r) => r.task.addr)
    for (const part of chunks(gone, KEY_CHUNK)) await exec(trx, w.deleteData, [jsonBatch(part, d)])
    if (w.upsertData !== undefined) {
      for (const part of chunks(ok, WRITE_CHUNK)) {
        await exec(trx, w.upsertData, [jsonBatch(part.map((r) => dataRow(r, w)), d)])
      }
    } else if (ok.length > 0) {
      // SQLite with real columns: bound parameters (exact), through insertRows.
      for (const part of chunks(ok.map((r) => r.task.addr), KEY_CHUNK)) await exec(trx, w.deleteData, [jsonBatch(part, d)])
      await insertRows(trx, x.def, ok.map((r) => ({ ...(r.outcome as { row: Record<string, unknown> }).row, lq_key: r.task.addr })))
    }
    if (shapeOf(x).comprehension) await writeEdges(trx, d, x, sorted.filter((_, i) => won[i] !== undefined).map((r) => r.task))
    for (let i = 0; i < sorted.length; i++) {
      const r = sorted[i]!
      const c = won[i]
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
export const recordedInputs = (x: Derivation, task: Task): string => (shapeOf(x).multiInput ? inputsText(task.inputs) : '')

/**
 * A metadata row. `lq_lineage` is left empty: a row's root lineage is its address
 * (`lineageOfAddress`), so it is not stored twice.
 */
const metaRow = (x: Derivation, r: Result, columns: readonly string[]): unknown[] => {
  const o = r.outcome
  return [r.task.addr, '', recordedInputs(x, r.task), r.task.maxRev, o.state, errorText(o), hashOf(o, columns), r.task.inputHash ?? null, r.task.evalRev ?? null]
}

/** An ok result of a one-table derivation as a narrow metadata row (`WriterTexts.ok`): the columns `metaRow` would give that are not constants there. */
const okMetaRow = (r: Result, columns: readonly string[]): unknown[] => [r.task.addr, r.task.maxRev, hashOf(r.outcome, columns)]

const isOk = (r: Result): boolean => r.outcome.state === 'ok'

/** A data row as JSON: each value as the dialect stores it (a SQLite decimal as its integer count of units). */
const dataRow = (r: Result, w: Writer): unknown[] => {
  const row = (r.outcome as { row: Record<string, unknown> }).row
  const n = w.columns.length
  const out = new Array<unknown>(n + 1)
  for (let i = 0; i < n; i++) out[i] = w.toJson[i]!(row[w.columns[i]!] ?? null)
  out[n] = r.task.addr
  return out
}

/** `writeResults` through the dialect's one-statement batch write, a part of at most WRITE_CHUNK results at a time. */
async function writeBatch(db: Kysely<any>, d: StoreDialect, x: Derivation, w: Writer, text: string, sorted: readonly Result[], report: TableReport): Promise<number[]> {
  const revs: number[] = []
  for (const part of chunks(sorted, WRITE_CHUNK)) {
    // A part of ok results of a one-table derivation travels as narrow rows (`WriterTexts.ok`).
    const okText = w.ok?.batch !== undefined && part.every(isOk) ? w.ok.batch : undefined
    const meta = okText !== undefined ? part.map((r) => okMetaRow(r, w.columns)) : part.map((r) => metaRow(x, r, w.columns))
    const data = part.flatMap((r) => (r.outcome.state === 'ok' ? [dataRow(r, w)] : []))
    const params = [x.codeVersion, jsonBatch(meta, d), jsonBatch(data, d)]
    // Rows missing when found (a first fill): plain inserts store them all, unless some address
    // got a row meanwhile; then the upsert judges the part (see `BatchWriteSpec.fresh`).
    const fresh = okText !== undefined && w.ok!.freshBatch !== undefined && part.every(wasMissing) ? await freshWrite(db, d, w.ok!.freshBatch, params) : undefined
    const out = fresh ?? (await exec<BatchOut>(db, okText ?? text, params))[0]!
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

/** The result row of a `batchWrite` statement. */
type BatchOut = { counts: unknown; lost: unknown; rev: unknown }

/**
 * Run a `BatchWriteSpec.fresh` statement in a savepoint: its result, or undefined (the savepoint
 * rolled back) when an address of the part had a row (a unique violation).
 */
async function freshWrite(db: Kysely<any>, d: StoreDialect, text: string, params: readonly unknown[]): Promise<BatchOut | undefined> {
  await exec(db, FRESH_SAVEPOINT, [])
  try {
    return (await exec<BatchOut>(db, text, params))[0]!
  } catch (e) {
    if (!d.uniqueViolation(e)) throw e
    await exec(db, FRESH_ROLLBACK, [])
    return undefined
  }
}

async function writeEdges(trx: Kysely<any>, d: StoreDialect, x: Derivation, tasks: readonly Task[]): Promise<void> {
  const del = deleteEdgesSql(d)
  for (const part of chunks(tasks.map((t) => t.addr), KEY_CHUNK)) await exec(trx, del, [x.name, jsonBatch(part, d)])
  const ins = insertEdgesSql(d)
  const rows = tasks.flatMap((t) => t.edges.map(([table, key]) => [table, key, t.addr]))
  for (const part of chunks(rows, WRITE_CHUNK)) await exec(trx, ins, [x.name, jsonBatch(part, d)])
}
