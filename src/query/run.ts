/** Placeholder: replaced by the real runner. */
import type { Kysely } from 'kysely'
import type { Plain, Query } from './dsl.js'

export async function run<T>(_db: Kysely<any>, _query: Query<T, any>): Promise<Plain<T>[]> {
  throw new Error('not implemented yet')
}
