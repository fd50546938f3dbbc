/**
 * The typed DSL users write: `table`, `Q.for`, `Q.where`, `Q.yield`, operators. Every function
 * here only builds `ast.Expr` nodes; the types carry the element type `T` of each query and the
 * lineage entry type `K` of the tables it reads (for `lineage(q)`).
 *
 * @example
 * ```ts
 * const employees = table('employees', { id: t.Int, dept: t.string, name: t.string, salary: t.number })
 * const q = Q.for(employees, (e) => Q.where(Q.gt(e.salary, 1000), Q.yield({ n: e.name, s: e.salary })))
 * // q: Query<{ n: string; s: number }, { table: 'employees'; key: number }>
 * ```
 */
import type * as t from 'io-ts'
import { LineageQueryError, showValue } from '../errors.js'
import * as ast from './ast.js'
import { canonicalJson, fixScale, isDateString, isTimestamp, Json, scaleOf, type DecimalString, type JsonValue } from './codecs.js'
import { tableDef, type TableDef } from './schema.js'
import type { DeclaredColumns } from './kysely-schema.js'

/** The symbol under which every DSL value keeps its AST node. */
export const AST: unique symbol = Symbol('lineage-query.ast')
declare const ValT: unique symbol
declare const ElemT: unique symbol
declare const KeyT: unique symbol
declare const CollK: unique symbol

/** A scalar value: timestamps are `Date`s; dates, decimals are strings. */
export type Scalar = string | number | boolean | null | Date

export type { DecimalString }

/** A scalar expression of type `A`. */
export interface Expr<A> {
  readonly [AST]: ast.Expr
  /** @internal phantom */
  readonly [ValT]: A
}

/** An expression or a JavaScript constant of the same type (constants become bound parameters). */
export type ExprLike<A> = Expr<A> | A

/** A lineage entry: the table a row came from and that row's key. */
export interface LineageEntry<N extends string = string, Key = unknown> {
  readonly table: N
  readonly key: Key
}

/**
 * A nested collection inside a result row: an array of `E`. `K` remembers the lineage entry
 * type of its elements (a phantom used by `lineage`); `run` returns plain arrays.
 */
export type Coll<E, K = never> = E[] & { readonly [CollK]: K }

/** A query whose elements have type `T`; `K` is the lineage entry type of its source tables. */
export class Query<T, K = any> {
  readonly [AST]: ast.Expr
  /** @internal phantom */
  declare readonly [ElemT]: T
  /** @internal phantom */
  declare readonly [KeyT]: K

  constructor(node: ast.Expr) {
    this[AST] = node
  }

  /**
   * Order the results. Applies to the outermost query, a nested collection (top-N per group), or the query of an aggregate or `Q.exists`; a `Q.for` that only maps an ordered query keeps its order.
   * @example `Q.for(employees, (e) => Q.yield(e)).orderBy((e) => [Q.desc(e.salary), e.name])`
   */
  orderBy(keys: (row: View<T>) => OrderSpec | readonly OrderSpec[]): Query<T, K> {
    return orderBy(this, keys)
  }

  /**
   * Keep at most `n` results, after skipping `offset`. Applies to the outermost query, a nested collection (top-N per group), or the query of an aggregate or `Q.exists`.
   * @example `Q.for(employees, (e) => Q.yield(e.name)).orderBy((n) => n).limit(10)`
   */
  limit(n: number, offset = 0): Query<T, K> {
    return limit(this, n, offset)
  }
}

export type AnyQuery = Query<any, any>
export type ElemOf<Q> = Q extends Query<infer E, any> ? E : never
export type KeyOf<Q> = Q extends Query<any, infer K> ? K : never

/** A declared table: a query over its rows that also carries its definition. */
export class Table<N extends string, Row, K> extends Query<Row, K> {
  readonly def: TableDef
  readonly name: N
  constructor(def: TableDef) {
    super({ kind: 'table', table: def })
    this.def = def
    this.name = def.name as N
  }
}

/** How a query's element of type `A` looks inside `Q.for`'s callback. */
export type View<A> = 0 extends 1 & A
  ? any
  : [A] extends [Coll<infer E, infer K>]
    ? Query<E, K>
    : [A] extends [Scalar]
      ? Expr<A>
      : RecordView<A>

export type RecordView<A> = { readonly [F in keyof A]: View<A[F]> } & { readonly [AST]: ast.Expr; readonly [ValT]: A }

type Widen<V> = V extends string ? string : V extends number ? number : V extends boolean ? boolean : V

/** The element type that yielding a value of (JavaScript) type `V` produces. */
export type ValueOf<V> = V extends AnyQuery
  ? Coll<ElemOf<V>, KeyOf<V>>
  : V extends { readonly [AST]: ast.Expr; readonly [ValT]: infer A }
    ? A
    : V extends readonly (infer I)[]
      ? Coll<ValueOf<I>>
      : V extends Scalar
        ? Widen<V>
        : { -readonly [F in keyof V]: ValueOf<V[F]> }

/** Result rows as `run` returns them: nested collections as plain arrays. */
export type Plain<T> = [T] extends [never]
  ? never
  : unknown extends T
    ? T
  : [T] extends [Coll<infer E, any>]
  ? Plain<E>[]
  : [T] extends [Scalar]
    ? T
    : { -readonly [F in keyof T]: Plain<T[F]> }

type Nul<A> = null extends A ? null : never

// ---------------------------------------------------------------- value -> AST

function isPlainObject(x: object): boolean {
  const p = Object.getPrototypeOf(x)
  return p === Object.prototype || p === null
}

/** Turn a DSL value (expression, query, row, record literal, array, constant) into an AST node. */
export function toAst(x: unknown, where = 'a query'): ast.Expr {
  if (x === null || typeof x === 'string' || typeof x === 'boolean') return { kind: 'const', value: x }
  if (typeof x === 'number') {
    if (!Number.isFinite(x)) throw new LineageQueryError('argument', `cannot use ${x} in ${where}: SQL has no NaN or Infinity`, { value: x })
    return { kind: 'const', value: x }
  }
  if (x instanceof Date) {
    if (!isTimestamp(x)) throw new LineageQueryError('argument', `cannot use ${showValue(x)} in ${where}: expected a valid Date with a UTC year from 1 to 9999`, { value: x })
    return { kind: 'const', value: x.toISOString(), as: 'timestamp' }
  }
  if (typeof x === 'object') {
    const node = (x as { [AST]?: ast.Expr })[AST]
    if (node !== undefined) return node
    if (Array.isArray(x)) return { kind: 'values', items: x.map((i) => toAst(i, where)) }
    if (isPlainObject(x)) {
      const fields: [string, ast.Expr][] = []
      for (const [k, v] of Object.entries(x)) fields.push([k, toAst(v, where)])
      return { kind: 'record', fields }
    }
  }
  throw new LineageQueryError(
    'argument',
    `cannot use ${typeof x === 'object' ? (x as object).constructor?.name ?? 'object' : typeof x} ${showValue(x)} in ${where}; expected an expression, a query, a row, a record, an array or a string/number/boolean/null constant`,
    { value: x },
  )
}

const viewHandler: ProxyHandler<{ node: ast.Expr }> = {
  get(target, prop) {
    if (prop === AST) return target.node
    if (typeof prop === 'symbol' || prop === 'then' || prop === 'toJSON') return undefined
    return view({ kind: 'field', target: target.node, name: prop })
  },
  has(_target, prop) {
    return prop === AST
  },
}

/** The view of an element: an object whose properties are the element's fields. */
function view(node: ast.Expr): any {
  return new Proxy({ node }, viewHandler)
}

function bindVar<R>(source: ast.Expr, fn: (x: any) => R, what: string): { v: ast.Var; out: R } {
  if (typeof fn !== 'function') throw new LineageQueryError('argument', `${what} expects a function as its last argument, got ${typeof fn}`)
  const hint = source.kind === 'table' ? source.table.name : source.kind === 'field' ? source.name : 'x'
  const v = ast.freshVar(hint)
  return { v, out: fn(view({ kind: 'var', v })) }
}

function queryAst(q: unknown, what: string): ast.Expr {
  const node = typeof q === 'object' && q !== null ? (q as { [AST]?: ast.Expr })[AST] : undefined
  if (node === undefined) {
    throw new LineageQueryError('argument', `${what} expects a query (a table, Q.for/Q.yield/..., or a collection field of a row), got ${showValue(q)}`)
  }
  return node
}

const expr = <A>(node: ast.Expr): Expr<A> => ({ [AST]: node }) as Expr<A>
const op = <A>(o: ast.ScalarOp, args: readonly unknown[]): Expr<A> => expr({ kind: 'op', op: o, args: args.map((a) => toAst(a, `Q.${o}`)) })

// ---------------------------------------------------------------- tables

type Columns = Readonly<Record<string, t.Mixed>>
type Unbrand<T> = T extends t.Brand<any> ? (T extends number ? number : T extends string ? string : T) : T
export type RowOf<C extends Columns> = { -readonly [F in keyof C]: Unbrand<t.TypeOf<C[F]>> }
type KeySpec<C> = (keyof C & string) | readonly (keyof C & string)[]
type DefaultKey<C> = 'id' extends keyof C ? 'id' : never
export type KeyType<C extends Columns, KS> = KS extends readonly string[]
  ? { -readonly [I in keyof KS]: KS[I] extends keyof C ? Unbrand<t.TypeOf<C[KS[I]]>> : never }
  : KS extends keyof C
    ? Unbrand<t.TypeOf<C[KS]>>
    : never

export interface TableOptions<KS, L extends boolean> {
  /** The key column, or key columns in order (default: `id` when there is such a column). */
  readonly key?: KS
  /** `false`: rows of this table add nothing to lineage (default `true`). */
  readonly lineage?: L
  /**
   * For tables of derived rows: the string column holding each row's own lineage (JSON), which
   * `lineage(q)` reports in place of this table's key so provenance composes. With `table`, the
   * column holds one key of that table; without, a list of `[table, key]` pairs.
   */
  readonly storedLineage?: { readonly column: string; readonly table?: string }
}

/**
 * Declare a table: its name, its columns as io-ts codecs, and its key.
 *
 * @example
 * ```ts
 * const employees = table('employees', { id: t.Int, dept: t.string, name: t.string, salary: t.number })
 * const tasks = table('tasks', { employee: t.string, task: t.string }, { key: ['employee', 'task'] })
 * const audit = table('audit', { id: t.Int, note: t.union([t.string, t.null]) }, { lineage: false })
 * ```
 */
export function table<const N extends string, C extends Columns, const KS extends KeySpec<C> = DefaultKey<C>, const L extends boolean = true>(
  name: N,
  columns: C,
  options?: TableOptions<KS, L>,
): Table<N, RowOf<C>, L extends false ? never : [KS] extends [never] ? never : LineageEntry<N, KeyType<C, KS>>> & DeclaredColumns<C> {
  const o = options as { key?: string | readonly string[]; lineage?: boolean; storedLineage?: { column: string; table?: string } } | undefined
  return new Table(tableDef(name, columns, { key: o?.key, lineage: o?.lineage, storedLineage: o?.storedLineage }))
}

// ---------------------------------------------------------------- comprehensions

/**
 * `for x in source. body`: bag comprehension. `source` is a table, a query, or a
 * collection-valued field of a row; `body` returns a query for each element.
 *
 * @example
 * ```ts
 * Q.for(departments, (d) => Q.for(employees, (e) => Q.where(Q.eq(d.name, e.dept), Q.yield({ d: d.name, e: e.name }))))
 * // select "d0"."name" as "d", "e1"."name" as "e" from "departments" as "d0", "employees" as "e1" where ("d0"."name" = "e1"."dept")
 * ```
 */
function for_<S extends AnyQuery, R extends AnyQuery>(source: S, body: (x: View<ElemOf<S>>) => R): Query<ElemOf<R>, KeyOf<S> | KeyOf<R>> {
  const src = queryAst(source, 'Q.for')
  const { v, out } = bindVar(src, body, 'Q.for')
  return new Query({ kind: 'for', v, source: src, body: queryAst(out, 'the body of Q.for (return Q.yield(...), Q.where(...) or another query)') })
}

/**
 * `where cond. body`: keep `body`'s elements only where `cond` is true (not false, not null).
 * @example `Q.for(employees, (e) => Q.where(Q.gt(e.salary, 1000), Q.yield(e.name)))`
 */
function where<T, K>(cond: ExprLike<boolean | null>, body: Query<T, K>): Query<T, K> {
  return new Query({ kind: 'where', cond: toAst(cond, 'Q.where'), body: queryAst(body, 'Q.where') })
}

/**
 * A one-element collection. The value may be an expression, a constant, a row, a record (with
 * nested records and nested queries), an array (a literal collection), or `{}`.
 * @example `Q.yield({ name: e.name, tasks: Q.for(tasks, (t) => Q.where(Q.eq(t.employee, e.name), Q.yield(t.task))) })`
 */
function yield_<V>(value: V): Query<ValueOf<V>, never> {
  return new Query({ kind: 'yield', value: toAst(value, 'Q.yield') })
}

/**
 * Bag union: every element of every query, duplicates kept.
 * @example `Q.union(Q.for(tasks, (t) => Q.yield(t.employee)), Q.for(employees, (e) => Q.yield(e.name)))`
 */
function union<Qs extends readonly AnyQuery[]>(...queries: Qs): Query<ElemOf<Qs[number]>, KeyOf<Qs[number]>> {
  return new Query({ kind: 'union', parts: queries.map((q) => queryAst(q, 'Q.union')) })
}

/**
 * A literal collection. Its elements carry no lineage.
 * @example `Q.for(Q.values([1, 2, 3]), (x) => Q.yield(Q.mul(x, 10)))`
 */
function values<V>(items: readonly V[]): Query<ValueOf<V>, never> {
  if (!Array.isArray(items)) throw new LineageQueryError('argument', `Q.values expects an array, got ${showValue(items)}`)
  return new Query({ kind: 'values', items: items.map((i) => toAst(i, 'Q.values')) })
}

/** `true` when the query has at least one element. @example `Q.where(Q.exists(tasksOf(e)), Q.yield(e.name))` */
function exists(query: AnyQuery): Expr<boolean> {
  return expr({ kind: 'exists', query: queryAst(query, 'Q.exists'), negated: false })
}

/** `true` when the query has no element. @example `Q.where(Q.empty(tasksOf(e)), Q.yield(e.name))` */
function empty(query: AnyQuery): Expr<boolean> {
  return expr({ kind: 'exists', query: queryAst(query, 'Q.empty'), negated: true })
}

function aggQuery(fn: ast.AggFn, query: AnyQuery, select?: (row: any) => unknown): ast.Expr {
  const q = queryAst(query, `Q.${fn}`)
  if (select === undefined) return q
  const { v, out } = bindVar(q, select, `Q.${fn}`)
  return { kind: 'for', v, source: q, body: { kind: 'yield', value: toAst(out, `Q.${fn}`) } }
}

/** Number of elements. @example `Q.count(Q.for(tasks, (t) => Q.where(Q.eq(t.employee, e.name), Q.yield(t))))` */
function count(query: AnyQuery): Expr<number> {
  return expr({ kind: 'agg', fn: 'count', query: queryAst(query, 'Q.count') })
}

type Agg = {
  <T extends NumLike>(query: Query<T, any>): Expr<Arith<T> | null>
  <E, T extends NumLike>(query: Query<E, any>, select: (row: View<E>) => ExprLike<T>): Expr<Arith<T> | null>
}
type Avg = {
  <T extends NumLike>(query: Query<T, any>): Expr<number | null>
  <E>(query: Query<E, any>, select: (row: View<E>) => ExprLike<NumLike>): Expr<number | null>
}
type AggOrd = {
  <T extends Scalar>(query: Query<T, any>): Expr<T | null>
  <E, T extends Scalar>(query: Query<E, any>, select: (row: View<E>) => ExprLike<T>): Expr<T | null>
}
/** Sum of a numeric (or decimal: exact) query (null when empty). @example `Q.sum(employees, (e) => e.salary)` */
const sum: Agg = (query: AnyQuery, select?: (row: any) => unknown) => expr<any>({ kind: "agg", fn: "sum", query: aggQuery('sum', query, select) })
/** Average, a real also for decimals (null when empty). @example `Q.avg(employees, (e) => e.salary)` */
const avg: Avg = (query: AnyQuery, select?: (row: any) => unknown) => expr<any>({ kind: "agg", fn: "avg", query: aggQuery('avg', query, select) })
/** Least value (null when empty). @example `Q.min(employees, (e) => e.salary)` */
const min: AggOrd = (query: AnyQuery, select?: (row: any) => unknown) => expr<any>({ kind: "agg", fn: "min", query: aggQuery('min', query, select) })
/** Greatest value (null when empty). @example `Q.max(employees, (e) => e.name)` */
const max: AggOrd = (query: AnyQuery, select?: (row: any) => unknown) => expr<any>({ kind: "agg", fn: "max", query: aggQuery('max', query, select) })

// ---------------------------------------------------------------- shared subexpressions

/**
 * `let v = value in body`: a subexpression computed once. `value` is a scalar expression, a
 * record or a query; `body` gets it as `v` (typed as the value's view: an expression, a record
 * of them, or a query) and returns a query. A scalar that contains a subquery (an aggregate,
 * `exists`) is computed once per row of the generators before it, however often `body` uses
 * it: a lateral FROM item (PostgreSQL `lateral (select ... offset 0)`, SQLite
 * `json_each(json_array(...))`). A closed query (reading no enclosing variable) of scalars or
 * records of scalars is a CTE (`with "#q0" as (...)`) read by every use. Other values are cheap
 * to repeat (columns, operators) or are fused where they are used (a correlated query used as
 * a `Q.for` source becomes a join). Still one statement.
 *
 * @example
 * ```ts
 * Q.for(employees, (e) =>
 *   Q.let(Q.count(tasksOf(e)), (n) => Q.where(Q.gt(n, 1), Q.yield({ name: e.name, tasks: n }))))
 * // select "e0"."name" as "name", "#s0"."value" as "tasks" from "employees" as "e0",
 * //   json_each(json_array((select count(*) ... ))) as "#s0" where ("#s0"."value" > ?)   (sqlite)
 * ```
 */
function let_<V, R extends AnyQuery>(value: V, body: (v: View<ValueOf<V>>) => R): Query<ElemOf<R>, KeyOf<R> | (V extends AnyQuery ? KeyOf<V> : never)> {
  const val = toAst(value, 'Q.let')
  if (typeof body !== 'function') throw new LineageQueryError('argument', `Q.let expects a function as its last argument, got ${typeof body}`)
  const v = ast.freshVar('v')
  const out = body(view({ kind: 'var', v }))
  return new Query({ kind: 'let', v, value: val, body: queryAst(out, 'the body of Q.let (return a query: Q.yield(...), Q.for(...), ...)') })
}

// ---------------------------------------------------------------- grouping and distinct

/**
 * Group a query's elements by a key (a scalar or a record of scalars): one element per distinct
 * key, `{ key, group }`, `group` being the elements with that key (a collection of the source's
 * element type). NULL keys form one group. Aggregates of `g.group` compile to aggregates in one
 * `GROUP BY`; a condition on them is `HAVING`.
 *
 * @example
 * ```ts
 * Q.for(Q.groupBy(employees, (e) => e.dept), (g) =>
 *   Q.where(Q.gt(Q.count(g.group), 1),
 *     Q.yield({ dept: g.key, total: Q.sum(g.group, (e) => e.salary), names: Q.for(g.group, (e) => Q.yield(e.name)) })))
 * // select "e1"."dept" as "dept", sum("e1"."salary") as "total", json_group_array("e1"."name") as "names"
 * //   from "employees" as "e1" group by "e1"."dept" having (count(*) > ?)
 * ```
 */
function groupBy<S extends AnyQuery, KV>(source: S, key: (row: View<ElemOf<S>>) => KV): Query<{ key: ValueOf<KV>; group: Coll<ElemOf<S>, KeyOf<S>> }, KeyOf<S>> {
  const src = queryAst(source, 'Q.groupBy')
  const { v, out } = bindVar(src, key, 'Q.groupBy')
  return new Query({ kind: 'group', source: src, v, key: toAst(out, 'the key of Q.groupBy') })
}

/**
 * The distinct elements of a query (scalars or records of scalars), each once: `SELECT DISTINCT`.
 * `Q.count(Q.distinct(q))` over scalars is `COUNT(DISTINCT x)`, which does not count NULL.
 * @example `Q.distinct(Q.for(employees, (e) => Q.yield(e.dept)))`
 */
function distinct<T, K>(query: Query<T, K>): Query<T, K> {
  return new Query({ kind: 'distinct', query: queryAst(query, 'Q.distinct') })
}

// ---------------------------------------------------------------- ordering and limits

export interface OrderKeySpec {
  readonly [AST]: ast.Expr
  readonly dir: 'asc' | 'desc'
}
export type OrderSpec = ExprLike<Scalar> | OrderKeySpec

/** Ascending order key (nulls first). */
function asc(e: ExprLike<Scalar>): OrderKeySpec {
  return { [AST]: toAst(e, 'Q.asc'), dir: 'asc' }
}
/** Descending order key (nulls last). */
function desc(e: ExprLike<Scalar>): OrderKeySpec {
  return { [AST]: toAst(e, 'Q.desc'), dir: 'desc' }
}

/**
 * Order a query's results by keys computed from each result element. Ascending by default;
 * NULL sorts first ascending and last descending, on every dialect. Applies to the outermost query, a nested collection (top-N per group), or the query of an aggregate or `Q.exists`.
 * @example `Q.orderBy(q, (r) => [Q.desc(r.s), r.n])`
 */
function orderBy<T, K>(query: Query<T, K>, keys: (row: View<T>) => OrderSpec | readonly OrderSpec[]): Query<T, K> {
  const q = queryAst(query, 'Q.orderBy')
  const { v, out } = bindVar(q, keys, 'Q.orderBy')
  const list: readonly unknown[] = Array.isArray(out) ? out : [out]
  return new Query({
    kind: 'order',
    query: q,
    v,
    keys: list.map((k) => {
      const dir = typeof k === 'object' && k !== null && 'dir' in k && ((k as OrderKeySpec).dir === 'asc' || (k as OrderKeySpec).dir === 'desc') ? (k as OrderKeySpec).dir : 'asc'
      return { expr: toAst(k, 'Q.orderBy'), dir }
    }),
  })
}

/**
 * At most `n` results after skipping `offset`. Applies to the outermost query, a nested collection (top-N per group), or the query of an aggregate or `Q.exists`;
 * a limited query cannot be the source of a `Q.for` that filters or joins, nor a part of `Q.union`.
 * @example `Q.limit(Q.orderBy(q, (r) => r.n), 10, 20)`
 */
function limit<T, K>(query: Query<T, K>, n: number, offset = 0): Query<T, K> {
  for (const [what, x] of [['limit', n], ['offset', offset]] as const) {
    if (!Number.isSafeInteger(x) || x < 0) throw new LineageQueryError('argument', `Q.limit: ${what} must be a non-negative integer, got ${showValue(x)}`, { [what]: x })
  }
  return new Query({ kind: 'limit', query: queryAst(query, 'Q.limit'), limit: n, offset })
}

// ---------------------------------------------------------------- scalar operators

/** Numbers may stand next to a decimal (`Q.gt(l.discount, 0.05)`): they are taken exactly as decimals. */
type DecNum<A> = [Extract<A, DecimalString>] extends [never] ? never : number

/** `a = b` (null if either is null); JSON documents compare by value. */
export const eq = <A>(a: ExprLike<A>, b: ExprLike<A | DecNum<A>>): Expr<boolean | Nul<A>> => op('eq', [a, b])
/** `a <> b` (null if either is null). */
export const ne = <A>(a: ExprLike<A>, b: ExprLike<A | DecNum<A>>): Expr<boolean | Nul<A>> => op('ne', [a, b])
/** `a < b`; strings compare by code point on every dialect. */
export const lt = <A extends Scalar>(a: ExprLike<A>, b: ExprLike<A | DecNum<A>>): Expr<boolean | Nul<A>> => op('lt', [a, b])
/** `a <= b`. */
export const le = <A extends Scalar>(a: ExprLike<A>, b: ExprLike<A | DecNum<A>>): Expr<boolean | Nul<A>> => op('le', [a, b])
/** `a > b`. */
export const gt = <A extends Scalar>(a: ExprLike<A>, b: ExprLike<A | DecNum<A>>): Expr<boolean | Nul<A>> => op('gt', [a, b])
/** `a >= b`. */
export const ge = <A extends Scalar>(a: ExprLike<A>, b: ExprLike<A | DecNum<A>>): Expr<boolean | Nul<A>> => op('ge', [a, b])
/** Conjunction of any number of conditions (SQL three-valued logic); `and()` is true. */
export const and = <A extends boolean | null>(...conds: ExprLike<A>[]): Expr<boolean | Nul<A>> => op('and', conds)
/** Disjunction of any number of conditions (SQL three-valued logic); `or()` is false. */
export const or = <A extends boolean | null>(...conds: ExprLike<A>[]): Expr<boolean | Nul<A>> => op('or', conds)
/** Negation (null stays null). */
export const not = <A extends boolean | null>(a: ExprLike<A>): Expr<boolean | Nul<A>> => op('not', [a])
/** A number or a decimal (a `decimal(p, s)` column, `Q.decimal('0.05')`). */
export type NumLike = number | DecimalString | null
/** The result of arithmetic on `A`: a decimal when an operand is one, else a number; null when an operand may be. */
export type Arith<A> = ([Extract<A, string>] extends [never] ? number : DecimalString) | Nul<A>

/** `a + b` (decimals: exact, the larger scale). */
export const add = <A extends NumLike, B extends NumLike>(a: ExprLike<A>, b: ExprLike<B>): Expr<Arith<A | B>> => op('add', [a, b])
/** `a - b` (decimals: exact, the larger scale). */
export const sub = <A extends NumLike, B extends NumLike>(a: ExprLike<A>, b: ExprLike<B>): Expr<Arith<A | B>> => op('sub', [a, b])
/** `a * b` (decimals: exact, scale the sum of the operands' scales). */
export const mul = <A extends NumLike, B extends NumLike>(a: ExprLike<A>, b: ExprLike<B>): Expr<Arith<A | B>> => op('mul', [a, b])
/** `a / b` as real (not integer) division, decimals included; division by zero gives null on every dialect. */
export const div = <A extends NumLike, B extends NumLike>(a: ExprLike<A>, b: ExprLike<B>): Expr<number | null> => op('div', [a, b])
/** Integer remainder (sign of `a`); both operands must be integers; `mod(a, 0)` is null. */
export const mod = <A extends number | null>(a: ExprLike<A>, b: ExprLike<A>): Expr<number | null> => op('mod', [a, b])
/** `-a`. */
export const neg = <A extends NumLike>(a: ExprLike<A>): Expr<Arith<A>> => op('neg', [a])
/** Absolute value. */
export const abs = <A extends NumLike>(a: ExprLike<A>): Expr<Arith<A>> => op('abs', [a])
/** String concatenation of two or more strings (null if any is null). */
export const concat = <A extends string | null>(...parts: ExprLike<A>[]): Expr<string | Nul<A>> => op('concat', parts)
/** Lower-case (ASCII letters only, the same on every dialect). */
export const lower = <A extends string | null>(a: ExprLike<A>): Expr<string | Nul<A>> => op('lower', [a])
/** Upper-case (ASCII letters only, the same on every dialect). */
export const upper = <A extends string | null>(a: ExprLike<A>): Expr<string | Nul<A>> => op('upper', [a])
/** Length in characters (code points). */
export const length = <A extends string | null>(a: ExprLike<A>): Expr<number | Nul<A>> => op('length', [a])
/**
 * Case-sensitive pattern match on every dialect: `%` any run, `_` one character, `\` escapes
 * the next character. The pattern may be any string expression; a pattern ending in a lone
 * `\` is a `type` error when constant and gives NULL when computed.
 */
export const like: {
  <A extends string | null>(a: ExprLike<A>, pattern: string): Expr<boolean | Nul<A>>
  <A extends string | null>(a: ExprLike<A>, pattern: Expr<string | null>): Expr<boolean | null>
} = (a: unknown, pattern: unknown) => {
  if (typeof pattern === 'string') {
    let escaped = false
    for (const ch of pattern) escaped = !escaped && ch === '\\'
    if (escaped) throw new LineageQueryError('type', `Q.like: the pattern ${JSON.stringify(pattern)} ends with an escape character (\\); escape it as \\\\ to match a backslash`, { op: 'like', pattern })
  }
  return op<any>('like', [a, pattern])
}
/** `a is null`. */
export const isNull = (a: ExprLike<Scalar>): Expr<boolean> => op('isNull', [a])
/** `a is not null`. */
export const isNotNull = (a: ExprLike<Scalar>): Expr<boolean> => op('isNotNull', [a])
/** `a in (list...)`; `in(a, [])` is false. */
export const in_ = <A extends Scalar>(a: ExprLike<A>, list: readonly ExprLike<A | DecNum<A>>[]): Expr<boolean | Nul<A>> => {
  if (!Array.isArray(list)) throw new LineageQueryError('argument', `Q.in expects an array of values as its second argument, got ${showValue(list)}`)
  return op('in', [a, ...list])
}
/** The first non-null argument. */
export const coalesce = <A extends Scalar, B extends Scalar>(a: ExprLike<A>, b: ExprLike<B>): Expr<Exclude<A, null> | B> => op('coalesce', [a, b])

type CaseBranch<A> = readonly [ExprLike<boolean | null>, ExprLike<A>]
/** A case's result: decimals when every value is a decimal (or digits, or null), else the widened values. */
type CaseOf<A> = [A] extends [null] ? A : [A] extends [DecimalString | null] ? DecimalString | Nul<A> : Widen<A>
type CaseFn = {
  <A>(branches: readonly CaseBranch<A>[], otherwise: ExprLike<A | DecNum<A>>): Expr<CaseOf<A>>
  <A>(branches: readonly CaseBranch<A>[]): Expr<CaseOf<A> | null>
}
/**
 * `CASE WHEN c1 THEN v1 WHEN c2 THEN v2 ... ELSE otherwise END`: the value of the first branch
 * whose condition is true (not false, not null), else `otherwise` (NULL when omitted). The
 * values must have one type (ints and reals mix, ints and decimals mix).
 * @example `Q.case([[Q.lt(e.salary, 1000), 'low'], [Q.lt(e.salary, 5000), 'mid']], 'high')`
 */
export const case_: CaseFn = (branches: readonly CaseBranch<unknown>[], ...rest: unknown[]) => {
  if (!Array.isArray(branches) || branches.length === 0 || branches.some((b) => !Array.isArray(b) || b.length !== 2)) {
    throw new LineageQueryError('argument', `Q.case expects a non-empty array of [condition, value] pairs, got ${showValue(branches)}`)
  }
  const otherwise = rest.length === 0 ? null : rest[0]
  return op<any>('case', [...branches.flatMap((b) => [b[0], b[1]]), otherwise])
}

/**
 * The characters of `s` from position `start` (1-based), `length` of them (all when omitted),
 * by SQL's rule on both dialects: positions before 1 count but yield nothing
 * (`substring('abc', 0, 2)` is `'a'`), a negative length gives `''`. Null if any argument is.
 */
export const substring = <A extends string | null, B extends number | null = number>(s: ExprLike<A>, start: ExprLike<B>, length?: ExprLike<B>): Expr<string | Nul<A> | Nul<B>> =>
  op('substring', length === undefined ? [s, start] : [s, start, length])
/** Remove leading and trailing spaces (U+0020 only, as SQL's `trim`). */
export const trim = <A extends string | null>(a: ExprLike<A>): Expr<string | Nul<A>> => op('trim', [a])
/**
 * Round to `digits` decimal places (a constant, default 0), half away from zero. Decimals round
 * exactly (the result has scale `min(scale, digits)`); reals round their binary value (use
 * decimals where ties like 1.005 matter); integers are unchanged.
 */
export const round = <A extends NumLike>(x: ExprLike<A>, digits = 0): Expr<A> => {
  if (!Number.isSafeInteger(digits) || digits < 0 || digits > 30) throw new LineageQueryError('argument', `Q.round: digits must be an integer from 0 to 30, got ${showValue(digits)}`)
  return op('round', [x, digits])
}
/** The year of a date, or of a timestamp in UTC. */
export const year = <A extends string | Date | null>(d: ExprLike<A>): Expr<number | Nul<A>> => op('year', [d])
/** The month (1-12) of a date, or of a timestamp in UTC. */
export const month = <A extends string | Date | null>(d: ExprLike<A>): Expr<number | Nul<A>> => op('month', [d])
/** The day of the month (1-31) of a date, or of a timestamp in UTC. */
export const day = <A extends string | Date | null>(d: ExprLike<A>): Expr<number | Nul<A>> => op('day', [d])
/** `d` plus `n` days (a date; `n` may be negative). */
export const addDays = <A extends string | null, B extends number | null = number>(d: ExprLike<A>, n: ExprLike<B>): Expr<string | Nul<A> | Nul<B>> => op('addDays', [d, n])
/**
 * `d` plus `n` months; a day past the end of the target month is clamped to its last day
 * (`addMonths('2024-01-31', 1)` is `'2024-02-29'`), as PostgreSQL's `date + interval`.
 */
export const addMonths = <A extends string | null, B extends number | null = number>(d: ExprLike<A>, n: ExprLike<B>): Expr<string | Nul<A> | Nul<B>> => op('addMonths', [d, n])
/** `d` plus `n` years; February 29 becomes February 28 in a non-leap year. */
export const addYears = <A extends string | null, B extends number | null = number>(d: ExprLike<A>, n: ExprLike<B>): Expr<string | Nul<A> | Nul<B>> => op('addYears', [d, n])

/** A date constant (`'YYYY-MM-DD'`); plain strings compared with dates are dates already. */
export function dateConst(s: string): Expr<string> {
  if (!isDateString(s)) throw new LineageQueryError('argument', `Q.date expects a date 'YYYY-MM-DD' (years 0001-9999), got ${showValue(s)}`)
  return expr({ kind: 'const', value: s, as: 'date' })
}
/** A decimal constant (`'0.05'`): exact, scale = its number of fraction digits. */
export function decimalConst(s: string): Expr<DecimalString> {
  const v = typeof s === 'string' ? fixScale(s, scaleOf(s)) : undefined
  if (v === undefined) throw new LineageQueryError('argument', `Q.decimal expects a decimal string like '12.50', got ${showValue(s)}`)
  return expr({ kind: 'const', value: v, as: 'decimal' })
}
/** A JSON constant (any JSON value but `null`), to compare with or yield beside `Json` columns. */
export function jsonConst(value: JsonValue): Expr<unknown> {
  if (!Json.is(value)) throw new LineageQueryError('argument', `Q.json expects a JSON value (not null, no NaN, no NUL characters), got ${showValue(value)}`)
  return expr({ kind: 'const', value: canonicalJson(value), as: 'json' })
}

/** The comprehension DSL. */
export const Q = {
  for: for_,
  where,
  yield: yield_,
  union,
  values,
  exists,
  empty,
  count,
  sum,
  avg,
  min,
  max,
  orderBy,
  limit,
  let: let_,
  groupBy,
  distinct,
  asc,
  desc,
  eq, ne, lt, le, gt, ge, and, or, not,
  add, sub, mul, div, mod, neg, abs,
  concat, lower, upper, length, like,
  isNull, isNotNull, in: in_, coalesce,
  case: case_, substring, trim, round, year, month, day, addDays, addMonths, addYears,
  date: dateConst, decimal: decimalConst, json: jsonConst,
} as const
