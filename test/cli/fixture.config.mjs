// The CLI tests' config module (docs/cli.md describes the convention). The database comes from
// the environment: LQ_CLI_SQLITE=<file>, or LQ_CLI_PG_URL and LQ_CLI_PG_SCHEMA; the library
// from LQ_CLI_LIB (the repo's dist/index.js) or, installed from the tarball, 'lineage-query'.
import * as t from 'io-ts'
import { Kysely, PostgresDialect, SqliteDialect } from 'kysely'

const lq = await import(process.env.LQ_CLI_LIB ?? 'lineage-query')

export const sources = lq.table('sources', { id: t.Int, text: t.string })

export async function db() {
  if (process.env.LQ_CLI_SQLITE) {
    const { default: Database } = await import('better-sqlite3')
    return new Kysely({ dialect: new SqliteDialect({ database: new Database(process.env.LQ_CLI_SQLITE) }) })
  }
  const { default: pg } = await import('pg')
  const pool = new pg.Pool({ connectionString: process.env.LQ_CLI_PG_URL, options: `-c search_path=${process.env.LQ_CLI_PG_SCHEMA}`, max: 2 })
  return new Kysely({ dialect: new PostgresDialect({ pool }) })
}

export async function declare(store) {
  await store.track(sources)
  const parsed = store.derive({
    name: 'parsed',
    from: sources,
    output: { words: t.number },
    fn: (s) => {
      if (s.text === 'boom') throw new Error('cannot parse "boom"')
      return { words: s.text.split(' ').length }
    },
  })
  // LQ_CLI_SLOW_MS: each call waits that long (the Ctrl-C test); LQ_CLI_TELL: each call then
  // says so on stderr (the test interrupts after a chosen call, not after a guessed delay).
  const slow = Number(process.env.LQ_CLI_SLOW_MS ?? 0)
  const tell = process.env.LQ_CLI_TELL === '1'
  store.derive({
    name: 'doubled',
    from: parsed,
    output: { n: t.number },
    fn: async (p) => {
      if (slow > 0) await new Promise((r) => setTimeout(r, slow))
      if (tell) process.stderr.write('[call returned]\n')
      return { n: p.words * 2 }
    },
  })
}

// LQ_CLI_BATCH: the store's batch size (the Ctrl-C test of a full refresh uses small batches).
export const storeOptions = process.env.LQ_CLI_BATCH ? { batchSize: Number(process.env.LQ_CLI_BATCH) } : {}
