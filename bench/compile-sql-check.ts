/**
 * `npx tsx bench/compile-sql-check.ts`: the SQL text check for compiler changes that must not
 * change the SQL. Generated queries (the property tests' arbitraries, `test/support/arbitraries.ts`,
 * built with `src/`), plain and under `lineage(q)` (and `{ why: true }`), are compiled by two
 * builds' pipelines (`normalise` ... `print` from each build's `dist/query/*.js`, given the same
 * AST), on both dialects; every statement's text and parameters must be equal, and a query one
 * build rejects must be rejected by the other with the same message.
 *
 * Environment (defaults): CHECK_OLD=(required: a build's dist/ directory, e.g. /work/base/dist)
 * CHECK_NEW=(this checkout's dist/)  CHECK_CASES=3000  CHECK_SEED=1
 * Prints the number of statements compared and the differences (exit code 1 when any).
 */
import { fileURLToPath, pathToFileURL } from 'node:url'
import fc from 'fast-check'
import { AST, lineage } from '../src/index.js'
import { arbSchema, arbTape, buildQuery } from '../test/support/arbitraries.js'
import { envNum } from './harness.js'
import type { Expr } from '../src/query/ast.js'

type Pipeline = (e: Expr, dialect: 'sqlite' | 'postgres') => string

async function pipeline(dist: string): Promise<Pipeline> {
  const imp = async (p: string) => import(pathToFileURL(`${dist}/${p}`).href)
  const { normalise } = await imp('query/normalise.js')
  const { decorrelate } = await imp('query/decorrelate.js')
  const { shareCorrelatedScans } = await imp('query/share-correlated.js')
  const { lower } = await imp('query/lower.js')
  const { print } = await imp('query/sql-nodes.js')
  const { hooksFor } = await imp('query/dialect.js')
  return (e, d) => {
    try {
      const h = hooksFor(d)
      const { sql, parameters } = print(lower(shareCorrelatedScans(decorrelate(normalise(e)), h.lateralExact), h).select, d)
      return `${sql}\n${JSON.stringify(parameters)}`
    } catch (err) {
      return `error: ${(err as Error).message}`
    }
  }
}

async function main(): Promise<void> {
  const oldDist = process.env.CHECK_OLD
  if (oldDist === undefined || oldDist === '') throw new Error('CHECK_OLD=<dist directory of the other build> is required')
  const newDist = process.env.CHECK_NEW ?? fileURLToPath(new URL('../dist', import.meta.url))
  const [a, b] = [await pipeline(oldDist), await pipeline(newDist)]
  const n = envNum('CHECK_CASES', 3000)
  const seed = envNum('CHECK_SEED', 1)
  const cases = fc.sample(fc.tuple(arbSchema(), arbTape), { numRuns: n, seed })
  let statements = 0
  let errors = 0
  let differ = 0
  for (const [schema, tape] of cases) {
    const q = buildQuery(schema, tape).query
    const variants: Expr[] = [q[AST]]
    for (const opts of [{}, { why: true }]) {
      try {
        variants.push(lineage(q as never, opts)[AST])
      } catch {
        // a query lineage rejects (e.g. a table without a key): the plain query only
      }
    }
    for (const e of variants) {
      for (const d of ['sqlite', 'postgres'] as const) {
        const x = a(e, d)
        const y = b(e, d)
        statements++
        if (x.startsWith('error: ')) errors++
        if (x !== y) {
          differ++
          if (differ <= 5) console.log(`DIFFERS (${d}):\n--- old\n${x}\n--- new\n${y}\n`)
        }
      }
    }
  }
  console.log(`compile SQL check: ${statements} statements (${errors} rejected by both) from ${n} generated queries, seed ${seed}: ${differ === 0 ? 'identical' : `${differ} differ`}`)
  if (differ > 0) process.exitCode = 1
}

await main()
