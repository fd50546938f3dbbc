/**
 * Timing helpers for noisy machines: variants run interleaved (A B C, then C B A, ...), each
 * round gives one sample per variant (the mean of a few back-to-back runs), and results are
 * medians over rounds and medians of the per-round ratios. No single time is trusted.
 *
 * Besides wall time, a sample can read a CPU clock: the CPU time the work used, in the
 * processes that do it (this one, plus the PostgreSQL backend serving the connection, read
 * from its `/proc/<pid>/schedstat`, which is exact for a process that is not running).
 * On a shared machine with more runnable processes than cores, wall time mostly measures the
 * wait for a core; CPU time does not, so CPU-time ratios are the stable figure there.
 */
import { pathToFileURL } from 'node:url'
import { readdirSync, readFileSync, statSync } from 'node:fs'
import v8 from 'node:v8'
import vm from 'node:vm'
import type { Dialect } from './lib.js'

export const nowMs = (): number => Number(process.hrtime.bigint()) / 1e6

export function median(xs: readonly number[]): number {
  if (xs.length === 0) return Number.NaN
  const s = [...xs].sort((a, b) => a - b)
  const m = s.length >> 1
  return s.length % 2 === 1 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2
}

export function geomean(xs: readonly number[]): number {
  const ok = xs.filter((x) => Number.isFinite(x) && x > 0)
  if (ok.length === 0) return Number.NaN
  return Math.exp(ok.reduce((a, x) => a + Math.log(x), 0) / ok.length)
}

// ---------------------------------------------------------------- CPU clocks

/** A clock in milliseconds. */
export type Clock = () => number

/** Nanoseconds on a CPU from a Linux `schedstat` file (first field), or undefined. */
function schedstatNs(path: string): number | undefined {
  try {
    const ns = Number(readFileSync(path, 'utf8').split(' ')[0])
    return Number.isFinite(ns) ? ns : undefined
  } catch {
    return undefined
  }
}

/**
 * CPU time of this process (user + system, all threads: the main thread where better-sqlite3
 * and node-postgres do their work, and the garbage collector's helpers). Precise to the
 * microsecond, unlike `threadCpuClock`, which lags by up to a scheduler tick.
 */
export function selfCpuClock(): Clock {
  return () => {
    const u = process.cpuUsage()
    return (u.user + u.system) / 1000
  }
}

/**
 * CPU time of the calling thread, Linux only. `schedstat` of a running thread is only brought
 * up to date at scheduler ticks, so short samples are coarse; prefer `selfCpuClock`.
 */
export function threadCpuClock(): Clock | undefined {
  const path = '/proc/thread-self/schedstat'
  if (schedstatNs(path) === undefined) return undefined
  return () => (schedstatNs(path) ?? Number.NaN) / 1e6
}

/** CPU time of another process on this machine (a PostgreSQL backend), Linux only. */
export function processCpuClock(pid: number): Clock | undefined {
  const path = `/proc/${pid}/schedstat`
  if (schedstatNs(path) === undefined) return undefined
  return () => (schedstatNs(path) ?? Number.NaN) / 1e6
}

/** The sum of several clocks; undefined when any is. */
export function sumClocks(...clocks: readonly (Clock | undefined)[]): Clock | undefined {
  if (clocks.some((c) => c === undefined)) return undefined
  const cs = clocks as readonly Clock[]
  return () => cs.reduce((a, c) => a + c(), 0)
}

// ---------------------------------------------------------------- comparisons

export interface Variant {
  readonly name: string
  readonly fn: () => Promise<unknown> | unknown
}

export interface CompareOptions {
  /** Exactly this many rounds (samples per variant); overrides the three options below. */
  readonly rounds?: number
  /** At most this many rounds (default 7). */
  readonly maxRounds?: number
  /** At least this many rounds, whatever the budget (default 3). */
  readonly minRounds?: number
  /** Rounds are cut so the whole comparison takes about this long (default: no cut). */
  readonly budgetMs?: number
  /** Each sample repeats a variant until it has run about this long (at least once). */
  readonly sampleMs: number
  /** Known single-run (wall) times per variant; when absent each variant runs once to find it. */
  readonly singleMs?: readonly number[]
  /** Warm each variant up once more before measuring (skipped for runs over a second). */
  readonly warmup: boolean
  /** Also read this CPU clock around every sample. */
  readonly cpu?: Clock | undefined
  /**
   * Collect garbage before every sample (default true). A forced full collection leaves
   * concurrent sweeping on V8's helper threads that runs during the next sample and that
   * `process.cpuUsage` counts: one sample of a 2 ms statement read 8.5 ms of CPU in 1.7 ms of
   * wall time. Comparisons of many short samples pass false: each variant then pays for the
   * collections its own allocations cause, where they happen.
   */
  readonly collect?: boolean
}

export interface VariantStats {
  readonly name: string
  /** Wall milliseconds per run, one per round. */
  readonly samples: readonly number[]
  readonly median: number
  readonly min: number
  /** CPU milliseconds per run, one per round (empty without a CPU clock). */
  readonly cpuSamples: readonly number[]
  readonly cpuMedian: number
  /** The least CPU sample (NaN without a CPU clock). */
  readonly cpuMin: number
}

export type Measure = 'wall' | 'cpu'

export interface Comparison {
  readonly variants: readonly VariantStats[]
  readonly rounds: number
  readonly repsPerSample: number
  /** Median over rounds of `variant[i] / variant[base]` of the same round (`base` 0, wall time by default). */
  ratio(i: number, base?: number, measure?: Measure): number
  /**
   * `min(variant[i]) / min(variant[base])` over the rounds. On a shared machine (a VM whose
   * host takes its cores away unreported, other processes evicting caches) noise only ever adds
   * time, so the least of many short samples is the steady figure: it is what a run costs when
   * nothing else interferes, and it is reproducible between runs where medians of a few long
   * samples are not (see `bench/tpch.ts`).
   */
  minRatio(i: number, base?: number, measure?: Measure): number
}

/** Time one call, in wall milliseconds. */
export async function timeOnce(fn: () => Promise<unknown> | unknown): Promise<number> {
  const t0 = nowMs()
  await fn()
  return nowMs() - t0
}

export interface Timing {
  readonly wall: number
  /** NaN without a CPU clock. */
  readonly cpu: number
}

/** Time one call, wall and CPU milliseconds. */
export async function timeBoth(fn: () => Promise<unknown> | unknown, cpu?: Clock): Promise<Timing> {
  const c0 = cpu?.() ?? Number.NaN
  const t0 = nowMs()
  await fn()
  const wall = nowMs() - t0
  return { wall, cpu: (cpu?.() ?? Number.NaN) - c0 }
}

/**
 * The garbage collector, when it can be exposed (`--expose-gc` at run time through V8's flag
 * API), so every sample starts from a collected heap; a no-op otherwise.
 */
export const collectGarbage: () => void = (() => {
  try {
    v8.setFlagsFromString('--expose-gc')
    const gc = vm.runInNewContext('gc') as unknown
    if (typeof gc === 'function') return () => (gc as () => void)()
  } catch {
    // not available: samples just include whatever collection happens
  }
  return () => {}
})()

/**
 * Run the variants interleaved (A B C, C B A, ...) and return per-variant medians and paired
 * ratios.
 */
export async function compare(variants: readonly Variant[], opts: CompareOptions): Promise<Comparison> {
  const singles: number[] = []
  for (const [i, v] of variants.entries()) {
    const known = opts.singleMs?.[i]
    singles.push(known !== undefined && Number.isFinite(known) ? known : await timeOnce(v.fn))
  }
  if (opts.warmup) {
    // The least of the two timings: one run that waited for a core (10-20 ms for a 0.7 ms
    // statement under load) would otherwise set one repetition per sample for the whole comparison.
    for (const [i, v] of variants.entries()) if ((singles[i] as number) < 1000) singles[i] = Math.min(singles[i] as number, await timeOnce(v.fn))
  }
  const longest = Math.max(...singles, 1e-3)
  const reps = Math.max(1, Math.min(1000, Math.floor(opts.sampleMs / longest)))
  const roundCost = singles.reduce((a, x) => a + x, 0) * reps
  const byBudget = opts.budgetMs === undefined ? Number.POSITIVE_INFINITY : Math.floor(opts.budgetMs / Math.max(roundCost, 1e-3))
  const rounds = opts.rounds ?? Math.max(opts.minRounds ?? 3, Math.min(opts.maxRounds ?? 7, byBudget))
  const wall: number[][] = variants.map(() => [])
  const cpu: number[][] = variants.map(() => [])
  for (let r = 0; r < rounds; r++) {
    const order = variants.map((_, i) => i)
    if (r % 2 === 1) order.reverse()
    for (const i of order) {
      const v = variants[i] as Variant
      if (opts.collect !== false) collectGarbage()
      const c0 = opts.cpu?.() ?? Number.NaN
      const t0 = nowMs()
      for (let k = 0; k < reps; k++) await v.fn()
      const t1 = nowMs()
      ;(wall[i] as number[]).push((t1 - t0) / reps)
      if (opts.cpu !== undefined) (cpu[i] as number[]).push((opts.cpu() - c0) / reps)
    }
  }
  const stats = variants.map((v, i) => {
    const s = wall[i] as number[]
    const c = cpu[i] as number[]
    return { name: v.name, samples: s, median: median(s), min: Math.min(...s), cpuSamples: c, cpuMedian: median(c), cpuMin: c.length === 0 ? Number.NaN : Math.min(...c) }
  })
  return {
    variants: stats,
    rounds,
    repsPerSample: reps,
    ratio(i, base = 0, measure = 'wall') {
      const xs = measure === 'cpu' ? cpu : wall
      const b = xs[base] as number[]
      const other = xs[i] as number[]
      return median(other.map((x, r) => x / (b[r] as number)))
    },
    minRatio(i, base = 0, measure = 'wall') {
      const xs = measure === 'cpu' ? cpu : wall
      return Math.min(...(xs[i] as number[])) / Math.min(...(xs[base] as number[]))
    },
  }
}

/**
 * Microseconds per call of a synchronous function, as the median over `batches` batches of
 * `perBatch` calls each (after `warm` unmeasured calls). `setup` runs before each call,
 * outside the clock, and its result is passed to `fn`.
 */
export function microsPerCall<S>(
  setup: () => S,
  fn: (s: S) => unknown,
  { batches = 200, perBatch = 1, warm = 200 }: { batches?: number; perBatch?: number; warm?: number } = {},
): number {
  for (let i = 0; i < warm; i++) fn(setup())
  const times: number[] = []
  const inputs: S[] = new Array<S>(perBatch)
  for (let b = 0; b < batches; b++) {
    for (let k = 0; k < perBatch; k++) inputs[k] = setup()
    const t0 = process.hrtime.bigint()
    for (let k = 0; k < perBatch; k++) fn(inputs[k] as S)
    times.push(Number(process.hrtime.bigint() - t0) / 1e3 / perBatch)
  }
  return median(times)
}

// ---------------------------------------------------------------- formatting

export function fmtMs(ms: number): string {
  if (!Number.isFinite(ms)) return '-'
  if (ms >= 1000) return `${(ms / 1000).toFixed(2)}s`
  if (ms >= 10) return `${ms.toFixed(1)}ms`
  return `${ms.toFixed(2)}ms`
}

export function fmtUs(us: number): string {
  if (!Number.isFinite(us)) return '-'
  return us >= 100 ? us.toFixed(0) : us.toFixed(1)
}

export function fmtRatio(r: number): string {
  return Number.isFinite(r) ? `${r.toFixed(2)}x` : '-'
}

/** A fixed-width text table: first column left-aligned, the rest right-aligned. */
export function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)))
  const line = (cells: readonly string[]) =>
    cells.map((c, i) => (i === 0 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join('  ')
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n')
}

/** Indent every line of `s` by four spaces (for printing SQL and plans under a table). */
export const indent = (s: string): string => s.split('\n').map((l) => `    ${l}`).join('\n')

/**
 * Run `main` when the module whose `import.meta.url` is `url` is the program's entry point
 * (`npx tsx bench/x.ts`), not when `bench/all.ts` imports it.
 */
export function runIfMain(url: string, main: () => Promise<void>): void {
  if (process.argv[1] === undefined || url !== pathToFileURL(process.argv[1]).href) return
  main().catch((e: unknown) => {
    console.error(e)
    process.exit(1)
  })
}

/** The newest modification time of any file below `dir` (is `dist/` older than `src/`?). */
export function newestMtime(dir: string): number {
  let newest = 0
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = `${dir}/${e.name}`
    newest = Math.max(newest, e.isDirectory() ? newestMtime(p) : statSync(p).mtimeMs)
  }
  return newest
}

/** Environment variable `name` as a number (`dflt` when unset or empty); anything else is an error. */
export function envNum(name: string, dflt: number): number {
  const v = process.env[name]
  if (v === undefined || v === '') return dflt
  const n = Number(v)
  if (!Number.isFinite(n)) throw new Error(`${name} must be a number, got ${JSON.stringify(v)}`)
  return n
}

/** Environment variable `name` (or `dflt`) as a comma-separated list, blanks dropped. */
export function envList(name: string, dflt: string): string[] {
  return (process.env[name] ?? dflt).split(',').map((s) => s.trim()).filter((s) => s !== '')
}

/** Environment variable `name` (default both) as a list of dialects; an unknown one is an error. */
export function envDialects(name: string): Dialect[] {
  const ds = envList(name, 'sqlite,postgres')
  for (const d of ds) if (d !== 'sqlite' && d !== 'postgres') throw new Error(`${name}: unknown dialect ${d}`)
  return ds as Dialect[]
}

/** The PostgreSQL server of the benchmarks: PGHOST PGPORT PGUSER PGDATABASE (default 127.0.0.1 5432 postgres test). */
export const pgConfig = {
  host: process.env.PGHOST ?? '127.0.0.1',
  port: Number(process.env.PGPORT ?? 5432),
  user: process.env.PGUSER ?? 'postgres',
  database: process.env.PGDATABASE ?? 'test',
}
