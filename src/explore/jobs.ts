/**
 * The explorer's refresh actions as background jobs the page polls: one row (`store.get`), one
 * table (its stale and missing rows, row by row, as `lineage-query refresh --table`), or every
 * table (`store.refresh`), each with its latest progress report. Jobs are kept in memory for the
 * server's lifetime (the last `KEEP` finished ones).
 */
import { LineageQueryError, showValue } from '../errors.js'
import type { Store } from '../derived/index.js'
import { refreshOne } from '../cli/refresh-table.js'
import { openLineageTracker, type OpenLineageOptions } from '../openlineage/emit.js'

export type JobRequest = { readonly kind: 'row'; readonly table: string; readonly key: unknown } | { readonly kind: 'table'; readonly table: string } | { readonly kind: 'all' }

export interface JobProgress {
  readonly table: string
  readonly tableIndex: number
  readonly tableCount: number
  readonly done: number
  readonly total: number
}

export interface Job {
  readonly id: string
  readonly request: JobRequest
  readonly state: 'running' | 'done' | 'failed'
  readonly progress: JobProgress | null
  /** The refresh report (table, all) or the row's `get` state (row), once done. */
  readonly result: unknown
  readonly error: { readonly code: string; readonly message: string } | null
}

const KEEP = 50

export class Jobs {
  readonly #store: Store
  readonly #openLineage: OpenLineageOptions | undefined
  readonly #jobs = new Map<string, Job>()
  readonly #running = new Set<Promise<void>>()
  #next = 1

  constructor(store: Store, openLineage?: OpenLineageOptions) {
    this.#store = store
    this.#openLineage = openLineage
  }

  /** Starts a job and returns it (state `running`); poll `get(id)` for its progress. */
  start(request: JobRequest): Job {
    const id = String(this.#next++)
    let job: Job = { id, request, state: 'running', progress: null, result: null, error: null }
    this.#jobs.set(id, job)
    const set = (patch: Partial<Job>): void => {
      job = { ...job, ...patch }
      this.#jobs.set(id, job)
    }
    const p = this.#run(request, (progress) => set({ progress }))
      .then((result) => set({ state: 'done', result }))
      .catch((e: unknown) => set({ state: 'failed', error: { code: e instanceof LineageQueryError ? e.code : 'internal', message: e instanceof Error ? e.message : String(e) } }))
      .finally(() => {
        this.#running.delete(p)
        this.#prune()
      })
    this.#running.add(p)
    return job
  }

  get(id: string): Job {
    const job = this.#jobs.get(id)
    if (job === undefined) throw new LineageQueryError('argument', `explorer: no refresh job ${showValue(id)} (jobs are kept while the server runs, the last ${KEEP} finished ones)`, { job: id })
    return job
  }

  /** Resolves when every running job has ended. */
  async idle(): Promise<void> {
    while (this.#running.size > 0) await Promise.allSettled([...this.#running])
  }

  async #run(request: JobRequest, progress: (p: JobProgress) => void): Promise<unknown> {
    const store = this.#store
    const tracker = this.#openLineage === undefined || request.kind === 'row' ? undefined : openLineageTracker(store, this.#openLineage)
    const report = (p: JobProgress & { phase: 'scan' | 'batch' | 'done'; counts?: never }): void => {
      tracker?.onProgress(p)
      progress({ table: p.table, tableIndex: p.tableIndex, tableCount: p.tableCount, done: p.done, total: p.total })
    }
    try {
      let result: unknown
      switch (request.kind) {
        case 'row': {
          progress({ table: request.table, tableIndex: 0, tableCount: 1, done: 0, total: 1 })
          const r = await store.get(request.table, request.key)
          progress({ table: request.table, tableIndex: 0, tableCount: 1, done: 1, total: 1 })
          result = { state: r.state }
          break
        }
        case 'table':
          result = await refreshOne(store, request.table, new AbortController().signal, report)
          break
        case 'all':
          result = await store.refresh({
            onProgress: (p) => {
              tracker?.onProgress(p)
              progress({ table: p.table, tableIndex: p.tableIndex, tableCount: p.tableCount, done: p.done, total: p.total })
            },
          })
          break
        default:
          return request satisfies never
      }
      await tracker?.finish()
      return result
    } catch (e) {
      await tracker?.finish(e)
      throw e
    }
  }

  #prune(): void {
    const finished = [...this.#jobs.values()].filter((j) => j.state !== 'running')
    for (const j of finished.slice(0, Math.max(0, finished.length - KEEP))) this.#jobs.delete(j.id)
  }
}
