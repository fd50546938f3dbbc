/**
 * Leases of one worker process: the claims it holds (one per claimed batch, under the batch's
 * fencing token), a heartbeat that extends them while the functions run, and lost-lease
 * detection. The SQL is in `dialect-claims.ts`.
 *
 * A lease is lost when its rows were taken over by another worker after it expired (the
 * heartbeat finds fewer rows under its token than were claimed), or when no heartbeat succeeded
 * for a whole lease (the database was unreachable: the rows may have expired meanwhile). A lost
 * lease is only a hint for the worker; what decides is the fencing check at write time
 * (`ClaimDialect.fence`), and, below it, the monotonic-write guard.
 *
 * The keeper also accounts the time spent claiming, extending and releasing (`stats`), which the
 * workers benchmark compares with the batch time.
 */
import { randomBytes } from 'node:crypto'
import { hostname } from 'node:os'
import type { Kysely } from 'kysely'
import type { ClaimDialect } from './sql/claims.js'

/** A batch of claimed rows of one derived table. */
export interface Lease {
  readonly table: string
  readonly token: number
  /** The addresses claimed (a subset of those asked for: the others were held by live leases). */
  readonly keys: ReadonlySet<string>
  /** Set when a heartbeat found the lease (partly) taken over, or could not extend it in time. */
  lost: boolean
}

export interface LeaseStats {
  /** Claim statements run, and milliseconds spent in them. */
  claims: number
  claimMs: number
  heartbeats: number
  heartbeatMs: number
  releaseMs: number
}

export interface LeaseKeeperOptions {
  readonly db: Kysely<any>
  readonly dialect: ClaimDialect
  /** This worker's name in the claim table (default: `ownerId()`). */
  readonly owner?: string
  /** Lease length in milliseconds. */
  readonly leaseMs: number
  /** Heartbeat period (default a third of the lease). */
  readonly heartbeatMs?: number
  /** Called when a lease is found lost. */
  readonly onLost?: (lease: Lease) => void
}

/** A worker's name: host, process id and a random suffix (two stores in one process are two workers). */
export function ownerId(): string {
  return `${hostname()}:${process.pid}:${randomBytes(4).toString('hex')}`
}

export class LeaseKeeper {
  readonly owner: string
  readonly leaseMs: number
  readonly stats: LeaseStats = { claims: 0, claimMs: 0, heartbeats: 0, heartbeatMs: 0, releaseMs: 0 }
  readonly #db: Kysely<any>
  readonly #d: ClaimDialect
  readonly #period: number
  readonly #onLost: ((lease: Lease) => void) | undefined
  readonly #held = new Map<number, Lease>()
  #timer: NodeJS.Timeout | undefined
  #beating: Promise<void> | undefined
  /** Time of the last heartbeat (or claim) that succeeded. */
  #lastOk = Date.now()

  constructor(options: LeaseKeeperOptions) {
    this.#db = options.db
    this.#d = options.dialect
    this.owner = options.owner ?? ownerId()
    this.leaseMs = options.leaseMs
    this.#period = Math.max(10, options.heartbeatMs ?? Math.floor(options.leaseMs / 3))
    this.#onLost = options.onLost
  }

  /** Leases held now. */
  get held(): readonly Lease[] {
    return [...this.#held.values()]
  }

  /** Claim the free ones of `keys` of `table`. A lease with no keys is not held (nothing to release). */
  claim(table: string, keys: readonly string[]): Promise<Lease> {
    return this.#take(table, () => this.#d.claim(this.#db, table, keys, this.owner, this.leaseMs))
  }

  /**
   * Claim a first fill's page, `keys` (texts of integer keys of a root with one integer key
   * column), as one range from their least to their greatest (`ClaimDialect.claimRange`) when
   * the dialect can and nothing else is claimed in that span; otherwise one by one (`claim`).
   */
  claimRange(table: string, keys: readonly string[]): Promise<Lease> {
    const claimRange = this.#d.claimRange
    if (claimRange === undefined || keys.length === 0) return this.claim(table, keys)
    let lo = Number.POSITIVE_INFINITY
    let hi = Number.NEGATIVE_INFINITY
    for (const k of keys) {
      const n = Number(k)
      if (!Number.isSafeInteger(n) || String(n) !== k) throw new Error(`internal: a range claim of \`${table}\` got an address that is not an integer's text: ${k}`)
      lo = Math.min(lo, n)
      hi = Math.max(hi, n)
    }
    return this.#take(table, () => claimRange(this.#db, table, lo, hi, keys, this.owner, this.leaseMs))
  }

  async #take(table: string, run: () => Promise<{ token: number; keys: string[] }>): Promise<Lease> {
    const t0 = performance.now()
    const r = await run()
    this.stats.claims++
    this.stats.claimMs += performance.now() - t0
    const lease: Lease = { table, token: r.token, keys: new Set(r.keys), lost: false }
    if (lease.keys.size > 0) {
      this.#held.set(lease.token, lease)
      this.#lastOk = Date.now()
      this.#startTimer()
    }
    return lease
  }

  /**
   * Hold the claims another statement took for this worker (a first fill's page that claimed
   * its rows, `ClaimDialect.pageClaim`): `keys` of `table` under `token`, in a statement of `ms`
   * milliseconds (counted as a claim statement and claim time: it read the page too).
   */
  adopt(table: string, token: number, keys: readonly string[], ms: number): Lease {
    this.stats.claims++
    this.stats.claimMs += ms
    const lease: Lease = { table, token, keys: new Set(keys), lost: false }
    if (lease.keys.size > 0) {
      this.#held.set(lease.token, lease)
      this.#lastOk = Date.now()
      this.#startTimer()
    }
    return lease
  }

  /** Give the lease's rows back (after their results were stored, or when stopping). */
  async release(lease: Lease): Promise<void> {
    if (!this.#held.delete(lease.token)) return
    const t0 = performance.now()
    try {
      await this.#d.release(this.#db, this.owner, lease.token)
    } finally {
      this.stats.releaseMs += performance.now() - t0
      if (this.#held.size === 0) this.#stopTimer()
    }
  }

  async releaseAll(): Promise<void> {
    for (const lease of [...this.#held.values()]) await this.release(lease)
  }

  /**
   * One heartbeat: extend every lease held. Leases whose rows were taken over are marked lost
   * (and reported to `onLost`); when no heartbeat succeeded for a whole lease, every lease is.
   */
  async beat(): Promise<void> {
    if (this.#beating !== undefined) return this.#beating
    const leases = [...this.#held.values()]
    if (leases.length === 0) return
    this.#beating = (async () => {
      const t0 = performance.now()
      try {
        const counts = await this.#d.heartbeat(this.#db, this.owner, leases.map((l) => l.token), this.leaseMs)
        this.#lastOk = Date.now()
        for (const l of leases) if ((counts.get(l.token) ?? 0) < l.keys.size) this.#lose(l)
      } catch {
        // The database is unreachable or busy: try again at the next beat. Past a whole lease
        // without one success, the rows may have been taken over: every lease is lost.
        if (Date.now() - this.#lastOk >= this.leaseMs) for (const l of leases) this.#lose(l)
      } finally {
        this.stats.heartbeats++
        this.stats.heartbeatMs += performance.now() - t0
        this.#beating = undefined
      }
    })()
    return this.#beating
  }

  /**
   * In the write transaction of `lease`'s batch: which of `keys` another worker holds now
   * (fencing: their results are refused); the lease's claims on the others are deleted in the
   * transaction, released when it commits (see `written`). Its time counts as release time.
   */
  async fence(trx: Kysely<any>, lease: Lease, keys: readonly string[]): Promise<Set<string>> {
    const t0 = performance.now()
    try {
      // Every key of the lease (one transaction writes the whole batch, as usual): the dialect may delete its claims by token.
      const whole = sameKeys(keys, lease.keys)
      return await this.#d.fence(trx, lease.table, keys, lease.token, whole ? { owner: this.owner } : undefined)
    } finally {
      this.stats.releaseMs += performance.now() - t0
    }
  }

  /**
   * The write transaction that ran `fence` over `keys` of `lease` committed: those claims are
   * gone. When they were all of the lease's, it is no longer held (`release` has nothing left
   * to do); otherwise `release` deletes the rest.
   */
  written(lease: Lease, keys: readonly string[]): void {
    if (!this.#held.has(lease.token) || keys.length < lease.keys.size) return
    if (!sameKeys(keys, lease.keys)) {
      const done = new Set(keys)
      for (const k of lease.keys) if (!done.has(k)) return
    }
    this.#held.delete(lease.token)
    if (this.#held.size === 0) this.#stopTimer()
  }

  /** Live claims of other workers on any of `tables`. */
  othersOn(tables: readonly string[]): Promise<number> {
    return this.#d.liveOn(this.#db, tables, this.owner)
  }

  /** Whether another worker holds a live claim on one of `keys` of `table` (with `upTo`: one taken under a token up to it, see `lastToken`). */
  othersHold(table: string, keys: ReadonlySet<string>, upTo?: number): Promise<boolean> {
    return this.#d.othersHold(this.#db, table, [...keys], this.owner, upTo)
  }

  /** The newest fencing token handed out: a wait for other workers' claims that began now waits for those up to it only. */
  lastToken(): Promise<number> {
    return this.#d.lastToken(this.#db)
  }

  /** Stop the heartbeat (leases stay in the table until they expire or are released). */
  stop(): void {
    this.#stopTimer()
  }

  #lose(l: Lease): void {
    if (l.lost) return
    l.lost = true
    this.#onLost?.(l)
  }

  #startTimer(): void {
    if (this.#timer !== undefined) return
    this.#timer = setInterval(() => void this.beat(), this.#period)
    // A heartbeat never keeps the process alive by itself.
    this.#timer.unref()
  }

  #stopTimer(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer)
    this.#timer = undefined
  }
}

/**
 * Whether `keys` are exactly the keys of `set`. A batch's keys come in key order (its results
 * are written sorted): strictly increasing, they are distinct, and one pass decides, without the
 * Set of 5000 strings a batch took to build (a few ms each, three per batch before).
 */
function sameKeys(keys: readonly string[], set: ReadonlySet<string>): boolean {
  if (keys.length !== set.size) return false
  let increasing = true
  for (let i = 1; i < keys.length && increasing; i++) increasing = keys[i - 1]! < keys[i]!
  if (!increasing && new Set(keys).size !== keys.length) return false
  return keys.every((k) => set.has(k))
}
