/**
 * The SQLite/PostgreSQL differences of the derived-data engine, as named hooks (`StoreDialect`),
 * implemented by `sqlite.ts` and `postgres.ts`: the revision clock, the root triggers, the
 * "changed since the watermark" filter, the monotonic-write check, statement limits, name
 * rules, snapshot reads, the re-check after a write and catalogue introspection. No engine
 * file outside `sql/` tests which dialect it runs on: it calls a hook.
 *
 * Revision clock. SQLite: a one-row table `lq_clock` bumped by every trigger and every derived
 * write (SQLite has one writer at a time, so revisions commit in order). PostgreSQL: the
 * sequence `lq_clock_seq`. Sequence values are handed out before commit, so a transaction can
 * commit a revision lower than one already seen; every revision row therefore also records
 * the writing (top-level) transaction id (`xid8`), and a watermark is the pair (revision,
 * snapshot), both read by one statement: the snapshot is `pg_current_snapshot()` in its text
 * form `xmin:xmax:xip1,xip2,...` (stored in `lq_derived.wm_xmin`). A transaction is invisible
 * to that snapshot exactly when its xid is `>= xmax` or in the xip list (an xid below xmax and
 * not listed had completed), so "changed since" means
 * `rev > wm.rev OR xid >= wm.xmax OR xid = ANY(wm.xip)`: every row written by a transaction
 * that had not committed when the watermark was taken, and no other row below `wm.rev`. All
 * three terms are index conditions (one BitmapOr over the `rev` and `xid` indexes); in
 * particular a long-running transaction elsewhere on the server (which holds xmin back) adds
 * only its own rows to a scan. Watermarks stored by earlier versions are a plain xmin number:
 * for those, "changed since" is `rev > wm.rev OR xid >= wm.xmin` as before.
 */
import type { Kysely, RawBuilder } from 'kysely'
import type { Dialect } from '../../query/dialect.js'
import type { TableDef } from '../../query/schema.js'

/** The point up to which changes have been processed. */
export interface Watermark {
  readonly rev: number
  /**
   * PostgreSQL: the snapshot when the watermark was taken, as the text of `pg_current_snapshot()`
   * (`xmin:xmax:xip1,xip2,...`; see `parseSnapshot`), or, for watermarks stored by earlier
   * versions, the snapshot's xmin alone (a plain number); null when no watermark was ever
   * stored. SQLite: null. (The name is the stored column's, `lq_derived.wm_xmin`.)
   */
  readonly xmin: string | null
}

/**
 * A PostgreSQL watermark snapshot, parsed:
 * - `snapshot`: the text of `pg_current_snapshot()`; transactions invisible to it are those with
 *   an xid `>= xmax` or in `xip` (decimal texts, as `xid8` prints them).
 * - `xmin`: a watermark stored by an earlier version, the snapshot's xmin only; every xid
 *   `>= xmin` counts as invisible.
 * - undefined: not a snapshot text (never written by the engine).
 */
export type ParsedSnapshot =
  | { readonly kind: 'snapshot'; readonly xmax: string; readonly xip: readonly string[] }
  | { readonly kind: 'xmin'; readonly xmin: string }

export function parseSnapshot(text: string): ParsedSnapshot | undefined {
  const s = text.trim()
  if (/^\d+$/.test(s)) return { kind: 'xmin', xmin: s }
  const m = /^(\d+):(\d+):((?:\d+(?:,\d+)*)?)$/.exec(s)
  if (m === null) return undefined
  return { kind: 'snapshot', xmax: m[2]!, xip: m[3] === '' ? [] : m[3]!.split(',') }
}

export interface ColumnInfo {
  readonly name: string
  readonly type: string
  readonly notNull: boolean
}

export interface StoreDialect {
  readonly name: Dialect
  /** Column type of revisions. */
  readonly revType: string
  /** Extra column definitions for revision and metadata tables (PostgreSQL: `xid`). */
  readonly xidColumn: string | undefined
  /**
   * Table option for the store's tables keyed by `lq_key` (revision and metadata tables).
   * SQLite: `WITHOUT ROWID`, so a key probe reaches the row in one B-tree descent instead of
   * two (key index, then rowid table); PostgreSQL: none.
   */
  readonly keyedTable: string
  /**
   * Changed keys per statement of a delta evaluation (`delta.ts`). PostgreSQL plans a join of
   * a few hundred listed keys with a hash join over the whole other table, so its lists are
   * short enough for index nested loops; SQLite always probes indexes.
   */
  readonly deltaKeys: number
  /** Bound parameters one statement may have (SQLite's SQLITE_MAX_VARIABLE_NUMBER; PostgreSQL's protocol limit). */
  readonly maxParams: number
  /** Statements creating the clock. */
  clockDDL(): string[]
  /** The current clock value and (PostgreSQL) the current snapshot, read by one statement. */
  readClock(db: Kysely<any>): Promise<Watermark>
  /**
   * A new revision, inside the caller's transaction (a derived write). On PostgreSQL it also
   * makes that transaction commit asynchronously (`synchronous_commit = off`, for this
   * transaction only): derived rows can be recomputed, and a crash can only lose a suffix of
   * commits, which then look stale or missing (see `batchWrite`).
   */
  nextRev(trx: Kysely<any>): Promise<number>
  /** `alias.rev > wm.rev` (or PostgreSQL's xid-aware variant). */
  since(alias: string, revCol: string, xidCol: string, wm: Watermark): RawBuilder<boolean>
  /** The assignment that stamps a written row with the current transaction (PostgreSQL) or nothing. */
  xidValue(): RawBuilder<unknown> | undefined
  /** SQL text of `xidValue`, for statements written as text. */
  readonly xidSql: string | undefined
  /** The `i`-th (1-based) bound-parameter placeholder of a statement written as text. */
  ph(i: number): string
  /**
   * Whether `ph` numbers its placeholders (PostgreSQL `$1`: a parameter is bound by its number,
   * so parameters appended after a compiled query's keep their place whatever the text order)
   * or they are positional (SQLite `?`: parameters bind in the order their placeholders appear
   * in the text).
   */
  readonly numberedPlaceholders: boolean
  /**
   * A FROM item over the elements of a JSON array bound at placeholder `p`, one row per element,
   * aliased `j` (each element, itself an array, is `j.value`). Batches of rows travel as one
   * JSON text parameter, so a statement's text does not depend on the batch size: small to
   * prepare, and the same text for every batch.
   */
  jsonRows(p: string): string
  /** Field `i` of the array element `j.value` of `jsonRows`, as a column of `type` (cast to its SQL type where the dialect needs it). */
  jsonField(i: number, type: JsonFieldType): string
  /** A subquery listing the strings of a JSON array of strings bound at `p`. */
  jsonTexts(p: string): string
  /**
   * Whether a real number travels exactly through JSON text (JavaScript's shortest
   * round-tripping decimal, parsed by the database). PostgreSQL: yes (correctly rounded
   * `float8in`). SQLite: no (its text-to-double conversion is off by one ulp for some values),
   * so tables with real columns get bound parameters there.
   */
  readonly exactJsonReals: boolean
  /** Whether JSON batches must carry lone surrogates as U+FFFD (see `jsonBatch`). */
  readonly replaceLoneSurrogates: boolean
  /**
   * One statement that stores a batch of results of a one-table or `joinOnRoot` derivation, or
   * undefined when the dialect has none (SQLite: no data-modifying WITH). See `BatchWrite`.
   */
  batchWrite(spec: BatchWriteSpec): string | undefined
  /** Refresh the planner's statistics of a table that just got many rows (PostgreSQL); no-op on SQLite. */
  analyze(db: Kysely<any>, table: string): Promise<void>
  /** Statements that start tracking a root table (revision table, index, triggers). */
  trackDDL(root: TableDef): string[]
  /** Revision rows for every row of `root` not yet in its revision table, and deletions for rows gone. */
  backfill(root: TableDef): string[]
  /**
   * Condition for an upsert's `DO UPDATE ... WHERE`: no input recorded in `stored` (a JSON
   * text of [table, key, rev] triples) has a newer revision than the same input in `incoming`.
   */
  notOlder(stored: string, incoming: string): string
  /** Columns of a table, or `undefined` when there is no such table. */
  columns(db: Kysely<any>, table: string): Promise<ColumnInfo[] | undefined>
  /** Serialise concurrent migrations (PostgreSQL advisory lock); no-op on SQLite. */
  lockMigrations(trx: Kysely<any>): Promise<void>
  /** Drop the index `index` if there is one of that name on `table` (an index name of an earlier version). */
  dropIndexOn(db: Kysely<any>, index: string, table: string): Promise<void>
  /**
   * The first statement of a write transaction that reads before it writes. SQLite: a write
   * that takes the write lock at once (a deferred transaction that reads first and writes later
   * fails with SQLITE_BUSY_SNAPSHOT when another connection committed in between, without
   * waiting on the busy handler; a transaction whose first statement writes waits on it, then
   * reads the newest data). PostgreSQL: nothing (row locks, READ COMMITTED).
   */
  beginWrite(trx: Kysely<any>): Promise<void>
  /**
   * Whether writers take turns: a transaction begun with `beginWrite` sees every write committed
   * before it, and no other write commits while it runs. SQLite: yes (one write lock); PostgreSQL:
   * no (READ COMMITTED, row locks). Two things rely on it:
   * - a comprehension's watermark move looks for late rows and moves in one such transaction
   *   (`moveWatermark`); PostgreSQL looks in autocommit statements and moves in one statement
   *   that checks for rows its look missed (`moveWatermarkUnlessStored`), holding no lock across
   *   round trips (a worker stopped between them would hold it);
   * - revisions are then handed out in commit order (`nextRev` runs under the write lock, so a
   *   revision not committed yet is above every committed one; on PostgreSQL a sequence: a
   *   transaction can commit a lower revision after a higher one), and a first fill sees, by
   *   revision ranges of the metadata index, that no other writer stored rows since it began
   *   (`FillWrites`).
   */
  readonly oneWriter: boolean
  /**
   * The late-row check of comprehension derivations on a store whose writers do not take turns
   * (PostgreSQL), closing the window between a write's read of the watermark (`lateResults` in
   * write.ts) and its commit, without a lock held across a client round trip:
   * - `lateCheckDDL`: its objects (schema version 5): PostgreSQL, the marker table
   *   `lq_wm_check`, its deferred constraint trigger and the move function
   *   `lq_move_watermark`; SQLite: none.
   * - `watermarkAtCommit`: in a write transaction storing rows of code version `codeVersion`
   *   into `table` (that read watermark `wm`, for a comprehension), have its COMMIT forget the
   *   table's applied code version unless it is `codeVersion` (so the next scan looks for rows
   *   of other code versions) and check that the watermark is still `wm`. PostgreSQL: a marker
   *   row, whose deferred trigger does both inside the COMMIT's own processing (the watermark row
   *   FOR KEY SHARE, then the update of its applied version when needed) and fails the commit
   *   with `watermarkMoved` when the watermark moved: no lock on the watermark row is held
   *   across a client round trip, so a writer stopped in its transaction holds up no move.
   *   SQLite: the update at once, in the transaction (the write lock orders the write and the
   *   move).
   * - `watermarkMoved`: whether an error is that check's refusal (the transaction was rolled back;
   *   run it again, and its read of the watermark sees the move).
   * - `moveWatermarkUnlessStored`: move the watermark of `table` (metadata table `meta`) to
   *   `clock`, in one statement that locks the watermark row FOR UPDATE and only then looks
   *   (a fresh snapshot) for rows stored from an evaluation before `clock` by transactions the
   *   caller's look did not see (not visible in snapshot `look`, read before the look);
   *   false, not moved, when there are some (the caller looks again). See `moveWatermark` in
   *   refresh.ts. Undefined where writers take turns (`oneWriter`: the look and the move are one
   *   write transaction).
   */
  lateCheckDDL(): string[]
  watermarkAtCommit(trx: Kysely<any>, table: string, wm: Watermark | undefined, codeVersion: string): Promise<void>
  watermarkMoved(e: unknown): boolean
  readonly moveWatermarkUnlessStored: ((db: Kysely<any>, move: WatermarkMove) => Promise<boolean>) | undefined
  /**
   * Whether an error means "busy, try again": the transaction was rolled back and running it
   * again can succeed. SQLite: SQLITE_BUSY* and SQLITE_LOCKED*; PostgreSQL: deadlock detected
   * (40P01), serialization failure (40001), lock not available (55P03).
   */
  isBusy(e: unknown): boolean
  /**
   * Whether an error is a unique (primary key) violation: a `BatchWriteSpec.fresh` statement
   * found a row at one of its addresses. SQLite: SQLITE_CONSTRAINT_PRIMARYKEY and _UNIQUE;
   * PostgreSQL: 23505.
   */
  uniqueViolation(e: unknown): boolean
  /**
   * Keyset pagination over an `lq_key` text column: the expression to select as the cursor of
   * a row (`alias.lq_key`), and the condition "after the cursor bound at `p`". SQLite: the key's
   * bytes (a string the driver reads may not be the stored bytes: a lone surrogate reads back as
   * U+FFFD), compared as text; PostgreSQL: the text.
   */
  keyCursor(alias: string): string
  afterCursor(alias: string, p: string): string
  /**
   * SQL text of a key column's value as JSON text (`keyText` of the value decoded in
   * JavaScript), for a non-boolean column of `kind`: the revision triggers' key expression.
   */
  keyJson(ref: string, kind: string): string
  /**
   * Why `name` cannot be a table of this store on this database, or undefined: PostgreSQL
   * truncates identifiers to 63 bytes and names a table's primary key `<name>_pkey` in the
   * table namespace; SQLite compares table names case-insensitively. `others`: the store's
   * other tables.
   */
  tableNameProblem(name: string, kind: 'root' | 'derived', others: readonly { readonly name: string; readonly kind: 'root' | 'derived' }[]): string | undefined
  /**
   * Run `fn` in one transaction whose reads all see one snapshot (PostgreSQL: REPEATABLE READ;
   * SQLite: any transaction), so rows and their revisions read by separate statements agree.
   */
  snapshotRead<T>(db: Kysely<any>, fn: (trx: Kysely<any>) => Promise<T>): Promise<T>
  /**
   * Whether a root deletion can commit between a write's deleted-input check and the write's
   * own commit (PostgreSQL: READ COMMITTED, many writers), so the check must run again after
   * the commit; SQLite: no (one writer at a time, the check runs in the writing transaction).
   */
  readonly recheckAfterWrite: boolean
  /**
   * Condition "the transaction that wrote `xidCol` is committed in the watermark snapshot bound
   * at placeholder `p`" (`Watermark.xmin` text), for tombstone collection; undefined on SQLite
   * (no transaction ids: every row below the clock is committed).
   */
  committedIn(xidCol: string, p: string, snapshot: string): string | undefined
  /** The function building a JSON array from its arguments, and the aggregate collecting values into one. */
  readonly jsonArray: string
  readonly jsonAgg: string
  /** A revision row's transaction id as text (`xidCol` over an alias), or NULL where there is none (SQLite). */
  xidText(xidCol: string): string
  /**
   * `since` evaluated in JavaScript over one revision row already read (its revision, and its
   * transaction id as `xidText` printed it): whether it was written after watermark `wm`.
   */
  changedSince(rev: number, xid: string | null, wm: Watermark): boolean
}

/** A watermark move of `StoreDialect.moveWatermarkUnlessStored`. */
export interface WatermarkMove {
  readonly table: string
  readonly meta: string
  readonly clock: Watermark
  /** The snapshot read before the caller's look at rows stored late (`Watermark.xmin` of a clock read). */
  readonly look: string
  /** The applied code version read at the refresh's start, and the one it applies (see `writeWatermark`). */
  readonly applied: string | null
  readonly codeVersion: string
}

/**
 * What `batchWrite` needs to know of a derived table: its metadata and data tables, the
 * monotonic-write guard, and the output columns.
 */
export interface BatchWriteSpec {
  readonly meta: string
  readonly data: string
  /** The guard of the metadata upsert, over the stored row (the metadata table's name) and `excluded`. */
  readonly guard: string
  readonly columns: readonly { readonly name: string; readonly type: JsonFieldType }[]
  /** The metadata JSON rows are the narrow rows `[lq_key, lq_max_input_rev, lq_hash]` of ok results (see `WriterTexts.ok`), not full ones. */
  readonly okRows?: boolean
  /**
   * With `okRows`: the rows were missing when found (a first fill), so the statement inserts
   * them with plain INSERTs (no ON CONFLICT: on PostgreSQL, with it, the inserts of 10^5 rows in
   * batches of 5000 took 1.8 times as long) and fails with a unique violation (`uniqueViolation`) when one
   * of their addresses has a metadata or data row now; the caller runs it in a savepoint and
   * then stores the batch with the upsert, which judges the rows. Same parameters and result
   * as the upsert (every row a winner whose value changed).
   */
  readonly fresh?: boolean
}

/**
 * The type of a field read from JSON by `jsonField`: the SQL type of the column it is stored
 * in. Values travel as the dialect stores them (`DialectHooks.columnToDb`: on SQLite a decimal
 * is its integer count of units, a timestamp its ISO text, JSON its canonical text).
 */
export type JsonFieldType = 'text' | 'int' | 'real' | 'boolean' | 'decimal' | 'date' | 'timestamp' | 'json'

/** The driver's error code (`SQLITE_BUSY`, `40P01`, ...) of an error, or ''. */
export function errorCode(e: unknown): string {
  const code = typeof e === 'object' && e !== null ? (e as { code?: unknown }).code : undefined
  return typeof code === 'string' ? code : ''
}

/**
 * PostgreSQL: the channel the root triggers notify (payload `schema.table`) after every root
 * write, for `store.watch` (LISTEN/NOTIFY). PostgreSQL folds identical notifications of one
 * transaction into one.
 */
export const NOTIFY_CHANNEL = 'lq_changed'

export const q = (name: string): string => `"${name.replace(/"/g, '""')}"`
export const revTable = (root: string): string => `lq_rev_${root}`
export const metaTable = (derived: string): string => `lq_meta_${derived}`
/**
 * The name of an index of one of the store's tables: `<table>$<what>`. Derived table names are
 * identifiers and root names may not contain `$`, so no index name equals a table name or
 * another table's index name (before, `lq_meta_foo_changed` was both the index of `foo` and
 * the metadata table of `foo_changed`).
 */
export const indexName = (table: string, what: string): string => `${table}$${what}`
/** The index names of earlier versions (`<table>_<what>`), dropped when found on their table. */
export const legacyIndexName = (table: string, what: string): string => `${table}_${what}`

/**
 * A partial index of a root's deletions by revision: `max(rev) WHERE deleted = 1` is one probe,
 * so a write batch whose inputs are all newer than the last deletion skips the per-key check
 * for deleted inputs (see `withoutDeletedInputs`).
 */
export const deletedIndex = (root: string): string => `CREATE INDEX IF NOT EXISTS ${q(indexName(revTable(root), 'deleted'))} ON ${q(revTable(root))} (rev) WHERE deleted = 1`

/** SQL text of a row's key, equal to `keyText` of the key value decoded in JavaScript. */
export function keyExpr(root: TableDef, row: string, keyJson: (ref: string, kind: string) => string): string {
  const one = (col: string): string => {
    const c = root.byName.get(col)!
    const ref = `${row}.${q(col)}`
    const e = c.type.kind === 'boolean' ? `CASE WHEN ${ref} THEN 'true' ELSE 'false' END` : keyJson(ref, c.type.kind)
    return c.type.nullable ? `COALESCE(${e}, 'null')` : e
  }
  const key = root.key ?? []
  if (key.length === 1) return one(key[0]!)
  return `'[' || ${key.map(one).join(` || ',' || `)} || ']'`
}
