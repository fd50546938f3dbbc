/**
 * Decoding: driver rows -> typed values, by the layout the statement was lowered with. Every
 * scalar goes through the dialect's `fromDb` hook (SQLite's 0/1 booleans, PostgreSQL's int8
 * strings) and then through the declared io-ts codec, or a check of its static type. Nothing is
 * cast silently: a value that does not fit is a `decode` error naming the column and value.
 */
import { isLeft } from 'fp-ts/lib/Either.js'
import { LineageQueryError, showValue } from '../errors.js'
import type { DialectHooks } from './dialect.js'
import { annotatedFields, width, type CollLayout, type Layout, type LinLayout, type ScalarLayout } from './layout.js'
import { AnnotatedValue, branchPlans, locate, locatePacked, materialise, SINGLE, unpack, type Located } from './lineage-value.js'
import type { TopLayout } from './lower.js'
import { showType } from './schema.js'
import { isDateString, isTimestamp, Json } from './codecs.js'

/**
 * Where a reader is: the next slot, and (top level only) the driver row the slots were copied
 * from, which a lazy lineage of several slots keeps instead of a copy of them.
 */
interface Cursor {
  i: number
  row: Readonly<Record<string, unknown>> | undefined
}

/** Reads one value from a cursor over slots. */
type Reader = (slots: readonly unknown[], at: Cursor, tag: number) => unknown

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

function collReader(l: CollLayout, c: Ctx, path: string): Reader {
  const elem = l.elem
  if (elem === undefined) {
    return (slots, at) => {
      const arr = parseJson(slots[at.i++], path)
      if (!Array.isArray(arr) || arr.length !== 0) throw new LineageQueryError('decode', `result field \`${path}\`: expected an empty JSON array, got ${showValue(arr)}`)
      return []
    }
  }
  if (l.keysApart) return apartReader(l, c, path)
  // Each element's slots are an array of its own (parsed from JSON): lineage may keep it.
  const inner = reader(elem, c, `${path}[]`, true)
  // One cursor per reader: a layout position never nests inside itself.
  const cursor: Cursor = { i: 0, row: undefined }
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
 * A collection whose keys travel apart (`CollLayout.keysApart`): the JSON value `[data, keys]`.
 * Each element's data is read from `data` as a plain element; its lineage keeps `keys[k]` (its
 * only key, or its own array of keys and tag) until read, or is built now when not lazy.
 */
function apartReader(l: CollLayout, c: Ctx, path: string): Reader {
  const a = annotatedFields(l.elem!)!
  // Data holds no lineage outside nested collections (else keys are not apart): nothing keeps its slots.
  const data = reader(a.data, c, `${path}[].data`, false)
  const cursor: Cursor = { i: 0, row: undefined }
  const one = new Array<unknown>(1)
  const single = width(a.data) === 1
  const plans = branchPlans(a.lin, c.h)
  const locs: (Located | undefined)[] = []
  const w = a.lin.slots.length
  const lone = !l.tagged && w === 1
  // Untagged (every keys-apart collection today): every element is branch 0, located once here.
  const first = locate(locs, plans, 0, lone ? SINGLE : 0)
  const make = c.lazy ? undefined : recordMaker(a.linFirst ? ['lineage', 'data'] : ['data', 'lineage'])
  const pair = new Array<unknown>(2)
  const bad = (what: string, v: unknown): never => {
    throw new LineageQueryError('decode', `result field \`${path}\`: expected ${what}, got ${showValue(v)}`, { field: path })
  }
  return (slots, at) => {
    const both = parseJson(slots[at.i++], path)
    if (!Array.isArray(both) || both.length !== 2 || !Array.isArray(both[0]) || !Array.isArray(both[1]) || both[0].length !== both[1].length) {
      return bad('a JSON array [data, keys] of two arrays of the same length', both)
    }
    const values = both[0] as unknown[]
    const keys = both[1] as unknown[]
    const out = new Array<unknown>(values.length)
    for (let k = 0; k < values.length; k++) {
      const item = values[k]
      cursor.i = 0
      let value: unknown
      if (single) {
        one[0] = item
        value = data(one, cursor, 0)
      }
      else if (Array.isArray(item)) value = data(item, cursor, 0)
      else return bad('a JSON array per element', item)
      const key = keys[k]
      let tag = 0
      if (!lone) {
        if (!Array.isArray(key)) return bad('a JSON array of keys per element', key)
        if (l.tagged) tag = key[w] as number
      }
      const loc = tag === 0 && first !== undefined ? first : locate(locs, plans, tag, lone ? SINGLE : 0)
      if (loc === undefined) throw new LineageQueryError('decode', `lineage: unknown branch number ${tag}`)
      if (make === undefined) {
        out[k] = new AnnotatedValue(value, key, loc)
      } else {
        const lineage = materialise(loc.plan, key, loc.base)
        pair[0] = a.linFirst ? lineage : value
        pair[1] = a.linFirst ? value : lineage
        out[k] = make(pair)
      }
    }
    return out
  }
}

/** Eager lineage (`{ lazy: false }`): the entries built while decoding, as plain objects. */
function linReader(l: LinLayout, c: Ctx): Reader {
  const plans = branchPlans(l, c.h)
  if (l.packed !== undefined) {
    const p = locatePacked(plans, { ...l, packed: l.packed }).packed!
    return (slots, at) => unpack(p, slots[at.i++])
  }
  const w = l.slots.length
  return (slots, at, tag) => {
    const base = at.i
    at.i += w
    const plan = plans[tag]
    if (plan === undefined) throw new LineageQueryError('decode', `lineage: unknown branch number ${tag}`)
    return materialise(plan, slots, base)
  }
}

/**
 * A lazily annotated element: `data` decoded now, the lineage's raw slots kept in an
 * `AnnotatedValue` (the only slot itself, the element's own slots array when `owned`, or a copy
 * of the lineage slots) and turned into entries when first read. One object per element.
 */
function annotatedReader(a: { data: Layout; lin: LinLayout; linFirst: boolean }, c: Ctx, path: string, owned: boolean): Reader {
  const data = reader(a.data, c, path ? `${path}.data` : 'data', owned)
  const plans = branchPlans(a.lin, c.h)
  const locs: (Located | undefined)[] = []
  const named: (Located | undefined)[] = []
  const w = a.lin.slots.length
  const linFirst = a.linFirst
  // Several slots at the top level: the driver row holds them (by column name) and is kept as it
  // is, unless its other columns would make it much larger than a copy of the slots.
  const keepRow = !owned && w > 1 && c.columns.length <= 2 * w + 2
  if (a.lin.packed !== undefined) {
    // One column of text (`LinLayout.packed`), kept as it is until the lineage is read.
    const loc = locatePacked(plans, { ...a.lin, packed: a.lin.packed })
    return (slots, at, tag) => {
      if (!linFirst) {
        const value = data(slots, at, tag)
        return new AnnotatedValue(value, slots[at.i++], loc)
      }
      const raw = slots[at.i++]
      return new AnnotatedValue(data(slots, at, tag), raw, loc)
    }
  }
  return (slots, at, tag) => {
    let base: number
    let value: unknown
    if (linFirst) {
      base = at.i
      at.i += w
      value = data(slots, at, tag)
    } else {
      value = data(slots, at, tag)
      base = at.i
      at.i += w
    }
    const row = keepRow ? at.row : undefined
    const loc = row !== undefined ? locate(named, plans, tag, base, c.columns, w) : locate(locs, plans, tag, w <= 1 ? SINGLE : owned ? base : 0)
    if (loc === undefined) throw new LineageQueryError('decode', `lineage: unknown branch number ${tag}`)
    if (w <= 1) return new AnnotatedValue(value, slots[base], loc)
    if (owned) return new AnnotatedValue(value, slots, loc)
    if (row !== undefined) return new AnnotatedValue(value, row, loc)
    return new AnnotatedValue(value, slots.slice(base, base + w), loc)
  }
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

/** How values are decoded: the dialect's hooks, and whether lineage is read lazily (the default). */
interface Ctx {
  readonly h: DialectHooks
  readonly lazy: boolean
  /** The driver rows' column names, in slot order (top level). */
  readonly columns: readonly string[]
}

/**
 * The reader of layout `l`. `owned`: the slots array handed to the reader belongs to this one
 * element (a nested collection's element), so a lazy lineage may keep it instead of a copy.
 */
export function reader(l: Layout, c: Ctx, path = '', owned = false): Reader {
  switch (l.k) {
    case 'scalar':
      return scalarReader(l, c.h, path)
    case 'coll':
      return collReader(l, c, path)
    case 'lin':
      return linReader(l, c)
    case 'rec': {
      const annotated = c.lazy ? annotatedFields(l) : undefined
      if (annotated !== undefined) return annotatedReader(annotated, c, path, owned)
      const readers = l.fields.map(([n, f]) => reader(f, c, path ? `${path}.${n}` : n, owned))
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

export interface DecodeOptions {
  /**
   * `true` (default): annotated elements are `AnnotatedValue`s whose lineage is built when first
   * read; `false`: plain `{ data, lineage }` objects with every entry built while decoding (the
   * reference the lazy form is tested against).
   */
  readonly lazy?: boolean
}

/** A function from driver rows (objects keyed by column alias) to decoded values. */
export function decodeRows(layout: TopLayout, h: DialectHooks, options: DecodeOptions = {}): Decoder {
  const value = layout.value
  if (value === undefined) return (rows) => rows.map(() => ({}))
  const cols = layout.columns
  const read = reader(value, { h, lazy: options.lazy ?? true, columns: cols })
  const tag = layout.tag
  return (rows) => {
    const out = new Array<unknown>(rows.length)
    const slots = new Array<unknown>(cols.length)
    const at: Cursor = { i: 0, row: undefined }
    for (let r = 0; r < rows.length; r++) {
      const row = rows[r]!
      for (let c = 0; c < cols.length; c++) slots[c] = row[cols[c]!]
      at.i = 0
      at.row = row
      out[r] = read(slots, at, tag === undefined ? 0 : Number(row[tag]))
    }
    return out
  }
}
