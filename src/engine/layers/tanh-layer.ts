import type { Blob } from '../blob.js'
import type { LayerContext } from '../layer.js'
import type { LayerParameter } from '../proto/caffe.js'
import { at } from './base-layer.js'
import { NeuronLayer } from './neuron-layer.js'

/** Caffe's TanH: y = tanh(x). Works in place (the gradient needs only the output). */
export class TanhLayer extends NeuronLayer {
  constructor (param: LayerParameter, ctx: LayerContext) {
    super(param, ctx, 'TanH')
  }

  override forward (bottom: Blob[], top: Blob[]): void {
    const x = at(bottom, 0).data
    const y = at(top, 0).data
    for (let i = 0; i < x.length; i++) y[i] = Math.tanh(x[i]!)
  }

  override backward (top: Blob[], propagateDown: boolean[], bottom: Blob[]): void {
    if (propagateDown[0] !== true) return
    const t = at(top, 0)
    const y = t.data
    const dy = t.diff
    const dx = at(bottom, 0).diff
    for (let i = 0; i < y.length; i++) {
      const v = y[i]!
      dx[i] = dy[i]! * (1 - v * v)
    }
  }
}
