/**
 * The CLI's read commands as plain data (printed as text or, with --json, as JSON):
 * status, why (the cause tree down to root rows), stale (counts per table and state, then
 * rows), affected, and per-table counts for the graph drawing.
 */
import type { Kysely } from 'kysely'
import type { Cause, RowState, RowStatus, Store } from '../derived/index.js'
import { metaTable } from '../derived/sql/dialect.js'

/** One node of `why`: a derived row with its status and inputs, or a root row with its revision. */
export type WhyNode =
  | { readonly kind: 'derived'; readonly table: string; readonly key: unknown; readonly state: RowState; readonly causes: readonly Cause[]; readonly inputs: readonly WhyNode[] }
  | { readonly kind: 'root'; readonly table: string; readonly key: unknown; readonly revision: number | null }

const isLineageList = (key: unknown): key is { table: string; key: unknown }[] =>
  Array.isArray(key) && key.length > 0 && key.every((e) => typeof e === 'object' && e !== null && typeof (e as { table?: unknown }).table === 'string' && 'key' in e)

/**
 * The cause tree of one derived row: its status, then for every table it reads the input row at
 * the same address — a derived row (recursively) or a root row with its current revision. A
 * row addressed by a list of root rows (a comprehension over several roots) has those root
 * rows as inputs.
 */
export async function why(store: Store, table: string, key: unknown): Promise<WhyNode> {
  const graph = store.graph()
  const roots = new Set(graph.nodes.filter((n) => n.kind === 'root').map((n) => n.name))
  const reads = (t: string): string[] => graph.edges.filter((e) => e.to === t).map((e) => e.from)
  const root = async (t: string, k: unknown): Promise<WhyNode> => ({ kind: 'root', table: t, key: k, revision: (await store.revision(t, k)) ?? null })
  const visit = async (t: string, k: unknown): Promise<WhyNode> => {
    if (roots.has(t)) return root(t, k)
    const s = await store.status(t, k)
    let inputs: WhyNode[]
    if (isLineageList(k)) inputs = await Promise.all(k.map((e) => (roots.has(e.table) ? root(e.table, e.key) : visit(e.table, e.key))))
    else inputs = await Promise.all(reads(t).map((r) => visit(r, k)))
    return { kind: 'derived', table: t, key: s.key, state: s.state, causes: s.causes, inputs }
  }
  return visit(table, key)
}

export interface StaleSummary {
  /** Rows per table and state. */
  readonly counts: Readonly<Record<string, Partial<Record<RowState, number>>>>
  readonly rows: readonly RowStatus[]
}

export async function stale(store: Store, table: string | undefined): Promise<StaleSummary> {
  const rows = await store.stale(table)
  const counts: Record<string, Partial<Record<RowState, number>>> = {}
  for (const r of rows) {
    const c = (counts[r.table] ??= {})
    c[r.state] = (c[r.state] ?? 0) + 1
  }
  return { counts, rows }
}

/** Per table: stored rows by state (derived: ok / failed / blocked), rows to do (stale, missing); roots: rows. */
export interface TableCounts {
  readonly table: string
  readonly kind: 'root' | 'derived'
  readonly rows?: number
  readonly stored?: { readonly ok: number; readonly failed: number; readonly blocked: number }
  readonly stale?: number
  readonly missing?: number
}

export async function tableCounts(db: Kysely<any>, store: Store): Promise<TableCounts[]> {
  const graph = store.graph()
  const todo = await store.stale()
  const out: TableCounts[] = []
  for (const n of graph.nodes) {
    if (n.kind === 'root') {
      const r = await db.selectFrom(n.name).select((eb) => eb.fn.countAll().as('n')).executeTakeFirst()
      out.push({ table: n.name, kind: 'root', rows: Number(r?.n ?? 0) })
      continue
    }
    const stored = { ok: 0, failed: 0, blocked: 0 }
    const byState = await db
      .selectFrom(metaTable(n.name))
      .select(['lq_state', (eb) => eb.fn.countAll().as('n')])
      .groupBy('lq_state')
      .execute()
      .catch(() => [] as { lq_state: string; n: unknown }[]) // not created yet: nothing stored
    for (const r of byState) {
      const st = String(r.lq_state)
      if (st === 'ok' || st === 'failed' || st === 'blocked') stored[st] = Number(r.n)
    }
    const mine = todo.filter((s) => s.table === n.name)
    out.push({ table: n.name, kind: 'derived', stored, stale: mine.filter((s) => s.state === 'stale').length, missing: mine.filter((s) => s.state === 'missing').length })
  }
  return out
}

/** A node label with counts: `parsed\n5 ok, 1 failed\n2 stale, 1 missing`. */
export function countsLabel(c: TableCounts): string {
  if (c.kind === 'root') return `${c.table}\n${c.rows ?? 0} rows`
  const s = c.stored!
  const stored = [`${s.ok} ok`, ...(s.failed > 0 ? [`${s.failed} failed`] : []), ...(s.blocked > 0 ? [`${s.blocked} blocked`] : [])].join(', ')
  return `${c.table}\n${stored}\n${c.stale ?? 0} stale, ${c.missing ?? 0} missing`
}
