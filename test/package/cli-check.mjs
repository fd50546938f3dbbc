// The lineage-query binary from the packed tarball (called by check-package.sh with the
// consumer project's folder): the config module test/cli/fixture.config.mjs, copied into the
// consumer so that it imports the installed 'lineage-query', against a SQLite file and a
// PostgreSQL schema (LQ_PG_URL, default postgres://postgres@127.0.0.1:5432/test).
import { execFileSync, spawn, spawnSync } from 'node:child_process'
import { copyFileSync, rmSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const consumer = process.argv[2]
if (!consumer) throw new Error('usage: node cli-check.mjs <consumer folder>')
const here = dirname(fileURLToPath(import.meta.url))
copyFileSync(join(here, '..', 'cli', 'fixture.config.mjs'), join(consumer, 'lineage-query.config.mjs'))
const pgUrl = process.env.LQ_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test'
const bin = join(consumer, 'node_modules', '.bin', 'lineage-query')

// Seeds (and for PostgreSQL creates and later drops the schema) with the installed package.
writeFileSync(
  join(consumer, 'cli-seed.mjs'),
  `import { createTable, insertRows } from 'lineage-query'
import { db, sources } from './lineage-query.config.mjs'
const k = await db()
await createTable(k, sources)
await insertRows(k, sources, [{ id: 1, text: 'a b c' }, { id: 2, text: 'boom' }, { id: 3, text: 'hello world' }])
await k.destroy()
`,
)
writeFileSync(
  join(consumer, 'cli-schema.mjs'),
  `import pg from 'pg'
const c = new pg.Client({ connectionString: process.env.LQ_CLI_PG_URL })
await c.connect()
await c.query(process.argv[2] === 'create' ? 'create schema "' + process.env.LQ_CLI_PG_SCHEMA + '"' : 'drop schema if exists "' + process.env.LQ_CLI_PG_SCHEMA + '" cascade')
await c.end()
`,
)

let failures = 0
function check(what, ok, detail) {
  console.log(`${ok ? 'ok  ' : 'FAIL'} ${what}`)
  if (!ok) {
    failures += 1
    console.log(detail)
  }
}

for (const dialect of ['sqlite', 'postgres']) {
  const env = { ...process.env }
  delete env.LQ_CLI_LIB
  let cleanup = () => {}
  if (dialect === 'sqlite') {
    env.LQ_CLI_SQLITE = join(consumer, 'cli.db')
    rmSync(env.LQ_CLI_SQLITE, { force: true })
  } else {
    delete env.LQ_CLI_SQLITE
    env.LQ_CLI_PG_URL = pgUrl
    env.LQ_CLI_PG_SCHEMA = `lq_test_${Date.now().toString(36)}_pkgcli`
    execFileSync(process.execPath, ['cli-schema.mjs', 'create'], { cwd: consumer, env, stdio: 'inherit' })
    cleanup = () => execFileSync(process.execPath, ['cli-schema.mjs', 'drop'], { cwd: consumer, env, stdio: 'inherit' })
  }
  try {
    execFileSync(process.execPath, ['cli-seed.mjs'], { cwd: consumer, env, stdio: 'inherit' })
    const run = (...args) => spawnSync(bin, args, { cwd: consumer, env, encoding: 'utf8' })
    const refresh = run('refresh')
    check(`[${dialect}] refresh`, refresh.status === 0 && /^parsed: 2 computed, 1 failed\ndoubled: 2 computed, 1 blocked\n/.test(refresh.stdout), refresh)
    const why = run('why', 'doubled', '2')
    check(`[${dialect}] why`, why.status === 0 && why.stdout.startsWith('doubled 2: blocked (upstream-failed: parsed 2)\n└─ parsed 2: failed (error: parsed 2: cannot parse "boom")\n   └─ sources 2: root row, revision '), why)
    const status = run('status', 'doubled', '1', '--json')
    check(`[${dialect}] status --json`, status.status === 0 && JSON.parse(status.stdout).state === 'fresh', status)
    const stale = run('stale', '--json')
    check(`[${dialect}] stale --json`, stale.status === 0 && JSON.parse(stale.stdout).rows.length === 0, stale)
    const affected = run('affected', 'sources', '1')
    check(`[${dialect}] affected`, affected.status === 0 && affected.stdout === 'parsed 1\ndoubled 1\n', affected)
    const svg = run('graph', '--format', 'svg')
    check(`[${dialect}] graph --format svg`, svg.status === 0 && /<svg[\s\S]*doubled[\s\S]*<\/svg>/.test(svg.stdout), { ...svg, stdout: svg.stdout.slice(0, 300) })
    const bad = run('status', 'nope', '1')
    check(`[${dialect}] unknown table: exit 1`, bad.status === 1 && bad.stderr.startsWith('error: store.status: `nope` is not a derived table'), bad)
  } finally {
    cleanup()
  }
}
// `explore` from the tarball: the server starts and serves the page, its script (copied into
// dist/ by the build) and the JSON of the tables; Ctrl-C (SIGINT) stops it with exit 0.
{
  const env = { ...process.env, LQ_CLI_SQLITE: join(consumer, 'cli.db') }
  delete env.LQ_CLI_LIB
  const child = spawn(bin, ['explore', '--port', '0'], { cwd: consumer, env })
  let out = ''
  let err = ''
  child.stdout.on('data', (c) => (out += c))
  child.stderr.on('data', (c) => (err += c))
  const exited = new Promise((resolve) => child.on('exit', (code) => resolve(code)))
  let url
  for (let i = 0; i < 300 && url === undefined && child.exitCode === null; i++) {
    await new Promise((r) => setTimeout(r, 100))
    url = /http:\/\/\S+/.exec(out)?.[0]
  }
  try {
    const page = url && (await (await fetch(url)).text())
    const script = url && (await fetch(new URL('app.js', url)))
    const tables = url && (await (await fetch(new URL('api/tables', url))).json())
    check('[sqlite] explore serves the page, its script and the tables', page?.includes('lineage-query explorer') && script?.ok && tables?.tables?.some((t) => t.name === 'doubled'), { out, err })
  } finally {
    child.kill('SIGINT')
  }
  const code = await exited
  check('[sqlite] explore stops on Ctrl-C with exit 0', code === 0, { code, out, err })
}

if (failures > 0) {
  console.error(`${failures} command line check(s) failed`)
  process.exit(1)
}
