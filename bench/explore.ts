/**
 * The explorer's two performance targets (issue 13), on the built package (dist/, built with
 * `npm run build` when missing or older than src/), SQLite:
 *
 * 1. First paint of the page for a store with 200 derived tables (< 1 s): one root of 100 rows,
 *    200 derived tables in 20 layers of 10 (each reads one table of the layer before), refreshed,
 *    then 10 root rows changed so every table has stale rows. Timed: `GET /api/tables` alone,
 *    and in Chromium (/usr/bin/chromium, as the browser test) from `page.goto` to the drawn
 *    graph (HTML, script, API, layout, SVG), median of 7 loads.
 * 2. A row's neighbourhood (lineage + affected, depth 1) over 10^6 lineage edges (< 50 ms):
 *    four roots of N = 250,000 rows joined one to one by a comprehension (`joined`: 250,000 rows,
 *    four `lq_edge` entries each), and `tagged` reading `joined`; timed: `GET /api/row` of
 *    random `joined` rows (state, cause tree, value, root lineage, affected rows downstream),
 *    median and p95 of 50; and the rows page (50 rows, keyset) of `joined` and of `tagged`'s
 *    fresh rows, walking 25 next pages. The fill takes a few minutes.
 *
 * Run: `npm run bench:explore`. Environment: LQ_BENCH_EXPLORE_N (rows per root in part 2,
 * default 250000), LQ_BENCH_EXPLORE_PARTS (`paint,neighbourhood`), LQ_CHROMIUM.
 */
import { execFileSync } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import Database from 'better-sqlite3'
import * as t from 'io-ts'
import { Kysely, SqliteDialect, sql } from 'kysely'
import { chromium } from 'playwright-core'
import { median, newestMtime, nowMs } from './harness.js'

type Lib = typeof import('../src/index.js')
type Server = typeof import('../src/explore/server.js')

const root = new URL('..', import.meta.url).pathname
const N = Number(process.env['LQ_BENCH_EXPLORE_N'] ?? 250_000)
const PARTS = (process.env['LQ_BENCH_EXPLORE_PARTS'] ?? 'paint,neighbourhood').split(',')
const CHROMIUM = process.env['LQ_CHROMIUM'] ?? '/usr/bin/chromium'

async function built(): Promise<{ lib: Lib; server: Server }> {
  const entry = join(root, 'dist', 'index.js')
  if (!existsSync(entry) || statSync(entry).mtimeMs < newestMtime(join(root, 'src')) || !existsSync(join(root, 'dist', 'explore', 'static', 'app.js'))) {
    console.log('building dist/ (npm run build) ...')
    execFileSync('npm', ['run', 'build'], { cwd: root, stdio: 'inherit' })
  }
  return {
    lib: (await import(pathToFileURL(entry).href)) as Lib,
    server: (await import(pathToFileURL(join(root, 'dist', 'explore', 'server.js')).href)) as Server,
  }
}

const p95 = (xs: readonly number[]): number => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * 0.95))]!

async function firstPaint(lib: Lib, server: Server): Promise<void> {
  const db = new Kysely<any>({ dialect: new SqliteDialect({ database: new Database(':memory:') }) })
  const src = lib.table('src', { id: t.Int, v: t.Int })
  await lib.createTable(db, src)
  await lib.insertRows(db, src, Array.from({ length: 100 }, (_, i) => ({ id: i + 1, v: i })))
  const store = await lib.openStore(db)
  await store.track(src)
  const layers: import("../src/index.js").DerivedTable<string, { v: number }>[][] = []
  for (let l = 0; l < 20; l++) {
    const layer: import("../src/index.js").DerivedTable<string, { v: number }>[] = []
    for (let i = 0; i < 10; i++) {
      const from = l === 0 ? src : layers[l - 1]![i]!
      layer.push(store.derive({ name: `t${l}_${i}`, from: from as typeof src, output: { v: t.number }, fn: (r: { v: number }) => ({ v: r.v + 1 }) }) as unknown as import("../src/index.js").DerivedTable<string, { v: number }>)
    }
    layers.push(layer)
  }
  let t0 = nowMs()
  await store.refresh()
  console.log(`200 derived tables x 100 rows filled in ${((nowMs() - t0) / 1000).toFixed(1)} s`)
  await sql`UPDATE src SET v = v + 1000 WHERE id <= 10`.execute(db)
  const running = await server.startExplorer(db, store, { port: 0 })
  try {
    // Interleaved with the engine's own store.stale() (which the view calls once): the
    // explorer's share of the time is the difference.
    const api: number[] = []
    const staleOnly: number[] = []
    for (let i = 0; i < 9; i++) {
      t0 = nowMs()
      const res = await fetch(new URL('/api/tables', running.url))
      await res.json()
      api.push(nowMs() - t0)
      t0 = nowMs()
      await store.stale()
      staleOnly.push(nowMs() - t0)
    }
    console.log(`GET /api/tables (200 derived tables, 100 drawn): median ${median(api).toFixed(0)} ms; store.stale() alone, interleaved: median ${median(staleOnly).toFixed(0)} ms`)
    if (!existsSync(CHROMIUM)) {
      console.log(`first paint in Chromium: skipped (no ${CHROMIUM})`)
      return
    }
    const profile = mkdtempSync(join(tmpdir(), 'lq-bench-chromium-'))
    const ctx = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'] })
    try {
      const page = await ctx.newPage()
      const paint: number[] = []
      for (let i = 0; i < 8; i++) {
        t0 = nowMs()
        await page.goto(running.url)
        await page.waitForSelector('main[data-view="tables"][data-ready] [data-testid=node]', { timeout: 60_000 })
        if (i > 0) paint.push(nowMs() - t0) // the first load warms the browser's caches
      }
      const nodes = await page.locator('[data-testid=node]').count()
      console.log(`first paint in Chromium (goto to the drawn graph, ${nodes} nodes drawn of 201 tables): median ${median(paint).toFixed(0)} ms, max ${Math.max(...paint).toFixed(0)} ms   target < 1000 ms`)
    } finally {
      await ctx.close()
      rmSync(profile, { recursive: true, force: true })
    }
  } finally {
    await running.close()
    await db.destroy()
  }
}

async function neighbourhood(lib: Lib, server: Server): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'lq-bench-explore-'))
  const db = new Kysely<any>({ dialect: new SqliteDialect({ database: new Database(join(dir, 'bench.db')) }) })
  try {
    await sql`PRAGMA journal_mode = WAL`.execute(db)
    await sql`PRAGMA synchronous = NORMAL`.execute(db)
    const roots = ['a', 'b', 'c', 'd'].map((name) => lib.table(name, { id: t.Int, v: t.Int }))
    for (const r of roots) {
      await lib.createTable(db, r)
      await sql.raw(`WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < ${N}) INSERT INTO ${r.name} (id, v) SELECT i, i % 97 FROM s`).execute(db)
    }
    const store = await lib.openStore(db)
    for (const r of roots) await store.track(r)
    const [a, b, c, d] = roots as [typeof roots[0], typeof roots[0], typeof roots[0], typeof roots[0]]
    const joined = store.derive({
      name: 'joined',
      from: lib.Q.for(a, (x) => lib.Q.for(b, (y) => lib.Q.for(c, (z) => lib.Q.for(d, (w) => lib.Q.where(lib.Q.and(lib.Q.eq(x.id, y.id), lib.Q.eq(y.id, z.id), lib.Q.eq(z.id, w.id)), lib.Q.yield({ s: lib.Q.add(lib.Q.add(x.v, y.v), lib.Q.add(z.v, w.v)) })))))),
      output: { s: t.number },
      fn: (r) => ({ s: r.s }),
    })
    store.derive({ name: 'tagged', from: joined, output: { tag: t.string }, fn: (r) => ({ tag: r.s % 2 === 0 ? 'even' : 'odd' }) })
    let t0 = nowMs()
    await store.refresh()
    const edges = Number((await sql<{ n: number }>`SELECT count(*) AS n FROM lq_edge`.execute(db)).rows[0]!.n)
    console.log(`joined: ${N} rows, ${edges} lineage edges (lq_edge), filled in ${((nowMs() - t0) / 1000).toFixed(0)} s`)
    await sql`UPDATE a SET v = v + 1 WHERE id % 1000 = 0`.execute(db)
    const running = await server.startExplorer(db, store, { port: 0 })
    try {
      const times: number[] = []
      let seed = 7
      const rnd = (): number => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31)
      for (let i = 0; i < 55; i++) {
        const id = 1 + Math.floor(rnd() * N)
        const key = JSON.stringify(['a', 'b', 'c', 'd'].map((table) => ({ table, key: id })))
        t0 = nowMs()
        const res = await fetch(new URL(`/api/row?table=joined&key=${encodeURIComponent(key)}&depth=1`, running.url))
        const body = (await res.json()) as { lineage: unknown[]; affected: unknown[] }
        if (i >= 5) times.push(nowMs() - t0) // the first requests warm the statement caches
        if (body.lineage.length !== 4 || body.affected.length !== 1) throw new Error(`unexpected neighbourhood of joined ${key}: ${JSON.stringify(body).slice(0, 400)}`)
      }
      console.log(`GET /api/row (joined, depth 1: status, cause tree, value, lineage, affected) over ${edges} edges: median ${median(times).toFixed(1)} ms, p95 ${p95(times).toFixed(1)} ms   target < 50 ms`)
      // The rows page by keyset: 50 rows a page, walking the next pages from the first, of
      // joined (N rows) and of the fresh rows of tagged (a state filter).
      for (const [table, filter] of [['joined', ''], ['tagged', '&state=fresh']] as const) {
        const pages: number[] = []
        let next: string | null = null
        for (let i = 0; i < 25; i++) {
          t0 = nowMs()
          const res = await fetch(new URL(`/api/rows?table=${table}${filter}&limit=50${next === null ? '' : `&after=${encodeURIComponent(next)}`}`, running.url))
          const body = (await res.json()) as { rows: unknown[]; next: string | null }
          if (i >= 3) pages.push(nowMs() - t0)
          if (body.rows.length !== 50) throw new Error(`unexpected rows page of ${table}: ${JSON.stringify(body).slice(0, 400)}`)
          next = body.next
        }
        console.log(`GET /api/rows (${table}${filter}, ${N} rows, 50 a page, next pages by keyset): median ${median(pages).toFixed(1)} ms, p95 ${p95(pages).toFixed(1)} ms`)
      }
    } finally {
      await running.close()
    }
  } finally {
    await db.destroy()
    rmSync(dir, { recursive: true, force: true })
  }
}

const { lib, server } = await built()
console.log(`explorer benchmark (SQLite; machine shared and loaded: absolute times, read them as upper bounds)`)
if (PARTS.includes('paint')) await firstPaint(lib, server)
if (PARTS.includes('neighbourhood')) await neighbourhood(lib, server)
