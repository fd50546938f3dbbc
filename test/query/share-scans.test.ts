/**
 * Rule `one-scan-aggregates` (src/query/share-scans.ts): the aggregates a generator-less
 * `Q.yield` computes over the same rows are one scan (`select f(a0, a1) from (select sum(..) as
 * a0, sum(..) as a1 from ...)`), with the scalar subqueries' answers, empty rows included.
 */
import * as t from 'io-ts'
import { beforeAll, describe, expect, test } from 'vitest'
import { createTable, insertRows, lineage, Q, table, type AnyQuery } from '../../src/index.js'
import { eachDialect } from '../support/db.js'
import { expectOracleBag } from '../support/oracle-bag.js'
import { occurrences, sqlOf } from '../support/sql.js'

const items = table('items', { id: t.Int, kind: t.string, price: t.union([t.number, t.null]) }, { key: 'id' })
const data = {
  items: [
    { id: 1, kind: 'PROMO A', price: 10 },
    { id: 2, kind: 'plain', price: 30 },
    { id: 3, kind: 'PROMO B', price: null },
    { id: 4, kind: 'plain', price: 5.5 },
  ],
}

/** Q14's shape: two sums of one query, one of them under a case. */
const share = (minPrice: number) => {
  const rows = Q.for(items, (i) => Q.where(Q.ge(i.id, minPrice), Q.yield({ kind: i.kind, price: i.price })))
  return Q.yield({
    share: Q.div(Q.mul(100, Q.sum(rows, (r) => Q.case([[Q.like(r.kind, 'PROMO%'), r.price]], 0))), Q.sum(rows, (r) => r.price)),
    n: Q.count(rows),
    top: Q.max(rows, (r) => r.price),
  })
}

describe('rule one-scan-aggregates: the SQL', () => {
  test('aggregates of one query in a yield read its table once, in one derived table without GROUP BY', () => {
    for (const d of ['sqlite', 'postgres'] as const) {
      const sql = sqlOf(share(0), d)
      expect(occurrences(sql, '"items" as')).toBe(1)
      expect(sql).not.toContain('group by')
      expect(sql).toMatch(/^select .*"#a0"\."a0".* from \(select sum\(.*\) as "a0", sum\(.*\) as "a1", count\(\*\) as "a2", max\(.*\) as "a3" from "items" as "i0" where .*\) as "#a0"$/)
    }
  })

  test('aggregates over different rows keep their own scans', () => {
    const q = Q.yield({ a: Q.sum(Q.for(items, (i) => Q.where(Q.gt(i.id, 1), Q.yield(i.id)))), b: Q.sum(Q.for(items, (i) => Q.where(Q.gt(i.id, 2), Q.yield(i.id)))) })
    expect(occurrences(sqlOf(q), '"items" as')).toBe(2)
    expect(sqlOf(q)).not.toContain('#a0')
  })

  test('inside a query with generators (correlated aggregates) nothing changes', () => {
    const q = Q.for(items, (o) => Q.yield({ a: Q.count(Q.for(items, (i) => Q.where(Q.eq(i.kind, o.kind), Q.yield(i)))), b: Q.max(Q.for(items, (i) => Q.where(Q.eq(i.kind, o.kind), Q.yield(i.id)))) }))
    expect(sqlOf(q)).not.toContain('#a0')
  })
})

eachDialect('rule one-scan-aggregates keeps the answers (oracle)', (get) => {
  beforeAll(async () => {
    await createTable(get().db, items)
    await insertRows(get().db, items, data.items)
  })
  const cases: [string, () => AnyQuery][] = [
    ['over rows, NULL prices among them', () => share(0)],
    ['over no rows: sums and max NULL, count 0, one row', () => share(100)],
    ['under lineage', () => lineage(share(0))],
  ]
  for (const [name, build] of cases) {
    test(name, async () => {
      const q = build()
      await expectOracleBag(get().db, q, data)
    }, 60_000)
  }
})
