/**
 * The benchmark harness's comparison (bench/harness.ts `compare`): how it sizes samples and what
 * its ratios are. Figures are never asserted; these pin the arithmetic, with a fake CPU clock
 * where a ratio is checked.
 */
import { describe, expect, it } from 'vitest'
import { compare, type Clock } from '../../bench/harness.js'

const cell = new Int32Array(new SharedArrayBuffer(4))
/** Block this thread for about `ms` of wall time. */
const sleep = (ms: number): void => void Atomics.wait(cell, 0, 0, ms)

describe('bench harness: compare', () => {
  it('sizes its samples from the least of the check run and the warm-up run, so one slow run does not leave one repetition per sample', async () => {
    // The warm-up run waits 100 ms (a run that waited for a core); the check run and every other one take about 1 ms.
    let calls = 0
    const fn = () => sleep(++calls === 1 ? 100 : 1)
    const c = await compare([{ name: 'a', fn }], { rounds: 1, sampleMs: 50, singleMs: [1], warmup: true, collect: false })
    expect(c.repsPerSample).toBeGreaterThan(1)
  })

  it('gives the ratio of the least samples (minRatio) beside the median of per-round ratios', async () => {
    // A fake CPU clock: variant a costs 1 unit, b 3 units, except one spoiled sample of each (10 and 20).
    let now = 0
    const cpu: Clock = () => now
    let a = 0
    let b = 0
    const variants = [
      { name: 'a', fn: () => void (now += ++a === 3 ? 10 : 1) },
      { name: 'b', fn: () => void (now += ++b === 5 ? 20 : 3) },
    ]
    const c = await compare(variants, { rounds: 7, sampleMs: 0, singleMs: [1, 1], warmup: false, cpu, collect: false })
    expect(c.repsPerSample).toBe(1)
    expect(c.minRatio(1, 0, 'cpu')).toBe(3)
    expect(c.ratio(1, 0, 'cpu')).toBe(3)
    expect(c.variants.map((v) => v.cpuMin)).toEqual([1, 3])
  })
})
