/**
 * Rule `decorrelate-aggregate` (src/query/decorrelate.ts): an aggregate correlated with every row
 * of its branch by equalities becomes a grouped derived table left-joined to the branch
 * (`left join (select k, count(*) ... group by 1) on k = outer`), with the correlated
 * subquery's answers: `count` 0 and the other aggregates NULL over no rows, NULL keys matching
 * nothing.
 */
import fc from 'fast-check'
import * as t from 'io-ts'
import { beforeAll, describe, expect, test } from 'vitest'
import { AST, createTable, decimal, insertRows, lineage, Q, table, type AnyQuery, type ExprLike } from '../../src/index.js'
import { decorrelate } from '../../src/query/decorrelate.js'
import { normalise } from '../../src/query/normalise.js'
import { arbCase } from '../support/arbitraries.js'
import { eachDialect } from '../support/db.js'
import { expectOracleBag } from '../support/oracle-bag.js'
import { sqlOf } from '../support/sql.js'

const people = table('people', { id: t.Int, team: t.union([t.Int, t.null]), name: t.string }, { key: 'id' })
const orders = table('orders', {
  id: t.Int, person: t.union([t.Int, t.null]), team: t.union([t.Int, t.null]), amount: t.union([t.number, t.null]), price: decimal(8, 2), note: t.string,
}, { key: 'id' })
const data = {
  people: [
    { id: 1, team: 10, name: 'ann' },
    { id: 2, team: 10, name: 'bob' },
    { id: 3, team: null, name: 'cy' },
    { id: 4, team: 20, name: 'di' }, // no orders
  ],
  orders: [
    { id: 100, person: 1, team: 10, amount: 5, price: '1.50', note: 'plain' },
    { id: 101, person: 1, team: 10, amount: null, price: '2.25', note: 'special' },
    { id: 102, person: 1, team: 20, amount: 7.5, price: '0.10', note: 'plain' },
    { id: 103, person: 2, team: 10, amount: 2, price: '3.00', note: 'plain' },
    { id: 104, person: null, team: null, amount: 4, price: '9.99', note: 'plain' }, // NULL keys
    { id: 105, person: 3, team: null, amount: 1, price: '1.00', note: 'special' },
    { id: 106, person: 3, team: 10, amount: 1, price: '1.00', note: 'plain' },
  ] as const,
}

type E<A> = ExprLike<A>
const ordersOf = (p: { id: E<number> }, keep: (o: { note: E<string> }) => E<boolean> = () => true) =>
  Q.for(orders, (o) => Q.where(Q.and(Q.eq(o.person, p.id), keep(o)), Q.yield(o)))
const plain = (o: { note: E<string> }) => Q.not(Q.like(o.note, '%special%'))

/** TPC-H Q13's shape: customers grouped by their number of orders. */
const q13 = () => {
  const counts = Q.for(people, (p) => Q.yield({ id: p.id, n: Q.count(ordersOf(p, plain)) }))
  return Q.for(Q.groupBy(counts, (r) => r.n), (g) => Q.yield({ n: g.key, people: Q.count(g.group) }))
}
const perPerson = () =>
  Q.for(people, (p) => Q.yield({
    id: p.id,
    n: Q.count(ordersOf(p)),
    total: Q.sum(Q.for(orders, (o) => Q.where(Q.eq(o.person, p.id), Q.yield(o.amount)))),
    low: Q.min(Q.for(orders, (o) => Q.where(Q.eq(p.id, o.person), Q.yield(o.amount)))),
    mean: Q.avg(Q.for(orders, (o) => Q.where(Q.eq(o.person, p.id), Q.yield(o.amount)))),
    price: Q.sum(Q.for(orders, (o) => Q.where(Q.eq(o.person, p.id), Q.yield(o.price)))),
    notes: Q.count(Q.distinct(Q.for(orders, (o) => Q.where(Q.eq(o.person, p.id), Q.yield(o.note))))),
  }))
/** Correlated by two keys, one of them nullable on both sides. */
const twoKeys = () =>
  Q.for(people, (p) => Q.yield({ id: p.id, n: Q.count(Q.for(orders, (o) => Q.where(Q.and(Q.eq(o.person, p.id), Q.eq(o.team, p.team)), Q.yield(o)))) }))
/** The aggregate in the condition: every row needs it. */
const inWhere = () => Q.for(people, (p) => Q.where(Q.gt(Q.count(ordersOf(p)), 1), Q.yield({ id: p.id })))
/** Two generators, no condition between them: the join tree is `people cross join people left join ...`. */
const twoGens = () =>
  Q.for(people, (p) => Q.for(people, (q) => Q.yield({ p: p.id, q: q.id, n: Q.count(Q.for(orders, (o) => Q.where(Q.and(Q.eq(o.person, p.id), Q.eq(o.team, q.team)), Q.yield(o)))) })))


describe('rule decorrelate-aggregate: the SQL', () => {
  test('a count per row of a table is a left join to the counts grouped by the correlation key', () => {
    for (const d of ['sqlite', 'postgres'] as const) {
      const sql = sqlOf(q13(), d)
      expect(sql).toMatch(/from "people" as "p\d+" left join \(select "o\d+"\."person" as "k0", count\(\*\) as "a0" from "orders" as "o\d+" where .* group by 1\) as "#d0" on \("#d0"\."k0" = "p\d+"\."id"\)/)
      expect(sql).toContain('coalesce("#d0"."a0", ')
      expect(sql).not.toMatch(/\(select count\(\*\) as "v"/)
    }
  })

  test('several correlation keys are several grouping keys; two generators join as one tree', () => {
    expect(sqlOf(twoKeys())).toMatch(/group by 1, 2\) as "#d0" on \(\("#d0"\."k0" = "p\d+"\."id"\) and \("#d0"\."k1" = "p\d+"\."team"\)\)/)
    expect(sqlOf(twoGens(), 'postgres')).toMatch(/from "people" as "p\d+" cross join "people" as "p\d+" left join \(select/)
  })

  test('ordering by a decorrelated aggregate reads the joined column: no correlated subquery is left in ORDER BY', () => {
    const q = perPerson().orderBy((r) => [Q.desc(r.n), Q.desc(r.total), r.id])
    for (const d of ['sqlite', 'postgres'] as const) {
      const sql = sqlOf(q, d)
      expect(sql).not.toMatch(/order by .*\(select /)
      expect(sql).toMatch(/order by "n" desc nulls last, "#d1"\."a0" desc/)
    }
  })

  test('a branch whose rows a condition filters keeps its correlated subquery (TPC-H Q2, Q17)', () => {
    const q = Q.for(people, (p) => Q.where(Q.and(Q.eq(p.team, 10), Q.gt(Q.count(ordersOf(p)), 0)), Q.yield({ id: p.id })))
    expect(sqlOf(q)).not.toContain('#d0')
    expect(sqlOf(q)).toContain('(select count(*)')
  })

  test('an aggregate correlated otherwise than by equality, or inside a nested collection, stays correlated', () => {
    const lt = Q.for(people, (p) => Q.yield({ n: Q.count(Q.for(orders, (o) => Q.where(Q.lt(o.person, p.id), Q.yield(o)))) }))
    expect(sqlOf(lt)).not.toContain('#d0')
    const orEq = Q.for(people, (p) => Q.yield({ n: Q.count(Q.for(orders, (o) => Q.where(Q.or(Q.eq(o.person, p.id), Q.eq(o.team, p.team)), Q.yield(o)))) }))
    expect(sqlOf(orEq)).not.toContain('#d0')
    const nested = Q.for(people, (p) => Q.yield({ xs: Q.for(people, (q) => Q.where(Q.eq(q.team, p.team), Q.yield({ n: Q.count(ordersOf(q)) }))) }))
    expect(sqlOf(nested)).not.toContain('#d0')
    const ordered = Q.for(people, (p) => Q.yield({ n: Q.count(ordersOf(p).orderBy((o) => o.id).limit(1)) }))
    expect(sqlOf(ordered)).not.toContain('#d0')
  })
})

eachDialect('rule decorrelate-aggregate keeps the answers (oracle)', (get) => {
  beforeAll(async () => {
    await createTable(get().db, people)
    await createTable(get().db, orders)
    await insertRows(get().db, people, data.people)
    await insertRows(get().db, orders, data.orders)
  })
  const cases: [string, () => AnyQuery][] = [
    ['grouped by a count: people without orders count 0', q13],
    ['count 0, sum/min/avg NULL over no rows; decimal sums; count distinct', perPerson],
    ['two keys: a NULL key matches nothing', twoKeys],
    ['the aggregate in the condition', inWhere],
    ['two generators', twoGens],
    ['ordered by the aggregates', () => perPerson().orderBy((r) => [Q.desc(r.n), Q.desc(r.total), r.id])],
    ['under lineage, grouped', () => lineage(q13())],
    ['under lineage, per row', () => lineage(perPerson())],
    ['under why-provenance, the aggregate in the condition', () => lineage(inWhere(), { why: true })],
  ]
  for (const [name, build] of cases) {
    test(name, async () => {
      const q = build()
      expect(sqlOf(q, get().dialect)).toContain('left join')
      await expectOracleBag(get().db, q, data)
    }, 60_000)
  }
})

describe('the property tests exercise rule decorrelate-aggregate', () => {
  test('at least 5% of the generated queries are rewritten by it (400 sampled, CI seed)', () => {
    const cases = fc.sample(arbCase(), { numRuns: 400, seed: 20261206 })
    const rewritten = cases.filter((c) => {
      const t = normalise(c.query[AST])
      return decorrelate(t) !== t
    }).length
    expect(rewritten / cases.length).toBeGreaterThanOrEqual(0.05)
  }, 120_000)
})
