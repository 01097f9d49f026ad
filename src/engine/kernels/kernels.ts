import type { TaskArgs, TaskName } from './tasks.js'

/**
 * The numeric kernels the layers are written against. Two implementations sit behind it:
 * a portable TypeScript path that always works, and a BLAS path (OpenBLAS loaded at run time)
 * used when present. Both must give the same numbers within float tolerance.
 *
 * Matrices are row-major float32 with explicit offsets, so a layer can address one image of a
 * batch inside a blob without allocating a view. Arrays backed by a SharedArrayBuffer (see
 * allocFloats) let the TS path split large products over worker threads; plain arrays work too,
 * on the calling thread only.
 */
export interface Kernels {
  /** 'ts' or 'blas' (and whatever later paths are added); printed in logs and benchmarks. */
  readonly name: KernelsName
  /** Threads the products may use (the calling thread included). */
  readonly threads: number
  /** One line for logs: path, library, threads, and why a requested path was not taken. */
  readonly description: string
  /**
   * Whether many small products (one image's worth) run about as fast per flop as one large
   * product, so that layers may skip the layout changes a batched product needs: true for BLAS;
   * false for the portable path, which spreads only large products over its threads.
   */
  readonly smallProductsFast: boolean

  /**
   * C[cOff..] = alpha * op(A) * op(B) + beta * C, with op(X) = X or Xᵀ.
   * op(A) is M×K, op(B) is K×N, C is M×N; all row-major. Rows of the stored matrices are
   * lda/ldb/ldc elements apart (BLAS's leading dimensions); by default densely packed
   * (lda = transA ? M : K, ldb = transB ? K : N, ldc = N). A leading dimension shorter than
   * its row, or an operand that does not fit its array, throws RangeError.
   * With beta = 0, C is overwritten (NaN or garbage in C does not leak through).
   */
  gemm (transA: boolean, transB: boolean, M: number, N: number, K: number,
    alpha: number, A: Float32Array, aOff: number, B: Float32Array, bOff: number,
    beta: number, C: Float32Array, cOff: number, lda?: number, ldb?: number, ldc?: number): void

  /** y = alpha * op(A) * x + beta * y, A is M×N row-major (op(A) is N×M when transposed). */
  gemv (transA: boolean, M: number, N: number, alpha: number, A: Float32Array, aOff: number,
    x: Float32Array, xOff: number, beta: number, y: Float32Array, yOff: number): void

  /**
   * Runs a data-parallel task of tasks.ts over the items [0, n) (images, planes, rows), split
   * across the kernels' threads when `work` (a rough element count) makes it worth it and every
   * array argument is SharedArrayBuffer-backed; otherwise on the calling thread. Synchronous.
   */
  run<T extends TaskName> (task: T, n: number, work: number, ...args: TaskArgs<T>): void

  /** Releases threads or native handles. Idempotent; the kernels must not be used afterwards. */
  close (): void
}

export type KernelsName = 'ts' | 'blas'

/** What createKernels() should build. */
export interface KernelsOptions {
  /** 'auto' takes BLAS when OpenBLAS loads and TS otherwise; 'blas' fails if it cannot load. */
  kind: 'auto' | KernelsName
  /** Threads to use; default: every core (os.availableParallelism()). */
  threads?: number | undefined
}
