/**
 * Comparing TPC-H answers across dialects and between the official SQL and the DSL.
 *
 * Rows are normalised to arrays of plain values in the official select list's column order:
 * PostgreSQL's `numeric`/`bigint` strings become numbers, `date`s (JavaScript `Date`s from
 * node-postgres) become `YYYY-MM-DD` strings. Numbers are equal when they agree within a
 * relative tolerance of 1e-6 or an absolute one of 1e-6 (`numbersClose`): SQLite sums REALs
 * (doubles) while PostgreSQL sums `numeric` exactly, so SQLite's sums of ~10^8 carry rounding in
 * the last few of their 16 digits, and averages/divisions differ in their last digits. Ordered
 * answers are compared row by row; when that fails but the rows are equal as bags, the result
 * says so (ties in the ORDER BY keys may come back in either order).
 */
export type Cell = string | number | boolean | null
export type NormRow = readonly Cell[]

const NUMERIC = /^-?\d+(\.\d+)?(e[+-]?\d+)?$/i

function cell(v: unknown): Cell {
  if (v === null || v === undefined) return null
  if (v instanceof Date) return v.toISOString().slice(0, 10)
  if (typeof v === 'bigint') return Number(v)
  if (typeof v === 'string' && NUMERIC.test(v)) return Number(v)
  if (typeof v === 'number' || typeof v === 'boolean' || typeof v === 'string') return v
  return JSON.stringify(v)
}

/** Driver rows (objects) as arrays in `columns` order (default: each row's own key order). */
export function normalise(rows: readonly unknown[], columns?: readonly string[]): NormRow[] {
  return rows.map((r) => {
    if (r === null || typeof r !== 'object') return [cell(r)]
    const o = r as Record<string, unknown>
    return (columns ?? Object.keys(o)).map((c) => cell(o[c]))
  })
}

export function numbersClose(a: number, b: number): boolean {
  if (a === b) return true
  const diff = Math.abs(a - b)
  return diff <= 1e-6 || diff <= 1e-6 * Math.max(Math.abs(a), Math.abs(b))
}

function cellsEqual(a: Cell, b: Cell): boolean {
  if (typeof a === 'number' && typeof b === 'number') return numbersClose(a, b)
  return a === b
}

function rowsEqual(a: NormRow, b: NormRow): boolean {
  return a.length === b.length && a.every((x, i) => cellsEqual(x, b[i] as Cell))
}

/** A sort key: strings as they are, numbers rounded to 4 significant places past the point. */
const sortKey = (r: NormRow): string => JSON.stringify(r.map((c) => (typeof c === 'number' ? Number(c.toPrecision(8)) : c)))

export interface AnswerCheck {
  readonly equal: boolean
  /** 'ordered': row by row; 'bag': equal only as bags; 'different'. */
  readonly how: 'ordered' | 'bag' | 'different'
  readonly detail: string
}

/** Compare two normalised answers (`ordered`: the query's ORDER BY fixes the row order). */
export function compareAnswers(expected: readonly NormRow[], actual: readonly NormRow[], ordered: boolean): AnswerCheck {
  if (expected.length !== actual.length) {
    return { equal: false, how: 'different', detail: `${expected.length} rows expected, ${actual.length} got` }
  }
  if (ordered && expected.every((r, i) => rowsEqual(r, actual[i] as NormRow))) return { equal: true, how: 'ordered', detail: '' }
  const e = [...expected].sort((x, y) => (sortKey(x) < sortKey(y) ? -1 : sortKey(x) > sortKey(y) ? 1 : 0))
  const a = [...actual].sort((x, y) => (sortKey(x) < sortKey(y) ? -1 : sortKey(x) > sortKey(y) ? 1 : 0))
  const bad = e.findIndex((r, i) => !rowsEqual(r, a[i] as NormRow))
  if (bad === -1) return { equal: !ordered, how: 'bag', detail: ordered ? 'same rows, different order' : '' }
  return { equal: false, how: 'different', detail: `first difference: expected ${JSON.stringify(e[bad])}, got ${JSON.stringify(a[bad])}` }
}
