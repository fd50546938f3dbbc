/**
 * The examples stay true: `examples/quickstart.ts` prints exactly the output the README shows,
 * `npm run demo` runs, and `examples/tours.ts` and `examples/pipeline.ts` (the derived-data
 * walk-through at the end of the demo) print their key lines. The pipeline also runs on
 * PostgreSQL, and so does `examples/tpch.ts` (three TPC-H queries and their lineage).
 */
import { execFile } from 'node:child_process'
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { afterEach, describe, expect, it, vi } from 'vitest'
import * as pipeline from '../examples/pipeline.js'
import * as tours from '../examples/tours.js'
import * as tpch from '../examples/tpch.js'
import { eachDialect } from './support/db.js'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')

/** Everything `body` prints with console.log, as one string. */
async function captured(body: () => Promise<void>): Promise<string> {
  const lines: string[] = []
  const spy = vi.spyOn(console, 'log').mockImplementation((...args: unknown[]) => {
    lines.push(args.map(String).join(' '))
  })
  try {
    await body()
  } finally {
    spy.mockRestore()
  }
  return lines.join('\n')
}

afterEach(() => {
  vi.restoreAllMocks()
})

describe('examples/quickstart.ts', () => {
  it('prints the output shown in the README', async () => {
    const readme = readFileSync(join(root, 'README.md'), 'utf8')
    const shown = /Output \(`npx tsx examples\/quickstart\.ts`\):\n\n```\n([\s\S]*?)```/.exec(readme)?.[1]
    expect(shown, 'the README has an output block for the quickstart').toBeDefined()
    const { stdout } = await promisify(execFile)(join(root, 'node_modules', '.bin', 'tsx'), ['examples/quickstart.ts'], { cwd: root })
    expect(stdout).toBe(shown)
  })
})

describe('examples/demo.ts (npm run demo)', () => {
  it('runs end to end, the pipeline walk-through last', async () => {
    // A private temp folder: the demo must leave nothing in it.
    const tmp = mkdtempSync(join(tmpdir(), 'lq-demo-tmp-'))
    let stdout: string
    try {
      stdout = (await promisify(execFile)(join(root, 'node_modules', '.bin', 'tsx'), ['examples/demo.ts'], { cwd: root, env: { ...process.env, TMPDIR: tmp } })).stdout
      // (tsx keeps its compile cache there, tsx-<uid>: not the demo's.)
      expect(readdirSync(tmp).filter((f) => !/^tsx-\d+$/.test(f)), 'npm run demo leaves nothing in the temp folder').toEqual([])
    } finally {
      rmSync(tmp, { recursive: true, force: true })
    }
    expect(stdout).toMatch(new RegExp(`^sample database: ${tmp.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}/`, 'm'))
    expect(stdout).toContain('== the tours example of the lineage notes')
    const at = stdout.indexOf('== derived data: the toy language')
    expect(at).toBeGreaterThan(0)
    checkPipeline(stdout.slice(at))
  })
})

describe('examples/tours.ts', () => {
  it('prints the boat tours with their lineage, and nested lineage', async () => {
    const out = await captured(() => tours.main())
    expect(out).toContain('{"data":{"name":"Burns","phone":"607 3000"},"lineage":[{"table":"agencies","key":2},{"table":"externalTours","key":5}]}')
    expect(out).toContain('[{"table":"agencies","key":1},{"table":"externalTours","key":3},{"table":"externalTours","key":4},{"table":"agencies","key":2},{"table":"externalTours","key":5}]')
    expect(out).toContain('{"data":{"to":"Mallaig","price":40},"lineage":[{"table":"externalTours","key":6}]}')
  })
})

eachDialect('examples/tpch.ts', (get) => {
  it('prints the TPC-H answers, exact decimals and the lineage of every group', async () => {
    const { db } = get()
    await tpch.load(db)
    const out = await captured(() => tpch.main(db))
    // Q1: one group per flag and status; decimals exact (strings), the group's lines as lineage.
    expect(out).toContain('{"flag":"N","status":"O","sum_qty":30,"sum_disc_price":"2881.2550","avg_qty":10,"count_order":3}')
    expect(out).toContain('"lineage":[{"table":"lineitem","key":[10,1]},{"table":"lineitem","key":[10,2]},{"table":"lineitem","key":[12,1]}]}')
    // Q3: top 2 by revenue, each naming its customer, lines and order.
    expect(out).toContain('{"data":{"orderkey":11,"revenue":"2850.0000","orderdate":"1995-02-11"},"lineage":[{"table":"customer","key":1},{"table":"lineitem","key":[11,1]},{"table":"orders","key":11}]}')
    // Q13: customers per order count, 0 included.
    expect(out).toContain('{"data":{"orders":0,"customers":1},"lineage":[{"table":"customer","key":3}]}')
    // EXISTS: lineage names the customer, why-provenance the order as well.
    expect(out).toContain('{"data":"Customer#3","lineage":[{"table":"customer","key":3}]}')
    expect(out).toContain('{"data":"Customer#3","lineage":[{"table":"customer","key":3},{"table":"orders","key":13}]}')
  })
})

/** The key lines of the pipeline walk-through, in order. */
function checkPipeline(out: string): void {
  const expected: (string | RegExp)[] = [
    // 1. the graph
    /t\d+_programs\[\("programs"\)\]/,
    /t\d+_compiled --> t\d+_results/,
    // 2. first refresh: the syntax error is stored, its downstream rows are blocked
    'refresh -> parsed: 5 computed, 1 failed | compiled: 5 computed, 1 blocked | results: 4 computed, 1 failed, 1 blocked',
    /4 {2}broken {2}let y = 1 in y \+ +failed +blocked +blocked/,
    "parsed 4 failed: error: syntax error at column 17: expected a number, a name or '(', found end of input",
    'results 4 blocked: upstream-failed: its parsed row',
    'results 6 failed: error: division by zero',
    '["let","x",2,["*","x",["+",3,4]]]',
    '1  ["push 2","bind","load 0","push 3","push 4","add","mul","unbind"]',
    '{"data":{"key":"2","value":75},"lineage":[{"table":"programs","key":2}]}',
    '{"data":{"key":"2","value":75},"lineage":[{"table":"results","key":"2"}]}',
    // 3. a source edit: stale with causes, then only that program is recomputed
    'store.affected(programs, 1): parsed 1, compiled 1, results 1',
    /parsed +1 +stale +input-changed: its programs row, revision \d+ -> \d+/,
    /compiled +1 +stale +upstream-stale: its parsed row/,
    /results +1 +stale +upstream-stale: its compiled row/,
    'refresh -> parsed: 1 computed | compiled: 1 computed | results: 1 computed',
    'run was called for: 1\n',
    // 4. a code change: code-changed, and backdating stops it where the code did not change
    /compiled +1,2,3,4,5,6 +stale +code-changed: compiled code version [0-9a-f]{16} -> [0-9a-f]{16}/,
    'refresh -> parsed: nothing to do | compiled: 2 computed, 3 unchanged (backdated), 1 blocked | results: 2 unchanged (backdated)',
    'run was called for: 1, 5 (',
    'store2.status(results, k): 1 fresh, 2 fresh, 3 fresh, 4 blocked, 5 fresh, 6 failed',
    // 5. final tables
    /1 {2}scaled {2}let x = 3 in x \* \(3 \+ 4\) +fresh +fresh += 21/,
    '1  ["push 3","bind","load 0","push 7","mul","unbind"]',
    '5  ["push 15"]',
    'store2.stale():\n  (nothing)',
  ]
  let from = 0
  for (const e of expected) {
    const rest = out.slice(from)
    const m = typeof e === 'string' ? { index: rest.indexOf(e), length: e.length } : ((r) => (r === null ? { index: -1, length: 0 } : { index: r.index, length: r[0].length }))(e.exec(rest))
    expect(m.index, `expected ${String(e)} after offset ${from} of:\n${out}`).toBeGreaterThanOrEqual(0)
    from += m.index + m.length
  }
}

eachDialect('examples/pipeline.ts', (get) => {
  it('walks through refresh, a source edit and a code change', async () => {
    checkPipeline(await captured(() => pipeline.main(get().db)))
  })
})

describe('examples/pipeline.ts on its own (embedded SQLite in a temp folder)', () => {
  it('runs with no database given', async () => {
    const tmp = mkdtempSync(join(tmpdir(), 'lq-pipeline-tmp-'))
    const before = process.env['TMPDIR']
    process.env['TMPDIR'] = tmp // os.tmpdir() reads it on each call
    let out: string
    try {
      out = await captured(() => pipeline.main())
      expect(readdirSync(tmp), 'the pipeline leaves nothing in the temp folder').toEqual([])
    } finally {
      if (before === undefined) delete process.env['TMPDIR']
      else process.env['TMPDIR'] = before
      rmSync(tmp, { recursive: true, force: true })
    }
    expect(out).toMatch(/^database: .*pipeline\.db \(removed at the end\)$/m)
    checkPipeline(out)
  })
})

describe('the toy language', () => {
  it('parses, compiles, folds and runs', () => {
    const ast = pipeline.parse('let a = 10 in let b = a - 4 in a * b / 3')
    expect(ast).toEqual(['let', 'a', 10, ['let', 'b', ['-', 'a', 4], ['/', ['*', 'a', 'b'], 3]]])
    expect(pipeline.execute(pipeline.compile(ast))).toBe(20)
    expect(pipeline.compile(pipeline.fold(pipeline.parse('(1 + 2) * x - 4 / 0')), ['x'])).toEqual(['push 3', 'load 0', 'mul', 'push 4', 'push 0', 'div', 'sub'])
    expect(() => pipeline.parse('1 + * 2')).toThrow("syntax error at column 5: expected a number, a name or '(', found '*'")
    expect(() => pipeline.parse('let 1 = 2 in 3')).toThrow('expected a name')
    expect(() => pipeline.parse('(1 + 2')).toThrow("expected ')', found end of input")
    expect(() => pipeline.compile(pipeline.parse('let x = 1 in y'))).toThrow("unbound variable 'y'")
    expect(() => pipeline.execute(pipeline.compile(pipeline.parse('1 / (2 - 2)')))).toThrow('division by zero')
  })
})
