/**
 * Finding work: which rows of a derived table are missing, stale or orphaned, and why. Read
 * only; `refresh.ts` acts on the result. One file per source kind:
 *
 * - `table.ts`: a derivation over one table (a root, or a derived table): the derived row and
 *   its input share an address, and the scan's cost follows the input rows written since the
 *   watermark (an index range on the revision column);
 * - `zip.ts`: `joinOnRoot`: the same, over several derived tables of one root;
 * - `query.ts`: a comprehension, evaluated by delta (`evaluate.ts`);
 * - `fill.ts`: a first fill of a one-table derivation, a page of input at a time instead of a scan.
 *
 * The causes come from `causes.ts` (pure); the scans only read revisions.
 */
import { assertNever, type Derivation, type Engine, type ScanFilter, type Work } from '../engine.js'
import type { Watermark } from '../sql/dialect.js'
import { scanQuery } from './query.js'
import { scanTable, type ScanOptions } from './table.js'
import { scanZip } from './zip.js'

export type { ScanOptions, ScanStats } from './table.js'

/** Find the missing, stale and orphaned rows of `x`, by address. */
export async function scan(engine: Engine, x: Derivation, filter: ScanFilter, clock: Watermark, options: ScanOptions = {}): Promise<Map<string, Work>> {
  const source = x.source
  switch (source.kind) {
    case 'root':
    case 'derived':
      return scanTable(engine, x, source.table, filter, options)
    case 'zip':
      return scanZip(engine, x, source.parts, filter)
    case 'query':
      return scanQuery(engine, x, filter, clock)
    default:
      return assertNever(source, 'source kind')
  }
}
