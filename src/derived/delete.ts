/**
 * Deleting derived rows whose input is gone, and everything they fed. A deleted row's data row
 * goes; its metadata row stays as a tombstone (state `deleted`, a new `lq_changed_rev`), so
 * derived tables that read it but are not declared in this store see the deletion by their
 * watermark scan.
 */
import { retryBusy } from './busy.js'
import { BUSY_WAIT_MS, chunks, readersOf, type Derivation, type Engine } from './engine.js'
import { edgeTargets } from './sql/reads.js'
import { exec, jsonBatch, KEY_CHUNK } from './sql/text.js'
import { deleteDataSql, deleteEdgesSql, tombstoneSql } from './sql/writes.js'
import type { TableReport } from './types.js'

/**
 * Delete rows of `x` and, transitively, every derived row of this store they feed, in one
 * transaction. Counts the rows deleted per table in `report`. A deleted row's data row goes;
 * its metadata row stays as a tombstone (state `deleted`, a new `lq_changed_rev`), so derived
 * tables that read it but are not declared in this store (another program's) see the deletion
 * at their next refresh.
 *
 * `writtenAt`: delete the rows of `x` only if they are still the ones stored by the writes of
 * those revisions (`lq_computed_rev`), and cascade only from those (the re-check after a
 * write, which must not delete a newer row another caller stored meanwhile).
 */
export async function deleteRows(engine: Engine, x: Derivation, addrs: readonly string[], report: Record<string, TableReport>, writtenAt?: readonly number[]): Promise<void> {
  if (addrs.length === 0) return
  const { d } = engine
  // Counted per attempt and added once committed (a busy database makes the transaction run again).
  let counts: Record<string, number> = {}
  await retryBusy(d, `deleting ${addrs.length} rows of \`${x.name}\``, engine.busyMs ?? BUSY_WAIT_MS, () => engine.db.transaction().execute(async (trx) => {
    counts = {}
    const rev = await d.nextRev(trx)
    const queue: [Derivation, string[], readonly number[] | undefined][] = [[x, [...addrs], writtenAt]]
    while (queue.length > 0) {
      const [t, requested, only] = queue.shift()!
      const keys: string[] = only === undefined ? requested : []
      let n = 0
      for (const part of chunks(requested, KEY_CHUNK)) {
        const gone = (await exec<{ lq_key: string }>(trx, tombstoneSql(d, t.name, only), [rev, rev, jsonBatch(part, d)])).map((r) => r.lq_key)
        n += gone.length
        if (only !== undefined) keys.push(...gone)
        const list = jsonBatch(only === undefined ? part : gone, d)
        await exec(trx, deleteDataSql(d, t.name), [list])
        await exec(trx, deleteEdgesSql(d), [t.name, list])
      }
      if (keys.length === 0) continue
      counts[t.name] = (counts[t.name] ?? 0) + n
      for (const y of readersOf(engine, t.name)) {
        if (y.source.kind !== 'query') queue.push([y, keys, undefined])
        else {
          const next = new Set((await edgeTargets(trx, d, t.name, keys, y.name)).map((e) => e.dst_key))
          if (next.size > 0) queue.push([y, [...next], undefined])
        }
      }
    }
  }))
  for (const [name, n] of Object.entries(counts)) {
    const rep = report[name]
    if (rep !== undefined) rep.deleted += n
  }
}

