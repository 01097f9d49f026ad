import type { Blob } from './blob.js'
import type { Kernels } from './kernels/kernels.js'

export type Phase = 'TRAIN' | 'TEST'

/** What a layer may use besides its blobs; created once per net by the net. */
export interface LayerContext {
  readonly kernels: Kernels
  readonly phase: Phase
  /** Seeded from the solver's random_seed so that the same seed gives the same run. */
  readonly random: () => number
}

/**
 * One Caffe layer. The net calls setUp once with the layer's bottom and top blobs,
 * then reshape/forward (and backward when training) for every batch. Semantics follow
 * Caffe's Layer<Dtype> so prototxt files and .caffemodel weights carry over unchanged.
 */
export interface Layer {
  readonly name: string
  /** Caffe's V2 type string: 'Convolution', 'SoftmaxWithLoss', … */
  readonly type: string
  /** Learnable parameters in .caffemodel order (weights, then bias, …). */
  readonly blobs: Blob[]

  /** LayerSetUp + Reshape: validates the parameters against the bottoms, creates params. */
  setUp (bottom: Blob[], top: Blob[]): void
  reshape (bottom: Blob[], top: Blob[]): void
  forward (bottom: Blob[], top: Blob[]): void
  backward (top: Blob[], propagateDown: boolean[], bottom: Blob[]): void

  /** Data layers load their next batch here; the net awaits it before forward. */
  prefetch?: () => Promise<void>
  /** Releases files and handles (data layers). */
  close?: () => Promise<void> | void
}
