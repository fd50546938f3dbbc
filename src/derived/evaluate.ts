/**
 * Evaluating a comprehension derivation: the whole comprehension, or restricted forms of it
 * (delta evaluation, `delta.ts`), each result row turned into a task with its root lineage,
 * address and the current revisions of every row it read. The queries and the revision reads
 * run in one snapshot (`StoreDialect.snapshotRead`), so a root write that commits in between
 * cannot be recorded as read.
 */
import { createHash } from 'node:crypto'
import { LineageQueryError } from '../errors.js'
import { plan } from '../query/compile.js'
import { AST, Query } from '../query/dsl.js'
import { run } from '../query/run.js'
import { inputLineage } from '../lineage/index.js'
import type { Constant, Expr } from '../query/ast.js'
import { readsOf, restrict, type Reads } from './delta.js'
import type { Derivation, Engine, Task, UpstreamRow } from './engine.js'
import { addressOf, addressValue, keyText, lineageOfAddress, normaliseLineage, type InputRevs } from './keys.js'
import { currentRevisionsOf } from './revisions.js'
import type { Watermark } from './sql/dialect.js'
import type { MetaRow } from './sql/reads.js'
import type { SourceRow } from './types.js'

/** A comprehension with lineage (`inputLineage`: direct entries, nested collections plain), ready to run. */
export type LineageQuery = Query<unknown, never>

const wholeQueries = new WeakMap<Derivation, LineageQuery>()
/** The lineage form of a derivation's whole comprehension (built once: its compiled plan is cached with it). */
export function wholeQuery(x: Derivation): LineageQuery {
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
  return engine.d.snapshotRead(engine.db, (trx) => evaluateQueryIn({ ...engine, db: trx }, x, clock, queries))
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
  const { revs, metas } = await currentRevisionsOf(engine, wanted)
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
export const COMPOSITE_DELTA_KEYS = 100

/** Addresses of a `keys` scan above which the comprehension is evaluated whole. */
export const DELTA_ADDRESSES = 50

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
export function keyTuple(engine: Engine, table: string, key: string): Constant[] | undefined {
  if (!engine.roots.has(table)) return [key]
  const cols = engine.roots.get(table)!.def.key!
  const v = JSON.parse(key) as unknown
  const tuple = cols.length === 1 ? [v] : Array.isArray(v) && v.length === cols.length ? v : undefined
  return tuple !== undefined && tuple.every((c) => typeof c === 'number' || typeof c === 'string' || typeof c === 'boolean') ? (tuple as Constant[]) : undefined
}


/**
 * Restricted forms of the comprehension with generator `site` over table `t` restricted to
 * `keys`: one statement for all of them, or, when that statement would bind too many
 * parameters, halves of the list in turn. `undefined` when even one key is too many.
 */
export function restrictSite(engine: Engine, x: Derivation, t: string, site: number, keys: readonly Constant[][]): LineageQuery[] | undefined {
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
export function restrictedToAddresses(engine: Engine, x: Derivation, addrs: readonly string[]): LineageQuery | undefined {
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

