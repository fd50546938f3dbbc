/**
 * Lowering, grouped generators (`Q.groupBy`, `Q.distinct`): the GROUP BY of one source branch
 * in place, or of a derived table of several; their aggregates (FILTER or CASE by dialect), the
 * JSON of their nested collections and lineage.
 */
import { width, type CollLayout, type Layout } from '../layout.js'
import { isScalar, mentionsAlias, type Branch, type Gen, type GroupAgg, type GroupSpec, type LinEntry, type NExpr, type NValue } from '../normal.js'
import type { ScalarKind } from '../schema.js'
import * as S from '../sql-nodes.js'
import { type Cx, typedNull } from './context.js'
import { asReal, commonScale, cond, expr, unifiedKind, valueAs } from './scalar.js'
import { enterLateral, fromItems, select } from './select.js'
import { collSlots, element, mentionsOwnColumn, slotKinds, slots } from './value.js'

/** The key and aggregate expressions of a grouped generator, over its source; `from`/`where` built last. */
function groupCore(cx: Cx, g: Gen): { key: (i: number) => S.Node; grouped: boolean[]; agg: (name: string) => S.Node | undefined; finish: () => { from: S.FromItem[]; where: S.Node[] } } {
  const s = g.group!
  const aggNodes = new Map<string, S.Node | undefined>()
  // One source branch over tables is grouped in place; several branches, rows without a
  // table (outer columns only), or keys computed by subqueries (PostgreSQL does not see a
  // correlated subquery as grouped) are grouped as a derived table.
  if (directGroup(s)) {
    const b = s.source[0]!
    const lateral = enterLateral(cx, b.gens)
    const keys = s.keys[0]!.map((k) => expr(cx, k))
    const agg = (name: string) => {
      if (!aggNodes.has(name)) aggNodes.set(name, groupAgg(cx, g, name))
      return aggNodes.get(name)
    }
    // A key that reads no column of the rows is constant here: it is not grouped by.
    const own = b.gens.map((x) => x.alias)
    const grouped = s.keys[0]!.map((k) => own.some((a) => mentionsAlias(k, a)))
    return {
      key: (i) => keys[i]!,
      grouped,
      agg,
      finish: () => {
        try {
          const where = b.conds.map((c) => cond(cx, c))
          return { from: fromItems(cx, b.gens, lateral), where }
        } finally {
          for (const a of lateral) cx.subst.delete(a)
        }
      },
    }
  }
  // Several source branches: `(select key as k0, arg as a0, flag as f0 ... union all ...) as u`.
  const u = `${g.alias}u`
  const used = new Set<string>()
  const agg = (name: string) => {
    const j = aggIndex(name)
    const a = s.aggs[j]!
    if (a.fn === 'json' && !cx.viaLayouts.has(`${g.alias}.${name}`)) return undefined
    used.add(name)
    // Count the rows with a flag (`count(u.f)`), when some rows do not take part.
    if (a.fn === 'count' && !a.distinct) return needsFlag(a, s.source.length) ? S.agg('count', [S.col(u, `f${j}`)]) : S.countAll()
    const flag = needsFlag(a, s.source.length) ? S.binary(S.col(u, `f${j}`), 'is not', S.literal(null)) : undefined
    const arg = S.col(u, name)
    return aggregateNode(cx, a, a.fn === 'json' && cx.h.jsonAsText && jsonElement(cx, g, name) ? S.fn('json', [arg]) : arg, flag, true)
  }
  return {
    key: (i) => S.col(u, `k${i}`),
    grouped: s.keys[0]!.map(() => true),
    agg,
    finish: () => {
      for (const name of aggNames(cx, g)) agg(name)
      const keyKinds = s.keys[0]!.map((_, i) => unifiedKind(s.keys.map((ks) => ks[i]!)))
      // Decimal keys of the union's parts at one scale (SQLite stores scaled integers).
      const keyScales = s.keys[0]!.map((_, i) => commonScale(s.keys.map((ks) => ks[i]!), keyKinds[i]!))
      const parts = s.source.map((b, i) =>
        select(cx, b, () => {
          const out = s.keys[i]!.map((k, j) => ({ expr: valueAs(cx, k, keyKinds[j]!, keyScales[j]), alias: `k${j}` }))
          const flagged = new Set<number>()
          for (const name of aggNames(cx, g).filter((n) => used.has(n))) {
            const j = aggIndex(name)
            const a = s.aggs[j]!
            const part = a.parts.find((p) => p.branch === i)
            const isJson = a.fn === 'json' || a.fn === 'lineage'
            const single = a.fn === 'json' && !jsonElement(cx, g, name)
            // The one slot's kind, also when the element is a record around it (a lineage-annotated
            // element whose sources add no key slot: property-test counterexample FC_SEED=1221037925
            // FC_PATH=159, "UNION types text and boolean cannot be matched").
            const elemLayout = single ? cx.viaLayouts.get(`${g.alias}.${name}`)?.l.elem : undefined
            const elemKind = elemLayout === undefined ? undefined : slotKinds(elemLayout)[0]
            // A lone scalar element goes into JSON as the dialect writes that kind there
            // (`jsonSlot`: a PostgreSQL timestamp as ISO text), a missing part's NULL alike, so
            // the union's parts agree (property-test counterexample: "UNION types timestamp with
            // time zone and text cannot be matched").
            const nullArg = isJson && !cx.h.jsonAsText && !single ? S.cast(S.literal(null), 'json')
              : single && elemKind !== undefined ? element(cx, [typedNull(cx, elemKind)], [false], undefined, [elemKind])
              : typedNull(cx, elemKind ?? argType(a).kind)
            const flag = needsFlag(a, s.source.length)
            const countAll = a.fn === 'count' && !a.distinct
            if (part === undefined) {
              if (!countAll) out.push({ expr: nullArg, alias: name })
              if (flag && !flagged.has(j)) out.push({ expr: typedNull(cx, 'int'), alias: `f${j}` })
              flagged.add(j)
              continue
            }
            const keep = part.filter.length === 0 ? undefined : S.and(part.filter.map((c) => cond(cx, c)))
            if (!countAll) {
              const arg = partArg(cx, g, name, part.arg, i)
              out.push({ expr: keep === undefined || isJson ? arg : S.caseWhen(keep, arg), alias: name })
            }
            if (flag && !flagged.has(j)) out.push({ expr: keep === undefined ? S.literal(1) : S.caseWhen(keep, S.literal(1)), alias: `f${j}` })
            flagged.add(j)
          }
          if (out.length === 0) out.push({ expr: S.literal(1), alias: '#' })
          return out
        }, true, partReads(s, i)),
      )
      return { from: [{ sub: S.unionAll(parts), alias: u }], where: [] }
    },
  }
}

/**
 * The column computing a group's nested collection laid out as `l` (from branch `offset`):
 * `a<j>`, or `a<j>_<n>` when the same collection is also laid out differently elsewhere.
 */
export function viaColumn(cx: Cx, alias: string, col: string, l: CollLayout, offset: number): string {
  const id = layoutId(l)
  for (let n = 0; ; n++) {
    const name = n === 0 ? col : `${col}_${n}`
    const seen = cx.viaLayouts.get(`${alias}.${name}`)
    if (seen === undefined) {
      cx.viaLayouts.set(`${alias}.${name}`, { l, offset, id })
      return name
    }
    if (seen.offset === offset && seen.id === id) return name
  }
}

/** The aggregate columns of a grouped generator: `a<j>`, and a column per layout of a nested collection. */
function aggNames(cx: Cx, g: Gen): string[] {
  return g.group!.aggs.flatMap((a, j) => {
    if (a.fn !== 'json') return [`a${j}`]
    const out: string[] = []
    for (let n = 0; cx.viaLayouts.has(`${g.alias}.${n === 0 ? `a${j}` : `a${j}_${n}`}`); n++) out.push(n === 0 ? `a${j}` : `a${j}_${n}`)
    return out
  })
}

/** Whether json aggregate `j` of `g` has elements that are JSON themselves (need `json(...)` on SQLite). */
function jsonElement(cx: Cx, g: Gen, name: string): boolean {
  const v = cx.viaLayouts.get(`${g.alias}.${name}`)
  if (v === undefined || v.l.elem === undefined) return false
  return v.l.tagged || width(v.l.elem) !== 1 || collSlots(v.l.elem)[0] === true
}

/** The argument of aggregate `j` for source branch `branch` (an element, a lineage row, or a scalar). */
function partArg(cx: Cx, g: Gen, name: string, arg: NValue | undefined, branch: number): S.Node {
  const a = g.group!.aggs[aggIndex(name)]!
  if (a.fn === 'json') {
    const v = cx.viaLayouts.get(`${g.alias}.${name}`)!
    const elem = v.l.elem!
    const idx = a.parts.findIndex((p) => p.branch === branch)
    const tag = v.l.tagged ? S.literal(v.offset + idx) : undefined
    return element(cx, slots(cx, arg!, elem, v.offset + idx), collSlots(elem), tag, slotKinds(elem))
  }
  if (a.fn === 'lineage') {
    const entries = (arg as Extract<NValue, { k: 'lin' }>).entries
    return S.fn(cx.h.jsonArray, [S.literal(branch), ...entries.flatMap((e) => linKeys(cx, e))])
  }
  if (arg === undefined) return S.literal(1)
  // Every part at one kind and scale; an average of decimals averages their values as reals.
  if (a.fn === 'avg') return asReal(cx, arg as NExpr)
  const { kind, scale } = argType(a)
  return valueAs(cx, arg as NExpr, kind, scale)
}

/** The key values of a lineage entry inside a group's lineage row. */
function linKeys(cx: Cx, e: LinEntry): S.Node[] {
  return e.key.map((k) => expr(cx, k))
}

/** Aggregate `j` of grouped generator `g` with a single source branch, over that branch. */
function groupAgg(cx: Cx, g: Gen, name: string): S.Node | undefined {
  const a = g.group!.aggs[aggIndex(name)]!
  if (a.fn === 'json' && !cx.viaLayouts.has(`${g.alias}.${name}`)) return undefined
  const part = a.parts[0]!
  const keep = part.filter.length === 0 ? undefined : S.and(part.filter.map((c) => cond(cx, c)))
  const arg = a.fn === 'count' && !a.distinct ? undefined : partArg(cx, g, name, part.arg, part.branch)
  return aggregateNode(cx, a, arg, keep, false)
}

/** `fn(arg)` over a group, keeping the rows where `cond` holds (FILTER or CASE, by dialect). */
function aggregateNode(cx: Cx, a: GroupAgg, arg: S.Node | undefined, cond: S.Node | undefined, viaFlag: boolean): S.Node {
  const useCase = cond !== undefined && cx.h.filteredAggregate === 'case' && a.fn !== 'json' && a.fn !== 'lineage' && !viaFlag
  switch (a.fn) {
    case 'count':
      if (a.distinct) return S.agg('count', [useCase ? S.caseWhen(cond!, arg!) : arg!], { distinct: true, filter: useCase || viaFlag ? undefined : cond })
      if (cond === undefined) return S.countAll()
      return useCase ? S.agg('count', [S.caseWhen(cond, S.literal(1))]) : S.agg('count', [{ kind: 'SelectAllNode' } as S.Node], { filter: cond })
    case 'sum': case 'min': case 'max': case 'avg': {
      const x = a.fn === 'min' || a.fn === 'max' ? (a.type.kind === 'string' && cx.h.binaryCollation !== undefined ? S.collate(arg!, cx.h.binaryCollation) : arg!) : arg!
      if (viaFlag) return S.agg(a.fn, [x])
      return useCase ? S.agg(a.fn, [S.caseWhen(cond!, x)]) : S.agg(a.fn, [x], { filter: cond })
    }
    case 'json': {
      const j = S.agg(cx.h.jsonAgg, [arg!], { filter: cond })
      return cx.h.jsonAggOrEmpty(j)
    }
    case 'lineage': {
      const j = S.agg(cx.h.jsonAgg, [cx.h.jsonAsText && viaFlag ? S.fn('json', [arg!]) : arg!], { filter: cond })
      return cx.h.jsonText(j)
    }
  }
}

/** The derived table of a grouped generator: `select k0, ..., a0, ... from ... group by 1, ...`. */
export function groupSelect(cx: Cx, g: Gen): S.Select {
  const s = g.group!
  const core = groupCore(cx, g)
  const nk = s.keys[0]!.length
  const selections: { expr: S.Node; alias: string }[] = []
  for (let i = 0; i < nk; i++) selections.push({ expr: core.key(i), alias: `k${i}` })
  const positions = core.grouped.flatMap((x, i) => (x ? [S.literal(i + 1)] : []))
  // Without a key that varies: grouped by a constant column, so no rows make no group (not one);
  // a whole-source group (rule `one-scan-aggregates`) is one row always: no GROUP BY.
  if (positions.length === 0 && s.whole === undefined) {
    selections.push({ expr: S.literal(0), alias: '#k' })
    positions.push(S.literal(selections.length))
  }
  for (const name of aggNames(cx, g)) {
    const n = core.agg(name)
    if (n !== undefined) selections.push({ expr: n, alias: name })
  }
  const { from, where } = core.finish()
  return S.select({ from, selections, where, groupBy: positions })
}

/** A branch over one grouped generator written as the GROUP BY itself (`select distinct` when it yields exactly the key). */
export function inlineGroup(cx: Cx, b: Branch, g: Gen, sel: () => { expr: S.Node; alias: string }[], selectsValue: boolean): S.Select {
  const s = g.group!
  const core = groupCore(cx, g)
  const nk = s.keys[0]!.length
  cx.subst.set(g.alias, (col) => {
    const n = col.startsWith('k') ? core.key(Number(col.slice(1))) : core.agg(col)
    if (n === undefined) throw new Error(`internal: group column ${col} not computed`)
    return n
  })
  let selections: { expr: S.Node; alias: string }[]
  let having: S.Node[]
  try {
    selections = sel()
    having = b.conds.map((c) => cond(cx, c))
  } finally {
    cx.subst.delete(g.alias)
  }
  const { from, where } = core.finish()
  // `select distinct` only when the selections are the branch's value and it is the key.
  if (selectsValue && s.aggs.length === 0 && having.length === 0 && nk > 0 && yieldsExactlyKeys(b.value, g.alias, nk)) {
    return S.select({ from, selections, where, distinct: true })
  }
  return S.select({ from, selections, where, groupBy: core.grouped.flatMap((x, i) => (x ? [core.key(i)] : [])), having })
}

/** Whether a value is exactly the key columns `k0, k1, ...` of grouped generator `alias`, in order. */
function yieldsExactlyKeys(v: NValue, alias: string, nk: number): boolean {
  const out: NExpr[] = []
  const walk = (x: NValue): boolean => {
    if (isScalar(x)) return out.push(x) > 0
    return x.k === 'rec' ? x.fields.every(([, f]) => walk(f)) : false
  }
  if (!walk(v) || out.length !== nk) return false
  return out.every((x, i) => x.k === 'col' && x.alias === alias && x.col.name === `k${i}`)
}

/** Whether a group is computed directly over its one source branch (else over a derived table of its rows). */
export function directGroup(s: GroupSpec): boolean {
  if (!(s.source.length === 1 && s.source[0]!.gens.length > 0 && !s.keys[0]!.some(hasSubquery))) return false
  const b = s.source[0]!
  return s.aggs.every((a) => a.parts.every((p) => p.arg === undefined || mentionsOwnColumn({ ...b, value: p.arg }) || constantValue(p.arg)))
}

/**
 * Whether a value reads no column and runs no subquery. An aggregate whose argument reads outer
 * columns (or a subquery over them, such as a why-provenance witness) and none of its own rows'
 * belongs to the outer query in SQL ("misuse of aggregate" on SQLite, "aggregate functions are
 * not allowed in FROM clause of their own query level" on PostgreSQL): such a group is grouped
 * as a derived table, whose columns are its own.
 */
function constantValue(v: NValue): boolean {
  switch (v.k) {
    case 'rec': return v.fields.every(([, f]) => constantValue(f))
    case 'lin': return v.entries.every((e) => e.key.every(constantValue))
    case 'coll': return false
    case 'const': return true
    case 'op': return v.args.every(constantValue)
    case 'col': case 'exists': case 'agg': case 'witness': case 'shared': return false
  }
}

export function hasSubquery(e: NExpr): boolean {
  return e.k === 'exists' || e.k === 'agg' || e.k === 'witness' || e.k === 'shared' || (e.k === 'op' && e.args.some(hasSubquery))
}

/** The aggregate index of a group column name `a<j>` or `a<j>_<n>`. */
function aggIndex(name: string): number {
  return Number(/^a(\d+)/.exec(name)![1])
}

/** A structural identity of a layout (codecs by name). */
function layoutId(l: Layout): string {
  return JSON.stringify(l, (k, v) => (k === 'codec' ? (v as { name?: string } | undefined)?.name : v))
}

/** Whether some rows of a group over several source branches do not take part in aggregate `a` (a flag column marks those that do). */
function needsFlag(a: GroupAgg, sources: number): boolean {
  return a.parts.length < sources || a.parts.some((p) => p.filter.length > 0)
}

/**
 * The kind of an aggregate's argument in every part of a group over several source branches
 * (typed NULLs in the parts without it), and for decimals the one scale of all parts.
 */
function argType(a: GroupAgg): { kind: ScalarKind; scale: number | undefined } {
  if (a.fn === 'avg') return { kind: 'real', scale: undefined }
  if (a.fn === 'json' || a.fn === 'lineage') return { kind: 'string', scale: undefined }
  if (a.fn === 'count' && a.distinct !== true) return { kind: 'int', scale: undefined }
  const args = a.parts.flatMap((p) => (p.arg !== undefined && isScalar(p.arg) ? [p.arg] : []))
  const kind = a.fn === 'count' ? unifiedKind(args, 'int') : a.type.kind
  return { kind, scale: commonScale(args, kind) }
}

/**
 * What a part of a group over several source branches selects besides its branch's value: the
 * keys and the aggregates' arguments and filters of source branch `i` (a part written as a
 * GROUP BY itself must not read its group's columns in a subquery of these either).
 */
function partReads(s: GroupSpec, i: number): NValue[] {
  return [...s.keys[i]!, ...s.aggs.flatMap((a) => a.parts.filter((p) => p.branch === i).flatMap((p) => [...(p.arg === undefined ? [] : [p.arg]), ...p.filter]))]
}
