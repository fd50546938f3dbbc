/**
 * Column lineage of a comprehension (src/lineage/columns.ts): which source columns each yield
 * field reads, and which columns decide the rows (conditions, grouping, ordering). Pure: no
 * database.
 */
import * as t from 'io-ts'
import { describe, expect, it } from 'vitest'
import { AST, Q, table } from '../../src/index.js'
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
