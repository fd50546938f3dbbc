/**
 * Every ```ts block of README.md and docs/*.md runs, and type-checks (strict, as the project's
 * tsconfig), with `'lineage-query'` resolved to src/index.ts.
 *
 * Conventions (an HTML comment on the line right before the opening fence; GitHub shows nothing):
 * - no marker: the block is a complete module and runs on its own;
 * - `<!-- snippet: continues -->`: the block continues the previous run ```ts block of the
 *   same file (not-run blocks in between are skipped): they run as one module, in order
 *   (imports may appear in any block, once per name);
 * - `<!-- snippet: not-run (reason) -->`: a fragment that is neither run nor type-checked
 *   (say why in the comment; prefer a complete block).
 * Any other `<!-- snippet: ... -->` is an error, and so is a ```ts block that fails to run or
 * type-check: a new docs block must run as written or carry a marker.
 *
 * The modules are written to `.snippets/` (git-ignored), e.g. `.snippets/docs-query.md-19.ts`
 * (file and line of the first block), to read after a failure.
 */
import { execFile } from 'node:child_process'
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { promisify } from 'node:util'
import { beforeAll, describe, expect, it, vi } from 'vitest'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const outDir = join(root, '.snippets')

interface Program {
  readonly name: string
  readonly source: string
  readonly blocks: number
}

/** The runnable programs of one markdown file, by the conventions above. */
export function programsOf(file: string, text: string): Program[] {
  const lines = text.split('\n')
  const programs: { name: string; parts: string[] }[] = []
  for (let i = 0; i < lines.length; i++) {
    if (!/^```(ts|typescript)\s*$/.test(lines[i]!)) {
      // Skip other fenced blocks whole (a ```ts line inside them is not a fence).
      if (/^```/.test(lines[i]!)) while (++i < lines.length && !/^```\s*$/.test(lines[i]!));
      continue
    }
    const start = i
    const body: string[] = []
    while (++i < lines.length && !/^```\s*$/.test(lines[i]!)) body.push(lines[i]!)
    let j = start - 1
    while (j >= 0 && lines[j]!.trim() === '') j--
    const marker = /^<!--\s*snippet:\s*(.*?)\s*-->$/.exec(lines[j] ?? '')
    const kind = marker === null ? 'run' : /^not-run\b/.test(marker[1]!) ? 'not-run' : marker[1] === 'continues' ? 'continues' : undefined
    if (kind === undefined) throw new Error(`${file}:${start + 1}: unknown snippet marker ${JSON.stringify(lines[j])}; expected <!-- snippet: continues --> or <!-- snippet: not-run (reason) -->`)
    if (kind === 'not-run') continue
    if (kind === 'continues') {
      const last = programs[programs.length - 1]
      if (last === undefined) throw new Error(`${file}:${start + 1}: <!-- snippet: continues --> but no earlier ts block of the file runs`)
      last.parts.push(`// ---- ${file}:${start + 1}\n${body.join('\n')}`)
    } else {
      programs.push({ name: `${file.replace(/\//g, '-')}-${start + 1}`, parts: [`// ---- ${file}:${start + 1}\n${body.join('\n')}`] })
    }
  }
  return programs.map((p) => ({ name: p.name, blocks: p.parts.length, source: `${p.parts.join('\n\n')}\n\nexport {}\n` }))
}

const files = ['README.md', ...readdirSync(join(root, 'docs')).filter((f) => f.endsWith('.md')).sort().map((f) => `docs/${f}`)]
const programs = files.flatMap((f) => programsOf(f, readFileSync(join(root, f), 'utf8')))

/** Module text with `'lineage-query'` imports pointing at the source. */
const resolved = (source: string): string => source.replace(/from 'lineage-query'/g, "from '../src/index.js'")

beforeAll(() => {
  rmSync(outDir, { recursive: true, force: true })
  mkdirSync(outDir, { recursive: true })
  for (const p of programs) writeFileSync(join(outDir, `${p.name}.ts`), resolved(p.source))
  writeFileSync(
    join(outDir, 'tsconfig.json'),
    JSON.stringify({ extends: '../tsconfig.json', compilerOptions: { noEmit: true, rootDir: '..' }, include: ['./*.ts'] }, null, 2),
  )
})

describe('docs snippets', () => {
  it('the conventions: continues joins blocks, not-run skips, unknown markers are errors', () => {
    const md = ['```ts', 'const a = 1', '```', '<!-- snippet: continues -->', '```ts', 'console.log(a)', '```', '<!-- snippet: not-run (a signature) -->', '```ts', 'f(x)', '```', '```sh', '```ts', '```', '```ts', 'const b = 2', '```', '<!-- snippet: not-run -->', '```ts', 'g()', '```', '<!-- snippet: continues -->', '```ts', 'console.log(b)', '```'].join('\n')
    const ps = programsOf('x.md', md)
    expect(ps.map((p) => [p.name, p.blocks])).toEqual([['x.md-1', 2], ['x.md-15', 2]])
    expect(ps[1]!.source).not.toContain('g()')
    expect(ps[0]!.source).toContain('const a = 1')
    expect(ps[0]!.source).toContain('console.log(a)')
    expect(() => programsOf('y.md', '<!-- snippet: maybe -->\n```ts\nx\n```')).toThrow('unknown snippet marker')
    expect(() => programsOf('z.md', '<!-- snippet: continues -->\n```ts\nx\n```')).toThrow('no earlier ts block of the file runs')
  })

  it('finds the blocks of README.md and docs/*.md', () => {
    const files = new Set(programs.map((p) => p.name.replace(/-\d+$/, '')))
    for (const f of ['README.md', 'docs-query.md', 'docs-lineage.md', 'docs-derived.md']) expect(files).toContain(f)
  })

  it('type-check (strict, the project tsconfig)', async () => {
    const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc')
    const r = await promisify(execFile)(process.execPath, [tsc, '-p', join(outDir, 'tsconfig.json')], { cwd: root }).then(
      () => '',
      (e: { stdout?: string }) => e.stdout ?? String(e),
    )
    expect(r, 'type errors in docs snippets (files in .snippets/)').toBe('')
  })

  for (const p of programs) {
    it(`runs ${p.name} (${p.blocks} block${p.blocks === 1 ? '' : 's'})`, async () => {
      const log = vi.spyOn(console, 'log').mockImplementation(() => undefined)
      try {
        await import(pathToFileURL(join(outDir, `${p.name}.ts`)).href)
      } finally {
        log.mockRestore()
      }
    })
  }
})
