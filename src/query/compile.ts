/** Placeholder: replaced by the real pipeline (normalise -> lower -> Kysely compile). */
import type { AnyQuery } from './dsl.js'
import type { Dialect } from './dialect.js'

export interface CompiledStatement { readonly sql: string; readonly parameters: readonly unknown[] }
export interface Compiled { readonly statements: readonly CompiledStatement[] }

export function compile(_query: AnyQuery, _dialect: Dialect): Compiled {
  throw new Error('not implemented yet')
}
