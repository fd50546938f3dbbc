/**
 * Rule `or-factor` (src/query/factor-or.ts): conjuncts common to every branch of a disjunction
 * in a `Q.where` leave it, and each generator's share of the branches becomes an implied filter;
 * the rows kept are the same (checked against the oracle on both dialects, NULLs included).
 */
import * as t from 'io-ts'
import { beforeAll, describe, expect, test } from 'vitest'
import { createTable, insertRows, Q, table, type AnyQuery, type Expr } from '../../src/index.js'
import { eachDialect } from '../support/db.js'
import { expectOracleBag } from '../support/oracle-bag.js'
import { sqlOf } from '../support/sql.js'

const parts = table('parts', { pk: t.Int, brand: t.string, size: t.union([t.Int, t.null]) }, { key: 'pk' })
const lines = table('lines', { lk: t.Int, pk: t.Int, qty: t.union([t.Int, t.null]), mode: t.string }, { key: 'lk' })

const data = {
  parts: [
    { pk: 1, brand: 'A', size: 3 },
    { pk: 2, brand: 'B', size: 9 },
    { pk: 3, brand: 'A', size: null },
    { pk: 4, brand: 'C', size: 1 },
  ],
  lines: [
    { lk: 1, pk: 1, qty: 5, mode: 'AIR' },
    { lk: 2, pk: 2, qty: 15, mode: 'AIR' },
    { lk: 3, pk: 3, qty: 5, mode: 'AIR' },
    { lk: 4, pk: 1, qty: null, mode: 'AIR' },
    { lk: 5, pk: 4, qty: 5, mode: 'SHIP' },
    { lk: 6, pk: 2, qty: 2, mode: 'AIR' },
  ],
}

/** Q19's shape: each branch repeats the join and the mode test. */
const q19Like = () =>
  Q.for(lines, (l) => Q.for(parts, (p) => Q.where(
    Q.or(
      Q.and(Q.eq(p.pk, l.pk), Q.eq(p.brand, 'A'), Q.le(l.qty, 10), Q.le(p.size, 5), Q.eq(l.mode, 'AIR')),
      Q.and(Q.eq(p.pk, l.pk), Q.eq(p.brand, 'B'), Q.ge(l.qty, 10), Q.le(p.size, 10), Q.eq(l.mode, 'AIR'))),
    Q.yield({ lk: l.lk, brand: p.brand }))))


describe('rule or-factor: the SQL', () => {
  test('conjuncts every branch repeats (the join) leave the OR; each table gets its implied filter; the OR stays', () => {
    const sql = sqlOf(q19Like())
    const where = sql.slice(sql.indexOf(' where '))
    expect(where).toBe(
      ' where (("p1"."pk" = "l0"."pk") and ("l0"."mode" = ?)' +
        ' and ((("p1"."brand" = ?) and ("p1"."size" <= ?)) or (("p1"."brand" = ?) and ("p1"."size" <= ?)))' +
        ' and (("l0"."qty" <= ?) or ("l0"."qty" >= ?))' +
        ' and ((("p1"."brand" = ?) and ("l0"."qty" <= ?) and ("p1"."size" <= ?)) or (("p1"."brand" = ?) and ("l0"."qty" >= ?) and ("p1"."size" <= ?))))',
    )
  })

  test('a branch that is only the common part absorbs the OR: (a and b) or a is a', () => {
    const q = Q.for(parts, (p) => Q.where(Q.or(Q.and(Q.eq(p.brand, 'A'), Q.le(p.size, 5)), Q.eq(p.brand, 'A')), Q.yield(p.pk)))
    expect(sqlOf(q)).toBe('select "p0"."pk" as "value" from "parts" as "p0" where ("p0"."brand" = ?)')
  })

  test('an OR with nothing common and one table only is left as written', () => {
    const q = Q.for(parts, (p) => Q.where(Q.or(Q.and(Q.eq(p.brand, 'A'), Q.le(p.size, 5)), Q.eq(p.brand, 'B')), Q.yield(p.pk)))
    expect(sqlOf(q)).toBe('select "p0"."pk" as "value" from "parts" as "p0" where ((("p0"."brand" = ?) and ("p0"."size" <= ?)) or ("p0"."brand" = ?))')
  })

  test('conjuncts that read a subquery are never taken out (they are equal only to themselves)', () => {
    const big = (p: { pk: Expr<number> }) => Q.exists(Q.for(lines, (l) => Q.where(Q.eq(l.pk, p.pk), Q.yield(l))))
    const q = Q.for(parts, (p) => Q.where(Q.or(Q.and(big(p), Q.eq(p.brand, 'A')), Q.and(big(p), Q.eq(p.brand, 'B'))), Q.yield(p.pk)))
    expect(sqlOf(q).match(/exists/g)).toHaveLength(2)
  })
})

eachDialect('rule or-factor keeps the rows (oracle)', (get) => {
  beforeAll(async () => {
    const { db } = get()
    await createTable(db, parts)
    await insertRows(db, parts, data.parts)
    await createTable(db, lines)
    await insertRows(db, lines, data.lines)
  })
  const cases: [string, () => AnyQuery][] = [
    ['the Q19 shape (NULL sizes and quantities)', q19Like],
    ['absorption under NULL: (a and b) or a', () => Q.for(parts, (p) => Q.where(Q.or(Q.and(Q.le(p.size, 5), Q.eq(p.brand, 'A')), Q.le(p.size, 5)), Q.yield(p.pk)))],
    ['a negated disjunction is not factored into a wrong filter', () =>
      Q.for(lines, (l) => Q.for(parts, (p) => Q.where(Q.and(Q.eq(p.pk, l.pk), Q.not(Q.or(Q.and(Q.eq(p.brand, 'A'), Q.le(l.qty, 10)), Q.and(Q.eq(p.brand, 'B'), Q.le(l.qty, 10))))), Q.yield(l.lk))))],
    ['inside an aggregate and a nested collection', () =>
      Q.for(parts, (p) => Q.yield({
        pk: p.pk,
        n: Q.count(Q.for(lines, (l) => Q.where(Q.or(Q.and(Q.eq(l.pk, p.pk), Q.le(l.qty, 5)), Q.and(Q.eq(l.pk, p.pk), Q.eq(p.brand, 'B'))), Q.yield(l)))),
        ls: Q.for(lines, (l) => Q.where(Q.or(Q.and(Q.eq(l.pk, p.pk), Q.eq(l.mode, 'AIR')), Q.and(Q.eq(l.pk, p.pk), Q.eq(l.mode, 'SHIP'))), Q.yield(l.lk))),
      }))],
  ]
  for (const [name, build] of cases) {
    test(name, async () => {
      const q = build()
      await expectOracleBag(get().db, q, data)
    }, 60_000)
  }
})
