/**
 * `npm run bench:tpch` (and part `tpch` of `npm run bench`): TPC-H at SF 0.01 (benchmarks.md
 * section 5, issue 8's Performance section) on SQLite and PostgreSQL.
 *
 * Data: `tpch/generate.ts` (seeded, reproducible), loaded by `tpch/load.ts` into an in-memory
 * SQLite database and a fresh PostgreSQL schema, with primary keys and foreign-key indexes.
 *
 * The library is the BUILT package (`dist/`, the `tsc` output users import; built with `tsc -p
 * tsconfig.build.json` first when it is missing or older than `src/`), loaded at run time; the queries of `tpch/queries.ts` are
 * built with it. Only the benchmark's own code runs through tsx.
 *
 * Per dialect and query (Q1..Q22):
 * - official: the official SQL text (`tpch/official.ts`) executed as
 *   `db.executeQuery(CompiledQuery.raw(sql))` on the same Kysely instance `run()` uses;
 * - dsl sql: the DSL's compiled statement executed the same way (the SQL's own cost);
 * - dsl run: `run(db, q)` (compile-cache lookup + execution + decoding);
 * interleaved rounds (`harness.compare`: A B C, then C B A, ...), medians; the ratio columns are
 * medians of per-round ratios of CPU time (this process plus the PostgreSQL backend), like
 * `bench/run.ts`, and (`min` columns) the ratios of the least samples.
 *
 * How the samples are taken, so that a query's ratio is the same from one run to the next (a
 * sub-millisecond query once read 0.71x, 1.29x and 1.04x in three runs at equal load):
 * - many short samples (TPCH_SAMPLE_MS=5, up to TPCH_ROUNDS=30 rounds within the budget), not
 *   5 samples of 20 ms: a sample that another process or the VM's host slowed spoils one round
 *   in 30, not one in 5;
 * - no forced collection before each sample (`compare`'s `collect: false`): the concurrent
 *   sweeping a forced collection leaves on V8's helper threads ran during the next sample and
 *   `process.cpuUsage` counted it there (a 1.7 ms sample read 8.5 ms of CPU);
 * - V8 collects on the main thread (`--single-threaded-gc`: the benchmark starts itself again
 *   with it when it was not given; TPCH_GC=default keeps V8's helper threads): each collection's
 *   cost lands in the sample whose allocations caused it, not in whichever sample a helper
 *   thread happened to overlap (SQLite Q19's DSL run drifted from 1.1x to 1.6x within one
 *   comparison as concurrent marking of the heap landed in its samples);
 * - the repetitions per sample come from the least of two single runs (one run that waited for
 *   a core had set one repetition per sample for a whole comparison).
 * - stmts: statements the DSL's `run()` executed (counted by a Kysely plugin on the instance);
 * - cold µs: `compile(q, dialect)` of a freshly built query object (median);
 * - answer: the DSL's rows against the official rows (`tpch/answers.ts`: float tolerance 1e-6
 *   relative, ordered comparison; "bag" when the rows agree but not their order);
 * - and once per dialect, official SQLite answers against official PostgreSQL answers.
 * A query without a DSL formulation prints "n/a"; a DSL query that fails prints its
 * error. Geometric means per dialect are over the queries that ran with equal answers.
 *
 * Lineage: `run(lineage(q))` against `run(q)` per query (CPU-time ratio), the lineage entries
 * returned, and the time per entry, whole and extra over `q` (ns per contributing row, for
 * full-table aggregates such as Q1, whose grouped rows' lineage names every row of the group).
 *
 * Environment (defaults): TPCH_SF=0.01  TPCH_SEED=20260101  TPCH_DIALECTS=sqlite,postgres
 * TPCH_QUERIES=(all, e.g. Q1,Q6)  TPCH_BUDGET_MS=500 (per query and comparison, split over its variants)
 * TPCH_SAMPLE_MS=5  TPCH_ROUNDS=30 (at most; at least 3 unless one run is over TPCH_SLOW_MS)  TPCH_GC=single (or default)
 * TPCH_SLOW_MS=1500 (slower: the check runs are the only samples)  TPCH_LINEAGE=1
 * TPCH_PG_DECIMAL=numeric (or real)  TPCH_DSL_DECIMAL=number (or codec)  TPCH_PG_SCHEMA=lq_tpch  TPCH_PG_TIMEOUT_MS=60000  TPCH_SHOW_SQL=0
 * TPCH_LIB=(path of another build's index.js, e.g. a branch's tsc output; default dist/)
 * PGHOST=127.0.0.1 PGPORT=5432 PGUSER=postgres PGDATABASE=test
 */
import { execFileSync, spawnSync } from 'node:child_process'
import { existsSync, statSync } from 'node:fs'
import os from 'node:os'
import { fileURLToPath, pathToFileURL } from 'node:url'
import Database from 'better-sqlite3'
import { CompiledQuery, Kysely, PostgresDialect, SqliteDialect, type KyselyPlugin } from 'kysely'
import * as t from 'io-ts'
import pg from 'pg'
import type { AnyQuery, Dialect } from '../src/index.js'
import {
  compare, envNum, fmtMs, fmtRatio, fmtUs, geomean, indent, microsPerCall, newestMtime, pgConfig, processCpuClock, runIfMain, selfCpuClock, sumClocks, table, timeBoth,
  type Clock, type Timing,
} from './harness.js'
import { tpchSelection } from './tpch/env.js'
import { compareAnswers, normalise, type AnswerCheck, type NormRow } from './tpch/answers.js'
import { generate, type TpchData } from './tpch/generate.js'
import { loadPostgres, loadSqlite } from './tpch/load.js'
import { officialQueries, type OfficialQuery } from './tpch/official.js'
import { tpchQueries, tpchTables, type Lib, type TpchQuery, type TpchTables } from './tpch/queries.js'

const env = process.env
const num = envNum

const config = {
  ...tpchSelection(),
  budgetMs: num('TPCH_BUDGET_MS', 500),
  sampleMs: num('TPCH_SAMPLE_MS', 5),
  rounds: num('TPCH_ROUNDS', 30),
  singleThreadedGc: (env.TPCH_GC ?? 'single') !== 'default',
  slowMs: num('TPCH_SLOW_MS', 1500),
  lineage: env.TPCH_LINEAGE !== '0',
  pgDecimal: (env.TPCH_PG_DECIMAL ?? 'numeric') as 'numeric' | 'real',
  pgSchema: env.TPCH_PG_SCHEMA ?? 'lq_tpch',
  pgTimeoutMs: num('TPCH_PG_TIMEOUT_MS', 60_000),
  showSql: env.TPCH_SHOW_SQL === '1',
  pg: pgConfig,
}
if (!/^[a-z_][a-z0-9_]*$/.test(config.pgSchema)) throw new Error(`TPCH_PG_SCHEMA must be a plain identifier, got ${config.pgSchema}`)

// ---------------------------------------------------------------- the built package

const root = fileURLToPath(new URL('..', import.meta.url))

/** `dist/` as users import it: built with `npm run build` when missing or older than `src/`. */
async function loadBuiltPackage(): Promise<{ lib: Lib; phases: Phases | undefined }> {
  const other = env.TPCH_LIB
  let entry = `${root}dist/index.js`
  if (other !== undefined && other !== '') {
    console.log(`library: ${other} (TPCH_LIB)`)
    entry = other
  } else if (!existsSync(entry) || statSync(entry).mtimeMs < newestMtime(`${root}src`)) {
    console.log('building dist/ (npm run build) ...')
    execFileSync('npx', ['tsc', '-p', 'tsconfig.build.json'], { cwd: root, stdio: 'inherit' })
  }
  const lib = (await import(pathToFileURL(entry).href)) as Lib
  return { lib, phases: await loadPhases(entry) }
}

/**
 * The compiler's phases in the same build (internal modules of `dist/`, for the per-phase compile
 * profile): `normalise` (DSL AST -> normal form), `lower` (-> Kysely operation nodes), `print`
 * (Kysely's dialect compiler -> SQL text). `undefined` when the build has another layout.
 */
interface Phases {
  normalise(node: unknown): unknown
  lower(normal: unknown, dialect: Dialect): unknown
  print(lowered: unknown, dialect: Dialect): unknown
  ast(q: AnyQuery): unknown
}

async function loadPhases(entry: string): Promise<Phases | undefined> {
  const dir = entry.slice(0, entry.lastIndexOf('/'))
  const load = async (m: string) => (await import(pathToFileURL(`${dir}/query/${m}.js`).href)) as Record<string, any>
  try {
    const [n, l, p, d, dsl] = await Promise.all([load('normalise'), load('lower'), load('sql-nodes'), load('dialect'), load('dsl')])
    return {
      normalise: (node) => n.normalise(node),
      lower: (normal, dialect) => l.lower(normal, d.hooksFor(dialect)),
      print: (lowered, dialect) => p.print((lowered as { select: unknown }).select, dialect),
      ast: (q) => (q as unknown as Record<symbol, unknown>)[dsl.AST as symbol],
    }
  } catch {
    return undefined
  }
}

// ---------------------------------------------------------------- databases

interface Db {
  readonly dialect: Dialect
  readonly db: Kysely<any>
  /** Statements executed through `db` so far. */
  statements(): number
  cpuClock(): Promise<Clock | undefined>
  close(): Promise<void>
}

/** A Kysely plugin counting executed statements (each executed statement passes transformResult once). */
function counter(): { plugin: KyselyPlugin; count(): number } {
  let n = 0
  return {
    plugin: {
      transformQuery: (args) => args.node,
      transformResult: async (args) => {
        n++
        return args.result
      },
    },
    count: () => n,
  }
}

async function openSqlite(data: TpchData): Promise<Db> {
  const raw = new Database(':memory:')
  loadSqlite(raw, data)
  const c = counter()
  const db = new Kysely<any>({ dialect: new SqliteDialect({ database: raw }), plugins: [c.plugin] })
  const clock = selfCpuClock()
  return { dialect: 'sqlite', db, statements: c.count, cpuClock: async () => clock, close: () => db.destroy() }
}

async function pgAdmin(sql: string): Promise<void> {
  const admin = new pg.Client(config.pg)
  await admin.connect()
  try {
    await admin.query(sql)
  } finally {
    await admin.end()
  }
}

async function openPostgres(data: TpchData): Promise<Db> {
  await pgAdmin(`drop schema if exists ${config.pgSchema} cascade; create schema ${config.pgSchema}`)
  // One connection, so one backend does all the work and its CPU clock covers it; no parallel workers (their CPU is not counted).
  const options = [`-c search_path=${config.pgSchema}`, `-c statement_timeout=${config.pgTimeoutMs}`, '-c max_parallel_workers_per_gather=0']
  const pool = new pg.Pool({ ...config.pg, max: 1, idleTimeoutMillis: 0, options: options.join(' ') })
  const client = await pool.connect()
  try {
    await loadPostgres(client, data, { decimal: config.pgDecimal })
  } finally {
    client.release()
  }
  const c = counter()
  const db = new Kysely<any>({ dialect: new PostgresDialect({ pool }), plugins: [c.plugin] })
  const self = selfCpuClock()
  return {
    dialect: 'postgres',
    db,
    statements: c.count,
    async cpuClock() {
      const r = await db.executeQuery<{ pid: number }>(CompiledQuery.raw('select pg_backend_pid() as pid'))
      const pid = r.rows[0]?.pid
      return pid === undefined ? undefined : sumClocks(self, processCpuClock(pid))
    },
    async close() {
      await db.destroy()
      await pgAdmin(`drop schema if exists ${config.pgSchema} cascade`)
    },
  }
}

// ---------------------------------------------------------------- one query

const NAN = Number.NaN
const primary = (t: Timing): number => (Number.isFinite(t.cpu) ? t.cpu : t.wall)

interface QueryResult {
  readonly name: string
  /** The official SQL's answer, normalised (for the SQLite = PostgreSQL check). */
  readonly expected: readonly NormRow[]
  readonly officialMs: number
  readonly officialRows: number
  /** Why there is no DSL figure: 'n/a (no formulation)' or the error; undefined when it ran. */
  readonly dslStatus: string | undefined
  readonly dslSqlMs: number
  readonly dslRunMs: number
  /** dsl run / official and dsl sql / official (CPU when available): medians of per-round ratios. */
  readonly runRatio: number
  readonly sqlRatio: number
  /** The same, least sample against least sample. */
  readonly runMinRatio: number
  readonly sqlMinRatio: number
  readonly statements: number
  readonly coldUs: number
  /** Cold compile by phase: normalise, lower, print (µs, medians; NaN without the phases). */
  readonly phaseUs: readonly [number, number, number]
  readonly answer: AnswerCheck | undefined
  readonly lineage: LineageResult | undefined
  readonly dslSql: string | undefined
}

interface LineageResult {
  readonly ratio: number
  readonly plainMs: number
  readonly lineageMs: number
  readonly entries: number
  readonly rows: number
  readonly error?: string
}

const firstLine = (e: unknown): string => (e instanceof Error ? e.message : String(e)).split('\n')[0]?.slice(0, 140) ?? ''

/** Lineage entries in an annotated result (top-level rows and nested elements). */
function countEntries(x: unknown): number {
  if (Array.isArray(x)) return x.reduce((a: number, el) => a + countEntries(el), 0)
  if (typeof x !== 'object' || x === null) return 0
  const o = x as { lineage?: unknown; data?: unknown }
  if (Array.isArray(o.lineage) && 'data' in o) return o.lineage.length + countEntries(o.data)
  return Object.values(o).reduce((a: number, v) => a + countEntries(v), 0)
}

async function runQuery(lib: Lib, phases: Phases | undefined, h: Db, off: OfficialQuery, build: TpchQuery | undefined, cpu: Clock | undefined): Promise<QueryResult> {
  const { db, dialect } = h
  const official = CompiledQuery.raw(off.sql(dialect))
  const o0 = await timeBoth(() => db.executeQuery(official), cpu)
  const offRows = (await db.executeQuery(official)).rows
  const columns = offRows.length > 0 ? Object.keys(offRows[0] as object) : undefined
  const expected = normalise(offRows, columns)
  const base = {
    name: off.name, expected, officialRows: offRows.length, dslSqlMs: NAN, dslRunMs: NAN, runRatio: NAN, sqlRatio: NAN, runMinRatio: NAN, sqlMinRatio: NAN, statements: NAN, coldUs: NAN, phaseUs: [NAN, NAN, NAN] as const,
    answer: undefined, lineage: undefined, dslSql: undefined,
  }
  const officialOnly = async (status: string): Promise<QueryResult> => {
    const slow = primary(o0) > config.slowMs
    const c = slow ? undefined : await compare([{ name: 'official', fn: () => db.executeQuery(official) }], opts([o0.wall]))
    return { ...base, officialMs: c === undefined ? primary(o0) : cpuOrWall(c.variants[0]), dslStatus: status }
  }
  if (build === undefined) return officialOnly('n/a (no formulation)')

  // the DSL: build, compile, run once (statements counted), compare answers
  let q: AnyQuery
  let sqlText: string
  let compiled: CompiledQuery[]
  let rows: unknown[]
  let r0: Timing
  let stmts: number
  try {
    q = build()
    const c = lib.compile(q, dialect)
    sqlText = c.statements.map((s) => s.sql).join(';\n')
    compiled = c.statements.map((s) => CompiledQuery.raw(s.sql, s.parameters as unknown[]))
    const before = h.statements()
    r0 = await timeBoth(async () => {
      rows = await lib.run(db, q)
    }, cpu)
    stmts = h.statements() - before
  } catch (e) {
    return officialOnly(`error: ${firstLine(e)}`)
  }
  const answer = compareAnswers(expected, normalise(rows!, columns), off.ordered)
  const coldUs = microsPerCall(() => build(), (fresh) => lib.compile(fresh, dialect), { batches: 50, warm: 10 })
  const ph = phases
  const phaseUs = ph === undefined ? ([NAN, NAN, NAN] as const) : ([
    microsPerCall(() => ph.ast(build()), (node) => ph.normalise(node), { batches: 50, warm: 10 }),
    microsPerCall(() => ph.normalise(ph.ast(build())), (n) => ph.lower(n, dialect), { batches: 50, warm: 10 }),
    microsPerCall(() => ph.lower(ph.normalise(ph.ast(build())), dialect), (l) => ph.print(l, dialect), { batches: 50, warm: 10 }),
  ] as const)

  const execDsl = async () => {
    for (const s of compiled) await db.executeQuery(s)
  }
  const variants = [
    { name: 'official', fn: () => db.executeQuery(official) },
    { name: 'dsl sql', fn: execDsl },
    { name: 'dsl run', fn: () => lib.run(db, q) },
  ]
  let officialMs: number, dslSqlMs: number, dslRunMs: number, runRatio: number, sqlRatio: number, runMinRatio: number, sqlMinRatio: number
  if (Math.max(primary(o0), primary(r0)) > config.slowMs) {
    // too slow to repeat: the check runs are the samples
    const s0 = await timeBoth(execDsl, cpu)
    officialMs = primary(o0)
    dslSqlMs = primary(s0)
    dslRunMs = primary(r0)
    runRatio = runMinRatio = dslRunMs / officialMs
    sqlRatio = sqlMinRatio = dslSqlMs / officialMs
  } else {
    const c = await compare(variants, opts([o0.wall, NAN, r0.wall]))
    ;[officialMs, dslSqlMs, dslRunMs] = c.variants.map(cpuOrWall) as [number, number, number]
    const m = cpu === undefined ? 'wall' : 'cpu'
    runRatio = c.ratio(2, 0, m)
    sqlRatio = c.ratio(1, 0, m)
    runMinRatio = c.minRatio(2, 0, m)
    sqlMinRatio = c.minRatio(1, 0, m)
  }

  let lin: LineageResult | undefined
  if (config.lineage) {
    try {
      const lq = lib.lineage(q)
      let annotated: unknown[] = []
      const l0 = await timeBoth(async () => {
        annotated = await lib.run(db, lq)
      }, cpu)
      const entries = countEntries(annotated)
      if (Math.max(primary(l0), dslRunMs) > config.slowMs) {
        lin = { ratio: primary(l0) / dslRunMs, plainMs: dslRunMs, lineageMs: primary(l0), entries, rows: annotated.length }
      } else {
        const c = await compare([{ name: 'q', fn: () => lib.run(db, q) }, { name: 'lineage(q)', fn: () => lib.run(db, lq) }], opts([r0.wall, l0.wall]))
        lin = {
          ratio: c.ratio(1, 0, cpu === undefined ? 'wall' : 'cpu'), plainMs: cpuOrWall(c.variants[0]), lineageMs: cpuOrWall(c.variants[1]),
          entries, rows: annotated.length,
        }
      }
    } catch (e) {
      lin = { ratio: NAN, plainMs: NAN, lineageMs: NAN, entries: NAN, rows: NAN, error: firstLine(e) }
    }
  }
  return { ...base, officialMs, dslStatus: undefined, dslSqlMs, dslRunMs, runRatio, sqlRatio, runMinRatio, sqlMinRatio, statements: stmts, coldUs, phaseUs, answer, lineage: lin, dslSql: sqlText }

  function opts(singleMs: number[]) {
    return { maxRounds: config.rounds, minRounds: 3, budgetMs: config.budgetMs, sampleMs: config.sampleMs, singleMs, warmup: true, cpu, collect: false }
  }
  function cpuOrWall(v: { median: number; cpuMedian: number } | undefined): number {
    if (v === undefined) return NAN
    return Number.isFinite(v.cpuMedian) ? v.cpuMedian : v.median
  }
}

// ---------------------------------------------------------------- report

const answerText = (a: AnswerCheck | undefined): string =>
  a === undefined ? '' : a.equal ? (a.how === 'ordered' ? 'equal' : 'equal (bag)') : `DIFFERENT: ${a.how === 'bag' ? 'same rows, other order' : a.detail}`

function report(dialect: Dialect, results: readonly QueryResult[]): void {
  const rows = results.map((r) => {
    const ran = r.dslStatus === undefined
    return [
      r.name,
      fmtMs(r.officialMs),
      String(r.officialRows),
      ran ? fmtMs(r.dslRunMs) : '',
      ran ? fmtRatio(r.runRatio) : '',
      ran ? fmtRatio(r.runMinRatio) : '',
      ran ? fmtRatio(r.sqlRatio) : '',
      ran ? fmtRatio(r.sqlMinRatio) : '',
      ran ? String(r.statements) : '',
      ran ? fmtUs(r.coldUs) : '',
      ran ? r.phaseUs.map(fmtUs).join(' / ') : '',
      ran ? answerText(r.answer) : (r.dslStatus as string),
    ]
  })
  console.log(table(['query', 'official', 'rows', 'dsl run', 'run/off', 'min', 'sql/off', 'min', 'stmts', 'cold µs', 'norm / lower / print µs', 'DSL answer'], rows))
  const ran = results.filter((r) => r.dslStatus === undefined && r.answer?.equal === true)
  const runRatios = ran.map((r) => r.runRatio)
  const worst = ran.reduce<QueryResult | undefined>((a, r) => (a === undefined || r.runRatio > a.runRatio ? r : a), undefined)
  const worstMin = ran.reduce<QueryResult | undefined>((a, r) => (a === undefined || r.runMinRatio > a.runMinRatio ? r : a), undefined)
  console.log(
    `\n${dialect}: the DSL ran ${ran.length}/${results.length} queries with equal answers; geometric mean run/official ${fmtRatio(geomean(runRatios))}` +
      ` (sql/official ${fmtRatio(geomean(ran.map((r) => r.sqlRatio)))}), max ${fmtRatio(worst?.runRatio ?? NAN)} (${worst?.name ?? '-'});` +
      ` least samples: geomean ${fmtRatio(geomean(ran.map((r) => r.runMinRatio)))}, max ${fmtRatio(worstMin?.runMinRatio ?? NAN)} (${worstMin?.name ?? '-'});` +
      ` statements per query: ${[...new Set(ran.map((r) => r.statements))].join(', ')}. Target: geomean <= 1.1x, max <= 1.5x, 1 statement each.`,
  )
  const cold = ran.map((r) => r.coldUs)
  const over = ran.filter((r) => r.coldUs >= 100).map((r) => `${r.name} ${fmtUs(r.coldUs)}`)
  console.log(`${dialect}: cold compile geomean ${fmtUs(geomean(cold))} µs, max ${fmtUs(Math.max(...cold))} µs; at or over 100 µs: ${over.length === 0 ? 'none' : over.join(', ')} (target < 100 µs each)`)
  console.log(`${dialect}: load average at the end ${os.loadavg().map((x) => x.toFixed(1)).join(' ')} (1/5/15 min) on ${os.cpus().length} cores`)
  const wrong = results.filter((r) => r.answer !== undefined && !r.answer.equal)
  if (wrong.length > 0) console.log(`WRONG ANSWERS: ${wrong.map((r) => r.name).join(', ')}`)
  console.log(`official SQL, all ${results.length} queries: ${fmtMs(results.reduce((a, r) => a + r.officialMs, 0))} (sum of per-query medians)`)

  if (config.lineage) {
    console.log(`\n${dialect}: lineage(q) vs q (run(), CPU-time ratio; entries = (table, key) pairs returned; ns/entry = lineage(q) time per entry, extra = (lineage(q) - q) per entry)`)
    const lrows = results.filter((r) => r.lineage !== undefined).map((r) => {
      const l = r.lineage as LineageResult
      if (l.error !== undefined) return [r.name, 'error', '', '', '', '', '', l.error]
      return [r.name, fmtRatio(l.ratio), fmtMs(l.plainMs), fmtMs(l.lineageMs), String(l.rows), String(l.entries),
        l.entries > 0 ? (l.lineageMs * 1e6 / l.entries).toFixed(0) : '-',
        l.entries > 0 ? (l.lineageMs > l.plainMs ? (((l.lineageMs - l.plainMs) * 1e6) / l.entries).toFixed(0) : '~0') : '-']
    })
    console.log(table(['query', 'lineage/q', 'q', 'lineage(q)', 'rows', 'entries', 'ns/entry', 'extra ns/entry'], lrows))
    const ok = results.map((r) => r.lineage?.ratio ?? NAN).filter(Number.isFinite)
    console.log(`geometric mean lineage/q ${fmtRatio(geomean(ok))} over ${ok.length} queries (target <= 2x; Perm 6.0x, SmokedDuck 1.06x)`)
  }
  if (config.showSql) for (const r of results) if (r.dslSql !== undefined) console.log(`\n${r.name} (${dialect}):\n${indent(r.dslSql)}`)
}

// ---------------------------------------------------------------- main

/**
 * The DSL's tables and queries for `dialect`: dates with the library's date codec (`date` on
 * PostgreSQL, ISO text on SQLite); decimals `t.number`, or with TPCH_DSL_DECIMAL=codec the
 * library's `decimal(15, 2)` on PostgreSQL (numeric columns; on SQLite that codec stores integer
 * units, not the REAL the official SQL reads, so SQLite keeps `t.number`).
 */
function dslFor(lib: Lib, dialect: Dialect): Record<string, TpchQuery> {
  const decimal = env.TPCH_DSL_DECIMAL === 'codec' && dialect === 'postgres' ? lib.decimal(15, 2) : t.number
  const tables = tpchTables(lib, { date: lib.DateString, decimal }) as unknown as TpchTables
  return tpchQueries(lib, tables, config.sf)
}

/**
 * With TPCH_GC=single (the default), run this benchmark in a child node process with
 * `--single-threaded-gc` when this one was started without it (`npm run bench:tpch`, `npm run
 * bench`); true when the child ran (its output is this run's).
 */
function rerunWithSingleThreadedGc(): boolean {
  if (!config.singleThreadedGc || process.execArgv.includes('--single-threaded-gc')) return false
  const r = spawnSync(process.execPath, [...process.execArgv, '--single-threaded-gc', fileURLToPath(import.meta.url)], { stdio: 'inherit', env })
  if (r.status !== 0) throw new Error(`bench/tpch.ts under --single-threaded-gc exited with ${r.status ?? r.signal}`)
  return true
}

export async function main(): Promise<void> {
  if (rerunWithSingleThreadedGc()) return
  console.log(`TPC-H SF ${config.sf}, seed ${config.seed}; load average ${os.loadavg()[0]?.toFixed(1)} on ${os.cpus().length} cores; V8 ${process.execArgv.includes('--single-threaded-gc') ? 'collects on the main thread (--single-threaded-gc)' : 'collects with helper threads'}; samples of ${config.sampleMs} ms, up to ${config.rounds} rounds`)
  const { lib, phases } = await loadBuiltPackage()
  const t0 = Date.now()
  const data = generate(config.sf, config.seed)
  console.log(`generated in ${Date.now() - t0} ms: ${Object.entries(data).map(([k, v]) => `${k} ${(v as unknown[]).length}`).join(', ')}`)
  const official = officialQueries(config.sf).filter((q) => config.queries.length === 0 || config.queries.includes(q.name))
  const officialAnswers = new Map<string, Map<string, readonly NormRow[]>>()
  // The first compile of each query in this process (JIT not warm yet), before anything else ran.
  const firstUs = new Map<Dialect, number[]>()
  for (const dialect of config.dialects) {
    const dsl = dslFor(lib, dialect)
    firstUs.set(dialect, official.flatMap((off) => {
      const build = dsl[off.name]
      if (build === undefined) return []
      const q = build()
      const t = process.hrtime.bigint()
      lib.compile(q, dialect)
      return [Number(process.hrtime.bigint() - t) / 1e3]
    }))
  }
  for (const dialect of config.dialects) {
    const t1 = Date.now()
    const h = dialect === 'sqlite' ? await openSqlite(data) : await openPostgres(data)
    console.log(`\n######## ${dialect} (loaded in ${Date.now() - t1} ms${dialect === 'postgres' ? `, decimals ${config.pgDecimal}` : ''})\n`)
    try {
      const dsl = dslFor(lib, dialect)
      const cpu = await h.cpuClock()
      const results: QueryResult[] = []
      for (const off of official) {
        const r = await runQuery(lib, phases, h, off, dsl[off.name], cpu)
        results.push(r)
        const m = officialAnswers.get(off.name) ?? new Map<string, readonly NormRow[]>()
        m.set(dialect, r.expected)
        officialAnswers.set(off.name, m)
      }
      report(dialect, results)
    } finally {
      await h.close()
    }
  }
  compileAlone(lib, official, firstUs)
  if (config.dialects.length === 2) {
    console.log('\n######## official answers: SQLite against PostgreSQL (float tolerance 1e-6 relative)\n')
    const rows = official.map((off) => {
      const m = officialAnswers.get(off.name)
      const s = m?.get('sqlite')
      const p = m?.get('postgres')
      return [off.name, String(s?.length ?? '-'), s !== undefined && p !== undefined ? answerText(compareAnswers(p, s, off.ordered)) : '-']
    })
    console.log(table(['query', 'rows', 'sqlite = postgres'], rows))
  }
}

/**
 * Compile cost without a database in between: a plan-cache miss (a freshly built query object)
 * in a process whose compiler has run before (every query of every dialect compiled 30 times
 * first), median of 200 per query; next to it, the first compile of each query in the process
 * (measured at the start of `main`, when the JIT had not compiled the compiler yet). The "cold
 * µs" column above is measured between query executions and reads higher (caches evicted).
 */
function compileAlone(lib: Lib, official: readonly OfficialQuery[], firstUs: ReadonlyMap<Dialect, number[]>): void {
  const builds = config.dialects.map((d) => [d, dslFor(lib, d)] as const)
  for (let i = 0; i < 30; i++) for (const [d, dsl] of builds) for (const off of official) { const b = dsl[off.name]; if (b !== undefined) lib.compile(b(), d) }
  console.log('\n######## compile alone (plan-cache miss, warmed compiler; first = first compile of the query in the process)\n')
  for (const [d, dsl] of builds) {
    const us = official.flatMap((off) => {
      const b = dsl[off.name]
      return b === undefined ? [] : [[off.name, microsPerCall(() => b(), (q) => lib.compile(q, d), { batches: 200, warm: 5 })] as const]
    })
    const vals = us.map(([, v]) => v)
    const over = us.filter(([, v]) => v >= 100).map(([n, v]) => `${n} ${fmtUs(v)}`)
    const first = firstUs.get(d) ?? []
    console.log(`${d}: compile geomean ${fmtUs(geomean(vals))} µs, max ${fmtUs(Math.max(...vals))} µs; at or over 100 µs: ${over.length === 0 ? 'none' : over.join(', ')} (target < 100 µs); first compile in the process geomean ${fmtUs(geomean(first))} µs, max ${fmtUs(Math.max(...first))} µs`)
  }
}

runIfMain(import.meta.url, main)
