/**
 * The 22 TPC-H queries written in the DSL as a user writes them: grouping with `Q.groupBy`
 * (`{ key, group }`, aggregates over `g.group`), `Q.distinct` (Q16's COUNT(DISTINCT)),
 * `Q.case` inside sums (Q8, Q12, Q14), dates with the library's `DateString` codec and date
 * functions (`Q.date`, `Q.addDays`/`addMonths`/`addYears`, `Q.year`), `Q.substring` (Q22) and
 * `Q.let` for a value used twice (Q11's total, Q15's revenue view). Each mirrors the official
 * SQL's structure (and DSH's dsh-tpc-h comprehensions): a join comprehension yielding the values
 * to aggregate, grouped by the official GROUP BY key. No workarounds: every construct the
 * official text uses is written with its DSL counterpart.
 *
 * The module takes the library as an argument (`Lib`), so the benchmark builds the queries with
 * the BUILT package (`dist/`), while the types come from `src/`.
 */
import * as t from 'io-ts'
import type { AnyQuery, ExprLike } from '../../src/index.js'

export type Lib = typeof import('../../src/index.js')

/** The codecs of date and decimal columns. */
export interface Codecs<D extends t.Mixed, N extends t.Mixed> {
  readonly date: D
  readonly decimal: N
}

/** Dates with the library's date codec (`date` on PostgreSQL, ISO text on SQLite), decimals as numbers (REAL/numeric read as doubles, as the official SQL's answers are compared). */
export const tpchCodecs = (lib: Lib) => ({ date: lib.DateString, decimal: t.number }) as const

/** The eight tables declared with the DSL (TPC-H column names, composite keys for partsupp and lineitem). */
export function tpchTables<D extends t.Mixed, N extends t.Mixed>(lib: Lib, c: Codecs<D, N>) {
  const { table } = lib
  return {
    region: table('region', { r_regionkey: t.Int, r_name: t.string, r_comment: t.string }, { key: 'r_regionkey' }),
    nation: table('nation', { n_nationkey: t.Int, n_name: t.string, n_regionkey: t.Int, n_comment: t.string }, { key: 'n_nationkey' }),
    supplier: table(
      'supplier',
      { s_suppkey: t.Int, s_name: t.string, s_address: t.string, s_nationkey: t.Int, s_phone: t.string, s_acctbal: c.decimal, s_comment: t.string },
      { key: 's_suppkey' },
    ),
    part: table(
      'part',
      {
        p_partkey: t.Int, p_name: t.string, p_mfgr: t.string, p_brand: t.string, p_type: t.string, p_size: t.Int, p_container: t.string,
        p_retailprice: c.decimal, p_comment: t.string,
      },
      { key: 'p_partkey' },
    ),
    partsupp: table(
      'partsupp',
      { ps_partkey: t.Int, ps_suppkey: t.Int, ps_availqty: t.Int, ps_supplycost: c.decimal, ps_comment: t.string },
      { key: ['ps_partkey', 'ps_suppkey'] },
    ),
    customer: table(
      'customer',
      {
        c_custkey: t.Int, c_name: t.string, c_address: t.string, c_nationkey: t.Int, c_phone: t.string, c_acctbal: c.decimal,
        c_mktsegment: t.string, c_comment: t.string,
      },
      { key: 'c_custkey' },
    ),
    orders: table(
      'orders',
      {
        o_orderkey: t.Int, o_custkey: t.Int, o_orderstatus: t.string, o_totalprice: c.decimal, o_orderdate: c.date,
        o_orderpriority: t.string, o_clerk: t.string, o_shippriority: t.Int, o_comment: t.string,
      },
      { key: 'o_orderkey' },
    ),
    lineitem: table(
      'lineitem',
      {
        l_orderkey: t.Int, l_partkey: t.Int, l_suppkey: t.Int, l_linenumber: t.Int, l_quantity: c.decimal, l_extendedprice: c.decimal,
        l_discount: c.decimal, l_tax: c.decimal, l_returnflag: t.string, l_linestatus: t.string, l_shipdate: c.date,
        l_commitdate: c.date, l_receiptdate: c.date, l_shipinstruct: t.string, l_shipmode: t.string, l_comment: t.string,
      },
      { key: ['l_orderkey', 'l_linenumber'] },
    ),
  }
}

export type TpchTables = ReturnType<typeof tpchTables<Lib['DateString'], typeof t.number>>

/** One query's builder: a fresh query object per call. */
export type TpchQuery = () => AnyQuery

/** The 22 formulations, by query name (`Q1`..`Q22`). `sf` sets Q11's fraction. */
export function tpchQueries(lib: Lib, T: TpchTables, sf = 0.01): Record<string, TpchQuery> {
  const { Q } = lib
  const { region, nation, supplier, part, partsupp, customer, orders, lineitem } = T
  type E<A> = ExprLike<A>
  const between = (x: E<number | string>, lo: E<number | string>, hi: E<number | string>) => Q.and(Q.ge(x, lo), Q.le(x, hi))
  const disc = (l: { l_extendedprice: E<number>; l_discount: E<number> }) => Q.mul(l.l_extendedprice, Q.sub(1, l.l_discount))
  const d = (iso: string) => Q.date(iso)

  function q1(): AnyQuery {
    return Q.for(
      Q.groupBy(
        Q.for(lineitem, (l) => Q.where(Q.le(l.l_shipdate, Q.addDays(d('1998-12-01'), -90)), Q.yield(l))),
        (l) => ({ flag: l.l_returnflag, status: l.l_linestatus }),
      ),
      (g) => Q.yield({
        l_returnflag: g.key.flag,
        l_linestatus: g.key.status,
        sum_qty: Q.sum(g.group, (l) => l.l_quantity),
        sum_base_price: Q.sum(g.group, (l) => l.l_extendedprice),
        sum_disc_price: Q.sum(g.group, (l) => disc(l)),
        sum_charge: Q.sum(g.group, (l) => Q.mul(disc(l), Q.add(1, l.l_tax))),
        avg_qty: Q.avg(g.group, (l) => l.l_quantity),
        avg_price: Q.avg(g.group, (l) => l.l_extendedprice),
        avg_disc: Q.avg(g.group, (l) => l.l_discount),
        count_order: Q.count(g.group),
      }),
    ).orderBy((r) => [r.l_returnflag, r.l_linestatus])
  }

  function q2(): AnyQuery {
    const minCost = (partkey: E<number>) =>
      Q.min(
        Q.for(partsupp, (ps) => Q.for(supplier, (s) => Q.for(nation, (n) => Q.for(region, (r) =>
          Q.where(
            Q.and(Q.eq(partkey, ps.ps_partkey), Q.eq(s.s_suppkey, ps.ps_suppkey), Q.eq(s.s_nationkey, n.n_nationkey),
              Q.eq(n.n_regionkey, r.r_regionkey), Q.eq(r.r_name, 'EUROPE')),
            Q.yield(ps.ps_supplycost)))))))
    return Q.for(part, (p) => Q.for(supplier, (s) => Q.for(partsupp, (ps) => Q.for(nation, (n) => Q.for(region, (r) =>
      Q.where(
        Q.and(Q.eq(p.p_partkey, ps.ps_partkey), Q.eq(s.s_suppkey, ps.ps_suppkey), Q.eq(p.p_size, 15), Q.like(p.p_type, '%BRASS'),
          Q.eq(s.s_nationkey, n.n_nationkey), Q.eq(n.n_regionkey, r.r_regionkey), Q.eq(r.r_name, 'EUROPE'),
          Q.eq(ps.ps_supplycost, minCost(p.p_partkey))),
        Q.yield({
          s_acctbal: s.s_acctbal, s_name: s.s_name, n_name: n.n_name, p_partkey: p.p_partkey, p_mfgr: p.p_mfgr,
          s_address: s.s_address, s_phone: s.s_phone, s_comment: s.s_comment,
        }))))))).orderBy((r) => [Q.desc(r.s_acctbal), r.n_name, r.s_name, r.p_partkey]).limit(100)
  }

  function q3(): AnyQuery {
    const rows = Q.for(customer, (c) => Q.for(orders, (o) => Q.for(lineitem, (l) => Q.where(
      Q.and(Q.eq(c.c_mktsegment, 'BUILDING'), Q.eq(c.c_custkey, o.o_custkey), Q.eq(l.l_orderkey, o.o_orderkey),
        Q.lt(o.o_orderdate, d('1995-03-15')), Q.gt(l.l_shipdate, d('1995-03-15'))),
      Q.yield({ orderkey: l.l_orderkey, orderdate: o.o_orderdate, shippriority: o.o_shippriority, volume: disc(l) })))))
    return Q.for(Q.groupBy(rows, (r) => ({ orderkey: r.orderkey, orderdate: r.orderdate, shippriority: r.shippriority })), (g) =>
      Q.yield({ l_orderkey: g.key.orderkey, revenue: Q.sum(g.group, (r) => r.volume), o_orderdate: g.key.orderdate, o_shippriority: g.key.shippriority }))
      .orderBy((r) => [Q.desc(r.revenue), r.o_orderdate]).limit(10)
  }

  function q4(): AnyQuery {
    const late = Q.for(orders, (o) => Q.where(
      Q.and(Q.ge(o.o_orderdate, d('1993-07-01')), Q.lt(o.o_orderdate, Q.addMonths(d('1993-07-01'), 3)),
        Q.exists(Q.for(lineitem, (l) => Q.where(Q.and(Q.eq(l.l_orderkey, o.o_orderkey), Q.lt(l.l_commitdate, l.l_receiptdate)), Q.yield(l))))),
      Q.yield(o)))
    return Q.for(Q.groupBy(late, (o) => o.o_orderpriority), (g) => Q.yield({ o_orderpriority: g.key, order_count: Q.count(g.group) }))
      .orderBy((r) => r.o_orderpriority)
  }

  function q5(): AnyQuery {
    const rows = Q.for(customer, (c) => Q.for(orders, (o) => Q.for(lineitem, (l) => Q.for(supplier, (s) => Q.for(nation, (n) => Q.for(region, (r) => Q.where(
      Q.and(Q.eq(c.c_custkey, o.o_custkey), Q.eq(l.l_orderkey, o.o_orderkey), Q.eq(l.l_suppkey, s.s_suppkey), Q.eq(c.c_nationkey, s.s_nationkey),
        Q.eq(s.s_nationkey, n.n_nationkey), Q.eq(n.n_regionkey, r.r_regionkey), Q.eq(r.r_name, 'ASIA'),
        Q.ge(o.o_orderdate, d('1994-01-01')), Q.lt(o.o_orderdate, Q.addYears(d('1994-01-01'), 1))),
      Q.yield({ n_name: n.n_name, volume: disc(l) }))))))))
    return Q.for(Q.groupBy(rows, (r) => r.n_name), (g) => Q.yield({ n_name: g.key, revenue: Q.sum(g.group, (r) => r.volume) }))
      .orderBy((r) => Q.desc(r.revenue))
  }

  function q6(): AnyQuery {
    return Q.yield({
      revenue: Q.sum(Q.for(lineitem, (l) => Q.where(
        Q.and(Q.ge(l.l_shipdate, d('1994-01-01')), Q.lt(l.l_shipdate, Q.addYears(d('1994-01-01'), 1)),
          between(l.l_discount, 0.05, 0.07), Q.lt(l.l_quantity, 24)),
        Q.yield(Q.mul(l.l_extendedprice, l.l_discount))))),
    })
  }

  function q7(): AnyQuery {
    const shipping = Q.for(supplier, (s) => Q.for(lineitem, (l) => Q.for(orders, (o) => Q.for(customer, (c) => Q.for(nation, (n1) => Q.for(nation, (n2) => Q.where(
      Q.and(Q.eq(s.s_suppkey, l.l_suppkey), Q.eq(o.o_orderkey, l.l_orderkey), Q.eq(c.c_custkey, o.o_custkey),
        Q.eq(s.s_nationkey, n1.n_nationkey), Q.eq(c.c_nationkey, n2.n_nationkey),
        Q.or(Q.and(Q.eq(n1.n_name, 'FRANCE'), Q.eq(n2.n_name, 'GERMANY')), Q.and(Q.eq(n1.n_name, 'GERMANY'), Q.eq(n2.n_name, 'FRANCE'))),
        between(l.l_shipdate, d('1995-01-01'), d('1996-12-31'))),
      Q.yield({ supp_nation: n1.n_name, cust_nation: n2.n_name, l_year: Q.year(l.l_shipdate), volume: disc(l) }))))))))
    return Q.for(Q.groupBy(shipping, (r) => ({ supp_nation: r.supp_nation, cust_nation: r.cust_nation, l_year: r.l_year })), (g) =>
      Q.yield({ supp_nation: g.key.supp_nation, cust_nation: g.key.cust_nation, l_year: g.key.l_year, revenue: Q.sum(g.group, (r) => r.volume) }))
      .orderBy((r) => [r.supp_nation, r.cust_nation, r.l_year])
  }

  function q8(): AnyQuery {
    const allNations = Q.for(part, (p) => Q.for(supplier, (s) => Q.for(lineitem, (l) => Q.for(orders, (o) => Q.for(customer, (c) =>
      Q.for(nation, (n1) => Q.for(nation, (n2) => Q.for(region, (r) => Q.where(
        Q.and(Q.eq(p.p_partkey, l.l_partkey), Q.eq(s.s_suppkey, l.l_suppkey), Q.eq(l.l_orderkey, o.o_orderkey), Q.eq(o.o_custkey, c.c_custkey),
          Q.eq(c.c_nationkey, n1.n_nationkey), Q.eq(n1.n_regionkey, r.r_regionkey), Q.eq(r.r_name, 'AMERICA'), Q.eq(s.s_nationkey, n2.n_nationkey),
          between(o.o_orderdate, d('1995-01-01'), d('1996-12-31')), Q.eq(p.p_type, 'ECONOMY ANODIZED STEEL')),
        Q.yield({ o_year: Q.year(o.o_orderdate), volume: disc(l), nation: n2.n_name }))))))))))
    return Q.for(Q.groupBy(allNations, (r) => r.o_year), (g) => Q.yield({
      o_year: g.key,
      mkt_share: Q.div(Q.sum(g.group, (r) => Q.case([[Q.eq(r.nation, 'BRAZIL'), r.volume]], 0)), Q.sum(g.group, (r) => r.volume)),
    })).orderBy((r) => r.o_year)
  }

  function q9(): AnyQuery {
    const profit = Q.for(part, (p) => Q.for(supplier, (s) => Q.for(lineitem, (l) => Q.for(partsupp, (ps) => Q.for(orders, (o) => Q.for(nation, (n) => Q.where(
      Q.and(Q.eq(s.s_suppkey, l.l_suppkey), Q.eq(ps.ps_suppkey, l.l_suppkey), Q.eq(ps.ps_partkey, l.l_partkey), Q.eq(p.p_partkey, l.l_partkey),
        Q.eq(o.o_orderkey, l.l_orderkey), Q.eq(s.s_nationkey, n.n_nationkey), Q.like(p.p_name, '%green%')),
      Q.yield({ nation: n.n_name, o_year: Q.year(o.o_orderdate), amount: Q.sub(disc(l), Q.mul(ps.ps_supplycost, l.l_quantity)) }))))))))
    return Q.for(Q.groupBy(profit, (r) => ({ nation: r.nation, o_year: r.o_year })), (g) =>
      Q.yield({ nation: g.key.nation, o_year: g.key.o_year, sum_profit: Q.sum(g.group, (r) => r.amount) }))
      .orderBy((r) => [r.nation, Q.desc(r.o_year)])
  }

  function q10(): AnyQuery {
    const rows = Q.for(customer, (c) => Q.for(orders, (o) => Q.for(lineitem, (l) => Q.for(nation, (n) => Q.where(
      Q.and(Q.eq(c.c_custkey, o.o_custkey), Q.eq(l.l_orderkey, o.o_orderkey), Q.ge(o.o_orderdate, d('1993-10-01')),
        Q.lt(o.o_orderdate, Q.addMonths(d('1993-10-01'), 3)), Q.eq(l.l_returnflag, 'R'), Q.eq(c.c_nationkey, n.n_nationkey)),
      Q.yield({ c, n_name: n.n_name, volume: disc(l) }))))))
    return Q.for(Q.groupBy(rows, (r) => ({
      c_custkey: r.c.c_custkey, c_name: r.c.c_name, c_acctbal: r.c.c_acctbal, c_phone: r.c.c_phone, n_name: r.n_name, c_address: r.c.c_address, c_comment: r.c.c_comment,
    })), (g) => Q.yield({
      c_custkey: g.key.c_custkey, c_name: g.key.c_name, revenue: Q.sum(g.group, (r) => r.volume), c_acctbal: g.key.c_acctbal, n_name: g.key.n_name,
      c_address: g.key.c_address, c_phone: g.key.c_phone, c_comment: g.key.c_comment,
    })).orderBy((r) => Q.desc(r.revenue)).limit(20)
  }

  function q11(): AnyQuery {
    const german = Q.for(partsupp, (ps) => Q.for(supplier, (s) => Q.for(nation, (n) => Q.where(
      Q.and(Q.eq(ps.ps_suppkey, s.s_suppkey), Q.eq(s.s_nationkey, n.n_nationkey), Q.eq(n.n_name, 'GERMANY')),
      Q.yield({ ps_partkey: ps.ps_partkey, value: Q.mul(ps.ps_supplycost, ps.ps_availqty) })))))
    return Q.let(Q.sum(german, (r) => r.value), (total) =>
      Q.for(Q.groupBy(german, (r) => r.ps_partkey), (g) => Q.where(
        Q.gt(Q.sum(g.group, (r) => r.value), Q.mul(total, 0.0001 / sf)),
        Q.yield({ ps_partkey: g.key, value: Q.sum(g.group, (r) => r.value) }))))
      .orderBy((r) => Q.desc(r.value))
  }

  function q12(): AnyQuery {
    const rows = Q.for(orders, (o) => Q.for(lineitem, (l) => Q.where(
      Q.and(Q.eq(o.o_orderkey, l.l_orderkey), Q.in(l.l_shipmode, ['MAIL', 'SHIP']), Q.lt(l.l_commitdate, l.l_receiptdate),
        Q.lt(l.l_shipdate, l.l_commitdate), Q.ge(l.l_receiptdate, d('1994-01-01')), Q.lt(l.l_receiptdate, Q.addYears(d('1994-01-01'), 1))),
      Q.yield({ l_shipmode: l.l_shipmode, o_orderpriority: o.o_orderpriority }))))
    const high = (r: { o_orderpriority: E<string> }) => Q.or(Q.eq(r.o_orderpriority, '1-URGENT'), Q.eq(r.o_orderpriority, '2-HIGH'))
    return Q.for(Q.groupBy(rows, (r) => r.l_shipmode), (g) => Q.yield({
      l_shipmode: g.key,
      high_line_count: Q.sum(g.group, (r) => Q.case([[high(r), 1]], 0)),
      low_line_count: Q.sum(g.group, (r) => Q.case([[Q.not(high(r)), 1]], 0)),
    })).orderBy((r) => r.l_shipmode)
  }

  function q13(): AnyQuery {
    const cOrders = Q.for(customer, (c) => Q.yield({
      c_custkey: c.c_custkey,
      c_count: Q.count(Q.for(orders, (o) => Q.where(Q.and(Q.eq(o.o_custkey, c.c_custkey), Q.not(Q.like(o.o_comment, '%special%requests%'))), Q.yield(o.o_orderkey)))),
    }))
    return Q.for(Q.groupBy(cOrders, (r) => r.c_count), (g) => Q.yield({ c_count: g.key, custdist: Q.count(g.group) }))
      .orderBy((r) => [Q.desc(r.custdist), Q.desc(r.c_count)])
  }

  function q14(): AnyQuery {
    const rows = Q.for(lineitem, (l) => Q.for(part, (p) => Q.where(
      Q.and(Q.eq(l.l_partkey, p.p_partkey), Q.ge(l.l_shipdate, d('1995-09-01')), Q.lt(l.l_shipdate, Q.addMonths(d('1995-09-01'), 1))),
      Q.yield({ p_type: p.p_type, volume: disc(l) }))))
    return Q.yield({
      promo_revenue: Q.div(Q.mul(100.0, Q.sum(rows, (r) => Q.case([[Q.like(r.p_type, 'PROMO%'), r.volume]], 0))), Q.sum(rows, (r) => r.volume)),
    })
  }

  function q15(): AnyQuery {
    const revenue0 = Q.for(Q.groupBy(Q.for(lineitem, (l) => Q.where(
      Q.and(Q.ge(l.l_shipdate, d('1996-01-01')), Q.lt(l.l_shipdate, Q.addMonths(d('1996-01-01'), 3))), Q.yield(l))), (l) => l.l_suppkey), (g) =>
      Q.yield({ supplier_no: g.key, total_revenue: Q.sum(g.group, (l) => disc(l)) }))
    return Q.let(revenue0, (rev) => Q.for(supplier, (s) => Q.for(rev, (r) => Q.where(
      Q.and(Q.eq(s.s_suppkey, r.supplier_no), Q.eq(r.total_revenue, Q.max(rev, (x) => x.total_revenue))),
      Q.yield({ s_suppkey: s.s_suppkey, s_name: s.s_name, s_address: s.s_address, s_phone: s.s_phone, total_revenue: r.total_revenue })))))
      .orderBy((r) => r.s_suppkey)
  }

  function q16(): AnyQuery {
    const rows = Q.for(partsupp, (ps) => Q.for(part, (p) => Q.where(
      Q.and(Q.eq(p.p_partkey, ps.ps_partkey), Q.ne(p.p_brand, 'Brand#45'), Q.not(Q.like(p.p_type, 'MEDIUM POLISHED%')),
        Q.in(p.p_size, [49, 14, 23, 45, 19, 3, 36, 9]),
        Q.empty(Q.for(supplier, (s) => Q.where(Q.and(Q.eq(s.s_suppkey, ps.ps_suppkey), Q.like(s.s_comment, '%Customer%Complaints%')), Q.yield(s))))),
      Q.yield({ p_brand: p.p_brand, p_type: p.p_type, p_size: p.p_size, ps_suppkey: ps.ps_suppkey }))))
    return Q.for(Q.groupBy(rows, (r) => ({ p_brand: r.p_brand, p_type: r.p_type, p_size: r.p_size })), (g) => Q.yield({
      p_brand: g.key.p_brand, p_type: g.key.p_type, p_size: g.key.p_size,
      supplier_cnt: Q.count(Q.distinct(Q.for(g.group, (r) => Q.yield(r.ps_suppkey)))),
    })).orderBy((r) => [Q.desc(r.supplier_cnt), r.p_brand, r.p_type, r.p_size])
  }

  function q17(): AnyQuery {
    return Q.yield({
      avg_yearly: Q.div(Q.sum(Q.for(lineitem, (l) => Q.for(part, (p) => Q.where(
        Q.and(Q.eq(p.p_partkey, l.l_partkey), Q.eq(p.p_brand, 'Brand#23'), Q.eq(p.p_container, 'MED BOX'),
          Q.lt(l.l_quantity, Q.mul(0.2, Q.avg(Q.for(lineitem, (l2) => Q.where(Q.eq(l2.l_partkey, p.p_partkey), Q.yield(l2.l_quantity))))))),
        Q.yield(l.l_extendedprice))))), 7.0),
    })
  }

  function q18(): AnyQuery {
    const big = Q.for(Q.groupBy(lineitem, (l) => l.l_orderkey), (g) => Q.where(Q.gt(Q.sum(g.group, (l) => l.l_quantity), 300), Q.yield(g.key)))
    // `o_orderkey in (big)` as a generator over `big` (a join with the grouped subquery), as DSH
    // writes it; `Q.exists(Q.for(big, (k) => Q.where(Q.eq(k, o.o_orderkey), ...)))` is the literal
    // IN, but compiles (main after the wt/group merge) to a correlated EXISTS over the whole
    // grouping with the key test in HAVING, which SQLite evaluates per order (minutes at SF 0.01).
    const rows = Q.for(big, (k) => Q.for(customer, (c) => Q.for(orders, (o) => Q.for(lineitem, (l) => Q.where(
      Q.and(Q.eq(k, o.o_orderkey), Q.eq(c.c_custkey, o.o_custkey), Q.eq(o.o_orderkey, l.l_orderkey)),
      Q.yield({ c_name: c.c_name, c_custkey: c.c_custkey, o_orderkey: o.o_orderkey, o_orderdate: o.o_orderdate, o_totalprice: o.o_totalprice, l_quantity: l.l_quantity }))))))
    return Q.for(Q.groupBy(rows, (r) => ({ c_name: r.c_name, c_custkey: r.c_custkey, o_orderkey: r.o_orderkey, o_orderdate: r.o_orderdate, o_totalprice: r.o_totalprice })), (g) =>
      Q.yield({
        c_name: g.key.c_name, c_custkey: g.key.c_custkey, o_orderkey: g.key.o_orderkey, o_orderdate: g.key.o_orderdate, o_totalprice: g.key.o_totalprice,
        sum_qty: Q.sum(g.group, (r) => r.l_quantity),
      })).orderBy((r) => [Q.desc(r.o_totalprice), r.o_orderdate]).limit(100)
  }

  function q19(): AnyQuery {
    // As the official text: each branch of the OR repeats the join condition (rule `or-factor` takes it out).
    const branch = (
      l: { l_partkey: E<number>; l_quantity: E<number>; l_shipmode: E<string>; l_shipinstruct: E<string> },
      p: { p_partkey: E<number>; p_brand: E<string>; p_container: E<string>; p_size: E<number> },
      brand: string, containers: readonly string[], qty: number, size: number,
    ) => Q.and(Q.eq(p.p_partkey, l.l_partkey), Q.eq(p.p_brand, brand), Q.in(p.p_container, containers), Q.ge(l.l_quantity, qty), Q.le(l.l_quantity, qty + 10),
      between(p.p_size, 1, size), Q.in(l.l_shipmode, ['AIR', 'AIR REG']), Q.eq(l.l_shipinstruct, 'DELIVER IN PERSON'))
    return Q.yield({
      revenue: Q.sum(Q.for(lineitem, (l) => Q.for(part, (p) => Q.where(
        Q.or(
          branch(l, p, 'Brand#12', ['SM CASE', 'SM BOX', 'SM PACK', 'SM PKG'], 1, 5),
          branch(l, p, 'Brand#23', ['MED BAG', 'MED BOX', 'MED PKG', 'MED PACK'], 10, 10),
          branch(l, p, 'Brand#34', ['LG CASE', 'LG BOX', 'LG PACK', 'LG PKG'], 20, 15)),
        Q.yield(disc(l)))))),
    })
  }

  function q20(): AnyQuery {
    return Q.for(supplier, (s) => Q.for(nation, (n) => Q.where(
      Q.and(Q.eq(s.s_nationkey, n.n_nationkey), Q.eq(n.n_name, 'CANADA'),
        Q.exists(Q.for(partsupp, (ps) => Q.where(
          Q.and(Q.eq(ps.ps_suppkey, s.s_suppkey),
            Q.exists(Q.for(part, (p) => Q.where(Q.and(Q.eq(p.p_partkey, ps.ps_partkey), Q.like(p.p_name, 'forest%')), Q.yield(p)))),
            Q.gt(ps.ps_availqty, Q.mul(0.5, Q.sum(Q.for(lineitem, (l) => Q.where(
              Q.and(Q.eq(l.l_partkey, ps.ps_partkey), Q.eq(l.l_suppkey, ps.ps_suppkey), Q.ge(l.l_shipdate, d('1994-01-01')),
                Q.lt(l.l_shipdate, Q.addYears(d('1994-01-01'), 1))),
              Q.yield(l.l_quantity))))))),
          Q.yield(ps))))),
      Q.yield({ s_name: s.s_name, s_address: s.s_address })))).orderBy((r) => r.s_name)
  }

  function q21(): AnyQuery {
    const rows = Q.for(supplier, (s) => Q.for(lineitem, (l1) => Q.for(orders, (o) => Q.for(nation, (n) => Q.where(
      Q.and(Q.eq(s.s_suppkey, l1.l_suppkey), Q.eq(o.o_orderkey, l1.l_orderkey), Q.eq(o.o_orderstatus, 'F'), Q.gt(l1.l_receiptdate, l1.l_commitdate),
        Q.exists(Q.for(lineitem, (l2) => Q.where(Q.and(Q.eq(l2.l_orderkey, l1.l_orderkey), Q.ne(l2.l_suppkey, l1.l_suppkey)), Q.yield(l2)))),
        Q.empty(Q.for(lineitem, (l3) => Q.where(
          Q.and(Q.eq(l3.l_orderkey, l1.l_orderkey), Q.ne(l3.l_suppkey, l1.l_suppkey), Q.gt(l3.l_receiptdate, l3.l_commitdate)), Q.yield(l3)))),
        Q.eq(s.s_nationkey, n.n_nationkey), Q.eq(n.n_name, 'SAUDI ARABIA')),
      Q.yield({ s_name: s.s_name }))))))
    return Q.for(Q.groupBy(rows, (r) => r.s_name), (g) => Q.yield({ s_name: g.key, numwait: Q.count(g.group) }))
      .orderBy((r) => [Q.desc(r.numwait), r.s_name]).limit(100)
  }

  function q22(): AnyQuery {
    const codes = ['13', '31', '23', '29', '30', '18', '17']
    const code = (c: { c_phone: E<string> }) => Q.substring(c.c_phone, 1, 2)
    const avgBal = Q.avg(Q.for(customer, (c) => Q.where(Q.and(Q.gt(c.c_acctbal, 0.0), Q.in(code(c), codes)), Q.yield(c.c_acctbal))))
    const custsale = Q.for(customer, (c) => Q.where(
      Q.and(Q.in(code(c), codes), Q.gt(c.c_acctbal, avgBal), Q.empty(Q.for(orders, (o) => Q.where(Q.eq(o.o_custkey, c.c_custkey), Q.yield(o))))),
      Q.yield({ cntrycode: code(c), c_acctbal: c.c_acctbal })))
    return Q.for(Q.groupBy(custsale, (r) => r.cntrycode), (g) =>
      Q.yield({ cntrycode: g.key, numcust: Q.count(g.group), totacctbal: Q.sum(g.group, (r) => r.c_acctbal) }))
      .orderBy((r) => r.cntrycode)
  }

  return {
    Q1: q1, Q2: q2, Q3: q3, Q4: q4, Q5: q5, Q6: q6, Q7: q7, Q8: q8, Q9: q9, Q10: q10, Q11: q11,
    Q12: q12, Q13: q13, Q14: q14, Q15: q15, Q16: q16, Q17: q17, Q18: q18, Q19: q19, Q20: q20, Q21: q21, Q22: q22,
  }
}
