/**
 * Lowering: normal form -> one SQL select (Kysely operation nodes) plus the layout to decode
 * its rows. Each branch becomes `select ... from T1 as g1, ... where ...`; a union becomes
 * `union all`; a nested collection becomes a correlated subquery aggregating its elements into
 * a JSON array, so any query runs as exactly one statement. Dialect differences come from
 * `DialectHooks`; SQL is built only through `sql-nodes.ts`.
 *
 * The phases, in the order a statement is built (each a module of functions over one `Cx`):
 * - `lower.ts` (here): the top-level statement, its order and limit, its CTEs;
 * - `lower/select.ts`: one branch as a select, its FROM items, ordered unions;
 * - `lower/value.ts`: result values slot by slot, nested collections as JSON subqueries;
 * - `lower/group.ts`: grouped generators (GROUP BY, their aggregates, nested data, lineage);
 * - `lower/scalar.ts`: expressions, operators, conditions, aggregates, exists, witnesses;
 * - `lower/context.ts`: the state shared by the phases and small helpers.
 */
import type { DialectHooks } from './dialect.js'
import { hasLineage, packTop, plan, type Layout } from './layout.js'
import type { NCte, NExpr, NTop, NValue } from './normal.js'
import * as S from './sql-nodes.js'
import { newContext, stringOrder, type Cx } from './lower/context.js'
import { select } from './lower/select.js'
import { slots } from './lower/value.js'
import { commonScale, expr, unifiedKind, valueAs } from './lower/scalar.js'

export interface TopLayout {
  /** Column aliases of the data (and lineage) slots, in layout order. */
  readonly columns: readonly string[]
  /** Layout of one result element; `undefined` when the query has no branch. */
  readonly value: Layout | undefined
  /** Name of the branch-number column, when rows carry one. */
  readonly tag: string | undefined
}

export interface Lowered {
  readonly select: S.Select
  readonly layout: TopLayout
}

const TAG = '#b'

/**
 * The order items of a one-branch query: its order key expressions, or the output column of
 * a key that is a yielded computed field (`byColumn`, rule "order by output column").
 */
export function orderItems(cx: Cx, t: NTop, order: S.OrderItem[], byColumn: readonly (number | undefined)[] = [], columns: readonly string[] = []): void {
  t.directions.forEach((dir, j) => {
    const c = byColumn[j]
    if (c !== undefined) return order.push({ expr: S.columnRef(columns[c]!), dir })
    const key = t.orderKeys[0]?.[j]
    // A constant key orders nothing (and PostgreSQL rejects `order by null`).
    if (key === undefined || key.k === 'const') return
    const collation = key.type.kind === 'string' ? cx.h.binaryCollation : undefined
    return order.push({ expr: expr(cx, key), dir, collation })
  })
}

export function top(cx: Cx, t: NTop): Lowered {
  const { branches } = t.query
  const planned = branches.length === 0 ? undefined : plan(branches.map((b) => b.value))
  // The key columns (and branch number) as one column where the dialect finds that cheaper.
  const packed = planned === undefined ? undefined : packTop(planned, branches.length > 1 && hasLineage(planned), (kinds, tagged) => cx.h.packKeys(kinds, tagged))
  const value = packed?.value
  const columns = value === undefined ? [] : columnNames(value)
  const tag = packed?.tagged === true ? TAG : undefined
  const multi = branches.length > 1
  const keyKinds = t.directions.map((_, j) => unifiedKind(t.orderKeys.map((ks) => ks[j]!)))
  const byColumn = value === undefined ? t.directions.map(() => undefined) : orderByOutputColumn(t, value)
  // A string key ordered through its output column carries the code-point collation there.
  const collated = new Set(byColumn.flatMap((c, j) => (c !== undefined && cx.h.binaryCollation !== undefined && keyKinds[j] === 'string' ? [c] : [])))
  const keyScales = t.directions.map((_, j) => commonScale(t.orderKeys.map((ks) => ks[j]!), keyKinds[j]!))
  const order: S.OrderItem[] = []
  const selects = branches.map((b, i) =>
    select(cx, 
      b,
      () => {
        const data = value === undefined ? [] : slots(cx, b.value, value, i)
        const selections = data.map((expr, j) => ({ expr: collated.has(j) ? S.collate(expr, cx.h.binaryCollation!) : expr, alias: columns[j]! }))
        if (selections.length === 0) selections.push({ expr: S.literal(1), alias: '#' })
        if (tag !== undefined) selections.push({ expr: S.literal(i), alias: tag })
        if (multi) {
          t.orderKeys[i]!.forEach((k, j) => {
            if (byColumn[j] === undefined) selections.push({ expr: stringOrder(cx, valueAs(cx, k, keyKinds[j]!, keyScales[j]), k), alias: `#o${j}` })
          })
        }
        // One branch orders by its own expressions (lowered here, where a group's columns are known).
        else orderItems(cx, t, order, byColumn, columns)
        return selections
      },
      true,
      multi ? [] : (t.orderKeys[0] ?? []),
      // (PostgreSQL: SELECT DISTINCT orders only by selected expressions; GROUP BY otherwise.)
      t.directions.length === 0,
    ),
  )
  if (selects.length === 0) {
    // No branch can produce a row: a statement that returns none, so callers still get one.
    selects.push(S.select({ from: [], selections: [{ expr: S.literal(1), alias: '#' }], where: [S.binary(S.literal(1), '=', S.literal(0))] }))
  }
  if (multi) t.directions.forEach((dir, j) => order.push({ expr: S.columnRef(byColumn[j] !== undefined ? columns[byColumn[j]!]! : `#o${j}`), dir }))
  const limit = t.limit !== undefined ? cx.h.limitCount(t.limit) : t.offset > 0 ? cx.h.limitForOffset : undefined
  const offset = t.offset > 0 ? cx.h.limitCount(t.offset) : undefined
  const body = S.withOrderAndLimit(S.unionAll(selects), branches.length === 0 ? [] : order, limit, offset)
  return { select: t.ctes === undefined ? body : S.withCtes(body, t.ctes.map((c) => cte(cx, c))), layout: { columns, value, tag } }
}

/**
 * A CTE's body: its branches selecting the columns `c0, c1, ...` of its pseudo-table. A branch
 * over one grouped generator is written as the GROUP BY itself (as a person writes TPC-H Q15's
 * `revenue0`), not as a select from the grouped derived table: SQLite evaluated the wrapped
 * form 3-4x slower.
 */
export function cte(cx: Cx, c: NCte): { readonly name: string; readonly select: S.Select } {
  const layout = plan(c.query.branches.map((b) => b.value))
  const names = c.def.columns.map((col) => col.name)
  const parts = c.query.branches.map((b, i) => select(cx, b, () => slots(cx, b.value, layout, i).map((expr, j) => ({ expr, alias: names[j]! })), true))
  return { name: c.def.name, select: S.unionAll(parts) }
}

/** The scalar expression of each slot of `v` laid out by `l` (`undefined` for JSON and lineage slots). */
export function slotExprs(v: NValue, l: Layout): (NExpr | undefined)[] {
  switch (l.k) {
    case 'scalar': return [v as NExpr]
    case 'coll': return [undefined]
    case 'lin': return l.packed === undefined ? l.slots.map(() => undefined) : [undefined]
    case 'rec': {
      const fields = (v as Extract<NValue, { k: 'rec' }>).fields
      return l.fields.flatMap(([n, fl], i) => slotExprs((fields[i]?.[0] === n ? fields[i]! : fields.find(([m]) => m === n)!)[1], fl))
    }
  }
}

/**
 * Rule "order by output column": an order key that is a yielded field (the very expression a
 * result column selects, in every branch at the same column) orders by that column instead of
 * by a second copy of the expression, so a subquery in a yielded field runs once per row. Bare
 * column references and constants are left as they are (ordering by them costs nothing), so
 * only computed keys (operators, aggregates, exists) go through the output column. For each
 * key, the column index, or `undefined`.
 */
export function orderByOutputColumn(t: NTop, value: Layout): (number | undefined)[] {
  if (t.directions.length === 0) return []
  const slotsOf = t.query.branches.map((b) => slotExprs(b.value, value))
  return t.directions.map((_, j) => {
    let at: number | undefined
    for (let i = 0; i < slotsOf.length; i++) {
      const key = t.orderKeys[i]![j]!
      if (key.k === 'col' || key.k === 'const') return undefined
      const c = slotsOf[i]!.indexOf(key)
      if (c < 0 || (at !== undefined && at !== c)) return undefined
      at = c
    }
    return at
  })
}

/** Column aliases: the field path of each slot (`employee.name`), `value` for a bare scalar. */
export function columnNames(l: Layout): string[] {
  const out: string[] = []
  const walk = (x: Layout, path: string) => {
    switch (x.k) {
      case 'rec':
        for (const [n, f] of x.fields) walk(f, path ? `${path}.${n}` : n)
        return
      case 'lin':
        if (x.packed !== undefined) out.push('#l')
        else x.slots.forEach((_, i) => out.push(`#l${i}`))
        return
      default:
        out.push(path || 'value')
    }
  }
  walk(l, '')
  // PostgreSQL truncates identifiers at 63 bytes; fall back to positions for long paths.
  return out.map((n, i) => (Buffer.byteLength(n) > 60 || out.indexOf(n) !== i ? `#c${i}` : n))
}

export function lower(t: NTop, hooks: DialectHooks): Lowered {
  return top(newContext(hooks), t)
}
