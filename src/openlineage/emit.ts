/**
 * Sending OpenLineage run events: to a file (JSON lines, appended), to an HTTP endpoint (POST,
 * one event per request, in order: Marquez's `/api/v1/lineage`), or to a function; and the
 * tracker that turns a refresh's progress reports into START / COMPLETE / FAIL / ABORT events.
 *
 * @example
 * ```ts
 * await refreshWithOpenLineage(store, { openLineage: { target: { file: 'lineage.jsonl' } } })
 * ```
 */
import { appendFileSync } from 'node:fs'
import { randomUUID } from 'node:crypto'
import { LineageQueryError, showValue } from '../errors.js'
import type { RefreshOptions, RefreshProgress, RefreshReport, Store } from '../derived/index.js'
import { runEvent, type Namespaces, type RunEvent, type RunEventType } from './events.js'

/** Where events go: appended to a file as JSON lines, POSTed to a URL, or handed to a function. */
export type OpenLineageTarget =
  | { readonly file: string }
  | { readonly url: string; readonly headers?: Readonly<Record<string, string>> }
  | { readonly emit: (event: RunEvent) => void | Promise<void> }

export interface OpenLineageOptions {
  readonly target: OpenLineageTarget
  /** The jobs' namespace (default `lineage-query`). */
  readonly jobNamespace?: string
  /** The datasets' namespace: where the tables live, e.g. `sqlite://app.db` (default `lineage-query`). */
  readonly datasetNamespace?: string
}

/** Sends events in order; `flush` resolves when all were sent, or rejects with the first failure. */
interface Sink {
  send(e: RunEvent): void
  flush(): Promise<void>
}

function sinkOf(target: OpenLineageTarget): Sink {
  if (typeof target !== 'object' || target === null) throw new LineageQueryError('argument', `openLineage.target must be { file }, { url } or { emit }, got ${showValue(target)}`)
  if ('file' in target) {
    const file = target.file
    if (typeof file !== 'string' || file === '') throw new LineageQueryError('argument', `openLineage.target.file must be a file path, got ${showValue(file)}`)
    return {
      send: (e) => {
        try {
          appendFileSync(file, `${JSON.stringify(e)}\n`)
        } catch (err) {
          throw new LineageQueryError('openlineage', `OpenLineage: cannot append the ${e.eventType} event of \`${e.job.name}\` to ${file}: ${err instanceof Error ? err.message : String(err)}`, { file }, { cause: err })
        }
      },
      flush: () => Promise.resolve(),
    }
  }
  let chain: Promise<void> = Promise.resolve()
  let failure: unknown
  const queue = (what: string, f: () => Promise<void>): void => {
    chain = chain.then(async () => {
      if (failure !== undefined) return
      try {
        await f()
      } catch (err) {
        failure = err instanceof LineageQueryError ? err : new LineageQueryError('openlineage', `OpenLineage: ${what}: ${err instanceof Error ? err.message : String(err)}`, {}, { cause: err })
      }
    })
  }
  const flush = async (): Promise<void> => {
    await chain
    if (failure !== undefined) throw failure
  }
  if ('url' in target) {
    const url = target.url
    if (typeof url !== 'string' || !/^https?:\/\//.test(url)) throw new LineageQueryError('argument', `openLineage.target.url must be an http(s) URL, got ${showValue(url)}`)
    return {
      send: (e) =>
        queue(`POST of the ${e.eventType} event of \`${e.job.name}\` to ${url}`, async () => {
          const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...target.headers }, body: JSON.stringify(e) })
          if (!res.ok) throw new LineageQueryError('openlineage', `OpenLineage: POST of the ${e.eventType} event of \`${e.job.name}\` to ${url} answered ${res.status} ${res.statusText}: ${(await res.text()).slice(0, 300)}`, { url, status: res.status })
        }),
      flush,
    }
  }
  if ('emit' in target && typeof target.emit === 'function') {
    const emit = target.emit
    return { send: (e) => queue(`the emit function failed on the ${e.eventType} event of \`${e.job.name}\``, async () => void (await emit(e))), flush }
  }
  throw new LineageQueryError('argument', `openLineage.target must be { file }, { url } or { emit }, got ${showValue(target)}`)
}

/**
 * Follows one refresh (or one table's row-by-row refresh) through its progress reports: the
 * first report of a table starts its run (START), its `done` report completes it (COMPLETE with
 * its counts); `finish(error)` ends the runs still open with FAIL (ABORT when the refresh was
 * aborted) and waits until every event was sent.
 */
export interface OpenLineageTracker {
  readonly onProgress: (p: Pick<RefreshProgress, 'table' | 'phase'> & { readonly counts?: RefreshProgress['counts'] }) => void
  finish(error?: unknown): Promise<void>
}

export function openLineageTracker(store: Store, options: OpenLineageOptions): OpenLineageTracker {
  if (typeof options !== 'object' || options === null) throw new LineageQueryError('argument', `openLineage options must be an object { target, jobNamespace?, datasetNamespace? }, got ${showValue(options)}`)
  const sink = sinkOf(options.target)
  const ns: Namespaces = { job: options.jobNamespace ?? 'lineage-query', dataset: options.datasetNamespace ?? 'lineage-query' }
  const graph = store.graph()
  const open = new Map<string, string>()
  // Column lineage where the comprehension tells it (query sources); none for functions over a table.
  const columns = new Map(graph.nodes.filter((n) => n.kind === 'derived').map((n) => [n.name, store.columnLineage(n.name)]))
  const send = (table: string, runId: string, type: RunEventType, detail: Omit<Parameters<typeof runEvent>[4], 'time' | 'columns'>): void => {
    const c = columns.get(table)
    sink.send(runEvent(graph, ns, { table, runId }, type, { time: new Date(), ...detail, ...(c === undefined ? {} : { columns: c }) }))
  }
  return {
    onProgress: (p) => {
      let runId = open.get(p.table)
      if (runId === undefined) {
        runId = randomUUID()
        open.set(p.table, runId)
        send(p.table, runId, 'START', {})
      }
      if (p.phase === 'done') {
        send(p.table, runId, 'COMPLETE', p.counts === undefined ? {} : { counts: p.counts })
        open.delete(p.table)
      }
    },
    finish: async (error?: unknown) => {
      if (error !== undefined) {
        const aborted = error instanceof LineageQueryError && error.code === 'aborted'
        const message = error instanceof Error ? error.message : String(error)
        for (const [table, runId] of open) send(table, runId, aborted ? 'ABORT' : 'FAIL', { error: { message, stack: error instanceof Error ? error.stack : undefined } })
        open.clear()
      }
      await sink.flush()
    },
  }
}

/**
 * `store.refresh(options)`, emitting an OpenLineage run per derived table it refreshes (START,
 * then COMPLETE, or FAIL / ABORT when the refresh fails or is aborted) to `options.openLineage.target`.
 * Resolves once the events were written or sent; a refresh error is rethrown after its FAIL
 * events were sent; an event that could not be sent rejects with code `openlineage`.
 */
export async function refreshWithOpenLineage(store: Store, options: RefreshOptions & { readonly openLineage: OpenLineageOptions }): Promise<RefreshReport> {
  const { openLineage, onProgress, ...rest } = options
  const tracker = openLineageTracker(store, openLineage)
  let report: RefreshReport
  try {
    report = await store.refresh({
      ...rest,
      onProgress: (p) => {
        tracker.onProgress(p)
        onProgress?.(p)
      },
    })
  } catch (e) {
    try {
      await tracker.finish(e)
    } catch (f) {
      const m = (x: unknown): string => (x instanceof Error ? x.message : String(x))
      throw new LineageQueryError('openlineage', `${m(f)} (while reporting that the refresh failed: ${m(e)})`, { refreshError: e }, { cause: f })
    }
    throw e
  }
  await tracker.finish()
  return report
}
