/**
 * One derived table's stale and missing rows brought up to date, row by row with `store.get`
 * (used by `lineage-query refresh --table T` and the explorer's "refresh table" action).
 */
import type { RefreshReport, Store } from '../derived/index.js'
import type { ProgressEvent } from './progress.js'

/**
 * `refresh --table T`: the stale and missing rows of T, each brought up to date with
 * `store.get` (which refreshes the upstream rows it needs first), one at a time; stops between
 * rows when `signal` fires. Counts as `store.refresh` reports them (computed = became fresh).
 */
export async function refreshOne(store: Store, table: string, signal: AbortSignal, onProgress: (e: ProgressEvent) => void): Promise<RefreshReport> {
  const started = performance.now()
  const todo = await store.stale(table)
  const counts = { computed: 0, unchanged: 0, failed: 0, blocked: 0, deleted: 0, superseded: 0 }
  const event = (phase: ProgressEvent['phase'], done: number): void => onProgress({ table, tableIndex: 0, tableCount: 1, phase, done, total: todo.length })
  event('scan', 0)
  for (const [i, row] of todo.entries()) {
    if (signal.aborted) break
    let r: Awaited<ReturnType<Store['get']>>
    try {
      r = await (store.get as (t: string, k: unknown, o?: { signal?: AbortSignal }) => ReturnType<Store['get']>)(table, row.key, { signal })
    } catch (e) {
      if (signal.aborted) break // get stopped between its steps; what it stored stays stored
      throw e
    }
    if (r.state === 'fresh') counts.computed += 1
    else if (r.state === 'failed') counts.failed += 1
    else if (r.state === 'blocked') counts.blocked += 1
    event('batch', i + 1)
  }
  if (!signal.aborted) event('done', todo.length)
  return { tables: { [table]: counts }, totals: counts, durationMs: performance.now() - started }
}
