/**
 * The user-facing lineage functions (src/lineage/index.ts) without a database: what `lineage`
 * refuses, and how `sourceRows` and `groupBySource` read result rows (order, duplicates,
 * nested elements, malformed rows).
 */
import * as t from 'io-ts'
import { describe, expect, test } from 'vitest'
import { groupBySource, lineage, Q, sourceRows, table } from '../../src/index.js'
import { thrown } from '../support/errors.js'

const r = table('r', { id: t.Int, v: t.string })
const q = Q.for(r, (x) => Q.yield(x.v))


describe('lineage(q, options): argument checks', () => {
  test('something other than a query is an argument error that shows it', () => {
    for (const [bad, shown] of [[null, 'null'], [undefined, 'undefined'], [{}, '{}'], ['q', '"q"']] as const) {
      const e = thrown(() => lineage(bad as never))
      expect(e.code).toBe('argument')
      expect(e.message).toBe(`lineage expects a query, got ${shown}`)
    }
  })

  test('options must be an object of known boolean options; undefined values are allowed', () => {
    expect(thrown(() => lineage(q, 'x' as never)).message).toBe('lineage options must be an object, got "x"')
    expect(thrown(() => lineage(q, 'x' as never)).code).toBe('argument')
    expect(thrown(() => lineage(q, null as never)).message).toBe('lineage options must be an object, got null')
    const unknown = thrown(() => lineage(q, { compose: false } as never))
    expect(unknown.message).toBe('lineage: unknown option `compose`; expected one of composed, why')
    expect(unknown.details).toEqual({ option: 'compose' })
    const notBool = thrown(() => lineage(q, { why: 1 } as never))
    expect(notBool.code).toBe('argument')
    expect(notBool.message).toBe('lineage: option `why` must be a boolean, got 1')
    expect(notBool.details).toEqual({ option: 'why', value: 1 })
    expect(() => lineage(q, { composed: undefined, why: undefined } as never)).not.toThrow()
    expect(() => lineage(q, { composed: false, why: true })).not.toThrow()
  })
})

describe('sourceRows and groupBySource', () => {
  const a1 = { table: 'a', key: 1 }
  const b2 = { table: 'b', key: 2 }
  const c3 = { table: 'c', key: 3 }
  const d4 = { table: 'd', key: [4, 'x'] }

  test('sourceRows: each entry once, in first-seen order, a row before its nested elements, only table and key kept', () => {
    const rows = [
      { data: { xs: [{ data: 'n', lineage: [b2] }], deep: { ys: [{ data: { zs: [{ data: 0, lineage: [{ ...d4, extra: true }] }] }, lineage: [c3] }] } }, lineage: [{ ...a1, extra: 1 }] },
      { data: 0, lineage: [a1, c3] },
    ]
    expect(sourceRows(rows)).toStrictEqual([a1, b2, c3, d4])
    expect(sourceRows(rows, { nested: true })).toStrictEqual([a1, b2, c3, d4])
    expect(sourceRows(rows, { nested: false })).toStrictEqual([a1, c3])
    expect(sourceRows([])).toEqual([])
  })

  test('sourceRows: an object with a lineage list but no data is plain data, searched for annotated elements inside', () => {
    const rows = [{ data: { note: { lineage: [b2], inner: { data: 1, lineage: [c3] } } }, lineage: [a1] }]
    expect(sourceRows(rows)).toEqual([a1, c3])
    // A lineage that is not a list does not make an element either.
    expect(sourceRows([{ data: { x: { data: 1, lineage: 'no', y: { data: 2, lineage: [d4] } } }, lineage: [] }])).toEqual([d4])
    // Nested arrays of arrays are searched too.
    expect(sourceRows([{ data: [[{ data: 1, lineage: [b2] }]], lineage: [] }])).toEqual([b2])
    // NULL values (a nullable column, an empty aggregate) are plain data with nothing inside.
    expect(sourceRows([{ data: { x: null, xs: [null, { data: null, lineage: [c3] }] }, lineage: [a1] }])).toEqual([a1, c3])
  })

  test('groupBySource: one group per entry in first-seen order, a row with several entries in several groups', () => {
    const x = { data: 'x', lineage: [a1, b2] }
    const y = { data: 'y', lineage: [b2] }
    const z = { data: 'z', lineage: [] }
    const w = { data: 'w', lineage: [{ table: 'a', key: 1 }] }
    const groups = groupBySource([x, y, z, w])
    expect(groups).toEqual([
      { source: a1, rows: [x, w] },
      { source: b2, rows: [x, y] },
    ])
    expect(groups[0]!.rows[0]).toBe(x)
    expect(groupBySource([])).toEqual([])
  })

  test('rows that are not lineage results are an argument error naming the function and the expected form', () => {
    for (const [name, f] of [['sourceRows', sourceRows as (rows: never) => unknown], ['groupBySource', groupBySource as (rows: never) => unknown]] as const) {
      const notList = thrown(() => f({ data: 1, lineage: [] } as never))
      expect(notList.code).toBe('argument')
      expect(notList.message).toBe(`${name} expects the rows of run(db, lineage(q)), got {"data":1,"lineage":[]}`)
      for (const [row, shown] of [[null, 'null'], [1, '1'], [{ data: 1 }, '{"data":1}'], [{ lineage: [] }, '{"lineage":[]}'], [{ data: 1, lineage: 'a' }, '{"data":1,"lineage":"a"}']] as const) {
        const e = thrown(() => f([{ data: 0, lineage: [] }, row] as never))
        expect(e.code).toBe('argument')
        expect(e.message).toBe(`${name} expects rows of the form { data, lineage: [...] } (from run(db, lineage(q))), got ${shown}`)
      }
    }
  })
})
