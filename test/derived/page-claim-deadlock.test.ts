/**
 * Review of cd5adf1 (PostgreSQL first-fill pages that claim their rows): the page statement's
 * `INSERT ... ON CONFLICT DO NOTHING` puts a row with an EXPIRED claim (a worker killed with
 * kill -9) in its free rows and waits on it when another worker's `claim` statement is taking
 * that row over (its `taken` UPDATE, uncommitted); that claim statement then inserts a lower key
 * the page statement inserted already and waits on the page statement: 40P01. The key-order
 * rule that keeps two `claim` statements apart does not hold here: `claim` updates the expired
 * rows it takes over (any key) before it inserts the new ones, and skips locked expired rows
 * (SKIP LOCKED); the page statement neither skips them nor takes them in that order. A trigger
 * delays the other claim statement between its update and its inserts (what a loaded machine
 * or a big batch of expired rows does) so the interleaving is deterministic.
 */
import * as t from 'io-ts'
import { sql } from 'kysely'
import { expect, it } from 'vitest'
import { openStore } from '../../src/derived/index.js'
import { claimDialects } from '../../src/derived/sql/claims.js'
import { createTable, insertRows } from '../../src/query/ddl.js'
import { table } from '../../src/query/dsl.js'
import { eachDialect } from '../support/db.js'

eachDialect('page claims and expired claim rows', (get) => {
  it('a first-fill page statement that claims its rows does not deadlock with another worker taking over an expired claim row in its page (PostgreSQL)', async () => {
    const { db, dialect } = get()
    if (dialect !== 'postgres') return
    const src = table('dl_src', { id: t.Int, v: t.Int })
    await createTable(db, src)
    await insertRows(db, src, Array.from({ length: 20 }, (_, i) => ({ id: i + 1, v: i + 1 })))
    const store = await openStore(db, { leaseMs: 10_000 })
    await store.track(src)
    store.derive({ name: 'dl_a', from: src, output: { y: t.Int }, version: 'dl-1', fn: (r) => ({ y: r.v * 2 }) })
    await store.stale('dl_a')
    // A worker killed with kill -9 left its claim on row 5; the lease ended.
    await sql`INSERT INTO lq_claim (tbl, lq_key, owner, expires, token) VALUES ('dl_a', '5', 'dead-worker', 0, nextval('lq_claim_seq'))`.execute(db)
    // Another worker's claim statement (row 5 to take over, row 3 new) is slow between its update and its inserts.
    await sql`CREATE FUNCTION dl_slow() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN IF NEW.owner = 'other-worker' THEN PERFORM pg_sleep(1.5); END IF; RETURN NEW; END $$`.execute(db)
    await sql`CREATE TRIGGER dl_slow BEFORE INSERT ON lq_claim FOR EACH ROW EXECUTE FUNCTION dl_slow()`.execute(db)
    const other = claimDialects.postgres.claim(db, 'dl_a', ['3', '5'], 'other-worker', 60_000).then(
      // That worker lets its rows go unstored (it stopped): the fill computes them.
      async (r) => (await claimDialects.postgres.release(db, 'other-worker', r.token), { ok: r.keys.sort() }),
      (e: unknown) => ({ error: String((e as Error).message) }),
    )
    await new Promise((r) => setTimeout(r, 300))
    const fill = store.refresh({ batchSize: 10 }).then(
      (r) => ({ ok: r.totals.computed }),
      (e: unknown) => ({ error: `${String((e as Error).message)} ${String((e as { cause?: Error }).cause?.message ?? '')}` }),
    )
    const [o, f] = await Promise.all([other, fill])
    // Neither statement may be chosen as a deadlock victim.
    expect({ other: o, fill: f }).toEqual({ other: { ok: ['3', '5'] }, fill: { ok: 20 } })
    expect(await store.stale('dl_a')).toEqual([])
  }, 60_000)
})
