/**
 * The comprehension language: the untyped AST that the typed DSL (`dsl.ts`) builds and every
 * later phase reads. Plain immutable data with a `kind` discriminant; variables are bound by
 * `for` (and `orderBy`) and referred to by a unique numeric id.
 *
 * Semantics (the in-memory oracle in `test/oracle` implements exactly this):
 * - collections are bags; `for x in M. N` is bag comprehension, `union` is bag union;
 * - scalar operators follow SQL's three-valued logic for NULL;
 * - `exists`/`agg` look at a query and produce a scalar.
 */
import type { TableDef } from './schema.js'

export interface Var {
  readonly id: number
  /** A readable hint for generated SQL aliases (the table name, or `x`). */
  readonly hint: string
}

/** A JavaScript constant that can stand for a SQL scalar. */
export type Constant = string | number | boolean | null

export type ScalarOp =
  | 'eq' | 'ne' | 'lt' | 'le' | 'gt' | 'ge'
  | 'and' | 'or' | 'not'
  | 'add' | 'sub' | 'mul' | 'div' | 'mod' | 'neg'
  | 'concat' | 'like' | 'isNull' | 'isNotNull' | 'in' | 'coalesce'
  | 'lower' | 'upper' | 'length' | 'abs'
  /** Null-safe equality (`IS NOT DISTINCT FROM`): only the compiler builds it (grouping). */
  | 'isNotDistinct'
  /** `[c1, v1, c2, v2, ..., otherwise]`: CASE WHEN c1 THEN v1 ... ELSE otherwise END. */
  | 'case'
  /** `[s, start]` or `[s, start, length]`, 1-based, in characters. */
  | 'substring' | 'trim'
  /** `[x, digits]`, digits a non-negative integer constant. */
  | 'round'
  | 'year' | 'month' | 'day'
  /** `[date, n]`. */
  | 'addDays' | 'addMonths' | 'addYears'

export type AggFn = 'count' | 'sum' | 'min' | 'max' | 'avg'

export type Expr =
  | TableExpr | ForExpr | WhereExpr | YieldExpr | UnionExpr | ValuesExpr
  | VarExpr | FieldExpr | RecordExpr | ConstExpr | OpExpr | ExistsExpr | AggExpr
  | OrderExpr | LimitExpr | LetExpr
  | GroupExpr | DistinctExpr
  | LinEmptyExpr | LinRowExpr | LinAppendExpr | LinWitnessExpr | LinGroupExpr

export interface TableExpr { readonly kind: 'table'; readonly table: TableDef }
export interface ForExpr { readonly kind: 'for'; readonly v: Var; readonly source: Expr; readonly body: Expr }
export interface WhereExpr { readonly kind: 'where'; readonly cond: Expr; readonly body: Expr }
export interface YieldExpr { readonly kind: 'yield'; readonly value: Expr }
export interface UnionExpr { readonly kind: 'union'; readonly parts: readonly Expr[] }
export interface ValuesExpr { readonly kind: 'values'; readonly items: readonly Expr[] }
export interface VarExpr { readonly kind: 'var'; readonly v: Var }
export interface FieldExpr { readonly kind: 'field'; readonly target: Expr; readonly name: string }
export interface RecordExpr { readonly kind: 'record'; readonly fields: readonly (readonly [string, Expr])[] }
/**
 * A constant. `as`: the kind it was written as when it is not the kind its JavaScript value
 * suggests (`Q.date('2024-01-31')`, a `Date`, `Q.decimal('0.05')`, `Q.json(...)`: the value
 * is then its text: ISO date, ISO-8601 UTC timestamp, decimal digits, canonical JSON).
 */
export interface ConstExpr { readonly kind: 'const'; readonly value: Constant; readonly as?: 'date' | 'timestamp' | 'decimal' | 'json' }
export interface OpExpr { readonly kind: 'op'; readonly op: ScalarOp; readonly args: readonly Expr[] }
export interface ExistsExpr { readonly kind: 'exists'; readonly query: Expr; readonly negated: boolean }
export interface AggExpr { readonly kind: 'agg'; readonly fn: AggFn; readonly query: Expr }
export interface OrderKey { readonly expr: Expr; readonly dir: 'asc' | 'desc' }
/** `query` ordered by `keys`, each an expression over `v` (bound to one result element). */
export interface OrderExpr { readonly kind: 'order'; readonly query: Expr; readonly v: Var; readonly keys: readonly OrderKey[] }
export interface LimitExpr { readonly kind: 'limit'; readonly query: Expr; readonly limit: number | undefined; readonly offset: number }

/**
 * `let v = value in body`: `body` (a query) with `v` bound to `value` (a scalar, a record or a
 * query), which is computed once per row of the generators it depends on.
 */
export interface LetExpr { readonly kind: 'let'; readonly v: Var; readonly value: Expr; readonly body: Expr }
/**
 * `groupBy(source, v => key)`: one element `{ key, group }` per distinct value of `key` over
 * `source`'s elements (NULL keys form one group; keys compare as SQL's `IS NOT DISTINCT FROM`),
 * `group` being the bag of the elements with that key. `key` is an expression over `v`: a
 * scalar or a record of scalars.
 */
export interface GroupExpr { readonly kind: 'group'; readonly source: Expr; readonly v: Var; readonly key: Expr }
/**
 * `distinct(query)`: the set of `query`'s elements (scalars or records of scalars), each once.
 * `agg(count, distinct(q))` over scalars is SQL's `COUNT(DISTINCT x)`: NULL is not counted.
 */
export interface DistinctExpr { readonly kind: 'distinct'; readonly query: Expr }

/** Lineage annotations (built by `src/lineage`): the empty annotation `[]`. */
export interface LinEmptyExpr { readonly kind: 'linEmpty' }
/**
 * `[(table, key(row))]` for a row of a tracked table; with `stored`, the entries held in the
 * table's stored-lineage column instead (the rows that row was derived from).
 */
export interface LinRowExpr { readonly kind: 'linRow'; readonly table: TableDef; readonly row: Expr; readonly stored?: boolean }
/** Concatenation of annotations, in order. */
export interface LinAppendExpr { readonly kind: 'linAppend'; readonly parts: readonly Expr[] }
/**
 * Why-provenance: the entries of every element of `query` (an annotated query, elements
 * `{ data, lineage }`), concatenated; their number is known only when the query runs.
 */
export interface LinWitnessExpr { readonly kind: 'linWitness'; readonly query: Expr }
/**
 * The lineage of a group: the union of the annotations of the elements of `group` (a group of
 * annotated elements `{ data, lineage }`), without duplicates, ordered by table name, then key.
 */
export interface LinGroupExpr { readonly kind: 'linGroup'; readonly group: Expr }

let nextVar = 0
/** A fresh variable. Ids are unique in the process, so substitution never captures. */
export function freshVar(hint: string): Var {
  return { id: nextVar++, hint }
}

export const isQueryKind = (e: Expr): boolean =>
  e.kind === 'table' || e.kind === 'for' || e.kind === 'where' || e.kind === 'yield' || e.kind === 'union' ||
  e.kind === 'values' || e.kind === 'order' || e.kind === 'limit' || e.kind === 'let' || e.kind === 'group' || e.kind === 'distinct'

/**
 * The direct sub-expressions of `e`, in source order (table definitions, variables and
 * constants are not expressions). An exhaustive switch: a new node kind breaks the build here,
 * and so in every walk built on it.
 */
export function children(e: Expr): readonly Expr[] {
  switch (e.kind) {
    case 'table': case 'var': case 'const': case 'linEmpty':
      return []
    case 'for': return [e.source, e.body]
    case 'where': return [e.cond, e.body]
    case 'yield': return [e.value]
    case 'union': return e.parts
    case 'values': return e.items
    case 'field': return [e.target]
    case 'record': return e.fields.map(([, f]) => f)
    case 'op': return e.args
    case 'exists': return [e.query]
    case 'agg': return [e.query]
    case 'order': return [e.query, ...e.keys.map((k) => k.expr)]
    case 'limit': return [e.query]
    case 'let': return [e.value, e.body]
    case 'group': return [e.source, e.key]
    case 'distinct': return [e.query]
    case 'linRow': return [e.row]
    case 'linAppend': return e.parts
    case 'linWitness': return [e.query]
    case 'linGroup': return [e.group]
    default: {
      const never: never = e
      throw new Error(`internal: children of an unknown expression ${JSON.stringify(never)}`)
    }
  }
}
