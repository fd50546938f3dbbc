/**
 * The explorer's JSON endpoints (src/explore/server.ts) on SQLite and PostgreSQL, through the
 * Hono app without a socket: counts per state, rows filtered and paginated, one row's causes
 * down to the root row, lineage and affected equal to the store's own, refresh jobs, errors.
 */
import * as t from 'io-ts'
import { sql, type KyselyPlugin } from 'kysely'
import { beforeAll, describe, expect, it } from 'vitest'
import { createTable, insertRows, openStore, Q, table, type Store } from '../../src/index.js'
import { drawnSubset, MAX_DRAWN, type RowView, type RowsView, type TablesView, type TableNode } from '../../src/explore/model.js'
import { explorerApp, type Explorer } from '../../src/explore/server.js'
import { buildGraph } from '../../src/derived/index.js'
import { rowAddress } from '../../src/derived/read/browse.js'
import { claimDialects } from '../../src/derived/sql/claims.js'
import { LeaseKeeper } from '../../src/derived/leases.js'
import { eachDialect } from '../support/db.js'
import { declare, seed } from './pipeline.js'

async function json<T>(x: Explorer, path: string, init?: RequestInit): Promise<{ status: number; body: T }> {
  const res = await x.app.request(path, init)
  return { status: res.status, body: (await res.json()) as T }
}

async function waitJob(x: Explorer, id: string): Promise<{ state: string; error: unknown }> {
  for (;;) {
    const { body } = await json<{ state: string; error: unknown }>(x, `/api/jobs/${id}`)
    if (body.state !== 'running') return body
    await new Promise((r) => setTimeout(r, 20))
  }
}

eachDialect('explorer API', (get) => {
  let store: Store
  let x: Explorer
  let h: Awaited<ReturnType<typeof declare>>

  beforeAll(async () => {
    const { db } = get()
    await seed(db)
    store = await openStore(db)
    h = await declare(store)
    await store.refresh()
    await sql`UPDATE sources SET text = 'hello there world' WHERE id = 2`.execute(db)
    x = explorerApp(db, store, { queries: h.queries })
  })

  it('counts every derived table per state, coloured by the worst', async () => {
    const { status, body } = await json<TablesView>(x, '/api/tables')
    expect(status).toBe(200)
    const by = new Map(body.tables.map((t) => [t.name, t]))
    expect(by.get('sources')).toMatchObject({ kind: 'root', rows: 5 })
    expect(by.get('parsed')).toMatchObject({ counts: { fresh: 3, stale: 1, failed: 1 }, worst: 'failed', codeChanged: false, dataStale: true })
    expect(by.get('doubled')).toMatchObject({ counts: { fresh: 3, stale: 1, blocked: 1 }, worst: 'blocked' })
    expect(by.get('signed')).toMatchObject({ counts: { fresh: 4, stale: 1 }, worst: 'stale' })
    expect(body.drawn.nodes.map((n) => n.id).sort()).toEqual(['authors', 'doubled', 'parsed', 'signed', 'sources'])
    expect(body.drawn.edges).toHaveLength(4)
    expect(body.note).toBeNull()
  })

  it('lists a table\'s rows filtered by state and cause, a page at a time', async () => {
    const all = (await json<RowsView>(x, '/api/rows?table=doubled')).body
    expect(all.total).toBe(5)
    expect(all.states).toEqual({ fresh: 3, stale: 1, blocked: 1 })
    const stale = (await json<RowsView>(x, '/api/rows?table=doubled&state=stale')).body
    expect(stale.rows.map((r) => r.key)).toEqual([2])
    expect(stale.rows[0]!.causes).toEqual([{ kind: 'upstream-stale', table: 'parsed', key: 2 }])
    const byCause = (await json<RowsView>(x, '/api/rows?table=parsed&cause=input-changed')).body
    expect(byCause.rows.map((r) => r.key)).toEqual([2])
  })

  it('pages a table\'s rows by keyset: next pages cover every row once in address order, and previous pages go back', async () => {
    const all = (await json<RowsView>(x, '/api/rows?table=parsed')).body
    expect(all.rows.map((r) => r.key)).toEqual([1, 2, 3, 4, 5])
    expect([all.next, all.prev]).toEqual([null, null])
    const pages: RowsView[] = []
    let next: string | null = null
    do {
      const page: RowsView = (await json<RowsView>(x, `/api/rows?table=parsed&limit=2${next === null ? '' : `&after=${encodeURIComponent(next)}`}`)).body
      expect(page.total).toBe(5)
      pages.push(page)
      next = page.next
    } while (next !== null)
    expect(pages.map((p) => p.rows.map((r) => [r.key, r.state]))).toEqual([[[1, 'fresh'], [2, 'stale']], [[3, 'failed'], [4, 'fresh']], [[5, 'fresh']]])
    expect(pages.map((p) => p.prev === null)).toEqual([true, false, false])
    const back = (await json<RowsView>(x, `/api/rows?table=parsed&limit=2&before=${encodeURIComponent(pages[2]!.prev!)}`)).body
    expect(back.rows.map((r) => r.key)).toEqual([3, 4])
    const first = (await json<RowsView>(x, `/api/rows?table=parsed&limit=2&before=${encodeURIComponent(back.prev!)}`)).body
    expect(first.rows.map((r) => r.key)).toEqual([1, 2])
    expect(first.prev).toBeNull()
    // A filter pages the same way: the stored rows in a state, the stale rows besides.
    const fresh = (await json<RowsView>(x, '/api/rows?table=parsed&state=fresh&limit=2')).body
    expect([fresh.total, fresh.rows.map((r) => r.key)]).toEqual([3, [1, 4]])
    const fresh2 = (await json<RowsView>(x, `/api/rows?table=parsed&state=fresh&limit=2&after=${encodeURIComponent(fresh.next!)}`)).body
    expect([fresh2.rows.map((r) => r.key), fresh2.next]).toEqual([[5], null])
    const failed = (await json<RowsView>(x, '/api/rows?table=doubled&cause=upstream-failed')).body
    expect([failed.total, failed.rows.map((r) => [r.key, r.state])]).toEqual([1, [[3, 'blocked']]])
    expect((await json<RowsView>(x, '/api/rows?table=parsed&state=fresh&cause=error')).body.total).toBe(0)
    expect((await json(x, '/api/rows?table=parsed&after=1&before=3')).status).toBe(400)
  })

  it('shows a stale row\'s causes down to the root row whose revision changed, and its lineage and affected rows as the store reports them', async () => {
    const { body } = await json<RowView>(x, `/api/row?table=doubled&key=2`)
    expect(body.state).toBe('stale')
    const parsed = body.why!.kind === 'derived' ? body.why!.inputs[0]! : undefined
    expect(parsed).toMatchObject({ kind: 'derived', table: 'parsed', state: 'stale' })
    const root = parsed!.kind === 'derived' ? parsed!.inputs[0]! : undefined
    expect(root).toEqual({ kind: 'root', table: 'sources', key: 2, revision: await store.revision('sources', 2) })
    const stored = await store.lineage(Q.for(h.doubled, (d) => Q.where(Q.eq(d.lq_key, '2'), Q.yield({ n: d.n }))))
    expect(body.lineage).toEqual(stored[0]!.lineage)
    expect(body.value).toMatchObject({ n: 4 })

    const p = (await json<RowView>(x, `/api/row?table=parsed&key=2`)).body
    const affected = (await store.affected('sources', 2)).filter((r) => r.table === 'doubled')
    expect(p.affected.map(({ table, key }) => ({ table, key }))).toEqual(affected)

    const s = (await json<RowView>(x, `/api/row?table=sources&key=2&depth=2`)).body
    expect(s.revision).toBe(await store.revision('sources', 2))
    expect(s.affected.map(({ table, key }) => ({ table, key })).sort((a, b) => a.table.localeCompare(b.table))).toEqual((await store.affected('sources', 2)).sort((a, b) => a.table.localeCompare(b.table)))
  })

  it('shows a comprehension row with both root rows in its lineage', async () => {
    const key = JSON.stringify([{ table: 'authors', key: 1 }, { table: 'sources', key: 1 }])
    const { body } = await json<RowView>(x, `/api/row?table=signed&key=${encodeURIComponent(key)}`)
    expect(body.state).toBe('fresh')
    expect(body.value).toEqual({ line: 'a b c (ada)' })
    expect(body.lineage).toEqual([{ table: 'authors', key: 1 }, { table: 'sources', key: 1 }])
  })

  it('runs a named query with lineage', async () => {
    const { body } = await json<{ rows: { data: unknown; lineage: unknown[] }[]; sources: string[] }>(x, '/api/query?name=lines')
    expect(body.sources).toEqual(['authors', 'sources'])
    expect(body.rows).toHaveLength(5)
    expect(body.rows.every((r) => r.lineage.length === 2)).toBe(true)
  })

  it('refreshes one row from a job, and then everything', async () => {
    const started = await json<{ id: string; state: string }>(x, '/api/refresh', { method: 'POST', body: JSON.stringify({ table: 'doubled', key: 2 }), headers: { 'content-type': 'application/json' } })
    expect(started.status).toBe(202)
    expect((await waitJob(x, started.body.id)).state).toBe('done')
    expect((await store.status('doubled', 2)).state).toBe('fresh')
    const all = await json<{ id: string }>(x, '/api/refresh', { method: 'POST', body: '{}', headers: { 'content-type': 'application/json' } })
    expect((await waitJob(x, all.body.id)).state).toBe('done')
    const signed = (await json<TablesView>(x, '/api/tables')).body.tables.find((t) => t.name === 'signed')!
    expect(signed.counts).toEqual({ fresh: 5 })
  })

  it('marks a table whose code changed apart from one whose data changed', async () => {
    const other = await openStore(get().db)
    await declare(other, 'v2')
    const v = (await json<TablesView>(explorerApp(get().db, other), '/api/tables')).body
    const parsed = v.tables.find((t) => t.name === 'parsed')!
    expect(parsed).toMatchObject({ codeChanged: true, worst: 'stale' })
    expect(parsed.counts).toEqual({ stale: 5 })
    expect(v.tables.find((t) => t.name === 'doubled')).toMatchObject({ codeChanged: false, dataStale: true })
    expect(v.tables.find((t) => t.name === 'signed')).toMatchObject({ codeChanged: false, counts: { fresh: 5 } })
  })

  it('answers a bad request with a typed error', async () => {
    const r = await json<{ error: { code: string; message: string } }>(x, '/api/rows?table=nope')
    expect(r.status).toBe(400)
    expect(r.body.error.code).toBe('argument')
    expect(r.body.error.message).toMatch(/no table named "nope"/)
    expect((await json(x, '/api/rows?table=sources')).status).toBe(400)
    expect((await json(x, '/api/row?table=parsed&key=1&depth=x')).status).toBe(400)
    expect((await json(x, '/api/query?name=nope')).status).toBe(400)
    expect((await json(x, '/api/refresh', { method: 'POST', body: JSON.stringify({ table: 'sources' }) })).status).toBe(400)
  })
})

eachDialect('explorer: running rows', (get) => {
  let store: Store
  let x: Explorer

  beforeAll(async () => {
    const { db } = get()
    await seed(db)
    store = await openStore(db)
    await declare(store)
    await store.refresh()
    await sql`UPDATE sources SET text = 'hello there world' WHERE id = 2`.execute(db)
    x = explorerApp(db, store)
  })

  it('counts a row held by a live claim as running, not as stale, missing or fresh; an expired claim does not count', async () => {
    const { db, dialect } = get()
    const claims = claimDialects[dialect]
    // Another worker computes parsed 2 (stale) and parsed 1 (fresh); a third one's lease on parsed 4 ran out.
    expect((await claims.claim(db, 'parsed', ['2', '1'], 'worker-b', 60_000)).keys.sort()).toEqual(['1', '2'])
    expect((await claims.claim(db, 'parsed', ['4'], 'worker-c', -1000)).keys).toEqual(['4'])
    // And a lease keeper holds signed's stale row (authors 2, sources 2).
    const keeper = new LeaseKeeper({ db, dialect: claims, owner: 'worker-d', leaseMs: 60_000 })
    const signedKey = [{ table: 'authors', key: 2 }, { table: 'sources', key: 2 }]
    const lease = await keeper.claim('signed', [rowAddress(store.graph(), 'signed', signedKey)])
    try {
      const { body } = await json<TablesView>(x, '/api/tables')
      const by = new Map(body.tables.map((t) => [t.name, t]))
      expect(by.get('parsed')).toMatchObject({ counts: { fresh: 2, running: 2, failed: 1 }, worst: 'failed' })
      expect(by.get('doubled')).toMatchObject({ counts: { fresh: 3, stale: 1, blocked: 1 }, worst: 'blocked' })
      expect(by.get('signed')).toMatchObject({ counts: { fresh: 4, running: 1 }, worst: 'running' })
      // The rows page agrees, with the lease of each running row.
      const rows = (await json<RowsView>(x, '/api/rows?table=parsed&state=running')).body
      expect(rows.total).toBe(2)
      expect(rows.rows.map((r) => [r.key, r.lease?.owner])).toEqual([[1, 'worker-b'], [2, 'worker-b']])
      expect(rows.states).toEqual({ fresh: 2, running: 2, failed: 1 })
      expect((await store.status('parsed', 2)).state).toBe('running')
    } finally {
      await keeper.release(lease)
      keeper.stop()
    }
    await claims.release(db, 'worker-b', (await claims.held(db, 'parsed'))[0]!.token)
    const after = new Map((await json<TablesView>(x, '/api/tables')).body.tables.map((t) => [t.name, t]))
    expect(after.get('parsed')!.counts).toEqual({ fresh: 3, stale: 1, failed: 1 })
    expect(after.get('signed')!.counts).toEqual({ fresh: 4, stale: 1 })
  })
})

eachDialect('explorer: a page of a large table', (get) => {
  const N = 2000
  const big = table('big', { id: t.Int, v: t.Int })

  it('a page request reads a page of rows, not every key of the table', async () => {
    const { db } = get()
    await createTable(db, big)
    await insertRows(db, big, Array.from({ length: N }, (_, i) => ({ id: i + 1, v: i })))
    const store = await openStore(db)
    await store.track(big)
    store.derive({ name: 'big_out', from: big, output: { w: t.number }, fn: (r) => ({ w: r.v * 2 }) })
    await store.refresh()
    await sql`UPDATE big SET v = v + 1 WHERE id IN (7, 1500)`.execute(db)
    // The explorer's own statements, counted by the rows they return (the store's reads are not).
    let read = 0
    const counting: KyselyPlugin = {
      transformQuery: (a) => a.node,
      transformResult: async (a) => {
        read += a.result.rows.length
        return a.result
      },
    }
    const x = explorerApp(db.withPlugin(counting), store)
    const page = (await json<RowsView>(x, '/api/rows?table=big_out&limit=10')).body
    expect(page.total).toBe(N)
    expect(page.rows).toHaveLength(10)
    expect(page.states).toEqual({ fresh: N - 2, stale: 2 })
    expect(read).toBeLessThan(30)
    read = 0
    const later = (await json<RowsView>(x, `/api/rows?table=big_out&state=fresh&limit=10&after=${encodeURIComponent(page.next!)}`)).body
    expect(later.rows).toHaveLength(10)
    expect(later.rows.every((r) => r.state === 'fresh')).toBe(true)
    expect(read).toBeLessThan(30)
  }, 120_000)
})

describe('explorer: the drawn subset', () => {
  const chain = (n: number) => buildGraph({ roots: ['r'], derived: Array.from({ length: n }, (_, i) => ({ name: `d${i}`, reads: [i === 0 ? 'r' : `d${i - 1}`] })) })
  const nodes = (g: ReturnType<typeof chain>, worst = (name: string) => (name === 'd150' ? 'failed' : 'fresh')): TableNode[] =>
    g.order.map((name) => ({ name, kind: name === 'r' ? 'root' : 'derived', counts: {}, worst: name === 'r' ? 'root' : worst(name), codeChanged: false, dataStale: false }))

  it('draws every table up to the limit', () => {
    const g = chain(50)
    expect(drawnSubset(g, nodes(g), undefined).names).toHaveLength(51)
  })

  it('never draws more than the limit: the worst tables first, or the neighbourhood of a focus', () => {
    const g = chain(200)
    const worst = drawnSubset(g, nodes(g), undefined)
    expect(worst.names).toHaveLength(MAX_DRAWN)
    expect(worst.names).toContain('d150')
    expect(worst.note).toMatch(/showing 100 of 201/)
    const near = drawnSubset(g, nodes(g), 'd120')
    expect(near.names).toHaveLength(MAX_DRAWN)
    expect(near.names).toContain('d120')
    expect(near.names).toContain('d71')
    expect(near.names).toContain('d169')
  })
})
