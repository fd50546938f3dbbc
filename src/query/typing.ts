/**
 * Typing rules of the scalar operators and aggregates: which operand types each accepts and
 * the type it produces. Pure; used by the normaliser, which reports `type` errors at the
 * construct that is wrong.
 */
import { LineageQueryError } from '../errors.js'
import type { AggFn, ScalarOp } from './ast.js'
import { BOOL, NBOOL } from './normal.js'
import { showType, unify, type ScalarKind, type SType } from './schema.js'

const isNum = (k: ScalarKind) => k === 'int' || k === 'real' || k === 'null'
/** Numbers and decimals: what arithmetic takes. */
const isArith = (k: ScalarKind) => isNum(k) || k === 'decimal'
const isDateLike = (k: ScalarKind) => k === 'date' || k === 'timestamp' || k === 'null'

/**
 * The type of arithmetic on `types`: integers stay integers, a real makes a real, a decimal a
 * decimal (of `scale`); decimals and reals do not mix (no silent rounding to a double).
 */
function arith(op: string, types: readonly SType[], scale: (scales: number[]) => number): SType {
  const nullable = anyNullable(types)
  if (types.some((t) => t.kind === 'decimal')) {
    if (types.some((t) => t.kind === 'real')) fail(op, 'decimals and reals do not mix (no silent rounding); use Q.decimal(...) constants or decimal columns', types)
    return { kind: 'decimal', nullable, scale: scale(types.map((t) => (t.kind === 'decimal' ? (t.scale ?? 0) : 0))) }
  }
  return { kind: types.every((t) => t.kind === 'int' || t.kind === 'null') ? 'int' : 'real', nullable }
}

function fail(op: string, message: string, types: readonly SType[]): never {
  throw new LineageQueryError('type', `Q.${op}: ${message} (operand types: ${types.map(showType).join(', ')})`, { op, types: types.map(showType) })
}

function need(op: string, types: readonly SType[], ok: (k: ScalarKind) => boolean, expected: string): void {
  for (const t of types) if (!ok(t.kind)) fail(op, `expected ${expected}`, types)
}

function arity(op: string, types: readonly SType[], min: number, max = min): void {
  if (types.length < min || types.length > max) {
    const want = max === Infinity ? `at least ${min}` : min === max ? `${min}` : `${min} to ${max}`
    throw new LineageQueryError('type', `Q.${op} takes ${want} operand(s), got ${types.length}`, { op })
  }
}

const anyNullable = (types: readonly SType[]) => types.some((t) => t.nullable)

/** The result type of `op` applied to operands of `types`; throws a `type` error otherwise. */
export function opType(op: ScalarOp, types: readonly SType[]): SType {
  switch (op) {
    case 'eq': case 'ne': case 'lt': case 'le': case 'gt': case 'ge': {
      arity(op, types, 2)
      if (unify(types[0]!, types[1]!) === undefined) fail(op, 'cannot compare values of different types', types)
      if (op !== 'eq' && op !== 'ne' && types.some((t) => t.kind === 'json')) fail(op, 'JSON values compare only for equality (Q.eq, Q.ne)', types)
      return anyNullable(types) ? NBOOL : BOOL
    }
    case 'and': case 'or': case 'not': {
      if (op === 'not') arity(op, types, 1)
      need(op, types, (k) => k === 'boolean' || k === 'null', 'boolean operands')
      return anyNullable(types) ? NBOOL : BOOL
    }
    case 'add': case 'sub': case 'mul': case 'neg': case 'abs': {
      arity(op, types, op === 'neg' || op === 'abs' ? 1 : 2)
      need(op, types, isArith, 'numbers or decimals')
      return arith(op, types, (ss) => (op === 'mul' ? ss.reduce((a, b) => a + b, 0) : Math.max(...ss)))
    }
    case 'div':
      arity(op, types, 2)
      need(op, types, isArith, 'numbers or decimals')
      return { kind: 'real', nullable: true }
    case 'mod':
      arity(op, types, 2)
      need(op, types, (k) => k === 'int' || k === 'null', 'integer operands (t.Int columns or integer constants)')
      return { kind: 'int', nullable: true }
    case 'concat':
      arity(op, types, 1, Infinity)
      need(op, types, (k) => k === 'string' || k === 'null', 'strings')
      return { kind: 'string', nullable: anyNullable(types) }
    case 'lower': case 'upper':
      arity(op, types, 1)
      need(op, types, (k) => k === 'string' || k === 'null', 'a string')
      return { kind: 'string', nullable: anyNullable(types) }
    case 'length':
      arity(op, types, 1)
      need(op, types, (k) => k === 'string' || k === 'null', 'a string')
      return { kind: 'int', nullable: anyNullable(types) }
    case 'like':
      arity(op, types, 2)
      need(op, types, (k) => k === 'string' || k === 'null', 'strings')
      return { kind: 'boolean', nullable: anyNullable(types) }
    case 'isNull': case 'isNotNull':
      arity(op, types, 1)
      return BOOL
    case 'isNotDistinct':
      arity(op, types, 2)
      if (unify(types[0]!, types[1]!) === undefined) fail(op, 'cannot compare values of different types', types)
      return BOOL
    case 'in': {
      arity(op, types, 1, Infinity)
      for (const t of types.slice(1)) if (unify(types[0]!, t) === undefined) fail(op, 'list values must have the type of the tested value', types)
      return anyNullable(types) ? NBOOL : BOOL
    }
    case 'case': {
      if (types.length < 3 || types.length % 2 === 0) throw new LineageQueryError('type', 'Q.case takes [condition, value] pairs and a default', { op })
      const values = caseValues(types)
      for (let i = 0; i + 1 < types.length; i += 2) {
        const c = types[i]!
        if (c.kind !== 'boolean' && c.kind !== 'null') fail(op, `condition ${i / 2 + 1} must be boolean, got ${showType(c)}`, types)
      }
      let acc: SType = values[0]!
      for (const t of values.slice(1)) {
        const u = unify(acc, t)
        if (u === undefined) fail(op, 'all values (and the default) must have one type', values)
        acc = u
      }
      return acc
    }
    case 'substring':
      arity(op, types, 2, 3)
      need(op, types.slice(0, 1), (k) => k === 'string' || k === 'null', 'a string')
      need(op, types.slice(1), (k) => k === 'int' || k === 'null', 'integer positions and lengths')
      return { kind: 'string', nullable: anyNullable(types) }
    case 'trim':
      arity(op, types, 1)
      need(op, types, (k) => k === 'string' || k === 'null', 'a string')
      return { kind: 'string', nullable: anyNullable(types) }
    case 'round': {
      arity(op, types, 2)
      const x = types[0]!
      need(op, [x], isArith, 'a number or a decimal')
      // The digits (types[1]) are a constant the normaliser checked; the scale is fixed there.
      return x.kind === 'null' ? { kind: 'int', nullable: true } : x
    }
    case 'year': case 'month': case 'day':
      arity(op, types, 1)
      need(op, types, isDateLike, 'a date or a timestamp')
      return { kind: 'int', nullable: anyNullable(types) }
    case 'addDays': case 'addMonths': case 'addYears':
      arity(op, types, 2)
      need(op, types.slice(0, 1), (k) => k === 'date' || k === 'null', 'a date (DateString)')
      need(op, types.slice(1), (k) => k === 'int' || k === 'null', 'an integer count')
      return { kind: 'date', nullable: anyNullable(types) }
    case 'coalesce': {
      arity(op, types, 1, Infinity)
      let acc: SType = types[0]!
      for (const t of types.slice(1)) {
        const u = unify(acc, t)
        if (u === undefined) fail(op, 'all arguments must have one type', types)
        acc = u
      }
      return { ...acc, nullable: types.every((t) => t.nullable) }
    }
  }
}

/** The value operands of a `case` (every second one, and the default). */
export function caseValues<T>(args: readonly T[]): T[] {
  const out: T[] = []
  for (let i = 1; i < args.length; i += 2) out.push(args[i]!)
  out.push(args[args.length - 1]!)
  return out
}

/** The result type of an aggregate over elements of type `elem` (undefined: not scalars). */
export function aggType(fn: AggFn, elem: SType | undefined): SType {
  if (fn === 'count') return { kind: 'int', nullable: false }
  if (elem === undefined) {
    throw new LineageQueryError('type', `Q.${fn} needs a query of scalars; use Q.${fn}(query, (row) => row.column) to pick one`, { op: fn })
  }
  // Over NULLs only (`Q.min(Q.yield(null))`) every aggregate but count is NULL.
  if (elem.kind === 'null') return { kind: fn === 'avg' ? 'real' : 'null', nullable: true }
  if (fn === 'sum' || fn === 'avg') {
    if (!isArith(elem.kind)) throw new LineageQueryError('type', `Q.${fn} needs numbers or decimals, got ${showType(elem)}`, { op: fn })
    // The sum of decimals is exact (same scale); their average is a real.
    return fn === 'avg' ? { kind: 'real', nullable: true } : { ...elem, nullable: true }
  }
  if (elem.kind === 'boolean' || elem.kind === 'json') throw new LineageQueryError('type', `Q.${fn} needs strings, numbers, decimals, dates or timestamps, got ${elem.kind}`, { op: fn })
  return { ...elem, nullable: true }
}
