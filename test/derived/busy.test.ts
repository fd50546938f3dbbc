/**
 * Refresh on a busy database: another OS process writing the root table at ~150 updates/s,
 * and two processes refreshing one store, on SQLite (a WAL file) and PostgreSQL.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import Database from 'better-sqlite3'
import { Kysely, PostgresDialect, SqliteDialect, sql } from 'kysely'
import pg from 'pg'
import { LineageQueryError } from '../../src/errors.js'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { createTable, insertRows } from '../../src/query/ddl.js'
import { openStore } from '../../src/derived/index.js'
import { open, pgUrl, type DialectName } from '../support/db.js'
import { declare, src } from './fixtures/busy-schema.js'

const here = dirname(fileURLToPath(import.meta.url))
const root = join(here, '..', '..')
const N = 2000

interface Target {
  readonly db: Kysely<any>
  /** Another connection to the same database that gives up on a lock at once (SQLite timeout 0; PostgreSQL lock_timeout 50 ms). */
  impatient(): Kysely<any>
  /** Arguments naming this database for the child scripts. */
  readonly args: readonly string[]
  close(): Promise<void>
}

async function target(dialect: DialectName): Promise<Target> {
  if (dialect === 'sqlite') {
    const dir = mkdtempSync(join(tmpdir(), 'lq-busy-'))
    const file = join(dir, 'store.db')
    const database = new Database(file)
    database.pragma('journal_mode = WAL')
    const db = new Kysely<any>({ dialect: new SqliteDialect({ database }) })
    const others: Kysely<any>[] = []
    return {
      db,
      impatient: () => {
        const k = new Kysely<any>({ dialect: new SqliteDialect({ database: new Database(file, { timeout: 0 }) }) })
        others.push(k)
        return k
      },
      args: [file],
      async close() {
        for (const o of others) await o.destroy()
        await db.destroy()
        rmSync(dir, { recursive: true, force: true })
      },
    }
  }
  const tdb = await open('postgres')
  const schema = (await sql<{ s: string }>`SELECT current_schema() AS s`.execute(tdb.db)).rows[0]!.s
  const others: Kysely<any>[] = []
  return {
    db: tdb.db,
    impatient: () => {
      const pool = new pg.Pool({ connectionString: pgUrl, options: `-c search_path=${schema} -c lock_timeout=50`, max: 2 })
      const k = new Kysely<any>({ dialect: new PostgresDialect({ pool }) })
      others.push(k)
      return k
    },
    args: [pgUrl, schema],
    async close() {
      for (const o of others) await o.destroy()
      await tdb.close()
    },
  }
}

/** Run a child process; resolves with its stdout and exit code. */
function child(args: readonly string[]): { proc: ChildProcess; done: Promise<{ out: string; code: number | null }> } {
  const proc = spawn(process.execPath, args as string[], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  let err = ''
  proc.stdout!.on('data', (b: Buffer) => (out += b.toString()))
  proc.stderr!.on('data', (b: Buffer) => (err += b.toString()))
  const done = new Promise<{ out: string; code: number | null }>((resolve) => proc.on('close', (code) => resolve({ out: out || err, code })))
  return { proc, done }
}

const writer = (dialect: DialectName, t: Target, ms: number) => child([join(here, 'fixtures', 'busy-writer.mjs'), dialect, ...t.args, String(ms), '150'])
const refresher = (dialect: DialectName, t: Target, times: number) => child(['--import', 'tsx', join(here, 'fixtures', 'busy-refresher.ts'), dialect, ...t.args, String(times)])

for (const dialect of ['sqlite', 'postgres'] as const) {
  describe(`busy database [${dialect}]`, () => {
    let t: Target
    const kids: ChildProcess[] = []
    beforeEach(async () => {
      t = await target(dialect)
      await createTable(t.db, src)
      await insertRows(t.db, src, Array.from({ length: N }, (_, i) => ({ id: i + 1, x: 0 })))
    })
    afterEach(async () => {
      for (const k of kids.splice(0)) if (k.exitCode === null) k.kill('SIGTERM')
      await t.close()
    })

    it('incremental refreshes succeed while another process writes the root table at ~150 updates/s', async () => {
      const store = await openStore(t.db)
      const out = await declare(store)
      await store.refresh()
      const w = writer(dialect, t, 4000)
      kids.push(w.proc)
      await new Promise((r) => setTimeout(r, 300))
      let refreshes = 0
      let computed = 0
      const until = Date.now() + 3000
      while (Date.now() < until) {
        computed += (await store.refresh()).totals.computed
        refreshes++
        await new Promise((r) => setTimeout(r, 30))
      }
      const written = await w.done
      expect(written.code).toBe(0)
      expect(Number(written.out)).toBeGreaterThan(100)
      expect(refreshes).toBeGreaterThan(3)
      expect(computed).toBeGreaterThan(0)
      await store.refresh()
      expect(await store.stale()).toEqual([])
      expect((await store.status(out, 1)).state).toBe('fresh')
    })

    it('a database locked longer than busyTimeoutMs gives a busy error naming the operation, not a driver error', async () => {
      const store = await openStore(t.db)
      await declare(store)
      await store.refresh()
      await t.db.updateTable('src').set({ x: 5 }).where('id', '=', 1).execute()
      const impatient = await openStore(t.impatient(), { busyTimeoutMs: 300 })
      await declare(impatient)
      // Another connection holds the write lock (SQLite) / a lock on the store's table (PostgreSQL) for a second.
      const holder = t.db.transaction().execute(async (trx) => {
        if (dialect === 'sqlite') await sql`UPDATE src SET x = x WHERE id = 2`.execute(trx)
        else await sql`LOCK TABLE lq_meta_out IN ACCESS EXCLUSIVE MODE`.execute(trx)
        await new Promise((r) => setTimeout(r, 1000))
      })
      await new Promise((r) => setTimeout(r, 50))
      let err: unknown
      try {
        await impatient.refresh()
      } catch (e) {
        err = e
      }
      await holder
      expect(err).toBeInstanceOf(LineageQueryError)
      expect((err as LineageQueryError).code).toBe('busy')
      expect((err as LineageQueryError).message).toMatch(/`out`.*stayed busy/)
      // Once the lock is gone, the same store refreshes.
      expect((await impatient.refresh()).totals.computed).toBe(1)
    })

    it('two processes refreshing one store while a third writes both succeed', async () => {
      const store = await openStore(t.db)
      const out = await declare(store)
      // The store's tables exist (two programs creating them at the same instant is startup's business).
      await store.status(out, 1)
      const w = writer(dialect, t, 4000)
      kids.push(w.proc)
      const a = refresher(dialect, t, 8)
      const b = refresher(dialect, t, 8)
      kids.push(a.proc, b.proc)
      const [ra, rb] = await Promise.all([a.done, b.done])
      await w.done
      expect({ code: ra.code, out: ra.out }).toMatchObject({ code: 0, out: expect.stringContaining('"ok":true') })
      expect({ code: rb.code, out: rb.out }).toMatchObject({ code: 0, out: expect.stringContaining('"ok":true') })
      await store.refresh()
      expect(await store.stale()).toEqual([])
    })
  })
}
