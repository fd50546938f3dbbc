/**
 * Every difference between SQLite and PostgreSQL lives here, as named hooks. The compiler
 * (`lower.ts`, `lower/*.ts`), the decoder (`decode.ts`) and the DDL helpers call these and nothing else
 * dialect-specific.
 */
import { LineageQueryError, showValue } from '../errors.js'
import type { Constant } from './ast.js'
import { canonicalJson, fixScale, isDateString, Timestamp } from './codecs.js'
import type { ScalarKind } from './schema.js'
import * as S from './sql-nodes.js'

export type Dialect = 'sqlite' | 'postgres'

export interface DialectHooks {
  readonly name: Dialect
  /** Column type for DDL. */
  sqlType(kind: ScalarKind): string
  /** Cast name for a bound parameter of this kind, or `undefined` for no cast. */
  paramCast(kind: ScalarKind): string | undefined
  /** A JavaScript constant as the database driver wants it bound. */
  toDb(value: Constant): unknown
  /** A raw value read from the driver (column or parsed JSON) as the JavaScript scalar of `kind`. */
  fromDb(kind: ScalarKind, raw: unknown): unknown
  /** Collation to put on string comparisons and orderings so strings compare by code point. */
  readonly binaryCollation: string | undefined
  /** Name of the function building a JSON array from its arguments. */
  readonly jsonArray: string
  /** Name of the aggregate collecting values into a JSON array. */
  readonly jsonAgg: string
  /** Whether a JSON array coming back from a top-level column is a string to parse. */
  readonly jsonAsText: boolean
  /** The null-safe equality operator (a group's rows match its key, NULL included). */
  readonly nullSafeEq: 'is not distinct from' | 'is'
  /**
   * How a filtered aggregate of a group is written: `filter`: `sum(x) FILTER (WHERE c)`; `case`:
   * `sum(CASE WHEN c THEN x END)` (`count(CASE WHEN c THEN 1 END)`). JSON aggregates always use
   * FILTER (a CASE would add NULL elements).
   */
  readonly filteredAggregate: 'filter' | 'case'
  /**
   * How a derived table that reads earlier FROM items (a group of rows correlated with an outer
   * generator) is written: `lateral (...)`, or, where there is no LATERAL, as rows of
   * `json_each(...)` (a table-valued function may read earlier FROM items).
   */
  lateralItem(sub: S.Select, columns: readonly string[]): S.Node
  /** Column `col` of lateral item `alias` (as `lateralItem` wrote it). */
  lateralColumn(alias: string, col: string): S.Node
  /**
   * Whether a `lateralItem` gives back every value exactly. SQLite's `json_each` passes them
   * through JSON text, where a REAL keeps 15 significant digits (`0.1 + 0.2` comes back as
   * `0.3`): rule `one-scan-correlated-aggregates` leaves real and decimal aggregates alone there.
   */
  readonly lateralExact: boolean

  // ---------------------------------------------------------------- dates, decimals, JSON, functions
  /** A column value of `kind` (as its codec decoded it) as the driver wants it bound. */
  columnToDb(kind: ScalarKind, value: unknown, scale: number | undefined): unknown
  /** A decimal constant (its text, of `scale` digits) as bound. */
  decimalToDb(text: string, scale: number): unknown
  /** A raw decimal read from the driver (column or JSON) as the text of `scale` fraction digits. */
  decimalFromDb(raw: unknown, scale: number): unknown
  /** Raise a decimal's scale by `by` digits (SQLite stores scaled integers; PostgreSQL: nothing). */
  rescale(n: S.Node, by: number): S.Node
  /** A decimal of `scale` as a real (double). */
  decimalToReal(n: S.Node, scale: number): S.Node
  /** `x / y` of reals, NULL when `y` is 0. */
  realDiv(x: S.Node, y: S.Node): S.Node
  /** A scalar of `kind` placed in a JSON array (nested collections): decimals keep their digits. */
  jsonSlot(n: S.Node, kind: ScalarKind): S.Node
  /** `round(x, digits)` of a real, half away from zero. */
  roundReal(x: S.Node, digits: number): S.Node
  /** `round(x, digits)` of a decimal of `scale > digits`, half away from zero, exactly. */
  roundDecimal(x: S.Node, scale: number, digits: number): S.Node
  /** Year, month or day of a date or (in UTC) a timestamp, as an integer. */
  datePart(part: 'year' | 'month' | 'day', x: S.Node, kind: 'date' | 'timestamp'): S.Node
  /** `d` plus `n` units; months and years clamp the day to the end of the month. */
  dateAdd(unit: 'day' | 'month' | 'year', d: S.Node, n: S.Node): S.Node
  /** SQL substring by the standard's rule (positions before 1 count, negative lengths give ''). */
  substring(s: S.Node, start: S.Node, length: S.Node | undefined): S.Node
  /** `substring` from position `from` (>= 1), `count` characters (>= 0; all when undefined). */
  substringFrom(s: S.Node, from: number, count: number | undefined): S.Node
  /** Trim spaces. */
  trim(s: S.Node): S.Node
  /** Case-sensitive LIKE with `\` escapes against a computed pattern (NULL for a pattern ending in a lone `\`). */
  likeDynamic(x: S.Node, pattern: S.Node): S.Node

  // ---------------------------------------------------------------- lowering (lower/*.ts)
  /** NULL of `kind` where a bare NULL would be mistyped (union columns, operands): cast or not. */
  typedNull(kind: ScalarKind): S.Node
  /** The LIMIT to write when a query has only an OFFSET (`undefined`: none needed). */
  readonly limitForOffset: S.Node | undefined
  /**
   * A LIMIT or OFFSET count (a non-negative safe integer) as written in the statement. Rule
   * `literal-plan-inputs` (SQLite): a literal, see `sqlitePlanInput`.
   */
  limitCount(n: number): S.Node
  /** `exists (sub)`'s subquery: SQLite 3.51 applies an outer OFFSET once per row of an EXISTS subquery in WHERE, so it gets `limit 1`. */
  existsSubquery(sub: S.Select): S.Select
  /** A JSON aggregate that is `[]`, not NULL, over no rows. */
  jsonAggOrEmpty(agg: S.Node): S.Node
  /** A JSON value (a JSON aggregate's result) as text. */
  jsonText(n: S.Node): S.Node
  /** A JSON aggregate's element that is an untyped NULL (PostgreSQL cannot aggregate one into JSON). */
  jsonNullElement(n: S.Node): S.Node
  /**
   * Whether the top-level lineage columns of a statement (key slots of `kinds`, and the branch
   * number when `tagged`) travel as one column instead (`LinLayout.packed`), and in which form:
   * `json`, the text of a JSON array of the slots (then the branch number); `text`, only for
   * integer slots, their decimal texts (empty for NULL) and then the branch number, joined by
   * commas (`packedText`). The drivers build one JavaScript property (and PostgreSQL one string)
   * per column per row, which costs more than one text column parsed when the lineage is read.
   * `undefined`: one column per slot.
   */
  packKeys(kinds: readonly ScalarKind[], tagged: boolean): 'json' | 'text' | undefined
  /** The `text` form of packed keys (see `packKeys`): `parts` (integers or NULL) joined by commas, NULL as ''. */
  packedText(parts: readonly S.Node[]): S.Node
  /**
   * The FROM item computing a shared `Q.let` value once per row of the items before it, named
   * `alias`, and the column it is read from (`sharedColumn`).
   */
  sharedItem(value: S.Node, alias: string): S.Node
  readonly sharedColumn: string
  /** `x / y` of integers as a real, NULL when `y` is 0. */
  intDiv(x: S.Node, y: S.Node): S.Node
  /** `x % y` of integers, NULL when `y` is 0. */
  mod(x: S.Node, y: S.Node): S.Node
  /** ASCII-only lower or upper case (as SQLite's own functions). */
  asciiCase(op: 'lower' | 'upper', x: S.Node): S.Node
  /** Case-sensitive LIKE with `\` escapes against a constant pattern (not ending in a lone `\`). */
  likeConst(x: S.Node, pattern: string): S.Node
  /** Column type of a decimal column declared with a precision (`undefined`: as `sqlType('decimal')`). */
  decimalColumnType(precision: number, scale: number): string | undefined
  /** Whether text values cannot hold the NUL character (checked on write). */
  readonly textRejectsNul: boolean
  /**
   * A constant (as `toDb`/`decimalToDb` gives it) written into the SQL text as a literal, or
   * `undefined` to bind it as a parameter.
   */
  constantLiteral(value: unknown): S.Node | undefined
}

/** Private-use noncharacters standing for escaped pattern characters while SQLite translates LIKE to GLOB. */
const PH = { backslash: '\u{10FFFF}', percent: '\u{10FFFE}', underscore: '\u{FFFFF}', bracket: '\u{FFFFE}' }
const pow10 = (n: number): S.Node => S.literal(10 ** n)
const num = (n: number): S.Node => S.literal(n)


function intFrom(raw: unknown): unknown {
  if (typeof raw === 'bigint') {
    const n = Number(raw)
    if (!Number.isSafeInteger(n)) throw new LineageQueryError('decode', `integer ${raw} is outside JavaScript's safe integer range`, { value: String(raw) })
    return n
  }
  if (typeof raw === 'string' && /^-?\d+$/.test(raw)) {
    const n = Number(raw)
    if (!Number.isSafeInteger(n)) throw new LineageQueryError('decode', `integer ${raw} is outside JavaScript's safe integer range`, { value: raw })
    return n
  }
  return raw
}

function realFrom(raw: unknown): unknown {
  if (typeof raw === 'bigint') return Number(raw)
  if (typeof raw === 'string' && raw.trim() !== '' && !Number.isNaN(Number(raw))) return Number(raw)
  return raw
}

const PG_TYPES: Partial<Record<ScalarKind, string>> = {
  string: 'text', int: 'bigint', real: 'double precision', boolean: 'boolean', date: 'date', timestamp: 'timestamptz', decimal: 'numeric', json: 'jsonb',
}

/**
 * node-postgres parses a `date` into a JS Date at local midnight (pg-types' default parser):
 * its local parts are the date. (A user's own parser returning the text is used as is.)
 */
function dateFromLocal(d: Date): unknown {
  if (Number.isNaN(d.getTime())) return d
  const y = d.getFullYear()
  const text = `${String(y).padStart(4, '0')}-${String(d.getMonth() + 1).padStart(2, '0')}-${String(d.getDate()).padStart(2, '0')}`
  return isDateString(text) ? text : d
}

/** Timestamp text (ISO from SQLite, PostgreSQL's JSON form) as a Date; anything else as read. */
function timestampFrom(raw: string): unknown {
  const r = Timestamp.decode(raw)
  return r._tag === 'Right' ? r.right : raw
}

function parseJsonText(raw: string): unknown {
  try {
    return JSON.parse(raw)
  } catch {
    return raw
  }
}

/**
 * Text written as a PostgreSQL literal: printable ASCII without `'` and `\`, so its meaning does
 * not depend on `standard_conforming_strings` and nothing needs escaping.
 */
const PLAIN_TEXT = /^[\x20-\x26\x28-\x5b\x5d-\x7e]{0,64}$/

/**
 * PostgreSQL: small constants are literals in the SQL text (still under the parameter's cast, so
 * typed as a bound one): finite numbers (integers within JavaScript's safe range; not -0, whose
 * sign the text would lose) and short plain ASCII strings (dates, decimals, LIKE patterns, names).
 * Measured on TPC-H Q19 (53 constants), CPU time of client and server per execution: 1.19x the
 * official text with every constant bound, 1.09x with them inlined; the extra cost is binding and
 * typing the parameters, as the plans are the same. Anything else stays a bound parameter.
 */
function pgConstantLiteral(v: unknown): S.Node | undefined {
  if (typeof v === 'number') return Number.isFinite(v) && !Object.is(v, -0) && (!Number.isInteger(v) || Number.isSafeInteger(v)) ? S.literal(v) : undefined
  return typeof v === 'string' && PLAIN_TEXT.test(v) ? S.literal(v) : undefined
}

/**
 * Rule `literal-plan-inputs` (SQLite): the constants SQLite's planner reads while preparing a
 * statement (a LIKE/GLOB pattern, for its prefix range; a LIMIT or OFFSET count) are literals in
 * the text. A bound one marks the prepared statement to be prepared again each time the parameter
 * is bound (`sqlite3VdbeSetVarmask`), so every run prepared it twice: a 60-column select read
 * 95 µs per run with `limit ?` against 54 µs with `limit 5`, and 61 against 21 µs with `glob(?, y)`
 * against `glob('*1', y)`. TPC-H Q2 (a `LIKE` pattern and a `LIMIT`) read 1.12x the official text
 * with both bound, 1.01x with both literal (CPU time of the statement alone, same plan); Q10 1.10x
 * and 1.00x. Only plain ASCII text (`PLAIN_TEXT`) and integers: anything else stays bound.
 */
function sqlitePlanInput(v: number | string): S.Node {
  return (typeof v === 'number' ? Number.isSafeInteger(v) : PLAIN_TEXT.test(v)) ? S.literal(v) : S.param(v)
}

/**
 * `concat(p0, ',', p1, ...)` (NULL as ''), for `packedText`. A function call takes at most 100
 * arguments on PostgreSQL (127 on older SQLite): more parts are joined in groups of 50, then the
 * groups (the m-way join at m = 64 has 64 key slots).
 */
function joinedByCommas(parts: readonly S.Node[]): S.Node {
  if (parts.length <= 50) return S.fn('concat', parts.flatMap((p, i) => (i === 0 ? [p] : [S.literal(','), p])))
  const groups: S.Node[] = []
  for (let i = 0; i < parts.length; i += 50) groups.push(joinedByCommas(parts.slice(i, i + 50)))
  return joinedByCommas(groups)
}

const sqlite: DialectHooks = {
  name: 'sqlite',
  sqlType: (kind) => (kind === 'string' || kind === 'date' || kind === 'timestamp' || kind === 'json' ? 'text' : kind === 'real' ? 'real' : 'integer'),
  paramCast: () => undefined,
  toDb: (v) => (typeof v === 'boolean' ? (v ? 1 : 0) : v),
  fromDb(kind, raw) {
    if (raw === null) return null
    switch (kind) {
      case 'boolean':
        return raw === 1 || raw === 1n ? true : raw === 0 || raw === 0n ? false : raw
      case 'int':
        return intFrom(raw)
      case 'real':
        return realFrom(raw)
      case 'json':
        return typeof raw === 'string' ? parseJsonText(raw) : raw
      case 'timestamp':
        return typeof raw === 'string' ? timestampFrom(raw) : raw
      default:
        return raw
    }
  },
  binaryCollation: undefined,
  jsonArray: 'json_array',
  jsonAgg: 'json_group_array',
  jsonAsText: true,
  nullSafeEq: 'is',
  filteredAggregate: 'case',
  // json_each((select json_group_array(json_object('k0', k0, ...)) from (select ...) as r)),
  // read back with json_extract(value, '$.k0').
  lateralItem: (sub, columns) =>
    S.fn('json_each', [S.selectFromSubquery(sub, 'r', [{ expr: S.agg('json_group_array', [S.fn('json_object', columns.flatMap((c) => [S.literal(c), S.col('r', c)]))]), alias: 'v' }])]),
  lateralColumn: (alias, col) => S.fn('json_extract', [S.col(alias, 'value'), S.literal(`$.${col}`)]),
  lateralExact: false,
  columnToDb(kind, v, scale) {
    if (v === null) return null
    switch (kind) {
      case 'timestamp': return (v as Date).toISOString()
      case 'decimal': return this.decimalToDb(v as string, scale ?? 0)
      case 'json': return canonicalJson(v)
      default: return this.toDb(v as Constant)
    }
  },
  decimalToDb(text, scale) {
    const fixed = fixScale(text, scale)
    if (fixed === undefined) throw new LineageQueryError('argument', `decimal ${showValue(text)} has more than ${scale} fraction digits`, { value: text })
    const units = Number(fixed.replace('.', ''))
    if (!Number.isSafeInteger(units)) {
      throw new LineageQueryError('argument', `decimal ${fixed} does not fit SQLite's exact decimals (at most 2^53 units of 10^-${scale}, about 15 digits)`, { value: text })
    }
    // A BigInt binds as an INTEGER (a JS number would bind as REAL, breaking integer division).
    return BigInt(units)
  },
  decimalFromDb(raw, scale) {
    if (raw === null) return null
    const units = typeof raw === 'bigint' ? raw : typeof raw === 'number' && Number.isSafeInteger(raw) ? BigInt(raw) : undefined
    if (units === undefined || (typeof raw === 'bigint' && !Number.isSafeInteger(Number(raw)))) {
      throw new LineageQueryError('decode', `decimal value ${showValue(raw)} from SQLite is not an exact integer count of 10^-${scale} units (out of range: at most 2^53 units)`, { value: raw })
    }
    const neg = units < 0n
    const digits = (neg ? -units : units).toString().padStart(scale + 1, '0')
    const text = scale === 0 ? digits : `${digits.slice(0, digits.length - scale)}.${digits.slice(digits.length - scale)}`
    return neg ? `-${text}` : text
  },
  rescale: (n, by) => (by === 0 ? n : S.binary(n, '*', pow10(by))),
  decimalToReal: (n, scale) => S.binary(S.cast(n, 'real'), '/', pow10(scale)),
  // SQLite's division by zero is already NULL.
  realDiv: (x, y) => S.binary(x, '/', y),
  jsonSlot: (n) => n,
  roundReal: (x, digits) => S.fn('round', [x, num(digits)]),
  roundDecimal(x, scale, digits) {
    const f = 10 ** (scale - digits)
    // Integer division truncates toward zero: add half a unit away from zero first.
    return S.binary(S.parens(S.binary(x, '+', S.caseOf([[S.binary(x, '<', num(0)), num(-f / 2)]], num(f / 2)))), '/', num(f))
  },
  datePart: (part, x) => S.cast(S.fn('strftime', [S.literal(part === 'year' ? '%Y' : part === 'month' ? '%m' : '%d'), x]), 'integer'),
  dateAdd(unit, d, n) {
    const modifier = S.binary(n, '||', S.literal(unit === 'day' ? ' days' : unit === 'month' ? ' months' : ' years'))
    // 'floor': a day past the end of the month becomes its last day (SQLite 3.46+), as PostgreSQL.
    return unit === 'day' ? S.fn('date', [d, modifier]) : S.fn('date', [d, modifier, S.literal('floor')])
  },
  substring(s, start, length) {
    const from = S.fn('max', [start, num(1)])
    if (length === undefined) return S.fn('substr', [s, from])
    return S.fn('substr', [s, from, S.fn('max', [S.binary(S.binary(start, '+', length), '-', from), num(0)])])
  },
  substringFrom: (s, from, count) => S.fn('substr', count === undefined ? [s, num(from)] : [s, num(from), num(count)]),
  trim: (s) => S.fn('trim', [s]),
  likeDynamic(x, p) {
    // SQLite's LIKE ignores ASCII case; GLOB does not: translate the pattern to GLOB in SQL.
    const r = (n: S.Node, from: string, to: string) => S.fn('replace', [n, S.param(from), S.param(to)])
    let g = r(p, '\\\\', PH.backslash)
    g = r(g, '\\%', PH.percent)
    g = r(g, '\\_', PH.underscore)
    g = r(g, '\\', '')
    g = r(g, '[', PH.bracket)
    g = r(g, '*', '[*]')
    g = r(g, '?', '[?]')
    g = r(g, PH.bracket, '[[]')
    g = r(g, '%', '*')
    g = r(g, '_', '?')
    g = r(g, PH.backslash, '\\')
    g = r(g, PH.percent, '%')
    g = r(g, PH.underscore, '_')
    const loneEscape = S.binary(S.fn('substr', [r(p, '\\\\', ''), num(-1)]), '=', S.param('\\'))
    return S.caseOf([[loneEscape, S.literal(null)]], S.fn('glob', [g, x]))
  },

  typedNull: () => S.literal(null),
  limitForOffset: S.literal(-1),
  limitCount: sqlitePlanInput,
  existsSubquery: (sub) => S.withOrderAndLimit(sub, [], S.literal(1), undefined),
  // json_group_array is '[]' over no rows, and JSON is text already.
  jsonAggOrEmpty: (agg) => agg,
  jsonText: (n) => n,
  jsonNullElement: (n) => n,
  // better-sqlite3 sets one property per column per row: from three key columns on, one
  // json_array costs less (bench/lineage-packed-ab.ts, run and decode, CPU: m-way join at m = 4
  // 1.28x -> 1.13x the plain query, m = 64 1.95x -> 1.18x); at two, mixed (Q7 1.18x -> 1.26x,
  // QF3 1.51x -> 1.38x, and reading every entry, which parses the array, slower), except for one
  // key and a union's branch number (QF4 at N = 64: 1.57x -> 1.37x). Text costs SQLite the same
  // as json_array (raw driver, CPU, QF3 and QF4), so JSON, whose slots may be of any kind.
  packKeys: (kinds, tagged) => (kinds.length + (tagged ? 1 : 0) >= (tagged ? 2 : 3) ? 'json' : undefined),
  packedText: (parts) => joinedByCommas(parts),
  // No LATERAL: the table-valued function `json_each(json_array(<value>))`, whose argument may
  // read the items before it; its `value` column is the value with its SQL type.
  sharedItem: (value, alias) => S.aliased(S.fn('json_each', [S.fn('json_array', [value])]), alias),
  sharedColumn: 'value',
  // SQLite's division by zero is already NULL.
  intDiv: (x, y) => S.binary(S.cast(x, 'real'), '/', y),
  mod: (x, y) => S.binary(x, '%', y),
  asciiCase: (op, x) => S.fn(op, [x]),
  // SQLite's LIKE ignores ASCII case; GLOB does not.
  likeConst: (x, pattern) => S.fn('glob', [sqlitePlanInput(likeToGlob(pattern)), x]),
  decimalColumnType: () => undefined,
  textRejectsNul: false,
  // SQLite binds every constant (its statements are prepared in-process; binding costs little).
  constantLiteral: () => undefined,
}

const postgres: DialectHooks = {
  name: 'postgres',
  sqlType: (kind) => PG_TYPES[kind] ?? 'text',
  paramCast: (kind) => PG_TYPES[kind],
  toDb: (v) => v,
  fromDb(kind, raw) {
    if (raw === null) return null
    switch (kind) {
      case 'int':
        return intFrom(raw)
      case 'real':
        return realFrom(raw)
      case 'date':
        return raw instanceof Date ? dateFromLocal(raw) : raw
      case 'timestamp':
        return typeof raw === 'string' ? timestampFrom(raw) : raw
      default:
        return raw
    }
  },
  binaryCollation: 'C',
  jsonArray: 'json_build_array',
  jsonAgg: 'json_agg',
  jsonAsText: false,
  nullSafeEq: 'is not distinct from',
  filteredAggregate: 'filter',
  lateralItem: (sub) => S.lateral(sub),
  lateralColumn: (alias, col) => S.col(alias, col),
  lateralExact: true,
  columnToDb(kind, v) {
    if (v === null) return null
    // JSON as text (node-postgres would turn a JS array into a PostgreSQL array).
    return kind === 'json' ? JSON.stringify(v) : v
  },
  decimalToDb: (text) => text,
  decimalFromDb(raw, scale) {
    if (raw === null) return null
    const text = typeof raw === 'string' ? raw : typeof raw === 'number' && Number.isSafeInteger(raw) ? String(raw) : undefined
    const fixed = text === undefined ? undefined : fixScale(text, scale)
    // More non-zero fraction digits than the type's scale (a column declared without one): kept as read.
    return fixed ?? (text !== undefined && /^-?\d+(\.\d+)?$/.test(text) ? text : raw)
  },
  rescale: (n) => n,
  decimalToReal: (n) => S.cast(n, 'double precision'),
  realDiv: (x, y) => S.binary(x, '/', S.fn('nullif', [y, S.literal(0)])),
  // Decimals as text (no digit lost to JSON numbers); timestamps as UTC ISO text (to_json would
  // use the session time zone, whose historical offsets can have seconds JavaScript cannot parse).
  jsonSlot: (n, kind) =>
    kind === 'decimal' ? S.cast(n, 'text')
    : kind === 'timestamp' ? S.fn('to_char', [S.fn('timezone', [S.literal('UTC'), n]), S.literal('YYYY-MM-DD"T"HH24:MI:SS.US"Z"')])
    : n,
  roundReal: (x, digits) => S.cast(S.fn('round', [S.cast(x, 'numeric'), num(digits)]), 'double precision'),
  roundDecimal: (x, _scale, digits) => S.fn('round', [x, num(digits)]),
  datePart: (part, x, kind) => S.cast(S.fn('date_part', [S.literal(part), kind === 'timestamp' ? S.fn('timezone', [S.literal('UTC'), x]) : x]), 'bigint'),
  dateAdd(unit, d, n) {
    if (unit === 'day') return S.binary(d, '+', S.cast(n, 'integer'))
    const step = S.cast(S.literal(unit === 'month' ? '1 month' : '1 year'), 'interval')
    return S.cast(S.binary(d, '+', S.binary(S.cast(n, 'integer'), '*', step)), 'date')
  },
  substring(s, start, length) {
    // Positions are clamped to 32 bits (substring takes integers; no string is that long).
    const int = (n: S.Node) => S.cast(S.fn('least', [n, num(2147483647)]), 'integer')
    const from = S.fn('greatest', [start, num(1)])
    const body = length === undefined
      ? S.fn('substring', [s, int(from)])
      : S.fn('substring', [s, int(from), int(S.fn('greatest', [S.binary(S.binary(start, '+', length), '-', from), num(0)]))])
    // greatest() ignores NULLs; SQL's substring of a NULL position or length is NULL.
    const nulls = length === undefined ? S.binary(start, 'is', S.literal(null)) : S.or([S.binary(start, 'is', S.literal(null)), S.binary(length, 'is', S.literal(null))])
    return S.caseOf([[nulls, S.cast(S.literal(null), 'text')]], body)
  },
  substringFrom: (s, from, count) => S.fn('substring', count === undefined ? [s, num(from)] : [s, num(from), num(count)]),
  trim: (s) => S.fn('btrim', [s]),
  likeDynamic(x, p) {
    const loneEscape = S.binary(S.fn('right', [S.fn('replace', [p, S.cast(S.param('\\\\'), 'text'), S.cast(S.param(''), 'text')]), num(1)]), '=', S.cast(S.param('\\'), 'text'))
    return S.caseOf([[loneEscape, S.cast(S.literal(null), 'boolean')]], S.binary(x, 'like', p))
  },

  typedNull(kind) {
    const cast = PG_TYPES[kind]
    return cast === undefined ? S.literal(null) : S.cast(S.literal(null), cast as 'bigint')
  },
  limitForOffset: undefined,
  limitCount: (n) => S.param(n),
  existsSubquery: (sub) => sub,
  jsonAggOrEmpty: (agg) => S.fn('coalesce', [agg, S.fn('json_build_array', [])]),
  jsonText: (n) => S.cast(n, 'text'),
  jsonNullElement: (n) => S.cast(n, 'text'),
  // node-postgres builds one string per field and sets one property per column: from two integer
  // key columns (or one and a union's branch number) on, one text column costs less. QF3 at
  // N = 64 (91,422 rows), raw driver, CPU of client / server: plain 60 / 30 ms, two int8 key
  // columns 108 / 38 ms, concat(k0, ',', k1) 86 / 50 ms, json_build_array(k0, k1)::text 80 / 68 ms
  // (the server's JSON building costs more than the client saves). Other kinds stay columns.
  packKeys: (kinds, tagged) => (kinds.length + (tagged ? 1 : 0) >= 2 && kinds.every((k) => k === 'int') ? 'text' : undefined),
  // concat() reads NULL as ''; an integer's text has no comma.
  packedText: (parts) => joinedByCommas(parts),
  // `offset 0` keeps the planner from pulling the subquery up and copying the value to each use.
  sharedItem: (value, alias) => S.aliased(S.lateral(S.withOrderAndLimit(S.select({ from: [], selections: [{ expr: value, alias: 'v' }], where: [] }), [], undefined, S.literal(0))), alias),
  sharedColumn: 'v',
  intDiv: (x, y) => S.binary(S.cast(x, 'double precision'), '/', S.fn('nullif', [y, S.literal(0)])),
  mod: (x, y) => S.binary(x, '%', S.fn('nullif', [y, S.literal(0)])),
  asciiCase: (op, x) =>
    op === 'lower'
      ? S.fn('translate', [x, S.literal('ABCDEFGHIJKLMNOPQRSTUVWXYZ'), S.literal('abcdefghijklmnopqrstuvwxyz')])
      : S.fn('translate', [x, S.literal('abcdefghijklmnopqrstuvwxyz'), S.literal('ABCDEFGHIJKLMNOPQRSTUVWXYZ')]),
  likeConst: (x, pattern) => S.binary(x, 'like', S.cast(pgConstantLiteral(pattern) ?? S.param(pattern), 'text')),
  decimalColumnType: (precision, scale) => `numeric(${precision}, ${scale})`,
  textRejectsNul: true,
  constantLiteral: pgConstantLiteral,
}

/** Whether a LIKE pattern ends with an escape character that escapes nothing. */
export function endsWithLoneEscape(pattern: string): boolean {
  let escaped = false
  for (const ch of pattern) escaped = !escaped && ch === '\\'
  return escaped
}

function checkLikePattern(pattern: string): void {
  if (endsWithLoneEscape(pattern)) throw new LineageQueryError('type', `Q.like: the pattern ${JSON.stringify(pattern)} ends with an escape character (\\); escape it as \\\\ to match a backslash`, { pattern })
}

/** Translate a LIKE pattern (`%`, `_`, `\` escape) to SQLite's case-sensitive GLOB. */
function likeToGlob(pattern: string): string {
  checkLikePattern(pattern)
  let out = ''
  let escaped = false
  for (const ch of pattern) {
    if (escaped) {
      out += ch === '*' || ch === '?' || ch === '[' ? `[${ch}]` : ch
      escaped = false
    } else if (ch === '\\') escaped = true
    else if (ch === '%') out += '*'
    else if (ch === '_') out += '?'
    else if (ch === '*' || ch === '?' || ch === '[') out += `[${ch}]`
    else out += ch
  }
  return out
}

export const dialects: Readonly<Record<Dialect, DialectHooks>> = { sqlite, postgres }

export function hooksFor(name: unknown): DialectHooks {
  if (name === 'sqlite' || name === 'postgres') return dialects[name]
  throw new LineageQueryError('dialect', `unknown dialect ${showValue(name)}; expected 'sqlite' or 'postgres'`, { dialect: name })
}
