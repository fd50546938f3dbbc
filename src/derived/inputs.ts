/**
 * Loading inputs: the rows a batch of work items reads, as tasks ready for the function. Root
 * and derived rows are read by key through the query layer (decoded by the tables' codecs),
 * with one compiled key lookup per table and list length; a first fill of a one-table
 * derivation reads its input table once (`inputLoader`). Comprehension work items carry their
 * tasks from the evaluation already.
 */
import { plan } from '../query/compile.js'
import { Q, type Query, type Table } from '../query/dsl.js'
import { run } from '../query/run.js'
import { assertNever, chunks, IN_CHUNK, type Derivation, type Engine, type Task, type UpstreamRow, type Work } from './engine.js'
import { keyText, lineageOfAddress } from './keys.js'
import { metaRows, type MetaRow } from './sql/reads.js'
import { exec } from './sql/text.js'

type AnyTable = Table<string, unknown, unknown>
type Row = Record<string, unknown>

/**
 * A key lookup compiled once per table, dialect and list length: the DSL query
 * `for r in T where r.key in (k1, ..., kn) yield r` built with placeholder keys, whose bound
 * parameters are replaced by the keys of each call. (`compile` caches per query object, so a
 * query built per call would be compiled per call.)
 */
interface KeyLookup {
  readonly sql: string
  readonly parameters: readonly unknown[]
  /** For key i, column c: the index of its parameter. */
  readonly slots: readonly (readonly number[])[]
  readonly decode: (rows: readonly Record<string, unknown>[]) => unknown[]
}

const lookups = new WeakMap<AnyTable, Map<string, KeyLookup | null>>()
const scans = new WeakMap<AnyTable, Query<Row, never>>()
const LOOKUP_KEYS = IN_CHUNK
const PLACEHOLDER_INT = -4_000_000_000_000_000 // far from any key a test or user writes; checked for uniqueness anyway

function lookupFor(engine: Engine, tbl: AnyTable, n: number): KeyLookup | null {
  let perTable = lookups.get(tbl)
  if (perTable === undefined) lookups.set(tbl, (perTable = new Map()))
  const cacheKey = `${engine.d.name}:${n}`
  const hit = perTable.get(cacheKey)
  if (hit !== undefined) return hit
  const keyCols = tbl.def.key!
  const kinds = keyCols.map((c) => tbl.def.byName.get(c)!.type.kind)
  let built: KeyLookup | null = null
  if (kinds.every((k) => k === 'int' || k === 'string')) {
    const placeholder = (i: number, c: number): number | string => (kinds[c] === 'int' ? PLACEHOLDER_INT + i * keyCols.length + c : `\uffff\uffffLQ${i}:${c}`)
    const values = Array.from({ length: n }, (_, i) => keyCols.map((_, c) => placeholder(i, c)))
    const query = keyQuery(tbl, values)
    const p = plan(query, engine.d.name, { bindConstants: true })
    const st = p.statements.length === 1 ? p.statements[0]! : undefined
    if (st !== undefined) {
      const slots = values.map((v) => v.map((ph) => (st.parameters.indexOf(ph) === st.parameters.lastIndexOf(ph) ? st.parameters.indexOf(ph) : -1)))
      if (slots.every((s) => s.every((i) => i >= 0))) built = { sql: st.sql, parameters: st.parameters, slots, decode: p.decode }
    }
  }
  perTable.set(cacheKey, built)
  return built
}

function keyQuery(tbl: AnyTable, values: readonly (readonly unknown[])[]): Query<Row, never> {
  const keyCols = tbl.def.key!
  return Q.for(tbl as Table<string, any, unknown>, (r: any) =>
    Q.where(
      keyCols.length === 1 ? Q.in(r[keyCols[0]!], values.map((v) => v[0]) as any[]) : Q.or(...values.map((v) => Q.and(...keyCols.map((c, i) => Q.eq(r[c], v[i] as any))))),
      Q.yield(r),
    ),
  ) as Query<Row, never>
}

const fitsKind = (kind: string, v: unknown): boolean => (kind === 'int' ? Number.isSafeInteger(v) : kind === 'string' ? typeof v === 'string' : false)

/** Rows of a table whose key text is in `keys`, keyed by key text (decoded through the codecs). */
export async function rowsByKey(engine: Engine, tbl: AnyTable, keys: readonly string[]): Promise<Map<string, Row>> {
  const keyCols = tbl.def.key!
  const kinds = keyCols.map((c) => tbl.def.byName.get(c)!.type.kind)
  const out = new Map<string, Row>()
  const take = (rows: readonly Row[]) => {
    for (const row of rows) out.set(keyText(keyCols.length === 1 ? row[keyCols[0]!] : keyCols.map((c) => row[c])), row)
  }
  const per = keyCols.length === 1 ? LOOKUP_KEYS : 100
  for (const part of chunks(keys, per)) {
    const values = part.map((k) => {
      const v = JSON.parse(k) as unknown
      return keyCols.length === 1 ? [v] : Array.isArray(v) && v.length === keyCols.length ? v : undefined
    })
    // Lists of a fixed length (short parts padded with their first key), so one plan serves all.
    const size = part.length <= 8 ? part.length : per
    const lookup = values.every((v) => v !== undefined && v.every((x, c) => fitsKind(kinds[c]!, x))) ? lookupFor(engine, tbl, size) : null
    if (lookup !== null) {
      const params = [...lookup.parameters]
      for (let i = 0; i < size; i++) {
        const v = values[i] ?? values[0]!
        lookup.slots[i]!.forEach((at, c) => (params[at] = v![c]))
      }
      take(lookup.decode(await exec(engine.db, lookup.sql, params)) as Row[])
    } else {
      // Keys the placeholders cannot stand for (booleans): a query for this list.
      take((await run(engine.db, keyQuery(tbl, values.filter((v) => v !== undefined) as unknown[][]))) as Row[])
    }
  }
  return out
}

/**
 * Every row of a table whose integer key columns are within JavaScript's safe range (one
 * statement; the query object is built once per table). A row keyed beyond it cannot be read
 * (its key would not decode) and is never work to load: it is reported as a failed row
 * (`unkeyable.ts`), possibly by another worker, so a bulk read must not trip over it.
 */
async function allRows(engine: Engine, tbl: AnyTable): Promise<Row[]> {
  let query = scans.get(tbl)
  if (query === undefined) {
    const intKeys = (tbl.def.key ?? []).filter((c) => tbl.def.byName.get(c)?.type.kind === 'int')
    const safe = (r: any) => Q.and(...intKeys.flatMap((c) => [Q.ge(r[c], -Number.MAX_SAFE_INTEGER), Q.le(r[c], Number.MAX_SAFE_INTEGER)]))
    query = Q.for(tbl as Table<string, any, unknown>, (r: any) => (intKeys.length === 0 ? Q.yield(r) : Q.where(safe(r), Q.yield(r)))) as Query<Row, never>
    scans.set(tbl, query)
  }
  return (await run(engine.db, query)) as Row[]
}

/**
 * Reads the inputs of a table derivation's work, a part at a time. `bulk`: most rows of the
 * input are wanted (a first fill), so it reads the whole input table once, in one statement,
 * instead of looking keys up part by part.
 */
export async function inputLoader(engine: Engine, x: Derivation, bulk: boolean): Promise<(work: readonly Work[]) => Promise<Task[]>> {
  if (!bulk || (x.source.kind !== 'root' && x.source.kind !== 'derived')) return (work) => loadTasks(engine, x, work)
  if (x.source.kind === 'root') {
    const root = engine.roots.get(x.source.table)!
    const keyCols = root.def.key!
    const rows = new Map<string, Row>()
    for (const row of await allRows(engine, root)) rows.set(keyText(keyCols.length === 1 ? row[keyCols[0]!] : keyCols.map((c) => row[c])), row)
    return async (work) => rootTasks(x, work, rows)
  }
  const up = engine.derivations.get(x.source.table)!
  const metas = await metaRows(engine.db, engine.d, up.name, 'all')
  const rows = new Map<string, Row>()
  for (const row of await allRows(engine, up.table as unknown as AnyTable)) rows.set(row['lq_key'] as string, row)
  return async (work) => derivedTasks(up, work, metas, (addr) => rows.get(addr))
}

function rootTasks(x: Derivation, work: readonly Work[], rows: ReadonlyMap<string, Row>): Task[] {
  const table = (x.source as { table: string }).table
  const tasks: Task[] = []
  for (const w of work) {
    const row = rows.get(w.addr)
    if (row === undefined) continue // deleted since the scan: the next scan sees the deletion
    const rev = w.rev!
    tasks.push({ addr: w.addr, input: row, lineage: [{ table, key: JSON.parse(w.addr) as unknown }], inputs: [[table, w.addr, rev]], maxRev: rev, upstream: [], edges: [], missing: !w.stored })
  }
  return tasks
}

function derivedTasks(up: Derivation, work: readonly Work[], metas: ReadonlyMap<string, MetaRow>, row: (addr: string) => Row | undefined): Task[] {
  const tasks: Task[] = []
  for (const w of work) {
    const m = metas.get(w.addr)
    if (m === undefined) continue
    const r = row(w.addr)
    if (r === undefined && m.lq_state === 'ok') continue // changed between the two reads; next scan
    tasks.push({
      addr: w.addr,
      input: r === undefined ? undefined : withoutKey(r),
      lineage: lineageOfAddress(w.addr, up.roots),
      inputs: [[up.name, w.addr, m.lq_changed_rev]],
      maxRev: m.lq_changed_rev,
      upstream: [{ table: up.name, addr: w.addr, state: m.lq_state, error: m.lq_error }],
      edges: [],
      missing: !w.stored,
    })
  }
  return tasks
}

/** Tasks for `work` items of a table derivation: revisions first, then the input rows. */
export async function loadTasks(engine: Engine, x: Derivation, work: readonly Work[]): Promise<Task[]> {
  const keys = work.map((w) => w.addr)
  const source = x.source
  switch (source.kind) {
    case 'root': {
      const root = engine.roots.get(source.table)!
      return rootTasks(x, work, await rowsByKey(engine, root, keys))
    }
    case 'derived': {
      const up = engine.derivations.get(source.table)!
      const metas = await metaRows(engine.db, engine.d, up.name, keys)
      const rows = await rowsByKey(engine, up.table as unknown as AnyTable, keys.map((k) => JSON.stringify(k)))
      return derivedTasks(up, work, metas, (addr) => rows.get(JSON.stringify(addr)))
    }
    case 'zip': {
      const parts: { as: string; up: Derivation; metas: Map<string, MetaRow>; rows: Map<string, Row> }[] = []
      for (const p of source.parts) {
        const up = engine.derivations.get(p.table)!
        const metas = await metaRows(engine.db, engine.d, up.name, keys)
        const rows = await rowsByKey(engine, up.table as unknown as AnyTable, keys.map((k) => JSON.stringify(k)))
        parts.push({ as: p.as, up, metas, rows })
      }
      const tasks: Task[] = []
      for (const w of work) {
        const input: Record<string, unknown> = {}
        const inputs: [string, string, number][] = []
        const upstream: UpstreamRow[] = []
        let skip = false
        for (const p of parts) {
          const m = p.metas.get(w.addr)
          const row = p.rows.get(JSON.stringify(w.addr))
          if (m === undefined || (row === undefined && m.lq_state === 'ok')) {
            skip = true
            break
          }
          input[p.as] = row === undefined ? undefined : withoutKey(row)
          inputs.push([p.up.name, w.addr, m.lq_changed_rev])
          upstream.push({ table: p.up.name, addr: w.addr, state: m.lq_state, error: m.lq_error })
        }
        if (skip) continue
        tasks.push({ addr: w.addr, input, lineage: lineageOfAddress(w.addr, x.roots), inputs, maxRev: Math.max(...inputs.map((i) => i[2])), upstream, edges: [], missing: !w.stored })
      }
      return tasks
    }
    case 'query':
      // A comprehension's tasks were built by its scan (delta evaluation) with their inputs.
      return work.flatMap((w) => (w.task === undefined ? [] : [w.task]))
    default:
      return assertNever(source, 'source kind')
  }
}

export function withoutKey(row: Record<string, unknown>): Record<string, unknown> {
  const { lq_key: _k, ...rest } = row
  return rest
}

