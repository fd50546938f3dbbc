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
 * Every query whose result type is flat therefore becomes one union of branches, one SQL
 * statement. Type errors and unknown columns are reported here, where the input is still
 * recognisable.
 */
import { LineageQueryError } from '../errors.js'
import type * as ast from './ast.js'
import {
  constant,
  constType,
  cuts,
  freshSharedId,
  renameLets,
  WITNESS_TABLE,
  isScalar,
  renameValue,
  type Branch,
  type Gen,
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
import { aggType, opType } from './typing.js'

type Env = ReadonlyMap<number, NValue>

class Normaliser {
  #aliases = 0
  /** CTEs made by `Q.let` (see `cte`), in creation order. */
  readonly ctes: NCte[] = []

  fresh(hint: string): string {
    const c = /^[A-Za-z]/.test(hint) ? hint[0]!.toLowerCase() : 'x'
    return `${c}${this.#aliases++}`
  }

  value(e: ast.Expr, env: Env): NValue {
    switch (e.kind) {
      case 'table': {
        const alias = this.fresh(e.table.name)
        const fields = e.table.columns.map((c) => [c.name, { k: 'col', alias, table: e.table, col: c, type: c.type } as NExpr] as const)
        return { k: 'coll', q: { branches: [{ gens: [{ alias, table: e.table }], conds: [], value: { k: 'rec', fields, table: e.table } }] } }
      }
      case 'for':
        return { k: 'coll', q: this.for(e, env) }
      case 'where': {
        const cond = this.scalar(e.cond, env, 'the condition of Q.where')
        requireBoolean(cond, 'Q.where')
        const body = this.query(e.body, env, 'Q.where')
        if (cond.k === 'const') return { k: 'coll', q: cond.value === true ? body : { branches: [] } }
        // `where c. limit(q)`: c does not mention q's generators, so it may join each branch's
        // conditions even under a limit (all branches are kept, or none).
        return { k: 'coll', q: { ...body, branches: body.branches.map((b) => ({ ...b, conds: [cond, ...b.conds] })) } }
      }
      case 'yield':
        return { k: 'coll', q: { branches: [{ gens: [], conds: [], value: this.value(e.value, env) }] } }
      case 'union':
        return { k: 'coll', q: { branches: e.parts.flatMap((p) => this.unordered(this.query(p, env, 'Q.union'), 'a part of Q.union').branches) } }
      case 'values':
        return { k: 'coll', q: { branches: e.items.map((i) => ({ gens: [], conds: [], value: this.value(i, env) })) } }
      case 'var': {
        const v = env.get(e.v.id)
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
        const f = target.fields.find(([n]) => n === e.name)
        if (f === undefined) {
          if (target.table !== undefined) columnOf(target.table, e.name)
          throw new LineageQueryError('unknown-column', `record has no field \`${e.name}\`; fields: ${target.fields.map(([n]) => n).join(', ') || '(none)'}`, { field: e.name })
        }
        return f[1]
      }
      case 'record': {
        const seen = new Set<string>()
        for (const [n] of e.fields) {
          if (n.startsWith('#')) throw new LineageQueryError('argument', `record field names may not start with "#" (reserved for generated columns): ${JSON.stringify(n)}`, { field: n })
          if (seen.has(n)) throw new LineageQueryError('argument', `record field ${JSON.stringify(n)} appears twice`, { field: n })
          seen.add(n)
        }
        return { k: 'rec', fields: e.fields.map(([n, f]) => [n, this.value(f, env)] as const) }
      }
      case 'const':
        return { k: 'const', value: e.value, type: constType(e.value) }
      case 'op':
        return this.op(e, env)
      case 'exists': {
        const q = this.query(e.query, env, e.negated ? 'Q.empty' : 'Q.exists')
        if (q.branches.length === 0) return constant(e.negated)
        return { k: 'exists', q, negated: e.negated, type: { kind: 'boolean', nullable: false } }
      }
      case 'agg': {
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
        return { k: 'agg', fn: e.fn, q, type }
      }
      case 'order': {
        // Inside a query: a nested collection (or the query of an aggregate or exists) in this
        // order. The outermost order and limit are peeled off by `normalise` instead.
        const q = this.query(e.query, env, 'Q.orderBy')
        if (cuts(q.order)) {
          throw new LineageQueryError('compile', 'Q.orderBy over an already limited query is not supported: apply orderBy first, then limit')
        }
        const keys = q.branches.map((b) => e.keys.map((k, i) => this.scalar(k.expr, new Map(env).set(e.v.id, b.value), `order key ${i + 1} of Q.orderBy`)))
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
        const bound = raw.k === 'coll' && cteable(raw.q) ? this.cte(raw.q) : this.share(raw, lets)
        const body = this.value(e.body, new Map(env).set(e.v.id, bound))
        if (body.k !== 'coll') throw new LineageQueryError('type', `Q.let: the body must return a query (Q.yield, Q.for, ...), got a ${describe(body)}`)
        if (lets.length === 0) return body
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
        if (q.branches.length === 0) return { k: 'lin', entries: [] }
        const branches = q.branches.map((b) => {
          const lin = b.value.k === 'rec' ? b.value.fields.find(([n]) => n === 'lineage')?.[1] : undefined
          if (lin?.k !== 'lin') throw new LineageQueryError('compile', `internal: why-provenance of a query whose elements are not annotated`)
          return { ...b, value: lin }
        })
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
      const inner = new Map(env)
      inner.set(e.v.id, b.value)
      const body = this.unordered(this.query(e.body, inner, 'the body of Q.for'), 'the body of Q.for')
      if (body.branches.length !== 1 || body.branches[0]!.gens.length > 0 || body.branches[0]!.conds.length > 0) mapOnly = false
      for (const c of body.branches) {
        const lets = concat(b.lets ?? [], c.lets ?? [])
        out.push({ gens: concat(b.gens, c.gens), conds: concat(b.conds, c.conds), value: c.value, ...(lets.length > 0 ? { lets } : {}) })
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
    const gens: Gen[] = b.gens.map((g) => {
      const alias = this.fresh(g.table.name)
      map.set(g.alias, alias)
      return { alias, table: g.table }
    })
    const conds = b.conds.map((c) => renameValue(c, map) as NExpr)
    return { gens, conds, value: renameValue(b.value, map), ...renameLets(b.lets, map) }
  }

  /** `freshen` for an ordered query: each branch's order keys renamed with its generators. */
  freshenOrdered(q: NQuery): NQuery {
    const order = q.order!
    const keys: NExpr[][] = []
    const branches = q.branches.map((b, i) => {
      const map = new Map<string, string>()
      const gens: Gen[] = b.gens.map((g) => {
        const alias = this.fresh(g.table.name)
        map.set(g.alias, alias)
        return { alias, table: g.table }
      })
      keys.push((order.keys[i] ?? []).map((k) => renameValue(k, map) as NExpr))
      return { gens, conds: b.conds.map((c) => renameValue(c, map) as NExpr), value: renameValue(b.value, map), ...renameLets(b.lets, map) }
    })
    return { branches, order: { ...order, keys } }
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
    const args = e.args.map((a, i) => this.scalar(a, env, `operand ${i + 1} of Q.${e.op}`))
    if (e.op === 'like') {
      const p = args[1]
      if (p === undefined || p.k !== 'const' || typeof p.value !== 'string') {
        throw new LineageQueryError('type', 'Q.like: the pattern must be a constant string', { op: 'like' })
      }
    }
    const type = opType(e.op, args.map((a) => a.type))
    if (e.op === 'and' && args.length === 0) return constant(true)
    if (e.op === 'or' && args.length === 0) return constant(false)
    if ((e.op === 'and' || e.op === 'or') && args.length === 1) return args[0]!
    if (e.op === 'in' && args.length === 1) return constant(false)
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
  const bound = new Set<string>()
  const used = new Set<string>()
  let ok = true
  const expr = (e: NExpr): void => {
    switch (e.k) {
      case 'col': used.add(e.alias); return
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
      case 'coll': query(v.q); return
      case 'lin': v.entries.forEach((x) => x.key.forEach(expr)); return
    }
  }
  const query = (x: NQuery): void => {
    for (const b of x.branches) {
      if (b.lets !== undefined && b.lets.length > 0) ok = false
      b.gens.forEach((g) => bound.add(g.alias))
      b.conds.forEach(expr)
      value(b.value)
    }
    x.order?.keys.forEach((ks) => ks.forEach(expr))
  }
  query(q)
  const flat = (v: NValue): boolean => isScalar(v) || (v.k === 'rec' && v.fields.length > 0 && v.fields.every(([, f]) => isScalar(f)))
  return ok && q.branches.every((b) => flat(b.value)) && [...used].every((a) => bound.has(a))
}

/** Whether evaluating `e` runs a subquery (an aggregate or exists), outside shared values. */
function hasSubquery(e: NExpr): boolean {
  switch (e.k) {
    case 'exists': case 'agg': case 'witness': return true
    case 'op': return e.args.some(hasSubquery)
    case 'col': case 'const': case 'shared': return false
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
  const q = n.query(e, new Map(), 'the top level')
  const o = q.order
  const top: NTop = {
    query: { branches: q.branches },
    orderKeys: o?.keys ?? q.branches.map(() => []),
    directions: o?.directions ?? [],
    limit: o?.limit,
    offset: o?.offset ?? 0,
  }
  return n.ctes.length === 0 ? top : { ...top, ctes: n.ctes }
}
