import { allocFloats, type Blob } from '../blob.js'
import type { LayerContext } from '../layer.js'
import type { LayerParameter, PoolingParameter } from '../proto/caffe.js'
import type { PoolGeometry } from '../kernels/pool-kernels.js'
import { at, BaseLayer } from './base-layer.js'

/**
 * Pooled size along one axis by Caffe's rule: ceil((in + 2·pad − kernel) / stride) + 1
 * (floor with round_mode FLOOR), then, when padded, one less if the last window would start
 * inside the padding (it must start inside the image).
 */
export function pooledSize (input: number, kernel: number, pad: number, stride: number, roundMode: 'CEIL' | 'FLOOR' = 'CEIL'): number {
  const span = (input + 2 * pad - kernel) / stride
  let out = (roundMode === 'FLOOR' ? Math.floor(span) : Math.ceil(span)) + 1
  if (pad > 0 && (out - 1) * stride >= input + pad) out--
  return out
}

/** Caffe's Pooling layer: MAX (optional second top with the argmax mask), AVE, global pooling. */
export class PoolingLayer extends BaseLayer {
  private method: 'MAX' | 'AVE' = 'MAX'
  private global = false
  private kernelH = 0
  private kernelW = 0
  private padH = 0
  private padW = 0
  private strideH = 1
  private strideW = 1
  private roundMode: 'CEIL' | 'FLOOR' = 'CEIL'
  private inH = 0
  private inW = 0
  private outH = 0
  private outW = 0
  private mask: Int32Array = new Int32Array(new SharedArrayBuffer(0))
  private maskValid = false
  private scratch: Float32Array = allocFloats(0)

  constructor (param: LayerParameter, ctx: LayerContext) {
    super(param, ctx, 'Pooling', { bottoms: [1, 1], tops: [1, 2] })
  }

  protected override layerSetUp (_bottom: Blob[], top: Blob[]): void {
    const p = this.param.pooling_param ?? {} as Partial<PoolingParameter>
    const pool = p.pool ?? 'MAX'
    if (pool !== 'MAX' && pool !== 'AVE') this.fail(`pool: ${pool} is not supported (MAX or AVE)`)
    this.method = pool
    if (top.length > 1 && pool !== 'MAX') this.fail('only MAX pooling has a second (mask) top')
    this.roundMode = p.round_mode ?? 'CEIL'
    this.global = p.global_pooling ?? false
    const hasSize = p.kernel_size !== undefined
    const hasHW = p.kernel_h !== undefined || p.kernel_w !== undefined
    if (this.global) {
      if (hasSize || hasHW) this.fail('with global_pooling: true the kernel size cannot be specified')
    } else {
      if (hasSize && hasHW) this.fail('give either kernel_size or kernel_h/kernel_w, not both')
      if (!hasSize && !hasHW) this.fail('kernel_size (or kernel_h and kernel_w) is required')
      if (hasHW && (p.kernel_h === undefined || p.kernel_w === undefined)) this.fail('for non-square kernels both kernel_h and kernel_w are required')
      this.kernelH = p.kernel_h ?? p.kernel_size ?? 0
      this.kernelW = p.kernel_w ?? p.kernel_size ?? 0
      if (this.kernelH <= 0 || this.kernelW <= 0) this.fail('kernel dimensions must be greater than zero')
    }
    if ((p.pad_h !== undefined || p.pad_w !== undefined) && p.pad !== undefined) this.fail('give either pad or pad_h/pad_w, not both')
    this.padH = p.pad_h ?? p.pad ?? 0
    this.padW = p.pad_w ?? p.pad ?? 0
    if ((p.stride_h !== undefined || p.stride_w !== undefined) && p.stride !== undefined) this.fail('give either stride or stride_h/stride_w, not both')
    this.strideH = p.stride_h ?? p.stride ?? 1
    this.strideW = p.stride_w ?? p.stride ?? 1
    if (this.strideH <= 0 || this.strideW <= 0) this.fail('stride must be greater than zero')
    if (this.global && (this.padH !== 0 || this.padW !== 0 || this.strideH !== 1 || this.strideW !== 1)) {
      this.fail('with global_pooling: true only pad = 0 and stride = 1 are allowed')
    }
    if (!this.global && (this.padH >= this.kernelH || this.padW >= this.kernelW)) this.fail('pad must be smaller than the kernel')
  }

  override reshape (bottom: Blob[], top: Blob[]): void {
    const x = at(bottom, 0)
    if (x.shape.length !== 4) this.fail(`needs a 4-axis bottom (N×C×H×W), got ${x.shapeString()}`)
    this.inH = x.dim(2)
    this.inW = x.dim(3)
    if (this.global) {
      this.kernelH = this.inH
      this.kernelW = this.inW
    }
    this.outH = pooledSize(this.inH, this.kernelH, this.padH, this.strideH, this.roundMode)
    this.outW = pooledSize(this.inW, this.kernelW, this.padW, this.strideW, this.roundMode)
    if (this.outH <= 0 || this.outW <= 0) this.fail(`kernel ${this.kernelH}x${this.kernelW} does not fit the ${this.inH}x${this.inW} input`)
    const shape = [x.dim(0), x.dim(1), this.outH, this.outW]
    at(top, 0).reshape(shape)
    if (top.length > 1) at(top, 1).reshape(shape)
    const n = x.dim(0) * x.dim(1) * this.outH * this.outW
    // Shared memory, so that worker threads can write the argmax too.
    if (this.method === 'MAX' && this.mask.length < n) this.mask = new Int32Array(new SharedArrayBuffer(4 * n))
  }

  override forward (bottom: Blob[], top: Blob[]): void {
    const xb = at(bottom, 0)
    const planes = xb.dim(0) * xb.dim(1)
    const g = this.geometry()
    const k = this.ctx.kernels
    const y = at(top, 0).data
    if (this.method === 'AVE') {
      k.run('avePool', planes, xb.count, g, xb.data, y)
      return
    }
    // Inference needs no argmax, and the maxima alone are several times cheaper.
    const wantMask = this.ctx.phase === 'TRAIN' || top.length > 1
    k.run('maxPool', planes, xb.count, g, xb.data, y, wantMask ? this.mask : undefined)
    this.maskValid = wantMask
    if (top.length > 1) {
      const maskTop = at(top, 1).data
      for (let i = 0; i < y.length; i++) maskTop[i] = this.mask[i]!
    }
  }

  override backward (top: Blob[], propagateDown: boolean[], bottom: Blob[]): void {
    if (propagateDown[0] !== true) return
    const xb = at(bottom, 0)
    const planes = xb.dim(0) * xb.dim(1)
    const g = this.geometry()
    const k = this.ctx.kernels
    const dy = at(top, 0).diff
    if (this.method === 'AVE') {
      k.run('avePoolBackward', planes, xb.count, g, dy, xb.diff)
      return
    }
    if (!this.maskValid) {
      // A TEST-phase forward skipped the argmax (force_backward); recompute it into scratch,
      // since a later in-place layer may have changed the top since.
      if (this.scratch.length < dy.length) this.scratch = allocFloats(dy.length)
      k.run('maxPool', planes, xb.count, g, xb.data, this.scratch, this.mask)
      this.maskValid = true
    }
    k.run('maxPoolBackward', planes, xb.count, g, dy, this.mask, xb.diff)
  }

  private geometry (): PoolGeometry {
    const { inH, inW, outH, outW, kernelH, kernelW, padH, padW, strideH, strideW } = this
    return { inH, inW, outH, outW, kernelH, kernelW, padH, padW, strideH, strideW }
  }
}
