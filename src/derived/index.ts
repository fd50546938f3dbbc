/**
 * Derived data: revisions on root tables, derived tables filled by functions, staleness with
 * causes, refresh in dependency order, demand-driven get, provenance from every root.
 * See docs/derived.md.
 */
export { openStore, Store, type Derive, type InputOf, type StoreWatchOptions } from './store.js'
export type { Watcher, WatchEvent, WakeReason } from './watch.js'
export type { ListenClient } from './wake.js'
export { joinOnRoot } from './join.js'
export { buildGraph, type GraphInput } from './graph.js'
export { codeVersion } from './version.js'
export {
  DerivedTable,
  type Cause,
  type CauseKind,
  type DeriveContext,
  type GetOptions,
  type GetResult,
  type Graph,
  type GraphEdge,
  type GraphNode,
  type RefreshOptions,
  type RefreshProgress,
  type RefreshReport,
  type RowState,
  type RowStatus,
  type SourceRow,
  type StoreOptions,
  type StoredError,
  type TableReport,
} from './types.js'
