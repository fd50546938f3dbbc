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
export type Limiter = <T>(fn: () => T | PromiseLike<T>) => Promise<T>

export function limiter(n: number): Limiter {
  if (!Number.isSafeInteger(n) || n < 1) throw new RangeError(`limiter: n must be a positive integer, got ${n}`)
  let running = 0
  const queue: (() => void)[] = []
  const next = (): void => {
    running--
    const start = queue.shift()
    if (start !== undefined) start()
  }
  return <T>(fn: () => T | PromiseLike<T>): Promise<T> =>
    new Promise<T>((resolve, reject) => {
      const start = (): void => {
        running++
        let out: T | PromiseLike<T>
        try {
          out = fn()
        } catch (e) {
          next()
          reject(e)
          return
        }
        Promise.resolve(out).then(
          (v) => {
            next()
            resolve(v)
          },
          (e: unknown) => {
            next()
            reject(e)
          },
        )
      }
      if (running < n) start()
      else queue.push(start)
    })
}
