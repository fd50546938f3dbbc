/**
 * Table declarations as plain data: the column codecs, the scalar type each codec stores as,
 * and the key. Phase 0 of the pipeline: everything later reads `TableDef`s, never codecs'
 * internals.
 */
import type * as t from 'io-ts'
import { LineageQueryError } from '../errors.js'
import { sqlKindOf } from './codecs.js'

/**
 * The scalar types the compiler knows. `null` is the type of the `null` literal alone.
 * `date`, `timestamp`, `decimal` and `json` are the kinds of the codecs in `codecs.ts`.
 */
export type ScalarKind = 'string' | 'int' | 'real' | 'boolean' | 'null' | 'date' | 'timestamp' | 'decimal' | 'json'

/** A scalar type: its kind and whether it admits SQL NULL. */
export interface SType {
  readonly kind: ScalarKind
  readonly nullable: boolean
  /** Decimals only: digits after the point (values are exact multiples of 10^-scale). */
  readonly scale?: number
}

export interface ColumnDef {
  readonly name: string
  readonly codec: t.Mixed
  readonly type: SType
}

export interface TableDef {
  readonly name: string
  readonly columns: readonly ColumnDef[]
  readonly byName: ReadonlyMap<string, ColumnDef>
  /** Key columns in declared order; `undefined` when the table declares none. */
  readonly key: readonly string[] | undefined
  /** Whether `lineage(q)` records rows of this table. */
  readonly lineage: boolean
  /**
   * For tables whose rows were derived from other rows (the derived-data engine's tables): the
   * column holding each row's own lineage, which `lineage(q)` reports instead of this table's
   * key, so provenance composes. `table` set: the column holds the JSON text of one key of that
   * table; unset: a JSON list of `[table, key]` pairs.
   */
  readonly storedLineage: StoredLineage | undefined
}

export interface StoredLineage {
  readonly column: string
  readonly table?: string | undefined
}

const IDENT = /^[A-Za-z_][A-Za-z0-9_]*$/

/** Analyse an io-ts codec: which SQL scalar type stores it. `undefined` when none does. */
export function codecType(codec: t.Mixed): SType | undefined {
  // io-ts codecs carry a `_tag`; we walk the few shapes that map onto SQL scalars.
  const c = codec as unknown as { _tag?: string; name?: string; type?: t.Mixed; types?: readonly t.Mixed[]; value?: unknown; keys?: object }
  const ext = sqlKindOf(codec)
  if (ext !== undefined) return ext.kind === 'decimal' ? { kind: 'decimal', nullable: false, scale: ext.scale ?? 0 } : { kind: ext.kind, nullable: false }
  switch (c._tag) {
    case 'StringType':
      return { kind: 'string', nullable: false }
    case 'NumberType':
      return { kind: 'real', nullable: false }
    case 'BooleanType':
      return { kind: 'boolean', nullable: false }
    case 'NullType':
      return { kind: 'null', nullable: true }
    case 'KeyofType':
      return { kind: 'string', nullable: false }
    case 'LiteralType': {
      const v = c.value
      if (typeof v === 'string') return { kind: 'string', nullable: false }
      if (typeof v === 'number') return { kind: Number.isInteger(v) ? 'int' : 'real', nullable: false }
      if (typeof v === 'boolean') return { kind: 'boolean', nullable: false }
      return undefined
    }
    case 'RefinementType':
    case 'ReadonlyType': {
      if (c.type === undefined) return undefined
      const inner = codecType(c.type)
      if (inner === undefined) return undefined
      if (c._tag === 'RefinementType' && c.name === 'Int' && inner.kind === 'real') return { kind: 'int', nullable: inner.nullable }
      return inner
    }
    case 'UnionType': {
      let acc: SType | undefined
      for (const member of c.types ?? []) {
        const m = codecType(member)
        if (m === undefined) return undefined
        acc = acc === undefined ? m : unify(acc, m)
        if (acc === undefined) return undefined
      }
      return acc
    }
    default:
      return undefined
  }
}

/** The least type both `a` and `b` fit in, or `undefined` when there is none. */
export function unify(a: SType, b: SType): SType | undefined {
  const nullable = a.nullable || b.nullable
  if (a.kind === 'null') return b.nullable ? b : { ...b, nullable: true }
  if (b.kind === 'null') return a.nullable ? a : { ...a, nullable: true }
  if (a.kind === 'decimal' || b.kind === 'decimal') {
    // Decimals unify with decimals and integers (scale 0), exactly; never silently with reals.
    const other = a.kind === 'decimal' ? b : a
    if (other.kind === 'decimal' || other.kind === 'int') return { kind: 'decimal', nullable, scale: Math.max(a.scale ?? 0, b.scale ?? 0) }
    return undefined
  }
  if (a.kind === b.kind) return { kind: a.kind, nullable }
  if ((a.kind === 'int' && b.kind === 'real') || (a.kind === 'real' && b.kind === 'int')) return { kind: 'real', nullable }
  return undefined
}

export function showType(t: SType): string {
  const k = t.kind === 'decimal' ? `decimal(scale ${t.scale ?? 0})` : t.kind
  return t.kind === 'null' ? 'null' : t.nullable ? `${k} | null` : k
}

export interface TableOptionsData {
  readonly key?: string | readonly string[] | undefined
  readonly lineage?: boolean | undefined
  readonly storedLineage?: StoredLineage | undefined
}

/** Validate a table declaration and turn it into a `TableDef`; throws `schema` errors. */
export function tableDef(name: unknown, columns: unknown, options: TableOptionsData = {}): TableDef {
  if (typeof name !== 'string' || !IDENT.test(name)) {
    const qualified = typeof name === 'string' && /^[A-Za-z_][A-Za-z0-9_]*\.[A-Za-z_][A-Za-z0-9_]*$/.test(name)
    throw new LineageQueryError(
      'schema',
      `table name must be an identifier (letters, digits, _), got ${JSON.stringify(name)}` +
        (qualified ? '; schema-qualified names are not supported: name the table alone and put its schema on the connection\'s search_path (PostgreSQL)' : ''),
      { table: name },
    )
  }
  if (typeof columns !== 'object' || columns === null || Array.isArray(columns)) {
    throw new LineageQueryError('schema', `table \`${name}\`: columns must be an object of io-ts codecs, e.g. { id: t.Int, name: t.string }`, { table: name })
  }
  const defs: ColumnDef[] = []
  for (const [col, codec] of Object.entries(columns as Record<string, unknown>)) {
    if (!IDENT.test(col) || col.startsWith('__')) {
      throw new LineageQueryError('schema', `table \`${name}\`: column name ${JSON.stringify(col)} must be an identifier not starting with "__"`, { table: name, column: col })
    }
    const isCodec = typeof codec === 'object' && codec !== null && typeof (codec as { decode?: unknown }).decode === 'function'
    const type = isCodec ? codecType(codec as t.Mixed) : undefined
    if (type === undefined || type.kind === 'null') {
      const what = isCodec ? `codec \`${(codec as t.Mixed).name}\`` : `value ${typeof codec}`
      throw new LineageQueryError(
        'schema',
        `table \`${name}\`, column \`${col}\`: ${what} does not fit a SQL column; expected t.string, t.number, t.Int, t.boolean, DateString, Timestamp, decimal(p, s), Json, a literal/keyof codec, or a union of one of those with t.null`,
        { table: name, column: col },
      )
    }
    defs.push({ name: col, codec: codec as t.Mixed, type })
  }
  if (defs.length === 0) throw new LineageQueryError('schema', `table \`${name}\` has no columns`, { table: name })
  const byName = new Map(defs.map((d) => [d.name, d]))
  const rawKey = options.key ?? (byName.has('id') ? 'id' : undefined)
  const key = rawKey === undefined ? undefined : typeof rawKey === 'string' ? [rawKey] : [...rawKey]
  if (key !== undefined) {
    if (key.length === 0) throw new LineageQueryError('schema', `table \`${name}\`: key must name at least one column`, { table: name })
    for (const k of key) {
      if (!byName.has(k)) {
        throw new LineageQueryError('schema', `table \`${name}\`: key column \`${k}\` is not a column; columns: ${defs.map((d) => d.name).join(', ')}`, { table: name, column: k })
      }
    }
  }
  if (options.lineage !== undefined && typeof options.lineage !== 'boolean') {
    throw new LineageQueryError('schema', `table \`${name}\`: options.lineage must be a boolean`, { table: name })
  }
  const stored = options.storedLineage
  if (stored !== undefined) {
    const c = byName.get(stored.column)
    if (c === undefined || c.type.kind !== 'string') {
      throw new LineageQueryError('schema', `table \`${name}\`: storedLineage.column must name a string column; got ${JSON.stringify(stored.column)}`, { table: name, column: stored.column })
    }
  }
  return Object.freeze({
    name,
    columns: Object.freeze(defs),
    byName,
    key: key && Object.freeze(key),
    lineage: options.lineage ?? true,
    storedLineage: stored && Object.freeze({ column: stored.column, table: stored.table }),
  })
}

/** The column of `table` called `name`, or an `unknown-column` error listing the columns. */
export function columnOf(table: TableDef, name: string): ColumnDef {
  const c = table.byName.get(name)
  if (c === undefined) {
    throw new LineageQueryError('unknown-column', `table \`${table.name}\` has no column \`${name}\`; columns: ${table.columns.map((d) => d.name).join(', ')}`, {
      table: table.name,
      column: name,
    })
  }
  return c
}
