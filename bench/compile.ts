/**
 * `npm run bench:compile`: the DSL's own compile cost (issue 8: "under 100 microseconds cold")
 * for the 22 TPC-H queries of `tpch/queries.ts`, nothing but compiling: no database.
 *
 * Two builds side by side (benchmarks.md: ratios measured in one run): NEW = this checkout's
 * `dist/` (built first when missing or older than `src/`), OLD = COMPILE_OLD (the `index.js` of
 * another build, e.g. main's `tsc` output copied to a temp dir with a `node_modules` link
 * beside it); without COMPILE_OLD only NEW is measured.
 *
 * - SQL check: every query compiles to the same statements (text and parameters) in both
 *   builds, on both dialects; a difference is printed and the run fails. COMPILE_DUMP=file
 *   writes NEW's statements there (one block per dialect and query) for a diff across commits.
 * - warm: a plan-cache miss (a freshly built query object) in a process whose compiler has run
 *   before (every query compiled 30 times per build first). Per round, per query, per build in
 *   alternating order: the median of COMPILE_BATCHES (200) compiles. Printed: per query the
 *   median over rounds per build, and the median of the per-round NEW/OLD ratios.
 * - first alone: the query is the first thing a fresh process compiles (a child per build, query,
 *   dialect and round, builds alternating): what a program pays for its first query. Most of it
 *   is V8 compiling the compiler's functions on their first call (V8 compiles a function lazily,
 *   when first called): COMPILE_FIRST_FLAGS=--no-lazy (node flags for the children only, a
 *   diagnostic) compiles them when the modules load instead, and shows the rest.
 * - first after others: a fresh process compiles each of the other queries once (same dialect),
 *   then this one: a query's first compile in a program that has compiled others (the
 *   compiler's code compiled by V8, not yet optimised).
 *   Both: medians over COMPILE_FIRST_ROUNDS (3) children.
 *
 * Environment (defaults): COMPILE_OLD=(none)  COMPILE_NEW=(this checkout's dist/index.js)  COMPILE_ROUNDS=5  COMPILE_BATCHES=200
 * COMPILE_FIRST_ROUNDS=3 (0: skip the first-compile children)  COMPILE_FIRST_FLAGS=(none)  COMPILE_DIALECTS=sqlite,postgres
 * COMPILE_QUERIES=(all)  COMPILE_DUMP=(none)
 */
import { execFileSync } from 'node:child_process'
import { existsSync, statSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import { fileURLToPath, pathToFileURL } from 'node:url'
import * as t from 'io-ts'
import type { Dialect } from '../src/index.js'
import { envList, envNum, fmtRatio, fmtUs, geomean, median, microsPerCall, newestMtime, runIfMain, table } from './harness.js'
import { tpchQueries, tpchTables, type Lib, type TpchQuery, type TpchTables } from './tpch/queries.js'

const env = process.env
const num = envNum
const list = envList
const config = {
  // (COMPILE_NEW is read by newEntry)
  old: env.COMPILE_OLD ?? '',
  rounds: num('COMPILE_ROUNDS', 5),
  batches: num('COMPILE_BATCHES', 200),
  firstRounds: num('COMPILE_FIRST_ROUNDS', 3),
  firstFlags: (env.COMPILE_FIRST_FLAGS ?? '').split(' ').filter((f) => f !== ''),
  dialects: list('COMPILE_DIALECTS', 'sqlite,postgres') as Dialect[],
  queries: list('COMPILE_QUERIES', ''),
  dump: env.COMPILE_DUMP ?? '',
}
const root = fileURLToPath(new URL('..', import.meta.url))
const self = fileURLToPath(import.meta.url)

function newEntry(): string {
  if (env.COMPILE_NEW !== undefined && env.COMPILE_NEW !== '') return env.COMPILE_NEW
  const entry = `${root}dist/index.js`
  if (!existsSync(entry) || statSync(entry).mtimeMs < newestMtime(`${root}src`)) {
    console.log('building dist/ (tsc -p tsconfig.build.json) ...')
    execFileSync('npx', ['tsc', '-p', 'tsconfig.build.json'], { cwd: root, stdio: 'inherit' })
  }
  return entry
}

const load = async (entry: string): Promise<Lib> => (await import(pathToFileURL(entry).href)) as Lib

function queriesFor(lib: Lib): Record<string, TpchQuery> {
  const tables = tpchTables(lib, { date: lib.DateString, decimal: t.number }) as unknown as TpchTables
  const all = tpchQueries(lib, tables)
  return Object.fromEntries(Object.entries(all).filter(([name]) => config.queries.length === 0 || config.queries.includes(name)))
}

/**
 * Child mode: in this fresh process, compile each query of COMPILE_BEFORE once (dialect
 * COMPILE_CHILD_DIALECT), then COMPILE_CHILD_QUERY; print that last compile's µs.
 */
async function firstChild(entry: string): Promise<void> {
  const lib = await load(entry)
  const d = env.COMPILE_CHILD_DIALECT as Dialect
  const qs = queriesFor(lib)
  for (const name of (env.COMPILE_BEFORE ?? '').split(',').filter((n) => n !== '')) lib.compile(qs[name]!(), d)
  const q = qs[env.COMPILE_CHILD_QUERY!]!()
  const t0 = process.hrtime.bigint()
  lib.compile(q, d)
  process.stdout.write(String(Number(process.hrtime.bigint() - t0) / 1e3))
}

function firstRun(entry: string, d: Dialect, query: string, before: readonly string[]): number {
  const childEnv = { ...env, COMPILE_CHILD: entry, COMPILE_CHILD_DIALECT: d, COMPILE_CHILD_QUERY: query, COMPILE_BEFORE: before.join(',') }
  return Number(execFileSync(process.execPath, [...process.execArgv, ...config.firstFlags, self], { env: childEnv, encoding: 'utf8' }))
}

export async function main(): Promise<void> {
  if (env.COMPILE_CHILD !== undefined) return firstChild(env.COMPILE_CHILD)
  console.log(`compile bench; load average ${os.loadavg().map((l) => l.toFixed(1)).join(' ')} on ${os.cpus().length} cores`)
  const builds: { name: string; entry: string; lib: Lib }[] = []
  if (config.old !== '') builds.push({ name: 'old', entry: config.old, lib: await load(config.old) })
  const entry = newEntry()
  builds.push({ name: 'new', entry, lib: await load(entry) })
  for (const b of builds) console.log(`${b.name}: ${b.entry}`)
  const names = Object.keys(queriesFor(builds[0]!.lib))

  // SQL check (and dump)
  let dump = ''
  let differ = 0
  for (const d of config.dialects) {
    const per = builds.map((b) => queriesFor(b.lib))
    for (const name of names) {
      const texts = builds.map((_, i) => JSON.stringify(builds[i]!.lib.compile(per[i]![name]!(), d).statements, null, 1))
      dump += `-- ${d} ${name}\n${texts[texts.length - 1]}\n`
      if (texts.some((x) => x !== texts[0])) {
        differ++
        console.log(`SQL DIFFERS: ${d} ${name}\n${texts.join('\n----\n')}`)
      }
    }
  }
  if (config.dump !== '') writeFileSync(config.dump, dump)
  console.log(builds.length > 1 ? `SQL check: ${differ === 0 ? 'identical' : `${differ} differ`} (${names.length} queries x ${config.dialects.length} dialects)` : 'SQL check: one build only')

  // warm plan-cache misses
  const qs = config.dialects.map((d) => builds.map((b) => queriesFor(b.lib)))
  for (let i = 0; i < 30; i++) config.dialects.forEach((d, di) => builds.forEach((b, bi) => { for (const n of names) b.lib.compile(qs[di]![bi]![n]!(), d) }))
  // us[dialect][build][query][round]
  const us = config.dialects.map(() => builds.map(() => names.map(() => [] as number[])))
  for (let r = 0; r < config.rounds; r++) {
    const order = builds.map((_, i) => i)
    if (r % 2 === 1) order.reverse()
    config.dialects.forEach((d, di) => {
      names.forEach((n, qi) => {
        for (const bi of order) {
          const b = builds[bi]!
          const build = qs[di]![bi]![n]!
          us[di]![bi]![qi]!.push(microsPerCall(() => build(), (q) => b.lib.compile(q, d), { batches: config.batches, warm: 5 }))
        }
      })
    })
  }
  // first compile in a fresh process, alone and after the other queries: first[kind][dialect][build][query] = µs per round
  const first = (['alone', 'after'] as const).map((kind) => config.dialects.map(() => builds.map(() => names.map(() => [] as number[]))))
  for (let r = 0; r < config.firstRounds; r++) {
    const order = builds.map((_, i) => i)
    if (r % 2 === 1) order.reverse()
    ;(['alone', 'after'] as const).forEach((kind, ki) => config.dialects.forEach((d, di) => names.forEach((n, qi) => {
      const before = kind === 'alone' ? [] : names.filter((m) => m !== n)
      for (const bi of order) first[ki]![di]![bi]![qi]!.push(firstRun(builds[bi]!.entry, d, n, before))
    })))
  }
  const firstHead = (kind: string) => (config.firstRounds > 0 ? builds.map((b) => `${b.name} ${kind} µs`) : [])

  config.dialects.forEach((d, di) => {
    console.log(`\n######## ${d}: warm plan-cache miss, µs (median over ${config.rounds} rounds of medians of ${config.batches}); first compile in a fresh process, µs (median of ${config.firstRounds} children${config.firstFlags.length > 0 ? `, node ${config.firstFlags.join(' ')}` : ''}): alone (the process's first compile) and after the other queries\n`)
    const med = builds.map((_, bi) => names.map((_, qi) => median(us[di]![bi]![qi]!)))
    const firstMed = first.map((k) => builds.map((_, bi) => names.map((_, qi) => median(k[di]![bi]![qi]!))))
    const firstCols = (f: (xs: readonly number[]) => string) => (config.firstRounds > 0 ? firstMed.flatMap((k) => k.map(f)) : [])
    const ratio = names.map((_, qi) => median(us[di]![0]![qi]!.map((_, r) => us[di]![builds.length - 1]![qi]![r]! / us[di]![0]![qi]![r]!)))
    const head = ['query', ...builds.map((b) => `${b.name} µs`), ...(builds.length > 1 ? ['new/old'] : []), ...firstHead('first alone'), ...firstHead('first after others')]
    const rows = names.map((n, qi) => [
      n, ...builds.map((_, bi) => fmtUs(med[bi]![qi]!)), ...(builds.length > 1 ? [fmtRatio(ratio[qi]!)] : []), ...firstCols((xs) => fmtUs(xs[qi]!)),
    ])
    rows.push([
      'geomean', ...builds.map((_, bi) => fmtUs(geomean(med[bi]!))), ...(builds.length > 1 ? [fmtRatio(geomean(ratio))] : []), ...firstCols((xs) => fmtUs(geomean(xs))),
    ])
    rows.push(['max', ...builds.map((_, bi) => fmtUs(Math.max(...med[bi]!))), ...(builds.length > 1 ? [''] : []), ...firstCols((xs) => fmtUs(Math.max(...xs)))])
    rows.push(['≥ 100 µs', ...builds.map((_, bi) => String(med[bi]!.filter((v) => v >= 100).length)), ...(builds.length > 1 ? [''] : []), ...firstCols((xs) => String(xs.filter((v) => v >= 100).length))])
    console.log(table(head, rows))
  })
  console.log(`\nload average at the end ${os.loadavg().map((l) => l.toFixed(1)).join(' ')}`)
  if (differ > 0) process.exitCode = 1
}

runIfMain(import.meta.url, main)
