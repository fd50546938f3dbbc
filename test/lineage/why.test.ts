/**
 * Why-provenance with derived tables: a witness row of a table with stored lineage reports the
 * rows it was derived from (composed, the default) or itself (`composed: false`), on both
 * dialects; and the oracle's definition on a fixed example.
 */
import * as t from 'io-ts'
import { beforeAll, expect, test } from 'vitest'
import { AST, createTable, insertRows, lineage, Q, plainLineage, run as runLazy, table } from '../../src/index.js'
import { compareBags } from '../support/bags.js'
import { evaluateLineage } from '../oracle/evaluate.js'
import { eachDialect } from '../support/db.js'

/** `run` with annotated elements copied to plain `{ data, lineage }` objects, so `toEqual` compares both fields (see docs/lineage.md, "Reading lineage"). */
const run: typeof runLazy = async (db, q) => plainLineage(await runLazy(db, q))

const agencies = table('agencies', { id: t.Int, name: t.string })
const summaries = table('summaries', { lq_key: t.string, text: t.string }, { key: 'lq_key', storedLineage: { column: 'lq_key', table: 'agencies' } })
const matches = table('matches', { lq_key: t.string, agency: t.Int }, { key: 'lq_key', storedLineage: { column: 'lq_key' } })
const data = {
  agencies: [{ id: 1, name: 'EdinTours' }, { id: 2, name: 'Burns' }],
  summaries: [{ lq_key: '1', text: 'Edinburgh tours' }],
  matches: [{ lq_key: '[["agencies",2],["externalTours",5]]', agency: 2 }],
}

eachDialect('why-provenance and stored lineage', (get) => {
  beforeAll(async () => {
    for (const tb of [agencies, summaries, matches]) await createTable(get().db, tb)
    await insertRows(get().db, agencies, data.agencies)
    await insertRows(get().db, summaries, data.summaries)
    await insertRows(get().db, matches, data.matches)
  })

  test('a derived witness row names the rows it came from, or itself with composed: false', async () => {
    const summarised = Q.for(agencies, (a) => Q.where(Q.exists(Q.for(summaries, (s) => Q.where(Q.eq(s.lq_key, '1'), Q.yield(s)))), Q.where(Q.eq(a.id, 2), Q.yield(a.name))))
    expect(await run(get().db, lineage(summarised, { why: true }))).toEqual([{ data: 'Burns', lineage: [{ table: 'agencies', key: 2 }, { table: 'agencies', key: 1 }] }])
    expect(await run(get().db, lineage(summarised, { why: true, composed: false }))).toEqual([{ data: 'Burns', lineage: [{ table: 'agencies', key: 2 }, { table: 'summaries', key: '1' }] }])
    const matched = Q.for(agencies, (a) => Q.where(Q.gt(Q.count(Q.for(matches, (m) => Q.where(Q.eq(m.agency, a.id), Q.yield(m)))), 0), Q.yield(a.name)))
    expect(await run(get().db, lineage(matched, { why: true }))).toEqual([{ data: 'Burns', lineage: [{ table: 'agencies', key: 2 }, { table: 'externalTours', key: 5 }] }])
  })

  test('a condition that reads Q.distinct or Q.groupBy: its witnesses are every row of every group (FC_SEED=2018899215 FC_PATH=13: a group\'s lineage was listed as entries of table "#g1")', async () => {
    const qs = [
      Q.for(agencies, (a) => Q.where(Q.gt(Q.count(Q.distinct(Q.for(agencies, (b) => Q.yield(b.name)))), 1), Q.yield(a.name))),
      Q.where(Q.exists(Q.for(Q.groupBy(agencies, (x) => ({ k: Q.add(x.id, x.id) })), (g) => Q.yield({ from: Q.count(g.group), k: g.key.k }))), Q.values([{ s: -42 }, { s: 42 }])),
      Q.for(agencies, (a) => Q.where(Q.exists(Q.for(Q.groupBy(agencies, (b) => b.name), (g) => Q.where(Q.eq(g.key, a.name), Q.yield(g.key)))), Q.yield(a.id))),
    ]
    for (const q of qs) {
      const rows = await run(get().db, lineage(q as any, { why: true }))
      const r = compareBags(rows, evaluateLineage(q[AST], { agencies: data.agencies }, { why: true }))
      expect(r.ok, r.ok ? '' : r.message).toBe(true)
      for (const row of rows as { lineage: { table: string }[] }[]) expect(row.lineage.every((e) => e.table === 'agencies')).toBe(true)
    }
  })

  test('the oracle agrees where no table has stored lineage', async () => {
    const q = Q.for(agencies, (a) => Q.where(Q.or(Q.exists(Q.for(agencies, (b) => Q.where(Q.lt(b.id, a.id), Q.yield(b)))), Q.eq(a.id, 1)), Q.yield(a.name)))
    const rows = await run(get().db, lineage(q, { why: true }))
    expect(rows).toEqual(evaluateLineage(q[AST], { agencies: data.agencies }, { why: true }))
    expect(rows).toEqual([
      { data: 'EdinTours', lineage: [{ table: 'agencies', key: 1 }] },
      { data: 'Burns', lineage: [{ table: 'agencies', key: 2 }, { table: 'agencies', key: 1 }] },
    ])
  })
})
