/**
 * Progress of `lineage-query refresh`: a bar per table on a terminal (cli-progress: rows done /
 * to do, rate, ETA), plain lines otherwise (one per table at its start, then at most one every
 * 2 seconds, and one when it is done). Fed by `store.refresh({ onProgress })` events; the CLI's
 * `--table` refresh feeds the same events.
 */
import cliProgress from 'cli-progress'
import type { WatchEvent } from '../derived/index.js'

/** The subset of `RefreshProgress` (store.refresh's onProgress) the display needs. */
export interface ProgressEvent {
  readonly table: string
  readonly tableIndex: number
  readonly tableCount: number
  readonly phase: 'scan' | 'batch' | 'done'
  readonly done: number
  readonly total: number
}

export interface ProgressDisplay {
  update(e: ProgressEvent): void
  stop(): void
}

export function progressDisplay(out: NodeJS.WriteStream, tty: boolean): ProgressDisplay {
  return tty ? barDisplay(out) : lineDisplay(out)
}

function barDisplay(out: NodeJS.WriteStream): ProgressDisplay {
  const bars = new cliProgress.MultiBar(
    {
      stream: out,
      format: '{table} [{bar}] {value}/{total} rows | {rate} rows/s | ETA {etaText}',
      hideCursor: true,
      clearOnComplete: false,
      stopOnComplete: false,
      etaBuffer: 50,
      fps: 10,
    },
    cliProgress.Presets.shades_classic,
  )
  const byTable = new Map<string, { bar: cliProgress.SingleBar; started: number }>()
  return {
    update(e) {
      let b = byTable.get(e.table)
      const label = `${e.table} (${e.tableIndex + 1}/${e.tableCount})`
      if (b === undefined) {
        b = { bar: bars.create(Math.max(e.total, 0), 0, { table: label, rate: '0', etaText: '-' }), started: performance.now() }
        byTable.set(e.table, b)
      }
      const secs = (performance.now() - b.started) / 1000
      const rate = secs > 0 ? e.done / secs : 0
      // Our own ETA: cli-progress prints NULL before its first estimate.
      const etaText = e.phase === 'done' || e.done >= e.total ? '0s' : rate > 0 ? `${Math.ceil((e.total - e.done) / rate)}s` : '-'
      b.bar.setTotal(Math.max(e.total, e.done))
      b.bar.update(e.done, { table: label, rate: Math.round(rate).toString(), etaText })
    },
    stop() {
      bars.stop()
    },
  }
}

function lineDisplay(out: NodeJS.WriteStream): ProgressDisplay {
  const last = new Map<string, { at: number; started: number }>()
  return {
    update(e) {
      const now = performance.now()
      const seen = last.get(e.table)
      if (seen !== undefined && e.phase === 'batch' && now - seen.at < 2000) return
      const started = seen?.started ?? now
      last.set(e.table, { at: now, started })
      const secs = (now - started) / 1000
      const rate = secs > 0 ? `, ${Math.round(e.done / secs)} rows/s` : ''
      const pct = e.total > 0 ? ` (${((100 * e.done) / e.total).toFixed(1)}%)` : ''
      out.write(`${e.table} (${e.tableIndex + 1}/${e.tableCount}): ${e.phase === 'done' ? 'done, ' : ''}${e.done}/${e.total} rows${pct}${rate}\n`)
    },
    stop() {},
  }
}

/**
 * The live line of `lineage-query watch`: waves, rows computed, deferred (debounce) and held by
 * other workers, and what it is doing now. On a terminal one line redrawn in place
 * (cli-progress); otherwise a plain line per wave that did something, and per error.
 */
export function watchLine(out: NodeJS.WriteStream, tty: boolean): { update(e: WatchEvent): void; stop(): void } {
  const totals = { waves: 0, computed: 0, failed: 0, deleted: 0, deferred: 0, held: 0 }
  const bar = tty
    ? new cliProgress.SingleBar({ stream: out, format: 'watch | {waves} waves | {computed} computed | {failed} failed | {deleted} deleted | {deferred} deferred | {held} held by others | {now}', hideCursor: true, fps: 5 }, cliProgress.Presets.shades_classic)
    : undefined
  bar?.start(1, 0, { ...totals, now: 'starting' })
  return {
    update(e) {
      if (e.kind === 'progress') {
        bar?.update(0, { ...totals, now: `${e.progress.table}: ${e.progress.done}/${e.progress.total}` })
        return
      }
      if (e.kind === 'error') {
        const msg = e.error instanceof Error ? e.error.message : String(e.error)
        if (bar === undefined) out.write(`error (retrying in ${e.retryInMs} ms): ${msg}\n`)
        else bar.update(0, { ...totals, now: `retrying: ${msg.slice(0, 60)}` })
        return
      }
      if (e.kind === 'code-changed') {
        if (bar === undefined) out.write('code changed: recomputing\n')
        return
      }
      totals.waves++
      totals.computed += e.report.totals.computed
      totals.failed += e.report.totals.failed
      totals.deleted += e.report.totals.deleted
      totals.deferred = e.deferred
      totals.held = e.heldByOthers
      const did = e.report.totals.computed + e.report.totals.failed + e.report.totals.deleted + e.report.totals.unchanged
      if (bar !== undefined) bar.update(0, { ...totals, now: 'idle' })
      else if (did > 0 || e.deferred > 0 || e.heldByOthers > 0) out.write(`wave ${e.wave} (${e.reason}): ${e.report.totals.computed} computed, ${e.report.totals.failed} failed, ${e.report.totals.deleted} deleted, ${e.deferred} deferred, ${e.heldByOthers} held by others\n`)
    },
    stop() {
      bar?.stop()
    },
  }
}
