import { Blob } from '../blob.js'
import type { LayerContext } from '../layer.js'
import type { LayerParameter } from '../proto/caffe.js'
import { at, BaseLayer } from './base-layer.js'
import { softmax } from './softmax-layer.js'

const FLT_MIN = 1.1754943508222875e-38

export type Normalization = 'FULL' | 'VALID' | 'BATCH_SIZE' | 'NONE'

/**
 * Caffe's SoftmaxWithLoss: softmax along `softmax_param.axis`, then the mean negative log
 * probability of the labelled class. Labels equal to `ignore_label` add nothing; the sum is
 * divided according to `normalization` (legacy `normalize: false` means BATCH_SIZE). An
 * optional second top receives the probabilities.
 */
export class SoftmaxWithLossLayer extends BaseLayer {
  private readonly prob = new Blob()
  private axis = 1
  private outer = 0
  private channels = 0
  private inner = 0
  private ignoreLabel: number | undefined
  private normalization: Normalization = 'VALID'
  private validCount = 0

  constructor (param: LayerParameter, ctx: LayerContext) {
    super(param, ctx, 'SoftmaxWithLoss', { bottoms: [2, 2], tops: [1, 2] })
  }

  protected override layerSetUp (): void {
    const lp = this.param.loss_param
    this.ignoreLabel = lp?.ignore_label
    if (lp?.normalization !== undefined) this.normalization = lp.normalization
    else if (lp?.normalize !== undefined) this.normalization = lp.normalize ? 'VALID' : 'BATCH_SIZE'
    else this.normalization = 'VALID'
  }

  override reshape (bottom: Blob[], top: Blob[]): void {
    const x = at(bottom, 0)
    const labels = at(bottom, 1)
    this.axis = this.axisOf(x, this.param.softmax_param?.axis ?? 1, 'softmax_param.axis')
    this.outer = x.countRange(0, this.axis)
    this.channels = x.dim(this.axis)
    this.inner = x.countRange(this.axis + 1)
    if (this.outer * this.inner !== labels.count) {
      this.fail(`number of labels (${labels.count}, ${labels.shapeString()}) must match the number of predictions (${this.outer * this.inner}); ` +
        `with integer labels over ${this.channels} classes the score blob ${x.shapeString()} needs N×${this.channels}×H×W`)
    }
    this.prob.reshapeLike(x)
    at(top, 0).reshape([])
    if (top.length > 1) at(top, 1).reshapeLike(x)
  }

  override forward (bottom: Blob[], top: Blob[]): void {
    const { outer, channels, inner } = this
    const prob = this.prob.data
    softmax(at(bottom, 0).data, prob, outer, channels, inner)
    const labels = at(bottom, 1).data
    const dim = channels * inner
    let loss = 0
    let count = 0
    for (let o = 0; o < outer; o++) {
      for (let j = 0; j < inner; j++) {
        const label = Math.trunc(labels[o * inner + j]!)
        if (label === this.ignoreLabel) continue
        if (!(label >= 0 && label < channels)) this.dataError(`label ${labels[o * inner + j]} is outside [0, ${channels})`)
        loss -= Math.log(Math.max(prob[o * dim + label * inner + j]!, FLT_MIN))
        count++
      }
    }
    this.validCount = count
    at(top, 0).data[0] = loss / this.normalizer(count)
    if (top.length > 1) at(top, 1).data.set(prob)
  }

  override backward (top: Blob[], propagateDown: boolean[], bottom: Blob[]): void {
    if (propagateDown[0] !== true) return
    const { outer, channels, inner } = this
    const dx = at(bottom, 0).diff
    dx.set(this.prob.data)
    const labels = at(bottom, 1).data
    const dim = channels * inner
    for (let o = 0; o < outer; o++) {
      for (let j = 0; j < inner; j++) {
        const label = Math.trunc(labels[o * inner + j]!)
        if (label === this.ignoreLabel) {
          for (let c = 0, i = o * dim + j; c < channels; c++, i += inner) dx[i] = 0
        } else {
          dx[o * dim + label * inner + j]! -= 1
        }
      }
    }
    // The top's diff holds the loss weight (the net fills it), as in Caffe.
    const scale = at(top, 0).diff[0]! / this.normalizer(this.validCount)
    for (let i = 0; i < dx.length; i++) dx[i] = dx[i]! * scale
  }

  override defaultLossWeight (i: number): number {
    return i === 0 ? 1 : 0
  }

  override allowForceBackward (i: number): boolean {
    return i !== 1
  }

  /** Caffe's LossLayer::GetNormalizer, never below 1 so that an all-ignored batch gives loss 0. */
  private normalizer (validCount: number): number {
    let n: number
    switch (this.normalization) {
      case 'FULL': n = this.outer * this.inner; break
      case 'VALID': n = this.ignoreLabel === undefined ? this.outer * this.inner : validCount; break
      case 'BATCH_SIZE': n = this.outer; break
      case 'NONE': n = 1; break
    }
    return Math.max(1, n)
  }
}
