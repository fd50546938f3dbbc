/**
 * OpenLineage run events (https://openlineage.io/spec/2-0-2/OpenLineage.json, `RunEvent`) for
 * refreshes of derived tables, as plain data: one run per derived table refreshed, a `START`
 * event when its scan found its work and a `COMPLETE` (or `FAIL`, `ABORT`) event when it ends;
 * the job is the derived table, the inputs the tables it reads, the output the table itself.
 * Pure functions: nothing here writes or sends (see emit.ts).
 */
import type { Graph, TableReport } from '../derived/index.js'

export const OPENLINEAGE_SPEC = 'https://openlineage.io/spec/2-0-2/OpenLineage.json'
const RUN_EVENT_SCHEMA = `${OPENLINEAGE_SPEC}#/$defs/RunEvent`
const JOB_TYPE_SCHEMA = 'https://openlineage.io/spec/facets/2-0-4/JobTypeJobFacet.json#/$defs/JobTypeJobFacet'
const ERROR_SCHEMA = 'https://openlineage.io/spec/facets/1-0-1/ErrorMessageRunFacet.json#/$defs/ErrorMessageRunFacet'

/** What the events say produced them. */
export const PRODUCER = 'https://www.npmjs.com/package/lineage-query'

export type RunEventType = 'START' | 'COMPLETE' | 'FAIL' | 'ABORT'

export interface Dataset {
  readonly namespace: string
  readonly name: string
  readonly facets?: Readonly<Record<string, unknown>>
}

/** An OpenLineage `RunEvent` (the fields this library fills). */
export interface RunEvent {
  readonly eventTime: string
  readonly eventType: RunEventType
  readonly producer: string
  readonly schemaURL: string
  readonly run: { readonly runId: string; readonly facets?: Readonly<Record<string, unknown>> }
  readonly job: { readonly namespace: string; readonly name: string; readonly facets?: Readonly<Record<string, unknown>> }
  readonly inputs: readonly Dataset[]
  readonly outputs: readonly Dataset[]
}

export interface Namespaces {
  /** The namespace of the jobs (one job per derived table). */
  readonly job: string
  /** The namespace of the datasets (the tables of the store's database). */
  readonly dataset: string
}

/** The run of one derived table's refresh. */
export interface TableRun {
  readonly table: string
  readonly runId: string
}

export interface EventDetail {
  readonly time: Date
  /** COMPLETE: the table's counts (an `lineageQuery_counts` run facet). */
  readonly counts?: TableReport
  /** FAIL / ABORT: what went wrong. */
  readonly error?: { readonly message: string; readonly stack?: string | undefined }
}

/** One run event of a derived table's refresh, its inputs and output from the store's graph. */
export function runEvent(graph: Graph, ns: Namespaces, run: TableRun, type: RunEventType, detail: EventDetail): RunEvent {
  const inputs = graph.edges.filter((e) => e.to === run.table).map((e) => ({ namespace: ns.dataset, name: e.from }))
  const facets: Record<string, unknown> = {}
  if (detail.error !== undefined) {
    facets['errorMessage'] = {
      _producer: PRODUCER,
      _schemaURL: ERROR_SCHEMA,
      message: detail.error.message,
      programmingLanguage: 'JavaScript',
      ...(detail.error.stack === undefined ? {} : { stackTrace: detail.error.stack }),
    }
  }
  if (detail.counts !== undefined) {
    // A custom facet: its name has this producer's prefix (the spec's naming rule for custom facets).
    facets['lineageQuery_counts'] = { _producer: PRODUCER, _schemaURL: `${PRODUCER}#/openlineage/counts`, ...detail.counts }
  }
  return {
    eventTime: detail.time.toISOString(),
    eventType: type,
    producer: PRODUCER,
    schemaURL: RUN_EVENT_SCHEMA,
    run: { runId: run.runId, ...(Object.keys(facets).length > 0 ? { facets } : {}) },
    job: {
      namespace: ns.job,
      name: run.table,
      facets: { jobType: { _producer: PRODUCER, _schemaURL: JOB_TYPE_SCHEMA, processingType: 'BATCH', integration: 'LINEAGE_QUERY', jobType: 'DERIVED_TABLE' } },
    },
    inputs,
    outputs: [{ namespace: ns.dataset, name: run.table }],
  }
}
