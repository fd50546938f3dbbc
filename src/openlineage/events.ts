/**
 * OpenLineage run events (https://openlineage.io/spec/2-0-2/OpenLineage.json, `RunEvent`) for
 * refreshes of derived tables, as plain data: one run per derived table refreshed, a `START`
 * event when its scan found its work and a `COMPLETE` (or `FAIL`, `ABORT`) event when it ends;
 * the job is the derived table, the inputs the tables it reads, the output the table itself.
 * Pure functions: nothing here writes or sends (see emit.ts).
 */
import type { Graph, TableReport } from '../derived/index.js'
import type { ColumnReads } from '../lineage/columns.js'

export const OPENLINEAGE_SPEC = 'https://openlineage.io/spec/2-0-2/OpenLineage.json'
const RUN_EVENT_SCHEMA = `${OPENLINEAGE_SPEC}#/$defs/RunEvent`
const JOB_TYPE_SCHEMA = 'https://openlineage.io/spec/facets/2-0-4/JobTypeJobFacet.json#/$defs/JobTypeJobFacet'
const ERROR_SCHEMA = 'https://openlineage.io/spec/facets/1-0-1/ErrorMessageRunFacet.json#/$defs/ErrorMessageRunFacet'
const COLUMN_LINEAGE_SCHEMA = 'https://openlineage.io/spec/facets/1-2-0/ColumnLineageDatasetFacet.json#/$defs/ColumnLineageDatasetFacet'

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
  /** The table's column lineage, when its source is a comprehension (`store.columnLineage`): a `columnLineage` facet on the output. */
  readonly columns?: { readonly outputs: readonly string[]; readonly reads: ColumnReads }
}

/**
 * The OpenLineage `columnLineage` dataset facet of a derived table whose source is a
 * comprehension. `fn` computes the output columns from the yielded record, so each output
 * column lists every column a yield field reads (DIRECT, subtype TRANSFORMATION; a nested
 * collection's conditions INDIRECT), and the facet's `dataset` lists the columns the
 * comprehension's conditions, grouping and ordering read (INDIRECT: FILTER, GROUP_BY, SORT).
 */
export function columnLineageFacet(namespace: string, columns: NonNullable<EventDetail['columns']>): Record<string, unknown> {
  const direct = new Map<string, { namespace: string; name: string; field: string; transformations: { type: string; subtype: string; description?: string }[] }>()
  const key = (c: { table: string; column: string }): string => `${c.table}\u0000${c.column}`
  const add = (c: { table: string; column: string }, t: { type: string; subtype: string; description?: string }): void => {
    const k = `${key(c)}\u0000${t.type}`
    const cur = direct.get(k)
    if (cur === undefined) direct.set(k, { namespace, name: c.table, field: c.column, transformations: [t] })
    else if (!cur.transformations.some((x) => x.subtype === t.subtype)) cur.transformations.push(t)
  }
  for (const [name, f] of columns.reads.fields) {
    for (const c of f.direct) add(c, { type: 'DIRECT', subtype: 'TRANSFORMATION', description: `yield field ${name === '' ? '(the value)' : name}, then the table's function` })
    for (const c of f.indirect) add(c, { type: 'INDIRECT', subtype: c.kind })
  }
  const inputFields = [...direct.values()]
  const dataset = new Map<string, { namespace: string; name: string; field: string; transformations: { type: string; subtype: string }[] }>()
  for (const c of columns.reads.dataset) {
    const cur = dataset.get(key(c))
    if (cur === undefined) dataset.set(key(c), { namespace, name: c.table, field: c.column, transformations: [{ type: 'INDIRECT', subtype: c.kind }] })
    else cur.transformations.push({ type: 'INDIRECT', subtype: c.kind })
  }
  return {
    _producer: PRODUCER,
    _schemaURL: COLUMN_LINEAGE_SCHEMA,
    fields: Object.fromEntries(columns.outputs.map((o) => [o, { inputFields }])),
    dataset: [...dataset.values()],
  }
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
    outputs: [{ namespace: ns.dataset, name: run.table, ...(detail.columns === undefined ? {} : { facets: { columnLineage: columnLineageFacet(ns.dataset, detail.columns) } }) }],
  }
}
