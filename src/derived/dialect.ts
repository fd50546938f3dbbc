/**
 * Every SQLite/PostgreSQL difference of the derived-data engine, as named hooks: the revision
 * clock, the root triggers, the "changed since the watermark" filter, the monotonic-write
 * check and catalogue introspection. Nothing else in `src/derived` branches on the dialect.
 *
 * Revision clock. SQLite: a one-row table `lq_clock` bumped by every trigger and every derived
 * write (SQLite has one writer at a time, so revisions commit in order). PostgreSQL: the
 * sequence `lq_clock_seq`. Sequence values are handed out before commit, so a transaction can
 * commit a revision lower than one already seen; every revision row therefore also records
 * the writing transaction id (`xid8`), and a watermark is the pair (revision, snapshot xmin):
 * "changed since" means `rev > wm.rev OR xid >= wm.xmin`, which includes every transaction
 * that was still running when the watermark was taken.
 */
import { sql, type Kysely, type RawBuilder } from 'kysely'
import type { Dialect } from '../query/dialect.js'
import type { TableDef } from '../query/schema.js'

/** The point up to which changes have been processed. */
export interface Watermark {
  readonly rev: number
  /** PostgreSQL: the snapshot xmin when the watermark was taken (as text); SQLite: null. */
  readonly xmin: string | null
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
  /** Statements creating the clock. */
  clockDDL(): string[]
  /** The current clock value and (PostgreSQL) snapshot xmin. */
  readClock(db: Kysely<any>): Promise<Watermark>
  /** A new revision, inside the caller's transaction. */
  nextRev(trx: Kysely<any>): Promise<number>
  /** `alias.rev > wm.rev` (or PostgreSQL's xid-aware variant). */
  since(alias: string, revCol: string, xidCol: string, wm: Watermark): RawBuilder<boolean>
  /** The assignment that stamps a written row with the current transaction (PostgreSQL) or nothing. */
  xidValue(): RawBuilder<unknown> | undefined
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
}

export const q = (name: string): string => `"${name.replace(/"/g, '""')}"`
export const revTable = (root: string): string => `lq_rev_${root}`
export const metaTable = (derived: string): string => `lq_meta_${derived}`

/** SQL text of a row's key, equal to `keyText` of the key value decoded in JavaScript. */
function keyExpr(root: TableDef, row: string, dialect: Dialect): string {
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
      `CREATE TABLE IF NOT EXISTS ${V} (lq_key text PRIMARY KEY, rev integer NOT NULL, deleted integer NOT NULL)`,
      `CREATE INDEX IF NOT EXISTS ${q(`${revTable(root.name)}_rev`)} ON ${V} (rev)`,
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
}

const postgres: StoreDialect = {
  name: 'postgres',
  revType: 'bigint',
  xidColumn: 'xid8 NOT NULL DEFAULT pg_current_xact_id()',
  clockDDL: () => [`CREATE SEQUENCE lq_clock_seq`],
  async readClock(db) {
    const r = await sql<{ rev: string; xmin: string }>`SELECT (SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM lq_clock_seq) AS rev, pg_snapshot_xmin(pg_current_snapshot())::text AS xmin`.execute(db)
    const row = r.rows[0]!
    return { rev: Number(row.rev), xmin: row.xmin }
  },
  async nextRev(trx) {
    const r = await sql<{ rev: string }>`SELECT nextval('lq_clock_seq') AS rev`.execute(trx)
    return Number(r.rows[0]!.rev)
  },
  since: (alias, revCol, xidCol, wm) =>
    wm.xmin === null
      ? sql<boolean>`${sql.ref(`${alias}.${revCol}`)} > ${wm.rev}`
      : sql<boolean>`(${sql.ref(`${alias}.${revCol}`)} > ${wm.rev} OR ${sql.ref(`${alias}.${xidCol}`)} >= ${wm.xmin}::xid8)`,
  xidValue: () => sql`pg_current_xact_id()`,
  trackDDL(root) {
    const R = q(root.name)
    const V = q(revTable(root.name))
    const fn = q(`lq_trg_${root.name}`)
    const upsert = (key: string, deleted: 0 | 1) =>
      `INSERT INTO ${V} (lq_key, rev, deleted, xid) VALUES (${key}, nextval('lq_clock_seq'), ${deleted}, pg_current_xact_id()) ON CONFLICT (lq_key) DO UPDATE SET rev = excluded.rev, deleted = excluded.deleted, xid = excluded.xid;`
    const kNew = keyExpr(root, 'NEW', 'postgres')
    const kOld = keyExpr(root, 'OLD', 'postgres')
    return [
      `CREATE TABLE IF NOT EXISTS ${V} (lq_key text PRIMARY KEY, rev bigint NOT NULL, deleted integer NOT NULL, xid xid8 NOT NULL DEFAULT pg_current_xact_id())`,
      `CREATE INDEX IF NOT EXISTS ${q(`${revTable(root.name)}_rev`)} ON ${V} (rev)`,
      `CREATE INDEX IF NOT EXISTS ${q(`${revTable(root.name)}_xid`)} ON ${V} (xid)`,
      `CREATE OR REPLACE FUNCTION ${fn}() RETURNS trigger LANGUAGE plpgsql SET search_path FROM CURRENT AS $lq$
BEGIN
  IF TG_OP = 'INSERT' THEN
    ${upsert(kNew, 0)}
  ELSIF TG_OP = 'UPDATE' THEN
    IF ${kOld} IS DISTINCT FROM ${kNew} THEN
      ${upsert(kOld, 1)}
    END IF;
    ${upsert(kNew, 0)}
  ELSE
    ${upsert(kOld, 1)}
  END IF;
  RETURN NULL;
END
$lq$`,
      `DROP TRIGGER IF EXISTS ${fn} ON ${R}`,
      `CREATE TRIGGER ${fn} AFTER INSERT OR UPDATE OR DELETE ON ${R} FOR EACH ROW EXECUTE FUNCTION ${fn}()`,
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
}

export const storeDialects: Readonly<Record<Dialect, StoreDialect>> = { sqlite, postgres }
