/**
 * Drawings of the dependency graph (store.graph().mermaid / .dot) for table names that are
 * Mermaid keywords (`end`, `graph`, `class`, `subgraph`): legal SQL table names (quoted) that
 * broke the Mermaid parse when used as bare node ids.
 *
 * The Mermaid checks follow the flowchart syntax as documented (mermaid.js.org, "Flowcharts -
 * Basic Syntax"): a node id is a word that must not be a keyword (`end` in particular breaks a
 * flowchart), the label goes in quotes inside the shape (`id["..."]`, `id[("...")]` for a
 * cylinder), and inside quotes `"` is written as the entity code `#quot;` (`#` starts an
 * entity code, so it is written `#35;`). The real parser needs a browser DOM, so the test
 * checks these rules line by line.
 */
import * as t from 'io-ts'
import { describe, expect, it } from 'vitest'
import { createTable, insertRows } from '../../src/query/ddl.js'
import { table } from '../../src/query/dsl.js'
import { buildGraph, openStore } from '../../src/derived/index.js'
import { mermaidLabel } from '../../src/derived/graph.js'
import { eachDialect } from '../support/db.js'

/** Keywords of Mermaid's flowchart grammar that cannot be bare node ids. */
const MERMAID_KEYWORDS = ['end', 'graph', 'flowchart', 'subgraph', 'class', 'classDef', 'click', 'style', 'linkStyle', 'direction', 'call', 'href', 'default', 'interpolate']

const ID = /^[A-Za-z][A-Za-z0-9_]*$/

/** Parses our Mermaid output by the documented rules; returns nodes (id -> label) and edges. */
function parseMermaid(text: string): { nodes: Map<string, { label: string; shape: 'cylinder' | 'box' }>; edges: [string, string][] } {
  const [head, ...lines] = text.split('\n')
  expect(head).toBe('flowchart LR')
  const nodes = new Map<string, { label: string; shape: 'cylinder' | 'box' }>()
  const edges: [string, string][] = []
  const checkId = (id: string): void => {
    expect(id).toMatch(ID)
    expect(MERMAID_KEYWORDS.map((k) => k.toLowerCase())).not.toContain(id.toLowerCase())
  }
  for (const line of lines) {
    const node = /^ {2}(\S+)(\[\("([^"]*)"\)\]|\["([^"]*)"\])$/.exec(line)
    const edge = /^ {2}(\S+) --> (\S+)$/.exec(line)
    if (node) {
      checkId(node[1]!)
      const raw = node[3] ?? node[4]!
      // Inside quotes only entity codes may use '#'.
      expect(raw.replace(/#(quot|35);/g, '')).not.toContain('#')
      nodes.set(node[1]!, { label: raw.replace(/#quot;/g, '"').replace(/#35;/g, '#'), shape: node[3] !== undefined ? 'cylinder' : 'box' })
    } else if (edge) {
      checkId(edge[1]!)
      checkId(edge[2]!)
      edges.push([edge[1]!, edge[2]!])
    } else {
      throw new Error(`not a node or edge line: ${JSON.stringify(line)}`)
    }
  }
  for (const [a, b] of edges) {
    expect(nodes.has(a)).toBe(true)
    expect(nodes.has(b)).toBe(true)
  }
  return { nodes, edges }
}

describe('graph drawings (pure)', () => {
  it('Mermaid node ids are never table names, so keyword names draw', () => {
    const g = buildGraph({ roots: ['end', 'class'], derived: [{ name: 'graph', reads: ['end'] }, { name: 'subgraph', reads: ['graph', 'class'] }] })
    const m = parseMermaid(g.mermaid)
    const byLabel = new Map([...m.nodes].map(([id, n]) => [n.label, { id, shape: n.shape }]))
    expect([...byLabel.keys()].sort()).toEqual(['class', 'end', 'graph', 'subgraph'])
    expect(byLabel.get('end')!.shape).toBe('cylinder')
    expect(byLabel.get('graph')!.shape).toBe('box')
    const named = m.edges.map(([a, b]) => `${m.nodes.get(a)!.label} -> ${m.nodes.get(b)!.label}`)
    expect(named.sort()).toEqual(['class -> subgraph', 'end -> graph', 'graph -> subgraph'])
  })

  it('Mermaid labels escape quotes and # as entity codes, line breaks as <br>', () => {
    expect(mermaidLabel('a "b" #1')).toBe('a #quot;b#quot; #35;1')
    expect(mermaidLabel('x\ny')).toBe('x<br>y')
  })

  it('DOT quotes every id', () => {
    const g = buildGraph({ roots: ['end'], derived: [{ name: 'graph', reads: ['end'] }] })
    expect(g.dot).toContain('"end" [shape=cylinder];')
    expect(g.dot).toContain('"end" -> "graph";')
  })
})

eachDialect('store.graph() with Mermaid keywords as table names', (get) => {
  it('declares, refreshes and draws tables named end, graph, class, subgraph', async () => {
    const { db } = get()
    const end = table('end', { id: t.Int, v: t.string })
    const cls = table('class', { id: t.Int, w: t.string })
    await createTable(db, end)
    await createTable(db, cls)
    await insertRows(db, end, [{ id: 1, v: 'a' }])
    await insertRows(db, cls, [{ id: 1, w: 'b' }])
    const store = await openStore(db)
    await store.track(end)
    await store.track(cls)
    const graph = store.derive({ name: 'graph', from: end, output: { u: t.string }, fn: (r) => ({ u: r.v.toUpperCase() }) })
    store.derive({ name: 'subgraph', from: graph, output: { n: t.number }, fn: (r) => ({ n: r.u.length }) })
    const report = await store.refresh()
    expect(report.totals.computed).toBe(2)
    const m = parseMermaid(store.graph().mermaid)
    const labels = new Map([...m.nodes].map(([id, n]) => [id, n.label]))
    expect([...labels.values()].sort()).toEqual(['class', 'end', 'graph', 'subgraph'])
    expect(m.edges.map(([a, b]) => `${labels.get(a)} -> ${labels.get(b)}`).sort()).toEqual(['end -> graph', 'graph -> subgraph'])
  })
})
