/**
 * The normal form (Cheney, Lindley & Wadler, ICFP 2013): what `normalise` produces and
 * `lower` turns into SQL. A query is a union of branches
 * `for g1 in T1 ... for gn in Tn where c1 and ... and ck yield value`, where `value` is built of
 * scalar expressions over the generators, records, nested queries (correlated with the
 * enclosing branch) and lineage annotations whose entries are known statically.
 */
import type { AggFn, Constant, ScalarOp } from './ast.js'
import type { ColumnDef, SType, TableDef } from './schema.js'

/** A generator: a table and the alias its rows are bound to. */
export interface Gen {
  readonly alias: string
  readonly table: TableDef
}

/** A scalar expression with its static type. */
export type NExpr =
  | { readonly k: 'col'; readonly alias: string; readonly table: TableDef; readonly col: ColumnDef; readonly type: SType }
  | { readonly k: 'const'; readonly value: Constant; readonly type: SType }
  | { readonly k: 'op'; readonly op: ScalarOp; readonly args: readonly NExpr[]; readonly type: SType }
  | { readonly k: 'exists'; readonly q: NQuery; readonly negated: boolean; readonly type: SType }
  | { readonly k: 'agg'; readonly fn: AggFn; readonly q: NQuery; readonly type: SType }
  | SharedExpr
  /** The entries of a query's elements as one JSON list (why-provenance); branch values are `lin`. */
  | { readonly k: 'witness'; readonly q: NQuery; readonly type: SType }

/**
 * A `Q.let` value computed once per row of its branch (it contains a subquery, so copying it to
 * each use would compute it again): every use refers to it by `id`, and the branch that binds
 * it lists it in `lets`, which lowering turns into a lateral FROM item.
 */
export interface SharedExpr { readonly k: 'shared'; readonly id: number; readonly value: NExpr; readonly type: SType }

/** A lineage entry whose table is known statically; `key` are the key column expressions. */
export interface LinEntry {
  readonly table: TableDef
  readonly key: readonly NExpr[]
  /** Set when `key` is the table's stored-lineage column: the entries come from its JSON. */
  readonly stored?: { readonly single: string | undefined }
  /** Set when `key` is one `witness` expression: the entries come from its JSON list of lists. */
  readonly witness?: true
}

/** The table named by a witness entry: none in particular (its entries name their own tables). */
export const WITNESS_TABLE: TableDef = { name: '#why', columns: [], byName: new Map(), key: undefined, lineage: true, storedLineage: undefined }

export type NValue =
  | NExpr
  | { readonly k: 'rec'; readonly fields: readonly (readonly [string, NValue])[]; readonly table?: TableDef }
  | { readonly k: 'coll'; readonly q: NQuery }
  | { readonly k: 'lin'; readonly entries: readonly LinEntry[] }

export interface Branch {
  readonly gens: readonly Gen[]
  readonly conds: readonly NExpr[]
  readonly value: NValue
  /** Shared `Q.let` values this branch computes (after its generators), in binding order. */
  readonly lets?: readonly SharedExpr[]
}

export interface NQuery {
  readonly branches: readonly Branch[]
  /**
   * Set on a query that is ordered or limited where it stands (a nested collection, or the
   * query of an aggregate or `exists`): its elements in this order, and only those kept.
   */
  readonly order?: NOrder
}

/** Order and limit of a query that is not the top level (the top level has `NTop`). */
export interface NOrder {
  /** Per branch (same index as `branches`), the order key expressions; `[]` each when unordered. */
  readonly keys: readonly (readonly NExpr[])[]
  readonly directions: readonly ('asc' | 'desc')[]
  readonly limit: number | undefined
  readonly offset: number
}

/** Whether an `NOrder` drops elements (a limit or an offset). */
export const cuts = (o: NOrder | undefined): boolean => o !== undefined && (o.limit !== undefined || o.offset > 0)

/** A top-level query: branches with their order keys, the directions, and the limit. */
export interface NTop {
  readonly query: NQuery
  /** Per branch (same index as `query.branches`), the order key expressions. */
  readonly orderKeys: readonly (readonly NExpr[])[]
  readonly directions: readonly ('asc' | 'desc')[]
  readonly limit: number | undefined
  readonly offset: number
  /** Common table expressions the statement starts with (`Q.let` of a closed, flat query). */
  readonly ctes?: readonly NCte[]
}

/** `with <def.name> as (<query>)`: a query computed once per statement, read as a table. */
export interface NCte {
  /** A pseudo-table: the CTE's name and its columns (the element's fields, or `v`). */
  readonly def: TableDef
  readonly query: NQuery
}

export const isScalar = (v: NValue): v is NExpr => v.k === 'col' || v.k === 'const' || v.k === 'op' || v.k === 'exists' || v.k === 'agg' || v.k === 'shared' || v.k === 'witness'

export const BOOL: SType = { kind: 'boolean', nullable: false }
export const NBOOL: SType = { kind: 'boolean', nullable: true }

export function constType(value: Constant): SType {
  if (value === null) return { kind: 'null', nullable: true }
  if (typeof value === 'string') return { kind: 'string', nullable: false }
  if (typeof value === 'boolean') return BOOL
  return { kind: Number.isInteger(value) ? 'int' : 'real', nullable: false }
}

export const constant = (value: Constant): NExpr => ({ k: 'const', value, type: constType(value) })

// ---------------------------------------------------------------- alias renaming

/** Rename generator aliases (`map`: old -> new) throughout a value, nested queries included. */
export function renameValue(v: NValue, map: ReadonlyMap<string, string>): NValue {
  switch (v.k) {
    case 'rec':
      return { ...v, fields: v.fields.map(([n, f]) => [n, renameValue(f, map)] as const) }
    case 'coll':
      return { k: 'coll', q: renameQuery(v.q, map) }
    case 'lin':
      return { k: 'lin', entries: v.entries.map((e) => ({ ...e, key: e.key.map((x) => renameExpr(x, map)) })) }
    default:
      return renameExpr(v, map)
  }
}

export function renameExpr(e: NExpr, map: ReadonlyMap<string, string>): NExpr {
  switch (e.k) {
    case 'col': {
      const a = map.get(e.alias)
      return a === undefined ? e : { ...e, alias: a }
    }
    case 'const':
      return e
    case 'op':
      return { ...e, args: e.args.map((a) => renameExpr(a, map)) }
    case 'exists':
    case 'agg':
      return { ...e, q: renameQuery(e.q, map) }
    case 'shared':
      return renameShared(e, map)
    case 'witness':
      return { ...e, q: renameQuery(e.q, map) }
  }
}

let nextShared = 0
/** A fresh id for a shared value. */
export const freshSharedId = (): number => nextShared++

const sharedRenames = new WeakMap<ReadonlyMap<string, string>, Map<number, SharedExpr>>()
/**
 * A shared value under a renaming: a new shared value (new id) when its expression mentions a
 * renamed alias, the same one for every reference renamed with the same `map` (so references
 * and the branch's `lets` still agree).
 */
function renameShared(e: SharedExpr, map: ReadonlyMap<string, string>): SharedExpr {
  let seen = sharedRenames.get(map)
  if (seen === undefined) sharedRenames.set(map, (seen = new Map()))
  const hit = seen.get(e.id)
  if (hit !== undefined) return hit
  const value = renameExpr(e.value, map)
  const out: SharedExpr = { k: 'shared', id: freshSharedId(), value, type: e.type }
  seen.set(e.id, out)
  return out
}

/** A branch's lets under a renaming (see `renameShared`). */
export const renameLets = (lets: readonly SharedExpr[] | undefined, map: ReadonlyMap<string, string>): { lets?: readonly SharedExpr[] } =>
  lets === undefined || lets.length === 0 ? {} : { lets: lets.map((l) => renameShared(l, map)) }

function renameQuery(q: NQuery, map: ReadonlyMap<string, string>): NQuery {
  const out: NQuery = {
    branches: q.branches.map((b) => ({
      gens: b.gens.map((g) => ({ alias: map.get(g.alias) ?? g.alias, table: g.table })),
      conds: b.conds.map((c) => renameExpr(c, map)),
      value: renameValue(b.value, map),
      ...renameLets(b.lets, map),
    })),
  }
  return q.order === undefined ? out : { ...out, order: { ...q.order, keys: q.order.keys.map((ks) => ks.map((k) => renameExpr(k, map))) } }
}
