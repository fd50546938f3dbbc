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

const quoteLabel = (s: string): string => s.replace(/"/g, '\\"')

function mermaid(nodes: readonly GraphNode[], edges: readonly GraphEdge[]): string {
  const lines = ['flowchart LR']
  for (const n of nodes) lines.push(n.kind === 'root' ? `  ${n.name}[("${quoteLabel(n.name)}")]` : `  ${n.name}["${quoteLabel(n.name)}"]`)
  for (const e of edges) lines.push(`  ${e.from} --> ${e.to}`)
  return lines.join('\n')
}

function dot(nodes: readonly GraphNode[], edges: readonly GraphEdge[]): string {
  const lines = ['digraph lineage {', '  rankdir=LR;']
  for (const n of nodes) lines.push(`  "${quoteLabel(n.name)}" [shape=${n.kind === 'root' ? 'cylinder' : 'box'}];`)
  for (const e of edges) lines.push(`  "${quoteLabel(e.from)}" -> "${quoteLabel(e.to)}";`)
  lines.push('}')
  return lines.join('\n')
}
