/**
 * Workers whose function outlasts the lease (it blocks the event loop, so no heartbeat runs):
 * another worker takes the rows over once the lease ended, and the first one's results are
 * refused. The rows must still be stored, by one of them, in a bounded time, never passed back
 * and forth (each worker taking the batch back when the other's lease ended, neither storing
 * it: 75 calls and no end within 20 s with the first fix of this stop that left refused rows
 * behind). A refused result is stored after the wait unless the taker stored the row
 * (`storeRefused` in refresh.ts); blocked-workers.test.ts covers the same with one row, both
 * dialects and watch mode. From the second independent review (its fixture: outlasting-child.ts).
 */
import { readFileSync, rmSync } from 'node:fs'
import { sql, type Kysely } from 'kysely'
import { afterEach, describe, expect, it } from 'vitest'
import { spawnChild, srcFile, type Child } from './support/worker-file.js'

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
const N = 4
const LEASE_MS = 300
const BLOCK_MS = 450

const startChild = (file: string, role: string, log: string): Child => spawnChild('outlasting-child.ts', [file, role, String(LEASE_MS), String(BLOCK_MS), log])

describe('workers whose function outlasts the lease [sqlite]', () => {
  const children: Child[] = []
  let dir = ''
  let db: Kysely<any> | undefined
  afterEach(async () => {
    for (const c of children) c.proc.kill('SIGKILL')
    children.length = 0
    await db?.destroy()
    db = undefined
    if (dir !== '') rmSync(dir, { recursive: true, force: true })
  })

  it('two workers end with every row stored, each row computed a bounded number of times (not passed back and forth)', async () => {
    const f = await srcFile('lq-outlast-', N)
    dir = f.dir
    db = f.db
    const { file, log } = f
    for (const role of ['a', 'b']) children.push(startChild(file, role, log))
    // Alone, one worker takes N * BLOCK_MS (1.8 s); taken over once, about twice that.
    const codes = await Promise.race([Promise.all(children.map((c) => c.exited)), sleep(20_000).then(() => 'still running after 20 s')])
    const calls = readFileSync(log, 'utf8').split('\n').filter((l) => l.length > 0)
    expect(codes, `${calls.length} calls; ${children.map((c) => c.lines().join('\n').slice(-300)).join(' | ')}`).toEqual([0, 0])
    // Each row computed by each worker at most once or twice (a take-over each way), not dozens of times.
    expect(calls.length).toBeLessThanOrEqual(4 * N)
    const rows = (await sql<{ lq_key: string; y: unknown }>`SELECT lq_key, y FROM out`.execute(db)).rows.map((r) => [Number(r.lq_key), Number(r.y)]).sort((a, b) => a[0]! - b[0]!)
    expect(rows).toEqual(Array.from({ length: N }, (_, i) => [i + 1, 2 * (i + 1)]))
    const left = await sql<{ n: unknown }>`SELECT (SELECT count(*) FROM lq_claim) + (SELECT count(*) FROM lq_claim_range) AS n`.execute(db)
    expect(Number(left.rows[0]!.n)).toBe(0)
  }, 60_000)
})
