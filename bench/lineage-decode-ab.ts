/**
 * The decoder alone, two builds side by side in one process (issue 12): the rows of each
 * organisation query's lineage statement are fetched once (SQLite, in memory), then decoded by
 * this build's decoder and by another build's (`AB_OTHER`, the `dist/index.js` of e.g. main),
 * interleaved, in CPU time: lineage not read, and every entry read (`readEvery`). Ratios are to
 * the decoding of the plain statement's rows by this build. The other build's decoder reads this
 * build's layouts and rows, so this isolates what the result representation costs — between
 * builds that lower lineage the same way only: a build before nested collections carried their
 * keys apart (`CollLayout.keysApart`) cannot read the rows of one after it, and the run stops
 * when the two decoders disagree (compare such builds end to end instead).
 *
 *   AB_OTHER=/path/to/other/dist/index.js npx tsx bench/lineage-decode-ab.ts
 * Environment: AB_N=64  AB_ROUNDS=9  AB_SAMPLE_MS=60
 */
import { loadavg } from 'node:os'
import { dirname, join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { CompiledQuery } from 'kysely'
import { compare, fmtMs, fmtRatio, geomean, runIfMain, selfCpuClock, table } from './harness.js'
import { envNum, openSqlite, readEvery } from './lineage-common.js'
import { lib, libraryLocation, plan } from './lib.js'
import { generate, loadSqlite } from './org/data.js'
import { queries } from './org/queries.js'
import { ddl } from './org/schema.js'

export async function main(): Promise<void> {
  const other = process.env['AB_OTHER']
  if (other === undefined || other === '') throw new Error('AB_OTHER: the index.js of the build to compare with')
  // The other build's decoder, given this build's layouts (the lowering, hence the layouts and
  // the SQL, is the same in both: the SQL text is compared below for the record).
  type DecodeRows = (layout: unknown, hooks: unknown) => (rows: readonly Record<string, unknown>[]) => unknown[]
  const otherDecode = ((await import(pathToFileURL(join(dirname(other), 'query', 'decode.js')).href)) as { decodeRows: DecodeRows }).decodeRows
  const otherHooks = ((await import(pathToFileURL(join(dirname(other), 'query', 'dialect.js')).href)) as { hooksFor: (d: string) => unknown }).hooksFor('sqlite')
  const n = envNum('AB_N', 64)
  const h = openSqlite((raw) => {
    for (const s of ddl('sqlite')) raw.exec(s)
    loadSqlite(raw, generate(n))
  })
  console.log(`decoder A/B on SQLite N=${n}: this = ${libraryLocation}, other = ${other}; CPU time, load average ${loadavg().map((x) => x.toFixed(2)).join(' ')}`)
  const rows: string[][] = []
  const r = { thisLin: [] as number[], otherLin: [] as number[], thisRead: [] as number[], otherRead: [] as number[] }
  try {
    for (const bq of queries.filter((x) => ['Q3', 'Q4', 'AQ6', 'Q7', 'QF4', 'Q6N'].includes(x.name))) {
      // The same query built by each copy of the library (a query object belongs to its copy).
      const mine = bq.build()
      const pPlain = plan(mine, 'sqlite')
      const pLin = plan(lib.lineage(mine), 'sqlite')
      const theirs = { decode: otherDecode(pLin.layout, otherHooks) }
      const s = pLin.statements[0]!
      const fetch = async (st: { sql: string; parameters: readonly unknown[] }) => (await h.db.executeQuery<Record<string, unknown>>(CompiledQuery.raw(st.sql, [...st.parameters]))).rows
      const plainRows = await fetch(pPlain.statements[0]!)
      const linRows = await fetch(s)
      if (JSON.stringify(theirs.decode(linRows)) !== JSON.stringify(pLin.decode(linRows))) {
        throw new Error(`${bq.name}: the other build decodes this build's rows differently (a build on the other side of a lowering change, e.g. keys apart?)`)
      }
      const c = await compare(
        [
          { name: 'plain', fn: () => pPlain.decode(plainRows) },
          { name: 'this lineage', fn: () => pLin.decode(linRows) },
          { name: 'other lineage', fn: () => theirs.decode(linRows) },
          { name: 'this read', fn: () => readEvery(pLin.decode(linRows)) },
          { name: 'other read', fn: () => readEvery(theirs.decode(linRows)) },
        ],
        { rounds: envNum('AB_ROUNDS', 9), sampleMs: envNum('AB_SAMPLE_MS', 60), warmup: true, cpu: selfCpuClock() },
      )
      const q = (i: number) => c.ratio(i, 0, 'cpu')
      r.thisLin.push(q(1))
      r.otherLin.push(q(2))
      r.thisRead.push(q(3))
      r.otherRead.push(q(4))
      rows.push([bq.name, String(linRows.length), fmtMs(c.variants[0]!.cpuMedian), fmtRatio(q(1)), fmtRatio(q(2)), fmtRatio(q(3)), fmtRatio(q(4)), fmtRatio(c.ratio(1, 2, 'cpu'))])
    }
  } finally {
    await h.close()
  }
  console.log(table(['query', 'rows', 'decode plain', 'this lin', 'other lin', 'this lin+read', 'other lin+read', 'this/other lin'], rows))
  console.log(`geomean of decode(lineage rows)/decode(plain rows): this ${fmtRatio(geomean(r.thisLin))}, other ${fmtRatio(geomean(r.otherLin))}; every entry read: this ${fmtRatio(geomean(r.thisRead))}, other ${fmtRatio(geomean(r.otherRead))}`)
}

runIfMain(import.meta.url, main)
