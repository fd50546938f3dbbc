/**
 * What wakes a watching worker (`store.watch`), without scanning the tables:
 *
 * - PostgreSQL with a listening connection: `LISTEN lq_changed`; the root triggers notify after
 *   every root write (payload `schema.table`, see `NOTIFY_CHANNEL`), and a notification of this
 *   store's schema wakes the worker at once.
 * - otherwise (SQLite; PostgreSQL without a listening connection): the store clock, read on a
 *   short timer (`pollMs`): one primary-key read on SQLite (the clock row every root trigger
 *   bumps), one sequence read on PostgreSQL. It never reads a root or revision table.
 * - files: the `dependsOn` files of the declarations, watched with `fs.watch` (inotify on Linux),
 *   so a code change is noticed without a restart.
 *
 * Each source calls `wake()`; the worker coalesces wakes (one refresh at a time, and one more
 * after it when woken meanwhile).
 */
import { watch as fsWatch, type FSWatcher } from 'node:fs'
import { NOTIFY_CHANNEL } from './sql/dialect.js'

export interface WakeSource {
  close(): Promise<void>
}

/** The part of a node-postgres `Client` (or pooled client) that LISTEN needs. */
export interface ListenClient {
  query(text: string): Promise<unknown>
  on(event: 'notification', listener: (msg: { channel: string; payload?: string | undefined }) => void): unknown
  on(event: 'error', listener: (err: Error) => void): unknown
  removeListener(event: string, listener: (...args: any[]) => void): unknown
  /** A pooled client: given back to its pool on close. */
  release?(): void
  /** A client of its own: ended on close. */
  end?(): Promise<void>
}

/** Poll a clock every `intervalMs`; `onChange` when it moved. A failed read is reported to `onError` and retried. */
export function pollClock(read: () => Promise<number>, intervalMs: number, onChange: (rev: number) => void, onError: (e: unknown) => void): WakeSource {
  let last: number | undefined
  let stopped = false
  let timer: NodeJS.Timeout | undefined
  let running: Promise<void> | undefined
  const tick = async (): Promise<void> => {
    try {
      const rev = await read()
      if (last !== undefined && rev !== last) onChange(rev)
      last = rev
    } catch (e) {
      if (!stopped) onError(e)
    }
    if (!stopped) timer = setTimeout(() => (running = tick()), intervalMs)
  }
  running = tick()
  return {
    async close() {
      stopped = true
      if (timer !== undefined) clearTimeout(timer)
      await running
    },
  }
}

/**
 * LISTEN on `client` for root writes of `schema`; `onNotify(table)` for each. The client is
 * released (pooled) or ended (its own) by `close`.
 */
export async function listenRoots(client: ListenClient, schema: string, onNotify: (table: string) => void, onError: (e: unknown) => void): Promise<WakeSource> {
  const prefix = `${schema}.`
  const onMessage = (msg: { channel: string; payload?: string | undefined }): void => {
    if (msg.channel === NOTIFY_CHANNEL && msg.payload !== undefined && msg.payload.startsWith(prefix)) onNotify(msg.payload.slice(prefix.length))
  }
  const onErr = (e: Error): void => onError(e)
  client.on('notification', onMessage)
  client.on('error', onErr)
  await client.query(`LISTEN ${NOTIFY_CHANNEL}`)
  return {
    async close() {
      client.removeListener('notification', onMessage)
      try {
        await client.query(`UNLISTEN ${NOTIFY_CHANNEL}`)
      } catch {
        // The connection is gone: nothing to unlisten.
      }
      client.removeListener('error', onErr)
      if (typeof client.release === 'function') client.release()
      else if (typeof client.end === 'function') await client.end()
    },
  }
}

/** Watch files (`dependsOn`); `onChange(path)` when one is written, renamed or removed. */
export function watchFiles(paths: readonly string[], onChange: (path: string) => void, onError: (e: unknown) => void): WakeSource {
  const watchers: FSWatcher[] = []
  for (const p of new Set(paths)) {
    try {
      const w = fsWatch(p, { persistent: false }, () => onChange(p))
      w.on('error', onError)
      watchers.push(w)
    } catch (e) {
      onError(e)
    }
  }
  return {
    async close() {
      for (const w of watchers) w.close()
    },
  }
}
