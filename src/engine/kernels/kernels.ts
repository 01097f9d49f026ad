/**
 * The numeric kernels the layers are written against. Two implementations sit behind it:
 * a portable TypeScript path that always works, and a BLAS path (OpenBLAS loaded at run time)
 * used when present. Both must give the same numbers within float tolerance.
 *
 * Matrices are row-major float32 with explicit offsets, so a layer can address one image of a
 * batch inside a blob without allocating a view.
 */
export interface Kernels {
  /** 'ts' or 'blas' (and whatever later paths are added); printed in logs and benchmarks. */
  readonly name: string

  /**
   * C[cOff..] = alpha * op(A) * op(B) + beta * C, with op(X) = X or Xᵀ.
   * op(A) is M×K, op(B) is K×N, C is M×N; all row-major and densely packed.
   */
  gemm (transA: boolean, transB: boolean, M: number, N: number, K: number,
    alpha: number, A: Float32Array, aOff: number, B: Float32Array, bOff: number,
    beta: number, C: Float32Array, cOff: number): void

  /** y = alpha * op(A) * x + beta * y, A is M×N row-major. */
  gemv (transA: boolean, M: number, N: number, alpha: number, A: Float32Array, aOff: number,
    x: Float32Array, xOff: number, beta: number, y: Float32Array, yOff: number): void

  /** Releases threads or native handles. Idempotent. */
  close (): void
}
