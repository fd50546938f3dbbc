/**
 * The CLI's config module: a JavaScript module (`.mjs`/`.js`; a `.ts` file only when the CLI
 * runs under a TypeScript loader such as tsx) that exports
 *
 * - `db`: the Kysely instance (SQLite or PostgreSQL), or a function returning it (maybe async);
 * - `declare(store)`: tracks the root tables and declares the derived tables on the store the
 *   CLI opens (`await store.track(sources); store.derive({...})`), maybe async;
 * - optionally `storeOptions`: the options of `openStore(db, storeOptions)`;
 * - optionally `queries`: named queries the explorer runs with lineage, each a query or a
 *   function returning one (called after `declare`, so it can use the tables `declare` made).
 *
 * Default file: `lineage-query.config.mjs` in the current folder; `--config <file>` or the
 * environment variable `LINEAGE_QUERY_CONFIG` name another. See docs/cli.md.
 */
import { existsSync } from 'node:fs'
import { resolve } from 'node:path'
import { pathToFileURL } from 'node:url'
import type { Kysely } from 'kysely'
import { LineageQueryError, showValue } from '../errors.js'
import { openStore, Store, type StoreOptions } from '../derived/index.js'
import type { Query } from '../query/dsl.js'

export const DEFAULT_CONFIG = 'lineage-query.config.mjs'

export interface Opened {
  readonly db: Kysely<any>
  readonly store: Store
  readonly file: string
  /** The module's `queries` export (empty when it has none). */
  readonly queries: Readonly<Record<string, Query<any, any> | (() => Query<any, any>)>>
}

/** Import the config module, open the store on its `db`, and run its `declare`. */
export async function openConfig(file: string | undefined): Promise<Opened> {
  const path = resolve(file ?? process.env['LINEAGE_QUERY_CONFIG'] ?? DEFAULT_CONFIG)
  if (!existsSync(path)) {
    throw new LineageQueryError('argument', `config module ${path} does not exist; write one (see docs/cli.md: it exports \`db\` and \`declare(store)\`) or name it with --config <file>`)
  }
  let mod: Record<string, unknown>
  try {
    mod = (await import(pathToFileURL(path).href)) as Record<string, unknown>
  } catch (e) {
    throw new LineageQueryError('argument', `config module ${path} failed to load: ${e instanceof Error ? e.message : String(e)}`, { file: path }, { cause: e })
  }
  const exported = mod['db'] ?? (mod['default'] as Record<string, unknown> | undefined)?.['db']
  const db = (typeof exported === 'function' ? await (exported as () => unknown)() : exported) as Kysely<any> | undefined
  if (db === undefined || db === null || typeof (db as { executeQuery?: unknown }).executeQuery !== 'function') {
    throw new LineageQueryError('argument', `config module ${path}: \`db\` must be a Kysely instance (or a function returning one), got ${db === undefined ? 'no `db` export' : showValue(db)}`)
  }
  const declare = mod['declare'] ?? (mod['default'] as Record<string, unknown> | undefined)?.['declare']
  if (typeof declare !== 'function') {
    await db.destroy()
    throw new LineageQueryError('argument', `config module ${path}: \`declare(store)\` must be a function that tracks the root tables and declares the derived tables, got ${declare === undefined ? 'no `declare` export' : showValue(declare)}`)
  }
  const storeOptions = (mod['storeOptions'] ?? {}) as StoreOptions
  try {
    const store = await openStore(db, storeOptions)
    await (declare as (s: Store) => unknown)(store)
    const queries = (mod['queries'] ?? (mod['default'] as Record<string, unknown> | undefined)?.['queries'] ?? {}) as Record<string, unknown>
    if (typeof queries !== 'object' || queries === null || Array.isArray(queries)) {
      throw new LineageQueryError('argument', `config module ${path}: \`queries\` must be an object of named queries (a query, or a function returning one), got ${showValue(queries)}`)
    }
    for (const [name, q] of Object.entries(queries)) {
      if (typeof q !== 'function' && (typeof q !== 'object' || q === null)) throw new LineageQueryError('argument', `config module ${path}: queries.${name} must be a query (Q.for(...)) or a function returning one, got ${showValue(q)}`)
    }
    return { db, store, file: path, queries: queries as Opened['queries'] }
  } catch (e) {
    await db.destroy().catch(() => undefined)
    throw e
  }
}
