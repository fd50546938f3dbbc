// A first fill of N rows (SQLite file) while a raw client advances the store's clock once per
// stored page (a write of another tracked root): refresh wall time per build, interleaved.
// Usage (from the repository, after npm run build; another build copied under the repo so its
// imports resolve): node bench/fill-gaps.mjs 50000 1000 4 before=./old-dist/index.js after=./dist/index.js
// Figures: docs/derived.md ("A claimed page's stored rows, looked at only when someone else wrote").

import Database from 'better-sqlite3'
import { Kysely, SqliteDialect, sql } from 'kysely'
import * as t from 'io-ts'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir, loadavg } from 'node:os'
import { join, resolve } from 'node:path'
import { pathToFileURL } from 'node:url'
const [N, B, R, ...builds] = process.argv.slice(2)
const libs = await Promise.all(builds.map(async (b) => { const [label, path] = b.split('='); return [label, await import(pathToFileURL(resolve(path)).href)] }))
async function once(lib, noise) {
  const dir = mkdtempSync(join(tmpdir(), 'rv2-'))
  const file = join(dir, 'db.sqlite')
  const db = new Kysely({ dialect: new SqliteDialect({ database: new Database(file) }) })
  const src = lib.table('src', { id: t.Int, v: t.Int })
  const nz = lib.table('noise', { id: t.Int, v: t.Int })
  await lib.createTable(db, src); await lib.createTable(db, nz)
  await sql.raw(`WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ${Number(N)}) INSERT INTO src (id, v) SELECT i, i FROM n`).execute(db)
  await sql.raw(`INSERT INTO noise (id, v) VALUES (1, 0)`).execute(db)
  const store = await lib.openStore(db)
  await store.track(src); await store.track(nz)
  store.derive({ name: 'out', from: src, output: { n: t.Int }, fn: (r) => ({ n: r.v * 2 }) })
  const raw = new Database(file); raw.pragma('busy_timeout = 0')
  let pending = 0, writes = 0
  const bump = () => { try { raw.prepare('UPDATE noise SET v = v + 1 WHERE id = 1').run(); writes++; pending-- } catch { setTimeout(bump, 1) } }
  const t0 = performance.now()
  await store.refresh({ batchSize: Number(B), onProgress: (p) => { if (noise && p.phase === 'batch') { pending++; setImmediate(bump) } } })
  const ms = performance.now() - t0
  const n = Number((await sql`SELECT count(*) AS n FROM out`.execute(db)).rows[0].n)
  raw.close(); await db.destroy(); rmSync(dir, { recursive: true, force: true })
  if (n !== Number(N)) throw new Error(`rows ${n}`)
  return { ms, writes }
}
const res = {}
for (let r = 0; r < Number(R); r++) for (const [label, lib] of (r % 2 ? [...libs].reverse() : libs)) for (const noise of [false, true]) {
  const { ms, writes } = await once(lib, noise)
  ;(res[`${label}${noise ? '+gaps' : ''}`] ??= []).push(ms)
  console.log(r, label, noise ? 'gaps' : 'quiet', ms.toFixed(0), 'ms', 'clock writes', writes, 'load', loadavg()[0].toFixed(2))
}
const med = (a) => [...a].sort((x, y) => x - y)[a.length >> 1]
for (const [k, v] of Object.entries(res)) console.log(k, 'median', med(v).toFixed(0), 'ms')
