/**
 * The TPC-H benchmark's own pieces (bench/tpch/): the generator keeps the specification's
 * derivations and is reproducible, and on SQLite every DSL formulation of bench/tpch/queries.ts
 * returns the official SQL's answer (the benchmark checks the same on PostgreSQL, and official
 * SQLite answers against official PostgreSQL answers, on every run).
 */
import Database from 'better-sqlite3'
import { CompiledQuery, Kysely, SqliteDialect } from 'kysely'
import { beforeAll, describe, expect, it } from 'vitest'
import * as lib from '../../src/index.js'
import { compareAnswers, normalise } from '../../bench/tpch/answers.js'
import { generate, type TpchData } from '../../bench/tpch/generate.js'
import { loadSqlite } from '../../bench/tpch/load.js'
import { officialQueries } from '../../bench/tpch/official.js'
import { tpchCodecs, tpchQueries, tpchTables } from '../../bench/tpch/queries.js'

const day = (iso: string) => Date.parse(`${iso}T00:00:00Z`) / 86_400_000

let data: TpchData
beforeAll(() => {
  data = generate(0.01, 7)
})

describe('TPC-H generator', () => {
  it('has the SF 0.01 cardinalities and is reproducible from its seed', () => {
    expect([data.region.length, data.nation.length, data.supplier.length, data.part.length, data.partsupp.length, data.customer.length, data.orders.length])
      .toEqual([5, 25, 100, 2000, 8000, 1500, 15000])
    expect(data.lineitem.length).toBeGreaterThan(15000 * 3.5)
    expect(data.lineitem.length).toBeLessThan(15000 * 4.5)
    expect(JSON.stringify(generate(0.01, 7).lineitem.slice(0, 50))).toBe(JSON.stringify(data.lineitem.slice(0, 50)))
  })

  it('derives line dates, flags and prices as the specification says', () => {
    const orderOf = new Map(data.orders.map((o) => [o.o_orderkey, o]))
    const partOf = new Map(data.part.map((p) => [p.p_partkey, p]))
    const cutoff = day('1995-06-17')
    for (const l of data.lineitem) {
      const o = orderOf.get(l.l_orderkey)!
      const ship = day(l.l_shipdate) - day(o.o_orderdate)
      const commit = day(l.l_commitdate) - day(o.o_orderdate)
      const receipt = day(l.l_receiptdate) - day(l.l_shipdate)
      expect(ship >= 1 && ship <= 121 && commit >= 30 && commit <= 90 && receipt >= 1 && receipt <= 30).toBe(true)
      expect(l.l_linestatus).toBe(day(l.l_shipdate) > cutoff ? 'O' : 'F')
      expect(day(l.l_receiptdate) <= cutoff ? ['R', 'A'] : ['N']).toContain(l.l_returnflag)
      expect(Math.round(l.l_extendedprice * 100)).toBe(Math.round(l.l_quantity * partOf.get(l.l_partkey)!.p_retailprice * 100))
      expect(l.l_discount >= 0 && l.l_discount <= 0.1 && l.l_tax >= 0 && l.l_tax <= 0.08).toBe(true)
    }
    for (const o of data.orders) {
      expect(o.o_custkey % 3).not.toBe(0)
      expect(o.o_orderdate >= '1992-01-01' && o.o_orderdate <= '1998-08-02').toBe(true)
    }
    const p = data.part[122]!
    expect(p.p_retailprice).toBe((90000 + (Math.floor(p.p_partkey / 10) % 20001) + 100 * (p.p_partkey % 1000)) / 100)
    for (const c of data.customer) expect(c.c_phone.startsWith(`${c.c_nationkey + 10}-`)).toBe(true)
  })

  it('gives each part four distinct suppliers, and lines a supplier of their part', () => {
    const supps = new Map<number, Set<number>>()
    for (const ps of data.partsupp) (supps.get(ps.ps_partkey) ?? supps.set(ps.ps_partkey, new Set()).get(ps.ps_partkey)!).add(ps.ps_suppkey)
    for (const s of supps.values()) expect(s.size).toBe(4)
    for (const l of data.lineitem) expect(supps.get(l.l_partkey)!.has(l.l_suppkey)).toBe(true)
  })

  it('plants the comments Q13 and Q16 look for', () => {
    expect(data.supplier.filter((s) => /Customer.*Complaints/.test(s.s_comment)).length).toBe(1)
    const special = data.orders.filter((o) => /special.*requests/.test(o.o_comment)).length
    expect(special).toBeGreaterThan(50)
  })
})

describe('TPC-H on SQLite: the DSL formulations against the official SQL', () => {
  const raw = new Database(':memory:')
  const db = new Kysely<any>({ dialect: new SqliteDialect({ database: raw }) })
  beforeAll(() => loadSqlite(raw, data))
  const official = officialQueries(0.01)
  const dsl = tpchQueries(lib, tpchTables(lib, tpchCodecs(lib)), 0.01)

  for (const off of official) {
    it(`${off.name}: same answer as the official SQL, in one statement`, async () => {
      const rows = (await db.executeQuery(CompiledQuery.raw(off.sql('sqlite')))).rows
      const cols = rows.length > 0 ? Object.keys(rows[0] as object) : undefined
      const build = dsl[off.name]
      expect(build).toBeDefined()
      const q = build!()
      expect(lib.compile(q, 'sqlite').statements).toHaveLength(1)
      const got = await lib.run(db, q)
      const check = compareAnswers(normalise(rows, cols), normalise(got, cols), off.ordered)
      expect(check.detail).toBe('')
      expect(check.equal).toBe(true)
    })
  }
})
