/**
 * Bounded concurrency within a process: at most `n` function calls running at once (functions
 * that call a compiler, a network service or a model mostly wait). Calls start in the order
 * they were submitted; a call that throws or rejects frees its slot like one that returns.
 *
 * @example
 * ```ts
 * const run = limiter(16)
 * const results = await Promise.all(inputs.map((x) => run(() => fetchSummary(x))))
 * ```
 */
export interface Limiter {
  <T>(fn: () => T | PromiseLike<T>): Promise<T>
  /** The calls at once. */
  readonly slots: number
  /** Calls submitted and not started yet. */
  queued(): number
  /** The mean time of the recent calls (start to settle, milliseconds; a moving average), undefined before one settled. */
  callMs(): number | undefined
  /** Settles once at most `k` calls are queued (at once when so already). */
  untilQueued(k: number): Promise<void>
}

/** The weight of the newest call in `callMs`. */
const CALL_MS_WEIGHT = 0.2

export function limiter(n: number): Limiter {
  if (!Number.isSafeInteger(n) || n < 1) throw new RangeError(`limiter: n must be a positive integer, got ${n}`)
  let running = 0
  let mean: number | undefined
  const queue: (() => void)[] = []
  const waiters: { k: number; resolve: () => void }[] = []
  const next = (t0: number): void => {
    const ms = performance.now() - t0
    mean = mean === undefined ? ms : mean + CALL_MS_WEIGHT * (ms - mean)
    running--
    const start = queue.shift()
    if (start !== undefined) start()
    for (let i = waiters.length - 1; i >= 0; i--) {
      if (queue.length > waiters[i]!.k) continue
      waiters[i]!.resolve()
      waiters.splice(i, 1)
    }
  }
  const run = <T>(fn: () => T | PromiseLike<T>): Promise<T> =>
    new Promise<T>((resolve, reject) => {
      const start = (): void => {
        running++
        const t0 = performance.now()
        let out: T | PromiseLike<T>
        try {
          out = fn()
        } catch (e) {
          next(t0)
          reject(e)
          return
        }
        Promise.resolve(out).then(
          (v) => {
            next(t0)
            resolve(v)
          },
          (e: unknown) => {
            next(t0)
            reject(e)
          },
        )
      }
      if (running < n) start()
      else queue.push(start)
    })
  return Object.assign(run, {
    slots: n,
    queued: () => queue.length,
    callMs: () => mean,
    untilQueued: (k: number) => (queue.length <= k ? Promise.resolve() : new Promise<void>((resolve) => waiters.push({ k, resolve }))),
  })
}
