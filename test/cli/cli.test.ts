/**
 * The `lineage-query` binary, built (dist/cli/main.js, rebuilt when src/ is newer) and run as
 * a separate process against a SQLite file and a PostgreSQL schema on the server, with the
 * config module test/cli/fixture.config.mjs (sources -> parsed -> doubled; the text 'boom'
 * fails to parse). The package check (test/package/cli-check.mjs) runs the same binary from
 * the packed tarball.
 */
import { execFile, spawn } from 'node:child_process'
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import Database from 'better-sqlite3'
import { Kysely, PostgresDialect, SqliteDialect, sql } from 'kysely'
import pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import * as t from 'io-ts'
import { createTable, insertRows, openStore, table } from '../../src/index.js'
import { dialectNames, pgServerReachable, pgUrl, serverRequired } from '../support/db.js'

/** The root table of fixture.config.mjs (declared there with the built library). */
const sources = table('sources', { id: t.Int, text: t.string })

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..')
const bin = join(root, 'dist', 'cli', 'main.js')
const config = join(root, 'test', 'cli', 'fixture.config.mjs')

function newestMtime(dir: string): number {
  let m = 0
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name)
    m = Math.max(m, e.isDirectory() ? newestMtime(p) : statSync(p).mtimeMs)
  }
  return m
}

beforeAll(async () => {
  const built = existsSync(bin) ? statSync(bin).mtimeMs : 0
  if (built < newestMtime(join(root, 'src')) || !existsSync(join(root, 'dist', 'index.js'))) {
    await promisify(execFile)(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(root, 'tsconfig.build.json')], { cwd: root })
  }
}, 120_000)

interface Target {
  env: Record<string, string>
  db: Kysely<any>
  close(): Promise<void>
}

async function target(dialect: 'sqlite' | 'postgres'): Promise<Target> {
  if (dialect === 'sqlite') {
    const dir = mkdtempSync(join(tmpdir(), 'lq-cli-'))
    const file = join(dir, 'cli.db')
    const db = new Kysely<any>({ dialect: new SqliteDialect({ database: new Database(file) }) })
    return { env: { LQ_CLI_SQLITE: file }, db, close: async () => (await db.destroy(), rmSync(dir, { recursive: true, force: true })) }
  }
  const schema = `lq_test_${Date.now().toString(36)}_cli${Math.random().toString(36).slice(2, 8)}`
  const db = new Kysely<any>({ dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString: pgUrl, options: `-c search_path=${schema}`, max: 2 }) }) })
  await sql`create schema ${sql.id(schema)}`.execute(db)
  return {
    env: { LQ_CLI_PG_URL: pgUrl, LQ_CLI_PG_SCHEMA: schema },
    db,
    close: async () => {
      await sql`drop schema if exists ${sql.id(schema)} cascade`.execute(db)
      await db.destroy()
    },
  }
}

interface Ran {
  code: number | null
  stdout: string
  stderr: string
}

function cli(env: Record<string, string>, args: string[], opts: { onStderr?: (text: string, kill: (s: NodeJS.Signals) => void) => void } = {}): Promise<Ran> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [bin, '--config', config, ...args], {
      cwd: root,
      env: { ...process.env, ...env, LQ_CLI_LIB: join(root, 'dist', 'index.js') },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()))
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString()
      opts.onStderr?.(stderr, (s) => child.kill(s))
    })
    child.on('error', reject)
    child.on('close', (code) => resolve({ code, stdout, stderr }))
  })
}

for (const dialect of dialectNames) {
  // Each command is a fresh Node process (a few seconds each on a loaded machine): generous timeouts.
  describe(`lineage-query CLI [${dialect}]`, { timeout: 300_000 }, () => {
    let tg: Target | undefined
    let skip = false
    beforeAll(async () => {
      if (dialect === 'postgres' && !(await pgServerReachable())) {
        if (serverRequired()) throw new Error('the PostgreSQL server is required (CI) but not reachable')
        skip = true // a separate process cannot reach an in-process PGlite
        return
      }
      tg = await target(dialect)
      await createTable(tg.db, sources)
      await insertRows(tg.db, sources, [
        { id: 1, text: 'a b c' },
        { id: 2, text: 'boom' },
        { id: 3, text: 'hello world' },
      ])
    })
    afterAll(async () => {
      await tg?.close()
    })

    it('stale, refresh, status, why, affected, graph (text and --json)', async (ctx) => {
      if (skip) return ctx.skip()
      const env = tg!.env
      const before = await cli(env, ['stale', '--json'])
      expect(before.code).toBe(0)
      expect(JSON.parse(before.stdout).counts).toEqual({ parsed: { missing: 3 }, doubled: { missing: 3 } })

      const refresh = await cli(env, ['refresh'])
      expect(refresh.stderr).not.toContain('error')
      expect(refresh.code).toBe(0)
      expect(refresh.stdout).toMatch(/^parsed: 2 computed, 1 failed\ndoubled: 2 computed, 1 blocked\ndone in \d+\.\d\d s\n$/)

      const status = await cli(env, ['status', 'doubled', '1', '--json'])
      expect(JSON.parse(status.stdout)).toMatchObject({ table: 'doubled', state: 'fresh', causes: [] })
      expect((await cli(env, ['status', 'doubled', '2'])).stdout).toBe('doubled 2: blocked (upstream-failed: parsed 2)\n')

      const why = await cli(env, ['why', 'doubled', '2'])
      expect(why.stdout).toBe(['doubled 2: blocked (upstream-failed: parsed 2)', '└─ parsed 2: failed (error: parsed 2: cannot parse "boom")', '   └─ sources 2: root row, revision 2', ''].join('\n').replace('revision 2', why.stdout.match(/revision (\d+)/)![0]))
      const whyJson = JSON.parse((await cli(env, ['why', 'doubled', '2', '--json'])).stdout)
      expect(whyJson).toMatchObject({ kind: 'derived', table: 'doubled', state: 'blocked', inputs: [{ kind: 'derived', table: 'parsed', state: 'failed', inputs: [{ kind: 'root', table: 'sources', key: 2 }] }] })
      expect(whyJson.inputs[0].inputs[0].revision).toBeGreaterThan(0)

      const affected = await cli(env, ['affected', 'sources', '1', '--json'])
      expect(JSON.parse(affected.stdout).map((r: { table: string }) => r.table)).toEqual(['parsed', 'doubled'])

      const mermaid = await cli(env, ['graph'])
      expect(mermaid.stdout).toContain('t0_sources[("sources<br>3 rows")]')
      expect(mermaid.stdout).toContain('t1_parsed["parsed<br>2 ok, 1 failed<br>0 stale, 0 missing"]')
      const dot = await cli(env, ['graph', '--format', 'dot'])
      expect(dot.stdout).toContain('"doubled" [shape=box, label="doubled\\n2 ok, 1 blocked\\n0 stale, 0 missing"];')
      const svg = await cli(env, ['graph', '--format', 'svg'])
      expect(svg.code).toBe(0)
      expect(svg.stdout).toMatch(/<svg[\s\S]*doubled[\s\S]*<\/svg>\s*$/)
      const json = JSON.parse((await cli(env, ['graph', '--json'])).stdout)
      expect(json.order).toEqual(['sources', 'parsed', 'doubled'])
      expect(json.counts).toContainEqual({ table: 'sources', kind: 'root', rows: 3 })

      // A root row changes: stale shows it with its cause; refresh --table brings doubled up to date.
      await sql`update sources set text = 'one two three four' where id = 1`.execute(tg!.db)
      const stale = await cli(env, ['stale'])
      expect(stale.stdout).toMatch(/^parsed: 1 stale\ndoubled: 1 stale\n\nparsed 1: stale \(input-changed: sources 1 \(revision \d+ -> \d+\)\)\ndoubled 1: stale \(upstream-stale: parsed 1\)\n$/)
      const one = await cli(env, ['refresh', '--table', 'doubled'])
      expect(one.code).toBe(0)
      expect(one.stdout).toMatch(/^doubled: 1 computed\ndone in/)
      expect(one.stderr).toMatch(/^doubled \(1\/1\): 0\/1 rows/m)
      expect(JSON.parse((await cli(env, ['status', 'doubled', '1', '--json'])).stdout).state).toBe('fresh')
    })

    it('Ctrl-C stops refresh after the current row, keeping what was stored (exit 130)', async (ctx) => {
      if (skip) return ctx.skip()
      const env = tg!.env
      await insertRows(tg!.db, sources, Array.from({ length: 20 }, (_, i) => ({ id: 100 + i, text: `w ${i}` })))
      await cli(env, ['refresh', '--table', 'parsed'])
      let sent = false
      // Interrupted as the second call returns (its row may be stored or not: the report must
      // say which), so at least the first row was stored and most are left.
      const r = await cli({ ...env, LQ_CLI_SLOW_MS: '150', LQ_CLI_TELL: '1' }, ['refresh', '--table', 'doubled'], {
        onStderr: (text, kill) => {
          if (!sent && (text.match(/\[call returned\]/g) ?? []).length >= 2) {
            sent = true
            kill('SIGINT')
          }
        },
      })
      expect(r.stderr).toContain('stopping after the current batch')
      expect(r.code).toBe(130)
      // The 20 new rows (and any row still stale from the first test) were to do.
      const total = Number(/: 0\/(\d+) rows/.exec(r.stderr)?.[1])
      expect(total).toBeGreaterThanOrEqual(20)
      const done = Number(/^doubled: (\d+) computed/.exec(r.stdout)?.[1])
      expect(done).toBeGreaterThan(0)
      expect(done).toBeLessThan(20)
      expect(r.stdout).toMatch(/interrupted after/)
      // What was computed stays stored: only the rest is still to do.
      const left = JSON.parse((await cli(env, ['stale', 'doubled', '--json'])).stdout)
      expect(left.rows.length).toBe(total - done)
    })

    it('Ctrl-C stops a full refresh after the batch in progress (exit 130), keeping stored batches', async (ctx) => {
      if (skip) return ctx.skip()
      // Needs store.refresh({ signal }) (the engine's abort support); skipped on a library without it.
      const probe = await openStore(tg!.db)
      const aborted = await probe.refresh({ signal: AbortSignal.abort() } as Parameters<typeof probe.refresh>[0]).then(() => false, () => true)
      if (!aborted) return ctx.skip()
      const env = { ...tg!.env, LQ_CLI_BATCH: '5', LQ_CLI_SLOW_MS: '200' }
      await insertRows(tg!.db, sources, Array.from({ length: 30 }, (_, i) => ({ id: 200 + i, text: `v ${i}` })))
      const todo = async (): Promise<number> => JSON.parse((await cli({ ...env, LQ_CLI_SLOW_MS: '0' }, ['stale', 'doubled', '--json'])).stdout).rows.length
      const before = await todo() // the 30 new rows, and what the previous test left to do
      let sent = false
      const r = await cli(env, ['refresh'], {
        onStderr: (text, kill) => {
          if (!sent && /doubled \(2\/2\): 0\/\d+ rows/.test(text)) {
            sent = true
            setTimeout(() => kill('SIGINT'), 300)
          }
        },
      })
      expect(r.stderr).toContain('stopping after the current batch')
      expect(r.code).toBe(130)
      expect(r.stdout).toMatch(/^parsed: 30 computed\ndoubled: \d+ computed\ninterrupted after/)
      const done = Number(/doubled: (\d+) computed/.exec(r.stdout)?.[1])
      expect(done).toBeGreaterThan(0)
      expect(done).toBeLessThan(before)
      expect(done % 5).toBe(0) // whole batches
      expect(await todo()).toBe(before - done)
    })

    it('watch: a worker computes a root write as it happens and stops on SIGTERM after its batch (exit 0)', async (ctx) => {
      if (skip) return ctx.skip()
      let kill: ((s: NodeJS.Signals) => void) | undefined
      const running = cli(tg!.env, ['watch', '--debounce', '0'], {
        onStderr: (_text, k) => {
          kill = k
        },
      })
      // The worker says it is watching (stderr); then a root write, computed without a refresh.
      for (let i = 0; i < 600 && kill === undefined; i++) await new Promise((res) => setTimeout(res, 100))
      await insertRows(tg!.db, sources, [{ id: 900, text: 'one two three four' }])
      const words = async () => Number((await sql<{ words: unknown }>`SELECT words FROM parsed WHERE lq_key = '900'`.execute(tg!.db)).rows[0]?.words)
      for (let i = 0; i < 600 && (await words()) !== 4; i++) await new Promise((res) => setTimeout(res, 100))
      kill!('SIGTERM')
      const r = await running
      expect(r.code).toBe(0)
      expect(r.stdout).toBe('stopped\n')
      expect(r.stderr).toContain('stopping after the current batch')
      expect(await words()).toBe(4)
    })

    it('errors: an unknown table is exit 1 with the library message; bad usage is exit 2', async (ctx) => {
      if (skip) return ctx.skip()
      const r = await cli(tg!.env, ['status', 'nope', '1'])
      expect(r.code).toBe(1)
      expect(r.stderr).toBe('error: store.status: `nope` is not a derived table of this store; derived tables: parsed, doubled\n')
      const u = await cli(tg!.env, ['graph', '--format', 'png'])
      expect(u.code).toBe(2)
      expect(u.stderr).toContain("error: option '-f, --format <format>' argument 'png' is invalid. Allowed choices are mermaid, dot, svg.")
      const c = await promisify(execFile)(process.execPath, [bin, '--config', join(root, 'nope.config.mjs'), 'stale']).then(() => undefined, (e: { code: number; stderr: string }) => e)
      expect(c?.code).toBe(1)
      expect(c?.stderr).toMatch(/^error: config module .*nope\.config\.mjs does not exist/)
    })
  })
}
