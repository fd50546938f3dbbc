import * as t from 'io-ts'
import { Kysely, MysqlAdapter, MysqlQueryCompiler, PostgresAdapter, SqliteAdapter, sql, type DatabaseConnection, type Dialect, type Driver } from 'kysely'
import { describe, expect, it } from 'vitest'
import { LineageQueryError } from '../src/errors.js'
import { createTable, insertRows } from '../src/query/ddl.js'
import { dialectOf } from '../src/query/dialect-of.js'
import { table } from '../src/query/dsl.js'
import { tableDef } from '../src/query/schema.js'
import { eachDialect, openAll, openPgServer, openPglite, openPostgres, openSqlite, pgServerReachable, serverRequired } from './support/db.js'
import { expectError } from './support/errors.js'

const employees = table('employees', {
  id: t.Int,
  dept: t.string,
  name: t.string,
  salary: t.number,
  active: t.boolean,
  note: t.union([t.string, t.null]),
  rank: t.union([t.Int, t.null]),
})
type Employee = { id: number; dept: string; name: string; salary: number; active: boolean; note: string | null; rank: number | null }
const staff: Employee[] = [
  { id: 1, dept: 'R&D', name: 'Ada', salary: 2500.5, active: true, note: null, rank: 1 },
  { id: 2, dept: 'R&D', name: "O'Brien \"quoted\" ☃ 𝄞", salary: -0.25, active: false, note: 'x', rank: null },
  { id: 3, dept: '', name: '', salary: 0, active: true, note: '', rank: 9007199254740991 },
]

const tasks = table('tasks', { employee: t.string, task: t.string, hours: t.Int }, { key: ['employee', 'task'] })
const log = table('log', { line: t.string })
const wide = table('wide', Object.fromEntries(Array.from({ length: 10 }, (_, i) => [`c${i}`, t.Int])) as Record<string, typeof t.Int>)


eachDialect('createTable + insertRows', (get) => {
  it('round-trips rows (booleans raw: 0/1 on SQLite)', async () => {
    const { db, dialect } = get()
    await createTable(db, employees)
    await insertRows(db, employees, staff)
    const rows = await db.selectFrom('employees').selectAll().orderBy('id').execute()
    const int = (v: unknown): number => Number(v) // node-postgres returns bigint columns as strings
    expect(rows.map((r) => ({ ...r, id: int(r.id), rank: r.rank === null ? null : int(r.rank) }))).toEqual(
      staff.map((s) => ({ ...s, active: dialect === 'sqlite' ? (s.active ? 1 : 0) : s.active })),
    )
  })

  it('declares NOT NULL only for non-nullable columns, and the key', async () => {
    const { db } = get()
    await expectInsertFails(db, sql`insert into employees (id, dept, name, salary, active, note, rank) values (10, null, 'n', 1, true, null, null)`)
    // nullable columns accept NULL
    await sql`insert into employees (id, dept, name, salary, active, note, rank) values (11, 'd', 'n', 1, ${get().dialect === 'sqlite' ? 1 : true}, null, null)`.execute(db)
    // primary key on id
    await expectInsertFails(db, sql`insert into employees (id, dept, name, salary, active, note, rank) values (1, 'd', 'n', 1, ${get().dialect === 'sqlite' ? 1 : true}, null, null)`)
  })

  it('uses the dialect column types', async () => {
    const { db, dialect } = get()
    const types = dialect === 'sqlite'
      ? (await sql<{ name: string; type: string; notnull: number; pk: number }>`select name, type, "notnull", pk from pragma_table_info('employees')`.execute(db)).rows
      : (await sql<{ name: string; type: string }>`select column_name as name, data_type as type from information_schema.columns where table_name = 'employees' and table_schema = current_schema()`.execute(db)).rows
    const byName = Object.fromEntries(types.map((r) => [r.name, r.type.toLowerCase()]))
    expect(byName).toEqual(
      dialect === 'sqlite'
        ? { id: 'integer', dept: 'text', name: 'text', salary: 'real', active: 'integer', note: 'text', rank: 'integer' }
        : { id: 'bigint', dept: 'text', name: 'text', salary: 'double precision', active: 'boolean', note: 'text', rank: 'bigint' },
    )
  })

  it('honours ifNotExists, and fails without it when the table exists', async () => {
    const { db } = get()
    await createTable(db, employees, { ifNotExists: true })
    await expect(createTable(db, employees)).rejects.toThrow()
  })

  it('composite keys; a table without a key has no primary key', async () => {
    const { db } = get()
    await createTable(db, tasks)
    await insertRows(db, tasks.def, [
      { employee: 'Ada', task: 'build', hours: 3 },
      { employee: 'Ada', task: 'test', hours: 1 },
      { employee: 'Bob', task: 'build', hours: 2 },
    ])
    await expect(insertRows(db, tasks, [{ employee: 'Ada', task: 'build', hours: 5 }])).rejects.toThrow()
    await createTable(db, log)
    await insertRows(db, log, [{ line: 'a' }, { line: 'a' }])
    const n = await db.selectFrom('log').select((eb) => eb.fn.countAll().as('n')).executeTakeFirstOrThrow()
    expect(Number(n.n)).toBe(2)
  })

  it('inserts in chunks under the bound-parameter limit, in one transaction', async () => {
    const { db } = get()
    await createTable(db, wide)
    // 70 000 rows x 10 columns = 700 000 parameters: many INSERTs on both dialects.
    const rows = Array.from({ length: 70_000 }, (_, i) => Object.fromEntries(Array.from({ length: 10 }, (_, c) => [`c${c}`, i * 10 + c])))
    await insertRows(db, wide, rows)
    const r = await db.selectFrom('wide').select((eb) => [eb.fn.countAll().as('n'), eb.fn.sum('c9').as('s')]).executeTakeFirstOrThrow()
    expect(Number(r.n)).toBe(70_000)
    expect(Number(r.s)).toBe(rows.reduce((a, row) => a + (row['c9'] as number), 0))
    // All-or-nothing: a duplicate key in the last chunk rolls back the earlier ones.
    await createTable(db, table('onekey', { id: t.Int }))
    const ids = Array.from({ length: 40_000 }, (_, i) => ({ id: i }))
    ids.push({ id: 0 })
    await expect(insertRows(db, table('onekey', { id: t.Int }), ids)).rejects.toThrow()
    const c = await db.selectFrom('onekey').select((eb) => eb.fn.countAll().as('n')).executeTakeFirstOrThrow()
    expect(Number(c.n)).toBe(0)
  })

  it('joins a surrounding transaction', async () => {
    const { db } = get()
    await createTable(db, table('intrx', { id: t.Int }))
    await expect(
      db.transaction().execute(async (trx) => {
        await insertRows(trx, table('intrx', { id: t.Int }), [{ id: 1 }])
        throw new Error('roll back')
      }),
    ).rejects.toThrow('roll back')
    expect(await db.selectFrom('intrx').selectAll().execute()).toEqual([])
  })

  it('inserts nothing for no rows', async () => {
    const { db } = get()
    await insertRows(db, log, [])
  })

  it('rejects values their codec does not accept, naming table, column, value and type; writes nothing', async () => {
    const { db } = get()
    await createTable(db, table('checked', { id: t.Int, name: t.string, ok: t.boolean, x: t.union([t.number, t.null]) }))
    const checked = table('checked', { id: t.Int, name: t.string, ok: t.boolean, x: t.union([t.number, t.null]) })
    const good = { id: 1, name: 'a', ok: true, x: null }
    await expectError(insertRows(db, checked, [good, { ...good, id: 1.5 }]), 'decode', '`checked`', 'row 1', '`id`', '1.5', 'int')
    await expectError(insertRows(db, checked, [{ ...good, name: 42 as unknown as string }]), 'decode', '`checked`', '`name`', '42', 'string')
    await expectError(insertRows(db, checked, [{ ...good, ok: 1 as unknown as boolean }]), 'decode', '`ok`', 'boolean')
    await expectError(insertRows(db, checked, [{ ...good, x: 'no' as unknown as number }]), 'decode', '`x`', '"no"', 'real | null')
    await expectError(insertRows(db, checked, [{ ...good, x: Number.NaN }]), 'decode', '`x`', 'NaN', 'finite')
    await expectError(insertRows(db, checked, [{ ...good, id: 2 ** 60 }]), 'decode', '`id`', 'safe integer')
    await expectError(insertRows(db, checked, [{ ...good, extra: 1 } as typeof good]), 'argument', '`checked`', 'unknown column `extra`', 'id, name, ok, x')
    const { x: _x, ...missing } = good
    await expectError(insertRows(db, checked, [missing as typeof good]), 'argument', '`checked`', 'missing column `x`', 'real | null')
    await expectError(insertRows(db, checked, [null as unknown as typeof good]), 'argument', '`checked`', 'row 0')
    await expectError(insertRows(db, checked, 'rows' as unknown as (typeof good)[]), 'argument', 'array')
    await expectError(insertRows(db, { name: 'nope' } as never, []), 'argument', 'table(')
    expect(await db.selectFrom('checked').selectAll().execute()).toEqual([])
  })

  it('reports NUL characters (PostgreSQL text cannot hold them; SQLite can)', async () => {
    const { db, dialect } = get()
    const nul = table('nul', { s: t.string })
    await createTable(db, nul)
    if (dialect === 'postgres') await expectError(insertRows(db, nul, [{ s: 'a\u0000b' }]), 'decode', '`s`', 'NUL')
    else {
      await insertRows(db, nul, [{ s: 'a\u0000b' }])
      expect(await db.selectFrom('nul').selectAll().execute()).toEqual([{ s: 'a\u0000b' }])
    }
  })

  it('dialectOf', () => {
    expect(dialectOf(get().db)).toBe(get().dialect)
  })
})

async function expectInsertFails(db: Kysely<any>, q: { execute(db: Kysely<any>): Promise<unknown> }): Promise<void> {
  await expect(q.execute(db)).rejects.toThrow()
}

describe('createTable accepts a TableDef', () => {
  it('creates from tableDef(...)', async () => {
    const { db, close } = await openSqlite()
    try {
      const def = tableDef('plain', { k: t.string, v: t.union([t.Int, t.null]) }, { key: 'k' })
      await createTable(db, def)
      await insertRows(db, def, [{ k: 'a', v: null }, { k: 'b', v: 2 }])
      expect(await db.selectFrom('plain').selectAll().orderBy('k').execute()).toEqual([{ k: 'a', v: null }, { k: 'b', v: 2 }])
    } finally {
      await close()
    }
  })
})

describe('dialectOf', () => {
  /** A Kysely instance over `adapter` that never connects (dialectOf only reads the adapter). */
  function kyselyWith(adapter: unknown): Kysely<any> {
    const driver: Driver = {
      init: async () => undefined,
      acquireConnection: async () => ({}) as DatabaseConnection,
      beginTransaction: async () => undefined,
      commitTransaction: async () => undefined,
      rollbackTransaction: async () => undefined,
      releaseConnection: async () => undefined,
      destroy: async () => undefined,
    }
    const dialect: Dialect = {
      createAdapter: () => adapter as SqliteAdapter,
      createDriver: () => driver,
      createQueryCompiler: () => new MysqlQueryCompiler(),
      createIntrospector: () => {
        throw new Error('unused')
      },
    }
    return new Kysely<any>({ dialect })
  }

  it('recognises SqliteAdapter, PostgresAdapter and subclasses', () => {
    expect(dialectOf(kyselyWith(new SqliteAdapter()))).toBe('sqlite')
    expect(dialectOf(kyselyWith(new PostgresAdapter()))).toBe('postgres')
    class MyPg extends PostgresAdapter {}
    expect(dialectOf(kyselyWith(new MyPg()))).toBe('postgres')
  })

  it('recognises adapters of another Kysely copy by class name', () => {
    // Same class names, unrelated classes (as with two installed Kysely versions).
    const other = { SqliteAdapter: class SqliteAdapter {}, PostgresAdapter: class PostgresAdapter {} }
    expect(dialectOf(kyselyWith(new other.SqliteAdapter()))).toBe('sqlite')
    class Sub extends other.PostgresAdapter {}
    expect(dialectOf(kyselyWith(new Sub()))).toBe('postgres')
  })

  it('rejects other adapters with a dialect error naming the adapter', async () => {
    const err = (() => {
      try {
        dialectOf(kyselyWith(new MysqlAdapter()))
      } catch (e) {
        return e
      }
      return undefined
    })()
    expect(err).toBeInstanceOf(LineageQueryError)
    expect((err as LineageQueryError).code).toBe('dialect')
    expect((err as LineageQueryError).message).toContain('MysqlAdapter')
    expect((err as LineageQueryError).message).toMatch(/only SQLite .*and PostgreSQL/)
    await expectError(createTable(kyselyWith(new MysqlAdapter()), employees), 'dialect', 'MysqlAdapter')
  })

  it('rejects a non-Kysely argument', () => {
    expect(() => dialectOf({} as Kysely<any>)).toThrow(LineageQueryError)
  })
})

describe('test databases', () => {
  it('uses the real PostgreSQL server when it is reachable (it is here, and CI requires it)', async () => {
    const reachable = await pgServerReachable()
    if (serverRequired()) expect(reachable).toBe(true)
    const pg = await openPostgres()
    try {
      // On a machine without a server the tests run on PGlite instead; LQ_PG=pglite forces it.
      const expected = process.env['LQ_PG'] === 'pglite' || !reachable ? 'postgres (pglite)' : 'postgres (server)'
      expect(pg.label).toBe(expected)
      expect(dialectOf(pg.db)).toBe('postgres')
      if (expected === 'postgres (server)') {
        const r = await sql<{ s: string; port: number }>`select current_schema() as s, inet_server_port() as port`.execute(pg.db)
        expect(r.rows[0]?.s).toMatch(/^lq_test_/)
        expect(r.rows[0]?.port).not.toBeNull() // a TCP server, not PGlite
      }
    } finally {
      await pg.close()
    }
  })

  it('gives each PostgreSQL server database its own schema, dropped on close', async (ctx) => {
    if (!(await pgServerReachable())) ctx.skip()
    const a = await openPgServer()
    const b = await openPgServer()
    const schema = async (x: typeof a): Promise<string> => (await sql<{ s: string }>`select current_schema() as s`.execute(x.db)).rows[0]!.s
    const sa = await schema(a)
    const sb = await schema(b)
    expect(sa).not.toBe(sb)
    await createTable(a.db, log)
    await createTable(b.db, log) // no clash
    await a.close()
    const left = await sql<{ n: string }>`select count(*) as n from pg_namespace where nspname = ${sa}`.execute(b.db)
    expect(Number(left.rows[0]?.n)).toBe(0)
    await b.close()
  })

  it('openAll gives [sqlite, postgres]', async () => {
    const all = await openAll()
    try {
      expect(all.map((d) => d.dialect)).toEqual(['sqlite', 'postgres'])
      expect(all.map((d) => dialectOf(d.db))).toEqual(['sqlite', 'postgres'])
    } finally {
      for (const d of all) await d.close()
    }
  })
})

describe('PGlite dialect', () => {
  it('round-trips through createTable/insertRows and serialises transactions', async () => {
    const pg = await openPglite()
    try {
      expect(pg.label).toBe('postgres (pglite)')
      expect(dialectOf(pg.db)).toBe('postgres')
      await createTable(pg.db, employees)
      await insertRows(pg.db, employees, staff)
      const rows = await pg.db.selectFrom('employees').selectAll().orderBy('id').execute()
      // PGlite returns safe bigints as numbers (node-postgres: strings).
      expect(rows).toEqual(staff)
      // What the driver returns for the types the decoder sees.
      const r = await sql<Record<string, unknown>>`select 1::int8 as i8, 9007199254740993::int8 as big, 1.5::numeric as num, true as b, json_build_array(1::int8, true, 'x') as j`.execute(pg.db)
      expect(r.rows[0]).toEqual({ i8: 1, big: 9007199254740993n, num: '1.5', b: true, j: [1, true, 'x'] })

      // Two concurrent transactions: the second waits for the first (one connection).
      const order: string[] = []
      await Promise.all([
        pg.db.transaction().execute(async (trx) => {
          order.push('a:start')
          await insertRows(trx, log.def, [])
          await sql`select pg_sleep(0.05)`.execute(trx)
          order.push('a:end')
        }),
        pg.db.transaction().execute(async () => {
          order.push('b:start')
          order.push('b:end')
        }),
      ])
      expect(order).toEqual(['a:start', 'a:end', 'b:start', 'b:end'])

      // Rollback works.
      await createTable(pg.db, log)
      await expect(
        pg.db.transaction().execute(async (trx) => {
          await insertRows(trx, log, [{ line: 'x' }])
          throw new Error('boom')
        }),
      ).rejects.toThrow('boom')
      expect(await pg.db.selectFrom('log').selectAll().execute()).toEqual([])
    } finally {
      await pg.close()
    }
  })
})
