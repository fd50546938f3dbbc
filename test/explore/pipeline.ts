/**
 * The explorer tests' store: roots `sources(id, text, author)` and `authors(id, name)`;
 * `parsed` (word counts; the text 'boom' fails), `doubled` (from parsed), and `signed` (a
 * comprehension joining each source to its author, rows addressed by both root rows); named
 * queries for the query view.
 */
import * as t from 'io-ts'
import type { Kysely } from 'kysely'
import { createTable, insertRows, Q, table, type Store } from '../../src/index.js'
import type { NamedQuery } from '../../src/explore/model.js'

export const sources = table('sources', { id: t.Int, text: t.string, author: t.Int })
export const authors = table('authors', { id: t.Int, name: t.string })

export async function seed(db: Kysely<any>): Promise<void> {
  await createTable(db, sources)
  await createTable(db, authors)
  await insertRows(db, authors, [{ id: 1, name: 'ada' }, { id: 2, name: 'bob' }])
  await insertRows(db, sources, [
    { id: 1, text: 'a b c', author: 1 },
    { id: 2, text: 'hello world', author: 2 },
    { id: 3, text: 'boom', author: 1 },
    { id: 4, text: 'one', author: 2 },
    { id: 5, text: 'x y', author: 1 },
  ])
}

/** `parsedVersion`: the code version of `parsed` (a new one makes its rows stale, cause code-changed). */
export async function declare(store: Store, parsedVersion?: string) {
  await store.track(sources)
  await store.track(authors)
  const parsed = store.derive({
    name: 'parsed',
    from: sources,
    ...(parsedVersion === undefined ? {} : { version: parsedVersion }),
    output: { words: t.number },
    fn: (s) => {
      if (s.text === 'boom') throw new Error('cannot parse "boom"')
      return { words: s.text.split(' ').length }
    },
  })
  const doubled = store.derive({ name: 'doubled', from: parsed, output: { n: t.number }, fn: (p) => ({ n: p.words * 2 }) })
  const signed = store.derive({
    name: 'signed',
    from: Q.for(sources, (s) => Q.for(authors, (a) => Q.where(Q.eq(s.author, a.id), Q.yield({ text: s.text, name: a.name })))),
    output: { line: t.string },
    fn: (r) => ({ line: `${r.text} (${r.name})` }),
  })
  const queries: Record<string, NamedQuery> = {
    doubled: () => Q.for(doubled, (d) => Q.yield({ n: d.n })),
    lines: () => Q.for(signed, (s) => Q.yield({ line: s.line })),
  }
  return { parsed, doubled, signed, queries }
}
