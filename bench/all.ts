/**
 * `npm run bench`: every benchmark of `../shared/reference/benchmarks.md` this project reports,
 * one after another, each printing its figures next to its targets:
 * 1. bench/run.ts — the DSL against hand-written SQL, and the DSL's own compile cost (issue 2);
 * 2. bench/lineage-org.ts — lineage overhead on the organisation workload (issue 3);
 * 3. bench/lineage-width.ts — lineage overhead on the m-way join (issue 3);
 * 4. bench/derived.ts — refresh throughput, staleness cost, affected() (issue 4);
 * 5. bench/derived-join.ts — staleness cost of a derivation over a two-root join (issue 4);
 * 6. bench/orm-compare.ts — run(q) against Kysely (jsonArrayFrom) and Drizzle relational queries
 *    on nested results (issue 12);
 * 7. bench/tpch.ts — TPC-H SF 0.01: the DSL against the official SQL, and lineage (issue 8), on
 *    the built package (dist/, built first when older than src/).
 * Each part also runs alone: `npm run bench:org`, `bench:lineage`, `bench:width`, `bench:derived`,
 * `bench:join`, `bench:orm`, `bench:tpch`.
 * `BENCH_PARTS=org,lineage` picks parts.
 */
import { main as org } from './run.js'
import { main as lineageOrg } from './lineage-org.js'
import { main as lineageWidth } from './lineage-width.js'
import { main as derived } from './derived.js'
import { main as derivedJoin } from './derived-join.js'
import { main as orm } from './orm-compare.js'
import { main as tpch } from './tpch.js'

const parts: [string, () => Promise<void>][] = [
  ['org', org],
  ['lineage', lineageOrg],
  ['width', lineageWidth],
  ['derived', derived],
  ['join', derivedJoin],
  ['orm', orm],
  ['tpch', tpch],
]
const wanted = process.env['BENCH_PARTS']?.split(',').map((s) => s.trim()).filter(Boolean)
for (const [name, part] of parts) {
  if (wanted !== undefined && !wanted.includes(name)) continue
  console.log(`\n######## ${name}\n`)
  await part()
}
