/**
 * The SQL of a program's start (`store.track`), per dialect, as named hooks: reading what is
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
import { sql, type Kysely } from 'kysely'
import type { Dialect } from '../query/dialect.js'
import type { TableDef } from '../query/schema.js'
import { indexName, keyExpr, q, revTable } from './dialect.js'

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

const BUSY_RETRIES = 50

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms))

function sqliteBusy(e: unknown): boolean {
  const code = (e as { code?: unknown } | null)?.code
  return typeof code === 'string' && code.startsWith('SQLITE_BUSY')
}

function pgRetryable(e: unknown): boolean {
  const code = (e as { code?: unknown } | null)?.code
  // lock_not_available (lock_timeout), deadlock_detected, serialization_failure
  return code === '55P03' || code === '40P01' || code === '40001'
}

const sqlite: StartupDialect = {
  name: 'sqlite',
  triggerNames: (root) => [`lq_trg_${root}_ins`, `lq_trg_${root}_upd`, `lq_trg_${root}_del`],
  indexNames: (root) => [indexName(revTable(root), 'rev'), indexName(revTable(root), 'deleted')],
  async state(db, root) {
    // One row: the catalogue entries of the root and of its revision table.
    const r = await sql<{ entries: string }>`SELECT json_group_array(json_array(type, name, tbl_name)) AS entries FROM sqlite_master WHERE tbl_name IN (${root}, ${revTable(root)})`.execute(db)
    const rows = (JSON.parse(r.rows[0]?.entries ?? '[]') as [string, string, string][]).map(([type, name, tbl_name]) => ({ type, name, tbl_name }))
    return {
      exists: rows.some((x) => x.type === 'table' && x.name === root),
      tableId: null,
      revTableExists: rows.some((x) => x.type === 'table' && x.name === revTable(root)),
      triggers: rows.filter((x) => x.type === 'trigger' && x.tbl_name === root).map((x) => x.name),
      indexes: rows.filter((x) => x.type === 'index' && x.tbl_name === revTable(root)).map((x) => x.name),
    }
  },
  serialise: (db, _root, fn) => fn(db),
  async writeTransaction(db, fn) {
    for (let attempt = 0; ; attempt++) {
      try {
        return await db.connection().execute(async (c) => {
          await sql.raw('BEGIN IMMEDIATE').execute(c)
          try {
            const out = await fn(c)
            await sql.raw('COMMIT').execute(c)
            return out
          } catch (e) {
            await sql.raw('ROLLBACK').execute(c).catch(() => undefined)
            throw e
          }
        })
      } catch (e) {
        if (!sqliteBusy(e) || attempt >= BUSY_RETRIES) throw e
        await sleep(5 + Math.random() * 20 * Math.min(attempt + 1, 10))
      }
    }
  },
  async startMark(db) {
    const r = await sql<{ rev: unknown }>`SELECT rev FROM lq_clock WHERE id = 1`.execute(db)
    return Number(r.rows[0]?.rev ?? 0)
  },
  beforeBatch: ['UPDATE lq_clock SET rev = rev + 1 WHERE id = 1'],
  pauseAfterBatch: (ms) => Math.max(1, ms),
  async backfillBatches(db, root, mode, rowsPerBatch) {
    const R = q(root.name)
    const V = q(revTable(root.name))
    const k = keyExpr(root, 'r', 'sqlite')
    const conflict = mode === 'keep' ? 'DO NOTHING' : `DO UPDATE SET rev = excluded.rev, deleted = 0 WHERE ${V}.rev <= $MARK`
    const insert = (where: string) => `INSERT INTO ${V} (lq_key, rev, deleted) SELECT ${k}, (SELECT rev FROM lq_clock WHERE id = 1), 0 FROM ${R} AS r WHERE ${where} ON CONFLICT (lq_key) ${conflict}`
    // WITHOUT ROWID roots have no rowid ranges: one statement.
    const wr = await sql<{ wr: unknown }>`SELECT wr FROM pragma_table_list WHERE name = ${root.name}`.execute(db)
    if (Number(wr.rows[0]?.wr ?? 0) === 1) return [{ text: insert('true'), params: [] }]
    const r = await sql<{ lo: unknown; hi: unknown; n: unknown }>`SELECT min(rowid) AS lo, max(rowid) AS hi, count(*) AS n FROM ${sql.id(root.name)}`.execute(db)
    const row = r.rows[0]
    const n = Number(row?.n ?? 0)
    if (n === 0) return []
    const lo = Number(row!.lo)
    const hi = Number(row!.hi)
    const stride = Math.max(1, Math.ceil(((hi - lo + 1) * rowsPerBatch) / n))
    const out: BackfillBatch[] = []
    for (let a = lo; a <= hi; a += stride) out.push({ text: insert('r.rowid >= ? AND r.rowid < ?'), params: [a, a + stride] })
    // Rows inserted since have their revision rows from the triggers; rows above `hi` anyway:
    out.push({ text: insert('r.rowid > ?'), params: [hi] })
    return out
  },
  async missingKeys(db, root) {
    const r = await sql.raw<{ one: unknown }>(`SELECT 1 AS one FROM ${q(root.name)} AS r WHERE NOT EXISTS (SELECT 1 FROM ${q(revTable(root.name))} AS v WHERE v.lq_key = ${keyExpr(root, 'r', 'sqlite')}) LIMIT 1`).execute(db)
    return r.rows.length > 0
  },
  backfillAll: (root) =>
    `INSERT INTO ${q(revTable(root.name))} (lq_key, rev, deleted) SELECT ${keyExpr(root, 'r', 'sqlite')}, (SELECT rev FROM lq_clock WHERE id = 1), 0 FROM ${q(root.name)} AS r WHERE true ON CONFLICT (lq_key) DO NOTHING`,
  markGone: (root) => {
    const V = q(revTable(root.name))
    return `UPDATE ${V} SET deleted = 1, rev = (SELECT rev FROM lq_clock WHERE id = 1) WHERE deleted = 0 AND rev <= ? AND lq_key NOT IN (SELECT ${keyExpr(root, 'r', 'sqlite')} FROM ${q(root.name)} AS r)`
  },
}

/** Rows the PostgreSQL backfill takes per transaction are counted in heap pages: this many rows' worth. */
const postgres: StartupDialect = {
  name: 'postgres',
  triggerNames: (root) => [`lq_trg_${root}`, `lq_trt_${root}`],
  indexNames: (root) => [indexName(revTable(root), 'rev'), indexName(revTable(root), 'xid'), indexName(revTable(root), 'deleted')],
  async state(db, root) {
    // Catalogue reads only: to_regclass takes no lock on the table.
    const r = await sql<{ table_id: string | null; rev_exists: boolean; triggers: string[] | null; indexes: string[] | null }>`SELECT
  (SELECT c.oid::text FROM pg_class c WHERE c.oid = to_regclass(quote_ident(${root}))) AS table_id,
  to_regclass(quote_ident(${revTable(root)})) IS NOT NULL AS rev_exists,
  (SELECT array_agg(t.tgname::text) FROM pg_trigger t WHERE t.tgrelid = to_regclass(quote_ident(${root})) AND NOT t.tgisinternal) AS triggers,
  (SELECT array_agg(i.relname::text) FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid WHERE x.indrelid = to_regclass(quote_ident(${revTable(root)}))) AS indexes`.execute(db)
    const row = r.rows[0]!
    return { exists: row.table_id !== null, tableId: row.table_id, revTableExists: row.rev_exists, triggers: row.triggers ?? [], indexes: row.indexes ?? [] }
  },
  async serialise(db, root, fn) {
    return db.connection().execute(async (c) => {
      const key = sql`726511, hashtext(current_schema() || '.' || ${root})`
      await sql`SELECT pg_advisory_lock(${key})`.execute(c)
      try {
        return await fn(c)
      } finally {
        await sql`SELECT pg_advisory_unlock(${key})`.execute(c)
      }
    })
  },
  async writeTransaction(db, fn) {
    for (let attempt = 0; ; attempt++) {
      try {
        return await db.transaction().execute(async (trx) => {
          // A statement waiting for a lock (DDL behind a long root transaction) gives up soon
          // instead of queueing every root writer behind it; the transaction is retried.
          await sql`SELECT set_config('lock_timeout', '100ms', true)`.execute(trx)
          return fn(trx)
        })
      } catch (e) {
        if (!pgRetryable(e) || attempt >= BUSY_RETRIES * 4) throw e
        await sleep(20 + Math.random() * 30 * Math.min(attempt + 1, 10))
      }
    }
  },
  async startMark(db) {
    const r = await sql<{ s: string }>`SELECT pg_current_snapshot()::text AS s`.execute(db)
    return r.rows[0]!.s
  },
  beforeBatch: [],
  pauseAfterBatch: () => 0,
  async backfillBatches(db, root, mode, rowsPerBatch) {
    const R = q(root.name)
    const V = q(revTable(root.name))
    const k = keyExpr(root, 'r', 'postgres')
    // bump: rows written by a transaction visible in the start snapshot (before the triggers
    // were sure to be in place, or before the start) get a new revision; rows written since are
    // the triggers' and right.
    const conflict = mode === 'keep' ? 'DO NOTHING' : `DO UPDATE SET rev = excluded.rev, deleted = 0, xid = pg_current_xact_id() WHERE pg_visible_in_snapshot(${V}.xid, $MARK::pg_snapshot)`
    const insert = (where: string) => `INSERT INTO ${V} (lq_key, rev, deleted) SELECT ${k}, (SELECT nextval('lq_clock_seq')), 0 FROM ${R} AS r WHERE ${where} ON CONFLICT (lq_key) ${conflict}`
    const r = await sql<{ pages: string; n: string }>`SELECT (pg_relation_size(to_regclass(quote_ident(${root.name}))) / current_setting('block_size')::int)::text AS pages, (SELECT count(*) FROM ${sql.id(root.name)})::text AS n`.execute(db)
    const pages = Number(r.rows[0]!.pages)
    const n = Number(r.rows[0]!.n)
    if (n === 0 && pages === 0) return []
    const step = Math.max(1, Math.floor((pages * rowsPerBatch) / Math.max(n, 1)))
    const out: BackfillBatch[] = []
    // Heap page ranges (a TID range scan each); rows moved by an update since were written by
    // the triggers, and pages added since hold rows the triggers wrote too; the last range is open.
    for (let p = 0; p < pages; p += step) out.push({ text: insert(`r.ctid >= $1::tid AND r.ctid < $2::tid`), params: [`(${p},0)`, `(${p + step},0)`] })
    out.push({ text: insert(`r.ctid >= $1::tid`), params: [`(${Math.max(pages, 0)},0)`] })
    return out
  },
  async missingKeys(db, root) {
    const r = await sql.raw<{ one: unknown }>(`SELECT 1 AS one FROM ${q(root.name)} AS r WHERE NOT EXISTS (SELECT 1 FROM ${q(revTable(root.name))} AS v WHERE v.lq_key = ${keyExpr(root, 'r', 'postgres')}) LIMIT 1`).execute(db)
    return r.rows.length > 0
  },
  backfillAll: (root) =>
    `INSERT INTO ${q(revTable(root.name))} (lq_key, rev, deleted) SELECT ${keyExpr(root, 'r', 'postgres')}, (SELECT nextval('lq_clock_seq')), 0 FROM ${q(root.name)} AS r ON CONFLICT (lq_key) DO NOTHING`,
  markGone: (root) => {
    const V = q(revTable(root.name))
    return `UPDATE ${V} SET deleted = 1, rev = nextval('lq_clock_seq'), xid = pg_current_xact_id() WHERE deleted = 0 AND pg_visible_in_snapshot(xid, $1::pg_snapshot) AND NOT EXISTS (SELECT 1 FROM ${q(root.name)} AS r WHERE ${keyExpr(root, 'r', 'postgres')} = ${V}.lq_key)`
  },
}

export const startupDialects: Readonly<Record<Dialect, StartupDialect>> = { sqlite, postgres }
