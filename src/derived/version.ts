/**
 * Code versions: by default a SHA-256 over the function's source text, the contents of every
 * file it declares it depends on, the user's `version` string, the output codecs narrower than
 * their SQL column type (`t.keyof`, literals, refinements other than `t.Int`), and `params`. Any change to one of them
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
  /** The output codecs: those narrower than their SQL type (see `codecShape`) are part of the version. */
  readonly output?: Readonly<Record<string, unknown>> | undefined
  /** Values the function depends on besides its input (e.g. a threshold it captures), as JSON. */
  readonly params?: unknown
}

/**
 * A structural description of an io-ts codec (the same for two codecs that accept the same
 * values by the same shape): `string`, `keyof["a","b"]`, `literal:"x"`, `Int`,
 * `refine<Positive>(number)`, unions as sorted `a|b`. `plain` when it only names what the SQL
 * column type already fixes (string, number, boolean, null, Int).
 */
export function codecShape(codec: unknown): { readonly shape: string; readonly plain: boolean } {
  const c = codec as { _tag?: string; name?: string; type?: unknown; types?: readonly unknown[]; value?: unknown; keys?: object }
  switch (c._tag) {
    case 'StringType':
      return { shape: 'string', plain: true }
    case 'NumberType':
      return { shape: 'number', plain: true }
    case 'BooleanType':
      return { shape: 'boolean', plain: true }
    case 'NullType':
      return { shape: 'null', plain: true }
    case 'KeyofType':
      return { shape: `keyof${JSON.stringify(Object.keys(c.keys ?? {}).sort())}`, plain: false }
    case 'LiteralType':
      return { shape: `literal:${JSON.stringify(c.value)}`, plain: false }
    case 'ReadonlyType':
      return codecShape(c.type)
    case 'RefinementType': {
      const inner = codecShape(c.type)
      if (c.name === 'Int' && inner.shape === 'number') return { shape: 'Int', plain: true }
      return { shape: `refine<${c.name ?? ''}>(${inner.shape})`, plain: false }
    }
    case 'UnionType': {
      const parts = (c.types ?? []).map(codecShape)
      return { shape: parts.map((p) => p.shape).sort().join('|'), plain: parts.every((p) => p.plain) }
    }
    default:
      return { shape: `${c._tag ?? 'codec'}<${c.name ?? ''}>`, plain: false }
  }
}

/** JSON text with object keys sorted, or a `schema` error for values JSON cannot hold. */
function stableJson(table: string, v: unknown, path = 'params'): string {
  const fail = (what: string): never => {
    throw new LineageQueryError('schema', `derived table \`${table}\`: ${path} ${what}; params must be JSON data (objects, arrays, strings, finite numbers, booleans, null)`, { table, path })
  }
  if (v === null || typeof v === 'string' || typeof v === 'boolean') return JSON.stringify(v)
  if (typeof v === 'number') return Number.isFinite(v) ? JSON.stringify(v) : fail(`is ${v}`)
  if (Array.isArray(v)) return `[${v.map((x, i) => stableJson(table, x, `${path}[${i}]`)).join(',')}]`
  if (typeof v === 'object' && Object.getPrototypeOf(v) === Object.prototype) {
    return `{${Object.keys(v).sort().map((k) => `${JSON.stringify(k)}:${stableJson(table, (v as Record<string, unknown>)[k], `${path}.${k}`)}`).join(',')}}`
  }
  return fail(`is ${typeof v === 'object' ? (v as object).constructor?.name ?? 'an object' : typeof v}`)
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
  // Added only when present, so versions of derivations without them are those of before.
  const narrow = Object.entries(input.output ?? {}).map(([col, codec]) => [col, codecShape(codec)] as const).filter(([, s]) => !s.plain)
  if (narrow.length > 0) h.update(`\u0000output\u0000${narrow.map(([col, s]) => `${col}:${s.shape}`).join('\u0000')}`)
  if (input.params !== undefined) h.update(`\u0000params\u0000${stableJson(input.table, input.params)}`)
  return h.digest('hex').slice(0, 16)
}
