/**
 * The SQLite/PostgreSQL differences of the derived-data engine, as named hooks: the revision
 * clock, the root triggers, the "changed since the watermark" filter, the monotonic-write
 * check, statement limits and catalogue introspection. A few remain inline, each commented
 * where it is: upsert syntax and name checks (`schema.ts`, `store.ts`), the REPEATABLE READ
 * evaluation of comprehensions (`staleness.ts`) and the re-check after a write (`write.ts`).
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
import { sql, type Kysely, type RawBuilder } from 'kysely'
import type { Dialect } from '../query/dialect.js'
import type { TableDef } from '../query/schema.js'

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
   * A FROM item over the elements of a JSON array bound at placeholder `p`, one row per element,
   * aliased `j` (each element, itself an array, is `j.value`). Batches of rows travel as one
   * JSON text parameter, so a statement's text does not depend on the batch size: small to
   * prepare, and the same text for every batch.
   */
  jsonRows(p: string): string
  /** Field `i` of the array element `j.value` of `jsonRows`, as a column of `type`. */
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
   * Whether an error means "busy, try again": the transaction was rolled back and running it
   * again can succeed. SQLite: SQLITE_BUSY* and SQLITE_LOCKED*; PostgreSQL: deadlock detected
   * (40P01), serialization failure (40001), lock not available (55P03).
   */
  isBusy(e: unknown): boolean
  /**
   * Keyset pagination over an `lq_key` text column: the expression to select as the cursor of
   * a row (`alias.lq_key`), and the condition "after the cursor bound at `p`". SQLite: the key's
   * bytes (a string the driver reads may not be the stored bytes: a lone surrogate reads back as
   * U+FFFD), compared as text; PostgreSQL: the text.
   */
  keyCursor(alias: string): string
  afterCursor(alias: string, p: string): string
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
}

/** The SQL type of a field read from JSON by `jsonField`. */
export type JsonFieldType = 'text' | 'int' | 'real' | 'boolean'

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
const deletedIndex = (root: string): string => `CREATE INDEX IF NOT EXISTS ${q(indexName(revTable(root), 'deleted'))} ON ${q(revTable(root))} (rev) WHERE deleted = 1`

/** SQL text of a row's key, equal to `keyText` of the key value decoded in JavaScript. */
export function keyExpr(root: TableDef, row: string, dialect: Dialect): string {
  const one = (col: string): string => {
    const c = root.byName.get(col)!
    const ref = `${row}.${q(col)}`
    let e: string
    if (c.type.kind === 'boolean') e = `CASE WHEN ${ref} THEN 'true' ELSE 'false' END`
    else if (dialect === 'sqlite') e = `json_quote(${ref})`
    else if (c.type.kind === 'int') e = `(${ref})::text`
    else e = `to_jsonb(${ref})::text`
    return c.type.nullable ? `COALESCE(${e}, 'null')` : e
  }
  const key = root.key ?? []
  if (key.length === 1) return one(key[0]!)
  return `'[' || ${key.map(one).join(` || ',' || `)} || ']'`
}

const sqlite: StoreDialect = {
  name: 'sqlite',
  revType: 'integer',
  xidColumn: undefined,
  keyedTable: ' WITHOUT ROWID',
  deltaKeys: 500,
  maxParams: 32766,
  clockDDL: () => [
    `CREATE TABLE lq_clock (id integer PRIMARY KEY CHECK (id = 1), rev integer NOT NULL)`,
    `INSERT INTO lq_clock (id, rev) VALUES (1, 0)`,
  ],
  async readClock(db) {
    const r = await sql<{ rev: number }>`SELECT rev FROM lq_clock WHERE id = 1`.execute(db)
    return { rev: Number(r.rows[0]?.rev ?? 0), xmin: null }
  },
  async nextRev(trx) {
    const r = await sql<{ rev: number }>`UPDATE lq_clock SET rev = rev + 1 WHERE id = 1 RETURNING rev`.execute(trx)
    return Number(r.rows[0]!.rev)
  },
  since: (alias, revCol, _xidCol, wm) => sql<boolean>`${sql.ref(`${alias}.${revCol}`)} > ${wm.rev}`,
  xidValue: () => undefined,
  xidSql: undefined,
  ph: () => '?',
  jsonRows: (p) => `json_each(${p}) AS j`,
  // json_extract gives SQL integers, reals, text and NULL for JSON numbers, strings and null;
  // true/false become 1/0, SQLite's booleans.
  jsonField: (i) => `json_extract(j.value, '$[${i}]')`,
  jsonTexts: (p) => `SELECT value FROM json_each(${p})`,
  exactJsonReals: false,
  replaceLoneSurrogates: false,
  batchWrite: () => undefined,
  async analyze() {},
  trackDDL(root) {
    const R = q(root.name)
    const V = q(revTable(root.name))
    const bump = `UPDATE lq_clock SET rev = rev + 1 WHERE id = 1;`
    const cur = `(SELECT rev FROM lq_clock WHERE id = 1)`
    const upsert = (key: string, deleted: 0 | 1, cond = 'true') =>
      `INSERT INTO ${V} (lq_key, rev, deleted) SELECT ${key}, ${cur}, ${deleted} WHERE ${cond} ON CONFLICT (lq_key) DO UPDATE SET rev = excluded.rev, deleted = excluded.deleted;`
    const kNew = keyExpr(root, 'NEW', 'sqlite')
    const kOld = keyExpr(root, 'OLD', 'sqlite')
    return [
      `CREATE TABLE IF NOT EXISTS ${V} (lq_key text PRIMARY KEY, rev integer NOT NULL, deleted integer NOT NULL) WITHOUT ROWID`,
      // Covering: a scan of the revisions since a watermark reads this index only.
      `CREATE INDEX IF NOT EXISTS ${q(indexName(revTable(root.name), 'rev'))} ON ${V} (rev, lq_key, deleted)`,
      deletedIndex(root.name),
      `CREATE TRIGGER IF NOT EXISTS ${q(`lq_trg_${root.name}_ins`)} AFTER INSERT ON ${R} BEGIN ${bump} ${upsert(kNew, 0)} END`,
      `CREATE TRIGGER IF NOT EXISTS ${q(`lq_trg_${root.name}_upd`)} AFTER UPDATE ON ${R} BEGIN ${bump} ${upsert(kOld, 1, `${kOld} IS NOT ${kNew}`)} ${upsert(kNew, 0)} END`,
      `CREATE TRIGGER IF NOT EXISTS ${q(`lq_trg_${root.name}_del`)} AFTER DELETE ON ${R} BEGIN ${bump} ${upsert(kOld, 1)} END`,
    ]
  },
  backfill(root) {
    const R = q(root.name)
    const V = q(revTable(root.name))
    const k = keyExpr(root, 'r', 'sqlite')
    return [
      `UPDATE lq_clock SET rev = rev + 1 WHERE id = 1`,
      `INSERT INTO ${V} (lq_key, rev, deleted) SELECT ${k}, (SELECT rev FROM lq_clock WHERE id = 1), 0 FROM ${R} AS r WHERE true ON CONFLICT (lq_key) DO UPDATE SET rev = excluded.rev, deleted = 0 WHERE ${V}.deleted = 1`,
      `UPDATE ${V} SET deleted = 1, rev = (SELECT rev FROM lq_clock WHERE id = 1) WHERE deleted = 0 AND lq_key NOT IN (SELECT ${k} FROM ${R} AS r)`,
    ]
  },
  notOlder: (stored, incoming) =>
    `NOT EXISTS (SELECT 1 FROM json_each(${stored}) AS a, json_each(${incoming}) AS b WHERE json_extract(a.value, '$[0]') = json_extract(b.value, '$[0]') AND json_extract(a.value, '$[1]') = json_extract(b.value, '$[1]') AND json_extract(a.value, '$[2]') > json_extract(b.value, '$[2]'))`,
  async columns(db, table) {
    const r = await sql<{ name: string; type: string; notnull: number }>`SELECT name, type, "notnull" FROM pragma_table_info(${table})`.execute(db)
    if (r.rows.length === 0) return undefined
    return r.rows.map((c) => ({ name: c.name, type: c.type.toLowerCase(), notNull: Number(c.notnull) === 1 }))
  },
  async lockMigrations() {},
  async dropIndexOn(db, index, table) {
    const r = await sql`SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = ${index} AND tbl_name = ${table}`.execute(db)
    if (r.rows.length > 0) await sql.raw(`DROP INDEX ${q(index)}`).execute(db)
  },
  async beginWrite(trx) {
    await sql`UPDATE lq_clock SET rev = rev WHERE id = 1`.execute(trx)
  },
  isBusy: (e) => /^SQLITE_(BUSY|LOCKED)/.test(errorCode(e)),
  keyCursor: (alias) => `CAST(${alias}.lq_key AS BLOB)`,
  afterCursor: (alias, p) => `${alias}.lq_key > CAST(${p} AS TEXT)`,
}

const postgres: StoreDialect = {
  name: 'postgres',
  revType: 'bigint',
  xidColumn: 'xid8 NOT NULL DEFAULT pg_current_xact_id()',
  keyedTable: '',
  deltaKeys: 100,
  maxParams: 65535,
  clockDDL: () => [`CREATE SEQUENCE lq_clock_seq`],
  async readClock(db) {
    const r = await sql<{ rev: string; snapshot: string }>`SELECT (SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM lq_clock_seq) AS rev, pg_current_snapshot()::text AS snapshot`.execute(db)
    const row = r.rows[0]!
    return { rev: Number(row.rev), xmin: row.snapshot }
  },
  async nextRev(trx) {
    const r = await sql<{ rev: string }>`SELECT nextval('lq_clock_seq') AS rev, set_config('synchronous_commit', 'off', true) AS sc`.execute(trx)
    return Number(r.rows[0]!.rev)
  },
  since(alias, revCol, xidCol, wm) {
    const rev = sql.ref(`${alias}.${revCol}`)
    if (wm.xmin === null) return sql<boolean>`${rev} > ${wm.rev}`
    const xid = sql.ref(`${alias}.${xidCol}`)
    const snap = parseSnapshot(wm.xmin)
    // Not a snapshot the engine wrote: every row counts as changed (slow, never wrong).
    if (snap === undefined) return sql<boolean>`true`
    if (snap.kind === 'xmin') return sql<boolean>`(${rev} > ${wm.rev} OR ${xid} >= ${snap.xmin}::xid8)`
    if (snap.xip.length === 0) return sql<boolean>`(${rev} > ${wm.rev} OR ${xid} >= ${snap.xmax}::xid8)`
    // The xip list travels as one array parameter (text `{1,2,...}`).
    return sql<boolean>`(${rev} > ${wm.rev} OR ${xid} >= ${snap.xmax}::xid8 OR ${xid} = ANY(${`{${snap.xip.join(',')}}`}::xid8[]))`
  },
  xidValue: () => sql`pg_current_xact_id()`,
  xidSql: 'pg_current_xact_id()',
  ph: (i) => `$${i}`,
  jsonRows: (p) => `jsonb_array_elements(${p}::jsonb) AS j(value)`,
  jsonField: (i, type) => {
    const e = `(j.value ->> ${i})`
    return type === 'text' ? e : type === 'int' ? `${e}::bigint` : type === 'real' ? `${e}::double precision` : `${e}::boolean`
  },
  jsonTexts: (p) => `SELECT jsonb_array_elements_text(${p}::jsonb)`,
  // jsonb keeps a number as numeric, exactly; its text is read back by float8in, correctly rounded.
  exactJsonReals: true,
  replaceLoneSurrogates: true,
  batchWrite: (spec) => pgBatchWrite(spec),
  async analyze(db, table) {
    await sql`ANALYZE ${sql.id(table)}`.execute(db)
  },
  trackDDL(root) {
    const R = q(root.name)
    const V = q(revTable(root.name))
    const fn = q(`lq_trg_${root.name}`)
    const fnT = q(`lq_trt_${root.name}`)
    const upsert = (key: string, deleted: 0 | 1) =>
      `INSERT INTO ${V} (lq_key, rev, deleted, xid) VALUES (${key}, nextval('lq_clock_seq'), ${deleted}, pg_current_xact_id()) ON CONFLICT (lq_key) DO UPDATE SET rev = excluded.rev, deleted = excluded.deleted, xid = excluded.xid;`
    const kNew = keyExpr(root, 'NEW', 'postgres')
    const kOld = keyExpr(root, 'OLD', 'postgres')
    return [
      `CREATE TABLE IF NOT EXISTS ${V} (lq_key text PRIMARY KEY, rev bigint NOT NULL, deleted integer NOT NULL, xid xid8 NOT NULL DEFAULT pg_current_xact_id())`,
      `CREATE INDEX IF NOT EXISTS ${q(indexName(revTable(root.name), 'rev'))} ON ${V} (rev)`,
      `CREATE INDEX IF NOT EXISTS ${q(indexName(revTable(root.name), 'xid'))} ON ${V} (xid)`,
      deletedIndex(root.name),
      `CREATE OR REPLACE FUNCTION ${fn}() RETURNS trigger LANGUAGE plpgsql SET search_path FROM CURRENT AS $lq$
BEGIN
  IF TG_OP = 'INSERT' THEN
    ${upsert(kNew, 0)}
  ELSIF TG_OP = 'UPDATE' THEN
    IF (${kOld}) IS DISTINCT FROM (${kNew}) THEN
      ${upsert(kOld, 1)}
    END IF;
    ${upsert(kNew, 0)}
  ELSE
    ${upsert(kOld, 1)}
  END IF;
  -- Wakes watching workers (store.watch); one notification per table and transaction.
  PERFORM pg_notify('${NOTIFY_CHANNEL}', TG_TABLE_SCHEMA || '.' || TG_TABLE_NAME);
  RETURN NULL;
END
$lq$`,
      `DROP TRIGGER IF EXISTS ${fn} ON ${R}`,
      `CREATE TRIGGER ${fn} AFTER INSERT OR UPDATE OR DELETE ON ${R} FOR EACH ROW EXECUTE FUNCTION ${fn}()`,
      // TRUNCATE fires no row triggers: mark every live revision row deleted, with new revisions.
      `CREATE OR REPLACE FUNCTION ${fnT}() RETURNS trigger LANGUAGE plpgsql SET search_path FROM CURRENT AS $lq$
BEGIN
  UPDATE ${V} SET deleted = 1, rev = nextval('lq_clock_seq'), xid = pg_current_xact_id() WHERE deleted = 0;
  PERFORM pg_notify('${NOTIFY_CHANNEL}', TG_TABLE_SCHEMA || '.' || TG_TABLE_NAME);
  RETURN NULL;
END
$lq$`,
      `DROP TRIGGER IF EXISTS ${fnT} ON ${R}`,
      `CREATE TRIGGER ${fnT} AFTER TRUNCATE ON ${R} FOR EACH STATEMENT EXECUTE FUNCTION ${fnT}()`,
    ]
  },
  backfill(root) {
    const R = q(root.name)
    const V = q(revTable(root.name))
    const k = keyExpr(root, 'r', 'postgres')
    return [
      `INSERT INTO ${V} (lq_key, rev, deleted) SELECT ${k}, (SELECT nextval('lq_clock_seq')), 0 FROM ${R} AS r ON CONFLICT (lq_key) DO UPDATE SET rev = excluded.rev, deleted = 0, xid = pg_current_xact_id() WHERE ${V}.deleted = 1`,
      `UPDATE ${V} SET deleted = 1, rev = nextval('lq_clock_seq'), xid = pg_current_xact_id() WHERE deleted = 0 AND NOT EXISTS (SELECT 1 FROM ${R} AS r WHERE ${k} = ${V}.lq_key)`,
    ]
  },
  notOlder: (stored, incoming) =>
    `NOT EXISTS (SELECT 1 FROM jsonb_array_elements(${stored}::jsonb) AS a, jsonb_array_elements(${incoming}::jsonb) AS b WHERE a->>0 = b->>0 AND a->>1 = b->>1 AND (a->>2)::bigint > (b->>2)::bigint)`,
  async columns(db, table) {
    const r = await sql<{ name: string; type: string; nullable: string }>`SELECT column_name AS name, data_type AS type, is_nullable AS nullable FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = ${table} ORDER BY ordinal_position`.execute(db)
    if (r.rows.length === 0) return undefined
    return r.rows.map((c) => ({ name: c.name, type: c.type.toLowerCase(), notNull: c.nullable === 'NO' }))
  },
  async lockMigrations(trx) {
    await sql`SELECT pg_advisory_xact_lock(7265110251)`.execute(trx)
  },
  async dropIndexOn(db, index, table) {
    const r = await sql`SELECT 1 FROM pg_indexes WHERE schemaname = current_schema() AND indexname = ${index} AND tablename = ${table}`.execute(db)
    if (r.rows.length > 0) await sql.raw(`DROP INDEX ${q(index)}`).execute(db)
  },
  async beginWrite() {},
  isBusy: (e) => ['40P01', '40001', '55P03'].includes(errorCode(e)),
  keyCursor: (alias) => `${alias}.lq_key`,
  afterCursor: (alias, p) => `${alias}.lq_key > ${p}`,
}

/**
 * PostgreSQL: a batch of results stored by one statement, in the caller's write transaction
 * (after its deleted-input check; committed asynchronously like every derived write), in one
 * round trip:
 *
 * - `rv`: a new revision;
 * - `src`: the batch's metadata rows, from the JSON parameter $2 (code version: $1);
 * - `up`: the metadata upsert with the monotonic-write guard; RETURNING the winners;
 * - `dd`, `di`: the data rows of the winners whose value changed: deleted (failed, blocked) or
 *   upserted (ok, from the JSON parameter $3);
 * - the result: one row, with the winners counted by state and "value changed", the keys
 *   the guard refused (`lost`, usually null), and the revision (`rev`).
 */
function pgBatchWrite(spec: BatchWriteSpec): string {
  const M = q(spec.meta)
  const X = q(spec.data)
  const f = (i: number, t: JsonFieldType) => postgres.jsonField(i, t)
  const cols = spec.columns
  const set = cols.length === 0 ? 'NOTHING' : `UPDATE SET ${cols.map((c) => `${q(c.name)} = excluded.${q(c.name)}`).join(', ')}`
  return `WITH rv AS (SELECT nextval('lq_clock_seq') AS rev, set_config('synchronous_commit', 'off', true) AS sc),
src AS (SELECT ${f(0, 'text')} AS k, ${f(1, 'text')} AS lin, ${f(2, 'text')} AS inp, ${f(3, 'int')} AS mr, ${f(4, 'text')} AS st, ${f(5, 'text')} AS er, ${f(6, 'text')} AS h FROM jsonb_array_elements($2::jsonb) AS j(value)),
up AS (
  INSERT INTO ${M} (lq_key, lq_lineage, lq_inputs, lq_max_input_rev, lq_code_version, lq_state, lq_error, lq_hash, lq_computed_rev, lq_changed_rev, lq_xid)
  SELECT src.k, src.lin, src.inp, src.mr, $1, src.st, src.er, src.h, rv.rev, rv.rev, pg_current_xact_id() FROM src CROSS JOIN rv
  ON CONFLICT (lq_key) DO UPDATE SET
    lq_lineage = excluded.lq_lineage, lq_inputs = excluded.lq_inputs, lq_max_input_rev = excluded.lq_max_input_rev,
    lq_code_version = excluded.lq_code_version, lq_state = excluded.lq_state, lq_error = excluded.lq_error,
    lq_changed_rev = CASE WHEN ${M}.lq_hash IS NOT DISTINCT FROM excluded.lq_hash AND ${M}.lq_state = excluded.lq_state THEN ${M}.lq_changed_rev ELSE excluded.lq_changed_rev END,
    lq_hash = excluded.lq_hash, lq_computed_rev = excluded.lq_computed_rev, lq_xid = excluded.lq_xid
  WHERE ${spec.guard}
  RETURNING lq_key, lq_state, lq_changed_rev = lq_computed_rev AS changed),
dd AS (DELETE FROM ${X} WHERE lq_key IN (SELECT lq_key FROM up WHERE changed AND lq_state <> 'ok')),
di AS (
  INSERT INTO ${X} (${[...cols.map((c) => q(c.name)), 'lq_key'].join(', ')})
  SELECT ${[...cols.map((c, i) => f(i, c.type)), f(cols.length, 'text')].join(', ')}
  FROM jsonb_array_elements($3::jsonb) AS j(value) JOIN up ON up.lq_key = ${f(cols.length, 'text')} AND up.changed AND up.lq_state = 'ok'
  ON CONFLICT (lq_key) DO ${set})
SELECT (SELECT json_agg(json_build_array(g.lq_state, g.changed, g.n)) FROM (SELECT lq_state, changed, count(*) AS n FROM up GROUP BY lq_state, changed) AS g) AS counts,
  (SELECT json_agg(src.k) FROM src WHERE NOT EXISTS (SELECT 1 FROM up WHERE up.lq_key = src.k)) AS lost,
  (SELECT rev FROM rv) AS rev`
}

export const storeDialects: Readonly<Record<Dialect, StoreDialect>> = { sqlite, postgres }
