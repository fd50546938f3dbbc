/**
 * Test databases. Every `open*` call gives a fresh, empty database:
 * - SQLite: a new in-memory better-sqlite3 database.
 * - PostgreSQL: on the server at `LQ_PG_URL` (default postgres://postgres@127.0.0.1:5432/test)
 *   when it accepts connections, a new schema with a random name that every pooled connection
 *   uses (`search_path`) and that `close()` drops; otherwise a new PGlite instance.
 *
 * Environment:
 * - `CI=true` or `LQ_REQUIRE_PG=1`: the server is required; an unreachable server is an error
 *   (no silent fall-back to PGlite).
 * - `LQ_PG=pglite`: use PGlite even when a server is reachable; `LQ_PG=server`: require the server.
 * - `LQ_DIALECTS=sqlite` (or `postgres`): run `eachDialect`/`dialectNames` tests on those only.
 */
import Database from 'better-sqlite3'
import { Kysely, PostgresDialect, SqliteDialect, sql } from 'kysely'
import pg from 'pg'
import Cursor from 'pg-cursor'
import { afterAll, beforeAll, describe } from 'vitest'
import { PgliteDialect } from './pglite-dialect.js'

export type DialectName = 'sqlite' | 'postgres'

export interface TestDb {
  readonly dialect: DialectName
  /** `'sqlite'`, `'postgres (server)'` or `'postgres (pglite)'`. */
  readonly label: string
  readonly db: Kysely<any>
  close(): Promise<void>
}

/**
 * The dialects the tests run on: both, or those `LQ_DIALECTS` lists (`sqlite`, `postgres`,
 * comma-separated). `npm run mutate` runs its tests on SQLite only: the code it mutates (the
 * lineage rewrite, the pure phases of the derived engine) is the same for both dialects.
 */
export const dialectNames: readonly DialectName[] = Object.freeze(selectedDialects(process.env['LQ_DIALECTS']))

function selectedDialects(v: string | undefined): DialectName[] {
  const all: DialectName[] = ['sqlite', 'postgres']
  if (v === undefined || v.trim() === '') return all
  const names = v.split(',').map((s) => s.trim()).filter((s) => s !== '')
  for (const n of names) if (!(all as string[]).includes(n)) throw new Error(`LQ_DIALECTS names ${JSON.stringify(n)}; expected a comma-separated list of ${all.join(', ')}`)
  return all.filter((d) => names.includes(d))
}

export const pgUrl: string = process.env['LQ_PG_URL'] ?? 'postgres://postgres@127.0.0.1:5432/test'

const truthy = (v: string | undefined): boolean => v !== undefined && v !== '' && v !== '0' && v.toLowerCase() !== 'false'

/** Whether the PostgreSQL server must be used (CI, `LQ_REQUIRE_PG=1`, `LQ_PG=server`). */
export function serverRequired(): boolean {
  return process.env['CI'] === 'true' || truthy(process.env['LQ_REQUIRE_PG']) || process.env['LQ_PG'] === 'server'
}

/** A fresh in-memory SQLite database. */
export async function openSqlite(): Promise<TestDb> {
  const database = new Database(':memory:')
  const db = new Kysely<any>({ dialect: new SqliteDialect({ database }) })
  return { dialect: 'sqlite', label: 'sqlite', db, close: () => db.destroy() }
}

// ---------------------------------------------------------------- PostgreSQL server

/** Schemas left behind by killed test runs are dropped once they are this old. */
const STALE_SCHEMA_MS = 6 * 60 * 60 * 1000
const SCHEMA_PREFIX = 'lq_test_'

let probe: Promise<{ ok: true } | { ok: false; error: unknown }> | undefined

/** Whether the server accepts connections: asked once per process, with a 1 s timeout. */
export function pgServerReachable(): Promise<boolean> {
  return probeServer().then((r) => r.ok)
}

function probeServer(): Promise<{ ok: true } | { ok: false; error: unknown }> {
  probe ??= (async () => {
    const client = new pg.Client({ connectionString: pgUrl, connectionTimeoutMillis: 1000 })
    try {
      await client.connect()
      await client.query('select 1')
      await dropStaleSchemas(client).catch(() => undefined)
      return { ok: true as const }
    } catch (error) {
      return { ok: false as const, error }
    } finally {
      await client.end().catch(() => undefined)
    }
  })()
  return probe
}

async function dropStaleSchemas(client: pg.Client): Promise<void> {
  const { rows } = await client.query<{ nspname: string }>(`select nspname from pg_namespace where nspname like '${SCHEMA_PREFIX}%'`)
  const now = Date.now()
  for (const { nspname } of rows) {
    const born = parseInt(nspname.slice(SCHEMA_PREFIX.length).split('_')[0] ?? '', 36)
    if (Number.isFinite(born) && now - born > STALE_SCHEMA_MS) await client.query(`drop schema if exists "${nspname}" cascade`)
  }
}

/** A fresh schema on the PostgreSQL server; `close()` drops it. */
export async function openPgServer(): Promise<TestDb> {
  const r = await probeServer()
  if (!r.ok) throw new Error(`PostgreSQL server at ${redact(pgUrl)} is not reachable: ${String((r.error as Error)?.message ?? r.error)}`)
  // Name: prefix, creation time (base 36, for stale-schema cleanup), random suffix.
  const schema = `${SCHEMA_PREFIX}${Date.now().toString(36)}_${Math.random().toString(36).slice(2, 10)}`
  const admin = new pg.Client({ connectionString: pgUrl, connectionTimeoutMillis: 5000 })
  await admin.connect()
  try {
    await admin.query(`create schema "${schema}"`)
  } finally {
    await admin.end()
  }
  const pool = new pg.Pool({ connectionString: pgUrl, max: 4, options: `-c search_path=${schema}`, connectionTimeoutMillis: 5000 })
  // An idle pooled client losing its connection emits 'error' on the pool; without a listener
  // that would crash the test worker. The next query reports the problem instead.
  pool.on('error', () => undefined)
  // cursor: Kysely streams (stream()) through pg-cursor.
  const db = new Kysely<any>({ dialect: new PostgresDialect({ pool, cursor: Cursor }) })
  let closed = false
  return {
    dialect: 'postgres',
    label: 'postgres (server)',
    db,
    async close() {
      if (closed) return
      closed = true
      try {
        await sql`drop schema if exists ${sql.id(schema)} cascade`.execute(db)
      } finally {
        await db.destroy()
      }
    },
  }
}

// ---------------------------------------------------------------- PGlite

/** A fresh PGlite (in-process WASM PostgreSQL) database. */
export async function openPglite(): Promise<TestDb> {
  const { PGlite } = await import('@electric-sql/pglite')
  const pglite = await PGlite.create()
  const db = new Kysely<any>({ dialect: new PgliteDialect({ pglite }) })
  let closed = false
  return {
    dialect: 'postgres',
    label: 'postgres (pglite)',
    db,
    async close() {
      if (closed) return
      closed = true
      await db.destroy()
      if (!pglite.closed) await pglite.close()
    },
  }
}

/**
 * A fresh PostgreSQL database: the server when reachable, else PGlite. When the server is
 * required (`CI=true`, `LQ_REQUIRE_PG=1`), an unreachable server is an error.
 */
export async function openPostgres(): Promise<TestDb> {
  if (process.env['LQ_PG'] === 'pglite') {
    if (serverRequired()) throw new Error('LQ_PG=pglite contradicts CI=true / LQ_REQUIRE_PG=1, which require the PostgreSQL server')
    return openPglite()
  }
  const r = await probeServer()
  if (r.ok) return openPgServer()
  if (serverRequired()) {
    throw new Error(
      `PostgreSQL server at ${redact(pgUrl)} is not reachable (${String((r.error as Error)?.message ?? r.error)}), and CI=true / LQ_REQUIRE_PG=1 require it. ` +
        'Start it (pg_ctlcluster --skip-systemctl-redirect <version> main start) or set LQ_PG_URL.',
    )
  }
  return openPglite()
}

export function open(dialect: DialectName): Promise<TestDb> {
  return dialect === 'sqlite' ? openSqlite() : openPostgres()
}

/** `[sqlite, postgres]`. */
export async function openAll(): Promise<TestDb[]> {
  const sqlite = await openSqlite()
  try {
    return [sqlite, await openPostgres()]
  } catch (e) {
    await sqlite.close()
    throw e
  }
}

/**
 * One `describe` block per dialect, `${name} [sqlite]` and `${name} [postgres]`, each opening
 * a fresh database before its tests and closing it after. `get()` returns it (inside tests
 * and hooks only).
 *
 * @example
 * ```ts
 * eachDialect('createTable', (get) => {
 *   it('creates', async () => { await createTable(get().db, employees) })
 * })
 * ```
 */
export function eachDialect(name: string, body: (get: () => TestDb) => void): void {
  for (const dialect of dialectNames) {
    describe(`${name} [${dialect}]`, () => {
      let current: TestDb | undefined
      beforeAll(async () => {
        current = await open(dialect)
      })
      afterAll(async () => {
        const c = current
        current = undefined
        await c?.close()
      })
      body(() => {
        if (current === undefined) throw new Error(`eachDialect(${JSON.stringify(name)}): the ${dialect} database is only open inside tests and hooks`)
        return current
      })
    })
  }
}

function redact(url: string): string {
  return url.replace(/\/\/([^:@/]+):[^@/]*@/, '//$1:***@')
}
