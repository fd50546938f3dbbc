/**
 * Worker processes on one SQLite database file, for the tests of several OS processes that
 * share a store (range claims, functions that outlast their lease):
 * - `srcFile`: a fresh directory holding the database file, with a root `src (id, v)` of rows
 *   1..n (v = id) tracked by a store, and an empty call log the children append to;
 * - `spawnChild`: one `node --import tsx` fixture of test/derived/fixtures, its printed lines
 *   (stdout and stderr) and its exit code;
 * - `fileWorkers`: a test file's database file and worker processes per test, cleaned up after
 *   each; `lastJson` (a child's last JSON line) and `until` (poll a condition).
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import Database from 'better-sqlite3'
import * as t from 'io-ts'
import { Kysely, SqliteDialect, sql } from 'kysely'
import { afterEach } from 'vitest'
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

/**
 * The database file and worker processes of one test file (`srcFile` with prefix `prefix` and
 * `n` rows per test, by `setup()`): after each test the `children` are killed (SIGCONT, then
 * SIGKILL), the test's connection `db()` closed and the directory `dir()` removed. `rows()`: the
 * rows of `out` as [key, y, by], by key; `claimsLeft()`: the claim rows and ranges left.
 */
export function fileWorkers(prefix: string, n: number) {
  const children: Child[] = []
  let dir = ''
  let db: Kysely<any> | undefined
  afterEach(async () => {
    for (const c of children) {
      c.proc.kill('SIGCONT')
      c.proc.kill('SIGKILL')
    }
    children.length = 0
    await db?.destroy()
    db = undefined
    if (dir !== '') rmSync(dir, { recursive: true, force: true })
  })
  const conn = (): Kysely<any> => db!
  return {
    children,
    dir: () => dir,
    db: conn,
    async setup(): Promise<{ file: string; log: string }> {
      const f = await srcFile(prefix, n)
      dir = f.dir
      db = f.db
      return f
    },
    rows: async () => (await sql<{ lq_key: string; y: unknown; by: string }>`SELECT lq_key, y, by FROM out`.execute(conn())).rows.map((r) => [Number(r.lq_key), Number(r.y), r.by] as const).sort((a, b) => a[0] - b[0]),
    claimsLeft: async () => Number((await sql<{ n: unknown }>`SELECT (SELECT count(*) FROM lq_claim) + (SELECT count(*) FROM lq_claim_range) AS n`.execute(conn())).rows[0]!.n),
  }
}

/** The last JSON line a child printed. */
export const lastJson = (c: Child): Record<string, unknown> => JSON.parse(c.lines().filter((l) => l.startsWith('{')).at(-1)!)

/** Wait until `ok()` holds (polled every 20 ms); an error naming `what` after `ms`. */
export async function until(what: string, ok: () => boolean | Promise<boolean>, ms = 30_000): Promise<void> {
  for (const t0 = Date.now(); !(await ok()); await new Promise((r) => setTimeout(r, 20))) if (Date.now() - t0 > ms) throw new Error(`never: ${what}`)
}
