/**
 * Lineage for users: `lineage(q)` annotates every result element (and every element of every
 * nested collection) with the `(table, key)` rows it came from; helpers summarise results.
 */
import { LineageQueryError, showValue } from '../errors.js'
import { AST, Query, type AnyQuery, type Coll, type Scalar } from '../query/dsl.js'
import { DEFAULT_REWRITE, rewriteQuery } from './rewrite.js'

/** The annotated form of a query element of type `T` whose source tables have entry type `K`. */
export interface Annotated<T, K> {
  readonly data: AnnotateFields<T>
  /** The source rows, in generator order (outer to inner), each at most once. */
  readonly lineage: K[]
}

/** `T` with every nested collection's elements annotated too. */
export type AnnotateFields<T> = 0 extends 1 & T
  ? any
  : [T] extends [Coll<infer E, infer K>]
    ? Coll<Annotated<E, K>>
    : [T] extends [Scalar]
      ? T
      : { -readonly [F in keyof T]: AnnotateFields<T[F]> }

/**
 * Annotate a query with lineage: each element becomes `{ data, lineage }` where `lineage` lists
 * the `(table, key)` of every tracked table row it was built from, in generator order without
 * duplicates. Conditions (`Q.where`, `Q.exists`) and aggregate values add no entries; constants
 * and `Q.values` elements carry `[]`; tables declared `{ lineage: false }` add nothing. Runs as
 * the same number of SQL statements as the plain query (one): only key columns are added.
 *
 * @example
 * ```ts
 * const rows = await run(db, lineage(Q.for(agencies, (a) => Q.yield(a.name))))
 * // [{ data: 'EdinTours', lineage: [{ table: 'agencies', key: 1 }] }, ...]
 * ```
 */
export function lineage<T, K>(query: Query<T, K>, options: LineageOptions = {}): Query<Annotated<T, K>, never> {
  const node = (query as { [AST]?: unknown } | null | undefined)?.[AST]
  if (node === undefined) throw new LineageQueryError('argument', `lineage expects a query, got ${showValue(query)}`)
  if (typeof options !== 'object' || options === null) throw new LineageQueryError('argument', `lineage options must be an object, got ${showValue(options)}`)
  for (const [name, value] of Object.entries(options)) {
    if (!OPTION_NAMES.includes(name)) throw new LineageQueryError('argument', `lineage: unknown option \`${name}\`; expected one of ${OPTION_NAMES.join(', ')}`, { option: name })
    if (value !== undefined && typeof value !== 'boolean') throw new LineageQueryError('argument', `lineage: option \`${name}\` must be a boolean, got ${showValue(value)}`, { option: name, value })
  }
  return new Query(rewriteQuery(query[AST], new Map(), { ...DEFAULT_REWRITE, composed: options.composed ?? true, why: options.why ?? false }))
}

/**
 * @internal The derived-data engine's form of `lineage(q, { composed: false })`: top-level
 * elements annotated, nested collections plain data (a derivation's function gets the
 * comprehension's rows as `run(q)` returns them).
 */
export function inputLineage(query: AnyQuery): Query<{ data: unknown; lineage: SourceRow[] }, never> {
  return new Query(rewriteQuery(query[AST], new Map(), { ...DEFAULT_REWRITE, composed: false, nested: false }))
}

const OPTION_NAMES: readonly string[] = ['composed', 'why']

export interface LineageOptions {
  /**
   * For tables with stored lineage (derived tables): `true` (default) reports the rows each row
   * was derived from, so provenance composes to root rows; `false` names the derived rows
   * themselves by their key (what the derived-data engine needs to track its direct inputs).
   */
  readonly composed?: boolean
  /**
   * Why-provenance (default `false`): an element that passed a condition also names the
   * witnesses of that condition, the rows of every element of each query the condition reads
   * (`Q.exists`, `Q.empty`, aggregates in `Q.where`). See docs/lineage.md.
   */
  readonly why?: boolean
}

/** A source row named by lineage. */
export interface SourceRow<K = unknown> {
  readonly table: string
  readonly key: K
}

interface AnnotatedLike {
  readonly data: unknown
  readonly lineage: readonly SourceRow[]
}

const id = (s: SourceRow) => `${s.table}\u0000${JSON.stringify(s.key)}`

function check(rows: unknown, what: string): readonly AnnotatedLike[] {
  if (!Array.isArray(rows)) throw new LineageQueryError('argument', `${what} expects the rows of run(db, lineage(q)), got ${showValue(rows)}`)
  for (const r of rows) {
    if (typeof r !== 'object' || r === null || !Array.isArray((r as AnnotatedLike).lineage) || !('data' in r)) {
      throw new LineageQueryError('argument', `${what} expects rows of the form { data, lineage: [...] } (from run(db, lineage(q))), got ${showValue(r)}`)
    }
  }
  return rows as readonly AnnotatedLike[]
}

function collect(value: unknown, out: Map<string, SourceRow>): void {
  if (Array.isArray(value)) {
    for (const v of value) collect(v, out)
  } else if (typeof value === 'object' && value !== null) {
    const a = value as Partial<AnnotatedLike>
    if (Array.isArray(a.lineage) && 'data' in a) {
      for (const s of a.lineage) if (!out.has(id(s))) out.set(id(s), { table: s.table, key: s.key })
      collect(a.data, out)
    } else {
      for (const v of Object.values(value)) collect(v, out)
    }
  }
}

/**
 * The distinct source rows of a whole lineage result: the entries of every row and, unless
 * `{ nested: false }`, of every element of every nested collection. First-seen order.
 *
 * @example
 * ```ts
 * sourceRows(await run(db, lineage(q))) // [{ table: 'agencies', key: 1 }, { table: 'externalTours', key: 3 }, ...]
 * ```
 */
export function sourceRows<K>(rows: readonly { readonly data: unknown; readonly lineage: readonly K[] }[], options: { nested?: boolean } = {}): K[] {
  const list = check(rows, 'sourceRows')
  const out = new Map<string, SourceRow>()
  for (const r of list) {
    for (const s of r.lineage) if (!out.has(id(s))) out.set(id(s), { table: s.table, key: s.key })
    if (options.nested !== false) collect(r.data, out)
  }
  return [...out.values()] as K[]
}

/**
 * Group result rows by the source rows they came from: one group per distinct `(table, key)`
 * in the rows' top-level lineage, holding every row that names it (a row with several entries
 * is in several groups). First-seen order.
 *
 * @example
 * ```ts
 * for (const { source, rows } of groupBySource(await run(db, lineage(q)))) console.log(source.table, source.key, rows.length)
 * ```
 */
export function groupBySource<R extends { readonly data: unknown; readonly lineage: readonly unknown[] }>(rows: readonly R[]): { source: R['lineage'][number]; rows: R[] }[] {
  const list = check(rows, 'groupBySource') as unknown as readonly R[]
  const groups = new Map<string, { source: R['lineage'][number]; rows: R[] }>()
  for (const r of list) {
    for (const s of r.lineage as readonly SourceRow[]) {
      const k = id(s)
      let g = groups.get(k)
      if (g === undefined) groups.set(k, (g = { source: s as R['lineage'][number], rows: [] }))
      g.rows.push(r)
    }
  }
  return [...groups.values()]
}

export type { AnyQuery }
