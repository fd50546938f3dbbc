// A config module for in-process CLI tests of `explore` and `refresh --openlineage`: the
// explorer pipeline (pipeline.ts) on the SQLite file LQ_EXPLORE_SQLITE.
import Database from 'better-sqlite3'
import { Kysely, SqliteDialect } from 'kysely'
import type { Store } from '../../src/index.js'
import type { NamedQuery } from '../../src/explore/model.js'
import { declare as declarePipeline } from './pipeline.js'

export const db = () => new Kysely<any>({ dialect: new SqliteDialect({ database: new Database(process.env['LQ_EXPLORE_SQLITE']!) }) })

export const queries: Record<string, NamedQuery> = {}

export async function declare(store: Store): Promise<void> {
  const h = await declarePipeline(store)
  Object.assign(queries, h.queries)
}
