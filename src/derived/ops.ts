/**
 * A `refresh` or `get` call in progress: its limits (signal, default per-call timeout), whether
 * it has been alone since it started, and how it stops when its signal fires.
 */
import { LineageQueryError, showValue } from '../errors.js'
import type { LeaseKeeper } from './leases.js'
import type { Limiter } from './limit.js'
import type { RefreshReport, TableReport } from './types.js'

/** A refresh or get call in progress; `alone` until another one starts while it runs. */
export interface Op {
  alone: boolean
  readonly signal: AbortSignal | undefined
  /** The call's default per-call timeout (`RefreshOptions.timeoutMs` / `GetOptions.timeoutMs`). */
  readonly timeoutMs: number | undefined
  /** The call's leases (claims of batches across processes, heartbeat; `leases.ts`). */
  readonly keeper: LeaseKeeper
  /** Function calls at once (`RefreshOptions.concurrency`), if limited. */
  readonly limit: Limiter | undefined
  /** Watch: stop after the batch in progress, which is finished and stored (not abandoned). */
  readonly drain: AbortSignal | undefined
  /** Watch: root rows still settling (debounce); their derived rows are deferred. */
  readonly settling: ((table: string, key: string) => boolean) | undefined
  /** Refresh and get: wait for rows other workers hold, then look again; watch: leave them to a later wave. */
  readonly waitForOthers: boolean
  /** `refresh({ full: true })`: run every function again, even where an identical result is stored. */
  readonly recompute: boolean
  /** Rows of each table this call left stale: held by another worker, or deferred (settling). */
  readonly leftBehind: Map<string, { held: Set<string>; deferred: number }>
}

/** What a call is started with (`Ops.begin`). */
export interface OpLimits {
  readonly signal?: AbortSignal | undefined
  readonly timeoutMs?: number | undefined
  readonly keeper: LeaseKeeper
  readonly concurrency?: Limiter | undefined
  readonly drain?: AbortSignal | undefined
  readonly settling?: ((table: string, key: string) => boolean) | undefined
  readonly waitForOthers?: boolean
  readonly recompute?: boolean
}

/** The rows `op` left behind in `table` (created on first use). */
export function leftOf(op: Op, table: string): { held: Set<string>; deferred: number } {
  let l = op.leftBehind.get(table)
  if (l === undefined) op.leftBehind.set(table, (l = { held: new Set(), deferred: 0 }))
  return l
}

/** The calls in progress in one store. */
export class Ops {
  readonly #ops = new Set<Op>()

  /** A call starts: it is alone until another one starts. */
  begin(limits: OpLimits): Op {
    const op: Op = {
      alone: this.#ops.size === 0,
      signal: limits.signal,
      timeoutMs: limits.timeoutMs,
      keeper: limits.keeper,
      limit: limits.concurrency,
      drain: limits.drain,
      settling: limits.settling,
      waitForOthers: limits.waitForOthers ?? true,
      recompute: limits.recompute ?? false,
      leftBehind: new Map(),
    }
    for (const other of this.#ops) other.alone = false
    this.#ops.add(op)
    return op
  }

  end(op: Op): void {
    this.#ops.delete(op)
  }
}

/** Rows a table report counts as handled (for progress). */
export const handled = (r: TableReport): number => r.computed + r.unchanged + r.failed + r.blocked + r.deleted + r.superseded

/** Internal: the operation's signal fired; turned into an `aborted` LineageQueryError at the public method. */
export class Aborted extends Error {}

export function throwIfAborted(op: Op): void {
  if (op.signal?.aborted === true || op.drain?.aborted === true) throw new Aborted()
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

export function abortedError(what: string, op: Op, report?: RefreshReport): LineageQueryError {
  const reason = op.signal?.reason
  const why = reason instanceof Error ? `: ${reason.message}` : reason === undefined ? '' : `: ${showValue(reason)}`
  const done = report === undefined ? '' : `; ${handled(report.totals)} rows were handled and stored before it stopped (details.report)`
  return new LineageQueryError('aborted', `${what} was aborted${why}${done}. Nothing computed was lost: rows not stored stay stale or missing for the next refresh`, report === undefined ? {} : { report }, { cause: reason })
}

/** `p`, or an `Aborted` rejection as soon as the operation's signal fires. */
export function untilAborted<T>(p: Promise<T>, op: Op): Promise<T> {
  const signal = op.signal
  if (signal === undefined) return p
  if (signal.aborted) return Promise.reject(new Aborted())
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(new Aborted())
    signal.addEventListener('abort', onAbort, { once: true })
    p.then(
      (v) => {
        signal.removeEventListener('abort', onAbort)
        resolve(v)
      },
      (e: unknown) => {
        signal.removeEventListener('abort', onAbort)
        reject(e)
      },
    )
  })
}

/** Let timers and I/O callbacks run (between batches: better-sqlite3 runs statements synchronously). */
export const yieldToLoop = (): Promise<void> => new Promise((resolve) => setImmediate(resolve))
