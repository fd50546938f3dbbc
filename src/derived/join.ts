/**
 * `joinOnRoot`: the notes' J(GT, HT): rows of several derived tables of one root, joined on
 * that root ("parallel" rows, not a cross product), without writing the key equality by hand.
 */
import { LineageQueryError } from '../errors.js'
import { Q, type Query, type Table } from '../query/dsl.js'
import { derivedInfo, type DerivedTable } from './types.js'

type RowOfTable<T> = T extends DerivedTable<any, infer R> ? R : T extends Table<any, infer R, any> ? R : never
type KeyOfTable<T> = T extends Table<any, any, infer K> ? K : never

const ZIP: unique symbol = Symbol('lineage-query.joinOnRoot')

/** The parts of a `joinOnRoot` query (name -> derived table name), or `undefined`. */
export function zipParts(q: unknown): { as: string; table: string }[] | undefined {
  return typeof q === 'object' && q !== null ? (q as { [ZIP]?: { as: string; table: string }[] })[ZIP] : undefined
}

/**
 * A comprehension yielding, for every root row that has a row in each of the given derived
 * tables, a record of those rows under the given names. Use it as a derivation's `from`; each
 * result row has the address its parts share (one root row's key, or, when the parts are
 * rows of a comprehension such as a self-join, their list of root entries), and its
 * `ctx.lineage` lists those root rows. As a
 * `from`, the store reads it by address rather than as a query: the function gets each row
 * without `lq_key`, and a failed or blocked row in any part blocks the derived row.
 *
 * @example
 * ```ts
 * const checked = store.derive({
 *   name: 'checked', from: joinOnRoot({ ast: parsed, types: typed }),
 *   output: { ok: t.boolean }, fn: ({ ast, types }) => ({ ok: check(ast.tree, types.env) }),
 * })
 * // for ast in parsed, types in typed where ast.lq_key = types.lq_key yield { ast, types }
 * ```
 */
export function joinOnRoot<const T extends Readonly<Record<string, DerivedTable<string, any>>>>(tables: T): Query<{ [F in keyof T]: RowOfTable<T[F]> }, KeyOfTable<T[keyof T]>> {
  const names = Object.keys(tables)
  if (names.length < 2) throw new LineageQueryError('argument', `joinOnRoot expects at least two derived tables, e.g. joinOnRoot({ a: tableA, b: tableB }); got ${names.length}`)
  let root: string | undefined
  for (const n of names) {
    const info = derivedInfo(tables[n])
    if (info === undefined) throw new LineageQueryError('argument', `joinOnRoot: \`${n}\` is not a derived table (store.derive(...) returns one)`)
    if (!info.singleRoot) throw new LineageQueryError('argument', `joinOnRoot: \`${tables[n]!.name}\` reads several root tables (${info.roots.join(', ')}); joinOnRoot joins derived tables of one common root`)
    if (root === undefined) root = info.roots[0]
    else if (info.roots[0] !== root) {
      throw new LineageQueryError('argument', `joinOnRoot: \`${tables[names[0]!]!.name}\` comes from root \`${root}\` but \`${tables[n]!.name}\` comes from \`${info.roots[0]}\`; to combine different roots, write the join condition with Q.for/Q.where`)
    }
  }
  const go = (i: number, bound: Record<string, any>): Query<any, any> => {
    if (i === names.length) {
      const first = bound[names[0]!]
      const conds = names.slice(1).map((n) => Q.eq(first.lq_key, bound[n].lq_key))
      return Q.where(Q.and(...conds), Q.yield(bound))
    }
    const n = names[i]!
    return Q.for(tables[n]!, (row: any) => go(i + 1, { ...bound, [n]: row }))
  }
  const q = go(0, {}) as Query<{ [F in keyof T]: RowOfTable<T[F]> }, KeyOfTable<T[keyof T]>>
  Object.defineProperty(q, ZIP, { value: Object.freeze(names.map((n) => ({ as: n, table: tables[n]!.name }))), enumerable: false })
  return q
}
