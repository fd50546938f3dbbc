/**
 * Read models over a store's metadata, for tools that browse a store (the explorer,
 * src/explore): counts per stored state of many tables at once, root row counts, the rows held
 * by live claims (running), a page of a derived table's rows by keyset, one row's stored value,
 * and the conversions between a row's user key and its address. Counting and paging happen in
 * the database (statements in ../sql/browse.ts): a large table is never read whole.
 * Read-only: nothing here computes or writes; a table's stored state (`ok`, `failed`,
 * `blocked`) is what its metadata says, before staleness and claims (see
 * `store.stale`/`store.status` for those).
 *
 * Call after the store has created its tables (any `status`/`stale`/`refresh`/`get`).
 */
import type { Kysely } from 'kysely'
import type { Graph, SourceRow } from '../types.js'
import { dialectOf } from '../../query/dialect-of.js'
import { addressFromUser, addressValue, lineageOfAddress } from '../keys.js'
import { rootCounts, stateCounts, storedPage, type PageRequest } from '../sql/browse.js'
import { claimDialects } from '../sql/claims.js'
import { storeDialects } from '../sql/index.js'

/** The root tables a derived table's rows come from (its root ancestors), sorted. */
export function rootsOf(graph: Graph, table: string): string[] {
  const kinds = new Map(graph.nodes.map((n) => [n.name, n.kind]))
  const out = new Set<string>()
  const seen = new Set<string>()
  const visit = (t: string): void => {
    if (seen.has(t)) return
    seen.add(t)
    if (kinds.get(t) === 'root') {
      out.add(t)
      return
    }
    for (const e of graph.edges) if (e.to === t) visit(e.from)
  }
  visit(table)
  return [...out].sort()
}

/** The address (`lq_key` text) of a derived row of `table`, from its user key. */
export function rowAddress(graph: Graph, table: string, key: unknown): string {
  return addresser(graph, table)(key)
}

/** `rowAddress` for many keys of one table (its roots looked up once). */
export function addresser(graph: Graph, table: string): (key: unknown) => string {
  const singleRoot = rootsOf(graph, table).length === 1
  return (key) => addressFromUser(key, singleRoot)
}

/** The user key of a derived row from its address (`lq_key` text). */
export const userKey = (address: string): unknown => addressValue(address)

/** The root rows a derived row comes from, read from its address alone (as `lineage(q)` reports them). */
export function rowLineage(graph: Graph, table: string, key: unknown): SourceRow[] {
  return lineageOfAddress(rowAddress(graph, table, key), rootsOf(graph, table))
}

/**
 * The stored value of one derived row (its output columns as the driver returns them, without
 * `lq_key`), or undefined when no value is stored (missing, failed or blocked rows).
 */
export async function storedValue(db: Kysely<any>, graph: Graph, table: string, key: unknown): Promise<Record<string, unknown> | undefined> {
  const row = (await db.selectFrom(table).selectAll().where('lq_key', '=', rowAddress(graph, table, key)).executeTakeFirst()) as Record<string, unknown> | undefined
  if (row === undefined) return undefined
  const { lq_key: _, ...value } = row
  return value
}

/** Stored rows of one table per stored state, and how many of them are among some given addresses. */
export interface StateCounts {
  /** Stored rows per stored state (deleted rows left out). */
  readonly stored: Readonly<Record<string, number>>
  /** Of those, the rows among the given addresses, per stored state. */
  readonly among: Readonly<Record<string, number>>
}

/**
 * The stored rows per stored state of many derived tables at once, each with how many of
 * `addrs` (addresses of its rows) it stores per state (the explorer: rows it shows in another
 * state, stale or running, counted by the state they are stored in). Counted in the database
 * (`UNION ALL` of grouped counts, a few statements however many tables): no key is read.
 */
export async function stateCountsOf(db: Kysely<any>, tables: readonly { readonly table: string; readonly addrs: readonly string[] }[]): Promise<Map<string, StateCounts>> {
  const out = new Map<string, { stored: Record<string, number>; among: Record<string, number> }>()
  for (const t of tables) out.set(t.table, { stored: {}, among: {} })
  for (const r of await stateCounts(db, storeDialects[dialectOf(db)], tables)) {
    const c = out.get(r.table)!
    const into = r.probe ? c.among : c.stored
    into[r.state] = (into[r.state] ?? 0) + r.n
  }
  return out
}

/** The rows of each root table, by name (one statement). */
export async function rootRowCounts(db: Kysely<any>, roots: readonly string[]): Promise<Map<string, number>> {
  return roots.length === 0 ? new Map() : rootCounts(db, roots)
}

/** A live claim on a derived row: the worker computing it and when its lease ends (epoch ms, database clock). */
export interface LiveClaim {
  readonly owner: string
  readonly expires: number
}

/**
 * The rows held by a live claim (a worker computing them now: state `running`), of one derived
 * table or of all: table -> address -> claim. Expired claims (a worker that died or gave up)
 * are not listed. Reads the claim table only (`ClaimDialect.held`).
 */
export async function liveClaims(db: Kysely<any>, table?: string): Promise<Map<string, Map<string, LiveClaim>>> {
  const out = new Map<string, Map<string, LiveClaim>>()
  for (const c of await claimDialects[dialectOf(db)].held(db, table)) {
    let m = out.get(c.table)
    if (m === undefined) out.set(c.table, (m = new Map()))
    m.set(c.key, { owner: c.owner, expires: c.expires })
  }
  return out
}

export type { PageRequest } from '../sql/browse.js'

/**
 * One page of a derived table's rows in address order, by keyset (see `storedPage`): each with
 * its address, its user key, and its stored state (null for an `extra` address not read from
 * the table). Reads at most `limit` rows whatever the table's size.
 */
export async function rowsPage(db: Kysely<any>, table: string, request: PageRequest): Promise<{ address: string; key: unknown; state: string | null }[]> {
  const rows = await storedPage(db, storeDialects[dialectOf(db)], table, request)
  return rows.map((r) => ({ address: r.key, key: addressValue(r.key), state: r.state }))
}
