/**
 * `lineage-query explore`: the command serves the explorer of the config module's store (with
 * its named queries) until stopped; a bad port is a usage error.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Writable } from 'node:stream'
import Database from 'better-sqlite3'
import { Kysely, SqliteDialect } from 'kysely'
import { afterAll, describe, expect, it } from 'vitest'
import { main } from '../../src/cli/main.js'
import { seed } from './pipeline.js'

const here = dirname(fileURLToPath(import.meta.url))
const dir = mkdtempSync(join(tmpdir(), 'lq-explore-cli-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

function capture(): { stream: NodeJS.WriteStream; text: () => string } {
  let text = ''
  const stream = Object.assign(new Writable({ write: (c: Buffer, _e, cb) => ((text += c.toString()), cb()) }), { isTTY: false }) as unknown as NodeJS.WriteStream
  return { stream, text: () => text }
}

describe('lineage-query explore', () => {
  it('serves the explorer of the config module until stopped', async () => {
    const file = join(dir, 'explore.db')
    const db = new Kysely<any>({ dialect: new SqliteDialect({ database: new Database(file) }) })
    await seed(db)
    await db.destroy()
    process.env['LQ_EXPLORE_SQLITE'] = file
    const out = capture()
    const err = capture()
    const stop = new AbortController()
    const done = main(['--config', join(here, 'explore.config.ts'), 'explore', '--port', '0'], { out: out.stream, err: err.stream, stop: stop.signal })
    for (let i = 0; i < 600 && !out.text().includes('http://'); i++) await new Promise((r) => setTimeout(r, 50))
    const url = /http:\/\/\S+/.exec(out.text())?.[0]
    expect(url, err.text()).toBeDefined()
    const tables = (await (await fetch(new URL('/api/tables', url))).json()) as { tables: { name: string; counts: Record<string, number> }[] }
    expect(tables.tables.map((t) => t.name).sort()).toEqual(['authors', 'doubled', 'parsed', 'signed', 'sources'])
    expect(tables.tables.find((t) => t.name === 'parsed')!.counts).toEqual({ missing: 5 })
    expect(((await (await fetch(new URL('/api/queries', url))).json()) as { names: string[] }).names).toEqual(['doubled', 'lines'])
    const page = await (await fetch(url!)).text()
    expect(page).toContain('lineage-query explorer')
    stop.abort()
    expect(await done).toBe(0)
  })

  it('refuses a port that is not a port', async () => {
    const err = capture()
    const code = await main(['--config', join(here, 'explore.config.ts'), 'explore', '--port', 'http'], { out: capture().stream, err: err.stream })
    expect(code).toBe(1)
    expect(err.text()).toMatch(/--port must be an integer from 0 to 65535/)
  })
})
