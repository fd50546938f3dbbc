/**
 * Delta evaluation of a comprehension derivation, as pure AST functions: where a table is read
 * by the comprehension, and the comprehension with some of those reads restricted to a few rows.
 *
 * A comprehension `Q(D, E)` whose result rows carry the rows bound by its generators in their
 * lineage changes, when rows `ΔD` of `D` are written, only in the rows whose lineage holds a row
 * of `ΔD`; those are exactly the rows of `Q(ΔD, E)` (each generator over `D` restricted to `ΔD`
 * in turn, for a self-join), and the stored rows fed by a row of `ΔD` (the `lq_edge` rows). So
 * the engine evaluates `Q(ΔD, E) ∪ Q(D, ΔE)` instead of `Q(D, E)`, and its cost follows the
 * number of changed rows (with indexes on the join columns), not the size of `D` and `E`.
 *
 * This holds for a table read by a *generator* of the comprehension, at its top (the sources of
 * `for`, through `where` bodies and union branches). A table read elsewhere (inside `exists`, an
 * aggregate, a nested collection in a `yield`) adds no lineage entries, so a change to it is
 * found by evaluating the whole comprehension again; so is any change under `limit`.
 */
import { children, freshVar, type Constant, type Expr, type TableExpr } from '../query/ast.js'
import type { TableDef } from '../query/schema.js'

/** Where a comprehension reads its tables. */
export interface Reads {
  /** Per table: the number of generator sites at the top of the comprehension. */
  readonly sites: ReadonlyMap<string, number>
  /**
   * Tables read somewhere else (predicates, aggregates, nested collections, values), or read
   * by a generator but declared `{ lineage: false }`: their rows are not in the lineage.
   */
  readonly opaque: ReadonlySet<string>
  /** The comprehension has a `limit`: restricting a generator would change which rows it keeps. */
  readonly limited: boolean
}

/** Where `e` reads its tables (see `Reads`). */
export function readsOf(e: Expr): Reads {
  const sites = new Map<string, number>()
  const opaque = new Set<string>()
  let limited = false
  // Every table read anywhere below a node that is not a generator site.
  const anywhere = (n: Expr): void => {
    if (n.kind === 'limit') limited = true
    if (n.kind === 'table') opaque.add(n.table.name)
    else children(n).forEach(anywhere)
  }
  const top = (q: Expr): void => {
    switch (q.kind) {
      case 'table':
        // A table declared { lineage: false } adds no entries either: a change to it is found
        // only by evaluating the whole comprehension.
        if (q.table.lineage) sites.set(q.table.name, (sites.get(q.table.name) ?? 0) + 1)
        else opaque.add(q.table.name)
        return
      case 'for':
        top(q.source)
        top(q.body)
        return
      case 'where':
        anywhere(q.cond)
        top(q.body)
        return
      case 'union':
        q.parts.forEach(top)
        return
      case 'order':
        top(q.query)
        q.keys.forEach((k) => anywhere(k.expr))
        return
      case 'yield': case 'values': case 'limit': case 'let': case 'group': case 'distinct':
      case 'var': case 'field': case 'record': case 'const': case 'op': case 'exists': case 'agg':
      case 'linEmpty': case 'linRow': case 'linAppend': case 'linWitness': case 'linGroup':
        // Whatever tables they mention are not generator sites.
        anywhere(q)
        return
      default:
        assertNever(q)
    }
  }
  top(e)
  return { sites, opaque, limited }
}

/**
 * The rows a generator site is restricted to: key tuples (one value per key column), or
 * `undefined` to leave the site as it is.
 */
export type Restriction = (table: TableDef, site: number) => readonly (readonly Constant[])[] | undefined

/**
 * `e` with its generator sites over some tables restricted to some rows: a site `for x in T`
 * becomes `for x in (for r in T where key(r) in keys yield r)`, which normalises to the same
 * generator with one more condition. Sites are numbered per table in the order `readsOf` counts
 * them. Only sites at the top are touched (see the module comment).
 */
export function restrict(e: Expr, pick: Restriction): Expr {
  const seen = new Map<string, number>()
  const top = (q: Expr): Expr => {
    switch (q.kind) {
      case 'table': {
        if (!q.table.lineage) return q
        const site = seen.get(q.table.name) ?? 0
        seen.set(q.table.name, site + 1)
        const keys = pick(q.table, site)
        return keys === undefined ? q : restricted(q, keys)
      }
      case 'for':
        return { ...q, source: top(q.source), body: top(q.body) }
      case 'where':
        return { ...q, body: top(q.body) }
      case 'union':
        return { ...q, parts: q.parts.map(top) }
      case 'order':
        return { ...q, query: top(q.query) }
      case 'yield': case 'values': case 'limit': case 'let': case 'group': case 'distinct':
      case 'var': case 'field': case 'record': case 'const': case 'op': case 'exists': case 'agg':
      case 'linEmpty': case 'linRow': case 'linAppend': case 'linWitness': case 'linGroup':
        return q
      default:
        return assertNever(q)
    }
  }
  return top(e)
}

function restricted(t: TableExpr, keys: readonly (readonly Constant[])[]): Expr {
  const cols = t.table.key
  if (cols === undefined) throw new Error(`internal: restricting table ${t.table.name}, which has no key`)
  const r = freshVar(t.table.name)
  const col = (c: string): Expr => ({ kind: 'field', target: { kind: 'var', v: r }, name: c })
  const lit = (value: Constant): Expr => ({ kind: 'const', value })
  const cond: Expr =
    cols.length === 1
      ? { kind: 'op', op: 'in', args: [col(cols[0]!), ...keys.map((k) => lit(k[0]!))] }
      : { kind: 'op', op: 'or', args: keys.map((k) => ({ kind: 'op', op: 'and', args: cols.map((c, i) => ({ kind: 'op', op: 'eq', args: [col(c), lit(k[i]!)] }) as Expr) }) as Expr) }
  return { kind: 'for', v: r, source: t, body: { kind: 'where', cond, body: { kind: 'yield', value: { kind: 'var', v: r } } } }
}

function assertNever(x: never): never {
  throw new Error(`internal: unhandled expression ${JSON.stringify(x)}`)
}
