/**
 * Every bug the property tests found in the compiler, as a fixed test on both dialects.
 */
import * as t from 'io-ts'
import { beforeAll, expect, test } from 'vitest'
import { AST, createTable, insertRows, Q, run, table } from '../../src/index.js'
import { evaluate } from '../oracle/evaluate.js'
import { eachDialect } from '../support/db.js'

const r = table('r', { id: t.Int, a: t.Int, s: t.union([t.string, t.null]) })
const n = table('n', { id: t.Int })
const data = { r: [{ id: 1, a: 10, s: 'x' }, { id: 2, a: 20, s: null }, { id: 3, a: 30, s: 'z' }] }
const sortJson = (xs: unknown[]) => xs.map((x) => JSON.stringify(x)).sort()

eachDialect('fixed bugs', (get) => {
  beforeAll(async () => {
    await createTable(get().db, r)
    await insertRows(get().db, r, data.r)
  })
  const agrees = async (q: any) => {
    const rows = await run(get().db, q)
    expect(sortJson(rows)).toEqual(sortJson(evaluate(q[AST], data)))
    return rows
  }

  test('a nested collection whose branch has no generator does not collapse the outer query', async () => {
    // `(select json_group_array(t0.id))` aggregated the OUTER rows: SQLite returned one row,
    // PostgreSQL failed with "subquery uses ungrouped column".
    const rows = await agrees(Q.for(Q.for(r, (x) => Q.yield({ v: Q.yield(x.id) })), (y) => Q.yield(y.v)))
    expect(rows).toHaveLength(3)
  })

  test('a nested collection whose elements mention only outer columns does not collapse the outer query', async () => {
    const rows = await agrees(Q.for(r, (x) => Q.yield({ id: x.id, same: Q.for(r, () => Q.yield(x.a)) })))
    expect(rows).toHaveLength(3)
  })

  test('an aggregate of an outer column over a generator-less query stays in its subquery', async () => {
    await agrees(Q.for(r, (x) => Q.yield({ id: x.id, m: Q.max(Q.yield(x.a)), c: Q.sum(Q.for(r, () => Q.yield(x.a))) })))
  })

  test('a nested element that is a one-field record round-trips', async () => {
    // lowering wrote such an element as its only slot, decoding expected a JSON array
    await agrees(Q.yield({ from: Q.values([{ v: 0.25 }, { v: -1000.25 }]), k: -0.75 }))
  })

  test('min/max/sum over NULL constants only are NULL of a usable type', async () => {
    // min(yield null) was typed string, so adding it to a number was a type error
    await agrees(Q.where(Q.isNull(Q.add(Q.min(Q.yield(0.5)), Q.min(Q.yield(null)))), Q.yield(1)))
  })

  test('NULL constants in a union next to typed values (PostgreSQL typed null ∪ null as text)', async () => {
    await agrees(Q.yield(Q.union(Q.for(Q.values([-1000.25, 1.5, null]), () => Q.yield(null)), Q.yield(-42))))
    await agrees(Q.union(Q.yield({ n: null }), Q.yield({ n: null }), Q.for(r, (x) => Q.yield({ n: x.a }))))
  })

  test('a condition of NULLs only is lowered as a boolean (PostgreSQL: "argument of WHERE must be type boolean")', async () => {
    // Q.where(Q.coalesce(null, null), ...) compiled to `where coalesce(cast(null as text), ...)`.
    expect(await agrees(Q.for(r, (x) => Q.where(Q.coalesce(null, null), Q.yield(x.id))))).toEqual([])
    expect(await agrees(Q.for(r, (x) => Q.where(Q.not(Q.coalesce(null, null)), Q.yield(x.id))))).toEqual([])
    expect(await agrees(Q.for(r, (x) => Q.where(Q.or(Q.coalesce(null, null), Q.eq(x.a, 10)), Q.yield(x.id))))).toEqual([1])
    expect(await agrees(Q.for(r, (x) => Q.where(Q.case([[Q.eq(x.a, 10), null]], null), Q.yield(x.id))))).toEqual([])
    expect(await agrees(Q.for(r, (x) => Q.yield({ k: Q.count(Q.for(r, (y) => Q.where(Q.coalesce(null, null), Q.yield(y)))), c: Q.case([[Q.coalesce(null, null), 1]], 2) })))).toHaveLength(3)
  })

  test('NULL operands of arithmetic and comparison (PostgreSQL: "operator does not exist: - text")', async () => {
    await agrees(Q.where(Q.eq(Q.sub(null, Q.sub(42, -2147483648)), Q.min(r, () => Q.neg(null))), Q.yield(-0.75)))
    await agrees(Q.for(r, (x) => Q.yield({ a: Q.add(x.a, null), b: Q.eq(null, x.s), c: Q.coalesce(null, x.s) })))
  })

  test('an operator of NULLs only takes its type from its context (PostgreSQL: "operator does not exist: text = bigint")', async () => {
    // coalesce(null, null) was cast to text whatever it was compared with
    await agrees(Q.for(Q.yield([null, 100, -42]), (x0) => Q.yield({ id: Q.for(x0, (x1) => Q.where(Q.in(Q.coalesce(x1, x1), [-1, 2, -42]), Q.values([{ s: '', k: 1 }]))) })))
    await agrees(Q.where(Q.eq(Q.add(null, null), 3), Q.yield(1)))
    await agrees(Q.for(r, (x) => Q.where(Q.isNull(Q.coalesce(null, null)), Q.yield({ a: x.a, z: Q.eq(x.a, Q.coalesce(null, null)) }))))
  })

  test('a path used twice as a query gets fresh aliases each time', async () => {
    const nested = Q.for(r, (x) => Q.yield({ id: x.id, all: Q.for(r, (y) => Q.yield(y)) }))
    await agrees(Q.for(nested, (n) => Q.for(n.all, (a) => Q.for(n.all, (b) => Q.where(Q.eq(a.id, b.id), Q.yield({ n: n.id, a: a.id }))))))
  })

  test('a large result (160,000 rows) is returned without overflowing the stack', async () => {
    // run() appended rows with push(...rows), which overflows the stack on large results
    const { db } = get()
    await createTable(db, n)
    await insertRows(db, n, Array.from({ length: 20 }, (_, i) => ({ id: i })))
    const q = Q.for(n, (a) => Q.for(n, (b) => Q.for(n, (c) => Q.for(n, (d) => Q.yield(Q.add(Q.add(a.id, b.id), Q.add(c.id, d.id)))))))
    expect(await run(db, q)).toHaveLength(160_000)
  })
})
