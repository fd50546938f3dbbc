/**
 * Program start against root writers (issue 10, defect 1), on SQLite (a WAL file) and
 * PostgreSQL (the server at LQ_PG_URL, in a fresh schema dropped at the end).
 *
 * A root `src(id integer PRIMARY KEY, text)` of N rows (default 10^5; LQ_BENCH_STARTUP_ROWS)
 * and, in this process, a root writer: single-row UPDATEs in autocommit, one every ~2 ms, each
 * timed. A program start (`openStore`, `track(src)`, `derive`) runs in a child process
 * (test/derived/support/start-child.ts), which reports when its start began and ended; the
 * writes issued in that window are its sample. Three windows per dialect:
 *
 * - `idle`: no start (3 s);
 * - `first start`: the first `track` of the table (DDL and the revision backfill);
 * - `restart`: a start on the tracked table (what every later program start does).
 *
 * Printed per window: writes, failed writes (e.g. PostgreSQL deadlock aborts), p50, p99 and max
 * latency, and the start's own duration. Environment: LQ_BENCH_STARTUP_DIALECTS (default
 * `sqlite,postgres`), LQ_BENCH_STARTUP_ROWS (default 100000).
 *
 * Run: `npm run bench:startup`.
 */
import Database from 'better-sqlite3'
import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import pg from 'pg'
import { runIfMain } from './harness.js'

const child = fileURLToPath(new URL('../test/derived/support/start-child.ts', import.meta.url))
const pgUrl = process.env['LQ_PG_URL'] ?? 'postgres://postgres@127.0.0.1:5432/test'

interface Sample {
  readonly at: number
  readonly ms: number
  readonly failed: boolean
}

interface Target {
  readonly name: string
  readonly target: string
  write(id: number, text: string): Promise<void>
  close(): Promise<void>
}

async function sqliteTarget(n: number): Promise<Target> {
  const dir = mkdtempSync(join(tmpdir(), 'lq-bench-start-'))
  const file = join(dir, 'db.sqlite')
  const d = new Database(file)
  d.pragma('journal_mode = WAL')
  d.exec('CREATE TABLE src (id integer PRIMARY KEY, text text NOT NULL)')
  const ins = d.prepare('INSERT INTO src (id, text) VALUES (?, ?)')
  d.transaction(() => {
    for (let i = 1; i <= n; i++) ins.run(i, `t${i}`)
  })()
  const upd = d.prepare('UPDATE src SET text = ? WHERE id = ?')
  return {
    name: 'sqlite',
    target: file,
    write: async (id, text) => void upd.run(text, id),
    async close() {
      d.close()
      rmSync(dir, { recursive: true, force: true })
    },
  }
}

async function pgTarget(n: number): Promise<Target> {
  const schema = `lq_bench_start_${Date.now().toString(36)}`
  const c = new pg.Client({ connectionString: pgUrl })
  await c.connect()
  await c.query(`CREATE SCHEMA "${schema}"`)
  await c.query(`SET search_path = "${schema}"`)
  await c.query('CREATE TABLE src (id integer PRIMARY KEY, text text NOT NULL)')
  await c.query(`INSERT INTO src (id, text) SELECT i, 't' || i FROM generate_series(1, ${n}) AS i`)
  await c.query('ANALYZE src')
  return {
    name: 'postgres',
    target: schema,
    write: async (id, text) => void (await c.query('UPDATE src SET text = $1 WHERE id = $2', [text, id])),
    async close() {
      await c.query(`DROP SCHEMA "${schema}" CASCADE`)
      await c.end()
    },
  }
}

function startChild(dialect: string, target: string): Promise<{ ok: boolean; ms?: number; t0?: number; t1?: number; error?: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, ['--import', 'tsx', child, dialect, target], { stdio: ['ignore', 'pipe', 'inherit'] })
    let out = ''
    p.stdout.on('data', (b) => (out += String(b)))
    p.on('exit', () => {
      try {
        resolve(JSON.parse(out.trim().split('\n').pop() ?? ''))
      } catch {
        resolve({ ok: false, error: out })
      }
    })
  })
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms))

function pct(xs: readonly number[], p: number): number {
  if (xs.length === 0) return NaN
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!
}

function report(label: string, samples: readonly Sample[], startMs?: number): void {
  const ok = samples.filter((s) => !s.failed).map((s) => s.ms)
  const failed = samples.length - ok.length
  const f = (x: number) => (Number.isNaN(x) ? '-' : `${x.toFixed(1)} ms`)
  console.log(`  ${label.padEnd(12)} writes ${String(samples.length).padStart(5)}  failed ${failed}  p50 ${f(pct(ok, 50))}  p99 ${f(pct(ok, 99))}  max ${f(Math.max(...ok))}${startMs === undefined ? '' : `  start took ${startMs.toFixed(0)} ms`}`)
}

async function runDialect(dialect: 'sqlite' | 'postgres', n: number): Promise<void> {
  const tgt = dialect === 'sqlite' ? await sqliteTarget(n) : await pgTarget(n)
  console.log(`${dialect}, ${n} rows:`)
  const samples: Sample[] = []
  let stop = false
  let i = 0
  const writer = (async () => {
    while (!stop) {
      i++
      const at = Date.now()
      const t = performance.now()
      let failed = false
      try {
        await tgt.write(1 + ((i * 7919) % n), `w${i}`)
      } catch {
        failed = true
      }
      samples.push({ at, ms: performance.now() - t, failed })
      await sleep(2)
    }
  })()
  try {
    const idleFrom = Date.now()
    await sleep(3000)
    report('idle', samples.filter((s) => s.at >= idleFrom))
    for (const label of ['first start', 'restart']) {
      const r = await startChild(dialect, tgt.target)
      if (!r.ok) {
        console.log(`  ${label}: the start failed: ${r.error}`)
        continue
      }
      report(label, samples.filter((s) => s.at >= r.t0! && s.at <= r.t1!), r.ms)
    }
  } finally {
    stop = true
    await writer
    await tgt.close()
  }
}

async function main(): Promise<void> {
  const n = Number(process.env['LQ_BENCH_STARTUP_ROWS'] ?? 100_000)
  const dialects = (process.env['LQ_BENCH_STARTUP_DIALECTS'] ?? 'sqlite,postgres').split(',') as ('sqlite' | 'postgres')[]
  for (const d of dialects) await runDialect(d, n)
}

runIfMain(import.meta.url, main)
