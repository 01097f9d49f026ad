// Layout changes and reductions of the batched convolution, as free functions of plain
// arguments so that worker threads can run the same source (see tasks.ts). Indices into typed
// arrays are in range by construction; `!` only tells noUncheckedIndexedAccess so.

/**
 * From a chunk's GEMM output `out` (M × bc·N: row m holds the chunk's images side by side) to
 * the top's N×M×H×W layout, adding bias[m]: rows [m0, m1) only.
 */
export function scatterRows (out: Float32Array, y: Float32Array, b0: number, bc: number, M: number, N: number,
  bias: Float32Array | undefined, m0: number, m1: number): void {
  const ld = bc * N
  for (let m = m0; m < m1; m++) {
    const bm = bias === undefined ? 0 : bias[m]!
    for (let i = 0; i < bc; i++) {
      let s = m * ld + i * N
      let d = (b0 + i) * M * N + m * N
      // A native copy beats a JS loop by ~4× once rows are long enough to pay for the view.
      if (bm === 0 && N >= 64) y.set(out.subarray(s, s + N), d)
      else for (let n = 0; n < N; n++) y[d++] = out[s++]! + bm
    }
  }
}

/** The inverse layout change of scatterRows (for the top's gradient), rows [m0, m1). */
export function gatherRows (dy: Float32Array, out: Float32Array, b0: number, bc: number, M: number, N: number, m0: number, m1: number): void {
  const ld = bc * N
  for (let m = m0; m < m1; m++) {
    for (let i = 0; i < bc; i++) {
      let d = m * ld + i * N
      let s = (b0 + i) * M * N + m * N
      if (N >= 64) out.set(dy.subarray(s, s + N), d)
      else for (let n = 0; n < N; n++) out[d++] = dy[s++]!
    }
  }
}

/**
 * The calling thread's scratch of at least `n` floats, grown on demand and kept (one per
 * thread: each worker runs its own copy of this function). Not shared memory: only its own
 * thread, and native code that thread calls, ever touch it.
 */
export function threadScratch (n: number): Float32Array {
  const self = threadScratch as unknown as { cache?: Float32Array }
  if (self.cache === undefined || self.cache.length < n) self.cache = new Float32Array(n)
  return self.cache
}

export const LAYOUT_FUNCTIONS = [scatterRows, gatherRows, threadScratch] as const
