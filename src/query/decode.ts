/**
 * Decoding: driver rows -> typed values, by the layout the statement was lowered with. Every
 * scalar goes through the dialect's `fromDb` hook (SQLite's 0/1 booleans, PostgreSQL's int8
 * strings) and then through the declared io-ts codec, or a check of its static type. Nothing is
 * cast silently: a value that does not fit is a `decode` error naming the column and value.
 */
import { isLeft } from 'fp-ts/lib/Either.js'
import { LineageQueryError, showValue } from '../errors.js'
import type { DialectHooks } from './dialect.js'
import { width, type CollLayout, type Layout, type LinLayout, type ScalarLayout } from './layout.js'
import type { GroupedLinBranch } from './normal.js'
import type { TopLayout } from './lower.js'
import { showType, type ScalarKind } from './schema.js'
import { isDateString, isTimestamp, Json } from './codecs.js'

/** Reads one value from a cursor over slots. */
type Reader = (slots: readonly unknown[], at: { i: number }, tag: number) => unknown

function where(l: ScalarLayout, path: string): string {
  return l.origin !== undefined ? `column \`${l.origin.column}\` of table \`${l.origin.table}\`` : `result field \`${path || 'value'}\``
}

function scalarReader(l: ScalarLayout, h: DialectHooks, path: string): Reader {
  const { kind, nullable } = l.type
  const check = (v: unknown): boolean => {
    if (v === null) return nullable
    switch (kind) {
      case 'string': return typeof v === 'string'
      case 'int': return typeof v === 'number' && Number.isInteger(v)
      case 'real': return typeof v === 'number'
      case 'boolean': return typeof v === 'boolean'
      case 'null': return false
      case 'date': return isDateString(v)
      case 'timestamp': return isTimestamp(v)
      case 'decimal': return typeof v === 'string' && /^-?\d+(\.\d+)?$/.test(v)
      case 'json': return Json.is(v)
    }
  }
  const codec = l.codec
  return (slots, at) => {
    const raw = slots[at.i++]
    let v: unknown
    try {
      v = kind === 'decimal' ? h.decimalFromDb(raw, l.type.scale ?? 0) : h.fromDb(kind, raw)
    } catch (e) {
      // The hook's error (an int8 beyond the safe range) does not know where the value was.
      if (e instanceof LineageQueryError) throw new LineageQueryError(e.code, `${where(l, path)}: ${e.message}`, { ...(l.origin ?? { field: path }), ...e.details }, { cause: e })
      throw e
    }
    // SQLite hands integers beyond 2^53 over already rounded (9007199254740993 reads as
    // 9007199254740992): refuse every integer outside the safe range rather than return another number.
    if (kind === 'int' && typeof v === 'number' && Number.isInteger(v) && !Number.isSafeInteger(v)) {
      throw new LineageQueryError('decode', `${where(l, path)}: integer ${showValue(raw)} is outside JavaScript's safe integer range (±(2^53 - 1)); the database may hold a value JavaScript cannot represent exactly, so it is not returned rounded`, { ...(l.origin ?? { field: path }), value: String(raw) })
    }
    if (codec !== undefined) {
      // The supported codecs decode to the value itself, so `is` (no allocation) decides;
      // `decode` runs only to report the failure.
      if (codec.is(v)) return v
      const r = codec.decode(v)
      if (isLeft(r)) {
        throw new LineageQueryError('decode', `${where(l, path)}: value ${showValue(raw)} does not match codec \`${codec.name}\``, {
          ...(l.origin ?? { field: path }),
          value: raw,
          codec: codec.name,
        })
      }
      return r.right
    }
    if (!check(v)) {
      throw new LineageQueryError('decode', `${where(l, path)}: value ${showValue(raw)} is not of type ${showType(l.type)}`, { field: path, value: raw, expected: showType(l.type) })
    }
    return v
  }
}

function parseJson(raw: unknown, path: string): unknown {
  if (typeof raw !== 'string') return raw
  try {
    return JSON.parse(raw)
  } catch (e) {
    throw new LineageQueryError('decode', `result field \`${path}\`: invalid JSON ${showValue(raw)} from the database`, { field: path }, { cause: e })
  }
}

function collReader(l: CollLayout, h: DialectHooks, path: string): Reader {
  const elem = l.elem
  if (elem === undefined) {
    return (slots, at) => {
      const arr = parseJson(slots[at.i++], path)
      if (!Array.isArray(arr) || arr.length !== 0) throw new LineageQueryError('decode', `result field \`${path}\`: expected an empty JSON array, got ${showValue(arr)}`)
      return []
    }
  }
  const inner = reader(elem, h, `${path}[]`)
  // One cursor per reader: a layout position never nests inside itself.
  const cursor = { i: 0 }
  // Lowering writes an element of width 1 as its only slot, any other as a JSON array.
  const single = !l.tagged && width(elem) === 1
  const n = l.tagged ? 1 : 0
  return (slots, at) => {
    const arr = parseJson(slots[at.i++], path)
    if (!Array.isArray(arr)) throw new LineageQueryError('decode', `result field \`${path}\`: expected a JSON array, got ${showValue(arr)}`)
    const out = new Array<unknown>(arr.length)
    for (let k = 0; k < arr.length; k++) {
      const item = arr[k]
      cursor.i = 0
      if (single) {
        out[k] = inner([item], cursor, 0)
      } else {
        if (!Array.isArray(item)) throw new LineageQueryError('decode', `result field \`${path}\`: expected a JSON array per element, got ${showValue(item)}`)
        const tag = n === 1 ? (item[item.length - 1] as number) : 0
        out[k] = inner(item, cursor, tag)
      }
    }
    return out
  }
}

/**
 * Lineage entries. Which tables each branch's entries name is known when compiling, so an
 * entry is compared for duplicates only with earlier entries of the same table (a self-join),
 * and not at all in the common case; branches with stored lineage (whose tables are data)
 * fall back to comparing everything.
 */
function linReader(l: LinLayout, h: DialectHooks): Reader {
  const plans = l.branches.map((b) => {
    const stored = b.entries.some((e) => e.stored !== undefined || e.witness !== undefined || e.grouped !== undefined)
    return b.entries.map((e, i) => ({
      table: e.table,
      slot: e.slots[0]!,
      slots: e.slots,
      kinds: e.types.map((t) => t.kind),
      scales: e.types.map((t) => t.scale ?? 0),
      stored: e.stored,
      witness: e.witness,
      grouped: e.grouped,
      // Earlier entries of the same table: the only ones this entry can duplicate.
      check: stored || b.entries.slice(0, i).some((x) => x.table === e.table),
    }))
  })
  const keyValue = (kind: ScalarKind, scale: number, raw: unknown): unknown => (kind === 'decimal' ? h.decimalFromDb(raw, scale) : h.fromDb(kind, raw))
  const sameKey = (a: unknown, b: unknown): boolean =>
    a === b || (Array.isArray(a) && Array.isArray(b) && a.length === b.length && a.every((x, i) => x === b[i]))
  return (slots, at, tag) => {
    const base = at.i
    at.i += l.slots.length
    const plan = plans[tag]
    if (plan === undefined) throw new LineageQueryError('decode', `lineage: unknown branch number ${tag}`)
    const out: { table: string; key: unknown }[] = []
    // Entries known only from data (a group's: thousands) are deduplicated through a set, built
    // when a later entry needs it.
    let ids: Set<string> | undefined
    let bulk = false
    const add = (table: string, key: unknown, check: boolean) => {
      if (bulk && ids === undefined) ids = new Set(out.map((o) => `${o.table}\u0000${JSON.stringify(o.key)}`))
      if (ids !== undefined) {
        const id = `${table}\u0000${JSON.stringify(key)}`
        if (ids.has(id)) return
        ids.add(id)
      } else if (check) for (const o of out) if (o.table === table && sameKey(o.key, key)) return
      out.push({ table, key })
    }
    const many = (entries: readonly { table: string; key: unknown }[]) => {
      // The first entries of a row, already without duplicates: taken as they are.
      if (out.length === 0 && !bulk) {
        for (const s of entries) out.push(s)
        bulk = true
        return
      }
      bulk = true
      for (const s of entries) add(s.table, s.key, true)
    }
    for (const e of plan) {
      if (e.witness !== undefined) {
        for (const s of witnessEntries(slots[base + e.slot], h)) add(s.table, s.key, true)
      } else if (e.stored !== undefined) {
        for (const s of storedEntries(slots[base + e.slot], e.stored.single, e.table)) add(s.table, s.key, true)
      } else if (e.grouped !== undefined) {
        many(groupedEntries(slots[base + e.slot], e.grouped.branches, h))
      } else if (e.slots.length === 1) {
        add(e.table, keyValue(e.kinds[0]!, e.scales[0]!, slots[base + e.slot]), e.check)
      } else {
        add(e.table, e.slots.map((s, j) => keyValue(e.kinds[j]!, e.scales[j]!, slots[base + s])), e.check)
      }
    }
    return out
  }
}

/** The entries of a why-provenance slot (see `witness` in `lower/scalar.ts`), flattened, in list order. */
function witnessEntries(raw: unknown, h: DialectHooks): { table: string; key: unknown }[] {
  const out: { table: string; key: unknown }[] = []
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
function storedEntries(raw: unknown, single: string | undefined, table: string): { table: string; key: unknown }[] {
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
export function groupedEntries(raw: unknown, branches: readonly GroupedLinBranch[], h: DialectHooks): { table: string; key: unknown }[] {
  const rows = parseJson(raw, 'lineage of a group')
  if (!Array.isArray(rows)) throw new LineageQueryError('decode', `lineage of a group: expected a JSON array, got ${showValue(raw)}`, { value: raw })
  const seen = new Set<string>()
  const out: { table: string; key: unknown }[] = []
  const add = (table: string, key: unknown) => {
    const id = `${table}\u0000${JSON.stringify(key)}`
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
        add(e.table, h.fromDb(e.types[0]!.kind, row[i++]))
      } else {
        add(e.table, e.types.map((t) => h.fromDb(t.kind, row[i++])))
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

const makers = new Map<string, (v: readonly unknown[]) => Record<string, unknown>>()

/**
 * A function building a record with these field names from an array of values, as one object
 * literal so every record of a layout shares one hidden class (adding properties one by one was
 * the largest cost of decoding). The names are embedded with JSON.stringify, so any name is safe.
 */
function recordMaker(names: readonly string[]): (v: readonly unknown[]) => Record<string, unknown> {
  const id = JSON.stringify(names)
  let make = makers.get(id)
  if (make === undefined) {
    const body = `return { ${names.map((n, i) => `${JSON.stringify(n)}: v[${i}]`).join(', ')} }`
    make = new Function('v', body) as (v: readonly unknown[]) => Record<string, unknown>
    makers.set(id, make)
  }
  return make
}

export function reader(l: Layout, h: DialectHooks, path = ''): Reader {
  switch (l.k) {
    case 'scalar':
      return scalarReader(l, h, path)
    case 'coll':
      return collReader(l, h, path)
    case 'lin':
      return linReader(l, h)
    case 'rec': {
      const readers = l.fields.map(([n, f]) => reader(f, h, path ? `${path}.${n}` : n))
      const make = recordMaker(l.fields.map(([n]) => n))
      const values = new Array<unknown>(readers.length)
      return (slots, at, tag) => {
        for (let i = 0; i < readers.length; i++) values[i] = readers[i]!(slots, at, tag)
        return make(values)
      }
    }
  }
}

export type Decoder = (rows: readonly Record<string, unknown>[]) => unknown[]

/** A function from driver rows (objects keyed by column alias) to decoded values. */
export function decodeRows(layout: TopLayout, h: DialectHooks): Decoder {
  const value = layout.value
  if (value === undefined) return (rows) => rows.map(() => ({}))
  const read = reader(value, h)
  const cols = layout.columns
  const tag = layout.tag
  return (rows) => {
    const out = new Array<unknown>(rows.length)
    const slots = new Array<unknown>(cols.length)
    const at = { i: 0 }
    for (let r = 0; r < rows.length; r++) {
      const row = rows[r]!
      for (let c = 0; c < cols.length; c++) slots[c] = row[cols[c]!]
      at.i = 0
      out[r] = read(slots, at, tag === undefined ? 0 : Number(row[tag]))
    }
    return out
  }
}
