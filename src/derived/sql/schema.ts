/**
 * The store's own tables, created and versioned by the library: a schema-version row in
 * `lq_store_meta` and an ordered list of migrations, applied in one transaction at `openStore`
 * (under an advisory lock on PostgreSQL, so two processes opening one store do not race).
 *
 * Store-wide tables (created by migration 1; the current schema version is `SCHEMA_VERSION`):
 * - `lq_store_meta(name, value)`: `schema_version`.
 * - the revision clock (`lq_clock` on SQLite, sequence `lq_clock_seq` on PostgreSQL).
 * - `lq_tracked(root, key_columns)`: tracked root tables.
 * - `lq_derived(name, code_version, applied_code_version, wm_rev, wm_xmin)`: one row per
 *   derived table: the version declared by the last program to use it, the version its last
 *   complete refresh applied (cleared by writes under another version), and the watermark.
 * - `lq_edge(src_table, src_key, dst_table, dst_key)`: lineage edges of derivations over
 *   comprehensions (a derivation over one table, or `joinOnRoot`, has the implicit edge "same
 *   address").
 *
 * Per tracked root `R`: `lq_rev_R(lq_key, rev, deleted[, xid])`, indexed by `rev` (SQLite:
 * covering, `rev, lq_key, deleted`), by `xid` (PostgreSQL) and, partially, by `rev WHERE
 * deleted = 1`.
 * Per derived table `X`: the data table `X` (declared columns + `lq_key`) and the metadata table
 * `lq_meta_X` (see `metaDDL`).
 */
import { CompiledQuery, sql, type Kysely } from 'kysely'
import { LineageQueryError } from '../../errors.js'
import { createTable } from '../../query/ddl.js'
import { hooksFor } from '../../query/dialect.js'
import type { TableDef } from '../../query/schema.js'
import { claimDialects } from './claims.js'
import { indexName, legacyIndexName, metaTable, q, type StoreDialect } from './dialect.js'
import { exec } from './text.js'

/**
 * 1: the first layout. 2: deleted derived rows are tombstones (`lq_state = 'deleted'`) that
 * earlier versions would read as live rows, so they must refuse the database; the metadata
 * columns `lq_input_hash` and `lq_eval_rev` are added per table on first use. 3: the claim table
 * `lq_claim` of worker leases (older versions ignore it: they compute without claiming). 4: the
 * range claim table `lq_claim_range` (a first fill's page claimed as one row: earlier versions
 * would not see those claims, so they must refuse the database). 5: the late-row check of
 * comprehension derivations on PostgreSQL (`StoreDialect.lateCheckDDL`: earlier versions would
 * write without it, reopening the window it closes, so they must refuse the database; on
 * SQLite the version only).
 */
export const SCHEMA_VERSION = 5

interface Migration {
  readonly version: number
  statements(d: StoreDialect): string[]
}

const migrations: readonly Migration[] = [
  {
    version: 1,
    statements: (d) => [
      ...d.clockDDL(),
      `CREATE TABLE lq_tracked (root text PRIMARY KEY, key_columns text NOT NULL)`,
      `CREATE TABLE lq_derived (name text PRIMARY KEY, code_version text NOT NULL, applied_code_version text, wm_rev ${d.revType} NOT NULL DEFAULT 0, wm_xmin text)`,
      `CREATE TABLE lq_edge (src_table text NOT NULL, src_key text NOT NULL, dst_table text NOT NULL, dst_key text NOT NULL, PRIMARY KEY (src_table, src_key, dst_table, dst_key))`,
      `CREATE INDEX lq_edge_dst ON lq_edge (dst_table, dst_key)`,
    ],
  },
  { version: 2, statements: () => [] },
  // Leases of worker processes: the claim table and its token counter (claims.ts).
  { version: 3, statements: (d) => claimDialects[d.name].ddl() },
  // Range claims of first fills' pages (claims.ts).
  { version: 4, statements: (d) => claimDialects[d.name].rangeDdl() },
  // The late-row check of comprehension derivations (PostgreSQL; `StoreDialect.lateCheckDDL`).
  { version: 5, statements: (d) => d.lateCheckDDL() },
]

/** Create or upgrade the store's own tables; throws when the database is newer than this library. */
export async function migrate(db: Kysely<any>, d: StoreDialect): Promise<void> {
  // Already at this version (every start but the first): no write transaction, no lock.
  if ((await d.columns(db, 'lq_store_meta')) !== undefined) {
    const r = await sql<{ value: string }>`SELECT value FROM lq_store_meta WHERE name = 'schema_version'`.execute(db)
    if (r.rows[0] !== undefined && Number(r.rows[0].value) === SCHEMA_VERSION) return
  }
  await db.transaction().execute(async (trx) => {
    await d.lockMigrations(trx)
    await sql.raw(`CREATE TABLE IF NOT EXISTS lq_store_meta (name text PRIMARY KEY, value text NOT NULL)`).execute(trx)
    const r = await sql<{ value: string }>`SELECT value FROM lq_store_meta WHERE name = 'schema_version'`.execute(trx)
    const current = r.rows[0] === undefined ? 0 : Number(r.rows[0].value)
    if (current > SCHEMA_VERSION) {
      throw new LineageQueryError('schema', `the store's tables are at schema version ${current}, newer than this version of lineage-query supports (${SCHEMA_VERSION}); upgrade lineage-query`, {
        found: current,
        supported: SCHEMA_VERSION,
      })
    }
    for (const m of migrations) {
      if (m.version <= current) continue
      for (const s of m.statements(d)) await sql.raw(s).execute(trx)
    }
    if (current === 0) await sql`INSERT INTO lq_store_meta (name, value) VALUES ('schema_version', ${String(SCHEMA_VERSION)})`.execute(trx)
    else if (current < SCHEMA_VERSION) await sql`UPDATE lq_store_meta SET value = ${String(SCHEMA_VERSION)} WHERE name = 'schema_version'`.execute(trx)
  })
}

/**
 * The metadata table of a derived table: one row per derived row, ok, failed, blocked, or
 * deleted (a tombstone).
 * `lq_lineage` is written empty (the lineage is the address, see `lineageOfAddress`) and
 * `lq_inputs` only for derivations over several inputs (see `recordedInputs`).
 */
export function metaDDL(d: StoreDialect, name: string): string[] {
  const M = q(metaTable(name))
  const xid = d.xidColumn === undefined ? '' : `, lq_xid ${d.xidColumn}`
  return [
    `CREATE TABLE IF NOT EXISTS ${M} (
  lq_key text PRIMARY KEY,
  lq_lineage text NOT NULL,
  lq_inputs text NOT NULL,
  lq_max_input_rev ${d.revType} NOT NULL,
  lq_code_version text NOT NULL,
  lq_state text NOT NULL,
  lq_error text,
  lq_hash text,
  lq_computed_rev ${d.revType} NOT NULL,
  lq_changed_rev ${d.revType} NOT NULL,
  lq_claimed_by text,
  lq_claim_expires ${d.revType}${xid},
  lq_input_hash text,
  lq_eval_rev ${d.revType}
)${d.keyedTable}`,
    `CREATE INDEX IF NOT EXISTS ${q(indexName(metaTable(name), 'changed'))} ON ${M} (lq_changed_rev)`,
    ...(d.xidColumn === undefined ? [] : [`CREATE INDEX IF NOT EXISTS ${q(indexName(metaTable(name), 'xid'))} ON ${M} (lq_xid)`]),
  ]
}

/**
 * Create a derived table's data and metadata tables, or check that existing ones fit the
 * declaration (same columns, types and nullability); a mismatch is a `schema` error.
 */
export async function ensureDerivedTables(db: Kysely<any>, d: StoreDialect, def: TableDef, codeVersion: string): Promise<void> {
  const existing = await d.columns(db, def.name)
  const hooks = hooksFor(d.name)
  if (existing === undefined) {
    if (d.keyedTable === '') await createTable(db, def, { ifNotExists: true })
    else {
      // createTable's table (columns, types, NOT NULL, primary key), with the keyed-table option.
      const cols = def.columns.map((c) => `${q(c.name)} ${hooks.sqlType(c.type.kind)}${c.type.nullable ? '' : ' NOT NULL'}`)
      await sql.raw(`CREATE TABLE IF NOT EXISTS ${q(def.name)} (${cols.join(', ')}, CONSTRAINT ${q(`${def.name}_pkey`)} PRIMARY KEY (${def.key!.map(q).join(', ')}))${d.keyedTable}`).execute(db)
    }
  } else {
    const byName = new Map(existing.map((c) => [c.name, c]))
    const problems: string[] = []
    for (const col of def.columns) {
      const have = byName.get(col.name)
      const want = hooks.sqlType(col.type.kind)
      if (have === undefined) problems.push(`column \`${col.name}\` is missing`)
      else if (have.type !== want) problems.push(`column \`${col.name}\` has type ${have.type}, the declaration needs ${want}`)
      else if (have.notNull !== !col.type.nullable) problems.push(`column \`${col.name}\` is ${have.notNull ? 'NOT NULL' : 'nullable'}, the declaration says ${col.type.nullable ? 'nullable' : 'NOT NULL'}`)
    }
    for (const c of existing) if (!def.byName.has(c.name)) problems.push(`column \`${c.name}\` is not declared`)
    if (problems.length > 0) {
      throw new LineageQueryError('schema', `derived table \`${def.name}\`: the stored table does not fit the declared output: ${problems.join('; ')}. Rename the derivation or drop the table \`${def.name}\` (and \`${metaTable(def.name)}\`) to rebuild it`, {
        table: def.name,
        problems,
      })
    }
  }
  // Columns added since the metadata table was first created by an earlier version.
  const metaCols = await d.columns(db, metaTable(def.name))
  for (const [col, type] of [['lq_input_hash', 'text'], ['lq_eval_rev', d.revType]] as const) {
    if (metaCols !== undefined && !metaCols.some((c) => c.name === col)) await sql.raw(`ALTER TABLE ${q(metaTable(def.name))} ADD COLUMN ${col} ${type}`).execute(db)
  }
  // Index names of earlier versions (`lq_meta_X_changed` could be another table's name).
  for (const what of ['changed', 'xid']) await d.dropIndexOn(db, legacyIndexName(metaTable(def.name), what), metaTable(def.name))
  for (const s of metaDDL(d, def.name)) await sql.raw(s).execute(db)
  await sql`INSERT INTO lq_derived (name, code_version) VALUES (${def.name}, ${codeVersion}) ON CONFLICT (name) DO NOTHING`.execute(db)
  await sql`UPDATE lq_derived SET code_version = ${codeVersion} WHERE name = ${def.name}`.execute(db)
}

// ---------------------------------------------------------------- tracked roots (see startup.ts)

/** A root's row of `lq_tracked`. */
export interface TrackedRow {
  readonly key_columns: string
  readonly ddl_hash?: string | null
  readonly table_id?: string | null
}

export async function trackedRow(db: Kysely<any>, root: string): Promise<TrackedRow | undefined> {
  const r = await sql<TrackedRow>`SELECT * FROM lq_tracked WHERE root = ${root}`.execute(db)
  return r.rows[0]
}

/** Add the columns of `lq_tracked` that earlier versions did not have. */
export async function upgradeTracked(trx: Kysely<any>, d: StoreDialect): Promise<void> {
  const cols = (await d.columns(trx, 'lq_tracked')) ?? []
  for (const col of ['ddl_hash', 'table_id']) if (!cols.some((x) => x.name === col)) await sql.raw(`ALTER TABLE lq_tracked ADD COLUMN ${col} text`).execute(trx)
}

export async function upsertTracked(trx: Kysely<any>, d: StoreDialect, def: TableDef, ddl: string, tableId: string | null): Promise<void> {
  await exec(
    trx,
    `INSERT INTO lq_tracked (root, key_columns, ddl_hash, table_id) VALUES (${d.ph(1)}, ${d.ph(2)}, ${d.ph(3)}, ${d.ph(4)}) ON CONFLICT (root) DO UPDATE SET key_columns = excluded.key_columns, ddl_hash = excluded.ddl_hash, table_id = excluded.table_id`,
    [def.name, JSON.stringify(def.key), ddl, tableId],
  )
}

/** Run start statements given as text (DDL, a backfill batch); the rows they changed. */
export async function execCounting(trx: Kysely<any>, text: string, params: readonly unknown[]): Promise<number> {
  return Number((await trx.executeQuery(CompiledQuery.raw(text, params as unknown[]))).numAffectedRows ?? 0)
}

/** Run statements given as text, one after the other. */
export async function execAll(trx: Kysely<any>, texts: readonly string[]): Promise<void> {
  for (const s of texts) await sql.raw(s).execute(trx)
}
