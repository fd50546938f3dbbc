/**
 * `npm run bench:org` (and the first part of `npm run bench`): the DSL against hand-written SQL, and the DSL's own cost, on the
 * organisation workload (benchmarks.md sections 1 and 3), on SQLite and PostgreSQL.
 *
 * For each dialect and N, and each query:
 * - dsl/hand: the DSL's compiled statement(s) against the hand-written SQL, both executed the
 *   same way (`db.executeQuery(CompiledQuery.raw(sql, params))`, rows fetched), interleaved;
 *   the median of the per-round ratios of CPU time (this process, plus the PostgreSQL backend),
 *   and the same for wall time;
 * - run/hand+dec: `run(db, query)` (compile cache lookup + execution + decoding) against the
 *   hand-written SQL plus hand-written decoding into the same result shape (JSON.parse of the
 *   nested columns where the driver returns text, records built from JSON arrays), CPU time;
 * - stmts: how many statements the DSL ran;
 * - build/cold/cached µs: building the query with the DSL, `compile` of a fresh query object,
 *   `compile` of an already compiled object (medians over many calls);
 * - check: `run`'s rows against the hand-written rows (count, and content as a bag).
 *
 * Timing: the variants run interleaved (hand dsl hand+dec run, then run hand+dec dsl hand, ...)
 * for up to BENCH_ROUNDS rounds, cut so one query's timing takes about BENCH_BUDGET_MS (at least
 * 3 rounds); each sample repeats a variant for about BENCH_SAMPLE_MS. A query whose
 * hand-written SQL takes over BENCH_VERY_SLOW_MS gets one sample per variant (the check
 * executions: hand, dsl, run, then hand again). A query predicted (quadratic extrapolation from
 * the previous N) to take over BENCH_MAX_MS per execution is skipped and says so. Over
 * BENCH_RUN_TIMING_MS, run() and hand+dec are not interleaved: their ratio comes from the check
 * executions (one sample).
 *
 * Environment (defaults): BENCH_N=64,256  BENCH_DIALECTS=sqlite,postgres  BENCH_QUERIES=(all)
 * BENCH_ROUNDS=21  BENCH_SAMPLE_MS=30  BENCH_BUDGET_MS=2000  BENCH_VERY_SLOW_MS=3000  BENCH_RUN_TIMING_MS=500
 * BENCH_MAX_MS=15000 (0: run everything)  BENCH_RUNTIME=1 (0: do not time run() and hand+dec)
 * BENCH_COMPILE_ITERS=1000  BENCH_CHECK_MAX_ROWS=1000000  BENCH_SHOW_SQL=0  BENCH_AA_QUERY=Q7 (none: no A/A control)
 * BENCH_SQLITE_FILE=:memory:  BENCH_PG_SCHEMA=lq_bench  BENCH_PG_TIMEOUT_MS=60000
 * BENCH_PG_PARALLEL=0 (1: allow parallel query workers, whose CPU time is not counted)
 * BENCH_PG_COLLATE_C=0 (1: text columns `collate "C"`)  PGHOST=127.0.0.1 PGPORT=5432 PGUSER=postgres PGDATABASE=test
 */
import { createHash } from 'node:crypto'
import { rmSync } from 'node:fs'
import os from 'node:os'
import Database from 'better-sqlite3'
import { CompiledQuery, Kysely, PostgresDialect, SqliteDialect } from 'kysely'
import pg from 'pg'
import { compile, run } from './lib.js'
import type { AnyQuery, CompiledStatement, Dialect } from './lib.js'
import {
  compare,
  fmtMs,
  fmtRatio,
  fmtUs,
  geomean,
  microsPerCall,
  nowMs,
  processCpuClock,
  sumClocks,
  table,
  selfCpuClock,
  timeBoth,
} from './harness.js'
import type { Clock, Timing, Variant } from './harness.js'
import { envDialects, pgConfig, runIfMain } from './harness.js'
import { generate, loadPostgres, loadSqlite } from './org/data.js'
import { queries } from './org/queries.js'
import type { BenchQuery } from './org/queries.js'
import { ddl } from './org/schema.js'

// ---------------------------------------------------------------- configuration

const env = process.env
const num = (name: string, dflt: number): number => {
  const v = env[name]
  if (v === undefined || v === '') return dflt
  const n = Number(v)
  if (!Number.isFinite(n)) throw new Error(`${name} must be a number, got ${JSON.stringify(v)}`)
  return n
}
const list = (name: string, dflt: string): string[] =>
  (env[name] ?? dflt)
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '')

const config = {
  ns: list('BENCH_N', '64,256').map(Number),
  dialects: envDialects('BENCH_DIALECTS'),
  queries: list('BENCH_QUERIES', queries.map((q) => q.name).join(',')),
  rounds: num('BENCH_ROUNDS', 21),
  sampleMs: num('BENCH_SAMPLE_MS', 30),
  budgetMs: num('BENCH_BUDGET_MS', 2000),
  verySlowMs: num('BENCH_VERY_SLOW_MS', 3000),
  runTimingMs: num('BENCH_RUN_TIMING_MS', 500),
  aaQuery: env.BENCH_AA_QUERY ?? 'Q7',
  maxMs: num('BENCH_MAX_MS', 15000),
  runtime: env.BENCH_RUNTIME !== '0',
  compileIters: num('BENCH_COMPILE_ITERS', 1000),
  checkMaxRows: num('BENCH_CHECK_MAX_ROWS', 1_000_000),
  showSql: env.BENCH_SHOW_SQL === '1',
  sqliteFile: env.BENCH_SQLITE_FILE ?? ':memory:',
  pgSchema: env.BENCH_PG_SCHEMA ?? 'lq_bench',
  pgTimeoutMs: num('BENCH_PG_TIMEOUT_MS', 60000),
  pgParallel: env.BENCH_PG_PARALLEL === '1',
  pgCollateC: env.BENCH_PG_COLLATE_C === '1',
  pg: pgConfig,
}
for (const n of config.ns) if (!Number.isSafeInteger(n) || n < 1) throw new Error(`BENCH_N must list positive integers, got ${n}`)
for (const q of config.queries) if (!queries.some((x) => x.name === q)) throw new Error(`unknown query in BENCH_QUERIES: ${q}; queries: ${queries.map((x) => x.name).join(',')}`)
if (!/^[a-z_][a-z0-9_]*$/.test(config.pgSchema)) throw new Error(`BENCH_PG_SCHEMA must be a plain identifier, got ${config.pgSchema}`)

const TARGET_RATIO = 1.1
const TARGET_COLD_US = 100

// ---------------------------------------------------------------- databases

interface Db {
  readonly db: Kysely<any>
  /** The CPU clock covering all the work of a query: this thread (and the backend's). */
  cpuClock(): Promise<Clock | undefined>
  close(): Promise<void>
}

async function openSqlite(n: number): Promise<Db> {
  if (config.sqliteFile !== ':memory:') rmSync(config.sqliteFile, { force: true })
  const raw = new Database(config.sqliteFile)
  raw.pragma('journal_mode = WAL')
  for (const s of ddl('sqlite')) raw.exec(s)
  loadSqlite(raw, generate(n))
  const db = new Kysely<any>({ dialect: new SqliteDialect({ database: raw }) })
  const clock = selfCpuClock()
  return { db, cpuClock: async () => clock, close: () => db.destroy() }
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

async function openPostgres(n: number): Promise<Db> {
  await pgAdmin(`drop schema if exists ${config.pgSchema} cascade; create schema ${config.pgSchema}`)
  // One connection, kept open, so one backend process does all the work and its CPU clock covers it.
  const options = [`-c search_path=${config.pgSchema}`, `-c statement_timeout=${config.pgTimeoutMs}`]
  if (!config.pgParallel) options.push('-c max_parallel_workers_per_gather=0')
  const pool = new pg.Pool({ ...config.pg, max: 1, idleTimeoutMillis: 0, options: options.join(' ') })
  const client = await pool.connect()
  try {
    for (const s of ddl('postgres')) await client.query(config.pgCollateC ? s.replaceAll(' text ', ' text collate "C" ') : s)
    await loadPostgres(client, generate(n))
  } finally {
    client.release()
  }
  const db = new Kysely<any>({ dialect: new PostgresDialect({ pool }) })
  const self = selfCpuClock()
  return {
    db,
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

// ---------------------------------------------------------------- result checks

function canon(x: unknown): string {
  if (Array.isArray(x)) return `[${x.map(canon).sort().join(',')}]`
  if (typeof x === 'bigint') return x.toString()
  if (x !== null && typeof x === 'object') {
    const o = x as Record<string, unknown>
    return `{${Object.keys(o)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canon(o[k])}`)
      .join(',')}}`
  }
  return JSON.stringify(x) ?? 'undefined'
}

/** An order-insensitive fingerprint of a bag of rows: sum of 48-bit row hashes, mod 2^48. */
function bagHash(rows: readonly unknown[]): number {
  const M = 2 ** 48
  let h = 0
  for (const r of rows) h = (h + createHash('sha1').update(canon(r)).digest().readUIntBE(0, 6)) % M
  return h
}

/** Up to `k` rows of `a` that `b` lacks (as bags). */
function bagMinus(a: readonly unknown[], b: readonly unknown[], k: number): string[] {
  const counts = new Map<string, number>()
  for (const r of b) {
    const c = canon(r)
    counts.set(c, (counts.get(c) ?? 0) + 1)
  }
  const out: string[] = []
  for (const r of a) {
    const c = canon(r)
    const m = counts.get(c) ?? 0
    if (m > 0) counts.set(c, m - 1)
    else if (out.length < k) out.push(c.length > 300 ? `${c.slice(0, 297)}...` : c)
  }
  return out
}

// ---------------------------------------------------------------- one query

type DslState =
  | { readonly kind: 'ok'; readonly statements: readonly CompiledStatement[] }
  | { readonly kind: 'pending' }
  | { readonly kind: 'error'; readonly message: string }

interface Cost {
  readonly buildUs: number
  readonly coldUs: number
  readonly cachedUs: number
}

interface Ratio {
  readonly cpu: number
  readonly wall: number
}

interface QueryResult {
  readonly name: string
  readonly handRows: number
  /** Medians, ms per execution. */
  readonly hand: Timing
  readonly dsl: Timing
  readonly ratio: Ratio
  readonly runRatio: Ratio
  readonly statements: number | undefined
  readonly cost: Cost
  readonly check: string
  readonly note: string
}

const NAN = Number.NaN
const NO_TIME: Timing = { wall: NAN, cpu: NAN }
const NO_RATIO: Ratio = { cpu: NAN, wall: NAN }

const errMessage = (e: unknown): string => (e instanceof Error ? `${e.name}: ${e.message}` : String(e))
const isPending = (e: unknown): boolean => e instanceof Error && /not implemented yet/.test(e.message)
/** The ratio to read: CPU time when there is a CPU clock, else wall time. */
const primary = (r: Ratio): number => (Number.isFinite(r.cpu) ? r.cpu : r.wall)
const primaryMs = (t: Timing): number => (Number.isFinite(t.cpu) ? t.cpu : t.wall)

function dslState(q: BenchQuery, dialect: Dialect): DslState {
  try {
    return { kind: 'ok', statements: compile(q.build(), dialect).statements }
  } catch (e) {
    return isPending(e) ? { kind: 'pending' } : { kind: 'error', message: errMessage(e) }
  }
}

function measureCost(q: BenchQuery, dialect: Dialect, state: DslState): Cost {
  const iters = config.compileIters
  const buildUs = microsPerCall(
    () => undefined,
    () => q.build(),
    { batches: iters, perBatch: 10, warm: 200 },
  )
  if (state.kind !== 'ok') return { buildUs, coldUs: NAN, cachedUs: NAN }
  const coldUs = microsPerCall(
    () => q.build(),
    (query: AnyQuery) => compile(query, dialect),
    { batches: iters, warm: Math.min(200, iters) },
  )
  const same = q.build()
  compile(same, dialect)
  const cachedUs = microsPerCall(
    () => same,
    (query: AnyQuery) => compile(query, dialect),
    { batches: Math.max(20, Math.floor(iters / 10)), perBatch: 100, warm: 200 },
  )
  return { buildUs, coldUs, cachedUs }
}

async function benchQuery(h: Db, dialect: Dialect, q: BenchQuery, cost: Cost, warnings: string[]): Promise<QueryResult> {
  const { db } = h
  const cpu = await h.cpuClock()
  const hand = CompiledQuery.raw(q.hand[dialect])
  const state = dslState(q, dialect)
  const base = { name: q.name, statements: state.kind === 'ok' ? state.statements.length : undefined, cost }

  // The hand-written query once: its rows are the reference.
  let handRows: unknown[] = []
  let h0: Timing
  try {
    h0 = await timeBoth(async () => {
      handRows = (await db.executeQuery(hand)).rows as unknown[]
    }, cpu)
  } catch (e) {
    warnings.push(`WARNING ${dialect} ${q.name}: hand-written SQL failed: ${errMessage(e)}`)
    return { ...base, handRows: NAN, hand: NO_TIME, dsl: NO_TIME, ratio: NO_RATIO, runRatio: NO_RATIO, check: '-', note: 'skipped: hand-written SQL failed' }
  }
  const nHand = handRows.length
  if (nHand > config.checkMaxRows) handRows = []

  // The DSL's statements once, and run() once, checked against the hand-written rows.
  let check = state.kind === 'pending' ? 'pending' : state.kind === 'error' ? 'COMPILE ERROR' : '?'
  if (state.kind === 'error') warnings.push(`WARNING ${dialect} ${q.name}: compile failed: ${state.message}`)
  const compiled = state.kind === 'ok' ? state.statements.map((s) => CompiledQuery.raw(s.sql, [...s.parameters])) : []
  const execDsl = async (): Promise<void> => {
    for (const c of compiled) await db.executeQuery(c)
  }
  const runQuery = q.build()
  let d0: Timing = NO_TIME
  let r0: Timing = NO_TIME
  let dec: Timing = NO_TIME
  if (state.kind === 'ok') {
    if (config.showSql) for (const s of state.statements) console.log(`  [${dialect} ${q.name}] ${s.sql}  -- ${JSON.stringify(s.parameters)}`)
    try {
      d0 = await timeBoth(execDsl, cpu)
    } catch (e) {
      check = 'SQL ERROR'
      warnings.push(`WARNING ${dialect} ${q.name}: the DSL's SQL failed: ${errMessage(e)}`)
    }
    try {
      let rows: unknown[] = []
      r0 = await timeBoth(async () => {
        rows = (await run(db, runQuery)) as unknown[]
      }, cpu)
      if (rows.length !== nHand) {
        check = `COUNT ${rows.length}`
        warnings.push(`WARNING ${dialect} ${q.name}: run() returned ${rows.length} rows, the hand-written SQL ${nHand}`)
      } else if (nHand > config.checkMaxRows) {
        check = 'count ok'
      } else {
        let expected: unknown[] = []
        dec = await timeBoth(() => {
          expected = handRows.map((r) => q.handRow(r as Record<string, unknown>))
        }, cpu)
        if (bagHash(rows) === bagHash(expected)) check = 'ok'
        else {
          check = 'CONTENT'
          warnings.push(`WARNING ${dialect} ${q.name}: run() returned the right number of rows (${nHand}) but different rows`)
          if (nHand <= 200_000) {
            for (const r of bagMinus(rows, expected, 3)) warnings.push(`    only in run():  ${r}`)
            for (const r of bagMinus(expected, rows, 3)) warnings.push(`    only in hand:   ${r}`)
          }
        }
      }
    } catch (e) {
      r0 = NO_TIME
      if (check === '?') check = 'RUN ERROR'
      warnings.push(`WARNING ${dialect} ${q.name}: run() failed: ${errMessage(e)}`)
    }
  }
  handRows = []
  const withDsl = Number.isFinite(d0.wall)
  const withRun = Number.isFinite(r0.wall) && config.runtime

  // Very slow: the executions above are the samples, plus the hand-written query once more
  // (so the hand-written side is not only the first run).
  if (h0.wall >= config.verySlowMs) {
    const h1 = await timeBoth(() => db.executeQuery(hand), cpu)
    const hm: Timing = { wall: (h0.wall + h1.wall) / 2, cpu: (h0.cpu + h1.cpu) / 2 }
    return {
      ...base,
      handRows: nHand,
      hand: hm,
      dsl: d0,
      ratio: { cpu: d0.cpu / hm.cpu, wall: d0.wall / hm.wall },
      runRatio: withRun ? { cpu: r0.cpu / (hm.cpu + dec.cpu), wall: r0.wall / (hm.wall + dec.wall) } : NO_RATIO,
      check,
      note: '1 sample each (slow)',
    }
  }

  // Medium: time run() and hand+dec from the single executions above, interleave only hand and dsl.
  const medium = h0.wall >= config.runTimingMs
  const variants: Variant[] = [{ name: 'hand', fn: () => db.executeQuery(hand) }]
  const singles = [h0.wall]
  if (withDsl) {
    variants.push({ name: 'dsl', fn: execDsl })
    singles.push(d0.wall)
  }
  if (withRun && !medium) {
    variants.push({ name: 'hand+dec', fn: async () => (await db.executeQuery(hand)).rows.map((r) => q.handRow(r as Record<string, unknown>)) })
    singles.push(h0.wall + (Number.isFinite(dec.wall) ? dec.wall : 0))
    variants.push({ name: 'run', fn: () => run(db, runQuery) })
    singles.push(r0.wall)
  }
  // The executions above were the warm-up.
  const c = await compare(variants, {
    maxRounds: config.rounds,
    minRounds: 3,
    budgetMs: config.budgetMs,
    sampleMs: config.sampleMs,
    singleMs: singles,
    warmup: false,
    cpu,
  })
  const idx = (name: string) => variants.findIndex((v) => v.name === name)
  const stat = (name: string): Timing => {
    const v = c.variants[idx(name)]
    return v === undefined ? NO_TIME : { wall: v.median, cpu: v.cpuMedian }
  }
  const ratio = (name: string, over: string): Ratio =>
    idx(name) > 0 && idx(over) >= 0 ? { cpu: c.ratio(idx(name), idx(over), 'cpu'), wall: c.ratio(idx(name), idx(over), 'wall') } : NO_RATIO
  const notes: string[] = []
  if (c.rounds < config.rounds) notes.push(`${c.rounds} rounds`)
  if (withRun && medium) notes.push('run: 1 sample')
  return {
    ...base,
    handRows: nHand,
    hand: stat('hand'),
    dsl: stat('dsl'),
    ratio: ratio('dsl', 'hand'),
    runRatio: withRun && medium ? { cpu: r0.cpu / (h0.cpu + dec.cpu), wall: r0.wall / (h0.wall + dec.wall) } : ratio('run', 'hand+dec'),
    check,
    note: notes.join(', '),
  }
}

/**
 * The noise floor: one hand-written query against itself (the same SQL with a trailing space),
 * timed exactly like dsl/hand.
 */
async function aaControl(h: Db, dialect: Dialect, q: BenchQuery): Promise<Ratio> {
  const a = CompiledQuery.raw(q.hand[dialect])
  const b = CompiledQuery.raw(`${q.hand[dialect]} `)
  const cpu = await h.cpuClock()
  const c = await compare(
    [
      { name: 'a', fn: () => h.db.executeQuery(a) },
      { name: 'b', fn: () => h.db.executeQuery(b) },
    ],
    { maxRounds: config.rounds, minRounds: 3, budgetMs: config.budgetMs, sampleMs: config.sampleMs, warmup: true, cpu },
  )
  return { cpu: c.ratio(1, 0, 'cpu'), wall: c.ratio(1, 0, 'wall') }
}

// ---------------------------------------------------------------- main

const mark = (ok: boolean): string => (ok ? ' ' : '!')

const HEADER = ['query', 'rows', 'hand ms', 'dsl ms', 'dsl/hand ', '(wall)', 'run/hand+dec', 'stmts', 'build us', 'cold us ', 'cached us', 'check', 'note']

function row(r: QueryResult): string[] {
  const ratio = primary(r.ratio)
  return [
    r.name,
    Number.isFinite(r.handRows) ? String(r.handRows) : '-',
    fmtMs(primaryMs(r.hand)),
    fmtMs(primaryMs(r.dsl)),
    fmtRatio(ratio) + mark(!(ratio > TARGET_RATIO)),
    fmtRatio(r.ratio.wall),
    fmtRatio(primary(r.runRatio)),
    r.statements === undefined ? '-' : String(r.statements),
    fmtUs(r.cost.buildUs),
    fmtUs(r.cost.coldUs) + mark(!(r.cost.coldUs >= TARGET_COLD_US)),
    fmtUs(r.cost.cachedUs),
    r.check,
    r.note,
  ]
}

async function main(): Promise<void> {
  const selected = queries.filter((q) => config.queries.includes(q.name))
  const load = loadAverage()
  console.log('lineage-query bench: DSL vs hand-written SQL, organisation workload (benchmarks.md sections 1 and 3)')
  console.log(
    `N=${config.ns.join(',')}  dialects=${config.dialects.join(',')}  rounds<=${config.rounds}  sample=${config.sampleMs}ms  budget/query=${config.budgetMs}ms  ` +
      `node ${process.version}  load average ${load}`,
  )
  console.log(`targets: dsl/hand <= ${TARGET_RATIO}x, cold compile < ${TARGET_COLD_US} us; ! marks a missed target`)
  console.log(
    [
      `hand ms, dsl ms: CPU ms per execution through db.executeQuery(CompiledQuery.raw(sql, params)), rows fetched; medians over interleaved rounds.`,
      'dsl/hand: median of per-round ratios of CPU time (this process + the PostgreSQL backend; not inflated by waiting for a core; wall time',
      '  where the backend cannot be read); only the SQL differs. (wall): the same for wall time. The A/A control line under each table is the noise floor.',
      'run/hand+dec: run(db, q) (compile, cached + execute + decode) over the hand-written SQL + hand-written decoding to the same rows.',
      'build/cold/cached: us to build the query with the DSL, to compile a fresh query object, to compile an already compiled one.',
      'check: run() rows against the hand-written rows (ok = same bag of rows; count ok = same count, content not compared).',
      '',
    ].join('\n'),
  )

  // Construction check: every query builds without throwing.
  for (const q of selected) q.build()

  const handCounts = new Map<string, number>()
  const summary: string[] = []
  for (const dialect of config.dialects) {
    const costs = new Map<string, Cost>()
    const costOf = (q: BenchQuery): Cost => {
      let c = costs.get(q.name)
      if (c === undefined) {
        c = measureCost(q, dialect, dslState(q, dialect))
        costs.set(q.name, c)
      }
      return c
    }
    const ratios: number[] = []
    const wallRatios: number[] = []
    const runRatios: number[] = []
    const skipped: string[] = []
    const lastTime = new Map<string, { n: number; ms: number }>()
    let maxCold = NAN
    let pending = false
    for (const n of config.ns) {
      const t0 = nowMs()
      let handle: Db
      try {
        handle = dialect === 'sqlite' ? await openSqlite(n) : await openPostgres(n)
      } catch (e) {
        console.log(`${dialect} N=${n}: cannot set up the database: ${errMessage(e)}\n`)
        continue
      }
      console.log(`== ${dialect}  N=${n}  (${n} departments, ${100 * n} employees; loaded in ${fmtMs(nowMs() - t0)})`)
      const warnings: string[] = []
      const rows: string[][] = []
      const nRatios: number[] = []
      try {
        for (const q of selected) {
          const cost = costOf(q)
          if (Number.isFinite(cost.coldUs)) maxCold = Number.isFinite(maxCold) ? Math.max(maxCold, cost.coldUs) : cost.coldUs
          const prev = lastTime.get(q.name)
          const predicted = prev === undefined ? 0 : prev.ms * (n / prev.n) ** 2
          if (config.maxMs > 0 && predicted > config.maxMs) {
            skipped.push(`${q.name}@${n}`)
            const note = `skipped: predicted ~${fmtMs(predicted)}/run > BENCH_MAX_MS`
            rows.push(row({ ...{ name: q.name, handRows: NAN, hand: NO_TIME, dsl: NO_TIME, ratio: NO_RATIO, runRatio: NO_RATIO }, statements: undefined, cost, check: '-', note }))
            continue
          }
          const r = await benchQuery(handle, dialect, q, cost, warnings)
          if (Number.isFinite(r.hand.wall)) lastTime.set(q.name, { n, ms: Math.max(r.hand.wall, Number.isFinite(r.dsl.wall) ? r.dsl.wall : 0) })
          if (r.check === 'pending') pending = true
          const key = `${n}/${q.name}`
          const other = handCounts.get(key)
          if (other !== undefined && Number.isFinite(r.handRows) && other !== r.handRows) {
            warnings.push(`WARNING hand-written ${q.name} at N=${n}: ${r.handRows} rows on ${dialect}, ${other} on another dialect`)
          }
          if (Number.isFinite(r.handRows)) handCounts.set(key, r.handRows)
          const p = primary(r.ratio)
          if (Number.isFinite(p)) {
            ratios.push(p)
            nRatios.push(p)
          }
          if (Number.isFinite(r.ratio.wall)) wallRatios.push(r.ratio.wall)
          if (Number.isFinite(primary(r.runRatio))) runRatios.push(primary(r.runRatio))
          rows.push(row(r))
        }
        const control = queries.find((q) => q.name === config.aaQuery)
        if (control !== undefined) {
          const aa = await aaControl(handle, dialect, control)
          warnings.unshift(`A/A control (hand-written ${control.name} against itself, timed like dsl/hand): ${fmtRatio(primary(aa))}  (wall ${fmtRatio(aa.wall)})`)
        }
      } finally {
        await handle.close()
      }
      console.log(table(HEADER, rows))
      console.log(`(${dialect} N=${n} took ${fmtMs(nowMs() - t0)})`)
      if (nRatios.length > 0) console.log(`${dialect} N=${n}: dsl/hand geomean ${fmtRatio(geomean(nRatios))}, max ${fmtRatio(Math.max(...nRatios))}`)
      for (const w of warnings) console.log(w)
      console.log('')
    }
    const gm = geomean(ratios)
    const mx = ratios.length > 0 ? Math.max(...ratios) : NAN
    const skippedNote = skipped.length > 0 ? `; skipped as too slow: ${skipped.join(' ')}` : ''
    summary.push(
      pending && ratios.length === 0
        ? `SUMMARY ${dialect}: compile/run not implemented yet; hand-written SQL only${skippedNote}`
        : `SUMMARY ${dialect}: dsl/hand geomean ${fmtRatio(gm)} max ${fmtRatio(mx)} over ${ratios.length} (target <= ${TARGET_RATIO}x: ` +
            `${mx <= TARGET_RATIO ? 'met' : gm <= TARGET_RATIO ? 'geomean met, max MISSED' : 'MISSED'}); wall geomean ${fmtRatio(geomean(wallRatios))}; ` +
            `run/hand+dec geomean ${fmtRatio(geomean(runRatios))}; max cold compile ${fmtUs(maxCold)} us ` +
            `(target < ${TARGET_COLD_US} us: ${maxCold < TARGET_COLD_US ? 'met' : 'MISSED'})${skippedNote}`,
    )
  }
  for (const s of summary) console.log(s)
}

/** The 1-minute load average and the core count, e.g. "6.9 on 2 cores". */
function loadAverage(): string {
  return `${os.loadavg()[0]?.toFixed(1) ?? '?'} on ${os.cpus().length} cores`
}

export { main }

runIfMain(import.meta.url, main)
