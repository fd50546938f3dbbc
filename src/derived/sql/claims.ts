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
 * - `held`: the live claims of a derived table (for `stale()` and `status`); `othersHold`:
 *   whether other workers hold some of a list of rows (a refresh waiting for them).
 * - `sweep`: delete claims whose lease ended a while ago (`collect`): a worker killed with
 *   `kill -9` leaves its claim rows, which are free once expired but stay in the table.
 *
 * The table and the token counter are created by migration 3 (`schema.ts`); `ddl` lists them.
 */
import { sql, type Kysely } from 'kysely'
import type { Dialect } from '../../query/dialect.js'
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
  /** Extend the claims of `owner` under `tokens` by `leaseMs` from now; rows still held per token. */
  heartbeat(db: Kysely<any>, owner: string, tokens: readonly number[], leaseMs: number): Promise<Map<number, number>>
  /** Delete the claims of `owner` under `token` (all of them, or those of `keys`); how many. */
  release(db: Kysely<any>, owner: string, token: number, keys?: readonly string[]): Promise<number>
  /** In a write transaction: which of `keys` of `table` are no longer held under `token` (lost leases); the claims on the others are deleted (released at commit). */
  fence(trx: Kysely<any>, table: string, keys: readonly string[], token: number): Promise<Set<string>>
  /** Live (unexpired) claims of `table`, or of every table. */
  held(db: Kysely<any>, table?: string): Promise<ClaimRow[]>
  /** Delete the claims whose lease ended at least `graceMs` ago (of workers that died or stopped without releasing them); how many. */
  sweep(db: Kysely<any>, graceMs: number): Promise<number>
  /** Whether another owner than `owner` holds a live claim on one of `keys` of `table`. */
  othersHold(db: Kysely<any>, table: string, keys: readonly string[], owner: string): Promise<boolean>
  /** Live claims held by others on any of `tables` (a worker waits for these before a downstream table). */
  liveOn(db: Kysely<any>, tables: readonly string[], owner: string): Promise<number>
  /**
   * Watch (debounce): keys and revisions of revision table `revTable` written after revision
   * `since`, newest last, at most `limit` of them. On PostgreSQL a revision committed late (below
   * `since`) is not seen here: its row is then simply not debounced.
   */
  changedSince(db: Kysely<any>, revTable: string, since: number, limit: number): Promise<{ key: string; rev: number }[]>
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

const postgres: ClaimDialect = {
  name: 'postgres',
  nowSql: PG_NOW,
  ddl: () => [
    `CREATE TABLE IF NOT EXISTS lq_claim (tbl text NOT NULL, lq_key text NOT NULL, owner text NOT NULL, expires bigint NOT NULL, token bigint NOT NULL, PRIMARY KEY (tbl, lq_key))`,
    `CREATE INDEX IF NOT EXISTS "lq_claim$owner" ON lq_claim (owner, token)`,
    `CREATE SEQUENCE IF NOT EXISTS lq_claim_seq`,
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
  async fence(trx, table, keys, token) {
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
  async othersHold(db, table, keys, owner) {
    const r = await sql<{ n: number }>`SELECT 1 AS n FROM lq_claim WHERE tbl = ${table} AND lq_key = ANY(${keys}::text[]) AND owner <> ${owner} AND expires > ${sql.raw(PG_NOW)} LIMIT 1`.execute(db)
    return r.rows.length > 0
  },
  async liveOn(db, tables, owner) {
    if (tables.length === 0) return 0
    const r = await sql<{ n: string }>`SELECT count(*)::text AS n FROM lq_claim WHERE tbl = ANY(${`{${tables.map((t) => `"${t}"`).join(',')}}`}::text[]) AND owner <> ${owner} AND expires > ${sql.raw(PG_NOW)}`.execute(db)
    return Number(r.rows[0]!.n)
  },
  changedSince,
}

const sqlite: ClaimDialect = {
  name: 'sqlite',
  nowSql: SQLITE_NOW,
  ddl: () => [
    `CREATE TABLE IF NOT EXISTS lq_claim (tbl text NOT NULL, lq_key text NOT NULL, owner text NOT NULL, expires integer NOT NULL, token integer NOT NULL, PRIMARY KEY (tbl, lq_key)) WITHOUT ROWID`,
    `CREATE INDEX IF NOT EXISTS "lq_claim$owner" ON lq_claim (owner, token)`,
    `INSERT INTO lq_store_meta (name, value) VALUES ('claim_token', '0') ON CONFLICT (name) DO NOTHING`,
  ],
  async now(db) {
    const r = await sql<{ ms: number }>`SELECT ${sql.raw(SQLITE_NOW)} AS ms`.execute(db)
    return Number(r.rows[0]!.ms)
  },
  async claim(db, table, keys, owner, leaseMs) {
    return immediate(db, async (c) => {
      const t = await sql<{ value: string }>`UPDATE lq_store_meta SET value = CAST(CAST(value AS INTEGER) + 1 AS TEXT) WHERE name = 'claim_token' RETURNING value`.execute(c)
      const token = Number(t.rows[0]!.value)
      // One upsert: new rows inserted, expired ones taken over, live ones left alone (not returned).
      const r = await sql<{ lq_key: string }>`INSERT INTO lq_claim (tbl, lq_key, owner, expires, token) SELECT DISTINCT ${table}, value, ${owner}, ${sql.raw(SQLITE_NOW)} + ${leaseMs}, ${token} FROM json_each(${JSON.stringify(keys)}) WHERE true
ON CONFLICT (tbl, lq_key) DO UPDATE SET owner = excluded.owner, expires = excluded.expires, token = excluded.token WHERE lq_claim.expires <= ${sql.raw(SQLITE_NOW)} OR lq_claim.owner = excluded.owner
RETURNING lq_key`.execute(c)
      return { token, keys: r.rows.map((x) => x.lq_key) }
    })
  },
  async heartbeat(db, owner, tokens, leaseMs) {
    const r = await sql<{ token: number }>`UPDATE lq_claim SET expires = ${sql.raw(SQLITE_NOW)} + ${leaseMs} WHERE owner = ${owner} AND token IN (SELECT value FROM json_each(${JSON.stringify(tokens)})) RETURNING token`.execute(db)
    const out = new Map<number, number>()
    for (const x of r.rows) out.set(Number(x.token), (out.get(Number(x.token)) ?? 0) + 1)
    return out
  },
  async release(db, owner, token, keys) {
    const r =
      keys === undefined
        ? await sql`DELETE FROM lq_claim WHERE owner = ${owner} AND token = ${token}`.execute(db)
        : await sql`DELETE FROM lq_claim WHERE owner = ${owner} AND token = ${token} AND lq_key IN (SELECT value FROM json_each(${JSON.stringify(keys)}))`.execute(db)
    return Number(r.numAffectedRows ?? 0)
  },
  async fence(trx, table, keys, token) {
    const r = await sql<{ lq_key: string }>`DELETE FROM lq_claim WHERE tbl = ${table} AND token = ${token} AND lq_key IN (SELECT value FROM json_each(${JSON.stringify(keys)})) RETURNING lq_key`.execute(trx)
    const mine = new Set(r.rows.map((x) => x.lq_key))
    return new Set(keys.filter((k) => !mine.has(k)))
  },
  async held(db, table) {
    const r =
      table === undefined
        ? await sql<{ tbl: string; lq_key: string; owner: string; expires: number; token: number }>`SELECT tbl, lq_key, owner, expires, token FROM lq_claim WHERE expires > ${sql.raw(SQLITE_NOW)} ORDER BY tbl, lq_key`.execute(db)
        : await sql<{ tbl: string; lq_key: string; owner: string; expires: number; token: number }>`SELECT tbl, lq_key, owner, expires, token FROM lq_claim WHERE tbl = ${table} AND expires > ${sql.raw(SQLITE_NOW)} ORDER BY lq_key`.execute(db)
    return r.rows.map(rowOf)
  },
  async sweep(db, graceMs) {
    const r = await sql`DELETE FROM lq_claim WHERE expires <= ${sql.raw(SQLITE_NOW)} - ${graceMs}`.execute(db)
    return Number(r.numAffectedRows ?? 0)
  },
  async othersHold(db, table, keys, owner) {
    const r = await sql<{ n: number }>`SELECT 1 AS n FROM lq_claim WHERE tbl = ${table} AND lq_key IN (SELECT value FROM json_each(${JSON.stringify(keys)})) AND owner <> ${owner} AND expires > ${sql.raw(SQLITE_NOW)} LIMIT 1`.execute(db)
    return r.rows.length > 0
  },
  async liveOn(db, tables, owner) {
    if (tables.length === 0) return 0
    const r = await sql<{ n: number }>`SELECT count(*) AS n FROM lq_claim WHERE tbl IN (SELECT value FROM json_each(${JSON.stringify(tables)})) AND owner <> ${owner} AND expires > ${sql.raw(SQLITE_NOW)}`.execute(db)
    return Number(r.rows[0]!.n)
  },
  changedSince,
}

/** A `BEGIN IMMEDIATE` transaction on one connection, retried while another connection holds the write lock (the store's own). */
const immediate = <T>(db: Kysely<any>, fn: (c: Kysely<any>) => Promise<T>): Promise<T> => sqliteStartup.writeTransaction(db, fn)

export const claimDialects: Readonly<Record<Dialect, ClaimDialect>> = { sqlite, postgres }
