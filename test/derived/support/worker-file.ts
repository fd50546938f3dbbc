/**
 * Worker processes on one SQLite database file, for the tests of several OS processes that
 * share a store (range claims, functions that outlast their lease):
 * - `srcFile`: a fresh directory holding the database file, with a root `src (id, v)` of rows
 *   1..n (v = id) tracked by a store, and an empty call log the children append to;
 * - `spawnChild`: one `node --import tsx` fixture of test/derived/fixtures, its printed lines
 *   (stdout and stderr) and its exit code.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import Database from 'better-sqlite3'
import * as t from 'io-ts'
import { Kysely, SqliteDialect } from 'kysely'
import { createTable, insertRows } from '../../../src/query/ddl.js'
import { table } from '../../../src/query/dsl.js'
import { openStore } from '../../../src/derived/index.js'

const here = dirname(fileURLToPath(import.meta.url))
const root = join(here, '..', '..', '..')

export interface Child {
  readonly proc: ChildProcess
  /** The lines it printed so far (stdout, then stderr). */
  lines(): string[]
  readonly exited: Promise<number | null>
}

/** Start fixture `fixture` (a file of test/derived/fixtures) with `args`. */
export function spawnChild(fixture: string, args: readonly string[]): Child {
  const proc = spawn(process.execPath, ['--import', 'tsx', join(here, '..', 'fixtures', fixture), ...args], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  let err = ''
  proc.stdout!.on('data', (b) => (out += String(b)))
  proc.stderr!.on('data', (b) => (err += String(b)))
  const exited = new Promise<number | null>((r) => proc.on('exit', (code) => r(code)))
  return { proc, exited, lines: () => (out + err).split('\n').filter((l) => l.length > 0) }
}

/** A fresh directory (`prefix`) with a database file whose `src` holds rows 1..n, tracked, and an empty call log. The caller destroys `db` and removes `dir`. */
export async function srcFile(prefix: string, n: number): Promise<{ dir: string; file: string; log: string; db: Kysely<any> }> {
  const dir = mkdtempSync(join(tmpdir(), prefix))
  const file = join(dir, 'db.sqlite')
  const db = new Kysely<any>({ dialect: new SqliteDialect({ database: new Database(file) }) })
  const src = table('src', { id: t.Int, v: t.Int })
  await createTable(db, src)
  await insertRows(db, src, Array.from({ length: n }, (_, i) => ({ id: i + 1, v: i + 1 })))
  const store = await openStore(db)
  await store.track(src)
  const log = join(dir, 'calls.log')
  writeFileSync(log, '')
  return { dir, file, log, db }
}
