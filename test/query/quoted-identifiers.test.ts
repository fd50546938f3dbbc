/**
 * Column references and table items are printed from text built in sql-nodes.ts (`quoted`: one
 * raw node each instead of Kysely's six-node reference), so their quoting must be Kysely's own:
 * wrapped in `"`, an inner `"` doubled, on both dialects. Pinned against Kysely's printing of
 * the same names as `ReferenceNode`/`TableNode`, including names with `"` (table and column
 * names are identifiers, but result field names, which name subquery columns, may be anything).
 */
import { PostgresQueryCompiler, SqliteQueryCompiler, createQueryId, type OperationNode } from 'kysely'
import { expect, test } from 'vitest'
import * as S from '../../src/query/sql-nodes.js'

const names = ['plain', 'x0', 'we"ird', '"', 'a""b', 'employee.name', '#c0', 'ünï"cödé']

function kyselySelect(table: string, alias: string, ref: readonly [string, string]): S.Select {
  const ident = (name: string) => ({ kind: 'IdentifierNode', name })
  const node = {
    kind: 'SelectQueryNode',
    from: { kind: 'FromNode', froms: [{ kind: 'AliasNode', node: { kind: 'TableNode', table: { kind: 'SchemableIdentifierNode', identifier: ident(table) } }, alias: ident(alias) }] },
    selections: [{ kind: 'SelectionNode', selection: { kind: 'AliasNode', node: { kind: 'ReferenceNode', column: { kind: 'ColumnNode', column: ident(ref[1]) }, table: { kind: 'TableNode', table: { kind: 'SchemableIdentifierNode', identifier: ident(ref[0]) } } }, alias: ident('v') } }],
  }
  return node as unknown as S.Select
}

test('column references and FROM tables print exactly as Kysely quotes them, on both dialects', () => {
  const compilers = { sqlite: new SqliteQueryCompiler(), postgres: new PostgresQueryCompiler() } as const
  for (const dialect of ['sqlite', 'postgres'] as const) {
    for (const a of names) {
      for (const b of names) {
        const ours = S.print(S.select({ from: [{ table: a, alias: b }], selections: [{ expr: S.col(b, a), alias: 'v' }], where: [] }), dialect).sql
        const theirs = compilers[dialect].compileQuery(kyselySelect(a, b, [b, a]) as OperationNode as never, createQueryId()).sql
        expect(ours, `${dialect} ${a} ${b}`).toBe(theirs)
      }
    }
  }
  expect(S.print(S.select({ from: [{ table: 'we"ird', alias: 'w0' }], selections: [{ expr: S.col('w0', 'c"d'), alias: 'v' }], where: [] }), 'sqlite').sql).toBe('select "w0"."c""d" as "v" from "we""ird" as "w0"')
})
