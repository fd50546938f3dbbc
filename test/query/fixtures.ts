/** The organisation schema used by the fixed tests (a small version of the benchmark's). */
import * as t from 'io-ts'
import { Q, table, type Expr } from '../../src/index.js'

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
