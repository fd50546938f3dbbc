/**
 * Waiting out a busy database. A write transaction that fails because another connection holds
 * the lock it needs (SQLite: SQLITE_BUSY once the connection's busy handler gave up, or
 * SQLITE_BUSY_SNAPSHOT), or that PostgreSQL chose as a deadlock victim, was rolled back whole:
 * it is run again after a short pause (2 ms, doubling up to 200 ms, with jitter), until the
 * store's `busyTimeoutMs` has passed; then a `busy` LineageQueryError names the operation, with
 * the driver's error as its `cause`. The pauses are timers, so the event loop keeps running.
 *
 * Callers make the retried function self-contained: counts it adds to a report are added once,
 * after it succeeded.
 */
import { LineageQueryError } from '../errors.js'
import { errorCode, type StoreDialect } from './sql/dialect.js'

export async function retryBusy<T>(d: StoreDialect, what: string, budgetMs: number, fn: () => Promise<T>): Promise<T> {
  const started = Date.now()
  let pause = 2
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn()
    } catch (e) {
      if (!d.isBusy(e)) throw e
      const waited = Date.now() - started
      if (waited + pause > budgetMs) {
        const why = errorCode(e) === '40P01' ? 'deadlock detected' : errorCode(e) === '40001' ? 'serialization failure' : `${errorCode(e)}: ${(e as Error).message}`
        throw new LineageQueryError(
          'busy',
          `${what}: the database stayed busy for ${waited} ms (${why}), ${attempt} attempt${attempt === 1 ? '' : 's'}; another connection holds the lock it needs. Retry later, or raise openStore's busyTimeoutMs (now ${budgetMs} ms)`,
          { operation: what, attempts: attempt, waitedMs: waited, driverCode: errorCode(e) },
          { cause: e },
        )
      }
      await new Promise((r) => setTimeout(r, pause * (0.5 + Math.random())))
      pause = Math.min(pause * 2, 200)
    }
  }
}
