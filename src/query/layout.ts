/**
 * Result layouts: how a normalised value is spread over SQL columns (top level) or JSON array
 * slots (nested collections), and how to read it back. `plan` computes one layout for the
 * values all branches of a union produce at the same position; `lower.ts` emits SQL by it and
 * `decode.ts` reads rows by it.
 */
import type * as t from 'io-ts'
import { LineageQueryError } from '../errors.js'
import { isScalar, type GroupedLinBranch, type NExpr, type NValue } from './normal.js'
import { showType, unify, type ScalarKind, type SType } from './schema.js'

export type Layout = ScalarLayout | RecLayout | CollLayout | LinLayout

export interface ScalarLayout {
  readonly k: 'scalar'
  readonly type: SType
  /** The declared codec when every branch reads the same column; decoding goes through it. */
  readonly codec: t.Mixed | undefined
  readonly origin: { readonly table: string; readonly column: string } | undefined
}
export interface RecLayout {
  readonly k: 'rec'
  readonly fields: readonly (readonly [string, Layout])[]
}
export interface CollLayout {
  readonly k: 'coll'
  /** Layout of one element; `undefined` when no branch can produce an element. */
  readonly elem: Layout | undefined
  /** Whether each element carries its branch number (needed to read lineage of unions). */
  readonly tagged: boolean
  /** For each enclosing branch, the number of the first of its nested branches. */
  readonly offsets: readonly number[]
  /**
   * The elements are annotated (`{ data, lineage }`) and their lineage keys travel apart: the
   * collection is one JSON value `[data, keys]`, `data` the elements' data as the plain query
   * sends it and `keys` one entry per element (its only key slot, or an array of its key slots
   * and then its tag), in the same order. Not for ordered collections, a group's columns, nor
   * tagged ones (`plan` decides).
   */
  readonly keysApart: boolean
}
/** Lineage entries: key values in typed slots; which slots each branch uses. */
export interface LinLayout {
  readonly k: 'lin'
  readonly slots: readonly ScalarKind[]
  readonly branches: readonly LinBranchLayout[]
  /**
   * Top level only (`packTop`): the slots travel as one text column, the key values in slot order
   * and then, when `tagged`, the branch number (the statement then has no branch-number column):
   * `json`, a JSON array; `text` (integer slots only), their decimal texts joined by commas, ''
   * for NULL. Decoded when the lineage is read.
   */
  readonly packed?: { readonly tagged: boolean; readonly form: 'json' | 'text' }
}
export interface LinBranchLayout {
  readonly entries: readonly {
    readonly table: string
    readonly slots: readonly number[]
    readonly types: readonly SType[]
    /** The slot holds stored lineage (JSON): one key of `single`, or a list of `[table, key]`. */
    readonly stored?: { readonly single: string | undefined }
    /** The slot holds why-provenance witnesses (JSON, see `Lowerer.witness`). */
    readonly witness?: true
    /** The slot holds a group's lineage (JSON rows `[branch, ...keys]`, see `LinEntry.grouped`). */
    readonly grouped?: { readonly branches: readonly GroupedLinBranch[] }
  }[]
}

const KIND_ORDER: readonly ScalarKind[] = ['int', 'string', 'real', 'boolean', 'null', 'date', 'timestamp', 'decimal', 'json']

/** Number of columns or slots a layout occupies. */
export function width(l: Layout): number {
  switch (l.k) {
    case 'scalar':
    case 'coll':
      return 1
    case 'rec':
      return l.fields.reduce((n, [, f]) => n + width(f), 0)
    case 'lin':
      return l.packed === undefined ? l.slots.length : 1
  }
}

/** Key kinds whose values come back from a JSON array exactly as from a column (not reals, decimals, dates, timestamps, JSON). */
const PACKABLE: ReadonlySet<ScalarKind> = new Set(['int', 'string', 'boolean', 'null'])

/**
 * The top-level layout `l` with its lineage packed (`LinLayout.packed`) where the dialect finds
 * that cheaper (`packKeys`, given the key slots' kinds and whether there is a branch number):
 * `l` is an annotated element whose data holds no lineage outside nested collections, and every
 * entry of every branch is a key from columns (no stored, witness or group lineage) of kinds a
 * JSON array carries exactly (integers only for `text`). Returns the layout and whether the rows
 * still need a branch-number column.
 */
export function packTop(l: Layout, tagged: boolean, packKeys: (kinds: readonly ScalarKind[], tagged: boolean) => 'json' | 'text' | undefined): { value: Layout; tagged: boolean } {
  const a = annotatedFields(l)
  const lin = a?.lin
  if (a === undefined || lin === undefined || hasLineage(a.data)) return { value: l, tagged }
  if (!lin.slots.every((k) => PACKABLE.has(k))) return { value: l, tagged }
  if (lin.branches.some((b) => b.entries.some((e) => e.stored !== undefined || e.witness !== undefined || e.grouped !== undefined))) return { value: l, tagged }
  const form = packKeys(lin.slots, tagged)
  if (form === undefined || (form === 'text' && !lin.slots.every((k) => k === 'int'))) return { value: l, tagged }
  const packed: LinLayout = { ...lin, packed: { tagged, form } }
  const fields = a.linFirst ? [['lineage', packed], ['data', a.data]] as const : [['data', a.data], ['lineage', packed]] as const
  return { value: { k: 'rec', fields }, tagged: false }
}

/** The fields of an annotated element `{ data, lineage }` (the only records holding lineage), or `undefined`. */
export function annotatedFields(l: Layout): { data: Layout; lin: LinLayout; linFirst: boolean } | undefined {
  if (l.k !== 'rec' || l.fields.length !== 2) return undefined
  const [[a, x], [b, y]] = l.fields as [readonly [string, Layout], readonly [string, Layout]]
  if (a === 'data' && b === 'lineage' && y.k === 'lin') return { data: x, lin: y, linFirst: false }
  if (a === 'lineage' && b === 'data' && x.k === 'lin') return { data: y, lin: x, linFirst: true }
  return undefined
}

export function hasLineage(l: Layout | undefined): boolean {
  if (l === undefined) return false
  return l.k === 'lin' || (l.k === 'rec' && l.fields.some(([, f]) => hasLineage(f)))
}

function shapeError(path: string, message: string): never {
  throw new LineageQueryError('type', `union branches disagree at ${path || 'the element'}: ${message}`, { path })
}

/** The layout for `values`, one per branch (in branch-number order), at position `path`. */
export function plan(values: readonly NValue[], path = ''): Layout {
  const first = values[0]
  if (first === undefined) throw new Error('plan of no values')
  if (isScalar(first)) {
    let type = first.type
    let codecOf: NExpr | undefined = first.k === 'col' ? first : undefined
    for (const v of values) {
      if (!isScalar(v)) shapeError(path, `a scalar in one branch, a ${v.k === 'rec' ? 'record' : 'collection'} in another`)
      const u = unify(type, v.type)
      if (u === undefined) shapeError(path, `${showType(type)} in one branch, ${showType(v.type)} in another`)
      type = u
      if (codecOf !== undefined && (v.k !== 'col' || codecOf.k !== 'col' || v.col.codec !== codecOf.col.codec)) codecOf = undefined
    }
    return codecOf?.k === 'col' && codecOf.col.codec !== undefined
      ? { k: 'scalar', type, codec: codecOf.col.codec, origin: { table: codecOf.table.name, column: codecOf.col.name } }
      : { k: 'scalar', type, codec: undefined, origin: undefined }
  }
  switch (first.k) {
    case 'rec': {
      const names = first.fields.map(([n]) => n)
      const recs = values.map((v) => {
        if (v.k !== 'rec') shapeError(path, 'a record in one branch, not in another')
        if (v.fields.length !== names.length || v.fields.some(([n]) => !names.includes(n))) {
          shapeError(path, `fields {${names.join(', ')}} in one branch, {${v.fields.map(([n]) => n).join(', ')}} in another`)
        }
        return v.fields
      })
      const fieldOf = (fields: readonly (readonly [string, NValue])[], n: string, i: number) => (fields[i]?.[0] === n ? fields[i]![1] : fields.find(([m]) => m === n)![1])
      return { k: 'rec', fields: names.map((n, i) => [n, plan(recs.map((r) => fieldOf(r, n, i)), path ? `${path}.${n}` : n)] as const) }
    }
    case 'coll': {
      const offsets: number[] = []
      const elems: NValue[] = []
      let plain = true
      for (const v of values) {
        if (v.k !== 'coll') shapeError(path, 'a collection in one branch, not in another')
        offsets.push(elems.length)
        for (const b of v.q.branches) elems.push(b.value)
        if (v.via !== undefined || v.q.order !== undefined) plain = false
      }
      const elem = elems.length === 0 ? undefined : plan(elems, path ? `${path}[]` : '[]')
      const annotated = elem === undefined ? undefined : annotatedFields(elem)
      const tagged = elems.length > 1 && hasLineage(elem)
      // Keys apart only when the data holds no lineage of its own (outside nested collections),
      // and not for unions: a branch number per element made the keys an array per element
      // again, and small unions (Q6N's) decoded slower than with the keys inside the elements.
      const keysApart = plain && !tagged && annotated !== undefined && !hasLineage(annotated.data)
      return { k: 'coll', elem, tagged, offsets, keysApart }
    }
    case 'lin': {
      const counts = new Map<ScalarKind, number>()
      for (const v of values) {
        if (v.k !== 'lin') shapeError(path, 'lineage in one branch, not in another')
        const here = new Map<ScalarKind, number>()
        for (const e of v.entries) for (const k of e.key) here.set(k.type.kind, (here.get(k.type.kind) ?? 0) + 1)
        for (const [k, n] of here) counts.set(k, Math.max(counts.get(k) ?? 0, n))
      }
      const slots: ScalarKind[] = []
      const start = new Map<ScalarKind, number>()
      for (const k of KIND_ORDER) {
        start.set(k, slots.length)
        for (let i = 0; i < (counts.get(k) ?? 0); i++) slots.push(k)
      }
      const branches = values.map((v) => {
        const used = new Map<ScalarKind, number>()
        const entries = (v as Extract<NValue, { k: 'lin' }>).entries.map((e) => ({
          table: e.table.name,
          ...(e.stored === undefined ? {} : { stored: e.stored }),
          ...(e.witness === undefined ? {} : { witness: e.witness }),
          ...(e.grouped === undefined ? {} : { grouped: e.grouped }),
          types: e.key.map((x) => x.type),
          slots: e.key.map((x) => {
            const n = used.get(x.type.kind) ?? 0
            used.set(x.type.kind, n + 1)
            return start.get(x.type.kind)! + n
          }),
        }))
        return { entries }
      })
      return { k: 'lin', slots, branches }
    }
  }
}
