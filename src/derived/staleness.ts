/**
 * Finding work: which rows of a derived table are missing, stale or orphaned, and why. Read
 * only; `store.ts` acts on the result.
 *
 * For a derivation over one table (a root, or a derived table), the derived row and its input
 * share an address, and the input's revision lives in one indexed column (`lq_rev_R.rev` for a
 * root, `lq_meta_F.lq_changed_rev` for a derived table). The scan is
 *
 * ```sql
 * SELECT s.lq_key, s.rev, s.deleted, m.lq_key, m.lq_max_input_rev, m.lq_code_version
 * FROM lq_rev_R AS s LEFT JOIN lq_meta_X AS m ON m.lq_key = s.lq_key AND m.lq_state <> 'deleted'
 * WHERE s.rev > :watermark              -- PostgreSQL: OR s.xid >= :xmax OR s.xid = ANY(:xip)
 * ```
 *
 * so its cost follows the number of input rows written since the watermark (index range on
 * `rev`), plus, only when the code version changed, the rows computed with another version.
 *
 * A derivation over a comprehension is evaluated by delta (`delta.ts`): the rows of each table
 * it reads written since the watermark (the same index ranges), then the comprehension with one
 * generator restricted to those rows at a time (`Q(ΔD, E) ∪ Q(D, ΔE)`), plus the stored rows
 * those rows fed (`lq_edge`). Its cost follows the number of changed rows, given indexes on the
 * join columns. A change to a table the comprehension reads inside `exists`, an aggregate or a
 * nested collection (or declared `{ lineage: false }`), a comprehension with `limit`, a code
 * change and a first fill evaluate the whole comprehension and compare every stored row (input
 * hashes show changes the revisions cannot). `get`, and `status` of an unstored row or of such
 * a comprehension, evaluate it restricted to the address's rows (whole under `limit`); otherwise
 * `status` compares the recorded inputs with the current revisions.
 */
import { createHash } from 'node:crypto'
import { sql, type RawBuilder } from 'kysely'
import { LineageQueryError } from '../errors.js'
import { plan } from '../query/compile.js'
import { AST, Q, Query, type Table } from '../query/dsl.js'
import { run } from '../query/run.js'
import { inputLineage } from '../lineage/index.js'
import type { Constant, Expr } from '../query/ast.js'
import { readsOf, restrict, type Reads } from './delta.js'
import { metaTable, q, revTable, type Watermark } from './dialect.js'
import { chunks, IN_CHUNK, type Derivation, type Engine, type Task, type UpstreamRow } from './engine.js'
import { addressOf, addressValue, keyText, lineageOfAddress, normaliseLineage, parseInputs, type InputRevs } from './keys.js'
import { exec, jsonBatch, KEY_CHUNK } from './sqltext.js'
import type { Cause, SourceRow } from './types.js'

export type ScanFilter =
  | { readonly mode: 'since'; readonly wm: Watermark; readonly codeChanged: boolean }
  | { readonly mode: 'keys'; readonly keys: readonly string[] }
  /** Every row; `force`: also rows with no cause, so that each is computed again (`refresh({ full: true })`). */
  | { readonly mode: 'all'; readonly force?: boolean }

export interface Work {
  readonly addr: string
  readonly action: 'compute' | 'delete'
  readonly causes: Cause[]
  /** Whether a row (ok, failed or blocked) is stored for this address. */
  readonly stored: boolean
  /** Table derivations: the input revision the scan saw. */
  readonly rev?: number
  /** Query derivations: the prepared input. */
  readonly task?: Task
}

export interface MetaRow {
  readonly lq_key: string
  readonly lq_lineage: string
  readonly lq_inputs: string
  readonly lq_max_input_rev: number
  readonly lq_code_version: string
  readonly lq_state: string
  readonly lq_error: string | null
  readonly lq_changed_rev: number
  /** Query derivations reading tables outside their generators: SHA-1 of the input value. */
  readonly lq_input_hash: string | null
}

const num = (v: unknown): number => Number(v)
/**
 * A metadata row that is not a tombstone. Deleting a derived row leaves its metadata row with
 * state `deleted` and a new `lq_changed_rev`, so that readers of the table, declared in this
 * store or not, find the deletion by the same watermark scan as any other change.
 */
export const LIVE_TEXT = `lq_state <> 'deleted'`
const LIVE = sql.raw(LIVE_TEXT)
const id = (s: string) => sql.id(s)
const inList = (keys: readonly string[]): RawBuilder<unknown> => sql`(${sql.join(keys)})`

/** What a scan saw besides its work: filled by `scan` when passed. */
export interface ScanStats {
  /** Whether the scan read every input row (mode `all`, or a watermark never moved). */
  covered: boolean
  /** Live input rows seen. */
  live: number
}

export interface ScanOptions {
  /** Work items without causes (`refresh` needs none); default false. */
  readonly noCauses?: boolean
  /** Filled with what the scan saw. */
  readonly stats?: ScanStats
}

const NO_CAUSES: Cause[] = Object.freeze([]) as unknown as Cause[]

interface SourceTable {
  readonly table: string
  readonly rev: string
  /** SQL over the alias `s`: 1 when the row is deleted (a root tombstone, or a derived row's `deleted` state), else 0. */
  readonly deleted: string
  readonly xid: string
  readonly isRoot: boolean
  readonly name: string
}

/** The table holding an input's revisions: root revision table, or the upstream's metadata. */
function sourceFor(engine: Engine, name: string): SourceTable {
  if (engine.roots.has(name)) return { table: revTable(name), rev: 'rev', deleted: 's.deleted', xid: 'xid', isRoot: true, name }
  return { table: metaTable(name), rev: 'lq_changed_rev', deleted: `CASE WHEN s.lq_state = 'deleted' THEN 1 ELSE 0 END`, xid: 'lq_xid', isRoot: false, name }
}

function sourceOf(engine: Engine, x: Derivation): SourceTable {
  if (x.source.kind === 'root' || x.source.kind === 'derived') return sourceFor(engine, x.source.table)
  throw new Error(`internal: ${x.name} is not a one-table derivation`)
}

const forced = (f: ScanFilter): boolean => f.mode === 'all' && f.force === true

/** Find the missing, stale and orphaned rows of `x` (see the module comment). */
export async function scan(engine: Engine, x: Derivation, filter: ScanFilter, clock: Watermark, options: ScanOptions = {}): Promise<Map<string, Work>> {
  return x.source.kind === 'query' ? scanQuery(engine, x, filter, clock) : x.source.kind === 'zip' ? scanZip(engine, x, filter) : scanTable(engine, x, filter, options)
}

/**
 * `joinOnRoot` derivations: the candidate addresses are the rows of any part written since the
 * watermark (index ranges, as for one table), then each candidate is classified from the
 * parts' current revisions and the revisions recorded in the stored row.
 */
async function scanZip(engine: Engine, x: Derivation, filter: ScanFilter): Promise<Map<string, Work>> {
  if (x.source.kind !== 'zip') throw new Error('internal: not a zip derivation')
  const { db, d } = engine
  const srcs = x.source.parts.map((p) => sourceFor(engine, p.table))
  let keys: string[]
  if (filter.mode === 'keys') keys = [...filter.keys]
  else {
    const set = new Set<string>()
    for (const s of srcs) {
      const where = filter.mode === 'since' ? sql`WHERE ${d.since('s', s.rev, s.xid, filter.wm)}` : sql``
      for (const r of (await sql<{ lq_key: string }>`SELECT s.lq_key FROM ${id(s.table)} AS s ${where}`.execute(db)).rows) set.add(r.lq_key)
    }
    const metaWhere = filter.mode === 'all' ? sql`WHERE ${LIVE}` : filter.codeChanged ? sql`WHERE lq_code_version <> ${x.codeVersion} AND ${LIVE}` : undefined
    if (metaWhere !== undefined) for (const r of (await sql<{ lq_key: string }>`SELECT lq_key FROM ${id(metaTable(x.name))} ${metaWhere}`.execute(db)).rows) set.add(r.lq_key)
    keys = [...set]
  }
  const out = new Map<string, Work>()
  for (const part of chunks(keys, KEY_CHUNK)) {
    const current = new Map<string, Map<string, number>>()
    for (const s of srcs) current.set(s.name, s.isRoot ? await rootRevs(engine, s.name, part) : new Map([...(await metaRows(engine, s.name, part))].map(([k, m]) => [k, m.lq_changed_rev])))
    const metas = await metaRows(engine, x.name, part)
    for (const addr of part) {
      const key = addressValue(addr)
      const meta = metas.get(addr)
      const recorded = new Map(parseInputs(meta?.lq_inputs).map(([t, , r]) => [t, r]))
      const gone = srcs.find((s) => !current.get(s.name)!.has(addr))
      if (gone !== undefined) {
        if (meta !== undefined) out.set(addr, { addr, action: 'delete', stored: true, causes: [{ kind: 'input-deleted', table: gone.name, key, oldRevision: recorded.get(gone.name) ?? 0 }] })
        continue
      }
      if (meta === undefined) {
        out.set(addr, { addr, action: 'compute', stored: false, causes: [{ kind: 'missing', table: x.name, key }] })
        continue
      }
      const causes: Cause[] = []
      for (const s of srcs) {
        const now = current.get(s.name)!.get(addr)!
        const old = recorded.get(s.name) ?? 0
        if (now !== old) causes.push({ kind: s.isRoot ? 'input-changed' : 'upstream-changed', table: s.name, key, oldRevision: old, newRevision: now })
      }
      if (meta.lq_code_version !== x.codeVersion) causes.push({ kind: 'code-changed', table: x.name, oldVersion: meta.lq_code_version, newVersion: x.codeVersion })
      if (causes.length > 0 || forced(filter)) out.set(addr, { addr, action: 'compute', stored: true, causes })
    }
  }
  return out
}

interface Pair {
  src?: { rev: number; deleted: boolean }
  meta?: { rev: number; cv: string }
}

async function scanTable(engine: Engine, x: Derivation, filter: ScanFilter, options: ScanOptions): Promise<Map<string, Work>> {
  const { db, d } = engine
  const s = sourceOf(engine, x)
  const stats = options.stats
  // Every input row is wanted (a first refresh, or mode all): read them in key order, so a
  // first fill writes its rows in index order.
  const covered = filter.mode === 'all' || (filter.mode === 'since' && filter.wm.rev === 0 && filter.wm.xmin === null)
  if (stats !== undefined) stats.covered = covered
  if (covered && (await exec(db, `SELECT 1 AS one FROM ${q(metaTable(x.name))} LIMIT 1`, [])).length === 0) {
    // Nothing stored yet: every live input row is missing; no join with the (empty) metadata.
    const live = `WHERE ${s.deleted} = 0`
    const rows = await exec<{ k: string; rev: unknown }>(db, `SELECT s.lq_key AS k, s.${q(s.rev)} AS rev FROM ${q(s.table)} AS s ${live} ORDER BY s.lq_key`, [])
    if (stats !== undefined) stats.live = rows.length
    const out = new Map<string, Work>()
    for (const r of rows) {
      const causes = options.noCauses === true ? NO_CAUSES : [{ kind: 'missing' as const, table: x.name, key: addressValue(r.k) }]
      out.set(r.k, { addr: r.k, action: 'compute', stored: false, rev: num(r.rev), causes })
    }
    return out
  }
  const deleted = sql.raw(s.deleted)
  const pairs = new Map<string, Pair>()
  const add = (rows: readonly Record<string, unknown>[]) => {
    for (const r of rows) {
      const key = (r['k'] ?? r['mk']) as string
      const p: Pair = {}
      if (r['k'] !== null && r['k'] !== undefined) p.src = { rev: num(r['rev']), deleted: num(r['deleted']) === 1 }
      if (r['mk'] !== null && r['mk'] !== undefined) p.meta = { rev: num(r['mrev']), cv: r['mcv'] as string }
      pairs.set(key, p)
    }
  }
  const cols = sql`s.lq_key AS k, s.${id(s.rev)} AS rev, ${deleted} AS deleted, m.lq_key AS mk, m.lq_max_input_rev AS mrev, m.lq_code_version AS mcv`
  const fromSrc = sql`FROM ${id(s.table)} AS s LEFT JOIN ${id(metaTable(x.name))} AS m ON m.lq_key = s.lq_key AND m.${LIVE}`
  const fromMeta = sql`FROM ${id(metaTable(x.name))} AS m LEFT JOIN ${id(s.table)} AS s ON s.lq_key = m.lq_key`
  // (Not ORDER BY here: SQLite would then walk the key index instead of the revision range.)
  if (filter.mode === 'since') {
    add((await sql<Record<string, unknown>>`SELECT ${cols} ${fromSrc} WHERE ${d.since('s', s.rev, s.xid, filter.wm)}`.execute(db)).rows)
    if (filter.codeChanged) add((await sql<Record<string, unknown>>`SELECT ${cols} ${fromMeta} WHERE m.lq_code_version <> ${x.codeVersion} AND m.${LIVE}`.execute(db)).rows)
  } else if (filter.mode === 'keys') {
    // A few keys (get, status): bound parameters.
    for (const part of chunks(filter.keys, IN_CHUNK)) {
      add((await sql<Record<string, unknown>>`SELECT ${cols} ${fromSrc} WHERE s.lq_key IN ${inList(part)}`.execute(db)).rows)
      add((await sql<Record<string, unknown>>`SELECT ${cols} ${fromMeta} WHERE m.lq_key IN ${inList(part)} AND s.lq_key IS NULL AND m.${LIVE}`.execute(db)).rows)
    }
  } else {
    add((await sql<Record<string, unknown>>`SELECT ${cols} ${fromSrc} ORDER BY s.lq_key`.execute(db)).rows)
    add((await sql<Record<string, unknown>>`SELECT ${cols} ${fromMeta} WHERE s.lq_key IS NULL AND m.${LIVE}`.execute(db)).rows)
  }
  if (stats !== undefined) {
    let live = 0
    for (const p of pairs.values()) if (p.src !== undefined && !p.src.deleted) live++
    stats.live = live
  }
  const out = new Map<string, Work>()
  for (const [addr, p] of pairs) {
    const key = addressValue(addr)
    if (p.src === undefined || p.src.deleted) {
      if (p.meta !== undefined) out.set(addr, { addr, action: 'delete', stored: true, causes: [{ kind: 'input-deleted', table: s.name, key, oldRevision: p.meta.rev }] })
      continue
    }
    if (p.meta === undefined) {
      out.set(addr, { addr, action: 'compute', stored: false, rev: p.src.rev, causes: [{ kind: 'missing', table: x.name, key }] })
      continue
    }
    const causes: Cause[] = []
    if (p.meta.rev !== p.src.rev) {
      causes.push({ kind: s.isRoot ? 'input-changed' : 'upstream-changed', table: s.name, key, oldRevision: p.meta.rev, newRevision: p.src.rev })
    }
    if (p.meta.cv !== x.codeVersion) causes.push({ kind: 'code-changed', table: x.name, oldVersion: p.meta.cv, newVersion: x.codeVersion })
    if (causes.length > 0 || forced(filter)) out.set(addr, { addr, action: 'compute', stored: true, rev: p.src.rev, causes })
  }
  return out
}

/**
 * Whether a refresh of `x` is a first fill that can stream its input: a derivation over one
 * table (a root or a derived table), nothing stored yet, and every input row wanted (mode
 * `all`, or a watermark never moved). Then `fillPage` replaces the scan, a page at a time.
 */
export async function isFirstFill(engine: Engine, x: Derivation, filter: ScanFilter): Promise<boolean> {
  if (x.source.kind !== 'root' && x.source.kind !== 'derived') return false
  const covered = filter.mode === 'all' || (filter.mode === 'since' && filter.wm.rev === 0 && filter.wm.xmin === null)
  return covered && (await exec(engine.db, `SELECT 1 AS one FROM ${q(metaTable(x.name))} LIMIT 1`, [])).length === 0
}

/** The live input rows of a first fill (for progress: the rows it will handle). */
export async function fillCount(engine: Engine, x: Derivation): Promise<number> {
  const s = sourceOf(engine, x)
  return num((await exec<{ n: unknown }>(engine.db, `SELECT count(*) AS n FROM ${q(s.table)} AS s WHERE ${s.deleted} = 0`, []))[0]?.n)
}

/**
 * One page of a first fill: up to `limit` live input rows after `cursor` (undefined: from the
 * start), in key order (an index range), as work items, and the cursor of the last one. Memory
 * follows the page, not the table.
 */
export async function fillPage(engine: Engine, x: Derivation, cursor: unknown, limit: number): Promise<{ work: Work[]; cursor: unknown }> {
  const { d } = engine
  const s = sourceOf(engine, x)
  const after = cursor === undefined ? '' : ` AND ${d.afterCursor('s', d.ph(1))}`
  const text = `SELECT s.lq_key AS k, s.${q(s.rev)} AS rev, ${d.keyCursor('s')} AS c FROM ${q(s.table)} AS s WHERE ${s.deleted} = 0${after} ORDER BY s.lq_key LIMIT ${Math.trunc(limit)}`
  const rows = await exec<{ k: string; rev: unknown; c: unknown }>(engine.db, text, cursor === undefined ? [] : [cursor])
  const work = rows.map((r): Work => ({ addr: r.k, action: 'compute', stored: false, rev: num(r.rev), causes: NO_CAUSES }))
  return { work, cursor: rows.length === 0 ? cursor : rows[rows.length - 1]!.c }
}

/** The page's integer key bound: keys beyond JavaScript's safe range are reported, not read (see `unkeyable.ts`). */
const MAX_KEY = Number.MAX_SAFE_INTEGER

/**
 * Whether a first fill of `x` can page through its root table in the root's own key order
 * (`fillRootPage`): a derivation over a root with one integer key column.
 */
export function pagesByRootKey(engine: Engine, x: Derivation): boolean {
  if (x.source.kind !== 'root') return false
  const def = engine.roots.get(x.source.table)!.def
  return def.key!.length === 1 && def.byName.get(def.key![0]!)!.type.kind === 'int'
}

/**
 * One page of a first fill over a root with one integer key (`pagesByRootKey`): up to `limit`
 * root rows with keys after `after`, in key order (an index range of the root table), and
 * their current revisions, read in one transaction (REPEATABLE READ on PostgreSQL) so the
 * revisions are those of the rows read. Keys beyond the safe range are left to
 * `unsafeKeyWork`. Returns the tasks, the number of rows read and the last key.
 */
export async function fillRootPage(engine: Engine, x: Derivation, after: number | undefined, limit: number): Promise<{ tasks: Task[]; read: number; last: number | undefined }> {
  const table = (x.source as { table: string }).table
  const root = engine.roots.get(table)!
  const col = root.def.key![0]!
  const page = pageQuery(engine, root, Math.trunc(limit))
  const params = [...page.parameters]
  params[page.slot] = after === undefined ? -MAX_KEY : after + 1
  const read = async (db: Engine['db']) => {
    const rows = page.decode(await exec(db, page.sql, params)) as Row[]
    const revs = await rootRevs({ ...engine, db }, table, rows.map((r) => keyText(r[col])))
    return { rows, revs }
  }
  const begin = engine.db.transaction()
  const { rows, revs } = await (engine.d.name === 'postgres' ? begin.setIsolationLevel('repeatable read') : begin).execute(read)
  const tasks: Task[] = []
  for (const row of rows) {
    const addr = keyText(row[col])
    const rev = revs.get(addr)
    if (rev === undefined) continue // no live revision row: deleted meanwhile, seen by the next scan
    tasks.push({ addr, input: row, lineage: [{ table, key: row[col] }], inputs: [[table, addr, rev]], maxRev: rev, upstream: [], edges: [] })
  }
  return { tasks, read: rows.length, last: rows.length === 0 ? after : (rows[rows.length - 1]![col] as number) }
}

/** A first-fill page query, compiled once per root, dialect and page size: its lower key bound is parameter `slot`. */
interface PageQuery {
  readonly sql: string
  readonly parameters: readonly unknown[]
  readonly slot: number
  readonly decode: (rows: readonly Record<string, unknown>[]) => unknown[]
}

const pageQueries = new WeakMap<AnyTable, Map<string, PageQuery>>()
/** A placeholder for the page's lower bound, found among the compiled parameters (checked unique). */
const PAGE_PLACEHOLDER = -4_000_000_000_000_001

function pageQuery(engine: Engine, root: AnyTable, limit: number): PageQuery {
  let perRoot = pageQueries.get(root)
  if (perRoot === undefined) pageQueries.set(root, (perRoot = new Map()))
  const cacheKey = `${engine.d.name}:${limit}`
  const hit = perRoot.get(cacheKey)
  if (hit !== undefined) return hit
  const col = root.def.key![0]!
  const query = Q.for(root as Table<string, any, unknown>, (r: any) => Q.where(Q.and(Q.ge(r[col], PAGE_PLACEHOLDER), Q.le(r[col], MAX_KEY)), Q.yield(r)))
    .orderBy((r: any) => r[col])
    .limit(limit) as Query<Row, never>
  const p = plan(query, engine.d.name)
  const st = p.statements[0]!
  const slot = st.parameters.indexOf(PAGE_PLACEHOLDER)
  if (p.statements.length !== 1 || slot < 0 || st.parameters.lastIndexOf(PAGE_PLACEHOLDER) !== slot) throw new Error(`internal: the first-fill page query of \`${root.name}\` did not compile to one statement with one lower bound`)
  const built: PageQuery = { sql: st.sql, parameters: st.parameters, slot, decode: p.decode }
  perRoot.set(cacheKey, built)
  return built
}

/** Live revision rows of a root whose key text may be an integer beyond the safe range (16 digits or more). */
export async function unsafeKeyWork(engine: Engine, x: Derivation): Promise<Work[]> {
  const s = sourceOf(engine, x)
  const rows = await exec<{ k: string; rev: unknown }>(engine.db, `SELECT s.lq_key AS k, s.rev AS rev FROM ${q(s.table)} AS s WHERE s.deleted = 0 AND length(s.lq_key) >= 16`, [])
  return rows.map((r): Work => ({ addr: r.k, action: 'compute', stored: false, rev: num(r.rev), causes: NO_CAUSES }))
}

/** Current revisions of root rows (live ones only), by key text. */
export async function rootRevs(engine: Engine, root: string, keys: readonly string[]): Promise<Map<string, number>> {
  const out = new Map<string, number>()
  const { d } = engine
  const text = `SELECT lq_key, rev FROM ${q(revTable(root))} WHERE deleted = 0 AND lq_key IN (${d.jsonTexts(d.ph(1))})`
  for (const part of chunks([...new Set(keys)], KEY_CHUNK)) {
    for (const row of await exec<{ lq_key: string; rev: unknown }>(engine.db, text, [jsonBatch(part, engine.d)])) out.set(row.lq_key, num(row.rev))
  }
  return out
}

/** Metadata rows of a derived table, by address. */
export async function metaRows(engine: Engine, table: string, keys: readonly string[] | 'all'): Promise<Map<string, MetaRow>> {
  const out = new Map<string, MetaRow>()
  const { d } = engine
  const cols = 'lq_key, lq_lineage, lq_inputs, lq_max_input_rev, lq_code_version, lq_state, lq_error, lq_changed_rev, lq_input_hash'
  const take = (rows: readonly Record<string, unknown>[]) => {
    for (const r of rows) {
      out.set(r['lq_key'] as string, {
        lq_key: r['lq_key'] as string,
        lq_lineage: r['lq_lineage'] as string,
        lq_inputs: r['lq_inputs'] as string,
        lq_max_input_rev: num(r['lq_max_input_rev']),
        lq_code_version: r['lq_code_version'] as string,
        lq_state: r['lq_state'] as string,
        lq_error: (r['lq_error'] as string | null) ?? null,
        lq_changed_rev: num(r['lq_changed_rev']),
        lq_input_hash: (r['lq_input_hash'] as string | null) ?? null,
      })
    }
  }
  if (keys === 'all') {
    take(await exec(engine.db, `SELECT ${cols} FROM ${q(metaTable(table))} WHERE ${LIVE_TEXT}`, []))
  } else if (keys.length <= 1) {
    if (keys.length === 1) take(await exec(engine.db, `SELECT ${cols} FROM ${q(metaTable(table))} WHERE lq_key = ${d.ph(1)} AND ${LIVE_TEXT}`, [keys[0]]))
  } else {
    const text = `SELECT ${cols} FROM ${q(metaTable(table))} WHERE lq_key IN (${d.jsonTexts(d.ph(1))}) AND ${LIVE_TEXT}`
    for (const part of chunks([...new Set(keys)], KEY_CHUNK)) take(await exec(engine.db, text, [jsonBatch(part, engine.d)]))
  }
  return out
}

/**
 * Causes for stored rows from their recorded inputs alone: an input deleted, a root input
 * written since, an upstream row changed; plus a code change. No comprehension is evaluated.
 */
export async function recordedCauses(engine: Engine, x: Derivation, metas: readonly MetaRow[]): Promise<Map<string, Cause[]>> {
  const byTable = new Map<string, Set<string>>()
  for (const m of metas) for (const [t, k] of parseInputs(m.lq_inputs)) (byTable.get(t) ?? byTable.set(t, new Set()).get(t)!).add(k)
  const current = new Map<string, Map<string, number>>()
  for (const [t, keys] of byTable) {
    if (engine.roots.has(t)) current.set(t, await rootRevs(engine, t, [...keys]))
    else {
      const rows = await metaRows(engine, t, [...keys])
      current.set(t, new Map([...rows].map(([k, r]) => [k, r.lq_changed_rev])))
    }
  }
  const out = new Map<string, Cause[]>()
  for (const m of metas) {
    const causes: Cause[] = []
    for (const [t, k, rev] of parseInputs(m.lq_inputs)) {
      const now = current.get(t)?.get(k)
      const key = addressValue(k)
      if (now === undefined) causes.push({ kind: 'input-deleted', table: t, key, oldRevision: rev })
      else if (now > rev) causes.push({ kind: engine.roots.has(t) ? 'input-changed' : 'upstream-changed', table: t, key, oldRevision: rev, newRevision: now })
    }
    if (m.lq_code_version !== x.codeVersion) causes.push({ kind: 'code-changed', table: x.name, oldVersion: m.lq_code_version, newVersion: x.codeVersion })
    out.set(m.lq_key, causes)
  }
  return out
}

/** A comprehension with lineage (`inputLineage`: direct entries, nested collections plain), ready to run. */
type LineageQuery = Query<unknown, never>

const wholeQueries = new WeakMap<Derivation, LineageQuery>()
/** The lineage form of a derivation's whole comprehension (built once: its compiled plan is cached with it). */
function wholeQuery(x: Derivation): LineageQuery {
  let q = wholeQueries.get(x)
  if (q === undefined) wholeQueries.set(x, (q = inputLineage(x.query!) as unknown as LineageQuery))
  return q
}

/**
 * The lineage form of a restricted comprehension, or, when its statement would bind more
 * parameters than the dialect takes (a restricted site copied into many union branches),
 * `undefined`.
 */
function restrictedQuery(engine: Engine, e: Expr): LineageQuery | undefined {
  const q = inputLineage(new Query(e)) as unknown as LineageQuery
  const p = plan(q, engine.d.name)
  return p.statements.every((st) => st.parameters.length <= engine.d.maxParams) ? q : undefined
}

/**
 * Evaluate a query derivation's comprehension, or restricted forms of it (`delta.ts`), and
 * prepare one task per result row. The queries and the revision reads run in one transaction
 * (REPEATABLE READ on PostgreSQL), so they see the same snapshot: a root write that commits in
 * between cannot be recorded as read.
 */
export async function evaluateQuery(engine: Engine, x: Derivation, clock: Watermark, queries: readonly LineageQuery[] = [wholeQuery(x)]): Promise<Map<string, Task>> {
  if (engine.db.isTransaction) return evaluateQueryIn(engine, x, clock, queries)
  const begin = engine.db.transaction()
  return (engine.d.name === 'postgres' ? begin.setIsolationLevel('repeatable read') : begin).execute((trx) => evaluateQueryIn({ ...engine, db: trx }, x, clock, queries))
}

type Annotated = { data: unknown; lineage: SourceRow[] }

/** SHA-1 hex of a string. */
const sha1 = (text: string): string => createHash('sha1').update(text).digest('hex')

async function evaluateQueryIn(engine: Engine, x: Derivation, clock: Watermark, queries: readonly LineageQuery[]): Promise<Map<string, Task>> {
  const results: Annotated[][] = []
  for (const q of queries) results.push((await run(engine.db, q)) as unknown as Annotated[])
  // Revisions of every row named, read after the data; clamped to the clock read before it, so
  // a row written in between looks stale next time rather than fresh (see docs/derived.md).
  const wanted = new Map<string, Set<string>>()
  for (const rows of results) for (const r of rows) for (const e of r.lineage) (wanted.get(e.table) ?? wanted.set(e.table, new Set()).get(e.table)!).add(engine.roots.has(e.table) ? keyText(e.key) : (e.key as string))
  const revs = new Map<string, Map<string, number>>()
  const metas = new Map<string, Map<string, MetaRow>>()
  for (const [t, keys] of wanted) {
    if (engine.roots.has(t)) revs.set(t, await rootRevs(engine, t, [...keys]))
    else if (engine.derivations.has(t)) {
      const m = await metaRows(engine, t, [...keys])
      metas.set(t, m)
      revs.set(t, new Map([...m].map(([k, r]) => [k, r.lq_changed_rev])))
    }
  }
  // Input hashes: only where the lineage's revisions do not cover every table read.
  const hashed = readsFor(x).opaque.size > 0
  const tasks = new Map<string, Task>()
  // The restricted evaluations of a delta overlap (a row binding changed rows at two sites is
  // in both): the same row, with the same direct lineage in the same order, is taken once. Two
  // different rows at one address are an error, as in one evaluation.
  const signatures = new Map<string, string>()
  for (const rows of results) {
    const mine = new Set<string>()
    for (const r of rows) {
      const task = taskOf(engine, x, r, revs, metas, clock, hashed)
      if (task === undefined) continue
      const signature = JSON.stringify([r.lineage.map((e) => [e.table, e.key]), r.data])
      const seen = signatures.get(task.addr)
      if (mine.has(task.addr) || (seen !== undefined && seen !== signature)) {
        throw new LineageQueryError('lineage', `derived table \`${x.name}\`: two rows of its input comprehension come from the same source rows (${task.addr}), so they would have the same address; make each input row come from distinct rows (for example, join derived tables of one root with joinOnRoot)`, {
          table: x.name,
          key: addressValue(task.addr),
        })
      }
      mine.add(task.addr)
      if (seen === undefined) {
        signatures.set(task.addr, signature)
        tasks.set(task.addr, task)
      }
    }
  }
  return tasks
}

function taskOf(engine: Engine, x: Derivation, r: Annotated, revs: Map<string, Map<string, number>>, metas: Map<string, Map<string, MetaRow>>, clock: Watermark, hashed: boolean): Task | undefined {
  const rootEntries: SourceRow[] = []
  const inputs: [string, string, number][] = []
  const upstream: UpstreamRow[] = []
  const edges: [string, string][] = []
  for (const e of r.lineage) {
    const k = engine.roots.has(e.table) ? keyText(e.key) : (e.key as string)
    const rev = revs.get(e.table)?.get(k)
    if (rev === undefined) return undefined // deleted between the query and the revision read: next refresh sees it
    inputs.push([e.table, k, Math.min(rev, clock.rev)])
    edges.push([e.table, k])
    if (engine.roots.has(e.table)) rootEntries.push({ table: e.table, key: e.key })
    else {
      const m = metas.get(e.table)!.get(k)!
      upstream.push({ table: e.table, addr: k, state: m.lq_state, error: m.lq_error })
      rootEntries.push(...lineageOfAddress(k, engine.derivations.get(e.table)!.roots))
    }
  }
  const lin = normaliseLineage(rootEntries)
  const addr = addressOf(lin, x.singleRoot)
  const task: Task = { addr, input: r.data, lineage: lin, inputs: dedupInputs(inputs), maxRev: Math.max(0, ...inputs.map((i) => i[2])), upstream, edges, evalRev: clock.rev }
  return hashed ? { ...task, inputHash: sha1(JSON.stringify(r.data) ?? 'null') } : task
}

function dedupInputs(inputs: readonly [string, string, number][]): InputRevs {
  const m = new Map<string, [string, string, number]>()
  for (const i of inputs) m.set(`${i[0]}\u0000${i[1]}`, i)
  return [...m.values()]
}

/** Changed composite keys per statement of a delta evaluation (see `scanQuery`). */
const COMPOSITE_DELTA_KEYS = 100

/** Addresses of a `keys` scan above which the comprehension is evaluated whole. */
const DELTA_ADDRESSES = 50

const readsCache = new WeakMap<Derivation, Reads>()
/** Where a comprehension derivation reads its tables (`readsOf`, computed once per derivation). */
export function readsFor(x: Derivation): Reads {
  let r = readsCache.get(x)
  if (r === undefined) readsCache.set(x, (r = readsOf(x.query![AST])))
  return r
}

/**
 * Whether the rows of derived table `u` are addressed by root keys (`keyText` of the root's
 * key): a derivation over a root, over such a table, or `joinOnRoot`. A comprehension's rows
 * are addressed by their lineage, which may be a list (a self-join, an empty lineage).
 */
export function keyAddressed(engine: Engine, u: Derivation): boolean {
  if (u.source.kind === 'root' || u.source.kind === 'zip') return true
  if (u.source.kind === 'derived') return keyAddressed(engine, engine.derivations.get(u.source.table)!)
  return false
}

/** The key tuple of a row of `table` named by its key text (root) or address (derived). */
function keyTuple(engine: Engine, table: string, key: string): Constant[] | undefined {
  if (!engine.roots.has(table)) return [key]
  const cols = engine.roots.get(table)!.def.key!
  const v = JSON.parse(key) as unknown
  const tuple = cols.length === 1 ? [v] : Array.isArray(v) && v.length === cols.length ? v : undefined
  return tuple !== undefined && tuple.every((c) => typeof c === 'number' || typeof c === 'string' || typeof c === 'boolean') ? (tuple as Constant[]) : undefined
}

interface Changes {
  /** Key texts (roots) or addresses (derived) of rows written since the watermark and live. */
  readonly live: string[]
  /** Rows deleted since the watermark. */
  readonly gone: string[]
}

/** The rows of table `t` written since `wm` (index ranges on the revision columns). */
async function changedRows(engine: Engine, t: string, wm: Watermark): Promise<Changes> {
  const s = sourceFor(engine, t)
  const deleted = sql.raw(s.deleted)
  const rows = (await sql<{ k: string; deleted: unknown }>`SELECT s.lq_key AS k, ${deleted} AS deleted FROM ${id(s.table)} AS s WHERE ${engine.d.since('s', s.rev, s.xid, wm)}`.execute(engine.db)).rows
  const out: Changes = { live: [], gone: [] }
  for (const r of rows) (num(r.deleted) === 1 ? out.gone : out.live).push(r.k)
  return out
}

/** Stored rows of `x` fed by the given rows of `t` (`lq_edge`, by its primary key). */
async function edgeTargets(engine: Engine, x: Derivation, t: string, keys: readonly string[], into: Set<string>): Promise<void> {
  const { d } = engine
  const text = `SELECT dst_key FROM lq_edge WHERE src_table = ${d.ph(1)} AND src_key IN (${d.jsonTexts(d.ph(2))}) AND dst_table = ${d.ph(3)}`
  for (const part of chunks(keys, KEY_CHUNK)) for (const r of await exec<{ dst_key: string }>(engine.db, text, [t, jsonBatch(part, d), x.name])) into.add(r.dst_key)
}

/**
 * Restricted forms of the comprehension with generator `site` over table `t` restricted to
 * `keys`: one statement for all of them, or, when that statement would bind too many
 * parameters, halves of the list in turn. `undefined` when even one key is too many.
 */
function restrictSite(engine: Engine, x: Derivation, t: string, site: number, keys: readonly Constant[][]): LineageQuery[] | undefined {
  const q = restrictedQuery(engine, restrict(x.query![AST], (tbl, i) => (tbl.name === t && i === site ? keys : undefined)))
  if (q !== undefined) return [q]
  if (keys.length <= 1) return undefined
  const half = keys.length >> 1
  const a = restrictSite(engine, x, t, site, keys.slice(0, half))
  const b = a === undefined ? undefined : restrictSite(engine, x, t, site, keys.slice(half))
  return a === undefined || b === undefined ? undefined : [...a, ...b]
}

/**
 * The comprehension restricted to the rows a `keys` scan can reach: each generator over a root
 * table to the address's entries of that table, over a derived table addressed by root keys to
 * the rows of the address's root keys; generators over other derived tables stay whole.
 * `undefined`: evaluate it whole.
 */
function restrictedToAddresses(engine: Engine, x: Derivation, addrs: readonly string[]): LineageQuery | undefined {
  const reads = readsFor(x)
  if (reads.limited || addrs.length > DELTA_ADDRESSES) return undefined
  const entries: SourceRow[] = []
  for (const a of addrs) entries.push(...lineageOfAddress(a, x.roots))
  let ok = true
  const e = restrict(x.query![AST], (tbl) => {
    if (engine.roots.has(tbl.name)) {
      const keys = entries.filter((en) => en.table === tbl.name).map((en) => keyTuple(engine, tbl.name, keyText(en.key)))
      if (keys.some((k) => k === undefined)) ok = false
      return keys as Constant[][]
    }
    const u = engine.derivations.get(tbl.name)
    if (u === undefined || !keyAddressed(engine, u)) return undefined
    const mine = entries.filter((en) => en.table === u.roots[0])
    return [...new Set(mine.map((en) => keyText(en.key)))].map((k) => [k])
  })
  return ok ? restrictedQuery(engine, e) : undefined
}

async function scanQuery(engine: Engine, x: Derivation, filter: ScanFilter, clock: Watermark): Promise<Map<string, Work>> {
  const out = new Map<string, Work>()
  const reads = readsFor(x)
  let tasks: Map<string, Task>
  // The stored rows to compare with: every one, or those the changed rows feed plus the results.
  let candidates: string[] | 'all'
  if (filter.mode === 'since' && filter.wm.rev > 0 && !filter.codeChanged) {
    const changes = new Map<string, Changes>()
    for (const t of x.reads) {
      const c = await changedRows(engine, t, filter.wm)
      if (c.live.length + c.gone.length > 0) changes.set(t, c)
    }
    if (changes.size === 0) return out
    const keys = new Map([...changes].map(([t, c]) => [t, c.live.map((k) => keyTuple(engine, t, k))]))
    // Delta: Q(ΔD, E) ∪ Q(D, ΔE), one generator site restricted at a time.
    let queries: LineageQuery[] | undefined =
      !reads.limited && [...changes.keys()].every((t) => !reads.opaque.has(t)) && [...keys.values()].every((ks) => ks.every((k) => k !== undefined)) ? [] : undefined
    for (const [t, ks] of keys) {
      for (let site = 0; queries !== undefined && site < (reads.sites.get(t) ?? 0); site++) {
        // Composite keys become an OR of ANDs, which SQLite takes quadratic time to prepare: short lists.
        const width = engine.roots.get(t)?.def.key?.length ?? 1
        for (const part of chunks(ks as Constant[][], width === 1 ? engine.d.deltaKeys : Math.min(engine.d.deltaKeys, COMPOSITE_DELTA_KEYS))) {
          const qs = restrictSite(engine, x, t, site, part)
          if (qs === undefined) {
            queries = undefined
            break
          }
          queries.push(...qs)
        }
      }
    }
    if (queries !== undefined) {
      tasks = queries.length === 0 ? new Map() : await evaluateQuery(engine, x, clock, queries)
      const fed = new Set<string>(tasks.keys())
      for (const [t, c] of changes) await edgeTargets(engine, x, t, [...c.live, ...c.gone], fed)
      candidates = [...fed]
    } else {
      tasks = await evaluateQuery(engine, x, clock)
      candidates = 'all'
    }
  } else if (filter.mode === 'keys') {
    const restricted = restrictedToAddresses(engine, x, filter.keys)
    tasks = await evaluateQuery(engine, x, clock, restricted === undefined ? undefined : [restricted])
    candidates = [...filter.keys]
  } else {
    tasks = await evaluateQuery(engine, x, clock)
    candidates = 'all'
  }
  const wantedKeys = filter.mode === 'keys' ? new Set(filter.keys) : undefined
  const metas = await metaRows(engine, x.name, candidates)
  for (const [addr, task] of tasks) {
    if (wantedKeys !== undefined && !wantedKeys.has(addr)) continue
    const m = metas.get(addr)
    const key = addressValue(addr)
    if (m === undefined) {
      out.set(addr, { addr, action: 'compute', stored: false, task, causes: [{ kind: 'missing', table: x.name, key }] })
      continue
    }
    const recorded = new Map(parseInputs(m.lq_inputs).map(([t, k, r]) => [`${t}\u0000${k}`, r]))
    const causes: Cause[] = []
    for (const [t, k, rev] of task.inputs) {
      const old = recorded.get(`${t}\u0000${k}`)
      if (old === undefined || old !== rev) {
        causes.push({ kind: engine.roots.has(t) ? 'input-changed' : 'upstream-changed', table: t, key: addressValue(k), oldRevision: old ?? 0, newRevision: rev })
      }
    }
    // A table read outside the generators changed what the comprehension yields for this row
    // (a row stored without an input hash, by an earlier version, counts as changed).
    if (causes.length === 0 && task.inputHash !== undefined && m.lq_input_hash !== task.inputHash) causes.push({ kind: 'input-value-changed', table: x.name, key, reads: [...reads.opaque].sort() })
    if (m.lq_code_version !== x.codeVersion) causes.push({ kind: 'code-changed', table: x.name, oldVersion: m.lq_code_version, newVersion: x.codeVersion })
    if (causes.length > 0 || forced(filter)) out.set(addr, { addr, action: 'compute', stored: true, task, causes })
  }
  const gone = [...metas.values()].filter((m) => !tasks.has(m.lq_key))
  if (gone.length > 0) {
    const recorded = await recordedCauses(engine, x, gone)
    for (const m of gone) {
      const why = (recorded.get(m.lq_key) ?? []).filter((c) => c.kind === 'input-deleted')
      out.set(m.lq_key, { addr: m.lq_key, action: 'delete', stored: true, causes: why.length > 0 ? why : [{ kind: 'no-input', table: x.name, key: addressValue(m.lq_key) }] })
    }
  }
  return out
}

// ---------------------------------------------------------------- loading inputs

type AnyTable = Table<string, unknown, unknown>
type Row = Record<string, unknown>

/**
 * A key lookup compiled once per table, dialect and list length: the DSL query
 * `for r in T where r.key in (k1, ..., kn) yield r` built with placeholder keys, whose bound
 * parameters are replaced by the keys of each call. (`compile` caches per query object, so a
 * query built per call would be compiled per call.)
 */
interface KeyLookup {
  readonly sql: string
  readonly parameters: readonly unknown[]
  /** For key i, column c: the index of its parameter. */
  readonly slots: readonly (readonly number[])[]
  readonly decode: (rows: readonly Record<string, unknown>[]) => unknown[]
}

const lookups = new WeakMap<AnyTable, Map<string, KeyLookup | null>>()
const scans = new WeakMap<AnyTable, Query<Row, never>>()
const LOOKUP_KEYS = IN_CHUNK
const PLACEHOLDER_INT = -4_000_000_000_000_000 // far from any key a test or user writes; checked for uniqueness anyway

function lookupFor(engine: Engine, tbl: AnyTable, n: number): KeyLookup | null {
  let perTable = lookups.get(tbl)
  if (perTable === undefined) lookups.set(tbl, (perTable = new Map()))
  const cacheKey = `${engine.d.name}:${n}`
  const hit = perTable.get(cacheKey)
  if (hit !== undefined) return hit
  const keyCols = tbl.def.key!
  const kinds = keyCols.map((c) => tbl.def.byName.get(c)!.type.kind)
  let built: KeyLookup | null = null
  if (kinds.every((k) => k === 'int' || k === 'string')) {
    const placeholder = (i: number, c: number): number | string => (kinds[c] === 'int' ? PLACEHOLDER_INT + i * keyCols.length + c : `\uffff\uffffLQ${i}:${c}`)
    const values = Array.from({ length: n }, (_, i) => keyCols.map((_, c) => placeholder(i, c)))
    const query = keyQuery(tbl, values)
    const p = plan(query, engine.d.name)
    const st = p.statements.length === 1 ? p.statements[0]! : undefined
    if (st !== undefined) {
      const slots = values.map((v) => v.map((ph) => (st.parameters.indexOf(ph) === st.parameters.lastIndexOf(ph) ? st.parameters.indexOf(ph) : -1)))
      if (slots.every((s) => s.every((i) => i >= 0))) built = { sql: st.sql, parameters: st.parameters, slots, decode: p.decode }
    }
  }
  perTable.set(cacheKey, built)
  return built
}

function keyQuery(tbl: AnyTable, values: readonly (readonly unknown[])[]): Query<Row, never> {
  const keyCols = tbl.def.key!
  return Q.for(tbl as Table<string, any, unknown>, (r: any) =>
    Q.where(
      keyCols.length === 1 ? Q.in(r[keyCols[0]!], values.map((v) => v[0]) as any[]) : Q.or(...values.map((v) => Q.and(...keyCols.map((c, i) => Q.eq(r[c], v[i] as any))))),
      Q.yield(r),
    ),
  ) as Query<Row, never>
}

const fitsKind = (kind: string, v: unknown): boolean => (kind === 'int' ? Number.isSafeInteger(v) : kind === 'string' ? typeof v === 'string' : false)

/** Rows of a table whose key text is in `keys`, keyed by key text (decoded through the codecs). */
export async function rowsByKey(engine: Engine, tbl: AnyTable, keys: readonly string[]): Promise<Map<string, Row>> {
  const keyCols = tbl.def.key!
  const kinds = keyCols.map((c) => tbl.def.byName.get(c)!.type.kind)
  const out = new Map<string, Row>()
  const take = (rows: readonly Row[]) => {
    for (const row of rows) out.set(keyText(keyCols.length === 1 ? row[keyCols[0]!] : keyCols.map((c) => row[c])), row)
  }
  const per = keyCols.length === 1 ? LOOKUP_KEYS : 100
  for (const part of chunks(keys, per)) {
    const values = part.map((k) => {
      const v = JSON.parse(k) as unknown
      return keyCols.length === 1 ? [v] : Array.isArray(v) && v.length === keyCols.length ? v : undefined
    })
    // Lists of a fixed length (short parts padded with their first key), so one plan serves all.
    const size = part.length <= 8 ? part.length : per
    const lookup = values.every((v) => v !== undefined && v.every((x, c) => fitsKind(kinds[c]!, x))) ? lookupFor(engine, tbl, size) : null
    if (lookup !== null) {
      const params = [...lookup.parameters]
      for (let i = 0; i < size; i++) {
        const v = values[i] ?? values[0]!
        lookup.slots[i]!.forEach((at, c) => (params[at] = v![c]))
      }
      take(lookup.decode(await exec(engine.db, lookup.sql, params)) as Row[])
    } else {
      // Keys the placeholders cannot stand for (booleans): a query for this list.
      take((await run(engine.db, keyQuery(tbl, values.filter((v) => v !== undefined) as unknown[][]))) as Row[])
    }
  }
  return out
}

/** Every row of a table (one statement; the query object is built once per table). */
async function allRows(engine: Engine, tbl: AnyTable): Promise<Row[]> {
  let query = scans.get(tbl)
  if (query === undefined) scans.set(tbl, (query = Q.for(tbl as Table<string, any, unknown>, (r: any) => Q.yield(r)) as Query<Row, never>))
  return (await run(engine.db, query)) as Row[]
}

/**
 * Reads the inputs of a table derivation's work, a part at a time. `bulk`: most rows of the
 * input are wanted (a first fill), so it reads the whole input table once, in one statement,
 * instead of looking keys up part by part.
 */
export async function inputLoader(engine: Engine, x: Derivation, bulk: boolean): Promise<(work: readonly Work[]) => Promise<Task[]>> {
  if (!bulk || (x.source.kind !== 'root' && x.source.kind !== 'derived')) return (work) => loadTasks(engine, x, work)
  if (x.source.kind === 'root') {
    const root = engine.roots.get(x.source.table)!
    const keyCols = root.def.key!
    const rows = new Map<string, Row>()
    for (const row of await allRows(engine, root)) rows.set(keyText(keyCols.length === 1 ? row[keyCols[0]!] : keyCols.map((c) => row[c])), row)
    return async (work) => rootTasks(x, work, rows)
  }
  const up = engine.derivations.get(x.source.table)!
  const metas = await metaRows(engine, up.name, 'all')
  const rows = new Map<string, Row>()
  for (const row of await allRows(engine, up.table as unknown as AnyTable)) rows.set(row['lq_key'] as string, row)
  return async (work) => derivedTasks(up, work, metas, (addr) => rows.get(addr))
}

function rootTasks(x: Derivation, work: readonly Work[], rows: ReadonlyMap<string, Row>): Task[] {
  const table = (x.source as { table: string }).table
  const tasks: Task[] = []
  for (const w of work) {
    const row = rows.get(w.addr)
    if (row === undefined) continue // deleted since the scan: the next scan sees the deletion
    const rev = w.rev!
    tasks.push({ addr: w.addr, input: row, lineage: [{ table, key: JSON.parse(w.addr) as unknown }], inputs: [[table, w.addr, rev]], maxRev: rev, upstream: [], edges: [] })
  }
  return tasks
}

function derivedTasks(up: Derivation, work: readonly Work[], metas: ReadonlyMap<string, MetaRow>, row: (addr: string) => Row | undefined): Task[] {
  const tasks: Task[] = []
  for (const w of work) {
    const m = metas.get(w.addr)
    if (m === undefined) continue
    const r = row(w.addr)
    if (r === undefined && m.lq_state === 'ok') continue // changed between the two reads; next scan
    tasks.push({
      addr: w.addr,
      input: r === undefined ? undefined : withoutKey(r),
      lineage: lineageOfAddress(w.addr, up.roots),
      inputs: [[up.name, w.addr, m.lq_changed_rev]],
      maxRev: m.lq_changed_rev,
      upstream: [{ table: up.name, addr: w.addr, state: m.lq_state, error: m.lq_error }],
      edges: [],
    })
  }
  return tasks
}

/** Tasks for `work` items of a table derivation: revisions first, then the input rows. */
export async function loadTasks(engine: Engine, x: Derivation, work: readonly Work[]): Promise<Task[]> {
  const keys = work.map((w) => w.addr)
  if (x.source.kind === 'root') {
    const root = engine.roots.get(x.source.table)!
    return rootTasks(x, work, await rowsByKey(engine, root, keys))
  }
  if (x.source.kind === 'derived') {
    const up = engine.derivations.get(x.source.table)!
    const metas = await metaRows(engine, up.name, keys)
    const rows = await rowsByKey(engine, up.table as unknown as AnyTable, keys.map((k) => JSON.stringify(k)))
    return derivedTasks(up, work, metas, (addr) => rows.get(JSON.stringify(addr)))
  }
  if (x.source.kind === 'zip') {
    const parts: { as: string; up: Derivation; metas: Map<string, MetaRow>; rows: Map<string, Row> }[] = []
    for (const p of x.source.parts) {
      const up = engine.derivations.get(p.table)!
      const metas = await metaRows(engine, up.name, keys)
      const rows = await rowsByKey(engine, up.table as unknown as AnyTable, keys.map((k) => JSON.stringify(k)))
      parts.push({ as: p.as, up, metas, rows })
    }
    const tasks: Task[] = []
    for (const w of work) {
      const input: Record<string, unknown> = {}
      const inputs: [string, string, number][] = []
      const upstream: UpstreamRow[] = []
      let skip = false
      for (const p of parts) {
        const m = p.metas.get(w.addr)
        const row = p.rows.get(JSON.stringify(w.addr))
        if (m === undefined || (row === undefined && m.lq_state === 'ok')) {
          skip = true
          break
        }
        input[p.as] = row === undefined ? undefined : withoutKey(row)
        inputs.push([p.up.name, w.addr, m.lq_changed_rev])
        upstream.push({ table: p.up.name, addr: w.addr, state: m.lq_state, error: m.lq_error })
      }
      if (skip) continue
      tasks.push({ addr: w.addr, input, lineage: [{ table: x.roots[0]!, key: addressValue(w.addr) }], inputs, maxRev: Math.max(...inputs.map((i) => i[2])), upstream, edges: [] })
    }
    return tasks
  }
  return work.flatMap((w) => (w.task === undefined ? [] : [w.task]))
}

export function withoutKey(row: Record<string, unknown>): Record<string, unknown> {
  const { lq_key: _k, ...rest } = row
  return rest
}

export const isQuery = (x: unknown): x is Query<unknown, unknown> => typeof x === 'object' && x !== null && AST in x

/**
 * For `affected`: the addresses of `x` that rows `keys` of root `t` feed in the current data,
 * computed or not: the rows of the comprehension with its generators over `t` restricted to
 * them (one site at a time), only for the keys written since `x`'s watermark `wm` (the rows
 * of older keys were computed, and `lq_edge` has them). A comprehension that reads `t` outside
 * its generators (inside an aggregate, `exists`, a nested collection, or `{ lineage: false }`)
 * or has `limit`: every one of its rows may depend on any row of `t`, so every address of its
 * whole evaluation when one of the keys was written since the watermark, plus every stored row.
 */
export async function fedByRoot(engine: Engine, x: Derivation, t: string, keys: readonly string[], wm: Watermark, clockNow: () => Promise<Watermark>): Promise<Set<string>> {
  const out = new Set<string>()
  const reads = readsFor(x)
  const whole = reads.opaque.has(t) || reads.limited
  if (whole) for (const k of (await metaRows(engine, x.name, 'all')).keys()) out.add(k)
  const s = sourceFor(engine, t)
  const changed: string[] = []
  for (const part of chunks([...keys], IN_CHUNK)) {
    const rows = (await sql<{ k: string }>`SELECT s.lq_key AS k FROM ${id(s.table)} AS s WHERE s.lq_key IN ${inList(part)} AND s.deleted = 0 AND ${engine.d.since('s', s.rev, s.xid, wm)}`.execute(engine.db)).rows
    for (const r of rows) changed.push(r.k)
  }
  if (changed.length === 0) return out
  const clock = await clockNow() // read only when something is evaluated
  if (whole) {
    for (const k of (await evaluateQuery(engine, x, clock)).keys()) out.add(k)
    return out
  }
  const tuples = changed.map((k) => keyTuple(engine, t, k))
  const queries: LineageQuery[] = []
  for (let site = 0; site < (reads.sites.get(t) ?? 0); site++) {
    const qs = tuples.every((k) => k !== undefined) ? restrictSite(engine, x, t, site, tuples as Constant[][]) : undefined
    if (qs === undefined) {
      for (const k of (await evaluateQuery(engine, x, clock)).keys()) out.add(k)
      return out
    }
    queries.push(...qs)
  }
  if (queries.length > 0) for (const k of (await evaluateQuery(engine, x, clock, queries)).keys()) out.add(k)
  return out
}
