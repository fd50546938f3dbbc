/**
 * The store: the one effectful piece. It owns the declarations (tracked roots, derivations),
 * and runs the phases in order: scan (`staleness.ts`) -> load inputs -> run functions ->
 * monotonic write (`write.ts`), per derived table in topological order.
 *
 * @example
 * ```ts
 * const store = await openStore(db)
 * await store.track(sources)
 * const parsed = store.derive({ name: 'parsed', from: sources, output: { ast: t.string }, fn: (s) => ({ ast: parse(s.text) }) })
 * const compiled = store.derive({ name: 'compiled', from: parsed, output: { code: t.string }, fn: (p) => ({ code: compile(p.ast) }) })
 * await store.refresh()
 * await store.status(compiled, 1) // { table: 'compiled', key: 1, state: 'fresh', causes: [] }
 * ```
 */
import * as t from 'io-ts'
import { CompiledQuery, sql, type Kysely } from 'kysely'
import { LineageQueryError, showValue } from '../errors.js'
import { compile } from '../query/compile.js'
import { dialectOf } from '../query/dialect-of.js'
import { AST, Q, Table, type AnyQuery, type Plain, type Query, type RowOf } from '../query/dsl.js'
import { run } from '../query/run.js'
import { tableDef } from '../query/schema.js'
import { inputLineage, lineage as lineageOf } from '../lineage/index.js'
import { legacyIndexName, metaTable, q, revTable, storeDialects, type StoreDialect, type Watermark } from './dialect.js'
import { BUSY_WAIT_MS, chunks, readersOf, type Derivation, type Engine, type Task } from './engine.js'
import { retryBusy } from './busy.js'
import { lostKeys, splitUnkeyable } from './unkeyable.js'
import { fromDriver } from './driver-errors.js'
import { buildGraph } from './graph.js'
import { zipParts } from './join.js'
import { addressFromUserChecked, addressValue, inputsText, keyText, lineageOfAddress, parseInputs, rootKeyText, type KeyKind } from './keys.js'
import { ensureDerivedTables, migrate } from './schema.js'
import { fedByRoot, fillCount, fillPage, fillRootPage, pagesByRootKey, unsafeKeyWork, inputLoader, isFirstFill, keyAddressed, LIVE_TEXT, loadTasks, metaRows, readsFor, recordedCauses, scan, withoutKey, type MetaRow, type ScanFilter, type ScanStats, type Work } from './staleness.js'
import { ensureTracked } from './startup.js'
import { startupDialects } from './dialect-startup.js'
import { exec, jsonBatch, KEY_CHUNK } from './sqltext.js'
import { collectedName, deleteRows, recordedInputs, writeResults, type Outcome, type Result } from './write.js'
import { codeVersion } from './version.js'
import { claimDialects, type ClaimDialect } from './dialect-claims.js'
import { LeaseKeeper, ownerId, type Lease } from './leases.js'
import { limiter, type Limiter } from './limit.js'
import { startWatch, type WatchHost, type WatchOptions, type Watcher, type WaveReport } from './watch.js'
import { listenRoots, pollClock, watchFiles, type ListenClient, type WakeSource } from './wake.js'
import {
  DerivedTable,
  derivedInfo,
  emptyTableReport,
  type Cause,
  type DeriveContext,
  type GetOptions,
  type GetResult,
  type Graph,
  type RefreshOptions,
  type RefreshProgress,
  type RefreshReport,
  type RowStatus,
  type SourceKind,
  type SourceRow,
  type StoreOptions,
  type TableReport,
} from './types.js'

type Codecs = Readonly<Record<string, t.Mixed>>

/** The input a derivation's function receives for a `from` of type `F`. */
export type InputOf<F> = F extends DerivedTable<any, infer R> ? R : F extends Query<infer E, any> ? Plain<E> : never

export interface Derive<N extends string, F, C extends Codecs> {
  /** The derived table's name (an identifier not starting with `lq_`). */
  readonly name: N
  /** A tracked root table, a derived table, or a comprehension over them. */
  readonly from: F
  /** The output columns, as io-ts codecs (the same codecs `table()` accepts). */
  readonly output: C
  /** The function from one input row to one output row; it may be async. Throwing stores an error. */
  readonly fn: (input: InputOf<F>, ctx: DeriveContext) => RowOf<C> | Promise<RowOf<C>>
  /**
   * Part of the code version: change it to force recomputation. Only `fn`'s own source text is
   * hashed: variables it captures (`fn: (n) => n.v > threshold`) and functions it calls are
   * not. Put such values in `params`, and list the files of called code in `dependsOn` (or
   * change `version` when they change).
   */
  readonly version?: string
  /**
   * Values the function depends on besides its input, as JSON data (e.g. `{ threshold: 3 }`):
   * hashed into the code version, so changing one recomputes the table; the function gets them
   * as `ctx.params`.
   */
  readonly params?: unknown
  /** Files whose contents are part of the code version. */
  readonly dependsOn?: readonly string[]
  /**
   * Milliseconds one call of `fn` may take; a call still pending then is stored as `failed`
   * (cause `timeout`) and the rest of its batch is stored without waiting for it. Overrides the
   * `timeoutMs` of `refresh`/`get` and of the store. Only asynchronous functions can be timed
   * out (a synchronous loop blocks the process); the call's `ctx.signal` is aborted at the limit.
   */
  readonly timeoutMs?: number
}

let nextStoreId = 1
const IDENT = /^[A-Za-z_][A-Za-z0-9_]*$/

/**
 * Open (creating or migrating) the derived-data store in `db`, SQLite or PostgreSQL.
 *
 * @example
 * ```ts
 * const store = await openStore(new Kysely<any>({ dialect: new SqliteDialect({ database: new Database('app.db') }) }))
 * ```
 */
export async function openStore(db: Kysely<any>, options: StoreOptions = {}): Promise<Store> {
  const d = storeDialects[dialectOf(db)]
  const busyMs = nonNegative(options.busyTimeoutMs, 'openStore: options.busyTimeoutMs') ?? BUSY_WAIT_MS
  try {
    await retryBusy(d, 'openStore (creating or migrating the store tables)', busyMs, () => migrate(db, d))
  } catch (e) {
    throw fromDriver(e, 'openStore')
  }
  return new Store(db, d, options)
}

export class Store {
  readonly #db: Kysely<any>
  readonly #d: StoreDialect
  readonly #id = nextStoreId++
  /** The batch size given to openStore, if any. */
  readonly #batch: number | undefined
  readonly #roots = new Map<string, Table<string, unknown, unknown>>()
  readonly #derivations = new Map<string, Derivation>()
  readonly #ready = new Map<string, Promise<void>>()
  /** Batches being computed (by refresh or get), for concurrent callers to wait on. */
  readonly #flights = new Set<Flight>()
  /** Refresh and get calls in progress. */
  readonly #ops = new Set<Op>()
  #order: readonly string[] = []
  /** Default per-call timeout (StoreOptions.timeoutMs). */
  readonly #timeoutMs: number | undefined
  /** How long writes wait for a busy database (StoreOptions.busyTimeoutMs). */
  readonly #busyMs: number
  /** Lease SQL of the dialect. */
  readonly #claimD: ClaimDialect
  /** This store's name in the claim table: every refresh and watch of it claims as this worker. */
  readonly #owner = ownerId()
  /** Default lease length (StoreOptions.leaseMs). */
  readonly #leaseMs: number
  /** Declarations a code version is computed from, for re-checks of `dependsOn` files (watch). */
  readonly #versionInputs = new Map<string, Parameters<typeof codeVersion>[0]>()

  /** @internal use `openStore` */
  constructor(db: Kysely<any>, d: StoreDialect, options: StoreOptions) {
    this.#db = db
    this.#d = d
    this.#batch = positive(options.batchSize, 'openStore: options.batchSize')
    this.#timeoutMs = positive(options.timeoutMs, 'openStore: options.timeoutMs')
    this.#busyMs = nonNegative(options.busyTimeoutMs, 'openStore: options.busyTimeoutMs') ?? BUSY_WAIT_MS
    this.#claimD = claimDialects[d.name]
    this.#leaseMs = positive(options.leaseMs, 'openStore: options.leaseMs') ?? LEASE_MS
  }

  /** This store's worker name in the claim table (`host:pid:random`). */
  get owner(): string {
    return this.#owner
  }

  get #engine(): Engine {
    return { db: this.#db, d: this.#d, roots: this.#roots, derivations: this.#derivations, busyMs: this.#busyMs }
  }

  // ---------------------------------------------------------------- declarations

  /**
   * Track a root table: a revision table `lq_rev_<name>` and triggers that record every insert,
   * update and delete (from any client) with a new store revision. Existing rows get a
   * revision now. Idempotent, and cheap to call at every program start: when the root is
   * already tracked it only reads the catalogue (no DDL, no lock a root writer waits on). The
   * first call on a big table backfills the revisions in short transactions while root writers
   * go on; concurrent first calls (several processes starting at once) all succeed. A root that
   * was dropped and recreated is tracked again: its rows get new revisions, so the derived rows
   * computed from the old table become stale (see docs/derived.md, "Startup").
   *
   * @example `await store.track(sources)`
   */
  async track(root: Table<string, any, any>): Promise<void> {
    if (!(root instanceof Table) || derivedInfo(root) !== undefined) {
      throw new LineageQueryError('argument', `store.track expects a root table declared with table(...), got ${derivedInfo(root) ? `the derived table \`${(root as Table<string, unknown, unknown>).name}\`` : showValue(root)}`)
    }
    const def = root.def
    if (def.name.startsWith('lq_')) throw new LineageQueryError('schema', `table \`${def.name}\`: names starting with lq_ are reserved for the store's own tables`, { table: def.name })
    if (this.#derivations.has(def.name)) throw new LineageQueryError('schema', `\`${def.name}\` is already a derived table of this store; a root table cannot have the same name`, { table: def.name })
    this.#checkName(def.name, 'root')
    if (def.key === undefined) {
      throw new LineageQueryError('schema', `table \`${def.name}\` has no key, so its rows cannot carry revisions; declare one with table(name, columns, { key: 'col' })`, { table: def.name })
    }
    for (const k of def.key) {
      const c = def.byName.get(k)!
      if (c.type.kind === 'real') {
        throw new LineageQueryError('schema', `table \`${def.name}\`: key column \`${k}\` is a real number; tracked tables need integer, string or boolean keys`, { table: def.name, column: k })
      }
    }
    const exists = await this.#d.columns(this.#db, def.name)
    if (exists === undefined) throw new LineageQueryError('schema', `table \`${def.name}\` does not exist in the database; create it first (createTable)`, { table: def.name })
    for (const c of def.columns) {
      if (!exists.some((e) => e.name === c.name)) {
        throw new LineageQueryError('unknown-column', `table \`${def.name}\` in the database has no column \`${c.name}\`; columns: ${exists.map((e) => e.name).join(', ')}`, { table: def.name, column: c.name })
      }
    }
    // Reads only when the root is already tracked; otherwise DDL, then a batched backfill (startup.ts).
    let done: Awaited<ReturnType<typeof ensureTracked>>
    try {
      done = await ensureTracked(this.#db, this.#d, def)
    } catch (e) {
      throw fromDriver(e, `store.track(${def.name})`)
    }
    // Many new revision rows: fresh planner statistics (PostgreSQL), so scans use the rev index.
    if (done.backfilled >= ANALYZE_MIN) await this.#d.analyze(this.#db, revTable(def.name))
    this.#roots.set(def.name, root)
    this.#order = this.#buildGraph().order
  }

  /**
   * Names that would collide once the store prefixes them, or that the database cannot hold:
   * a `schema` error. PostgreSQL truncates identifiers to 63 bytes, so a derived name may have
   * at most 47 bytes (`lq_meta_<name>$changed`) and a root name 52 (`lq_rev_<name>$rev`);
   * SQLite compares names case-insensitively, so two names differing only in case are one
   * table there; PostgreSQL names a derived table's primary key `<name>_pkey`, in the same
   * namespace as tables. Root names may not contain `$` (it separates index names).
   */
  #checkName(name: string, kind: 'root' | 'derived'): void {
    const fail = (why: string): never => {
      throw new LineageQueryError('schema', `${kind} table \`${name}\`: ${why}`, { table: name })
    }
    if (kind === 'root' && name.includes('$')) fail('tracked table names may not contain $ (the store uses it in index names)')
    if (this.#d.name === 'postgres') {
      const max = kind === 'root' ? 52 : 47
      if (Buffer.byteLength(name, 'utf8') > max) fail(`the name is longer than ${max} bytes; PostgreSQL truncates identifiers to 63 bytes and the store's tables and indexes add up to ${63 - max} bytes to it. Choose a shorter name`)
    }
    const others = [...this.#roots.keys(), ...this.#derivations.keys()].filter((n) => n !== name)
    if (this.#d.name === 'sqlite') {
      const same = others.find((n) => n.toLowerCase() === name.toLowerCase())
      if (same !== undefined) fail(`SQLite compares table names case-insensitively, so it is the same table as \`${same}\`; choose another name`)
    } else {
      const derived = (n: string): boolean => this.#derivations.has(n) || (n === name && kind === 'derived')
      const clash = others.find((n) => (derived(name) && n === `${name}_pkey`) || (derived(n) && name === `${n}_pkey`))
      if (clash !== undefined) fail(`its name clashes with \`${clash}\` on PostgreSQL (a derived table's primary key index is named <name>_pkey); choose another name`)
    }
  }

  /**
   * Declare a derived table. Checks everything that can be checked without the database:
   * the name, the output codecs, that `from` reads only tracked roots and derived tables of
   * this store, and that there is no cycle. The tables are created (or checked against the
   * declaration) on the first refresh/get/status.
   *
   * @example
   * ```ts
   * const parsed = store.derive({ name: 'parsed', from: sources, output: { ast: t.string }, fn: (s) => ({ ast: parse(s.text) }) })
   * ```
   */
  derive<const N extends string, F extends AnyQuery, C extends Codecs>(decl: Derive<N, F, C>): DerivedTable<N, RowOf<C>> {
    if (typeof decl !== 'object' || decl === null) throw new LineageQueryError('argument', `store.derive expects { name, from, output, fn }, got ${showValue(decl)}`)
    const { name, from, output, fn } = decl
    if (typeof name !== 'string' || !IDENT.test(name)) throw new LineageQueryError('schema', `derived table name must be an identifier (letters, digits, _), got ${showValue(name)}`, { table: name })
    if (name.startsWith('lq_')) throw new LineageQueryError('schema', `derived table \`${name}\`: names starting with lq_ are reserved for the store's own tables`, { table: name })
    if (this.#derivations.has(name)) throw new LineageQueryError('schema', `a derived table named \`${name}\` is already declared in this store; derived table names must be unique`, { table: name })
    if (this.#roots.has(name)) throw new LineageQueryError('schema', `\`${name}\` is a tracked root table; a derived table cannot have the same name`, { table: name })
    this.#checkName(name, 'derived')
    if (typeof fn !== 'function') throw new LineageQueryError('argument', `derived table \`${name}\`: fn must be a function (input, ctx) => row, got ${showValue(fn)}`, { table: name })
    if (typeof output !== 'object' || output === null || Array.isArray(output)) {
      throw new LineageQueryError('schema', `derived table \`${name}\`: output must be an object of io-ts codecs, e.g. { ast: t.string }`, { table: name })
    }
    for (const col of Object.keys(output)) {
      if (col.startsWith('lq_')) throw new LineageQueryError('schema', `derived table \`${name}\`: output column \`${col}\` starts with lq_, which is reserved for the store's metadata`, { table: name, column: col })
    }
    // Validates the declaration now; the final definition below also says where lineage lives.
    tableDef(name, { ...output, lq_key: t.string }, { key: 'lq_key' })

    // What it reads.
    const reads = readTables(from, name)
    for (const r of reads) {
      if (r !== name && !this.#roots.has(r) && !this.#derivations.has(r)) {
        throw new LineageQueryError('schema', `derived table \`${name}\` reads table \`${r}\`, which is not tracked by this store; call \`await store.track(${r})\` first (tracked: ${[...this.#roots.keys()].join(', ') || 'none'}; derived: ${[...this.#derivations.keys()].join(', ') || 'none'})`, { table: name, reads: r })
      }
    }
    const timeoutMs = positive(decl.timeoutMs, `derived table \`${name}\`: timeoutMs`)
    const graph = this.#buildGraph([{ name, reads }])
    let source: SourceKind
    const info = derivedInfo(from)
    const zip = zipParts(from)
    if (zip !== undefined) {
      source = { kind: 'zip', parts: zip }
    } else if (info !== undefined) {
      if (info.storeId !== this.#id) throw new LineageQueryError('schema', `derived table \`${name}\` reads \`${(from as unknown as Table<string, unknown, unknown>).name}\`, a derived table of another store`, { table: name })
      source = { kind: 'derived', table: reads[0]! }
    } else if (from instanceof Table) {
      source = { kind: 'root', table: reads[0]! }
    } else {
      source = { kind: 'query', tables: reads }
      // Compile now, so an unknown column or a type error surfaces at derive, not at refresh.
      compile(inputLineage(from as AnyQuery), this.#d.name)
    }
    const roots = [...new Set(reads.flatMap((r) => (this.#roots.has(r) ? [r] : this.#derivations.get(r)!.roots)))].sort()
    const singleRoot = roots.length === 1
    const versionInput = { table: name, fn, version: decl.version, dependsOn: decl.dependsOn, output, params: decl.params }
    const version = codeVersion(versionInput)
    this.#versionInputs.set(name, versionInput)
    // A derived row's lineage is its address (lq_key): lineage(q) over this table reports the
    // root rows it came from, so provenance composes through the pipeline.
    const def = tableDef(name, { ...output, lq_key: t.string }, { key: 'lq_key', storedLineage: { column: 'lq_key', table: singleRoot ? roots[0] : undefined } })
    const table = new DerivedTable<N, RowOf<C>>(def, { storeId: this.#id, roots, singleRoot, output })
    this.#derivations.set(name, {
      name,
      def,
      table: table as unknown as DerivedTable<string, unknown>,
      source,
      query: source.kind === 'query' ? (from as AnyQuery) : undefined,
      fn: fn as Derivation['fn'],
      params: decl.params,
      output,
      codeVersion: version,
      roots,
      singleRoot,
      reads,
      ...(timeoutMs === undefined ? {} : { timeoutMs }),
    })
    this.#order = graph.order
    return table
  }

  #buildGraph(extra: readonly { name: string; reads: readonly string[] }[] = []): Graph {
    return buildGraph({
      roots: [...this.#roots.keys()],
      derived: [...[...this.#derivations.values()].map((d) => ({ name: d.name, reads: d.reads })), ...extra],
    })
  }

  /** The dependency graph: nodes, edges, topological order, and Mermaid / DOT drawings. */
  graph(): Graph {
    return this.#buildGraph()
  }

  /** The code version of a derived table (hash of its function, dependsOn files and version). */
  codeVersion(table: DerivedTable<string, any> | string): string {
    return this.#resolve(table, 'codeVersion').codeVersion
  }

  // ---------------------------------------------------------------- refresh

  /**
   * Compute every missing or stale row, table by table in dependency order. Root rows that are
   * gone take their derived rows (transitively) with them. Returns counts per table.
   *
   * Options: `batchSize`, `full`, `timeoutMs` (per function call), `signal` (an `AbortSignal`:
   * stops after the batch in progress and rejects with a `LineageQueryError` of code `aborted`
   * whose `details.report` is the partial report), `onProgress` (called with a
   * `RefreshProgress` `{ table, tableIndex, tableCount, phase, done, total, counts, elapsedMs }`
   * after each table's scan, each stored batch and each finished table).
   *
   * @example
   * ```ts
   * const ac = new AbortController()
   * await store.refresh({ signal: ac.signal, timeoutMs: 30_000, onProgress: (p) => bar.update(p.done, p.total) })
   * ```
   */
  async refresh(options: RefreshOptions = {}): Promise<RefreshReport> {
    return (await this.#refreshAll(options, { waitForOthers: true })).report
  }

  /** A refresh (public `refresh`), or one wave of `watch` (`drain`, `settling`, not waiting for other workers). */
  async #refreshAll(options: RefreshOptions, internal: { waitForOthers: boolean; drain?: AbortSignal; settling?: (table: string, key: string) => boolean }): Promise<WaveReport> {
    if (typeof options !== 'object' || options === null) throw new LineageQueryError('argument', `store.refresh expects an options object, got ${showValue(options)}`)
    const batch = positive(options.batchSize, 'refresh: options.batchSize') ?? this.#batch
    const timeoutMs = positive(options.timeoutMs, 'refresh: options.timeoutMs')
    const concurrency = positive(options.concurrency, 'refresh: options.concurrency')
    const leaseMs = positive(options.leaseMs, 'refresh: options.leaseMs') ?? this.#leaseMs
    const signal = checkSignal(options.signal, 'refresh')
    if (options.onProgress !== undefined && typeof options.onProgress !== 'function') throw new LineageQueryError('argument', `refresh: options.onProgress must be a function, got ${showValue(options.onProgress)}`)
    const started = performance.now()
    const tables: Record<string, TableReport> = {}
    const summary = (): RefreshReport => {
      const totals = emptyTableReport()
      for (const r of Object.values(tables)) for (const k of Object.keys(totals) as (keyof TableReport)[]) totals[k] += r[k]
      return { tables, totals, durationMs: performance.now() - started }
    }
    const op = this.#begin({ signal, timeoutMs, leaseMs, concurrency, recompute: options.full === true, ...internal })
    try {
      throwIfAborted(op)
      await this.#ensureAll()
      await this.#checkRoots()
      const names = this.#order.filter((name) => this.#derivations.has(name))
      for (const name of names) tables[name] = emptyTableReport()
      for (const [i, name] of names.entries()) {
        throwIfAborted(op)
        const x = this.#derivations.get(name)!
        const progress = options.onProgress === undefined ? undefined : { report: options.onProgress, tableIndex: i, tableCount: names.length, started }
        try {
          // Claims in topological order: while another worker computes rows of a table this one
          // reads, its rows would be computed from inputs about to change; wait for them
          // (bounded by their leases: a crashed worker's claims expire).
          await this.#untilUpstreamReleased(x, op)
          await this.#refreshTable(x, options.full === true, batch, tables, op, progress)
        } catch (e) {
          throw fromDriver(e, `store.refresh, derived table \`${name}\` (reading ${x.reads.map((r) => `\`${r}\``).join(', ')})`)
        }
      }
      let deferred = 0
      let held = 0
      for (const l of op.leftBehind.values()) {
        deferred += l.deferred
        held += l.held.size
      }
      const k = op.keeper.stats
      return { report: { ...summary(), leases: { claims: k.claims, claimMs: k.claimMs, heartbeatMs: k.heartbeatMs, releaseMs: k.releaseMs } }, deferred, heldByOthers: held }
    } catch (e) {
      if (e instanceof Aborted) throw abortedError('store.refresh', op, summary())
      throw e
    } finally {
      op.keeper.stop()
      try {
        await op.keeper.releaseAll()
      } finally {
        this.#end(op)
      }
    }
  }

  /** Wait while other workers hold live claims on derived tables `x` reads. */
  async #untilUpstreamReleased(x: Derivation, op: Op): Promise<void> {
    const ups = x.reads.filter((r) => this.#derivations.has(r))
    if (ups.length === 0) return
    for (let pause = 20; (await this.#claimD.liveOn(this.#db, ups, this.#owner)) > 0; pause = Math.min(pause * 2, 500)) {
      throwIfAborted(op)
      await untilAborted(sleep(pause), op)
    }
  }

  /** A refresh or get call starts: it is alone until another one starts. */
  #begin(
    limits: {
      signal?: AbortSignal | undefined
      timeoutMs?: number | undefined
      leaseMs?: number | undefined
      concurrency?: number | undefined
      waitForOthers?: boolean
      recompute?: boolean
      drain?: AbortSignal | undefined
      settling?: ((table: string, key: string) => boolean) | undefined
    } = {},
  ): Op {
    const op: Op = {
      alone: this.#ops.size === 0,
      signal: limits.signal,
      timeoutMs: limits.timeoutMs,
      keeper: new LeaseKeeper({ db: this.#db, dialect: this.#claimD, owner: this.#owner, leaseMs: limits.leaseMs ?? this.#leaseMs }),
      limit: limits.concurrency === undefined ? undefined : limiter(limits.concurrency),
      drain: limits.drain,
      settling: limits.settling,
      waitForOthers: limits.waitForOthers ?? true,
      recompute: limits.recompute ?? false,
      leftBehind: new Map(),
    }
    for (const other of this.#ops) other.alone = false
    this.#ops.add(op)
    return op
  }

  #end(op: Op): void {
    this.#ops.delete(op)
  }

  async #refreshTable(x: Derivation, full: boolean, batch: number | undefined, report: Record<string, TableReport>, op: Op, progress?: ProgressSink): Promise<void> {
    const engine = this.#engine
    const clock = await this.#d.readClock(this.#db)
    const wm = await this.#watermark(x)
    const filter: ScanFilter = full ? { mode: 'all', force: true } : { mode: 'since', wm: wm.wm, codeChanged: wm.applied !== x.codeVersion }
    // A first fill of a derivation over one table streams its input a page at a time.
    if (await isFirstFill(engine, x, filter)) return this.#fillTable(x, clock, wm, batch, report, op, progress)
    const stats: ScanStats = { covered: false, live: 0 }
    const work = await scan(engine, x, filter, clock, { stats, noCauses: true })
    const items = [...work.values()]
    const all = items.filter((w) => w.action === 'compute')
    // Keys JavaScript cannot carry (integers beyond 2^53): failed rows, never silently skipped.
    const { keyable, failed: unkeyable } = splitUnkeyable(x, all)
    // Debounce (watch): rows whose root rows are still settling wait for a later wave.
    const todo = op.settling === undefined ? keyable : keyable.filter((w) => !this.#deferred(x, lineageOfAddress(w.addr, x.roots), op))
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
    for (const [i, part] of parts.entries()) {
      // Let timers and I/O run between batches (better-sqlite3 is synchronous), and stop here when aborted.
      await yieldToLoop()
      throwIfAborted(op)
      const tasks = await load(part)
      await this.#run(x, tasks, report[x.name]!, op)
      await writeResults(engine, x, await lostKeys(engine, x, part, tasks), report[x.name]!)
      tell('batch')
      // PostgreSQL: lq_edge is shared by every comprehension derivation, and its statistics may
      // not know this table's name yet (an earlier ANALYZE saw other tables' edges only): then
      // each batch's edge statements are planned as a scan of all this table's edges so far.
      // Fresh statistics after the first batch of a big fill keep them key lookups.
      if (i === 0 && x.source.kind === 'query' && parts.length > 2) await this.#d.analyze(this.#db, 'lq_edge')
    }
    if (await this.#leftBehind(x, op, () => this.#refreshTable(x, full, batch, report, op, progress))) return
    await this.#finishTable(x, clock, wm, report[x.name]!, () => tell('done'))
  }

  /**
   * A first fill of a derivation over one table (see `isFirstFill`): pages of the input's
   * revision rows in key order (`fillPage`), each loaded, computed and stored as one batch, so
   * memory follows the batch size, not the table (default 5000 rows).
   */
  async #fillTable(x: Derivation, clock: Watermark, wm: { wm: Watermark; applied: string | null }, batch: number | undefined, report: Record<string, TableReport>, op: Op, progress?: ProgressSink): Promise<void> {
    const engine = this.#engine
    const mine = report[x.name]!
    const total = progress === undefined ? 0 : await fillCount(engine, x)
    const before = handled(mine)
    const tell = (phase: RefreshProgress['phase']) =>
      progress?.report({ table: x.name, tableIndex: progress.tableIndex, tableCount: progress.tableCount, phase, done: phase === 'done' ? Math.max(total, handled(mine) - before) : handled(mine) - before, total: Math.max(total, handled(mine) - before), counts: { ...mine }, elapsedMs: performance.now() - progress.started })
    tell('scan')
    const size = batch ?? BULK_BATCH
    if (pagesByRootKey(engine, x)) {
      // One integer key: pages of the root table in its key order, with their revisions.
      await writeResults(engine, x, splitUnkeyable(x, await unsafeKeyWork(engine, x)).failed, mine)
      let after: number | undefined
      for (;;) {
        await yieldToLoop()
        throwIfAborted(op)
        const page = await fillRootPage(engine, x, after, size)
        if (page.read === 0) break
        after = page.last
        await this.#run(x, op.settling === undefined ? page.tasks : page.tasks.filter((t) => !this.#deferred(x, t.lineage, op)), mine, op)
        tell('batch')
        if (page.read < size) break
      }
      if (await this.#leftBehind(x, op, () => this.#refreshTable(x, false, batch, report, op, progress))) return
      return this.#finishTable(x, clock, wm, mine, () => tell('done'))
    }
    let cursor: unknown
    for (;;) {
      await yieldToLoop()
      throwIfAborted(op)
      const page = await fillPage(engine, x, cursor, size)
      if (page.work.length === 0) break
      cursor = page.cursor
      const { keyable, failed } = splitUnkeyable(x, page.work)
      await writeResults(engine, x, failed, mine)
      const loaded = await loadTasks(engine, x, keyable)
      const tasks = op.settling === undefined ? loaded : loaded.filter((t) => !this.#deferred(x, t.lineage, op))
      await this.#run(x, tasks, mine, op)
      await writeResults(engine, x, await lostKeys(engine, x, keyable, tasks), mine)
      tell('batch')
      if (page.work.length < size) break
    }
    if (await this.#leftBehind(x, op, () => this.#refreshTable(x, false, batch, report, op, progress))) return
    await this.#finishTable(x, clock, wm, mine, () => tell('done'))
  }

  /** Debounce: whether a row of `x` with this root lineage waits (a root row is still settling); counted. */
  #deferred(x: Derivation, lineage: readonly SourceRow[], op: Op): boolean {
    const settling = op.settling
    if (settling === undefined || !lineage.some((e) => this.#roots.has(e.table) && settling(e.table, keyText(e.key)))) return false
    leftOf(op, x.name).deferred++
    return true
  }

  /**
   * The end of a table's pass when rows were left behind: held by other workers, or deferred.
   * The watermark must not pass them (a scan since it would not find them again). A refresh
   * waits until the other workers released (or their leases expired) and runs the table again
   * (`again`); a watch wave leaves them to a later wave. Whether the table's pass ends here
   * (true: the caller does not advance the watermark).
   */
  async #leftBehind(x: Derivation, op: Op, again: () => Promise<void>): Promise<boolean> {
    const l = op.leftBehind.get(x.name)
    if (l === undefined || (l.held.size === 0 && l.deferred === 0)) return false
    if (!op.waitForOthers || l.deferred > 0) return true
    for (let pause = 20; ; pause = Math.min(pause * 2, 500)) {
      const live = (await this.#claimD.held(this.#db, x.name)).filter((c) => c.owner !== this.#owner && l.held.has(c.key))
      if (live.length === 0) break
      throwIfAborted(op)
      await untilAborted(sleep(pause), op)
    }
    op.leftBehind.delete(x.name)
    await again()
    return true
  }

  /** The end of a table's refresh: statistics after many rows, the last progress event, the watermark. */
  async #finishTable(x: Derivation, clock: Watermark, wm: { wm: Watermark; applied: string | null }, r: TableReport, done: () => void): Promise<void> {
    // After many new rows, refresh the planner's statistics (PostgreSQL), so the next scans of
    // this table probe its indexes rather than read it whole.
    if (r.computed + r.unchanged + r.failed + r.blocked >= ANALYZE_MIN) {
      await this.#d.analyze(this.#db, metaTable(x.name))
      await this.#d.analyze(this.#db, x.name)
      if (x.source.kind === 'query') await this.#d.analyze(this.#db, 'lq_edge')
    }
    done()
    // The applied code version is this one unless another caller wrote rows under another code
    // version meanwhile (it cleared or changed the applied version): then it stays cleared.
    await retryBusy(this.#d, `refresh of \`${x.name}\` (its watermark)`, this.#busyMs, () => sql`UPDATE lq_derived SET wm_rev = ${clock.rev}, wm_xmin = ${clock.xmin}, applied_code_version = CASE WHEN COALESCE(applied_code_version, '') = ${wm.applied ?? ''} THEN ${x.codeVersion} ELSE NULL END WHERE name = ${x.name}`.execute(this.#db))
  }

  async #watermark(x: Derivation): Promise<{ wm: Watermark; applied: string | null }> {
    const r = await sql<{ wm_rev: unknown; wm_xmin: string | null; applied_code_version: string | null }>`SELECT wm_rev, wm_xmin, applied_code_version FROM lq_derived WHERE name = ${x.name}`.execute(this.#db)
    const row = r.rows[0]
    return { wm: { rev: Number(row?.wm_rev ?? 0), xmin: row?.wm_xmin ?? null }, applied: row?.applied_code_version ?? null }
  }

  /**
   * Run the functions for `tasks` and store the results, computing each (row, inputs, code
   * version) once per process: a task already in flight (from a concurrent get or refresh) is
   * awaited instead of run again, and a task whose result a concurrent call stored since the
   * scan is skipped. A call that has been alone since it started (no other refresh or get
   * overlapped it) skips both checks: nothing else can have computed its tasks.
   */
  async #run(x: Derivation, tasks: readonly Task[], report: TableReport, op: Op): Promise<void> {
    let mine: readonly Task[] = tasks
    const waits: { readonly done: Promise<ReadonlySet<string>>; readonly task: Task }[] = []
    if (!op.alone) {
      const others = [...this.#flights].filter((f) => f.table === x.name && f.codeVersion === x.codeVersion)
      if (others.length > 0) {
        const free: Task[] = []
        for (const task of tasks) {
          const same = others.find((f) => {
            const t = flightTasks(f).get(task.addr)
            return t !== undefined && (t === task || (inputsText(t.inputs) === inputsText(task.inputs) && t.inputHash === task.inputHash))
          })
          if (same === undefined) free.push(task)
          else waits.push({ done: same.done, task })
        }
        mine = free
      }
    }
    // The flight is registered before anything is awaited, so concurrent callers of this
    // process find these tasks in it and wait (see `Flight.done`).
    let done!: (held: ReadonlySet<string>) => void
    let fail!: (e: unknown) => void
    const flight: Flight = {
      table: x.name,
      codeVersion: x.codeVersion,
      tasks: mine,
      byAddr: undefined,
      done: new Promise<ReadonlySet<string>>((res, rej) => {
        done = res
        fail = rej
      }),
    }
    flight.done.catch(() => undefined)
    this.#flights.add(flight)
    let lease: Lease | undefined
    const heldByOthers = new Set<string>()
    try {
      // Leases: claim the batch in the store's claim table; rows another worker (process) holds
      // are left to it (the table's pass waits for them, or a later wave picks them up).
      if (mine.length > 0) {
        lease = await op.keeper.claim(x.name, mine.map((t) => t.addr))
        if (lease.keys.size < mine.length) {
          const held = leftOf(op, x.name).held
          for (const t of mine) {
            if (lease.keys.has(t.addr)) continue
            held.add(t.addr)
            heldByOthers.add(t.addr)
          }
          const got = lease.keys
          mine = mine.filter((t) => got.has(t.addr))
        }
      }
      let todo = mine
      if (mine.length > 0 && !(op.alone && op.recompute)) {
        // A concurrent caller (in this process, or a worker that stored its batch and released it
        // between our scan and our claim) may have stored exactly this computation: skip tasks
        // whose stored row was computed from the same inputs with the same code.
        const stored = await metaRows(this.#engine, x.name, mine.map((t) => t.addr))
        todo = mine.filter((t) => {
          const s = stored.get(t.addr)
          return s === undefined || s.lq_code_version !== x.codeVersion || s.lq_inputs !== recordedInputs(x, t) || s.lq_max_input_rev !== t.maxRev || (t.inputHash !== undefined && s.lq_input_hash !== t.inputHash)
        })
      }
      const { results, abandoned } = await this.#compute(x, todo, op)
      // Fencing: results of rows another worker took over (our lease expired) are refused; the
      // monotonic guard judges the rest.
      const token = lease?.token
      await writeResults(this.#engine, x, results, report, token === undefined ? undefined : (trx, keys) => this.#claimD.fence(trx, x.name, keys, token))
      // Calls abandoned by an abort were not stored: concurrent callers waiting on them run them.
      if (abandoned) throw new Aborted()
      done(heldByOthers)
    } catch (e) {
      fail(e)
      throw e
    } finally {
      this.#flights.delete(flight)
      if (lease !== undefined) await op.keeper.release(lease)
    }
    // A shared task whose caller failed (its function ran, but its write did not commit) is run
    // again here: its result must not be dropped while this call goes on to advance the watermark.
    const settled = await untilAborted(Promise.allSettled(waits.map((w) => w.done)), op)
    const retry = waits.filter((_, i) => settled[i]!.status === 'rejected').map((w) => w.task)
    // Tasks the other caller found held by another worker: left behind here too.
    waits.forEach((w, i) => {
      const st = settled[i]!
      if (st.status === 'fulfilled' && st.value.has(w.task.addr)) leftOf(op, x.name).held.add(w.task.addr)
    })
    if (retry.length > 0) await this.#run(x, retry, report, op)
  }

  /**
   * Run the function on every task of a batch. Calls still pending after the timeout (the
   * derivation's, else the call's, else the store's) become `failed` results with a timeout
   * cause; when the operation is aborted, pending calls are abandoned (`abandoned`: their tasks
   * have no result) and the settled ones are returned. One timer serves the whole batch: its
   * calls all start together.
   */
  async #compute(x: Derivation, tasks: readonly Task[], op: Op): Promise<{ results: Result[]; abandoned: boolean }> {
    const out: (Result | undefined)[] = new Array(tasks.length)
    const pending: { i: number; p: PromiseLike<unknown> }[] = []
    const limit = x.timeoutMs ?? op.timeoutMs ?? this.#timeoutMs
    // One signal per batch, made when a function first reads it: it is aborted when the batch's
    // pending calls time out or are abandoned, which is all a call still running can learn.
    let ac: AbortController | undefined
    const signalOf = (): AbortSignal => (ac ??= new AbortController()).signal
    // With a concurrency limit, calls start as slots free up: each call has its own timer and
    // signal (the batch's timer would count the time a call waited for a slot).
    const lim = op.limit
    const perCall = lim !== undefined
    tasks.forEach((task, i) => {
      const bad = task.upstream.find((u) => u.state !== 'ok')
      if (bad !== undefined) {
        out[i] = { task, outcome: blockedBy(bad.table, bad.addr, bad.state, bad.error) }
        return
      }
      // A single-root address with one lineage entry is that entry's key (no second parse).
      const own = perCall ? new AbortController() : undefined
      const ctx: DeriveContext = {
        table: x.name,
        key: x.singleRoot && task.lineage.length === 1 ? task.lineage[0]!.key : addressValue(task.addr),
        lineage: task.lineage,
        params: x.params,
        get signal() {
          return own === undefined ? signalOf() : AbortSignal.any([own.signal, signalOf()])
        },
      }
      try {
        const v = lim === undefined ? x.fn(task.input, ctx) : lim(() => (limit === undefined ? x.fn(task.input, ctx) : withinTimeout(() => x.fn(task.input, ctx), limit, own!)))
        if (isThenable(v)) pending.push({ i, p: v })
        else out[i] = { task, outcome: checkOutput(x, v) }
      } catch (e) {
        out[i] = { task, outcome: failure(e) }
      }
    })
    let abandoned = false
    if (pending.length > 0) {
      await new Promise<void>((resolve) => {
        let left = pending.length
        let closed = false
        const finish = () => {
          if (closed) return
          closed = true
          if (timer !== undefined) clearTimeout(timer)
          op.signal?.removeEventListener('abort', onAbort)
          resolve()
        }
        const settle = (i: number, outcome: Outcome) => {
          if (closed || out[i] !== undefined) return
          out[i] = { task: tasks[i]!, outcome }
          if (--left === 0) finish()
        }
        for (const { i, p } of pending) Promise.resolve(p).then((val) => settle(i, checkOutput(x, val)), (e: unknown) => settle(i, e instanceof CallTimedOut ? timedOut(x, tasks[i]!, e.limit) : failure(e)))
        const timer =
          limit === undefined || perCall
            ? undefined
            : setTimeout(() => {
                for (const { i } of pending) if (out[i] === undefined) out[i] = { task: tasks[i]!, outcome: timedOut(x, tasks[i]!, limit) }
                ac?.abort(new LineageQueryError('aborted', `derived table \`${x.name}\`: the call timed out after ${limit} ms`, { table: x.name }))
                finish()
              }, limit)
        const onAbort = () => {
          abandoned = pending.some(({ i }) => out[i] === undefined)
          if (abandoned) ac?.abort(op.signal!.reason)
          finish()
        }
        if (op.signal?.aborted === true) onAbort()
        else op.signal?.addEventListener('abort', onAbort, { once: true })
      })
    }
    return { results: abandoned ? out.filter((r): r is Result => r !== undefined) : (out as Result[]), abandoned }
  }

  // ---------------------------------------------------------------- watch

  /**
   * Watch mode: a worker that reacts to root writes and computes what went stale, until
   * `stop()` or `options.signal`. It wakes on root writes without scanning the tables (PostgreSQL:
   * `LISTEN/NOTIFY` from the root triggers, given a listening connection in `options.listen`;
   * otherwise the store clock, one cheap read every `pollMs`), re-checks the code versions when
   * a `dependsOn` file changes, defers rows whose root rows changed less than `debounceMs` ago,
   * and claims its batches like `refresh` (any number of workers, in any number of processes).
   * `stop()` finishes the batch in progress, stores it, releases the claims and resolves
   * `stopped`; a non-retryable error (not a busy or unreachable database) rejects `stopped`.
   *
   * @example
   * ```ts
   * const ac = new AbortController()
   * const w = store.watch({ debounceMs: 2000, concurrency: 16, leaseMs: 60_000, signal: ac.signal })
   * await w.stopped
   * ```
   */
  watch(options: StoreWatchOptions = {}): Watcher {
    if (typeof options !== 'object' || options === null) throw new LineageQueryError('argument', `store.watch expects an options object, got ${showValue(options)}`)
    const debounceMs = nonNegative(options.debounceMs, 'watch: options.debounceMs') ?? 0
    const pollMs = positive(options.pollMs, 'watch: options.pollMs') ?? POLL_MS
    const leaseMs = positive(options.leaseMs, 'watch: options.leaseMs') ?? this.#leaseMs
    positive(options.concurrency, 'watch: options.concurrency')
    positive(options.batchSize, 'watch: options.batchSize')
    positive(options.timeoutMs, 'watch: options.timeoutMs')
    const signal = checkSignal(options.signal, 'watch')
    if (options.onProgress !== undefined && typeof options.onProgress !== 'function') throw new LineageQueryError('argument', `watch: options.onProgress must be a function, got ${showValue(options.onProgress)}`)
    if (options.listen !== undefined && typeof options.listen !== 'function') throw new LineageQueryError('argument', `watch: options.listen must be a function returning a node-postgres client to LISTEN on, got ${showValue(options.listen)}`)
    if (options.listen !== undefined && this.#d.name !== 'postgres') throw new LineageQueryError('argument', 'watch: options.listen is for PostgreSQL stores (LISTEN/NOTIFY); a SQLite store watches its clock')
    const refreshOptions: RefreshOptions = {
      ...(options.batchSize === undefined ? {} : { batchSize: options.batchSize }),
      ...(options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs }),
      ...(options.concurrency === undefined ? {} : { concurrency: options.concurrency }),
      leaseMs,
    }
    const emit = options.onProgress
    const transient = (e: unknown) => emit?.({ kind: 'error', wave: 0, error: e, retryInMs: pollMs })
    const host: WatchHost = {
      wave: (o) => this.#refreshAll({ ...refreshOptions, onProgress: o.onProgress }, { waitForOthers: false, drain: o.drain, settling: o.settling }),
      changes: async (since) => {
        const clock = (await this.#d.readClock(this.#db)).rev
        const rows: { table: string; key: string; rev: number }[] = []
        if (since !== undefined) for (const root of this.#roots.keys()) for (const r of await this.#claimD.changedSince(this.#db, revTable(root), since, CHANGES_MAX)) rows.push({ table: root, key: r.key, rev: r.rev })
        return { clock, rows }
      },
      sources: async (wake) => {
        const out: WakeSource[] = []
        const listen = options.listen
        if (listen !== undefined) {
          const schema = (await sql<{ s: string }>`SELECT current_schema() AS s`.execute(this.#db)).rows[0]!.s
          out.push(await listenRoots(await listen(), schema, (table) => this.#roots.has(table) && wake('root-write'), transient))
        } else {
          out.push(pollClock(async () => (await this.#d.readClock(this.#db)).rev, pollMs, () => wake('root-write'), transient))
        }
        const files = [...this.#versionInputs.values()].flatMap((v) => v.dependsOn ?? [])
        if (files.length > 0) out.push(watchFiles(files, () => wake('code'), transient))
        return out
      },
      recheckCode: async () => this.#recheckCode(),
      releaseAll: async () => {},
    }
    return startWatch(host, { debounceMs, ...(signal === undefined ? {} : { signal }), ...(emit === undefined ? {} : { onProgress: emit }), ...(options.recheckMs === undefined ? {} : { recheckMs: options.recheckMs }) }, Math.min(Math.floor(leaseMs / 4), 1000))
  }

  /** Recompute the code versions of derivations with `dependsOn` files; whether one changed (its rows become `code-changed`). */
  #recheckCode(): boolean {
    let changed = false
    for (const [name, input] of this.#versionInputs) {
      const x = this.#derivations.get(name)
      if (x === undefined || input.dependsOn === undefined || input.dependsOn.length === 0) continue
      let v: string
      try {
        v = codeVersion(input)
      } catch {
        // A file being rewritten may be missing for a moment: the next change looks again.
        continue
      }
      if (v === x.codeVersion) continue
      this.#derivations.set(name, { ...x, codeVersion: v })
      this.#ready.delete(name)
      changed = true
    }
    return changed
  }

  // ---------------------------------------------------------------- on demand

  /**
   * Demand one derived row: compute it, and the upstream rows it needs, if missing or stale.
   * `key` is the root key for a single-root derivation, else the list of root `{ table, key }`
   * entries; the row's `lq_key` text is accepted too (see docs/derived.md, "Keys").
   * `options.timeoutMs` limits each function call it makes; `options.signal` stops it between
   * steps and while it waits on another caller's call (rejecting with code `aborted`).
   *
   * @example
   * ```ts
   * const r = await store.get(compiled, 7)
   * if (r.state === 'fresh') console.log(r.value.code)
   * ```
   */
  async get<Row>(table: DerivedTable<string, Row> | string, key: unknown, options: GetOptions = {}): Promise<GetResult<Row>> {
    if (typeof options !== 'object' || options === null) throw new LineageQueryError('argument', `store.get expects an options object as its third argument, got ${showValue(options)}`)
    const timeoutMs = positive(options.timeoutMs, 'get: options.timeoutMs')
    const signal = checkSignal(options.signal, 'get')
    const op = this.#begin({ signal, timeoutMs })
    try {
      throwIfAborted(op)
      await this.#ensureAll()
      const x = this.#resolve(table, 'get')
      await this.#checkRoots(x.roots)
      const addr = this.#address(x, key, 'store.get')
      await this.#demand(x, addr, op)
      return (await this.#read(x, addr)) as GetResult<Row>
    } catch (e) {
      if (e instanceof Aborted) throw abortedError('store.get', op)
      throw e
    } finally {
      op.keeper.stop()
      try {
        await op.keeper.releaseAll()
      } finally {
        this.#end(op)
      }
    }
  }

  async #demand(x: Derivation, addr: string, op: Op): Promise<void> {
    // Upstream comprehension tables (addressed by lineage, not by root key): which of their rows
    // this row reads is not known from its address, so they are brought up to date whole, by an
    // incremental refresh of them and their ancestors (its cost follows their changed rows).
    if (x.source.kind === 'query') {
      for (const r of x.reads) {
        const u = this.#derivations.get(r)
        if (u !== undefined && !keyAddressed(this.#engine, u)) await this.#catchUp(u, op)
      }
    }
    for (const [u, a] of this.#upstreamCandidates(x, addr)) await this.#demand(u, a, op)
    throwIfAborted(op)
    const engine = this.#engine
    const clock = await this.#d.readClock(this.#db)
    const work = (await scan(engine, x, { mode: 'keys', keys: [addr] }, clock)).get(addr)
    if (work === undefined) return
    if (work.action === 'delete') {
      await deleteRows(engine, x, [addr], {})
      return
    }
    const { keyable, failed } = splitUnkeyable(x, [work])
    await writeResults(engine, x, failed, emptyTableReport())
    const tasks = await loadTasks(engine, x, keyable)
    await this.#run(x, tasks, emptyTableReport(), op)
    await writeResults(engine, x, await lostKeys(engine, x, keyable, tasks), emptyTableReport())
    // Another worker holds the row: wait for its result (or its lease to expire), then look again.
    await this.#leftBehind(x, op, () => this.#demand(x, addr, op))
  }

  /** Refresh `u` and every derived table it reads, incrementally, in dependency order. */
  async #catchUp(u: Derivation, op: Op): Promise<void> {
    const wanted = this.#ancestors(u.name)
    const report: Record<string, TableReport> = {}
    for (const name of this.#order) {
      const y = this.#derivations.get(name)
      if (y === undefined || !wanted.has(name)) continue
      report[name] = emptyTableReport()
      await this.#refreshTable(y, false, undefined, report, op)
    }
  }

  /**
   * Upstream (derived table, address) pairs a row at `addr` of `x` may read, for upstream
   * tables addressed by root keys (`keyAddressed`); comprehension tables are caught up whole
   * (see `#demand`).
   */
  #upstreamCandidates(x: Derivation, addr: string): [Derivation, string][] {
    if (x.source.kind === 'root') return []
    if (x.source.kind === 'derived') return [[this.#derivations.get(x.source.table)!, addr]]
    if (x.source.kind === 'zip') return x.source.parts.map((p) => [this.#derivations.get(p.table)!, addr])
    const entries = lineageOfAddress(addr, x.roots)
    const out: [Derivation, string][] = []
    for (const r of x.reads) {
      const u = this.#derivations.get(r)
      if (u === undefined || !keyAddressed(this.#engine, u)) continue
      for (const k of new Set(entries.filter((e) => e.table === u.roots[0]).map((e) => keyText(e.key)))) out.push([u, k])
    }
    return out
  }

  async #read(x: Derivation, addr: string): Promise<GetResult<unknown>> {
    const meta = (await metaRows(this.#engine, x.name, [addr])).get(addr)
    if (meta === undefined) return { state: 'missing', causes: [{ kind: 'no-input', table: x.name, key: addressValue(addr) }] }
    if (meta.lq_state === 'failed') {
      const e = JSON.parse(meta.lq_error ?? '{}') as { message?: string; stack?: string | null }
      return { state: 'failed', error: { message: e.message ?? '', stack: e.stack ?? undefined }, causes: [errorCause(x.name, meta)] }
    }
    if (meta.lq_state === 'blocked') return { state: 'blocked', causes: [blockedCause(meta)] }
    const rows = await run(this.#db, Q.for(x.table, (r: any) => Q.where(Q.eq(r.lq_key, addr), Q.yield(r))) as Query<Record<string, unknown>, never>)
    const row = rows[0] as Record<string, unknown> | undefined
    if (row === undefined) return { state: 'missing', causes: [{ kind: 'missing', table: x.name, key: addressValue(addr) }] }
    return { state: 'fresh', value: withoutKey(row), lineage: lineageOfAddress(addr, x.roots) }
  }

  // ---------------------------------------------------------------- staleness

  /**
   * The state of one derived row and why: `fresh`, `stale` (with causes), `missing`, `failed`
   * (cause `error`) or `blocked` (cause `upstream-failed`). Upstream rows that are stale make
   * this one stale too (cause `upstream-stale`).
   *
   * @example
   * ```ts
   * await store.status(compiled, 7)
   * // { table: 'compiled', key: 7, state: 'stale', causes: [{ kind: 'upstream-stale', table: 'parsed', key: 7 }] }
   * ```
   */
  async status(table: DerivedTable<string, any> | string, key: unknown): Promise<RowStatus> {
    await this.#ensureAll()
    const x = this.#resolve(table, 'status')
    const addr = this.#address(x, key, 'store.status')
    const st = await this.#status(x, addr, new Map())
    if (st.state !== 'stale' && st.state !== 'missing') return st
    // A worker computing it now: `running`, with its lease.
    const c = (await this.#claimD.held(this.#db, x.name)).find((h) => h.key === addr)
    return c === undefined ? st : { ...st, state: 'running', lease: { owner: c.owner, expires: c.expires } }
  }

  async #status(x: Derivation, addr: string, memo: Map<string, Promise<RowStatus>>): Promise<RowStatus> {
    const memoKey = `${x.name}\u0000${addr}`
    const hit = memo.get(memoKey)
    if (hit !== undefined) return hit
    const p = this.#statusUncached(x, addr, memo)
    memo.set(memoKey, p)
    return p
  }

  async #statusUncached(x: Derivation, addr: string, memo: Map<string, Promise<RowStatus>>): Promise<RowStatus> {
    const engine = this.#engine
    const key = addressValue(addr)
    const meta = (await metaRows(engine, x.name, [addr])).get(addr)
    let causes: Cause[]
    // A comprehension row's causes from its recorded inputs, without evaluating it; unless the
    // comprehension reads tables outside its generators, whose changes only its evaluation shows.
    if (x.source.kind === 'query' && meta !== undefined && readsFor(x).opaque.size === 0) {
      causes = (await recordedCauses(engine, x, [meta])).get(addr) ?? []
    } else {
      const clock = await this.#d.readClock(this.#db)
      causes = (await scan(engine, x, { mode: 'keys', keys: [addr] }, clock)).get(addr)?.causes ?? []
    }
    const upstream: [Derivation, string][] =
      x.source.kind === 'derived'
        ? [[this.#derivations.get(x.source.table)!, addr]]
        : x.source.kind === 'zip'
          ? x.source.parts.map((p) => [this.#derivations.get(p.table)!, addr] as [Derivation, string])
          : meta === undefined
          ? []
          : parseInputs(meta.lq_inputs).flatMap(([t, k]) => (this.#derivations.has(t) ? [[this.#derivations.get(t)!, k]] : []))
    for (const [u, a] of upstream) {
      const s = await this.#status(u, a, memo)
      if (s.state === 'stale' || (s.state === 'missing' && !s.causes.some((c) => c.kind === 'no-input'))) causes.push({ kind: 'upstream-stale', table: u.name, key: addressValue(a) })
    }
    if (meta === undefined) {
      return { table: x.name, key, state: 'missing', causes: causes.length > 0 ? causes : [{ kind: 'no-input', table: x.name, key }] }
    }
    if (causes.length > 0) return { table: x.name, key, state: 'stale', causes }
    if (meta.lq_state === 'failed') return { table: x.name, key, state: 'failed', causes: [errorCause(x.name, meta)] }
    if (meta.lq_state === 'blocked') return { table: x.name, key, state: 'blocked', causes: [blockedCause(meta)] }
    return { table: x.name, key, state: 'fresh', causes: [] }
  }

  /**
   * Every stale or missing row (of one table, or of all), with causes. Driven by the revision
   * watermarks: rows written since the last refresh, rows computed with another code version,
   * and, transitively, rows downstream of those.
   */
  async stale(table?: DerivedTable<string, any> | string): Promise<RowStatus[]> {
    await this.#ensureAll()
    const target = table === undefined ? undefined : this.#resolve(table, 'stale')
    await this.#checkRoots(target?.roots)
    const wanted = target === undefined ? undefined : this.#ancestors(target.name)
    const engine = this.#engine
    const dirty = new Map<string, Map<string, RowStatus>>()
    for (const name of this.#order) {
      const x = this.#derivations.get(name)
      if (x === undefined || (wanted !== undefined && !wanted.has(name))) continue
      const clock = await this.#d.readClock(this.#db)
      const wm = await this.#watermark(x)
      const work = await scan(engine, x, { mode: 'since', wm: wm.wm, codeChanged: wm.applied !== x.codeVersion }, clock)
      const mine = new Map<string, RowStatus>()
      for (const w of work.values()) mine.set(w.addr, { table: name, key: addressValue(w.addr), state: w.stored ? 'stale' : 'missing', causes: w.causes })
      const merge = (addr: string, cause: Cause, state: 'stale' | 'missing') => {
        const cur = mine.get(addr)
        if (cur === undefined) mine.set(addr, { table: name, key: addressValue(addr), state, causes: [cause] })
        else mine.set(addr, { ...cur, causes: [...cur.causes, cause] })
      }
      for (const u of x.reads) {
        const ups = dirty.get(u)
        if (ups === undefined || ups.size === 0) continue
        if (x.source.kind !== 'query') {
          const keys = [...ups.keys()]
          const stored = await metaRows(engine, name, keys)
          for (const k of keys) {
            const cause: Cause = { kind: 'upstream-stale', table: u, key: addressValue(k) }
            if (stored.has(k)) merge(k, cause, 'stale')
            else if (ups.get(k)!.state === 'missing') merge(k, cause, 'missing')
          }
        } else {
          const text = `SELECT src_key, dst_key FROM lq_edge WHERE src_table = ${this.#d.ph(1)} AND src_key IN (${this.#d.jsonTexts(this.#d.ph(2))}) AND dst_table = ${this.#d.ph(3)}`
          for (const part of chunks([...ups.keys()], KEY_CHUNK)) {
            const r = await exec<{ src_key: string; dst_key: string }>(this.#db, text, [u, jsonBatch(part, this.#d), name])
            for (const e of r) merge(e.dst_key, { kind: 'upstream-stale', table: u, key: addressValue(e.src_key) }, 'stale')
          }
        }
      }
      dirty.set(name, mine)
    }
    const out: RowStatus[] = []
    for (const [name, rows] of dirty) {
      if (target !== undefined && name !== target.name) continue
      // Rows a worker is computing now carry its lease.
      const held = rows.size === 0 ? new Map() : new Map((await this.#claimD.held(this.#db, name)).map((c) => [c.key, c]))
      for (const [addr, r] of rows) {
        const c = held.get(addr)
        out.push(c === undefined ? r : { ...r, lease: { owner: c.owner, expires: c.expires } })
      }
    }
    return out
  }

  #ancestors(name: string): Set<string> {
    const out = new Set<string>()
    const visit = (n: string) => {
      if (out.has(n) || !this.#derivations.has(n)) return
      out.add(n)
      for (const r of this.#derivations.get(n)!.reads) visit(r)
    }
    visit(name)
    return out
  }

  // ---------------------------------------------------------------- provenance

  /**
   * Every derived row fed, transitively, by one root row: `[{ table, key }]` in dependency
   * order (`key` is each row's address in user form), whether computed yet or not, so it agrees
   * with `stale()`:
   *
   * - a derivation over one table (or `joinOnRoot`): the row at the same address when it is
   *   stored, or when its input rows exist (a row not yet computed: `stale()` lists it missing);
   * - a derivation over a comprehension: the stored rows `lq_edge` says the row fed, plus, when
   *   the root row was written since the table's last refresh, the rows the comprehension now
   *   yields from it (its generators over the root restricted to the row: rows not computed
   *   yet, or whose lineage changed);
   * - a comprehension that reads the root outside its generators (inside an aggregate, `exists`,
   *   a nested collection, or `{ lineage: false }`) or has `limit`: every one of its rows may
   *   depend on any root row, so all of its stored rows, plus, when the root row was written
   *   since its last refresh, every row of its current result.
   *
   * Rows of a comprehension over derived rows that are not computed yet are not known (their
   * upstream rows do not exist yet); they appear once those are computed.
   */
  async affected(root: Table<string, any, any> | string, key: unknown): Promise<SourceRow[]> {
    await this.#ensureAll()
    const rootName = typeof root === 'string' ? root : root instanceof Table ? root.name : undefined
    if (rootName === undefined || !this.#roots.has(rootName)) {
      throw new LineageQueryError('argument', `store.affected expects a tracked root table, got ${rootName !== undefined ? `\`${rootName}\`, which is not tracked` : showValue(root)}; tracked: ${[...this.#roots.keys()].join(', ') || '(none)'}`, { table: rootName })
    }
    const engine = this.#engine
    const found = new Map<string, Set<string>>()
    const rootKey = rootKeyText(key, this.#keyKinds(rootName)!, rootName, 'store.affected')
    // One primary-key probe (a JSON key list would let PostgreSQL plan a hash join over the table).
    const rootLive = (await exec<{ one: unknown }>(this.#db, `SELECT 1 AS one FROM ${q(revTable(rootName))} WHERE lq_key = ${this.#d.ph(1)} AND deleted = 0`, [rootKey])).length > 0
    const frontier = new Map<string, Set<string>>([[rootName, new Set([rootKey])]])
    // Keys of each table that exist, or would once computed (not necessarily stored).
    const present = new Map<string, Set<string>>([[rootName, rootLive ? new Set([rootKey]) : new Set()]])
    let clock: Watermark | undefined
    for (const name of this.#order) {
      const keys = frontier.get(name)
      if (keys === undefined || keys.size === 0) continue
      for (const y of readersOf(engine, name)) {
        const hit = frontier.get(y.name) ?? new Set<string>()
        const live = present.get(y.name) ?? new Set<string>()
        const d = this.#d
        const one = keys.size === 1
        const list = (part: readonly string[]) => (one ? part[0] : jsonBatch(part, this.#d))
        const inKeys = (p: number) => (one ? `= ${d.ph(p)}` : `IN (${d.jsonTexts(d.ph(p))})`)
        for (const part of chunks([...keys], KEY_CHUNK)) {
          if (y.source.kind !== 'query') {
            for (const row of await exec<{ lq_key: string }>(this.#db, `SELECT lq_key FROM ${q(metaTable(y.name))} WHERE lq_key ${inKeys(1)} AND ${LIVE_TEXT}`, [list(part)])) {
              hit.add(row.lq_key)
              live.add(row.lq_key)
            }
          } else {
            const text = `SELECT dst_key FROM lq_edge WHERE src_table = ${d.ph(1)} AND src_key ${inKeys(2)} AND dst_table = ${d.ph(3)}`
            for (const row of await exec<{ dst_key: string }>(this.#db, text, [name, list(part), y.name])) hit.add(row.dst_key)
          }
        }
        // Rows not computed yet.
        if (y.source.kind === 'root' || y.source.kind === 'derived') {
          for (const k of present.get(name) ?? []) {
            hit.add(k)
            live.add(k)
          }
        } else if (y.source.kind === 'zip') {
          const parts = y.source.parts.map((p) => p.table)
          for (const k of present.get(name) ?? []) {
            let all = true
            for (const p of parts) {
              if (p === name || present.get(p)?.has(k) === true) continue
              if (!(await metaRows(engine, p, [k])).has(k)) all = false
            }
            if (all) {
              hit.add(k)
              live.add(k)
            }
          }
        } else if (this.#roots.has(name)) {
          const wm = (await this.#watermark(y)).wm
          const clockNow = async () => (clock ??= await this.#d.readClock(this.#db))
          for (const k of await fedByRoot(engine, y, name, [...keys], wm, clockNow)) {
            hit.add(k)
            live.add(k)
          }
        }
        frontier.set(y.name, hit)
        present.set(y.name, live)
        found.set(y.name, hit)
      }
    }
    const out: SourceRow[] = []
    for (const name of this.#order) for (const k of found.get(name) ?? []) out.push({ table: name, key: addressValue(k) })
    return out
  }

  /**
   * `run(db, lineage(q))` once this store's tables exist (kept for compatibility): derived
   * tables declare stored lineage, so entries already name root rows, in nested collections too.
   * @example `await store.lineage(Q.for(results, (r) => Q.yield(r.value)))` // [{ data: 14, lineage: [{ table: 'programs', key: 2 }] }]
   */
  async lineage<T, K>(query: Query<T, K>): Promise<{ data: Plain<T>; lineage: SourceRow[] }[]> {
    await this.#ensureAll()
    return (await run(this.#db, lineageOf(query))) as unknown as { data: Plain<T>; lineage: SourceRow[] }[]
  }


  /** The current revision of a root row, or `undefined` when it has none (never written, or deleted). */
  async revision(root: Table<string, any, any> | string, key: unknown): Promise<number | undefined> {
    const name = typeof root === 'string' ? root : root.name
    if (!this.#roots.has(name)) throw new LineageQueryError('argument', `store.revision: \`${name}\` is not a tracked root table`)
    const r = await sql<{ rev: unknown; deleted: unknown }>`SELECT rev, deleted FROM ${sql.id(revTable(name))} WHERE lq_key = ${rootKeyText(key, this.#keyKinds(name)!, name, 'store.revision')}`.execute(this.#db)
    const row = r.rows[0]
    return row === undefined || Number(row.deleted) === 1 ? undefined : Number(row.rev)
  }

  // ---------------------------------------------------------------- store maintenance

  /** The store's clock: the newest revision handed out. Pass a value read now to a later `collect`. */
  async clock(): Promise<number> {
    return (await this.#d.readClock(this.#db)).rev
  }

  /**
   * Derived tables in the store that no declaration of this program names (renamed or removed
   * derivations, or another program's): their rows are no longer kept up to date by this
   * program. Sorted names; `drop` removes one.
   */
  async undeclared(): Promise<string[]> {
    const r = await sql<{ name: string }>`SELECT name FROM lq_derived ORDER BY name`.execute(this.#db)
    return r.rows.map((x) => x.name).filter((n) => !this.#derivations.has(n))
  }

  /**
   * Remove a derived table this program does not declare (see `undeclared`): its data and
   * metadata tables, its lineage edges and its `lq_derived` row. Declared tables, roots and
   * unknown names are an `argument` error.
   */
  async drop(name: string): Promise<void> {
    if (typeof name !== 'string') throw new LineageQueryError('argument', `store.drop expects the name of a derived table, got ${showValue(name)}`)
    if (this.#derivations.has(name)) throw new LineageQueryError('argument', `store.drop: \`${name}\` is declared by this program; remove its declaration first (only undeclared derived tables can be dropped)`, { table: name })
    if (this.#roots.has(name)) throw new LineageQueryError('argument', `store.drop: \`${name}\` is a tracked root table, not a derived table`, { table: name })
    const known = await sql<{ name: string }>`SELECT name FROM lq_derived WHERE name = ${name}`.execute(this.#db)
    if (known.rows.length === 0) {
      throw new LineageQueryError('argument', `store.drop: \`${name}\` is not a derived table of this store; undeclared derived tables: ${(await this.undeclared()).join(', ') || '(none)'}`, { table: name })
    }
    await startupDialects[this.#d.name].writeTransaction(this.#db, async (trx) => {
      await sql.raw(`DROP TABLE IF EXISTS ${q(name)}`).execute(trx)
      await sql.raw(`DROP TABLE IF EXISTS ${q(metaTable(name))}`).execute(trx)
      await sql`DELETE FROM lq_edge WHERE dst_table = ${name}`.execute(trx)
      await sql`DELETE FROM lq_derived WHERE name = ${name}`.execute(trx)
      await sql`DELETE FROM lq_store_meta WHERE name = ${collectedName(name)}`.execute(trx)
    })
  }

  /**
   * Remove tombstones: revision rows of deleted root rows (of the roots this program tracks) and
   * metadata rows of deleted derived rows (of the tables it declares), written at or before
   * revision `olderThan` and already seen by the last refresh of every derived table in the store (below
   * every watermark). Returns how many of each were removed.
   *
   * `olderThan` must be a clock value (`store.clock()`) read before every computation still
   * running started, in any process. A late result, computed from inputs read before a
   * tombstone it would have been refused by, is still refused after the tombstone is gone: a
   * root key with no revision row counts as deleted at the highest collected revision, and a
   * comprehension result for an address with no metadata row is refused when evaluated before
   * the highest collected tombstone of its table (see `write.ts`).
   */
  async collect(options: { readonly olderThan: number }): Promise<{ revisions: number; tombstones: number }> {
    const olderThan = (options as { olderThan?: unknown } | undefined)?.olderThan
    if (typeof olderThan !== 'number' || !Number.isSafeInteger(olderThan) || olderThan < 0) {
      throw new LineageQueryError('argument', `store.collect expects { olderThan: revision }, a clock value read with store.clock() before every computation still running started; got ${showValue(olderThan)}`)
    }
    await this.#ensureAll()
    const wms = (await sql<{ wm_rev: unknown; wm_xmin: string | null }>`SELECT wm_rev, wm_xmin FROM lq_derived`.execute(this.#db)).rows
    // Revisions up to `horizon`: not after `olderThan`, and at or below every watermark (seen).
    let horizon = olderThan
    // PostgreSQL: and written by a transaction every watermark's snapshot sees as committed.
    const snapshots = new Set<string>()
    for (const w of wms) {
      horizon = Math.min(horizon, Number(w.wm_rev))
      if (w.wm_xmin !== null) snapshots.add(w.wm_xmin)
    }
    const out = { revisions: 0, tombstones: 0 }
    if (horizon <= 0) return out
    const d = this.#d
    const sd = startupDialects[d.name]
    const sweep = async (table: string, cond: string, revCol: string, xidCol: string, owner: string): Promise<number> => {
      const snaps = d.xidColumn === undefined ? [] : [...snapshots]
      const xidCond = snaps.map((sn, i) => ` AND ${/^\d+$/.test(sn) ? `${xidCol} < CAST(${d.ph(i + 2)} AS xid8)` : `pg_visible_in_snapshot(${xidCol}, CAST(${d.ph(i + 2)} AS pg_snapshot))`}`).join('')
      const params = [horizon, ...snaps]
      const where = `${cond} AND ${revCol} <= ${d.ph(1)}${xidCond}`
      return sd.writeTransaction(this.#db, async (trx) => {
        const m = (await exec<{ m: unknown }>(trx, `SELECT max(${revCol}) AS m FROM ${q(table)} WHERE ${where}`, params))[0]?.m
        if (m === null || m === undefined) return 0
        const prev = (await exec<{ value: string }>(trx, `SELECT value FROM lq_store_meta WHERE name = ${d.ph(1)}`, [collectedName(owner)]))[0]?.value
        const top = Math.max(Number(m), prev === undefined ? 0 : Number(prev))
        await exec(trx, `INSERT INTO lq_store_meta (name, value) VALUES (${d.ph(1)}, ${d.ph(2)}) ON CONFLICT (name) DO UPDATE SET value = excluded.value`, [collectedName(owner), String(top)])
        return Number((await trx.executeQuery(CompiledQuery.raw(`DELETE FROM ${q(table)} WHERE ${where}`, params))).numAffectedRows ?? 0)
      })
    }
    for (const root of this.#roots.keys()) out.revisions += await sweep(revTable(root), 'deleted = 1', 'rev', 'xid', root)
    for (const x of this.#derivations.values()) out.tombstones += await sweep(metaTable(x.name), `lq_state = 'deleted'`, 'lq_changed_rev', 'lq_xid', x.name)
    return out
  }

  // ---------------------------------------------------------------- helpers

  /** Key column kinds of a tracked root. */
  #keyKinds(root: string): readonly KeyKind[] | undefined {
    const def = this.#roots.get(root)?.def
    return def?.key?.map((c) => def.byName.get(c)!.type.kind as KeyKind)
  }

  /** The address of a key a user passes for a row of `x` (see `addressFromUserChecked`). */
  #address(x: Derivation, key: unknown, what: string): string {
    return addressFromUserChecked(key, x.singleRoot, { table: x.name, roots: x.roots, kinds: (r) => (x.roots.includes(r) ? this.#keyKinds(r) : undefined), what })
  }

  #resolve(table: DerivedTable<string, any> | string, what: string): Derivation {
    const name = typeof table === 'string' ? table : table instanceof Table ? table.name : undefined
    const x = name === undefined ? undefined : this.#derivations.get(name)
    if (x === undefined) {
      throw new LineageQueryError('argument', `store.${what}: ${name === undefined ? showValue(table) : `\`${name}\``} is not a derived table of this store; derived tables: ${[...this.#derivations.keys()].join(', ') || '(none)'}`, {
        table: name,
      })
    }
    return x
  }

  /**
   * Each tracked root (or those named) is still the table its revisions describe: one catalogue
   * read per root. A root dropped and recreated (its triggers are gone, or its OID changed) is
   * tracked again, its rows with new revisions, so the rows derived from the old table become
   * stale; a root that is gone is a `schema` error naming it (see startup.ts).
   */
  async #checkRoots(names: readonly string[] = [...this.#roots.keys()]): Promise<void> {
    for (const name of names) {
      const root = this.#roots.get(name)
      if (root === undefined) continue
      let done: Awaited<ReturnType<typeof ensureTracked>>
      try {
        done = await ensureTracked(this.#db, this.#d, root.def)
      } catch (e) {
        throw fromDriver(e, `checking the tracked root \`${name}\``)
      }
      if (done.backfilled >= ANALYZE_MIN) await this.#d.analyze(this.#db, revTable(name))
    }
  }

  /** Create (or check) the tables of every declared derivation, once per store. */
  async #ensureAll(): Promise<void> {
    for (const x of this.#derivations.values()) {
      let p = this.#ready.get(x.name)
      if (p === undefined) {
        p = retryBusy(this.#d, `creating the tables of \`${x.name}\``, this.#busyMs, () => ensureDerivedTables(this.#db, this.#d, x.def, x.codeVersion))
        this.#ready.set(x.name, p)
        p.catch(() => this.#ready.delete(x.name))
      }
      await p
    }
  }
}

// ---------------------------------------------------------------- pure helpers

/** Rows per function batch and write transaction, by default. */
const BATCH = 500
/** The same, for a first fill (most of the input is new), by default. */
const BULK_BATCH = 5000

/** Rows written by one table's refresh before its tables' statistics are refreshed (PostgreSQL). */
const ANALYZE_MIN = 10_000

/** A refresh or get call in progress; `alone` until another one starts while it runs. */
interface Op {
  alone: boolean
  readonly signal: AbortSignal | undefined
  /** The call's default per-call timeout (`RefreshOptions.timeoutMs` / `GetOptions.timeoutMs`). */
  readonly timeoutMs: number | undefined
  /** The call's leases (claims of batches, heartbeat). */
  readonly keeper: LeaseKeeper
  /** Function calls at once (`RefreshOptions.concurrency`), if limited. */
  readonly limit: Limiter | undefined
  /** Watch: stop after the batch in progress, which is finished and stored (not abandoned). */
  readonly drain: AbortSignal | undefined
  /** Watch: root rows still settling (debounce); their derived rows are deferred. */
  readonly settling: ((table: string, key: string) => boolean) | undefined
  /** Refresh: wait for rows other workers hold, then look again; watch: leave them to a later wave. */
  readonly waitForOthers: boolean
  /** Rows of each table this call left stale: held by another worker, or deferred (settling). */
  readonly leftBehind: Map<string, { held: Set<string>; deferred: number }>
  /** `refresh({ full: true })`: run every function again, even where an identical result is stored. */
  readonly recompute: boolean
}

/** Default lease length (`StoreOptions.leaseMs`). */
const LEASE_MS = 60_000
/** Default period of watch's clock reads (SQLite, or PostgreSQL without `listen`). */
const POLL_MS = 100
/** Changed root rows read per root and wake, for debounce. */
const CHANGES_MAX = 100_000

/** Options of `store.watch`. */
export interface StoreWatchOptions extends WatchOptions {
  /** As `RefreshOptions`. */
  readonly batchSize?: number
  readonly timeoutMs?: number
  readonly concurrency?: number
  readonly leaseMs?: number
  /** Period of the clock reads that notice root writes when not listening (ms; default 100). */
  readonly pollMs?: number
  /**
   * PostgreSQL: a connection to LISTEN on for root writes, e.g. `() => pool.connect()` (a pooled
   * client is released when the watcher stops) or `async () => { const c = new pg.Client(url);
   * await c.connect(); return c }` (ended when it stops). Without it the store clock is polled.
   */
  readonly listen?: () => ListenClient | Promise<ListenClient>
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

function leftOf(op: Op, table: string): { held: Set<string>; deferred: number } {
  let l = op.leftBehind.get(table)
  if (l === undefined) op.leftBehind.set(table, (l = { held: new Set(), deferred: 0 }))
  return l
}

/** Where a refresh sends its progress, and the table it is at. */
interface ProgressSink {
  readonly report: (p: RefreshProgress) => void
  readonly tableIndex: number
  readonly tableCount: number
  readonly started: number
}


/** Rows a table report counts as handled (for progress). */
const handled = (r: TableReport): number => r.computed + r.unchanged + r.failed + r.blocked + r.deleted + r.superseded

/** Internal: the operation's signal fired; turned into an `aborted` LineageQueryError at the public method. */
class Aborted extends Error {}

function throwIfAborted(op: Op): void {
  if (op.signal?.aborted === true || op.drain?.aborted === true) throw new Aborted()
}

function abortedError(what: string, op: Op, report?: RefreshReport): LineageQueryError {
  const reason = op.signal?.reason
  const why = reason instanceof Error ? `: ${reason.message}` : reason === undefined ? '' : `: ${showValue(reason)}`
  const done = report === undefined ? '' : `; ${handled(report.totals)} rows were handled and stored before it stopped (details.report)`
  return new LineageQueryError('aborted', `${what} was aborted${why}${done}. Nothing computed was lost: rows not stored stay stale or missing for the next refresh`, report === undefined ? {} : { report }, { cause: reason })
}

/** `p`, or an `Aborted` rejection as soon as the operation's signal fires. */
function untilAborted<T>(p: Promise<T>, op: Op): Promise<T> {
  const signal = op.signal
  if (signal === undefined) return p
  if (signal.aborted) return Promise.reject(new Aborted())
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(new Aborted())
    signal.addEventListener('abort', onAbort, { once: true })
    p.then(
      (v) => {
        signal.removeEventListener('abort', onAbort)
        resolve(v)
      },
      (e: unknown) => {
        signal.removeEventListener('abort', onAbort)
        reject(e)
      },
    )
  })
}

function checkSignal(signal: unknown, what: string): AbortSignal | undefined {
  if (signal === undefined) return undefined
  if (!(signal instanceof AbortSignal)) throw new LineageQueryError('argument', `${what}: options.signal must be an AbortSignal, got ${showValue(signal)}`)
  return signal
}

/** Let timers and I/O callbacks run (between batches: better-sqlite3 runs statements synchronously). */
const yieldToLoop = (): Promise<void> => new Promise((resolve) => setImmediate(resolve))

/** A call that did not settle within its own timeout (calls under a concurrency limit). */
class CallTimedOut extends Error {
  constructor(readonly limit: number) {
    super(`timed out after ${limit} ms`)
  }
}

/** Run `fn`; reject with `CallTimedOut` (and abort `ac`) when it has not settled after `limit` ms, freeing its slot. */
function withinTimeout(fn: () => unknown, limit: number, ac: AbortController): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      ac.abort(new LineageQueryError('aborted', `the call timed out after ${limit} ms`))
      reject(new CallTimedOut(limit))
    }, limit)
    Promise.resolve()
      .then(fn)
      .then(
        (v) => {
          clearTimeout(timer)
          resolve(v)
        },
        (e: unknown) => {
          clearTimeout(timer)
          reject(e)
        },
      )
  })
}

function timedOut(x: Derivation, task: Task, limit: number): Outcome {
  return { state: 'failed', message: `derived table \`${x.name}\`, row ${task.addr}: the function did not settle within ${limit} ms (timeoutMs); stored as failed, retried when its input or code changes`, stack: undefined, timeoutMs: limit }
}

function nonNegative(n: number | undefined, what: string): number | undefined {
  if (n === undefined) return undefined
  if (!Number.isSafeInteger(n) || n < 0) throw new LineageQueryError('argument', `${what} must be a non-negative integer, got ${showValue(n)}`)
  return n
}

/** A batch of tasks being computed and stored. */
interface Flight {
  readonly table: string
  readonly codeVersion: string
  readonly tasks: readonly Task[]
  /** Built on first look-up by a concurrent caller. */
  byAddr: Map<string, Task> | undefined
  /** Settles when the batch was stored, with the addresses another worker held (not computed here); rejects when it failed. */
  readonly done: Promise<ReadonlySet<string>>
}

function flightTasks(f: Flight): Map<string, Task> {
  f.byAddr ??= new Map(f.tasks.map((t) => [t.addr, t]))
  return f.byAddr
}

function positive(n: number | undefined, what: string): number | undefined {
  if (n === undefined) return undefined
  if (!Number.isSafeInteger(n) || n < 1) throw new LineageQueryError('argument', `${what} must be a positive integer, got ${showValue(n)}`)
  return n
}

const isThenable = (v: unknown): v is PromiseLike<unknown> => typeof v === 'object' && v !== null && typeof (v as { then?: unknown }).then === 'function'

function failure(e: unknown): Outcome {
  if (e instanceof Error) return { state: 'failed', message: e.message, stack: e.stack }
  return { state: 'failed', message: `non-Error thrown: ${showValue(e)}`, stack: undefined }
}

function blockedBy(table: string, addr: string, state: string, error: string | null): Outcome {
  if (state === 'blocked' && error !== null) {
    const b = JSON.parse(error) as { table: string; key: string }
    return { state: 'blocked', table: b.table, key: b.key }
  }
  return { state: 'blocked', table, key: addr }
}

function errorCause(table: string, meta: MetaRow): Cause {
  const e = JSON.parse(meta.lq_error ?? '{}') as { message?: string; timeoutMs?: number }
  if (typeof e.timeoutMs === 'number') return { kind: 'timeout', table, key: addressValue(meta.lq_key), message: e.message ?? '', timeoutMs: e.timeoutMs }
  return { kind: 'error', table, key: addressValue(meta.lq_key), message: e.message ?? '' }
}

function blockedCause(meta: MetaRow): Cause {
  const b = JSON.parse(meta.lq_error ?? '{}') as { table?: string; key?: string }
  return { kind: 'upstream-failed', table: b.table ?? '', key: b.key === undefined ? null : addressValue(b.key) }
}

/** Check a function's result against the declared output; a mismatch is a failed row. */
function checkOutput(x: Derivation, value: unknown): Outcome {
  const bad = (why: string): Outcome => ({ state: 'failed', message: `derived table \`${x.name}\`: the function's result does not match the declared output: ${why}`, stack: undefined })
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return bad(`expected an object with columns ${Object.keys(x.output).join(', ')}, got ${showValue(value)}`)
  const row = value as Record<string, unknown>
  for (const k of Object.keys(row)) if (!(k in x.output)) return bad(`unknown column \`${k}\`; columns: ${Object.keys(x.output).join(', ')}`)
  const out: Record<string, unknown> = {}
  for (const col of x.def.columns) {
    if (col.name === 'lq_key') continue
    const v = row[col.name]
    if (!(col.name in row)) return bad(`missing column \`${col.name}\``)
    if (col.codec.decode(v)._tag === 'Left') return bad(`column \`${col.name}\`: expected ${col.codec.name}, got ${showValue(v)}`)
    if (typeof v === 'number' && (!Number.isFinite(v) || (col.type.kind === 'int' && !Number.isSafeInteger(v)))) return bad(`column \`${col.name}\`: ${v} cannot be stored`)
    if (typeof v === 'string' && v.includes('\u0000')) return bad(`column \`${col.name}\`: strings cannot contain the NUL character`)
    out[col.name] = v
  }
  return { state: 'ok', row: out }
}

/** The tables a `from` reads: a table's name, or every table in a comprehension. */
function readTables(from: unknown, name: string): string[] {
  if (from instanceof Table) return [from.name]
  const node = typeof from === 'object' && from !== null ? (from as { [AST]?: unknown })[AST] : undefined
  if (node === undefined) {
    throw new LineageQueryError('argument', `derived table \`${name}\`: from must be a tracked root table, a derived table, or a comprehension (Q.for ...) over them; got ${showValue(from)}`, { table: name })
  }
  const found = new Set<string>()
  const walk = (n: unknown): void => {
    if (Array.isArray(n)) {
      for (const c of n) walk(c)
      return
    }
    if (typeof n !== 'object' || n === null) return
    const o = n as { kind?: unknown; table?: { name?: unknown } }
    if (o.kind === 'table' && typeof o.table?.name === 'string') {
      found.add(o.table.name)
      return
    }
    for (const v of Object.values(o)) walk(v)
  }
  walk(node)
  if (found.size === 0) throw new LineageQueryError('schema', `derived table \`${name}\`: its comprehension reads no table, so no row could ever be stale`, { table: name })
  return [...found].sort()
}

export type { Work }

// Every public method that reads or writes the database reports driver errors (SQLITE_BUSY after
// the store stopped waiting, "no such column" after a root column was dropped, ...) as a
// LineageQueryError naming the method (see driver-errors.ts); refresh adds the derived table.
for (const method of ['track', 'refresh', 'get', 'status', 'stale', 'affected', 'lineage', 'revision'] as const) {
  const body = Store.prototype[method] as (this: Store, ...args: unknown[]) => Promise<unknown>
  Object.defineProperty(Store.prototype, method, {
    configurable: true,
    writable: true,
    value: async function (this: Store, ...args: unknown[]): Promise<unknown> {
      try {
        return await body.apply(this, args)
      } catch (e) {
        const table = typeof args[0] === 'string' ? args[0] : args[0] instanceof Table ? args[0].name : undefined
        throw fromDriver(e, `store.${method}${table === undefined ? '' : `(\`${table}\`)`}`)
      }
    },
  })
}
