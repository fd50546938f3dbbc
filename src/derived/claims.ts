/**
 * Claims: who computes a task. Each (row, inputs, code version) is computed once: a caller
 * claims the tasks of a batch before computing them; tasks another caller holds are waited for
 * instead of computed again, and tasks whose result was stored since the scan are skipped.
 *
 * `Claims` is the interface; `InProcessClaims` implements it within one process (concurrent
 * `refresh`/`get` calls of one store). Across processes, `runBatch` (refresh.ts) then takes a
 * lease on the batch's rows in the claim table (`leases.ts`, `sql/claims.ts`).
 */
import type { Derivation, Engine, Task } from './engine.js'
import { inputsText } from './keys.js'
import { metaRows } from './sql/reads.js'
import { recordedInputs } from './write.js'

/**
 * A task another caller holds: settled when that caller stored its batch (with the addresses
 * of the batch it did not store: held by another worker process, or refused by its fence, see
 * `storeBatch`; the waiter leaves those behind too), rejected when it failed to.
 */
export interface Wait {
  readonly task: Task
  readonly done: Promise<ReadonlySet<string>>
}

/** What a caller got by claiming a batch. */
export interface Claim {
  /** Tasks this caller computes and stores now. */
  readonly mine: readonly Task[]
  /** Tasks another caller is computing: wait for them, and compute those whose caller failed. */
  readonly waits: readonly Wait[]
  /**
   * The caller stored its tasks (no error; `held`: those it did not store, held by another
   * worker process or refused by its fence), or failed to (the error): waiters go on. Call
   * exactly once.
   */
  settle(error?: unknown, held?: ReadonlySet<string>): void
}

export interface Claims {
  /**
   * Claim `tasks` of derivation `x`. `alone`: no other call of this store has overlapped the
   * caller since it started, so nothing else can have computed its tasks (no checks at all).
   */
  claim(engine: Engine, x: Derivation, tasks: readonly Task[], alone: boolean): Promise<Claim>
}

/** A batch of tasks being computed and stored. */
interface Flight {
  readonly table: string
  readonly codeVersion: string
  readonly tasks: readonly Task[]
  /** Built on first look-up by a concurrent caller. */
  byAddr: Map<string, Task> | undefined
  readonly done: Promise<ReadonlySet<string>>
}

function flightTasks(f: Flight): Map<string, Task> {
  f.byAddr ??= new Map(f.tasks.map((t) => [t.addr, t]))
  return f.byAddr
}

/** Whether two tasks are one computation: the same row from the same inputs. */
export const sameComputation = (a: Task, b: Task): boolean => a === b || (inputsText(a.inputs) === inputsText(b.inputs) && a.inputHash === b.inputHash)

/** Claims within one process: the batches in flight, in memory. */
export class InProcessClaims implements Claims {
  readonly #flights = new Set<Flight>()

  async claim(engine: Engine, x: Derivation, tasks: readonly Task[], alone: boolean): Promise<Claim> {
    let mine: readonly Task[] = tasks
    const waits: Wait[] = []
    if (!alone) {
      const others = [...this.#flights].filter((f) => f.table === x.name && f.codeVersion === x.codeVersion)
      if (others.length > 0) {
        const free: Task[] = []
        for (const task of tasks) {
          const same = others.find((f) => {
            const t = flightTasks(f).get(task.addr)
            return t !== undefined && sameComputation(t, task)
          })
          if (same === undefined) free.push(task)
          else waits.push({ done: same.done, task })
        }
        mine = free
      }
    }
    let done!: (held: ReadonlySet<string>) => void
    let fail!: (e: unknown) => void
    const flight: Flight = {
      table: x.name,
      codeVersion: x.codeVersion,
      tasks: mine,
      byAddr: undefined,
      done: new Promise<ReadonlySet<string>>((res, rej) => {
        done = res
        fail = rej
      }),
    }
    flight.done.catch(() => undefined)
    this.#flights.add(flight)
    let settled = false
    const settle = (error?: unknown, held?: ReadonlySet<string>): void => {
      if (settled) return
      settled = true
      this.#flights.delete(flight)
      if (error === undefined) done(held ?? new Set())
      else fail(error)
    }
    try {
      // A concurrent caller may have stored exactly this computation between our scan and now.
      const todo = alone ? mine : await notStored(engine, x, mine)
      return { mine: todo, waits, settle }
    } catch (e) {
      settle(e)
      throw e
    }
  }
}

/**
 * The tasks whose stored row was not computed from the same inputs with the same code: the
 * others were stored since the scan by a concurrent caller of this process, or by a worker
 * process that stored its batch and released it between our scan and our claim.
 */
export async function notStored(engine: Engine, x: Derivation, tasks: readonly Task[]): Promise<readonly Task[]> {
  if (tasks.length === 0) return tasks
  const stored = await metaRows(engine.db, engine.d, x.name, tasks.map((t) => t.addr))
  return tasks.filter((t) => {
    const s = stored.get(t.addr)
    return s === undefined || s.lq_code_version !== x.codeVersion || s.lq_inputs !== recordedInputs(x, t) || s.lq_max_input_rev !== t.maxRev || (t.inputHash !== undefined && s.lq_input_hash !== t.inputHash)
  })
}
