/**
 * Packed key columns (`LinLayout.packed`, hook `packKeys`) against one column per key
 * slot, in one process on one build: the hook is switched per variant, so both forms compile
 * from the same code and their statements run over the same data, interleaved, in CPU time
 * (SQLite: this process; PostgreSQL: this process plus the backend's, read from /proc, so the
 * server's share of building the JSON array counts). Per query: `run`'s work (execute the
 * statement, decode the rows) for the plain query, lineage with key columns and lineage packed,
 * lineage not read and every entry read; ratios to the plain query.
 *
 *   npx tsx bench/lineage-packed-ab.ts
 * Environment: AB_N=64 (organisation data)  AB_QUERIES=Q7,QF3,QF4  AB_WIDTH=16,64 (m-way join, m)
 * AB_WIDTH_N=10000 (its n)  AB_DIALECTS=sqlite,postgres  AB_ROUNDS=11  AB_SAMPLE_MS=60
 * LQ_BENCH_LIB as in bench/lib.ts (the build measured).
 */
import { loadavg } from 'node:os'
import { dirname, join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { CompiledQuery, type Kysely } from 'kysely'
import { compare, fmtMs, fmtRatio, geomean, processCpuClock, runIfMain, selfCpuClock, sumClocks, table, type Clock } from './harness.js'
import { dropPgSchema, envDialects, envList, envNum, openPostgres, openSqlite, readEvery, type Handle } from './lineage-common.js'
import { lineage, libraryLocation, plan, type AnyQuery, type Dialect } from './lib.js'
import { widthQuery, widthRows, widthTables } from './lineage-width.js'
import { generate, loadPostgres, loadSqlite } from './org/data.js'
import { queries } from './org/queries.js'
import { ddl } from './org/schema.js'

type PackKeys = (kinds: readonly string[], tagged: boolean) => 'json' | 'text' | undefined
type Hooks = { packKeys: PackKeys }

/** The plan of `build()` (a fresh query object: plans are cached per query) with packing on or off. */
function planned(hooks: Hooks, build: () => AnyQuery, packed: boolean | undefined, d: Dialect) {
  const saved = hooks.packKeys
  // Packed: the dialect's form where it packs, else a JSON array (from one column on).
  const forced: PackKeys = (kinds, tagged) => saved(kinds, tagged) ?? 'json'
  hooks.packKeys = packed === undefined ? saved : packed ? forced : () => undefined
  try {
    return plan(packed === undefined ? build() : lineage(build()), d)
  } finally {
    hooks.packKeys = saved
  }
}

export async function main(): Promise<void> {
  const hooksFor = ((await import(pathToFileURL(join(dirname(libraryLocation), 'query', 'dialect.js')).href)) as { hooksFor: (d: string) => Hooks }).hooksFor
  const n = envNum('AB_N', 64)
  const names = envList('AB_QUERIES', 'Q7,QF3,QF4')
  const widths = envList('AB_WIDTH', '16,64').map(Number).filter((m) => m > 0)
  const widthN = envNum('AB_WIDTH_N', 10_000)
  const opts = { rounds: envNum('AB_ROUNDS', 11), sampleMs: envNum('AB_SAMPLE_MS', 60), warmup: true }
  console.log(`packed key columns A/B (${libraryLocation}), org N=${n}, m-way join n=${widthN}; CPU time; load average ${loadavg().map((x) => x.toFixed(2)).join(' ')}`)
  for (const d of envDialects('AB_DIALECTS')) {
    const hooks = hooksFor(d)
    const cases: { name: string; build: () => AnyQuery }[] = [
      ...queries.filter((q) => names.includes(q.name)).map((q) => ({ name: q.name, build: q.build })),
      ...widths.map((m) => ({ name: `width m=${m}`, build: () => widthQuery(widthTables(m)) })),
    ]
    const mMax = Math.max(0, ...widths)
    const schema = 'lq_bench_packed'
    const setupSql = (m: number) => [
      ...Array.from({ length: m }, (_, j) => `create table r_${j + 1} (i integer primary key, s text not null, cardinal text not null, ordinal text not null)`),
    ]
    const data = generate(n)
    const h: Handle =
      d === 'sqlite'
        ? openSqlite((raw) => {
            for (const s of ddl('sqlite')) raw.exec(s)
            loadSqlite(raw, data)
            for (const s of setupSql(mMax)) raw.exec(s)
            if (mMax > 0) {
              const ins = raw.prepare('insert into r_1 values (?, ?, ?, ?)')
              raw.transaction(() => {
                for (const r of widthRows(widthN)) ins.run(...r)
                for (let j = 2; j <= mMax; j++) raw.exec(`insert into r_${j} select * from r_1`)
              })()
            }
            raw.exec('analyze')
          })
        : await openPostgres(schema, async (c) => {
            for (const s of ddl('postgres')) await c.query(s)
            await loadPostgres(c, data)
            for (const s of setupSql(mMax)) await c.query(s)
            if (mMax > 0) {
              const rows = widthRows(widthN)
              await c.query('insert into r_1 select * from unnest($1::integer[], $2::text[], $3::text[], $4::text[])', [rows.map((r) => r[0]), rows.map((r) => r[1]), rows.map((r) => r[2]), rows.map((r) => r[3])])
              for (let j = 2; j <= mMax; j++) await c.query(`insert into r_${j} select * from r_1`)
            }
            await c.query('analyze')
          })
    let clock: Clock = selfCpuClock()
    if (h.dialect === 'postgres') {
      const pid = (await h.pool.query<{ p: number }>('select pg_backend_pid() as p')).rows[0]!.p
      clock = sumClocks(clock, processCpuClock(pid)) ?? clock
    }
    const db: Kysely<any> = h.db
    const out: string[][] = []
    const r = { cols: [] as number[], packed: [] as number[], colsRead: [] as number[], packedRead: [] as number[] }
    try {
      for (const c of cases) {
        const [p, cols, packed] = [planned(hooks, c.build, undefined, d), planned(hooks, c.build, false, d), planned(hooks, c.build, true, d)]
        const exec = (x: typeof p) => {
          const s = x.statements[0]!
          const q = CompiledQuery.raw(s.sql, [...s.parameters])
          return async () => x.decode((await db.executeQuery<Record<string, unknown>>(q)).rows)
        }
        const [ep, ec, ek] = [exec(p), exec(cols), exec(packed)]
        const k = await compare(
          [
            { name: 'plain', fn: ep },
            { name: 'columns', fn: ec },
            { name: 'packed', fn: ek },
            { name: 'columns read', fn: async () => readEvery(await ec()) },
            { name: 'packed read', fn: async () => readEvery(await ek()) },
          ],
          { ...opts, cpu: clock },
        )
        const q = (i: number) => k.ratio(i, 0, 'cpu')
        r.cols.push(q(1))
        r.packed.push(q(2))
        r.colsRead.push(q(3))
        r.packedRead.push(q(4))
        const same = cols.statements[0]!.sql === packed.statements[0]!.sql
        out.push([c.name, fmtMs(k.variants[0]!.cpuMedian), fmtRatio(q(1)), fmtRatio(q(2)), fmtRatio(q(3)), fmtRatio(q(4)), same ? 'same SQL' : ''])
      }
    } finally {
      await h.close()
      if (d === 'postgres') await dropPgSchema(schema)
    }
    console.log(`== ${d} (load average at the end ${loadavg()[0]!.toFixed(1)})`)
    console.log(table(['query', 'plain (CPU)', 'columns', 'packed', 'columns, read', 'packed, read', ''], out))
    console.log(`geomean lineage/plain: columns ${fmtRatio(geomean(r.cols))}, packed ${fmtRatio(geomean(r.packed))}; every entry read: columns ${fmtRatio(geomean(r.colsRead))}, packed ${fmtRatio(geomean(r.packedRead))}\n`)
  }
}

runIfMain(import.meta.url, main)
