import { afterAll, describe, expect, it } from 'vitest'
import { allocFloats } from '../../../src/engine/blob.js'
import { BlasKernels } from '../../../src/engine/kernels/blas-kernels.js'
import { createKernels } from '../../../src/engine/kernels/create-kernels.js'
import type { Kernels } from '../../../src/engine/kernels/kernels.js'
import { TsKernels } from '../../../src/engine/kernels/ts-kernels.js'
import { Rng } from '../../../src/engine/random.js'
import { withBlas } from '../../helpers/kernel-paths.js'

// The BLAS path runs under `npm run test:blas` (OpenBLAS installed), where a missing library
// fails here loudly; see test/helpers/kernel-paths.ts.
const ts = new TsKernels()
const blas = withBlas ? new BlasKernels({ threads: 2 }) : undefined
const paths: Array<[string, Kernels]> = blas === undefined ? [['ts', ts]] : [['ts', ts], ['blas', blas]]
afterAll(() => {
  ts.close()
  blas?.close()
})

function randomArray (n: number, rng: Rng, shared: boolean): Float32Array {
  const a = shared ? allocFloats(n) : new Float32Array(n)
  for (let i = 0; i < n; i++) a[i] = rng.uniformRange(-1, 1)
  return a
}

/** C = alpha·op(A)·op(B) + beta·C in float64, straight from the definition. */
function referenceGemm (tA: boolean, tB: boolean, M: number, N: number, K: number, alpha: number,
  A: Float32Array, aOff: number, B: Float32Array, bOff: number, beta: number, C: Float32Array, cOff: number): Float64Array {
  const out = new Float64Array(M * N)
  for (let i = 0; i < M; i++) {
    for (let j = 0; j < N; j++) {
      let s = 0
      for (let k = 0; k < K; k++) {
        const a = A[aOff + (tA ? k * M + i : i * K + k)] ?? Number.NaN
        const b = B[bOff + (tB ? j * K + k : k * N + j)] ?? Number.NaN
        s += a * b
      }
      const c = beta === 0 ? 0 : beta * (C[cOff + i * N + j] ?? Number.NaN)
      out[i * N + j] = alpha * s + c
    }
  }
  return out
}

function maxRelError (got: Float32Array, off: number, want: Float64Array, K: number): number {
  let worst = 0
  for (let i = 0; i < want.length; i++) {
    // Float32 rounding grows with the length of the dot product.
    const err = Math.abs((got[off + i] ?? Number.NaN) - (want[i] ?? 0)) / (Math.sqrt(K) + Math.abs(want[i] ?? 0))
    worst = Math.max(worst, Number.isNaN(err) ? Infinity : err)
  }
  return worst
}

describe('gemm', () => {
  const rng = new Rng(11)
  const shapes: Array<[number, number, number]> = [
    [1, 1, 1], [3, 5, 7], [4, 4, 4], [17, 9, 300], [65, 70, 33], [20, 576, 25], [50, 64, 500], [2, 1030, 3], [130, 3, 260]
  ]

  for (const [name, k] of paths) {
    it(`${name}: matches a float64 reference on random shapes, transposes, offsets, alpha and beta`, () => {
      for (const [M, N, K] of shapes) {
        for (const [tA, tB] of [[false, false], [true, false], [false, true], [true, true]] as const) {
          const alpha = rng.uniformRange(-2, 2)
          const beta = [0, 1, 0.5][rng.int(3)] ?? 0
          const [aOff, bOff, cOff] = [rng.int(5), rng.int(5), rng.int(5)]
          const shared = rng.bernoulli(0.5)
          const A = randomArray(aOff + M * K + 3, rng, shared)
          const B = randomArray(bOff + K * N + 3, rng, shared)
          const C = randomArray(cOff + M * N + 3, rng, shared)
          const guard = [C[cOff - 1], C[cOff + M * N]]
          const want = referenceGemm(tA, tB, M, N, K, alpha, A, aOff, B, bOff, beta, C, cOff)
          k.gemm(tA, tB, M, N, K, alpha, A, aOff, B, bOff, beta, C, cOff)
          expect(maxRelError(C, cOff, want, K), `${M}x${N}x${K} ${tA ? 'T' : 'N'}${tB ? 'T' : 'N'}`).toBeLessThan(1e-6)
          expect([C[cOff - 1], C[cOff + M * N]]).toEqual(guard)
        }
      }
    })

    it(`${name}: leading dimensions: strided sub-matrices of larger arrays, elements between rows untouched`, () => {
      for (const [M, N, K] of [[3, 5, 7], [50, 64, 100], [20, 576, 5], [9, 130, 260], [4, 3, 0]] as const) {
        for (const [tA, tB] of [[false, false], [true, false], [false, true], [true, true]] as const) {
          const [lda, ldb, ldc] = [(tA ? M : K) + rng.int(4), (tB ? K : N) + rng.int(40), N + rng.int(3)]
          const [aOff, bOff, cOff] = [rng.int(5), rng.int(5), rng.int(5)]
          const alpha = rng.uniformRange(-2, 2)
          const beta = [0, 1, 0.5][rng.int(3)] ?? 0
          const A = randomArray(aOff + (tA ? K : M) * lda + 3, rng, true)
          const B = randomArray(bOff + (tB ? N : K) * ldb + 3, rng, true)
          const C = randomArray(cOff + M * ldc + 3, rng, true)
          const before = Float32Array.from(C)
          const want = new Float64Array(M * N)
          for (let i = 0; i < M; i++) {
            for (let j = 0; j < N; j++) {
              let s = 0
              for (let p = 0; p < K; p++) {
                s += (A[aOff + (tA ? p * lda + i : i * lda + p)] ?? Number.NaN) * (B[bOff + (tB ? j * ldb + p : p * ldb + j)] ?? Number.NaN)
              }
              want[i * N + j] = alpha * s + (beta === 0 ? 0 : beta * (C[cOff + i * ldc + j] ?? Number.NaN))
            }
          }
          k.gemm(tA, tB, M, N, K, alpha, A, aOff, B, bOff, beta, C, cOff, lda, ldb, ldc)
          const got = new Float32Array(M * N)
          for (let i = 0; i < M; i++) got.set(C.subarray(cOff + i * ldc, cOff + i * ldc + N), i * N)
          expect(maxRelError(got, 0, want, Math.max(1, K)), `${M}x${N}x${K} ${tA ? 'T' : 'N'}${tB ? 'T' : 'N'} ld ${lda}/${ldb}/${ldc}`).toBeLessThan(1e-6)
          for (let i = 0; i < C.length; i++) {
            const r = i - cOff
            const inside = r >= 0 && r < M * ldc && r % ldc < N
            if (!inside && !Object.is(C[i], before[i])) expect.fail(`C[${i}] outside the ${M}x${N} block changed`)
          }
        }
      }
      const a = new Float32Array(12)
      expect(() => k.gemm(false, false, 2, 2, 3, 1, a, 0, a, 0, 0, a, 0, 2)).toThrow(/lda 2 is shorter/)
      expect(() => k.gemm(false, false, 2, 2, 3, 1, a, 0, a, 0, 0, a, 0, 3, 2, 11)).toThrow(/out of bounds/)
    })

    it(`${name}: beta = 0 overwrites NaN in C; K = 0 scales C by beta`, () => {
      const A = new Float32Array([1, 2, 3, 4])
      const B = new Float32Array([1, 0, 0, 1])
      const C = new Float32Array([Number.NaN, Number.NaN, Number.NaN, Number.NaN])
      k.gemm(false, false, 2, 2, 2, 1, A, 0, B, 0, 0, C, 0)
      expect([...C]).toEqual([1, 2, 3, 4])
      k.gemm(false, false, 2, 2, 0, 1, A, 0, B, 0, 0.5, C, 0)
      expect([...C]).toEqual([0.5, 1, 1.5, 2])
    })

    it(`${name}: rejects operands that do not fit`, () => {
      const a = new Float32Array(6)
      expect(() => k.gemm(false, false, 2, 3, 3, 1, a, 1, a, 0, 0, new Float32Array(6), 0)).toThrow(RangeError)
      expect(() => k.gemv(false, 2, 3, 1, a, 0, new Float32Array(2), 0, 0, new Float32Array(2), 0)).toThrow(RangeError)
    })

    it(`${name}: gemv, plain and transposed, with offsets`, () => {
      for (const [M, N] of [[1, 1], [7, 3], [64, 500], [500, 10]] as const) {
        for (const trans of [false, true]) {
          const A = randomArray(M * N + 2, rng, false)
          const x = randomArray((trans ? M : N) + 1, rng, false)
          const y = randomArray((trans ? N : M) + 2, rng, false)
          const want = referenceGemm(trans, false, trans ? N : M, 1, trans ? M : N, 1.5, A, 2, x, 1, 0.5, y, 2)
          k.gemv(trans, M, N, 1.5, A, 2, x, 1, 0.5, y, 2)
          expect(maxRelError(y, 2, want, trans ? M : N)).toBeLessThan(1e-6)
        }
      }
    })
  }

  it.runIf(withBlas)('TS and BLAS agree within float tolerance on the same inputs', () => {
    for (const [M, N, K] of [[50, 4096, 500], [500, 800, 64], [33, 47, 129]] as const) {
      const A = randomArray(M * K, rng, true)
      const B = randomArray(K * N, rng, true)
      const c1 = allocFloats(M * N)
      const c2 = allocFloats(M * N)
      ts.gemm(false, true, M, N, K, 1, A, 0, B.subarray(0, N * K), 0, 0, c1, 0)
      blas?.gemm(false, true, M, N, K, 1, A, 0, B.subarray(0, N * K), 0, 0, c2, 0)
      let worst = 0
      for (let i = 0; i < c1.length; i++) worst = Math.max(worst, Math.abs((c1[i] ?? 0) - (c2[i] ?? 0)) / (1 + Math.abs(c1[i] ?? 0)))
      expect(worst).toBeLessThan(1e-4)
    }
  })
})

describe.runIf(withBlas)('createKernels with OpenBLAS installed', () => {
  it('auto picks BLAS when OpenBLAS loads; ts and blas on request; thread counts', () => {
    const auto = createKernels({ kind: 'auto', threads: 2 })
    expect(auto.name).toBe('blas')
    expect(auto.threads).toBe(2)
    expect(auto.description).toMatch(/^blas \(OpenBLAS .*2 threads\)$/)
    auto.close()
    auto.close()
    expect(() => auto.gemm(false, false, 1, 1, 1, 1, new Float32Array(1), 0, new Float32Array(1), 0, 0, new Float32Array(1), 0)).toThrow(/after close/)
    const portable = createKernels({ kind: 'ts' })
    expect(portable.name).toBe('ts')
    expect(portable.description).toMatch(/^ts /)
    const one = createKernels({ kind: 'blas', threads: 1 })
    expect(one.threads).toBe(1)
    one.close()
  })
})
