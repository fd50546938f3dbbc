/**
 * Column lineage of a comprehension (src/lineage/columns.ts): which source columns each yield
 * field reads, and which columns decide the rows (conditions, grouping, ordering). Pure: no
 * database.
 */
import * as t from 'io-ts'
import { describe, expect, it } from 'vitest'
import { AST, Q, table } from '../../src/index.js'
import { LineageQueryError } from '../../src/errors.js'
import type { Expr } from '../../src/query/ast.js'
import { columnReads } from '../../src/lineage/columns.js'

const sources = table('sources', { id: t.Int, text: t.string, author: t.Int })
const authors = table('authors', { id: t.Int, name: t.string })

const c = (table: string, column: string) => ({ table, column })

describe('column lineage of a comprehension', () => {
  it('each yield field reads its own columns; a join condition reads its columns indirectly (FILTER)', () => {
    const q = Q.for(sources, (s) => Q.for(authors, (a) => Q.where(Q.eq(s.author, a.id), Q.yield({ text: s.text, name: a.name, line: Q.concat(s.text, ' by ', a.name), one: 1 }))))
    const r = columnReads(q[AST])
    expect(Object.fromEntries([...r.fields].map(([n, f]) => [n, f.direct]))).toEqual({
      text: [c('sources', 'text')],
      name: [c('authors', 'name')],
      line: [c('authors', 'name'), c('sources', 'text')],
      one: [],
    })
    expect(r.dataset).toEqual([{ ...c('authors', 'id'), kind: 'FILTER' }, { ...c('sources', 'author'), kind: 'FILTER' }])
  })

  it('a yielded row reads each of its table\'s columns as the field of that name', () => {
    const r = columnReads(Q.for(authors, (a) => Q.yield(a))[AST])
    expect([...r.fields].map(([n, f]) => [n, f.direct])).toEqual([['id', [c('authors', 'id')]], ['name', [c('authors', 'name')]]])
    expect(r.dataset).toEqual([])
  })

  it('an aggregate reads its query\'s values and conditions; a nested collection keeps its conditions indirect', () => {
    const q = Q.for(authors, (a) =>
      Q.yield({
        name: a.name,
        n: Q.count(Q.for(sources, (s) => Q.where(Q.eq(s.author, a.id), Q.yield(s.id)))),
        texts: Q.for(sources, (s) => Q.where(Q.eq(s.author, a.id), Q.yield(s.text))),
      }),
    )
    const r = columnReads(q[AST])
    expect(r.fields.get('n')).toEqual({ direct: [c('authors', 'id'), c('sources', 'author'), c('sources', 'id')], indirect: [] })
    expect(r.fields.get('texts')).toEqual({ direct: [c('sources', 'text')], indirect: [{ ...c('authors', 'id'), kind: 'FILTER' }, { ...c('sources', 'author'), kind: 'FILTER' }] })
    expect(r.dataset).toEqual([])
  })

  it('grouping keys read indirectly (GROUP_BY), and a group\'s aggregate reads the grouped columns', () => {
    const q = Q.for(Q.groupBy(sources, (s) => s.author), (g) => Q.yield({ author: g.key, n: Q.count(g.group), longest: Q.max(Q.for(g.group, (s) => Q.yield(Q.length(s.text)))) }))
    const r = columnReads(q[AST])
    expect(r.fields.get('author')!.direct).toEqual([c('sources', 'author')])
    expect(r.fields.get('longest')!.direct).toEqual([c('sources', 'text')])
    expect(r.dataset).toEqual([{ ...c('sources', 'author'), kind: 'GROUP_BY' }])
  })

  it('ordering keys read indirectly (SORT)', () => {
    const q = Q.for(sources, (s) => Q.yield({ text: s.text, id: s.id })).orderBy((r) => [Q.desc(r.id)])
    const r = columnReads(q[AST])
    expect(r.fields.get('text')!.direct).toEqual([c('sources', 'text')])
    expect(r.dataset).toEqual([{ ...c('sources', 'id'), kind: 'SORT' }])
  })

  it('a union reads both parts per field, with both parts\' conditions', () => {
    const q = Q.union(
      Q.for(sources, (s) => Q.where(Q.gt(s.id, 2), Q.yield({ label: s.text }))),
      Q.for(authors, (a) => Q.yield({ label: a.name })),
    )
    const r = columnReads(q[AST])
    expect(r.fields.get('label')!.direct).toEqual([c('authors', 'name'), c('sources', 'text')])
    expect(r.dataset).toEqual([{ ...c('sources', 'id'), kind: 'FILTER' }])
  })
})

/** Raw AST nodes (shapes the DSL does not build, or builds only through other phases). */
const v = (id: number, hint = 'x') => ({ id, hint })
const raw = (x: unknown): Expr => x as Expr
const one = raw({ kind: 'const', value: 1 })
const yieldOne = raw({ kind: 'yield', value: one })
const lineageError = (f: () => unknown, message: string): void => {
  let caught: unknown
  try {
    f()
  } catch (e) {
    caught = e
  }
  expect(caught).toBeInstanceOf(LineageQueryError)
  expect((caught as LineageQueryError).code).toBe('lineage')
  expect((caught as LineageQueryError).message).toBe(message)
}

describe('column lineage: values of every shape', () => {
  it('a field holding a whole row or a record reads all their columns; a field of a scalar reads the scalar\'s', () => {
    const q = raw({
      kind: 'for',
      v: v(1, 'a'),
      source: Q.for(authors, (a) => Q.yield(a))[AST],
      body: {
        kind: 'yield',
        value: {
          kind: 'record',
          fields: [
            ['who', { kind: 'var', v: v(1, 'a') }],
            ['pair', { kind: 'record', fields: [['x', { kind: 'field', target: { kind: 'var', v: v(1, 'a') }, name: 'id' }], ['y', { kind: 'const', value: 'k' }]] }],
            ['len', { kind: 'field', target: { kind: 'op', op: 'length', args: [{ kind: 'field', target: { kind: 'var', v: v(1, 'a') }, name: 'name' }] }, name: 'whatever' }],
            ['inner', { kind: 'field', target: { kind: 'record', fields: [['z', { kind: 'field', target: { kind: 'var', v: v(1, 'a') }, name: 'name' }]] }, name: 'z' }],
            ['absent', { kind: 'field', target: { kind: 'record', fields: [] }, name: 'z' }],
          ],
        },
      },
    })
    const r = columnReads(q)
    expect(Object.fromEntries([...r.fields].map(([n, f]) => [n, f.direct]))).toEqual({
      who: [c('authors', 'id'), c('authors', 'name')],
      pair: [c('authors', 'id')],
      len: [c('authors', 'name')],
      inner: [c('authors', 'name')],
      absent: [],
    })
  })

  it('a union of rows of one table keeps its columns apart; of two tables, or of scalars, it is one field reading all', () => {
    const same = columnReads(Q.union(Q.for(authors, (a) => Q.where(Q.gt(a.id, 1), Q.yield(a))), Q.for(authors, (a) => Q.yield(a)))[AST])
    expect([...same.fields].map(([n, f]) => [n, f.direct])).toEqual([['id', [c('authors', 'id')]], ['name', [c('authors', 'name')]]])
    expect(same.dataset).toEqual([{ ...c('authors', 'id'), kind: 'FILTER' }])
    const two = columnReads(raw({ kind: 'union', parts: [Q.for(authors, (a) => Q.yield(a))[AST], Q.for(sources, (s) => Q.yield(s))[AST]] }))
    expect([...two.fields].map(([n, f]) => [n, f.direct])).toEqual([['', [c('authors', 'id'), c('authors', 'name'), c('sources', 'author'), c('sources', 'id'), c('sources', 'text')]]])
    const rowAndScalar = columnReads(raw({ kind: 'union', parts: [Q.for(authors, (a) => Q.yield(a))[AST], Q.for(sources, (s) => Q.yield(s.text))[AST]] }))
    expect([...rowAndScalar.fields].map(([n, f]) => [n, f.direct])).toEqual([['', [c('authors', 'id'), c('authors', 'name'), c('sources', 'text')]]])
    const scalars = columnReads(Q.union(Q.for(sources, (s) => Q.yield(s.text)), Q.for(authors, (a) => Q.yield(a.name)))[AST])
    expect([...scalars.fields].map(([n, f]) => [n, f.direct])).toEqual([['', [c('authors', 'name'), c('sources', 'text')]]])
    const recordAndScalar = columnReads(raw({ kind: 'union', parts: [Q.for(authors, (a) => Q.yield({ n: a.name }))[AST], Q.for(sources, (s) => Q.yield(s.text))[AST]] }))
    expect([...recordAndScalar.fields].map(([n, f]) => [n, f.direct])).toEqual([['', [c('authors', 'name'), c('sources', 'text')]]])
    // In either order.
    const scalarAndRecord = columnReads(raw({ kind: 'union', parts: [Q.for(sources, (s) => Q.yield(s.text))[AST], Q.for(authors, (a) => Q.yield({ n: a.name }))[AST]] }))
    expect([...scalarAndRecord.fields].map(([n, f]) => [n, f.direct])).toEqual([['', [c('authors', 'name'), c('sources', 'text')]]])
    const scalarAndRow = columnReads(raw({ kind: 'union', parts: [Q.for(sources, (s) => Q.yield(s.text))[AST], Q.for(authors, (a) => Q.yield(a))[AST]] }))
    expect([...scalarAndRow.fields].map(([n, f]) => [n, f.direct])).toEqual([['', [c('authors', 'id'), c('authors', 'name'), c('sources', 'text')]]])
  })

  it('a union of records merges per field (a field one part lacks reads nothing there), nested collections with both parts\' conditions', () => {
    const texts = (cond: (s: any, a: any) => any) => (a: any) => Q.for(sources, (s) => Q.where(cond(s, a), Q.yield(s.text)))
    const q = Q.union(
      Q.for(authors, (a) => Q.yield({ label: a.name, extra: a.id, texts: texts((s, x) => Q.eq(s.author, x.id))(a) })),
      Q.for(authors, (a) => Q.where(Q.gt(a.id, 0), Q.yield({ label: Q.concat(a.name, '!'), texts: texts((s) => Q.gt(s.id, 3))(a) }))) as any,
    )
    const r = columnReads(q[AST])
    expect(r.fields.get('label')!.direct).toEqual([c('authors', 'name')])
    expect(r.fields.get('extra')!.direct).toEqual([c('authors', 'id')])
    expect(r.fields.get('texts')).toEqual({
      direct: [c('sources', 'text')],
      indirect: [{ ...c('authors', 'id'), kind: 'FILTER' }, { ...c('sources', 'author'), kind: 'FILTER' }, { ...c('sources', 'id'), kind: 'FILTER' }],
    })
    // The second part's condition on authors.id and the first part's on the same column: one entry.
    expect(r.dataset).toEqual([{ ...c('authors', 'id'), kind: 'FILTER' }])
  })

  it('a column both filtered on and sorted by is listed once per reason', () => {
    const q = Q.for(sources, (s) => Q.where(Q.gt(s.id, 1), Q.yield({ id: s.id, text: s.text }))).orderBy((r) => [Q.desc(r.id)])
    expect(columnReads(q[AST]).dataset).toEqual([{ ...c('sources', 'id'), kind: 'FILTER' }, { ...c('sources', 'id'), kind: 'SORT' }])
  })

  it('values, let, limit, distinct and exists read what their parts read', () => {
    const vals = Q.for(authors, (a) => Q.for(Q.values([{ n: a.name }, { n: 'x' }]), (x) => Q.yield(x.n)))
    expect([...columnReads(vals[AST]).fields].map(([n, f]) => [n, f.direct])).toEqual([['', [c('authors', 'name')]]])
    expect([...columnReads(raw({ kind: 'values', items: [] })).fields].map(([n, f]) => [n, f.direct])).toEqual([['', []]])
    expect([...columnReads(raw({ kind: 'union', parts: [] })).fields].map(([n, f]) => [n, f.direct])).toEqual([['', []]])
    const lets = Q.for(authors, (a) => Q.let(Q.concat(a.name, '?'), (n) => Q.yield({ n })))
    expect(columnReads(lets[AST]).fields.get('n')!.direct).toEqual([c('authors', 'name')])
    const limited = Q.for(sources, (s) => Q.where(Q.gt(s.id, 2), Q.yield({ t: s.text }))).limit(3)
    expect(columnReads(limited[AST])).toEqual(columnReads(Q.for(sources, (s) => Q.where(Q.gt(s.id, 2), Q.yield({ t: s.text })))[AST]))
    const dist = columnReads(Q.distinct(Q.for(sources, (s) => Q.yield(s.author)))[AST])
    expect([...dist.fields].map(([n, f]) => [n, f.direct])).toEqual([['', [c('sources', 'author')]]])
    expect(dist.dataset).toEqual([{ ...c('sources', 'author'), kind: 'GROUP_BY' }])
    const ex = Q.for(authors, (a) => Q.where(Q.exists(Q.for(sources, (s) => Q.where(Q.eq(s.author, a.id), Q.yield(s.id)))), Q.yield({ name: a.name })))
    expect(columnReads(ex[AST]).dataset).toEqual([{ ...c('authors', 'id'), kind: 'FILTER' }, { ...c('sources', 'author'), kind: 'FILTER' }, { ...c('sources', 'id'), kind: 'FILTER' }])
  })

  it('a yielded collection is one field: its elements\' columns direct, its conditions indirect', () => {
    const q = raw({ kind: 'for', v: v(1, 'a'), source: { kind: 'table', table: authors.def }, body: { kind: 'yield', value: Q.for(sources, (s) => Q.where(Q.gt(s.id, 1), Q.yield(s.text)))[AST] } })
    const r = columnReads(q)
    expect([...r.fields]).toEqual([['', { direct: [c('sources', 'text')], indirect: [{ ...c('sources', 'id'), kind: 'FILTER' }] }]])
  })
})

describe('column lineage: malformed input', () => {
  it('a node that is not a collection where one is needed is a lineage error saying where', () => {
    lineageError(() => columnReads(one), 'column lineage: the query is not a collection')
    lineageError(() => columnReads(raw({ kind: 'for', v: v(1), source: one, body: yieldOne })), 'column lineage: a generator is not a collection')
    lineageError(() => columnReads(raw({ kind: 'for', v: v(1), source: { kind: 'table', table: authors.def }, body: one })), 'column lineage: a comprehension body is not a collection')
    lineageError(() => columnReads(raw({ kind: 'where', cond: one, body: one })), 'column lineage: a where body is not a collection')
    lineageError(() => columnReads(raw({ kind: 'union', parts: [yieldOne, one] })), 'column lineage: a union part is not a collection')
    lineageError(() => columnReads(raw({ kind: 'order', query: one, v: v(1), keys: [] })), 'column lineage: an ordered query is not a collection')
    lineageError(() => columnReads(raw({ kind: 'group', source: one, v: v(1), key: one })), 'column lineage: a grouped query is not a collection')
    lineageError(() => columnReads(raw({ kind: 'distinct', query: one })), 'column lineage: a distinct query is not a collection')
  })

  it('an unbound variable, a node of the lineage rewrite and an unknown node are lineage errors naming them', () => {
    lineageError(() => columnReads(raw({ kind: 'yield', value: { kind: 'var', v: v(99, 'q') } })), 'column lineage: unbound variable q#99')
    for (const kind of ['linEmpty', 'linRow', 'linAppend', 'linWitness', 'linGroup']) {
      lineageError(() => columnReads(raw({ kind: 'yield', value: { kind } })), `column lineage: a \`${kind}\` node (made by the lineage rewrite) in a query as written`)
    }
    lineageError(() => columnReads(raw({ kind: 'yield', value: { kind: 'bogus' } })), 'column lineage: unknown node {"kind":"bogus"}')
  })
})
