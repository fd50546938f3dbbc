/**
 * Debounce of root rows, as plain data and a clock passed in (no timers here, so it is tested
 * with a fake clock). A root row is recomputed only after it has been left unchanged for
 * `debounceMs`: each change seen (a root key with a new revision) restarts its wait; a row
 * still settling is deferred by the refresh (its derived rows stay stale, the watermark does not
 * pass them) and picked up once it settled. A row that changes while its function runs is
 * therefore computed again once it settles: never dropped (its revision is newer than the
 * result's) and never run twice at once (claims).
 */

/** A root row, as the revision table names it. */
export interface RootKey {
  readonly table: string
  readonly key: string
}

interface Entry {
  rev: number
  /** When the current revision was first seen. */
  at: number
}

export class Settling {
  readonly debounceMs: number
  readonly #rows = new Map<string, Entry>()

  constructor(debounceMs: number) {
    this.debounceMs = debounceMs
  }

  /** A change seen at `now`: `key` of `table` has revision `rev`. */
  note(table: string, key: string, rev: number, now: number): void {
    const id = `${table}\u0000${key}`
    const e = this.#rows.get(id)
    if (e === undefined) this.#rows.set(id, { rev, at: now })
    else if (rev > e.rev) {
      e.rev = rev
      e.at = now
    }
  }

  /** Whether the row is still settling at `now` (changed less than `debounceMs` ago). */
  settling(table: string, key: string, now: number): boolean {
    const e = this.#rows.get(`${table}\u0000${key}`)
    return e !== undefined && now - e.at < this.debounceMs
  }

  /** Forget rows that have settled by `now` (they are computed like any stale row). */
  prune(now: number): void {
    for (const [id, e] of this.#rows) if (now - e.at >= this.debounceMs) this.#rows.delete(id)
  }

  /** When the next row settles, or undefined when none is settling. */
  nextSettle(): number | undefined {
    let min: number | undefined
    for (const e of this.#rows.values()) min = min === undefined ? e.at + this.debounceMs : Math.min(min, e.at + this.debounceMs)
    return min
  }

  get size(): number {
    return this.#rows.size
  }
}
