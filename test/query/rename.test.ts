/**
 * Alias renaming (normal.ts) allocates only along the paths that change: a part that mentions
 * no renamed alias is the same object after renaming (`freshen` renames every use of a group's
 * rows; copying the parts that do not change was a visible share of compiling TPC-H Q1).
 */
import { expect, test } from 'vitest'
import { renameBranch, renameValue, RowRecord, type Branch, type NExpr, type NValue } from '../../src/query/normal.js'
import type { ColumnDef, TableDef } from '../../src/query/schema.js'

const int = { kind: 'int', nullable: false } as const
const colDef: ColumnDef = { name: 'x', codec: undefined as unknown as ColumnDef['codec'], type: int }
const tbl: TableDef = { name: 't', columns: [colDef], byName: new Map([['x', colDef]]), key: undefined, lineage: false, storedLineage: undefined }
const col = (alias: string): NExpr => ({ k: 'col', alias, table: tbl, col: colDef, type: int })
const add = (...args: NExpr[]): NExpr => ({ k: 'op', op: 'add', args, type: int })

test('renaming keeps every part that mentions no renamed alias, and renames the rest', () => {
  const map = new Map([['a0', 'a9']])
  const outer = add(col('o1'), { k: 'const', value: 1, type: int })
  const inner = add(col('a0'), col('o1'))
  const v: NValue = { k: 'rec', fields: [['o', outer], ['i', inner]] }
  const r = renameValue(v, map) as Extract<NValue, { k: 'rec' }>
  expect(r).not.toBe(v)
  expect(r.fields[0]).toBe(v.fields[0])
  expect((r.fields[1]![1] as Extract<NExpr, { k: 'op' }>).args[0]).toEqual(col('a9'))
  expect((r.fields[1]![1] as Extract<NExpr, { k: 'op' }>).args[1]).toBe((inner as Extract<NExpr, { k: 'op' }>).args[1])
  expect(renameValue(v, new Map([['zz', 'y']]))).toBe(v)

  const own = add(col('a0'), col('o1'))
  const b: Branch = { gens: [{ alias: 'a0', table: tbl }], conds: [outer, own], value: v, grp: { id: 0, alias: 'g0', src: 0, own: new Set([own]) } }
  const rb = renameBranch(b, map)
  expect(rb.gens[0]!.alias).toBe('a9')
  expect(rb.conds[0]).toBe(outer)
  expect(rb.grp!.own.has(rb.conds[1]!)).toBe(true)
  expect(rb.grp!.own.has(outer)).toBe(false)
  expect(renameBranch(b, new Map([['zz', 'y']]))).toBe(b)
})

test("a table row's record builds each column expression once, on first read, and renames to a record of the new alias", () => {
  const yDef: ColumnDef = { name: 'y', codec: colDef.codec, type: int }
  const two: TableDef = { ...tbl, columns: [colDef, yDef], byName: new Map([['x', colDef], ['y', yDef]]) }
  const row = new RowRecord('a0', two)
  const y = row.field('y')
  expect(y).toEqual({ k: 'col', alias: 'a0', table: two, col: yDef, type: int })
  expect(row.field('y')).toBe(y)
  expect(row.field('nope')).toBeUndefined()
  // The fields, in column order, are the same objects the reads gave.
  expect(row.fields.map(([n]) => n)).toEqual(['x', 'y'])
  expect(row.fields[1]![1]).toBe(y)
  expect(row.fields).toBe(row.fields)
  expect(row.table).toBe(two)
  // A spread copies no field of the row (the record's parts are accessors).
  expect(Object.keys({ ...row })).toEqual(['k'])

  const renamed = renameValue(row, new Map([['a0', 'a9']])) as RowRecord
  expect(renamed).toBeInstanceOf(RowRecord)
  expect(renamed.alias).toBe('a9')
  expect(renamed.fields).toEqual([['x', { k: 'col', alias: 'a9', table: two, col: colDef, type: int }], ['y', { ...(y as object), alias: 'a9' }]])
  expect(renameValue(row, new Map([['zz', 'y']]))).toBe(row)
})
