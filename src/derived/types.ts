/**
 * The derived-data engine's vocabulary as plain data: row states, stale causes, reports, and
 * the derived-table handle users get back from `store.derive`. Nothing here touches a database.
 */
import type * as t from 'io-ts'
import { Table, type RowOf } from '../query/dsl.js'
import type { TableDef } from '../query/schema.js'

/** A source row named by lineage: a root table's row, or a derived table's row (key = its address). */
export interface SourceRow {
  readonly table: string
  readonly key: unknown
}

/**
 * The state of one derived row.
 * - `fresh`: stored, computed from the current inputs with the current code.
 * - `stale`: stored, but an input, the code or an upstream row changed (see `causes`).
 * - `missing`: there is input for it but no stored row (or, with cause `no-input`, not even input).
 * - `failed`: the function threw or returned a row that does not match `output`; stored as a result.
 * - `blocked`: an upstream row failed, so the function was not run.
 * - `running`: stale or missing, and a worker holds its lease: it is being computed now
 *   (`RowStatus.lease` names the worker and when the lease ends).
 */
export type RowState = 'fresh' | 'stale' | 'missing' | 'failed' | 'blocked' | 'running'

/** Why a row is not fresh. Revisions are store revisions (one monotonic counter per store). */
export type Cause =
  /** No row is stored for this input yet. */
  | { readonly kind: 'missing'; readonly table: string; readonly key: unknown }
  /** Nothing feeds this address (no input row): there is nothing to compute. */
  | { readonly kind: 'no-input'; readonly table: string; readonly key: unknown }
  /** A root input row was written after the revision the row was computed from. */
  | { readonly kind: 'input-changed'; readonly table: string; readonly key: unknown; readonly oldRevision: number; readonly newRevision: number }
  /** An input row (root or derived) was deleted. */
  | { readonly kind: 'input-deleted'; readonly table: string; readonly key: unknown; readonly oldRevision: number }
  /** An upstream derived row has a new value (or state) since the row was computed. */
  | { readonly kind: 'upstream-changed'; readonly table: string; readonly key: unknown; readonly oldRevision: number; readonly newRevision: number }
  /**
   * The comprehension now yields a different input for this row than the one it was computed
   * from, though no row of its lineage changed: a table it reads outside its generators
   * (`reads`: inside `exists`, an aggregate or a nested collection, or declared
   * `{ lineage: false }`) changed.
   */
  | { readonly kind: 'input-value-changed'; readonly table: string; readonly key: unknown; readonly reads: readonly string[] }
  /** An upstream derived row is itself stale or missing. */
  | { readonly kind: 'upstream-stale'; readonly table: string; readonly key: unknown }
  /** The derivation's code version differs from the one the row was computed with. */
  | { readonly kind: 'code-changed'; readonly table: string; readonly oldVersion: string; readonly newVersion: string }
  /** The row's function failed (state `failed`). */
  | { readonly kind: 'error'; readonly table: string; readonly key: unknown; readonly message: string }
  /**
   * The row's function did not settle within its timeout (state `failed`, like an error: retried
   * when its input or code changes). `timeoutMs` is the limit that applied.
   */
  | { readonly kind: 'timeout'; readonly table: string; readonly key: unknown; readonly message: string; readonly timeoutMs: number }
  /** An upstream row failed (state `blocked`); `table`/`key` name the row that failed. */
  | { readonly kind: 'upstream-failed'; readonly table: string; readonly key: unknown }

export type CauseKind = Cause['kind']

export interface RowStatus {
  readonly table: string
  readonly key: unknown
  readonly state: RowState
  readonly causes: readonly Cause[]
  /**
   * The live lease on the row, when a worker (`refresh`/`watch` in any process) is computing it:
   * the worker (`host:pid:random`) and when its lease ends unless extended (epoch ms of the
   * database's clock). `status` then says `running`; `stale` keeps `stale`/`missing`.
   */
  readonly lease?: { readonly owner: string; readonly expires: number }
}

/** What `get` returns. */
export type GetResult<Row> =
  | { readonly state: 'fresh'; readonly value: Row; readonly lineage: readonly SourceRow[] }
  | { readonly state: 'failed'; readonly error: StoredError; readonly causes: readonly Cause[] }
  | { readonly state: 'blocked'; readonly causes: readonly Cause[] }
  | { readonly state: 'missing'; readonly causes: readonly Cause[] }

export interface StoredError {
  readonly message: string
  readonly stack: string | undefined
}

/** What the function gets besides its input. */
export interface DeriveContext {
  /** The derived table being computed. */
  readonly table: string
  /** The row's address: the root key for a single-root pipeline, else the list of root `(table, key)` entries. */
  readonly key: unknown
  /** The root rows this input came from. */
  readonly lineage: readonly SourceRow[]
  /**
   * Aborted when the call times out (`timeoutMs`) or the `refresh`/`get` it belongs to is
   * aborted: its result is then no longer wanted. Pass it on to cancellable work (`fetch`, child
   * processes) so abandoned calls stop.
   */
  readonly signal: AbortSignal
  /** The derivation's `params` (undefined when it declares none). */
  readonly params?: unknown
}

/** Per-table counts in a refresh report. */
export interface TableReport {
  /** Function calls that produced a stored row (new or changed value). */
  computed: number
  /** Recomputations whose result equalled the stored row (backdated: downstream stays fresh). */
  unchanged: number
  failed: number
  blocked: number
  /** Derived rows removed because their input rows are gone. */
  deleted: number
  /** Results not stored because a result from newer inputs was already there (monotonic writes). */
  superseded: number
}

export interface RefreshReport {
  readonly tables: Readonly<Record<string, TableReport>>
  readonly totals: TableReport
  readonly durationMs: number
  /** Leases: claim statements run, and milliseconds spent claiming, extending (heartbeats) and releasing. */
  readonly leases?: { readonly claims: number; readonly claimMs: number; readonly heartbeatMs: number; readonly releaseMs: number }
}

export interface RefreshOptions {
  /** Rows per function batch and per write transaction (default 500; 5000 for a first fill). */
  readonly batchSize?: number
  /** Ignore revision watermarks and re-check every row (default false). */
  readonly full?: boolean
  /**
   * Milliseconds one function call may take before it is stored as `failed` (cause `timeout`)
   * and the rest of its batch is stored without it; for derivations that declare no
   * `timeoutMs` of their own. Default: the store's `timeoutMs`, else no limit.
   */
  readonly timeoutMs?: number
  /**
   * Stops the refresh after the batch in progress: results already returned are stored, calls
   * still running are abandoned (their rows stay stale or missing; their `ctx.signal` is
   * aborted), no watermark moves past unstored work, and `refresh` rejects with a
   * `LineageQueryError` of code `aborted` whose `details.report` is the partial report.
   */
  readonly signal?: AbortSignal
  /**
   * Called after each table's scan and after each stored batch (see `RefreshProgress`). It runs
   * synchronously between batches: keep it cheap. An exception it throws ends the refresh
   * (after the batch it reports on was stored) and is rethrown as is.
   */
  readonly onProgress?: (progress: RefreshProgress) => void
  /**
   * Function calls run at once, within a batch (default: every call of a batch starts at once).
   * With a limit, `timeoutMs` counts from each call's own start.
   */
  readonly concurrency?: number
  /**
   * Lease length in milliseconds (default: the store's `leaseMs`, 60000). Every batch is claimed
   * before it is computed (see docs/derived.md, "Workers"); a heartbeat extends the claim while
   * the functions run, and a worker killed mid-batch loses its rows to others after this long.
   */
  readonly leaseMs?: number
}

/**
 * One progress report of `store.refresh({ onProgress })`. Tables are refreshed one at a time in
 * dependency order; within a table, `done` counts up to `total`.
 *
 * @example
 * ```ts
 * await store.refresh({ onProgress: (p) => console.log(`${p.table} ${p.done}/${p.total}`) })
 * ```
 */
export interface RefreshProgress {
  /** The derived table being refreshed. */
  readonly table: string
  /** Its position (0-based) among the derived tables this refresh visits, in dependency order. */
  readonly tableIndex: number
  /** How many derived tables this refresh visits. */
  readonly tableCount: number
  /** `scan`: the table's work was just found (`done` = 0); `batch`: a batch was stored; `done`: the table is finished. */
  readonly phase: 'scan' | 'batch' | 'done'
  /** Rows of this table handled so far in this refresh (computed, unchanged, failed, blocked, superseded or deleted). */
  readonly done: number
  /**
   * Rows this table's refresh will handle, as found by its scan (exact, except that rows whose
   * input is deleted before their batch runs are skipped and counted as done).
   */
  readonly total: number
  /** This table's counts so far (a copy). */
  readonly counts: TableReport
  /** Milliseconds since the refresh started. */
  readonly elapsedMs: number
}

/** Options of `store.get`. */
export interface GetOptions {
  /** As `RefreshOptions.timeoutMs`, for the calls this `get` makes. */
  readonly timeoutMs?: number
  /** Stops the `get` between steps (rejecting with a `LineageQueryError` of code `aborted`); stored results are kept. */
  readonly signal?: AbortSignal
}

export interface StoreOptions {
  /** Batch size for every refresh of this store (default: 500, and 5000 for a first fill). */
  readonly batchSize?: number
  /** Default per-call timeout in milliseconds (see `RefreshOptions.timeoutMs`); default none. */
  readonly timeoutMs?: number
  /**
   * How long, in milliseconds, a write waits for a busy database (another connection holding
   * SQLite's write lock, a PostgreSQL deadlock or serialization failure) before failing with a
   * `busy` error; it retries with growing pauses meanwhile. Default 60000.
   */
  readonly busyTimeoutMs?: number
  /** Default lease length of this store's `refresh` and `watch` calls (ms; default 60000). */
  readonly leaseMs?: number
}

export interface GraphNode {
  readonly name: string
  readonly kind: 'root' | 'derived'
}
export interface GraphEdge {
  readonly from: string
  readonly to: string
}
export interface Graph {
  readonly nodes: readonly GraphNode[]
  readonly edges: readonly GraphEdge[]
  /** Every table, roots first, each after all tables it reads. */
  readonly order: readonly string[]
  readonly mermaid: string
  readonly dot: string
}

/** How a derivation reads its input. */
export type SourceKind =
  /** One row of a tracked root table per derived row. */
  | { readonly kind: 'root'; readonly table: string }
  /** One row of a derived table per derived row (same address). */
  | { readonly kind: 'derived'; readonly table: string }
  /** The rows of a comprehension, addressed by their (composed) root lineage. */
  | { readonly kind: 'query'; readonly tables: readonly string[] }
  /** `joinOnRoot`: the rows of several derived tables of one root at the same address, under names. */
  | { readonly kind: 'zip'; readonly parts: readonly { readonly as: string; readonly table: string }[] }

const DERIVED: unique symbol = Symbol('lineage-query.derived')

/** The metadata a derived-table handle carries. */
export interface DerivedInfo {
  readonly storeId: number
  /** The root tables this derivation's rows come from. */
  readonly roots: readonly string[]
  /** Whether rows are addressed by a single root's key (one root table, one entry per row). */
  readonly singleRoot: boolean
  readonly output: Readonly<Record<string, t.Mixed>>
}

/**
 * A derived table: a DSL table (queryable with `Q.for`, `run`, `lineage`) whose rows are the
 * declared output columns plus `lq_key`, the row's address. Failed and blocked rows are not in
 * it (their state is in the store's metadata).
 */
export class DerivedTable<N extends string, Row> extends Table<N, Row & { lq_key: string }, { table: N; key: string }> {
  readonly [DERIVED]: DerivedInfo
  constructor(def: TableDef, info: DerivedInfo) {
    super(def)
    this[DERIVED] = info
  }
}

export function derivedInfo(x: unknown): DerivedInfo | undefined {
  return x instanceof DerivedTable ? (x as DerivedTable<string, unknown>)[DERIVED] : undefined
}

/** The row type a derived table of output codecs `C` stores. */
export type OutputRow<C extends Readonly<Record<string, t.Mixed>>> = RowOf<C>

export const emptyTableReport = (): TableReport => ({ computed: 0, unchanged: 0, failed: 0, blocked: 0, deleted: 0, superseded: 0 })
