/**
 * A program start in its own OS process, for the startup tests and the startup benchmark:
 * opens the store on a SQLite file or a PostgreSQL schema, tracks `src` and declares `out`
 * (its text, upper-cased); with `refresh`, refreshes. Prints one JSON line:
 * `{ ok: true, ms, t0, t1 }` (`ms`: open + track + derive; `t0`/`t1`: epoch ms around them) or
 * `{ ok: false, error, code }`.
 *
 * Usage: node --import tsx start-child.ts <sqlite|postgres> <file|schema> [refresh]
 */
import Database from 'better-sqlite3'
import * as t from 'io-ts'
import { Kysely, PostgresDialect, SqliteDialect } from 'kysely'
import pg from 'pg'
import { openStore } from '../../../src/derived/index.js'
import { table } from '../../../src/query/dsl.js'

const [dialect, target, action] = process.argv.slice(2)
const src = table('src', { id: t.Int, text: t.string })
const pgUrl = process.env['LQ_PG_URL'] ?? 'postgres://postgres@127.0.0.1:5432/test'

const db =
  dialect === 'sqlite'
    ? new Kysely<any>({ dialect: new SqliteDialect({ database: new Database(target!) }) })
    : new Kysely<any>({ dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString: pgUrl, max: 2, options: `-c search_path=${target}` }) }) })

const t0 = performance.now()
const epoch0 = Date.now()
try {
  const store = await openStore(db)
  await store.track(src)
  store.derive({ name: 'out', from: src, output: { s: t.string }, fn: (r) => ({ s: r.text.toUpperCase() }) })
  const ms = performance.now() - t0
  const epoch1 = Date.now()
  if (action === 'refresh') await store.refresh()
  process.stdout.write(JSON.stringify({ ok: true, ms, t0: epoch0, t1: epoch1 }) + '\n')
} catch (e) {
  process.stdout.write(JSON.stringify({ ok: false, error: String((e as Error)?.stack ?? e), code: (e as { code?: unknown })?.code ?? null }) + '\n')
} finally {
  await db.destroy()
}
