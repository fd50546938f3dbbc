/**
 * The scan of a `joinOnRoot` derivation: the candidate addresses are the rows of any part
 * written since the watermark (index ranges, as for one table), then each candidate is judged
 * from the parts' current revisions and the revisions recorded in the stored row.
 */
import { judgeAddressed } from '../causes.js'
import { chunks, forced, type Derivation, type Engine, type ScanFilter, type Work } from '../engine.js'
import { parseInputs } from '../keys.js'
import { currentRevisions, sourceFor } from '../revisions.js'
import { metaKeys, metaRows, sourceKeys } from '../sql/reads.js'
import { KEY_CHUNK } from '../sql/text.js'

export async function scanZip(engine: Engine, x: Derivation, parts: readonly { readonly table: string }[], filter: ScanFilter): Promise<Map<string, Work>> {
  const { db, d } = engine
  const srcs = parts.map((p) => sourceFor(engine, p.table))
  let keys: string[]
  if (filter.mode === 'keys') keys = [...filter.keys]
  else {
    const set = new Set<string>()
    for (const s of srcs) for (const k of await sourceKeys(db, d, s, filter.mode === 'since' ? filter.wm : undefined)) set.add(k)
    const stored = filter.mode === 'all' ? await metaKeys(db, x.name) : filter.codeChanged ? await metaKeys(db, x.name, x.codeVersion) : []
    for (const k of stored) set.add(k)
    keys = [...set]
  }
  const out = new Map<string, Work>()
  for (const part of chunks(keys, KEY_CHUNK)) {
    const current = new Map<string, Map<string, number>>()
    for (const s of srcs) current.set(s.name, (await currentRevisions(engine, s.name, part)).revs)
    const metas = await metaRows(db, d, x.name, part)
    for (const addr of part) {
      const meta = metas.get(addr)
      const recorded = new Map(parseInputs(meta?.lq_inputs).map(([t, , r]) => [t, r]))
      const inputs = srcs.map((s) => ({ table: s.name, key: addr, isRoot: s.isRoot, recorded: meta === undefined ? undefined : (recorded.get(s.name) ?? 0), current: current.get(s.name)!.get(addr) }))
      const v = judgeAddressed(x, addr, meta === undefined ? undefined : { codeVersion: meta.lq_code_version }, inputs, forced(filter))
      if (v !== undefined) out.set(addr, { addr, ...v })
    }
  }
  return out
}
