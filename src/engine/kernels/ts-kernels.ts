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
  readonly smallProductsFast = false
  private readonly pool: TaskPool

  constructor (options: { threads?: number, note?: string | undefined } = {}) {
    this.pool = new TaskPool(options.threads ?? 1)
    this.threads = this.pool.parallel ? this.pool.threads : 1
    const why = this.pool.problem === undefined ? '' : `; worker threads unavailable: ${this.pool.problem}`
    this.description = `ts (portable TypeScript, ${this.threads} thread${this.threads === 1 ? '' : 's'}${why})${options.note === undefined ? '' : `; ${options.note}`}`
  }

  gemm (transA: boolean, transB: boolean, M: number, N: number, K: number,
    alpha: number, A: Float32Array, aOff: number, B: Float32Array, bOff: number,
    beta: number, C: Float32Array, cOff: number, lda = transA ? M : K, ldb = transB ? K : N, ldc = N): void {
    checkGemm(transA, transB, M, N, K, A, aOff, lda, B, bOff, ldb, C, cOff, ldc)
    scaleMatrix(C, cOff, M, N, ldc, beta)
    if (M === 0 || N === 0 || K === 0 || alpha === 0) return
    if (this.pool.parallel) {
      // Stripes along the longer side of C, in blocks of 4 (the micro-kernel's width).
      const byRows = M > N
      const blocks = Math.ceil((byRows ? M : N) / 4)
      this.pool.run('gemm', blocks, (M * N * K) / 16, byRows, transA, transB, M, N, K, alpha, A, aOff, B, bOff, C, cOff, lda, ldb, ldc)
      return
    }
    const [pa, pb] = threadPackBuffers()
    gemmBlock(transA, transB, K, alpha, A, aOff, lda, B, bOff, ldb, C, cOff, ldc, 0, M, 0, N, pa, pb)
  }

  gemv (transA: boolean, M: number, N: number, alpha: number, A: Float32Array, aOff: number,
    x: Float32Array, xOff: number, beta: number, y: Float32Array, yOff: number): void {
    const ylen = transA ? N : M
    const xlen = transA ? M : N
    if (aOff < 0 || aOff + M * N > A.length || xOff < 0 || xOff + xlen > x.length || yOff < 0 || yOff + ylen > y.length) {
      throw new RangeError(`gemv ${transA ? 'T' : 'N'} ${M}x${N}: operand out of bounds`)
    }
    scaleMatrix(y, yOff, 1, ylen, ylen, beta)
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

/**
 * Bounds check shared by both paths: a bad offset or leading dimension must throw, never read
 * or write outside (BLAS itself checks nothing).
 */
export function checkGemm (transA: boolean, transB: boolean, M: number, N: number, K: number,
  A: Float32Array, aOff: number, lda: number, B: Float32Array, bOff: number, ldb: number, C: Float32Array, cOff: number, ldc: number): void {
  const what = `gemm ${transA ? 'T' : 'N'}${transB ? 'T' : 'N'} M=${M} N=${N} K=${K}`
  if (!(M >= 0 && N >= 0 && K >= 0)) throw new RangeError(`${what}: negative size`)
  // Stored shapes: A is M×K (K×M transposed), B is K×N (N×K transposed), C is M×N.
  checkOperand(what, 'A', A, aOff, lda, transA ? K : M, transA ? M : K)
  checkOperand(what, 'B', B, bOff, ldb, transB ? N : K, transB ? K : N)
  checkOperand(what, 'C', C, cOff, ldc, M, N)
}

function checkOperand (what: string, name: string, a: Float32Array, off: number, ld: number, rows: number, cols: number): void {
  // Empty products never reach BLAS, which would also want ld ≥ 1.
  if (!Number.isInteger(ld) || ld < cols) throw new RangeError(`${what}: ld${name.toLowerCase()} ${ld} is shorter than a row (${cols})`)
  const extent = rows === 0 || cols === 0 ? 0 : (rows - 1) * ld + cols
  if (!Number.isInteger(off) || off < 0 || off + extent > a.length) {
    throw new RangeError(`${what}: operand out of bounds (${name} ${off}+${extent}/${a.length})`)
  }
}
