/**
 * Type tests of the scalar functions and column codecs: Q.case, dates, timestamps, decimals,
 * JSON, substring/trim/round/like.
 */
import * as t from 'io-ts'
import type { Insertable, Kysely, Selectable } from 'kysely'
import { describe, expectTypeOf, test } from 'vitest'
import { DateString, decimal, Json, Q, run, table, Timestamp, type DecimalString, type Expr, type KyselySchema } from '../src/index.js'

const items = table('items', {
  id: t.Int,
  shipped: DateString,
  at: Timestamp,
  price: decimal(15, 2),
  disc: t.union([decimal(4, 2), t.null]),
  doc: Json,
  note: t.union([t.string, t.null]),
})
declare const db: Kysely<any>

describe('column codecs', () => {
  test('dates are strings, timestamps Dates, decimals digit strings, JSON unknown', async () => {
    const rows = await run(db, items)
    expectTypeOf(rows).toEqualTypeOf<{ id: number; shipped: string; at: Date; price: DecimalString; disc: DecimalString | null; doc: unknown; note: string | null }[]>()
    expectTypeOf<t.TypeOf<typeof DateString>>().toEqualTypeOf<string>()
    expectTypeOf<t.TypeOf<typeof Timestamp>>().toEqualTypeOf<Date>()
    expectTypeOf<t.TypeOf<ReturnType<typeof decimal>>>().toEqualTypeOf<DecimalString>()
  })

  test('views of the new columns', () => {
    Q.for(items, (i) => {
      expectTypeOf(i.shipped).toEqualTypeOf<Expr<string>>()
      expectTypeOf(i.at).toEqualTypeOf<Expr<Date>>()
      expectTypeOf(i.price).toEqualTypeOf<Expr<DecimalString>>()
      return Q.yield(i)
    })
  })
})

describe('functions', () => {
  test('Q.case: the values\' type, null without a default', () => {
    Q.for(items, (i) => {
      expectTypeOf(Q.case([[Q.gt(i.id, 1), 'a'], [Q.gt(i.id, 2), 'b']], 'c')).toEqualTypeOf<Expr<string>>()
      expectTypeOf(Q.case([[Q.gt(i.id, 1), i.id]])).toEqualTypeOf<Expr<number | null>>()
      expectTypeOf(Q.case([[Q.gt(i.id, 1), i.price]], '0')).toEqualTypeOf<Expr<DecimalString>>()
      expectTypeOf(Q.case([[Q.gt(i.id, 1), Q.mul(i.price, Q.sub(1, i.price))]], 0)).toEqualTypeOf<Expr<DecimalString>>()
      return Q.yield(i)
    })
  })

  test('dates: parts are numbers, arithmetic gives dates, constants compare', () => {
    Q.for(items, (i) => {
      expectTypeOf(Q.year(i.shipped)).toEqualTypeOf<Expr<number>>()
      expectTypeOf(Q.month(i.at)).toEqualTypeOf<Expr<number>>()
      expectTypeOf(Q.addMonths(i.shipped, 3)).toEqualTypeOf<Expr<string>>()
      expectTypeOf(Q.addDays(Q.date('1998-12-01'), -90)).toEqualTypeOf<Expr<string>>()
      expectTypeOf(Q.lt(i.shipped, '1995-01-01')).toEqualTypeOf<Expr<boolean>>()
      expectTypeOf(Q.lt(i.at, new Date())).toEqualTypeOf<Expr<boolean>>()
      // @ts-expect-error a timestamp is not a date for arithmetic
      Q.addDays(i.at, 1)
      return Q.yield(i)
    })
  })

  test('decimals: arithmetic stays decimal, numbers stand next to them, avg and div are numbers', () => {
    Q.for(items, (i) => {
      expectTypeOf(Q.mul(i.price, Q.sub(1, i.disc))).toEqualTypeOf<Expr<DecimalString | null>>()
      expectTypeOf(Q.add(i.price, i.price)).toEqualTypeOf<Expr<DecimalString>>()
      expectTypeOf(Q.gt(i.disc, 0.05)).toEqualTypeOf<Expr<boolean | null>>()
      expectTypeOf(Q.round(i.price, 1)).toEqualTypeOf<Expr<DecimalString>>()
      expectTypeOf(Q.sum(items, (x) => x.price)).toEqualTypeOf<Expr<DecimalString | null>>()
      expectTypeOf(Q.avg(items, (x) => x.price)).toEqualTypeOf<Expr<number | null>>()
      expectTypeOf(Q.div(i.price, 2)).toEqualTypeOf<Expr<number | null>>()
      expectTypeOf(Q.decimal('0.05')).toEqualTypeOf<Expr<DecimalString>>()
      // @ts-expect-error a plain string is not a decimal
      Q.add(i.price, 'abc' as string)
      return Q.yield(i)
    })
  })

  test('JSON: equality with Q.json constants (JSON values are unknown, so possibly null)', () => {
    Q.for(items, (i) => {
      expectTypeOf(Q.eq(i.doc, Q.json({ a: [1, 2] }))).toEqualTypeOf<Expr<boolean | null>>()
      return Q.yield(i)
    })
  })

  test('strings: substring, trim, like with a computed pattern', () => {
    Q.for(items, (i) => {
      expectTypeOf(Q.substring(i.note, 1, 3)).toEqualTypeOf<Expr<string | null>>()
      expectTypeOf(Q.substring(Q.trim('x'), 2)).toEqualTypeOf<Expr<string>>()
      expectTypeOf(Q.like('abc', 'a%')).toEqualTypeOf<Expr<boolean>>()
      expectTypeOf(Q.like('abc', Q.concat(Q.substring('abc', 1, 1), '%'))).toEqualTypeOf<Expr<boolean | null>>()
      return Q.yield(i)
    })
  })
})

describe('KyselySchema of the new codecs', () => {
  test('what each driver returns and accepts', () => {
    type S = KyselySchema<[typeof items], 'sqlite'>['items']
    type P = KyselySchema<[typeof items], 'postgres'>['items']
    expectTypeOf<Selectable<S>>().toEqualTypeOf<{ id: number; shipped: string; at: string; price: number; disc: number | null; doc: string; note: string | null }>()
    expectTypeOf<Selectable<P>>().toEqualTypeOf<{ id: string; shipped: Date; at: Date; price: string; disc: string | null; doc: unknown; note: string | null }>()
    expectTypeOf<Insertable<P>['price']>().toEqualTypeOf<string | number>()
    expectTypeOf<Insertable<S>['price']>().toEqualTypeOf<number | bigint>()
  })
})
