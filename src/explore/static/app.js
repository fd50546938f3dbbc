// The explorer page: draws the JSON of the explorer's server (src/explore/server.ts). The state
// of the page is its URL (?view=tables|rows|row|queries|query and the view's parameters), so a
// link can be shared; navigation pushes a new URL and re-renders.
// Views: tables (the graph laid out by the server with dagre, and a list of every table),
// rows (a derived table's rows, filtered, paginated), row (value, state, cause tree, lineage,
// affected), queries / query (a named query with the source rows of each result row).

const main = document.getElementById('main')
const jobEl = document.getElementById('job')
const STATES = ['fresh', 'stale', 'missing', 'failed', 'blocked', 'running']

/** Create an element: h('a', { href: '?x', class: 'y', onclick }, child, ...). */
function h(tag, attrs = {}, ...children) {
  const svg = ['svg', 'g', 'rect', 'text', 'path', 'tspan', 'title'].includes(tag)
  const el = svg ? document.createElementNS('http://www.w3.org/2000/svg', tag) : document.createElement(tag)
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v)
    else el.setAttribute(k, String(v))
  }
  for (const c of children.flat()) if (c !== undefined && c !== null && c !== false) el.append(c instanceof Node ? c : document.createTextNode(String(c)))
  return el
}

const showKey = (key) => (typeof key === 'string' ? key : JSON.stringify(key))

async function api(path, init) {
  // The first request may have been made by index.html already (the tables view's data).
  const early = window.lqFirst
  window.lqFirst = undefined
  const res = await (early !== undefined && early.url === path && init === undefined ? early.response : fetch(path, init))
  const body = await res.json()
  if (!res.ok) throw new Error(body.error ? `${body.error.code}: ${body.error.message}` : `HTTP ${res.status}`)
  return body
}

function params() {
  return new URLSearchParams(location.search)
}

/** Go to a URL of this page (state in the query string) and render it. */
function go(query) {
  history.pushState(null, '', `?${new URLSearchParams(Object.entries(query).filter(([, v]) => v !== undefined && v !== null && v !== '')).toString()}`)
  render()
}
window.addEventListener('popstate', () => render())

function link(text, query, attrs = {}) {
  const href = `?${new URLSearchParams(Object.entries(query).filter(([, v]) => v !== undefined && v !== '')).toString()}`
  return h('a', { href, class: 'row-link', ...attrs, onclick: (e) => { e.preventDefault(); go(query) } }, text)
}

const rowLink = (table, key, depth) => link(`${table} ${showKey(key)}`, { view: 'row', table, key: JSON.stringify(key), depth }, { 'data-testid': 'row-link', 'data-table': table, 'data-key': JSON.stringify(key) })

function countsText(t) {
  if (t.kind === 'root') return `${t.rows} rows`
  const parts = STATES.filter((s) => t.counts[s] > 0).map((s) => `${t.counts[s]} ${s}`)
  for (const [s, n] of Object.entries(t.counts)) if (!STATES.includes(s) && n > 0) parts.push(`${n} ${s}`)
  return parts.length === 0 ? 'empty' : parts.join(' · ')
}

let renderId = 0
async function render() {
  const id = ++renderId
  const p = params()
  const view = p.get('view') ?? 'tables'
  for (const a of document.querySelectorAll('[data-nav]')) a.style.fontWeight = a.dataset.nav === view || (view === 'query' && a.dataset.nav === 'queries') ? '700' : '400'
  let content
  try {
    if (view === 'tables') content = await tablesView(p)
    else if (view === 'rows') content = await rowsView(p)
    else if (view === 'row') content = await rowView(p)
    else if (view === 'queries') content = await queriesView()
    else if (view === 'query') content = await queryView(p)
    else content = h('p', { class: 'error' }, `unknown view ${view}`)
  } catch (e) {
    content = h('p', { class: 'error', 'data-testid': 'error' }, String(e.message ?? e))
  }
  if (id !== renderId) return // a newer render started meanwhile
  main.replaceChildren(content)
  main.dataset.view = view
  main.dataset.ready = String(id)
}

// ---------------------------------------------------------------- tables

async function tablesView(p) {
  const focus = p.get('focus') ?? undefined
  const v = await api(`/api/tables${focus ? `?focus=${encodeURIComponent(focus)}` : ''}`)
  const byName = new Map(v.tables.map((t) => [t.name, t]))
  const d = v.drawn
  const svg = h('svg', { width: d.width, height: d.height, viewBox: `0 0 ${d.width} ${d.height}`, 'data-testid': 'graph' })
  svg.append(h('defs'))
  svg.firstChild.innerHTML = '<marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" fill="#90a4ae"/></marker>'
  for (const e of d.edges) {
    const pts = e.points.map((q, i) => `${i === 0 ? 'M' : 'L'} ${q.x} ${q.y}`).join(' ')
    svg.append(h('path', { class: 'edge', d: pts, 'marker-end': 'url(#arrow)' }))
  }
  for (const n of d.nodes) {
    const t = byName.get(n.id)
    const g = h('g', {
      class: `node${t.codeChanged ? ' code-changed' : ''}`,
      transform: `translate(${n.x - n.width / 2}, ${n.y - n.height / 2})`,
      'data-testid': 'node', 'data-table': t.name, 'data-worst': t.worst, 'data-counts': JSON.stringify(t.counts), 'data-code-changed': String(t.codeChanged),
      onclick: () => (t.kind === 'derived' ? go({ view: 'rows', table: t.name }) : go({ view: 'tables', focus: t.name })),
    })
    g.append(h('rect', { class: `st-${t.worst}`, width: n.width, height: n.height, stroke: '#263238' }))
    g.append(h('text', { x: 10, y: 18, 'font-weight': 600 }, t.name, t.codeChanged ? '  ⟳ code' : ''))
    g.append(h('text', { x: 10, y: 36 }, countsText(t)))
    if (t.kind === 'derived' && t.codeChanged && t.dataStale) g.append(h('text', { x: 10, y: 52 }, 'code and data changed'))
    else if (t.kind === 'derived' && t.codeChanged) g.append(h('text', { x: 10, y: 52 }, 'code changed'))
    else if (t.kind === 'derived' && t.dataStale) g.append(h('text', { x: 10, y: 52 }, 'data changed'))
    g.append(h('title', {}, `${t.name}: ${countsText(t)}`))
    svg.append(g)
  }
  const filter = h('input', { placeholder: `filter ${v.tables.length} tables`, 'data-testid': 'table-filter' })
  const list = h('ul', { 'data-testid': 'table-list' })
  const fill = () => {
    const q = filter.value.toLowerCase()
    list.replaceChildren(...v.tables.filter((t) => t.name.toLowerCase().includes(q)).slice(0, 500).map((t) =>
      h('li', { 'data-table': t.name, onclick: () => go(v.tables.length > 100 ? { view: 'tables', focus: t.name } : t.kind === 'derived' ? { view: 'rows', table: t.name } : { view: 'tables', focus: t.name }) },
        h('span', { class: `badge st-${t.worst}` }, t.kind === 'root' ? 'root' : t.worst), ' ', t.name, t.codeChanged ? h('span', { class: 'badge code', title: 'code changed' }, ' code') : '', h('div', { class: 'note' }, countsText(t)))))
  }
  filter.addEventListener('input', fill)
  fill()
  const legend = h('div', { class: 'filters' }, ...STATES.map((s) => h('span', { class: `badge st-${s}` }, s)), h('span', { class: 'badge code' }, 'code changed (dashed)'))
  return h('div', {},
    h('h2', {}, focus ? `Tables around ${focus}` : 'Tables', focus ? h('span', {}, ' ', link('(all)', { view: 'tables' })) : ''),
    v.note ? h('p', { class: 'note', 'data-testid': 'graph-note' }, v.note) : '',
    legend,
    h('div', { class: 'layout' }, h('div', { class: 'graph' }, svg), h('div', { class: 'side' }, filter, list)))
}

// ---------------------------------------------------------------- rows

async function rowsView(p) {
  const table = p.get('table')
  const state = p.get('state') ?? ''
  const cause = p.get('cause') ?? ''
  const after = p.get('after') ?? ''
  const before = p.get('before') ?? ''
  const q = new URLSearchParams({ table, limit: '50' })
  if (state) q.set('state', state)
  if (cause) q.set('cause', cause)
  if (after) q.set('after', after)
  else if (before) q.set('before', before)
  const v = await api(`/api/rows?${q}`)
  // Pages by keyset: the URL holds the cursor (the address after or before which the page starts).
  const nav = (patch) => go({ view: 'rows', table, state, cause, ...patch })
  const select = (name, options, value) => {
    const s = h('select', { 'data-testid': `filter-${name}`, onchange: (e) => nav({ [name]: e.target.value }) },
      h('option', { value: '' }, `any ${name}`), ...Object.entries(options).map(([k, n]) => h('option', { value: k, selected: k === value }, `${k} (${n})`)))
    return s
  }
  const rows = h('table', { class: 'rows', 'data-testid': 'rows' },
    h('tr', {}, h('th', {}, 'key'), h('th', {}, 'state'), h('th', {}, 'causes')),
    ...v.rows.map((r) => h('tr', { class: 'link', 'data-testid': 'row', 'data-key': JSON.stringify(r.key), 'data-state': r.state, onclick: () => go({ view: 'row', table, key: JSON.stringify(r.key), depth: 1 }) },
      h('td', {}, showKey(r.key)), h('td', {}, h('span', { class: `badge st-${r.state}`, title: r.lease ? `computed by ${r.lease.owner}, lease until ${new Date(r.lease.expires).toISOString()}` : undefined }, r.state)), h('td', {}, r.causes.map((c) => causeText(c)).join('; ')))))
  const refresh = h('button', { 'data-testid': 'refresh-table', onclick: () => startJob({ table }) }, `Refresh ${table}`)
  return h('div', {},
    h('h2', {}, `Rows of ${table}`, ' ', link('(graph)', { view: 'tables', focus: table })),
    h('div', { class: 'filters' }, select('state', v.states, state), select('cause', v.causes, cause), refresh),
    h('p', { class: 'note' }, `${v.total} ${v.total === 1 ? 'row' : 'rows'}${v.rows.length < v.total ? `, ${v.rows.length} on this page` : ''}`),
    rows,
    h('div', { class: 'filters' },
      after || before ? h('button', { 'data-testid': 'first', onclick: () => nav({}) }, '⇤ first') : '',
      v.prev !== null ? h('button', { 'data-testid': 'prev', onclick: () => nav({ before: v.prev }) }, '← previous') : '',
      v.next !== null ? h('button', { 'data-testid': 'next', onclick: () => nav({ after: v.next }) }, 'next →') : ''))
}

// ---------------------------------------------------------------- one row

function causeText(c) {
  const at = c.table === undefined ? '' : ` ${c.table}${c.key === undefined ? '' : ` ${showKey(c.key)}`}`
  const revs = c.oldRevision !== undefined ? ` (revision ${c.oldRevision}${c.newRevision !== undefined ? ` → ${c.newRevision}` : ''})` : ''
  const more = typeof c.message === 'string' ? `: ${c.message}` : typeof c.oldVersion === 'string' ? ` (code ${c.oldVersion} → ${c.newVersion})` : ''
  return `${c.kind}${at}${revs}${more}`
}

function treeNode(n, level) {
  if (n.kind === 'root') {
    return h('li', { 'data-testid': 'why-root', 'data-table': n.table, 'data-key': JSON.stringify(n.key), 'data-revision': n.revision ?? '' },
      rowLink(n.table, n.key), ` root row, revision ${n.revision ?? '(none: deleted)'}`)
  }
  const head = h('span', {}, rowLink(n.table, n.key), ' ', h('span', { class: `badge st-${n.state}` }, n.state), n.causes.length > 0 ? ` ${n.causes.map(causeText).join('; ')}` : '')
  if (n.inputs.length === 0) return h('li', { 'data-testid': 'why-derived', 'data-table': n.table }, head)
  const details = h('details', { open: level < 1 || n.state !== 'fresh' }, h('summary', {}, head), h('ul', { class: 'tree' }, ...n.inputs.map((c) => treeNode(c, level + 1))))
  return h('li', { 'data-testid': 'why-derived', 'data-table': n.table }, details)
}

async function rowView(p) {
  const table = p.get('table')
  const keyText = p.get('key')
  const depth = Number(p.get('depth') ?? 1)
  const v = await api(`/api/row?${new URLSearchParams({ table, key: keyText, depth: String(depth) })}`)
  const list = (rows, testid) => rows.length === 0 ? h('p', { class: 'note' }, 'none') : h('ul', { 'data-testid': testid }, ...rows.map((r) => h('li', { 'data-table': r.table, 'data-key': JSON.stringify(r.key) }, rowLink(r.table, r.key), r.depth !== undefined && r.depth > 1 ? ` (${r.depth} steps)` : '')))
  const sections = []
  if (v.kind === 'derived') {
    sections.push(h('section', {}, h('h3', {}, 'Value'), v.value ? h('pre', { 'data-testid': 'value' }, JSON.stringify(v.value, null, 2)) : h('p', { class: 'note', 'data-testid': 'value' }, 'no stored value')))
    sections.push(h('section', {}, h('h3', {}, 'Why (cause tree down to the root rows)'), h('ul', { class: 'tree', 'data-testid': 'why' }, treeNode(v.why, 0))))
  } else {
    sections.push(h('section', {}, h('h3', {}, 'Root row'), h('p', { 'data-testid': 'revision' }, `revision ${v.revision ?? '(none: deleted or never written)'}`)))
  }
  sections.push(h('section', {}, h('h3', {}, 'Lineage (root rows)'), list(v.lineage, 'lineage')))
  sections.push(h('section', {}, h('h3', {}, `Affected downstream (depth ${v.depth})`), list(v.affected, 'affected'),
    v.more ? link('show one more step', { view: 'row', table, key: keyText, depth: depth + 1 }, { 'data-testid': 'deeper' }) : ''))
  return h('div', {},
    h('h2', {}, `${table} ${showKey(v.key)} `, h('span', { class: `badge st-${v.state}`, 'data-testid': 'row-state' }, v.state), ' ',
      v.kind === 'derived' ? h('button', { 'data-testid': 'refresh-row', onclick: () => startJob({ table, key: v.key }) }, 'Refresh this row') : ''),
    v.causes.length > 0 ? h('ul', { 'data-testid': 'causes' }, ...v.causes.map((c) => h('li', { 'data-kind': c.kind }, causeText(c)))) : '',
    h('div', { class: 'cols' }, ...sections))
}

// ---------------------------------------------------------------- queries

async function queriesView() {
  const v = await api('/api/queries')
  if (v.names.length === 0) return h('p', { class: 'note' }, 'The config module exports no `queries` (see docs/explorer.md).')
  return h('div', {}, h('h2', {}, 'Named queries'), h('ul', { 'data-testid': 'queries' }, ...v.names.map((n) => h('li', {}, link(n, { view: 'query', name: n })))))
}

async function queryView(p) {
  const name = p.get('name')
  const v = await api(`/api/query?${new URLSearchParams({ name })}`)
  // Hovering a source row highlights it and the result rows it feeds; hovering a table name
  // in the header, every row of that table.
  const id = (e) => `${e.table}\u0000${JSON.stringify(e.key)}`
  const highlight = (match) => {
    for (const el of main.querySelectorAll('.chip')) el.classList.toggle('hl', match !== null && match(el.dataset.table, el.dataset.id))
    for (const el of main.querySelectorAll('tr[data-sources]')) el.classList.toggle('hl', match !== null && JSON.parse(el.dataset.sources).some(([t, i]) => match(t, i)))
  }
  const chip = (e) => h('span', { class: 'chip', 'data-table': e.table, 'data-id': id(e), onmouseenter: () => highlight((t, i) => i === id(e)), onmouseleave: () => highlight(null) }, `${e.table} ${showKey(e.key)}`)
  return h('div', {},
    h('h2', {}, `Query ${name}`),
    h('p', { class: 'note' }, `${v.rows.length} rows; sources: `, ...v.sources.map((s) => h('span', { class: 'chip', 'data-table': s, 'data-testid': 'source-table', onmouseenter: () => highlight((t) => t === s), onmouseleave: () => highlight(null) }, s))),
    h('table', { class: 'rows', 'data-testid': 'query-rows' }, h('tr', {}, h('th', {}, 'row'), h('th', {}, 'source rows')),
      ...v.rows.map((r) => h('tr', { 'data-sources': JSON.stringify(r.lineage.map((e) => [e.table, id(e)])) }, h('td', {}, h('pre', {}, JSON.stringify(r.data))), h('td', {}, ...r.lineage.map(chip))))))
}

// ---------------------------------------------------------------- refresh jobs

async function startJob(body) {
  let job
  try {
    job = await api('/api/refresh', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })
  } catch (e) {
    jobEl.textContent = `refresh failed: ${e.message}`
    return
  }
  jobEl.dataset.state = 'running'
  for (;;) {
    const p = job.progress
    jobEl.textContent = `refreshing ${body.table ?? 'everything'}${p ? `: ${p.table} ${p.done}/${p.total}${p.tableCount > 1 ? ` (table ${p.tableIndex + 1} of ${p.tableCount})` : ''}` : '…'}`
    if (job.state !== 'running') break
    await new Promise((r) => setTimeout(r, 150))
    job = await api(`/api/jobs/${job.id}`)
  }
  jobEl.textContent = job.state === 'done' ? `refreshed ${body.table ?? 'everything'}${body.key !== undefined ? ` ${showKey(body.key)}` : ''}` : `refresh failed: ${job.error.message}`
  jobEl.dataset.state = job.state
  await render()
}

document.getElementById('refresh-all').addEventListener('click', () => startJob({}))
render()
