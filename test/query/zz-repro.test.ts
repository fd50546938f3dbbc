import { test } from 'vitest'
import * as t from 'io-ts'
import { readFileSync } from 'node:fs'
import { AST, compile, lineage, Q, table } from '../../src/index.js'
import { evaluateLineage } from '../oracle/evaluate.js'

test('repro', () => {
  const txt = readFileSync(process.env.REPRO_FILE!, 'utf8').replace(/\x1b\[[0-9;]*m/g, '')
  const blocks = txt.split('Counterexample: [\n').slice(1)
  for (let i = 0; i < blocks.length; i++) {
    const label = process.env.REPRO_DIALECT ?? 'sqlite'
    const body = blocks[i]!.split(/\n\]/)[0]!
    const code = body.replace(/^const (t_\w+) = /gm, 'const $1 = ')
    try {
      const f = new Function('table', 't', 'Q', `${code}\nreturn { q, data }`)
      const { q } = f(table, t, Q)
      const dialect = label.startsWith('sqlite') ? 'sqlite' : 'postgres'
      console.log('=====', label, '\n', code.split('\n').filter((l: string) => l.startsWith('const q') || l.startsWith('const h')).join('\n'))
      console.log(compile(lineage(q), dialect).statements[0]!.sql)
    } catch (e) {
      console.log('ERR', (e as Error).message)
    }
  }
})
