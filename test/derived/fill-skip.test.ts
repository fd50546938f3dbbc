/**
 * Workers filling one table at once (issue 11): a first fill's page read skips the rows another
 * worker holds a live claim on, so each worker reads the pages the others have not taken
 * instead of reading every page and failing to claim it; rows skipped unseen are looked at
 * again once the other worker lets them go, stored or not. On SQLite and PostgreSQL.
 */
import * as t from 'io-ts'
import { Kysely, PostgresDialect, sql } from 'kysely'
import pg from 'pg'
import { expect, it } from 'vitest'
import { openStore } from '../../src/derived/index.js'
import { claimDialects } from '../../src/derived/sql/claims.js'
import { createTable, insertRows } from '../../src/query/ddl.js'
import { table } from '../../src/query/dsl.js'
import { eachDialect, pgUrl } from '../support/db.js'

type Store = Awaited<ReturnType<typeof openStore>>
type Src = ReturnType<typeof rootOf>
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms))
const rootOf = (name: string) => table(name, { id: t.Int, v: t.Int })

/** A root `<p>_src` of `n` rows (id = v = 1..n), created and filled. */
async function root(db: Kysely<any>, p: string, n: number): Promise<Src> {
  const src = rootOf(`${p}_src`)
  await createTable(db, src)
  await insertRows(db, src, Array.from({ length: n }, (_, i) => ({ id: i + 1, v: i + 1 })))
  return src
}

/**
 * Derived table `<p>_a` (y = 2v) over `src` in `store`, counting calls per key in `calls` and the
 * ids in call order in `order`; its tables created. `slow`: every seventh row takes 1 ms.
 */
async function deriveCounted(store: Store, p: string, src: Src, calls: Map<string, number>, order: number[] = [], slow = false): Promise<void> {
  await store.track(src)
  store.derive({
    name: `${p}_a`,
    from: src,
    output: { y: t.Int },
    version: `${p}-1`,
    fn: (r, ctx) => {
      calls.set(String(ctx.key), (calls.get(String(ctx.key)) ?? 0) + 1)
      order.push(r.id)
      const out = { y: r.v * 2 }
      return slow && r.id % 7 === 0 ? new Promise<typeof out>((res) => setTimeout(() => res(out), 1)) : out
    },
  })
  await store.stale(`${p}_a`) // creates the derived tables
}

/** A root `<p>_src` of `n` rows and one store (10 s lease) deriving `<p>_a` from it, its calls counted (`deriveCounted`). */
async function countedFill(db: Kysely<any>, p: string, n: number): Promise<{ store: Store; calls: Map<string, number>; order: number[] }> {
  const src = await root(db, p, n)
  const store = await openStore(db, { leaseMs: 10_000 })
  const calls = new Map<string, number>()
  const order: number[] = []
  await deriveCounted(store, p, src, calls, order)
  return { store, calls, order }
}

/** Every one of the `n` rows of `derived` stored right (y = 2 * key) and computed once. */
async function expectEachStoredOnce(db: Kysely<any>, derived: string, n: number, calls: Map<string, number>): Promise<void> {
  const rows = (await sql<{ lq_key: string; y: unknown }>`SELECT lq_key, y FROM ${sql.table(derived)}`.execute(db)).rows
  expect(rows.length).toBe(n)
  for (const row of rows) expect(Number(row.y)).toBe(2 * Number(row.lq_key))
  expect(calls.size).toBe(n)
  expect([...calls.entries()].filter(([, k]) => k !== 1)).toEqual([])
}

eachDialect('first-fill pages skip rows other workers hold', (get) => {
  it('a first fill reads past the rows another worker holds, claims only free rows, and computes the held ones once they are released unstored', async () => {
    const { db, dialect } = get()
    const { store, calls, order } = await countedFill(db, 'fs', 300)
    // Another worker holds rows 51..250 and lets them go without storing them (it failed).
    const d = claimDialects[dialect]
    const other = await d.claim(db, 'fs_a', Array.from({ length: 200 }, (_, i) => String(i + 51)), 'another-worker', 60_000)
    expect(other.keys.length).toBe(200)
    const release = new Promise<void>((resolve, reject) => setTimeout(() => d.release(db, 'another-worker', other.token).then(() => resolve(), reject), 1500))
    const r = await store.refresh({ batchSize: 50 })
    await release
    // Every row stored right, each computed once; the held rows after the free ones.
    await expectEachStoredOnce(db, 'fs_a', 300, calls)
    expect(order.slice(0, 100).every((id) => id <= 50 || id > 250)).toBe(true)
    // Claim statements: the 2 pages of free rows in the first pass (the first page read found
    // the other worker's claims, the next one skipped its 200 rows), then 4 batches of the
    // released rows. Reading every page and trying to claim it made 10 (four took nothing).
    expect(r.leases?.claims).toBe(6)
    expect(await d.held(db, 'fs_a')).toEqual([])
    // The watermark moved past the fill: nothing is stale, and a later write is found.
    expect(await store.stale('fs_a')).toEqual([])
    await sql`UPDATE fs_src SET v = 1000 WHERE id = 7`.execute(db)
    expect((await store.refresh()).totals.computed).toBe(1)
    expect(calls.get('7')).toBe(2)
  }, 60_000)

  it('a first fill starts at the fill frontier while another worker fills the table (PostgreSQL), and computes the rows it jumped over that are not stored, once each', async () => {
    const { db, dialect } = get()
    const { store, calls, order } = await countedFill(db, 'ff', 300)
    // Another worker took rows 1..200 (the fill frontier says so): it still holds 1..50 and let
    // 51..200 go without storing them (it stopped); it lets 1..50 go unstored later.
    const d = claimDialects[dialect]
    await sql`INSERT INTO lq_store_meta (name, value) VALUES ('fill_frontier:ff_a', '200')`.execute(db)
    const other = await d.claim(db, 'ff_a', Array.from({ length: 50 }, (_, i) => String(i + 1)), 'another-worker', 60_000)
    expect(other.keys.length).toBe(50)
    const release = new Promise<void>((resolve, reject) => setTimeout(() => d.release(db, 'another-worker', other.token).then(() => resolve(), reject), 1500))
    await store.refresh({ batchSize: 50 })
    await release
    await expectEachStoredOnce(db, 'ff_a', 300, calls)
    // PostgreSQL's page statement started at the frontier (rows 201..300 first, then the rows it
    // jumped over); SQLite's pages read from the first key, past the held rows (51..300 first).
    expect(order[0]).toBe(dialect === 'postgres' ? 201 : 51)
    if (dialect === 'postgres') expect(order.slice(0, 100).every((id) => id > 200)).toBe(true)
    else expect(order.slice(0, 250).every((id) => id > 50)).toBe(true)
    expect(await d.held(db, 'ff_a')).toEqual([])
    expect(await store.stale('ff_a')).toEqual([])
  }, 60_000)

  it('four workers filling one table at once, small batches: every row computed once and stored right, no deadlock, no claim left', async () => {
    const { db, dialect } = get()
    const src = await root(db, 'f4', 2000)
    const calls = new Map<string, number>()
    const stores: Store[] = []
    for (let w = 0; w < 4; w++) {
      const store = await openStore(db, { leaseMs: 30_000 })
      await deriveCounted(store, 'f4', src, calls, [], true)
      stores.push(store)
    }
    const reports = await Promise.all(stores.map((s) => s.refresh({ batchSize: 40, concurrency: 8 })))
    await expectEachStoredOnce(db, 'f4_a', 2000, calls)
    expect(reports.reduce((a, r) => a + r.totals.computed, 0)).toBe(2000)
    expect(await claimDialects[dialect].held(db, 'f4_a')).toEqual([])
    for (const s of stores) expect(await s.stale('f4_a')).toEqual([])
  }, 120_000)
})

eachDialect('the end of a first fill and claims taken after it', (get) => {
  it("the end of a first fill waits for the claims other workers held in the span it jumped over, not for claims taken later (another worker's new batches on stored rows)", async () => {
    const { db } = get()
    const p = 'late'
    const src = await root(db, p, 100)
    const gate = () => {
      let open!: () => void
      const p = new Promise<void>((r) => (open = r))
      return { p, open }
    }
    const [b1, b2, ga] = [gate(), gate(), gate()]
    const declare = async (who: 'a' | 'b') => {
      const store = await openStore(db, { leaseMs: 60_000 })
      await store.track(src)
      store.derive({
        name: `${p}_a`,
        from: src,
        output: { y: t.Int },
        version: `${p}-1`,
        params: {},
        fn: async (r, ctx) => {
          const me = (ctx.params as { who?: string } | undefined)?.who ?? who
          if (me === 'a') await ga.p
          else await (r.id <= 20 ? b1.p : b2.p)
          return { y: r.v * 2 }
        },
      })
      return store
    }
    const B = await declare('b')
    const A = await declare('a')
    // Keys held, by claim rows or ranges.
    const claimsOf = async (owner: string) => (await claimDialects[get().dialect].held(db, `${p}_a`)).filter((c) => c.owner === owner).length
    const until = async (what: string, ok: () => Promise<boolean>) => {
      for (const t0 = Date.now(); !(await ok()); await sleep(10)) if (Date.now() - t0 > 20_000) throw new Error(`never: ${what}`)
    }
    // B holds its first two batches (1..40); A's fill starts after them and holds its first.
    const rb = B.refresh({ batchSize: 20 })
    await until('B holds 1..40', async () => (await claimsOf(B.owner)) >= 40)
    const ra = A.refresh({ batchSize: 20 })
    await until('A holds a batch', async () => (await claimsOf(A.owner)) >= 20)
    // B stores 1..20; then another worker (C) computes row 5 again and again, in new batches
    // (as a worker does while row 5's input keeps changing).
    b1.open()
    let churn = true
    let cHeld = false
    const c = (async () => {
      while (churn) {
        if ((await claimDialects[get().dialect].claim(db, `${p}_a`, ['5'], 'worker-c', 400)).keys.length > 0) cHeld = true
        await sleep(50)
      }
      await sql`DELETE FROM lq_claim WHERE owner = 'worker-c'`.execute(db)
    })()
    try {
      await until('C holds row 5', async () => cHeld)
      // A's fill goes on to its end (waiting for B's rows 21..40 it jumped over); then B is done.
      ga.open()
      await sleep(300)
      b2.open()
      await rb
      // Once B let its rows go, A's fill ends: C's later batches are not waited for.
      const t0 = performance.now()
      const winner = await Promise.race([ra.then(() => 'done' as const), sleep(3000).then(() => 'waiting' as const)])
      expect(winner, `A's refresh still waiting ${Math.round(performance.now() - t0)} ms after B was done`).toBe('done')
    } finally {
      churn = false
      ga.open()
      b2.open()
      await c
      await Promise.allSettled([ra, rb])
    }
    const rows = await sql<{ n: unknown }>`SELECT count(*) AS n FROM ${sql.id(`${p}_a`)}`.execute(db)
    expect(Number(rows.rows[0]!.n)).toBe(100)
  }, 60_000)
})

eachDialect('the end of a first fill that jumped over other workers’ keys', (get) => {
  it("reads the span it jumped over while its own last batch computes, then waits for the others' claims and looks again by key at the rows that were not stored (PostgreSQL), never at the span twice", async (ctx) => {
    const tdb = get()
    if (tdb.label !== 'postgres (server)') return ctx.skip() // only PostgreSQL's page statements start at the fill frontier; the fill runs on a pool of its own
    const { db, dialect } = tdb
    const schema = (await sql<{ s: string }>`SELECT current_schema() AS s`.execute(db)).rows[0]!.s
    const p = 'fe'
    const src = await root(db, p, 300)
    // The fill's statements by their first words, in the order they ended.
    const started: string[] = []
    const pool = new pg.Pool({ connectionString: pgUrl, max: 4, options: `-c search_path=${schema}` })
    const logged = new Kysely<any>({ dialect: new PostgresDialect({ pool }), log: (e) => void started.push(e.query.sql.slice(0, 40)) })
    let open!: () => void
    const gate = new Promise<void>((r) => (open = r))
    const calls = new Map<string, number>()
    const store = await openStore(logged, { leaseMs: 30_000 })
    await store.track(src)
    store.derive({
      name: `${p}_a`,
      from: src,
      output: { y: t.Int },
      version: `${p}-1`,
      fn: async (r, c) => {
        calls.set(String(c.key), (calls.get(String(c.key)) ?? 0) + 1)
        // The fill's last batch (it starts at the frontier, 201) waits for the gate.
        if (r.id > 250) await gate
        return { y: r.v * 2 }
      },
    })
    await store.stale(`${p}_a`)
    // Another worker took rows 1..200 (the frontier says so): it still holds 1..50 (it stores
    // them later) and let 51..200 go unstored.
    const d = claimDialects[dialect]
    await sql`INSERT INTO lq_store_meta (name, value) VALUES (${`fill_frontier:${p}_a`}, '200')`.execute(db)
    const other = await d.claim(db, `${p}_a`, Array.from({ length: 50 }, (_, i) => String(i + 1)), 'another-worker', 60_000)
    expect(other.keys.length).toBe(50)
    const spanReads = () => started.filter((s) => s.startsWith('SELECT s.k FROM')).length
    const r = store.refresh({ batchSize: 50 })
    try {
      // The span (1..200) is read while the last batch (251..300) still waits for the gate.
      for (const t0 = Date.now(); spanReads() === 0; await sleep(10)) if (Date.now() - t0 > 20_000) throw new Error("the span was never read while the last batch computed")
      expect(calls.size).toBe(100)
      // The other worker lets its rows go unstored (it failed); this fill computes them after the wait.
      await d.release(db, 'another-worker', other.token)
      open()
      await r
      // Every row computed by this fill, once.
      const rows = (await sql<{ lq_key: string; y: unknown }>`SELECT lq_key, y FROM ${sql.table(`${p}_a`)}`.execute(db)).rows
      expect(rows.length).toBe(300)
      for (const row of rows) expect(Number(row.y)).toBe(2 * Number(row.lq_key))
      expect([...calls.values()].every((n) => n === 1)).toBe(true)
      expect(calls.size).toBe(300)
      // One read of the span; after the wait, looks by key.
      expect(spanReads()).toBe(1)
      expect(started.some((s) => s.startsWith('SELECT v.lq_key AS k FROM'))).toBe(true)
      expect(await d.held(db, `${p}_a`)).toEqual([])
      expect(await store.stale(`${p}_a`)).toEqual([])
    } finally {
      open()
      await d.release(db, 'another-worker', other.token)
      await r.catch(() => undefined)
      await logged.destroy()
    }
  }, 60_000)
})
