/**
 * Store maintenance: derived tables no declaration names (`undeclared`, `drop`), and collecting
 * tombstones (`collect`): revision rows of deleted root rows and metadata rows of deleted
 * derived rows that every watermark has seen, and the expired claims of dead workers.
 */
import { LineageQueryError } from '../errors.js'
import type { Engine } from './engine.js'
import { allWatermarks, derivedNames } from './sql/reads.js'
import { claimDialects } from './sql/claims.js'
import { startupDialects } from './sql/index.js'
import { dropDerived, sweepTombstones, type SweepTarget } from './sql/writes.js'

/** Derived tables in the store that `engine` does not declare, sorted. */
export async function undeclared(engine: Engine): Promise<string[]> {
  return (await derivedNames(engine.db)).filter((n) => !engine.derivations.has(n))
}

/** Remove an undeclared derived table (see `Store.drop`). */
export async function drop(engine: Engine, name: string): Promise<void> {
  if (!(await derivedNames(engine.db)).includes(name)) {
    throw new LineageQueryError('argument', `store.drop: \`${name}\` is not a derived table of this store; undeclared derived tables: ${(await undeclared(engine)).join(', ') || '(none)'}`, { table: name })
  }
  await startupDialects[engine.d.name].writeTransaction(engine.db, (trx) => dropDerived(trx, name))
}

/**
 * Remove tombstones written at or before `olderThan` and below every watermark (and, on
 * PostgreSQL, committed in every watermark's snapshot): of the roots and derived tables
 * `engine` declares; and claim rows whose lease ended at least `leaseMs` ago (left by workers
 * that died: an expired claim is free, but its row stays until taken over or swept; a worker
 * whose lease ended that long ago lost its rows anyway, see `leases.ts`). Returns how many of
 * each were removed.
 */
export async function collect(engine: Engine, olderThan: number, leaseMs: number): Promise<{ revisions: number; tombstones: number; claims: number }> {
  // Revisions up to `horizon`: not after `olderThan`, and at or below every watermark (seen).
  let horizon = olderThan
  const snapshots = new Set<string>()
  for (const w of await allWatermarks(engine.db)) {
    horizon = Math.min(horizon, w.rev)
    if (w.xmin !== null) snapshots.add(w.xmin)
  }
  const out = { revisions: 0, tombstones: 0, claims: await claimDialects[engine.d.name].sweep(engine.db, leaseMs) }
  if (horizon <= 0) return out
  const sd = startupDialects[engine.d.name]
  const sweep = (target: SweepTarget) => sd.writeTransaction(engine.db, (trx) => sweepTombstones(trx, engine.d, target, horizon, [...snapshots]))
  for (const root of engine.roots.keys()) out.revisions += await sweep({ kind: 'revisions', root })
  for (const x of engine.derivations.values()) out.tombstones += await sweep({ kind: 'tombstones', derived: x.name })
  return out
}
