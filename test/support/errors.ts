/** Catching the typed errors the tests check. */
import { expect } from 'vitest'
import { LineageQueryError } from '../../src/errors.js'

/** The LineageQueryError `f` throws (any other error is rethrown; none fails). */
export function thrown(f: () => unknown): LineageQueryError {
  try {
    f()
  } catch (e) {
    if (e instanceof LineageQueryError) return e
    throw e
  }
  throw new Error('expected a LineageQueryError')
}

/** The LineageQueryError `p` rejects with (checked to be one; none fails). */
export async function rejection(p: Promise<unknown>): Promise<LineageQueryError> {
  try {
    await p
  } catch (e) {
    expect(e).toBeInstanceOf(LineageQueryError)
    return e as LineageQueryError
  }
  throw new Error('expected a LineageQueryError')
}

/**
 * The LineageQueryError `p` rejects with (or `p()` throws or rejects with), checked to have
 * `code` and a message containing every fragment.
 */
export async function expectError(p: Promise<unknown> | (() => unknown), code: string, ...fragments: string[]): Promise<LineageQueryError> {
  let err: unknown
  try {
    await (typeof p === 'function' ? p() : p)
  } catch (e) {
    err = e
  }
  expect(err).toBeInstanceOf(LineageQueryError)
  const e = err as LineageQueryError
  expect(e.code).toBe(code)
  for (const f of fragments) expect(e.message).toContain(f)
  return e
}
