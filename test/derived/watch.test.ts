/**
 * store.watch on a real store, on SQLite (clock polling) and PostgreSQL (LISTEN/NOTIFY from the
 * root triggers): a root write becomes a fresh derived row without a refresh; debounce computes a
 * row written 10 times once; a row a worker holds is `running` in status, with its lease, and
 * `stale()` says so; stop releases the claims; bad options are argument errors.
 */
import * as t from 'io-ts'
import { sql } from 'kysely'
import pg from 'pg'
import { beforeEach, expect, it } from 'vitest'
import { LineageQueryError } from '../../src/errors.js'
import { createTable, insertRows } from '../../src/query/ddl.js'
import { table } from '../../src/query/dsl.js'
import { openStore, type WatchEvent } from '../../src/derived/index.js'
import { eachDialect, pgUrl } from '../support/db.js'

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
let n = 0

async function until(cond: () => Promise<boolean>, ms = 60_000): Promise<void> {
  const end = Date.now() + ms
  while (!(await cond())) {
    if (Date.now() > end) throw new Error('timed out waiting')
    await sleep(20)
  }
}

eachDialect('store.watch', (get) => {
  let src: ReturnType<typeof table<string, { id: typeof t.Int; v: typeof t.Int }>>
  beforeEach(async () => {
    src = table(`w${++n}`, { id: t.Int, v: t.Int })
    await createTable(get().db, src)
    await insertRows(get().db, src, [{ id: 1, v: 1 }, { id: 2, v: 2 }])
  })

  /** A LISTEN connection on the test's schema (PostgreSQL server), else undefined (clock polling). */
  async function listener(): Promise<(() => Promise<pg.Client>) | undefined> {
    const { db, label } = get()
    if (label !== 'postgres (server)') return undefined
    const schema = (await sql<{ s: string }>`SELECT current_schema() AS s`.execute(db)).rows[0]!.s
    return async () => {
      const c = new pg.Client({ connectionString: pgUrl, options: `-c search_path=${schema}` })
      await c.connect()
      return c
    }
  }

  it('a root write becomes a fresh derived row without a refresh; stop releases the claims', async () => {
    const { db } = get()
    const store = await openStore(db)
    await store.track(src)
    const out = store.derive({ name: `${src.name}_out`, from: src, output: { y: t.Int }, fn: (r) => ({ y: r.v * 10 }) })
    const events: WatchEvent[] = []
    const listen = await listener()
    const w = store.watch({ pollMs: 20, onProgress: (e) => events.push(e), ...(listen === undefined ? {} : { listen }) })
    await until(async () => (await store.status(out, 2)).state === 'fresh')
    await sql`UPDATE ${sql.id(src.name)} SET v = 7 WHERE id = 1`.execute(db)
    // Read without computing (get would compute it itself).
    const y = async () => Number((await sql<{ y: unknown }>`SELECT y FROM ${sql.id(out.name)} WHERE lq_key = '1'`.execute(db)).rows[0]?.y)
    await until(async () => (await y()) === 70)
    await w.stop()
    expect(events.some((e) => e.kind === 'wave' && e.reason === 'root-write' && e.report.totals.computed >= 1)).toBe(true)
    expect(Number((await sql<{ n: unknown }>`SELECT (SELECT count(*) FROM lq_claim) + (SELECT count(*) FROM lq_claim_range) AS n`.execute(db)).rows[0]!.n)).toBe(0)
    expect(await store.stale()).toEqual([])
  }, 120_000)

  it('with debounce, a row written 10 times within it is computed once', async () => {
    const { db } = get()
    const store = await openStore(db)
    await store.track(src)
    let calls = 0
    const out = store.derive({
      name: `${src.name}_deb`,
      from: src,
      output: { y: t.Int },
      fn: (r, ctx) => {
        if (ctx.key === 1) calls++
        return { y: r.v }
      },
    })
    await store.refresh()
    calls = 0
    const d = 3000
    // Writes start once the watcher's first wave ran: rows written before it started watching
    // are computed at once by that wave (debounce applies to the writes it sees).
    let waves = 0
    const w = store.watch({ pollMs: 20, debounceMs: d, onProgress: (e) => void (e.kind === 'wave' && waves++) })
    await until(async () => waves > 0)
    const at: number[] = []
    for (let i = 0; i < 10; i++) {
      await sql`UPDATE ${sql.id(src.name)} SET v = v + 1 WHERE id = 1`.execute(db)
      at.push(Date.now())
      await sleep(30)
    }
    // On a loaded machine two writes may end up further apart than the debounce: each such gap
    // may let the row settle once more.
    const gaps = at.slice(1).filter((t, i) => t - at[i]! >= d / 2).length
    const y = async () => Number((await sql<{ y: unknown }>`SELECT y FROM ${sql.id(out.name)} WHERE lq_key = '1'`.execute(db)).rows[0]?.y)
    await until(async () => (await y()) === 11)
    await sleep(300)
    await w.stop()
    expect(calls).toBeGreaterThanOrEqual(1)
    expect(calls).toBeLessThanOrEqual(1 + gaps)
    expect((await store.status(out, 1)).state).toBe('fresh')
  }, 120_000)

  it('a row a worker is computing is running in status, with its lease, and stale() says who holds it', async () => {
    const { db } = get()
    const store = await openStore(db, { leaseMs: 30_000 })
    await store.track(src)
    let release!: () => void
    const gate = new Promise<void>((r) => (release = r))
    const out = store.derive({
      name: `${src.name}_run`,
      from: src,
      output: { y: t.Int },
      fn: async (r) => {
        await gate
        return { y: r.v }
      },
    })
    await store.stale()
    const refreshing = store.refresh()
    await until(async () => (await store.status(out, 1)).state === 'running')
    const st = await store.status(out, 1)
    expect(st.lease?.owner).toBe(store.owner)
    expect(st.lease!.expires).toBeGreaterThan(Date.now() - 60_000)
    const stale = await store.stale(out)
    expect(stale.every((s) => s.lease?.owner === store.owner)).toBe(true)
    // Of every table too (the live claims read once for all tables).
    const everywhere = (await store.stale()).filter((s) => s.table === out.name)
    expect(everywhere.length).toBe(stale.length)
    expect(everywhere.every((s) => s.lease?.owner === store.owner)).toBe(true)
    release()
    await refreshing
    expect((await store.status(out, 1)).state).toBe('fresh')
  }, 120_000)

  it('bad watch options are argument errors', async () => {
    const store = await openStore(get().db)
    expect(() => store.watch({ debounceMs: -1 })).toThrow(LineageQueryError)
    expect(() => store.watch({ pollMs: 0 })).toThrow(/pollMs/)
    expect(() => store.watch({ concurrency: 1.5 })).toThrow(/concurrency/)
    if (get().dialect === 'sqlite') expect(() => store.watch({ listen: async () => ({}) as never })).toThrow(/PostgreSQL/)
  })
})
