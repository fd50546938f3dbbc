/**
 * Counting in `storeRefused` (refresh.ts, d3b15b5): results the fence refused (their claim rows
 * vanished) and then stored under a new claim are counted once, as stored. On PostgreSQL a row
 * that write stored can be deleted right after it (`recheckAfterWrite`: an input row deleted by a
 * transaction the write's check did not see); that deletion is counted as `deleted`, and must not
 * also take back a second `superseded` count (the report showed superseded -1). Found in review.
 */
import * as t from 'io-ts'
import { sql } from 'kysely'
import { expect, it } from 'vitest'
import { createTable, insertRows } from '../../src/query/ddl.js'
import { table } from '../../src/query/dsl.js'
import { openStore } from '../../src/derived/index.js'
import { eachDialect } from '../support/db.js'
import { holdable } from './support/holdable.js'

let n = 0

eachDialect('counts of refused results stored again', (get) => {
  it('PostgreSQL: a refused result stored under a new claim and then deleted (its input deleted meanwhile) is counted as computed and deleted, never as a negative superseded count', async (ctx) => {
    const tdb = get()
    if (tdb.dialect !== 'postgres') return ctx.skip() // SQLite checks deletions in the writing transaction (no recheck)
    const { db } = tdb
    const src = table(`rfc${++n}`, { id: t.Int, v: t.Int })
    await createTable(db, src)
    await insertRows(db, src, [{ id: 1, v: 1 }, { id: 2, v: 2 }, { id: 3, v: 3 }])
    const store = await openStore(db, { leaseMs: 3_600_000 })
    await store.track(src)
    const gate = holdable()
    const name = `${src.name}_out`
    store.derive({
      name,
      from: src,
      output: { y: t.Int },
      version: 'r1',
      fn: async (r) => {
        await gate.pass()
        return { y: r.v * 10 }
      },
    })
    // Once armed, the first deletion of claim rows of `name` (the fence of the write under the new
    // claim, in its transaction) deletes root row 1: the write's own check ran before it, so the
    // row is stored, and the check after its commit finds its input deleted.
    const flag = `${src.name}_flag`
    await sql.raw(`CREATE TABLE ${flag} (armed int)`).execute(db)
    await sql
      .raw(
        `CREATE FUNCTION ${flag}_fn() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN
           IF OLD.tbl = '${name}' AND EXISTS (SELECT 1 FROM ${flag}) THEN DELETE FROM ${flag}; DELETE FROM ${src.name} WHERE id = 1; END IF;
           RETURN OLD; END $$`,
      )
      .execute(db)
    await sql.raw(`CREATE TRIGGER ${flag}_trg AFTER DELETE ON lq_claim FOR EACH ROW EXECUTE FUNCTION ${flag}_fn()`).execute(db)
    try {
      gate.hold()
      const r = store.refresh()
      await gate.held
      // The batch's claim rows vanish while it computes: its write is refused by the fence.
      for (const c of ['lq_claim', 'lq_claim_range']) await sql`DELETE FROM ${sql.id(c)} WHERE tbl = ${name}`.execute(db)
      await sql.raw(`INSERT INTO ${flag} VALUES (1)`).execute(db)
      gate.release()
      const report = (await r).tables[name]!
      expect(report.superseded).toBeGreaterThanOrEqual(0)
      expect(report).toMatchObject({ computed: 3, deleted: 1, superseded: 0 })
      const rows = (await sql<{ k: string; y: unknown }>`SELECT lq_key AS k, y FROM ${sql.id(name)} ORDER BY lq_key`.execute(db)).rows.map((x) => [x.k, Number(x.y)])
      expect(rows).toEqual([
        ['2', 20],
        ['3', 30],
      ])
      expect(await store.stale()).toEqual([])
    } finally {
      await sql.raw(`DROP TRIGGER IF EXISTS ${flag}_trg ON lq_claim`).execute(db)
    }
  }, 60_000)
})
