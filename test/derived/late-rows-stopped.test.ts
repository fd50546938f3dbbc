/**
 * A worker process stopped (SIGSTOP: a frozen VM, a debugger) inside the write transaction of a
 * comprehension's batch, on the real PostgreSQL server. Its write read the table's watermark
 * (`lateResults` in write.ts) and its row is late: the pair no longer joins. Another worker's
 * refresh moves the watermark meanwhile without waiting for it (no lock on the watermark row is
 * held across a round trip: the write's check that the watermark did not move runs inside its
 * COMMIT, `watermarkAtCommit`); resumed, the stopped worker's commit fails that check, its
 * write runs again and refuses the late row (nothing orphaned). Row locks held to the commit
 * (the watermark row FOR SHARE in writes, an earlier fix of the late-row window) made the other
 * refresh wait as long as the worker stayed stopped; without any check, the late row stayed.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import * as t from 'io-ts'
import type { ChildProcess } from 'node:child_process'
import { sql, type Kysely, type RawBuilder } from 'kysely'
import { expect, it } from 'vitest'
import { createTable, insertRows } from '../../src/query/ddl.js'
import { Q, table } from '../../src/query/dsl.js'
import { openStore, type Store } from '../../src/derived/index.js'
import { metaTable } from '../../src/derived/sql/dialect.js'
import { eachDialect } from '../support/db.js'
import { lastJson, spawnChild, until } from './support/worker-file.js'

let n = 0

/**
 * The store of both cases: roots `d` (rows 0 -> 13, 1 -> 100) and `e` (row 0 -> 10), and their
 * join `j` of pairs within 3 of each other, declared by store B (this process, code version j1):
 * only (d 0, e 0) joins, and setting d 0 to 0 takes it out. Worker A (late-child.ts) is started
 * by the case, with the calls log and the gate file in `dir`.
 */
async function stoppedWriterCase(db: Kysely<any>) {
  const prefix = `lst${++n}_`
  const d = table(`${prefix}d`, { id: t.Int, v: t.Int })
  const e = table(`${prefix}e`, { id: t.Int, v: t.Int })
  const name = `${prefix}j`
  await createTable(db, d)
  await createTable(db, e)
  await insertRows(db, d, [{ id: 0, v: 13 }, { id: 1, v: 100 }])
  await insertRows(db, e, [{ id: 0, v: 10 }])
  const B = await openStore(db, { leaseMs: 3_600_000 })
  await B.track(d)
  await B.track(e)
  B.derive({
    name,
    from: Q.for(d, (x) => Q.for(e, (y) => Q.where(Q.le(Q.abs(Q.sub(x.v, y.v)), 3), Q.yield({ dv: x.v, ev: y.v })))),
    output: { n: t.Int },
    version: 'j1',
    fn: (r) => ({ n: r.dv + r.ev }),
  })
  const dir = mkdtempSync(join(tmpdir(), 'lq-late-stop-'))
  const log = join(dir, 'calls.log')
  writeFileSync(log, '')
  return { d, name, B, dir, log, gate: join(dir, 'gate') }
}

const schemaOf = async (db: Kysely<any>): Promise<string> => (await sql<{ s: string }>`SELECT current_schema() AS s`.execute(db)).rows[0]!.s
/** The tables' prefix of a case, from its join's name (`<prefix>j`). */
const prefixOf = (name: string): string => name.slice(0, -1)

/**
 * Hold worker A's write at a statement that waits for the lock `lock` takes here, open A's gate
 * (late-child.ts computes, then writes), stop A (SIGSTOP) once it waits there, then release the
 * lock: the statement completes on the server and A stays idle inside its write transaction.
 */
async function stopInWrite(db: Kysely<any>, lock: RawBuilder<unknown>, at: string, a: ChildProcess, gate: string, probes: ReturnType<typeof watchA>): Promise<void> {
  let unlock!: () => void
  let locked!: () => void
  const isLocked = new Promise<void>((r) => (locked = r))
  const released = new Promise<void>((r) => (unlock = r))
  const holder = db.transaction().execute(async (trx) => {
    await lock.execute(trx)
    locked()
    await released
  })
  await isLocked
  writeFileSync(gate, '')
  await until(`A waiting at ${at}`, async () => (await probes.waitingA()) > 0, 30_000)
  a.kill('SIGSTOP')
  unlock()
  await holder
  await until('A idle in its write transaction', async () => (await probes.idleA()) > 0, 10_000)
}

/** B's refresh while A stays stopped: 'ended' within 10 s, or 'waiting' (A is then resumed, and the refresh awaited). */
async function refreshWhileStopped(B: Store, a: ChildProcess): Promise<string> {
  const rb = B.refresh()
  rb.catch(() => undefined)
  const first = await Promise.race([rb.then(() => 'ended'), new Promise<string>((r) => setTimeout(() => r('waiting'), 10_000))])
  if (first !== 'ended') {
    a.kill('SIGCONT')
    await rb
  }
  return first
}

/** Worker A resumed and ended (killed when it did not end by itself), and the case's folder removed. */
async function endA(a: ChildProcess, exited: Promise<unknown>, dir: string): Promise<void> {
  a.kill('SIGCONT')
  if (a.exitCode === null) a.kill('SIGKILL')
  await exited
  rmSync(dir, { recursive: true, force: true })
}

/** Worker A's connections (named `lqlate_<prefix>` by late-child.ts): waiting for a lock, idle inside a transaction. */
function watchA(db: Kysely<any>, name: string) {
  const app = `lqlate_${prefixOf(name)}`
  return {
    waitingA: async () => Number((await sql<{ n: unknown }>`SELECT count(*) AS n FROM pg_locks l JOIN pg_stat_activity s ON s.pid = l.pid WHERE NOT l.granted AND s.application_name = ${app}`.execute(db)).rows[0]!.n),
    idleA: async () => Number((await sql<{ n: unknown }>`SELECT count(*) AS n FROM pg_stat_activity WHERE state = 'idle in transaction' AND application_name = ${app}`.execute(db)).rows[0]!.n),
  }
}

eachDialect('late rows of a stopped writer', (get) => {
  it('PostgreSQL: a writer stopped inside its write transaction does not hold up another worker\'s watermark move, and resumed, its late row is refused', async (ctx) => {
    const tdb = get()
    if (tdb.label !== 'postgres (server)') return ctx.skip() // OS processes need the server
    const { db } = tdb
    const { d, name, B, log, gate, dir } = await stoppedWriterCase(db)
    const a = spawnChild('late-child.ts', [await schemaOf(db), prefixOf(name), log, gate])
    const { idleA } = watchA(db, name)
    try {
      await until('A computing (d 0, e 0)', () => readFileSync(log, 'utf8').includes('called 0'), 30_000)
      await sql`UPDATE ${sql.id(d.name)} SET v = 0 WHERE id = 0`.execute(db)
      // A's write waits at its fence (its claim rows locked here), after its read of the watermark.
      // A stops inside its write transaction; its fence statement then completes on the server.
      await stopInWrite(db, sql`SELECT 1 FROM lq_claim WHERE tbl = ${name} FOR UPDATE`, 'its fence', a.proc, gate, watchA(db, name))
      const wmBefore = Number((await sql<{ r: unknown }>`SELECT wm_rev AS r FROM lq_derived WHERE name = ${name}`.execute(db)).rows[0]!.r)
      // B's refresh (nothing to compute: the pair no longer joins) ends while A stays stopped.
      expect(await refreshWhileStopped(B, a.proc)).toBe('ended')
      expect(Number((await sql<{ r: unknown }>`SELECT wm_rev AS r FROM lq_derived WHERE name = ${name}`.execute(db)).rows[0]!.r)).toBeGreaterThan(wmBefore)
      expect(await idleA()).toBe(1)
      a.proc.kill('SIGCONT')
      expect(await a.exited).toBe(0)
      expect(lastJson(a)).toMatchObject({ ok: true, superseded: 1 })
      expect((await sql`SELECT lq_key FROM ${sql.id(name)}`.execute(db)).rows).toEqual([])
      expect(await B.stale()).toEqual([])
    } finally {
      await endA(a.proc, a.exited, dir)
    }
  }, 90_000)
  it('PostgreSQL: a writer of another code version stopped inside its write transaction (after forgetting the applied version) does not hold up another worker\'s watermark move, and the applied version stays forgotten', async (ctx) => {
    // The write forgets the table's applied code version (its rows are of another code version):
    // an update of the watermark row, which the move's FOR UPDATE waits for. Done in the write
    // transaction, a worker stopped after it held up every other worker's move until it went
    // on; done by the COMMIT (the marker row's deferred trigger), it holds nothing while stopped.
    const tdb = get()
    if (tdb.label !== 'postgres (server)') return ctx.skip() // OS processes need the server
    const { db } = tdb
    const { name, B, log, gate, dir } = await stoppedWriterCase(db)
    await B.refresh()
    const applied = async () => (await sql<{ a: string | null }>`SELECT applied_code_version AS a FROM lq_derived WHERE name = ${name}`.execute(db)).rows[0]!.a
    const j1 = await applied()
    expect(j1).not.toBe(null)
    // A runs code version j2: it computes the (d 0, e 0) row again.
    const a = spawnChild('late-child.ts', [await schemaOf(db), prefixOf(name), log, gate, 'j2'])
    try {
      await until('A computing (d 0, e 0)', () => readFileSync(log, 'utf8').includes('called 0'), 30_000)
      // A's write waits at its row's upsert (the stored row locked here), after it forgot the applied version.
      await stopInWrite(db, sql`SELECT 1 FROM ${sql.id(metaTable(name))} FOR UPDATE`, 'its upsert', a.proc, gate, watchA(db, name))
      const wmBefore = Number((await sql<{ r: unknown }>`SELECT wm_rev AS r FROM lq_derived WHERE name = ${name}`.execute(db)).rows[0]!.r)
      await sql`SELECT nextval('lq_clock_seq')`.execute(db)
      // B's refresh (nothing to compute: A holds the row's claim) ends while A stays stopped.
      expect(await refreshWhileStopped(B, a.proc)).toBe('ended')
      expect(Number((await sql<{ r: unknown }>`SELECT wm_rev AS r FROM lq_derived WHERE name = ${name}`.execute(db)).rows[0]!.r)).toBeGreaterThan(wmBefore)
      a.proc.kill('SIGCONT')
      expect(await a.exited).toBe(0)
      expect(lastJson(a)).toMatchObject({ ok: true, superseded: 0 })
      // A's j2 row is stored, and j1's next scan must look for it: the applied version stays forgotten.
      const versions = (await sql<{ v: string }>`SELECT lq_code_version AS v FROM ${sql.id(metaTable(name))} WHERE lq_state = 'ok'`.execute(db)).rows.map((r) => r.v)
      expect(versions).toHaveLength(1)
      expect(versions[0]).not.toBe(j1)
      expect(await applied()).toBe(null)
    } finally {
      await endA(a.proc, a.exited, dir)
    }
  }, 90_000)
})
