/**
 * The seed notes' toy language as derived data: each program is a row of the root table
 * `programs`; `parse`, `compile` and `run` are derivations that keep every intermediate table
 * (`parsed`: the AST as JSON, `compiled`: stack-machine code as JSON, `results`: the value).
 *
 * The walk-through: refresh everything (one program has a syntax error, stored as a result,
 * with its downstream rows blocked), edit a program with raw SQL and see what went stale and
 * why, then change `compile` (constant folding) and see the code change propagate only as far
 * as the compiled code actually changed (backdating).
 *
 * Run: npx tsx examples/pipeline.ts   (embedded SQLite, a file in a temp folder)
 */
import Database from 'better-sqlite3'
import * as t from 'io-ts'
import { Kysely, SqliteDialect, sql } from 'kysely'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createTable, insertRows, lineage, openStore, Q, run, table, type Cause, type RefreshReport, type RowStatus, type Store } from '../src/index.js'

// ---------------------------------------------------------------- the language

/**
 * `expr := let NAME = expr in expr | sum`, `sum := product (('+' | '-') product)*`,
 * `product := atom (('*' | '/') atom)*`, `atom := INT | NAME | ( expr )`.
 * The AST in JSON: a number, a variable name, `[op, l, r]`, or `["let", name, value, body]`.
 */
export type Ast = number | string | readonly ['+' | '-' | '*' | '/', Ast, Ast] | readonly ['let', string, Ast, Ast]
type Op = '+' | '-' | '*' | '/'

const KEYWORDS = new Set(['let', 'in'])
const isName = (s: string | undefined): s is string => s !== undefined && /^[A-Za-z_]\w*$/.test(s) && !KEYWORDS.has(s)

export function parse(source: string): Ast {
  const toks: { text: string; col: number }[] = []
  const re = /\s*(\d+|[A-Za-z_]\w*|\S)/y
  for (let m = re.exec(source); m !== null; m = re.exec(source)) toks.push({ text: m[1]!, col: m.index + m[0].length - m[1]!.length + 1 })
  let i = 0
  const peek = (): string | undefined => toks[i]?.text
  const fail = (expected: string): never => {
    const tok = toks[i]
    throw new Error(`syntax error at column ${tok?.col ?? source.length + 1}: expected ${expected}, found ${tok === undefined ? 'end of input' : `'${tok.text}'`}`)
  }
  const skip = (text: string): void => {
    if (peek() !== text) fail(`'${text}'`)
    i++
  }
  const expr = (): Ast => {
    if (peek() !== 'let') return sum()
    i++
    const name = peek()
    if (!isName(name)) return fail('a name')
    i++
    skip('=')
    const value = expr()
    skip('in')
    return ['let', name, value, expr()]
  }
  const binary = (ops: readonly Op[], operand: () => Ast) => (): Ast => {
    let l = operand()
    for (let op = peek(); ops.includes(op as Op); op = peek()) {
      i++
      l = [op as Op, l, operand()]
    }
    return l
  }
  const atom = (): Ast => {
    const tok = peek()
    if (tok === '(') {
      i++
      const e = expr()
      skip(')')
      return e
    }
    if (tok !== undefined && /^\d+$/.test(tok)) return i++, Number(tok)
    if (isName(tok)) return i++, tok
    return fail(`a number, a name or '('`)
  }
  const sum = binary(['+', '-'], binary(['*', '/'], atom))
  const e = expr()
  if (i < toks.length) fail('an operator')
  return e
}

function arith(op: string, l: number, r: number): number {
  if (op === '+' || op === 'add') return l + r
  if (op === '-' || op === 'sub') return l - r
  if (op === '*' || op === 'mul') return l * r
  if (r === 0) throw new Error('division by zero')
  return Math.trunc(l / r)
}

const OPCODE: Record<Op, string> = { '+': 'add', '-': 'sub', '*': 'mul', '/': 'div' }

/**
 * Stack-machine code: `push N`, `load I` (the I-th innermost binding), `bind` (pop into a new
 * binding), `unbind`, `add`, `sub`, `mul`, `div`. Names are resolved here: an unbound name is
 * a compile error.
 */
export function compile(ast: Ast, scope: readonly string[] = []): string[] {
  if (typeof ast === 'number') return [`push ${ast}`]
  if (typeof ast === 'string') {
    const at = scope.lastIndexOf(ast)
    if (at < 0) throw new Error(`unbound variable '${ast}'`)
    return [`load ${scope.length - 1 - at}`]
  }
  if (ast[0] === 'let') return [...compile(ast[2], scope), 'bind', ...compile(ast[3], [...scope, ast[1]]), 'unbind']
  return [...compile(ast[1], scope), ...compile(ast[2], scope), OPCODE[ast[0]]]
}

/** Constant folding: operators over two literals become a literal (a division by zero is left for run time). */
export function fold(ast: Ast): Ast {
  if (typeof ast !== 'object') return ast
  if (ast[0] === 'let') return ['let', ast[1], fold(ast[2]), fold(ast[3])]
  const l = fold(ast[1])
  const r = fold(ast[2])
  return typeof l === 'number' && typeof r === 'number' && !(ast[0] === '/' && r === 0) ? arith(ast[0], l, r) : [ast[0], l, r]
}

export function execute(code: readonly string[]): number {
  const stack: number[] = []
  const env: number[] = []
  const pop = (): number => {
    const v = stack.pop()
    if (v === undefined) throw new Error('stack underflow')
    return v
  }
  for (const ins of code) {
    const [op = '', arg = ''] = ins.split(' ')
    if (op === 'push') stack.push(Number(arg))
    else if (op === 'load') stack.push(env[env.length - 1 - Number(arg)]!)
    else if (op === 'bind') env.push(pop())
    else if (op === 'unbind') env.pop()
    else {
      const r = pop()
      stack.push(arith(op, pop(), r))
    }
  }
  return pop()
}

// ---------------------------------------------------------------- the pipeline

export const programs = table('programs', { id: t.Int, name: t.string, source: t.string })

// The two versions of the compile step. A derivation's code version hashes its function's source
// text (plus `dependsOn` files and `version`): these two arrows differ, so swapping them is a
// code change. (A change inside a helper such as `fold` alone would need `version` or
// `dependsOn` to be noticed.)
const compileV1 = (p: { ast: string }) => ({ code: JSON.stringify(compile(JSON.parse(p.ast) as Ast)) })
const compileV2 = (p: { ast: string }) => ({ code: JSON.stringify(compile(fold(JSON.parse(p.ast) as Ast))) })

/** Declare parse -> compile -> run in `store`; `ran` records the keys `run` is called for. */
function declare(store: Store, compileFn: typeof compileV1, ran: unknown[]) {
  const parsed = store.derive({ name: 'parsed', from: programs, output: { ast: t.string }, fn: (p) => ({ ast: JSON.stringify(parse(p.source)) }) })
  const compiled = store.derive({ name: 'compiled', from: parsed, output: { code: t.string }, fn: compileFn })
  const results = store.derive({
    name: 'results',
    from: compiled,
    output: { value: t.number },
    fn: (c, ctx) => {
      ran.push(ctx.key)
      return { value: execute(JSON.parse(c.code) as string[]) }
    },
  })
  return { parsed, compiled, results }
}

// ---------------------------------------------------------------- printing

const byKey = (a: unknown, b: unknown) => String(a).localeCompare(String(b), 'en', { numeric: true })
const heading = (s: string) => console.log(`\n### ${s}\n`)
const pad = (s: unknown, n: number) => String(s).padEnd(n)

function showReport(r: RefreshReport): void {
  const parts = Object.entries(r.tables).map(([name, c]) => {
    const counts = Object.entries(c).filter(([, n]) => n > 0).map(([k, n]) => `${n} ${k === 'unchanged' ? 'unchanged (backdated)' : k}`)
    return `${name}: ${counts.join(', ') || 'nothing to do'}`
  })
  console.log(`refresh -> ${parts.join(' | ')}`)
}

/** A cause in words; `key` is the row it belongs to (a cause about the same key says "its"). */
function showCause(c: Cause, key: unknown): string {
  const row = 'key' in c ? (String(c.key) === String(key) ? `its ${c.table} row` : `${c.table} ${String(c.key)}`) : c.table
  switch (c.kind) {
    case 'input-changed':
    case 'upstream-changed':
      return `${c.kind}: ${row}, revision ${c.oldRevision} -> ${c.newRevision}`
    case 'code-changed':
      return `code-changed: ${c.table} code version ${c.oldVersion} -> ${c.newVersion}`
    case 'error':
      return `error: ${c.message}`
    default:
      return `${c.kind}: ${row}`
  }
}

/** `store.stale()` rows, one line per table and set of causes. */
function showStale(rows: readonly RowStatus[]): void {
  const groups = new Map<string, { table: string; state: string; keys: unknown[]; causes: string }>()
  for (const r of rows) {
    const causes = r.causes.map((c) => showCause(c, r.key)).join('; ')
    const id = `${r.table}\u0000${r.state}\u0000${causes}`
    const g = groups.get(id) ?? groups.set(id, { table: r.table, state: r.state, keys: [], causes }).get(id)!
    g.keys.push(r.key)
  }
  for (const g of groups.values()) console.log(`  ${pad(g.table, 9)} ${pad(g.keys.sort(byKey).join(','), 12)} ${pad(g.state, 8)} ${g.causes}`)
  if (groups.size === 0) console.log('  (nothing)')
}

/** Every program with the state of its three derived rows (store.status) and its value. */
async function showPrograms(db: Kysely<any>, store: Store, t3: ReturnType<typeof declare>): Promise<void> {
  const progs = await run(db, Q.for(programs, (p) => Q.yield(p)).orderBy((p) => p.id))
  const values = new Map((await run(db, Q.for(t3.results, (r) => Q.yield(r)))).map((r) => [r.lq_key, r.value]))
  console.log(`  ${pad('id', 3)}${pad('name', 8)}${pad('source', 42)}${pad('parsed', 9)}${pad('compiled', 9)}results`)
  const notes: string[] = []
  for (const p of progs) {
    const states: string[] = []
    for (const tb of [t3.parsed, t3.compiled, t3.results]) {
      const s = await store.status(tb, p.id)
      states.push(s.state === 'fresh' && tb === t3.results ? `= ${values.get(String(p.id))}` : s.state)
      for (const c of s.causes) if (c.kind === 'error' || c.kind === 'upstream-failed') notes.push(`${tb.name} ${p.id} ${s.state}: ${showCause(c, p.id)}`)
    }
    console.log(`  ${pad(p.id, 3)}${pad(p.name, 8)}${pad(p.source, 42)}${pad(states[0], 9)}${pad(states[1], 9)}${states[2]}`)
  }
  for (const n of notes) console.log(`    ${n}`)
}

async function showCompiled(db: Kysely<any>, t3: ReturnType<typeof declare>): Promise<void> {
  console.log('compiled, queried with the DSL: run(db, Q.for(compiled, (c) => Q.yield(c)).orderBy((c) => c.lq_key))')
  for (const c of await run(db, Q.for(t3.compiled, (c) => Q.yield(c)).orderBy((c) => c.lq_key))) console.log(`  ${c.lq_key}  ${c.code}`)
}

// ---------------------------------------------------------------- the walk-through

export async function main(db?: Kysely<any>): Promise<void> {
  const own = db === undefined
  const dir = own ? mkdtempSync(join(tmpdir(), 'lineage-query-pipeline-')) : undefined
  if (db === undefined) {
    const file = join(dir!, 'pipeline.db')
    console.log(`database: ${file} (removed at the end)`)
    db = new Kysely<any>({ dialect: new SqliteDialect({ database: new Database(file) }) })
  }
  try {
    await walkThrough(db)
  } finally {
    if (own) await db.destroy()
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true })
  }
}

async function walkThrough(db: Kysely<any>): Promise<void> {
  heading('1. Programs are rows; parse -> compile -> run are derived tables')
  await createTable(db, programs)
  await insertRows(db, programs, [
    { id: 1, name: 'scaled', source: 'let x = 2 in x * (3 + 4)' },
    { id: 2, name: 'area', source: 'let r = 5 in r * r * 3' },
    { id: 3, name: 'nested', source: 'let a = 10 in let b = a - 4 in a * b / 3' },
    { id: 4, name: 'broken', source: 'let y = 1 in y +' },
    { id: 5, name: 'sum', source: '1 + 2 + 3 * 4' },
    { id: 6, name: 'ratio', source: 'let d = 0 in 10 / d' },
  ])
  const store = await openStore(db)
  await store.track(programs)
  const ran: unknown[] = []
  const v1 = declare(store, compileV1, ran)
  console.log('store.graph().mermaid:')
  console.log(store.graph().mermaid)

  heading('2. Refresh: compute every missing row')
  showReport(await store.refresh())
  console.log('')
  await showPrograms(db, store, v1)
  console.log('\nparsed, queried with the DSL: run(db, Q.for(parsed, (p) => Q.where(Q.eq(p.lq_key, \'1\'), Q.yield(p.ast))))')
  for (const ast of await run(db, Q.for(v1.parsed, (p) => Q.where(Q.eq(p.lq_key, '1'), Q.yield(p.ast))))) console.log(`  ${ast}`)
  await showCompiled(db, v1)
  const big = Q.for(v1.results, (r) => Q.where(Q.gt(r.value, 15), Q.yield({ key: r.lq_key, value: r.value })))
  console.log('\nbig = Q.for(results, (r) => Q.where(Q.gt(r.value, 15), Q.yield({ key: r.lq_key, value: r.value })))')
  console.log('run(db, big):')
  for (const r of await run(db, big)) console.log(`  ${JSON.stringify(r)}`)
  console.log('run(db, lineage(big)): provenance composes through parse -> compile -> run, down to the programs rows:')
  for (const r of await run(db, lineage(big))) console.log(`  ${JSON.stringify(r)}`)
  console.log('run(db, lineage(big, { composed: false })) names the derived rows themselves:')
  for (const r of await run(db, lineage(big, { composed: false }))) console.log(`  ${JSON.stringify(r)}`)

  heading('3. Edit a program with raw SQL')
  const edit = `UPDATE programs SET source = 'let x = 3 in x * (3 + 4)' WHERE id = 1`
  console.log(`> ${edit}`)
  await sql.raw(edit).execute(db)
  console.log(`store.affected(programs, 1): ${(await store.affected(programs, 1)).map((r) => `${r.table} ${String(r.key)}`).join(', ')}`)
  console.log('store.stale():')
  showStale(await store.stale())
  ran.length = 0
  showReport(await store.refresh())
  console.log(`run was called for: ${ran.sort(byKey).join(', ')}`)

  heading('4. Change a function: compile learns constant folding')
  console.log('A new process would open the store again with the new code; so does this one:')
  console.log('  const store2 = await openStore(db); await store2.track(programs); ... derive compiled with the folding compile')
  const store2 = await openStore(db)
  await store2.track(programs)
  const v2 = declare(store2, compileV2, ran)
  console.log(`compile's code version: ${store.codeVersion(v1.compiled)} -> ${store2.codeVersion(v2.compiled)} (parse: ${store.codeVersion(v1.parsed)} -> ${store2.codeVersion(v2.parsed)}, unchanged)`)
  console.log('store2.stale():')
  showStale(await store2.stale())
  ran.length = 0
  showReport(await store2.refresh())
  console.log(`run was called for: ${ran.sort(byKey).join(', ')} (only where the compiled code changed; the values came out the same, so those results were backdated too)`)
  const st = await Promise.all([1, 2, 3, 4, 5, 6].map(async (k) => `${k} ${(await store2.status(v2.results, k)).state}`))
  console.log(`store2.status(results, k): ${st.join(', ')}`)

  heading('5. Final tables')
  await showPrograms(db, store2, v2)
  console.log('')
  await showCompiled(db, v2)
  console.log('store2.stale():')
  showStale(await store2.stale())
}

if (import.meta.url === `file://${process.argv[1]}`) await main()
