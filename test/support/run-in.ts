/** Running queries over tables created for one test, inside a transaction rolled back afterwards. */
import { createTable, insertRows, run, type AnyQuery, type table } from '../../src/index.js'
import type { TestDb } from './db.js'

type AnyTable = ReturnType<typeof table<string, any>>
class Rollback extends Error {}

/**
 * Create `tables` with the rows of `data` (by table name), run every query of `qs` and return
 * their rows; nothing stays in the database.
 */
export async function runIn(tdb: TestDb, tables: readonly AnyTable[], data: Readonly<Record<string, readonly Record<string, unknown>[]>>, qs: readonly AnyQuery[]): Promise<unknown[][]> {
  let out: unknown[][] = []
  await tdb.db
    .transaction()
    .execute(async (trx) => {
      for (const tb of tables) {
        await createTable(trx, tb)
        await insertRows(trx, tb, [...(data[tb.name] ?? [])])
      }
      out = []
      for (const q of qs) out.push(await run(trx, q))
      throw new Rollback()
    })
    .catch((e: unknown) => {
      if (!(e instanceof Rollback)) throw e
    })
  return out
}
