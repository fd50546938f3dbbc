/**
 * The query generator of the property tests (test/support/arbitraries.ts) builds only queries
 * the DSL accepts: a case it cannot build fails the property run that draws it, by chance.
 * Seeds that drew such a case are written down here (the rule of test/support/seed.ts); the
 * draw itself did not replay outside its file (fc.assert with the same seed and path drew
 * another case here; not found why), so the generator's rule that failed is pinned instead.
 */
import { expect, test } from 'vitest'
import { keepsKinds, sT } from '../support/arbitraries.js'

test('an int is wanted: a nested collection of reals does not stand for it (Q.mod over Q.min of reals, FC_SEED=1700770912 path 215)', () => {
  // lazy.test.ts drew `Q.mod(Q.min(x6.s), 0)` where `s` held 1.5: the collection was picked for
  // an int target because real and int unify (to real), and Q.mod refused the real operand.
  expect(keepsKinds(sT('real', false), sT('int', false))).toBe(false)
  expect(keepsKinds(sT('int', true), sT('int', false))).toBe(true)
  expect(keepsKinds(sT('null', true), sT('int', false))).toBe(true)
  expect(keepsKinds(sT('int', false), sT('real', false))).toBe(true)
})
