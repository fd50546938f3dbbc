/**
 * The normal form (Cheney, Lindley & Wadler, ICFP 2013): what `normalise` produces and
 * `lower` turns into SQL. A query is a union of branches
 * `for g1 in T1 ... for gn in Tn where c1 and ... and ck yield value`, where `value` is built of
 * scalar expressions over the generators, records, nested queries (correlated with the
 * enclosing branch) and lineage annotations whose entries are known statically.
 */
import type { AggFn, Constant, ScalarOp } from './ast.js'
import type { ColumnDef, SType, TableDef } from './schema.js'

/**
 * A generator: a table and the alias its rows are bound to. With `group` it is a grouped
 * generator (rule `for-group`): its rows are the groups of `group.source`, one per distinct key,
 * and `table` is a synthetic table (name starting with `#`) whose columns are the key
 * components `k0, k1, ...` and the aggregates `a0, a1, ...` collected from the body.
 */
export interface Gen {
  readonly alias: string
  readonly table: TableDef
  readonly group?: GroupSpec
  /**
   * Set on a generator joined by a left outer join (rule `decorrelate-aggregate`,
   * `decorrelate.ts`): each row of the generators before it is paired with the rows of this
   * one satisfying `on`, or with one row of NULL columns when none does.
   */
  readonly left?: { readonly on: readonly NExpr[] }
}

/** What a grouped generator groups and computes per group. */
export interface GroupSpec {
  /** The rows grouped: the source's branches (each branch's value is one row). */
  readonly source: readonly Branch[]
  /** Per source branch, the key components (scalars over that branch's generators). */
  readonly keys: readonly (readonly NExpr[])[]
  /** The aggregates over each group, column `a<i>` for `aggs[i]` (rule `agg-of-group`). */
  readonly aggs: readonly GroupAgg[]
  /**
   * Set when there are no keys and all the source's rows are one group even when there are none
   * (SQL without GROUP BY: one row, `sum` NULL and `count` 0 over no rows). Rule
   * `one-scan-aggregates` (`share-scans.ts`).
   */
  readonly whole?: true
}

/**
 * An aggregate over a group's rows: `fn` of `arg` over the rows of each source branch that
 * satisfy `filter` (`FILTER (WHERE ...)`, or `CASE` inside the aggregate). `json`: the rows'
 * `arg` values as a JSON array (a nested collection of the group, rule `coll-of-group`);
 * `lineage`: the lineage entries of the rows as JSON (rule `lineage-of-group`).
 */
export interface GroupAgg {
  readonly fn: AggFn | 'json' | 'lineage'
  /** `count(distinct arg)` (rule `count-distinct`). */
  readonly distinct: boolean
  readonly type: SType
  /** One part per source branch taking part; branches without one contribute no row. */
  readonly parts: readonly GroupAggPart[]
}
export interface GroupAggPart {
  /** Index of the source branch. */
  readonly branch: number
  /** Over the source branch's generators; `undefined` for `count(*)`. */
  readonly arg: NValue | undefined
  readonly filter: readonly NExpr[]
}

/** A scalar expression with its static type. */
export type NExpr =
  | { readonly k: 'col'; readonly alias: string; readonly table: TableDef; readonly col: ColumnDef; readonly type: SType }
  | { readonly k: 'const'; readonly value: Constant; readonly type: SType }
  | { readonly k: 'op'; readonly op: ScalarOp; readonly args: readonly NExpr[]; readonly type: SType }
  | { readonly k: 'exists'; readonly q: NQuery; readonly negated: boolean; readonly type: SType }
  | { readonly k: 'agg'; readonly fn: AggFn; readonly q: NQuery; readonly type: SType; readonly distinct?: boolean }
  | SharedExpr
  /** The entries of a query's elements as one JSON list (why-provenance); branch values are `lin`. */
  | { readonly k: 'witness'; readonly q: NQuery; readonly type: SType }

/**
 * A `Q.let` value computed once per row of its branch (it contains a subquery, so copying it to
 * each use would compute it again): every use refers to it by `id`, and the branch that binds
 * it lists it in `lets`, which lowering turns into a lateral FROM item.
 */
export interface SharedExpr { readonly k: 'shared'; readonly id: number; readonly value: NExpr; readonly type: SType }

/** A lineage entry whose table is known statically; `key` are the key column expressions. */
export interface LinEntry {
  readonly table: TableDef
  readonly key: readonly NExpr[]
  /** Set when `key` is the table's stored-lineage column: the entries come from its JSON. */
  readonly stored?: { readonly single: string | undefined }
  /** Set when `key` is one `witness` expression: the entries come from its JSON list of lists. */
  readonly witness?: true
  /**
   * Set when `key` is a group's lineage column (rule `lineage-of-group`): a JSON array with one
   * array per row of the group, `[branch, ...key values]`; `branches[branch]` says which entries
   * (table, key types) the values are.
   */
  readonly grouped?: { readonly branches: readonly GroupedLinBranch[] }
}

/** The table named by a witness entry: none in particular (its entries name their own tables). */
export const WITNESS_TABLE: TableDef = { name: '#why', columns: [], byName: new Map(), key: undefined, lineage: true, storedLineage: undefined }

/** The lineage entries of the rows of one source branch of a group. */
export type GroupedLinBranch = readonly {
  readonly table: string
  readonly types: readonly SType[]
  readonly stored?: { readonly single: string | undefined }
  readonly grouped?: { readonly branches: readonly GroupedLinBranch[] }
  /** A why-provenance witness list (see `LinEntry.witness`). */
  readonly witness?: true
}[]

export type NValue =
  | NExpr
  | NRecord
  /** `via`: the collection is computed as column `col` of grouped generator `alias` (its `q` is kept for planning and iteration). */
  | { readonly k: 'coll'; readonly q: NQuery; readonly via?: { readonly alias: string; readonly col: string } }
  | { readonly k: 'lin'; readonly entries: readonly LinEntry[] }

/** A record: named fields in order; `table` is set on the row of a table (`RowRecord`). */
export interface NRecord { readonly k: 'rec'; readonly fields: readonly (readonly [string, NValue])[]; readonly table?: TableDef }

/**
 * The record of a row of `table` bound to generator `alias`: one column expression per column,
 * built when first read and then kept (each field is one object, as in a record built at
 * once). A query reads a few of a table's columns, and a path used again as a query is renamed
 * (`freshen`): renaming a row's record is a record of the new alias, whatever the number of
 * columns (TPC-H Q1's eight aggregates over `g.group` each renamed `lineitem`'s 16 columns).
 */
export class RowRecord implements NRecord {
  readonly k = 'rec'
  readonly #alias: string
  readonly #table: TableDef
  #cols: (NExpr | undefined)[] | undefined
  #fields: readonly (readonly [string, NValue])[] | undefined
  constructor(alias: string, table: TableDef) {
    this.#alias = alias
    this.#table = table
  }
  /** (Accessors, not own properties: a spread of a record copies `k` only, as it should.) */
  get alias(): string {
    return this.#alias
  }
  get table(): TableDef {
    return this.#table
  }
  get fields(): readonly (readonly [string, NValue])[] {
    return (this.#fields ??= this.#table.columns.map((c, i) => [c.name, this.#column(c, i)] as const))
  }
  /** The field `name` (its column expression), `undefined` when the table has no such column. */
  field(name: string): NExpr | undefined {
    const cols = this.#table.columns
    for (let i = 0; i < cols.length; i++) if (cols[i]!.name === name) return this.#column(cols[i]!, i)
    return undefined
  }
  #column(c: ColumnDef, i: number): NExpr {
    const cols = (this.#cols ??= [])
    return (cols[i] ??= { k: 'col', alias: this.#alias, table: this.#table, col: c, type: c.type })
  }
}

export interface Branch {
  readonly gens: readonly Gen[]
  readonly conds: readonly NExpr[]
  readonly value: NValue
  /** Shared `Q.let` values this branch computes (after its generators), in binding order. */
  readonly lets?: readonly SharedExpr[]
  /**
   * Set on the branches of a group's collection (`g.group`) and of queries that only filter and
   * map it: the branch ranges over the rows of source branch `src` of the grouped generator
   * being built as `id` (its first generators are that branch's, renamed); `own` are its
   * conditions that select the group (the others filter it).
   */
  readonly grp?: { readonly id: number; readonly alias: string; readonly src: number; readonly own: ReadonlySet<NExpr> }
}

export interface NQuery {
  readonly branches: readonly Branch[]
  /**
   * Set on a query that is ordered or limited where it stands (a nested collection, or the
   * query of an aggregate or `exists`): its elements in this order, and only those kept.
   */
  readonly order?: NOrder
}

/** Order and limit of a query that is not the top level (the top level has `NTop`). */
export interface NOrder {
  /** Per branch (same index as `branches`), the order key expressions; `[]` each when unordered. */
  readonly keys: readonly (readonly NExpr[])[]
  readonly directions: readonly ('asc' | 'desc')[]
  readonly limit: number | undefined
  readonly offset: number
}

/** Whether an `NOrder` drops elements (a limit or an offset). */
export const cuts = (o: NOrder | undefined): boolean => o !== undefined && (o.limit !== undefined || o.offset > 0)

/** A top-level query: branches with their order keys, the directions, and the limit. */
export interface NTop {
  readonly query: NQuery
  /** Per branch (same index as `query.branches`), the order key expressions. */
  readonly orderKeys: readonly (readonly NExpr[])[]
  readonly directions: readonly ('asc' | 'desc')[]
  readonly limit: number | undefined
  readonly offset: number
  /** Common table expressions the statement starts with (`Q.let` of a closed, flat query). */
  readonly ctes?: readonly NCte[]
}

/** `with <def.name> as (<query>)`: a query computed once per statement, read as a table. */
export interface NCte {
  /** A pseudo-table: the CTE's name and its columns (the element's fields, or `v`). */
  readonly def: TableDef
  readonly query: NQuery
}

export const isScalar = (v: NValue): v is NExpr => v.k === 'col' || v.k === 'const' || v.k === 'op' || v.k === 'exists' || v.k === 'agg' || v.k === 'shared' || v.k === 'witness'

export const BOOL: SType = { kind: 'boolean', nullable: false }
export const NBOOL: SType = { kind: 'boolean', nullable: true }

export function constType(value: Constant): SType {
  if (value === null) return { kind: 'null', nullable: true }
  if (typeof value === 'string') return { kind: 'string', nullable: false }
  if (typeof value === 'boolean') return BOOL
  return { kind: Number.isInteger(value) ? 'int' : 'real', nullable: false }
}

export const constant = (value: Constant): NExpr => ({ k: 'const', value, type: constType(value) })

/**
 * Structural equality of scalar expressions: the same columns, constants (value and type) and
 * operators. Subqueries and shared values are equal only to themselves.
 */
export function sameExpr(a: NExpr, b: NExpr): boolean {
  if (a === b) return true
  switch (a.k) {
    case 'col':
      return b.k === 'col' && a.alias === b.alias && a.col.name === b.col.name
    case 'const':
      return b.k === 'const' && a.value === b.value && a.type.kind === b.type.kind && a.type.scale === b.type.scale
    case 'op':
      return b.k === 'op' && a.op === b.op && a.args.length === b.args.length && a.args.every((x, i) => sameExpr(x, b.args[i]!))
    case 'exists':
    case 'agg':
    case 'shared':
    case 'witness':
      return false
  }
}

// ---------------------------------------------------------------- alias renaming

/**
 * Rename generator aliases (`map`: old -> new) throughout a value, nested queries included.
 * A part that mentions no renamed alias is returned as it is (the same object), so renaming
 * allocates only along the paths that change.
 */
export function renameValue(v: NValue, map: ReadonlyMap<string, string>): NValue {
  switch (v.k) {
    case 'rec': {
      if (v instanceof RowRecord) {
        const a = map.get(v.alias)
        return a === undefined ? v : new RowRecord(a, v.table)
      }
      const fields = mapSame(v.fields, (f) => {
        const x = renameValue(f[1], map)
        return x === f[1] ? f : ([f[0], x] as const)
      })
      return fields === v.fields ? v : { ...v, fields }
    }
    case 'coll': {
      const q = renameQuery(v.q, map)
      const via = v.via === undefined ? undefined : map.get(v.via.alias)
      if (q === v.q && via === undefined) return v
      return { ...v, q, ...(v.via === undefined ? {} : { via: { alias: via ?? v.via.alias, col: v.via.col } }) }
    }
    case 'lin': {
      const entries = mapSame(v.entries, (e) => {
        const key = mapSame(e.key, (x) => renameExpr(x, map))
        return key === e.key ? e : { ...e, key }
      })
      return entries === v.entries ? v : { k: 'lin', entries }
    }
    default:
      return renameExpr(v, map)
  }
}

/** `xs.map(f)`, or `xs` itself when `f` returns every element unchanged. */
export function mapSame<T>(xs: readonly T[], f: (x: T) => T): readonly T[] {
  for (let i = 0; i < xs.length; i++) {
    const x = xs[i]!
    const y = f(x)
    if (y === x) continue
    const out = xs.slice(0, i)
    out.push(y)
    for (let j = i + 1; j < xs.length; j++) out.push(f(xs[j]!))
    return out
  }
  return xs
}

export function renameExpr(e: NExpr, map: ReadonlyMap<string, string>): NExpr {
  switch (e.k) {
    case 'col': {
      const a = map.get(e.alias)
      return a === undefined ? e : { k: 'col', alias: a, table: e.table, col: e.col, type: e.type }
    }
    case 'const':
      return e
    case 'op': {
      const args = mapSame(e.args, (a) => renameExpr(a, map))
      return args === e.args ? e : { ...e, args }
    }
    case 'exists':
    case 'agg':
    case 'witness': {
      const q = renameQuery(e.q, map)
      return q === e.q ? e : { ...e, q }
    }
    case 'shared':
      return renameShared(e, map)
  }
}

let nextShared = 0
/** A fresh id for a shared value. */
export const freshSharedId = (): number => nextShared++

const sharedRenames = new WeakMap<ReadonlyMap<string, string>, Map<number, SharedExpr>>()
/**
 * A shared value under a renaming: a new shared value (new id) when its expression mentions a
 * renamed alias, the same one for every reference renamed with the same `map` (so references
 * and the branch's `lets` still agree).
 */
function renameShared(e: SharedExpr, map: ReadonlyMap<string, string>): SharedExpr {
  let seen = sharedRenames.get(map)
  if (seen === undefined) sharedRenames.set(map, (seen = new Map()))
  const hit = seen.get(e.id)
  if (hit !== undefined) return hit
  const value = renameExpr(e.value, map)
  const out: SharedExpr = { k: 'shared', id: freshSharedId(), value, type: e.type }
  seen.set(e.id, out)
  return out
}

/** A branch's lets under a renaming (see `renameShared`). */
export const renameLets = (lets: readonly SharedExpr[] | undefined, map: ReadonlyMap<string, string>): { lets?: readonly SharedExpr[] } =>
  lets === undefined || lets.length === 0 ? {} : { lets: lets.map((l) => renameShared(l, map)) }

function renameQuery(q: NQuery, map: ReadonlyMap<string, string>): NQuery {
  const branches = mapSame(q.branches, (b) => renameBranch(b, map))
  const keys = q.order === undefined ? undefined : mapSame(q.order.keys, (ks) => mapSame(ks, (k) => renameExpr(k, map)))
  if (branches === q.branches && (q.order === undefined || keys === q.order.keys)) return q
  const out: NQuery = { branches }
  return q.order === undefined ? out : { ...out, order: { ...q.order, keys: keys! } }
}

/** Rename aliases in a branch: its generators (grouped ones inside too), conditions, value, lets. */
export function renameBranch(b: Branch, map: ReadonlyMap<string, string>): Branch {
  const conds = mapSame(b.conds, (c) => renameExpr(c, map))
  const gens = mapSame(b.gens, (g) => renameGen(g, map))
  const value = renameValue(b.value, map)
  const lets = renameLets(b.lets, map).lets
  const alias = b.grp === undefined ? undefined : map.get(b.grp.alias)
  if (conds === b.conds && gens === b.gens && value === b.value && lets === undefined && alias === undefined) return b
  if (b.grp === undefined) return branchOf(gens, conds, value, lets, undefined)
  const own = new Set<NExpr>()
  b.conds.forEach((c, i) => b.grp!.own.has(c) && own.add(conds[i]!))
  return branchOf(gens, conds, value, lets, { id: b.grp.id, alias: alias ?? b.grp.alias, src: b.grp.src, own })
}

/** A branch; `lets` and `grp` set only when there are some (built without object spreads, which were a visible cost of renaming). */
export function branchOf(gens: readonly Gen[], conds: readonly NExpr[], value: NValue, lets: readonly SharedExpr[] | undefined, grp: Branch['grp']): Branch {
  const b: { -readonly [K in keyof Branch]: Branch[K] } = { gens, conds, value }
  if (lets !== undefined && lets.length > 0) b.lets = lets
  if (grp !== undefined) b.grp = grp
  return b
}

export function renameGen(g: Gen, map: ReadonlyMap<string, string>): Gen {
  const alias = map.get(g.alias) ?? g.alias
  if (g.left !== undefined) return { ...renameGen({ alias: g.alias, table: g.table, ...(g.group === undefined ? {} : { group: g.group }) }, map), left: { on: g.left.on.map((c) => renameExpr(c, map)) } }
  if (g.group === undefined) return alias === g.alias ? g : { alias, table: g.table }
  const s = g.group
  // A group that reads no renamed alias keeps its spec (and so sees aggregates collected later).
  if (![...map.keys()].some((a) => a !== g.alias && specMentions(s, a))) return { alias, table: g.table, group: s }
  return {
    alias,
    table: g.table,
    group: {
      source: s.source.map((b) => renameBranch(b, map)),
      keys: s.keys.map((ks) => ks.map((k) => renameExpr(k, map))),
      aggs: s.aggs.map((a) => ({ ...a, parts: a.parts.map((p) => ({ ...p, arg: p.arg === undefined ? undefined : renameValue(p.arg, map), filter: p.filter.map((f) => renameExpr(f, map)) })) })),
      ...(s.whole === undefined ? {} : { whole: s.whole }),
    },
  }
}

/** Whether a grouped generator's spec reads a column of generator `alias` (it is correlated with it). */
export function specMentions(s: GroupSpec, alias: string): boolean {
  return groupMentions(s, alias) || s.keys.some((ks) => ks.some((k) => mentionsAlias(k, alias)))
}

/** Whether a value or expression reads a column of generator `alias` (nested queries included). */
export function mentionsAlias(v: NValue, alias: string): boolean {
  switch (v.k) {
    case 'col': return v.alias === alias
    case 'const': return false
    case 'op': return v.args.some((a) => mentionsAlias(a, alias))
    case 'exists': case 'agg': case 'witness': return queryMentions(v.q, alias)
    case 'shared': return mentionsAlias(v.value, alias)
    // (A table row's record reads its alias, when the table has a column: no field built for that.)
    case 'rec': return v instanceof RowRecord ? v.alias === alias && v.table.columns.length > 0 : v.fields.some(([, f]) => mentionsAlias(f, alias))
    case 'coll': return v.via?.alias === alias || queryMentions(v.q, alias)
    case 'lin': return v.entries.some((e) => e.key.some((k) => mentionsAlias(k, alias)))
  }
}

export function queryMentions(q: NQuery, alias: string): boolean {
  return (
    q.branches.some((b) => b.conds.some((c) => mentionsAlias(c, alias)) || mentionsAlias(b.value, alias) || b.gens.some((g) => (g.group !== undefined && specMentions(g.group, alias)) || (g.left?.on.some((c) => mentionsAlias(c, alias)) ?? false)) || (b.lets ?? []).some((l) => mentionsAlias(l.value, alias))) ||
    (q.order?.keys.some((ks) => ks.some((k) => mentionsAlias(k, alias))) ?? false)
  )
}

function groupMentions(s: GroupSpec, alias: string): boolean {
  return queryMentions({ branches: s.source }, alias) || s.aggs.some((a) => a.parts.some((p) => (p.arg !== undefined && mentionsAlias(p.arg, alias)) || p.filter.some((f) => mentionsAlias(f, alias))))
}

/**
 * Whether an expression or a query is closed: every column it reads belongs to a generator it
 * binds itself (subqueries, groups and left-join conditions included), and it reads no shared
 * value and binds no `Q.let` (rule `inline-scalar-let`, and a `Q.let` query as a CTE).
 */
export function isClosed(x: { readonly expr: NExpr } | { readonly query: NQuery }): boolean {
  const bound = new Set<string>()
  const used: string[] = []
  let ok = true
  const expr = (e: NExpr): void => {
    switch (e.k) {
      case 'col': used.push(e.alias); return
      case 'const': return
      case 'op': e.args.forEach(expr); return
      case 'exists': case 'agg': case 'witness': query(e.q); return
      case 'shared': ok = false; return
    }
  }
  const value = (v: NValue): void => {
    if (isScalar(v)) return expr(v)
    switch (v.k) {
      case 'rec': v.fields.forEach(([, f]) => value(f)); return
      case 'coll': if (v.via !== undefined) used.push(v.via.alias); query(v.q); return
      case 'lin': v.entries.forEach((l) => l.key.forEach(expr)); return
    }
  }
  const branch = (b: Branch): void => {
    if (b.lets !== undefined && b.lets.length > 0) ok = false
    for (const g of b.gens) {
      bound.add(g.alias)
      g.left?.on.forEach(expr)
      // A grouped generator reads what its source, keys and aggregates read (property-test
      // counterexample: a let of Q.distinct(Q.yield(outer.id)) was taken for closed).
      if (g.group === undefined) continue
      g.group.source.forEach(branch)
      g.group.keys.forEach((ks) => ks.forEach(expr))
      g.group.aggs.forEach((a) => a.parts.forEach((p) => {
        if (p.arg !== undefined) value(p.arg)
        p.filter.forEach(expr)
      }))
    }
    b.conds.forEach(expr)
    value(b.value)
  }
  const query = (q: NQuery): void => {
    q.branches.forEach(branch)
    q.order?.keys.forEach((ks) => ks.forEach(expr))
  }
  if ('expr' in x) expr(x.expr)
  else query(x.query)
  return ok && used.every((a) => bound.has(a))
}

/** The aggregates of a value, outside nested queries, in order (rules `one-scan-aggregates` and `decorrelate-aggregate`). */
export function collectAggs(v: NValue, out: Extract<NExpr, { k: 'agg' }>[]): void {
  switch (v.k) {
    case 'agg': out.push(v); return
    case 'op': v.args.forEach((x) => collectAggs(x, out)); return
    case 'rec': v.fields.forEach(([, f]) => collectAggs(f, out)); return
    case 'col': case 'const': case 'exists': case 'shared': case 'witness': case 'coll': case 'lin': return
  }
}

/** `v` with each aggregate in `replaced` replaced by its expression (outside nested queries). */
export function replaceAggs(v: NValue, replaced: ReadonlyMap<Extract<NExpr, { k: 'agg' }>, NExpr>): NValue {
  switch (v.k) {
    case 'agg': return replaced.get(v) ?? v
    case 'op': return { ...v, args: v.args.map((x) => replaceAggs(x, replaced) as NExpr) }
    case 'rec': return { ...v, fields: v.fields.map(([n, f]) => [n, replaceAggs(f, replaced)] as const) }
    case 'col': case 'const': case 'exists': case 'shared': case 'witness': case 'coll': case 'lin': return v
  }
}

/**
 * A walk of every position of the normal form (conditions, values, lets, order keys, nested
 * queries, grouped generators' sources, keys and aggregates, left-join conditions, and shared
 * values' expressions): whether `shared` holds for some shared `Q.let` value, or `group` for
 * some grouped generator's spec. Each query and group spec is visited once (values may share
 * them). Typed and exhaustive, unlike a walk over object keys (which was a visible share of
 * compiling a query with a `Q.let`).
 */
export class SharedSearch {
  readonly #seen = new Set<object>()
  constructor(
    readonly shared: (s: SharedExpr) => boolean,
    readonly group: (s: GroupSpec) => boolean = () => false,
  ) {}

  value(v: NValue): boolean {
    switch (v.k) {
      case 'col': case 'const': return false
      case 'op': return v.args.some((a) => this.value(a))
      case 'exists': case 'agg': case 'witness': return this.query(v.q)
      case 'shared': return this.shared(v) || this.value(v.value)
      case 'rec': return v.fields.some(([, f]) => this.value(f))
      case 'coll': return this.query(v.q)
      case 'lin': return v.entries.some((e) => e.key.some((k) => this.value(k)))
    }
  }

  query(q: NQuery): boolean {
    if (this.#seen.has(q)) return false
    this.#seen.add(q)
    return q.branches.some((b) => this.branch(b)) || (q.order?.keys.some((ks) => ks.some((k) => this.value(k))) ?? false)
  }

  branch(b: Branch): boolean {
    return b.gens.some((g) => this.gen(g)) || b.conds.some((c) => this.value(c)) || this.value(b.value) || (b.lets?.some((l) => this.value(l)) ?? false)
  }

  gen(g: Gen): boolean {
    if (g.left !== undefined && g.left.on.some((c) => this.value(c))) return true
    return g.group !== undefined && this.spec(g.group)
  }

  spec(s: GroupSpec): boolean {
    if (this.#seen.has(s)) return false
    this.#seen.add(s)
    return this.group(s) || s.source.some((b) => this.branch(b)) || s.keys.some((ks) => ks.some((k) => this.value(k))) || s.aggs.some((a) => this.agg(a))
  }

  agg(a: GroupAgg): boolean {
    return a.parts.some((p) => (p.arg !== undefined && this.value(p.arg)) || p.filter.some((f) => this.value(f)))
  }
}
