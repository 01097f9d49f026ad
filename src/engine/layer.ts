import type { Blob } from './blob.js'
import type { Kernels } from './kernels/kernels.js'
import type { Rng } from './random.js'

export type Phase = 'TRAIN' | 'TEST'

/** What a layer may use besides its blobs; created once per net by the net. */
export interface LayerContext {
  readonly kernels: Kernels
  readonly phase: Phase
  /**
   * Seeded from the solver's random_seed so that the same seed gives the same run: fillers,
   * dropout masks, crops/mirrors and shuffles all draw from it, in layer order.
   */
  readonly rng: Rng
  /** Where data layers write Caffe's informational lines (`where` is Caffe's source tag). */
  readonly log?: LayerLog | undefined
}

/** The part of the engine log layers use; the net's EngineLog fits it. */
export interface LayerLog {
  info (where: string, message: string): void
}

/**
 * One Caffe layer. The net calls setUp once with the layer's bottom and top blobs,
 * then reshape/forward (and backward when training) for every batch. Semantics follow
 * Caffe's Layer<Dtype> so prototxt files and .caffemodel weights carry over unchanged.
 *
 * Gradient contract (Caffe's): backward overwrites the diff of every bottom i with
 * propagateDown[i] true and ADDS the parameter gradients into `blobs[j].diff` for every j
 * with paramPropagateDown[j] true; the solver clears the parameter diffs before each
 * iteration (Caffe's ClearParamDiffs), which is what makes iter_size accumulation work.
 * A loss top's diff must hold its loss weight (top.diff filled with it) before backward.
 * Failures: setUp/reshape throw LayerConfigError naming the layer for bad parameters or
 * bottom shapes; forward/backward throw only for bad data (e.g. a label out of range).
 */
export interface Layer {
  readonly name: string
  /** Caffe's V2 type string: 'Convolution', 'SoftmaxWithLoss', … */
  readonly type: string
  /** Learnable parameters in .caffemodel order (weights, then bias, …). */
  readonly blobs: Blob[]
  /**
   * Whether backward computes the gradient of blobs[j]; all true after setUp. The net
   * sets an entry false when that param's lr_mult is 0, to skip the work (Caffe does the same).
   */
  readonly paramPropagateDown: boolean[]
  /**
   * Indices of blobs the layer updates itself and the solver must leave alone, as if their
   * lr_mult were 0 (BatchNorm's mean, variance and scale factor; Caffe forces lr_mult 0 on them).
   */
  readonly fixedParams: readonly number[]

  /** LayerSetUp + Reshape: validates the parameters against the bottoms, creates params. */
  setUp (bottom: Blob[], top: Blob[]): void
  reshape (bottom: Blob[], top: Blob[]): void
  forward (bottom: Blob[], top: Blob[]): void
  backward (top: Blob[], propagateDown: boolean[], bottom: Blob[]): void

  /** Loss weight of top `i` when the prototxt gives none: 1 for top 0 of a loss layer, else 0. */
  defaultLossWeight (i: number): number
  /** Whether force_backward may make bottom `i` need a gradient (false for labels). */
  allowForceBackward (i: number): boolean

  /**
   * Asynchronous part of set-up, for layers that must read before they know their top shapes:
   * data layers open their database or list file, load the mean file and read the first
   * record here. The net awaits it once, after createLayer and before setUp (Caffe opens the
   * database when it creates the layer, so "Opened lmdb" is logged between those two steps);
   * setUp throws LayerConfigError if it was skipped. Fails with the data module's errors
   * (DatabaseError, LmdbFormatError, ListFileError, ProtoDecodeError …).
   */
  open?: () => Promise<void>
  /**
   * Data layers make their next batch current here (double-buffered: the batch after it starts
   * loading in the background); the net awaits it before every forward.
   */
  prefetch?: () => Promise<void>
  /** Releases files and handles (data layers). */
  close?: () => Promise<void> | void
}
