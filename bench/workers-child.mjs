// A worker process of bench/workers.ts, on a built package (dist/): opens the store of a
// PostgreSQL schema, declares `a` over `src` and, once it reads `go` on stdin, refreshes.
// Prints one JSON line: { keys (computed here), t0, t1 (epoch ms), cpuMs (this process's CPU time during the refresh),
// serverCpuMs (CPU time of the PostgreSQL backends serving this process's connections during the refresh, read from
// /proc/<pid>/schedstat; null where unreadable), statements (SQL statements this process ran during the refresh,
// transaction control included), kinds (statements by kind: count and milliseconds), report }.
// Usage: node workers-child.mjs <url> <schema> <fn: sleep10|trivial> <concurrency> <batchSize> <leaseMs> [<library: path of a build's index.js>]
import { readFileSync } from 'node:fs'
import { pathToFileURL } from 'node:url'
import * as t from 'io-ts'
import { Kysely, PostgresDialect } from 'kysely'
import pg from 'pg'

const [url, schema, fnKind, concText, batchText, leaseText, libPath] = process.argv.slice(2)
const { openStore, table } = await import(libPath ? pathToFileURL(libPath).href : new URL('../dist/index.js', import.meta.url).href)
const pool = new pg.Pool({ connectionString: url, options: `-c search_path=${schema}`, max: 4 })

/** CPU nanoseconds of a process (first field of its schedstat), or undefined. */
const schedNs = (pid) => {
  try {
    return Number(readFileSync(`/proc/${pid}/schedstat`, 'utf8').split(' ')[0])
  } catch {
    return undefined
  }
}
// Backend pid of every connection, and its CPU time when first counted (at connect, or at `go`).
const backends = new Map()
let counting = false
pool.on('connect', (client) => {
  client.query('SELECT pg_backend_pid() AS pid').then(
    (r) => {
      const pid = r.rows[0].pid
      backends.set(pid, counting ? schedNs(pid) : undefined)
    },
    () => undefined,
  )
})

/** What a statement does, by its text (the bench prints counts and times per kind). */
const kindOf = (text) => {
  const s = text.replace(/\s+/g, ' ').trim()
  if (/^(begin|commit|rollback|savepoint|release)/i.test(s)) return 'transaction'
  if (s.startsWith('WITH oth AS')) return 'page + claim'
  if (s.includes('lq_claim_seq')) return 'claim'
  if (s.startsWith('WITH mine AS')) return 'fence'
  if (s.startsWith('WITH lk AS') && s.includes('SET expires')) return 'heartbeat'
  if (s.startsWith('WITH lk AS') && s.includes('DELETE FROM lq_claim')) return 'release'
  if (s.includes('WITH win AS MATERIALIZED')) return 'page (skipping)'
  if (s.includes('__rev')) return 'page'
  if (s.includes('FROM lq_claim')) return 'claim look-up'
  const m = /^(INSERT INTO|UPDATE|DELETE FROM) "?([\w$]+)/i.exec(s)
  if (m) return `${m[1].toLowerCase()} ${m[2]}`
  return s.slice(0, 60)
}
let statements = 0
const kinds = {}
// Every statement Kysely runs (BEGIN and COMMIT included) calls `log` once.
const db = new Kysely({
  dialect: new PostgresDialect({ pool }),
  log: (e) => {
    statements++
    const k = kindOf(e.query.sql)
    const x = (kinds[k] ??= { n: 0, ms: 0 })
    x.n++
    x.ms += e.queryDurationMillis
  },
})
const src = table('src', { id: t.Int, v: t.Int })
const keys = []
const sleep = (ms) => new Promise((r) => setTimeout(r, ms))
try {
  const store = await openStore(db, { leaseMs: Number(leaseText) })
  await store.track(src)
  store.derive({
    name: 'a',
    from: src,
    output: { y: t.Int },
    version: `bench-${fnKind}`,
    fn:
      fnKind === 'sleep10'
        ? async (r, ctx) => {
            keys.push(ctx.key)
            await sleep(10)
            return { y: r.v * 2 }
          }
        : (r, ctx) => {
            keys.push(ctx.key)
            return { y: r.v * 2 }
          },
  })
  await store.stale('a')
  process.stdout.write('ready\n')
  await new Promise((resolve) => process.stdin.once('data', resolve))
  // An open stdin would keep this process alive after its work.
  process.stdin.destroy()
  const t0 = Date.now()
  const cpu0 = process.cpuUsage()
  for (const pid of backends.keys()) backends.set(pid, schedNs(pid))
  counting = true
  statements = 0
  for (const k of Object.keys(kinds)) delete kinds[k]
  const report = await store.refresh({ concurrency: Number(concText), batchSize: Number(batchText) })
  const t1 = Date.now()
  const cpu = process.cpuUsage(cpu0)
  let serverNs = 0
  for (const [pid, start] of backends) {
    const end = schedNs(pid)
    if (start === undefined || end === undefined) serverNs = Number.NaN
    else serverNs += end - start
  }
  const serverCpuMs = Number.isFinite(serverNs) ? serverNs / 1e6 : null
  process.stdout.write(JSON.stringify({ keys, t0, t1, cpuMs: (cpu.user + cpu.system) / 1000, serverCpuMs, statements, kinds, report }) + '\n')
} catch (e) {
  process.stdout.write(JSON.stringify({ error: String(e?.stack ?? e) }) + '\n')
  process.exitCode = 1
} finally {
  await db.destroy()
}
