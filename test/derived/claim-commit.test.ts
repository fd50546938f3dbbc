/**
 * Claim statements on PostgreSQL commit waiting for their WAL flush (the session's
 * `synchronous_commit`), unlike derived writes: each takes its token from `lq_claim_seq`, and
 * committed without the flush a server crash lost the claims and took the sequence back (tried
 * on a private cluster: 40 claims committed so, `pg_ctl stop -m immediate`, restart: no claim
 * row, and the next token was 1 again), so tokens still held in workers' memory were handed out
 * again and a batch's fence could take another claim for its own. A trigger on the claim table
 * records `synchronous_commit` as each statement inserting claims sees it (the value its
 * transaction commits with).
 */
import * as t from 'io-ts'
import { sql } from 'kysely'
import { expect, it } from 'vitest'
import { openStore } from '../../src/derived/index.js'
import { claimDialects } from '../../src/derived/sql/claims.js'
import { createTable, insertRows } from '../../src/query/ddl.js'
import { table } from '../../src/query/dsl.js'
import { eachDialect } from '../support/db.js'

eachDialect('claim statements and the WAL flush', (get) => {
  it('PostgreSQL: a claim statement and a first-fill page statement that claims its rows commit with the session\'s synchronous_commit (their token is durable before any fence relies on it)', async (ctx) => {
    const { db, dialect } = get()
    if (dialect !== 'postgres') return ctx.skip() // SQLite has no such setting
    const src = table('cc_src', { id: t.Int, v: t.Int })
    await createTable(db, src)
    await insertRows(db, src, Array.from({ length: 120 }, (_, i) => ({ id: i + 1, v: i + 1 })))
    const store = await openStore(db, { leaseMs: 30_000 })
    await store.track(src)
    store.derive({ name: 'cc_a', from: src, output: { y: t.Int }, version: 'cc-1', fn: (r) => ({ y: r.v * 2 }) })
    await store.stale('cc_a')
    await sql`CREATE TABLE cc_seen (what text NOT NULL, sc text NOT NULL)`.execute(db)
    await sql.raw(`CREATE FUNCTION cc_note() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN INSERT INTO cc_seen VALUES (TG_OP, current_setting('synchronous_commit')); RETURN NULL; END $$`).execute(db)
    await sql`CREATE TRIGGER cc_note AFTER INSERT OR UPDATE ON lq_claim FOR EACH STATEMENT EXECUTE FUNCTION cc_note()`.execute(db)
    try {
      // A first fill: its page statements claim its rows (batches of 50: three pages).
      expect((await store.refresh({ batchSize: 50 })).totals.computed).toBe(120)
      // A claim statement.
      const c = await claimDialects.postgres.claim(db, 'cc_a', ['1', '2'], 'another-worker', 30_000)
      expect(c.keys.sort()).toEqual(['1', '2'])
      const seen = (await sql<{ what: string; sc: string }>`SELECT what, sc FROM cc_seen`.execute(db)).rows
      expect(seen.length).toBeGreaterThanOrEqual(4)
      expect(seen.filter((s) => s.sc !== 'on')).toEqual([])
      expect((await sql<{ s: string }>`SELECT current_setting('synchronous_commit') AS s`.execute(db)).rows[0]!.s).toBe('on')
    } finally {
      await sql`DROP TRIGGER cc_note ON lq_claim`.execute(db)
      await sql`DROP FUNCTION cc_note()`.execute(db)
      await sql`DROP TABLE cc_seen`.execute(db)
    }
  }, 60_000)
})
