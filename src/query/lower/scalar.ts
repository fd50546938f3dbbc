/**
 * Lowering, scalars: expressions, operators, conditions (typed boolean), aggregates of a query
 * used as a value, `exists`, and why-provenance witnesses.
 */
import { cuts, sameExpr, type Branch, type LinEntry, type NExpr, type NQuery, type NValue } from '../normal.js'
import type { ScalarKind } from '../schema.js'
import * as S from '../sql-nodes.js'
import { caseValues } from '../typing.js'
import { endsWithLoneEscape } from '../dialect.js'
import { type Cx, embedJson, param, sharedAlias, stringOrder, typedNull } from './context.js'
import { branchSelects, orderedUnion, select } from './select.js'
import { mentionsOwnColumn } from './value.js'

/** A condition: typed boolean where its NULL-only parts would otherwise default to text. */
export function cond(cx: Cx, c: NExpr): S.Node {
  return exprAs(cx, c, 'boolean')
}

/**
 * `e` as a value of `kind` (and, for decimals, of `scale` digits: SQLite's scaled integers
 * are multiplied up to it; integers count as scale 0).
 */
export function valueAs(cx: Cx, e: NExpr, kind: ScalarKind, scale: number | undefined): S.Node {
  // A constant is bound at the scale it is used at.
  if (kind === 'decimal' && scale !== undefined && e.k === 'const' && e.value !== null) return param(cx, String(e.value), 'decimal', scale)
  const n = exprAs(cx, e, kind)
  if (kind !== 'decimal' || scale === undefined) return n
  const from = e.type.kind === 'decimal' ? (e.type.scale ?? 0) : 0
  return e.type.kind === 'null' ? n : cx.h.rescale(n, scale - from)
}

/** A number or decimal operand as a real (decimals converted by their scale). */
export function asReal(cx: Cx, e: NExpr): S.Node {
  const n = exprAs(cx, e, 'real')
  return e.type.kind === 'decimal' ? cx.h.decimalToReal(n, e.type.scale ?? 0) : n
}

export function expr(cx: Cx, e: NExpr): S.Node {
  switch (e.k) {
    case 'col': {
      const sub = cx.subst.get(e.alias)
      return sub === undefined ? S.col(e.alias, e.col.name) : sub(e.col.name)
    }
    case 'const':
      return e.value === null ? S.literal(null) : param(cx, e.value, e.type.kind, e.type.scale)
    case 'exists':
      return S.unary(e.negated ? 'not exists' : 'exists', existsQuery(cx, e.q))
    case 'agg':
      return aggregateOf(cx, e)
    case 'op':
      return op(cx, e)
    case 'shared':
      // A shared value is read from its lateral item where one is in scope; elsewhere (a
      // derived table of a group's rows, a branch that does not compute it) it is computed
      // in place: the same value.
      return cx.visible.has(e.id) ? S.col(sharedAlias(cx, e.id), cx.h.sharedColumn) : exprAs(cx, e.value, e.type.kind)
    case 'witness':
      return witness(cx, e.q)
  }
}

/**
 * `e`, with a NULL constant typed as `kind` (PostgreSQL cannot type a bare NULL operand), and
 * so, inside, an operator of NULLs only whose result has its operands' type (`coalesce(null,
 * null)`, `null + null`): typed by its context, not as text.
 */
export function exprAs(cx: Cx, e: NExpr, kind: ScalarKind): S.Node {
  // Rule "statically NULL": an expression of type null (a NULL constant, a column of a CTE or
  // group that is NULL in every row, ...) is NULL: written as a NULL of the kind its use needs
  // (a column would keep the type the database gave it, text on PostgreSQL).
  if ((e.k === 'const' && e.value === null) || (e.type.kind === 'null' && kind !== 'null')) return typedNull(cx, kind)
  if (e.k === 'op' && SAME_TYPE_OPS.has(e.op) && unifiedKind(sameTypeArgs(e), 'null') === 'null') return op(cx, e, kind)
  return expr(cx, e)
}

/**
 * The conditions of an `and`, with rule `range-between`: conjuncts `x >= lo` and `x <= hi` on
 * the same expression are written `x BETWEEN lo AND hi` (SQL defines BETWEEN as that
 * conjunction), as the TPC-H texts write their ranges. SQLite's planner weighs one BETWEEN term
 * unlike two range terms: on Q8 the two terms gave another join order, 1.7x slower. Numbers and
 * dates only (strings compare under a collation, decimals at a scale).
 */
function conjuncts(cx: Cx, args: readonly NExpr[]): S.Node[] {
  // (the set made when a pair is found: most conjunctions have none)
  let paired: Set<number> | undefined
  const out: S.Node[] = []
  args.forEach((a, i) => {
    if (paired?.has(i) === true) return
    if (isRange(a, 'ge')) {
      const k = operandKind(a)
      const j = args.findIndex((b, m) => m > i && paired?.has(m) !== true && isRange(b, 'le') && operandKind(b) === k && sameExpr(b.args[0]!, a.args[0]!))
      if (j >= 0) {
        ;(paired ??= new Set()).add(j)
        const hi = (args[j] as Extract<NExpr, { k: 'op' }>).args[1]!
        out.push(S.between(valueAs(cx, a.args[0]!, k, undefined), valueAs(cx, a.args[1]!, k, undefined), valueAs(cx, hi, k, undefined)))
        return
      }
    }
    out.push(cond(cx, a))
  })
  return out
}

const RANGE_KINDS: ReadonlySet<ScalarKind> = new Set<ScalarKind>(['int', 'real', 'date', 'timestamp'])
function isRange(e: NExpr, which: 'ge' | 'le'): e is Extract<NExpr, { k: 'op' }> {
  return e.k === 'op' && e.op === which && RANGE_KINDS.has(operandKind(e)) && e.args.every((x) => x.type.kind !== 'null')
}

/** An operator; `context`: the kind of its NULL-only operands, known from where it is used. */
export function op(cx: Cx, e: Extract<NExpr, { k: 'op' }>, context?: ScalarKind): S.Node {
  const kind = context ?? operandKind(e)
  // Decimal operands share one scale (SQLite: scaled integers), except in mul/div/round.
  const scale = commonScale(e.args, kind)
  const arg = (x: NExpr) => valueAs(cx, x, kind, scale)
  switch (e.op) {
    case 'eq': case 'ne': case 'lt': case 'le': case 'gt': case 'ge': {
      const x = arg(e.args[0]!)
      const y = arg(e.args[1]!)
      const l = e.op === 'eq' || e.op === 'ne' ? x : stringOrder(cx, x, e.args[0]!)
      return S.binary(l, e.op === 'eq' ? '=' : e.op === 'ne' ? '<>' : e.op === 'lt' ? '<' : e.op === 'le' ? '<=' : e.op === 'gt' ? '>' : '>=', y)
    }
    case 'and': return S.and(conjuncts(cx, e.args))
    case 'or': return S.or(e.args.map((x) => cond(cx, x)))
    case 'not': return S.unary('not', cond(cx, e.args[0]!))
    case 'add': case 'sub': {
      const x = arg(e.args[0]!)
      const y = arg(e.args[1]!)
      return S.binary(x, e.op === 'add' ? '+' : '-', y)
    }
    case 'mul': {
      // Scales add up: the product of scaled integers is already at the result's scale.
      const [x, y] = e.args.map((a) => exprAs(cx, a, kind)) as [S.Node, S.Node]
      return S.binary(x, '*', y)
    }
    case 'neg': return S.unary('-', S.parens(arg(e.args[0]!)))
    case 'abs': return S.fn('abs', [arg(e.args[0]!)])
    case 'div': {
      const [x, y] = e.args as [NExpr, NExpr]
      if (x.type.kind === 'decimal' || y.type.kind === 'decimal') {
        return cx.h.realDiv(asReal(cx, x), asReal(cx, y))
      }
      const [a, b] = e.args.map((z) => exprAs(cx, z, kind)) as [S.Node, S.Node]
      return cx.h.intDiv(a, b)
    }
    case 'mod': {
      const x = arg(e.args[0]!)
      const y = arg(e.args[1]!)
      return cx.h.mod(x, y)
    }
    case 'concat': return S.parens(e.args.map(arg).reduce((l, r) => S.binary(l, '||', r)))
    case 'lower':
    case 'upper': {
      // ASCII-only case mapping on every dialect (SQLite's lower/upper are ASCII-only).
      return cx.h.asciiCase(e.op, arg(e.args[0]!))
    }
    case 'length': return S.fn('length', [arg(e.args[0]!)])
    case 'like': {
      const x = arg(e.args[0]!)
      const p = arg(e.args[1]!)
      const c = e.args[1]!
      if (c.k !== 'const' || typeof c.value !== 'string') return cx.h.likeDynamic(x, p)
      const pattern = c.value
      // A pattern ending in a lone escape (written literally it is a DSL error; here it came
      // from a value substituted by normalisation) matches nothing: NULL, as a computed one.
      if (endsWithLoneEscape(pattern)) return typedNull(cx, 'boolean')
      return cx.h.likeConst(x, pattern)
    }
    case 'isNull': return S.binary(arg(e.args[0]!), 'is', S.literal(null))
    case 'isNotNull': return S.binary(arg(e.args[0]!), 'is not', S.literal(null))
    case 'isNotDistinct': {
      const x = arg(e.args[0]!)
      const y = arg(e.args[1]!)
      return S.binary(x, cx.h.nullSafeEq, y)
    }
    case 'in': {
      const a = e.args.map(arg)
      return S.binary(a[0]!, 'in', S.valueList(a.slice(1)))
    }
    case 'coalesce': return S.fn('coalesce', e.args.map(arg))
    case 'case': {
      const whens: [S.Node, S.Node][] = []
      for (let i = 0; i + 1 < e.args.length; i += 2) whens.push([cond(cx, e.args[i]!), arg(e.args[i + 1]!)])
      return S.caseOf(whens, arg(e.args[e.args.length - 1]!))
    }
    case 'substring': {
      const [s, start, len] = e.args
      const n = (x: NExpr | undefined) => (x?.k === 'const' && typeof x.value === 'number' ? x.value : undefined)
      const [st, ln] = [n(start), n(len)]
      if (st !== undefined && (len === undefined || ln !== undefined)) {
        // Constant positions: SQL's rule applied here, so the plain function call suffices.
        // (Clamped to 32 bits: no string is that long, and PostgreSQL's substring takes integers.)
        const from = Math.max(st, 1)
        const cap = (x: number) => Math.min(x, 2147483647)
        return cx.h.substringFrom(exprAs(cx, s!, 'string'), cap(from), ln === undefined ? undefined : cap(Math.max(st + ln - from, 0)))
      }
      return cx.h.substring(exprAs(cx, s!, 'string'), exprAs(cx, start!, 'int'), len === undefined ? undefined : exprAs(cx, len, 'int'))
    }
    case 'trim': return cx.h.trim(exprAs(cx, e.args[0]!, 'string'))
    case 'round': {
      const x = e.args[0]!
      const digits = (e.args[1] as Extract<NExpr, { k: 'const' }>).value as number
      const n = exprAs(cx, x, kind)
      if (x.type.kind === 'decimal') return (x.type.scale ?? 0) <= digits ? n : cx.h.roundDecimal(n, x.type.scale ?? 0, digits)
      return x.type.kind === 'real' ? cx.h.roundReal(n, digits) : n
    }
    case 'year': case 'month': case 'day': {
      const x = e.args[0]!
      const k = x.type.kind === 'timestamp' ? 'timestamp' : 'date'
      return cx.h.datePart(e.op, exprAs(cx, x, k), k)
    }
    case 'addDays': case 'addMonths': case 'addYears':
      return cx.h.dateAdd(e.op === 'addDays' ? 'day' : e.op === 'addMonths' ? 'month' : 'year', exprAs(cx, e.args[0]!, 'date'), exprAs(cx, e.args[1]!, 'int'))
  }
}

/**
 * Why-provenance: the entries of the elements of `q` as one JSON text, a list with one list
 * per element of items `[table, key]` (a composite key as a list), `[null, stored, single]`
 * for stored lineage, `["#w", list]` for an element's own witnesses, `["#g", rows, branches]`
 * for the lineage of a group (its rows as in `groupedEntries`, and what their values are).
 * Decoding flattens it.
 */
export function witness(cx: Cx, q: NQuery): S.Node {
  const item = (e: LinEntry): S.Node => {
    const key = e.key.map((k) => expr(cx, k))
    if (e.witness === true) return S.fn(cx.h.jsonArray, [param(cx, '#w', 'string'), embedJson(cx, key[0]!)])
    // A group's lineage column, with what its rows' values are (see `GroupedLinBranch`).
    if (e.grouped !== undefined) return S.fn(cx.h.jsonArray, [param(cx, '#g', 'string'), embedJson(cx, key[0]!), param(cx, JSON.stringify(e.grouped.branches), 'string')])
    if (e.stored !== undefined) return S.fn(cx.h.jsonArray, [typedNull(cx, 'string'), key[0]!, e.stored.single === undefined ? typedNull(cx, 'string') : param(cx, e.stored.single, 'string')])
    return S.fn(cx.h.jsonArray, [param(cx, e.table.name, 'string'), key.length === 1 ? key[0]! : S.fn(cx.h.jsonArray, key)])
  }
  const parts = branchSelects(cx, q, (b) => S.fn(cx.h.jsonArray, (b.value as Extract<NValue, { k: 'lin' }>).entries.map(item)))
  const all = S.agg(cx.h.jsonAgg, [embedJson(cx, S.col('u', 'v'))])
  // Text on both dialects: the slot may share a union column with string keys.
  const list = cx.h.jsonText(cx.h.jsonAggOrEmpty(all))
  return S.selectFromSubquery(S.unionAll(parts), 'u', [{ expr: list, alias: 'v' }])
}

function existsQuery(cx: Cx, q: NQuery): S.Node {
  if (cuts(q.order)) {
    // exists over a limited query: whether the kept elements are any.
    const sub = S.selectFromSubquery(orderedUnion(cx, q, () => []), 'u', [{ expr: S.literal(1), alias: 'one' }])
    return cx.h.existsSubquery(sub)
  }
  const sub = S.unionAll(branchSelects(cx, q, () => S.literal(1), 'one'))
  // SQLite 3.51 applies an outer OFFSET once per row of an EXISTS subquery in WHERE, so rows
  // past the offset come back (test/query/regressions.test.ts); `limit 1` avoids it.
  return cx.h.existsSubquery(sub)
}

function aggregateOf(cx: Cx, e: Extract<NExpr, { k: 'agg' }>): S.Node {
  const fnArg = (n: S.Node) => (e.fn === 'min' || e.fn === 'max' ? stringOrder(cx, n, e) : n)
  const argKind: ScalarKind = e.fn === 'avg' ? 'real' : e.type.kind
  const arg = (b: Branch) => {
    const v = b.value as NExpr
    return e.fn === 'avg' ? asReal(cx, v) : valueAs(cx, v, argKind, e.type.scale)
  }
  const aggregate = (arg: S.Node | undefined) => (e.fn === 'count' ? S.countAll() : S.agg(e.fn, [fnArg(arg!)]))
  if (cuts(e.q.order)) {
    // An aggregate over a limited query aggregates the kept elements: a derived table.
    const inner = orderedUnion(cx, e.q, (b) => [{ expr: e.fn === 'count' ? S.literal(1) : arg(b), alias: 'v' }])
    return S.selectFromSubquery(inner, 'u', [{ expr: aggregate(S.col('u', 'v')), alias: 'v' }])
  }
  // An aggregate whose argument mentions only outer columns belongs to the outer query in
  // SQL, so unless it mentions a column of its own branch it aggregates a derived table.
  if (e.distinct === true) {
    // Rule `count-distinct`: count(distinct x), NULL not counted.
    const b0 = e.q.branches[0]!
    if (e.q.branches.length === 1 && mentionsOwnColumn(b0)) {
      return select(cx, b0, () => [{ expr: S.agg('count', [exprAs(cx, b0.value as NExpr, unifiedKind([b0.value as NExpr]))], { distinct: true }), alias: 'v' }], false)
    }
    const values = e.q.branches.map((b) => b.value as NExpr)
    const kind = unifiedKind(values)
    const scale = commonScale(values, kind)
    const parts = branchSelects(cx, e.q, (b) => valueAs(cx, b.value as NExpr, kind, scale))
    return S.selectFromSubquery(S.unionAll(parts), 'u', [{ expr: S.agg('count', [S.col('u', 'v')], { distinct: true }), alias: 'v' }])
  }
  if (e.q.branches.length === 1 && (e.fn === 'count' ? e.q.branches[0]!.gens.length > 0 : mentionsOwnColumn(e.q.branches[0]!))) {
    const b = e.q.branches[0]!
    return select(cx, b, () => [{ expr: aggregate(e.fn === 'count' ? undefined : arg(b)), alias: 'v' }], false)
  }
  const parts = branchSelects(cx, e.q, (b) => (e.fn === 'count' ? S.literal(1) : arg(b)))
  return S.selectFromSubquery(S.unionAll(parts), 'u', [{ expr: aggregate(S.col('u', 'v')), alias: 'v' }])
}

/** The kind a NULL operand of `e` should take: the operands' common kind, or what `op` needs. */
function operandKind(e: Extract<NExpr, { k: 'op' }>): ScalarKind {
  switch (e.op) {
    case 'and': case 'or': case 'not': return 'boolean'
    case 'concat': case 'lower': case 'upper': case 'length': case 'like': case 'substring': case 'trim': return 'string'
    case 'mod': return 'int'
    case 'add': case 'sub': case 'mul': case 'neg': case 'abs': case 'div': case 'round': return unifiedKind(e.args, 'int')
    case 'case': return unifiedKind(sameTypeArgs(e))
    case 'year': case 'month': case 'day': case 'addDays': case 'addMonths': case 'addYears': return 'date'
    default: return unifiedKind(e.args)
  }
}

/** Operators whose result has the type of their (value) operands. */
const SAME_TYPE_OPS: ReadonlySet<string> = new Set(['coalesce', 'add', 'sub', 'mul', 'neg', 'abs', 'case', 'round'])

/** The operands whose type the result shares: a case's values, round's number, all others'. */
function sameTypeArgs(e: Extract<NExpr, { k: 'op' }>): readonly NExpr[] {
  return e.op === 'case' ? caseValues(e.args) : e.op === 'round' ? e.args.slice(0, 1) : e.args
}

/** The common kind of some expressions, ignoring NULL constants (`fallback` if all are NULL). */
export function unifiedKind(es: readonly NExpr[], fallback: ScalarKind = 'string'): ScalarKind {
  let kind: ScalarKind = 'null'
  for (const x of es) {
    const k = x.type.kind
    if (k === 'null') continue
    kind = kind === 'null' ? k : kind !== k && (kind === 'real' || k === 'real') ? 'real' : kind !== k && (kind === 'decimal' || k === 'decimal') ? 'decimal' : kind
  }
  return kind === 'null' ? fallback : kind
}

/**
 * The one decimal scale some expressions are written at when they meet (union parts, the
 * operands of an operator, the keys of one order), integers counting as scale 0: the largest.
 * `undefined` unless `kind` is decimal. (SQLite stores decimals as scaled integers, so values of
 * different scales compare, group and aggregate correctly only once rescaled to one.)
 */
export function commonScale(es: readonly NExpr[], kind: ScalarKind): number | undefined {
  return kind === 'decimal' ? Math.max(0, ...es.map((x) => (x.type.kind === 'decimal' ? (x.type.scale ?? 0) : 0))) : undefined
}
