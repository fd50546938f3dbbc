/**
 * The explorer's views as plain data, read from a store through its public API and the read
 * models of src/derived/read/browse.ts; the server (server.ts) serves them as JSON and the page
 * (static/app.js) draws them. Nothing here computes a derived row (refreshes are jobs.ts).
 *
 * - `tablesView`: every table with its rows per state, coloured by the worst; the drawn subset
 *   (at most `MAX_DRAWN` nodes) laid out by dagre (layout.ts).
 * - `rowsView`: one derived table's rows, a page at a time, filtered by state and cause.
 * - `rowView`: one row: value, state, cause tree down to the root rows, root lineage, and the
 *   rows downstream (`affected`) to a depth.
 * - `queryView`: a named query of the config module run with lineage.
 */
import type { Kysely } from 'kysely'
import { LineageQueryError, showValue } from '../errors.js'
import type { Cause, Graph, RowStatus, SourceRow, Store } from '../derived/index.js'
import { addresser, rowLineage, stateCountsOf, storedRows, storedValue } from '../derived/read/browse.js'
import { why, type WhyNode } from '../cli/inspect.js'
import type { Query } from '../query/dsl.js'
import { layoutGraph, type Layout } from './layout.js'

/** Never more nodes than this are drawn at once; beyond it the page asks for a subset. */
export const MAX_DRAWN = 100

/**
 * Row states from worst to best. `running` (a row being computed under a claim) shows when the
 * engine stores it; any other stored state the engine adds sorts after these.
 */
export const STATE_ORDER = ['failed', 'blocked', 'stale', 'missing', 'running', 'fresh'] as const

/** One table of the graph. Root tables have `rows`; derived tables `counts` per state. */
export interface TableNode {
  readonly name: string
  readonly kind: 'root' | 'derived'
  /** Root tables: their row count. */
  readonly rows?: number
  /** Derived tables: rows per state (`fresh`, `stale`, `missing`, `failed`, `blocked`, `running`, ...), zero counts left out. */
  readonly counts: Readonly<Record<string, number>>
  /** The worst state with a row (`fresh` for an empty or all-fresh table; `root` for roots). */
  readonly worst: string
  /** Some rows are stale because the table's code changed (cause `code-changed`). */
  readonly codeChanged: boolean
  /** Some rows are stale because their data changed (any other stale cause). */
  readonly dataStale: boolean
}

export interface TablesView {
  /** Every table (for the list beside the drawing), in dependency order. */
  readonly tables: readonly TableNode[]
  /** The drawn subset, laid out: all tables when there are at most `MAX_DRAWN`, else a neighbourhood. */
  readonly drawn: Layout
  /** The table the drawn subset is centred on, when one was asked for. */
  readonly focus: string | null
  /** Why not every table is drawn, when so. */
  readonly note: string | null
  readonly edges: readonly { readonly from: string; readonly to: string }[]
}

const rank = (s: string): number => {
  const i = (STATE_ORDER as readonly string[]).indexOf(s)
  return i < 0 ? STATE_ORDER.length - 1.5 : i // unknown states: just better than fresh
}

/** A stored state as a row state: `ok` is `fresh`; others as stored. */
const shownState = (stored: string): string => (stored === 'ok' ? 'fresh' : stored)

/** The state counts of every table (one `store.stale()` pass plus one count per table). */
export async function tableNodes(db: Kysely<any>, store: Store): Promise<TableNode[]> {
  const graph = store.graph()
  const todo = await store.stale()
  const byTable = new Map<string, RowStatus[]>()
  for (const s of todo) {
    const l = byTable.get(s.table)
    if (l === undefined) byTable.set(s.table, [s])
    else l.push(s)
  }
  const kinds = new Map(graph.nodes.map((n) => [n.name, n.kind]))
  const derived = graph.order.filter((n) => kinds.get(n) === 'derived')
  const staleOf = (name: string) => (byTable.get(name) ?? []).filter((s) => s.state === 'stale')
  const stored = await stateCountsOf(db, graph, derived.map((table) => ({ table, keys: staleOf(table).map((s) => s.key) })))
  const out: TableNode[] = []
  for (const name of graph.order) {
    if (kinds.get(name) === 'root') {
      const r = await db.selectFrom(name).select((eb) => eb.fn.countAll().as('n')).executeTakeFirst()
      out.push({ name, kind: 'root', rows: Number(r?.['n'] ?? 0), counts: {}, worst: 'root', codeChanged: false, dataStale: false })
      continue
    }
    const mine = byTable.get(name) ?? []
    const counts: Record<string, number> = {}
    const add = (state: string, n: number): void => {
      if (n !== 0) counts[state] = (counts[state] ?? 0) + n
    }
    const c = stored.get(name)!
    for (const [state, n] of Object.entries(c.stored)) add(shownState(state), n)
    // A stale row is stored (ok, failed, ...): counted as stale, not under its stored state.
    for (const [state, n] of Object.entries(c.among)) add(shownState(state), -n)
    const staleRows = staleOf(name)
    add('stale', staleRows.length)
    add('missing', mine.filter((s) => s.state === 'missing' && !s.causes.every((c) => c.kind === 'no-input')).length)
    for (const [state, n] of Object.entries(counts)) if (n === 0) delete counts[state]
    const present = Object.keys(counts).filter((s) => (counts[s] ?? 0) > 0)
    const worst = present.length === 0 ? 'fresh' : present.reduce((a, b) => (rank(a) <= rank(b) ? a : b))
    const causes = staleRows.flatMap((s) => s.causes)
    out.push({ name, kind: 'derived', counts, worst, codeChanged: causes.some((c) => c.kind === 'code-changed'), dataStale: causes.some((c) => c.kind !== 'code-changed') })
  }
  return out
}

/**
 * The tables to draw: all when there are at most `limit`; around `focus` (nearest first, both
 * directions) when given; else the `limit` worst tables (failed first, fresh last).
 */
export function drawnSubset(graph: Graph, tables: readonly TableNode[], focus: string | undefined, limit = MAX_DRAWN): { names: string[]; note: string | null } {
  const all = tables.map((t) => t.name)
  if (focus !== undefined) {
    if (!all.includes(focus)) throw new LineageQueryError('argument', `explorer: no table named ${showValue(focus)}; tables: ${all.slice(0, 20).join(', ')}${all.length > 20 ? ', ...' : ''}`, { table: focus })
    const near = new Set<string>([focus])
    let frontier = [focus]
    while (frontier.length > 0 && near.size < limit) {
      const next: string[] = []
      for (const t of frontier) {
        for (const e of graph.edges) {
          const other = e.from === t ? e.to : e.to === t ? e.from : undefined
          if (other !== undefined && !near.has(other) && near.size < limit) {
            near.add(other)
            next.push(other)
          }
        }
      }
      frontier = next
    }
    const names = all.filter((n) => near.has(n))
    return { names, note: names.length < all.length ? `showing ${names.length} of ${all.length} tables: the neighbourhood of ${focus}` : null }
  }
  if (all.length <= limit) return { names: all, note: null }
  const worst = [...tables].sort((a, b) => rank(a.worst === 'root' ? 'fresh' : a.worst) - rank(b.worst === 'root' ? 'fresh' : b.worst)).slice(0, limit)
  const keep = new Set(worst.map((t) => t.name))
  return { names: all.filter((n) => keep.has(n)), note: `showing ${limit} of ${all.length} tables (the worst first): pick a table in the list to draw its neighbourhood` }
}

/** Node size for the layout: wide enough for the name and the counts line. */
/**
 * Node size for the layout: wide enough for the name and a counts line of a few states (the
 * counts do not change it, so the layout of a graph is computed once and cached).
 */
const nodeSize = (t: TableNode): { width: number; height: number } => ({ width: Math.max(210, 8 * t.name.length + 40), height: t.kind === 'root' ? 44 : 58 })

/** Layouts by drawn graph (names, sizes, edges): the graph of a running store rarely changes. */
const layouts = new Map<string, Layout>()
const LAYOUTS_KEPT = 20

function cachedLayout(nodes: readonly { id: string; width: number; height: number }[], edges: readonly { from: string; to: string }[]): Layout {
  const key = JSON.stringify([nodes, edges])
  const hit = layouts.get(key)
  if (hit !== undefined) return hit
  const l = layoutGraph(nodes, edges)
  if (layouts.size >= LAYOUTS_KEPT) layouts.delete(layouts.keys().next().value!)
  layouts.set(key, l)
  return l
}

export async function tablesView(db: Kysely<any>, store: Store, focus?: string): Promise<TablesView> {
  const graph = store.graph()
  const tables = await tableNodes(db, store)
  const { names, note } = drawnSubset(graph, tables, focus)
  const keep = new Set(names)
  const byName = new Map(tables.map((t) => [t.name, t]))
  const edges = graph.edges.filter((e) => keep.has(e.from) && keep.has(e.to)).map((e) => ({ from: e.from, to: e.to }))
  const drawn = cachedLayout(names.map((n) => ({ id: n, ...nodeSize(byName.get(n)!) })), edges)
  return { tables, drawn, focus: focus ?? null, note, edges: graph.edges.map((e) => ({ from: e.from, to: e.to })) }
}

// ---------------------------------------------------------------- rows

export interface RowsFilter {
  /** Only rows in this state (`fresh`, `stale`, `missing`, `failed`, `blocked`, ...). */
  readonly state?: string
  /** Only rows with a cause of this kind (`input-changed`, `code-changed`, `error`, ...). */
  readonly cause?: string
  readonly offset?: number
  readonly limit?: number
}

export interface RowItem {
  readonly key: unknown
  readonly state: string
  readonly causes: readonly Cause[] | readonly { readonly kind: string }[]
}

export interface RowsView {
  readonly table: string
  readonly total: number
  readonly offset: number
  readonly limit: number
  readonly rows: readonly RowItem[]
  /** Rows per state and per cause kind over the whole table (for the filter menus). */
  readonly states: Readonly<Record<string, number>>
  readonly causes: Readonly<Record<string, number>>
}

export const MAX_PAGE = 200

/**
 * A derived table's rows with their states: its stored rows (fresh, failed, blocked, ...) and
 * the rows `store.stale(table)` lists (stale ones with causes, missing ones), filtered, a page
 * at a time in address order. Failed and blocked rows carry their cause kind (`error`,
 * `upstream-failed`) here; their full cause is in `rowView`.
 */
export async function rowsView(db: Kysely<any>, store: Store, table: string, filter: RowsFilter = {}): Promise<RowsView> {
  const graph = store.graph()
  derivedTable(graph, table)
  const offset = filter.offset ?? 0
  const limit = Math.min(filter.limit ?? 50, MAX_PAGE)
  const todo = await store.stale(table)
  const address = addresser(graph, table)
  const rows = new Map<string, RowItem>()
  for (const r of await storedRows(db, table)) {
    const state = shownState(r.state)
    rows.set(address(r.key), { key: r.key, state, causes: state === 'failed' ? [{ kind: 'error' }] : state === 'blocked' ? [{ kind: 'upstream-failed' }] : [] })
  }
  for (const s of todo) {
    if (s.state === 'missing' && s.causes.every((c) => c.kind === 'no-input')) continue
    rows.set(address(s.key), { key: s.key, state: s.state, causes: s.causes })
  }
  const all = [...rows.entries()].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0)).map(([, r]) => r)
  const states: Record<string, number> = {}
  const causes: Record<string, number> = {}
  for (const r of all) {
    states[r.state] = (states[r.state] ?? 0) + 1
    for (const k of new Set(r.causes.map((c) => c.kind))) causes[k] = (causes[k] ?? 0) + 1
  }
  const wanted = all.filter((r) => (filter.state === undefined || r.state === filter.state) && (filter.cause === undefined || r.causes.some((c) => c.kind === filter.cause)))
  return { table, total: wanted.length, offset, limit, rows: wanted.slice(offset, offset + limit), states, causes }
}

// ---------------------------------------------------------------- one row

/** A row downstream of the one shown, with its distance in the table graph. */
export interface DownstreamRow extends SourceRow {
  readonly depth: number
}

export interface RowView {
  readonly table: string
  readonly kind: 'root' | 'derived'
  readonly key: unknown
  /** Derived rows: the state and causes (`store.status`); root rows: `fresh`, or `deleted` without a revision. */
  readonly state: string
  readonly causes: readonly Cause[]
  /** The stored value (derived rows with one stored), else null. */
  readonly value: Readonly<Record<string, unknown>> | null
  /** Root rows: the current revision (null when deleted or never written). */
  readonly revision: number | null
  /** Derived rows: the cause tree down to the root rows, with their revisions. */
  readonly why: WhyNode | null
  /** The root rows the row comes from (what `lineage(q)` reports for it). */
  readonly lineage: readonly SourceRow[]
  /** Rows fed by it (through its root rows, `store.affected`) in tables at most `depth` steps downstream. */
  readonly affected: readonly DownstreamRow[]
  readonly depth: number
  /** Whether rows further downstream than `depth` exist. */
  readonly more: boolean
}

/** Steps from `table` to every table downstream of it. */
function downstreamDistances(graph: Graph, table: string): Map<string, number> {
  const dist = new Map<string, number>([[table, 0]])
  let frontier = [table]
  for (let d = 1; frontier.length > 0; d++) {
    const next: string[] = []
    for (const t of frontier) {
      for (const e of graph.edges) {
        if (e.from === t && !dist.has(e.to)) {
          dist.set(e.to, d)
          next.push(e.to)
        }
      }
    }
    frontier = next
  }
  return dist
}

function derivedTable(graph: Graph, table: string): void {
  const node = graph.nodes.find((n) => n.name === table)
  if (node === undefined) throw new LineageQueryError('argument', `explorer: no table named ${showValue(table)}; tables: ${graph.nodes.map((n) => n.name).join(', ')}`, { table })
  if (node.kind !== 'derived') throw new LineageQueryError('argument', `explorer: \`${table}\` is a root table; rows are listed for derived tables (derived: ${graph.nodes.filter((n) => n.kind === 'derived').map((n) => n.name).join(', ')})`, { table })
}

/**
 * One row: a derived row's value, state, cause tree and root lineage, or a root row's revision;
 * and the rows downstream of it to `depth` table steps (1 by default).
 */
export async function rowView(db: Kysely<any>, store: Store, table: string, key: unknown, depth = 1): Promise<RowView> {
  const graph = store.graph()
  const node = graph.nodes.find((n) => n.name === table)
  if (node === undefined) throw new LineageQueryError('argument', `explorer: no table named ${showValue(table)}; tables: ${graph.nodes.map((n) => n.name).join(', ')}`, { table })
  if (!Number.isSafeInteger(depth) || depth < 1) throw new LineageQueryError('argument', `explorer: depth must be a positive integer, got ${showValue(depth)}`)
  const dist = downstreamDistances(graph, table)
  const downstream = async (roots: readonly SourceRow[]): Promise<{ rows: DownstreamRow[]; more: boolean }> => {
    const seen = new Map<string, DownstreamRow>()
    let more = false
    for (const r of roots) {
      for (const a of await store.affected(r.table, r.key)) {
        const d = dist.get(a.table)
        if (d === undefined || d === 0) continue
        if (d > depth) {
          more = true
          continue
        }
        seen.set(`${a.table}\u0000${JSON.stringify(a.key)}`, { table: a.table, key: a.key, depth: d })
      }
    }
    return { rows: [...seen.values()], more }
  }
  if (node.kind === 'root') {
    const revision = (await store.revision(table, key)) ?? null
    const { rows, more } = await downstream([{ table, key }])
    return { table, kind: 'root', key, state: revision === null ? 'deleted' : 'fresh', causes: [], value: null, revision, why: null, lineage: [{ table, key }], affected: rows, depth, more }
  }
  const status = await store.status(table, key)
  const tree = await why(store, table, key)
  const value = (await storedValue(db, graph, table, key)) ?? null
  const lineage = rowLineage(graph, table, key)
  const { rows, more } = await downstream(lineage)
  return { table, kind: 'derived', key: status.key, state: status.state, causes: status.causes, value, revision: null, why: tree, lineage, affected: rows, depth, more }
}

// ---------------------------------------------------------------- named queries

/** A named query of the config module: a query, or a function returning one (called after `declare`). */
export type NamedQuery = Query<any, any> | (() => Query<any, any>)

export interface QueryView {
  readonly name: string
  readonly rows: readonly { readonly data: unknown; readonly lineage: readonly SourceRow[] }[]
  /** The source tables named by any row's lineage, sorted (the page highlights one on hover). */
  readonly sources: readonly string[]
}

export async function queryView(store: Store, queries: Readonly<Record<string, NamedQuery>>, name: string): Promise<QueryView> {
  const q = Object.hasOwn(queries, name) ? queries[name] : undefined
  if (q === undefined) throw new LineageQueryError('argument', `explorer: no query named ${showValue(name)}; the config module's \`queries\` export names: ${Object.keys(queries).join(', ') || '(none)'}`, { query: name })
  const query = typeof q === 'function' ? q() : q
  const rows = await store.lineage(query)
  const sources = [...new Set(rows.flatMap((r) => r.lineage.map((e) => e.table)))].sort()
  return { name, rows, sources }
}
