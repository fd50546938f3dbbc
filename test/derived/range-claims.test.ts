/**
 * Range claims of first fills (SQLite: `ClaimDialect.claimRange`), across real worker processes
 * on one database file: a first fill's page is claimed as one row of `lq_claim_range`; another
 * worker never computes a key inside a live range; a range whose lease expired is taken over
 * key by key, and its holder's results for the keys taken are refused while the others are
 * stored. The store's schema upgrade adding the range table is in upgrade.test.ts.
 */
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { sql } from 'kysely'
import { describe, expect, it } from 'vitest'
import { fileWorkers, lastJson, spawnChild, until, type Child } from './support/worker-file.js'

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
const N = 40

const startChild = (file: string, role: string, leaseMs: number, log: string, gate: string, action: string): Child => spawnChild('range-child.ts', [file, role, String(leaseMs), log, gate, action])

const calls = (log: string, role: string): string[] => readFileSync(log, 'utf8').split('\n').filter((l) => l.startsWith(`${role} `))

describe('range claims of first fills across worker processes [sqlite]', () => {
  const w = fileWorkers('lq-range-', N)
  const { children, setup, rows, claimsLeft } = w

  it('a first fill claims its page as one range row, and a second worker never computes a key inside a live range', async () => {
    const { file, log } = await setup()
    const gate = join(w.dir(), 'gate')
    const a = startChild(file, 'a', 60_000, log, gate, 'refresh')
    children.push(a)
    await until('A computing its page', () => calls(log, 'a').length === N)
    // One range row, no claim row per key.
    const ranges = (await sql<{ owner: string; lo: unknown; hi: unknown }>`SELECT owner, lo, hi FROM lq_claim_range WHERE tbl = 'out'`.execute(w.db())).rows
    expect(ranges.map((r) => [Number(r.lo), Number(r.hi)])).toEqual([[1, N]])
    expect(Number((await sql<{ n: unknown }>`SELECT count(*) AS n FROM lq_claim`.execute(w.db())).rows[0]!.n)).toBe(0)
    const b = startChild(file, 'b', 60_000, log, gate, 'refresh')
    children.push(b)
    // B waits for A's rows: it computes none of them while A's range is live.
    await sleep(2000)
    expect(calls(log, 'b'), b.lines().join('\n')).toEqual([])
    writeFileSync(gate, '')
    expect(await a.exited).toBe(0)
    expect(await b.exited).toBe(0)
    expect(lastJson(a)).toMatchObject({ ok: true, computed: N, superseded: 0 })
    expect(lastJson(b)).toMatchObject({ ok: true, computed: 0 })
    expect(calls(log, 'b')).toEqual([])
    expect(await rows()).toEqual(Array.from({ length: N }, (_, i) => [i + 1, 2 * (i + 1), 'a']))
    expect(await claimsLeft()).toBe(0)
  }, 60_000)

  it('a range whose lease expired is taken over key by key: its holder\'s results for the keys taken are refused, the others stored', async () => {
    const { file, log } = await setup()
    const gateA = join(w.dir(), 'gate-a')
    const gateB = join(w.dir(), 'gate-b')
    writeFileSync(gateB, '')
    const a = startChild(file, 'a', 1500, log, gateA, 'refresh')
    children.push(a)
    await until('A computing its page', () => calls(log, 'a').length === N)
    expect(Number((await sql<{ n: unknown }>`SELECT count(*) AS n FROM lq_claim_range`.execute(w.db())).rows[0]!.n)).toBe(1)
    // A stops (no heartbeat) until its range expired.
    a.proc.kill('SIGSTOP')
    const live = async () => Number((await sql<{ n: unknown }>`SELECT count(*) AS n FROM lq_claim_range WHERE expires > CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)`.execute(w.db())).rows[0]!.n)
    await until('A\'s range expired', async () => (await live()) === 0, 10_000)
    // B demands row 3: it takes it over from the expired range, computes and stores it.
    const b = startChild(file, 'b', 1500, log, gateB, 'get:3')
    children.push(b)
    expect(await b.exited).toBe(0)
    expect(lastJson(b)).toMatchObject({ ok: true, state: 'fresh' })
    expect(calls(log, 'b')).toEqual(['b 3'])
    // A goes on: its result for row 3 is refused (fenced off), the others are stored.
    a.proc.kill('SIGCONT')
    writeFileSync(gateA, '')
    expect(await a.exited).toBe(0)
    expect(lastJson(a)).toMatchObject({ ok: true, computed: N - 1, superseded: 1 })
    expect(await rows()).toEqual(Array.from({ length: N }, (_, i) => [i + 1, 2 * (i + 1), i + 1 === 3 ? 'b' : 'a']))
    expect(await claimsLeft()).toBe(0)
  }, 60_000)
})
