/**
 * The scan of a derivation over one table (a root, or a derived table). The derived row and its
 * input share an address, and the input's revision lives in one indexed column (`lq_rev_R.rev`
 * for a root, `lq_meta_F.lq_changed_rev` for a derived table), so the scan (`scanPairs`) costs
 * the number of input rows written since the watermark (an index range on `rev`), plus, only
 * when the code version changed, the rows computed with another version.
 */
import { judgeAddressed, type InputState } from '../causes.js'
import { coversAll, forced, type Derivation, type Engine, type ScanFilter, type Work } from '../engine.js'
import { addressValue } from '../keys.js'
import { sourceFor } from '../revisions.js'
import { anyStored, liveSourceRows, scanPairs, type PairFilter, type PairRow } from '../sql/reads.js'
import type { Cause } from '../types.js'

/** What a scan saw besides its work: filled by `scan` when passed. */
export interface ScanStats {
  /** Whether the scan read every input row (mode `all`, or a watermark never moved). */
  covered: boolean
  /** Live input rows seen. */
  live: number
}

export interface ScanOptions {
  /** Work items without causes (`refresh` needs none); default false. */
  readonly noCauses?: boolean
  /** Filled with what the scan saw. */
  readonly stats?: ScanStats
}

export const NO_CAUSES: Cause[] = Object.freeze([]) as unknown as Cause[]

export async function scanTable(engine: Engine, x: Derivation, input: string, filter: ScanFilter, options: ScanOptions): Promise<Map<string, Work>> {
  const { db, d } = engine
  const s = sourceFor(engine, input)
  const stats = options.stats
  // Every input row is wanted (a first refresh, or mode all): read them in key order, so a
  // first fill writes its rows in index order.
  const covered = coversAll(filter)
  if (stats !== undefined) stats.covered = covered
  const out = new Map<string, Work>()
  if (covered && !(await anyStored(db, x.name))) {
    // Nothing stored yet: every live input row is missing; no join with the (empty) metadata.
    const rows = await liveSourceRows(db, s)
    if (stats !== undefined) stats.live = rows.length
    for (const r of rows) {
      const causes = options.noCauses === true ? NO_CAUSES : [{ kind: 'missing' as const, table: x.name, key: addressValue(r.k) }]
      out.set(r.k, { addr: r.k, action: 'compute', stored: false, rev: r.rev, causes })
    }
    return out
  }
  const pf: PairFilter = filter.mode === 'since' ? { mode: 'since', wm: filter.wm, otherThan: filter.codeChanged ? x.codeVersion : undefined } : filter
  const pairs = new Map<string, PairRow>()
  for (const p of await scanPairs(db, d, s, x.name, pf)) pairs.set((p.k ?? p.mk)!, p)
  if (stats !== undefined) {
    let live = 0
    for (const p of pairs.values()) if (p.k !== null && !p.deleted) live++
    stats.live = live
  }
  for (const [addr, p] of pairs) {
    const present = p.k !== null && !p.deleted
    const stored = p.mk === null ? undefined : { codeVersion: p.mcv! }
    const inputs: InputState[] = [{ table: s.name, key: addr, isRoot: s.isRoot, recorded: p.mk === null ? undefined : p.mrev, current: present ? p.rev : undefined }]
    const v = judgeAddressed(x, addr, stored, inputs, forced(filter))
    if (v === undefined) continue
    out.set(addr, v.action === 'delete' ? { addr, ...v } : { addr, ...v, rev: p.rev })
  }
  return out
}
