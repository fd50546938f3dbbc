/**
 * What the TPC-H benchmarks (`bench/tpch.ts`, `bench/tpch-sql.ts`) measure, from the
 * environment, so both read the same data by default: TPCH_SF=0.01  TPCH_SEED=20260101
 * TPCH_DIALECTS=sqlite,postgres  TPCH_QUERIES=(all, e.g. Q1,Q6).
 */
import { envDialects, envList, envNum } from '../harness.js'
import type { Dialect } from '../lib.js'

export interface TpchSelection {
  readonly sf: number
  readonly seed: number
  readonly dialects: readonly Dialect[]
  /** Query names; empty: all 22. */
  readonly queries: readonly string[]
}

/** The 22 query names, `Q1` to `Q22`. */
const NAMES = Array.from({ length: 22 }, (_, i) => `Q${i + 1}`)

export function tpchSelection(): TpchSelection {
  // `11` and `q11` name Q11; any other name is an error (a typo once measured nothing, silently).
  const queries = envList('TPCH_QUERIES', '').map((n) => (/^q?\d+$/i.test(n) ? `Q${n.replace(/^q/i, '')}` : n))
  const unknown = queries.filter((n) => !NAMES.includes(n))
  if (unknown.length > 0) throw new Error(`TPCH_QUERIES: unknown ${unknown.join(', ')}; expected names from Q1 to Q22, e.g. TPCH_QUERIES=Q1,Q6`)
  return { sf: envNum('TPCH_SF', 0.01), seed: envNum('TPCH_SEED', 20260101), dialects: envDialects('TPCH_DIALECTS'), queries }
}
