import { availableParallelism } from 'node:os'
import { BlasKernels, BlasUnavailableError } from './blas-kernels.js'
import type { Kernels, KernelsOptions } from './kernels.js'
import { TsKernels } from './ts-kernels.js'

/**
 * Builds the kernels a net computes with. 'auto' prefers BLAS and falls back to the portable
 * path, recording why in `description`; an explicit 'blas' that cannot load throws
 * BlasUnavailableError instead, so a benchmark never measures the wrong path by accident.
 */
export function createKernels (options: KernelsOptions = { kind: 'auto' }): Kernels {
  const threads = Math.max(1, Math.floor(options.threads ?? availableParallelism()))
  switch (options.kind) {
    case 'ts':
      return new TsKernels({ threads })
    case 'blas':
      return new BlasKernels({ threads })
    case 'auto':
      try {
        return new BlasKernels({ threads })
      } catch (err) {
        if (!(err instanceof BlasUnavailableError)) throw err
        return new TsKernels({ threads, note: `BLAS unavailable: ${err.message}` })
      }
    default:
      throw new RangeError(`unknown kernels kind ${String((options as { kind: unknown }).kind)}`)
  }
}
