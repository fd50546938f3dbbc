/**
 * Kysely's `Database` type from table declarations, so typed Kysely writes
 * (`db.insertInto('employees').values(...)`) are checked against the same `table(...)`
 * declarations the DSL uses, and `defineSchema` to declare a set of tables once.
 *
 * Types only, apart from `defineSchema`. A column's type follows what the driver returns and
 * accepts for the SQL type `createTable` gives it (`dialectHooks.sqlType`):
 *
 * | codec | SQLite (better-sqlite3) | PostgreSQL (pg) |
 * |---|---|---|
 * | `t.string`, string literals | `string` | `string` (`text`) |
 * | `t.Int` | `number` (`integer`) | select `string` (`bigint`: pg returns int8 as text), insert/update `number \| bigint \| string` |
 * | `t.number` | `number` (`real`) | `number` (`double precision`) |
 * | `t.boolean` | `number` (`integer` 0/1: better-sqlite3 binds no booleans) | `boolean` |
 * | `DateString` | `string` (`text`) | select `Date` (pg parses `date` at local midnight), insert `string \| Date` |
 * | `Timestamp` | `string` (ISO text) | select `Date`, insert `Date \| string` (`timestamptz`) |
 * | `decimal(p, s)` | `number` (`integer`: units of 10^-s, `'12.50'` is 1250), insert `number \| bigint` | `string` (`numeric`), insert `string \| number` |
 * | `Json` | `string` (JSON text) | select the parsed value (`jsonb`), insert JSON text `string` |
 * | nullable (`t.union([c, t.null])`) | the above `\| null`, optional on insert | the same |
 *
 * The codecs are known for tables made by `table(...)`. For other tables (derived tables of
 * `store.derive`) only the row type is known: numbers are `number` on SQLite and
 * `number | string` on PostgreSQL, booleans as above; their `lq_key` column is `string`.
 */
import type * as t from 'io-ts'
import type { ColumnType, Kysely } from 'kysely'
import { LineageQueryError, showValue } from '../errors.js'
import type { ExtKind, SqlKindTag } from './codecs.js'
import { createTable } from './ddl.js'
import { Table } from './dsl.js'

declare const COLUMNS: unique symbol

/** Phantom type carried by `table(...)`: the column codecs, for `KyselySchema`. No runtime value. */
export interface DeclaredColumns<C> {
  readonly [COLUMNS]?: C
}

/** The dialects `KyselySchema` knows. */
export type SchemaDialect = 'sqlite' | 'postgres'

type AnyTable = Table<string, any, any>

/** A set of tables declared together (`defineSchema`). */
export interface Schema<T extends readonly AnyTable[]> {
  readonly tables: T
}

type NonNull<V> = Exclude<V, null>
type Nullable<S, I, U, V> = null extends V ? ColumnType<S | null, I | null | undefined, U | null> : ColumnType<S, I, U>

/** A column from its codec. */
type CodecColumn<Codec, D extends SchemaDialect> = Codec extends t.Mixed
  ? [ExtOf<Codec>] extends [never]
    ? ValueColumn<t.TypeOf<Codec>, D, IsInt<NonNull<t.TypeOf<Codec>>>>
    : ExtColumn<ExtOf<Codec>, D, Codec extends t.UnionType<any, any, any, any> ? null : never>
  : never
/** The SQL kind of a date/timestamp/decimal/JSON codec (also inside a nullable union), else never. */
type ExtOf<C> = C extends t.UnionType<infer CS extends t.Any[], any, any, any> ? ExtOf<CS[number]> : C extends SqlKindTag<infer K> ? ([K] extends [never] ? never : [K] extends [ExtKind] ? K : never) : never
/** What the drivers return and accept for the columns `createTable` makes for these codecs; `V` is `null` for a nullable column. */
type ExtColumn<K extends ExtKind, D extends SchemaDialect, V> = D extends 'sqlite'
  ? K extends 'decimal'
    ? Nullable<number, number | bigint, number | bigint, V>
    : Nullable<string, string, string, V>
  : K extends 'date'
    ? Nullable<Date, string | Date, string | Date, V>
    : K extends 'timestamp'
      ? Nullable<Date, Date | string, Date | string, V>
      : K extends 'decimal'
        ? Nullable<string, string | number, string | number, V>
        : Nullable<unknown, string, string, V>
type IsInt<V> = [V] extends [t.Branded<number, t.IntBrand>] ? true : false

/** A column from its TypeScript value type; `int` when known to be an integer column. */
type ValueColumn<V, D extends SchemaDialect, Int extends boolean | 'unknown'> =
  [NonNull<V>] extends [boolean]
    ? D extends 'sqlite'
      ? Nullable<number, number, number, V>
      : Nullable<boolean, boolean, boolean, V>
    : [NonNull<V>] extends [number]
      ? D extends 'sqlite'
        ? Nullable<number, number, number, V>
        : Int extends true
          ? Nullable<string, number | bigint | string, number | bigint | string, V>
          : Int extends false
            ? Nullable<number, number, number, V>
            : Nullable<number | string, number | bigint | string, number | bigint | string, V>
      : Nullable<Unbranded<NonNull<V>>, Unbranded<NonNull<V>>, Unbranded<NonNull<V>>, V>
type Unbranded<V> = V extends t.Brand<any> ? (V extends string ? string : V extends number ? number : V) : V

/** Kysely's table type for one declaration. */
export type KyselyTable<T extends AnyTable, D extends SchemaDialect = 'sqlite'> = T extends DeclaredColumns<infer C>
  ? [C] extends [undefined]
    ? RowTable<T, D>
    : { -readonly [F in keyof NonNullable<C>]: CodecColumn<NonNullable<C>[F], D> }
  : RowTable<T, D>
type RowTable<T, D extends SchemaDialect> = T extends Table<string, infer Row, any> ? { -readonly [F in keyof Row]: ValueColumn<Row[F], D, 'unknown'> } : never

/**
 * Kysely's `Database` type for a list of table declarations (or a `defineSchema` result) on one
 * dialect (default `'sqlite'`).
 *
 * @example
 * ```ts
 * type DB = KyselySchema<[typeof departments, typeof employees]>
 * const db = new Kysely<DB>({ dialect: new SqliteDialect({ database: new Database(':memory:') }) })
 * await db.insertInto('employees').values({ id: 1, dept: 'Sales', name: 'alan', salary: 700 }).execute()
 * await run(db, Q.for(employees, (e) => Q.yield(e.name)))   // the same instance runs DSL queries
 * ```
 */
export type KyselySchema<Tables extends readonly AnyTable[] | Schema<readonly AnyTable[]>, D extends SchemaDialect = 'sqlite'> = {
  -readonly [T in TablesOf<Tables>[number] as T['name']]: KyselyTable<T, D>
}
type TablesOf<X> = X extends Schema<infer T> ? T : X extends readonly AnyTable[] ? X : never

/**
 * Declare tables together: `defineSchema(departments, employees)`. Returns `{ tables }` (the
 * same declarations, frozen, in order); `KyselySchema<typeof schema>` is its Kysely type, and
 * `createTables(db, schema)` creates the tables. Rejects duplicate names.
 */
export function defineSchema<const T extends readonly AnyTable[]>(...tables: T): Schema<T> {
  const seen = new Set<string>()
  tables.forEach((tb, i) => {
    if (!(tb instanceof Table)) throw new LineageQueryError('argument', `defineSchema: argument ${i} is not a table declaration (table(...)), got ${showValue(tb)}`)
    if (seen.has(tb.name)) throw new LineageQueryError('schema', `defineSchema: table \`${tb.name}\` is declared twice`, { table: tb.name })
    seen.add(tb.name)
  })
  return Object.freeze({ tables: Object.freeze([...tables]) as unknown as T })
}

/** `createTable` for every table of a schema, in order (one at a time). */
export async function createTables(db: Kysely<any>, schema: Schema<readonly AnyTable[]>, options: { ifNotExists?: boolean } = {}): Promise<void> {
  for (const tb of schema.tables) await createTable(db, tb, options)
}
