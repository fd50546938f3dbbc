/**
 * Rule `decorrelate-aggregate` (a phase over the normal form, after `normalise`, on both
 * dialects): an aggregate over a query correlated
 * with its branch's generators by equalities only is computed for every correlation key at
 * once, as a grouped derived table left-joined to the branch.
 *
 * `for c in C. yield { n: count(for o in O. where o.k = c.id and p(o). yield o) }` becomes
 * `for c in C, left d in G on d.k0 = c.id. yield { n: coalesce(d.a0, 0) }`, `G` grouping the
 * rows of `for o in O. where p(o)` by `o.k` with `a0 = count(*)`. SQL, as TPC-H Q13's official
 * text computes its counts:
 * `select coalesce(d.a0, 0) as n from C as c left join (select o.k as k0, count(*) as a0 from O
 * as o where p(o) group by 1) as d on (d.k0 = c.id)`.
 * A correlated scalar subquery is an index probe per outer row on PostgreSQL (Q13: 1.9x the
 * official time); the grouped derived table is one scan and a hash join.
 *
 * SQL semantics kept:
 * - an outer row without inner rows finds no group: `count` is `coalesce(.., 0)`, `sum`, `min`,
 *   `max` and `avg` stay NULL as over no rows;
 * - NULL keys: an inner row with a NULL key is in a group no outer row equals, and an outer row
 *   with a NULL key equals no group, as `=` in the subquery's WHERE matched no row;
 * - each outer row matches at most one group (the keys are grouped), so the join adds no row.
 *
 * Applied only when it does not compute more than the correlated form would:
 * - where every row of the branch's generators needs the aggregate: each conjunct of the
 *   branch's conditions contains one of the aggregates rewritten (a condition that filters the rows
 *   otherwise, as in TPC-H Q2, Q17 and Q20, leaves it correlated: the grouped table would
 *   compute the aggregate for every key, the subquery only for the rows kept);
 * - to top-level branches and the source branches of their grouped generators (recursively),
 *   not inside nested collections or subqueries, which run once per outer row themselves;
 * - to an aggregate over one unordered branch of tables, whose conditions are equalities of an
 *   expression over its own generators to one over the branch's generators (at least one) or
 *   read only its own generators, and whose argument reads only its own generators (no
 *   subqueries, no shared `Q.let` values).
 * Branches of a group's collection (`grp`) and branches computing shared `Q.let` values are
 * left as they are.
 */
import type { ColumnDef, TableDef } from './schema.js'
import { isScalar, renameExpr, renameValue, sameExpr, type Branch, type Gen, type GroupAgg, type GroupSpec, type NExpr, type NTop, type NValue, collectAggs, replaceAggs } from './normal.js'

type Agg = Extract<NExpr, { k: 'agg' }>

/** The top-level query with rule `decorrelate-aggregate` applied (the same object when nothing applies). */
export function decorrelate(t: NTop): NTop {
  const r = new Rewriter()
  // A branch's order keys read its generators too: rewritten alike (an order key that is a
  // yielded aggregate stays the same expression as the yielded field, rule "order by output column").
  const out = t.query.branches.map((b, i) => r.branch(b, t.orderKeys[i] ?? []))
  if (out.every((o, i) => o.branch === t.query.branches[i])) return t
  return { ...t, query: { ...t.query, branches: out.map((o) => o.branch) }, orderKeys: out.map((o) => o.extra as NExpr[]) }
}

/** How one aggregate is decorrelated: the rows it aggregates and the correlation equalities. */
interface Plan {
  /** The aggregate's branch without the correlation equalities. */
  readonly rows: Branch
  /** `[inner, outer]`: an expression over the aggregate's generators equal to one over the branch's. */
  readonly pairs: readonly (readonly [NExpr, NExpr])[]
}

class Rewriter {
  #n = 0
  readonly #specs = new Map<GroupSpec, GroupSpec>()

  /** `b` rewritten, with `extra` (expressions over its generators used elsewhere: a group's keys and aggregate parts) rewritten alike. */
  branch(b: Branch, extra: readonly NValue[]): { branch: Branch; extra: readonly NValue[] } {
    const gens = b.gens.map((g) => (g.group === undefined ? g : this.#gen(g)))
    const same = gens.every((g, i) => g === b.gens[i])
    const base = same ? b : { ...b, gens }
    if (b.grp !== undefined || (b.lets ?? []).length > 0 || gens.length === 0) return { branch: base, extra }
    const own = new Set(gens.map((g) => g.alias))
    const candidates: Agg[] = []
    for (const v of [b.value, ...b.conds, ...extra]) collectAggs(v, candidates)
    const plans = new Map<Agg, Plan>()
    for (const a of candidates) {
      if (plans.has(a)) continue
      const p = plan(a, own)
      if (p !== undefined) plans.set(a, p)
    }
    if (plans.size === 0) return { branch: base, extra }
    // Every row of the generators needs the aggregates: no condition filters them otherwise.
    if (!b.conds.flatMap(conjuncts).every((c) => aggsOf(c).some((a) => plans.has(a)))) return { branch: base, extra }
    // Aggregates over the same rows with the same correlation (several uses of one correlated
    // `Q.let` query value, or written twice) are columns of one grouped generator: one scan.
    const classes: (readonly [Agg, Plan])[][] = []
    for (const [a, p] of plans) {
      const cls = classes.find((c) => sameRows(c[0]![1], p) !== undefined)
      if (cls === undefined) classes.push([[a, p]])
      else cls.push([a, p])
    }
    const replaced = new Map<Agg, NExpr>()
    const added: Gen[] = []
    for (const cls of classes) {
      const { gen, values } = this.#join(cls)
      added.push(gen)
      cls.forEach(([a], j) => replaced.set(a, values[j]!))
    }
    const branch: Branch = { ...base, gens: [...gens, ...added], conds: b.conds.map((c) => replaceAggs(c, replaced) as NExpr), value: replaceAggs(b.value, replaced) }
    return { branch, extra: extra.map((v) => replaceAggs(v, replaced)) }
  }

  /** A grouped generator with its source branches rewritten (once per spec: a generator shared by several branches stays one). */
  #gen(g: Gen): Gen {
    const s = g.group!
    let out = this.#specs.get(s)
    if (out === undefined) {
      out = this.#spec(s)
      this.#specs.set(s, out)
    }
    return out === s ? g : { ...g, group: out }
  }

  #spec(s: GroupSpec): GroupSpec {
    // The common case first, without copying the spec: nothing in it the rule could rewrite.
    if (!s.source.some((b, i) => mayRewrite(s, b, i))) return s
    let changed = false
    const keys = [...s.keys]
    const aggs: { -readonly [K in keyof GroupAgg]: GroupAgg[K] }[] = s.aggs.map((a) => ({ ...a }))
    const source = s.source.map((b, i) => {
      // The expressions over source branch `i`: its keys, then its aggregate parts' arguments and filters.
      const partsOf = aggs.flatMap((a, j) => a.parts.flatMap((p, k) => (p.branch === i ? [[j, k] as const] : [])))
      const extra: NValue[] = [...keys[i]!]
      for (const [j, k] of partsOf) {
        const p = aggs[j]!.parts[k]!
        extra.push(...(p.arg === undefined ? [] : [p.arg]), ...p.filter)
      }
      const r = this.branch(b, extra)
      if (r.branch === b) return b
      changed = true
      keys[i] = r.extra.slice(0, keys[i]!.length) as NExpr[]
      let at = keys[i]!.length
      for (const [j, k] of partsOf) {
        const p = aggs[j]!.parts[k]!
        const arg = p.arg === undefined ? undefined : r.extra[at++]!
        const filter = p.filter.map(() => r.extra[at++] as NExpr)
        aggs[j]!.parts = aggs[j]!.parts.map((x, n) => (n === k ? { ...p, arg, filter } : x))
      }
      return r.branch
    })
    return changed ? { ...s, source, keys, aggs } : s
  }

  /**
   * The left-joined grouped generator computing the aggregates of `cls` (over the same rows,
   * `sameRows`) per correlation key, and each aggregate's value read from it.
   */
  #join(cls: readonly (readonly [Agg, Plan])[]): { gen: Gen; values: NExpr[] } {
    const alias = `#d${this.#n++}`
    const columns: ColumnDef[] = []
    const table: TableDef = { name: alias, columns, byName: new Map(), key: undefined, lineage: false, storedLineage: undefined }
    const column = (name: string, type: NExpr['type']): NExpr => {
      const col: ColumnDef = { name, codec: undefined as unknown as ColumnDef['codec'], type }
      columns.push(col)
      ;(table.byName as Map<string, ColumnDef>).set(name, col)
      return { k: 'col', alias, table, col, type }
    }
    const p = cls[0]![1]
    const on: NExpr[] = p.pairs.map(([inner, outer], i) => ({ k: 'op', op: 'eq', args: [column(`k${i}`, inner.type), outer], type: { kind: 'boolean', nullable: true } }))
    const aggs: GroupAgg[] = []
    const values = cls.map(([a, q], j) => {
      const countAll = a.fn === 'count' && a.distinct !== true
      aggs.push({ fn: a.fn, distinct: a.distinct === true, type: a.type, parts: [{ branch: 0, arg: countAll ? undefined : renameValue(q.rows.value, sameRows(p, q)!), filter: [] }] })
      const col = column(`a${j}`, { ...a.type, nullable: true })
      // No group for an outer row: no rows, so count is 0 (and the other aggregates NULL, as read).
      return a.fn === 'count' ? { k: 'op', op: 'coalesce', args: [col, { k: 'const', value: 0, type: { kind: 'int', nullable: false } }], type: a.type } satisfies NExpr : col
    })
    const group: GroupSpec = { source: [p.rows], keys: [p.pairs.map(([inner]) => inner)], aggs }
    return { gen: { alias, table, group, left: { on } }, values }
  }
}

/**
 * When `q`'s rows and correlation are `p`'s (the same tables in the same order, the same
 * conditions and correlation equalities once `q`'s aliases are renamed to `p`'s), the renaming;
 * else `undefined`.
 */
function sameRows(p: Plan, q: Plan): ReadonlyMap<string, string> | undefined {
  const a = p.rows
  const b = q.rows
  if (a.gens.length !== b.gens.length || a.conds.length !== b.conds.length || p.pairs.length !== q.pairs.length) return undefined
  if (!a.gens.every((g, i) => g.table === b.gens[i]!.table)) return undefined
  const map = new Map(b.gens.map((g, i) => [g.alias, a.gens[i]!.alias] as const))
  if (!b.conds.every((c, i) => sameExpr(a.conds[i]!, renameExpr(c, map)))) return undefined
  return q.pairs.every(([inner, outer], i) => sameExpr(p.pairs[i]![0], renameExpr(inner, map)) && sameExpr(p.pairs[i]![1], outer)) ? map : undefined
}

/** How aggregate `a` is decorrelated from generators `outer`, or `undefined` when the rule does not apply. */
function plan(a: Agg, outer: ReadonlySet<string>): Plan | undefined {
  const q = a.q
  if (q.order !== undefined || q.branches.length !== 1) return undefined
  const b = q.branches[0]!
  if (b.gens.length === 0 || b.gens.some((g) => g.group !== undefined || g.left !== undefined) || (b.lets ?? []).length > 0 || b.grp !== undefined) return undefined
  const own = new Set(b.gens.map((g) => g.alias))
  const countAll = a.fn === 'count' && a.distinct !== true
  if (!countAll && !(isScalar(b.value) && reads(b.value, own) === 'only')) return undefined
  const pairs: (readonly [NExpr, NExpr])[] = []
  const conds: NExpr[] = []
  for (const c of b.conds.flatMap(conjuncts)) {
    const r = reads(c, own)
    if (r === 'only' || r === 'none') {
      conds.push(c)
      continue
    }
    if (c.k !== 'op' || c.op !== 'eq') return undefined
    const [x, y] = c.args as readonly [NExpr, NExpr]
    if (reads(x, own) === 'only' && reads(y, outer) === 'only') pairs.push([x, y])
    else if (reads(y, own) === 'only' && reads(x, outer) === 'only') pairs.push([y, x])
    else return undefined
  }
  if (pairs.length === 0) return undefined
  return { rows: { gens: b.gens, conds, value: b.value }, pairs }
}

/** The conjuncts of a condition (`a and b` is `a`, `b`). */
function conjuncts(c: NExpr): NExpr[] {
  return c.k === 'op' && c.op === 'and' ? c.args.flatMap(conjuncts) : [c]
}

/**
 * What columns an expression reads with respect to generators `set`: `only` (some, and only
 * those), `none` (no column), `other` (a column of another generator, or a subquery or shared
 * value, whose columns are not looked into).
 */
function reads(e: NExpr, set: ReadonlySet<string>): 'only' | 'none' | 'other' {
  switch (e.k) {
    case 'col': return set.has(e.alias) ? 'only' : 'other'
    case 'const': return 'none'
    case 'op': {
      let out: 'only' | 'none' = 'none'
      for (const x of e.args) {
        const r = reads(x, set)
        if (r === 'other') return 'other'
        if (r === 'only') out = 'only'
      }
      return out
    }
    case 'exists': case 'agg': case 'shared': case 'witness': return 'other'
  }
}


/**
 * Whether `branch` may rewrite source branch `i` of a group: it has a grouped generator, or an
 * aggregate in its value, conditions, keys, or the group's aggregate parts over it (else
 * `branch` returns it as it is).
 */
function mayRewrite(s: GroupSpec, b: Branch, i: number): boolean {
  if (b.gens.some((g) => g.group !== undefined)) return true
  const found: Agg[] = []
  collectAggs(b.value, found)
  for (const c of b.conds) collectAggs(c, found)
  for (const k of s.keys[i]!) collectAggs(k, found)
  for (const a of s.aggs) {
    for (const p of a.parts) {
      if (p.branch !== i) continue
      if (p.arg !== undefined) collectAggs(p.arg, found)
      for (const f of p.filter) collectAggs(f, found)
    }
  }
  return found.length > 0
}

function aggsOf(v: NValue): Agg[] {
  const out: Agg[] = []
  collectAggs(v, out)
  return out
}

