import type { Blob } from '../blob.js'
import type { LayerContext } from '../layer.js'
import type { LayerParameter } from '../proto/caffe.js'
import { at } from './base-layer.js'
import { NeuronLayer } from './neuron-layer.js'

/** Caffe's ReLU: y = max(x, 0) + negative_slope · min(x, 0). Works in place. */
export class ReluLayer extends NeuronLayer {
  private slope = 0

  constructor (param: LayerParameter, ctx: LayerContext) {
    super(param, ctx, 'ReLU')
  }

  protected override layerSetUp (): void {
    this.slope = this.param.relu_param?.negative_slope ?? 0
  }

  override forward (bottom: Blob[], top: Blob[]): void {
    const x = at(bottom, 0).data
    const y = at(top, 0).data
    const s = this.slope
    if (s === 0) {
      for (let i = 0; i < x.length; i++) {
        const v = x[i]!
        y[i] = v > 0 ? v : 0
      }
    } else {
      for (let i = 0; i < x.length; i++) {
        const v = x[i]!
        y[i] = v > 0 ? v : v * s
      }
    }
  }

  override backward (top: Blob[], propagateDown: boolean[], bottom: Blob[]): void {
    if (propagateDown[0] !== true) return
    // In place the bottom holds the output, whose sign is the input's (slope ≥ 0), so the
    // test below reads the same either way, as in Caffe.
    const xb = at(bottom, 0)
    const x = xb.data
    const dy = at(top, 0).diff
    const dx = xb.diff
    const s = this.slope
    for (let i = 0; i < x.length; i++) dx[i] = x[i]! > 0 ? dy[i]! : dy[i]! * s
  }
}
