/**
 * Rule `literal-plan-inputs` (src/query/dialect.ts, SQLite): the constants SQLite's planner reads
 * while preparing (a constant LIKE pattern, as its GLOB pattern; LIMIT and OFFSET counts) are
 * literals in the text, so binding them does not make SQLite prepare the statement again on every
 * run. Plain ASCII text and integers only; everything else stays bound, PostgreSQL is unchanged.
 */
import * as t from 'io-ts'
import { beforeAll, describe, expect, test } from 'vitest'
import { compile, createTable, insertRows, Q, table, type AnyQuery } from '../../src/index.js'
import { plan } from '../../src/query/compile.js'
import { eachDialect } from '../support/db.js'
import { expectOracleBag } from '../support/oracle-bag.js'

const w = table('w', { id: t.Int, s: t.string }, { key: 'id' })
const data = {
  w: [
    { id: 1, s: 'forest green' },
    { id: 2, s: 'a*b' },
    { id: 3, s: 'a?b' },
    { id: 4, s: 'a[b]' },
    { id: 5, s: "o'hara" },
    { id: 6, s: 'caf\u00e9' },
    { id: 7, s: 'a%b_c' },
    { id: 8, s: 'FOREST' },
    { id: 9, s: 'x\\y' },
  ],
}
const like = (p: string) => Q.for(w, (r) => Q.where(Q.like(r.s, p), Q.yield(r.id)))
const page = (n: number, offset = 0) => Q.for(w, (r) => Q.yield({ id: r.id, s: r.s })).orderBy((r) => r.id).limit(n, offset)
const sqlite = (q: AnyQuery) => compile(q, 'sqlite').statements[0]!
const postgres = (q: AnyQuery) => compile(q, 'postgres').statements[0]!

describe('rule literal-plan-inputs: the SQL', () => {
  test('SQLite writes a constant LIKE pattern (as GLOB) and the LIMIT and OFFSET counts as literals', () => {
    expect(sqlite(like('forest%'))).toEqual({ sql: 'select "w0"."id" as "value" from "w" as "w0" where glob(\'forest*\', "w0"."s")', parameters: [] })
    expect(sqlite(page(3, 2))).toEqual({ sql: 'select "w0"."id" as "id", "w0"."s" as "s" from "w" as "w0" order by "w0"."id" asc nulls first limit 3 offset 2', parameters: [] })
    // an offset alone: SQLite needs a LIMIT, written as a literal too
    expect(sqlite(Q.limit(Q.for(w, (r) => Q.yield(r.id)), Number.MAX_SAFE_INTEGER, 4)).sql).toContain(`limit ${Number.MAX_SAFE_INTEGER} offset 4`)
    // nested collections and aggregates over limited queries: their counts as well
    const nested = Q.yield({ top: page(2), n: Q.count(page(2, 1)) })
    expect(sqlite(nested).sql).toContain('limit 2)')
    expect(sqlite(nested).sql).toContain('limit 2 offset 1)')
    expect(sqlite(nested).parameters).toEqual([])
  })

  test('patterns a literal could not carry as plainly stay bound: quotes, backslashes, non-ASCII, long text', () => {
    for (const p of ["o'h%", 'x\\\\y', 'caf\u00e9', `${'a'.repeat(64)}%`]) {
      const s = sqlite(like(p))
      expect(s.sql, p).toContain('glob(?, "w0"."s")')
      expect(s.parameters, p).toHaveLength(1)
    }
  })

  test('other constants stay bound on SQLite, a computed pattern is unchanged, PostgreSQL binds its LIMIT and OFFSET', () => {
    expect(sqlite(Q.for(w, (r) => Q.where(Q.eq(r.s, 'forest'), Q.yield(r.id))))).toEqual({ sql: 'select "w0"."id" as "value" from "w" as "w0" where ("w0"."s" = ?)', parameters: ['forest'] })
    const computed = Q.for(w, (r) => Q.for(w, (p) => Q.where(Q.like(r.s, p.s), Q.yield(r.id))))
    expect(sqlite(computed).sql).not.toMatch(/glob\('/)
    expect(postgres(page(3, 2))).toEqual({
      sql: 'select "w0"."id" as "id", "w0"."s" as "s" from "w" as "w0" order by "w0"."id" asc nulls first limit $1 offset $2',
      parameters: [3, 2],
    })
  })

  test('plans with every constant bound (the derived engine) keep the LIMIT and OFFSET counts bound', () => {
    const p = plan(page(3, 2), 'sqlite', { bindConstants: true }).statements[0]!
    expect(p.sql).toContain('limit ? offset ?')
    expect(p.parameters).toEqual([3, 2])
  })
})

eachDialect('rule literal-plan-inputs keeps the rows (oracle)', (get) => {
  beforeAll(async () => {
    await createTable(get().db, w)
    await insertRows(get().db, w, data.w)
  })
  const cases: [string, () => AnyQuery][] = [
    ['a prefix pattern', () => like('forest%')],
    ['GLOB metacharacters in the pattern match themselves', () => like('a*b')],
    ['? and [ in the pattern match themselves', () => Q.for(w, (r) => Q.where(Q.or(Q.like(r.s, 'a?b'), Q.like(r.s, 'a[b]')), Q.yield(r.id)))],
    ['escaped % and _ match themselves', () => like('a\\%b\\_c')],
    ['_ and % as wildcards', () => like('a_b%')],
    ['a pattern with a quote (bound)', () => like("o'%")],
    ['a pattern with non-ASCII text (bound)', () => like('caf\u00e9')],
    ['case matters', () => like('FOREST%')],
    ['a limit and an offset', () => page(3, 2)],
    ['an offset past the end', () => page(3, 20)],
    ['limit 0', () => page(0)],
    ['an offset alone', () => Q.limit(Q.for(w, (r) => Q.yield(r.id)).orderBy((x) => x), Number.MAX_SAFE_INTEGER, 6)],
    ['limited nested collections and an aggregate over a limited query', () => Q.yield({ top: page(2), n: Q.count(page(2, 8)) })],
  ]
  for (const [name, build] of cases) {
    test(name, async () => {
      const q = build()
      await expectOracleBag(get().db, q, data)
    }, 60_000)
  }
})
