/**
 * The dependency graph as a pure function of the declarations: which table feeds which, a
 * check that there is no cycle (the error names it), a topological order, and drawings
 * (Mermaid, Graphviz DOT).
 */
import { LineageQueryError } from '../errors.js'
import type { Graph, GraphEdge, GraphNode } from './types.js'

export interface GraphInput {
  readonly roots: readonly string[]
  /** Each derived table with the tables it reads (roots or derived). */
  readonly derived: readonly { readonly name: string; readonly reads: readonly string[] }[]
}

/**
 * Build the graph; throws a `schema` error for a table read but never declared, or for a
 * cycle (`details.cycle` lists it, first table repeated at the end).
 *
 * @example
 * ```ts
 * buildGraph({ roots: ['src'], derived: [{ name: 'ast', reads: ['src'] }, { name: 'ir', reads: ['ast'] }] }).order
 * // ['src', 'ast', 'ir']
 * ```
 */
export function buildGraph(input: GraphInput): Graph {
  const nodes: GraphNode[] = [...input.roots.map((name) => ({ name, kind: 'root' as const })), ...input.derived.map((d) => ({ name: d.name, kind: 'derived' as const }))]
  const known = new Set(nodes.map((n) => n.name))
  const edges: GraphEdge[] = []
  const readsOf = new Map<string, readonly string[]>()
  for (const d of input.derived) {
    readsOf.set(d.name, d.reads)
    for (const r of new Set(d.reads)) {
      if (!known.has(r)) {
        throw new LineageQueryError('schema', `derived table \`${d.name}\` reads \`${r}\`, which is neither a tracked root table nor a derived table; known tables: ${[...known].join(', ') || '(none)'}`, {
          table: d.name,
          reads: r,
        })
      }
      edges.push({ from: r, to: d.name })
    }
  }
  const order = topoOrder(nodes.map((n) => n.name), readsOf)
  return { nodes, edges, order, mermaid: mermaid(nodes, edges), dot: dot(nodes, edges) }
}

/** Depth-first topological order (inputs before readers); a back edge is a cycle, reported by name. */
function topoOrder(names: readonly string[], readsOf: ReadonlyMap<string, readonly string[]>): string[] {
  const order: string[] = []
  const state = new Map<string, 'visiting' | 'done'>()
  const stack: string[] = []
  const visit = (n: string): void => {
    const s = state.get(n)
    if (s === 'done') return
    if (s === 'visiting') {
      const cycle = [...stack.slice(stack.indexOf(n)), n]
      throw new LineageQueryError('schema', `derived tables form a cycle: ${cycle.join(' -> ')}; a derived table cannot (transitively) read itself`, { cycle })
    }
    state.set(n, 'visiting')
    stack.push(n)
    for (const r of readsOf.get(n) ?? []) visit(r)
    stack.pop()
    state.set(n, 'done')
    order.push(n)
  }
  for (const n of names) visit(n)
  return order
}


/**
 * Mermaid flowchart. Node ids are generated (`t<index>_<name>`, characters other than
 * letters, digits and `_` replaced by `_`), never the bare table name: names such as `end`,
 * `graph`, `class` or `subgraph` are Mermaid keywords and break the parse as ids. The name is
 * the node's quoted label, with `#` and `"` written as Mermaid entity codes (`#35;`,
 * `#quot;`), the only characters that end or escape a quoted label.
 *
 * `label` gives a node's text (default: its name), e.g. with row counts.
 */
export function mermaidOf(nodes: readonly GraphNode[], edges: readonly GraphEdge[], label: (n: GraphNode) => string = (n) => n.name): string {
  const ids = new Map(nodes.map((n, i) => [n.name, `t${i}_${n.name.replace(/[^A-Za-z0-9_]/g, '_')}`]))
  const id = (name: string): string => ids.get(name) ?? assertKnown(name)
  const lines = ['flowchart LR']
  for (const n of nodes) lines.push(n.kind === 'root' ? `  ${id(n.name)}[("${mermaidLabel(label(n))}")]` : `  ${id(n.name)}["${mermaidLabel(label(n))}"]`)
  for (const e of edges) lines.push(`  ${id(e.from)} --> ${id(e.to)}`)
  return lines.join('\n')
}

/** Text inside a quoted Mermaid label: `#` and `"` as entity codes, line breaks as `<br>`. */
export const mermaidLabel = (s: string): string => s.replace(/#/g, '#35;').replace(/"/g, '#quot;').replace(/\r?\n/g, '<br>')

function assertKnown(name: string): never {
  throw new LineageQueryError('schema', `graph edge names \`${name}\`, which is not a node`, { table: name })
}

const mermaid = (nodes: readonly GraphNode[], edges: readonly GraphEdge[]): string => mermaidOf(nodes, edges)

/** Graphviz DOT; every id is a quoted string, so any name is legal. `label` as for `mermaidOf`. */
export function dotOf(nodes: readonly GraphNode[], edges: readonly GraphEdge[], label: (n: GraphNode) => string = (n) => n.name): string {
  const q = (s: string): string => s.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\r?\n/g, '\\n')
  const lines = ['digraph lineage {', '  rankdir=LR;']
  for (const n of nodes) {
    const text = label(n)
    lines.push(`  "${q(n.name)}" [shape=${n.kind === 'root' ? 'cylinder' : 'box'}${text === n.name ? '' : `, label="${q(text)}"`}];`)
  }
  for (const e of edges) lines.push(`  "${q(e.from)}" -> "${q(e.to)}";`)
  lines.push('}')
  return lines.join('\n')
}

const dot = (nodes: readonly GraphNode[], edges: readonly GraphEdge[]): string => dotOf(nodes, edges)
