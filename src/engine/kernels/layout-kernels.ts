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
      for (let n = 0; n < N; n++) y[d++] = out[s++]! + bm
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
      for (let n = 0; n < N; n++) out[d++] = dy[s++]!
    }
  }
}

/** db[m] += Σ over the batch and the N positions of dy[b][m][·], for m in [m0, m1). */
export function biasGradientRows (dy: Float32Array, batch: number, M: number, N: number, db: Float32Array, m0: number, m1: number): void {
  for (let m = m0; m < m1; m++) {
    let s = 0
    for (let b = 0; b < batch; b++) {
      for (let n = (b * M + m) * N, end = n + N; n < end; n++) s += dy[n]!
    }
    db[m]! += s
  }
}

export const LAYOUT_FUNCTIONS = [scatterRows, gatherRows, biasGradientRows] as const
