/**
 * Key texts and addresses (src/derived/keys.ts), without a database: the canonical text of root
 * keys, the address of a derived row from its lineage and back, integers beyond 2^53 kept as
 * their decimal text, and the keys users pass to get/status/affected checked against the root's
 * key columns.
 */
import { describe, expect, it } from 'vitest'
import { LineageQueryError } from '../../src/errors.js'
import {
  addressFromUser,
  addressFromUserChecked,
  addressOf,
  addressValue,
  inputsText,
  keyText,
  lineageOfAddress,
  normaliseLineage,
  parseAddress,
  parseInputs,
  rootKeyText,
  unrepresentableKey,
  type KeyKind,
  type KeyShapes,
} from '../../src/derived/keys.js'
import { thrown } from '../support/errors.js'

const BIG = '9007199254740993' // 2^53 + 1

describe('key texts and addresses', () => {
  it('a root key text is the JSON of the key value; an undefined key is null', () => {
    expect(keyText(7)).toBe('7')
    expect(keyText('abc')).toBe('"abc"')
    expect(keyText(true)).toBe('true')
    expect(keyText([1, 'x'])).toBe('[1,"x"]')
    expect(keyText(undefined)).toBe('null')
  })

  it('lineage is normalised: each (table, key) once, sorted by table then key text, only table and key kept', () => {
    const entries = [
      { table: 'e', key: 'x', extra: 1 },
      { table: 'd', key: 2 },
      { table: 'd', key: 1 },
      { table: 'e', key: 'x' },
      { table: 'd', key: 2 },
      { table: 'd', key: [1, 'a'] },
    ]
    expect(normaliseLineage(entries)).toStrictEqual([
      { table: 'd', key: 1 },
      { table: 'd', key: 2 },
      { table: 'd', key: [1, 'a'] },
      { table: 'e', key: 'x' },
    ])
    expect(normaliseLineage([])).toEqual([])
    // A table name that is a prefix of another sorts first: the separator is below every character.
    expect(normaliseLineage([{ table: 'ab', key: 1 }, { table: 'a', key: 2 }])).toEqual([{ table: 'a', key: 2 }, { table: 'ab', key: 1 }])
  })

  it('the address of a single-root row with one entry is its key text; otherwise the list of [table, key] pairs', () => {
    expect(addressOf([{ table: 'r', key: 7 }], true)).toBe('7')
    expect(addressOf([{ table: 'r', key: 'a' }], true)).toBe('"a"')
    expect(addressOf([{ table: 'r', key: 7 }], false)).toBe('[["r",7]]')
    expect(addressOf([{ table: 'r', key: 1 }, { table: 's', key: 'x' }], true)).toBe('[["r",1],["s","x"]]')
    expect(addressOf([], true)).toBe('[]')
  })

  it('an address gives back its lineage and its user-facing value', () => {
    expect(lineageOfAddress('7', ['r'])).toEqual([{ table: 'r', key: 7 }])
    expect(lineageOfAddress('[1,"x"]', ['r'])).toEqual([{ table: 'r', key: [1, 'x'] }])
    expect(lineageOfAddress('[["r",1],["s","x"]]', ['r', 's'])).toEqual([{ table: 'r', key: 1 }, { table: 's', key: 'x' }])
    expect(lineageOfAddress('[]', ['r'])).toEqual([])
    // A composite key of two-character strings is a key, not a list of entries.
    expect(lineageOfAddress('["ab","cd"]', ['r'])).toEqual([{ table: 'r', key: ['ab', 'cd'] }])
    expect(lineageOfAddress(BIG, ['r'])).toEqual([{ table: 'r', key: BIG }])
    expect(addressValue('7')).toBe(7)
    expect(addressValue('[1,"x"]')).toEqual([1, 'x'])
    expect(addressValue('[["r",1],["s","x"]]')).toEqual([{ table: 'r', key: 1 }, { table: 's', key: 'x' }])
    expect(addressValue(`[["r",${BIG}]]`)).toEqual([{ table: 'r', key: BIG }])
  })

  it('integers beyond the safe range come back as their decimal text, never rounded; everything else as JSON', () => {
    expect(parseAddress(BIG)).toBe(BIG)
    expect(parseAddress(`-${BIG}`)).toBe(`-${BIG}`)
    expect(parseAddress('9007199254740992')).toBe('9007199254740992')
    expect(parseAddress('9007199254740991')).toBe(9007199254740991)
    expect(parseAddress('1234567890123456')).toBe(1234567890123456)
    expect(parseAddress(`[1234567890123456,${BIG}]`)).toEqual([1234567890123456, BIG])
    expect(parseAddress(`[["t",${BIG}],["u",2]]`)).toEqual([['t', BIG], ['u', 2]])
    // Digits inside strings are left alone, escaped quotes included.
    expect(parseAddress(`["a${BIG}b",${BIG}]`)).toEqual([`a${BIG}b`, BIG])
    expect(parseAddress(`["x\\"${BIG}",${BIG}]`)).toEqual([`x"${BIG}`, BIG])
    expect(parseAddress(`"${BIG}"`)).toBe(BIG)
    expect(parseAddress(`["${BIG}"]`)).toEqual([BIG])
    expect(parseAddress('[1.5,"x"]')).toEqual([1.5, 'x'])
  })

  it('a number with a long integer part and a fraction or exponent parses as a number, not as an error', () => {
    expect(parseAddress('12345678901234567890.5')).toBe(12345678901234567890)
    expect(parseAddress('[12345678901234567890e3,"x"]')).toEqual([12345678901234567890e3, 'x'])
    expect(parseAddress(`[12345678901234567890.5,${BIG}]`)).toEqual([12345678901234567890, BIG])
    expect(parseAddress(`[1.12345678901234567,${BIG}]`)).toEqual([1.12345678901234567, BIG])
  })

  it('a key text naming an integer beyond the safe range is unrepresentable, with the reason', () => {
    const why = "an integer outside JavaScript's safe range (±(2^53 - 1)); integer keys of tracked tables must be safe integers"
    expect(unrepresentableKey(BIG)).toBe(why)
    expect(unrepresentableKey(`[1,${BIG}]`)).toBe(why)
    expect(unrepresentableKey('7')).toBeUndefined()
    expect(unrepresentableKey('9007199254740991')).toBeUndefined()
    expect(unrepresentableKey(`"${BIG}"`)).toBeUndefined()
    expect(unrepresentableKey(`[${BIG}`)).toBeUndefined()
    expect(unrepresentableKey('1.5')).toBeUndefined()
  })

  it('recorded input revisions are written sorted by (table, key) and read back; nothing recorded is []', () => {
    expect(inputsText([])).toBe('[]')
    expect(inputsText([['b', '1', 3]])).toBe('[["b","1",3]]')
    expect(inputsText([['b', '1', 3], ['a', '2', 1], ['a', '10', 2]])).toBe('[["a","10",2],["a","2",1],["b","1",3]]')
    // A table that is a prefix of another sorts first.
    expect(inputsText([['ab', '1', 1], ['a', '2', 2]])).toBe('[["a","2",2],["ab","1",1]]')
    expect(inputsText([['a', '1', 1], ['b', '1', 2]])).toBe('[["a","1",1],["b","1",2]]')
    // Table and key are compared as a pair, not as their concatenation.
    expect(inputsText([['ab', '1', 1], ['a', 'b1', 2]])).toBe('[["a","b1",2],["ab","1",1]]')
    expect(parseInputs('[["a","1",2]]')).toEqual([['a', '1', 2]])
    expect(parseInputs(null)).toEqual([])
    expect(parseInputs(undefined)).toEqual([])
    expect(parseInputs('')).toEqual([])
  })
})

describe('root keys a user passes (rootKeyText)', () => {
  const text = (key: unknown, kinds: readonly KeyKind[]) => rootKeyText(key, kinds, 'r', 'store.get')
  const refusal = (key: unknown, kinds: readonly KeyKind[]) => thrown(() => text(key, kinds))

  it('an integer key: the number, its text, a bigint, or the decimal text of one beyond 2^53', () => {
    expect(text(7, ['int'])).toBe('7')
    expect(text(-7, ['int'])).toBe('-7')
    expect(text('7', ['int'])).toBe('7')
    expect(text(7n, ['int'])).toBe('7')
    expect(text(BigInt(BIG), ['int'])).toBe(BIG)
    expect(text(BIG, ['int'])).toBe(BIG)
    expect(text(`-${BIG}`, ['int'])).toBe(`-${BIG}`)
  })

  it('an integer key refuses fractions, words and lists, naming the expected form', () => {
    for (const bad of [1.5, 'abc', '[1]', [1], true, null, '1.5', 'x9007199254740993', 2 ** 53, '"7"']) {
      const e = refusal(bad, ['int'])
      expect(e.code).toBe('argument')
      expect(e.message).toMatch(/^store\.get: the key of root table `r` is an integer \(7, or its text '7'\); got /)
      expect(e.details).toEqual({ table: 'r', key: bad })
    }
    expect(refusal(2.5, ['int']).message).toBe("store.get: the key of root table `r` is an integer (7, or its text '7'); got 2.5")
  })

  it('a string key is the string itself; its JSON text is refused naming both forms, unless given as a lineage entry', () => {
    expect(text('abc', ['string'])).toBe('"abc"')
    expect(text('7', ['string'])).toBe('"7"')
    expect(text('"abc', ['string'])).toBe('"\\"abc"')
    const e = refusal('"abc"', ['string'])
    expect(e.code).toBe('argument')
    expect(e.message).toBe(`store.get: "\\"abc\\"" is the JSON text (lq_key) of the string key "abc" of root table \`r\`; pass the key itself ("abc"), or, for a key that really contains the quotes, the lineage form [{ table: 'r', key: "\\"abc\\"" }]`)
    expect(e.details).toEqual({ table: 'r', key: '"abc"' })
    expect(rootKeyText('"abc"', ['string'], 'r', 'store.get', true)).toBe('"\\"abc\\""')
    // A string of digits, however long, is a string key: quoted, never read as an integer.
    expect(text(BIG, ['string'])).toBe(`"${BIG}"`)
    expect(text([BIG, 1], ['string', 'int'])).toBe(`["${BIG}",1]`)
    expect(text([1, BIG], ['int', 'string'])).toBe(`[1,"${BIG}"]`)
    // Only a one-column string key can be mistaken for its JSON text; a list is no string.
    expect(refusal('"abc"', ['int', 'string']).message).toMatch(/is an array of 2 values/)
    expect(refusal(['"a"'], ['string']).message).toBe(`store.get: the key of root table \`r\` is a string ('abc'); got ["\\"a\\""]`)
    const n = refusal(7, ['string'])
    expect(n.message).toBe("store.get: the key of root table `r` is a string ('abc'); got 7")
  })

  it('a boolean key: the boolean or its text', () => {
    expect(text(true, ['boolean'])).toBe('true')
    expect(text(false, ['boolean'])).toBe('false')
    expect(text('true', ['boolean'])).toBe('true')
    expect(refusal(1, ['boolean']).message).toBe('store.get: the key of root table `r` is a boolean (true); got 1')
  })

  it('a composite key: an array of its columns (bigints and big decimal texts allowed), or its JSON text', () => {
    expect(text([1, 'x'], ['int', 'string'])).toBe('[1,"x"]')
    expect(text([1n, 'x'], ['int', 'string'])).toBe('[1,"x"]')
    expect(text([BIG, 'x'], ['int', 'string'])).toBe(`[${BIG},"x"]`)
    expect(text([BigInt(BIG), 'x'], ['int', 'string'])).toBe(`[${BIG},"x"]`)
    expect(text('[1,"x"]', ['int', 'string'])).toBe('[1,"x"]')
    expect(text(`[${BIG},"x"]`, ['int', 'string'])).toBe(`[${BIG},"x"]`)
    expect(text([true, 2], ['boolean', 'int'])).toBe('[true,2]')
    for (const bad of [[1], [1, 'x', 2], ['x', 1], 1, '[1]', [1.5, 'x']]) {
      const e = refusal(bad, ['int', 'string'])
      expect(e.message).toMatch(/^store\.get: the key of root table `r` is an array of 2 values \(int, string\), e\.g\. \[1, 'x'\], or its JSON text; got /)
    }
    expect(refusal([1], ['int', 'boolean']).message).toBe('store.get: the key of root table `r` is an array of 2 values (int, boolean), e.g. [1, true], or its JSON text; got [1]')
  })

  it('a refused bigint is named by its decimal text in the details', () => {
    const e = refusal(5n, ['string'])
    expect(e.message).toBe("store.get: the key of root table `r` is a string ('abc'); got 5n")
    expect(e.details).toEqual({ table: 'r', key: '5' })
  })
})

describe('addresses from user keys', () => {
  const kinds: Record<string, readonly KeyKind[]> = { r: ['int'], s: ['string'] }
  const shapes = (roots: readonly string[]): KeyShapes => ({ table: 'd', roots, kinds: (root) => kinds[root], what: 'store.status' })

  it('a single-root row: its root key, checked; an lq_key list text or a list of entries, normalised', () => {
    const one = shapes(['r'])
    expect(addressFromUserChecked(7, true, one)).toBe('7')
    expect(addressFromUserChecked('7', true, one)).toBe('7')
    expect(addressFromUserChecked([{ table: 'r', key: '7' }], true, one)).toBe('7')
    expect(addressFromUserChecked([{ table: 'r', key: 2 }, { table: 'r', key: 1 }], true, one)).toBe('[["r",1],["r",2]]')
    expect(addressFromUserChecked('[["r",2],["r",1]]', true, one)).toBe('[["r",1],["r",2]]')
    expect(addressFromUserChecked('[["r",1]]', true, one)).toBe('1')
    expect(addressFromUserChecked([], true, one)).toBe('[]')
    // Text that is not an lq_key list, and lists that are not all entries, are checked as the root key.
    expect(thrown(() => addressFromUserChecked('[]', true, one)).message).toMatch(/is an integer/)
    expect(thrown(() => addressFromUserChecked('[[1,2]]', true, one)).message).toMatch(/is an integer/)
    expect(thrown(() => addressFromUserChecked([{ table: 'r', key: 1 }, 7], true, one)).message).toMatch(/is an integer/)
    expect(thrown(() => addressFromUserChecked('x', true, one)).message).toBe("store.status: the key of root table `r` is an integer (7, or its text '7'); got \"x\"")
    // A root whose key columns are unknown is taken as an integer key.
    expect(addressFromUserChecked(7, true, { ...one, roots: ['q'] })).toBe('7')
    expect(thrown(() => addressFromUserChecked('[["q",1]]', true, { ...one, roots: ['q'] })).message).toBe('store.status: lineage entry names table "q", which is not a root of `d` (roots: q)')
  })

  it('a multi-root row: a list of entries or its lq_key text, each key checked against its root', () => {
    const two = shapes(['r', 's'])
    expect(addressFromUserChecked([{ table: 's', key: 'x' }, { table: 'r', key: 1 }], false, two)).toBe('[["r",1],["s","x"]]')
    expect(addressFromUserChecked('[["s","x"],["r",1]]', false, two)).toBe('[["r",1],["s","x"]]')
    expect(addressFromUserChecked([], false, two)).toBe('[]')
    const unknown = thrown(() => addressFromUserChecked([{ table: 'zz', key: 1 }], false, two))
    expect(unknown.code).toBe('argument')
    expect(unknown.message).toBe('store.status: lineage entry names table "zz", which is not a root of `d` (roots: r, s)')
    expect(unknown.details).toEqual({ table: 'd' })
    expect(thrown(() => addressFromUserChecked([{ table: 'r', key: 'x' }], false, two)).message).toBe("store.status: the key of root table `r` is an integer (7, or its text '7'); got \"x\"")
    for (const bad of [7, 'x', '[1,2]', [1, 2], { table: 'r', key: 1 }, '[[1,2]]', '[["r",1,2]]']) {
      const e = thrown(() => addressFromUserChecked(bad, false, two))
      expect(e.code).toBe('argument')
      expect(e.message).toMatch(/^store\.status: rows of `d` are addressed by their root lineage, a list of \{ table, key \} entries \(e\.g\. \[\{ table: 'r', key: 1 \}, \{ table: 's', key: 2 \}\]\) or its lq_key text; got /)
      expect(e.details).toEqual({ table: 'd' })
    }
    expect(thrown(() => addressFromUserChecked(7, false, shapes(['r']))).message).toBe("store.status: rows of `d` are addressed by their root lineage, a list of { table, key } entries (e.g. [{ table: 'r', key: 1 }]) or its lq_key text; got 7")
  })

  it('unchecked: a list of entries is normalised, [] is [], anything else is its key text', () => {
    expect(addressFromUser([{ table: 'r', key: 2 }, { table: 'r', key: 1 }], false)).toBe('[["r",1],["r",2]]')
    expect(addressFromUser([{ table: 'r', key: 2 }], true)).toBe('2')
    expect(addressFromUser([], true)).toBe('[]')
    expect(addressFromUser(7, true)).toBe('7')
    expect(addressFromUser([1, 'x'], true)).toBe('[1,"x"]')
    expect(addressFromUser([{ table: 'r' }], true)).toBe('[{"table":"r"}]')
    // A list holding null or a list is a composite key value, not a list of entries.
    expect(addressFromUser([null, 1], true)).toBe('[null,1]')
    expect(addressFromUser('ab', true)).toBe('"ab"')
    expect(addressFromUser([{ table: 'r', key: 1 }, 7], true)).toBe('[{"table":"r","key":1},7]')
    expect(addressFromUser([['r', 1]], false)).toBe('[["r",1]]')
    expect(thrown(() => addressFromUserChecked([null], false, shapes(['r', 's']))).message).toMatch(/are addressed by their root lineage.*; got \[null\]$/)
    expect(addressFromUserChecked([{ table: 'r', key: 1 }], true, undefined)).toBe('1')
  })
})
