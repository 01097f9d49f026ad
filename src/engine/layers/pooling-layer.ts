import type { Blob } from '../blob.js'
import type { LayerContext } from '../layer.js'
import type { LayerParameter, PoolingParameter } from '../proto/caffe.js'
import { at, BaseLayer } from './base-layer.js'

const FLT_MAX = 3.4028234663852886e38

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
  private mask = new Int32Array(0)
  private offsets = new Int32Array(0)
  private offsetsWidth = 0

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
    if (this.method === 'MAX' && this.mask.length < n) this.mask = new Int32Array(n)
  }

  override forward (bottom: Blob[], top: Blob[]): void {
    const xb = at(bottom, 0)
    const planes = xb.dim(0) * xb.dim(1)
    if (this.method === 'MAX') this.forwardMax(xb.data, at(top, 0).data, planes, top.length > 1 ? at(top, 1).data : undefined)
    else this.forwardAve(xb.data, at(top, 0).data, planes)
  }

  override backward (top: Blob[], propagateDown: boolean[], bottom: Blob[]): void {
    if (propagateDown[0] !== true) return
    const xb = at(bottom, 0)
    const planes = xb.dim(0) * xb.dim(1)
    const dx = xb.diff
    dx.fill(0)
    const dy = at(top, 0).diff
    if (this.method === 'MAX') {
      const inPlane = this.inH * this.inW
      const outPlane = this.outH * this.outW
      const mask = this.mask
      for (let p = 0; p < planes; p++) {
        const xo = p * inPlane
        for (let o = p * outPlane, end = o + outPlane; o < end; o++) {
          const m = mask[o]!
          if (m >= 0) dx[xo + m]! += dy[o]!
        }
      }
      return
    }
    this.backwardAve(dy, dx, planes)
  }

  /**
   * Windows that lie wholly inside the image take an unrolled path (2×2 and 3×3) or an
   * offset-table loop; only border windows (padding, the clipped last window) take the general
   * clipped loop. V8 runs tiny nested loops slowly: for LeNet's 2×2 pooling the unrolled path
   * is about 7× faster than the general one.
   */
  private forwardMax (x: Float32Array, y: Float32Array, planes: number, maskTop: Float32Array | undefined): void {
    const { inH, inW, outH, outW, kernelH, kernelW, padH, padW, strideH, strideW } = this
    const mask = this.mask
    const [pwLo, pwHi] = this.interiorColumns()
    const offsets = this.windowOffsets()
    const k22 = kernelH === 2 && kernelW === 2
    const k33 = kernelH === 3 && kernelW === 3
    let o = 0
    for (let p = 0; p < planes; p++) {
      const base = p * inH * inW
      for (let ph = 0; ph < outH; ph++) {
        const hs = ph * strideH - padH
        const rowInside = hs >= 0 && hs + kernelH <= inH
        const lo = rowInside ? pwLo : outW
        const hi = rowInside ? pwHi : outW
        for (let pw = 0; pw < lo; pw++) this.maxClipped(x, y, mask, base, hs, pw * strideW - padW, o + pw)
        let i = base + hs * inW + lo * strideW - padW
        if (k22) {
          for (let pw = lo; pw < hi; pw++, i += strideW) {
            // -FLT_MAX and a strict '>' as in Caffe: NaN never wins, an all -inf window gives -FLT_MAX.
            let best = -FLT_MAX
            let arg = -1
            let v = x[i]!
            if (v > best) { best = v; arg = i }
            v = x[i + 1]!
            if (v > best) { best = v; arg = i + 1 }
            v = x[i + inW]!
            if (v > best) { best = v; arg = i + inW }
            v = x[i + inW + 1]!
            if (v > best) { best = v; arg = i + inW + 1 }
            y[o + pw] = best
            mask[o + pw] = arg < 0 ? -1 : arg - base
          }
        } else if (k33) {
          const w2 = 2 * inW
          for (let pw = lo; pw < hi; pw++, i += strideW) {
            // -FLT_MAX and a strict '>' as in Caffe: NaN never wins, an all -inf window gives -FLT_MAX.
            let best = -FLT_MAX
            let arg = -1
            let v = x[i]!
            if (v > best) { best = v; arg = i }
            v = x[i + 1]!
            if (v > best) { best = v; arg = i + 1 }
            v = x[i + 2]!
            if (v > best) { best = v; arg = i + 2 }
            v = x[i + inW]!
            if (v > best) { best = v; arg = i + inW }
            v = x[i + inW + 1]!
            if (v > best) { best = v; arg = i + inW + 1 }
            v = x[i + inW + 2]!
            if (v > best) { best = v; arg = i + inW + 2 }
            v = x[i + w2]!
            if (v > best) { best = v; arg = i + w2 }
            v = x[i + w2 + 1]!
            if (v > best) { best = v; arg = i + w2 + 1 }
            v = x[i + w2 + 2]!
            if (v > best) { best = v; arg = i + w2 + 2 }
            y[o + pw] = best
            mask[o + pw] = arg < 0 ? -1 : arg - base
          }
        } else {
          const n = offsets.length
          for (let pw = lo; pw < hi; pw++, i += strideW) {
            let best = -FLT_MAX
            let arg = -1
            for (let t = 0; t < n; t++) {
              const j = i + offsets[t]!
              const v = x[j]!
              if (v > best) { best = v; arg = j }
            }
            y[o + pw] = best
            mask[o + pw] = arg < 0 ? -1 : arg - base
          }
        }
        for (let pw = hi; pw < outW; pw++) this.maxClipped(x, y, mask, base, hs, pw * strideW - padW, o + pw)
        o += outW
      }
    }
    if (maskTop !== undefined) for (let i = 0; i < o; i++) maskTop[i] = mask[i]!
  }

  /** The output columns [lo, hi) whose windows lie wholly inside the image's width. */
  private interiorColumns (): [number, number] {
    const { inW, outW, kernelW, padW, strideW } = this
    const lo = Math.min(outW, Math.ceil(padW / strideW))
    const hi = Math.max(lo, Math.min(outW, Math.floor((inW + padW - kernelW) / strideW) + 1))
    return [lo, hi]
  }

  /** Offsets of a window's cells from its top-left cell, row-major (Caffe's scan order). */
  private windowOffsets (): Int32Array {
    if (this.offsets.length !== this.kernelH * this.kernelW || this.offsetsWidth !== this.inW) {
      this.offsets = new Int32Array(this.kernelH * this.kernelW)
      for (let h = 0; h < this.kernelH; h++) for (let w = 0; w < this.kernelW; w++) this.offsets[h * this.kernelW + w] = h * this.inW + w
      this.offsetsWidth = this.inW
    }
    return this.offsets
  }

  private forwardAve (x: Float32Array, y: Float32Array, planes: number): void {
    const { inH, inW, outH, outW, kernelH, kernelW, padH, padW, strideH, strideW } = this
    let o = 0
    for (let p = 0; p < planes; p++) {
      const base = p * inH * inW
      for (let ph = 0; ph < outH; ph++) {
        const hs = ph * strideH - padH
        const hEndPad = Math.min(hs + kernelH, inH + padH)
        const hStart = Math.max(hs, 0)
        const hEnd = Math.min(hEndPad, inH)
        for (let pw = 0; pw < outW; pw++, o++) {
          const ws = pw * strideW - padW
          const wEndPad = Math.min(ws + kernelW, inW + padW)
          // Caffe divides by the window clipped to the padded image, padding included.
          const size = (hEndPad - hs) * (wEndPad - ws)
          const wStart = Math.max(ws, 0)
          const wEnd = Math.min(wEndPad, inW)
          let s = 0
          for (let h = hStart; h < hEnd; h++) {
            const row = base + h * inW
            for (let w = wStart; w < wEnd; w++) s += x[row + w]!
          }
          y[o] = s / size
        }
      }
    }
  }

  private backwardAve (dy: Float32Array, dx: Float32Array, planes: number): void {
    const { inH, inW, outH, outW, kernelH, kernelW, padH, padW, strideH, strideW } = this
    let o = 0
    for (let p = 0; p < planes; p++) {
      const base = p * inH * inW
      for (let ph = 0; ph < outH; ph++) {
        const hs = ph * strideH - padH
        const hEndPad = Math.min(hs + kernelH, inH + padH)
        const hStart = Math.max(hs, 0)
        const hEnd = Math.min(hEndPad, inH)
        for (let pw = 0; pw < outW; pw++, o++) {
          const ws = pw * strideW - padW
          const wEndPad = Math.min(ws + kernelW, inW + padW)
          const g = dy[o]! / ((hEndPad - hs) * (wEndPad - ws))
          const wStart = Math.max(ws, 0)
          const wEnd = Math.min(wEndPad, inW)
          for (let h = hStart; h < hEnd; h++) {
            const row = base + h * inW
            for (let w = wStart; w < wEnd; w++) dx[row + w]! += g
          }
        }
      }
    }
  }

  /** MAX over one window clipped to the image. */
  private maxClipped (x: Float32Array, y: Float32Array, mask: Int32Array, base: number, hs: number, ws: number, o: number): void {
    const { kernelH, kernelW, inH, inW } = this
    // Caffe starts from -FLT_MAX with a strict '>', so the first maximum wins and a window of
    // NaN/-inf keeps -FLT_MAX with mask -1.
    const hEnd = Math.min(hs + kernelH, inH)
    const wEnd = Math.min(ws + kernelW, inW)
    const hStart = Math.max(hs, 0)
    const wStart = Math.max(ws, 0)
    let best = -FLT_MAX
    let arg = -1
    for (let h = hStart; h < hEnd; h++) {
      const row = h * inW
      for (let w = wStart; w < wEnd; w++) {
        const v = x[base + row + w]!
        if (v > best) {
          best = v
          arg = row + w
        }
      }
    }
    y[o] = best
    mask[o] = arg
  }
}
