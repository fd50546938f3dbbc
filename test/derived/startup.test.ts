/**
 * Program start (`openStore` + `track` at every start) against real OS processes and a real
 * server, on SQLite (a WAL file) and PostgreSQL: concurrent starts all succeed; a start on a
 * tracked table never waits for a root writer; root writers go on during a first backfill.
 */
import Database from 'better-sqlite3'
import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import pg from 'pg'
import { describe, expect, it } from 'vitest'
import { dialectNames, pgServerReachable, pgUrl, serverRequired, type DialectName } from '../support/db.js'

const child = fileURLToPath(new URL('./support/start-child.ts', import.meta.url))

interface ChildResult {
  ok: boolean
  ms?: number
  error?: string
  code?: string | null
  /** Killed after the time limit. */
  timedOut?: boolean
}

/** Run one program start in a new node process; killed after `limitMs`. */
export function startProcess(dialect: DialectName, target: string, action: 'start' | 'refresh' = 'start', limitMs = 60_000): Promise<ChildResult> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, ['--import', 'tsx', child, dialect, target, action], { stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    let err = ''
    p.stdout.on('data', (b) => (out += String(b)))
    p.stderr.on('data', (b) => (err += String(b)))
    const timer = setTimeout(() => p.kill('SIGKILL'), limitMs)
    p.on('exit', (code, signal) => {
      clearTimeout(timer)
      if (signal === 'SIGKILL') return resolve({ ok: false, timedOut: true, error: `killed after ${limitMs} ms` })
      const line = out.trim().split('\n').pop() ?? ''
      try {
        resolve(JSON.parse(line) as ChildResult)
      } catch {
        resolve({ ok: false, error: `exit ${code}: ${out} ${err}` })
      }
    })
  })
}

/** A database the child processes can reach, with the root `src(id, text)` holding rows 1..n. */
interface Shared {
  readonly target: string
  /** Run one statement on a connection of the test process (autocommit). */
  exec(text: string): Promise<void>
  query<R>(text: string): Promise<R[]>
  /** A second connection of its own. */
  other(): Promise<{ exec(text: string): Promise<void>; close(): Promise<void> }>
  close(): Promise<void>
}

async function shared(dialect: DialectName, n: number): Promise<Shared> {
  if (dialect === 'sqlite') {
    const dir = mkdtempSync(join(tmpdir(), 'lq-start-'))
    const file = join(dir, 'db.sqlite')
    const d = new Database(file)
    d.pragma('journal_mode = WAL')
    d.exec('CREATE TABLE src (id integer PRIMARY KEY, text text NOT NULL)')
    const ins = d.prepare('INSERT INTO src (id, text) VALUES (?, ?)')
    d.transaction(() => {
      for (let i = 1; i <= n; i++) ins.run(i, `t${i}`)
    })()
    return {
      target: file,
      exec: async (text) => void d.prepare(text).run(),
      query: async <R>(text: string) => d.prepare(text).all() as R[],
      async other() {
        const o = new Database(file)
        return { exec: async (text: string) => void o.exec(text), close: async () => void o.close() }
      },
      async close() {
        d.close()
        rmSync(dir, { recursive: true, force: true })
      },
    }
  }
  const schema = `lq_test_${Date.now().toString(36)}_${Math.random().toString(36).slice(2, 10)}`
  const c = new pg.Client({ connectionString: pgUrl })
  await c.connect()
  await c.query(`CREATE SCHEMA "${schema}"`)
  await c.query(`SET search_path = "${schema}"`)
  await c.query('CREATE TABLE src (id integer PRIMARY KEY, text text NOT NULL)')
  await c.query(`INSERT INTO src (id, text) SELECT i, 't' || i FROM generate_series(1, ${n}) AS i`)
  const others: pg.Client[] = []
  return {
    target: schema,
    exec: async (text) => void (await c.query(text)),
    query: async <R>(text: string) => (await c.query(text)).rows as R[],
    async other() {
      const o = new pg.Client({ connectionString: pgUrl, options: `-c search_path=${schema}` })
      await o.connect()
      others.push(o)
      return { exec: async (text: string) => void (await o.query(text)), close: async () => void (await o.end().catch(() => undefined)) }
    },
    async close() {
      for (const o of others) await o.end().catch(() => undefined)
      await c.query(`DROP SCHEMA "${schema}" CASCADE`)
      await c.end()
    },
  }
}

const num = (v: unknown) => Number(v)

for (const dialect of dialectNames) {
  describe.skipIf(dialect === 'postgres' && !serverRequired() && !(await pgServerReachable()))(`program start across processes [${dialect}]`, () => {
    it('several processes starting at once on an untracked table all succeed, and every row gets a revision', { timeout: 180_000 }, async () => {
      const db = await shared(dialect, 20_000)
      try {
        const results = await Promise.all([1, 2, 3, 4].map(() => startProcess(dialect, db.target)))
        for (const r of results) expect(r, JSON.stringify(r)).toMatchObject({ ok: true })
        const [counts] = await db.query<{ v: unknown; live: unknown }>(`SELECT count(*) AS v, sum(CASE WHEN deleted = 0 THEN 1 ELSE 0 END) AS live FROM lq_rev_src`)
        expect(num(counts!.v)).toBe(20_000)
        expect(num(counts!.live)).toBe(20_000)
        expect(await startProcess(dialect, db.target, 'refresh')).toMatchObject({ ok: true })
        const [out] = await db.query<{ n: unknown }>(`SELECT count(*) AS n FROM out`)
        expect(num(out!.n)).toBe(20_000)
      } finally {
        await db.close()
      }
    })

    it('several processes refreshing at once on a new store all succeed: the derived tables are created once, without a race', { timeout: 180_000 }, async () => {
      // PostgreSQL raced on CREATE TABLE IF NOT EXISTS of the derived table (23505 on pg_type)
      // when two programs declared the same derivation on a new store at once.
      const db = await shared(dialect, 2000)
      try {
        const results = await Promise.all([1, 2, 3, 4].map(() => startProcess(dialect, db.target, 'refresh')))
        for (const r of results) expect(r, JSON.stringify(r)).toMatchObject({ ok: true })
        const [out] = await db.query<{ n: unknown }>(`SELECT count(*) AS n FROM out`)
        expect(num(out!.n)).toBe(2000)
      } finally {
        await db.close()
      }
    })

    it('a start on a tracked table does not wait for another connection holding an open root-write transaction', { timeout: 120_000 }, async () => {
      const db = await shared(dialect, 1000)
      try {
        expect(await startProcess(dialect, db.target)).toMatchObject({ ok: true })
        const o = await db.other()
        try {
          await o.exec(dialect === 'sqlite' ? 'BEGIN IMMEDIATE' : 'BEGIN')
          await o.exec(`UPDATE src SET text = 'held' WHERE id = 1`)
          // Before: PostgreSQL's DROP/CREATE TRIGGER waited for the open transaction (forever);
          // SQLite's write transaction failed with SQLITE_BUSY after its busy timeout.
          const r = await startProcess(dialect, db.target, 'start', 30_000)
          expect(r, JSON.stringify(r)).toMatchObject({ ok: true })
          await o.exec('COMMIT')
        } finally {
          await o.close()
        }
        const [rev] = await db.query<{ deleted: unknown }>(`SELECT deleted FROM lq_rev_src WHERE lq_key = '1'`)
        expect(num(rev!.deleted)).toBe(0)
      } finally {
        await db.close()
      }
    })

    it('root writes commit while the first backfill of a big table is under way, and every write is counted', { timeout: 240_000 }, async () => {
      const n = 150_000
      const db = await shared(dialect, n)
      try {
        const start = startProcess(dialect, db.target)
        let running = true
        void start.then(() => (running = false))
        // The backfill is under way once lq_tracked holds its marker.
        const marker = async (): Promise<string | undefined> => {
          try {
            const rows = await db.query<{ ddl_hash: string }>(`SELECT ddl_hash FROM lq_tracked WHERE root = 'src'`)
            return rows[0]?.ddl_hash
          } catch {
            return undefined // the store's tables are not there yet
          }
        }
        let m: string | undefined
        while (running && (m = await marker()) !== 'keep') await new Promise((r) => setTimeout(r, 5))
        let during = 0
        let i = 0
        while (running && (await marker()) === 'keep') {
          i++
          await db.exec(`UPDATE src SET text = 'u${i}' WHERE id = ${1 + ((i * 7919) % n)}`)
          await db.exec(`INSERT INTO src (id, text) VALUES (${n + i}, 'new${i}')`)
          await db.exec(`DELETE FROM src WHERE id = ${1 + ((i * 104729) % n)}`)
          // The three writes committed, and the backfill was still going on afterwards.
          if ((await marker()) === 'keep') during++
          await new Promise((r) => setTimeout(r, 10)) // a writer at ~100 writes/s, not a busy loop
        }
        const r = await start
        expect(r, JSON.stringify(r)).toMatchObject({ ok: true })
        expect(during).toBeGreaterThan(0)
        // Every row, written during the backfill or not, has its revision; the derived rows match.
        expect(await startProcess(dialect, db.target, 'refresh')).toMatchObject({ ok: true })
        const [live] = await db.query<{ n: unknown }>(`SELECT count(*) AS n FROM src`)
        const [revs] = await db.query<{ n: unknown }>(`SELECT count(*) AS n FROM lq_rev_src WHERE deleted = 0`)
        expect(num(revs!.n)).toBe(num(live!.n))
        const wrong = await db.query<{ id: unknown }>(`SELECT s.id FROM src AS s LEFT JOIN out AS o ON o.lq_key = CAST(s.id AS text) WHERE o.s IS NULL OR o.s <> upper(s.text)`)
        expect(wrong).toEqual([])
        const [extra] = await db.query<{ n: unknown }>(`SELECT count(*) AS n FROM out AS o WHERE o.lq_key NOT IN (SELECT CAST(s.id AS text) FROM src AS s)`)
        expect(num(extra!.n)).toBe(0)
      } finally {
        await db.close()
      }
    })
  })
}
