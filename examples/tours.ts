/**
 * The tours example of the lineage design notes: agencies and the external tours they sell.
 * Run: npx tsx examples/tours.ts
 */
import Database from 'better-sqlite3'
import * as t from 'io-ts'
import { Kysely, SqliteDialect } from 'kysely'
import { compile, createTable, insertRows, lineage, Q, run, sourceRows, table } from '../src/index.js'

export const agencies = table('agencies', { id: t.Int, name: t.string, based_in: t.string, phone: t.string })
export const externalTours = table('externalTours', { id: t.Int, name: t.string, destination: t.string, type: t.string, price: t.Int })

export async function loadTours(db: Kysely<any>): Promise<void> {
  await createTable(db, agencies)
  await createTable(db, externalTours)
  await insertRows(db, agencies, [
    { id: 1, name: 'EdinTours', based_in: 'Edinburgh', phone: '412 1200' },
    { id: 2, name: 'Burns', based_in: 'Glasgow', phone: '607 3000' },
  ])
  await insertRows(db, externalTours, [
    { id: 1, name: 'EdinTours', destination: 'Edinburgh', type: 'bus', price: 20 },
    { id: 2, name: 'EdinTours', destination: 'Loch Ness', type: 'bus', price: 50 },
    { id: 3, name: 'EdinTours', destination: 'Loch Ness', type: 'boat', price: 200 },
    { id: 4, name: 'EdinTours', destination: 'Firth of Forth', type: 'boat', price: 50 },
    { id: 5, name: 'Burns', destination: 'Islay', type: 'boat', price: 100 },
    { id: 6, name: 'Burns', destination: 'Mallaig', type: 'train', price: 40 },
  ])
}

/** q2 of the notes: boat tours with the phone number of the agency that sells them. */
export const boatTours = Q.for(agencies, (a) =>
  Q.for(externalTours, (et) => Q.where(Q.and(Q.eq(a.name, et.name), Q.eq(et.type, 'boat')), Q.yield({ name: et.name, phone: a.phone }))),
)

/** Each agency with its tours, nested. */
export const agencyTours = Q.for(agencies, (a) =>
  Q.yield({ agency: a.name, tours: Q.for(externalTours, (et) => Q.where(Q.eq(a.name, et.name), Q.yield({ to: et.destination, price: et.price }))) }),
)

export async function main(db?: Kysely<any>): Promise<void> {
  const own = db === undefined
  db ??= new Kysely<any>({ dialect: new SqliteDialect({ database: new Database(':memory:') }) })
  if (own) await loadTours(db)
  console.log('-- boat tours, with lineage:')
  console.log(compile(lineage(boatTours), 'sqlite').statements[0]!.sql)
  const rows = await run(db, lineage(boatTours))
  for (const r of rows) console.log(JSON.stringify(r))
  console.log('-- the source rows of that whole result:')
  console.log(JSON.stringify(sourceRows(rows)))
  console.log('-- each agency with its tours; every inner tour carries its own lineage:')
  for (const r of await run(db, lineage(agencyTours))) console.log(JSON.stringify(r))
  if (own) await db.destroy()
}

if (import.meta.url === `file://${process.argv[1]}`) await main()
