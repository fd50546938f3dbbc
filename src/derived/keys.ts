/**
 * Canonical text for keys and addresses. The root revision triggers compute the same text in
 * SQL (see `sql.ts`, `keyExpr`), so a lineage entry read in JavaScript and a revision row
 * written by a trigger meet on equal strings.
 *
 * - A root key: `JSON.stringify` of the key value: `7`, `"abc"`, `true`, or `[1,"x"]` for a
 *   composite key.
 * - A derived row's address: for a derivation whose rows come from one root table, one entry
 *   each, the root key's text; otherwise the JSON list of `[table, key]` pairs, sorted:
 *   `[["d",1],["e","x"]]`.
 */
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
  const v: unknown = JSON.parse(address)
  if (isEntryList(v)) return v.map(([table, key]) => ({ table, key }))
  return [{ table: roots[0]!, key: v }]
}

/** The user-facing form of an address: the root key, or the list of `{ table, key }` entries. */
export function addressValue(address: string): unknown {
  const v: unknown = JSON.parse(address)
  if (isEntryList(v)) return v.map(([table, key]) => ({ table, key }))
  return v
}

function isEntryList(v: unknown): v is [string, unknown][] {
  return Array.isArray(v) && v.every((x) => Array.isArray(x) && x.length === 2 && typeof x[0] === 'string')
}

/**
 * The address for a key a user passes to `status`/`get`: a root key value for single-root
 * derivations, or a list of `{ table, key }` root entries.
 */
export function addressFromUser(key: unknown, singleRoot: boolean): string {
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
