/**
 * Cause classification (src/derived/causes.ts): pure functions from what is stored about a row
 * and the current revisions of its inputs to causes and the action a refresh takes. No
 * database: each case is plain data in, causes out.
 */
import { describe, expect, it } from 'vitest'
import { blockedCause, errorCause, inputCauses, judgeAddressed, judgeGone, judgeYielded, makesStale, recordedCauses, rowStatus, type InputState } from '../../src/derived/causes.js'
import type { MetaRow } from '../../src/derived/sql/reads.js'

const x = { name: 'out', codeVersion: 'v2' }
const input = (over: Partial<InputState>): InputState => ({ table: 'src', key: '1', isRoot: true, recorded: 5, current: 5, ...over })
const meta = (over: Partial<MetaRow>): MetaRow => ({
  lq_key: '1',
  lq_lineage: '',
  lq_inputs: '',
  lq_max_input_rev: 5,
  lq_code_version: 'v2',
  lq_state: 'ok',
  lq_error: null,
  lq_changed_rev: 7,
  lq_input_hash: null,
  ...over,
})
const isRoot = (t: string) => t === 'src'

describe('inputCauses', () => {
  it('an input at its recorded revision gives no cause', () => {
    expect(inputCauses([input({})])).toEqual([])
  })
  it('a root input at another revision is input-changed, a derived one upstream-changed', () => {
    expect(inputCauses([input({ current: 9 }), input({ table: 'mid', key: '[["src",1]]', isRoot: false, recorded: 3, current: 4 })])).toEqual([
      { kind: 'input-changed', table: 'src', key: 1, oldRevision: 5, newRevision: 9 },
      { kind: 'upstream-changed', table: 'mid', key: [{ table: 'src', key: 1 }], oldRevision: 3, newRevision: 4 },
    ])
  })
  it('an input with no current revision is input-deleted, with the recorded revision (0 when none was recorded)', () => {
    expect(inputCauses([input({ current: undefined }), input({ key: '"a"', recorded: undefined, current: undefined })])).toEqual([
      { kind: 'input-deleted', table: 'src', key: 1, oldRevision: 5 },
      { kind: 'input-deleted', table: 'src', key: 'a', oldRevision: 0 },
    ])
  })
  it('an input the stored row did not record is changed from revision 0', () => {
    expect(inputCauses([input({ recorded: undefined, current: 2 })])).toEqual([{ kind: 'input-changed', table: 'src', key: 1, oldRevision: 0, newRevision: 2 }])
  })
})

describe('judgeAddressed (one-table and joinOnRoot derivations)', () => {
  it('no stored row and a live input: compute, cause missing', () => {
    expect(judgeAddressed(x, '1', undefined, [input({ recorded: undefined })], false)).toEqual({ action: 'compute', stored: false, causes: [{ kind: 'missing', table: 'out', key: 1 }] })
  })
  it('a stored row whose input is gone: delete, cause input-deleted', () => {
    expect(judgeAddressed(x, '1', { codeVersion: 'v2' }, [input({ current: undefined })], false)).toEqual({ action: 'delete', stored: true, causes: [{ kind: 'input-deleted', table: 'src', key: 1, oldRevision: 5 }] })
  })
  it('no stored row and no input: nothing to do', () => {
    expect(judgeAddressed(x, '1', undefined, [input({ current: undefined })], false)).toBeUndefined()
  })
  it('the first gone part of a joinOnRoot decides the deletion cause', () => {
    const parts = [input({ table: 'a', isRoot: false }), input({ table: 'b', isRoot: false, recorded: 4, current: undefined })]
    expect(judgeAddressed(x, '1', { codeVersion: 'v2' }, parts, false)?.causes).toEqual([{ kind: 'input-deleted', table: 'b', key: 1, oldRevision: 4 }])
  })
  it('a fresh row is undefined, unless forced (refresh full): then computed with no cause', () => {
    expect(judgeAddressed(x, '1', { codeVersion: 'v2' }, [input({})], false)).toBeUndefined()
    expect(judgeAddressed(x, '1', { codeVersion: 'v2' }, [input({})], true)).toEqual({ action: 'compute', stored: true, causes: [] })
  })
  it('input and code changes are both listed, inputs first', () => {
    expect(judgeAddressed(x, '1', { codeVersion: 'v1' }, [input({ current: 6 })], false)?.causes).toEqual([
      { kind: 'input-changed', table: 'src', key: 1, oldRevision: 5, newRevision: 6 },
      { kind: 'code-changed', table: 'out', oldVersion: 'v1', newVersion: 'v2' },
    ])
  })
})

describe('judgeYielded and judgeGone (comprehension derivations)', () => {
  const stored = meta({ lq_key: '[["src",1]]', lq_inputs: JSON.stringify([['src', '1', 5]]) })
  it('a yielded row with the recorded inputs is fresh', () => {
    expect(judgeYielded(x, stored.lq_key, stored, [['src', '1', 5]], isRoot, undefined, false)).toBeUndefined()
  })
  it('a new input row read by the evaluation is a change from revision 0', () => {
    expect(judgeYielded(x, stored.lq_key, stored, [['src', '1', 5], ['src', '2', 3]], isRoot, undefined, false)?.causes).toEqual([{ kind: 'input-changed', table: 'src', key: 2, oldRevision: 0, newRevision: 3 }])
  })
  it('an input value hash change is a cause only when the revisions show none', () => {
    expect(judgeYielded(x, stored.lq_key, stored, [['src', '1', 5]], isRoot, ['dept'], false)?.causes).toEqual([{ kind: 'input-value-changed', table: 'out', key: [{ table: 'src', key: 1 }], reads: ['dept'] }])
    expect(judgeYielded(x, stored.lq_key, stored, [['src', '1', 6]], isRoot, ['dept'], false)?.causes.map((c) => c.kind)).toEqual(['input-changed'])
  })
  it('a yielded row with nothing stored is missing', () => {
    expect(judgeYielded(x, '[["src",1]]', undefined, [['src', '1', 5]], isRoot, undefined, false)?.causes).toEqual([{ kind: 'missing', table: 'out', key: [{ table: 'src', key: 1 }] }])
  })
  it('a stored row no longer yielded is deleted: with its deleted inputs as causes, else no-input', () => {
    expect(judgeGone(x, '1', [{ kind: 'input-deleted', table: 'src', key: 1, oldRevision: 5 }, { kind: 'code-changed', table: 'out', oldVersion: 'v1', newVersion: 'v2' }]).causes).toEqual([{ kind: 'input-deleted', table: 'src', key: 1, oldRevision: 5 }])
    expect(judgeGone(x, '1', []).causes).toEqual([{ kind: 'no-input', table: 'out', key: 1 }])
  })
})

describe('recordedCauses, rowStatus and stored states', () => {
  it('recorded inputs against current revisions: deleted, changed, and the code version', () => {
    const m = meta({ lq_inputs: JSON.stringify([['src', '1', 5], ['src', '2', 5], ['mid', '1', 2]]), lq_code_version: 'v1' })
    const now: Record<string, number> = { 'src 1': 5, 'mid 1': 3 }
    expect(recordedCauses(x, m, isRoot, (t, k) => now[`${t} ${k}`])).toEqual([
      { kind: 'input-deleted', table: 'src', key: 2, oldRevision: 5 },
      { kind: 'upstream-changed', table: 'mid', key: 1, oldRevision: 2, newRevision: 3 },
      { kind: 'code-changed', table: 'out', oldVersion: 'v1', newVersion: 'v2' },
    ])
  })
  it('a failed row stored with a timeout has cause timeout; otherwise error', () => {
    expect(errorCause('out', meta({ lq_state: 'failed', lq_error: JSON.stringify({ message: 'slow', stack: null, timeoutMs: 50 }) }))).toEqual({ kind: 'timeout', table: 'out', key: 1, message: 'slow', timeoutMs: 50 })
    expect(errorCause('out', meta({ lq_state: 'failed', lq_error: JSON.stringify({ message: 'boom', stack: null }) }))).toEqual({ kind: 'error', table: 'out', key: 1, message: 'boom' })
  })
  it('a blocked row names the upstream row that failed', () => {
    expect(blockedCause(meta({ lq_state: 'blocked', lq_error: JSON.stringify({ table: 'mid', key: '7' }) }))).toEqual({ kind: 'upstream-failed', table: 'mid', key: 7 })
  })
  it('status: missing (no-input when nothing feeds it), stale with causes, else the stored state', () => {
    expect(rowStatus('out', '1', undefined, [])).toEqual({ table: 'out', key: 1, state: 'missing', causes: [{ kind: 'no-input', table: 'out', key: 1 }] })
    const changed = [{ kind: 'input-changed' as const, table: 'src', key: 1, oldRevision: 5, newRevision: 6 }]
    expect(rowStatus('out', '1', meta({ lq_state: 'failed', lq_error: '{"message":"x"}' }), changed).state).toBe('stale')
    expect(rowStatus('out', '1', meta({ lq_state: 'failed', lq_error: '{"message":"x"}' }), []).state).toBe('failed')
    expect(rowStatus('out', '1', meta({}), [])).toEqual({ table: 'out', key: 1, state: 'fresh', causes: [] })
  })
  it('an upstream row makes its readers stale when stale, or missing with input to compute it from', () => {
    expect(makesStale({ table: 'mid', key: 1, state: 'stale', causes: [] })).toBe(true)
    expect(makesStale({ table: 'mid', key: 1, state: 'missing', causes: [{ kind: 'missing', table: 'mid', key: 1 }] })).toBe(true)
    expect(makesStale({ table: 'mid', key: 1, state: 'missing', causes: [{ kind: 'no-input', table: 'mid', key: 1 }] })).toBe(false)
    expect(makesStale({ table: 'mid', key: 1, state: 'failed', causes: [] })).toBe(false)
  })
})

describe('stored errors and statuses, edge cases', () => {
  it('a stored error or timeout without a message has an empty message; without a stored error, an empty error', () => {
    expect(errorCause('out', meta({ lq_state: 'failed', lq_error: JSON.stringify({ timeoutMs: 50 }) }))).toEqual({ kind: 'timeout', table: 'out', key: 1, message: '', timeoutMs: 50 })
    expect(errorCause('out', meta({ lq_state: 'failed', lq_error: '{}' }))).toEqual({ kind: 'error', table: 'out', key: 1, message: '' })
    expect(errorCause('out', meta({ lq_state: 'failed', lq_error: null }))).toEqual({ kind: 'error', table: 'out', key: 1, message: '' })
  })
  it('a blocked row whose stored upstream is incomplete names what it has: no table is empty, no key is null', () => {
    expect(blockedCause(meta({ lq_state: 'blocked', lq_error: '{}' }))).toEqual({ kind: 'upstream-failed', table: '', key: null })
    expect(blockedCause(meta({ lq_state: 'blocked', lq_error: null }))).toEqual({ kind: 'upstream-failed', table: '', key: null })
    expect(blockedCause(meta({ lq_state: 'blocked', lq_error: JSON.stringify({ table: 'mid', key: '[["a",1],["b","x"]]' }) }))).toEqual({ kind: 'upstream-failed', table: 'mid', key: [{ table: 'a', key: 1 }, { table: 'b', key: 'x' }] })
  })
  it('a missing row keeps the causes it was given; a blocked row reports its upstream', () => {
    const missing = [{ kind: 'missing' as const, table: 'out', key: 1 }]
    expect(rowStatus('out', '1', undefined, missing)).toEqual({ table: 'out', key: 1, state: 'missing', causes: missing })
    expect(rowStatus('out', '1', meta({ lq_state: 'blocked', lq_error: JSON.stringify({ table: 'mid', key: '7' }) }), [])).toEqual({ table: 'out', key: 1, state: 'blocked', causes: [{ kind: 'upstream-failed', table: 'mid', key: 7 }] })
  })
  it('a missing upstream row without any cause listed still makes its readers stale', () => {
    expect(makesStale({ table: 'mid', key: 1, state: 'missing', causes: [] })).toBe(true)
    expect(makesStale({ table: 'mid', key: 1, state: 'missing', causes: [{ kind: 'missing', table: 'mid', key: 1 }, { kind: 'no-input', table: 'mid', key: 1 }] })).toBe(false)
  })
})
