/**
 * The organisation workload's schema (benchmarks.md section 1): the four tables declared with
 * the DSL, and the DDL creating them (with the listed indexes) on SQLite and PostgreSQL.
 */
import * as t from 'io-ts'
import { table } from '../lib.js'
import type { Dialect } from '../lib.js'

export const departments = table('departments', { id: t.Int, name: t.string })
export const employees = table('employees', { id: t.Int, dept: t.string, name: t.string, salary: t.Int })
export const tasks = table('tasks', { id: t.Int, employee: t.string, task: t.string })
export const contacts = table('contacts', { id: t.Int, dept: t.string, name: t.string, client: t.boolean })

/** Statements creating the four tables and their indexes (run on an empty schema). */
export function ddl(dialect: Dialect): string[] {
  const bool = dialect === 'postgres' ? 'boolean' : 'integer'
  return [
    'create table departments (id integer primary key, name text not null)',
    'create table employees (id integer primary key, dept text not null, name text not null, salary integer not null)',
    'create table tasks (id integer primary key, employee text not null, task text not null)',
    `create table contacts (id integer primary key, dept text not null, name text not null, client ${bool} not null)`,
    'create index tasks_employee on tasks (employee)',
    'create index tasks_task on tasks (task)',
    'create index employees_dept on employees (dept)',
    'create index contacts_dept on contacts (dept)',
  ]
}

export const tableNames = ['departments', 'employees', 'tasks', 'contacts'] as const
