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
      return anyNullable(types) ? NBOOL : BOOL
    }
    case 'and': case 'or': case 'not': {
      if (op === 'not') arity(op, types, 1)
      need(op, types, (k) => k === 'boolean' || k === 'null', 'boolean operands')
      return anyNullable(types) ? NBOOL : BOOL
    }
    case 'add': case 'sub': case 'mul': case 'neg': case 'abs': {
      arity(op, types, op === 'neg' || op === 'abs' ? 1 : 2)
      need(op, types, isNum, 'numbers')
      return { kind: types.every((t) => t.kind === 'int' || t.kind === 'null') ? 'int' : 'real', nullable: anyNullable(types) }
    }
    case 'div':
      arity(op, types, 2)
      need(op, types, isNum, 'numbers')
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
    case 'coalesce': {
      arity(op, types, 1, Infinity)
      let acc: SType = types[0]!
      for (const t of types.slice(1)) {
        const u = unify(acc, t)
        if (u === undefined) fail(op, 'all arguments must have one type', types)
        acc = u
      }
      return { kind: acc.kind, nullable: types.every((t) => t.nullable) }
    }
  }
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
    if (!isNum(elem.kind)) throw new LineageQueryError('type', `Q.${fn} needs numbers, got ${showType(elem)}`, { op: fn })
    return { kind: fn === 'avg' ? 'real' : elem.kind, nullable: true }
  }
  if (elem.kind === 'boolean') throw new LineageQueryError('type', `Q.${fn} needs strings or numbers, got boolean`, { op: fn })
  return { kind: elem.kind, nullable: true }
}
