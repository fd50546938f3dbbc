/**
 * The table graph's drawing: node positions and edge routes from dagre (a layered layout,
 * left to right, as dependency graphs read), computed on the server so the page only draws.
 */
import dagre from '@dagrejs/dagre'

export interface LayoutNode {
  readonly id: string
  readonly width: number
  readonly height: number
}

export interface Layout {
  /** Node centres and sizes. */
  readonly nodes: readonly { readonly id: string; readonly x: number; readonly y: number; readonly width: number; readonly height: number }[]
  /** Edge routes as polylines. */
  readonly edges: readonly { readonly from: string; readonly to: string; readonly points: readonly { readonly x: number; readonly y: number }[] }[]
  readonly width: number
  readonly height: number
}

export function layoutGraph(nodes: readonly LayoutNode[], edges: readonly { readonly from: string; readonly to: string }[]): Layout {
  const g = new dagre.graphlib.Graph()
  g.setGraph({ rankdir: 'LR', nodesep: 18, ranksep: 60, marginx: 12, marginy: 12 })
  g.setDefaultEdgeLabel(() => ({}))
  for (const n of nodes) g.setNode(n.id, { width: n.width, height: n.height })
  for (const e of edges) g.setEdge(e.from, e.to)
  dagre.layout(g)
  const graph = g.graph()
  return {
    nodes: nodes.map((n) => {
      const p = g.node(n.id)
      return { id: n.id, x: p.x, y: p.y, width: n.width, height: n.height }
    }),
    edges: edges.map((e) => ({ from: e.from, to: e.to, points: (g.edge(e.from, e.to).points ?? []).map((p: { x: number; y: number }) => ({ x: p.x, y: p.y })) })),
    width: graph.width ?? 0,
    height: graph.height ?? 0,
  }
}
