/**
 * TPC-H DDL and bulk loaders for SQLite (better-sqlite3) and PostgreSQL (node-postgres), for the
 * data of `generate.ts`. Primary keys (composite for partsupp and lineitem) and the foreign-key
 * indexes of `FK_INDEXES`; then ANALYZE so both planners see the statistics.
 *
 * Storage (switchable, `StorageOptions`):
 * - dates: ISO `YYYY-MM-DD` text on SQLite, `date` on PostgreSQL;
 * - decimals: REAL on SQLite; `numeric(15,2)` on PostgreSQL by default, or `double precision`
 *   (`decimal: 'real'`), for a DSL whose decimal codec is still a double.
 * Text columns are `text` on both (not TPC-H's `char(n)`, whose blank padding would make the two
 * dialects' answers differ).
 */
import type BetterSqlite3 from 'better-sqlite3'
import type pg from 'pg'
import { SCHEMA, FK_INDEXES, TABLES, type ColKind, type TpchData } from './generate.js'

export interface StorageOptions {
  /** PostgreSQL decimal columns: `numeric(15,2)` (default) or `double precision`. */
  readonly decimal?: 'numeric' | 'real'
}

function sqlType(dialect: 'sqlite' | 'postgres', kind: ColKind, opts: StorageOptions): string {
  if (dialect === 'sqlite') return kind === 'int' ? 'integer' : kind === 'decimal' ? 'real' : 'text'
  switch (kind) {
    case 'int':
      return 'integer'
    case 'decimal':
      return opts.decimal === 'real' ? 'double precision' : 'numeric(15,2)'
    case 'date':
      return 'date'
    case 'text':
      return 'text'
  }
}

/** CREATE TABLE statements (with primary keys). */
export function ddl(dialect: 'sqlite' | 'postgres', opts: StorageOptions = {}): string[] {
  const out: string[] = []
  for (const t of TABLES) {
    const { cols, key } = SCHEMA[t]
    const body = cols.map(([c, k]) => `${c} ${sqlType(dialect, k, opts)} not null`).join(', ')
    out.push(`create table ${t} (${body}, primary key (${key.join(', ')}))`)
  }
  return out
}

/** The foreign-key indexes (created after loading). */
export function indexes(): string[] {
  return FK_INDEXES.map(([t, c]) => `create index ${t}_${c.replace(/[ ,]+/g, '_')} on ${t} (${c})`)
}

/** Load everything into an empty SQLite database: DDL, one transaction of prepared inserts, indexes, ANALYZE. */
export function loadSqlite(db: BetterSqlite3.Database, data: TpchData): void {
  for (const s of ddl('sqlite')) db.exec(s)
  db.transaction(() => {
    for (const t of TABLES) {
      const cols = SCHEMA[t].cols.map(([c]) => c)
      const ins = db.prepare(`insert into ${t} (${cols.join(', ')}) values (${cols.map(() => '?').join(', ')})`)
      for (const row of data[t] as unknown as readonly Record<string, unknown>[]) ins.run(...cols.map((c) => row[c]))
    }
  })()
  for (const s of indexes()) db.exec(s)
  db.exec('analyze')
}

const pgArrayType: Readonly<Record<ColKind, string>> = { int: 'integer[]', decimal: 'numeric[]', date: 'date[]', text: 'text[]' }

/**
 * Load everything into an empty PostgreSQL schema (the client's search_path): DDL, then per
 * table `insert ... select * from unnest($1::integer[], ...)` in batches of 10,000 rows (one
 * array parameter per column: no per-row parameters, no COPY), indexes, ANALYZE.
 */
export async function loadPostgres(client: pg.ClientBase, data: TpchData, opts: StorageOptions = {}): Promise<void> {
  for (const s of ddl('postgres', opts)) await client.query(s)
  const BATCH = 10_000
  for (const t of TABLES) {
    const cols = SCHEMA[t].cols
    const rows = data[t] as unknown as readonly Record<string, unknown>[]
    const sql = `insert into ${t} (${cols.map(([c]) => c).join(', ')}) select * from unnest(${cols.map(([, k], i) => `$${i + 1}::${pgArrayType[k]}`).join(', ')})`
    for (let at = 0; at < rows.length; at += BATCH) {
      const slice = rows.slice(at, at + BATCH)
      // decimals travel as exact strings (cents / 100 printed with two places)
      const params = cols.map(([c, k]) => slice.map((r) => (k === 'decimal' ? (r[c] as number).toFixed(2) : r[c])))
      await client.query(sql, params)
    }
  }
  for (const s of indexes()) await client.query(s)
  await client.query('analyze')
}
