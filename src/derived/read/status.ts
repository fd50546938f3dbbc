/**
 * Read models of one row: its status with causes (`status`), what `get` returns once it is up
 * to date (`rowResult`), and a root row's revision (`revision`).
 */
import { Q, type Query } from '../../query/dsl.js'
import { run } from '../../query/run.js'
import { blockedCause, errorCause, makesStale, rowStatus } from '../causes.js'
import { assertNever, type Derivation, type Engine } from '../engine.js'
import { readsFor } from '../evaluate.js'
import { withoutKey } from '../inputs.js'
import { addressValue, lineageOfAddress, parseInputs } from '../keys.js'
import { storedCauses } from '../revisions.js'
import { scan } from '../scan/index.js'
import { metaRows, revisionRow, type MetaRow } from '../sql/reads.js'
import type { Cause, GetResult, RowStatus } from '../types.js'

/**
 * The state of the row at `addr` of `x` and why. Upstream rows that are stale make it stale too
 * (cause `upstream-stale`); `memo` shares upstream statuses within one call.
 */
export async function status(engine: Engine, x: Derivation, addr: string, memo: Map<string, Promise<RowStatus>> = new Map()): Promise<RowStatus> {
  const memoKey = `${x.name}\u0000${addr}`
  const hit = memo.get(memoKey)
  if (hit !== undefined) return hit
  const p = statusUncached(engine, x, addr, memo)
  memo.set(memoKey, p)
  return p
}

async function statusUncached(engine: Engine, x: Derivation, addr: string, memo: Map<string, Promise<RowStatus>>): Promise<RowStatus> {
  const meta = (await metaRows(engine.db, engine.d, x.name, [addr])).get(addr)
  let causes: Cause[]
  // A comprehension row's causes from its recorded inputs, without evaluating it; unless the
  // comprehension reads tables outside its generators, whose changes only its evaluation shows.
  if (x.source.kind === 'query' && meta !== undefined && readsFor(x).opaque.size === 0) {
    causes = (await storedCauses(engine, x, [meta])).get(addr) ?? []
  } else {
    const clock = await engine.d.readClock(engine.db)
    causes = (await scan(engine, x, { mode: 'keys', keys: [addr] }, clock)).get(addr)?.causes ?? []
  }
  for (const [u, a] of upstreamRows(engine, x, addr, meta)) {
    if (makesStale(await status(engine, u, a, memo))) causes.push({ kind: 'upstream-stale', table: u.name, key: addressValue(a) })
  }
  return rowStatus(x.name, addr, meta, causes)
}

/** The upstream (derived table, address) rows a stored row read: the same address, or its recorded derived inputs. */
function upstreamRows(engine: Engine, x: Derivation, addr: string, meta: MetaRow | undefined): [Derivation, string][] {
  const source = x.source
  switch (source.kind) {
    case 'derived':
      return [[engine.derivations.get(source.table)!, addr]]
    case 'zip':
      return source.parts.map((p) => [engine.derivations.get(p.table)!, addr])
    case 'root':
    case 'query':
      return meta === undefined ? [] : parseInputs(meta.lq_inputs).flatMap(([t, k]): [Derivation, string][] => (engine.derivations.has(t) ? [[engine.derivations.get(t)!, k]] : []))
    default:
      return assertNever(source, 'source kind')
  }
}

/** What `get` returns for the row at `addr` of `x`, as stored. */
export async function rowResult(engine: Engine, x: Derivation, addr: string): Promise<GetResult<unknown>> {
  const meta = (await metaRows(engine.db, engine.d, x.name, [addr])).get(addr)
  if (meta === undefined) return { state: 'missing', causes: [{ kind: 'no-input', table: x.name, key: addressValue(addr) }] }
  if (meta.lq_state === 'failed') {
    const e = JSON.parse(meta.lq_error ?? '{}') as { message?: string; stack?: string | null }
    return { state: 'failed', error: { message: e.message ?? '', stack: e.stack ?? undefined }, causes: [errorCause(x.name, meta)] }
  }
  if (meta.lq_state === 'blocked') return { state: 'blocked', causes: [blockedCause(meta)] }
  const rows = await run(engine.db, Q.for(x.table, (r: any) => Q.where(Q.eq(r.lq_key, addr), Q.yield(r))) as Query<Record<string, unknown>, never>)
  const row = rows[0] as Record<string, unknown> | undefined
  if (row === undefined) return { state: 'missing', causes: [{ kind: 'missing', table: x.name, key: addressValue(addr) }] }
  return { state: 'fresh', value: withoutKey(row), lineage: lineageOfAddress(addr, x.roots) }
}

/** The current revision of a root row (key text), or undefined when it has none (never written, or deleted). */
export async function revision(engine: Engine, root: string, key: string): Promise<number | undefined> {
  const row = await revisionRow(engine.db, engine.d, root, key)
  return row === undefined || row.deleted ? undefined : row.rev
}
