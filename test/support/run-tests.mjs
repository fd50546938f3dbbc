#!/usr/bin/env node
// `npm test`: runs `vitest run` (tests and type tests, see vitest.config.ts) with the default
// reporter on the terminal plus a JSON report, then prints one summary line computed from that
// report:
//
//   N passed, N failed, N skipped
//
// Extra arguments go to vitest (`npm test -- test/ddl.test.ts`). Exits non-zero when a test
// failed or vitest itself failed. Errors vitest reports outside any test (a test file that does
// not load, an unhandled rejection, a type error in a helper of a type test) count as failed,
// so the summary never says "0 failed" for a failing run.
import { spawn } from 'node:child_process'
import { existsSync, readFileSync, rmSync } from 'node:fs'
import { dirname, join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..')
const report = join(root, '.vitest-results.json')
// test/support/postgres-global-setup.ts writes which PostgreSQL the tests used here.
const pgNote = join(root, '.vitest-postgres.txt')
const vitest = join(root, 'node_modules', 'vitest', 'vitest.mjs')

rmSync(report, { force: true })
rmSync(pgNote, { force: true })

const args = [vitest, 'run', '--reporter=default', '--reporter=json', `--outputFile.json=${report}`, ...process.argv.slice(2)]
const child = spawn(process.execPath, args, { cwd: root, stdio: 'inherit', env: { ...process.env, LQ_PG_NOTE_FILE: pgNote } })
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => child.kill(signal))

const [code, signal] = await new Promise((resolve) => child.on('close', (c, s) => resolve([c, s])))

let passed = 0
let failed = 0
let skipped = 0
const notes = []

if (existsSync(report)) {
  /** @type {{ testResults?: { name: string, status: string, message?: string, assertionResults?: { status: string }[] }[] }} */
  let json
  try {
    json = JSON.parse(readFileSync(report, 'utf8'))
  } catch (e) {
    notes.push(`the vitest JSON report ${relative(root, report)} is unreadable: ${e instanceof Error ? e.message : String(e)}`)
    failed += 1
  }
  for (const file of json?.testResults ?? []) {
    const tests = file.assertionResults ?? []
    let fileFailed = 0
    for (const t of tests) {
      if (t.status === 'passed') passed += 1
      else if (t.status === 'failed') {
        failed += 1
        fileFailed += 1
      } else skipped += 1 // skipped, pending, todo, disabled
    }
    if (file.status === 'failed' && fileFailed === 0) {
      // The file failed without a failing test: it did not load, or a hook failed.
      failed += 1
      const first = (file.message ?? '').split('\n')[0]
      notes.push(`${relative(root, file.name)} failed outside its tests${first ? `: ${first}` : ''}`)
    }
  }
} else {
  notes.push('vitest wrote no JSON report')
}

if (code !== 0 && failed === 0) {
  // e.g. unhandled errors or a type error outside the type-test files: vitest fails the run
  // but the JSON report counts no failed test.
  failed += 1
  notes.push(`vitest ${signal ? `was killed by ${signal}` : `exited with code ${code}`} (errors outside tests; see its output above)`)
}

console.log('')
if (existsSync(pgNote)) {
  console.log(readFileSync(pgNote, 'utf8').trim())
  rmSync(pgNote, { force: true })
}
for (const note of notes) console.log(`note: ${note}`)
console.log(`${passed} passed, ${failed} failed${skipped > 0 ? `, ${skipped} skipped` : ''}`)
process.exitCode = failed > 0 || code !== 0 ? (code && code > 0 ? code : 1) : 0
