#!/usr/bin/env node
/**
 * `lineage-query`: the derived-data store from the terminal. Opens the store a config module
 * describes (see config.ts, docs/cli.md) and runs one command:
 *
 *   status <table> <key>     one row's state and causes
 *   why <table> <key>        the cause tree down to the root rows, with their revisions
 *   stale [table]            counts per table and state, then the rows
 *   refresh [--table T] [--full]   compute what is missing or stale (progress on stderr)
 *   watch [--debounce ms] [--concurrency n] [--lease ms]   a worker: recompute on root writes until Ctrl-C
 *   affected <root> <key>    every derived row fed by a root row
 *   graph --format mermaid|dot|svg   the dependency graph with each table's counts
 *   explore [--port N]       a local web page to browse tables, rows, causes and lineage
 *
 * Read commands take --json. Exit codes: 0 done, 1 error, 2 bad usage, 130 interrupted.
 */
import { readFileSync, realpathSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { Command, CommanderError, Option } from 'commander'
import { LineageQueryError } from '../errors.js'
import { dotOf, mermaidOf } from '../derived/graph.js'
import type { RefreshReport, Store } from '../derived/index.js'
import { openConfig, type Opened } from './config.js'
import { countsLabel, stale, tableCounts, why, type WhyNode } from './inspect.js'
import { parseKey, showKey } from './keys.js'
import { progressDisplay, watchLine, type ProgressEvent } from './progress.js'
import { refreshOne } from './refresh-table.js'
import { openLineageTracker, type OpenLineageOptions } from '../openlineage/emit.js'

const version = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version

interface Io {
  readonly out: NodeJS.WriteStream
  readonly err: NodeJS.WriteStream
  /** Stops a long-running command (`explore`) as Ctrl-C does (for programs that embed the CLI). */
  readonly stop?: AbortSignal
}

/** Parse `argv` (without node and the script) and run the command; resolves to the exit code. */
export async function main(argv: readonly string[], io: Io = { out: process.stdout, err: process.stderr }): Promise<number> {
  let code = 0
  const program = new Command()
    .name('lineage-query')
    .description('Inspect and refresh the derived tables of a lineage-query store.')
    .version(version)
    .option('-c, --config <file>', 'config module exporting `db` and `declare(store)` (default: lineage-query.config.mjs, or $LINEAGE_QUERY_CONFIG)')
    .exitOverride()
    .configureOutput({ writeOut: (s) => io.out.write(s), writeErr: (s) => io.err.write(s) })

  const withStore = (body: (o: Opened, json: boolean, args: readonly (string | undefined)[], opts: Record<string, unknown>) => Promise<number | void>) =>
    async (...args: unknown[]): Promise<void> => {
      const cmd = args[args.length - 1] as Command
      const opts = cmd.opts() as Record<string, unknown>
      const json = opts['json'] === true
      const opened = await openConfig((program.opts() as { config?: string }).config)
      try {
        code = (await body(opened, json, args.slice(0, -2) as (string | undefined)[], opts)) ?? 0
      } finally {
        await opened.db.destroy()
      }
    }
  const print = (json: boolean, data: unknown, text: () => string): void => {
    io.out.write(json ? `${JSON.stringify(data, null, 2)}\n` : text())
  }

  program
    .command('status')
    .description("one derived row's state and causes")
    .argument('<table>', 'derived table')
    .argument('<key>', 'row key: JSON (7, "7", [1,"x"]) or plain text')
    .option('--json', 'print JSON')
    .action(
      withStore(async ({ store }, json, [table, key]) => {
        const s = await store.status(table!, parseKey(key!))
        print(json, s, () => `${s.table} ${showKey(s.key)}: ${s.state}${s.causes.length > 0 ? ` (${s.causes.map(causeText).join('; ')})` : ''}\n`)
      }),
    )

  program
    .command('why')
    .description('the cause tree of a derived row, down to the root rows, with revisions')
    .argument('<table>', 'derived table')
    .argument('<key>', 'row key: JSON or plain text')
    .option('--json', 'print JSON')
    .action(
      withStore(async ({ store }, json, [table, key]) => {
        const tree = await why(store, table!, parseKey(key!))
        print(json, tree, () => treeText(tree))
      }),
    )

  program
    .command('stale')
    .description('stale and missing rows: counts per table and state, then the rows')
    .argument('[table]', 'only this derived table')
    .option('--json', 'print JSON')
    .action(
      withStore(async ({ store }, json, [table]) => {
        const s = await stale(store, table)
        print(json, s, () => {
          const lines: string[] = []
          const tables = Object.keys(s.counts)
          if (tables.length === 0) lines.push(`nothing stale or missing${table === undefined ? '' : ` in ${table}`}`)
          for (const t of tables) lines.push(`${t}: ${Object.entries(s.counts[t]!).map(([state, n]) => `${n} ${state}`).join(', ')}`)
          if (s.rows.length > 0) lines.push('')
          for (const r of s.rows) lines.push(`${r.table} ${showKey(r.key)}: ${r.state}${r.causes.length > 0 ? ` (${r.causes.map(causeText).join('; ')})` : ''}`)
          return `${lines.join('\n')}\n`
        })
      }),
    )

  program
    .command('refresh')
    .description('compute every missing or stale row (progress bar on a terminal, plain lines otherwise; Ctrl-C stops after the current batch)')
    .option('-t, --table <table>', 'only this derived table (and the upstream rows it needs), row by row')
    .option('--full', 'ignore revision watermarks and re-check every row')
    .option('--json', 'print the report as JSON')
    .option('--openlineage <target>', 'emit OpenLineage run events (START, COMPLETE/FAIL per derived table): a file to append JSON lines to, or an http(s) URL to POST each event to')
    .option('--openlineage-namespace <ns>', 'the namespace of the OpenLineage jobs and datasets', 'lineage-query')
    .action(
      withStore(async ({ store }, json, _args, opts) => {
        return refreshCommand(store, opts as { table?: string; full?: boolean; openlineage?: string; openlineageNamespace?: string }, json, io)
      }),
    )

  program
    .command('watch')
    .description('run a worker: react to root writes and compute what went stale, with a live progress line on stderr, until Ctrl-C or SIGTERM (which finish the current batch)')
    .option('--debounce <ms>', 'recompute a root row only after it was left unchanged this long', '0')
    .option('--concurrency <n>', 'function calls at once')
    .option('--lease <ms>', 'lease length (a killed worker\'s rows are taken over after it)')
    .action(
      withStore(async ({ store }, _json, _args, opts) => {
        return watchCommand(store, opts as { debounce?: string; concurrency?: string; lease?: string }, io)
      }),
    )

  program
    .command('affected')
    .description('every derived row fed, transitively, by one root row')
    .argument('<root>', 'tracked root table')
    .argument('<key>', 'root key: JSON or plain text')
    .option('--json', 'print JSON')
    .action(
      withStore(async ({ store }, json, [root, key]) => {
        const rows = await store.affected(root!, parseKey(key!))
        print(json, rows, () => (rows.length === 0 ? 'no derived rows\n' : rows.map((r) => `${r.table} ${showKey(r.key)}\n`).join('')))
      }),
    )

  program
    .command('graph')
    .description("the dependency graph, each table with its counts (rows; derived: stored ok/failed/blocked, stale, missing)")
    .addOption(new Option('-f, --format <format>', 'output format').choices(['mermaid', 'dot', 'svg']).default('mermaid'))
    .option('--json', 'print nodes, edges, order and counts as JSON')
    .action(
      withStore(async ({ db, store }, json, _args, opts) => {
        const format = opts['format'] as 'mermaid' | 'dot' | 'svg'
        const g = store.graph()
        const counts = await tableCounts(db, store)
        const label = (n: { name: string }): string => countsLabel(counts.find((c) => c.table === n.name)!)
        if (json) return print(true, { nodes: g.nodes, edges: g.edges, order: g.order, counts }, () => '')
        if (format === 'mermaid') io.out.write(`${mermaidOf(g.nodes, g.edges, label)}\n`)
        else if (format === 'dot') io.out.write(`${dotOf(g.nodes, g.edges, label)}\n`)
        else io.out.write(await svgOf(dotOf(g.nodes, g.edges, label)))
      }),
    )

  program
    .command('explore')
    .description('serve a local web page to browse the tables, rows, causes and lineage, and refresh from it (Ctrl-C stops it)')
    .option('-p, --port <port>', 'port to listen on', '4000')
    .option('--host <host>', 'address to listen on', '127.0.0.1')
    .option('--openlineage <target>', 'emit OpenLineage run events for refreshes started from the page (a file or an http(s) URL)')
    .option('--openlineage-namespace <ns>', 'the namespace of the OpenLineage jobs and datasets', 'lineage-query')
    .action(
      withStore(async ({ db, store, queries }, _json, _args, opts) => {
        const port = Number(opts['port'])
        if (!Number.isSafeInteger(port) || port < 0 || port > 65535) throw new LineageQueryError('argument', `explore: --port must be an integer from 0 to 65535, got ${String(opts['port'])}`)
        const { startExplorer } = await import('../explore/server.js')
        const ol = openLineageOption(opts['openlineage'] as string | undefined, opts['openlineageNamespace'] as string | undefined)
        const running = await startExplorer(db, store, { port, host: opts['host'] as string, queries, ...(ol === undefined ? {} : { openLineage: ol }) })
        io.out.write(`explorer on ${running.url} (Ctrl-C stops it)\n`)
        await new Promise<void>((resolve) => {
          const stop = (): void => {
            process.off('SIGINT', stop)
            process.off('SIGTERM', stop)
            io.stop?.removeEventListener('abort', stop)
            resolve()
          }
          process.on('SIGINT', stop)
          process.on('SIGTERM', stop)
          if (io.stop?.aborted === true) stop()
          else io.stop?.addEventListener('abort', stop)
        })
        await running.close()
      }),
    )

  try {
    await program.parseAsync([...argv], { from: 'user' })
  } catch (e) {
    if (e instanceof CommanderError) return e.exitCode === 0 ? 0 : 2 // help/version: 0; usage error (already printed): 2
    if (e instanceof LineageQueryError && e.code === ('aborted' as string)) {
      io.err.write(`interrupted: ${e.message}\n`)
      return 130
    }
    io.err.write(`error: ${e instanceof Error ? e.message : String(e)}\n`)
    return 1
  }
  return code
}

// ---------------------------------------------------------------- refresh

/** `watch`: a worker until SIGINT/SIGTERM; exit 0 when stopped by a signal. */
async function watchCommand(store: Store, o: { debounce?: string; concurrency?: string; lease?: string }, io: Io): Promise<number> {
  const num = (v: string | undefined, what: string): number | undefined => {
    if (v === undefined) return undefined
    const n = Number(v)
    if (!Number.isSafeInteger(n) || n < 0) throw new LineageQueryError('argument', `watch: ${what} must be a non-negative integer, got ${JSON.stringify(v)}`)
    return n
  }
  const ac = new AbortController()
  const stop = (): void => {
    if (ac.signal.aborted) process.exit(130)
    io.err.write('\nstopping after the current batch (again to quit at once)\n')
    ac.abort(new Error('stopped by a signal'))
  }
  process.on('SIGINT', stop)
  process.on('SIGTERM', stop)
  const line = watchLine(io.err, io.err.isTTY === true)
  const debounceMs = num(o.debounce, '--debounce')
  const concurrency = num(o.concurrency, '--concurrency')
  const leaseMs = num(o.lease, '--lease')
  try {
    const w = store.watch({
      signal: ac.signal,
      ...(debounceMs === undefined ? {} : { debounceMs }),
      ...(concurrency === undefined ? {} : { concurrency }),
      ...(leaseMs === undefined ? {} : { leaseMs }),
      onProgress: (e) => line.update(e),
    })
    await w.stopped
  } finally {
    line.stop()
    process.off('SIGINT', stop)
    process.off('SIGTERM', stop)
  }
  io.out.write('stopped\n')
  return 0
}

/** The OpenLineage options of `--openlineage <file|url>`. */
export function openLineageOption(target: string | undefined, namespace: string | undefined): OpenLineageOptions | undefined {
  if (target === undefined) return undefined
  const ns = namespace ?? 'lineage-query'
  return { target: /^https?:\/\//.test(target) ? { url: target } : { file: target }, jobNamespace: ns, datasetNamespace: ns }
}

async function refreshCommand(store: Store, o: { table?: string; full?: boolean; openlineage?: string; openlineageNamespace?: string }, json: boolean, io: Io): Promise<number> {
  const ol = openLineageOption(o.openlineage, o.openlineageNamespace)
  const tracker = ol === undefined ? undefined : openLineageTracker(store, ol)
  const ac = new AbortController()
  let interrupts = 0
  const onSigint = (): void => {
    interrupts += 1
    if (interrupts > 1) process.exit(130)
    io.err.write('\nstopping after the current batch (Ctrl-C again to quit at once)\n')
    ac.abort(new Error('interrupted (SIGINT)'))
  }
  process.on('SIGINT', onSigint)
  const display = json ? undefined : progressDisplay(io.err, io.err.isTTY === true)
  const onProgress = (e: ProgressEvent & { counts?: RefreshReport['totals'] }): void => {
    tracker?.onProgress(e)
    display?.update(e)
  }
  let report: RefreshReport | undefined
  let interrupted = false
  try {
    report = o.table === undefined ? await store.refresh({ full: o.full === true, signal: ac.signal, onProgress } as Parameters<Store['refresh']>[0]) : await refreshOne(store, o.table, ac.signal, onProgress)
    await tracker?.finish(ac.signal.aborted ? new LineageQueryError('aborted', 'refresh interrupted (SIGINT)') : undefined)
  } catch (e) {
    await tracker?.finish(e)
    const partial = e instanceof LineageQueryError ? (e.details['report'] as RefreshReport | undefined) : undefined
    if (!ac.signal.aborted) throw e
    interrupted = true
    report = partial
  } finally {
    display?.stop()
    process.off('SIGINT', onSigint)
  }
  if (ac.signal.aborted) interrupted = true
  if (json) io.out.write(`${JSON.stringify({ interrupted, report: report ?? null }, null, 2)}\n`)
  else if (report !== undefined) io.out.write(reportText(report, interrupted))
  else io.out.write('interrupted before any table finished\n')
  return interrupted ? 130 : 0
}

function reportText(r: RefreshReport, interrupted: boolean): string {
  const lines = Object.entries(r.tables).map(([t, c]) => {
    const parts = Object.entries(c).filter(([, n]) => (n as number) > 0).map(([k, n]) => `${n} ${k}`)
    return `${t}: ${parts.length > 0 ? parts.join(', ') : 'nothing to do'}`
  })
  lines.push(`${interrupted ? 'interrupted after' : 'done in'} ${(r.durationMs / 1000).toFixed(2)} s`)
  return `${lines.join('\n')}\n`
}

// ---------------------------------------------------------------- text

function causeText(c: { kind: string; table?: string; key?: unknown; oldRevision?: number; newRevision?: number; [k: string]: unknown }): string {
  const at = c.table === undefined ? '' : ` ${c.table}${c.key === undefined ? '' : ` ${showKey(c.key)}`}`
  const revs = c.oldRevision !== undefined ? ` (revision ${c.oldRevision}${c.newRevision !== undefined ? ` -> ${c.newRevision}` : ''})` : ''
  const more = typeof c['message'] === 'string' ? `: ${c['message']}` : typeof c['oldVersion'] === 'string' ? ` (code ${c['oldVersion']} -> ${String(c['newVersion'])})` : ''
  return `${c.kind}:${at}${revs}${more}`
}

function treeText(node: WhyNode): string {
  const lines: string[] = []
  const walk = (n: WhyNode, prefix: string, last: boolean, top: boolean): void => {
    const head = top ? '' : `${prefix}${last ? '└─ ' : '├─ '}`
    if (n.kind === 'root') {
      lines.push(`${head}${n.table} ${showKey(n.key)}: root row, revision ${n.revision ?? '(none: deleted or never written)'}`)
      return
    }
    lines.push(`${head}${n.table} ${showKey(n.key)}: ${n.state}${n.causes.length > 0 ? ` (${n.causes.map(causeText).join('; ')})` : ''}`)
    const next = top ? '' : `${prefix}${last ? '   ' : '│  '}`
    n.inputs.forEach((c, i) => walk(c, next, i === n.inputs.length - 1, false))
  }
  walk(node, '', true, true)
  return `${lines.join('\n')}\n`
}

// ---------------------------------------------------------------- svg

/** DOT to SVG with Graphviz compiled to WebAssembly (@viz-js/viz, an optional peer dependency). */
async function svgOf(dot: string): Promise<string> {
  let viz: { instance(): Promise<{ renderString(src: string, o: { format: string }): string }> }
  try {
    viz = (await import('@viz-js/viz')) as unknown as typeof viz
  } catch {
    throw new LineageQueryError('argument', 'graph --format svg needs the optional package @viz-js/viz (Graphviz in WebAssembly): npm install @viz-js/viz')
  }
  return (await viz.instance()).renderString(dot, { format: 'svg' })
}

// Run when executed as the bin (through its node_modules/.bin link too), not when imported.
const entry = process.argv[1]
if (entry !== undefined && realpathSync(entry) === fileURLToPath(import.meta.url)) {
  process.exitCode = await main(process.argv.slice(2))
}
