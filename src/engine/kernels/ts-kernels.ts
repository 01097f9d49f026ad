import type { Kernels } from './kernels.js'
import { gemmBlock, scaleMatrix, threadPackBuffers } from './packed-gemm.js'
import { TaskPool } from './task-pool.js'
import type { TaskArgs, TaskName } from './tasks.js'

/**
 * The portable path: blocked GEMM and plain GEMV in TypeScript. With more than one thread,
 * large products (on SharedArrayBuffer-backed arrays) are split by column or row stripes over
 * worker threads, as are the layers' data-parallel tasks. About 5–6 GFLOP/s per core here.
 */
export class TsKernels implements Kernels {
  readonly name = 'ts'
  readonly threads: number
  readonly description: string
  private readonly pool: TaskPool

  constructor (options: { threads?: number, note?: string | undefined } = {}) {
    this.pool = new TaskPool(options.threads ?? 1)
    this.threads = this.pool.parallel ? this.pool.threads : 1
    const why = this.pool.problem === undefined ? '' : `; worker threads unavailable: ${this.pool.problem}`
    this.description = `ts (portable TypeScript, ${this.threads} thread${this.threads === 1 ? '' : 's'}${why})${options.note === undefined ? '' : `; ${options.note}`}`
  }

  gemm (transA: boolean, transB: boolean, M: number, N: number, K: number,
    alpha: number, A: Float32Array, aOff: number, B: Float32Array, bOff: number,
    beta: number, C: Float32Array, cOff: number): void {
    checkGemm(transA, transB, M, N, K, A, aOff, B, bOff, C, cOff)
    scaleMatrix(C, cOff, M * N, beta)
    if (M === 0 || N === 0 || K === 0 || alpha === 0) return
    if (this.pool.parallel) {
      // Stripes along the longer side of C, in blocks of 4 (the micro-kernel's width).
      const byRows = M > N
      const blocks = Math.ceil((byRows ? M : N) / 4)
      this.pool.run('gemm', blocks, (M * N * K) / 16, byRows, transA, transB, M, N, K, alpha, A, aOff, B, bOff, C, cOff)
      return
    }
    const [pa, pb] = threadPackBuffers()
    gemmBlock(transA, transB, M, N, K, alpha, A, aOff, B, bOff, C, cOff, 0, M, 0, N, pa, pb)
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

  run<T extends TaskName> (task: T, n: number, work: number, ...args: TaskArgs<T>): void {
    this.pool.run(task, n, work, ...args)
  }

  close (): void {
    this.pool.close()
  }
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
