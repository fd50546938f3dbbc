/**
 * Column codecs beyond io-ts's own: dates, timestamps, decimals and JSON. Each is an ordinary
 * io-ts codec (use it in `table(...)`, in `t.union([..., t.null])`, or on its own) that also
 * carries the SQL scalar kind it stores as, which `schema.ts` reads.
 *
 * | codec | TypeScript | PostgreSQL | SQLite |
 * |---|---|---|---|
 * | `DateString` | `'YYYY-MM-DD'` string | `date` | ISO text `'YYYY-MM-DD'` |
 * | `Timestamp` | JS `Date` (millisecond precision) | `timestamptz` | ISO-8601 UTC text `'YYYY-MM-DDTHH:MM:SS.sssZ'` |
 * | `decimal(p, s)` | decimal string with exactly `s` fraction digits (`'12.50'`) | `numeric(p, s)` | integer count of `10^-s` units |
 * | `Json` | any JSON value but top-level `null` (`JsonValue`) | `jsonb` | JSON text, keys sorted |
 */
import * as t from 'io-ts'

/** The marker under which a codec of this module records its SQL kind. */
export const SQL_KIND: unique symbol = Symbol('lineage-query.sqlKind')

export type ExtKind = 'date' | 'timestamp' | 'decimal' | 'json'

declare const SQL_KIND_T: unique symbol
/** Phantom type of the codecs of this module: the SQL kind they store as (read by `KyselySchema`). */
export interface SqlKindTag<K extends ExtKind> {
  readonly [SQL_KIND_T]?: K
}

export interface SqlKindInfo {
  readonly kind: ExtKind
  /** Decimals: total digits and digits after the point. */
  readonly precision?: number
  readonly scale?: number
}

function mark<C extends t.Mixed>(codec: C, info: SqlKindInfo): C {
  Object.defineProperty(codec, SQL_KIND, { value: Object.freeze(info), enumerable: false })
  return codec
}

/** The SQL kind a codec of this module stores as, or `undefined` for any other codec. */
export function sqlKindOf(codec: unknown): SqlKindInfo | undefined {
  return typeof codec === 'object' && codec !== null ? (codec as { [SQL_KIND]?: SqlKindInfo })[SQL_KIND] : undefined
}

// ---------------------------------------------------------------- dates

const DATE_RE = /^(\d{4})-(\d{2})-(\d{2})$/

/** Days in a month (1-12) of the proleptic Gregorian calendar. */
export function daysInMonth(year: number, month: number): number {
  return month === 2 ? ((year % 4 === 0 && year % 100 !== 0) || year % 400 === 0 ? 29 : 28) : [4, 6, 9, 11].includes(month) ? 30 : 31
}

/** Whether `s` is a calendar date `'YYYY-MM-DD'` with a year from 0001 to 9999. */
export function isDateString(s: unknown): s is string {
  if (typeof s !== 'string') return false
  const m = DATE_RE.exec(s)
  if (m === null) return false
  const y = Number(m[1])
  const mo = Number(m[2])
  const d = Number(m[3])
  return y >= 1 && mo >= 1 && mo <= 12 && d >= 1 && d <= daysInMonth(y, mo)
}

/**
 * `iso` plus `n` days, months or years, by the library's rule (months and years: a day past the
 * end of the target month is clamped to its last day, as PostgreSQL's `date + interval`); the
 * same arithmetic the dialects' `dateAdd` does in SQL. `undefined` outside years 0001-9999.
 */
export function addToDate(iso: string, unit: 'day' | 'month' | 'year', n: number): string | undefined {
  const m = DATE_RE.exec(iso)
  if (m === null || !Number.isSafeInteger(n)) return undefined
  let [y, mo, d] = [Number(m[1]), Number(m[2]), Number(m[3])]
  if (unit === 'day') {
    const t = new Date(0)
    t.setUTCFullYear(y, mo - 1, d + n)
    ;[y, mo, d] = [t.getUTCFullYear(), t.getUTCMonth() + 1, t.getUTCDate()]
  } else {
    const total = y * 12 + (mo - 1) + n * (unit === 'year' ? 12 : 1)
    y = Math.floor(total / 12)
    mo = total - y * 12 + 1
    if (y < 1 || y > 9999) return undefined
    d = Math.min(d, daysInMonth(y, mo))
  }
  const out = `${String(y).padStart(4, '0')}-${String(mo).padStart(2, '0')}-${String(d).padStart(2, '0')}`
  return isDateString(out) ? out : undefined
}

/**
 * A calendar date as a `'YYYY-MM-DD'` string (years 0001-9999, no time, no zone).
 * PostgreSQL `date`, SQLite text; text order is date order.
 * @example `table('orders', { id: t.Int, placed: DateString })`
 */
export const DateString: t.Type<string, string, unknown> & SqlKindTag<'date'> = mark(
  new t.Type<string, string, unknown>('DateString', isDateString, (u, c) => (isDateString(u) ? t.success(u) : t.failure(u, c)), (a) => a),
  { kind: 'date' },
)

/** Whether `d` is a valid `Date` whose UTC year is 0001-9999. */
export function isTimestamp(d: unknown): d is Date {
  if (!(d instanceof Date)) return false
  const ms = d.getTime()
  if (Number.isNaN(ms)) return false
  const y = d.getUTCFullYear()
  return y >= 1 && y <= 9999
}

/**
 * An instant as a JavaScript `Date` (millisecond precision, UTC years 0001-9999). PostgreSQL
 * `timestamptz`, SQLite ISO-8601 UTC text (`toISOString()`, fixed width, so text order is
 * time order). Decoding also accepts that text and PostgreSQL's JSON form of `timestamptz`.
 * @example `table('events', { id: t.Int, at: Timestamp })`
 */
export const Timestamp: t.Type<Date, Date, unknown> & SqlKindTag<'timestamp'> = mark(
  new t.Type<Date, Date, unknown>(
    'Timestamp',
    isTimestamp,
    (u, c) => {
      if (isTimestamp(u)) return t.success(u)
      if (typeof u === 'string' && /^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}(:?\d{2})?)$/.test(u)) {
        const d = new Date(u.replace(' ', 'T'))
        if (isTimestamp(d)) return t.success(d)
      }
      return t.failure(u, c)
    },
    (a) => a,
  ),
  { kind: 'timestamp' },
)

// ---------------------------------------------------------------- decimals

/** A decimal value as TypeScript sees it: a string of digits (`'12.50'`), see `decimal(p, s)`. */
export type DecimalString = `${number}`

const DECIMAL_RE = /^-?\d+(\.\d+)?$/

/** `s` with exactly `scale` digits after the point, or `undefined` when it has more non-zero ones or is not a decimal. */
export function fixScale(s: string, scale: number): string | undefined {
  if (!DECIMAL_RE.test(s)) return undefined
  const neg = s.startsWith('-')
  const body = neg ? s.slice(1) : s
  const [ip = '0', fp = ''] = body.split('.')
  if (fp.length > scale && /[^0]/.test(fp.slice(scale))) return undefined
  const frac = fp.length > scale ? fp.slice(0, scale) : fp.padEnd(scale, '0')
  const int = ip.replace(/^0+(?=\d)/, '')
  const zero = /^0*$/.test(int + frac)
  return `${neg && !zero ? '-' : ''}${int}${scale > 0 ? `.${frac}` : ''}`
}

/** Digits after the point of a decimal string (`'1.50'` -> 2). */
export const scaleOf = (s: string): number => {
  const i = s.indexOf('.')
  return i < 0 ? 0 : s.length - i - 1
}

/**
 * An exact decimal as a string with exactly `scale` digits after the point (`decimal(15, 2)`:
 * `'1234.50'`, `'-0.05'`), at most `precision - scale` digits before it. Decoding accepts fewer
 * fraction digits (`'1.5'` becomes `'1.50'`) and rejects more (no silent rounding).
 * PostgreSQL `numeric(precision, scale)`; SQLite an integer count of `10^-scale` units, exact
 * up to 2^53 units (`precision` at most 15 on SQLite, checked when writing and reading).
 * @example `table('lineitem', { id: t.Int, price: decimal(15, 2) })`
 */
export function decimal(precision: number, scale: number): t.Type<DecimalString, DecimalString, unknown> & SqlKindTag<'decimal'> {
  if (!Number.isSafeInteger(precision) || !Number.isSafeInteger(scale) || precision < 1 || precision > 1000 || scale < 0 || scale > precision) {
    throw new TypeError(`decimal(precision, scale): expected integers with 1 <= precision <= 1000 and 0 <= scale <= precision, got (${String(precision)}, ${String(scale)})`)
  }
  const fits = (s: string): boolean => {
    const digits = s.replace('-', '').split('.')[0]!.replace(/^0+/, '').length
    return digits <= precision - scale
  }
  const is = (u: unknown): u is DecimalString => typeof u === 'string' && fixScale(u, scale) === u && fits(u)
  return mark(
    new t.Type<DecimalString, DecimalString, unknown>(
      `decimal(${precision}, ${scale})`,
      is,
      (u, c) => {
        const v = typeof u === 'string' ? fixScale(u, scale) : undefined
        return v !== undefined && fits(v) ? t.success(v as DecimalString) : t.failure(u, c)
      },
      (a) => a,
    ),
    { kind: 'decimal', precision, scale },
  )
}

// ---------------------------------------------------------------- JSON

/** A JSON value. */
export type JsonValue = null | boolean | number | string | readonly JsonValue[] | { readonly [k: string]: JsonValue }

function isJson(u: unknown, depth = 0): boolean {
  if (depth > 100) return false
  if (u === null || typeof u === 'boolean' || typeof u === 'string') return typeof u !== 'string' || !u.includes('\u0000')
  if (typeof u === 'number') return Number.isFinite(u)
  if (Array.isArray(u)) return u.every((x) => isJson(x, depth + 1))
  if (typeof u === 'object') {
    const p = Object.getPrototypeOf(u)
    if (p !== Object.prototype && p !== null) return false
    return Object.entries(u as object).every(([k, x]) => !k.includes('\u0000') && isJson(x, depth + 1))
  }
  return false
}

/**
 * A JSON document: any JSON value (`JsonValue`; typed `unknown` in rows and results, to narrow
 * with your own codec or checks) except a top-level `null` (a nullable column is
 * `t.union([Json, t.null])`; JSON `null` and SQL NULL would decode alike). Strings may not
 * contain NUL (PostgreSQL `jsonb` rejects it). PostgreSQL `jsonb`; SQLite JSON text written
 * with object keys sorted, so equal documents written by this library have equal text.
 * @example `table('docs', { id: t.Int, body: Json })`
 */
export const Json: t.Type<unknown, unknown, unknown> & SqlKindTag<'json'> = mark(
  new t.Type<unknown, unknown, unknown>('Json', (u): u is unknown => u !== null && isJson(u), (u, c) => (u !== null && isJson(u) ? t.success(u) : t.failure(u, c)), (a) => a),
  { kind: 'json' },
)

/** JSON text with object keys sorted recursively (the canonical text the SQLite dialect stores). */
export function canonicalJson(v: unknown): string {
  const sort = (x: unknown): unknown => {
    if (Array.isArray(x)) return x.map(sort)
    if (typeof x === 'object' && x !== null) {
      const out: Record<string, unknown> = {}
      for (const k of Object.keys(x).sort()) out[k] = sort((x as Record<string, unknown>)[k])
      return out
    }
    return x
  }
  return JSON.stringify(sort(v))
}
