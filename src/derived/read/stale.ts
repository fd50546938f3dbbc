/**
 * `store.stale()`: every stale or missing row, with causes, driven by the revision watermarks:
 * rows written since each table's last refresh, rows computed with another code version, and,
 * transitively in dependency order, rows downstream of those (`upstream-stale`: the same address
 * for tables addressed alike, the lineage edges for comprehensions).
 */
import { ancestors, type Derivation, type Engine } from '../engine.js'
import { addressValue } from '../keys.js'
import { scan } from '../scan/index.js'
import { edgeTargets, liveMetaKeys, readWatermark } from '../sql/reads.js'
import type { Cause, RowStatus } from '../types.js'

/** The stale and missing rows of `target` (and of every table it reads), or of every table. */
export async function staleRows(engine: Engine, target: Derivation | undefined, leases?: (table: string) => Promise<ReadonlyMap<string, Lease>>): Promise<RowStatus[]> {
  const wanted = target === undefined ? undefined : ancestors(engine, target.name)
  const dirty = new Map<string, Map<string, RowStatus>>()
  for (const name of engine.order) {
    const x = engine.derivations.get(name)
    if (x === undefined || (wanted !== undefined && !wanted.has(name))) continue
    const clock = await engine.d.readClock(engine.db)
    const wm = await readWatermark(engine.db, x.name)
    const work = await scan(engine, x, { mode: 'since', wm: wm.wm, codeChanged: wm.applied !== x.codeVersion }, clock)
    const mine = new Map<string, RowStatus>()
    for (const w of work.values()) mine.set(w.addr, { table: name, key: addressValue(w.addr), state: w.stored ? 'stale' : 'missing', causes: w.causes })
    const merge = (addr: string, cause: Cause, state: 'stale' | 'missing') => {
      const cur = mine.get(addr)
      if (cur === undefined) mine.set(addr, { table: name, key: addressValue(addr), state, causes: [cause] })
      else mine.set(addr, { ...cur, causes: [...cur.causes, cause] })
    }
    for (const u of x.reads) {
      const ups = dirty.get(u)
      if (ups === undefined || ups.size === 0) continue
      if (x.source.kind !== 'query') {
        // The same address: stale when stored, missing when the upstream row is missing too.
        const keys = [...ups.keys()]
        const stored = await liveMetaKeys(engine.db, engine.d, name, keys)
        for (const k of keys) {
          const cause: Cause = { kind: 'upstream-stale', table: u, key: addressValue(k) }
          if (stored.has(k)) merge(k, cause, 'stale')
          else if (ups.get(k)!.state === 'missing') merge(k, cause, 'missing')
        }
      } else {
        for (const e of await edgeTargets(engine.db, engine.d, u, [...ups.keys()], name)) merge(e.dst_key, { kind: 'upstream-stale', table: u, key: addressValue(e.src_key) }, 'stale')
      }
    }
    dirty.set(name, mine)
  }
  const out: RowStatus[] = []
  for (const [name, rows] of dirty) {
    if (target !== undefined && name !== target.name) continue
    // Rows a worker is computing now carry its lease.
    const held = rows.size === 0 || leases === undefined ? new Map<string, Lease>() : await leases(name)
    for (const [addr, r] of rows) {
      const c = held.get(addr)
      out.push(c === undefined ? r : { ...r, lease: c })
    }
  }
  return out
}

type Lease = { readonly owner: string; readonly expires: number }
