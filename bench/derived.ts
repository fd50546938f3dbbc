/**
 * Derived-table benchmarks (shared/reference/benchmarks.md, section 4), on SQLite
 * (better-sqlite3, in memory) and PostgreSQL (the server at LQ_PG_URL, default
 * postgres://postgres@127.0.0.1:5432/test, in a fresh schema dropped at the end):
 *
 * 1. Refresh throughput: `store.refresh()` filling a derived table with the trivial function
 *    `(row) => ({ n: row.x + 1 })` from N root rows (a first fill), against a raw insert of N
 *    rows shaped like the derived data table (`lq_key text PRIMARY KEY, n integer NOT NULL`) in
 *    the same round: a prepared better-sqlite3 INSERT per row in one transaction, or 5000-row
 *    multi-row INSERTs in one transaction on PostgreSQL. N = 10^4, 10^5 (3 rounds) and, on
 *    SQLite, 10^6. Target: refresh rate >= 30% of raw.
 * 2. Staleness cost: k = 1000 random root rows updated (raw SQL, through the triggers) in
 *    tables of 10^4, 10^5, 10^6 rows whose derived table is fully fresh; `store.stale()` (the
 *    listing) and the `store.refresh()` that follows are timed. Target: the 10^6 times within
 *    2x of the 10^4 ones.
 * 3. Impact: `store.affected(root, key)` over 10^6 lineage edges (`lq_edge`): a comprehension
 *    joining two roots of 5*10^5 rows one to one, each of its rows with lineage over both.
 *    Target: median under 1 ms.
 *
 * What is computed by the engine and what is seeded:
 * - Root tables are loaded with raw bulk inserts before they are tracked.
 * - Sections 1 and 2: every derived row is computed by `refresh`, except the 10^6-row table on
 *   PostgreSQL: filling it through refresh takes 55-80 s there (the server has 128 MB of shared
 *   buffers; see docs/derived.md), so it is seeded after `track` by one INSERT ... SELECT per
 *   table, exactly as refresh writes them: lq_meta rows (lq_key, lq_lineage and lq_inputs empty
 *   as for any one-table derivation, whose lineage and inputs are its own key's row),
 *   lq_max_input_rev = rev, the code version, state ok,
 *   lq_computed_rev = lq_changed_rev = one new clock value, lq_hash = the value's JSON text
 *   `[n]`, as the engine stores a short value), data rows (n = x + 1), the
 *   watermark (clock value and snapshot text, as refresh reads them), then ANALYZE as refresh
 *   does after a big fill. `stale()` must list nothing before the rounds start.
 * - Section 2's rounds run interleaved across the sizes (one round of each size in turn), so
 *   every size sees the same machine load.
 * - Section 3: the comprehension's first 5*10^4 rows (10^5 edges) are computed by `refresh`
 *   (its rate is printed); the other 4.5*10^5 root rows of each root are then bulk-inserted and
 *   their 9*10^5 lq_edge rows seeded by one INSERT ... SELECT in the engine's format (src_table,
 *   src_key = key text, dst_table = 'joined', dst_key = '[["ad",id],["ae",id]]'; checked equal
 *   to the engine-written rows). `affected` reads only lq_edge for a comprehension derivation.
 *   Computing 5*10^5 comprehension rows through refresh would take ~40 s (SQLite) to ~100 s
 *   (PostgreSQL) on a loaded 2-core machine, most of the 5-minute budget.
 *
 * Times: wall clock, and CPU (this process, plus on PostgreSQL the server backend of the one
 * pooled connection, read from /proc/<pid>/schedstat). On a machine with more runnable
 * processes than cores, wall time mostly measures waiting for a core; the CPU ratio is the
 * stable figure there. Ratios are medians over rounds.
 *
 * Environment: LQ_BENCH_DERIVED_DIALECTS (default `sqlite,postgres`), LQ_BENCH_DERIVED_MILLION=0
 * to skip the 10^6-row cases, LQ_BENCH_DERIVED_ROUNDS (throughput rounds at 10^5, default 3),
 * LQ_BENCH_DERIVED_SECTIONS (default `1,2,3`; `1` alone runs the throughput rounds only, e.g.
 * for before/after runs of section 1 interleaved with `LQ_BENCH_LIB`).
 *
 * Library: the built package (`dist/`, rebuilt by `lib.ts` when older than `src/`);
 * `LQ_BENCH_LIB=<path of another build's index.js>` runs another build (before/after runs of
 * one session), `LQ_BENCH_LIB=src` runs `src/` through tsx.
 *
 * Run alone: `npx tsx bench/derived.ts`; profile: `node --cpu-prof --import tsx bench/derived.ts`.
 */
import { readFileSync } from 'node:fs'
import os from 'node:os'
import v8 from 'node:v8'
import vm from 'node:vm'
import Database from 'better-sqlite3'
import * as t from 'io-ts'
import { Kysely, PostgresDialect, SqliteDialect, sql } from 'kysely'
import pg from 'pg'
import { runIfMain } from './harness.js'
import type { Store } from '../src/index.js'
import { lib, libraryLocation } from './lib.js'

// The built package (dist/, rebuilt when older than src/), or the build LQ_BENCH_LIB names:
// see lib.ts. (tsx's keepNames inflates per-row closures; benchmarks.md.)
const { createTable, openStore, Q, table } = lib

type DialectName = 'sqlite' | 'postgres'

const PG_URL = process.env['LQ_PG_URL'] ?? 'postgres://postgres@127.0.0.1:5432/test'
const DIALECTS = (process.env['LQ_BENCH_DERIVED_DIALECTS'] ?? 'sqlite,postgres').split(',').map((s) => s.trim()).filter((s): s is DialectName => s === 'sqlite' || s === 'postgres')
const MILLION = process.env['LQ_BENCH_DERIVED_MILLION'] !== '0'
const ROUNDS = Math.max(1, Number(process.env['LQ_BENCH_DERIVED_ROUNDS'] ?? 3) || 3)
const SECTIONS = new Set((process.env['LQ_BENCH_DERIVED_SECTIONS'] ?? '1,2,3').split(',').map((s) => s.trim()))
const K = 1000
const STALE_ROUNDS = 9
const TARGET_THROUGHPUT = 0.3
const TARGET_STALE_RATIO = 2
const TARGET_AFFECTED_MS = 1

v8.setFlagsFromString('--expose-gc')
const gc = vm.runInNewContext('gc') as () => void

const now = (): number => performance.now()
const selfCpu = (): number => {
  const u = process.cpuUsage()
  return (u.user + u.system) / 1000
}
const schedstatMs = (pid: number): number => {
  try {
    return Number(readFileSync(`/proc/${pid}/schedstat`, 'utf8').split(' ')[0]) / 1e6
  } catch {
    return Number.NaN
  }
}

function median(xs: readonly number[]): number {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b)
  if (s.length === 0) return Number.NaN
  const m = s.length >> 1
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2
}

const fmtMs = (ms: number): string => (!Number.isFinite(ms) ? '-' : ms >= 100 ? ms.toFixed(0) : ms >= 10 ? ms.toFixed(1) : ms >= 1 ? ms.toFixed(2) : ms.toFixed(3))
const fmtRate = (r: number): string => (!Number.isFinite(r) ? '-' : r >= 1e6 ? `${(r / 1e6).toFixed(2)}M` : `${(r / 1e3).toFixed(1)}k`)
const fmtPct = (x: number): string => (!Number.isFinite(x) ? '-' : `${(100 * x).toFixed(1)}%`)
const fmtN = (n: number): string => (n >= 1e6 && n % 1e6 === 0 ? `${n / 1e6}M` : n >= 1e3 && n % 1e3 === 0 ? `${n / 1e3}k` : String(n))

function textTable(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const w = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)))
  const line = (r: readonly string[]) => r.map((c, i) => (i === 0 ? c.padEnd(w[i]!) : c.padStart(w[i]!))).join('  ')
  return [line(header), w.map((n) => '-'.repeat(n)).join('  '), ...rows.map(line)].join('\n')
}

// ---------------------------------------------------------------- databases

interface Target {
  readonly name: DialectName
  readonly db: Kysely<any>
  /** A raw statement, no result. */
  exec(text: string): Promise<void>
  /** Raw bulk insert of rows first..last (`row(i)`) into `tbl(cols)`, in one transaction. */
  bulk(tbl: string, cols: readonly string[], first: number, last: number, row: (i: number) => unknown[]): Promise<void>
  /** The integer column type. */
  readonly int: string
  /** CPU milliseconds used so far by the work: this process, plus the PostgreSQL backend. */
  cpu(): number
  close(): Promise<void>
}

function openSqliteTarget(): Target {
  const database = new Database(':memory:')
  const db = new Kysely<any>({ dialect: new SqliteDialect({ database }) })
  return {
    name: 'sqlite',
    db,
    int: 'integer',
    async exec(text) {
      database.exec(text)
    },
    async bulk(tbl, cols, first, last, row) {
      const st = database.prepare(`INSERT INTO "${tbl}" (${cols.map((c) => `"${c}"`).join(', ')}) VALUES (${cols.map(() => '?').join(', ')})`)
      database.transaction(() => {
        for (let i = first; i <= last; i++) st.run(...row(i))
      })()
    },
    cpu: selfCpu,
    close: () => db.destroy(),
  }
}

async function openPostgresTarget(): Promise<Target> {
  const schema = `lq_bench_derived_${Date.now().toString(36)}`
  const admin = new pg.Client({ connectionString: PG_URL, connectionTimeoutMillis: 3000 })
  await admin.connect()
  try {
    await admin.query(`CREATE SCHEMA "${schema}"`)
  } finally {
    await admin.end()
  }
  // One connection: the store runs one statement at a time here, and its backend's CPU time
  // can be read.
  const pool = new pg.Pool({ connectionString: PG_URL, max: 1, options: `-c search_path=${schema}` })
  pool.on('error', () => undefined)
  const db = new Kysely<any>({ dialect: new PostgresDialect({ pool }) })
  const pid = Number((await pool.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid)
  const PER = 5000
  return {
    name: 'postgres',
    db,
    int: 'bigint',
    async exec(text) {
      await pool.query(text)
    },
    async bulk(tbl, cols, first, last, row) {
      const client = await pool.connect()
      const w = cols.length
      const textFor = new Map<number, string>()
      const stmt = (rows: number): string => {
        let s = textFor.get(rows)
        if (s === undefined) {
          const tuples: string[] = []
          for (let r = 0; r < rows; r++) tuples.push(`(${cols.map((_, c) => `$${r * w + c + 1}`).join(', ')})`)
          s = `INSERT INTO "${tbl}" (${cols.map((c) => `"${c}"`).join(', ')}) VALUES ${tuples.join(', ')}`
          textFor.set(rows, s)
        }
        return s
      }
      try {
        await client.query('BEGIN')
        for (let i = first; i <= last; i += PER) {
          const rows = Math.min(PER, last - i + 1)
          const params: unknown[] = []
          for (let j = 0; j < rows; j++) params.push(...row(i + j))
          await client.query(stmt(rows), params)
        }
        await client.query('COMMIT')
      } catch (e) {
        await client.query('ROLLBACK').catch(() => undefined)
        throw e
      } finally {
        client.release()
      }
    },
    cpu: () => selfCpu() + schedstatMs(pid),
    async close() {
      try {
        await pool.query(`DROP SCHEMA "${schema}" CASCADE`)
      } finally {
        await db.destroy()
      }
    },
  }
}

// ---------------------------------------------------------------- measuring

interface Timed {
  readonly wall: number
  readonly cpu: number
}

async function timed(tg: Target, fn: () => Promise<unknown>): Promise<Timed> {
  gc()
  await new Promise((r) => setTimeout(r, 20)) // let the collector's background sweeping finish
  const w0 = now()
  const c0 = tg.cpu()
  await fn()
  return { wall: now() - w0, cpu: tg.cpu() - c0 }
}

// ---------------------------------------------------------------- workloads

const plusOne = (row: { x: number }) => ({ n: row.x + 1 })

const rootTable = (n: number) => table(`r${n}`, { id: t.Int, x: t.Int })
type Root = ReturnType<typeof rootTable>

async function loadRoot(tg: Target, n: number): Promise<Root> {
  const root = rootTable(n)
  await createTable(tg.db, root)
  await tg.bulk(root.name, ['id', 'x'], 1, n, (i) => [i, (i * 7919) % 100003])
  return root
}

/** A store that knows one derivation: `name`, the trivial function over `root`. */
async function storeFor(tg: Target, root: Root, name: string): Promise<Store> {
  const store = await openStore(tg.db)
  await store.track(root)
  store.derive({ name, from: root, output: { n: t.Int }, fn: plusOne })
  return store
}

interface Throughput {
  readonly n: number
  readonly raw: Timed[]
  readonly refresh: Timed[]
  /** The store of the last round, whose derived table it left fully fresh. */
  readonly store: Store
}

/** Per round: the raw insert, then a first-fill refresh of a new derived table. */
async function throughput(tg: Target, root: Root, n: number, rounds: number, label = ''): Promise<Throughput> {
  const raw: Timed[] = []
  const refresh: Timed[] = []
  let last: Store | undefined
  for (let r = 0; r < rounds; r++) {
    await tg.exec(`DROP TABLE IF EXISTS raw_ceiling`)
    await tg.exec(`CREATE TABLE raw_ceiling (lq_key text PRIMARY KEY, n ${tg.int} NOT NULL)`)
    const a = await timed(tg, () => tg.bulk('raw_ceiling', ['lq_key', 'n'], 1, n, (i) => [String(i), i + 1]))
    const store = await storeFor(tg, root, `plus_${n}_${r}${label}`)
    last = store
    let computed = 0
    const b = await timed(tg, async () => {
      computed = (await store.refresh()).totals.computed
    })
    if (computed !== n) throw new Error(`refresh computed ${computed} rows, expected ${n}`)
    raw.push(a)
    refresh.push(b)
    console.log(
      `  ${tg.name} N=${fmtN(n)}${label} round ${r + 1}: raw ${fmtMs(a.wall)} ms (cpu ${fmtMs(a.cpu)}), refresh ${fmtMs(b.wall)} ms (cpu ${fmtMs(b.cpu)}): ` +
        `wall ${fmtPct(a.wall / b.wall)}, cpu ${fmtPct(a.cpu / b.cpu)}`,
    )
  }
  await tg.exec(`DROP TABLE IF EXISTS raw_ceiling`)
  return { n, raw, refresh, store: last! }
}

interface Staleness {
  readonly n: number
  readonly seeded: boolean
  readonly list: Timed[]
  readonly refresh: Timed[]
}

interface Fresh {
  readonly n: number
  readonly root: Root
  /** A store knowing one derivation, fully fresh. */
  readonly store: Store
  readonly seeded: boolean
}

/**
 * PostgreSQL, 10^6 rows: the derived table of `root` made fully fresh by seeding, as refresh
 * would have written it (see the module comment).
 */
async function seedFresh(tg: Target, root: Root, derived: string): Promise<Store> {
  const store = await storeFor(tg, root, derived)
  await store.status(derived, 1) // creates the derived tables
  const cv = store.codeVersion(derived)
  const R = root.name
  const rev = Number((await sql<{ rev: unknown }>`SELECT nextval('lq_clock_seq') AS rev`.execute(tg.db)).rows[0]!.rev)
  await tg.exec(`INSERT INTO "lq_meta_${derived}" (lq_key, lq_lineage, lq_inputs, lq_max_input_rev, lq_code_version, lq_state, lq_error, lq_hash, lq_computed_rev, lq_changed_rev)
    SELECT v.lq_key, '', '', v.rev, '${cv}', 'ok', NULL, '[' || (r.x + 1) || ']', ${rev}, ${rev}
    FROM "lq_rev_${R}" AS v JOIN "${R}" AS r ON r.id::text = v.lq_key WHERE v.deleted = 0 ORDER BY v.lq_key`)
  await tg.exec(`INSERT INTO "${derived}" (n, lq_key) SELECT r.x + 1, r.id::text FROM "${R}" AS r ORDER BY 2`)
  await tg.exec(`UPDATE lq_derived SET wm_rev = (SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM lq_clock_seq), wm_xmin = pg_current_snapshot()::text, applied_code_version = '${cv}' WHERE name = '${derived}'`)
  await tg.exec(`ANALYZE "lq_meta_${derived}"`)
  await tg.exec(`ANALYZE "${derived}"`)
  return store
}

/**
 * k random root rows updated, then `stale()` and `refresh()` timed; `rounds` rounds, each
 * running every size in turn. The first round warms up and is not kept.
 */
async function staleness(tg: Target, fresh: readonly Fresh[], rounds: number): Promise<Staleness[]> {
  const stores = fresh.map((f) => f.store)
  for (const f of fresh) {
    const before = await f.store.stale()
    if (before.length !== 0) throw new Error(`N=${f.n}: ${before.length} rows stale before the staleness rounds`)
  }
  const out: Staleness[] = fresh.map((f) => ({ n: f.n, seeded: f.seeded, list: [], refresh: [] }))
  let seed = 12345
  const rand = () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648
  for (let r = 0; r < rounds; r++) {
    for (let i = 0; i < fresh.length; i++) {
      const { n, root } = fresh[i]!
      const ids = new Set<number>()
      while (ids.size < K) ids.add(1 + Math.floor(rand() * n))
      await tg.exec(`UPDATE "${root.name}" SET x = x + 1 WHERE id IN (${[...ids].join(',')})`)
      let listed = 0
      let computed = 0
      const l = await timed(tg, async () => {
        listed = (await stores[i]!.stale()).length
      })
      const f = await timed(tg, async () => {
        computed = (await stores[i]!.refresh()).totals.computed
      })
      if (listed !== K || computed !== K) throw new Error(`N=${n}: stale() listed ${listed}, refresh computed ${computed}; expected ${K}`)
      if (r === 0) continue
      out[i]!.list.push(l)
      out[i]!.refresh.push(f)
    }
  }
  for (const o of out) {
    console.log(`  ${tg.name} N=${fmtN(o.n)}${o.seeded ? ' (seeded)' : ''}: k=${K}: stale() ${o.list.map((x) => `${fmtMs(x.wall)}/${fmtMs(x.cpu)}`).join(', ')} ms; refresh ${o.refresh.map((x) => `${fmtMs(x.wall)}/${fmtMs(x.cpu)}`).join(', ')} ms (wall/cpu)`)
  }
  return out
}

interface Affected {
  readonly edges: number
  readonly computedRows: number
  readonly fill: Timed
  readonly one: number[]
}

/**
 * Two roots joined one to one by a comprehension; each of its rows has lineage over both, so
 * lq_edge holds two edges per row. `m0` rows are computed by refresh, the rest up to `m`
 * seeded (see the module comment). Then `affected(root, key)` for random keys of either root.
 */
async function affected(tg: Target, m0: number, m: number, samples: number): Promise<Affected> {
  const ad = table('ad', { id: t.Int, v: t.Int })
  const ae = table('ae', { id: t.Int, v: t.Int })
  await createTable(tg.db, ad)
  await createTable(tg.db, ae)
  const t0 = now()
  await tg.bulk('ad', ['id', 'v'], 1, m0, (i) => [i, i % 97])
  await tg.bulk('ae', ['id', 'v'], 1, m0, (i) => [i, i % 89])
  const store = await openStore(tg.db)
  await store.track(ad)
  await store.track(ae)
  store.derive({
    name: 'joined',
    from: Q.for(ad, (a) => Q.for(ae, (e) => Q.where(Q.eq(a.id, e.id), Q.yield({ a: a.v, e: e.v })))),
    output: { s: t.Int },
    fn: (r) => ({ s: r.a + r.e }),
  })
  let computed = 0
  const fill = await timed(tg, async () => {
    computed = (await store.refresh()).totals.computed
  })
  if (computed !== m0) throw new Error(`joined: refresh computed ${computed}, expected ${m0}`)
  const edgeSql = (alias: string) => `'[["ad",' || ${alias}.id || '],["ae",' || ${alias}.id || ']]'`
  const keySql = (alias: string) => (tg.name === 'sqlite' ? `CAST(${alias}.id AS TEXT)` : `${alias}.id::text`)
  // The seeded rows' format is the engine's: check it on the computed ones.
  const mismatched = await sql.raw<{ n: unknown }>(
    `SELECT count(*) AS n FROM ad AS r WHERE NOT EXISTS (SELECT 1 FROM lq_edge AS e WHERE e.src_table = 'ad' AND e.src_key = ${keySql('r')} AND e.dst_table = 'joined' AND e.dst_key = ${edgeSql('r')})`,
  ).execute(tg.db)
  if (Number(mismatched.rows[0]!.n) !== 0) throw new Error('the seeding format differs from the engine-written lq_edge rows')
  if (m > m0) {
    await tg.bulk('ad', ['id', 'v'], m0 + 1, m, (i) => [i, i % 97])
    await tg.bulk('ae', ['id', 'v'], m0 + 1, m, (i) => [i, i % 89])
    for (const root of ['ad', 'ae']) {
      await tg.exec(`INSERT INTO lq_edge (src_table, src_key, dst_table, dst_key) SELECT '${root}', ${keySql('r')}, 'joined', ${edgeSql('r')} FROM ${root} AS r WHERE r.id > ${m0}`)
    }
    if (tg.name === 'postgres') await tg.exec('ANALYZE lq_edge')
  }
  console.log(`  ${tg.name}: affected() set-up (computing ${fmtN(m0)} rows, seeding to ${fmtN(m)}) took ${fmtMs(now() - t0)} ms`)
  const edges = Number((await sql<{ n: unknown }>`SELECT count(*) AS n FROM lq_edge WHERE dst_table = 'joined'`.execute(tg.db)).rows[0]!.n)
  const one: number[] = []
  let seed = 99
  const rand = () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648
  for (let i = 0; i < samples + 20; i++) {
    const key = 1 + Math.floor(rand() * m)
    const root = i % 2 === 0 ? ad : ae
    const t0 = now()
    const hit = await store.affected(root, key)
    const ms = now() - t0
    if (hit.length !== 1 || JSON.stringify(hit[0]!.key) !== JSON.stringify([{ table: 'ad', key }, { table: 'ae', key }])) throw new Error(`affected(${root.name}, ${key}) gave ${JSON.stringify(hit)}`)
    if (i >= 20) one.push(ms) // the first twenty warm up
  }
  console.log(`  ${tg.name}: ${edges} lineage edges; affected() median ${fmtMs(median(one))} ms; comprehension refresh of ${m0} rows: ${fmtMs(fill.wall)} ms`)
  return { edges, computedRows: m0, fill, one }
}

// ---------------------------------------------------------------- main

interface DialectResult {
  readonly name: DialectName
  readonly tp: Throughput[]
  readonly st: Staleness[]
  readonly af: Affected | undefined
  readonly seconds: number
}

async function benchDialect(name: DialectName): Promise<DialectResult> {
  const started = now()
  const tg = name === 'sqlite' ? openSqliteTarget() : await openPostgresTarget()
  const tp: Throughput[] = []
  const st: Staleness[] = []
  let af: Affected | undefined
  try {
    const sizes = MILLION ? [10_000, 100_000, 1_000_000] : [10_000, 100_000]
    const fresh: Fresh[] = []
    for (const n of sizes) {
      const t0 = now()
      const root = await loadRoot(tg, n)
      console.log(`  ${name}: loaded ${fmtN(n)} root rows in ${fmtMs(now() - t0)} ms`)
      if (n >= 1_000_000 && name === 'postgres') {
        if (!SECTIONS.has('2')) continue
        const t1 = now()
        const store = await seedFresh(tg, root, `plus_${n}`)
        console.log(`  ${name}: tracked ${fmtN(n)} root rows and seeded their derived rows in ${fmtMs(now() - t1)} ms`)
        fresh.push({ n, root, store, seeded: true })
        continue
      }
      // At 10^4: one warm-up round first (JIT, caches), not reported.
      if (n === 10_000) await throughput(tg, root, n, 1, '_warmup')
      // Without section 1, one round makes the fresh table section 2 starts from.
      const th = await throughput(tg, root, n, n === 100_000 && SECTIONS.has('1') ? ROUNDS : 1)
      if (SECTIONS.has('1')) tp.push(th)
      fresh.push({ n, root, store: th.store, seeded: false })
    }
    if (SECTIONS.has('2')) st.push(...(await staleness(tg, fresh, STALE_ROUNDS + 1)))
    for (const f of fresh) if (f.n >= 1_000_000) await tg.exec(`DROP TABLE IF EXISTS "${f.root.name}"`)
    if (SECTIONS.has('3')) af = await affected(tg, MILLION ? (name === 'sqlite' ? 50_000 : 20_000) : 5_000, MILLION ? 500_000 : 50_000, 200)
  } finally {
    await tg.close()
  }
  return { name, tp, st, af, seconds: (now() - started) / 1000 }
}

function report(results: readonly DialectResult[]): void {
  const rows: string[][] = []
  const ok = (b: boolean) => (b ? 'met' : 'MISSED')
  for (const r of results) {
    for (const th of r.tp) {
      const wall = median(th.raw.map((a, i) => a.wall / th.refresh[i]!.wall))
      const cpu = median(th.raw.map((a, i) => a.cpu / th.refresh[i]!.cpu))
      const rate = (xs: Timed[]) => fmtRate((th.n * 1000) / median(xs.map((x) => x.wall)))
      rows.push([
        `${r.name}: refresh throughput, N=${fmtN(th.n)}`,
        `${rate(th.refresh)} rows/s vs raw ${rate(th.raw)} rows/s: wall ${fmtPct(wall)}, cpu ${fmtPct(cpu)}${th.raw.length > 1 ? ` (medians of ${th.raw.length})` : ''}`,
        `>= ${(100 * TARGET_THROUGHPUT).toFixed(0)}%`,
        ok(cpu >= TARGET_THROUGHPUT),
      ])
    }
    const base = r.st.find((s) => s.n === 10_000)
    for (const s of r.st) {
      const m = (xs: Timed[], k: keyof Timed) => median(xs.map((x) => x[k]))
      const rel = (xs: Timed[], ys: Timed[] | undefined, k: keyof Timed) => (ys === undefined ? Number.NaN : m(xs, k) / m(ys, k))
      const cpuL = rel(s.list, base?.list, 'cpu')
      const cpuF = rel(s.refresh, base?.refresh, 'cpu')
      const ratios = s === base ? '' : `  cpu x${cpuL.toFixed(2)} / x${cpuF.toFixed(2)}, wall x${rel(s.list, base?.list, 'wall').toFixed(2)} / x${rel(s.refresh, base?.refresh, 'wall').toFixed(2)} of 10^4`
      rows.push([
        `${r.name}: k=${K} changed: stale() / refresh, N=${fmtN(s.n)}${s.seeded ? ' (seeded)' : ''}`,
        `wall ${fmtMs(m(s.list, 'wall'))} / ${fmtMs(m(s.refresh, 'wall'))} ms, cpu ${fmtMs(m(s.list, 'cpu'))} / ${fmtMs(m(s.refresh, 'cpu'))} ms${ratios}`,
        s === base ? '(base)' : `<= ${TARGET_STALE_RATIO}x 10^4`,
        s === base || base === undefined ? '' : ok(cpuL <= TARGET_STALE_RATIO && cpuF <= TARGET_STALE_RATIO),
      ])
    }
    if (r.af !== undefined) {
      const m = median(r.af.one)
      const p90 = [...r.af.one].sort((a, b) => a - b)[Math.floor(r.af.one.length * 0.9)]!
      rows.push([`${r.name}: affected(root, key), ${r.af.edges} edges`, `${fmtMs(m)} ms median of ${r.af.one.length} (p90 ${fmtMs(p90)} ms)`, `< ${TARGET_AFFECTED_MS} ms`, ok(m < TARGET_AFFECTED_MS)])
      rows.push([`${r.name}:   (comprehension refresh, ${fmtN(r.af.computedRows)} rows)`, `${fmtRate((r.af.computedRows * 1000) / r.af.fill.wall)} rows/s (wall ${fmtMs(r.af.fill.wall)} ms, cpu ${fmtMs(r.af.fill.cpu)} ms)`, '', ''])
    }
    rows.push([`${r.name}:   (whole section)`, `${r.seconds.toFixed(0)} s`, '', ''])
  }
  console.log('')
  console.log(textTable(['benchmark', 'figure', 'target', ''], rows))
  console.log(`throughput and staleness targets judged on CPU time (wall times include waiting for a core on a loaded machine); affected on wall time. Staleness: medians of ${STALE_ROUNDS} interleaved rounds after one warm-up round.`)
}

export async function main(): Promise<void> {
  console.log(`lineage-query bench: derived tables (benchmarks.md section 4); node ${process.version}, load average ${os.loadavg()[0]?.toFixed(1)} on ${os.cpus().length} cores; library ${libraryLocation}`)
  console.log('raw ceiling: N rows (lq_key text primary key, n integer) by a prepared better-sqlite3 INSERT per row in one transaction / 5000-row multi-row INSERTs in one transaction (PostgreSQL)')
  const results: DialectResult[] = []
  for (const d of DIALECTS) {
    console.log(`== ${d}`)
    try {
      results.push(await benchDialect(d))
    } catch (e) {
      console.log(`${d}: failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`)
    }
  }
  report(results)
}

runIfMain(import.meta.url, main)
