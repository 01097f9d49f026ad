import type { Blob } from '../blob.js'
import type { LayerContext } from '../layer.js'
import type { LayerParameter } from '../proto/caffe.js'
import { at, BaseLayer } from './base-layer.js'

/**
 * Caffe's Accuracy: the fraction of (outer, inner) positions whose labelled class is among the
 * top_k scores along `axis`. A class scoring equal to the true one counts as better, as in
 * Caffe. An optional second top gets the accuracy per class. No gradient.
 */
export class AccuracyLayer extends BaseLayer {
  private topK = 1
  private axis = 1
  private outer = 0
  private channels = 0
  private inner = 0
  private ignoreLabel: number | undefined
  private perClassCount = new Float64Array(0)

  constructor (param: LayerParameter, ctx: LayerContext) {
    super(param, ctx, 'Accuracy', { bottoms: [2, 2], tops: [1, 2] })
  }

  protected override layerSetUp (): void {
    const ap = this.param.accuracy_param
    this.topK = ap?.top_k ?? 1
    this.ignoreLabel = ap?.ignore_label
    if (this.topK < 1) this.fail('top_k must be at least 1')
  }

  override reshape (bottom: Blob[], top: Blob[]): void {
    const x = at(bottom, 0)
    const labels = at(bottom, 1)
    this.axis = this.axisOf(x, this.param.accuracy_param?.axis ?? 1, 'axis')
    this.outer = x.countRange(0, this.axis)
    this.channels = x.dim(this.axis)
    this.inner = x.countRange(this.axis + 1)
    if (this.topK > x.count / labels.count) this.fail(`top_k (${this.topK}) must not exceed the number of classes (${x.count / labels.count})`)
    if (this.outer * this.inner !== labels.count) {
      this.fail(`number of labels (${labels.count}) must match the number of predictions (${this.outer * this.inner}, scores ${x.shapeString()})`)
    }
    at(top, 0).reshape([])
    if (top.length > 1) at(top, 1).reshape([this.channels])
    if (this.perClassCount.length < this.channels) this.perClassCount = new Float64Array(this.channels)
  }

  override forward (bottom: Blob[], top: Blob[]): void {
    const { outer, channels, inner, topK } = this
    const x = at(bottom, 0).data
    const labels = at(bottom, 1).data
    const perClass = top.length > 1 ? at(top, 1).data : undefined
    const nums = this.perClassCount
    nums.fill(0)
    perClass?.fill(0)
    const dim = channels * inner
    let correct = 0
    let count = 0
    for (let o = 0; o < outer; o++) {
      for (let j = 0; j < inner; j++) {
        const label = Math.trunc(labels[o * inner + j]!)
        if (label === this.ignoreLabel) continue
        if (!(label >= 0 && label < channels)) this.dataError(`label ${labels[o * inner + j]} is outside [0, ${channels})`)
        nums[label]! += 1
        count++
        const truth = x[o * dim + label * inner + j]!
        // The true class itself is counted, hence the start at −1.
        let better = -1
        for (let c = 0; c < channels && better < topK; c++) if (x[o * dim + c * inner + j]! >= truth) better++
        if (better < topK) {
          correct++
          if (perClass !== undefined) perClass[label]! += 1
        }
      }
    }
    at(top, 0).data[0] = count === 0 ? 0 : correct / count
    if (perClass !== undefined) {
      for (let c = 0; c < channels; c++) perClass[c] = nums[c] === 0 ? 0 : perClass[c]! / nums[c]!
    }
  }

  override backward (): void {}

  override allowForceBackward (): boolean {
    return false
  }
}
