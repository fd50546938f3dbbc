/**
 * A store tracked by an earlier library version: its root triggers are redone at the next start
 * (the trigger text is hashed into `lq_tracked.ddl_hash`), the revisions already recorded are kept
 * (no derived row becomes stale), and on PostgreSQL the new triggers notify `lq_changed`, so
 * `store.watch` wakes on root writes of a store tracked before watch mode existed.
 */
import * as t from 'io-ts'
import { sql } from 'kysely'
import pg from 'pg'
import { expect, it } from 'vitest'
import { createTable, insertRows } from '../../src/query/ddl.js'
import { Q, table } from '../../src/query/dsl.js'
import { openStore } from '../../src/derived/index.js'
import { eachDialect, pgUrl } from '../support/db.js'

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

eachDialect('a store tracked by an earlier library version', (get) => {
  it('gets this version\'s triggers at its next start, keeps its revisions, and (PostgreSQL) notifies watchers', async () => {
    const { db, label } = get()
    const src = table('up_src', { id: t.Int, v: t.Int })
    await createTable(db, src)
    await insertRows(db, src, [{ id: 1, v: 1 }, { id: 2, v: 2 }])
    const first = await openStore(db)
    await first.track(src)
    first.derive({ name: 'up_out', from: src, output: { y: t.Int }, fn: (r) => ({ y: r.v * 10 }) })
    await first.refresh()
    const revs = async () => (await sql<{ lq_key: string; rev: unknown }>`SELECT lq_key, rev FROM lq_rev_up_src ORDER BY lq_key`.execute(db)).rows.map((r) => [r.lq_key, Number(r.rev)])
    const before = await revs()
    const hash = async () => (await sql<{ h: string }>`SELECT ddl_hash AS h FROM lq_tracked WHERE root = 'up_src'`.execute(db)).rows[0]!.h
    const current = await hash()

    // What an earlier version left: another trigger text (on PostgreSQL, a trigger function that
    // does not notify), recorded under another hash.
    const server = label === 'postgres (server)'
    if (get().dialect === 'postgres') {
      const body = (await sql<{ src: string }>`SELECT prosrc AS src FROM pg_proc WHERE proname = 'lq_trg_up_src'`.execute(db)).rows[0]!.src
      expect(body).toContain('pg_notify')
      const old = body.replace(/PERFORM pg_notify\([^;]*\);/, '')
      await sql.raw(`CREATE OR REPLACE FUNCTION "lq_trg_up_src"() RETURNS trigger LANGUAGE plpgsql AS $old$${old}$old$`).execute(db)
    }
    await sql`UPDATE lq_tracked SET ddl_hash = '0123456789abcdef' WHERE root = 'up_src'`.execute(db)

    let notified = 0
    let client: pg.Client | undefined
    if (server) {
      const schema = (await sql<{ s: string }>`SELECT current_schema() AS s`.execute(db)).rows[0]!.s
      client = new pg.Client({ connectionString: pgUrl, options: `-c search_path=${schema}` })
      await client.connect()
      // Only this table's: other tests (and other processes) on the database write roots meanwhile.
      client.on('notification', (m) => {
        if (m.payload === `${schema}.up_src`) notified++
      })
      await client.query('LISTEN lq_changed')
    }
    try {
      if (server) {
        // The old trigger records the write but wakes no one.
        await sql`UPDATE up_src SET v = 3 WHERE id = 2`.execute(db)
        await sleep(300)
        expect(notified).toBe(0)
      }
      const next = await openStore(db)
      await next.track(src)
      const out2 = next.derive({ name: 'up_out', from: src, output: { y: t.Int }, fn: (r) => ({ y: r.v * 10 }) })
      expect(await hash()).toBe(current)
      // Row 1 was not written: its revision and its derived row are as they were.
      const after = await revs()
      expect(after.find(([k]) => k === '1')).toEqual(before.find(([k]) => k === '1'))
      expect((await next.status(out2, 1)).state).toBe('fresh')
      if (server) {
        await sql`UPDATE up_src SET v = 4 WHERE id = 1`.execute(db)
        const end = Date.now() + 10_000
        while (notified === 0 && Date.now() < end) await sleep(20)
        expect(notified).toBeGreaterThan(0)
      }
      await next.refresh()
      expect(await next.get(out2, 1)).toMatchObject({ state: 'fresh', value: { y: server ? 40 : 10 } })
      expect(await next.get(out2, 2)).toMatchObject({ state: 'fresh', value: { y: server ? 30 : 20 } })
    } finally {
      await client?.end()
    }
  }, 60_000)
})

eachDialect('a store at schema version 3 (before range claims)', (get) => {
  it('gets the range claim table at its next open, and its first fills claim and store as before', async () => {
    const { db } = get()
    const src = table('up3_src', { id: t.Int, v: t.Int })
    await createTable(db, src)
    await insertRows(db, src, [1, 2, 3].map((id) => ({ id, v: id })))
    await openStore(db)
    // What version 3 left: no range table.
    await sql`DROP TABLE lq_claim_range`.execute(db)
    await sql`UPDATE lq_store_meta SET value = '3' WHERE name = 'schema_version'`.execute(db)
    const store = await openStore(db)
    expect((await sql<{ value: string }>`SELECT value FROM lq_store_meta WHERE name = 'schema_version'`.execute(db)).rows).toEqual([{ value: '5' }])
    expect((await sql`SELECT * FROM lq_claim_range`.execute(db)).rows).toEqual([])
    await store.track(src)
    const out = store.derive({ name: 'up3_out', from: src, output: { y: t.Int }, fn: (r) => ({ y: r.v * 10 }) })
    const rep = await store.refresh()
    expect(rep.totals.computed).toBe(3)
    expect(await store.get(out, 2)).toMatchObject({ state: 'fresh', value: { y: 20 } })
    expect((await sql`SELECT * FROM lq_claim_range`.execute(db)).rows).toEqual([])
  }, 60_000)
})

eachDialect('a store at schema version 4 (before the late-row check)', (get) => {
  it('gets the late-row check at its next open (PostgreSQL: the marker table, its trigger, the move function), and a comprehension refreshes as before', async () => {
    const { db, dialect } = get()
    const a = table('up4_a', { id: t.Int, v: t.Int })
    const b = table('up4_b', { id: t.Int, v: t.Int })
    await createTable(db, a)
    await createTable(db, b)
    await insertRows(db, a, [1, 2, 3].map((id) => ({ id, v: id })))
    await insertRows(db, b, [1, 2].map((id) => ({ id, v: id * 10 })))
    await openStore(db)
    // What version 4 left: none of the check's objects.
    if (dialect === 'postgres') {
      await sql`DROP TABLE lq_wm_check`.execute(db)
      await sql`DROP FUNCTION lq_wm_check()`.execute(db)
      await sql`DROP FUNCTION lq_move_watermark(text, text, bigint, text, text, text, text)`.execute(db)
    }
    await sql`UPDATE lq_store_meta SET value = '4' WHERE name = 'schema_version'`.execute(db)
    const store = await openStore(db)
    expect((await sql<{ value: string }>`SELECT value FROM lq_store_meta WHERE name = 'schema_version'`.execute(db)).rows).toEqual([{ value: '5' }])
    if (dialect === 'postgres') {
      const objects = (await sql<{ n: string }>`SELECT proname AS n FROM pg_proc WHERE proname IN ('lq_wm_check', 'lq_move_watermark') AND pronamespace = current_schema()::regnamespace UNION ALL SELECT tgname FROM pg_trigger WHERE tgname = 'lq_wm_check' AND tgrelid = to_regclass('lq_wm_check') ORDER BY 1`.execute(db)).rows.map((r) => r.n)
      expect(objects).toEqual(['lq_move_watermark', 'lq_wm_check', 'lq_wm_check'])
    }
    await store.track(a)
    await store.track(b)
    store.derive({ name: 'up4_out', from: Q.for(a, (x) => Q.for(b, (y) => Q.where(Q.eq(x.id, y.id), Q.yield({ s: Q.add(x.v, y.v) })))), output: { s: t.Int }, fn: (r) => ({ s: r.s }) })
    expect((await store.refresh()).totals.computed).toBe(2)
    await sql`UPDATE up4_a SET v = 100 WHERE id = 2`.execute(db)
    expect((await store.refresh()).totals.computed).toBe(1)
    expect(await store.stale()).toEqual([])
    if (dialect === 'postgres') expect((await sql`SELECT * FROM lq_wm_check`.execute(db)).rows).toEqual([])
  }, 60_000)
})
