/**
 * Range claims of first fills on PostgreSQL (`pgPageClaim` inserts one `lq_claim_range` row
 * for a page whose span is clean), across real worker processes on one schema of the test
 * server, and the claim lock that serialises a range with claims of keys (`pgClaimLock`): a
 * range inserted by a transaction still running is invisible to a claim of keys under READ
 * COMMITTED, so without the lock both took the same key.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import * as t from 'io-ts'
import { sql, type Kysely } from 'kysely'
import pg from 'pg'
import { afterEach, describe, expect, it } from 'vitest'
import { openStore } from '../../src/derived/index.js'
import { claimDialects } from '../../src/derived/sql/claims.js'
import { createTable, insertRows } from '../../src/query/ddl.js'
import { table } from '../../src/query/dsl.js'
import { openPgServer, pgServerReachable, pgUrl, type TestDb } from '../support/db.js'
import { spawnChild, type Child } from './support/worker-file.js'

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
const N = 40
const reachable = await pgServerReachable()
const pgc = claimDialects.postgres
const src = table('src', { id: t.Int, v: t.Int })

const result = (c: Child): Record<string, unknown> => JSON.parse(c.lines().filter((l) => l.startsWith('{')).at(-1)!)
const calls = (log: string, role: string): string[] => readFileSync(log, 'utf8').split('\n').filter((l) => l.startsWith(`${role} `))

async function until(what: string, ok: () => boolean | Promise<boolean>, ms = 30_000): Promise<void> {
  for (const t0 = Date.now(); !(await ok()); await sleep(20)) if (Date.now() - t0 > ms) throw new Error(`never: ${what}`)
}

describe.skipIf(!reachable)('range claims of first fills across worker processes [postgres]', () => {
  const children: Child[] = []
  let dir = ''
  let tdb: TestDb | undefined
  const db = (): Kysely<any> => tdb!.db
  afterEach(async () => {
    for (const c of children) {
      c.proc.kill('SIGCONT')
      c.proc.kill('SIGKILL')
    }
    await Promise.all(children.map((c) => c.exited))
    children.length = 0
    await tdb?.close()
    tdb = undefined
    if (dir !== '') rmSync(dir, { recursive: true, force: true })
  })

  /** A fresh schema with `src` (ids 1..n) tracked, and a directory with an empty call log; the children open `pg:<schema>`. */
  async function setup(n = N): Promise<{ target: string; log: string }> {
    tdb = await openPgServer()
    dir = mkdtempSync(join(tmpdir(), 'lq-pgrange-'))
    await createTable(db(), src)
    await insertRows(db(), src, Array.from({ length: n }, (_, i) => ({ id: i + 1, v: i + 1 })))
    const store = await openStore(db())
    await store.track(src)
    const schema = (await sql<{ s: string }>`SELECT current_schema() AS s`.execute(db())).rows[0]!.s
    const log = join(dir, 'calls.log')
    writeFileSync(log, '')
    return { target: `pg:${schema}`, log }
  }
  const start = (target: string, role: string, leaseMs: number, log: string, gate: string, action: string): Child => {
    const c = spawnChild('range-child.ts', [target, role, String(leaseMs), log, gate, action])
    children.push(c)
    return c
  }
  const rows = async () => (await sql<{ lq_key: string; y: unknown; by: string }>`SELECT lq_key, y, by FROM out`.execute(db())).rows.map((r) => [Number(r.lq_key), Number(r.y), r.by] as const).sort((a, b) => a[0] - b[0])
  const count = async (q: string) => Number((await sql<{ n: unknown }>`SELECT count(*) AS n FROM ${sql.raw(q)}`.execute(db())).rows[0]!.n)
  const claimsLeft = async () => (await count('lq_claim')) + (await count('lq_claim_range'))

  it('a first fill claims its page as one range row, and a second worker never computes a key inside a live range', async () => {
    const { target, log } = await setup()
    const gate = join(dir, 'gate')
    const a = start(target, 'a', 60_000, log, gate, 'refresh')
    await until('A computing its page', () => calls(log, 'a').length === N)
    // One range row, no claim row per key.
    const ranges = (await sql<{ lo: unknown; hi: unknown; keys: string }>`SELECT lo, hi, keys FROM lq_claim_range WHERE tbl = 'out'`.execute(db())).rows
    expect(ranges.map((r) => [Number(r.lo), Number(r.hi), JSON.parse(r.keys).length])).toEqual([[1, N, N]])
    expect(await count('lq_claim')).toBe(0)
    // status/stale() see the range's keys as held.
    expect((await pgc.held(db(), 'out')).length).toBe(N)
    const b = start(target, 'b', 60_000, log, gate, 'refresh')
    await sleep(2000)
    expect(calls(log, 'b'), b.lines().join('\n')).toEqual([])
    writeFileSync(gate, '')
    expect(await a.exited).toBe(0)
    expect(await b.exited).toBe(0)
    expect(result(a)).toMatchObject({ ok: true, computed: N, superseded: 0 })
    expect(result(b)).toMatchObject({ ok: true, computed: 0 })
    expect(await rows()).toEqual(Array.from({ length: N }, (_, i) => [i + 1, 2 * (i + 1), 'a']))
    expect(await claimsLeft()).toBe(0)
  }, 60_000)

  it("a range whose lease expired is taken over key by key: its holder's results for the keys taken are refused, the others stored", async () => {
    const { target, log } = await setup()
    const gateA = join(dir, 'gate-a')
    const gateB = join(dir, 'gate-b')
    writeFileSync(gateB, '')
    const a = start(target, 'a', 1500, log, gateA, 'refresh')
    await until('A computing its page', () => calls(log, 'a').length === N)
    expect(await count('lq_claim_range')).toBe(1)
    a.proc.kill('SIGSTOP')
    await until("A's range expired", async () => (await pgc.held(db(), 'out')).length === 0, 10_000)
    const b = start(target, 'b', 1500, log, gateB, 'get:3')
    expect(await b.exited).toBe(0)
    expect(result(b)).toMatchObject({ ok: true, state: 'fresh' })
    expect(calls(log, 'b')).toEqual(['b 3'])
    a.proc.kill('SIGCONT')
    writeFileSync(gateA, '')
    expect(await a.exited).toBe(0)
    expect(result(a)).toMatchObject({ ok: true, computed: N - 1, superseded: 1 })
    expect(await rows()).toEqual(Array.from({ length: N }, (_, i) => [i + 1, 2 * (i + 1), i + 1 === 3 ? 'b' : 'a']))
    expect(await claimsLeft()).toBe(0)
  }, 60_000)

  it('a worker killed with SIGKILL mid-range: after its lease expired another worker claims the rows again and fills the table right', async () => {
    const { target, log } = await setup()
    const gateA = join(dir, 'gate-a')
    const gateB = join(dir, 'gate-b')
    writeFileSync(gateB, '')
    const a = start(target, 'a', 1500, log, gateA, 'refresh')
    await until('A computing its page', () => calls(log, 'a').length === N)
    expect(await count('lq_claim_range')).toBe(1)
    a.proc.kill('SIGKILL')
    await a.exited
    const killed = Date.now()
    const b = start(target, 'b', 1500, log, gateB, 'refresh')
    expect(await b.exited).toBe(0)
    // Not before A's lease ended (1500 ms from its last heartbeat).
    expect(Date.now() - killed).toBeGreaterThan(500)
    expect(result(b)).toMatchObject({ ok: true, computed: N })
    expect(calls(log, 'b').length).toBe(N)
    expect(await rows()).toEqual(Array.from({ length: N }, (_, i) => [i + 1, 2 * (i + 1), 'b']))
    expect(await claimsLeft()).toBe(0)
  }, 60_000)

  it('three workers filling one table by small ranges while a fourth gets every row key by key: every row computed once and right, no claim left', async () => {
    const n = 600
    const { target, log } = await setup(n)
    const gate = join(dir, 'gate')
    writeFileSync(gate, '')
    const kids = [start(target, 'a', 60_000, log, gate, 'refresh:25'), start(target, 'b', 60_000, log, gate, 'refresh:25'), start(target, 'c', 60_000, log, gate, 'refresh:25'), start(target, 'g', 60_000, log, gate, `gets:${n}`)]
    const codes = await Promise.all(kids.map((k) => k.exited))
    expect(codes, kids.map((k) => k.lines().join('\n')).join('\n---\n')).toEqual([0, 0, 0, 0])
    for (const k of kids) expect(result(k), k.lines().join('\n')).toMatchObject({ ok: true })
    const all = readFileSync(log, 'utf8').split('\n').filter((l) => l.length > 0).map((l) => Number(l.split(' ')[1]))
    const twice = [...new Set(all.filter((k, i) => all.indexOf(k) !== i))]
    expect(twice).toEqual([])
    expect(all.length).toBe(n)
    const got = await rows()
    expect(got.length).toBe(n)
    expect(got.filter(([k, y]) => y !== 2 * k)).toEqual([])
    expect(await claimsLeft()).toBe(0)
  }, 120_000)
})

describe.skipIf(!reachable)('the claim lock between ranges and claims of keys [postgres]', () => {
  let tdb: TestDb | undefined
  let raw: pg.Client | undefined
  afterEach(async () => {
    await raw?.end().catch(() => undefined)
    raw = undefined
    await tdb?.close()
    tdb = undefined
  })

  async function open(): Promise<Kysely<any>> {
    tdb = await openPgServer()
    await openStore(tdb.db)
    const schema = (await sql<{ s: string }>`SELECT current_schema() AS s`.execute(tdb.db)).rows[0]!.s
    raw = new pg.Client({ connectionString: pgUrl, options: `-c search_path=${schema}` })
    await raw.connect()
    return tdb.db
  }

  it('a claim of keys waits for a range claim still running and then does not take the keys inside the range', async () => {
    const db = await open()
    // Another worker's page claim, as `pgPageClaim` runs it: the exclusive lock, then its range, not committed yet.
    await raw!.query('BEGIN')
    await raw!.query(`SELECT pg_advisory_xact_lock(${0x6c71}, hashtext('out'))`)
    await raw!.query(`INSERT INTO lq_claim_range (tbl, token, owner, expires, lo, hi, keys) VALUES ('out', nextval('lq_claim_seq'), 'other', (extract(epoch from clock_timestamp()) * 1000)::bigint + 60000, 1, 10, '["1","2","3","4","5","6","7","8","9","10"]')`)
    let settled = false
    const claim = pgc.claim(db, 'out', ['5', '10', '11'], 'me', 60_000).finally(() => (settled = true))
    await sleep(300)
    expect(settled).toBe(false)
    await raw!.query('COMMIT')
    const got = await claim
    expect(got.keys.sort()).toEqual(['11'])
    expect(await pgc.othersHold(db, 'out', ['5'], 'me')).toBe(true)
  }, 30_000)

  it('a first-fill page waits for a claim of keys still running and then does not claim its span as a range over the key taken', async () => {
    const db = await open()
    await createTable(db, src)
    await insertRows(db, src, Array.from({ length: 20 }, (_, i) => ({ id: i + 1, v: i + 1 })))
    const store = await openStore(db, { leaseMs: 60_000 })
    await store.track(src)
    store.derive({ name: 'out', from: src, output: { y: t.Int }, version: '1', params: {}, fn: (r) => ({ y: r.v * 2 }) })
    // Another worker's claim of key 7, as `claim` runs it: the shared lock, then its claim row, not committed yet.
    await raw!.query('BEGIN')
    await raw!.query(`SELECT pg_advisory_xact_lock_shared(${0x6c71}, hashtext('out'))`)
    await raw!.query(`INSERT INTO lq_claim (tbl, lq_key, owner, expires, token) VALUES ('out', '7', 'other', (extract(epoch from clock_timestamp()) * 1000)::bigint + 1500, nextval('lq_claim_seq'))`)
    let settled = false
    const refresh = store.refresh().finally(() => (settled = true))
    await sleep(300)
    expect(settled).toBe(false)
    await raw!.query('COMMIT')
    const seen: string[] = []
    // While the other worker's claim is live, the refresh has no range over key 7.
    for (let i = 0; i < 10; i++) {
      const r = (await sql<{ lo: unknown; hi: unknown }>`SELECT lo, hi FROM lq_claim_range`.execute(db)).rows
      for (const x of r) if (Number(x.lo) <= 7 && Number(x.hi) >= 7) seen.push(`${x.lo}-${x.hi}`)
      if (settled) break
      await sleep(20)
    }
    expect(seen).toEqual([])
    // The claim row expires (1.5 s), the refresh takes key 7 over and finishes.
    const rep = await refresh
    expect(rep.totals.computed).toBe(20)
    const out = (await sql<{ lq_key: string; y: unknown }>`SELECT lq_key, y FROM out ORDER BY lq_key::int`.execute(db)).rows.map((r) => [Number(r.lq_key), Number(r.y)])
    expect(out).toEqual(Array.from({ length: 20 }, (_, i) => [i + 1, 2 * (i + 1)]))
  }, 30_000)
})
