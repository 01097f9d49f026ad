import { Blob } from '../blob.js'
import type { LayerContext } from '../layer.js'
import type { LayerParameter } from '../proto/caffe.js'
import { at, BaseLayer } from './base-layer.js'

/**
 * Caffe's BatchNorm: per-channel normalisation (x − mean) / sqrt(var + eps), with no scale or
 * shift of its own (a Scale layer follows). Its three blobs are Caffe's: running mean sum,
 * running variance sum and the scale factor that divides both (so .caffemodel files match);
 * the layer updates them itself during TRAIN forward and the solver must not (fixedParams).
 * use_global_stats defaults to true in TEST and false in TRAIN. Works in place.
 */
export class BatchNormLayer extends BaseLayer {
  private useGlobal = false
  private fraction = 0.999
  private eps = 1e-5
  private channels = 0
  private readonly mean = new Blob()
  private readonly std = new Blob()
  /** The normalised output, kept for backward because in place the top may be changed later. */
  private readonly xNorm = new Blob()

  constructor (param: LayerParameter, ctx: LayerContext) {
    super(param, ctx, 'BatchNorm', { bottoms: [1, 1], tops: [1, 1] })
  }

  protected override layerSetUp (bottom: Blob[]): void {
    const p = this.param.batch_norm_param
    this.useGlobal = p?.use_global_stats ?? this.ctx.phase === 'TEST'
    this.fraction = p?.moving_average_fraction ?? 0.999
    this.eps = p?.eps ?? 1e-5
    const x = at(bottom, 0)
    this.channels = x.shape.length === 1 ? 1 : x.dim(1)
    this.blobs.push(new Blob([this.channels]), new Blob([this.channels]), new Blob([1]))
    this.fixedParams.push(0, 1, 2)
  }

  override reshape (bottom: Blob[], top: Blob[]): void {
    const x = at(bottom, 0)
    const c = x.shape.length === 1 ? 1 : x.dim(1)
    if (c !== this.channels) this.fail(`bottom has ${c} channels, the statistics ${this.channels}`)
    const y = at(top, 0)
    if (y !== x) y.reshapeLike(x)
    this.mean.reshape([c])
    this.std.reshape([c])
    this.xNorm.reshapeLike(x)
  }

  override forward (bottom: Blob[], top: Blob[]): void {
    const xb = at(bottom, 0)
    const x = xb.data
    const y = at(top, 0).data
    const num = xb.shape.length === 0 ? 1 : xb.dim(0)
    const C = this.channels
    const spatial = xb.count / (num * C)
    const mean = this.mean.data
    const std = this.std.data
    const [runMean, runVar, factor] = [at(this.blobs, 0).data, at(this.blobs, 1).data, at(this.blobs, 2).data]
    if (this.useGlobal) {
      const f = factor[0] === 0 ? 0 : 1 / factor[0]!
      for (let c = 0; c < C; c++) {
        mean[c] = f * runMean[c]!
        std[c] = f * runVar[c]!
      }
    } else {
      const m = num * spatial
      for (let c = 0; c < C; c++) {
        let s = 0
        for (let b = 0; b < num; b++) for (let i = (b * C + c) * spatial, e = i + spatial; i < e; i++) s += x[i]!
        const mu = s / m
        let v = 0
        for (let b = 0; b < num; b++) {
          for (let i = (b * C + c) * spatial, e = i + spatial; i < e; i++) {
            const d = x[i]! - mu
            v += d * d
          }
        }
        mean[c] = mu
        std[c] = v / m
      }
      // Caffe's running sums: the factor counts the (decayed) updates and divides both sums.
      factor[0] = factor[0]! * this.fraction + 1
      const correction = m > 1 ? m / (m - 1) : 1
      for (let c = 0; c < C; c++) {
        runMean[c] = mean[c]! + this.fraction * runMean[c]!
        runVar[c] = correction * std[c]! + this.fraction * runVar[c]!
      }
    }
    for (let c = 0; c < C; c++) std[c] = Math.sqrt(std[c]! + this.eps)
    const xn = this.xNorm.data
    for (let b = 0; b < num; b++) {
      for (let c = 0; c < C; c++) {
        const mu = mean[c]!
        const inv = 1 / std[c]!
        for (let i = (b * C + c) * spatial, e = i + spatial; i < e; i++) {
          const v = (x[i]! - mu) * inv
          y[i] = v
          xn[i] = v
        }
      }
    }
  }

  override backward (top: Blob[], propagateDown: boolean[], bottom: Blob[]): void {
    if (propagateDown[0] !== true) return
    const xb = at(bottom, 0)
    const dy = at(top, 0).diff
    const dx = xb.diff
    const num = xb.shape.length === 0 ? 1 : xb.dim(0)
    const C = this.channels
    const spatial = xb.count / (num * C)
    const std = this.std.data
    if (this.useGlobal) {
      for (let b = 0; b < num; b++) {
        for (let c = 0; c < C; c++) {
          const inv = 1 / std[c]!
          for (let i = (b * C + c) * spatial, e = i + spatial; i < e; i++) dx[i] = dy[i]! * inv
        }
      }
      return
    }
    // dx = (dy − mean(dy) − mean(dy·y)·y) / std, per channel; both means are taken before
    // any write because in place dx and dy are the same array.
    const y = this.xNorm.data
    const m = num * spatial
    for (let c = 0; c < C; c++) {
      let sdy = 0
      let sdyy = 0
      for (let b = 0; b < num; b++) {
        for (let i = (b * C + c) * spatial, e = i + spatial; i < e; i++) {
          sdy += dy[i]!
          sdyy += dy[i]! * y[i]!
        }
      }
      const mdy = sdy / m
      const mdyy = sdyy / m
      const inv = 1 / std[c]!
      for (let b = 0; b < num; b++) {
        for (let i = (b * C + c) * spatial, e = i + spatial; i < e; i++) dx[i] = (dy[i]! - mdy - mdyy * y[i]!) * inv
      }
    }
  }
}
