/**
 * A program's start: `store.track(root)` at every start, and the check at `refresh`/`get`
 * that a tracked root is still the table its revisions describe.
 *
 * - Already tracked (the common case): reads only. `lq_tracked` says the root was tracked
 *   with this key and this trigger text (`ddl_hash`), and the catalogue shows the revision
 *   table, its indexes and the root's triggers in place and (PostgreSQL) the same table OID.
 *   Nothing is created, dropped or locked: a start never waits for, nor blocks, a root writer.
 * - Otherwise (first track, a new library version's triggers, or a root dropped and
 *   recreated): serialised per root (PostgreSQL: a session advisory lock, taken only on this
 *   path), the DDL runs in one short transaction (PostgreSQL: with a lock timeout, retried),
 *   then the revisions are backfilled in short transactions of about `BACKFILL_ROWS` rows each
 *   (ranges of rowid / heap pages), while the triggers already record every concurrent write.
 *   A recreated root (its triggers are gone, or its OID changed) is backfilled in `bump` mode:
 *   every row gets a new revision, so derived rows computed from the old rows become stale,
 *   and keys no longer in the table are marked deleted. `lq_tracked.ddl_hash` holds `bump` or
 *   `keep` while a backfill is under way, so a start after a crash finishes it.
 * - A tracked root that no longer exists is a `schema` error naming it.
 */
import { createHash } from 'node:crypto'
import type { Kysely } from 'kysely'
import { LineageQueryError } from '../errors.js'
import { fromDriver } from './driver-errors.js'
import type { TableDef } from '../query/schema.js'
import { legacyIndexName, revTable, type StoreDialect } from './sql/dialect.js'
import { startupDialects } from './sql/index.js'
import { execAll, execCounting, trackedRow, upgradeTracked, upsertTracked, type TrackedRow } from './sql/schema.js'
import type { BackfillMode, RootState, StartupDialect } from './sql/startup.js'

/** Rows per backfill transaction (a few milliseconds of writing each). */
export const BACKFILL_ROWS = 1000

export interface TrackOutcome {
  /** `ready`: everything was in place (reads only); otherwise the backfill mode that ran. */
  readonly path: 'ready' | BackfillMode
  /** Revision rows written or renewed by the backfill. */
  readonly backfilled: number
}

/** The hash of the trigger and index text of a root: a new text (a new library version) is redone. */
export function ddlHash(d: StoreDialect, def: TableDef): string {
  return createHash('sha1').update(d.trackDDL(def).join('\n')).digest('hex').slice(0, 16)
}

/** Whether everything a tracked root needs is in place (see the module comment). */
function ready(sd: StartupDialect, def: TableDef, hash: string, row: TrackedRow | undefined, st: RootState): boolean {
  if (row === undefined || row.key_columns !== JSON.stringify(def.key) || row.ddl_hash !== hash) return false
  if (!st.exists || !st.revTableExists) return false
  if ((row.table_id ?? null) !== st.tableId) return false
  if (!sd.triggerNames(def.name).every((t) => st.triggers.includes(t))) return false
  if (!sd.indexNames(def.name).every((i) => st.indexes.includes(i))) return false
  return !['rev', 'xid'].some((w) => st.indexes.includes(legacyIndexName(revTable(def.name), w)))
}

function dropped(name: string): LineageQueryError {
  return new LineageQueryError('schema', `tracked root table \`${name}\` does not exist in the database any more (dropped?); its derived rows are kept as they were. Recreate the table (its rows then get new revisions and their derived rows are recomputed), or stop declaring derivations over it`, { table: name })
}

/**
 * Make sure `def` is tracked and its revisions describe the table as it is now; see the module
 * comment. Returns what was done.
 */
export async function ensureTracked(db: Kysely<any>, d: StoreDialect, def: TableDef): Promise<TrackOutcome> {
  const sd = startupDialects[d.name]
  const hash = ddlHash(d, def)
  const st = await sd.state(db, def.name)
  if (!st.exists) throw dropped(def.name)
  if (ready(sd, def, hash, await trackedRow(db, def.name), st)) return { path: 'ready', backfilled: 0 }
  return sd.serialise(db, def.name, async (c) => {
    // Another start may have done it while this one waited.
    const st2 = await sd.state(c, def.name)
    if (!st2.exists) throw dropped(def.name)
    const before = await trackedRow(c, def.name)
    if (ready(sd, def, hash, before, st2)) return { path: 'ready', backfilled: 0 }
    const triggersMissing = !sd.triggerNames(def.name).every((t) => st2.triggers.includes(t))
    const mode: BackfillMode =
      before?.ddl_hash === 'bump' ||
      (before !== undefined && (triggersMissing || (before.table_id !== undefined && before.table_id !== null && before.table_id !== st2.tableId))) ||
      (before === undefined && st2.revTableExists && triggersMissing)
        ? 'bump'
        : 'keep'
    await sd.writeTransaction(c, async (trx) => {
      await upgradeTracked(trx, d)
      // Index names of earlier versions (`lq_rev_x_rev` could be the revision table of a root `x_rev`).
      for (const what of ['rev', 'xid']) await d.dropIndexOn(trx, legacyIndexName(revTable(def.name), what), revTable(def.name))
      await execAll(trx, d.trackDDL(def))
      await upsertTracked(trx, d, def, mode, st2.tableId)
    })
    // From here on the triggers record every write; the backfill covers the rows before.
    const mark = await sd.startMark(c)
    let backfilled = 0
    for (const b of await sd.backfillBatches(c, def, mode, BACKFILL_ROWS)) {
      const text = b.text.replace('$MARK', d.ph(b.params.length + 1))
      const params = mode === 'bump' && b.text.includes('$MARK') ? [...b.params, mark] : b.params
      const t0 = performance.now()
      backfilled += await sd.writeTransaction(c, async (trx) => {
        await execAll(trx, sd.beforeBatch)
        return execCounting(trx, text, params)
      })
      const pause = sd.pauseAfterBatch(performance.now() - t0)
      if (pause > 0) await new Promise((r) => setTimeout(r, pause))
    }
    if (mode === 'bump') {
      await sd.writeTransaction(c, async (trx) => {
        await execAll(trx, sd.beforeBatch)
        await execCounting(trx, sd.markGone(def), [mark])
      })
    }
    // Rows the ranges missed (moved by VACUUM / a table rewrite meanwhile): a read first.
    if (await sd.missingKeys(c, def)) {
      backfilled += await sd.writeTransaction(c, async (trx) => {
        await execAll(trx, sd.beforeBatch)
        return execCounting(trx, sd.backfillAll(def), [])
      })
    }
    await sd.writeTransaction(c, (trx) => upsertTracked(trx, d, def, hash, st2.tableId))
    return { path: mode, backfilled }
  })
}

/** Rows written by a backfill before the revision table's statistics are refreshed (PostgreSQL). */
const ANALYZE_MIN = 10_000

/**
 * `ensureTracked`, then fresh planner statistics after a big backfill (PostgreSQL), so scans use
 * the revision index; driver errors become `LineageQueryError`s naming `where`. A root dropped
 * and recreated is tracked again (its rows get new revisions, so rows derived from the old table
 * become stale); a root that is gone is a `schema` error naming it.
 */
export async function trackRoot(db: Kysely<any>, d: StoreDialect, def: TableDef, where: string): Promise<void> {
  let done: TrackOutcome
  try {
    done = await ensureTracked(db, d, def)
  } catch (e) {
    throw fromDriver(e, where)
  }
  if (done.backfilled >= ANALYZE_MIN) await d.analyze(db, revTable(def.name))
}
