/**
 * The SQL of leases (claims on derived rows by worker processes), per dialect, as named hooks.
 *
 * A claim is one row of the narrow table `lq_claim(tbl, lq_key, owner, expires, token)`: the
 * derived table and the row's address, the worker that holds it, when its lease ends (epoch
 * milliseconds of the database's clock, so workers on several machines agree) and the fencing
 * token of the batch that took it (one token per claim statement, from a store-wide counter
 * that only grows). Claims never touch the wide metadata or data rows.
 *
 * - `claim`: take the free rows of a list of addresses (no claim row, one whose lease expired,
 *   or one `owner` holds already: calls of one store share its owner name and de-duplicate in
 *   memory) for `owner`, under a new token, and return the addresses taken. PostgreSQL: rows
 *   with an expired lease are taken with `FOR UPDATE SKIP LOCKED` (a row another worker is
 *   taking or extending right now is skipped, never waited for) and new rows are inserted with
 *   `ON CONFLICT DO NOTHING`, in one statement. SQLite: one `INSERT ... ON CONFLICT DO UPDATE
 *   ... WHERE expired ... RETURNING` under `BEGIN IMMEDIATE` (one writer at a time).
 * - `heartbeat`: extend every claim of `owner` under the given tokens; returns the tokens and
 *   how many rows each still holds (fewer than taken: some lease was lost to another worker).
 * - `release`: delete the claim rows of `owner` under a token.
 * - `fence`: inside a batch's write transaction, the addresses of the batch that have no claim
 *   row under the batch's token any more (its lease was lost: taken over by another worker,
 *   which may have stored its result and released the row already); the batch's claim rows of
 *   the other addresses are deleted in that transaction, so they are released when the write
 *   commits (no release statement of its own) and kept when it rolls back. PostgreSQL locks
 *   them (`FOR UPDATE`, in key order) first: a worker taking over an expired lease skips them
 *   (`SKIP LOCKED`) until the result is stored, and an insert of the same key waits for the
 *   commit (then finds the result stored).
 *   A fence over every key of its token (a batch written in one transaction, as usual) deletes
 *   the token's rows without a key list.
 * - `held`: the live claims of a derived table (for `stale()` and `status`); `othersHold`:
 *   whether other workers hold some of a list of rows (a refresh waiting for them).
 * - `sweep`: delete claims whose lease ended a while ago (`collect`): a worker killed with
 *   `kill -9` leaves its claim rows, which are free once expired but stay in the table.
 *
 * - `pageClaim` (PostgreSQL only; undefined on SQLite, whose first fill reads a page and then
 *   claims it, `claim`): a first fill's page that claims its rows in the statement that reads
 *   them, starting at the table's fill frontier while other workers fill it (see `PageClaimSpec`).
 *
 * - `claimRange` (SQLite only; undefined on PostgreSQL): a first fill's page claimed as ONE row
 *   of `lq_claim_range(tbl, token, owner, expires, lo, hi, keys)` holding every integer key from
 *   `lo` to `hi` (`keys`: the page's keys, for `held` and the heartbeat's counts), when its span
 *   is clean; every statement above also reads ranges: `claim` skips keys in another owner's
 *   live range and splits an expired range into claim rows before taking keys over, `fence`
 *   holds a page whole while its range is there, `heartbeat`/`release`/`sweep` extend and
 *   delete ranges by token, `held`/`othersHold`/`liveOn` see them.
 *
 * The table and the token counter are created by migration 3 (`schema.ts`); `ddl` lists them.
 * The range table is created by migration 4 (`rangeDdl`).
 */
import { sql, type Kysely } from 'kysely'
import type { Dialect } from '../../query/dialect.js'
import type { TableDef } from '../../query/schema.js'
import { keyExpr, metaTable, q, revTable } from './dialect.js'
import { sqliteStartup } from './sqlite.js'

/** A live claim, as read by `held`. */
export interface ClaimRow {
  readonly table: string
  readonly key: string
  readonly owner: string
  /** Epoch milliseconds (database clock) when the lease ends unless extended. */
  readonly expires: number
  readonly token: number
}

/**
 * What `pageClaim` builds its statement from: the root (one integer key column), the compiled
 * query of its rows from a lower key bound (`rows`, `rowsParams` parameters, the bound at
 * parameter `lowerParam`, 1-based), the derived table, and the window and page sizes.
 */
export interface PageClaimSpec {
  readonly root: TableDef
  readonly rows: string
  readonly rowsParams: number
  readonly lowerParam: number
  readonly derived: string
  readonly window: number
  readonly limit: number
  /** The store dialect's key text of a column (`StoreDialect.keyJson`). */
  readonly keyJson: (ref: string, kind: string) => string
}

/** The columns of a `pageClaim` result, besides the root's (root column names never start with `__`). */
export const PAGE_CLAIM = {
  /** The row's live revision (null: deleted meanwhile). */
  rev: '__rev',
  /** 1 on a row of the page (null on the one row of a statement that read no free row). */
  row: '__row',
  /** 1 when this statement claimed the row; null when another claim row was there (held). */
  got: '__got',
  /** The fencing token of the statement's claims. */
  token: '__token',
  /** The lower key bound the statement read from (above the caller's: it started at the frontier). */
  start: '__start',
  /** Rows of the window read, its last key, keys in it other workers held (JSON array), and whether other workers held live claims on the table. */
  scanned: '__scanned',
  last: '__last',
  held: '__held',
  others: '__others',
} as const

/** A `pageClaim` statement: its text and its parameters (the rows query's, then this worker's name, the code version, the lease length). */
export interface PageClaimStatement {
  readonly sql: string
  params(rows: readonly unknown[], owner: string, codeVersion: string | null, leaseMs: number): unknown[]
  /** A statement to run before a fill's first page: it creates the frontier row (which every page statement locks) when there is none. */
  readonly setup: { readonly sql: string; readonly params: readonly unknown[] }
}

/**
 * SQL text: whether another owner than `owner` holds a live claim, a row or a range, on derived
 * table `tbl` (`tbl`, `owner`: placeholders or parameters; with positional placeholders the
 * parameters are `othersParams`). `now` is the dialect's `nowSql`.
 */
export const liveOthersSql = (now: string, tbl: string, owner: string): string =>
  `(EXISTS (SELECT 1 FROM lq_claim WHERE tbl = ${tbl} AND owner <> ${owner} AND expires > ${now}) OR EXISTS (SELECT 1 FROM lq_claim_range WHERE tbl = ${tbl} AND owner <> ${owner} AND expires > ${now}))`

/** The positional parameters of `liveOthersSql`, in text order. */
export const othersParams = (tbl: string, owner: string): string[] => [tbl, owner, tbl, owner]

/**
 * SQL text: 1 when another owner than `owner` holds a live claim on the row of derived table
 * `tbl` at address `addr` (an SQL expression), by a claim row or by a range over its integer key
 * `int` (an SQL expression); null otherwise. Positional parameters: `tbl`, `owner`, `tbl`, `owner`.
 */
export const heldBySql = (now: string, tbl: string, owner: string, addr: string, int: string): string =>
  `COALESCE((SELECT 1 FROM lq_claim AS c WHERE c.tbl = ${tbl} AND c.lq_key = ${addr} AND c.owner <> ${owner} AND c.expires > ${now}), (SELECT 1 FROM lq_claim_range AS cr WHERE cr.tbl = ${tbl} AND cr.owner <> ${owner} AND cr.expires > ${now} AND ${int} BETWEEN cr.lo AND cr.hi))`

/** The `lq_store_meta` row holding a derived table's fill frontier: the last root key a first-fill page of it looked at. */
export const frontierName = (derived: string): string => `fill_frontier:${derived}`

export interface ClaimDialect {
  readonly name: Dialect
  /** The database's clock as an SQL expression, epoch milliseconds (what `expires` is compared with). */
  readonly nowSql: string
  /** Statements creating the claim table and the token counter (migration 3). */
  ddl(): string[]
  /** The database's clock, epoch milliseconds. */
  now(db: Kysely<any>): Promise<number>
  /** Claim the free ones of `keys` of derived table `table`; the token and the keys taken. */
  claim(db: Kysely<any>, table: string, keys: readonly string[], owner: string, leaseMs: number): Promise<{ token: number; keys: string[] }>
  /** Statements creating the range claim table (migration 4). */
  rangeDdl(): string[]
  /**
   * A first fill's page claimed as one range (undefined: the dialect claims pages otherwise,
   * `pageClaim`): `keys` (the texts of integer keys of a root with one integer key column, from
   * `lo` to `hi`) of derived table `table`, under a new token, as ONE row of `lq_claim_range`
   * holding every key from `lo` to `hi`, when no other range and no claim row is in that span;
   * otherwise the keys are claimed one by one as `claim` does (`range: false`). `claim` of a key
   * in another owner's live range does not take it; one in an expired range splits the range
   * into claim rows (see `sqliteClaimKeys`).
   */
  readonly claimRange?: (db: Kysely<any>, table: string, lo: number, hi: number, keys: readonly string[], owner: string, leaseMs: number) => Promise<{ token: number; keys: string[]; range: boolean }>
  /** Extend the claims of `owner` under `tokens` by `leaseMs` from now; rows still held per token (a range: every key it was taken with). */
  heartbeat(db: Kysely<any>, owner: string, tokens: readonly number[], leaseMs: number): Promise<Map<number, number>>
  /** Delete the claims of `owner` under `token` (all of them, or those of `keys`); how many. */
  release(db: Kysely<any>, owner: string, token: number, keys?: readonly string[]): Promise<number>
  /**
   * In a write transaction: which of `keys` of `table` are no longer held under `token` (lost
   * leases); the claims on the others are deleted (released at commit). `whole`: `keys` are
   * every key `whole.owner` claimed under `token`, so every claim row under it can go: they are
   * deleted by token, with no key list (a probe per key cost a quarter more on SQLite, 10-20% on
   * PostgreSQL). A range under `token` still there holds every key (deleted when `whole`, else
   * kept for `release`); gone, the keys are judged by claim rows (those of a range split by a
   * take-over), and a key with none is refused.
   */
  fence(trx: Kysely<any>, table: string, keys: readonly string[], token: number, whole?: { readonly owner: string }): Promise<Set<string>>
  /** Live (unexpired) claims of `table`, or of every table (a range: one per key of its page). */
  held(db: Kysely<any>, table?: string): Promise<ClaimRow[]>
  /** Delete the claims whose lease ended at least `graceMs` ago (of workers that died or stopped without releasing them); how many. */
  sweep(db: Kysely<any>, graceMs: number): Promise<number>
  /**
   * Whether another owner than `owner` holds a live claim on one of `keys` of `table`; with
   * `upTo`, a claim taken under a token up to `upTo` (`lastToken` when a wait began: claims taken
   * later are other computations, not the ones waited for).
   */
  othersHold(db: Kysely<any>, table: string, keys: readonly string[], owner: string, upTo?: number): Promise<boolean>
  /** The newest fencing token handed out (0: none yet). */
  lastToken(db: Kysely<any>): Promise<number>
  /** Live claims held by others on any of `tables` (a worker waits for these before a downstream table). */
  liveOn(db: Kysely<any>, tables: readonly string[], owner: string): Promise<number>
  /**
   * Watch (debounce): keys and revisions of revision table `revTable` written after revision
   * `since`, newest last, at most `limit` of them. On PostgreSQL a revision committed late (below
   * `since`) is not seen here: its row is then simply not debounced.
   */
  changedSince(db: Kysely<any>, revTable: string, since: number, limit: number): Promise<{ key: string; rev: number }[]>
  /**
   * A first fill's page that claims its rows (undefined: the dialect reads a page, then claims
   * it with `claim`). One statement: while another worker holds live claims on the derived
   * table, it locks the table's fill frontier (a row of `lq_store_meta`) and starts after it
   * (or at the caller's bound, when that is further); it looks at the next `window` root rows
   * in key order (each with its live revision), skips the rows with another worker's claim
   * row, live or expired (an expired one is taken over by `claim` at the end: taking it over
   * here could deadlock with a `claim` taking it over at once), and (while others hold claims) the rows another worker stored from their current
   * revision with this code version, inserts claims for the first `limit` others under a new
   * token (`ON CONFLICT DO NOTHING`: a row with any claim row, or one inserted meanwhile, is
   * not taken) and moves the frontier to the last key it took (or looked at). Workers filling
   * one table at once then each take the next rows after the frontier instead of all reading
   * from their own cursor past rows the others took; the rows between the caller's bound and
   * `start` were taken by other workers, and the caller looks at them again at the end.
   */
  readonly pageClaim?: (spec: PageClaimSpec) => PageClaimStatement
}

async function changedSince(db: Kysely<any>, revTable: string, since: number, limit: number): Promise<{ key: string; rev: number }[]> {
  const r = await sql<{ lq_key: string; rev: unknown }>`SELECT lq_key, rev FROM ${sql.id(revTable)} WHERE rev > ${since} ORDER BY rev LIMIT ${limit}`.execute(db)
  return r.rows.map((x) => ({ key: x.lq_key, rev: Number(x.rev) }))
}

const PG_NOW = `(extract(epoch from clock_timestamp()) * 1000)::bigint`
const SQLITE_NOW = `CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)`

const rowOf = (r: { tbl: string; lq_key: string; owner: string; expires: unknown; token: unknown }): ClaimRow => ({
  table: r.tbl,
  key: r.lq_key,
  owner: r.owner,
  expires: Number(r.expires),
  token: Number(r.token),
})

/*
 * Claim statements (`claim`, the first-fill page statement) commit with the session's
 * `synchronous_commit`, waiting for their WAL flush, unlike derived writes: they take their
 * token from `lq_claim_seq`, and a sequence's advance is made durable only by the flush of a
 * commit. Committed without it, a server crash (tried: `pg_ctl stop -m immediate` within
 * `wal_writer_delay`) lost the claims AND took the sequence back, so the tokens of claims still
 * held in workers' memory were handed out again after the restart: a fence by token (a batch
 * that is not its lease's whole, PostgreSQL's `fence` without `whole`) then took another
 * worker's claim as its own, and a fence by owner and token (`whole`) of a worker handed its own
 * old token again deleted its new page's claims and passed its old batch without a claim.
 */
const postgres: ClaimDialect = {
  name: 'postgres',
  nowSql: PG_NOW,
  ddl: () => [
    `CREATE TABLE IF NOT EXISTS lq_claim (tbl text NOT NULL, lq_key text NOT NULL, owner text NOT NULL, expires bigint NOT NULL, token bigint NOT NULL, PRIMARY KEY (tbl, lq_key))`,
    `CREATE INDEX IF NOT EXISTS "lq_claim$owner" ON lq_claim (owner, token)`,
    `CREATE SEQUENCE IF NOT EXISTS lq_claim_seq`,
  ],
  rangeDdl: () => [
    `CREATE TABLE IF NOT EXISTS lq_claim_range (tbl text NOT NULL, token bigint NOT NULL, owner text NOT NULL, expires bigint NOT NULL, lo bigint NOT NULL, hi bigint NOT NULL, keys text NOT NULL, PRIMARY KEY (tbl, token))`,
  ],
  async now(db) {
    const r = await sql<{ ms: string }>`SELECT ${sql.raw(PG_NOW)} AS ms`.execute(db)
    return Number(r.rows[0]!.ms)
  },
  async claim(db, table, keys, owner, leaseMs) {
    // One statement: a token; expired claims among the keys, locked or skipped; the keys with no
    // claim row, inserted (a concurrent insert of the same key wins, ours does nothing). The
    // inserts go in key order: an insert waits for another transaction's uncommitted insert of
    // the same key, so two claimers inserting overlapping keys in different orders deadlocked
    // (40P01); in one order for every claimer no wait can close a cycle.
    const r = await sql<{ token: string; keys: string[] | null }>`WITH tok AS (SELECT nextval('lq_claim_seq') AS t),
clk AS (SELECT ${sql.raw(PG_NOW)} AS ms),
k AS (SELECT DISTINCT jsonb_array_elements_text(${JSON.stringify(keys)}::jsonb) AS k),
expired AS (SELECT c.tbl, c.lq_key FROM lq_claim c, clk WHERE c.tbl = ${table} AND c.lq_key = ANY(${keys}::text[]) AND (c.expires <= clk.ms OR c.owner = ${owner}) FOR UPDATE OF c SKIP LOCKED),
taken AS (UPDATE lq_claim c SET owner = ${owner}, expires = clk.ms + ${leaseMs}::bigint, token = tok.t FROM tok, clk, expired WHERE c.tbl = expired.tbl AND c.lq_key = expired.lq_key RETURNING c.lq_key),
ins AS (INSERT INTO lq_claim (tbl, lq_key, owner, expires, token) SELECT ${table}, k.k, ${owner}, clk.ms + ${leaseMs}::bigint, tok.t FROM k, clk, tok WHERE NOT EXISTS (SELECT 1 FROM lq_claim c WHERE c.tbl = ${table} AND c.lq_key = k.k) ORDER BY k.k ON CONFLICT DO NOTHING RETURNING lq_key)
SELECT (SELECT t FROM tok)::text AS token, (SELECT array_agg(lq_key) FROM (SELECT lq_key FROM taken UNION ALL SELECT lq_key FROM ins) x) AS keys`.execute(db)
    const row = r.rows[0]!
    return { token: Number(row.token), keys: row.keys ?? [] }
  },
  async heartbeat(db, owner, tokens, leaseMs) {
    // Rows are locked in key order (as `fence` and `release` do): a heartbeat and a batch's
    // write transaction of one owner lock the same rows, and in two orders they could deadlock.
    const r = await sql<{ token: string; n: string }>`WITH lk AS (SELECT tbl, lq_key FROM lq_claim WHERE owner = ${owner} AND token = ANY(${`{${tokens.join(',')}}`}::bigint[]) ORDER BY tbl, lq_key FOR UPDATE),
up AS (UPDATE lq_claim c SET expires = ${sql.raw(PG_NOW)} + ${leaseMs}::bigint FROM lk WHERE c.tbl = lk.tbl AND c.lq_key = lk.lq_key RETURNING c.token) SELECT token::text AS token, count(*)::text AS n FROM up GROUP BY token`.execute(db)
    return new Map(r.rows.map((x) => [Number(x.token), Number(x.n)]))
  },
  async release(db, owner, token, keys) {
    // One statement with or without a key list (null: every key of the token).
    const r = await sql`WITH lk AS (SELECT tbl, lq_key FROM lq_claim WHERE owner = ${owner} AND token = ${token} AND lq_key = ANY(COALESCE(${keys === undefined ? null : [...keys]}::text[], ARRAY[lq_key])) ORDER BY tbl, lq_key FOR UPDATE) DELETE FROM lq_claim c USING lk WHERE c.tbl = lk.tbl AND c.lq_key = lk.lq_key`.execute(db)
    return Number(r.numAffectedRows ?? 0)
  },
  async fence(trx, table, keys, token, whole) {
    if (whole) {
      // Every key of the token: its rows by token (locked in key order as below), no key list
      // sent or probed. No row comes back when every key had its row (the usual case);
      // otherwise the keys deleted (one row with a null key when none was), and the lost ones
      // are the others.
      // By owner and token: a range of the owner index (by token alone it was read whole).
      const g = await sql<{ lq_key: string | null }>`WITH mine AS (SELECT lq_key FROM lq_claim WHERE owner = ${whole.owner} AND token = ${token} AND tbl = ${table} ORDER BY lq_key FOR UPDATE),
gone AS (DELETE FROM lq_claim c USING mine WHERE c.tbl = ${table} AND c.lq_key = mine.lq_key RETURNING c.lq_key),
n AS (SELECT count(*) AS n FROM gone)
SELECT gone.lq_key FROM n LEFT JOIN gone ON true WHERE n.n < ${keys.length}`.execute(trx)
      if (g.rows.length === 0) return new Set()
      const mine = new Set(g.rows.map((x) => x.lq_key))
      return new Set(keys.filter((k) => !mine.has(k)))
    }
    // Our own rows are locked (in key order, as every claim statement locks them) and deleted;
    // keys with no row under our token were taken over. The keys as one array parameter
    // (`= ANY`, an index probe each) and NOT EXISTS (an anti-join): with a semi-join over
    // jsonb_array_elements_text, a young lq_claim's statistics made PostgreSQL nest loops
    // (2.1 s for a batch of 5000 keys; `refresh` 7x slower).
    const r = await sql<{ k: string }>`WITH mine AS (SELECT lq_key FROM lq_claim WHERE tbl = ${table} AND token = ${token} AND lq_key = ANY(${keys}::text[]) ORDER BY lq_key FOR UPDATE),
gone AS (DELETE FROM lq_claim c USING mine WHERE c.tbl = ${table} AND c.lq_key = mine.lq_key RETURNING c.lq_key)
SELECT k FROM unnest(${keys}::text[]) AS k WHERE NOT EXISTS (SELECT 1 FROM gone WHERE gone.lq_key = k)`.execute(trx)
    return new Set(r.rows.map((x) => x.k))
  },
  async held(db, table) {
    const r =
      table === undefined
        ? await sql<{ tbl: string; lq_key: string; owner: string; expires: string; token: string }>`SELECT tbl, lq_key, owner, expires::text AS expires, token::text AS token FROM lq_claim WHERE expires > ${sql.raw(PG_NOW)} ORDER BY tbl, lq_key`.execute(db)
        : await sql<{ tbl: string; lq_key: string; owner: string; expires: string; token: string }>`SELECT tbl, lq_key, owner, expires::text AS expires, token::text AS token FROM lq_claim WHERE tbl = ${table} AND expires > ${sql.raw(PG_NOW)} ORDER BY lq_key`.execute(db)
    return r.rows.map(rowOf)
  },
  async sweep(db, graceMs) {
    // Locked rows (a claimer taking one over right now) are skipped.
    const r = await sql`WITH dead AS (SELECT tbl, lq_key FROM lq_claim WHERE expires <= ${sql.raw(PG_NOW)} - ${graceMs}::bigint ORDER BY tbl, lq_key FOR UPDATE SKIP LOCKED) DELETE FROM lq_claim c USING dead WHERE c.tbl = dead.tbl AND c.lq_key = dead.lq_key`.execute(db)
    return Number(r.numAffectedRows ?? 0)
  },
  async othersHold(db, table, keys, owner, upTo) {
    const r = await sql<{ n: number }>`SELECT 1 AS n FROM lq_claim WHERE tbl = ${table} AND lq_key = ANY(${keys}::text[]) AND owner <> ${owner} AND expires > ${sql.raw(PG_NOW)}${upTo === undefined ? sql`` : sql` AND token <= ${upTo}`} LIMIT 1`.execute(db)
    return r.rows.length > 0
  },
  async lastToken(db) {
    const r = await sql<{ t: string }>`SELECT (CASE WHEN is_called THEN last_value ELSE last_value - 1 END)::text AS t FROM lq_claim_seq`.execute(db)
    return Number(r.rows[0]!.t)
  },
  async liveOn(db, tables, owner) {
    if (tables.length === 0) return 0
    const r = await sql<{ n: string }>`SELECT count(*)::text AS n FROM lq_claim WHERE tbl = ANY(${`{${tables.map((t) => `"${t}"`).join(',')}}`}::text[]) AND owner <> ${owner} AND expires > ${sql.raw(PG_NOW)}`.execute(db)
    return Number(r.rows[0]!.n)
  },
  changedSince,
  pageClaim: pgPageClaim,
}

/**
 * The PostgreSQL `pageClaim` statement. Every page statement of a table first locks its
 * frontier row (`FOR UPDATE`; `setup` creates it before the fill's first page), so the page
 * statements of one table run one at a time, and a statement never waits for a claim row while
 * another page statement waits for the frontier it holds: locking the frontier only while
 * others held claims deadlocked (a statement holding it waited for another's uncommitted claim
 * inserts, which waited to write the frontier), and so did a lock under a condition (a
 * subquery in a CASE is not run when the case is not taken: the row was then locked by the
 * frontier's update, after the inserts). The lock is a join (`st`), taken whatever the look at
 * the claim table said and before any claim is inserted (the claims are of the window's rows,
 * which read `st`). The frontier is read only while another worker
 * holds a live claim on the table (a worker alone starts at its own cursor). A statement that
 * waited for the lock reads the frontier its predecessor wrote (a locking read returns the
 * newest row version); its other reads are of its own snapshot, which cannot hold rows after
 * that frontier that another page took. The page's claimed flag is a hashed look-up of the
 * inserted keys (a join of the two CTEs was planned as a nested loop: 4 million comparisons
 * for a page of 2000 rows). Claims are inserted in key
 * order (as `claim` does: no deadlock with another claimer). Every look-up is a primary-key
 * probe in a scalar subquery (see `freePageWithRevs`). The frontier is a hint: a caller always
 * looks again at the rows it jumped over.
 */
function pgPageClaim(spec: PageClaimSpec): PageClaimStatement {
  const { root, derived } = spec
  const col = q(root.key![0]!)
  const n = spec.rowsParams
  const owner = `$${n + 1}`
  const cv = `$${n + 2}`
  const lease = `$${n + 3}::bigint`
  const tbl = `$${n + 4}`
  const fname = `$${n + 5}`
  const lower = `CAST($${spec.lowerParam} AS bigint)`
  const window = Math.trunc(spec.window)
  const limit = Math.trunc(spec.limit)
  const w = keyExpr(root, 'w', spec.keyJson)
  const p = keyExpr(root, 'p', spec.keyJson)
  const live = `EXISTS (SELECT 1 FROM lq_claim WHERE tbl = ${tbl} AND owner <> ${owner} AND expires > ${PG_NOW})`
  // A row with another owner's claim row, live or expired, is not inserted: `claim` takes an
  // expired row over by updating it before it inserts its new keys, so an insert here waiting
  // on that update while `claim` waits on a key inserted here was a deadlock (40P01); the row
  // is left to the span looked at again at the end, where `claim` takes it over.
  const anyOther = `EXISTS (SELECT 1 FROM lq_claim WHERE tbl = ${tbl} AND owner <> ${owner})`
  const heldBy = `CASE WHEN (SELECT a FROM anyc) THEN (SELECT 1 FROM lq_claim AS c WHERE c.tbl = ${tbl} AND c.lq_key = ${w} AND c.owner <> ${owner}) END`
  const done = `CASE WHEN (SELECT o FROM oth) THEN (SELECT 1 FROM ${q(metaTable(derived))} AS m WHERE m.lq_key = ${w} AND m.lq_code_version = ${cv} AND m.lq_max_input_rev = w.__rev) END`
  const rev = `(SELECT v.rev FROM ${q(revTable(root.name))} AS v WHERE v.lq_key = ${p} AND v.deleted = 0)`
  const text = `WITH oth AS MATERIALIZED (SELECT ${live} AS o),
anyc AS MATERIALIZED (SELECT ${anyOther} AS a),
fr AS MATERIALIZED (SELECT NULLIF(value, '')::bigint AS f FROM lq_store_meta WHERE name = ${fname} FOR UPDATE),
st AS MATERIALIZED (SELECT GREATEST(${lower}, CASE WHEN oth.o THEN fr.f + 1 END) AS lo FROM oth LEFT JOIN fr ON true),
win AS MATERIALIZED (SELECT w.*, 1 AS __row, ${w} AS __k, ${heldBy} AS __claimed, ${done} AS __stored FROM (SELECT p.*, ${rev} AS __rev FROM (SELECT * FROM (${spec.rows}) AS r WHERE r.${col} >= (SELECT lo FROM st) ORDER BY r.${col} LIMIT ${window}) AS p) AS w),
free AS MATERIALIZED (SELECT * FROM win WHERE __claimed IS NULL AND __stored IS NULL ORDER BY ${col} LIMIT ${limit}),
tok AS MATERIALIZED (SELECT nextval('lq_claim_seq') AS t WHERE EXISTS (SELECT 1 FROM free WHERE __rev IS NOT NULL)),
ins AS (INSERT INTO lq_claim (tbl, lq_key, owner, expires, token) SELECT ${tbl}, f.__k, ${owner}, ${PG_NOW} + ${lease}, tok.t FROM free AS f, tok WHERE f.__rev IS NOT NULL ORDER BY f.__k ON CONFLICT DO NOTHING RETURNING lq_key),
nf AS (UPDATE lq_store_meta SET value = (CASE WHEN (SELECT count(*) FROM free) >= ${limit} THEN (SELECT max(${col}) FROM free) ELSE (SELECT max(${col}) FROM win) END)::text WHERE name = ${fname} AND EXISTS (SELECT 1 FROM win)),
sm AS (SELECT count(*) AS __scanned, max(${col}) AS __last, (SELECT json_agg(${col}) FROM win WHERE __claimed IS NOT NULL) AS __held, (SELECT o FROM oth) AS __others, (SELECT lo FROM st)::text AS __start, (SELECT t FROM tok)::text AS __token FROM win)
SELECT f.*, CASE WHEN f.__k IN (SELECT lq_key FROM ins) THEN 1 END AS __got, sm.* FROM sm LEFT JOIN free AS f ON true ORDER BY f.${col}`
  return {
    sql: text,
    params: (rows, o, c, ms) => [...rows, o, c, ms, derived, frontierName(derived)],
    setup: { sql: `INSERT INTO lq_store_meta (name, value) VALUES ($1, '') ON CONFLICT (name) DO NOTHING`, params: [frontierName(derived)] },
  }
}

const sqlite: ClaimDialect = {
  name: 'sqlite',
  nowSql: SQLITE_NOW,
  ddl: () => [
    `CREATE TABLE IF NOT EXISTS lq_claim (tbl text NOT NULL, lq_key text NOT NULL, owner text NOT NULL, expires integer NOT NULL, token integer NOT NULL, PRIMARY KEY (tbl, lq_key)) WITHOUT ROWID`,
    `CREATE INDEX IF NOT EXISTS "lq_claim$owner" ON lq_claim (owner, token)`,
    `INSERT INTO lq_store_meta (name, value) VALUES ('claim_token', '0') ON CONFLICT (name) DO NOTHING`,
  ],
  rangeDdl: () => [
    `CREATE TABLE IF NOT EXISTS lq_claim_range (tbl text NOT NULL, token integer NOT NULL, owner text NOT NULL, expires integer NOT NULL, lo integer NOT NULL, hi integer NOT NULL, keys text NOT NULL, PRIMARY KEY (tbl, token))`,
  ],
  async now(db) {
    const r = await sql<{ ms: number }>`SELECT ${sql.raw(SQLITE_NOW)} AS ms`.execute(db)
    return Number(r.rows[0]!.ms)
  },
  async claim(db, table, keys, owner, leaseMs) {
    return immediate(db, async (c) => {
      const token = await sqliteToken(c)
      return { token, keys: await sqliteClaimKeys(c, table, keys, owner, leaseMs, token) }
    })
  },
  async claimRange(db, table, lo, hi, keys, owner, leaseMs) {
    return immediate(db, async (c) => {
      const token = await sqliteToken(c)
      // Another range over the span (live, or expired: \`claim\` splits it), or any claim row in
      // it (another worker's, or another call's of this store): the keys are claimed one by one.
      const busy = await sql<{ n: number }>`SELECT 1 AS n WHERE EXISTS (SELECT 1 FROM lq_claim_range WHERE tbl = ${table} AND lo <= ${hi} AND hi >= ${lo})
OR EXISTS (SELECT 1 FROM lq_claim WHERE tbl = ${table} AND ${sql.raw(SQLITE_INT_IN('lq_key'))} BETWEEN ${lo} AND ${hi})`.execute(c)
      if (busy.rows.length > 0) return { token, keys: await sqliteClaimKeys(c, table, keys, owner, leaseMs, token), range: false }
      await sql`INSERT INTO lq_claim_range (tbl, token, owner, expires, lo, hi, keys) VALUES (${table}, ${token}, ${owner}, ${sql.raw(SQLITE_NOW)} + ${leaseMs}, ${lo}, ${hi}, ${JSON.stringify(keys)})`.execute(c)
      return { token, keys: [...keys], range: true }
    })
  },
  async heartbeat(db, owner, tokens, leaseMs) {
    const list = JSON.stringify(tokens)
    const r = await sql<{ token: number }>`UPDATE lq_claim SET expires = ${sql.raw(SQLITE_NOW)} + ${leaseMs} WHERE owner = ${owner} AND token IN (SELECT value FROM json_each(${list})) RETURNING token`.execute(db)
    const out = new Map<number, number>()
    for (const x of r.rows) out.set(Number(x.token), (out.get(Number(x.token)) ?? 0) + 1)
    // A range holds every key it was taken with.
    const g = await sql<{ token: number; n: number }>`UPDATE lq_claim_range SET expires = ${sql.raw(SQLITE_NOW)} + ${leaseMs} WHERE owner = ${owner} AND token IN (SELECT value FROM json_each(${list})) RETURNING token, json_array_length(keys) AS n`.execute(db)
    for (const x of g.rows) out.set(Number(x.token), (out.get(Number(x.token)) ?? 0) + Number(x.n))
    return out
  },
  async release(db, owner, token, keys) {
    const r =
      keys === undefined
        ? await sql`DELETE FROM lq_claim WHERE owner = ${owner} AND token = ${token}`.execute(db)
        : await sql`DELETE FROM lq_claim WHERE owner = ${owner} AND token = ${token} AND lq_key IN (SELECT value FROM json_each(${JSON.stringify(keys)}))`.execute(db)
    // A range is released whole only (some of its keys: it stays until the rest are done).
    const g = keys === undefined ? await sql<{ n: number }>`DELETE FROM lq_claim_range WHERE owner = ${owner} AND token = ${token} RETURNING json_array_length(keys) AS n`.execute(db) : { rows: [] as { n: number }[] }
    return Number(r.numAffectedRows ?? 0) + g.rows.reduce((a, x) => a + Number(x.n), 0)
  },
  async fence(trx, table, keys, token, whole) {
    // A range under the token still there: every key of it is held (deleted with the batch's
    // write when it is the whole batch); gone (taken over after it expired): every key is refused.
    const range = whole !== undefined
      ? await sql<{ n: number }>`DELETE FROM lq_claim_range WHERE tbl = ${table} AND token = ${token} RETURNING 1 AS n`.execute(trx)
      : await sql<{ n: number }>`SELECT 1 AS n FROM lq_claim_range WHERE tbl = ${table} AND token = ${token}`.execute(trx)
    if (range.rows.length > 0) return new Set()
    // Every key of the token: its rows by token (the table's claim rows, only batches in flight,
    // read in key order; by the owner index it was slower), not a probe per key (a quarter less
    // time for a batch of 5000).
    const r = whole !== undefined
      ? await sql<{ lq_key: string }>`DELETE FROM lq_claim WHERE tbl = ${table} AND token = ${token} RETURNING lq_key`.execute(trx)
      : await sql<{ lq_key: string }>`DELETE FROM lq_claim WHERE tbl = ${table} AND token = ${token} AND lq_key IN (SELECT value FROM json_each(${JSON.stringify(keys)})) RETURNING lq_key`.execute(trx)
    const mine = new Set(r.rows.map((x) => x.lq_key))
    return new Set(keys.filter((k) => !mine.has(k)))
  },
  async held(db, table) {
    // Claim rows, and the keys of live ranges.
    type Row = { tbl: string; lq_key: string; owner: string; expires: number; token: number }
    const ranges = sql`SELECT r.tbl, j.value AS lq_key, r.owner, r.expires, r.token FROM lq_claim_range AS r, json_each(r.keys) AS j WHERE r.expires > ${sql.raw(SQLITE_NOW)}`
    const r =
      table === undefined
        ? await sql<Row>`SELECT tbl, lq_key, owner, expires, token FROM lq_claim WHERE expires > ${sql.raw(SQLITE_NOW)} UNION ALL ${ranges} ORDER BY tbl, lq_key`.execute(db)
        : await sql<Row>`SELECT tbl, lq_key, owner, expires, token FROM lq_claim WHERE tbl = ${table} AND expires > ${sql.raw(SQLITE_NOW)} UNION ALL ${ranges} AND r.tbl = ${table} ORDER BY lq_key`.execute(db)
    return r.rows.map(rowOf)
  },
  async sweep(db, graceMs) {
    const r = await sql`DELETE FROM lq_claim WHERE expires <= ${sql.raw(SQLITE_NOW)} - ${graceMs}`.execute(db)
    const g = await sql`DELETE FROM lq_claim_range WHERE expires <= ${sql.raw(SQLITE_NOW)} - ${graceMs}`.execute(db)
    return Number(r.numAffectedRows ?? 0) + Number(g.numAffectedRows ?? 0)
  },
  async othersHold(db, table, keys, owner, upTo) {
    const list = JSON.stringify(keys)
    const tok = upTo === undefined ? sql`` : sql` AND token <= ${upTo}`
    const r = await sql<{ n: number }>`SELECT 1 AS n WHERE EXISTS (SELECT 1 FROM lq_claim WHERE tbl = ${table} AND lq_key IN (SELECT value FROM json_each(${list})) AND owner <> ${owner} AND expires > ${sql.raw(SQLITE_NOW)}${tok})
OR EXISTS (SELECT 1 FROM lq_claim_range AS r, json_each(${list}) AS j WHERE r.tbl = ${table} AND r.owner <> ${owner} AND r.expires > ${sql.raw(SQLITE_NOW)}${tok} AND ${sql.raw(SQLITE_INT_IN('j.value'))} BETWEEN r.lo AND r.hi)`.execute(db)
    return r.rows.length > 0
  },
  async lastToken(db) {
    const r = await sql<{ value: string }>`SELECT value FROM lq_store_meta WHERE name = 'claim_token'`.execute(db)
    return r.rows.length === 0 ? 0 : Number(r.rows[0]!.value)
  },
  async liveOn(db, tables, owner) {
    if (tables.length === 0) return 0
    const list = JSON.stringify(tables)
    const r = await sql<{ n: number }>`SELECT (SELECT count(*) FROM lq_claim WHERE tbl IN (SELECT value FROM json_each(${list})) AND owner <> ${owner} AND expires > ${sql.raw(SQLITE_NOW)})
+ (SELECT count(*) FROM lq_claim_range WHERE tbl IN (SELECT value FROM json_each(${list})) AND owner <> ${owner} AND expires > ${sql.raw(SQLITE_NOW)}) AS n`.execute(db)
    return Number(r.rows[0]!.n)
  },
  changedSince,
}

/** A `BEGIN IMMEDIATE` transaction on one connection, retried while another connection holds the write lock (the store's own). */
const immediate = <T>(db: Kysely<any>, fn: (c: Kysely<any>) => Promise<T>): Promise<T> => sqliteStartup.writeTransaction(db, fn)

/** The integer an address text is (SQLite), or null when it is not the text of an integer ('7x' and 'abc' are not: CAST alone reads them as 7 and 0). */
const SQLITE_INT_IN = (v: string): string => `(CASE WHEN CAST(CAST(${v} AS INTEGER) AS TEXT) = ${v} THEN CAST(${v} AS INTEGER) END)`

/** The next fencing token (SQLite: the counter row, in the claim's transaction). */
async function sqliteToken(c: Kysely<any>): Promise<number> {
  const t = await sql<{ value: string }>`UPDATE lq_store_meta SET value = CAST(CAST(value AS INTEGER) + 1 AS TEXT) WHERE name = 'claim_token' RETURNING value`.execute(c)
  return Number(t.rows[0]!.value)
}

/**
 * SQLite \`claim\` under \`token\`, in a \`BEGIN IMMEDIATE\` transaction: the keys taken. Where the
 * table has ranges, a key in a live range of another owner is not taken, and an expired range
 * over one of the keys is split into claim rows of its keys (its owner, token and expiry), which
 * are then taken over as any expired claim row: its holder's fence finds its range gone and
 * refuses the keys taken over only (the claim rows of the others are still under its token).
 */
async function sqliteClaimKeys(c: Kysely<any>, table: string, keys: readonly string[], owner: string, leaseMs: number, token: number): Promise<string[]> {
  // The keys are distinct (no DISTINCT in the statement: it sorted every key list).
  let list = new Set(keys).size === keys.length ? keys : [...new Set(keys)]
  const ranges = await sql<{ n: number }>`SELECT 1 AS n FROM lq_claim_range WHERE tbl = ${table} LIMIT 1`.execute(c)
  if (ranges.rows.length > 0) {
    const json = JSON.stringify(list)
    const expired = await sql<{ token: number }>`SELECT token FROM lq_claim_range AS r WHERE r.tbl = ${table} AND r.expires <= ${sql.raw(SQLITE_NOW)} AND EXISTS (SELECT 1 FROM json_each(${json}) AS j WHERE ${sql.raw(SQLITE_INT_IN('j.value'))} BETWEEN r.lo AND r.hi)`.execute(c)
    if (expired.rows.length > 0) {
      const tokens = JSON.stringify(expired.rows.map((x) => Number(x.token)))
      await sql`INSERT INTO lq_claim (tbl, lq_key, owner, expires, token) SELECT r.tbl, j.value, r.owner, r.expires, r.token FROM lq_claim_range AS r, json_each(r.keys) AS j WHERE r.tbl = ${table} AND r.token IN (SELECT value FROM json_each(${tokens})) ON CONFLICT DO NOTHING`.execute(c)
      await sql`DELETE FROM lq_claim_range WHERE tbl = ${table} AND token IN (SELECT value FROM json_each(${tokens}))`.execute(c)
    }
    // Every range over the keys still there was live when the expired ones were split: its keys
    // are not taken, with no second look at the clock (a range whose lease ended between the two
    // statements was neither split nor skipped: its holder's fence let the key taken through).
    const free = await sql<{ k: string }>`SELECT j.value AS k FROM json_each(${json}) AS j WHERE NOT EXISTS (SELECT 1 FROM lq_claim_range AS r WHERE r.tbl = ${table} AND r.owner <> ${owner} AND ${sql.raw(SQLITE_INT_IN('j.value'))} BETWEEN r.lo AND r.hi)`.execute(c)
    list = free.rows.map((x) => x.k)
    if (list.length === 0) return []
  }
  // One upsert: new rows inserted, expired ones taken over, live ones left alone (not returned).
  const r = await sql<{ lq_key: string }>`INSERT INTO lq_claim (tbl, lq_key, owner, expires, token) SELECT ${table}, value, ${owner}, ${sql.raw(SQLITE_NOW)} + ${leaseMs}, ${token} FROM json_each(${JSON.stringify(list)}) WHERE true
ON CONFLICT (tbl, lq_key) DO UPDATE SET owner = excluded.owner, expires = excluded.expires, token = excluded.token WHERE lq_claim.expires <= ${sql.raw(SQLITE_NOW)} OR lq_claim.owner = excluded.owner
RETURNING lq_key`.execute(c)
  return r.rows.map((x) => x.lq_key)
}

export const claimDialects: Readonly<Record<Dialect, ClaimDialect>> = { sqlite, postgres }
