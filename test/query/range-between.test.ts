/**
 * Rule `range-between` (src/query/lower/scalar.ts): conjuncts `x >= lo` and `x <= hi` on the
 * same number or date are written `x BETWEEN lo AND hi`, keeping the rows (NULLs, empty ranges).
 */
import * as t from 'io-ts'
import { beforeAll, describe, expect, test } from 'vitest'
import { createTable, DateString, insertRows, Q, table, type AnyQuery } from '../../src/index.js'
import { eachDialect } from '../support/db.js'
import { expectOracleBag } from '../support/oracle-bag.js'
import { sqlOf } from '../support/sql.js'

const ev = table('ev', { id: t.Int, n: t.union([t.Int, t.null]), d: DateString, s: t.string }, { key: 'id' })
const data = {
  ev: [
    { id: 1, n: 5, d: '1995-01-01', s: 'b' },
    { id: 2, n: null, d: '1996-12-31', s: 'c' },
    { id: 3, n: 11, d: '1997-01-01', s: 'a' },
    { id: 4, n: 1, d: '1994-12-31', s: 'b' },
  ],
}
const range = (lo: number, hi: number) => Q.for(ev, (e) => Q.where(Q.and(Q.ge(e.n, lo), Q.eq(e.s, 'b'), Q.le(e.n, hi)), Q.yield(e.id)))
const dates = () => Q.for(ev, (e) => Q.where(Q.and(Q.ge(e.d, Q.date('1995-01-01')), Q.le(e.d, '1996-12-31')), Q.yield(e.id)))

describe('rule range-between: the SQL', () => {
  test('x >= lo and x <= hi is x between lo and hi, the other conjuncts kept in place', () => {
    expect(sqlOf(range(1, 5))).toBe('select "e0"."id" as "value" from "ev" as "e0" where (("e0"."n" between ? and ?) and ("e0"."s" = ?))')
    expect(sqlOf(dates(), 'postgres')).toBe('select "e0"."id" as "value" from "ev" as "e0" where ("e0"."d" between cast(\'1995-01-01\' as date) and cast(\'1996-12-31\' as date))')
  })
  test('strings, strict bounds and different expressions are left as written', () => {
    const s = Q.for(ev, (e) => Q.where(Q.and(Q.ge(e.s, 'a'), Q.le(e.s, 'b')), Q.yield(e.id)))
    expect(sqlOf(s)).not.toContain('between')
    const strict = Q.for(ev, (e) => Q.where(Q.and(Q.gt(e.n, 1), Q.le(e.n, 5)), Q.yield(e.id)))
    expect(sqlOf(strict)).not.toContain('between')
    const other = Q.for(ev, (e) => Q.where(Q.and(Q.ge(e.n, 1), Q.le(e.id, 5)), Q.yield(e.id)))
    expect(sqlOf(other)).not.toContain('between')
  })
})

eachDialect('rule range-between keeps the rows (oracle)', (get) => {
  beforeAll(async () => {
    await createTable(get().db, ev)
    await insertRows(get().db, ev, data.ev)
  })
  const cases: [string, () => AnyQuery][] = [
    ['a number range with a NULL value', () => range(1, 5)],
    ['an empty range (lo > hi)', () => range(5, 1)],
    ['a date range', dates],
    ['inside a negation', () => Q.for(ev, (e) => Q.where(Q.not(Q.and(Q.ge(e.n, 1), Q.le(e.n, 5))), Q.yield(e.id)))],
  ]
  for (const [name, build] of cases) {
    test(name, async () => {
      const q = build()
      await expectOracleBag(get().db, q, data)
    }, 60_000)
  }
})
