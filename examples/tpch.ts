/**
 * Three TPC-H queries in the DSL, on a few hand-written rows, with the lineage of their grouped
 * rows: Q1 (pricing summary: a group per flag and status, sums, averages and a count), Q3
 * (shipping priority: a three-table join grouped per order, top 2 by revenue) and Q13 (customer
 * distribution: a group over a query with a count per customer), and the difference between
 * lineage and why-provenance on an EXISTS. Dates use the library's
 * `DateString` codec and date functions; prices are exact decimals (`decimal(12, 2)`: strings
 * in TypeScript, never doubles). `bench/tpch/queries.ts` has all 22 queries.
 * Run: npx tsx examples/tpch.ts
 */
import Database from 'better-sqlite3'
import * as t from 'io-ts'
import { Kysely, SqliteDialect } from 'kysely'
import { compile, createTable, DateString, decimal, insertRows, lineage, Q, run, table, type DecimalString, type ExprLike } from '../src/index.js'

const money = decimal(12, 2)

export const customer = table('customer', { c_custkey: t.Int, c_name: t.string, c_mktsegment: t.string }, { key: 'c_custkey' })
export const orders = table(
  'orders',
  { o_orderkey: t.Int, o_custkey: t.Int, o_orderdate: DateString, o_shippriority: t.Int, o_comment: t.string },
  { key: 'o_orderkey' },
)
export const lineitem = table(
  'lineitem',
  {
    l_orderkey: t.Int, l_linenumber: t.Int, l_quantity: t.Int, l_extendedprice: money, l_discount: money, l_tax: money,
    l_returnflag: t.string, l_linestatus: t.string, l_shipdate: DateString,
  },
  { key: ['l_orderkey', 'l_linenumber'] },
)

export async function load(db: Kysely<any>): Promise<void> {
  for (const x of [customer, orders, lineitem]) await createTable(db, x)
  await insertRows(db, customer, [
    { c_custkey: 1, c_name: 'Customer#1', c_mktsegment: 'BUILDING' },
    { c_custkey: 2, c_name: 'Customer#2', c_mktsegment: 'BUILDING' },
    { c_custkey: 3, c_name: 'Customer#3', c_mktsegment: 'MACHINERY' },
  ])
  await insertRows(db, orders, [
    { o_orderkey: 10, o_custkey: 1, o_orderdate: '1995-03-01', o_shippriority: 0, o_comment: 'quick' },
    { o_orderkey: 11, o_custkey: 1, o_orderdate: '1995-02-11', o_shippriority: 0, o_comment: 'special requests' },
    { o_orderkey: 12, o_custkey: 2, o_orderdate: '1995-03-10', o_shippriority: 1, o_comment: 'slow' },
    { o_orderkey: 13, o_custkey: 3, o_orderdate: '1995-01-20', o_shippriority: 0, o_comment: 'special requests, pending' },
  ])
  const line = (o: number, n: number, qty: number, price: string, flag: string, status: string, ship: string) =>
    ({ l_orderkey: o, l_linenumber: n, l_quantity: qty, l_extendedprice: price, l_discount: '0.05', l_tax: '0.08', l_returnflag: flag, l_linestatus: status, l_shipdate: ship })
  await insertRows(db, lineitem, [
    line(10, 1, 17, '1700.00', 'N', 'O', '1995-03-20'),
    line(10, 2, 5, '520.50', 'N', 'O', '1995-04-02'),
    line(11, 1, 30, '3000.00', 'R', 'F', '1995-03-16'),
    line(12, 1, 8, '812.40', 'N', 'O', '1995-03-18'),
    line(12, 2, 2, '199.98', 'A', 'F', '1995-03-12'),
    line(13, 1, 45, '4500.00', 'R', 'F', '1995-02-01'),
  ])
}

const disc = (l: { l_extendedprice: ExprLike<DecimalString>; l_discount: ExprLike<DecimalString> }) => Q.mul(l.l_extendedprice, Q.sub(1, l.l_discount))

/** Q1: a group per return flag and line status, over the lines shipped by a date. */
export const q1 = Q.for(
  Q.groupBy(
    Q.for(lineitem, (l) => Q.where(Q.le(l.l_shipdate, Q.addDays(Q.date('1998-12-01'), -90)), Q.yield(l))),
    (l) => ({ flag: l.l_returnflag, status: l.l_linestatus }),
  ),
  (g) => Q.yield({
    flag: g.key.flag,
    status: g.key.status,
    sum_qty: Q.sum(g.group, (l) => l.l_quantity),
    sum_disc_price: Q.sum(g.group, (l) => disc(l)),
    avg_qty: Q.avg(g.group, (l) => l.l_quantity),
    count_order: Q.count(g.group),
  }),
).orderBy((r) => [r.flag, r.status])

/** Q3: the unshipped orders of one market segment with the highest revenue. */
export const q3 = Q.for(
  Q.groupBy(
    Q.for(customer, (c) => Q.for(orders, (o) => Q.for(lineitem, (l) => Q.where(
      Q.and(Q.eq(c.c_mktsegment, 'BUILDING'), Q.eq(c.c_custkey, o.o_custkey), Q.eq(l.l_orderkey, o.o_orderkey),
        Q.lt(o.o_orderdate, Q.date('1995-03-15')), Q.gt(l.l_shipdate, Q.date('1995-03-15'))),
      Q.yield({ orderkey: l.l_orderkey, orderdate: o.o_orderdate, volume: disc(l) }))))),
    (r) => ({ orderkey: r.orderkey, orderdate: r.orderdate }),
  ),
  (g) => Q.yield({ orderkey: g.key.orderkey, revenue: Q.sum(g.group, (r) => r.volume), orderdate: g.key.orderdate }),
).orderBy((r) => [Q.desc(r.revenue), r.orderdate]).limit(2)

/** Q13: how many customers have how many orders (not counting orders about special requests). */
export const q13 = Q.for(
  Q.groupBy(
    Q.for(customer, (c) => Q.yield({
      custkey: c.c_custkey,
      orders: Q.count(Q.for(orders, (o) => Q.where(Q.and(Q.eq(o.o_custkey, c.c_custkey), Q.not(Q.like(o.o_comment, '%special%requests%'))), Q.yield(o.o_orderkey)))),
    })),
    (r) => r.orders,
  ),
  (g) => Q.yield({ orders: g.key, customers: Q.count(g.group) }),
).orderBy((r) => [Q.desc(r.customers), Q.desc(r.orders)])

/** The customers who made special requests (an EXISTS: the orders are read only in the condition). */
export const special = Q.for(customer, (c) => Q.where(
  Q.exists(Q.for(orders, (o) => Q.where(Q.and(Q.eq(o.o_custkey, c.c_custkey), Q.like(o.o_comment, '%special%requests%')), Q.yield(o)))),
  Q.yield(c.c_name),
))

export async function main(db?: Kysely<any>): Promise<void> {
  const own = db === undefined
  db ??= new Kysely<any>({ dialect: new SqliteDialect({ database: new Database(':memory:') }) })
  if (own) await load(db)
  console.log('-- Q1 (one statement):')
  console.log(compile(q1, 'sqlite').statements[0]!.sql)
  for (const r of await run(db, q1)) console.log(JSON.stringify(r))
  console.log('-- Q1 with lineage: each group names every line it was computed from')
  for (const r of await run(db, lineage(q1))) console.log(JSON.stringify(r))
  console.log('-- Q3 with lineage: each order names its customer, its order row and its lines (a group\'s entries: by table, then key)')
  for (const r of await run(db, lineage(q3))) console.log(JSON.stringify(r))
  console.log('-- Q13 with lineage: a group of customers names its customers (the orders are only counted, in a value)')
  for (const r of await run(db, lineage(q13))) console.log(JSON.stringify(r))
  console.log('-- customers with special requests: lineage names the customer; why-provenance also the orders that made the condition true')
  for (const r of await run(db, lineage(special))) console.log(JSON.stringify(r))
  for (const r of await run(db, lineage(special, { why: true }))) console.log(JSON.stringify(r))
  if (own) await db.destroy()
}

if (import.meta.url === `file://${process.argv[1]}`) await main()
