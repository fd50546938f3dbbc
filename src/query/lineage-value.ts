/**
 * The decoded form of a lineage-annotated element, `{ data, lineage }`, built so that decoding
 * costs one object per element whatever the number of entries: `data` is decoded at once, the
 * lineage is kept as the raw key values the database sent (or the raw JSON of stored, witness
 * and group lineage) and turned into `{ table, key }` entries only when `lineage` is first read,
 * then cached. Reading it gives exactly the entries the eager decoder gave (same code, later):
 * generator order, no duplicates.
 *
 * What differs from a plain object: `lineage` is an accessor on the prototype, so it is not an
 * own property (`Object.keys(row)` is `['data']`, `{ ...row }` drops it, deep-equality helpers
 * that compare own keys see only `data`). `JSON.stringify(row)` (through `toJSON`), destructuring
 * (`const { data, lineage } = row`), `row.lineage`, `'lineage' in row`, `sourceRows` and
 * `groupBySource` behave as before; `plainLineage(rows)` returns plain objects. See docs/lineage.md.
 */
import { LineageQueryError, showValue } from '../errors.js'
import type { DialectHooks } from './dialect.js'
import type { LinLayout } from './layout.js'
import type { GroupedLinBranch } from './normal.js'
import type { ScalarKind } from './schema.js'

/** A lineage entry as users see it. */
export interface Entry {
  table: string
  key: unknown
}

/** How to read one entry of a branch from the raw slots. */
interface EntryPlan {
  readonly table: string
  readonly slot: number
  readonly slots: readonly number[]
  readonly kinds: readonly ScalarKind[]
  readonly scales: readonly number[]
  readonly stored: { readonly single: string | undefined } | undefined
  readonly witness: true | undefined
  readonly grouped: { readonly branches: readonly GroupedLinBranch[] } | undefined
  /** Earlier entries of the same table exist (a self-join): the only ones this entry can duplicate. */
  readonly check: boolean
}

/** The entries of one branch of a lineage layout, and the dialect's hooks to read key values with. */
export interface BranchPlan {
  readonly entries: readonly EntryPlan[]
  readonly h: DialectHooks
  /** Every entry is one key from slots (no stored, witness or group lineage): `materialise` takes its direct path. */
  readonly simple: boolean
}

/**
 * The plan of each branch of a lineage layout. Which tables a branch's entries name is known
 * when compiling, so an entry is compared for duplicates only with earlier entries of the same
 * table (a self-join), and not at all in the common case; branches with stored lineage (whose
 * tables are data) compare everything.
 */
export function branchPlans(l: LinLayout, h: DialectHooks): readonly BranchPlan[] {
  return l.branches.map((b) => {
    const stored = b.entries.some((e) => e.stored !== undefined || e.witness !== undefined || e.grouped !== undefined)
    return {
      h,
      simple: !stored,
      entries: b.entries.map((e, i) => ({
        table: e.table,
        slot: e.slots[0]!,
        slots: e.slots,
        kinds: e.types.map((t) => t.kind),
        scales: e.types.map((t) => t.scale ?? 0),
        stored: e.stored,
        witness: e.witness,
        grouped: e.grouped,
        check: stored || b.entries.slice(0, i).some((x) => x.table === e.table),
      })),
    }
  })
}

/** `-1` as `base`: the raw value is the branch's only slot itself (no array kept). */
export const SINGLE = -1

/**
 * Where an element's lineage is in its raw value: the branch's plan and the index of the
 * branch's first slot in the raw array (`SINGLE`: the raw value is the only slot). One per
 * reader position and branch, shared by every element read there (see `locate`).
 */
export interface Located {
  readonly plan: BranchPlan
  readonly base: number
  /** The raw value is a driver row: slot `i` of the branch is its column `names[i]` (`base` is then its first column's slot, not used to read). */
  readonly names: readonly string[] | undefined
  /** The raw value is a packed lineage column (`LinLayout.packed`, see `unpack`); `plan` is then branch 0's. */
  readonly packed: Packed | undefined
}

/**
 * A packed lineage column (`LinLayout.packed`): the plans of its branches, the index of the branch
 * number among its values (`undefined`: branch 0), how many values it holds, its form, and whether
 * every key slot is an integer (then read by `intSlots`, not `JSON.parse`).
 */
export interface Packed {
  readonly plans: readonly BranchPlan[]
  readonly tagAt: number | undefined
  readonly count: number
  readonly form: 'json' | 'text'
  readonly ints: boolean
}

/** The `Located` of every element of a packed lineage column (one per reader). */
export function locatePacked(plans: readonly BranchPlan[], l: LinLayout & { readonly packed: NonNullable<LinLayout['packed']> }): Located {
  const w = l.slots.length
  const packed: Packed = { plans, tagAt: l.packed.tagged ? w : undefined, count: w + (l.packed.tagged ? 1 : 0), form: l.packed.form, ints: l.slots.every((k) => k === 'int') }
  return { plan: plans[0]!, base: 0, names: undefined, packed }
}

/**
 * The entries of a packed lineage column's value `raw` (see `LinLayout.packed`), parsed only
 * now, when the lineage is read.
 */
export function unpack(p: Packed, raw: unknown): Entry[] {
  const slots = p.ints && typeof raw === 'string' ? intSlots(raw, p.count, p.form === 'json') : undefined
  const values = slots ?? (p.form === 'json' ? parseJson(raw, 'lineage') : undefined)
  if (!Array.isArray(values) || values.length !== p.count) {
    const expected = p.form === 'json' ? 'a JSON array of keys' : `${p.count} comma-separated integers`
    throw new LineageQueryError('decode', `lineage: expected ${expected}, got ${showValue(raw)}`, { value: raw })
  }
  const plan = p.plans[p.tagAt === undefined ? 0 : (values[p.tagAt] as number)]
  if (plan === undefined) throw new LineageQueryError('decode', `lineage: unknown branch number ${showValue(values[p.tagAt!])}`, { value: raw })
  return materialise(plan, values, 0)
}

/**
 * The `n` integers (or NULLs) of a packed column whose slots are all integers, without
 * `JSON.parse` and its strings: `12,,-3` (`text`, NULL as nothing) or `[12,null,-3]` (a JSON
 * array as the databases print one). A value of more than 15 digits stays its text, which the
 * key's `fromDb` reads exactly or refuses (beyond 2^53), as it does a key column's text. Returns
 * `undefined` for anything else (the caller then parses it as JSON, or reports it).
 */
export function intSlots(s: string, n: number, json: boolean): unknown[] | undefined {
  const out = new Array<unknown>(n)
  let i = 0
  let end = s.length
  if (json) {
    if (s.charCodeAt(0) !== 91 || s.charCodeAt(end - 1) !== 93) return undefined
    i = 1
    end--
  }
  for (let k = 0; k < n; k++) {
    const start = i
    const neg = s.charCodeAt(i) === 45
    if (neg) i++
    let v = 0
    const first = i
    while (i < end) {
      const c = s.charCodeAt(i)
      if (c < 48 || c > 57) break
      v = v * 10 + (c - 48)
      i++
    }
    const digits = i - first
    if (digits === 0) {
      if (neg) return undefined
      if (json) {
        if (!s.startsWith('null', i)) return undefined
        i += 4
      }
      out[k] = null
    } else out[k] = digits > 15 ? s.slice(start, i) : neg ? 0 - v : v
    if (k < n - 1) {
      if (s.charCodeAt(i) !== 44) return undefined
      i++
    }
  }
  return i === end ? out : undefined
}

/**
 * The `Located` of `plans[tag]` at `base`, from the reader's cache `cache` (a reader's position
 * is the same for every row, so this allocates once per branch); `undefined` for an unknown tag.
 */
export function locate(cache: (Located | undefined)[], plans: readonly BranchPlan[], tag: number, base: number, columns?: readonly string[], width = 0): Located | undefined {
  const hit = cache[tag]
  if (hit !== undefined && hit.base === base) return hit
  const plan = plans[tag]
  if (plan === undefined) return undefined
  const loc = { plan, base, names: columns?.slice(base, base + width), packed: undefined }
  cache[tag] = loc
  return loc
}

/** The values of a driver row's columns `names`, in order. */
function rowSlots(row: unknown, names: readonly string[]): unknown[] {
  const r = row as Readonly<Record<string, unknown>>
  const out = new Array<unknown>(names.length)
  for (let i = 0; i < names.length; i++) out[i] = r[names[i]!]
  return out
}

const inspectSymbol = Symbol.for('nodejs.util.inspect.custom')

/**
 * An annotated element: `data` decoded, `lineage` materialised on first read from the raw
 * slots `raw[base ..]` (or `raw` itself when `base` is `SINGLE`) as `at` says. Two private
 * fields: before the first read the raw value and where its lineage is; after it the entries
 * (in `#raw`) and `undefined`.
 */
export class AnnotatedValue {
  data: unknown
  #raw: unknown
  #at: Located | undefined

  constructor(data: unknown, raw: unknown, at: Located) {
    this.data = data
    this.#raw = raw
    this.#at = at
  }

  /** The `(table, key)` rows this element came from, in generator order, without duplicates. */
  get lineage(): Entry[] {
    const at = this.#at
    if (at === undefined) return this.#raw as Entry[]
    const l =
      at.packed !== undefined ? unpack(at.packed, this.#raw)
      : at.names === undefined ? materialise(at.plan, this.#raw, at.base)
      : at.plan.simple ? direct(at.plan, this.#raw, 0, at.names)
      : materialise(at.plan, rowSlots(this.#raw, at.names), 0)
    // The raw values are no longer needed.
    this.#raw = l
    this.#at = undefined
    return l
  }

  set lineage(value: Entry[]) {
    this.#raw = value
    this.#at = undefined
  }

  toJSON(): { data: unknown; lineage: Entry[] } {
    return { data: this.data, lineage: this.lineage }
  }

  [inspectSymbol](): { data: unknown; lineage: Entry[] } {
    return { data: this.data, lineage: this.lineage }
  }
}

/** `lineage` is enumerable on the prototype, so `for (k in row)` lists both fields as before. */
Object.defineProperty(AnnotatedValue.prototype, 'lineage', { ...Object.getOwnPropertyDescriptor(AnnotatedValue.prototype, 'lineage'), enumerable: true })

/**
 * A deep copy of decoded values with every annotated element (at any depth) as a plain
 * `{ data, lineage }` object, its lineage read: what `run(db, lineage(q))` returned before
 * lineage was read lazily, for code that needs own properties (`Object.keys`, spread, deep
 * equality against object literals).
 */
export function plainLineage<T>(value: T): T {
  return plain(value) as T
}

function plain(v: unknown): unknown {
  if (v instanceof AnnotatedValue) return { data: plain(v.data), lineage: v.lineage.map((e) => ({ table: e.table, key: e.key })) }
  if (Array.isArray(v)) return v.map(plain)
  if (typeof v === 'object' && v !== null && Object.getPrototypeOf(v) === Object.prototype) {
    const out: Record<string, unknown> = {}
    for (const [k, x] of Object.entries(v)) out[k] = plain(x)
    return out
  }
  return v
}

/**
 * A key value of `kind` from its raw value. An integer outside JavaScript's safe range is a
 * `decode` error, as it is for a data column: better-sqlite3 and `JSON.parse` (nested
 * collections, on both dialects) hand `9007199254740993` over as `9007199254740992`, another row's key.
 */
function keyValue(h: DialectHooks, kind: ScalarKind, scale: number, raw: unknown): unknown {
  if (kind === 'decimal') return h.decimalFromDb(raw, scale)
  const v = h.fromDb(kind, raw)
  if (kind === 'int' && typeof v === 'number' && !Number.isSafeInteger(v) && Number.isInteger(v)) {
    throw new LineageQueryError('decode', `lineage: integer key ${showValue(raw)} is outside JavaScript's safe integer range (±(2^53 - 1)); the database may hold a value JavaScript cannot represent exactly, so it is not returned rounded`, { value: String(raw) })
  }
  return v
}

const sameKey = (a: unknown, b: unknown): boolean => a === b || (Array.isArray(a) && Array.isArray(b) && a.length === b.length && a.every((x, i) => x === b[i]))

const entryId = (table: string, key: unknown): string => `${table}\u0000${JSON.stringify(key)}`

/** Entries being collected for one element: deduplicated by plan, or through a set once entries known only from data arrive. */
class Collector {
  readonly out: Entry[] = []
  ids: Set<string> | undefined = undefined
  bulk = false

  add(table: string, key: unknown, check: boolean): void {
    const out = this.out
    if (this.bulk && this.ids === undefined) this.ids = new Set(out.map((o) => entryId(o.table, o.key)))
    if (this.ids !== undefined) {
      const id = entryId(table, key)
      if (this.ids.has(id)) return
      this.ids.add(id)
    } else if (check) {
      for (const o of out) if (o.table === table && sameKey(o.key, key)) return
    }
    out.push({ table, key })
  }

  /** A group's entries (thousands, already without duplicates among themselves). */
  many(entries: readonly Entry[]): void {
    if (this.out.length === 0 && !this.bulk) {
      for (const s of entries) this.out.push(s)
      this.bulk = true
      return
    }
    this.bulk = true
    for (const s of entries) this.add(s.table, s.key, true)
  }
}

/** The entries of one element from its raw slots: what the eager decoder built for it. */
export function materialise(plan: BranchPlan, raw: unknown, base: number): Entry[] {
  if (plan.simple) return direct(plan, raw, base)
  const h = plan.h
  const at = (slot: number): unknown => (base === SINGLE ? raw : (raw as readonly unknown[])[base + slot])
  const c = new Collector()
  for (const e of plan.entries) {
    if (e.witness !== undefined) {
      for (const s of witnessEntries(at(e.slot), h)) c.add(s.table, s.key, true)
    } else if (e.stored !== undefined) {
      for (const s of storedEntries(at(e.slot), e.stored.single, e.table)) c.add(s.table, s.key, true)
    } else if (e.grouped !== undefined) {
      c.many(groupedEntries(at(e.slot), e.grouped.branches, h))
    } else if (e.slots.length === 1) {
      c.add(e.table, keyValue(h, e.kinds[0]!, e.scales[0]!, at(e.slot)), e.check)
    } else {
      c.add(e.table, e.slots.map((s, j) => keyValue(h, e.kinds[j]!, e.scales[j]!, at(s))), e.check)
    }
  }
  return c.out
}

/**
 * `materialise` of a branch whose entries are all keys from slots: one pass, one entry object
 * per entry and nothing else (no collector, no closure); duplicates are looked for only where
 * the plan says one can be (an earlier entry of the same table).
 */
function direct(plan: BranchPlan, raw: unknown, base: number, names?: readonly string[]): Entry[] {
  const h = plan.h
  const entries = plan.entries
  // One entry of one slot (the common case): a literal, no loop.
  if (entries.length === 1 && entries[0]!.slots.length === 1) {
    const e = entries[0]!
    return [{ table: e.table, key: keyValue(h, e.kinds[0]!, e.scales[0]!, slotOf(raw, base, names, e.slot)) }]
  }
  // Sized once (a growing array would allocate room for 16 entries); shortened if duplicates were left out.
  const out = new Array<Entry>(entries.length)
  let n = 0
  for (let i = 0; i < entries.length; i++) {
    const e = entries[i]!
    let key: unknown
    if (e.slots.length === 1) {
      key = keyValue(h, e.kinds[0]!, e.scales[0]!, slotOf(raw, base, names, e.slot))
    } else {
      const parts = new Array<unknown>(e.slots.length)
      for (let j = 0; j < parts.length; j++) parts[j] = keyValue(h, e.kinds[j]!, e.scales[j]!, slotOf(raw, base, names, e.slots[j]!))
      key = parts
    }
    if (e.check && repeats(out, n, e.table, key)) continue
    out[n++] = { table: e.table, key }
  }
  if (n < out.length) out.length = n
  return out
}

/** Slot `slot` of a branch in a raw value (see `Located`). */
function slotOf(raw: unknown, base: number, names: readonly string[] | undefined, slot: number): unknown {
  if (names !== undefined) return (raw as Readonly<Record<string, unknown>>)[names[slot]!]
  return base === SINGLE ? raw : (raw as readonly unknown[])[base + slot]
}

/** Whether `out` already holds the entry (`table`, `key`). */
function repeats(out: readonly Entry[], n: number, table: string, key: unknown): boolean {
  for (let i = 0; i < n; i++) if (out[i]!.table === table && sameKey(out[i]!.key, key)) return true
  return false
}

function parseJson(raw: unknown, path: string): unknown {
  if (typeof raw !== 'string') return raw
  try {
    return JSON.parse(raw)
  } catch (e) {
    throw new LineageQueryError('decode', `result field \`${path}\`: invalid JSON ${showValue(raw)} from the database`, { field: path }, { cause: e })
  }
}

/** The entries of a why-provenance slot (see `witness` in `lower/scalar.ts`), flattened, in list order. */
function witnessEntries(raw: unknown, h: DialectHooks): Entry[] {
  const out: Entry[] = []
  const bad = (): never => {
    throw new LineageQueryError('decode', `why-provenance: unexpected witness list ${showValue(raw)} from the database`, { value: raw })
  }
  const parse = (x: unknown): unknown => {
    try {
      return typeof x === 'string' ? JSON.parse(x) : x
    } catch {
      return bad()
    }
  }
  const walk = (list: unknown): void => {
    if (!Array.isArray(list)) bad()
    for (const element of list as unknown[]) {
      if (!Array.isArray(element)) bad()
      for (const item of element as unknown[]) {
        if (!Array.isArray(item)) bad()
        const [t, k, single] = item as [unknown, unknown, unknown]
        // a nested witness list: JSON, or its text (PostgreSQL passes it as text)
        if (t === '#w') walk(parse(k))
        // the lineage of a group: its rows, and what their values are
        else if (t === '#g' && typeof single === 'string') out.push(...groupedEntries(k, JSON.parse(single) as GroupedLinBranch[], h))
        else if (t === null) out.push(...storedEntries(k, typeof single === 'string' ? single : undefined, '(why-provenance)'))
        else if (typeof t === 'string') out.push({ table: t, key: k })
        else bad()
      }
    }
  }
  walk(parse(raw))
  return out
}

/** The entries of a stored-lineage column: one key of `single`, or a JSON list of `[table, key]`. */
function storedEntries(raw: unknown, single: string | undefined, table: string): Entry[] {
  let v: unknown
  try {
    v = typeof raw === 'string' ? JSON.parse(raw) : raw
  } catch {
    throw new LineageQueryError('decode', `lineage column of table \`${table}\`: invalid JSON ${showValue(raw)}`, { table, value: raw })
  }
  // A list of [table, key] pairs (keys are scalars or arrays of scalars, so never a list of
  // pairs); with `single`, anything else is one key of that table.
  const isList = Array.isArray(v) && v.every((x) => Array.isArray(x) && x.length === 2 && typeof x[0] === 'string')
  if (single !== undefined && !isList) return [{ table: single, key: v }]
  if (!isList) {
    throw new LineageQueryError('decode', `lineage column of table \`${table}\`: expected a JSON list of [table, key] pairs, got ${showValue(raw)}`, { table, value: raw })
  }
  return (v as [string, unknown][]).map(([t, k]) => ({ table: t, key: k }))
}

/**
 * The entries of a group's lineage column: a JSON array with one array per row of the group,
 * `[branch, ...values]`, the values being the keys of that branch's entries in order (a stored
 * or grouped entry takes one value, itself JSON). Without duplicates, ordered by table name
 * (code points), then key.
 */
export function groupedEntries(raw: unknown, branches: readonly GroupedLinBranch[], h: DialectHooks): Entry[] {
  const rows = parseJson(raw, 'lineage of a group')
  if (!Array.isArray(rows)) throw new LineageQueryError('decode', `lineage of a group: expected a JSON array, got ${showValue(raw)}`, { value: raw })
  const seen = new Set<string>()
  const out: Entry[] = []
  const add = (table: string, key: unknown) => {
    const id = entryId(table, key)
    if (seen.has(id)) return
    seen.add(id)
    out.push({ table, key })
  }
  for (const row of rows) {
    const entries = Array.isArray(row) ? branches[row[0] as number] : undefined
    if (entries === undefined) throw new LineageQueryError('decode', `lineage of a group: unexpected row ${showValue(row)}`, { value: row })
    let i = 1
    for (const e of entries) {
      if (e.witness !== undefined) {
        for (const s of witnessEntries(row[i++], h)) add(s.table, s.key)
      } else if (e.stored !== undefined) {
        for (const s of storedEntries(row[i++], e.stored.single, e.table)) add(s.table, s.key)
      } else if (e.grouped !== undefined) {
        for (const s of groupedEntries(row[i++], e.grouped.branches, h)) add(s.table, s.key)
      } else if (e.types.length === 1) {
        add(e.table, keyValue(h, e.types[0]!.kind, e.types[0]!.scale ?? 0, row[i++]))
      } else {
        add(e.table, e.types.map((t) => keyValue(h, t.kind, t.scale ?? 0, row[i++])))
      }
    }
  }
  return out.sort((a, b) => (a.table === b.table ? compareKeys(a.key, b.key) : a.table < b.table ? -1 : 1))
}

/** The order of lineage keys: NULL first, numbers numerically, strings by code point, arrays lexicographically. */
export function compareKeys(a: unknown, b: unknown): number {
  if (Array.isArray(a) && Array.isArray(b)) {
    for (let i = 0; i < Math.min(a.length, b.length); i++) {
      const c = compareKeys(a[i], b[i])
      if (c !== 0) return c
    }
    return a.length - b.length
  }
  if (a === b) return 0
  if (a === null || a === undefined) return -1
  if (b === null || b === undefined) return 1
  if (typeof a === 'string' && typeof b === 'string') {
    // UTF-16 order differs from code point order only around surrogates; compare code points.
    const x = [...a]
    const y = [...b]
    for (let i = 0; i < Math.min(x.length, y.length); i++) {
      const d = x[i]!.codePointAt(0)! - y[i]!.codePointAt(0)!
      if (d !== 0) return d
    }
    return x.length - y.length
  }
  return (a as number) < (b as number) ? -1 : 1
}
