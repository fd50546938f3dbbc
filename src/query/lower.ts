/**
 * Lowering: normal form -> one SQL select (Kysely operation nodes) plus the layout to decode
 * its rows. Each branch becomes `select ... from T1 as g1, ... where ...`; a union becomes
 * `union all`; a nested collection becomes a correlated subquery aggregating its elements into
 * a JSON array, so any query runs as exactly one statement. Dialect differences come from
 * `DialectHooks`; SQL is built only through `sql-nodes.ts`.
 */
import { LineageQueryError } from '../errors.js'
import type { DialectHooks } from './dialect.js'
import { hasLineage, plan, type CollLayout, type Layout } from './layout.js'
import { cuts, type Branch, type LinEntry, type NCte, type NExpr, type NQuery, type NTop, type NValue } from './normal.js'
import type { ScalarKind } from './schema.js'
import * as S from './sql-nodes.js'

export interface TopLayout {
  /** Column aliases of the data (and lineage) slots, in layout order. */
  readonly columns: readonly string[]
  /** Layout of one result element; `undefined` when the query has no branch. */
  readonly value: Layout | undefined
  /** Name of the branch-number column, when rows carry one. */
  readonly tag: string | undefined
}

export interface Lowered {
  readonly select: S.Select
  readonly layout: TopLayout
}

const TAG = '#b'

class Lowerer {
  constructor(readonly h: DialectHooks) {}

  // ------------------------------------------------------------ scalars

  param(value: string | number | boolean, kind: ScalarKind): S.Node {
    const p = S.param(this.h.toDb(value))
    const cast = this.h.paramCast(kind)
    return cast === undefined ? p : S.cast(p, cast as 'bigint')
  }

  /** NULL of a given type: cast where the dialect needs union columns typed. */
  typedNull(kind: ScalarKind): S.Node {
    const cast = this.h.name === 'postgres' ? this.h.paramCast(kind) : undefined
    return cast === undefined ? S.literal(null) : S.cast(S.literal(null), cast as 'bigint')
  }

  stringOrder(n: S.Node, e: NExpr): S.Node {
    return e.type.kind === 'string' && this.h.binaryCollation !== undefined ? S.collate(n, this.h.binaryCollation) : n
  }

  expr(e: NExpr): S.Node {
    switch (e.k) {
      case 'col':
        return S.col(e.alias, e.col.name)
      case 'const':
        return e.value === null ? S.literal(null) : this.param(e.value, e.type.kind)
      case 'exists':
        return S.unary(e.negated ? 'not exists' : 'exists', this.existsQuery(e.q))
      case 'agg':
        return this.agg(e)
      case 'op':
        return this.op(e)
      case 'shared':
        return S.col(this.sharedAlias(e.id), this.h.name === 'sqlite' ? 'value' : 'v')
      case 'witness':
        return this.witness(e.q)
    }
  }

  /**
   * Why-provenance: the entries of the elements of `q` as one JSON text, a list with one list
   * per element of items `[table, key]` (a composite key as a list), `[null, stored, single]`
   * for stored lineage, `["#w", list]` for an element's own witnesses. Decoding flattens it.
   */
  witness(q: NQuery): S.Node {
    const item = (e: LinEntry): S.Node => {
      const key = e.key.map((k) => this.expr(k))
      if (e.witness === true) return S.fn(this.h.jsonArray, [this.param('#w', 'string'), this.embedJson(key[0]!)])
      if (e.stored !== undefined) return S.fn(this.h.jsonArray, [this.typedNull('string'), key[0]!, e.stored.single === undefined ? this.typedNull('string') : this.param(e.stored.single, 'string')])
      return S.fn(this.h.jsonArray, [this.param(e.table.name, 'string'), key.length === 1 ? key[0]! : S.fn(this.h.jsonArray, key)])
    }
    const parts = this.branchSelects(q, (b) => S.fn(this.h.jsonArray, (b.value as Extract<NValue, { k: 'lin' }>).entries.map(item)))
    const all = S.agg(this.h.jsonAgg, [this.embedJson(S.col('u', 'v'))])
    // Text on both dialects: the slot may share a union column with string keys.
    const list = this.h.name === 'postgres' ? S.cast(S.fn('coalesce', [all, S.fn(this.h.jsonArray, [])]), 'text') : all
    return S.selectFromSubquery(S.unionAll(parts), 'u', [{ expr: list, alias: 'v' }])
  }

  /**
   * The FROM items of a branch: its generators' tables, then one lateral item per shared
   * `Q.let` value, which computes it once per row of the generators before it:
   * - PostgreSQL: `lateral (select <value> as "v" offset 0) as "#s0"` (`offset 0` keeps the
   *   planner from pulling the subquery up and copying the value to each use);
   * - SQLite (no LATERAL): the table-valued function `json_each(json_array(<value>)) as "#s0"`,
   *   whose argument may read the tables before it; its `value` column is the value with its
   *   SQL type (integer, real, text, NULL).
   */
  readonly #shared = new Map<number, string>()
  /** The FROM alias of a shared `Q.let` value: `#s0`, `#s1`, ... in order of first use in the statement. */
  sharedAlias(id: number): string {
    let a = this.#shared.get(id)
    if (a === undefined) this.#shared.set(id, (a = `#s${this.#shared.size}`))
    return a
  }

  fromOf(b: Branch): Pick<S.SelectParts, 'from' | 'extra'> {
    const from = b.gens.map((g) => ({ table: g.table.name, alias: g.alias }))
    if (b.lets === undefined || b.lets.length === 0) return { from }
    // One item per shared value (a value listed twice is the same value: same id, same alias).
    const lets = b.lets.filter((l, i) => b.lets!.findIndex((m) => m.id === l.id) === i)
    const extra = lets.map((l) => {
      const value = this.exprAs(l.value, l.type.kind)
      return this.h.name === 'sqlite'
        ? S.aliased(S.fn('json_each', [S.fn('json_array', [value])]), this.sharedAlias(l.id))
        : S.aliased(S.lateral(S.withOrderAndLimit(S.select({ from: [], selections: [{ expr: value, alias: 'v' }], where: [] }), [], undefined, S.literal(0))), this.sharedAlias(l.id))
    })
    return { from, extra }
  }

  /**
   * `e`, with a NULL constant typed as `kind` (PostgreSQL cannot type a bare NULL operand), and
   * so, inside, an operator of NULLs only whose result has its operands' type (`coalesce(null,
   * null)`, `null + null`): typed by its context, not as text.
   */
  exprAs(e: NExpr, kind: ScalarKind): S.Node {
    if (e.k === 'const' && e.value === null) return this.typedNull(kind)
    if (e.k === 'op' && SAME_TYPE_OPS.has(e.op) && unifiedKind(e.args, 'null') === 'null') return this.op(e, kind)
    return this.expr(e)
  }

  /** An operator; `context`: the kind of its NULL-only operands, known from where it is used. */
  op(e: Extract<NExpr, { k: 'op' }>, context?: ScalarKind): S.Node {
    const kind = context ?? operandKind(e)
    const a = e.args.map((x) => this.exprAs(x, kind))
    const [x, y] = a as [S.Node, S.Node]
    switch (e.op) {
      case 'eq': return S.binary(x, '=', y)
      case 'ne': return S.binary(x, '<>', y)
      case 'lt': return S.binary(this.stringOrder(x, e.args[0]!), '<', y)
      case 'le': return S.binary(this.stringOrder(x, e.args[0]!), '<=', y)
      case 'gt': return S.binary(this.stringOrder(x, e.args[0]!), '>', y)
      case 'ge': return S.binary(this.stringOrder(x, e.args[0]!), '>=', y)
      case 'and': return S.and(a)
      case 'or': return S.or(a)
      case 'not': return S.unary('not', x)
      case 'add': return S.binary(x, '+', y)
      case 'sub': return S.binary(x, '-', y)
      case 'mul': return S.binary(x, '*', y)
      case 'neg': return S.unary('-', S.parens(x))
      case 'abs': return S.fn('abs', [x])
      case 'div':
        return this.h.name === 'sqlite'
          ? S.binary(S.cast(x, 'real'), '/', y)
          : S.binary(S.cast(x, 'double precision'), '/', S.fn('nullif', [y, S.literal(0)]))
      case 'mod':
        return this.h.name === 'sqlite' ? S.binary(x, '%', y) : S.binary(x, '%', S.fn('nullif', [y, S.literal(0)]))
      case 'concat': return S.parens(a.reduce((l, r) => S.binary(l, '||', r)))
      case 'lower':
      case 'upper':
        // ASCII-only case mapping on every dialect (SQLite's lower/upper are ASCII-only).
        if (this.h.name === 'sqlite') return S.fn(e.op, [x])
        return e.op === 'lower'
          ? S.fn('translate', [x, S.literal('ABCDEFGHIJKLMNOPQRSTUVWXYZ'), S.literal('abcdefghijklmnopqrstuvwxyz')])
          : S.fn('translate', [x, S.literal('abcdefghijklmnopqrstuvwxyz'), S.literal('ABCDEFGHIJKLMNOPQRSTUVWXYZ')])
      case 'length': return S.fn('length', [x])
      case 'like': {
        const pattern = (e.args[1] as Extract<NExpr, { k: 'const' }>).value as string
        if (this.h.name === 'sqlite') return S.fn('glob', [S.param(likeToGlob(pattern)), x])
        checkLikePattern(pattern)
        return S.binary(x, 'like', this.param(pattern, 'string'))
      }
      case 'isNull': return S.binary(x, 'is', S.literal(null))
      case 'isNotNull': return S.binary(x, 'is not', S.literal(null))
      case 'in': return S.binary(x, 'in', S.valueList(a.slice(1)))
      case 'coalesce': return S.fn('coalesce', a)
    }
  }

  /** The branches of `q` as selects of the single expression `one(branch)` (or `1`). */
  branchSelects(q: NQuery, one: (b: Branch, i: number) => S.Node, alias = 'v'): S.Select[] {
    return q.branches.map((b, i) =>
      S.select({
        ...this.fromOf(b),
        selections: [{ expr: one(b, i), alias }],
        where: b.conds.map((c) => this.expr(c)),
      }),
    )
  }

  /**
   * The branches of an ordered query as selects of `cols(branch)` plus its order keys as
   * columns `o0, o1, ...`; when the query is limited, the union ordered by them and cut, so it
   * is a derived table holding the kept elements only.
   */
  orderedUnion(q: NQuery, cols: (b: Branch, i: number) => { readonly expr: S.Node; readonly alias: string }[]): S.Select {
    const order = q.order!
    const kinds = order.directions.map((_, j) => unifiedKind(order.keys.map((ks) => ks[j]!)))
    const parts = q.branches.map((b, i) => {
      const selections = cols(b, i)
      ;(order.keys[i] ?? []).forEach((k, j) => selections.push({ expr: this.stringOrder(this.exprAs(k, kinds[j]!), k), alias: `o${j}` }))
      if (selections.length === 0) selections.push({ expr: S.literal(1), alias: '#' })
      return S.select({ ...this.fromOf(b), selections, where: b.conds.map((c) => this.expr(c)) })
    })
    const union = S.unionAll(parts)
    if (!cuts(order)) return union
    const limit = order.limit !== undefined ? S.param(order.limit) : this.h.name === 'sqlite' ? S.param(-1) : undefined
    const items: S.OrderItem[] = order.directions.map((dir, j) => ({ expr: S.columnRef(`o${j}`), dir }))
    return S.withOrderAndLimit(union, items, limit, order.offset > 0 ? S.param(order.offset) : undefined)
  }

  /** Order items over the key columns of `orderedUnion` read through alias `u`. */
  orderItemsOf(q: NQuery, from: string): S.OrderItem[] {
    const order = q.order!
    return order.directions.map((dir, j) => {
      const kind = unifiedKind(order.keys.map((ks) => ks[j]!))
      return { expr: S.col(from, `o${j}`), dir, collation: kind === 'string' ? this.h.binaryCollation : undefined }
    })
  }

  existsQuery(q: NQuery): S.Node {
    if (cuts(q.order)) {
      // exists over a limited query: whether the kept elements are any.
      const sub = S.selectFromSubquery(this.orderedUnion(q, () => []), 'u', [{ expr: S.literal(1), alias: 'one' }])
      return this.h.name === 'sqlite' ? S.withOrderAndLimit(sub, [], S.literal(1), undefined) : sub
    }
    const sub = S.unionAll(this.branchSelects(q, () => S.literal(1), 'one'))
    // SQLite 3.51 applies an outer OFFSET once per row of an EXISTS subquery in WHERE, so rows
    // past the offset come back (test/query/regressions.test.ts); `limit 1` avoids it.
    return this.h.name === 'sqlite' ? S.withOrderAndLimit(sub, [], S.literal(1), undefined) : sub
  }

  agg(e: Extract<NExpr, { k: 'agg' }>): S.Node {
    const fnArg = (n: S.Node) => (e.fn === 'min' || e.fn === 'max' ? this.stringOrder(n, e) : n)
    const argKind: ScalarKind = e.fn === 'avg' ? 'real' : e.type.kind
    const arg = (b: Branch) => this.exprAs(b.value as NExpr, argKind)
    const aggregate = (arg: S.Node | undefined) => (e.fn === 'count' ? S.countAll() : S.agg(e.fn, [fnArg(arg!)]))
    if (cuts(e.q.order)) {
      // An aggregate over a limited query aggregates the kept elements: a derived table.
      const inner = this.orderedUnion(e.q, (b) => [{ expr: e.fn === 'count' ? S.literal(1) : arg(b), alias: 'v' }])
      return S.selectFromSubquery(inner, 'u', [{ expr: aggregate(S.col('u', 'v')), alias: 'v' }])
    }
    // An aggregate whose argument mentions only outer columns belongs to the outer query in
    // SQL, so unless it mentions a column of its own branch it aggregates a derived table.
    if (e.q.branches.length === 1 && (e.fn === 'count' ? e.q.branches[0]!.gens.length > 0 : mentionsOwnColumn(e.q.branches[0]!))) {
      const b = e.q.branches[0]!
      return S.select({
        ...this.fromOf(b),
        selections: [{ expr: aggregate(e.fn === 'count' ? undefined : arg(b)), alias: 'v' }],
        where: b.conds.map((c) => this.expr(c)),
      })
    }
    const parts = this.branchSelects(e.q, (b) => (e.fn === 'count' ? S.literal(1) : arg(b)))
    return S.selectFromSubquery(S.unionAll(parts), 'u', [{ expr: aggregate(S.col('u', 'v')), alias: 'v' }])
  }

  // ------------------------------------------------------------ values and nested collections

  /** The slot expressions of `v` laid out by `l`, `branch` being v's branch number. */
  slots(v: NValue, l: Layout, branch: number): S.Node[] {
    switch (l.k) {
      case 'scalar':
        // PostgreSQL types `null union all null` as text before it meets the other branches.
        return [this.exprAs(v as NExpr, l.type.kind)]
      case 'rec': {
        const fields = (v as Extract<NValue, { k: 'rec' }>).fields
        const out: S.Node[] = []
        l.fields.forEach(([n, fl], i) => {
          // Branches usually list fields in the layout's order; look further only when not.
          const f = fields[i]?.[0] === n ? fields[i]! : fields.find(([m]) => m === n)!
          for (const x of this.slots(f[1], fl, branch)) out.push(x)
        })
        return out
      }
      case 'coll':
        return [this.coll((v as Extract<NValue, { k: 'coll' }>).q, l, l.offsets[branch] ?? 0)]
      case 'lin': {
        const out: S.Node[] = l.slots.map((kind) => this.typedNull(kind))
        const desc = l.branches[branch]
        const entries = (v as Extract<NValue, { k: 'lin' }>).entries
        if (desc === undefined) throw new Error('internal: lineage layout has no branch ' + branch)
        desc.entries.forEach((d, i) => d.slots.forEach((s, j) => (out[s] = this.expr(entries[i]!.key[j]!))))
        return out
      }
    }
  }

  /**
   * A subquery's JSON result placed inside another JSON constructor: SQLite passes JSON between
   * functions as text, so it needs `json(...)` there (and only there: elsewhere it costs a parse).
   */
  embedJson(n: S.Node): S.Node {
    return this.h.jsonAsText ? S.fn('json', [n]) : n
  }

  /** One element of a nested collection from its slots: the only slot, or a JSON array. */
  element(slots: readonly S.Node[], isColl: readonly boolean[], tag: S.Node | undefined): S.Node {
    const embedded = slots.map((x, i) => (isColl[i] ? this.embedJson(x) : x))
    if (tag === undefined && embedded.length === 1) return embedded[0]!
    return S.fn(this.h.jsonArray, tag === undefined ? embedded : [...embedded, tag])
  }

  /** A correlated subquery aggregating the elements of `q` into a JSON array. */
  coll(q: NQuery, l: CollLayout, offset: number): S.Node {
    if (q.branches.length === 0) return S.fn(this.h.jsonArray, [])
    const elem = l.elem!
    const isColl = collSlots(elem)
    const aggregate = (n: S.Node) => {
      const a = S.agg(this.h.jsonAgg, [n])
      return this.h.name === 'postgres' ? S.fn('coalesce', [a, S.fn(this.h.jsonArray, [])]) : a
    }
    if (q.order !== undefined) return this.orderedColl(q, l, offset)
    if (q.branches.length === 1 && mentionsOwnColumn(q.branches[0]!)) {
      const b = q.branches[0]!
      return S.select({
        ...this.fromOf(b),
        selections: [{ expr: aggregate(this.element(this.slots(b.value, elem, offset), isColl, l.tagged ? S.literal(offset) : undefined)), alias: 'v' }],
        where: b.conds.map((c) => this.expr(c)),
      })
    }
    // Union parts select plain columns; the outer aggregate builds each element once.
    const names = isColl.map((_, i) => `c${i}`)
    const parts = q.branches.map((b, i) => {
      const selections = this.slots(b.value, elem, offset + i).map((expr, j) => ({ expr, alias: names[j]! }))
      if (l.tagged) selections.push({ expr: S.literal(offset + i), alias: 't' })
      if (selections.length === 0) selections.push({ expr: S.literal(1), alias: '#' })
      return S.select({ ...this.fromOf(b), selections, where: b.conds.map((c) => this.expr(c)) })
    })
    const el = this.element(names.map((n) => S.col('u', n)), isColl, l.tagged ? S.col('u', 't') : undefined)
    return S.selectFromSubquery(S.unionAll(parts), 'u', [{ expr: aggregate(el), alias: 'v' }])
  }

  /**
   * An ordered (and maybe limited) nested collection: the JSON aggregate takes its elements in
   * key order (`json_agg(... order by ...)`, `json_group_array(... order by ...)`: SQLite 3.44+),
   * so the order survives aggregation on both dialects. One branch, not limited: aggregated in
   * place. Otherwise over a derived table of the elements and their keys, ordered and cut there
   * when limited (the outer ORDER BY then fixes the order of the kept elements).
   */
  orderedColl(q: NQuery, l: CollLayout, offset: number): S.Node {
    const elem = l.elem!
    const isColl = collSlots(elem)
    const order = q.order!
    const aggregate = (n: S.Node, items: readonly S.OrderItem[]) => {
      const a = S.aggOrdered(this.h.jsonAgg, [n], items)
      return this.h.name === 'postgres' ? S.fn('coalesce', [a, S.fn(this.h.jsonArray, [])]) : a
    }
    if (!cuts(order) && q.branches.length === 1 && mentionsOwnColumn(q.branches[0]!)) {
      const b = q.branches[0]!
      const items: S.OrderItem[] = []
      order.directions.forEach((dir, j) => {
        const k = order.keys[0]![j]!
        if (k.k !== 'const') items.push({ expr: this.expr(k), dir, collation: k.type.kind === 'string' ? this.h.binaryCollation : undefined })
      })
      return S.select({
        ...this.fromOf(b),
        selections: [{ expr: aggregate(this.element(this.slots(b.value, elem, offset), isColl, l.tagged ? S.literal(offset) : undefined), items), alias: 'v' }],
        where: b.conds.map((c) => this.expr(c)),
      })
    }
    const names = isColl.map((_, i) => `c${i}`)
    const inner = this.orderedUnion(q, (b, i) => {
      const selections = this.slots(b.value, elem, offset + i).map((expr, j) => ({ expr, alias: names[j]! }))
      if (l.tagged) selections.push({ expr: S.literal(offset + i), alias: 't' })
      return selections
    })
    const el = this.element(names.map((n) => S.col('u', n)), isColl, l.tagged ? S.col('u', 't') : undefined)
    return S.selectFromSubquery(inner, 'u', [{ expr: aggregate(el, this.orderItemsOf(q, 'u')), alias: 'v' }])
  }

  // ------------------------------------------------------------ top level

  top(t: NTop): Lowered {
    const { branches } = t.query
    const value = branches.length === 0 ? undefined : plan(branches.map((b) => b.value))
    const columns = value === undefined ? [] : columnNames(value)
    const tag = branches.length > 1 && hasLineage(value) ? TAG : undefined
    const multi = branches.length > 1
    const keyKinds = t.directions.map((_, j) => unifiedKind(t.orderKeys.map((ks) => ks[j]!)))
    const byColumn = value === undefined ? t.directions.map(() => undefined) : orderByOutputColumn(t, value)
    // A string key ordered through its output column carries the code-point collation there.
    const collated = new Set(byColumn.flatMap((c, j) => (c !== undefined && this.h.binaryCollation !== undefined && keyKinds[j] === 'string' ? [c] : [])))
    const selects = branches.map((b, i) => {
      const data = value === undefined ? [] : this.slots(b.value, value, i)
      const selections = data.map((expr, j) => ({ expr: collated.has(j) ? S.collate(expr, this.h.binaryCollation!) : expr, alias: columns[j]! }))
      if (selections.length === 0) selections.push({ expr: S.literal(1), alias: '#' })
      if (tag !== undefined) selections.push({ expr: S.literal(i), alias: tag })
      if (multi) t.orderKeys[i]!.forEach((k, j) => {
        if (byColumn[j] === undefined) selections.push({ expr: this.stringOrder(this.exprAs(k, keyKinds[j]!), k), alias: `#o${j}` })
      })
      return S.select({ ...this.fromOf(b), selections, where: b.conds.map((c) => this.expr(c)) })
    })
    if (selects.length === 0) {
      // No branch can produce a row: a statement that returns none, so callers still get one.
      selects.push(S.select({ from: [], selections: [{ expr: S.literal(1), alias: '#' }], where: [S.binary(S.literal(1), '=', S.literal(0))] }))
    }
    const order: S.OrderItem[] = []
    t.directions.forEach((dir, j) => {
      const c = byColumn[j]
      if (c !== undefined) return order.push({ expr: S.columnRef(columns[c]!), dir })
      if (multi) return order.push({ expr: S.columnRef(`#o${j}`), dir })
      const key = t.orderKeys[0]?.[j]
      // A constant key orders nothing (and PostgreSQL rejects `order by null`).
      if (key === undefined || key.k === 'const') return
      const collation = key.type.kind === 'string' ? this.h.binaryCollation : undefined
      return order.push({ expr: this.expr(key), dir, collation })
    })
    const limit = t.limit !== undefined ? S.param(t.limit) : t.offset > 0 && this.h.name === 'sqlite' ? S.param(-1) : undefined
    const offset = t.offset > 0 ? S.param(t.offset) : undefined
    const select = S.withOrderAndLimit(S.unionAll(selects), branches.length === 0 ? [] : order, limit, offset)
    return { select: t.ctes === undefined ? select : S.withCtes(select, t.ctes.map((c) => this.cte(c))), layout: { columns, value, tag } }
  }

  /** A CTE's body: its branches selecting the columns `c0, c1, ...` of its pseudo-table. */
  cte(c: NCte): { readonly name: string; readonly select: S.Select } {
    const layout = plan(c.query.branches.map((b) => b.value))
    const names = c.def.columns.map((col) => col.name)
    const parts = c.query.branches.map((b, i) => S.select({
      ...this.fromOf(b),
      selections: this.slots(b.value, layout, i).map((expr, j) => ({ expr, alias: names[j]! })),
      where: b.conds.map((x) => this.expr(x)),
    }))
    return { name: c.def.name, select: S.unionAll(parts) }
  }
}

/** The kind a NULL operand of `e` should take: the operands' common kind, or what `op` needs. */
function operandKind(e: Extract<NExpr, { k: 'op' }>): ScalarKind {
  switch (e.op) {
    case 'and': case 'or': case 'not': return 'boolean'
    case 'concat': case 'lower': case 'upper': case 'length': case 'like': return 'string'
    case 'mod': return 'int'
    case 'add': case 'sub': case 'mul': case 'neg': case 'abs': case 'div': return unifiedKind(e.args, 'int')
    default: return unifiedKind(e.args)
  }
}

/** Operators whose result has the type of their operands. */
const SAME_TYPE_OPS: ReadonlySet<string> = new Set(['coalesce', 'add', 'sub', 'mul', 'neg', 'abs'])

/** The common kind of some expressions, ignoring NULL constants (`fallback` if all are NULL). */
function unifiedKind(es: readonly NExpr[], fallback: ScalarKind = 'string'): ScalarKind {
  let kind: ScalarKind = 'null'
  for (const x of es) {
    const k = x.type.kind
    if (k === 'null') continue
    kind = kind === 'null' ? k : kind !== k && (kind === 'real' || k === 'real') ? 'real' : kind
  }
  return kind === 'null' ? fallback : kind
}

/** The scalar expression of each slot of `v` laid out by `l` (`undefined` for JSON and lineage slots). */
function slotExprs(v: NValue, l: Layout): (NExpr | undefined)[] {
  switch (l.k) {
    case 'scalar': return [v as NExpr]
    case 'coll': return [undefined]
    case 'lin': return l.slots.map(() => undefined)
    case 'rec': {
      const fields = (v as Extract<NValue, { k: 'rec' }>).fields
      return l.fields.flatMap(([n, fl], i) => slotExprs((fields[i]?.[0] === n ? fields[i]! : fields.find(([m]) => m === n)!)[1], fl))
    }
  }
}

/**
 * Rule "order by output column": an order key that is a yielded field (the very expression a
 * result column selects, in every branch at the same column) orders by that column instead of
 * by a second copy of the expression, so a subquery in a yielded field runs once per row. Bare
 * column references and constants are left as they are (ordering by them costs nothing), so
 * only computed keys (operators, aggregates, exists) go through the output column. For each
 * key, the column index, or `undefined`.
 */
export function orderByOutputColumn(t: NTop, value: Layout): (number | undefined)[] {
  const slotsOf = t.query.branches.map((b) => slotExprs(b.value, value))
  return t.directions.map((_, j) => {
    let at: number | undefined
    for (let i = 0; i < slotsOf.length; i++) {
      const key = t.orderKeys[i]![j]!
      if (key.k === 'col' || key.k === 'const') return undefined
      const c = slotsOf[i]!.indexOf(key)
      if (c < 0 || (at !== undefined && at !== c)) return undefined
      at = c
    }
    return at
  })
}

/** For each slot of a layout, whether it holds a nested collection (JSON). */
function collSlots(l: Layout): boolean[] {
  switch (l.k) {
    case 'scalar': return [false]
    case 'coll': return [true]
    case 'lin': return l.slots.map(() => false)
    case 'rec': return l.fields.flatMap(([, f]) => collSlots(f))
  }
}

/** Whether a branch's value mentions, outside nested subqueries, a column of its own generators. */
function mentionsOwnColumn(b: Branch): boolean {
  if (b.gens.length === 0) return false
  const own = new Set(b.gens.map((g) => g.alias))
  const inExpr = (e: NExpr): boolean => (e.k === 'col' ? own.has(e.alias) : e.k === 'op' ? e.args.some(inExpr) : false)
  const inValue = (v: NValue): boolean =>
    v.k === 'rec' ? v.fields.some(([, f]) => inValue(f)) : v.k === 'lin' ? v.entries.some((x) => x.key.some(inExpr)) : v.k === 'coll' ? false : inExpr(v)
  return inValue(b.value)
}

/** Column aliases: the field path of each slot (`employee.name`), `value` for a bare scalar. */
function columnNames(l: Layout): string[] {
  const out: string[] = []
  const walk = (x: Layout, path: string) => {
    switch (x.k) {
      case 'rec':
        for (const [n, f] of x.fields) walk(f, path ? `${path}.${n}` : n)
        return
      case 'lin':
        x.slots.forEach((_, i) => out.push(`#l${i}`))
        return
      default:
        out.push(path || 'value')
    }
  }
  walk(l, '')
  // PostgreSQL truncates identifiers at 63 bytes; fall back to positions for long paths.
  return out.map((n, i) => (Buffer.byteLength(n) > 60 || out.indexOf(n) !== i ? `#c${i}` : n))
}

function checkLikePattern(pattern: string): void {
  let escaped = false
  for (const ch of pattern) escaped = !escaped && ch === '\\'
  if (escaped) throw new LineageQueryError('type', `Q.like: the pattern ${JSON.stringify(pattern)} ends with an escape character (\\); escape it as \\\\ to match a backslash`, { pattern })
}

/** Translate a LIKE pattern (`%`, `_`, `\` escape) to SQLite's case-sensitive GLOB. */
export function likeToGlob(pattern: string): string {
  checkLikePattern(pattern)
  let out = ''
  let escaped = false
  for (const ch of pattern) {
    if (escaped) {
      out += ch === '*' || ch === '?' || ch === '[' ? `[${ch}]` : ch
      escaped = false
    } else if (ch === '\\') escaped = true
    else if (ch === '%') out += '*'
    else if (ch === '_') out += '?'
    else if (ch === '*' || ch === '?' || ch === '[') out += `[${ch}]`
    else out += ch
  }
  return out
}

export function lower(t: NTop, hooks: DialectHooks): Lowered {
  return new Lowerer(hooks).top(t)
}

