/**
 * The explorer page in a real Chromium (Debian's `chromium`, driven by playwright-core; .ci/run
 * installs it), against SQLite and PostgreSQL stores: the graph's counts, a stale row's causes
 * down to the root row whose revision changed, its lineage and affected lists as the store
 * reports them, a refresh from the page, the query view. Saves the screenshots of
 * docs/explorer.md (docs/img/explorer-*.png) from the SQLite run.
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { sql } from 'kysely'
import { chromium, type BrowserContext, type Page } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { openStore, type Store } from '../../src/index.js'
import { startExplorer, type RunningExplorer } from '../../src/explore/server.js'
import type { RowView, TablesView } from '../../src/explore/model.js'
import { eachDialect, serverRequired } from '../support/db.js'
import { declare, seed } from './pipeline.js'

const CHROMIUM = process.env['LQ_CHROMIUM'] ?? '/usr/bin/chromium'
const here = dirname(fileURLToPath(import.meta.url))
const shots = join(here, '..', '..', 'docs', 'img')
const TIMEOUT = 30_000

// CI installs Chromium (.ci/run); elsewhere a machine without it skips these tests.
const present = existsSync(CHROMIUM)
if (!present && serverRequired()) throw new Error(`Chromium is not installed at ${CHROMIUM} (apt-get install -y chromium, as .ci/run does)`)

let context: BrowserContext | undefined
let profile: string | undefined

beforeAll(async () => {
  if (!present) return
  profile = mkdtempSync(join(tmpdir(), 'lq-chromium-'))
  context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    viewport: { width: 1200, height: 720 },
    timeout: TIMEOUT,
  })
}, 60_000)

afterAll(async () => {
  await context?.close()
  if (profile !== undefined) rmSync(profile, { recursive: true, force: true })
})

/** Wait for the page to finish rendering the view of its URL. */
async function ready(page: Page, view: string): Promise<void> {
  await page.waitForSelector(`main[data-view="${view}"][data-ready]`, { timeout: TIMEOUT })
}

const suite = present ? eachDialect : (name: string, _body: unknown) => describe.skip(name, () => it('needs Chromium', () => undefined))

suite('explorer page in Chromium', (get) => {
  let store: Store
  let server: RunningExplorer
  let page: Page
  const api = async <T>(path: string): Promise<T> => (await (await fetch(new URL(path, server.url))).json()) as T

  beforeAll(async () => {
    const { db } = get()
    await seed(db)
    store = await openStore(db)
    const h = await declare(store)
    await store.refresh()
    await sql`UPDATE sources SET text = 'hello there world' WHERE id = 2`.execute(db)
    server = await startExplorer(db, store, { port: 0, queries: h.queries })
    page = await context!.newPage()
  }, 60_000)

  afterAll(async () => {
    await page?.close()
    await server?.close()
  })

  const shot = async (name: string): Promise<void> => {
    if (get().dialect !== 'sqlite') return
    mkdirSync(shots, { recursive: true })
    await page.screenshot({ path: join(shots, `explorer-${name}.png`) })
  }

  it('draws the table graph with the counts per state the API gives', async () => {
    await page.goto(server.url)
    await ready(page, 'tables')
    const drawn = await page.$$eval('[data-testid=node]', (ns) => ns.map((n) => ({ table: n.getAttribute('data-table'), worst: n.getAttribute('data-worst'), counts: JSON.parse(n.getAttribute('data-counts')!) as unknown })))
    const v = await api<TablesView>('/api/tables')
    expect(drawn.map((d) => d.table).sort()).toEqual(v.tables.map((t) => t.name).sort())
    for (const t of v.tables) expect(drawn.find((d) => d.table === t.name)).toEqual({ table: t.name, worst: t.worst, counts: t.counts })
    expect(drawn.find((d) => d.table === 'doubled')).toMatchObject({ worst: 'blocked', counts: { fresh: 3, stale: 1, blocked: 1 } })
    expect(await page.textContent('[data-testid=node][data-table=parsed]')).toContain('1 stale')
    await shot('tables')
  }, 60_000)

  it('clicking a stale row shows its causes down to the root row whose revision changed', async () => {
    await page.click('[data-testid=node][data-table=doubled]')
    await ready(page, 'rows')
    await page.selectOption('[data-testid=filter-state]', 'stale')
    await page.waitForFunction("document.querySelectorAll('[data-testid=row]').length === 1 && new URLSearchParams(location.search).get('state') === 'stale'", undefined, { timeout: TIMEOUT })
    await shot('rows')
    await page.click('[data-testid=row][data-key="2"]')
    await ready(page, 'row')
    expect(await page.textContent('[data-testid=row-state]')).toBe('stale')
    const root = page.locator('[data-testid=why-root][data-table=sources][data-key="2"]')
    expect(await root.getAttribute('data-revision')).toBe(String(await store.revision('sources', 2)))
    expect(await page.textContent('[data-testid=why]')).toContain('upstream-stale parsed 2')
    expect(await page.textContent('[data-testid=why]')).toMatch(/input-changed sources 2 \(revision \d+ → \d+\)/)
    // The page's state is its URL: opening it again shows the same row.
    expect(new URL(page.url()).searchParams.get('view')).toBe('row')
    await shot('row')
  }, 60_000)

  it('the lineage and affected lists are the ones the store reports', async () => {
    await page.goto(new URL('?view=row&table=parsed&key=2&depth=1', server.url).href)
    await ready(page, 'row')
    const listed = async (testid: string) => page.$$eval(`[data-testid=${testid}] > li`, (ls) => ls.map((l) => ({ table: l.getAttribute('data-table'), key: JSON.parse(l.getAttribute('data-key')!) as unknown })))
    const v = await api<RowView>('/api/row?table=parsed&key=2')
    expect(await listed('lineage')).toEqual(v.lineage)
    expect(await listed('lineage')).toEqual([{ table: 'sources', key: 2 }])
    const affected = (await store.affected('sources', 2)).filter((r) => r.table === 'doubled')
    expect(await listed('affected')).toEqual(affected)
  }, 60_000)

  it('a refresh from the page makes the row fresh', async () => {
    await page.goto(new URL('?view=row&table=doubled&key=2', server.url).href)
    await ready(page, 'row')
    await page.click('[data-testid=refresh-row]')
    await page.waitForFunction("document.querySelector('[data-testid=job]')?.getAttribute('data-state') === 'done'", undefined, { timeout: TIMEOUT })
    await page.waitForFunction("document.querySelector('[data-testid=row-state]')?.textContent === 'fresh'", undefined, { timeout: TIMEOUT })
    expect((await store.status('doubled', 2)).state).toBe('fresh')
  }, 60_000)

  it('shows a named query with each row\'s source rows, highlighting one source on hover', async () => {
    await page.goto(new URL('?view=query&name=lines', server.url).href)
    await ready(page, 'query')
    expect(await page.locator('[data-testid=query-rows] tr[data-sources]').count()).toBe(5)
    // One source row: the result rows it feeds (ada wrote sources 1, 3 and 5).
    await page.hover('[data-testid=query-rows] .chip[data-table=authors] >> nth=0')
    expect(await page.locator('[data-testid=query-rows] tr.hl').count()).toBe(3)
    expect(await page.locator('[data-testid=query-rows] .chip.hl[data-table=authors]').count()).toBe(3)
    expect(await page.locator('.chip.hl[data-table=sources]').count()).toBe(0)
    await shot('query')
    // A whole source table: every row it feeds.
    await page.hover('[data-testid=source-table][data-table=sources]')
    expect(await page.locator('[data-testid=query-rows] tr.hl').count()).toBe(5)
  }, 60_000)
})
