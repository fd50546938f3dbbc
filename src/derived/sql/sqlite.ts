/**
 * SQLite: the derived-data engine's hooks (`StoreDialect`, see `dialect.ts`) and its start
 * hooks (`StartupDialect`, see `startup.ts`). Revisions come from the one-row table `lq_clock`,
 * bumped by every trigger and derived write (one writer at a time, so revisions commit in order).
 */
import { sql } from 'kysely'
import { deletedIndex, errorCode, indexName, keyExpr, q, revTable, type StoreDialect } from './dialect.js'
import { BUSY_RETRIES, sleep, type BackfillBatch, type StartupDialect } from './startup.js'

/** A key column's value as JSON text. */
const sqliteKeyJson = (ref: string): string => `json_quote(${ref})`

function sqliteBusy(e: unknown): boolean {
  const code = (e as { code?: unknown } | null)?.code
  return typeof code === 'string' && code.startsWith('SQLITE_BUSY')
}

export const sqlite: StoreDialect = {
  name: 'sqlite',
  revType: 'integer',
  xidColumn: undefined,
  keyedTable: ' WITHOUT ROWID',
  deltaKeys: 500,
  maxParams: 32766,
  clockDDL: () => [
    `CREATE TABLE lq_clock (id integer PRIMARY KEY CHECK (id = 1), rev integer NOT NULL)`,
    `INSERT INTO lq_clock (id, rev) VALUES (1, 0)`,
  ],
  async readClock(db) {
    const r = await sql<{ rev: number }>`SELECT rev FROM lq_clock WHERE id = 1`.execute(db)
    return { rev: Number(r.rows[0]?.rev ?? 0), xmin: null }
  },
  async nextRev(trx) {
    const r = await sql<{ rev: number }>`UPDATE lq_clock SET rev = rev + 1 WHERE id = 1 RETURNING rev`.execute(trx)
    return Number(r.rows[0]!.rev)
  },
  since: (alias, revCol, _xidCol, wm) => sql<boolean>`${sql.ref(`${alias}.${revCol}`)} > ${wm.rev}`,
  xidValue: () => undefined,
  xidSql: undefined,
  ph: () => '?',
  numberedPlaceholders: false,
  // jsonb_each (SQLite 3.45+): each element (a row, itself an array) comes as JSONB, which
  // `jsonField` reads without parsing its text again (json_each gives it as JSON text, parsed
  // once per field): a third less time reading a batch's fields.
  jsonRows: (p) => `jsonb_each(${p}) AS j`,
  // json_extract gives SQL integers, reals, text and NULL for JSON numbers, strings and null;
  // true/false become 1/0, SQLite's booleans; an array or object as its JSON text.
  jsonField: (i) => `json_extract(j.value, '$[${i}]')`,
  jsonTexts: (p) => `SELECT value FROM json_each(${p})`,
  exactJsonReals: false,
  replaceLoneSurrogates: false,
  batchWrite: () => undefined,
  async analyze() {},
  trackDDL(root) {
    const R = q(root.name)
    const V = q(revTable(root.name))
    const bump = `UPDATE lq_clock SET rev = rev + 1 WHERE id = 1;`
    const cur = `(SELECT rev FROM lq_clock WHERE id = 1)`
    const upsert = (key: string, deleted: 0 | 1, cond = 'true') =>
      `INSERT INTO ${V} (lq_key, rev, deleted) SELECT ${key}, ${cur}, ${deleted} WHERE ${cond} ON CONFLICT (lq_key) DO UPDATE SET rev = excluded.rev, deleted = excluded.deleted;`
    const kNew = keyExpr(root, 'NEW', sqliteKeyJson)
    const kOld = keyExpr(root, 'OLD', sqliteKeyJson)
    return [
      `CREATE TABLE IF NOT EXISTS ${V} (lq_key text PRIMARY KEY, rev integer NOT NULL, deleted integer NOT NULL) WITHOUT ROWID`,
      // Covering: a scan of the revisions since a watermark reads this index only.
      `CREATE INDEX IF NOT EXISTS ${q(indexName(revTable(root.name), 'rev'))} ON ${V} (rev, lq_key, deleted)`,
      deletedIndex(root.name),
      `CREATE TRIGGER IF NOT EXISTS ${q(`lq_trg_${root.name}_ins`)} AFTER INSERT ON ${R} BEGIN ${bump} ${upsert(kNew, 0)} END`,
      `CREATE TRIGGER IF NOT EXISTS ${q(`lq_trg_${root.name}_upd`)} AFTER UPDATE ON ${R} BEGIN ${bump} ${upsert(kOld, 1, `${kOld} IS NOT ${kNew}`)} ${upsert(kNew, 0)} END`,
      `CREATE TRIGGER IF NOT EXISTS ${q(`lq_trg_${root.name}_del`)} AFTER DELETE ON ${R} BEGIN ${bump} ${upsert(kOld, 1)} END`,
    ]
  },
  backfill(root) {
    const R = q(root.name)
    const V = q(revTable(root.name))
    const k = keyExpr(root, 'r', sqliteKeyJson)
    return [
      `UPDATE lq_clock SET rev = rev + 1 WHERE id = 1`,
      `INSERT INTO ${V} (lq_key, rev, deleted) SELECT ${k}, (SELECT rev FROM lq_clock WHERE id = 1), 0 FROM ${R} AS r WHERE true ON CONFLICT (lq_key) DO UPDATE SET rev = excluded.rev, deleted = 0 WHERE ${V}.deleted = 1`,
      `UPDATE ${V} SET deleted = 1, rev = (SELECT rev FROM lq_clock WHERE id = 1) WHERE deleted = 0 AND lq_key NOT IN (SELECT ${k} FROM ${R} AS r)`,
    ]
  },
  notOlder: (stored, incoming) =>
    `NOT EXISTS (SELECT 1 FROM json_each(${stored}) AS a, json_each(${incoming}) AS b WHERE json_extract(a.value, '$[0]') = json_extract(b.value, '$[0]') AND json_extract(a.value, '$[1]') = json_extract(b.value, '$[1]') AND json_extract(a.value, '$[2]') > json_extract(b.value, '$[2]'))`,
  async columns(db, table) {
    const r = await sql<{ name: string; type: string; notnull: number }>`SELECT name, type, "notnull" FROM pragma_table_info(${table})`.execute(db)
    if (r.rows.length === 0) return undefined
    return r.rows.map((c) => ({ name: c.name, type: c.type.toLowerCase(), notNull: Number(c.notnull) === 1 }))
  },
  async lockMigrations() {},
  async dropIndexOn(db, index, table) {
    const r = await sql`SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = ${index} AND tbl_name = ${table}`.execute(db)
    if (r.rows.length > 0) await sql.raw(`DROP INDEX ${q(index)}`).execute(db)
  },
  async beginWrite(trx) {
    await sql`UPDATE lq_clock SET rev = rev WHERE id = 1`.execute(trx)
  },
  oneWriter: true,
  isBusy: (e) => /^SQLITE_(BUSY|LOCKED)/.test(errorCode(e)),
  // One writer at a time: the write lock orders a write's read of the watermark and a move (`oneWriter`).
  lateCheckDDL: () => [],
  async watermarkAtCommit(trx, table, _wm, codeVersion) {
    await sql`UPDATE lq_derived SET applied_code_version = NULL WHERE name = ${table} AND applied_code_version <> ${codeVersion}`.execute(trx)
  },
  watermarkMoved: () => false,
  moveWatermarkUnlessStored: undefined,
  uniqueViolation: (e) => /^SQLITE_CONSTRAINT_(PRIMARYKEY|UNIQUE)$/.test(errorCode(e)),
  keyCursor: (alias) => `CAST(${alias}.lq_key AS BLOB)`,
  afterCursor: (alias, p) => `${alias}.lq_key > CAST(${p} AS TEXT)`,
  keyJson: sqliteKeyJson,
  tableNameProblem(name, _kind, others) {
    const same = others.find((o) => o.name.toLowerCase() === name.toLowerCase())
    return same === undefined ? undefined : `SQLite compares table names case-insensitively, so it is the same table as \`${same.name}\`; choose another name`
  },
  // One writer at a time: any transaction reads one state of the database.
  snapshotRead: (db, fn) => (db.isTransaction ? fn(db) : db.transaction().execute(fn)),
  recheckAfterWrite: false,
  committedIn: () => undefined,
  jsonArray: 'json_array',
  jsonAgg: 'json_group_array',
  xidText: () => 'NULL',
  changedSince: (rev, _xid, wm) => rev > wm.rev,
}


export const sqliteStartup: StartupDialect = {
  name: 'sqlite',
  triggerNames: (root) => [`lq_trg_${root}_ins`, `lq_trg_${root}_upd`, `lq_trg_${root}_del`],
  indexNames: (root) => [indexName(revTable(root), 'rev'), indexName(revTable(root), 'deleted')],
  async state(db, root) {
    // One row: the catalogue entries of the root and of its revision table.
    const r = await sql<{ entries: string }>`SELECT json_group_array(json_array(type, name, tbl_name)) AS entries FROM sqlite_master WHERE tbl_name IN (${root}, ${revTable(root)})`.execute(db)
    const rows = (JSON.parse(r.rows[0]?.entries ?? '[]') as [string, string, string][]).map(([type, name, tbl_name]) => ({ type, name, tbl_name }))
    return {
      exists: rows.some((x) => x.type === 'table' && x.name === root),
      tableId: null,
      revTableExists: rows.some((x) => x.type === 'table' && x.name === revTable(root)),
      triggers: rows.filter((x) => x.type === 'trigger' && x.tbl_name === root).map((x) => x.name),
      indexes: rows.filter((x) => x.type === 'index' && x.tbl_name === revTable(root)).map((x) => x.name),
    }
  },
  serialise: (db, _root, fn) => fn(db),
  async writeTransaction(db, fn) {
    for (let attempt = 0; ; attempt++) {
      try {
        return await db.connection().execute(async (c) => {
          await sql.raw('BEGIN IMMEDIATE').execute(c)
          try {
            const out = await fn(c)
            await sql.raw('COMMIT').execute(c)
            return out
          } catch (e) {
            await sql.raw('ROLLBACK').execute(c).catch(() => undefined)
            throw e
          }
        })
      } catch (e) {
        if (!sqliteBusy(e) || attempt >= BUSY_RETRIES) throw e
        await sleep(5 + Math.random() * 20 * Math.min(attempt + 1, 10))
      }
    }
  },
  async startMark(db) {
    const r = await sql<{ rev: unknown }>`SELECT rev FROM lq_clock WHERE id = 1`.execute(db)
    return Number(r.rows[0]?.rev ?? 0)
  },
  beforeBatch: ['UPDATE lq_clock SET rev = rev + 1 WHERE id = 1'],
  pauseAfterBatch: (ms) => Math.max(1, ms),
  async backfillBatches(db, root, mode, rowsPerBatch) {
    const R = q(root.name)
    const V = q(revTable(root.name))
    const k = keyExpr(root, 'r', sqliteKeyJson)
    const conflict = mode === 'keep' ? 'DO NOTHING' : `DO UPDATE SET rev = excluded.rev, deleted = 0 WHERE ${V}.rev <= $MARK`
    const insert = (where: string) => `INSERT INTO ${V} (lq_key, rev, deleted) SELECT ${k}, (SELECT rev FROM lq_clock WHERE id = 1), 0 FROM ${R} AS r WHERE ${where} ON CONFLICT (lq_key) ${conflict}`
    // WITHOUT ROWID roots have no rowid ranges: one statement.
    const wr = await sql<{ wr: unknown }>`SELECT wr FROM pragma_table_list WHERE name = ${root.name}`.execute(db)
    if (Number(wr.rows[0]?.wr ?? 0) === 1) return [{ text: insert('true'), params: [] }]
    const r = await sql<{ lo: unknown; hi: unknown; n: unknown }>`SELECT min(rowid) AS lo, max(rowid) AS hi, count(*) AS n FROM ${sql.id(root.name)}`.execute(db)
    const row = r.rows[0]
    const n = Number(row?.n ?? 0)
    if (n === 0) return []
    const lo = Number(row!.lo)
    const hi = Number(row!.hi)
    const stride = Math.max(1, Math.ceil(((hi - lo + 1) * rowsPerBatch) / n))
    const out: BackfillBatch[] = []
    for (let a = lo; a <= hi; a += stride) out.push({ text: insert('r.rowid >= ? AND r.rowid < ?'), params: [a, a + stride] })
    // Rows inserted since have their revision rows from the triggers; rows above `hi` anyway:
    out.push({ text: insert('r.rowid > ?'), params: [hi] })
    return out
  },
  async missingKeys(db, root) {
    const r = await sql.raw<{ one: unknown }>(`SELECT 1 AS one FROM ${q(root.name)} AS r WHERE NOT EXISTS (SELECT 1 FROM ${q(revTable(root.name))} AS v WHERE v.lq_key = ${keyExpr(root, 'r', sqliteKeyJson)}) LIMIT 1`).execute(db)
    return r.rows.length > 0
  },
  backfillAll: (root) =>
    `INSERT INTO ${q(revTable(root.name))} (lq_key, rev, deleted) SELECT ${keyExpr(root, 'r', sqliteKeyJson)}, (SELECT rev FROM lq_clock WHERE id = 1), 0 FROM ${q(root.name)} AS r WHERE true ON CONFLICT (lq_key) DO NOTHING`,
  markGone: (root) => {
    const V = q(revTable(root.name))
    return `UPDATE ${V} SET deleted = 1, rev = (SELECT rev FROM lq_clock WHERE id = 1) WHERE deleted = 0 AND rev <= ? AND lq_key NOT IN (SELECT ${keyExpr(root, 'r', sqliteKeyJson)} FROM ${q(root.name)} AS r)`
  },
}

