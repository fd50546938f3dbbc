/**
 * Lineage width (benchmarks.md section 2, issue 3): an m-way join of m copies
 * `r_1 .. r_m` of `r(i integer primary key, s text, cardinal text, ordinal text)` holding rows
 * 1..n,
 *
 *   for t1 in r_1 ... for tm in r_m where t1.i % 100 < 5 && t1.i == t2.i && ... && t1.i == tm.i
 *   yield {i: t1.i, c: t1.cardinal}
 *
 * built with the DSL, `run(db, lineage(q))` against `run(db, q)`. Every result row carries m
 * lineage entries. Target: <= 1.5x at m = 64 (anchors at n = 10^4, m = 64: Links^L 31x,
 * Perm 1.35x). Checks: equal row counts; every lineage row names r_1..r_m in order, each with
 * the row's own key; stripped lineage rows = plain rows.
 *
 *   npx tsx bench/lineage-width.ts
 *
 * Environment: WIDTH_M=16,32,64  WIDTH_N=10000,100000  WIDTH_DIALECTS=sqlite,postgres
 * WIDTH_SQLITE_MAX_N=100000 (largest n on SQLite)  WIDTH_ROUNDS=7  WIDTH_SAMPLE_MS=40
 * WIDTH_SLOW_MS=700  WIDTH_SLOW_ROUNDS=3  WIDTH_VERY_SLOW_MS=4000  WIDTH_VERY_SLOW_ROUNDS=2  WIDTH_SPLIT_ROUNDS=7  WIDTH_EXPLAIN=1 (print the
 * plans at the largest m)  WIDTH_PG_SCHEMA=lq_bench_width
 * PGHOST PGPORT PGUSER PGDATABASE (default 127.0.0.1 5432 postgres test).
 */
import * as t from 'io-ts'
import type Database from 'better-sqlite3'
import type pg from 'pg'
import { CompiledQuery } from 'kysely'
import { Q, lineage, table } from './lib.js'
import type { AnyQuery, Dialect, Table } from './lib.js'
import { plan } from './lib.js'
import { fmtMs, fmtRatio, indent, median, nowMs, runIfMain, table as textTable } from './harness.js'
import {
  bagHash,
  capturing,
  dropPgSchema,
  elapsed,
  envDialects,
  envList,
  envNum,
  explain,
  openPostgres,
  openSqlite,
  runIt,
  strip,
  timePair,
  timeSplit,
  type Annot,
  type Handle,
  type Runner,
} from './lineage-common.js'

const TARGET = 1.5

// ---------------------------------------------------------------- schema, data, query

const columns = { i: t.Int, s: t.string, cardinal: t.string, ordinal: t.string }
type RTable = Table<string, { i: number; s: string; cardinal: string; ordinal: string }, { table: string; key: number }>

/** `r_1 .. r_m` declared with the DSL (key `i`). */
export function widthTables(m: number): RTable[] {
  return Array.from({ length: m }, (_, j) => table(`r_${j + 1}`, columns, { key: 'i' }) as unknown as RTable)
}

/** for t1 in r_1 ... for tm in r_m where t1.i % 100 < 5 && t1.i == t2.i && ... yield {i: t1.i, c: t1.cardinal} */
export function widthQuery(tables: readonly RTable[]): AnyQuery {
  const m = tables.length
  const go = (j: number, vars: any[]): AnyQuery => {
    if (j === m) {
      const t1 = vars[0]
      const conds = [Q.lt(Q.mod(t1.i, 100), 5), ...vars.slice(1).map((tj) => Q.eq(t1.i, tj.i))]
      return Q.where(Q.and(...conds), Q.yield({ i: t1.i, c: t1.cardinal }))
    }
    return Q.for(tables[j]!, (tj) => go(j + 1, [...vars, tj]))
  }
  return go(0, [])
}

const ONES = ['zero', 'one', 'two', 'three', 'four', 'five', 'six', 'seven', 'eight', 'nine', 'ten', 'eleven', 'twelve', 'thirteen', 'fourteen', 'fifteen', 'sixteen', 'seventeen', 'eighteen', 'nineteen']
const TENS = ['', '', 'twenty', 'thirty', 'forty', 'fifty', 'sixty', 'seventy', 'eighty', 'ninety']

/** English words of 0 <= k < 10^9. */
export function cardinal(k: number): string {
  if (k < 20) return ONES[k]!
  if (k < 100) return TENS[Math.floor(k / 10)]! + (k % 10 ? `-${ONES[k % 10]}` : '')
  if (k < 1000) return `${ONES[Math.floor(k / 100)]} hundred` + (k % 100 ? ` ${cardinal(k % 100)}` : '')
  if (k < 1e6) return `${cardinal(Math.floor(k / 1000))} thousand` + (k % 1000 ? ` ${cardinal(k % 1000)}` : '')
  return `${cardinal(Math.floor(k / 1e6))} million` + (k % 1e6 ? ` ${cardinal(k % 1e6)}` : '')
}

/** 1st, 2nd, 3rd, 4th, 11th, 12th, 13th, 21st, ... */
export function ordinal(k: number): string {
  const t2 = k % 100
  const suffix = t2 >= 11 && t2 <= 13 ? 'th' : k % 10 === 1 ? 'st' : k % 10 === 2 ? 'nd' : k % 10 === 3 ? 'rd' : 'th'
  return `${k}${suffix}`
}

/** Rows 1..n: [i, s, cardinal, ordinal], `s` a short pseudo-random string (seeded). */
export function widthRows(n: number): [number, string, string, string][] {
  let a = 12345
  const rnd = () => {
    a = (Math.imul(a, 1103515245) + 12345) >>> 0
    return a
  }
  const out: [number, string, string, string][] = []
  for (let i = 1; i <= n; i++) out.push([i, (rnd() >>> 8).toString(36), cardinal(i), ordinal(i)])
  return out
}

const DDL = (name: string, unlogged: boolean) =>
  `create ${unlogged ? 'unlogged ' : ''}table ${name} (i integer primary key, s text not null, cardinal text not null, ordinal text not null)`

function loadSqliteWidth(raw: Database.Database, m: number, n: number): void {
  raw.exec(DDL('r_1', false))
  const ins = raw.prepare('insert into r_1 (i, s, cardinal, ordinal) values (?, ?, ?, ?)')
  raw.transaction(() => {
    for (const r of widthRows(n)) ins.run(...r)
    for (let j = 2; j <= m; j++) {
      raw.exec(DDL(`r_${j}`, false))
      raw.exec(`insert into r_${j} select * from r_1`)
    }
  })()
  raw.exec('analyze')
}

async function loadPgWidth(client: pg.PoolClient, m: number, n: number): Promise<void> {
  // Unlogged tables: loading skips the WAL; reading them is the same as reading logged ones.
  await client.query(DDL('r_1', true))
  const rows = widthRows(n)
  await client.query('insert into r_1 select * from unnest($1::integer[], $2::text[], $3::text[], $4::text[])', [
    rows.map((r) => r[0]),
    rows.map((r) => r[1]),
    rows.map((r) => r[2]),
    rows.map((r) => r[3]),
  ])
  for (let j = 2; j <= m; j++) {
    await client.query(DDL(`r_${j}`, true))
    await client.query(`insert into r_${j} select * from r_1`)
  }
  await client.query('vacuum analyze')
}

// ---------------------------------------------------------------- checks

function checkWidth(plainRows: readonly unknown[], linRows: readonly unknown[], m: number, n: number): string[] {
  const problems: string[] = []
  const expected = Array.from({ length: n }, (_, k) => k + 1).filter((i) => i % 100 < 5).length
  if (plainRows.length !== expected) problems.push(`plain returned ${plainRows.length} rows, expected ${expected}`)
  if (linRows.length !== plainRows.length) problems.push(`lineage returned ${linRows.length} rows, plain ${plainRows.length}`)
  let bad = 0
  for (const r of linRows as Annot[]) {
    const i = (r.data as { i: number }).i
    const ok = r.lineage.length === m && r.lineage.every((e, j) => e.table === `r_${j + 1}` && e.key === i)
    if (!ok && bad++ < 2) problems.push(`row ${JSON.stringify(r.data)}: ${r.lineage.length} entries ${JSON.stringify(r.lineage.slice(0, 3))}..., expected r_1..r_${m} with key ${i}`)
  }
  if (bad > 2) problems.push(`... ${bad - 2} more rows with wrong lineage`)
  if (bagHash(linRows.map(strip)) !== bagHash(plainRows)) problems.push('lineage rows stripped of annotations differ from the plain rows')
  return problems
}

// ---------------------------------------------------------------- main

const errMessage = (e: unknown): string => (e instanceof Error ? `${e.name}: ${e.message}` : String(e))

/** Median milliseconds of `plan(q).decode(rows)`. */
function decodeTime(q: AnyQuery, rows: readonly Record<string, unknown>[], dialect: Dialect, rounds: number): number {
  const dec = plan(q, dialect).decode
  const ts: number[] = []
  for (let i = 0; i < rounds; i++) {
    const t0 = nowMs()
    dec(rows)
    ts.push(nowMs() - t0)
  }
  return median(ts)
}

/** PostgreSQL's own planning and execution times of a statement (EXPLAIN ANALYZE). */
async function pgTimes(h: Handle, q: AnyQuery): Promise<{ planning: number; execution: number; text: string }> {
  const text = await explain(h.db, 'postgres', q, true)
  const num = (re: RegExp) => Number(re.exec(text)?.[1] ?? Number.NaN)
  return { planning: num(/Planning Time: ([\d.]+) ms/), execution: num(/Execution Time: ([\d.]+) ms/), text }
}

export async function main(): Promise<void> {
  const ms = envList('WIDTH_M', '16,32,64').map(Number)
  const ns = envList('WIDTH_N', '10000,100000').map(Number)
  const dialects = envDialects('WIDTH_DIALECTS')
  const sqliteMaxN = envNum('WIDTH_SQLITE_MAX_N', 100_000)
  const timing = {
    rounds: envNum('WIDTH_ROUNDS', 7),
    sampleMs: envNum('WIDTH_SAMPLE_MS', 40),
    slowMs: envNum('WIDTH_SLOW_MS', 700),
    slowRounds: envNum('WIDTH_SLOW_ROUNDS', 3),
    verySlowMs: envNum('WIDTH_VERY_SLOW_MS', 4000),
    verySlowRounds: envNum('WIDTH_VERY_SLOW_ROUNDS', 2),
  }
  const splitRounds = envNum('WIDTH_SPLIT_ROUNDS', 7)
  const showPlans = process.env.WIDTH_EXPLAIN === '1'
  const pgSchema = process.env.WIDTH_PG_SCHEMA ?? 'lq_bench_width'
  const mMax = Math.max(...ms)
  const t0 = nowMs()

  console.log('lineage-query: lineage width, m-way join (benchmarks.md section 2)')
  console.log(`m=${ms.join(',')}  n=${ns.join(',')}  dialects=${dialects.join(',')} (SQLite up to n=${sqliteMaxN})  rounds=${timing.rounds} (slow: ${timing.slowRounds})  node ${process.version}`)
  console.log(`plain = run(db, q), lineage = run(db, lineage(q)); medians over interleaved rounds; ratio = median of per-round ratios; target <= ${TARGET}x at m=64`)
  console.log('SQL exec = executeQuery of the compiled statement (~: slow query, taken as run - decode); decode = the decoder alone on fetched rows')
  console.log('anchors (n=10^4, m=64): Links^L 121 s vs 3.9 s (31x); Perm 5.7 s vs 4.2 s (1.35x)\n')

  const results: { dialect: Dialect; n: number; m: number; ratio: number }[] = []
  for (const dialect of dialects) {
    for (const n of ns) {
      if (dialect === 'sqlite' && n > sqliteMaxN) continue
      const tl = nowMs()
      let h: Handle
      try {
        h = dialect === 'sqlite' ? openSqlite((raw) => loadSqliteWidth(raw, mMax, n)) : await openPostgres(pgSchema, (c) => loadPgWidth(c, mMax, n), 600_000)
      } catch (e) {
        console.log(`== ${dialect} n=${n}: cannot set up the database: ${errMessage(e)}\n`)
        continue
      }
      console.log(`== ${dialect}  n=${n}  (${mMax} tables of ${n} rows, loaded in ${elapsed(tl)})`)
      const rows: string[][] = []
      const warnings: string[] = []
      const cap = capturing(h.db)
      const extra: string[] = []
      try {
        for (const m of ms) {
          const q = widthQuery(widthTables(m))
          const tc = nowMs()
          const sqlLen = plan(q, dialect).statements[0]!.sql.length
          const linSqlLen = plan(lineage(q), dialect).statements[0]!.sql.length
          const compileMs = nowMs() - tc
          // The first run of each query keeps its raw driver rows (for timing the decoder alone).
          const rawRows = new Map<AnyQuery, Record<string, unknown>[]>()
          const runner: Runner = async (db, query) => {
            if (rawRows.has(query)) return runIt(db, query)
            cap.arm()
            const out = await runIt(cap.db, query)
            rawRows.set(query, cap.take() ?? [])
            return out
          }
          const r = await timePair(h.db, dialect, q, timing, true, runner)
          const problems = checkWidth(r.plain ?? [], r.lin ?? [], m, n)
          for (const p of problems) warnings.push(`CHECK ${dialect} n=${n} m=${m}: ${p}`)
          // Slow statements (PostgreSQL plans a 64-way join for seconds): no separate executions
          // for the split; the decoder is timed on the rows kept above, SQL execution is run - decode.
          const slow = Math.max(r.plainMs, r.linMs) >= timing.slowMs
          let s: { plain: { execMs: number; decodeMs: number; columns: number }; lin: { execMs: number; decodeMs: number; columns: number } }
          if (!slow) s = await timeSplit(h.db, dialect, q, splitRounds, undefined, false)
          else {
            const [[qa, ra], [qb, rb]] = [...rawRows] as [[AnyQuery, Record<string, unknown>[]], [AnyQuery, Record<string, unknown>[]]]
            const da = decodeTime(qa, ra, dialect, 3)
            const db = decodeTime(qb, rb, dialect, 3)
            const cols = (x: readonly Record<string, unknown>[]) => (x[0] === undefined ? 0 : Object.keys(x[0]).length)
            s = { plain: { execMs: r.plainMs - da, decodeMs: da, columns: cols(ra) }, lin: { execMs: r.linMs - db, decodeMs: db, columns: cols(rb) } }
          }
          results.push({ dialect, n, m, ratio: r.ratio })
          rows.push([
            String(m),
            String(r.plainRows),
            fmtMs(r.plainMs),
            fmtMs(r.linMs),
            fmtRatio(r.ratio) + (r.ratio > TARGET ? '!' : ' '),
            `${slow ? '~' : ''}${fmtMs(s.plain.execMs)} / ${slow ? '~' : ''}${fmtMs(s.lin.execMs)}`,
            `${fmtMs(s.plain.decodeMs)} / ${fmtMs(s.lin.decodeMs)}`,
            `${r.plainStatements}/${r.linStatements}`,
            `${s.plain.columns}/${s.lin.columns}`,
            problems.length === 0 ? `ok (${r.linRows} x ${m} entries)` : 'FAILED',
            `compile ${fmtMs(compileMs)}, sql ${sqlLen}/${linSqlLen} chars${r.rounds < timing.rounds ? `; slow: ${r.rounds} rounds` : ''}`,
          ])
          if (dialect === 'postgres' && (m === mMax || !slow)) {
            const a = await pgTimes(h, q)
            const b = await pgTimes(h, lineage(q))
            extra.push(
              `  m=${m}: PostgreSQL EXPLAIN ANALYZE: plain planning ${fmtMs(a.planning)} + execution ${fmtMs(a.execution)}; ` +
                `lineage planning ${fmtMs(b.planning)} + execution ${fmtMs(b.execution)}`,
            )
            if (showPlans && m === mMax) extra.push(`  plan of plain m=${m}:\n${indent(a.text)}\n  plan of lineage m=${m}:\n${indent(b.text)}`)
          } else if (showPlans && m === mMax) {
            extra.push(`  plan of plain m=${m}:\n${indent(await explain(h.db, dialect, q, false))}\n  plan of lineage m=${m}:\n${indent(await explain(h.db, dialect, lineage(q), false))}`)
          }
        }
        if (dialect === 'postgres') {
          const settings = await h.db.executeQuery<Record<string, unknown>>(
            CompiledQuery.raw("select name, setting from pg_settings where name in ('geqo', 'geqo_threshold', 'join_collapse_limit', 'from_collapse_limit', 'jit', 'jit_above_cost') order by name"),
          )
          extra.unshift(`  settings: ${settings.rows.map((x) => `${String(x.name)}=${String(x.setting)}`).join(', ')} (a flat FROM list of m tables is one join problem: m >= geqo_threshold plans with GEQO)`)
        }
      } catch (e) {
        console.log(`ERROR ${dialect} n=${n}: ${errMessage(e)}`)
      } finally {
        await h.close()
        if (h.dialect === 'postgres') await dropPgSchema(pgSchema)
      }
      console.log(
        textTable(['m', 'rows', 'plain', 'lineage', 'ratio ', 'SQL exec plain/lin', 'decode plain/lin', 'stmts', 'columns', 'check', 'note'], rows),
      )
      for (const x of extra) console.log(x)
      for (const w of warnings) console.log(w)
      console.log(`(${elapsed(t0)} so far)\n`)
    }
  }
  console.log('SUMMARY (lineage/plain; target <= 1.5x at m=64; anchors n=10^4 m=64: Links^L 31x, Perm 1.35x)')
  for (const r of results) {
    console.log(`  ${r.dialect.padEnd(8)} n=${String(r.n).padEnd(6)} m=${String(r.m).padEnd(2)}  ${fmtRatio(r.ratio)}${r.m === 64 ? (r.ratio <= TARGET ? '  (target met)' : '  (target MISSED)') : ''}`)
  }
  console.log(`total ${elapsed(t0)}`)
}


runIfMain(import.meta.url, main)
