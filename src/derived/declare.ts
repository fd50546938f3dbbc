/**
 * Declare: everything checked about `store.track` and `store.derive` before the database is
 * touched (names, keys, output codecs, what a derivation reads, cycles), and the resolved
 * `Derivation` a declaration becomes. Also the checks of options passed to public methods.
 */
import * as t from 'io-ts'
import { LineageQueryError, showValue } from '../errors.js'
import { children, type Expr } from '../query/ast.js'
import { compile } from '../query/compile.js'
import { AST, Table, type AnyQuery, type Plain, type Query, type RowOf } from '../query/dsl.js'
import { tableDef, type TableDef } from '../query/schema.js'
import { inputLineage } from '../lineage/index.js'
import type { Derivation } from './engine.js'
import { zipParts } from './join.js'
import type { ColumnInfo, StoreDialect } from './sql/dialect.js'
import { codeVersion } from './version.js'
import { DerivedTable, derivedInfo, type DeriveContext, type Graph, type SourceKind } from './types.js'

export type Codecs = Readonly<Record<string, t.Mixed>>

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

const IDENT = /^[A-Za-z_][A-Za-z0-9_]*$/

/** What the checks need to know of the store. */
export interface DeclareContext {
  readonly storeId: number
  readonly d: StoreDialect
  readonly roots: ReadonlyMap<string, Table<string, unknown, unknown>>
  readonly derivations: ReadonlyMap<string, Derivation>
  /** The dependency graph with `extra` derived tables added (throws on a cycle). */
  graph(extra?: readonly { name: string; reads: readonly string[] }[]): Graph
}

/** Check a table given to `store.track` (without the database); returns its definition. */
export function checkTrackable(ctx: DeclareContext, root: Table<string, any, any>): TableDef {
  if (!(root instanceof Table) || derivedInfo(root) !== undefined) {
    throw new LineageQueryError('argument', `store.track expects a root table declared with table(...), got ${derivedInfo(root) ? `the derived table \`${(root as Table<string, unknown, unknown>).name}\`` : showValue(root)}`)
  }
  const def = root.def
  if (def.name.startsWith('lq_')) throw new LineageQueryError('schema', `table \`${def.name}\`: names starting with lq_ are reserved for the store's own tables`, { table: def.name })
  if (ctx.derivations.has(def.name)) throw new LineageQueryError('schema', `\`${def.name}\` is already a derived table of this store; a root table cannot have the same name`, { table: def.name })
  checkName(ctx, def.name, 'root')
  if (def.key === undefined) {
    throw new LineageQueryError('schema', `table \`${def.name}\` has no key, so its rows cannot carry revisions; declare one with table(name, columns, { key: 'col' })`, { table: def.name })
  }
  for (const k of def.key) {
    const c = def.byName.get(k)!
    if (c.type.kind === 'real') {
      throw new LineageQueryError('schema', `table \`${def.name}\`: key column \`${k}\` is a real number; tracked tables need integer, string or boolean keys`, { table: def.name, column: k })
    }
  }
  return def
}

/** Check the root table's columns in the database (`columns`: undefined when there is no such table) against its declaration. */
export function checkRootColumns(def: TableDef, exists: readonly ColumnInfo[] | undefined): void {
  if (exists === undefined) throw new LineageQueryError('schema', `table \`${def.name}\` does not exist in the database; create it first (createTable)`, { table: def.name })
  for (const c of def.columns) {
    if (!exists.some((e) => e.name === c.name)) {
      throw new LineageQueryError('unknown-column', `table \`${def.name}\` in the database has no column \`${c.name}\`; columns: ${exists.map((e) => e.name).join(', ')}`, { table: def.name, column: c.name })
    }
  }
}

/**
 * Names that would collide once the store prefixes them, or that the database cannot hold:
 * a `schema` error. PostgreSQL truncates identifiers to 63 bytes, so a derived name may have
 * at most 47 bytes (`lq_meta_<name>$changed`) and a root name 52 (`lq_rev_<name>$rev`);
 * SQLite compares names case-insensitively, so two names differing only in case are one
 * table there; PostgreSQL names a derived table's primary key `<name>_pkey`, in the same
 * namespace as tables. Root names may not contain `$` (it separates index names).
 */
export function checkName(ctx: DeclareContext, name: string, kind: 'root' | 'derived'): void {
  const fail = (why: string): never => {
    throw new LineageQueryError('schema', `${kind} table \`${name}\`: ${why}`, { table: name })
  }
  if (kind === 'root' && name.includes('$')) fail('tracked table names may not contain $ (the store uses it in index names)')
  const others = [...[...ctx.roots.keys()].map((n) => ({ name: n, kind: 'root' as const })), ...[...ctx.derivations.keys()].map((n) => ({ name: n, kind: 'derived' as const }))].filter((o) => o.name !== name)
  const problem = ctx.d.tableNameProblem(name, kind, others)
  if (problem !== undefined) fail(problem)
}

/** Check a `store.derive` declaration and resolve it; returns the derivation, its table handle and the new topological order. */
export function declareDerivation<const N extends string, F extends AnyQuery, C extends Codecs>(ctx: DeclareContext, decl: Derive<N, F, C>): { derivation: Derivation; table: DerivedTable<N, RowOf<C>>; order: readonly string[] } {
  if (typeof decl !== 'object' || decl === null) throw new LineageQueryError('argument', `store.derive expects { name, from, output, fn }, got ${showValue(decl)}`)
  const { name, from, output, fn } = decl
  if (typeof name !== 'string' || !IDENT.test(name)) throw new LineageQueryError('schema', `derived table name must be an identifier (letters, digits, _), got ${showValue(name)}`, { table: name })
  if (name.startsWith('lq_')) throw new LineageQueryError('schema', `derived table \`${name}\`: names starting with lq_ are reserved for the store's own tables`, { table: name })
  if (ctx.derivations.has(name)) throw new LineageQueryError('schema', `a derived table named \`${name}\` is already declared in this store; derived table names must be unique`, { table: name })
  if (ctx.roots.has(name)) throw new LineageQueryError('schema', `\`${name}\` is a tracked root table; a derived table cannot have the same name`, { table: name })
  checkName(ctx, name, 'derived')
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
    if (r !== name && !ctx.roots.has(r) && !ctx.derivations.has(r)) {
      throw new LineageQueryError('schema', `derived table \`${name}\` reads table \`${r}\`, which is not tracked by this store; call \`await store.track(${r})\` first (tracked: ${[...ctx.roots.keys()].join(', ') || 'none'}; derived: ${[...ctx.derivations.keys()].join(', ') || 'none'})`, { table: name, reads: r })
    }
  }
  const timeoutMs = positive(decl.timeoutMs, `derived table \`${name}\`: timeoutMs`)
  const graph = ctx.graph([{ name, reads }])
  let source: SourceKind
  const info = derivedInfo(from)
  const zip = zipParts(from)
  if (zip !== undefined) {
    source = { kind: 'zip', parts: zip }
  } else if (info !== undefined) {
    if (info.storeId !== ctx.storeId) throw new LineageQueryError('schema', `derived table \`${name}\` reads \`${(from as unknown as Table<string, unknown, unknown>).name}\`, a derived table of another store`, { table: name })
    source = { kind: 'derived', table: reads[0]! }
  } else if (from instanceof Table) {
    source = { kind: 'root', table: reads[0]! }
  } else {
    source = { kind: 'query', tables: reads }
    // Compile now, so an unknown column or a type error surfaces at derive, not at refresh.
    compile(inputLineage(from as AnyQuery), ctx.d.name)
  }
  const roots = [...new Set(reads.flatMap((r) => (ctx.roots.has(r) ? [r] : ctx.derivations.get(r)!.roots)))].sort()
  const singleRoot = roots.length === 1
  const version = codeVersion({ table: name, fn, version: decl.version, dependsOn: decl.dependsOn, output, params: decl.params })
  // A derived row's lineage is its address (lq_key): lineage(q) over this table reports the
  // root rows it came from, so provenance composes through the pipeline.
  const def = tableDef(name, { ...output, lq_key: t.string }, { key: 'lq_key', storedLineage: { column: 'lq_key', table: singleRoot ? roots[0] : undefined } })
  const table = new DerivedTable<N, RowOf<C>>(def, { storeId: ctx.storeId, roots, singleRoot, output })
  const derivation: Derivation = {
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
  }
  return { derivation, table, order: graph.order }
}

export function nonNegative(n: number | undefined, what: string): number | undefined {
  if (n === undefined) return undefined
  if (!Number.isSafeInteger(n) || n < 0) throw new LineageQueryError('argument', `${what} must be a non-negative integer, got ${showValue(n)}`)
  return n
}

export function positive(n: number | undefined, what: string): number | undefined {
  if (n === undefined) return undefined
  if (!Number.isSafeInteger(n) || n < 1) throw new LineageQueryError('argument', `${what} must be a positive integer, got ${showValue(n)}`)
  return n
}

export function checkSignal(signal: unknown, what: string): AbortSignal | undefined {
  if (signal === undefined) return undefined
  if (!(signal instanceof AbortSignal)) throw new LineageQueryError('argument', `${what}: options.signal must be an AbortSignal, got ${showValue(signal)}`)
  return signal
}

/** The tables a `from` reads: a table's name, or every table in a comprehension. */
function readTables(from: unknown, name: string): string[] {
  if (from instanceof Table) return [from.name]
  const node = typeof from === 'object' && from !== null ? (from as { [AST]?: Expr })[AST] : undefined
  if (node === undefined) {
    throw new LineageQueryError('argument', `derived table \`${name}\`: from must be a tracked root table, a derived table, or a comprehension (Q.for ...) over them; got ${showValue(from)}`, { table: name })
  }
  const found = new Set<string>()
  const walk = (n: Expr): void => {
    if (n.kind === 'table') found.add(n.table.name)
    else children(n).forEach(walk)
  }
  walk(node)
  if (found.size === 0) throw new LineageQueryError('schema', `derived table \`${name}\`: its comprehension reads no table, so no row could ever be stale`, { table: name })
  return [...found].sort()
}
