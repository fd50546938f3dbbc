/**
 * Computing a batch: calling the derivation's function on each task, checking its result
 * against the declared output, and limiting how long a call may take. Tasks whose upstream row
 * failed are `blocked` without a call. Pure of the database: results go to `write.ts`.
 */
import { LineageQueryError, showValue } from '../errors.js'
import type { Derivation, Outcome, Result, Task, UpstreamRow } from './engine.js'
import { addressValue } from './keys.js'
import type { Op } from './ops.js'
import type { DeriveContext, SourceRow } from './types.js'
import type * as t from 'io-ts'

/**
 * Run the function on every task of a batch. Calls still pending after the timeout (the
 * derivation's, else the call's, else the store's) become `failed` results with a timeout
 * cause; when the operation is aborted, pending calls are abandoned (`abandoned`: their tasks
 * have no result) and the settled ones are returned. One timer serves the whole batch: its
 * calls all start together.
 */
export async function compute(x: Derivation, tasks: readonly Task[], op: Op, storeTimeoutMs: number | undefined): Promise<{ results: Result[]; abandoned: boolean }> {
  const out: (Result | undefined)[] = new Array(tasks.length)
  const pending: { i: number; p: PromiseLike<unknown> }[] = []
  const limit = x.timeoutMs ?? op.timeoutMs ?? storeTimeoutMs
  // One signal per batch, made when a function first reads it: it is aborted when the batch's
  // pending calls time out or are abandoned, which is all a call still running can learn.
  let ac: AbortController | undefined
  const signalOf = (): AbortSignal => (ac ??= new AbortController()).signal
  // With a concurrency limit (`RefreshOptions.concurrency`), calls start as slots free up: each
  // call has its own timer and signal (the batch's timer would count a call's wait for a slot).
  const lim = op.limit
  const perCall = lim !== undefined
  for (let i = 0; i < tasks.length; i++) {
    const task = tasks[i]!
    const bad = task.upstream.length === 0 ? undefined : task.upstream.find(notOk)
    if (bad !== undefined) {
      out[i] = { task, outcome: blockedBy(bad.table, bad.addr, bad.state, bad.error) }
      continue
    }
    // A single-root address with one lineage entry is that entry's key (no second parse).
    const own = perCall ? new AbortController() : undefined
    const ctx = new Context(x.name, x.singleRoot && task.lineage.length === 1 ? task.lineage[0]!.key : addressValue(task.addr), task.lineage, x.params, own, signalOf)
    try {
      const v = lim === undefined ? x.fn(task.input, ctx) : lim(() => (limit === undefined ? x.fn(task.input, ctx) : withinTimeout(() => x.fn(task.input, ctx), limit, own!)))
      if (isThenable(v)) pending.push({ i, p: v })
      else out[i] = { task, outcome: checkOutput(x, v) }
    } catch (e) {
      out[i] = { task, outcome: failure(e) }
    }
  }
  let abandoned = false
  if (pending.length > 0) {
    await new Promise<void>((resolve) => {
      let left = pending.length
      let closed = false
      const finish = () => {
        if (closed) return
        closed = true
        if (timer !== undefined) clearTimeout(timer)
        op.signal?.removeEventListener('abort', onAbort)
        resolve()
      }
      const settle = (i: number, outcome: Outcome) => {
        if (closed || out[i] !== undefined) return
        out[i] = { task: tasks[i]!, outcome }
        if (--left === 0) finish()
      }
      for (const { i, p } of pending) Promise.resolve(p).then((val) => settle(i, checkOutput(x, val)), (e: unknown) => settle(i, e instanceof CallTimedOut ? timedOut(x, tasks[i]!, e.limit) : failure(e)))
      const timer =
        limit === undefined || perCall
          ? undefined
          : setTimeout(() => {
              for (const { i } of pending) if (out[i] === undefined) out[i] = { task: tasks[i]!, outcome: timedOut(x, tasks[i]!, limit) }
              ac?.abort(new LineageQueryError('aborted', `derived table \`${x.name}\`: the call timed out after ${limit} ms`, { table: x.name }))
              finish()
            }, limit)
      const onAbort = () => {
        abandoned = pending.some(({ i }) => out[i] === undefined)
        if (abandoned) ac?.abort(op.signal!.reason)
        finish()
      }
      if (op.signal?.aborted === true) onAbort()
      else op.signal?.addEventListener('abort', onAbort, { once: true })
    })
  }
  return { results: abandoned ? out.filter((r): r is Result => r !== undefined) : (out as Result[]), abandoned }
}

const notOk = (u: UpstreamRow): boolean => u.state !== 'ok'

/**
 * The context of one call (`DeriveContext`): a class, so the per-call object is a plain
 * allocation of one shape; `signal` is made when first read (see `compute`).
 */
class Context implements DeriveContext {
  readonly #own: AbortController | undefined
  readonly #batch: () => AbortSignal
  constructor(
    readonly table: string,
    readonly key: unknown,
    readonly lineage: readonly SourceRow[],
    readonly params: unknown,
    own: AbortController | undefined,
    batch: () => AbortSignal,
  ) {
    this.#own = own
    this.#batch = batch
  }

  get signal(): AbortSignal {
    return this.#own === undefined ? this.#batch() : AbortSignal.any([this.#own.signal, this.#batch()])
  }
}

/** A call that did not settle within its own timeout (calls under a concurrency limit). */
class CallTimedOut extends Error {
  constructor(readonly limit: number) {
    super(`timed out after ${limit} ms`)
  }
}

/** Run `fn`; reject with `CallTimedOut` (and abort `ac`) when it has not settled after `limit` ms, freeing its slot. */
function withinTimeout(fn: () => unknown, limit: number, ac: AbortController): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      ac.abort(new LineageQueryError('aborted', `the call timed out after ${limit} ms`))
      reject(new CallTimedOut(limit))
    }, limit)
    Promise.resolve()
      .then(fn)
      .then(
        (v) => {
          clearTimeout(timer)
          resolve(v)
        },
        (e: unknown) => {
          clearTimeout(timer)
          reject(e)
        },
      )
  })
}

function timedOut(x: Derivation, task: Task, limit: number): Outcome {
  return { state: 'failed', message: `derived table \`${x.name}\`, row ${task.addr}: the function did not settle within ${limit} ms (timeoutMs); stored as failed, retried when its input or code changes`, stack: undefined, timeoutMs: limit }
}

const isThenable = (v: unknown): v is PromiseLike<unknown> => typeof v === 'object' && v !== null && typeof (v as { then?: unknown }).then === 'function'

function failure(e: unknown): Outcome {
  if (e instanceof Error) return { state: 'failed', message: e.message, stack: e.stack }
  return { state: 'failed', message: `non-Error thrown: ${showValue(e)}`, stack: undefined }
}

function blockedBy(table: string, addr: string, state: string, error: string | null): Outcome {
  if (state === 'blocked' && error !== null) {
    const b = JSON.parse(error) as { table: string; key: string }
    return { state: 'blocked', table: b.table, key: b.key }
  }
  return { state: 'blocked', table, key: addr }
}

/** An output column as `checkOutput` checks it. */
interface OutputColumn {
  readonly name: string
  readonly codec: t.Mixed
  readonly int: boolean
}

const outputColumns = new WeakMap<Derivation, readonly OutputColumn[]>()

/** The output columns of `x` (without `lq_key`), in declaration order; built once per derivation. */
function columnsOf(x: Derivation): readonly OutputColumn[] {
  let cols = outputColumns.get(x)
  if (cols === undefined) outputColumns.set(x, (cols = x.def.columns.filter((c) => c.name !== 'lq_key').map((c) => ({ name: c.name, codec: c.codec, int: c.type.kind === 'int' }))))
  return cols
}

/** Check a function's result against the declared output; a mismatch is a failed row. */
function checkOutput(x: Derivation, value: unknown): Outcome {
  const bad = (why: string): Outcome => ({ state: 'failed', message: `derived table \`${x.name}\`: the function's result does not match the declared output: ${why}`, stack: undefined })
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return bad(`expected an object with columns ${Object.keys(x.output).join(', ')}, got ${showValue(value)}`)
  const row = value as Record<string, unknown>
  for (const k of Object.keys(row)) if (!(k in x.output)) return bad(`unknown column \`${k}\`; columns: ${Object.keys(x.output).join(', ')}`)
  const out: Record<string, unknown> = {}
  for (const col of columnsOf(x)) {
    const v = row[col.name]
    if (!(col.name in row)) return bad(`missing column \`${col.name}\``)
    // The supported codecs decode to the value itself, so `is` (no allocation) accepts; `decode`
    // runs only when it does not, to decide (as the query layer's decoding does).
    if (!col.codec.is(v) && col.codec.decode(v)._tag === 'Left') return bad(`column \`${col.name}\`: expected ${col.codec.name}, got ${showValue(v)}`)
    if (typeof v === 'number' && (!Number.isFinite(v) || (col.int && !Number.isSafeInteger(v)))) return bad(`column \`${col.name}\`: ${v} cannot be stored`)
    if (typeof v === 'string' && v.includes('\u0000')) return bad(`column \`${col.name}\`: strings cannot contain the NUL character`)
    out[col.name] = v
  }
  return { state: 'ok', row: out }
}
