import type { Kernels } from '../src/engine/kernels/kernels.js'
import { TaskPool } from '../src/engine/kernels/task-pool.js'
import type { TaskArgs, TaskName } from '../src/engine/kernels/tasks.js'

/**
 * The benchmark's baseline: the textbook triple loop (i, j, k) for every product, no blocking,
 * no packing, no threads; the layers' other tasks (im2col, pooling …) run on the calling thread.
 * It is what a straightforward port would run, so the real kernel paths are shown against it in
 * the same process on the same data.
 */
export class NaiveKernels implements Kernels {
  readonly name = 'ts'
  readonly threads = 1
  readonly description = 'naive (triple-loop GEMM, 1 thread)'
  readonly smallProductsFast = false
  private readonly pool = new TaskPool(1)

  gemm (transA: boolean, transB: boolean, M: number, N: number, K: number,
    alpha: number, A: Float32Array, aOff: number, B: Float32Array, bOff: number,
    beta: number, C: Float32Array, cOff: number, lda = transA ? M : K, ldb = transB ? K : N, ldc = N): void {
    for (let i = 0; i < M; i++) {
      for (let j = 0; j < N; j++) {
        let s = 0
        for (let k = 0; k < K; k++) {
          const a = transA ? A[aOff + k * lda + i]! : A[aOff + i * lda + k]!
          const b = transB ? B[bOff + j * ldb + k]! : B[bOff + k * ldb + j]!
          s += a * b
        }
        const c = cOff + i * ldc + j
        C[c] = beta === 0 ? alpha * s : alpha * s + beta * C[c]!
      }
    }
  }

  gemv (transA: boolean, M: number, N: number, alpha: number, A: Float32Array, aOff: number,
    x: Float32Array, xOff: number, beta: number, y: Float32Array, yOff: number): void {
    const rows = transA ? N : M
    const cols = transA ? M : N
    for (let i = 0; i < rows; i++) {
      let s = 0
      for (let j = 0; j < cols; j++) {
        const a = transA ? A[aOff + j * N + i]! : A[aOff + i * N + j]!
        s += a * x[xOff + j]!
      }
      y[yOff + i] = beta === 0 ? alpha * s : alpha * s + beta * y[yOff + i]!
    }
  }

  run<T extends TaskName> (task: T, n: number, work: number, ...args: TaskArgs<T>): void {
    this.pool.run(task, n, work, ...args)
  }

  close (): void {}
}
