/**
 * Rule `inline-scalar-let` (a phase over the normal form, at the end of `normalise`): a shared
 * `Q.let` scalar of a top-level branch that reads no row of any query around it (an
 * uncorrelated subquery) and that the branch uses at most once is written where it is used, as
 * an uncorrelated scalar subquery, instead of as a lateral FROM item.
 *
 * `let t = sum(for r in M. yield r.v) in for g in groupBy(M, k). where sum(g.group) > t * f. N`
 * stays one evaluation of `t` per statement (both databases compute an uncorrelated scalar
 * subquery once), and the condition reads only the group's columns and the subquery, so the
 * branch is the GROUP BY itself with the condition as HAVING, as TPC-H Q11's official text is:
 * `select k, sum(v) from M group by k having sum(v) > (select sum(v) from M) * f`.
 * As a lateral item (`json_each(json_array((select ...)))` on SQLite) the group was a derived
 * table filtered outside it: 2.0-2.2x the official time on SQLite.
 *
 * Not applied (the value stays one lateral item, computed once):
 * - when the value reads a column of a generator outside it (correlated: once per row there);
 * - when the branch uses it twice or more (the condition, a field, an order key, another let's
 *   value): each copy of an uncorrelated subquery is one more evaluation;
 * - when a use is inside a subquery, a nested collection, a grouped generator or a lineage
 *   annotation of the branch (not a plain scalar position of the branch);
 * - when the value reads another shared value.
 * A let the branch never uses is dropped.
 */
import { isClosed, SharedSearch, type Branch, type NExpr, type NTop, type NValue } from './normal.js'

/** The top-level query with rule `inline-scalar-let` applied (the same object when nothing applies). */
export function inlineScalarLets(t: NTop): NTop {
  let changed = false
  const keys: (readonly NExpr[])[] = []
  const branches = t.query.branches.map((b, i) => {
    const ks = t.orderKeys[i] ?? []
    const out = inlineBranch(b, ks)
    keys.push(out.keys)
    if (out.branch !== b) changed = true
    return out.branch
  })
  return changed ? { ...t, query: { ...t.query, branches }, orderKeys: keys } : t
}

function inlineBranch(b: Branch, keys: readonly NExpr[]): { readonly branch: Branch; readonly keys: readonly NExpr[] } {
  if (b.lets === undefined || b.lets.length === 0) return { branch: b, keys }
  const inline = new Map<number, NExpr>()
  for (const l of b.lets) {
    if (inline.has(l.id) || !isClosed({ expr: l.value })) continue
    const uses = { plain: 0, nested: false }
    for (const c of b.conds) countUses(c, l.id, uses)
    countUses(b.value, l.id, uses)
    for (const k of keys) countUses(k, l.id, uses)
    const search = new SharedSearch((s) => s.id === l.id)
    for (const m of b.lets) if (m.id !== l.id && search.value(m.value)) uses.nested = true
    if (b.gens.some((g) => search.gen(g))) uses.nested = true
    if (!uses.nested && uses.plain <= 1) inline.set(l.id, l.value)
  }
  if (inline.size === 0) return { branch: b, keys }
  const lets = b.lets.filter((l) => !inline.has(l.id))
  const { lets: _, ...rest } = b
  const branch: Branch = {
    ...rest,
    conds: b.conds.map((c) => substExpr(c, inline)),
    value: substValue(b.value, inline),
    ...(lets.length > 0 ? { lets } : {}),
  }
  return { branch, keys: keys.map((k) => substExpr(k, inline)) }
}

/** Counts the uses of shared value `id` in plain scalar positions of `v`; a use anywhere else sets `nested`. */
function countUses(v: NValue, id: number, uses: { plain: number; nested: boolean }): void {
  switch (v.k) {
    case 'shared':
      if (v.id === id) uses.plain++
      return
    case 'col': case 'const':
      return
    case 'op':
      for (const a of v.args) countUses(a, id, uses)
      return
    case 'rec':
      for (const [, f] of v.fields) countUses(f, id, uses)
      return
    case 'exists': case 'agg': case 'witness': case 'coll': case 'lin':
      if (new SharedSearch((s) => s.id === id).value(v)) uses.nested = true
      return
  }
}

/** `v` with the shared values in `inline` replaced by their expressions, in plain scalar positions. */
function substValue(v: NValue, inline: ReadonlyMap<number, NExpr>): NValue {
  switch (v.k) {
    case 'rec':
      return { ...v, fields: v.fields.map(([n, f]) => [n, substValue(f, inline)] as const) }
    case 'coll': case 'lin':
      return v
    default:
      return substExpr(v, inline)
  }
}

function substExpr(e: NExpr, inline: ReadonlyMap<number, NExpr>): NExpr {
  switch (e.k) {
    case 'shared':
      return inline.get(e.id) ?? e
    case 'op': {
      const args = e.args.map((a) => substExpr(a, inline))
      return args.every((a, i) => a === e.args[i]) ? e : { ...e, args }
    }
    case 'col': case 'const': case 'exists': case 'agg': case 'witness':
      return e
  }
}
