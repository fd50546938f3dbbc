/**
 * Counting the statements a Kysely instance actually executes: a plugin whose `transformResult`
 * Kysely calls once per statement the driver ran (raw `CompiledQuery`s included, which is how
 * `run` executes). Tests that claim "one statement" count with this, not with `compile`.
 */
import type { Kysely, KyselyPlugin } from 'kysely'

export interface Counted<DB> {
  /** The same database, counting. */
  readonly db: Kysely<DB>
  /** Statements executed through `db` so far. */
  readonly count: () => number
}

export function counting<DB>(db: Kysely<DB>): Counted<DB> {
  let n = 0
  const plugin: KyselyPlugin = {
    transformQuery: (args) => args.node,
    transformResult: async (args) => {
      n++
      return args.result
    },
  }
  return { db: db.withPlugin(plugin), count: () => n }
}

/** The number of statements `f` executes on `db`, and its result. */
export async function statementsOf<DB, R>(db: Kysely<DB>, f: (db: Kysely<DB>) => Promise<R>): Promise<{ statements: number; result: R }> {
  const c = counting(db)
  const result = await f(c.db)
  return { statements: c.count(), result }
}
