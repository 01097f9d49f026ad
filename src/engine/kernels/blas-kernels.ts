import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import type * as KoffiModule from 'koffi'
import type { Kernels } from './kernels.js'
import { TaskPool } from './task-pool.js'
import { SGEMM_SIGNATURE, type NativeSgemm, type TaskArgs, type TaskName } from './tasks.js'
import { checkGemm } from './ts-kernels.js'

// CBLAS enum values (cblas.h): they are part of the C ABI, identical in every implementation.
const ROW_MAJOR = 101
const NO_TRANS = 111
const TRANS = 112

// Products of at least this many multiply-adds are split over the pool's threads (about 20 µs
// of work single-threaded); smaller ones run on the calling thread.
const MIN_SPLIT_WORK = 1 << 21
// Rows or columns of C per item of a split product: each item repacks the other operand, so
// items much thinner than this cost more in packing than they gain in balance.
const SPLIT_BLOCK = 64

type Sgemv = (order: number, ta: number, M: number, N: number, alpha: number, A: Float32Array, lda: number,
  x: Float32Array, incx: number, beta: number, y: Float32Array, incy: number) => void

/** Library names tried in order: Debian's OpenBLAS, then whatever provides the BLAS alternative. */
const LIBRARIES = ['libopenblas.so.0', 'libopenblas.so', 'libblas.so.3']

/** OpenBLAS (or another CBLAS) could not be loaded; `reason` says what was tried and what failed. */
export class BlasUnavailableError extends Error {
  readonly code = 'ET_BLAS_UNAVAILABLE'
  constructor (message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'BlasUnavailableError'
  }
}

interface BlasLibrary {
  readonly file: string
  readonly config: string
  readonly sgemm: NativeSgemm
  /** koffi's resolved path, for worker threads that bind the same library. */
  readonly koffi: string
  readonly sgemv: Sgemv
  readonly setThreads: ((n: number) => void) | undefined
  /** Safe to call from several threads at once: OpenBLAS built with threading (not SINGLE_THREADED). */
  readonly concurrent: boolean
  readonly unload: () => void
}

/**
 * The fast path: cblas_sgemm/cblas_sgemv from a system CBLAS (Debian's libopenblas0-pthread),
 * loaded at run time through koffi. Typed arrays are passed by pointer, without copies.
 *
 * OpenBLAS runs single-threaded; the kernels' own pool spreads the work instead, calling it
 * from every thread at once (large products in stripes, the layers' tasks per image). Its
 * threads claim work as they get a core, where OpenBLAS's threads wait for each other by
 * spinning: on a loaded machine that spinning took 1.5 ms of CPU for LeNet's ip1 (0.5 ms of
 * work). Only an OpenBLAS known to be thread-safe is called from several threads.
 */
export class BlasKernels implements Kernels {
  readonly name = 'blas'
  readonly threads: number
  readonly description: string
  readonly smallProductsFast = true
  private lib: BlasLibrary | undefined
  private readonly pool: TaskPool

  constructor (options: { threads: number }) {
    this.lib = loadBlas()
    this.lib.setThreads?.(1)
    this.threads = this.lib.concurrent ? Math.max(1, options.threads) : 1
    this.pool = new TaskPool(this.threads, { native: { sgemm: this.lib.sgemm, koffi: this.lib.koffi, library: this.lib.file } })
    const why = this.pool.problem === undefined ? '' : `; worker threads unavailable: ${this.pool.problem}`
    this.description = `blas (${this.lib.config}, ${this.lib.file}, ${this.threads} thread${this.threads === 1 ? '' : 's'}${why})`
  }

  gemm (transA: boolean, transB: boolean, M: number, N: number, K: number,
    alpha: number, A: Float32Array, aOff: number, B: Float32Array, bOff: number,
    beta: number, C: Float32Array, cOff: number, lda = transA ? M : K, ldb = transB ? K : N, ldc = N): void {
    checkGemm(transA, transB, M, N, K, A, aOff, lda, B, bOff, ldb, C, cOff, ldc)
    if (M === 0 || N === 0) return
    const lib = this.library()
    if (K === 0) {
      // Reference CBLAS leaves C untouched for K = 0 whatever beta is; Caffe's contract scales it.
      for (let i = 0; i < M; i++) {
        for (let j = cOff + i * ldc, end = j + N; j < end; j++) C[j] = beta === 0 ? 0 : beta * C[j]!
      }
      return
    }
    if (M * N * K >= MIN_SPLIT_WORK && this.pool.parallel) {
      // Stripes across the longer side of C; the task runs inline when an array is not shared.
      const byRows = M > N
      const items = Math.ceil((byRows ? M : N) / SPLIT_BLOCK)
      this.pool.run('sgemm', items, M * N * K, byRows, SPLIT_BLOCK, transA, transB, M, N, K, alpha, A, aOff, lda, B, bOff, ldb, beta, C, cOff, ldc)
      return
    }
    lib.sgemm(ROW_MAJOR, transA ? TRANS : NO_TRANS, transB ? TRANS : NO_TRANS, M, N, K, alpha,
      view(A, aOff), lda, view(B, bOff), ldb, beta, view(C, cOff), ldc)
  }

  gemv (transA: boolean, M: number, N: number, alpha: number, A: Float32Array, aOff: number,
    x: Float32Array, xOff: number, beta: number, y: Float32Array, yOff: number): void {
    const ylen = transA ? N : M
    const xlen = transA ? M : N
    if (aOff < 0 || aOff + M * N > A.length || xOff < 0 || xOff + xlen > x.length || yOff < 0 || yOff + ylen > y.length) {
      throw new RangeError(`gemv ${transA ? 'T' : 'N'} ${M}x${N}: operand out of bounds`)
    }
    if (ylen === 0) return
    const lib = this.library()
    if (xlen === 0) {
      for (let i = yOff, end = yOff + ylen; i < end; i++) y[i] = beta === 0 ? 0 : beta * y[i]!
      return
    }
    lib.sgemv(ROW_MAJOR, transA ? TRANS : NO_TRANS, M, N, alpha, view(A, aOff), N, view(x, xOff), 1, beta, view(y, yOff), 1)
  }

  run<T extends TaskName> (task: T, n: number, work: number, ...args: TaskArgs<T>): void {
    this.pool.run(task, n, work, ...args)
  }

  close (): void {
    this.pool.close()
    // The library stays mapped: OpenBLAS's thread pool does not survive dlclose, and other
    // instances in the process may still use it. Dropping the reference is enough.
    this.lib = undefined
  }

  private library (): BlasLibrary {
    if (this.lib === undefined) throw new Error('BLAS kernels used after close()')
    return this.lib
  }
}

/** A view starting at `off`; offset 0 passes the array itself (no allocation). */
function view (a: Float32Array, off: number): Float32Array {
  return off === 0 ? a : a.subarray(off)
}

let loaded: BlasLibrary | undefined

/** Loads (once per process) the first CBLAS that resolves; throws BlasUnavailableError naming every attempt. */
export function loadBlas (): BlasLibrary {
  if (loaded !== undefined) return loaded
  let koffi: typeof KoffiModule
  let koffiPath: string
  try {
    const require = createRequire(import.meta.url)
    koffiPath = require.resolve('koffi')
    koffi = require(koffiPath) as typeof KoffiModule
  } catch (err) {
    throw new BlasUnavailableError(`koffi (the FFI module) does not load: ${errorText(err)}`, { cause: err })
  }
  // OpenBLAS's idle threads spin (with sched_yield) for 2^28 cycles after each product before
  // sleeping. Between the layers' GEMMs that spinning takes the second core away from our own
  // worker thread and roughly doubled the CPU time of a LeNet step here; 2^4 (the minimum)
  // makes them sleep at once. It is read when the library initialises, so set it before dlopen,
  // and only when the user has not chosen a value.
  process.env.OPENBLAS_THREAD_TIMEOUT ??= '4'
  // OpenBLAS 0.3.21 (Debian bookworm) does not know AMD's AVX-512 cores (Zen 4, Zen 5) and runs
  // its AVX2 Haswell kernels there; its SkylakeX kernels are measured ~1.8× faster on this
  // machine's Zen 5 for LeNet's products (conv2 per image: 101 → 180 GFLOP/s). Same condition
  // as newer OpenBLAS releases use, and only when the user has not chosen a core type.
  if (process.env.OPENBLAS_CORETYPE === undefined && amdWithAvx512()) process.env.OPENBLAS_CORETYPE = 'SkylakeX'
  const failures: string[] = []
  for (const file of LIBRARIES) {
    let handle: KoffiModule.LibraryHandle
    try {
      handle = koffi.load(file)
    } catch (err) {
      failures.push(`${file}: ${errorText(err)}`)
      continue
    }
    try {
      const sgemm = handle.func(SGEMM_SIGNATURE) as NativeSgemm
      const sgemv = handle.func('void cblas_sgemv(int, int, int, int, float, void *, int, void *, int, float, void *, int)') as Sgemv
      const setThreads = optionalFunc(handle, 'void openblas_set_num_threads(int)') as ((n: number) => void) | undefined
      const getConfig = optionalFunc(handle, 'const char *openblas_get_config()') as (() => string) | undefined
      const getCore = optionalFunc(handle, 'const char *openblas_get_corename()') as (() => string) | undefined
      const core = getCore === undefined ? '' : `, ${getCore().trim()} kernels`
      const config = getConfig === undefined ? 'CBLAS' : `OpenBLAS ${getConfig().trim()}${core}`
      // A threaded OpenBLAS serialises what must be; a serial build or another CBLAS may not.
      const concurrent = getConfig !== undefined && setThreads !== undefined && !config.includes('SINGLE_THREADED')
      loaded = { file, config, sgemm, koffi: koffiPath, sgemv, setThreads, concurrent, unload: () => handle.unload() }
      return loaded
    } catch (err) {
      failures.push(`${file}: ${errorText(err)}`)
      handle.unload()
    }
  }
  throw new BlasUnavailableError(`no CBLAS library found (install libopenblas0-pthread): ${failures.join('; ')}`)
}

/**
 * Whether the CPU is an AMD one with the AVX-512 subsets OpenBLAS's SkylakeX kernels use
 * (F, DQ, BW, VL); false wherever /proc/cpuinfo cannot be read.
 */
function amdWithAvx512 (): boolean {
  let info: string
  try {
    info = readFileSync('/proc/cpuinfo', 'latin1')
  } catch {
    return false
  }
  const vendor = /^vendor_id\s*:\s*(\S+)/m.exec(info)?.[1]
  const flags = new Set((/^flags\s*:(.*)$/m.exec(info)?.[1] ?? '').trim().split(/\s+/))
  return vendor === 'AuthenticAMD' && ['avx512f', 'avx512dq', 'avx512bw', 'avx512vl'].every((f) => flags.has(f))
}

function optionalFunc (handle: KoffiModule.LibraryHandle, definition: string): unknown {
  try {
    return handle.func(definition)
  } catch {
    return undefined
  }
}

function errorText (err: unknown): string {
  return err instanceof Error ? err.message : String(err)
}
