/**
 * Lazy lineage (src/query/lineage-value.ts): `run(lineage(q))` returns `AnnotatedValue`s whose
 * entries are built from the raw key values when `lineage` is first read. Reading them must give
 * exactly what the eager decoder (`decodeRows(layout, hooks, { lazy: false })`, plain objects,
 * every entry built while decoding) gives for the same driver rows: same entries, same order,
 * at every depth; `JSON.stringify` the same text.
 *
 * 1. a property over random schemas, data and queries (`test/support/arbitraries.ts`), with
 *    lineage(q), lineage(q, { composed: false }) and, where allowed, lineage(q, { why: true }),
 *    on SQLite and PostgreSQL;
 * 2. examples of what an `AnnotatedValue` does and does not do like a plain object.
 *
 * Environment: `FC_SEED`, `FC_PATH`, `LQ_RUNS` as in `test/query/property.test.ts`.
 */
import fc from 'fast-check'
import * as t from 'io-ts'
import { CompiledQuery, type Kysely } from 'kysely'
import { describe, expect, test } from 'vitest'
import { createTable, insertRows, lineage, LineageQueryError, plainLineage, Q, run, sourceRows, groupBySource, table, type AnyQuery } from '../../src/index.js'
import { plan } from '../../src/query/compile.js'
import { decodeRows } from '../../src/query/decode.js'
import { hooksFor } from '../../src/query/dialect.js'
import { AnnotatedValue } from '../../src/query/lineage-value.js'
import { arbCase, caseCode, type Case } from '../support/arbitraries.js'
import { eachDialect, type TestDb } from '../support/db.js'
import { assertAsyncProperty } from '../support/seed.js'

const env = (name: string): string | undefined => (process.env[name] === '' ? undefined : process.env[name])
const numRuns = Math.max(50, Math.floor(Number(env('LQ_RUNS') ?? 500) / 2))
const TIMEOUT = 300_000

class Rollback extends Error {}

/** The lineage variants of `q` this case can compile (why-provenance refuses some queries). */
function variants(q: AnyQuery): AnyQuery[] {
  const out: AnyQuery[] = [lineage(q), lineage(q, { composed: false })]
  try {
    out.push(lineage(q, { why: true }))
  } catch (e) {
    if (!(e instanceof LineageQueryError)) throw e
  }
  return out
}

/** Execute each query's statement once and decode the same rows lazily and eagerly. */
async function bothWays(tdb: TestDb, c: Case, queries: readonly AnyQuery[]): Promise<{ lazy: unknown[]; eager: unknown[] }[]> {
  const out: { lazy: unknown[]; eager: unknown[] }[] = []
  try {
    await tdb.db.transaction().execute(async (trx: Kysely<any>) => {
      for (const tb of c.schema.tables) {
        await createTable(trx, tb)
        await insertRows(trx, tb, c.data[tb.name] ?? [])
      }
      for (const q of queries) {
        const p = plan(q, tdb.dialect)
        const s = p.statements[0]!
        const rows = (await trx.executeQuery<Record<string, unknown>>(CompiledQuery.raw(s.sql, [...s.parameters]))).rows
        out.push({ lazy: p.decode(rows), eager: decodeRows(p.layout, hooksFor(tdb.dialect), { lazy: false })(rows) })
      }
      throw new Rollback()
    })
  } catch (e) {
    if (!(e instanceof Rollback)) throw e
  }
  return out
}

/** Whether a decoded value holds an `AnnotatedValue` anywhere, and, reading them all, that each read returns the cached array. */
function readAll(v: unknown): number {
  if (v instanceof AnnotatedValue) {
    const first = v.lineage
    if (v.lineage !== first) throw new Error('lineage read twice gave two arrays (not cached)')
    return 1 + readAll(v.data)
  }
  if (Array.isArray(v)) return v.reduce((n: number, x) => n + readAll(x), 0)
  if (typeof v === 'object' && v !== null) return Object.values(v).reduce((n: number, x) => n + readAll(x), 0)
  return 0
}

eachDialect('lazy lineage = eager lineage', (get) => {
  test(`${numRuns} random schemas, data and queries: reading every entry lazily gives exactly the eager result`, async () => {
    await assertAsyncProperty(
      fc.asyncProperty(arbCase(), async (c) => {
        const qs = variants(c.query)
        const results = await bothWays(get(), c, qs)
        results.forEach(({ lazy, eager }, i) => {
          const what = `variant ${i} (${['lineage(q)', 'lineage(q, { composed: false })', 'lineage(q, { why: true })'][i]}) on ${get().label}:${caseCode(c)}`
          // Serialised before any lineage is read: toJSON builds it on the way.
          const text = JSON.stringify(lazy)
          if (text !== JSON.stringify(eager)) throw new Error(`JSON.stringify differs for ${what}\nlazy:  ${text}\neager: ${JSON.stringify(eager)}`)
          // No plain { data, lineage } object survives in the lazy result (only AnnotatedValues).
          if (lazy.length > 0 && !(lazy[0] instanceof AnnotatedValue)) throw new Error(`lazy result is not annotated for ${what}`)
          readAll(lazy)
          try {
            expect(plainLineage(lazy)).toStrictEqual(eager)
          } catch (e) {
            throw new Error(`lazy != eager for ${what}\n${(e as Error).message}`)
          }
        })
      }),
      { numRuns, endOnFailure: true },
    )
  }, TIMEOUT)
})

const people = table('people', { id: t.Int, name: t.string, team: t.string })
const teams = table('teams', { code: t.string, city: t.string }, { key: 'code' })
const pairs = table('pairs', { a: t.Int, b: t.Int, note: t.string }, { key: ['a', 'b'] })

eachDialect('an annotated element', (get) => {
  const setup = async () => {
    const db = get().db
    for (const tb of [people, teams, pairs]) {
      await db.schema.dropTable(tb.name).ifExists().execute()
      await createTable(db, tb)
    }
    await insertRows(db, people, [{ id: 1, name: 'ann', team: 'x' }, { id: 2, name: 'bob', team: 'y' }])
    await insertRows(db, teams, [{ code: 'x', city: 'Oslo' }, { code: 'y', city: 'Rome' }])
    await insertRows(db, pairs, [{ a: 1, b: 2, note: 'n' }])
  }
  const q = Q.for(teams, (tm) =>
    Q.yield({ city: tm.city, members: Q.for(people, (p) => Q.where(Q.eq(p.team, tm.code), Q.for(pairs, (r) => Q.where(Q.eq(r.a, p.id), Q.yield(p.name))))) }),
  )

  test('reads like { data, lineage }: property, destructuring, in, JSON.stringify, sourceRows, groupBySource', async () => {
    await setup()
    const rows = await run(get().db, lineage(q))
    const x = rows.find((r) => r.data.city === 'Oslo')!
    expect(x).toBeInstanceOf(AnnotatedValue)
    expect(x.lineage).toStrictEqual([{ table: 'teams', key: 'x' }])
    const { data, lineage: entries } = x
    expect(data.city).toBe('Oslo')
    expect(entries).toBe(x.lineage)
    expect('lineage' in x && 'data' in x).toBe(true)
    expect(Object.keys(x)).toStrictEqual(['data'])
    const keys: string[] = []
    for (const k in x) keys.push(k)
    expect(keys.sort()).toStrictEqual(['data', 'lineage'])
    expect(JSON.parse(JSON.stringify(x))).toStrictEqual({
      data: { city: 'Oslo', members: [{ data: 'ann', lineage: [{ table: 'people', key: 1 }, { table: 'pairs', key: [1, 2] }] }] },
      lineage: [{ table: 'teams', key: 'x' }],
    })
    expect(sourceRows(rows)).toEqual(expect.arrayContaining([{ table: 'teams', key: 'x' }, { table: 'people', key: 1 }, { table: 'pairs', key: [1, 2] }]))
    expect(groupBySource(rows).map((g) => g.source).sort((a, b) => String(a.key).localeCompare(String(b.key)))).toStrictEqual([
      { table: 'teams', key: 'x' },
      { table: 'teams', key: 'y' },
    ])
  }, 60_000)

  test('a flat join of several key slots (a self-join, a composite key) reads its lineage from the kept driver rows (a copy of the slots when the row is much wider): exactly the eager entries, without the self-join duplicate', async () => {
    await setup()
    const flat = Q.for(people, (p) =>
      Q.for(people, (p2) => Q.for(pairs, (r) => Q.where(Q.and(Q.eq(r.a, p.id), Q.eq(p2.id, p.id)), Q.yield({ n: p.name, note: r.note })))),
    )
    const p = plan(lineage(flat), get().dialect)
    const s = p.statements[0]!
    const driverRows = (await get().db.executeQuery<Record<string, unknown>>(CompiledQuery.raw(s.sql, [...s.parameters]))).rows
    const lazy = p.decode(driverRows) as AnnotatedValue[]
    const eager = decodeRows(p.layout, hooksFor(get().dialect), { lazy: false })(driverRows)
    expect(lazy[0]).toBeInstanceOf(AnnotatedValue)
    expect(lazy[0]!.lineage).toStrictEqual([{ table: 'people', key: 1 }, { table: 'pairs', key: [1, 2] }])
    expect(plainLineage(lazy)).toStrictEqual(eager)
    expect(JSON.stringify(p.decode(driverRows))).toBe(JSON.stringify(eager))
    // A row much wider than its key slots keeps a copy of the slots instead: the same entries.
    const wide = Q.for(people, (p1) =>
      Q.for(people, (p2) =>
        Q.for(pairs, (r) =>
          Q.where(
            Q.and(Q.eq(r.a, p1.id), Q.eq(p2.id, p1.id)),
            Q.yield({ a: p1.name, b: p1.team, c: p2.name, d: p2.team, e: r.note, f: p1.id, g: p2.id, h: r.a, i: r.b, j: r.note, k: p1.name }),
          ),
        ),
      ),
    )
    const pw = plan(lineage(wide), get().dialect)
    const sw = pw.statements[0]!
    const wideRows = (await get().db.executeQuery<Record<string, unknown>>(CompiledQuery.raw(sw.sql, [...sw.parameters]))).rows
    const wideLazy = pw.decode(wideRows) as AnnotatedValue[]
    expect(wideLazy[0]!.lineage).toStrictEqual([{ table: 'people', key: 1 }, { table: 'pairs', key: [1, 2] }])
    expect(plainLineage(wideLazy)).toStrictEqual(decodeRows(pw.layout, hooksFor(get().dialect), { lazy: false })(wideRows))
  }, 60_000)

  test('plainLineage gives the plain objects toEqual and spreads need; lineage can be assigned', async () => {
    await setup()
    const rows = await run(get().db, lineage(q))
    const plain = plainLineage(rows)
    expect(plain.find((r) => r.data.city === 'Rome')).toStrictEqual({ data: { city: 'Rome', members: [] }, lineage: [{ table: 'teams', key: 'y' }] })
    expect(Object.getPrototypeOf(plain[0])).toBe(Object.prototype)
    // A spread copies own properties only: the lineage is not one of them.
    expect({ ...rows[0]! }).not.toHaveProperty('lineage')
    const r = rows[0]!
    r.lineage = [{ table: 'elsewhere', key: 0 }] as never
    expect(r.lineage).toStrictEqual([{ table: 'elsewhere', key: 0 }])
  }, 60_000)
})

describe('AnnotatedValue without a database', () => {
  test('a malformed key value is reported when the lineage is first read, as a decode error', () => {
    const hooks = hooksFor('postgres')
    const layout = plan(lineage(Q.for(people, (p) => Q.yield(p.name))), 'postgres').layout
    const rows = decodeRows(layout, hooks)([{ [layout.columns[0]!]: 'ann', [layout.columns[1]!]: '9007199254740993' }]) as AnnotatedValue[]
    expect(rows[0]!.data).toBe('ann')
    expect(() => rows[0]!.lineage).toThrow(LineageQueryError)
  })
})
