/**
 * The lineage transformation L[[-]] of DSH (Stolarek & Cheney 2018) and Links^L (Fehrenbach &
 * Cheney 2016), as a pure function from comprehension AST to comprehension AST. It knows
 * nothing about SQL: the normaliser afterwards turns every annotation into a list of entries
 * known at compile time, so only key columns travel in the one SQL statement.
 *
 * Every element of every collection becomes `{ data, lineage }`:
 * - `table T`       ~> for r in T. yield {data: r, lineage: [(T, key(r))]}   ([] if untracked)
 * - `for x in M. N` ~> for y in L[M]. for z in L[N][x := y.data]. yield {data: z.data, lineage: y.lineage ++ z.lineage}
 * - `where c. N`    ~> where c'. L[N]            (conditions add nothing)
 * - `yield e`       ~> yield {data: e', lineage: []}   (nested queries in e annotated too)
 * - `M ++ N`        ~> L[M] ++ L[N];  `values [e..]` ~> values [{data: e', lineage: []}..]
 * - a path `d.f` to a nested collection is already annotated in the rewritten world.
 * - `let x = M in N` ~> let x = M' in L[N]    (M' is M in the rewritten world)
 * - `groupBy(M, v => k)` ~> for g in groupBy(L[M], r => k[v := r.data]).
 *                      yield {data: {key: g.key, group: g.group}, lineage: linGroup(g.group)}
 *   (a group's lineage is every entry of every row of the group, Cui & Widom);
 * - `distinct M`    ~> for g in groupBy(L[M], r => r.data). yield {data: g.key, lineage: linGroup(g.group)}
 *   (a distinct row's lineage is the union of the lineage of the rows it merged).
 * Queries inside `exists` and aggregates are rewritten too (the variables they mention now
 * live under `.data`) and then stripped back to plain data: they add no entries.
 * Annotations of a query annotated before (`lineage(lineage(q))`) are data: their variables
 * move under `.data`, their meaning stays (the outer options do not change them).
 *
 * Every walk below is an exhaustive switch: each kind it meets has its case; the kinds it
 * cannot meet, or treats alike, end in a `default` whose node must have one of the kinds named
 * for it (`satisfies`), so a new kind of node is a type error here until the rewrite says what
 * to do with it.
 */
import { LineageQueryError } from '../errors.js'
import { freshVar, type Expr, type Var } from '../query/ast.js'

type Env = ReadonlyMap<number, Expr>

/** Nodes of these kinds denote collections (queries). */
type QueryNode = Extract<Expr, { kind: 'table' | 'for' | 'where' | 'yield' | 'union' | 'values' | 'order' | 'limit' | 'let' | 'group' | 'distinct' }>
/** Annotations: built by the rewrite, in the `lineage` of yields only. */
type Annotation = Extract<Expr, { kind: 'linEmpty' | 'linRow' | 'linAppend' | 'linWitness' | 'linGroup' }>
/** Nodes of these kinds denote scalars (or records of them), never a collection. */
type ScalarNode = Extract<Expr, { kind: 'record' | 'const' | 'op' | 'exists' | 'agg' }> | Annotation

/** How the rewrite annotates. One object, passed down unchanged except where a rule says so. */
export interface RewriteOptions {
  /**
   * Inside `exists`/aggregates: the annotations are dropped again afterwards, so none is built
   * (and a table there needs no key).
   */
  readonly predicate: boolean
  /** Rows of tables with stored lineage report it (the rows they came from). */
  readonly composed: boolean
  /**
   * Nested collections in the result are annotated too; with `false` only the top-level
   * elements are, and nested collections are plain data (what the derived-data engine hands to
   * a derivation's function).
   */
  readonly nested: boolean
  /**
   * Why-provenance: an element that passed a condition also names the witnesses of the
   * condition, the entries of every element of each `exists`/aggregate query in it.
   */
  readonly why: boolean
}

export const DEFAULT_REWRITE: RewriteOptions = { predicate: false, composed: true, nested: true, why: false }

/**
 * Reached only by an annotation where the rewrite never puts one (in a condition): an internal
 * error naming its kind.
 */
function unreachable(e: Annotation, where: string): never {
  throw new LineageQueryError('compile', `lineage: internal: a ${e.kind} annotation in ${where}`)
}

const field = (target: Expr, name: string): Expr => ({ kind: 'field', target, name })
const v = (x: Var): Expr => ({ kind: 'var', v: x })
const annotated = (data: Expr, lineage: Expr): Expr => ({ kind: 'record', fields: [['data', data], ['lineage', lineage]] })
const EMPTY: Expr = { kind: 'linEmpty' }

/** L[[q]]: the query whose elements are `{ data, lineage }`. */
export function rewriteQuery(e: Expr, env: Env = new Map(), o: RewriteOptions = DEFAULT_REWRITE): Expr {
  const recur = (x: Expr, en: Env) => rewriteQuery(x, en, o)
  switch (e.kind) {
    case 'table': {
      const r = freshVar(e.table.name)
      // Inside exists/aggregates the annotations are dropped again, so none is built there.
      const tracked = e.table.lineage && !o.predicate
      const stored = o.composed && e.table.storedLineage !== undefined
      const lin: Expr = tracked ? { kind: 'linRow', table: e.table, row: v(r), stored } : EMPTY
      if (tracked && e.table.key === undefined && !stored) {
        throw new LineageQueryError('lineage', `table \`${e.table.name}\` has no key, so its rows cannot be named in lineage; declare one with table(name, columns, { key: 'col' }) or opt out with { lineage: false }`, { table: e.table.name })
      }
      return { kind: 'for', v: r, source: e, body: { kind: 'yield', value: annotated(v(r), lin) } }
    }
    case 'for': {
      const y = freshVar(e.v.hint)
      const z = freshVar('z')
      const inner = new Map(env)
      inner.set(e.v.id, field(v(y), 'data'))
      return {
        kind: 'for',
        v: y,
        source: recur(e.source, env),
        body: {
          kind: 'for',
          v: z,
          source: recur(e.body, inner),
          body: { kind: 'yield', value: annotated(field(v(z), 'data'), { kind: 'linAppend', parts: [field(v(y), 'lineage'), field(v(z), 'lineage')] }) },
        },
      }
    }
    case 'where': {
      const cond = rewriteScalar(e.cond, env, o)
      const witnesses = o.why && !o.predicate ? conditionQueries(e.cond) : []
      if (witnesses.length === 0) return { kind: 'where', cond, body: recur(e.body, env) }
      // Why-provenance: where c. N ~> where c'. for z in L[N]. yield {data: z.data, lineage: W(c) ++ z.lineage}
      // where W(c) lists the entries of every element of each query c reads (annotated, not
      // predicates: their tables must be named, so they need keys).
      const z = freshVar('z')
      const parts: Expr[] = witnesses.map((q) => ({ kind: 'linWitness', query: rewriteQuery(q, env, { ...o, predicate: false }) }))
      parts.push(field(v(z), 'lineage'))
      return { kind: 'where', cond, body: { kind: 'for', v: z, source: recur(e.body, env), body: { kind: 'yield', value: annotated(field(v(z), 'data'), { kind: 'linAppend', parts }) } } }
    }
    case 'yield':
      return { kind: 'yield', value: annotated(rewriteValue(e.value, env, o), EMPTY) }
    case 'union':
      return { kind: 'union', parts: e.parts.map((p) => recur(p, env)) }
    case 'values':
      return { kind: 'values', items: e.items.map((i) => annotated(rewriteValue(i, env, o), EMPTY)) }
    case 'order': {
      const w = freshVar('row')
      const keyEnv = new Map(env)
      keyEnv.set(e.v.id, field(v(w), 'data'))
      return { kind: 'order', query: recur(e.query, env), v: w, keys: e.keys.map((k) => ({ dir: k.dir, expr: rewriteScalar(k.expr, keyEnv, o) })) }
    }
    case 'limit':
      return { kind: 'limit', query: recur(e.query, env), limit: e.limit, offset: e.offset }
    case 'let': {
      // let x = M in N ~> let x' = M' in L[N][x := x']: M' is M in the rewritten world (a
      // query annotated, so a `for` over x takes its rows' lineage along); the let adds nothing.
      const x = freshVar(e.v.hint)
      return { kind: 'let', v: x, value: rewriteValue(e.value, env, o), body: recur(e.body, new Map(env).set(e.v.id, v(x))) }
    }
    case 'group': {
      const r = freshVar(e.v.hint)
      const g = freshVar('g')
      const keyEnv = new Map(env)
      keyEnv.set(e.v.id, field(v(r), 'data'))
      const group = field(v(g), 'group')
      const lin: Expr = o.predicate ? EMPTY : { kind: 'linGroup', group }
      return {
        kind: 'for',
        v: g,
        source: { kind: 'group', source: recur(e.source, env), v: r, key: rewriteScalar(e.key, keyEnv, o) },
        body: { kind: 'yield', value: annotated({ kind: 'record', fields: [['key', field(v(g), 'key')], ['group', o.nested ? group : plain(group)]] }, lin) },
      }
    }
    case 'distinct': {
      const r = freshVar('r')
      const g = freshVar('g')
      const lin: Expr = o.predicate ? EMPTY : { kind: 'linGroup', group: field(v(g), 'group') }
      return {
        kind: 'for',
        v: g,
        source: { kind: 'group', source: recur(e.query, env), v: r, key: field(v(r), 'data') },
        body: { kind: 'yield', value: annotated(field(v(g), 'key'), lin) },
      }
    }
    case 'var':
    case 'field': {
      // A path to a nested collection: in the rewritten world its elements are annotated, unless
      // nested collections are left plain: then each element gets an empty annotation here.
      const path = rewriteValue(e, env, o)
      if (o.nested) return path
      const w = freshVar('w')
      return { kind: 'for', v: w, source: path, body: { kind: 'yield', value: annotated(v(w), EMPTY) } }
    }
    default:
      throw new LineageQueryError('compile', `lineage: expected a query, got a ${(e satisfies ScalarNode).kind} expression`)
  }
}

/** A value in the rewritten world: nested queries annotated (or plain), variables moved under `.data`. */
function rewriteValue(e: Expr, env: Env, o: RewriteOptions): Expr {
  switch (e.kind) {
    case 'var':
      return env.get(e.v.id) ?? e
    case 'field':
      return field(rewriteValue(e.target, env, o), e.name)
    case 'record':
      return { kind: 'record', fields: e.fields.map(([n, f]) => [n, rewriteValue(f, env, o)] as const) }
    case 'table': case 'for': case 'where': case 'yield': case 'union': case 'values': case 'order': case 'limit': case 'let': case 'group': case 'distinct':
      // Nested collections keep every option (`composed` included); left plain, they are
      // rewritten as in a predicate (no entries built) and stripped back to data.
      return o.nested ? rewriteQuery(e, env, o) : plain(rewriteQuery(e, env, { ...o, predicate: true }))
    default:
      return rewriteScalar(e satisfies ScalarNode, env, o)
  }
}

/** The data of an annotated query's elements: `for z in q. yield z.data`. */
function plain(q: Expr): Expr {
  const z = freshVar('z')
  return { kind: 'for', v: z, source: q, body: { kind: 'yield', value: field(v(z), 'data') } }
}

/** A scalar (condition, operand, order key): its subqueries are rewritten and stripped to data. */
function rewriteScalar(e: Expr, env: Env, o: RewriteOptions): Expr {
  // Subqueries of conditions and aggregates add no entries: rewritten as predicates.
  const pred: RewriteOptions = { ...o, predicate: true }
  switch (e.kind) {
    case 'var':
    case 'field':
    case 'record':
      return rewriteValue(e, env, { ...o, predicate: false })
    case 'const':
    case 'linEmpty':
      return e
    case 'op':
      return { kind: 'op', op: e.op, args: e.args.map((a) => rewriteScalar(a, env, o)) }
    case 'exists':
      return { kind: 'exists', query: rewriteQuery(e.query, env, pred), negated: e.negated }
    case 'agg': {
      const z = freshVar('z')
      // COUNT(DISTINCT x) stays one (it does not count NULL, unlike a count of the distinct groups).
      if (e.fn === 'count' && e.query.kind === 'distinct') return { kind: 'agg', fn: 'count', query: { kind: 'distinct', query: plain(rewriteQuery(e.query.query, env, pred)) } }
      const q = rewriteQuery(e.query, env, pred)
      return { kind: 'agg', fn: e.fn, query: e.fn === 'count' ? q : { kind: 'for', v: z, source: q, body: { kind: 'yield', value: field(v(z), 'data') } } }
    }
    // An annotation of a query annotated before (`lineage(lineage(q))`) is data now: it keeps
    // its meaning whatever the options of this rewrite (stored lineage as it was; witnesses and
    // group entries read from the inner annotations, not from the ones built here).
    case 'linRow':
      return { ...e, row: rewriteValue(e.row, env, { ...o, predicate: false }) }
    case 'linAppend':
      return { kind: 'linAppend', parts: e.parts.map((p) => rewriteScalar(p, env, o)) }
    case 'linWitness':
      return { kind: 'linWitness', query: plain(rewriteQuery(e.query, env, pred)) }
    case 'linGroup': {
      const group = rewriteValue(e.group, env, { ...o, predicate: false })
      return { kind: 'linGroup', group: o.nested ? plain(group) : group }
    }
    default:
      // A collection where a scalar is expected: rewritten as a value; the normaliser refuses it
      // with the type error it gives the plain query.
      return rewriteValue(e satisfies QueryNode, env, { ...o, predicate: false })
  }
}

/**
 * The queries a condition reads: the query of each `exists`/`Q.empty` and of each aggregate in
 * it, outermost first (their own conditions are the business of their own rewrite).
 */
export function conditionQueries(e: Expr): Expr[] {
  switch (e.kind) {
    case 'exists':
    case 'agg':
      return [e.query]
    case 'op':
      return e.args.flatMap(conditionQueries)
    case 'const': case 'var': case 'field': case 'record':
    case 'table': case 'for': case 'where': case 'yield': case 'union': case 'values': case 'order': case 'limit': case 'let': case 'group': case 'distinct':
      return []
    default:
      return unreachable(e satisfies Annotation, 'a condition')
  }
}
