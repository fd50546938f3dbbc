/**
 * `npm run bench:stream`: peak memory (max RSS) of reading a large result with `stream` against
 * `run`, on SQLite and PostgreSQL, of `q` and of `lineage(q)` (the same `q`), against the built
 * package (dist/: `npm run build` first). Each measurement runs in its own process (max RSS is
 * per process), which reads every row's data (`read=data`) or its data and every lineage entry
 * (`read=lineage`) and keeps a running checksum, so the rows are really decoded; `run` holds the
 * whole result, as a caller of `run` does. Issue 12's target: peak of run(lineage(q)) at most
 * 1.3x that of run(q) (1e6 rows).
 *
 * Environment (defaults): BENCH_STREAM_ROWS=1000000  BENCH_DIALECTS=sqlite,postgres
 * BENCH_PG_SCHEMA=lq_bench_stream  PGHOST=127.0.0.1 PGPORT=5432 PGUSER=postgres PGDATABASE=test
 */
import { execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import Database from 'better-sqlite3'
import * as t from 'io-ts'
import { Kysely, PostgresDialect, SqliteDialect, sql } from 'kysely'
import pg from 'pg'
import type { AnyQuery } from '../src/index.js'
import Cursor from 'pg-cursor'
// The built package (typed as the source it is built from; a path tsc does not resolve, so the
// type check does not need dist/).
const dist = '../dist/index.js'
const lq = (await import(dist)) as typeof import('../src/index.js')

const numbers = lq.table('numbers', { id: t.Int, label: t.string, grp: t.Int })
const pgUrl = `postgres://${process.env['PGUSER'] ?? 'postgres'}@${process.env['PGHOST'] ?? '127.0.0.1'}:${process.env['PGPORT'] ?? '5432'}/${process.env['PGDATABASE'] ?? 'test'}`
const schema = process.env['BENCH_PG_SCHEMA'] ?? 'lq_bench_stream'

function open(dialect: string, file: string): Kysely<any> {
  if (dialect === 'sqlite') return new Kysely<any>({ dialect: new SqliteDialect({ database: new Database(file) }) })
  return new Kysely<any>({ dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString: pgUrl, options: `-c search_path=${schema}`, max: 2 }), cursor: Cursor }) })
}

const plainQuery = lq.Q.for(numbers, (n) => lq.Q.yield({ id: n.id, label: n.label }))
const queries = {
  plain: plainQuery,
  lineage: lq.lineage(plainQuery),
}
type Read = 'data' | 'lineage'

/** What a reader of one row touches: the data's fields, and with `lineage` every entry. */
function touch(r: unknown, read: Read): number {
  const a = r as { data?: { id: number; label: string }; lineage?: readonly { table: string; key: unknown }[]; id?: number; label?: string }
  if (a.data === undefined) return a.id! + a.label!.length
  let n = a.data.id + a.data.label.length
  if (read === 'lineage') for (const e of a.lineage!) n += e.table.length + (e.key as number)
  return n
}

async function child(dialect: string, file: string, mode: 'run' | 'stream', shape: keyof typeof queries, read: Read): Promise<void> {
  const db = open(dialect, file)
  const q = queries[shape] as AnyQuery
  const before = process.memoryUsage().rss
  const t0 = performance.now()
  let rows = 0
  let sum = 0
  if (mode === 'run') {
    const all = await lq.run(db, q)
    for (const r of all) (rows += 1), (sum += touch(r, read))
  } else {
    for await (const r of lq.stream(db, q)) (rows += 1), (sum += touch(r, read))
  }
  const ms = performance.now() - t0
  await db.destroy()
  // maxRSS is in kilobytes.
  console.log(JSON.stringify({ rows, sum, ms, startMB: before / 2 ** 20, peakMB: process.resourceUsage().maxRSS / 1024 }))
}

async function main(): Promise<void> {
  const n = Number(process.env['BENCH_STREAM_ROWS'] ?? 1_000_000)
  const dialects = (process.env['BENCH_DIALECTS'] ?? 'sqlite,postgres').split(',')
  const dir = mkdtempSync(join(tmpdir(), 'lq-bench-stream-'))
  const file = join(dir, 'stream.db')
  try {
    console.log(`stream vs run: peak RSS reading ${n} rows (each a separate process)`)
    console.log('dialect   shape    mode    read     rows      time s  start MB  peak MB')
    for (const dialect of dialects) {
      const db = open(dialect, file)
      if (dialect === 'postgres') {
        await sql`drop schema if exists ${sql.id(schema)} cascade`.execute(db)
        await sql`create schema ${sql.id(schema)}`.execute(db)
      }
      await lq.createTable(db, numbers)
      if (dialect === 'sqlite') {
        await sql`with recursive s(i) as (select 1 union all select i + 1 from s where i < ${n}) insert into numbers select i, 'label ' || i, i % 100 from s`.execute(db)
      } else {
        await sql`insert into numbers select i, 'label ' || i, i % 100 from generate_series(1, ${n}) as i`.execute(db)
        await sql`analyze numbers`.execute(db)
      }
      await db.destroy()
      const cases: [keyof typeof queries, 'run' | 'stream', Read][] = [
        ['plain', 'run', 'data'],
        ['lineage', 'run', 'data'],
        ['lineage', 'run', 'lineage'],
        ['plain', 'stream', 'data'],
        ['lineage', 'stream', 'lineage'],
      ]
      const peaks = new Map<string, number>()
      for (const [shape, mode, read] of cases) {
        const out = execFileSync(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), 'child', dialect, file, mode, shape, read], { encoding: 'utf8', maxBuffer: 1 << 20 })
        const r = JSON.parse(out.trim().split('\n').pop()!) as { rows: number; ms: number; startMB: number; peakMB: number }
        peaks.set(`${shape} ${mode} ${read}`, r.peakMB)
        console.log(`${dialect.padEnd(9)} ${shape.padEnd(8)} ${mode.padEnd(7)} ${read.padEnd(8)} ${String(r.rows).padEnd(9)} ${(r.ms / 1000).toFixed(1).padStart(6)}  ${r.startMB.toFixed(0).padStart(8)}  ${r.peakMB.toFixed(0).padStart(7)}`)
      }
      const base = peaks.get('plain run data')!
      const ratio = (k: string) => (peaks.get(k)! / base).toFixed(2)
      console.log(`${dialect}: peak of run(lineage(q)) / run(q): ${ratio('lineage run data')}x lineage not read, ${ratio('lineage run lineage')}x every entry read (target <= 1.3x)`)
      if (dialect === 'postgres') {
        const d = open(dialect, file)
        await sql`drop schema if exists ${sql.id(schema)} cascade`.execute(d)
        await d.destroy()
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

if (process.argv[2] === 'child') await child(process.argv[3]!, process.argv[4]!, process.argv[5] as 'run' | 'stream', process.argv[6] as keyof typeof queries, process.argv[7] as Read)
else await main()
