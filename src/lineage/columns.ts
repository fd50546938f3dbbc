/**
 * Column lineage of a comprehension: which source columns each field of its yield reads, and
 * which source columns decide which rows there are (conditions, joins, grouping, ordering,
 * distinct). A pure function over the comprehension AST (an abstract evaluation: each
 * expression evaluates to the columns its value depends on), exhaustive over the node kinds.
 *
 * - `for x in T` binds `x` to a row of table `T`: `x.c` reads column `T.c` (a whole row used
 *   as a value reads all of `T`'s columns);
 * - a record's fields keep their own reads; any other operator, an aggregate or `exists` reads
 *   the union of its arguments' (an aggregate or `exists` also reads its query's conditions);
 * - `where`, `groupBy` keys, `orderBy` keys and `distinct` read columns *indirectly*: they
 *   decide which elements a collection has, not their values.
 *
 * Used for the OpenLineage column-lineage facet of a derived table whose source is a
 * comprehension (src/openlineage/events.ts).
 */
import { LineageQueryError } from '../errors.js'
import type { Expr } from '../query/ast.js'
import type { TableDef } from '../query/schema.js'

/** A source column. */
export interface ColumnRef {
  readonly table: string
  readonly column: string
}

/** Why a column is read indirectly. */
export type IndirectKind = 'FILTER' | 'GROUP_BY' | 'SORT'

/** What a comprehension's yield reads. */
export interface ColumnReads {
  /**
   * Per field of the yielded record (a yielded row: per column of its table; a yielded scalar:
   * the one field `''`): the columns its value is computed from (`direct`), and the columns
   * that decide which elements a nested collection in it has (`indirect`).
   */
  readonly fields: ReadonlyMap<string, { readonly direct: readonly ColumnRef[]; readonly indirect: readonly (ColumnRef & { readonly kind: IndirectKind })[] }>
  /** The columns that decide which elements the comprehension yields (its conditions, grouping, ordering), each with why. */
  readonly dataset: readonly (ColumnRef & { readonly kind: IndirectKind })[]
}

type Cols = ReadonlySet<string>
type Indirect = ReadonlyMap<string, ReadonlySet<IndirectKind>>

/** The abstract value of an expression: what its value is computed from. */
type Abs =
  | { readonly kind: 'cols'; readonly cols: Cols }
  | { readonly kind: 'row'; readonly table: TableDef }
  | { readonly kind: 'record'; readonly fields: ReadonlyMap<string, Abs> }
  | { readonly kind: 'bag'; readonly elem: Abs; readonly indirect: Indirect }

const SEP = '\u0000'
const col = (table: string, column: string): string => `${table}${SEP}${column}`
const ref = (k: string): ColumnRef => {
  const i = k.indexOf(SEP)
  return { table: k.slice(0, i), column: k.slice(i + 1) }
}
const NONE: Abs = { kind: 'cols', cols: new Set() }

/** Every column an abstract value depends on, directly or (inside nested collections) indirectly. */
function all(a: Abs): Set<string> {
  switch (a.kind) {
    case 'cols':
      return new Set(a.cols)
    case 'row':
      return new Set(a.table.columns.map((c) => col(a.table.name, c.name)))
    case 'record':
      return union([...a.fields.values()].map(all))
    case 'bag':
      return union([all(a.elem), new Set(a.indirect.keys())])
    default:
      return assertNever(a)
  }
}

function union(sets: readonly ReadonlySet<string>[]): Set<string> {
  const out = new Set<string>()
  for (const s of sets) for (const x of s) out.add(x)
  return out
}

function addIndirect(base: Indirect, cols: Iterable<string>, kind: IndirectKind): Indirect {
  const out = new Map<string, Set<IndirectKind>>([...base].map(([k, v]) => [k, new Set(v)]))
  for (const c of cols) {
    const s = out.get(c)
    if (s === undefined) out.set(c, new Set([kind]))
    else s.add(kind)
  }
  return out
}

function mergeIndirect(a: Indirect, b: Indirect): Indirect {
  let out = a
  for (const [c, kinds] of b) for (const k of kinds) out = addIndirect(out, [c], k)
  return out
}

/** Two values one collection mixes (union, values): per field for records, else all columns. */
function merge(a: Abs, b: Abs): Abs {
  if (a.kind === 'record' && b.kind === 'record') {
    const names = new Set([...a.fields.keys(), ...b.fields.keys()])
    return { kind: 'record', fields: new Map([...names].map((n) => [n, merge(a.fields.get(n) ?? NONE, b.fields.get(n) ?? NONE)])) }
  }
  if (a.kind === 'row' && b.kind === 'row' && a.table.name === b.table.name) return a
  if (a.kind === 'bag' && b.kind === 'bag') return { kind: 'bag', elem: merge(a.elem, b.elem), indirect: mergeIndirect(a.indirect, b.indirect) }
  return { kind: 'cols', cols: union([all(a), all(b)]) }
}

function bag(a: Abs, where: string): { elem: Abs; indirect: Indirect } {
  if (a.kind === 'bag') return a
  throw new LineageQueryError('lineage', `column lineage: ${where} is not a collection`)
}

function evaluate(e: Expr, env: ReadonlyMap<number, Abs>): Abs {
  switch (e.kind) {
    case 'table':
      return { kind: 'bag', elem: { kind: 'row', table: e.table }, indirect: new Map() }
    case 'var': {
      const v = env.get(e.v.id)
      if (v === undefined) throw new LineageQueryError('lineage', `column lineage: unbound variable ${e.v.hint}#${e.v.id}`)
      return v
    }
    case 'field': {
      const t = evaluate(e.target, env)
      if (t.kind === 'row') return { kind: 'cols', cols: new Set([col(t.table.name, e.name)]) }
      if (t.kind === 'record') return t.fields.get(e.name) ?? NONE
      return { kind: 'cols', cols: all(t) }
    }
    case 'record':
      return { kind: 'record', fields: new Map(e.fields.map(([n, x]) => [n, evaluate(x, env)])) }
    case 'const':
      return NONE
    case 'op':
      return { kind: 'cols', cols: union(e.args.map((a) => all(evaluate(a, env)))) }
    case 'exists':
    case 'agg':
      return { kind: 'cols', cols: all(evaluate(e.query, env)) }
    case 'for': {
      const s = bag(evaluate(e.source, env), 'a generator')
      const b = bag(evaluate(e.body, new Map(env).set(e.v.id, s.elem)), 'a comprehension body')
      return { kind: 'bag', elem: b.elem, indirect: mergeIndirect(s.indirect, b.indirect) }
    }
    case 'where': {
      const b = bag(evaluate(e.body, env), 'a where body')
      return { kind: 'bag', elem: b.elem, indirect: addIndirect(b.indirect, all(evaluate(e.cond, env)), 'FILTER') }
    }
    case 'yield':
      return { kind: 'bag', elem: evaluate(e.value, env), indirect: new Map() }
    case 'union':
    case 'values': {
      const parts = e.kind === 'union' ? e.parts.map((p) => bag(evaluate(p, env), 'a union part')) : e.items.map((i) => ({ elem: evaluate(i, env), indirect: new Map() as Indirect }))
      if (parts.length === 0) return { kind: 'bag', elem: NONE, indirect: new Map() }
      return parts.slice(1).reduce<Abs>((acc, p) => merge(acc, { kind: 'bag', ...p }), { kind: 'bag', ...parts[0]! })
    }
    case 'order': {
      const q = bag(evaluate(e.query, env), 'an ordered query')
      const inner = new Map(env).set(e.v.id, q.elem)
      return { kind: 'bag', elem: q.elem, indirect: addIndirect(q.indirect, union(e.keys.map((k) => all(evaluate(k.expr, inner)))), 'SORT') }
    }
    case 'limit':
      return evaluate(e.query, env)
    case 'let':
      return evaluate(e.body, new Map(env).set(e.v.id, evaluate(e.value, env)))
    case 'group': {
      const s = bag(evaluate(e.source, env), 'a grouped query')
      const key = evaluate(e.key, new Map(env).set(e.v.id, s.elem))
      const group: Abs = { kind: 'bag', elem: s.elem, indirect: new Map() }
      return { kind: 'bag', elem: { kind: 'record', fields: new Map([['key', key], ['group', group]]) }, indirect: addIndirect(s.indirect, all(key), 'GROUP_BY') }
    }
    case 'distinct': {
      const q = bag(evaluate(e.query, env), 'a distinct query')
      return { kind: 'bag', elem: q.elem, indirect: addIndirect(q.indirect, all(q.elem), 'GROUP_BY') }
    }
    case 'linEmpty':
    case 'linRow':
    case 'linAppend':
    case 'linWitness':
    case 'linGroup':
      // Made by the lineage rewrite only; a query as written has none.
      throw new LineageQueryError('lineage', `column lineage: a \`${e.kind}\` node (made by the lineage rewrite) in a query as written`)
    default:
      return assertNever(e)
  }
}

function assertNever(x: never): never {
  throw new LineageQueryError('lineage', `column lineage: unknown node ${JSON.stringify(x)}`)
}

const sorted = (keys: Iterable<string>): ColumnRef[] => [...keys].sort().map(ref)
const withKinds = (m: Indirect): (ColumnRef & { kind: IndirectKind })[] => [...m.keys()].sort().flatMap((k) => [...m.get(k)!].sort().map((kind) => ({ ...ref(k), kind })))

/**
 * The columns each yield field of the comprehension `query` reads, and the columns its
 * conditions, grouping and ordering read.
 *
 * @example
 * ```ts
 * // for s in sources, a in authors where s.author == a.id yield { text: s.text, name: a.name }
 * columnReads(q[AST]).fields.get('name') // { direct: [{ table: 'authors', column: 'name' }], indirect: [] }
 * columnReads(q[AST]).dataset            // authors.id and sources.author, kind FILTER
 * ```
 */
export function columnReads(query: Expr): ColumnReads {
  const q = bag(evaluate(query, new Map()), 'the query')
  const fieldsOf = (a: Abs): [string, Abs][] => {
    switch (a.kind) {
      case 'record':
        return [...a.fields]
      case 'row':
        return a.table.columns.map((c) => [c.name, { kind: 'cols', cols: new Set([col(a.table.name, c.name)]) }])
      case 'cols':
      case 'bag':
        return [['', a]]
      default:
        return assertNever(a)
    }
  }
  const fields = new Map(
    fieldsOf(q.elem).map(([name, a]) => {
      // A nested collection: its elements' columns are direct, its conditions indirect.
      const direct = a.kind === 'bag' ? all(a.elem) : all(a)
      const indirect = a.kind === 'bag' ? a.indirect : new Map()
      return [name, { direct: sorted(direct), indirect: withKinds(indirect) }] as const
    }),
  )
  return { fields, dataset: withKinds(q.indirect) }
}
