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
