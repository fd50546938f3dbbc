/**
 * Rule `or-factor`: a rewrite of the condition of a `Q.where` (normal form, a conjunction that
 * filters rows: NULL and FALSE both drop the row), so a disjunction of conjunctions does not hide
 * from the database planner what every branch requires. For each disjunct `D = or(C1, ..., Cn)`
 * of the condition's conjuncts, each `Ci` a conjunction:
 *
 * 1. `common`: conjuncts that occur (structurally equal) in every `Ci` are taken out of the OR:
 *    `(A and B1) or (A and B2) ~> A and (B1 or B2)` (distributivity, exact in SQL's three-valued
 *    logic). TPC-H Q19 repeats its join condition `p_partkey = l_partkey` in each branch; out of
 *    the OR it is a join condition again. When some `Ci` is left empty, the OR is true whenever
 *    the common part is (absorption: `A or (A and B) = A`) and is dropped.
 * 2. `implied`: for each generator `g` such that every remaining `Ci` has conjuncts reading only
 *    `g`'s columns (and constants), the disjunction of those conjuncts is added as a conjunct:
 *    `(P1 and Q1) or (P2 and Q2) ~> (P1 or P2) and ((P1 and Q1) or (P2 and Q2))`, `Pi` reading
 *    only `g`. It is implied by the OR (a row the OR keeps satisfies it), so it keeps the same
 *    rows, and it filters `g`'s rows before they are joined (SQLite evaluates it in `g`'s loop;
 *    PostgreSQL's planner derives such restrictions itself). Q19 on SQLite: 127x slower without
 *    it, 1.0x with it (measured against the official text).
 *
 * The OR itself stays (less what was taken out), so the condition keeps the same rows. A
 * condition without such a disjunction is returned as it is (the same object).
 */
import { sameExpr, type NExpr } from './normal.js'

type Op = Extract<NExpr, { k: 'op' }>

/** The condition with rule `or-factor` applied to each of its disjunctive conjuncts. */
export function factorOr(cond: NExpr): NExpr {
  if (!hasDisjunct(cond)) return cond
  const parts = conjuncts(cond)
  let changed = false
  const out: NExpr[] = []
  for (const p of parts) {
    const f = p.k === 'op' && p.op === 'or' && p.args.length > 1 ? factorDisjunction(p) : undefined
    if (f === undefined) out.push(p)
    else {
      changed = true
      for (const x of f) if (!out.some((y) => sameExpr(x, y))) out.push(x)
    }
  }
  return changed ? andOf(out) : cond
}

/** The conjuncts replacing `or(C1, ..., Cn)`, or `undefined` when the rule changes nothing. */
function factorDisjunction(d: Op): NExpr[] | undefined {
  const branches = d.args.map(conjuncts)
  const first = branches[0]!
  // (A conjunct equal to an earlier one of the first branch is common exactly when that one is.)
  const common: NExpr[] = []
  for (const x of first) {
    if (!common.some((y) => sameExpr(x, y)) && branches.every((b, i) => i === 0 || b.some((y) => sameExpr(x, y)))) common.push(x)
  }
  const rest = common.length === 0 ? branches : branches.map((b) => b.filter((x) => !common.some((y) => sameExpr(x, y))))
  // absorption: a branch reduced to the common part makes the whole OR the common part
  if (common.length > 0 && rest.some((b) => b.length === 0)) return common
  const implied: NExpr[] = []
  // (each conjunct's alias computed once)
  const single = rest.map((b) => b.map(singleAlias))
  const aliases = [...new Set(single.flatMap((b) => b.flatMap((a) => a ?? [])))]
  for (const a of aliases) {
    const own = rest.map((b, i) => b.filter((_, j) => single[i]![j] === a))
    if (own.some((o) => o.length === 0)) continue
    // every conjunct reads only `a`: the implied filter is the OR itself
    if (own.every((o, i) => o.length === rest[i]!.length)) continue
    implied.push(orOf(own.map(andOf)))
  }
  if (common.length === 0 && implied.length === 0) return undefined
  return [...common, ...implied, orOf(rest.map(andOf))]
}

/** Whether a conjunct of `e` is a disjunction of two or more (the rule's only case; most conditions have none). */
function hasDisjunct(e: NExpr): boolean {
  return e.k === 'op' && (e.op === 'or' ? e.args.length > 1 : e.op === 'and' && e.args.some(hasDisjunct))
}

/** The conjuncts of a condition (nested `and`s flattened). */
function conjuncts(e: NExpr): NExpr[] {
  return e.k === 'op' && e.op === 'and' ? e.args.flatMap(conjuncts) : [e]
}

/**
 * The one generator alias an expression reads (columns and constants only, at least one
 * column), or `undefined` (several aliases, none, or a subquery).
 */
function singleAlias(e: NExpr): string | undefined {
  let alias: string | undefined
  const walk = (x: NExpr): boolean => {
    switch (x.k) {
      case 'col':
        if (alias !== undefined && alias !== x.alias) return false
        alias = x.alias
        return true
      case 'const':
        return true
      case 'op':
        return x.args.every(walk)
      case 'exists':
      case 'agg':
      case 'shared':
      case 'witness':
        return false
    }
  }
  return walk(e) ? alias : undefined
}

const nullable = (xs: readonly NExpr[]): boolean => xs.some((x) => x.type.nullable)
const andOf = (xs: readonly NExpr[]): NExpr => (xs.length === 1 ? xs[0]! : { k: 'op', op: 'and', args: xs, type: { kind: 'boolean', nullable: nullable(xs) } })
const orOf = (xs: readonly NExpr[]): NExpr => (xs.length === 1 ? xs[0]! : { k: 'op', op: 'or', args: xs, type: { kind: 'boolean', nullable: nullable(xs) } })
