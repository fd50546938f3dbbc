/**
 * Lowering, selects: one branch as `select ... from ... where ...` (or, over one grouped
 * generator, as the GROUP BY itself), its FROM items (tables, grouped derived tables, lateral
 * items, shared `Q.let` values), and ordered/limited unions of branches.
 */
import { cuts, mentionsAlias, queryMentions, specMentions, type Branch, type Gen, type NExpr, type NQuery, type NValue } from '../normal.js'
import * as S from '../sql-nodes.js'
import { type Cx, sharedAlias, stringOrder, withShared } from './context.js'
import { directGroup, groupSelect, inlineGroup } from './group.js'
import { commonScale, cond, exprAs, unifiedKind, valueAs } from './scalar.js'

/** The branches of `q` as selects of the single expression `one(branch)` (or `1`). */
export function branchSelects(cx: Cx, q: NQuery, one: (b: Branch, i: number) => S.Node, alias = 'v', inline = true): S.Select[] {
  return q.branches.map((b, i) => select(cx, b, () => [{ expr: one(b, i), alias }], inline))
}

/**
 * The select of one branch: `sel()` gives its selections (called first: lowering them records
 * what grouped generators must compute). A branch whose only generator is a grouped one is
 * written in place as `select ... from <source> where ... group by <key> having <conds>`
 * when `inline` (the selections are not aggregates themselves) and nothing correlates with
 * the group's columns; otherwise grouped generators are derived tables in FROM.
 */
export function select(cx: Cx, b: Branch, sel: () => { expr: S.Node; alias: string }[], inline = true, extra: readonly NValue[] = [], selectsValue = false): S.Select {
  const g = b.gens[0]
  // (A branch computing shared `Q.let` values keeps its FROM: the values are lateral items.)
  if (inline && b.gens.length === 1 && g?.group !== undefined && g.group.keys[0]!.length > 0 && (b.lets ?? []).length === 0 && canInline(cx, b, g, extra)) return inlineGroup(cx, b, g, sel, selectsValue)
  const lateral = enterLateral(cx, b.gens)
  try {
    // Rule "shared value in scope": the selections and conditions read the branch's shared
    // values from its lateral items; its generators (derived tables before those items) cannot.
    const ids = letIds(b)
    const [selections, where] = withShared(cx, ids, () => [sel(), b.conds.map((c) => cond(cx, c))] as const)
    // The shared values before the FROM items, as the selections: a grouped generator's select
    // lists the nested collections lowered so far (`viaColumn`).
    const extra = letItems(cx, b)
    return S.select({ from: fromItems(cx, b.gens, lateral), extra, selections, where })
  } finally {
    for (const a of lateral) cx.subst.delete(a)
  }
}

/**
 * The grouped generators of `gens` whose source reads an earlier generator of `gens` (they
 * are lateral); their columns are read as the dialect's lateral items give them from now on
 * (until the caller removes them from `subst`).
 */
export function enterLateral(cx: Cx, gens: readonly Gen[]): Set<string> {
  const lateral = new Set(gens.filter((x, i) => x.group !== undefined && gens.slice(0, i).some((o) => specMentions(x.group!, o.alias))).map((x) => x.alias))
  for (const a of lateral) cx.subst.set(a, (col) => cx.h.lateralColumn(a, col))
  return lateral
}

/**
 * The FROM items of some generators: one each, but a generator joined by a left outer join
 * (`Gen.left`, rule `decorrelate-aggregate`) takes the items before it into its join tree.
 */
export function fromItems(cx: Cx, gens: readonly Gen[], lateral: ReadonlySet<string>): S.FromItem[] {
  // Lowered last to first (rule "later generators first"): a grouped generator's select
  // computes the nested collections of its group that were lowered before it (`viaColumn`),
  // and a later generator, or a join condition, may read one of an earlier group's (a group
  // over `g.group` of an outer group): lowered after that group's select, the column it reads
  // was missing ("no such column: g0.a0"; property-test counterexample FC_SEED=1676420156
  // FC_PATH=76). Generators read only earlier ones, so nothing an item needs comes later.
  const ons = gens.map((g) => (g.left === undefined ? undefined : g.left.on)).reverse().map((on) => (on === undefined ? undefined : S.and(on.map((c) => cond(cx, c))))).reverse()
  const items = gens.map((_, i) => gens.length - 1 - i).map((i) => fromItem(cx, gens[i]!, lateral.has(gens[i]!.alias))).reverse()
  const out: S.FromItem[] = []
  gens.forEach((g, i) => {
    const item = items[i]!
    if (g.left === undefined) {
      out.push(item)
      return
    }
    if (out.length === 0) throw new Error(`internal: left-joined generator ${g.alias} has no generator before it`)
    out.splice(0, out.length, { before: [...out], right: item, on: ons[i]! })
  })
  return out
}

/**
 * A generator as a FROM item. A lateral grouped generator (correlated with an earlier one) is
 * `lateral (select ...)` on PostgreSQL; SQLite has no LATERAL, but a table-valued function may
 * read earlier FROM items: `json_each((select json_group_array(json_object('k0', k0, ...)) from
 * (select ...)))`, its columns read back with `json_extract(value, '$.k0')`.
 */
export function fromItem(cx: Cx, g: Gen, lateral = false): S.FromItem {
  if (g.group === undefined) return { table: g.table.name, alias: g.alias }
  const sub = groupSelect(cx, g)
  if (!lateral) return { sub, alias: g.alias }
  const cols = S.selectionNames(sub)
  return { sub: cx.h.lateralItem(sub, cols), alias: g.alias }
}

/** Whether a branch over one grouped generator can be written as the GROUP BY itself. */
function canInline(cx: Cx, b: Branch, g: Gen, extra: readonly NValue[]): boolean {
  const s = g.group!
  // Nothing may correlate with the group's columns (they are aggregates here).
  const correlated = (v: NValue): boolean => subqueryMentions(v, g.alias)
  if (b.conds.some(correlated) || correlated(b.value) || extra.some(correlated)) return false
  // Several source branches, rows without a table, keys with subqueries: grouped from a derived table.
  if (!directGroup(s)) return true
  const own = s.source[0]!.gens.map((x) => x.alias)
  const varies = s.keys[0]!.map((k) => own.some((a) => mentionsAlias(k, a)))
  // At least one key to group by; PostgreSQL matches GROUP BY expressions to selected ones
  // textually: no parameters in grouped keys; SQLite resolves no outer column in GROUP BY.
  return varies.includes(true) && !s.keys[0]!.some((k, i) => varies[i] && (hasConst(k) || !readsOnly(k, own)))
}

/**
 * The FROM items of a branch after its generators: one lateral item per shared `Q.let`
 * value, which computes it once per row of the generators before it:
 * - PostgreSQL: `lateral (select <value> as "v" offset 0) as "#s0"` (`offset 0` keeps the
 *   planner from pulling the subquery up and copying the value to each use);
 * - SQLite (no LATERAL): the table-valued function `json_each(json_array(<value>)) as "#s0"`,
 *   whose argument may read the tables before it; its `value` column is the value with its
 *   SQL type (integer, real, text, NULL).
 */
function letItems(cx: Cx, b: Branch): S.Node[] {
  if (b.lets === undefined || b.lets.length === 0) return []
  // One item per shared value (a value listed twice is the same value: same id, same alias);
  // each value may read the ones before it.
  const lets = b.lets.filter((l, i) => b.lets!.findIndex((m) => m.id === l.id) === i)
  return lets.map((l, i) => withShared(cx, lets.slice(0, i).map((m) => m.id), () => cx.h.sharedItem(exprAs(cx, l.value, l.type.kind), sharedAlias(cx, l.id))))
}

/** The ids of the shared values a branch computes. */
function letIds(b: Branch): number[] {
  return (b.lets ?? []).map((l) => l.id)
}

/**
 * The branches of an ordered query as selects of `cols(branch)` plus its order keys as
 * columns `o0, o1, ...`; when the query is limited, the union ordered by them and cut, so it
 * is a derived table holding the kept elements only.
 */
export function orderedUnion(cx: Cx, q: NQuery, cols: (b: Branch, i: number) => { readonly expr: S.Node; readonly alias: string }[]): S.Select {
  const order = q.order!
  const kinds = order.directions.map((_, j) => unifiedKind(order.keys.map((ks) => ks[j]!)))
  const scales = order.directions.map((_, j) => commonScale(order.keys.map((ks) => ks[j]!), kinds[j]!))
  const parts = q.branches.map((b, i) =>
    select(cx, b, () => {
      const selections = cols(b, i)
      ;(order.keys[i] ?? []).forEach((k, j) => selections.push({ expr: stringOrder(cx, valueAs(cx, k, kinds[j]!, scales[j]), k), alias: `o${j}` }))
      if (selections.length === 0) selections.push({ expr: S.literal(1), alias: '#' })
      return selections
    }, false),
  )
  const union = S.unionAll(parts)
  if (!cuts(order)) return union
  const limit = order.limit !== undefined ? cx.h.limitCount(order.limit) : cx.h.limitForOffset
  const items: S.OrderItem[] = order.directions.map((dir, j) => ({ expr: S.columnRef(`o${j}`), dir }))
  return S.withOrderAndLimit(union, items, limit, order.offset > 0 ? cx.h.limitCount(order.offset) : undefined)
}

/** Order items over the key columns of `orderedUnion` read through alias `u`. */
export function orderItemsOf(cx: Cx, q: NQuery, from: string): S.OrderItem[] {
  const order = q.order!
  return order.directions.map((dir, j) => {
    const kind = unifiedKind(order.keys.map((ks) => ks[j]!))
    return { expr: S.col(from, `o${j}`), dir, collation: kind === 'string' ? cx.h.binaryCollation : undefined }
  })
}

/** Whether an expression reads columns of `own` only (no outer column, no subquery). */
function readsOnly(e: NExpr, own: readonly string[]): boolean {
  switch (e.k) {
    case 'col': return own.includes(e.alias)
    case 'const': return true
    case 'op': return e.args.every((a) => readsOnly(a, own))
    case 'exists': case 'agg': case 'shared': case 'witness': return false
  }
}

function hasConst(e: NExpr): boolean {
  return e.k === 'const' || (e.k === 'op' && e.args.some(hasConst))
}

/** Whether a value reads a column of `alias` inside a nested query (a correlated subquery). */
function subqueryMentions(v: NValue, alias: string): boolean {
  switch (v.k) {
    case 'col': case 'const': return false
    case 'op': return v.args.some((a) => subqueryMentions(a, alias))
    case 'exists': case 'agg': case 'witness': return queryMentions(v.q, alias)
    // a shared `Q.let` value is computed in the branch's FROM: read as a column there
    case 'shared': return mentionsAlias(v.value, alias)
    case 'rec': return v.fields.some(([, f]) => subqueryMentions(f, alias))
    case 'coll': return v.via === undefined && queryMentions(v.q, alias)
    case 'lin': return v.entries.some((e) => e.witness !== undefined && e.key.some((k) => subqueryMentions(k, alias)))
  }
}
