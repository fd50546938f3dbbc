/**
 * Workers and watch mode (section 6 of the benchmarks; issue 11), on the built package (dist/,
 * run `npm run build` first):
 *
 * 1. Throughput with 1, 2 and 4 worker processes refreshing one PostgreSQL store at once
 *    (bench/workers-child.mjs; a first fill of `src`), with a function that awaits 10 ms
 *    (concurrency 16 per process) and with a trivial one: rows/s from the first start to the
 *    last end, rows computed more than once (calls minus distinct keys, over every process), and
 *    the time spent claiming, extending and releasing leases as a share of the refresh time, and
 *    the worker processes' CPU time per row (on a loaded machine, CPU is what N processes share:
 *    a rising CPU cost per row with N is coordination work), and the SQL statements (all of them,
 *    and the claim statements) of every process per batch of the table: counts, which the load
 *    does not change.
 * 2. `kill -9`: two processes, one killed 300 ms into the fill; the time from the kill to the
 *    survivor's end (its refresh waits for the dead worker's leases to expire, then computes
 *    its rows), against the lease length.
 * 3. Watch latency: a root write to its fresh derived row (trivial function, no debounce),
 *    p50/p95 over 60 writes, on SQLite (clock polling every 20 ms) and PostgreSQL (LISTEN).
 * 4. Debounce: a row written 10 times within `debounceMs` is computed once.
 *
 * Environment: LQ_PG_URL. Sizes: LQ_BENCH_WORKERS_ROWS (10 ms function, default 8000),
 * LQ_BENCH_WORKERS_TRIVIAL (default 40000). Parts: LQ_BENCH_WORKERS_PARTS (default
 * throughput,kill,watch,debounce), LQ_BENCH_WORKERS_FN (sleep10,trivial), LQ_BENCH_WORKERS_PROCS
 * (process counts after the one-process base, default 2,4). LQ_BENCH_WORKERS_KINDS=1 prints the
 * statements of every throughput run by kind (claim, fence, page, insert, ...: counts per batch
 * and milliseconds) and each process's start, end and rows computed. LQ_BENCH_WORKERS_SPLIT=1 runs
 * every page statement that claims its rows three times, side by side (alternating which runs first):
 * as is, without its claim part (no token, no claim rows, the frontier not moved) and as a pure
 * read (the frontier not locked either), and splits its time into "claim part" and "page read"
 * (and the page read's pure read; the extra runs are taken out of every time shown).
 *
 * A/B: `LQ_BENCH_WORKERS_AB=<path of another build's index.js>` (e.g. /work/base/dist/index.js)
 * runs the throughput part for that build ("A") and this one ("B") interleaved, A B then B A,
 * for LQ_BENCH_WORKERS_ROUNDS rounds (default 2), each configuration side by side, and prints
 * both lines of each. The worker processes also report the CPU time of the PostgreSQL backends
 * serving them (server CPU per row). The machine is shared: read ratios and counts, not times.
 *
 * Run: `npm run build && npx tsx bench/workers.ts` (or `npm run bench:workers`).
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import Database from 'better-sqlite3'
import * as t from 'io-ts'
import { Kysely, PostgresDialect, SqliteDialect, sql } from 'kysely'
import pg from 'pg'
import { runIfMain, median } from './harness.js'

const pgUrl = process.env['LQ_PG_URL'] ?? 'postgres://postgres@127.0.0.1:5432/test'
const childPath = fileURLToPath(new URL('./workers-child.mjs', import.meta.url))
// The built package, as users import it.
const dist = (await import(new URL('../dist/index.js', import.meta.url).href)) as typeof import('../src/index.js')

interface ChildOut {
  keys: unknown[]
  t0: number
  t1: number
  cpuMs: number
  serverCpuMs: number | null
  statements: number
  /** sleep10: the share of the concurrency limit's slot time with no call in it, and the milliseconds with no call at all. */
  slotUse?: { idleShare: number; emptyMs: number; gaps: [number, number][]; tail?: [number, number, string][] }
  /** LQ_BENCH_WORKERS_SPLIT=1: page statements that claim, run with and without their claim part (ms). */
  split?: { n: number; withMs: number; withoutMs: number; readMs: number }
  kinds: Record<string, { n: number; ms: number }>
  report: { leases?: { claims: number; claimMs: number; heartbeatMs: number; releaseMs: number }; durationMs: number; totals: { computed: number } }
  error?: string
}

async function freshSchema(rows: number): Promise<{ schema: string; admin: pg.Client; drop(): Promise<void> }> {
  const admin = new pg.Client({ connectionString: pgUrl })
  await admin.connect()
  const schema = `lq_bench_w_${Date.now().toString(36)}_${Math.random().toString(36).slice(2, 8)}`
  await admin.query(`CREATE SCHEMA ${schema}`)
  await admin.query(`SET search_path = ${schema}`)
  await admin.query(`CREATE TABLE src (id integer PRIMARY KEY, v integer NOT NULL)`)
  await admin.query(`INSERT INTO src SELECT i, i FROM generate_series(1, ${rows}) AS i`)
  return {
    schema,
    admin,
    async drop() {
      await admin.query(`DROP SCHEMA ${schema} CASCADE`)
      await admin.end()
    },
  }
}

/**
 * A worker process. `ready` rejects when the child exits (or fails to start) before printing
 * "ready"; `result` rejects when it exits without its JSON line, or printed an error: either
 * way with its exit status and stderr, so a dead child fails the bench instead of hanging it.
 */
function startChild(args: string[]): { proc: ChildProcess; ready: Promise<void>; result: Promise<ChildOut> } {
  const proc = spawn(process.execPath, [childPath, ...args], { stdio: ['pipe', 'pipe', 'pipe'] })
  let out = ''
  let err = ''
  let readyResolve!: () => void
  let readyReject!: (e: Error) => void
  const ready = new Promise<void>((res, rej) => {
    readyResolve = res
    readyReject = rej
  })
  const died = (why: string) => new Error(`worker process ${proc.pid ?? '(not started)'} ${why}\n--- its stdout:\n${out}--- its stderr:\n${err}`)
  const result = new Promise<ChildOut>((resolve, reject) => {
    proc.stdout!.on('data', (b: Buffer) => {
      out += b.toString()
      if (out.includes('ready\n')) readyResolve()
    })
    proc.stderr!.on('data', (b: Buffer) => {
      err += b.toString()
      // LQ_BENCH_WORKERS_STDERR=1: show the children's stderr as it comes (traces, warnings).
      if (process.env['LQ_BENCH_WORKERS_STDERR'] === '1') process.stderr.write(b)
    })
    proc.on('error', (e) => {
      const x = died(`failed to start: ${e.message}`)
      readyReject(x)
      reject(x)
    })
    proc.on('close', (code, signal) => {
      const x = died(`exited (code ${code}, signal ${signal})${out.includes('ready\n') ? '' : ' before it was ready'}`)
      readyReject(x)
      const line = out.split('\n').find((l) => l.startsWith('{'))
      if (line === undefined) return reject(x)
      const o = JSON.parse(line) as ChildOut
      if (o.error !== undefined) return reject(died(`failed: ${o.error}`))
      resolve(o)
    })
  })
  // A rejection nobody awaits yet (a child killed on purpose) is not an unhandled one.
  ready.catch(() => undefined)
  result.catch(() => undefined)
  return { proc, ready, result }
}

/** How long a worker process may take to open its store and say "ready". */
const READY_MS = 60_000

/** Start `procs` children, wait until every one is ready (or one died, or READY_MS passed: then kill them all and fail), and say go. */
async function startAll(procs: number, args: string[]): Promise<ReturnType<typeof startChild>[]> {
  const kids = Array.from({ length: procs }, () => startChild(args))
  let timer: NodeJS.Timeout | undefined
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`worker processes not ready after ${READY_MS} ms`)), READY_MS)
  })
  try {
    await Promise.race([Promise.all(kids.map((k) => k.ready)), late])
  } catch (e) {
    for (const k of kids) k.proc.kill('SIGKILL')
    throw e
  } finally {
    clearTimeout(timer)
  }
  for (const k of kids) k.proc.stdin!.write('go\n')
  return kids
}

interface Throughput {
  rate: number
  dups: number
  leaseShare: number
  computed: number
  cpuPerRow: number
  /** CPU of the PostgreSQL backends serving the workers, µs per row (NaN where unreadable). */
  serverCpuPerRow: number
  perBatch: number
  claimsPerBatch: number
  /** The share of the refresh time spent in page statements that claim their rows (PostgreSQL first fill; counted in the lease time). */
  pageClaimShare: number
  /** Statements of every process by kind: per batch of the table, and milliseconds in all. */
  kinds: Record<string, { perBatch: number; ms: number }>
  /** Each process: its start and end (ms after the first start) and the rows it computed. */
  timeline: { start: number; end: number; rows: number; idle?: number; empty?: number; gaps?: [number, number][] }[]
  /** LQ_BENCH_WORKERS_SPLIT=1: the page statements that claim, split into their claim part and their page read (shares of the refresh time). */
  claimPartShare?: number
  pageReadShare?: number
  /** The page statements run as a pure read (no frontier lock either). */
  pureReadShare?: number
}

/** `lib`: the index.js of the build the workers run (default this one's dist/). */
async function throughput(n: number, procs: number, fn: 'sleep10' | 'trivial', batch: number, lib?: string): Promise<Throughput> {
  const s = await freshSchema(n)
  try {
    const kids = await startAll(procs, [pgUrl, s.schema, fn, '16', String(batch), '30000', ...(lib === undefined ? [] : [lib])])
    const outs = await Promise.all(kids.map((k) => k.result))
    const calls = outs.reduce((a, o) => a + o.keys.length, 0)
    const distinct = new Set(outs.flatMap((o) => o.keys.map(String))).size
    const t0 = Math.min(...outs.map((o) => o.t0))
    const t1 = Math.max(...outs.map((o) => o.t1))
    // With the split, the extra run of each page statement (without its claim part) is taken out
    // of the lease and refresh times (both counted it).
    const extraMs = outs.reduce((a, o) => a + (o.split?.withoutMs ?? 0) + (o.split?.readMs ?? 0), 0)
    const pureReadMs = outs.reduce((a, o) => a + (o.split?.readMs ?? 0), 0)
    const lockedReadMs = outs.reduce((a, o) => a + (o.split?.withoutMs ?? 0), 0)
    const leaseMs = outs.reduce((a, o) => a + (o.report.leases ? o.report.leases.claimMs + o.report.leases.heartbeatMs + o.report.leases.releaseMs : 0), 0) - extraMs
    const busyMs = outs.reduce((a, o) => a + o.report.durationMs, 0) - extraMs
    const split = outs.some((o) => o.split !== undefined) ? { withMs: outs.reduce((a, o) => a + (o.split?.withMs ?? 0), 0), withoutMs: lockedReadMs, readMs: pureReadMs } : undefined
    const stored = Number((await s.admin.query(`SELECT count(*) AS n FROM a`)).rows[0].n)
    if (stored !== n) throw new Error(`${stored} rows stored, expected ${n}`)
    const cpuMs = outs.reduce((a, o) => a + o.cpuMs, 0)
    // Statements and claim statements of every process, per batch of the table (n / batch batches in all).
    const batches = n / batch
    const statements = outs.reduce((a, o) => a + (o.statements ?? 0), 0)
    const claims = outs.reduce((a, o) => a + (o.report.leases?.claims ?? 0), 0)
    const serverMs = outs.reduce((a, o) => a + (o.serverCpuMs ?? Number.NaN), 0)
    const kinds: Throughput['kinds'] = {}
    for (const o of outs) {
      for (const [k, v] of Object.entries(o.kinds ?? {})) {
        const x = (kinds[k] ??= { perBatch: 0, ms: 0 })
        x.perBatch += v.n / batches
        x.ms += v.ms
      }
    }
    if (split !== undefined && kinds['page + claim'] !== undefined) kinds['page + claim'].ms -= extraMs
    if (process.env['LQ_BENCH_WORKERS_TAIL'] === '1') for (const o of outs) console.log(`  tail of a process (${o.t1 - t0} ms): ${(o.slotUse?.tail ?? []).map(([a, b, k]) => `${a}+${b} ${k}`).join('; ')}`)
    const timeline = outs.map((o) => ({ start: o.t0 - t0, end: o.t1 - t0, rows: new Set(o.keys.map(String)).size, ...(o.slotUse === undefined ? {} : { idle: o.slotUse.idleShare, empty: o.slotUse.emptyMs, gaps: o.slotUse.gaps }) }))
    return { rate: n / ((t1 - t0) / 1000), dups: calls - distinct, leaseShare: leaseMs / busyMs, computed: distinct, cpuPerRow: (cpuMs * 1000) / n, serverCpuPerRow: (serverMs * 1000) / n, pageClaimShare: (kinds['page + claim']?.ms ?? 0) / busyMs, perBatch: statements / batches, claimsPerBatch: claims / batches, kinds, timeline, ...(split === undefined ? {} : { claimPartShare: (split.withMs - split.withoutMs) / busyMs, pageReadShare: split.withoutMs / busyMs, pureReadShare: split.readMs / busyMs }) }
  } finally {
    await s.drop()
  }
}

async function killConverge(n: number, leaseMs: number): Promise<{ afterKillMs: number; leaseMs: number; stored: number }> {
  const s = await freshSchema(n)
  try {
    const kids = await startAll(2, [pgUrl, s.schema, 'sleep10', '16', '100', String(leaseMs)])
    await new Promise((r) => setTimeout(r, 300))
    const killedAt = Date.now()
    kids[0]!.proc.kill('SIGKILL')
    const survivor = await kids[1]!.result
    const stored = Number((await s.admin.query(`SELECT count(*) AS n FROM a`)).rows[0].n)
    return { afterKillMs: survivor.t1 - killedAt, leaseMs, stored }
  } finally {
    await s.drop()
  }
}

const src = dist.table('src', { id: t.Int, v: t.Int })

/** Watch latency: write, then read the derived row until it has the new value. */
async function watchLatency(dialect: 'sqlite' | 'postgres', samples: number): Promise<{ p50: number; p95: number }> {
  let db: Kysely<any>
  let listen: (() => Promise<pg.PoolClient>) | undefined
  let drop = async () => {}
  if (dialect === 'sqlite') {
    const database = new Database(':memory:')
    database.exec('CREATE TABLE src (id integer PRIMARY KEY, v integer NOT NULL)')
    // better-sqlite3's SQLite has no generate_series: a recursive CTE.
    database.exec('INSERT INTO src WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1000) SELECT i, i FROM n')
    db = new Kysely<any>({ dialect: new SqliteDialect({ database }) })
  } else {
    const s = await freshSchema(1000)
    const pool = new pg.Pool({ connectionString: pgUrl, options: `-c search_path=${s.schema}`, max: 4 })
    db = new Kysely<any>({ dialect: new PostgresDialect({ pool }) })
    listen = () => pool.connect()
    drop = () => s.drop()
  }
  try {
    const store = await dist.openStore(db)
    await store.track(src)
    store.derive({ name: 'a', from: src, output: { y: t.Int }, version: 'lat', fn: (r) => ({ y: r.v * 2 }) })
    await store.refresh()
    const ac = new AbortController()
    const w = store.watch({ signal: ac.signal, pollMs: 20, ...(listen === undefined ? {} : { listen }) })
    await new Promise((r) => setTimeout(r, 200))
    const lat: number[] = []
    for (let i = 0; i < samples; i++) {
      const id = 1 + (i % 1000)
      const v = 100_000 + i
      const t0 = performance.now()
      await sql`UPDATE src SET v = ${v} WHERE id = ${id}`.execute(db)
      for (;;) {
        const r = await sql<{ y: unknown }>`SELECT y FROM a WHERE lq_key = ${String(id)}`.execute(db)
        if (Number(r.rows[0]?.y) === 2 * v) break
        await new Promise((res) => setTimeout(res, 1))
      }
      lat.push(performance.now() - t0)
      await new Promise((res) => setTimeout(res, 20))
    }
    ac.abort()
    await w.stopped
    lat.sort((a, b) => a - b)
    return { p50: median(lat), p95: lat[Math.floor(lat.length * 0.95)]! }
  } finally {
    await db.destroy()
    await drop()
  }
}

/** Debounce: 10 writes of one row within `d`; calls of its function. */
async function debounceCheck(d: number): Promise<{ calls: number; writes: number }> {
  const database = new Database(':memory:')
  database.exec('CREATE TABLE src (id integer PRIMARY KEY, v integer NOT NULL)')
  database.exec('INSERT INTO src VALUES (1, 1), (2, 2)')
  const db = new Kysely<any>({ dialect: new SqliteDialect({ database }) })
  let calls = 0
  const store = await dist.openStore(db)
  await store.track(src)
  store.derive({
    name: 'a',
    from: src,
    output: { y: t.Int },
    version: 'deb',
    fn: (r, ctx) => {
      if (ctx.key === 1) calls++
      return { y: r.v * 2 }
    },
  })
  await store.refresh()
  calls = 0
  const ac = new AbortController()
  const w = store.watch({ signal: ac.signal, debounceMs: d, pollMs: 10 })
  await new Promise((r) => setTimeout(r, 100))
  for (let i = 0; i < 10; i++) {
    await sql`UPDATE src SET v = v + 1 WHERE id = 1`.execute(db)
    await new Promise((r) => setTimeout(r, d / 20))
  }
  await new Promise((r) => setTimeout(r, d * 3))
  ac.abort()
  await w.stopped
  const y = Number((await sql<{ y: unknown }>`SELECT y FROM a WHERE lq_key = '1'`.execute(db)).rows[0]!.y)
  await db.destroy()
  if (y !== 22) throw new Error(`debounce: row 1 has y = ${y}, expected 22`)
  return { calls, writes: 10 }
}

export async function main(): Promise<void> {
  const nSlow = Number(process.env['LQ_BENCH_WORKERS_ROWS'] ?? 8000)
  const nFast = Number(process.env['LQ_BENCH_WORKERS_TRIVIAL'] ?? 40000)
  // Parts to run (default all): throughput,kill,watch,debounce; LQ_BENCH_WORKERS_FN: sleep10,trivial.
  const parts = new Set((process.env['LQ_BENCH_WORKERS_PARTS'] ?? 'throughput,kill,watch,debounce').split(','))
  const fns = new Set((process.env['LQ_BENCH_WORKERS_FN'] ?? 'sleep10,trivial').split(','))
  console.log(`# Workers and watch mode (load average ${(await import('node:os')).loadavg().map((x) => x.toFixed(1)).join(' ')})`)
  if (parts.has('throughput')) {
    const procList = (process.env['LQ_BENCH_WORKERS_PROCS'] ?? '2,4').split(',').map(Number)
    const other = process.env['LQ_BENCH_WORKERS_AB']
    const showKinds = process.env['LQ_BENCH_WORKERS_KINDS'] === '1'
    const line = (label: string, fn: string, n: number, p: number, r: Throughput, base: Throughput | undefined): string => {
      const head = `${label}${fn}, ${n} rows: ${p} process${p === 1 ? '' : 'es'} ${r.rate.toFixed(0)} rows/s`
      const ratio = base === undefined ? '' : ` = ${(r.rate / base.rate).toFixed(2)}x one (target >= ${(0.8 * p).toFixed(1)}x for sleep10)`
      const rest = `, duplicates ${r.dups}, lease time ${(r.leaseShare * 100).toFixed(1)}% of refresh time${base === undefined ? '' : ' (target < 5%)'} (${(r.pageClaimShare * 100).toFixed(1)}% in page statements that claim, ${((r.leaseShare - r.pageClaimShare) * 100).toFixed(1)}% in other lease statements), worker CPU ${r.cpuPerRow.toFixed(0)} µs/row, server CPU ${r.serverCpuPerRow.toFixed(0)} µs/row, ${r.perBatch.toFixed(1)} statements and ${r.claimsPerBatch.toFixed(2)} claim statements per batch${p === 1 ? '' : ' (all processes)'}`
      const splitText =
        r.claimPartShare === undefined
          ? ''
          : `; split of the page statements that claim: claim part ${(r.claimPartShare * 100).toFixed(1)}%, page read ${(r.pageReadShare! * 100).toFixed(1)}% of refresh time (with the frontier's lock; as a pure read ${(r.pureReadShare! * 100).toFixed(1)}%), so lease time counting only the claim part ${((r.leaseShare - r.pageClaimShare + r.claimPartShare) * 100).toFixed(1)}%, or counting all but the pure read ${((r.leaseShare - r.pageClaimShare + r.pageClaimShare - r.pureReadShare!) * 100).toFixed(1)}%`
      const timeline = showKinds ? `; processes (start-end ms, rows[, free slot time, ms with no call]): ${r.timeline.map((x) => `${x.start}-${x.end} ${x.rows}${x.idle === undefined ? '' : ` ${(x.idle * 100).toFixed(0)}% ${x.empty!.toFixed(0)}`}`).join(', ')}${process.env['LQ_BENCH_WORKERS_GAPS'] === '1' ? `; gaps with no call (at ms: length): ${r.timeline.map((x) => (x.gaps ?? []).map(([a, b]) => `${a}:${b}`).join(' ')).join(' | ')}` : ''}` : ''
      const kinds = showKinds
        ? '\n' + Object.entries(r.kinds).sort((a, b) => b[1].perBatch - a[1].perBatch).map(([k, v]) => `    ${v.perBatch.toFixed(2)}/batch ${v.ms.toFixed(0)} ms  ${k}`).join('\n')
        : ''
      return head + ratio + rest + splitText + timeline + kinds
    }
    for (const [fn, n, batch] of [['sleep10', nSlow, 200], ['trivial', nFast, 2000]] as const) {
      if (!fns.has(fn)) continue
      if (other === undefined) {
        const base = await throughput(n, 1, fn, batch)
        console.log(line('', fn, n, 1, base, undefined))
        for (const p of procList) console.log(line('', fn, n, p, await throughput(n, p, fn, batch), base))
        continue
      }
      // A/B: per round, every process count for A and B side by side (A B, then B A next round).
      const rounds = Number(process.env['LQ_BENCH_WORKERS_ROUNDS'] ?? 2)
      for (let round = 0; round < rounds; round++) {
        const order: ['A' | 'B', string | undefined][] = round % 2 === 0 ? [['A', other], ['B', undefined]] : [['B', undefined], ['A', other]]
        const bases: Partial<Record<'A' | 'B', Throughput>> = {}
        for (const [label, lib] of order) {
          bases[label] = await throughput(n, 1, fn, batch, lib)
          console.log(line(`[round ${round + 1} ${label}] `, fn, n, 1, bases[label]!, undefined))
        }
        for (const p of procList) {
          for (const [label, lib] of order) console.log(line(`[round ${round + 1} ${label}] `, fn, n, p, await throughput(n, p, fn, batch, lib), bases[label]))
        }
      }
    }
  }
  if (parts.has('kill')) {
    const k = await killConverge(2000, 2000)
    console.log(`kill -9 of one of two workers: the survivor finished ${k.afterKillMs} ms after the kill (lease ${k.leaseMs} ms; target <= 2x lease = ${2 * k.leaseMs} ms), ${k.stored} rows stored`)
  }
  if (parts.has('watch')) {
    for (const d of ['sqlite', 'postgres'] as const) {
      const l = await watchLatency(d, 60)
      console.log(`watch latency ${d}: p50 ${l.p50.toFixed(1)} ms, p95 ${l.p95.toFixed(1)} ms (target p95 <= 250 ms on PostgreSQL)`)
    }
  }
  if (parts.has('debounce')) {
    const deb = await debounceCheck(400)
    console.log(`debounce 400 ms: ${deb.writes} writes within it, ${deb.calls} call(s) of the row's function (target 1)`)
  }
}

runIfMain(import.meta.url, main)
