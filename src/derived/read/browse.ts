/**
 * Read models over a store's metadata, for tools that browse a store (the explorer,
 * src/explore): a derived table's stored rows with their stored state, counts per stored state,
 * one row's stored value, and the conversions between a row's user key and its address.
 * Read-only: nothing here computes or writes; a table's stored state (`ok`, `failed`,
 * `blocked`, or any state another part of the engine stores, such as a running claim) is what
 * its metadata says, before staleness (see `store.stale`/`store.status` for that).
 *
 * Call after the store has created its tables (any `status`/`stale`/`refresh`/`get`).
 */
import type { Kysely } from 'kysely'
import type { Graph, SourceRow } from '../types.js'
import { metaTable } from '../sql/dialect.js'
import { addressFromUser, addressValue, lineageOfAddress } from '../keys.js'

/** A stored row of a derived table: its user key and the state its metadata records. */
export interface StoredRow {
  /** The row's key in user form (a root key, or a list of `{ table, key }` root entries). */
  readonly key: unknown
  /** `ok`, `failed`, `blocked`, or another stored state (never `deleted`: those rows are gone). */
  readonly state: string
}

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

/** The root rows a derived row comes from, read from its address alone (as `lineage(q)` reports them). */
export function rowLineage(graph: Graph, table: string, key: unknown): SourceRow[] {
  return lineageOfAddress(rowAddress(graph, table, key), rootsOf(graph, table))
}

/** Stored rows per stored state (`ok`, `failed`, `blocked`, ...), deleted rows left out. */
export async function storedStateCounts(db: Kysely<any>, table: string): Promise<Record<string, number>> {
  const rows = await db
    .selectFrom(metaTable(table))
    .select(['lq_state', (eb) => eb.fn.countAll().as('n')])
    .where('lq_state', '<>', 'deleted')
    .groupBy('lq_state')
    .execute()
  const out: Record<string, number> = {}
  for (const r of rows) out[String(r['lq_state'])] = Number(r['n'])
  return out
}

/** Every stored row of a derived table with its stored state, in address order. */
export async function storedRows(db: Kysely<any>, table: string): Promise<StoredRow[]> {
  const rows = await db.selectFrom(metaTable(table)).select(['lq_key', 'lq_state']).where('lq_state', '<>', 'deleted').orderBy('lq_key').execute()
  return rows.map((r) => ({ key: addressValue(String(r['lq_key'])), state: String(r['lq_state']) }))
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

/** The stored state of each of `keys` (user keys of `table`) that has a stored row, by address. */
export async function storedStatesOf(db: Kysely<any>, graph: Graph, table: string, keys: readonly unknown[]): Promise<Map<string, string>> {
  const out = new Map<string, string>()
  const address = addresser(graph, table)
  const addrs = keys.map(address)
  for (let i = 0; i < addrs.length; i += CHUNK) {
    const part = addrs.slice(i, i + CHUNK)
    const rows = await db.selectFrom(metaTable(table)).select(['lq_key', 'lq_state']).where('lq_key', 'in', part).where('lq_state', '<>', 'deleted').execute()
    for (const r of rows) out.set(String(r['lq_key']), String(r['lq_state']))
  }
  return out
}

/** Keys per `IN` list (well under SQLite's and PostgreSQL's parameter limits). */
const CHUNK = 500

/** Tables per counting statement (see `stateCountsOf`): fewer round trips on PostgreSQL. */
const UNION_TABLES = 50

/** Stored rows of one table per stored state, and how many of them are among some given keys. */
export interface StateCounts {
  /** Stored rows per stored state (deleted rows left out). */
  readonly stored: Readonly<Record<string, number>>
  /** Of those, the rows among the given keys, per stored state. */
  readonly among: Readonly<Record<string, number>>
}

/**
 * `storedStateCounts` of many tables at once, each with how many of `keys` it stores per state
 * (the explorer: rows listed stale, counted by the state they are stored in): one statement per
 * group of tables (`UNION ALL` of one grouped count per table) rather than one or two per table.
 */
export async function stateCountsOf(db: Kysely<any>, graph: Graph, tables: readonly { readonly table: string; readonly keys: readonly unknown[] }[]): Promise<Map<string, StateCounts>> {
  const out = new Map<string, { stored: Record<string, number>; among: Record<string, number> }>()
  for (const t of tables) out.set(t.table, { stored: {}, among: {} })
  // Tables whose key lists are long go alone; the rest in groups whose key lists stay short.
  const groups: (typeof tables)[] = []
  let group: (typeof tables)[number][] = []
  let params = 0
  for (const t of tables) {
    if (group.length > 0 && (group.length >= UNION_TABLES || params + t.keys.length > CHUNK)) {
      groups.push(group)
      group = []
      params = 0
    }
    group.push(t)
    params += t.keys.length
  }
  if (group.length > 0) groups.push(group)
  for (const g of groups) {
    if (g.length === 1 && g[0]!.keys.length > CHUNK) {
      const { table, keys } = g[0]!
      const c = out.get(table)!
      Object.assign(c.stored, await storedStateCounts(db, table))
      for (const st of (await storedStatesOf(db, graph, table, keys)).values()) c.among[st] = (c.among[st] ?? 0) + 1
      continue
    }
    const one = ({ table, keys }: (typeof tables)[number]) => {
      const addrs = keys.map(addresser(graph, table))
      return db
        .selectFrom(metaTable(table))
        .select((eb) => [
          eb.cast<string>(eb.val(table), 'text').as('t'),
          'lq_state',
          eb.fn.countAll<number>().as('n'),
          (addrs.length === 0 ? eb.lit(0) : eb.fn.sum<number>(eb.case().when('lq_key', 'in', addrs).then(1).else(0).end())).as('k'),
        ])
        .where('lq_state', '<>', 'deleted')
        .groupBy('lq_state')
    }
    let q = one(g[0]!)
    for (const t of g.slice(1)) q = q.unionAll(one(t))
    for (const r of await q.execute()) {
      const c = out.get(String(r['t']))!
      const st = String(r['lq_state'])
      c.stored[st] = Number(r['n'])
      if (Number(r['k']) > 0) c.among[st] = Number(r['k'])
    }
  }
  return out
}
