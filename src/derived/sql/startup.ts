/**
 * The hooks of a program's start (`store.track`), implemented per dialect in `sqlite.ts` and
 * `postgres.ts`: reading what is
 * already in place (catalogue reads only, no lock a root writer waits on), serialising the
 * first-time DDL across processes, and backfilling a root's revisions in short batches.
 *
 * - `state`: the root table's identity (PostgreSQL: its OID; SQLite: none, a recreated table is
 *   noticed by its missing triggers), whether the revision table exists, and the names of the
 *   root's triggers and of the revision table's indexes.
 * - `serialise`: PostgreSQL: a session advisory lock on (store, root) on one pinned connection,
 *   taken only when something must be created or backfilled, so concurrent starts wait for the
 *   first one instead of deadlocking in DDL; SQLite: none (every write transaction of the
 *   start is `BEGIN IMMEDIATE`, retried while the database is busy).
 * - `ddlTransaction`: PostgreSQL: a transaction with `lock_timeout`, retried, so a DDL statement
 *   waiting behind a long root transaction of another client never queues root writers for
 *   long; SQLite: `BEGIN IMMEDIATE`.
 * - `backfillBatches`: statements, each its own short transaction, that give every row of the
 *   root a revision row: by ranges of `rowid` (SQLite) or of heap pages (`ctid`, PostgreSQL).
 */
import type { Kysely } from 'kysely'
import type { Dialect } from '../../query/dialect.js'
import type { TableDef } from '../../query/schema.js'

/** What a start finds in place for one root. */
export interface RootState {
  /** Whether the root table exists. */
  readonly exists: boolean
  /** PostgreSQL: the root table's OID (text); SQLite: null. */
  readonly tableId: string | null
  readonly revTableExists: boolean
  /** Names of the root's (non-internal) triggers. */
  readonly triggers: readonly string[]
  /** Names of the revision table's indexes. */
  readonly indexes: readonly string[]
}

/** One backfill statement and its parameters; `$MARK` is replaced by the start mark's placeholder. */
export interface BackfillBatch {
  readonly text: string
  readonly params: readonly unknown[]
}

/**
 * How rows already in the revision table are treated by a backfill:
 * - `keep`: the triggers were in place all along, so every revision row is right; only keys
 *   without one get a row.
 * - `bump`: the revision rows may predate the table's current rows (the table was dropped and
 *   recreated, or its triggers were dropped): every row written before the start gets a new
 *   revision, so derived rows computed from the old rows become stale, and rows of keys no
 *   longer in the table are marked deleted.
 */
export type BackfillMode = 'keep' | 'bump'

export interface StartupDialect {
  readonly name: Dialect
  /** Trigger names the store installs on `root`. */
  triggerNames(root: string): string[]
  /** Index names the store creates on the revision table of `root`. */
  indexNames(root: string): string[]
  state(db: Kysely<any>, root: string): Promise<RootState>
  serialise<T>(db: Kysely<any>, root: string, fn: (db: Kysely<any>) => Promise<T>): Promise<T>
  /** A short write transaction (see the module comment), retried while the database is busy or a lock wait times out. */
  writeTransaction<T>(db: Kysely<any>, fn: (trx: Kysely<any>) => Promise<T>): Promise<T>
  /**
   * The start mark, read after the triggers are in place: revision rows written before it are
   * the ones a `bump` backfill renews. SQLite: the clock value; PostgreSQL: the snapshot text
   * (rows written by transactions visible in it).
   */
  startMark(db: Kysely<any>): Promise<unknown>
  /** The backfill statements, each run in its own `writeTransaction` (a clock bump first on SQLite). */
  backfillBatches(db: Kysely<any>, root: TableDef, mode: BackfillMode, rowsPerBatch: number): Promise<BackfillBatch[]>
  /**
   * Milliseconds to pause after a backfill transaction that took `ms`. SQLite: as long again,
   * so root writers waiting in their busy handler find the write lock free half of the time;
   * PostgreSQL: none (a batch locks only the revision rows it writes).
   */
  pauseAfterBatch(ms: number): number
  /** Statements run before each backfill statement, in its transaction (SQLite: a clock bump). */
  readonly beforeBatch: readonly string[]
  /** A read: whether some row of the root has no revision row (a backfill missed it, e.g. rows moved by `VACUUM`). */
  missingKeys(db: Kysely<any>, root: TableDef): Promise<boolean>
  /** `keep` backfill of every row of the root in one statement (after `missingKeys` found some). */
  backfillAll(root: TableDef): string
  /** `bump` mode: mark deleted the revision rows written before the start mark (`$1`) whose key is no longer in the root. */
  markGone(root: TableDef): string
}

export const BUSY_RETRIES = 50

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms))

