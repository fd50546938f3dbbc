/**
 * vitest globalSetup: says once, before the tests, which PostgreSQL the tests use — the server
 * (with its version) or PGlite — by the same rules as `openPostgres` in db.ts (`LQ_PG`,
 * `LQ_PG_URL`, `CI`/`LQ_REQUIRE_PG`). `npm test` (run-tests.mjs) repeats the line above the
 * summary: it passes a file path in `LQ_PG_NOTE_FILE` and this writes the line there.
 */
import { readFileSync, writeFileSync } from 'node:fs'
import pg from 'pg'

// The same defaults as db.ts (which imports vitest's test API, not loadable here).
const pgUrl: string = process.env['LQ_PG_URL'] ?? 'postgres://postgres@127.0.0.1:5432/test'
const truthy = (v: string | undefined): boolean => v !== undefined && v !== '' && v !== '0' && v.toLowerCase() !== 'false'
const serverRequired = (): boolean => process.env['CI'] === 'true' || truthy(process.env['LQ_REQUIRE_PG']) || process.env['LQ_PG'] === 'server'

export default async function setup(): Promise<void> {
  const line = `PostgreSQL for these tests: ${await which()}`
  console.log(line)
  const file = process.env['LQ_PG_NOTE_FILE']
  if (file) writeFileSync(file, line)
}

async function which(): Promise<string> {
  const pglite = (): string => {
    const pkg = new URL('../../node_modules/@electric-sql/pglite/package.json', import.meta.url)
    const version = (JSON.parse(readFileSync(pkg, 'utf8')) as { version: string }).version
    return `PGlite ${version} (in-process WASM)`
  }
  if (process.env['LQ_PG'] === 'pglite') return `${pglite()}, as LQ_PG=pglite asks`
  const url = pgUrl.replace(/\/\/([^:@/]+):[^@/]*@/, '//$1:***@')
  const client = new pg.Client({ connectionString: pgUrl, connectionTimeoutMillis: 1000 })
  try {
    await client.connect()
    const { rows } = await client.query<{ server_version: string }>('show server_version')
    return `server at ${url} (PostgreSQL ${rows[0]?.server_version ?? '?'})`
  } catch (e) {
    const why = e instanceof Error ? e.message : String(e)
    if (serverRequired()) return `server at ${url} REQUIRED (CI=true / LQ_REQUIRE_PG=1 / LQ_PG=server) but not reachable (${why}); PostgreSQL tests will fail`
    return `${pglite()}, since no server answers at ${url} (${why})`
  } finally {
    await client.end().catch(() => undefined)
  }
}
