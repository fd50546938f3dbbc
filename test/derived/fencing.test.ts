/**
 * Two workers (two stores, two owners) on one database, with a lease that expires while the
 * first worker's function still runs: the second takes the row over after the expiry, computes
 * and stores it; the first worker's late result is refused at write time (fencing, counted as
 * superseded), whatever order the two finish in; the stored row is the second's.
 */
import * as t from 'io-ts'
import { sql, type Kysely } from 'kysely'
import { expect, it } from 'vitest'
import { createTable, insertRows } from '../../src/query/ddl.js'
import { table } from '../../src/query/dsl.js'
import { openStore } from '../../src/derived/index.js'
import { claimDialects } from '../../src/derived/sql/claims.js'
import { eachDialect } from '../support/db.js'

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** Every claim of `owner` (claim rows and ranges) expired now, as if its heartbeats had stopped. */
async function expireClaims(db: Kysely<any>, owner: string): Promise<void> {
  await sql`UPDATE lq_claim SET expires = 0 WHERE owner = ${owner}`.execute(db)
  await sql`UPDATE lq_claim_range SET expires = 0 WHERE owner = ${owner}`.execute(db)
}
let n = 0
const srcTable = (name: string) => table(name, { id: t.Int, v: t.Int })

/**
 * Two workers (stores with a 600 ms lease) of one code version (`version`, and the same function
 * text) deriving `<src>_out` (y = 2v, by = the worker): worker `a`'s calls are held until
 * `releaseA()`; `aStarted()` counts the calls of `a` that started.
 */
function gatedWorkers(db: Kysely<any>, src: ReturnType<typeof srcTable>) {
  let releaseA!: () => void
  const gateA = new Promise<void>((r) => (releaseA = r))
  let aStarted = 0
  const declare = async (who: 'a' | 'b') => {
    const store = await openStore(db, { leaseMs: 600 })
    await store.track(src)
    const out = store.derive({
      name: `${src.name}_out`,
      from: src,
      output: { y: t.Int, by: t.string },
      version: 'fence',
      params: {},
      fn: async (r, ctx) => {
        const me = (ctx.params as { who?: string } | undefined)?.who ?? who
        if (me === 'a') {
          aStarted++
          await gateA
        }
        return { y: r.v * 2, by: me }
      },
    })
    return { store, out }
  }
  return { declare, releaseA: () => releaseA(), aStarted: () => aStarted }
}

eachDialect('leases expiring mid-computation', (get) => {
  it('a worker whose lease expired mid-call loses the row to another worker; its late result is fenced off', async () => {
    const { db } = get()
    const src = srcTable(`f${++n}`)
    await createTable(db, src)
    await insertRows(db, src, [{ id: 1, v: 5 }])
    const { declare, releaseA, aStarted } = gatedWorkers(db, src)
    // Worker A's call is held until worker B took its row over.
    const A = await declare('a')
    const B = await declare('b')
    const ra = A.store.refresh()
    while (aStarted() === 0) await sleep(10)
    // B finds the row held by A: its refresh waits while A's lease is live.
    const rb = B.store.refresh()
    await sleep(300)
    expect((await B.store.status(B.out, 1)).state).toBe('running')
    // A's lease runs out (as if its heartbeats had stopped: its claim row is expired again and
    // again, faster than its heartbeat extends it) until B took the row over and stored it.
    let bDone = false
    const repBp = rb.finally(() => (bDone = true))
    while (!bDone) {
      await expireClaims(db, A.store.owner)
      await sleep(10)
    }
    const repB = await repBp
    expect(repB.totals.computed).toBe(1)
    releaseA()
    const repA = await ra
    expect(repA.totals.computed).toBe(0)
    expect(repA.totals.superseded).toBe(1)
    const rows = await sql<{ y: unknown; by: string }>`SELECT y, by FROM ${sql.id(`${src.name}_out`)}`.execute(db)
    expect(rows.rows.map((r) => [Number(r.y), r.by])).toEqual([[10, 'b']])
    expect((await B.store.status(B.out, 1)).state).toBe('fresh')
  }, 120_000)
})

eachDialect('leases expiring mid-computation, one row of a batch taken over', (get) => {
  it("a batch whose lease lost one of its rows to another worker stores the others and refuses that one (a fence over every key of the lease)", async () => {
    const { db } = get()
    const src = srcTable(`g${++n}`)
    await createTable(db, src)
    await insertRows(db, src, [1, 2, 3, 4].map((id) => ({ id, v: id })))
    const { declare, releaseA, aStarted } = gatedWorkers(db, src)
    const A = await declare('a')
    const B = await declare('b')
    // One batch of A holds the 4 rows (one lease, one token).
    const ra = A.store.refresh()
    while (aStarted() < 4) await sleep(10)
    const heldByA = (await claimDialects[get().dialect].held(db)).filter((c) => c.owner === A.store.owner)
    expect(new Set(heldByA.map((c) => c.token)).size).toBe(1)
    // B demands row 3 only: it takes that row over once A's lease ran out.
    let bDone = false
    const gb = B.store.get(B.out, 3).finally(() => (bDone = true))
    while (!bDone) {
      await expireClaims(db, A.store.owner)
      await sleep(10)
    }
    expect((await gb).state).toBe('fresh')
    releaseA()
    const repA = await ra
    expect(repA.totals.computed).toBe(3)
    expect(repA.totals.superseded).toBe(1)
    const rows = await sql<{ lq_key: string; y: unknown; by: string }>`SELECT lq_key, y, by FROM ${sql.id(`${src.name}_out`)} ORDER BY lq_key`.execute(db)
    expect(rows.rows.map((r) => [r.lq_key, Number(r.y), r.by])).toEqual([['1', 2, 'a'], ['2', 4, 'a'], ['3', 6, 'b'], ['4', 8, 'a']])
    // Nothing left in the claim table: A's fence deleted its three rows by token, B's write its own.
    const left = await sql<{ n: unknown }>`SELECT (SELECT count(*) FROM lq_claim WHERE tbl = ${`${src.name}_out`}) + (SELECT count(*) FROM lq_claim_range WHERE tbl = ${`${src.name}_out`}) AS n`.execute(db)
    expect(Number(left.rows[0]!.n)).toBe(0)
  }, 120_000)
})
