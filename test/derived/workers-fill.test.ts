/**
 * A first fill by many workers, under kills (a copy of workers.test.ts's harness, varied): a
 * table of N_FILL rows filled at once by worker processes with a concurrency limit of 1 or 16
 * and batches of 20 or 400 (the read-ahead by queue, the fence over every key of a lease, the
 * end-of-fill span wait), killed with SIGKILL mid-fill while a raw client writes. Then, as in
 * workers.test.ts: quiescence within a bound (no wait that never ends), every row right,
 * nothing orphaned, no input computed twice at once.
 *
 * Many workers, one store: real OS processes watching one store (a SQLite file in WAL mode, a
 * PostgreSQL schema) while this process writes the root table as a raw client and kills random
 * workers with SIGKILL mid-batch (starting new ones). After the writes stop, the workers reach
 * quiescence; then every derived row equals its function of the current inputs, no derived row
 * is orphaned, and no input revision was computed twice at once (the calls log of every
 * process, with the kill time as the end of a killed call). Bounded to seconds for CI.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import Database from 'better-sqlite3'
import { Kysely, SqliteDialect, sql } from 'kysely'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { createTable, insertRows } from '../../src/query/ddl.js'
import { openStore } from '../../src/derived/index.js'
import { open, pgUrl, type DialectName } from '../support/db.js'
import { claimDialects } from '../../src/derived/sql/claims.js'
import { declareWorkers, src } from './fixtures/worker-schema.js'

const here = dirname(fileURLToPath(import.meta.url))
const root = join(here, '..', '..')
const N = 3000
const LEASE_MS = 1500
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

interface Target {
  readonly db: Kysely<any>
  readonly args: readonly string[]
  close(): Promise<void>
}

async function target(dialect: DialectName, dir: string): Promise<Target> {
  if (dialect === 'sqlite') {
    const file = join(dir, 'store.db')
    const database = new Database(file, { timeout: 5000 })
    database.pragma('journal_mode = WAL')
    const db = new Kysely<any>({ dialect: new SqliteDialect({ database }) })
    return { db, args: [file], close: () => db.destroy() }
  }
  const tdb = await open('postgres')
  const schema = (await sql<{ s: string }>`SELECT current_schema() AS s`.execute(tdb.db)).rows[0]!.s
  return { db: tdb.db, args: [pgUrl, schema], close: () => tdb.close() }
}

interface Worker {
  readonly proc: ChildProcess
  readonly ready: Promise<void>
  readonly exited: Promise<number | null>
  out: string
  isReady: boolean
}

function startWorker(dialect: DialectName, t: Target, log: string, opts: { concurrency: number; batch: number }, script = 'worker-child.ts'): Worker {
  const proc = spawn(process.execPath, ['--import', 'tsx', join(here, 'fixtures', script), dialect, ...t.args, log, String(LEASE_MS)], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, LQ_WORKER_DEBUG: '1', LQ_WORKER_CONCURRENCY: String(opts.concurrency), LQ_WORKER_BATCH: String(opts.batch), LQ_WORKER_DELAY_MS: '2' } })
  const w: Worker = {
    proc,
    out: '',
    isReady: false,
    ready: new Promise<void>((resolve, reject) => {
      proc.stdout!.on('data', (b: Buffer) => {
        w.out += b.toString()
        if (w.out.includes('ready')) {
          w.isReady = true
          resolve()
        }
        if (w.out.includes('error')) reject(new Error(w.out))
      })
      proc.on('close', () => reject(new Error(`worker exited before it was ready: ${w.out}`)))
    }),
    exited: new Promise((resolve) => proc.on('close', (code) => resolve(code))),
  }
  w.ready.catch(() => undefined)
  proc.stderr!.on('data', (b: Buffer) => (w.out += b.toString()))
  return w
}

/** Calls of one input revision (key, v) that ran at the same time, by the log: [start, end] per call, a killed call ending at its kill. */
function overlappingCalls(log: string, killedAt: ReadonlyMap<number, number>): string[] {
  const open = new Map<string, number>()
  const calls = new Map<string, { start: number; end: number; pid: number }[]>()
  for (const line of readFileSync(log, 'utf8').split('\n')) {
    const [kind, key, v, pidText, ms] = line.split(' ')
    if (kind === undefined || kind === '') continue
    const id = `${key} ${v}`
    const pid = Number(pidText)
    if (kind === 'S') open.set(`${id} ${pid} ${open.size}`, Number(ms))
    else {
      const k = [...open.keys()].find((o) => o.startsWith(`${id} ${pid} `))
      if (k === undefined) continue
      const list = calls.get(id) ?? []
      list.push({ start: open.get(k)!, end: Number(ms), pid })
      calls.set(id, list)
      open.delete(k)
    }
  }
  for (const [k, start] of open) {
    const [key, v, pidText] = k.split(' ')
    const pid = Number(pidText)
    const id = `${key} ${v}`
    const list = calls.get(id) ?? []
    list.push({ start, end: killedAt.get(pid) ?? Infinity, pid })
    calls.set(id, list)
  }
  const bad: string[] = []
  for (const [id, list] of calls) {
    list.sort((a, b) => a.start - b.start)
    for (let i = 1; i < list.length; i++) if (list[i]!.start < list[i - 1]!.end) bad.push(`${id}: pid ${list[i - 1]!.pid} [${list[i - 1]!.start}, ${list[i - 1]!.end}] and pid ${list[i]!.pid} [${list[i]!.start}, ${list[i]!.end}]`)
  }
  return bad
}

for (const dialect of ['sqlite', 'postgres'] as const) {
  for (const opts of [{ concurrency: 1, batch: 20 }, { concurrency: 16, batch: 400 }]) {

  describe(`a first fill by many workers under kills, concurrency ${opts.concurrency}, batches of ${opts.batch} [${dialect}]`, () => {
    let dir: string
    let t: Target
    const workers: Worker[] = []
    beforeEach(async () => {
      dir = mkdtempSync(join(tmpdir(), 'lq-workers-'))
      t = await target(dialect, dir)
      await createTable(t.db, src)
      await insertRows(t.db, src, Array.from({ length: N }, (_, i) => ({ id: i + 1, v: 1 })))
    }, 120_000)
    afterEach(async () => {
      for (const w of workers.splice(0)) if (w.proc.exitCode === null && w.proc.signalCode === null) w.proc.kill('SIGKILL')
      await t.close()
      rmSync(dir, { recursive: true, force: true })
    })

    it('workers killed with SIGKILL mid-fill while a raw client writes: quiescence within a bound, every row right, nothing orphaned, no input computed twice at once', async () => {
      const log = join(dir, 'calls.log')
      writeFileSync(log, '')
      const store = await openStore(t.db, { leaseMs: LEASE_MS })
      await declareWorkers(store)
      await store.stale() // creates the derived tables before the workers start
      for (let i = 0; i < 3; i++) workers.push(startWorker(dialect, t, log, opts))
      await Promise.all(workers.map((w) => w.ready))
      const killed = new Map<number, number>()
      // Writes: updates (v only grows), inserts and deletes, as a raw client; a kill every ~700 ms.
      let next = N + 1
      const end = Date.now() + 3500
      let lastKill = Date.now()
      let writes = 0
      while (Date.now() < end) {
        const id = 1 + Math.floor(Math.random() * (next - 1))
        const r = Math.random()
        if (r < 0.7) await sql`UPDATE src SET v = v + 1 WHERE id = ${id}`.execute(t.db)
        else if (r < 0.85) await sql`INSERT INTO src (id, v) VALUES (${next++}, 1)`.execute(t.db)
        else await sql`DELETE FROM src WHERE id = ${id}`.execute(t.db)
        writes++
        if (Date.now() - lastKill > 400) {
          lastKill = Date.now()
          // A worker that is watching (a process still starting has nothing to lose), and never
          // the last one: the others must be able to take its rows over.
          const live = workers.filter((w) => w.isReady && w.proc.exitCode === null && w.proc.signalCode === null)
          const victim = live.length < 2 ? undefined : live[Math.floor(Math.random() * live.length)]
          if (victim !== undefined) {
            victim.proc.kill('SIGKILL')
            killed.set(victim.proc.pid!, Date.now())
            workers.push(startWorker(dialect, t, log, opts))
          }
        }
        await sleep(5)
      }
      // Quiescence: every derived row is its function of the current inputs, nothing else is
      // stored, and no claim is left (a killed worker's expire after LEASE_MS). Read from the
      // tables: this process's own store would see the workers' rows as another build's code
      // (vitest and tsx compile the function's text differently).
      const check = async (): Promise<string | undefined> => {
        const roots = (await sql<{ id: unknown; v: unknown }>`SELECT id, v FROM src ORDER BY id`.execute(t.db)).rows.map((r) => [String(r.id), Number(r.v)] as const)
        const as = new Map((await sql<{ lq_key: string; y: unknown }>`SELECT lq_key, y FROM a`.execute(t.db)).rows.map((r) => [r.lq_key, Number(r.y)]))
        const bs = new Map((await sql<{ lq_key: string; z: unknown }>`SELECT lq_key, z FROM b`.execute(t.db)).rows.map((r) => [r.lq_key, Number(r.z)]))
        // Live claims only: a killed worker's expired claim rows stay until their keys are claimed again.
        const claims = (await claimDialects[dialect].held(t.db)).length
        const wrong = roots.filter(([k, v]) => as.get(k) !== 2 * v || bs.get(k) !== 2 * v + 1).length
        const orphans = [...as.keys(), ...bs.keys()].filter((k) => !roots.some(([r]) => r === k)).length
        return wrong === 0 && orphans === 0 && claims === 0 ? undefined : `${wrong} rows not yet right, ${orphans} orphaned derived rows, ${claims} claims`
      }
      const deadline = Date.now() + 90_000
      for (let why = await check(); why !== undefined; why = await check()) {
        if (Date.now() > deadline) throw new Error(`no quiescence: ${why}; workers: ${JSON.stringify(workers.map((w) => w.out.slice(-400)))}`)
        await sleep(200)
      }
      // Stop the workers: those watching finish their batch and exit 0 (one still starting dies of the signal).
      const watching = workers.filter((w) => w.isReady && !killed.has(w.proc.pid!))
      for (const w of workers) if (w.proc.exitCode === null && w.proc.signalCode === null) w.proc.kill('SIGTERM')
      const codes = await Promise.all(watching.map((w) => w.exited))
      expect(codes).toEqual(watching.map(() => 0))
      expect(writes).toBeGreaterThan(10)
      expect(killed.size).toBeGreaterThan(0)
      expect(await check()).toBeUndefined()
      // The store's own metadata agrees: every row fresh for the workers' code.
      const meta = await sql<{ n: unknown }>`SELECT count(*) AS n FROM lq_meta_a WHERE lq_state NOT IN ('ok', 'deleted')`.execute(t.db)
      expect(Number(meta.rows[0]!.n)).toBe(0)
      // No input revision computed twice at once, across processes.
      expect(overlappingCalls(log, killed)).toEqual([])
    }, 400_000)
  })
}
}

// refresh() (not watch) waits for the rows other workers hold, and for the span a first fill
// jumped over (PostgreSQL): processes that each run one refresh at once, one killed mid-fill.
for (const dialect of ['sqlite', 'postgres'] as const) {
  describe(`a first fill by refresh() in many processes, one killed mid-fill [${dialect}]`, () => {
    let dir: string
    let t: Target
    const workers: Worker[] = []
    beforeEach(async () => {
      dir = mkdtempSync(join(tmpdir(), 'lq-workers-'))
      t = await target(dialect, dir)
      await createTable(t.db, src)
      await insertRows(t.db, src, Array.from({ length: N }, (_, i) => ({ id: i + 1, v: 1 })))
    }, 120_000)
    afterEach(async () => {
      for (const w of workers.splice(0)) if (w.proc.exitCode === null && w.proc.signalCode === null) w.proc.kill('SIGKILL')
      await t.close()
      rmSync(dir, { recursive: true, force: true })
    })

    it('the other refresh() calls end (no wait that never ends) with every row right, no claim left, no input computed twice at once', async () => {
      const log = join(dir, 'calls.log')
      writeFileSync(log, '')
      const store = await openStore(t.db, { leaseMs: LEASE_MS })
      await declareWorkers(store)
      await store.stale()
      for (let i = 0; i < 4; i++) workers.push(startWorker(dialect, t, log, { concurrency: 4, batch: 100 }, 'refresh-child.ts'))
      await Promise.all(workers.map((w) => w.ready))
      // Kill one once calls have started (mid-fill).
      for (const t0 = Date.now(); readFileSync(log, 'utf8').split('\n').length < 400 && Date.now() - t0 < 30_000; ) await sleep(20)
      const victim = workers[1]!
      victim.proc.kill('SIGKILL')
      const killed = new Map([[victim.proc.pid!, Date.now()]])
      const others = workers.filter((w) => w !== victim)
      const codes = await Promise.race([Promise.all(others.map((w) => w.exited)), sleep(90_000).then(() => 'timeout' as const)])
      expect(codes, JSON.stringify(others.map((w) => w.out.slice(-400)))).toEqual(others.map(() => 0))
      const roots = (await sql<{ id: unknown; v: unknown }>`SELECT id, v FROM src ORDER BY id`.execute(t.db)).rows.map((r) => [String(r.id), Number(r.v)] as const)
      const as = new Map((await sql<{ lq_key: string; y: unknown }>`SELECT lq_key, y FROM a`.execute(t.db)).rows.map((r) => [r.lq_key, Number(r.y)]))
      const bs = new Map((await sql<{ lq_key: string; z: unknown }>`SELECT lq_key, z FROM b`.execute(t.db)).rows.map((r) => [r.lq_key, Number(r.z)]))
      expect(roots.filter(([k, v]) => as.get(k) !== 2 * v || bs.get(k) !== 2 * v + 1).length).toBe(0)
      expect((await claimDialects[dialect].held(t.db)).filter((c) => c.owner.includes(`:${victim.proc.pid}:`) === false).length).toBe(0)
      expect(overlappingCalls(log, killed)).toEqual([])
    }, 200_000)
  })
}
