/**
 * The watch loop (watch.ts) over a fake host: waves on wakes, never overlapping; debounce
 * defers a row until it settled, then computes it once; busy errors are retried and reported;
 * other errors stop the watcher; stop drains and releases the claims.
 */
import { describe, expect, it } from 'vitest'
import { LineageQueryError } from '../../src/errors.js'
import { startWatch, type WatchEvent, type WatchHost, type WaveOptions } from '../../src/derived/watch.js'
import { emptyTableReport, type RefreshReport } from '../../src/derived/types.js'

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
const report = (computed: number): RefreshReport => ({ tables: {}, totals: { ...emptyTableReport(), computed }, durationMs: 1 })

/** A fake store: root rows with revisions; a wave computes every changed row not settling. */
function fakeHost() {
  let clock = 0
  const rows = new Map<string, number>()
  const computedAt = new Map<string, number>()
  const computeCounts = new Map<string, number>()
  let wake: ((why: 'root-write') => void) | undefined
  let running = 0
  let maxRunning = 0
  let released = 0
  let failNext: unknown
  const host: WatchHost = {
    async wave(o: WaveOptions) {
      running++
      maxRunning = Math.max(maxRunning, running)
      await sleep(5)
      running--
      if (failNext !== undefined) {
        const e = failNext
        failNext = undefined
        throw e
      }
      let computed = 0
      let deferred = 0
      for (const [k, rev] of rows) {
        if ((computedAt.get(k) ?? 0) >= rev) continue
        if (o.settling('r', k)) {
          deferred++
          continue
        }
        computedAt.set(k, rev)
        computeCounts.set(k, (computeCounts.get(k) ?? 0) + 1)
        computed++
      }
      return { report: report(computed), deferred, heldByOthers: 0 }
    },
    async changes(since) {
      return { clock, rows: since === undefined ? [] : [...rows].filter(([, rev]) => rev > since).map(([key, rev]) => ({ table: 'r', key, rev })) }
    },
    async sources(w) {
      wake = w
      return [{ close: async () => {} }]
    },
    async recheckCode() {
      return false
    },
    async releaseAll() {
      released++
    },
  }
  return {
    host,
    write(key: string) {
      rows.set(key, ++clock)
      wake?.('root-write')
    },
    counts: computeCounts,
    get maxRunning() {
      return maxRunning
    },
    get released() {
      return released
    },
    failWith(e: unknown) {
      failNext = e
    },
  }
}

async function until(cond: () => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms
  while (!cond()) {
    if (Date.now() > end) throw new Error('timed out waiting')
    await sleep(5)
  }
}

describe('watch loop', () => {
  it('computes each write, never runs two waves at once, and stop releases the claims', async () => {
    const f = fakeHost()
    const events: WatchEvent[] = []
    const w = startWatch(f.host, { onProgress: (e) => events.push(e) }, 100)
    await sleep(20)
    for (let i = 0; i < 20; i++) {
      f.write(`k${i % 5}`)
      await sleep(1)
    }
    await until(() => [...f.counts.values()].reduce((a, b) => a + b, 0) >= 5 && events.filter((e) => e.kind === 'wave').length >= 2)
    await sleep(50)
    await w.stop()
    expect(f.maxRunning).toBe(1)
    expect(f.released).toBe(1)
    expect([...f.counts.keys()].sort()).toEqual(['k0', 'k1', 'k2', 'k3', 'k4'])
  }, 30_000)

  it('with debounce d, a row written 10 times within d is computed once, after it settled', async () => {
    const f = fakeHost()
    const w = startWatch(f.host, { debounceMs: 300 }, 100)
    await sleep(20)
    const t0 = Date.now()
    for (let i = 0; i < 10; i++) {
      f.write('hot')
      await sleep(10)
    }
    await until(() => f.counts.get('hot') === 1)
    const waited = Date.now() - t0
    await sleep(400)
    await w.stop()
    expect(f.counts.get('hot')).toBe(1)
    expect(waited).toBeGreaterThanOrEqual(300)
  }, 30_000)

  it('a busy database is reported and retried; another error stops the watcher with it', async () => {
    const f = fakeHost()
    const events: WatchEvent[] = []
    const w = startWatch(f.host, { onProgress: (e) => events.push(e) }, 100)
    await sleep(20)
    f.failWith(new LineageQueryError('busy', 'store.refresh: busy'))
    f.write('a')
    await until(() => f.counts.get('a') === 1)
    expect(events.some((e) => e.kind === 'error')).toBe(true)
    f.failWith(new LineageQueryError('schema', 'table gone'))
    f.write('b')
    await expect(w.stopped).rejects.toThrow('table gone')
    expect(f.released).toBe(1)
  }, 30_000)

  it('an aborted signal stops the watcher', async () => {
    const f = fakeHost()
    const ac = new AbortController()
    const w = startWatch(f.host, { signal: ac.signal }, 100)
    await sleep(20)
    ac.abort()
    await w.stopped
    expect(f.released).toBe(1)
  }, 30_000)
})
