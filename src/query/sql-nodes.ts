/**
 * The one module that touches Kysely's operation-node factories (marked internal by Kysely and
 * liable to move between versions; the version is pinned in package.json). `lower.ts` builds
 * SQL only through these functions; Kysely's dialect compilers print it.
 */
import {
  type AggregateFunctionNode,
  type CollateNode,
  createQueryId,
  type IdentifierNode,
  type LimitNode,
  type OffsetNode,
  type OrderByItemNode,
  type OrderByNode,
  type ParensNode,
  type RawNode,
  PostgresQueryCompiler,
  type ReferenceNode,
  type SelectAllNode,
  type SelectionNode,
  SelectQueryNode,
  type SetOperationNode,
  SqliteQueryCompiler,
  type TableNode,
  type ValueNode,
  type CompiledQuery,
  type OperationNode,
  type Operator,
} from 'kysely'
import type { Dialect } from './dialect.js'

export type Node = OperationNode
export type Select = SelectQueryNode

// Nodes are built as plain object literals of Kysely's node interfaces: the factories freeze
// every node, which was the largest single cost of compiling (measured: ~18% of lowering).
const ident = (name: string): IdentifierNode => ({ kind: 'IdentifierNode', name })
const tableNode = (name: string): TableNode => ({ kind: 'TableNode', table: { kind: 'SchemableIdentifierNode', identifier: ident(name) } })
/** `node as "name"` as one raw node (the text of an `AliasNode`); `name` kept for `selectionNames`. */
interface AliasRaw extends RawNode { readonly name: string }
const alias = (node: Node, name: string): Node => ({ kind: 'RawNode', sqlFragments: ['', ` as ${quoted(name)}`], parameters: [node], name }) as AliasRaw
const collateNode = (name: string): CollateNode => ({ kind: 'CollateNode', collation: ident(name) })

/**
 * A quoted identifier as Kysely's SQLite and PostgreSQL compilers print one (wrapped in `"`,
 * a `"` inside doubled). Column references and table items are printed from this text as one
 * raw node: a `ReferenceNode` was six node visits in Kysely's printer, and they are the most
 * frequent nodes of a statement.
 */
const quoted = (name: string): string => (name.includes('"') ? `"${name.replaceAll('"', '""')}"` : `"${name}"`)
const rawText = (text: string): RawNode => ({ kind: 'RawNode', sqlFragments: [text], parameters: [] })

export const col = (table: string, column: string): Node => rawText(`${quoted(table)}.${quoted(column)}`)
export const param = (value: unknown): Node => ({ kind: 'ValueNode', value }) as ValueNode
export const literal = (value: string | number | null): Node => ({ kind: 'ValueNode', value, immediate: true }) as ValueNode

/**
 * Operators, connectives and function calls are raw nodes holding their operands: the text
 * Kysely's compilers print for the `ParensNode`/`BinaryOperationNode`/`OperatorNode` (or
 * `AndNode` chain, `FunctionNode`, ...) they stand for, in one node visit instead of three or
 * more (node visits were most of printing). `paren` marks a raw node whose text is already
 * parenthesised, so `parens` does not wrap it again (as it did not wrap a `ParensNode`).
 */
interface ParenRaw extends RawNode { readonly paren: true }
const rawParen = (sqlFragments: readonly string[], parameters: readonly Node[]): Node => ({ kind: 'RawNode', sqlFragments, parameters, paren: true }) as ParenRaw
/** `open p1 sep p2 sep ... close` as one raw node. */
function rawList(open: string, items: readonly Node[], sep: string, close: string, paren = false): Node {
  if (items.length === 0) return paren ? rawParen([open + close], []) : rawText(open + close)
  const fragments: string[] = [open]
  for (let i = 1; i < items.length; i++) fragments.push(sep)
  fragments.push(close)
  return paren ? rawParen(fragments, items) : ({ kind: 'RawNode', sqlFragments: fragments, parameters: items } as RawNode)
}
const parenthesised = (n: Node): boolean => n.kind === 'ParensNode' || (n as Partial<ParenRaw>).paren === true
export const parens = (n: Node): Node => (parenthesised(n) ? n : ({ kind: 'ParensNode', node: n } as ParensNode))
/** `(l op r)`. */
export const binary = (l: Node, op: Operator, r: Node): Node => rawParen(fragmentsOnce(binaryText, op, binaryOf), [l, r])
// The fragments of `(l op r)` per operator and of `cast(n as type)` per type, built once (nodes
// are never modified: one array serves them all).
const binaryText = new Map<Operator, readonly string[]>()
const castText = new Map<CastType, readonly string[]>()
const binaryOf = (op: Operator): string[] => ['(', ` ${op} `, ')']
const castOf = (type: CastType): string[] => ['cast(', ` as ${type})`]
function fragmentsOnce<K>(cache: Map<K, readonly string[]>, key: K, make: (key: K) => string[]): readonly string[] {
  let f = cache.get(key)
  if (f === undefined) cache.set(key, (f = Object.freeze(make(key))))
  return f
}
/** `(op n)`, `(-n)` for minus (as Kysely prints a unary operation). */
export const unary = (op: Operator, n: Node): Node => rawParen([op === '-' ? '(-' : `(${op} `, ')'], [n])
/** `name(a1, a2, ...)`. */
export const fn = (name: string, args: readonly Node[]): Node => rawList(`${name}(`, args, ', ', ')')
export const agg = (name: string, args: readonly Node[], opts: { readonly distinct?: boolean; readonly filter?: Node | undefined } = {}): Node =>
  ({
    kind: 'AggregateFunctionNode',
    func: name,
    aggregated: args,
    ...(opts.distinct === true ? { distinct: true } : {}),
    ...(opts.filter === undefined ? {} : { filter: { kind: 'WhereNode', where: opts.filter } }),
  }) as AggregateFunctionNode
/** `lateral <subquery>` (a FROM item that reads earlier FROM items). */
export const lateral = (sub: Node): Node => ({ kind: 'RawNode', sqlFragments: ['lateral ', ''], parameters: [sub] }) as RawNode
/** `case when cond then value end` (NULL otherwise). */
export const caseWhen = (cond: Node, value: Node): Node => ({ kind: 'RawNode', sqlFragments: ['case when ', ' then ', ' end'], parameters: [cond, value] }) as RawNode
export const countAll = (): Node => agg('count', [{ kind: 'SelectAllNode' } as SelectAllNode])
export type CastType = 'bigint' | 'integer' | 'text' | 'boolean' | 'real' | 'double precision' | 'json' | 'jsonb' | 'date' | 'timestamptz' | 'numeric' | 'interval'
/** `cast(n as type)`. */
export const cast = (n: Node, type: CastType): Node => ({ kind: 'RawNode', sqlFragments: fragmentsOnce(castText, type, castOf), parameters: [n] }) as RawNode
/** `(case when c1 then v1 ... else e end)`. */
export function caseOf(whens: readonly (readonly [Node, Node])[], otherwise: Node): Node {
  // (without a when, `(case  else e end)`, as Kysely printed a CaseNode with an empty list)
  const fragments: string[] = [whens.length === 0 ? '(case  else ' : '(case when ']
  const parameters: Node[] = []
  whens.forEach(([condition, result], i) => {
    fragments.push(' then ', i + 1 < whens.length ? ' when ' : ' else ')
    parameters.push(condition, result)
  })
  fragments.push(' end)')
  parameters.push(otherwise)
  return rawParen(fragments, parameters)
}
/** `(v1, v2, ...)`. */
export const valueList = (items: readonly Node[]): Node => rawList('(', items, ', ', ')')

/** `a and b and ...` (parenthesised as a whole). */
export function and(items: readonly Node[]): Node {
  return items.length === 1 ? parens(items[0]!) : rawList('(', items, ' and ', ')', true)
}
/** `x between lo and hi` (parenthesised). */
export const between = (x: Node, lo: Node, hi: Node): Node => rawParen(['(', ' between ', ' and ', ')'], [x, lo, hi])
/** `a or b or ...` (parenthesised as a whole). */
export function or(items: readonly Node[]): Node {
  return items.length === 1 ? parens(items[0]!) : rawList('(', items, ' or ', ')', true)
}
/** `expr collate "name"` as an expression (Kysely has no expression node for it). */
export function collate(n: Node, name: string): Node {
  return rawParen(['(', ` collate ${quoted(name)})`], [n])
}

// (A selection is its aliased expression: Kysely prints a `SelectionNode` as its content.)
const selection = (s: { readonly expr: Node; readonly alias: string }): SelectionNode => alias(s.expr, s.alias) as unknown as SelectionNode

/** The column aliases a select (built by `select` or `selectFromSubquery`) selects, in order. */
export const selectionNames = (q: Select): string[] => (q.selections ?? []).map((sel) => (sel as unknown as AliasRaw).name)

/**
 * A FROM item: a table, or a derived table (a subquery) under an alias, or `right` joined to
 * the items `before` it by a left outer join: `b1 cross join b2 ... left join right on on`
 * (one join tree, so `on` may read every item of `before` on both dialects).
 */
export type FromItem =
  | { readonly table: string; readonly alias: string }
  | { readonly sub: Node; readonly alias: string }
  | { readonly before: readonly FromItem[]; readonly right: FromItem; readonly on: Node }

function fromNode(f: FromItem): Node {
  if ('table' in f) return rawText(`${quoted(f.table)} as ${quoted(f.alias)}`)
  if ('sub' in f) return alias(f.sub, f.alias)
  const items = [...f.before.map(fromNode), fromNode(f.right), f.on]
  const fragments = ['', ...f.before.slice(1).map(() => ' cross join '), ' left join ', ' on ', '']
  return { kind: 'RawNode', sqlFragments: fragments, parameters: items } as RawNode
}

export interface SelectParts {
  readonly from: readonly FromItem[]
  readonly selections: readonly { readonly expr: Node; readonly alias: string }[]
  readonly where: readonly Node[]
  /** Further FROM items after the tables, already aliased (lateral items). */
  readonly extra?: readonly Node[]
  /** `group by` items (expressions, or output positions as integer literals). */
  readonly groupBy?: readonly Node[]
  readonly having?: readonly Node[]
  /** `select distinct`. */
  readonly distinct?: boolean
}

/** `select [distinct] e1 as a1, ... from t1 as g1, ... where c1 and ... group by ... having ...`. */
export function select(parts: SelectParts): Select {
  const node: { -readonly [K in keyof SelectQueryNode]: SelectQueryNode[K] } = {
    kind: 'SelectQueryNode',
    selections: parts.selections.map(selection),
  }
  if (parts.distinct === true) node.frontModifiers = [{ kind: 'SelectModifierNode', modifier: 'Distinct' }]
  const froms: Node[] = parts.from.map(fromNode)
  if (parts.extra !== undefined) froms.push(...parts.extra)
  if (froms.length > 0) node.from = { kind: 'FromNode', froms }
  if (parts.where.length > 0) node.where = { kind: 'WhereNode', where: parts.where.length === 1 ? parts.where[0]! : and(parts.where) }
  if (parts.groupBy !== undefined && parts.groupBy.length > 0) node.groupBy = { kind: 'GroupByNode', items: parts.groupBy.map((g) => ({ kind: 'GroupByItemNode', groupBy: g })) }
  if (parts.having !== undefined && parts.having.length > 0) node.having = { kind: 'HavingNode', having: parts.having.length === 1 ? parts.having[0]! : and(parts.having) }
  return node
}

/** `with "n1" as (q1), ... <select>`. */
export function withCtes(q: Select, ctes: readonly { readonly name: string; readonly select: Select }[]): Select {
  return {
    ...q,
    with: {
      kind: 'WithNode',
      expressions: ctes.map((c) => ({
        kind: 'CommonTableExpressionNode',
        name: { kind: 'CommonTableExpressionNameNode', table: tableNode(c.name) },
        expression: c.select,
      })),
    } as NonNullable<SelectQueryNode['with']>,
  }
}

/** `node as "name"`. */
export const aliased = (node: Node, name: string): Node => alias(node, name)

/** `select <selections> from (<sub>) as alias`. */
export function selectFromSubquery(sub: Node, subAlias: string, selections: readonly { readonly expr: Node; readonly alias: string }[]): Select {
  return {
    kind: 'SelectQueryNode',
    from: { kind: 'FromNode', froms: [alias(sub, subAlias)] },
    selections: selections.map(selection),
  }
}

/** Most arms of one compound select (SQLite's default limit is 500). */
const MAX_ARMS = 400

/**
 * `q1 union all q2 union all ...`. Longer unions (a `for` over unions distributes into the
 * product of their arms) are nested as `select cols from (chunk) as "#uN"` in chunks.
 */
export function unionAll(parts: readonly Select[]): Select {
  const [first, ...rest] = parts
  if (first === undefined) throw new Error('unionAll of nothing')
  if (rest.length === 0) return first
  if (parts.length > MAX_ARMS) {
    const names = selectionNames(first)
    const chunks: Select[] = []
    for (let i = 0; i < parts.length; i += MAX_ARMS) {
      const alias = `#u${i / MAX_ARMS}`
      chunks.push(selectFromSubquery(unionAll(parts.slice(i, i + MAX_ARMS)), alias, names.map((n) => ({ expr: col(alias, n), alias: n }))))
    }
    return unionAll(chunks)
  }
  return { ...first, setOperations: rest.map((p): SetOperationNode => ({ kind: 'SetOperationNode', operator: 'union', expression: p, all: true })) }
}

export interface OrderItem {
  readonly expr: Node
  readonly dir: 'asc' | 'desc'
  readonly collation?: string | undefined
}

/** `order by e1 asc nulls first, ...` (plain node literals, as above: Kysely's factories freeze each node). */
function orderBy(order: readonly OrderItem[]): OrderByNode {
  return {
    kind: 'OrderByNode',
    items: order.map((o): OrderByItemNode => {
      const item: { -readonly [K in keyof OrderByItemNode]: OrderByItemNode[K] } = {
        kind: 'OrderByItemNode',
        orderBy: o.expr,
        direction: { kind: 'RawNode', sqlFragments: [o.dir], parameters: [] } as RawNode,
        nulls: o.dir === 'asc' ? 'first' : 'last',
      }
      if (o.collation !== undefined) item.collation = collateNode(o.collation)
      return item
    }),
  }
}

export function withOrderAndLimit(q: Select, order: readonly OrderItem[], limit: Node | undefined, offset: Node | undefined): Select {
  const node: { -readonly [K in keyof SelectQueryNode]: SelectQueryNode[K] } = { ...q }
  if (order.length > 0) node.orderBy = orderBy(order)
  if (limit !== undefined) node.limit = { kind: 'LimitNode', limit } as LimitNode
  if (offset !== undefined) node.offset = { kind: 'OffsetNode', offset } as OffsetNode
  return node
}

/** An aggregate taking its rows in an order: `name(args order by ...)`. */
export function aggOrdered(name: string, args: readonly Node[], order: readonly OrderItem[]): Node {
  const a: { -readonly [K in keyof AggregateFunctionNode]: AggregateFunctionNode[K] } = { kind: 'AggregateFunctionNode', func: name, aggregated: args }
  if (order.length > 0) a.orderBy = orderBy(order)
  return a
}

export const columnRef = (column: string): Node => ({ kind: 'ReferenceNode', column: { kind: 'ColumnNode', column: ident(column) } }) as ReferenceNode

// Identifiers are quoted by doubling `"`; most have none, and the regex replace of every
// identifier was a visible share of printing: the same text without the regex when there is none.
class SqliteCompiler extends SqliteQueryCompiler {
  protected override sanitizeIdentifier(identifier: string): string {
    return identifier.includes('"') ? super.sanitizeIdentifier(identifier) : identifier
  }
}
class PostgresCompiler extends PostgresQueryCompiler {
  protected override sanitizeIdentifier(identifier: string): string {
    return identifier.includes('"') ? super.sanitizeIdentifier(identifier) : identifier
  }
}
const compilers = { sqlite: new SqliteCompiler(), postgres: new PostgresCompiler() }

/** Print a select with Kysely's compiler for `dialect`. */
export function print(q: Select, dialect: Dialect): CompiledQuery {
  return compilers[dialect].compileQuery(q, createQueryId())
}
