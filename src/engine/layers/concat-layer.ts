import type { Blob } from '../blob.js'
import type { LayerContext } from '../layer.js'
import type { LayerParameter } from '../proto/caffe.js'
import { at, BaseLayer } from './base-layer.js'

/** Caffe's Concat along `axis` (default 1; legacy concat_dim when given). */
export class ConcatLayer extends BaseLayer {
  private axis = 1
  private outer = 0
  private inner = 0

  constructor (param: LayerParameter, ctx: LayerContext) {
    super(param, ctx, 'Concat', { bottoms: [1, Infinity], tops: [1, 1] })
  }

  protected override layerSetUp (): void {
    const p = this.param.concat_param
    if (p?.axis !== undefined && p.concat_dim !== undefined) this.fail('give either axis or concat_dim, not both')
  }

  override reshape (bottom: Blob[], top: Blob[]): void {
    const first = at(bottom, 0)
    const p = this.param.concat_param
    this.axis = this.axisOf(first, p?.concat_dim ?? p?.axis ?? 1, p?.concat_dim !== undefined ? 'concat_dim' : 'axis')
    const shape = [...first.shape]
    let total = first.dim(this.axis)
    for (let i = 1; i < bottom.length; i++) {
      const b = at(bottom, i)
      if (b.shape.length !== first.shape.length) this.fail(`bottom ${i} has ${b.shape.length} axes, bottom 0 has ${first.shape.length}`)
      for (let k = 0; k < shape.length; k++) {
        if (k !== this.axis && b.shape[k] !== shape[k]) this.fail(`bottom ${i} (${b.shapeString()}) differs from bottom 0 (${first.shapeString()}) outside the concat axis ${this.axis}`)
      }
      total += b.dim(this.axis)
    }
    shape[this.axis] = total
    at(top, 0).reshape(shape)
    this.outer = first.countRange(0, this.axis)
    this.inner = first.countRange(this.axis + 1)
  }

  override forward (bottom: Blob[], top: Blob[]): void {
    const y = at(top, 0)
    const topAxis = y.dim(this.axis)
    let offset = 0
    for (const b of bottom) {
      const block = b.dim(this.axis) * this.inner
      for (let o = 0; o < this.outer; o++) {
        y.data.set(b.data.subarray(o * block, (o + 1) * block), (o * topAxis + offset) * this.inner)
      }
      offset += b.dim(this.axis)
    }
  }

  override backward (top: Blob[], propagateDown: boolean[], bottom: Blob[]): void {
    const y = at(top, 0)
    const topAxis = y.dim(this.axis)
    let offset = 0
    for (let i = 0; i < bottom.length; i++) {
      const b = at(bottom, i)
      const block = b.dim(this.axis) * this.inner
      if (propagateDown[i] === true) {
        for (let o = 0; o < this.outer; o++) {
          const start = (o * topAxis + offset) * this.inner
          b.diff.set(y.diff.subarray(start, start + block), o * block)
        }
      }
      offset += b.dim(this.axis)
    }
  }
}
