/**
 * DDL and bulk-load helpers: create a declared table, insert rows into it. Used by the tests,
 * the demo and the benchmarks, and exported for users who let this library own their schema.
 *
 * @example
 * ```ts
 * const employees = table('employees', { id: t.Int, dept: t.string, name: t.string, salary: t.number })
 * await createTable(db, employees)
 * await insertRows(db, employees, [{ id: 1, dept: 'R&D', name: 'Ada', salary: 2000 }])
 * ```
 */
import type { ColumnDataType, CreateTableBuilder, Kysely } from 'kysely'
import { LineageQueryError, showValue } from '../errors.js'
import type { Constant } from './ast.js'
import { hooksFor, type Dialect, type DialectHooks } from './dialect.js'
import { dialectOf } from './dialect-of.js'
import { Table } from './dsl.js'
import { showType, type ColumnDef, type TableDef } from './schema.js'
import { sqlKindOf, type SqlKindInfo } from './codecs.js'

/**
 * Bound-parameter limits per statement: SQLite's `SQLITE_MAX_VARIABLE_NUMBER` (32766 since
 * 3.32, and what better-sqlite3 compiles in) and PostgreSQL's wire protocol (a 16-bit count).
 */
const MAX_PARAMS: Readonly<Record<Dialect, number>> = { sqlite: 32766, postgres: 65535 }
/** Rows per INSERT regardless of width: keeps statements (and their SQL text) moderate. */
const MAX_ROWS_PER_INSERT = 5000

function defOf(table: unknown, fn: string): TableDef {
  if (table instanceof Table) return table.def
  const d = table as Partial<TableDef> | null | undefined
  if (
    typeof d === 'object' && d !== null && typeof d.name === 'string' && Array.isArray(d.columns) && d.byName instanceof Map &&
    (d.key === undefined || Array.isArray(d.key))
  ) {
    return d as TableDef
  }
  throw new LineageQueryError('argument', `${fn} expects a table declared with table(...) (or its TableDef), got ${showValue(table)}`)
}

/**
 * `CREATE TABLE` for a declared table: one column per codec, typed by the dialect
 * (`dialectHooks.sqlType`), `NOT NULL` unless the codec admits `null`, and a primary key on
 * the declared key when there is one.
 *
 * @example
 * ```ts
 * await createTable(db, employees, { ifNotExists: true })
 * ```
 */
export async function createTable(db: Kysely<any>, table: Table<any, any, any> | TableDef, options: { ifNotExists?: boolean } = {}): Promise<void> {
  const def = defOf(table, 'createTable')
  if (typeof options !== 'object' || options === null) {
    throw new LineageQueryError('argument', `createTable(\`${def.name}\`): options must be an object like { ifNotExists: true }, got ${showValue(options)}`, { table: def.name })
  }
  const hooks = hooksFor(dialectOf(db))
  let builder: CreateTableBuilder<string, string> = db.schema.createTable(def.name)
  if (options.ifNotExists === true) builder = builder.ifNotExists()
  for (const col of def.columns) {
    // The hook returns one of Kysely's known column types ('text', 'bigint', ...); Kysely
    // rejects anything else, which is what we want.
    const ext = sqlKindOf(col.codec) ?? firstExt(col.codec)
    const type = ((ext?.kind === 'decimal' && ext.precision !== undefined ? hooks.decimalColumnType(ext.precision, ext.scale ?? 0) : undefined)
      ?? hooks.sqlType(col.type.kind)) as ColumnDataType
    builder = builder.addColumn(col.name, type, (c) => (col.type.nullable ? c : c.notNull()))
  }
  if (def.key !== undefined) builder = builder.addPrimaryKeyConstraint(`${def.name}_pkey`, [...def.key])
  await builder.execute()
}

/**
 * Insert `rows` into a declared table, in one transaction. Every row is checked against the
 * column codecs first (nothing is written when one is wrong): an unknown or missing column is
 * an `argument` error, a value its codec rejects a `decode` error; both messages name the
 * table, the column, the value and the expected type. Rows go in as multi-row INSERTs sized to
 * the dialect's bound-parameter limit.
 *
 * @example
 * ```ts
 * await insertRows(db, tasks, [{ employee: 'Ada', task: 'build' }, { employee: 'Ada', task: 'test' }])
 * ```
 */
export async function insertRows<R>(db: Kysely<any>, table: Table<any, R, any> | TableDef, rows: readonly R[]): Promise<void> {
  const def = defOf(table, 'insertRows')
  if (!Array.isArray(rows)) {
    throw new LineageQueryError('argument', `insertRows(\`${def.name}\`): rows must be an array of row objects, got ${showValue(rows)}`, { table: def.name })
  }
  const hooks = hooksFor(dialectOf(db))
  const values = rows.map((row, i) => dbRow(def, hooks, row, i))
  if (values.length === 0) return

  const perInsert = Math.max(1, Math.min(MAX_ROWS_PER_INSERT, Math.floor(MAX_PARAMS[hooks.name] / def.columns.length)))
  const write = async (trx: Kysely<any>): Promise<void> => {
    for (let i = 0; i < values.length; i += perInsert) {
      await trx.insertInto(def.name).values(values.slice(i, i + perInsert)).execute()
    }
  }
  // Already inside a transaction (Kysely refuses to nest `transaction()`): write in it.
  if (db.isTransaction) await write(db)
  else await db.transaction().execute(write)
}

/** One row checked against `def` and converted for the driver; throws on any mismatch. */
function dbRow(def: TableDef, hooks: DialectHooks, row: unknown, index: number): Record<string, unknown> {
  const where = `insertRows(\`${def.name}\`), row ${index}`
  if (typeof row !== 'object' || row === null || Array.isArray(row)) {
    throw new LineageQueryError('argument', `${where}: expected an object with columns ${columnList(def)}, got ${showValue(row)}`, { table: def.name, row: index, value: row })
  }
  for (const name of Object.keys(row)) {
    if (!def.byName.has(name)) {
      throw new LineageQueryError('argument', `${where}: unknown column \`${name}\` (value ${showValue((row as Record<string, unknown>)[name])}); columns: ${columnList(def)}`, {
        table: def.name,
        column: name,
        row: index,
      })
    }
  }
  const out: Record<string, unknown> = {}
  for (const col of def.columns) {
    if (!Object.prototype.hasOwnProperty.call(row, col.name)) {
      throw new LineageQueryError('argument', `${where}: missing column \`${col.name}\`, expected ${expected(col)}`, { table: def.name, column: col.name, row: index })
    }
    const v = checkValue(def, hooks, col, (row as Record<string, unknown>)[col.name], where, index)
    try {
      out[col.name] = hooks.columnToDb(col.type.kind, v, col.type.scale)
    } catch (e) {
      if (e instanceof LineageQueryError) throw new LineageQueryError('decode', `${where}, column \`${col.name}\`: ${e.message}`, { table: def.name, column: col.name, row: index, value: v })
      throw e
    }
  }
  return out
}

/** The codec of this library inside a nullable union (`t.union([decimal(15, 2), t.null])`). */
function firstExt(codec: unknown): SqlKindInfo | undefined {
  const types = (codec as { types?: readonly unknown[] }).types
  if (!Array.isArray(types)) return undefined
  for (const m of types) {
    const e = sqlKindOf(m) ?? firstExt(m)
    if (e !== undefined) return e
  }
  return undefined
}

function checkValue(def: TableDef, hooks: DialectHooks, col: ColumnDef, value: unknown, where: string, index: number): unknown {
  const fail = (why: string): never => {
    throw new LineageQueryError('decode', `${where}, column \`${col.name}\`: ${why}`, { table: def.name, column: col.name, row: index, value, expected: showType(col.type) })
  }
  const decoded = col.codec.decode(value)
  if (decoded._tag === 'Left') fail(`expected ${expected(col)}, got ${showValue(value)}`)
  // Dates, timestamps, decimals, JSON: the codec's value (a decimal padded to its scale).
  if (sqlKindOf(col.codec) !== undefined || firstExt(col.codec) !== undefined) {
    const r = (decoded as { right: unknown }).right
    if (typeof r === 'string' && hooks.textRejectsNul && r.includes('\u0000')) fail(`PostgreSQL text cannot contain the NUL character (\\u0000), got ${showValue(r)}`)
    return r
  }
  const v = value as Constant
  if (typeof v === 'number') {
    // NaN/±Infinity: SQLite stores NaN as NULL and PostgreSQL `bigint` rejects both; no portable meaning.
    if (!Number.isFinite(v)) fail(`expected a finite ${expected(col)}, got ${showValue(String(v))}`)
    if (col.type.kind === 'int' && !Number.isSafeInteger(v)) fail(`integer ${v} is outside JavaScript's safe integer range (expected ${expected(col)})`)
  }
  if (typeof v === 'string' && hooks.textRejectsNul && v.includes('\u0000')) {
    fail(`PostgreSQL text cannot contain the NUL character (\\u0000), got ${showValue(v)}`)
  }
  return v
}

function expected(col: ColumnDef): string {
  const sqlish = showType(col.type)
  return col.codec.name === sqlish ? sqlish : `${sqlish} (codec \`${col.codec.name}\`)`
}

const columnList = (def: TableDef): string => def.columns.map((c) => c.name).join(', ')
