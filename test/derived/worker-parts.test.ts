/**
 * The pure parts of workers: bounded concurrency (limit.ts) and debounce (debounce.ts, with a
 * fake clock), and the wake sources (wake.ts) on a real SQLite clock and files, and a fake LISTEN connection.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { limiter } from '../../src/derived/limit.js'
import { othersPause, readAheadQueue } from '../../src/derived/refresh.js'
import { Settling } from '../../src/derived/debounce.js'
import { EventEmitter } from 'node:events'
import { listenRoots, pollClock, watchFiles, type ListenClient } from '../../src/derived/wake.js'

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

describe('limiter', () => {
  it('never runs more than n calls at once, and runs them all', async () => {
    const run = limiter(3)
    let now = 0
    let peak = 0
    const out = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        run(async () => {
          now++
          peak = Math.max(peak, now)
          await sleep(5 + (i % 3))
          now--
          return i * 2
        }),
      ),
    )
    expect(peak).toBe(3)
    expect(out).toEqual(Array.from({ length: 20 }, (_, i) => i * 2))
  })

  it('a call that throws or rejects frees its slot', async () => {
    const run = limiter(1)
    const a = run(() => {
      throw new Error('sync')
    })
    const b = run(() => Promise.reject(new Error('async')))
    const c = run(() => 7)
    await expect(a).rejects.toThrow('sync')
    await expect(b).rejects.toThrow('async')
    expect(await c).toBe(7)
  })

  it('untilQueued settles once at most k calls are queued, and callMs averages the calls', async () => {
    const run = limiter(2)
    expect(run.callMs()).toBeUndefined()
    const calls = Array.from({ length: 8 }, () => run(() => sleep(10)))
    expect(run.queued()).toBe(6)
    let settledAt = -1
    const w = run.untilQueued(2).then(() => (settledAt = run.queued()))
    await w
    expect(settledAt).toBeLessThanOrEqual(2)
    await run.untilQueued(100)
    await Promise.all(calls)
    expect(run.queued()).toBe(0)
    expect(run.callMs()).toBeGreaterThanOrEqual(5)
  })

  it('rejects a limit that is not a positive integer', () => {
    expect(() => limiter(0)).toThrow(RangeError)
    expect(() => limiter(1.5)).toThrow(RangeError)
  })
})

describe('read-ahead and polling of a refresh', () => {
  it('the next batch is read once the queued calls would run out within twice the last read and a round of calls', () => {
    // 16 slots, 10 ms calls, 20 ms reads: 64 queued calls take 40 ms, plus one round.
    expect(readAheadQueue(16, 10, 20)).toBe(80)
    // No call settled yet, no read timed, or calls too fast to measure: read at once.
    expect(readAheadQueue(16, undefined, 20)).toBeUndefined()
    expect(readAheadQueue(16, 10, 0)).toBeUndefined()
    expect(readAheadQueue(16, 0.01, 20)).toBeUndefined()
  })

  it('a refresh waiting for other workers looks again after an eighth of its wait so far, from 5 to 100 ms', () => {
    expect(othersPause(0)).toBe(5)
    expect(othersPause(160)).toBe(20)
    expect(othersPause(60_000)).toBe(100)
  })
})

describe('debounce (fake clock)', () => {
  it('a row written 10 times within d settles d after its last write, once', () => {
    const s = new Settling(100)
    for (let i = 0; i < 10; i++) s.note('r', '1', i + 1, i * 9)
    // Last write at t=81: settling until 181.
    expect(s.settling('r', '1', 150)).toBe(true)
    expect(s.nextSettle()).toBe(181)
    expect(s.settling('r', '1', 181)).toBe(false)
    s.prune(181)
    expect(s.size).toBe(0)
  })

  it('an old revision seen again does not restart the wait; other rows are independent', () => {
    const s = new Settling(50)
    s.note('r', 'a', 5, 0)
    s.note('r', 'a', 5, 40)
    s.note('r', 'b', 1, 30)
    expect(s.settling('r', 'a', 50)).toBe(false)
    expect(s.settling('r', 'b', 50)).toBe(true)
    expect(s.settling('other', 'a', 10)).toBe(false)
    s.prune(50)
    expect(s.size).toBe(1)
    expect(s.nextSettle()).toBe(80)
  })

  it('nothing settling: no wake-up time', () => {
    expect(new Settling(10).nextSettle()).toBeUndefined()
  })
})

/** A fake LISTEN connection: an event emitter whose queries are recorded; `release` records how it was given back. */
class FakeClient extends EventEmitter {
  readonly queries: string[] = []
  released: unknown = 'no'
  async query(text: string): Promise<unknown> {
    this.queries.push(text)
    return {}
  }
  release(err?: Error | boolean): void {
    this.released = err
  }
}

describe('wake sources', () => {
  it('listenRoots replaces a connection the server ended: the broken one is released as broken, its later errors are listened to, connect is called again until it works, then onReconnect', async () => {
    const clients: FakeClient[] = []
    let failures = 2
    const errors: unknown[] = []
    const notified: string[] = []
    let reconnected = 0
    const connect = async (): Promise<ListenClient> => {
      if (clients.length > 0 && failures-- > 0) throw new Error('connection refused')
      const c = new FakeClient()
      clients.push(c)
      return c as unknown as ListenClient
    }
    const src = await listenRoots(connect, 's', (t) => notified.push(t), (e) => errors.push(e), () => reconnected++, 5)
    const first = clients[0]!
    expect(first.queries).toEqual(['LISTEN lq_changed'])
    first.emit('notification', { channel: 'lq_changed', payload: 's.roots' })
    first.emit('notification', { channel: 'lq_changed', payload: 'other.roots' })
    expect(notified).toEqual(['roots'])
    // The server ends it: node-postgres emits an error, then another as the socket closes.
    first.emit('error', new Error('terminating connection due to administrator command'))
    first.emit('error', new Error('Connection terminated unexpectedly'))
    expect(first.released).toBeInstanceOf(Error)
    for (let i = 0; i < 200 && reconnected === 0; i++) await sleep(5)
    expect(reconnected).toBe(1)
    expect(clients.length).toBe(2)
    expect(clients[1]!.queries).toEqual(['LISTEN lq_changed'])
    // Reported: the lost connection, then the two failed connects.
    expect(errors.map((e) => (e as Error).message)).toEqual(['terminating connection due to administrator command', 'connection refused', 'connection refused'])
    clients[1]!.emit('notification', { channel: 'lq_changed', payload: 's.roots2' })
    expect(notified).toEqual(['roots', 'roots2'])
    await src.close()
    expect(clients[1]!.queries).toEqual(['LISTEN lq_changed', 'UNLISTEN lq_changed'])
    expect(clients[1]!.released).toBeUndefined()
    // After close, an error of the closed connection is listened to and changes nothing.
    clients[1]!.emit('error', new Error('late'))
    await sleep(30)
    expect(clients.length).toBe(2)
  }, 30_000)

  it('pollClock calls back when the clock moves, not before', async () => {
    let rev = 1
    const seen: number[] = []
    const src = pollClock(async () => rev, 10, (r) => seen.push(r), (e) => {
      throw e
    })
    await sleep(100)
    expect(seen).toEqual([])
    rev = 2
    for (let i = 0; i < 100 && seen.length === 0; i++) await sleep(20)
    await src.close()
    expect(seen).toEqual([2])
  }, 30_000)

  it('pollClock reports a failing read and keeps polling', async () => {
    let fail = true
    const errors: unknown[] = []
    const changes: number[] = []
    let rev = 1
    const src = pollClock(
      async () => {
        if (fail) throw new Error('down')
        return rev
      },
      10,
      (r) => changes.push(r),
      (e) => errors.push(e),
    )
    for (let i = 0; i < 100 && errors.length === 0; i++) await sleep(10)
    fail = false
    await sleep(60)
    rev = 3
    for (let i = 0; i < 100 && changes.length === 0; i++) await sleep(20)
    await src.close()
    expect(errors.length).toBeGreaterThan(0)
    expect(changes).toEqual([3])
  }, 30_000)

  it('watchFiles calls back when a watched file is written', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'lq-wake-'))
    const file = join(dir, 'dep.txt')
    writeFileSync(file, 'one')
    const seen: string[] = []
    const src = watchFiles([file], (p) => seen.push(p), (e) => {
      throw e
    })
    await sleep(50)
    writeFileSync(file, 'two')
    for (let i = 0; i < 100 && seen.length === 0; i++) await sleep(20)
    await src.close()
    rmSync(dir, { recursive: true, force: true })
    expect(seen[0]).toBe(file)
  }, 30_000)
})
