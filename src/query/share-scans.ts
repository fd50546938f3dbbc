/**
 * Rule `one-scan-aggregates` (a phase over the normal form, after `normalise`): aggregates that
 * a top-level branch without generators computes over the same rows are computed in one scan.
 *
 * `yield { x: f(sum(for r in M. yield a), sum(for r in M. yield b)) }`, `M` the same rows (the
 * same tables and conditions, up to the generators' aliases), becomes
 * `for g in G. yield { x: f(g.a0, g.a1) }`, `G` a grouped generator over `M` grouping all of its
 * rows as one group (`GroupSpec.whole`: no GROUP BY, so one row even when `M` is empty, where
 * `sum` is NULL and `count` is 0, as the scalar subqueries gave). SQL:
 * `select f(g.a0, g.a1) from (select sum(a) as a0, sum(b) as a1 from ... where ...) as g`,
 * as the official TPC-H Q14 text computes its two sums (written as two `Q.sum`s of one query,
 * the two scalar subqueries read `lineitem` twice: 1.9x the official time on SQLite).
 *
 * Only branches without generators and shared values are rewritten: their aggregates read no
 * outer row, so the scan is an uncorrelated derived table. Aggregates with a subquery in their
 * rows' conditions, `count(distinct)` and ordered or limited queries are left as they are.
 */
import type { ColumnDef, TableDef } from './schema.js'
import { renameExpr, renameValue, sameExpr, type Branch, type Gen, type GroupAgg, type GroupAggPart, type NExpr, type NQuery, type NTop, collectAggs, replaceAggs } from './normal.js'

type Agg = Extract<NExpr, { k: 'agg' }>

/** The top-level query with rule `one-scan-aggregates` applied to each branch without generators. */
export function shareScans(t: NTop): NTop {
  let n = 0
  let changed = false
  const branches = t.query.branches.map((b) => {
    const out = shareBranch(b, () => `#a${n++}`)
    if (out !== b) changed = true
    return out
  })
  return changed ? { ...t, query: { ...t.query, branches } } : t
}

function shareBranch(b: Branch, freshAlias: () => string): Branch {
  if (b.gens.length > 0 || (b.lets ?? []).length > 0) return b
  const aggs: Agg[] = []
  collectAggs(b.value, aggs)
  for (const c of b.conds) collectAggs(c, aggs)
  const replaced = new Map<Agg, NExpr>()
  const gens: Gen[] = []
  for (const cls of sameRowClasses(aggs, shareable)) {
    const source = cls[0]!.q.branches[0]!
    const { gen, cols } = wholeGroupGen(freshAlias(), source, cls.map((a) => aggPart(source, a)))
    cls.forEach((a, j) => replaced.set(a, cols[j]!))
    gens.push(gen)
  }
  if (gens.length === 0) return b
  return { ...b, gens, conds: b.conds.map((c) => replaceAggs(c, replaced) as NExpr), value: replaceAggs(b.value, replaced) }
}

/**
 * The aggregates `keep` accepts, in classes over the same rows (`sameRows`), in order of first
 * appearance; only classes of two or more (rules `one-scan-aggregates` and
 * `one-scan-correlated-aggregates`).
 */
export function sameRowClasses(aggs: readonly Agg[], keep: (a: Agg) => boolean): Agg[][] {
  const classes: Agg[][] = []
  for (const a of aggs) {
    if (!keep(a)) continue
    const cls = classes.find((c) => sameRows(c[0]!.q.branches[0]!, a.q.branches[0]!) !== undefined)
    if (cls === undefined) classes.push([a])
    else if (!cls.includes(a)) cls.push(a)
  }
  return classes.filter((c) => c.length > 1)
}

/** Aggregate `a` (whose rows are `source`'s) as an aggregate over `source`'s aliases. */
export function aggPart(source: Branch, a: Agg): { readonly fn: Agg['fn']; readonly type: Agg['type']; readonly arg: GroupAggPart['arg'] } {
  const map = sameRows(source, a.q.branches[0]!)!
  return { fn: a.fn, type: a.type, arg: a.fn === 'count' ? undefined : renameValue(a.q.branches[0]!.value, map) }
}

/**
 * A one-row grouped generator `alias` that computes `aggs` over `source` in one scan, and the
 * column expression of each aggregate (named a0, a1, ... in order).
 */
export function wholeGroupGen(alias: string, source: Branch, aggs: readonly ReturnType<typeof aggPart>[]): { readonly gen: Gen; readonly cols: readonly NExpr[] } {
  const columns: ColumnDef[] = []
  const byName = new Map<string, ColumnDef>()
  const table: TableDef = { name: alias, columns, byName, key: undefined, lineage: false, storedLineage: undefined }
  const cols: NExpr[] = []
  const groupAggs: GroupAgg[] = aggs.map((a, j) => {
    const col: ColumnDef = { name: `a${j}`, codec: undefined as unknown as ColumnDef['codec'], type: a.type }
    columns.push(col)
    byName.set(col.name, col)
    cols.push({ k: 'col', alias, table, col, type: a.type })
    return { fn: a.fn, distinct: false, type: a.type, parts: [{ branch: 0, arg: a.arg, filter: [] }] }
  })
  return { gen: { alias, table, group: { source: [source], keys: [[]], aggs: groupAggs, whole: true as const } }, cols }
}

/** An aggregate whose rows one scan can share: one unordered branch over tables, no subquery or shared value in its conditions. */
export function shareable(a: Agg): boolean {
  const q: NQuery = a.q
  if (a.distinct === true || q.order !== undefined || q.branches.length !== 1) return false
  const b = q.branches[0]!
  return b.gens.length > 0 && b.gens.every((g) => g.group === undefined) && (b.lets ?? []).length === 0 && b.grp === undefined
}

/**
 * When `b`'s rows are `a`'s (the same tables in the same order, the same conditions once `b`'s
 * aliases are renamed to `a`'s), the renaming; else `undefined`.
 */
export function sameRows(a: Branch, b: Branch): ReadonlyMap<string, string> | undefined {
  if (a.gens.length !== b.gens.length || a.conds.length !== b.conds.length) return undefined
  if (!a.gens.every((g, i) => g.table === b.gens[i]!.table)) return undefined
  const map = new Map(b.gens.map((g, i) => [g.alias, a.gens[i]!.alias] as const))
  return b.conds.every((c, i) => sameExpr(a.conds[i]!, renameExpr(c, map))) ? map : undefined
}

