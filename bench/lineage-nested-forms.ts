/**
 * How a nested collection's lineage keys could travel (issue 12), measured on the raw drivers so
 * that no decoder is involved: the statement of the organisation queries with nested collections
 * (Q3: 1-3 elements per collection, Q4: ~100, AQ6: a few `[name, salary]` elements) with the
 * collection written in each form, executed and its collection column parsed with `JSON.parse`
 * (PostgreSQL's `json` columns are parsed by node-postgres), interleaved, in CPU time (SQLite:
 * this process; PostgreSQL: this process and the backend). Ratios to the plain query's statement.
 *
 * - `pair` (what `lower/value.ts` writes, `CollLayout.keysApart`): `[data, keys]`, two aggregates.
 * - `concat` (SQLite): the same text as `pair`, the two aggregates' texts joined with `||`.
 * - `flat`: `[d0, k0, d1, k1, ...]`, one string aggregate of each row's JSON texts.
 * - `keys first`: `[k0, k1, ..., d0, d1, ...]`, the two JSON aggregates' texts spliced.
 * - `keys text`: `[data, "k0,k1,..."]`, the keys as one comma-separated text (parsed only when read).
 *
 *   npx tsx bench/lineage-nested-forms.ts
 * Environment: NF_N=64,256  NF_DIALECTS=sqlite,postgres  NF_ROUNDS=15  NF_SAMPLE_MS=60
 */
import { loadavg } from 'node:os'
import { compare, fmtMs, fmtRatio, geomean, processCpuClock, runIfMain, selfCpuClock, sumClocks, table, type Clock } from './harness.js'
import { dropPgSchema, envDialects, envList, envNum, openPostgres, openSqlite, type Handle } from './lineage-common.js'
import type { Dialect } from './lib.js'
import { generate, loadPostgres, loadSqlite } from './org/data.js'
import { ddl } from './org/schema.js'

type Form = (d: string, k: string) => string

/** Each form's aggregate of element data `d` and key `k`, per dialect. */
const FORMS: Readonly<Record<Dialect, Readonly<Record<string, Form>>>> = {
  sqlite: {
    plain: (d) => `json_group_array(${d})`,
    pair: (d, k) => `json_array(json_group_array(${d}), json_group_array(${k}))`,
    concat: (d, k) => `'[' || json_group_array(${d}) || ',' || json_group_array(${k}) || ']'`,
    flat: (d, k) => `coalesce('[' || group_concat(json_quote(${d}) || ',' || json_quote(${k}), ',') || ']', '[]')`,
    'keys first': (d, k) => `case when count(*) = 0 then '[]' else substr(json_group_array(${k}), 1, length(json_group_array(${k})) - 1) || ',' || substr(json_group_array(${d}), 2) end`,
    'keys text': (d, k) => `json_array(json_group_array(${d}), group_concat(${k}))`,
  },
  postgres: {
    plain: (d) => `coalesce(json_agg(${d}), json_build_array())`,
    pair: (d, k) => `json_build_array(coalesce(json_agg(${d}), json_build_array()), coalesce(json_agg(${k}), json_build_array()))`,
    flat: (d, k) => `cast(coalesce('[' || string_agg(coalesce(cast(to_json(${d}) as text), 'null') || ',' || coalesce(cast(to_json(${k}) as text), 'null'), ',') || ']', '[]') as json)`,
    'keys first': (d, k) => `case when count(*) = 0 then json_build_array() else cast(left(cast(json_agg(${k}) as text), -1) || ',' || substr(cast(json_agg(${d}) as text), 2) as json) end`,
    'keys text': (d, k) => `json_build_array(coalesce(json_agg(${d}), json_build_array()), string_agg(cast(${k} as text), ','))`,
  },
}

/** The statement of a query around its collection (`@`), the element's data and key, and the collection's FROM and WHERE. */
interface Shape {
  readonly name: string
  readonly outer: string
  readonly data: (d: Dialect) => string
  readonly key: string
  readonly from: (d: Dialect) => string
}

const SHAPES: readonly Shape[] = [
  {
    name: 'Q3',
    outer: 'select @ as "b", "e0"."name" as "e", "e0"."id" as "l" from "employees" as "e0"',
    data: () => '"t1"."task"',
    key: '"t1"."id"',
    from: () => 'from "tasks" as "t1" where ("t1"."employee" = "e0"."name")',
  },
  {
    name: 'Q4',
    outer: 'select "d0"."name" as "dpt", @ as "b", "d0"."id" as "l" from "departments" as "d0"',
    data: () => '"e1"."name"',
    key: '"e1"."id"',
    from: () => 'from "employees" as "e1" where ("d0"."name" = "e1"."dept")',
  },
  {
    name: 'AQ6',
    outer: 'select "d0"."name" as "department", @ as "b", "d0"."id" as "l" from "departments" as "d0"',
    data: (d) => (d === 'sqlite' ? 'json_array("e2"."name", "e2"."salary")' : 'json_build_array("e2"."name", "e2"."salary")'),
    key: '"e2"."id"',
    from: () => 'from "employees" as "e2" where (("d0"."name" = "e2"."dept") and (("e2"."salary" > 1000000) or ("e2"."salary" < 1000)))',
  },
]

const sqlOf = (s: Shape, d: Dialect, form: Form): string => s.outer.replace('@', `(select ${form(s.data(d), s.key)} as "v" ${s.from(d)})`)

/** Parse every row's collection column as the decoder would (a string: JSON.parse; else parsed already). */
function parseAll(rows: readonly Record<string, unknown>[]): number {
  let n = 0
  for (const r of rows) {
    const v = r['b']
    const x = typeof v === 'string' ? (JSON.parse(v) as unknown[]) : (v as unknown[])
    n += x.length
  }
  return n
}

export async function main(): Promise<void> {
  const ns = envList('NF_N', '64,256').map(Number)
  const opts = { rounds: envNum('NF_ROUNDS', 15), sampleMs: envNum('NF_SAMPLE_MS', 60), warmup: true }
  console.log(`nested collections: forms of their lineage keys, raw driver, statement + JSON.parse, CPU time; load average ${loadavg().map((x) => x.toFixed(2)).join(' ')}`)
  for (const n of ns) {
    const data = { ...generate(n), contacts: [] }
    for (const d of envDialects('NF_DIALECTS')) {
      const schema = 'lq_bench_nested_forms'
      const h: Handle =
        d === 'sqlite'
          ? openSqlite((raw) => {
              for (const s of ddl('sqlite')) raw.exec(s)
              loadSqlite(raw, data)
            })
          : await openPostgres(schema, async (c) => {
              for (const s of ddl('postgres')) await c.query(s)
              await loadPostgres(c, data)
              await c.query('analyze')
            })
      let clock: Clock = selfCpuClock()
      let exec: (sql: string) => () => Promise<number>
      if (h.dialect === 'postgres') {
        const client = await h.pool.connect()
        const pid = (await client.query<{ p: number }>('select pg_backend_pid() as p')).rows[0]!.p
        clock = sumClocks(clock, processCpuClock(pid)) ?? clock
        exec = (sql) => async () => parseAll((await client.query<Record<string, unknown>>(sql)).rows)
        const close = h.close
        Object.assign(h, { close: async () => (client.release(), close()) })
      } else {
        const raw = h.raw
        exec = (sql) => {
          const st = raw.prepare(sql)
          return async () => parseAll(st.all() as Record<string, unknown>[])
        }
      }
      const names = Object.keys(FORMS[d])
      const out: string[][] = []
      const all = new Map<string, number[]>()
      try {
        for (const s of SHAPES) {
          const runs = names.map((f) => exec(sqlOf(s, d, FORMS[d][f]!)))
          // The plain statement's element count (one run of each form first, in turn).
          const counts: number[] = []
          for (const r of runs) counts.push(await r())
          const c = await compare(names.map((name, i) => ({ name, fn: runs[i]! })), { ...opts, cpu: clock })
          const ratios = names.slice(1).map((_, i) => c.ratio(i + 1, 0, 'cpu'))
          ratios.forEach((r, i) => all.set(names[i + 1]!, [...(all.get(names[i + 1]!) ?? []), r]))
          out.push([s.name, String(counts[0]), fmtMs(c.variants[0]!.cpuMedian), ...ratios.map(fmtRatio)])
        }
      } finally {
        await h.close()
        if (d === 'postgres') await dropPgSchema(schema)
      }
      console.log(`== ${d} N=${n} (load average at the end ${loadavg()[0]!.toFixed(1)})`)
      console.log(table(['query', 'elements', 'plain (CPU)', ...names.slice(1)], out))
      console.log(`geomean: ${names.slice(1).map((f) => `${f} ${fmtRatio(geomean(all.get(f)!))}`).join(', ')}\n`)
    }
  }
}

runIfMain(import.meta.url, main)
