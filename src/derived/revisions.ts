/**
 * Current revisions of input rows, whatever their table: the one branch between a root row
 * (its revision row, `lq_rev_R`) and a derived row (its metadata row's `lq_changed_rev`).
 */
import type { Kysely } from 'kysely'
import { recordedCauses } from './causes.js'
import type { Derivation, Engine } from './engine.js'
import { parseInputs } from './keys.js'
import type { Cause } from './types.js'
import { metaRows, revisionSource, rootRevs, type MetaRow, type RevisionSource } from './sql/reads.js'

/** The table holding the revisions of table `name`'s rows. */
export function sourceFor(engine: Engine, name: string): RevisionSource {
  return revisionSource(name, engine.roots.has(name))
}

/**
 * Current revisions of live rows `keys` (key texts, or addresses) of `table`; for a derived table
 * also their metadata rows. `db`: where to read (a write transaction), by default the store's.
 */
export async function currentRevisions(engine: Engine, table: string, keys: readonly string[], db: Kysely<any> = engine.db): Promise<{ revs: Map<string, number>; metas?: Map<string, MetaRow> }> {
  if (engine.roots.has(table)) return { revs: await rootRevs(db, engine.d, table, keys) }
  const metas = await metaRows(db, engine.d, table, keys)
  return { revs: new Map([...metas].map(([k, m]) => [k, m.lq_changed_rev])), metas }
}

/** Current revisions of rows of several tables (`table -> keys`), by table. `db`: where to read (a write transaction), by default the store's. */
export async function currentRevisionsOf(engine: Engine, wanted: ReadonlyMap<string, Iterable<string>>, db: Kysely<any> = engine.db): Promise<{ revs: Map<string, Map<string, number>>; metas: Map<string, Map<string, MetaRow>> }> {
  const revs = new Map<string, Map<string, number>>()
  const metas = new Map<string, Map<string, MetaRow>>()
  for (const [t, keys] of wanted) {
    const c = await currentRevisions(engine, t, [...keys], db)
    revs.set(t, c.revs)
    if (c.metas !== undefined) metas.set(t, c.metas)
  }
  return { revs, metas }
}

/**
 * Causes of stored rows of `x` from their recorded inputs alone (an input deleted, a root input
 * written since, an upstream row changed; a code change), by address. No comprehension is evaluated.
 */
export async function storedCauses(engine: Engine, x: Derivation, metas: readonly MetaRow[]): Promise<Map<string, Cause[]>> {
  const wanted = new Map<string, Set<string>>()
  for (const m of metas) for (const [t, k] of parseInputs(m.lq_inputs)) (wanted.get(t) ?? wanted.set(t, new Set()).get(t)!).add(k)
  const { revs } = await currentRevisionsOf(engine, wanted)
  const isRoot = (t: string) => engine.roots.has(t)
  return new Map(metas.map((m) => [m.lq_key, recordedCauses(x, m, isRoot, (t, k) => revs.get(t)?.get(k))]))
}
