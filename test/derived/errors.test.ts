/**
 * Errors from the database reach the user as typed LineageQueryErrors naming the operation and
 * table, on SQLite and PostgreSQL.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import * as t from 'io-ts'
import { Kysely, PostgresDialect, SqliteDialect, sql } from 'kysely'
import pg from 'pg'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { LineageQueryError } from '../../src/errors.js'
import { createTable, insertRows } from '../../src/query/ddl.js'
import { table } from '../../src/query/dsl.js'
import { openStore } from '../../src/derived/index.js'
import { dialectNames, open, pgUrl, type TestDb } from '../support/db.js'
import { rejection } from '../support/errors.js'

const src = table('src', { id: t.Int, text: t.string })

for (const dialect of dialectNames) {
  describe(`store errors [${dialect}]`, () => {
    let tdb: TestDb
    beforeEach(async () => {
      tdb = await open(dialect)
    })
    afterEach(async () => {
      await tdb.close()
    })

    it('a root column dropped after tracking: refresh rejects with a schema error naming the derived table and the column', async () => {
      await createTable(tdb.db, src)
      await insertRows(tdb.db, src, [{ id: 1, text: 'a' }])
      const store = await openStore(tdb.db)
      await store.track(src)
      store.derive({ name: 'out', from: src, output: { s: t.string }, fn: (r) => ({ s: r.text }) })
      await store.refresh()
      await sql`ALTER TABLE src DROP COLUMN text`.execute(tdb.db)
      await sql`INSERT INTO src (id) VALUES (2)`.execute(tdb.db)
      const e = await rejection(store.refresh())
      expect(e.code).toBe('schema')
      expect(e.message).toContain('derived table `out`')
      expect(e.message).toContain('`text`')
      expect(e.cause).toBeDefined()
    })

    it('a Date returned for a string column is reported as a Date, not as the string it serialises to', async () => {
      await createTable(tdb.db, src)
      await insertRows(tdb.db, src, [{ id: 1, text: 'a' }])
      const store = await openStore(tdb.db)
      await store.track(src)
      const out = store.derive({ name: 'out', from: src, output: { s: t.string }, fn: () => ({ s: new Date(0) as unknown as string }) })
      await store.refresh()
      const s = await store.status(out, 1)
      expect(s.state).toBe('failed')
      expect(s.causes[0]).toMatchObject({ kind: 'error', message: expect.stringContaining('got a Date (1970-01-01T00:00:00.000Z)') })
      await expect(insertRows(tdb.db, src, [{ id: 2, text: new Date(0) as unknown as string }])).rejects.toThrow(/a Date \(1970-01-01T00:00:00\.000Z\)/)
    })

    it('status, revision and affected take bigint keys and their results serialise to JSON', async () => {
      await createTable(tdb.db, src)
      await insertRows(tdb.db, src, [{ id: 1, text: 'a' }])
      const store = await openStore(tdb.db)
      await store.track(src)
      const out = store.derive({ name: 'out', from: src, output: { s: t.string }, fn: (r) => ({ s: r.text }) })
      await store.refresh()
      const s = await store.status(out, 1n)
      expect(JSON.stringify(s)).toBe('{"table":"out","key":1,"state":"fresh","causes":[]}')
      expect(await store.revision(src, 1n)).toBeGreaterThan(0)
      expect(JSON.stringify(await store.affected(src, 1n))).toBe('[{"table":"out","key":1}]')
    })

    it('openStore on a database locked by another connection past busyTimeoutMs rejects with a busy error naming openStore', async () => {
      let impatient: Kysely<any>
      let release: () => Promise<void>
      let dir: string | undefined
      if (dialect === 'sqlite') {
        dir = mkdtempSync(join(tmpdir(), 'lq-errors-'))
        const file = join(dir, 'db.sqlite')
        const holder = new Database(file)
        holder.pragma('journal_mode = WAL')
        holder.exec('BEGIN IMMEDIATE')
        holder.exec('CREATE TABLE held (x integer)')
        impatient = new Kysely<any>({ dialect: new SqliteDialect({ database: new Database(file, { timeout: 0 }) }) })
        release = async () => {
          holder.exec('ROLLBACK')
          holder.close()
        }
      } else {
        const schema = (await sql<{ s: string }>`SELECT current_schema() AS s`.execute(tdb.db)).rows[0]!.s
        const holder = new pg.Client({ connectionString: pgUrl })
        await holder.connect()
        await holder.query('SELECT pg_advisory_lock(7265110251)')
        impatient = new Kysely<any>({ dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString: pgUrl, options: `-c search_path=${schema} -c lock_timeout=50`, max: 1 }) }) })
        release = async () => {
          await holder.query('SELECT pg_advisory_unlock(7265110251)')
          await holder.end()
        }
      }
      try {
        const e = await rejection(openStore(impatient, { busyTimeoutMs: 300 }))
        expect(e.code).toBe('busy')
        expect(e.message).toContain('openStore')
      } finally {
        await release()
        await impatient.destroy()
        if (dir !== undefined) rmSync(dir, { recursive: true, force: true })
      }
    })
  })
}
