import type { Blob } from '../blob.js'
import type { LayerContext } from '../layer.js'
import type { LayerParameter } from '../proto/caffe.js'
import { at, BaseLayer } from './base-layer.js'

/**
 * Caffe's local response normalisation, y = x · scale^−β.
 * ACROSS_CHANNELS: scale = k + α/n · Σ x² over the n channels centred on x.
 * WITHIN_CHANNEL: scale = 1 + α/n² · Σ x² over the n×n window centred on x (zero padded);
 * Caffe builds this one from pooling and power layers with shift 1, so k plays no part.
 */
export class LrnLayer extends BaseLayer {
  private size = 5
  private alpha = 1
  private beta = 0.75
  private k = 1
  private region: 'ACROSS_CHANNELS' | 'WITHIN_CHANNEL' = 'ACROSS_CHANNELS'
  private scale = new Float32Array(0)
  private ratio = new Float64Array(0)

  constructor (param: LayerParameter, ctx: LayerContext) {
    super(param, ctx, 'LRN', { bottoms: [1, 1], tops: [1, 1] })
  }

  protected override layerSetUp (): void {
    const p = this.param.lrn_param
    this.size = p?.local_size ?? 5
    this.alpha = p?.alpha ?? 1
    this.beta = p?.beta ?? 0.75
    this.k = p?.k ?? 1
    this.region = p?.norm_region ?? 'ACROSS_CHANNELS'
    if (this.size % 2 !== 1) this.fail(`local_size must be odd, got ${this.size}`)
  }

  override reshape (bottom: Blob[], top: Blob[]): void {
    const x = at(bottom, 0)
    if (x.shape.length !== 4) this.fail(`needs a 4-axis bottom (N×C×H×W), got ${x.shapeString()}`)
    if (at(top, 0) === x) this.fail('cannot compute in place')
    at(top, 0).reshapeLike(x)
    if (this.scale.length < x.count) this.scale = new Float32Array(x.count)
    const planeOrChannel = this.region === 'ACROSS_CHANNELS' ? x.dim(1) : x.dim(2) * x.dim(3)
    if (this.ratio.length < planeOrChannel) this.ratio = new Float64Array(planeOrChannel)
  }

  override forward (bottom: Blob[], top: Blob[]): void {
    const xb = at(bottom, 0)
    const [n, c, h, w] = [xb.dim(0), xb.dim(1), xb.dim(2), xb.dim(3)]
    const x = xb.data
    const y = at(top, 0).data
    const scale = this.scale
    const half = (this.size - 1) / 2
    if (this.region === 'ACROSS_CHANNELS') {
      const plane = h * w
      const a = this.alpha / this.size
      for (let b = 0; b < n; b++) {
        const img = b * c * plane
        for (let p = 0; p < plane; p++) {
          for (let ch = 0; ch < c; ch++) {
            let s = 0
            const lo = Math.max(0, ch - half)
            const hi = Math.min(c - 1, ch + half)
            for (let q = lo; q <= hi; q++) {
              const v = x[img + q * plane + p]!
              s += v * v
            }
            scale[img + ch * plane + p] = this.k + a * s
          }
        }
      }
    } else {
      const a = this.alpha / (this.size * this.size)
      for (let pl = 0; pl < n * c; pl++) {
        const base = pl * h * w
        for (let i = 0; i < h; i++) {
          for (let j = 0; j < w; j++) {
            let s = 0
            for (let u = Math.max(0, i - half); u <= Math.min(h - 1, i + half); u++) {
              for (let v = Math.max(0, j - half); v <= Math.min(w - 1, j + half); v++) {
                const t = x[base + u * w + v]!
                s += t * t
              }
            }
            scale[base + i * w + j] = 1 + a * s
          }
        }
      }
    }
    const nb = -this.beta
    for (let i = 0; i < xb.count; i++) y[i] = x[i]! * Math.pow(scale[i]!, nb)
  }

  override backward (top: Blob[], propagateDown: boolean[], bottom: Blob[]): void {
    if (propagateDown[0] !== true) return
    const xb = at(bottom, 0)
    const tb = at(top, 0)
    const [n, c, h, w] = [xb.dim(0), xb.dim(1), xb.dim(2), xb.dim(3)]
    const x = xb.data
    const dx = xb.diff
    const y = tb.data
    const dy = tb.diff
    const scale = this.scale
    const half = (this.size - 1) / 2
    const nb = -this.beta
    // dx = dy·scale^−β − (2αβ/n)·x·Σ_window (dy·y/scale); the window is symmetric, so the
    // positions whose window holds x are exactly those in x's own window.
    if (this.region === 'ACROSS_CHANNELS') {
      const plane = h * w
      const coef = 2 * this.alpha * this.beta / this.size
      const ratio = this.ratio
      for (let b = 0; b < n; b++) {
        const img = b * c * plane
        for (let p = 0; p < plane; p++) {
          for (let ch = 0; ch < c; ch++) {
            const i = img + ch * plane + p
            ratio[ch] = dy[i]! * y[i]! / scale[i]!
          }
          for (let ch = 0; ch < c; ch++) {
            let s = 0
            for (let q = Math.max(0, ch - half), hi = Math.min(c - 1, ch + half); q <= hi; q++) s += ratio[q]!
            const i = img + ch * plane + p
            dx[i] = dy[i]! * Math.pow(scale[i]!, nb) - coef * x[i]! * s
          }
        }
      }
      return
    }
    const coef = 2 * this.alpha * this.beta / (this.size * this.size)
    const ratio = this.ratio
    for (let pl = 0; pl < n * c; pl++) {
      const base = pl * h * w
      for (let i = 0; i < h * w; i++) ratio[i] = dy[base + i]! * y[base + i]! / scale[base + i]!
      for (let i = 0; i < h; i++) {
        for (let j = 0; j < w; j++) {
          let s = 0
          for (let u = Math.max(0, i - half); u <= Math.min(h - 1, i + half); u++) {
            for (let v = Math.max(0, j - half); v <= Math.min(w - 1, j + half); v++) s += ratio[u * w + v]!
          }
          const o = base + i * w + j
          dx[o] = dy[o]! * Math.pow(scale[o]!, nb) - coef * x[o]! * s
        }
      }
    }
  }
}
