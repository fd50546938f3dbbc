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
import type { TopLayout } from './lower.js'
import { showType } from './schema.js'

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
    }
  }
  const codec = l.codec
  return (slots, at) => {
    const raw = slots[at.i++]
    const v = h.fromDb(kind, raw)
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

function linReader(l: LinLayout, h: DialectHooks): Reader {
  return (slots, at, tag) => {
    const base = at.i
    at.i += l.slots.length
    const desc = l.branches[tag]
    if (desc === undefined) throw new LineageQueryError('decode', `lineage: unknown branch number ${tag}`)
    const out: { table: string; key: unknown }[] = []
    const seen = new Set<string>()
    const add = (table: string, key: unknown) => {
      const id = `${table}\u0000${JSON.stringify(key)}`
      if (seen.has(id)) return
      seen.add(id)
      out.push({ table, key })
    }
    for (const e of desc.entries) {
      if (e.stored !== undefined) {
        for (const s of storedEntries(slots[base + e.slots[0]!], e.stored.single, e.table)) add(s.table, s.key)
        continue
      }
      const vals = e.slots.map((s, j) => h.fromDb(e.types[j]!.kind, slots[base + s]))
      add(e.table, vals.length === 1 ? vals[0] : vals)
    }
    return out
  }
}

/** The entries of a stored-lineage column: one key of `single`, or a JSON list of `[table, key]`. */
function storedEntries(raw: unknown, single: string | undefined, table: string): { table: string; key: unknown }[] {
  let v: unknown
  try {
    v = typeof raw === 'string' ? JSON.parse(raw) : raw
  } catch {
    throw new LineageQueryError('decode', `lineage column of table \`${table}\`: invalid JSON ${showValue(raw)}`, { table, value: raw })
  }
  if (single !== undefined) return [{ table: single, key: v }]
  if (!Array.isArray(v) || !v.every((x) => Array.isArray(x) && x.length === 2 && typeof x[0] === 'string')) {
    throw new LineageQueryError('decode', `lineage column of table \`${table}\`: expected a JSON list of [table, key] pairs, got ${showValue(raw)}`, { table, value: raw })
  }
  return (v as [string, unknown][]).map(([t, k]) => ({ table: t, key: k }))
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
      const fields = l.fields.map(([n, f]) => [n, reader(f, h, path ? `${path}.${n}` : n)] as const)
      return (slots, at, tag) => {
        const o: Record<string, unknown> = {}
        for (const [n, r] of fields) o[n] = r(slots, at, tag)
        return o
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
