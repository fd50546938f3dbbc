/**
 * Error messages a new user meets (issue 9, "small ones"): they name the mistake in plain
 * words, never a dumped codec or a JSON `null` for NaN.
 */
import * as t from 'io-ts'
import { describe, expect, it } from 'vitest'
import { createTable, LineageQueryError, openStore, Q, table } from '../src/index.js'
import { eachDialect } from './support/db.js'

const items = table('items', { id: t.Int, name: t.string })

function caught(f: () => unknown): LineageQueryError {
  try {
    f()
  } catch (e) {
    expect(e).toBeInstanceOf(LineageQueryError)
    return e as LineageQueryError
  }
  throw new Error('expected a LineageQueryError')
}

describe('limit with a non-number', () => {
  it('.limit(NaN) says NaN, not null', () => {
    const q = Q.for(items, (i) => Q.yield(i.name))
    expect(caught(() => q.limit(NaN)).message).toBe('Q.limit: limit must be a non-negative integer, got NaN')
    expect(caught(() => q.limit(5, Infinity)).message).toBe('Q.limit: offset must be a non-negative integer, got Infinity')
    expect(caught(() => q.limit(-Infinity)).message).toContain('got -Infinity')
  })
})

eachDialect('store.affected on a table that is not tracked', (get) => {
  it('names the table, as store.revision does, without dumping its codecs', async () => {
    const { db } = get()
    await createTable(db, items)
    const store = await openStore(db)
    const e = await store.affected(items, 1).then(() => undefined, (x: unknown) => x)
    expect(e).toBeInstanceOf(LineageQueryError)
    expect((e as LineageQueryError).code).toBe('argument')
    expect((e as LineageQueryError).message).toBe('store.affected expects a tracked root table, got `items`, which is not tracked; tracked: (none)')
    const r = await store.revision(items, 1).then(() => undefined, (x: unknown) => x)
    expect((r as LineageQueryError).message).toBe('store.revision: `items` is not a tracked root table')
  })
})

describe('schema-qualified table names', () => {
  it('table("public.users", ...) is rejected with a message saying how to reach another schema', () => {
    const e = caught(() => table('public.users', { id: t.Int }))
    expect(e.code).toBe('schema')
    expect(e.message).toBe(
      'table name must be an identifier (letters, digits, _), got "public.users"; schema-qualified names are not supported: name the table alone and put its schema on the connection\'s search_path (PostgreSQL)',
    )
  })
})
