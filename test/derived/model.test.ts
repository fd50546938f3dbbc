/**
 * Model test: random pipelines (chains, diamonds via joinOnRoot, two-root joins), random
 * sequences of root inserts, updates and deletes, code-version changes, failing inputs,
 * demand-driven gets and refreshes. After a final refresh, every derived row must equal its
 * function applied to the current inputs as an in-memory model computes it, every state must be
 * what the model says (ok / failed / blocked), nothing may be stale, and `affected` must match
 * the model's lineage. On SQLite and PostgreSQL.
 *
 * The second property runs two workers (two stores, two owners) on one database: worker A's
 * refresh is held in a chosen call between its claim and its write while root writes (often of
 * the very row it computes) and worker B's refreshes run, with A's leases expired meanwhile
 * (B takes its rows over; A's late results meet the fence and the monotonic guard) or live (B
 * waits for A). After each such step, no stored row's input revision went back and every row
 * not listed as stale is its function of the current inputs; at the end, as above, and no claim
 * or edge is left behind. Checked to fail with the write guard and the fence both disabled.
 */
import fc from 'fast-check'
import * as t from 'io-ts'
import { sql, type Kysely } from 'kysely'
import { describe, expect, it } from 'vitest'
import { createTable } from '../../src/query/ddl.js'
import { Q, table } from '../../src/query/dsl.js'
import { joinOnRoot, openStore, type DerivedTable, type Store } from '../../src/derived/index.js'
import { dialectNames, open, type DialectName } from '../support/db.js'
import { assertAsyncProperty, SEED } from '../support/seed.js'
import { derivedInfo } from '../../src/derived/types.js'

const roots = { d: table('d', { id: t.Int, v: t.Int }), e: table('e', { id: t.Int, v: t.Int }) }
type RootName = keyof typeof roots

type Spec =
  | { kind: 'root'; root: RootName }
  | { kind: 'derived'; from: number }
  | { kind: 'zip'; a: number; b: number }
  | { kind: 'two'; shape: TwoShape }

/**
 * Comprehensions over two roots (or one root twice): a key join, a band join whose pairs come
 * and go as values change, a self-join, and a predicate-only read of the second root (a change
 * to it is found by evaluating the whole comprehension; the others by delta evaluation).
 */
type TwoShape = 'eq' | 'band' | 'self' | 'exists'

type Op =
  | { op: 'put'; root: RootName; id: number; v: number }
  | { op: 'delete'; root: RootName; id: number }
  | { op: 'code'; table: number }
  | { op: 'refresh'; batchSize?: number }
  | { op: 'get'; table: number; id: number }

/** The function of table i at code version c: fails on 13, else a small hash. */
function f(c: number, x: number): number {
  if (x === 13) throw new Error(`thirteen (code ${c})`)
  return (x * (c + 2) + c) % 17
}

/** Roots of each spec (for validity of joinOnRoot); specs that do not fit become chains. */
function normalise(specs: readonly Spec[]): Spec[] {
  const out: Spec[] = []
  const rootsOf: (RootName[])[] = []
  for (const s of specs) {
    let spec = s
    if (spec.kind === 'derived' || spec.kind === 'zip') {
      if (out.length === 0) spec = { kind: 'root', root: 'd' }
      else if (spec.kind === 'derived') spec = { kind: 'derived', from: spec.from % out.length }
      else {
        const a = spec.a % out.length
        const b = spec.b % out.length
        const ra = rootsOf[a]!
        const rb = rootsOf[b]!
        spec = a !== b && ra.length === 1 && rb.length === 1 && ra[0] === rb[0] ? { kind: 'zip', a, b } : { kind: 'derived', from: a }
      }
    }
    out.push(spec)
    rootsOf.push(spec.kind === 'root' ? [spec.root] : spec.kind === 'two' ? (spec.shape === 'self' ? ['d'] : ['d', 'e']) : spec.kind === 'derived' ? rootsOf[spec.from]! : rootsOf[spec.a]!)
  }
  return out
}

const specArb: fc.Arbitrary<Spec> = fc.oneof(
  fc.record({ kind: fc.constant('root' as const), root: fc.constantFrom<RootName>('d', 'e') }),
  fc.record({ kind: fc.constant('derived' as const), from: fc.nat(5) }),
  fc.record({ kind: fc.constant('zip' as const), a: fc.nat(5), b: fc.nat(5) }),
  fc.record({ kind: fc.constant('two' as const), shape: fc.constantFrom<TwoShape>('eq', 'band', 'self', 'exists') }),
)
const value = fc.oneof({ weight: 4, arbitrary: fc.nat(15) }, { weight: 1, arbitrary: fc.constant(13) })
const opArb = (tables: number): fc.Arbitrary<Op> =>
  fc.oneof(
    { weight: 5, arbitrary: fc.record({ op: fc.constant('put' as const), root: fc.constantFrom<RootName>('d', 'e'), id: fc.nat(3), v: value }) },
    { weight: 2, arbitrary: fc.record({ op: fc.constant('delete' as const), root: fc.constantFrom<RootName>('d', 'e'), id: fc.nat(3) }) },
    { weight: 1, arbitrary: fc.record({ op: fc.constant('code' as const), table: fc.nat(tables - 1) }) },
    // Small batches: several write batches per refresh, and first fills that read whole input tables.
    { weight: 2, arbitrary: fc.oneof(fc.constant({ op: 'refresh' as const }), fc.record({ op: fc.constant('refresh' as const), batchSize: fc.integer({ min: 1, max: 3 }) })) },
    { weight: 1, arbitrary: fc.record({ op: fc.constant('get' as const), table: fc.nat(tables - 1), id: fc.nat(3) }) },
  )
const scenario = fc
  .array(specArb, { minLength: 1, maxLength: 5 })
  .map(normalise)
  .chain((specs) => fc.record({ specs: fc.constant(specs), ops: fc.array(opArb(specs.length), { maxLength: 14 }) }))

const name = (i: number) => `t${i}`

/**
 * A point where a worker's function call can wait (the two-worker model holds one call of
 * worker A between its claim and its write): `undefined` to run on at once.
 */
type Hook = (table: number, lineage: readonly { table: string; key: unknown }[]) => Promise<void> | undefined

/** `f(c, x)` once `hook` (if any) lets the call of table `i` (of a row with root lineage `lineage`) go on. */
const call = (hook: Hook | undefined, i: number, lineage: readonly { table: string; key: unknown }[], c: number, x: () => number): { n: number } | Promise<{ n: number }> => {
  const wait = hook?.(i, lineage)
  return wait === undefined ? { n: f(c, x()) } : wait.then(() => ({ n: f(c, x()) }))
}

function declare(store: Store, specs: readonly Spec[], codes: readonly number[], hook?: Hook): DerivedTable<string, { n: number }>[] {
  const tables: DerivedTable<string, { n: number }>[] = []
  specs.forEach((s, i) => {
    const c = codes[i]!
    const base = { name: name(i), output: { n: t.Int }, version: String(c) }
    let tbl: DerivedTable<string, { n: number }>
    if (s.kind === 'root') tbl = store.derive({ ...base, from: roots[s.root], fn: (r, ctx) => call(hook, i, ctx.lineage, c, () => r.v) })
    else if (s.kind === 'derived') tbl = store.derive({ ...base, from: tables[s.from]!, fn: (r, ctx) => call(hook, i, ctx.lineage, c, () => r.n) })
    else if (s.kind === 'zip') tbl = store.derive({ ...base, from: joinOnRoot({ a: tables[s.a]!, b: tables[s.b]! }), fn: ({ a, b }, ctx) => call(hook, i, ctx.lineage, c, () => a.n + b.n) })
    else if (s.shape === 'exists') {
      tbl = store.derive({
        ...base,
        from: Q.for(roots.d, (x) => Q.where(Q.exists(Q.for(roots.e, (y) => Q.where(Q.and(Q.eq(y.id, x.id), Q.gt(y.v, 5)), Q.yield(y.v)))), Q.yield({ dv: x.v, ev: 0 }))),
        fn: (r, ctx) => call(hook, i, ctx.lineage, c, () => r.dv + r.ev),
      })
    } else {
      const other = s.shape === 'self' ? roots.d : roots.e
      tbl = store.derive({
        ...base,
        from: Q.for(roots.d, (x) =>
          Q.for(other, (y) =>
            Q.where(s.shape === 'eq' ? Q.eq(x.id, y.id) : s.shape === 'band' ? Q.le(Q.abs(Q.sub(x.v, y.v)), 3) : Q.lt(x.id, y.id), Q.yield({ dv: x.v, ev: y.v })),
          ),
        ),
        fn: (r, ctx) => call(hook, i, ctx.lineage, c, () => r.dv + r.ev),
      })
    }
    tables.push(tbl)
  })
  return tables
}

type St = { state: 'ok'; n: number } | { state: 'failed' } | { state: 'blocked' }

/** The address of a two-root row from its entries (sorted by table, then key text, as the engine does). */
const entriesKey = (entries: readonly [string, number][]): string => JSON.stringify([...entries].sort((a, b) => (a[0] + a[1] < b[0] + b[1] ? -1 : 1)))
/** The entries `get` asks for with id `id`, for each shape. */
const getEntries = (shape: TwoShape, id: number): [string, number][] =>
  shape === 'exists' ? [['d', id]] : shape === 'self' ? [['d', id], ['d', (id + 1) % 4]] : [['d', id], ['e', id]]

/** The model: every derived table's rows (address -> state) and each row's root lineage. */
function model(specs: readonly Spec[], codes: readonly number[], data: Record<RootName, Map<number, number>>) {
  const tables: Map<string, St>[] = []
  const lin: Map<string, string[]>[] = []
  const attempt = (c: number, x: number): St => {
    try {
      return { state: 'ok', n: f(c, x) }
    } catch {
      return { state: 'failed' }
    }
  }
  specs.forEach((s, i) => {
    const c = codes[i]!
    const rows = new Map<string, St>()
    const l = new Map<string, string[]>()
    if (s.kind === 'root') {
      for (const [id, v] of data[s.root]) {
        rows.set(String(id), attempt(c, v))
        l.set(String(id), [`${s.root} ${id}`])
      }
    } else if (s.kind === 'derived') {
      for (const [k, st] of tables[s.from]!) {
        rows.set(k, st.state === 'ok' ? attempt(c, st.n) : { state: 'blocked' })
        l.set(k, lin[s.from]!.get(k)!)
      }
    } else if (s.kind === 'zip') {
      for (const [k, a] of tables[s.a]!) {
        const b = tables[s.b]!.get(k)
        if (b === undefined) continue
        rows.set(k, a.state === 'ok' && b.state === 'ok' ? attempt(c, a.n + b.n) : { state: 'blocked' })
        l.set(k, lin[s.a]!.get(k)!)
      }
    } else {
      const other = s.shape === 'self' ? data.d : data.e
      for (const [id, dv] of data.d) {
        if (s.shape === 'exists') {
          if (!((data.e.get(id) ?? 0) > 5)) continue
          const k = entriesKey([['d', id]])
          rows.set(k, attempt(c, dv))
          l.set(k, [`d ${id}`])
          continue
        }
        for (const [id2, ev] of other) {
          if (s.shape === 'eq' ? id !== id2 : s.shape === 'band' ? Math.abs(dv - ev) > 3 : !(id < id2)) continue
          const k = entriesKey([['d', id], [s.shape === 'self' ? 'd' : 'e', id2]])
          rows.set(k, attempt(c, dv + ev))
          l.set(k, [`d ${id}`, `${s.shape === 'self' ? 'd' : 'e'} ${id2}`])
        }
      }
    }
    tables.push(rows)
    lin.push(l)
  })
  return { tables, lin }
}

async function actual(db: Kysely<any>, i: number): Promise<Map<string, St>> {
  const meta = await sql<{ lq_key: string; lq_state: string }>`SELECT lq_key, lq_state FROM ${sql.id(`lq_meta_${name(i)}`)} WHERE lq_state <> 'deleted'`.execute(db)
  const data = await sql<{ lq_key: string; n: unknown }>`SELECT lq_key, n FROM ${sql.id(name(i))}`.execute(db)
  const ns = new Map(data.rows.map((r) => [r.lq_key, Number(r.n)]))
  const out = new Map<string, St>()
  for (const m of meta.rows) {
    out.set(m.lq_key, m.lq_state === 'ok' ? { state: 'ok', n: ns.get(m.lq_key)! } : { state: m.lq_state as 'failed' | 'blocked' })
  }
  expect(ns.size).toBe([...out.values()].filter((s) => s.state === 'ok').length)
  return out
}

const sorted = <V>(m: Map<string, V>) => [...m.entries()].sort((a, b) => (a[0] < b[0] ? -1 : 1))

for (const dialect of dialectNames) {
  describe(`derived-data model [${dialect}]`, () => {
    it('after a final refresh, every derived row is its function of the current inputs', async () => {
      await assertAsyncProperty(
        fc.asyncProperty(scenario, async ({ specs, ops }) => {
          const tdb = await open(dialect)
          try {
            const { db } = tdb
            for (const r of Object.values(roots)) await createTable(db, r)
            const codes = specs.map(() => 0)
            let store = await openStore(db)
            for (const r of Object.values(roots)) await store.track(r)
            let tables = declare(store, specs, codes)
            const data: Record<RootName, Map<number, number>> = { d: new Map(), e: new Map() }
            for (const o of ops) {
              if (o.op === 'put') {
                if (data[o.root].has(o.id)) await sql`UPDATE ${sql.id(o.root)} SET v = ${o.v} WHERE id = ${o.id}`.execute(db)
                else await sql`INSERT INTO ${sql.id(o.root)} (id, v) VALUES (${o.id}, ${o.v})`.execute(db)
                data[o.root].set(o.id, o.v)
              } else if (o.op === 'delete') {
                await sql`DELETE FROM ${sql.id(o.root)} WHERE id = ${o.id}`.execute(db)
                data[o.root].delete(o.id)
              } else if (o.op === 'code') {
                codes[o.table]! += 1
                store = await openStore(db)
                for (const r of Object.values(roots)) await store.track(r)
                tables = declare(store, specs, codes)
              } else if (o.op === 'refresh') {
                await store.refresh(o.batchSize === undefined ? {} : { batchSize: o.batchSize })
              } else {
                const spec = specs[o.table]!
                const entries = spec.kind === 'two' ? getEntries(spec.shape, o.id) : undefined
                const key = entries === undefined ? o.id : entries.map(([table, k]) => ({ table, key: k }))
                // A table addressed by root lineage lists refuses a plain key (it named no row).
                if (entries === undefined && derivedInfo(tables[o.table])?.singleRoot === false) {
                  await expect(store.get(tables[o.table]!, key)).rejects.toMatchObject({ code: 'argument' })
                  continue
                }
                const got = await store.get(tables[o.table]!, key)
                const want = model(specs, codes, data).tables[o.table]!.get(entries === undefined ? String(o.id) : entriesKey(entries))
                if (want === undefined) expect(got.state).toBe('missing')
                else expect(got.state === 'fresh' ? { state: 'ok', n: (got.value as { n: number }).n } : { state: got.state }).toEqual(want)
              }
            }
            await store.refresh()
            const m = model(specs, codes, data)
            for (let i = 0; i < specs.length; i++) {
              expect(sorted(await actual(db, i))).toEqual(sorted(m.tables[i]!))
            }
            expect(await store.stale()).toEqual([])
            for (let i = 0; i < specs.length; i++) {
              for (const [k, st] of m.tables[i]!) {
                const key = JSON.parse(k) as unknown
                const user = Array.isArray(key) ? key.map(([table, kk]: [string, unknown]) => ({ table, key: kk })) : key
                const s = await store.status(tables[i]!, user)
                expect(s.state).toBe(st.state === 'ok' ? 'fresh' : st.state)
              }
            }
            // affected: the rows whose lineage holds the root row; for a table that reads e only
            // inside `exists` (and tables derived from it), every row (any e row may change any).
            const readsEOpaquely: boolean[] = []
            specs.forEach((sp) => readsEOpaquely.push(sp.kind === 'two' ? sp.shape === 'exists' : sp.kind === 'derived' ? readsEOpaquely[sp.from]! : sp.kind === 'zip' ? readsEOpaquely[sp.a]! || readsEOpaquely[sp.b]! : false))
            for (const root of ['d', 'e'] as const) {
              for (let id = 0; id < 4; id++) {
                const want: string[] = []
                m.lin.forEach((l, i) => {
                  for (const [k, entries] of l) if (entries.includes(`${root} ${id}`) || (root === 'e' && readsEOpaquely[i]!)) want.push(`${name(i)} ${k}`)
                })
                const got = (await store.affected(roots[root], id)).map((a) => `${a.table} ${typeof a.key === 'number' ? String(a.key) : JSON.stringify((a.key as { table: string; key: unknown }[]).map((e) => [e.table, e.key]))}`)
                expect(got.sort()).toEqual(want.sort())
              }
            }
          } finally {
            await tdb.close()
          }
        }),
        { numRuns: Number(process.env['LQ_MODEL_RUNS'] ?? 0) || (dialect === 'sqlite' ? 60 : 20) },
      )
    }, 300_000)
  })
}

// ---------------------------------------------------------------- two workers, leases expiring

/**
 * What happens while worker A's call is held between its claim and its write: root writes,
 * and refreshes of worker B (another store on the same database, another owner).
 */
type During =
  | { op: 'put'; root: RootName; id: number; v: number }
  | { op: 'delete'; root: RootName; id: number }
  | { op: 'refreshB'; batchSize?: number | undefined }
  /** A write to a root row the held call read (entry `entry` of its lineage): its result is now older than the input. */
  | { op: 'touch'; entry: number; v: number; remove: boolean }

type WorkerOp =
  | { op: 'put'; root: RootName; id: number; v: number }
  | { op: 'delete'; root: RootName; id: number }
  | { op: 'refresh'; who: 'A' | 'B'; batchSize?: number | undefined }
  /**
   * Worker A refreshes, and its first call on table `table` is held (after the batch was
   * claimed, before it is written) while `during` runs. `expire`: A's claims are expired again
   * and again meanwhile (as if its heartbeats had stopped), so B takes its rows over and A's
   * late results meet the fence; else A's leases stay live and B's refreshes wait for A (they
   * run in the background and finish after A is let go).
   */
  | { op: 'stall'; table: number; expire: boolean; batchSize?: number | undefined; during: During[] }

const putArb = fc.record({ op: fc.constant('put' as const), root: fc.constantFrom<RootName>('d', 'e'), id: fc.nat(3), v: value })
const deleteArb = fc.record({ op: fc.constant('delete' as const), root: fc.constantFrom<RootName>('d', 'e'), id: fc.nat(3) })
const batchArb = fc.option(fc.integer({ min: 1, max: 3 }), { nil: undefined })
const duringArb: fc.Arbitrary<During> = fc.oneof(
  { weight: 3, arbitrary: putArb },
  { weight: 1, arbitrary: deleteArb },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('refreshB' as const), batchSize: batchArb }) },
  { weight: 3, arbitrary: fc.record({ op: fc.constant('touch' as const), entry: fc.nat(1), v: value, remove: fc.boolean() }) },
)
const workerOpArb = (tables: number): fc.Arbitrary<WorkerOp> =>
  fc.oneof(
    { weight: 4, arbitrary: putArb },
    { weight: 1, arbitrary: deleteArb },
    { weight: 1, arbitrary: fc.record({ op: fc.constant('refresh' as const), who: fc.constantFrom<'A' | 'B'>('A', 'B'), batchSize: batchArb }) },
    {
      weight: 4,
      arbitrary: fc.record({
        op: fc.constant('stall' as const),
        table: fc.nat(tables - 1),
        expire: fc.boolean(),
        batchSize: batchArb,
        // Mostly: the held call's input changes, then B computes the row from the newer input.
        during: fc.oneof(
          fc.tuple(fc.record({ op: fc.constant('touch' as const), entry: fc.nat(1), v: value, remove: fc.boolean() }), fc.array(duringArb, { maxLength: 2 })).map(([t, rest]): During[] => [t, ...rest, { op: 'refreshB' }]),
          fc.array(duringArb, { minLength: 1, maxLength: 4 }),
        ),
      }),
    },
  )
const workerScenario = fc
  .array(specArb, { minLength: 1, maxLength: 4 })
  .map(normalise)
  .chain((specs) =>
    fc.record({
      specs: fc.constant(specs),
      // Rows to start with, so that most stalls find a call to hold.
      initial: fc.array(putArb, { minLength: 2, maxLength: 8 }),
      ops: fc.array(workerOpArb(specs.length), { minLength: 1, maxLength: 6 }),
    }),
  )

/** A row key as `stale()` and `affected()` give it, as the address text the model uses. */
const addressOf = (key: unknown): string => (typeof key === 'number' ? String(key) : JSON.stringify((key as { table: string; key: unknown }[]).map((e) => [e.table, e.key])))

/** One call of a worker held at a chosen table: `arm(table)`, then the next call there waits until `release()`. */
function gate() {
  let table: number | undefined
  /** The root lineage of the call held last. */
  let lineage: readonly { table: string; key: unknown }[] = []
  let open!: () => void
  let opened = Promise.resolve()
  let reached!: () => void
  let held = new Promise<void>((r) => (reached = r))
  return {
    arm(t: number): Promise<void> {
      table = t
      opened = new Promise<void>((r) => (open = r))
      held = new Promise<void>((r) => (reached = r))
      return held
    },
    get lineage() {
      return lineage
    },
    hook: ((i: number, l: readonly { table: string; key: unknown }[]) => {
      if (i !== table) return undefined
      table = undefined
      lineage = l
      reached()
      return opened
    }) satisfies Hook,
    release(): void {
      table = undefined
      open?.()
    },
  }
}

type WorkerScenario = { specs: Spec[]; initial: WorkerOp[]; ops: WorkerOp[] }

/** One two-worker scenario on a fresh database of `dialect`, checked as the property says. */
async function twoWorkers(dialect: DialectName, { specs, initial, ops }: WorkerScenario): Promise<void> {
  const tdb = await open(dialect)
  try {
    const { db } = tdb
    for (const r of Object.values(roots)) await createTable(db, r)
    const codes = specs.map(() => 0)
    const g = gate()
    // A long lease: no heartbeat runs during a scenario, expiry is the test's doing.
    const A = await openStore(db, { leaseMs: 600_000 })
    const B = await openStore(db, { leaseMs: 600_000 })
    for (const s of [A, B]) for (const r of Object.values(roots)) await s.track(r)
    declare(A, specs, codes, g.hook)
    declare(B, specs, codes)
    const data: Record<RootName, Map<number, number>> = { d: new Map(), e: new Map() }
    const write = async (o: During | WorkerOp): Promise<void> => {
      if (o.op === 'put') {
        if (data[o.root].has(o.id)) await sql`UPDATE ${sql.id(o.root)} SET v = ${o.v} WHERE id = ${o.id}`.execute(db)
        else await sql`INSERT INTO ${sql.id(o.root)} (id, v) VALUES (${o.id}, ${o.v})`.execute(db)
        data[o.root].set(o.id, o.v)
      } else if (o.op === 'delete') {
        await sql`DELETE FROM ${sql.id(o.root)} WHERE id = ${o.id}`.execute(db)
        data[o.root].delete(o.id)
      }
    }
    const opts = (batchSize: number | undefined) => (batchSize === undefined ? {} : { batchSize })
    // Every row a store calls fresh (not listed by `stale()`) is its function of the
    // current inputs: a late result never overwrote a newer one unnoticed.
    const freshRowsAreRight = async (): Promise<void> => {
      const m = model(specs, codes, data)
      for (let i = 0; i < specs.length; i++) {
        const stale = new Set((await B.stale(name(i))).map((r) => addressOf(r.key)))
        for (const [k, st] of await actual(db, i)) {
          if (stale.has(k)) continue
          expect({ table: name(i), key: k, ...st }).toEqual({ table: name(i), key: k, ...m.tables[i]!.get(k) })
        }
      }
    }
    // No stale result overwrites a newer one: a stored row's input revision never goes back.
    for (const o of initial) await write(o)
    const seen = new Map<string, number>()
    const inputRevsOnlyGrow = async (): Promise<void> => {
      for (let i = 0; i < specs.length; i++) {
        const rows = await sql<{ lq_key: string; rev: unknown }>`SELECT lq_key, lq_max_input_rev AS rev FROM ${sql.id(`lq_meta_${name(i)}`)} WHERE lq_state <> 'deleted'`.execute(db)
        for (const r of rows.rows) {
          const k = `${name(i)} ${r.lq_key}`
          const rev = Number(r.rev)
          expect({ row: k, rev: Math.max(rev, seen.get(k) ?? rev) }).toEqual({ row: k, rev })
          seen.set(k, rev)
        }
      }
    }
    for (const o of ops) {
      if (o.op === 'put' || o.op === 'delete') await write(o)
      else if (o.op === 'refresh') await (o.who === 'A' ? A : B).refresh(opts(o.batchSize))
      else {
        const held = g.arm(o.table)
        const ra = A.refresh(opts(o.batchSize))
        // A reaches the held call, or has nothing to compute there and finishes.
        const stalled = await Promise.race([held.then(() => true), ra.then(() => false)])
        let expiring = o.expire && stalled
        const expirer = (async () => {
          while (expiring) {
            await sql`UPDATE lq_claim SET expires = 0 WHERE owner = ${A.owner}`.execute(db)
            await sql`UPDATE lq_claim_range SET expires = 0 WHERE owner = ${A.owner}`.execute(db)
            await new Promise((r) => setTimeout(r, 5))
          }
        })()
        const background: Promise<unknown>[] = []
        for (const d of o.during) {
          if (d.op === 'touch') {
            const e = g.lineage[d.entry % Math.max(1, g.lineage.length)]
            if (stalled && e !== undefined && (e.table === 'd' || e.table === 'e')) {
              const root = e.table as RootName
              // A root lineage entry's key is the root row's key (an id here), never a list.
              expect({ entry: e, isId: Number.isSafeInteger(e.key) }).toEqual({ entry: e, isId: true })
              const id = e.key as number
              await write(d.remove ? { op: 'delete', root, id } : { op: 'put', root, id, v: d.v })
            }
          } else if (d.op !== 'refreshB') await write(d)
          else if (!stalled || o.expire) {
            await B.refresh(opts(d.batchSize))
            await inputRevsOnlyGrow()
          }
          // A's leases are live: B waits for A's rows, so it runs on while A is let go.
          else background.push(B.refresh(opts(d.batchSize)))
        }
        expiring = false
        await expirer
        g.release()
        await ra
        await Promise.all(background)
        await inputRevsOnlyGrow()
        await freshRowsAreRight()
      }
    }
    await A.refresh()
    await B.refresh()
    const m = model(specs, codes, data)
    for (let i = 0; i < specs.length; i++) expect(sorted(await actual(db, i))).toEqual(sorted(m.tables[i]!))
    expect(await A.stale()).toEqual([])
    expect(await B.stale()).toEqual([])
    // Nothing orphaned: no claim left behind, no edge of a row that is gone.
    expect(Number((await sql<{ n: unknown }>`SELECT (SELECT count(*) FROM lq_claim) + (SELECT count(*) FROM lq_claim_range) AS n`.execute(db)).rows[0]!.n)).toBe(0)
    for (const [i, s] of specs.entries()) {
      if (s.kind !== 'two') continue
      const edges = await sql<{ lq_key: string }>`SELECT DISTINCT dst_key AS lq_key FROM lq_edge WHERE dst_table = ${name(i)}`.execute(db)
      for (const e of edges.rows) expect(m.tables[i]!.has(e.lq_key)).toBe(true)
    }
  } finally {
    await tdb.close()
  }
}

/**
 * Scenarios the property found failing, replayed as they are (the rule of test/support/seed.ts),
 * each named for what went wrong.
 */
const fixedWorkerScenarios: readonly { name: string; scenario: WorkerScenario }[] = [
  {
    // FC_SEED=1794098942: the held call of t2 (a zip of a self-join's rows) had the lineage
    // [{ table: 'd', key: [two entries] }], so its `touch` wrote root row NaN.
    name: 'a held joinOnRoot call over a self-join gets root rows as its lineage entries',
    scenario: {
      specs: [{ kind: 'two', shape: 'self' }, { kind: 'derived', from: 0 }, { kind: 'zip', a: 0, b: 1 }, { kind: 'zip', a: 2, b: 1 }],
      initial: [{ op: 'put', root: 'd', id: 1, v: 3 }, { op: 'put', root: 'd', id: 0, v: 0 }],
      ops: [
        { op: 'stall', table: 2, expire: false, during: [{ op: 'touch', entry: 0, v: 13, remove: false }] },
        { op: 'stall', table: 0, expire: false, during: [{ op: 'touch', entry: 0, v: 13, remove: false }] },
      ],
    },
  },
]

for (const dialect of dialectNames) {
  describe(`derived-data model, two workers [${dialect}]`, () => {
    for (const { name: what, scenario } of fixedWorkerScenarios) it(what, () => twoWorkers(dialect, scenario))
    it('two workers with leases expiring mid-computation and root writes in between: no stale result overwrites a newer one, fresh rows are right, nothing is orphaned', async () => {
      console.info(`two-worker model [${dialect}]: FC_SEED=${SEED}`)
      await assertAsyncProperty(
        fc.asyncProperty(workerScenario, (s) => twoWorkers(dialect, s)),
        { numRuns: Number(process.env['LQ_MODEL_RUNS'] ?? 0) || (dialect === 'sqlite' ? 25 : 8) },
      )
    }, 300_000)
  })
}
