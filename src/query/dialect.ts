/**
 * Every difference between SQLite and PostgreSQL lives here, as named hooks. The compiler
 * (`lower.ts`), the decoder (`decode.ts`) and the DDL helpers call these and nothing else
 * dialect-specific.
 */
import { LineageQueryError, showValue } from '../errors.js'
import type { Constant } from './ast.js'
import type { ScalarKind } from './schema.js'

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
  readonly lateral: 'lateral' | 'jsonEach'
}

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

const sqlite: DialectHooks = {
  name: 'sqlite',
  sqlType: (kind) => (kind === 'string' ? 'text' : kind === 'real' ? 'real' : 'integer'),
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
  lateral: 'jsonEach',
}

const postgres: DialectHooks = {
  name: 'postgres',
  sqlType: (kind) => (kind === 'string' ? 'text' : kind === 'int' ? 'bigint' : kind === 'real' ? 'double precision' : 'boolean'),
  paramCast: (kind) => (kind === 'string' ? 'text' : kind === 'int' ? 'bigint' : kind === 'real' ? 'double precision' : kind === 'boolean' ? 'boolean' : undefined),
  toDb: (v) => v,
  fromDb(kind, raw) {
    if (raw === null) return null
    switch (kind) {
      case 'int':
        return intFrom(raw)
      case 'real':
        return realFrom(raw)
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
  lateral: 'lateral',
}

export const dialects: Readonly<Record<Dialect, DialectHooks>> = { sqlite, postgres }

export function hooksFor(name: unknown): DialectHooks {
  if (name === 'sqlite' || name === 'postgres') return dialects[name]
  throw new LineageQueryError('dialect', `unknown dialect ${showValue(name)}; expected 'sqlite' or 'postgres'`, { dialect: name })
}
