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
import { dotOf, mermaidLabel, mermaidOf } from '../../src/derived/graph.js'
import type { GraphNode } from '../../src/derived/types.js'
import { LineageQueryError } from '../../src/errors.js'
import { eachDialect } from '../support/db.js'
import { thrown } from '../support/errors.js'

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

describe('buildGraph (pure)', () => {

  it('lists roots then derived tables as nodes, and one edge per distinct table read', () => {
    const g = buildGraph({ roots: ['r', 's'], derived: [{ name: 'a', reads: ['r', 'r', 's'] }, { name: 'b', reads: ['a'] }] })
    expect(g.nodes).toEqual([{ name: 'r', kind: 'root' }, { name: 's', kind: 'root' }, { name: 'a', kind: 'derived' }, { name: 'b', kind: 'derived' }])
    expect(g.edges).toEqual([{ from: 'r', to: 'a' }, { from: 's', to: 'a' }, { from: 'a', to: 'b' }])
    expect(g.order).toEqual(['r', 's', 'a', 'b'])
  })

  it('a table read but never declared is a schema error naming both tables and the known ones', () => {
    const e = thrown(() => buildGraph({ roots: ['r'], derived: [{ name: 'a', reads: ['r', 'nope'] }] }))
    expect(e.code).toBe('schema')
    expect(e.message).toBe('derived table `a` reads `nope`, which is neither a tracked root table nor a derived table; known tables: r, a')
    expect(e.details).toEqual({ table: 'a', reads: 'nope' })
    expect(thrown(() => buildGraph({ roots: [], derived: [{ name: 'a', reads: ['x'] }] })).message).toBe(
      'derived table `a` reads `x`, which is neither a tracked root table nor a derived table; known tables: a',
    )
  })

  it('a cycle is a schema error that lists it, first table repeated at the end', () => {
    const e = thrown(() => buildGraph({ roots: ['r'], derived: [{ name: 'a', reads: ['r', 'c'] }, { name: 'b', reads: ['a'] }, { name: 'c', reads: ['b'] }] }))
    expect(e.code).toBe('schema')
    expect(e.message).toBe('derived tables form a cycle: a -> c -> b -> a; a derived table cannot (transitively) read itself')
    expect(e.details).toEqual({ cycle: ['a', 'c', 'b', 'a'] })
    // A table that reads into a cycle without being on it is not named in the cycle.
    const tail = thrown(() => buildGraph({ roots: ['r'], derived: [{ name: 'a', reads: ['b'] }, { name: 'b', reads: ['c'] }, { name: 'c', reads: ['b', 'r'] }] }))
    expect(tail.details).toEqual({ cycle: ['b', 'c', 'b'] })
    const self = thrown(() => buildGraph({ roots: [], derived: [{ name: 'x', reads: ['x'] }] }))
    expect(self.details).toEqual({ cycle: ['x', 'x'] })
    // A path that reaches a table twice without a cycle (a diamond) is not one.
    const diamond = buildGraph({ roots: ['r'], derived: [{ name: 'd', reads: ['b', 'c'] }, { name: 'b', reads: ['a'] }, { name: 'c', reads: ['a'] }, { name: 'a', reads: ['r'] }] })
    expect(diamond.order).toEqual(['r', 'a', 'b', 'c', 'd'])
  })

  it('draws the whole graph: Mermaid with cylinders for roots, DOT with a label only where it differs from the name', () => {
    const g = buildGraph({ roots: ['src'], derived: [{ name: 'my-ast', reads: ['src'] }] })
    expect(g.mermaid).toBe(['flowchart LR', '  t0_src[("src")]', '  t1_my_ast["my-ast"]', '  t0_src --> t1_my_ast'].join('\n'))
    expect(g.dot).toBe(['digraph lineage {', '  rankdir=LR;', '  "src" [shape=cylinder];', '  "my-ast" [shape=box];', '  "src" -> "my-ast";', '}'].join('\n'))
    const label = (n: GraphNode) => (n.kind === 'root' ? `${n.name} (3 rows)` : n.name)
    expect(mermaidOf(g.nodes, g.edges, label)).toBe(['flowchart LR', '  t0_src[("src (3 rows)")]', '  t1_my_ast["my-ast"]', '  t0_src --> t1_my_ast'].join('\n'))
    expect(dotOf(g.nodes, g.edges, label)).toBe(['digraph lineage {', '  rankdir=LR;', '  "src" [shape=cylinder, label="src (3 rows)"];', '  "my-ast" [shape=box];', '  "src" -> "my-ast";', '}'].join('\n'))
  })

  it('DOT escapes backslashes, quotes and line breaks; Mermaid writes CRLF as <br> too', () => {
    const nodes: GraphNode[] = [{ name: 'a\\b"c', kind: 'root' }, { name: 'd', kind: 'derived' }]
    const out = dotOf(nodes, [{ from: 'a\\b"c', to: 'd' }], (n) => (n.kind === 'root' ? 'x\ny\r\nz' : n.name))
    expect(out).toContain('  "a\\\\b\\"c" [shape=cylinder, label="x\\ny\\nz"];')
    expect(out).toContain('  "a\\\\b\\"c" -> "d";')
    expect(mermaidLabel('x\r\ny\nz')).toBe('x<br>y<br>z')
    expect(mermaidLabel('##""')).toBe('#35;#35;#quot;#quot;')
  })

  it('a drawing with an edge to a table that is not a node is a schema error naming it', () => {
    let e: unknown
    try {
      mermaidOf([{ name: 'a', kind: 'root' }], [{ from: 'a', to: 'ghost' }])
    } catch (x) {
      e = x
    }
    expect(e).toBeInstanceOf(LineageQueryError)
    expect((e as LineageQueryError).code).toBe('schema')
    expect((e as LineageQueryError).message).toBe('graph edge names `ghost`, which is not a node')
    expect((e as LineageQueryError).details).toEqual({ table: 'ghost' })
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
