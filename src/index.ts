export { LineageQueryError, type ErrorCode } from './errors.js'
export type { SType, ScalarKind, TableDef, ColumnDef } from './query/schema.js'
export {
  Q, table, Query, Table, AST,
  eq, ne, lt, le, gt, ge, and, or, not, add, sub, mul, div, mod, neg, abs, concat, lower, upper, length, like, isNull, isNotNull, in_, coalesce,
  type Expr, type ExprLike, type Coll, type Plain, type View, type RecordView, type ValueOf, type RowOf, type LineageEntry, type AnyQuery, type ElemOf, type KeyOf, type Scalar, type OrderSpec, type TableOptions,
} from './query/dsl.js'
export { type Dialect } from './query/dialect.js'
export { compile, type Compiled, type CompiledStatement } from './query/compile.js'
export { run } from './query/run.js'
export { lineage, sourceRows, groupBySource, type Annotated, type AnnotateFields, type SourceRow } from './lineage/index.js'
export { createTable, insertRows } from './query/ddl.js'
export { dialectOf } from './query/dialect-of.js'
