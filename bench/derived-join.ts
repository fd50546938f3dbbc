/**
 * Staleness cost of a derivation over a two-root join (issue 4: "a change to either makes
 * exactly the rows it fed stale"; finding stale rows must cost in proportion to the rows
 * changed). Roots `d` and `e` of N rows each, joined one to one on their keys; the derived table
 * `joined` holds one row per pair, with lineage over both roots. Per round: k = 1000 root rows
 * updated by raw SQL (500 of `d`, 500 of `e`, at random), then `store.stale()` and the
 * `store.refresh()` that follows are timed. N = 10^4 and 10^5 (and 10^6 on SQLite with
 * LQ_BENCH_JOIN_MILLION=1; its fill takes minutes), rounds interleaved across sizes.
 * Target (the staleness target): the 10^5 time within 2x of the 10^4 time.
 *
 * Before delta evaluation the engine re-evaluated the whole join on every change: stale() took
 * 22 s at N = 2*10^5 on SQLite.
 *
 * Run alone: `npx tsx bench/derived-join.ts`. Environment: LQ_BENCH_DERIVED_DIALECTS
 * (default `sqlite,postgres`), LQ_PG_URL.
 */
import Database from 'better-sqlite3'
import * as t from 'io-ts'
import { Kysely, PostgresDialect, SqliteDialect, sql } from 'kysely'
import pg from 'pg'
import { median, runIfMain } from './harness.js'
import { createTable, openStore, Q, table, type Store } from '../src/index.js'

const PG_URL = process.env['LQ_PG_URL'] ?? 'postgres://postgres@127.0.0.1:5432/test'
const DIALECTS = (process.env['LQ_BENCH_DERIVED_DIALECTS'] ?? 'sqlite,postgres').split(',').map((s) => s.trim())
const K = 1000
const ROUNDS = 7
const TARGET = 2

interface Target {
  readonly name: string
  readonly db: Kysely<any>
  readonly series: (n: number) => string
  close(): Promise<void>
}

function sqliteTarget(): Target {
  const db = new Kysely<any>({ dialect: new SqliteDialect({ database: new Database(':memory:') }) })
  return { name: 'sqlite', db, series: (n) => `WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < ${n}) SELECT i FROM s`, close: () => db.destroy() }
}

async function postgresTarget(): Promise<Target> {
  const schema = `lq_bench_join_${Date.now().toString(36)}`
  const admin = new pg.Client({ connectionString: PG_URL, connectionTimeoutMillis: 3000 })
  await admin.connect()
  await admin.query(`CREATE SCHEMA "${schema}"`)
  await admin.end()
  const pool = new pg.Pool({ connectionString: PG_URL, max: 1, options: `-c search_path=${schema}` })
  const db = new Kysely<any>({ dialect: new PostgresDialect({ pool }) })
  return {
    name: 'postgres',
    db,
    series: (n) => `SELECT generate_series(1, ${n}) AS i`,
    async close() {
      await sql.raw(`DROP SCHEMA "${schema}" CASCADE`).execute(db)
      await db.destroy()
    },
  }
}

interface Size {
  readonly n: number
  readonly d: string
  readonly e: string
  readonly store: Store
  readonly fillMs: number
  readonly stale: number[]
  readonly refresh: number[]
}

async function setUp(tg: Target, n: number): Promise<Size> {
  const d = table(`d${n}`, { id: t.Int, v: t.Int })
  const e = table(`e${n}`, { id: t.Int, w: t.Int })
  await createTable(tg.db, d)
  await createTable(tg.db, e)
  await sql.raw(`INSERT INTO "${d.name}" (id, v) SELECT i, i % 97 FROM (${tg.series(n)}) AS g`).execute(tg.db)
  await sql.raw(`INSERT INTO "${e.name}" (id, w) SELECT i, i % 89 FROM (${tg.series(n)}) AS g`).execute(tg.db)
  const store = await openStore(tg.db)
  await store.track(d)
  await store.track(e)
  store.derive({
    name: `joined${n}`,
    from: Q.for(d, (x) => Q.for(e, (y) => Q.where(Q.eq(x.id, y.id), Q.yield({ v: x.v, w: y.w })))),
    output: { s: t.Int },
    fn: (r) => ({ s: r.v + r.w }),
  })
  const t0 = performance.now()
  const r = await store.refresh()
  if (r.totals.computed !== n) throw new Error(`fill computed ${r.totals.computed}, expected ${n}`)
  return { n, d: d.name, e: e.name, store, fillMs: performance.now() - t0, stale: [], refresh: [] }
}

async function bench(tg: Target): Promise<string[]> {
  const sizes: Size[] = []
  const ns = [10_000, 100_000, ...(tg.name === 'sqlite' && process.env['LQ_BENCH_JOIN_MILLION'] === '1' ? [1_000_000] : [])]
  for (const n of ns) {
    const s = await setUp(tg, n)
    console.log(`  ${tg.name} N=${n}: filled ${n} joined rows in ${s.fillMs.toFixed(0)} ms`)
    sizes.push(s)
  }
  let seed = 777
  const rand = () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648
  for (let round = 0; round <= ROUNDS; round++) {
    for (const s of sizes) {
      const ids = new Set<number>()
      while (ids.size < K) ids.add(1 + Math.floor(rand() * s.n))
      const list = [...ids]
      const half = list.length / 2
      await sql.raw(`UPDATE "${s.d}" SET v = v + 1 WHERE id IN (${list.slice(0, half).join(',')})`).execute(tg.db)
      await sql.raw(`UPDATE "${s.e}" SET w = w + 1 WHERE id IN (${list.slice(half).join(',')})`).execute(tg.db)
      let t0 = performance.now()
      const stale = await s.store.stale()
      const staleMs = performance.now() - t0
      if (stale.length !== K) throw new Error(`N=${s.n}: stale() listed ${stale.length} rows, expected ${K}`)
      t0 = performance.now()
      const r = await s.store.refresh()
      const refreshMs = performance.now() - t0
      if (r.totals.computed !== K) throw new Error(`N=${s.n}: refresh computed ${r.totals.computed}, expected ${K}`)
      if (round > 0) {
        s.stale.push(staleMs)
        s.refresh.push(refreshMs)
      }
    }
  }
  const base = sizes[0]!
  return sizes.map((s) => {
    const ratio = (xs: number[], b: number[]) => median(xs) / median(b)
    const rel = s === base ? '(base)' : `x${ratio(s.stale, base.stale).toFixed(2)} / x${ratio(s.refresh, base.refresh).toFixed(2)} of 10^4 (target <= ${TARGET}x: ${ratio(s.stale, base.stale) <= TARGET && ratio(s.refresh, base.refresh) <= TARGET ? 'met' : 'MISSED'})`
    return `${tg.name}: two-root join, k=${K} changed, N=${s.n} per root: stale() ${median(s.stale).toFixed(1)} ms, refresh ${median(s.refresh).toFixed(1)} ms (medians of ${ROUNDS}) ${rel}`
  })
}

export async function main(): Promise<void> {
  console.log(`lineage-query bench: staleness of a two-root join derivation; load average ${(await import('node:os')).loadavg()[0]!.toFixed(1)}`)
  const lines: string[] = []
  for (const name of DIALECTS) {
    const tg = name === 'postgres' ? await postgresTarget() : sqliteTarget()
    try {
      lines.push(...(await bench(tg)))
    } finally {
      await tg.close()
    }
  }
  console.log('')
  for (const l of lines) console.log(l)
}

await runIfMain(import.meta.url, main)
