/**
 * Refresh: the orchestration of one derived table's refresh, phase by phase: read the clock
 * and the watermark, scan (`scan/`) or page a first fill (`scan/fill.ts`), delete what lost its
 * input (`delete.ts`), then per batch: load inputs (`inputs.ts`), claim (`claims.ts`), compute
 * (`compute.ts`) and write (`write.ts`); finally move the watermark. `store.refresh` runs it per
 * derived table in dependency order; `get` (`demand.ts`) runs its batches for one row.
 *
 * Workers: a batch is claimed in the store's claim table before it is computed (a lease, see
 * `leases.ts`); rows another worker holds, and rows whose root rows are still settling (watch's
 * debounce), are left behind, and the watermark never passes rows left behind: a refresh waits
 * for the other workers and runs the table again, a watch wave leaves them to a later wave.
 */
import type { Kysely } from 'kysely'
import { retryBusy } from './busy.js'
import { compute } from './compute.js'
import { deleteRows } from './delete.js'
import { BUSY_WAIT_MS, chunks, type Derivation, type Engine, type Result, type ScanFilter, type Task } from './engine.js'
import { inputLoader, loadTasks } from './inputs.js'
import { notStored, sameComputation, type Claim } from './claims.js'
import { keyText, lineageOfAddress } from './keys.js'
import { Aborted, handled, leftOf, sleep, throwIfAborted, untilAborted, yieldToLoop, type Op } from './ops.js'
import { FillWrites, fillCount, fillPage, fillRootPage, isFirstFill, pagesByRootKey, unsafeKeyWork, unstoredOf } from './scan/fill.js'
import { readWatermark, unstoredAmong, unstoredInRange } from './sql/reads.js'
import { scan, type ScanStats } from './scan/index.js'
import type { Watermark } from './sql/dialect.js'
import { metaTable } from './sql/dialect.js'
import { writeWatermark } from './sql/writes.js'
import type { RefreshProgress, SourceRow, TableReport } from './types.js'
import { lostKeys, splitUnkeyable } from './unkeyable.js'
import type { Lease } from './leases.js'
import { lateStored, shapeOf, writeResults, type Fence } from './write.js'

/** A first fill's page statement looks at up to this many pages of rows to find a page of rows no other worker holds. */
export const PAGE_WINDOWS = 8

/** Rows per function batch and write transaction, by default. */
export const BATCH = 500
/** The same, for a first fill (most of the input is new), by default. */
export const BULK_BATCH = 5000

/** Rows written by one table's refresh before its tables' statistics are refreshed (PostgreSQL). */
export const ANALYZE_MIN = 10_000

/** Where a refresh sends its progress, and the table it is at. */
export interface ProgressSink {
  readonly report: (p: RefreshProgress) => void
  readonly tableIndex: number
  readonly tableCount: number
  readonly started: number
}

type Applied = { wm: Watermark; applied: string | null }

/**
 * The rows a pass left behind (their keys: held by other workers, or refused by its fence),
 * once the other workers let them go, and the first pass's clock and watermark: the pass looks
 * at those rows only (stored meanwhile, or still to compute), then moves the watermark to the
 * first pass's clock, as the first pass would have, not the whole table again. Not further: the
 * first pass may have stored a row late, computed from inputs another worker's refresh
 * processed the change of before the row was stored (a join row whose input row no longer
 * joins is not in the current input: no refresh deletes it); only a scan since the first
 * pass's clock finds it. The pass evaluates the rows as they are now (a clock of its own).
 */
interface HeldRows {
  readonly keys: readonly string[]
  readonly clock: Watermark
  readonly wm: Applied
}

export async function refreshTable(engine: Engine, x: Derivation, full: boolean, batch: number | undefined, report: Record<string, TableReport>, op: Op, progress?: ProgressSink, held?: HeldRows): Promise<void> {
  // What the scan evaluates at (a comprehension's input revisions are clamped to it), and what
  // the watermark moves to at the end: the same clock, but a pass over rows left behind reads
  // its own and moves the watermark to the first pass's (see `HeldRows`).
  const clock = await engine.d.readClock(engine.db)
  const upTo = held?.clock ?? clock
  const wm = held?.wm ?? (await readWatermark(engine.db, x.name))
  // Results refused earlier whose rows another worker held (a watch wave leaves them to this
  // one): stored now unless stored meanwhile, before the scan looks at those rows.
  if (held === undefined) await storeKeptRefused(engine, x, report[x.name]!, op)
  const filter: ScanFilter = held !== undefined ? { mode: 'keys', keys: held.keys } : full ? { mode: 'all', force: true } : { mode: 'since', wm: wm.wm, codeChanged: wm.applied !== x.codeVersion }
  // A first fill of a derivation over one table streams its input a page at a time.
  if (held === undefined && (await isFirstFill(engine, x, filter))) return fillTable(engine, x, clock, wm, batch, report, op, progress)
  const stats: ScanStats = { covered: false, live: 0 }
  const work = await scan(engine, x, filter, clock, { stats, noCauses: true })
  const items = [...work.values()]
  const all = items.filter((w) => w.action === 'compute')
  // Keys JavaScript cannot carry (integers beyond 2^53): failed rows, never silently skipped.
  const { keyable, failed: unkeyable } = splitUnkeyable(x, all)
  // Debounce (watch): rows whose root rows are still settling wait for a later wave.
  const todo = op.settling === undefined ? keyable : keyable.filter((w) => !deferred(engine, x, lineageOfAddress(w.addr, x.roots), op))
  const toDelete = items.filter((w) => w.action === 'delete').map((w) => w.addr)
  const mine = report[x.name]!
  const total = all.length + toDelete.length
  const before = handled(mine)
  const tell = (phase: RefreshProgress['phase']) =>
    progress?.report({ table: x.name, tableIndex: progress.tableIndex, tableCount: progress.tableCount, phase, done: phase === 'done' ? total : Math.min(handled(mine) - before, total), total, counts: { ...mine }, elapsedMs: performance.now() - progress.started })
  tell('scan')
  await deleteRows(engine, x, toDelete, report)
  await writeResults(engine, x, unkeyable, report[x.name]!)
  // A first fill (the scan read every input row, most need computing, and there is more
  // than a batch of them): read the input table once rather than key by key.
  const bulk = unkeyable.length === 0 && stats.covered && todo.length >= 2 * (batch ?? BATCH) && todo.length * 4 >= stats.live
  const load = await inputLoader(engine, x, bulk)
  // A first fill writes bigger batches (fewer statements and transactions), unless told otherwise.
  const parts = chunks(todo, batch ?? (bulk ? BULK_BATCH : BATCH))
  let i = 0
  await runBatches(engine, x, report[x.name]!, op, async () => {
    const part = parts[i++]
    if (part === undefined) return undefined
    throwIfAborted(op)
    const tasks = await load(part)
    await writeResults(engine, x, await lostKeys(engine, x, part, tasks), report[x.name]!)
    // PostgreSQL: lq_edge is shared by every comprehension derivation, and its statistics may
    // not know this table's name yet (an earlier ANALYZE saw other tables' edges only): then
    // each batch's edge statements are planned as a scan of all this table's edges so far.
    // Fresh statistics after the first batch of a big fill keep them key lookups.
    const first = i === 1 && x.source.kind === 'query' && parts.length > 2
    return { tasks, stored: async () => (tell('batch'), first ? engine.d.analyze(engine.db, 'lq_edge') : undefined) }
  })
  // The rows left behind are looked at again (by key), and the watermark moves to this pass's
  // clock (the first pass's), not to one read later (see `HeldRows`).
  if (await leftBehind(engine, x, op, report[x.name]!, (again) => refreshTable(engine, x, full, batch, report, op, progress, { keys: [...again], clock: upTo, wm }))) return
  const late = await finishTable(engine, x, upTo, wm, report[x.name]!, () => tell('done'))
  // Rows another worker stored late meanwhile (see `lateStored`): looked at by key, and the
  // watermark moves at the end of that pass.
  if (late.length > 0) await refreshTable(engine, x, full, batch, report, op, progress, { keys: late, clock: upTo, wm })
}

/** Debounce: whether a row of `x` with this root lineage waits (one of its root rows is still settling); counted. */
function deferred(engine: Engine, x: Derivation, lineage: readonly SourceRow[], op: Op): boolean {
  const settling = op.settling
  if (settling === undefined || !lineage.some((e) => engine.roots.has(e.table) && settling(e.table, keyText(e.key)))) return false
  leftOf(op, x.name).deferred++
  return true
}

/**
 * The end of a table's pass when rows were left behind: held by other workers, or deferred.
 * The watermark must not pass them (a scan since it would not find them again). A refresh (or
 * get) waits until the other workers released them (or their leases expired), stores the
 * results its fence refused on those rows unless they were stored meanwhile (`storeRefused`),
 * and runs the table again over them (`again`); a watch wave leaves them to a later wave.
 * Whether the pass ends here (true: the caller does not move the watermark). `report`: where
 * the stored results are counted.
 */
export async function leftBehind(engine: Engine, x: Derivation, op: Op, report: TableReport, again: (held: ReadonlySet<string>) => Promise<void>): Promise<boolean> {
  const l = op.leftBehind.get(x.name)
  if (l === undefined || (l.held.size === 0 && l.deferred === 0)) return false
  if (!op.waitForOthers || l.deferred > 0) return true
  // Polled (a query of the held keys' live claims, `othersPause`): the other workers are
  // releasing batches as they go, and every pause is time this worker idles. Only the claims
  // held when the wait began (`lastToken`): a row another worker keeps taking again (its input
  // keeps changing) was waited for as long as it did; `again` looks at it as it is now (stored:
  // nothing to do; held again: left behind again, and waited for again).
  const upTo = await op.keeper.lastToken()
  for (const t0 = performance.now(); await op.keeper.othersHold(x.name, l.held, upTo); ) {
    throwIfAborted(op)
    await untilAborted(sleep(othersPause(performance.now() - t0)), op)
  }
  op.leftBehind.delete(x.name)
  // This call's results the fence refused while another worker held their rows: stored now if
  // nobody stored them meanwhile (that worker died, or lost its lease in turn), not computed
  // again (two workers whose function blocked past the lease then took a row over from each
  // other for ever). `again` then finds them stored, unless their inputs changed since.
  await storeKeptRefused(engine, x, report, op)
  await again(l.held)
  return true
}

/** The longest pause between two looks at rows other workers hold (a refresh waiting for them). */
const OTHERS_POLL_MS = 100

/**
 * The pause before the next look at rows other workers hold, `waitedMs` into the wait: an
 * eighth of the wait so far, from 5 ms up to OTHERS_POLL_MS. At the end of a first fill the
 * other workers' last batches are stored within a batch's time, and a pause doubling from 10 ms
 * left a worker idle up to 80 ms after they were (4 processes, 10 ms function: 150-300 ms with
 * no call at the end of each); a long wait (a dead worker's leases) still looks 10 times a second.
 */
export const othersPause = (waitedMs: number): number => Math.min(OTHERS_POLL_MS, Math.max(5, waitedMs / 8))

/**
 * Claims in topological order: while another worker computes rows of a derived table `x`
 * reads, rows of `x` would be computed from inputs about to change; wait for them (bounded by
 * their leases: a crashed worker's claims expire).
 */
export async function untilUpstreamReleased(engine: Engine, x: Derivation, op: Op): Promise<void> {
  const ups = x.reads.filter((r) => engine.derivations.has(r))
  if (ups.length === 0) return
  for (let pause = 20; (await op.keeper.othersOn(ups)) > 0; pause = Math.min(pause * 2, 500)) {
    throwIfAborted(op)
    await untilAborted(sleep(pause), op)
  }
}

/**
 * A first fill of a derivation over one table (see `isFirstFill`): pages of the input's
 * revision rows in key order (`fillPage`), each loaded, computed and stored as one batch, so
 * memory follows the batch size, not the table (default 5000 rows).
 */
async function fillTable(engine: Engine, x: Derivation, clock: Watermark, wm: Applied, batch: number | undefined, report: Record<string, TableReport>, op: Op, progress?: ProgressSink): Promise<void> {
  const mine = report[x.name]!
  const total = progress === undefined ? 0 : await fillCount(engine, x)
  const before = handled(mine)
  const tell = (phase: RefreshProgress['phase']) =>
    progress?.report({ table: x.name, tableIndex: progress.tableIndex, tableCount: progress.tableCount, phase, done: phase === 'done' ? Math.max(total, handled(mine) - before) : handled(mine) - before, total: Math.max(total, handled(mine) - before), counts: { ...mine }, elapsedMs: performance.now() - progress.started })
  tell('scan')
  const size = batch ?? BULK_BATCH
  if (pagesByRootKey(engine, x)) {
    // One integer key: pages of the root table in its key order, with their revisions.
    // What the fill writes itself, from the clock read before it found the table empty: while
    // nobody else wrote rows since, a page claimed needs no look at its stored rows.
    const fill = new FillWrites(clock.rev)
    await writeResults(engine, x, splitUnkeyable(x, await unsafeKeyWork(engine, x)).failed, mine, undefined, (revs) => fill.record(revs))
    let after: number | undefined
    let end = false
    // The rows a page statement may look at: the page size, doubled (up to PAGE_WINDOWS times)
    // while pages come back short because other workers hold or stored the rows ahead.
    let window = size
    // Whether the last page found another worker's claims on the table: then this page skips them.
    let skip = false
    // On PostgreSQL the page statement claims its rows too, from the table's fill frontier while
    // other workers fill it (`ClaimDialect.pageClaim`); the key ranges it jumped over (taken by
    // other workers) and the keys other claims held are looked at again at the end, as one span.
    const reader = { owner: op.keeper.owner, codeVersion: op.recompute ? null : x.codeVersion, leaseMs: op.keeper.leaseMs }
    let recheck: [number | undefined, number] | undefined
    // The keys this fill's last pages claimed (their batches are stored, or their refused keys
    // left behind, before `runBatches` returns; at most two batches are between claim and store,
    // so those of earlier pages were stored before the span is read; the last pages only, so
    // memory follows the batch size), and the read of the span's unstored rows begun when the
    // pages ended (`recheckSpan`), while this worker's last batches still compute.
    const adopted: (readonly string[])[] = []
    let early: Promise<string[]> | undefined
    const readSpan = (span: readonly [number | undefined, number]) => unstoredInRange(engine.db, engine.d, rootOf(engine, x), x.name, span[0], span[1], x.codeVersion)
    await runBatches(engine, x, mine, op, async () => {
      for (;;) {
        if (end) return undefined
        throwIfAborted(op)
        // Rows other workers hold or stored are skipped in the read (full: true recomputes stored ones).
        const page = await fillRootPage(engine, x, after, size, window, reader, skip)
        const lease = page.claimed === undefined ? undefined : op.keeper.adopt(x.name, page.claimed.token, page.claimed.keys, page.claimed.ms)
        if (page.claimed !== undefined && page.claimed.keys.length > 0 && adopted.push(page.claimed.keys) > ADOPTED_PAGES) adopted.shift()
        after = page.last
        end = page.end
        skip = page.others
        const r = page.recheck
        if (r !== undefined) recheck = recheck === undefined ? [...r] : [recheck[0] === undefined || r[0] === undefined ? undefined : Math.min(recheck[0], r[0]), Math.max(recheck[1], r[1])]
        if (page.held.length > 0) {
          const held = leftOf(op, x.name).held
          for (const k of page.held) held.add(k)
        }
        if (end && recheck !== undefined && early === undefined) {
          early = readSpan(recheck)
          // Awaited after the batches; a failed batch throws first (no unhandled rejection).
          early.catch(() => undefined)
        }
        window = page.read < size && !page.end ? Math.min(window * 2, size * PAGE_WINDOWS) : size
        if (page.read === 0) continue
        return { tasks: op.settling === undefined ? page.tasks : page.tasks.filter((t) => !deferred(engine, x, t.lineage, op)), lease, range: lease === undefined, fill, stored: async () => tell('batch') }
      }
    })
    if (recheck !== undefined) await recheckSpan(engine, x, early ?? readSpan(recheck), new Set(adopted.flat()), op)
    // Every row it left is known by key (held by others in its pages or its claims): the pass
    // goes on over those rows only, not the whole table again.
    if (await leftBehind(engine, x, op, mine, (held) => refreshTable(engine, x, false, batch, report, op, progress, { keys: [...held], clock, wm }))) return
    // (A derivation over one table: no rows stored late, see `moveWatermark`.)
    await finishTable(engine, x, clock, wm, mine, () => tell('done'))
    return
  }
  let cursor: unknown
  let end = false
  await runBatches(engine, x, mine, op, async () => {
    if (end) return undefined
    throwIfAborted(op)
    const page = await fillPage(engine, x, cursor, size)
    cursor = page.cursor
    end = page.work.length < size
    if (page.work.length === 0) return undefined
    const { keyable, failed } = splitUnkeyable(x, page.work)
    await writeResults(engine, x, failed, mine)
    const loaded = await loadTasks(engine, x, keyable)
    await writeResults(engine, x, await lostKeys(engine, x, keyable, loaded), mine)
    return { tasks: op.settling === undefined ? loaded : loaded.filter((t) => !deferred(engine, x, t.lineage, op)), stored: async () => tell('batch') }
  })
  if (await leftBehind(engine, x, op, mine, () => refreshTable(engine, x, false, batch, report, op, progress))) return
  await finishTable(engine, x, clock, wm, mine, () => tell('done'))
}

/** How many of a fill's last pages `recheckSpan` knows the claimed keys of (the batches still in flight when the span is read, and one more). */
const ADOPTED_PAGES = 4

/**
 * The end of a first fill that jumped over keys other workers took (to start at the fill
 * frontier), or passed keys other claims held. `unstored`: the span's rows not stored from their
 * current revision, read when this worker's pages ended (begun then, it runs while this worker's
 * last batches compute: read after them and after the wait for the others, it was the last
 * 50-200 ms of every worker's fill, four workers reading the whole table at once). Of those, the
 * rows this fill claimed itself (`adopted`, those of its last pages: stored by now, or left behind by their
 * fence; a key of its own missing there only costs the look by key below) are not looked at
 * again; while other workers hold live claims on the others that they took before
 * the wait began (their batches in flight: a claim taken later is another computation, such as
 * a worker computing a row again as its input keeps changing), they are waited for (one look at
 * those keys' claims, `othersHold`), then the ones still not stored are left behind
 * (`leftBehind` computes them, or waits for them again): a look by key at the rows that were
 * unstored, not a second read of the span. A row stored when the span was read stays stored
 * from a revision up to this pass's clock; later writes are the next pass's.
 */
async function recheckSpan(engine: Engine, x: Derivation, unstored: Promise<string[]>, adopted: ReadonlySet<string>, op: Op): Promise<void> {
  let keys = (await unstored).filter((k) => !adopted.has(k))
  if (keys.length === 0) return
  if (op.waitForOthers) {
    const upTo = await op.keeper.lastToken()
    const set = new Set(keys)
    for (const t0 = performance.now(); await op.keeper.othersHold(x.name, set, upTo); ) {
      throwIfAborted(op)
      await untilAborted(sleep(othersPause(performance.now() - t0)), op)
    }
    keys = await unstoredAmong(engine.db, engine.d, rootOf(engine, x), x.name, keys, x.codeVersion)
  }
  const held = leftOf(op, x.name).held
  for (const k of keys) held.add(k)
}

/** The root table a derivation over one table reads. */
const rootOf = (engine: Engine, x: Derivation) => engine.roots.get((x.source as { table: string }).table)!.def

/**
 * The end of a table's refresh: statistics after many rows, the watermark, then the last
 * progress event (`done`, unless the watermark stays for rows stored late). Returns the rows
 * stored late that keep the watermark where it is (`moveWatermark`).
 */
async function finishTable(engine: Engine, x: Derivation, clock: Watermark, wm: Applied, r: TableReport, done: () => void): Promise<readonly string[]> {
  // After many new rows, refresh the planner's statistics (PostgreSQL), so the next scans of
  // this table probe its indexes rather than read it whole.
  if (r.computed + r.unchanged + r.failed + r.blocked >= ANALYZE_MIN) {
    await engine.d.analyze(engine.db, metaTable(x.name))
    await engine.d.analyze(engine.db, x.name)
    if (x.source.kind === 'query') await engine.d.analyze(engine.db, 'lq_edge')
  }
  const late = await retryBusy(engine.d, `refresh of \`${x.name}\` (its watermark)`, engine.busyMs ?? BUSY_WAIT_MS, () => moveWatermark(engine, x, clock, wm))
  // The table's last progress event, once its watermark moved: with rows stored late, the pass
  // by key over them sends it (one 'done' per table, as OpenLineage's COMPLETE follows it).
  if (late.length === 0) done()
  return late
}

/**
 * Move `x`'s watermark to `clock` (the clock its scan read at). The applied code version becomes
 * this one unless another caller wrote rows under another code version meanwhile (it cleared or
 * changed the applied version): then it stays cleared.
 *
 * A comprehension's watermark does not move past rows another worker stored late (`lateStored`:
 * evaluated before `clock`, stored after the scan, from inputs changed since, up to `clock`):
 * their addresses are returned instead, for the caller to look at by key first. On SQLite the
 * look and the move are one write transaction, so a late row is either refused by its write (it
 * read the moved watermark) or seen here. On PostgreSQL no lock is held across a round trip (a
 * worker stopped, SIGSTOP, while holding one would hold up every other worker's move): the look
 * reads autocommit statements after a snapshot `look`, then the move is one statement
 * (`moveWatermarkUnlessStored`) that locks the watermark row and then checks that no rows
 * evaluated before `clock` were stored by writes not visible in `look`; when some were, it does
 * not move and the look runs again (at most `MOVE_LOOKS` times; then the watermark stays where it
 * is, which is never wrong: the next scan starts earlier). A write that read the watermark
 * before the move and commits after it fails its commit-time check and runs again
 * (`watermarkAtCommit` in `writeResults`), refusing what is late.
 */
async function moveWatermark(engine: Engine, x: Derivation, clock: Watermark, wm: Applied): Promise<readonly string[]> {
  if (!shapeOf(x).comprehension) {
    await writeWatermark(engine.db, x.name, clock, wm.applied, x.codeVersion)
    return []
  }
  const { d, db } = engine
  if (d.oneWriter) {
    return db.transaction().execute(async (trx) => {
      await d.beginWrite(trx)
      const late = await lateStored(engine, x, clock, trx)
      if (late.length === 0) await writeWatermark(trx, x.name, clock, wm.applied, x.codeVersion)
      return late
    })
  }
  const move = d.moveWatermarkUnlessStored
  if (move === undefined) throw new Error(`internal: the ${d.name} store dialect has writers that do not take turns but no moveWatermarkUnlessStored`)
  for (let i = 0; i < MOVE_LOOKS; i++) {
    const look = (await d.readClock(db)).xmin!
    const late = await lateStored(engine, x, clock, db)
    if (late.length > 0) return late
    if (await move(db, { table: x.name, meta: metaTable(x.name), clock, look, applied: wm.applied, codeVersion: x.codeVersion })) return []
  }
  return []
}

/** Looks at rows stored late before a comprehension's watermark move gives up moving (PostgreSQL, see `moveWatermark`). */
const MOVE_LOOKS = 20

/** A batch for `runBatches`: its tasks, and what to do once it is stored (progress), in batch order. */
export interface Batch {
  readonly tasks: readonly Task[]
  /** The lease the batch's rows were claimed under already (a first fill's page that claimed them); otherwise `prepareBatch` claims them. */
  readonly lease?: Lease | undefined
  /** The tasks are a first fill's page of a root with one integer key: `prepareBatch` claims them as one range (`LeaseKeeper.claimRange`). */
  readonly range?: boolean
  /** The tasks are a first fill's page: what the fill wrote itself (`FillWrites`), recorded as its batches are stored. */
  readonly fill?: FillWrites
  readonly stored?: () => Promise<void>
}

/**
 * Run batches one after the other as a pipeline, so that neither the database round trips nor
 * the end of a batch leave the function calls idle: while batch i computes, batch i-1 is
 * stored and batch i+1 is read and claimed (`next`); with a concurrency limit
 * (`RefreshOptions.concurrency`), batch i+1's calls queue behind batch i's, so the limit's slots
 * stay busy across batch boundaries (without one, a batch's calls all start at once and the
 * next batch starts computing when the previous one has), and batch i+1 is read and claimed
 * only once batch i's queued calls are about to run out (`readAheadQueue`). At most two batches are between
 * claim and store. Batches are stored in order, each in its own transaction, fenced as
 * `runBatch` does. `next` is called from one place at a time; it returns undefined at the end,
 * and throws `Aborted` (`throwIfAborted`) when the call stops before a batch that exists.
 * When a batch fails, the batches after it are not stored (their leases are released, and
 * in-process waiters run their tasks); an abort or drain (`Aborted`) stops reading batches,
 * and the batches already claimed are finished and stored (a drain) or stored as far as they
 * got (an abort, see `compute`). The first error is thrown once every batch has settled.
 */
export async function runBatches(engine: Engine, x: Derivation, report: TableReport, op: Op, next: () => Promise<Batch | undefined>): Promise<void> {
  const overlap = op.limit !== undefined
  const state: { failure?: { e: unknown } } = {}
  const fail = (e: unknown): void => {
    // The first error wins, but a real failure wins over a stop (Aborted).
    if (state.failure === undefined || (state.failure.e instanceof Aborted && !(e instanceof Aborted))) state.failure = { e }
  }
  // A batch after a failed one (not a stop) is not stored.
  const failed = (): { e: unknown } | undefined => (state.failure !== undefined && !(state.failure.e instanceof Aborted) ? state.failure : undefined)
  const inFlight: Promise<void>[] = []
  let lastCompute: Promise<unknown> = Promise.resolve()
  let lastStore: Promise<void> = Promise.resolve()
  // Milliseconds of the last reads (read and claim a batch), newest last.
  const reads: number[] = []
  try {
    while (state.failure === undefined) {
      // Let timers and I/O run between batches (better-sqlite3 is synchronous).
      await yieldToLoop()
      // With a concurrency limit, the next batch is read and claimed once the calls queued would
      // run out soon (`readAheadQueue`), not as soon as the last one started computing.
      const lim = op.limit
      const at = lim === undefined ? undefined : readAheadQueue(lim.slots, lim.callMs(), Math.max(0, ...reads))
      // The wait ends at an abort (the queued calls of an abandoned batch still run out one by
      // one: not waited for), and a batch that failed meanwhile stops the reading.
      if (lim !== undefined && at !== undefined) {
        await untilAborted(lim.untilQueued(at), op)
        if (state.failure !== undefined) break
      }
      const t0 = performance.now()
      const b = await next()
      if (b === undefined) break
      const p = await prepareBatch(engine, x, b.tasks, op, b.lease, b.range === true, b.fill)
      reads.push(performance.now() - t0)
      if (reads.length > READS_KEPT) reads.shift()
      const prevCompute = lastCompute
      const computed = (async () => {
        if (!overlap) await prevCompute.catch(() => undefined)
        return compute(x, p.mine, op, engine.timeoutMs)
      })()
      lastCompute = computed
      const prevStore = lastStore
      const stored = (async () => {
        const c = await computed.catch((e: unknown) => ({ error: e }))
        await prevStore.catch(() => undefined)
        const earlier = failed()
        if ('error' in c || earlier !== undefined) {
          const e = 'error' in c ? c.error : earlier!.e
          await dropBatch(p, op, e)
          throw e
        }
        await storeBatch(engine, x, p, c, report, op)
        await b.stored?.()
      })()
      stored.catch(fail)
      lastStore = stored
      inFlight.push(stored)
      if (inFlight.length >= 2) await inFlight.shift()!.catch(() => undefined)
    }
  } catch (e) {
    fail(e)
  }
  await Promise.allSettled(inFlight)
  if (state.failure !== undefined) throw state.failure.e
}

/** How many reads `readAheadQueue` looks at (the longest of the last ones). */
const READS_KEPT = 4

/**
 * When `runBatches` reads and claims the next batch while a concurrency limit's calls are
 * queued: once at most this many calls are queued (undefined: at once). The calls queued then
 * (with the `slots` running) take about twice the longest recent read (`readMs`) and one more
 * round of calls to run out, at the recent mean call time `callMs`, so the slots stay busy
 * while the next batch is read. Reading later than that would idle them; reading earlier holds
 * claims on rows that wait behind a whole batch: at the end of a first fill the last batches
 * were queued behind other batches of a few workers while the other workers had nothing left
 * to claim (with 4 worker processes, 10-25% of their slot time idle at the end).
 * Undefined until a call settled and a read was timed, and for calls too fast to measure.
 */
export function readAheadQueue(slots: number, callMs: number | undefined, readMs: number): number | undefined {
  if (callMs === undefined || !(callMs > 0.05) || !(readMs > 0)) return undefined
  return Math.ceil((2 * readMs * slots) / callMs) + slots
}

/**
 * Run the functions for `tasks` and store the results, computing each (row, inputs, code
 * version) once per process: a task already in flight (from a concurrent get or refresh) is
 * awaited instead of run again, and a task whose result a concurrent call stored since the
 * scan is skipped. A call that has been alone since it started (no other refresh or get
 * overlapped it) skips both checks: nothing else can have computed its tasks.
 */
export async function runBatch(engine: Engine, x: Derivation, tasks: readonly Task[], report: TableReport, op: Op): Promise<void> {
  const p = await prepareBatch(engine, x, tasks, op)
  let c: Computed
  try {
    c = await compute(x, p.mine, op, engine.timeoutMs)
  } catch (e) {
    await dropBatch(p, op, e)
    throw e
  }
  await storeBatch(engine, x, p, c, report, op)
}

/** A batch claimed: the tasks this caller computes, its lease, and what it left to others. */
interface Prepared {
  readonly claim: Claim
  readonly mine: readonly Task[]
  readonly lease: Lease | undefined
  /** Tasks another worker process holds (left behind). */
  readonly heldByOthers: ReadonlySet<string>
  /** A first fill's page: its writes are recorded there (`FillWrites`). */
  readonly fill?: FillWrites | undefined
}

type Computed = Awaited<ReturnType<typeof compute>>

/**
 * Claim a batch: in this process (`claims.ts`: tasks another call computes are waited for),
 * then across processes (a lease on the rows in the claim table: rows another worker process
 * holds are left to it, see `leftBehind`).
 */
async function prepareBatch(engine: Engine, x: Derivation, tasks: readonly Task[], op: Op, claimed?: Lease, range = false, fill?: FillWrites): Promise<Prepared> {
  let claim: Claim
  try {
    claim = await engine.claims.claim(engine, x, tasks, op.alone)
  } catch (e) {
    if (claimed !== undefined) await op.keeper.release(claimed)
    throw e
  }
  const heldByOthers = new Set<string>()
  let lease: Lease | undefined = claimed
  try {
    let mine = claim.mine
    if (mine.length > 0) {
      // Claimed already (a page that claimed its rows), or claimed now.
      lease ??= range ? await op.keeper.claimRange(x.name, mine.map((t) => t.addr)) : await op.keeper.claim(x.name, mine.map((t) => t.addr))
      const got = lease.keys
      if (got.size < mine.length) {
        const held = leftOf(op, x.name).held
        for (const t of mine) {
          if (got.has(t.addr)) continue
          held.add(t.addr)
          heldByOthers.add(t.addr)
        }
        mine = mine.filter((t) => got.has(t.addr))
      }
      // Another worker may have stored exactly this computation and released it between our
      // scan and our claim (`claim` checked already when not alone; `full: true` recomputes).
      // A first fill's page: no look at its rows while nobody else wrote any (`unstoredOf`).
      if (op.alone && !op.recompute) mine = await unstoredOf(engine, x, mine, fill)
    }
    return { claim, mine, lease, heldByOthers, fill }
  } catch (e) {
    claim.settle(e)
    if (lease !== undefined) await op.keeper.release(lease)
    throw e
  }
}

/** A claimed batch that will not be stored (an earlier batch failed): its lease released, its in-process waiters told. */
async function dropBatch(p: Prepared, op: Op, e: unknown): Promise<void> {
  p.claim.settle(e)
  if (p.lease !== undefined) await op.keeper.release(p.lease)
}

/**
 * Store a computed batch (fenced by its lease), release the lease, then finish the tasks other
 * calls of this process held. Results the fence refused (the batch's claim rows on them are
 * gone) are looked at again under a new claim (`storeRefused`); those whose rows another worker
 * holds now are left behind, with their results, for this call (`leftBehind` waits for that
 * worker, then stores them unless it did), and, without them, for the calls of this process
 * that waited for them. The watermark does not pass them meanwhile.
 */
async function storeBatch(engine: Engine, x: Derivation, p: Prepared, c: Computed, report: TableReport, op: Op): Promise<void> {
  const { claim, lease } = p
  try {
    // Fencing: results of rows another worker took over (our lease expired) are refused; the
    // monotonic guard judges the rest.
    // The fence also releases the claims of the rows it lets through, in the write transaction:
    // when one transaction stored the batch (no busy retry, no split), nothing is left to release.
    let fenced = 0
    let released: readonly string[] = []
    // The rows the fence refused, as the committed attempts decided (a busy retry runs it again).
    const refused = new Set<string>()
    const fence = lease === undefined ? undefined : async (trx: Kysely<any>, keys: readonly string[]) => {
      fenced++
      released = keys
      const lost = await op.keeper.fence(trx, lease, keys)
      if (lost.size > 0 || refused.size > 0) {
        for (const k of keys) {
          if (lost.has(k)) refused.add(k)
          else refused.delete(k)
        }
      }
      return lost
    }
    await writeResults(engine, x, c.results, report, fence, p.fill === undefined ? undefined : (revs) => p.fill!.record(revs))
    if (lease !== undefined && fenced === 1) op.keeper.written(lease, released)
    // Calls abandoned by an abort were not stored: concurrent callers waiting on them run them.
    if (c.abandoned) throw new Aborted()
    let behind = p.heldByOthers
    if (refused.size > 0) {
      const results = c.results.filter((r) => refused.has(r.task.addr))
      const left = await storeRefused(engine, x, results, report, op)
      if (left.behind.size > 0) {
        const held = leftOf(op, x.name).held
        for (const k of left.behind) held.add(k)
        keepRefused(x, results.filter((r) => left.held.has(r.task.addr)))
        behind = new Set([...p.heldByOthers, ...left.behind])
      }
    }
    claim.settle(undefined, behind)
  } catch (e) {
    claim.settle(e)
    throw e
  } finally {
    if (lease !== undefined) await op.keeper.release(lease)
  }
  // A shared task whose caller failed (its function ran, but its write did not commit) is run
  // again here: its result must not be dropped while this call goes on to advance the watermark.
  // Nothing to wait for: done. (An abort noticed here would make a `get` whose row was just
  // stored reject as aborted, and its caller not count the row.)
  if (claim.waits.length === 0) return
  const settled = await untilAborted(Promise.allSettled(claim.waits.map((w) => w.done)), op)
  const retry = claim.waits.filter((_, i) => settled[i]!.status === 'rejected').map((w) => w.task)
  // Tasks the other caller did not store (held by another worker process, or refused by its fence): left behind here too.
  claim.waits.forEach((w, i) => {
    const st = settled[i]!
    if (st.status === 'fulfilled' && st.value.has(w.task.addr)) leftOf(op, x.name).held.add(w.task.addr)
  })
  if (retry.length > 0) await runBatch(engine, x, retry, report, op)
}

/**
 * Results the fence refused (their claim rows under the batch's token were gone at write time),
 * looked at again under a new claim on their rows. Left behind (`behind`): a row another worker
 * holds now (`held`) (a live claim: it took the row over and computes it), a row whose result was not
 * computed from the row's current inputs (the pass computes it as it is now: storing it would
 * store a row late, e.g. a join row no longer in the input), and a row this claim's fence refuses
 * in turn. A row stored meanwhile from the same inputs with this code (by the worker that took
 * it over) keeps that row. The others are stored now, fenced by the new claim: rows nobody
 * computes any more, whose claim rows vanished (swept by `collect` after the lease ran out,
 * deleted, lost in a PostgreSQL crash) or whose other worker lost its own lease in turn (a
 * function that blocks the event loop past the lease: no heartbeat runs). Run after the batch's
 * write, and for the rows left behind because another worker held them, once it let them go
 * (`keptRefused`). Computing those rows again instead made two such workers take a row over
 * from each other for ever, each computing it and each refused.
 */
async function storeRefused(engine: Engine, x: Derivation, results: readonly Result[], report: TableReport, op: Op): Promise<{ behind: Set<string>; held: Set<string> }> {
  const behind = new Set<string>()
  const held = new Set<string>()
  const lease = await op.keeper.claim(x.name, results.map((r) => r.task.addr))
  try {
    for (const r of results) {
      if (lease.keys.has(r.task.addr)) continue
      behind.add(r.task.addr)
      held.add(r.task.addr)
    }
    const got = results.filter((r) => lease.keys.has(r.task.addr))
    if (got.length === 0) return { behind, held }
    // Under the new claim, nobody else stores these rows: what is stored now stays stored.
    const unstored = new Set((await notStored(engine, x, got.map((r) => r.task))).map((t) => t.addr))
    if (unstored.size === 0) return { behind, held }
    const now = await currentTasks(engine, x, [...unstored])
    const current = got.filter((r) => {
      if (!unstored.has(r.task.addr)) return false
      const t = now.get(r.task.addr)
      if (t !== undefined && sameComputation(t, r.task)) return true
      behind.add(r.task.addr)
      return false
    })
    if (current.length === 0) return { behind, held }
    const fence: Fence = async (trx, keys) => {
      const lost = await op.keeper.fence(trx, lease, keys)
      // As the committed attempt decided (a busy retry runs the fence again); `keys` are all stored ones.
      for (const k of keys) {
        if (lost.has(k)) behind.add(k)
        else behind.delete(k)
      }
      return lost
    }
    // Each of these results was counted once as superseded when the fence first refused it. A
    // result stored now is counted by this write (computed, unchanged, failed or blocked)
    // instead, and one refused again stays counted once: the first count is taken back for
    // both. A stored row the write deleted right after (PostgreSQL: an input deleted meanwhile,
    // counted as deleted) was stored: its first count is taken back once, not twice.
    const superseded = report.superseded
    const storedBefore = storedCount(report)
    await writeResults(engine, x, current, report, fence)
    report.superseded = superseded - (storedCount(report) - storedBefore)
  } finally {
    await op.keeper.release(lease)
  }
  return { behind, held }
}

/** Results a report counts as stored (not refused, not deleted). */
const storedCount = (r: TableReport): number => r.computed + r.unchanged + r.failed + r.blocked

/** The tasks the rows at `addrs` of `x` are computed from now (rows with nothing to compute: none). */
async function currentTasks(engine: Engine, x: Derivation, addrs: readonly string[]): Promise<Map<string, Task>> {
  const clock = await engine.d.readClock(engine.db)
  const work = [...(await scan(engine, x, { mode: 'keys', keys: addrs }, clock, { noCauses: true })).values()].filter((w) => w.action === 'compute')
  const tasks = await loadTasks(engine, x, splitUnkeyable(x, work).keyable)
  return new Map(tasks.map((t) => [t.addr, t]))
}

/**
 * Results the fence refused while another worker held their rows live (`storeRefused` left
 * them), per derivation (a new declaration, a new code version, starts with none): stored once
 * that worker let the rows go, if it did not store them, by the call that waited for it
 * (`leftBehind`) or, after a watch wave, by the next pass over the table. Not computed again:
 * see `storeRefused`.
 */
const keptRefused = new WeakMap<Derivation, Map<string, Result>>()

function keepRefused(x: Derivation, results: readonly Result[]): void {
  let kept = keptRefused.get(x)
  if (kept === undefined) keptRefused.set(x, (kept = new Map()))
  for (const r of results) kept.set(r.task.addr, r)
}

/** Store the results kept for `x` (`keptRefused`) whose rows are free now; those another worker holds again are kept again, the others dropped (the pass computes them). */
async function storeKeptRefused(engine: Engine, x: Derivation, report: TableReport, op: Op): Promise<void> {
  const kept = keptRefused.get(x)
  if (kept === undefined || kept.size === 0) return
  const results = [...kept.values()]
  kept.clear()
  const left = await storeRefused(engine, x, results, report, op)
  if (left.held.size > 0) keepRefused(x, results.filter((r) => left.held.has(r.task.addr)))
}
