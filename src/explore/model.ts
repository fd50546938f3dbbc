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
import { addresser, liveClaims, rootRowCounts, rowLineage, rowsPage, stateCountsOf, storedValue, userKey, type LiveClaim, type StateCounts } from '../derived/read/browse.js'
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

/**
 * The rows of one derived table shown in another state than the one stored, by address: the
 * rows `store.stale()` lists (stale with causes; missing, except those whose input is gone too)
 * and the rows held by a live claim (`running`, with the lease; a held stale row keeps its
 * causes). Every other row shows its stored state.
 */
function overlayOf(graph: Graph, table: string, stale: readonly RowStatus[], held: ReadonlyMap<string, LiveClaim> | undefined): Map<string, RowItem> {
  const address = addresser(graph, table)
  const out = new Map<string, RowItem>()
  for (const s of stale) {
    if (s.state === 'missing' && s.causes.every((c) => c.kind === 'no-input')) continue
    out.set(address(s.key), { key: s.key, state: s.state, causes: s.causes })
  }
  for (const [addr, lease] of held ?? []) out.set(addr, { key: out.get(addr)?.key ?? userKey(addr), state: 'running', causes: out.get(addr)?.causes ?? [], lease })
  return out
}

/** Rows per shown state: stored rows by their stored state, except the overlay's, which count by theirs. */
function shownCounts(c: StateCounts, overlay: ReadonlyMap<string, RowItem>): Record<string, number> {
  const counts: Record<string, number> = {}
  const add = (state: string, n: number): void => {
    counts[state] = (counts[state] ?? 0) + n
  }
  for (const [state, n] of Object.entries(c.stored)) add(shownState(state), n - (c.among[state] ?? 0))
  for (const r of overlay.values()) add(r.state, 1)
  for (const [state, n] of Object.entries(counts)) if (n === 0) delete counts[state]
  return counts
}

const worstOf = (counts: Readonly<Record<string, number>>): string => {
  const present = Object.keys(counts).filter((s) => (counts[s] ?? 0) > 0)
  return present.length === 0 ? 'fresh' : present.reduce((a, b) => (rank(a) <= rank(b) ? a : b))
}

/**
 * The state counts of every table: one `store.stale()` pass, one read of the live claims, and
 * the stored rows counted per state in the database (a few statements for all tables).
 */
export async function tableNodes(db: Kysely<any>, store: Store, graph: Graph = store.graph()): Promise<TableNode[]> {
  const todo = await store.stale()
  const held = await liveClaims(db)
  const byTable = new Map<string, RowStatus[]>()
  for (const s of todo) {
    const l = byTable.get(s.table)
    if (l === undefined) byTable.set(s.table, [s])
    else l.push(s)
  }
  const kinds = new Map(graph.nodes.map((n) => [n.name, n.kind]))
  const derived = graph.order.filter((n) => kinds.get(n) === 'derived')
  const overlays = new Map(derived.map((table) => [table, overlayOf(graph, table, byTable.get(table) ?? [], held.get(table))]))
  const stored = await stateCountsOf(db, derived.map((table) => ({ table, addrs: [...overlays.get(table)!.keys()] })))
  const rootRows = await rootRowCounts(db, graph.order.filter((n) => kinds.get(n) === 'root'))
  return graph.order.map((name): TableNode => {
    if (kinds.get(name) === 'root') return { name, kind: 'root', rows: rootRows.get(name) ?? 0, counts: {}, worst: 'root', codeChanged: false, dataStale: false }
    const counts = shownCounts(stored.get(name)!, overlays.get(name)!)
    const causes = (byTable.get(name) ?? []).filter((s) => s.state === 'stale').flatMap((s) => s.causes)
    return { name, kind: 'derived', counts, worst: worstOf(counts), codeChanged: causes.some((c) => c.kind === 'code-changed'), dataStale: causes.some((c) => c.kind !== 'code-changed') }
  })
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
  const tables = await tableNodes(db, store, graph)
  const { names, note } = drawnSubset(graph, tables, focus)
  const keep = new Set(names)
  const byName = new Map(tables.map((t) => [t.name, t]))
  const edges = graph.edges.filter((e) => keep.has(e.from) && keep.has(e.to)).map((e) => ({ from: e.from, to: e.to }))
  const drawn = cachedLayout(names.map((n) => ({ id: n, ...nodeSize(byName.get(n)!) })), edges)
  return { tables, drawn, focus: focus ?? null, note, edges: graph.edges.map((e) => ({ from: e.from, to: e.to })) }
}

// ---------------------------------------------------------------- rows

export interface RowsFilter {
  /** Only rows in this state (`fresh`, `stale`, `missing`, `failed`, `blocked`, `running`, ...). */
  readonly state?: string
  /** Only rows with a cause of this kind (`input-changed`, `code-changed`, `error`, ...). */
  readonly cause?: string
  /** The page after this row address (a `RowsView.next`), or before it (a `RowsView.prev`); neither: the first page. */
  readonly after?: string
  readonly before?: string
  readonly limit?: number
}

export interface RowItem {
  readonly key: unknown
  readonly state: string
  readonly causes: readonly Cause[] | readonly { readonly kind: string }[]
  /** A running row: the worker computing it and when its lease ends (epoch ms, database clock). */
  readonly lease?: LiveClaim
}

export interface RowsView {
  readonly table: string
  /** Rows matching the filter in the whole table. */
  readonly total: number
  readonly limit: number
  /** This page's rows, in address order. */
  readonly rows: readonly RowItem[]
  /** The cursor of the next page (`after`), or null on the last page. */
  readonly next: string | null
  /** The cursor of the previous page (`before`), or null on the first page. */
  readonly prev: string | null
  /** Rows per state and per cause kind over the whole table (for the filter menus). */
  readonly states: Readonly<Record<string, number>>
  readonly causes: Readonly<Record<string, number>>
}

export const MAX_PAGE = 200

/** The cause kind the page gives a failed or blocked row (its full cause is in `rowView`). */
const STORED_CAUSE: Readonly<Record<string, string>> = { failed: 'error', blocked: 'upstream-failed' }

/** States only the overlay shows (no stored row is in them). */
const OVERLAY_STATES = new Set(['stale', 'missing', 'running'])

/**
 * The stored state whose rows (outside the overlay) match a filter: `all`, one stored state,
 * or `none` (the filter's state or cause is one only overlay rows have, or the two disagree).
 */
function storedSelection(filter: RowsFilter): string {
  const byState = filter.state === undefined ? 'all' : OVERLAY_STATES.has(filter.state) ? 'none' : filter.state === 'fresh' ? 'ok' : filter.state
  const byCause = filter.cause === undefined ? 'all' : (Object.entries(STORED_CAUSE).find(([, c]) => c === filter.cause)?.[0] ?? 'none')
  if (byState === 'none' || byCause === 'none') return 'none'
  if (byState === 'all') return byCause
  return byCause === 'all' || byCause === byState ? byState : 'none'
}

/**
 * A derived table's rows with their states, filtered by state and cause, a page at a time in
 * address order (the database's order of the address text), by keyset: the page is read in
 * SQL (`rowsPage`), at most `limit + 1` rows whatever the table's size. Rows listed by
 * `store.stale(table)` (stale, missing) and rows held by a live claim (running) show that
 * state; every other row its stored one. Failed and blocked rows carry their cause kind
 * (`error`, `upstream-failed`) here; their full cause is in `rowView`. The counts per state and
 * cause are counted in the database too.
 */
export async function rowsView(db: Kysely<any>, store: Store, table: string, filter: RowsFilter = {}): Promise<RowsView> {
  const graph = store.graph()
  derivedTable(graph, table)
  if (filter.after !== undefined && filter.before !== undefined) throw new LineageQueryError('argument', 'explorer: rows: give `after` or `before`, not both')
  const limit = Math.min(filter.limit ?? 50, MAX_PAGE)
  const overlay = overlayOf(graph, table, await store.stale(table), (await liveClaims(db, table)).get(table))
  const c = (await stateCountsOf(db, [{ table, addrs: [...overlay.keys()] }])).get(table)!
  const states = shownCounts(c, overlay)
  const causes: Record<string, number> = {}
  for (const [state, kind] of Object.entries(STORED_CAUSE)) {
    const n = (c.stored[state] ?? 0) - (c.among[state] ?? 0)
    if (n > 0) causes[kind] = n
  }
  for (const r of overlay.values()) for (const k of new Set(r.causes.map((x) => x.kind))) causes[k] = (causes[k] ?? 0) + 1
  const stored = storedSelection(filter)
  const extra = [...overlay].filter(([, r]) => (filter.state === undefined || r.state === filter.state) && (filter.cause === undefined || r.causes.some((x) => x.kind === filter.cause))).map(([a]) => a)
  const storedMatching = stored === 'none' ? 0 : stored === 'all' ? Object.entries(c.stored).reduce((n, [st, k]) => n + k - (c.among[st] ?? 0), 0) : (c.stored[stored] ?? 0) - (c.among[stored] ?? 0)
  const cursor = filter.after !== undefined ? { after: filter.after } : filter.before !== undefined ? { before: filter.before } : undefined
  const page = await rowsPage(db, table, { stored, exclude: [...overlay.keys()], extra, limit: limit + 1, ...(cursor === undefined ? {} : { cursor }) })
  const more = page.length > limit
  const shown = filter.before !== undefined ? page.slice(more ? 1 : 0) : page.slice(0, limit)
  const rows = shown.map((r): RowItem => {
    const o = overlay.get(r.address)
    if (o !== undefined) return o
    const state = shownState(r.state ?? 'ok')
    const kind = STORED_CAUSE[state]
    return { key: r.key, state, causes: kind === undefined ? [] : [{ kind }] }
  })
  const first = shown[0]?.address ?? null
  const last = shown[shown.length - 1]?.address ?? null
  const next = filter.before !== undefined ? last : more ? last : null
  const prev = filter.before !== undefined ? (more ? first : null) : filter.after !== undefined ? first : null
  return { table, total: extra.length + storedMatching, limit, rows, next, prev, states, causes }
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
