/**
 * Rule `one-scan-correlated-aggregates` (a phase over the normal form, after
 * `decorrelate-aggregate`): aggregates that a top-level branch computes over the same rows,
 * rows that read the branch's generators (a correlated `Q.let` query value used twice, or the
 * same rows written twice), are computed in one scan per row of the branch instead of one
 * correlated subquery each.
 *
 * `for e in E. let ts = (for t in T. where t.x < e.x. yield t.v) in yield { n: count(ts), m: min(ts) }`
 * becomes `for e in E, g in G(e). yield { n: g.a0, m: g.a1 }`, `G(e)` a grouped generator over
 * the rows of `ts` for this `e`, all of them one group (`GroupSpec.whole`: one row even over no
 * rows, `count` 0 and `min` NULL, as the subqueries gave). It is correlated with `e`, so
 * lowering writes it as a lateral item (`lowering/select.ts`, `fromItem`):
 * - PostgreSQL: `lateral (select count(*) as a0, min(t.v) as a1 from T as t where t.x < e.x) as g`;
 * - SQLite: `json_each((select json_group_array(json_object('a0', a0, 'a1', a1)) from (select ...)))`,
 *   for aggregates of other types than real and decimal (dialect hook `lateralExact`: JSON text
 *   would round a REAL to 15 digits).
 *
 * Runs after `decorrelate-aggregate`, which rewrites the aggregates correlated by equalities
 * into one left-joined grouped table per class of the same rows (a hash join instead of a scan
 * per row); this rule takes what is left. The aggregates are those rule `one-scan-aggregates`
 * shares (one unordered branch of tables, no subquery or shared value in its conditions, no
 * `count(distinct)`); branches computing shared `Q.let` values and a group's collection
 * branches are left as they are.
 */
import { collectAggs, isScalar, queryMentions, sameExpr, replaceAggs, type Branch, type Gen, type NExpr, type NTop } from './normal.js'
import { aggPart, sameRowClasses, shareable, wholeGroupGen } from './share-scans.js'

type Agg = Extract<NExpr, { k: 'agg' }>

/** The top-level query with rule `one-scan-correlated-aggregates` applied (the same object when nothing applies). */
export function shareCorrelatedScans(t: NTop, lateralExact: boolean): NTop {
  let n = 0
  let changed = false
  const keys: (readonly NExpr[])[] = []
  const branches = t.query.branches.map((b, i) => {
    const out = shareBranch(b, t.orderKeys[i] ?? [], lateralExact, () => `#c${n++}`)
    keys.push(out.keys)
    if (out.branch !== b) changed = true
    return out.branch
  })
  return changed ? { ...t, query: { ...t.query, branches }, orderKeys: keys } : t
}

function shareBranch(b: Branch, keys: readonly NExpr[], lateralExact: boolean, freshAlias: () => string): { branch: Branch; keys: readonly NExpr[] } {
  if (b.gens.length === 0 || (b.lets ?? []).length > 0 || b.grp !== undefined) return { branch: b, keys }
  const outer = b.gens.map((g) => g.alias)
  const aggs: Agg[] = []
  collectAggs(b.value, aggs)
  for (const c of b.conds) collectAggs(c, aggs)
  for (const k of keys) collectAggs(k, aggs)
  // classes of aggregates over the same rows that read the branch's generators
  const keep = (a: Agg): boolean =>
    shareable(a) && outer.some((x) => queryMentions(a.q, x)) && (lateralExact || (a.type.kind !== 'real' && a.type.kind !== 'decimal'))
  const replaced = new Map<Agg, NExpr>()
  const gens: Gen[] = []
  for (const cls of sameRowClasses(aggs, keep)) {
    const source = cls[0]!.q.branches[0]!
    // the same aggregate written twice (`count(ts)` in the condition and a field) is one column
    const parts: ReturnType<typeof aggPart>[] = []
    const index = cls.map((a) => {
      const p = aggPart(source, a)
      const j = parts.findIndex((g) => g.fn === p.fn && (p.arg === undefined ? g.arg === undefined : g.arg !== undefined && isScalar(p.arg) && isScalar(g.arg) && sameExpr(p.arg, g.arg)))
      if (j >= 0) return j
      parts.push(p)
      return parts.length - 1
    })
    const { gen, cols } = wholeGroupGen(freshAlias(), source, parts)
    cls.forEach((a, i) => replaced.set(a, cols[index[i]!]!))
    gens.push(gen)
  }
  if (gens.length === 0) return { branch: b, keys }
  const branch: Branch = { ...b, gens: [...b.gens, ...gens], conds: b.conds.map((c) => replaceAggs(c, replaced) as NExpr), value: replaceAggs(b.value, replaced) }
  return { branch, keys: keys.map((k) => replaceAggs(k, replaced) as NExpr) }
}
