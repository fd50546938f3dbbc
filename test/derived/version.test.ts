/**
 * Code versions (src/derived/version.ts), without a database: which parts of a derivation make
 * its version (function text, dependsOn files, version string, narrow output codecs, params), and
 * which do not (plain codecs, key order of params, order of dependsOn).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import * as t from 'io-ts'
import { afterAll, describe, expect, it } from 'vitest'
import { LineageQueryError } from '../../src/errors.js'
import { codeVersion, codecShape } from '../../src/derived/version.js'
import { thrown } from '../support/errors.js'

const fn = (r: { n: number }) => ({ m: r.n + 1 })
const other = (r: { n: number }) => ({ m: r.n + 2 })

describe('codecShape', () => {
  it('plain codecs name only what the SQL type fixes', () => {
    expect(codecShape(t.string)).toEqual({ shape: 'string', plain: true })
    expect(codecShape(t.number)).toEqual({ shape: 'number', plain: true })
    expect(codecShape(t.boolean)).toEqual({ shape: 'boolean', plain: true })
    expect(codecShape(t.null)).toEqual({ shape: 'null', plain: true })
    expect(codecShape(t.Int)).toEqual({ shape: 'Int', plain: true })
    expect(codecShape(t.readonly(t.string))).toEqual({ shape: 'string', plain: true })
    expect(codecShape(t.union([t.string, t.null]))).toEqual({ shape: 'null|string', plain: true })
  })

  it('narrow codecs are described by what they accept: keyof keys sorted, literal value, refinement name', () => {
    expect(codecShape(t.keyof({ b: null, a: null }))).toEqual({ shape: 'keyof["a","b"]', plain: false })
    expect(codecShape(t.literal('x'))).toEqual({ shape: 'literal:"x"', plain: false })
    expect(codecShape(t.literal(3))).toEqual({ shape: 'literal:3', plain: false })
    const Positive = t.brand(t.number, (n): n is t.Branded<number, { readonly Positive: unique symbol }> => n > 0, 'Positive')
    expect(codecShape(Positive)).toEqual({ shape: 'refine<Positive>(number)', plain: false })
    // A refinement named Int over something other than a number is not the plain Int.
    const IntString = t.brand(t.string, (s): s is t.Branded<string, { readonly Int: unique symbol }> => /^\d+$/.test(s), 'Int')
    expect(codecShape(IntString)).toEqual({ shape: 'refine<Int>(string)', plain: false })
  })

  it('a union is plain only when every member is; its members are sorted', () => {
    expect(codecShape(t.union([t.literal('b'), t.literal('a')]))).toEqual({ shape: 'literal:"a"|literal:"b"', plain: false })
    expect(codecShape(t.union([t.string, t.literal('a')]))).toEqual({ shape: 'literal:"a"|string', plain: false })
  })

  it('any other codec is named by its tag and name, and is not plain', () => {
    expect(codecShape(t.array(t.string))).toEqual({ shape: 'ArrayType<Array<string>>', plain: false })
    expect(codecShape({})).toEqual({ shape: 'codec<>', plain: false })
    expect(codecShape({ _tag: 'RefinementType', type: t.number })).toEqual({ shape: 'refine<>(number)', plain: false })
    expect(codecShape({ _tag: 'KeyofType' })).toEqual({ shape: 'keyof[]', plain: false })
    expect(codecShape({ _tag: 'UnionType' })).toEqual({ shape: '', plain: true })
  })
})

describe('codeVersion', () => {
  const dir = mkdtempSync(join(tmpdir(), 'lq-version-'))
  afterAll(() => rmSync(dir, { recursive: true, force: true }))
  const file = (name: string, text: string): string => {
    const p = join(dir, name)
    writeFileSync(p, text)
    return p
  }

  it('is 16 hex digits, the same for the same declaration', () => {
    const v = codeVersion({ table: 'x', fn })
    expect(v).toMatch(/^[0-9a-f]{16}$/)
    expect(codeVersion({ table: 'x', fn })).toBe(v)
    // The table's name is not part of it: only what computes the rows.
    expect(codeVersion({ table: 'y', fn })).toBe(v)
  })

  it('changes with the function text and with the version string; an empty version is no version', () => {
    const v = codeVersion({ table: 'x', fn })
    expect(codeVersion({ table: 'x', fn: other })).not.toBe(v)
    expect(codeVersion({ table: 'x', fn, version: '2' })).not.toBe(v)
    expect(codeVersion({ table: 'x', fn, version: '2' })).not.toBe(codeVersion({ table: 'x', fn, version: '3' }))
    expect(codeVersion({ table: 'x', fn, version: '' })).toBe(v)
    expect(codeVersion({ table: 'x', fn, version: undefined })).toBe(v)
  })

  it('changes with the contents of a dependsOn file, not with the order files are listed in', () => {
    const a = file('a.txt', 'grammar 1')
    const b = file('b.txt', 'tokens')
    const v = codeVersion({ table: 'x', fn })
    const ab = codeVersion({ table: 'x', fn, dependsOn: [a, b] })
    expect(ab).not.toBe(v)
    expect(codeVersion({ table: 'x', fn, dependsOn: [b, a] })).toBe(ab)
    expect(codeVersion({ table: 'x', fn, dependsOn: [a] })).not.toBe(ab)
    expect(codeVersion({ table: 'x', fn, dependsOn: [] })).toBe(v)
    file('a.txt', 'grammar 2')
    expect(codeVersion({ table: 'x', fn, dependsOn: [a, b] })).not.toBe(ab)
  })

  it('an unreadable dependsOn file is a schema error naming the table and the file', () => {
    const missing = join(dir, 'missing.txt')
    const e = thrown(() => codeVersion({ table: 'parsed', fn, dependsOn: [missing] }))
    expect(e.code).toBe('schema')
    expect(e.message).toContain('derived table `parsed`: dependsOn file ' + JSON.stringify(missing) + ' cannot be read (')
    expect(e.message).toMatch(/ENOENT/)
    expect(e.details).toEqual({ table: 'parsed', file: missing })
  })

  it('plain output codecs leave the version as without them; a narrow one changes it, per column and shape', () => {
    const v = codeVersion({ table: 'x', fn })
    expect(codeVersion({ table: 'x', fn, output: { m: t.Int, s: t.string } })).toBe(v)
    const k = codeVersion({ table: 'x', fn, output: { m: t.Int, s: t.keyof({ a: null }) } })
    expect(k).not.toBe(v)
    expect(codeVersion({ table: 'x', fn, output: { m: t.Int, s: t.keyof({ a: null, b: null }) } })).not.toBe(k)
    expect(codeVersion({ table: 'x', fn, output: { m: t.Int, z: t.keyof({ a: null }) } })).not.toBe(k)
    // Two narrow columns: both count.
    const two = codeVersion({ table: 'x', fn, output: { s: t.keyof({ a: null }), u: t.literal(1) } })
    expect(two).not.toBe(k)
    expect(codeVersion({ table: 'x', fn, output: { s: t.keyof({ a: null }), u: t.literal(2) } })).not.toBe(two)
  })

  it('params: part of the version as JSON with sorted keys; absent params are no params', () => {
    const v = codeVersion({ table: 'x', fn })
    expect(codeVersion({ table: 'x', fn, params: undefined })).toBe(v)
    const p = codeVersion({ table: 'x', fn, params: { a: 1, b: [true, 'x', null] } })
    expect(p).not.toBe(v)
    expect(codeVersion({ table: 'x', fn, params: { b: [true, 'x', null], a: 1 } })).toBe(p)
    expect(codeVersion({ table: 'x', fn, params: { a: 2, b: [true, 'x', null] } })).not.toBe(p)
    expect(codeVersion({ table: 'x', fn, params: { a: 1, b: [false, 'x', null] } })).not.toBe(p)
    expect(codeVersion({ table: 'x', fn, params: { a: 1, b: [true, 'y', null] } })).not.toBe(p)
    expect(codeVersion({ table: 'x', fn, params: { a: 1, b: [true, 'x'] } })).not.toBe(p)
    expect(codeVersion({ table: 'x', fn, params: null })).not.toBe(v)
    expect(codeVersion({ table: 'x', fn, params: 'a' })).not.toBe(codeVersion({ table: 'x', fn, params: 'b' }))
    expect(codeVersion({ table: 'x', fn, params: 1 })).not.toBe(codeVersion({ table: 'x', fn, params: '1' }))
    expect(codeVersion({ table: 'x', fn, params: [1, 2] })).not.toBe(codeVersion({ table: 'x', fn, params: [2, 1] }))
    expect(codeVersion({ table: 'x', fn, params: { a: { c: 1, d: 2 } } })).toBe(codeVersion({ table: 'x', fn, params: { a: { d: 2, c: 1 } } }))
    expect(codeVersion({ table: 'x', fn, params: { a: { c: 1 } } })).not.toBe(codeVersion({ table: 'x', fn, params: { a: { c: 2 } } }))
  })

  it('is stable across releases: the same declaration hashes to the same version as before (an upgrade marks no row stale)', () => {
    // A function built from text has the same source text under any transform of this file.
    const fixed = new Function('r', 'return { n: r.n + 1 }') as (...args: never[]) => unknown
    expect(codeVersion({ table: 'x', fn: fixed })).toBe('e51b9a5540555af2')
    expect(codeVersion({ table: 'x', fn: fixed, version: '2', dependsOn: ['test/derived/fixtures/version-dependency.txt'] })).toBe('aaf7a073280dd824')
    expect(codeVersion({ table: 'x', fn: fixed, output: { n: t.Int, s: t.keyof({ a: null, b: null }), u: t.literal(1) }, params: { threshold: 3, names: ['a', 'b'] } })).toBe('492662422610a627')
  })

  it('params lists are told apart by their element boundaries', () => {
    expect(codeVersion({ table: 'x', fn, params: [1, 23] })).not.toBe(codeVersion({ table: 'x', fn, params: [12, 3] }))
  })

  it('params that JSON cannot hold are a schema error naming the path and what it is', () => {
    const cases: [unknown, string][] = [
      [{ x: Number.NaN }, 'params.x is NaN'],
      [{ x: [1, Number.POSITIVE_INFINITY] }, 'params.x[1] is Infinity'],
      [{ at: new Date(0) }, 'params.at is Date'],
      [new Map(), 'params is Map'],
      [{ f: () => 1 }, 'params.f is function'],
      [{ n: 1n }, 'params.n is bigint'],
      [{ u: undefined }, 'params.u is undefined'],
      [{ o: Object.create(null) as object }, 'params.o is an object'],
    ]
    for (const [params, what] of cases) {
      const e = thrown(() => codeVersion({ table: 'bad', fn, params }))
      expect(e.code).toBe('schema')
      expect(e.message).toBe(`derived table \`bad\`: ${what}; params must be JSON data (objects, arrays, strings, finite numbers, booleans, null)`)
      expect(e.details).toEqual({ table: 'bad', path: what.slice(0, what.indexOf(' is ')) })
    }
  })
})
