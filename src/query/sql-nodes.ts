/**
 * The one module that touches Kysely's operation-node factories (marked internal by Kysely and
 * liable to move between versions; the version is pinned in package.json). `lower.ts` builds
 * SQL only through these functions; Kysely's dialect compilers print it.
 */
import {
  AggregateFunctionNode,
  AliasNode,
  AndNode,
  BinaryOperationNode,
  CastNode,
  CollateNode,
  ColumnNode,
  createQueryId,
  DataTypeNode,
  FromNode,
  FunctionNode,
  IdentifierNode,
  LimitNode,
  OffsetNode,
  OperatorNode,
  OrderByItemNode,
  OrderByNode,
  OrNode,
  ParensNode,
  RawNode,
  PostgresQueryCompiler,
  ReferenceNode,
  SelectAllNode,
  SelectionNode,
  SelectQueryNode,
  SetOperationNode,
  SqliteQueryCompiler,
  TableNode,
  UnaryOperationNode,
  ValueListNode,
  ValueNode,
  WhereNode,
  type CompiledQuery,
  type OperationNode,
  type Operator,
} from 'kysely'
import type { Dialect } from './dialect.js'

export type Node = OperationNode
export type Select = SelectQueryNode

export const col = (alias: string, column: string): Node => ReferenceNode.create(ColumnNode.create(column), TableNode.create(alias))
export const param = (value: unknown): Node => ValueNode.create(value)
export const literal = (value: string | number | null): Node => ValueNode.createImmediate(value)
export const parens = (n: Node): Node => (ParensNode.is(n) ? n : ParensNode.create(n))
export const binary = (l: Node, op: Operator, r: Node): Node => parens(BinaryOperationNode.create(l, OperatorNode.create(op), r))
export const unary = (op: Operator, n: Node): Node => parens(UnaryOperationNode.create(OperatorNode.create(op), n))
export const fn = (name: string, args: readonly Node[]): Node => FunctionNode.create(name, args)
export const agg = (name: string, args: readonly Node[]): Node => AggregateFunctionNode.create(name, args)
export const countAll = (): Node => AggregateFunctionNode.create('count', [SelectAllNode.create()])
export const cast = (n: Node, type: 'bigint' | 'text' | 'boolean' | 'real' | 'double precision' | 'json'): Node => CastNode.create(n, DataTypeNode.create(type))
export const valueList = (items: readonly Node[]): Node => ValueListNode.create(items)

/** `a and b and ...` (parenthesised as a whole). */
export function and(items: readonly Node[]): Node {
  return parens(items.reduce((l, r) => AndNode.create(l, r)))
}
/** `a or b or ...` (parenthesised as a whole). */
export function or(items: readonly Node[]): Node {
  return parens(items.reduce((l, r) => OrNode.create(l, r)))
}
/** `expr collate "name"` as an expression (Kysely has no expression node for it). */
export function collate(n: Node, name: string): Node {
  return parens(RawNode.create(['', ' ', ''], [n, CollateNode.create(name)]))
}

export interface SelectParts {
  readonly from: readonly { readonly table: string; readonly alias: string }[]
  readonly selections: readonly { readonly expr: Node; readonly alias: string }[]
  readonly where: readonly Node[]
}

/** `select e1 as a1, ... from t1 as g1, ... where c1 and ...`. */
export function select(parts: SelectParts): Select {
  const node: { -readonly [K in keyof SelectQueryNode]: SelectQueryNode[K] } = {
    kind: 'SelectQueryNode',
    selections: parts.selections.map((s) => SelectionNode.create(AliasNode.create(s.expr, IdentifierNode.create(s.alias)) as never)),
  }
  if (parts.from.length > 0) node.from = FromNode.create(parts.from.map((f) => AliasNode.create(TableNode.create(f.table), IdentifierNode.create(f.alias))))
  if (parts.where.length > 0) node.where = WhereNode.create(parts.where.length === 1 ? parts.where[0]! : and(parts.where))
  return node
}

/** `select <selections> from (<sub>) as alias`. */
export function selectFromSubquery(sub: Node, alias: string, selections: readonly { readonly expr: Node; readonly alias: string }[]): Select {
  return {
    kind: 'SelectQueryNode',
    from: FromNode.create([AliasNode.create(sub, IdentifierNode.create(alias))]),
    selections: selections.map((s) => SelectionNode.create(AliasNode.create(s.expr, IdentifierNode.create(s.alias)) as never)),
  }
}

/** `q1 union all q2 union all ...`. */
export function unionAll(parts: readonly Select[]): Select {
  const [first, ...rest] = parts
  if (first === undefined) throw new Error('unionAll of nothing')
  if (rest.length === 0) return first
  return { ...first, setOperations: rest.map((p) => SetOperationNode.create('union', p, true)) }
}

export interface OrderItem {
  readonly expr: Node
  readonly dir: 'asc' | 'desc'
  readonly collation?: string | undefined
}

export function withOrderAndLimit(q: Select, order: readonly OrderItem[], limit: Node | undefined, offset: Node | undefined): Select {
  const node: { -readonly [K in keyof SelectQueryNode]: SelectQueryNode[K] } = { ...q }
  if (order.length > 0) {
    node.orderBy = OrderByNode.create(
      order.map((o) =>
        OrderByItemNode.cloneWith(OrderByItemNode.create(o.expr, RawNode.createWithSql(o.dir)), {
          nulls: o.dir === 'asc' ? 'first' : 'last',
          ...(o.collation === undefined ? {} : { collation: CollateNode.create(o.collation) }),
        }),
      ),
    )
  }
  if (limit !== undefined) node.limit = LimitNode.create(limit)
  if (offset !== undefined) node.offset = OffsetNode.create(offset)
  return node
}

export const columnRef = (column: string): Node => ReferenceNode.create(ColumnNode.create(column))

const compilers = { sqlite: new SqliteQueryCompiler(), postgres: new PostgresQueryCompiler() }

/** Print a select with Kysely's compiler for `dialect`. */
export function print(q: Select, dialect: Dialect): CompiledQuery {
  return compilers[dialect].compileQuery(q, createQueryId())
}
