/**
 * PostgreSQL: the derived-data engine's hooks (`StoreDialect`, see `dialect.ts`) and its start
 * hooks (`StartupDialect`, see `startup.ts`). Revisions come from the sequence `lq_clock_seq`;
 * every revision row also records its writing transaction (`xid8`), and a watermark is a
 * (revision, snapshot) pair (see `dialect.ts`).
 */
import { sql } from 'kysely'
import { deletedIndex, errorCode, indexName, keyExpr, NOTIFY_CHANNEL, parseSnapshot, q, revTable, type BatchWriteSpec, type JsonFieldType, type StoreDialect } from './dialect.js'
import { BUSY_RETRIES, sleep, type BackfillBatch, type StartupDialect } from './startup.js'

/** The SQL type a JSON field is cast to, by the type of the column it is stored in. */
const PG_FIELD_TYPES: Readonly<Record<Exclude<JsonFieldType, 'text'>, string>> = { int: 'bigint', real: 'double precision', boolean: 'boolean', decimal: 'numeric', date: 'date', timestamp: 'timestamptz', json: 'jsonb' }

/** A key column's value as JSON text (integers print as JSON numbers). */
const pgKeyJson = (ref: string, kind: string): string => (kind === 'int' ? `(${ref})::text` : `to_jsonb(${ref})::text`)

function pgRetryable(e: unknown): boolean {
  const code = (e as { code?: unknown } | null)?.code
  // lock_not_available (lock_timeout), deadlock_detected, serialization_failure
  return code === '55P03' || code === '40P01' || code === '40001'
}

/** SQLSTATE of the commit-time watermark check's refusal (`StoreDialect.watermarkMoved`). */
const WATERMARK_MOVED = 'LQW01'
/** SQLSTATE of `lq_move_watermark` called in a transaction that is not READ COMMITTED. */
const MOVE_ISOLATION = 'LQW02'

/**
 * The late-row check's objects (`StoreDialect.lateCheckDDL`, schema version 5).
 *
 * - `lq_wm_check`: one marker row per write transaction of a derived table's rows
 *   (`watermarkAtCommit`), with the watermark read (comprehensions; else null) and the code
 *   version of the rows; unlogged (it is empty between transactions). Its constraint trigger is
 *   deferred: it runs inside the COMMIT (its locks are taken and released by the COMMIT's own
 *   server-side processing: a client stopped before or during its COMMIT holds no lock on the
 *   watermark row). When a watermark was read it reads the watermark row FOR KEY SHARE (which
 *   conflicts with the move's FOR UPDATE only, not with another write's update of the row's
 *   applied version, so the check never waits for another writer) and fails the commit with
 *   SQLSTATE LQW01 when the watermark is no longer the one the write read. Then it forgets the
 *   table's applied code version when it is not the rows' (an update of the watermark row: in
 *   the write transaction itself, a worker stopped after it held up every move until it went
 *   on; here two writes that both forget it wait only for each other's COMMIT, server-side),
 *   and deletes the marker.
 * - `lq_move_watermark`: a comprehension's watermark move (`moveWatermarkUnlessStored`), one
 *   call in its own transaction. It locks the watermark row FOR UPDATE, then (a new statement
 *   of a VOLATILE function: in READ COMMITTED, a snapshot taken after the lock was granted)
 *   looks for live rows evaluated before the clock and written by a transaction not visible in
 *   the caller's look snapshot (`lq_xid >= xmax OR lq_xid = ANY(xip)`: index conditions on
 *   `lq_xid`); there are some: returns false without moving. Else moves, as `writeWatermark`.
 *   Refused (SQLSTATE LQW02) in a transaction that is not READ COMMITTED (a connection whose
 *   `default_transaction_isolation` is REPEATABLE READ or SERIALIZABLE): its snapshot would be
 *   the call's, taken before the lock, and miss a write that committed while it waited.
 *
 * Why the two close the window: a write whose commit-time check took its key-share lock before the
 * move's FOR UPDATE has committed before the move's look statement (the move waited for it), so
 * the move sees its rows (examined by the caller's look, or not visible to its snapshot: then
 * found here); one whose check came after waits for the move's commit and reads the moved
 * watermark (READ COMMITTED reads the newest version of a row it waited for), so its commit
 * fails and it runs again, and its `lateResults` refuses what is late.
 */
function pgLateCheckDDL(): string[] {
  return [
    `CREATE UNLOGGED TABLE IF NOT EXISTS lq_wm_check (name text NOT NULL, wm_rev bigint, wm_xmin text, code_version text NOT NULL, xid xid8 NOT NULL DEFAULT pg_current_xact_id())`,
    `CREATE OR REPLACE FUNCTION lq_wm_check() RETURNS trigger LANGUAGE plpgsql SET search_path FROM CURRENT AS $lq$
DECLARE
  cur record;
BEGIN
  IF NEW.wm_rev IS NOT NULL THEN
    SELECT wm_rev, wm_xmin INTO cur FROM lq_derived WHERE name = NEW.name FOR KEY SHARE;
    IF cur.wm_rev IS DISTINCT FROM NEW.wm_rev OR cur.wm_xmin IS DISTINCT FROM NEW.wm_xmin THEN
      RAISE EXCEPTION 'derived table %: its watermark moved since this write read it (rev % then, % now)', NEW.name, NEW.wm_rev, cur.wm_rev USING ERRCODE = '${WATERMARK_MOVED}';
    END IF;
  END IF;
  UPDATE lq_derived SET applied_code_version = NULL WHERE name = NEW.name AND applied_code_version <> NEW.code_version;
  DELETE FROM lq_wm_check WHERE xid = pg_current_xact_id() AND name = NEW.name;
  RETURN NULL;
END
$lq$`,
    `DROP TRIGGER IF EXISTS lq_wm_check ON lq_wm_check`,
    `CREATE CONSTRAINT TRIGGER lq_wm_check AFTER INSERT ON lq_wm_check DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION lq_wm_check()`,
    `CREATE OR REPLACE FUNCTION lq_move_watermark(p_name text, p_meta text, p_rev bigint, p_snapshot text, p_look text, p_applied text, p_code text) RETURNS boolean
VOLATILE LANGUAGE plpgsql SET search_path FROM CURRENT AS $lq$
DECLARE
  stored boolean;
BEGIN
  IF current_setting('transaction_isolation') NOT IN ('read committed', 'read uncommitted') THEN
    RAISE EXCEPTION 'derived table %: its watermark move needs READ COMMITTED (its last look must see what committed while it waited for the watermark row), and this transaction is %: set default_transaction_isolation to read committed for the store''s connections', p_name, upper(current_setting('transaction_isolation')) USING ERRCODE = '${MOVE_ISOLATION}';
  END IF;
  PERFORM 1 FROM lq_derived WHERE name = p_name FOR UPDATE;
  EXECUTE format('SELECT EXISTS (SELECT 1 FROM %I AS s WHERE (s.lq_xid >= $1 OR s.lq_xid = ANY($2)) AND s.lq_eval_rev < $3 AND s.lq_state <> ''deleted'')', p_meta)
    INTO stored USING pg_snapshot_xmax(p_look::pg_snapshot), ARRAY(SELECT pg_snapshot_xip(p_look::pg_snapshot)), p_rev;
  IF stored THEN
    RETURN false;
  END IF;
  UPDATE lq_derived SET wm_rev = p_rev, wm_xmin = p_snapshot,
    applied_code_version = CASE WHEN COALESCE(applied_code_version, '') = COALESCE(p_applied, '') THEN p_code ELSE NULL END
  WHERE name = p_name;
  RETURN true;
END
$lq$`,
  ]
}

export const postgres: StoreDialect = {
  name: 'postgres',
  revType: 'bigint',
  xidColumn: 'xid8 NOT NULL DEFAULT pg_current_xact_id()',
  keyedTable: '',
  deltaKeys: 100,
  maxParams: 65535,
  clockDDL: () => [`CREATE SEQUENCE lq_clock_seq`],
  async readClock(db) {
    const r = await sql<{ rev: string; snapshot: string }>`SELECT (SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM lq_clock_seq) AS rev, pg_current_snapshot()::text AS snapshot`.execute(db)
    const row = r.rows[0]!
    return { rev: Number(row.rev), xmin: row.snapshot }
  },
  async nextRev(trx) {
    const r = await sql<{ rev: string }>`SELECT nextval('lq_clock_seq') AS rev, set_config('synchronous_commit', 'off', true) AS sc`.execute(trx)
    return Number(r.rows[0]!.rev)
  },
  since(alias, revCol, xidCol, wm) {
    const rev = sql.ref(`${alias}.${revCol}`)
    if (wm.xmin === null) return sql<boolean>`${rev} > ${wm.rev}`
    const xid = sql.ref(`${alias}.${xidCol}`)
    const snap = parseSnapshot(wm.xmin)
    // Not a snapshot the engine wrote: every row counts as changed (slow, never wrong).
    if (snap === undefined) return sql<boolean>`true`
    if (snap.kind === 'xmin') return sql<boolean>`(${rev} > ${wm.rev} OR ${xid} >= ${snap.xmin}::xid8)`
    if (snap.xip.length === 0) return sql<boolean>`(${rev} > ${wm.rev} OR ${xid} >= ${snap.xmax}::xid8)`
    // The xip list travels as one array parameter (text `{1,2,...}`).
    return sql<boolean>`(${rev} > ${wm.rev} OR ${xid} >= ${snap.xmax}::xid8 OR ${xid} = ANY(${`{${snap.xip.join(',')}}`}::xid8[]))`
  },
  xidValue: () => sql`pg_current_xact_id()`,
  xidSql: 'pg_current_xact_id()',
  ph: (i) => `$${i}`,
  numberedPlaceholders: true,
  jsonRows: (p) => `jsonb_array_elements(${p}::jsonb) AS j(value)`,
  jsonField: (i, type) => {
    const e = `(j.value ->> ${i})`
    return type === 'text' ? e : `${e}::${PG_FIELD_TYPES[type]}`
  },
  jsonTexts: (p) => `SELECT jsonb_array_elements_text(${p}::jsonb)`,
  // jsonb keeps a number as numeric, exactly; its text is read back by float8in, correctly rounded.
  exactJsonReals: true,
  replaceLoneSurrogates: true,
  batchWrite: (spec) => pgBatchWrite(spec),
  async analyze(db, table) {
    await sql`ANALYZE ${sql.id(table)}`.execute(db)
  },
  trackDDL(root) {
    const R = q(root.name)
    const V = q(revTable(root.name))
    const fn = q(`lq_trg_${root.name}`)
    const fnT = q(`lq_trt_${root.name}`)
    const upsert = (key: string, deleted: 0 | 1) =>
      `INSERT INTO ${V} (lq_key, rev, deleted, xid) VALUES (${key}, nextval('lq_clock_seq'), ${deleted}, pg_current_xact_id()) ON CONFLICT (lq_key) DO UPDATE SET rev = excluded.rev, deleted = excluded.deleted, xid = excluded.xid;`
    const kNew = keyExpr(root, 'NEW', pgKeyJson)
    const kOld = keyExpr(root, 'OLD', pgKeyJson)
    return [
      `CREATE TABLE IF NOT EXISTS ${V} (lq_key text PRIMARY KEY, rev bigint NOT NULL, deleted integer NOT NULL, xid xid8 NOT NULL DEFAULT pg_current_xact_id())`,
      `CREATE INDEX IF NOT EXISTS ${q(indexName(revTable(root.name), 'rev'))} ON ${V} (rev)`,
      `CREATE INDEX IF NOT EXISTS ${q(indexName(revTable(root.name), 'xid'))} ON ${V} (xid)`,
      deletedIndex(root.name),
      `CREATE OR REPLACE FUNCTION ${fn}() RETURNS trigger LANGUAGE plpgsql SET search_path FROM CURRENT AS $lq$
BEGIN
  IF TG_OP = 'INSERT' THEN
    ${upsert(kNew, 0)}
  ELSIF TG_OP = 'UPDATE' THEN
    IF (${kOld}) IS DISTINCT FROM (${kNew}) THEN
      ${upsert(kOld, 1)}
    END IF;
    ${upsert(kNew, 0)}
  ELSE
    ${upsert(kOld, 1)}
  END IF;
  -- Wakes watching workers (store.watch); one notification per table and transaction.
  PERFORM pg_notify('${NOTIFY_CHANNEL}', TG_TABLE_SCHEMA || '.' || TG_TABLE_NAME);
  RETURN NULL;
END
$lq$`,
      `DROP TRIGGER IF EXISTS ${fn} ON ${R}`,
      `CREATE TRIGGER ${fn} AFTER INSERT OR UPDATE OR DELETE ON ${R} FOR EACH ROW EXECUTE FUNCTION ${fn}()`,
      // TRUNCATE fires no row triggers: mark every live revision row deleted, with new revisions.
      `CREATE OR REPLACE FUNCTION ${fnT}() RETURNS trigger LANGUAGE plpgsql SET search_path FROM CURRENT AS $lq$
BEGIN
  UPDATE ${V} SET deleted = 1, rev = nextval('lq_clock_seq'), xid = pg_current_xact_id() WHERE deleted = 0;
  PERFORM pg_notify('${NOTIFY_CHANNEL}', TG_TABLE_SCHEMA || '.' || TG_TABLE_NAME);
  RETURN NULL;
END
$lq$`,
      `DROP TRIGGER IF EXISTS ${fnT} ON ${R}`,
      `CREATE TRIGGER ${fnT} AFTER TRUNCATE ON ${R} FOR EACH STATEMENT EXECUTE FUNCTION ${fnT}()`,
    ]
  },
  backfill(root) {
    const R = q(root.name)
    const V = q(revTable(root.name))
    const k = keyExpr(root, 'r', pgKeyJson)
    return [
      `INSERT INTO ${V} (lq_key, rev, deleted) SELECT ${k}, (SELECT nextval('lq_clock_seq')), 0 FROM ${R} AS r ON CONFLICT (lq_key) DO UPDATE SET rev = excluded.rev, deleted = 0, xid = pg_current_xact_id() WHERE ${V}.deleted = 1`,
      `UPDATE ${V} SET deleted = 1, rev = nextval('lq_clock_seq'), xid = pg_current_xact_id() WHERE deleted = 0 AND NOT EXISTS (SELECT 1 FROM ${R} AS r WHERE ${k} = ${V}.lq_key)`,
    ]
  },
  notOlder: (stored, incoming) =>
    `NOT EXISTS (SELECT 1 FROM jsonb_array_elements(${stored}::jsonb) AS a, jsonb_array_elements(${incoming}::jsonb) AS b WHERE a->>0 = b->>0 AND a->>1 = b->>1 AND (a->>2)::bigint > (b->>2)::bigint)`,
  async columns(db, table) {
    const r = await sql<{ name: string; type: string; nullable: string }>`SELECT column_name AS name, data_type AS type, is_nullable AS nullable FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = ${table} ORDER BY ordinal_position`.execute(db)
    if (r.rows.length === 0) return undefined
    return r.rows.map((c) => ({ name: c.name, type: c.type.toLowerCase(), notNull: c.nullable === 'NO' }))
  },
  async lockMigrations(trx) {
    await sql`SELECT pg_advisory_xact_lock(7265110251)`.execute(trx)
  },
  async dropIndexOn(db, index, table) {
    const r = await sql`SELECT 1 FROM pg_indexes WHERE schemaname = current_schema() AND indexname = ${index} AND tablename = ${table}`.execute(db)
    if (r.rows.length > 0) await sql.raw(`DROP INDEX ${q(index)}`).execute(db)
  },
  async beginWrite() {},
  oneWriter: false,
  isBusy: (e) => ['40P01', '40001', '55P03'].includes(errorCode(e)),
  lateCheckDDL: () => pgLateCheckDDL(),
  async watermarkAtCommit(trx, table, wm, codeVersion) {
    await sql`INSERT INTO lq_wm_check (name, wm_rev, wm_xmin, code_version) VALUES (${table}, ${wm?.rev ?? null}, ${wm?.xmin ?? null}, ${codeVersion})`.execute(trx)
  },
  watermarkMoved: (e) => errorCode(e) === WATERMARK_MOVED,
  async moveWatermarkUnlessStored(db, m) {
    const r = await sql<{ moved: boolean }>`SELECT lq_move_watermark(${m.table}, ${m.meta}, ${m.clock.rev}, ${m.clock.xmin}, ${m.look}, ${m.applied}, ${m.codeVersion}) AS moved`.execute(db)
    return r.rows[0]!.moved === true
  },
  uniqueViolation: (e) => errorCode(e) === '23505',
  keyCursor: (alias) => `${alias}.lq_key`,
  afterCursor: (alias, p) => `${alias}.lq_key > ${p}`,
  keyJson: pgKeyJson,
  tableNameProblem(name, kind, others) {
    const max = kind === 'root' ? 52 : 47
    if (Buffer.byteLength(name, 'utf8') > max) return `the name is longer than ${max} bytes; PostgreSQL truncates identifiers to 63 bytes and the store's tables and indexes add up to ${63 - max} bytes to it. Choose a shorter name`
    const derived = (n: string): boolean => others.some((o) => o.name === n && o.kind === 'derived') || (n === name && kind === 'derived')
    const clash = others.find((o) => (derived(name) && o.name === `${name}_pkey`) || (derived(o.name) && name === `${o.name}_pkey`))
    return clash === undefined ? undefined : `its name clashes with \`${clash.name}\` on PostgreSQL (a derived table's primary key index is named <name>_pkey); choose another name`
  },
  snapshotRead: (db, fn) => (db.isTransaction ? fn(db) : db.transaction().setIsolationLevel('repeatable read').execute(fn)),
  recheckAfterWrite: true,
  // A snapshot stored by an earlier version is an xmin number: transactions below it had completed.
  committedIn: (xidCol, p, snapshot) => (/^\d+$/.test(snapshot) ? `${xidCol} < CAST(${p} AS xid8)` : `pg_visible_in_snapshot(${xidCol}, CAST(${p} AS pg_snapshot))`),
  jsonArray: 'json_build_array',
  jsonAgg: 'json_agg',
  xidText: (xidCol) => `${xidCol}::text`,
  // As `since`, over one row.
  changedSince(rev, xid, wm) {
    if (rev > wm.rev) return true
    if (wm.xmin === null) return false
    const snap = parseSnapshot(wm.xmin)
    if (snap === undefined || xid === null) return true
    const x = BigInt(xid)
    if (snap.kind === 'xmin') return x >= BigInt(snap.xmin)
    return x >= BigInt(snap.xmax) || snap.xip.includes(xid)
  },
}

/**
 * PostgreSQL: a batch of results stored by one statement, in the caller's write transaction
 * (after its deleted-input check; committed asynchronously like every derived write), in one
 * round trip:
 *
 * - `rv`: a new revision;
 * - `src`: the batch's metadata rows, from the JSON parameter $2 (code version: $1);
 * - `up`: the metadata upsert with the monotonic-write guard; RETURNING the winners;
 * - `dd`, `di`: the data rows of the winners whose value changed: deleted (failed, blocked) or
 *   upserted (ok, from the JSON parameter $3);
 * - the result: one row, with the winners counted by state and "value changed", the keys
 *   the guard refused (`lost`, usually null), and the revision (`rev`).
 *
 * `fresh` (rows missing when found, all ok): `pgFreshWrite`.
 */
function pgBatchWrite(spec: BatchWriteSpec): string {
  const M = q(spec.meta)
  const X = q(spec.data)
  const f = (i: number, t: JsonFieldType) => postgres.jsonField(i, t)
  const cols = spec.columns
  if (spec.fresh === true) {
    if (spec.okRows !== true) throw new Error('internal: a fresh batch write takes narrow ok rows')
    return pgFreshWrite(M, X, cols)
  }
  const set = cols.length === 0 ? 'NOTHING' : `UPDATE SET ${cols.map((c) => `${q(c.name)} = excluded.${q(c.name)}`).join(', ')}`
  return `WITH rv AS (SELECT nextval('lq_clock_seq') AS rev, set_config('synchronous_commit', 'off', true) AS sc),
src AS (SELECT ${spec.okRows === true ? `${f(0, 'text')} AS k, '' AS lin, '' AS inp, ${f(1, 'int')} AS mr, 'ok' AS st, NULL::text AS er, ${f(2, 'text')} AS h` : `${f(0, 'text')} AS k, ${f(1, 'text')} AS lin, ${f(2, 'text')} AS inp, ${f(3, 'int')} AS mr, ${f(4, 'text')} AS st, ${f(5, 'text')} AS er, ${f(6, 'text')} AS h`} FROM jsonb_array_elements($2::jsonb) AS j(value)),
up AS (
  INSERT INTO ${M} (lq_key, lq_lineage, lq_inputs, lq_max_input_rev, lq_code_version, lq_state, lq_error, lq_hash, lq_computed_rev, lq_changed_rev, lq_xid)
  SELECT src.k, src.lin, src.inp, src.mr, $1, src.st, src.er, src.h, rv.rev, rv.rev, pg_current_xact_id() FROM src CROSS JOIN rv
  ON CONFLICT (lq_key) DO UPDATE SET
    lq_lineage = excluded.lq_lineage, lq_inputs = excluded.lq_inputs, lq_max_input_rev = excluded.lq_max_input_rev,
    lq_code_version = excluded.lq_code_version, lq_state = excluded.lq_state, lq_error = excluded.lq_error,
    lq_changed_rev = CASE WHEN ${M}.lq_hash IS NOT DISTINCT FROM excluded.lq_hash AND ${M}.lq_state = excluded.lq_state THEN ${M}.lq_changed_rev ELSE excluded.lq_changed_rev END,
    lq_hash = excluded.lq_hash, lq_computed_rev = excluded.lq_computed_rev, lq_xid = excluded.lq_xid
  WHERE ${spec.guard}
  RETURNING lq_key, lq_state, lq_changed_rev = lq_computed_rev AS changed),
dd AS (DELETE FROM ${X} WHERE lq_key IN (SELECT lq_key FROM up WHERE changed AND lq_state <> 'ok')),
di AS (
  INSERT INTO ${X} (${[...cols.map((c) => q(c.name)), 'lq_key'].join(', ')})
  SELECT ${[...cols.map((c, i) => f(i, c.type)), f(cols.length, 'text')].join(', ')}
  FROM jsonb_array_elements($3::jsonb) AS j(value) JOIN up ON up.lq_key = ${f(cols.length, 'text')} AND up.changed AND up.lq_state = 'ok'
  ON CONFLICT (lq_key) DO ${set})
SELECT (SELECT json_agg(json_build_array(g.lq_state, g.changed, g.n)) FROM (SELECT lq_state, changed, count(*) AS n FROM up GROUP BY lq_state, changed) AS g) AS counts,
  (SELECT json_agg(src.k) FROM src WHERE NOT EXISTS (SELECT 1 FROM up WHERE up.lq_key = src.k)) AS lost,
  (SELECT rev FROM rv) AS rev`
}


/**
 * `BatchWriteSpec.fresh`: the ok rows of a batch whose rows were missing when found, inserted
 * by plain INSERTs into the metadata table (`$2`, narrow rows) and the data table (`$3`): a
 * unique violation when an address has a row now (the caller's savepoint is rolled back and
 * the upsert runs). Otherwise every row is a winner whose value changed, and the result is the
 * upsert's for that case.
 */
function pgFreshWrite(M: string, X: string, cols: BatchWriteSpec['columns']): string {
  const f = (i: number, t: JsonFieldType) => postgres.jsonField(i, t)
  return `WITH rv AS (SELECT nextval('lq_clock_seq') AS rev, set_config('synchronous_commit', 'off', true) AS sc),
up AS (
  INSERT INTO ${M} (lq_key, lq_lineage, lq_inputs, lq_max_input_rev, lq_code_version, lq_state, lq_error, lq_hash, lq_computed_rev, lq_changed_rev, lq_xid)
  SELECT ${f(0, 'text')}, '', '', ${f(1, 'int')}, $1, 'ok', NULL, ${f(2, 'text')}, rv.rev, rv.rev, pg_current_xact_id() FROM jsonb_array_elements($2::jsonb) AS j(value) CROSS JOIN rv
  RETURNING 1),
di AS (
  INSERT INTO ${X} (${[...cols.map((c) => q(c.name)), 'lq_key'].join(', ')})
  SELECT ${[...cols.map((c, i) => f(i, c.type)), f(cols.length, 'text')].join(', ')} FROM jsonb_array_elements($3::jsonb) AS j(value))
SELECT json_build_array(json_build_array('ok', true, (SELECT count(*) FROM up))) AS counts, NULL::json AS lost, (SELECT rev FROM rv) AS rev`
}

export const postgresStartup: StartupDialect = {
  name: 'postgres',
  triggerNames: (root) => [`lq_trg_${root}`, `lq_trt_${root}`],
  indexNames: (root) => [indexName(revTable(root), 'rev'), indexName(revTable(root), 'xid'), indexName(revTable(root), 'deleted')],
  async state(db, root) {
    // Catalogue reads only: to_regclass takes no lock on the table.
    const r = await sql<{ table_id: string | null; rev_exists: boolean; triggers: string[] | null; indexes: string[] | null }>`SELECT
  (SELECT c.oid::text FROM pg_class c WHERE c.oid = to_regclass(quote_ident(${root}))) AS table_id,
  to_regclass(quote_ident(${revTable(root)})) IS NOT NULL AS rev_exists,
  (SELECT array_agg(t.tgname::text) FROM pg_trigger t WHERE t.tgrelid = to_regclass(quote_ident(${root})) AND NOT t.tgisinternal) AS triggers,
  (SELECT array_agg(i.relname::text) FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid WHERE x.indrelid = to_regclass(quote_ident(${revTable(root)}))) AS indexes`.execute(db)
    const row = r.rows[0]!
    return { exists: row.table_id !== null, tableId: row.table_id, revTableExists: row.rev_exists, triggers: row.triggers ?? [], indexes: row.indexes ?? [] }
  },
  async serialise(db, root, fn) {
    return db.connection().execute(async (c) => {
      const key = sql`726511, hashtext(current_schema() || '.' || ${root})`
      await sql`SELECT pg_advisory_lock(${key})`.execute(c)
      try {
        return await fn(c)
      } finally {
        await sql`SELECT pg_advisory_unlock(${key})`.execute(c)
      }
    })
  },
  async writeTransaction(db, fn) {
    for (let attempt = 0; ; attempt++) {
      try {
        return await db.transaction().execute(async (trx) => {
          // A statement waiting for a lock (DDL behind a long root transaction) gives up soon
          // instead of queueing every root writer behind it; the transaction is retried.
          await sql`SELECT set_config('lock_timeout', '100ms', true)`.execute(trx)
          return fn(trx)
        })
      } catch (e) {
        if (!pgRetryable(e) || attempt >= BUSY_RETRIES * 4) throw e
        await sleep(20 + Math.random() * 30 * Math.min(attempt + 1, 10))
      }
    }
  },
  async startMark(db) {
    const r = await sql<{ s: string }>`SELECT pg_current_snapshot()::text AS s`.execute(db)
    return r.rows[0]!.s
  },
  beforeBatch: [],
  pauseAfterBatch: () => 0,
  async backfillBatches(db, root, mode, rowsPerBatch) {
    const R = q(root.name)
    const V = q(revTable(root.name))
    const k = keyExpr(root, 'r', pgKeyJson)
    // bump: rows written by a transaction visible in the start snapshot (before the triggers
    // were sure to be in place, or before the start) get a new revision; rows written since are
    // the triggers' and right.
    const conflict = mode === 'keep' ? 'DO NOTHING' : `DO UPDATE SET rev = excluded.rev, deleted = 0, xid = pg_current_xact_id() WHERE pg_visible_in_snapshot(${V}.xid, $MARK::pg_snapshot)`
    const insert = (where: string) => `INSERT INTO ${V} (lq_key, rev, deleted) SELECT ${k}, (SELECT nextval('lq_clock_seq')), 0 FROM ${R} AS r WHERE ${where} ON CONFLICT (lq_key) ${conflict}`
    const r = await sql<{ pages: string; n: string }>`SELECT (pg_relation_size(to_regclass(quote_ident(${root.name}))) / current_setting('block_size')::int)::text AS pages, (SELECT count(*) FROM ${sql.id(root.name)})::text AS n`.execute(db)
    const pages = Number(r.rows[0]!.pages)
    const n = Number(r.rows[0]!.n)
    if (n === 0 && pages === 0) return []
    const step = Math.max(1, Math.floor((pages * rowsPerBatch) / Math.max(n, 1)))
    const out: BackfillBatch[] = []
    // Heap page ranges (a TID range scan each); rows moved by an update since were written by
    // the triggers, and pages added since hold rows the triggers wrote too; the last range is open.
    for (let p = 0; p < pages; p += step) out.push({ text: insert(`r.ctid >= $1::tid AND r.ctid < $2::tid`), params: [`(${p},0)`, `(${p + step},0)`] })
    out.push({ text: insert(`r.ctid >= $1::tid`), params: [`(${Math.max(pages, 0)},0)`] })
    return out
  },
  async missingKeys(db, root) {
    const r = await sql.raw<{ one: unknown }>(`SELECT 1 AS one FROM ${q(root.name)} AS r WHERE NOT EXISTS (SELECT 1 FROM ${q(revTable(root.name))} AS v WHERE v.lq_key = ${keyExpr(root, 'r', pgKeyJson)}) LIMIT 1`).execute(db)
    return r.rows.length > 0
  },
  backfillAll: (root) =>
    `INSERT INTO ${q(revTable(root.name))} (lq_key, rev, deleted) SELECT ${keyExpr(root, 'r', pgKeyJson)}, (SELECT nextval('lq_clock_seq')), 0 FROM ${q(root.name)} AS r ON CONFLICT (lq_key) DO NOTHING`,
  markGone: (root) => {
    const V = q(revTable(root.name))
    return `UPDATE ${V} SET deleted = 1, rev = nextval('lq_clock_seq'), xid = pg_current_xact_id() WHERE deleted = 0 AND pg_visible_in_snapshot(xid, $1::pg_snapshot) AND NOT EXISTS (SELECT 1 FROM ${q(root.name)} AS r WHERE ${keyExpr(root, 'r', pgKeyJson)} = ${V}.lq_key)`
  },
}

