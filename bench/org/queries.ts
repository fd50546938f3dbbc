/**
 * The organisation queries of benchmarks.md section 1, written with the DSL, and for each the
 * hand-written SQL a person would write for the same result on each dialect: the same joins,
 * nested collections as JSON arrays aggregated in correlated subqueries, flat queries as plain
 * joins. Each DSL query is a function so that every call builds a fresh query object.
 */
import { Q } from '../lib.js'
import type { AnyQuery, Dialect, Expr } from '../lib.js'
import { contacts, departments, employees, tasks } from './schema.js'

// ---------------------------------------------------------------- helpers (plain TS functions)

interface HasName { readonly name: Expr<string> }
interface HasEmployee { readonly employee: Expr<string> }

/** tasksOfEmp(e) = for t in tasks where t.employee == e.name yield t.task */
export const tasksOfEmp = (e: HasName) => Q.for(tasks, (t) => Q.where(Q.eq(t.employee, e.name), Q.yield(t.task)))

/**
 * employeesByTask(t) = for e in employees for d in departments
 *   where e.name == t.employee && e.dept == d.name yield {name: e.name, salary: e.salary, tasks: tasksOfEmp(e)}
 */
export const employeesByTask = (t: HasEmployee) =>
  Q.for(employees, (e) =>
    Q.for(departments, (d) =>
      Q.where(Q.and(Q.eq(e.name, t.employee), Q.eq(e.dept, d.name)), Q.yield({ name: e.name, salary: e.salary, tasks: tasksOfEmp(e) })),
    ),
  )

// ---------------------------------------------------------------- the queries

/** Q3: for e in employees yield {b: tasksOfEmp(e), e: e.name} */
export const Q3 = () => Q.for(employees, (e) => Q.yield({ b: tasksOfEmp(e), e: e.name }))

/** Q4: for d in departments yield {dpt: d.name, emps: for e in employees where d.name == e.dept yield e.name} */
export const Q4 = () =>
  Q.for(departments, (d) => Q.yield({ dpt: d.name, emps: Q.for(employees, (e) => Q.where(Q.eq(d.name, e.dept), Q.yield(e.name))) }))

/** Q5: for t in tasks yield {a: t.task, b: employeesByTask(t)} */
export const Q5 = () => Q.for(tasks, (t) => Q.yield({ a: t.task, b: employeesByTask(t) }))

/** AQ6: outliers of each department, through a nested intermediate collection `d.employees`. */
export const AQ6 = () =>
  Q.for(
    Q.for(departments, (d) =>
      Q.yield({
        employees: Q.for(employees, (e) => Q.where(Q.eq(d.name, e.dept), Q.yield({ name: e.name, salary: e.salary }))),
        name: d.name,
      }),
    ),
    (d) =>
      Q.yield({
        department: d.name,
        outliers: Q.for(d.employees, (o) => Q.where(Q.or(Q.gt(o.salary, 1000000), Q.lt(o.salary, 1000)), Q.yield(o))),
      }),
  )

/** Q7: outlier employees with their department (flat). */
export const Q7 = () =>
  Q.for(departments, (d) =>
    Q.for(employees, (e) =>
      Q.where(
        Q.and(Q.eq(d.name, e.dept), Q.or(Q.gt(e.salary, 1000000), Q.lt(e.salary, 1000))),
        Q.yield({ employee: { name: e.name, salary: e.salary }, department: d.name }),
      ),
    ),
  )

/** QF3: pairs of distinct employees with the same department and salary (flat, quadratic). */
export const QF3 = () =>
  Q.for(employees, (e1) =>
    Q.for(employees, (e2) =>
      Q.where(Q.and(Q.eq(e1.dept, e2.dept), Q.eq(e1.salary, e2.salary), Q.ne(e1.name, e2.name)), Q.yield({ a: e1.name, b: e2.name })),
    ),
  )

/** QF4: (for t in tasks where t.task == "abstract" yield t.employee) ++ (for e in employees where e.salary > 50000 yield e.name) */
export const QF4 = () =>
  Q.union(
    Q.for(tasks, (t) => Q.where(Q.eq(t.task, 'abstract'), Q.yield(t.employee))),
    Q.for(employees, (e) => Q.where(Q.gt(e.salary, 50000), Q.yield(e.name))),
  )

/** QC4: pairs of distinct employees of a department with both their tasks, tagged "a"/"b" (quadratic). */
export const QC4 = () =>
  Q.for(employees, (x) =>
    Q.for(employees, (y) =>
      Q.where(
        Q.and(Q.eq(x.dept, y.dept), Q.ne(x.name, y.name)),
        Q.yield({
          a: x.name,
          b: y.name,
          c: Q.union(
            Q.for(tasks, (t) => Q.where(Q.eq(x.name, t.employee), Q.yield({ doer: 'a', task: t.task }))),
            Q.for(tasks, (t) => Q.where(Q.eq(y.name, t.employee), Q.yield({ doer: 'b', task: t.task }))),
          ),
        }),
      ),
    ),
  )

/** Q6N: per department, its outlier employees with their tasks ++ its client contacts with tasks ["buy"]. */
export const Q6N = () =>
  Q.for(departments, (x) =>
    Q.yield({
      department: x.name,
      people: Q.union(
        Q.for(employees, (y) =>
          Q.where(
            Q.and(Q.eq(x.name, y.dept), Q.or(Q.lt(y.salary, 1000), Q.gt(y.salary, 1000000))),
            Q.yield({ name: y.name, tasks: Q.for(tasks, (z) => Q.where(Q.eq(z.employee, y.name), Q.yield(z.task))) }),
          ),
        ),
        Q.for(contacts, (y) => Q.where(Q.and(Q.eq(x.name, y.dept), y.client), Q.yield({ name: y.dept, tasks: Q.values(['buy']) }))),
      ),
    }),
  )

// ---------------------------------------------------------------- hand-written SQL

type Row = Record<string, unknown>

/** A JSON column: SQLite returns text, node-postgres has already parsed `json`. */
const json = (v: unknown): unknown => (typeof v === 'string' ? JSON.parse(v) : v)
const arr = (v: unknown): unknown[] => json(v) as unknown[]
const tuples = (v: unknown): unknown[][] => json(v) as unknown[][]

export interface BenchQuery {
  readonly name: string
  /** Build a fresh DSL query object. */
  readonly build: () => AnyQuery
  /** The hand-written SQL per dialect. */
  readonly hand: Readonly<Record<Dialect, string>>
  /** A row of the hand-written query in the shape `run` returns for the DSL query. */
  readonly handRow: (row: Row) => unknown
  /** Quadratic in the number of employees per department. */
  readonly quadratic: boolean
}

export const queries: readonly BenchQuery[] = [
  {
    name: 'Q3',
    build: Q3,
    hand: {
      sqlite: 'select e.name as e, (select json_group_array(t.task) from tasks t where t.employee = e.name) as b from employees e',
      postgres:
        "select e.name as e, coalesce((select json_agg(t.task) from tasks t where t.employee = e.name), '[]'::json) as b from employees e",
    },
    handRow: (r) => ({ b: arr(r.b), e: r.e }),
    quadratic: false,
  },
  {
    name: 'Q4',
    build: Q4,
    hand: {
      sqlite: 'select d.name as dpt, (select json_group_array(e.name) from employees e where e.dept = d.name) as emps from departments d',
      postgres:
        "select d.name as dpt, coalesce((select json_agg(e.name) from employees e where e.dept = d.name), '[]'::json) as emps from departments d",
    },
    handRow: (r) => ({ dpt: r.dpt, emps: arr(r.emps) }),
    quadratic: false,
  },
  {
    name: 'Q5',
    build: Q5,
    hand: {
      sqlite:
        'select t.task as a, (select json_group_array(json_array(e.name, e.salary, ' +
        'json((select json_group_array(t2.task) from tasks t2 where t2.employee = e.name)))) ' +
        'from employees e join departments d on e.dept = d.name where e.name = t.employee) as b from tasks t',
      postgres:
        'select t.task as a, coalesce((select json_agg(json_build_array(e.name, e.salary, ' +
        "coalesce((select json_agg(t2.task) from tasks t2 where t2.employee = e.name), '[]'::json))) " +
        "from employees e join departments d on e.dept = d.name where e.name = t.employee), '[]'::json) as b from tasks t",
    },
    handRow: (r) => ({ a: r.a, b: tuples(r.b).map(([name, salary, ts]) => ({ name, salary, tasks: ts })) }),
    quadratic: false,
  },
  {
    name: 'AQ6',
    build: AQ6,
    hand: {
      sqlite:
        'select d.name as department, (select json_group_array(json_array(e.name, e.salary)) from employees e ' +
        'where e.dept = d.name and (e.salary > 1000000 or e.salary < 1000)) as outliers from departments d',
      postgres:
        'select d.name as department, coalesce((select json_agg(json_build_array(e.name, e.salary)) from employees e ' +
        "where e.dept = d.name and (e.salary > 1000000 or e.salary < 1000)), '[]'::json) as outliers from departments d",
    },
    handRow: (r) => ({ department: r.department, outliers: tuples(r.outliers).map(([name, salary]) => ({ name, salary })) }),
    quadratic: false,
  },
  {
    name: 'Q7',
    build: Q7,
    hand: {
      sqlite:
        'select e.name as name, e.salary as salary, d.name as department from departments d join employees e on e.dept = d.name ' +
        'where e.salary > 1000000 or e.salary < 1000',
      postgres:
        'select e.name as name, e.salary as salary, d.name as department from departments d join employees e on e.dept = d.name ' +
        'where e.salary > 1000000 or e.salary < 1000',
    },
    handRow: (r) => ({ employee: { name: r.name, salary: r.salary }, department: r.department }),
    quadratic: false,
  },
  {
    name: 'QF3',
    build: QF3,
    hand: {
      sqlite:
        'select e1.name as a, e2.name as b from employees e1 join employees e2 ' +
        'on e1.dept = e2.dept and e1.salary = e2.salary and e1.name <> e2.name',
      postgres:
        'select e1.name as a, e2.name as b from employees e1 join employees e2 ' +
        'on e1.dept = e2.dept and e1.salary = e2.salary and e1.name <> e2.name',
    },
    handRow: (r) => ({ a: r.a, b: r.b }),
    quadratic: true,
  },
  {
    name: 'QF4',
    build: QF4,
    hand: {
      sqlite: "select t.employee as v from tasks t where t.task = 'abstract' union all select e.name from employees e where e.salary > 50000",
      postgres: "select t.employee as v from tasks t where t.task = 'abstract' union all select e.name from employees e where e.salary > 50000",
    },
    handRow: (r) => r.v,
    quadratic: false,
  },
  {
    name: 'QC4',
    build: QC4,
    hand: {
      sqlite:
        'select x.name as a, y.name as b, (select json_group_array(json_array(c.doer, c.task)) from (' +
        "select 'a' as doer, t.task as task from tasks t where t.employee = x.name " +
        "union all select 'b', t.task from tasks t where t.employee = y.name) c) as c " +
        'from employees x join employees y on x.dept = y.dept and x.name <> y.name',
      postgres:
        'select x.name as a, y.name as b, coalesce((select json_agg(json_build_array(c.doer, c.task)) from (' +
        "select 'a' as doer, t.task as task from tasks t where t.employee = x.name " +
        "union all select 'b', t.task from tasks t where t.employee = y.name) c), '[]'::json) as c " +
        'from employees x join employees y on x.dept = y.dept and x.name <> y.name',
    },
    handRow: (r) => ({ a: r.a, b: r.b, c: tuples(r.c).map(([doer, task]) => ({ doer, task })) }),
    quadratic: true,
  },
  {
    name: 'Q6N',
    build: Q6N,
    hand: {
      sqlite:
        'select x.name as department, (select json_group_array(json_array(p.name, json(p.tasks))) from (' +
        'select y.name as name, (select json_group_array(z.task) from tasks z where z.employee = y.name) as tasks ' +
        'from employees y where y.dept = x.name and (y.salary < 1000 or y.salary > 1000000) ' +
        "union all select c.dept, json_array('buy') from contacts c where c.dept = x.name and c.client) p) as people " +
        'from departments x',
      postgres:
        'select x.name as department, coalesce((select json_agg(json_build_array(p.name, p.tasks)) from (' +
        "select y.name as name, coalesce((select json_agg(z.task) from tasks z where z.employee = y.name), '[]'::json) as tasks " +
        'from employees y where y.dept = x.name and (y.salary < 1000 or y.salary > 1000000) ' +
        "union all select c.dept, json_build_array('buy') from contacts c where c.dept = x.name and c.client) p), '[]'::json) as people " +
        'from departments x',
    },
    handRow: (r) => ({ department: r.department, people: tuples(r.people).map(([name, ts]) => ({ name, tasks: ts })) }),
    quadratic: false,
  },
]
