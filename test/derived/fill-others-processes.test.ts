/**
 * A first fill on SQLite skips the look at a claimed page's stored rows while no other writer
 * wrote rows of the table since the fill began (`FillWrites`, `unstoredOf` in scan/fill.ts).
 * These tests pin, with real worker processes on one database file, that rows another process
 * stored while the fill ran are still found by the fill, and computed once in all:
 * - another process `get`s a row of a later page while the fill computes its first page;
 * - another process runs a first fill of its own over the same table meanwhile (its pages
 *   claimed and stored while the first fill waits in its first page).
 * (SQLite only: on PostgreSQL the look is never skipped, `StoreDialect.oneWriter`.)
 */
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { sql } from 'kysely'
import { describe, expect, it } from 'vitest'
import { fileWorkers, lastJson, spawnChild, until, type Child } from './support/worker-file.js'

const N = 40
const BATCH = 10

const startChild = (file: string, role: string, log: string, gate: string, action: string): Child => spawnChild('range-child.ts', [file, role, '60000', log, gate, action === 'refresh' ? `refresh:${BATCH}` : action])

const calls = (log: string, role: string): number[] => readFileSync(log, 'utf8').split('\n').filter((l) => l.startsWith(`${role} `)).map((l) => Number(l.split(' ')[1]))

describe('a first fill and rows other worker processes stored meanwhile [sqlite]', () => {
  const w = fileWorkers('lq-fill-others-', N)
  const { children, setup, rows, claimsLeft } = w

  /** A fresh store, and process A filling it, held (gate A shut) once it computes its first page; gate B open. */
  const fillComputingFirstPage = async () => {
    const { file, log } = await setup()
    const gateA = join(w.dir(), 'gate-a')
    const gateB = join(w.dir(), 'gate-b')
    writeFileSync(gateB, '')
    const a = startChild(file, 'a', log, gateA, 'refresh')
    children.push(a)
    await until('A computing its first page', () => calls(log, 'a').length >= BATCH)
    return { file, log, gateA, gateB, a }
  }

  it('a row of a later page another process got while the fill computed its first page is not computed again by the fill', async () => {
    const { file, log, gateA, gateB, a } = await fillComputingFirstPage()
    // Row 38 (the last page, not read ahead yet) by another process, stored at a revision of its own.
    const b = startChild(file, 'b', log, gateB, 'get:38')
    children.push(b)
    expect(await b.exited, b.lines().join('\n')).toBe(0)
    expect(lastJson(b)).toMatchObject({ ok: true, state: 'fresh' })
    writeFileSync(gateA, '')
    expect(await a.exited, a.lines().join('\n')).toBe(0)
    expect(lastJson(a)).toMatchObject({ ok: true, computed: N - 1, superseded: 0 })
    expect(calls(log, 'b')).toEqual([38])
    expect(calls(log, 'a').sort((x, y) => x - y)).toEqual(Array.from({ length: N }, (_, i) => i + 1).filter((k) => k !== 38))
    expect(await rows()).toEqual(Array.from({ length: N }, (_, i) => [i + 1, 2 * (i + 1), i + 1 === 38 ? 'b' : 'a']))
    expect(await claimsLeft()).toBe(0)
  }, 60_000)

  it('rows another process filled while the first fill waited in its first page are not computed again by the first fill', async () => {
    const { file, log, gateA, gateB, a } = await fillComputingFirstPage()
    // B fills what A has not claimed (A claimed its first page and the one it read ahead), and
    // waits for A's rows; A's later pages then hold rows B stored.
    const b = startChild(file, 'b', log, gateB, 'refresh')
    children.push(b)
    await until('B storing the rows it computed', async () => {
      const done = calls(log, 'b')
      return done.includes(N) && (await rows()).filter((r) => r[2] === 'b').length === done.length
    }, 8000).catch(async (e) => {
      throw new Error(`${e}: a ${calls(log, 'a')} b ${calls(log, 'b')} stored ${JSON.stringify(await rows())} ranges ${JSON.stringify((await sql`SELECT * FROM lq_claim_range`.execute(w.db())).rows)} B: ${b.lines().join(' | ')}`)
    })
    writeFileSync(gateA, '')
    expect(await a.exited, a.lines().join('\n')).toBe(0)
    expect(await b.exited, b.lines().join('\n')).toBe(0)
    const byA = calls(log, 'a')
    const byB = calls(log, 'b')
    // Every row computed once, by one of them.
    expect([...byA, ...byB].sort((x, y) => x - y)).toEqual(Array.from({ length: N }, (_, i) => i + 1))
    expect(lastJson(a)).toMatchObject({ ok: true, computed: byA.length, superseded: 0 })
    expect(lastJson(b)).toMatchObject({ ok: true, computed: byB.length, superseded: 0 })
    expect((await rows()).map(([k, y]) => [k, y])).toEqual(Array.from({ length: N }, (_, i) => [i + 1, 2 * (i + 1)]))
    expect(await claimsLeft()).toBe(0)
  }, 60_000)
})
