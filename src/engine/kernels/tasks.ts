import { col2im, col2imDense, im2col, im2colDense, unfoldRows, unfoldRowsDense, type ConvGeometry } from './im2col.js'
import { gatherRows, LAYOUT_FUNCTIONS, scatterRows, threadScratch } from './layout-kernels.js'
import { GEMM_CONSTANTS, GEMM_FUNCTIONS, gemmBlock, PACK_A_SIZE, PACK_B_SIZE, scaleMatrix, threadPackBuffers } from './packed-gemm.js'
import { avePoolBackward, avePoolForward, maxPoolBackward, maxPoolForward, POOL_CONSTANTS, POOL_FUNCTIONS, type PoolGeometry } from './pool-kernels.js'

/** cblas_sgemm as bound through koffi: typed arrays are passed as pointers to their first element. */
export type NativeSgemm = (order: number, ta: number, tb: number, M: number, N: number, K: number, alpha: number,
  A: Float32Array, lda: number, B: Float32Array, ldb: number, beta: number, C: Float32Array, ldc: number) => void
/** koffi's declaration of cblas_sgemm (void* rather than float*: koffi then hands over the array's memory). */
export const SGEMM_SIGNATURE = 'void cblas_sgemm(int, int, int, int, int, int, float, void *, int, void *, int, float, void *, int)'

const TASK_FUNCTIONS = {
  im2col,
  col2im,
  unfoldRows,
  scatterRows,
  gatherRows,
  threadScratch,
  gemmBlock,
  scaleMatrix,
  threadPackBuffers,
  maxPoolForward,
  maxPoolBackward,
  avePoolForward,
  avePoolBackward
} as const

/**
 * The functions the tasks call, reached through this object rather than as imports: test
 * runners (vite) rewrite imported names inside function bodies, which would break their
 * source text in a worker. The worker program defines the same object over the same functions.
 * `sgemm` is the native BLAS of the pool running the task, undefined for the portable path:
 * a BLAS pool's workers bind it at start, and TaskPool sets it on the calling thread for each
 * run (setTaskSgemm), so every thread of one pool computes products the same way.
 */
const impl: typeof TASK_FUNCTIONS & { sgemm: NativeSgemm | undefined } = { ...TASK_FUNCTIONS, sgemm: undefined }

/** The native cblas_sgemm for the tasks this thread runs next, or undefined for the portable GEMM. */
export function setTaskSgemm (sgemm: NativeSgemm | undefined): void {
  impl.sgemm = sgemm
}

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
  /**
   * Convolution forward by row unfolding (see unfoldRows) of images [i0, i1): each image is
   * unfolded into this thread's scratch, then one GEMM per group and kernel row writes or adds
   * into its M×outH×outW top, through the pool's native BLAS (impl.sgemm, one OpenBLAS thread
   * per call) or else the portable GEMM. `wr` holds the weights as kH blocks of M rows of
   * lda = Kr (+ 1) floats, Kr = channels/group·kW. With `onesRow` (group 1 with a bias), column
   * Kr of block 0 is the bias and meets a row of ones after the unfolded rows; otherwise a
   * given `bias` is written first and the products add to it.
   */
  convRows: (i0: number, i1: number, g: ConvGeometry, x: Float32Array, inDim: number, y: Float32Array,
    M: number, group: number, wr: Float32Array, bias: Float32Array | undefined, onesRow: boolean): void => {
    const kernelRows = g.channels * g.kernelW
    const ld = (g.height + 2 * g.padH) * g.outW
    const N = g.outH * g.outW
    const Kr = kernelRows / group
    const Mg = M / group
    const lda = onesRow ? Kr + 1 : Kr
    const rows = impl.threadScratch((kernelRows + 1) * ld)
    if (onesRow) rows.fill(1, kernelRows * ld, kernelRows * ld + N)
    const sgemm = impl.sgemm
    const [pa, pb] = impl.threadPackBuffers()
    for (let b = i0; b < i1; b++) {
      impl.unfoldRows(g, x, b * inDim, rows, 0, ld)
      const yOff = b * M * N
      if (bias !== undefined && !onesRow) for (let m = 0; m < M; m++) y.fill(bias[m]!, yOff + m * N, yOff + (m + 1) * N)
      for (let gi = 0; gi < group; gi++) {
        for (let kh = 0; kh < g.kernelH; kh++) {
          // Block 0 takes the bias column (K + 1) or overwrites C; the others add to C.
          const K = onesRow && kh === 0 ? Kr + 1 : Kr
          const beta = kh === 0 && (onesRow || bias === undefined) ? 0 : 1
          const aOff = (kh * M + gi * Mg) * lda
          const bOff = gi * Kr * ld + kh * g.dilationH * g.outW
          const cOff = yOff + gi * Mg * N
          if (sgemm !== undefined) {
            sgemm(101, 111, 111, Mg, N, K, 1, wr.subarray(aOff), lda, rows.subarray(bOff), ld, beta, y.subarray(cOff), N)
          } else {
            impl.scaleMatrix(y, cOff, Mg, N, N, beta)
            impl.gemmBlock(false, false, K, 1, wr, aOff, lda, rows, bOff, ld, y, cOff, N, 0, Mg, 0, N, pa, pb)
          }
        }
      }
    }
  },
  /**
   * One stripe of C = alpha·op(A)·op(B) + beta·C through the pool's native BLAS: rows
   * [s0·block, s1·block) of C (byRows) or those columns, clipped to M or N. Each thread calls
   * single-threaded OpenBLAS: the pool, not OpenBLAS's own spinning threads, spreads the work.
   */
  sgemm: (s0: number, s1: number, byRows: boolean, block: number, transA: boolean, transB: boolean, M: number, N: number, K: number,
    alpha: number, A: Float32Array, aOff: number, lda: number, B: Float32Array, bOff: number, ldb: number,
    beta: number, C: Float32Array, cOff: number, ldc: number): void => {
    const sgemm = impl.sgemm
    if (sgemm === undefined) throw new Error('sgemm task: no native BLAS on this thread')
    const ta = transA ? 112 : 111
    const tb = transB ? 112 : 111
    if (byRows) {
      const lo = s0 * block
      const hi = Math.min(M, s1 * block)
      if (hi > lo) sgemm(101, ta, tb, hi - lo, N, K, alpha, A.subarray(aOff + (transA ? lo : lo * lda)), lda, B.subarray(bOff), ldb, beta, C.subarray(cOff + lo * ldc), ldc)
    } else {
      const lo = s0 * block
      const hi = Math.min(N, s1 * block)
      if (hi > lo) sgemm(101, ta, tb, M, hi - lo, K, alpha, A.subarray(aOff), lda, B.subarray(bOff + (transB ? lo * ldb : lo)), ldb, beta, C.subarray(cOff + lo), ldc)
    }
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
  im2col, col2im, im2colDense, col2imDense, unfoldRows, unfoldRowsDense, ...LAYOUT_FUNCTIONS, ...GEMM_FUNCTIONS, ...POOL_FUNCTIONS
]
/** `impl` as the worker program spells it: key → function name (sgemm is bound separately). */
export const WORKER_LOOKUP: Readonly<Record<string, string>> = Object.fromEntries(Object.entries(TASK_FUNCTIONS).map(([k, f]) => [k, f.name]))
export const WORKER_CONSTANTS: Readonly<Record<string, number>> = { ...GEMM_CONSTANTS, ...POOL_CONSTANTS, PACK_A_SIZE, PACK_B_SIZE }
