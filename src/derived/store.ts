/**
 * The store: the public API of the derived-data engine and the state it keeps (tracked roots,
 * derivations, tables made ready, calls in progress, claims). Each method checks its
 * arguments (`declare.ts`) and hands over to the phase that does the work:
 *
 * - `track` -> `startup.ts`; `derive` -> `declare.ts`;
 * - `refresh` -> `refresh.ts` (scan, load inputs, claim, compute, write, delete) per derived
 *   table in dependency order; `get` -> `demand.ts`; `watch` -> `watch.ts` (waves of refresh,
 *   woken by `wake.ts`, debounced by `debounce.ts`); leases of every call -> `leases.ts`;
 * - `status`, `stale`, `affected`, `revision` -> `read/`; `undeclared`, `drop`, `collect` ->
 *   `maintenance.ts`.
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
import type { Kysely } from 'kysely'
import { LineageQueryError, showValue } from '../errors.js'
import { dialectOf } from '../query/dialect-of.js'
import { AST, Table, type AnyQuery, type Plain, type Query, type RowOf } from '../query/dsl.js'
import { run } from '../query/run.js'
import { lineage as lineageOf } from '../lineage/index.js'
import { columnReads, type ColumnReads } from '../lineage/columns.js'
import { retryBusy } from './busy.js'
import { InProcessClaims } from './claims.js'
import { checkRootColumns, checkSignal, checkTrackable, declareDerivation, nonNegative, positive, type Codecs, type DeclareContext, type Derive } from './declare.js'
import { demand } from './demand.js'
import { fromDriver, reportDriverErrors } from './driver-errors.js'
import { BUSY_WAIT_MS, type Derivation, type Engine } from './engine.js'
import { buildGraph } from './graph.js'
import { addressFromUserChecked, rootKeyText, type KeyKind } from './keys.js'
import { collect, drop, undeclared } from './maintenance.js'
import { Aborted, abortedError, Ops, throwIfAborted, type Op } from './ops.js'
import { affectedRows } from './read/affected.js'
import { staleRows } from './read/stale.js'
import { revision, rowResult, status } from './read/status.js'
import { refreshTable, type ProgressSink } from './refresh.js'
import type { StoreDialect } from './sql/dialect.js'
import { startupDialects, storeDialects } from './sql/index.js'
import { ensureDerivedTables, migrate } from './sql/schema.js'
import { trackRoot } from './startup.js'
import { DerivedTable, emptyTableReport, type GetOptions, type GetResult, type Graph, type RefreshOptions, type RefreshReport, type RowStatus, type SourceRow, type StoreOptions, type TableReport } from './types.js'
import { claimDialects, type ClaimDialect, type ClaimRow } from './sql/claims.js'
import { LeaseKeeper, ownerId } from './leases.js'
import { limiter } from './limit.js'
import { untilUpstreamReleased } from './refresh.js'
import { codeVersion, type VersionInput } from './version.js'
import { startWatch, type WatchHost, type WatchOptions, type Watcher, type WaveReport } from './watch.js'
import { listenRoots, pollClock, watchFiles, type ListenClient, type WakeSource } from './wake.js'
import { revTable } from './sql/dialect.js'
import { sql } from 'kysely'

export type { Derive, InputOf } from './declare.js'

let nextStoreId = 1

/** Default lease length (`StoreOptions.leaseMs`). */
const LEASE_MS = 60_000
/** Default period of watch's clock reads (SQLite, or PostgreSQL without `listen`). */
const POLL_MS = 100
/** Changed root rows read per root and wake, for debounce. */
const CHANGES_MAX = 100_000

/** Options of `store.watch`. */
export interface StoreWatchOptions extends WatchOptions {
  /** As `RefreshOptions.batchSize`. */
  readonly batchSize?: number
  /** As `RefreshOptions.timeoutMs`. */
  readonly timeoutMs?: number
  /** As `RefreshOptions.concurrency`. */
  readonly concurrency?: number
  /** As `RefreshOptions.leaseMs`. */
  readonly leaseMs?: number
  /** Period of the clock reads that notice root writes when not listening (ms; default 100). */
  readonly pollMs?: number
  /**
   * PostgreSQL: a connection to LISTEN on for root writes, e.g. `() => pool.connect()` (a pooled
   * client, released when the watcher stops) or a function connecting a `pg.Client` of its own
   * (ended when it stops). Called again when the connection is lost (the server ended it, the
   * network failed): the error is reported (`onProgress` event `error`), and a wave runs once
   * the new connection listens. Without it the store clock is read every `pollMs`.
   */
  readonly listen?: () => ListenClient | Promise<ListenClient>
}

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
  /** Who computes which task, among this store's concurrent refresh and get calls. */
  readonly #claims = new InProcessClaims()
  /** Refresh and get calls in progress. */
  readonly #ops = new Ops()
  #order: readonly string[] = []
  /** Default per-call timeout (StoreOptions.timeoutMs). */
  readonly #timeoutMs: number | undefined
  /** How long writes wait for a busy database (StoreOptions.busyTimeoutMs). */
  readonly #busyMs: number
  /** Lease SQL of the dialect. */
  readonly #claimD: ClaimDialect
  /** This store's name in the claim table: every refresh, get and watch of it claims as this worker. */
  readonly #owner = ownerId()
  /** Default lease length (StoreOptions.leaseMs). */
  readonly #leaseMs: number
  /** What each code version was computed from, for re-checks of `dependsOn` files (watch). */
  readonly #versionInputs = new Map<string, VersionInput>()

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

  /** This store's worker name in the claim table (`host:pid:random`), as `RowStatus.lease.owner` shows it. */
  get owner(): string {
    return this.#owner
  }

  #keeper(leaseMs = this.#leaseMs): LeaseKeeper {
    return new LeaseKeeper({ db: this.#db, dialect: this.#claimD, owner: this.#owner, leaseMs })
  }

  get #engine(): Engine {
    return { db: this.#db, d: this.#d, roots: this.#roots, derivations: this.#derivations, busyMs: this.#busyMs, order: this.#order, claims: this.#claims, timeoutMs: this.#timeoutMs }
  }

  get #declare(): DeclareContext {
    return { storeId: this.#id, d: this.#d, roots: this.#roots, derivations: this.#derivations, graph: (extra) => this.#buildGraph(extra) }
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
    const def = checkTrackable(this.#declare, root)
    checkRootColumns(def, await this.#d.columns(this.#db, def.name))
    await trackRoot(this.#db, this.#d, def, `store.track(${def.name})`)
    this.#roots.set(def.name, root)
    this.#order = this.#buildGraph().order
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
    const { derivation, table, order } = declareDerivation(this.#declare, decl)
    this.#derivations.set(derivation.name, derivation)
    // The same inputs declare.ts hashed, kept for watch's re-checks of `dependsOn` files.
    this.#versionInputs.set(derivation.name, { table: decl.name, fn: decl.fn as VersionInput['fn'], version: decl.version, dependsOn: decl.dependsOn, output: decl.output, params: decl.params })
    this.#order = order
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

  /**
   * Which source columns a derived table's rows come from, where its comprehension tells it: for
   * a table whose source is a query, its output columns and the columns each yield field and
   * each condition, grouping or ordering of the query reads (`columnReads`); `fn` turns the
   * yield into the output, so any output column may come from any yield field. Undefined for a
   * function over a table (root, derived or zip source): which columns `fn` reads is opaque.
   * The OpenLineage column-lineage facet is made from it.
   */
  columnLineage(table: DerivedTable<string, any> | string): { readonly outputs: readonly string[]; readonly reads: ColumnReads } | undefined {
    const x = this.#resolve(table, 'columnLineage')
    return x.query === undefined ? undefined : { outputs: Object.keys(x.output), reads: columnReads(x.query[AST]) }
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
    const op = this.#ops.begin({
      signal,
      timeoutMs,
      keeper: this.#keeper(leaseMs),
      concurrency: concurrency === undefined ? undefined : limiter(concurrency),
      recompute: options.full === true,
      ...internal,
    })
    try {
      throwIfAborted(op)
      await this.#ensureAll()
      await this.#checkRoots()
      const names = this.#order.filter((name) => this.#derivations.has(name))
      for (const name of names) tables[name] = emptyTableReport()
      for (const [i, name] of names.entries()) {
        throwIfAborted(op)
        const progress: ProgressSink | undefined = options.onProgress === undefined ? undefined : { report: options.onProgress, tableIndex: i, tableCount: names.length, started }
        try {
          await untilUpstreamReleased(this.#engine, this.#derivations.get(name)!, op)
          await refreshTable(this.#engine, this.#derivations.get(name)!, options.full === true, batch, tables, op, progress)
        } catch (e) {
          throw fromDriver(e, `store.refresh, derived table \`${name}\` (reading ${this.#derivations.get(name)!.reads.map((r) => `\`${r}\``).join(', ')})`)
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
      await this.#endOp(op)
    }
  }

  /** The end of a call: its heartbeat stops and its claims are given back. */
  async #endOp(op: Op): Promise<void> {
    op.keeper.stop()
    try {
      await op.keeper.releaseAll()
    } finally {
      this.#ops.end(op)
    }
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
    const op = this.#ops.begin({ signal, timeoutMs, keeper: this.#keeper() })
    try {
      throwIfAborted(op)
      await this.#ensureAll()
      const x = this.#resolve(table, 'get')
      await this.#checkRoots(x.roots)
      const addr = this.#address(x, key, 'store.get')
      await demand(this.#engine, x, addr, op)
      return (await rowResult(this.#engine, x, addr)) as GetResult<Row>
    } catch (e) {
      if (e instanceof Aborted) throw abortedError('store.get', op)
      throw e
    } finally {
      await this.#endOp(op)
    }
  }

  // ---------------------------------------------------------------- watch

  /**
   * Watch mode: a worker that reacts to root writes and computes what went stale, until
   * `stop()` or `options.signal`. It wakes on root writes without scanning the tables (PostgreSQL:
   * `LISTEN/NOTIFY` from the root triggers, given a connection to listen on in `options.listen`;
   * otherwise the store clock, one cheap read every `pollMs`), re-checks the code versions when
   * a `dependsOn` file changes, defers rows whose root rows changed less than `debounceMs` ago,
   * and claims its batches like `refresh` (any number of workers, in any number of processes).
   * `stop()` finishes the batch in progress, stores it, releases the claims and resolves
   * `stopped`; an error other than a busy or unreachable database rejects `stopped`.
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
    positive(options.recheckMs, 'watch: options.recheckMs')
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
    // A failed clock read or file watch: reported, and tried again at the next tick.
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
          // A lost LISTEN connection is replaced; then a wave looks for what was written meanwhile.
          out.push(await listenRoots(listen, schema, (table) => this.#roots.has(table) && wake('root-write'), transient, () => wake('root-write'), pollMs))
        } else {
          out.push(pollClock(async () => (await this.#d.readClock(this.#db)).rev, pollMs, () => wake('root-write'), transient))
        }
        const files = [...this.#versionInputs.values()].flatMap((v) => v.dependsOn ?? [])
        if (files.length > 0) out.push(watchFiles(files, () => wake('code'), transient))
        return out
      },
      recheckCode: async () => this.#recheckCode(),
      // Every wave gives its claims back when it ends (`#endOp`).
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
        // A file being rewritten may be missing for a moment: its next change looks again.
        continue
      }
      if (v === x.codeVersion) continue
      this.#derivations.set(name, { ...x, codeVersion: v })
      this.#ready.delete(name)
      changed = true
    }
    return changed
  }

  // ---------------------------------------------------------------- read models

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
    const st = await status(this.#engine, x, addr)
    if (st.state !== 'stale' && st.state !== 'missing') return st
    // A worker computing it now: `running`, with its lease.
    const c = (await this.#claimD.held(this.#db, x.name)).find((h) => h.key === addr)
    return c === undefined ? st : { ...st, state: 'running', lease: { owner: c.owner, expires: c.expires } }
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
    // The live claims: of the one table asked for, or of every table in one read (not one per table).
    type Leases = Map<string, { owner: string; expires: number }>
    const byKey = (rows: readonly ClaimRow[]): Map<string, Leases> => {
      const out = new Map<string, Leases>()
      for (const c of rows) {
        let m = out.get(c.table)
        if (m === undefined) out.set(c.table, (m = new Map()))
        m.set(c.key, { owner: c.owner, expires: c.expires })
      }
      return out
    }
    let all: Promise<Map<string, Leases>> | undefined
    const leases = async (name: string): Promise<Leases> => {
      const held = target !== undefined ? byKey(await this.#claimD.held(this.#db, name)) : await (all ??= this.#claimD.held(this.#db).then(byKey))
      return held.get(name) ?? new Map()
    }
    return staleRows(this.#engine, target, leases)
  }

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
    return affectedRows(this.#engine, rootName, rootKeyText(key, this.#keyKinds(rootName)!, rootName, 'store.affected'))
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
    return revision(this.#engine, name, rootKeyText(key, this.#keyKinds(name)!, name, 'store.revision'))
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
    return undeclared(this.#engine)
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
    await drop(this.#engine, name)
  }

  /**
   * Remove tombstones: revision rows of deleted root rows (of the roots this program tracks) and
   * metadata rows of deleted derived rows (of the tables it declares), written at or before
   * revision `olderThan` and already seen by the last refresh of every derived table in the store (below
   * every watermark). Also removes claim rows whose lease ended at least one lease length
   * (`StoreOptions.leaseMs`) ago, left by workers that died. Returns how many of each were removed.
   *
   * `olderThan` must be a clock value (`store.clock()`) read before every computation still
   * running started, in any process. A late result, computed from inputs read before a
   * tombstone it would have been refused by, is still refused after the tombstone is gone: a
   * root key with no revision row counts as deleted at the highest collected revision, and a
   * comprehension result for an address with no metadata row is refused when evaluated before
   * the highest collected tombstone of its table (see `write.ts`).
   */
  async collect(options: { readonly olderThan: number }): Promise<{ revisions: number; tombstones: number; claims: number }> {
    const olderThan = (options as { olderThan?: unknown } | undefined)?.olderThan
    if (typeof olderThan !== 'number' || !Number.isSafeInteger(olderThan) || olderThan < 0) {
      throw new LineageQueryError('argument', `store.collect expects { olderThan: revision }, a clock value read with store.clock() before every computation still running started; got ${showValue(olderThan)}`)
    }
    await this.#ensureAll()
    return collect(this.#engine, olderThan, this.#leaseMs)
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

  /** Each tracked root (or those named) is still the table its revisions describe (see `checkRoot`). */
  async #checkRoots(names: readonly string[] = [...this.#roots.keys()]): Promise<void> {
    for (const name of names) {
      const root = this.#roots.get(name)
      if (root !== undefined) await trackRoot(this.#db, this.#d, root.def, `checking the tracked root \`${name}\``)
    }
  }

  /** Create (or check) the tables of every declared derivation, once per store. */
  async #ensureAll(): Promise<void> {
    for (const x of this.#derivations.values()) {
      let p = this.#ready.get(x.name)
      if (p === undefined) {
        p = retryBusy(this.#d, `creating the tables of \`${x.name}\``, this.#busyMs, () =>
          // Serialised per derived table across processes (PostgreSQL: an advisory lock), so that
          // two programs starting at once do not race on CREATE TABLE IF NOT EXISTS (23505).
          startupDialects[this.#d.name].serialise(this.#db, `lq_derived ${x.name}`, (c) => ensureDerivedTables(c, this.#d, x.def, x.codeVersion)),
        )
        this.#ready.set(x.name, p)
        p.catch(() => this.#ready.delete(x.name))
      }
      await p
    }
  }
}


// Every public method that reads or writes the database reports driver errors as a
// LineageQueryError naming the method (see driver-errors.ts); refresh adds the derived table.
reportDriverErrors(Store.prototype, ['track', 'refresh', 'get', 'status', 'stale', 'affected', 'lineage', 'revision'], (args) => (typeof args[0] === 'string' ? args[0] : args[0] instanceof Table ? args[0].name : undefined))
