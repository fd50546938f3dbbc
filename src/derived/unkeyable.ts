/**
 * Root rows whose key the engine cannot carry through JavaScript, reported instead of skipped.
 * Every root row is either derived or stored as a `failed` row whose cause names the table and
 * key (see docs/derived.md, "Keys"):
 *
 * - an integer key outside JavaScript's safe range (±(2^53 - 1)), written by another client:
 *   its revision row's key text (`9007199254740993`) does not survive `JSON.parse` (it would
 *   round to `9007199254740992`, another row), so the row cannot be read by key;
 * - on SQLite, a string key holding a lone surrogate: better-sqlite3 stores it as bytes that
 *   read back as U+FFFD characters, so the key text the engine reads names no row. (The failed
 *   row is stored under the text as read; it is reported by `refresh` and `status` with that
 *   text, and is not removed when the root row is deleted.)
 */
import type { Derivation, Engine, Result, Task, Work } from './engine.js'
import { addressValue, unrepresentableKey } from './keys.js'
import { revisionRowExists } from './sql/reads.js'

/** The work items of a root derivation whose key cannot be carried through JavaScript (no database access). */
export function splitUnkeyable(x: Derivation, work: readonly Work[]): { keyable: Work[]; failed: Result[] } {
  if (x.source.kind !== 'root') return { keyable: [...work], failed: [] }
  let failed: Result[] | undefined
  const keyable: Work[] = []
  for (const w of work) {
    const why = unrepresentableKey(w.addr)
    if (why === undefined) keyable.push(w)
    else (failed ??= []).push(failedResult(x, w, why))
  }
  return failed === undefined ? { keyable: work as Work[], failed: [] } : { keyable, failed }
}

/**
 * SQLite: work items loaded as no task whose key text holds U+FFFD and names no revision row
 * (a lone surrogate stored as bytes that read back otherwise): failed results. Other missing
 * items were deleted since the scan (the next scan sees it).
 */
export async function lostKeys(engine: Engine, x: Derivation, work: readonly Work[], tasks: readonly Task[]): Promise<Result[]> {
  if (x.source.kind !== 'root' || tasks.length >= work.length || engine.d.replaceLoneSurrogates) return []
  const got = new Set(tasks.map((t) => t.addr))
  const out: Result[] = []
  for (const w of work) {
    if (got.has(w.addr) || !w.addr.includes('\ufffd')) continue
    if (!(await revisionRowExists(engine.db, engine.d, x.source.table, w.addr))) out.push(failedResult(x, w, 'a string with a lone surrogate (invalid UTF-16), which SQLite stored as bytes that do not read back as the same string'))
  }
  return out
}

function failedResult(x: Derivation, w: Work, why: string): Result {
  const root = (x.source as { table: string }).table
  const rev = w.rev ?? 0
  const task: Task = { addr: w.addr, input: undefined, lineage: [{ table: root, key: addressValue(w.addr) }], inputs: [[root, w.addr, rev]], maxRev: rev, upstream: [], edges: [] }
  return {
    task,
    outcome: {
      state: 'failed',
      message: `derived table \`${x.name}\`: root table \`${root}\` has a row with key ${w.addr}, ${why}; the row cannot be read by key, so it is not derived. Change the key (another client wrote it)`,
      stack: undefined,
    },
  }
}
