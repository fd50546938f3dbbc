/**
 * Lineage property tests over random schemas (with composite keys and untracked tables), data and
 * queries from the whole DSL (`test/support/arbitraries.ts`), on SQLite and PostgreSQL:
 *
 * 1. `run(lineage(q))` returns exactly the bag the oracle computes by the lineage rule
 *    (`evaluateLineage`, which does not use the rewrite) — 500 cases per dialect;
 * 2. stripping the annotations from `lineage(q)` gives exactly the bag of `q`;
 * 3. every entry names an existing row of a tracked table that the query reads;
 * 4. every row's entries are in generator order (the oracle's order) without duplicates.
 *
 * 5. `run(lineage(q))` executes exactly one statement (counted at the driver);
 * 6. `run(lineage(q, { why: true }))` returns the oracle's why-provenance (entries as bags).
 *
 * Environment: `FC_SEED`, `FC_PATH`, `LQ_RUNS` as in `test/query/property.test.ts`.
 */
import fc from 'fast-check'
import type * as ast from '../../src/query/ast.js'
import { test } from 'vitest'
import { AST, compile, createTable, insertRows, lineage, run, type AnyQuery } from '../../src/index.js'
import { AnnotatedValue } from '../../src/query/lineage-value.js'
import { evaluateLineage } from '../oracle/evaluate.js'
import { arbCase, caseCode, features, type Case, type Data } from '../support/arbitraries.js'
import { compareBags, show, valueEquals } from '../support/bags.js'
import { counting } from '../support/count.js'
import { eachDialect, type TestDb } from '../support/db.js'
import { assertAsyncProperty } from '../support/seed.js'

const env = (name: string): string | undefined => (process.env[name] === '' ? undefined : process.env[name])
const numRuns = Number(env('LQ_RUNS') ?? 500)
const params = (runs: number): fc.Parameters<[Case]> => ({
  numRuns: runs,
  endOnFailure: true,
})
const TIMEOUT = 300_000

interface Entry { readonly table: string; readonly key: unknown }
interface Ann { readonly data: unknown; readonly lineage: readonly Entry[] }

class Rollback extends Error {}

/**
 * Run queries on fresh tables for `c` inside a transaction that is always rolled back. Each
 * query must execute exactly one statement (counted at the driver).
 */
async function runAll(tdb: TestDb, c: Case, queries: readonly AnyQuery[]): Promise<unknown[][]> {
  let out: unknown[][] = []
  let counts: number[] = []
  try {
    await tdb.db.transaction().execute(async (trx) => {
      for (const tb of c.schema.tables) {
        await createTable(trx, tb)
        await insertRows(trx, tb, c.data[tb.name] ?? [])
      }
      out = []
      counts = []
      for (const q of queries) {
        const counted = counting(trx)
        out.push(await run(counted.db, q))
        counts.push(counted.count())
      }
      throw new Rollback()
    })
  } catch (e) {
    if (!(e instanceof Rollback)) throw e
  }
  counts.forEach((n) => {
    if (n !== 1) fail(c, tdb, `run executed ${n} statements, expected 1`)
  })
  return out
}

function fail(c: Case, tdb: TestDb, what: string): never {
  let sql = ''
  try {
    sql = compile(lineage(c.query), tdb.dialect).statements[0]!.sql
  } catch (e) {
    sql = `(compile failed: ${(e as Error).message})`
  }
  throw new Error(`${what}\n--- case (${tdb.label}):${caseCode(c)}--- lineage SQL:\n${sql}\n`)
}

/** Strip annotations recursively: `{data, lineage}` -> data, in nested collections too. */
function strip(v: unknown): unknown {
  if (v instanceof AnnotatedValue) return strip(v.data)
  if (Array.isArray(v)) return v.map(strip)
  if (v instanceof Date) return v
  if (typeof v === 'object' && v !== null) {
    if ('data' in v && 'lineage' in v && Array.isArray((v as Ann).lineage) && Object.keys(v).length === 2) return strip((v as Ann).data)
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, strip(x)]))
  }
  return v
}

/** Every lineage list in a result, nested ones included. */
function lists(v: unknown, out: (readonly Entry[])[] = []): (readonly Entry[])[] {
  if (Array.isArray(v)) for (const x of v) lists(x, out)
  else if (typeof v === 'object' && v !== null) {
    if ('data' in v && 'lineage' in v && Array.isArray((v as Ann).lineage)) {
      out.push((v as Ann).lineage)
      lists((v as Ann).data, out)
    } else for (const x of Object.values(v)) lists(x, out)
  }
  return out
}

const entryId = (e: Entry) => `${e.table}\u0000${JSON.stringify(e.key)}`

/**
 * Cases the lineage tests use: no limit anywhere (an unordered limit keeps arbitrary rows, and
 * under an order, elements with equal data but different lineage are ties).
 */
const arbLineageCase = () => arbCase().filter((c) => c.limit === undefined && !features(c.query).has('limit'))

function rowExists(c: Case, data: Data, e: Entry): boolean {
  const spec = c.schema.specs.find((s) => s.name === e.table)
  if (spec === undefined || !spec.lineage) return false
  const key = spec.key
  const values = key.length === 1 ? [e.key] : (e.key as unknown[])
  return (data[e.table] ?? []).some((row) => key.every((k, i) => valueEquals(row[k], values[i])))
}

eachDialect('lineage agrees with the oracle', (get) => {
  test(`${numRuns} random schemas, data and queries: run(lineage(q)) = the lineage rule`, async () => {
    await assertAsyncProperty(
      fc.asyncProperty(arbLineageCase(), async (c) => {
        const expected = evaluateLineage(c.query[AST], c.data)
        const [actual] = await runAll(get(), c, [lineage(c.query)])
        const r = compareBags(actual!, expected)
        if (!r.ok) fail(c, get(), r.message)
      }),
      params(numRuns),
    )
  }, TIMEOUT)
})

/** Whether some `where` condition in `e` reads a query (exists/empty/aggregate). */
function hasConditionQuery(e: ast.Expr): boolean {
  let found = false
  const walk = (x: unknown): void => {
    if (found || typeof x !== 'object' || x === null) return
    const n = x as ast.Expr
    if (n.kind === 'where' && JSON.stringify(n.cond, (k, v) => (k === 'table' ? undefined : v)).match(/"kind":"(exists|agg)"/)) found = true
    for (const [k, v] of Object.entries(x)) if (k !== 'table' && typeof v === 'object') walk(v)
  }
  walk(e)
  return found
}

eachDialect('why-provenance agrees with the oracle', (get) => {
  const runs = Math.max(50, Math.floor(numRuns / 2))
  test(`${runs} random schemas, data and queries: run(lineage(q, { why: true })) = the rule with witnesses`, async () => {
    await assertAsyncProperty(
      // Only queries with a condition that reads a query: the others are the plain rule.
      // (Q.groupBy and Q.distinct included, in the condition's queries and elsewhere.)
      fc.asyncProperty(arbLineageCase().filter((c) => hasConditionQuery(c.query[AST])), async (c) => {
        const expected = evaluateLineage(c.query[AST], c.data, { why: true })
        let actual: unknown[] | undefined
        try {
          ;[actual] = await runAll(get(), c, [lineage(c.query, { why: true })])
        } catch (e) {
          fail(c, get(), `lineage(q, { why: true }) threw: ${(e as Error).message}`)
        }
        // Entries are compared as bags: witnesses come in the order the database lists them.
        const r = compareBags(actual!, expected)
        if (!r.ok) fail(c, get(), `why: ${r.message}`)
      }),
      params(runs),
    )
  }, TIMEOUT)
})

eachDialect('lineage properties', (get) => {
  const runs = Math.max(50, Math.floor(numRuns / 3))

  test('stripping the annotations from lineage(q) gives exactly the bag of q', async () => {
    await assertAsyncProperty(
      fc.asyncProperty(arbLineageCase(), async (c) => {
        const [annotated, plain] = await runAll(get(), c, [lineage(c.query), c.query])
        const r = compareBags(annotated!.map(strip), plain!)
        if (!r.ok) fail(c, get(), `strip(lineage(q)) != q: ${r.message}`)
      }),
      params(runs),
    )
  }, TIMEOUT)

  test('every entry names an existing row of a tracked table', async () => {
    await assertAsyncProperty(
      fc.asyncProperty(arbLineageCase(), async (c) => {
        const [annotated] = await runAll(get(), c, [lineage(c.query)])
        for (const l of lists(annotated)) {
          for (const e of l) if (!rowExists(c, c.data, e)) fail(c, get(), `entry ${show(e)} names no row of a tracked table`)
        }
      }),
      params(runs),
    )
  }, TIMEOUT)

  test("entries are in generator order (the rule's order) without duplicates", async () => {
    await assertAsyncProperty(
      fc.asyncProperty(arbLineageCase(), async (c) => {
        const [annotated] = await runAll(get(), c, [lineage(c.query)])
        const expected = evaluateLineage(c.query[AST], c.data) as unknown as Ann[]
        const unmatched = [...expected]
        for (const row of annotated as Ann[]) {
          const ids = row.lineage.map(entryId)
          if (new Set(ids).size !== ids.length) fail(c, get(), `duplicate entries in ${show(row.lineage)}`)
          // Some row of the rule's result has equal data and exactly this sequence of entries.
          const i = unmatched.findIndex((x) => valueEquals(strip(x.data), strip(row.data)) && x.lineage.map(entryId).join('|') === ids.join('|'))
          if (i < 0) fail(c, get(), `no row of the rule's result has data ${show(strip(row.data))} with entries in the order ${show(row.lineage)}`)
          unmatched.splice(i, 1)
        }
      }),
      params(runs),
    )
  }, TIMEOUT)
})
