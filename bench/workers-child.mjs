// A worker process of bench/workers.ts, on the built package (dist/): opens the store of a
// PostgreSQL schema, declares `a` over `src` and, once it reads `go` on stdin, refreshes.
// Prints one JSON line: { keys (computed here), t0, t1 (epoch ms), cpuMs (this process's CPU time during the refresh),
// statements (SQL statements this process ran during the refresh, transaction control included), report }.
// Usage: node workers-child.mjs <url> <schema> <fn: sleep10|trivial> <concurrency> <batchSize> <leaseMs>
import * as t from 'io-ts'
import { Kysely, PostgresDialect } from 'kysely'
import pg from 'pg'
import { openStore, table } from '../dist/index.js'

const [url, schema, fnKind, concText, batchText, leaseText] = process.argv.slice(2)
const pool = new pg.Pool({ connectionString: url, options: `-c search_path=${schema}`, max: 4 })
let statements = 0
// Every statement Kysely runs (BEGIN and COMMIT included) calls `log` once.
const db = new Kysely({ dialect: new PostgresDialect({ pool }), log: () => void statements++ })
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
  statements = 0
  const report = await store.refresh({ concurrency: Number(concText), batchSize: Number(batchText) })
  const t1 = Date.now()
  const cpu = process.cpuUsage(cpu0)
  process.stdout.write(JSON.stringify({ keys, t0, t1, cpuMs: (cpu.user + cpu.system) / 1000, statements, report }) + '\n')
} catch (e) {
  process.stdout.write(JSON.stringify({ error: String(e?.stack ?? e) }) + '\n')
  process.exitCode = 1
} finally {
  await db.destroy()
}
