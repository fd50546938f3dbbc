/**
 * The scan of a comprehension derivation, by delta (`delta.ts`, `evaluate.ts`): the rows of
 * each table it reads written since the watermark (index ranges), then the comprehension with
 * one generator restricted to those rows at a time (`Q(ΔD, E) ∪ Q(D, ΔE)`), plus the stored rows
 * those rows fed (`lq_edge`). Its cost follows the number of changed rows, given indexes on the
 * join columns. A change to a table the comprehension reads inside `exists`, an aggregate or a
 * nested collection (or declared `{ lineage: false }`), a comprehension with `limit`, a code
 * change and a first fill evaluate the whole comprehension and compare every stored row (input
 * hashes show changes the revisions cannot). A `keys` scan (`get`, `status`) evaluates it
 * restricted to the addresses' rows (whole under `limit`).
 */
import type { Constant } from '../../query/ast.js'
import { judgeGone, judgeYielded } from '../causes.js'
import { chunks, forced, type Derivation, type Engine, type ScanFilter, type Task, type Work } from '../engine.js'
import { COMPOSITE_DELTA_KEYS, evaluateQuery, keyTuple, readsFor, restrictedToAddresses, restrictSite, type LineageQuery } from '../evaluate.js'
import { sourceFor, storedCauses } from '../revisions.js'
import type { Watermark } from '../sql/dialect.js'
import { changedRows, edgeTargets, metaRows } from '../sql/reads.js'

interface Changes {
  /** Key texts (roots) or addresses (derived) of rows written since the watermark and live. */
  readonly live: string[]
  /** Rows deleted since the watermark. */
  readonly gone: string[]
}

export async function scanQuery(engine: Engine, x: Derivation, filter: ScanFilter, clock: Watermark): Promise<Map<string, Work>> {
  const out = new Map<string, Work>()
  const reads = readsFor(x)
  let tasks: Map<string, Task>
  // The stored rows to compare with: every one, or those the changed rows feed plus the results.
  let candidates: string[] | 'all'
  if (filter.mode === 'since' && filter.wm.rev > 0 && !filter.codeChanged) {
    const changes = new Map<string, Changes>()
    for (const t of x.reads) {
      const c: Changes = { live: [], gone: [] }
      for (const r of await changedRows(engine.db, engine.d, sourceFor(engine, t), filter.wm)) (r.deleted ? c.gone : c.live).push(r.k)
      if (c.live.length + c.gone.length > 0) changes.set(t, c)
    }
    if (changes.size === 0) return out
    const keys = new Map([...changes].map(([t, c]) => [t, c.live.map((k) => keyTuple(engine, t, k))]))
    // Delta: Q(ΔD, E) ∪ Q(D, ΔE), one generator site restricted at a time.
    let queries: LineageQuery[] | undefined =
      !reads.limited && [...changes.keys()].every((t) => !reads.opaque.has(t)) && [...keys.values()].every((ks) => ks.every((k) => k !== undefined)) ? [] : undefined
    for (const [t, ks] of keys) {
      for (let site = 0; queries !== undefined && site < (reads.sites.get(t) ?? 0); site++) {
        // Composite keys become an OR of ANDs, which SQLite takes quadratic time to prepare: short lists.
        const width = engine.roots.get(t)?.def.key?.length ?? 1
        for (const part of chunks(ks as Constant[][], width === 1 ? engine.d.deltaKeys : Math.min(engine.d.deltaKeys, COMPOSITE_DELTA_KEYS))) {
          const qs = restrictSite(engine, x, t, site, part)
          if (qs === undefined) {
            queries = undefined
            break
          }
          queries.push(...qs)
        }
      }
    }
    if (queries !== undefined) {
      tasks = queries.length === 0 ? new Map() : await evaluateQuery(engine, x, clock, queries)
      const fed = new Set<string>(tasks.keys())
      for (const [t, c] of changes) for (const e of await edgeTargets(engine.db, engine.d, t, [...c.live, ...c.gone], x.name)) fed.add(e.dst_key)
      candidates = [...fed]
    } else {
      tasks = await evaluateQuery(engine, x, clock)
      candidates = 'all'
    }
  } else if (filter.mode === 'keys') {
    const restricted = restrictedToAddresses(engine, x, filter.keys)
    tasks = await evaluateQuery(engine, x, clock, restricted === undefined ? undefined : [restricted])
    candidates = [...filter.keys]
  } else {
    tasks = await evaluateQuery(engine, x, clock)
    candidates = 'all'
  }
  const wantedKeys = filter.mode === 'keys' ? new Set(filter.keys) : undefined
  const metas = await metaRows(engine.db, engine.d, x.name, candidates)
  const isRoot = (t: string) => engine.roots.has(t)
  for (const [addr, task] of tasks) {
    if (wantedKeys !== undefined && !wantedKeys.has(addr)) continue
    const m = metas.get(addr)
    const hashChanged = task.inputHash !== undefined && m?.lq_input_hash !== task.inputHash ? [...reads.opaque].sort() : undefined
    const v = judgeYielded(x, addr, m, task.inputs, isRoot, hashChanged, forced(filter))
    if (v !== undefined) out.set(addr, { addr, ...v, task })
  }
  const gone = [...metas.values()].filter((m) => !tasks.has(m.lq_key))
  if (gone.length > 0) {
    const recorded = await storedCauses(engine, x, gone)
    for (const m of gone) out.set(m.lq_key, { addr: m.lq_key, ...judgeGone(x, m.lq_key, recorded.get(m.lq_key) ?? []) })
  }
  return out
}

// ---------------------------------------------------------------- loading inputs
