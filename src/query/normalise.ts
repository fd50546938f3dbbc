/**
 * Normalisation: comprehension AST -> normal form (`normal.ts`).
 *
 * The rewrite rules of Cheney, Lindley & Wadler (ICFP 2013), applied by symbolic evaluation
 * in one pass: variables are bound to normalised values instead of being substituted, so
 * - beta reduction of records and functions: `({a: M}).a ~> M`, and helper functions are plain
 *   TypeScript calls that already ran when the DSL built the AST;
 * - `for x in (for y in L. M). N ~> for y in L. for x in M. N` (for over for);
 * - `for x in yield M. N ~> N[x := M]` (for over yield);
 * - `for x in (M ++ N). O ~> (for x in M. O) ++ (for x in N. O)` (for over union);
 * - `for x in (where c. M). N ~> where c. for x in M. N` (hoisting conditions);
 * - `for x in d.f` where `d.f` is a nested collection built by an intermediate query: the
 *   collection's branches are inlined with fresh aliases (nested intermediate data).
 * Grouping (`Q.groupBy`, `Q.distinct`) extends the normal form with grouped generators
 * (`Gen.group`): one row per group, carrying key columns and the aggregates of its rows:
 * - `for-group`: `for g in groupBy(M, k). N ~> for g in G. N'`, G a grouped generator over M's
 *   branches with key `k`; in N, `g.key` is G's key columns and `g.group` is M's branches with
 *   the condition `k(row) IS NOT DISTINCT FROM g.key` (a correlated collection, always correct);
 * - `agg-of-group`: an aggregate of a query that only filters and maps `g.group` becomes a
 *   column of G: `agg(for l in g.group. where c. yield e) ~> G.a` with `a = agg(e) FILTER (WHERE c)`
 *   computed in the GROUP BY (HAVING when it is used in a condition);
 * - `count-distinct`: `count(distinct(M))` over scalars is `COUNT(DISTINCT x)` (NULL not counted),
 *   a column of G when M only maps `g.group`;
 * - `coll-of-group`: a nested collection that only filters and maps `g.group` becomes a column
 *   of G holding its JSON array (json_agg / json_group_array in the same GROUP BY);
 * - `distinct`: `distinct(M) ~> for g in groupBy(M, x => x). yield g.key`;
 * - `lineage-of-group`: the lineage of a group's rows (`linGroup`) becomes a column of G: one
 *   JSON array of the rows' key entries (see `src/lineage/rewrite.ts`).
 * - `same-aggregate`: an aggregate a group already computes is that column (`addAgg`).
 * - `fold-dates`: date arithmetic on constants is a date constant (`foldDate`).
 * - `inline-scalar-let` (`inline-let.ts`, after the rest): an uncorrelated `Q.let` scalar a
 *   top-level branch uses once is that scalar subquery where it is used (HAVING for TPC-H Q11).
 * - `one-scan-aggregates` (`share-scans.ts`, after the rest): aggregates a generator-less
 *   top-level branch computes over the same rows become the columns of one aggregate scan.
 * - `or-factor` (`factor-or.ts`): in a `Q.where` condition, conjuncts common to every branch of
 *   a disjunction are taken out of it, and each generator's share of the branches is added as an
 *   implied filter, so a join or a selective filter written inside each branch is seen as one.
 * Every query whose result type is flat therefore becomes one union of branches, one SQL
 * statement. Type errors and unknown columns are reported here, where the input is still
 * recognisable.
 */
import { LineageQueryError } from '../errors.js'
import type * as ast from './ast.js'
import {
  branchOf,
  constant,
  constType,
  cuts,
  freshSharedId,
  renameLets,
  WITNESS_TABLE,
  isClosed,
  isScalar,
  mentionsAlias,
  renameBranch,
  sameExpr,
  renameValue,
  mapSame,
  RowRecord,
  SharedSearch,
  type Branch,
  type Gen,
  type GroupAgg,
  type GroupAggPart,
  type GroupedLinBranch,
  type LinEntry,
  type NCte,
  type NExpr,
  type NOrder,
  type NQuery,
  type NTop,
  type NValue,
  type SharedExpr,
} from './normal.js'
import { plan } from './layout.js'
import { columnOf, unify, type ColumnDef, type SType, type TableDef } from './schema.js'
import { aggType, caseValues, opType } from './typing.js'
import { addToDate, fixScale, isDateString, scaleOf, Timestamp } from './codecs.js'
import { endsWithLoneEscape } from './dialect.js'
import { factorOr } from './factor-or.js'
import { shareScans } from './share-scans.js'
import { inlineScalarLets } from './inline-let.js'

/**
 * The values of the variables bound so far, innermost first: a persistent list, so binding a
 * variable is one allocation (no copy of the enclosing bindings) and lookups walk a few links.
 */
type Env = { readonly id: number; readonly value: NValue; readonly next: Env } | undefined

/** A grouped generator whose body is being normalised: aggregates over its groups are collected here. */
interface GroupBuild {
  readonly id: number
  readonly alias: string
  readonly source: readonly Branch[]
  readonly table: TableDef
  readonly columns: ColumnDef[]
  readonly aggs: GroupAgg[]
  /** The aliases the source reads (its own and those it is correlated with): see `readsOf`, computed when first asked. */
  reads: ReadonlySet<string> | undefined
}

/** The parts of an aggregate over a group, when a query only filters and maps `g.group`. */
interface Collected {
  readonly build: GroupBuild
  readonly parts: readonly GroupAggPart[]
}

/**
 * Synthetic columns (aggregates, computed keys) decode by their static type: no codec. A key
 * that is one table column in every branch keeps that column's codec.
 */
const NO_CODEC = undefined as unknown as ColumnDef['codec']

class Normaliser {
  #aliases = 0
  /** CTEs made by `Q.let` (see `cte`), in creation order. */
  readonly ctes: NCte[] = []
  #groups = 0
  /** Grouped generators whose bodies are being normalised, innermost last. */
  readonly open: GroupBuild[] = []
  /** Every grouped generator built, by id: aggregates found later (a `for` over a grouped query) join it too. */
  readonly builds = new Map<number, GroupBuild>()

  fresh(hint: string): string {
    const h = hint.charCodeAt(0) | 0x20 // ASCII letters to lower case
    const c = h >= 0x61 && h <= 0x7a ? String.fromCharCode(h) : 'x'
    return `${c}${this.#aliases++}`
  }

  value(e: ast.Expr, env: Env): NValue {
    switch (e.kind) {
      case 'table': {
        const alias = this.fresh(e.table.name)
        return { k: 'coll', q: { branches: [{ gens: [{ alias, table: e.table }], conds: [], value: new RowRecord(alias, e.table) }] } }
      }
      case 'for':
        if (e.source.kind === 'group') {
          const ge = e.source
          return { k: 'coll', q: this.forGroup(this.query(ge.source, env, 'Q.groupBy'), (row) => this.value(ge.key, bindEnv(env, ge.v, row)), (g) => this.query(e.body, bindEnv(env, e.v, g), 'the body of Q.for'), 'Q.groupBy') }
        }
        return { k: 'coll', q: this.for(e, env) }
      case 'group': {
        // A grouped query used as such: `for g in groupBy(M, k). yield g`.
        const ge = e
        return {
          k: 'coll',
          q: this.forGroup(this.query(ge.source, env, 'Q.groupBy'), (row) => this.value(ge.key, bindEnv(env, ge.v, row)), (g) => ({ branches: [{ gens: [], conds: [], value: this.collectColls(g) }] }), 'Q.groupBy'),
        }
      }
      case 'distinct':
        // Rule `distinct`: distinct(M) ~> for g in groupBy(M, x => x). yield g.key
        return { k: 'coll', q: this.forGroup(this.query(e.query, env, 'Q.distinct'), (row) => row, (g) => ({ branches: [{ gens: [], conds: [], value: fieldOf(g, 'key') }] }), 'Q.distinct') }
      case 'linGroup':
        return this.linGroup(e, env)
      case 'where': {
        const written = this.scalar(e.cond, env, 'the condition of Q.where')
        requireBoolean(written, 'Q.where')
        // rule `or-factor` (factor-or.ts): what every branch of a disjunction requires, outside it
        const cond = factorOr(written)
        const body = this.query(e.body, env, 'Q.where')
        if (cond.k === 'const') return { k: 'coll', q: cond.value === true ? body : { branches: [] } }
        // `where c. limit(q)`: c does not mention q's generators, so it may join each branch's
        // conditions even under a limit (all branches are kept, or none).
        return { k: 'coll', q: { ...body, branches: body.branches.map((b) => ({ ...b, conds: [cond, ...b.conds] })) } }
      }
      case 'yield':
        return { k: 'coll', q: { branches: [{ gens: [], conds: [], value: this.collectColls(this.value(e.value, env)) }] } }
      case 'union':
        return { k: 'coll', q: { branches: e.parts.flatMap((p) => this.unordered(this.query(p, env, 'Q.union'), 'a part of Q.union').branches) } }
      case 'values':
        return { k: 'coll', q: { branches: e.items.map((i) => ({ gens: [], conds: [], value: this.value(i, env) })) } }
      case 'var': {
        const v = lookup(env, e.v.id)
        if (v === undefined) {
          throw new LineageQueryError('compile', `variable \`${e.v.hint}\` is used outside the Q.for that binds it (a row view escaped its callback)`)
        }
        return v
      }
      case 'field': {
        const target = this.value(e.target, env)
        if (target.k !== 'rec') {
          throw new LineageQueryError('unknown-column', `cannot read field \`${e.name}\` of a ${describe(target)}; fields exist only on rows and records`, { field: e.name })
        }
        let f: NValue | undefined
        if (target instanceof RowRecord) f = target.field(e.name)
        else for (const x of target.fields) if (x[0] === e.name) { f = x[1]; break }
        if (f === undefined) {
          if (target.table !== undefined) columnOf(target.table, e.name)
          throw new LineageQueryError('unknown-column', `record has no field \`${e.name}\`; fields: ${target.fields.map(([n]) => n).join(', ') || '(none)'}`, { field: e.name })
        }
        return f
      }
      case 'record': {
        // (Duplicates by a pairwise scan when the record is small: a Set per record was a visible cost.)
        const fs = e.fields
        const seen = fs.length > 16 ? new Set<string>() : undefined
        for (let i = 0; i < fs.length; i++) {
          const n = fs[i]![0]
          if (n.charCodeAt(0) === 0x23) throw new LineageQueryError('argument', `record field names may not start with "#" (reserved for generated columns): ${JSON.stringify(n)}`, { field: n })
          let twice = false
          if (seen !== undefined) twice = seen.has(n) || (seen.add(n), false)
          else for (let j = 0; j < i; j++) if (fs[j]![0] === n) twice = true
          if (twice) throw new LineageQueryError('argument', `record field ${JSON.stringify(n)} appears twice`, { field: n })
        }
        return { k: 'rec', fields: e.fields.map(([n, f]) => [n, this.value(f, env)] as const) }
      }
      case 'const':
        return e.as === undefined ? { k: 'const', value: e.value, type: constType(e.value) } : typedConst(e.value, e.as)
      case 'op':
        return this.op(e, env)
      case 'exists': {
        const q = this.query(e.query, env, e.negated ? 'Q.empty' : 'Q.exists')
        if (q.branches.length === 0) return constant(e.negated)
        return { k: 'exists', q, negated: e.negated, type: { kind: 'boolean', nullable: false } }
      }
      case 'agg': {
        if (e.fn === 'count' && e.query.kind === 'distinct') {
          const cd = this.countDistinct(e.query, env)
          if (cd !== undefined) return cd
        }
        const q = this.query(e.query, env, `Q.${e.fn}`)
        let elem: SType | undefined
        for (const b of q.branches) {
          if (e.fn === 'count') break
          if (!isScalar(b.value)) throw new LineageQueryError('type', `Q.${e.fn} needs a query of scalars, got a query of ${describe(b.value)}s; use Q.${e.fn}(query, (row) => row.column)`, { op: e.fn })
          const u: SType | undefined = elem === undefined ? b.value.type : unify(elem, b.value.type)
          if (u === undefined) throw new LineageQueryError('type', `Q.${e.fn}: the union's branches yield different types`, { op: e.fn })
          elem = u
        }
        const type = aggType(e.fn, e.fn === 'count' ? undefined : (elem ?? { kind: 'null', nullable: true }))
        if (q.branches.length === 0) return e.fn === 'count' ? constant(0) : { k: 'const', value: null, type }
        // Over NULL constants only, every aggregate but count is NULL.
        if (e.fn !== 'count' && elem?.kind === 'null') return { k: 'const', value: null, type }
        // Rule `agg-of-group`.
        const c = this.collect(q, e.fn !== 'count')
        if (c !== undefined) return this.addAgg(c, { fn: e.fn, distinct: false, type, parts: c.parts.map((p) => (e.fn === 'count' ? { ...p, arg: undefined } : p)) })
        return { k: 'agg', fn: e.fn, q, type }
      }
      case 'order': {
        // Inside a query: a nested collection (or the query of an aggregate or exists) in this
        // order. The outermost order and limit are peeled off by `normalise` instead.
        const q = this.query(e.query, env, 'Q.orderBy')
        if (cuts(q.order)) {
          throw new LineageQueryError('compile', 'Q.orderBy over an already limited query is not supported: apply orderBy first, then limit')
        }
        const keys = q.branches.map((b) => e.keys.map((k, i) => this.scalar(k.expr, bindEnv(env, e.v, b.value), `order key ${i + 1} of Q.orderBy`)))
        // Rule "order of an order": re-sorting an ordered query is a stable sort, so the earlier
        // keys break the ties of the new ones.
        const prev = q.order
        return {
          k: 'coll',
          q: {
            branches: q.branches,
            order: {
              keys: prev === undefined ? keys : keys.map((ks, i) => [...ks, ...(prev.keys[i] ?? [])]),
              directions: [...e.keys.map((k) => k.dir), ...(prev?.directions ?? [])],
              limit: undefined,
              offset: 0,
            },
          },
        }
      }
      case 'limit': {
        const q = this.query(e.query, env, 'Q.limit')
        const inner: NOrder = q.order ?? { keys: q.branches.map(() => []), directions: [], limit: undefined, offset: 0 }
        return { k: 'coll', q: { branches: q.branches, order: { ...inner, ...composeLimits(inner, e.limit, e.offset) } } }
      }
      case 'let': {
        // Rule "let": the body with the variable bound to the value's normal form (symbolic
        // evaluation, as for Q.for). Scalars that contain a subquery become shared values
        // that the body's branches compute once (a lateral FROM item), whatever the number of
        // uses; anything else is cheap to repeat or is fused where it is used.
        const lets: SharedExpr[] = []
        const raw = this.value(e.value, env)
        // Inside the body of a grouped generator the value is substituted at each use (decided
        // before normalising the body, so no aggregate of the open group reads a shared value):
        // an aggregate over the group may read it, and the group's derived table cannot see
        // this branch's lateral items (property-test counterexample FC_SEED=600227892
        // FC_PATH=452: "no such column #s0.value").
        const bound = raw.k === 'coll' && cteable(raw.q) ? this.cte(raw.q) : this.open.length > 0 ? raw : this.share(raw, lets)
        const mark = this.markGroups()
        let body = this.value(e.body, bindEnv(env, e.v, bound))
        if (body.k !== 'coll') throw new LineageQueryError('type', `Q.let: the body must return a query (Q.yield, Q.for, ...), got a ${describe(body)}`)
        if (lets.length === 0) return body
        // An aggregate that the body added to a group built outside it (a `for` over a grouped
        // query, under lineage(q) too) is computed in that group's derived table, which cannot
        // see this branch's lateral items either: undo what the body added and substitute.
        if (this.sharedInGroupsSince(mark)) {
          this.resetGroups(mark)
          body = this.value(e.body, bindEnv(env, e.v, raw))
          if (body.k !== 'coll') throw new LineageQueryError('type', `Q.let: the body must return a query (Q.yield, Q.for, ...), got a ${describe(body)}`)
          return body
        }
        // A shared value read inside a grouped generator (groupBy, distinct) would be read from
        // a derived table that cannot see the branch's lateral items: there the value is
        // substituted at each use instead (property-test counterexample: Q.distinct(Q.yield(v))).
        if (readsSharedInGroup(body.q)) {
          body = this.value(e.body, bindEnv(env, e.v, raw))
          if (body.k !== 'coll') throw new LineageQueryError('type', `Q.let: the body must return a query (Q.yield, Q.for, ...), got a ${describe(body)}`)
          return body
        }
        return { k: 'coll', q: { ...body.q, branches: body.q.branches.map((b) => ({ ...b, lets: [...lets, ...(b.lets ?? [])] })) } }
      }
      case 'linEmpty':
        return { k: 'lin', entries: [] }
      case 'linRow': {
        const row = this.value(e.row, env)
        const stored = e.table.storedLineage
        if (stored !== undefined && e.stored === true && row.k === 'rec') {
          const f = row.fields.find(([n]) => n === stored.column)
          if (f !== undefined && isScalar(f[1])) return { k: 'lin', entries: [{ table: e.table, key: [f[1]], stored: { single: stored.table } }] }
        }
        const key = e.table.key
        if (key === undefined) {
          throw new LineageQueryError('lineage', `table \`${e.table.name}\` has no key, so its rows cannot be named in lineage; declare one with table(name, columns, { key: 'col' }) or opt out with { lineage: false }`, { table: e.table.name })
        }
        if (row.k !== 'rec') throw new LineageQueryError('compile', `internal: lineage of a ${describe(row)}`)
        const exprs = key.map((c) => {
          const f = row.fields.find(([n]) => n === c)
          if (f === undefined || !isScalar(f[1])) throw new LineageQueryError('compile', `internal: key column \`${c}\` missing from row of \`${e.table.name}\``)
          return f[1]
        })
        return { k: 'lin', entries: [{ table: e.table, key: exprs }] }
      }
      case 'linWitness': {
        const q = this.query(e.query, env, 'why-provenance')
        // A branch whose elements name no rows (tables declared { lineage: false }, yielded
        // values) adds nothing to the witnesses, and is left out: aggregating its empty key lists
        // is an aggregate over constants, which SQLite refuses inside another aggregate.
        const branches = q.branches.flatMap((b) => {
          const lin = b.value.k === 'rec' ? b.value.fields.find(([n]) => n === 'lineage')?.[1] : undefined
          if (lin?.k !== 'lin') throw new LineageQueryError('compile', `internal: why-provenance of a query whose elements are not annotated`)
          return lin.entries.length === 0 ? [] : [{ ...b, value: lin }]
        })
        if (branches.length === 0) return { k: 'lin', entries: [] }
        const key: NExpr = { k: 'witness', q: { branches }, type: { kind: 'string', nullable: false } }
        return { k: 'lin', entries: [{ table: WITNESS_TABLE, key: [key], witness: true }] }
      }
      case 'linAppend': {
        const entries: LinEntry[] = []
        for (const p of e.parts) {
          const v = this.value(p, env)
          if (v.k !== 'lin') throw new LineageQueryError('compile', `internal: lineage append of a ${describe(v)}`)
          entries.push(...v.entries)
        }
        return { k: 'lin', entries }
      }
    }
  }

  /**
   * Rule "let of a closed query": a query value that reads nothing from outside (no variable of
   * an enclosing query) and whose elements are scalars or records of scalars becomes a CTE,
   * computed once per statement; the variable is bound to a query over it, so each use reads
   * the CTE (`for` joins it, aggregates scan it).
   */
  cte(q: NQuery): NValue {
    const layout = plan(q.branches.map((b) => b.value))
    const name = `#q${this.ctes.length}`
    const fields = layout.k === 'rec' ? layout.fields : [['v', layout] as const]
    // Columns by position (c0, c1, ...): field names may be anything, identifiers may not.
    const columns: ColumnDef[] = fields.map(([, l], i) => {
      if (l.k !== 'scalar') throw new LineageQueryError('compile', 'internal: a CTE column that is not a scalar')
      // The source column's codec when every branch reads the same one; else none (decoding
      // checks the static type).
      return { name: `c${i}`, codec: l.codec as ColumnDef['codec'], type: l.type }
    })
    const def: TableDef = { name, columns, byName: new Map(columns.map((c) => [c.name, c])), key: undefined, lineage: false, storedLineage: undefined }
    this.ctes.push({ def, query: q })
    const alias = this.fresh('q')
    const col = (c: ColumnDef): NExpr => ({ k: 'col', alias, table: def, col: c, type: c.type })
    const value: NValue = layout.k === 'rec' ? { k: 'rec', fields: columns.map((c, i) => [fields[i]![0], col(c)] as const) } : col(columns[0]!)
    return { k: 'coll', q: { branches: [{ gens: [{ alias, table: def }], conds: [], value }] } }
  }

  /** A `Q.let` value with each scalar that contains a subquery made shared (listed in `lets`). */
  share(v: NValue, lets: SharedExpr[]): NValue {
    if (isScalar(v)) {
      if (!hasSubquery(v)) return v
      const s: SharedExpr = { k: 'shared', id: freshSharedId(), value: v, type: v.type }
      lets.push(s)
      return s
    }
    switch (v.k) {
      case 'rec':
        return { ...v, fields: v.fields.map(([n, f]) => [n, this.share(f, lets)] as const) }
      case 'coll':
      case 'lin':
        return v
    }
  }

  for(e: ast.ForExpr, env: Env): NQuery {
    const source = this.query(e.source, env, 'Q.for')
    const out: Branch[] = []
    // Rule "map over an ordered query": `for x in order(q). yield f(x)` keeps q's order and
    // limit (the keys are expressions over q's generators, still valid for the mapped values).
    let mapOnly = true
    for (const b of source.branches) {
      const inner = bindEnv(env, e.v, b.value)
      const body = this.unordered(this.query(e.body, inner, 'the body of Q.for'), 'the body of Q.for')
      if (body.branches.length !== 1 || body.branches[0]!.gens.length > 0 || body.branches[0]!.conds.length > 0) mapOnly = false
      for (const c of body.branches) {
        const lets = concat(b.lets ?? [], c.lets ?? [])
        // A branch over a group's rows stays one when the other side adds no generator.
        const grp = c.gens.length === 0 ? b.grp : b.gens.length === 0 ? c.grp : undefined
        out.push(branchOf(concat(b.gens, c.gens), concat(b.conds, c.conds), c.value, lets, grp))
      }
    }
    if (source.order !== undefined && mapOnly) return { branches: out, order: source.order }
    // Otherwise a bag: the order of a source does not matter, but a limit does.
    this.unordered(source, 'the source of Q.for')
    return { branches: out }
  }

  /**
   * `q` as a bag: its order dropped. A limit or offset cannot be dropped: it is an error where
   * the normal form has no place for it (a generator source, a union part, a Q.for body).
   */
  unordered(q: NQuery, where: string): NQuery {
    if (q.order === undefined) return q
    if (cuts(q.order)) {
      throw new LineageQueryError(
        'compile',
        `Q.limit can only be applied to the outermost query, a nested collection (a query yielded as a field), or the query of an aggregate or Q.exists; it was found in ${where}`,
      )
    }
    return { branches: q.branches }
  }

  freshen(b: Branch): Branch {
    // A branch without generators may still compute shared values: they get new ids, so two
    // uses of one path in one branch compute (and name) them separately.
    if (b.gens.length === 0 && (b.lets === undefined || b.lets.length === 0)) return b
    const map = new Map<string, string>()
    for (const g of b.gens) map.set(g.alias, this.fresh(g.group === undefined ? g.table.name : 'g'))
    return renameBranch(b, map)
  }

  /** `freshen` for an ordered query: each branch's order keys renamed with its generators. */
  freshenOrdered(q: NQuery): NQuery {
    const order = q.order!
    const keys: NExpr[][] = []
    const branches = q.branches.map((b, i) => {
      const map = new Map<string, string>()
      for (const g of b.gens) map.set(g.alias, this.fresh(g.group === undefined ? g.table.name : 'g'))
      keys.push((order.keys[i] ?? []).map((k) => renameValue(k, map) as NExpr))
      return renameBranch(b, map)
    })
    return { branches, order: { ...order, keys } }
  }

  // ------------------------------------------------------------ grouping

  /**
   * Rule `for-group`: the branches of `for g in groupBy(source, key). body`, each with one
   * grouped generator first. `keyOf` gives a source row's key (a scalar or a record of
   * scalars); `body` normalises the body with `g` bound to `{ key, group }`.
   */
  forGroup(source: NQuery, keyOf: (row: NValue) => NValue, body: (g: NValue) => NQuery, what: string): NQuery {
    if (source.branches.length === 0) return { branches: [] }
    const keyVals = source.branches.map((b) => keyOf(b.value))
    const flat = keyVals.map((k) => flattenKey(k, '', what))
    const paths = flat[0]!.map(([p]) => p)
    flat.forEach((f) => {
      if (f.length !== paths.length || f.some(([p], i) => p !== paths[i])) {
        throw new LineageQueryError('type', `${what}: the union's branches give keys of different shapes ({${paths.join(', ')}} and {${f.map(([p]) => p).join(', ')}})`)
      }
    })
    const id = this.#groups++
    const alias = this.fresh('g')
    const columns: ColumnDef[] = []
    const table: TableDef = { name: `#g${id}`, columns, byName: new Map(), key: undefined, lineage: false, storedLineage: undefined }
    const types: SType[] = paths.map((_, j) => {
      let type: SType | undefined
      for (const f of flat) {
        const t = f[j]![1].type
        type = type === undefined ? t : unify(type, t)
        if (type === undefined) throw new LineageQueryError('type', `${what}: the union's branches give key \`${paths[j] || 'key'}\` different types`)
      }
      return type!
    })
    // A component that is NULL in every branch is no column: it stays the constant.
    const used = paths.map((_, j) => types[j]!.kind !== 'null')
    const keyParts: NExpr[] = paths.map((_, j) => {
      if (!used[j]) return { k: 'const', value: null, type: types[j]! }
      const first = flat[0]![j]![1]
      const codec = first.k === 'col' && flat.every((f) => { const x = f[j]![1]; return x.k === 'col' && x.col.codec === first.col.codec }) ? first.col.codec : NO_CODEC
      const col: ColumnDef = { name: `k${columns.length}`, codec, type: types[j]! }
      columns.push(col)
      return { k: 'col', alias, table, col, type: types[j]! }
    })
    const keyCols = keyParts.filter((_, j) => used[j])
    const keys = flat.map((f) => f.filter((_, j) => used[j]).map(([, x]) => x))
    const keyValue = rebuildKey(keyVals[0]!, keyParts)
    const groupBranches: Branch[] = source.branches.map((b, i) => {
      const corr = keys[i]!.map((k, j): NExpr => ({ k: 'op', op: 'isNotDistinct', args: [k, keyCols[j]!], type: BOOL }))
      const conds = [...b.conds, ...corr]
      return { gens: b.gens, conds, value: b.value, grp: { id, alias, src: i, own: new Set(conds) } }
    })
    const build: GroupBuild = { id, alias, source: source.branches, table, columns, aggs: [], reads: undefined }
    this.builds.set(id, build)
    const g: NValue = { k: 'rec', fields: [['key', keyValue], ['group', { k: 'coll', q: { branches: groupBranches } }]] }
    this.open.push(build)
    let out: NQuery
    try {
      out = body(g)
    } finally {
      this.open.pop()
    }
    const gen: Gen = { alias, table, group: { source: source.branches, keys, aggs: build.aggs } }
    return { branches: out.branches.map((c) => ({ gens: [gen, ...c.gens], conds: c.conds, value: c.value })) }
  }

  /**
   * When every branch of `q` ranges over the rows of one source branch of a group being built
   * (filtering and mapping `g.group`, nothing joined), the aggregate parts: per source branch,
   * the value and the filtering conditions, renamed to the source branch's aliases.
   */
  collect(q: NQuery, argMatters = true): Collected | undefined {
    const first = q.branches[0]?.grp
    if (first === undefined) return undefined
    const build = this.builds.get(first.id)
    if (build === undefined) return undefined
    const parts: GroupAggPart[] = []
    for (const b of q.branches) {
      // A renamed copy of the grouped generator (alias changed) is not the one being extended.
      if (b.grp === undefined || b.grp.id !== first.id || b.grp.alias !== build.alias || parts.some((p) => p.branch === b.grp!.src)) return undefined
      const src = build.source[b.grp.src]!
      if (b.gens.length !== src.gens.length) return undefined
      const map = new Map<string, string>()
      b.gens.forEach((g, i) => g.alias !== src.gens[i]!.alias && map.set(g.alias, src.gens[i]!.alias))
      const filter = b.conds.filter((c) => !b.grp!.own.has(c)).map((c) => renameValue(c, map) as NExpr)
      const arg = renameValue(b.value, map)
      // An aggregate of the group cannot read the group's own columns.
      if (mentionsAlias(arg, build.alias) || filter.some((f) => mentionsAlias(f, build.alias))) return undefined
      // The aggregate is computed with the group's rows: it may read their columns and the
      // columns the group's source reads, not those of generators bound after the group.
      const readable = (a: string): boolean => a === build.alias || src.gens.some((g) => g.alias === a) || readsOf(build).has(a)
      if (!readsOnly(arg, readable) || !filter.every((f) => readsOnly(f, readable))) return undefined
      // SQL puts an aggregate whose arguments read only outer columns in the outer query: it
      // must read a column of the group's rows, or no column at all.
      if (build.source.length === 1 && src.gens.length > 0 && !aggregateLevelOk(argMatters ? [arg, ...filter] : filter, src.gens.map((g) => g.alias))) return undefined
      parts.push({ branch: b.grp.src, arg, filter })
    }
    return { build, parts }
  }

  /** How many aggregates and columns each grouped generator built so far has (see `resetGroups`). */
  markGroups(): ReadonlyMap<number, readonly [number, number]> {
    return new Map([...this.builds].map(([id, b]) => [id, [b.aggs.length, b.columns.length] as const]))
  }

  /** Whether an aggregate added to a grouped generator since `mark` reads a shared `Q.let` value. */
  sharedInGroupsSince(mark: ReadonlyMap<number, readonly [number, number]>): boolean {
    return [...this.builds].some(([id, b]) => b.aggs.slice(mark.get(id)?.[0] ?? 0).some((a) => new SharedSearch(() => true).agg(a)))
  }

  /** Forget the aggregates, columns and grouped generators added since `mark`. */
  resetGroups(mark: ReadonlyMap<number, readonly [number, number]>): void {
    for (const [id, b] of [...this.builds]) {
      const m = mark.get(id)
      if (m === undefined) {
        this.builds.delete(id)
        continue
      }
      b.aggs.length = m[0]
      b.columns.length = m[1]
    }
  }

  /**
   * Add an aggregate to a group being built; its column as an expression. Rule `same-aggregate`:
   * an aggregate equal to one the group already computes (same function, arguments and filters)
   * is that column (TPC-H Q11 compares and yields the same `sum`: computed once, as in its HAVING).
   */
  addAgg(c: Collected, agg: GroupAgg): NExpr {
    const { build } = c
    const same = build.aggs.findIndex((a) => sameAgg(a, agg))
    if (same >= 0) {
      const col = build.columns.find((x) => x.name === `a${same}`)
      if (col !== undefined) return { k: 'col', alias: build.alias, table: build.table, col, type: col.type }
    }
    const col: ColumnDef = { name: `a${build.aggs.length}`, codec: NO_CODEC, type: agg.type }
    build.aggs.push(agg)
    build.columns.push(col)
    return { k: 'col', alias: build.alias, table: build.table, col, type: agg.type }
  }

  /** Rule `coll-of-group`: nested collections (fields of a yielded value) that only map a group. */
  collectColls(v: NValue): NValue {
    switch (v.k) {
      case 'rec': {
        // (A table row's fields are columns: nothing to collect. Fields are copied only when one changes.)
        if (v instanceof RowRecord) return v
        const fields = mapSame(v.fields, (f) => {
          const x = this.collectColls(f[1])
          return x === f[1] ? f : ([f[0], x] as const)
        })
        return fields === v.fields ? v : { ...v, fields }
      }
      case 'coll': {
        if (v.via !== undefined || v.q.branches.length === 0) return v
        const c = this.collect(v.q)
        if (c === undefined) return v
        const col = this.addAgg(c, { fn: 'json', distinct: false, type: { kind: 'string', nullable: false }, parts: c.parts })
        return { ...v, via: { alias: c.build.alias, col: (col as Extract<NExpr, { k: 'col' }>).col.name } }
      }
      default:
        return v
    }
  }

  /** Rule `count-distinct`: `count(distinct(M))` over scalars; `undefined` when M's elements are not scalars. */
  countDistinct(e: ast.DistinctExpr, env: Env): NExpr | undefined {
    const q = this.query(e.query, env, 'Q.distinct')
    if (q.branches.length === 0) return constant(0)
    if (!q.branches.every((b) => isScalar(b.value))) return undefined
    let elem: SType | undefined
    for (const b of q.branches) {
      const t = (b.value as NExpr).type
      elem = elem === undefined ? t : unify(elem, t)
      if (elem === undefined) throw new LineageQueryError('type', 'Q.distinct: the union\'s branches yield different types', { op: 'distinct' })
    }
    const type: SType = { kind: 'int', nullable: false }
    if (elem!.kind === 'null') return constant(0)
    const c = this.collect(q)
    if (c !== undefined) return this.addAgg(c, { fn: 'count', distinct: true, type, parts: c.parts })
    return { k: 'agg', fn: 'count', q, type, distinct: true }
  }

  /** Rule `lineage-of-group`: the lineage of a group's rows as one JSON column of the group. */
  linGroup(e: ast.LinGroupExpr, env: Env): NValue {
    const q = this.query(e.group, env, 'lineage of a group')
    if (q.branches.length === 0) return { k: 'lin', entries: [] }
    // The entries of a group's rows name the rows' own tables: the aggregate is the group's.
    const c = this.collect(q, false)
    if (c === undefined || c.parts.some((p) => p.filter.length > 0)) throw new LineageQueryError('compile', 'internal: the lineage of a group must be taken directly in its Q.for body')
    const lins = c.parts.map((p) => {
      const v = p.arg
      const lin = v?.k === 'rec' ? v.fields.find(([n]) => n === 'lineage')?.[1] : undefined
      if (lin === undefined || lin.k !== 'lin') throw new LineageQueryError('compile', 'internal: lineage of a group of unannotated rows')
      return { ...p, arg: lin }
    })
    const branches: GroupedLinBranch[] = c.build.source.map((_, i) => {
      const p = lins.find((x) => x.branch === i)
      return p === undefined ? [] : linInfo((p.arg as Extract<NValue, { k: 'lin' }>).entries)
    })
    const col = this.addAgg(c, { fn: 'lineage', distinct: false, type: { kind: 'string', nullable: false }, parts: lins })
    return { k: 'lin', entries: [{ table: c.build.table, key: [col], grouped: { branches } }] }
  }

  query(e: ast.Expr, env: Env, what: string): NQuery {
    const v = this.value(e, env)
    if (v.k !== 'coll') throw new LineageQueryError('type', `${what} expects a query, got a ${describe(v)}`)
    // A path (a variable or a field of one) denotes a collection normalised earlier; using it
    // again as a query needs fresh aliases, so two uses in one branch never share one.
    if (e.kind === 'var' || e.kind === 'field') {
      if (v.q.order === undefined) return { branches: v.q.branches.map((b) => this.freshen(b)) }
      return this.freshenOrdered(v.q)
    }
    return v.q
  }

  scalar(e: ast.Expr, env: Env, what: string): NExpr {
    const v = this.value(e, env)
    if (!isScalar(v)) throw new LineageQueryError('type', `${what} must be a scalar expression, got a ${describe(v)}`)
    return v
  }

  op(e: ast.OpExpr, env: Env): NExpr {
    // (The operand's description is built only for the error: this runs for every operator.)
    const args = coerceConstants(e.op, e.args.map((a, i) => {
      const v = this.value(a, env)
      if (!isScalar(v)) throw new LineageQueryError('type', `operand ${i + 1} of Q.${e.op} must be a scalar expression, got a ${describe(v)}`)
      return v
    }))
    if (e.op === 'round') {
      const d = args[1]
      if (d === undefined || d.k !== 'const' || typeof d.value !== 'number' || !Number.isSafeInteger(d.value) || d.value < 0) {
        throw new LineageQueryError('type', 'Q.round: digits must be a non-negative integer constant', { op: 'round' })
      }
    }
    let type = opType(e.op, args.map((a) => a.type))
    // A computed pattern ending in a lone escape character gives NULL.
    if (e.op === 'like' && (args[1]?.k !== 'const' || (typeof args[1].value === 'string' && endsWithLoneEscape(args[1].value)))) type = { ...type, nullable: true }
    if (e.op === 'round' && type.kind === 'decimal') type = { ...type, scale: Math.min(type.scale ?? 0, (args[1] as { value: number }).value) }
    if (e.op === 'and' && args.length === 0) return constant(true)
    if (e.op === 'or' && args.length === 0) return constant(false)
    if ((e.op === 'and' || e.op === 'or') && args.length === 1) return args[0]!
    if (e.op === 'in' && args.length === 1) return constant(false)
    const folded = foldDate(e.op, args)
    if (folded !== undefined) return folded
    return { k: 'op', op: e.op, args, type }
  }
}

/**
 * Rule "limit of a limit": `limit(limit(q, a, o1), b, o2) = limit(q, min(b, max(0, a - o2)), o1 + o2)`
 * (`inner` is the limit already applied, `limit`/`offset` the one applied on top of it).
 */
export function composeLimits(inner: { readonly limit: number | undefined; readonly offset: number }, limit: number | undefined, offset: number): { limit: number | undefined; offset: number } {
  const innerLeft = inner.limit === undefined ? undefined : Math.max(0, inner.limit - offset)
  return {
    limit: limit === undefined ? innerLeft : innerLeft === undefined ? limit : Math.min(limit, innerLeft),
    offset: inner.offset + offset,
  }
}

/**
 * Whether a query can be a CTE: unordered, with at least one branch, elements scalars or
 * records of scalars (at least one field), no shared values, and closed: every column it reads
 * (subqueries included) belongs to a generator it binds itself.
 */
function cteable(q: NQuery): boolean {
  if (q.order !== undefined || q.branches.length === 0) return false
  const flat = (v: NValue): boolean => isScalar(v) || (v.k === 'rec' && v.fields.length > 0 && v.fields.every(([, f]) => isScalar(f)))
  return q.branches.every((b) => flat(b.value)) && isClosed({ query: q })
}

/**
 * Whether a grouped generator of `q` (at any depth) reads a shared `Q.let` value. Any shared
 * value counts: renaming (a group's source is copied with fresh aliases) gives copies new ids,
 * so the ids of a let's values cannot be matched; substituting more is always correct.
 */
function readsSharedInGroup(q: NQuery): boolean {
  // (One search for shared values across groups: a query or spec it found none in is skipped later.)
  const any = new SharedSearch(() => true)
  return new SharedSearch(() => false, (s) => any.spec(s)).query(q)
}

/** Whether two aggregates of a group compute the same value (scalar arguments and filters structurally equal). */
function sameAgg(a: GroupAgg, b: GroupAgg): boolean {
  if (a.fn !== b.fn || a.distinct !== b.distinct || a.fn === 'json' || a.fn === 'lineage' || a.parts.length !== b.parts.length) return false
  return a.parts.every((p, i) => {
    const q = b.parts[i]!
    if (p.branch !== q.branch || p.filter.length !== q.filter.length || !p.filter.every((f, j) => sameExpr(f, q.filter[j]!))) return false
    if (p.arg === undefined || q.arg === undefined) return p.arg === q.arg
    return isScalar(p.arg) && isScalar(q.arg) && sameExpr(p.arg, q.arg)
  })
}

/** Whether evaluating `e` runs a subquery (an aggregate or exists), outside shared values. */
function hasSubquery(e: NExpr): boolean {
  switch (e.k) {
    case 'exists': case 'agg': case 'witness': return true
    case 'op': return e.args.some(hasSubquery)
    case 'col': case 'const': case 'shared': return false
  }
}

/** The aliases of the columns a value reads from outside it (nested queries' own generators excluded). */
function aliasesIn(v: NValue): string[] {
  const out: string[] = []
  const bound = new Set<string>()
  const q = (x: NQuery): void => {
    for (const b of x.branches) {
      for (const g of b.gens) bound.add(g.alias)
      for (const g of b.gens) for (const s of g.group?.source ?? []) for (const x2 of s.gens) bound.add(x2.alias)
      b.conds.forEach(walk)
      walk(b.value)
      for (const l of b.lets ?? []) walk(l.value)
      for (const g of b.gens) {
        if (g.group === undefined) continue
        for (const s of g.group.source) { s.conds.forEach(walk); walk(s.value) }
        g.group.keys.forEach((ks) => ks.forEach(walk))
        g.group.aggs.forEach((a) => a.parts.forEach((p) => { if (p.arg !== undefined) walk(p.arg); p.filter.forEach(walk) }))
      }
    }
  }
  const walk = (x: NValue): void => {
    switch (x.k) {
      case 'col': out.push(x.alias); return
      case 'const': return
      case 'op': x.args.forEach(walk); return
      case 'exists': case 'agg': case 'witness': q(x.q); return
      case 'shared': walk(x.value); return
      case 'rec':
        if (x instanceof RowRecord) { if (x.table.columns.length > 0) out.push(x.alias) } else x.fields.forEach(([, f]) => walk(f))
        return
      case 'coll': if (x.via !== undefined) out.push(x.via.alias); q(x.q); return
      case 'lin': x.entries.forEach((e) => e.key.forEach(walk)); return
    }
  }
  walk(v)
  return out.filter((a) => !bound.has(a))
}

/**
 * Whether every alias `v` reads from outside it is `readable` (`aliasesIn(v).every(readable)`),
 * walking operators and columns directly (the common case: no array or set built) and a table
 * row's record by its alias.
 */
function readsOnly(v: NValue, readable: (alias: string) => boolean): boolean {
  if (v instanceof RowRecord) return v.table.columns.length === 0 || readable(v.alias)
  return isPlain(v) ? plainReadsOnly(v, readable) : aliasesIn(v).every(readable)
}
/** Whether `v` is built of columns, constants and operators only. */
function isPlain(v: NValue): v is NExpr {
  return v.k === 'col' || v.k === 'const' || (v.k === 'op' && v.args.every(isPlain))
}
function plainReadsOnly(e: NExpr, readable: (alias: string) => boolean): boolean {
  return e.k === 'col' ? readable(e.alias) : e.k !== 'op' || e.args.every((a) => plainReadsOnly(a, readable))
}

/** Whether values read a column of `own` outside nested queries, or read no column and have no nested query. */
function aggregateLevelOk(vs: readonly NValue[], own: readonly string[]): boolean {
  let direct = false
  let other = false
  const walk = (v: NValue): void => {
    switch (v.k) {
      case 'col': if (own.includes(v.alias)) direct = true; else other = true; return
      case 'const': return
      case 'op': return v.args.forEach(walk)
      case 'exists': case 'agg': case 'witness': case 'shared': other = true; return
      case 'rec': return v.fields.forEach(([, f]) => walk(f))
      case 'coll': other = true; return
      case 'lin': return v.entries.forEach((e) => e.key.forEach(walk))
    }
  }
  vs.forEach(walk)
  return direct || !other
}

/** The aliases a group's source reads (memoised on the build: most groups never need them). */
function readsOf(build: GroupBuild): ReadonlySet<string> {
  return (build.reads ??= new Set(build.source.flatMap((b) => [...b.conds, b.value].flatMap(aliasesIn))))
}

function bindEnv(env: Env, v: ast.Var, value: NValue): Env {
  return { id: v.id, value, next: env }
}

function lookup(env: Env, id: number): NValue | undefined {
  for (let x = env; x !== undefined; x = x.next) if (x.id === id) return x.value
  return undefined
}

function fieldOf(v: NValue, name: string): NValue {
  if (v.k !== 'rec') throw new LineageQueryError('compile', `internal: field ${name} of a ${describe(v)}`)
  return v.fields.find(([n]) => n === name)![1]
}

const BOOL: SType = { kind: 'boolean', nullable: false }

/** The scalar components of a group key (a scalar or a record of scalars), with their paths. */
function flattenKey(v: NValue, path: string, what: string): [string, NExpr][] {
  if (isScalar(v)) return [[path, v]]
  if (v.k === 'rec') return v.fields.flatMap(([n, f]) => flattenKey(f, path ? `${path}.${n}` : n, what))
  throw new LineageQueryError('type', `${what}: a key must be a scalar or a record of scalars, got a ${describe(v)}${path ? ` at \`${path}\`` : ''}`)
}

/** The key value with its components replaced by `cols`, in flattening order. */
function rebuildKey(v: NValue, cols: readonly NExpr[]): NValue {
  let i = 0
  const walk = (x: NValue): NValue => (isScalar(x) ? cols[i++]! : x.k === 'rec' ? { k: 'rec', fields: x.fields.map(([n, f]) => [n, walk(f)] as const) } : x)
  return walk(v)
}

/** Lineage entry descriptions of a row (for decoding a group's lineage column). */
function linInfo(entries: readonly LinEntry[]): GroupedLinBranch {
  return entries.map((e) => ({
    table: e.table.name,
    types: e.key.map((k) => k.type),
    ...(e.stored === undefined ? {} : { stored: e.stored }),
    ...(e.grouped === undefined ? {} : { grouped: e.grouped }),
    ...(e.witness === undefined ? {} : { witness: e.witness }),
  }))
}

/**
 * Rule `fold-dates`: date arithmetic on constants is a date constant, computed here by the rule
 * the SQL would apply (`addToDate`), so `l_shipdate < addMonths(date '1995-09-01', 1)` compares
 * with the constant `'1995-10-01'` as the official TPC-H text does (a plain comparison the
 * planner estimates and SQLite does not recompute per row). Left to SQL outside years 0001-9999.
 */
function foldDate(op: ast.ScalarOp, args: readonly NExpr[]): NExpr | undefined {
  if (op !== 'addDays' && op !== 'addMonths' && op !== 'addYears') return undefined
  const [d, n] = args
  if (d?.k !== 'const' || d.type.kind !== 'date' || typeof d.value !== 'string' || n?.k !== 'const' || typeof n.value !== 'number') return undefined
  const out = addToDate(d.value, op === 'addDays' ? 'day' : op === 'addMonths' ? 'month' : 'year', n.value)
  return out === undefined ? undefined : typedConst(out, 'date')
}

/** A constant written as a date, timestamp, decimal or JSON (its value is its text). */
function typedConst(value: ast.Constant, as: NonNullable<ast.ConstExpr['as']>): NExpr {
  if (typeof value !== 'string') throw new LineageQueryError('compile', `internal: a ${as} constant must be text, got ${typeof value}`)
  return { k: 'const', value, type: as === 'decimal' ? { kind: 'decimal', nullable: false, scale: scaleOf(value) } : { kind: as, nullable: false } }
}

/**
 * Constants take the type of their context: a string constant compared with (or combined
 * with, or given to a function of) a date becomes a date, with a timestamp a timestamp (ISO
 * text), and a number constant next to a decimal becomes that decimal exactly (`0.05`). The
 * operands that share a type are those of comparisons, `in`, `coalesce`, arithmetic and a
 * `case`'s values; the first operand of the date functions is a date or timestamp.
 */
function coerceConstants(op: ast.ScalarOp, args: readonly NExpr[]): readonly NExpr[] {
  // Only non-NULL constants are coerced: without one, nothing to do (most operators).
  if (!args.some((a) => a.k === 'const' && a.value !== null)) return args
  const groups: number[][] = (() => {
    switch (op) {
      case 'eq': case 'ne': case 'lt': case 'le': case 'gt': case 'ge': case 'in': case 'coalesce':
      case 'add': case 'sub': case 'mul': case 'div':
        return [args.map((_, i) => i)]
      case 'case':
        return [caseValues(args.map((_, i) => i))]
      case 'year': case 'month': case 'day': case 'addDays': case 'addMonths': case 'addYears':
        return [[0]]
      default:
        return []
    }
  })()
  if (groups.length === 0) return args
  const out = [...args]
  for (const group of groups) {
    const datey = op === 'year' || op === 'month' || op === 'day' || op === 'addDays' || op === 'addMonths' || op === 'addYears'
    const target = datey ? (args[0]?.type.kind === 'timestamp' ? 'timestamp' : 'date') : group.map((i) => args[i]!.type.kind).find((k) => k === 'date' || k === 'timestamp' || k === 'decimal')
    if (target === undefined) continue
    for (const i of group) {
      const a = args[i]!
      if (a.k !== 'const' || a.value === null || a.type.kind === target) continue
      const c = constAs(a.value, target)
      if (c === undefined) {
        throw new LineageQueryError('type', `Q.${op}: the constant ${JSON.stringify(a.value)} is used as a ${target} but is not one (expected ${target === 'date' ? "'YYYY-MM-DD'" : target === 'timestamp' ? 'a Date or an ISO-8601 text with a zone' : "a decimal like 12.5 or '12.50'"})`, { op, value: a.value })
      }
      out[i] = c
    }
  }
  return out
}

function constAs(value: string | number | boolean, target: 'date' | 'timestamp' | 'decimal'): NExpr | undefined {
  switch (target) {
    case 'date':
      return isDateString(value) ? typedConst(value, 'date') : undefined
    case 'timestamp': {
      const r = typeof value === 'string' ? Timestamp.decode(value) : undefined
      return r !== undefined && r._tag === 'Right' ? typedConst(r.right.toISOString(), 'timestamp') : undefined
    }
    case 'decimal': {
      if (typeof value === 'boolean') return undefined
      const text = typeof value === 'number' ? (Number.isInteger(value) ? value.toFixed(0) : String(value)) : value
      const v = fixScale(text, scaleOf(text))
      return v === undefined ? undefined : typedConst(v, 'decimal')
    }
  }
}

function requireBoolean(e: NExpr, what: string): void {
  if (e.type.kind !== 'boolean' && e.type.kind !== 'null') {
    throw new LineageQueryError('type', `${what}: the condition must be boolean, got ${e.type.kind}`)
  }
}

function concat<T>(a: readonly T[], b: readonly T[]): readonly T[] {
  return a.length === 0 ? b : b.length === 0 ? a : [...a, ...b]
}

function describe(v: NValue): string {
  return v.k === 'rec' ? 'record' : v.k === 'coll' ? 'collection' : v.k === 'lin' ? 'lineage annotation' : 'scalar'
}

/**
 * Normalise a top-level query. Its order and limit are those of the query it normalises to
 * (`Q.orderBy`/`Q.limit` outermost, or under a `Q.where` or a mapping `Q.for`), with the rules
 * "order of an order" and "limit of a limit" as at any level.
 */
export function normalise(e: ast.Expr): NTop {
  const n = new Normaliser()
  const q = n.query(e, undefined, 'the top level')
  const o = q.order
  const top: NTop = {
    query: { branches: q.branches },
    orderKeys: o?.keys ?? q.branches.map(() => []),
    directions: o?.directions ?? [],
    limit: o?.limit,
    offset: o?.offset ?? 0,
  }
  // rule `inline-scalar-let` (inline-let.ts), then rule `one-scan-aggregates` (share-scans.ts)
  const shared = shareScans(inlineScalarLets(top))
  return n.ctes.length === 0 ? shared : { ...shared, ctes: n.ctes }
}
