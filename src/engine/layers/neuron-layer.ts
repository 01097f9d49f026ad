import type { Blob } from '../blob.js'
import type { LayerContext } from '../layer.js'
import type { LayerParameter } from '../proto/caffe.js'
import { at, BaseLayer } from './base-layer.js'

/** An element-wise layer: one bottom, one top of the same shape, which may be the bottom itself (in place). */
export abstract class NeuronLayer extends BaseLayer {
  constructor (param: LayerParameter, ctx: LayerContext, type: string) {
    super(param, ctx, type, { bottoms: [1, 1], tops: [1, 1] })
  }

  override reshape (bottom: Blob[], top: Blob[]): void {
    const x = at(bottom, 0)
    const y = at(top, 0)
    if (y !== x) y.reshapeLike(x)
  }
}
