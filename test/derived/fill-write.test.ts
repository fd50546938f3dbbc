/**
 * How a first fill's results are stored, on SQLite and PostgreSQL:
 * - the value hash (`lq_hash`, compared for backdating): a value whose JSON text is short is
 *   stored as that text, a longer one as its SHA-1; both backdate when recomputed equal;
 * - batches of ok results of a one-table derivation travel as narrow metadata rows, batches
 *   with a failed result as full ones: both store the same metadata.
 */
import { createHash } from 'node:crypto'
import * as t from 'io-ts'
import { sql } from 'kysely'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { createTable, insertRows } from '../../src/query/ddl.js'
import { table } from '../../src/query/dsl.js'
import { openStore } from '../../src/derived/index.js'
import { dialectNames, open, type TestDb } from '../support/db.js'

type Meta = { lq_key: string; lq_lineage: string; lq_inputs: string; lq_max_input_rev: unknown; lq_state: string; lq_error: string | null; lq_hash: string | null; lq_input_hash: string | null; lq_eval_rev: unknown }

for (const dialect of dialectNames) {
  describe(`derived-data first-fill writes [${dialect}]`, () => {
    let tdb: TestDb
    beforeEach(async () => {
      tdb = await open(dialect)
    })
    afterEach(async () => {
      await tdb.close()
    })

    const metaOf = async (name: string): Promise<Meta[]> =>
      (await sql<Meta>`SELECT lq_key, lq_lineage, lq_inputs, lq_max_input_rev, lq_state, lq_error, lq_hash, lq_input_hash, lq_eval_rev FROM ${sql.id(`lq_meta_${name}`)} ORDER BY lq_key`.execute(tdb.db)).rows

    it('a short value is stored as its JSON text in lq_hash, a long one as the SHA-1 of that text, and both backdate when recomputed equal', async () => {
      const { db } = tdb
      const src = table('src', { id: t.Int })
      await createTable(db, src)
      await insertRows(db, src, [{ id: 1 }, { id: 2 }, { id: 3 }])
      const store = await openStore(db)
      await store.track(src)
      const long = 'y'.repeat(50)
      const out = store.derive({ name: 'out', from: src, output: { s: t.string, n: t.Int }, fn: (r) => ({ s: r.id === 2 ? long : 'x', n: r.id }) })
      expect((await store.refresh()).tables['out']).toMatchObject({ computed: 3 })
      const hashes = (await metaOf('out')).map((m) => m.lq_hash)
      const sha1 = (s: string) => createHash('sha1').update(s).digest('hex')
      expect(hashes).toEqual(['["x",1]', sha1(`[${JSON.stringify(long)},2]`), '["x",3]'])
      // Recomputed with equal values: every row is unchanged (backdated), short and long alike.
      expect((await store.refresh({ full: true })).tables['out']).toMatchObject({ computed: 0, unchanged: 3 })
      const g = await store.get(out, 2)
      expect(g.state === 'fresh' ? g.value.s : g.state).toBe(long)
    })

    it('a first fill whose batches are all ok or mix in failed rows stores the same metadata for its ok rows either way', async () => {
      const { db } = tdb
      const src = table('src', { id: t.Int, v: t.Int })
      await createTable(db, src)
      await insertRows(db, src, Array.from({ length: 12 }, (_, i) => ({ id: i + 1, v: i })))
      const store = await openStore(db)
      await store.track(src)
      // Batches of 4 rows: ids 1-4 and 9-12 all ok, 5-8 with one failure (id 6).
      store.derive({
        name: 'out',
        from: src,
        output: { n: t.Int },
        fn: (r) => {
          if (r.id === 6) throw new Error('six')
          return { n: r.v * 2 }
        },
      })
      expect((await store.refresh({ batchSize: 4 })).tables['out']).toMatchObject({ computed: 11, failed: 1 })
      const meta = await metaOf('out')
      expect(meta).toHaveLength(12)
      for (const m of meta) {
        const id = Number(m.lq_key)
        expect([m.lq_lineage, m.lq_inputs, m.lq_input_hash, m.lq_eval_rev]).toEqual(['', '', null, null])
        expect(Number(m.lq_max_input_rev)).toBeGreaterThan(0)
        if (id === 6) {
          expect(m.lq_state).toBe('failed')
          expect(JSON.parse(m.lq_error!).message).toBe('six')
        } else {
          expect([m.lq_state, m.lq_error, m.lq_hash]).toEqual(['ok', null, `[${(id - 1) * 2}]`])
        }
      }
      const data = (await sql<{ lq_key: string; n: unknown }>`SELECT lq_key, n FROM out ORDER BY lq_key`.execute(db)).rows
      expect(data.map((r) => [r.lq_key, Number(r.n)])).toEqual(meta.filter((m) => m.lq_state === 'ok').map((m) => [m.lq_key, (Number(m.lq_key) - 1) * 2]))
      // Recomputed with equal values: the ok rows backdate, the failed one fails again.
      expect((await store.refresh({ full: true, batchSize: 4 })).tables['out']).toMatchObject({ computed: 0, unchanged: 11, failed: 1 })
    })
  })
}
