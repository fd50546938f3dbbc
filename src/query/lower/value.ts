/**
 * Lowering, values: the slot expressions of a result value by its layout, and nested
 * collections as correlated subqueries aggregating their elements into a JSON array (ordered
 * and limited ones included); under lineage, into `[data, keys]` (see `CollLayout.keysApart`).
 */
import { annotatedFields, width, type CollLayout, type Layout } from '../layout.js'
import { cuts, type Branch, type NExpr, type NQuery, type NValue } from '../normal.js'
import type { ScalarKind } from '../schema.js'
import * as S from '../sql-nodes.js'
import { type Cx, embedJson, typedNull } from './context.js'
import { viaColumn } from './group.js'
import { expr, valueAs } from './scalar.js'
import { orderItemsOf, orderedUnion, select } from './select.js'

/** The slot expressions of `v` laid out by `l`, `branch` being v's branch number. */
export function slots(cx: Cx, v: NValue, l: Layout, branch: number): S.Node[] {
  switch (l.k) {
    case 'scalar':
      // PostgreSQL types `null union all null` as text before it meets the other branches.
      return [valueAs(cx, v as NExpr, l.type.kind, l.type.scale)]
    case 'rec': {
      const fields = (v as Extract<NValue, { k: 'rec' }>).fields
      const out: S.Node[] = []
      l.fields.forEach(([n, fl], i) => {
        // Branches usually list fields in the layout's order; look further only when not.
        const f = fields[i]?.[0] === n ? fields[i]! : fields.find(([m]) => m === n)!
        for (const x of slots(cx, f[1], fl, branch)) out.push(x)
      })
      return out
    }
    case 'coll': {
      const c = v as Extract<NValue, { k: 'coll' }>
      if (c.via !== undefined) {
        // Rule `coll-of-group`: a column of the grouped generator.
        const name = viaColumn(cx, c.via.alias, c.via.col, l, l.offsets[branch] ?? 0)
        const sub = cx.subst.get(c.via.alias)
        return [sub === undefined ? S.col(c.via.alias, name) : sub(name)]
      }
      return [coll(cx, c.q, l, l.offsets[branch] ?? 0)]
    }
    case 'lin': {
      const out: S.Node[] = l.slots.map((kind) => typedNull(cx, kind))
      const desc = l.branches[branch]
      const entries = (v as Extract<NValue, { k: 'lin' }>).entries
      if (desc === undefined) throw new Error('internal: lineage layout has no branch ' + branch)
      desc.entries.forEach((d, i) => d.slots.forEach((s, j) => (out[s] = expr(cx, entries[i]!.key[j]!))))
      if (l.packed === undefined) return out
      // One column: the key slots, then the branch number (see `LinLayout.packed`).
      const parts = l.packed.tagged ? [...out, S.literal(branch)] : out
      return [l.packed.form === 'text' ? cx.h.packedText(parts) : cx.h.jsonText(S.fn(cx.h.jsonArray, parts))]
    }
  }
}

/** One element of a nested collection from its slots: the only slot, or a JSON array. */
export function element(cx: Cx, slots: readonly S.Node[], isColl: readonly boolean[], tag: S.Node | undefined, kinds: readonly (ScalarKind | undefined)[] = []): S.Node {
  const embedded = slots.map((x, i) => (isColl[i] ? embedJson(cx, x) : kinds[i] !== undefined ? cx.h.jsonSlot(x, kinds[i]!) : x))
  // A lone slot is the element itself; one that is always NULL is typed (PostgreSQL cannot
  // aggregate an untyped NULL into JSON).
  if (tag === undefined && embedded.length === 1) return kinds[0] === 'null' ? cx.h.jsonNullElement(embedded[0]!) : embedded[0]!
  return S.fn(cx.h.jsonArray, tag === undefined ? embedded : [...embedded, tag])
}

/** A correlated subquery aggregating the elements of `q` into a JSON array. */
export function coll(cx: Cx, q: NQuery, l: CollLayout, offset: number): S.Node {
  const empty = S.fn(cx.h.jsonArray, [])
  if (q.branches.length === 0) return l.keysApart ? S.fn(cx.h.jsonArray, [empty, S.fn(cx.h.jsonArray, [])]) : empty
  const elem = l.elem!
  const isColl = collSlots(elem)
  const aggregate = (n: S.Node) => {
    const a = S.agg(cx.h.jsonAgg, [n])
    return cx.h.jsonAggOrEmpty(a)
  }
  if (q.order !== undefined) return orderedColl(cx, q, l, offset)
  // Keys apart: `[data, keys]`, two aggregates over the same rows (so in the same order).
  const of = (xs: readonly S.Node[], tag: S.Node | undefined): S.Node => {
    if (!l.keysApart) return aggregate(element(cx, xs, isColl, tag, slotKinds(elem)))
    const { data, keys } = apart(cx, l, xs, tag)
    return S.fn(cx.h.jsonArray, [aggregate(data), aggregate(keys)])
  }
  if (q.branches.length === 1 && inPlace(q.branches[0]!, l.keysApart)) {
    const b = q.branches[0]!
    return select(cx, b, () => [{ expr: of(slots(cx, b.value, elem, offset), l.tagged ? S.literal(offset) : undefined), alias: 'v' }], false)
  }
  // Union parts select plain columns; the outer aggregate builds each element once.
  const names = isColl.map((_, i) => `c${i}`)
  const parts = q.branches.map((b, i) =>
    select(cx, b, () => {
      const selections = slots(cx, b.value, elem, offset + i).map((expr, j) => ({ expr, alias: names[j]! }))
      if (l.tagged) selections.push({ expr: S.literal(offset + i), alias: 't' })
      if (selections.length === 0) selections.push({ expr: S.literal(1), alias: '#' })
      return selections
    }),
  )
  return S.selectFromSubquery(S.unionAll(parts), 'u', [{ expr: of(names.map((n) => S.col('u', n)), l.tagged ? S.col('u', 't') : undefined), alias: 'v' }])
}

/**
 * The two aggregated values of one element of a collection whose keys travel apart: its data
 * as the plain query's element, and its keys (the only key slot, or an array of the key slots
 * and then the tag). `xs` are the element's slots in layout order.
 */
function apart(cx: Cx, l: CollLayout, xs: readonly S.Node[], tag: S.Node | undefined): { data: S.Node; keys: S.Node } {
  const a = annotatedFields(l.elem!)!
  const w = a.lin.slots.length
  const d = width(a.data)
  const dataSlots = a.linFirst ? xs.slice(w) : xs.slice(0, d)
  const keySlots = a.linFirst ? xs.slice(0, w) : xs.slice(d)
  const data = element(cx, dataSlots, collSlots(a.data), undefined, slotKinds(a.data))
  // PostgreSQL cannot aggregate an untyped NULL into JSON (a key slot no branch uses).
  const keys = tag === undefined && w === 1 ? (a.lin.slots[0] === 'null' ? cx.h.jsonNullElement(keySlots[0]!) : keySlots[0]!) : S.fn(cx.h.jsonArray, tag === undefined ? keySlots : [...keySlots, tag])
  return { data, keys }
}

/**
 * An ordered (and maybe limited) nested collection: the JSON aggregate takes its elements in
 * key order (`json_agg(... order by ...)`, `json_group_array(... order by ...)`: SQLite 3.44+),
 * so the order survives aggregation on both dialects. One branch, not limited: aggregated in
 * place. Otherwise over a derived table of the elements and their keys, ordered and cut there
 * when limited (the outer ORDER BY then fixes the order of the kept elements).
 */
function orderedColl(cx: Cx, q: NQuery, l: CollLayout, offset: number): S.Node {
  const elem = l.elem!
  const isColl = collSlots(elem)
  const order = q.order!
  const aggregate = (n: S.Node, items: readonly S.OrderItem[]) => {
    const a = S.aggOrdered(cx.h.jsonAgg, [n], items)
    return cx.h.jsonAggOrEmpty(a)
  }
  if (!cuts(order) && q.branches.length === 1 && mentionsOwnColumn(q.branches[0]!)) {
    const b = q.branches[0]!
    const items = (): S.OrderItem[] => {
      const out: S.OrderItem[] = []
      order.directions.forEach((dir, j) => {
        const k = order.keys[0]![j]!
        if (k.k !== 'const') out.push({ expr: expr(cx, k), dir, collation: k.type.kind === 'string' ? cx.h.binaryCollation : undefined })
      })
      return out
    }
    return select(cx, b, () => [{ expr: aggregate(element(cx, slots(cx, b.value, elem, offset), isColl, l.tagged ? S.literal(offset) : undefined, slotKinds(elem)), items()), alias: 'v' }], false)
  }
  const names = isColl.map((_, i) => `c${i}`)
  const inner = orderedUnion(cx, q, (b, i) => {
    const selections = slots(cx, b.value, elem, offset + i).map((expr, j) => ({ expr, alias: names[j]! }))
    if (l.tagged) selections.push({ expr: S.literal(offset + i), alias: 't' })
    return selections
  })
  const el = element(cx, names.map((n) => S.col('u', n)), isColl, l.tagged ? S.col('u', 't') : undefined, slotKinds(elem))
  return S.selectFromSubquery(inner, 'u', [{ expr: aggregate(el, orderItemsOf(cx, q, 'u')), alias: 'v' }])
}

/** For each slot of a layout, the kind of scalar it holds (`undefined`: a collection or lineage). */
export function slotKinds(l: Layout): (ScalarKind | undefined)[] {
  switch (l.k) {
    case 'scalar': return [l.type.kind]
    case 'coll': return [undefined]
    case 'lin': return l.packed === undefined ? l.slots.map(() => undefined) : [undefined]
    case 'rec': return l.fields.flatMap(([, f]) => slotKinds(f))
  }
}

/** For each slot of a layout, whether it holds a nested collection (JSON). */
export function collSlots(l: Layout): boolean[] {
  switch (l.k) {
    case 'scalar': return [false]
    case 'coll': return [true]
    case 'lin': return l.packed === undefined ? l.slots.map(() => false) : [false]
    case 'rec': return l.fields.flatMap(([, f]) => collSlots(f))
  }
}

/**
 * Whether a one-branch collection can be aggregated in place: its aggregate's argument mentions
 * a column of the branch's own generators (SQLite counts an aggregate over outer columns only
 * as the outer query's). Keys apart: both aggregates' arguments, data and lineage, must.
 */
function inPlace(b: Branch, keysApart: boolean): boolean {
  if (!keysApart) return mentionsOwnColumn(b)
  return (b.value as Extract<NValue, { k: 'rec' }>).fields.every(([, v]) => mentionsOwnColumn({ ...b, value: v }))
}

/** Whether a branch's value mentions, outside nested subqueries, a column of its own generators. */
export function mentionsOwnColumn(b: Branch): boolean {
  if (b.gens.length === 0) return false
  const own = new Set(b.gens.map((g) => g.alias))
  const inExpr = (e: NExpr): boolean => (e.k === 'col' ? own.has(e.alias) : e.k === 'op' ? e.args.some(inExpr) : false)
  const inValue = (v: NValue): boolean =>
    v.k === 'rec' ? v.fields.some(([, f]) => inValue(f)) : v.k === 'lin' ? v.entries.some((x) => x.key.some(inExpr)) : v.k === 'coll' ? v.via !== undefined && own.has(v.via.alias) : inExpr(v)
  return inValue(b.value)
}
