import { availableParallelism } from 'node:os'
import { createKernels } from '../kernels/create-kernels.js'
import type { Kernels } from '../kernels/kernels.js'
import { createLayer } from '../layers/registry.js'
import type { LayerFactory } from '../net.js'
import type { EngineLog } from '../net/engine-log.js'
import { CaffeFatalError } from './fatal.js'

/** What every CLI command gets: where to log and write results, and how to react to signals. */
export interface CliIo {
  /** glog lines (stderr in the real process); `fatal` writes the F line of a failed check. */
  readonly log: EngineLog & { fatal (where: string, message: string): void }
  /** Machine-readable output (classify's JSON). */
  readonly stdout: { write (text: string): unknown }
  /** Raw stderr, for gflags-style messages that are not glog lines. */
  readonly stderr: { write (text: string): unknown }
  readonly signals: {
    on (event: 'SIGINT' | 'SIGHUP', listener: () => void): unknown
    off (event: 'SIGINT' | 'SIGHUP', listener: () => void): unknown
  }
}

/** Kernels and the layer registry, chosen once per command from --kernels / --threads. */
export interface EngineRuntime {
  readonly kernels: Kernels
  readonly createLayer: LayerFactory
}

export const KERNEL_KINDS = ['auto', 'ts', 'blas'] as const

export function createRuntime (kind: string, threads: number): EngineRuntime {
  const k = KERNEL_KINDS.find((x) => x === kind)
  if (k === undefined) throw new CaffeFatalError('caffe.cpp:0', `--kernels must be auto, ts or blas (got "${kind}")`)
  const n = threads > 0 ? threads : availableParallelism()
  return { kernels: createKernels({ kind: k, threads: n }), createLayer }
}
