/**
 * A join row computed from inputs that changed before it was stored (a late row: the pair no
 * longer joins), stored by a pass that does not end (its refresh stopped, as if killed, or a
 * watch wave that left rows behind) after another worker's refresh processed the change and
 * moved the table's watermark past it: no later scan looks at the change again, so the late row
 * stays, orphaned. (The pass over rows left behind moves the watermark back to its first clock,
 * lost-claims.test.ts, but only a pass that ends moves it.) Failed at a8e8af0 and after, up to
 * the fix: the write of a comprehension's batch reads the watermark and, when it is past the
 * batch's evaluation clock, refuses results whose recorded inputs changed since (`lateResults`
 * in write.ts). The other order (the late row's write read the watermark before the other
 * refresh moved it) is covered by that refresh's look at rows stored since its scan, before
 * its watermark moves (`lateStored` in write.ts, `moveWatermark` in refresh.ts): the second case;
 * the third (PostgreSQL, the write's commit after the move's look) is refused by the write's
 * commit-time check of the watermark (`watermarkAtCommit`).
 */
import { Kysely, PostgresDialect, sql } from 'kysely'
import pg from 'pg'
import { expect, it } from 'vitest'
import { postgres } from '../../src/derived/sql/postgres.js'
import { metaTable } from '../../src/derived/sql/dialect.js'
import { eachDialect, pgUrl } from '../support/db.js'
import { expectError } from '../support/errors.js'
import { holdable } from './support/holdable.js'
import { joinWorkers } from './support/join-workers.js'

eachDialect('late join rows', (get) => {
  it('a join row stored late, from inputs another worker processed the change of, by a refresh that then stops is not left orphaned', async () => {
    const { db } = get()
    const gate0 = holdable()
    const gate1 = holdable()
    const { d, e, name, A, B } = await joinWorkers(db, 'o', (who, key) => (who === 'A' ? (key === 0 ? gate0.pass() : key === 1 ? gate1.pass() : undefined) : undefined))
    gate0.hold()
    gate1.hold()
    const ac = new AbortController()
    const ra = A.refresh({ batchSize: 1, signal: ac.signal })
    ra.catch(() => undefined)
    await gate0.held
    // Its next batch, (d 1, e 0), is claimed meanwhile.
    await new Promise((res) => setTimeout(res, 200))
    // A claimed both pairs (one batch each); (d 0, e 0) no longer joins, A's leases run out, and B
    // takes (d 1, e 0) over and ends, its watermark past the change.
    await sql`UPDATE ${sql.id(d.name)} SET v = 0 WHERE id = 0`.execute(db)
    await sql`UPDATE lq_claim SET expires = 0 WHERE owner = ${A.owner}`.execute(db)
    await B.refresh()
    gate0.release()
    await gate1.held
    // A stored its late (d 0, e 0) row; it stops now (as if killed) before its pass ends.
    ac.abort()
    await ra.catch(() => undefined)
    await B.refresh()
    const got = (await sql<{ k: string; n: unknown }>`SELECT lq_key AS k, n FROM ${sql.id(name)} ORDER BY lq_key`.execute(db)).rows.map((x) => [x.k, Number(x.n)])
    expect(got).toEqual([[JSON.stringify([[d.name, 1], [e.name, 0]]), 17]])
  }, 60_000)

  it('a join row stored late while another worker waits for rows it holds is not left orphaned when that worker moves the watermark', async () => {
    // B's scan runs after the change (the pair (d 0, e 0) no longer joins) and before A stores
    // its late row, and B's watermark moves after it: B waited for the row A holds, (d 1, e 0).
    // A's write read the watermark before B moved it (so `lateResults` let the row through), and
    // no scan since B's clock looks at the change again. Failed before the watermark's move
    // looked at rows stored since its clock from evaluations before it (`moveWatermark`).
    const { db } = get()
    const gate0 = holdable()
    const gate1 = holdable()
    const { d, e, name, A, B } = await joinWorkers(db, 'w', (who, key) => (who === 'A' ? (key === 0 ? gate0.pass() : key === 1 ? gate1.pass() : undefined) : undefined))
    gate0.hold()
    gate1.hold()
    const ac = new AbortController()
    const ra = A.refresh({ batchSize: 1, signal: ac.signal })
    ra.catch(() => undefined)
    await gate0.held
    // A's next batch, (d 1, e 0), is claimed meanwhile.
    await new Promise((res) => setTimeout(res, 200))
    await sql`UPDATE ${sql.id(d.name)} SET v = 0 WHERE id = 0`.execute(db)
    // B scans now (after the change), finds (d 1, e 0) held by A and waits for it.
    const phases: string[] = []
    const rb = B.refresh({ onProgress: (p) => void (p.table === name && phases.push(p.phase)) })
    await new Promise((res) => setTimeout(res, 300))
    // A stores its late (d 0, e 0) row (the watermark has not moved yet), then stops before its
    // pass ends (as if killed) while computing (d 1, e 0), which B then computes.
    gate0.release()
    await gate1.held
    ac.abort()
    await ra.catch(() => undefined)
    await rb
    await B.refresh()
    const got = (await sql<{ k: string; n: unknown }>`SELECT lq_key AS k, n FROM ${sql.id(name)} ORDER BY lq_key`.execute(db)).rows.map((x) => [x.k, Number(x.n)])
    expect(got).toEqual([[JSON.stringify([[d.name, 1], [e.name, 0]]), 17]])
    expect(await B.stale()).toEqual([])
    // One 'done' for the table, after the pass by key over the late row (it sent two before,
    // so OpenLineage's emitter sent two runs, START and COMPLETE each, for one refresh).
    expect(phases.filter((p) => p === 'done')).toEqual(['done'])
    expect(phases.at(-1)).toBe('done')
  }, 60_000)

  it('PostgreSQL: a late row whose write read the watermark before another refresh moves it, and commits after that move, is refused at its commit and not stored', async (ctx) => {
    // A's write judged its (d 0, e 0) row by the watermark (not moved: not late), then waits (a
    // test transaction locks A's claim rows, which its fence writes) while B scans, finds
    // nothing to do (the pair no longer joins, nothing stored) and moves the watermark: B's look
    // does not see A's row (not committed) and B's move does not wait for A (no lock is held
    // across round trips). A's COMMIT then finds the watermark moved since its read
    // (`watermarkAtCommit`), fails, and A's write runs again: its `lateResults` reads the
    // moved watermark and refuses the row. Failed before that check (the row stayed stored with
    // the watermark past the change; a later refresh deletes it only if A's own pass moved the
    // watermark back: a killed A does not). Earlier this window was closed by row locks held to
    // the commits, taken out: a stopped writer held up every move (process-stop test in
    // late-rows-stopped.test.ts).
    const tdb = get()
    if (tdb.label !== 'postgres (server)') return ctx.skip() // two transactions at once need the server
    const { db } = tdb
    const gate0 = holdable()
    const { d, e, name, A, B } = await joinWorkers(db, 'f', (who, key) => (who === 'A' && key === 0 ? gate0.pass() : undefined))
    // Only (d 0, e 0) joins: A computes one row, and B has nothing to compute.
    await sql`UPDATE ${sql.id(d.name)} SET v = 100 WHERE id = 1`.execute(db)
    gate0.hold()
    const ra = A.refresh()
    await gate0.held
    await sql`UPDATE ${sql.id(d.name)} SET v = 0 WHERE id = 0`.execute(db)
    const waitingOnLock = async () => Number((await sql<{ n: unknown }>`SELECT count(*) AS n FROM pg_locks WHERE NOT granted`.execute(db)).rows[0]!.n)
    let unlock!: () => void
    let locked!: () => void
    const isLocked = new Promise<void>((r) => (locked = r))
    const released = new Promise<void>((r) => (unlock = r))
    const holder = db.transaction().execute(async (trx) => {
      await sql`SELECT 1 FROM lq_claim WHERE owner = ${A.owner} FOR UPDATE`.execute(trx)
      locked()
      await released
    })
    await isLocked
    gate0.release()
    for (let i = 0; i < 300 && (await waitingOnLock()) === 0; i++) await new Promise((res) => setTimeout(res, 10))
    // B's refresh ends while A waits: no lock of A's holds it up.
    await B.refresh()
    unlock()
    await holder
    const rep = await ra
    expect(rep.totals.superseded).toBe(1)
    const got = (await sql<{ k: string }>`SELECT lq_key AS k FROM ${sql.id(name)} ORDER BY lq_key`.execute(db)).rows
    expect(got).toEqual([])
    expect(await B.stale()).toEqual([])
  }, 60_000)

  it('PostgreSQL: a watermark move does not move when a row evaluated before its clock was stored by a write its look did not see, and moves once looked at again', async (ctx) => {
    // The move's side of the window (`moveWatermarkUnlessStored`): a write that committed
    // between the refresh's look at rows stored late and the move (its commit-time check came
    // before the move's lock) is found by the move's own look, taken after its lock, and the
    // refresh looks again. Played on one connection: the look's snapshot, then a row stored by
    // another transaction, then the move.
    const tdb = get()
    if (tdb.dialect !== 'postgres') return ctx.skip()
    const { db } = tdb
    const { name, B } = await joinWorkers(db, 'm', () => undefined)
    await B.refresh()
    const wm0 = (await sql<{ r: unknown }>`SELECT wm_rev AS r FROM lq_derived WHERE name = ${name}`.execute(db)).rows[0]!.r
    await sql`SELECT nextval('lq_clock_seq')`.execute(db)
    const clock = await postgres.readClock(db)
    const move = (look: string) => postgres.moveWatermarkUnlessStored!(db, { table: name, meta: metaTable(name), clock, look, applied: null, codeVersion: 'j1' })
    const look = (await postgres.readClock(db)).xmin!
    await sql`INSERT INTO ${sql.id(metaTable(name))} (lq_key, lq_lineage, lq_inputs, lq_max_input_rev, lq_code_version, lq_state, lq_computed_rev, lq_changed_rev, lq_eval_rev) VALUES ('late', '', '[]', 0, 'j1', 'ok', ${clock.rev}, ${clock.rev}, ${clock.rev - 1})`.execute(db)
    expect(await move(look)).toBe(false)
    expect((await sql<{ r: unknown }>`SELECT wm_rev AS r FROM lq_derived WHERE name = ${name}`.execute(db)).rows[0]!.r).toEqual(wm0)
    // Looked at again (a snapshot after that write): it moves.
    expect(await move((await postgres.readClock(db)).xmin!)).toBe(true)
    expect(Number((await sql<{ r: unknown }>`SELECT wm_rev AS r FROM lq_derived WHERE name = ${name}`.execute(db)).rows[0]!.r)).toBe(clock.rev)
  }, 60_000)
  it('PostgreSQL: a write whose commit finds the watermark moved at each of 20 attempts gives up with a busy error naming the table, and stores nothing', async (ctx) => {
    // Every attempt's commit-time check fails: a test trigger moves the watermark (its snapshot
    // text) in the write transaction itself, after the write read it.
    const tdb = get()
    if (tdb.dialect !== 'postgres') return ctx.skip()
    const { db } = tdb
    const { name, A } = await joinWorkers(db, 'x', () => undefined)
    await sql`CREATE FUNCTION lq_test_bump() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN UPDATE lq_derived SET wm_xmin = coalesce(wm_xmin, '') || ' ' WHERE name = NEW.name; RETURN NULL; END $$`.execute(db)
    await sql`CREATE TRIGGER lq_test_bump AFTER INSERT ON lq_wm_check FOR EACH ROW EXECUTE FUNCTION lq_test_bump()`.execute(db)
    try {
      const err = await expectError(A.refresh(), 'busy', `\`${name}\``, 'watermark moved during each of 20 attempts')
      expect(err.details).toMatchObject({ attempts: 20, driverCode: 'LQW01' })
      expect((await sql`SELECT lq_key FROM ${sql.id(name)}`.execute(db)).rows).toEqual([])
      expect((await sql`SELECT * FROM lq_wm_check`.execute(db)).rows).toEqual([])
    } finally {
      // The schema is the file's: later tests write through lq_wm_check too.
      await sql`DROP TRIGGER lq_test_bump ON lq_wm_check`.execute(db)
    }
  }, 60_000)
  it('PostgreSQL: a watermark move in a REPEATABLE READ transaction (default_transaction_isolation) is refused, not made from a snapshot older than its lock', async (ctx) => {
    // The move's last look must be a snapshot taken after it locked the watermark row: then a
    // write whose commit-time check came first (the move waited for it) is seen. In READ
    // COMMITTED each statement of the function takes one; in REPEATABLE READ the transaction's
    // snapshot is taken by the call itself, before the lock: such a write's row (committed
    // while the move waited) was not seen, and the move moved past it.
    const tdb = get()
    if (tdb.label !== 'postgres (server)') return ctx.skip() // two transactions at once need the server
    const { db } = tdb
    const schema = (await sql<{ s: string }>`SELECT current_schema() AS s`.execute(db)).rows[0]!.s
    const { name, B } = await joinWorkers(db, 'r', () => undefined)
    await B.refresh()
    const wmRev = async () => Number((await sql<{ r: unknown }>`SELECT wm_rev AS r FROM lq_derived WHERE name = ${name}`.execute(db)).rows[0]!.r)
    const wm0 = await wmRev()
    const read = (await sql<{ wm_rev: unknown; wm_xmin: string | null; v: string }>`SELECT wm_rev, wm_xmin, applied_code_version AS v FROM lq_derived WHERE name = ${name}`.execute(db)).rows[0]!
    await sql`SELECT nextval('lq_clock_seq')`.execute(db)
    const clock = await postgres.readClock(db)
    const look = (await postgres.readClock(db)).xmin!
    // The write's COMMIT is held after its check took the watermark row's key-share lock.
    await sql`CREATE FUNCTION lq_test_stall() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_sleep(1.5); RETURN NULL; END $$`.execute(db)
    await sql`CREATE CONSTRAINT TRIGGER zz_test_stall AFTER INSERT ON lq_wm_check DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION lq_test_stall()`.execute(db)
    const write = db.transaction().execute(async (trx) => {
      await postgres.watermarkAtCommit(trx, name, { rev: Number(read.wm_rev), xmin: read.wm_xmin }, read.v)
      await sql`INSERT INTO ${sql.id(metaTable(name))} (lq_key, lq_lineage, lq_inputs, lq_max_input_rev, lq_code_version, lq_state, lq_computed_rev, lq_changed_rev, lq_eval_rev) VALUES ('late', '', '[]', 0, 'j1', 'ok', ${clock.rev}, ${clock.rev}, ${clock.rev - 1})`.execute(trx)
    })
    for (let i = 0; i < 300; i++) {
      if (Number((await sql<{ n: unknown }>`SELECT count(*) AS n FROM pg_stat_activity WHERE wait_event = 'PgSleep' AND datname = current_database()`.execute(db)).rows[0]!.n) > 0) break
      await new Promise((res) => setTimeout(res, 10))
    }
    const rr = new Kysely<any>({ dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString: pgUrl, max: 1, options: `-c search_path=${schema} -c default_transaction_isolation=repeatable\\ read` }) }) })
    try {
      const moved = postgres.moveWatermarkUnlessStored!(rr, { table: name, meta: metaTable(name), clock, look, applied: read.v, codeVersion: read.v })
      moved.catch(() => undefined)
      await write
      await expect(moved).rejects.toThrow(/READ COMMITTED/)
      expect(await wmRev()).toBe(wm0)
    } finally {
      await rr.destroy()
      await sql`DROP TRIGGER zz_test_stall ON lq_wm_check`.execute(db)
    }
  }, 60_000)
})
