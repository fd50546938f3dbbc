/** The organisation schema used by the fixed tests (a small version of the benchmark's). */
import * as t from 'io-ts'
import type { Kysely } from 'kysely'
import { expect } from 'vitest'
import { AST, createTable, insertRows, lineage, plainLineage, Q, run, table, type AnyQuery, type Expr } from '../../src/index.js'
import { evaluate, evaluateLineage } from '../oracle/evaluate.js'
import { compareBags, show } from '../support/bags.js'
import { statementsOf } from '../support/count.js'

export const departments = table('departments', { id: t.Int, name: t.string })
export const employees = table('employees', { id: t.Int, dept: t.string, name: t.string, salary: t.Int, nick: t.union([t.string, t.null]), boss: t.boolean })
export const tasks = table('tasks', { id: t.Int, employee: t.string, task: t.string })

export const data = {
  departments: [{ id: 1, name: 'Sales' }, { id: 2, name: 'Research' }, { id: 3, name: 'Empty' }],
  employees: [
    { id: 1, dept: 'Sales', name: 'alan', salary: 700, nick: 'al', boss: true },
    { id: 2, dept: 'Sales', name: 'bert', salary: 2000000, nick: null, boss: false },
    { id: 3, dept: 'Research', name: 'cora', salary: 60000, nick: "o'hara \"c\"", boss: false },
  ],
  tasks: [
    { id: 1, employee: 'alan', task: 'abstract' },
    { id: 2, employee: 'alan', task: 'buy' },
    { id: 3, employee: 'cora', task: 'call' },
  ],
}

export const tasksOf = (e: { name: Expr<string> }) => Q.for(tasks, (t) => Q.where(Q.eq(t.employee, e.name), Q.yield(t.task)))

/** Creates the three tables in `db` and inserts `data`. */
export async function loadFixtures(db: Kysely<any>): Promise<void> {
  for (const tb of [departments, employees, tasks]) await createTable(db, tb)
  await insertRows(db, departments, data.departments)
  await insertRows(db, employees, data.employees)
  await insertRows(db, tasks, data.tasks)
}

/** `q` over `data` runs in one statement and gives the oracle's bag, plain and under `lineage`. */
export async function expectOracle(db: Kysely<any>, q: AnyQuery): Promise<void> {
  const { statements, result } = await statementsOf(db, (d) => run(d, q))
  expect(statements).toBe(1)
  const expected = evaluate(q[AST], data) as unknown[]
  expect(compareBags(result as unknown[], expected), `actual: ${show(result)}\nexpected: ${show(expected)}`).toEqual({ ok: true })
  const annotated = plainLineage(await run(db, lineage(q))) as unknown[]
  const expectedLin = evaluateLineage(q[AST], data) as unknown[]
  expect(compareBags(annotated, expectedLin), `actual: ${show(annotated)}\nexpected: ${show(expectedLin)}`).toEqual({ ok: true })
}
