import type { Blob } from '../blob.js'
import type { LayerContext } from '../layer.js'
import type { LayerParameter } from '../proto/caffe.js'
import { at } from './base-layer.js'
import { NeuronLayer } from './neuron-layer.js'

/**
 * Caffe's Dropout: in TRAIN each value is kept with probability 1 − dropout_ratio and scaled
 * by 1 / (1 − dropout_ratio); in TEST it is the identity. Works in place. The mask comes from
 * the net's seeded RNG, so a fixed random_seed repeats it.
 */
export class DropoutLayer extends NeuronLayer {
  private ratio = 0.5
  private scale = 2
  private mask = new Uint8Array(0)

  constructor (param: LayerParameter, ctx: LayerContext) {
    super(param, ctx, 'Dropout')
  }

  protected override layerSetUp (): void {
    this.ratio = this.param.dropout_param?.dropout_ratio ?? 0.5
    if (!(this.ratio >= 0 && this.ratio < 1)) this.fail(`dropout_ratio must be in [0, 1), got ${this.ratio}`)
    this.scale = 1 / (1 - this.ratio)
  }

  override reshape (bottom: Blob[], top: Blob[]): void {
    super.reshape(bottom, top)
    const n = at(bottom, 0).count
    if (this.mask.length < n) this.mask = new Uint8Array(n)
  }

  override forward (bottom: Blob[], top: Blob[]): void {
    const x = at(bottom, 0).data
    const y = at(top, 0).data
    if (this.ctx.phase !== 'TRAIN') {
      if (y !== x) y.set(x)
      return
    }
    const keep = 1 - this.ratio
    const rng = this.ctx.rng
    const mask = this.mask
    const s = this.scale
    for (let i = 0; i < x.length; i++) {
      const m = rng.uniform() < keep ? 1 : 0
      mask[i] = m
      y[i] = m === 1 ? x[i]! * s : 0
    }
  }

  override backward (top: Blob[], propagateDown: boolean[], bottom: Blob[]): void {
    if (propagateDown[0] !== true) return
    const dy = at(top, 0).diff
    const dx = at(bottom, 0).diff
    if (this.ctx.phase !== 'TRAIN') {
      if (dx !== dy) dx.set(dy)
      return
    }
    const mask = this.mask
    const s = this.scale
    for (let i = 0; i < dy.length; i++) dx[i] = mask[i] === 1 ? dy[i]! * s : 0
  }
}
