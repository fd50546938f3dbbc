/**
 * Lowering's state and small helpers shared by its phases: the dialect hooks, the grouped
 * generators being lowered in place, the layouts of groups' nested collections, and the FROM
 * aliases of shared `Q.let` values. One `Cx` per statement (`lower.ts`).
 */
import type { DialectHooks } from '../dialect.js'
import type { CollLayout } from '../layout.js'
import type { NExpr } from '../normal.js'
import type { ScalarKind } from '../schema.js'
import * as S from '../sql-nodes.js'

/** A grouped generator lowered in place (`select keys, aggs from ... group by ...`): its columns as expressions. */
export type Subst = (col: string) => S.Node

/** The state of lowering one statement. */
export interface Cx {
  readonly h: DialectHooks
  /** Grouped generators being lowered in place: alias -> their columns' expressions. */
  readonly subst: Map<string, Subst>
  /** The layouts of the nested collections computed as group columns (`alias.col`), with their branch offset. */
  readonly viaLayouts: Map<string, { readonly l: CollLayout; readonly offset: number; readonly id: string }>
  /** The FROM aliases of shared `Q.let` values, by id. */
  readonly shared: Map<number, string>
  /**
   * The shared `Q.let` values readable where lowering is (computed by a FROM item of an
   * enclosing select that this position can see), by id: how many such items there are.
   */
  readonly visible: Map<number, number>
}

export function newContext(h: DialectHooks): Cx {
  return { h, subst: new Map(), viaLayouts: new Map(), shared: new Map(), visible: new Map() }
}

export function param(cx: Cx, value: string | number | boolean, kind: ScalarKind, scale = 0): S.Node {
  const v = kind === 'decimal' ? cx.h.decimalToDb(String(value), scale) : cx.h.toDb(value)
  const p = cx.h.constantLiteral(v) ?? S.param(v)
  const cast = cx.h.paramCast(kind)
  return cast === undefined ? p : S.cast(p, cast as 'bigint')
}

/** NULL of a given type: cast where the dialect needs union columns typed. */
export function typedNull(cx: Cx, kind: ScalarKind): S.Node {
  return cx.h.typedNull(kind)
}

export function stringOrder(cx: Cx, n: S.Node, e: NExpr): S.Node {
  return e.type.kind === 'string' && cx.h.binaryCollation !== undefined ? S.collate(n, cx.h.binaryCollation) : n
}

/**
 * A subquery's JSON result placed inside another JSON constructor: SQLite passes JSON between
 * functions as text, so it needs `json(...)` there (and only there: elsewhere it costs a parse).
 */
export function embedJson(cx: Cx, n: S.Node): S.Node {
  return cx.h.jsonAsText ? S.fn('json', [n]) : n
}

/** The FROM alias of a shared `Q.let` value: `#s0`, `#s1`, ... in order of first use in the statement. */
export function sharedAlias(cx: Cx, id: number): string {
  let a = cx.shared.get(id)
  if (a === undefined) cx.shared.set(id, (a = `#s${cx.shared.size}`))
  return a
}

/** Make the shared values `ids` readable (`by` 1) or no longer (`by` -1). */
export function seeShared(cx: Cx, ids: readonly number[], by: 1 | -1): void {
  for (const id of ids) {
    const n = (cx.visible.get(id) ?? 0) + by
    if (n === 0) cx.visible.delete(id)
    else cx.visible.set(id, n)
  }
}

/** `f()` with the shared values `ids` readable. */
export function withShared<T>(cx: Cx, ids: readonly number[], f: () => T): T {
  seeShared(cx, ids, 1)
  try {
    return f()
  } finally {
    seeShared(cx, ids, -1)
  }
}

/** `f()` with the shared values `ids` hidden (a derived table in FROM cannot read the FROM items beside it). */
export function withoutShared<T>(cx: Cx, ids: readonly number[], f: () => T): T {
  seeShared(cx, ids, -1)
  try {
    return f()
  } finally {
    seeShared(cx, ids, 1)
  }
}
