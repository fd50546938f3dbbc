/**
 * Shared by `bench/lineage-org.ts` and `bench/lineage-width.ts` (issue 3's lineage overhead
 * figures): database setup on SQLite and PostgreSQL, the plain-vs-lineage timing of one query
 * (interleaved rounds from `harness.ts`), the time split SQL execution vs decoding, and the
 * correctness checks (row counts, lineage entries per element, stripped lineage = plain bag).
 */
import { createHash } from 'node:crypto'
import Database from 'better-sqlite3'
import { CompiledQuery, Kysely, PostgresDialect, SqliteDialect, type KyselyPlugin } from 'kysely'
import pg from 'pg'
import { compile, lineage, run } from './lib.js'
import type { AnyQuery, Dialect } from './lib.js'
import { plan } from './lib.js'
import { compare, median, nowMs, pgConfig, selfCpuClock, type Measure } from './harness.js'
export { envList, envNum } from './harness.js'

/**
 * A view of `db` (same connection, same dialect) whose next executed statement's raw driver
 * rows are kept: `arm()`, run a query through the view, then `take()` the rows. The plugin
 * adds one function call per statement.
 */
export function capturing(db: Kysely<any>): { db: Kysely<any>; arm(): void; take(): Record<string, unknown>[] | undefined } {
  let armed = false
  let rows: Record<string, unknown>[] | undefined
  const plugin: KyselyPlugin = {
    transformQuery: (args) => args.node,
    transformResult: async (args) => {
      if (armed) {
        rows = args.result.rows as Record<string, unknown>[]
        armed = false
      }
      return args.result
    },
  }
  return {
    db: db.withPlugin(plugin),
    arm: () => {
      armed = true
      rows = undefined
    },
    take: () => rows,
  }
}

// ---------------------------------------------------------------- configuration helpers

export { envDialects, pgConfig } from './harness.js'

// ---------------------------------------------------------------- databases

export interface SqliteHandle {
  readonly dialect: 'sqlite'
  readonly db: Kysely<any>
  readonly raw: Database.Database
  close(): Promise<void>
}

export interface PgHandle {
  readonly dialect: 'postgres'
  readonly db: Kysely<any>
  readonly pool: pg.Pool
  close(): Promise<void>
}

export type Handle = SqliteHandle | PgHandle

/** An in-memory SQLite database, set up by `setup` on the raw better-sqlite3 connection. */
export function openSqlite(setup: (raw: Database.Database) => void): SqliteHandle {
  const raw = new Database(':memory:')
  setup(raw)
  const db = new Kysely<any>({ dialect: new SqliteDialect({ database: raw }) })
  return { dialect: 'sqlite', db, raw, close: () => db.destroy() }
}

/** A fresh PostgreSQL schema (dropped and created), set up by `setup` on one client. */
export async function openPostgres(schema: string, setup: (client: pg.PoolClient) => Promise<void>, timeoutMs = 120_000): Promise<PgHandle> {
  if (!/^[a-z_][a-z0-9_]*$/.test(schema)) throw new Error(`schema must be a plain identifier, got ${schema}`)
  const admin = new pg.Client(pgConfig)
  await admin.connect()
  try {
    await admin.query(`drop schema if exists ${schema} cascade`)
    await admin.query(`create schema ${schema}`)
  } finally {
    await admin.end()
  }
  // One connection: every statement of the benchmark runs on the same backend (same settings, warm caches).
  const pool = new pg.Pool({ ...pgConfig, max: 1, options: `-c search_path=${schema} -c statement_timeout=${timeoutMs}` })
  const client = await pool.connect()
  try {
    await setup(client)
  } finally {
    client.release()
  }
  const db = new Kysely<any>({ dialect: new PostgresDialect({ pool }) })
  return { dialect: 'postgres', db, pool, close: () => db.destroy() }
}

/** Drop a benchmark schema (end of a PostgreSQL run). */
export async function dropPgSchema(schema: string): Promise<void> {
  const admin = new pg.Client(pgConfig)
  await admin.connect()
  try {
    await admin.query(`drop schema if exists ${schema} cascade`)
  } finally {
    await admin.end()
  }
}

// ---------------------------------------------------------------- lineage checks

export interface Annot {
  readonly data: unknown
  readonly lineage: readonly { readonly table: string; readonly key: unknown }[]
}

/**
 * Which lineage each annotated element must carry, by its path in the result (`''` for the
 * top-level rows, `b` for elements of field `b`, `b.tasks` for elements of `b`'s elements'
 * `tasks`): the alternatives of table-name lists (one per union branch).
 */
export type LineageSpec = Readonly<Record<string, readonly (readonly string[])[]>>

const isAnnot = (x: unknown): x is Annot =>
  typeof x === 'object' && x !== null && !Array.isArray(x) && Array.isArray((x as Annot).lineage) && 'data' in x

/** Strip annotations: the value `q` itself would return. */
export function strip(x: unknown): unknown {
  if (isAnnot(x)) return strip(x.data)
  if (Array.isArray(x)) return x.map(strip)
  if (typeof x === 'object' && x !== null) {
    const o: Record<string, unknown> = {}
    for (const [k, v] of Object.entries(x)) o[k] = strip(v)
    return o
  }
  return x
}

export interface LineageCheck {
  /** Annotated elements checked (top-level rows and nested elements). */
  readonly elements: number
  /** Lineage entries seen in total. */
  readonly entries: number
  /** Problems found (at most a few, with a count of the rest). */
  readonly problems: string[]
}

/** Every annotated element (at every depth) against `spec`; keys must be non-null. */
export function checkLineage(rows: readonly unknown[], spec: LineageSpec): LineageCheck {
  let elements = 0
  let entries = 0
  let bad = 0
  const problems: string[] = []
  const fail = (msg: string) => {
    bad++
    if (problems.length < 3) problems.push(msg)
  }
  const visitElem = (x: unknown, path: string): void => {
    if (!isAnnot(x)) return fail(`${path || 'row'}: not an annotated element: ${JSON.stringify(x)?.slice(0, 120)}`)
    elements++
    entries += x.lineage.length
    const tables = x.lineage.map((e) => e.table)
    const alts = spec[path]
    if (alts === undefined) fail(`${path || 'row'}: no expectation for this path`)
    else if (!alts.some((a) => a.length === tables.length && a.every((t, i) => t === tables[i]))) {
      fail(`${path || 'row'}: lineage [${tables.join(', ')}], expected one of ${alts.map((a) => `[${a.join(', ')}]`).join(' ')}`)
    }
    for (const e of x.lineage) if (e.key === null || e.key === undefined) fail(`${path || 'row'}: null key for ${e.table}`)
    visitData(x.data, path, '')
  }
  const visitData = (d: unknown, path: string, rel: string): void => {
    if (Array.isArray(d)) {
      const p = [path, rel].filter((s) => s !== '').join('.')
      for (const el of d) visitElem(el, p)
    } else if (typeof d === 'object' && d !== null) {
      for (const [k, v] of Object.entries(d)) visitData(v, path, rel ? `${rel}.${k}` : k)
    }
  }
  for (const r of rows) visitElem(r, '')
  if (bad > problems.length) problems.push(`... ${bad - problems.length} more`)
  return { elements, entries, problems }
}

function canon(x: unknown): string {
  if (Array.isArray(x)) return `[${x.map(canon).sort().join(',')}]`
  if (x !== null && typeof x === 'object') {
    const o = x as Record<string, unknown>
    return `{${Object.keys(o).sort().map((k) => `${JSON.stringify(k)}:${canon(o[k])}`).join(',')}}`
  }
  return JSON.stringify(x) ?? 'undefined'
}

/** Order-insensitive fingerprint of a bag of rows. */
export function bagHash(rows: readonly unknown[]): bigint {
  const M = 1n << 64n
  let h = 0n
  for (const r of rows) h = (h + createHash('sha1').update(canon(r)).digest().readBigUInt64BE(0)) % M
  return h
}

// ---------------------------------------------------------------- timing one query, plain vs lineage

export interface TimingOptions {
  readonly rounds: number
  readonly sampleMs: number
  /** A plain run slower than this gets `slowRounds` rounds and no extra warm-up. */
  readonly slowMs: number
  readonly slowRounds: number
  /** A plain run slower than this gets `verySlowRounds` rounds (default: as slow). */
  readonly verySlowMs?: number
  readonly verySlowRounds?: number
}

export interface PairResult {
  readonly plainRows: number
  readonly linRows: number
  readonly plainMs: number
  readonly linMs: number
  /** Median over rounds of lineage/plain of the same round. */
  readonly ratio: number
  /** `run(db, lineage(q))` then every entry of every annotated element read (`readEvery`); NaN unless asked for. */
  readonly readMs: number
  /** Median over rounds of (lineage, every entry read)/plain of the same round; NaN unless asked for. */
  readonly ratioRead: number
  readonly plainStatements: number
  readonly linStatements: number
  readonly rounds: number
  readonly reps: number
  /** The rows of both, for checks (only when asked). */
  readonly plain?: unknown[]
  readonly lin?: unknown[]
}

/**
 * `run(db, lineage(q))` against `run(db, q)`: interleaved rounds (`harness.compare`), the rows
 * of one run of each kept for the checks. Both query objects are compiled before timing, so the compile cache
 * makes compilation a map lookup in every timed run (as in an application running a query
 * repeatedly); both pay it equally.
 */
export type Runner = (db: Kysely<any>, q: AnyQuery) => Promise<unknown[]>
export const runIt: Runner = (db, q) => run(db, q) as Promise<unknown[]>

/**
 * Read every lineage entry of a result, at every depth (what a caller reading all the lineage
 * does): each annotated element's `lineage` and each entry's `table` and `key`. Returns a
 * number derived from them so the reads cannot be optimised away.
 */
export function readEvery(x: unknown): number {
  if (Array.isArray(x)) {
    let n = 0
    for (const v of x) n += readEvery(v)
    return n
  }
  if (typeof x !== 'object' || x === null) return 0
  if ('lineage' in x && 'data' in x) {
    const l = (x as Annot).lineage
    let n = l.length
    for (const e of l) if (e.table.length > 0 && e.key !== undefined) n++
    return n + readEvery((x as Annot).data)
  }
  let n = 0
  for (const k in x) n += readEvery((x as Record<string, unknown>)[k])
  return n
}

/**
 * What `timePair` measures: CPU time of this process on SQLite (in-process: the statement and the
 * decoding), wall time on PostgreSQL; `LINEAGE_MEASURE=wall` forces wall time everywhere.
 */
export function timingMeasure(dialect: Dialect): Measure {
  return process.env['LINEAGE_MEASURE'] === 'wall' || dialect !== 'sqlite' ? 'wall' : 'cpu'
}

export async function timePair(db: Kysely<any>, dialect: Dialect, q: AnyQuery, opts: TimingOptions, keepRows: boolean, runner: Runner = runIt, withRead = false): Promise<PairResult> {
  const lq = lineage(q)
  // SQLite runs in this process: its CPU time (statement and decoding) is the measure, robust to
  // the load of a shared machine; PostgreSQL's statement runs in the server: wall time.
  const measure = timingMeasure(dialect)
  const cpu = measure === 'cpu' ? selfCpuClock() : undefined
  const plainStatements = compile(q, dialect).statements.length
  const linStatements = compile(lq, dialect).statements.length
  // The first run of each (compare's calibration run, untimed here) keeps its rows for the checks.
  let plainRows: unknown[] | undefined
  let linRows: unknown[] | undefined
  const p0 = nowMs()
  plainRows = await runner(db, q)
  const single = nowMs() - p0
  const slow = single >= opts.slowMs
  const verySlow = opts.verySlowMs !== undefined && single >= opts.verySlowMs
  const c = await compare(
    [
      { name: 'plain', fn: () => runner(db, q) },
      {
        name: 'lineage',
        fn: async () => {
          const rows = await runner(db, lq)
          if (linRows === undefined) linRows = rows
        },
      },
      ...(withRead ? [{ name: 'lineage, every entry read', fn: async () => readEvery(await runner(db, lq)) }] : []),
    ],
    { rounds: verySlow ? (opts.verySlowRounds ?? opts.slowRounds) : slow ? opts.slowRounds : opts.rounds, sampleMs: opts.sampleMs, warmup: !slow, cpu },
  )
  const m = measure
  const lin = linRows ?? []
  return {
    plainRows: plainRows.length,
    linRows: lin.length,
    plainMs: m === 'cpu' ? c.variants[0]!.cpuMedian : c.variants[0]!.median,
    linMs: m === 'cpu' ? c.variants[1]!.cpuMedian : c.variants[1]!.median,
    ratio: c.ratio(1, 0, m),
    readMs: withRead ? (m === 'cpu' ? c.variants[2]!.cpuMedian : c.variants[2]!.median) : Number.NaN,
    ratioRead: withRead ? c.ratio(2, 0, m) : Number.NaN,
    plainStatements,
    linStatements,
    rounds: c.rounds,
    reps: c.repsPerSample,
    ...(keepRows ? { plain: plainRows, lin } : {}),
  }
}

export interface Split {
  /** `db.executeQuery(CompiledQuery.raw(sql, params))`, rows fetched by the driver. */
  readonly execMs: number
  /** The decoder alone on already fetched rows. */
  readonly decodeMs: number
  /** `run` as a whole (NaN unless asked for). */
  readonly runMs: number
  readonly sql: string
  readonly columns: number
}

/**
 * Where the time of `run(db, q)` and `run(db, lineage(q))` goes: SQL execution (driver
 * included) and decoding (`plan(q).decode` on the fetched rows), each the median of `rounds`
 * interleaved samples (the first execution of each, which fetches the rows, is one of them);
 * with `withRun`, `run` itself too.
 */
export async function timeSplit(db: Kysely<any>, dialect: Dialect, q: AnyQuery, rounds: number, runner: Runner = runIt, withRun = true): Promise<{ plain: Split; lin: Split }> {
  const lq = lineage(q)
  const one = (query: AnyQuery) => {
    const p = plan(query, dialect)
    const s = p.statements[0]!
    const cq = CompiledQuery.raw(s.sql, [...s.parameters])
    return { p, s, cq }
  }
  const a = one(q)
  const b = one(lq)
  const samples = { ae: [] as number[], ad: [] as number[], ar: [] as number[], be: [] as number[], bd: [] as number[], br: [] as number[] }
  const fetch = async (x: typeof a, xs: number[]) => {
    const t0 = nowMs()
    const rows = (await db.executeQuery<Record<string, unknown>>(x.cq)).rows
    xs.push(nowMs() - t0)
    return rows
  }
  const rowsA = await fetch(a, samples.ae)
  const rowsB = await fetch(b, samples.be)
  const tick = async (xs: number[], fn: () => unknown) => {
    const t0 = nowMs()
    await fn()
    xs.push(nowMs() - t0)
  }
  for (let r = 0; r < rounds; r++) {
    const steps: [number[], () => unknown][] = [
      [samples.ad, () => a.p.decode(rowsA)],
      [samples.bd, () => b.p.decode(rowsB)],
    ]
    if (r > 0) steps.push([samples.ae, () => db.executeQuery(a.cq)], [samples.be, () => db.executeQuery(b.cq)])
    if (withRun) steps.push([samples.ar, () => runner(db, q)], [samples.br, () => runner(db, lq)])
    if (r % 2 === 1) steps.reverse()
    for (const [xs, fn] of steps) await tick(xs, fn)
  }
  const cols = (x: readonly Record<string, unknown>[]) => (x[0] === undefined ? 0 : Object.keys(x[0]).length)
  return {
    plain: { execMs: median(samples.ae), decodeMs: median(samples.ad), runMs: median(samples.ar), sql: a.s.sql, columns: cols(rowsA) },
    lin: { execMs: median(samples.be), decodeMs: median(samples.bd), runMs: median(samples.br), sql: b.s.sql, columns: cols(rowsB) },
  }
}

/** The plan of a statement: EXPLAIN QUERY PLAN on SQLite, EXPLAIN (ANALYZE) on PostgreSQL. */
export async function explain(db: Kysely<any>, dialect: Dialect, q: AnyQuery, analyze: boolean): Promise<string> {
  const s = plan(q, dialect).statements[0]!
  const prefix = dialect === 'sqlite' ? 'explain query plan ' : analyze ? 'explain (analyze, costs off, timing on, summary on) ' : 'explain (costs off) '
  const rows = (await db.executeQuery<Record<string, unknown>>(CompiledQuery.raw(prefix + s.sql, [...s.parameters]))).rows
  if (dialect === 'sqlite') return rows.map((r) => `${'  '.repeat(depthOf(rows, r))}${String(r.detail)}`).join('\n')
  return rows.map((r) => String(r['QUERY PLAN'])).join('\n')
}

function depthOf(rows: readonly Record<string, unknown>[], r: Record<string, unknown>): number {
  let d = 0
  let parent = r.parent
  while (parent !== 0 && parent !== undefined) {
    const p = rows.find((x) => x.id === parent)
    if (p === undefined) break
    d++
    parent = p.parent
  }
  return d
}

export const elapsed = (t0: number): string => `${((nowMs() - t0) / 1000).toFixed(1)}s`
