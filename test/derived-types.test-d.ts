import * as t from 'io-ts'
import { describe, expectTypeOf, test } from 'vitest'
import { table, type GetOptions, type RefreshOptions, type RefreshProgress, type Store, type TableReport } from '../src/index.js'

const src = table('src', { id: t.Int, x: t.Int })
declare const store: Store

describe('derived store types: refresh control', () => {
  test('refresh takes timeoutMs, signal and onProgress; the progress event has the documented shape', () => {
    expectTypeOf<RefreshProgress>().toEqualTypeOf<{
      readonly table: string
      readonly tableIndex: number
      readonly tableCount: number
      readonly phase: 'scan' | 'batch' | 'done'
      readonly done: number
      readonly total: number
      readonly counts: TableReport
      readonly elapsedMs: number
    }>()
    expectTypeOf<{ timeoutMs: number; signal: AbortSignal; onProgress: (p: RefreshProgress) => void }>().toExtend<RefreshOptions>()
    expectTypeOf<{ timeoutMs: number; signal: AbortSignal }>().toExtend<GetOptions>()
    // @ts-expect-error onProgress takes a RefreshProgress
    void store.refresh({ onProgress: (p: string) => p })
  })

  test('a derivation declares timeoutMs, and its function gets ctx.signal', () => {
    store.derive({
      name: 'out',
      from: src,
      output: { y: t.Int },
      timeoutMs: 1000,
      fn: async (r, ctx) => {
        expectTypeOf(ctx.signal).toEqualTypeOf<AbortSignal>()
        return { y: r.x }
      },
    })
  })
})
