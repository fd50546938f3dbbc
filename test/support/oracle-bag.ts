/** The check of the rewrite-rule tests: a query's rows on a database equal the oracle's, as bags. */
import type { Kysely } from 'kysely'
import { expect } from 'vitest'
import { AST, run, type AnyQuery } from '../../src/index.js'
import { evaluate } from '../oracle/evaluate.js'
import { compareBags, show } from './bags.js'

/** `run(db, q)` gives the bag the in-memory oracle gives for `q` over `data` (the rows the database holds). */
export async function expectOracleBag(db: Kysely<any>, q: AnyQuery, data: Parameters<typeof evaluate>[1]): Promise<void> {
  const expected = evaluate(q[AST], data)
  const actual = await run(db, q)
  expect(compareBags(actual, expected), `actual: ${show(actual)}\nexpected: ${show(expected)}`).toEqual({ ok: true })
}
