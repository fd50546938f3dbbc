/**
 * stream(db, q): the rows run(db, q) returns, in the same order, read incrementally — flat,
 * with lineage, with nested collections — on SQLite (better-sqlite3 iterate) and PostgreSQL
 * (a pg-cursor; PGlite hands out its result in chunks). Memory is measured in
 * bench/stream-memory.ts, not here.
 */
import * as t from 'io-ts'
import { Kysely, PostgresDialect } from 'kysely'
import pg from 'pg'
import { beforeAll, expect, test } from 'vitest'
import { createTable, insertRows, lineage, LineageQueryError, Q, run, stream, table } from '../../src/index.js'
import { eachDialect, pgServerReachable, pgUrl } from '../support/db.js'
import { departments, data, employees, tasks, tasksOf } from './fixtures.js'

const numbers = table('numbers', { id: t.Int, label: t.string })

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = []
  for await (const x of it) out.push(x)
  return out
}

eachDialect('stream', (get) => {
  beforeAll(async () => {
    const { db } = get()
    for (const tb of [departments, employees, tasks, numbers]) await createTable(db, tb)
    await insertRows(db, departments, data.departments)
    await insertRows(db, employees, data.employees)
    await insertRows(db, tasks, data.tasks)
    await insertRows(db, numbers, Array.from({ length: 2500 }, (_, i) => ({ id: i + 1, label: `n${i + 1}` })))
  })

  test('a flat query streams the rows run returns, in order, across several chunks', async () => {
    const q = Q.for(numbers, (n) => Q.where(Q.gt(n.id, 10), Q.yield({ id: n.id, label: n.label }))).orderBy((r) => r.id)
    const all = await run(get().db, q)
    expect(all.length).toBe(2490)
    expect(await collect(stream(get().db, q, { chunkSize: 100 }))).toEqual(all)
    expect(await collect(stream(get().db, q))).toEqual(all)
  })

  test('lineage and nested collections stream row by row, decoded as run decodes them', async () => {
    const nested = Q.for(departments, (d) => Q.yield({ d: d.name, emps: Q.for(employees, (e) => Q.where(Q.eq(e.dept, d.name), Q.yield({ n: e.name, tasks: tasksOf(e) }))) })).orderBy((r) => r.d)
    expect(await collect(stream(get().db, nested))).toEqual(await run(get().db, nested))
    const annotated = lineage(nested)
    const rows = await collect(stream(get().db, annotated, { chunkSize: 1 }))
    expect(rows).toEqual(await run(get().db, annotated))
    expect(rows[0]!.lineage).toEqual([{ table: 'departments', key: expect.anything() }])
  })

  test('leaving the loop early releases the connection: the next query runs', async () => {
    const q = Q.for(numbers, (n) => Q.yield(n.id)).orderBy((x) => x)
    let seen = 0
    for await (const id of stream(get().db, q, { chunkSize: 10 })) {
      seen += 1
      if (id >= 5) break
    }
    expect(seen).toBe(5)
    expect(await run(get().db, Q.yield(Q.count(numbers)))).toEqual([2500])
  })

  test('bad options are argument errors at the call; a decode error rejects the loop', async () => {
    expect(() => stream(get().db, numbers, { chunkSize: 0 })).toThrow('stream: options.chunkSize must be a positive integer, got 0')
    expect(() => stream(get().db, {} as never)).toThrow(LineageQueryError)
    // A column declared t.Int that holds text.
    const liar = table('numbers', { id: t.Int, label: t.Int })
    await expect(collect(stream(get().db, Q.for(liar, (n) => Q.yield(n.label))))).rejects.toMatchObject({ code: 'decode' })
  })
})

test('stream on PostgreSQL without a cursor class is a dialect error naming pg-cursor', async (ctx) => {
  if (!(await pgServerReachable())) return ctx.skip()
  const db = new Kysely<any>({ dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString: pgUrl, max: 1 }) }) })
  try {
    const e = await collect(stream(db, Q.yield({ a: 1 }))).then(() => undefined, (x: unknown) => x)
    expect(e).toBeInstanceOf(LineageQueryError)
    expect((e as LineageQueryError).code).toBe('dialect')
    expect((e as LineageQueryError).message).toContain("new PostgresDialect({ pool, cursor: Cursor }) with `import Cursor from 'pg-cursor'`")
  } finally {
    await db.destroy()
  }
})
