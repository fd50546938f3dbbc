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
// LQ_BENCH_WORKERS_SPLIT=1: every page statement that claims its rows ('page + claim') is run twice on its
// connection, side by side (alternating which goes first): as is, without its claim part (no token, no
// claim rows inserted, the frontier not moved; the window, the probes and the frontier lock as they are), and
// as a pure read (the frontier not locked either: nothing written, no WAL flush at commit). The first
// result is the one returned. `split` in the output: statements, ms with the claim part, ms without.
const splitOn = process.env['LQ_BENCH_WORKERS_SPLIT'] === '1'
const split = { n: 0, withMs: 0, withoutMs: 0, readMs: 0 }
const TOK = "tok AS MATERIALIZED (SELECT nextval('lq_claim_seq') AS t WHERE "
pool.on('connect', (client) => {
  if (splitOn) {
    const orig = client.query.bind(client)
    client.query = (text, params, ...rest) => {
      if (!counting || typeof text !== 'string' || !text.startsWith('WITH oth AS') || !text.includes(TOK)) return orig(text, params, ...rest)
      // Without its claim part: no token (so no claim row inserted) and the frontier not moved (a
      // moved frontier would make the real statement, run second, skip this page's rows).
      const bare = text.replace(TOK, `${TOK}false AND `).replace(/WHERE name = (\$\d+) AND EXISTS \(SELECT 1 FROM win\)\)/, 'WHERE false AND name = $1 AND EXISTS (SELECT 1 FROM win))')
      // And a pure read: the same without the frontier's lock either (no write, so no WAL flush at commit).
      const read = bare.replace(/ FOR UPDATE\),\s*st AS MATERIALIZED/, '),\nst AS MATERIALIZED')
      if (!bare.includes('WHERE false AND name = $') || read === bare) throw new Error('LQ_BENCH_WORKERS_SPLIT: the page statement changed; update the split')
      const timed = async (t) => {
        const t0 = performance.now()
        const r = await orig(t, params)
        return { r, ms: performance.now() - t0 }
      }
      return (async () => {
        const first = split.n % 2 === 0
        const a = first ? await timed(text) : await timed(read)
        const m = await timed(bare)
        const b = first ? await timed(read) : await timed(text)
        const real = first ? a : b
        split.n++
        split.withMs += real.ms
        split.withoutMs += m.ms
        split.readMs += (first ? b : a).ms
        return real.r
      })()
    }
  }
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
    if (use.t0 !== undefined) trail.push([Math.round(performance.now() - use.t0 - e.queryDurationMillis), Math.round(e.queryDurationMillis), k.slice(0, 24)])
    const x = (kinds[k] ??= { n: 0, ms: 0 })
    x.n++
    x.ms += e.queryDurationMillis
  },
})
const src = table('src', { id: t.Int, v: t.Int })
const keys = []
const sleep = (ms) => new Promise((r) => setTimeout(r, ms))
// Calls of the sleep10 function in flight over time: `idle` integrates the free slots of the
// concurrency limit (slot-milliseconds), `empty` the milliseconds with no call in flight.
const use = { running: 0, since: 0, idle: 0, empty: 0, t0: undefined, gaps: [] }
// The statements of the refresh (start ms after it started, ms, kind), for the tail of each process.
const trail = []
const slots = (d) => {
  const now = performance.now()
  if (use.since > 0) {
    const dt = now - use.since
    use.idle += Math.max(0, Number(concText) - use.running) * dt
    if (use.running === 0) {
      use.empty += dt
      // Gaps of 5 ms or more: where (ms after the start) and how long.
      if (dt >= 5 && use.t0 !== undefined) use.gaps.push([Math.round(use.since - use.t0), Math.round(dt)])
    }
  }
  use.since = now
  use.running += d
  if (d < 0 && use.t0 !== undefined) use.lastCall = now - use.t0
}
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
            slots(1)
            try {
              await sleep(10)
            } finally {
              slots(-1)
            }
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
  const tp0 = performance.now()
  use.since = tp0
  use.t0 = tp0
  const report = await store.refresh({ concurrency: Number(concText), batchSize: Number(batchText) })
  const t1 = Date.now()
  slots(0)
  const slotUse = { idleShare: use.idle / (Number(concText) * (performance.now() - tp0)), emptyMs: use.empty, gaps: use.gaps, tail: trail.filter((x) => x[0] + x[1] >= (use.lastCall ?? 0) - 150) }
  const cpu = process.cpuUsage(cpu0)
  let serverNs = 0
  for (const [pid, start] of backends) {
    const end = schedNs(pid)
    if (start === undefined || end === undefined) serverNs = Number.NaN
    else serverNs += end - start
  }
  const serverCpuMs = Number.isFinite(serverNs) ? serverNs / 1e6 : null
  process.stdout.write(JSON.stringify({ keys, t0, t1, split: splitOn ? split : undefined, slotUse, cpuMs: (cpu.user + cpu.system) / 1000, serverCpuMs, statements, kinds, report }) + '\n')
} catch (e) {
  process.stdout.write(JSON.stringify({ error: String(e?.stack ?? e) }) + '\n')
  process.exitCode = 1
} finally {
  await db.destroy()
}
