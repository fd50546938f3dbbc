/**
 * Why a derived row is not fresh: pure functions from what is stored about a row (its recorded
 * inputs and code version, its state) and the current revisions of its inputs to causes and
 * the action a refresh takes. No database: the scans read the revisions, these classify them
 * (tested alone in test/derived/causes.test.ts).
 *
 * The one rule for inputs: an input whose current revision is unknown (no live row) was
 * deleted; one whose current revision differs from the recorded one changed (`input-changed`
 * for a root row, `upstream-changed` for a derived row). A row computed with another code
 * version has cause `code-changed`.
 */
import { addressValue, parseInputs } from './keys.js'
import type { MetaRow } from './sql/reads.js'
import type { Cause, RowStatus } from './types.js'

/** One input of a derived row: the revision recorded when it was computed, and the current one. */
export interface InputState {
  readonly table: string
  /** Key text (root) or address (derived row). */
  readonly key: string
  readonly isRoot: boolean
  /** Revision recorded by the stored row (undefined: the stored row did not read it). */
  readonly recorded: number | undefined
  /** Current revision (undefined: the row is deleted). */
  readonly current: number | undefined
}

/** The derivation a row belongs to, as far as causes go. */
export interface RowOwner {
  readonly name: string
  readonly codeVersion: string
}

/** Causes from a row's inputs (see the module comment), in input order. */
export function inputCauses(inputs: readonly InputState[]): Cause[] {
  const out: Cause[] = []
  for (const i of inputs) {
    const key = addressValue(i.key)
    const old = i.recorded ?? 0
    if (i.current === undefined) out.push({ kind: 'input-deleted', table: i.table, key, oldRevision: old })
    else if (i.recorded !== i.current) out.push({ kind: i.isRoot ? 'input-changed' : 'upstream-changed', table: i.table, key, oldRevision: old, newRevision: i.current })
  }
  return out
}

/** `code-changed` when the row was computed with another code version. */
export function codeCauses(x: RowOwner, storedVersion: string): Cause[] {
  return storedVersion === x.codeVersion ? [] : [{ kind: 'code-changed', table: x.name, oldVersion: storedVersion, newVersion: x.codeVersion }]
}

/** What a refresh does with one address, and why; undefined: the row is fresh. */
export type Verdict =
  | { readonly action: 'compute'; readonly stored: boolean; readonly causes: Cause[] }
  | { readonly action: 'delete'; readonly stored: true; readonly causes: Cause[] }
  | undefined

/**
 * An address of a derivation whose inputs share its address (over one table, or `joinOnRoot`):
 * `inputs` are the rows at that address in each input table. A deleted input deletes a stored
 * row (and leaves nothing to compute otherwise); no stored row is `missing`; otherwise the
 * inputs' and code's causes. `force`: a stored row without causes is computed again anyway.
 */
export function judgeAddressed(x: RowOwner, addr: string, stored: { readonly codeVersion: string } | undefined, inputs: readonly InputState[], force: boolean): Verdict {
  const gone = inputs.find((i) => i.current === undefined)
  if (gone !== undefined) return stored === undefined ? undefined : { action: 'delete', stored: true, causes: inputCauses([gone]) }
  if (stored === undefined) return { action: 'compute', stored: false, causes: [{ kind: 'missing', table: x.name, key: addressValue(addr) }] }
  const causes = [...inputCauses(inputs), ...codeCauses(x, stored.codeVersion)]
  return causes.length > 0 || force ? { action: 'compute', stored: true, causes } : undefined
}

/**
 * An address a comprehension yields now, with the inputs its evaluation read (`current`) and
 * those the stored row recorded. `hashChangedReads`: when the input value's hash differs from
 * the stored one, the tables read outside the generators (sorted) — a cause only when the
 * revisions show none.
 */
export function judgeYielded(x: RowOwner, addr: string, stored: MetaRow | undefined, current: readonly (readonly [string, string, number])[], isRoot: (table: string) => boolean, hashChangedReads: readonly string[] | undefined, force: boolean): Verdict {
  const key = addressValue(addr)
  if (stored === undefined) return { action: 'compute', stored: false, causes: [{ kind: 'missing', table: x.name, key }] }
  const recorded = new Map(parseInputs(stored.lq_inputs).map(([t, k, r]) => [`${t}\u0000${k}`, r]))
  const causes = inputCauses(current.map(([t, k, rev]) => ({ table: t, key: k, isRoot: isRoot(t), recorded: recorded.get(`${t}\u0000${k}`), current: rev })))
  // A table read outside the generators changed what the comprehension yields for this row.
  if (causes.length === 0 && hashChangedReads !== undefined) causes.push({ kind: 'input-value-changed', table: x.name, key, reads: hashChangedReads })
  causes.push(...codeCauses(x, stored.lq_code_version))
  return causes.length > 0 || force ? { action: 'compute', stored: true, causes } : undefined
}

/**
 * A stored comprehension row the comprehension no longer yields: deleted, because an input was
 * deleted (those causes), or else because nothing feeds it any more (`no-input`).
 */
export function judgeGone(x: RowOwner, addr: string, recorded: readonly Cause[]): NonNullable<Verdict> {
  const why = recorded.filter((c) => c.kind === 'input-deleted')
  return { action: 'delete', stored: true, causes: why.length > 0 ? why : [{ kind: 'no-input', table: x.name, key: addressValue(addr) }] }
}

/**
 * Causes of a stored row from its recorded inputs alone (no evaluation): `current(table, key)`
 * is the input's current revision (undefined: deleted).
 */
export function recordedCauses(x: RowOwner, meta: MetaRow, isRoot: (table: string) => boolean, current: (table: string, key: string) => number | undefined): Cause[] {
  const inputs = parseInputs(meta.lq_inputs).map(([t, k, rev]): InputState => ({ table: t, key: k, isRoot: isRoot(t), recorded: rev, current: current(t, k) }))
  return [...inputCauses(inputs), ...codeCauses(x, meta.lq_code_version)]
}

/** The cause of a `failed` row: its stored error, or its timeout. */
export function errorCause(table: string, meta: MetaRow): Cause {
  const e = JSON.parse(meta.lq_error ?? '{}') as { message?: string; timeoutMs?: number }
  if (typeof e.timeoutMs === 'number') return { kind: 'timeout', table, key: addressValue(meta.lq_key), message: e.message ?? '', timeoutMs: e.timeoutMs }
  return { kind: 'error', table, key: addressValue(meta.lq_key), message: e.message ?? '' }
}

/** The cause of a `blocked` row: the upstream row that failed. */
export function blockedCause(meta: MetaRow): Cause {
  const b = JSON.parse(meta.lq_error ?? '{}') as { table?: string; key?: string }
  return { kind: 'upstream-failed', table: b.table ?? '', key: b.key === undefined ? null : addressValue(b.key) }
}

/** Whether an upstream row's status makes a row that reads it stale (`upstream-stale`): stale, or missing with input to compute it from. */
export function makesStale(upstream: RowStatus): boolean {
  return upstream.state === 'stale' || (upstream.state === 'missing' && !upstream.causes.some((c) => c.kind === 'no-input'))
}

/**
 * The status of a row from its stored metadata row (undefined: none) and its causes: missing
 * (with `no-input` when nothing feeds it), stale, else its stored state.
 */
export function rowStatus(table: string, addr: string, meta: MetaRow | undefined, causes: readonly Cause[]): RowStatus {
  const key = addressValue(addr)
  if (meta === undefined) return { table, key, state: 'missing', causes: causes.length > 0 ? [...causes] : [{ kind: 'no-input', table, key }] }
  if (causes.length > 0) return { table, key, state: 'stale', causes: [...causes] }
  if (meta.lq_state === 'failed') return { table, key, state: 'failed', causes: [errorCause(table, meta)] }
  if (meta.lq_state === 'blocked') return { table, key, state: 'blocked', causes: [blockedCause(meta)] }
  return { table, key, state: 'fresh', causes: [] }
}
