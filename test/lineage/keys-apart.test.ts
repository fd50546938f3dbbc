/**
 * Keys apart (`CollLayout.keysApart`): under lineage, a nested collection is one JSON value
 * `[data, keys]`: its elements' data exactly as the plain query sends them, and one flat array
 * with each element's keys (its only key, or its keys and then its branch number), in the same
 * order. The SQL it compiles to, per dialect; and the cases that must still give the oracle's
 * result on both dialects: data that reads only outer columns, unions (tagged keys), a position
 * where one enclosing branch has no nested branch, ordered collections (kept per element).
 */
import * as t from 'io-ts'
import { describe, expect, test } from 'vitest'
import { AST, lineage, Q, table, type AnyQuery } from '../../src/index.js'
import { evaluate, evaluateLineage } from '../oracle/evaluate.js'
import { compareBags } from '../support/bags.js'
import { eachDialect, type TestDb } from '../support/db.js'
import { data, departments, employees, tasks, tasksOf } from '../query/fixtures.js'
import { runIn } from '../support/run-in.js'
import { sqlByDialect } from '../support/sql.js'

const sql = sqlByDialect

describe('compile: a nested collection under lineage carries its keys apart', () => {
  test('the data aggregated as in the plain query, the keys as one array beside it, in one value [data, keys]', () => {
    const q = Q.for(employees, (e) => Q.yield({ e: e.name, b: tasksOf(e) }))
    expect(sql(lineage(q))).toEqual({
      sqlite: 'select "e0"."name" as "data.e", (select json_array(json_group_array("t1"."task"), json_group_array("t1"."id")) as "v" from "tasks" as "t1" where ("t1"."employee" = "e0"."name")) as "data.b", "e0"."id" as "#l0" from "employees" as "e0"',
      postgres: 'select "e0"."name" as "data.e", (select json_build_array(coalesce(json_agg("t1"."task"), json_build_array()), coalesce(json_agg("t1"."id"), json_build_array())) as "v" from "tasks" as "t1" where ("t1"."employee" = "e0"."name")) as "data.b", "e0"."id" as "#l0" from "employees" as "e0"',
    })
  })

  test('a union (elements with a branch number) keeps each element\'s keys and branch number inside the element', () => {
    const q = Q.for(departments, (d) => Q.yield({ d: d.name, xs: Q.union(Q.for(employees, (e) => Q.where(Q.eq(e.dept, d.name), Q.yield(e.name))), Q.for(tasks, (t) => Q.where(Q.eq(t.employee, d.name), Q.yield(t.task)))) }))
    const s = sql(lineage(q))
    expect(s.sqlite).toContain('(select json_group_array(json_array("u"."c0", "u"."c1", "u"."t")) as "v" from (')
    expect(s.postgres).toContain('(select coalesce(json_agg(json_build_array("u"."c0", "u"."c1", "u"."t")), json_build_array()) as "v" from (')
  })
})



async function agreesWithOracle(tdb: TestDb, tables: readonly ReturnType<typeof table<string, any>>[], rows: Record<string, Record<string, unknown>[]>, q: AnyQuery): Promise<void> {
  const [plain, annotated] = await runIn(tdb, tables, rows, [q, lineage(q)])
  expect(compareBags(plain!, evaluate(q[AST], rows)).ok).toBe(true)
  const r = compareBags(annotated!, evaluateLineage(q[AST], rows))
  expect(r.ok, r.ok ? '' : r.message).toBe(true)
}

eachDialect('lineage: keys apart', (get) => {
  const all = [departments, employees, tasks]

  test('a nested collection whose data reads only outer columns is aggregated over a derived table (FC_SEED=1036765947 FC_PATH=148: SQLite refused an aggregate over outer columns only, "misuse of aggregate", in a first version of keys apart)', async () => {
    const t_q = table('t_q', { id: t.Int, b: t.boolean })
    const rows = { t_q: [{ id: 9, b: true }, { id: -8, b: true }, { id: 1, b: false }] }
    const h0 = () => Q.for(t_q, () => Q.for(t_q, () => Q.yield('a')))
    const q = Q.for(t_q, (x0) => Q.yield({ v: Q.for(t_q, (x1) => Q.yield({ b: Q.for(h0(), () => Q.yield(x0.id)), s: x1.b })) }))
    await agreesWithOracle(get(), [t_q], rows, q)
  })

  test('nested collections at two depths, unions among them, give the oracle\'s lineage', async () => {
    const q = Q.for(departments, (d) =>
      Q.yield({
        d: d.name,
        emps: Q.for(employees, (e) => Q.where(Q.eq(e.dept, d.name), Q.yield({ n: e.name, ts: tasksOf(e) }))),
        xs: Q.union(Q.for(employees, (e) => Q.where(Q.eq(e.dept, d.name), Q.yield(e.name))), Q.for(tasks, (t) => Q.where(Q.eq(t.employee, d.name), Q.yield(t.task))), Q.yield('lit')),
      }),
    )
    await agreesWithOracle(get(), all, data, q)
  })

  test('a position where one enclosing branch has no nested branch reads as an empty collection', async () => {
    const q = Q.union(
      Q.for(departments, (d) => Q.yield({ d: d.name, xs: Q.for(employees, (e) => Q.where(Q.eq(e.dept, d.name), Q.yield(e.name))) })),
      Q.for(tasks, (t) => Q.yield({ d: t.task, xs: Q.where(false, Q.yield('never')) })),
    )
    await agreesWithOracle(get(), all, data, q)
  })

  test('an ordered and limited nested collection keeps its order with its keys', async () => {
    const q = Q.for(departments, (d) => Q.yield({ d: d.name, top: Q.limit(Q.orderBy(Q.for(employees, (e) => Q.where(Q.eq(e.dept, d.name), Q.yield({ n: e.name, s: e.salary }))), (r) => [Q.desc(r.s)]), 1) }))
    const [annotated] = await runIn(get(), all, data, [lineage(q)])
    const sales = (annotated as { data: { d: string; top: { data: unknown; lineage: unknown }[] } }[]).find((r) => r.data.d === 'Sales')!
    expect(JSON.parse(JSON.stringify(sales.data.top))).toEqual([{ data: { n: 'bert', s: 2000000 }, lineage: [{ table: 'employees', key: 2 }] }])
  })
})
