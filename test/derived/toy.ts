/**
 * The seed's toy language, small enough for tests: arithmetic source rows are parsed to a JSON
 * AST, compiled to stack code, and run to a number.
 */
import * as t from 'io-ts'
import { table } from '../../src/query/dsl.js'

export const sources = table('sources', { id: t.Int, text: t.string })

type Ast = number | { op: '+' | '-' | '*'; l: Ast; r: Ast }

export function parse(text: string): string {
  const toks = text.match(/\d+|[-+*()]|\S/g) ?? []
  let i = 0
  const atom = (): Ast => {
    const tok = toks[i++]
    if (tok === '(') {
      const e = sum()
      if (toks[i++] !== ')') throw new Error(`expected ) at token ${i}`)
      return e
    }
    if (tok !== undefined && /^\d+$/.test(tok)) return Number(tok)
    throw new Error(`unexpected ${tok === undefined ? 'end of input' : JSON.stringify(tok)}`)
  }
  const product = (): Ast => {
    let l = atom()
    while (toks[i] === '*') {
      i++
      l = { op: '*', l, r: atom() }
    }
    return l
  }
  const sum = (): Ast => {
    let l = product()
    while (toks[i] === '+' || toks[i] === '-') {
      const op = toks[i++] as '+' | '-'
      l = { op, l, r: product() }
    }
    return l
  }
  const e = sum()
  if (i !== toks.length) throw new Error(`unexpected ${JSON.stringify(toks[i])}`)
  return JSON.stringify(e)
}

export function compileAst(ast: string): string {
  const out: string[] = []
  const go = (e: Ast): void => {
    if (typeof e === 'number') out.push(`push ${e}`)
    else {
      go(e.l)
      go(e.r)
      out.push(e.op === '+' ? 'add' : e.op === '-' ? 'sub' : 'mul')
    }
  }
  go(JSON.parse(ast) as Ast)
  return out.join('; ')
}

export function runCode(code: string): number {
  const stack: number[] = []
  for (const ins of code.split('; ')) {
    if (ins.startsWith('push ')) stack.push(Number(ins.slice(5)))
    else {
      const r = stack.pop()!
      const l = stack.pop()!
      stack.push(ins === 'add' ? l + r : ins === 'sub' ? l - r : l * r)
    }
  }
  return stack.pop()!
}
