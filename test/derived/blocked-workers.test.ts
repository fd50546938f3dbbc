/**
 * Two worker processes whose function blocks the event loop for longer than the lease (no
 * heartbeat runs while it computes: a synchronous compiler run, a CPU-bound step). Worker A's
 * lease runs out while it computes; worker B, waiting for A's row, takes it over, and blocks in
 * turn past its own lease. A's write is then refused by the fence, and B's too if A took the row
 * back meanwhile. Both refresh() calls must still end, with the row stored, after a bounded
 * number of calls: the row is computed, not taken back and forth for ever.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { sql } from 'kysely'
import { afterEach, describe, expect, it } from 'vitest'
import { openStore } from '../../src/derived/index.js'
import { createTable, insertRows } from '../../src/query/ddl.js'
import { sleep, target, type Target } from './fixtures/worker-harness.js'
import { src } from './fixtures/worker-schema.js'

const here = dirname(fileURLToPath(import.meta.url))
/** Lease and call lengths: a call past twice the lease, and one between the lease and twice it. */
const CASES = [
  { leaseMs: 200, blockMs: 800 },
  { leaseMs: 400, blockMs: 600 },
] as const

interface Child {
  readonly proc: ChildProcess
  readonly ready: Promise<void>
  readonly exited: Promise<number | null>
  out: string
}

function startChild(dialect: string, t: Target, log: string, { leaseMs, blockMs }: (typeof CASES)[number], mode: 'refresh' | 'watch' = 'refresh'): Child {
  const proc = spawn(process.execPath, ['--import', 'tsx', join(here, 'fixtures', 'blocking-child.ts'), dialect, ...t.args, log, String(leaseMs)], {
    cwd: join(here, '..', '..'),
    stdio: ['pipe', 'pipe', 'pipe'],
    env: { ...process.env, LQ_BLOCK_MS: String(blockMs), LQ_MODE: mode },
  })
  const c: Child = {
    proc,
    out: '',
    ready: new Promise<void>((resolve, reject) => {
      proc.stdout!.on('data', (b: Buffer) => {
        c.out += b.toString()
        if (c.out.includes('ready')) resolve()
      })
      proc.on('close', () => reject(new Error(`worker exited before it was ready: ${c.out}`)))
    }),
    exited: new Promise((resolve) => proc.on('close', (code) => resolve(code))),
  }
  c.ready.catch(() => undefined)
  proc.stderr!.on('data', (b: Buffer) => (c.out += b.toString()))
  return c
}

for (const dialect of ['sqlite', 'postgres'] as const) {
  describe(`workers whose function blocks past the lease [${dialect}]`, () => {
    const children: Child[] = []
    let dir = ''
    let t: Target | undefined
    afterEach(async () => {
      for (const w of children.splice(0)) if (w.proc.exitCode === null && w.proc.signalCode === null) w.proc.kill('SIGKILL')
      await t?.close()
      rmSync(dir, { recursive: true, force: true })
    })

    /**
     * A store over `src` (one row) and two workers on it (`mode`: each runs one refresh, or
     * watches): A starts computing; B starts while A is blocked in its call (A's lease runs out
     * meanwhile).
     */
    async function startPair(c: (typeof CASES)[number], mode?: 'watch'): Promise<{ a: Child; b: Child; log: string }> {
      dir = mkdtempSync(join(tmpdir(), 'lq-blocked-'))
      t = await target(dialect, dir)
      await createTable(t.db, src)
      await insertRows(t.db, src, [{ id: 1, v: 1 }])
      const store = await openStore(t.db, { leaseMs: c.leaseMs })
      await store.track(src)
      const log = join(dir, 'calls.log')
      writeFileSync(log, '')
      const a = startChild(dialect, t, log, c, mode)
      const b = startChild(dialect, t, log, c, mode)
      children.push(a, b)
      await Promise.all([a.ready, b.ready])
      a.proc.stdin!.write('go\n')
      for (const t0 = Date.now(); !readFileSync(log, 'utf8').includes('S ') && Date.now() - t0 < 20_000; ) await sleep(10)
      await sleep(50)
      b.proc.stdin!.write('go\n')
      return { a, b, log }
    }

    for (const c of CASES)
    it(`two workers taking a row over from each other while blocked past the lease both end, with the row stored and computed a bounded number of times (lease ${c.leaseMs} ms, call ${c.blockMs} ms)`, async () => {
      const { a, b, log } = await startPair(c)
      const bound = 8 * c.blockMs + 5000
      const codes = await Promise.race([Promise.all([a.exited, b.exited]), sleep(bound).then(() => 'still running' as const)])
      const calls = readFileSync(log, 'utf8').split('\n').filter((l) => l.startsWith('S ')).length
      expect({ codes, calls }, `${a.out}\n${b.out}`).toMatchObject({ codes: [0, 0] })
      expect(calls).toBeLessThanOrEqual(3)
      const rows = (await sql<{ lq_key: string; y: unknown }>`SELECT lq_key, y FROM slow`.execute(t!.db)).rows.map((r) => [r.lq_key, Number(r.y)])
      expect(rows).toEqual([['1', 10]])
    }, 60_000)

    for (const c of CASES)
    it(`two watch workers taking a row over from each other while blocked past the lease store the row, computed a bounded number of times (lease ${c.leaseMs} ms, call ${c.blockMs} ms)`, async () => {
      const { a, b, log } = await startPair(c, 'watch')
      const stored = async () => (await sql<{ lq_key: string; y: unknown }>`SELECT lq_key, y FROM slow`.execute(t!.db)).rows.map((r) => [r.lq_key, Number(r.y)])
      for (const t0 = Date.now(); (await stored()).length === 0 && Date.now() - t0 < 8 * c.blockMs + 5000; ) await sleep(20)
      // Both stop (each finishes its call in progress), then the row and the calls are looked at.
      a.proc.stdin!.write('stop\n')
      b.proc.stdin!.write('stop\n')
      const codes = await Promise.race([Promise.all([a.exited, b.exited]), sleep(4 * c.blockMs + 5000).then(() => 'still running' as const)])
      const calls = readFileSync(log, 'utf8').split('\n').filter((l) => l.startsWith('S ')).length
      expect({ rows: await stored(), codes }, `${a.out}\n${b.out}`).toEqual({ rows: [['1', 10]], codes: [0, 0] })
      expect(calls).toBeLessThanOrEqual(3)
    }, 60_000)
  })
}
