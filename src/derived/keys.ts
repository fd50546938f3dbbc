/**
 * Canonical text for keys and addresses. The root revision triggers compute the same text in
 * SQL (see `sql/dialect.ts`, `keyExpr`), so a lineage entry read in JavaScript and a revision row
 * written by a trigger meet on equal strings.
 *
 * - A root key: `JSON.stringify` of the key value: `7`, `"abc"`, `true`, or `[1,"x"]` for a
 *   composite key.
 * - A derived row's address: for a derivation whose rows come from one root table, one entry
 *   each, the root key's text; otherwise the JSON list of `[table, key]` pairs, sorted:
 *   `[["d",1],["e","x"]]`.
 */
import { LineageQueryError, showValue } from '../errors.js'
import type { SourceRow } from './types.js'

/** Canonical text of a root key value. */
export function keyText(key: unknown): string {
  return JSON.stringify(key) ?? 'null'
}

const entryId = (e: SourceRow): string => `${e.table}\u0000${keyText(e.key)}`

/** Root lineage entries deduplicated and sorted by (table, key text). */
export function normaliseLineage(entries: readonly SourceRow[]): SourceRow[] {
  const seen = new Map<string, SourceRow>()
  for (const e of entries) {
    const id = entryId(e)
    if (!seen.has(id)) seen.set(id, { table: e.table, key: e.key })
  }
  return [...seen.entries()].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0)).map(([, e]) => e)
}

/** The address of a derived row given its (normalised) root lineage. */
export function addressOf(lineage: readonly SourceRow[], singleRoot: boolean): string {
  if (singleRoot && lineage.length === 1) return keyText(lineage[0]!.key)
  return JSON.stringify(lineage.map((e) => [e.table, e.key]))
}

/**
 * The root lineage of a derived row, from its address alone (an address is the row's
 * normalised root lineage: the root key of `roots[0]`, or the list of entries).
 */
export function lineageOfAddress(address: string, roots: readonly string[]): SourceRow[] {
  const v: unknown = parseAddress(address)
  if (isEntryList(v)) return v.map(([table, key]) => ({ table, key }))
  return [{ table: roots[0]!, key: v }]
}

/** The user-facing form of an address: the root key, or the list of `{ table, key }` entries. */
export function addressValue(address: string): unknown {
  const v: unknown = parseAddress(address)
  if (isEntryList(v)) return v.map(([table, key]) => ({ table, key }))
  return v
}

/**
 * Integer literals too long to be safe integers, outside JSON strings (the integer part of a
 * fraction or of a number with an exponent is not one, nor are the digits of a fraction: they
 * stay numbers).
 */
const LONG_INTEGER = /("(?:[^"\\]|\\.)*")|(?<![\d.])(-?\d{16,})(?![\d.eE])/g

/**
 * The value of an address or key text. Integers outside JavaScript's safe range (written by
 * another client) come back as their decimal text, never rounded: `9007199254740993` is
 * `'9007199254740993'`, so a key the library hands out names the row it came from.
 */
export function parseAddress(address: string): unknown {
  const v: unknown = JSON.parse(address)
  if (!/\d{16}/.test(address) || !hasUnsafeInteger(v)) return v
  return JSON.parse(address.replace(LONG_INTEGER, (m, str: string | undefined, num: string | undefined) => (str !== undefined ? str : Number.isSafeInteger(Number(num)) ? m : `"${num}"`)))
}

function hasUnsafeInteger(v: unknown): boolean {
  if (typeof v === 'number') return Number.isInteger(v) && !Number.isSafeInteger(v)
  if (Array.isArray(v)) return v.some(hasUnsafeInteger)
  return false
}

/**
 * Why a root key text cannot be the key of a row JavaScript can read back, or undefined when it
 * can: an integer outside the safe range (another client wrote it; this library never does).
 */
export function unrepresentableKey(text: string): string | undefined {
  if (!/\d{16}/.test(text)) return undefined
  let v: unknown
  try {
    v = JSON.parse(text)
  } catch {
    return undefined
  }
  return hasUnsafeInteger(v) ? `an integer outside JavaScript's safe range (±(2^53 - 1)); integer keys of tracked tables must be safe integers` : undefined
}

/** The kind of a root key column, for checking keys users pass. */
export type KeyKind = 'int' | 'string' | 'boolean'

const fits = (kind: KeyKind, v: unknown): boolean => (kind === 'int' ? Number.isSafeInteger(v) : kind === 'string' ? typeof v === 'string' : typeof v === 'boolean')
const isIntText = (v: unknown): v is string => typeof v === 'string' && /^-?\d+$/.test(v) && !Number.isSafeInteger(Number(v))

/**
 * The key text of a root key a user passes (to `affected`, `get`, `status`), checked against the
 * root's key columns: the key value (`7`, `'abc'`, `[1, 'x']` for a composite key); for keys
 * that are not strings, also the key's text as the library hands it out (`'7'`, the `lq_key`
 * of a derived row, or an integer beyond the safe range as its decimal text); a `bigint` for an
 * integer column. Anything else is an `argument` error naming the expected form.
 */
export function rootKeyText(key: unknown, kinds: readonly KeyKind[], root: string, what: string, entry = false): string {
  const one = kinds.length === 1
  // A string root key given as the JSON text the library hands out for it (`lq_key`, `"abc"`)
  // cannot be told from a key that really has quotes: refused, naming both forms.
  if (!entry && one && kinds[0] === 'string' && typeof key === 'string' && /^".*"$/s.test(key) && typeof tryParse(key) === 'string') {
    throw new LineageQueryError('argument', `${what}: ${showValue(key)} is the JSON text (lq_key) of the string key ${showValue(tryParse(key))} of root table \`${root}\`; pass the key itself (${showValue(tryParse(key))}), or, for a key that really contains the quotes, the lineage form [{ table: '${root}', key: ${showValue(key)} }]`, { table: root, key })
  }
  const ok = (v: unknown): boolean => (one ? fits(kinds[0]!, v) || (kinds[0] === 'int' && isIntText(v)) : Array.isArray(v) && v.length === kinds.length && v.every((c, i) => fits(kinds[i]!, c) || (kinds[i] === 'int' && isIntText(c))))
  // Decimal text stands for an integer beyond the safe range only in an integer column; in a
  // string column it is the string itself.
  const textOf = (v: unknown): string => (one ? (kinds[0] === 'int' && isIntText(v) ? v : keyText(v)) : `[${(v as unknown[]).map((c, i) => (kinds[i] === 'int' && isIntText(c) ? c : keyText(c))).join(',')}]`)
  const num = (c: unknown): unknown => (typeof c !== 'bigint' ? c : Number.isSafeInteger(Number(c)) ? Number(c) : String(c))
  const big = (v: unknown): unknown => (Array.isArray(v) ? v.map(num) : num(v))
  const k = big(key)
  if (ok(k) && !(one && kinds[0] === 'int' && typeof k === 'string' && !isIntText(k))) return textOf(k)
  // The key's text (an lq_key, a revision row's key): not for string keys, where a string is the key itself.
  if (typeof key === 'string' && !(one && kinds[0] === 'string')) {
    let v: unknown
    try {
      v = parseAddress(key)
    } catch {
      v = undefined
    }
    if (v !== undefined && ok(v)) return textOf(v)
  }
  const form = one ? `${kinds[0] === 'int' ? 'an integer' : kinds[0] === 'string' ? 'a string' : 'a boolean'} (${kinds[0] === 'int' ? "7, or its text '7'" : kinds[0] === 'string' ? "'abc'" : 'true'})` : `an array of ${kinds.length} values (${kinds.join(', ')}), e.g. [${kinds.map((k) => (k === 'int' ? '1' : k === 'string' ? "'x'" : 'true')).join(', ')}], or its JSON text`
  throw new LineageQueryError('argument', `${what}: the key of root table \`${root}\` is ${form}; got ${showValue(key)}`, { table: root, key: typeof key === 'bigint' ? String(key) : key })
}

function isEntryList(v: unknown): v is [string, unknown][] {
  return Array.isArray(v) && v.every((x) => Array.isArray(x) && x.length === 2 && typeof x[0] === 'string')
}

/**
 * The address for a key a user passes to `status`/`get`: a root key value for single-root
 * derivations, or a list of `{ table, key }` root entries.
 */
export function addressFromUser(key: unknown, singleRoot: boolean): string {
  return addressFromUserChecked(key, singleRoot, undefined)
}

/** What `addressFromUserChecked` needs to know of the roots. */
export interface KeyShapes {
  /** The derived table's name and its roots, for messages. */
  readonly table: string
  readonly roots: readonly string[]
  /** Key column kinds of a tracked root, or undefined. */
  kinds(root: string): readonly KeyKind[] | undefined
  /** The calling method, for messages (`store.get`). */
  readonly what: string
}

/**
 * `addressFromUser`, with every key checked against its root's key columns (see
 * `rootKeyText`): a root key (single-root derivations), a list of `{ table, key }` root entries,
 * or the row's `lq_key` text as `run()` and `lineage(q, { composed: false })` hand it out.
 */
export function addressFromUserChecked(key: unknown, singleRoot: boolean, shapes: KeyShapes | undefined): string {
  if (shapes === undefined) return addressFromUserLoose(key, singleRoot)
  const entryKey = (e: SourceRow): SourceRow => {
    const kinds = shapes.kinds(e.table)
    if (kinds === undefined) throw new LineageQueryError('argument', `${shapes.what}: lineage entry names table ${showValue(e.table)}, which is not a root of \`${shapes.table}\` (roots: ${shapes.roots.join(', ')})`, { table: shapes.table })
    return { table: e.table, key: parseAddress(rootKeyText(e.key, kinds, e.table, shapes.what, true)) }
  }
  if (isUserEntryList(key)) return addressOf(normaliseLineage((key as SourceRow[]).map(entryKey)), singleRoot)
  if (singleRoot && !(Array.isArray(key) && key.length === 0)) {
    // An lq_key text of a list form (a single-root row whose lineage is a list): as stored.
    if (typeof key === 'string' && key.startsWith('[[')) {
      const v = tryParse(key)
      if (isEntryList(v)) return addressOf(normaliseLineage(v.map(([table, k]) => entryKey({ table, key: k }))), singleRoot)
    }
    return rootKeyText(key, shapes.kinds(shapes.roots[0]!) ?? ['int'], shapes.roots[0]!, shapes.what)
  }
  if (Array.isArray(key) && key.length === 0) return '[]'
  if (typeof key === 'string') {
    const v = tryParse(key)
    if (isEntryList(v)) return addressOf(normaliseLineage(v.map(([table, k]) => entryKey({ table, key: k }))), singleRoot)
  }
  throw new LineageQueryError('argument', `${shapes.what}: rows of \`${shapes.table}\` are addressed by their root lineage, a list of { table, key } entries (e.g. [{ table: '${shapes.roots[0]}', key: 1 }${shapes.roots.length > 1 ? `, { table: '${shapes.roots[1]}', key: 2 }` : ''}]) or its lq_key text; got ${showValue(key)}`, { table: shapes.table })
}

function tryParse(text: string): unknown {
  try {
    return parseAddress(text)
  } catch {
    return undefined
  }
}

const isUserEntryList = (key: unknown): boolean => Array.isArray(key) && key.length > 0 && key.every((e) => typeof e === 'object' && e !== null && !Array.isArray(e) && 'table' in e && 'key' in e)

function addressFromUserLoose(key: unknown, singleRoot: boolean): string {
  if (Array.isArray(key) && key.length > 0 && key.every((e) => typeof e === 'object' && e !== null && !Array.isArray(e) && 'table' in e && 'key' in e)) {
    return addressOf(normaliseLineage(key as SourceRow[]), singleRoot)
  }
  if (Array.isArray(key) && key.length === 0) return '[]'
  return keyText(key)
}

/** Recorded input revisions: `[table, key text, revision]` triples. */
export type InputRevs = readonly (readonly [string, string, number])[]

export function inputsText(inputs: InputRevs): string {
  if (inputs.length < 2) return JSON.stringify(inputs)
  return JSON.stringify([...inputs].sort((a, b) => (a[0] + '\u0000' + a[1] < b[0] + '\u0000' + b[1] ? -1 : 1)))
}

export function parseInputs(text: string | null | undefined): InputRevs {
  if (text === null || text === undefined || text === '') return []
  return JSON.parse(text) as InputRevs
}
