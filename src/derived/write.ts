/**
 * Storing results and removing orphaned rows. Every write of a batch happens in one
 * transaction, and a result replaces a stored row only if it was computed from inputs no older
 * than the stored row's (the monotonic-write rule):
 *
 * ```sql
 * INSERT INTO lq_meta_X (lq_key, ..., lq_max_input_rev, lq_inputs, ...) VALUES (...), ...
 * ON CONFLICT (lq_key) DO UPDATE SET ...,
 *   lq_changed_rev = CASE WHEN lq_meta_X.lq_hash IS NOT DISTINCT FROM excluded.lq_hash
 *                          AND lq_meta_X.lq_state = excluded.lq_state
 *                         THEN lq_meta_X.lq_changed_rev ELSE excluded.lq_changed_rev END   -- backdating
 * WHERE lq_meta_X.lq_max_input_rev <= excluded.lq_max_input_rev      -- one input
 *    -- or, several inputs: no input recorded in the stored row is newer than in the new one
 * RETURNING lq_key, lq_changed_rev
 * ```
 *
 * Rows the `WHERE` refuses come back in no `RETURNING` row; their data is not touched. The
 * data table gets the winners' values (ok rows) and loses failed/blocked winners' rows.
 */
import { createHash } from 'node:crypto'
import { sql, type Kysely } from 'kysely'
import { insertRows } from '../query/ddl.js'
import { metaTable, type StoreDialect } from './dialect.js'
import { chunks, IN_CHUNK, readersOf, type Derivation, type Engine, type Task } from './engine.js'
import { inputsText } from './keys.js'
import type { TableReport } from './types.js'

/** The outcome of one task. */
export type Outcome =
  | { readonly state: 'ok'; readonly row: Record<string, unknown> }
  | { readonly state: 'failed'; readonly message: string; readonly stack: string | undefined }
  | { readonly state: 'blocked'; readonly table: string; readonly key: string }

export interface Result {
  readonly task: Task
  readonly outcome: Outcome
}

function hashOf(o: Outcome, columns: readonly string[]): string {
  const h = createHash('sha1')
  if (o.state === 'ok') h.update(JSON.stringify(columns.map((c) => o.row[c] ?? null)))
  else if (o.state === 'failed') h.update(`failed\u0000${o.message}`)
  else h.update(`blocked\u0000${o.table}\u0000${o.key}`)
  return h.digest('hex')
}

function errorText(o: Outcome): string | null {
  if (o.state === 'failed') return JSON.stringify({ message: o.message, stack: o.stack ?? null })
  if (o.state === 'blocked') return JSON.stringify({ table: o.table, key: o.key })
  return null
}

/** Store a batch of results in one transaction; returns which were stored and which backdated. */
export async function writeResults(engine: Engine, x: Derivation, results: readonly Result[], report: TableReport): Promise<void> {
  if (results.length === 0) return
  const { db, d } = engine
  const columns = x.def.columns.map((c) => c.name).filter((c) => c !== 'lq_key')
  const multi = x.source.kind === 'query' || x.source.kind === 'zip'
  await db.transaction().execute(async (trx) => {
    const rev = await d.nextRev(trx)
    const won = new Map<string, boolean>() // addr -> value changed
    for (const part of chunks(results, IN_CHUNK)) {
      const values = part.map((r) => {
        const o = r.outcome
        const xid = d.xidValue()
        return sql`(${sql.join([
          r.task.addr,
          JSON.stringify(r.task.lineage),
          inputsText(r.task.inputs),
          r.task.maxRev,
          x.codeVersion,
          o.state,
          errorText(o),
          hashOf(o, columns),
          rev,
          rev,
          ...(xid === undefined ? [] : [xid]),
        ])})`
      })
      const M = metaTable(x.name)
      const guard = multi ? sql.raw(d.notOlder(`${q(M)}.lq_inputs`, 'excluded.lq_inputs')) : sql.raw(`${q(M)}.lq_max_input_rev <= excluded.lq_max_input_rev`)
      const xidCols = d.xidColumn === undefined ? sql`` : sql`, lq_xid`
      const xidSet = d.xidColumn === undefined ? sql`` : sql`, lq_xid = excluded.lq_xid`
      const r = await sql<{ lq_key: string; lq_changed_rev: unknown }>`
        INSERT INTO ${sql.id(M)} (lq_key, lq_lineage, lq_inputs, lq_max_input_rev, lq_code_version, lq_state, lq_error, lq_hash, lq_computed_rev, lq_changed_rev${xidCols})
        VALUES ${sql.join(values)}
        ON CONFLICT (lq_key) DO UPDATE SET
          lq_lineage = excluded.lq_lineage, lq_inputs = excluded.lq_inputs, lq_max_input_rev = excluded.lq_max_input_rev,
          lq_code_version = excluded.lq_code_version, lq_state = excluded.lq_state, lq_error = excluded.lq_error,
          lq_changed_rev = CASE WHEN ${sql.id(M)}.lq_hash IS NOT DISTINCT FROM excluded.lq_hash AND ${sql.id(M)}.lq_state = excluded.lq_state THEN ${sql.id(M)}.lq_changed_rev ELSE excluded.lq_changed_rev END,
          lq_hash = excluded.lq_hash, lq_computed_rev = excluded.lq_computed_rev${xidSet}
        WHERE ${guard}
        RETURNING lq_key, lq_changed_rev`.execute(trx)
      for (const row of r.rows) won.set(row.lq_key, Number(row.lq_changed_rev) === rev)
    }
    const changed = results.filter((r) => won.get(r.task.addr) === true)
    for (const part of chunks(changed.map((r) => r.task.addr), IN_CHUNK)) {
      await sql`DELETE FROM ${sql.id(x.name)} WHERE lq_key IN (${sql.join(part)})`.execute(trx)
    }
    const okRows = changed.flatMap((r) => (r.outcome.state === 'ok' ? [{ ...r.outcome.row, lq_key: r.task.addr }] : []))
    if (okRows.length > 0) await insertRows(trx, x.def, okRows)
    if (x.source.kind === 'query') await writeEdges(trx, x, results.filter((r) => won.has(r.task.addr)).map((r) => r.task))
    for (const r of results) {
      const w = won.get(r.task.addr)
      if (w === undefined) report.superseded++
      else if (r.outcome.state === 'failed') report.failed++
      else if (r.outcome.state === 'blocked') report.blocked++
      else if (w) report.computed++
      else report.unchanged++
    }
  })
}

const q = (s: string): string => `"${s.replace(/"/g, '""')}"`

async function writeEdges(trx: Kysely<any>, x: Derivation, tasks: readonly Task[]): Promise<void> {
  for (const part of chunks(tasks.map((t) => t.addr), IN_CHUNK)) {
    await sql`DELETE FROM lq_edge WHERE dst_table = ${x.name} AND dst_key IN (${sql.join(part)})`.execute(trx)
  }
  const rows = tasks.flatMap((t) => t.edges.map(([table, key]) => ({ src_table: table, src_key: key, dst_table: x.name, dst_key: t.addr })))
  for (const part of chunks(rows, 1000)) await trx.insertInto('lq_edge').values(part).execute()
}

/**
 * Delete rows of `x` and, transitively, every derived row they feed, in one transaction.
 * Returns the number of rows deleted per table.
 */
export async function deleteRows(engine: Engine, x: Derivation, addrs: readonly string[], report: Record<string, TableReport>): Promise<void> {
  if (addrs.length === 0) return
  await engine.db.transaction().execute(async (trx) => {
    const queue: [Derivation, string[]][] = [[x, [...addrs]]]
    while (queue.length > 0) {
      const [t, keys] = queue.shift()!
      let n = 0
      for (const part of chunks(keys, IN_CHUNK)) {
        const r = await sql<{ lq_key: string }>`DELETE FROM ${sql.id(metaTable(t.name))} WHERE lq_key IN (${sql.join(part)}) RETURNING lq_key`.execute(trx)
        n += r.rows.length
        await sql`DELETE FROM ${sql.id(t.name)} WHERE lq_key IN (${sql.join(part)})`.execute(trx)
        await sql`DELETE FROM lq_edge WHERE dst_table = ${t.name} AND dst_key IN (${sql.join(part)})`.execute(trx)
      }
      const rep = report[t.name]
      if (rep !== undefined) rep.deleted += n
      for (const y of readersOf(engine, t.name)) {
        if (y.source.kind !== 'query') queue.push([y, keys])
        else {
          const next: string[] = []
          for (const part of chunks(keys, IN_CHUNK)) {
            const r = await sql<{ dst_key: string }>`SELECT dst_key FROM lq_edge WHERE src_table = ${t.name} AND src_key IN (${sql.join(part)}) AND dst_table = ${y.name}`.execute(trx)
            next.push(...r.rows.map((row) => row.dst_key))
          }
          if (next.length > 0) queue.push([y, [...new Set(next)]])
        }
      }
    }
  })
}

export type { StoreDialect }
