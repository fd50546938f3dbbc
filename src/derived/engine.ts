/**
 * The resolved form of a store's declarations that the staleness, input and write phases
 * share. Internal: users see `DerivedTable` handles and plain-data reports.
 */
import type * as t from 'io-ts'
import type { Kysely } from 'kysely'
import type { AnyQuery, Table } from '../query/dsl.js'
import type { TableDef } from '../query/schema.js'
import type { StoreDialect } from './dialect.js'
import type { InputRevs } from './keys.js'
import type { DeriveContext, DerivedTable, SourceKind, SourceRow } from './types.js'

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
