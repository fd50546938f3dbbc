/**
 * Bag (multiset) comparison of query results, with readable diffs.
 *
 * Values are scalars, records (plain objects: same field names, equal fields) and arrays
 * (nested collections: compared as bags, recursively; a collection the oracle ordered, as a
 * sequence). Numbers that are both integers must be
 * equal; otherwise a relative tolerance of 1e-9 applies. Types are never mixed: `1` is not
 * `true`, `'1'` is not `1`, `null` is not `undefined`/missing, and a bigint never equals anything
 * but an identical bigint (a decoder returning bigints is a bug to report).
 */

import { AnnotatedValue } from '../../src/query/lineage-value.js'

export const REL_TOLERANCE = 1e-9

export function numbersEqual(a: number, b: number): boolean {
  if (a === b) return true
  if (Number.isNaN(a) || Number.isNaN(b)) return false
  if (Number.isInteger(a) && Number.isInteger(b)) return false
  return Math.abs(a - b) <= REL_TOLERANCE * Math.max(Math.abs(a), Math.abs(b))
}

/**
 * An annotated element as `run(lineage(q))` returns it (an `AnnotatedValue`, lineage read on
 * first access) seen as the plain `{ data, lineage }` record it stands for: comparisons and
 * renderings below read both fields.
 */
const asPlain = (v: unknown): unknown => (v instanceof AnnotatedValue ? { data: v.data, lineage: v.lineage } : v)

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Date)

const DECIMAL = /^-?\d+\.\d+$/
/**
 * Two decimal strings with a fraction (`'1.5'`, `'1.50'`) that denote the same number: the
 * oracle gives a decimal the scale of the values it saw, the compiler the scale of its type
 * (larger in a union whose wider branch had no rows), so only the digits' value is compared.
 */
function sameDecimal(a: string, b: string): boolean {
  if (!DECIMAL.test(a) && !DECIMAL.test(b)) return false
  if (!/^-?\d+(\.\d+)?$/.test(a) || !/^-?\d+(\.\d+)?$/.test(b)) return false
  const norm = (x: string) => {
    const neg = x.startsWith('-')
    let [i = '', f = ''] = x.replace('-', '').split('.')
    i = i.replace(/^0+(?=\d)/, '')
    f = f.replace(/0+$/, '')
    const zero = /^0*$/.test(i + f)
    return `${neg && !zero ? '-' : ''}${i}.${f}`
  }
  return norm(a) === norm(b)
}

/** Whether the oracle marked this collection as ordered (test/oracle/evaluate.ts, `ORDERED`). */
const isOrdered = (xs: readonly unknown[]): boolean => (xs as unknown as Record<symbol, unknown>)[Symbol.for('lineage-query.oracle.ordered')] === true

/** Deep equality with arrays as bags, except those the oracle ordered: sequences. */
export function valueEquals(a: unknown, b: unknown): boolean {
  a = asPlain(a)
  b = asPlain(b)
  if (typeof a === 'number' && typeof b === 'number') return numbersEqual(a, b)
  if (a instanceof Date || b instanceof Date) return a instanceof Date && b instanceof Date && a.getTime() === b.getTime()
  if (typeof a === 'string' && typeof b === 'string' && a !== b) return sameDecimal(a, b)
  if (Array.isArray(a) && Array.isArray(b)) {
    if (isOrdered(a) || isOrdered(b)) return a.length === b.length && a.every((x, i) => valueEquals(x, b[i]))
    return bagEquals(a, b)
  }
  if (isRecord(a) && isRecord(b)) {
    const ka = Object.keys(a).sort()
    const kb = Object.keys(b).sort()
    if (ka.length !== kb.length || ka.some((k, i) => k !== kb[i])) return false
    return ka.every((k) => valueEquals(a[k], b[k]))
  }
  return a === b
}

/** Greedy matching of `a` against `b`: indexes of unmatched elements on each side. */
function match(a: readonly unknown[], b: readonly unknown[]): { extraA: number[]; extraB: number[] } {
  const used = new Array<boolean>(b.length).fill(false)
  const extraA: number[] = []
  for (let i = 0; i < a.length; i++) {
    let found = -1
    for (let j = 0; j < b.length; j++) {
      if (!used[j] && valueEquals(a[i], b[j])) {
        found = j
        break
      }
    }
    if (found < 0) extraA.push(i)
    else used[found] = true
  }
  const extraB: number[] = []
  used.forEach((u, j) => {
    if (!u) extraB.push(j)
  })
  return { extraA, extraB }
}

export function bagEquals(a: readonly unknown[], b: readonly unknown[]): boolean {
  if (a.length !== b.length) return false
  const { extraA } = match(a, b)
  return extraA.length === 0
}

/** Whether every element of `sub` (with multiplicity) is in `sup`. */
export function isSubBag(sub: readonly unknown[], sup: readonly unknown[]): boolean {
  return match(sub, sup).extraA.length === 0
}

// ---------------------------------------------------------------- rendering

/** A compact rendering: strings JSON-quoted (so whitespace, quotes and escapes are visible), bigints with `n`. */
export function show(v: unknown): string {
  v = asPlain(v)
  if (v === undefined) return 'undefined'
  if (typeof v === 'bigint') return `${v}n`
  if (typeof v === 'string') return JSON.stringify(v)
  if (typeof v === 'number') return Object.is(v, -0) ? '-0' : String(v)
  if (v instanceof Date) return Number.isNaN(v.getTime()) ? 'Invalid Date' : `Date(${v.toISOString()})`
  if (Array.isArray(v)) return `[${v.map(show).join(', ')}]`
  if (isRecord(v)) {
    const proto = Object.getPrototypeOf(v)
    const prefix = proto === Object.prototype || proto === null ? '' : `${(v as object).constructor?.name ?? '?'} `
    return `${prefix}{${Object.keys(v)
      .map((k) => `${/^[A-Za-z_$][\w$]*$/.test(k) ? k : JSON.stringify(k)}: ${show(v[k])}`)
      .join(', ')}}`
  }
  return String(v)
}

const typeName = (v: unknown): string => (v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v)

/** Where two values first differ, as `path: actual vs expected` lines (empty when equal). */
export function explainDifference(actual: unknown, expected: unknown, path = '$'): string[] {
  actual = asPlain(actual)
  expected = asPlain(expected)
  if (valueEquals(actual, expected)) return []
  if (Array.isArray(actual) && Array.isArray(expected)) {
    const { extraA, extraB } = match(actual, expected)
    const lines = [`${path}: nested bag differs (actual ${actual.length} elements, expected ${expected.length})`]
    for (const i of extraA.slice(0, 5)) lines.push(`  ${path}[*] unexpected: ${show(actual[i])}`)
    for (const j of extraB.slice(0, 5)) lines.push(`  ${path}[*] missing:    ${show(expected[j])}`)
    return lines
  }
  if (isRecord(actual) && isRecord(expected)) {
    const lines: string[] = []
    const keys = new Set([...Object.keys(actual), ...Object.keys(expected)])
    for (const k of keys) {
      if (!(k in actual)) lines.push(`${path}.${k}: missing in actual (expected ${show(expected[k])})`)
      else if (!(k in expected)) lines.push(`${path}.${k}: unexpected field (actual ${show(actual[k])})`)
      else lines.push(...explainDifference(actual[k], expected[k], `${path}.${k}`))
    }
    return lines
  }
  const types = typeName(actual) === typeName(expected) ? '' : ` (${typeName(actual)} vs ${typeName(expected)})`
  return [`${path}: actual ${show(actual)} vs expected ${show(expected)}${types}`]
}

export type BagResult = { readonly ok: true } | { readonly ok: false; readonly message: string }

const LIST = 12

/** Compare two bags; on mismatch, a message listing the missing and unexpected elements. */
export function compareBags(actual: readonly unknown[], expected: readonly unknown[]): BagResult {
  if (!Array.isArray(actual)) return { ok: false, message: `actual result is not an array: ${show(actual)}` }
  const { extraA, extraB } = match(actual, expected)
  if (extraA.length === 0 && extraB.length === 0) return { ok: true }
  const lines = [`bags differ: actual has ${actual.length} elements, expected ${expected.length}; ${extraB.length} missing, ${extraA.length} unexpected`]
  if (extraB.length > 0) {
    lines.push('missing (expected, not in actual):')
    for (const j of extraB.slice(0, LIST)) lines.push(`  - ${show(expected[j])}`)
    if (extraB.length > LIST) lines.push(`  ... ${extraB.length - LIST} more`)
  }
  if (extraA.length > 0) {
    lines.push('unexpected (in actual, not expected):')
    for (const i of extraA.slice(0, LIST)) lines.push(`  + ${show(actual[i])}`)
    if (extraA.length > LIST) lines.push(`  ... ${extraA.length - LIST} more`)
  }
  if (extraA.length === 1 && extraB.length === 1) {
    lines.push('difference:')
    for (const l of explainDifference(actual[extraA[0] as number], expected[extraB[0] as number])) lines.push(`  ${l}`)
  }
  if (actual.length + expected.length <= 2 * LIST) {
    lines.push(`actual:   ${show(actual)}`)
    lines.push(`expected: ${show(expected)}`)
  }
  return { ok: false, message: lines.join('\n') }
}

/** Throw an Error with the diff when the bags differ. */
export function assertBagEqual(actual: readonly unknown[], expected: readonly unknown[], context = ''): void {
  const r = compareBags(actual, expected)
  if (!r.ok) throw new Error(`${context ? `${context}\n` : ''}${r.message}`)
}

/** Compare two sequences element by element (values inside compared as above). */
export function compareSequences(actual: readonly unknown[], expected: readonly unknown[]): BagResult {
  if (actual.length === expected.length && actual.every((x, i) => valueEquals(x, expected[i]))) return { ok: true }
  const lines = [`sequences differ: actual has ${actual.length} elements, expected ${expected.length}`]
  const n = Math.max(actual.length, expected.length)
  for (let i = 0; i < n; i++) {
    if (i < actual.length && i < expected.length && valueEquals(actual[i], expected[i])) continue
    lines.push(`first difference at index ${i}:`)
    for (const l of explainDifference(actual[i], expected[i], `$[${i}]`)) lines.push(`  ${l}`)
    break
  }
  lines.push(`actual:   ${show(actual)}`)
  lines.push(`expected: ${show(expected)}`)
  return { ok: false, message: lines.join('\n') }
}

// ---------------------------------------------------------------- ordering

/**
 * The documented order of scalar keys: null least (first ascending, last descending), numbers
 * numerically, strings by code point, false < true. Independent of the oracle's comparator.
 */
export function compareKeys(a: unknown, b: unknown): number {
  if (a === null || b === null) return a === b ? 0 : a === null ? -1 : 1
  if (typeof a === 'number' && typeof b === 'number') return numbersEqual(a, b) ? 0 : a < b ? -1 : 1
  if (typeof a === 'boolean' && typeof b === 'boolean') return a === b ? 0 : a ? 1 : -1
  if (a instanceof Date && b instanceof Date) return a.getTime() === b.getTime() ? 0 : a.getTime() < b.getTime() ? -1 : 1
  if (typeof a === 'string' && typeof b === 'string') {
    const ca = Array.from(a, (c) => c.codePointAt(0) as number)
    const cb = Array.from(b, (c) => c.codePointAt(0) as number)
    for (let i = 0; i < Math.min(ca.length, cb.length); i++) if (ca[i] !== cb[i]) return (ca[i] as number) < (cb[i] as number) ? -1 : 1
    return ca.length - cb.length === 0 ? 0 : ca.length < cb.length ? -1 : 1
  }
  throw new Error(`cannot order ${show(a)} against ${show(b)}`)
}

export interface SortKey {
  /** Field path from the element; empty for the element itself. */
  readonly path: readonly string[]
  readonly dir: 'asc' | 'desc'
}

export function keyValues(elem: unknown, keys: readonly SortKey[]): unknown[] {
  return keys.map((k) => k.path.reduce<unknown>((v, f) => (isRecord(v) ? v[f] : undefined), elem))
}

/** Compare two elements by `keys` (0: tied). */
export function compareByKeys(a: unknown, b: unknown, keys: readonly SortKey[]): number {
  const ka = keyValues(a, keys)
  const kb = keyValues(b, keys)
  for (let i = 0; i < keys.length; i++) {
    const c = compareKeys(ka[i], kb[i])
    if (c !== 0) return (keys[i] as SortKey).dir === 'desc' ? -c : c
  }
  return 0
}

/** `{ ok: true }` when `xs` is sorted by `keys`; otherwise where it is not. */
export function checkSorted(xs: readonly unknown[], keys: readonly SortKey[]): BagResult {
  for (let i = 1; i < xs.length; i++) {
    if (compareByKeys(xs[i - 1], xs[i], keys) > 0) {
      return {
        ok: false,
        message: `not sorted by ${keys.map((k) => `${['r', ...k.path].join('.')} ${k.dir}`).join(', ')} at index ${i}: ${show(xs[i - 1])} before ${show(xs[i])}\nsequence: ${show(xs)}`,
      }
    }
  }
  return { ok: true }
}
