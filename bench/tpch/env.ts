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

export function tpchSelection(): TpchSelection {
  return { sf: envNum('TPCH_SF', 0.01), seed: envNum('TPCH_SEED', 20260101), dialects: envDialects('TPCH_DIALECTS'), queries: envList('TPCH_QUERIES', '') }
}
