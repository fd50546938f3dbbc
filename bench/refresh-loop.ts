/**
 * The event loop and memory during a refresh (docs/derived.md, "The event loop", "Limits"):
 * a first fill and an incremental refresh of a derivation `(r) => ({ n: r.x + 1 })` over N
 * root rows on SQLite (better-sqlite3, in memory) and PostgreSQL (the server at LQ_PG_URL, in a
 * fresh schema dropped at the end), while a 20 ms interval timer runs. Prints, per case: the
 * refresh time, how often the timer ticked, the worst gap between ticks (the longest time the
 * loop was blocked, plus 20 ms), and the peak RSS growth of this process during the refresh
 * (sampled every tick, and by `process.resourceUsage().maxRSS` where the loop was blocked).
 *
 * Not a test: figures depend on the machine. Environment: LQ_BENCH_LOOP_N (default 50000),
 * LQ_BENCH_LOOP_DIALECTS (default `sqlite,postgres`).
 *
 * Run: `npx tsx bench/refresh-loop.ts`.
 */
import Database from 'better-sqlite3'
import * as t from 'io-ts'
import { Kysely, PostgresDialect, SqliteDialect, sql } from 'kysely'
import pg from 'pg'
import { runIfMain } from './harness.js'
import { createTable, openStore, table } from '../src/index.js'

const N = Number(process.env['LQ_BENCH_LOOP_N'] ?? 50_000)
const DIALECTS = (process.env['LQ_BENCH_LOOP_DIALECTS'] ?? 'sqlite,postgres').split(',')
const PG_URL = process.env['LQ_PG_URL'] ?? 'postgres://postgres@127.0.0.1:5432/test'

const root = table('root', { id: t.Int, x: t.Int })

async function open(dialect: string): Promise<{ db: Kysely<any>; close: () => Promise<void> }> {
  if (dialect === 'sqlite') {
    const db = new Kysely<any>({ dialect: new SqliteDialect({ database: new Database(':memory:') }) })
    return { db, close: () => db.destroy() }
  }
  const schema = `lq_bench_loop_${Date.now().toString(36)}`
  const admin = new pg.Client({ connectionString: PG_URL })
  await admin.connect()
  await admin.query(`CREATE SCHEMA ${schema}`)
  await admin.end()
  const db = new Kysely<any>({ dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString: PG_URL, options: `-c search_path=${schema}`, max: 2 }) }) })
  return {
    db,
    async close() {
      await sql`DROP SCHEMA ${sql.id(schema)} CASCADE`.execute(db)
      await db.destroy()
    },
  }
}

interface Watch {
  stop(): { ticks: number; worstGapMs: number; peakRssMb: number }
}

function watch(): Watch {
  const rss0 = process.memoryUsage().rss
  let last = performance.now()
  let worst = 0
  let ticks = 0
  let peak = rss0
  const timer = setInterval(() => {
    const now = performance.now()
    worst = Math.max(worst, now - last)
    last = now
    ticks++
    peak = Math.max(peak, process.memoryUsage().rss)
  }, 20)
  return {
    stop() {
      clearInterval(timer)
      worst = Math.max(worst, performance.now() - last)
      peak = Math.max(peak, process.memoryUsage().rss)
      return { ticks, worstGapMs: worst, peakRssMb: (peak - rss0) / 2 ** 20 }
    },
  }
}

async function main(): Promise<void> {
  console.log(`refresh and the event loop: N = ${N} root rows, a 20 ms interval timer running`)
  for (const dialect of DIALECTS) {
    const { db, close } = await open(dialect)
    try {
      await createTable(db, root)
      for (let i = 0; i < N; i += 5000) {
        const rows = Array.from({ length: Math.min(5000, N - i) }, (_, j) => ({ id: i + j + 1, x: i + j }))
        await db.insertInto('root').values(rows).execute()
      }
      const store = await openStore(db)
      await store.track(root)
      store.derive({ name: 'out', from: root, output: { n: t.Int }, fn: (r) => ({ n: r.x + 1 }) })
      global.gc?.()
      for (const [label, prepare] of [
        ['first fill', async () => {}],
        ['incremental, 10% of rows changed', async () => void (await sql`UPDATE root SET x = x + 1 WHERE id % 10 = 0`.execute(db))],
      ] as const) {
        await prepare()
        const w = watch()
        const started = performance.now()
        const cpu0 = process.cpuUsage()
        const r = await store.refresh()
        const ms = performance.now() - started
        const cpu = process.cpuUsage(cpu0)
        const cpuMs = (cpu.user + cpu.system) / 1000
        const s = w.stop()
        console.log(`  ${dialect.padEnd(8)} ${label.padEnd(34)} ${ms.toFixed(0).padStart(6)} ms (cpu ${cpuMs.toFixed(0)} ms in this process), ${String(r.totals.computed).padStart(6)} rows; timer ticks ${String(s.ticks).padStart(4)} (of ~${Math.floor(ms / 20)}), worst gap ${s.worstGapMs.toFixed(0)} ms; RSS +${s.peakRssMb.toFixed(0)} MB`)
      }
    } finally {
      await close()
    }
  }
}

runIfMain(import.meta.url, main)
