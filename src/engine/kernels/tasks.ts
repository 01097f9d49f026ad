import { col2im, col2imDense, im2col, im2colDense, type ConvGeometry } from './im2col.js'
import { gatherRows, LAYOUT_FUNCTIONS, scatterRows } from './layout-kernels.js'
import { GEMM_CONSTANTS, GEMM_FUNCTIONS, gemmBlock, PACK_A_SIZE, PACK_B_SIZE, threadPackBuffers } from './packed-gemm.js'
import { avePoolBackward, avePoolForward, maxPoolBackward, maxPoolForward, POOL_CONSTANTS, POOL_FUNCTIONS, type PoolGeometry } from './pool-kernels.js'

/**
 * The functions the tasks call, reached through this object rather than as imports: test
 * runners (vite) rewrite imported names inside function bodies, which would break their
 * source text in a worker. The worker program defines the same object over the same functions.
 */
const impl = {
  im2col,
  col2im,
  scatterRows,
  gatherRows,
  gemmBlock,
  threadPackBuffers,
  maxPoolForward,
  maxPoolBackward,
  avePoolForward,
  avePoolBackward
} as const

/**
 * The data-parallel tasks the kernels can split over threads. Each takes a range [start, end)
 * of independent items (images, planes, rows, column blocks) first, then its arguments.
 *
 * Invariant that makes threads possible: a worker runs these functions from their source text
 * (Function.prototype.toString), so a task may refer only to `impl`, and the functions behind it
 * only to each other (within their own module) and to WORKER_CONSTANTS. The task-pool tests
 * run every task in a worker, so a violation fails there.
 */
export const TASKS = {
  /** Unfolds images b0+i, i in [i0, i1), into the chunk's column buffer (row stride ld). */
  im2col: (i0: number, i1: number, g: ConvGeometry, x: Float32Array, inDim: number, col: Float32Array, N: number, ld: number, b0: number): void => {
    for (let i = i0; i < i1; i++) impl.im2col(g, x, (b0 + i) * inDim, col, i * N, ld)
  },
  col2im: (i0: number, i1: number, g: ConvGeometry, col: Float32Array, N: number, ld: number, dx: Float32Array, inDim: number, b0: number): void => {
    for (let i = i0; i < i1; i++) impl.col2im(g, col, i * N, ld, dx, (b0 + i) * inDim)
  },
  scatter: (m0: number, m1: number, out: Float32Array, y: Float32Array, b0: number, bc: number, M: number, N: number, bias: Float32Array | undefined): void => {
    impl.scatterRows(out, y, b0, bc, M, N, bias, m0, m1)
  },
  gather: (m0: number, m1: number, dy: Float32Array, out: Float32Array, b0: number, bc: number, M: number, N: number): void => {
    impl.gatherRows(dy, out, b0, bc, M, N, m0, m1)
  },
  maxPool: (p0: number, p1: number, g: PoolGeometry, x: Float32Array, y: Float32Array, mask: Int32Array | undefined): void => {
    impl.maxPoolForward(g, x, y, mask, p0, p1)
  },
  maxPoolBackward: (p0: number, p1: number, g: PoolGeometry, dy: Float32Array, mask: Int32Array, dx: Float32Array): void => {
    impl.maxPoolBackward(g, dy, mask, dx, p0, p1)
  },
  avePool: (p0: number, p1: number, g: PoolGeometry, x: Float32Array, y: Float32Array): void => {
    impl.avePoolForward(g, x, y, p0, p1)
  },
  avePoolBackward: (p0: number, p1: number, g: PoolGeometry, dy: Float32Array, dx: Float32Array): void => {
    impl.avePoolBackward(g, dy, dx, p0, p1)
  },
  /**
   * One stripe of C += alpha·op(A)·op(B): blocks [s0, s1) of 4 rows (byRows) or 4 columns,
   * with this thread's packing buffers; leading dimensions as Kernels.gemm (dense by default).
   */
  gemm: (s0: number, s1: number, byRows: boolean, transA: boolean, transB: boolean, M: number, N: number, K: number, alpha: number,
    A: Float32Array, aOff: number, B: Float32Array, bOff: number, C: Float32Array, cOff: number,
    lda = transA ? M : K, ldb = transB ? K : N, ldc = N): void => {
    const [pa, pb] = impl.threadPackBuffers()
    if (byRows) impl.gemmBlock(transA, transB, K, alpha, A, aOff, lda, B, bOff, ldb, C, cOff, ldc, Math.min(M, s0 * 4), Math.min(M, s1 * 4), 0, N, pa, pb)
    else impl.gemmBlock(transA, transB, K, alpha, A, aOff, lda, B, bOff, ldb, C, cOff, ldc, 0, M, Math.min(N, s0 * 4), Math.min(N, s1 * 4), pa, pb)
  }
} as const

export type TaskName = keyof typeof TASKS
type Rest<T> = T extends (start: number, end: number, ...args: infer A) => void ? A : never
/** The arguments of a task after its range. */
export type TaskArgs<T extends TaskName> = Rest<(typeof TASKS)[T]>

/** Everything the tasks call, as source for workers. */
export const WORKER_FUNCTIONS: ReadonlyArray<(...args: never[]) => unknown> = [
  im2col, col2im, im2colDense, col2imDense, ...LAYOUT_FUNCTIONS, ...GEMM_FUNCTIONS, ...POOL_FUNCTIONS
]
/** `impl` as the worker program spells it: key → function name. */
export const WORKER_LOOKUP: Readonly<Record<string, string>> = Object.fromEntries(Object.entries(impl).map(([k, f]) => [k, f.name]))
export const WORKER_CONSTANTS: Readonly<Record<string, number>> = { ...GEMM_CONSTANTS, ...POOL_CONSTANTS, PACK_A_SIZE, PACK_B_SIZE }
