/**
 * The explorer's HTTP server (Hono on Node): one static page (static/index.html, app.js,
 * app.css) and JSON endpoints over the views of model.ts and the refresh jobs of jobs.ts.
 *
 *   GET  /api/tables?focus=T                         tables with counts per state, the drawn subset laid out
 *   GET  /api/rows?table=T&state=S&cause=C&after=A&limit=N    a derived table's rows, a page (after/before: a page's next/prev cursor)
 *   GET  /api/row?table=T&key=K&depth=N               one row (K: JSON, or plain text)
 *   GET  /api/queries                                the config module's named queries
 *   GET  /api/query?name=N                           a named query's rows with their lineage
 *   POST /api/refresh {table?, key?}                 a refresh job (a row, a table, or all)
 *   GET  /api/jobs/:id                               a job's state and progress
 *
 * Errors answer `{ error: { code, message } }`: 400 for a `LineageQueryError` about the request,
 * 500 otherwise.
 */
import { readFile } from 'node:fs/promises'
import type { AddressInfo } from 'node:net'
import { Hono, type Context } from 'hono'
import { serve } from '@hono/node-server'
import type { Kysely } from 'kysely'
import { LineageQueryError, showValue } from '../errors.js'
import type { Store } from '../derived/index.js'
import { parseKey } from '../cli/keys.js'
import type { OpenLineageOptions } from '../openlineage/emit.js'
import { Jobs, type JobRequest } from './jobs.js'
import { queryView, rowsView, rowView, tablesView, type NamedQuery } from './model.js'

export interface ExplorerOptions {
  /** The config module's named queries (its `queries` export). */
  readonly queries?: Readonly<Record<string, NamedQuery>>
  /** Emit OpenLineage events for refreshes started from the page. */
  readonly openLineage?: OpenLineageOptions
}

export interface Explorer {
  readonly app: Hono
  readonly jobs: Jobs
}

const STATIC: Readonly<Record<string, string>> = {
  '/': 'index.html',
  '/app.js': 'app.js',
  '/app.css': 'app.css',
}
const TYPES: Readonly<Record<string, string>> = { html: 'text/html; charset=utf-8', js: 'text/javascript; charset=utf-8', css: 'text/css; charset=utf-8' }

/** A query parameter as a non-negative integer, or `fallback` when absent. */
function intParam(c: Context, name: string, fallback: number): number {
  const v = c.req.query(name)
  if (v === undefined || v === '') return fallback
  const n = Number(v)
  if (!Number.isSafeInteger(n) || n < 0) throw new LineageQueryError('argument', `explorer: ${name} must be a non-negative integer, got ${showValue(v)}`)
  return n
}

function required(c: Context, name: string): string {
  const v = c.req.query(name)
  if (v === undefined || v === '') throw new LineageQueryError('argument', `explorer: the ${name} parameter is required`)
  return v
}

const optional = (c: Context, name: string): string | undefined => {
  const v = c.req.query(name)
  return v === undefined || v === '' ? undefined : v
}

/** The explorer's Hono app over an open store (the CLI serves it; tests call `app.request`). */
export function explorerApp(db: Kysely<any>, store: Store, options: ExplorerOptions = {}): Explorer {
  const app = new Hono()
  const jobs = new Jobs(store, options.openLineage)
  const queries = options.queries ?? {}
  const dir = new URL('./static/', import.meta.url)

  app.onError((e, c) => {
    if (e instanceof LineageQueryError) return c.json({ error: { code: e.code, message: e.message } }, e.code === 'argument' ? 400 : 500)
    return c.json({ error: { code: 'internal', message: e instanceof Error ? e.message : String(e) } }, 500)
  })

  for (const [path, file] of Object.entries(STATIC)) {
    app.get(path, async (c) => c.body(await readFile(new URL(file, dir)), 200, { 'content-type': TYPES[file.split('.').pop()!]!, 'cache-control': 'no-cache' }))
  }

  app.get('/api/tables', async (c) => c.json(await tablesView(db, store, optional(c, 'focus'))))
  app.get('/api/rows', async (c) => {
    const state = optional(c, 'state')
    const cause = optional(c, 'cause')
    const after = optional(c, 'after')
    const before = optional(c, 'before')
    const filter = { limit: intParam(c, 'limit', 50), ...(state === undefined ? {} : { state }), ...(cause === undefined ? {} : { cause }), ...(after === undefined ? {} : { after }), ...(before === undefined ? {} : { before }) }
    return c.json(await rowsView(db, store, required(c, 'table'), filter))
  })
  app.get('/api/row', async (c) => c.json(await rowView(db, store, required(c, 'table'), parseKey(required(c, 'key')), intParam(c, 'depth', 1) || 1)))
  app.get('/api/queries', (c) => c.json({ names: Object.keys(queries) }))
  app.get('/api/query', async (c) => c.json(await queryView(store, queries, required(c, 'name'))))
  app.post('/api/refresh', async (c) => {
    let body: unknown
    try {
      body = await c.req.json()
    } catch {
      throw new LineageQueryError('argument', 'explorer: POST /api/refresh expects a JSON body {} (everything), { table } or { table, key }')
    }
    const b = (typeof body === 'object' && body !== null ? body : {}) as { table?: unknown; key?: unknown }
    if (b.table !== undefined && typeof b.table !== 'string') throw new LineageQueryError('argument', `explorer: refresh: table must be a table name, got ${showValue(b.table)}`)
    const request: JobRequest = b.table === undefined ? { kind: 'all' } : b.key === undefined ? { kind: 'table', table: b.table } : { kind: 'row', table: b.table, key: b.key }
    if (request.kind !== 'all' && !store.graph().nodes.some((n) => n.kind === 'derived' && n.name === request.table)) {
      throw new LineageQueryError('argument', `explorer: refresh: no derived table named ${showValue(request.table)}`, { table: request.table })
    }
    return c.json(jobs.start(request), 202)
  })
  app.get('/api/jobs/:id', (c) => c.json(jobs.get(c.req.param('id'))))
  return { app, jobs }
}

export interface RunningExplorer {
  /** `http://host:port/`. */
  readonly url: string
  readonly port: number
  /** Stops accepting requests, waits for running refresh jobs, and closes the server. */
  close(): Promise<void>
}

/** Serve the explorer on `host:port` (port 0: any free port). */
export async function startExplorer(db: Kysely<any>, store: Store, options: ExplorerOptions & { readonly port?: number; readonly host?: string } = {}): Promise<RunningExplorer> {
  const port = options.port ?? 4000
  if (!Number.isSafeInteger(port) || port < 0 || port > 65535) throw new LineageQueryError('argument', `explorer: port must be an integer from 0 to 65535, got ${showValue(port)}`)
  const host = options.host ?? '127.0.0.1'
  const { app, jobs } = explorerApp(db, store, options)
  const server = serve({ fetch: app.fetch, port, hostname: host })
  await new Promise<void>((resolve, reject) => {
    server.once('listening', () => resolve())
    server.once('error', (e: NodeJS.ErrnoException) =>
      reject(new LineageQueryError('argument', `explorer: cannot listen on ${host}:${port}: ${e.code === 'EADDRINUSE' ? 'the port is in use; choose another with --port' : e.message}`, { port }, { cause: e })),
    )
  })
  const actual = (server.address() as AddressInfo).port
  return {
    url: `http://${host}:${actual}/`,
    port: actual,
    close: async () => {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()))
      ;(server as { closeAllConnections?: () => void }).closeAllConnections?.()
      await closed
      await jobs.idle()
    },
  }
}
