/**
 * Peak memory of a first fill (docs/derived.md, "Limits"): N root rows in a SQLite file, a
 * derivation `(r) => ({ n: r.x + 1 })`, one `store.refresh()` in a fresh process. Prints the
 * process's resident set before the refresh and its peak (`maxRSS`) after, so the growth is
 * what the refresh held at once. The database file is written by a first process, so loading
 * the root rows does not count.
 *
 * Run: `npx tsx bench/fill-memory.ts [N]` (default 10^6). Environment: LQ_BENCH_FILL_DIR (default: a temp dir),
 * LQ_BENCH_LIB (another build's index.js, for before/after runs; see lib.ts).
 */
import { spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import Database from 'better-sqlite3'
import * as t from 'io-ts'
import { Kysely, SqliteDialect } from 'kysely'
import { lib } from './lib.js'

// The built package (dist/), or the build LQ_BENCH_LIB names (see lib.ts), in both processes.
const { createTable, openStore, table } = lib

const root = table('root', { id: t.Int, x: t.Int })

async function declare(file: string) {
  const db = new Kysely<any>({ dialect: new SqliteDialect({ database: new Database(file) }) })
  const store = await openStore(db)
  await store.track(root)
  store.derive({ name: 'out', from: root, output: { n: t.Int }, fn: (r) => ({ n: r.x + 1 }) })
  return { db, store }
}

async function setup(file: string, n: number): Promise<void> {
  const database = new Database(file)
  database.pragma('journal_mode = WAL')
  const db = new Kysely<any>({ dialect: new SqliteDialect({ database }) })
  await createTable(db, root)
  const ins = database.prepare('INSERT INTO root (id, x) VALUES (?, ?)')
  database.transaction(() => {
    for (let i = 1; i <= n; i++) ins.run(i, i)
  })()
  await db.destroy()
  const { db: db2 } = await declare(file)
  await db2.destroy()
}

async function fill(file: string): Promise<void> {
  const { db, store } = await declare(file)
  global.gc?.()
  const before = process.memoryUsage().rss
  const started = performance.now()
  const r = await store.refresh()
  const ms = performance.now() - started
  const peak = process.resourceUsage().maxRSS * 1024
  console.log(JSON.stringify({ rows: r.totals.computed, ms: Math.round(ms), rssBeforeMb: Math.round(before / 2 ** 20), peakRssMb: Math.round(peak / 2 ** 20), growthMb: Math.round((peak - before) / 2 ** 20) }))
  await db.destroy()
}

const [mode, file, nText] = process.argv.slice(2)
if (mode === 'setup') await setup(file!, Number(nText))
else if (mode === 'fill') await fill(file!)
else {
  const n = Number(mode ?? 1_000_000)
  const dir = process.env['LQ_BENCH_FILL_DIR'] ?? mkdtempSync(join(tmpdir(), 'lq-fill-'))
  const db = join(dir, 'fill.db')
  try {
    const self = fileURLToPath(import.meta.url)
    const step = (args: string[]) => {
      const r = spawnSync(process.execPath, ['--import', 'tsx', self, ...args], { encoding: 'utf8' })
      if (r.status !== 0) throw new Error(r.stderr)
      return r.stdout.trim()
    }
    step(['setup', db, String(n)])
    console.log(`first fill of ${n} rows (SQLite file, one refresh in a fresh process): ${step(['fill', db])}`)
  } finally {
    if (process.env['LQ_BENCH_FILL_DIR'] === undefined) rmSync(dir, { recursive: true, force: true })
  }
}
