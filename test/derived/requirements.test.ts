/**
 * One test per requirement of shared/reference/derived-data.md (1-14, 16), on SQLite and
 * PostgreSQL, each on a fresh database, plus the bad-declaration and store-schema checks.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import * as t from 'io-ts'
import { sql, type Kysely } from 'kysely'
import { afterEach, beforeEach, describe, expect, it, onTestFinished } from 'vitest'
import { createTable, insertRows } from '../../src/query/ddl.js'
import { Q, table } from '../../src/query/dsl.js'
import { run as runLazy } from '../../src/query/run.js'
import { plainLineage } from '../../src/query/lineage-value.js'
import { lineage } from '../../src/lineage/index.js'
import { buildGraph, joinOnRoot, openStore, type Store } from '../../src/derived/index.js'
import { dialectNames, open, type TestDb } from '../support/db.js'

/** `run` with annotated elements copied to plain `{ data, lineage }` objects, so `toEqual` compares both fields (see docs/lineage.md, "Reading lineage"). */
const run: typeof runLazy = async (db, q) => plainLineage(await runLazy(db, q))
import { compileAst, parse, runCode, sources } from './toy.js'
import { expectError } from '../support/errors.js'


/** A gate a test opens by hand: `wait()` resolves once `open()` is called. */
function gate(): { wait: () => Promise<void>; open: () => void } {
  let open!: () => void
  const p = new Promise<void>((r) => (open = r))
  return { wait: () => p, open }
}

const tick = () => new Promise((r) => setTimeout(r, 5))

interface Toy {
  store: Store
  calls: { parse: number; compile: number; run: number }
  parsed: ReturnType<typeof declare>['parsed']
  compiled: ReturnType<typeof declare>['compiled']
  ran: ReturnType<typeof declare>['ran']
}

function declare(store: Store, calls: Toy['calls'], versions: { parse?: string } = {}) {
  const parsed = store.derive({
    name: 'parsed',
    from: sources,
    output: { ast: t.string },
    version: versions.parse ?? '1',
    fn: (s) => {
      calls.parse++
      return { ast: parse(s.text) }
    },
  })
  const compiled = store.derive({
    name: 'compiled',
    from: parsed,
    output: { code: t.string },
    fn: (p) => {
      calls.compile++
      return { code: compileAst(p.ast) }
    },
  })
  const ran = store.derive({
    name: 'ran',
    from: compiled,
    output: { value: t.number },
    fn: (c) => {
      calls.run++
      return { value: runCode(c.code) }
    },
  })
  return { parsed, compiled, ran }
}

async function toy(db: Kysely<any>, rows: { id: number; text: string }[] = [{ id: 1, text: '1 + 2' }, { id: 2, text: '2 * (3 + 4)' }, { id: 3, text: '10 - 1' }]): Promise<Toy> {
  await createTable(db, sources)
  await insertRows(db, sources, rows)
  const store = await openStore(db)
  await store.track(sources)
  const calls = { parse: 0, compile: 0, run: 0 }
  return { store, calls, ...declare(store, calls) }
}

const values = async (db: Kysely<any>, tbl: { name: string }) =>
  (await sql<Record<string, unknown>>`SELECT * FROM ${sql.id(tbl.name)} ORDER BY lq_key`.execute(db)).rows

for (const dialect of dialectNames) {
  describe(`derived-data requirements [${dialect}]`, () => {
    let tdb: TestDb
    beforeEach(async () => {
      tdb = await open(dialect)
    })
    afterEach(async () => {
      await tdb.close()
    })

    it('R1 root tables: every row has a revision number, bumped by writes from any client', async () => {
      const { db } = tdb
      const { store } = await toy(db)
      const r1 = await store.revision(sources, 1)
      expect(r1).toBeGreaterThan(0)
      await sql`UPDATE sources SET text = '5' WHERE id = 1`.execute(db) // raw SQL, not through the store
      const r1b = await store.revision(sources, 1)
      expect(r1b).toBeGreaterThan(r1!)
      await sql`INSERT INTO sources (id, text) VALUES (9, '9')`.execute(db)
      expect(await store.revision(sources, 9)).toBeGreaterThan(r1b!)
      await sql`DELETE FROM sources WHERE id = 9`.execute(db)
      expect(await store.revision(sources, 9)).toBeUndefined()
      // One counter per store: every write after tracking gets a new, larger revision.
      await sql`UPDATE sources SET text = '6' WHERE id = 2`.execute(db)
      await sql`UPDATE sources SET text = '7' WHERE id = 3`.execute(db)
      const revs = await Promise.all([1, 2, 3].map((k) => store.revision(sources, k)))
      expect(revs[1]).toBeGreaterThan(revs[0]!)
      expect(revs[2]).toBeGreaterThan(revs[1]!)
      // The user's table is not altered: same columns as declared.
      const cols = await sql<{ name: string }>`${dialect === 'sqlite' ? sql`SELECT name FROM pragma_table_info('sources')` : sql`SELECT column_name AS name FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = 'sources'`}`.execute(db)
      expect(cols.rows.map((c) => c.name).sort()).toEqual(['id', 'text'])
    })

    it('R2 pipelines: parse -> compile -> run stores every intermediate table, queryable with the DSL', async () => {
      const { db } = tdb
      const { store, parsed, compiled, ran } = await toy(db)
      const report = await store.refresh()
      expect(report.totals.computed).toBe(9)
      expect(await run(db, Q.for(parsed, (p) => Q.where(Q.eq(p.lq_key, '1'), Q.yield(p.ast))))).toEqual([parse('1 + 2')])
      expect(await run(db, Q.for(compiled, (c) => Q.where(Q.eq(c.lq_key, '2'), Q.yield(c.code))))).toEqual(['push 2; push 3; push 4; add; mul'])
      expect(await run(db, Q.orderBy(Q.for(ran, (r) => Q.yield({ k: r.lq_key, v: r.value })), (r) => r.k))).toEqual([
        { k: '1', v: 3 },
        { k: '2', v: 14 },
        { k: '3', v: 9 },
      ])
      // lineage over a derived table names the root rows it came from: provenance composes
      // through parse -> compile -> run.
      const lin = await run(db, lineage(Q.for(ran, (r) => Q.where(Q.eq(r.lq_key, '2'), Q.yield(r.value)))))
      expect(lin).toEqual([{ data: 14, lineage: [{ table: 'sources', key: 2 }] }])
      expect(plainLineage(await store.lineage(Q.for(ran, (r) => Q.where(Q.eq(r.lq_key, '2'), Q.yield(r.value)))))).toEqual([{ data: 14, lineage: [{ table: 'sources', key: 2 }] }])
    })

    it('R3 recompute derived rows when their input rows change (only those)', async () => {
      const { db } = tdb
      const { store, ran, calls } = await toy(db)
      await store.refresh()
      const before = { ...calls }
      await sql`UPDATE sources SET text = '100 + 1' WHERE id = 3`.execute(db)
      const r = await store.refresh()
      expect(r.totals.computed).toBe(3)
      expect(calls).toEqual({ parse: before.parse + 1, compile: before.compile + 1, run: before.run + 1 })
      expect((await values(db, ran)).map((x) => Number(x['value']))).toEqual([3, 14, 101])
      // Nothing changed: nothing runs.
      expect((await store.refresh()).totals).toMatchObject({ computed: 0, unchanged: 0, failed: 0, blocked: 0 })
    })

    it('R4 recompute when the code changes: function source, dependsOn files, version; backdating keeps downstream fresh', async () => {
      const { db } = tdb
      const dir = mkdtempSync(join(tmpdir(), 'lq-dep-'))
      onTestFinished(() => rmSync(dir, { recursive: true, force: true }))
      const grammar = join(dir, 'grammar.txt')
      writeFileSync(grammar, 'v1')
      await createTable(db, sources)
      await insertRows(db, sources, [{ id: 1, text: '1 + 2' }, { id: 2, text: '3' }])
      const open2 = async (fn: (s: { text: string }) => { ast: string }, version = '1') => {
        const store = await openStore(db)
        await store.track(sources)
        const calls = { compile: 0 }
        const parsed = store.derive({ name: 'parsed', from: sources, output: { ast: t.string }, fn, version, dependsOn: [grammar] })
        const compiled = store.derive({ name: 'compiled', from: parsed, output: { code: t.string }, fn: (p) => (calls.compile++, { code: compileAst(p.ast) }) })
        return { store, parsed, compiled, calls }
      }
      const a = await open2((s) => ({ ast: parse(s.text) }))
      await a.store.refresh()

      // A new function source: every parsed row is stale with cause code-changed.
      const b = await open2((s) => ({ ast: parse(s.text.trim()) }))
      expect(b.store.codeVersion(b.parsed)).not.toBe(a.store.codeVersion(a.parsed))
      const st = await b.store.status(b.parsed, 1)
      expect(st.state).toBe('stale')
      expect(st.causes).toEqual([{ kind: 'code-changed', table: 'parsed', oldVersion: a.store.codeVersion(a.parsed), newVersion: b.store.codeVersion(b.parsed) }])
      expect((await b.store.stale(b.parsed)).map((s) => s.key).sort()).toEqual([1, 2])
      // Backdating: the new parser gives the same ASTs, so compiled stays fresh and is not rerun.
      const r = await b.store.refresh()
      expect(r.tables['parsed']).toMatchObject({ computed: 0, unchanged: 2 })
      expect(r.tables['compiled']).toMatchObject({ computed: 0, unchanged: 0 })
      expect(b.calls.compile).toBe(0)
      expect((await b.store.status(b.compiled, 1)).state).toBe('fresh')

      // A dependsOn file changes: stale again.
      writeFileSync(grammar, 'v2')
      const c = await open2((s) => ({ ast: parse(s.text.trim()) }))
      expect((await c.store.status(c.parsed, 2)).causes[0]).toMatchObject({ kind: 'code-changed', table: 'parsed' })
      await c.store.refresh()
      // The version string: stale again, and a different result propagates downstream.
      const d = await open2((s) => ({ ast: parse(`${s.text} + 0`) }), '2')
      expect((await d.store.status(d.parsed, 1)).causes).toEqual([expect.objectContaining({ kind: 'code-changed' })])
      const rd = await d.store.refresh()
      expect(rd.tables['parsed']).toMatchObject({ computed: 2 })
      expect(rd.tables['compiled']).toMatchObject({ computed: 2 })
      expect((await values(db, d.compiled)).map((x) => x['code'])).toEqual(['push 1; push 2; add; push 0; add', 'push 3; push 0; add'])
    })

    it('R5 tell whether one derived row is stale, with structured causes', async () => {
      const { db } = tdb
      const { store, parsed, ran } = await toy(db)
      expect(await store.status(parsed, 1)).toEqual({ table: 'parsed', key: 1, state: 'missing', causes: [{ kind: 'missing', table: 'parsed', key: 1 }] })
      await store.refresh()
      expect(await store.status(ran, 1)).toEqual({ table: 'ran', key: 1, state: 'fresh', causes: [] })
      const old = await store.revision(sources, 1)
      await sql`UPDATE sources SET text = '4' WHERE id = 1`.execute(db)
      const now = await store.revision(sources, 1)
      expect(await store.status(parsed, 1)).toEqual({
        table: 'parsed',
        key: 1,
        state: 'stale',
        causes: [{ kind: 'input-changed', table: 'sources', key: 1, oldRevision: old, newRevision: now }],
      })
      expect(await store.status(ran, 1)).toEqual({ table: 'ran', key: 1, state: 'stale', causes: [{ kind: 'upstream-stale', table: 'compiled', key: 1 }] })
      expect((await store.status(ran, 2)).state).toBe('fresh')
      expect(await store.status(ran, 42)).toEqual({ table: 'ran', key: 42, state: 'missing', causes: [{ kind: 'no-input', table: 'ran', key: 42 }] })
      await sql`DELETE FROM sources WHERE id = 2`.execute(db)
      expect((await store.status(parsed, 2)).causes).toEqual([expect.objectContaining({ kind: 'input-deleted', table: 'sources', key: 2 })])
    })

    it('R6 find all stale derived rows and run them', async () => {
      const { db } = tdb
      const { store } = await toy(db)
      const missing = await store.stale()
      expect(missing).toHaveLength(9)
      expect(new Set(missing.map((s) => s.state))).toEqual(new Set(['missing']))
      await store.refresh()
      expect(await store.stale()).toEqual([])
      await sql`UPDATE sources SET text = '7' WHERE id = 2`.execute(db)
      await sql`INSERT INTO sources (id, text) VALUES (4, '4 * 4')`.execute(db)
      const stale = await store.stale()
      expect(stale.map((s) => `${s.table}:${String(s.key)}:${s.state}`).sort()).toEqual(
        ['compiled:2:stale', 'compiled:4:missing', 'parsed:2:stale', 'parsed:4:missing', 'ran:2:stale', 'ran:4:missing'],
      )
      expect((await store.stale('ran')).map((s) => s.key).sort()).toEqual([2, 4])
      await store.refresh()
      expect(await store.stale()).toEqual([])
    })

    it('R7 given a changed root row, know which derived rows it makes stale, and run them', async () => {
      const { db } = tdb
      const { store } = await toy(db)
      await store.refresh()
      expect(await store.affected(sources, 2)).toEqual([
        { table: 'parsed', key: 2 },
        { table: 'compiled', key: 2 },
        { table: 'ran', key: 2 },
      ])
      await sql`UPDATE sources SET text = '8' WHERE id = 2`.execute(db)
      const stale = (await store.stale()).map((s) => ({ table: s.table, key: s.key }))
      expect(stale).toEqual(await store.affected(sources, 2))
      const r = await store.refresh()
      expect(r.totals.computed).toBe(3)
      expect(await store.affected(sources, 99)).toEqual([])
    })

    it('R8 demand one derived value: compute it and what it needs, nothing else', async () => {
      const { db } = tdb
      const { store, ran, calls } = await toy(db)
      const r = await store.get(ran, 2)
      expect(r).toEqual({ state: 'fresh', value: { value: 14 }, lineage: [{ table: 'sources', key: 2 }] })
      expect(calls).toEqual({ parse: 1, compile: 1, run: 1 })
      expect((await store.status(ran, 1)).state).toBe('missing')
      // Fresh: a second get computes nothing.
      await store.get(ran, 2)
      expect(calls).toEqual({ parse: 1, compile: 1, run: 1 })
      await sql`UPDATE sources SET text = '2 * 2' WHERE id = 2`.execute(db)
      expect(await store.get(ran, 2)).toMatchObject({ state: 'fresh', value: { value: 4 } })
      expect(calls).toEqual({ parse: 2, compile: 2, run: 2 })
      expect(await store.get(ran, 77)).toEqual({ state: 'missing', causes: [{ kind: 'no-input', table: 'ran', key: 77 }] })
    })

    it('R9 provenance: a derived row over a join of two roots records both, and a change to either stales exactly what it fed', async () => {
      const { db } = tdb
      const d = table('d', { id: t.Int, name: t.string })
      const e = table('e', { code: t.string, d_id: t.Int, weight: t.Int }, { key: 'code' })
      await createTable(db, d)
      await createTable(db, e)
      await insertRows(db, d, [{ id: 1, name: 'one' }, { id: 2, name: 'two' }])
      await insertRows(db, e, [{ code: 'a', d_id: 1, weight: 10 }, { code: 'b', d_id: 1, weight: 20 }, { code: 'c', d_id: 2, weight: 30 }])
      const store = await openStore(db)
      await store.track(d)
      await store.track(e)
      const labelled = store.derive({
        name: 'labelled',
        from: Q.for(d, (x) => Q.for(e, (y) => Q.where(Q.eq(x.id, y.d_id), Q.yield({ name: x.name, weight: y.weight })))),
        output: { label: t.string },
        fn: (r) => ({ label: `${r.name}:${r.weight}` }),
      })
      const shout = store.derive({ name: 'shout', from: labelled, output: { s: t.string }, fn: (r) => ({ s: r.label.toUpperCase() }) })
      await store.refresh()
      const key = [{ table: 'd', key: 1 }, { table: 'e', key: 'b' }]
      expect(await store.get(shout, key)).toEqual({ state: 'fresh', value: { s: 'ONE:20' }, lineage: key })
      expect(plainLineage(await store.lineage(Q.for(shout, (s) => Q.yield(s.s))))).toEqual(
        expect.arrayContaining([{ data: 'TWO:30', lineage: [{ table: 'd', key: 2 }, { table: 'e', key: 'c' }] }]),
      )
      // plain lineage(q) over the derived table names both roots' rows too
      expect(await run(db, lineage(Q.for(shout, (s) => Q.yield(s.s))))).toEqual(
        expect.arrayContaining([{ data: 'TWO:30', lineage: [{ table: 'd', key: 2 }, { table: 'e', key: 'c' }] }]),
      )
      // A change to D row 1 stales exactly the two rows it fed (in both tables); to E row c, one.
      await sql`UPDATE d SET name = 'uno' WHERE id = 1`.execute(db)
      await sql`UPDATE e SET weight = 31 WHERE code = 'c'`.execute(db)
      const stale = await store.stale()
      const keyed = (s: { table: string; key: unknown }) => `${s.table} ${JSON.stringify(s.key)}`
      expect(stale.map(keyed).sort()).toEqual(
        [
          'labelled [{"table":"d","key":1},{"table":"e","key":"a"}]',
          'labelled [{"table":"d","key":1},{"table":"e","key":"b"}]',
          'labelled [{"table":"d","key":2},{"table":"e","key":"c"}]',
          'shout [{"table":"d","key":1},{"table":"e","key":"a"}]',
          'shout [{"table":"d","key":1},{"table":"e","key":"b"}]',
          'shout [{"table":"d","key":2},{"table":"e","key":"c"}]',
        ].sort(),
      )
      expect((await store.affected(d, 1)).map(keyed)).toEqual([
        'labelled [{"table":"d","key":1},{"table":"e","key":"a"}]',
        'labelled [{"table":"d","key":1},{"table":"e","key":"b"}]',
        'shout [{"table":"d","key":1},{"table":"e","key":"a"}]',
        'shout [{"table":"d","key":1},{"table":"e","key":"b"}]',
      ])
      expect((await store.affected(e, 'c')).map(keyed)).toEqual(['labelled [{"table":"d","key":2},{"table":"e","key":"c"}]', 'shout [{"table":"d","key":2},{"table":"e","key":"c"}]'])
      const st = await store.status(labelled, [{ table: 'e', key: 'c' }, { table: 'd', key: 2 }])
      expect(st.causes).toEqual([expect.objectContaining({ kind: 'input-changed', table: 'e', key: 'c' })])
      const r = await store.refresh()
      expect(r.tables['labelled']).toMatchObject({ computed: 3 })
      expect((await values(db, shout)).map((x) => x['s']).sort()).toEqual(['TWO:31', 'UNO:10', 'UNO:20'])
      // A deleted E row takes its joined rows away; a new one adds rows.
      await sql`DELETE FROM e WHERE code = 'a'`.execute(db)
      await sql`INSERT INTO e (code, d_id, weight) VALUES ('z', 2, 5)`.execute(db)
      const r2 = await store.refresh()
      expect(r2.tables['labelled']).toMatchObject({ computed: 1, deleted: 1 })
      expect(r2.tables['shout']).toMatchObject({ computed: 1, deleted: 1 })
      expect((await values(db, shout)).map((x) => x['s']).sort()).toEqual(['TWO:31', 'TWO:5', 'UNO:20'])
    })

    it('R10 a process reading two derived tables joins their parallel rows on the common root (joinOnRoot), not a cross product', async () => {
      const { db } = tdb
      const { store, parsed, compiled } = await toy(db)
      const j = store.derive({
        name: 'listing',
        from: joinOnRoot({ p: parsed, c: compiled }),
        output: { text: t.string },
        fn: ({ p, c }) => ({ text: `${p.ast} => ${c.code}` }),
      })
      const r = await store.refresh()
      expect(r.tables['listing']).toMatchObject({ computed: 3 })
      const rows = await run(db, Q.for(j, (x) => Q.yield(x)))
      expect(rows.map((x) => x.lq_key).sort()).toEqual(['1', '2', '3']) // addressed by the root key
      expect(await store.get(j, 1)).toMatchObject({ state: 'fresh', value: { text: `${parse('1 + 2')} => push 1; push 2; add` }, lineage: [{ table: 'sources', key: 1 }] })
      await sql`UPDATE sources SET text = '5' WHERE id = 1`.execute(db)
      expect((await store.stale(j)).map((s) => s.key)).toEqual([1])
      await store.refresh()
      expect(await store.get(j, 1)).toMatchObject({ value: { text: '5 => push 5' } })
      expect(() => joinOnRoot({ p: parsed } as never)).toThrow(/at least two/)
    })

    it('R11 proactive: plain SQL finds missing rows and stale rows from revisions, driven by a watermark', async () => {
      const { db } = tdb
      const { store, parsed } = await toy(db)
      await store.refresh()
      await sql`INSERT INTO sources (id, text) VALUES (4, '4')`.execute(db)
      await sql`UPDATE sources SET text = '6' WHERE id = 1`.execute(db)
      expect((await store.stale(parsed)).map((s) => [s.key, s.state]).sort()).toEqual([[1, 'stale'], [4, 'missing']])
      // The metadata records the input revision each row was computed from.
      const meta = await sql<{ lq_key: string; lq_max_input_rev: unknown }>`SELECT lq_key, lq_max_input_rev FROM lq_meta_parsed ORDER BY lq_key`.execute(db)
      expect(Number(meta.rows[0]!.lq_max_input_rev)).toBeLessThan((await store.revision(sources, 1))!)
      const r = await store.refresh()
      expect(r.tables['parsed']).toMatchObject({ computed: 2 })
      // The watermark moved past every processed change.
      const wm = await sql<{ wm_rev: unknown }>`SELECT wm_rev FROM lq_derived WHERE name = 'parsed'`.execute(db)
      expect(Number(wm.rows[0]!.wm_rev)).toBeGreaterThanOrEqual((await store.revision(sources, 4))!)
      expect(await store.stale(parsed)).toEqual([])
      // A full refresh ignoring the watermark (it runs every function again) agrees that nothing
      // is stale: every result equals the stored one.
      const full = (await store.refresh({ full: true })).totals
      expect(full).toMatchObject({ computed: 0, failed: 0, deleted: 0 })
      expect(full.unchanged).toBeGreaterThan(0)
    })

    it('R12 eventual consistency: root writes are never blocked by a running derivation; staleness is checked on demand', async () => {
      const { db } = tdb
      await createTable(db, sources)
      await insertRows(db, sources, [{ id: 1, text: '1' }])
      const store = await openStore(db)
      await store.track(sources)
      const g = gate()
      const started = gate()
      const slow = store.derive({
        name: 'slow',
        from: sources,
        output: { v: t.Int },
        fn: async (s) => {
          started.open()
          await g.wait()
          return { v: Number(s.text) }
        },
      })
      const refreshing = store.refresh()
      await started.wait()
      // The function is running; a write to the root goes through at once.
      await sql`UPDATE sources SET text = '2' WHERE id = 1`.execute(db)
      await sql`INSERT INTO sources (id, text) VALUES (2, '3')`.execute(db)
      g.open()
      await refreshing
      // The stored result is from the old input; the row reports itself stale, and the next refresh fixes it.
      expect((await store.status(slow, 1)).state).toBe('stale')
      await store.refresh()
      expect((await values(db, slow)).map((r) => Number(r['v']))).toEqual([2, 3])
      expect(await store.stale()).toEqual([])
    })

    it('R13 never let an older computation overwrite a newer result (rev 22 finishing after rev 23)', async () => {
      const { db } = tdb
      await createTable(db, sources)
      await insertRows(db, sources, [{ id: 1, text: 'v22' }])
      const store = await openStore(db)
      await store.track(sources)
      const gates = new Map<string, ReturnType<typeof gate>>([['v22', gate()], ['v23', gate()]])
      const started: string[] = []
      const out = store.derive({
        name: 'out',
        from: sources,
        output: { text: t.string, rev: t.Int },
        fn: async (s, ctx) => {
          started.push(s.text)
          await gates.get(s.text)!.wait()
          return { text: s.text, rev: ctx.key as number }
        },
      })
      const rev22 = await store.revision(sources, 1)
      const first = store.refresh() // begin F on row:22
      while (started.length < 1) await tick()
      await sql`UPDATE sources SET text = 'v23' WHERE id = 1`.execute(db) // change data to rev 23
      const rev23 = await store.revision(sources, 1)
      expect(rev23).toBeGreaterThan(rev22!)
      const second = store.get(out, 1) // begin F on row:23
      while (started.length < 2) await tick()
      expect(started).toEqual(['v22', 'v23'])
      gates.get('v23')!.open() // finish F and store FT on rev 23
      expect(await second).toMatchObject({ state: 'fresh', value: { text: 'v23' } })
      gates.get('v22')!.open() // finish F and store FT on rev 22: must not overwrite
      const report = await first
      expect(report.tables['out']).toMatchObject({ computed: 0, superseded: 1 })
      const rows = await values(db, out)
      expect(rows.map((r) => r['text'])).toEqual(['v23'])
      const meta = await sql<{ lq_max_input_rev: unknown }>`SELECT lq_max_input_rev FROM lq_meta_out`.execute(db)
      expect(Number(meta.rows[0]!.lq_max_input_rev)).toBe(rev23)
      expect((await store.status(out, 1)).state).toBe('fresh')
    })

    it('R14 the dependency graph is known statically: cycles rejected by name, topological order, drawings', async () => {
      const { db } = tdb
      const { store } = await toy(db)
      const g = store.graph()
      expect(g.order).toEqual(['sources', 'parsed', 'compiled', 'ran'])
      expect(g.edges).toEqual([{ from: 'sources', to: 'parsed' }, { from: 'parsed', to: 'compiled' }, { from: 'compiled', to: 'ran' }])
      expect(g.mermaid).toMatch(/ t\d+_parsed --> t\d+_compiled$/m)
      expect(g.dot).toContain('"compiled" -> "ran";')
      const e = await expectError(() => buildGraph({ roots: ['d'], derived: [{ name: 'a', reads: ['d', 'c'] }, { name: 'b', reads: ['a'] }, { name: 'c', reads: ['b'] }] }), 'schema', 'cycle')
      expect(e.message).toMatch(/a -> c -> b -> a|c -> b -> a -> c|b -> a -> c -> b/)
      // A derivation reading itself (a table declared under the name it is about to get).
      await expectError(() => store.derive({ name: 'loop', from: table('loop', { x: t.Int }, { key: 'x' }), output: { y: t.Int }, fn: (r) => ({ y: r.x }) }), 'schema', 'cycle', 'loop -> loop')
    })

    it('R16 errors are results: stored, shown, not retried, and downstream rows are blocked without running', async () => {
      const { db } = tdb
      const { store, parsed, compiled, ran, calls } = await toy(db, [{ id: 1, text: '1 +' }, { id: 2, text: '2' }])
      const bad = store.derive({ name: 'bad', from: parsed, output: { n: t.Int }, fn: () => ({ n: 'not a number' }) as never })
      let zipCalls = 0
      const both = store.derive({ name: 'both', from: joinOnRoot({ p: parsed, r: ran }), output: { s: t.string }, fn: ({ p, r }) => (zipCalls++, { s: `${p.ast}=${r.value}` }) })
      const r = await store.refresh()
      expect(r.tables['both']).toMatchObject({ computed: 1, blocked: 1 })
      expect(zipCalls).toBe(1)
      expect(await store.status(both, 1)).toEqual({ table: 'both', key: 1, state: 'blocked', causes: [{ kind: 'upstream-failed', table: 'parsed', key: 1 }] })
      expect(r.tables['parsed']).toMatchObject({ computed: 1, failed: 1 })
      expect(r.tables['compiled']).toMatchObject({ computed: 1, blocked: 1 })
      expect(r.tables['ran']).toMatchObject({ computed: 1, blocked: 1 })
      expect(r.tables['bad']).toMatchObject({ failed: 1, blocked: 1 })
      expect(calls).toEqual({ parse: 2, compile: 1, run: 1 })
      const st = await store.status(parsed, 1)
      expect(st).toEqual({ table: 'parsed', key: 1, state: 'failed', causes: [{ kind: 'error', table: 'parsed', key: 1, message: 'unexpected end of input' }] })
      expect(await store.status(ran, 1)).toEqual({ table: 'ran', key: 1, state: 'blocked', causes: [{ kind: 'upstream-failed', table: 'parsed', key: 1 }] })
      const got = await store.get(parsed, 1)
      expect(got.state).toBe('failed')
      if (got.state === 'failed') {
        expect(got.error.message).toBe('unexpected end of input')
        expect(got.error.stack).toContain('parse')
      }
      expect((await store.get(bad, 2)).state).toBe('failed')
      expect((await store.status(bad, 2)).causes[0]).toMatchObject({ kind: 'error', message: expect.stringContaining('column `n`: expected Int') })
      // Failed rows are not in the data tables.
      expect((await values(db, compiled)).map((x) => x['lq_key'])).toEqual(['2'])
      // Not retried while nothing changes.
      await store.refresh()
      expect(calls).toEqual({ parse: 2, compile: 1, run: 1 })
      expect(await store.stale()).toEqual([])
      // Fix the input: recomputed, downstream unblocked.
      await sql`UPDATE sources SET text = '1 + 1' WHERE id = 1`.execute(db)
      await store.refresh()
      expect(await store.status(ran, 1)).toEqual({ table: 'ran', key: 1, state: 'fresh', causes: [] })
      expect(await store.get(ran, 1)).toMatchObject({ value: { value: 2 } })
      expect(await store.get(both, 1)).toMatchObject({ state: 'fresh', value: { s: `${parse('1 + 1')}=2` } })
    })

    it('R15 (in-process part) concurrent get and refresh calls compute each row once', async () => {
      const { db } = tdb
      const { store, ran, calls } = await toy(db)
      await Promise.all([store.get(ran, 1), store.get(ran, 1), store.get(ran, 2), store.refresh(), store.get(ran, 1), store.refresh()])
      expect(calls).toEqual({ parse: 3, compile: 3, run: 3 })
      expect(await store.stale()).toEqual([])
    })

    it('bad declarations fail at derive / openStore with clear errors', async () => {
      const { db } = tdb
      const { store, parsed } = await toy(db)
      const untracked = table('untracked', { id: t.Int })
      await expectError(() => store.derive({ name: 'x1', from: untracked, output: { a: t.Int }, fn: () => ({ a: 1 }) }), 'schema', '`untracked`', 'store.track')
      await expectError(() => store.derive({ name: 'x2', from: Q.for(sources, (s) => Q.yield((s as any).nope)), output: { a: t.Int }, fn: () => ({ a: 1 }) }), 'unknown-column', 'nope')
      await expectError(() => store.derive({ name: 'parsed', from: sources, output: { a: t.Int }, fn: () => ({ a: 1 }) }), 'schema', 'already declared')
      await expectError(() => store.derive({ name: 'sources', from: parsed, output: { a: t.Int }, fn: () => ({ a: 1 }) }), 'schema', 'tracked root')
      await expectError(() => store.derive({ name: 'x3', from: sources, output: { a: t.array(t.string) } as any, fn: () => ({ a: 1 }) }), 'schema', 'does not fit a SQL column')
      await expectError(() => store.derive({ name: 'x4', from: sources, output: { lq_state: t.string }, fn: () => ({ lq_state: '' }) }), 'schema', 'reserved')
      // An output that does not fit a table already in the database: reported on first use.
      await sql`CREATE TABLE clash (lq_key text PRIMARY KEY, a text NOT NULL)`.execute(db)
      store.derive({ name: 'clash', from: sources, output: { a: t.Int }, fn: () => ({ a: 1 }) })
      await expectError(store.refresh(), 'schema', 'derived table `clash`', 'column `a` has type text')
      await expectError(store.track(table('nowhere', { id: t.Int })), 'schema', 'does not exist')
    })

    it('the store schema is versioned: a schema-version row, idempotent open, newer versions refused', async () => {
      const { db } = tdb
      await openStore(db)
      await openStore(db)
      const v = await sql<{ value: string }>`SELECT value FROM lq_store_meta WHERE name = 'schema_version'`.execute(db)
      expect(v.rows).toEqual([{ value: '5' }])
      // A store at version 1 (no tombstones yet, no claim table) is migrated to 5.
      await sql`UPDATE lq_store_meta SET value = '1' WHERE name = 'schema_version'`.execute(db)
      await openStore(db)
      expect((await sql<{ value: string }>`SELECT value FROM lq_store_meta WHERE name = 'schema_version'`.execute(db)).rows).toEqual([{ value: '5' }])
      await sql`UPDATE lq_store_meta SET value = '99' WHERE name = 'schema_version'`.execute(db)
      await expectError(openStore(db), 'schema', 'schema version 99')
    })
  })
}
