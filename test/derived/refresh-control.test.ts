/**
 * Controlling a refresh: per-call timeouts, AbortSignal, onProgress, and the event loop during a
 * long refresh, on SQLite and PostgreSQL.
 */
import * as t from 'io-ts'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { LineageQueryError } from '../../src/errors.js'
import { createTable, insertRows } from '../../src/query/ddl.js'
import { table } from '../../src/query/dsl.js'
import { openStore, type RefreshProgress } from '../../src/derived/index.js'
import { dialectNames, open, type TestDb } from '../support/db.js'
import { rejection } from '../support/errors.js'

const src = table('src', { id: t.Int, x: t.Int })

async function setup(db: TestDb['db'], n: number): Promise<void> {
  await createTable(db, src)
  const rows = Array.from({ length: n }, (_, i) => ({ id: i + 1, x: i + 1 }))
  for (let i = 0; i < rows.length; i += 5000) await insertRows(db, src, rows.slice(i, i + 5000))
}

const never = <T>(): Promise<T> => new Promise<T>(() => undefined)

for (const dialect of dialectNames) {
  describe(`refresh control [${dialect}]`, () => {
    let tdb: TestDb
    beforeEach(async () => {
      tdb = await open(dialect)
    })
    afterEach(async () => {
      await tdb.close()
    })

    it('a call that never settles is stored as failed with a timeout cause, and the rest of its batch is stored', async () => {
      await setup(tdb.db, 4)
      const store = await openStore(tdb.db)
      await store.track(src)
      let aborted = false
      const out = store.derive({
        name: 'out',
        from: src,
        output: { y: t.Int },
        timeoutMs: 150,
        fn: async (r, ctx) => {
          if (r.id === 2) {
            ctx.signal.addEventListener('abort', () => (aborted = true))
            return never()
          }
          return { y: r.x * 10 }
        },
      })
      const report = await store.refresh()
      expect(report.tables['out']).toMatchObject({ computed: 3, failed: 1 })
      expect(aborted).toBe(true)
      const s = await store.status(out, 2)
      expect(s.state).toBe('failed')
      expect(s.causes).toEqual([{ kind: 'timeout', table: 'out', key: 2, timeoutMs: 150, message: expect.stringContaining('did not settle within 150 ms') }])
      const g = await store.get(out, 2)
      expect(g.state).toBe('failed')
      expect(await store.get(out, 1)).toMatchObject({ state: 'fresh', value: { y: 10 } })
      // A timed-out row is a result like an error: not retried until its input or code changes.
      expect((await store.refresh()).totals.failed).toBe(0)
    })

    it('refresh timeoutMs applies to derivations that declare none; the store option is the default', async () => {
      await setup(tdb.db, 2)
      const store = await openStore(tdb.db, { timeoutMs: 100 })
      await store.track(src)
      const out = store.derive({ name: 'out', from: src, output: { y: t.Int }, fn: async (r) => (r.id === 1 ? never<{ y: number }>() : { y: 1 }) })
      const started = performance.now()
      expect((await store.refresh({ timeoutMs: 50 })).tables['out']).toMatchObject({ computed: 1, failed: 1 })
      expect(performance.now() - started).toBeLessThan(5000)
      expect((await store.status(out, 1)).causes[0]).toMatchObject({ kind: 'timeout', timeoutMs: 50 })
    })

    it('a second refresh and a get in the same process do not hang while a call is stuck', async () => {
      await setup(tdb.db, 3)
      const store = await openStore(tdb.db)
      await store.track(src)
      const out = store.derive({ name: 'out', from: src, output: { y: t.Int }, timeoutMs: 200, fn: async (r) => (r.id === 3 ? never<{ y: number }>() : { y: r.x }) })
      const first = store.refresh()
      await new Promise((r) => setTimeout(r, 20))
      const [a, b, c] = await Promise.all([first, store.refresh(), store.get(out, 3)])
      expect(a.totals.computed + b.totals.computed).toBe(2)
      expect(c.state).toBe('failed')
      expect((await store.status(out, 1)).state).toBe('fresh')
    })

    it('abort stops after the current batch, keeps what was stored, and rejects with the partial report; the next refresh finishes', async () => {
      await setup(tdb.db, 10)
      const store = await openStore(tdb.db)
      await store.track(src)
      store.derive({ name: 'out', from: src, output: { y: t.Int }, fn: async (r) => ({ y: r.x }) })
      const ac = new AbortController()
      const err = await rejection(
        store.refresh({
          batchSize: 3,
          signal: ac.signal,
          onProgress: (p) => {
            if (p.phase === 'batch') ac.abort(new Error('user pressed Ctrl-C'))
          },
        }),
      )
      expect(err.code).toBe('aborted')
      expect(err.message).toContain('user pressed Ctrl-C')
      const partial = err.details['report'] as { totals: { computed: number } }
      // Batches run as a pipeline: the batch in flight when the abort came (computed while the
      // first was stored) is stored too; nothing after it starts.
      expect([3, 6]).toContain(partial.totals.computed)
      const next = await store.refresh()
      expect(next.totals.computed).toBe(10 - partial.totals.computed)
      expect(await store.stale()).toEqual([])
    })

    it('abort with a concurrency limit stops at once while the next batch waits for the queued calls to run out (no wait for the abandoned calls)', async () => {
      await setup(tdb.db, 300)
      const store = await openStore(tdb.db)
      await store.track(src)
      const ac = new AbortController()
      let started = 0
      let abortedAt = 0
      store.derive({
        name: 'out',
        from: src,
        output: { y: t.Int },
        fn: async (r) => {
          // The 60th call is in the second batch, while the third waits to be read (readAheadQueue).
          if (++started === 60) {
            abortedAt = performance.now()
            ac.abort()
          }
          await new Promise((res) => setTimeout(res, 50))
          return { y: r.x }
        },
      })
      const err = await rejection(store.refresh({ batchSize: 50, concurrency: 1, signal: ac.signal }))
      const late = performance.now() - abortedAt
      expect(err.code).toBe('aborted')
      // The batch in flight is abandoned: its 40 queued calls (2 s) are not waited for.
      expect(late).toBeLessThan(1000)
      await store.refresh()
      expect(await store.stale()).toEqual([])
    }, 60_000)

    it('abort while a call is stuck abandons it: the settled results of its batch are stored and its row stays missing', async () => {
      await setup(tdb.db, 3)
      const store = await openStore(tdb.db)
      await store.track(src)
      let signalled = false
      const ac = new AbortController()
      const out = store.derive({
        name: 'out',
        from: src,
        output: { y: t.Int },
        fn: async (r, ctx) => {
          if (r.id !== 2) return { y: r.x }
          ctx.signal.addEventListener('abort', () => (signalled = true))
          setTimeout(() => ac.abort(), 30)
          return never<{ y: number }>()
        },
      })
      const err = await rejection(store.refresh({ signal: ac.signal }))
      expect(err.code).toBe('aborted')
      expect(signalled).toBe(true)
      expect((await store.status(out, 1)).state).toBe('fresh')
      expect((await store.status(out, 3)).state).toBe('fresh')
      expect((await store.status(out, 2)).state).toBe('missing')
      expect((await store.stale()).map((r) => r.key)).toEqual([2])
    })

    it('get with an aborted signal rejects with an aborted error; a get waiting on a stuck call stops when aborted', async () => {
      await setup(tdb.db, 1)
      const store = await openStore(tdb.db)
      await store.track(src)
      const out = store.derive({ name: 'out', from: src, output: { y: t.Int }, fn: () => never<{ y: number }>() })
      const ac = new AbortController()
      ac.abort()
      expect((await rejection(store.get(out, 1, { signal: ac.signal }))).code).toBe('aborted')
      const stuck = new AbortController()
      const running = store.refresh({ signal: stuck.signal }).catch((e: unknown) => e)
      await new Promise((r) => setTimeout(r, 20))
      const waiting = new AbortController()
      setTimeout(() => waiting.abort(), 50)
      expect((await rejection(store.get(out, 1, { signal: waiting.signal }))).code).toBe('aborted')
      stuck.abort()
      expect(((await running) as LineageQueryError).code).toBe('aborted')
    })

    it('onProgress reports scan, batch and done per table, with done counting up to total', async () => {
      await setup(tdb.db, 5)
      const store = await openStore(tdb.db)
      await store.track(src)
      const a = store.derive({ name: 'a', from: src, output: { y: t.Int }, fn: (r) => ({ y: r.x }) })
      store.derive({ name: 'b', from: a, output: { z: t.Int }, fn: (r) => ({ z: r.y + 1 }) })
      const events: RefreshProgress[] = []
      await store.refresh({ batchSize: 2, onProgress: (p) => events.push(p) })
      const brief = events.map((e) => [e.table, e.tableIndex, e.tableCount, e.phase, e.done, e.total])
      expect(brief).toEqual([
        ['a', 0, 2, 'scan', 0, 5],
        ['a', 0, 2, 'batch', 2, 5],
        ['a', 0, 2, 'batch', 4, 5],
        ['a', 0, 2, 'batch', 5, 5],
        ['a', 0, 2, 'done', 5, 5],
        ['b', 1, 2, 'scan', 0, 5],
        ['b', 1, 2, 'batch', 2, 5],
        ['b', 1, 2, 'batch', 4, 5],
        ['b', 1, 2, 'batch', 5, 5],
        ['b', 1, 2, 'done', 5, 5],
      ])
      expect(events.at(-1)!.counts).toMatchObject({ computed: 5 })
      expect(events.every((e) => e.elapsedMs >= 0)).toBe(true)
    })

    it('bad options are argument errors', async () => {
      await setup(tdb.db, 1)
      const store = await openStore(tdb.db)
      await store.track(src)
      expect((await rejection(store.refresh({ timeoutMs: 0 }))).code).toBe('argument')
      expect((await rejection(store.refresh({ signal: {} as AbortSignal }))).code).toBe('argument')
      expect((await rejection(store.refresh({ onProgress: 3 as unknown as () => void }))).code).toBe('argument')
      expect(() => store.derive({ name: 'o', from: src, output: { y: t.Int }, timeoutMs: -1, fn: (r) => ({ y: r.x }) })).toThrow(/timeoutMs must be a positive integer/)
    })

    it('a long refresh lets a 20 ms interval timer tick between batches', async () => {
      await setup(tdb.db, 20_000)
      const store = await openStore(tdb.db)
      await store.track(src)
      // Each call spins a little, so the refresh takes a few hundred ms of CPU whatever the machine.
      const spin = (ms: number) => {
        const end = performance.now() + ms
        while (performance.now() < end);
      }
      store.derive({ name: 'out', from: src, output: { y: t.Int }, fn: (r) => (r.id % 50 === 0 && spin(1), { y: r.x }) })
      let ticks = 0
      const timer = setInterval(() => ticks++, 20)
      try {
        await store.refresh({ batchSize: 500 })
      } finally {
        clearInterval(timer)
      }
      expect(ticks).toBeGreaterThanOrEqual(3)
    })
  })
}
