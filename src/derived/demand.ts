/**
 * On demand (`store.get`): bring one derived row up to date, and first the upstream rows it
 * reads. Upstream tables addressed by root keys are demanded row by row (the same address, or
 * the address's root keys); upstream comprehension tables, whose rows this one reads cannot be
 * told from its address, are caught up whole by an incremental refresh (its cost follows their
 * changed rows). Then the row is scanned by key and computed or deleted as a refresh would.
 */
import { deleteRows } from './delete.js'
import { ancestors, assertNever, type Derivation, type Engine } from './engine.js'
import { keyAddressed } from './evaluate.js'
import { loadTasks } from './inputs.js'
import { keyText, lineageOfAddress } from './keys.js'
import { throwIfAborted, type Op } from './ops.js'
import { leftBehind, refreshTable, runBatch } from './refresh.js'
import { scan } from './scan/index.js'
import { emptyTableReport, type TableReport } from './types.js'
import { lostKeys, splitUnkeyable } from './unkeyable.js'
import { writeResults } from './write.js'

/** Compute the row at `addr` of `x` if missing or stale, after the upstream rows it needs. */
export async function demand(engine: Engine, x: Derivation, addr: string, op: Op): Promise<void> {
  if (x.source.kind === 'query') {
    for (const r of x.reads) {
      const u = engine.derivations.get(r)
      if (u !== undefined && !keyAddressed(engine, u)) await catchUp(engine, u, op)
    }
  }
  for (const [u, a] of upstreamCandidates(engine, x, addr)) await demand(engine, u, a, op)
  throwIfAborted(op)
  const clock = await engine.d.readClock(engine.db)
  const work = (await scan(engine, x, { mode: 'keys', keys: [addr] }, clock)).get(addr)
  if (work === undefined) return
  if (work.action === 'delete') {
    await deleteRows(engine, x, [addr], {})
    return
  }
  const { keyable, failed } = splitUnkeyable(x, [work])
  await writeResults(engine, x, failed, emptyTableReport())
  const tasks = await loadTasks(engine, x, keyable)
  await runBatch(engine, x, tasks, emptyTableReport(), op)
  await writeResults(engine, x, await lostKeys(engine, x, keyable, tasks), emptyTableReport())
  // Another worker process holds the row: wait for its result (or its lease to expire), then look again.
  await leftBehind(engine, x, op, emptyTableReport(), () => demand(engine, x, addr, op))
}

/** Refresh `u` and every derived table it reads, incrementally, in dependency order. */
async function catchUp(engine: Engine, u: Derivation, op: Op): Promise<void> {
  const wanted = ancestors(engine, u.name)
  const report: Record<string, TableReport> = {}
  for (const name of engine.order) {
    const y = engine.derivations.get(name)
    if (y === undefined || !wanted.has(name)) continue
    report[name] = emptyTableReport()
    await refreshTable(engine, y, false, undefined, report, op)
  }
}

/**
 * Upstream (derived table, address) pairs a row at `addr` of `x` may read, for upstream
 * tables addressed by root keys (`keyAddressed`); comprehension tables are caught up whole.
 */
function upstreamCandidates(engine: Engine, x: Derivation, addr: string): [Derivation, string][] {
  const source = x.source
  switch (source.kind) {
    case 'root':
      return []
    case 'derived':
      return [[engine.derivations.get(source.table)!, addr]]
    case 'zip':
      return source.parts.map((p) => [engine.derivations.get(p.table)!, addr])
    case 'query': {
      const entries = lineageOfAddress(addr, x.roots)
      const out: [Derivation, string][] = []
      for (const r of x.reads) {
        const u = engine.derivations.get(r)
        if (u === undefined || !keyAddressed(engine, u)) continue
        for (const k of new Set(entries.filter((e) => e.table === u.roots[0]).map((e) => keyText(e.key)))) out.push([u, k])
      }
      return out
    }
    default:
      return assertNever(source, 'source kind')
  }
}
