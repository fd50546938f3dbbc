/**
 * Behaviours a mutation audit found untested: composing limits (and offsets), and result field
 * names that collide with the path names of nested fields. Both dialects, against the oracle.
 */
import * as t from 'io-ts'
import { beforeAll, expect, test } from 'vitest'
import { AST, createTable, insertRows, lineage, Q, plainLineage, run as runLazy, table } from '../../src/index.js'
import { evaluate } from '../oracle/evaluate.js'
import { eachDialect } from '../support/db.js'

/** `run` with annotated elements copied to plain `{ data, lineage }` objects, so `toEqual` compares both fields (see docs/lineage.md, "Reading lineage"). */
const run: typeof runLazy = async (db, q) => plainLineage(await runLazy(db, q))

const nums = table('nums', { id: t.Int, x: t.Int, s: t.string })
const rows = [1, 2, 3, 4, 5, 6].map((i) => ({ id: i, x: i * 10, s: `s${i}` }))

eachDialect('limits and names', (get) => {
  beforeAll(async () => {
    await createTable(get().db, nums)
    await insertRows(get().db, nums, rows)
  })

  test('q.limit(a, o1).limit(b, o2) keeps what the oracle keeps, for every combination', async () => {
    const ordered = Q.for(nums, (n) => Q.yield(n.x)).orderBy((x) => x)
    for (const a of [0, 1, 3, 10]) {
      for (const o1 of [0, 2]) {
        for (const b of [0, 2, 5]) {
          for (const o2 of [0, 1, 4]) {
            const q = ordered.limit(a, o1).limit(b, o2)
            const want = evaluate(q[AST], { nums: rows })
            expect(await run(get().db, q), `limit(${a}, ${o1}).limit(${b}, ${o2})`).toEqual(want)
            // the same through Q.limit, three deep
            const q3 = Q.limit(Q.limit(Q.limit(ordered, a, o1), b, o2), 2, 1)
            expect(await run(get().db, q3), `three limits ${a} ${o1} ${b} ${o2}`).toEqual(evaluate(q3[AST], { nums: rows }))
          }
        }
      }
    }
  })

  test('a field literally named "a.b" next to a nested field a.b keeps both values', async () => {
    const q = Q.for(nums, (n) => Q.where(Q.eq(n.id, 2), Q.yield({ 'a.b': n.s, a: { b: n.x } })))
    expect(await run(get().db, q)).toEqual([{ 'a.b': 's2', a: { b: 20 } }])
    const r = Q.for(nums, (n) => Q.where(Q.eq(n.id, 2), Q.yield({ a: { b: n.x }, 'a.b': n.s })))
    expect(await run(get().db, r)).toEqual([{ a: { b: 20 }, 'a.b': 's2' }])
    expect(await run(get().db, lineage(r))).toEqual([{ data: { a: { b: 20 }, 'a.b': 's2' }, lineage: [{ table: 'nums', key: 2 }] }])
    // and when ordered by the nested one (the order key must not read the other column)
    const o = Q.for(nums, (n) => Q.where(Q.le(n.id, 3), Q.yield({ 'a.b': Q.neg(n.x), a: { b: n.x } }))).orderBy((e) => Q.desc(e.a.b))
    expect(await run(get().db, o)).toEqual([30, 20, 10].map((x) => ({ 'a.b': -x, a: { b: x } })))
  })
})
