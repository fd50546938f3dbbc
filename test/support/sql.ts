/** The SQL text queries compile to, for tests that pin it. */
import { expect } from 'vitest'
import { compile, type AnyQuery } from '../../src/index.js'

/** The SQL of the one statement `q` compiles to on dialect `d`. */
export const sqlOf = (q: AnyQuery, d: 'sqlite' | 'postgres' = 'sqlite'): string => compile(q, d).statements[0]!.sql

/** The SQL of `q` on each dialect, checked to be one statement. */
export function sqlByDialect(q: AnyQuery): Record<'sqlite' | 'postgres', string> {
  const out = {} as Record<'sqlite' | 'postgres', string>
  for (const d of ['sqlite', 'postgres'] as const) {
    const c = compile(q, d)
    expect(c.statements).toHaveLength(1)
    out[d] = c.statements[0]!.sql
  }
  return out
}

/** How many times `sub` occurs in `s`. */
export const occurrences = (s: string, sub: string): number => s.split(sub).length - 1
