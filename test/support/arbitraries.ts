/**
 * fast-check arbitraries for the property tests: random schemas, random data, and random
 * well-typed queries over the whole DSL, built THROUGH the public DSL functions (`Q.for`,
 * `Q.where`, ...), together with their TypeScript source (for failure reports and regression
 * tests).
 *
 * Queries are generated from a "choice tape" (an array of naturals, Hypothesis style): every
 * decision reads the next number, and a finished tape reads 0, which always means "the simplest
 * option". fast-check shrinks the tape (shorter, smaller numbers), so failing queries shrink
 * toward small ones. Generation is typed: a scope tracks the variables bound by `Q.for` (and
 * aggregate selectors) with their types, and every scalar carries its kind, nullability, a
 * bound on its magnitude (so no intermediate exceeds 2^50: no int64 overflow, no unsafe JS
 * integer, exact sums of quarter-multiples) and whether it is exact (`div`/`avg` results are not:
 * they only go to yields, or are compared with a constant).
 */
import fc from 'fast-check'
import * as t from 'io-ts'
import { AST, DateString, decimal, Json, Q, table, Timestamp, type AnyQuery, type Table } from '../../src/index.js'
import type * as ast from '../../src/query/ast.js'

// ---------------------------------------------------------------- schemas

export type ColKind = 'string' | 'int' | 'real' | 'boolean' | 'date' | 'timestamp' | 'decimal2' | 'decimal3' | 'json'

/** The generator's kind of a column kind (decimal columns of either scale are decimals). */
const kindOfCol = (k: ColKind): Kind => (k === 'decimal2' || k === 'decimal3' ? 'decimal' : k)

export interface ColSpec {
  readonly name: string
  readonly kind: ColKind
  readonly nullable: boolean
}

export interface TableSpec {
  readonly name: string
  /** All columns, `id` (t.Int, not null) first. */
  readonly columns: readonly ColSpec[]
  /** Declared key columns (`['id']` or a composite key starting with `id`). */
  readonly key: readonly string[]
  readonly lineage: boolean
}

export type AnyTable = Table<string, any, any>

export interface Schema {
  readonly specs: readonly TableSpec[]
  readonly tables: readonly AnyTable[]
}

export type Row = Record<string, unknown>
/** Table name -> rows: the oracle's `Database`. */
export type Data = Record<string, Row[]>

const CODECS: Readonly<Record<ColKind, readonly [t.Mixed, string]>> = {
  string: [t.string, 't.string'], int: [t.Int, 't.Int'], real: [t.number, 't.number'], boolean: [t.boolean, 't.boolean'],
  date: [DateString, 'DateString'], timestamp: [Timestamp, 'Timestamp'], decimal2: [decimal(12, 2), 'decimal(12, 2)'], decimal3: [decimal(12, 3), 'decimal(12, 3)'], json: [Json, 'Json'],
}
const codecOf = (c: ColSpec): t.Mixed => {
  const base = CODECS[c.kind][0]
  return c.nullable ? t.union([base, t.null]) : base
}
const codecCode = (c: ColSpec): string => {
  const base = CODECS[c.kind][1]
  return c.nullable ? `t.union([${base}, t.null])` : base
}

/** Declare the tables of `specs` through the DSL's `table(...)`. */
export function makeSchema(specs: readonly TableSpec[]): Schema {
  const tables = specs.map((s) => {
    const cols: Record<string, t.Mixed> = {}
    for (const c of s.columns) cols[c.name] = codecOf(c)
    const opts: { key?: string | readonly string[]; lineage?: boolean } = {}
    if (s.key.length > 1) opts.key = s.key
    if (!s.lineage) opts.lineage = false
    return (table as (n: string, c: Record<string, t.Mixed>, o?: object) => AnyTable)(s.name, cols, opts)
  })
  return { specs, tables }
}

/** `const t_x = table('t_x', {...}, {...})` for each table. */
export function schemaCode(specs: readonly TableSpec[]): string {
  return specs
    .map((s) => {
      const cols = s.columns.map((c) => `${c.name}: ${codecCode(c)}`).join(', ')
      const opts: string[] = []
      if (s.key.length > 1) opts.push(`key: [${s.key.map((k) => `'${k}'`).join(', ')}]`)
      if (!s.lineage) opts.push('lineage: false')
      return `const ${s.name} = table('${s.name}', { ${cols} }${opts.length ? `, { ${opts.join(', ')} }` : ''})`
    })
    .join('\n')
}

// Identifier tails: lower-case mostly, some upper case (quoting must preserve case), digits.
const arbTail = fc.string({ unit: fc.constantFrom(...'abcdefghijklmnopqrstuvwxyzAQZ0123456789_'.split('')), minLength: 1, maxLength: 5 })

const arbColumn = fc.record({
  tail: arbTail,
  kind: fc.oneof(
    { weight: 4, arbitrary: fc.constantFrom<ColKind>('int', 'string', 'real', 'boolean') },
    { weight: 1, arbitrary: fc.constantFrom<ColKind>('date', 'timestamp', 'decimal2', 'decimal3', 'json') },
  ),
  nullable: fc.boolean(),
})

const arbTableShape = fc.record({
  columns: fc.uniqueArray(arbColumn, { minLength: 1, maxLength: 4, selector: (c) => c.tail.toLowerCase() }),
  composite: fc.nat({ max: 9 }),
  noLineage: fc.nat({ max: 9 }),
})

/** 1-3 tables `t_<name>`, each with `id: t.Int` and 1-4 columns `c_<name>`. */
export function arbSchema(): fc.Arbitrary<Schema> {
  return fc
    .uniqueArray(fc.tuple(arbTail, arbTableShape), { minLength: 1, maxLength: 3, selector: ([n]) => n.toLowerCase() })
    .map((ts) =>
      makeSchema(
        ts.map(([tail, shape]): TableSpec => {
          const columns: ColSpec[] = [{ name: 'id', kind: 'int', nullable: false }, ...shape.columns.map((c) => ({ name: `c_${c.tail}`, kind: c.kind, nullable: c.nullable }))]
          // Occasionally a composite key (id plus a non-null int/string column).
          const second = columns.find((c) => c.name !== 'id' && !c.nullable && (c.kind === 'int' || c.kind === 'string'))
          const key = shape.composite === 9 && second !== undefined ? ['id', second.name] : ['id']
          return { name: `t_${tail}`, columns, key, lineage: shape.noLineage !== 9 }
        }),
      ),
    )
}

// ---------------------------------------------------------------- data

/** Strings that stress quoting, escaping, collation, LIKE and JSON encoding. No NUL, no lone surrogates. */
export const STRING_POOL: readonly string[] = [
  '', 'a', 'b', 'A', 'abc', 'ab', 'Ab', 'a b', 'a ', ' a', "it's", '"q"', "'", '"', '\\', 'back\\slash', '50%', '%', '_', 'a_c', 'a%c',
  'é', 'É', 'e\u0301', 'ß', 'naïve', 'Zürich', '中文', '日本語', '😀', 'a😀b', '𝄞', 'ｚ', '\uFFFD', '\uE000', '1', '10', '9', '-1', 'true',
  'null', 'tab\tx', 'line\nx', 'x\r\ny', 'Zz', 'zZ', '[1]', '{"a":1}',
]
const STRING_UNITS = ['a', 'b', 'z', 'A', 'Z', '0', '9', ' ', '%', '_', '\\', "'", '"', 'é', 'É', 'ß', '中', '😀', '𝄞', 'ｚ', '\uFFFD', '\n', '[', '{', ',']

export const INT_POOL: readonly number[] = [0, 1, -1, 2, 3, 5, 7, 42, -42, 100, 1000000, 2147483647, -2147483648, 2147483646, -2147483647]
export const REAL_POOL: readonly number[] = [0, 0.25, 0.5, -0.5, 1.5, -1.25, 2, 2.75, 3, 1000.25, -999.75, 1e6, -1e6]

/** Dates around month ends, leap days, far years; arithmetic on them stays within 0001-9999. */
export const DATE_POOL: readonly string[] = [
  '2024-01-31', '2024-02-29', '2023-02-28', '2024-03-31', '2023-12-31', '2024-01-01', '2000-02-29', '1900-03-01', '1999-12-31', '2100-02-28', '0100-01-01', '9000-12-31', '2024-04-30', '2024-06-15',
]
export const TIMESTAMP_POOL: readonly string[] = [
  '2024-01-31T23:59:59.999Z', '2024-02-29T00:00:00.000Z', '1999-12-31T23:00:00.000Z', '2000-01-01T00:00:00.000Z', '1970-01-01T00:00:00.000Z', '0100-06-30T12:34:56.789Z', '2024-12-31T23:59:59.500Z',
]
export const DECIMAL_POOL: readonly string[] = ['0', '1', '-1', '0.5', '0.05', '-0.25', '10.5', '999999.99', '-999999.99', '0.01', '2.25', '123.45', '-0.01', '0.125', '-7.875']
const JSON_POOL: readonly unknown[] = [0, 1, -1.5, 'a', '', 'null', true, false, [], {}, [1, 'a', null], { a: 1 }, { a: 1, b: [true, null] }, { b: [true, null], a: 1 }, { 'é': '😀' }, [[{}]], 'it\'s "q"']
const arbDate: fc.Arbitrary<string> = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom(...DATE_POOL) },
  { weight: 1, arbitrary: fc.integer({ min: -40000, max: 40000 }).map((n) => new Date(Date.UTC(2000, 0, 1) + n * 86400000).toISOString().slice(0, 10)) },
)
const arbTimestamp: fc.Arbitrary<Date> = fc.oneof(
  { weight: 2, arbitrary: fc.constantFrom(...TIMESTAMP_POOL).map((s) => new Date(s)) },
  { weight: 1, arbitrary: fc.integer({ min: -2_000_000_000, max: 2_000_000_000 }).map((n) => new Date(n * 1000 + (n % 1000))) },
)
const arbDecimal = (scale: number): fc.Arbitrary<string> =>
  fc.oneof(
    { weight: 2, arbitrary: fc.constantFrom(...DECIMAL_POOL).filter((x) => (x.split('.')[1]?.length ?? 0) <= scale) },
    { weight: 1, arbitrary: fc.integer({ min: -100_000_000, max: 100_000_000 }).map((n) => (n / 10 ** scale).toFixed(scale)) },
  ).map((x) => {
    const [i = '0', f = ''] = x.replace('-', '').split('.')
    const text = `${x.startsWith('-') && /[1-9]/.test(i + f) ? '-' : ''}${i}.${f.padEnd(scale, '0')}`
    return text
  })

export const arbString: fc.Arbitrary<string> = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom(...STRING_POOL) },
  { weight: 1, arbitrary: fc.string({ unit: fc.constantFrom(...STRING_UNITS), maxLength: 6 }) },
)
export const arbInt: fc.Arbitrary<number> = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom(...INT_POOL) },
  { weight: 1, arbitrary: fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }) },
)
/** Multiples of 0.25 in [-1e6, 1e6]: sums stay exact. */
export const arbReal: fc.Arbitrary<number> = fc.oneof(
  { weight: 2, arbitrary: fc.constantFrom(...REAL_POOL) },
  { weight: 1, arbitrary: fc.integer({ min: -4_000_000, max: 4_000_000 }).map((n) => n / 4) },
  { weight: 1, arbitrary: fc.integer({ min: -40, max: 40 }).map((n) => n / 4) },
)
const arbId: fc.Arbitrary<number> = fc.oneof(
  { weight: 4, arbitrary: fc.integer({ min: -2, max: 9 }) },
  { weight: 1, arbitrary: fc.constantFrom(...INT_POOL) },
  { weight: 1, arbitrary: fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }) },
)

function arbValue(c: ColSpec): fc.Arbitrary<unknown> {
  const base: fc.Arbitrary<unknown> =
    c.kind === 'string' ? arbString : c.kind === 'int' ? arbInt : c.kind === 'real' ? arbReal : c.kind === 'boolean' ? fc.boolean()
    : c.kind === 'date' ? arbDate : c.kind === 'timestamp' ? arbTimestamp : c.kind === 'decimal2' ? arbDecimal(2) : c.kind === 'decimal3' ? arbDecimal(3)
    : fc.constantFrom(...JSON_POOL)
  return c.nullable ? fc.option(base, { nil: null, freq: 4 }) : base
}

/** 0-8 rows per table, unique ids. */
export function arbData(schema: Schema, maxRows = 8): fc.Arbitrary<Data> {
  const perTable = schema.specs.map((s) => {
    const row = fc.record(Object.fromEntries(s.columns.map((c) => [c.name, c.name === 'id' ? arbId : arbValue(c)]))) as fc.Arbitrary<Row>
    return fc.uniqueArray(row, { maxLength: maxRows, selector: (r) => r['id'] })
  })
  return fc.tuple(...perTable).map((rowss) => Object.fromEntries(schema.specs.map((s, i) => [s.name, rowss[i] as Row[]])))
}

// ---------------------------------------------------------------- the choice tape

export class Tape {
  pos = 0
  constructor(readonly values: readonly number[]) {}
  /** A number in [0, n); 0 once the tape is exhausted. */
  nat(n: number): number {
    if (n <= 1) return 0
    const v = this.values[this.pos++]
    return v === undefined ? 0 : v % n
  }
  /** True with probability pct%; false once the tape is exhausted. */
  chance(pct: number): boolean {
    return this.nat(100) >= 100 - pct
  }
  pick<T>(xs: readonly T[]): T {
    if (xs.length === 0) throw new Error('generator bug: pick from an empty list')
    return xs[this.nat(xs.length)] as T
  }
  /** A weighted choice; the first option with positive weight when the tape is exhausted. */
  weighted<T>(opts: readonly (readonly [number, T])[]): T {
    const live = opts.filter(([w]) => w > 0)
    if (live.length === 0) throw new Error('generator bug: no live option')
    const total = live.reduce((s, [w]) => s + w, 0)
    let r = this.nat(total)
    for (const [w, x] of live) {
      if (r < w) return x
      r -= w
    }
    return (live[0] as readonly [number, T])[1]
  }
}

// ---------------------------------------------------------------- types of generated values

export type Kind = 'string' | 'int' | 'real' | 'boolean' | 'null' | 'date' | 'timestamp' | 'decimal' | 'json'
/** A scalar: kind, nullability, a bound on |value| (numbers), exactness (no div/avg inside). */
export interface ST { readonly tag: 's'; readonly kind: Kind; readonly nullable: boolean; readonly bound: number; readonly exact: boolean }
export interface RT { readonly tag: 'r'; readonly fields: readonly (readonly [string, Ty])[] }
/** A collection: element type and a bound on its number of elements. */
export interface CT {
  readonly tag: 'c'
  readonly elem: Ty
  readonly card: number
  /** A limited nested collection: not usable as a generator source or union part. */
  readonly limited?: boolean
}
export type Ty = ST | RT | CT

const MAX_BOUND = 2 ** 50
const MAX_ROWS = 8
const COL_BOUND: Readonly<Record<ColKind, number>> = { string: 0, int: 2 ** 31, real: 1e6, boolean: 0, date: 0, timestamp: 0, decimal2: 1e6, decimal3: 1e6, json: 0 }
/** Decimals stay below this magnitude, so SQLite's scaled integers stay exact (< 2^53 units). */
const DECIMAL_BOUND = 1e9

export const sT = (kind: Kind, nullable: boolean, bound = 0, exact = true): ST => ({ tag: 's', kind, nullable, bound, exact })
const isNumKind = (k: Kind): boolean => k === 'int' || k === 'real'

/** The least type of `a` and `b` (union parts), or undefined. */
export function unifyTy(a: Ty, b: Ty): Ty | undefined {
  if (a.tag === 's' && b.tag === 's') {
    let kind: Kind
    if (a.kind === 'null') kind = b.kind
    else if (b.kind === 'null' || a.kind === b.kind) kind = a.kind
    else if (isNumKind(a.kind) && isNumKind(b.kind)) kind = 'real'
    else return undefined
    return sT(kind, a.nullable || b.nullable, Math.max(a.bound, b.bound), a.exact && b.exact)
  }
  if (a.tag === 'r' && b.tag === 'r') {
    if (a.fields.length !== b.fields.length) return undefined
    const fields: (readonly [string, Ty])[] = []
    for (let i = 0; i < a.fields.length; i++) {
      const [fa, ta] = a.fields[i] as readonly [string, Ty]
      const [fb, tb] = b.fields[i] as readonly [string, Ty]
      if (fa !== fb) return undefined
      const u = unifyTy(ta, tb)
      if (u === undefined) return undefined
      fields.push([fa, u])
    }
    return { tag: 'r', fields }
  }
  if (a.tag === 'c' && b.tag === 'c') {
    const elem = unifyTy(a.elem, b.elem)
    return elem && { tag: 'c', elem, card: Math.max(a.card, b.card), ...(a.limited || b.limited ? { limited: true } : {}) }
  }
  return undefined
}

/**
 * Whether elements of type `a` can stand where `target` is wanted without widening it: they
 * unify, and to the target's kinds (an int collection for an int target, not a real one, which
 * would unify to real: a caller wanting ints, as `Q.mod`'s operands, got reals).
 */
export function keepsKinds(a: Ty, target: Ty): boolean {
  const u = unifyTy(a, target)
  const kinds = (t: Ty): string => showTy(t).replace(/[?~]/g, '')
  return u !== undefined && kinds(u) === kinds(target)
}

export function showTy(ty: Ty): string {
  if (ty.tag === 's') return `${ty.kind}${ty.nullable && ty.kind !== 'null' ? '?' : ''}${ty.exact ? '' : '~'}`
  if (ty.tag === 'r') return `{${ty.fields.map(([f, x]) => `${f}: ${showTy(x)}`).join(', ')}}`
  return `[${showTy(ty.elem)}]`
}

// ---------------------------------------------------------------- code rendering

export function lit(v: unknown): string {
  if (v === null) return 'null'
  if (v instanceof Date) return `new Date(${JSON.stringify(v.toISOString())})`
  if (typeof v === 'string') return JSON.stringify(v)
  if (typeof v === 'number' || typeof v === 'boolean') return String(v)
  if (Array.isArray(v)) return `[${v.map(lit).join(', ')}]`
  if (typeof v === 'object') {
    const es = Object.entries(v as object)
    return es.length === 0 ? '{}' : `{ ${es.map(([k, x]) => `${k}: ${lit(x)}`).join(', ')} }`
  }
  return String(v)
}

// ---------------------------------------------------------------- the query generator

/** A value in scope or a generated value: its DSL form, source code and type. */
interface Ent { readonly v: any; readonly code: string; readonly t: Ty }
interface GS { readonly v: any; readonly code: string; readonly t: ST }
/** A generated query. */
interface GQ { readonly q: AnyQuery; readonly code: string; readonly elem: Ty; readonly card: number }
type Scope = readonly Ent[]

interface TableInfo { readonly tbl: AnyTable; readonly name: string; readonly rowT: RT }

interface Helper {
  readonly name: string
  readonly param: RT | undefined
  readonly start: number
  readonly elem: Ty
  readonly card: number
  readonly def: string
}

type Want = 'boolean' | 'string' | 'int' | 'real' | 'date' | 'timestamp' | 'decimal' | 'num' | 'ord' | 'any'
type Concrete = 'boolean' | 'string' | 'int' | 'real' | 'date' | 'timestamp' | 'decimal'

const INT_CONSTS = [0, 1, 2, -1, 3, 7, 42, -42, 100, 5, 2147483647, -2147483648, 1000000]
const REAL_CONSTS = [0.5, 1.25, -0.75, 2.5, -1000.25, 0.25, 1.5]
const STR_CONSTS = ['a', '', 'abc', 'A', 'é', '中文', '😀', "it's", '"q"', '\\', '%', '_', 'a_c', ' ', 'ｚ', '\uFFFD', '10', '9', 'Zürich', 'b', 'a😀b', 'ß']
const MUL_CONSTS = [2, -1, 3, 0, 10, -3, 1]
const MOD_CONSTS = [3, 2, -5, 7, 0, 1, 10]
/** Record field names: some are SQL keywords or mixed case (they must be quoted). */
const FIELD_NAMES = ['k', 'v', 'a', 'b', 'inner', 'n', 's', 'select', 'from', 'order', 'Ab', 'x_1', 'id', 'value', 'group']
const LIKE_TOKENS = ['%', '_', 'a', 'b', 'A', 'é', '中', '😀', "'", '\\%', '\\_', '\\\\', ' ', '1']
const LIKE_PATTERNS = ['%', '', 'a%', '%a%', '_', '%\\%%', '%\\_%', '\\\\%', '%😀%', 'é%', '__', '%b', 'A%', '%\'%', '%"%']

class Gen {
  private nvar = 0
  budget: number
  /** Whether the current context forbids inexact (div/avg) scalars. */
  exact = false
  /** Bias toward records with nested-collection fields (for sources of `Q.for`). */
  nest = false
  inHelper = false
  readonly helpers: Helper[] = []

  constructor(
    readonly tape: Tape,
    readonly tables: readonly TableInfo[],
  ) {
    this.budget = [20, 40, 60, 90][tape.nat(4)] as number
  }

  /** Depth of a subquery under exists/count/aggregates: at least 2 while the budget lasts. */
  private subDepth(d: number): number {
    return this.budget > 8 ? Math.max(d - 1, 2) : d - 1
  }

  private fresh(): string {
    return `x${this.nvar++}`
  }

  private with<R>(patch: { exact?: boolean; nest?: boolean }, f: () => R): R {
    const saved = { exact: this.exact, nest: this.nest }
    if (patch.exact !== undefined) this.exact = patch.exact
    if (patch.nest !== undefined) this.nest = patch.nest
    try {
      return f()
    } finally {
      this.exact = saved.exact
      this.nest = saved.nest
    }
  }

  // ------------------------------------------------ scope

  private paths(scope: Scope): Ent[] {
    const out: Ent[] = []
    const walk = (e: Ent, depth: number): void => {
      out.push(e)
      if (e.t.tag === 'r' && depth < 4) for (const [f, ft] of e.t.fields) walk({ v: e.v[f], code: `${e.code}.${f}`, t: ft }, depth + 1)
    }
    for (const e of scope) walk(e, 0)
    return out
  }

  private scalarPaths(scope: Scope, kinds: readonly Kind[]): Ent[] {
    return this.paths(scope).filter((p) => p.t.tag === 's' && (kinds.includes(p.t.kind) || p.t.kind === 'null') && (p.t.exact || !this.exact))
  }

  // ------------------------------------------------ scalars

  private resolve(w: Want): Concrete {
    switch (w) {
      case 'num': return this.tape.pick(['int', 'real'] as const)
      case 'ord': return this.tape.weighted<Concrete>([[3, 'int'], [3, 'string'], [3, 'real'], [1, 'date'], [1, 'decimal'], [1, 'timestamp']])
      case 'any': return this.tape.weighted<Concrete>([[3, 'int'], [3, 'string'], [3, 'boolean'], [3, 'real'], [1, 'date'], [1, 'decimal'], [1, 'timestamp']])
      default: return w
    }
  }

  constant(kind: Concrete, allowNull = true): GS {
    if (allowNull && this.tape.chance(4)) return { v: null, code: 'null', t: sT('null', true) }
    if ((kind as Kind) === 'json') return this.jsonValue([])
    // Typed constants: a plain string or number would take its type from its context only.
    if (kind === 'date') {
      const d = this.tape.pick(DATE_POOL)
      return { v: Q.date(d), code: `Q.date(${lit(d)})`, t: sT('date', false) }
    }
    if (kind === 'timestamp') {
      const d = this.tape.pick(TIMESTAMP_POOL)
      return { v: new Date(d), code: `new Date(${lit(d)})`, t: sT('timestamp', false) }
    }
    if (kind === 'decimal') {
      const d = this.tape.pick(DECIMAL_POOL)
      return { v: Q.decimal(d), code: `Q.decimal(${lit(d)})`, t: sT('decimal', false, Math.abs(Number(d))) }
    }
    let v: string | number | boolean
    switch (kind) {
      case 'int': v = this.tape.pick(INT_CONSTS); break
      case 'real': v = this.tape.chance(70) ? this.tape.pick(REAL_CONSTS) : this.tape.pick(INT_CONSTS.slice(0, 8)); break
      case 'string': v = this.tape.pick(STR_CONSTS); break
      case 'boolean': v = this.tape.pick([true, false]); break
    }
    const k: Kind = typeof v === 'number' ? (Number.isInteger(v) ? 'int' : 'real') : kind
    return { v, code: lit(v), t: sT(k, false, typeof v === 'number' ? Math.abs(v) : 0) }
  }

  private leafScalar(scope: Scope, kind: Concrete): GS {
    const kinds: Kind[] = kind === 'real' ? ['real', 'int'] : [kind]
    const ps = this.scalarPaths(scope, kinds)
    const nonNull = ps.filter((p) => (p.t as ST).kind !== 'null')
    return this.tape.weighted<() => GS>([
      [2, () => this.constant(kind)],
      [nonNull.length > 0 ? 5 : 0, () => this.tape.pick(nonNull) as GS],
      [ps.length > nonNull.length ? 1 : 0, () => this.tape.pick(ps.filter((p) => (p.t as ST).kind === 'null')) as GS],
    ])()
  }

  scalar(scope: Scope, w: Want, d: number): GS {
    const kind = this.resolve(w)
    this.budget--
    if (d <= 0 || this.budget <= 0) return this.leafScalar(scope, kind)
    let r: GS
    switch (kind) {
      case 'boolean': r = this.bool(scope, d); break
      case 'string': r = this.str(scope, d); break
      case 'date': r = this.date(scope, d); break
      case 'timestamp': r = this.timestamp(scope, d); break
      case 'decimal': r = this.decimal(scope, d); break
      default: r = this.num(scope, kind, d)
    }
    if (r.t.bound > (kind === 'decimal' ? DECIMAL_BOUND : MAX_BOUND)) return this.leafScalar(scope, kind)
    return r
  }

  /** `Q.case([[c, v], ...], otherwise?)` with values of `kind`. */
  private caseOf(scope: Scope, kind: Concrete, d: number): GS {
    const n = 1 + this.tape.nat(2)
    const whens: [GS, GS][] = []
    for (let i = 0; i < n; i++) whens.push([this.scalar(scope, 'boolean', d - 1), this.scalar(scope, kind, d - 1)])
    const other = this.tape.chance(70) ? this.scalar(scope, kind, d - 1) : undefined
    const vals = [...whens.map(([, v]) => v), ...(other ? [other] : [])]
    const t = vals.reduce<ST>((acc, v) => must(unifyTy(acc, v.t)) as ST, vals[0]!.t)
    const rt = sT(t.kind === 'null' ? kind : t.kind, other === undefined || vals.some((v) => v.t.nullable), Math.max(...vals.map((v) => v.t.bound)), vals.every((v) => v.t.exact))
    const branches = whens.map(([c, v]) => [c.v, v.v] as const)
    const code = `Q.case([${whens.map(([c, v]) => `[${c.code}, ${v.code}]`).join(', ')}]${other ? `, ${other.code}` : ''})`
    return { v: other ? Q.case(branches as any, other.v) : Q.case(branches as any), code, t: rt }
  }

  private date(scope: Scope, d: number): GS {
    return this.tape.weighted<() => GS>([
      [4, () => this.leafScalar(scope, 'date')],
      [3, () => {
        const a = this.scalar(scope, 'date', d - 1)
        const fn = this.tape.pick(['addDays', 'addMonths', 'addYears'] as const)
        const n = this.tape.pick(fn === 'addDays' ? [1, -1, 31, -366, 0, 59] : fn === 'addMonths' ? [1, -1, 12, -13, 0, 25] : [1, -1, 4, -10, 0])
        return this.opCall(fn, [a, { v: n, code: lit(n), t: sT('int', false, Math.abs(n)) }], sT('date', a.t.nullable))
      }],
      [1, () => this.caseOf(scope, 'date', d)],
      [1, () => this.aggregate(scope, d, this.tape.pick(['min', 'max'] as const), 'date')],
      [1, () => {
        const a = this.scalar(scope, 'date', d - 1)
        const b = this.scalar(scope, 'date', d - 1)
        return this.opCall('coalesce', [a, b], sT('date', a.t.nullable && b.t.nullable))
      }],
    ])()
  }

  private timestamp(scope: Scope, d: number): GS {
    return this.tape.weighted<() => GS>([
      [4, () => this.leafScalar(scope, 'timestamp')],
      [1, () => this.caseOf(scope, 'timestamp', d)],
      [1, () => this.aggregate(scope, d, this.tape.pick(['min', 'max'] as const), 'timestamp')],
    ])()
  }

  private decimal(scope: Scope, d: number): GS {
    return this.tape.weighted<() => GS>([
      [4, () => this.leafScalar(scope, 'decimal')],
      [3, () => {
        const a = this.scalar(scope, 'decimal', d - 1)
        const b = this.scalar(scope, 'decimal', d - 1)
        return this.opCall(this.tape.pick(['add', 'sub']), [a, b], sT('decimal', a.t.nullable || b.t.nullable, a.t.bound + b.t.bound))
      }],
      [2, () => {
        // An integer factor keeps the scale (decimal x decimal would add scales without bound).
        const a = this.scalar(scope, 'decimal', d - 1)
        const c = this.tape.pick(MUL_CONSTS)
        const cg: GS = { v: c, code: lit(c), t: sT('int', false, Math.abs(c)) }
        return this.opCall('mul', this.tape.chance(50) ? [a, cg] : [cg, a], sT('decimal', a.t.nullable, a.t.bound * Math.abs(c)))
      }],
      [2, () => {
        const a = this.scalar(scope, 'decimal', d - 1)
        return this.opCall(this.tape.pick(['neg', 'abs']), [a], sT('decimal', a.t.nullable, a.t.bound))
      }],
      [2, () => {
        const a = this.scalar(scope, 'decimal', d - 1)
        const digits = this.tape.pick([0, 1, 2, 5])
        return { v: Q.round(a.v, digits), code: `Q.round(${a.code}, ${digits})`, t: sT('decimal', a.t.nullable, a.t.bound + 1) }
      }],
      [1, () => this.caseOf(scope, 'decimal', d)],
      [2, () => this.aggregate(scope, d, this.tape.pick(['sum', 'min', 'max'] as const), 'decimal')],
      [1, () => {
        const a = this.scalar(scope, 'decimal', d - 1)
        const b = this.scalar(scope, 'decimal', d - 1)
        return this.opCall('coalesce', [a, b], sT('decimal', a.t.nullable && b.t.nullable, Math.max(a.t.bound, b.t.bound)))
      }],
    ])()
  }

  private opCall(name: string, args: readonly GS[], t: ST, dslName = name): GS {
    const f = (Q as unknown as Record<string, (...a: unknown[]) => unknown>)[dslName] as (...a: unknown[]) => unknown
    return { v: f(...args.map((a) => a.v)), code: `Q.${dslName}(${args.map((a) => a.code).join(', ')})`, t }
  }

  private bool(scope: Scope, d: number): GS {
    return this.tape.weighted<() => GS>([
      [3, () => this.leafScalar(scope, 'boolean')],
      [8, () => this.compare(scope, d)],
      [3, () => this.andOr(scope, d)],
      [1, () => {
        const a = this.scalar(scope, 'boolean', d - 1)
        return this.opCall('not', [a], sT('boolean', a.t.nullable))
      }],
      [3, () => {
        const a = this.with({ exact: true }, () => this.scalar(scope, 'any', d - 1))
        return this.opCall(this.tape.pick(['isNull', 'isNotNull']), [a], sT('boolean', false))
      }],
      [2, () => {
        const a = this.scalar(scope, 'string', d - 1)
        const p = this.pattern()
        return { v: Q.like(a.v, p), code: `Q.like(${a.code}, ${lit(p)})`, t: sT('boolean', a.t.nullable) }
      }],
      [1, () => {
        // A computed pattern (NULL when it ends in a lone escape).
        const a = this.scalar(scope, 'string', d - 1)
        const p = this.tape.chance(50) ? this.scalar(scope, 'string', d - 1) : this.opCall('concat', [this.constant('string', false), this.scalar(scope, 'string', d - 1), { v: this.pattern(), code: '', t: sT('string', false) }].map((x) => (x.code === '' ? { ...x, code: lit(x.v) } : x)), sT('string', true))
        // A constant pattern must be well formed (a lone trailing escape is a compile error).
        if (typeof p.v === 'string' || p.v === null) {
          const q = this.pattern()
          return { v: Q.like(a.v, q), code: `Q.like(${a.code}, ${lit(q)})`, t: sT('boolean', a.t.nullable) }
        }
        return { v: Q.like(a.v, p.v as any), code: `Q.like(${a.code}, ${p.code})`, t: sT('boolean', true) }
      }],
      [1, () => this.caseOf(scope, 'boolean', d)],
      [1, () => {
        const jsons = this.scalarPaths(scope, ['json'])
        if (jsons.length === 0) return this.leafScalar(scope, 'boolean')
        const a = this.tape.pick(jsons) as GS
        const jv = this.tape.pick(JSON_POOL)
        const b: GS = this.tape.chance(50) ? (this.tape.pick(jsons) as GS) : { v: Q.json(jv as any), code: `Q.json(${lit(jv)})`, t: sT('json', false) }
        return this.opCall(this.tape.pick(['eq', 'ne']), [a, b], sT('boolean', a.t.nullable || b.t.nullable))
      }],
      [2, () => this.inList(scope, d)],
      [3, () => {
        const q = this.query(scope, this.subDepth(d))
        const negated = this.tape.chance(40)
        return { v: negated ? Q.empty(q.q) : Q.exists(q.q), code: `Q.${negated ? 'empty' : 'exists'}(${q.code})`, t: sT('boolean', false) }
      }],
      [1, () => {
        const a = this.scalar(scope, 'boolean', d - 1)
        const b = this.scalar(scope, 'boolean', d - 1)
        return this.opCall('coalesce', [a, b], sT('boolean', a.t.nullable && b.t.nullable))
      }],
      [1, () => {
        // An inexact number (div/avg) compared with a constant: ties are (practically) impossible.
        const e = this.with({ exact: false }, () => this.inexact(scope, d - 1))
        const c = this.constant(this.tape.pick(['int', 'real'] as const), false)
        const op = this.tape.pick(['lt', 'le', 'gt', 'ge'])
        const args = this.tape.chance(50) ? [e, c] : [c, e]
        return this.opCall(op, args, sT('boolean', true))
      }],
    ])()
  }

  private compare(scope: Scope, d: number): GS {
    const w = this.tape.weighted<Want>([[3, 'num'], [2, 'string'], [1, 'boolean'], [1, 'date'], [1, 'decimal'], [1, 'timestamp']])
    const kind = w === 'num' ? 'num' : w
    const op = this.tape.pick(['eq', 'ne', 'lt', 'le', 'gt', 'ge'])
    return this.with({ exact: true }, () => {
      const a = this.scalar(scope, kind, d - 1)
      const b = this.tape.chance(50) ? this.leafScalar(scope, this.resolveLike(a.t, kind)) : this.scalar(scope, kind, d - 1)
      return this.opCall(op, [a, b], sT('boolean', a.t.nullable || b.t.nullable))
    })
  }

  /** A concrete kind compatible with an already generated operand. */
  private resolveLike(t: ST, w: Want): Concrete {
    if (t.kind === 'null') return this.resolve(w)
    return t.kind as Concrete
  }

  private andOr(scope: Scope, d: number): GS {
    const n = this.tape.weighted([[1, 2], [1, 0], [1, 1], [2, 3]])
    const args: GS[] = []
    for (let i = 0; i < n; i++) args.push(this.scalar(scope, 'boolean', d - 1))
    const op = this.tape.pick(['and', 'or'])
    return this.opCall(op, args, sT('boolean', args.some((a) => a.t.nullable)))
  }

  private inList(scope: Scope, d: number): GS {
    const kind = this.resolve('any')
    return this.with({ exact: true }, () => {
      const a = this.scalar(scope, kind, d - 1)
      const n = this.tape.weighted([[2, 2], [1, 0], [2, 1], [2, 3]])
      const items: GS[] = []
      for (let i = 0; i < n; i++) items.push(this.tape.chance(70) ? this.constant(kind) : this.scalar(scope, kind, d - 1))
      return {
        v: Q.in(a.v, items.map((x) => x.v)),
        code: `Q.in(${a.code}, [${items.map((x) => x.code).join(', ')}])`,
        t: sT('boolean', n > 0 && (a.t.nullable || items.some((x) => x.t.nullable))),
      }
    })
  }

  pattern(): string {
    if (this.tape.chance(40)) return this.tape.pick(LIKE_PATTERNS)
    const n = this.tape.nat(5)
    let p = ''
    for (let i = 0; i < n; i++) p += this.tape.pick(LIKE_TOKENS)
    return p
  }

  private num(scope: Scope, kind: 'int' | 'real', d: number): GS {
    const isInt = kind === 'int'
    // Arithmetic on NULL constants only is still a number (the DSL types it `number | null`).
    const numKind = (a: ST, b?: ST): Kind => ([a.kind, b?.kind].includes('real') ? 'real' : 'int')
    const wantKind: Want = isInt ? 'int' : this.tape.pick(['real', 'num'] as const)
    return this.tape.weighted<() => GS>([
      [4, () => this.leafScalar(scope, kind)],
      [3, () => {
        const a = this.scalar(scope, wantKind, d - 1)
        const b = this.scalar(scope, isInt ? 'int' : 'num', d - 1)
        return this.opCall(this.tape.pick(['add', 'sub']), [a, b], sT(numKind(a.t, b.t), a.t.nullable || b.t.nullable, a.t.bound + b.t.bound, a.t.exact && b.t.exact))
      }],
      [2, () => {
        const a = this.scalar(scope, wantKind, d - 1)
        const c = this.tape.pick(MUL_CONSTS)
        const cg: GS = { v: c, code: lit(c), t: sT('int', false, Math.abs(c)) }
        return this.opCall('mul', this.tape.chance(50) ? [a, cg] : [cg, a], sT(numKind(a.t, cg.t), a.t.nullable, a.t.bound * Math.abs(c), a.t.exact))
      }],
      [2, () => {
        const a = this.scalar(scope, wantKind, d - 1)
        return this.opCall(this.tape.pick(['neg', 'abs']), [a], sT(numKind(a.t), a.t.nullable, a.t.bound, a.t.exact))
      }],
      [isInt ? 2 : 0, () => {
        const a = this.scalar(scope, 'int', d - 1)
        let b: GS
        if (this.tape.chance(70)) {
          const c = this.tape.pick(MOD_CONSTS)
          b = { v: c, code: lit(c), t: sT('int', false, Math.abs(c)) }
        } else b = this.scalar(scope, 'int', d - 1)
        return this.opCall('mod', [a, b], sT('int', true, a.t.bound, a.t.exact))
      }],
      [isInt ? 2 : 0, () => {
        const s = this.scalar(scope, 'string', d - 1)
        return this.opCall('length', [s], sT('int', s.t.nullable, 10_000))
      }],
      [isInt ? 3 : 0, () => {
        const a = this.scalar(scope, this.tape.pick(['date', 'timestamp'] as const), d - 1)
        return this.opCall(this.tape.pick(['year', 'month', 'day']), [a], sT('int', a.t.nullable, 10_000))
      }],
      [1, () => this.caseOf(scope, kind, d)],
      [isInt ? 0 : 1, () => {
        const a = this.scalar(scope, 'real', d - 1)
        const digits = this.tape.pick([0, 1, 2])
        return { v: Q.round(a.v, digits), code: `Q.round(${a.code}, ${digits})`, t: sT('real', a.t.nullable, a.t.bound + 1, a.t.exact) }
      }],
      [isInt ? 3 : 0, () => {
        const q = this.query(scope, this.subDepth(d))
        return { v: Q.count(q.q), code: `Q.count(${q.code})`, t: sT('int', false, q.card) }
      }],
      // the count of the rows matching a row in scope by a key (rule decorrelate-aggregate)
      [isInt ? 2 : 0, () => {
        const q = this.keyedQ(scope, this.subDepth(d))
        return { v: Q.count(q.q), code: `Q.count(${q.code})`, t: sT('int', false, q.card) }
      }],
      [isInt ? 1 : 0, () => {
        // COUNT(DISTINCT x) over scalars (NULL not counted), a count of distinct records otherwise.
        const q = this.query(scope, this.subDepth(d))
        if (!flatTy(q.elem) || !exactTy(q.elem)) return { v: Q.count(q.q), code: `Q.count(${q.code})`, t: sT('int', false, q.card) }
        return { v: Q.count(Q.distinct(q.q)), code: `Q.count(Q.distinct(${q.code}))`, t: sT('int', false, q.card) }
      }],
      [3, () => this.aggregate(scope, d, this.tape.pick(['sum', 'min', 'max'] as const), kind)],
      [1, () => {
        const a = this.scalar(scope, wantKind, d - 1)
        const b = this.scalar(scope, isInt ? 'int' : 'num', d - 1)
        return this.opCall('coalesce', [a, b], sT(numKind(a.t, b.t), a.t.nullable && b.t.nullable, Math.max(a.t.bound, b.t.bound), a.t.exact && b.t.exact))
      }],
      [!isInt && !this.exact ? 2 : 0, () => this.inexact(scope, d)],
    ])()
  }

  /** `div` or `avg`: real, inexact. */
  private inexact(scope: Scope, d: number): GS {
    return this.tape.weighted<() => GS>([
      [1, () => {
        const [a, b] = this.with({ exact: true }, () => [this.scalar(scope, 'num', d - 1), this.tape.chance(50) ? this.constant('int') : this.scalar(scope, 'num', d - 1)])
        return this.opCall('div', [a as GS, b as GS], sT('real', true, (a as GS).t.bound * 4, false))
      }],
      [1, () => this.aggregate(scope, d, 'avg', 'real')],
      [1, () => {
        // Decimals become reals only through div and avg.
        const [a, b] = this.with({ exact: true }, () => [this.scalar(scope, 'decimal', d - 1), this.tape.chance(50) ? this.constant('int') : this.scalar(scope, 'decimal', d - 1)])
        return this.opCall('div', [a as GS, b as GS], sT('real', true, (a as GS).t.bound * 1000, false))
      }],
      [1, () => {
        const q = this.with({ exact: true }, () => this.query(scope, this.subDepth(d), sT('decimal', false)))
        return { v: Q.avg(q.q), code: `Q.avg(${q.code})`, t: sT('real', true, (q.elem as ST).bound, false) }
      }],
    ])()
  }

  /** sum/min/max/avg over a query of scalars or with a selector; the element is exact and bounded. */
  private aggregate(scope: Scope, d: number, fn: 'sum' | 'min' | 'max' | 'avg', kind: Concrete): GS {
    const elemWant: Want = kind === 'real' && fn !== 'min' && fn !== 'max' ? 'num' : kind === 'real' ? this.tape.pick(['real', 'num'] as const) : kind
    let q: GQ
    let elem: ST
    let code: string
    let v: unknown
    const f = Q[fn] as (q: AnyQuery, sel?: (r: any) => unknown) => unknown
    if (this.tape.chance(50)) {
      // Q.fn(query of scalars)
      q = this.with({ exact: true }, () => this.query(scope, this.subDepth(d), this.targetOf(elemWant)))
      elem = q.elem as ST
      v = f(q.q)
      code = `Q.${fn}(${q.code})`
    } else {
      // Q.fn(query, (r) => scalar), often over the rows matching a row in scope by a key
      q = this.tape.chance(35) ? this.keyedQ(scope, this.subDepth(d)) : this.query(scope, this.subDepth(d))
      const name = this.fresh()
      let sel: GS | undefined
      const src = q
      v = f(src.q, (r: any) => {
        sel = this.with({ exact: true }, () => this.scalar([...scope, { v: r, code: name, t: src.elem }], elemWant, d - 1))
        return sel.v
      })
      elem = (sel as GS).t
      code = `Q.${fn}(${q.code}, (${name}) => ${(sel as GS).code})`
    }
    if (elem.tag !== 's') throw new Error(`generator bug: aggregate over ${showTy(elem)}`)
    const bound = fn === 'sum' ? elem.bound * Math.max(1, q.card) : elem.bound
    // sum/avg are numbers even over NULLs only (the DSL types them `number | null`).
    const rkind: Kind = fn === 'avg' ? 'real' : fn === 'sum' && elem.kind === 'null' ? 'int' : elem.kind
    const r: GS = { v, code, t: sT(rkind, true, bound, fn !== 'avg') }
    if (bound > MAX_BOUND) return this.leafScalar(scope, kind)
    return r
  }

  private targetOf(w: Want): ST {
    const k = this.resolve(w)
    return sT(k, false)
  }

  private str(scope: Scope, d: number): GS {
    return this.tape.weighted<() => GS>([
      [4, () => this.leafScalar(scope, 'string')],
      [3, () => {
        const n = this.tape.weighted([[3, 2], [1, 3], [1, 1]])
        const args: GS[] = []
        for (let i = 0; i < n; i++) args.push(this.scalar(scope, 'string', d - 1))
        return this.opCall('concat', args, sT('string', args.some((a) => a.t.nullable)))
      }],
      [2, () => {
        const a = this.scalar(scope, 'string', d - 1)
        return this.opCall(this.tape.pick(['lower', 'upper']), [a], sT('string', a.t.nullable))
      }],
      [2, () => this.aggregate(scope, d, this.tape.pick(['min', 'max'] as const), 'string')],
      [2, () => {
        const a = this.scalar(scope, 'string', d - 1)
        const start = this.tape.pick([1, 2, 0, -1, 3])
        const len = this.tape.chance(70) ? this.tape.pick([1, 2, 0, -1, 5]) : undefined
        const ints: GS[] = [start, ...(len === undefined ? [] : [len])].map((n) => ({ v: n, code: lit(n), t: sT('int', false, Math.abs(n)) }))
        return this.opCall('substring', [a, ...ints], sT('string', a.t.nullable))
      }],
      [1, () => {
        const a = this.scalar(scope, 'string', d - 1)
        return this.opCall('trim', [a], sT('string', a.t.nullable))
      }],
      [1, () => this.caseOf(scope, 'string', d)],
      [1, () => {
        const a = this.scalar(scope, 'string', d - 1)
        const b = this.scalar(scope, 'string', d - 1)
        return this.opCall('coalesce', [a, b], sT('string', a.t.nullable && b.t.nullable))
      }],
    ])()
  }

  // ------------------------------------------------ values (what Q.yield yields)

  private fieldNames(n: number): string[] {
    const names: string[] = []
    while (names.length < n) {
      const f = this.tape.pick(FIELD_NAMES)
      names.push(names.includes(f) ? `${f}${names.length}` : f)
    }
    return names
  }

  /** A value to yield (or a record field), untargeted or of a type unifiable with `target`. */
  value(scope: Scope, d: number, target?: Ty): Ent {
    if (target !== undefined) return this.targetedValue(scope, d, target)
    this.budget--
    const others = this.paths(scope).filter((p) => p.t.tag !== 's' && (this.exact ? exactTy(p.t) : true))
    if (d <= 0 || this.budget <= 0) {
      return this.tape.weighted<() => Ent>([
        [3, () => this.leafScalar(scope, this.resolve('any'))],
        [others.length > 0 ? 2 : 0, () => this.tape.pick(others)],
        [this.tape.chance(30) ? 1 : 0, () => ({ v: {}, code: '{}', t: { tag: 'r', fields: [] } })],
      ])()
    }
    return this.tape.weighted<() => Ent>([
      [4, () => this.scalar(scope, 'any', d)],
      [this.nest ? 4 : 3, () => this.record(scope, d)],
      [others.length > 0 ? 2 : 0, () => this.tape.pick(others)],
      [1, () => {
        const q = this.query(scope, d - 1)
        return { v: q.q, code: q.code, t: { tag: 'c', elem: q.elem, card: q.card } }
      }],
      [1, () => this.arrayLiteral(scope, d)],
    ])()
  }

  private record(scope: Scope, d: number): Ent {
    const n = this.tape.weighted([[3, 2], [1, 0], [3, 1], [3, 3]])
    const names = this.fieldNames(n)
    const obj: Record<string, unknown> = {}
    const fields: (readonly [string, Ty])[] = []
    const codes: string[] = []
    for (const f of names) {
      const e = this.tape.weighted<() => Ent>([
        [5, () => this.value(scope, d - 1)],
        [this.nest ? 6 : 2, () => {
          // A nested query: a nested collection in the result.
          const q = this.with({ nest: this.nest && this.tape.chance(50) }, () => this.query(scope, d - 1))
          return this.nestedColl(q, true)
        }],
      ])()
      obj[f] = e.v
      fields.push([f, e.t])
      codes.push(`${f}: ${e.code}`)
    }
    return { v: obj, code: n === 0 ? '{}' : `{ ${codes.join(', ')} }`, t: { tag: 'r', fields } }
  }

  private arrayLiteral(scope: Scope, d: number): Ent {
    const kind = this.resolve('any')
    const n = 1 + this.tape.nat(3)
    const items: GS[] = []
    for (let i = 0; i < n; i++) items.push(this.tape.chance(60) ? this.constant(kind) : this.scalar(scope, kind, d - 1))
    let elem: Ty = items[0]!.t
    for (const it of items.slice(1)) elem = must(unifyTy(elem, it.t))
    return { v: items.map((x) => x.v), code: `[${items.map((x) => x.code).join(', ')}]`, t: { tag: 'c', elem, card: n } }
  }

  private targetedValue(scope: Scope, d: number, target: Ty): Ent {
    this.budget--
    const compatible = this.paths(scope).filter((p) => p.t.tag === target.tag && unifyTy(p.t, target) !== undefined && (p.t.tag === 's' || !this.exact || exactTy(p.t)))
    if (target.tag === 's') {
      if (target.kind === 'json') return this.jsonValue(scope)
      const w: Want = target.kind === 'null' ? 'any' : target.kind === 'real' ? 'real' : target.kind
      return d <= 0 || this.budget <= 0 ? this.leafScalar(scope, this.resolve(w)) : this.scalar(scope, w, d)
    }
    if (target.tag === 'r') {
      return this.tape.weighted<() => Ent>([
        [4, () => {
          const obj: Record<string, unknown> = {}
          const fields: (readonly [string, Ty])[] = []
          const codes: string[] = []
          for (const [f, ft] of target.fields) {
            const e = this.value(scope, d - 1, ft)
            obj[f] = e.v
            fields.push([f, e.t])
            codes.push(`${f}: ${e.code}`)
          }
          return { v: obj, code: fields.length === 0 ? '{}' : `{ ${codes.join(', ')} }`, t: { tag: 'r', fields } }
        }],
        [compatible.length > 0 ? 2 : 0, () => this.tape.pick(compatible)],
      ])()
    }
    return this.tape.weighted<() => Ent>([
      [1, () => this.literal(target)],
      [d > 0 && this.budget > 0 ? 4 : 0, () => {
        const q = this.query(scope, d - 1, target.elem)
        return { v: q.q, code: q.code, t: { tag: 'c', elem: q.elem, card: q.card } }
      }],
      [compatible.length > 0 ? 1 : 0, () => this.tape.pick(compatible)],
    ])()
  }

  /** `ty` with every `null`-kind scalar replaced by a chosen kind (so several literals agree). */
  private concretize(ty: Ty): Ty {
    if (ty.tag === 's') return ty.kind === 'null' ? sT(this.resolve('any'), true) : ty
    if (ty.tag === 'r') return { tag: 'r', fields: ty.fields.map(([f, x]) => [f, this.concretize(x)] as const) }
    return { tag: 'c', elem: this.concretize(ty.elem), card: ty.card }
  }

  /** A JavaScript literal of (a type unifiable with) `target`: constants, objects, arrays. */
  /** A JSON document: a JSON column in scope or a `Q.json` constant. */
  private jsonValue(scope: Scope): GS {
    const jsons = this.scalarPaths(scope, ['json']).filter((p) => (p.t as ST).kind === 'json')
    if (jsons.length > 0 && this.tape.chance(50)) return this.tape.pick(jsons) as GS
    const jv = this.tape.pick(JSON_POOL)
    return { v: Q.json(jv as any), code: `Q.json(${lit(jv)})`, t: sT('json', false) }
  }

  literal(target: Ty): Ent {
    if (target.tag === 's') {
      if (target.kind === 'json') return this.jsonValue([])
      const k: Concrete = target.kind === 'null' ? this.resolve('any') : (target.kind as Concrete)
      return this.constant(k)
    }
    if (target.tag === 'r') {
      const obj: Record<string, unknown> = {}
      const fields: (readonly [string, Ty])[] = []
      for (const [f, ft] of target.fields) {
        const e = this.literal(ft)
        obj[f] = e.v
        fields.push([f, e.t])
      }
      return { v: obj, code: lit(obj), t: { tag: 'r', fields } }
    }
    const n = 1 + this.tape.nat(2)
    const items: Ent[] = []
    const elemShape = this.concretize(target.elem)
    for (let i = 0; i < n; i++) items.push(this.literal(elemShape))
    let elem: Ty = target.elem
    for (const it of items) elem = must(unifyTy(elem, it.t))
    const arr = items.map((x) => x.v)
    return { v: arr, code: lit(arr), t: { tag: 'c', elem, card: n } }
  }

  // ------------------------------------------------ queries

  query(scope: Scope, d: number, target?: Ty): GQ {
    this.budget--
    if (d <= 0 || this.budget <= 0) return this.yieldQ(scope, 0, target)
    const colls = this.paths(scope).filter(
      (p) => p.t.tag === 'c' && !p.t.limited && (!this.exact || exactTy(p.t)) && (target === undefined || keepsKinds(p.t.elem, target)),
    )
    const tables = target === undefined ? [] : this.tables.filter((ti) => unifyTy(ti.rowT, target) !== undefined)
    return this.tape.weighted<() => GQ>([
      [3, () => this.yieldQ(scope, d, target)],
      [9, () => this.forQ(scope, d, target)],
      [d >= 2 ? 2 : 0, () => this.pipelineQ(scope, d, target)],
      [d >= 2 && target === undefined ? 2 : 0, () => this.nestedResultQ(scope, d).gq],
      [3, () => this.whereQ(scope, d, target)],
      [2, () => this.unionQ(scope, d, target)],
      [d >= 2 ? 2 : 0, () => this.letQ(scope, d, target)],
      [1, () => this.valuesQ(scope, target)],
      [target === undefined ? 1 : 0, () => this.tableQ()],
      [target === undefined && !this.inHelper ? 1 : 0, () => this.helperQ(scope) ?? this.tableQ()],
      // A nested collection of a row in scope, used as a query (count/exists/union part/...).
      [colls.length > 0 ? 3 : 0, () => this.collPath(colls)],
      // Grouping: Q.for(Q.groupBy(src, key), g => body) and Q.distinct(q).
      [d >= 2 && target === undefined ? 3 : 0, () => this.groupQ(scope, d)],
      [d >= 1 && target === undefined ? 1 : 0, () => this.distinctQ(scope, d)],
      // Aggregates correlated by a key (rule decorrelate-aggregate).
      [d >= 2 && target === undefined ? 1 : 0, () => this.reportQ(scope, d)],
      // A table as a union part beside records of the same fields.
      [tables.length > 0 ? 1 : 0, () => {
        const ti = this.tape.pick(tables)
        return { q: ti.tbl, code: ti.name, elem: ti.rowT, card: MAX_ROWS }
      }],
    ])()
  }

  /**
   * `Q.let(value, (v) => body)`: the value a scalar (often a count or an aggregate: a shared
   * subquery), a value (record, collection, ...) or a query; the body a query with `v` in scope.
   */
  private letQ(scope: Scope, d: number, target?: Ty): GQ {
    const val = this.tape.weighted<() => Ent>([
      [3, () => this.scalar(scope, 'any', d - 1)],
      [3, () => {
        const q = this.query(scope, this.subDepth(d))
        return { v: Q.count(q.q), code: `Q.count(${q.code})`, t: sT('int', false, q.card) }
      }],
      [2, () => {
        const fn = this.tape.pick(['sum', 'min', 'max'] as const)
        return this.aggregate(scope, d, fn, fn === 'sum' ? 'int' : this.tape.pick(['int', 'string'] as const))
      }],
      [2, () => {
        const q = this.query(scope, d - 1)
        return { v: q.q, code: q.code, t: { tag: 'c', elem: q.elem, card: q.card } }
      }],
      [1, () => this.value(scope, d - 1)],
    ])()
    const name = this.fresh()
    let body: GQ | undefined
    const q = Q.let(val.v, (x: any) => {
      body = this.query([...scope, { v: x, code: name, t: val.t }], d - 1, target)
      return body.q
    })
    const b = body as GQ
    return { q, code: `Q.let(${val.code}, (${name}) => ${b.code})`, elem: b.elem, card: b.card }
  }

  /** `Q.distinct(q)` when q's elements are flat and exact (else q itself). */
  private distinctQ(scope: Scope, d: number): GQ {
    const q = this.query(scope, d - 1)
    if (!flatTy(q.elem) || !exactTy(q.elem)) return q
    return { q: Q.distinct(q.q), code: `Q.distinct(${q.code})`, elem: q.elem, card: q.card }
  }

  /**
   * `Q.for(Q.groupBy(src, (r) => key), (g) => body)`: the key a scalar or a record of scalars
   * (exact), the body either any query over `g` or the usual shape: an optional HAVING,
   * then a record of the key, aggregates of the group (filtered ones, count distinct) and
   * nested collections of the group.
   */
  private groupQ(scope: Scope, d: number): GQ {
    const src = this.source(scope, d - 1)
    if (src.empty) return this.yieldQ(scope, d)
    const rn = this.fresh()
    const gn = this.fresh()
    let key: Ent | undefined
    const grouped = Q.groupBy(src.q, (r: any) => {
      const sc: Scope = [...scope, { v: r, code: rn, t: src.elem }]
      key = this.with({ exact: true }, () => {
        if (this.tape.chance(60)) return this.scalar(sc, 'any', 1)
        const names = this.fieldNames(this.tape.nat(3))
        const obj: Record<string, unknown> = {}
        const fields: (readonly [string, Ty])[] = []
        const codes: string[] = []
        for (const f of names) {
          const x = this.scalar(sc, 'any', 1)
          obj[f] = x.v
          fields.push([f, x.t])
          codes.push(`${f}: ${x.code}`)
        }
        // Parenthesised: the code is an arrow function's body.
        return { v: obj, code: names.length === 0 ? '({})' : `({ ${codes.join(', ')} })`, t: { tag: 'r', fields } }
      })
      return key.v
    })
    const k = key as Ent
    const groupT: CT = { tag: 'c', elem: src.elem, card: src.card }
    const gT: RT = { tag: 'r', fields: [['key', k.t], ['group', groupT]] }
    let body: GQ | undefined
    const q = Q.for(grouped, (g: any) => {
      const sc: Scope = [...scope, { v: g, code: gn, t: gT }]
      body = this.tape.chance(35) ? this.query(sc, d - 1) : this.groupBody(sc, { v: g, code: gn, t: gT }, src, d - 1)
      return body.q
    })
    const b = body as GQ
    return { q, code: `Q.for(Q.groupBy(${src.code}, (${rn}) => ${k.code}), (${gn}) => ${b.code})`, elem: b.elem, card: Math.min(1e6, src.card * b.card) }
  }

  /** The usual body over a group `g`: `[Q.where(having,)] Q.yield({ key, aggregates, collections })`. */
  private groupBody(scope: Scope, g: Ent, src: GQ, d: number): GQ {
    const group = { v: g.v.group, code: `${g.code}.group`, t: { tag: 'c', elem: src.elem, card: src.card } as CT }
    const n = 1 + this.tape.nat(3)
    const names = this.fieldNames(n)
    const obj: Record<string, unknown> = {}
    const fields: (readonly [string, Ty])[] = []
    const codes: string[] = []
    const put = (f: string, e: Ent) => {
      obj[f] = e.v
      fields.push([f, e.t])
      codes.push(`${f}: ${e.code}`)
    }
    if (this.tape.chance(70)) put('key' in obj ? `key${names.length}` : names.includes('key') ? 'key_' : 'key', { v: g.v.key, code: `${g.code}.key`, t: (g.t as RT).fields[0]![1] })
    for (const f of names) {
      if (f in obj) continue
      put(f, this.tape.weighted<() => Ent>([
        [3, () => this.groupAggregate(scope, group, d)],
        [2, () => {
          // A nested collection of the group, sometimes filtered.
          const ln = this.fresh()
          let inner: Ent | undefined
          let cond: GS | undefined
          const v = Q.for(group.v, (l: any) => {
            const sc: Scope = [...scope, { v: l, code: ln, t: src.elem }]
            inner = this.tape.chance(30) ? { v: l, code: ln, t: src.elem } : this.with({ exact: true }, () => this.scalar(sc, 'any', 1))
            cond = this.tape.chance(40) ? this.with({ exact: true }, () => this.scalar(sc, 'boolean', 1)) : undefined
            return cond === undefined ? Q.yield(inner.v) : Q.where(cond.v, Q.yield(inner.v))
          })
          const i = inner as Ent
          const y = `Q.yield(${i.code})`
          return { v, code: `Q.for(${group.code}, (${ln}) => ${cond === undefined ? y : `Q.where(${(cond as GS).code}, ${y})`})`, t: { tag: 'c', elem: i.t, card: src.card } }
        }],
        [1, () => this.value(scope, 1)],
      ])())
    }
    const elem: RT = { tag: 'r', fields }
    const y = Q.yield(obj)
    const yCode = `Q.yield({ ${codes.join(', ')} })`
    if (!this.tape.chance(40)) return { q: y, code: yCode, elem, card: 1 }
    // HAVING: a condition on an aggregate of the group.
    const a = this.groupAggregate(scope, group, d) as GS
    const c = this.constant(a.t.kind === 'string' ? 'string' : 'int', false)
    const op = this.tape.pick(['gt', 'ge', 'lt', 'ne'])
    const f = (Q as unknown as Record<string, (x: unknown, y: unknown) => unknown>)[op] as (x: unknown, y: unknown) => unknown
    const cond = a.t.kind === 'string' || isNumKind(a.t.kind) ? f(a.v, c.v) : Q.gt(Q.count(group.v), 1)
    const condCode = a.t.kind === 'string' || isNumKind(a.t.kind) ? `Q.${op}(${a.code}, ${c.code})` : `Q.gt(Q.count(${group.code}), 1)`
    return { q: Q.where(cond as any, y), code: `Q.where(${condCode}, ${yCode})`, elem, card: 1 }
  }

  /** An aggregate of a group: count, a filtered count, sum/min/max of a scalar, count distinct. */
  private groupAggregate(scope: Scope, group: Ent & { t: CT }, d: number): GS {
    const elem = group.t.elem
    const ln = this.fresh()
    const card = group.t.card
    return this.tape.weighted<() => GS>([
      [2, () => ({ v: Q.count(group.v), code: `Q.count(${group.code})`, t: sT('int', false, card) })],
      [2, () => {
        let cond: GS | undefined
        const v = Q.count(Q.for(group.v, (l: any) => {
          cond = this.with({ exact: true }, () => this.scalar([...scope, { v: l, code: ln, t: elem }], 'boolean', 2))
          return Q.where(cond.v, Q.yield(l))
        }))
        return { v, code: `Q.count(Q.for(${group.code}, (${ln}) => Q.where(${(cond as GS).code}, Q.yield(${ln}))))`, t: sT('int', false, card) }
      }],
      [2, () => {
        const fn = this.tape.pick(['sum', 'min', 'max'] as const)
        let sel: GS | undefined
        let cond: GS | undefined
        const filtered = this.tape.chance(40)
        const inner = Q.for(group.v, (l: any) => {
          const sc: Scope = [...scope, { v: l, code: ln, t: elem }]
          sel = this.with({ exact: true }, () => this.scalar(sc, fn === 'sum' ? 'num' : 'ord', 1))
          cond = filtered ? this.with({ exact: true }, () => this.scalar(sc, 'boolean', 1)) : undefined
          return cond === undefined ? Q.yield(sel.v) : Q.where(cond.v, Q.yield(sel.v))
        })
        const s = sel as GS
        if (s.t.kind === 'boolean' || (fn === 'sum' && !isNumKind(s.t.kind) && s.t.kind !== 'null')) return { v: Q.count(group.v), code: `Q.count(${group.code})`, t: sT('int', false, card) }
        const bound = fn === 'sum' ? s.t.bound * Math.max(1, card) : s.t.bound
        if (bound > MAX_BOUND) return { v: Q.count(group.v), code: `Q.count(${group.code})`, t: sT('int', false, card) }
        const y = `Q.yield(${s.code})`
        const kind: Kind = fn === 'sum' && s.t.kind === 'null' ? 'int' : s.t.kind
        return { v: (Q[fn] as (q: AnyQuery) => unknown)(inner), code: `Q.${fn}(Q.for(${group.code}, (${ln}) => ${cond === undefined ? y : `Q.where(${(cond as GS).code}, ${y})`}))`, t: sT(kind, true, bound) }
      }],
      [1, () => {
        let sel: GS | undefined
        const v = Q.count(Q.distinct(Q.for(group.v, (l: any) => {
          sel = this.with({ exact: true }, () => this.scalar([...scope, { v: l, code: ln, t: elem }], 'any', 1))
          return Q.yield(sel.v)
        })))
        return { v, code: `Q.count(Q.distinct(Q.for(${group.code}, (${ln}) => Q.yield(${(sel as GS).code}))))`, t: sT('int', false, card) }
      }],
      [1, () => this.scalar(scope, 'int', Math.max(1, d - 1))],
    ])()
  }

  private yieldQ(scope: Scope, d: number, target?: Ty): GQ {
    const v = this.value(scope, d - 1, target)
    return { q: Q.yield(v.v), code: `Q.yield(${v.code})`, elem: v.t, card: 1 }
  }

  /**
   * The rows of a table that match a row in scope by a key: `Q.for(T, (y) => Q.where(Q.eq(y.c,
   * outer.k) [&& a filter over y], Q.yield(y)))`, the query an aggregate correlated by an
   * equality reads (rule `decorrelate-aggregate` rewrites such aggregates in a top-level branch
   * into a left-joined grouped table). Another query when no int or string column of a table
   * has a path of its kind in scope.
   */
  private keyedQ(scope: Scope, d: number): GQ {
    const pairs: [TableInfo, string, Ent][] = []
    for (const ti of this.tables) {
      for (const [c, ct] of ti.rowT.fields) {
        if (ct.tag !== 's' || (ct.kind !== 'int' && ct.kind !== 'string')) continue
        for (const p of this.scalarPaths(scope, [ct.kind])) if ((p.t as ST).kind === ct.kind) pairs.push([ti, c, p])
      }
    }
    if (pairs.length === 0) return this.query(scope, d)
    const [ti, c, outer] = this.tape.pick(pairs)
    const yn = this.fresh()
    let code = ''
    const q = Q.for(ti.tbl, (y: any) => {
      const eq = Q.eq(y[c], outer.v)
      const eqCode = `Q.eq(${yn}.${c}, ${outer.code})`
      if (!this.tape.chance(40)) {
        code = `Q.for(${ti.name}, (${yn}) => Q.where(${eqCode}, Q.yield(${yn})))`
        return Q.where(eq, Q.yield(y))
      }
      // a filter over the table's rows only
      const f = this.scalar([{ v: y, code: yn, t: ti.rowT }], 'boolean', 1)
      code = `Q.for(${ti.name}, (${yn}) => Q.where(Q.and(${eqCode}, ${f.code}), Q.yield(${yn})))`
      return Q.where(Q.and(eq, f.v), Q.yield(y))
    })
    return { q, code, elem: ti.rowT, card: MAX_ROWS }
  }

  /**
   * A report over a table: `Q.for(T, (x) => [Q.where(Q.gt(agg, n),] Q.yield({ f: agg, g: scalar, ... }))`,
   * the aggregates (count, sum of an int column, min/max of an int or string column) over the
   * rows of a table matching `x` by a key (`keyedQ`): the shape of TPC-H Q13's counts, which
   * rule `decorrelate-aggregate` rewrites.
   */
  reportQ(scope: Scope, d: number): GQ {
    const src = this.tableQ()
    const name = this.fresh()
    let elem: Ty | undefined
    let code = ''
    const q = Q.for(src.q, (x: any) => {
      const sc: Scope = [...scope, { v: x, code: name, t: src.elem }]
      const names = this.fieldNames(1 + this.tape.nat(3))
      const obj: Record<string, unknown> = {}
      const fields: (readonly [string, Ty])[] = []
      const codes: string[] = []
      for (const f of names) {
        const a = this.tape.chance(65) ? this.keyedAgg(sc, d) : this.scalar(sc, 'any', 1)
        obj[f] = a.v
        fields.push([f, a.t])
        codes.push(`${f}: ${a.code}`)
      }
      elem = { tag: 'r', fields }
      const y = `Q.yield({ ${codes.join(', ')} })`
      if (!this.tape.chance(30)) {
        code = y
        return Q.yield(obj)
      }
      const a = this.keyedAgg(sc, d, true)
      const n = this.tape.pick([0, 1, 2])
      code = `Q.where(Q.ge(${a.code}, ${n}), ${y})`
      return Q.where(Q.ge(a.v, n), Q.yield(obj))
    })
    return { q, code: `Q.for(${src.code}, (${name}) => ${code})`, elem: elem as Ty, card: MAX_ROWS }
  }

  /** An aggregate over the rows matching a row in scope by a key (`keyedQ`): count, sum of an int column, min or max of an int or string column. */
  private keyedAgg(scope: Scope, d: number, countOnly = false): GS {
    const kq = this.keyedQ(scope, Math.max(1, d - 1))
    const cols = kq.elem.tag === 'r' ? kq.elem.fields.filter(([, t]) => t.tag === 's' && (t.kind === 'int' || t.kind === 'string')) : []
    if (countOnly || cols.length === 0 || this.tape.chance(40)) return { v: Q.count(kq.q), code: `Q.count(${kq.code})`, t: sT('int', false, kq.card) }
    const [c, ct] = this.tape.pick(cols) as readonly [string, ST]
    const fn = ct.kind === 'int' ? this.tape.pick(['sum', 'min', 'max'] as const) : this.tape.pick(['min', 'max'] as const)
    const r = this.fresh()
    const f = Q[fn] as (q: AnyQuery, sel: (r: any) => unknown) => unknown
    return { v: f(kq.q, (row: any) => row[c]), code: `Q.${fn}(${kq.code}, (${r}) => ${r}.${c})`, t: sT(ct.kind, true, fn === 'sum' ? ct.bound * Math.max(1, kq.card) : ct.bound) }
  }

  private tableQ(): GQ {
    const ti = this.tape.pick(this.tables)
    return { q: ti.tbl, code: ti.name, elem: ti.rowT, card: MAX_ROWS }
  }

  private forQ(scope: Scope, d: number, target?: Ty): GQ {
    const src = this.source(scope, d - 1)
    const name = this.fresh()
    let body: GQ | undefined
    const q = Q.for(src.q, (x: any) => {
      // `Q.values([])` has no element type: its variable is not used.
      body = this.query(src.empty ? scope : [...scope, { v: x, code: name, t: src.elem }], d - 1, target)
      return body.q
    })
    const b = body as GQ
    return { q, code: `Q.for(${src.code}, (${name}) => ${b.code})`, elem: b.elem, card: Math.min(1e6, src.card * b.card) }
  }

  /** The source of a `Q.for`: a table, a nested-collection path, a nested query, a union, literals, a helper. */
  private source(scope: Scope, d: number): GQ & { empty?: boolean } {
    const colls = this.paths(scope).filter((p) => p.t.tag === 'c' && !p.t.limited && (!this.exact || exactTy(p.t)))
    return this.tape.weighted<() => GQ & { empty?: boolean }>([
      [50, () => this.tableQ()],
      [colls.length > 0 ? 80 : 0, () => this.collPath(colls)],
      [d > 0 ? 30 : 0, () => this.with({ nest: true }, () => this.query(scope, d))],
      [d > 0 ? 10 : 0, () => this.unionQ(scope, d + 1, undefined)],
      [6, () => this.valuesQ(scope, undefined)],
      [1, () => ({ q: Q.values([]), code: 'Q.values([])', elem: { tag: 'r', fields: [] }, card: 0, empty: true })],
      [this.inHelper ? 0 : 8, () => this.helperQ(scope) ?? this.tableQ()],
    ])()
  }

  /**
   * A generated query as a nested collection field: sometimes ordered by every scalar field of
   * its elements (so ties are equal elements and the oracle's sequence is the only right one),
   * and then sometimes limited (top-N). Only elements that are exact and hold no collection.
   */
  private nestedColl(q: GQ, allowLimit: boolean): Ent {
    const plainT: CT = { tag: 'c', elem: q.elem, card: q.card }
    const paths = orderPaths(q.elem)
    if (!exactTy(q.elem) || hasColl(q.elem) || paths.length === 0 || paths.length !== leafCount(q.elem) || !this.tape.chance(25)) {
      return { v: q.q, code: q.code, t: plainT }
    }
    const dirs = paths.map(() => this.tape.pick(['asc', 'desc'] as const))
    const keyFn = (r: any) => paths.map((p, i) => {
      const e = p.reduce((acc: any, f) => acc[f], r)
      return dirs[i] === 'desc' ? Q.desc(e) : e
    })
    const keysCode = paths.map((p, i) => (dirs[i] === 'desc' ? `Q.desc(${pathCode('r', p)})` : pathCode('r', p))).join(', ')
    let v: AnyQuery = Q.orderBy(q.q, keyFn)
    let code = `Q.orderBy(${q.code}, (r) => [${keysCode}])`
    if (allowLimit && this.tape.chance(60)) {
      const n = this.tape.nat(4)
      const off = this.tape.chance(40) ? this.tape.nat(3) : 0
      v = Q.limit(v, n, off)
      code = `Q.limit(${code}, ${n}${off ? `, ${off}` : ''})`
      return { v, code, t: { ...plainT, card: Math.min(q.card, n), limited: true } }
    }
    return { v, code, t: plainT }
  }

  private collPath(colls: readonly Ent[]): GQ {
    const p = this.tape.pick(colls)
    const ct = p.t as CT
    return { q: p.v, code: p.code, elem: ct.elem, card: ct.card }
  }

  /**
   * `Q.for(src, x => [Q.where(cond,)] Q.yield({ ..., inner: <query over x>, ... }))`: rows with
   * nested collections. Returns the query and the name of one nested-collection field.
   */
  nestedResult(d: number): GQ {
    return this.nestedResultQ([], d).gq
  }

  private nestedResultQ(scope: Scope, d: number): { gq: GQ; innerName: string; inner: GQ } {
    const src = this.source(scope, d - 1)
    const xn = this.fresh()
    const n = 1 + this.tape.nat(3)
    const names = this.fieldNames(n)
    const innerAt = this.tape.nat(n)
    let fields: (readonly [string, Ent])[] = []
    let inner: GQ | undefined
    let cond: GS | undefined
    const q = Q.for(src.q, (x: any) => {
      const sc: Scope = src.empty ? scope : [...scope, { v: x, code: xn, t: src.elem }]
      fields = names.map((f, i) => {
        if (i === innerAt) {
          inner = this.with({ nest: this.tape.chance(40) }, () => this.query(sc, d - 1))
          // iterated by pipelineQ: ordered perhaps, never limited
          const e = this.nestedColl(inner, false)
          inner = { ...inner, q: e.v, code: e.code }
          return [f, e] as const
        }
        if (this.tape.chance(30)) {
          const nq = this.with({ nest: false }, () => this.query(sc, d - 2))
          return [f, this.nestedColl(nq, true)] as const
        }
        return [f, this.value(sc, 1)] as const
      })
      cond = this.tape.chance(30) ? this.with({ exact: true }, () => this.scalar(sc, 'boolean', 2)) : undefined
      const y = Q.yield(Object.fromEntries(fields.map(([f, e]) => [f, e.v])))
      return cond === undefined ? y : Q.where(cond.v, y)
    })
    const yieldCode = `Q.yield({ ${fields.map(([f, e]) => `${f}: ${e.code}`).join(', ')} })`
    const code = `Q.for(${src.code}, (${xn}) => ${cond === undefined ? yieldCode : `Q.where(${cond.code}, ${yieldCode})`})`
    const elem: RT = { tag: 'r', fields: fields.map(([f, e]) => [f, e.t] as const) }
    const i = inner as GQ
    return { gq: { q, code, elem, card: src.card }, innerName: names[innerAt] as string, inner: i }
  }

  /**
   * `Q.for(Q.for(src, x => Q.yield({ k, inner: <query>, ... })), y => Q.for(y.inner, z => body))`:
   * iterate a nested collection of a row of an intermediate query.
   */
  private pipelineQ(scope: Scope, d: number, target?: Ty): GQ {
    const { gq: inter, innerName, inner: i } = this.nestedResultQ(scope, d - 1)
    const yn = this.fresh()
    const zn = this.fresh()
    let body: GQ | undefined
    const q = Q.for(inter.q, (y: any) =>
      Q.for(y[innerName], (z: any) => {
        body = this.query([...scope, { v: y, code: yn, t: inter.elem }, { v: z, code: zn, t: i.elem }], d - 1, target)
        return body.q
      }),
    )
    const b = body as GQ
    return {
      q,
      code: `Q.for(${inter.code}, (${yn}) => Q.for(${yn}.${innerName}, (${zn}) => ${b.code}))`,
      elem: b.elem,
      card: Math.min(1e6, inter.card * i.card * b.card),
    }
  }

  private whereQ(scope: Scope, d: number, target?: Ty): GQ {
    // Sometimes a condition over constants only.
    const cond = this.with({ exact: true }, () => (this.tape.chance(15) ? this.scalar([], 'boolean', 2) : this.scalar(scope, 'boolean', Math.min(3, d))))
    const body = this.query(scope, d - 1, target)
    return { q: Q.where(cond.v, body.q), code: `Q.where(${cond.code}, ${body.code})`, elem: body.elem, card: body.card }
  }

  private unionQ(scope: Scope, d: number, target?: Ty): GQ {
    const n = this.tape.weighted([[4, 2], [1, 1], [2, 3]])
    const parts: GQ[] = []
    let ty = target
    for (let i = 0; i < n; i++) {
      // A later part may be an empty literal `Q.values([])`: the other parts give its type.
      const p = ty !== undefined && this.tape.chance(8) ? this.valuesQ(scope, ty, true) : this.query(scope, d - 1, ty)
      parts.push(p)
      ty = ty === undefined ? p.elem : unifyTy(ty, p.elem)
      if (ty === undefined) throw new Error(`generator bug: union part ${showTy(p.elem)} does not unify with ${showTy(target as Ty)}`)
    }
    return {
      q: Q.union(...parts.map((p) => p.q)),
      code: `Q.union(${parts.map((p) => p.code).join(', ')})`,
      elem: ty as Ty,
      card: parts.reduce((s, p) => s + p.card, 0),
    }
  }

  /** `Q.values([...])` of constants or records of constants (sometimes an in-scope scalar). */
  private valuesQ(scope: Scope, target: Ty | undefined, emptyOk = false): GQ {
    let shape = target && this.concretize(target)
    if (shape === undefined) {
      const k = this.resolve('any')
      if (this.tape.chance(50)) shape = sT(k, false)
      else {
        const names = this.fieldNames(1 + this.tape.nat(3))
        shape = { tag: 'r', fields: names.map((f) => [f, sT(this.resolve('any'), false)] as const) }
      }
    }
    const n = emptyOk ? this.tape.nat(4) : 1 + this.tape.nat(3)
    const items: Ent[] = []
    for (let i = 0; i < n; i++) {
      if (shape.tag === 's' && shape.kind !== 'null' && this.tape.chance(15)) items.push(this.leafScalar(scope, shape.kind as Concrete))
      else items.push(this.literal(shape))
    }
    let elem: Ty = shape
    for (const it of items) elem = must(unifyTy(elem, it.t))
    if (target === undefined) elem = items.slice(1).reduce<Ty>((acc, it) => must(unifyTy(acc, it.t)), (items[0] as Ent).t)
    return { q: Q.values(items.map((x) => x.v)), code: `Q.values([${items.map((x) => x.code).join(', ')}])`, elem, card: n }
  }

  // ------------------------------------------------ helper functions (composition)

  /**
   * Call (or define, then call) a helper: a JavaScript function returning a query, with no
   * parameter or with a row of a table as parameter. Its body is generated once from a fixed
   * tape position; every call replays the same choices, so all calls build the same query
   * shape (with fresh variables).
   */
  private helperQ(scope: Scope): GQ | undefined {
    const rows = this.paths(scope).filter((p) => this.tables.some((ti) => ti.rowT === p.t))
    const usable = this.helpers.filter((h) => h.param === undefined || rows.some((p) => p.t === h.param))
    if (usable.length > 0 && (this.helpers.length >= 3 || this.tape.chance(60))) {
      const h = this.tape.pick(usable)
      const arg = h.param === undefined ? undefined : this.tape.pick(rows.filter((p) => p.t === h.param))
      const pos = this.tape.pos
      this.tape.pos = h.start
      const body = this.helperBody(h.param, arg?.v)
      this.tape.pos = pos
      return { q: body.q, code: `${h.name}(${arg?.code ?? ''})`, elem: h.elem, card: h.card }
    }
    if (this.helpers.length >= 3) return undefined
    const arg = rows.length > 0 && this.tape.chance(70) ? this.tape.pick(rows) : undefined
    const param = arg?.t as RT | undefined
    const name = `h${this.helpers.length}`
    const start = this.tape.pos
    const body = this.helperBody(param, arg?.v)
    this.helpers.push({ name, param, start, elem: body.elem, card: body.card, def: `const ${name} = (${param ? 'p' : ''}) => ${body.code}` })
    return { q: body.q, code: `${name}(${arg?.code ?? ''})`, elem: body.elem, card: body.card }
  }

  private helperBody(param: RT | undefined, argView: unknown): GQ {
    const saved = { budget: this.budget, exact: this.exact, nest: this.nest, inHelper: this.inHelper }
    this.budget = 10
    this.exact = true
    this.nest = false
    this.inHelper = true
    try {
      return this.query(param ? [{ v: argView, code: 'p', t: param }] : [], 2)
    } finally {
      Object.assign(this, saved)
    }
  }
}

function must<T>(x: T | undefined): T {
  if (x === undefined) throw new Error('generator bug: types do not unify')
  return x
}

function hasColl(ty: Ty): boolean {
  return ty.tag === 'c' || (ty.tag === 'r' && ty.fields.some(([, x]) => hasColl(x)))
}

/** Number of scalar leaves of a type without collections. */
function leafCount(ty: Ty): number {
  return ty.tag === 's' ? 1 : ty.tag === 'r' ? ty.fields.reduce((n, [, x]) => n + leafCount(x), 0) : 0
}

/** A scalar or a record of scalars (what Q.distinct and group keys take). */
function flatTy(ty: Ty): boolean {
  if (ty.tag === 's') return true
  if (ty.tag === 'r') return ty.fields.every(([, x]) => flatTy(x))
  return false
}

function exactTy(ty: Ty): boolean {
  if (ty.tag === 's') return ty.exact
  if (ty.tag === 'r') return ty.fields.every(([, x]) => exactTy(x))
  return exactTy(ty.elem)
}

// ---------------------------------------------------------------- cases

export interface OrderKeyPath {
  /** Field path from the element (empty: the element itself, a scalar). */
  readonly path: readonly string[]
  readonly dir: 'asc' | 'desc'
}

/** A generated schema, its data, and a query over it. */
export interface Case extends BuiltQuery {
  readonly schema: Schema
  readonly data: Data
}

/** Scalar, exact field paths of an element type (not inside nested collections). */
function orderPaths(ty: Ty, prefix: readonly string[] = []): string[][] {
  // Decimals (strings ordered numerically) and JSON (unordered) are not checked as order keys.
  if (ty.tag === 's') return ty.exact && ty.kind !== 'decimal' && ty.kind !== 'json' ? [[...prefix]] : []
  if (ty.tag === 'r') return ty.fields.flatMap(([f, x]) => orderPaths(x, [...prefix, f]))
  return []
}

export interface BuiltQuery {
  /** The query as run (possibly ordered and limited). */
  readonly query: AnyQuery
  /** The query without its limit (the query itself when there is none). */
  readonly unlimited: AnyQuery
  readonly elem: Ty
  readonly order: readonly OrderKeyPath[] | undefined
  readonly limit: { readonly n: number; readonly offset: number } | undefined
  /** TypeScript source of the query: helper definitions, then `const q = ...`. */
  readonly code: string
}

const pathCode = (v: string, path: readonly string[]): string => [v, ...path].join('.')

/** Build a query over `schema` from a choice tape. Deterministic. */
export function buildQuery(schema: Schema, tapeValues: readonly number[]): BuiltQuery {
  const tables: TableInfo[] = schema.tables.map((tbl, i) => {
    const spec = schema.specs[i] as TableSpec
    return { tbl, name: spec.name, rowT: { tag: 'r', fields: spec.columns.map((c) => [c.name, sT(kindOfCol(c.kind), c.nullable, COL_BOUND[c.kind])] as const) } }
  })
  const tape = new Tape(tapeValues)
  const g = new Gen(tape, tables)
  // Often bias the whole query toward nested results (records with nested-query fields).
  g.nest = tape.chance(40)
  // ... and often make the result itself rows with nested collections.
  // ... and sometimes a report of aggregates correlated by a key (rule decorrelate-aggregate).
  const top = tape.chance(30) ? g.nestedResult(4) : tape.chance(12) ? g.reportQ([], 4) : g.query([], 4)
  let query: AnyQuery = top.q
  let code = top.code
  let order: OrderKeyPath[] | undefined
  if (tape.chance(25)) {
    const paths = orderPaths(top.elem)
    if (paths.length > 0) {
      const chosen = tape.chance(50) ? paths : paths.filter(() => tape.chance(50))
      const keys = (chosen.length > 0 ? chosen : [paths[0] as string[]]).map((path) => ({ path, dir: tape.pick(['asc', 'desc'] as const) }))
      const explicit = tape.chance(30)
      const single = keys.length === 1 && tape.chance(50)
      const keyFn = (r: any) => {
        const ks = keys.map((k) => {
          const e = k.path.reduce((acc: any, f) => acc[f], r)
          return k.dir === 'desc' ? Q.desc(e) : explicit ? Q.asc(e) : e
        })
        return single ? ks[0] : ks
      }
      const keyCodes = keys.map((k) => (k.dir === 'desc' ? `Q.desc(${pathCode('r', k.path)})` : explicit ? `Q.asc(${pathCode('r', k.path)})` : pathCode('r', k.path)))
      const keysCode = single ? keyCodes[0] : `[${keyCodes.join(', ')}]`
      if (tape.chance(50)) {
        query = query.orderBy(keyFn)
        code = `${code}.orderBy((r) => ${keysCode})`
      } else {
        query = Q.orderBy(query, keyFn)
        code = `Q.orderBy(${code}, (r) => ${keysCode})`
      }
      order = keys
    }
  }
  const unlimited = query
  let limit: { n: number; offset: number } | undefined
  if (tape.chance(15)) {
    limit = { n: tape.nat(6), offset: tape.chance(40) ? tape.nat(4) : 0 }
    query = query.limit(limit.n, limit.offset)
    code = `${code}.limit(${limit.n}${limit.offset ? `, ${limit.offset}` : ''})`
  }
  const helpers = g.helpers.map((h) => `${h.def}\n`).join('')
  return { query, unlimited, elem: top.elem, order, limit, code: `${helpers}const q = ${code}` }
}

export const arbTape: fc.Arbitrary<number[]> = fc.array(fc.nat({ max: 1023 }), { maxLength: 400, size: 'max' })

/** A schema, data for it and a query over it. */
export function arbCase(opts: { maxRows?: number; maxCost?: number } = {}): fc.Arbitrary<Case> {
  const maxCost = opts.maxCost ?? MAX_COST
  return arbSchema().chain((schema) =>
    fc
      .tuple(arbData(schema, opts.maxRows), arbTape)
      .map(([data, tape]): Case => {
        const b = buildQuery(schema, tape)
        const c: Case = { schema, data, ...b }
        Object.defineProperty(c, fc.toStringMethod, { value: () => caseCode(c), enumerable: false })
        return c
      })
      .filter((c) => estimateCost(c.query[AST], c.data) <= maxCost),
  )
}

/** A self-contained reproduction: schema, data, query. */
export function caseCode(c: { schema: Schema; data: Data; code: string }): string {
  const data = Object.entries(c.data)
    .map(([n, rows]) => `  ${n}: [${rows.length === 0 ? '' : `\n${rows.map((r) => `    ${lit(r)},`).join('\n')}\n  `}],`)
    .join('\n')
  return `\n${schemaCode(c.schema.specs)}\nconst data = {\n${data}\n}\n${c.code}\n`
}

// ---------------------------------------------------------------- cost

/** What the estimator knows of a value: its size when a collection, its element, its fields. */
interface Shape {
  readonly card?: number
  readonly elem?: Shape
  readonly fields?: Readonly<Record<string, Shape>>
}
type ShapeEnv = ReadonlyMap<number, Shape>

const maxShape = (a: Shape, b: Shape): Shape => {
  const fields: Record<string, Shape> = { ...(a.fields ?? {}) }
  for (const [k, v] of Object.entries(b.fields ?? {})) fields[k] = fields[k] ? maxShape(fields[k] as Shape, v) : v
  return {
    card: Math.max(a.card ?? 0, b.card ?? 0),
    ...(a.elem || b.elem ? { elem: maxShape(a.elem ?? {}, b.elem ?? {}) } : {}),
    fields,
  }
}

/**
 * A rough bound on the work of evaluating `e` by nested loops over `data` (the oracle's
 * strategy; the databases do about as much), following the sizes of nested collections
 * through variables and fields. Cases above a limit are not generated, so the oracle and the
 * databases stay fast.
 */
export function estimateCost(e: ast.Expr, data: Data): number {
  const bindEnv = (env: ShapeEnv, v: ast.Var, sh: Shape): ShapeEnv => new Map(env).set(v.id, sh)
  const value = (x: ast.Expr, env: ShapeEnv): Shape => {
    switch (x.kind) {
      case 'table': case 'for': case 'where': case 'yield': case 'union': case 'values': case 'order': case 'limit': case 'let': case 'group': case 'distinct':
        return { card: card(x, env), elem: elem(x, env) }
      case 'record': return { fields: Object.fromEntries(x.fields.map(([k, f]) => [k, value(f, env)])) }
      case 'var': return env.get(x.v.id) ?? {}
      case 'field': return value(x.target, env).fields?.[x.name] ?? {}
      default: return {}
    }
  }
  const elem = (q: ast.Expr, env: ShapeEnv): Shape => {
    switch (q.kind) {
      case 'table': return {}
      case 'for': return elem(q.body, bindEnv(env, q.v, elem(q.source, env)))
      case 'where': return elem(q.body, env)
      case 'yield': return value(q.value, env)
      case 'union': return q.parts.reduce<Shape>((acc, p) => maxShape(acc, elem(p, env)), {})
      case 'values': return q.items.reduce<Shape>((acc, i) => maxShape(acc, value(i, env)), {})
      case 'order': case 'limit': return elem(q.query, env)
      case 'let': return elem(q.body, bindEnv(env, q.v, value(q.value, env)))
      case 'order': case 'limit': case 'distinct': return elem(q.query, env)
      case 'group': return { fields: { key: {}, group: { card: card(q.source, env), elem: elem(q.source, env) } } }
      default: return value(q, env).elem ?? {}
    }
  }
  const card = (q: ast.Expr, env: ShapeEnv): number => {
    switch (q.kind) {
      case 'table': return data[q.table.name]?.length ?? 0
      case 'for': return card(q.source, env) * card(q.body, bindEnv(env, q.v, elem(q.source, env)))
      case 'where': return card(q.body, env)
      case 'yield': return 1
      case 'union': return q.parts.reduce((s, p) => s + card(p, env), 0)
      case 'values': return q.items.length
      case 'order': return card(q.query, env)
      case 'limit': return Math.min(card(q.query, env), q.limit ?? Infinity)
      case 'let': return card(q.body, bindEnv(env, q.v, value(q.value, env)))
      case 'group': return card(q.source, env)
      case 'distinct': return card(q.query, env)
      default: return value(q, env).card ?? MAX_ROWS
    }
  }
  const cost = (x: ast.Expr, env: ShapeEnv): number => {
    switch (x.kind) {
      case 'table': return 1 + (data[x.table.name]?.length ?? 0)
      case 'for': {
        const env2 = bindEnv(env, x.v, elem(x.source, env))
        return cost(x.source, env) + card(x.source, env) * cost(x.body, env2)
      }
      case 'where': return cost(x.cond, env) + cost(x.body, env)
      case 'yield': return 1 + cost(x.value, env)
      case 'union': return x.parts.reduce((s, p) => s + cost(p, env), 1)
      case 'values': return x.items.reduce((s, p) => s + cost(p, env), 1)
      case 'record': return x.fields.reduce((s, [, p]) => s + cost(p, env), 1)
      case 'op': return x.args.reduce((s, p) => s + cost(p, env), 1)
      case 'field': case 'var': return 1 + (value(x, env).card ?? 0)
      case 'exists': case 'agg': return cost(x.query, env)
      case 'order': case 'limit': return cost(x.query, env) + card(x.query, env)
      // the value once (it is computed once), then the body
      case 'let': return cost(x.value, env) + cost(x.body, bindEnv(env, x.v, value(x.value, env)))
      // Grouping compares every element with every group.
      case 'group': {
        const n = card(x.source, env)
        return cost(x.source, env) + n * (cost(x.key, bindEnv(env, x.v, elem(x.source, env))) + n)
      }
      case 'distinct': return cost(x.query, env) + card(x.query, env) ** 2
      default: return 1
    }
  }
  return cost(e, new Map())
}

export const MAX_COST = 20_000

// ---------------------------------------------------------------- coverage

/** Features of a query's AST (node kinds, operators, aggregate functions, source kinds). */
export function features(q: AnyQuery): Set<string> {
  const out = new Set<string>()
  const walk = (e: ast.Expr): void => {
    out.add(e.kind)
    switch (e.kind) {
      case 'for':
        out.add(`for<-${e.source.kind}`)
        if (e.source.kind === 'table') {
          let b = e.body
          let n = 1
          for (;;) {
            while (b.kind === 'where') b = b.body
            if (b.kind !== 'for' || b.source.kind !== 'table') break
            n++
            b = b.body
          }
          if (n > 1) out.add(`join${n}`)
        }
        walk(e.source)
        walk(e.body)
        return
      case 'where': walk(e.cond); walk(e.body); return
      case 'yield':
        if (e.value.kind === 'record' && e.value.fields.length === 0) out.add('yield{}')
        walk(e.value)
        return
      case 'union': out.add(`union/${e.parts.length}`); e.parts.forEach((p) => walk(p)); return
      case 'values': if (e.items.length === 0) out.add('values[]'); e.items.forEach((i) => walk(i)); return
      case 'field': walk(e.target); return
      case 'record':
        for (const [, x] of e.fields) {
          if (x.kind === 'for' || x.kind === 'where' || x.kind === 'yield' || x.kind === 'union' || x.kind === 'values' || x.kind === 'table') out.add('nested-query-field')
          if (x.kind === 'record') out.add('nested-record')
          if (x.kind === 'order') out.add('nested-order')
          if (x.kind === 'limit') out.add('nested-limit')
          walk(x)
        }
        return
      case 'const': out.add(e.value === null ? 'const:null' : `const:${e.as ?? typeof e.value}`); return
      case 'op':
        out.add(`op:${e.op}`)
        if (e.op === 'like' && e.args[1]?.kind !== 'const') out.add('like:computed')
        e.args.forEach((a) => walk(a))
        return
      case 'exists': out.add(e.negated ? 'empty' : 'exists'); out.add(`exists<-${e.query.kind}`); walk(e.query); return
      case 'agg':
        out.add(`agg:${e.fn}`)
        if (e.fn === 'count' && e.query.kind === 'distinct') out.add('agg:countDistinct')
        out.add(`agg<-${e.query.kind === 'for' && e.query.body.kind === 'yield' && e.query.source.kind !== 'table' ? `select:${e.query.source.kind}` : e.query.kind}`)
        walk(e.query)
        return
      case 'order': e.keys.forEach((k) => walk(k.expr)); walk(e.query); return
      case 'limit': walk(e.query); return
      case 'let':
        out.add(`let<-${e.value.kind}`)
        walk(e.value)
        walk(e.body)
        return
      case 'group': out.add(`group<-${e.source.kind}`); walk(e.source); walk(e.key); return
      case 'distinct': walk(e.query); return
      default: return
    }
  }
  walk(q[AST])
  return out
}
