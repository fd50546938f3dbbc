/**
 * The library as the lineage and organisation benchmarks use it: the BUILT package (`dist/`,
 * the `tsc` output users import), built with `npm run build`'s compiler when missing or older
 * than `src/` — not `src/` through tsx, whose `keepNames` wraps every function expression in a
 * `defineProperty` call and inflates per-element costs (/work/shared/reference/benchmarks.md).
 * `LQ_BENCH_LIB=src` runs against `src/` instead (to compare), `LQ_BENCH_LIB=<path of an
 * index.js>` against another build (e.g. main's, for before/after ratios in one run).
 *
 * Everything the benchmarks need is re-exported from here, so queries, `run` and `lineage` come
 * from one copy of the library (a query object built by one copy is not a query to another).
 */
import { execFileSync } from 'node:child_process'
import { existsSync, statSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import type * as Index from '../src/index.js'
import type * as Compile from '../src/query/compile.js'
import { newestMtime } from './harness.js'

const root = fileURLToPath(new URL('..', import.meta.url))

async function load(): Promise<{ index: typeof Index; compile: typeof Compile; where: string }> {
  const choice = process.env['LQ_BENCH_LIB'] ?? ''
  if (choice === 'src') {
    return { index: await import('../src/index.js'), compile: await import('../src/query/compile.js'), where: 'src/ (tsx)' }
  }
  let entry = choice
  if (entry === '') {
    entry = join(root, 'dist', 'index.js')
    if (!existsSync(entry) || statSync(entry).mtimeMs < newestMtime(join(root, 'src'))) {
      console.log('building dist/ (tsc -p tsconfig.build.json) ...')
      execFileSync('npx', ['tsc', '-p', 'tsconfig.build.json'], { cwd: root, stdio: 'inherit' })
    }
  }
  const index = (await import(pathToFileURL(entry).href)) as typeof Index
  const compile = (await import(pathToFileURL(join(dirname(entry), 'query', 'compile.js')).href)) as typeof Compile
  return { index, compile, where: entry }
}

const loaded = await load()

/** Where the library was loaded from (printed by the benchmarks). */
export const libraryLocation: string = loaded.where
export const lib: typeof Index = loaded.index
export const { Q, table, run, stream, lineage, compile, sourceRows, groupBySource, plainLineage, createTable, insertRows } = loaded.index
/** @internal compile-or-fetch of a query's plan (SQL and decoder), from the same copy. */
export const plan: typeof Compile.plan = loaded.compile.plan
export type { AnyQuery, Dialect, Expr, Table, CompiledStatement } from '../src/index.js'
