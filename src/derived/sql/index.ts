/** The dialects, by name: the engine's hooks and its start hooks. */
import type { Dialect } from '../../query/dialect.js'
import type { StoreDialect } from './dialect.js'
import { postgres, postgresStartup } from './postgres.js'
import { sqlite, sqliteStartup } from './sqlite.js'
import type { StartupDialect } from './startup.js'

export const storeDialects: Readonly<Record<Dialect, StoreDialect>> = { sqlite, postgres }
export const startupDialects: Readonly<Record<Dialect, StartupDialect>> = { sqlite: sqliteStartup, postgres: postgresStartup }
