/**
 * A first fill on SQLite skips the look at a claimed page's stored rows while no other writer
 * wrote rows of the table since the fill began (`FillWrites`, `unstoredOf` in scan/fill.ts).
 * These tests pin, with real worker processes on one database file, that rows another process
 * stored while the fill ran are still found by the fill, and computed once in all:
 * - another process `get`s a row of a later page while the fill computes its first page;
 * - another process runs a first fill of its own over the same table meanwhile (its pages
 *   claimed and stored while the first fill waits in its first page).
 * (SQLite only: on PostgreSQL the look is never skipped, `StoreDialect.revsInCommitOrder`.)
 */
import { readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { sql, type Kysely } from 'kysely'
import { afterEach, describe, expect, it } from 'vitest'
import { spawnChild, srcFile, type Child } from './support/worker-file.js'

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
const N = 40
const BATCH = 10

const startChild = (file: string, role: string, log: string, gate: string, action: string): Child => spawnChild('range-child.ts', [file, role, '60000', log, gate, action === 'refresh' ? `refresh:${BATCH}` : action])

const result = (c: Child): Record<string, unknown> => JSON.parse(c.lines().filter((l) => l.startsWith('{')).at(-1)!)
const calls = (log: string, role: string): number[] => readFileSync(log, 'utf8').split('\n').filter((l) => l.startsWith(`${role} `)).map((l) => Number(l.split(' ')[1]))

async function until(what: string, ok: () => boolean | Promise<boolean>, ms = 30_000): Promise<void> {
  for (const t0 = Date.now(); !(await ok()); await sleep(20)) if (Date.now() - t0 > ms) throw new Error(`never: ${what}`)
}

describe('a first fill and rows other worker processes stored meanwhile [sqlite]', () => {
  const children: Child[] = []
  let dir = ''
  let db: Kysely<any> | undefined
  afterEach(async () => {
    for (const c of children) {
      c.proc.kill('SIGCONT')
      c.proc.kill('SIGKILL')
    }
    children.length = 0
    await db?.destroy()
    db = undefined
    if (dir !== '') rmSync(dir, { recursive: true, force: true })
  })

  async function setup(): Promise<{ file: string; log: string }> {
    const f = await srcFile('lq-fill-others-', N)
    dir = f.dir
    db = f.db
    return f
  }

  const rows = async () => (await sql<{ lq_key: string; y: unknown; by: string }>`SELECT lq_key, y, by FROM out`.execute(db!)).rows.map((r) => [Number(r.lq_key), Number(r.y), r.by] as const).sort((a, b) => a[0] - b[0])
  const claimsLeft = async () => Number((await sql<{ n: unknown }>`SELECT (SELECT count(*) FROM lq_claim) + (SELECT count(*) FROM lq_claim_range) AS n`.execute(db!)).rows[0]!.n)

  it('a row of a later page another process got while the fill computed its first page is not computed again by the fill', async () => {
    const { file, log } = await setup()
    const gateA = join(dir, 'gate-a')
    const gateB = join(dir, 'gate-b')
    writeFileSync(gateB, '')
    const a = startChild(file, 'a', log, gateA, 'refresh')
    children.push(a)
    await until('A computing its first page', () => calls(log, 'a').length >= BATCH)
    // Row 38 (the last page, not read ahead yet) by another process, stored at a revision of its own.
    const b = startChild(file, 'b', log, gateB, 'get:38')
    children.push(b)
    expect(await b.exited, b.lines().join('\n')).toBe(0)
    expect(result(b)).toMatchObject({ ok: true, state: 'fresh' })
    writeFileSync(gateA, '')
    expect(await a.exited, a.lines().join('\n')).toBe(0)
    expect(result(a)).toMatchObject({ ok: true, computed: N - 1, superseded: 0 })
    expect(calls(log, 'b')).toEqual([38])
    expect(calls(log, 'a').sort((x, y) => x - y)).toEqual(Array.from({ length: N }, (_, i) => i + 1).filter((k) => k !== 38))
    expect(await rows()).toEqual(Array.from({ length: N }, (_, i) => [i + 1, 2 * (i + 1), i + 1 === 38 ? 'b' : 'a']))
    expect(await claimsLeft()).toBe(0)
  }, 60_000)

  it('rows another process filled while the first fill waited in its first page are not computed again by the first fill', async () => {
    const { file, log } = await setup()
    const gateA = join(dir, 'gate-a')
    const gateB = join(dir, 'gate-b')
    writeFileSync(gateB, '')
    const a = startChild(file, 'a', log, gateA, 'refresh')
    children.push(a)
    await until('A computing its first page', () => calls(log, 'a').length >= BATCH)
    // B fills what A has not claimed (A claimed its first page and the one it read ahead), and
    // waits for A's rows; A's later pages then hold rows B stored.
    const b = startChild(file, 'b', log, gateB, 'refresh')
    children.push(b)
    await until('B storing the rows it computed', async () => {
      const done = calls(log, 'b')
      return done.includes(N) && (await rows()).filter((r) => r[2] === 'b').length === done.length
    }, 8000).catch(async (e) => {
      throw new Error(`${e}: a ${calls(log, 'a')} b ${calls(log, 'b')} stored ${JSON.stringify(await rows())} ranges ${JSON.stringify((await sql`SELECT * FROM lq_claim_range`.execute(db!)).rows)} B: ${b.lines().join(' | ')}`)
    })
    writeFileSync(gateA, '')
    expect(await a.exited, a.lines().join('\n')).toBe(0)
    expect(await b.exited, b.lines().join('\n')).toBe(0)
    const byA = calls(log, 'a')
    const byB = calls(log, 'b')
    // Every row computed once, by one of them.
    expect([...byA, ...byB].sort((x, y) => x - y)).toEqual(Array.from({ length: N }, (_, i) => i + 1))
    expect(result(a)).toMatchObject({ ok: true, computed: byA.length, superseded: 0 })
    expect(result(b)).toMatchObject({ ok: true, computed: byB.length, superseded: 0 })
    expect((await rows()).map(([k, y]) => [k, y])).toEqual(Array.from({ length: N }, (_, i) => [i + 1, 2 * (i + 1)]))
    expect(await claimsLeft()).toBe(0)
  }, 60_000)
})
