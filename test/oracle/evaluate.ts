/**
 * The in-memory reference evaluator (test oracle) for the comprehension AST.
 *
 * `evaluate` gives the bag a query denotes; `evaluateLineage` gives the same bag with every
 * element of every collection annotated by its lineage, computed directly by the lineage rule of
 * `/work/shared/reference/lineage-semantics.md` (no query rewrite involved). Both are written for
 * obviousness, not speed: the SQL compiler is checked against them.
 *
 * Semantic points beyond the AST comments (also listed in the unit tests):
 * - A table missing from the `Database` is an error; every row must give every declared column a
 *   value of the declared scalar kind (ints are integers, numbers finite, nullability respected).
 * - Arithmetic results never are `-0` (SQL has no negative zero): `-0` is normalised to `0`.
 * - A `like` pattern ending in an unescaped `\` gives NULL (the compiler rejects such a constant pattern).
 * - `mod` requires integer operands; comparing values of different scalar kinds is an error.
 * - `linAppend` concatenates without removing duplicates (the rewrite must dedup itself).
 * - `let v = M in N` evaluates `M` once and `N` with `v` bound to it (plain and annotated).
 * - `order` returns its elements marked `ORDERED` (and a `limit` of an ordered collection keeps
 *   the mark), so comparators check the sequence of ordered nested collections.
 * - `evaluateLineage(q, db, { why: true })`: why-provenance, see `LineageOptions`.
 */
import type * as ast from '../../src/query/ast.js'
import { canonicalJson, daysInMonth, fixScale, isDateString, scaleOf } from '../../src/query/codecs.js'
import type { TableDef } from '../../src/query/schema.js'

// ---------------------------------------------------------------- typed scalars

/**
 * A decimal inside the oracle: an exact count of `10^-scale` units. Results turn back into
 * strings of `scale` fraction digits (`exportValue`). Arithmetic follows the compiler's typing:
 * add/sub take the larger scale, mul the sum of the scales.
 */
export class Dec {
  constructor(readonly units: bigint, readonly scale: number) {}
  static of(text: string): Dec {
    const s = scaleOf(text)
    const fixed = fixScale(text, s)
    if (fixed === undefined) throw new OracleError(`not a decimal: ${JSON.stringify(text)}`)
    return new Dec(BigInt(fixed.replace('.', '')), s)
  }
  at(scale: number): bigint {
    if (scale < this.scale) throw new OracleError('internal: decimal scale decrease')
    return this.units * 10n ** BigInt(scale - this.scale)
  }
  toNumber(): number {
    return Number(this.toString())
  }
  /** Grouping and DISTINCT keys (JSON text): equal decimals of different scales are one key. */
  toJSON(): unknown {
    let u = this.units
    let sc = this.scale
    while (sc > 0 && u % 10n === 0n) {
      u /= 10n
      sc--
    }
    return { $dec: new Dec(u, sc).toString() }
  }
  toString(): string {
    const neg = this.units < 0n
    const digits = (neg ? -this.units : this.units).toString().padStart(this.scale + 1, '0')
    const text = this.scale === 0 ? digits : `${digits.slice(0, digits.length - this.scale)}.${digits.slice(digits.length - this.scale)}`
    return neg ? `-${text}` : text
  }
}

/** A JSON document inside the oracle (so JSON strings and numbers are not SQL scalars). */
export class JsonV {
  constructor(readonly v: unknown) {}
  /** Grouping and DISTINCT keys: documents equal whatever their key order. */
  toJSON(): unknown {
    return { $json: canonicalJson(this.v) }
  }
}

function jsonEquals(a: unknown, b: unknown): boolean {
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((x, i) => jsonEquals(x, b[i]))
  if (typeof a === 'object' && a !== null && typeof b === 'object' && b !== null && !Array.isArray(a) && !Array.isArray(b)) {
    const ka = Object.keys(a).sort()
    const kb = Object.keys(b).sort()
    return ka.length === kb.length && ka.every((k, i) => k === kb[i] && jsonEquals((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]))
  }
  return a === b
}

const pad = (n: number, w: number): string => String(n).padStart(w, '0')
function dateParts(s: string): [number, number, number] {
  if (!isDateString(s)) throw new OracleError(`not a date: ${JSON.stringify(s)}`)
  return [Number(s.slice(0, 4)), Number(s.slice(5, 7)), Number(s.slice(8, 10))]
}
function dateText(y: number, m: number, d: number): string {
  const dt = new Date(0)
  dt.setUTCFullYear(y, m - 1, d)
  const out = `${pad(dt.getUTCFullYear(), 4)}-${pad(dt.getUTCMonth() + 1, 2)}-${pad(dt.getUTCDate(), 2)}`
  if (!isDateString(out)) throw new OracleError(`date arithmetic left years 0001-9999: ${out}`)
  return out
}
/** `d` plus `n` months, the day clamped to the end of the target month (PostgreSQL's rule). */
export function addMonthsText(s: string, n: number): string {
  const [y, m, d] = dateParts(s)
  const total = y * 12 + (m - 1) + n
  const ny = Math.floor(total / 12)
  const nm = total - ny * 12 + 1
  return dateText(ny, nm, Math.min(d, daysInMonth(ny, nm)))
}

/** The values of the typed kinds as results carry them: decimals as strings, JSON unwrapped. */
export function exportValue(v: unknown): unknown {
  if (v instanceof Dec) return v.toString()
  if (v instanceof JsonV) return v.v
  if (v instanceof Date) return v
  if (Array.isArray(v)) return v.map(exportValue)
  if (typeof v === 'object' && v !== null) {
    if ('data' in v && 'lineage' in v && Object.keys(v).length === 2) return { data: exportValue((v as { data: unknown }).data), lineage: (v as { lineage: unknown }).lineage }
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, exportValue(x)]))
  }
  return v
}

/** A table row: column -> JS value. */
export type Row = Readonly<Record<string, unknown>>
/** Table name -> rows. */
export type Database = Readonly<Record<string, readonly Row[]>>
/** A value: scalar, nested collection (array) or record (plain object). */
export type Value = null | string | number | boolean | Dec | JsonV | Date | readonly Value[] | { readonly [k: string]: Value }

/** An element of a collection with its lineage: `(table, key)` entries, deduplicated. */
export interface Annotated {
  readonly data: AValue
  readonly lineage: readonly { table: string; key: unknown }[]
}
type LineageEntry = Annotated['lineage'][number]
/** A value whose nested collections are annotated. */
export type AValue = null | string | number | boolean | Dec | JsonV | Date | readonly Annotated[] | { readonly [k: string]: AValue }

export class OracleError extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'OracleError'
  }
}

type Scalar = string | number | boolean | Dec | JsonV | Date

// ---------------------------------------------------------------- helpers

function show(v: unknown): string {
  if (v === undefined) return 'undefined'
  try {
    return JSON.stringify(v) ?? String(v)
  } catch {
    return String(v)
  }
}

const isArray = (v: unknown): v is readonly unknown[] => Array.isArray(v)
const isTyped = (v: unknown): v is Dec | JsonV | Date => v instanceof Dec || v instanceof JsonV || v instanceof Date
const isRecord = (v: unknown): v is { readonly [k: string]: unknown } => typeof v === 'object' && v !== null && !Array.isArray(v) && !isTyped(v)
const isScalar = (v: unknown): v is Scalar => typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean' || isTyped(v)

/** `-0` becomes `0`: SQL has no negative zero. */
const noNegZero = (n: number): number => (n === 0 ? 0 : n)

function codePoints(s: string): number[] {
  const out: number[] = []
  for (const ch of s) out.push(ch.codePointAt(0) as number)
  return out
}

/**
 * The ordering of scalars the oracle uses: numbers numerically (ints and reals together),
 * strings by Unicode code point, `false < true`. Values of different kinds are an error.
 */
export function scalarCompare(a: Scalar, b: Scalar): number {
  if (a instanceof Dec || b instanceof Dec) {
    const x = toDec(a)
    const y = toDec(b)
    const s = Math.max(x.scale, y.scale)
    const [p, q] = [x.at(s), y.at(s)]
    return p < q ? -1 : p > q ? 1 : 0
  }
  if (a instanceof Date && b instanceof Date) return a.getTime() < b.getTime() ? -1 : a.getTime() > b.getTime() ? 1 : 0
  if (a instanceof JsonV && b instanceof JsonV) return jsonEquals(a.v, b.v) ? 0 : 1
  if (typeof a === 'number' && typeof b === 'number') return a < b ? -1 : a > b ? 1 : 0
  if (typeof a === 'boolean' && typeof b === 'boolean') return a === b ? 0 : a ? 1 : -1
  if (typeof a === 'string' && typeof b === 'string') {
    const ia = a[Symbol.iterator]()
    const ib = b[Symbol.iterator]()
    for (;;) {
      const x = ia.next()
      const y = ib.next()
      if (x.done === true) return y.done === true ? 0 : -1
      if (y.done === true) return 1
      const cx = x.value.codePointAt(0) as number
      const cy = y.value.codePointAt(0) as number
      if (cx !== cy) return cx < cy ? -1 : 1
    }
  }
  throw new OracleError(`cannot compare ${typeof a} ${show(a)} with ${typeof b} ${show(b)}`)
}

/** A decimal operand: a Dec, or an integer (a constant) as a decimal of scale 0. */
function toDec(v: Scalar): Dec {
  if (v instanceof Dec) return v
  if (typeof v === 'number' && Number.isFinite(v)) return Dec.of(Number.isInteger(v) ? v.toFixed(0) : String(v))
  if (typeof v === 'string') return Dec.of(v)
  throw new OracleError(`expected a decimal, got ${show(v)}`)
}

/** Compare possibly-null scalars with null least. */
function compareNullsFirst(a: Scalar | null, b: Scalar | null): number {
  if (a === null) return b === null ? 0 : -1
  if (b === null) return 1
  return scalarCompare(a, b)
}

/** Deep equality of keys (scalars or arrays of scalars). */
function keyEquals(a: unknown, b: unknown): boolean {
  if (isArray(a) && isArray(b)) return a.length === b.length && a.every((x, i) => keyEquals(x, b[i]))
  return a === b
}

/** A canonical text of a group key or distinct element (a scalar or a record of scalars). */
function groupKeyText(v: Value, what: string): string {
  const check = (x: Value): void => {
    if (x === null || isScalar(x)) return
    if (isRecord(x)) return Object.values(x).forEach((y) => check(y as Value))
    throw new OracleError(`${what}: a key must be a scalar or a record of scalars, got ${show(x)}`)
  }
  check(v)
  return JSON.stringify(v)
}

/** Elements grouped by a key text, groups in first-seen order. */
function groupByText<T>(elems: readonly T[], keyOf: (x: T) => Value, what: string): { key: Value; members: T[] }[] {
  const groups = new Map<string, { key: Value; members: T[] }>()
  for (const x of elems) {
    const k = keyOf(x)
    const id = groupKeyText(k, what)
    const g = groups.get(id)
    if (g === undefined) groups.set(id, { key: k, members: [x] })
    else g.members.push(x)
  }
  return [...groups.values()]
}

/** Lineage keys' order: null first, numbers numerically, strings by code point, arrays lexicographically. */
function keyCompare(a: unknown, b: unknown): number {
  if (isArray(a) && isArray(b)) {
    for (let i = 0; i < Math.min(a.length, b.length); i++) {
      const c = keyCompare(a[i], b[i])
      if (c !== 0) return c
    }
    return a.length - b.length
  }
  return compareNullsFirst(a as Scalar | null, b as Scalar | null)
}

/** The lineage of a group (or merged distinct rows): every member's entries, without duplicates, by table name then key. */
function groupLineage(members: readonly Annotated[]): LineageEntry[] {
  const all = dedup(members.flatMap((m) => m.lineage))
  return all.sort((a, b) => (a.table === b.table ? keyCompare(a.key, b.key) : scalarCompare(a.table, b.table)))
}

/** Keep each (table, key) only at its first position. */
function dedup(entries: readonly LineageEntry[]): LineageEntry[] {
  const out: LineageEntry[] = []
  for (const e of entries) {
    if (!out.some((o) => o.table === e.table && keyEquals(o.key, e.key))) out.push(e)
  }
  return out
}

// ---------------------------------------------------------------- environments

/** A variable's value, plain and (in lineage mode) annotated. */
interface Binding {
  readonly plain: Value
  readonly ann: AValue | undefined
}
type Env = ReadonlyMap<number, Binding>

function bind(env: Env, v: ast.Var, b: Binding): Env {
  const next = new Map(env)
  next.set(v.id, b)
  return next
}

function lookup(env: Env, v: ast.Var): Binding {
  const b = env.get(v.id)
  if (b === undefined) throw new OracleError(`unbound variable ${v.hint}#${v.id}`)
  return b
}

/** Drop annotations: the plain value an annotated value stands for. */
function strip(v: AValue): Value {
  if (isArray(v)) return (v as readonly Annotated[]).map((a) => strip(a.data))
  if (isRecord(v)) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, strip(x as AValue)]))
  return v as Value
}

/** A plain value read as a literal: every collection element gets empty lineage. */
function annotateLiteral(v: Value): AValue {
  if (isArray(v)) return (v as readonly Value[]).map((x) => ({ data: annotateLiteral(x), lineage: [] }))
  if (isRecord(v)) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, annotateLiteral(x as Value)]))
  return v as Value as AValue
}

// ---------------------------------------------------------------- tables

function checkColumn(def: TableDef, col: { name: string; type: { kind: string; nullable: boolean; scale?: number } }, v: unknown, i: number): Scalar | null {
  const where = `table \`${def.name}\`, row ${i}, column \`${col.name}\``
  if (v === undefined) throw new OracleError(`${where}: missing value`)
  if (v === null) {
    if (!col.type.nullable) throw new OracleError(`${where}: null in a non-nullable column`)
    return null
  }
  switch (col.type.kind) {
    case 'date':
      if (!isDateString(v)) throw new OracleError(`${where}: ${show(v)} is not a date`)
      return v
    case 'timestamp':
      if (!(v instanceof Date)) throw new OracleError(`${where}: ${show(v)} is not a Date`)
      return v
    case 'decimal': {
      const fixed = typeof v === 'string' ? fixScale(v, col.type.scale ?? 0) : undefined
      if (fixed === undefined) throw new OracleError(`${where}: ${show(v)} is not a decimal of scale ${col.type.scale}`)
      return Dec.of(fixed)
    }
    case 'json':
      return new JsonV(v)
    default:
  }
  const ok =
    col.type.kind === 'string' ? typeof v === 'string'
    : col.type.kind === 'int' ? typeof v === 'number' && Number.isInteger(v)
    : col.type.kind === 'real' ? typeof v === 'number' && Number.isFinite(v)
    : col.type.kind === 'boolean' ? typeof v === 'boolean'
    : false
  if (!ok) throw new OracleError(`${where}: ${show(v)} is not a ${col.type.kind}`)
  return v as Scalar
}

/** The rows of a table as records with all declared columns, in declared order. */
function tableRows(def: TableDef, db: Database): Value[] {
  if (!Object.hasOwn(db, def.name)) throw new OracleError(`the database has no table \`${def.name}\``)
  const rows = db[def.name] as readonly Row[]
  return rows.map((r, i) => {
    const rec: Record<string, Value> = {}
    for (const c of def.columns) rec[c.name] = checkColumn(def, c, r[c.name], i)
    return rec
  })
}

/** The lineage key of a row record: the key column's value, or an array of them (composite key). */
function keyOf(def: TableDef, row: Value): unknown {
  if (def.key === undefined) throw new OracleError(`table \`${def.name}\` tracks lineage but declares no key`)
  if (!isRecord(row)) throw new OracleError(`lineage of table \`${def.name}\`: ${show(row)} is not a row`)
  const vals = def.key.map((k) => {
    if (!Object.hasOwn(row, k)) throw new OracleError(`lineage of table \`${def.name}\`: row ${show(row)} has no key column \`${k}\``)
    return row[k]
  })
  return vals.length === 1 ? vals[0] : vals
}

// ---------------------------------------------------------------- scalar operators

const ARITY: Partial<Record<ast.ScalarOp, number>> = {
  eq: 2, ne: 2, lt: 2, le: 2, gt: 2, ge: 2, not: 1,
  add: 2, sub: 2, mul: 2, div: 2, mod: 2, neg: 1, abs: 1,
  like: 2, isNull: 1, isNotNull: 1, lower: 1, upper: 1, length: 1,
  trim: 1, round: 2, year: 1, month: 1, day: 1, addDays: 2, addMonths: 2, addYears: 2,
}

function asBool(op: string, v: Value): boolean | null {
  if (v === null || typeof v === 'boolean') return v
  throw new OracleError(`${op}: expected a boolean or null, got ${show(v)}`)
}
function asNum(op: string, v: Value): number | null {
  if (v === null || typeof v === 'number') return v
  throw new OracleError(`${op}: expected a number or null, got ${show(v)}`)
}
function asStr(op: string, v: Value): string | null {
  if (v === null || typeof v === 'string') return v
  throw new OracleError(`${op}: expected a string or null, got ${show(v)}`)
}
function asScalar(op: string, v: Value): Scalar | null {
  if (v === null || isScalar(v)) return v
  throw new OracleError(`${op}: expected a scalar, got ${show(v)}`)
}
function asInt(op: string, v: number): number {
  if (!Number.isInteger(v)) throw new OracleError(`${op}: expected an integer, got ${show(v)}`)
  return v
}

/** SQL LIKE with `%`, `_` and `\` escapes, over code points, case-sensitive, whole string. */
function likeMatch(s: string, pattern: string): boolean | null {
  type Tok = { readonly kind: 'any' } | { readonly kind: 'one' } | { readonly kind: 'lit'; readonly cp: number }
  const toks: Tok[] = []
  const pcs = codePoints(pattern)
  for (let i = 0; i < pcs.length; i++) {
    const c = pcs[i] as number
    if (c === 0x5c /* \ */) {
      const next = pcs[i + 1]
      // A computed pattern ending in a lone escape gives NULL (constant ones are compile errors).
      if (next === undefined) return null
      toks.push({ kind: 'lit', cp: next })
      i++
    } else if (c === 0x25 /* % */) toks.push({ kind: 'any' })
    else if (c === 0x5f /* _ */) toks.push({ kind: 'one' })
    else toks.push({ kind: 'lit', cp: c })
  }
  const cs = codePoints(s)
  // m[j]: the tokens so far match cs[0..j)
  let m: boolean[] = cs.map(() => false).concat([false])
  m[0] = true
  for (const tok of toks) {
    const next: boolean[] = m.map(() => false)
    for (let j = 0; j <= cs.length; j++) {
      if (tok.kind === 'any') next[j] = m[j] === true || (j > 0 && next[j - 1] === true)
      else if (j > 0 && m[j - 1] === true) next[j] = tok.kind === 'one' || cs[j - 1] === tok.cp
    }
    m = next
  }
  return m[cs.length] === true
}

const asciiLower = (s: string): string => s.replace(/[A-Z]/g, (c) => String.fromCharCode(c.charCodeAt(0) + 32))
const asciiUpper = (s: string): string => s.replace(/[a-z]/g, (c) => String.fromCharCode(c.charCodeAt(0) - 32))

/**
 * A number among decimals is a decimal (the compiler types integers next to decimals as
 * decimals). The oracle sees values, not types: with every decimal operand NULL it cannot tell,
 * so the generators never mix integers and decimals in `coalesce`/`case` values.
 */
function decIfAny(vals: readonly Value[], v: Value): Value {
  return typeof v === 'number' && vals.some((x) => x instanceof Dec) ? toDec(v) : v
}

function evalOp(op: ast.ScalarOp, args: readonly Value[]): Value {
  const arity = ARITY[op]
  if (arity !== undefined && args.length !== arity) throw new OracleError(`${op}: expected ${arity} argument(s), got ${args.length}`)
  const a0 = args[0] as Value
  const a1 = args[1] as Value
  switch (op) {
    case 'eq': case 'ne': case 'lt': case 'le': case 'gt': case 'ge': {
      const a = asScalar(op, a0)
      const b = asScalar(op, a1)
      if (a === null || b === null) return null
      const c = scalarCompare(a, b)
      return op === 'eq' ? c === 0 : op === 'ne' ? c !== 0 : op === 'lt' ? c < 0 : op === 'le' ? c <= 0 : op === 'gt' ? c > 0 : c >= 0
    }
    case 'and': {
      const bs = args.map((x) => asBool(op, x))
      return bs.includes(false) ? false : bs.includes(null) ? null : true
    }
    case 'or': {
      const bs = args.map((x) => asBool(op, x))
      return bs.includes(true) ? true : bs.includes(null) ? null : false
    }
    case 'not': {
      const b = asBool(op, a0)
      return b === null ? null : !b
    }
    case 'add': case 'sub': case 'mul': case 'div': case 'mod': {
      if (a0 instanceof Dec || a1 instanceof Dec) {
        if (a0 === null || a1 === null) return null
        const x = toDec(a0 as Scalar)
        const y = toDec(a1 as Scalar)
        if (op === 'div') return y.units === 0n ? null : noNegZero(x.toNumber() / y.toNumber())
        if (op === 'mul') return new Dec(x.units * y.units, x.scale + y.scale)
        if (op === 'mod') throw new OracleError('mod: decimals are not integers')
        const sc = Math.max(x.scale, y.scale)
        return new Dec(op === 'add' ? x.at(sc) + y.at(sc) : x.at(sc) - y.at(sc), sc)
      }
      const a = asNum(op, a0)
      const b = asNum(op, a1)
      if (a === null || b === null) return null
      switch (op) {
        case 'add': return noNegZero(a + b)
        case 'sub': return noNegZero(a - b)
        case 'mul': return noNegZero(a * b)
        case 'div': return b === 0 ? null : noNegZero(a / b)
        case 'mod': return asInt(op, b) === 0 ? null : noNegZero(asInt(op, a) % b)
      }
      break
    }
    case 'neg': case 'abs': {
      if (a0 instanceof Dec) return new Dec(op === 'neg' || a0.units < 0n ? -a0.units : a0.units, a0.scale)
      const a = asNum(op, a0)
      if (a === null) return null
      return noNegZero(op === 'neg' ? -a : Math.abs(a))
    }
    case 'concat': {
      const ss = args.map((x) => asStr(op, x))
      return ss.includes(null) ? null : ss.join('')
    }
    case 'lower': case 'upper': case 'length': {
      const s = asStr(op, a0)
      if (s === null) return null
      return op === 'lower' ? asciiLower(s) : op === 'upper' ? asciiUpper(s) : codePoints(s).length
    }
    case 'like': {
      const s = asStr(op, a0)
      const p = asStr(op, a1)
      if (s === null || p === null) return null
      return likeMatch(s, p)
    }
    case 'isNull': return asScalar(op, a0) === null
    case 'isNotNull': return asScalar(op, a0) !== null
    case 'in': {
      if (args.length === 0) throw new OracleError('in: expected at least one argument')
      const list = args.slice(1).map((x) => asScalar(op, x))
      if (list.length === 0) return false
      const a = asScalar(op, a0)
      if (a === null) return null
      if (list.some((x) => x !== null && scalarCompare(a, x) === 0)) return true
      return list.includes(null) ? null : false
    }
    case 'coalesce': {
      for (const x of args) if (asScalar(op, x) !== null) return decIfAny(args, x)
      return null
    }
    case 'isNotDistinct': {
      const a = asScalar(op, a0)
      const b = asScalar(op, a1)
      return a === null || b === null ? a === b : scalarCompare(a, b) === 0
    }
    case 'case': {
      if (args.length < 3 || args.length % 2 === 0) throw new OracleError('case: expected [c, v]* and a default')
      const vals = args.filter((_, i) => i % 2 === 1 || i === args.length - 1)
      for (let i = 0; i + 1 < args.length; i += 2) if (asBool(op, args[i] as Value) === true) return decIfAny(vals, args[i + 1] as Value)
      return decIfAny(vals, args[args.length - 1] as Value)
    }
    case 'substring': {
      if (args.length !== 2 && args.length !== 3) throw new OracleError('substring: expected 2 or 3 arguments')
      const s = asStr(op, a0)
      const start = asNum(op, a1)
      const len = args.length === 3 ? asNum(op, args[2] as Value) : undefined
      if (s === null || start === null || len === null) return null
      // SQL: characters at positions [start, start + len), positions counted from 1.
      const cps = [...s]
      const from = Math.max(start, 1)
      const to = len === undefined ? cps.length + 1 : Math.max(start + asInt(op, len), from)
      return cps.slice(asInt(op, from) - 1, Math.max(to - 1, from - 1)).join('')
    }
    case 'trim': {
      const s = asStr(op, a0)
      return s === null ? null : s.replace(/^ +| +$/g, '')
    }
    case 'round': {
      const d = asNum(op, a1)
      if (d === null || !Number.isInteger(d) || d < 0) throw new OracleError('round: digits must be a non-negative integer')
      if (a0 === null) return null
      if (a0 instanceof Dec) {
        if (a0.scale <= d) return a0
        const f = 10n ** BigInt(a0.scale - d)
        const half = f / 2n
        const q = (a0.units < 0n ? a0.units - half : a0.units + half) / f
        return new Dec(q, d)
      }
      const x = asNum(op, a0) as number
      if (Number.isInteger(x)) return x
      const m = 10 ** d
      return noNegZero(Math.sign(x) * Math.round(Math.abs(x) * m) / m)
    }
    case 'year': case 'month': case 'day': {
      if (a0 === null) return null
      if (a0 instanceof Date) return op === 'year' ? a0.getUTCFullYear() : op === 'month' ? a0.getUTCMonth() + 1 : a0.getUTCDate()
      const [y, m, d] = dateParts(asStr(op, a0) as string)
      return op === 'year' ? y : op === 'month' ? m : d
    }
    case 'addDays': case 'addMonths': case 'addYears': {
      const s = asStr(op, a0)
      const n = asNum(op, a1)
      if (s === null || n === null) return null
      if (op === 'addDays') {
        const [y, m, d] = dateParts(s)
        return dateText(y, m, d + asInt(op, n))
      }
      return addMonthsText(s, asInt(op, n) * (op === 'addYears' ? 12 : 1))
    }
  }
  throw new OracleError(`unknown operator ${show(op)}`)
}

function aggregate(fn: ast.AggFn, elems: readonly Value[]): Value {
  if (fn === 'count') return elems.length
  if ((fn === 'sum' || fn === 'avg') && elems.some((x) => x instanceof Dec)) {
    const ds = elems.filter((x) => x !== null).map((x) => toDec(x as Scalar))
    if (ds.length === 0) return null
    const sc = Math.max(...ds.map((x) => x.scale))
    const total = ds.reduce((acc, x) => acc + x.at(sc), 0n)
    return fn === 'sum' ? new Dec(total, sc) : noNegZero(new Dec(total, sc).toNumber() / ds.length)
  }
  if (fn === 'sum' || fn === 'avg') {
    const nums = elems.map((x) => asNum(fn, x)).filter((x): x is number => x !== null)
    if (nums.length === 0) return null
    const total = nums.reduce((s, x) => s + x, 0)
    return noNegZero(fn === 'sum' ? total : total / nums.length)
  }
  const xs = elems.map((x) => asScalar(fn, x)).filter((x): x is Scalar => x !== null)
  if (xs.length === 0) return null
  return xs.reduce((best, x) => {
    const c = scalarCompare(x, best)
    return (fn === 'min' ? c < 0 : c > 0) ? x : best
  })
}

// ---------------------------------------------------------------- ordering

function orderKey(v: Value): Scalar | null {
  if (v === null || isScalar(v)) return v
  throw new OracleError(`order key must be a scalar, got ${show(v)}`)
}

/** Stable sort of `elems` by precomputed keys; asc: nulls first, desc: nulls last. */
function sortByKeys<T>(elems: readonly T[], keysOf: (x: T) => (Scalar | null)[], dirs: readonly ('asc' | 'desc')[]): T[] {
  const keyed = elems.map((x, i) => ({ x, i, k: keysOf(x) }))
  keyed.sort((a, b) => {
    for (let j = 0; j < dirs.length; j++) {
      const c = compareNullsFirst(a.k[j] as Scalar | null, b.k[j] as Scalar | null)
      if (c !== 0) return dirs[j] === 'desc' ? -c : c
    }
    return a.i - b.i
  })
  return keyed.map((k) => k.x)
}

const sliceLimit = <T>(xs: readonly T[], limit: number | undefined, offset: number): T[] => {
  const out = xs.slice(offset, limit === undefined ? undefined : offset + limit)
  return isOrdered(xs) ? markOrdered(out) : out
}

/**
 * Marks a collection the oracle ordered (`order`, and a `limit` of one): its element order is
 * part of the result, so the comparators (test/support/bags.ts) compare it as a sequence. A
 * non-enumerable symbol, invisible to equality and printing.
 */
export const ORDERED: unique symbol = Symbol.for('lineage-query.oracle.ordered') as never
export const isOrdered = (xs: unknown): boolean => Array.isArray(xs) && (xs as unknown as Record<symbol, unknown>)[ORDERED] === true
function markOrdered<T>(xs: T[]): T[] {
  Object.defineProperty(xs, ORDERED, { value: true, enumerable: false })
  return xs
}

// ---------------------------------------------------------------- plain evaluation

/** A constant's value: typed constants (`Q.date`, a `Date`, `Q.decimal`, `Q.json`) by their kind. */
function constValue(e: ast.ConstExpr): Value {
  switch (e.as) {
    case undefined: case 'date': return e.value
    case 'timestamp': return new Date(e.value as string)
    case 'decimal': return Dec.of(e.value as string)
    case 'json': return new JsonV(JSON.parse(e.value as string))
  }
  throw new OracleError(`unknown constant kind ${show(e.as)}`)
}

function coll(e: ast.Expr, env: Env, db: Database, what: string): readonly Value[] {
  const v = ev(e, env, db)
  if (!isArray(v)) throw new OracleError(`${what} must be a collection, got ${show(v)}`)
  return v as readonly Value[]
}

function ev(e: ast.Expr, env: Env, db: Database): Value {
  switch (e.kind) {
    case 'table':
      return tableRows(e.table, db)
    case 'for': {
      const out: Value[] = []
      for (const x of coll(e.source, env, db, 'the source of a for')) {
        for (const y of coll(e.body, bind(env, e.v, { plain: x, ann: undefined }), db, 'the body of a for')) out.push(y)
      }
      return out
    }
    case 'where':
      return asBool('where', ev(e.cond, env, db)) === true ? coll(e.body, env, db, 'the body of a where') : []
    case 'yield':
      return [ev(e.value, env, db)]
    case 'union': {
      const out: Value[] = []
      for (const p of e.parts) for (const y of coll(p, env, db, 'a part of a union')) out.push(y)
      return out
    }
    case 'values':
      return e.items.map((i) => ev(i, env, db))
    case 'var':
      return lookup(env, e.v).plain
    case 'field': {
      const r = ev(e.target, env, db)
      if (!isRecord(r)) throw new OracleError(`field \`${e.name}\`: ${show(r)} is not a record`)
      if (!Object.hasOwn(r, e.name)) throw new OracleError(`unknown field \`${e.name}\`; the record has ${Object.keys(r).join(', ') || 'no fields'}`)
      return r[e.name] as Value
    }
    case 'record':
      return Object.fromEntries(e.fields.map(([k, x]) => [k, ev(x, env, db)]))
    case 'const':
      return constValue(e)
    case 'op':
      return evalOp(e.op, e.args.map((a) => ev(a, env, db)))
    case 'exists':
      return (coll(e.query, env, db, 'the query of exists').length > 0) !== e.negated
    case 'agg': {
      if (e.fn === 'count' && e.query.kind === 'distinct') {
        // COUNT(DISTINCT x) over scalars does not count NULL.
        const xs = coll(e.query.query, env, db, 'the query of distinct')
        if (xs.every((x) => x === null || isScalar(x))) return new Set(xs.filter((x) => x !== null).map((x) => groupKeyText(x, 'distinct'))).size
      }
      return aggregate(e.fn, coll(e.query, env, db, `the query of ${e.fn}`))
    }
    case 'group':
      return groupByText(coll(e.source, env, db, 'the source of groupBy'), (x) => ev(e.key, bind(env, e.v, { plain: x, ann: undefined }), db), 'groupBy').map(
        (g) => ({ key: g.key, group: g.members }) as Value,
      )
    case 'distinct':
      return groupByText(coll(e.query, env, db, 'the query of distinct'), (x) => x, 'distinct').map((g) => g.key)
    case 'linGroup': {
      const members = coll(e.group, env, db, 'the group of a lineage') as unknown as Annotated[]
      return groupLineage(members) as unknown as Value
    }
    case 'order': {
      const elems = coll(e.query, env, db, 'the query of order')
      const keysOf = (x: Value): (Scalar | null)[] => {
        const env2 = bind(env, e.v, { plain: x, ann: undefined })
        return e.keys.map((k) => orderKey(ev(k.expr, env2, db)))
      }
      return markOrdered(sortByKeys(elems, keysOf, e.keys.map((k) => k.dir)))
    }
    case 'limit':
      return sliceLimit(coll(e.query, env, db, 'the query of limit'), e.limit, e.offset)
    case 'let':
      return ev(e.body, bind(env, e.v, { plain: ev(e.value, env, db), ann: undefined }), db)
    case 'linEmpty':
      return []
    case 'linRow':
      return [{ table: e.table.name, key: keyOf(e.table, ev(e.row, env, db)) as Value }]
    case 'linAppend': {
      const out: Value[] = []
      for (const p of e.parts) for (const y of coll(p, env, db, 'a part of a lineage append')) out.push(y)
      return out
    }
    case 'linWitness': {
      // the entries of every element of an annotated query
      const out: Value[] = []
      for (const x of coll(e.query, env, db, 'the query of a witness')) {
        if (!isRecord(x) || !isArray(x['lineage'])) throw new OracleError(`witness: ${show(x)} is not an annotated element`)
        for (const y of x['lineage'] as readonly Value[]) out.push(y)
      }
      return out
    }
  }
  const never: never = e
  throw new OracleError(`unknown expression kind ${show((never as { kind?: unknown }).kind)}`)
}

/** The bag of elements a query denotes (records as plain objects, nested collections as arrays). */
export function evaluate(query: ast.Expr, db: Database): Value[] {
  return exportValue([...coll(query, new Map(), db, 'the query')]) as Value[]
}

// ---------------------------------------------------------------- lineage evaluation

/**
 * Static check: a tracked table without a key in a position whose rows get lineage is an error
 * whatever the data (so an empty table or a false condition does not hide it).
 */
function checkLineageTables(e: ast.Expr, o: LineageOptions): void {
  const check = (x: ast.Expr) => checkLineageTables(x, o)
  switch (e.kind) {
    case 'table':
      if (e.table.lineage && e.table.key === undefined) {
        throw new OracleError(`table \`${e.table.name}\` tracks lineage but declares no key`)
      }
      return
    case 'for': check(e.source); check(e.body); return
    // With why-provenance the queries a condition reads name their rows too.
    case 'where': if (o.why) conditionQueries(e.cond).forEach(check); check(e.body); return
    case 'yield': check(e.value); return
    case 'union': e.parts.forEach(check); return
    case 'values': e.items.forEach(check); return
    case 'order': case 'limit': case 'distinct': check(e.query); return
    case 'group': check(e.source); return
    case 'let': check(e.value); check(e.body); return
    case 'field': check(e.target); return
    case 'record': for (const [, x] of e.fields) check(x); return
    default:
      // var, const, op, exists, agg (plain semantics), lineage nodes: nothing annotated.
      return
  }
}

function lcoll(e: ast.Expr, env: Env, db: Database, o: LineageOptions): readonly Annotated[] {
  switch (e.kind) {
    case 'table': {
      const def = e.table
      return tableRows(def, db).map((r) => ({ data: r as AValue, lineage: def.lineage ? [{ table: def.name, key: keyOf(def, r) }] : [] }))
    }
    case 'for': {
      const out: Annotated[] = []
      for (const x of lcoll(e.source, env, db, o)) {
        const env2 = bind(env, e.v, { plain: strip(x.data), ann: x.data })
        for (const y of lcoll(e.body, env2, db, o)) out.push({ data: y.data, lineage: dedup([...x.lineage, ...y.lineage]) })
      }
      return out
    }
    case 'where': {
      if (asBool('where', ev(e.cond, env, db)) !== true) return []
      const body = lcoll(e.body, env, db, o)
      if (!o.why) return body
      // Why-provenance: the entries of every element of each query the condition reads.
      const witnesses = conditionQueries(e.cond).flatMap((q) => lcoll(q, env, db, o).flatMap((x) => x.lineage))
      return body.map((y) => ({ data: y.data, lineage: dedup([...witnesses, ...y.lineage]) }))
    }
    case 'yield':
      return [{ data: lval(e.value, env, db, o), lineage: [] }]
    case 'union':
      return e.parts.flatMap((p) => lcoll(p, env, db, o))
    case 'values':
      return e.items.map((i) => ({ data: lval(i, env, db, o), lineage: [] }))
    case 'order': {
      const elems = lcoll(e.query, env, db, o)
      const keysOf = (x: Annotated): (Scalar | null)[] => {
        const env2 = bind(env, e.v, { plain: strip(x.data), ann: x.data })
        return e.keys.map((k) => orderKey(ev(k.expr, env2, db)))
      }
      return sortByKeys(elems, keysOf, e.keys.map((k) => k.dir))
    }
    case 'limit':
      return sliceLimit(lcoll(e.query, env, db, o), e.limit, e.offset)
    case 'let': {
      const ann = lval(e.value, env, db, o)
      return lcoll(e.body, bind(env, e.v, { plain: strip(ann), ann }), db, o)
    }
    case 'group':
      // A group's lineage: every entry of every row of the group (Cui & Widom).
      return groupByText(lcoll(e.source, env, db, o), (x) => ev(e.key, bind(env, e.v, { plain: strip(x.data), ann: x.data }), db), 'groupBy').map((g) => ({
        data: { key: annotateLiteral(g.key), group: g.members },
        lineage: groupLineage(g.members),
      }))
    case 'distinct':
      // A distinct row's lineage: the union of the lineage of the rows it merged.
      return groupByText(lcoll(e.query, env, db, o), (x) => strip(x.data), 'distinct').map((g) => ({ data: g.members[0]!.data, lineage: groupLineage(g.members) }))
    default: {
      const v = lval(e, env, db, o)
      if (!isArray(v)) throw new OracleError(`expected a collection, got ${show(strip(v))}`)
      return v as readonly Annotated[]
    }
  }
}

function lval(e: ast.Expr, env: Env, db: Database, o: LineageOptions): AValue {
  switch (e.kind) {
    case 'table': case 'for': case 'where': case 'yield': case 'union': case 'values': case 'order': case 'limit': case 'let': case 'group': case 'distinct':
      return lcoll(e, env, db, o)
    case 'var': {
      const b = lookup(env, e.v)
      if (b.ann === undefined) throw new OracleError(`internal: variable ${e.v.hint}#${e.v.id} has no annotated value`)
      return b.ann
    }
    case 'field': {
      const r = lval(e.target, env, db, o)
      if (!isRecord(r)) throw new OracleError(`field \`${e.name}\`: ${show(strip(r))} is not a record`)
      if (!Object.hasOwn(r, e.name)) throw new OracleError(`unknown field \`${e.name}\`; the record has ${Object.keys(r).join(', ') || 'no fields'}`)
      return r[e.name] as AValue
    }
    case 'record':
      return Object.fromEntries(e.fields.map(([k, x]) => [k, lval(x, env, db, o)]))
    case 'const':
      return constValue(e) as AValue
    case 'op': case 'exists': case 'agg': {
      // Scalars: plain semantics, they add no lineage.
      const v = ev(e, env, db)
      if (v !== null && !isScalar(v)) throw new OracleError(`expected a scalar, got ${show(v)}`)
      return v
    }
    case 'linEmpty': case 'linRow': case 'linAppend': case 'linWitness': case 'linGroup':
      return annotateLiteral(ev(e, env, db))
  }
  const never: never = e
  throw new OracleError(`unknown expression kind ${show((never as { kind?: unknown }).kind)}`)
}

/** The lineage semantics of a query, computed directly by the lineage rule. */
export function evaluateLineage(query: ast.Expr, db: Database, options: Partial<LineageOptions> = {}): Annotated[] {
  const o: LineageOptions = { why: options.why ?? false }
  checkLineageTables(query, o)
  return exportValue([...lcoll(query, new Map(), db, o)]) as Annotated[]
}

/** Options of the lineage semantics (the oracle's form of `lineage(q, options)`). */
export interface LineageOptions {
  /**
   * Why-provenance: an element that passed `where c` also carries the entries of every element
   * of each query `c` reads (its exists/empty and aggregate queries, each evaluated with these
   * same options), before its own, each entry once.
   */
  readonly why: boolean
}

/** The queries a condition reads: each exists/empty and aggregate query in it, outermost first. */
function conditionQueries(e: ast.Expr): ast.Expr[] {
  switch (e.kind) {
    case 'exists': case 'agg': return [e.query]
    case 'op': return e.args.flatMap(conditionQueries)
    default: return []
  }
}
