/**
 * A first fill of a derivation over one table: nothing stored yet and every input row wanted
 * (`isFirstFill`). Instead of a scan, the input is read a page at a time in key order (an
 * index range), each page loaded, computed and stored as one batch, so memory follows the
 * batch size, not the table. A root with one integer key pages through the root table itself
 * in its key order (`fillRootPage`), reading rows and their revisions in one snapshot.
 */
import { plan } from '../../query/compile.js'
import { Q, type Query, type Table } from '../../query/dsl.js'
import { assertNever, BUSY_WAIT_MS, coversAll, type Derivation, type Engine, type ScanFilter, type Task, type Work } from '../engine.js'
import { retryBusy } from '../busy.js'
import { keyText } from '../keys.js'
import { sourceFor } from '../revisions.js'
import { claimDialects, PAGE_CLAIM } from '../sql/claims.js'
import { anyStored, countLive, freePageWithRevs, longKeyRows, metaChangedIn, PAGE_OTHERS, PAGE_REV, PAGE_ROW, pageWindow, pageWithRevs, sourcePage, truthy, type RevisionSource } from '../sql/reads.js'
import { exec } from '../sql/text.js'
import { NO_CAUSES } from './table.js'
import { notStored } from '../claims.js'

type AnyTable = Table<string, unknown, unknown>
type Row = Record<string, unknown>

function sourceOf(engine: Engine, x: Derivation): RevisionSource {
  if (x.source.kind === 'root' || x.source.kind === 'derived') return sourceFor(engine, x.source.table)
  throw new Error(`internal: ${x.name} is not a one-table derivation`)
}

/**
 * Whether a refresh of `x` is a first fill that can stream its input: a derivation over one
 * table (a root or a derived table), nothing stored yet, and every input row wanted (mode
 * `all`, or a watermark never moved). Then `fillPage` replaces the scan, a page at a time.
 */
export async function isFirstFill(engine: Engine, x: Derivation, filter: ScanFilter): Promise<boolean> {
  if (x.source.kind !== 'root' && x.source.kind !== 'derived') return false
  return coversAll(filter) && !(await anyStored(engine.db, x.name))
}

/** The live input rows of a first fill (for progress: the rows it will handle). */
export async function fillCount(engine: Engine, x: Derivation): Promise<number> {
  return countLive(engine.db, sourceOf(engine, x))
}

/**
 * One page of a first fill: up to `limit` live input rows after `cursor` (undefined: from the
 * start), in key order (an index range), as work items, and the cursor of the last one. Memory
 * follows the page, not the table.
 */
export async function fillPage(engine: Engine, x: Derivation, cursor: unknown, limit: number): Promise<{ work: Work[]; cursor: unknown }> {
  const rows = await sourcePage(engine.db, engine.d, sourceOf(engine, x), cursor, limit)
  const work = rows.map((r): Work => ({ addr: r.k, action: 'compute', stored: false, rev: r.rev, causes: NO_CAUSES }))
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

/** Whose page `fillRootPage` reads: this worker (rows other workers hold are skipped) and, unless recomputing, the code version whose stored rows are skipped. */
export interface PageReader {
  readonly owner: string
  /** Rows stored from their current revision with this code version are skipped (another worker computed them); null: none is. */
  readonly codeVersion: string | null
  /**
   * The lease length: given, and when the dialect can (`ClaimDialect.pageClaim`, PostgreSQL),
   * the page statement claims the rows it returns, starting at the table's fill frontier while
   * other workers fill it; otherwise the caller claims them.
   */
  readonly leaseMs?: number
}

/** A page of `fillRootPage`. */
export interface RootPage {
  readonly tasks: Task[]
  /** Rows of the page (free rows read, including rows deleted meanwhile, which have no task). */
  readonly read: number
  /** Where the next page starts (after this key). */
  readonly last: number | undefined
  /** Whether the root has no rows after `last`. */
  readonly end: boolean
  /** Addresses up to `last` another worker held: left to it. */
  readonly held: string[]
  /** Whether another worker held a live claim on the table: the next page skips what others hold (`skip`). */
  readonly others: boolean
  /** When the page statement claimed its rows (`PageReader.leaseMs`): the token, the addresses claimed (those of `tasks`) and the statement's milliseconds. */
  readonly claimed?: { readonly token: number; readonly keys: readonly string[]; readonly ms: number }
  /**
   * The key span to look at again at the end of the fill (a page that claimed its rows): the
   * keys other workers took that the page jumped over (it started at the table's fill
   * frontier, above `after`) and the keys of its window another claim held (instead of
   * `held`, which is then empty): from (undefined: the first key), to (inclusive).
   */
  readonly recheck?: readonly [number | undefined, number]
}

/**
 * One page of a first fill over a root with one integer key (`pagesByRootKey`): up to `limit`
 * root rows with keys after `after`, in key order (an index range of the root table), and
 * their current revisions, read by one statement so the revisions are those of the rows read.
 * Whether another worker held a claim on the table then comes with it (`others`). With `skip`
 * (another worker did at the last page), the statement (`freePageWithRevs`) looks at a window
 * of at most `window` rows (>= `limit`) and skips the rows another worker holds a live claim on
 * and the rows another worker stored from their current revision: workers filling one table at
 * once each read the rows the others have not taken, not every page. The held rows the page
 * passed are returned (`held`): the caller leaves them to their worker (`leftBehind`). Without
 * `skip` (`pageWithRevs`), a row another worker claimed meanwhile is found at the claim, as any
 * claim lost. Keys beyond the safe range are left to `unsafeKeyWork`.
 */
export async function fillRootPage(engine: Engine, x: Derivation, after: number | undefined, limit: number, window: number, reader: PageReader, skip: boolean): Promise<RootPage> {
  const table = (x.source as { table: string }).table
  const root = engine.roots.get(table)!
  const col = root.def.key![0]!
  const lower = after === undefined ? -MAX_KEY : after + 1
  let found: Record<string, unknown>[]
  let decode: PageQuery['decode']
  let w: ReturnType<typeof pageWindow> | undefined
  const pageClaim = claimDialects[engine.d.name].pageClaim !== undefined && reader.leaseMs !== undefined
  if (pageClaim) return claimedRootPage(engine, x, root, after, lower, limit, window, reader)
  if (skip) {
    const page = pageQuery(engine, root, x.name, Math.trunc(limit), Math.max(Math.trunc(window), Math.trunc(limit)), 'skip')
    // One statement: the rows and their revisions in one snapshot, with the claims and stored rows of that snapshot.
    const all = await exec(engine.db, page.statement.sql, page.statement.params(withLower(page, lower), reader.owner, reader.codeVersion, 0))
    w = pageWindow(all[0])
    found = all.filter((r) => r[PAGE_ROW] !== null && r[PAGE_ROW] !== undefined)
    decode = page.decode
  } else {
    const page = pageQuery(engine, root, x.name, Math.trunc(limit), 0, 'plain')
    found = await exec(engine.db, page.statement.sql, page.statement.params(withLower(page, lower), reader.owner, reader.codeVersion, 0))
    decode = page.decode
  }
  const rows = decode(found) as Row[]
  const tasks: Task[] = []
  for (let i = 0; i < rows.length; i++) {
    const rev = found[i]![PAGE_REV]
    if (rev === null || rev === undefined) continue // no live revision row: deleted meanwhile, seen by the next scan
    const key = rows[i]![col]
    tasks.push(missingRootTask(table, key, keyText(key), rows[i]!, Number(rev)))
  }
  const full = rows.length >= limit
  if (w === undefined) {
    const last = rows.length === 0 ? after : (rows[rows.length - 1]![col] as number)
    return { tasks, read: rows.length, last, end: !full, held: [], others: found.length > 0 && truthy(found[0]![PAGE_OTHERS]) }
  }
  // A full page ends at its last row; otherwise the whole window was looked at.
  const last = full ? (rows[rows.length - 1]![col] as number) : w.scanned === 0 ? after : Number(w.last)
  const held = w.held.map(Number).filter((k) => last !== undefined && k <= last).map((k) => keyText(k))
  return { tasks, read: rows.length, last, end: !full && w.scanned < Math.max(Math.trunc(window), Math.trunc(limit)), held, others: w.others }
}

/**
 * `fillRootPage` where the page statement claims its rows (`ClaimDialect.pageClaim`): tasks for
 * the rows it claimed; the rows of its page it could not claim (another claim row was there)
 * and those of its window another worker held are left to their workers (`held`), and the keys
 * it jumped over to start at the fill frontier are returned as one span (`recheck`): one look
 * at the span at the end of the fill, rather than a look at each held key.
 */
async function claimedRootPage(engine: Engine, x: Derivation, root: AnyTable, after: number | undefined, lower: number, limit: number, window: number, reader: PageReader): Promise<RootPage> {
  const table = root.name
  const col = root.def.key![0]!
  const size = Math.max(Math.trunc(window), Math.trunc(limit))
  const page = pageQuery(engine, root, x.name, Math.trunc(limit), size, 'claim')
  const setup = page.setup
  // The first page of a fill creates the frontier row if there is none (every page statement locks it).
  if (after === undefined && setup !== undefined) await exec(engine.db, setup.sql, [...setup.params])
  const t0 = performance.now()
  // One statement, rolled back whole when PostgreSQL picks it as a deadlock victim: run again.
  const params = page.statement.params(withLower(page, lower), reader.owner, reader.codeVersion, reader.leaseMs!)
  const all = await retryBusy(engine.d, `refresh of \`${x.name}\` (a first-fill page of \`${table}\`)`, engine.busyMs ?? BUSY_WAIT_MS, () => exec(engine.db, page.statement.sql, params))
  const ms = performance.now() - t0
  const w = pageWindow(all[0])
  const start = all[0] === undefined ? lower : Number(all[0][PAGE_CLAIM.start])
  const token = all[0]?.[PAGE_CLAIM.token]
  const found = all.filter((r) => r[PAGE_CLAIM.row] !== null && r[PAGE_CLAIM.row] !== undefined)
  const rows = page.decode(found) as Row[]
  const tasks: Task[] = []
  const keys: string[] = []
  const held: string[] = []
  for (let i = 0; i < rows.length; i++) {
    const rev = found[i]![PAGE_CLAIM.rev]
    if (rev === null || rev === undefined) continue // no live revision row: deleted meanwhile, seen by the next scan
    const row = rows[i]!
    const key = row[col]
    const addr = keyText(key)
    // Another claim row was there (an expired one, or one of another call of this process): left to the claim of the rows left behind.
    if (!truthy(found[i]![PAGE_CLAIM.got])) {
      held.push(addr)
      continue
    }
    keys.push(addr)
    tasks.push(missingRootTask(table, key, addr, row, Number(rev)))
  }
  const full = rows.length >= limit
  const last = full ? (rows[rows.length - 1]![col] as number) : w.scanned === 0 ? (start > lower ? start - 1 : after) : Number(w.last)
  for (const k of w.held) if (last !== undefined && Number(k) <= last) held.push(keyText(Number(k)))
  const claimed = token === null || token === undefined ? undefined : { token: Number(token), keys, ms }
  // The span: the keys jumped over, and the held ones.
  let lo: number | undefined = start > lower ? (after === undefined ? undefined : lower) : Number.POSITIVE_INFINITY
  let hi = start > lower ? start - 1 : Number.NEGATIVE_INFINITY
  for (const k of held) {
    const n = Number(k)
    if (lo !== undefined) lo = Math.min(lo, n)
    hi = Math.max(hi, n)
  }
  const recheck = hi === Number.NEGATIVE_INFINITY ? undefined : ([lo, hi] as const)
  return { tasks, read: rows.length, last, end: !full && w.scanned < size, held: [], others: w.others, ...(claimed === undefined ? {} : { claimed }), ...(recheck === undefined ? {} : { recheck }) }
}

/** The task of a first-fill page's root row (`addr`: its key's text): missing, its lineage and input that row at revision `rev`. */
function missingRootTask(table: string, key: unknown, addr: string, row: Row, rev: number): Task {
  return { addr, input: row, lineage: [{ table, key }], inputs: [[table, addr, rev]], maxRev: rev, upstream: NONE, edges: NONE, missing: true }
}

/** The compiled page parameters with the lower key bound in its slot. */
function withLower(page: PageQuery, lower: number): unknown[] {
  const params = [...page.parameters]
  params[page.slot] = lower
  return params
}

/** The empty `upstream` and `edges` of a root's tasks (shared, never written). */
const NONE: readonly never[] = Object.freeze([])

/** A first-fill page statement, compiled once per root, derived table, dialect, page and window size: its lower key bound is parameter `slot` of the compiled rows query. */
interface PageQuery {
  readonly statement: { readonly sql: string; params(rows: readonly unknown[], owner: string, codeVersion: string | null, leaseMs: number): unknown[] }
  readonly parameters: readonly unknown[]
  readonly slot: number
  readonly decode: (rows: readonly Record<string, unknown>[]) => unknown[]
  /** A statement to run before a fill's first page (`PageClaimStatement.setup`). */
  readonly setup?: { readonly sql: string; readonly params: readonly unknown[] }
}

const pageQueries = new WeakMap<AnyTable, Map<string, PageQuery>>()
/** A placeholder for the page's lower bound, found among the compiled parameters (checked unique). */
const PAGE_PLACEHOLDER = -4_000_000_000_000_001

/**
 * The page statement of `fillRootPage`: the plain page (`pageWithRevs`, `window` unused), the
 * one that skips what others hold (`freePageWithRevs`), or the one that also claims its rows
 * (`ClaimDialect.pageClaim`).
 */
function pageQuery(engine: Engine, root: AnyTable, derived: string, limit: number, window: number, kind: 'plain' | 'skip' | 'claim'): PageQuery {
  let perRoot = pageQueries.get(root)
  if (perRoot === undefined) pageQueries.set(root, (perRoot = new Map()))
  const cacheKey = `${engine.d.name}:${kind}:${limit}:${kind === 'plain' ? 0 : window}:${derived}`
  const hit = perRoot.get(cacheKey)
  if (hit !== undefined) return hit
  const col = root.def.key![0]!
  const rows = Q.for(root as Table<string, any, unknown>, (r: any) => Q.where(Q.and(Q.ge(r[col], PAGE_PLACEHOLDER), Q.le(r[col], MAX_KEY)), Q.yield(r)))
  // The plain page is the rows in key order, limited; for the others, the statement orders the
  // rows by key and takes the window (the query's own order sorts nulls first, which no index
  // of the key gives in order, and the window must stop where the index range does).
  const query = (kind === 'plain' ? rows.orderBy((r: any) => r[col]).limit(limit) : rows) as Query<Row, never>
  const p = plan(query, engine.d.name, { bindConstants: true })
  const st = p.statements[0]!
  const slot = st.parameters.indexOf(PAGE_PLACEHOLDER)
  if (p.statements.length !== 1 || slot < 0 || st.parameters.lastIndexOf(PAGE_PLACEHOLDER) !== slot) throw new Error(`internal: the first-fill page query of \`${root.name}\` did not compile to one statement with one lower bound`)
  let statement: PageQuery['statement']
  let setup: PageQuery['setup']
  switch (kind) {
    case 'plain':
      statement = pageWithRevs(engine.d, root.def, derived, st.sql, st.parameters.length)
      break
    case 'skip':
      statement = freePageWithRevs(engine.d, root.def, derived, st.sql, st.parameters.length, window, limit)
      break
    case 'claim': {
      const c = claimDialects[engine.d.name].pageClaim!({ root: root.def, rows: st.sql, rowsParams: st.parameters.length, lowerParam: slot + 1, derived, window, limit, keyJson: (ref, k) => engine.d.keyJson(ref, k) })
      statement = c
      setup = c.setup
      break
    }
    default:
      return assertNever(kind, 'page kind')
  }
  const built: PageQuery = { statement, parameters: st.parameters, slot, decode: p.decode, ...(setup === undefined ? {} : { setup }) }
  perRoot.set(cacheKey, built)
  return built
}

/** Live revision rows of a root whose key text may be an integer beyond the safe range (16 digits or more). */
export async function unsafeKeyWork(engine: Engine, x: Derivation): Promise<Work[]> {
  const rows = await longKeyRows(engine.db, sourceOf(engine, x))
  return rows.map((r): Work => ({ addr: r.k, action: 'compute', stored: false, rev: r.rev, causes: NO_CAUSES }))
}


/**
 * The revisions a first fill's own writes committed at (`record`), from the clock read before
 * it found the table empty (`since`): where the dialect hands revisions out in commit order
 * (`StoreDialect.oneWriter`, SQLite), a metadata row with an `lq_changed_rev` above
 * `since` that is none of them was written by another writer (another worker process, or a
 * call of this process that is not this fill). Every write stamps its rows with a revision of
 * its own (`nextRev`), and the fill's pages have disjoint keys, so while no such row exists, no
 * row of a page was stored by anyone: `unstoredOf` needs no look at the page's rows.
 */
export class FillWrites {
  readonly #ours: number[] = []
  constructor(readonly since: number) {}

  /** Revisions a write of this fill committed at. */
  record(revs: readonly number[]): void {
    for (const r of revs) this.#ours.push(r)
  }

  /** The revision spans between `since` and this fill's revisions, and above the last (`[after, before)`, open; null: unbounded). */
  spans(): [number, number | null][] {
    const ours = [...new Set(this.#ours)].sort((a, b) => a - b)
    const out: [number, number | null][] = []
    let after = this.since
    for (const r of ours) {
      if (r <= after) continue
      if (r > after + 1) out.push([after, r])
      after = r
    }
    out.push([after, null])
    return out
  }
}

/**
 * The tasks of a first fill's claimed page whose row nobody stored (`notStored`): all of them
 * when the metadata index shows no row written since the fill began but by the fill itself
 * (`FillWrites`; one seek per span of other revisions), else those `notStored` finds. Run after
 * the claim committed: a write of the page's rows by another writer after it needs a claim on
 * them, which this one holds.
 */
export async function unstoredOf(engine: Engine, x: Derivation, tasks: readonly Task[], fill: FillWrites | undefined): Promise<readonly Task[]> {
  if (tasks.length === 0) return tasks
  if (fill !== undefined && engine.d.oneWriter && !(await metaChangedIn(engine.db, engine.d, x.name, fill.spans()))) return tasks
  return notStored(engine, x, tasks)
}
