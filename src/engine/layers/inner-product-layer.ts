import { allocFloats, Blob } from '../blob.js'
import type { LayerContext } from '../layer.js'
import type { InnerProductParameter, LayerParameter } from '../proto/caffe.js'
import { at, BaseLayer } from './base-layer.js'

/**
 * Caffe's InnerProduct (fully connected) layer. The bottom is viewed as M × K with
 * M = product of the axes before `axis` and K = product of the rest; weights are N × K
 * (K × N with transpose: true), bias N.
 */
export class InnerProductLayer extends BaseLayer {
  private numOutput = 0
  private biasTerm = true
  private transpose = false
  private axis = 1
  private K = 0
  private M = 0
  private onesVector: Float32Array = allocFloats(0)

  constructor (param: LayerParameter, ctx: LayerContext) {
    super(param, ctx, 'InnerProduct', { bottoms: [1, 1], tops: [1, 1] })
  }

  protected override layerSetUp (bottom: Blob[]): void {
    const p = this.param.inner_product_param ?? {} as Partial<InnerProductParameter>
    if (p.num_output === undefined || p.num_output <= 0) this.fail('num_output must be set and greater than zero')
    this.numOutput = p.num_output
    this.biasTerm = p.bias_term ?? true
    this.transpose = p.transpose ?? false
    const x = at(bottom, 0)
    this.axis = this.axisOf(x, p.axis ?? 1, 'axis')
    this.K = x.countRange(this.axis)
    const weights = new Blob(this.transpose ? [this.K, this.numOutput] : [this.numOutput, this.K])
    this.fill(weights, p.weight_filler, 'weight_filler')
    this.blobs.push(weights)
    if (this.biasTerm) {
      const bias = new Blob([this.numOutput])
      this.fill(bias, p.bias_filler, 'bias_filler')
      this.blobs.push(bias)
    }
  }

  override reshape (bottom: Blob[], top: Blob[]): void {
    const x = at(bottom, 0)
    const axis = this.axisOf(x, this.axis, 'axis')
    const k = x.countRange(axis)
    if (k !== this.K) this.fail(`input size ${k} (${x.shapeString()} from axis ${axis}) does not match the weights' ${this.K}`)
    this.M = x.countRange(0, axis)
    at(top, 0).reshape([...x.shape.slice(0, axis), this.numOutput])
  }

  override forward (bottom: Blob[], top: Blob[]): void {
    const { M, K } = this
    const N = this.numOutput
    const y = at(top, 0).data
    const k = this.ctx.kernels
    const w = at(this.blobs, 0).data
    // The bias is written first and the product added to it (beta = 1).
    let beta = 0
    if (this.biasTerm) {
      const b = at(this.blobs, 1).data
      for (let i = 0; i < M; i++) y.set(b, i * N)
      beta = 1
    }
    if (M === 1) {
      k.gemv(this.transpose, this.transpose ? K : N, this.transpose ? N : K, 1, w, 0, at(bottom, 0).data, 0, beta, y, 0)
    } else {
      k.gemm(false, !this.transpose, M, N, K, 1, at(bottom, 0).data, 0, w, 0, beta, y, 0)
    }
  }

  override backward (top: Blob[], propagateDown: boolean[], bottom: Blob[]): void {
    const { M, K } = this
    const N = this.numOutput
    const dy = at(top, 0).diff
    const xb = at(bottom, 0)
    const k = this.ctx.kernels
    const weights = at(this.blobs, 0)
    if (this.paramPropagateDown[0] === true) {
      if (this.transpose) k.gemm(true, false, K, N, M, 1, xb.data, 0, dy, 0, 1, weights.diff, 0)
      else k.gemm(true, false, N, K, M, 1, dy, 0, xb.data, 0, 1, weights.diff, 0)
    }
    if (this.biasTerm && this.paramPropagateDown[1] === true) {
      // Column sums of dy (M × N): dyᵀ · ones.
      if (this.onesVector.length < M) this.onesVector = allocFloats(M).fill(1)
      k.gemv(true, M, N, 1, dy, 0, this.onesVector, 0, 1, at(this.blobs, 1).diff, 0)
    }
    if (propagateDown[0] === true) {
      k.gemm(false, this.transpose, M, K, N, 1, dy, 0, weights.data, 0, 0, xb.diff, 0)
    }
  }
}
