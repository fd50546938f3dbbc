/**
 * Seeds of the property tests: every fast-check run uses an explicit seed, printed on failure,
 * so a failure seen once can be replayed.
 *
 * - `FC_SEED=<n>` (or the older `LQ_SEED`) replays a run; `FC_PATH=<path>` (or `LQ_PATH`) goes
 *   straight to the counterexample fast-check reported.
 * - Without them each run draws a new seed (local runs keep exploring); the seed is in the
 *   failure message, first line: `property failed with FC_SEED=<n> ...`. CI (`.ci/run`) replays
 *   a pinned seed, so it never passes or fails by chance.
 * - A seed that fails becomes a fixed regression test (test/query/regressions.test.ts,
 *   test/lineage/regressions.test.ts): the property tests must never fail by chance twice.
 */
import fc from 'fast-check'

const env = (name: string): string | undefined => {
  const v = process.env[name]
  return v === undefined || v === '' ? undefined : v
}

/** The seed of this process's property runs: `FC_SEED`, `LQ_SEED`, or a fresh one. */
export const SEED: number = (() => {
  const s = env('FC_SEED') ?? env('LQ_SEED')
  if (s === undefined) return (Date.now() ^ Math.floor(Math.random() * 0x7fffffff)) | 0
  const n = Number(s)
  if (!Number.isSafeInteger(n)) throw new Error(`FC_SEED must be an integer, got ${JSON.stringify(s)}`)
  return n | 0
})()

export const PATH: string | undefined = env('FC_PATH') ?? env('LQ_PATH')

/** fast-check parameters with the explicit seed (and path when replaying). */
export function seeded<T>(params: fc.Parameters<T> = {}): fc.Parameters<T> {
  return { ...params, seed: SEED, ...(PATH !== undefined ? { path: PATH } : {}) }
}

/** The replay instructions put in front of a failure's message. */
export function replayHint(seed: number = SEED, path?: string): string {
  return `property failed with FC_SEED=${seed}${path !== undefined ? ` FC_PATH=${path}` : ''} (replay: FC_SEED=${seed}${path !== undefined ? ` FC_PATH=${path}` : ''} npm test -- <file>)`
}

function withHint(e: unknown): unknown {
  if (e instanceof Error) {
    const path = /path: "?([0-9:]+)"?/.exec(e.message)?.[1]
    e.message = `${replayHint(SEED, path)}\n${e.message}`
  }
  return e
}

/** `fc.assert` with the explicit seed, the seed printed first in any failure. */
export function assertProperty<T>(property: fc.IProperty<T>, params: fc.Parameters<T> = {}): void {
  try {
    fc.assert(property, seeded(params))
  } catch (e) {
    throw withHint(e)
  }
}

/** `fc.assert` for async properties, likewise. */
export async function assertAsyncProperty<T>(property: fc.IAsyncProperty<T>, params: fc.Parameters<T> = {}): Promise<void> {
  try {
    await fc.assert(property, seeded(params))
  } catch (e) {
    throw withHint(e)
  }
}
