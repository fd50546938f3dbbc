/**
 * Claim rows that vanish while their batch computes: deleted from outside, swept by `collect`
 * after the lease expired, or (PostgreSQL) lost in a server crash with the lease statements'
 * asynchronous commits. The batch's write is refused by the fence, and since no other worker
 * holds those rows, nobody else computes them: they are stored under a new claim by the same
 * refresh when computed from their current inputs (counted once, as computed), else left behind
 * and computed again, and the watermark does not pass them. Also when the refused rows were the
 * ones another call of the same store waited for, and (the pass over rows left behind) when a
 * late row of a join stored by the first pass no longer exists in the current input.
 */
import * as t from 'io-ts'
import { sql, type Kysely } from 'kysely'
import { expect, it } from 'vitest'
import { createTable, insertRows } from '../../src/query/ddl.js'
import { table } from '../../src/query/dsl.js'
import { openStore } from '../../src/derived/index.js'
import { eachDialect } from '../support/db.js'
import { holdable } from './support/holdable.js'
import { joinWorkers } from './support/join-workers.js'

let n = 0

/** A root `lost<n>` with rows 1..3 (v = id) and a store (one-hour lease: no heartbeat runs) deriving `lost<n>_out` (y = 10v), whose calls pass `gate`. */
async function setup(db: Kysely<any>) {
  const src = table(`lost${++n}`, { id: t.Int, v: t.Int })
  await createTable(db, src)
  await insertRows(db, src, [{ id: 1, v: 1 }, { id: 2, v: 2 }, { id: 3, v: 3 }])
  const store = await openStore(db, { leaseMs: 3_600_000 })
  await store.track(src)
  const gate = holdable()
  const name = `${src.name}_out`
  const out = store.derive({
    name,
    from: src,
    output: { y: t.Int },
    version: 'l1',
    fn: async (r) => {
      await gate.pass()
      return { y: r.v * 10 }
    },
  })
  const rows = async () => (await sql<{ k: string; y: unknown }>`SELECT lq_key AS k, y FROM ${sql.id(name)} ORDER BY lq_key`.execute(db)).rows.map((x) => [x.k, Number(x.y)])
  return { src, store, out, gate, name, rows }
}

/** Delete the claims of derived table `name` (or of every table) from outside: per-key claim rows and range claims (a SQLite first fill's pages). */
async function deleteClaims(db: Kysely<any>, name?: string): Promise<void> {
  for (const t of ['lq_claim', 'lq_claim_range']) await (name === undefined ? sql`DELETE FROM ${sql.id(t)}` : sql`DELETE FROM ${sql.id(t)} WHERE tbl = ${name}`).execute(db)
}

const ALL = [
  ['1', 10],
  ['2', 20],
  ['3', 30],
]

eachDialect('claim rows lost while their batch computes', (get) => {
  it('rows whose claim rows were deleted while they computed are stored by the same refresh', async () => {
    const { db } = get()
    const { store, gate, name, rows } = await setup(db)
    gate.hold()
    const r = store.refresh()
    await gate.held
    await deleteClaims(db, name)
    gate.release()
    // The batch was refused (its claims gone), then stored under a new claim: counted once, as
    // computed (it was counted as superseded too before).
    expect((await r).tables[name]).toMatchObject({ computed: 3, superseded: 0 })
    expect(await rows()).toEqual(ALL)
    expect(await store.stale()).toEqual([])
    expect((await store.refresh()).tables[name]).toMatchObject({ computed: 0 })
    expect(await rows()).toEqual(ALL)
  }, 60_000)

  it('rows whose expired claims collect swept while they computed are stored by the same refresh', async () => {
    const { db } = get()
    const { store, gate, name, rows } = await setup(db)
    gate.hold()
    const r = store.refresh()
    await gate.held
    // The lease ran out long ago (as if the heartbeats had stopped), and collect swept the claims.
    await sql`UPDATE lq_claim SET expires = 0 WHERE tbl = ${name}`.execute(db)
    await sql`UPDATE lq_claim_range SET expires = 0 WHERE tbl = ${name}`.execute(db)
    // Three claim rows, or (a SQLite first fill's page) one range row.
    expect((await store.collect({ olderThan: 0 })).claims).toBeGreaterThan(0)
    expect(Number((await sql<{ n: unknown }>`SELECT (SELECT count(*) FROM lq_claim WHERE tbl = ${name}) + (SELECT count(*) FROM lq_claim_range WHERE tbl = ${name}) AS n`.execute(db)).rows[0]!.n)).toBe(0)
    gate.release()
    expect((await r).tables[name]).toMatchObject({ computed: 3, superseded: 0 })
    expect(await rows()).toEqual(ALL)
    expect(await store.stale()).toEqual([])
  }, 60_000)

  it('a watch wave whose claim rows vanished while it computed leaves the rows to a later wave, which stores them', async () => {
    const { db } = get()
    const { store, gate, rows } = await setup(db)
    gate.hold()
    const w = store.watch({ pollMs: 20 })
    await gate.held
    await deleteClaims(db)
    gate.release()
    for (const t0 = Date.now(); Date.now() - t0 < 10_000 && (await rows()).length < ALL.length; ) await new Promise((res) => setTimeout(res, 20))
    await w.stop()
    expect(await rows()).toEqual(ALL)
    expect(await store.stale()).toEqual([])
  }, 60_000)

  it('a refresh that waited for another call of its store whose claim rows vanished returns with those rows stored', async () => {
    const { db } = get()
    const { store, gate, name, rows } = await setup(db)
    gate.hold()
    const first = store.refresh()
    await gate.held
    // The second call finds the rows in flight in the first one and waits for it.
    const second = store.refresh()
    await new Promise((res) => setTimeout(res, 100))
    await deleteClaims(db, name)
    gate.release()
    await second
    expect(await rows()).toEqual(ALL)
    await first
    expect(await rows()).toEqual(ALL)
    expect(await store.stale()).toEqual([])
  }, 60_000)

  it('a join row computed from an input that changed meanwhile is refused once another worker moved the watermark past its evaluation, and nothing is left stale', async () => {
    const { db } = get()
    const gate = holdable()
    // Two workers; A's call for the pair (d 0, e 0) is held.
    const { d, e, name, A, B } = await joinWorkers(db, 'l', (who, key) => (who === 'A' && key === 0 ? gate.pass() : undefined))
    gate.hold()
    const ra = A.refresh()
    await gate.held
    // The pair (d 0, e 0) no longer joins; A's leases run out and B takes (d 1, e 0) over.
    await sql`UPDATE ${sql.id(d.name)} SET v = 0 WHERE id = 0`.execute(db)
    await sql`UPDATE lq_claim SET expires = 0 WHERE owner = ${A.owner}`.execute(db)
    await B.refresh()
    gate.release()
    const ar = await ra
    // A's late (d 0, e 0) result is refused (B's refresh moved the watermark past A's evaluation
    // and d 0 changed since), and its own fence refused (d 1, e 0), left behind and looked at again.
    expect(ar.tables[name]!.superseded).toBeGreaterThanOrEqual(1)
    const keys = (await sql<{ k: string }>`SELECT lq_key AS k FROM ${sql.id(name)}`.execute(db)).rows.map((x) => x.k)
    expect(keys).not.toContain(JSON.stringify([[d.name, 0], [e.name, 0]]))
    expect(await B.stale(name)).toEqual([])
    await B.refresh()
    const got = (await sql<{ k: string; n: unknown }>`SELECT lq_key AS k, n FROM ${sql.id(name)}`.execute(db)).rows.map((x) => [x.k, Number(x.n)])
    expect(got).toEqual([[JSON.stringify([[d.name, 1], [e.name, 0]]), 17]])
    expect(await A.stale()).toEqual([])
  }, 60_000)

  it('a join row stored late while another worker\'s pass runs is deleted by that pass before its watermark moves, with the rows another worker held when the fence refused them', async () => {
    const { db } = get()
    const gateA = holdable()
    const gateB = holdable()
    // Two workers: A's call for the pair (d 0, e 0) is held; B's call for (d 1, e 0) is held.
    const { d, e, name, A, B } = await joinWorkers(db, 'm', (who, key) => (who === 'A' && key === 0 ? gateA.pass() : who === 'B' && key === 1 ? gateB.pass() : undefined))
    gateA.hold()
    gateB.hold()
    const ra = A.refresh()
    await gateA.held
    // The pair (d 0, e 0) no longer joins; A's leases run out and B takes (d 1, e 0) over, and holds it.
    await sql`UPDATE ${sql.id(d.name)} SET v = 0 WHERE id = 0`.execute(db)
    await sql`UPDATE lq_claim SET expires = 0 WHERE owner = ${A.owner}`.execute(db)
    const rb = B.refresh()
    await gateB.held
    // A stores its late (d 0, e 0) row; its fence refuses (d 1, e 0), which B holds live: left
    // behind, waited for, then looked at again by key once B stored it.
    gateA.release()
    await new Promise((res) => setTimeout(res, 200))
    gateB.release()
    await rb
    await ra
    // B's pass scanned after the change and was still running when A stored its late row: before
    // its watermark moves it looks at the rows stored since its scan from earlier evaluations
    // (`lateStored`) and deletes that one (the pair no longer joins). Before that look, the row
    // stayed (listed stale) until a later refresh.
    const keys = (await sql<{ k: string }>`SELECT lq_key AS k FROM ${sql.id(name)}`.execute(db)).rows.map((x) => x.k)
    expect(keys).not.toContain(JSON.stringify([[d.name, 0], [e.name, 0]]))
    expect(await B.stale(name)).toEqual([])
    await B.refresh()
    const got = (await sql<{ k: string; n: unknown }>`SELECT lq_key AS k, n FROM ${sql.id(name)}`.execute(db)).rows.map((x) => [x.k, Number(x.n)])
    expect(got).toEqual([[JSON.stringify([[d.name, 1], [e.name, 0]]), 17]])
    expect(await A.stale()).toEqual([])
  }, 60_000)
})
