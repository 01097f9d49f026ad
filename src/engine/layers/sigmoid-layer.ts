import type { Blob } from '../blob.js'
import type { LayerContext } from '../layer.js'
import type { LayerParameter } from '../proto/caffe.js'
import { at } from './base-layer.js'
import { NeuronLayer } from './neuron-layer.js'

/** Caffe's Sigmoid: y = 1 / (1 + e^−x), computed as 0.5·tanh(0.5·x) + 0.5 like Caffe. Works in place. */
export class SigmoidLayer extends NeuronLayer {
  constructor (param: LayerParameter, ctx: LayerContext) {
    super(param, ctx, 'Sigmoid')
  }

  override forward (bottom: Blob[], top: Blob[]): void {
    const x = at(bottom, 0).data
    const y = at(top, 0).data
    for (let i = 0; i < x.length; i++) y[i] = 0.5 * Math.tanh(0.5 * x[i]!) + 0.5
  }

  override backward (top: Blob[], propagateDown: boolean[], bottom: Blob[]): void {
    if (propagateDown[0] !== true) return
    const t = at(top, 0)
    const y = t.data
    const dy = t.diff
    const dx = at(bottom, 0).diff
    for (let i = 0; i < y.length; i++) {
      const v = y[i]!
      dx[i] = dy[i]! * v * (1 - v)
    }
  }
}
