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
  /** A pooled client: given back to its pool on close (with an error or `true`: destroyed, not reused). */
  release?(err?: Error | boolean): void
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
 * LISTEN for root writes of `schema` on a connection from `connect`; `onNotify(table)` for each.
 * A connection the server or the network ends (a failover, `pg_terminate_backend`, a restarted
 * pooler) is reported to `onError`, dropped (a pooled client is released as broken, so the pool
 * does not hand it out again) and replaced: `connect` again after a pause that grows from
 * `retryMs` to 5 s while it fails, then LISTEN, then `onReconnect` (notifications sent while no
 * connection listened are lost: the caller looks for changes once). `close` stops it and gives the
 * connection back (released when pooled, ended when its own).
 */
export async function listenRoots(connect: () => ListenClient | Promise<ListenClient>, schema: string, onNotify: (table: string) => void, onError: (e: unknown) => void, onReconnect: () => void, retryMs = 100): Promise<WakeSource> {
  const prefix = `${schema}.`
  const onMessage = (msg: { channel: string; payload?: string | undefined }): void => {
    if (msg.channel === NOTIFY_CHANNEL && msg.payload !== undefined && msg.payload.startsWith(prefix)) onNotify(msg.payload.slice(prefix.length))
  }
  let closed = false
  let current: ListenClient | undefined
  let timer: NodeJS.Timeout | undefined
  let pause = retryMs
  // Errors of a client after it was dropped (node-postgres emits one per failure, and another
  // as the socket ends): listened to, so they never reach the process as unhandled 'error' events.
  const ignore = (): void => undefined
  // A connection given back: released to its pool (`broken`: destroyed there, not handed out
  // again) or ended when it is its own; `unlisten` first when it may still work (`close`).
  const giveBack = async (client: ListenClient, broken?: Error | true, unlisten = false): Promise<void> => {
    client.removeListener('notification', onMessage)
    client.on('error', ignore)
    if (unlisten) {
      try {
        await client.query(`UNLISTEN ${NOTIFY_CHANNEL}`)
      } catch {
        // The connection is gone: nothing to unlisten.
      }
    }
    if (typeof client.release === 'function') client.release(broken)
    else if (typeof client.end === 'function') await client.end()
  }
  // A connection that failed, or one no longer wanted: given back as broken (released or ended already: nothing to do).
  const drop = (client: ListenClient, e: unknown): void => void giveBack(client, e instanceof Error ? e : true).catch(ignore)
  const attach = async (client: ListenClient): Promise<void> => {
    const onErr = (e: Error): void => {
      client.removeListener('error', onErr)
      if (current !== client) return
      current = undefined
      drop(client, e)
      if (closed) return
      onError(e)
      again()
    }
    client.on('notification', onMessage)
    client.on('error', onErr)
    current = client
    try {
      await client.query(`LISTEN ${NOTIFY_CHANNEL}`)
    } catch (e) {
      client.removeListener('error', onErr)
      if (current === client) current = undefined
      drop(client, e)
      throw e
    }
  }
  const again = (): void => {
    timer = setTimeout(() => {
      timer = undefined
      void (async () => {
        if (closed) return
        try {
          const client = await connect()
          if (closed) {
            drop(client, undefined)
            return
          }
          await attach(client)
          pause = retryMs
          onReconnect()
        } catch (e) {
          if (closed) return
          onError(e)
          pause = Math.min(pause * 2, 5000)
          again()
        }
      })()
    }, pause)
  }
  await attach(await connect())
  return {
    async close() {
      closed = true
      if (timer !== undefined) clearTimeout(timer)
      const client = current
      current = undefined
      if (client !== undefined) await giveBack(client, undefined, true)
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
