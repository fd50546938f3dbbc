/**
 * Driver errors met by a store call become typed errors (issue 10, defect 10): real errors of
 * each driver, made on a real database (a deadlock on PostgreSQL, 40P01; a locked file on
 * SQLite, SQLITE_BUSY), go through `fromDriver` and come out as `busy` LineageQueryErrors that
 * name the operation and keep the driver's code and error.
 */
import Database from 'better-sqlite3'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pg from 'pg'
import { sql } from 'kysely'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { fromDriver, isDriverError } from '../../src/derived/driver-errors.js'
import { LineageQueryError } from '../../src/errors.js'
import { dialectNames, open, pgUrl, type TestDb } from '../support/db.js'

/** A real driver error of `dialect` meaning "busy": SQLITE_BUSY, or PostgreSQL's 40P01 (a deadlock between two clients). */
async function busyError(dialect: 'sqlite' | 'postgres', tdb: TestDb): Promise<unknown> {
  if (dialect === 'sqlite') {
    const dir = mkdtempSync(join(tmpdir(), 'lq-driver-'))
    const file = join(dir, 'db.sqlite')
    const holder = new Database(file)
    const other = new Database(file, { timeout: 0 })
    try {
      holder.exec('CREATE TABLE t (x integer)')
      holder.exec('BEGIN IMMEDIATE')
      holder.exec('INSERT INTO t VALUES (1)')
      try {
        other.exec('INSERT INTO t VALUES (2)')
      } catch (e) {
        return e
      }
      throw new Error('expected SQLITE_BUSY')
    } finally {
      holder.close()
      other.close()
      rmSync(dir, { recursive: true, force: true })
    }
  }
  const schema = (await sql<{ s: string }>`SELECT current_schema() AS s`.execute(tdb.db)).rows[0]!.s
  await sql`CREATE TABLE dl (id integer PRIMARY KEY, v integer)`.execute(tdb.db)
  await sql`INSERT INTO dl VALUES (1, 0), (2, 0)`.execute(tdb.db)
  const a = new pg.Client({ connectionString: pgUrl, options: `-c search_path=${schema}` })
  const b = new pg.Client({ connectionString: pgUrl, options: `-c search_path=${schema}` })
  await a.connect()
  await b.connect()
  try {
    await a.query('BEGIN')
    await b.query('BEGIN')
    await a.query('UPDATE dl SET v = 1 WHERE id = 1')
    await b.query('UPDATE dl SET v = 1 WHERE id = 2')
    // Each now waits for the other's row: PostgreSQL aborts one of them with 40P01.
    const r = await Promise.allSettled([a.query('UPDATE dl SET v = 2 WHERE id = 2'), b.query('UPDATE dl SET v = 2 WHERE id = 1')])
    const failed = r.find((x) => x.status === 'rejected')
    if (failed === undefined) throw new Error('expected a deadlock')
    return (failed as PromiseRejectedResult).reason
  } finally {
    await a.query('ROLLBACK').catch(() => undefined)
    await b.query('ROLLBACK').catch(() => undefined)
    await a.end()
    await b.end()
  }
}

for (const dialect of dialectNames) {
  describe(`driver errors [${dialect}]`, () => {
    let tdb: TestDb
    beforeEach(async () => {
      tdb = await open(dialect)
    })
    afterEach(async () => {
      await tdb.close()
    })

    it(`a busy or deadlocked database (${dialect === 'sqlite' ? 'SQLITE_BUSY' : '40P01'}) is a busy LineageQueryError naming the operation, with the driver's code and error as cause`, async (ctx) => {
      if (dialect === 'postgres' && tdb.label !== 'postgres (server)') return ctx.skip() // two clients need the server
      const raw = await busyError(dialect, tdb)
      expect(isDriverError(raw)).toBe(true)
      const e = fromDriver(raw, 'store.refresh, derived table `out`')
      expect(e).toBeInstanceOf(LineageQueryError)
      const err = e as LineageQueryError
      expect(err.code).toBe('busy')
      expect(err.message).toMatch(/^store\.refresh, derived table `out`: the database is busy \((SQLITE_BUSY|40P01): /)
      expect(err.details).toMatchObject({ operation: 'store.refresh, derived table `out`', driverCode: dialect === 'sqlite' ? 'SQLITE_BUSY' : '40P01' })
      expect(err.cause).toBe(raw)
    })

    it('errors that are not the database\'s pass through unchanged', () => {
      const mine = new LineageQueryError('argument', 'bad')
      expect(fromDriver(mine, 'x')).toBe(mine)
      const plain = new TypeError('no')
      expect(isDriverError(plain)).toBe(false)
      expect(fromDriver(plain, 'x')).toBe(plain)
    })
  })
}

describe('a lost connection', () => {
  it("node-postgres' connection errors without a code (Connection terminated unexpectedly) and the server's 57P01 are a database LineageQueryError saying the connection was lost, retried by watch; other plain errors are not", () => {
    // It reached `store.watch` raw, which stopped on it: a worker whose connection the server ended exited.
    const raw = new Error('Connection terminated unexpectedly')
    expect(isDriverError(raw)).toBe(true)
    const err = fromDriver(raw, 'store.refresh') as LineageQueryError
    expect(err).toBeInstanceOf(LineageQueryError)
    expect(err.code).toBe('database')
    expect(err.message).toMatch(/store\.refresh: the connection to the database was lost \(Connection terminated unexpectedly\)/)
    expect(err.details).toMatchObject({ driverCode: 'connection-lost' })
    expect(err.cause).toBe(raw)
    const admin = Object.assign(new Error('terminating connection due to administrator command'), { code: '57P01' })
    expect((fromDriver(admin, 'x') as LineageQueryError).message).toMatch(/connection to the database was lost \(57P01: terminating/)
    expect(isDriverError(new Error('Connection refused by the user'))).toBe(false)
  })
})
