/**
 * The pipeline, in order: the DSL's AST -> `normalise` (normal form) -> `decorrelate` (rule
 * `decorrelate-aggregate` over the normal form) -> `shareCorrelatedScans` (rule
 * `one-scan-correlated-aggregates`) -> `lower` (Kysely
 * operation nodes + result layout) -> Kysely's dialect compiler (SQL text + parameters).
 * Results are cached per query object and dialect, so compiling or running the same query
 * object again costs a map lookup.
 */
import type { Expr } from './ast.js'
import { decodeRows, type Decoder } from './decode.js'
import { decorrelate } from './decorrelate.js'
import { shareCorrelatedScans } from './share-correlated.js'
import { hooksFor, type Dialect, type DialectHooks } from './dialect.js'
import { AST, type AnyQuery } from './dsl.js'
import { LineageQueryError, showValue } from '../errors.js'
import { lower, type TopLayout } from './lower.js'
import { normalise } from './normalise.js'
import { param, print } from './sql-nodes.js'

export interface CompiledStatement {
  readonly sql: string
  readonly parameters: readonly unknown[]
}

export interface Compiled {
  /** The statements that compute the query, in order. This compiler always emits one. */
  readonly statements: readonly CompiledStatement[]
}

/** @internal What `run` needs besides the SQL: how to decode the rows. */
export interface Plan extends Compiled {
  readonly layout: TopLayout
  readonly decode: Decoder
}

const cache: Record<Dialect, WeakMap<Expr, Plan>> = { sqlite: new WeakMap(), postgres: new WeakMap() }
/** Plans with every constant bound (`bindConstants`), cached apart. */
const boundCache: Record<Dialect, WeakMap<Expr, Plan>> = { sqlite: new WeakMap(), postgres: new WeakMap() }
const boundHooks = new Map<Dialect, DialectHooks>()

function astOf(query: unknown): Expr {
  const node = typeof query === 'object' && query !== null ? (query as { [AST]?: Expr })[AST] : undefined
  if (node === undefined) throw new LineageQueryError('argument', `expected a query built with Q (or a table), got ${showValue(query)}`)
  return node
}

/**
 * @internal Compile (or fetch from the cache) the plan of `query` for `dialect`. With
 * `bindConstants`, every constant is a bound parameter (none written as a literal by the
 * dialect's `constantLiteral`): the derived engine finds placeholder constants among the
 * parameters and replaces them per call.
 */
export function plan(query: AnyQuery, dialect: Dialect, opts: { readonly bindConstants?: boolean } = {}): Plan {
  const bind = opts.bindConstants === true
  const hooks = bind ? boundHooksFor(dialect) : hooksFor(dialect)
  const node = astOf(query)
  const plans = (bind ? boundCache : cache)[dialect]
  const hit = plans.get(node)
  if (hit !== undefined) return hit
  // rule `decorrelate-aggregate` (decorrelate.ts): on both dialects (SQLite's plan of TPC-H Q13 is faster too),
  // then rule `one-scan-correlated-aggregates` (share-correlated.ts) for the correlated aggregates left
  const lowered = lower(shareCorrelatedScans(decorrelate(normalise(node)), hooks.lateralExact), hooks)
  const { sql, parameters } = print(lowered.select, dialect)
  // The decoder is built when the plan first decodes rows: `compile` alone never needs it.
  let decoder: Decoder | undefined
  const layout = lowered.layout
  const decode: Decoder = (rows) => (decoder ??= decodeRows(layout, hooks))(rows)
  const p: Plan = { statements: [{ sql, parameters }], layout, decode }
  plans.set(node, p)
  return p
}

function boundHooksFor(dialect: Dialect): DialectHooks {
  let h = boundHooks.get(dialect)
  // (LIMIT and OFFSET counts stay parameters too, as the derived engine's statements expect.)
  if (h === undefined) boundHooks.set(dialect, (h = { ...hooksFor(dialect), constantLiteral: () => undefined, limitCount: param }))
  return h
}

/**
 * Compile a query to SQL for `dialect` without running it. Every query, flat or nested,
 * compiles to exactly one statement. Values are bound parameters, except on PostgreSQL, where
 * small numbers and short plain ASCII strings are literals in the text (under the same casts;
 * binding 50 parameters cost TPC-H Q19 about 10% more CPU time than the same text with literals),
 * and on SQLite, where a constant LIKE pattern and LIMIT/OFFSET counts are (rule
 * `literal-plan-inputs`: SQLite prepares a statement again when such a parameter is bound).
 *
 * @example
 * ```ts
 * compile(Q.for(employees, (e) => Q.where(Q.gt(e.salary, 1000), Q.yield({ n: e.name }))), 'sqlite')
 * // { statements: [{ sql: 'select "e0"."name" as "n" from "employees" as "e0" where ("e0"."salary" > ?)', parameters: [1000] }] }
 * ```
 */
export function compile(query: AnyQuery, dialect: Dialect): Compiled {
  const p = plan(query, dialect)
  return { statements: p.statements }
}
