/** The refresh progress display: plain lines off a terminal (throttled), a bar on one. Pure: no database. */
import { PassThrough } from 'node:stream'
import { describe, expect, it, vi } from 'vitest'
import { progressDisplay, type ProgressEvent } from '../../src/cli/progress.js'

function sink(tty: boolean): { stream: NodeJS.WriteStream; text: () => string } {
  const s = new PassThrough() as unknown as NodeJS.WriteStream & PassThrough
  let out = ''
  s.on('data', (d: Buffer) => (out += d.toString()))
  Object.assign(s, { isTTY: tty, columns: 120, cursorTo: (_x: number, _y?: number, cb?: () => void) => (cb?.(), true), clearLine: (_d: number, cb?: () => void) => (cb?.(), true), moveCursor: (_x: number, _y: number, cb?: () => void) => (cb?.(), true) })
  return { stream: s, text: () => out }
}

const ev = (phase: ProgressEvent['phase'], done: number, total = 10): ProgressEvent => ({ table: 'parsed', tableIndex: 0, tableCount: 2, phase, done, total })

describe('refresh progress', () => {
  it('off a terminal: a line at the start, at most one per 2 s of batches, one at the end', () => {
    vi.useFakeTimers({ toFake: ['performance'] })
    try {
      const { stream, text } = sink(false)
      const d = progressDisplay(stream, false)
      d.update(ev('scan', 0))
      d.update(ev('batch', 2))
      vi.advanceTimersByTime(2500)
      d.update(ev('batch', 5))
      d.update(ev('batch', 7))
      d.update(ev('done', 10))
      d.stop()
      expect(text().split('\n')).toEqual(['parsed (1/2): 0/10 rows (0.0%)', 'parsed (1/2): 5/10 rows (50.0%), 2 rows/s', 'parsed (1/2): done, 10/10 rows (100.0%), 4 rows/s', ''])
    } finally {
      vi.useRealTimers()
    }
  })

  it('on a terminal: a bar with rows done / to do, rate and ETA', async () => {
    const { stream, text } = sink(true)
    const d = progressDisplay(stream, true)
    d.update(ev('scan', 0))
    d.update(ev('batch', 4))
    d.update(ev('done', 10))
    d.stop()
    const plain = text().replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '')
    expect(plain).toMatch(/parsed \(1\/2\) \[[█░]+\] 10\/10 rows \| \d+ rows\/s \| ETA 0s/)
  })
})
