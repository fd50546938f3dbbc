/**
 * The plain data the engine's phases pass each other: the resolved declarations (`Derivation`,
 * `Engine`), a scan's work items (`Work`), a unit of work for the function (`Task`) and its
 * outcome (`Result`). Internal: users see `DerivedTable` handles and plain-data reports.
 */
import type * as t from 'io-ts'
import type { Kysely } from 'kysely'
import type { AnyQuery, Table } from '../query/dsl.js'
import type { TableDef } from '../query/schema.js'
import type { StoreDialect, Watermark } from './sql/dialect.js'
import type { Claims } from './claims.js'
import type { InputRevs } from './keys.js'
import type { Cause, DeriveContext, DerivedTable, SourceKind, SourceRow } from './types.js'

export interface Derivation {
  readonly name: string
  /** The data table: declared output columns plus `lq_key`. */
  readonly def: TableDef
  readonly table: DerivedTable<string, unknown>
  readonly source: SourceKind
  /** For `source.kind === 'query'`: the comprehension. */
  readonly query: AnyQuery | undefined
  readonly fn: (input: any, ctx: DeriveContext) => unknown
  readonly output: Readonly<Record<string, t.Mixed>>
  readonly codeVersion: string
  /** The declaration's `params` (part of the code version), given to `fn` as `ctx.params`. */
  readonly params?: unknown
  readonly roots: readonly string[]
  readonly singleRoot: boolean
  /** Tables read directly (roots or derived). */
  readonly reads: readonly string[]
  /** Milliseconds one call of `fn` may take (declared with the derivation), if limited. */
  readonly timeoutMs?: number
}

export interface Engine {
  readonly db: Kysely<any>
  readonly d: StoreDialect
  readonly roots: ReadonlyMap<string, Table<string, unknown, unknown>>
  readonly derivations: ReadonlyMap<string, Derivation>
  /** How long writes wait for a busy database (`StoreOptions.busyTimeoutMs`; default 60 s). */
  readonly busyMs?: number
  /** Every table, roots first, each after the tables it reads (the graph's topological order). */
  readonly order: readonly string[]
  /** Who computes which task (`claims.ts`). */
  readonly claims: Claims
  /** The store's default per-call timeout (`StoreOptions.timeoutMs`). */
  readonly timeoutMs?: number | undefined
}

/** Default of `Engine.busyMs`. */
export const BUSY_WAIT_MS = 60_000

/** An upstream derived row a task reads, with the state it had when read. */
export interface UpstreamRow {
  readonly table: string
  readonly addr: string
  readonly state: string
  /** For failed/blocked rows: the stored error text (JSON). */
  readonly error: string | null
}

/** One unit of work: an input, ready for the function. */
export interface Task {
  readonly addr: string
  readonly input: unknown
  /** Root lineage (normalised). */
  readonly lineage: readonly SourceRow[]
  /** Revision of every row read, as recorded. */
  readonly inputs: InputRevs
  readonly maxRev: number
  /** Derived rows read (their failure blocks this task). */
  readonly upstream: readonly UpstreamRow[]
  /** Direct entries `(table, key text)` for lineage edges (query derivations only). */
  readonly edges: readonly (readonly [string, string])[]
  /**
   * Set when no row was stored at the address when the task was made (a first fill): the write
   * of a batch of such tasks tries a plain insert first (see `write.ts`). A hint only: a row
   * stored since is judged by the monotonic-write guard as always.
   */
  readonly missing?: boolean
  /**
   * Query derivations that read a table outside their generators: SHA-1 of the input value,
   * compared with the stored one (`lq_input_hash`) to see changes the revisions do not cover.
   */
  readonly inputHash?: string
  /**
   * Query derivations: the clock value read before the comprehension was evaluated. A result
   * never overwrites a tombstone written after it (the row left the comprehension meanwhile),
   * nor, where `inputHash` is used, a row from a later evaluation.
   */
  readonly evalRev?: number
}

/** Which rows a scan looks at. */
export type ScanFilter =
  | { readonly mode: 'since'; readonly wm: Watermark; readonly codeChanged: boolean }
  | { readonly mode: 'keys'; readonly keys: readonly string[] }
  /** Every row; `force`: also rows with no cause, so that each is computed again (`refresh({ full: true })`). */
  | { readonly mode: 'all'; readonly force?: boolean }

export const forced = (f: ScanFilter): boolean => f.mode === 'all' && f.force === true

/** Whether a scan with filter `f` reads every input row (mode `all`, or a watermark never moved). */
export const coversAll = (f: ScanFilter): boolean => f.mode === 'all' || (f.mode === 'since' && f.wm.rev === 0 && f.wm.xmin === null)

/** One address a scan found: compute it, or delete its stored row. */
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

/** The outcome of one task. */
export type Outcome =
  | { readonly state: 'ok'; readonly row: Record<string, unknown> }
  | { readonly state: 'failed'; readonly message: string; readonly stack: string | undefined; readonly timeoutMs?: number }
  | { readonly state: 'blocked'; readonly table: string; readonly key: string }

export interface Result {
  readonly task: Task
  readonly outcome: Outcome
}

/** Derived tables that `name` reads, transitively, and `name` itself (when derived). */
export function ancestors(engine: Engine, name: string): Set<string> {
  const out = new Set<string>()
  const visit = (n: string) => {
    if (out.has(n) || !engine.derivations.has(n)) return
    out.add(n)
    for (const r of engine.derivations.get(n)!.reads) visit(r)
  }
  visit(name)
  return out
}

/** Derived tables that read `name` directly. */
export function readersOf(engine: Engine, name: string): Derivation[] {
  return [...engine.derivations.values()].filter((d) => d.reads.includes(name))
}

export function chunks<T>(xs: readonly T[], n: number): T[][] {
  const out: T[][] = []
  for (let i = 0; i < xs.length; i += n) out.push(xs.slice(i, i + n))
  return out
}

export const IN_CHUNK = 500

/** For exhaustive switches: a value of type `never` reached at run time. */
export function assertNever(x: never, what: string): never {
  throw new Error(`internal: unhandled ${what}: ${JSON.stringify(x)}`)
}
