import { afterAll, describe, expect, it } from 'vitest'
import { allocFloats } from '../../../src/engine/blob.js'
import { convOutputSize, type ConvGeometry } from '../../../src/engine/kernels/im2col.js'
import type { PoolGeometry } from '../../../src/engine/kernels/pool-kernels.js'
import { loadBlas } from '../../../src/engine/kernels/blas-kernels.js'
import { claimChunk, TaskPool } from '../../../src/engine/kernels/task-pool.js'
import { setTaskSgemm, TASKS, type TaskArgs, type TaskName } from '../../../src/engine/kernels/tasks.js'
import { Rng } from '../../../src/engine/random.js'
import { withBlas } from '../../helpers/kernel-paths.js'

// Every task must run from its source text in a worker thread (see tasks.ts): each is run
// split over a real worker and compared with the same task run whole on this thread.

const pool = new TaskPool(2)
// Every chunk of a parallel task in the worker: compare() then proves each task's source runs there.
const workerPool = new TaskPool(2, { workersOnly: true })
afterAll(() => {
  pool.close()
  workerPool.close()
})
const rng = new Rng(8)
const HUGE = 1e12

function shared (n: number): Float32Array {
  const a = allocFloats(n)
  for (let i = 0; i < n; i++) a[i] = rng.gaussian()
  return a
}

const conv: ConvGeometry = {
  channels: 3,
  height: 9,
  width: 8,
  kernelH: 3,
  kernelW: 2,
  padH: 1,
  padW: 0,
  strideH: 2,
  strideW: 1,
  dilationH: 1,
  dilationW: 2,
  outH: convOutputSize(9, 3, 1, 2, 1),
  outW: convOutputSize(8, 2, 0, 1, 2)
}
const rowsConv: ConvGeometry = {
  ...conv,
  height: 7,
  width: 6,
  kernelH: 3,
  kernelW: 2,
  padH: 1,
  padW: 1,
  strideH: 1,
  strideW: 2,
  dilationW: 1,
  outH: convOutputSize(7, 3, 1, 1, 1),
  outW: convOutputSize(6, 2, 1, 2, 1)
}
const pooling: PoolGeometry = { inH: 7, inW: 6, outH: 4, outW: 3, kernelH: 3, kernelW: 3, padH: 1, padW: 1, strideH: 2, strideW: 2 }
const pool22: PoolGeometry = { inH: 8, inW: 8, outH: 4, outW: 4, kernelH: 2, kernelW: 2, padH: 0, padW: 0, strideH: 2, strideW: 2 }

/** Runs the task whole inline on copies and split in the pool on the originals; compares `outputs`. */
function compare<T extends TaskName> (task: T, n: number, args: TaskArgs<T>, outputs: number[]): void {
  const copies = args.map((a) => (a instanceof Float32Array ? Float32Array.from(a) : a instanceof Int32Array ? Int32Array.from(a) : a)) as TaskArgs<T>
  const fn = TASKS[task] as (s: number, e: number, ...rest: unknown[]) => void
  fn(0, n, ...copies)
  workerPool.run(task, n, HUGE, ...args)
  // A failure in the worker would be hidden by the inline rerun; the pool records it.
  expect(workerPool.problem, task).toBeUndefined()
  for (const i of outputs) expect(Array.from(args[i] as ArrayLike<number>), `${task} output ${i}`).toEqual(Array.from(copies[i] as ArrayLike<number>))
}

describe('TaskPool', () => {
  it('starts a worker thread under the test runner', () => {
    expect(pool.problem).toBeUndefined()
    expect(pool.parallel).toBe(true)
  })

  it('runs every task in a worker with the same results as on the calling thread', () => {
    const N = conv.outH * conv.outW
    const inDim = 3 * 9 * 8
    const rows = 3 * 3 * 2
    const images = 5
    compare('im2col', images, [conv, shared(images * inDim), inDim, shared(rows * N * images), N, N * images, 0], [3])
    compare('col2im', images, [conv, shared(rows * N * images), N, N * images, shared(images * inDim), inDim, 0], [4])
    compare('scatter', 6, [shared(6 * 3 * 70), shared(4 * 6 * 70), 1, 3, 6, 70, shared(6)], [1])
    compare('scatter', 6, [shared(6 * 3 * 10), shared(4 * 6 * 10), 1, 3, 6, 10, undefined], [1])
    compare('gather', 6, [shared(4 * 6 * 10), shared(6 * 3 * 10), 1, 3, 6, 10], [1])
    compare('gather', 6, [shared(4 * 6 * 70), shared(6 * 3 * 70), 1, 3, 6, 70], [1])
    compare('scatter', 6, [shared(6 * 3 * 70), shared(4 * 6 * 70), 1, 3, 6, 70, undefined], [1])
    for (const g of [pooling, pool22]) {
      const planes = 6
      const x = shared(planes * g.inH * g.inW)
      const mask = new Int32Array(new SharedArrayBuffer(4 * planes * g.outH * g.outW))
      compare('maxPool', planes, [g, x, shared(planes * g.outH * g.outW), mask], [2, 3])
      compare('maxPoolBackward', planes, [g, shared(planes * g.outH * g.outW), mask, shared(planes * g.inH * g.inW)], [3])
      compare('avePool', planes, [g, x, shared(planes * g.outH * g.outW)], [2])
      compare('avePoolBackward', planes, [g, shared(planes * g.outH * g.outW), shared(planes * g.inH * g.inW)], [2])
    }
    for (const [byRows, M, N, K] of [[false, 7, 37, 19], [true, 41, 6, 300]] as const) {
      const blocks = Math.ceil((byRows ? M : N) / 4)
      compare('gemm', blocks, [byRows, true, false, M, N, K, 0.5, shared(M * K), 0, shared(K * N), 0, shared(M * N), 0], [11])
    }
    for (const [group, onesRow] of [[1, true], [2, false]] as const) {
      const [images, M] = [5, 4]
      const inDim = rowsConv.channels * rowsConv.height * rowsConv.width
      const Kr = rowsConv.channels / group * rowsConv.kernelW
      compare('convRows', images, [rowsConv, shared(images * inDim), inDim, shared(images * M * rowsConv.outH * rowsConv.outW),
        M, group, shared(rowsConv.kernelH * M * (Kr + 1)), shared(M), onesRow], [5])
    }
  })

  it('claims chunks of the current run only, and no more once claims are closed', () => {
    const claim = new Int32Array(new SharedArrayBuffer(4))
    Atomics.store(claim, 0, 7 << 16)
    expect([claimChunk(claim, 7, 3), claimChunk(claim, 7, 3), claimChunk(claim, 6, 3), claimChunk(claim, 7, 3), claimChunk(claim, 7, 3)]).toEqual([0, 1, -1, 2, -1])
    // Tags with the top bit set make the word negative.
    Atomics.store(claim, 0, 0xfffe << 16)
    expect(claimChunk(claim, 0xfffe, 2)).toBe(0)
    expect(claimChunk(claim, 0xfffe & 0x7fff, 2)).toBe(-1)
  })

  it('keeps small tasks and unshared arrays on the calling thread, and works after close', () => {
    const a = new Float32Array(40).fill(1)
    const out = new Float32Array(40)
    pool.run('gather', 4, HUGE, a, out, 0, 1, 4, 10)
    expect([...out]).toEqual([...a])
    const solo = new TaskPool(2)
    solo.close()
    expect(solo.parallel).toBe(false)
    const y = shared(40)
    solo.run('scatter', 4, HUGE, shared(40), y, 0, 1, 4, 10, undefined)
    expect(y.every((v) => Number.isFinite(v))).toBe(true)
    expect(new TaskPool(1).parallel).toBe(false)
  })

  it('propagates an error thrown by a task', () => {
    expect(() => pool.run('im2col', 4, HUGE, null as unknown as ConvGeometry, shared(10), 1, shared(10), 1, 1, 0)).toThrow(TypeError)
    // The pool is still usable, and still parallel, afterwards.
    expect(pool.problem).toBeUndefined()
    expect(pool.parallel).toBe(true)
    compare('gather', 6, [shared(4 * 6 * 10), shared(6 * 3 * 10), 1, 3, 6, 10], [1])
  })

  it('a task that fails in the workers and again on this thread is the caller\'s error: thrown, and the workers stay in use', () => {
    // workersOnly: the workers claim every chunk, so no failure on this thread comes first.
    const own = new TaskPool(2, { workersOnly: true })
    try {
      expect(() => own.run('im2col', 4, HUGE, null as unknown as ConvGeometry, shared(10), 1, shared(10), 1, 1, 0)).toThrow(TypeError)
      expect(own.problem).toBeUndefined()
      expect(own.parallel).toBe(true)
    } finally {
      own.close()
    }
  })

  it.runIf(withBlas)('runs BLAS tasks in workers that bind OpenBLAS; a worker that cannot gets its chunks rerun inline', () => {
    const lib = loadBlas()
    const native = { sgemm: lib.sgemm, koffi: lib.koffi, library: lib.file }
    const [images, M] = [9, 6]
    const inDim = rowsConv.channels * rowsConv.height * rowsConv.width
    const out = rowsConv.outH * rowsConv.outW
    const input = shared(images * inDim)
    const weights = shared(rowsConv.kernelH * M * (rowsConv.channels * rowsConv.kernelW + 1))
    const bias = shared(M)
    /** convRows on a fresh output through `pool` (inline with `sgemm` when no pool). */
    const convRows = (pool: TaskPool | undefined, sgemm?: typeof lib.sgemm): Float32Array => {
      const y = shared(images * M * out)
      if (pool === undefined) {
        setTaskSgemm(sgemm)
        TASKS.convRows(0, images, rowsConv, input, inDim, y, M, 1, weights, bias, true)
      } else {
        pool.run('convRows', images, HUGE, rowsConv, input, inDim, y, M, 1, weights, bias, true)
      }
      return y
    }
    const nativePool = new TaskPool(2, { workersOnly: true, native })
    const plainPool = new TaskPool(2, { workersOnly: true })
    const brokenPool = new TaskPool(2, { workersOnly: true, native: { ...native, koffi: '/nonexistent/koffi.node' } })
    try {
      const nativeInline = convRows(undefined, lib.sgemm)
      const portableInline = convRows(undefined, undefined)
      expect(Array.from(convRows(nativePool))).toEqual(Array.from(nativeInline))
      expect(Array.from(convRows(plainPool))).toEqual(Array.from(portableInline))
      expectNear(nativeInline, portableInline)
      expect(nativePool.problem).toBeUndefined()
      expect(plainPool.problem).toBeUndefined()
      // The broken pool's worker fails every chunk; the calling thread redoes them with BLAS.
      expect(Array.from(convRows(brokenPool))).toEqual(Array.from(nativeInline))
      expect(brokenPool.problem).toMatch(/convRows task failed in a worker thread: .*BLAS did not load in this worker/)
      expect(brokenPool.parallel).toBe(false)
      // The sgemm task: stripes of rows and of columns, with leading dimensions and beta.
      for (const byRows of [true, false]) {
        const [m, n, k] = [70, 90, 33]
        const A = shared(k * 75)
        const B = shared(k * 95)
        const C = shared(m * 100)
        const want = Float32Array.from(C)
        setTaskSgemm(lib.sgemm)
        TASKS.sgemm(0, 1, byRows, byRows ? m : n, true, false, m, n, k, 0.5, A, 0, 75, B, 0, 95, 0.25, want, 0, 100)
        nativePool.run('sgemm', Math.ceil((byRows ? m : n) / 8), HUGE, byRows, 8, true, false, m, n, k, 0.5, A, 0, 75, B, 0, 95, 0.25, C, 0, 100)
        expectNear(C, want)
      }
      expect(nativePool.problem).toBeUndefined()
    } finally {
      nativePool.close()
      plainPool.close()
      brokenPool.close()
    }
  })
})

function expectNear (a: Float32Array, b: Float32Array): void {
  expect(a.length).toBe(b.length)
  let worst = 0
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs((a[i] ?? 0) - (b[i] ?? 0)) / (1 + Math.abs(b[i] ?? 0)))
  expect(worst).toBeLessThan(1e-5)
}
