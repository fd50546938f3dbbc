/**
 * Watch mode: a worker that reacts to root writes and computes what went stale, until stopped.
 *
 * The loop: wake (a root write seen by `wake.ts`, a settle time, a code change, or a retry), read
 * the root rows changed since the last wake into the debounce state (`debounce.ts`), run one
 * refresh wave with rows still settling deferred, then sleep until the next wake. Waves never
 * overlap; a wake during a wave runs one more wave after it. A wave that left rows behind
 * (settling, or claimed by another worker) schedules the wake that picks them up.
 *
 * `stop()` (or the caller's signal) finishes the batch in progress, stores it, releases the
 * worker's claims and resolves `stopped`. A wave that fails because the database is busy or
 * unreachable is reported (`onProgress` event `error`) and retried with growing pauses; any
 * other error stops the watcher and rejects `stopped` with it.
 *
 * The host (`WatchHost`) is the store: this module holds the loop only, so it is tested with a
 * fake host and a fake clock source.
 */
import { LineageQueryError } from '../errors.js'
import { Settling } from './debounce.js'
import { connectionLost } from './driver-errors.js'
import type { RefreshProgress, RefreshReport } from './types.js'
import type { WakeSource } from './wake.js'

/** One wave's result, as the host reports it. */
export interface WaveReport {
  readonly report: RefreshReport
  /** Rows left stale because their root rows are still settling (debounce). */
  readonly deferred: number
  /** Rows left stale because another worker holds their lease. */
  readonly heldByOthers: number
}

export interface WaveOptions {
  /** Stops the wave after the batch in progress (the batch is computed and stored). */
  readonly drain: AbortSignal
  /** Whether a root row is still settling (its derived rows are deferred to a later wave). */
  readonly settling: (table: string, key: string) => boolean
  readonly onProgress: (p: RefreshProgress) => void
}

/** What the watcher needs from the store. */
export interface WatchHost {
  /** One refresh wave. */
  wave(options: WaveOptions): Promise<WaveReport>
  /** Root rows written since clock value `since` (`undefined`: just read the clock): their keys and revisions, and the clock now. */
  changes(since: number | undefined): Promise<{ clock: number; rows: readonly { table: string; key: string; rev: number }[] }>
  /** Start the wake sources; each calls `wake`. */
  sources(wake: (why: WakeReason) => void, onError: (e: unknown) => void): Promise<WakeSource[]>
  /** Re-read code versions (a `dependsOn` file changed); whether one changed. */
  recheckCode(): Promise<boolean>
  /** Give back every claim this worker holds. */
  releaseAll(): Promise<void>
}

export type WakeReason = 'root-write' | 'code' | 'settle' | 'retry' | 'start'

/** Events of `store.watch({ onProgress })`. */
export type WatchEvent =
  /** A batch of a wave: the refresh's own progress report. */
  | { readonly kind: 'progress'; readonly wave: number; readonly progress: RefreshProgress }
  /** A wave finished: its report, rows deferred by debounce, rows left to other workers. */
  | { readonly kind: 'wave'; readonly wave: number; readonly reason: WakeReason; readonly report: RefreshReport; readonly deferred: number; readonly heldByOthers: number }
  /** A wave failed on a busy or unreachable database; it is retried after `retryInMs`. */
  | { readonly kind: 'error'; readonly wave: number; readonly error: unknown; readonly retryInMs: number }
  /** A `dependsOn` file changed and a code version with it: the next wave recomputes the table. */
  | { readonly kind: 'code-changed' }

export interface WatchOptions {
  /** A root row is recomputed only after it was left unchanged this long (ms; default 0). */
  readonly debounceMs?: number
  /** Stops the watcher like `stop()`. */
  readonly signal?: AbortSignal
  readonly onProgress?: (e: WatchEvent) => void
  /** How soon to look again for rows another worker holds (ms; default a quarter of the lease, at most 1000). */
  readonly recheckMs?: number
}

export interface Watcher {
  /** Resolves when the watcher stopped (after `stop()` or the signal), rejects when it failed. */
  readonly stopped: Promise<void>
  /** Finish the batch in progress, release the claims, stop. Resolves with `stopped`. */
  stop(): Promise<void>
}

/** Errors worth retrying: the database was busy or went away for a while. */
function retryable(e: unknown): boolean {
  if (connectionLost(e)) return true
  if (e instanceof LineageQueryError) return e.code === 'busy' || (e.code === 'database' && /ECONNREFUSED|ECONNRESET|terminat|Connection|57P0/i.test(e.message))
  const code = (e as { code?: unknown } | null)?.code
  return typeof code === 'string' && /^(ECONNREFUSED|ECONNRESET|57P0\d|SQLITE_BUSY)/.test(code)
}

export function startWatch(host: WatchHost, options: WatchOptions, recheckDefault: number): Watcher {
  const settling = new Settling(options.debounceMs ?? 0)
  const drain = new AbortController()
  let wakeUp: (() => void) | undefined
  let pending = 'start' as WakeReason | undefined
  let timer: NodeJS.Timeout | undefined
  let timerAt = Infinity
  const emit = (e: WatchEvent): void => options.onProgress?.(e)

  const wake = (why: WakeReason): void => {
    pending ??= why
    wakeUp?.()
  }
  /** Wake at `at` (epoch ms) unless an earlier timed wake is set. */
  const wakeAt = (at: number, why: WakeReason): void => {
    if (at >= timerAt) return
    if (timer !== undefined) clearTimeout(timer)
    timerAt = at
    timer = setTimeout(() => {
      timer = undefined
      timerAt = Infinity
      wake(why)
    }, Math.max(0, at - Date.now()))
  }
  const stopNow = (): void => {
    drain.abort()
    wakeUp?.()
  }
  if (options.signal?.aborted === true) drain.abort()
  options.signal?.addEventListener('abort', stopNow, { once: true })

  let sourceError: unknown
  const stopped = (async () => {
    const sources = await host.sources(wake, (e) => {
      // A wake source failed for good (not a transient read error): the watcher stops with it.
      sourceError ??= e
      stopNow()
    })
    let since: number | undefined
    let wave = 0
    let pause = 50
    try {
      ;({ clock: since } = await host.changes(undefined))
      while (!drain.signal.aborted) {
        if (pending === undefined) {
          await new Promise<void>((resolve) => {
            wakeUp = resolve
            if (pending !== undefined || drain.signal.aborted) resolve()
          })
          wakeUp = undefined
          continue
        }
        const reason = pending
        pending = undefined
        wave++
        try {
          if (reason === 'code' && (await host.recheckCode())) emit({ kind: 'code-changed' })
          const now = Date.now()
          if (settling.debounceMs > 0) {
            const ch = await host.changes(since)
            since = ch.clock
            for (const r of ch.rows) settling.note(r.table, r.key, r.rev, now)
            settling.prune(now)
          }
          const at = Date.now()
          const w = await host.wave({
            drain: drain.signal,
            settling: (table, key) => settling.settling(table, key, at),
            onProgress: (progress) => emit({ kind: 'progress', wave, progress }),
          })
          pause = 50
          emit({ kind: 'wave', wave, reason, report: w.report, deferred: w.deferred, heldByOthers: w.heldByOthers })
          const next = settling.nextSettle()
          if (w.deferred > 0 && next !== undefined) wakeAt(next, 'settle')
          if (w.heldByOthers > 0) wakeAt(Date.now() + (options.recheckMs ?? recheckDefault), 'retry')
        } catch (e) {
          if (drain.signal.aborted && e instanceof LineageQueryError && e.code === 'aborted') break
          if (!retryable(e)) throw e
          emit({ kind: 'error', wave, error: e, retryInMs: pause })
          wakeAt(Date.now() + pause, 'retry')
          pause = Math.min(pause * 2, 5000)
        }
      }
    } finally {
      if (timer !== undefined) clearTimeout(timer)
      options.signal?.removeEventListener('abort', stopNow)
      for (const s of sources) await s.close()
      await host.releaseAll()
    }
    if (sourceError !== undefined) throw sourceError
  })()
  stopped.catch(() => undefined)
  return {
    stopped,
    async stop() {
      stopNow()
      return stopped
    },
  }
}
