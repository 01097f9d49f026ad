// Block sizes: a KC×NC panel of B (2 MiB as float64) stays in L2, an MC×KC block of A (128 KiB)
// in L1/L2, and the 4×4 micro-kernel keeps its 16 sums in registers. Measured on the build
// machine: 5.5–6.3 GFLOP/s single thread for LeNet's shapes, against ~1 GFLOP/s for naive loops.
const MR = 4
const NR = 4
const KC = 256
const MC = 64
const NC = 1024
// Indices into the typed arrays below are in range by construction; `!` only tells
// noUncheckedIndexedAccess so, at no run-time cost.

/** Sizes of the per-thread packing buffers gemmBlock() needs (float64 elements). */
export const PACK_A_SIZE = MC * KC
export const PACK_B_SIZE = NC * KC
/** The block sizes, for building worker source that runs the same functions. */
export const GEMM_CONSTANTS = { MR, NR, KC, MC, NC } as const

/**
 * Portable blocked GEMM on one block of C: C[m0..m1, n0..n1] += alpha · op(A) · op(B), so that
 * threads can each take a stripe of one product; scaling C by beta is the caller's job. Rows of
 * the stored A, B and C are lda, ldb and ldc elements apart.
 * `pa`/`pb` are the calling thread's packing buffers (PACK_A_SIZE, PACK_B_SIZE). Refers only to
 * the functions and constants of this file, so that worker threads can run its source.
 */
export function gemmBlock (transA: boolean, transB: boolean, K: number, alpha: number,
  A: Float32Array, aOff: number, lda: number, B: Float32Array, bOff: number, ldb: number, C: Float32Array, cOff: number, ldc: number,
  m0: number, m1: number, n0: number, n1: number, pa: Float64Array, pb: Float64Array): void {
  for (let jc = n0; jc < n1; jc += NC) {
    const nc = Math.min(NC, n1 - jc)
    for (let pc = 0; pc < K; pc += KC) {
      const kc = Math.min(KC, K - pc)
      packB(transB, ldb, B, bOff, pc, kc, jc, nc, pb)
      for (let ic = m0; ic < m1; ic += MC) {
        const mc = Math.min(MC, m1 - ic)
        packA(transA, lda, alpha, A, aOff, ic, mc, pc, kc, pa)
        for (let jr = 0; jr < nc; jr += NR) {
          const nr = Math.min(NR, nc - jr)
          for (let ir = 0; ir < mc; ir += MR) {
            microKernel(kc, pa, ir * kc, pb, jr * kc, C, cOff + (ic + ir) * ldc + jc + jr, ldc, Math.min(MR, mc - ir), nr)
          }
        }
      }
    }
  }
}

/** Packs op(B)[pc..pc+kc, jc..jc+nc] into NR-wide column panels, k-major, zero-padded; B's rows are ld apart. */
function packB (trans: boolean, ld: number, B: Float32Array, bOff: number,
  pc: number, kc: number, jc: number, nc: number, out: Float64Array): void {
  let o = 0
  for (let jr = 0; jr < nc; jr += NR) {
    const nr = Math.min(NR, nc - jr)
    const j = jc + jr
    if (!trans) {
      let src = bOff + pc * ld + j
      if (nr === NR) {
        for (let k = 0; k < kc; k++, src += ld, o += NR) {
          out[o] = B[src]!
          out[o + 1] = B[src + 1]!
          out[o + 2] = B[src + 2]!
          out[o + 3] = B[src + 3]!
        }
      } else {
        for (let k = 0; k < kc; k++, src += ld, o += NR) {
          for (let t = 0; t < NR; t++) out[o + t] = t < nr ? B[src + t]! : 0
        }
      }
    } else {
      // op(B)[k][j] = B[j][k]: each column of the panel is a contiguous row of B.
      const base = bOff + j * ld + pc
      for (let t = 0; t < NR; t++) {
        if (t < nr) {
          let src = base + t * ld
          for (let k = 0; k < kc; k++) out[o + k * NR + t] = B[src++]!
        } else {
          for (let k = 0; k < kc; k++) out[o + k * NR + t] = 0
        }
      }
      o += kc * NR
    }
  }
}

/** Packs alpha * op(A)[ic..ic+mc, pc..pc+kc] into MR-tall row panels, k-major, zero-padded; A's rows are ld apart. */
function packA (trans: boolean, ld: number, alpha: number, A: Float32Array, aOff: number,
  ic: number, mc: number, pc: number, kc: number, out: Float64Array): void {
  let o = 0
  for (let ir = 0; ir < mc; ir += MR) {
    const mr = Math.min(MR, mc - ir)
    const i = ic + ir
    if (trans) {
      // op(A)[i][k] = A[k][i]: the MR values of one k are adjacent in A.
      let src = aOff + pc * ld + i
      if (mr === MR) {
        for (let k = 0; k < kc; k++, src += ld, o += MR) {
          out[o] = alpha * A[src]!
          out[o + 1] = alpha * A[src + 1]!
          out[o + 2] = alpha * A[src + 2]!
          out[o + 3] = alpha * A[src + 3]!
        }
      } else {
        for (let k = 0; k < kc; k++, src += ld, o += MR) {
          for (let t = 0; t < MR; t++) out[o + t] = t < mr ? alpha * A[src + t]! : 0
        }
      }
    } else {
      const base = aOff + i * ld + pc
      for (let t = 0; t < MR; t++) {
        if (t < mr) {
          let src = base + t * ld
          for (let k = 0; k < kc; k++) out[o + k * MR + t] = alpha * A[src++]!
        } else {
          for (let k = 0; k < kc; k++) out[o + k * MR + t] = 0
        }
      }
      o += kc * MR
    }
  }
}

/**
 * C[4×4 tile] += packed A panel × packed B panel. Sixteen named accumulators rather than an
 * array: V8 keeps locals in registers, array slots go through memory.
 */
function microKernel (kc: number, pa: Float64Array, ia: number, pb: Float64Array, ib: number,
  C: Float32Array, c: number, ldc: number, mr: number, nr: number): void {
  let c00 = 0; let c01 = 0; let c02 = 0; let c03 = 0
  let c10 = 0; let c11 = 0; let c12 = 0; let c13 = 0
  let c20 = 0; let c21 = 0; let c22 = 0; let c23 = 0
  let c30 = 0; let c31 = 0; let c32 = 0; let c33 = 0
  for (let k = 0; k < kc; k++, ia += MR, ib += NR) {
    const a0 = pa[ia]!
    const a1 = pa[ia + 1]!
    const a2 = pa[ia + 2]!
    const a3 = pa[ia + 3]!
    const b0 = pb[ib]!
    const b1 = pb[ib + 1]!
    const b2 = pb[ib + 2]!
    const b3 = pb[ib + 3]!
    c00 += a0 * b0; c01 += a0 * b1; c02 += a0 * b2; c03 += a0 * b3
    c10 += a1 * b0; c11 += a1 * b1; c12 += a1 * b2; c13 += a1 * b3
    c20 += a2 * b0; c21 += a2 * b1; c22 += a2 * b2; c23 += a2 * b3
    c30 += a3 * b0; c31 += a3 * b1; c32 += a3 * b2; c33 += a3 * b3
  }
  if (mr === MR && nr === NR) {
    let r = c
    C[r]! += c00; C[r + 1]! += c01; C[r + 2]! += c02; C[r + 3]! += c03
    r += ldc
    C[r]! += c10; C[r + 1]! += c11; C[r + 2]! += c12; C[r + 3]! += c13
    r += ldc
    C[r]! += c20; C[r + 1]! += c21; C[r + 2]! += c22; C[r + 3]! += c23
    r += ldc
    C[r]! += c30; C[r + 1]! += c31; C[r + 2]! += c32; C[r + 3]! += c33
    return
  }
  storeRow(C, c, nr, c00, c01, c02, c03)
  if (mr > 1) storeRow(C, c + ldc, nr, c10, c11, c12, c13)
  if (mr > 2) storeRow(C, c + 2 * ldc, nr, c20, c21, c22, c23)
  if (mr > 3) storeRow(C, c + 3 * ldc, nr, c30, c31, c32, c33)
}

function storeRow (C: Float32Array, r: number, nr: number, v0: number, v1: number, v2: number, v3: number): void {
  C[r]! += v0
  if (nr > 1) C[r + 1]! += v1
  if (nr > 2) C[r + 2]! += v2
  if (nr > 3) C[r + 3]! += v3
}

/** C = beta * C over an M×N block whose rows are ldc apart; beta = 0 clears (so NaN in C does not survive). */
export function scaleMatrix (C: Float32Array, cOff: number, M: number, N: number, ldc: number, beta: number): void {
  if (beta === 1) return
  if (ldc !== N) {
    for (let i = 0; i < M; i++) scaleMatrix(C, cOff + i * ldc, 1, N, N, beta)
    return
  }
  const end = cOff + M * N
  if (beta === 0) {
    C.fill(0, cOff, end)
    return
  }
  for (let i = cOff; i < end; i++) C[i] = beta * C[i]!
}

/** The calling thread's packing buffers for gemmBlock, created on first use (one pair per thread). */
export function threadPackBuffers (): [Float64Array, Float64Array] {
  const self = threadPackBuffers as unknown as { cache?: [Float64Array, Float64Array] }
  self.cache ??= [new Float64Array(PACK_A_SIZE), new Float64Array(PACK_B_SIZE)]
  return self.cache
}

/** Every function of this file, for worker source. */
export const GEMM_FUNCTIONS = [gemmBlock, packB, packA, microKernel, storeRow, scaleMatrix, threadPackBuffers] as const
