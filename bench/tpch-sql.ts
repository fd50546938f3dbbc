/**
 * `npx tsx bench/tpch-sql.ts`: the TPC-H queries' statement texts alone, the DSL's against the
 * official one, through the raw drivers (no Kysely, no decoding): the steadier figure for telling
 * a real gap in a query's SQL from load noise on a shared machine, next to `bench:tpch`'s
 * run/official ratios (which move by ±50% between runs at load 5 and more).
 *
 * Same data as `bench:tpch` (`tpch/generate.ts`, `tpch/load.ts`); the DSL statement is
 * `compile(q, dialect)` of the BUILT package (`dist/`, or TPCH_LIB). Per dialect and query, N
 * executions of each text, interleaved (official, DSL, DSL, official, ...), time per execution
 * (rows fetched as arrays of objects by the driver); printed: the minimum and the median of each,
 * and the DSL/official ratios of both. The minimum is what the statement costs when nothing else
 * runs; a ratio that holds at the minimum and the median is real.
 * - SQLite: better-sqlite3 `prepare(sql).all(...parameters)` on an in-memory database; CPU time
 *   of this process (`process.cpuUsage`: the statement runs in it), which time slices given to
 *   other processes do not inflate;
 * - PostgreSQL: one node-postgres client, `query(sql, parameters)` (the extended protocol, as
 *   Kysely sends it), no parallel workers (as `bench:tpch`), in a fresh schema dropped at the
 *   end; wall time (the backend's CPU clock ticks too coarsely for one execution).
 * TPCH_SQL_PLAN=1 also prints both texts with their plans (`EXPLAIN QUERY PLAN`; PostgreSQL
 * `EXPLAIN (ANALYZE, COSTS OFF)`), for reading a gap next to the official SQL.
 *
 * Environment (defaults): TPCH_QUERIES=(all)  TPCH_DIALECTS=sqlite,postgres  TPCH_SQL_N=40
 * TPCH_SQL_PLAN=0  TPCH_SF=0.01  TPCH_SEED=20260101  TPCH_PG_SCHEMA=lq_tpch_sql
 * TPCH_LIB=(another build's index.js)  PGHOST=127.0.0.1 PGPORT=5432 PGUSER=postgres PGDATABASE=test
 */
import { existsSync } from 'node:fs'
import os from 'node:os'
import { fileURLToPath, pathToFileURL } from 'node:url'
import Database from 'better-sqlite3'
import * as t from 'io-ts'
import pg from 'pg'
import type { Dialect } from '../src/index.js'
import { envNum, fmtMs, fmtRatio, geomean, median, pgConfig, runIfMain, table } from './harness.js'
import { tpchSelection } from './tpch/env.js'
import { generate } from './tpch/generate.js'
import { loadPostgres, loadSqlite } from './tpch/load.js'
import { officialQueries } from './tpch/official.js'
import { tpchQueries, tpchTables, type Lib, type TpchTables } from './tpch/queries.js'

const env = process.env
const config = {
  ...tpchSelection(),
  n: envNum('TPCH_SQL_N', 40),
  plan: env.TPCH_SQL_PLAN === '1',
  pgSchema: env.TPCH_PG_SCHEMA ?? 'lq_tpch_sql',
  pg: pgConfig,
}
if (!/^[a-z_][a-z0-9_]*$/.test(config.pgSchema)) throw new Error(`TPCH_PG_SCHEMA must be a plain identifier, got ${config.pgSchema}`)

/** One statement text with its parameters, executed once (its rows returned). */
type Exec = () => Promise<unknown[]>

interface Target {
  /** How an execution is timed, ms. */
  readonly clock: 'cpu' | 'wall'
  prepare(sql: string, parameters: readonly unknown[]): Exec
  plan(sql: string, parameters: readonly unknown[]): Promise<string>
  close(): Promise<void>
}

function sqliteTarget(data: ReturnType<typeof generate>): Target {
  const db = new Database(':memory:')
  loadSqlite(db, data)
  return {
    clock: 'cpu',
    prepare(sql, parameters) {
      const s = db.prepare(sql)
      return async () => s.all(...parameters)
    },
    async plan(sql, parameters) {
      const rows = db.prepare(`explain query plan ${sql}`).all(...parameters) as { id: number; parent: number; detail: string }[]
      const depth = new Map<number, number>()
      return rows.map((r) => {
        const d = (depth.get(r.parent) ?? -1) + 1
        depth.set(r.id, d)
        return `${'  '.repeat(d)}${r.detail}`
      }).join('\n')
    },
    close: async () => void db.close(),
  }
}

async function postgresTarget(data: ReturnType<typeof generate>): Promise<Target> {
  const admin = new pg.Client(config.pg)
  await admin.connect()
  await admin.query(`drop schema if exists ${config.pgSchema} cascade; create schema ${config.pgSchema}`)
  await admin.end()
  const client = new pg.Client({ ...config.pg, options: `-c search_path=${config.pgSchema} -c max_parallel_workers_per_gather=0` })
  await client.connect()
  await loadPostgres(client, data)
  return {
    clock: 'wall',
    prepare: (sql, parameters) => async () => (await client.query(sql, [...parameters])).rows,
    async plan(sql, parameters) {
      const r = await client.query<{ 'QUERY PLAN': string }>(`explain (analyze, costs off) ${sql}`, [...parameters])
      return r.rows.map((x) => x['QUERY PLAN']).join('\n')
    },
    async close() {
      await client.query(`drop schema if exists ${config.pgSchema} cascade`)
      await client.end()
    },
  }
}

async function timeOnce(exec: Exec, clock: Target['clock']): Promise<number> {
  if (clock === 'cpu') {
    const c0 = process.cpuUsage()
    await exec()
    const c = process.cpuUsage(c0)
    return (c.user + c.system) / 1e3
  }
  const t0 = process.hrtime.bigint()
  await exec()
  return Number(process.hrtime.bigint() - t0) / 1e6
}

export async function main(): Promise<void> {
  const entry = env.TPCH_LIB !== undefined && env.TPCH_LIB !== '' ? env.TPCH_LIB : fileURLToPath(new URL('../dist/index.js', import.meta.url))
  if (!existsSync(entry)) throw new Error(`${entry} is missing: run npm run build first`)
  const lib = (await import(pathToFileURL(entry).href)) as Lib
  const tables = tpchTables(lib, { date: lib.DateString, decimal: t.number }) as unknown as TpchTables
  const dsl = tpchQueries(lib, tables)
  const official = officialQueries(config.sf).filter((o) => config.queries.length === 0 || config.queries.includes(o.name))
  const data = generate(config.sf, config.seed)
  const loads = () => os.loadavg().map((l) => l.toFixed(1)).join(' ')
  console.log(`TPC-H SF ${config.sf} statement texts through the raw drivers, ${config.n} interleaved executions each; library ${entry}; load average ${loads()}`)
  for (const d of config.dialects) {
    const target = d === 'sqlite' ? sqliteTarget(data) : await postgresTarget(data)
    const rows: string[][] = []
    const minRatios: number[] = []
    try {
      for (const o of official) {
        const build = dsl[o.name]
        if (build === undefined) continue
        const st = lib.compile(build(), d).statements[0]!
        const off = target.prepare(o.sql(d), [])
        const mine = target.prepare(st.sql, st.parameters)
        await off()
        await mine()
        const a: number[] = []
        const b: number[] = []
        for (let i = 0; i < config.n; i++) {
          if (i % 2 === 0) {
            a.push(await timeOnce(off, target.clock))
            b.push(await timeOnce(mine, target.clock))
          } else {
            b.push(await timeOnce(mine, target.clock))
            a.push(await timeOnce(off, target.clock))
          }
        }
        const minR = Math.min(...b) / Math.min(...a)
        minRatios.push(minR)
        rows.push([o.name, fmtMs(Math.min(...a)), fmtMs(median(a)), fmtMs(Math.min(...b)), fmtMs(median(b)), fmtRatio(minR), fmtRatio(median(b) / median(a))])
        if (config.plan) {
          console.log(`\n---- ${d} ${o.name} official\n${o.sql(d).trim()}\n${await target.plan(o.sql(d), [])}`)
          console.log(`---- ${d} ${o.name} DSL\n${st.sql}\n${JSON.stringify(st.parameters)}\n${await target.plan(st.sql, st.parameters)}`)
        }
      }
    } finally {
      await target.close()
    }
    console.log(`\n######## ${d} (${target.clock === 'cpu' ? 'CPU time of this process' : 'wall time'} per execution)\n`)
    console.log(table(['query', 'official min', 'official med', 'dsl min', 'dsl med', 'min ratio', 'med ratio'], rows))
    console.log(`${d}: geomean of the min ratios ${fmtRatio(geomean(minRatios))}, max ${fmtRatio(Math.max(...minRatios))}; load average ${loads()}`)
  }
}

runIfMain(import.meta.url, main)
