import type { Blob } from '../blob.js'
import type { Layer, LayerContext } from '../layer.js'
import type { FillerParameter, LayerParameter } from '../proto/caffe.js'
import { LayerConfigError, LayerDataError } from './errors.js'
import { FillerError, fillBlob } from './filler.js'

/** How many bottoms and tops a layer accepts, inclusive ranges (Caffe's Exact/Min/MaxNum*Blobs). */
export interface BlobCounts {
  readonly bottoms: readonly [number, number]
  readonly tops: readonly [number, number]
}

/**
 * Shared plumbing of every layer: name and type, blob-count checks, param bookkeeping and
 * errors that name the layer. Subclasses implement layerSetUp/reshape/forward/backward.
 */
export abstract class BaseLayer implements Layer {
  readonly name: string
  readonly type: string
  readonly blobs: Blob[] = []
  readonly paramPropagateDown: boolean[] = []
  readonly fixedParams: number[] = []
  protected readonly param: LayerParameter
  protected readonly ctx: LayerContext
  private readonly counts: BlobCounts

  constructor (param: LayerParameter, ctx: LayerContext, type: string, counts: BlobCounts) {
    this.param = param
    this.ctx = ctx
    this.type = type
    this.name = param.name ?? ''
    this.counts = counts
  }

  setUp (bottom: Blob[], top: Blob[]): void {
    this.checkCount('bottom', bottom.length, this.counts.bottoms)
    this.checkCount('top', top.length, this.counts.tops)
    this.layerSetUp(bottom, top)
    this.paramPropagateDown.length = 0
    for (let i = 0; i < this.blobs.length; i++) this.paramPropagateDown.push(true)
    this.reshape(bottom, top)
  }

  /** One-time set-up: read parameters, create and fill the learnable blobs. */
  protected layerSetUp (_bottom: Blob[], _top: Blob[]): void {}

  abstract reshape (bottom: Blob[], top: Blob[]): void
  abstract forward (bottom: Blob[], top: Blob[]): void
  abstract backward (top: Blob[], propagateDown: boolean[], bottom: Blob[]): void

  defaultLossWeight (_i: number): number {
    return 0
  }

  allowForceBackward (_i: number): boolean {
    return true
  }

  /** Throws LayerConfigError naming this layer. */
  protected fail (problem: string): never {
    throw new LayerConfigError(this.name, this.type, problem)
  }

  /** Fills a learnable blob from the layer's RNG; a bad filler becomes a LayerConfigError naming `field`. */
  protected fill (blob: Blob, filler: FillerParameter | undefined, field: string): void {
    try {
      fillBlob(blob, filler, this.ctx.rng)
    } catch (err) {
      if (err instanceof FillerError) this.fail(`${field}: ${err.message}`)
      throw err
    }
  }

  protected dataError (problem: string): never {
    throw new LayerDataError(this.name, this.type, problem)
  }

  /** Caffe's CanonicalAxisIndex with this layer's name in the error. */
  protected axisOf (blob: Blob, axis: number, field: string): number {
    const n = blob.shape.length
    if (!Number.isInteger(axis) || axis < -n || axis >= n) this.fail(`${field} ${axis} is out of range for a ${n}-axis bottom (${blob.shapeString()})`)
    return axis < 0 ? axis + n : axis
  }

  protected topIsBottom (bottom: Blob[], top: Blob[]): boolean {
    return top[0] === bottom[0]
  }

  private checkCount (what: string, n: number, [min, max]: readonly [number, number]): void {
    if (n >= min && n <= max) return
    const want = min === max ? `${min}` : max === Infinity ? `at least ${min}` : `${min} to ${max}`
    this.fail(`takes ${want} ${what} blob${max === 1 ? '' : 's'}, got ${n}`)
  }
}

/** The i-th blob, which the count checks in setUp guarantee to exist. */
export function at (blobs: readonly Blob[], i: number): Blob {
  const b = blobs[i]
  if (b === undefined) throw new RangeError(`blob ${i} missing`)
  return b
}
