/**
 * The PostgreSQL revision watermark (src/derived/dialect.ts): the pair (clock value, snapshot),
 * the snapshot stored as `pg_current_snapshot()` text in `lq_derived.wm_xmin`, and "changed since"
 * = `rev > wm.rev OR xid >= xmax OR xid = ANY(xip)`.
 *
 * - A transaction held open elsewhere (it holds the server's xmin back) does not make every scan
 *   re-read the rows written since it started.
 * - A root write that took its revision before the watermark was read and committed after it is
 *   still found (the reason xids are recorded).
 * - Watermarks stored by earlier versions (the xmin alone) are read as `xid >= xmin`.
 *
 * The tests with two concurrent connections need the PostgreSQL server (PGlite has one
 * connection); they are skipped on PGlite. The others run on the server or PGlite.
 */
import * as t from 'io-ts'
import { sql, type Kysely, type KyselyPlugin } from 'kysely'
import pg from 'pg'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { createTable, insertRows } from '../../src/query/ddl.js'
import { table } from '../../src/query/dsl.js'
import { openStore, type Store } from '../../src/derived/index.js'
import { parseSnapshot } from '../../src/derived/sql/dialect.js'
import { open, pgUrl, type TestDb } from '../support/db.js'

/**
 * A plugin counting the rows returned by every statement (`rows`), and separately by the
 * statements whose text has a "changed since the watermark" filter (`scanned`: those with an
 * `xid8` cast, which only that filter writes).
 */
function rowCounter(): { plugin: KyselyPlugin; rows: () => number; scanned: () => number; reset: () => void } {
  let rows = 0
  let scanned = 0
  const since = new Set<unknown>()
  return {
    plugin: {
      transformQuery: (a) => {
        if (JSON.stringify(a.node).includes('::xid8')) since.add(a.queryId)
        return a.node
      },
      transformResult: async (a) => {
        rows += a.result.rows.length
        if (since.delete(a.queryId)) scanned += a.result.rows.length
        return a.result
      },
    },
    rows: () => rows,
    scanned: () => scanned,
    reset: () => {
      rows = 0
      scanned = 0
    },
  }
}

const r = table('r', { id: t.Int, x: t.Int })
const unrelated = table('unrelated', { id: t.Int, v: t.Int })
const N = 400

describe('PostgreSQL revision watermark', () => {
  let tdb: TestDb
  let db: Kysely<any>
  let store: Store
  let calls: number[]
  let clients: pg.Client[]
  const counter = rowCounter()

  beforeEach(async () => {
    tdb = await open('postgres')
    db = tdb.db.withPlugin(counter.plugin)
    clients = []
    calls = []
    await createTable(db, r)
    await createTable(db, unrelated)
    await insertRows(db, r, Array.from({ length: N }, (_, i) => ({ id: i + 1, x: i + 1 })))
    store = await openStore(db)
    await store.track(r)
    store.derive({
      name: 'd',
      from: r,
      output: { n: t.Int },
      fn: (row) => {
        calls.push(row.id)
        return { n: row.x + 1 }
      },
    })
    expect((await store.refresh()).totals.computed).toBe(N)
    calls.length = 0
  })

  afterEach(async () => {
    for (const c of clients) await c.end().catch(() => undefined)
    await tdb.close()
  })

  const server = () => tdb.label === 'postgres (server)'

  /** Another connection to the test's schema. */
  async function connect(): Promise<pg.Client> {
    const schema = (await sql<{ s: string }>`SELECT current_schema() AS s`.execute(db)).rows[0]!.s
    const c = new pg.Client({ connectionString: pgUrl, options: `-c search_path=${schema}` })
    await c.connect()
    clients.push(c)
    return c
  }

  const storedWatermark = async () => (await sql<{ wm_rev: unknown; wm_xmin: string | null }>`SELECT wm_rev, wm_xmin FROM lq_derived WHERE name = 'd'`.execute(db)).rows[0]!
  const clock = async () => Number((await sql<{ rev: unknown }>`SELECT CASE WHEN is_called THEN last_value ELSE 0 END AS rev FROM lq_clock_seq`.execute(db)).rows[0]!.rev)
  const xact = async (trx: Kysely<any>) => (await sql<{ xid: string }>`SELECT pg_current_xact_id()::text AS xid`.execute(trx)).rows[0]!.xid
  const staleKeys = async () => (await store.stale()).map((s) => ({ key: s.key, state: s.state })).sort((a, b) => Number(a.key) - Number(b.key))
  const value = async (id: number) => (await sql<{ n: unknown }>`SELECT n FROM d WHERE lq_key = ${String(id)}`.execute(db)).rows[0]?.n

  it('stores the whole snapshot as pg_current_snapshot() text', async () => {
    const wm = await storedWatermark()
    expect(wm.wm_xmin).toMatch(/^\d+:\d+:(\d+(,\d+)*)?$/)
    expect(parseSnapshot(wm.wm_xmin!)).toMatchObject({ kind: 'snapshot' })
    // The clock value read when the refresh started (its own writes came after).
    expect(Number(wm.wm_rev)).toBeGreaterThan(0)
    expect(Number(wm.wm_rev)).toBeLessThan(await clock())
  })

  it('a transaction held open elsewhere does not make scans re-read rows written since it started', async (ctx) => {
    if (!server()) ctx.skip()
    // A transaction with an xid (it wrote a row of an unrelated table), left open: it holds the
    // server's xmin back for the rest of the test.
    const other = await connect()
    await other.query('BEGIN')
    await other.query('INSERT INTO unrelated (id, v) VALUES (1, 1)')
    const held = (await other.query<{ xid: string }>('SELECT pg_current_xact_id()::text AS xid')).rows[0]!.xid
    try {
      // Many root rows written (committed) after it started; a refresh processes them.
      await sql`UPDATE r SET x = x + 1000 WHERE id <= 300`.execute(db)
      expect((await store.refresh()).tables['d']).toMatchObject({ computed: 300 })
      const wm = parseSnapshot((await storedWatermark()).wm_xmin!)
      expect(wm).toMatchObject({ kind: 'snapshot' })
      expect(wm?.kind === 'snapshot' && wm.xip).toContain(held)
      calls.length = 0
      // One more root row changes: the scan reads that row only, not the 300 written since the
      // held transaction's xmin.
      await sql`UPDATE r SET x = -1 WHERE id = 350`.execute(db)
      counter.reset()
      expect(await staleKeys()).toEqual([{ key: 350, state: 'stale' }])
      expect(counter.scanned()).toBe(1)
      expect(counter.rows()).toBeLessThan(10)
      counter.reset()
      expect((await store.refresh()).tables['d']).toMatchObject({ computed: 1 })
      expect(counter.scanned()).toBe(1)
      expect(counter.rows()).toBeLessThan(20)
      expect(calls).toEqual([350])
      expect(Number(await value(350))).toBe(0)
      // Nothing left: the scan reads nothing.
      counter.reset()
      expect(await store.stale()).toEqual([])
      expect(counter.scanned()).toBe(0)
    } finally {
      await other.query('ROLLBACK')
    }
  })

  it('a root write that took its revision before the watermark and committed after it is found by the next refresh', async (ctx) => {
    if (!server()) ctx.skip()
    const other = await connect()
    await other.query('BEGIN')
    await other.query('UPDATE r SET x = 1000 WHERE id = 7') // its revision is taken now
    const lateRev = Number((await sql<{ rev: unknown }>`SELECT rev FROM lq_rev_r WHERE lq_key = '7'`.execute(db)).rows[0]!.rev) // (the committed one)
    let committed = false
    try {
      await sql`UPDATE r SET x = 2000 WHERE id = 8`.execute(db) // a later revision, committed now
      expect((await store.refresh()).tables['d']).toMatchObject({ computed: 1 })
      expect(calls).toEqual([8])
      // The watermark is past the uncommitted write's revision; its transaction is in the
      // snapshot's in-progress list.
      const wm = await storedWatermark()
      expect(Number(wm.wm_rev)).toBeGreaterThan(lateRev)
      const pending = (await other.query<{ rev: string; xid: string }>(`SELECT rev::text AS rev, xid::text AS xid FROM lq_rev_r WHERE lq_key = '7'`)).rows[0]!
      expect(Number(pending.rev)).toBeLessThan(Number(wm.wm_rev))
      const snap = parseSnapshot(wm.wm_xmin!)
      expect(snap?.kind === 'snapshot' && snap.xip).toContain(pending.xid)
      await other.query('COMMIT')
      committed = true
      calls.length = 0
      counter.reset()
      expect(await staleKeys()).toEqual([{ key: 7, state: 'stale' }])
      expect(counter.scanned()).toBe(1)
      expect((await store.refresh()).tables['d']).toMatchObject({ computed: 1 })
      expect(calls).toEqual([7])
      expect(Number(await value(7))).toBe(1001)
      expect(await store.stale()).toEqual([])
    } finally {
      if (!committed) await other.query('ROLLBACK')
    }
  })

  it('rows of transactions in the xip list or at/after xmax are changed since the watermark; other rows below xmax are not', async () => {
    // Two committed writes with known xids (a < b), then the watermark set by hand past both
    // revisions, with snapshots that say which of the two transactions had not committed.
    const a = await db.transaction().execute(async (trx) => {
      await sql`UPDATE r SET x = 0 WHERE id = 5`.execute(trx)
      return xact(trx)
    })
    const b = await db.transaction().execute(async (trx) => {
      await sql`UPDATE r SET x = 0 WHERE id = 6`.execute(trx)
      return xact(trx)
    })
    expect(BigInt(a) < BigInt(b)).toBe(true)
    const rev = await clock()
    const setWatermark = (snapshot: string) => sql`UPDATE lq_derived SET wm_rev = ${rev}, wm_xmin = ${snapshot} WHERE name = 'd'`.execute(db)
    const after = (x: string) => String(BigInt(x) + 1n)

    await setWatermark(`${a}:${after(b)}:${a}`) // a in progress, b completed
    expect(await staleKeys()).toEqual([{ key: 5, state: 'stale' }])
    await setWatermark(`${a}:${b}:${a}`) // a in progress, b not started (>= xmax)
    expect(await staleKeys()).toEqual([{ key: 5, state: 'stale' }, { key: 6, state: 'stale' }])
    await setWatermark(`${after(b)}:${after(b)}:`) // both completed
    counter.reset()
    expect(await staleKeys()).toEqual([])
    expect(counter.scanned()).toBe(0)
    await setWatermark(`${b}:${b}:`) // b not started
    expect(await staleKeys()).toEqual([{ key: 6, state: 'stale' }])

    await setWatermark(`${a}:${b}:${a}`)
    expect((await store.refresh()).tables['d']).toMatchObject({ computed: 2 })
    expect(calls.sort((p, q) => p - q)).toEqual([5, 6])
    expect(await store.stale()).toEqual([])
  })

  it('a watermark stored by an earlier version (the snapshot xmin alone) is read as xid >= xmin', async () => {
    // An old-format watermark taken while row 5's transaction was running (its xmin is at most
    // that transaction's xid), with a clock value past row 5's revision: only the xid finds it.
    const oldXmin = (await sql<{ x: string }>`SELECT pg_snapshot_xmin(pg_current_snapshot())::text AS x`.execute(db)).rows[0]!.x
    await sql`UPDATE r SET x = 0 WHERE id = 5`.execute(db)
    await sql`UPDATE lq_derived SET wm_rev = ${await clock()}, wm_xmin = ${oldXmin} WHERE name = 'd'`.execute(db)
    expect(parseSnapshot(oldXmin)).toEqual({ kind: 'xmin', xmin: oldXmin })
    expect(await staleKeys()).toEqual([{ key: 5, state: 'stale' }])

    // An old-format watermark taken after row 6's transaction committed, with an xmin past its
    // xid (set by hand: the server's xmin may be held back by other sessions): row 6 counts as
    // processed, as it did for that version.
    await store.refresh()
    const six = await db.transaction().execute(async (trx) => {
      await sql`UPDATE r SET x = 0 WHERE id = 6`.execute(trx)
      return xact(trx)
    })
    await sql`UPDATE lq_derived SET wm_rev = ${await clock()}, wm_xmin = ${String(BigInt(six) + 1n)} WHERE name = 'd'`.execute(db)
    expect(await staleKeys()).toEqual([])
    await sql`UPDATE lq_derived SET wm_xmin = ${six} WHERE name = 'd'`.execute(db)
    expect(await staleKeys()).toEqual([{ key: 6, state: 'stale' }])

    // The next refresh stores a snapshot in the new format.
    await sql`UPDATE r SET x = 0 WHERE id = 9`.execute(db)
    calls.length = 0
    expect((await store.refresh()).tables['d']).toMatchObject({ computed: 2 })
    expect(calls.sort((p, q) => p - q)).toEqual([6, 9])
    expect((await storedWatermark()).wm_xmin).toContain(':')
  })
})

describe('parseSnapshot', () => {
  it('reads pg_current_snapshot() text and old xmin-only watermarks', () => {
    expect(parseSnapshot('10:20:')).toEqual({ kind: 'snapshot', xmax: '20', xip: [] })
    expect(parseSnapshot('10:20:10,15')).toEqual({ kind: 'snapshot', xmax: '20', xip: ['10', '15'] })
    expect(parseSnapshot('734')).toEqual({ kind: 'xmin', xmin: '734' })
    expect(parseSnapshot('')).toBeUndefined()
    expect(parseSnapshot('1:2:3;DROP TABLE r')).toBeUndefined()
  })
})
