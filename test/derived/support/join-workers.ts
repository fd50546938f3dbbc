/**
 * The join of the late-row tests: roots `d` (rows 0 → 13, 1 → 7) and `e` (row 0 → 10), and a
 * derived table of the pairs whose values are within 3 of each other, `n = dv + ev`: the pairs
 * (d 0, e 0) and (d 1, e 0), and setting d 0's value to 0 takes the first out of the join.
 * Declared by two stores of one database, A and B (two workers), each with an hour's lease.
 * `before(who, dKey)` is awaited before each call: the worker and the call's key in `d` (a
 * test holds a call there).
 */
import * as t from 'io-ts'
import type { Kysely } from 'kysely'
import { createTable, insertRows } from '../../../src/query/ddl.js'
import { Q, table } from '../../../src/query/dsl.js'
import { openStore } from '../../../src/derived/index.js'

let n = 0

export async function joinWorkers(db: Kysely<any>, prefix: string, before: (who: 'A' | 'B', dKey: unknown) => Promise<void> | void) {
  const k = ++n
  const d = table(`${prefix}d${k}`, { id: t.Int, v: t.Int })
  const e = table(`${prefix}e${k}`, { id: t.Int, v: t.Int })
  await createTable(db, d)
  await createTable(db, e)
  await insertRows(db, d, [{ id: 0, v: 13 }, { id: 1, v: 7 }])
  await insertRows(db, e, [{ id: 0, v: 10 }])
  const name = `${prefix}j${k}`
  const declare = async (who: 'A' | 'B') => {
    const s = await openStore(db, { leaseMs: 3_600_000 })
    await s.track(d)
    await s.track(e)
    s.derive({
      name,
      from: Q.for(d, (x) => Q.for(e, (y) => Q.where(Q.le(Q.abs(Q.sub(x.v, y.v)), 3), Q.yield({ dv: x.v, ev: y.v })))),
      output: { n: t.Int },
      version: 'j1',
      fn: async (r, ctx) => {
        await before(who, ctx.lineage.find((l) => l.table === d.name)?.key)
        return { n: r.dv + r.ev }
      },
    })
    return s
  }
  return { d, e, name, A: await declare('A'), B: await declare('B') }
}
