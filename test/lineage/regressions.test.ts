/**
 * Lineage regression tests: failures the lineage property tests found (seed noted), kept as
 * fixed cases on both dialects against the oracle. Each names the behaviour it pins.
 */
import * as t from 'io-ts'
import { expect, test } from 'vitest'
import { AST, DateString, lineage, Q, table, type AnyQuery } from '../../src/index.js'
import { evaluate, evaluateLineage } from '../oracle/evaluate.js'
import { compareBags } from '../support/bags.js'
import { eachDialect } from '../support/db.js'
import { runIn } from '../support/run-in.js'

eachDialect('lineage regressions', (get) => {
  test('a group over a union yields a lone boolean per element under lineage(q): the branch without it adds a boolean NULL, not a text one (FC_SEED=1221037925 FC_PATH=159, was PostgreSQL: "UNION types text and boolean cannot be matched")', async () => {
    const q = Q.for(Q.groupBy(Q.values([false, true]), () => 'k'), (g) =>
      Q.yield({ order: Q.for(g.group, (x) => Q.where(Q.coalesce(true, x), Q.yield(Q.add(0, -1)))), b: Q.for(g.group, (x) => Q.where(x, Q.yield(Q.in(false, [false])))) }))
    const [plain, annotated] = await runIn(get(), [], {}, [q, lineage(q)])
    expect(compareBags(plain!, evaluate(q[AST], {})).ok).toBe(true)
    const r = compareBags(annotated!, evaluateLineage(q[AST], {}))
    expect(r.ok, r.ok ? '' : r.message).toBe(true)
  })

  test('a group\'s nested collection of NULLs from a table without lineage, under lineage(q) (FC_SEED=1340065448 FC_PATH=444, was PostgreSQL: "could not determine polymorphic type")', async () => {
    const t_v = table('t_v', { id: t.Int, b: t.boolean, d: DateString }, { lineage: false })
    const data = { t_v: [{ id: 2, b: false, d: '1956-01-19' }, { id: -1, b: true, d: '2024-01-01' }, { id: 1, b: true, d: '2024-01-01' }] }
    const qs = [
      Q.for(Q.groupBy(t_v, (x) => ({ inner: Q.coalesce(x.d, x.d) })), (g) => Q.yield({ key: g.key, s: { n: Q.yield(1.5), k: g }, value: Q.for(g.group, (x) => Q.where(x.b, Q.yield(null))) })),
      Q.for(t_v, (x) => Q.yield({ id: x.id, nulls: Q.for(t_v, (y) => Q.where(y.b, Q.yield(null))), sorted: Q.orderBy(Q.for(t_v, () => Q.yield(null)), (r) => r) })),
    ] as AnyQuery[]
    for (const q of qs) {
      const [plain, annotated] = await runIn(get(), [t_v], data, [q, lineage(q)])
      expect(compareBags(plain!, evaluate(q[AST], data)).ok).toBe(true)
      const r = compareBags(annotated!, evaluateLineage(q[AST], data))
      expect(r.ok, r.ok ? '' : r.message).toBe(true)
    }
  })

  test('orderBy over an already ordered nested collection sorts by the new keys, then the old (FC_SEED=1544283736 FC_PATH=68)', async () => {
    const t_mbh = table('t_mbh', { id: t.Int, c_l1i9: t.boolean, c_gw78: t.string, c_otz: t.number }, { key: ['id', 'c_gw78'] })
    const data = {
      t_mbh: [
        { id: 3, c_l1i9: false, c_gw78: 'null', c_otz: 476464.25 },
        { id: 9, c_l1i9: true, c_gw78: 'null', c_otz: 6.75 },
        { id: 1641787089, c_l1i9: false, c_gw78: '9\nZ,', c_otz: 1000000 },
        { id: 429729639, c_l1i9: false, c_gw78: 'line\nx', c_otz: -999.75 },
      ],
    }
    const h0 = () => Q.for(Q.union(Q.union(Q.yield('\\'), Q.yield('10'))), (x2) => Q.for(t_mbh, (x3) => Q.yield(x3.id)))
    const q = Q.for(Q.for(t_mbh, (x0) => Q.where(x0.c_l1i9, Q.yield({ order: Q.orderBy(Q.let(Q.count(Q.for(t_mbh, (x1) => h0())), (x4) => Q.where(Q.eq('_', x0.c_gw78), Q.yield(x0.id))), (r) => [r]) }))), (x5) =>
      Q.where(Q.like(Q.concat('é', ' ', ' '), '%b'), Q.yield({ order: Q.for(x5.order, (x6) => Q.yield({ from: Q.yield(x5), from1: Q.where(Q.like('\\', ''), Q.yield(x5)), Ab: Q.mul(-3, x6) })), inner: Q.in(-1000.25, [2.5]), inner2: Q.orderBy(x5.order, (r) => [r]) })))
    // and a direct one with data: by the new key, ties in the old order
    const nums = Q.values([{ a: 1, b: 2 }, { a: 0, b: 1 }, { a: 1, b: 1 }])
    const twice = Q.yield({ xs: Q.orderBy(Q.orderBy(nums, (r) => Q.desc(r.b)), (r) => r.a) })
    const [plain, annotated, reordered] = await runIn(get(), [t_mbh], data, [q, lineage(q), twice])
    expect(compareBags(plain!, evaluate(q[AST], data)).ok).toBe(true)
    expect(compareBags(annotated!, evaluateLineage(q[AST], data)).ok).toBe(true)
    expect(reordered).toEqual([{ xs: [{ a: 0, b: 1 }, { a: 1, b: 2 }, { a: 1, b: 1 }] }])
  })

  test('a path to a nested collection with a shared let value, used twice in one branch, computes it under two names (FC_SEED=360448376 FC_PATH=434)', async () => {
    // PostgreSQL rejected the statement: table name "#s0" specified more than once
    const t_ky = table('t_ky', { id: t.Int, c_1d: t.union([t.Int, t.null]), c_g: t.boolean, c_zsm: t.union([t.number, t.null]) })
    const data = { t_ky: [{ id: 42, c_1d: 259405063, c_g: true, c_zsm: null }] }
    const q = Q.for(Q.for(t_ky, (x0) => Q.yield({ order: Q.let(Q.min(Q.where(Q.not(Q.like('\\', '\\_中')), Q.for(t_ky, (x1) => Q.yield('9')))), (x2) => Q.union(Q.yield(x0.id), Q.yield(x0.c_1d))) })), (x3) =>
      Q.yield({ order: x3, inner: Q.for(Q.for(x3.order, (x4) => Q.yield({ id: Q.yield("it's"), value: t_ky })), (x5) => Q.for(x5.value, (x6) => Q.for(x5.id, (x7) => Q.for(x3.order, (x8) => Q.yield('中文'))))) }))
    const [plain, annotated] = await runIn(get(), [t_ky], data, [q, lineage(q)])
    expect(compareBags(plain!, evaluate(q[AST], data)).ok).toBe(true)
    const r = compareBags(annotated!, evaluateLineage(q[AST], data))
    expect(r.ok, r.ok ? '' : r.message).toBe(true)
  })

  test('why-provenance: a witness list inside a witness list decodes on both dialects (PostgreSQL nests it as text) (FC_SEED=1544283736 FC_PATH=89)', async () => {
    const t_hf = table('t_hf', { id: t.Int, c_n3lu9: t.boolean, c_uy4Q: t.Int, c_a7rZt: t.union([t.boolean, t.null]), c_nxqq: t.number })
    const data = {
      t_hf: [
        { id: -1, c_n3lu9: true, c_uy4Q: -2147483648, c_a7rZt: null, c_nxqq: -3.75 },
        { id: -2, c_n3lu9: true, c_uy4Q: 42, c_a7rZt: false, c_nxqq: 3 },
        { id: 2, c_n3lu9: true, c_uy4Q: 1, c_a7rZt: true, c_nxqq: -999.75 },
      ],
    }
    const q = Q.for(Q.for(t_hf, (x0) => Q.yield({ id: { s: Q.yield(x0.c_uy4Q) }, inner: Q.orderBy(Q.union(Q.where(Q.exists(Q.for(Q.for(t_hf, (x1) => Q.yield(5)), (x2) => Q.where(Q.exists(Q.yield(x2)), Q.yield(x0)))), Q.yield(-42))), (r) => [r]), s: Q.like('abc', '') })), (x3) =>
      Q.for(x3.inner, (x4) => Q.for(t_hf, (x5) => Q.yield({ a: ["it's", '中文', 'a_c'], a1: Q.orderBy(x3.id.s, (r) => [r]), Ab: { s: x3.inner, Ab: Q.yield(x5.id) } }))))
    const [why] = await runIn(get(), [t_hf], data, [lineage(q, { why: true })])
    const r = compareBags(why!, evaluateLineage(q[AST], data, { why: true }))
    expect(r.ok, r.ok ? '' : r.message).toBe(true)
  })
  test('why-provenance: a witness query over a table without lineage adds nothing, inside a distinct nested collection (FC_SEED=234443444 FC_PATH=231, was SQLite: "misuse of aggregate: json_group_array()")', async () => {
    const t_n = table('t_n', { id: t.Int, b: t.union([t.boolean, t.null]) }, { lineage: false })
    const t_k = table('t_k', { id: t.Int, b: t.union([t.boolean, t.null]) })
    const data = { t_n: [{ id: 7, b: null }, { id: 2, b: false }, { id: -2, b: true }], t_k: [{ id: -2, b: true }, { id: 6, b: false }, { id: 7, b: null }] }
    const qs = [
      // witnesses from t_n only: the element's lineage is its own rows'
      Q.for(t_k, (x0) => Q.distinct(Q.where(Q.exists(Q.for(t_n, (x1) => Q.where(Q.eq(x0.id, x1.id), Q.yield({})))), Q.for(t_n, () => Q.yield(x0.b))))),
      // a witness union of a branch without lineage and one with it: the second's rows are named
      Q.for(t_k, (x0) => Q.distinct(Q.where(Q.exists(Q.union(Q.for(t_n, (x1) => Q.where(Q.eq(x0.id, x1.id), Q.yield(x1.id))), Q.for(t_k, (x1) => Q.where(Q.eq(x0.id, x1.id), Q.yield(x1.id))))), Q.for(t_n, () => Q.yield(x0.b))))),
    ] as AnyQuery[]
    for (const q of qs) {
      const [why] = await runIn(get(), [t_n, t_k], data, [lineage(q, { why: true })])
      const r = compareBags(why!, evaluateLineage(q[AST], data, { why: true }))
      expect(r.ok, r.ok ? '' : r.message).toBe(true)
    }
  })
})
