import type { Blob } from '../blob.js'
import type { LayerContext } from '../layer.js'
import type { LayerParameter } from '../proto/caffe.js'
import { at, BaseLayer } from './base-layer.js'

/**
 * y = softmax(x) along `channels` for every (outer, inner) position of an outer × channels ×
 * inner array; the maximum is subtracted first so large scores do not overflow.
 */
export function softmax (x: Float32Array, y: Float32Array, outer: number, channels: number, inner: number): void {
  const dim = channels * inner
  for (let o = 0; o < outer; o++) {
    for (let j = 0; j < inner; j++) {
      const base = o * dim + j
      let max = -Infinity
      for (let c = 0, i = base; c < channels; c++, i += inner) if (x[i]! > max) max = x[i]!
      let sum = 0
      for (let c = 0, i = base; c < channels; c++, i += inner) {
        const e = Math.exp(x[i]! - max)
        y[i] = e
        sum += e
      }
      for (let c = 0, i = base; c < channels; c++, i += inner) y[i] = y[i]! / sum
    }
  }
}

/** Caffe's Softmax layer along `axis` (default 1). */
export class SoftmaxLayer extends BaseLayer {
  private axis = 1
  private outer = 0
  private channels = 0
  private inner = 0

  constructor (param: LayerParameter, ctx: LayerContext) {
    super(param, ctx, 'Softmax', { bottoms: [1, 1], tops: [1, 1] })
  }

  override reshape (bottom: Blob[], top: Blob[]): void {
    const x = at(bottom, 0)
    this.axis = this.axisOf(x, this.param.softmax_param?.axis ?? 1, 'axis')
    this.outer = x.countRange(0, this.axis)
    this.channels = x.dim(this.axis)
    this.inner = x.countRange(this.axis + 1)
    const y = at(top, 0)
    if (y !== x) y.reshapeLike(x)
  }

  override forward (bottom: Blob[], top: Blob[]): void {
    softmax(at(bottom, 0).data, at(top, 0).data, this.outer, this.channels, this.inner)
  }

  override backward (top: Blob[], propagateDown: boolean[], bottom: Blob[]): void {
    if (propagateDown[0] !== true) return
    const t = at(top, 0)
    const y = t.data
    const dy = t.diff
    const dx = at(bottom, 0).diff
    const { outer, channels, inner } = this
    const dim = channels * inner
    // dx = (dy − Σ_c dy·y) ⊙ y, per (outer, inner) position.
    for (let o = 0; o < outer; o++) {
      for (let j = 0; j < inner; j++) {
        const base = o * dim + j
        let dot = 0
        for (let c = 0, i = base; c < channels; c++, i += inner) dot += dy[i]! * y[i]!
        for (let c = 0, i = base; c < channels; c++, i += inner) dx[i] = (dy[i]! - dot) * y[i]!
      }
    }
  }
}
