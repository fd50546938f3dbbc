/**
 * Behaviours of the lineage modules no test pinned before (found by mutation testing, see
 * docs/derived.md "Mutation testing"); no database.
 */
import { describe, expect, it } from 'vitest'
import { sourceRows } from '../../src/lineage/index.js'
import { conditionQueries } from '../../src/lineage/rewrite.js'
import type * as ast from '../../src/query/ast.js'

describe('lineage behaviours no test pinned', () => {
  it('a condition that is a variable or a record reads no query (why-provenance names no witness for it)', () => {
    const v: ast.Expr = { kind: 'var', v: { id: 1, hint: 'flag' } }
    expect(conditionQueries(v)).toEqual([])
    expect(conditionQueries({ kind: 'record', fields: [['a', v]] })).toEqual([])
  })

  it('sourceRows keeps the first of entries whose keys have one text, at the top and in nested collections', () => {
    const top = sourceRows<{ table: string; key: unknown }>([{ data: 1, lineage: [{ table: 'r', key: 0 }] }, { data: 2, lineage: [{ table: 'r', key: -0 }] }])
    expect(top).toHaveLength(1)
    expect(Object.is(top[0]!.key, 0)).toBe(true)
    const nested = sourceRows<{ table: string; key: unknown }>([{ data: { xs: [{ data: 1, lineage: [{ table: 's', key: -0 }] }, { data: 2, lineage: [{ table: 's', key: 0 }] }] }, lineage: [] }])
    expect(nested).toHaveLength(1)
    expect(Object.is(nested[0]!.key, -0)).toBe(true)
  })
})
