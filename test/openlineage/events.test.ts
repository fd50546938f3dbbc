/**
 * OpenLineage run events of refreshes, validated against the published OpenLineage JSON schema
 * (vendored in test/openlineage/schema, see its README): to a file, to an HTTP endpoint, from
 * the CLI's `refresh --openlineage`, with FAIL events when a refresh fails.
 */
import { createServer } from 'node:http'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Writable } from 'node:stream'
import Database from 'better-sqlite3'
import { Kysely, SqliteDialect, sql } from 'kysely'
import { Ajv2020 } from 'ajv/dist/2020.js'
import addFormatsModule from 'ajv-formats'
import { afterAll, describe, expect, it } from 'vitest'
import { LineageQueryError, openStore, refreshWithOpenLineage, type RunEvent } from '../../src/index.js'
import { main } from '../../src/cli/main.js'
import { eachDialect } from '../support/db.js'
import { declare, seed } from '../explore/pipeline.js'

const here = dirname(fileURLToPath(import.meta.url))
const schema = (f: string): object => JSON.parse(readFileSync(join(here, 'schema', f), 'utf8')) as object
const ajv = new Ajv2020({ strict: false, allErrors: true })
const addFormats = addFormatsModule as unknown as (a: Ajv2020) => void
addFormats(ajv)
for (const f of ['OpenLineage.json', 'ErrorMessageRunFacet.json', 'JobTypeJobFacet.json', 'ColumnLineageDatasetFacet.json']) ajv.addSchema(schema(f))
const validateEvent = ajv.getSchema('https://openlineage.io/spec/2-0-2/OpenLineage.json')!
const validateJobType = ajv.getSchema('https://openlineage.io/spec/facets/2-0-4/JobTypeJobFacet.json#/$defs/JobTypeJobFacet')!
const validateError = ajv.getSchema('https://openlineage.io/spec/facets/1-0-1/ErrorMessageRunFacet.json#/$defs/ErrorMessageRunFacet')!
const validateColumns = ajv.getSchema('https://openlineage.io/spec/facets/1-2-0/ColumnLineageDatasetFacet.json#/$defs/ColumnLineageDatasetFacet')!

/** Every event valid against the OpenLineage schema, its facets against theirs. */
function expectValid(events: readonly RunEvent[]): void {
  for (const e of events) {
    expect(validateEvent(e), JSON.stringify(validateEvent.errors)).toBe(true)
    expect(validateJobType(e.job.facets!['jobType']), JSON.stringify(validateJobType.errors)).toBe(true)
    const err = e.run.facets?.['errorMessage']
    if (err !== undefined) expect(validateError(err), JSON.stringify(validateError.errors)).toBe(true)
    for (const o of e.outputs) {
      const cl = o.facets?.['columnLineage']
      if (cl !== undefined) expect(validateColumns(cl), JSON.stringify(validateColumns.errors)).toBe(true)
    }
  }
}

describe('the OpenLineage schema check', () => {
  it('refuses an event the schema does not allow (the check is not vacuous)', () => {
    const bad = { eventTime: 'yesterday', eventType: 'DONE', producer: 'x', schemaURL: 'y', run: {}, job: { namespace: 'n', name: 'j' } }
    expect(validateEvent(bad)).toBe(false)
    expect(validateColumns({ _producer: 'x', _schemaURL: 'y', fields: { a: { inputFields: [{ name: 't' }] } } })).toBe(false)
  })
})

const dirs: string[] = []
const tmp = (): string => {
  const d = mkdtempSync(join(tmpdir(), 'lq-ol-'))
  dirs.push(d)
  return d
}
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true })
})

const lines = (file: string): RunEvent[] => readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as RunEvent)

eachDialect('OpenLineage events of a refresh', (get) => {
  it('a START and a COMPLETE event per derived table, with its inputs and output, valid against the schema', async () => {
    const { db } = get()
    await seed(db)
    const store = await openStore(db)
    await declare(store)
    const file = join(tmp(), 'events.jsonl')
    const report = await refreshWithOpenLineage(store, { openLineage: { target: { file }, datasetNamespace: 'test-db' } })
    expect(report.totals.computed).toBeGreaterThan(0)
    const events = lines(file)
    expectValid(events)
    const derived = store.graph().order.filter((n) => ['parsed', 'doubled', 'signed'].includes(n))
    expect(events.map((e) => `${e.eventType} ${e.job.name}`)).toEqual(derived.flatMap((t) => [`START ${t}`, `COMPLETE ${t}`]))
    const signed = events.filter((e) => e.job.name === 'signed')
    expect(signed[0]!.run.runId).toBe(signed[1]!.run.runId)
    expect(signed[1]!.inputs.map((i) => i.name).sort()).toEqual(['authors', 'sources'])
    expect(signed[1]!.outputs.map((o) => o.name)).toEqual(['signed'])
    // signed's source is a comprehension: its column lineage (fn makes `line` from the yield).
    const yieldField = (f: string) => [{ type: 'DIRECT', subtype: 'TRANSFORMATION', description: `yield field ${f}, then the table's function` }]
    expect(signed[1]!.outputs[0]!.facets!['columnLineage']).toMatchObject({
      fields: {
        line: {
          inputFields: [
            { namespace: 'test-db', name: 'sources', field: 'text', transformations: yieldField('text') },
            { namespace: 'test-db', name: 'authors', field: 'name', transformations: yieldField('name') },
          ],
        },
      },
      dataset: [
        { namespace: 'test-db', name: 'authors', field: 'id', transformations: [{ type: 'INDIRECT', subtype: 'FILTER' }] },
        { namespace: 'test-db', name: 'sources', field: 'author', transformations: [{ type: 'INDIRECT', subtype: 'FILTER' }] },
      ],
    })
    // parsed and doubled are functions over a table: opaque, no column lineage.
    for (const e of events.filter((e) => e.job.name !== 'signed')) expect(e.outputs).toEqual([{ namespace: 'test-db', name: e.job.name }])
    expect(events.find((e) => e.eventType === 'COMPLETE' && e.job.name === 'parsed')!.run.facets!['lineageQuery_counts']).toMatchObject({ computed: 4, failed: 1 })
    expect(new Set(events.map((e) => e.run.runId)).size).toBe(3)
  })

  it('a FAIL event with the error for the table whose refresh failed', async () => {
    const { db } = get()
    const store = await openStore(db)
    await declare(store)
    await sql`UPDATE sources SET text = 'changed now' WHERE id = 1`.execute(db)
    const file = join(tmp(), 'fail.jsonl')
    const refresh = refreshWithOpenLineage(store, {
      openLineage: { target: { file } },
      onProgress: (p) => {
        if (p.table === 'doubled' && p.phase === 'scan') throw new Error('progress sink broke')
      },
    })
    await expect(refresh).rejects.toThrow('progress sink broke')
    const events = lines(file)
    expectValid(events)
    const last = events[events.length - 1]!
    expect(last).toMatchObject({ eventType: 'FAIL', job: { name: 'doubled' } })
    expect(last.run.facets!['errorMessage']).toMatchObject({ message: 'progress sink broke', programmingLanguage: 'JavaScript' })
    expect(events.filter((e) => e.job.name === 'doubled').map((e) => e.eventType)).toEqual(['START', 'FAIL'])
  })
})

describe('OpenLineage events sent over HTTP', () => {
  it('POSTs each event in order to the endpoint (as to Marquez)', async () => {
    const got: RunEvent[] = []
    const server = createServer((req, res) => {
      let body = ''
      req.on('data', (c: Buffer) => (body += c.toString()))
      req.on('end', () => {
        got.push(JSON.parse(body) as RunEvent)
        res.writeHead(201).end()
      })
    })
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
    const port = (server.address() as { port: number }).port
    const db = new Kysely<any>({ dialect: new SqliteDialect({ database: new Database(':memory:') }) })
    try {
      await seed(db)
      const store = await openStore(db)
      await declare(store)
      await refreshWithOpenLineage(store, { openLineage: { target: { url: `http://127.0.0.1:${port}/api/v1/lineage` } } })
      expect(got).toHaveLength(6)
      expectValid(got)
    } finally {
      server.close()
      await db.destroy()
    }
  })

  it('an endpoint that refuses an event rejects the refresh with code openlineage', async () => {
    const server = createServer((_req, res) => res.writeHead(500).end('no'))
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
    const port = (server.address() as { port: number }).port
    const db = new Kysely<any>({ dialect: new SqliteDialect({ database: new Database(':memory:') }) })
    try {
      await seed(db)
      const store = await openStore(db)
      await declare(store)
      const e = await refreshWithOpenLineage(store, { openLineage: { target: { url: `http://127.0.0.1:${port}/` } } }).catch((x: unknown) => x)
      expect(e).toBeInstanceOf(LineageQueryError)
      expect((e as LineageQueryError).code).toBe('openlineage')
      expect((e as LineageQueryError).message).toMatch(/answered 500/)
    } finally {
      server.close()
      await db.destroy()
    }
  })

  it('a bad target is a typed argument error', async () => {
    const db = new Kysely<any>({ dialect: new SqliteDialect({ database: new Database(':memory:') }) })
    const store = await openStore(db)
    await expect(refreshWithOpenLineage(store, { openLineage: { target: { url: 'ftp://x' } } })).rejects.toMatchObject({ code: 'argument' })
    await db.destroy()
  })
})

describe('lineage-query refresh --openlineage', () => {
  it('writes the run events of the refresh to the file, valid against the schema', async () => {
    const dir = tmp()
    const dbFile = join(dir, 'cli.db')
    const setup = new Kysely<any>({ dialect: new SqliteDialect({ database: new Database(dbFile) }) })
    await seed(setup)
    await setup.destroy()
    process.env['LQ_EXPLORE_SQLITE'] = dbFile
    const out = join(dir, 'events.jsonl')
    const sink = () => Object.assign(new Writable({ write: (_c, _e, cb) => cb() }), { isTTY: false }) as unknown as NodeJS.WriteStream
    const code = await main(['--config', join(here, '..', 'explore', 'explore.config.ts'), 'refresh', '--json', '--openlineage', out, '--openlineage-namespace', 'cli-test'], { out: sink(), err: sink() })
    expect(code).toBe(0)
    const events = lines(out)
    expectValid(events)
    expect(events).toHaveLength(6)
    expect(events.every((e) => e.job.namespace === 'cli-test')).toBe(true)
  })
})
