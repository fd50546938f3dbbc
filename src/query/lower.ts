/**
 * Lowering: normal form -> one SQL select (Kysely operation nodes) plus the layout to decode
 * its rows. Each branch becomes `select ... from T1 as g1, ... where ...`; a union becomes
 * `union all`; a nested collection becomes a correlated subquery aggregating its elements into
 * a JSON array, so any query runs as exactly one statement. Dialect differences come from
 * `DialectHooks`; SQL is built only through `sql-nodes.ts`.
 */
import { LineageQueryError } from '../errors.js'
import type { DialectHooks } from './dialect.js'
import { hasLineage, plan, width, type CollLayout, type Layout } from './layout.js'
import { cuts, isScalar, mentionsAlias, queryMentions, specMentions, type Branch, type Gen, type GroupAgg, type GroupSpec, type LinEntry, type NCte, type NExpr, type NQuery, type NTop, type NValue } from './normal.js'
import type { ScalarKind } from './schema.js'
import * as S from './sql-nodes.js'
import { caseValues } from './typing.js'

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

/** A grouped generator lowered in place (`select keys, aggs from ... group by ...`): its columns as expressions. */
type Subst = (col: string) => S.Node

class Lowerer {
  constructor(readonly h: DialectHooks) {}

  /** Grouped generators being lowered in place: alias -> their columns' expressions. */
  readonly subst = new Map<string, Subst>()
  /** The layouts of the nested collections computed as group columns (`alias.col`), with their branch offset. */
  readonly viaLayouts = new Map<string, { readonly l: CollLayout; readonly offset: number; readonly id: string }>()

  // ------------------------------------------------------------ scalars

  param(value: string | number | boolean, kind: ScalarKind, scale = 0): S.Node {
    const p = S.param(kind === 'decimal' ? this.h.decimalToDb(String(value), scale) : this.h.toDb(value))
    const cast = this.h.paramCast(kind)
    return cast === undefined ? p : S.cast(p, cast as 'bigint')
  }

  /** A condition: typed boolean where its NULL-only parts would otherwise default to text. */
  cond(c: NExpr): S.Node {
    return this.exprAs(c, 'boolean')
  }

  /**
   * `e` as a value of `kind` (and, for decimals, of `scale` digits: SQLite's scaled integers
   * are multiplied up to it; integers count as scale 0).
   */
  valueAs(e: NExpr, kind: ScalarKind, scale: number | undefined): S.Node {
    // A constant is bound at the scale it is used at.
    if (kind === 'decimal' && scale !== undefined && e.k === 'const' && e.value !== null) return this.param(String(e.value), 'decimal', scale)
    const n = this.exprAs(e, kind)
    if (kind !== 'decimal' || scale === undefined) return n
    const from = e.type.kind === 'decimal' ? (e.type.scale ?? 0) : 0
    return e.type.kind === 'null' ? n : this.h.rescale(n, scale - from)
  }

  /** A number or decimal operand as a real (decimals converted by their scale). */
  asReal(e: NExpr): S.Node {
    const n = this.exprAs(e, 'real')
    return e.type.kind === 'decimal' ? this.h.decimalToReal(n, e.type.scale ?? 0) : n
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
      case 'col': {
        const sub = this.subst.get(e.alias)
        return sub === undefined ? S.col(e.alias, e.col.name) : sub(e.col.name)
      }
      case 'const':
        return e.value === null ? S.literal(null) : this.param(e.value, e.type.kind, e.type.scale)
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
   * The FROM items of a branch after its generators: one lateral item per shared `Q.let`
   * value, which computes it once per row of the generators before it:
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

  letItems(b: Branch): S.Node[] {
    if (b.lets === undefined || b.lets.length === 0) return []
    // One item per shared value (a value listed twice is the same value: same id, same alias).
    const lets = b.lets.filter((l, i) => b.lets!.findIndex((m) => m.id === l.id) === i)
    return lets.map((l) => {
      const value = this.exprAs(l.value, l.type.kind)
      return this.h.name === 'sqlite'
        ? S.aliased(S.fn('json_each', [S.fn('json_array', [value])]), this.sharedAlias(l.id))
        : S.aliased(S.lateral(S.withOrderAndLimit(S.select({ from: [], selections: [{ expr: value, alias: 'v' }], where: [] }), [], undefined, S.literal(0))), this.sharedAlias(l.id))
    })
  }

  /**
   * `e`, with a NULL constant typed as `kind` (PostgreSQL cannot type a bare NULL operand), and
   * so, inside, an operator of NULLs only whose result has its operands' type (`coalesce(null,
   * null)`, `null + null`): typed by its context, not as text.
   */
  exprAs(e: NExpr, kind: ScalarKind): S.Node {
    if (e.k === 'const' && e.value === null) return this.typedNull(kind)
    if (e.k === 'op' && SAME_TYPE_OPS.has(e.op) && unifiedKind(sameTypeArgs(e), 'null') === 'null') return this.op(e, kind)
    return this.expr(e)
  }

  /** An operator; `context`: the kind of its NULL-only operands, known from where it is used. */
  op(e: Extract<NExpr, { k: 'op' }>, context?: ScalarKind): S.Node {
    const kind = context ?? operandKind(e)
    // Decimal operands share one scale (SQLite: scaled integers), except in mul/div/round.
    const scale = kind === 'decimal' ? Math.max(0, ...e.args.map((x) => (x.type.kind === 'decimal' ? (x.type.scale ?? 0) : 0))) : undefined
    const arg = (x: NExpr) => this.valueAs(x, kind, scale)
    switch (e.op) {
      case 'eq': case 'ne': case 'lt': case 'le': case 'gt': case 'ge': {
        const [x, y] = e.args.map(arg) as [S.Node, S.Node]
        const l = e.op === 'eq' || e.op === 'ne' ? x : this.stringOrder(x, e.args[0]!)
        return S.binary(l, e.op === 'eq' ? '=' : e.op === 'ne' ? '<>' : e.op === 'lt' ? '<' : e.op === 'le' ? '<=' : e.op === 'gt' ? '>' : '>=', y)
      }
      case 'and': return S.and(e.args.map((x) => this.cond(x)))
      case 'or': return S.or(e.args.map((x) => this.cond(x)))
      case 'not': return S.unary('not', this.cond(e.args[0]!))
      case 'add': case 'sub': {
        const [x, y] = e.args.map(arg) as [S.Node, S.Node]
        return S.binary(x, e.op === 'add' ? '+' : '-', y)
      }
      case 'mul': {
        // Scales add up: the product of scaled integers is already at the result's scale.
        const [x, y] = e.args.map((a) => this.exprAs(a, kind)) as [S.Node, S.Node]
        return S.binary(x, '*', y)
      }
      case 'neg': return S.unary('-', S.parens(arg(e.args[0]!)))
      case 'abs': return S.fn('abs', [arg(e.args[0]!)])
      case 'div': {
        const [x, y] = e.args as [NExpr, NExpr]
        if (x.type.kind === 'decimal' || y.type.kind === 'decimal') {
          return this.h.realDiv(this.asReal(x), this.asReal(y))
        }
        const [a, b] = e.args.map((z) => this.exprAs(z, kind)) as [S.Node, S.Node]
        return this.h.name === 'sqlite'
          ? S.binary(S.cast(a, 'real'), '/', b)
          : S.binary(S.cast(a, 'double precision'), '/', S.fn('nullif', [b, S.literal(0)]))
      }
      case 'mod': {
        const [x, y] = e.args.map(arg) as [S.Node, S.Node]
        return this.h.name === 'sqlite' ? S.binary(x, '%', y) : S.binary(x, '%', S.fn('nullif', [y, S.literal(0)]))
      }
      case 'concat': return S.parens(e.args.map(arg).reduce((l, r) => S.binary(l, '||', r)))
      case 'lower':
      case 'upper': {
        const x = arg(e.args[0]!)
        // ASCII-only case mapping on every dialect (SQLite's lower/upper are ASCII-only).
        if (this.h.name === 'sqlite') return S.fn(e.op, [x])
        return e.op === 'lower'
          ? S.fn('translate', [x, S.literal('ABCDEFGHIJKLMNOPQRSTUVWXYZ'), S.literal('abcdefghijklmnopqrstuvwxyz')])
          : S.fn('translate', [x, S.literal('abcdefghijklmnopqrstuvwxyz'), S.literal('ABCDEFGHIJKLMNOPQRSTUVWXYZ')])
      }
      case 'length': return S.fn('length', [arg(e.args[0]!)])
      case 'like': {
        const [x, p] = e.args.map(arg) as [S.Node, S.Node]
        const c = e.args[1]!
        if (c.k !== 'const' || typeof c.value !== 'string') return this.h.likeDynamic(x, p)
        const pattern = c.value
        // A pattern ending in a lone escape (written literally it is a DSL error; here it came
        // from a value substituted by normalisation) matches nothing: NULL, as a computed one.
        if (endsWithLoneEscape(pattern)) return this.typedNull('boolean')
        if (this.h.name === 'sqlite') return S.fn('glob', [S.param(likeToGlob(pattern)), x])
        return S.binary(x, 'like', this.param(pattern, 'string'))
      }
      case 'isNull': return S.binary(arg(e.args[0]!), 'is', S.literal(null))
      case 'isNotNull': return S.binary(arg(e.args[0]!), 'is not', S.literal(null))
      case 'isNotDistinct': {
        const [x, y] = e.args.map(arg) as [S.Node, S.Node]
        return S.binary(x, this.h.nullSafeEq, y)
      }
      case 'in': {
        const a = e.args.map(arg)
        return S.binary(a[0]!, 'in', S.valueList(a.slice(1)))
      }
      case 'coalesce': return S.fn('coalesce', e.args.map(arg))
      case 'case': {
        const whens: [S.Node, S.Node][] = []
        for (let i = 0; i + 1 < e.args.length; i += 2) whens.push([this.cond(e.args[i]!), arg(e.args[i + 1]!)])
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
          return this.h.substringFrom(this.exprAs(s!, 'string'), cap(from), ln === undefined ? undefined : cap(Math.max(st + ln - from, 0)))
        }
        return this.h.substring(this.exprAs(s!, 'string'), this.exprAs(start!, 'int'), len === undefined ? undefined : this.exprAs(len, 'int'))
      }
      case 'trim': return this.h.trim(this.exprAs(e.args[0]!, 'string'))
      case 'round': {
        const x = e.args[0]!
        const digits = (e.args[1] as Extract<NExpr, { k: 'const' }>).value as number
        const n = this.exprAs(x, kind)
        if (x.type.kind === 'decimal') return (x.type.scale ?? 0) <= digits ? n : this.h.roundDecimal(n, x.type.scale ?? 0, digits)
        return x.type.kind === 'real' ? this.h.roundReal(n, digits) : n
      }
      case 'year': case 'month': case 'day': {
        const x = e.args[0]!
        const k = x.type.kind === 'timestamp' ? 'timestamp' : 'date'
        return this.h.datePart(e.op, this.exprAs(x, k), k)
      }
      case 'addDays': case 'addMonths': case 'addYears':
        return this.h.dateAdd(e.op === 'addDays' ? 'day' : e.op === 'addMonths' ? 'month' : 'year', this.exprAs(e.args[0]!, 'date'), this.exprAs(e.args[1]!, 'int'))
    }
  }

  /** The branches of `q` as selects of the single expression `one(branch)` (or `1`). */
  branchSelects(q: NQuery, one: (b: Branch, i: number) => S.Node, alias = 'v', inline = true): S.Select[] {
    return q.branches.map((b, i) => this.select(b, () => [{ expr: one(b, i), alias }], inline))
  }

  // ------------------------------------------------------------ grouped generators

  /**
   * The select of one branch: `sel()` gives its selections (called first: lowering them records
   * what grouped generators must compute). A branch whose only generator is a grouped one is
   * written in place as `select ... from <source> where ... group by <key> having <conds>`
   * when `inline` (the selections are not aggregates themselves) and nothing correlates with
   * the group's columns; otherwise grouped generators are derived tables in FROM.
   */
  select(b: Branch, sel: () => { expr: S.Node; alias: string }[], inline = true, extra: readonly NExpr[] = [], selectsValue = false): S.Select {
    const g = b.gens[0]
    // (A branch computing shared `Q.let` values keeps its FROM: the values are lateral items.)
    if (inline && b.gens.length === 1 && g?.group !== undefined && g.group.keys[0]!.length > 0 && (b.lets ?? []).length === 0 && this.canInline(b, g, extra)) return this.inlineGroup(b, g, sel, selectsValue)
    const lateral = this.enterLateral(b.gens)
    try {
      const selections = sel()
      const where = b.conds.map((c) => this.cond(c))
      return S.select({ from: b.gens.map((x) => this.fromItem(x, lateral.has(x.alias))), extra: this.letItems(b), selections, where })
    } finally {
      for (const a of lateral) this.subst.delete(a)
    }
  }

  /**
   * The grouped generators of `gens` whose source reads an earlier generator of `gens` (they
   * are lateral); on SQLite their columns are read from `json_each` rows from now on (until the
   * caller removes them from `subst`).
   */
  enterLateral(gens: readonly Gen[]): Set<string> {
    const lateral = new Set(gens.filter((x, i) => x.group !== undefined && gens.slice(0, i).some((o) => specMentions(x.group!, o.alias))).map((x) => x.alias))
    if (this.h.lateral === 'jsonEach') for (const a of lateral) this.subst.set(a, (col) => S.fn('json_extract', [S.col(a, 'value'), S.literal(`$.${col}`)]))
    return lateral
  }

  /**
   * A generator as a FROM item. A lateral grouped generator (correlated with an earlier one) is
   * `lateral (select ...)` on PostgreSQL; SQLite has no LATERAL, but a table-valued function may
   * read earlier FROM items: `json_each((select json_group_array(json_object('k0', k0, ...)) from
   * (select ...)))`, its columns read back with `json_extract(value, '$.k0')`.
   */
  fromItem(g: Gen, lateral = false): S.FromItem {
    if (g.group === undefined) return { table: g.table.name, alias: g.alias }
    const sub = this.groupSelect(g)
    if (!lateral) return { sub, alias: g.alias }
    if (this.h.lateral === 'lateral') return { sub: S.lateral(sub), alias: g.alias }
    const cols = (sub.selections ?? []).map((x) => (x.selection as unknown as { alias: { name: string } }).alias.name)
    const rows = S.selectFromSubquery(sub, 'r', [{ expr: S.agg(this.h.jsonAgg, [S.fn('json_object', cols.flatMap((c) => [S.literal(c), S.col('r', c)]))]), alias: 'v' }])
    return { sub: S.fn('json_each', [rows]), alias: g.alias }
  }

  /** Whether a branch over one grouped generator can be written as the GROUP BY itself. */
  canInline(b: Branch, g: Gen, extra: readonly NExpr[]): boolean {
    const s = g.group!
    // Nothing may correlate with the group's columns (they are aggregates here).
    const correlated = (v: NValue): boolean => subqueryMentions(v, g.alias)
    if (b.conds.some(correlated) || correlated(b.value) || extra.some(correlated)) return false
    // Several source branches, rows without a table, keys with subqueries: grouped from a derived table.
    if (!directGroup(s)) return true
    const own = s.source[0]!.gens.map((x) => x.alias)
    const varies = s.keys[0]!.map((k) => own.some((a) => mentionsAlias(k, a)))
    // At least one key to group by; PostgreSQL matches GROUP BY expressions to selected ones
    // textually: no parameters in grouped keys; SQLite resolves no outer column in GROUP BY.
    return varies.includes(true) && !s.keys[0]!.some((k, i) => varies[i] && (hasConst(k) || !readsOnly(k, own)))
  }

  /** The key and aggregate expressions of a grouped generator, over its source; `from`/`where` built last. */
  groupCore(g: Gen): { key: (i: number) => S.Node; grouped: boolean[]; agg: (name: string) => S.Node | undefined; finish: () => { from: S.FromItem[]; where: S.Node[] } } {
    const s = g.group!
    const aggNodes = new Map<string, S.Node | undefined>()
    // One source branch over tables is grouped in place; several branches, rows without a
    // table (outer columns only), or keys computed by subqueries (PostgreSQL does not see a
    // correlated subquery as grouped) are grouped as a derived table.
    if (directGroup(s)) {
      const b = s.source[0]!
      const lateral = this.enterLateral(b.gens)
      const keys = s.keys[0]!.map((k) => this.expr(k))
      const agg = (name: string) => {
        if (!aggNodes.has(name)) aggNodes.set(name, this.groupAgg(g, name))
        return aggNodes.get(name)
      }
      // A key that reads no column of the rows is constant here: it is not grouped by.
      const own = b.gens.map((x) => x.alias)
      const grouped = s.keys[0]!.map((k) => own.some((a) => mentionsAlias(k, a)))
      return {
        key: (i) => keys[i]!,
        grouped,
        agg,
        finish: () => {
          try {
            const where = b.conds.map((c) => this.cond(c))
            return { from: b.gens.map((x) => this.fromItem(x, lateral.has(x.alias))), where }
          } finally {
            for (const a of lateral) this.subst.delete(a)
          }
        },
      }
    }
    // Several source branches: `(select key as k0, arg as a0, flag as f0 ... union all ...) as u`.
    const u = `${g.alias}u`
    const used = new Set<string>()
    const agg = (name: string) => {
      const j = aggIndex(name)
      const a = s.aggs[j]!
      if (a.fn === 'json' && !this.viaLayouts.has(`${g.alias}.${name}`)) return undefined
      used.add(name)
      // Count the rows with a flag (`count(u.f)`), when some rows do not take part.
      if (a.fn === 'count' && !a.distinct) return needsFlag(a, s.source.length) ? S.agg('count', [S.col(u, `f${j}`)]) : S.countAll()
      const flag = needsFlag(a, s.source.length) ? S.binary(S.col(u, `f${j}`), 'is not', S.literal(null)) : undefined
      const arg = S.col(u, name)
      return this.aggregateNode(a, a.fn === 'json' && this.h.jsonAsText && this.jsonElement(g, name) ? S.fn('json', [arg]) : arg, flag, true)
    }
    return {
      key: (i) => S.col(u, `k${i}`),
      grouped: s.keys[0]!.map(() => true),
      agg,
      finish: () => {
        for (const name of this.aggNames(g)) agg(name)
        const keyKinds = s.keys[0]!.map((_, i) => unifiedKind(s.keys.map((ks) => ks[i]!)))
        // Decimal keys of the union's parts at one scale (SQLite stores scaled integers).
        const keyScales = s.keys[0]!.map((_, i) => Math.max(0, ...s.keys.map((ks) => (ks[i]!.type.kind === 'decimal' ? (ks[i]!.type.scale ?? 0) : 0))))
        const parts = s.source.map((b, i) =>
          this.select(b, () => {
            const out = s.keys[i]!.map((k, j) => ({ expr: this.valueAs(k, keyKinds[j]!, keyScales[j]), alias: `k${j}` }))
            const flagged = new Set<number>()
            for (const name of this.aggNames(g).filter((n) => used.has(n))) {
              const j = aggIndex(name)
              const a = s.aggs[j]!
              const part = a.parts.find((p) => p.branch === i)
              const isJson = a.fn === 'json' || a.fn === 'lineage'
              const single = a.fn === 'json' && !this.jsonElement(g, name)
              const elemKind = single ? (this.viaLayouts.get(`${g.alias}.${name}`)?.l.elem as { type?: { kind: ScalarKind } } | undefined)?.type?.kind : undefined
              const nullArg = isJson && !this.h.jsonAsText && !single ? S.cast(S.literal(null), 'json') : this.typedNull(elemKind ?? argKind(a))
              const flag = needsFlag(a, s.source.length)
              const countAll = a.fn === 'count' && !a.distinct
              if (part === undefined) {
                if (!countAll) out.push({ expr: nullArg, alias: name })
                if (flag && !flagged.has(j)) out.push({ expr: this.typedNull('int'), alias: `f${j}` })
                flagged.add(j)
                continue
              }
              const cond = part.filter.length === 0 ? undefined : S.and(part.filter.map((c) => this.cond(c)))
              if (!countAll) {
                const arg = this.partArg(g, name, part.arg, i)
                out.push({ expr: cond === undefined || isJson ? arg : S.caseWhen(cond, arg), alias: name })
              }
              if (flag && !flagged.has(j)) out.push({ expr: cond === undefined ? S.literal(1) : S.caseWhen(cond, S.literal(1)), alias: `f${j}` })
              flagged.add(j)
            }
            if (out.length === 0) out.push({ expr: S.literal(1), alias: '#' })
            return out
          }),
        )
        return { from: [{ sub: S.unionAll(parts), alias: u }], where: [] }
      },
    }
  }

  /**
   * The column computing a group's nested collection laid out as `l` (from branch `offset`):
   * `a<j>`, or `a<j>_<n>` when the same collection is also laid out differently elsewhere.
   */
  viaColumn(alias: string, col: string, l: CollLayout, offset: number): string {
    const id = layoutId(l)
    for (let n = 0; ; n++) {
      const name = n === 0 ? col : `${col}_${n}`
      const seen = this.viaLayouts.get(`${alias}.${name}`)
      if (seen === undefined) {
        this.viaLayouts.set(`${alias}.${name}`, { l, offset, id })
        return name
      }
      if (seen.offset === offset && seen.id === id) return name
    }
  }

  /** The aggregate columns of a grouped generator: `a<j>`, and a column per layout of a nested collection. */
  aggNames(g: Gen): string[] {
    return g.group!.aggs.flatMap((a, j) => {
      if (a.fn !== 'json') return [`a${j}`]
      const out: string[] = []
      for (let n = 0; this.viaLayouts.has(`${g.alias}.${n === 0 ? `a${j}` : `a${j}_${n}`}`); n++) out.push(n === 0 ? `a${j}` : `a${j}_${n}`)
      return out
    })
  }

  /** Whether json aggregate `j` of `g` has elements that are JSON themselves (need `json(...)` on SQLite). */
  jsonElement(g: Gen, name: string): boolean {
    const v = this.viaLayouts.get(`${g.alias}.${name}`)
    if (v === undefined || v.l.elem === undefined) return false
    return v.l.tagged || width(v.l.elem) !== 1 || collSlots(v.l.elem)[0] === true
  }

  /** The argument of aggregate `j` for source branch `branch` (an element, a lineage row, or a scalar). */
  partArg(g: Gen, name: string, arg: NValue | undefined, branch: number): S.Node {
    const a = g.group!.aggs[aggIndex(name)]!
    if (a.fn === 'json') {
      const v = this.viaLayouts.get(`${g.alias}.${name}`)!
      const elem = v.l.elem!
      const idx = a.parts.findIndex((p) => p.branch === branch)
      const tag = v.l.tagged ? S.literal(v.offset + idx) : undefined
      const el = this.element(this.slots(arg!, elem, v.offset + idx), collSlots(elem), tag, slotKinds(elem))
      // PostgreSQL cannot aggregate an untyped NULL into JSON.
      return elem.k === 'scalar' && elem.type.kind === 'null' && tag === undefined && this.h.name === 'postgres' ? S.cast(el, 'text') : el
    }
    if (a.fn === 'lineage') {
      const entries = (arg as Extract<NValue, { k: 'lin' }>).entries
      return S.fn(this.h.jsonArray, [S.literal(branch), ...entries.flatMap((e) => this.linKeys(e))])
    }
    if (arg === undefined) return S.literal(1)
    return this.exprAs(arg as NExpr, argKind(a))
  }

  /** The key values of a lineage entry inside a group's lineage row. */
  linKeys(e: LinEntry): S.Node[] {
    return e.key.map((k) => this.expr(k))
  }

  /** Aggregate `j` of grouped generator `g` with a single source branch, over that branch. */
  groupAgg(g: Gen, name: string): S.Node | undefined {
    const a = g.group!.aggs[aggIndex(name)]!
    if (a.fn === 'json' && !this.viaLayouts.has(`${g.alias}.${name}`)) return undefined
    const part = a.parts[0]!
    const cond = part.filter.length === 0 ? undefined : S.and(part.filter.map((c) => this.cond(c)))
    const arg = a.fn === 'count' && !a.distinct ? undefined : this.partArg(g, name, part.arg, part.branch)
    return this.aggregateNode(a, arg, cond, false)
  }

  /** `fn(arg)` over a group, keeping the rows where `cond` holds (FILTER or CASE, by dialect). */
  aggregateNode(a: GroupAgg, arg: S.Node | undefined, cond: S.Node | undefined, viaFlag: boolean): S.Node {
    const useCase = cond !== undefined && this.h.filteredAggregate === 'case' && a.fn !== 'json' && a.fn !== 'lineage' && !viaFlag
    switch (a.fn) {
      case 'count':
        if (a.distinct) return S.agg('count', [useCase ? S.caseWhen(cond!, arg!) : arg!], { distinct: true, filter: useCase || viaFlag ? undefined : cond })
        if (cond === undefined) return S.countAll()
        return useCase ? S.agg('count', [S.caseWhen(cond, S.literal(1))]) : S.agg('count', [{ kind: 'SelectAllNode' } as S.Node], { filter: cond })
      case 'sum': case 'min': case 'max': case 'avg': {
        const x = a.fn === 'min' || a.fn === 'max' ? (a.type.kind === 'string' && this.h.binaryCollation !== undefined ? S.collate(arg!, this.h.binaryCollation) : arg!) : arg!
        if (viaFlag) return S.agg(a.fn, [x])
        return useCase ? S.agg(a.fn, [S.caseWhen(cond!, x)]) : S.agg(a.fn, [x], { filter: cond })
      }
      case 'json': {
        const j = S.agg(this.h.jsonAgg, [arg!], { filter: cond })
        return this.h.name === 'postgres' ? S.fn('coalesce', [j, S.fn(this.h.jsonArray, [])]) : j
      }
      case 'lineage': {
        const j = S.agg(this.h.jsonAgg, [this.h.jsonAsText && viaFlag ? S.fn('json', [arg!]) : arg!], { filter: cond })
        return this.h.jsonAsText ? j : S.cast(j, 'text')
      }
    }
  }

  /** The derived table of a grouped generator: `select k0, ..., a0, ... from ... group by 1, ...`. */
  groupSelect(g: Gen): S.Select {
    const s = g.group!
    const core = this.groupCore(g)
    const nk = s.keys[0]!.length
    const selections: { expr: S.Node; alias: string }[] = []
    for (let i = 0; i < nk; i++) selections.push({ expr: core.key(i), alias: `k${i}` })
    const positions = core.grouped.flatMap((x, i) => (x ? [S.literal(i + 1)] : []))
    // Without a key that varies: grouped by a constant column, so no rows make no group (not one);
    // a whole-source group (rule `one-scan-aggregates`) is one row always: no GROUP BY.
    if (positions.length === 0 && s.whole === undefined) {
      selections.push({ expr: S.literal(0), alias: '#k' })
      positions.push(S.literal(selections.length))
    }
    for (const name of this.aggNames(g)) {
      const n = core.agg(name)
      if (n !== undefined) selections.push({ expr: n, alias: name })
    }
    const { from, where } = core.finish()
    return S.select({ from, selections, where, groupBy: positions })
  }

  /** A branch over one grouped generator written as the GROUP BY itself (`select distinct` when it yields exactly the key). */
  inlineGroup(b: Branch, g: Gen, sel: () => { expr: S.Node; alias: string }[], selectsValue: boolean): S.Select {
    const s = g.group!
    const core = this.groupCore(g)
    const nk = s.keys[0]!.length
    this.subst.set(g.alias, (col) => {
      const n = col.startsWith('k') ? core.key(Number(col.slice(1))) : core.agg(col)
      if (n === undefined) throw new Error(`internal: group column ${col} not computed`)
      return n
    })
    let selections: { expr: S.Node; alias: string }[]
    let having: S.Node[]
    try {
      selections = sel()
      having = b.conds.map((c) => this.cond(c))
    } finally {
      this.subst.delete(g.alias)
    }
    const { from, where } = core.finish()
    // `select distinct` only when the selections are the branch's value and it is the key.
    if (selectsValue && s.aggs.length === 0 && having.length === 0 && nk > 0 && yieldsExactlyKeys(b.value, g.alias, nk)) {
      return S.select({ from, selections, where, distinct: true })
    }
    return S.select({ from, selections, where, groupBy: core.grouped.flatMap((x, i) => (x ? [core.key(i)] : [])), having })
  }



  /**
   * The branches of an ordered query as selects of `cols(branch)` plus its order keys as
   * columns `o0, o1, ...`; when the query is limited, the union ordered by them and cut, so it
   * is a derived table holding the kept elements only.
   */
  orderedUnion(q: NQuery, cols: (b: Branch, i: number) => { readonly expr: S.Node; readonly alias: string }[]): S.Select {
    const order = q.order!
    const kinds = order.directions.map((_, j) => unifiedKind(order.keys.map((ks) => ks[j]!)))
    const parts = q.branches.map((b, i) =>
      this.select(b, () => {
        const selections = cols(b, i)
        ;(order.keys[i] ?? []).forEach((k, j) => selections.push({ expr: this.stringOrder(this.exprAs(k, kinds[j]!), k), alias: `o${j}` }))
        if (selections.length === 0) selections.push({ expr: S.literal(1), alias: '#' })
        return selections
      }, false),
    )
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
    const arg = (b: Branch) => {
      const v = b.value as NExpr
      return e.fn === 'avg' ? this.asReal(v) : this.valueAs(v, argKind, e.type.scale)
    }
    const aggregate = (arg: S.Node | undefined) => (e.fn === 'count' ? S.countAll() : S.agg(e.fn, [fnArg(arg!)]))
    if (cuts(e.q.order)) {
      // An aggregate over a limited query aggregates the kept elements: a derived table.
      const inner = this.orderedUnion(e.q, (b) => [{ expr: e.fn === 'count' ? S.literal(1) : arg(b), alias: 'v' }])
      return S.selectFromSubquery(inner, 'u', [{ expr: aggregate(S.col('u', 'v')), alias: 'v' }])
    }
    // An aggregate whose argument mentions only outer columns belongs to the outer query in
    // SQL, so unless it mentions a column of its own branch it aggregates a derived table.
    if (e.distinct === true) {
      // Rule `count-distinct`: count(distinct x), NULL not counted.
      const b0 = e.q.branches[0]!
      if (e.q.branches.length === 1 && mentionsOwnColumn(b0)) {
        return this.select(b0, () => [{ expr: S.agg('count', [this.exprAs(b0.value as NExpr, unifiedKind([b0.value as NExpr]))], { distinct: true }), alias: 'v' }], false)
      }
      const kind = unifiedKind(e.q.branches.map((b) => b.value as NExpr))
      const parts = this.branchSelects(e.q, (b) => this.exprAs(b.value as NExpr, kind))
      return S.selectFromSubquery(S.unionAll(parts), 'u', [{ expr: S.agg('count', [S.col('u', 'v')], { distinct: true }), alias: 'v' }])
    }
    if (e.q.branches.length === 1 && (e.fn === 'count' ? e.q.branches[0]!.gens.length > 0 : mentionsOwnColumn(e.q.branches[0]!))) {
      const b = e.q.branches[0]!
      return this.select(b, () => [{ expr: aggregate(e.fn === 'count' ? undefined : arg(b)), alias: 'v' }], false)
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
        return [this.valueAs(v as NExpr, l.type.kind, l.type.scale)]
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
      case 'coll': {
        const c = v as Extract<NValue, { k: 'coll' }>
        if (c.via !== undefined) {
          // Rule `coll-of-group`: a column of the grouped generator.
          const name = this.viaColumn(c.via.alias, c.via.col, l, l.offsets[branch] ?? 0)
          const sub = this.subst.get(c.via.alias)
          return [sub === undefined ? S.col(c.via.alias, name) : sub(name)]
        }
        return [this.coll(c.q, l, l.offsets[branch] ?? 0)]
      }
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
  element(slots: readonly S.Node[], isColl: readonly boolean[], tag: S.Node | undefined, kinds: readonly (ScalarKind | undefined)[] = []): S.Node {
    const embedded = slots.map((x, i) => (isColl[i] ? this.embedJson(x) : kinds[i] !== undefined ? this.h.jsonSlot(x, kinds[i]!) : x))
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
      return this.select(b, () => [{ expr: aggregate(this.element(this.slots(b.value, elem, offset), isColl, l.tagged ? S.literal(offset) : undefined, slotKinds(elem))), alias: 'v' }], false)
    }
    // Union parts select plain columns; the outer aggregate builds each element once.
    const names = isColl.map((_, i) => `c${i}`)
    const parts = q.branches.map((b, i) =>
      this.select(b, () => {
        const selections = this.slots(b.value, elem, offset + i).map((expr, j) => ({ expr, alias: names[j]! }))
        if (l.tagged) selections.push({ expr: S.literal(offset + i), alias: 't' })
        if (selections.length === 0) selections.push({ expr: S.literal(1), alias: '#' })
        return selections
      }),
    )
    const el = this.element(names.map((n) => S.col('u', n)), isColl, l.tagged ? S.col('u', 't') : undefined, slotKinds(elem))
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
      const items = (): S.OrderItem[] => {
        const out: S.OrderItem[] = []
        order.directions.forEach((dir, j) => {
          const k = order.keys[0]![j]!
          if (k.k !== 'const') out.push({ expr: this.expr(k), dir, collation: k.type.kind === 'string' ? this.h.binaryCollation : undefined })
        })
        return out
      }
      return this.select(b, () => [{ expr: aggregate(this.element(this.slots(b.value, elem, offset), isColl, l.tagged ? S.literal(offset) : undefined), items()), alias: 'v' }], false)
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

  /**
   * The order items of a one-branch query: its order key expressions, or the output column of
   * a key that is a yielded computed field (`byColumn`, rule "order by output column").
   */
  orderItems(t: NTop, order: S.OrderItem[], byColumn: readonly (number | undefined)[] = [], columns: readonly string[] = []): void {
    t.directions.forEach((dir, j) => {
      const c = byColumn[j]
      if (c !== undefined) return order.push({ expr: S.columnRef(columns[c]!), dir })
      const key = t.orderKeys[0]?.[j]
      // A constant key orders nothing (and PostgreSQL rejects `order by null`).
      if (key === undefined || key.k === 'const') return
      const collation = key.type.kind === 'string' ? this.h.binaryCollation : undefined
      return order.push({ expr: this.expr(key), dir, collation })
    })
  }

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
    const keyScales = t.directions.map((_, j) => Math.max(0, ...t.orderKeys.map((ks) => (ks[j]!.type.kind === 'decimal' ? (ks[j]!.type.scale ?? 0) : 0))))
    const order: S.OrderItem[] = []
    const selects = branches.map((b, i) =>
      this.select(
        b,
        () => {
          const data = value === undefined ? [] : this.slots(b.value, value, i)
          const selections = data.map((expr, j) => ({ expr: collated.has(j) ? S.collate(expr, this.h.binaryCollation!) : expr, alias: columns[j]! }))
          if (selections.length === 0) selections.push({ expr: S.literal(1), alias: '#' })
          if (tag !== undefined) selections.push({ expr: S.literal(i), alias: tag })
          if (multi) {
            t.orderKeys[i]!.forEach((k, j) => {
              if (byColumn[j] === undefined) selections.push({ expr: this.stringOrder(this.valueAs(k, keyKinds[j]!, keyScales[j]), k), alias: `#o${j}` })
            })
          }
          // One branch orders by its own expressions (lowered here, where a group's columns are known).
          else this.orderItems(t, order, byColumn, columns)
          return selections
        },
        true,
        multi ? [] : (t.orderKeys[0] ?? []),
        // (PostgreSQL: SELECT DISTINCT orders only by selected expressions; GROUP BY otherwise.)
        t.directions.length === 0,
      ),
    )
    if (selects.length === 0) {
      // No branch can produce a row: a statement that returns none, so callers still get one.
      selects.push(S.select({ from: [], selections: [{ expr: S.literal(1), alias: '#' }], where: [S.binary(S.literal(1), '=', S.literal(0))] }))
    }
    if (multi) t.directions.forEach((dir, j) => order.push({ expr: S.columnRef(byColumn[j] !== undefined ? columns[byColumn[j]!]! : `#o${j}`), dir }))
    const limit = t.limit !== undefined ? S.param(t.limit) : t.offset > 0 && this.h.name === 'sqlite' ? S.param(-1) : undefined
    const offset = t.offset > 0 ? S.param(t.offset) : undefined
    const select = S.withOrderAndLimit(S.unionAll(selects), branches.length === 0 ? [] : order, limit, offset)
    return { select: t.ctes === undefined ? select : S.withCtes(select, t.ctes.map((c) => this.cte(c))), layout: { columns, value, tag } }
  }

  /**
   * A CTE's body: its branches selecting the columns `c0, c1, ...` of its pseudo-table. A branch
   * over one grouped generator is written as the GROUP BY itself (as a person writes TPC-H Q15's
   * `revenue0`), not as a select from the grouped derived table: SQLite evaluated the wrapped
   * form 3-4x slower.
   */
  cte(c: NCte): { readonly name: string; readonly select: S.Select } {
    const layout = plan(c.query.branches.map((b) => b.value))
    const names = c.def.columns.map((col) => col.name)
    const parts = c.query.branches.map((b, i) => this.select(b, () => this.slots(b.value, layout, i).map((expr, j) => ({ expr, alias: names[j]! })), true))
    return { name: c.def.name, select: S.unionAll(parts) }
  }
}

/** Whether an expression reads columns of `own` only (no outer column, no subquery). */
function readsOnly(e: NExpr, own: readonly string[]): boolean {
  switch (e.k) {
    case 'col': return own.includes(e.alias)
    case 'const': return true
    case 'op': return e.args.every((a) => readsOnly(a, own))
    case 'exists': case 'agg': case 'shared': case 'witness': return false
  }
}

function hasConst(e: NExpr): boolean {
  return e.k === 'const' || (e.k === 'op' && e.args.some(hasConst))
}

/** Whether a value reads a column of `alias` inside a nested query (a correlated subquery). */
function subqueryMentions(v: NValue, alias: string): boolean {
  switch (v.k) {
    case 'col': case 'const': return false
    case 'op': return v.args.some((a) => subqueryMentions(a, alias))
    case 'exists': case 'agg': case 'witness': return queryMentions(v.q, alias)
    // a shared `Q.let` value is computed in the branch's FROM: read as a column there
    case 'shared': return mentionsAlias(v.value, alias)
    case 'rec': return v.fields.some(([, f]) => subqueryMentions(f, alias))
    case 'coll': return v.via === undefined && queryMentions(v.q, alias)
    case 'lin': return v.entries.some((e) => e.witness !== undefined && e.key.some((k) => subqueryMentions(k, alias)))
  }
}

/** Whether a value is exactly the key columns `k0, k1, ...` of grouped generator `alias`, in order. */
function yieldsExactlyKeys(v: NValue, alias: string, nk: number): boolean {
  const out: NExpr[] = []
  const walk = (x: NValue): boolean => {
    if (isScalar(x)) return out.push(x) > 0
    return x.k === 'rec' ? x.fields.every(([, f]) => walk(f)) : false
  }
  if (!walk(v) || out.length !== nk) return false
  return out.every((x, i) => x.k === 'col' && x.alias === alias && x.col.name === `k${i}`)
}

/** Whether a group is computed directly over its one source branch (else over a derived table of its rows). */
function directGroup(s: GroupSpec): boolean {
  return s.source.length === 1 && s.source[0]!.gens.length > 0 && !s.keys[0]!.some(hasSubquery)
}

function hasSubquery(e: NExpr): boolean {
  return e.k === 'exists' || e.k === 'agg' || e.k === 'witness' || e.k === 'shared' || (e.k === 'op' && e.args.some(hasSubquery))
}

/** The aggregate index of a group column name `a<j>` or `a<j>_<n>`. */
function aggIndex(name: string): number {
  return Number(/^a(\d+)/.exec(name)![1])
}

/** A structural identity of a layout (codecs by name). */
function layoutId(l: Layout): string {
  return JSON.stringify(l, (k, v) => (k === 'codec' ? (v as { name?: string } | undefined)?.name : v))
}

/** Whether some rows of a group over several source branches do not take part in aggregate `a` (a flag column marks those that do). */
function needsFlag(a: GroupAgg, sources: number): boolean {
  return a.parts.length < sources || a.parts.some((p) => p.filter.length > 0)
}

/** The kind of an aggregate's argument (typed NULLs in union parts). */
function argKind(a: GroupAgg): ScalarKind {
  return a.fn === 'avg' ? 'real' : a.fn === 'count' || a.fn === 'json' || a.fn === 'lineage' ? (a.fn === 'count' ? 'int' : 'string') : a.type.kind
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
function unifiedKind(es: readonly NExpr[], fallback: ScalarKind = 'string'): ScalarKind {
  let kind: ScalarKind = 'null'
  for (const x of es) {
    const k = x.type.kind
    if (k === 'null') continue
    kind = kind === 'null' ? k : kind !== k && (kind === 'real' || k === 'real') ? 'real' : kind !== k && (kind === 'decimal' || k === 'decimal') ? 'decimal' : kind
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

/** For each slot of a layout, the kind of scalar it holds (`undefined`: a collection or lineage). */
function slotKinds(l: Layout): (ScalarKind | undefined)[] {
  switch (l.k) {
    case 'scalar': return [l.type.kind]
    case 'coll': return [undefined]
    case 'lin': return l.slots.map(() => undefined)
    case 'rec': return l.fields.flatMap(([, f]) => slotKinds(f))
  }
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
    v.k === 'rec' ? v.fields.some(([, f]) => inValue(f)) : v.k === 'lin' ? v.entries.some((x) => x.key.some(inExpr)) : v.k === 'coll' ? v.via !== undefined && own.has(v.via.alias) : inExpr(v)
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

/** Whether a LIKE pattern ends with an escape character that escapes nothing. */
export function endsWithLoneEscape(pattern: string): boolean {
  let escaped = false
  for (const ch of pattern) escaped = !escaped && ch === '\\'
  return escaped
}

function checkLikePattern(pattern: string): void {
  if (endsWithLoneEscape(pattern)) throw new LineageQueryError('type', `Q.like: the pattern ${JSON.stringify(pattern)} ends with an escape character (\\); escape it as \\\\ to match a backslash`, { pattern })
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

