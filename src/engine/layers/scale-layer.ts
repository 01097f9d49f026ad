import { Blob } from '../blob.js'
import type { LayerContext } from '../layer.js'
import type { LayerParameter } from '../proto/caffe.js'
import { at, BaseLayer } from './base-layer.js'

/**
 * Caffe's Scale: y = x ⊙ s (+ b), with s broadcast over the axes [axis, axis + num_axes) of x.
 * s is a learnable blob (filler default constant 1), or the second bottom when there are two.
 * With bias_term a bias of s's shape is appended to the blobs (filler default constant 0).
 * Works in place.
 */
export class ScaleLayer extends BaseLayer {
  private axis = 1
  private outer = 0
  private scaleDim = 0
  private inner = 0
  private biasIndex = -1
  /** The bottom before scaling, kept when in place for the scale gradient. */
  private readonly saved = new Blob()

  constructor (param: LayerParameter, ctx: LayerContext) {
    super(param, ctx, 'Scale', { bottoms: [1, 2], tops: [1, 1] })
  }

  protected override layerSetUp (bottom: Blob[]): void {
    const p = this.param.scale_param
    const x = at(bottom, 0)
    let shape: number[]
    if (bottom.length > 1) {
      shape = at(bottom, 1).shape
    } else {
      const numAxes = p?.num_axes ?? 1
      if (numAxes < -1) this.fail(`num_axes must be non-negative, or -1 to extend to the end; got ${numAxes}`)
      // A scalar scale (num_axes 0) accepts any axis, including one past the last.
      const axis = numAxes === 0 && (p?.axis ?? 1) === x.shape.length ? x.shape.length : this.axisOf(x, p?.axis ?? 1, 'axis')
      const end = numAxes === -1 ? x.shape.length : axis + numAxes
      if (end > x.shape.length) this.fail(`scale blob's axes [${axis}, ${end}) exceed the bottom's ${x.shape.length} axes`)
      shape = x.shape.slice(axis, end)
      const s = new Blob(shape)
      if (p?.filler === undefined) s.data.fill(1)
      else this.fill(s, p.filler, 'filler')
      this.blobs.push(s)
    }
    if (p?.bias_term === true) {
      const b = new Blob(shape)
      this.fill(b, p.bias_filler, 'bias_filler')
      this.biasIndex = this.blobs.length
      this.blobs.push(b)
    }
  }

  override reshape (bottom: Blob[], top: Blob[]): void {
    const x = at(bottom, 0)
    const s = this.scaleBlob(bottom)
    const p = this.param.scale_param
    const rawAxis = p?.axis ?? 1
    this.axis = s.shape.length === 0 && rawAxis === x.shape.length ? x.shape.length : this.axisOf(x, rawAxis, 'axis')
    if (x.shape.length < this.axis + s.shape.length) this.fail(`scale blob ${s.shapeString()} does not fit bottom ${x.shapeString()} at axis ${this.axis}`)
    for (let i = 0; i < s.shape.length; i++) {
      if (x.shape[this.axis + i] !== s.shape[i]) this.fail(`dimension ${i} of the scale blob (${s.shapeString()}) does not match axis ${this.axis + i} of bottom ${x.shapeString()}`)
    }
    this.outer = x.countRange(0, this.axis)
    this.scaleDim = s.count
    this.inner = x.countRange(this.axis + s.shape.length)
    const y = at(top, 0)
    if (y !== x) y.reshapeLike(x)
    else this.saved.reshapeLike(x)
  }

  private scaleBlob (bottom: Blob[]): Blob {
    return bottom.length > 1 ? at(bottom, 1) : at(this.blobs, 0)
  }

  override forward (bottom: Blob[], top: Blob[]): void {
    const xb = at(bottom, 0)
    const x = xb.data
    const y = at(top, 0).data
    if (y === x) this.saved.data.set(x)
    const s = this.scaleBlob(bottom).data
    const b = this.biasIndex >= 0 ? at(this.blobs, this.biasIndex).data : undefined
    const { outer, scaleDim, inner } = this
    let i = 0
    for (let o = 0; o < outer; o++) {
      for (let d = 0; d < scaleDim; d++) {
        const sd = s[d]!
        const bd = b === undefined ? 0 : b[d]!
        for (let e = i + inner; i < e; i++) y[i] = x[i]! * sd + bd
      }
    }
  }

  override backward (top: Blob[], propagateDown: boolean[], bottom: Blob[]): void {
    const xb = at(bottom, 0)
    const tb = at(top, 0)
    const dy = tb.diff
    const x = tb === xb ? this.saved.data : xb.data
    const { outer, scaleDim, inner } = this
    const twoBottoms = bottom.length > 1
    if (this.biasIndex >= 0 && this.paramPropagateDown[this.biasIndex] === true) {
      const db = at(this.blobs, this.biasIndex).diff
      let i = 0
      for (let o = 0; o < outer; o++) {
        for (let d = 0; d < scaleDim; d++) {
          let sum = 0
          for (let e = i + inner; i < e; i++) sum += dy[i]!
          db[d]! += sum
        }
      }
    }
    // The scale gradient accumulates into a learnable blob but overwrites a bottom's diff.
    const wantScale = twoBottoms ? propagateDown[1] === true : this.paramPropagateDown[0] === true
    if (wantScale) {
      const sBlob = this.scaleBlob(bottom)
      const ds = sBlob.diff
      if (twoBottoms) ds.fill(0)
      let i = 0
      for (let o = 0; o < outer; o++) {
        for (let d = 0; d < scaleDim; d++) {
          let sum = 0
          for (let e = i + inner; i < e; i++) sum += dy[i]! * x[i]!
          ds[d]! += sum
        }
      }
    }
    if (propagateDown[0] === true) {
      const s = this.scaleBlob(bottom).data
      const dx = xb.diff
      let i = 0
      for (let o = 0; o < outer; o++) {
        for (let d = 0; d < scaleDim; d++) {
          const sd = s[d]!
          for (let e = i + inner; i < e; i++) dx[i] = dy[i]! * sd
        }
      }
    }
  }
}
