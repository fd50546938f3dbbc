/**
 * `store.affected(root, key)`: every derived row fed, transitively, by one root row, computed or
 * not, in dependency order, consistent with `stale()`.
 */
import type { Constant } from '../../query/ast.js'
import { assertNever, type Derivation, type Engine } from '../engine.js'
import { evaluateQuery, keyTuple, readsFor, restrictSite, type LineageQuery } from '../evaluate.js'
import { readersOf } from '../engine.js'
import { addressValue } from '../keys.js'
import type { Watermark } from '../sql/dialect.js'
import { edgeTargets, liveMetaKeys, metaRows, rootFanOut } from '../sql/reads.js'
import type { SourceRow } from '../types.js'

/**
 * Every derived row fed, transitively, by one root row: `[{ table, key }]` in dependency
 * order (`key` is each row's address in user form), whether computed yet or not, so it agrees
 * with `stale()`:
 *
 * - a derivation over one table (or `joinOnRoot`): the row at the same address when it is
 *   stored, or when its input rows exist (a row not yet computed: `stale()` lists it missing);
 * - a derivation over a comprehension: the stored rows `lq_edge` says the row fed, plus, when
 *   the root row was written since the table's last refresh, the rows the comprehension now
 *   yields from it (its generators over the root restricted to the row: rows not computed
 *   yet, or whose lineage changed);
 * - a comprehension that reads the root outside its generators (inside an aggregate, `exists`,
 *   a nested collection, or `{ lineage: false }`) or has `limit`: every one of its rows may
 *   depend on any root row, so all of its stored rows, plus, when the root row was written
 *   since its last refresh, every row of its current result.
 *
 * Rows of a comprehension over derived rows that are not computed yet are not known (their
 * upstream rows do not exist yet); they appear once those are computed.
 */
export async function affectedRows(engine: Engine, rootName: string, rootKey: string): Promise<SourceRow[]> {
  const found = new Map<string, Set<string>>()
  // The first hop, from the root row to the tables that read its root, in one statement.
  const first = await rootFanOut(engine.db, engine.d, rootName, rootKey, readersOf(engine, rootName).map((y) => ({ name: y.name, query: y.source.kind === 'query' })))
  const frontier = new Map<string, Set<string>>([[rootName, new Set([rootKey])]])
  // Keys of each table that exist, or would once computed (not necessarily stored).
  const present = new Map<string, Set<string>>([[rootName, first.live ? new Set([rootKey]) : new Set()]])
  let clock: Watermark | undefined
  const clockNow = async () => (clock ??= await engine.d.readClock(engine.db))
  for (const name of engine.order) {
    const keys = frontier.get(name)
    if (keys === undefined || keys.size === 0) continue
    const atRoot = name === rootName
    for (const y of readersOf(engine, name)) {
      const hit = frontier.get(y.name) ?? new Set<string>()
      const live = present.get(y.name) ?? new Set<string>()
      const take = (k: string, alive: boolean) => {
        hit.add(k)
        if (alive) live.add(k)
      }
      // Rows stored now: the same address, or the lineage edges of a comprehension.
      if (y.source.kind !== 'query') {
        const stored = atRoot ? (first.stored.has(y.name) ? [rootKey] : []) : await liveMetaKeys(engine.db, engine.d, y.name, [...keys])
        for (const k of stored) take(k, true)
      } else {
        const reached = atRoot ? (first.edges.get(y.name) ?? []) : (await edgeTargets(engine.db, engine.d, name, [...keys], y.name)).map((e) => e.dst_key)
        for (const k of reached) take(k, false)
      }
      // Rows not computed yet.
      const source = y.source
      switch (source.kind) {
        case 'root':
        case 'derived':
          for (const k of present.get(name) ?? []) take(k, true)
          break
        case 'zip':
          for (const k of present.get(name) ?? []) {
            let all = true
            for (const p of source.parts.map((part) => part.table)) {
              if (p === name || present.get(p)?.has(k) === true) continue
              if (!(await liveMetaKeys(engine.db, engine.d, p, [k])).has(k)) all = false
            }
            if (all) take(k, true)
          }
          break
        case 'query':
          // Rows a root row written since the table's last refresh feeds now (see `fedByRoot`).
          if (atRoot) {
            const wm = first.watermarks.get(y.name) ?? { rev: 0, xmin: null }
            const changed = first.live && first.rev !== undefined && engine.d.changedSince(first.rev, first.xid, wm) ? [rootKey] : []
            for (const k of await fedByRoot(engine, y, name, changed, clockNow)) take(k, true)
          }
          break
        default:
          assertNever(source, 'source kind')
      }
      frontier.set(y.name, hit)
      present.set(y.name, live)
      found.set(y.name, hit)
    }
  }
  const out: SourceRow[] = []
  for (const name of engine.order) for (const k of found.get(name) ?? []) out.push({ table: name, key: addressValue(k) })
  return out
}

/**
 * For `affected`: the addresses of `x` that rows `changed` of root `t` feed in the current
 * data, computed or not: the rows of the comprehension with its generators over `t` restricted
 * to them (one site at a time). `changed`: the live keys written since `x`'s watermark (the
 * rows of older keys were computed, and `lq_edge` has them). A comprehension that reads `t` outside
 * its generators (inside an aggregate, `exists`, a nested collection, or `{ lineage: false }`)
 * or has `limit`: every one of its rows may depend on any row of `t`, so every address of its
 * whole evaluation when one of the keys was written since the watermark, plus every stored row.
 */
async function fedByRoot(engine: Engine, x: Derivation, t: string, changed: readonly string[], clockNow: () => Promise<Watermark>): Promise<Set<string>> {
  const out = new Set<string>()
  const reads = readsFor(x)
  const whole = reads.opaque.has(t) || reads.limited
  if (whole) for (const k of (await metaRows(engine.db, engine.d, x.name, 'all')).keys()) out.add(k)
  if (changed.length === 0) return out
  const clock = await clockNow() // read only when something is evaluated
  if (whole) {
    for (const k of (await evaluateQuery(engine, x, clock)).keys()) out.add(k)
    return out
  }
  const tuples = changed.map((k) => keyTuple(engine, t, k))
  const queries: LineageQuery[] = []
  for (let site = 0; site < (reads.sites.get(t) ?? 0); site++) {
    const qs = tuples.every((k) => k !== undefined) ? restrictSite(engine, x, t, site, tuples as Constant[][]) : undefined
    if (qs === undefined) {
      for (const k of (await evaluateQuery(engine, x, clock)).keys()) out.add(k)
      return out
    }
    queries.push(...qs)
  }
  if (queries.length > 0) for (const k of (await evaluateQuery(engine, x, clock, queries)).keys()) out.add(k)
  return out
}

