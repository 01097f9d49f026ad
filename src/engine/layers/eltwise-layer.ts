import type { Blob } from '../blob.js'
import type { LayerContext } from '../layer.js'
import type { LayerParameter } from '../proto/caffe.js'
import { at, BaseLayer } from './base-layer.js'

/** Caffe's Eltwise over two or more same-shaped bottoms: SUM (with optional coeffs), PROD, MAX. */
export class EltwiseLayer extends BaseLayer {
  private op: 'SUM' | 'PROD' | 'MAX' = 'SUM'
  private coeffs: number[] = []
  private stableProd = true
  private argmax = new Int32Array(0)

  constructor (param: LayerParameter, ctx: LayerContext) {
    super(param, ctx, 'Eltwise', { bottoms: [2, Infinity], tops: [1, 1] })
  }

  protected override layerSetUp (bottom: Blob[]): void {
    const p = this.param.eltwise_param
    this.op = p?.operation ?? 'SUM'
    const coeff = p?.coeff ?? []
    if (coeff.length > 0 && this.op !== 'SUM') this.fail('coefficients are only allowed with operation SUM')
    if (coeff.length > 0 && coeff.length !== bottom.length) this.fail(`needs one coeff per bottom (${bottom.length}), got ${coeff.length}`)
    this.coeffs = coeff.length > 0 ? [...coeff] : bottom.map(() => 1)
    this.stableProd = p?.stable_prod_grad ?? true
  }

  override reshape (bottom: Blob[], top: Blob[]): void {
    const first = at(bottom, 0)
    for (let i = 1; i < bottom.length; i++) {
      const b = at(bottom, i)
      if (b.shape.length !== first.shape.length || b.shape.some((d, k) => d !== first.shape[k])) {
        this.fail(`bottom ${i} has shape ${b.shapeString()}, bottom 0 ${first.shapeString()}; all must match`)
      }
    }
    at(top, 0).reshapeLike(first)
    if (this.op === 'MAX' && this.argmax.length < first.count) this.argmax = new Int32Array(first.count)
  }

  override forward (bottom: Blob[], top: Blob[]): void {
    const y = at(top, 0).data
    const n = y.length
    if (this.op === 'SUM') {
      y.fill(0)
      for (let k = 0; k < bottom.length; k++) {
        const x = at(bottom, k).data
        const c = this.coeffs[k]!
        for (let i = 0; i < n; i++) y[i]! += c * x[i]!
      }
      return
    }
    if (this.op === 'PROD') {
      y.set(at(bottom, 0).data)
      for (let k = 1; k < bottom.length; k++) {
        const x = at(bottom, k).data
        for (let i = 0; i < n; i++) y[i] = y[i]! * x[i]!
      }
      return
    }
    // MAX: ties between the first two go to bottom 1, later bottoms need to be strictly
    // greater, as in Caffe.
    const a = at(bottom, 0).data
    const b = at(bottom, 1).data
    const arg = this.argmax
    for (let i = 0; i < n; i++) {
      if (a[i]! > b[i]!) {
        y[i] = a[i]!
        arg[i] = 0
      } else {
        y[i] = b[i]!
        arg[i] = 1
      }
    }
    for (let k = 2; k < bottom.length; k++) {
      const x = at(bottom, k).data
      for (let i = 0; i < n; i++) {
        if (x[i]! > y[i]!) {
          y[i] = x[i]!
          arg[i] = k
        }
      }
    }
  }

  override backward (top: Blob[], propagateDown: boolean[], bottom: Blob[]): void {
    const t = at(top, 0)
    const dy = t.diff
    const y = t.data
    const n = dy.length
    for (let k = 0; k < bottom.length; k++) {
      if (propagateDown[k] !== true) continue
      const xb = at(bottom, k)
      const dx = xb.diff
      if (this.op === 'SUM') {
        const c = this.coeffs[k]!
        for (let i = 0; i < n; i++) dx[i] = c * dy[i]!
      } else if (this.op === 'MAX') {
        const arg = this.argmax
        for (let i = 0; i < n; i++) dx[i] = arg[i] === k ? dy[i]! : 0
      } else if (this.stableProd) {
        dx.fill(1)
        for (let j = 0; j < bottom.length; j++) {
          if (j === k) continue
          const o = at(bottom, j).data
          for (let i = 0; i < n; i++) dx[i] = dx[i]! * o[i]!
        }
        for (let i = 0; i < n; i++) dx[i] = dx[i]! * dy[i]!
      } else {
        const x = xb.data
        for (let i = 0; i < n; i++) dx[i] = dy[i]! * y[i]! / x[i]!
      }
    }
  }
}
