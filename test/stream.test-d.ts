import * as t from 'io-ts'
import type { Kysely } from 'kysely'
import { describe, expectTypeOf, test } from 'vitest'
import { lineage, Q, stream, table } from '../src/index.js'

const employees = table('employees', { id: t.Int, name: t.string, nick: t.union([t.string, t.null]) })
declare const db: Kysely<any>

describe('stream types', () => {
  test('yields the element type run returns, with lineage too', () => {
    expectTypeOf(stream(db, Q.for(employees, (e) => Q.yield({ n: e.name, k: e.nick })))).toEqualTypeOf<AsyncIterableIterator<{ n: string; k: string | null }>>()
    const q = lineage(Q.for(employees, (e) => Q.yield(e.name)))
    expectTypeOf(stream(db, q)).toEqualTypeOf<AsyncIterableIterator<{ data: string; lineage: { table: 'employees'; key: number }[] }>>()
  })
})
