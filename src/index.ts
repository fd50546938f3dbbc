export { LineageQueryError, type ErrorCode } from './errors.js'
export type { SType, ScalarKind, TableDef, ColumnDef } from './query/schema.js'
export {
  Q, table, Query, Table, AST,
  eq, ne, lt, le, gt, ge, and, or, not, add, sub, mul, div, mod, neg, abs, concat, lower, upper, length, like, isNull, isNotNull, in_, coalesce,
  case_, substring, trim, round, year, month, day, addDays, addMonths, addYears,
  type DecimalString, type NumLike, type Arith,
  type Expr, type ExprLike, type Coll, type Plain, type View, type RecordView, type ValueOf, type RowOf, type LineageEntry, type AnyQuery, type ElemOf, type KeyOf, type Scalar, type OrderSpec, type TableOptions,
} from './query/dsl.js'
export { type Dialect } from './query/dialect.js'
export { DateString, Timestamp, decimal, Json, canonicalJson, type JsonValue } from './query/codecs.js'
export { compile, type Compiled, type CompiledStatement } from './query/compile.js'
export { run } from './query/run.js'
export { stream, type StreamOptions } from './query/stream.js'
export { plainLineage } from './query/lineage-value.js'
export { lineage, sourceRows, groupBySource, type Annotated, type AnnotateFields, type LineageOptions, type SourceRow } from './lineage/index.js'
export { createTable, insertRows } from './query/ddl.js'
export { defineSchema, createTables, type KyselySchema, type KyselyTable, type Schema, type SchemaDialect, type DeclaredColumns } from './query/kysely-schema.js'
export { dialectOf } from './query/dialect-of.js'
export {
  openStore, Store, joinOnRoot, buildGraph, codeVersion, DerivedTable,
  type Derive, type InputOf, type GraphInput, type Cause, type CauseKind, type DeriveContext, type GetResult, type Graph, type GraphEdge, type GraphNode,
  type RefreshOptions, type RefreshProgress, type GetOptions, type RefreshReport, type RowState, type RowStatus, type StoreOptions, type StoredError, type TableReport,
  type StoreWatchOptions, type Watcher, type WatchEvent, type WakeReason, type ListenClient,
} from './derived/index.js'
export { refreshWithOpenLineage, openLineageTracker, type OpenLineageOptions, type OpenLineageTarget, type OpenLineageTracker } from './openlineage/emit.js'
export { runEvent, OPENLINEAGE_SPEC, type RunEvent, type RunEventType, type Dataset as OpenLineageDataset } from './openlineage/events.js'
