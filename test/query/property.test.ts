/**
 * Property tests: over random schemas, data and queries from the whole DSL
 * (`test/support/arbitraries.ts`), the compiled SQL run on SQLite and PostgreSQL returns exactly
 * the oracle's bag (`test/oracle/evaluate.ts`).
 *
 * Environment:
 * - `FC_SEED=<n>` (and `FC_PATH=<path>`; `LQ_SEED`/`LQ_PATH` still work): replay the run a
 *   failure reported (its first line names the seed; see test/support/seed.ts).
 * - `LQ_RUNS=<n>`: cases per property (default 500).
 * - `LQ_SHRINK=1`: shrink a failure to a small counterexample (by default the run ends at the
 *   first failure, `endOnFailure`, to keep CI time bounded; replay its seed with LQ_SHRINK=1).
 *   Shrinking stops after `LQ_SHRINK_MS` (default 240000) with the smallest failure so far.
 *
 * A failing seed becomes a fixed regression test in `regressions.test.ts`.
 */
import fc from 'fast-check'
import { describe, expect, test } from 'vitest'
import { AST, compile, createTable, insertRows, run } from '../../src/index.js'
import { evaluate } from '../oracle/evaluate.js'
import { arbCase, caseCode, features, type Case } from '../support/arbitraries.js'
import { checkSorted, compareBags, compareKeys, isSubBag, keyValues, show } from '../support/bags.js'
import { counting } from '../support/count.js'
import { eachDialect, type TestDb } from '../support/db.js'
import { assertAsyncProperty } from '../support/seed.js'

const env = (name: string): string | undefined => {
  const v = process.env[name]
  return v === undefined || v === '' ? undefined : v
}
const numRuns = Number(env('LQ_RUNS') ?? 500)

const params: fc.Parameters<[Case]> = {
  numRuns,
  endOnFailure: env('LQ_SHRINK') === undefined,
  // Shrinking replays many cases against the database: bound it (the smallest failure found so
  // far is reported).
  ...(env('LQ_SHRINK') !== undefined ? { interruptAfterTimeLimit: Number(env('LQ_SHRINK_MS') ?? 240_000), markInterruptAsFailure: true } : {}),
}

const PROPERTY_TIMEOUT = env('LQ_SHRINK') !== undefined ? 900_000 : 300_000

/** Thrown inside the transaction to roll it back after a successful check. */
class Rollback extends Error {}

function sqlOf(c: Case, dialect: 'sqlite' | 'postgres'): string {
  try {
    const s = compile(c.query, dialect).statements
    return s.map((x) => `${x.sql}\n  parameters: ${show(x.parameters)}`).join('\n')
  } catch (e) {
    return `(compile failed: ${(e as Error).message})`
  }
}

function fail(c: Case, tdb: TestDb, what: string): never {
  throw new Error(`${what}\n--- case (${tdb.label}):${caseCode(c)}--- SQL:\n${sqlOf(c, tdb.dialect)}\n`)
}

/** Check that running `c` on `tdb` agrees with the oracle (see the file comment for limits). */
async function check(tdb: TestDb, c: Case): Promise<void> {
  let expected: unknown[]
  try {
    expected = evaluate(c.query[AST], c.data)
  } catch (e) {
    fail(c, tdb, `the oracle threw: ${(e as Error).message}`)
  }
  let actual: unknown[] = []
  try {
    // A transaction per case, always rolled back: the tables vanish whatever happens.
    await tdb.db.transaction().execute(async (trx) => {
      for (const tb of c.schema.tables) {
        await createTable(trx, tb)
        await insertRows(trx, tb, c.data[tb.name] ?? [])
      }
      const counted = counting(trx)
      actual = await run(counted.db, c.query)
      // One statement per query, counted where the driver runs it (not read off `compile`).
      if (counted.count() !== 1) fail(c, tdb, `run executed ${counted.count()} statements, expected 1`)
      throw new Rollback()
    })
  } catch (e) {
    if (!(e instanceof Rollback)) fail(c, tdb, `run threw: ${(e as Error).stack ?? String(e)}`)
  }

  if (c.limit === undefined) {
    const r = compareBags(actual, expected)
    if (!r.ok) fail(c, tdb, r.message)
    if (c.order !== undefined) {
      const s = checkSorted(actual, c.order)
      if (!s.ok) fail(c, tdb, `SQL result ${s.message}`)
      const o = checkSorted(expected, c.order)
      if (!o.ok) fail(c, tdb, `oracle result ${o.message}`)
    }
    return
  }
  // With a limit: the right number of elements, all from the unlimited result; when ordered,
  // sorted and with the oracle's sequence of key values (ties may be broken differently).
  if (actual.length !== expected.length) {
    fail(c, tdb, `limit ${c.limit.n} offset ${c.limit.offset}: ${actual.length} elements, expected ${expected.length}\nactual:   ${show(actual)}\nexpected: ${show(expected)}`)
  }
  const full = evaluate(c.unlimited[AST], c.data)
  if (!isSubBag(actual, full)) fail(c, tdb, `limit: the result is not a sub-bag of the unlimited result\nactual: ${show(actual)}\nunlimited (oracle): ${show(full)}`)
  if (c.order !== undefined) {
    const s = checkSorted(actual, c.order)
    if (!s.ok) fail(c, tdb, `SQL result ${s.message}`)
    const ka = actual.map((x) => keyValues(x, c.order as never))
    const ke = expected.map((x) => keyValues(x, c.order as never))
    const same = ka.every((k, i) => k.every((v, j) => compareKeys(v, (ke[i] as unknown[])[j]) === 0))
    if (!same) fail(c, tdb, `limit: key sequence differs from the oracle's\nactual keys:   ${show(ka)}\nexpected keys: ${show(ke)}\nactual:   ${show(actual)}\nexpected: ${show(expected)}`)
  }
}

// ---------------------------------------------------------------- generators

describe('property generators', () => {
  test('1000 generated queries are well formed and the oracle evaluates them', () => {
    const cases = fc.sample(arbCase(), { numRuns: 1000, seed: 20240601 })
    const counts = new Map<string, number>()
    for (const c of cases) {
      const fs = features(c.query)
      if (c.code.includes('const h0')) fs.add('helper')
      if (c.code.split('\n').some((l) => /^const q = .*\bh0\(.*\bh0\(/.test(l))) fs.add('helper-called-twice')
      if (c.data && Object.values(c.data).some((rows) => rows.length === 0)) fs.add('empty-table')
      for (const spec of c.schema.specs) for (const col of spec.columns) fs.add(`column:${col.kind.startsWith('decimal') ? 'decimal' : col.kind}`)
      for (const f of fs) counts.set(f, (counts.get(f) ?? 0) + 1)
      expect(() => evaluate(c.query[AST], c.data), caseCode(c)).not.toThrow()
    }
    // Every construct of the DSL is exercised.
    const wanted = [
      'for', 'where', 'yield', 'union', 'values', 'values[]', 'record', 'nested-record', 'nested-query-field', 'yield{}', 'exists', 'empty', 'order', 'limit', 'nested-order', 'nested-limit', 'let', 'let<-agg', 'let<-for',
      'for<-table', 'for<-for', 'for<-union', 'for<-field', 'for<-values', 'for<-yield', 'join2', 'join3', 'helper', 'empty-table',
      'agg:count', 'agg:sum', 'agg:min', 'agg:max', 'agg:avg', 'group', 'distinct', 'agg:countDistinct', 'group<-table', 'group<-for', 'group<-field', 'const:null', 'const:string', 'const:number', 'const:boolean',
      ...['eq', 'ne', 'lt', 'le', 'gt', 'ge', 'and', 'or', 'not', 'add', 'sub', 'mul', 'div', 'mod', 'neg', 'abs', 'concat', 'like', 'isNull', 'isNotNull', 'in', 'coalesce', 'lower', 'upper', 'length',
        'case', 'substring', 'trim', 'round', 'year', 'month', 'day', 'addDays', 'addMonths', 'addYears'].map((o) => `op:${o}`),
      'const:date', 'const:timestamp', 'const:decimal', 'const:json', 'like:computed', 'column:date', 'column:timestamp', 'column:decimal', 'column:json',
    ]
    const missing = wanted.filter((f) => (counts.get(f) ?? 0) < 5)
    expect(missing, `rare features: ${[...counts].map(([k, v]) => `${k}=${v}`).join(' ')}`).toEqual([])
  })
})

// One statement per query: `check` counts the statements `run` executes for every case below.

// ---------------------------------------------------------------- SQL = oracle

eachDialect('compiled SQL agrees with the oracle', (get) => {
  test(
    `${numRuns} random schemas, data and queries`,
    async () => {
      await assertAsyncProperty(
        fc.asyncProperty(arbCase(), (c) => check(get(), c)),
        params,
      )
    },
    PROPERTY_TIMEOUT,
  )
})
