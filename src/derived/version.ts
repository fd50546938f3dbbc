/**
 * Code versions: by default a SHA-256 over the function's source text, the contents of every
 * file it declares it depends on, and the user's `version` string. Any change to one of them
 * marks every row of the derived table stale (cause `code-changed`).
 */
import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { resolve } from 'node:path'
import { LineageQueryError } from '../errors.js'

export interface VersionInput {
  readonly table: string
  readonly fn: (...args: never[]) => unknown
  readonly version?: string | undefined
  readonly dependsOn?: readonly string[] | undefined
}

/**
 * The code version of a derivation (16 hex digits of a SHA-256).
 *
 * @example
 * ```ts
 * codeVersion({ table: 'parsed', fn: parse, dependsOn: ['src/grammar.txt'], version: '2' })
 * // 'c2b4...'
 * ```
 */
export function codeVersion(input: VersionInput): string {
  const h = createHash('sha256')
  h.update('fn\u0000')
  h.update(Function.prototype.toString.call(input.fn))
  for (const file of [...(input.dependsOn ?? [])].sort()) {
    let content: Buffer
    try {
      content = readFileSync(resolve(file))
    } catch (e) {
      throw new LineageQueryError('schema', `derived table \`${input.table}\`: dependsOn file ${JSON.stringify(file)} cannot be read (${(e as Error).message})`, { table: input.table, file })
    }
    h.update(`\u0000file\u0000${file}\u0000${content.length}\u0000`)
    h.update(content)
  }
  h.update(`\u0000version\u0000${input.version ?? ''}`)
  return h.digest('hex').slice(0, 16)
}
