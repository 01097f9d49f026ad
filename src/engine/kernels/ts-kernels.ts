import type { Kernels } from './kernels.js'
import { PackedGemm, scaleMatrix } from './packed-gemm.js'

/**
 * The portable path: blocked GEMM and plain GEMV in TypeScript, on the calling thread.
 * Works everywhere; about 5–6 GFLOP/s on one core of the build machine.
 */
export class TsKernels implements Kernels {
  readonly name = 'ts'
  readonly threads: number
  readonly description: string
  private readonly packed = new PackedGemm()

  constructor (options: { threads?: number, note?: string | undefined } = {}) {
    this.threads = 1
    this.description = `ts (portable TypeScript, 1 thread)${options.note === undefined ? '' : `; ${options.note}`}`
  }

  gemm (transA: boolean, transB: boolean, M: number, N: number, K: number,
    alpha: number, A: Float32Array, aOff: number, B: Float32Array, bOff: number,
    beta: number, C: Float32Array, cOff: number): void {
    checkGemm(transA, transB, M, N, K, A, aOff, B, bOff, C, cOff)
    scaleMatrix(C, cOff, M * N, beta)
    if (M === 0 || N === 0 || K === 0 || alpha === 0) return
    this.packed.run(transA, transB, M, N, K, alpha, A, aOff, B, bOff, C, cOff)
  }

  gemv (transA: boolean, M: number, N: number, alpha: number, A: Float32Array, aOff: number,
    x: Float32Array, xOff: number, beta: number, y: Float32Array, yOff: number): void {
    const ylen = transA ? N : M
    const xlen = transA ? M : N
    if (aOff < 0 || aOff + M * N > A.length || xOff < 0 || xOff + xlen > x.length || yOff < 0 || yOff + ylen > y.length) {
      throw new RangeError(`gemv ${transA ? 'T' : 'N'} ${M}x${N}: operand out of bounds`)
    }
    scaleMatrix(y, yOff, ylen, beta)
    if (alpha === 0) return
    if (!transA) {
      for (let i = 0; i < M; i++) {
        let s = 0
        const row = aOff + i * N
        for (let j = 0; j < N; j++) s += A[row + j]! * x[xOff + j]!
        y[yOff + i]! += alpha * s
      }
      return
    }
    // Aᵀx as a sum of scaled rows keeps the walk over A sequential.
    for (let i = 0; i < M; i++) {
      const a = alpha * x[xOff + i]!
      if (a === 0) continue
      const row = aOff + i * N
      for (let j = 0; j < N; j++) y[yOff + j]! += a * A[row + j]!
    }
  }

  close (): void {}
}

/** Bounds check shared by both paths: a bad offset must throw, never read or write outside. */
export function checkGemm (transA: boolean, transB: boolean, M: number, N: number, K: number,
  A: Float32Array, aOff: number, B: Float32Array, bOff: number, C: Float32Array, cOff: number): void {
  if (!(M >= 0 && N >= 0 && K >= 0) || aOff < 0 || bOff < 0 || cOff < 0 ||
    aOff + M * K > A.length || bOff + K * N > B.length || cOff + M * N > C.length) {
    throw new RangeError(`gemm ${transA ? 'T' : 'N'}${transB ? 'T' : 'N'} M=${M} N=${N} K=${K}: operand out of bounds ` +
      `(A ${aOff}+${M * K}/${A.length}, B ${bOff}+${K * N}/${B.length}, C ${cOff}+${M * N}/${C.length})`)
  }
}
